//! Per-task figures of asyncio programs (Python 3.14+): which task each event-loop thread ran
//! at each tick, and the task list read about once a second (see `collect::tasks`).
//!
//! A task's `samples` are the ticks at which its thread ran it; its `cpu_s` is its thread's
//! on-CPU time (schedstat run time) over each interval that began with the task running on
//! a CPU (seen running by the task-clock probe, or in state R without it): the rule that
//! credits CPU to stacks seen on a CPU (docs/figures.md).
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
    /// CPU seconds of the intervals that began with it running.
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
    /// Per thread: its run time at the last tick it ran a task, and that task.
    open: HashMap<u32, (u64, u64)>,
}

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
        }
        for t in threads {
            let run_ns = t.counters.and_then(|c| c.run_ns);
            if let Some(now) = run_ns {
                if let Some((before, task)) = self.open.remove(&t.tid) {
                    self.figures.entry(task).or_default().cpu_s +=
                        now.saturating_sub(before) as f64 / 1e9;
                }
            }
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
                // Only an interval that begins with the thread on a CPU is the task's: one
                // preempted mid-step waits there, and the CPU it gets later runs whatever
                // comes next (the bias `--mode cpu` avoids for functions, collect::oncpu).
                let on_cpu = t
                    .counters
                    .is_some_and(|c| c.on_cpu.unwrap_or(c.state == OsState::Running));
                if let (Some(now), true) = (run_ns, on_cpu) {
                    self.open.insert(t.tid, (now, task));
                }
            }
        }
        if self.figures.len() > TASKS_KEPT {
            self.fold_unlisted();
        }
    }

    /// Folds the figures of tasks no longer listed into [`Self::finished`].
    fn fold_unlisted(&mut self) {
        let listed = self.listed_ids();
        let open: rustc_hash::FxHashSet<u64> = self.open.values().map(|&(_, t)| t).collect();
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
