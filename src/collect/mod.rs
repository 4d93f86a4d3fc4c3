//! Everything that touches the target: `/proc` and py-spy. No UI, no aggregation.
//!
//! [`Sampler`] runs on its own OS thread, named `hptop-sampler` (py-spy's `PythonSpy` is
//! `!Send`), and sends [`SamplerEvent`]s into a bounded channel.

mod attach;
pub mod discover;
pub mod follow;
pub mod gil;
pub mod oncpu;
pub mod pause;
pub mod placement;
mod process_tick;
pub mod procfs;
pub mod sanitize;
pub mod smaps;
pub mod source;
pub mod stacks;
pub mod tasks;
pub mod tick;
pub mod timer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::HptopError;
use attach::{check_target, classify_attach_error};
use process_tick::{sample, Target};
use tick::Tick;
use timer::Timer;

/// How the sampler samples.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent command-line flags"
)]
pub struct SamplerOptions {
    /// Target process.
    pub pid: u32,
    /// Ticks per second.
    pub rate_hz: f64,
    /// Pause the target per sample (exact stacks).
    pub blocking: bool,
    /// Native frames (needs the `unwind` feature).
    pub native: bool,
    /// Root the stacks of code running in an asyncio task at the task (see `tasks`).
    pub async_stacks: bool,
    /// Read the costlier counters (`status`, `io`) every this many ticks.
    pub slow_every: u32,
    /// Attach attempts, 20 ms apart, while a new interpreter starts.
    pub attach_retries: u64,
    /// Follow the target's Python descendants as they come and go (see `follow`).
    pub subprocesses: bool,
}

impl SamplerOptions {
    /// Options for `pid` at `rate_hz`, reading the slow counters about 10 times a second.
    pub fn new(pid: u32, rate_hz: f64) -> Self {
        Self {
            pid,
            rate_hz,
            blocking: false,
            native: false,
            async_stacks: false,
            slow_every: ((rate_hz / 10.0).round() as u32).max(1),
            attach_retries: 3,
            subprocesses: false,
        }
    }
}

/// What the target is, known once attached.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Command line, sanitised.
    pub cmdline: Vec<String>,
    /// Interpreter version as py-spy read it.
    pub python_version: String,
    /// Start time since boot in clock ticks (for the target's uptime).
    pub start_ticks: u64,
}

/// What the sampler thread reports.
#[derive(Debug)]
pub enum SamplerEvent {
    /// A process was attached; its ticks follow. The first event of every sampler.
    Attached(TargetInfo),
    /// Ticks in the order taken. They come in batches (see [`BATCH_INTERVAL`]) so the consumer
    /// wakes a few times a second, not at every tick.
    Ticks(Vec<Tick>),
    /// The process with this pid exited; no more ticks of it follow.
    Exited(u32),
    /// The sampler thread of the process with this pid panicked; no more ticks of it follow.
    Panicked(u32, String),
}

/// Handle on the running sampler threads: the target's, and with `subprocesses` the
/// follower's and one per Python descendant, all sending into one channel.
pub struct Sampler {
    /// The attached target.
    pub target: TargetInfo,
    /// Ticks and state changes, in order per process.
    pub events: Receiver<SamplerEvent>,
    root: SamplerHandle,
    follower: Option<follow::Follower>,
    shared: Shared,
}

/// What all sampler threads of one session share.
#[derive(Clone)]
pub struct Shared {
    /// Held (read) by each sampler while it samples; taken (write) before hptop stops itself,
    /// so no `--blocking` pause of any target is held while hptop is stopped.
    gate: Arc<RwLock<()>>,
    /// Time zero of every tick's `at`, so processes' timelines line up.
    epoch: Instant,
    /// While set, no sampler takes samples.
    paused: Arc<AtomicBool>,
}

/// One sampler thread.
pub struct SamplerHandle {
    stop: Arc<AtomicBool>,
    /// Set to have this sampler stop hptop between two samples (the root's only).
    suspend: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl SamplerHandle {
    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }

    /// Whether the thread has ended (its process exited).
    pub fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

/// Name of every sampler thread (the TUI's panic hook knows its panics are reported).
pub const SAMPLER_THREAD: &str = "hptop-sampler";

/// Channel depth in batches: many seconds of ticks.
const CHANNEL_DEPTH: usize = 256;
/// How long ticks are held before they are sent; the first tick is sent at once.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(100);

impl Sampler {
    /// Checks the target, attaches to it on a new thread and starts sampling (and, with
    /// `subprocesses`, following its Python descendants).
    ///
    /// # Errors
    /// A typed error naming what is wrong with the target and the fix.
    pub fn start(options: &SamplerOptions) -> Result<Self, HptopError> {
        let (events_tx, events) = mpsc::sync_channel(CHANNEL_DEPTH);
        let shared = Shared {
            gate: Arc::new(RwLock::new(())),
            epoch: Instant::now(),
            paused: Arc::new(AtomicBool::new(false)),
        };
        let (target, root) = spawn_sampler(options, &events_tx, shared.clone())?;
        let follower = options
            .subprocesses
            .then(|| follow::Follower::start(options, events_tx, shared.clone()));
        Ok(Self {
            target,
            events,
            root,
            follower,
            shared,
        })
    }

    /// A flag that, once set (e.g. by a SIGTSTP handler), makes hptop stop itself with
    /// SIGSTOP at the next point between two samples, never while a target is paused.
    pub fn suspend_request(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.root.suspend)
    }

    /// Stops hptop now (SIGSTOP to itself), once no sampler is inside a sample: the gate
    /// keeps them out while hptop is stopped, so no `--blocking` pause of any target is held.
    /// For the main thread; a signal handler sets `suspend_request` instead.
    pub fn suspend_self(&self) {
        let _guard = self.shared.gate.write();
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    }

    /// Pauses (true) or resumes sampling. While paused nothing of the targets is read.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::Relaxed);
    }

    /// Stops sampling and waits for the threads to end.
    pub fn stop(&mut self) {
        if let Some(follower) = self.follower.as_mut() {
            follower.stop();
        }
        self.root.stop();
    }
}

impl Sampler {
    /// The instant ticks' `at` counts from.
    pub fn epoch(&self) -> Instant {
        self.shared.epoch
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checks `options.pid`, attaches to it on a new thread, announces it with
/// [`SamplerEvent::Attached`] and lets it sample into `events`.
///
/// # Errors
/// A typed error naming what is wrong with the process and the fix.
pub fn spawn_sampler(
    options: &SamplerOptions,
    events_tx: &SyncSender<SamplerEvent>,
    shared: Shared,
) -> Result<(TargetInfo, SamplerHandle), HptopError> {
    let info = check_target(options.pid)?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let suspend = Arc::new(AtomicBool::new(false));
    let thread_suspend = Arc::clone(&suspend);
    let thread_options = options.clone();
    let thread_events = events_tx.clone();
    let handle = std::thread::Builder::new()
        .name(SAMPLER_THREAD.into())
        .spawn(move || {
            let panic_tx = thread_events.clone();
            report_panic(&panic_tx, thread_options.pid, || {
                sampler_thread(
                    &thread_options,
                    &ready_tx,
                    &go_rx,
                    &thread_events,
                    &Flags {
                        stop: &thread_stop,
                        suspend: &thread_suspend,
                        shared: &shared,
                    },
                );
            });
        })
        .map_err(|e| HptopError::Launch {
            command: "hptop-sampler thread".into(),
            source: e,
        })?;
    let version = match ready_rx.recv() {
        Ok(Ok(version)) => version,
        Ok(Err(detail)) => {
            let _ = handle.join();
            return Err(classify_attach_error(&info, &detail));
        }
        Err(_) => {
            let _ = handle.join();
            return Err(classify_attach_error(&info, "the sampler thread stopped"));
        }
    };
    let target = TargetInfo {
        pid: info.pid,
        ppid: info.stat.ppid,
        cmdline: info.cmdline,
        python_version: version,
        start_ticks: info.stat.start_ticks,
    };
    // Announced before its first tick, so a consumer always knows a process before its data.
    let _ = events_tx.send(SamplerEvent::Attached(target.clone()));
    let _ = go_tx.send(());
    Ok((
        target,
        SamplerHandle {
            stop,
            suspend,
            handle: Some(handle),
        },
    ))
}

fn sampler_thread(
    options: &SamplerOptions,
    ready: &Sender<Result<String, String>>,
    go: &Receiver<()>,
    events: &SyncSender<SamplerEvent>,
    flags: &Flags,
) {
    let mut target = match Target::open(options) {
        Ok(target) => target,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(target.stacks.version()));
    if go.recv().is_err() {
        return;
    }

    let interval = Duration::from_secs_f64(1.0 / options.rate_hz.max(0.01));
    let start = flags.shared.epoch;
    let mut timer = Timer::new(Instant::now(), interval);
    let mut batch = TickBatch::new(events);
    let mut resumed = false;
    let mut index: u64 = 0;
    let mut smaps = smaps::SmapsSchedule::default();
    // When the last tick took more than three quarters of an interval, rest a third as long:
    // the rate drops (deadlines are skipped and counted, the report says so) and the sampler
    // stays under three quarters of a core, however many threads the target has.
    let mut rest_until = Instant::now();
    loop {
        let (deadline, skipped) = timer.next(Instant::now());
        let deadline = deadline.max(rest_until);
        if flags.suspend.swap(false, Ordering::Relaxed) {
            // Between samples, and with every other sampler kept out of one by the gate: no
            // pause of any target is held, so stopping here is safe.
            let _guard = flags.shared.gate.write();
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
        }
        if !sleep_until(deadline, flags.stop) {
            // One last full read, so the whole-process counters (read on the slow timer) end
            // their window with the threads' instead of up to a slow interval earlier.
            if index > 0 && !flags.shared.paused.load(Ordering::Relaxed) {
                let _guard = flags.shared.gate.read();
                let process = sample(options.pid, &mut target, true);
                batch.push(
                    Tick {
                        at: start.elapsed(),
                        interval,
                        skipped: 0,
                        resumed: std::mem::take(&mut resumed),
                        process,
                    },
                    true,
                );
            }
            batch.flush();
            return;
        }
        if flags.shared.paused.load(Ordering::Relaxed) {
            batch.flush();
            while flags.shared.paused.load(Ordering::Relaxed) {
                if !sleep_until(Instant::now() + SLEEP_SLICE, flags.stop) {
                    return;
                }
            }
            // Deadlines during the pause were not missed: start the schedule afresh.
            timer = Timer::new(Instant::now(), interval);
            resumed = true;
            continue;
        }
        let slow = index.is_multiple_of(u64::from(options.slow_every.max(1)));
        index += 1;
        let guard = flags.shared.gate.read();
        let tick_started = Instant::now();
        let mut process = sample(options.pid, &mut target, slow);
        let cost = tick_started.elapsed();
        rest_until = tick_started + cost * 4 / 3;
        drop(guard);
        if let (Some(memory), Some(counters)) = (process.memory.as_mut(), process.counters) {
            if smaps.due(Instant::now(), counters.rss_bytes) {
                memory.rollup = target.procs.read_smaps_rollup();
            }
        }
        let exited = process.exited;
        let tick = Tick {
            at: start.elapsed(),
            interval,
            skipped,
            resumed: std::mem::take(&mut resumed),
            process,
        };
        if !batch.push(tick, exited) {
            return;
        }
        if exited {
            let _ = events.send(SamplerEvent::Exited(options.pid));
            return;
        }
    }
}

/// Runs `body`; a panic in it becomes a [`SamplerEvent::Panicked`] with its message, so the
/// UI reports it instead of dying with the sampler (the panic hook still prints it).
fn report_panic(events: &SyncSender<SamplerEvent>, pid: u32, body: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        let _ = events.send(SamplerEvent::Panicked(pid, panic_message(payload.as_ref())));
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Flags the sampler thread obeys.
struct Flags<'a> {
    stop: &'a AtomicBool,
    suspend: &'a AtomicBool,
    shared: &'a Shared,
}

/// Ticks held at most while the consumer does not take them (a minute at 100 Hz).
const MAX_HELD_TICKS: usize = 6000;

/// Longest single sleep, so a stop is seen within this time even at low rates.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// Sleeps until `deadline` in slices; returns false as soon as `stop` is set. A plain
/// `nanosleep` costs less per tick than waiting on a channel with a timeout.
fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(SLEEP_SLICE));
    }
}

/// Ticks held until [`BATCH_INTERVAL`] has passed since the last send.
struct TickBatch<'a> {
    events: &'a SyncSender<SamplerEvent>,
    ticks: Vec<Tick>,
    sent_at: Option<Instant>,
}

impl<'a> TickBatch<'a> {
    fn new(events: &'a SyncSender<SamplerEvent>) -> Self {
        Self {
            events,
            ticks: Vec::new(),
            sent_at: None,
        }
    }

    /// Adds a tick and sends the batch when due (or when `now` is asked). Returns false when
    /// the consumer is gone.
    fn push(&mut self, tick: Tick, now: bool) -> bool {
        self.ticks.push(tick);
        let due = now || self.sent_at.is_none_or(|at| at.elapsed() >= BATCH_INTERVAL);
        !due || self.flush()
    }

    /// Sends what is held. Sampling never waits for the consumer: on a full channel the
    /// ticks stay held for the next flush, the oldest dropped beyond [`MAX_HELD_TICKS`].
    fn flush(&mut self) -> bool {
        self.sent_at = Some(Instant::now());
        if self.ticks.is_empty() {
            return true;
        }
        let ticks = std::mem::take(&mut self.ticks);
        match self.events.try_send(SamplerEvent::Ticks(ticks)) {
            Err(TrySendError::Full(SamplerEvent::Ticks(mut held))) => {
                let excess = held.len().saturating_sub(MAX_HELD_TICKS);
                held.drain(..excess);
                self.ticks = held;
                true
            }
            Ok(()) | Err(TrySendError::Full(_)) => true,
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_sampler_becomes_an_event() {
        let (tx, rx) = mpsc::sync_channel(4);
        let index = 7;
        report_panic(&tx, 42, || panic!("read went wrong at {index}"));
        match rx.try_recv() {
            Ok(SamplerEvent::Panicked(pid, message)) => {
                assert_eq!((pid, message.as_str()), (42, "read went wrong at 7"));
            }
            other => panic!("expected a Panicked event, got {other:?}"),
        }
        report_panic(&tx, 42, || {});
        assert!(rx.try_recv().is_err(), "no event without a panic");
    }
}
