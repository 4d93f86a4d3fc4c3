//! `--subprocesses`: follow the target's Python descendants as they come and go.
//!
//! Every [`FOLLOW_EVERY`] the follower walks the target's process tree through
//! `/proc/PID/task/*/children` (the kernel's own child lists: no scan of all of `/proc`, and
//! nothing at the sampling rate), and starts one sampler thread per Python process it has not
//! seen, sending into the same channel as the target's. Non-Python processes in between (a
//! shell, a launcher) are walked through, not sampled. A worker that lives shorter than
//! `FOLLOW_EVERY` may be missed; its exit is seen by its own sampler.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{discover, spawn_sampler, SamplerEvent, SamplerHandle, SamplerOptions, Shared};

/// Time between two walks of the process tree.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// Most descendants walked per round (a fork bomb must not stall hptop).
const MAX_WALK: usize = 4096;
/// Youngest process attached, in seconds (see `follow`).
const MIN_AGE_S: f64 = 0.05;
/// Attach attempts for a new process, 20 ms apart (a spawned interpreter may still start).
const CHILD_ATTACH_RETRIES: u64 = 25;

/// The follower thread and the samplers it started.
pub struct Follower {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Follower {
    /// Starts following the descendants of `options.pid`.
    pub fn start(
        options: &SamplerOptions,
        events: SyncSender<SamplerEvent>,
        shared: Shared,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let options = options.clone();
        let handle = std::thread::Builder::new()
            .name("hptop-follow".into())
            .spawn(move || follow(&options, &events, &shared, &thread_stop))
            .ok();
        Self { stop, handle }
    }

    /// Stops following and every sampler it started.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

fn follow(
    options: &SamplerOptions,
    events: &SyncSender<SamplerEvent>,
    shared: &Shared,
    stop: &AtomicBool,
) {
    let root = options.pid;
    // Pids already looked at (attached or not Python), with their start time: a reused pid
    // is a new process.
    let mut seen: HashSet<(u32, u64)> = HashSet::new();
    let mut samplers: Vec<SamplerHandle> = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        next = Instant::now() + FOLLOW_EVERY;
        samplers.retain(|s| !s.finished());
        for pid in discover::descendants(root, MAX_WALK, |_| false) {
            let Some(info) = discover::ProcessInfo::read(pid) else {
                continue;
            };
            if info.is_zombie() || seen.contains(&(pid, info.stat.start_ticks)) {
                continue;
            }
            // A process forked a moment ago may be about to exec a new program (subprocess,
            // multiprocessing's spawn and forkserver): attaching to the copy of its parent
            // would read the old image. Look again at the next walk.
            if super::procfs::age_s(info.stat.start_ticks).is_some_and(|age| age < MIN_AGE_S) {
                continue;
            }
            seen.insert((pid, info.stat.start_ticks));
            if discover::python_guess(pid).is_none() {
                continue;
            }
            let child_options = SamplerOptions {
                pid,
                attach_retries: CHILD_ATTACH_RETRIES,
                subprocesses: false,
                ..options.clone()
            };
            // A child that cannot be attached (gone already, not an interpreter after all)
            // is left alone: it stays seen and is not retried.
            if let Ok((_, handle)) = spawn_sampler(&child_options, events, shared.clone()) {
                samplers.push(handle);
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    for sampler in &mut samplers {
        sampler.stop();
    }
}
