// hptop patch: these maps are looked up per thread per sample; SipHash cost more than the
// reads on 1,000-thread targets.
use rustc_hash::FxHashMap as HashMap;
use rustc_hash::FxHashSet as HashSet;
#[cfg(all(target_os = "linux", feature = "unwind"))]
use std::iter::FromIterator;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Error, Result};
use remoteprocess::{Pid, Process, ProcessMemory, Tid};

use crate::config::{Config, LockingStrategy};
#[cfg(feature = "unwind")]
use crate::native_stack_trace::NativeStack;
use crate::python_bindings::{
    v2_7_15, v3_10_0, v3_11_0, v3_12_0, v3_13_0, v3_14_0, v3_15_0, v3_3_7, v3_5_5, v3_6_6, v3_7_0,
    v3_8_0, v3_9_5,
};
use crate::python_data_access::format_variable;
use crate::python_interpreters::{InterpreterState, ThreadState};
use crate::python_process_info::{get_python_version, PythonProcessInfo, PythonProcessLayout};
use crate::python_threading::thread_name_lookup;
use crate::stack_trace::{get_gil_threadid, get_stack_trace_cached, CodeCache, StackTrace};
use crate::version::Version;

/// hptop patch: the moments of a sample's walk at which [`PythonSpy::get_stack_traces_at`]
/// calls its caller back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkMoment {
    /// Right before the first read of any thread's state.
    ThreadsAboutToBeRead,
    /// Right before the leaf frames are read: before the read-ahead of the walks' starts
    /// (3.11+, after the thread states' prefetch), else with `ThreadsAboutToBeRead`.
    LeavesAboutToBeRead,
    /// Every thread's leaf frames are read: right after the read-ahead of the walks' starts
    /// (3.11+), or at the end of the walks where there is none.
    LeavesRead,
}

/// Lets you retrieve stack traces of a running python program
pub struct PythonSpy {
    pub pid: Pid,
    pub process: Process,
    pub version: Version,
    pub addresses: PythonProcessLayout,
    pub config: Config,
    #[cfg(feature = "unwind")]
    pub native: Option<NativeStack>,
    pub short_filenames: HashMap<String, Option<String>>,
    pub python_thread_ids: HashMap<u64, Tid>,
    pub python_thread_names: HashMap<u64, Option<String>>,
    /// hptop patch: the OS thread id each named `Thread` object recorded (`_native_id`) at
    /// the last lookup; a name is given only to the OS thread it was read for.
    pub python_thread_native_ids: HashMap<u64, u64>,
    thread_name_lookup_time: Instant,
    #[cfg(target_os = "linux")]
    pub dockerized: bool,
    /// hptop patch: what was decoded of code objects (see `CodeCache`).
    pub code_cache: CodeCache,
    /// hptop patch 21: where the target's asyncio task lists are (see `asyncio_tasks`).
    asyncio: crate::asyncio_tasks::AsyncioReader,
    /// hptop patch: Python thread ids whose frames the next `get_stack_traces` does not read
    /// (returned empty): the caller vouches that they have not changed.
    pub unchanged_threads: HashSet<u64>,
    /// hptop patch: a thread whose walk finds the frames of its last walk again comes back
    /// with `repeated` set and no frames (the caller keeps the last ones). Ignored with
    /// native frames or local variables, which are not part of the comparison.
    pub reuse_repeated_stacks: bool,
    /// hptop patch: traces carry their frames as `StackTrace::keys` (names shared with the
    /// code cache) instead of built `frames`; the caller names them, once per function (see
    /// `CodeCache::keys_only`). Ignored with native frames or local variables.
    pub frame_keys: bool,
    /// hptop patch: most Python threads a sample walks before it gives up (a cycle in a torn
    /// read). 4096 while py-spy searches for the interpreter; the caller raises it to what the
    /// process really has (`/proc/PID/task`), so a pool of thousands of threads is sampled.
    pub max_threads: usize,
    /// hptop patch: (PyThreadState address, native thread id) each cached thread name was
    /// read for: a thread id (a recycled `pthread_t`) seen with another identity is a new
    /// thread, whose name is looked up again instead of inheriting the old one's.
    thread_name_identity: HashMap<u64, (usize, Option<u64>)>,
    /// hptop patch: addresses of the thread states walked in the last sample. They are read
    /// again at the start of the next in one batched `process_vm_readv` (one system call for
    /// up to 1,024 threads instead of one each), and the walk takes them from that read.
    prev_threadstates: Vec<usize>,
    /// hptop patch: the bytes of the thread states prefetched for the current sample (kept
    /// across samples: thread states are read in place from it, never copied out in bulk).
    prefetch_buf: Vec<u8>,
    /// hptop patch 22: address of `_PyRuntime` (its symbol, else the `.PyRuntime` section),
    /// for the GC flag of 3.7/3.8 and the `_Py_DebugOffsets` of 3.13+.
    runtime_address: Option<usize>,
    /// hptop patch 22: where the GC flag is, once found (see `gc_collecting`).
    gc_flag: crate::gc_state::GcFlag,
}

impl PythonSpy {
    /// Constructs a new PythonSpy object.
    pub fn new(pid: Pid, config: &Config) -> Result<PythonSpy, Error> {
        let process = remoteprocess::Process::new(pid)
            .context("Failed to open process - check if it is running.")?;

        // get basic process information (memory maps/symbols etc)
        let python_info = PythonProcessInfo::new(&process)?;

        // lock the process when loading up on freebsd (rather than locking
        // on every memory read). Needs done after getting python process info
        // because procmaps also tries to attach w/ ptrace on freebsd
        #[cfg(target_os = "freebsd")]
        let _lock = process.lock();

        let version = get_python_version(&python_info, &process)?;
        info!("python version {} detected", version);

        let addresses = PythonProcessLayout::new(&python_info, &process, &version, config)?;
        // hptop patch 22: where `_PyRuntime` is, as `PythonProcessLayout` looks for it.
        let runtime_address = python_info
            .get_symbol("_PyRuntime")
            .map(|&address| address as usize)
            .or_else(|| {
                [&python_info.python_binary, &python_info.libpython_binary]
                    .into_iter()
                    .flatten()
                    .map(|binary| binary.pyruntime_addr as usize)
                    .find(|&address| address != 0)
            });
        info!(
            "Found interpreter at 0x{:016x}",
            addresses.interpreter_address
        );

        #[cfg(feature = "unwind")]
        let native = if config.native {
            Some(NativeStack::new(
                pid,
                python_info.python_binary,
                python_info.libpython_binary,
            )?)
        } else {
            None
        };

        Ok(PythonSpy {
            pid,
            process,
            version,
            addresses,
            #[cfg(feature = "unwind")]
            native,
            #[cfg(target_os = "linux")]
            dockerized: python_info.dockerized,
            config: config.clone(),
            short_filenames: HashMap::default(),
            python_thread_ids: HashMap::default(),
            python_thread_names: HashMap::default(),
            python_thread_native_ids: HashMap::default(),
            max_threads: os_thread_count(pid).saturating_mul(2).saturating_add(64).max(4096),
            thread_name_identity: HashMap::default(),
            prev_threadstates: Vec::new(),
            prefetch_buf: Vec::new(),
            runtime_address,
            gc_flag: Default::default(),
            thread_name_lookup_time: Instant::now(),
            code_cache: CodeCache::of_process(pid),
            asyncio: Default::default(),
            unchanged_threads: HashSet::default(),
            reuse_repeated_stacks: false,
            frame_keys: false,
        })
    }

    /// Creates a PythonSpy object, retrying up to max_retries times.
    /// Mainly useful for the case where the process is just started and
    /// symbols or the python interpreter might not be loaded yet.
    pub fn retry_new(pid: Pid, config: &Config, max_retries: u64) -> Result<PythonSpy, Error> {
        let mut retries = 0;
        loop {
            let err = match PythonSpy::new(pid, config) {
                Ok(mut process) => {
                    // verify that we can load a stack trace before returning success
                    match process.get_stack_traces() {
                        Ok(_) => return Ok(process),
                        Err(err) => err,
                    }
                }
                Err(err) => err,
            };

            // If we failed, retry a couple times before returning the last error
            retries += 1;
            if retries >= max_retries {
                return Err(err);
            }
            info!("Failed to connect to process, retrying. Error: {}", err);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Gets a StackTrace for each thread in the current process
    pub fn get_stack_traces(&mut self) -> Result<Vec<StackTrace>, Error> {
        self.get_stack_traces_at(&mut |_| {})
    }

    /// hptop patch: [`Self::get_stack_traces`], calling `at` at the [`WalkMoment`]s of the
    /// sample (a caller reads what must be of the same moment as the stacks there).
    pub fn get_stack_traces_at(
        &mut self,
        at: &mut dyn FnMut(WalkMoment),
    ) -> Result<Vec<StackTrace>, Error> {
        let traces = self.get_stack_traces_of_version(at);
        if traces.is_err() {
            // hptop patch: the caller drops what it kept of this sample: so does the cache of
            // walks, or the next sample could call a stack repeated that the caller no longer has.
            self.code_cache.forget_walks();
        }
        traces
    }

    fn get_stack_traces_of_version(
        &mut self,
        at: &mut dyn FnMut(WalkMoment),
    ) -> Result<Vec<StackTrace>, Error> {
        match self.version {
            // ABI for 2.3/2.4/2.5/2.6/2.7 is compatible for our purpose
            Version {
                major: 2,
                minor: 3..=7,
                ..
            } => self._get_stack_traces::<v2_7_15::_is>(at),
            Version {
                major: 3, minor: 3, ..
            } => self._get_stack_traces::<v3_3_7::_is>(at),
            // ABI for 3.4 and 3.5 is the same for our purposes
            Version {
                major: 3, minor: 4, ..
            } => self._get_stack_traces::<v3_5_5::_is>(at),
            Version {
                major: 3, minor: 5, ..
            } => self._get_stack_traces::<v3_5_5::_is>(at),
            Version {
                major: 3, minor: 6, ..
            } => self._get_stack_traces::<v3_6_6::_is>(at),
            Version {
                major: 3, minor: 7, ..
            } => self._get_stack_traces::<v3_7_0::_is>(at),
            Version {
                major: 3, minor: 8, ..
            } => self._get_stack_traces::<v3_8_0::_is>(at),
            Version {
                major: 3, minor: 9, ..
            } => self._get_stack_traces::<v3_9_5::_is>(at),
            Version {
                major: 3,
                minor: 10,
                ..
            } => self._get_stack_traces::<v3_10_0::_is>(at),
            Version {
                major: 3,
                minor: 11,
                ..
            } => self._get_stack_traces::<v3_11_0::_is>(at),
            Version {
                major: 3,
                minor: 12,
                ..
            } => self._get_stack_traces::<v3_12_0::_is>(at),
            Version {
                major: 3,
                minor: 13,
                ..
            } => self._get_stack_traces::<v3_13_0::_is>(at),
            Version {
                major: 3,
                minor: 14,
                ..
            } => self._get_stack_traces::<v3_14_0::_is>(at),
            Version {
                major: 3,
                minor: 15,
                ..
            } => self._get_stack_traces::<v3_15_0::_is>(at),
            _ => Err(format_err!(
                "Unsupported version of Python: {}",
                self.version
            )),
        }
    }

    // implementation of get_stack_traces, where we have a type for the InterpreterState
    /// hptop patch 21: the target's asyncio tasks (3.14+), read through the offsets the
    /// interpreter and its `_asyncio` module publish; `None` on older Pythons or before the
    /// target imports asyncio (looked for again every few calls).
    pub fn asyncio_tasks(&mut self) -> Result<Option<crate::AsyncioTasks>, Error> {
        let interpreter = self.addresses.interpreter_address;
        match self.version {
            Version { major: 3, minor: 14, .. } => self.asyncio.read::<v3_14_0::_is, _>(
                self.pid,
                &self.process,
                interpreter,
                14,
            ),
            Version { major: 3, minor: 15, .. } => self.asyncio.read::<v3_15_0::_is, _>(
                self.pid,
                &self.process,
                interpreter,
                15,
            ),
            // hptop patch 28: asyncio's own globals on 3.11-3.13.
            Version { major: 3, minor: 11, .. } => self.asyncio.read_legacy::<v3_11_0::_is, _>(
                self.pid,
                &self.process,
                &self.version,
                interpreter,
                self.addresses.imports_modules_address,
            ),
            Version { major: 3, minor: 12, .. } => self.asyncio.read_legacy::<v3_12_0::_is, _>(
                self.pid,
                &self.process,
                &self.version,
                interpreter,
                self.addresses.imports_modules_address,
            ),
            Version { major: 3, minor: 13, .. } => self.asyncio.read_legacy::<v3_13_0::_is, _>(
                self.pid,
                &self.process,
                &self.version,
                interpreter,
                self.addresses.imports_modules_address,
            ),
            _ => Ok(None),
        }
    }

    /// hptop patch 22: whether the interpreter's cyclic garbage collector runs right now (its
    /// GC state's `collecting` is non-zero); `None` when where that flag is is not known for
    /// this Python, or the read failed. The first call finds and checks the flag (see
    /// `gc_state`); each later call is one 4-byte read, without pausing the target. 3.7 and
    /// 3.8 have one flag per process; 3.9+ the sampled interpreter's.
    pub fn gc_collecting(&self) -> Option<bool> {
        self.gc_flag.collecting(
            &self.process,
            &self.version,
            self.addresses.interpreter_address,
            self.runtime_address,
        )
    }

    /// hptop patch 21: the asyncio task each event-loop thread runs now, by OS thread id
    /// (threads that ran a loop at the last [`Self::asyncio_tasks`]); 0: none.
    pub fn asyncio_running_tasks(&self) -> Vec<(u64, usize)> {
        self.asyncio.running(&self.process)
    }

    fn _get_stack_traces<I: InterpreterState>(
        &mut self,
        at: &mut dyn FnMut(WalkMoment),
    ) -> Result<Vec<StackTrace>, Error> {
        // Query the OS to get if each thread in the process is running or not
        let mut thread_activity = HashMap::default();
        if self.config.gil_only || self.config.skip_thread_activity {
            // hptop patch: `skip_thread_activity` for callers that read thread states themselves.
            // Don't need to collect thread activity if we're only getting the
            // GIL thread: If we're holding the GIL we're by definition active.
        } else {
            for thread in self.process.threads()?.iter() {
                let threadid: Tid = thread.id()?;
                let Ok(active) = thread.active() else {
                    // Do not fail all sampling if a single thread died between entering the loop
                    // and reading its status.
                    continue;
                };
                thread_activity.insert(threadid, active);
            }
        }

        // Lock the process if appropriate. Note we have to lock AFTER getting the thread
        // activity status from the OS (otherwise each thread would report being inactive always).
        // This has the potential for race conditions (in that the thread activity could change
        // between getting the status and locking the thread, but seems unavoidable right now
        let _lock = if self.config.blocking == LockingStrategy::Lock {
            Some(self.process.lock().context("Failed to suspend process")?)
        } else {
            None
        };

        // Find PyThreadState, and loop over all the python threads
        let threadstate_ptr_ptr = I::threadstate_ptr_ptr(self.addresses.interpreter_address);
        let threads_head = self
            .process
            .copy_pointer(threadstate_ptr_ptr)
            .context("Failed to copy PyThreadState head pointer")?;

        // get the threadid of the gil if appropriate
        let gil_thread_id =
            get_gil_threadid::<I, Process>(self.addresses.threadstate_address, &self.process)
                .context("failed to get gil_thread_id")?;

        let mut did_thread_name_lookup = false;
        self.code_cache.detect_repeats =
            self.reuse_repeated_stacks && !self.config.native && self.config.dump_locals == 0;
        self.code_cache.keys_only =
            self.frame_keys && !self.config.native && self.config.dump_locals == 0;
        self.code_cache.start_sample();

        let mut traces = Vec::new();
        let mut threads = threads_head;
        let mut visited = 0;
        at(WalkMoment::ThreadsAboutToBeRead);
        if self.code_cache.pid.is_none() {
            at(WalkMoment::LeavesAboutToBeRead);
        }
        // hptop patch: the thread states of the last sample, read at once.
        // The list is usually walked in the same order as last time: take them in order.
        let prefetched = prefetch_structs::<I::ThreadState>(
            self.pid,
            &self.prev_threadstates,
            &mut self.prefetch_buf,
        );
        // hptop patch: the first reads of every walk, for all threads at once (`ReadAhead`).
        if self.code_cache.pid.is_some() {
            let at_of: HashMap<usize, usize> = prefetched.iter().copied().collect();
            let mut to_walk = Vec::with_capacity(prefetched.len());
            let mut next = threads_head as usize;
            // The thread states as this sample's walk will take them: each from the prefetch.
            for _ in 0..prefetched.len() {
                let Some(thread) = at_of
                    .get(&next)
                    .and_then(|&at| struct_at::<I::ThreadState>(&self.prefetch_buf, at))
                else {
                    break;
                };
                let address = next;
                next = thread.next() as usize;
                if !self.unchanged_threads.contains(&thread.thread_id()) {
                    to_walk.push((address, thread));
                }
            }
            at(WalkMoment::LeavesAboutToBeRead);
            self.code_cache.read_ahead.read_starts(self.pid, &to_walk);
        } else {
            self.code_cache.read_ahead.clear();
        }
        // Where the read-ahead holds the walks' starts (3.11+), every thread's leaf frames
        // are read by now (their code objects, read next, do not change while the frames
        // run); elsewhere each walk reads its own, and the moment is the walk's end.
        let leaves_read_ahead = self.code_cache.read_ahead.holds_starts();
        if leaves_read_ahead {
            at(WalkMoment::LeavesRead);
            self.code_cache
                .read_ahead
                .read_codes::<I::ThreadState>(self.pid);
        }
        let mut cursor = 0;
        let mut walked = Vec::with_capacity(self.prev_threadstates.len());
        while !threads.is_null() {
            visited += 1;
            // This seems to happen occasionally when scanning BSS addresses for valid interpreters
            if visited > self.max_threads {
                return Err(format_err!("Max thread recursion depth reached"));
            }

            // Get the stack trace of the python thread
            let threadstate_address = threads as usize;
            walked.push(threadstate_address);
            // A thread gone since is skipped; a new one (CPython adds them at the head) is
            // not in the prefetch and is read on its own.
            if prefetched
                .get(cursor)
                .is_some_and(|(address, _)| *address != threadstate_address)
            {
                if let Some(ahead) = prefetched[cursor..]
                    .iter()
                    .position(|(address, _)| *address == threadstate_address)
                {
                    cursor += ahead;
                }
            }
            let hit = prefetched
                .get(cursor)
                .filter(|(address, _)| *address == threadstate_address)
                .and_then(|&(_, at)| struct_at::<I::ThreadState>(&self.prefetch_buf, at));
            if hit.is_some() {
                cursor += 1;
            }
            let thread = match hit {
                Some(thread) => thread,
                None => self
                    .process
                    .copy_pointer(threads)
                    .context("Failed to copy PyThreadState")?,
            };
            threads = thread.next();

            let python_thread_id = thread.thread_id();
            let owns_gil = python_thread_id == gil_thread_id;

            if self.config.gil_only && !owns_gil {
                continue;
            }

            // hptop patch: the caller knows these threads have not run since it last read
            // their stacks, so their frames cannot have changed: skip reading them again.
            let mut trace = if self.unchanged_threads.contains(&python_thread_id) {
                self.code_cache.keep_walk(python_thread_id);
                Ok(StackTrace {
                    pid: self.pid,
                    repeated: false,
                    name_unchanged: false,
                    keys: Vec::new(),
                    thread_id: python_thread_id,
                    thread_name: None,
                    os_thread_id: thread.native_thread_id(),
                    active: false,
                    owns_gil,
                    frames: Vec::new(),
                    process_info: None,
                    rereads: 0,
                    torn: false,
                })
            } else {
                get_stack_trace_cached(
                    &thread,
                    Some(threadstate_address),
                    &self.process,
                    self.config.dump_locals > 0,
                    self.config.lineno,
                    &mut self.code_cache,
                )
            }
            .with_context(|| {
                format!(
                    "Failed to call get_stack_trace for thread {}",
                    python_thread_id
                )
            })?;

            // Try getting the native thread id

            // python 3.11+ has the native thread id directly on the PyThreadState object,
            // for older versions of python, try using OS specific code to get the native
            // thread id (doesn't work on freebsd, or on arm/i686 processors on linux)
            if trace.os_thread_id.is_none() {
                let mut os_thread_id =
                    self._get_os_thread_id::<I>(python_thread_id, threads_head)?;

                // linux can see issues where pthread_ids get recycled for new OS threads,
                // which totally breaks the caching we were doing here. Detect this and retry
                if let Some(tid) = os_thread_id {
                    if !thread_activity.is_empty() && !thread_activity.contains_key(&tid) {
                        info!("clearing away thread id caches, thread {} has exited", tid);
                        self.python_thread_ids.clear();
                        self.python_thread_names.clear();
                        os_thread_id =
                            self._get_os_thread_id::<I>(python_thread_id, threads_head)?;
                    }
                }

                trace.os_thread_id = os_thread_id.map(|id| id as u64);
            }

            if self.config.collect_thread_names {
                // hptop patch: a recycled thread id does not inherit the old thread's name.
                // (A lookup already made in this sample is fresh: nothing to forget then.)
                let identity = (threadstate_address, thread.native_thread_id());
                let before = self.thread_name_identity.insert(python_thread_id, identity);
                if before.is_some_and(|b| b != identity) && !did_thread_name_lookup {
                    self.python_thread_names.remove(&python_thread_id);
                }
            }
            // hptop patch: a thread that did not run keeps the name it had (not copied again).
            trace.name_unchanged = self.config.collect_thread_names
                && self.unchanged_threads.contains(&python_thread_id)
                && matches!(self.python_thread_names.get(&python_thread_id), Some(Some(_)));
            trace.thread_name = if self.config.collect_thread_names && !trace.name_unchanged {
                self._get_python_thread_name(
                    &mut did_thread_name_lookup,
                    python_thread_id,
                    trace.os_thread_id,
                )
            } else {
                None
            };
            trace.owns_gil = owns_gil;
            trace.pid = self.process.pid;

            // Figure out if the thread is sleeping from the OS if possible
            trace.active = true;
            if let Some(id) = trace.os_thread_id {
                let id = id as Tid;
                if let Some(active) = thread_activity.get(&id as _) {
                    trace.active = *active;
                }
            }

            // fallback to using a heuristic if we think the thread is still active
            // Note that on linux the OS thread activity can only be gotten on x86_64
            // processors and even then seems to be wrong occasionally in thinking 'select'
            // calls are active (which seems related to the thread locking code,
            // this problem doesn't seem to happen with the --nonblocking option)
            // Note: this should be done before the native merging for correct results
            if trace.active {
                trace.active = !self._heuristic_is_thread_idle(&trace);
            }

            // Merge in the native stack frames if necessary
            #[cfg(feature = "unwind")]
            {
                if self.config.native {
                    if let Some(native) = self.native.as_mut() {
                        let thread_id = trace
                            .os_thread_id
                            .ok_or_else(|| format_err!("failed to get os threadid"))?;
                        let os_thread = remoteprocess::Thread::new(thread_id as Tid)?;
                        trace.frames = native.merge_native_thread(&trace.frames, &os_thread)?
                    }
                }
            }

            for frame in &mut trace.frames {
                frame.short_filename = self.shorten_filename(&frame.filename);
                if let Some(locals) = frame.locals.as_mut() {
                    let max_length = (128 * self.config.dump_locals) as isize;
                    for local in locals {
                        let repr = format_variable::<I, Process>(
                            &self.process,
                            &self.version,
                            local.addr,
                            max_length,
                        );
                        local.repr = Some(repr.unwrap_or_else(|_| "?".to_owned()));
                    }
                }
            }

            traces.push(trace);

            if self.config.gil_only {
                // There's only one GIL thread and we've captured it, so we can
                // stop now
                break;
            }
        }
        if !leaves_read_ahead {
            at(WalkMoment::LeavesRead);
        }
        self.prev_threadstates = walked;
        self.code_cache.end_sample(traces.len());
        // hptop patch: forget the names of threads that are gone, so neither map grows with
        // thread churn. (Only when a map holds more threads than this sample saw: an id
        // reused meanwhile is caught by `thread_name_identity`.)
        let names_kept = self
            .thread_name_identity
            .len()
            .max(self.python_thread_names.len());
        if self.config.collect_thread_names && !self.config.gil_only && names_kept > traces.len()
        {
            let seen: HashSet<u64> = traces.iter().map(|t| t.thread_id).collect();
            self.thread_name_identity.retain(|id, _| seen.contains(id));
            self.python_thread_names.retain(|id, _| seen.contains(id));
            self.python_thread_native_ids
                .retain(|id, _| seen.contains(id));
        }
        Ok(traces)
    }

    // heuristic fallback for determining if a thread is active, used
    // when we don't have the ability to get the thread information from the OS
    fn _heuristic_is_thread_idle(&self, trace: &StackTrace) -> bool {
        let frames = &trace.frames;
        if frames.is_empty() {
            // we could have 0 python frames, but still be active running native
            // code.
            false
        } else {
            let frame = &frames[0];
            (frame.name == "wait" && frame.filename.ends_with("threading.py"))
                || (frame.name == "select" && frame.filename.ends_with("selectors.py"))
                || (frame.name == "poll"
                    && (frame.filename.ends_with("asyncore.py")
                        || frame.filename.contains("zmq")
                        || frame.filename.contains("gevent")
                        || frame.filename.contains("tornado")))
        }
    }

    #[cfg(windows)]
    fn _get_os_thread_id<I: InterpreterState>(
        &mut self,
        python_thread_id: u64,
        _interp_head: *const I::ThreadState,
    ) -> Result<Option<Tid>, Error> {
        Ok(Some(python_thread_id as Tid))
    }

    #[cfg(target_os = "macos")]
    fn _get_os_thread_id<I: InterpreterState>(
        &mut self,
        python_thread_id: u64,
        _interp_head: *const I::ThreadState,
    ) -> Result<Option<Tid>, Error> {
        // If we've already know this threadid, we're good
        if let Some(thread_id) = self.python_thread_ids.get(&python_thread_id) {
            return Ok(Some(*thread_id));
        }

        for thread in self.process.threads()?.iter() {
            // ok, this is crazy pants. is this 224 constant right?  Is this right for all versions of OSX? how is this determined?
            // is this correct for all versions of python? Why does this even work?
            let current_handle = thread.thread_handle()? - 224;
            self.python_thread_ids.insert(current_handle, thread.id()?);
        }

        if let Some(thread_id) = self.python_thread_ids.get(&python_thread_id) {
            return Ok(Some(*thread_id));
        }
        Ok(None)
    }

    #[cfg(all(target_os = "linux", not(feature = "unwind")))]
    fn _get_os_thread_id<I: InterpreterState>(
        &mut self,
        _python_thread_id: u64,
        _interp_head: *const I::ThreadState,
    ) -> Result<Option<Tid>, Error> {
        Ok(None)
    }

    #[cfg(all(target_os = "linux", feature = "unwind"))]
    fn _get_os_thread_id<I: InterpreterState>(
        &mut self,
        python_thread_id: u64,
        interp_head: *const I::ThreadState,
    ) -> Result<Option<Tid>, Error> {
        // in nonblocking mode, we can't get the threadid reliably (method here requires reading the RBX
        // register which requires a ptrace attach). fallback to heuristic thread activity here
        if self.config.blocking == LockingStrategy::NonBlocking {
            return Ok(None);
        }

        // likewise this doesn't yet work for profiling processes running inside docker containers from the host os
        if self.dockerized {
            return Ok(None);
        }

        // If we've already know this threadid, we're good
        if let Some(thread_id) = self.python_thread_ids.get(&python_thread_id) {
            return Ok(Some(*thread_id));
        }

        // Get a list of all the python thread ids
        let mut all_python_threads = HashSet::default();
        let mut threads = interp_head;
        while !threads.is_null() {
            let thread = self
                .process
                .copy_pointer(threads)
                .context("Failed to copy PyThreadState")?;
            let current = thread.thread_id();
            all_python_threads.insert(current);
            threads = thread.next();
        }

        let processed_os_threads: HashSet<Tid> =
            HashSet::from_iter(self.python_thread_ids.values().copied());

        let unwinder = self.process.unwinder()?;

        // Try getting the pthread_id from the native stack registers for threads we haven't looked up yet
        for thread in self.process.threads()?.iter() {
            let threadid = thread.id()?;
            if processed_os_threads.contains(&threadid) {
                continue;
            }

            match self._get_pthread_id(&unwinder, thread, &all_python_threads) {
                Ok(pthread_id) => {
                    if pthread_id != 0 {
                        self.python_thread_ids.insert(pthread_id, threadid);
                    }
                }
                Err(e) => {
                    warn!("Failed to get get_pthread_id for {}: {}", threadid, e);
                }
            };
        }

        // we can't get the python threadid for the main thread from registers,
        // so instead assign the main threadid (pid) to the missing python thread
        if !processed_os_threads.contains(&self.pid) {
            let mut unknown_python_threadids = HashSet::default();
            for python_thread_id in all_python_threads.iter() {
                if !self.python_thread_ids.contains_key(python_thread_id) {
                    unknown_python_threadids.insert(*python_thread_id);
                }
            }

            if unknown_python_threadids.len() == 1 {
                let python_thread_id = *unknown_python_threadids.iter().next().unwrap();
                self.python_thread_ids.insert(python_thread_id, self.pid);
            } else {
                warn!("failed to get python threadid for main thread!");
            }
        }

        if let Some(thread_id) = self.python_thread_ids.get(&python_thread_id) {
            return Ok(Some(*thread_id));
        }
        info!("failed looking up python threadid for {}. known python_thread_ids {:?}. all_python_threads {:?}",
            python_thread_id, self.python_thread_ids, all_python_threads);
        Ok(None)
    }

    #[cfg(all(target_os = "linux", feature = "unwind"))]
    pub fn _get_pthread_id(
        &self,
        unwinder: &remoteprocess::Unwinder,
        thread: &remoteprocess::Thread,
        threadids: &HashSet<u64>,
    ) -> Result<u64, Error> {
        let mut pthread_id = 0;

        let mut cursor = unwinder.cursor(thread)?;
        while let Some(_) = cursor.next() {
            // the pthread_id is usually a register (rbx on x86-64, r5 on ARM) in the top-level
            // frame of the thread, but on some configs can be 2nd level. Handle this by taking the
            // top-most value that is one of the pthread_ids we're looking for
            #[cfg(target_arch = "x86_64")]
            let possible_threadid = cursor.bx();
            #[cfg(target_arch = "arm")]
            let possible_threadid = cursor.r5();
            #[cfg(target_arch = "aarch64")]
            let possible_threadid = unsafe { cursor.register(19) };
            if let Ok(reg) = possible_threadid {
                if reg != 0 && threadids.contains(&reg) {
                    pthread_id = reg;
                }
            }
        }

        Ok(pthread_id)
    }

    #[cfg(target_os = "freebsd")]
    fn _get_os_thread_id<I: InterpreterState>(
        &mut self,
        _python_thread_id: u64,
        _interp_head: *const I::ThreadState,
    ) -> Result<Option<Tid>, Error> {
        Ok(None)
    }

    fn _get_python_thread_name(
        &mut self,
        did_thread_name_lookup: &mut bool,
        python_thread_id: u64,
        os_thread_id: Option<u64>,
    ) -> Option<String> {
        let name = self._get_cached_thread_name(did_thread_name_lookup, python_thread_id)?;
        // hptop patch: a name read for another OS thread (a stale `_active` entry, or one
        // read before this thread id was recycled) is not this thread's: look it up again
        // at the next retry instead.
        let recorded = self.python_thread_native_ids.get(&python_thread_id);
        if let (Some(&recorded), Some(os)) = (recorded, os_thread_id) {
            if recorded != os {
                self.python_thread_names.insert(python_thread_id, None);
                return None;
            }
        }
        Some(name)
    }

    fn _get_cached_thread_name(
        &mut self,
        did_thread_name_lookup: &mut bool,
        python_thread_id: u64,
    ) -> Option<String> {
        // a thread can get a name after the lookup, for instance when the threading module
        // is imported later, so look up threads without a name again once the lookup is this old
        const THREAD_NAME_RETRY_INTERVAL: Duration = Duration::from_secs(1);

        match self.python_thread_names.get(&python_thread_id) {
            Some(Some(thread_name)) => Some(thread_name.clone()),
            Some(None) if self.thread_name_lookup_time.elapsed() < THREAD_NAME_RETRY_INTERVAL => {
                None
            }
            _ => {
                // avoid triggering a lookup if we already did one during this sample
                if !*did_thread_name_lookup {
                    info!("looking up thread names");
                    let named = thread_name_lookup(self).unwrap_or_default();
                    self.python_thread_native_ids = named
                        .iter()
                        .filter_map(|(&k, v)| Some((k, v.native_id?)))
                        .collect();
                    self.python_thread_names = named
                        .into_iter()
                        .map(|(k, v)| (k, Some(v.name)))
                        .collect();
                    self.thread_name_lookup_time = Instant::now();
                    *did_thread_name_lookup = true;
                }
                // avoid triggering a lookup next time if the thread has no name
                self.python_thread_names
                    .entry(python_thread_id)
                    .or_insert(None)
                    .clone()
            }
        }
    }

    /// hptop patch: the short file name of `filename` (see [`crate::stack_trace::CodeCache::keys_only`],
    /// where frames are not built and this is left to the caller).
    pub fn short_filename(&mut self, filename: &str) -> Option<String> {
        self.shorten_filename(filename)
    }

    /// We want to display filenames without the boilerplate of the python installation
    /// directory etc. This function looks only includes paths inside a python
    /// package or subpackage, and not the path the package is installed at
    fn shorten_filename(&mut self, filename: &str) -> Option<String> {
        // if the user requested full filenames, skip shortening
        if self.config.full_filenames {
            return Some(filename.to_string());
        }

        // if we have figured out the short filename already, use it
        if let Some(short) = self.short_filenames.get(filename) {
            return short.clone();
        }

        // on linux the process could be running in docker, access the filename through procfs
        #[cfg(target_os = "linux")]
        let filename_storage;

        #[cfg(target_os = "linux")]
        let filename = if self.dockerized {
            filename_storage = format!("/proc/{}/root{}", self.pid, filename);
            if Path::new(&filename_storage).exists() {
                &filename_storage
            } else {
                filename
            }
        } else {
            filename
        };

        // only include paths that include an __init__.py
        let mut path = Path::new(filename);
        while let Some(parent) = path.parent() {
            path = parent;
            if !parent.join("__init__.py").exists() {
                break;
            }
        }

        // remove the parent prefix and convert to an optional string
        let shortened = Path::new(filename)
            .strip_prefix(path)
            .ok()
            .map(|p| p.to_string_lossy().to_string());

        self.short_filenames
            .insert(filename.to_owned(), shortened.clone());
        shortened
    }
}

/// hptop patch: how many OS threads the process has (0 when it cannot be told): no more
/// Python threads than that can be walked in one sample.
fn os_thread_count(pid: Pid) -> usize {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_dir(format!("/proc/{}/task", pid)).map_or(0, |dir| dir.count())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        0
    }
}

/// hptop patch: reads a `T` at each of `addresses` of process `pid` (see `prefetch_ranges`);
/// `(address, offset of its T in buf)` for each read whole. Not on Linux: nothing is prefetched.
pub(crate) fn prefetch_structs<T: Copy>(pid: Pid, addresses: &[usize], buf: &mut Vec<u8>) -> Vec<(usize, usize)> {
    let size = std::mem::size_of::<T>();
    if size == 0 {
        return Vec::new();
    }
    let ranges: Vec<(usize, usize)> = addresses.iter().map(|&a| (a, size)).collect();
    prefetch_ranges(pid, &ranges, buf)
        .into_iter()
        .zip(addresses)
        .filter_map(|(at, &address)| Some((address, at?)))
        .collect()
}

/// hptop patch: reads each `(address, length)` of `ranges` of process `pid` into `buf` with as
/// few system calls as `process_vm_readv` allows (1,024 ranges each), and as few ranges as can
/// be: ranges that share a page are read as one (the kernel pins pages per range, so a
/// thousand thread states in a few dozen heap pages cost a few dozen pins, not a thousand). A
/// merged range never covers a byte on a page that no range touches, so it is as readable as
/// its parts. Returns, in the callers' order, where each range lies in `buf`, or `None` where
/// its read failed (the caller reads those on its own).
#[cfg(target_os = "linux")]
pub(crate) fn prefetch_ranges(pid: Pid, ranges: &[(usize, usize)], buf: &mut Vec<u8>) -> Vec<Option<usize>> {
    const IOV_MAX: usize = 1024;
    const PAGE: usize = 4096;
    /// A merged range stays within this many bytes.
    const MAX_RANGE: usize = 64 * 1024;
    // (address, index in `ranges`), by address; the offsets go back in the callers' order.
    let mut sorted: Vec<(usize, usize)> = ranges.iter().map(|&(a, _)| a).zip(0..).collect();
    sorted.sort_unstable();
    let len_of = |index: usize| ranges[index].1;
    // Where each range lies in `buf` once read (`None`: not read).
    let mut offsets: Vec<Option<usize>> = vec![None; ranges.len()];
    // (start, end) of each merged range, and the parts in it.
    let mut merged: Vec<(usize, usize, std::ops::Range<usize>)> = Vec::new();
    for (i, &(a, index)) in sorted.iter().enumerate() {
        let Some(end) = a.checked_add(len_of(index)) else { continue };
        if end == a {
            continue;
        }
        if let Some(last) = merged.last_mut() {
            let last_page_end = (last.1 - 1) / PAGE * PAGE + PAGE;
            if a >= last.0 && a < last_page_end && end.max(last.1) - last.0 <= MAX_RANGE {
                last.1 = last.1.max(end);
                last.2.end = i + 1;
                continue;
            }
        }
        merged.push((a, end, i..i + 1));
    }
    // One buffer for all chunks, kept across calls: a fresh one of this size is mapped and
    // faulted in page by page at every sample.
    let total: usize = merged.iter().map(|(s, e, _)| e - s).sum();
    buf.clear();
    buf.resize(total, 0);
    let mut chunk_base = 0;
    for chunk in merged.chunks(IOV_MAX) {
        let chunk_len: usize = chunk.iter().map(|(s, e, _)| e - s).sum();
        let buf = &mut buf[chunk_base..chunk_base + chunk_len];
        let mut local = Vec::with_capacity(chunk.len());
        let mut offset = 0;
        for (s, e, _) in chunk {
            local.push(libc::iovec {
                // SAFETY: in bounds: the lengths add up to `total`.
                iov_base: unsafe { buf.as_mut_ptr().add(offset) }.cast(),
                iov_len: e - s,
            });
            offset += e - s;
        }
        let remote: Vec<libc::iovec> = chunk
            .iter()
            .map(|(s, e, _)| libc::iovec {
                iov_base: *s as *mut libc::c_void,
                iov_len: e - s,
            })
            .collect();
        // SAFETY: every local iovec points into `buf`, which outlives the call; the kernel
        // checks the remote ranges.
        let read = unsafe {
            libc::process_vm_readv(
                pid as libc::pid_t,
                local.as_ptr(),
                local.len() as libc::c_ulong,
                remote.as_ptr(),
                remote.len() as libc::c_ulong,
                0,
            )
        };
        let base_of_chunk = chunk_base;
        chunk_base += chunk_len;
        if read <= 0 {
            continue;
        }
        // The kernel stops at the first range it cannot read wholly: the parts that lie
        // within the bytes read are good.
        let read = read as usize;
        let mut base = 0;
        for (s, e, parts) in chunk {
            for &(address, index) in &sorted[parts.clone()] {
                let at = base + (address - s);
                if at + len_of(index) > read {
                    break;
                }
                offsets[index] = Some(base_of_chunk + at);
            }
            base += e - s;
            if base > read {
                break;
            }
        }
    }
    offsets
}

/// hptop patch: the `T` prefetched at `at` in `buf` (see `prefetch_structs`).
pub(crate) fn struct_at<T: Copy>(buf: &[u8], at: usize) -> Option<T> {
    let bytes = buf.get(at..at.checked_add(std::mem::size_of::<T>())?)?;
    // SAFETY: `bytes` holds `size_of::<T>()` bytes read whole; `T` is a plain-data binding
    // (the same types `copy_struct` reads), valid for any bytes.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn prefetch_ranges(_pid: Pid, ranges: &[(usize, usize)], _buf: &mut Vec<u8>) -> Vec<Option<usize>> {
    vec![None; ranges.len()]
}
