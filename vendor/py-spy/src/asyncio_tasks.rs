//! hptop patch 21: the asyncio tasks of a CPython 3.14+ target, read from outside as
//! `python -m asyncio ps` reads them (Lib/asyncio/tools.py over `_remote_debugging`).
//!
//! The interpreter publishes its layout in `_Py_DebugOffsets` (section `.PyRuntime`) and the
//! `_asyncio` module the layout of its task objects and of the per-thread task lists in
//! `_Py_AsyncioModuleDebugOffsets` (section `.AsyncioDebug` of the module's shared library,
//! or of the interpreter when the module is built in; absent until asyncio is imported).
//! Every field is read through those offsets, so patch releases that move fields are read as
//! published. Tasks come and go while they are read: a task that does not read soundly (a
//! name that is neither a string nor an int, a list that does not close) is left out, never
//! shown wrong.
use std::collections::{HashMap, HashSet};

use anyhow::{format_err, Context, Error, Result};
use remoteprocess::{Pid, ProcessMemory};

use crate::python_data_access::{copy_bytes, copy_string};
use crate::python_interpreters::{CodeObject, FrameObject, InterpreterState, ThreadState};
use crate::python_spy::{prefetch_ranges, struct_at};

mod legacy;

/// Bytes of a pointer.
const POINTER: usize = std::mem::size_of::<usize>();

/// One asyncio task as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncTask {
    /// The task object's address: its id, as `asyncio ps` prints it.
    pub id: usize,
    /// `Task.get_name()`: its name, or `Task-N` for an unnamed task.
    pub name: String,
    /// The OS thread id of the thread whose list holds it (its loop's thread); `None` for a
    /// task of a thread that exited.
    pub native_thread_id: Option<u64>,
    /// The thread runs this task right now (`asyncio_running_task`).
    pub running: bool,
    /// The task finished (its coroutine completed or was cleared) but is still listed.
    pub done: bool,
    /// Where the task is: its coroutine chain down to what it awaits, innermost first (as
    /// `asyncio ps`'s `sleep -> main`).
    pub frames: Vec<TaskFrame>,
    /// Ids of the tasks (or futures) that await this one.
    pub awaited_by: Vec<usize>,
}

/// One frame of a task's coroutine chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFrame {
    /// Qualified function name (`co_qualname`).
    pub name: String,
    pub filename: String,
    /// Line being executed (the await point of a suspended coroutine).
    pub line: i32,
}

/// Tasks of the target at one instant, with the running task of each loop thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsyncioTasks {
    pub tasks: Vec<AsyncTask>,
}

/// `_Py_AsyncioModuleDebugOffsets` (Modules/_asynciomodule.c, 3.14 and 3.15: 13 words).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AsyncioOffsets {
    task_size: u64,
    task_name: u64,
    task_awaited_by: u64,
    task_is_task: u64,
    task_awaited_by_is_set: u64,
    task_coro: u64,
    task_node: u64,
    interp_size: u64,
    interp_tasks_head: u64,
    thread_size: u64,
    thread_running_loop: u64,
    thread_running_task: u64,
    thread_tasks_head: u64,
}

impl AsyncioOffsets {
    fn from_words(w: [u64; 13]) -> Option<Self> {
        let offsets = Self {
            task_size: w[0],
            task_name: w[1],
            task_awaited_by: w[2],
            task_is_task: w[3],
            task_awaited_by_is_set: w[4],
            task_coro: w[5],
            task_node: w[6],
            interp_size: w[7],
            interp_tasks_head: w[8],
            thread_size: w[9],
            thread_running_loop: w[10],
            thread_running_task: w[11],
            thread_tasks_head: w[12],
        };
        // Garbage (a section read from the wrong place) fails these.
        let task_fields = [w[1], w[2], w[3], w[4], w[5], w[6]];
        let sound = offsets.task_size > 0
            && offsets.task_size < 4096
            && task_fields.iter().all(|&f| f < offsets.task_size)
            && offsets.thread_size > 0
            && offsets.thread_size < 1 << 16
            && [w[10], w[11], w[12]].iter().all(|&f| f < offsets.thread_size)
            && offsets.interp_tasks_head < offsets.interp_size.max(1 << 20);
        sound.then_some(offsets)
    }
}

/// The parts of `_Py_DebugOffsets` the walk needs (version-neutral).
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    gi_iframe: usize,
    gi_frame_state: usize,
    /// Where a suspended coroutine's frame keeps the top of its value stack.
    stack_top: StackTop,
    ob_type: usize,
    tp_name: usize,
    set_used: usize,
    set_table: usize,
    set_mask: usize,
    lv_tag: usize,
    ob_digit: usize,
    /// An int's header is 3.12+'s `lv_tag` (else 3.11's signed digit count `ob_size`).
    long_tagged: bool,
    native_thread_id: usize,
    next_thread: usize,
    threads_head: usize,
    /// `gi_frame_state` of a coroutine suspended in `await` (3.14: -1, 3.15: 2) and of one
    /// cleared (3.14: 4, 3.15: 5): Include/internal/pycore_frame.h, renumbered in 3.15.
    suspended_yield_from: i8,
    cleared: i8,
    /// `tp_basicsize` of the coroutine and async generator types where the layout is not
    /// published (3.11-3.13; `None`: published).
    gen_basicsize: Option<usize>,
    /// `suspended_yield_from` is a state of its own (3.13+); on 3.11 / 3.12 it is any
    /// suspension, which for a coroutine is an `await` but for an async generator may be a
    /// plain `yield`: the chain does not go on through those.
    yield_from_state: bool,
}

/// Where a suspended frame's value stack ends, and how far below the end the awaited object
/// sits.
#[derive(Debug, Clone, Copy)]
enum StackTop {
    /// 3.14+: `stackpointer`, a pointer into the frame, at this offset in the frame; the
    /// awaited object this many slots below it (3.14: 1; 3.15: 2, as `SEND` takes a NULL
    /// above the receiver).
    Pointer { offset: usize, slot: usize },
    /// 3.11-3.13: `stacktop`, an `int` index into `localsplus`, at this offset in the frame;
    /// `localsplus` at `localsplus`; the awaited object is the last slot.
    Index { offset: usize, localsplus: usize },
}

impl Default for StackTop {
    fn default() -> Self {
        StackTop::Pointer { offset: 0, slot: 1 }
    }
}

impl Layout {
    /// The address of the stack slot holding what the generator-like object at `gen`
    /// (whose first bytes are `bytes`) awaits, if it is suspended in `await`.
    fn awaited_slot(&self, gen: usize, bytes: &[u8]) -> Option<usize> {
        if *bytes.get(self.gi_frame_state)? as i8 != self.suspended_yield_from {
            return None;
        }
        match self.stack_top {
            StackTop::Pointer { offset, slot } => {
                let top = word(bytes, (self.gi_iframe + offset) as u64)? & !STACKREF_TAG;
                (top != 0).then(|| top.wrapping_sub(8 * slot))
            }
            StackTop::Index { offset, localsplus } => {
                let at = self.gi_iframe + offset;
                let top = i32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
                // A coroutine's value stack is small: anything else is a torn read.
                if !(1..=4096).contains(&top) {
                    return None;
                }
                Some(gen + self.gi_iframe + localsplus + 8 * (top as usize - 1))
            }
        }
    }
}

/// `tp_basicsize` in a type object (after `tp_name`).
const TP_BASICSIZE: usize = 32;
/// Most tasks read per list (a list longer than this is read up to here).
const MAX_TASKS: usize = 100_000;
/// Most coroutines followed down one task's await chain.
const MAX_CHAIN: usize = 64;
/// Low bits of a `_PyStackRef` that tag it (deferred references).
const STACKREF_TAG: usize = 0b11;

/// Where the asyncio debug offsets of a target were found, once they were.
#[derive(Debug, Default)]
pub(crate) struct AsyncioReader {
    located: Option<(AsyncioOffsets, Layout)>,
    /// (thread state, OS thread id) of the threads that ran an event loop at the last read.
    loop_threads: Vec<(usize, u64)>,
    /// Reads left before looking for the module again (it appears when imported).
    retry_in: u32,
    /// Looks that found no module yet.
    misses: u32,
    caches: Caches,
    /// hptop patch 28: the reader of 3.11-3.13 targets.
    legacy: legacy::Legacy,
}

impl AsyncioReader {
    /// hptop patch 28: the tasks of a 3.11-3.13 process, read from asyncio's own globals
    /// (`None` before it imports asyncio); see `legacy`.
    pub(crate) fn read_legacy<I: InterpreterState, P: ProcessMemory>(
        &mut self,
        pid: Pid,
        process: &P,
        version: &crate::version::Version,
        interpreter_address: usize,
        modules_address: usize,
    ) -> Result<Option<AsyncioTasks>, Error> {
        self.legacy
            .read::<I, P>(pid, process, version, interpreter_address, modules_address, &mut self.caches)
    }

    /// The tasks of process `pid`, or `None` when it has no readable task list (asyncio not
    /// imported yet, or a Python before 3.14).
    pub(crate) fn read<I: InterpreterState, P: ProcessMemory>(
        &mut self,
        pid: Pid,
        process: &P,
        interpreter_address: usize,
        minor: u64,
    ) -> Result<Option<AsyncioTasks>, Error> {
        if self.located.is_none() {
            if self.retry_in > 0 {
                self.retry_in -= 1;
                return Ok(None);
            }
            self.located = locate::<I, P>(pid, process, minor)?;
            if self.located.is_none() {
                // hptop: at every read (about once a second) for the first minute, when a
                // program that was just started imports asyncio; then at every tenth (a look
                // reads the maps and a few ELF headers: about a millisecond).
                self.misses = self.misses.saturating_add(1);
                self.retry_in = if self.misses < 60 { 0 } else { 9 };
                return Ok(None);
            }
        }
        let Some((offsets, layout)) = self.located else {
            return Ok(None);
        };
        let (tasks, loop_threads) =
            read_tasks::<I, P>(pid, process, interpreter_address, &offsets, &layout, &mut self.caches)?;
        self.loop_threads = loop_threads;
        Ok(Some(tasks))
    }

    /// The task each event-loop thread (as of the last [`Self::read`]) runs right now, by OS
    /// thread id: one pointer read per loop thread.
    pub(crate) fn running<P: ProcessMemory>(&self, process: &P) -> Vec<(u64, usize)> {
        let Some((offsets, _)) = self.located else {
            return self.legacy.running(process);
        };
        self.loop_threads
            .iter()
            .filter_map(|&(tstate, native)| {
                let task: usize = process
                    .copy_struct(tstate + offsets.thread_running_task as usize)
                    .ok()?;
                Some((native, task))
            })
            .collect()
    }
}

/// Finds `_Py_AsyncioModuleDebugOffsets` and `_Py_DebugOffsets` in the target's mapped files.
fn locate<I: InterpreterState, P: ProcessMemory>(
    pid: Pid,
    process: &P,
    minor: u64,
) -> Result<Option<(AsyncioOffsets, Layout)>, Error> {
    let maps = proc_maps::get_process_maps(pid).context("Failed to read the target's maps")?;
    let mut files: Vec<String> = Vec::new();
    for map in &maps {
        if let Some(name) = map.filename().and_then(|f| f.to_str()) {
            let base = name.rsplit('/').next().unwrap_or(name);
            if (base.contains("python") || base.starts_with("_asyncio"))
                && !files.iter().any(|f| f == name)
            {
                files.push(name.to_owned());
            }
        }
    }
    let mut asyncio = None;
    let mut runtime = None;
    for file in &files {
        for (section, address) in sections(pid, &maps, file, &[".AsyncioDebug", ".PyRuntime"]) {
            match section {
                0 if asyncio.is_none() => asyncio = Some(address),
                1 if runtime.is_none() => runtime = Some(address),
                _ => {}
            }
        }
    }
    let (Some(asyncio), Some(runtime)) = (asyncio, runtime) else {
        return Ok(None);
    };
    let words: [u64; 13] = process
        .copy_struct(asyncio)
        .context("Failed to copy the asyncio debug offsets")?;
    let Some(offsets) = AsyncioOffsets::from_words(words) else {
        return Err(format_err!("the asyncio debug offsets do not read soundly"));
    };
    let Some(layout) = layout_of(process, runtime, minor)? else {
        return Ok(None);
    };
    Ok(Some((offsets, layout)))
}

/// Runtime addresses of the ELF sections named in `wanted` (by index) in `file` as mapped in
/// process `pid`.
fn sections(pid: Pid, maps: &[proc_maps::MapRange], file: &str, wanted: &[&str]) -> Vec<(usize, usize)> {
    // The target's own view of the file (a container's root), else the path as is.
    let bytes = std::fs::read(format!("/proc/{pid}/root{file}")).or_else(|_| std::fs::read(file));
    let Ok(bytes) = bytes else { return Vec::new() };
    let Ok(elf) = goblin::elf::Elf::parse(&bytes) else {
        return Vec::new();
    };
    // Load bias: where the first loadable segment (file offset 0) is mapped, less its address.
    let Some(first) = elf
        .program_headers
        .iter()
        .find(|h| h.p_type == goblin::elf::program_header::PT_LOAD)
    else {
        return Vec::new();
    };
    let Some(start) = maps
        .iter()
        .filter(|m| m.filename().and_then(|f| f.to_str()) == Some(file) && m.offset == 0)
        .map(|m| m.start())
        .min()
    else {
        return Vec::new();
    };
    let bias = start.wrapping_sub((first.p_vaddr as usize) & !0xfff);
    elf.section_headers
        .iter()
        .filter_map(|h| {
            let name = elf.shdr_strtab.get_at(h.sh_name)?;
            let index = wanted.iter().position(|w| *w == name)?;
            Some((index, bias.wrapping_add(h.sh_addr as usize)))
        })
        .collect()
}

/// The [`Layout`] from the `_Py_DebugOffsets` at `runtime` (checked by its cookie).
fn layout_of<P: ProcessMemory>(process: &P, runtime: usize, minor: u64) -> Result<Option<Layout>, Error> {
    macro_rules! layout {
        ($py:ident, $yield_from:expr, $cleared:expr, $slot:expr) => {{
            // hptop patch 22: the cookie (and version) checked where the GC flag checks them.
            let Some(o) = crate::python_bindings::debug_offsets::read::<
                crate::python_bindings::$py::_Py_DebugOffsets,
                P,
            >(process, runtime, minor)?
            else {
                return Ok(None);
            };
            if o.free_threaded != 0 {
                return Ok(None);
            }
            Layout {
                gi_iframe: o.gen_object.gi_iframe as usize,
                gi_frame_state: o.gen_object.gi_frame_state as usize,
                stack_top: StackTop::Pointer {
                    offset: o.interpreter_frame.stackpointer as usize,
                    slot: $slot,
                },
                ob_type: o.pyobject.ob_type as usize,
                tp_name: o.type_object.tp_name as usize,
                set_used: o.set_object.used as usize,
                set_table: o.set_object.table as usize,
                set_mask: o.set_object.mask as usize,
                lv_tag: o.long_object.lv_tag as usize,
                ob_digit: o.long_object.ob_digit as usize,
                long_tagged: true,
                native_thread_id: o.thread_state.native_thread_id as usize,
                next_thread: o.thread_state.next as usize,
                threads_head: o.interpreter_state.threads_head as usize,
                suspended_yield_from: $yield_from,
                cleared: $cleared,
                yield_from_state: true,
                gen_basicsize: None,
            }
        }};
    }
    let layout = match minor {
        14 => layout!(v3_14_0, -1, 4, 1),
        15 => layout!(v3_15_0, 2, 5, 2),
        _ => return Ok(None),
    };
    Ok(Some(layout))
}

/// What a list read keeps across reads: type names by type address (types outlive their
/// objects) and what was decoded of code objects (checked against the code object's own
/// pointers at every use, as py-spy's code cache does).
#[derive(Debug, Default)]
pub(crate) struct Caches {
    types: HashMap<usize, Option<String>>,
    /// `tp_basicsize` by type address (3.11-3.13's checks).
    sizes: HashMap<usize, usize>,
    codes: HashMap<usize, CachedCode>,
}

#[derive(Debug)]
struct CachedCode {
    /// The code object's file name, name, qualified name and line table pointers.
    pointers: [usize; 4],
    name: String,
    filename: String,
    table: Vec<u8>,
}

/// Entries each cache keeps at most (emptied when full).
const CACHE_CAPACITY: usize = 8192;

/// One read of the task lists of a process.
struct Walk<'a, I: InterpreterState, P> {
    process: &'a P,
    layout: &'a Layout,
    caches: &'a mut Caches,
    /// Code objects copied during this read, by address: a thousand tasks suspended in the
    /// same functions share a handful (code objects do not change while alive).
    code_structs: HashMap<usize, CodeOf<I>>,
    /// The process read, for batched reads ([`Walk::prefetch`]).
    pid: Pid,
    /// Ranges read together ahead of the walk: where each (address, length) lies in `ahead`.
    ahead_at: HashMap<(usize, usize), usize>,
    ahead: Vec<u8>,
}

/// A task as its list gave it, before it is read further.
struct Listed {
    task: usize,
    bytes: Vec<u8>,
    native_thread_id: Option<u64>,
    running: usize,
}

/// A task's coroutine chain as read ([`Walk::coroutine_chain`]).
#[derive(Debug, Default)]
struct Chain {
    /// Outermost first.
    frames: Vec<TaskFrame>,
    /// The coroutine finished.
    done: bool,
    /// What the innermost coroutine awaits, when that is not a coroutine.
    awaits: Option<usize>,
}

/// The code-object binding of interpreter `I`.
type CodeOf<I> = <<<I as InterpreterState>::ThreadState as ThreadState>::FrameObject as FrameObject>::CodeObject;

/// Reads every task of every thread of the interpreter at `interpreter_address`, then the
/// interpreter's list (tasks of threads that exited); also the threads that run a loop.
fn read_tasks<I: InterpreterState, P: ProcessMemory>(
    pid: Pid,
    process: &P,
    interpreter_address: usize,
    offsets: &AsyncioOffsets,
    layout: &Layout,
    caches: &mut Caches,
) -> Result<(AsyncioTasks, Vec<(usize, u64)>), Error> {
    let mut walk = Walk::<I, P>::new(pid, process, layout, caches);
    let mut tasks = Vec::new();
    let mut listed = Vec::new();
    let mut loop_threads = Vec::new();
    let mut seen = HashSet::new();
    let mut thread: usize = process
        .copy_struct(interpreter_address + layout.threads_head)
        .context("Failed to copy the interpreter's threads")?;
    let mut threads = 0;
    while thread != 0 && threads < 1 << 16 {
        threads += 1;
        let native: u64 = process.copy_struct(thread + layout.native_thread_id)?;
        let running: usize = process.copy_struct(thread + offsets.thread_running_task as usize)?;
        let event_loop: usize = process.copy_struct(thread + offsets.thread_running_loop as usize)?;
        if event_loop != 0 {
            loop_threads.push((thread, native));
        }
        let head = thread + offsets.thread_tasks_head as usize;
        walk.list(offsets, head, Some(native), running, &mut seen, &mut listed)?;
        thread = process.copy_struct(thread + layout.next_thread)?;
    }
    let head = interpreter_address + offsets.interp_tasks_head as usize;
    walk.list(offsets, head, None, 0, &mut seen, &mut listed)?;
    // The coroutines of all tasks, and what they await, read together before each task is.
    let coros: Vec<usize> = listed
        .iter()
        .filter_map(|l| word(&l.bytes, offsets.task_coro))
        .filter(|&c| c != 0)
        .collect();
    walk.prefetch_chains(&coros);
    for l in &listed {
        if let Some(t) = walk.task(offsets, l) {
            tasks.push(t);
        }
    }
    Ok((AsyncioTasks { tasks }, loop_threads))
}

impl<'a, I: InterpreterState, P: ProcessMemory> Walk<'a, I, P> {
    /// A walk of process `pid` (the caches emptied first if full).
    fn new(pid: Pid, process: &'a P, layout: &'a Layout, caches: &'a mut Caches) -> Self {
        if caches.types.len() > CACHE_CAPACITY
            || caches.codes.len() > CACHE_CAPACITY
            || caches.sizes.len() > CACHE_CAPACITY
        {
            *caches = Caches::default();
        }
        Walk {
            process,
            layout,
            caches,
            code_structs: HashMap::new(),
            pid,
            ahead_at: HashMap::new(),
            ahead: Vec::new(),
        }
    }

    /// The tasks of the intrusive list (`llist_node { next, prev }`) whose head is at `head`,
    /// each node `task_node` into its task: each task's bytes are read once, its next node
    /// taken from them.
    fn list(
        &mut self,
        offsets: &AsyncioOffsets,
        head: usize,
        native_thread_id: Option<u64>,
        running: usize,
        seen: &mut HashSet<usize>,
        out: &mut Vec<Listed>,
    ) -> Result<(), Error> {
        let node_offset = offsets.task_node as usize;
        let mut node: usize = self.process.copy_struct(head)?;
        let mut visited = 0;
        while node != head && node != 0 && visited < MAX_TASKS {
            visited += 1;
            let task = node.wrapping_sub(node_offset);
            // Freed while read: what was read so far stands.
            let Ok(bytes) = self.process.copy(task, offsets.task_size as usize) else { break };
            let Some(next) = word(&bytes, node_offset as u64) else { break };
            if seen.insert(task) {
                out.push(Listed {
                    task,
                    bytes,
                    native_thread_id,
                    running,
                });
            }
            node = next;
        }
        Ok(())
    }

    /// Reads `ranges` together (one `process_vm_readv` per 1,024, merged by page); later
    /// reads of exactly these ranges come from here.
    fn prefetch(&mut self, ranges: &[(usize, usize)]) {
        let mut buf = Vec::new();
        let offsets = prefetch_ranges(self.pid, ranges, &mut buf);
        let base = self.ahead.len();
        self.ahead.extend_from_slice(&buf);
        for (&range, at) in ranges.iter().zip(offsets) {
            if let Some(at) = at {
                self.ahead_at.insert(range, base + at);
            }
        }
    }

    /// `len` bytes at `address`: read ahead, or read now.
    fn bytes(&self, address: usize, len: usize) -> Option<Vec<u8>> {
        match self.ahead_at.get(&(address, len)) {
            Some(&at) => self.ahead.get(at..at + len).map(<[u8]>::to_vec),
            None => self.process.copy(address, len).ok(),
        }
    }

    /// Reads ahead the first two levels of every task's await chain: the coroutines, the
    /// stack slots holding what they await, and those objects (three batched reads in all
    /// where each coroutine cost three reads of its own).
    fn prefetch_chains(&mut self, coros: &[usize]) {
        let layout = *self.layout;
        let span = layout.gi_iframe + std::mem::size_of::<<I::ThreadState as ThreadState>::FrameObject>();
        let ranges: Vec<(usize, usize)> = coros.iter().map(|&c| (c, span)).collect();
        self.prefetch(&ranges);
        let slots: Vec<(usize, usize)> = coros
            .iter()
            .filter_map(|&c| {
                let b = self.ahead_at.get(&(c, span)).and_then(|&at| self.ahead.get(at..at + span))?;
                Some((layout.awaited_slot(c, b)?, POINTER))
            })
            .collect();
        self.prefetch(&slots);
        let awaited: Vec<(usize, usize)> = slots
            .iter()
            .filter_map(|&slot| {
                let at = *self.ahead_at.get(&slot)?;
                let value = word(&self.ahead[at..], 0)? & !STACKREF_TAG;
                (value != 0).then_some((value, span))
            })
            .collect();
        self.prefetch(&awaited);
    }

    /// One task from its bytes, or `None` if it does not read soundly.
    fn task(&mut self, offsets: &AsyncioOffsets, listed: &Listed) -> Option<AsyncTask> {
        let Listed { task, ref bytes, native_thread_id, running } = *listed;
        let byte = |at: u64| bytes.get(at as usize).copied();
        if byte(offsets.task_is_task)? == 0 {
            return None;
        }
        let name = self.object_name(word(bytes, offsets.task_name)?)?;
        let coro = word(bytes, offsets.task_coro)?;
        let awaited_by = match word(bytes, offsets.task_awaited_by)? {
            0 => Vec::new(),
            by if byte(offsets.task_awaited_by_is_set)? != 0 => self.set_members(by)?,
            by => vec![by],
        };
        let Chain { frames, done, .. } = if coro == 0 {
            Chain { done: true, ..Chain::default() }
        } else {
            self.coroutine_chain(coro)
        };
        Some(AsyncTask {
            id: task,
            name,
            native_thread_id,
            running: task == running,
            done,
            frames,
            awaited_by,
        })
    }

    /// A task's name: a `str`, or an `int` N (an unnamed task, named `Task-N` when asked).
    fn object_name(&mut self, object: usize) -> Option<String> {
        if object == 0 {
            return None;
        }
        let process = self.process;
        let layout = self.layout;
        match self.type_name(object)?.as_str() {
            "str" => copy_string(object as *const I::StringObject, process).ok(),
            "int" => {
                let tag: isize = process.copy_struct(object + layout.lv_tag).ok()?;
                let digits = if layout.long_tagged {
                    // Compact ints: sign in the low 2 bits, digit count above bit 3.
                    if tag & 3 == 2 {
                        return None;
                    }
                    (tag as usize) >> 3
                } else {
                    // 3.11's `ob_size`: the digit count, negative for a negative int.
                    usize::try_from(tag).ok()?
                };
                if digits > 2 {
                    return None;
                }
                let mut value: u64 = 0;
                for i in (0..digits).rev() {
                    let digit: u32 = process.copy_struct(object + layout.ob_digit + i * 4).ok()?;
                    value = (value << 30) | u64::from(digit);
                }
                Some(format!("Task-{value}"))
            }
            _ => None,
        }
    }

    /// The `tp_name` of `object`'s type.
    fn type_name(&mut self, object: usize) -> Option<String> {
        let ty: usize = self.process.copy_struct(object + self.layout.ob_type).ok()?;
        self.type_named(ty)
    }

    /// The `tp_name` of the type at `ty` (cached: types outlive their objects).
    fn type_named(&mut self, ty: usize) -> Option<String> {
        if let Some(name) = self.caches.types.get(&ty) {
            return name.clone();
        }
        let name = (|| {
            let name: usize = self.process.copy_struct(ty + self.layout.tp_name).ok()?;
            let bytes = self.process.copy(name, 64).ok()?;
            let end = bytes.iter().position(|&b| b == 0)?;
            String::from_utf8(bytes[..end].to_vec()).ok()
        })();
        // A type that could not be read is not remembered: it may read next time.
        if name.is_some() {
            self.caches.types.insert(ty, name.clone());
        }
        name
    }

    /// The members of the `set` at `set` that are tasks or futures.
    fn set_members(&mut self, set: usize) -> Option<Vec<usize>> {
        let keys = set_keys(self.process, self.layout, set)?;
        Some(
            keys.into_iter()
                .filter(|&key| {
                    self.type_name(key)
                        .is_some_and(|name| name.contains("Task") || name.contains("Future"))
                })
                .collect(),
        )
    }

    /// The frames of coroutine `coro` and of the coroutines it awaits, innermost first,
    /// whether it finished (as `parse_coro_chain` in CPython's `_remote_debugging`), and the
    /// object the chain ends awaiting (a future, a task's iterator), if any. Each coroutine's
    /// header, state and embedded frame are read with one copy.
    fn coroutine_chain(&mut self, coro: usize) -> Chain {
        let layout = *self.layout;
        let span = layout.gi_iframe + std::mem::size_of::<<I::ThreadState as ThreadState>::FrameObject>();
        let mut chain = Chain::default();
        let mut at = coro;
        for depth in 0..MAX_CHAIN {
            let Some((gen, bytes, is_coroutine)) = self.coro_like(at, span) else {
                // Not a coroutine: what the innermost one awaits.
                chain.awaits = (depth > 0).then_some(at);
                break;
            };
            let Some(&state) = bytes.get(layout.gi_frame_state) else { break };
            let state = state as i8;
            if state == layout.cleared {
                chain.frames.clear();
                chain.done = depth == 0;
                return chain;
            }
            let Some(frame) = struct_at::<<I::ThreadState as ThreadState>::FrameObject>(&bytes, layout.gi_iframe)
            else {
                break;
            };
            let Some(info) = self.frame(&frame) else { break };
            chain.frames.push(info);
            if state != layout.suspended_yield_from || (!layout.yield_from_state && !is_coroutine) {
                // Running (its frames are the thread's), or suspended at a plain `yield`.
                break;
            }
            // Suspended in `await`: the awaited object is on the frame's value stack.
            let Some(slot) = layout.awaited_slot(gen, &bytes) else { break };
            let Some(awaited) = self.bytes(slot, POINTER).and_then(|b| word(&b, 0)) else { break };
            at = awaited & !STACKREF_TAG;
            if at == 0 {
                break;
            }
        }
        chain.frames.reverse();
        chain
    }

    /// The generator-like object behind `object` when the chain goes on through it, with the
    /// first `span` bytes of it and whether it is a coroutine (not an async generator);
    /// `None` for anything else (a future's iterator, a plain generator: the chain ends).
    fn coro_like(&mut self, object: usize, span: usize) -> Option<(usize, Vec<u8>, bool)> {
        // Objects the chain meets are at least as large as a coroutine, but a read past a
        // small one's mapping fails: then only its type is read.
        let bytes = self.bytes(object, span);
        let ty = match &bytes {
            Some(b) => word(b, self.layout.ob_type as u64)?,
            None => self.process.copy_struct(object + self.layout.ob_type).ok()?,
        };
        match self.type_named(ty)?.as_str() {
            "coroutine" if self.gen_type_fits(ty) => Some((object, bytes?, true)),
            "async_generator" if self.gen_type_fits(ty) => Some((object, bytes?, false)),
            // `ags_gen` / `agt_gen`: the first field after the object header.
            "async_generator_asend" | "async_generator_athrow" => {
                let gen = word(bytes.as_deref()?, 16)? & !STACKREF_TAG;
                let gen_bytes = self.bytes(gen, span)?;
                let gen_type = word(&gen_bytes, self.layout.ob_type as u64)?;
                (gen != 0 && self.gen_type_fits(gen_type)).then_some((gen, gen_bytes, false))
            }
            _ => None,
        }
    }

    /// Whether the coroutine or async generator type at `ty` has the size the layout was
    /// measured with (3.11-3.13, which publish none: a build whose fields moved reads no
    /// chain); always on 3.14+.
    fn gen_type_fits(&mut self, ty: usize) -> bool {
        let Some(expected) = self.layout.gen_basicsize else { return true };
        self.type_size(ty) == Some(expected)
    }

    /// The `tp_basicsize` of the type at `ty` (cached: types outlive their objects).
    fn type_size(&mut self, ty: usize) -> Option<usize> {
        if let Some(&size) = self.caches.sizes.get(&ty) {
            return Some(size);
        }
        let size = self.process.copy_struct::<usize>(ty + TP_BASICSIZE).ok()?;
        self.caches.sizes.insert(ty, size);
        Some(size)
    }

    /// The function, file and line of an interpreter frame as read.
    fn frame(&mut self, frame: &<I::ThreadState as ThreadState>::FrameObject) -> Option<TaskFrame> {
        let process = self.process;
        let code_at = frame.code();
        if code_at.is_null() {
            return None;
        }
        let code = match self.code_structs.get(&(code_at as usize)) {
            Some(code) => *code,
            None => {
                let code: CodeOf<I> = process.copy_pointer(code_at).ok()?;
                self.code_structs.insert(code_at as usize, code);
                code
            }
        };
        let pointers = [
            code.filename() as usize,
            code.name() as usize,
            code.qualname().map_or(0, |q| q as usize),
            code.line_table() as usize,
        ];
        let fresh = self
            .caches
            .codes
            .get(&(code_at as usize))
            .is_none_or(|c| c.pointers != pointers);
        if fresh {
            let name = code
                .qualname()
                .and_then(|q| copy_string(q, process).ok())
                .or_else(|| copy_string(code.name(), process).ok())?;
            let filename = copy_string(code.filename(), process).ok()?;
            let table = copy_bytes(code.line_table(), process).ok().unwrap_or_default();
            let entry = CachedCode { pointers, name, filename, table };
            self.caches.codes.insert(code_at as usize, entry);
        }
        let cached = self.caches.codes.get(&(code_at as usize))?;
        let line = if cached.table.is_empty() {
            0
        } else {
            code.get_line_number(frame.lasti(), &cached.table)
        };
        Some(TaskFrame {
            name: cached.name.clone(),
            filename: cached.filename.clone(),
            line,
        })
    }
}

/// The keys of the `set` at `set` (deleted entries skipped), up to `MAX_TASKS`.
fn set_keys<P: ProcessMemory>(process: &P, layout: &Layout, set: usize) -> Option<Vec<usize>> {
    let mask: usize = process.copy_struct(set + layout.set_mask).ok()?;
    let used: usize = process.copy_struct(set + layout.set_used).ok()?;
    if mask >= MAX_TASKS.next_power_of_two() || used > mask + 1 {
        return None;
    }
    let table: usize = process.copy_struct(set + layout.set_table).ok()?;
    // setentry { key, hash }; a deleted entry keeps a dummy key and hash -1.
    let bytes = process.copy(table, (mask + 1) * 16).ok()?;
    let keys = bytes
        .chunks_exact(16)
        .filter_map(|entry| {
            let key = word(entry, 0)?;
            let hash = word(entry, 8)? as isize;
            (key != 0 && hash != -1).then_some(key)
        })
        .take(used)
        .collect();
    Some(keys)
}

/// The word at byte `at` of `bytes`.
fn word(bytes: &[u8], at: u64) -> Option<usize> {
    let at = usize::try_from(at).ok()?;
    Some(usize::from_ne_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?))
}
