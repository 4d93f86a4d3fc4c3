//! Per-thread figures and the attribution of each thread's counter deltas to the function
//! it was running.
//!
//! Attribution: counters are read just before stacks at each tick, so the stack read at
//! tick k-1 is the one the thread started the interval (k-1, k] with; the delta of the fast
//! counters (`stat`: CPU, faults) over that interval is credited to it. The slow counters
//! (`status`, `io`) are read every N ticks; their delta is split evenly among the stacks
//! read in that span.

mod attribution;

use rustc_hash::FxHashMap as HashMap;

use attribution::{
    account_counters, credit_span_cpu, credit_tick_io, place_held_io, place_off_cpu,
    release_off_cpu, remember_for_slow,
};

use super::functions::{Credited, DualCounts, FunctionId, FunctionTable, SampleKind, StackIds};
use crate::collect::procfs::TICKS_PER_S;
use crate::collect::tick::{
    Activity, Frame, GilState, OsState, SlowThreadCounters, ThreadCounters, ThreadTick,
};
use std::sync::Arc;

/// What one tick's threads add up to.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickSummary {
    /// Some thread held the GIL.
    pub gil_held: bool,
    /// Some thread was waiting for the GIL.
    pub gil_wanted: bool,
    /// Context switches read at this tick (slow deltas of all threads).
    pub switches: u64,
}

/// Identity of a thread: the tid and its start time, so a reused tid is a new thread.
pub type ThreadKey = (u32, u64);

/// Window sums of a thread's counter deltas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSums {
    /// CPU clock ticks (utime + stime).
    pub cpu_ticks: u64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Major page faults.
    pub major_faults: u64,
    /// Voluntary context switches.
    pub voluntary_ctxsw: u64,
    /// Involuntary context switches.
    pub involuntary_ctxsw: u64,
    /// Bytes read from storage.
    pub read_bytes: u64,
    /// Bytes written to storage.
    pub write_bytes: u64,
    /// Time on a CPU from `schedstat`, ns (0 without schedstat: then use `cpu_ticks`).
    pub run_ns: u64,
    /// Time runnable but waiting for a CPU from `schedstat`, ns.
    pub runqueue_wait_ns: u64,
}

impl CounterSums {
    /// CPU seconds: `schedstat`'s nanoseconds where the kernel has them (exact), else the
    /// 10 ms clock ticks of `stat`.
    pub fn cpu_s(&self) -> f64 {
        if self.run_ns > 0 {
            self.run_ns as f64 / 1e9
        } else {
            self.cpu_ticks as f64 / TICKS_PER_S as f64
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &CounterSums) {
        self.cpu_ticks += other.cpu_ticks;
        self.minor_faults += other.minor_faults;
        self.major_faults += other.major_faults;
        self.voluntary_ctxsw += other.voluntary_ctxsw;
        self.involuntary_ctxsw += other.involuntary_ctxsw;
        self.read_bytes += other.read_bytes;
        self.write_bytes += other.write_bytes;
        self.run_ns += other.run_ns;
        self.runqueue_wait_ns += other.runqueue_wait_ns;
    }
}

/// One thread's figures over the session.
#[derive(Debug, Clone, Default)]
pub struct ThreadStats {
    /// OS thread id (0: a Python thread whose tid could not be resolved).
    pub tid: u32,
    /// Python thread name.
    pub name: Option<String>,
    /// Seen with a Python stack at least once.
    pub is_python: bool,
    /// Ticks at which its Python stack was read.
    pub samples: u64,
    /// Of those, ticks at which it was on CPU (kernel state R).
    pub active_samples: u64,
    /// Of those, ticks at which it held the GIL.
    pub gil_held_samples: u64,
    /// Of those, ticks at which it was blocked waiting for the GIL.
    pub gil_wait_samples: u64,
    /// Of those, ticks on CPU without the GIL (native code).
    pub native_samples: u64,
    /// Of those, ticks blocked on a lock, a queue or I/O.
    pub blocked_samples: u64,
    /// Of those, ticks sleeping or polling.
    pub sleeping_samples: u64,
    /// Counter deltas over the session.
    pub sums: CounterSums,
    /// Still present at the latest tick.
    pub alive: bool,
    /// Kernel state at the latest tick it was seen.
    pub state: OsState,
    /// GIL state at the latest tick it was seen.
    pub gil: GilState,
    /// Python stack at the latest tick it was seen, innermost first, as (function, line):
    /// no strings are copied per tick; a snapshot resolves them.
    pub stack: Vec<(FunctionId, u32)>,
    /// Sample counts of the functions this thread ran (for a per-thread view).
    pub functions: HashMap<FunctionId, DualCounts>,
    last: Option<ThreadCounters>,
    last_slow: Option<SlowThreadCounters>,
    /// `stack` is the one the thread ran since the previous tick: credit the fast deltas to it.
    pending_fast: bool,
    /// Faults of intervals that began with the thread off a CPU: held for the next stack
    /// seen on one (see [`place_off_cpu`]).
    off_cpu: HeldCredit,
    /// Stacks read since the last slow read (empty: no Python stack), to split the slow delta
    /// among; the first `pending_len` are live, the rest kept for their allocations.
    pending_slow: Vec<Vec<(FunctionId, u32)>>,
    /// Where the thread was at each of `pending_slow`: on CPU, in a system call, in an I/O one.
    pending_call: Vec<InCall>,
    /// Stacks seen on a CPU (see [`on_cpu`]) since the last split of `cpu_pool`, this tick's
    /// included; the first `cpu_span_len` are live, the rest kept for their allocations.
    cpu_span: Vec<Vec<(FunctionId, u32)>>,
    cpu_span_len: usize,
    /// Spans since the thread was last seen runnable but waiting for a CPU.
    spans_since_waiting: u32,
    /// CPU seconds of slow spans without a stack seen on a CPU, not yet credited (see
    /// [`credit_span_cpu`]).
    cpu_pool: f64,
    /// Slow spans `cpu_pool` has been held through without a stack seen on a CPU.
    cpu_pool_spans: u32,
    /// CPU run since the last slow read.
    span_cpu: f64,
    /// The last stacks seen on a CPU (at most [`RECENT_ON_CPU`]): where CPU still held goes
    /// when the thread or the window ends.
    recent_on_cpu: std::collections::VecDeque<Vec<(FunctionId, u32)>>,
    /// The last stack seen runnable but waiting for a CPU: where held CPU goes for a thread
    /// never seen on one (it wanted to run there, unlike where it sleeps).
    last_runnable: Vec<(FunctionId, u32)>,
    /// The last stack seen blocked in an I/O system call: where this thread does its I/O.
    io_site: Vec<(FunctionId, u32)>,
    /// The last stack seen blocked in a system call that neither moves data nor only waits
    /// (a futex for the GIL or a lock): where held bytes go while no `io_site` is known, since
    /// a write is typically followed by such a wait right where it was made.
    call_site: Vec<(FunctionId, u32)>,
    /// I/O bytes moved before the thread was first seen in an I/O call, by the stack they
    /// would go to if it never is (see [`hold_io`]): credited to `io_site` once it is known.
    unplaced_io: HashMap<Vec<(FunctionId, u32)>, f64>,
    /// Slow reads since `unplaced_io` began holding bytes.
    unplaced_spans: u32,
    /// `io_bytes` at the last read that had it (per-tick reads of a thread that does I/O):
    /// bytes up to here are credited.
    io_mark: Option<u64>,
    /// Bytes read or written since the previous tick, to credit to this tick's stack.
    tick_io: u64,
    pending_len: usize,
    last_seen: u64,
    /// The frames `stack` was interned from.
    frames_seen: Option<Arc<[Frame]>>,
    /// `stack`'s whole-stack entry in the function table (valid while `frames_seen` is).
    stack_slot: Option<usize>,
    /// The outermost function of this thread's stacks: a thread's entry function stays at
    /// the bottom of its stack for its whole life.
    root: Option<FunctionId>,
    /// Thread-samples whose stack did not reach `root`.
    pub partial_samples: u64,
    /// Samples seen on a CPU (it ran during the read: see `attribution::on_cpu`), and those
    /// of them inside a garbage collection (`<GC>` innermost): preempted samples, which sit
    /// where the scheduler stopped the thread, are left out of both.
    pub on_cpu_samples: u64,
    /// See `on_cpu_samples`.
    pub gc_samples: u64,
}

/// Faults of intervals that began with a thread off a CPU: asleep, blocked, or runnable but
/// waiting for one (its stack then shows where the scheduler stopped it, often a system call,
/// not where it runs). They go to the next stack the thread is seen on a CPU with.
#[derive(Debug, Clone, Default)]
struct HeldCredit {
    credit: Credited,
    /// Ticks the credit has been held.
    ticks: u32,
    /// Where it goes if the thread is never seen on a CPU again (exits, or the hold lasts
    /// [`MAX_HELD_TICKS`]): the first Python stack read after it began holding.
    fallback: Vec<(FunctionId, u32)>,
}

/// Ticks (1 s at 100 Hz) after which held faults go to their fallback stack: a thread that
/// runs only between samples is still credited, and a live view lags by at most that.
const MAX_HELD_TICKS: u32 = 100;
/// Slow spans (~10 s) CPU is held through while no stack of the thread is seen on a CPU.
/// Long: while hptop's sampler shares a CPU with a thread, its own wake-up preempts the
/// thread at each tick, so for seconds the thread is never seen on a CPU.
const MAX_HELD_SPANS: u32 = 100;
/// Stacks seen on a CPU a thread keeps for the CPU it still holds at its end.
const RECENT_ON_CPU: usize = 16;

/// Stacks to split one slow-counter delta among, at most; more are dropped (the share of each
/// is then slightly larger), which bounds memory if slow reads stop arriving.
const MAX_PENDING: usize = 4096;
/// Where a thread was when its stack was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum InCall {
    /// Not in a system call (running, or its system call not read).
    #[default]
    None,
    /// Blocked in a system call that moves no file or socket data (a lock, the GIL).
    Other,
    /// Sleeping or waiting for readiness (`Syscall::is_wait`): no bytes move there.
    Wait,
    /// Blocked in an I/O system call (see `Syscall::is_io`).
    Io,
}

/// Slow reads (~100 ms each) whose I/O bytes a thread holds while it has no I/O site; then
/// they go to their fallback stacks, so a live view lags by at most ~10 s.
const MAX_UNPLACED_SPANS: u32 = 100;
/// Distinct fallback stacks a thread holds bytes for; a span with others credits at once.
const MAX_UNPLACED_STACKS: usize = 64;

/// Exited threads kept for the report; older ones are folded into `retired`.
const MAX_DEAD_THREADS: usize = 1024;

/// Every thread seen in the session.
#[derive(Debug, Clone, Default)]
pub struct ThreadTable {
    threads: HashMap<ThreadKey, ThreadStats>,
    /// Start time of the newest thread seen with each tid: a stack that comes without
    /// counters (its OS thread could not be read at that instant) belongs to that thread.
    start_of_tid: HashMap<u32, u64>,
    /// Counter sums of threads evicted from `threads`.
    retired: CounterSums,
    ticks: u64,
    samples_all: u64,
    /// Thread-samples whose stack did not reach the thread's root (see [`cut_short`]).
    partial_samples: u64,
    /// Thread-samples whose stack was read again (the walk raced with the thread), and
    /// those dropped (every read raced): see `collect::tick::StackRead`.
    reread_samples: u64,
    dropped_samples: u64,
    samples_active: u64,
    /// Thread-samples whose thread held the GIL.
    samples_gil: u64,
    /// Thread-samples seen on a CPU, and those of them inside a garbage collection.
    on_cpu_samples: u64,
    gc_samples: u64,
    scratch: StackIds,
}

impl ThreadTable {
    /// Ingests one tick's threads; `stacks_ok` says whether the stacks were read.
    #[expect(
        clippy::too_many_lines,
        reason = "one thread-sample's figures, counted in one pass"
    )]
    pub fn ingest(
        &mut self,
        threads: &[ThreadTick],
        stacks_ok: bool,
        resumed: bool,
        functions: &mut FunctionTable,
    ) -> TickSummary {
        self.ticks += 1;
        let tick = self.ticks;
        let mut gil_held = false;
        let mut gil_wanted = false;
        let mut holder_function = None;
        let mut switches = 0;
        for t in threads {
            functions.thread_root = t.tid;
            let stats = stats_of(&mut self.threads, &mut self.start_of_tid, t, tick);
            stats.alive = true;
            stats.last_seen = tick;
            if resumed {
                // The deltas span a pause in which no stack was seen: count them for the
                // thread, credit them to no function.
                stats.pending_fast = false;
                stats.pending_len = 0;
            }
            if let Some(counters) = t.counters {
                stats.state = counters.state;
                switches += account_counters(stats, &counters, functions);
            }
            if resumed {
                stats.tick_io = 0;
            }
            if t.is_python && stacks_ok {
                self.reread_samples += u64::from(t.stack_read.rereads > 0);
                self.dropped_samples += u64::from(t.stack_read.dropped);
            }
            // A dropped stack is unknown: its thread-sample counts for no function.
            let innermost = if t.is_python && stacks_ok && !t.stack_read.dropped {
                stats.is_python = true;
                if let Some(name) = t
                    .name
                    .as_deref()
                    .filter(|&n| stats.name.as_deref() != Some(n))
                {
                    stats.name = Some(name.to_owned());
                }
                stats.gil = t.gil;
                let held = t.gil == GilState::Held;
                gil_held |= held;
                let active = t.counters.map_or(held, |c| c.state == OsState::Running);
                stats.samples += 1;
                stats.active_samples += u64::from(active);
                self.samples_all += 1;
                self.samples_active += u64::from(active);
                self.samples_gil += u64::from(held);
                stats.gil_held_samples += u64::from(held);
                stats.gil_wait_samples += u64::from(t.gil == GilState::Waiting);
                gil_wanted |= t.gil == GilState::Waiting;
                stats.native_samples += u64::from(t.activity == Activity::Native);
                stats.blocked_samples += u64::from(t.activity == Activity::Blocked);
                stats.sleeping_samples += u64::from(t.activity == Activity::Sleeping);
                let innermost = add_thread_stack(
                    functions,
                    stats,
                    &t.frames,
                    SampleKind { active, held },
                    &mut self.scratch,
                );
                if held {
                    holder_function = innermost;
                }
                if t.counters.as_ref().is_some_and(attribution::on_cpu) {
                    let gc = innermost.is_some() && innermost == functions.gc_id();
                    stats.on_cpu_samples += 1;
                    stats.gc_samples += u64::from(gc);
                    self.on_cpu_samples += 1;
                    self.gc_samples += u64::from(gc);
                }
                self.partial_samples += u64::from(cut_short(stats));
                for &(id, own) in &self.scratch.on_stack {
                    stats.functions.entry(id).or_default().add(
                        own,
                        true,
                        SampleKind { active, held },
                    );
                }
                innermost
            } else {
                None
            };
            place_off_cpu(stats, t.counters, innermost.is_some(), functions);
            stats.pending_fast = innermost.is_some();
            let call = match t.counters.and_then(|c| c.syscall) {
                Some(s) if s.is_io() => InCall::Io,
                Some(s) if s.is_wait() => InCall::Wait,
                Some(_) => InCall::Other,
                None => InCall::None,
            };
            remember_for_slow(stats, innermost.is_some(), t.counters, call, functions);
            if t.counters.is_some_and(|c| c.slow.is_some()) {
                credit_span_cpu(stats, false, functions);
            }
            credit_tick_io(stats, innermost.is_some(), call, functions);
        }
        self.settle_departed(tick, functions);
        if let (true, Some(id)) = (gil_wanted, holder_function) {
            functions.credit_gil_hold(id);
        }
        self.evict_dead();
        TickSummary {
            gil_held,
            gil_wanted,
            switches,
        }
    }

    /// Threads not seen at `tick` have exited: what they held is placed now.
    fn settle_departed(&mut self, tick: u64, functions: &mut FunctionTable) {
        for stats in self.threads.values_mut() {
            if stats.last_seen != tick {
                stats.alive = false;
                functions.thread_root = stats.tid;
                place_held_io(stats, functions);
                release_off_cpu(stats, functions);
                credit_span_cpu(stats, true, functions);
            }
        }
    }

    /// Folds the oldest exited threads into `retired` once more than [`MAX_DEAD_THREADS`]
    /// are kept, down to half that, so the scan runs once per many exits, not per tick.
    fn evict_dead(&mut self) {
        if self.threads.len() <= MAX_DEAD_THREADS {
            return;
        }
        let dead = self.threads.values().filter(|t| !t.alive).count();
        if dead <= MAX_DEAD_THREADS {
            return;
        }
        let mut dead_keys: Vec<(u64, ThreadKey)> = self
            .threads
            .iter()
            .filter(|(_, t)| !t.alive)
            .map(|(k, t)| (t.last_seen, *k))
            .collect();
        dead_keys.sort_unstable();
        for (_, key) in dead_keys.iter().take(dead - MAX_DEAD_THREADS / 2) {
            if let Some(t) = self.threads.remove(key) {
                self.retired.add(&t.sums);
                if self.start_of_tid.get(&key.0) == Some(&key.1) {
                    self.start_of_tid.remove(&key.0);
                }
            }
        }
    }

    /// Credits every byte still held for a later I/O site (see [`place_held_io`]): the
    /// window ends, what was not placed goes where it would have gone.
    pub fn settle(&mut self, functions: &mut FunctionTable) {
        for stats in self.threads.values_mut() {
            functions.thread_root = stats.tid;
            place_held_io(stats, functions);
            release_off_cpu(stats, functions);
            credit_span_cpu(stats, true, functions);
        }
    }

    /// Whether any thread holds figures back for a later placement ([`Self::settle`] would
    /// credit them).
    pub fn holds_back(&self) -> bool {
        self.threads.values().any(|s| {
            s.cpu_pool > 0.0
                || s.span_cpu > 0.0
                || s.off_cpu.credit.any()
                || !s.unplaced_io.is_empty()
        })
    }

    /// Threads, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &ThreadStats> {
        self.threads.values()
    }

    /// Counter sums of all threads ever seen, evicted ones included.
    pub fn total(&self) -> CounterSums {
        let mut sums = self.retired;
        for t in self.threads.values() {
            sums.add(&t.sums);
        }
        sums
    }

    /// The thread with this tid that is alive, else the latest seen.
    pub fn by_tid(&self, tid: u32) -> Option<&ThreadStats> {
        self.threads
            .values()
            .filter(|t| t.tid == tid)
            .max_by_key(|t| (t.alive, t.last_seen))
    }

    /// Python thread-samples read with the thread on a CPU: what cpu-mode shares are a
    /// sample of.
    pub fn on_cpu_samples(&self) -> u64 {
        self.on_cpu_samples
    }

    /// Of the thread-samples seen on a CPU, those inside a garbage collection
    /// (docs/figures.md, "Time in garbage collection").
    pub fn gc_samples(&self) -> u64 {
        self.gc_samples
    }

    /// Thread-samples whose stack did not reach the thread's root (cut short while read).
    pub fn partial_samples(&self) -> u64 {
        self.partial_samples
    }

    /// Thread-samples whose stack was read again because the walk raced with the thread.
    pub fn reread_samples(&self) -> u64 {
        self.reread_samples
    }

    /// Thread-samples whose stack raced at every read: dropped, credited to no function.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples
    }

    /// Thread-samples whose thread held the GIL (the denominator of `--mode gil`).
    pub fn gil_samples(&self) -> u64 {
        self.samples_gil
    }

    /// Thread-samples taken: all of them, or only those of threads on CPU. The denominator
    /// of function percentages, as in py-spy (a sample with no Python frame owns nothing).
    pub fn counted_samples(&self, include_idle: bool) -> u64 {
        if include_idle {
            self.samples_all
        } else {
            self.samples_active
        }
    }

    /// Number of threads kept.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether no thread was seen.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

/// Adds the deltas since the last read and credits them; returns the context switches
/// The stats of `t`'s thread, made on first sight.
fn stats_of<'a>(
    threads: &'a mut HashMap<ThreadKey, ThreadStats>,
    start_of_tid: &mut HashMap<u32, u64>,
    t: &ThreadTick,
    tick: u64,
) -> &'a mut ThreadStats {
    let start = match t.counters {
        Some(c) => {
            start_of_tid.insert(t.tid, c.start_ticks);
            c.start_ticks
        }
        None => start_of_tid.get(&t.tid).copied().unwrap_or(0),
    };
    let key = (t.tid, start);
    let first_tick = tick == 1;
    threads.entry(key).or_insert_with(|| ThreadStats {
        tid: t.tid,
        // A thread born after the first tick accrued all its counts inside the window.
        last: t.counters.filter(|_| !first_tick).map(|c| ThreadCounters {
            state: c.state,
            start_ticks: c.start_ticks,
            run_ns: c.run_ns.map(|_| 0),
            runqueue_wait_ns: c.runqueue_wait_ns.map(|_| 0),
            ..ThreadCounters::default()
        }),
        last_slow: (!first_tick).then(SlowThreadCounters::default),
        ..ThreadStats::default()
    })
}

/// Counts a thread-sample of `frames` in `functions` and keeps them as the thread's stack;
/// `scratch` receives what [`FunctionTable::add_stack`] gives.
fn add_thread_stack(
    functions: &mut FunctionTable,
    stats: &mut ThreadStats,
    frames: &Arc<[Frame]>,
    kind: SampleKind,
    scratch: &mut StackIds,
) -> Option<FunctionId> {
    let SampleKind { active, held } = kind;
    // Frames shared with the last tick's are the same stack: no interning again.
    let innermost = match &stats.frames_seen {
        Some(seen) if Arc::ptr_eq(seen, frames) => {
            scratch.slot = stats.stack_slot;
            functions.add_interned_stack(&stats.stack, active, held, scratch)
        }
        _ => {
            let before = stats.frames_seen.replace(Arc::clone(frames));
            scratch.slot = None;
            functions.add_stack(
                frames,
                before.as_deref().map(|f| (f, stats.stack.as_slice())),
                active,
                held,
                scratch,
            )
        }
    };
    stats.stack_slot = scratch.slot;
    stats.stack.clone_from(&scratch.frames);
    innermost
}

/// Whether `stats.stack` (just read) stopped short of the thread's root: read without a pause,
/// a stack that changes while it is walked can come back without its outer frames. The root
/// is the outermost function of the thread's first stack; a later stack that holds that
/// function above its own outermost frame shows the first was itself cut short, and becomes
/// the new reference.
fn cut_short(stats: &mut ThreadStats) -> bool {
    let Some(&(outermost, _)) = stats.stack.last() else {
        return false;
    };
    match stats.root {
        Some(root) if root == outermost => false,
        Some(root) if stats.stack.iter().any(|&(id, _)| id == root) => {
            stats.root = Some(outermost);
            false
        }
        Some(_) => {
            stats.partial_samples += 1;
            true
        }
        None => {
            stats.root = Some(outermost);
            false
        }
    }
}
