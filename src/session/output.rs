//! Output files, opened the way a root process must open them: before any sampling (a bad
//! path fails at once), never through a symbolic link, never replacing a file unasked, and
//! owned by the user who ran `sudo`, not by root.

use std::fs::{File, OpenOptions};
use std::io;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::HptopError;

/// How an existing file at the path is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse it (the default for reports): the user adds `--force` to replace it.
    Refuse,
    /// Replace its contents (`--force`).
    Replace,
    /// Append to it (a launched command's `--log`).
    Append,
}

/// Opens `path` for writing as `existing` says, refusing a symbolic link as the last
/// component, and hands a file it created to `SUDO_UID`/`SUDO_GID` when run through sudo.
///
/// # Errors
/// `Output`, naming the path, with a fix for a link or an existing file.
pub fn open_output(path: &Path, existing: Existing) -> Result<File, HptopError> {
    let mut options = OpenOptions::new();
    // Readable too: a recording kept within --max-size copies its newest segments back.
    options
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .mode(0o644);
    let found = path.symlink_metadata().ok();
    let kind = found.as_ref().map(std::fs::Metadata::file_type);
    if kind.is_some_and(|k| k.is_dir()) {
        return Err(HptopError::OutputRefused {
            path: path.display().to_string(),
            why: "it is a directory".into(),
            fix: format!(
                "give a file name, e.g. {}",
                path.join("hptop-report.json").display()
            ),
        });
    }
    // Only a regular file is "replaced": a device or a pipe (`-o /dev/null`, a FIFO) is
    // written to as it is.
    let special = kind.is_some_and(|k| !k.is_file() && !k.is_symlink());
    match existing {
        _ if special => options.append(true),
        Existing::Refuse => options.create_new(true),
        Existing::Replace => options.create(true).truncate(true),
        Existing::Append => options.create(true).append(true),
    };
    let existed = found.is_some();
    let file = options.open(path).map_err(|source| {
        let link = path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        match source.raw_os_error() {
            Some(nix::libc::ELOOP) if link => HptopError::OutputRefused {
                path: path.display().to_string(),
                why: "it is a symbolic link, which hptop does not follow (it may run as root)"
                    .into(),
                fix: "give the path of the file itself".into(),
            },
            Some(nix::libc::EEXIST) => HptopError::OutputRefused {
                path: path.display().to_string(),
                why: "the file exists".into(),
                fix: "add --force to replace it, or choose another name".into(),
            },
            _ => HptopError::Output {
                path: path.display().to_string(),
                source,
            },
        }
    })?;
    if !existed {
        give_to_sudo_user(&file);
    }
    Ok(file)
}

/// Hands a file hptop created to the user who ran `sudo hptop`, so the report is theirs.
fn give_to_sudo_user(file: &File) {
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    let id = |key| std::env::var(key).ok()?.parse::<u32>().ok();
    if let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) {
        let _ = nix::unistd::fchown(
            file,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        );
    }
}

/// Writes `text` to `file` (opened by [`open_output`]) and flushes it.
///
/// # Errors
/// `Output` naming `path`.
pub fn write_all(mut file: &File, path: &Path, bytes: &[u8]) -> Result<(), HptopError> {
    use io::Write as _;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|source| HptopError::Output {
            path: path.display().to_string(),
            source,
        })
}

/// Writes `bytes` to standard output (a closed pipe is not an error).
///
/// # Errors
/// `Output` when standard output fails.
pub fn write_output(bytes: &[u8]) -> Result<(), HptopError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(HptopError::Output {
            path: "standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}
