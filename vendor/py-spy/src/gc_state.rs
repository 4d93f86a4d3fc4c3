//! hptop patch 22: whether the target's cyclic garbage collector runs right now.
//!
//! CPython sets the `collecting` int of its GC state to 1 for the whole of a collection (the
//! `gc.callbacks` "start" and "stop" calls included) and back to 0 after. That state is
//! `_PyRuntime.gc` on 3.7 and 3.8 (one per process) and `PyInterpreterState.gc` from 3.9 on
//! (the interpreter py-spy samples). The int's address is found once and checked; each later
//! look is one 4-byte read, the target never paused.
//!
//! - 3.13+: the offsets the interpreter publishes in `_Py_DebugOffsets` at the start of
//!   `_PyRuntime` (`interpreter_state.gc`, `gc.collecting`), which follow patch releases that
//!   move fields (3.14.0's incremental collector and the generations that replaced it in a
//!   later 3.14 differ in layout; the bindings are of 3.14.0). Read from the bindings only when
//!   those offsets cannot be read.
//! - 3.9-3.12 (and the fallback): the generated bindings, `offset_of!(_is, gc.collecting)`.
//! - 3.7, 3.8: `_PyRuntime` (the symbol py-spy also reads the GIL state from) plus the offset
//!   of `gc` in `_PyRuntimeState`, from the small mirrors below (no generated binding has it).
//!
//! A location from bindings or mirrors is used only once the state around it reads as a GC
//! state: `generation0` points at the first generation's list head inside that same struct
//! (3.7-3.13, 3.15), or that list head and its first element link to each other (3.14's
//! bindings, which have no `generation0`); `enabled` and `collecting` are 0 or 1. Anything
//! else is `None`, never a guess.
use std::cell::Cell;
use std::mem::offset_of;
use std::os::raw::c_int;

use remoteprocess::ProcessMemory;

use crate::python_bindings::debug_offsets;
use crate::python_bindings::{v3_10_0, v3_11_0, v3_12_0, v3_13_0, v3_14_0, v3_15_0, v3_9_5};
use crate::version::Version;

/// Resolutions that fail (a read error, a state that does not check out) before the flag is
/// taken as unknown for good.
const MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone, Copy, Default)]
enum Flag {
    #[default]
    Unresolved,
    /// Address of the `collecting` int in the target.
    At(usize),
    /// Not known for this target: always `None`.
    Unknown,
}

/// What one resolution found.
enum Resolved {
    /// The flag's address, and what told it.
    At(usize, &'static str),
    /// Not known for this version or build.
    Unknown,
    /// Could not be read or checked now: try again at the next call.
    NotNow,
}

/// Where the target's GC flag is, once found (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct GcFlag {
    flag: Cell<Flag>,
    failures: Cell<u32>,
}

impl GcFlag {
    /// `Some(collecting != 0)`; `None` when the flag's place is not known for this target (or
    /// the read failed: the process exited).
    pub(crate) fn collecting<P: ProcessMemory>(
        &self,
        process: &P,
        version: &Version,
        interpreter: usize,
        runtime: Option<usize>,
    ) -> Option<bool> {
        let at = match self.flag.get() {
            Flag::At(at) => at,
            Flag::Unknown => return None,
            Flag::Unresolved => match resolve(process, version, interpreter, runtime) {
                Resolved::At(at, source) => {
                    info!(
                        "GC flag of Python {version} at 0x{at:x} (interpreter + {}, runtime + {}), from {source}",
                        at.wrapping_sub(interpreter) as isize,
                        runtime.map_or(0, |runtime| at.wrapping_sub(runtime) as isize),
                    );
                    self.flag.set(Flag::At(at));
                    at
                }
                Resolved::Unknown => {
                    self.flag.set(Flag::Unknown);
                    return None;
                }
                Resolved::NotNow => {
                    self.failures.set(self.failures.get() + 1);
                    if self.failures.get() >= MAX_ATTEMPTS {
                        warn!("the GC state of this Python does not read soundly: GC flag unknown");
                        self.flag.set(Flag::Unknown);
                    }
                    return None;
                }
            },
        };
        let collecting: c_int = process.copy_struct(at).ok()?;
        Some(collecting != 0)
    }
}

/// The GC state struct `$state` at `$gc`, used only if its `generation0` points at its own
/// first generation (`$generations[0].head`) and `enabled`, `collecting` are 0 or 1.
macro_rules! generation0_checked {
    ($process:expr, $gc:expr, $state:ty, $generations:ident, $source:expr) => {{
        let gc: usize = $gc;
        match $process.copy_struct::<$state>(gc) {
            Ok(state)
                if state.generation0 as usize == gc + offset_of!($state, $generations)
                    && zero_or_one(state.enabled)
                    && zero_or_one(state.collecting) =>
            {
                Resolved::At(gc + offset_of!($state, collecting), $source)
            }
            _ => Resolved::NotNow,
        }
    }};
}

/// `PyInterpreterState.gc.collecting` from the generated bindings of `$py`.
macro_rules! from_bindings {
    ($process:expr, $interpreter:expr, $py:ident) => {
        generation0_checked!(
            $process,
            $interpreter + offset_of!($py::_is, gc),
            $py::_gc_runtime_state,
            generations,
            concat!("the bindings ", stringify!($py))
        )
    };
}

/// `PyInterpreterState.gc.collecting` from the `_Py_DebugOffsets` at `$runtime`, or `None`
/// when they cannot be read or do not hold together (then the bindings are tried).
macro_rules! published {
    ($process:expr, $interpreter:expr, $runtime:expr, $py:ident, $minor:expr) => {
        $runtime.and_then(|runtime: usize| {
            let o = debug_offsets::read::<$py::_Py_DebugOffsets, _>($process, runtime, $minor)
                .ok()
                .flatten()?;
            let interp_size = o.interpreter_state.size as usize;
            let gc = o.interpreter_state.gc as usize;
            let gc_size = o.gc.size as usize;
            let collecting = o.gc.collecting as usize;
            // The gc state lies inside the interpreter state, the flag inside the gc state.
            let sound = interp_size < 1 << 24
                && gc
                    .checked_add(gc_size)
                    .is_some_and(|end| end <= interp_size)
                && collecting + std::mem::size_of::<c_int>() <= gc_size;
            if !sound {
                warn!("_Py_DebugOffsets' gc offsets do not hold together: trying the bindings");
                return None;
            }
            let at = $interpreter + gc + collecting;
            match $process.copy_struct::<c_int>(at) {
                Ok(value) if zero_or_one(value) => Some(Resolved::At(at, "_Py_DebugOffsets")),
                Ok(_) => None,
                Err(_) => Some(Resolved::NotNow),
            }
        })
    };
}

fn resolve<P: ProcessMemory>(
    process: &P,
    version: &Version,
    interpreter: usize,
    runtime: Option<usize>,
) -> Resolved {
    if version.major != 3 {
        return Resolved::Unknown;
    }
    match version.minor {
        7 => match runtime {
            #[cfg(any(
                all(
                    target_os = "linux",
                    any(target_arch = "x86_64", target_arch = "aarch64")
                ),
                all(target_os = "macos", target_arch = "x86_64")
            ))]
            Some(runtime) => generation0_checked!(
                process,
                runtime + offset_of!(PyRuntime37, gc),
                GcRuntimeState<GcHead37>,
                generations,
                "_PyRuntime and the 3.7 mirror"
            ),
            _ => Resolved::Unknown,
        },
        8 => match runtime {
            Some(runtime) => generation0_checked!(
                process,
                runtime + offset_of!(PyRuntime38, gc),
                GcRuntimeState<[usize; 2]>,
                generations,
                "_PyRuntime and the 3.8 mirror"
            ),
            None => Resolved::Unknown,
        },
        9 => from_bindings!(process, interpreter, v3_9_5),
        10 => from_bindings!(process, interpreter, v3_10_0),
        11 => from_bindings!(process, interpreter, v3_11_0),
        12 => from_bindings!(process, interpreter, v3_12_0),
        13 => published!(process, interpreter, runtime, v3_13_0, 13)
            .unwrap_or_else(|| from_bindings!(process, interpreter, v3_13_0)),
        14 => published!(process, interpreter, runtime, v3_14_0, 14).unwrap_or_else(|| {
            // 3.14.0's bindings: `young` and `old[2]` (incremental collector), no `generation0`.
            let gc = interpreter + offset_of!(v3_14_0::_is, gc);
            match process.copy_struct::<v3_14_0::_gc_runtime_state>(gc) {
                Ok(state) if zero_or_one(state.enabled) && zero_or_one(state.collecting) => {
                    let head = gc + offset_of!(v3_14_0::_gc_runtime_state, young);
                    let young = state.young.head;
                    if list_head_links(process, head, young._gc_next, young._gc_prev) {
                        let at = gc + offset_of!(v3_14_0::_gc_runtime_state, collecting);
                        Resolved::At(at, "the bindings v3_14_0")
                    } else {
                        Resolved::NotNow
                    }
                }
                _ => Resolved::NotNow,
            }
        }),
        15 => published!(process, interpreter, runtime, v3_15_0, 15)
            .unwrap_or_else(|| from_bindings!(process, interpreter, v3_15_0)),
        _ => Resolved::Unknown,
    }
}

fn zero_or_one(value: c_int) -> bool {
    value == 0 || value == 1
}

/// A GC list head at `head` (its `_gc_next`, `_gc_prev` as read) is one: empty (both point at
/// it) or its first element's `_gc_prev` points back at it. The low two bits of both words
/// are flags.
fn list_head_links<P: ProcessMemory>(process: &P, head: usize, next: usize, prev: usize) -> bool {
    let (next, prev) = (next & !3, prev & !3);
    if next == head || prev == head {
        return next == head && prev == head;
    }
    match process.copy_struct::<[usize; 2]>(next) {
        Ok([_, first_prev]) => first_prev & !3 == head,
        Err(_) => false,
    }
}

// --- 3.7 and 3.8: `_PyRuntimeState` up to `gc` (Include/internal/pycore_pystate.h of 3.8,
// Include/internal/pystate.h of 3.7) and `struct _gc_runtime_state` up to `collecting`
// (pycore_pymem.h, mem.h). Nothing before `gc` depends on the platform but pointer width and
// `unsigned long` (locks are `void *`). Checked against the headers with offsetof on x86_64:
// 3.8 gc at 344, collecting at 544; 3.7 gc at 320, collecting at 632.

/// `struct gc_generation`.
#[repr(C)]
#[derive(Clone, Copy)]
struct GcGeneration<H> {
    head: H,
    threshold: c_int,
    count: c_int,
}

/// `struct _gc_runtime_state` (3.7, 3.8), up to `collecting`.
#[repr(C)]
#[derive(Clone, Copy)]
struct GcRuntimeState<H> {
    trash_delete_later: usize,
    trash_delete_nesting: c_int,
    enabled: c_int,
    debug: c_int,
    generations: [GcGeneration<H>; 3],
    generation0: usize,
    permanent_generation: GcGeneration<H>,
    /// `struct gc_generation_stats` (collections, collected, uncollectable) × 3.
    generation_stats: [[isize; 3]; 3],
    collecting: c_int,
}

/// `_PyRuntimeState` of 3.8 up to `gc`.
#[repr(C)]
#[derive(Clone, Copy)]
struct PyRuntime38 {
    preinitializing: c_int,
    preinitialized: c_int,
    core_initialized: c_int,
    initialized: c_int,
    finalizing: usize,
    /// `interpreters`: mutex, head, main; then `next_id`.
    interpreters: [usize; 3],
    next_id: i64,
    /// `xidregistry`: mutex, head.
    xidregistry: [usize; 2],
    main_thread: std::os::raw::c_ulong,
    exitfuncs: [usize; 32],
    nexitfuncs: c_int,
    gc: GcRuntimeState<[usize; 2]>,
}

/// 3.7's `PyGC_Head`: a union with `long double`, 16-aligned where that is 16 bytes
/// (x86_64 and aarch64 Linux, x86_64 macOS); elsewhere 3.7's flag is left unknown.
#[cfg(any(
    all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ),
    all(target_os = "macos", target_arch = "x86_64")
))]
#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct GcHead37 {
    gc_next: usize,
    gc_prev: usize,
    gc_refs: isize,
}

/// `_PyRuntimeState` of 3.7 up to `gc`.
#[cfg(any(
    all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ),
    all(target_os = "macos", target_arch = "x86_64")
))]
#[repr(C)]
#[derive(Clone, Copy)]
struct PyRuntime37 {
    initialized: c_int,
    core_initialized: c_int,
    finalizing: usize,
    interpreters: [usize; 3],
    next_id: i64,
    exitfuncs: [usize; 32],
    nexitfuncs: c_int,
    gc: GcRuntimeState<GcHead37>,
}
