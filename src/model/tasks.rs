//! Per-task figures of asyncio programs (Python 3.11+): which task each event-loop thread ran
//! at each tick, and the task list read about once a second (see `collect::tasks`).
//!
//! A task's `samples` are the ticks at which its thread ran it; its `cpu_s` is its share of
//! its thread's on-CPU time (schedstat run time) between two slow reads, split among the
//! ticks of that span at which the thread was seen on a CPU (by the task-clock probe, or
//! state R without it), evenly: the rule that credits CPU to stacks seen on a CPU
//! (docs/figures.md). Ticks of the loop's own code (no task running) keep their share.
//! (Crediting each tick-to-tick interval to the task of its start, as first built, read the
//! longer-step task 2-4 points high: schedstat's run time is brought up to date only at the
//! thread's system calls and scheduler ticks, so an interval starting inside a long step
//! began, in run time, where that step began.)
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use super::functions::{DualCounts, FunctionId, SampleKind};
use crate::collect::tick::{GilState, OsState, TaskTick, ThreadTick};

/// Tasks with figures kept at most; past it, tasks no longer listed are folded into
/// [`TaskTable::finished`] (totals stay exact).
const TASKS_KEPT: usize = 4096;

/// What one task accumulated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFigures {
    /// Ticks at which its thread ran it.
    pub samples: u64,
    /// Its share of its thread's CPU seconds (see the module doc).
    pub cpu_s: f64,
    /// Of `samples`, those at which its thread held the GIL.
    pub gil_held_samples: u64,
}

impl TaskFigures {
    /// Adds `other`'s figures.
    pub fn add(&mut self, other: &Self) {
        self.samples += other.samples;
        self.cpu_s += other.cpu_s;
        self.gil_held_samples += other.gil_held_samples;
    }

    /// Its share of `total` CPU seconds (the tasks': `ProcessSnapshot::tasks_cpu_s`), percent
    /// (0 when none was credited).
    pub fn cpu_percent_of(&self, total: f64) -> f64 {
        if total > 0.0 {
            self.cpu_s * 100.0 / total
        } else {
            0.0
        }
    }

    /// Share of its samples at which its thread held the GIL, percent (0 without samples).
    pub fn gil_held_percent(&self) -> f64 {
        super::percent(self.gil_held_samples, self.samples)
    }
}

/// The functions a task ran: the samples of its thread while it ran the task, counted as a
/// thread's are (each function once per stack), for the functions pane focused on the task.
#[derive(Debug, Clone, Default)]
pub struct TaskFunctions {
    /// Per function.
    pub functions: HashMap<FunctionId, DualCounts>,
    /// Samples, those in state R, and those holding the GIL (the shares' bases).
    pub samples: u64,
    /// See `samples`.
    pub active_samples: u64,
    /// See `samples`.
    pub gil_held_samples: u64,
}

/// Per-task figures over a session.
#[derive(Debug, Clone, Default)]
pub struct TaskTable {
    /// The latest task list read, if one was.
    listed: Option<Arc<[TaskTick]>>,
    figures: HashMap<u64, TaskFigures>,
    /// What each task ran (kept and folded with `figures`).
    functions: HashMap<u64, TaskFunctions>,
    /// Functions already counted in the stack being counted (reused: no allocation a sample).
    counted: rustc_hash::FxHashSet<FunctionId>,
    /// Tasks folded away (no longer listed, past [`TASKS_KEPT`]): how many and their sums.
    finished: (u64, TaskFigures),
    /// Per loop thread: the span since its last slow read (see [`CpuSpan`]).
    spans: HashMap<u32, CpuSpan>,
}

/// A loop thread's ticks since its last slow read, whose CPU is split among its tasks.
#[derive(Debug, Clone, Default)]
struct CpuSpan {
    /// The thread's start time: a reused tid starts afresh.
    start_ticks: u64,
    /// Its run time at the span's start.
    run_ns: Option<u64>,
    /// Ticks of the span at which it was seen on a CPU, and those per task.
    on_cpu: u64,
    tasks: Vec<(u64, u64)>,
    /// Run time of past spans with no tick seen on a CPU, held for the next (at most
    /// [`MAX_HELD_SPANS`] of them).
    held_ns: u64,
    held_spans: u32,
}

/// Spans without a tick seen on a CPU whose run time is held for the next span (beyond, it
/// is the loop's, credited to no task).
const MAX_HELD_SPANS: u32 = 10;

impl TaskTable {
    /// Folds one tick in: its task list, if read, and each thread's running task, with the
    /// stack the thread was sampled at (`stack_of`: its functions, innermost first).
    pub fn ingest<'a>(
        &mut self,
        threads: &[ThreadTick],
        tasks: Option<&Arc<[TaskTick]>>,
        stack_of: impl Fn(u32) -> Option<&'a [(FunctionId, u32)]>,
    ) {
        if let Some(list) = tasks {
            self.listed = Some(Arc::clone(list));
            // About once a second: forget the spans of threads gone.
            self.spans
                .retain(|tid, _| threads.iter().any(|t| t.tid == *tid));
        }
        for t in threads {
            self.split_cpu(t);
            if let Some(task) = t.running_task {
                let figures = self.figures.entry(task).or_default();
                figures.samples += 1;
                figures.gil_held_samples += u64::from(t.gil == GilState::Held);
                let kind = SampleKind {
                    active: t
                        .counters
                        .map_or(t.gil == GilState::Held, |c| c.state == OsState::Running),
                    held: t.gil == GilState::Held,
                };
                let ran = self.functions.entry(task).or_default();
                ran.samples += 1;
                ran.active_samples += u64::from(kind.active);
                ran.gil_held_samples += u64::from(kind.held);
                // Each function once per stack: recursion counts once in `total`.
                self.counted.clear();
                let stack = stack_of(t.tid).unwrap_or_default();
                for (depth, &(id, _)) in stack.iter().enumerate() {
                    if self.counted.insert(id) {
                        ran.functions
                            .entry(id)
                            .or_default()
                            .add(depth == 0, true, kind);
                    }
                }
            }
        }
        if self.figures.len() > TASKS_KEPT {
            self.fold_unlisted();
        }
    }

    /// Counts a loop thread's tick into its span and, at its slow read, splits the span's run
    /// time among the tasks seen running on a CPU in it (this tick included).
    fn split_cpu(&mut self, t: &ThreadTick) {
        let Some(c) = t.counters else {
            return;
        };
        if t.running_task.is_none() && !self.spans.contains_key(&t.tid) {
            return;
        }
        let span = self.spans.entry(t.tid).or_default();
        if span.start_ticks != c.start_ticks || span.run_ns.is_none() {
            *span = CpuSpan {
                start_ticks: c.start_ticks,
                run_ns: c.run_ns,
                ..CpuSpan::default()
            };
            return;
        }
        // Only a tick seen on a CPU samples where the CPU goes: a thread preempted mid-step
        // waits there, and the CPU it gets later runs whatever comes next.
        if c.on_cpu.unwrap_or(c.state == OsState::Running) {
            span.on_cpu += 1;
            if let Some(task) = t.running_task {
                match span.tasks.iter_mut().find(|(id, _)| *id == task) {
                    Some((_, ticks)) => *ticks += 1,
                    None => span.tasks.push((task, 1)),
                }
            }
        }
        if c.slow.is_none() {
            return;
        }
        let (Some(now), Some(then)) = (c.run_ns, span.run_ns) else {
            return;
        };
        let ns = now.saturating_sub(then) + span.held_ns;
        if span.on_cpu > 0 {
            for &(task, ticks) in &span.tasks {
                self.figures.entry(task).or_default().cpu_s +=
                    ns as f64 / 1e9 * ticks as f64 / span.on_cpu as f64;
            }
            span.held_ns = 0;
            span.held_spans = 0;
        } else if span.held_spans < MAX_HELD_SPANS {
            span.held_ns = ns;
            span.held_spans += 1;
        } else {
            span.held_ns = 0;
            span.held_spans = 0;
        }
        span.run_ns = Some(now);
        span.on_cpu = 0;
        span.tasks.clear();
    }

    /// Folds the figures of tasks no longer listed into [`Self::finished`].
    fn fold_unlisted(&mut self) {
        let listed = self.listed_ids();
        // Tasks of a span not yet split are kept for its CPU.
        let open: rustc_hash::FxHashSet<u64> = self
            .spans
            .values()
            .flat_map(|s| s.tasks.iter().map(|&(t, _)| t))
            .collect();
        let finished = &mut self.finished;
        self.functions
            .retain(|id, _| listed.contains(id) || open.contains(id));
        self.figures.retain(|id, f| {
            let keep = listed.contains(id) || open.contains(id);
            if !keep {
                finished.0 += 1;
                finished.1.add(f);
            }
            keep
        });
    }

    /// What task `id` ran, if it is kept.
    pub fn functions_of(&self, id: u64) -> Option<&TaskFunctions> {
        self.functions.get(&id)
    }

    /// Ids of the tasks in the latest list.
    fn listed_ids(&self) -> rustc_hash::FxHashSet<u64> {
        self.listed
            .iter()
            .flat_map(|l| l.iter().map(|t| t.id))
            .collect()
    }

    /// The latest list read, if any (`None`: no task list was ever read).
    pub fn listed(&self) -> Option<&Arc<[TaskTick]>> {
        self.listed.as_ref()
    }

    /// A task's figures (zero if it never ran at a tick).
    pub fn figures(&self, id: u64) -> TaskFigures {
        self.figures.get(&id).cloned().unwrap_or_default()
    }

    /// The figures of every task not in the latest list (finished, or folded away), and
    /// how many they are.
    pub fn not_listed(&self) -> (u64, TaskFigures) {
        let listed = self.listed_ids();
        let mut out = self.finished.clone();
        for (id, f) in &self.figures {
            if !listed.contains(id) {
                out.0 += 1;
                out.1.add(f);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tick::{SlowThreadCounters, ThreadCounters};

    /// Loop thread 7 at run time `run_ns`, running `task`, on a CPU or not, slow read or not.
    fn tick(run_ns: u64, task: Option<u64>, on_cpu: bool, slow: bool) -> ThreadTick {
        ThreadTick {
            tid: 7,
            running_task: task,
            counters: Some(ThreadCounters {
                state: OsState::Running,
                start_ticks: 1,
                run_ns: Some(run_ns),
                on_cpu: Some(on_cpu),
                slow: slow.then(SlowThreadCounters::default),
                ..ThreadCounters::default()
            }),
            ..ThreadTick::default()
        }
    }

    #[test]
    fn a_spans_run_time_is_split_among_the_ticks_seen_on_a_cpu() {
        let mut table = TaskTable::default();
        let none = |_| None;
        // The span starts at 0 ns; ticks: a, b, b (preempted: no share), loop code, b at the
        // slow read, 8 ms in. Seen on a CPU: a, b, loop, b: a 2 ms, b 4 ms, the loop 2 ms.
        table.ingest(&[tick(0, Some(1), true, true)], None, none);
        table.ingest(&[tick(1_000_000, Some(1), true, false)], None, none);
        table.ingest(&[tick(3_000_000, Some(2), true, false)], None, none);
        table.ingest(&[tick(4_000_000, Some(2), false, false)], None, none);
        table.ingest(&[tick(6_000_000, None, true, false)], None, none);
        table.ingest(&[tick(8_000_000, Some(2), true, true)], None, none);
        assert!((table.figures(1).cpu_s - 0.002).abs() < 1e-12);
        assert!((table.figures(2).cpu_s - 0.004).abs() < 1e-12);
        assert_eq!(table.figures(2).samples, 3);
        // A span with no tick seen on a CPU passes its run time to the next.
        table.ingest(&[tick(9_000_000, Some(1), false, false)], None, none);
        table.ingest(&[tick(10_000_000, Some(1), false, true)], None, none);
        table.ingest(&[tick(11_000_000, Some(1), true, false)], None, none);
        table.ingest(&[tick(12_000_000, Some(1), true, true)], None, none);
        assert!((table.figures(1).cpu_s - 0.006).abs() < 1e-12);
    }
}
