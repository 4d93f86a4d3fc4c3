//! Launch mode: start a command in its own process group, find its Python process, and stop
//! the whole group when done (also when hptop errs out: see `Drop`).

use std::process::{Child, Command, ExitStatus, Stdio};
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
}

/// How long to wait for the command's Python interpreter to appear.
const PYTHON_WAIT: Duration = Duration::from_secs(10);
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
        Self::spawn_with(argv, stdout, Stdio::inherit())
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
        Self::spawn_with(argv, Stdio::from(file), Stdio::from(copy))
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
        })
    }

    /// Waits until the command runs Python: the command itself once it has exec'd the
    /// interpreter, or its only Python descendant (a shell or a pyenv shim in between).
    ///
    /// # Errors
    /// `Launch` when it exits first or no Python process appears in time.
    pub fn python_pid(&mut self) -> Result<u32, HptopError> {
        let pid = self.child.id();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
                return Err(self.launch_error(format!(
                    "it exited ({status}) and no Python ran: it is not a Python program"
                )));
            }
            if discover::python_guess(pid).is_some() && exec_done(pid) {
                return Ok(pid);
            }
            if let [only] = discover::python_descendants(pid)[..] {
                if exec_done(only) {
                    return Ok(only);
                }
            }
            if start.elapsed() > PYTHON_WAIT {
                return Err(self.launch_error(format!(
                    "no Python process appeared within {}s",
                    PYTHON_WAIT.as_secs()
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
