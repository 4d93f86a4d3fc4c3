//! Launch mode: start a command in its own process group, find its Python process, and stop
//! the whole group when done (also when hptop errs out: see `Drop`).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::collect::discover;
use crate::error::HptopError;

/// A launched command.
pub struct Launched {
    child: Child,
    command: String,
    status: Option<ExitStatus>,
    /// When it was started.
    started: Instant,
    /// Where its standard error's last lines can be read back.
    stderr: StderrTail,
}

/// Where a launched command's standard error goes, and how its last lines are read back
/// when it fails.
#[derive(Clone)]
pub enum StderrTail {
    /// Through a pipe that hptop copies on (or drops) and keeps the end of.
    Kept(Arc<Mutex<Vec<u8>>>),
    /// Into a log file (`--log`), whose end is read.
    Log(PathBuf),
}

/// Bytes of a command's standard error kept for its failure message.
const TAIL_BYTES: usize = 4096;
/// Lines of it shown.
const TAIL_LINES: usize = 8;
/// A launched command that fails within this time failed before its code ran (a missing
/// script, a bad interpreter option, an import error at start): no report is made of it.
pub const EARLY_FAILURE: Duration = Duration::from_secs(1);

/// How long to wait for the command's Python interpreter to appear.
const PYTHON_WAIT: Duration = Duration::from_secs(10);
/// How long a command that runs neither Python nor a launcher (a shell, `env`, `uv run`...)
/// gets to start a Python process before it is called "not a Python program".
const NOT_PYTHON_GRACE: Duration = Duration::from_secs(1);
/// How long a stopped command gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

impl Launched {
    /// Starts `argv`. Its standard output goes to hptop's standard error so a report on
    /// standard output stays parseable; its standard input is empty.
    ///
    /// # Errors
    /// `Launch` when the program cannot be started.
    pub fn spawn(argv: &[String]) -> Result<Self, HptopError> {
        let stdout = std::io::stderr()
            .lock()
            .try_clone_handle()
            .map_or_else(|_| Stdio::null(), Stdio::from);
        Self::spawn_piped(argv, stdout, true)
    }

    /// Starts `argv` with its output hidden (the live view: it would tear the screen); the
    /// end of its standard error is kept for a failure message.
    ///
    /// # Errors
    /// `Launch` when the program cannot be started.
    pub fn spawn_quiet(argv: &[String]) -> Result<Self, HptopError> {
        Self::spawn_piped(argv, Stdio::null(), false)
    }

    /// Starts `argv` with its standard error through a pipe whose end is kept, copied on to
    /// hptop's standard error when `forward`.
    fn spawn_piped(argv: &[String], stdout: Stdio, forward: bool) -> Result<Self, HptopError> {
        let mut launched = Self::spawn_with(argv, stdout, Stdio::piped())?;
        let tail = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = launched.child.stderr.take() {
            let kept = Arc::clone(&tail);
            // Ends when the command (and every process holding its stderr) has exited.
            let _ = std::thread::Builder::new()
                .name("launched-stderr".into())
                .spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = pipe.read(&mut buf) {
                        if forward {
                            let _ = std::io::stderr().write_all(&buf[..n]);
                        }
                        if let Ok(mut kept) = kept.lock() {
                            kept.extend_from_slice(&buf[..n]);
                            let excess = kept.len().saturating_sub(TAIL_BYTES);
                            kept.drain(..excess);
                        }
                    }
                });
        }
        launched.stderr = StderrTail::Kept(tail);
        Ok(launched)
    }

    /// Starts `argv` with its standard output and error appended to `log`.
    ///
    /// # Errors
    /// `Output` when the log cannot be opened, `Launch` when the program cannot be started.
    pub fn spawn_logged(argv: &[String], log: &std::path::Path) -> Result<Self, HptopError> {
        let file = super::output::open_output(log, super::output::Existing::Append)?;
        // An appended run starts with a line saying which and when, to tell runs apart.
        let header = format!(
            "==== hptop: {} at {} ====\n",
            argv.join(" "),
            chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        );
        super::output::write_all(&file, log, header.as_bytes())?;
        let copy = file.try_clone().map_err(|source| HptopError::Output {
            path: log.display().to_string(),
            source,
        })?;
        let mut launched = Self::spawn_with(argv, Stdio::from(file), Stdio::from(copy))?;
        launched.stderr = StderrTail::Log(log.to_path_buf());
        Ok(launched)
    }

    /// Starts `argv` with the given standard output and error (standard input empty).
    ///
    /// # Errors
    /// `Launch` when the program cannot be started.
    pub fn spawn_with(argv: &[String], stdout: Stdio, stderr: Stdio) -> Result<Self, HptopError> {
        use std::os::unix::process::CommandExt as _;
        let command = argv.join(" ");
        let (program, rest) = argv
            .split_first()
            .ok_or_else(|| HptopError::Usage("empty command".into()))?;
        let child = Command::new(program)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own process group: the terminal's ^C goes to hptop, which ends the report
            // and stops the command itself, and a stop reaches the command's children too.
            .process_group(0)
            .spawn()
            .map_err(|source| HptopError::Launch {
                command: command.clone(),
                source,
            })?;
        Ok(Self {
            child,
            command,
            status: None,
            started: Instant::now(),
            stderr: StderrTail::Kept(Arc::default()),
        })
    }

    /// Waits until the command runs Python: the command itself once it has exec'd the
    /// interpreter, or its only Python descendant (a shell or a pyenv shim in between). The
    /// wait is bounded by `within` (the report's duration) as well as [`PYTHON_WAIT`].
    ///
    /// # Errors
    /// `Launch` when it exits first, runs a program that is neither Python nor a launcher
    /// (said within [`NOT_PYTHON_GRACE`]), or no Python process appears in time.
    pub fn python_pid(&mut self, within: Option<Duration>) -> Result<u32, HptopError> {
        let pid = self.child.id();
        let start = Instant::now();
        let wait = within.map_or(PYTHON_WAIT, |d| d.min(PYTHON_WAIT));
        // Since when the command has been seen running something else than Python.
        let mut other_since: Option<Instant> = None;
        // Between fork and exec the child is still hptop.
        let own_exe = std::fs::read_link("/proc/self/exe").ok();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
                return Err(self.launch_error(format!(
                    "it exited ({status}) and no Python ran: it is not a Python program"
                )));
            }
            match python_of(pid) {
                PythonOf::Itself => return Ok(pid),
                PythonOf::Child(only) => return Ok(only),
                PythonOf::Several | PythonOf::NotYet => {}
            }
            match discover::ProcessInfo::read(pid) {
                // Exec'd into a program that is not a launcher: unless it starts Python at
                // once (a `make` target, a custom runner), it is not a Python program.
                Some(info) if exec_done(pid) && !info.is_wrapper() && info.exe != own_exe => {
                    let since = *other_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= NOT_PYTHON_GRACE {
                        return Err(self.launch_error(format!(
                            "it runs `{}`, which is not Python and started no Python process \
                             (no Python ran): it is not a Python program",
                            info.command()
                        )));
                    }
                }
                _ => other_since = None,
            }
            if start.elapsed() > wait {
                return Err(self.launch_error(format!(
                    "no Python process appeared within {} (no Python ran)",
                    crate::fmt::seconds(wait.as_secs_f64())
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn launch_error(&self, message: String) -> HptopError {
        HptopError::Launch {
            command: self.command.clone(),
            source: std::io::Error::other(message),
        }
    }

    /// Stops the command's process group (SIGTERM, then SIGKILL after a grace period) and
    /// reaps it. Returns its exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.status {
            return Some(status);
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            self.status = Some(status);
            return self.status;
        }
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < STOP_GRACE {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
                // Python children of a shell may outlive it: end the rest of the group too.
                let _ = killpg(group, Signal::SIGKILL);
                return self.status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = killpg(group, Signal::SIGKILL);
        self.status = self.child.wait().ok();
        self.status
    }

    /// The command's exit status, once it has exited (reaping it if so).
    pub fn status(&mut self) -> Option<ExitStatus> {
        self.exited();
        self.status
    }

    /// The error to report when the command exited with a failure status within
    /// [`EARLY_FAILURE`] of its start, or before hptop could attach to it (`attaching`):
    /// its exit status and the last lines of its standard error. `None` otherwise.
    pub fn early_failure(&mut self, attaching: bool) -> Option<HptopError> {
        // A command that dies as hptop attaches may not be reaped yet: give it a moment.
        let wait_until = Instant::now() + Duration::from_millis(if attaching { 500 } else { 0 });
        while !self.exited() && Instant::now() < wait_until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = self.status?;
        let early =
            attaching || self.started.elapsed() <= EARLY_FAILURE + Duration::from_millis(500);
        if status.success() || !early {
            return None;
        }
        // The copying thread may still hold the last bytes: let it drain the pipe.
        std::thread::sleep(Duration::from_millis(50));
        Some(HptopError::CommandFailed {
            command: self.command.clone(),
            status: status.to_string(),
            stderr: self.stderr_tail(),
        })
    }

    /// The last lines of the command's standard error, cleaned of control characters.
    pub fn stderr_tail(&self) -> Vec<String> {
        let bytes = match &self.stderr {
            StderrTail::Kept(kept) => kept.lock().map(|k| k.clone()).unwrap_or_default(),
            StderrTail::Log(path) => std::fs::read(path)
                .map(|b| b[b.len().saturating_sub(TAIL_BYTES)..].to_vec())
                .unwrap_or_default(),
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("==== hptop: "))
            .map(crate::collect::sanitize::sanitize)
            .collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
    }

    /// Whether the command has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status.is_some()
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Python a process runs now (only processes that finished exec'ing count: one mid-exec
/// is not yet what it will be).
pub enum PythonOf {
    /// It is Python itself (it exec'd the interpreter).
    Itself,
    /// Its only Python descendant.
    Child(u32),
    /// Several Python descendants: none stands for it.
    Several,
    /// None yet.
    NotYet,
}

/// See [`PythonOf`].
pub fn python_of(pid: u32) -> PythonOf {
    if discover::python_guess(pid).is_some() && exec_done(pid) {
        return PythonOf::Itself;
    }
    match discover::python_descendants(pid)[..] {
        [only] if exec_done(only) => PythonOf::Child(only),
        [_, _, ..] => PythonOf::Several,
        _ => PythonOf::NotYet,
    }
}

/// Whether `pid` has finished exec'ing: mid-exec, `/proc/PID/exe` already names the new
/// program while its command line still reads empty (found by a test that saw `[]`).
fn exec_done(pid: u32) -> bool {
    discover::ProcessInfo::read(pid).is_some_and(|p| !p.cmdline.is_empty())
}

/// Duplicates a handle into an owned fd usable as a child's stdio.
trait TryCloneHandle {
    fn try_clone_handle(&self) -> std::io::Result<std::os::fd::OwnedFd>;
}

impl<T: std::os::fd::AsFd> TryCloneHandle for T {
    fn try_clone_handle(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        self.as_fd().try_clone_to_owned()
    }
}
