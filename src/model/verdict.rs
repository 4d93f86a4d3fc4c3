//! Plain-words readings of the figures, only when they are clear.

use super::snapshot::ProcessSnapshot;

/// Share of its samples a thread must wait for the GIL to count as starved.
const STARVED_WAIT_PERCENT: f64 = 30.0;
/// Share of its samples a thread must run native code to count as GIL-free.
const NATIVE_PERCENT: f64 = 50.0;
/// Samples a thread needs before it is judged.
const MIN_SAMPLES: u64 = 20;

/// The GIL verdict: threads starved by it (CPU-bound Python in threads), or threads that run
/// native code without it (threads do help). `None` when neither is clear.
pub fn gil(p: &ProcessSnapshot) -> Option<String> {
    let judged = || {
        p.threads
            .iter()
            .filter(|t| t.is_python && t.samples >= MIN_SAMPLES)
    };
    let starved: Vec<f64> = judged()
        .map(|t| t.gil_wait_percent)
        .filter(|w| *w >= STARVED_WAIT_PERCENT)
        .collect();
    if starved.len() >= 2 {
        let mean = starved.iter().sum::<f64>() / starved.len() as f64;
        return Some(format!(
            "{} threads spend {mean:.0}% of their time waiting for the GIL: CPU-bound Python in \
             threads; consider processes (multiprocessing, concurrent.futures.ProcessPoolExecutor) \
             or native code that releases the GIL",
            starved.len()
        ));
    }
    let native: Vec<f64> = judged()
        .filter(|t| t.gil_wait_percent < STARVED_WAIT_PERCENT)
        .map(|t| t.native_percent)
        .filter(|n| *n >= NATIVE_PERCENT)
        .collect();
    if native.len() >= 2 {
        let mean = native.iter().sum::<f64>() / native.len() as f64;
        return Some(format!(
            "{} threads run native code without the GIL {mean:.0}% of the time: threads do help here",
            native.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::gil;
    use crate::model::snapshot::{ProcessSnapshot, ThreadRow};

    fn thread(wait: f64, native: f64) -> ThreadRow {
        ThreadRow {
            is_python: true,
            samples: 100,
            gil_wait_percent: wait,
            native_percent: native,
            ..ThreadRow::default()
        }
    }

    fn snapshot(threads: Vec<ThreadRow>) -> ProcessSnapshot {
        ProcessSnapshot {
            threads,
            ..ProcessSnapshot::default()
        }
    }

    #[test]
    fn starved_threads_native_threads_and_no_verdict() {
        let starved = gil(&snapshot(vec![
            thread(70.0, 0.0),
            thread(66.0, 0.0),
            thread(0.0, 0.0),
        ]))
        .unwrap();
        assert!(
            starved.starts_with("2 threads spend 68% of their time waiting for the GIL"),
            "{starved}"
        );
        assert!(starved.contains("consider processes"));
        let native = gil(&snapshot(vec![thread(5.0, 90.0), thread(2.0, 80.0)])).unwrap();
        assert!(
            native.starts_with("2 threads run native code without the GIL 85%"),
            "{native}"
        );
        assert!(native.contains("threads do help"));
        assert_eq!(
            gil(&snapshot(vec![thread(70.0, 0.0)])),
            None,
            "one thread is no contention"
        );
        assert_eq!(
            gil(&snapshot(vec![thread(10.0, 10.0), thread(5.0, 20.0)])),
            None
        );
        let mut few = thread(90.0, 0.0);
        few.samples = 3;
        assert_eq!(
            gil(&snapshot(vec![few.clone(), few])),
            None,
            "too few samples to judge"
        );
    }
}

/// Run-queue wait (of the time threads wanted a CPU) from which the machine counts as
/// overloaded.
const OVERLOADED_WAIT_PERCENT: f64 = 20.0;

/// The run-queue verdict: the process's threads waited for a CPU much of the time they
/// wanted one, so the machine is overloaded (and every sampler that counts runnable threads as
/// running overstates CPU). `None` below [`OVERLOADED_WAIT_PERCENT`].
pub fn runqueue(p: &ProcessSnapshot) -> Option<String> {
    (p.runqueue_wait_percent >= OVERLOADED_WAIT_PERCENT).then(|| {
        format!(
            "threads waited for a CPU {:.0}% of the time they wanted one: the machine is \
             overloaded; CPU figures count only time on a CPU",
            p.runqueue_wait_percent
        )
    })
}

/// Share of the CPU in garbage collection from which it is called out.
const GC_HEAVY_PERCENT: f64 = 20.0;
/// Samples in collections needed before it is judged.
const GC_MIN_SAMPLES: u64 = 20;

/// The garbage-collection verdict: when collections take a large share of the CPU, what
/// users tune. `None` below [`GC_HEAVY_PERCENT`].
pub fn gc(p: &ProcessSnapshot) -> Option<String> {
    (p.gc.percent >= GC_HEAVY_PERCENT && p.gc.samples >= GC_MIN_SAMPLES).then(|| {
        format!(
            "garbage collection takes {:.0}% of the CPU: objects with reference cycles (parent/child \
             links, graphs) make the cyclic collector run often; consider gc.freeze() before forking \
             workers, raising gc thresholds (gc.set_threshold), or gc.disable() around a load step",
            p.gc.percent
        )
    })
}

#[cfg(test)]
mod runqueue_tests {
    use super::*;

    #[test]
    fn the_runqueue_verdict_appears_from_a_fifth_of_waiting() {
        let mut p = ProcessSnapshot {
            runqueue_wait_percent: 53.2,
            ..ProcessSnapshot::default()
        };
        let verdict = runqueue(&p).unwrap();
        assert!(
            verdict.starts_with("threads waited for a CPU 53% of the time"),
            "{verdict}"
        );
        p.runqueue_wait_percent = 19.9;
        assert_eq!(runqueue(&p), None);
    }
}
