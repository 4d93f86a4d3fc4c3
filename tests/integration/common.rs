//! Shared helpers: finding interpreters, starting workloads, running hptop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One interpreter to test against.
#[derive(Debug, Clone)]
pub struct Python {
    pub label: String,
    pub path: PathBuf,
}

impl Python {
    /// The minor version (`11` of 3.11) as the label tells.
    pub fn minor(&self) -> Option<u32> {
        let version = self.label.rsplit('-').next()?;
        let mut parts = version.split('.');
        (parts.next()? == "3").then_some(())?;
        parts.next()?.parse().ok()
    }
}

/// The interpreters the stack tests run on: Debian's python3.11 (static, stripped) and every
/// pyenv build from 3.6 up. Missing ones are reported, never failed.
pub fn all_pythons() -> Vec<Python> {
    let mut found = Vec::new();
    let debian = PathBuf::from("/usr/bin/python3.11");
    if debian.exists() {
        found.push(Python {
            label: "debian-3.11".into(),
            path: debian,
        });
    } else {
        eprintln!("SKIP: Debian's /usr/bin/python3.11 not found");
    }
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    let mut versions: Vec<(Vec<u32>, PathBuf)> = root
        .and_then(|r| std::fs::read_dir(r.join("versions")).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let nums: Vec<u32> = name
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<_>>()?;
            let path = e.path().join("bin/python3");
            (nums.len() >= 2 && nums[0] == 3 && nums[1] >= 6 && path.exists())
                .then_some((nums, path))
        })
        .collect();
    versions.sort();
    for minor in 6..=13 {
        if !versions.iter().any(|(v, _)| v[1] == minor) {
            eprintln!("SKIP: no pyenv Python 3.{minor} found");
        }
    }
    for (v, path) in versions {
        found.push(Python {
            label: format!(
                "pyenv-{}",
                v.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
            ),
            path,
        });
    }
    found.extend(newer_pythons());
    found
}

/// Debian's builds of the newest `CPythons`, as `../shared/tools/newer-pythons.sh` installs them
/// (`HPTOP_NEWER_PYTHONS` names another prefix). Missing ones are reported, never failed.
pub fn newer_pythons() -> Vec<Python> {
    let prefix = std::env::var_os("HPTOP_NEWER_PYTHONS")
        .map_or_else(|| PathBuf::from("/opt/hptop-pythons"), PathBuf::from);
    ["3.14", "3.15"]
        .iter()
        .filter_map(|v| {
            let path = prefix.join("bin").join(format!("python{v}"));
            if path.exists() {
                Some(Python {
                    label: format!("debian-{v}"),
                    path,
                })
            } else {
                eprintln!("SKIP: no Python {v} at {}", path.display());
                None
            }
        })
        .collect()
}

/// One interpreter for tests that need any Python: Debian's, else `python3` on PATH.
pub fn default_python() -> Python {
    let path = ["/usr/bin/python3", "/usr/bin/python3.11"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"));
    Python {
        label: "default".into(),
        path,
    }
}

/// Path of a workload script.
pub fn workload_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/workloads")
        .join(name)
}

/// Line number of the first line of `script` containing `marker`.
pub fn line_of(script: &str, marker: &str) -> u32 {
    let text = std::fs::read_to_string(workload_path(script)).unwrap();
    let index = text.lines().position(|l| l.contains(marker)).unwrap();
    u32::try_from(index + 1).unwrap()
}

/// A running workload, killed when dropped.
pub struct Workload {
    pub child: Child,
}

impl Workload {
    /// Starts `python script args...` and waits until it prints `ready`.
    pub fn start(python: &Python, script: &str, args: &[&str]) -> Self {
        Self::start_with_env(python, script, args, &[])
    }

    /// [`Self::start`] with environment variables set for the workload only.
    pub fn start_with_env(
        python: &Python,
        script: &str,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Self {
        let mut child = Command::new(&python.path)
            .arg(workload_path(script))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.path.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines
                .next()
                .and_then(Result::ok)
                .is_some_and(|l| l.trim() == "ready");
            let _ = tx.send(ready);
            for _ in lines {}
        });
        let ready = rx.recv_timeout(Duration::from_secs(20)).unwrap_or(false);
        assert!(ready, "{} {script} did not print ready", python.label);
        Self { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Kills `pid`'s descendants, then `pid` (SIGKILL): a test leaves no orphan behind when it
/// kills a launcher (a shell, flock) whose child would be re-parented to init. Each process
/// is stopped before its children are listed: a pool whose worker was killed forks a
/// replacement from a thread of its own (listed under that thread's task, not the main one),
/// which a clean-clone run left behind.
pub fn kill_tree(pid: u32) {
    use hptop::collect::tick::OsState;
    use nix::sys::signal::{kill, Signal};
    let target = nix::unistd::Pid::from_raw(pid as i32);
    if kill(target, Signal::SIGSTOP).is_ok() {
        // The stop lands on the way back to user space: wait for it (briefly; a zombie or a
        // process in uninterruptible sleep does not stop, and is killed as it is).
        for _ in 0..100 {
            let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap_or_default();
            let stopped = hptop::collect::procfs::parse_stat(&stat)
                .is_none_or(|s| matches!(s.state, OsState::Stopped | OsState::Dead));
            if stopped {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    for child in hptop::collect::discover::children(pid) {
        kill_tree(child);
    }
    let _ = kill(target, Signal::SIGKILL);
}

impl Drop for Workload {
    fn drop(&mut self) {
        // Its children (pool workers) first: they die quietly instead of printing a broken
        // pipe to a parent that is gone, and none is left to init.
        kill_tree(self.child.id());
        let _ = self.child.wait();
    }
}

/// The first file named `program` in a directory of `PATH`.
pub fn which(program: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

/// Runs hptop with `args`.
pub fn hptop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hptop"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `hptop report ... --format json` and parses the report.
pub fn report_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["report", "--format", "json"];
    all.extend_from_slice(args);
    let out = hptop(&all);
    assert!(
        out.status.success(),
        "hptop {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The kernel state letter of `stat` text (field 3, after the command in parentheses).
fn state_letter(stat: &str) -> Option<char> {
    stat.rfind(')')
        .and_then(|i| stat.get(i + 2..)?.chars().next())
}

/// State letter of each thread of `pid` (R, S, T, t...).
pub fn thread_states(pid: u32) -> Vec<char> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|t| {
                state_letter(&std::fs::read_to_string(t.ok()?.path().join("stat")).ok()?)
            })
            .collect()
        })
        .unwrap_or_default()
}

/// State letter of process `pid`, `?` when it is gone.
pub fn process_state(pid: u32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| state_letter(&s))
        .unwrap_or('?')
}

/// utime + stime in clock ticks (1/100 s) of a `stat` file (`/proc/PID/stat` or a thread's).
pub fn cpu_ticks(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    field(11) + field(12)
}

/// CPU % (100 = one core) of `pid` and of each of its threads, measured by the test itself
/// from `/proc` around `during`, which returns what it computed.
pub fn cpu_truth<T>(pid: u32, during: impl FnOnce() -> T) -> (T, f64, Vec<(u64, f64)>) {
    let tids: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let thread_stat = |tid: u64| format!("/proc/{pid}/task/{tid}/stat");
    let before: Vec<f64> = tids.iter().map(|&t| cpu_ticks(&thread_stat(t))).collect();
    let process_before = cpu_ticks(&format!("/proc/{pid}/stat"));
    let start = std::time::Instant::now();
    let out = during();
    let seconds = start.elapsed().as_secs_f64();
    let process = (cpu_ticks(&format!("/proc/{pid}/stat")) - process_before) / seconds;
    let threads = tids
        .iter()
        .zip(before)
        .map(|(&t, b)| (t, (cpu_ticks(&thread_stat(t)) - b) / seconds))
        .collect();
    (out, process, threads)
}

/// A JSON number as f64.
pub fn f64_of(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The one process of a report.
pub fn process(report: &serde_json::Value) -> &serde_json::Value {
    let procs = report["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1);
    &procs[0]
}

/// The function named `name` in a report's process, if sampled.
pub fn function<'a>(p: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    p["functions"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)
}

/// Names of a process's first `n` functions (the report's order: hottest first).
pub fn top_functions(p: &serde_json::Value, n: usize) -> Vec<&str> {
    p["functions"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .take(n)
                .filter_map(|f| f["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// Sum over a process's functions of one self-credited counter.
pub fn credited_sum(p: &serde_json::Value, key: &str) -> f64 {
    p["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f64_of(&f[key]))
        .sum()
}

/// A workload's own truth (cumulative thread CPU ns of what it measures), asked for with
/// SIGUSR1 and read from the JSON file it writes (tests/workloads/contention.py,
/// `async_tasks.py`).
pub fn workload_truth(pid: u32, path: &std::path::Path) -> serde_json::Value {
    let before = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    for _ in 0..500 {
        let now = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if now.is_some() && now != before {
            if let Ok(v) = serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default())
            {
                return v;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the workload did not write its truth");
}

/// The machine's load, as the tests make it: a test that starts busy loops holds it
/// exclusively ([`Load`]); a test that measures against truth without loading the machine
/// itself holds it shared ([`quiet_machine`]). So the suite's own loops never overlap a test
/// that calls itself quiet, nor each other (the machine has 2 cores; two loaded tests at once
/// would each see twice the load they state).
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by a test that measures without loading the machine: no [`Load`] runs meanwhile.
pub fn quiet_machine() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Held by a test whose figure is a sample of few events (a task's steps): neither the
/// suite's busy loops nor the other quiet tests' busy workloads run meanwhile.
pub fn machine_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Busy loops (`sh` spinning) that load the machine, killed when dropped; the only load the
/// suite makes while they run (see [`MACHINE`]).
pub struct Load {
    children: Vec<Child>,
    _machine: std::sync::RwLockWriteGuard<'static, ()>,
}

impl Load {
    /// `n` loops per core.
    pub fn per_core(n: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::loops(cores * n)
    }

    /// `count` loops.
    pub fn loops(count: usize) -> Self {
        let machine = MACHINE
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Self {
            children: (0..count)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .unwrap()
                })
                .collect(),
            _machine: machine,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
