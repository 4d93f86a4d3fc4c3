//! Finding Python processes: what a PID is, its Python descendants, all Python processes.

use std::path::{Path, PathBuf};

use super::procfs::{parse_stat, StatFields};
use super::sanitize::sanitize;
use super::tick::OsState;

/// What `/proc` says of one process, without attaching to it.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// `stat` fields (state, ppid, counters).
    pub stat: StatFields,
    /// Real user id.
    pub uid: u32,
    /// Command line, sanitised; empty for kernel threads.
    pub cmdline: Vec<String>,
    /// Target of `/proc/PID/exe`, when readable.
    pub exe: Option<PathBuf>,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

impl ProcessInfo {
    /// Reads `/proc/PID`; `None` when the process does not exist.
    pub fn read(pid: u32) -> Option<Self> {
        let root = PathBuf::from(format!("/proc/{pid}"));
        let stat = parse_stat(&std::fs::read(root.join("stat")).ok()?)?;
        let status = std::fs::read(root.join("status")).unwrap_or_default();
        let uid = super::procfs::field_value(&status, "Uid").unwrap_or(u64::MAX) as u32;
        let rss_bytes = super::procfs::field_value(&status, "VmRSS").unwrap_or(0) * 1024;
        let cmdline = std::fs::read(root.join("cmdline"))
            .unwrap_or_default()
            .split(|&b| b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| sanitize(&String::from_utf8_lossy(part)))
            .collect();
        Some(Self {
            pid,
            stat,
            uid,
            cmdline,
            exe: std::fs::read_link(root.join("exe")).ok(),
            rss_bytes,
        })
    }

    /// The command line joined by spaces, or the executable when the command line is empty.
    pub fn command(&self) -> String {
        if self.cmdline.is_empty() {
            self.exe
                .as_ref()
                .map(|e| sanitize(&e.to_string_lossy()))
                .unwrap_or_default()
        } else {
            self.cmdline.join(" ")
        }
    }

    /// Whether the process is a launcher whose Python child is what the user means: a
    /// shell, sudo/su, env-like runners, `uv`/`poetry`/`pipenv`/`pdm`/`hatch`/`conda run`, or
    /// a pyenv shim. Anything else (init, a supervisor, a server) is not resolved to a child.
    pub fn is_wrapper(&self) -> bool {
        let name = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
        let program = self
            .cmdline
            .first()
            .map(|a| name(a))
            .or_else(|| self.exe.as_ref().map(|e| name(&e.to_string_lossy())))
            .unwrap_or_default();
        let program = program.trim_start_matches('-'); // a login shell's argv[0]
        let arg = |i: usize| self.cmdline.get(i).map_or("", String::as_str);
        if self
            .cmdline
            .iter()
            .take(3)
            .any(|a| a.contains("/shims/") || a.contains("pyenv"))
        {
            return true;
        }
        match program {
            "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "fish" | "busybox"
            | "sudo" | "doas" | "su" | "runuser" | "env" | "nice" | "nohup" | "setsid"
            | "timeout" | "ionice" | "taskset" | "chrt" | "stdbuf" | "time" | "uvx" | "pipx"
            | "tini" | "dumb-init" => true,
            "uv" | "poetry" | "pipenv" | "pdm" | "hatch" | "rye" | "conda" | "mamba"
            | "micromamba" => (1..self.cmdline.len()).any(|i| arg(i) == "run" || arg(i) == "exec"),
            _ => false,
        }
    }

    /// Whether the process is a zombie (exited, not yet reaped).
    pub fn is_zombie(&self) -> bool {
        self.stat.state == OsState::Dead
    }
}

/// Evidence that a process runs a `CPython` interpreter, without attaching to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonGuess {
    /// Version as far as file names tell (`3.9.18`, `3.11`), if they do.
    pub version: Option<String>,
}

/// Looks for a Python interpreter in the process's executable or mapped libraries.
/// Returns `None` when neither looks like Python (or the maps are unreadable).
pub fn python_guess(pid: u32) -> Option<PythonGuess> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let libpython = maps
        .lines()
        .filter_map(|line| line.split_ascii_whitespace().nth(5))
        .find(|path| file_name(path).starts_with("libpython"));
    let exe_is_python = exe
        .as_deref()
        .is_some_and(|e| is_python_binary_name(&file_name(&e.to_string_lossy())));
    if !exe_is_python && libpython.is_none() {
        return None;
    }
    let candidates = [
        libpython.map(str::to_owned),
        exe.map(|e| e.to_string_lossy().into_owned()),
    ];
    let version = candidates
        .iter()
        .flatten()
        .find_map(|p| version_from_path(p));
    Some(PythonGuess { version })
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_python_binary_name(name: &str) -> bool {
    let rest = name.strip_prefix("python").unwrap_or("");
    name.starts_with("python")
        && rest
            .trim_end_matches(['d', 'm', 'u', 't'])
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
}

/// Best version a path tells: a pyenv-style `versions/3.9.18/` directory, else the
/// `X.Y` in `python3.11` or `libpython3.11.so`.
fn version_from_path(path: &str) -> Option<String> {
    let full = path
        .split('/')
        .skip_while(|part| *part != "versions")
        .nth(1)
        .filter(|v| v.split('.').count() >= 2 && v.split('.').all(|n| n.parse::<u32>().is_ok()));
    if let Some(v) = full {
        return Some(v.to_owned());
    }
    let name = file_name(path);
    let rest = name
        .strip_prefix("libpython")
        .or_else(|| name.strip_prefix("python"))?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let digits = digits.trim_end_matches('.');
    (digits.contains('.')).then(|| digits.to_owned())
}

/// Direct children of `pid`, from `/proc/PID/task/*/children` (no scan of all of /proc).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<u32> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_ascii_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Descendants of `root`, breadth first, through the kernel's child lists (no scan of
/// `/proc`), at most `limit` of them; the children of a process for which `prune` says true
/// are not walked.
pub fn descendants(root: u32, limit: usize, mut prune: impl FnMut(u32) -> bool) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = std::collections::VecDeque::from(children(root));
    while let Some(pid) = queue.pop_front() {
        if found.len() >= limit {
            break;
        }
        found.push(pid);
        if !prune(pid) {
            queue.extend(children(pid));
        }
    }
    found
}

/// Python processes among the descendants of `pid`, nearest first (breadth first),
/// not looking below a Python process.
pub fn python_descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    descendants(pid, 10_000, |child| {
        let python = python_guess(child).is_some();
        if python {
            found.push(child);
        }
        python
    });
    found
}

/// Processes whose command line names Python but whose executable hptop may not read
/// (another user's, without root): they are missing from [`python_processes`].
pub fn unreadable_pythons() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let denied = std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
            denied
                && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    c.split(|&b| b == 0)
                        .next()
                        .is_some_and(|argv0| String::from_utf8_lossy(argv0).contains("python"))
                })
        })
        .count()
}

/// Every process on the machine that looks like Python, ascending by pid.
pub fn python_processes() -> Vec<(ProcessInfo, PythonGuess)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != own)
        .collect();
    pids.sort_unstable();
    pids.into_iter()
        .filter_map(|pid| {
            let guess = python_guess(pid)?;
            Some((ProcessInfo::read(pid)?, guess))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_paths() {
        assert_eq!(
            version_from_path("/root/.pyenv/versions/3.9.18/bin/python3.9").as_deref(),
            Some("3.9.18")
        );
        assert_eq!(
            version_from_path("/usr/bin/python3.11").as_deref(),
            Some("3.11")
        );
        assert_eq!(
            version_from_path("/usr/lib/x86_64-linux-gnu/libpython3.12.so.1.0").as_deref(),
            Some("3.12")
        );
        assert_eq!(version_from_path("/usr/bin/bash"), None);
    }

    #[test]
    fn python_binary_names() {
        assert!(is_python_binary_name("python3.11"));
        assert!(is_python_binary_name("python"));
        assert!(is_python_binary_name("python3.13t"));
        assert!(!is_python_binary_name("python-config"));
        assert!(!is_python_binary_name("bash"));
    }

    #[test]
    fn own_process_is_not_python() {
        assert!(python_guess(std::process::id()).is_none());
        assert!(ProcessInfo::read(std::process::id()).is_some_and(|p| !p.cmdline.is_empty()));
    }
}
