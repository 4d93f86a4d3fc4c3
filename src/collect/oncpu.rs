//! Whether a runnable thread is on a CPU while its stack is read.
//!
//! The kernel's state `R` means running *or* waiting for a CPU. A thread that waits sits where
//! the scheduler stopped it, and on an overloaded machine (or when hptop's own sampler wakes on
//! its CPU) that is disproportionately a system call that updates its run time (EEVDF preempts
//! there): crediting CPU to such stacks drifts figures toward system-call sites. Each runnable
//! thread's task clock (a perf software counter: its exact on-CPU time, brought up to date at
//! every read) is read right before py-spy reads the first thread state and again once every
//! thread's leaf frames are read: a thread that ran until then was on a CPU where its stack
//! was read (see [`ran_until`]). With `--blocking`, right before the pause is asked for and
//! once it holds, with the thread's switch-in count (see [`ran_into_the_stop`]).
//! The model credits CPU only to stacks seen on a CPU (docs/figures.md, "CPU credited to
//! stacks seen on a CPU").
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

    /// Called once the target is paused (`--blocking`), after [`OnCpuProbe::before`] was
    /// called right before the pause was asked for: each thread read then, and whether it
    /// was on a CPU when it stopped: it ran since, and was not switched in meanwhile (see
    /// [`ran_into_the_stop`]). `switched_in` tells whether a thread was switched in since
    /// its `before` read.
    pub fn after_pause(
        &mut self,
        mut switched_in: impl FnMut(u32) -> Option<bool>,
    ) -> Vec<(u32, bool)> {
        self.judge(|tid, ran, _| Some(ran_into_the_stop(ran, switched_in(tid)?)))
    }

    /// Called right after the leaf frames were read (not paused): each thread read by
    /// [`OnCpuProbe::before`], and whether it ran from that read until the leaves were read
    /// (see [`ran_until`]).
    pub fn after_leaves(&mut self) -> Vec<(u32, bool)> {
        let leaves = Instant::now();
        self.judge(|_, ran, at| {
            let needed = leaves.saturating_duration_since(at).as_nanos();
            Some(ran_until(u128::from(ran), needed))
        })
    }

    /// Reads again the clock of each thread read by [`OnCpuProbe::before`] and asks `on`
    /// (tid, ns it ran since, when it was first read) whether it was on a CPU; threads whose
    /// clock or answer is missing are left out.
    fn judge(&mut self, mut on: impl FnMut(u32, u64, Instant) -> Option<bool>) -> Vec<(u32, bool)> {
        let first = std::mem::take(&mut self.first);
        let told = first
            .iter()
            .filter_map(|&(tid, then, at)| {
                let now = self.clocks.get_mut(&tid)?.counter.read().ok()?;
                Some((tid, on(tid, now.saturating_sub(then), at)?))
            })
            .collect();
        // Kept for its allocation; `before` clears it.
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
                // Not allowed or not supported: perf events are not for us here. Anything
                // else (the thread exited, no descriptor left) concerns this thread only.
                let refused = [
                    libc::EACCES,
                    libc::EPERM,
                    libc::ENOSYS,
                    libc::ENOENT,
                    libc::EINVAL,
                    libc::EOPNOTSUPP,
                ];
                if e.raw_os_error().is_some_and(|code| refused.contains(&code)) {
                    self.unavailable = true;
                }
                None
            }
        }
    }
}

/// Whether a thread whose task clock advanced `ran` ns from its first read to its second was
/// on a CPU when its leaf frames were read, `needed` ns after its first read: it ran (97 %
/// of) that long. One that ran less was waiting at the start, or was switched out before the
/// read, and then sits where it was preempted: at a system call, disproportionately, under
/// EEVDF (docs/figures.md). Its second read comes after the leaves', so a thread that ran on
/// reads more than `needed`.
pub fn ran_until(ran: u128, needed: u128) -> bool {
    ran > 0 && ran * 100 >= needed * 97
}

/// Whether a thread whose (user-space) task clock advanced `ran` ns between a read right
/// before the pause was asked for and one once it is paused, and which was or was not
/// `switched_in` meanwhile, was on a CPU when it stopped. Asking for the pause takes the
/// helper's wake-up, which on a loaded machine can take milliseconds: a thread running at
/// the first read may have been preempted (at a system call, under EEVDF) before its stop,
/// and to stop, a thread that waits for a CPU must be switched in. One stopped while it
/// ran user code ran since the first read and was never switched in: its stack is where it
/// ran. (Judged over the reads before the pause, as until this rule, a paused read beside 3
/// busy loops gave the loop making system calls 28 % against 1 %.)
pub fn ran_into_the_stop(ran: u64, switched_in: bool) -> bool {
    ran > 0 && !switched_in
}

#[cfg(test)]
mod tests {
    use super::{ran_into_the_stop, ran_until};

    #[test]
    fn a_paused_thread_was_on_a_cpu_if_it_ran_into_its_stop() {
        assert!(ran_into_the_stop(5_000, false));
        // Preempted before the stop, switched in to stop: where it was preempted.
        assert!(!ran_into_the_stop(5_000, true));
        // Waiting (or in the kernel) throughout.
        assert!(!ran_into_the_stop(0, false));
    }

    #[test]
    fn a_thread_on_a_cpu_at_the_leaves_read_ran_until_it() {
        assert!(ran_until(120, 100));
        assert!(ran_until(97, 100));
        // Switched out before the read (or in only after the start): where it was preempted.
        assert!(!ran_until(60, 100));
        assert!(!ran_until(0, 0));
    }
}
