//! The session layer beneath every mode: what to inspect and how (the user's options),
//! resolving the target (a PID, a wrapper's Python child, a launched command), starting the
//! sampler, folding its events into a family, and hptop's own cost. Modes wire this to
//! their sinks; nothing here knows about a terminal or a report format.

pub mod launch;
pub mod output;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::collect::{SamplerOptions, TargetInfo};
use crate::error::HptopError;
use crate::model::SessionMeta;
use launch::Launched;
pub use output::write_output;

/// What to inspect.
#[derive(Debug, Clone)]
pub enum Target {
    /// A running process.
    Pid(u32),
    /// A command to launch (program and arguments).
    Launch(Vec<String>),
    /// None given: let the user pick one of the Python processes (live view only).
    Pick,
}

/// How to sample, as the user asked.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent command-line flags"
)]
pub struct SamplingOptions {
    /// Ticks per second.
    pub rate_hz: f64,
    /// Pause the target per sample.
    pub blocking: bool,
    /// Count idle threads in function figures (`--idle`, the same as `--mode wall`).
    pub include_idle: bool,
    /// What function shares count.
    pub mode: crate::model::snapshot::Mode,
    /// Native frames.
    pub native: bool,
    /// Stacks rooted at asyncio tasks (`--async`).
    pub async_stacks: bool,
    /// Follow Python descendants.
    pub subprocesses: bool,
    /// Where a launched command's output goes (`None`: the mode's default).
    pub log: Option<PathBuf>,
    /// Record the samples too (`--record`, `hptop record`).
    pub record: Option<RecordTo>,
}

/// Where and how to record.
#[derive(Debug, Clone)]
pub struct RecordTo {
    /// The recording file.
    pub path: PathBuf,
    /// Keep it within this many bytes, dropping the oldest segments.
    pub max_size: Option<u64>,
    /// Replace an existing file.
    pub force: bool,
}

/// Attach attempts for a freshly launched interpreter (20 ms apart): it may still be starting.
const LAUNCH_ATTACH_RETRIES: u64 = 100;

/// The process to sample: the PID given (or, when that is a wrapper such as a shell or
/// `uv run` with exactly one Python descendant, that one, with a notice saying so), or the
/// Python process of the command launched with `launch` (which the caller must stop).
///
/// # Errors
/// A launch failure, or no target named.
pub fn resolve_target(
    target: &Target,
    within: Option<Duration>,
    launch: impl FnOnce(&[String]) -> Result<Launched, HptopError>,
) -> Result<Resolved, HptopError> {
    match target {
        Target::Pid(pid) => resolve_pid(*pid, within),
        Target::Launch(argv) => {
            let mut child = launch(argv)?;
            let pid = child.python_pid(within)?;
            Ok(Resolved {
                pid,
                launched: Some(child),
                notice: None,
            })
        }
        Target::Pick => Err(HptopError::Usage(
            "name a target: --pid PID, or a command to launch after `--`".into(),
        )),
    }
}

/// The target once resolved.
pub struct Resolved {
    /// The process to sample.
    pub pid: u32,
    /// The command launched, if any.
    pub launched: Option<Launched>,
    /// Said to the user when the PID given was a wrapper.
    pub notice: Option<String>,
}

/// How long `--pid LAUNCHER` waits for the launcher's Python process to start (py-spy waits
/// too: `bash -c "sleep 1; python3 app.py"` is attached once its Python runs).
const LAUNCHER_WAIT: Duration = Duration::from_secs(10);

/// `pid`, or its only Python descendant when `pid` is a launcher (a shell, sudo, `uv run`, a
/// pyenv shim: see `ProcessInfo::is_wrapper`) and not Python itself. A launcher with no
/// Python descendant yet is waited for, up to [`LAUNCHER_WAIT`] (and `within`), saying so on
/// standard error. Anything else (not Python and not a launcher, or several Python
/// descendants) is left to the sampler's checks, whose error lists the candidates.
///
/// # Errors
/// `NoPythonChild` when the launcher exits, or the wait ends, before a Python process runs.
pub fn resolve_pid(pid: u32, within: Option<Duration>) -> Result<Resolved, HptopError> {
    use crate::collect::discover::{python_guess, ProcessInfo};
    let plain = Resolved {
        pid,
        launched: None,
        notice: None,
    };
    let Some(info) = ProcessInfo::read(pid) else {
        return Ok(plain);
    };
    // Only a launcher stands for its child: `--pid 1` must not pick some Python below init.
    if info.is_zombie() || python_guess(pid).is_some() || !info.is_wrapper() {
        return Ok(plain);
    }
    let wait = within.map_or(LAUNCHER_WAIT, |d| d.min(LAUNCHER_WAIT));
    let start = Instant::now();
    let mut told = false;
    loop {
        match launch::python_of(pid) {
            launch::PythonOf::Child(only) => {
                return Ok(Resolved {
                    pid: only,
                    launched: None,
                    notice: Some(format!(
                        "PID {pid} ({}) is not Python; inspecting its Python child PID {only} ({})",
                        info.command(),
                        ProcessInfo::read(only).map_or_else(String::new, |c| c.command()),
                    )),
                });
            }
            // Several (the sampler's error lists them), or the launcher exec'd Python itself
            // (`sh -c "sleep 1; exec python3 app.py"`).
            launch::PythonOf::Several | launch::PythonOf::Itself => return Ok(plain),
            launch::PythonOf::NotYet => {}
        }
        let no_child = |outcome: String| HptopError::NoPythonChild {
            pid,
            command: info.command(),
            outcome,
        };
        if ProcessInfo::read(pid).is_none_or(|p| p.is_zombie()) {
            return Err(no_child(format!(
                "it exited after {} without starting a Python process",
                crate::fmt::seconds(start.elapsed().as_secs_f64())
            )));
        }
        if start.elapsed() >= wait {
            return Err(no_child(format!(
                "no Python process started below it within {}",
                crate::fmt::seconds(wait.as_secs_f64())
            )));
        }
        if !told {
            told = true;
            eprintln!(
                "hptop: PID {pid} ({}) is a launcher with no Python process yet: waiting up to {} for one",
                info.command(),
                crate::fmt::seconds(wait.as_secs_f64())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Resolves the target of a headless mode (report, record), launching a command with its
/// output passed to standard error (or `--log`), and starts sampling it.
///
/// # Errors
/// A bad target, a launch failure, or a process that cannot be attached.
pub fn start_headless(
    target: &Target,
    sampling: &SamplingOptions,
    within: Option<Duration>,
) -> Result<(Option<Launched>, crate::collect::Sampler), HptopError> {
    let log = sampling.log.clone();
    let resolved = resolve_target(target, within, |argv| match &log {
        Some(path) => Launched::spawn_logged(argv, path),
        None => Launched::spawn(argv),
    })?;
    if let Some(notice) = &resolved.notice {
        eprintln!("hptop: {notice}");
    }
    let mut launched = resolved.launched;
    let options = sampler_options(resolved.pid, sampling, launched.is_some());
    let sampler = start_sampler(&options, launched.as_mut())?;
    Ok((launched, sampler))
}

/// Starts the sampler; when that fails because the launched command has already failed,
/// says so, with its status and last lines of standard error, instead of "gone" or "zombie".
///
/// # Errors
/// The sampler's, or the command's failure.
pub fn start_sampler(
    options: &SamplerOptions,
    launched: Option<&mut Launched>,
) -> Result<crate::collect::Sampler, HptopError> {
    crate::collect::Sampler::start(options).map_err(|e| {
        launched
            .and_then(|child| child.early_failure(true))
            .unwrap_or(e)
    })
}

/// Sampler options for `pid` from the user's sampling options; a launched interpreter gets
/// more attach attempts.
pub fn sampler_options(pid: u32, sampling: &SamplingOptions, launched: bool) -> SamplerOptions {
    let defaults = SamplerOptions::new(pid, sampling.rate_hz);
    SamplerOptions {
        blocking: sampling.blocking,
        native: sampling.native,
        async_stacks: sampling.async_stacks,
        attach_retries: if launched {
            LAUNCH_ATTACH_RETRIES
        } else {
            defaults.attach_retries
        },
        subprocesses: sampling.subprocesses,
        ..defaults
    }
}

/// The model's view of what the target is.
pub fn session_meta(target: &TargetInfo) -> SessionMeta {
    SessionMeta {
        pid: target.pid,
        ppid: target.ppid,
        cmdline: target.cmdline.clone(),
        python_version: target.python_version.clone(),
        start_ticks: target.start_ticks,
    }
}

/// Folds one sampler event into the family (exits and panics are the caller's to handle;
/// an exited process is marked by its last tick).
pub fn family_event(
    family: &mut crate::model::family::Family,
    event: crate::collect::SamplerEvent,
) {
    use crate::collect::SamplerEvent;
    match event {
        SamplerEvent::Attached(info) => family.attach(session_meta(&info)),
        SamplerEvent::Ticks(ticks) => {
            for tick in &ticks {
                family.ingest(tick);
            }
        }
        SamplerEvent::Exited(_) | SamplerEvent::Panicked(..) => {}
    }
}

/// hptop's own CPU time so far (user + system, all threads), in seconds.
pub fn own_cpu_s() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        secs(u.user_time()) + secs(u.system_time())
    })
}

/// hptop's own resident set size.
pub fn own_rss_bytes() -> u64 {
    let status = std::fs::read("/proc/self/status").unwrap_or_default();
    crate::collect::procfs::field_value(&status, "VmRSS").unwrap_or(0) * 1024
}
