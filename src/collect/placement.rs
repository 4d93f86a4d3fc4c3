//! Where hptop's sampler thread runs: on a CPU that none of the target's runnable threads is
//! on, where there is one.
//!
//! The sampler wakes about every 10 ms. Woken on the CPU a target thread runs on, it preempts
//! that thread, which then waits for the CPU while its stack is read: it is judged off a CPU
//! (see `oncpu`), and its CPU of that span is credited to the few stacks seen on a CPU
//! elsewhere (docs/figures.md). The scheduler keeps a timer-woken thread where it last ran,
//! so this lasts for seconds at a time. Measured on the contention workload (2 CPUs, 10 s at
//! 100 Hz, reads of the two workers seen on a CPU, of ~2,000): beside 3 busy loops 87-510
//! before, 524-555 with placement; beside 6, 81-202 and 202-267; quiet, 540-610 either way.
//! Moving the sampler away also spares the target those preemptions.
//!
//! Where the threads move between CPUs (two threads handing the GIL to each other on two
//! CPUs, a few times per tick), where they were at the last tick says little of where they
//! are at the next: the sampler woke on the running thread's CPU at ~45 % of the ticks of a
//! quiet machine. So the step is taken when the sampler wakes, before anything is read: a
//! thread it finds waiting on its own CPU is one it preempted. It moves away, and waits a
//! random fraction of a millisecond before reading: read at once, the thread would be a
//! fixed time past where the scheduler stopped it (EEVDF stops it at its next system call),
//! and the reads bunch at fixed distances after system calls (measured: crunch 83 % against
//! 75 %, blend 15 % against 23 %); after a random wait they fall anywhere.

use std::time::Duration;

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use super::oncpu::MAX_PROBED;
use super::procfs::ProcReader;

/// Longest wait after stepping off a preempted thread's CPU; at most a quarter of the
/// sampling interval.
const MAX_STEP_ASIDE_WAIT: Duration = Duration::from_micros(1500);

/// The sampler thread's CPU affinity, kept off the target's runnable threads' CPUs.
#[derive(Debug)]
pub struct Placement {
    /// The CPUs the sampler may run on (its affinity when sampling began: a container's
    /// cpuset, a `taskset`), in order; empty when placement is off.
    allowed: Vec<usize>,
    /// The CPUs of the affinity set last, `allowed` at first.
    current: Vec<usize>,
    /// Longest wait after stepping aside (see the module's note).
    max_wait: Duration,
    random: fastrand::Rng,
}

impl Placement {
    /// Placement for the calling thread (the sampler, sampling at `rate_hz`): off on a
    /// single CPU, or where the affinity cannot be read.
    pub fn new(rate_hz: f64) -> Self {
        let allowed = affinity().unwrap_or_default();
        let allowed = if allowed.len() < 2 {
            Vec::new()
        } else {
            allowed
        };
        let interval = Duration::from_secs_f64(1.0 / rate_hz.max(1.0));
        Self {
            current: allowed.clone(),
            allowed,
            max_wait: (interval / 4).min(MAX_STEP_ASIDE_WAIT),
            random: fastrand::Rng::new(),
        }
    }

    /// At the sampler's wake-up: moves it off the CPUs of the `recent` threads that are
    /// runnable now, and when one of them waits on the CPU it woke on (it preempted that
    /// thread), waits a random time, with `wait` (not paused: see the module's note).
    pub fn step_aside(&mut self, procs: &mut ProcReader, recent: &[u32], wait: bool) {
        let here = sched_getcpu().ok();
        let mut busy = Vec::new();
        for &tid in recent.iter().take(MAX_PROBED) {
            busy.extend(procs.runnable_cpu(tid));
            if self.all_busy(&busy) {
                break;
            }
        }
        self.avoid(&busy);
        let preempted = here.is_some_and(|cpu| is_in(&busy, cpu) && !self.current.contains(&cpu));
        if wait && preempted && !self.max_wait.is_zero() {
            let micros = self.random.u64(0..=self.max_wait.as_micros() as u64);
            std::thread::sleep(Duration::from_micros(micros));
        }
    }

    /// Whether placement is on (more than one CPU allowed, no change refused).
    pub fn is_on(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// Whether every allowed CPU is in `busy`: reading more threads' CPUs changes nothing.
    pub fn all_busy(&self, busy: &[u32]) -> bool {
        self.allowed.iter().all(|&cpu| is_in(busy, cpu))
    }

    /// Moves the calling thread to the allowed CPUs not in `busy` (those the target's
    /// runnable threads last ran on); to all of them when every one is busy. A refused
    /// change turns placement off.
    pub fn avoid(&mut self, busy: &[u32]) {
        if self.allowed.is_empty() {
            return;
        }
        let mut wanted: Vec<usize> = self
            .allowed
            .iter()
            .copied()
            .filter(|&cpu| !is_in(busy, cpu))
            .collect();
        if wanted.is_empty() {
            wanted.clone_from(&self.allowed);
        }
        if wanted == self.current {
            return;
        }
        let mut set = CpuSet::new();
        for &cpu in &wanted {
            if set.set(cpu).is_err() {
                self.allowed.clear();
                return;
            }
        }
        if sched_setaffinity(Pid::from_raw(0), &set).is_err() {
            self.allowed.clear();
            return;
        }
        self.current = wanted;
    }
}

/// The CPUs the calling thread may run on, in order.
fn affinity() -> Option<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).ok()?;
    Some(
        (0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .collect(),
    )
}

/// Whether `cpu` is one of `cpus`.
fn is_in(cpus: &[u32], cpu: usize) -> bool {
    cpus.iter().any(|&c| usize::try_from(c) == Ok(cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampler_leaves_the_cpus_of_runnable_threads_and_comes_back() {
        // On a thread of its own: the affinity it sets is that thread's.
        std::thread::spawn(|| {
            let allowed = affinity().unwrap();
            let mut placement = Placement::new(100.0);
            if allowed.len() < 2 {
                assert!(!placement.is_on());
                eprintln!("skipped: one CPU allowed");
                return;
            }
            let first = u32::try_from(allowed[0]).unwrap();
            placement.avoid(&[first]);
            assert_eq!(affinity().unwrap(), allowed[1..].to_vec());
            // Where it runs now is not the avoided CPU.
            let mut reader = crate::collect::procfs::ProcReader::open(std::process::id()).unwrap();
            let tids = reader.list_tids().unwrap();
            let _ = reader.read_threads(&tids, false);
            let me = u32::try_from(nix::unistd::gettid().as_raw()).unwrap();
            assert_ne!(reader.runnable_cpu(me), Some(first));
            // Every CPU busy: anywhere allowed.
            let all: Vec<u32> = allowed.iter().map(|&c| u32::try_from(c).unwrap()).collect();
            assert!(placement.all_busy(&all));
            placement.avoid(&all);
            assert_eq!(affinity().unwrap(), allowed);
            placement.avoid(&[]);
            assert_eq!(affinity().unwrap(), allowed);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_sampler_steps_off_the_cpu_of_a_thread_it_preempted() {
        std::thread::spawn(|| {
            let allowed = affinity().unwrap();
            if allowed.len() < 2 {
                eprintln!("skipped: one CPU allowed");
                return;
            }
            let cpu = allowed[0];
            let mut one = CpuSet::new();
            one.set(cpu).unwrap();
            // A busy thread and this one (the sampler) on one CPU: whenever this one runs,
            // the other waits there, runnable, as a target thread preempted by the sampler.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (tx, rx) = std::sync::mpsc::channel();
            let busy = {
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    sched_setaffinity(Pid::from_raw(0), &one).unwrap();
                    tx.send(nix::unistd::gettid().as_raw()).unwrap();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            };
            let busy_tid = u32::try_from(rx.recv().unwrap()).unwrap();
            // Placement over every allowed CPU; then this thread too on the busy one.
            let mut placement = Placement::new(100.0);
            sched_setaffinity(Pid::from_raw(0), &one).unwrap();
            let mut reader = crate::collect::procfs::ProcReader::open(std::process::id()).unwrap();
            let tids = reader.list_tids().unwrap();
            let _ = reader.read_threads(&tids, false);
            // Runnable on our CPU (read while we run there: it waits).
            let mut stepped = false;
            for _ in 0..50 {
                if reader.runnable_cpu(busy_tid) == u32::try_from(cpu).ok() {
                    placement.step_aside(&mut reader, &[busy_tid], true);
                    stepped = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            busy.join().unwrap();
            assert!(
                stepped,
                "the busy thread was never seen runnable on our CPU"
            );
            // Off that CPU, and running elsewhere.
            assert!(!affinity().unwrap().contains(&cpu));
            assert_ne!(sched_getcpu().ok(), Some(cpu));
        })
        .join()
        .unwrap();
    }
}
