//! The snapshot's rows, computed once for every view: threads, functions (all, or one
//! thread's or task's), whole stacks, tasks, and time in garbage collection.

use std::cmp::Reverse;
use std::collections::HashMap;

use super::functions::{self, Counts, Credited, FunctionStats};
use super::snapshot::{
    self, FunctionRow, FunctionSort, GcFigures, LineRow, Mode, SnapshotQuery, StackFrame, StackRow,
    ThreadRow,
};
use super::{percent, share_of_window, Session};

/// The samples of one thread or one task: a focused functions pane counts only these.
pub(super) struct Focus<'a> {
    pub(super) functions: &'a rustc_hash::FxHashMap<functions::FunctionId, functions::DualCounts>,
    pub(super) samples: u64,
    pub(super) active_samples: u64,
    pub(super) gil_held_samples: u64,
}

impl Session {
    /// Thread rows: Python threads first, then by tid.
    pub(super) fn thread_rows(&self, duration_s: f64) -> Vec<ThreadRow> {
        let mut threads: Vec<ThreadRow> = self
            .threads
            .all()
            .map(|t| {
                let share = |n: u64| percent(n, t.samples);
                ThreadRow {
                    tid: t.tid,
                    name: t.name.clone(),
                    alive: t.alive,
                    is_python: t.is_python,
                    state: t.state,
                    gil: t.gil,
                    samples: t.samples,
                    cpu_percent: share_of_window(t.sums.cpu_s(), duration_s),
                    runqueue_wait_percent: share_of_window(
                        t.sums.runqueue_wait_ns as f64 / 1e9,
                        duration_s,
                    ),
                    gil_held_percent: share(t.gil_held_samples),
                    gil_wait_percent: share(t.gil_wait_samples),
                    idle_percent: share(t.samples - t.active_samples),
                    native_percent: share(t.native_samples),
                    blocked_percent: share(t.blocked_samples),
                    sleep_percent: share(t.sleeping_samples),
                    minor_faults: t.sums.minor_faults,
                    major_faults: t.sums.major_faults,
                    voluntary_ctxsw: t.sums.voluntary_ctxsw,
                    involuntary_ctxsw: t.sums.involuntary_ctxsw,
                    read_bytes: t.sums.read_bytes,
                    write_bytes: t.sums.write_bytes,
                    gc_percent: percent(t.gc_samples, t.on_cpu_samples),
                    stack: t
                        .stack
                        .iter()
                        .filter_map(|&(id, line)| self.functions.frame(id, line))
                        .collect(),
                }
            })
            .collect();
        threads.sort_by_key(|t| (!t.is_python, !t.alive, t.tid));
        threads
    }

    /// The samples one thread or one task ran, for a focused functions pane.
    pub(super) fn focus(&self, query: &SnapshotQuery) -> Option<Focus<'_>> {
        if let Some(task) = query.task {
            let ran = self.tasks.functions_of(task)?;
            return Some(Focus {
                functions: &ran.functions,
                samples: ran.samples,
                active_samples: ran.active_samples,
                gil_held_samples: ran.gil_held_samples,
            });
        }
        let t = self.threads.by_tid(query.thread?)?;
        Some(Focus {
            functions: &t.functions,
            samples: t.samples,
            active_samples: t.active_samples,
            gil_held_samples: t.gil_held_samples,
        })
    }

    /// Function rows as `query` asks (before sorting), for all threads or `focus`.
    pub(super) fn function_rows(
        &self,
        query: &SnapshotQuery,
        focus: Option<&Focus<'_>>,
        counted_samples: u64,
        seconds_per_sample: f64,
    ) -> Vec<FunctionRow> {
        let idle = query.include_idle || query.mode == Mode::Wall;
        // On-CPU shares are per process (a focus counts the samples of its thread or task).
        let shares = match (query.mode, focus) {
            (Mode::Cpu, None) => {
                Shares::CpuSeconds(self.functions.all().iter().map(|f| f.credited.cpu_s).sum())
            }
            (Mode::Gil, _) => Shares::Samples {
                counted: focus.map_or(self.threads.gil_samples(), |f| f.gil_held_samples),
                seconds_per_sample,
            },
            _ => Shares::Samples {
                counted: counted_samples,
                seconds_per_sample,
            },
        };
        self.functions
            .all()
            .iter()
            .enumerate()
            .filter_map(|(id, f)| {
                let counts = match focus {
                    Some(t) => t.functions.get(&id).map(|c| c.pick_for(query.mode, idle))?,
                    None => f.counts.pick_for(query.mode, idle),
                };
                (counts.total > 0 || (focus.is_none() && f.credited.cpu_s > 0.0))
                    .then(|| function_row(f, counts, (query.mode, idle), shares))
            })
            .collect()
    }

    /// Every whole stack with samples or credited counters, names resolved.
    pub(super) fn stack_rows(&self, query: &SnapshotQuery) -> Vec<StackRow> {
        let idle = query.include_idle || query.mode == Mode::Wall;
        let names: HashMap<u32, String> = self
            .threads
            .all()
            .filter_map(|t| Some((t.tid, t.name.clone()?)))
            .collect();
        let all = self.functions.all();
        self.functions
            .stacks()
            .filter(|(tid, _, _)| query.thread.is_none_or(|t| t == *tid))
            .filter_map(|(tid, ids, stats)| {
                let samples = stats.counts.pick_for(query.mode, idle).own;
                let credited = stats.credited;
                let anything = samples > 0 || credited.any();
                anything.then(|| StackRow {
                    tid,
                    thread: names.get(&tid).cloned(),
                    frames: ids
                        .rev()
                        .filter_map(|(id, line)| Some((all.get(id)?, line)))
                        .map(|(f, line)| StackFrame {
                            name: f.name.clone(),
                            file: f
                                .short_filename
                                .as_deref()
                                .unwrap_or(&f.filename)
                                .to_owned(),
                            line: f.first_line,
                            sampled_line: line,
                        })
                        .collect(),
                    samples,
                    credited,
                })
            })
            .collect()
    }

    /// The tasks of the latest list with their figures, hottest first (CPU, then samples).
    pub(super) fn task_rows(&self) -> Option<Vec<snapshot::TaskRow>> {
        let listed = self.tasks.listed()?;
        let mut rows: Vec<snapshot::TaskRow> = listed
            .iter()
            .map(|t| snapshot::TaskRow {
                id: t.id,
                name: t.name.to_string(),
                state: match (t.done, t.running) {
                    (true, _) => "done",
                    (false, true) => "running",
                    (false, false) => "waiting",
                },
                tid: t.tid,
                frames: t.frames.clone(),
                awaited_by: t.awaited_by.clone(),
                figures: self.tasks.figures(t.id),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.figures
                .cpu_s
                .total_cmp(&a.figures.cpu_s)
                .then(b.figures.samples.cmp(&a.figures.samples))
        });
        Some(rows)
    }

    /// Time in garbage collection: the share of the thread-samples seen on a CPU that were
    /// inside a collection, the CPU credited to `<GC>`, and its samples.
    pub(super) fn gc_figures(&self) -> GcFigures {
        let all = self.functions.all();
        let Some(gc) = self.functions.gc_id().and_then(|id| all.get(id)) else {
            return GcFigures::default();
        };
        let seen_in_gc = self.threads.gc_samples();
        GcFigures {
            percent: super::percent(seen_in_gc, self.threads.on_cpu_samples()),
            cpu_s: gc.credited.cpu_s,
            samples: gc.counts.pick_for(Mode::Samples, false).own,
            seen_in_gc,
        }
    }
}

/// The lines of `f` that have samples under the counting rule (or, in cpu mode, credited CPU),
/// in no order; their figures on the same basis as their function's.
pub(super) fn line_rows(
    f: &FunctionStats,
    mode: Mode,
    include_idle: bool,
    shares: Shares,
) -> Vec<LineRow> {
    f.lines
        .iter()
        .filter_map(|(&line, stats)| {
            let c = stats.counts.pick_for(mode, include_idle);
            let cpu = matches!(shares, Shares::CpuSeconds(_)) && stats.credited_total.cpu_s > 0.0;
            let figures = shares.figures(c, &stats.credited, &stats.credited_total);
            (c.total > 0 || cpu).then_some(LineRow {
                line,
                own_samples: c.own,
                total_samples: c.total,
                own_percent: figures.0,
                total_percent: figures.1,
                own_s: figures.2,
                total_s: figures.3,
                credited: stats.credited,
                credited_total: stats.credited_total,
            })
        })
        .collect()
}

/// What a function row's shares are measured against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shares {
    /// Thread-samples counted, and the seconds one stands for.
    Samples {
        counted: u64,
        seconds_per_sample: f64,
    },
    /// On-CPU seconds credited to all functions (own).
    CpuSeconds(f64),
}

impl Shares {
    /// (own %, total %, own s, total s) of a function or line with `counts` samples and
    /// `own` / `total` credited counters: one computation for every grouping.
    fn figures(self, counts: Counts, own: &Credited, total: &Credited) -> (f64, f64, f64, f64) {
        let (own_percent, total_percent) = self.percents(counts, own, total);
        match self {
            Shares::Samples {
                seconds_per_sample, ..
            } => (
                own_percent,
                total_percent,
                counts.own as f64 * seconds_per_sample,
                counts.total as f64 * seconds_per_sample,
            ),
            Shares::CpuSeconds(_) => (own_percent, total_percent, own.cpu_s, total.cpu_s),
        }
    }

    /// (own %, total %) alone: also for rows merged from several processes.
    pub(crate) fn percents(self, counts: Counts, own: &Credited, total: &Credited) -> (f64, f64) {
        match self {
            Shares::Samples { counted, .. } => {
                (percent(counts.own, counted), percent(counts.total, counted))
            }
            Shares::CpuSeconds(all) => {
                let share = |s: f64| if all > 0.0 { s / all * 100.0 } else { 0.0 };
                (share(own.cpu_s), share(total.cpu_s))
            }
        }
    }
}

pub(super) fn function_row(
    f: &FunctionStats,
    counts: Counts,
    (mode, include_idle): (Mode, bool),
    shares: Shares,
) -> FunctionRow {
    let mut lines = line_rows(f, mode, include_idle, shares);
    lines.sort_by_key(|l| (Reverse(l.total_samples), Reverse(l.own_samples), l.line));
    let (own_percent, total_percent, own_s, total_s) =
        shares.figures(counts, &f.credited, &f.credited_total);
    FunctionRow {
        name: f.name.clone(),
        filename: f.filename.clone(),
        short_filename: f.short_filename.clone(),
        own_samples: counts.own,
        total_samples: counts.total,
        own_percent,
        total_percent,
        own_s,
        total_s,
        hottest_line: lines.first().map_or(0, |l| l.line),
        first_line: f.first_line,
        credited: f.credited,
        credited_total: f.credited_total,
        gil_held_while_waited: f.held_while_waited,
        lines,
    }
}

/// Orders function rows as `sort` asks, ties broken by total samples, then name and file.
pub(crate) fn sort_functions(rows: &mut [FunctionRow], sort: FunctionSort) {
    rows.sort_by(|a, b| {
        let primary = match sort {
            FunctionSort::Own => b
                .own_percent
                .total_cmp(&a.own_percent)
                .then(b.own_samples.cmp(&a.own_samples)),
            FunctionSort::Total => b
                .total_percent
                .total_cmp(&a.total_percent)
                .then(b.total_samples.cmp(&a.total_samples)),
            FunctionSort::CpuTime => b.credited.cpu_s.total_cmp(&a.credited.cpu_s),
            FunctionSort::Name => a.name.cmp(&b.name),
        };
        primary
            .then(b.total_samples.cmp(&a.total_samples))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.filename.cmp(&b.filename))
    });
}
