//! Plain rows ready to draw or serialise, built from a `Session` by `Session::snapshot`.
//! Every figure covers the session window (first tick to last tick) unless its doc says so.

use serde::Serialize;

use super::functions::Credited;
use super::memory::Growth;
use super::timeline::{MemorySplit, TimelinePoint};
use crate::collect::tick::{Frame, GilState, OsState, SmapsRollup};

/// What a function's share counts (`--mode`, named like the peers' modes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// On-CPU time: each thread's `schedstat` run time, credited to the stack it ran.
    /// Runnable threads waiting for a CPU count nothing, so an overloaded machine does not
    /// inflate whatever happened to be runnable (the default).
    #[default]
    Cpu,
    /// Samples of threads in kernel state R (py-spy's "active", austin's default): comparable
    /// with py-spy top; counts runnable-but-waiting as running.
    Samples,
    /// All samples, idle threads too (wall-clock time; `--idle`).
    Wall,
    /// Samples of the thread holding the GIL (py-spy's `--gil`, `CPython`'s `--mode gil`): what
    /// runs Python code, the most accurate on thread pools; native code that releases the GIL
    /// counts nothing.
    Gil,
}

impl Mode {
    /// The name on the command line, in the header and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Samples => "samples",
            Self::Wall => "wall",
            Self::Gil => "gil",
        }
    }

    /// The next mode, for a key that cycles them.
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            Self::Cpu => Self::Samples,
            Self::Samples => Self::Gil,
            Self::Gil => Self::Wall,
            Self::Wall => Self::Cpu,
        }
    }
}

/// How to order function rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FunctionSort {
    /// Own share, descending (py-spy top's default).
    #[default]
    Own,
    /// Total share, descending.
    Total,
    /// Credited CPU seconds, descending.
    CpuTime,
    /// Function name, ascending.
    Name,
}

/// What a view asks of the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotQuery {
    /// Count idle thread-samples in function figures (sample counts; `Mode::Wall` sets it).
    pub include_idle: bool,
    /// What function shares count.
    pub mode: Mode,
    /// Order of function rows.
    pub sort: FunctionSort,
    /// At most this many function rows (all when `None`).
    pub limit: Option<usize>,
    /// Only this thread's samples (by OS tid) in function figures; lines stay process-wide.
    pub thread: Option<u32>,
    /// Only the samples in which its loop thread ran this asyncio task (by task id), like
    /// `thread` (and before it).
    pub task: Option<u64>,
    /// Whole stacks too (for flame graphs: costs a pass over every distinct stack).
    pub stacks: bool,
}

/// The view of every inspected process.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// One entry per process.
    pub processes: Vec<ProcessSnapshot>,
}

/// One process's figures.
#[derive(Debug, Clone, Default)]
pub struct ProcessSnapshot {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Command line.
    pub cmdline: Vec<String>,
    /// Interpreter version.
    pub python_version: String,
    /// Start time since boot in clock ticks (0 when unknown).
    pub start_ticks: u64,
    /// The process exited during the session.
    pub exited: bool,
    /// Window length: time from the first tick to the last, in seconds.
    pub duration_s: f64,
    /// Ticks whose stacks were read.
    pub samples: u64,
    /// Ticks whose stack read failed (the read raced with the target).
    pub sample_errors: u64,
    /// Stack reads that failed on the ticks just before the process exited (its memory was
    /// being torn down): not counted in `sample_errors`.
    pub exit_cut_reads: u64,
    /// The cause of the first failed read, as the reader gave it.
    pub first_sample_error: Option<String>,
    /// Thread-samples whose stack did not reach its thread's root (read while it changed,
    /// without `--blocking`): counted as read, so outer functions' total % reads low by up to
    /// this share.
    pub partial_stacks: u64,
    /// `partial_stacks` over all thread-samples with a Python stack, in percent.
    pub partial_stacks_percent: f64,
    /// Thread-samples whose stack was read again: the walk raced with the thread (its
    /// frames were not all live at one instant), so it was read once more (docs/figures.md).
    pub stacks_reread: u64,
    /// Thread-samples whose stack raced at every read: dropped, credited to no function.
    pub stacks_dropped: u64,
    /// `stacks_dropped` over the Python thread-samples read (kept and dropped), in percent.
    pub stacks_dropped_percent: f64,
    /// Python thread-samples read with the thread on a CPU: what `--mode cpu` shares are a
    /// sample of (docs/figures.md, "CPU credited to stacks seen on a CPU").
    pub on_cpu_stacks: u64,
    /// Deadlines skipped because a tick ran late.
    pub skipped_ticks: u64,
    /// Ticks per second achieved: (samples + errors - 1) / (duration - time paused).
    pub rate_hz: f64,
    /// Thread-samples counted in function percentages (active only unless `include_idle`).
    pub counted_samples: u64,
    /// Seconds one thread-sample stands for: duration / (ticks - 1).
    pub seconds_per_sample: f64,
    /// Process CPU time between the first and last whole-process reads (slow timer), divided
    /// by the time between them; 100 = one core busy.
    pub cpu_percent: f64,
    /// RSS at the last tick.
    pub rss_bytes: u64,
    /// Largest RSS seen at any tick of the window.
    pub rss_peak_bytes: u64,
    /// Swap at the last slow read.
    pub swap_bytes: u64,
    /// Memory split, PSS/USS, growth and the leak hint.
    pub memory: MemorySnapshot,
    /// Whole-process deltas over the window (`/proc/PID/stat`, `/proc/PID/io`).
    pub minor_faults: u64,
    /// See `minor_faults`.
    pub major_faults: u64,
    /// Bytes read from storage by the process over the window.
    pub read_bytes: u64,
    /// Bytes written to storage by the process over the window.
    pub write_bytes: u64,
    /// Sum over threads of their context-switch deltas (the kernel keeps no whole-process count).
    pub voluntary_ctxsw: u64,
    /// See `voluntary_ctxsw`.
    pub involuntary_ctxsw: u64,
    /// Share of samples in which some thread held the GIL, in percent.
    pub gil_held_percent: f64,
    /// Share of samples in which some thread was waiting for the GIL, in percent.
    pub gil_wanted_percent: f64,
    /// Of the time the process's threads wanted a CPU (on one, or runnable waiting for one),
    /// the share they spent waiting, over the window, from `schedstat`: Σ wait / Σ (run +
    /// wait). High on an overloaded machine; 0 without schedstat.
    pub runqueue_wait_percent: f64,
    /// The GIL state was located, so GIL waits and hand-offs are measured (else they read 0 /
    /// none: not measured).
    pub gil_located: bool,
    /// Mean time the GIL is held per hold, in milliseconds: the held share of time divided by
    /// hand-offs per second; `None` without hand-offs.
    pub gil_mean_hold_ms: Option<f64>,
    /// A plain-words reading of the GIL figures, when they are clear (see `model::verdict`).
    pub verdict: Option<String>,
    /// GIL hand-offs per second (the GIL's `switch_number` delta over the time between the
    /// first and last reads); `None` where the GIL state is not located.
    pub gil_handoffs_per_s: Option<f64>,
    /// Threads, Python ones first, then by tid.
    pub threads: Vec<ThreadRow>,
    /// Functions in the query's order.
    pub functions: Vec<FunctionRow>,
    /// Whole stacks, when the query asks for them.
    pub stacks: Vec<StackRow>,
    /// asyncio tasks as last listed, hottest first; `None` when no task list was read
    /// (Python before 3.14, or a program that never imported asyncio).
    pub tasks: Option<Vec<TaskRow>>,
    /// Tasks no longer listed (finished): how many, and their figures.
    pub tasks_finished: (u64, crate::model::tasks::TaskFigures),
    /// Time in garbage collection.
    pub gc: GcFigures,
    /// Per-second history, oldest first.
    pub timeline: Vec<TimelinePoint>,
}

/// A function in a whole stack (serialised as a JSON `stacks[].frames[]` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct StackFrame {
    /// Function name.
    pub name: String,
    /// Its file, short form when known.
    pub file: String,
    /// Its first line (`co_firstlineno`, the `def`); 0 when unknown.
    pub line: u32,
    /// The line being executed when sampled; 0 when unknown.
    pub sampled_line: u32,
}

impl StackFrame {
    /// The frame as stack exports name it: `func (file)`, or with `lines` the line being
    /// executed too, `func (file:line)`.
    pub fn label(&self, lines: bool) -> String {
        match (lines, self.file.is_empty()) {
            (_, true) => self.name.clone(),
            (true, false) => format!("{} ({}:{})", self.name, self.file, self.sampled_line),
            (false, false) => format!("{} ({})", self.name, self.file),
        }
    }
}

impl std::fmt::Display for StackFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label(false))
    }
}

/// One whole stack of one thread, for flame graphs: its samples (as the query's mode counts
/// them) and the counters credited to it. Serialised as the JSON report's `stacks[]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StackRow {
    /// The thread's OS tid.
    pub tid: u32,
    /// The thread's name (its latest), if it has one.
    pub thread: Option<String>,
    /// Functions, outermost first; empty for a thread's `(other stacks)`.
    pub frames: Vec<StackFrame>,
    /// Samples with exactly this stack.
    pub samples: u64,
    /// Counter deltas credited to it.
    pub credited: Credited,
}

/// Memory figures of a process beyond RSS.
#[derive(Debug, Clone, Default)]
pub struct MemorySnapshot {
    /// RSS split and swap at the last slow read.
    pub split: MemorySplit,
    /// Lifetime peak RSS the kernel recorded (`VmHWM`), before the window too.
    pub hwm_bytes: u64,
    /// PSS and USS at the last `smaps_rollup` read (`None`: not read, see `collect::smaps`).
    pub rollup: Option<SmapsRollup>,
    /// Seconds since that read.
    pub rollup_age_s: Option<f64>,
    /// RSS trend over the recent timeline (see `model::memory`).
    pub growth: Option<Growth>,
    /// When the growth is sustained (a leak hint): the functions credited the most minor
    /// faults over the window, the code that brought new pages in while RSS grew.
    pub leak_suspects: Vec<LeakSuspect>,
}

/// A function named by the leak hint (serialised as a JSON `leak_hint.suspects[]` entry).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LeakSuspect {
    /// Function name.
    pub name: String,
    /// Full file name.
    pub filename: String,
    /// Minor faults credited to it (innermost) over the window.
    pub minor_faults: f64,
    /// Its share of all credited minor faults, in percent.
    pub share_percent: f64,
}

/// One process of a family (the target and its followed descendants), for the workers pane.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerRow {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// The target itself (true) or a descendant.
    pub is_root: bool,
    /// Exited during the session.
    pub exited: bool,
    /// Kernel state of its main thread at the last tick (`X` once exited).
    pub state: char,
    /// CPU over the window; 100 = one core.
    pub cpu_percent: f64,
    /// RSS at the last read.
    pub rss_bytes: u64,
    /// Share of its samples in which some thread held the GIL.
    pub gil_held_percent: f64,
    /// Minor + major faults per second over the window.
    pub faults_per_s: f64,
    /// Voluntary + involuntary context switches per second over the window.
    pub ctxsw_per_s: f64,
    /// The function with the most own samples, if any.
    pub hottest: Option<String>,
    /// Far from its siblings' median CPU (see `model::family::stragglers`).
    pub straggler: Option<Straggler>,
}

/// How a worker stands out from its siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Straggler {
    /// Far less CPU than its siblings: starved, blocked, or stuck.
    Slow,
    /// Far more CPU than its siblings: a heavier share of the work.
    Busy,
}

/// Time in the cyclic garbage collector over the window (docs/figures.md, "Time in garbage
/// collection"): what the `<GC>` frame on top of collecting threads' stacks was credited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GcFigures {
    /// Of the thread-samples seen on a CPU (the thread ran during the read), the share inside
    /// a collection, percent; preempted samples are left out (they sit where the scheduler
    /// stopped the thread). The same basis as each thread's `gc_percent`.
    pub percent: f64,
    /// On-CPU seconds credited to `<GC>` (innermost).
    pub cpu_s: f64,
    /// Thread-samples taken inside a collection (on a CPU, holding the GIL).
    pub samples: u64,
    /// Of the process's `on_cpu_stacks`, those inside a collection: `percent`'s numerator,
    /// kept so that processes merge exactly.
    #[serde(skip)]
    pub seen_in_gc: u64,
}

/// One thread's figures. Serialised as the JSON report's `threads[]` (`hptop.report/1`):
/// the field order is the contract's; view-only fields are skipped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ThreadRow {
    /// OS thread id (0: a Python thread whose tid could not be resolved).
    pub tid: u32,
    /// Python thread name.
    pub name: Option<String>,
    /// Still running at the last tick.
    #[serde(skip)]
    pub alive: bool,
    /// A Python thread.
    #[serde(skip)]
    pub is_python: bool,
    /// Kernel state at the last tick it was seen.
    #[serde(skip)]
    pub state: OsState,
    /// GIL state at the last tick it was seen.
    #[serde(skip)]
    pub gil: GilState,
    /// Ticks at which its Python stack was read.
    pub samples: u64,
    /// Thread CPU time over the window divided by the window; 100 = one core. From
    /// `schedstat` (ns) where the kernel has it, else `stat`'s 10 ms ticks.
    pub cpu_percent: f64,
    /// Share of its samples in which it held the GIL.
    pub gil_held_percent: f64,
    /// Share of its samples in which it was blocked waiting for the GIL (a futex inside the GIL
    /// state). Measured on 3.7+; 0 until the GIL state is located (see `collect::gil`).
    pub gil_wait_percent: f64,
    /// Time runnable but waiting for a CPU (run-queue wait, `schedstat` field 2) over the
    /// window, divided by the window.
    pub runqueue_wait_percent: f64,
    /// Share of its samples in which it was off CPU (kernel state not R).
    pub idle_percent: f64,
    /// Share of its samples on CPU (or runnable) without the GIL: native code that released it.
    pub native_percent: f64,
    /// Share of its samples blocked on something other than the GIL: a lock, a queue, I/O.
    pub blocked_percent: f64,
    /// Share of its samples sleeping or polling (`sleep`, `select`, `poll`, `epoll`).
    pub sleep_percent: f64,
    /// Counter deltas over the window.
    pub minor_faults: u64,
    /// See `minor_faults`.
    pub major_faults: u64,
    /// See `minor_faults`.
    pub voluntary_ctxsw: u64,
    /// See `minor_faults`.
    pub involuntary_ctxsw: u64,
    /// See `minor_faults`.
    pub read_bytes: u64,
    /// See `minor_faults`.
    pub write_bytes: u64,
    /// Of its samples seen on a CPU, the share inside a garbage collection, percent.
    pub gc_percent: f64,
    /// Python stack at the last tick it was seen, innermost first.
    #[serde(skip)]
    pub stack: Vec<Frame>,
}

/// One function's figures. Serialised as the JSON report's `functions[]`: own counters
/// flattened, inclusive ones as `inclusive`, view-only fields skipped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FunctionRow {
    /// Function name.
    pub name: String,
    /// Full file name.
    pub filename: String,
    /// Its first line (`co_firstlineno`, the `def` line), 0 when unknown.
    #[serde(rename = "line")]
    pub first_line: u32,
    /// Short file name for display.
    #[serde(skip)]
    pub short_filename: Option<String>,
    /// Counted thread-samples where it was the innermost frame.
    pub own_samples: u64,
    /// Counted thread-samples where it was on the stack (once per stack).
    pub total_samples: u64,
    /// `own_samples` over `counted_samples`, in percent.
    pub own_percent: f64,
    /// `total_samples` over `counted_samples`, in percent.
    pub total_percent: f64,
    /// `own_samples` × `seconds_per_sample`.
    #[serde(skip)]
    pub own_s: f64,
    /// `total_samples` × `seconds_per_sample`.
    #[serde(skip)]
    pub total_s: f64,
    /// The line with the most total samples (then own), 0 when unknown.
    #[serde(skip)]
    pub hottest_line: u32,
    /// Counter deltas credited while it was the innermost frame.
    #[serde(flatten)]
    pub credited: Credited,
    /// Samples in which the GIL holder ran it while another thread waited for the GIL.
    pub gil_held_while_waited: u64,
    /// Counter deltas credited while it was anywhere on the stack (once per stack).
    #[serde(rename = "inclusive")]
    pub credited_total: Credited,
    /// Lines with samples, by total samples descending.
    pub lines: Vec<LineRow>,
}

impl FunctionRow {
    /// Where the function is, as views show it: `file:line` (short file name), or nothing for
    /// a function with no file (`<GC>`, the row of functions past the budget).
    pub fn location(&self, line: u32) -> String {
        let file = self.short_filename.as_deref().unwrap_or(&self.filename);
        if file.is_empty() {
            String::new()
        } else {
            format!("{file}:{line}")
        }
    }

    /// `name (file:line)`, or the name alone when it has no file.
    pub fn label(&self, line: u32) -> String {
        let location = self.location(line);
        if location.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({location})", self.name)
        }
    }
}

/// One line's figures (serialised as a JSON function's `lines[]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LineRow {
    /// Line number.
    pub line: u32,
    /// Counted thread-samples where this line was innermost.
    pub own_samples: u64,
    /// Counted thread-samples where this line was on the stack.
    pub total_samples: u64,
    /// Its own share, on its function's basis (the mode's: samples or on-CPU seconds).
    pub own_percent: f64,
    /// Its total share, likewise.
    pub total_percent: f64,
    /// Its own time in seconds, likewise (samples x interval, or on-CPU seconds).
    #[serde(skip)]
    pub own_s: f64,
    /// Its total time in seconds, likewise.
    #[serde(skip)]
    pub total_s: f64,
    /// Counter deltas credited while this line was the innermost frame.
    #[serde(flatten)]
    pub credited: Credited,
    /// Counter deltas credited while this line was on the stack.
    #[serde(rename = "inclusive")]
    pub credited_total: Credited,
}

/// Callers, callees and lines of one function (the TUI's detail pane).
#[derive(Debug, Clone, Default)]
pub struct FunctionDetail {
    /// Function name.
    pub name: String,
    /// Full file name.
    pub filename: String,
    /// Functions that called it, by samples with that call on the stack, descending.
    pub callers: Vec<CallRow>,
    /// Functions it called, likewise.
    pub callees: Vec<CallRow>,
    /// Its lines with samples, by line number.
    pub lines: Vec<LineRow>,
}

/// One caller or callee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRow {
    /// Function name.
    pub name: String,
    /// File name for display.
    pub file: String,
    /// Counted thread-samples with this call on the stack.
    pub samples: u64,
}

/// One asyncio task: where it is, and its figures over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskRow {
    /// The task object's address (as `python -m asyncio ps` prints it).
    pub id: u64,
    pub name: String,
    /// `running` (its thread ran it when listed), `waiting`, or `done`.
    pub state: &'static str,
    /// OS thread id of its event loop (`None`: that thread exited).
    pub tid: Option<u32>,
    /// Its coroutine chain, outermost first, down to what it awaits.
    pub frames: Vec<Frame>,
    /// Ids of the tasks and futures awaiting it.
    pub awaited_by: Vec<u64>,
    /// Ticks at which its thread ran it, its share of the thread's CPU, its GIL-held ticks.
    pub figures: crate::model::tasks::TaskFigures,
}

/// Share of dropped thread-samples (percent) from which every view says so (docs/figures.md).
const DROPPED_NOTED_PERCENT: f64 = 5.0;

impl ProcessSnapshot {
    /// One standard deviation, in points, of a `share_percent` % CPU share estimated from
    /// the `on_cpu_stacks` seen (a binomial sample of them; docs/figures.md, "Sample size");
    /// `None` before any was seen.
    pub fn cpu_share_sd_points(&self, share_percent: f64) -> Option<f64> {
        if self.on_cpu_stacks == 0 {
            return None;
        }
        let p = (share_percent / 100.0).clamp(0.0, 1.0);
        Some(100.0 * (p * (1.0 - p) / self.on_cpu_stacks as f64).sqrt())
    }

    /// Whether so many stacks were dropped that the views say it (and the text report why).
    pub fn many_dropped(&self) -> bool {
        self.stacks_dropped_percent >= DROPPED_NOTED_PERCENT
    }

    /// CPU seconds credited to tasks, listed and finished: what a task's CPU share is of
    /// (docs/figures.md, "asyncio tasks"); 0 without a task list.
    pub fn tasks_cpu_s(&self) -> f64 {
        self.tasks
            .iter()
            .flatten()
            .map(|t| t.figures.cpu_s)
            .sum::<f64>()
            + self.tasks_finished.1.cpu_s
    }

    /// The interpreter's minor version (`14` of `3.14.10`), when the version reads.
    pub fn python_minor(&self) -> Option<u32> {
        self.python_version.split('.').nth(1)?.parse().ok()
    }
}
