//! One tick of one target: its /proc counters, every thread's stack, the asyncio task it runs,
//! joined per thread.

use super::oncpu::OnCpuProbe;
use super::procfs::ProcReader;
use super::stacks::{PythonThread, StackOptions, StackReader};
use super::tick::{OsState, ProcessTick, ThreadTick};
use super::{panic_message, SamplerOptions};

/// Threads that ran since the last read but sleep, looked at when the sampler wakes (see
/// `Target::recent`), at most.
const MAX_RECENT_SLEEPERS: usize = 8;

/// What the sampler reads a target with.
pub(super) struct Target {
    pub(super) procs: ProcReader,
    pub(super) stacks: StackReader,
    pub(super) probe: OnCpuProbe,
    /// The thread list, sorted, as of the last listing.
    pub(super) tids: Vec<u32>,
    /// Stacks are read with the target paused (`--blocking`).
    pub(super) blocking: bool,
    /// asyncio task reading.
    pub(super) tasks: super::tasks::TaskReading,
    /// The sampler's CPUs, kept off the runnable threads' (`open` and `sample` run on the
    /// sampler thread, whose affinity it reads and sets).
    pub(super) placement: super::placement::Placement,
    /// Threads runnable at the last tick or that ran since the one before: where the
    /// sampler looks, when it wakes, for a thread it may have preempted.
    pub(super) recent: Vec<u32>,
}

impl Target {
    /// Attaches py-spy and opens `/proc` of the target.
    pub(super) fn open(options: &SamplerOptions) -> Result<Self, String> {
        let stack_options = StackOptions {
            blocking: options.blocking,
            native: options.native,
        };
        let stacks = StackReader::attach(options.pid, stack_options, options.attach_retries)?;
        let procs = ProcReader::open(options.pid)
            .map_err(|e| format!("opening /proc/{}: {e}", options.pid))?;
        Ok(Self {
            procs,
            stacks,
            // A quarter of the per-thread file budget: only runnable threads need a clock.
            probe: OnCpuProbe::new(super::procfs::fd_budget() / 4),
            tids: Vec::new(),
            blocking: options.blocking,
            tasks: super::tasks::TaskReading::new(options.async_stacks),
            placement: super::placement::Placement::new(options.rate_hz),
            recent: Vec::new(),
        })
    }
}

/// Reads one tick of the process: each thread's counters, then the stacks, and on slow ticks
/// the whole-process counters (cumulative, so reading them at ~10 Hz loses nothing of a
/// window's deltas) and the thread list. Between slow ticks the thread list is reused, and
/// read again at once when the stacks show a thread it lacks.
#[expect(
    clippy::too_many_lines,
    reason = "the reads of one tick, in the order that keeps them consistent"
)]
pub(super) fn sample(pid: u32, target: &mut Target, slow: bool) -> ProcessTick {
    let Target {
        procs,
        stacks,
        probe,
        tids,
        blocking,
        tasks: task_reading,
        placement,
        recent,
    } = target;
    // First, off the CPU of a target thread the sampler's wake-up preempted (see
    // placement.rs).
    if placement.is_on() {
        placement.step_aside(procs, recent, !*blocking);
    }
    let gone = ProcessTick {
        pid,
        exited: true,
        ..ProcessTick::default()
    };
    let process = if slow {
        match procs.read_process(true) {
            Ok(read) if read.state != OsState::Dead => Some(read),
            _ => return gone,
        }
    } else {
        None
    };
    if slow || tids.is_empty() {
        match procs.list_tids() {
            Ok(list) => *tids = list,
            Err(_) => return gone,
        }
        probe.retain(tids);
    }
    let mut counters = procs.read_threads(tids, slow);
    let unchanged: Vec<u32> = tids
        .iter()
        .zip(&counters)
        .filter(|(_, c)| c.is_some_and(|c| c.not_run_since_last_read))
        .map(|(tid, _)| *tid)
        .collect();
    // Threads blocked in the kernel: read alike twice, they did not move (py-spy patch 35).
    let blocked: Vec<u32> = tids
        .iter()
        .zip(&counters)
        .filter(|(_, c)| c.is_some_and(|c| c.state != OsState::Running))
        .map(|(tid, _)| *tid)
        .collect();
    // Runnable threads' task clocks around the read of their leaf frames: which of them ran
    // during it (see oncpu.rs).
    let runnable: Vec<(u32, u64)> = tids
        .iter()
        .zip(&counters)
        .filter_map(|(&tid, c)| {
            c.filter(|c| c.state == OsState::Running)
                .map(|c| (tid, c.start_ticks))
        })
        .collect();
    // The runnable threads, then a few that ran since the last read and sleep now (one of
    // them may hold the GIL at the next tick); each costs a `stat` read then.
    recent.clear();
    recent.extend(runnable.iter().map(|&(tid, _)| tid));
    recent.extend(
        tids.iter()
            .zip(&counters)
            .filter(|(_, c)| {
                c.is_some_and(|c| c.state != OsState::Running && !c.not_run_since_last_read)
            })
            .map(|(&tid, _)| tid)
            .take(MAX_RECENT_SLEEPERS),
    );
    let mut told = Vec::new();
    // Each loop thread's running task, read right before the stacks (one 8-byte read per
    // thread): read after the walk (~0.2 ms in a debug build), the task was the walk's
    // length later and read 7 points toward the shorter-step task with 0.1-0.3 ms steps
    // (before: within 1; docs/figures.md, "asyncio tasks").
    task_reading.running = stacks.running_tasks();
    // Paused, the stacks are where the threads stopped: the clocks and switch-in counts are
    // read right before the pause is asked for and again once it holds (py-spy's first read
    // of a thread state comes after it).
    let mut switch_ins = Vec::new();
    if *blocking {
        probe.before(runnable.iter().copied());
        switch_ins = runnable
            .iter()
            .map(|&(tid, _)| (tid, procs.switch_ins(tid)))
            .collect();
    }
    // Not paused, the window is the read of the leaf frames itself, after the thread states'
    // prefetch (the read-ahead reads each walk's start again, bracketing its leaf frames).
    // Opened any earlier (at the head of the tick), a thread preempted at its next system
    // call in between was judged on a CPU and read at that call (function CPU beside busy
    // loops drifted toward the calls).
    let mut at = |moment| match moment {
        py_spy::WalkMoment::ThreadsAboutToBeRead if *blocking => {
            told = probe.after_pause(|tid| {
                let (_, then) = switch_ins.iter().find(|(t, _)| *t == tid)?;
                Some(procs.switch_ins(tid)? != (*then)?)
            });
        }
        py_spy::WalkMoment::LeavesAboutToBeRead if !*blocking => {
            probe.before(runnable.iter().copied());
        }
        py_spy::WalkMoment::LeavesRead if !*blocking => told = probe.after_leaves(),
        py_spy::WalkMoment::ThreadsAboutToBeRead
        | py_spy::WalkMoment::LeavesAboutToBeRead
        | py_spy::WalkMoment::LeavesRead => {}
    };
    // py-spy walks memory that the target may be rewriting (a worker exiting or exec'ing) and
    // can panic on what it reads (an overflow in a debug build): that is a failed read of this
    // tick, like any other, not the end of sampling.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stacks.read(&unchanged, &blocked, tids.len(), &mut at)
    }))
    .unwrap_or_else(|payload| {
        Err(format!(
            "reading the stacks panicked: {}",
            panic_message(payload.as_ref())
        ))
    });
    // Whether a collection runs: read once the task clocks are (outside the window that says
    // which threads ran during the stack read), still close after the stacks.
    let collecting = stacks.gc_collecting() == Some(true);
    for (tid, on_cpu) in told {
        if let Ok(i) = tids.binary_search(&tid) {
            if let Some(Some(c)) = counters.get_mut(i) {
                c.on_cpu = Some(on_cpu);
            }
        }
    }
    let (python, stack_error) = match read {
        Ok(mut threads) => {
            if collecting {
                mark_collecting(&mut threads);
            }
            let namespace = procs.namespace_tids(tids);
            stacks.resolve_tids(&mut threads, tids, namespace.as_deref());
            let unknown =
                |t: &PythonThread| t.tid.is_none_or(|tid| tids.binary_search(&tid).is_err());
            // (Also on a slow tick: a thread can be born between the listing and the read.)
            if threads.iter().any(unknown) {
                // A thread born since the last listing: list again and read its counters.
                // (A thread that never resolves, e.g. not yet bound to its OS thread, leaves
                // the list as it was: nothing to read again then.)
                if let Some(list) = procs.list_tids().ok().filter(|l| l != tids) {
                    *tids = list;
                    counters = procs.read_threads(tids, slow);
                    let namespace = procs.namespace_tids(tids);
                    stacks.resolve_tids(&mut threads, tids, namespace.as_deref());
                }
            }
            (threads, None)
        }
        Err(e) => {
            // A failed read is usually a race; on an exiting process it is the end.
            if procs
                .read_process(false)
                .map_or(true, |r| r.state == OsState::Dead)
            {
                return gone;
            }
            (Vec::new(), Some(e))
        }
    };
    // Located once per tick: on 3.7–3.11 locating may search memory until it finds the GIL.
    let gil = stacks.gil_location();
    let mut threads = join_threads(tids, counters, python, gil);
    name_main_thread(pid, &mut threads);
    let due = slow && stack_error.is_none();
    let tasks = asyncio_of_tick(stacks, procs, tids, &mut threads, due, task_reading);
    ProcessTick {
        pid,
        counters: process.as_ref().map(|p| p.counters),
        memory: process.and_then(|p| p.memory),
        threads,
        stack_error,
        exited: false,
        gil_switches: stacks.gil_switches(gil),
        tasks,
    }
}

/// The asyncio task list on one slow tick in [`super::tasks::TASKS_EVERY_SLOW_TICKS`] (about once
/// a second), less often when a list takes long to read (see [`super::tasks::slow_ticks_after`]);
/// each loop thread's running task is read at every tick.
pub(super) fn read_tasks(
    stacks: &mut StackReader,
    tasks_in: &mut u32,
) -> Option<std::sync::Arc<[super::tick::TaskTick]>> {
    *tasks_in = tasks_in.saturating_sub(1);
    if *tasks_in > 0 {
        return None;
    }
    let started = std::time::Instant::now();
    let tasks = stacks.tasks();
    *tasks_in = super::tasks::slow_ticks_after(started.elapsed());
    tasks
}

/// The tick's asyncio figures: each event-loop thread's running task, marked on `threads`,
/// and the task list when `due` (see [`read_tasks`]). The interpreter gives thread ids in the
/// target's PID namespace: they are mapped to ours, as the threads' are.
pub(super) fn asyncio_of_tick(
    stacks: &mut StackReader,
    procs: &ProcReader,
    tids: &[u32],
    threads: &mut [ThreadTick],
    due: bool,
    reading: &mut super::tasks::TaskReading,
) -> Option<std::sync::Arc<[super::tick::TaskTick]>> {
    let tasks = due
        .then(|| read_tasks(stacks, &mut reading.due_in))
        .flatten();
    let namespace = procs.namespace_tids(tids);
    let ours = |tid: u32| match &namespace {
        Some(pairs) => pairs
            .binary_search_by_key(&tid, |&(inner, _)| inner)
            .ok()
            .map(|i| pairs[i].1),
        None => Some(tid),
    };
    for (tid, task) in std::mem::take(&mut reading.running) {
        if let Some(t) = ours(tid).and_then(|tid| threads.iter_mut().find(|t| t.tid == tid)) {
            t.running_task = Some(task);
        }
    }
    let tasks = tasks.map(|list| super::tasks::in_our_namespace(&list, ours));
    if let Some(list) = &tasks {
        reading.last = Some(std::sync::Arc::clone(list));
    }
    if reading.rooted {
        reading.root_stacks(threads);
    }
    tasks
}

/// Joins OS threads with Python threads by tid. A Python thread whose tid could not be
/// resolved is kept with tid 0, so its samples still count.
/// Puts a [`super::tick::GC_FRAME`] on top of the stack of the thread that collects: the one holding the
/// GIL (a collection runs with it held; on a free-threaded build no thread is marked).
fn mark_collecting(threads: &mut [PythonThread]) {
    thread_local! {
        static NAME: std::sync::Arc<str> = std::sync::Arc::from(super::tick::GC_FRAME);
        static FILE: std::sync::Arc<str> = std::sync::Arc::from("");
    }
    for t in threads.iter_mut().filter(|t| t.owns_gil) {
        let gc = super::tick::Frame {
            name: NAME.with(std::sync::Arc::clone),
            filename: FILE.with(std::sync::Arc::clone),
            ..super::tick::Frame::default()
        };
        t.frames = std::iter::once(gc)
            .chain(t.frames.iter().cloned())
            .collect();
    }
}

/// The name of the interpreter's main thread.
const MAIN_THREAD: &str = "MainThread";

/// Names the process's main thread `MainThread` when the interpreter gave it no name: 3.14
/// and 3.15 start without importing `threading`, whose registry names it, yet it is the
/// main thread all the same (its OS thread is the process's own, tid = pid).
fn name_main_thread(pid: u32, threads: &mut [ThreadTick]) {
    thread_local! {
        static NAME: std::sync::Arc<str> = std::sync::Arc::from(MAIN_THREAD);
    }
    if let Some(main) = threads
        .iter_mut()
        .find(|t| t.is_python && t.tid == pid && t.name.is_none())
    {
        main.name = Some(NAME.with(std::sync::Arc::clone));
    }
}

/// Joins each thread's `/proc` counters with its Python stack (by OS tid).
pub(super) fn join_threads(
    tids: &[u32],
    counters: Vec<Option<super::tick::ThreadCounters>>,
    python: Vec<PythonThread>,
    gil: Option<super::gil::GilLocation>,
) -> Vec<ThreadTick> {
    let mut threads: Vec<ThreadTick> = tids
        .iter()
        .zip(counters)
        .map(|(&tid, counters)| ThreadTick {
            tid,
            counters,
            ..ThreadTick::default()
        })
        .collect();
    // A thread that exited since the list was taken has neither counters nor a stack.
    threads.retain(|t| t.counters.is_some());
    // Kept apart until the end: `threads` must stay sorted by tid for the lookups.
    let mut unmatched = Vec::new();
    for py in python {
        let slot = py.tid.and_then(|tid| {
            threads
                .binary_search_by_key(&tid, |t| t.tid)
                .ok()
                .and_then(|i| threads.get_mut(i))
        });
        let counters = slot.as_ref().and_then(|t| t.counters);
        let blocked_in = counters.and_then(|c| c.syscall);
        let gil_state = super::gil::classify(py.owns_gil, blocked_in, gil);
        let activity = counters.map_or(super::tick::Activity::Unknown, |c| {
            super::gil::activity(c.state, blocked_in, gil_state)
        });
        let joined = ThreadTick {
            tid: py.tid.unwrap_or(0),
            // tid 0 gathers every thread that could not be matched: no one name is its.
            name: py.tid.and(py.name),
            is_python: true,
            gil: gil_state,
            activity,
            frames: py.frames,
            counters: None,
            stack_read: py.read,
            running_task: None,
        };
        match slot {
            Some(thread) => {
                let counters = thread.counters.take();
                *thread = ThreadTick { counters, ..joined };
            }
            None => unmatched.push(joined),
        }
    }
    threads.append(&mut unmatched);
    threads
}
