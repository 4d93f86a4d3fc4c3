//! One short file per mode, each wiring collect -> model -> sink.

pub mod diff;
pub mod dump;
pub mod launch;
pub mod live;
pub mod output;
pub mod pick;
pub mod player;
pub mod ps;
pub mod record;
pub mod replay;
pub mod report;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::collect::{SamplerOptions, TargetInfo};
use crate::error::HptopError;
use crate::model::SessionMeta;
use crate::report::Format;
use launch::Launched;

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

/// A window of a recording to report on.
#[derive(Debug, Clone)]
pub struct InputWindow {
    /// The recording.
    pub path: PathBuf,
    /// Start (default: the recording's first tick).
    pub from: Option<crate::record::window::TimeSpec>,
    /// End (default: its last tick).
    pub to: Option<crate::record::window::TimeSpec>,
}

/// Options of `hptop record`.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// What to record.
    pub target: Target,
    /// How to sample (`record` is set).
    pub sampling: SamplingOptions,
    /// How long (`None`: until the target exits or a signal).
    pub duration: Option<Duration>,
}

/// Options of `hptop replay`.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The recording.
    pub path: PathBuf,
    /// What function shares count.
    pub mode: crate::model::snapshot::Mode,
}

/// Options of `hptop report`.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// What to inspect.
    pub target: Target,
    /// How to sample.
    pub sampling: SamplingOptions,
    /// Report window.
    pub duration: Duration,
    /// Output format.
    pub format: Format,
    /// A stack output (collapsed, flame graph) instead of text or JSON.
    pub stacks: Option<crate::report::StackOutput>,
    /// The JSON report carries whole stacks (`--stacks`).
    pub json_stacks: bool,
    /// Write one report per period (`--every`), until the duration, the exit or a signal.
    pub every: Option<Duration>,
    /// Output file (standard output when `None`).
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    pub force: bool,
    /// Report on a recording's window instead of sampling (`--input`).
    pub input: Option<InputWindow>,
}

/// Options of `hptop dump`.
#[derive(Debug, Clone, Copy)]
pub struct DumpOptions {
    /// Process to dump.
    pub pid: u32,
    /// Pause the target while reading.
    pub blocking: bool,
    /// Output format.
    pub format: Format,
}

/// Options of `hptop ps`.
#[derive(Debug, Clone, Copy)]
pub struct PsOptions {
    /// Output format.
    pub format: Format,
}

/// The mode the command line asked for.
#[derive(Debug, Clone)]
pub enum Mode {
    /// The live TUI.
    Live {
        /// What to inspect.
        target: Target,
        /// How to sample.
        sampling: SamplingOptions,
    },
    /// `hptop report`.
    Report(ReportOptions),
    /// `hptop dump`.
    Dump(DumpOptions),
    /// `hptop ps`.
    Ps(PsOptions),
    /// `hptop record`.
    Record(RecordOptions),
    /// `hptop replay`.
    Replay(ReplayOptions),
    /// `hptop diff`.
    Diff(diff::DiffOptions),
    /// `hptop serve`.
    Serve(crate::serve::ServeOptions),
}

/// Runs a mode.
///
/// # Errors
/// A typed error with its fix.
pub fn run(mode: Mode) -> Result<(), HptopError> {
    match mode {
        Mode::Live { target, sampling } => live::run(target, &sampling),
        Mode::Report(options) => report::run(&options),
        Mode::Dump(options) => dump::run(options),
        Mode::Ps(options) => ps::run(options),
        Mode::Record(options) => record::run(&options),
        Mode::Replay(options) => replay::run(&options),
        Mode::Diff(options) => diff::run(&options),
        Mode::Serve(options) => crate::serve::run(&options),
    }
}

/// Attach attempts for a freshly launched interpreter (20 ms apart): it may still be starting.
const LAUNCH_ATTACH_RETRIES: u64 = 100;

/// The process to sample: the PID given (or, when that is a wrapper such as a shell or
/// `uv run` with exactly one Python descendant, that one, with a notice saying so), or the
/// Python process of the command launched with `launch` (which the caller must stop).
fn resolve_target(
    target: &Target,
    launch: impl FnOnce(&[String]) -> Result<Launched, HptopError>,
) -> Result<Resolved, HptopError> {
    match target {
        Target::Pid(pid) => Ok(resolve_pid(*pid)),
        Target::Launch(argv) => {
            let mut child = launch(argv)?;
            let pid = child.python_pid()?;
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
struct Resolved {
    pid: u32,
    launched: Option<Launched>,
    /// Said to the user when the PID given was a wrapper.
    notice: Option<String>,
}

/// `pid`, or its only Python descendant when `pid` is a launcher (a shell, sudo, `uv run`, a
/// pyenv shim: see `ProcessInfo::is_wrapper`) and not Python itself. Anything else (not
/// Python and no or several Python descendants) is left to the sampler's checks, whose error
/// lists the candidates.
fn resolve_pid(pid: u32) -> Resolved {
    use crate::collect::discover::{python_descendants, python_guess, ProcessInfo};
    let plain = Resolved {
        pid,
        launched: None,
        notice: None,
    };
    let Some(info) = ProcessInfo::read(pid) else {
        return plain;
    };
    // Only a launcher stands for its child: `--pid 1` must not pick some Python below init.
    if info.is_zombie() || python_guess(pid).is_some() || !info.is_wrapper() {
        return plain;
    }
    match python_descendants(pid)[..] {
        [only] => Resolved {
            pid: only,
            launched: None,
            notice: Some(format!(
                "PID {pid} ({}) is not Python; inspecting its Python child PID {only} ({})",
                info.command(),
                ProcessInfo::read(only).map_or_else(String::new, |c| c.command()),
            )),
        },
        _ => plain,
    }
}

/// Sampler options for `pid` from the user's sampling options; a launched interpreter gets
/// more attach attempts.
/// Resolves the target of a headless mode (report, record), launching a command with its
/// output passed to standard error (or `--log`), and starts sampling it.
///
/// # Errors
/// A bad target, a launch failure, or a process that cannot be attached.
fn start_headless(
    target: &Target,
    sampling: &SamplingOptions,
) -> Result<(Option<Launched>, crate::collect::Sampler), HptopError> {
    let log = sampling.log.clone();
    let resolved = resolve_target(target, |argv| match &log {
        Some(path) => Launched::spawn_logged(argv, path),
        None => Launched::spawn(argv),
    })?;
    if let Some(notice) = &resolved.notice {
        eprintln!("hptop: {notice}");
    }
    let launched = resolved.launched;
    let options = sampler_options(resolved.pid, sampling, launched.is_some());
    let sampler = crate::collect::Sampler::start(&options)?;
    Ok((launched, sampler))
}

pub(crate) fn sampler_options(
    pid: u32,
    sampling: &SamplingOptions,
    launched: bool,
) -> SamplerOptions {
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
pub(crate) fn session_meta(target: &TargetInfo) -> SessionMeta {
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
fn family_event(family: &mut crate::model::family::Family, event: crate::collect::SamplerEvent) {
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

/// Writes `text` to `path`, or to standard output (a closed pipe is not an error).
fn write_output(bytes: &[u8]) -> Result<(), HptopError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(HptopError::Output {
            path: "standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// hptop's own CPU time so far (user + system, all threads), in seconds.
pub(crate) fn own_cpu_s() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        secs(u.user_time()) + secs(u.system_time())
    })
}
