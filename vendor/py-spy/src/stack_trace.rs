use std::sync::Arc;

use anyhow::{Context, Error, Result};

use remoteprocess::{Pid, ProcessMemory};
use serde_derive::Serialize;

use crate::config::{Config, LineNo};
use crate::python_data_access::{copy_bytes, copy_string};
use crate::python_spy::{prefetch_structs, struct_at};
use crate::python_interpreters::{
    CodeObject, FrameObject, InterpreterState, ThreadState, TupleObject,
};

/// Call stack for a single python thread
#[derive(Debug, Clone, Serialize)]
pub struct StackTrace {
    /// The process id than generated this stack trace
    pub pid: Pid,
    /// The python thread id for this stack trace
    pub thread_id: u64,
    // The python thread name for this stack trace
    pub thread_name: Option<String>,
    /// The OS thread id for this stack tracee
    pub os_thread_id: Option<u64>,
    /// Whether or not the thread was active
    pub active: bool,
    /// Whether or not the thread held the GIL
    pub owns_gil: bool,
    /// The frames
    pub frames: Vec<Frame>,
    /// hptop patch: the walk found exactly the frames of this thread's last walk, which
    /// are not built again: `frames` is empty (see `CodeCache::detect_repeats`).
    #[serde(skip)]
    pub repeated: bool,
    /// hptop patch: a thread in `PythonSpy::unchanged_threads` whose name is known: the name
    /// is not copied again (`thread_name` is `None`); the caller keeps the one it has.
    #[serde(skip)]
    pub name_unchanged: bool,
    /// hptop patch: with [`CodeCache::keys_only`], the walk's frames as cache identities
    /// (innermost first) instead of built `frames`; empty when `repeated`.
    #[serde(skip)]
    pub keys: Vec<FrameKey>,
    /// process commandline / parent process info
    pub process_info: Option<Arc<ProcessInfo>>,
    /// hptop patch 20: times the start of this walk was read again (it raced with the thread).
    #[serde(skip)]
    pub rereads: u32,
    /// hptop patch 20: every read raced with the thread: no frames, the stack is unknown.
    #[serde(skip)]
    pub torn: bool,
}

/// hptop patch: one frame of a walk as the code-cache entry its names come from, for a
/// caller that keeps its own per-function data by [`FrameKey::generation`] (see
/// [`CodeCache::keys_only`]): nothing is copied per frame; [`CodeCache::names`] gives the
/// names of a generation the caller has not seen yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameKey {
    /// The code object's address.
    pub code_address: usize,
    /// The decoding of the code object the names come from: unique while the process is
    /// sampled, so it names the same function for as long as it is seen.
    pub generation: u64,
    /// The line being executed (0 when unknown).
    pub line: i32,
    /// The function's first line (`co_firstlineno`).
    pub first_line: i32,
}

/// Information about a single function call in a stack trace
#[derive(Debug, Hash, Eq, PartialEq, Ord, PartialOrd, Clone, Serialize)]
pub struct Frame {
    /// The function name
    pub name: String,
    /// The full filename of the file
    pub filename: String,
    /// The module/shared library the
    pub module: Option<String>,
    /// A short, more readable, representation of the filename
    pub short_filename: Option<String>,
    /// The line number inside the file (or 0 for native frames without line information)
    pub line: i32,
    /// hptop patch: the function's first line (`co_firstlineno`; 0 for native frames)
    pub first_line: i32,
    /// Local Variables associated with the frame
    pub locals: Option<Vec<LocalVariable>>,
    /// If this is an entry frame. Each entry frame corresponds to one native frame (Python 3.11)
    pub is_entry: bool,
    /// If the last frame was a shim. This is used in Python 3.12+ to detect entry frames.
    pub is_shim_entry: bool,
}

#[derive(Debug, Hash, Eq, PartialEq, Ord, PartialOrd, Clone, Serialize)]
pub struct LocalVariable {
    pub name: String,
    pub addr: usize,
    pub arg: bool,
    pub repr: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    pub pid: Pid,
    pub command_line: String,
    pub parent: Option<Box<ProcessInfo>>,
}

/// hptop patch: decoded names, file names and line tables of code objects, so a sample reads
/// two structs per frame (frame, code object) instead of ~8. Entries are keyed by the code
/// object's address and used only while the code object's string and line-table pointers
/// are those the entry was decoded from (a freed and reused address then misses).
#[derive(Debug, Default)]
pub struct CodeCache {
    entries: rustc_hash::FxHashMap<usize, CachedCode>,
    /// The data-stack chunk read for the current walk (kept to reuse its allocation).
    frames: Vec<u8>,
    /// The code objects read together for the current walk (kept likewise).
    codes: Vec<u8>,
    /// hptop patch: when set, a walk that finds exactly the frames of the thread's last walk
    /// returns a trace with no frames and `repeated` set, instead of building them again (see
    /// [`StackTrace::repeated`]). Not for traces with local variables.
    pub detect_repeats: bool,
    /// Each thread's last walk (by thread id) and the sample it was last seen in.
    last_walks: rustc_hash::FxHashMap<u64, (u64, Vec<WalkedFrame>)>,
    /// Bumped at every entry decoded: a frame's entry identifies what names it had.
    generation: u64,
    /// The current sample (see [`CodeCache::start_sample`]).
    sample: u64,
    /// hptop patch: the process read, when it is a live one: the code objects of the frames
    /// in a data-stack chunk are then read together, with one system call.
    pub pid: Option<Pid>,
    /// hptop patch: when set (and no local variables are asked for), a walk returns its frames
    /// as [`StackTrace::keys`] and builds no [`Frame`]s: names are not copied per frame, and
    /// `short_filename` is left for the caller (`PythonSpy::short_filename`).
    pub keys_only: bool,
    /// Names of entries replaced or dropped during the current sample, by generation: the
    /// keys of an earlier walk of the sample can still be named (see [`CodeCache::names`]).
    retired: Vec<(u64, Arc<str>, Arc<str>)>,
    /// hptop patch: what the current sample read ahead for all its walks (see [`ReadAhead`]).
    pub(crate) read_ahead: ReadAhead,
    /// hptop patch 35: the threads known not to run during the current sample.
    pub still: StillThreads,
    /// hptop patch 40: before 3.11, the frames each thread's walks met lately, and the
    /// sample it was last walked in (see [`HeldFrames`]).
    frame_addresses: rustc_hash::FxHashMap<u64, (u64, Lately)>,
    /// hptop patch 40: the buffer [`HeldFrames`] reads into (kept to reuse its allocation).
    held: Vec<u8>,
}

/// hptop patch 35: which threads are known not to run while a sample reads them (paused, or
/// blocked in the kernel). Two reads of such a thread alike to the byte are of a thread that
/// did not move, whatever the checks make of them (a frame pushed and not yet entered, a
/// layout the checks do not model): they are kept. A running thread whose loop repeats its
/// memory exactly (the same values, its frames at the same addresses: two call chains of
/// mirror shapes) can be read alike twice at the same phase, torn both times (Debian's 3.11,
/// alternating chains: 1 in ~3,000 samples): for it, reading alike proves nothing.
#[derive(Debug, Clone, Default)]
pub enum StillThreads {
    /// Every thread (the process is paused, or the caller cannot tell): as py-spy read.
    #[default]
    All,
    /// Only these (Python thread ids).
    Only(rustc_hash::FxHashSet<u64>),
}

impl StillThreads {
    /// Whether the thread `thread_id` is known not to run during the sample.
    fn holds(&self, thread_id: u64) -> bool {
        match self {
            StillThreads::All => true,
            StillThreads::Only(ids) => ids.contains(&thread_id),
        }
    }
}

/// hptop patch: the reads every walk of a sample starts with, done for all threads at once
/// at the start of the sample: each thread's start (see [`StartRead`]) with one
/// `process_vm_readv`, then the code objects of the frames in those chunks with one more,
/// instead of three system calls per thread. A walk takes what it needs from here and reads
/// on its own what is missing.
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    /// Starts by thread-state address; their chunks lie in `bytes`.
    starts: rustc_hash::FxHashMap<usize, StartRead>,
    bytes: Vec<u8>,
    /// Code objects by address: where they lie in `code_bytes`.
    codes: rustc_hash::FxHashMap<usize, usize>,
    code_bytes: Vec<u8>,
}

/// hptop patch 20: where a thread's walk starts, read in one system call in this order: its
/// frame pointer and data-stack top, its current chunk, then the frame pointer and top again.
/// Equal before and after, they bracket the copy of the chunk: the frames were copied while
/// the thread stayed at that frame (a thread that returned and came back to the very same
/// frame within the copy aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StartRead {
    /// (frame pointer, `datastack_top`) before the chunk was copied.
    before: (usize, usize),
    /// The same after.
    after: (usize, usize),
    /// The chunk's address and length, and where its copy lies in the buffer read into.
    chunk: (usize, usize),
    at: usize,
    /// hptop patch 37: where the chunk's second copy lies, taken right after the first.
    again: Option<usize>,
}

impl StartRead {
    /// The ranges to read for `thread` (at `address`), in order, if it has a chunk.
    fn ranges<T: ThreadState>(thread: &T, address: usize) -> Option<[(usize, usize); START_RANGES]> {
        let live = thread.live_fields(address)?;
        let chunk = chunk_range(thread)?;
        let (frame, top) = ((live.frame_at, POINTER), (live.top_at, POINTER));
        Some([frame, top, chunk, frame, top, chunk])
    }

    /// The start read from `offsets` (where each of `ranges`' parts lies in `buf`).
    fn from_read(ranges: &[(usize, usize)], offsets: &[Option<usize>], buf: &[u8]) -> Option<Self> {
        let value = |i: usize| struct_at::<usize>(buf, (*offsets.get(i)?)?);
        Some(Self {
            before: (value(0)?, value(1)?),
            after: (value(3)?, value(4)?),
            chunk: *ranges.get(2)?,
            at: (*offsets.get(2)?)?,
            again: offsets.get(5).copied().flatten(),
        })
    }

    /// The chunk's two copies in `buf` (the second where it was read).
    fn copies<'a>(&self, buf: &'a [u8]) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        let first = buf.get(self.at..self.at + self.chunk.1)?;
        Some((first, self.again.and_then(|at| buf.get(at..at + self.chunk.1))))
    }
}

/// Ranges read per walk's start (see [`StartRead`]).
const START_RANGES: usize = 6;

/// hptop patch 37: whether the callers of the frame at `frame` differ between two copies of
/// the chunk at `start` taken one after the other: their code or caller link (not their
/// saved instruction, which differs between two calls of one caller from two places: read
/// so, class-based code dropped up to twice the samples). A thread whose callers changed
/// between the copies returned and called again while the first was taken; a copy
/// interrupted for microseconds between two of its cache lines then joins two call chains,
/// which the frame pointer and the top, the same before and after, do not tell where the
/// chains have mirror shapes (1-4 in 3,000 samples of alternate.py on 3.11 and 3.12 in
/// some runs).
fn callers_moved<F: FrameObject>(start: usize, first: &[u8], again: &[u8], frame: usize) -> bool {
    let (one, two) = (Some((start, first)), Some((start, again)));
    let Some(innermost) = from_window::<F>(one, frame) else { return false };
    let mut at = innermost.back() as usize;
    for _ in 0..4096 {
        let (Some(a), Some(b)) = (from_window::<F>(one, at), from_window::<F>(two, at)) else {
            return false;
        };
        if a.code() != b.code() || a.back() != b.back() {
            return true;
        }
        at = a.back() as usize;
    }
    false
}

impl ReadAhead {
    /// Forgets the last sample's reads.
    pub(crate) fn clear(&mut self) {
        self.starts.clear();
        self.codes.clear();
    }

    /// Reads, for each thread of a sample to walk (`(address, thread state)`), where its walk
    /// starts; [`Self::read_codes`] then reads the code objects of the chunks' frames.
    pub(crate) fn read_starts<T: ThreadState>(&mut self, pid: Pid, threads: &[(usize, T)]) {
        self.clear();
        let mut ranges = Vec::with_capacity(threads.len() * START_RANGES);
        let mut of_thread = Vec::with_capacity(threads.len());
        let mut chunk_bytes = 0;
        for &(address, ref thread) in threads {
            // Past the bound, walks read their starts on their own, one at a time, as before.
            let Some(parts) = StartRead::ranges(thread, address) else { continue };
            if chunk_bytes + 2 * parts[2].1 > MAX_READ_AHEAD {
                continue;
            }
            chunk_bytes += 2 * parts[2].1;
            of_thread.push((address, ranges.len()));
            ranges.extend_from_slice(&parts);
        }
        if ranges.is_empty() {
            return;
        }
        let offsets = read_in_order(pid, &ranges, &mut self.bytes);
        for (address, first) in of_thread {
            let parts = first..first + START_RANGES;
            if let Some(start) = StartRead::from_read(&ranges[parts.clone()], &offsets[parts], &self.bytes) {
                self.starts.insert(address, start);
            }
        }
    }

    /// Reads the code objects of the frames in the chunks [`Self::read_starts`] read.
    pub(crate) fn read_codes<T: ThreadState>(&mut self, pid: Pid) {
        let mut codes = Vec::new();
        let mut seen = rustc_hash::FxHashSet::default();
        for start in self.starts.values() {
            let window = self.bytes.get(start.at..start.at + start.chunk.1);
            let window = window.map(|bytes| (start.chunk.0, bytes));
            for code in chunk_code_addresses::<T::FrameObject>(window, start.after.0) {
                if seen.insert(code) {
                    codes.push(code);
                }
            }
        }
        let read = prefetch_structs::<<T::FrameObject as FrameObject>::CodeObject>(
            pid,
            &codes,
            &mut self.code_bytes,
        );
        self.codes.extend(read);
    }

    /// Whether the last [`Self::read`] read any walk's start (with it, the thread's leaf frames).
    pub(crate) fn holds_starts(&self) -> bool {
        !self.starts.is_empty()
    }

    /// The start read ahead for the thread state at `address`, with its chunk's copies.
    fn start(&self, address: usize) -> Option<(StartRead, (&[u8], Option<&[u8]>))> {
        let start = *self.starts.get(&address)?;
        Some((start, start.copies(&self.bytes)?))
    }

    fn code<C: Copy>(&self, address: usize) -> Option<C> {
        struct_at(&self.code_bytes, *self.codes.get(&address)?)
    }
}

/// hptop patch 20: reads `ranges` of process `pid` into `buf` in the order given (the kernel
/// copies iovecs in order), 1,024 ranges per system call. Returns where each range lies in
/// `buf`, or `None` where it could not be read.
#[cfg(target_os = "linux")]
fn read_in_order(pid: Pid, ranges: &[(usize, usize)], buf: &mut Vec<u8>) -> Vec<Option<usize>> {
    const IOV_MAX: usize = 1024;
    let total: usize = ranges.iter().map(|&(_, len)| len).sum();
    buf.clear();
    buf.resize(total, 0);
    let mut offsets = vec![None; ranges.len()];
    let mut base = 0;
    for (group, part) in ranges.chunks(IOV_MAX).enumerate() {
        let group_len: usize = part.iter().map(|&(_, len)| len).sum();
        let mut local = Vec::with_capacity(part.len());
        let mut offset = base;
        for &(_, len) in part {
            local.push(libc::iovec {
                // SAFETY: in bounds: the lengths add up to `total`.
                iov_base: unsafe { buf.as_mut_ptr().add(offset) }.cast(),
                iov_len: len,
            });
            offset += len;
        }
        let remote: Vec<libc::iovec> = part
            .iter()
            .map(|&(address, len)| libc::iovec { iov_base: address as *mut libc::c_void, iov_len: len })
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
        // The kernel stops at the first range it cannot read wholly.
        if read > 0 {
            let read = read as usize;
            let mut at = 0;
            for (i, &(_, len)) in part.iter().enumerate() {
                if at + len > read {
                    break;
                }
                offsets[group * IOV_MAX + i] = Some(base + at);
                at += len;
            }
        }
        base += group_len;
    }
    offsets
}

#[cfg(not(target_os = "linux"))]
fn read_in_order(_pid: Pid, ranges: &[(usize, usize)], _buf: &mut Vec<u8>) -> Vec<Option<usize>> {
    vec![None; ranges.len()]
}

/// hptop patch 20: where a walk starts, as read: the frame pointer and, on 3.11+, the current
/// chunk (its copy is the walk's `chunk` buffer) bracketed by the frame pointer and the data
/// stack's top read before and after it (see [`StartRead`]).
struct WalkStart {
    frame: usize,
    /// Start of the chunk copied, if one was.
    chunk: Option<usize>,
    /// The bracketing reads and the chunk's end (`datastack_limit`), on 3.11+.
    live: Option<(StartRead, usize)>,
    /// hptop patch 37: the frame's callers differ between the chunk's two copies.
    moved: bool,
}

/// Whether a code object is one of the interpreter's shims, not the program's code: 3.13+
/// name entry frames `<shim>` or leave them unnamed; `__init__`'s cleanup (`_Py_InitCleanup`,
/// pushed below `__init__` when a class is called; hptop patch 25) is named `__init__` in a
/// file `__init__`, a name no source file has.
fn is_shim(entry: &CachedCode) -> bool {
    entry.filename.is_empty()
        || &*entry.filename == "<shim>"
        || (&*entry.filename == "__init__" && &*entry.name == "__init__")
}

/// hptop patch 20: what the check of a walk's start found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suspect {
    /// The frames or the top cannot be of one instant (a frame at or above the top, a caller
    /// above its callee, the top outside the copy): a race, never what the thread runs.
    Torn,
    /// Every frame is live, but a function object is not where its caller's call left it;
    /// with a fingerprint of the chain: read alike twice, it is a call the check does not
    /// model (e.g. through `__getitem__`, a property or `__init__`'s shim).
    Call(u64),
}

impl WalkStart {
    /// Whether the frame pointer and the top were the same before and after the chunk's copy,
    /// and the callers the same in its two copies (hptop patch 37) (true where they were not
    /// read so).
    fn held_still(&self) -> bool {
        !self.moved && self.live.is_none_or(|(read, _)| read.before == read.after)
    }

    /// hptop patch 30: whether `at` lies in the chunk's copy (`chunk`, copied from the start
    /// this walk read).
    fn in_copy(&self, at: usize, chunk: &[u8]) -> bool {
        self.chunk.is_some_and(|start| at >= start && at < start + chunk.len())
    }

    /// hptop patch 30: whether a start outside the chunk copied (a generator's frame, an
    /// entry frame on the C stack) reads: its frame, and its code object. True for a start
    /// in the chunk (checked by [`Self::suspect`]). Two reads, only for a start outside.
    fn reads_outside<F: FrameObject, P: ProcessMemory>(&self, chunk: &[u8], process: &P) -> bool {
        if self.chunk.is_none() || self.in_copy(self.frame, chunk) {
            return true;
        }
        process
            .copy_pointer(self.frame as *const F)
            .is_ok_and(|frame: F| process.copy_pointer(frame.code()).is_ok())
    }

    /// hptop patch 30: on 3.11 and 3.12 the frame pointer is read through the thread state's
    /// `cframe`, copied before the chunk: while a function called from C runs (`__init__`
    /// through a class call, a 3.11 property) in an inner evaluation, a `cframe` copied
    /// between its calls is the outer evaluation's, whose current frame is the caller, live
    /// frames above it up to the top. The frames above are found in the copy: each where the
    /// one below it ends (its size from the code cache), linked to it (the first through an
    /// evaluation's entry: 3.11 marks the frame, 3.12 links it through an entry frame on the
    /// C stack, one read), the last ending at the top. Only for a copy the frame pointer and
    /// the top held still around, or on 3.11 (patch 33). The innermost's address, when they chain so; `None` when
    /// the start needs no climb or they do not chain (then checked and read again as before).
    fn climb<F: FrameObject, P: ProcessMemory>(
        &self,
        chunk: &[u8],
        known: impl Fn(usize) -> Option<KnownCode>,
        process: &P,
    ) -> Option<usize> {
        // A copy taken while the thread pushed or popped holds stale frames above the top,
        // which may chain: only where the pointer and the top held still around it, or (hptop
        // patch 33) on 3.11, whose climb reads nothing but the copy (its first frame marks the
        // evaluation's entry) and goes through every check an unclimbed start does. 3.12 reads
        // the entry frame on the C stack after the copy: no gain there (measured).
        let (Some(start), Some((read, _)), true) =
            (self.chunk, self.live, self.held_still() || F::entry_marked())
        else {
            return None;
        };
        let top = read.after.1;
        let window = Some((start, chunk));
        let mut at = self.frame;
        let mut frame = from_window::<F>(window, at)?;
        // A stack deeper than this above an outer evaluation is left to the checks.
        for _ in 0..64 {
            let end = known(frame.code() as usize)?.frame_end(&frame, at)?;
            if end >= top {
                return (end == top && at != self.frame).then_some(at);
            }
            let above = from_window::<F>(window, end)?;
            if above.code().is_null() {
                return None;
            }
            let back = above.back() as usize;
            // A frame pushed by a Python call lies above the frame pointer's for a moment
            // before the pointer names it, over a stale occupant's bytes: the first step must
            // enter an evaluation.
            let linked = (back == at && (at != self.frame || above.is_entry()))
                || (!self.in_copy(back, chunk)
                    && process
                        .copy_struct::<F>(back)
                        .is_ok_and(|entry| entry.is_entry() && entry.back() as usize == at));
            if !linked {
                return None;
            }
            (at, frame) = (end, above);
        }
        None
    }

    /// `None` when the frames this start leads to in the chunk are of one instant as far as
    /// can be told; else what is wrong. Torn: the top lies outside the chunk or past what was
    /// copied (another chunk is current, or frames were pushed since the chunk's extent was
    /// read), callers that differ between the chunk's two copies (hptop patch 37), a frame at
    /// or above the top (popped: its bytes are stale), a frame without code
    /// (returned), a frame whose caller does not lie below it, an innermost frame whose
    /// instruction lies outside its code, or (3.11+) a caller that cannot be in a call
    /// ([`CallFit::Never`]; both for code `known` from earlier walks). A call: (3.11+) a frame whose function object is
    /// not where its caller's call left it ([`CallFit::Elsewhere`]). Frames outside the chunk
    /// (generators', entry frames, older chunks) are not checked.
    /// Each call found [`CallFit::Elsewhere`] goes to `elsewhere`: the caller's saved
    /// instruction address and the callee's function object, where known (see
    /// [`caches_function`]).
    fn suspect<F: FrameObject>(
        &self,
        chunk: &[u8],
        known: impl Fn(usize) -> Option<KnownCode>,
        elsewhere: &mut Vec<Option<(usize, usize)>>,
    ) -> Option<Suspect> {
        let (Some(start), Some((read, limit))) = (self.chunk, self.live) else {
            return None;
        };
        let top = read.after.1;
        let in_chunk = |at: usize| at >= start && at < limit;
        if !in_chunk(top.saturating_sub(1)) || top > start + chunk.len() || self.moved {
            return Some(Suspect::Torn);
        }
        let mut fingerprint = rustc_hash::FxHasher::default();
        std::hash::Hasher::write_usize(&mut fingerprint, top);
        let window = Some((start, chunk));
        let mut at = self.frame;
        // The frame above, where it lies, and its code as known.
        let mut callee: Option<(F, usize, Option<KnownCode>)> = None;
        let mut visited = 0;
        let mut fits = true;
        while in_chunk(at) && visited < 4096 {
            visited += 1;
            if at >= top {
                return Some(Suspect::Torn);
            }
            let Some(frame) = from_window::<F>(window, at) else {
                return Some(Suspect::Torn);
            };
            std::hash::Hasher::write_usize(&mut fingerprint, at);
            std::hash::Hasher::write_usize(&mut fingerprint, frame.code() as usize);
            let frame_known = known(frame.code() as usize);
            // hptop patch 27: a frame's code is cleared when it returns (3.14+: its
            // `f_executable` set to NULL), never while it is live: a frame without code was
            // copied between a return and the next call at the same place. Walked, it is
            // skipped: an innermost one shows its caller running its own code (3.14
            // class-based code: 5 % of the walks); a caller (hptop patch 32) joins the outer
            // frames of one call chain to the inner of the next (alternating chains on 3.14:
            // 5 in 3,000 samples).
            if frame.code().is_null() && !frame.is_entry() {
                return Some(Suspect::Torn);
            }
            if callee.is_none() {
                // hptop patch 32: an innermost frame's instruction outside its own code is
                // two frames' fields copied as one, as a caller's (alternating chains on 3.14).
                let instruction = frame.instruction().map(|(offset, _)| offset);
                if frame_known.zip(instruction).is_some_and(|(k, offset)| !k.shim && k.outside(offset)) {
                    return Some(Suspect::Torn);
                }
                // The innermost frame ends at the top: live frames above it mean the frame
                // pointer was read through a stale path (3.11, 3.12: the thread state's `cframe`
                // of an outer evaluation, while a function called from C, e.g. `__init__` or a
                // 3.11 property, runs in an inner one): its walk would miss the frames above.
                let end = frame_known.and_then(|k| k.frame_end(&frame, at));
                if end.is_some_and(|end| end < top && !callee_in_passing::<F>(window, at, end, top, &known)) {
                    return Some(Suspect::Torn);
                }
            }
            if let Some((callee, callee_at, callee_known)) = callee.filter(|(c, _, _)| !c.is_entry()) {
                match made_call(&frame, at, frame_known, &callee, callee_at, callee_known, window) {
                    CallFit::Fits => {}
                    CallFit::Elsewhere => {
                        elsewhere.push(
                            frame
                                .instruction_address()
                                .zip(callee.call_site(callee_at).map(|(function, _, _)| function)),
                        );
                        fits = false;
                    }
                    CallFit::Never => return Some(Suspect::Torn),
                }
            }
            let back = frame.back() as usize;
            // A frame's caller lies below it; any frame lies on a pointer's boundary (a link
            // that does not was not written yet: a frame being pushed over stale values).
            if (in_chunk(back) && back >= at) || back % POINTER != 0 {
                return Some(Suspect::Torn);
            }
            callee = Some((frame, at, frame_known));
            at = back;
        }
        (!fits).then(|| Suspect::Call(std::hash::Hasher::finish(&fingerprint)))
    }
}

/// hptop patch 39: whether the one frame between the innermost frame's end (`end`, the frame
/// at `at`) and the top is its own callee being pushed or popped: a Python frame, not an
/// evaluation's entry, linked to it, ending at the top. A Python call pushes the callee (the
/// top moves past it) before the frame pointer names it, and a return names the caller
/// before the callee is popped; a thread read in between is at the call or the return, and
/// the walk from the frame pointer is its stack. (Without this, such a read was taken for a
/// stale `cframe` with an inner evaluation running above, read again and dropped: a loop
/// calling a tiny method, `while not stop.is_set()`, dropped 2-7 % of its samples on 3.12 to
/// 3.14; 0-2.6 % after.)
/// A stale `cframe`'s inner evaluation links its first frame through an entry frame, never
/// to the frame pointer's frame (3.12+; not on 3.11).
fn callee_in_passing<F: FrameObject>(
    window: Option<(usize, &[u8])>,
    at: usize,
    end: usize,
    top: usize,
    known: &impl Fn(usize) -> Option<KnownCode>,
) -> bool {
    // Not on 3.11, whose evaluations' first frames link to their caller directly (marked
    // `is_entry`): left as it was there, its measurement inconclusive.
    !F::entry_marked()
        && from_window::<F>(window, end).is_some_and(|above| {
        !above.code().is_null()
            && !above.is_entry()
            && above.back() as usize == at
            && known(above.code() as usize).and_then(|k| k.frame_end(&above, end)) == Some(top)
    })
}

/// hptop patch 20/25: how a frame in the chunk fits the call its callee above it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallFit {
    /// The callee's function object lies where the caller's call left it (or the layout is
    /// not known).
    Fits,
    /// The caller is saved at a call, but the function object is not in its slot: a torn
    /// read, or a call the check does not model (`__getitem__`, a property).
    Elsewhere,
    /// The caller cannot be in a call: it has not begun, it runs (3.11-3.13 keep its saved
    /// top at -1 then; 3.14+ a NULL pointer), or its instruction pointer lies outside its
    /// code: a stale callee above it, or fields of two frames copied as one.
    Never,
}

/// What is known of a frame's code object from earlier walks (see [`WalkStart::suspect`]).
#[derive(Debug, Clone, Copy)]
struct KnownCode {
    /// Code units of its bytecode (3.11+).
    units: Option<usize>,
    /// Slots after a frame's specials (3.11+).
    slots: Option<usize>,
    /// A shim (`__init__`'s cleanup, 3.12+): pushed at its first instruction, never started.
    shim: bool,
    /// Where its bytecode returns (3.11+).
    returns: ReturnSites,
}

/// hptop patch 31: byte offsets of a code object's return instructions, where a frame that
/// returned keeps its saved instruction (3.11+; 3.13+ from patch 32), if it has at most
/// [`RETURN_SITES`].
#[derive(Debug, Clone, Copy, Default)]
struct ReturnSites {
    at: [u32; RETURN_SITES],
    len: u8,
}

/// Return instructions remembered per code object; code with more is not checked so.
const RETURN_SITES: usize = 6;

impl ReturnSites {
    /// Reads the bytecode of the code object at `code` (`units` code units long), once, when
    /// it is cached. Empty where unknown, unreadable, or with more returns than kept.
    fn read<F: FrameObject, P: ProcessMemory>(process: &P, code: usize, units: Option<usize>) -> Self {
        let mut sites = ReturnSites::default();
        let (Some((start, opcodes)), Some(units)) = (F::return_opcodes(code), units) else {
            return sites;
        };
        if units == 0 || units > 1 << 16 {
            return sites;
        }
        let Ok(bytes) = process.copy(start, units * 2) else { return sites };
        // Each code unit is its opcode then its argument; a cache unit may hold any byte
        // there, but no frame's instruction lies in a cache.
        for (offset, unit) in bytes.chunks_exact(2).enumerate() {
            if opcodes.contains(&unit[0]) {
                if usize::from(sites.len) == RETURN_SITES {
                    return ReturnSites::default();
                }
                sites.at[usize::from(sites.len)] = (offset * 2) as u32;
                sites.len += 1;
            }
        }
        sites
    }

    /// Whether the instruction at byte `offset` returns.
    fn holds(&self, offset: isize) -> bool {
        self.at[..usize::from(self.len)].iter().any(|&at| at as isize == offset)
    }
}

impl KnownCode {
    /// What an entry of the code cache tells of its code.
    fn of(entry: &CachedCode) -> Self {
        KnownCode { units: entry.code_units, slots: entry.frame_slots, shim: is_shim(entry), returns: entry.returns }
    }

    /// Whether an instruction offset (in bytes, from [`FrameObject::instruction`]) lies outside
    /// this code's bytecode: the frame's fields were copied from two frames.
    fn outside(self, offset: isize) -> bool {
        self.units.is_some_and(|units| offset < -2 || offset > 2 * units as isize)
    }

    /// Where a frame of this code at `at` ends (3.11+; never for a shim, whose frame is
    /// pushed by the interpreter at a size of its own): past its last slot.
    fn frame_end<F: FrameObject>(self, frame: &F, at: usize) -> Option<usize> {
        if self.shim {
            return None;
        }
        let slots = self.slots?.checked_mul(POINTER)?;
        at.checked_add(frame.call_site(at)?.2)?.checked_add(slots)
    }
}

/// How `callee` (at `callee_at`) fits a call from `caller` (at `address`, in `window`; its
/// code `known` from earlier walks): a Python call leaves the callee's function object at the
/// caller's saved value-stack top or the slot after (3.11 keeps a method's NULL below the
/// function), within the caller's own slots.
fn made_call<F: FrameObject>(
    caller: &F,
    address: usize,
    known: Option<KnownCode>,
    callee: &F,
    callee_at: usize,
    callee_known: Option<KnownCode>,
    window: Option<(usize, &[u8])>,
) -> CallFit {
    let (Some((_, top, localsplus)), Some((function, _, callee_localsplus))) =
        (caller.call_site(address), callee.call_site(callee_at))
    else {
        return CallFit::Fits;
    };
    // A shim is pushed by the interpreter, not called from its caller's stack (`__init__`'s
    // cleanup below `__init__`, called with the class), and calls without its own stack.
    if known.is_some_and(|k| k.shim) || callee_known.is_some_and(|k| k.shim) {
        return CallFit::Fits;
    }
    // Only for code seen before, and not a shim: a layout this check does not know (an
    // entry's trampoline, a version's own shims) must not drop every stack through it.
    if let (Some(known), Some((offset, started))) = (known, caller.instruction()) {
        let outside = known.outside(offset);
        // hptop patch 31: a frame at its return is no caller: a returned frame's header
        // copied with the slots of one pushed over it (3.11 class-based code: `calc > calc`).
        if !started || top < 0 || outside || known.returns.holds(offset) {
            return CallFit::Never;
        }
    }
    // Only the caller's own slots: the word past a frame's last slot may be the callee's
    // first field, its function object (a popped frame of the same size as a new one above).
    let slot = |i: i64| {
        // Checked: a torn frame's saved top can be any number (3.14+ derive it from a pointer).
        let at = usize::try_from(i).ok()?.checked_mul(POINTER)?.checked_add(address + localsplus)?;
        (at.checked_add(POINTER)? <= callee_at).then(|| from_window::<usize>(window, at))?
    };
    // A call that moves its receiver into the callee instead of calling a function object
    // from the stack (`BINARY_SUBSCR_GETITEM`, a property's getter on 3.12+) leaves the
    // receiver there: the callee's first local.
    let receiver = from_window::<usize>(window, callee_at + callee_localsplus).filter(|&v| v & !7 != 0);
    // Low bits: 3.14+ tag stack references.
    let holds = |value: usize| (top..=top + 1).any(|i| slot(i).map(|v| v & !7) == Some(value & !7));
    if holds(function) || receiver.is_some_and(holds) {
        CallFit::Fits
    } else {
        CallFit::Elsewhere
    }
}

/// hptop patch 29: whether the instruction at `at` (a caller's saved instruction pointer)
/// holds a pointer to `function` in its inline cache: a call specialized with its callee
/// cached (3.12's `LOAD_ATTR_PROPERTY` ends its cache with the getter, and saves a pointer to
/// the cache's last unit; 3.13+ save the instruction's start, the getter 12 bytes on). A
/// function object's address in the few code units around a frame's own instruction is not
/// met by chance; one read, only for a start found [`Suspect::Call`].
fn caches_function<P: ProcessMemory>(process: &P, at: usize, function: usize) -> bool {
    const BEFORE: usize = 16;
    const SPAN: usize = 48;
    if function == 0 || at < BEFORE {
        return false;
    }
    let Ok(bytes) = process.copy(at - BEFORE, SPAN) else { return false };
    // Code units are two bytes: a cached pointer lies on a two-byte boundary.
    bytes
        .windows(POINTER)
        .step_by(2)
        .any(|w| w.try_into().map(usize::from_ne_bytes).is_ok_and(|v| v == function))
}

/// hptop patch 25: a hash of what a walk's start read: the frame pointer and top around the
/// chunk's copy, and the copy.
fn read_fingerprint(start: &WalkStart, chunk: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = rustc_hash::FxHasher::default();
    start.frame.hash(&mut hasher);
    start.live.map(|(read, _)| (read.before, read.after)).hash(&mut hasher);
    chunk.hash(&mut hasher);
    hasher.finish()
}

/// hptop patch 26: whether the start of the walk of the thread state at `tstate_address`,
/// read once more, is the same to the byte as `first` (read into `chunk`): the thread did not
/// move between the two reads.
fn read_again_alike<T: ThreadState, P: ProcessMemory>(
    thread_id: u64,
    first: &WalkStart,
    chunk: &[u8],
    tstate_address: Option<usize>,
    process: &P,
    cache: &mut CodeCache,
) -> bool {
    // A first read over which the thread moved is not of a still thread, whatever follows;
    // nor is one of a thread that may run (hptop patch 35).
    let (true, Some(address)) = (first.held_still() && cache.still.holds(thread_id), tstate_address) else {
        return false;
    };
    let Ok(thread) = process.copy_struct::<T>(address) else { return false };
    let mut again_chunk = Vec::new();
    match walk_start(&thread, tstate_address, process, cache, &mut again_chunk, false) {
        Ok(again) => again.held_still() && read_fingerprint(&again, &again_chunk) == read_fingerprint(first, chunk),
        Err(_) => false,
    }
}

/// hptop patch 20: the trace of a walk dropped as torn: no frames, counted by the caller. The
/// walk's chunk buffer goes back to `cache`, and the thread's last walk is forgotten.
fn torn_trace<T: ThreadState>(
    cache: &mut CodeCache,
    chunk: Vec<u8>,
    thread: &T,
    thread_id: u64,
    rereads: u32,
) -> StackTrace {
    cache.frames = chunk;
    cache.last_walks.remove(&thread_id);
    StackTrace {
        pid: 0,
        frames: Vec::new(),
        repeated: false,
        name_unchanged: false,
        keys: Vec::new(),
        thread_id,
        thread_name: None,
        owns_gil: false,
        active: true,
        os_thread_id: thread.native_thread_id(),
        process_info: None,
        rereads,
        torn: true,
    }
}

/// Times a walk's start is read again before the thread's stack is dropped for this sample.
const MAX_REREADS: u32 = 3;

/// Bytes read past a chunk's top (within the chunk): frames the thread pushed between the
/// read of its thread state and the read of the chunk are in the copy too.
const CHUNK_SLACK: usize = 1024;

/// hptop patch 20: reads where a walk of `thread` (at `tstate_address`) starts into `chunk`:
/// from the sample's read-ahead when `ahead` and it has it, else with one system call of its
/// own (see [`StartRead`]), else (no live process, before 3.11) as unpatched py-spy did.
fn walk_start<T: ThreadState, P: ProcessMemory>(
    thread: &T,
    tstate_address: Option<usize>,
    process: &P,
    cache: &mut CodeCache,
    chunk: &mut Vec<u8>,
    ahead: bool,
) -> Result<WalkStart, Error> {
    if let Some(address) = tstate_address {
        let limit = thread.live_fields(address).map(|live| live.limit);
        let from = |read: StartRead, (bytes, again): (&[u8], Option<&[u8]>), chunk: &mut Vec<u8>| {
            chunk.clear();
            chunk.extend_from_slice(bytes);
            // Only where the frame pointer and the top held still around the first copy: a
            // start that moved is checked as before.
            let moved = read.before == read.after
                && again.is_some_and(|again| callers_moved::<T::FrameObject>(read.chunk.0, bytes, again, read.after.0));
            WalkStart { frame: read.after.0, chunk: Some(read.chunk.0), live: limit.map(|l| (read, l)), moved }
        };
        if ahead {
            if let Some((read, copies)) = cache.read_ahead.start(address) {
                return Ok(from(read, copies, chunk));
            }
        }
        if let (Some(pid), Some(ranges)) = (cache.pid, StartRead::ranges(thread, address)) {
            let mut buf = std::mem::take(&mut cache.codes);
            let offsets = read_in_order(pid, &ranges, &mut buf);
            let start = StartRead::from_read(&ranges, &offsets, &buf)
                .and_then(|read| Some(from(read, read.copies(&buf)?, chunk)));
            cache.codes = buf;
            if let Some(start) = start {
                return Ok(start);
            }
        }
    }
    // As unpatched py-spy: python 3.11+ has an extra level of indirection to get the frame.
    let mut frame_address = thread.frame_address();
    if let Some(addr) = frame_address {
        frame_address = Some(process.copy_struct(addr)?);
    }
    let frame = thread.frame(frame_address) as usize;
    let chunk_start = match chunk_range(thread) {
        Some((start, len)) => {
            chunk.resize(len, 0);
            process.read(start, chunk).ok().map(|()| start)
        }
        None => None,
    };
    Ok(WalkStart { frame, chunk: chunk_start, live: None, moved: false })
}

/// Bytes of a pointer.
const POINTER: usize = std::mem::size_of::<usize>();

/// Most bytes of chunks read ahead in one sample (a pool of deep stacks would otherwise hold
/// them all at once).
const MAX_READ_AHEAD: usize = 4 << 20;

/// `(start, length)` of a thread's current data-stack chunk, when it is read whole.
/// From patch 20, up to [`CHUNK_SLACK`] past the top (never past the chunk's end).
fn chunk_range<T: ThreadState>(thread: &T) -> Option<(usize, usize)> {
    match thread.datastack() {
        Some((start, top)) if start != 0 && top > start && top - start <= MAX_DATASTACK_READ => {
            let end = match thread.live_fields(0) {
                Some(live) if live.limit > top => live.limit.min(top + CHUNK_SLACK),
                _ => top,
            };
            Some((start, end - start))
        }
        _ => None,
    }
}

/// Most code objects read together for one walk.
const MAX_BATCHED_CODES: usize = 64;

/// hptop patch: one Python frame of a walk, before its names are copied out of the cache.
#[derive(Debug, Clone, PartialEq)]
struct WalkedFrame {
    /// The code object, the [`CachedCode::generation`] of the entry the names come from, and
    /// the lines.
    key: FrameKey,
    is_entry: bool,
    is_shim_entry: bool,
    locals: Option<Vec<LocalVariable>>,
}

/// Largest data-stack chunk read at once (3.11+ frames); a larger one is read frame by frame.
const MAX_DATASTACK_READ: usize = 256 * 1024;

/// hptop patch: a `T` at `address` from `window` (`(start, bytes)`), if it lies wholly inside.
fn from_window<T: Copy>(window: Option<(usize, &[u8])>, address: usize) -> Option<T> {
    let (start, bytes) = window?;
    let offset = address.checked_sub(start)?;
    let end = offset.checked_add(std::mem::size_of::<T>())?;
    if end > bytes.len() {
        return None;
    }
    // SAFETY: `bytes[offset..end]` holds a whole `T`, a plain-data binding (the same types
    // `copy_pointer` reads), valid for any bytes.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().add(offset).cast::<T>()) })
}

#[derive(Debug)]
struct CachedCode {
    pointers: [usize; 4],
    filename: Arc<str>,
    name: Arc<str>,
    line_table: Option<Vec<u8>>,
    /// hptop patch 25: code units of its bytecode (3.11+), to check frames' instruction
    /// pointers against (see [`WalkStart::suspect`]).
    code_units: Option<usize>,
    /// hptop patch 25: slots after a frame's specials (3.11+), to find where a frame of this
    /// code ends.
    frame_slots: Option<usize>,
    /// hptop patch 31: where its bytecode returns (3.11+).
    returns: ReturnSites,
    /// Which decoding this is (see [`CodeCache::generation`]).
    generation: u64,
    /// hptop patch: the lines last decoded from `line_table`, by instruction offset: a busy
    /// loop asks for the same few at every sample, and decoding walks the table from its start.
    lines: [(i32, i32); LINES_KEPT],
    /// Where the next decoded line goes in `lines` (round robin).
    next_line: usize,
}

/// Decoded lines kept per code object.
const LINES_KEPT: usize = 4;

/// Entries kept at most; the cache is emptied when full (code objects are few in practice).
const CODE_CACHE_CAPACITY: usize = 65536;

impl CodeCache {
    /// Number of cached code objects.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A cache for live process `pid` (its code objects can be read in batches).
    pub fn of_process(pid: Pid) -> Self {
        Self {
            pid: Some(pid),
            ..Self::default()
        }
    }

    /// Starts a sample: a full cache is emptied here, between walks, so the entries of a
    /// walk stay until its frames are built.
    pub fn start_sample(&mut self) {
        self.sample += 1;
        self.retired.clear();
        if self.entries.len() >= CODE_CACHE_CAPACITY {
            self.entries.clear();
        }
    }

    /// Keeps the last walk of `thread_id` (not walked in this sample, but not gone).
    pub fn keep_walk(&mut self, thread_id: u64) {
        if let Some(walk) = self.last_walks.get_mut(&thread_id) {
            walk.0 = self.sample;
        }
        if let Some(held) = self.frame_addresses.get_mut(&thread_id) {
            held.0 = self.sample;
        }
    }

    /// Ends a sample: forgets the walks of threads not seen in it.
    pub fn end_sample(&mut self, threads_seen: usize) {
        let sample = self.sample;
        if self.last_walks.len() > threads_seen {
            self.last_walks.retain(|_, (seen, _)| *seen == sample);
        }
        if self.frame_addresses.len() > threads_seen {
            self.frame_addresses.retain(|_, (seen, _)| *seen == sample);
        }
    }

    /// The function and file names of `key`'s generation, for keys of the current sample.
    pub fn names(&self, key: &FrameKey) -> Option<(&Arc<str>, &Arc<str>)> {
        match self.entries.get(&key.code_address) {
            Some(entry) if entry.generation == key.generation => Some((&entry.name, &entry.filename)),
            _ => self
                .retired
                .iter()
                .find(|(generation, _, _)| *generation == key.generation)
                .map(|(_, name, filename)| (name, filename)),
        }
    }

    /// Forgets every thread's last walk: the next walk of each builds its frames.
    pub fn forget_walks(&mut self) {
        self.last_walks.clear();
    }

    /// What earlier walks tell of the code object at `code` (the checks of a walk's start).
    fn known(&self, code: usize) -> Option<KnownCode> {
        self.entries.get(&code).map(KnownCode::of)
    }
}

/// Given an InterpreterState, this function returns a vector of stack traces for each thread
pub fn get_stack_traces<I, P>(
    interpreter_address: usize,
    process: &P,
    threadstate_address: usize,
    config: Option<&Config>,
) -> Result<Vec<StackTrace>, Error>
where
    I: InterpreterState,
    P: ProcessMemory,
{
    let gil_thread_id = get_gil_threadid::<I, P>(threadstate_address, process)?;

    let threadstate_ptr_ptr = I::threadstate_ptr_ptr(interpreter_address);
    let mut threads: *const I::ThreadState = process
        .copy_struct(threadstate_ptr_ptr as usize)
        .context("Failed to copy PyThreadState head pointer")?;

    let mut ret = Vec::new();

    let lineno = config.map(|c| c.lineno).unwrap_or(LineNo::NoLine);
    let dump_locals = config.map(|c| c.dump_locals).unwrap_or(0);

    while !threads.is_null() {
        let thread = process
            .copy_pointer(threads)
            .context("Failed to copy PyThreadState")?;

        let mut trace = get_stack_trace(&thread, process, dump_locals > 0, lineno)?;
        trace.owns_gil = trace.thread_id == gil_thread_id;

        ret.push(trace);
        // This seems to happen occasionally when scanning BSS addresses for valid interpreters
        // hptop patch: 4096 threads whose stacks all read are proof enough that the address is
        // an interpreter; a pool of more is a real pool, not a cycle of garbage.
        if ret.len() >= 4096 {
            return Ok(ret);
        }
        threads = thread.next();
    }
    Ok(ret)
}

/// Gets a stack trace for an individual thread
pub fn get_stack_trace<T, P>(
    thread: &T,
    process: &P,
    copy_locals: bool,
    lineno: LineNo,
) -> Result<StackTrace, Error>
where
    T: ThreadState,
    P: ProcessMemory,
{
    get_stack_trace_cached(thread, None, process, copy_locals, lineno, &mut CodeCache::default())
}

/// hptop patch: [`get_stack_trace`] reusing what `cache` decoded of code objects. With the
/// thread state's address (`tstate_address`), a walk that raced with the thread is read
/// again (patch 20).
pub fn get_stack_trace_cached<T, P>(
    thread: &T,
    tstate_address: Option<usize>,
    process: &P,
    copy_locals: bool,
    lineno: LineNo,
    cache: &mut CodeCache,
) -> Result<StackTrace, Error>
where
    T: ThreadState,
    P: ProcessMemory,
{
    // hptop patch 34: a walk found stale only once it reached the chunk (see `walk_thread`)
    // is read again from a fresh thread state, within the same `MAX_REREADS`.
    let mut current = *thread;
    let mut rereads = 0;
    loop {
        match walk_thread(thread, current, rereads, tstate_address, process, copy_locals, lineno, cache)? {
            Walk::Read(trace) => return Ok(trace),
            Walk::Stale(after) => {
                rereads = after;
                let address = match tstate_address {
                    Some(address) if rereads < MAX_REREADS => address,
                    _ => {
                        let chunk = std::mem::take(&mut cache.frames);
                        return Ok(torn_trace(cache, chunk, thread, thread.thread_id(), rereads));
                    }
                };
                rereads += 1;
                current = process.copy_struct(address).context("Failed to copy PyThreadState")?;
            }
        }
    }
}

/// hptop patch 34: what one walk of a thread's stack gave.
enum Walk {
    /// The trace (possibly dropped as torn).
    Read(StackTrace),
    /// A start found stale by the walk, after this many reads again.
    Stale(u32),
}

/// One walk of `thread`'s stack from `first` (its thread state as read), `rereads` reads
/// again into the sample (see [`get_stack_trace_cached`]).
#[allow(clippy::too_many_arguments)]
fn walk_thread<T, P>(
    thread: &T,
    first: T,
    rereads: u32,
    tstate_address: Option<usize>,
    process: &P,
    copy_locals: bool,
    lineno: LineNo,
    cache: &mut CodeCache,
) -> Result<Walk, Error>
where
    T: ThreadState,
    P: ProcessMemory,
{
    // hptop patch: the walk is kept as cache keys (`WalkedFrame`); frames are built from it
    // at the end unless it repeats the thread's last walk.
    // Room for as many frames as the thread's last walk had (a deep stack grows no vector).
    let thread_id = thread.thread_id();
    let mut frames: Vec<WalkedFrame> =
        Vec::with_capacity(cache.last_walks.get(&thread_id).map_or(0, |(_, w)| w.len()));

    // hptop patch 20: the frame pointer, the data stack's top and its current chunk, read in
    // one system call; a start whose frames were not all live in that copy (the thread
    // returned, or called deeper than the copy reaches, while it was read) is read again, up
    // to `MAX_REREADS` times, then dropped: a torn stack is never returned.
    let mut chunk = std::mem::take(&mut cache.frames);
    let mut current = first;
    let mut rereads = rereads;
    let mut last_suspect = None;
    let mut last_read = None;
    let kept = loop {
        let start = match walk_start(&current, tstate_address, process, cache, &mut chunk, rereads == 0) {
            Ok(start) => start,
            Err(e) => {
                cache.frames = chunk;
                return Err(e);
            }
        };
        let known = |code| cache.known(code);
        let mut start = start;
        // hptop patch 30: 3.11 and 3.12 name the current frame through `cframe`.
        let through_cframe = current.frame_address().is_some();
        if through_cframe {
            if let Some(innermost) = start.climb::<T::FrameObject, P>(&chunk, known, process) {
                start.frame = innermost;
            }
        }
        let mut elsewhere = Vec::new();
        let mut suspect = start.suspect::<T::FrameObject>(&chunk, known, &mut elsewhere);
        // hptop patch 30: a `cframe` copied while a function called from C ran names a frame
        // on the C stack: popped since, its frame or code no longer reads. Read again (the
        // thread state too) instead of dropped at once by the walk.
        if suspect.is_none() && through_cframe && !start.reads_outside::<T::FrameObject, P>(&chunk, process) {
            suspect = Some(Suspect::Torn);
        }
        // hptop patch 29: a call whose function object is not on the caller's stack but in
        // the caller's own instruction (a specialized property getter on 3.12 moves its
        // receiver into the callee and clears the slot; its function is cached in the
        // instruction) is modelled, not torn: every such call of the chain.
        if matches!(suspect, Some(Suspect::Call(_)))
            && !elsewhere.is_empty()
            && elsewhere
                .iter()
                .all(|call| call.is_some_and(|(at, function)| caches_function(process, at, function)))
        {
            suspect = None;
        }
        // A call the check does not know (e.g. through `__getitem__` or a property) read
        // alike twice, the thread at one frame over the second copy, is what the thread
        // really runs. A torn start is never kept so: a thread in a tight loop meets the same
        // race again at the same phase (on Debian's 3.11, 1 in 1,000 stacks was kept torn so:
        // a frame popped between the reads of the frame pointer and the top, or a running
        // caller below stale callees).
        let alike = matches!(suspect, Some(Suspect::Call(_))) && suspect == last_suspect && start.held_still();
        // A read the same to the byte as the one before it (the frame pointer, the top and
        // the chunk) is of a thread that did not move between them, paused (`--blocking`) or
        // blocked: what it holds is real, whatever the check makes of it (a frame pushed and
        // not yet entered, a layout the check does not model). Only for a thread known not
        // to run (hptop patch 35, [`StillThreads`]).
        if suspect.is_none() || alike {
            break start;
        }
        let still = read_fingerprint(&start, &chunk);
        if rereads > 0 && Some(still) == last_read && start.held_still() && cache.still.holds(thread_id) {
            break start;
        }
        last_suspect = suspect;
        last_read = Some(still);
        if rereads == MAX_REREADS {
            return Ok(Walk::Read(torn_trace(cache, chunk, thread, thread_id, rereads)));
        }
        rereads += 1;
        // The thread state too: the thread may have moved to another chunk.
        if let Some(address) = tstate_address {
            current = process.copy_struct(address).context("Failed to copy PyThreadState")?;
        }
    };
    let mut frame_ptr = kept.frame as *mut T::FrameObject;
    let window = kept.chunk.map(|start| (start, chunk.as_slice()));
    // Older chunks, read when the walk reaches a frame in one (deep stacks span several).
    let mut older = OlderChunks::after(window);
    // Code objects already copied in this walk (a recursion repeats the same one).
    let mut walk_codes: Vec<(usize, <T::FrameObject as FrameObject>::CodeObject)> = Vec::new();
    if let (Some(pid), Some(_)) = (cache.pid, window) {
        // hptop patch: the code objects of the frames in the chunk, read with one system call
        // instead of one each (the walk below reads those it still lacks on its own).
        let mut addresses = chunk_code_addresses::<T::FrameObject>(window, frame_ptr as usize);
        // Those the sample read ahead; the rest with one call of the walk's own.
        addresses.retain(|&address| match cache.read_ahead.code(address) {
            Some(code) => {
                walk_codes.push((address, code));
                false
            }
            None => true,
        });
        if !addresses.is_empty() {
            let mut buf = std::mem::take(&mut cache.codes);
            walk_codes.extend(
                prefetch_structs::<<T::FrameObject as FrameObject>::CodeObject>(
                    pid, &addresses, &mut buf,
                )
                .into_iter()
                .filter_map(|(address, at)| Some((address, struct_at(&buf, at)?))),
            );
            cache.codes = buf;
        }
    }

    // hptop patch 40: before 3.11 (no chunk), the thread state is read again here, and the
    // frames its walks met lately right after it in the same system call: the walk starts
    // where the thread is now, not where the sample's first read found it tens of
    // microseconds ago, from copies of that moment wherever it meets those frames.
    let mut held = HeldFrames::default();
    if let (true, Some(address), Some(pid)) =
        (window.is_none() && current.frame_address().is_none(), tstate_address, cache.pid)
    {
        held.buf = std::mem::take(&mut cache.held);
        let none = Lately::default();
        let lately = cache.frame_addresses.get(&thread_id).map_or(&none, |(_, l)| l);
        if let Some(frame) = held.read::<T>(pid, address, lately) {
            frame_ptr = frame as *mut T::FrameObject;
        }
    }

    // We are iterating in reverse, i.e. from last call to first call.
    // Since Python 3.12, there are shim frames inserted before a block
    // of Python frames. When we encounter one, update the last frame.
    let set_last_frame_as_shim_entry = &mut |frames: &mut Vec<WalkedFrame>| {
        if let Some(frame) = frames.last_mut() {
            frame.is_shim_entry = true;
        }
    };

    let mut visited = 0;
    // hptop patch 36: whether this walk met code the checks of its start did not know.
    let mut first_seen = false;
    // hptop patch 26: the walk started outside the chunk and has not reached it yet.
    let mut outside_start = false;
    while !frame_ptr.is_null() {
        visited += 1;
        if visited > 4096 {
            return Err(format_err!("Max frame recursion depth reached"));
        }

        let in_window = from_window::<T::FrameObject>(window, frame_ptr as usize);
        // hptop patch 25: a start outside the chunk copied whose frame or code object cannot
        // be read is a frame pointer read through a stale path (3.11, 3.12: a `cframe` on a C
        // stack since reused), not a failure of the read: the sample is dropped as torn.
        let start_outside = visited == 1 && window.is_some() && in_window.is_none();
        outside_start |= start_outside;
        // hptop patch 26: a walk that starts outside the chunk (a generator's frame, an entry
        // frame on the C stack) reaches the chunk at its newest frame, the one that ends at
        // the top: a first frame in the chunk with live frames above it means the start was
        // stale (3.12: the entry frame of an evaluation called from C, e.g. a class's
        // `__init__`, that has returned, read through the thread state's old `cframe`), and
        // the walk would show the caller's stack as the thread's. Such a start is read again
        // from a fresh thread state (hptop patch 34; before, the sample was dropped at once:
        // 3.12 class-based code lost ~30 % of its samples so), then dropped.
        // A thread that did not move (paused, blocked) is kept as read whatever the check
        // finds (a thread paused while it enters an evaluation has pushed the frame it will
        // run before its `cframe` names it): the start is read once more to tell.
        if let (true, Some(frame), Some((read, _))) = (outside_start, in_window.as_ref(), kept.live) {
            outside_start = false;
            let end = cache.known(frame.code() as usize).and_then(|k| k.frame_end(frame, frame_ptr as usize));
            if end.is_some_and(|end| end != read.after.1) && !read_again_alike::<T, P>(thread_id, &kept, &chunk, tstate_address, process, cache) {
                cache.frames = chunk;
                return Ok(Walk::Stale(rereads));
            }
        }
        held.met(frame_ptr as usize);
        let frame = match in_window
            .or_else(|| older.frame(frame_ptr as usize, process))
            .or_else(|| held.frame(frame_ptr as usize))
        {
            Some(frame) => frame,
            None => match process.copy_pointer(frame_ptr) {
                Ok(frame) => frame,
                Err(_) if start_outside => {
                    return Ok(Walk::Read(torn_trace(cache, chunk, thread, thread_id, rereads)));
                }
                // hptop patch 34: a link read from a live thread's frames that leads nowhere
                // readable was copied while the thread moved: read again (a process that has
                // exited fails its thread state's read, and that error is returned).
                Err(_) if kept.live.is_some() => {
                    cache.frames = chunk;
                    return Ok(Walk::Stale(rereads));
                }
                Err(e) => return Err(e).context("Failed to copy PyFrameObject"),
            },
        };

        if !frame.is_python_frame() {
            frame_ptr = frame.back();
            set_last_frame_as_shim_entry(&mut frames);
            continue;
        }

        let code = match walk_codes.iter().find(|(a, _)| *a == frame.code() as usize) {
            Some((_, code)) => *code,
            None => {
                let code = match process.copy_pointer(frame.code()) {
                    Ok(code) => code,
                    Err(_) if start_outside => {
                        return Ok(Walk::Read(torn_trace(cache, chunk, thread, thread_id, rereads)));
                    }
                    Err(_) if kept.live.is_some() => {
                        cache.frames = chunk;
                        return Ok(Walk::Stale(rereads));
                    }
                    Err(e) => return Err(e).context("Failed to copy PyCodeObject"),
                };
                if walk_codes.len() < MAX_BATCHED_CODES + 16 {
                    walk_codes.push((frame.code() as usize, code));
                }
                code
            }
        };

        let code_address = frame.code() as usize;
        let pointers = [
            code.filename() as usize,
            code.name() as usize,
            code.qualname().map_or(0, |p| p as usize),
            code.line_table() as usize,
        ];
        let hit = cache
            .entries
            .get(&code_address)
            .is_some_and(|entry| entry.pointers == pointers);
        if !hit {
            let filename =
                copy_string(code.filename(), process).context("Failed to copy filename");

            // Try to get qualname first (available in Python 3.11+), fall back to name
            let name = match code.qualname() {
                Some(qualname_ptr) => copy_string(qualname_ptr, process)
                    .or_else(|_| copy_string(code.name(), process)),
                None => copy_string(code.name(), process),
            }
            .context("Failed to copy function name");

            // Guards against torn reads while sampling without pausing the process.
            let (Ok(filename), Ok(name)) = (filename, name) else {
                // hptop patch 27: the innermost frame's code unreadable is a frame copied
                // stale (its code freed since); skipped, its caller would be shown running
                // its own code: the sample is dropped as torn, unless the thread did not move
                // (paused, blocked: read once more alike, as patch 26 tells it), where it is
                // what the thread runs (3.13: `__init__`'s shim, whose strings do not copy).
                if frames.is_empty()
                    && !read_again_alike::<T, P>(thread_id, &kept, &chunk, tstate_address, process, cache)
                {
                    return Ok(Walk::Read(torn_trace(cache, chunk, thread, thread_id, rereads)));
                }
                frame_ptr = frame.back();
                set_last_frame_as_shim_entry(&mut frames);
                continue;
            };
            let line_table = match lineno {
                LineNo::LastInstruction => copy_bytes(code.line_table(), process).ok(),
                _ => None,
            };
            cache.generation += 1;
            first_seen = true;
            let replaced = cache.entries.insert(
                code_address,
                CachedCode {
                    pointers,
                    filename: filename.into(),
                    name: name.into(),
                    line_table,
                    code_units: code.code_units(),
                    frame_slots: code.frame_slots(),
                    returns: ReturnSites::read::<T::FrameObject, P>(process, code_address, code.code_units()),
                    generation: cache.generation,
                    lines: [(-1, 0); LINES_KEPT],
                    next_line: 0,
                },
            );
            // The keys of an earlier walk of this sample may name the entry replaced.
            if let Some(old) = replaced {
                if cache.keys_only {
                    cache.retired.push((old.generation, old.name, old.filename));
                }
            }
        }
        let Some(entry) = cache.entries.get_mut(&code_address) else {
            frame_ptr = frame.back();
            continue;
        };

        // skip <shim> entries in python 3.13+
        // Unset file/function name in py3.13 means this is a shim.
        if is_shim(entry) {
            frame_ptr = frame.back();
            set_last_frame_as_shim_entry(&mut frames);
            continue;
        }
        let generation = entry.generation;

        let line = match lineno {
            LineNo::NoLine => 0,
            LineNo::First => code.first_lineno(),
            LineNo::LastInstruction => match &entry.line_table {
                Some(table) => {
                    let lasti = frame.lasti();
                    match entry.lines.iter().find(|(at, _)| *at == lasti && lasti >= 0) {
                        Some(&(_, line)) => line,
                        None => {
                            let line = code.get_line_number(lasti, table);
                            entry.lines[entry.next_line] = (lasti, line);
                            entry.next_line = (entry.next_line + 1) % LINES_KEPT;
                            line
                        }
                    }
                }
                None => {
                    // Failling to get the line number really shouldn't be fatal here, but
                    // can happen in extreme cases (https://github.com/benfred/py-spy/issues/164)
                    // Rather than fail set the linenumber to 0.
                    warn!("Failed to get line number from {}.{}", entry.filename, entry.name);
                    0
                }
            },
        };

        let locals = if copy_locals {
            Some(
                get_locals(&code, frame_ptr, &frame, process)
                    .context("Failed to get local variables")?,
            )
        } else {
            None
        };

        let is_entry = frame.is_entry();

        frames.push(WalkedFrame {
            key: FrameKey {
                code_address,
                generation,
                line,
                first_line: code.first_lineno(),
            },
            locals,
            is_entry,
            is_shim_entry: false,
        });

        frame_ptr = frame.back();
    }

    // First frame is always a shim
    set_last_frame_as_shim_entry(&mut frames);
    // hptop patch 36: the checks of a start know only code seen in earlier walks; a frame of
    // code seen for the first time was not checked (a short method a sample rarely finds,
    // first met as the caller of a torn stack: Debian's 3.11, alternate.py, `Event.is_set`
    // at a saved instruction outside its code). Checked again now that it is known; torn, the
    // start is read again as the checks before the walk would have had it.
    if first_seen && kept.live.is_some() {
        let mut elsewhere = Vec::new();
        let again = kept.suspect::<T::FrameObject>(&chunk, |code| cache.known(code), &mut elsewhere);
        if again == Some(Suspect::Torn) {
            cache.frames = chunk;
            return Ok(Walk::Stale(rereads));
        }
    }
    cache.frames = chunk;
    held.keep(thread_id, cache);

    let repeated = cache.detect_repeats
        && cache
            .last_walks
            .get(&thread_id)
            .is_some_and(|(_, last)| *last == frames);
    let keys_only = cache.keys_only && !copy_locals;
    let (built, keys) = match (repeated, keys_only) {
        (true, _) => (Vec::new(), Vec::new()),
        (false, true) => (Vec::new(), frames.iter().map(|w| w.key).collect()),
        (false, false) => (build_frames(&cache.entries, &frames)?, Vec::new()),
    };
    if cache.detect_repeats {
        cache.last_walks.insert(thread_id, (cache.sample, frames));
    }

    Ok(Walk::Read(StackTrace {
        pid: 0,
        frames: built,
        repeated,
        name_unchanged: false,
        keys,
        thread_id,
        thread_name: None,
        owns_gil: false,
        active: true,
        os_thread_id: thread.native_thread_id(),
        process_info: None,
        rereads,
        torn: false,
    }))
}

/// Innermost frames of recent walks, and callers of the last one, kept per thread for
/// [`HeldFrames`]: each read adds ~0.15 µs to the system call.
const MAX_HELD_INNER: usize = 8;
const MAX_HELD_OUTER: usize = 8;

/// hptop patch 40: the frames of a thread's recent walks (before 3.11), to read with its
/// thread state.
#[derive(Debug, Default)]
struct Lately {
    /// The innermost frames of recent walks, the most recent first.
    inner: Vec<usize>,
    /// The callers in the last walk, innermost first.
    outer: Vec<usize>,
}

/// hptop patch 40: before 3.11 a walk read the thread state at the sample's start and then
/// each frame with a system call of its own, tens of microseconds later. A frame object is
/// reused for the next call of its code (each code object keeps one), so a frame copied so
/// late may be the same function called from elsewhere since: on 3.8-3.10, class-based code
/// read `calc` called directly as called from `__init__` 14-20 points too often. Here the
/// thread state is read again at the walk, first, and the frames of the thread's recent walks
/// right after it in the same system call (~0.15 µs each): where the thread state names one of
/// them, the walk starts from copies of that moment. The thread state comes first: copied
/// after the frames, it was found between two calls far more often than paused reads find
/// it (`work` alone 19-23 % against 5 %): a copy of a line the thread is about to write
/// delays the thread there, and a frame's lines are written as the next call sets it up.
#[derive(Default)]
struct HeldFrames {
    buf: Vec<u8>,
    /// Each frame read (its address) and where its copy lies in `buf`.
    at: Vec<(usize, usize)>,
    /// The frames this walk met, in order.
    met: Vec<usize>,
    /// A frame that could not be read (freed since): not asked for again.
    gone: Option<usize>,
    active: bool,
}

impl HeldFrames {
    /// Reads the thread state at `tstate`, then the frames of `lately`, into `self.buf`; the
    /// frame the thread state names (`None` if it could not be read: the walk goes on from
    /// the sample's first read, as before this patch).
    fn read<T: ThreadState>(&mut self, pid: Pid, tstate: usize, lately: &Lately) -> Option<usize> {
        let frame_size = std::mem::size_of::<T::FrameObject>();
        let frames = lately.inner.iter().chain(&lately.outer);
        let mut ranges = Vec::with_capacity(lately.inner.len() + lately.outer.len() + 1);
        ranges.push((tstate, std::mem::size_of::<T>()));
        ranges.extend(frames.clone().map(|&at| (at, frame_size)));
        let offsets = read_in_order(pid, &ranges, &mut self.buf);
        let thread = struct_at::<T>(&self.buf, (*offsets.first()?)?)?;
        self.active = true;
        for (&address, at) in frames.zip(offsets.iter().skip(1)) {
            match at {
                Some(at) => self.at.push((address, *at)),
                // The kernel stops at the first range it cannot read: that frame is gone.
                None => {
                    self.gone = Some(address);
                    break;
                }
            }
        }
        Some(thread.frame(None) as usize)
    }

    /// The frame at `address` as read with the thread state.
    fn frame<F: Copy>(&self, address: usize) -> Option<F> {
        let &(_, at) = self.at.iter().find(|(a, _)| *a == address)?;
        struct_at(&self.buf, at)
    }

    /// Notes that the walk met the frame at `address`.
    fn met(&mut self, address: usize) {
        if self.active && self.met.len() <= MAX_HELD_OUTER {
            self.met.push(address);
        }
    }

    /// Keeps this walk's innermost frame before the earlier ones, and its callers, for the
    /// thread's next walk.
    fn keep(self, thread_id: u64, cache: &mut CodeCache) {
        if !self.active {
            return;
        }
        let sample = cache.sample;
        let (seen, lately) = cache.frame_addresses.entry(thread_id).or_default();
        *seen = sample;
        let gone = self.gone;
        let mut met = self.met;
        if !met.is_empty() {
            let innermost = met.remove(0);
            lately.inner.retain(|&a| a != innermost);
            lately.inner.insert(0, innermost);
            // The walk's own vector, not a copy of it: one allocation less per walk.
            lately.outer = met;
        }
        lately.inner.retain(|&a| Some(a) != gone);
        lately.inner.truncate(MAX_HELD_INNER);
        lately.outer.retain(|&a| Some(a) != gone);
        cache.held = self.buf;
    }
}

/// hptop patch: the data-stack chunks before the current one (`_PyStackChunk`: `previous`,
/// `size`, `top` in words, then the frames), each read whole the first time the walk needs a
/// frame that is not in the chunks read so far.
struct OlderChunks {
    /// The next older chunk not read yet (0: none).
    previous: usize,
    chunks: Vec<(usize, Vec<u8>)>,
}

/// Bytes of a `_PyStackChunk` header (`previous`, `size`, `top`).
const CHUNK_HEADER: usize = 3 * std::mem::size_of::<usize>();
/// Older chunks read at most per walk.
const MAX_OLDER_CHUNKS: usize = 16;

impl OlderChunks {
    fn after(current: Option<(usize, &[u8])>) -> Self {
        // The chunk's header starts with `previous`.
        let previous = current
            .and_then(|(start, _)| from_window::<usize>(current, start))
            .unwrap_or(0);
        Self {
            previous,
            chunks: Vec::new(),
        }
    }

    /// The `T` at `address` if it lies in an older chunk, reading chunks as needed.
    fn frame<T: Copy, P: ProcessMemory>(&mut self, address: usize, process: &P) -> Option<T> {
        if let Some(found) = self
            .chunks
            .iter()
            .find_map(|(start, bytes)| from_window(Some((*start, bytes.as_slice())), address))
        {
            return Some(found);
        }
        while self.previous != 0 && self.chunks.len() < MAX_OLDER_CHUNKS {
            let start = std::mem::take(&mut self.previous);
            let [previous, size, top] = process.copy_struct::<[usize; 3]>(start).ok()?;
            let used = top
                .checked_mul(std::mem::size_of::<usize>())?
                .checked_add(CHUNK_HEADER)?;
            if used > size || used > MAX_DATASTACK_READ {
                return None;
            }
            let mut bytes = vec![0u8; used];
            process.read(start, &mut bytes).ok()?;
            self.previous = previous;
            let found = from_window(Some((start, bytes.as_slice())), address);
            self.chunks.push((start, bytes));
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// hptop patch: the distinct code object addresses of the Python frames that lie in `window`,
/// from `frame` back (at most [`MAX_BATCHED_CODES`]), stopping at the first frame outside it.
fn chunk_code_addresses<F: FrameObject>(window: Option<(usize, &[u8])>, frame: usize) -> Vec<usize> {
    let mut addresses = Vec::new();
    let mut at = frame;
    let mut visited = 0;
    while at != 0 && visited < 4096 && addresses.len() < MAX_BATCHED_CODES {
        visited += 1;
        let Some(f) = from_window::<F>(window, at) else {
            break;
        };
        let code = f.code() as usize;
        if f.is_python_frame() && code != 0 && !addresses.contains(&code) {
            addresses.push(code);
        }
        at = f.back() as usize;
    }
    addresses
}

/// hptop patch: the frames of a walk, named from the cache entries the walk used (a full
/// cache is emptied only between walks, so they are all there).
fn build_frames(
    entries: &rustc_hash::FxHashMap<usize, CachedCode>,
    walk: &[WalkedFrame],
) -> Result<Vec<Frame>, Error> {
    walk.iter()
        .map(|w| {
            let entry = entries
                .get(&w.key.code_address)
                .ok_or_else(|| format_err!("code object left the cache during a walk"))?;
            Ok(Frame {
                name: entry.name.to_string(),
                filename: entry.filename.to_string(),
                line: w.key.line,
                first_line: w.key.first_line,
                short_filename: None,
                module: None,
                locals: w.locals.clone(),
                is_entry: w.is_entry,
                is_shim_entry: w.is_shim_entry,
            })
        })
        .collect()
}


impl StackTrace {
    pub fn status_str(&self) -> &str {
        match (self.owns_gil, self.active) {
            (_, false) => "idle",
            (true, true) => "active+gil",
            (false, true) => "active",
        }
    }

    pub fn format_threadid(&self) -> String {
        // native threadids in osx are kinda useless, use the pthread id instead
        #[cfg(target_os = "macos")]
        return format!("{:#X}", self.thread_id);

        // otherwise use the native threadid if given
        #[cfg(not(target_os = "macos"))]
        match self.os_thread_id {
            Some(tid) => format!("{}", tid),
            None => format!("{:#X}", self.thread_id),
        }
    }
}

/// Returns the line number from a PyCodeObject (given the lasti index from a PyFrameObject)
#[allow(dead_code)]
fn get_line_number<C: CodeObject, P: ProcessMemory>(
    code: &C,
    lasti: i32,
    process: &P,
) -> Result<i32, Error> {
    let table =
        copy_bytes(code.line_table(), process).context("Failed to copy line number table")?;
    Ok(code.get_line_number(lasti, &table))
}

fn get_locals<C: CodeObject, F: FrameObject, P: ProcessMemory>(
    code: &C,
    frameptr: *const F,
    frame: &F,
    process: &P,
) -> Result<Vec<LocalVariable>, Error> {
    let local_count = code.nlocals() as usize;
    let argcount = code.argcount() as usize;
    let varnames = process
        .copy_pointer(code.varnames())
        .context("Failed to get varnames from PyCodeObject")?;

    let ptr_size = std::mem::size_of::<*const i32>();
    let locals_addr = frameptr as usize + std::mem::size_of_val(frame) - ptr_size;

    let mut ret = Vec::new();

    for i in 0..local_count {
        let nameptr: *const C::StringObject =
            process.copy_struct(varnames.address(code.varnames() as usize, i))?;

        let name = copy_string(nameptr, process).context("Failed to copy local variable name")?;
        let addr: usize = process.copy_struct(locals_addr + i * ptr_size)?;

        // hack: handle things like None, True, False, small integer constants etc on Python 3.14
        let addr = if addr & 1 == 1 { addr - 1 } else { addr };

        if addr == 0 {
            continue;
        }
        ret.push(LocalVariable {
            name,
            addr,
            arg: i < argcount,
            repr: None,
        });
    }
    Ok(ret)
}

pub fn get_gil_threadid<I: InterpreterState, P: ProcessMemory>(
    threadstate_address: usize,
    process: &P,
) -> Result<u64, Error> {
    // happens during initialization when checking to see if we have a valid interpreter (before we've figured out the threadstate_address)
    if threadstate_address == 0 {
        return Ok(0);
    }

    let addr = if I::HAS_GIL_RUNTIME_STATE {
        // get the gilruntimestate - note that this struct is identical between 3.12/3.13/3.14
        let gil_state: crate::python_bindings::v3_13_0::_gil_runtime_state =
            process.copy_struct(threadstate_address)?;
        // check to see if the GIL is locked already
        if gil_state.locked != 0 {
            gil_state.last_holder as usize
        } else {
            0
        }
    } else {
        process.copy_struct::<usize>(threadstate_address)?
    };

    // if the addr is 0, no thread is currently holding the GIL
    let threadid = if addr != 0 {
        let threadstate: I::ThreadState = process.copy_struct(addr)?;
        threadstate.thread_id()
    } else {
        0
    };

    Ok(threadid)
}

impl ProcessInfo {
    pub fn to_frame(&self) -> Frame {
        Frame {
            name: format!("process {}:\"{}\"", self.pid, self.command_line),
            filename: String::from(""),
            module: None,
            short_filename: None,
            line: 0,
            first_line: 0,
            locals: None,
            is_entry: true,
            is_shim_entry: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python_bindings::v3_7_0::PyCodeObject;
    use crate::python_data_access::tests::to_byteobject;
    use remoteprocess::LocalProcess;

    #[test]
    fn test_get_line_number() {
        let mut lnotab = to_byteobject(&[0u8, 1, 10, 1, 8, 1, 4, 1]);
        let code = PyCodeObject {
            co_firstlineno: 3,
            co_lnotab: &mut lnotab.base.ob_base.ob_base,
            ..Default::default()
        };
        let lineno = get_line_number(&code, 30, &LocalProcess).unwrap();
        assert_eq!(lineno, 7);
    }
}
