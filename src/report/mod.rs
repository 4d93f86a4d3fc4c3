//! Snapshot -> text or JSON. Reads only `model::snapshot` and `fmt`.

pub mod dump;
pub mod json;
pub mod pprof;
pub mod ps;
pub mod slices;
pub mod stacks;
pub mod tasks;
pub mod text;

use crate::model::functions::Counter;

/// Output format of `report`, `dump` and `ps`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Text,
    /// Machine-readable JSON.
    Json,
}

/// Stack outputs of `hptop report` (flame graphs and their input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackFormat {
    /// Folded stacks: `frame;frame;frame COUNT` lines (flamegraph.pl, inferno, Pyroscope).
    Collapsed,
    /// An interactive SVG flame graph (inferno).
    Flamegraph,
    /// speedscope's file format: one sampled profile per thread.
    Speedscope,
    /// pprof's gzipped `profile.proto`, every figure a sample type.
    Pprof,
}

impl StackFormat {
    /// Binary output, not for a terminal.
    pub fn is_binary(self) -> bool {
        self == StackFormat::Pprof
    }
}

/// What a stack's width counts in stack outputs: samples, or one of the kernel counters
/// credited to stacks (the model's one list of them, [`Counter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weight {
    /// Samples, as the mode counts them.
    #[default]
    Samples,
    /// A credited counter (CPU in microseconds, I/O in bytes).
    Counter(Counter),
}

impl Weight {
    /// Every weight, samples first, in the counters' display order.
    pub fn all() -> impl Iterator<Item = Weight> {
        std::iter::once(Weight::Samples).chain(Counter::ALL.into_iter().map(Weight::Counter))
    }

    /// The name `--weight` takes.
    pub fn name(self) -> &'static str {
        match self {
            Weight::Samples => "samples",
            Weight::Counter(c) => c.arg_name(),
        }
    }

    /// The weight `--weight NAME` names.
    pub fn named(name: &str) -> Option<Weight> {
        Weight::all().find(|w| w.name() == name)
    }
}

/// A stack output as asked.
#[derive(Debug, Clone, Copy)]
pub struct StackOutput {
    /// Which output.
    pub format: StackFormat,
    /// What a stack's width counts.
    pub weight: Weight,
    /// Each thread (and with several processes, each process) is a root; false merges them.
    pub by_thread: bool,
    /// Frames are lines: `func (file:line)`, the line being executed (pprof always keeps
    /// lines, as its Locations).
    pub lines: bool,
}

/// What a report covers besides the snapshot: when and how it was taken.
#[derive(Debug, Clone, Default)]
pub struct ReportHeader {
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// Requested sampling rate.
    pub rate_hz: f64,
    /// hptop's own CPU time (user + system) while reporting, in seconds.
    pub hptop_cpu_s: f64,
    /// Functions were counted with idle threads included.
    pub include_idle: bool,
    /// What function shares count.
    pub mode: crate::model::snapshot::Mode,
    /// The JSON report carries whole stacks (`--stacks`).
    pub stacks: bool,
}
