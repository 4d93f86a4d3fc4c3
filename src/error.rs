//! Typed user-facing errors: each names the value in quotes, then the fix, and has an exit code.

use std::fmt::Write as _;

/// Exit code of a runtime error.
pub const EXIT_RUNTIME: i32 = 1;
/// Exit code of a usage error.
pub const EXIT_USAGE: i32 = 2;

/// An error hptop reports to the user and exits on.
#[derive(Debug, thiserror::Error)]
pub enum HptopError {
    /// No such process.
    #[error("no process with PID \"{pid}\": it does not exist or has already exited")]
    ProcessGone {
        /// The PID asked for.
        pid: u32,
    },
    /// The process has exited and waits to be reaped by its parent.
    #[error("process \"{pid}\" is a zombie: it has exited and only waits for its parent (PID {ppid}) to reap it")]
    Zombie {
        /// The PID asked for.
        pid: u32,
        /// Its parent.
        ppid: u32,
    },
    /// The kernel refused to let hptop read the process.
    #[error("permission denied reading the memory of process \"{pid}\" ({detail})")]
    PermissionDenied {
        /// The PID asked for.
        pid: u32,
        /// What failed.
        detail: String,
    },
    /// The process runs no Python interpreter hptop can see.
    #[error("process \"{pid}\" ({command}) is not a Python process")]
    NotPython {
        /// The PID asked for.
        pid: u32,
        /// Its command line.
        command: String,
        /// Python processes below it (it may be a wrapper: a shell, sudo, `uv run`).
        children: Vec<(u32, String)>,
    },
    /// A launcher given as `--pid` (a shell, `uv run`, sudo) that started no Python process.
    #[error("process \"{pid}\" ({command}) is a launcher, and {outcome}")]
    NoPythonChild {
        /// The PID asked for.
        pid: u32,
        /// Its command line.
        command: String,
        /// What happened while hptop waited: it exited, or the wait ran out.
        outcome: String,
    },
    /// A Python process whose interpreter py-spy cannot read.
    #[error("cannot read the Python interpreter in process \"{pid}\" ({version}): {detail}")]
    Unsupported {
        /// The PID asked for.
        pid: u32,
        /// The version as far as file names tell.
        version: String,
        /// py-spy's error.
        detail: String,
    },
    /// The command to launch could not be started.
    #[error("cannot start \"{command}\": {source}")]
    Launch {
        /// The command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The launched command failed before its code ran (or before hptop could attach).
    #[error("\"{command}\" failed at once ({status}){}", stderr_lines(stderr))]
    CommandFailed {
        /// The command.
        command: String,
        /// Its exit status, as the OS tells it.
        status: String,
        /// The last lines of its standard error.
        stderr: Vec<String>,
    },
    /// Writing the output failed.
    #[error("cannot write \"{path}\": {source}")]
    Output {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not one stack could be read in the window.
    #[error("no stack of process \"{pid}\" could be read in the window ({failed} reads failed; the first: {cause})")]
    NothingSampled {
        /// The target.
        pid: u32,
        /// Reads that failed.
        failed: u64,
        /// Why the first failed.
        cause: String,
    },
    /// hptop will not write where it was asked to.
    #[error("will not write \"{path}\": {why}")]
    OutputRefused {
        /// Where.
        path: String,
        /// Why not.
        why: String,
        /// What to do instead.
        fix: String,
    },
    /// A usage error found after parsing (for example an option that needs another).
    #[error("{0}")]
    Usage(String),
}

impl HptopError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            _ => EXIT_RUNTIME,
        }
    }

    /// What the user can do about it, with a usage error pointing at the help of
    /// `subcommand` (`None`: the live view's, `hptop --help`).
    pub fn fix_in(&self, subcommand: Option<&str>) -> String {
        match (self, subcommand) {
            (Self::Usage(_), Some(sub)) => format!("see `hptop {sub} --help`"),
            _ => self.fix(),
        }
    }

    /// What the user can do about it, one or more lines.
    pub fn fix(&self) -> String {
        match self {
            Self::ProcessGone { .. } => {
                "list Python processes with `hptop ps` (or run `hptop` to pick one), or launch one: `hptop -- python3 script.py`".into()
            }
            Self::Zombie { ppid, .. } => format!(
                "nothing is left to inspect; its parent \"{ppid}\" must wait() for it, or exit"
            ),
            Self::PermissionDenied { .. } if nix::unistd::geteuid().is_root() => "hptop already runs as root, and the kernel still refused: the process is guarded by a \
                 security policy (Yama ptrace_scope 3: `cat /proc/sys/kernel/yama/ptrace_scope`; SELinux/AppArmor), \
                 or hptop runs in a container without CAP_SYS_PTRACE (`docker run --cap-add SYS_PTRACE ...`), \
                 or the process belongs to another user namespace (run hptop inside its container)"
                .into(),
            Self::PermissionDenied { .. } => "run hptop with sudo (reading another process needs CAP_SYS_PTRACE or the same user);\n\
                 if it already runs as that user, allow ptrace: `sudo sysctl kernel.yama.ptrace_scope=0`;\n\
                 in a container, add the capability: `docker run --cap-add SYS_PTRACE ...`"
                .into(),
            Self::NotPython { children, .. } if children.is_empty() => {
                "point hptop at the Python process itself; `hptop ps` lists them".into()
            }
            Self::NotPython { children, .. } => {
                let mut out = String::from(
                    "it looks like a wrapper (a shell, sudo, uv run); its Python child processes are:\n",
                );
                for (pid, command) in children {
                    let _ = writeln!(out, "  {pid}  {command}");
                }
                let first = children.first().map_or(0, |c| c.0);
                let _ = write!(out, "use one of them, e.g. `hptop --pid {first}`");
                out
            }
            Self::CommandFailed { .. } => {
                "run the command alone to see why it fails (a missing file, a bad option, an import error), then inspect it again".into()
            }
            Self::NoPythonChild { pid, .. } => format!(
                "check what it runs (`ps --ppid {pid} -o pid,args`); once its Python process runs, \
                 point hptop at it or at the launcher again (`hptop ps` lists Python processes)"
            ),
            Self::Unsupported { .. } => "hptop reads CPython 2.7 and 3.3 to 3.15 (through py-spy); check that the process \
                 runs CPython (not PyPy) and has finished starting, then try again"
                .into(),
            Self::Launch { source, .. } if source.to_string().contains("no Python ran") => {
                "hptop inspects Python programs: give one, e.g. `hptop -- python3 script.py` or `hptop report -- python3 script.py`".into()
            }
            Self::Launch { .. } => "check that the command exists and is executable (try it in a shell)".into(),
            Self::Output { source, .. } => match source.raw_os_error() {
                Some(nix::libc::ENOSPC) => "the disk is full: free some space or write elsewhere".into(),
                Some(nix::libc::EROFS) => "the file system is read-only: write elsewhere".into(),
                _ => "check that the directory exists and is writable".into(),
            },
            Self::OutputRefused { fix, .. } => fix.clone(),
            Self::NothingSampled { cause, .. } => sampling_fix(cause).into(),
            Self::Usage(_) => "see `hptop --help`".into(),
        }
    }
}

/// What to do when reads fail, by the cause's words.
pub fn sampling_fix(cause: &str) -> &'static str {
    let lower = cause.to_lowercase();
    if lower.contains("too many open files") {
        "raise the open-file limit (`ulimit -n 65536`) or sample without --blocking"
    } else if lower.contains("permission") || lower.contains("not permitted") {
        "run hptop with sudo, or as the target's user with ptrace allowed"
    } else if lower.contains("no such process") || lower.contains("exited") {
        "the target exited: nothing is left to read"
    } else {
        "the target may be changing faster than it can be read: try --blocking (pauses it per sample), or a longer --duration"
    }
}

/// A command's last lines of standard error, as the end of its failure message.
fn stderr_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from("; its last lines of standard error:");
    for line in lines {
        let _ = write!(out, "\n    {line}");
    }
    out
}
