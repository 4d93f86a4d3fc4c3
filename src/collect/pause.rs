//! The `--blocking` pause, held by a helper process so that no stop of hptop can leave the
//! target frozen.
//!
//! py-spy's own blocking mode stops every thread of the target with ptrace from inside hptop;
//! if hptop is then stopped (`kill -STOP`, a debugger, the OOM killer's freeze), the target
//! stays frozen until hptop runs again. Here a small helper (hptop itself, re-run as
//! `hptop __pause-helper PID HPTOP_PID`) is the tracer: in its own process group (a terminal's ^Z does
//! not reach it), killed when hptop's sampler thread ends (`PR_SET_PDEATHSIG`; the kernel
//! detaches and resumes a dead tracer's tracees), and it resumes the target by itself once a
//! deadline passes, whatever hptop does meanwhile.
//!
//! Protocol over the helper's stdin/stdout, one request at a time:
//! - hptop writes `P` and the deadline in ms (u32, little-endian); the helper stops every
//!   thread and answers `A`, or `E` with a length-prefixed (u16) message when it cannot;
//! - hptop reads the stacks and writes `R`; the helper resumes the target and answers `D`,
//!   or `L` when the deadline had already resumed it (that read was not paused throughout).
//!
//! The deadline counts from when every thread is stopped; stopping them can itself take long
//! on an overloaded machine (each thread must run to reach its stop). The stopping phase is
//! bounded too: every thread is interrupted at once, and if they are not all stopped within
//! the deadline (at least [`STOP_PHASE_MIN`]) the helper gives the pause up and ends, which
//! releases every thread it had seized (`PTRACE_SEIZE` sends no `SIGSTOP`, so none is left
//! behind). A watchdog thread in the helper bounds the whole pause as a last resort: past
//! [`WATCHDOG_GRACE`] beyond the deadline it kills the helper, and the kernel resumes a dead
//! tracer's tracees. hptop then starts a new helper for the next pause.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The hidden command line word that runs the helper.
pub const HELPER_ARG: &str = "__pause-helper";

/// Shortest deadline: a pause of a few threads takes well under a millisecond.
const MIN_DEADLINE: Duration = Duration::from_millis(20);
/// Longest deadline, whatever the reads took: a read that needs more (thousands of threads
/// on a loaded machine) counts as failed (its pause ended first) rather than freeze the target.
pub const MAX_DEADLINE: Duration = Duration::from_secs(1);
/// How much longer than its deadline a whole pause (stopping the threads included) may last
/// before the helper's watchdog kills it (see the module doc).
pub const WATCHDOG_GRACE: Duration = Duration::from_secs(1);
/// Least time the helper gives every thread to stop before it gives the pause up and
/// releases them (a loaded machine may take tens of ms to run each thread to its stop).
const STOP_PHASE_MIN: Duration = Duration::from_millis(200);
/// How often the watchdog looks.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(20);

/// hptop's end of a running helper.
pub struct Pauser {
    pid: u32,
    child: Child,
    to: ChildStdin,
    from: ChildStdout,
    /// Longest recent read (decays by a tenth per read); the deadline is a margin over it.
    longest: Duration,
}

/// What a finished pause says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// The target stayed paused for the whole read.
    InTime,
    /// The deadline resumed the target before the read ended.
    Late,
}

impl Pauser {
    /// Starts the helper for `pid`.
    ///
    /// # Errors
    /// Why the helper could not be started.
    pub fn start(pid: u32) -> std::io::Result<Self> {
        let (child, to, from) = spawn_helper(pid)?;
        Ok(Self {
            pid,
            child,
            to,
            from,
            longest: Duration::ZERO,
        })
    }

    /// Pauses the target; the helper resumes it by itself after a deadline a margin over
    /// the longest read so far.
    ///
    /// # Errors
    /// The helper's reason (a thread could not be stopped) or a broken pipe.
    pub fn pause(&mut self) -> Result<Instant, String> {
        let deadline = (MIN_DEADLINE + self.longest * 2).min(MAX_DEADLINE);
        let ms = u32::try_from(deadline.as_millis()).unwrap_or(u32::MAX);
        let mut request = [b'P', 0, 0, 0, 0];
        request[1..].copy_from_slice(&ms.to_le_bytes());
        if self.to.write_all(&request).is_err() {
            // The helper is gone (killed by its watchdog, or by anyone: its end of the pipe
            // closed with it): a new one serves this pause.
            self.restart().map_err(helper_error)?;
            self.to.write_all(&request).map_err(helper_error)?;
        }
        let mut answer = [0u8; 1];
        self.from.read_exact(&mut answer).map_err(helper_error)?;
        match answer[0] {
            b'A' => Ok(Instant::now()),
            b'E' => {
                let mut len = [0u8; 2];
                self.from.read_exact(&mut len).map_err(helper_error)?;
                let mut message = vec![0; usize::from(u16::from_le_bytes(len))];
                self.from.read_exact(&mut message).map_err(helper_error)?;
                // A helper that gave a pause up has ended (that released the threads): the next
                // pause gets a new one.
                if message.ends_with(b"all released") {
                    self.restart().map_err(helper_error)?;
                }
                Err(format!(
                    "Failed to suspend process: {}",
                    String::from_utf8_lossy(&message)
                ))
            }
            other => Err(format!("pause helper answered {other:#x}")),
        }
    }

    /// Resumes the target paused since `since`.
    ///
    /// # Errors
    /// A broken pipe (the helper is gone: the kernel resumed the target then).
    pub fn resume(&mut self, since: Instant) -> Result<Resumed, String> {
        // One slow read (hptop descheduled on a loaded machine) should not lengthen every
        // later pause for good: the reference decays.
        self.longest = since.elapsed().max(self.longest.mul_f64(0.9));
        self.to.write_all(b"R").map_err(helper_error)?;
        let mut answer = [0u8; 1];
        self.from.read_exact(&mut answer).map_err(helper_error)?;
        Ok(if answer[0] == b'L' {
            Resumed::Late
        } else {
            Resumed::InTime
        })
    }

    /// Replaces a helper that is gone.
    fn restart(&mut self) -> std::io::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, to, from) = spawn_helper(self.pid)?;
        (self.child, self.to, self.from) = (child, to, from);
        Ok(())
    }
}

/// Starts `hptop __pause-helper PID HPTOP_PID` in a process group of its own.
fn spawn_helper(pid: u32) -> std::io::Result<(Child, ChildStdin, ChildStdout)> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .arg(HELPER_ARG)
        .arg(pid.to_string())
        .arg(std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn()?;
    let (Some(to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(std::io::Error::other("helper pipes missing"));
    };
    Ok((child, to, from))
}

impl Drop for Pauser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A broken pipe to the helper, as a read error.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the shape map_err passes the error in"
)]
fn helper_error(e: std::io::Error) -> String {
    format!("pause helper: {e}")
}

/// The helper's main: serves pauses of `pid` until hptop (`parent`) closes the pipe or dies.
pub fn helper_main(pid: &str, parent: &str) -> i32 {
    let (Ok(pid), Ok(parent)) = (pid.parse::<i32>(), parent.parse::<i32>()) else {
        return 2;
    };
    // Killed when hptop's thread that started it ends; if hptop is already gone, end now.
    if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err()
        || nix::unistd::getppid().as_raw() != parent
    {
        return 1;
    }
    let watchdog = Watchdog::start();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut request = [0u8; 5];
    loop {
        if stdin.read_exact(&mut request[..1]).is_err() {
            return 0;
        }
        match request[0] {
            b'P' => {
                if stdin.read_exact(&mut request[1..]).is_err() {
                    return 0;
                }
                let ms = u32::from_le_bytes([request[1], request[2], request[3], request[4]]);
                let deadline = Duration::from_millis(u64::from(ms));
                watchdog.arm(deadline + WATCHDOG_GRACE);
                let lock = match Stopped::all(pid, deadline.max(STOP_PHASE_MIN)) {
                    Ok(lock) => lock,
                    // Threads that stopped are seized, and those not yet stopped cannot be
                    // detached while they run: ending the helper releases them all.
                    Err(StopError::Late(n)) => {
                        let text = format!(
                            "{n} thread(s) did not stop within {} ms; all released",
                            deadline.as_millis()
                        );
                        let bytes = text.as_bytes();
                        let len = u16::try_from(bytes.len()).unwrap_or(0).to_le_bytes();
                        let _ = stdout.write_all(&[b'E', len[0], len[1]]);
                        let _ = stdout.write_all(bytes);
                        let _ = stdout.flush();
                        return 3;
                    }
                    Err(StopError::Failed(e)) => {
                        watchdog.disarm();
                        let text = e;
                        let bytes = &text.as_bytes()[..text.len().min(1000)];
                        let len = u16::try_from(bytes.len()).unwrap_or(0).to_le_bytes();
                        let _ = stdout.write_all(&[b'E', len[0], len[1]]);
                        let _ = stdout.write_all(bytes);
                        let _ = stdout.flush();
                        continue;
                    }
                };
                if stdout
                    .write_all(b"A")
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return 0;
                }
                let in_time = wait_readable(&stdin, deadline);
                drop(lock); // resumes every thread
                watchdog.disarm();
                // Late: the resume request came (or hptop went) after the deadline.
                if stdin.read_exact(&mut request[..1]).is_err() {
                    return 0;
                }
                let _ = stdout.write_all(if in_time { b"D" } else { b"L" });
                let _ = stdout.flush();
            }
            _ => return 2,
        }
    }
}

/// Every thread of a process, stopped by this helper (`PTRACE_SEIZE` + `PTRACE_INTERRUPT`: no
/// `SIGSTOP` is ever sent, so a helper that dies leaves no stop behind); resumed when dropped.
struct Stopped {
    threads: Vec<nix::unistd::Pid>,
}

/// Why the threads could not all be stopped.
enum StopError {
    /// This many were still running at the deadline (the stopping phase is bounded too).
    Late(usize),
    /// A thread could not be seized (released again).
    Failed(String),
}

impl Stopped {
    /// Seizes and interrupts every thread at once (they stop in parallel, not one after
    /// another while the first ones wait stopped), then waits for their stops until `within`.
    fn all(pid: i32, within: Duration) -> Result<Self, StopError> {
        use nix::sys::ptrace;
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        use nix::unistd::Pid;
        let until = Instant::now() + within;
        let tids: Vec<Pid> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map_err(|e| StopError::Failed(e.to_string()))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .map(Pid::from_raw)
            .collect();
        let mut seized = Vec::with_capacity(tids.len());
        for tid in tids {
            match ptrace::seize(tid, ptrace::Options::PTRACE_O_TRACEEXIT)
                .and_then(|()| ptrace::interrupt(tid))
            {
                Ok(()) => seized.push(tid),
                // Exited since the listing: nothing to stop.
                Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => {
                    // Those seized may still be running: only the helper's end frees them.
                    return Err(if seized.is_empty() {
                        StopError::Failed(format!("cannot stop thread {tid}: {e}"))
                    } else {
                        StopError::Late(seized.len())
                    });
                }
            }
        }
        let mut running: Vec<Pid> = seized.clone();
        while !running.is_empty() {
            let mut still = Vec::with_capacity(running.len());
            for tid in running {
                let flags = WaitPidFlag::WNOHANG | WaitPidFlag::__WALL;
                match waitpid(tid, Some(flags)) {
                    Ok(WaitStatus::StillAlive) => still.push(tid),
                    // Another signal arrived first: give it back, and wait for our stop.
                    Ok(WaitStatus::Stopped(_, signal)) => {
                        let _ = ptrace::cont(tid, signal);
                        still.push(tid);
                    }
                    // A stop (the interrupt's, or the thread exiting): held.
                    Ok(_) | Err(_) => {}
                }
            }
            running = still;
            if running.is_empty() {
                break;
            }
            if Instant::now() >= until {
                return Err(StopError::Late(running.len()));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        Ok(Self { threads: seized })
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &tid in &self.threads {
            let _ = nix::sys::ptrace::detach(tid, None);
        }
    }
}

/// The helper's watchdog: kills the helper when a pause outlasts the time it was armed with.
struct Watchdog {
    /// When the armed pause must be over, in ms since `epoch`; 0 when none is held.
    due_ms: Arc<AtomicU64>,
    epoch: Instant,
}

impl Watchdog {
    fn start() -> Self {
        let due_ms = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let watched = Arc::clone(&due_ms);
        std::thread::spawn(move || loop {
            std::thread::sleep(WATCHDOG_PERIOD);
            let due = watched.load(Ordering::Acquire);
            if due != 0 && millis_since(epoch) > due {
                // The kernel detaches a dead tracer's tracees and they run again.
                let _ = nix::sys::signal::kill(
                    nix::unistd::getpid(),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        });
        Self { due_ms, epoch }
    }

    fn arm(&self, within: Duration) {
        let due = millis_since(self.epoch)
            .saturating_add(u64::try_from(within.as_millis()).unwrap_or(u64::MAX))
            .max(1);
        self.due_ms.store(due, Ordering::Release);
    }

    fn disarm(&self) {
        self.due_ms.store(0, Ordering::Release);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Waits until `input` has data, at most `timeout`.
fn wait_readable(input: &impl AsFd, timeout: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => return false,
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}
