//! Whether a runnable thread is on a CPU while its stack is read.
//!
//! The kernel's state `R` means running *or* waiting for a CPU. A thread that waits sits where
//! the scheduler stopped it, and on an overloaded machine (or when hptop's own sampler wakes on
//! its CPU) that is disproportionately a system call that updates its run time (EEVDF preempts
//! there): crediting CPU to such stacks drifts figures toward system-call sites. Each runnable
//! thread's task clock (a perf software counter: its exact on-CPU time, brought up to date at
//! every read) is read just before and just after the stacks are read; a clock that advanced
//! means the thread ran during the read. The model credits CPU only to stacks seen on a CPU
//! (docs/figures.md, "Counters credited to functions").
//!
//! Where perf events are not allowed (a container's seccomp profile, `perf_event_paranoid`
//! for a non-root user on someone else's process), nothing is told and the model falls back
//! to state `R`.

use std::collections::HashMap;
use std::time::Instant;

use perf_event::events::Software;
use perf_event::{Builder, Counter};

/// Threads probed per tick, at most: past it the rest count by state `R`, as without perf
/// (200 runnable threads would cost 400 reads per tick).
pub const MAX_PROBED: usize = 64;

/// One thread's task clock, and which thread it belongs to.
struct Clock {
    counter: Counter,
    /// The thread's start time (`stat` field 22): a reused tid is another thread.
    start_ticks: u64,
}

/// Task clocks of the target's runnable threads, kept open between ticks.
#[derive(Default)]
pub struct OnCpuProbe {
    clocks: HashMap<u32, Clock>,
    /// (tid, task clock ns, when) of this tick's first reads.
    first: Vec<(u32, u64, Instant)>,
    /// Opening a counter failed for want of permission or support: stop trying.
    unavailable: bool,
    /// Counters that may stay open (a share of the per-thread file budget).
    budget: usize,
}

impl OnCpuProbe {
    /// A probe keeping at most `budget` counters open.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// Reads the task clock of each runnable thread given (tid, start time), just before
    /// the stacks are read.
    pub fn before(&mut self, runnable: impl Iterator<Item = (u32, u64)>) {
        self.first.clear();
        if self.unavailable {
            return;
        }
        for (tid, start_ticks) in runnable.take(MAX_PROBED) {
            if let Some(ns) = self.read(tid, start_ticks) {
                self.first.push((tid, ns, Instant::now()));
            }
        }
    }

    /// After the stacks were read: each thread read by [`OnCpuProbe::before`], and whether
    /// it was on a CPU for at least half the time between its two reads. One on a CPU
    /// throughout runs all of it; one waiting throughout none; one switched in or out during
    /// the read, a part (told by where the larger part was).
    pub fn after(&mut self) -> Vec<(u32, bool)> {
        let first = std::mem::take(&mut self.first);
        let told = first
            .iter()
            .filter_map(|&(tid, then, at)| {
                let now = self.clocks.get_mut(&tid)?.counter.read().ok()?;
                let ran = u128::from(now.saturating_sub(then));
                Some((tid, ran * 2 >= at.elapsed().as_nanos()))
            })
            .collect();
        self.first = first;
        told
    }

    /// Forgets the clocks of threads no longer listed (`tids` sorted).
    pub fn retain(&mut self, tids: &[u32]) {
        self.clocks.retain(|tid, _| tids.binary_search(tid).is_ok());
    }

    fn read(&mut self, tid: u32, start_ticks: u64) -> Option<u64> {
        if self
            .clocks
            .get(&tid)
            .is_some_and(|c| c.start_ticks != start_ticks)
        {
            self.clocks.remove(&tid);
        }
        if !self.clocks.contains_key(&tid) {
            if self.clocks.len() >= self.budget {
                return None;
            }
            let counter = self.open(tid)?;
            self.clocks.insert(
                tid,
                Clock {
                    counter,
                    start_ticks,
                },
            );
        }
        self.clocks.get_mut(&tid)?.counter.read().ok()
    }

    fn open(&mut self, tid: u32) -> Option<Counter> {
        let pid = libc::pid_t::try_from(tid).ok()?;
        // User-space only, so a non-root user may watch its own processes under the default
        // `perf_event_paranoid` (2); the task clock advances while the thread is on a CPU
        // either way.
        let built = Builder::new(Software::TASK_CLOCK)
            .observe_pid(pid)
            .any_cpu()
            .exclude_kernel(true)
            .exclude_hv(true)
            .enabled(true)
            .build();
        match built {
            Ok(counter) => Some(counter),
            Err(e) => {
                // The thread may have exited (ESRCH): try the next one. Anything else means
                // perf events are not for us here.
                if e.raw_os_error() != Some(libc::ESRCH) {
                    self.unavailable = true;
                }
                None
            }
        }
    }
}
