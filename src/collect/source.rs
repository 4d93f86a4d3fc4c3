//! Source files as the target sees them: through `/proc/PID/root` (so a container's files
//! are found) or, for a relative name, `/proc/PID/cwd`. Lines are sanitised (the file is
//! the target's data) and big files are not read.

use super::sanitize::sanitize;

/// Largest source file read.
const MAX_BYTES: u64 = 4 << 20;

/// The lines of `filename` as process `pid` sees it; `None` when unreadable or too big.
pub fn read_source(pid: u32, filename: &str) -> Option<Vec<String>> {
    if filename.starts_with('<') {
        return None; // "<frozen ...>", "<string>": no file
    }
    let path = match filename.strip_prefix('/') {
        Some(rest) => format!("/proc/{pid}/root/{rest}"),
        None => format!("/proc/{pid}/cwd/{filename}"),
    };
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| sanitize(&l.replace('\t', "    ")))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::read_source;

    #[test]
    fn reads_through_proc_root_and_refuses_pseudo_files() {
        let me = std::process::id();
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let lines = read_source(me, manifest).unwrap();
        assert!(lines.iter().any(|l| l.contains("name = \"hptop\"")));
        assert!(read_source(me, "<frozen importlib._bootstrap>").is_none());
        assert!(read_source(me, "/nonexistent/file.py").is_none());
    }
}
