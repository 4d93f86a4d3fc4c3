//! hptop patch 28: the asyncio tasks of a CPython 3.11-3.13 target, which publishes no layout
//! of its task objects (`_Py_AsyncioModuleDebugOffsets` came in 3.14).
//!
//! What asyncio itself keeps is read, through module globals found by name:
//! `asyncio.tasks._all_tasks` (3.11) or `_scheduled_tasks` (3.12, 3.13), a `WeakSet` of
//! every pending task, whose `data` is a `set` of weak references; `_eager_tasks` (3.12+), a
//! `set` of the tasks running eagerly; `_current_tasks`, a `dict` from each running loop to
//! the task it runs now. Each loop's thread is its `_thread_id` attribute. The fields of the
//! C task object (`TaskObj`, Modules/_asynciomodule.c) are at offsets fixed per minor
//! version: a task is read only if its type is `_asyncio.Task` and of the size those offsets
//! belong to (a subclass, a debug or free-threaded build, or a patch release that moved them
//! reads as no task, never as a wrong one). Tasks that await a task directly (`await task`:
//! the awaited object is the task's own iterator) are its `awaited_by`; asyncio records no
//! other link (`gather`, `TaskGroup`) before 3.14.
use std::collections::HashMap;

use anyhow::{Error, Result};
use remoteprocess::{Pid, ProcessMemory};

use super::{set_keys, word, AsyncTask, AsyncioTasks, Caches, Layout, StackTop, Walk, POINTER};
use crate::python_data_access::{copy_long, copy_string, DictIterator};
use crate::python_interpreters::{InterpreterState, Object, ThreadState, TypeObject};
use crate::version::Version;

/// Offsets of the fields of `TaskObj` read (non-debug, GIL builds; measured against each
/// minor version's objects and checked by the test suite).
#[derive(Debug, Clone, Copy)]
struct TaskFields {
    /// `tp_basicsize` of `_asyncio.Task`.
    size: usize,
    /// `task_loop`.
    event_loop: usize,
    /// `task_state` (`fut_state`: 0 pending).
    state: usize,
    coro: usize,
    name: usize,
}

/// The task fields and the object layout of minor version `minor` (11-13).
fn layout(minor: u64) -> Option<(TaskFields, Layout)> {
    let (fields, gi_iframe, gi_frame_state, long_tagged, yield_from_state) = match minor {
        11 => (
            TaskFields { size: 176, event_loop: 16, state: 88, coro: 136, name: 144 },
            80,
            75,
            false,
            false,
        ),
        12 => (
            TaskFields { size: 176, event_loop: 16, state: 88, coro: 136, name: 144 },
            72,
            67,
            true,
            false,
        ),
        13 => (
            TaskFields { size: 144, event_loop: 16, state: 96, coro: 120, name: 128 },
            72,
            67,
            true,
            true,
        ),
        _ => return None,
    };
    let layout = Layout {
        gi_iframe,
        gi_frame_state,
        // `_PyInterpreterFrame`: eight pointers, then `int stacktop`; `localsplus` at 72.
        stack_top: StackTop::Index { offset: 64, localsplus: 72 },
        ob_type: 8,
        tp_name: 24,
        set_used: 24,
        set_table: 40,
        set_mask: 32,
        lv_tag: 16,
        ob_digit: 24,
        long_tagged,
        // Threads are found through py-spy's own bindings here.
        native_thread_id: 0,
        next_thread: 0,
        threads_head: 0,
        // 3.11 / 3.12: FRAME_SUSPENDED; 3.13: FRAME_SUSPENDED_YIELD_FROM. FRAME_CLEARED: 4.
        suspended_yield_from: -1,
        cleared: 4,
        yield_from_state,
        // The generator header, then the frame's 72 bytes (with one `localsplus` slot).
        gen_basicsize: Some(gi_iframe + 72),
    };
    Some((fields, layout))
}

/// `wr_object` of a weak reference; `future` of a future's iterator: the first field after
/// the object header.
const FIRST_FIELD: usize = 16;

/// asyncio's own globals in the target, once found.
#[derive(Debug, Clone, Copy)]
struct Globals {
    /// The `set` of weak references to every pending task (the `WeakSet`'s `data`).
    all: usize,
    /// The `set` of tasks running eagerly (3.12+; 0 on 3.11).
    eager: usize,
    /// The `dict` from each running loop to its running task.
    current: usize,
}

/// What the reader of a 3.11-3.13 target keeps between reads.
#[derive(Debug, Default)]
pub(super) struct Legacy {
    globals: Option<Globals>,
    /// Reads left before looking for asyncio again, and looks that did not find it.
    retry_in: u32,
    misses: u32,
    /// (loop, OS thread id) of the loops that ran at the last read.
    loops: Vec<(usize, u64)>,
}

impl Legacy {
    /// The tasks of the 3.11-3.13 process `pid`, or `None` before it imported asyncio.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn read<I: InterpreterState, P: ProcessMemory>(
        &mut self,
        pid: Pid,
        process: &P,
        version: &Version,
        interpreter_address: usize,
        modules_address: usize,
        caches: &mut Caches,
    ) -> Result<Option<AsyncioTasks>, Error> {
        let Some((fields, layout)) = layout(version.minor) else {
            return Ok(None);
        };
        if self.globals.is_none() {
            if self.retry_in > 0 {
                self.retry_in -= 1;
                return Ok(None);
            }
            self.globals = locate::<I, P>(process, version, modules_address).unwrap_or(None);
            if self.globals.is_none() {
                // As for 3.14+: every read for the first minute, then every tenth (a look
                // reads every name in `sys.modules`).
                self.misses = self.misses.saturating_add(1);
                self.retry_in = if self.misses < 60 { 0 } else { 9 };
                return Ok(None);
            }
        }
        let Some(globals) = self.globals else { return Ok(None) };
        let mut walk = Walk::<I, P>::new(pid, process, &layout, caches);
        let kinds = [(globals.all, "set"), (globals.current, "dict"), (globals.eager, "set")];
        if kinds
            .iter()
            .any(|&(at, kind)| at != 0 && walk.type_name(at).as_deref() != Some(kind))
        {
            // Not what was found (the module reloaded?): look again next time.
            self.globals = None;
            return Ok(None);
        }
        // Every pending task through its weak reference, then the eager ones.
        let refs = set_keys(process, &layout, globals.all).unwrap_or_default();
        let ranges: Vec<(usize, usize)> = refs.iter().map(|&r| (r, FIRST_FIELD + POINTER)).collect();
        walk.prefetch(&ranges);
        let mut candidates: Vec<usize> = ranges
            .iter()
            .filter_map(|&(r, len)| word(&walk.bytes(r, len)?, FIRST_FIELD as u64))
            .collect();
        if globals.eager != 0 {
            candidates.extend(set_keys(process, &layout, globals.eager).unwrap_or_default());
        }
        candidates.sort_unstable();
        candidates.dedup();
        let ranges: Vec<(usize, usize)> = candidates.iter().map(|&t| (t, fields.size)).collect();
        walk.prefetch(&ranges);
        let mut listed: Vec<(usize, Vec<u8>)> = Vec::new();
        for &task in &candidates {
            let Some(bytes) = walk.bytes(task, fields.size) else { continue };
            let Some(ty) = word(&bytes, layout.ob_type as u64) else { continue };
            // The C task type, of the size the offsets are for.
            if walk.type_named(ty).as_deref() == Some("_asyncio.Task") && walk.type_size(ty) == Some(fields.size) {
                listed.push((task, bytes));
            }
        }
        let current: HashMap<usize, usize> = dict_entries(process, globals.current)
            .unwrap_or_default()
            .into_iter()
            .collect();
        // Each loop's thread: its `_thread_id` (set while it runs), as an OS thread id.
        let idents = thread_idents::<I, P>(process, interpreter_address);
        let mut loops: HashMap<usize, Option<u64>> = HashMap::new();
        for (_, bytes) in &listed {
            if let Some(event_loop) = word(bytes, fields.event_loop as u64) {
                loops.entry(event_loop).or_insert_with(|| {
                    let ident = loop_thread_ident::<I, P>(process, version, event_loop)?;
                    idents.get(&ident).copied()
                });
            }
        }
        self.loops = loops
            .iter()
            .filter_map(|(&l, &native)| Some((l, native?)))
            .collect();
        // Read ahead the coroutines' first levels, as for 3.14+.
        let coros: Vec<usize> = listed
            .iter()
            .filter_map(|(_, b)| word(b, fields.coro as u64))
            .filter(|&c| c != 0)
            .collect();
        walk.prefetch_chains(&coros);
        let mut tasks = Vec::new();
        let mut awaits: Vec<(usize, usize)> = Vec::new();
        for (task, bytes) in &listed {
            let (task, bytes) = (*task, bytes.as_slice());
            let Some(name) = word(bytes, fields.name as u64).and_then(|n| walk.object_name(n)) else {
                continue;
            };
            let Some(coro) = word(bytes, fields.coro as u64) else { continue };
            let chain = if coro == 0 { Default::default() } else { walk.coroutine_chain(coro) };
            let state = bytes
                .get(fields.state..fields.state + 4)
                .and_then(|b| Some(i32::from_ne_bytes(b.try_into().ok()?)));
            let event_loop = word(bytes, fields.event_loop as u64).unwrap_or(0);
            if let Some(awaited) = chain.awaits {
                awaits.push((task, awaited));
            }
            tasks.push(AsyncTask {
                id: task,
                name,
                native_thread_id: loops.get(&event_loop).copied().flatten(),
                running: current.get(&event_loop) == Some(&task),
                done: state != Some(0) || chain.done || coro == 0,
                frames: chain.frames,
                awaited_by: Vec::new(),
            });
        }
        // `await task`: the innermost coroutine awaits the task's iterator.
        for (awaiter, awaited) in awaits {
            if walk.type_name(awaited).as_deref() != Some("_asyncio.FutureIter") {
                continue;
            }
            let Some(future) = walk.bytes(awaited + FIRST_FIELD, POINTER).and_then(|b| word(&b, 0)) else {
                continue;
            };
            if let Some(t) = tasks.iter_mut().find(|t| t.id == future) {
                t.awaited_by.push(awaiter);
            }
        }
        Ok(Some(AsyncioTasks { tasks }))
    }

    /// The task each loop (as of the last [`Self::read`]) runs right now, by OS thread id
    /// (0: none): one read of `_current_tasks`.
    pub(super) fn running<P: ProcessMemory>(&self, process: &P) -> Vec<(u64, usize)> {
        let Some(globals) = self.globals else { return Vec::new() };
        if self.loops.is_empty() {
            return Vec::new();
        }
        let Some(current) = dict_entries(process, globals.current) else { return Vec::new() };
        self.loops
            .iter()
            .map(|&(l, native)| {
                let task = current.iter().find(|(k, _)| *k == l).map_or(0, |&(_, v)| v);
                (native, task)
            })
            .collect()
    }
}

/// asyncio's globals: the module `asyncio.tasks` in `sys.modules`, and in it the task set,
/// the eager set and the current-task dict; `None` until asyncio is imported.
fn locate<I: InterpreterState, P: ProcessMemory>(
    process: &P,
    version: &Version,
    modules_address: usize,
) -> Result<Option<Globals>, Error> {
    let modules: usize = process.copy_struct(modules_address)?;
    let modules = DictIterator::from(process, version, modules)?;
    let Some(&module) = named::<I, P>(process, modules, &["asyncio.tasks"]).get("asyncio.tasks") else {
        return Ok(None);
    };
    let Some(module_dict) = instance_dict::<I, P>(process, module)? else { return Ok(None) };
    let names = ["_all_tasks", "_scheduled_tasks", "_eager_tasks", "_current_tasks"];
    let found = named::<I, P>(process, DictIterator::from(process, version, module_dict)?, &names);
    let weak_set = if version.minor == 11 { found.get("_all_tasks") } else { found.get("_scheduled_tasks") };
    let (Some(&weak_set), Some(&current)) = (weak_set, found.get("_current_tasks")) else {
        return Ok(None);
    };
    // The WeakSet's own `data`: the set of weak references.
    let data = named::<I, P>(process, attributes::<I, P>(process, version, weak_set)?, &["data"]);
    let Some(&all) = data.get("data") else { return Ok(None) };
    let eager = if version.minor >= 12 { found.get("_eager_tasks").copied().unwrap_or(0) } else { 0 };
    Ok(Some(Globals { all, eager, current }))
}

/// The values of the `str`-keyed entries of `entries` named in `names`, by name (up to the
/// first entry that cannot be read).
fn named<I: InterpreterState, P: ProcessMemory>(
    process: &P,
    entries: DictIterator<'_, P>,
    names: &[&str],
) -> HashMap<String, usize> {
    entries
        .map_while(Result::ok)
        .filter_map(|(key, value)| {
            let name = copy_string(key as *const I::StringObject, process).ok()?;
            names.contains(&name.as_str()).then_some((name, value))
        })
        .collect()
}

/// The attributes of an instance of a Python class (its managed dict or inline values).
fn attributes<'a, I: InterpreterState, P: ProcessMemory>(
    process: &'a P,
    version: &'a Version,
    object: usize,
) -> Result<DictIterator<'a, P>, Error> {
    let header: I::Object = process.copy_struct(object)?;
    let ty: <I::Object as Object>::TypeObject = process.copy_pointer(header.ob_type())?;
    DictIterator::from_managed_dict(process, version, object, header.ob_type() as usize, ty.flags())
}

/// The `__dict__` of a module (at its type's `tp_dictoffset`).
fn instance_dict<I: InterpreterState, P: ProcessMemory>(process: &P, object: usize) -> Result<Option<usize>, Error> {
    let header: I::Object = process.copy_struct(object)?;
    let ty: <I::Object as Object>::TypeObject = process.copy_pointer(header.ob_type())?;
    let offset = ty.dictoffset();
    if offset <= 0 {
        return Ok(None);
    }
    let dict: usize = process.copy_struct(object + offset as usize)?;
    Ok((dict != 0).then_some(dict))
}

/// The `_thread_id` of the event loop at `event_loop` (the ident of the thread running it;
/// `None` when it does not run).
fn loop_thread_ident<I: InterpreterState, P: ProcessMemory>(process: &P, version: &Version, event_loop: usize) -> Option<u64> {
    let attributes = attributes::<I, P>(process, version, event_loop).ok()?;
    let &ident = named::<I, P>(process, attributes, &["_thread_id"]).get("_thread_id")?;
    // None (not an int) while the loop does not run.
    let (ident, _) = copy_long(process, version, ident).ok()?;
    u64::try_from(ident).ok().filter(|&i| i != 0)
}

/// The OS thread id of each thread of the interpreter, by its ident (`threading.get_ident()`).
fn thread_idents<I: InterpreterState, P: ProcessMemory>(process: &P, interpreter_address: usize) -> HashMap<u64, u64> {
    let mut idents = HashMap::new();
    let Ok(mut thread) = process.copy_pointer(I::threadstate_ptr_ptr(interpreter_address)) else {
        return idents;
    };
    while !thread.is_null() && idents.len() < 1 << 16 {
        let Ok(state) = process.copy_pointer(thread) else { break };
        if let Some(native) = state.native_thread_id() {
            idents.insert(state.thread_id(), native);
        }
        thread = state.next();
    }
    idents
}

/// The (key, value) pairs of the dict at `dict` (3.11-3.13, a combined table): three reads.
fn dict_entries<P: ProcessMemory>(process: &P, dict: usize) -> Option<Vec<(usize, usize)>> {
    use crate::python_bindings::v3_11_0::{PyDictKeysObject, PyDictObject};
    let header: PyDictObject = process.copy_struct(dict).ok()?;
    if !header.ma_values.is_null() || header.ma_keys.is_null() {
        return None;
    }
    let keys_at = header.ma_keys as usize;
    let keys: PyDictKeysObject = process.copy_struct(keys_at).ok()?;
    let entries = usize::try_from(keys.dk_nentries).ok()?;
    if keys.dk_log2_index_bytes > 24 || entries > 1 << 16 {
        return None;
    }
    // DICT_KEYS_GENERAL: { hash, key, value }; the unicode kinds: { key, value }.
    let (size, key_at): (usize, u64) = if keys.dk_kind == 0 { (24, 8) } else { (16, 0) };
    let start = keys_at + std::mem::size_of::<PyDictKeysObject>() + (1usize << keys.dk_log2_index_bytes);
    let bytes = process.copy(start, entries * size).ok()?;
    Some(
        bytes
            .chunks_exact(size)
            .filter_map(|e| {
                let key = word(e, key_at)?;
                let value = word(e, key_at + 8)?;
                (key != 0 && value != 0).then_some((key, value))
            })
            .collect(),
    )
}
