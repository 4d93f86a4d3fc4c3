//! The aggregate: pure and deterministic. The same Ticks give the same Session; nothing here
//! reads a clock or the target. Memory is bounded: functions and lines are keyed, the timeline
//! is a ring buffer, exited threads beyond a cap are folded into totals.

pub mod dump;
pub mod family;
pub mod functions;
pub mod memory;
mod rows;
pub mod snapshot;
pub mod tasks;
pub mod threads;
pub mod timeline;
pub mod verdict;

use std::time::Duration;

use crate::collect::procfs::TICKS_PER_S;
use crate::collect::tick::{MemoryCounters, ProcCounters, SmapsRollup, Tick};
use functions::{FunctionStats, FunctionTable};
use rows::{line_rows, sort_functions, Shares};
use snapshot::{
    CallRow, FunctionDetail, LeakSuspect, MemorySnapshot, Mode, ProcessSnapshot, SnapshotQuery,
};
use threads::ThreadTable;
use timeline::{MemorySplit, Timeline, TimelineInput};

/// What is known of the process before the first tick.
#[derive(Debug, Clone, Default)]
pub struct SessionMeta {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Command line.
    pub cmdline: Vec<String>,
    /// Interpreter version.
    pub python_version: String,
    /// Start time since boot in clock ticks (for its uptime; 0 when unknown).
    pub start_ticks: u64,
}

/// Everything aggregated from one process's Ticks.
#[derive(Debug, Clone, Default)]
pub struct Session {
    meta: SessionMeta,
    functions: FunctionTable,
    threads: ThreadTable,
    tasks: tasks::TaskTable,
    timeline: Timeline,
    /// Time of the first and the latest tick.
    ticks_at: Option<(Duration, Duration)>,
    /// Time sampling was paused (gaps before `resumed` ticks): not part of the rate's window.
    paused: Duration,
    /// GIL `switch_number` at the first and latest tick that had it, with their times.
    gil_switches: Option<((Duration, u64), (Duration, u64))>,
    first: Option<(Duration, ProcCounters)>,
    last: Option<(Duration, ProcCounters)>,
    memory: Option<MemoryCounters>,
    /// The last `smaps_rollup` read, with its tick time.
    rollup: Option<(Duration, SmapsRollup)>,
    rss_peak_bytes: u64,
    ticks: u64,
    samples: u64,
    sample_errors: u64,
    /// Why the first failed read failed (kept once: a session can fail millions of times).
    first_sample_error: Option<String>,
    /// Failed reads in a row up to the latest tick, and whether the first failure told is
    /// among them: if the process exits next, they were cut by its exit, not failures.
    failing_run: (u64, bool),
    /// Reads that failed because the process was exiting (counted apart from errors).
    exit_cut_reads: u64,
    skipped: u64,
    gil_ticks: u64,
    gil_wanted_ticks: u64,
    exited: bool,
}

impl Session {
    /// An empty session for the process `meta` describes.
    pub fn new(meta: SessionMeta) -> Self {
        Self {
            meta,
            ..Self::default()
        }
    }

    /// Folds one tick into the figures.
    pub fn ingest(&mut self, tick: &Tick) {
        let p = &tick.process;
        if p.exited {
            self.exited = true;
            // Reads that failed just before the exit met a process tearing down its memory.
            let (run, first_told) = std::mem::take(&mut self.failing_run);
            self.sample_errors -= run;
            self.exit_cut_reads += run;
            if first_told {
                self.first_sample_error = None;
            }
            // Its window has ended: nothing will place what is held any better.
            self.settle();
            return;
        }
        self.skipped += u64::from(tick.skipped);
        let stacks_ok = p.stack_error.is_none();
        if stacks_ok {
            self.samples += 1;
            self.failing_run = (0, false);
        } else {
            self.sample_errors += 1;
            self.failing_run.0 += 1;
            if self.first_sample_error.is_none() {
                self.first_sample_error.clone_from(&p.stack_error);
                self.failing_run.1 = true;
            }
        }
        self.ticks += 1;
        let summary = self
            .threads
            .ingest(&p.threads, stacks_ok, tick.resumed, &mut self.functions);
        let threads = &self.threads;
        self.tasks.ingest(&p.threads, p.tasks.as_ref(), |tid| {
            threads.by_tid(tid).map(|t| t.stack.as_slice())
        });
        let gil_held = summary.gil_held;
        self.gil_ticks += u64::from(stacks_ok && gil_held);
        self.gil_wanted_ticks += u64::from(stacks_ok && summary.gil_wanted);
        if let Some(memory) = p.memory {
            self.memory = Some(memory);
            if let Some(rollup) = memory.rollup {
                self.rollup = Some((tick.at, rollup));
            }
        }
        if let Some(n) = p.gil_switches {
            let first = self.gil_switches.map_or((tick.at, n), |(first, _)| first);
            self.gil_switches = Some((first, (tick.at, n)));
        }
        if let (true, Some((_, last))) = (tick.resumed, self.ticks_at) {
            self.paused += tick.at.saturating_sub(last);
        }
        self.ticks_at = Some(
            self.ticks_at
                .map_or((tick.at, tick.at), |(first, _)| (first, tick.at)),
        );
        // Whole-process counters come on slow ticks only; their deltas span slow reads.
        let (span, delta, rss_bytes) = match p.counters {
            Some(counters) => {
                self.rss_peak_bytes = self.rss_peak_bytes.max(counters.rss_bytes);
                let (span, delta) = match self.last {
                    Some((at, last)) => (tick.at.saturating_sub(at), delta(&last, &counters)),
                    None => (Duration::ZERO, ProcCounters::default()),
                };
                if self.first.is_none() {
                    self.first = Some((tick.at, counters));
                }
                self.last = Some((tick.at, counters));
                (span, delta, Some(counters.rss_bytes))
            }
            None => (Duration::ZERO, ProcCounters::default(), None),
        };
        self.timeline.push(TimelineInput {
            at: tick.at,
            span,
            cpu_ticks: delta.cpu_ticks,
            minor_faults: delta.minor_faults,
            major_faults: delta.major_faults,
            rss_bytes,
            memory: p.memory.as_ref().map(MemorySplit::from),
            switches: summary.switches,
            stacks_ok,
            gil_held,
            gil_wanted: summary.gil_wanted,
        });
    }

    /// Ends the window: figures still held back for a better placement are credited now.
    /// Call before the last snapshot of a report.
    pub fn settle(&mut self) {
        self.threads.settle(&mut self.functions);
    }

    /// Forgets every figure, keeping what the process is.
    pub fn reset(&mut self) {
        *self = Self::new(std::mem::take(&mut self.meta));
    }

    /// What the process is.
    pub fn meta(&self) -> &SessionMeta {
        &self.meta
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        self.exited
    }

    /// Ticks ingested (stack reads that worked or failed).
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Distinct functions seen (for memory bounds).
    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// Threads kept (for memory bounds).
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// Per-second points kept (for memory bounds).
    pub fn timeline_len(&self) -> usize {
        self.timeline.len()
    }

    /// Callers, callees and lines of the function `name` in `filename` (process-wide).
    pub fn function_detail(
        &self,
        filename: &str,
        name: &str,
        include_idle: bool,
    ) -> Option<FunctionDetail> {
        let id = self.functions.id(filename, name)?;
        let all = self.functions.all();
        let f = all.get(id)?;
        let row = |other: usize, samples: u64| {
            let o = &all[other];
            CallRow {
                name: o.name.clone(),
                file: o
                    .short_filename
                    .clone()
                    .unwrap_or_else(|| o.filename.clone()),
                samples,
            }
        };
        let mut called_by = Vec::new();
        let mut calls = Vec::new();
        for (&(caller, callee), edge) in self.functions.edges() {
            let samples = edge.counts.pick(include_idle).total;
            if samples == 0 {
                continue;
            }
            if callee == id {
                called_by.push(row(caller, samples));
            }
            if caller == id {
                calls.push(row(callee, samples));
            }
        }
        for list in [&mut called_by, &mut calls] {
            list.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.name.cmp(&b.name)));
        }
        let shares = Shares::Samples {
            counted: self.threads.counted_samples(include_idle),
            seconds_per_sample: self.seconds_per_sample(),
        };
        let mut lines = line_rows(f, Mode::Samples, include_idle, shares);
        lines.sort_by_key(|l| l.line);
        Some(FunctionDetail {
            name: f.name.clone(),
            filename: f.filename.clone(),
            callers: called_by,
            callees: calls,
            lines,
        })
    }

    /// Ticks per second over `duration_s`, time paused left out.
    fn achieved_rate_hz(&self, duration_s: f64) -> f64 {
        let sampling_s = duration_s - self.paused.as_secs_f64();
        if sampling_s > 0.0 {
            (self.ticks.saturating_sub(1)) as f64 / sampling_s
        } else {
            0.0
        }
    }

    /// From the first tick to the last.
    fn duration_s(&self) -> f64 {
        self.ticks_at.map_or(0.0, |(first, last)| {
            last.saturating_sub(first).as_secs_f64()
        })
    }

    /// The achieved interval: the window over its ticks less one.
    fn seconds_per_sample(&self) -> f64 {
        if self.ticks > 1 {
            self.duration_s() / (self.ticks - 1) as f64
        } else {
            0.0
        }
    }

    /// Rows for a view.
    pub fn snapshot(&self, query: &SnapshotQuery) -> ProcessSnapshot {
        // Figures held back for a better placement (CPU of threads seen waiting, faults,
        // I/O) are shown where the window's end would credit them: every view of a window
        // (live, replay, report, exports) then shows the same figures (issue 23).
        if self.threads.holds_back() {
            let mut settled = self.clone();
            settled.settle();
            return settled.snapshot_settled(query);
        }
        self.snapshot_settled(query)
    }

    /// [`Self::snapshot`] of a session with nothing held back.
    fn snapshot_settled(&self, query: &SnapshotQuery) -> ProcessSnapshot {
        let duration_s = self.duration_s();
        let counter_window_s = match (self.first, self.last) {
            (Some((a, _)), Some((b, _))) => b.saturating_sub(a).as_secs_f64(),
            _ => 0.0,
        };
        let window = match (self.first, self.last) {
            (Some((_, a)), Some((_, b))) => delta(&a, &b),
            _ => ProcCounters::default(),
        };
        let seconds_per_sample = self.seconds_per_sample();
        let thread_sums = self.threads.total();
        let threads = self.thread_rows(duration_s);
        let idle = query.include_idle || query.mode == Mode::Wall;
        let focus = self.focus(query);
        let counted_samples = match &focus {
            Some(f) if idle => f.samples,
            Some(f) => f.active_samples,
            None => self.threads.counted_samples(idle),
        };
        let timeline: Vec<_> = self.timeline.points().copied().collect();
        let mut functions =
            self.function_rows(query, focus.as_ref(), counted_samples, seconds_per_sample);
        let memory = self.memory_snapshot(&timeline);
        sort_functions(&mut functions, query.sort);
        if let Some(limit) = query.limit {
            functions.truncate(limit);
        }
        let mut snapshot = ProcessSnapshot {
            pid: self.meta.pid,
            ppid: self.meta.ppid,
            cmdline: self.meta.cmdline.clone(),
            python_version: self.meta.python_version.clone(),
            start_ticks: self.meta.start_ticks,
            exited: self.exited,
            duration_s,
            samples: self.samples,
            sample_errors: self.sample_errors,
            exit_cut_reads: self.exit_cut_reads,
            first_sample_error: self.first_sample_error.clone(),
            partial_stacks: self.threads.partial_samples(),
            partial_stacks_percent: percent(
                self.threads.partial_samples(),
                self.threads.counted_samples(true),
            ),
            stacks_reread: self.threads.reread_samples(),
            stacks_dropped: self.threads.dropped_samples(),
            on_cpu_stacks: self.threads.on_cpu_samples(),
            stacks_dropped_percent: percent(
                self.threads.dropped_samples(),
                self.threads.counted_samples(true) + self.threads.dropped_samples(),
            ),
            skipped_ticks: self.skipped,
            rate_hz: self.achieved_rate_hz(duration_s),
            counted_samples,
            seconds_per_sample,
            cpu_percent: cpu_percent_over(window.cpu_ticks, counter_window_s),
            rss_bytes: self.last.map_or(0, |(_, c)| c.rss_bytes),
            rss_peak_bytes: self.rss_peak_bytes,
            swap_bytes: self.memory.map_or(0, |m| m.swap_bytes),
            minor_faults: window.minor_faults,
            major_faults: window.major_faults,
            read_bytes: window.read_bytes.unwrap_or(0),
            write_bytes: window.write_bytes.unwrap_or(0),
            voluntary_ctxsw: thread_sums.voluntary_ctxsw,
            involuntary_ctxsw: thread_sums.involuntary_ctxsw,
            gil_held_percent: percent(self.gil_ticks, self.samples),
            gil_wanted_percent: percent(self.gil_wanted_ticks, self.samples),
            runqueue_wait_percent: percent(
                thread_sums.runqueue_wait_ns,
                thread_sums.runqueue_wait_ns + thread_sums.run_ns,
            ),
            gil_mean_hold_ms: None,
            gil_located: self.gil_switches.is_some(),
            verdict: None,
            gil_handoffs_per_s: self.gil_switches.and_then(|((a, first), (b, last))| {
                let span = b.saturating_sub(a).as_secs_f64();
                (span > 0.0).then(|| last.saturating_sub(first) as f64 / span)
            }),
            threads,
            functions,
            stacks: if query.stacks {
                self.stack_rows(query)
            } else {
                Vec::new()
            },
            memory,
            timeline,
            tasks: self.task_rows(),
            tasks_finished: self.tasks.not_listed(),
            gc: self.gc_figures(),
        };
        snapshot.verdict = verdict::gil(&snapshot);
        snapshot.gil_mean_hold_ms = snapshot
            .gil_handoffs_per_s
            .filter(|h| *h > 0.0)
            .map(|h| snapshot.gil_held_percent / 100.0 / h * 1000.0);
        snapshot
    }
}

impl Session {
    /// Memory figures: the last split, PSS/USS, the RSS trend and, when the growth is
    /// sustained, the functions that faulted in the most pages.
    fn memory_snapshot(&self, timeline: &[timeline::TimelinePoint]) -> MemorySnapshot {
        let growth = memory::growth(timeline);
        let mut leak_suspects = Vec::new();
        if growth.is_some_and(|g| g.sustained) {
            let all = self.functions.all();
            let total: f64 = all.iter().map(|f| f.credited.minor_faults).sum();
            let mut ranked: Vec<&FunctionStats> = all
                .iter()
                .filter(|f| f.credited.minor_faults > 0.0)
                .collect();
            ranked.sort_by(|a, b| b.credited.minor_faults.total_cmp(&a.credited.minor_faults));
            leak_suspects = ranked
                .iter()
                .take(LEAK_SUSPECTS)
                .map(|f| LeakSuspect {
                    name: f.name.clone(),
                    filename: f.filename.clone(),
                    minor_faults: f.credited.minor_faults,
                    share_percent: f.credited.minor_faults * 100.0 / total,
                })
                .collect();
        }
        let last_at = self.ticks_at.map(|(_, last)| last);
        MemorySnapshot {
            split: self
                .memory
                .as_ref()
                .map(MemorySplit::from)
                .unwrap_or_default(),
            hwm_bytes: self.memory.map_or(0, |m| m.hwm_bytes),
            rollup: self.rollup.map(|(_, r)| r),
            rollup_age_s: self
                .rollup
                .zip(last_at)
                .map(|((at, _), last)| last.saturating_sub(at).as_secs_f64()),
            growth,
            leak_suspects,
        }
    }
}

/// Functions the leak hint names, at most.
const LEAK_SUSPECTS: usize = 5;

fn delta(a: &ProcCounters, b: &ProcCounters) -> ProcCounters {
    ProcCounters {
        cpu_ticks: b.cpu_ticks.saturating_sub(a.cpu_ticks),
        minor_faults: b.minor_faults.saturating_sub(a.minor_faults),
        major_faults: b.major_faults.saturating_sub(a.major_faults),
        read_bytes: b
            .read_bytes
            .zip(a.read_bytes)
            .map(|(b, a)| b.saturating_sub(a)),
        write_bytes: b
            .write_bytes
            .zip(a.write_bytes)
            .map(|(b, a)| b.saturating_sub(a)),
        rss_bytes: b.rss_bytes,
    }
}

/// CPU clock ticks over a window, as a percentage of one core.
/// `seconds` as a percentage of `window_s`.
fn share_of_window(seconds: f64, window_s: f64) -> f64 {
    if window_s > 0.0 {
        seconds / window_s * 100.0
    } else {
        0.0
    }
}

fn cpu_percent_over(ticks: u64, window_s: f64) -> f64 {
    if window_s > 0.0 {
        ticks as f64 / window_s / TICKS_PER_S as f64 * 100.0
    } else {
        0.0
    }
}

pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests;
