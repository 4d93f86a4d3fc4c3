//! Python stacks through the `py-spy` crate: the only file that names `py_spy`.
//!
//! `PythonSpy` is `!Send`, so a [`StackReader`] lives on the sampler thread. Strings read
//! from the target are sanitised here, once.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use py_spy::config::LockingStrategy;
use remoteprocess::ProcessMemory;

use super::pause::{Pauser, Resumed};
use super::sanitize::sanitize;
use super::tick::{Frame, StackRead};

/// One Python thread's stack as read at one instant.
#[derive(Debug, Clone)]
pub struct PythonThread {
    /// The interpreter's thread id (`pthread_t` on Linux).
    pub thread_id: u64,
    /// OS thread id when it is known (see [`StackReader::resolve_tids`]).
    pub tid: Option<u32>,
    /// The thread id the interpreter records (3.11+), in the target's own PID namespace.
    native_tid: Option<u32>,
    /// Python thread name, sanitised.
    pub name: Option<Arc<str>>,
    /// The interpreter's GIL holder is this thread.
    pub owns_gil: bool,
    /// Frames, innermost first, sanitised.
    pub frames: Arc<[Frame]>,
    /// Whether the read raced with the thread (see `ThreadTick::stack_read`).
    pub read: StackRead,
}

/// Attached py-spy reader of one process.
pub struct StackReader {
    spy: py_spy::PythonSpy,
    /// The `--blocking` pause, held by a helper process.
    pauser: Option<Pauser>,
    tids: TidResolver,
    native: bool,
    /// Frames last read of each Python thread, for threads that have not run since and for
    /// stacks py-spy found repeated.
    last_frames: HashMap<u64, Arc<[Frame]>>,
    /// Each Python thread's name as py-spy last gave it.
    last_names: HashMap<u64, LastName>,
    /// Python thread id of each OS tid, as of the last read.
    thread_of_tid: HashMap<u32, u64>,
    /// Last OS tid each Python thread id was resolved to, kept while the id is unseen or
    /// unresolved for a while (see `resolve_tids`).
    tid_of_thread: HashMap<u64, u32>,
    /// The search for the GIL state on 3.7–3.11.
    gil_search: GilSearch,
    /// Each function py-spy named by its code-cache generation (see [`py_spy::FrameKey`]),
    /// sanitised once: a frame is then made without copying or scanning any text.
    functions: HashMap<u64, FunctionNames>,
}

/// A function's names as frames show them (sanitised), shared by all its frames.
struct FunctionNames {
    name: Arc<str>,
    filename: Arc<str>,
    short_filename: Option<Arc<str>>,
}

/// Functions kept named at most; past it the map is emptied (each is named again when next
/// seen), so code that keeps making fresh functions does not grow it without end. Small: its
/// entries keep names alive that py-spy's own cache may have let go (a function-name factory
/// peaked at 52 MB of RSS with 65,536).
const FUNCTIONS_KEPT: usize = 8192;

/// A thread's name as py-spy gave it, and as shown (sanitised, shared by every tick).
struct LastName {
    raw: String,
    shown: Arc<str>,
}

/// State of the search for the GIL on 3.7–3.11.
#[derive(Debug, Default)]
struct GilSearch {
    attempts: u32,
    found: Option<super::gil::GilLocation>,
}

/// Ticks at which the GIL state is searched for before giving up (on 3.7–3.11).
const GIL_SEARCH_ATTEMPTS: u32 = 200;
/// Bytes of `_PyRuntime` around `gilstate.tstate_current` searched for the GIL state.
const GIL_SEARCH_BYTES: u64 = 8192;

/// How to read stacks.
#[derive(Debug, Clone, Copy, Default)]
pub struct StackOptions {
    /// Pause the target's threads during each read (exact stacks, costs the target time).
    pub blocking: bool,
    /// Native frames too (needs the `unwind` feature).
    pub native: bool,
}

impl StackReader {
    /// Attaches to `pid`, retrying a few times while a freshly started interpreter initialises.
    ///
    /// # Errors
    /// py-spy's error chain as one line of text.
    pub fn attach(pid: u32, options: StackOptions, retries: u64) -> Result<Self, String> {
        // The pause is held by a helper process (see `pause`), so no stop of hptop leaves the
        // target frozen. Native unwinding reads registers as the tracer, so with `--native`
        // py-spy pauses from inside hptop, as before.
        let pauser = if options.blocking && !options.native {
            Some(Pauser::start(pid).map_err(|e| format!("starting the pause helper: {e}"))?)
        } else {
            None
        };
        let config = py_spy::Config {
            blocking: if options.blocking && pauser.is_none() {
                LockingStrategy::Lock
            } else {
                LockingStrategy::NonBlocking
            },
            native: options.native,
            collect_thread_names: true,
            include_idle: true,
            // hptop reads every thread's state itself (procfs.rs); py-spy need not read it again.
            skip_thread_activity: true,
            ..py_spy::Config::default()
        };
        let pid = pid as py_spy::Pid;
        let mut spy = py_spy::PythonSpy::retry_new(pid, &config, retries.max(1))
            .map_err(|e| format!("{e:#}"))?;
        // A busy loop reads the same stack sample after sample: py-spy then says so instead
        // of building its frames again (native frames come from a live unwind: always built).
        spy.reuse_repeated_stacks = !options.native;
        // Frames come as code-cache keys, named here once per function, not copied per sample.
        spy.frame_keys = !options.native;
        Ok(Self {
            spy,
            pauser,
            tids: TidResolver::default(),
            native: options.native,
            last_frames: HashMap::default(),
            last_names: HashMap::default(),
            thread_of_tid: HashMap::default(),
            tid_of_thread: HashMap::default(),
            gil_search: GilSearch::default(),
            functions: HashMap::default(),
        })
    }

    /// Where the interpreter's GIL state is (see `collect::gil`): on 3.12+ the interpreter
    /// points at it; on 3.7–3.11 it is searched for near `_PyRuntime.gilstate` (up to
    /// [`GIL_SEARCH_ATTEMPTS`] tries, as the search needs the GIL held at the instant of reading).
    pub fn gil_location(&mut self) -> Option<super::gil::GilLocation> {
        let v = &self.spy.version;
        let address = self.spy.addresses.threadstate_address as u64;
        if v.major != 3 || v.minor < 7 || address == 0 {
            return None;
        }
        if v.minor >= 12 {
            return Some(super::gil::GilLocation { start: address });
        }
        if self.gil_search.found.is_none() && self.gil_search.attempts < GIL_SEARCH_ATTEMPTS {
            self.gil_search.attempts += 1;
            let window_start = address.saturating_sub(GIL_SEARCH_BYTES / 2);
            let window = usize::try_from(window_start)
                .ok()
                .and_then(|start| self.spy.process.copy(start, GIL_SEARCH_BYTES as usize).ok());
            let holder = usize::try_from(address)
                .ok()
                .and_then(|a| self.spy.process.copy_struct::<u64>(a).ok());
            if let (Some(window), Some(holder)) = (window, holder) {
                self.gil_search.found = super::gil::find_gil_state(&window, holder).map(|offset| {
                    super::gil::GilLocation {
                        start: window_start + offset,
                    }
                });
            }
        }
        self.gil_search.found
    }

    /// The GIL's `switch_number` (how many times it changed hands since the interpreter
    /// started), read from `gil` as located by [`Self::gil_location`].
    pub fn gil_switches(&self, gil: Option<super::gil::GilLocation>) -> Option<u64> {
        let gil = gil?;
        let address = usize::try_from(gil.start + super::gil::SWITCH_NUMBER_OFFSET).ok()?;
        self.spy.process.copy_struct::<u64>(address).ok()
    }

    /// Whether the interpreter's cyclic garbage collector runs now (one 4-byte read; `None`
    /// where the flag cannot be located soundly: see vendor/py-spy/HPTOP-PATCH.md, 22).
    pub fn gc_collecting(&self) -> Option<bool> {
        self.spy.gc_collecting()
    }

    /// The asyncio task list (Python 3.11+, once the target imported asyncio).
    pub fn tasks(&mut self) -> Option<Arc<[super::tick::TaskTick]>> {
        super::tasks::convert(self.spy.asyncio_tasks())
    }

    /// The task each event-loop thread runs now: (OS tid, task id).
    pub fn running_tasks(&self) -> Vec<(u32, u64)> {
        self.spy
            .asyncio_running_tasks()
            .into_iter()
            .filter(|&(_, task)| task != 0)
            .filter_map(|(tid, task)| Some((u32::try_from(tid).ok()?, task as u64)))
            .collect()
    }

    /// The interpreter's version, e.g. `3.11.7`.
    pub fn version(&self) -> String {
        self.spy.version.to_string()
    }

    /// Reads every Python thread's stack; [`Self::resolve_tids`] then finds their OS tids. Threads whose OS tid is in
    /// `unchanged` have not run since the last read: their frames are not read again but
    /// taken from that read. Those in `blocked` were seen blocked in the kernel (not
    /// runnable) right before. `os_threads` is how many threads `/proc/PID/task` lists. `at`
    /// is called at the walk's moments (right before the threads are read, once their leaf
    /// frames are), for reads that must be of the stacks' moment.
    ///
    /// # Errors
    /// py-spy's error chain as one line of text (the read raced with the target).
    pub fn read(
        &mut self,
        unchanged: &[u32],
        blocked: &[u32],
        os_threads: usize,
        at: &mut dyn FnMut(py_spy::WalkMoment),
    ) -> Result<Vec<PythonThread>, String> {
        // Each Python thread runs on an OS thread: more than the process has (with room for
        // threads born since it was listed) is a cycle in a torn read, not a big pool.
        self.spy.max_threads = os_threads.saturating_mul(2).saturating_add(64).max(4096);
        // Two reads of a thread alike to the byte prove it did not move only if it does not
        // run: paused, or blocked (a running loop can repeat its memory exactly; py-spy
        // patch 35).
        self.spy.code_cache.still = if self.pauser.is_some() {
            py_spy::StillThreads::All
        } else {
            py_spy::StillThreads::Only(
                blocked
                    .iter()
                    .filter_map(|tid| self.thread_of_tid.get(tid).copied())
                    .collect(),
            )
        };
        self.spy.unchanged_threads.clear();
        if !self.native {
            // Native frames are merged by py-spy from a live unwind: never reuse those.
            self.spy.unchanged_threads.extend(
                unchanged
                    .iter()
                    .filter_map(|tid| self.thread_of_tid.get(tid))
                    .filter(|id| self.last_frames.contains_key(id)),
            );
        }
        let traces = match self.paused_stack_traces(at) {
            Ok(traces) => traces,
            Err(e) => {
                // The kept frames would now be older than the run-state baseline the next
                // `unchanged` is measured against: forget them, read every stack next time.
                self.last_frames.clear();
                return Err(e);
            }
        };
        let mut seen = rustc_hash::FxHashSet::default();
        let threads: Vec<PythonThread> = traces
            .into_iter()
            .map(|trace| {
                seen.insert(trace.thread_id);
                let kept = self.spy.unchanged_threads.contains(&trace.thread_id) || trace.repeated;
                let frames = if trace.torn {
                    // Unknown this tick: walked again next time, whether it runs or not.
                    self.last_frames.remove(&trace.thread_id);
                    Arc::from(Vec::new())
                } else if kept {
                    self.kept_frames(trace.thread_id)
                } else {
                    let frames: Arc<[Frame]> = if trace.keys.is_empty() {
                        trace.frames.iter().map(convert_frame).collect()
                    } else {
                        trace.keys.iter().map(|key| self.frame_of(key)).collect()
                    };
                    self.last_frames
                        .insert(trace.thread_id, Arc::clone(&frames));
                    frames
                };
                // py-spy leaves out the name of a thread that did not run when it knows it:
                // the one kept here, or (named by a lookup after this reader last saw it) its own.
                let name = match (trace.name_unchanged, trace.thread_name) {
                    (true, _) => match self.last_names.get(&trace.thread_id) {
                        Some(last) => Some(Arc::clone(&last.shown)),
                        None => self
                            .spy
                            .python_thread_names
                            .get(&trace.thread_id)
                            .cloned()
                            .flatten()
                            .map(|raw| self.sanitized_name(trace.thread_id, raw)),
                    },
                    (false, raw) => raw.map(|raw| self.sanitized_name(trace.thread_id, raw)),
                };
                PythonThread {
                    thread_id: trace.thread_id,
                    tid: None,
                    // 0: a thread state not yet bound to its OS thread (3.12+ sets it then).
                    native_tid: trace
                        .os_thread_id
                        .and_then(|t| u32::try_from(t).ok())
                        .filter(|&t| t != 0),
                    name,
                    owns_gil: trace.owns_gil,
                    frames,
                    read: StackRead {
                        rereads: u8::try_from(trace.rereads).unwrap_or(u8::MAX),
                        dropped: trace.torn,
                    },
                }
            })
            .collect();
        self.last_frames.retain(|id, _| seen.contains(id));
        if self.last_names.len() > seen.len() {
            self.last_names.retain(|id, _| seen.contains(id));
        }
        Ok(threads)
    }

    /// The frames last read of `thread_id`, for a thread that did not run since or whose
    /// stack py-spy found repeated.
    fn kept_frames(&mut self, thread_id: u64) -> Arc<[Frame]> {
        if let Some(frames) = self.last_frames.get(&thread_id) {
            return Arc::clone(frames);
        }
        // Not expected (py-spy forgets its walks whenever a read fails, as this reader does):
        // have every stack built again at the next read rather than keep a wrong one.
        self.spy.code_cache.forget_walks();
        Arc::from(Vec::new())
    }

    /// The frame `key` stands for, its function named on first sight.
    fn frame_of(&mut self, key: &py_spy::FrameKey) -> Frame {
        if self.functions.len() >= FUNCTIONS_KEPT && !self.functions.contains_key(&key.generation) {
            self.functions.clear();
        }
        let spy = &mut self.spy;
        let names = self.functions.entry(key.generation).or_insert_with(|| {
            // Always known for a key of this sample; empty names (never seen) otherwise.
            let (name, filename) = spy
                .code_cache
                .names(key)
                .map(|(n, f)| (Arc::clone(n), Arc::clone(f)))
                .unwrap_or_default();
            FunctionNames {
                name: sanitized_shared(&name),
                short_filename: spy
                    .short_filename(&filename)
                    .map(|short| Arc::from(sanitize(&short))),
                filename: sanitized_shared(&filename),
            }
        });
        Frame {
            name: Arc::clone(&names.name),
            filename: Arc::clone(&names.filename),
            short_filename: names.short_filename.clone(),
            line: u32::try_from(key.line).unwrap_or(0),
            first_line: u32::try_from(key.first_line).unwrap_or(0),
        }
    }

    /// `raw` sanitised; a thread's name is sanitised once, not at every read.
    fn sanitized_name(&mut self, thread_id: u64, raw: String) -> Arc<str> {
        match self.last_names.get(&thread_id) {
            Some(last) if last.raw == raw => Arc::clone(&last.shown),
            _ => {
                let shown: Arc<str> = sanitize(&raw).into();
                self.last_names.insert(
                    thread_id,
                    LastName {
                        raw,
                        shown: Arc::clone(&shown),
                    },
                );
                shown
            }
        }
    }

    /// py-spy's stack traces, read while the helper holds the target paused with `--blocking`.
    fn paused_stack_traces(
        &mut self,
        at: &mut dyn FnMut(py_spy::WalkMoment),
    ) -> Result<Vec<py_spy::StackTrace>, String> {
        let Some(pauser) = self.pauser.as_mut() else {
            return self
                .spy
                .get_stack_traces_at(at)
                .map_err(|e| format!("{e:#}"));
        };
        let since = pauser.pause()?;
        let traces = self.spy.get_stack_traces_at(at);
        let resumed = pauser.resume(since)?;
        let traces = traces.map_err(|e| format!("{e:#}"))?;
        if resumed == Resumed::Late {
            // Not paused throughout: the stacks may be torn, as without --blocking.
            return Err(
                "the --blocking pause ended (its deadline passed) before the read did".into(),
            );
        }
        Ok(traces)
    }

    /// Drops a name whose `threading.Thread` recorded another OS thread than this one (ids
    /// still as the target's namespace has them): a stale `threading._active` entry, or one
    /// read before the thread id was recycled. py-spy checks this itself only where the
    /// interpreter records the OS thread (3.11+); here the resolved tid serves every version.
    fn drop_names_of_other_threads(&mut self, threads: &mut [PythonThread]) {
        for t in threads.iter_mut() {
            let Some(tid) = t.tid else { continue };
            let recorded = self.spy.python_thread_native_ids.get(&t.thread_id);
            if t.name.is_some() && recorded.is_some_and(|&r| r != u64::from(tid)) {
                t.name = None;
                // looked up again at py-spy's next retry (within a second)
                self.spy.python_thread_names.insert(t.thread_id, None);
            }
        }
    }

    /// Fills in the tid of threads that lack one, from the target's `struct pthread`s,
    /// checked against `tids` (the OS threads in `/proc/PID/task`, ascending). For a target
    /// in a PID namespace of its own, `namespace` pairs each thread's id inside it with ours
    /// (sorted by the inner id): the interpreter and glibc know only the inner ids, which are
    /// matched there and then translated, so every tid here is as `/proc` names it.
    pub fn resolve_tids(
        &mut self,
        threads: &mut [PythonThread],
        tids: &[u32],
        namespace: Option<&[(u32, u32)]>,
    ) {
        // From what the interpreter said each time: this may run twice for one read.
        for t in threads.iter_mut() {
            t.tid = t.native_tid;
        }
        let missing: Vec<u64> = threads
            .iter()
            .filter(|t| t.tid.is_none())
            .map(|t| t.thread_id)
            .collect();
        let inner_tids: Option<Vec<u32>> =
            namespace.map(|pairs| pairs.iter().map(|&(inner, _)| inner).collect());
        if !missing.is_empty() {
            let known = inner_tids.as_deref().unwrap_or(tids);
            let resolved = self.tids.resolve(&self.spy.process, &missing, known);
            for t in threads.iter_mut().filter(|t| t.tid.is_none()) {
                t.tid = resolved.get(&t.thread_id).copied();
            }
        }
        self.drop_names_of_other_threads(threads);
        if let Some(pairs) = namespace {
            for t in threads.iter_mut() {
                t.tid = t.tid.and_then(|inner| {
                    let i = pairs.binary_search_by_key(&inner, |&(i, _)| i).ok()?;
                    pairs.get(i).map(|&(_, outer)| outer)
                });
            }
        }
        // A recycled thread id (`pthread_t`) now on another OS thread is a new thread: before
        // 3.11 py-spy cannot tell, so its cached name is the old thread's. Forget it; the
        // name is looked up again at the next read.
        // An id unseen or unresolved for a few reads (a thread being born carries its
        // creator's id) is remembered still, so the change is seen whenever it comes back.
        if self.tid_of_thread.len() > threads.len().saturating_mul(4).saturating_add(4096) {
            self.tid_of_thread.clear();
        }
        for t in threads.iter_mut() {
            let Some(tid) = t.tid else { continue };
            if self
                .tid_of_thread
                .insert(t.thread_id, tid)
                .is_some_and(|old| old != tid)
            {
                self.spy.python_thread_names.remove(&t.thread_id);
                // The name kept for a thread that did not run (py-spy's `name_unchanged`) is
                // the exited thread's too: a recycled id found idle right after a lookup
                // named it was shown with its predecessor's name (3.15, churn_names.py, in a
                // CI run beside the suite).
                self.last_names.remove(&t.thread_id);
                t.name = None;
            }
        }
        self.thread_of_tid = threads
            .iter()
            .filter_map(|t| Some((t.tid?, t.thread_id)))
            .collect();
    }
}

/// `raw` as shown: the same shared text when it needs no escaping.
fn sanitized_shared(raw: &Arc<str>) -> Arc<str> {
    let clean = sanitize(raw);
    if *clean == **raw {
        Arc::clone(raw)
    } else {
        clean.into()
    }
}

fn convert_frame(frame: &py_spy::Frame) -> Frame {
    Frame {
        name: sanitize(&frame.name).into(),
        filename: sanitize(&frame.filename).into(),
        short_filename: frame.short_filename.as_deref().map(|s| sanitize(s).into()),
        line: u32::try_from(frame.line).unwrap_or(0),
        first_line: u32::try_from(frame.first_line).unwrap_or(0),
    }
}

/// Maps Python thread ids (glibc `pthread_t`, the address of the thread's `struct pthread`)
/// to OS tids without pausing the target: the `tid` field sits at a fixed offset for a given
/// libc build, so one remote read per thread gives it. The offset is found once by scanning
/// the structs of all Python threads for a field whose values are the tids in
/// `/proc/PID/task`, and checked against that list on every read.
#[derive(Debug, Default)]
struct TidResolver {
    offset: Option<usize>,
}

/// Where glibc 2.x on `x86_64` keeps `struct pthread.tid`; tried first when scanning.
const GLIBC_X86_64_TID_OFFSET: usize = 0x2d0;
/// How much of `struct pthread` to scan for the `tid` field.
const SCAN_BYTES: usize = 2048;

impl TidResolver {
    fn resolve(
        &mut self,
        memory: &impl ProcessMemory,
        pthread_ids: &[u64],
        tids: &[u32],
    ) -> HashMap<u64, u32> {
        // A thread state being born still carries its creator's id (CPython sets its own in
        // the new thread's bootstrap): one id can appear twice, and counts once.
        let mut unique = pthread_ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let pthread_ids = unique.as_slice();
        if let Some(offset) = self.offset {
            let found = read_at_offset(memory, pthread_ids, tids, offset);
            // Some unmatched: a thread born since `tids` was listed (the caller lists again)
            // or one that exited. None matched: the offset is wrong; scanning settles it.
            if !found.is_empty() {
                return found;
            }
        }
        self.offset = calibrate(memory, pthread_ids, tids);
        match self.offset {
            Some(offset) => read_at_offset(memory, pthread_ids, tids, offset),
            None => HashMap::default(),
        }
    }
}

fn read_at_offset(
    memory: &impl ProcessMemory,
    pthread_ids: &[u64],
    tids: &[u32],
    offset: usize,
) -> HashMap<u64, u32> {
    pthread_ids
        .iter()
        .filter_map(|&id| {
            let addr = usize::try_from(id).ok()?.checked_add(offset)?;
            let mut bytes = [0u8; 4];
            memory.read(addr, &mut bytes).ok()?;
            let tid = u32::from_ne_bytes(bytes);
            tids.binary_search(&tid).is_ok().then_some((id, tid))
        })
        .collect()
}

fn calibrate(memory: &impl ProcessMemory, pthread_ids: &[u64], tids: &[u32]) -> Option<usize> {
    let structs: Vec<Vec<u8>> = pthread_ids
        .iter()
        .filter_map(|&id| memory.copy(usize::try_from(id).ok()?, SCAN_BYTES).ok())
        .collect();
    if structs.is_empty() {
        return None;
    }
    let fits = |offset: usize| -> bool {
        let mut seen = Vec::with_capacity(structs.len());
        structs.iter().all(|s| {
            let Some(bytes) = s.get(offset..offset + 4) else {
                return false;
            };
            let tid = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            // Small values (flags, counts) are not tids; the smallest real tid here is the
            // pid of the container's init, so only 0 is ruled out outright.
            let ok = tid != 0 && tids.binary_search(&tid).is_ok() && !seen.contains(&tid);
            seen.push(tid);
            ok
        })
    };
    std::iter::once(GLIBC_X86_64_TID_OFFSET)
        .chain((0..SCAN_BYTES - 4).step_by(4))
        .find(|&offset| fits(offset))
}
