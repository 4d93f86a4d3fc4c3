//! One short file per mode, each wiring collect -> model -> sink.

pub mod diff;
pub mod dump;
pub mod live;
pub mod pick;
pub mod player;
pub mod ps;
pub mod record;
pub mod replay;
pub mod report;
pub mod serve;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::HptopError;
use crate::report::Format;
use crate::session::{SamplingOptions, Target};

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
        Mode::Serve(options) => serve::run(&options),
    }
}
