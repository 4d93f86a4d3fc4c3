//! The `hptop.report/1` JSON contract. Field names are stable; fields may be added. Rows the
//! snapshot already holds in the contract's shape (threads, functions and their lines,
//! stacks, counters, leak suspects) are serialised as they are, with serde renames and skips
//! on the model's types, so a new figure is added in one place; the process and memory
//! objects below regroup the snapshot's flat figures (`gil`, `memory`) as the contract nests
//! them.

use serde::Serialize;

use super::ReportHeader;
use crate::model::snapshot::{
    FunctionRow, GcFigures, LeakSuspect, ProcessSnapshot, Snapshot, StackRow, ThreadRow,
};

/// Schema identifier.
pub const SCHEMA: &str = "hptop.report/1";

/// A whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// hptop's version.
    pub hptop_version: &'static str,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// Window length in seconds (longest process window).
    pub duration_s: f64,
    /// Requested sampling rate.
    pub rate_hz: f64,
    /// Ticks per second achieved (added to the contract: `rate_hz` is the request).
    pub achieved_rate_hz: f64,
    /// Ticks whose stacks were read, over all processes.
    pub samples: u64,
    /// Ticks whose stack read failed.
    pub sample_errors: u64,
    /// Why the first failed read failed (added to the contract); `null` without failures.
    pub first_sample_error: Option<String>,
    /// Thread-samples whose stack was read again because the walk raced with the thread,
    /// over all processes (see docs/figures.md).
    pub stacks_reread: u64,
    /// Thread-samples whose stack raced at every read: dropped, credited to no function.
    pub stacks_dropped: u64,
    /// Deadlines not sampled: a tick ran late, or hptop lowered its rate to stay under half a
    /// core on a target with many threads (added to the contract).
    pub skipped_ticks: u64,
    /// hptop's own CPU seconds during the report (added to the contract).
    pub hptop_cpu_s: f64,
    /// What function shares count: `cpu`, `samples` or `wall` (added to the contract).
    pub mode: &'static str,
    /// One entry per process.
    pub processes: Vec<Process>,
}

/// GIL figures of a process.
#[derive(Debug, Serialize)]
pub struct Gil {
    /// Share of samples in which some thread held the GIL.
    pub held_percent: f64,
    /// GIL hand-offs per second; `null` where the GIL state could not be located.
    pub handoffs_per_s: Option<f64>,
    /// Share of samples in which some thread waited for the GIL.
    pub wanted_percent: f64,
    /// The GIL state was located: waits and hand-offs are measured (false: not measured).
    pub located: bool,
    /// Mean time the GIL is held per hold, ms; `null` without hand-offs.
    pub mean_hold_ms: Option<f64>,
    /// A plain-words reading, when clear.
    pub verdict: Option<String>,
}

/// Memory figures of a process (see docs/figures.md, "Memory").
#[derive(Debug, Serialize)]
pub struct Memory {
    /// RSS at the last read.
    pub rss_bytes: u64,
    /// Resident anonymous memory (`RssAnon`).
    pub anon_bytes: u64,
    /// Resident file-backed pages (`RssFile`).
    pub file_bytes: u64,
    /// Resident shared memory (`RssShmem`).
    pub shmem_bytes: u64,
    /// Swapped out (`VmSwap`).
    pub swap_bytes: u64,
    /// Largest RSS read in the window.
    pub peak_bytes: u64,
    /// Lifetime peak RSS (`VmHWM`), before the window too.
    pub hwm_bytes: u64,
    /// PSS at the last `smaps_rollup` read; `null` when not read (large process, or too short).
    pub pss_bytes: Option<u64>,
    /// USS (private pages) at that read.
    pub uss_bytes: Option<u64>,
    /// RSS trend: least-squares slope over the last 300 s of per-second points; `null` with
    /// fewer than 10 points.
    pub growth_bytes_per_s: Option<f64>,
    /// Seconds the trend was fitted over.
    pub growth_window_s: Option<f64>,
    /// Sustained growth: the functions credited the most minor faults; `null` otherwise.
    pub leak_hint: Option<LeakHint>,
    /// One point per second, oldest first.
    pub timeline: Vec<MemoryPoint>,
}

/// A leak hint.
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct LeakHint {
    pub growth_bytes_per_s: f64,
    pub window_s: f64,
    pub suspects: Vec<LeakSuspect>,
}

/// One second of memory history.
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct MemoryPoint {
    pub t_s: u64,
    pub rss_bytes: u64,
    pub anon_bytes: u64,
    pub file_bytes: u64,
    pub shmem_bytes: u64,
    pub swap_bytes: u64,
}

/// One process.
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub cmdline: Vec<String>,
    pub python_version: String,
    pub exited: bool,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub rss_peak_bytes: u64,
    pub swap_bytes: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub voluntary_ctxsw: u64,
    pub involuntary_ctxsw: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub gil: Gil,
    /// Of the time the threads wanted a CPU, the share spent waiting for one (added).
    pub runqueue_wait_percent: f64,
    /// A plain-words reading when the machine is overloaded (added).
    pub runqueue_verdict: Option<String>,
    /// Thread-samples whose stack was cut short while read (added; see docs/figures.md).
    pub partial_stacks: u64,
    /// Their share of the thread-samples, percent (added).
    pub partial_stacks_percent: f64,
    /// Time in garbage collection (added; docs/figures.md): `percent`, `cpu_s`, `samples`.
    pub gc: GcFigures,
    /// A plain-words reading when collections take a large share of the CPU (added).
    pub gc_verdict: Option<String>,
    /// Stack reads that failed as the process exited, not counted as errors (added).
    pub reads_cut_by_exit: u64,
    /// This process's share of the top-level `stacks_reread` and `stacks_dropped` (added).
    pub stacks_reread: u64,
    pub stacks_dropped: u64,
    /// Python thread-samples read with the thread on a CPU: what `--mode cpu` shares are a
    /// sample of (added; docs/figures.md).
    pub on_cpu_stacks: u64,
    /// Memory split, PSS/USS, growth, leak hint, per-second history (added to the contract).
    pub memory: Memory,
    /// Python threads (the snapshot's rows, serialised as the contract says).
    pub threads: Vec<ThreadRow>,
    /// Functions, as the snapshot orders them.
    pub functions: Vec<FunctionRow>,
    /// Whole stacks with their samples and credited counters, with `--stacks` (added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stacks: Option<Vec<StackRow>>,
    /// asyncio tasks as last listed (Python 3.11+; absent when no task list was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<super::tasks::TaskJson>>,
    /// Tasks no longer listed, with their figures (beside `tasks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_finished: Option<super::tasks::TasksFinishedJson>,
}

impl Report {
    /// Builds the report from a snapshot.
    pub fn new(snapshot: &Snapshot, header: &ReportHeader) -> Self {
        let procs = &snapshot.processes;
        let duration_s = procs.iter().map(|p| p.duration_s).fold(0.0, f64::max);
        Self {
            schema: SCHEMA,
            hptop_version: env!("CARGO_PKG_VERSION"),
            started_at: header.started_at.clone(),
            duration_s,
            rate_hz: header.rate_hz,
            achieved_rate_hz: procs.iter().map(|p| p.rate_hz).fold(0.0, f64::max),
            samples: procs.iter().map(|p| p.samples).sum(),
            sample_errors: procs.iter().map(|p| p.sample_errors).sum(),
            first_sample_error: procs.iter().find_map(|p| p.first_sample_error.clone()),
            stacks_reread: procs.iter().map(|p| p.stacks_reread).sum(),
            stacks_dropped: procs.iter().map(|p| p.stacks_dropped).sum(),
            skipped_ticks: procs.iter().map(|p| p.skipped_ticks).sum(),
            hptop_cpu_s: header.hptop_cpu_s,
            mode: header.mode.name(),
            processes: procs.iter().map(|p| process(p, header.stacks)).collect(),
        }
    }

    /// Pretty JSON text.
    ///
    /// # Errors
    /// Never in practice: every field serialises.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}

fn process(p: &ProcessSnapshot, with_stacks: bool) -> Process {
    Process {
        pid: p.pid,
        ppid: p.ppid,
        cmdline: p.cmdline.clone(),
        python_version: p.python_version.clone(),
        exited: p.exited,
        cpu_percent: p.cpu_percent,
        rss_bytes: p.rss_bytes,
        rss_peak_bytes: p.rss_peak_bytes,
        swap_bytes: p.swap_bytes,
        minor_faults: p.minor_faults,
        major_faults: p.major_faults,
        voluntary_ctxsw: p.voluntary_ctxsw,
        involuntary_ctxsw: p.involuntary_ctxsw,
        read_bytes: p.read_bytes,
        write_bytes: p.write_bytes,
        gil: Gil {
            held_percent: p.gil_held_percent,
            handoffs_per_s: p.gil_handoffs_per_s,
            wanted_percent: p.gil_wanted_percent,
            located: p.gil_located,
            mean_hold_ms: p.gil_mean_hold_ms,
            verdict: p.verdict.clone(),
        },
        runqueue_wait_percent: p.runqueue_wait_percent,
        runqueue_verdict: crate::model::verdict::runqueue(p),
        partial_stacks: p.partial_stacks,
        partial_stacks_percent: p.partial_stacks_percent,
        gc: p.gc,
        gc_verdict: crate::model::verdict::gc(p),
        reads_cut_by_exit: p.exit_cut_reads,
        stacks_reread: p.stacks_reread,
        stacks_dropped: p.stacks_dropped,
        on_cpu_stacks: p.on_cpu_stacks,
        memory: memory(p),
        threads: p.threads.iter().filter(|t| t.is_python).cloned().collect(),
        functions: p.functions.clone(),
        stacks: with_stacks.then(|| p.stacks.clone()),
        tasks: super::tasks::json(p),
        tasks_finished: super::tasks::finished_json(p),
    }
}

fn memory(p: &ProcessSnapshot) -> Memory {
    let m = &p.memory;
    Memory {
        rss_bytes: p.rss_bytes,
        anon_bytes: m.split.anon_bytes,
        file_bytes: m.split.file_bytes,
        shmem_bytes: m.split.shmem_bytes,
        swap_bytes: m.split.swap_bytes,
        peak_bytes: p.rss_peak_bytes,
        hwm_bytes: m.hwm_bytes,
        pss_bytes: m.rollup.map(|r| r.pss_bytes),
        uss_bytes: m.rollup.map(|r| r.uss_bytes),
        growth_bytes_per_s: m.growth.map(|g| g.bytes_per_s),
        growth_window_s: m.growth.map(|g| g.window_s),
        leak_hint: m.growth.filter(|g| g.sustained).map(|g| LeakHint {
            growth_bytes_per_s: g.bytes_per_s,
            window_s: g.window_s,
            suspects: m.leak_suspects.clone(),
        }),
        timeline: p
            .timeline
            .iter()
            .filter(|t| t.rss_bytes > 0)
            .map(|t| MemoryPoint {
                t_s: t.at.as_secs(),
                rss_bytes: t.rss_bytes,
                anon_bytes: t.memory.anon_bytes,
                file_bytes: t.memory.file_bytes,
                shmem_bytes: t.memory.shmem_bytes,
                swap_bytes: t.memory.swap_bytes,
            })
            .collect(),
    }
}
