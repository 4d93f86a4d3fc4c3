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

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The sampler thread's CPU affinity, kept off the target's runnable threads' CPUs.
#[derive(Debug)]
pub struct Placement {
    /// The CPUs the sampler may run on (its affinity when sampling began: a container's
    /// cpuset, a `taskset`), in order; empty when placement is off.
    allowed: Vec<usize>,
    /// The CPUs of the affinity set last, `allowed` at first.
    current: Vec<usize>,
}

impl Placement {
    /// Placement for the calling thread (the sampler): off on a single CPU, or where the
    /// affinity cannot be read.
    pub fn new() -> Self {
        let allowed = affinity().unwrap_or_default();
        let allowed = if allowed.len() < 2 {
            Vec::new()
        } else {
            allowed
        };
        Self {
            current: allowed.clone(),
            allowed,
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

impl Default for Placement {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampler_leaves_the_cpus_of_runnable_threads_and_comes_back() {
        // On a thread of its own: the affinity it sets is that thread's.
        std::thread::spawn(|| {
            let allowed = affinity().unwrap();
            let mut placement = Placement::new();
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
            assert_ne!(reader.last_cpu(me), Some(first));
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
}
