//! A segment's payload: sampler events with strings and stacks interned, counters as deltas
//! from the same thread's previous tick. Every segment starts afresh (its own tables and
//! baselines), so any segment can be read without the ones before it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::wire::{put_delta, put_str, put_u64, Reader};
use super::RecordError;
use crate::collect::tick::{
    Activity, Frame, GilState, MemoryCounters, OsState, ProcCounters, ProcessTick,
    SlowThreadCounters, SmapsRollup, StackRead, Syscall, ThreadCounters, ThreadTick, Tick,
};
use crate::collect::{SamplerEvent, TargetInfo};

/// asyncio tasks (format 3).
mod tasks;

/// Longest string a segment may hold (names are cut far shorter by the sampler).
const MAX_STRING: usize = 64 * 1024;

const ATTACHED: u8 = 1;
const TICK: u8 = 2;
const EXITED: u8 = 3;
const PANICKED: u8 = 4;
/// A process attached before this segment began, repeated so the segment stands alone.
const KNOWN: u8 = 5;

// Tick flags.
const RESUMED: u64 = 1;
const PROC_COUNTERS: u64 = 2;
const MEMORY: u64 = 4;
const ROLLUP: u64 = 8;
const STACK_ERROR: u64 = 16;
const PROC_EXITED: u64 = 32;
const GIL_SWITCHES: u64 = 64;
const PROC_READ: u64 = 128;
const PROC_WRITE: u64 = 256;
/// The asyncio task list follows (format 3; see `tasks`).
const TASKS: u64 = 512;

// Thread flags.
const PYTHON: u64 = 1;
const NAME: u64 = 2;
const SAME_NAME: u64 = 4;
const SAME_FRAMES: u64 = 8;
const COUNTERS: u64 = 16;
const SAME_COUNTERS: u64 = 32;
const SLOW: u64 = 64;
const RUN_NS: u64 = 128;
const WAIT_NS: u64 = 256;
const SYSCALL: u64 = 512;
const IO_BYTES: u64 = 1024;
const NOT_RUN: u64 = 2048;
/// Run and wait times are stored in µs, with their ns remainders only when this is set (the
/// sampler keeps them to the µs: see `collect::procfs`).
const SUB_MICRO: u64 = 4096;
/// `on_cpu` was told (see `collect::oncpu`); with [`ON_CPU`], the thread ran during the read.
const ON_CPU_TOLD: u64 = 8192;
const ON_CPU: u64 = 16384;
/// The stack was read again (`StackRead::rereads`, a byte after the GIL/activity codes).
const REREAD: u64 = 32768;
/// Every read of the stack raced: dropped (`StackRead::dropped`).
const DROPPED: u64 = 65536;
/// The thread ran an asyncio task (its id follows in the thread-flags column; format 3).
const RUNNING_TASK: u64 = 131_072;

/// Columns: like fields of all thread-samples are stored together (then compressed), which
/// compresses far better than one record after the other. The payload is `uint` column
/// count, each column's length, then the columns; records and references are in `CONTROL`.
const CONTROL: usize = 0;
const PROC: usize = 1;
const TID: usize = 2;
const THREAD_FLAGS: usize = 3;
const STATE: usize = 4;
const RUN: usize = 5;
const WAIT: usize = 6;
const SLOW_COL: usize = 7;
const SYS: usize = 8;
const IO: usize = 9;
const COLUMNS: usize = 10;

/// What the previous tick of one thread carried (both sides keep the same).
#[derive(Default, Clone)]
struct ThreadPrev {
    name: Option<Arc<str>>,
    frames: Option<Arc<[Frame]>>,
    counters: Option<ThreadCounters>,
    slow: SlowThreadCounters,
    arg0: u64,
    io: u64,
}

/// What the previous tick of one process carried.
#[derive(Default, Clone, Copy)]
struct ProcPrev {
    counters: ProcCounters,
    memory: MemoryCounters,
    gil_switches: u64,
}

/// Baselines of one segment, kept alike by the encoder and the decoder.
#[derive(Default)]
struct Baselines {
    at_ns: u64,
    interval_ns: u64,
    procs: HashMap<u32, ProcPrev>,
    threads: HashMap<(u32, u32), ThreadPrev>,
}

/// Turns events into one segment's payload at a time.
#[derive(Default)]
pub struct Encoder {
    /// The control column (records, references, definitions).
    out: Vec<u8>,
    /// The other columns (index - 1).
    cols: [Vec<u8>; COLUMNS - 1],
    strings: HashMap<String, u64>,
    codes: HashMap<(u64, u64, u64, u32), u64>,
    stacks: HashMap<Arc<[Frame]>, u64>,
    base: Baselines,
    /// Processes attached and not exited: repeated at the start of every segment.
    live: HashMap<u32, TargetInfo>,
    /// Thread-samples in the current segment.
    pub thread_samples: u64,
    /// Ticks in the current segment, and the `at` of its first and last.
    pub ticks: u64,
    /// `at` (ns) of the first and latest tick in the segment.
    pub span_ns: Option<(u64, u64)>,
}

impl Encoder {
    /// Bytes of the current segment's payload so far.
    pub fn len(&self) -> usize {
        self.out.len() + self.cols.iter().map(Vec::len).sum::<usize>()
    }

    /// Whether the current segment holds no tick yet.
    pub fn is_empty(&self) -> bool {
        self.ticks == 0
    }

    /// Ends the segment: its payload, and a fresh start for the next, which begins with the
    /// processes still being sampled (so it can be read alone).
    pub fn finish(&mut self) -> Vec<u8> {
        let control = std::mem::take(&mut self.out);
        let mut finished = Vec::with_capacity(self.len() + control.len() + 32);
        put_u64(&mut finished, COLUMNS as u64);
        put_u64(&mut finished, control.len() as u64);
        for col in &self.cols {
            put_u64(&mut finished, col.len() as u64);
        }
        finished.extend_from_slice(&control);
        for col in &mut self.cols {
            finished.extend_from_slice(col);
            col.clear();
        }
        self.strings.clear();
        self.codes.clear();
        self.stacks.clear();
        self.base = Baselines::default();
        self.ticks = 0;
        self.thread_samples = 0;
        self.span_ns = None;
        let mut live: Vec<TargetInfo> = self.live.values().cloned().collect();
        live.sort_by_key(|t| t.pid);
        for info in &live {
            self.out.push(KNOWN);
            self.put_target(info);
        }
        finished
    }

    /// Appends one event.
    pub fn push(&mut self, event: &SamplerEvent) {
        match event {
            SamplerEvent::Attached(info) => {
                self.out.push(ATTACHED);
                self.put_target(info);
                self.live.insert(info.pid, info.clone());
            }
            SamplerEvent::Ticks(ticks) => {
                for tick in ticks {
                    self.put_tick(tick);
                }
            }
            SamplerEvent::Exited(pid) => {
                self.out.push(EXITED);
                put_u64(&mut self.out, u64::from(*pid));
                self.live.remove(pid);
            }
            SamplerEvent::Panicked(pid, message) => {
                self.out.push(PANICKED);
                put_u64(&mut self.out, u64::from(*pid));
                self.put_string(message);
                self.live.remove(pid);
            }
        }
    }

    fn put_target(&mut self, info: &TargetInfo) {
        put_u64(&mut self.out, u64::from(info.pid));
        put_u64(&mut self.out, u64::from(info.ppid));
        put_u64(&mut self.out, info.start_ticks);
        self.put_string(&info.python_version);
        put_u64(&mut self.out, info.cmdline.len() as u64);
        for arg in &info.cmdline {
            self.put_string(arg);
        }
    }

    /// A string reference: its id, or (the next id) followed by the string, defining it.
    fn put_string(&mut self, s: &str) {
        if let Some(&id) = self.strings.get(s) {
            put_u64(&mut self.out, id);
            return;
        }
        let id = self.strings.len() as u64;
        put_u64(&mut self.out, id);
        put_str(&mut self.out, s);
        self.strings.insert(s.to_owned(), id);
    }

    fn string_id(&mut self, s: &str) -> u64 {
        self.put_string(s);
        self.strings.get(s).copied().unwrap_or_default()
    }

    /// A stack reference: 0 for none, id + 1, or the next id + 1 followed by its frames.
    fn put_stack(&mut self, frames: &Arc<[Frame]>) {
        if frames.is_empty() {
            put_u64(&mut self.out, 0);
            return;
        }
        if let Some(&id) = self.stacks.get(frames) {
            put_u64(&mut self.out, id + 1);
            return;
        }
        let id = self.stacks.len() as u64;
        put_u64(&mut self.out, id + 1);
        put_u64(&mut self.out, frames.len() as u64);
        for frame in frames.iter() {
            self.put_code(frame);
            put_u64(&mut self.out, u64::from(frame.line));
        }
        self.stacks.insert(Arc::clone(frames), id);
    }

    /// A code reference (name, file, short file, first line): its id, or the next id then its
    /// strings.
    fn put_code(&mut self, frame: &Frame) {
        // Strings are written (defined) where first met, so look up by content first.
        let key = (
            self.strings.get(&*frame.name).copied(),
            self.strings.get(&*frame.filename).copied(),
            frame
                .short_filename
                .as_deref()
                .map(|s| self.strings.get(s).copied()),
        );
        if let (Some(n), Some(f), short) = key {
            let short_id = match short {
                None => Some(0),
                Some(Some(s)) => Some(s + 1),
                Some(None) => None,
            };
            if let Some(s) = short_id {
                if let Some(&id) = self.codes.get(&(n, f, s, frame.first_line)) {
                    put_u64(&mut self.out, id);
                    return;
                }
            }
        }
        let id = self.codes.len() as u64;
        put_u64(&mut self.out, id);
        let n = self.string_id(&frame.name);
        let f = self.string_id(&frame.filename);
        // A flag (bit 0: a short name follows; bit 1, format 2: then the first line), then
        // the reference; kept in the key as 1 + id, 0 for none.
        let s = if let Some(short) = &frame.short_filename {
            put_u64(&mut self.out, 3);
            self.string_id(short) + 1
        } else {
            put_u64(&mut self.out, 2);
            0
        };
        put_u64(&mut self.out, u64::from(frame.first_line));
        self.codes.insert((n, f, s, frame.first_line), id);
    }

    fn put_tick(&mut self, tick: &Tick) {
        let at = duration_ns(tick.at);
        let interval = duration_ns(tick.interval);
        self.ticks += 1;
        self.span_ns = Some(self.span_ns.map_or((at, at), |(first, _)| (first, at)));
        let p = &tick.process;
        let mut flags = 0;
        flags |= if tick.resumed { RESUMED } else { 0 };
        flags |= if p.counters.is_some() {
            PROC_COUNTERS
        } else {
            0
        };
        flags |= if p.memory.is_some() { MEMORY } else { 0 };
        flags |= if p.memory.is_some_and(|m| m.rollup.is_some()) {
            ROLLUP
        } else {
            0
        };
        flags |= if p.stack_error.is_some() {
            STACK_ERROR
        } else {
            0
        };
        flags |= if p.exited { PROC_EXITED } else { 0 };
        flags |= if p.gil_switches.is_some() {
            GIL_SWITCHES
        } else {
            0
        };
        flags |= if p.counters.is_some_and(|c| c.read_bytes.is_some()) {
            PROC_READ
        } else {
            0
        };
        flags |= if p.counters.is_some_and(|c| c.write_bytes.is_some()) {
            PROC_WRITE
        } else {
            0
        };
        flags |= if p.tasks.is_some() { TASKS } else { 0 };
        self.out.push(TICK);
        put_delta(&mut self.out, at, self.base.at_ns);
        put_delta(&mut self.out, interval, self.base.interval_ns);
        self.base.at_ns = at;
        self.base.interval_ns = interval;
        put_u64(&mut self.out, u64::from(tick.skipped));
        put_u64(&mut self.out, flags);
        put_u64(&mut self.out, u64::from(p.pid));
        let mut prev = self.base.procs.get(&p.pid).copied().unwrap_or_default();
        if let Some(c) = p.counters {
            let b = prev.counters;
            let out = &mut self.cols[PROC - 1];
            put_delta(out, c.cpu_ticks, b.cpu_ticks);
            put_delta(out, c.minor_faults, b.minor_faults);
            put_delta(out, c.major_faults, b.major_faults);
            put_delta(out, c.rss_bytes, b.rss_bytes);
            if let Some(v) = c.read_bytes {
                put_delta(out, v, b.read_bytes.unwrap_or(0));
            }
            if let Some(v) = c.write_bytes {
                put_delta(out, v, b.write_bytes.unwrap_or(0));
            }
            prev.counters = c;
        }
        if let Some(m) = p.memory {
            let b = prev.memory;
            let out = &mut self.cols[PROC - 1];
            put_delta(out, m.swap_bytes, b.swap_bytes);
            put_delta(out, m.hwm_bytes, b.hwm_bytes);
            put_delta(out, m.rss_anon_bytes, b.rss_anon_bytes);
            put_delta(out, m.rss_file_bytes, b.rss_file_bytes);
            put_delta(out, m.rss_shmem_bytes, b.rss_shmem_bytes);
            if let Some(r) = m.rollup {
                put_u64(out, r.pss_bytes);
                put_u64(out, r.uss_bytes);
            }
            prev.memory = m;
        }
        if let Some(error) = &p.stack_error {
            self.put_string(error);
        }
        if let Some(n) = p.gil_switches {
            put_delta(&mut self.cols[PROC - 1], n, prev.gil_switches);
            prev.gil_switches = n;
        }
        if let Some(tasks) = &p.tasks {
            self.put_tasks(tasks);
        }
        self.base.procs.insert(p.pid, prev);
        put_u64(&mut self.out, p.threads.len() as u64);
        let mut last_tid = 0;
        for t in &p.threads {
            self.thread_samples += 1;
            put_delta(&mut self.cols[TID - 1], u64::from(t.tid), last_tid);
            last_tid = u64::from(t.tid);
            self.put_thread(p.pid, t);
        }
    }

    fn put_thread(&mut self, pid: u32, t: &ThreadTick) {
        let key = (pid, t.tid);
        let mut prev = self.base.threads.remove(&key).unwrap_or_default();
        let mut flags = if t.is_python { PYTHON } else { 0 };
        if t.name.is_some() {
            flags |= NAME;
            if t.name == prev.name {
                flags |= SAME_NAME;
            }
        }
        let same_frames = prev
            .frames
            .as_ref()
            .is_some_and(|f| Arc::ptr_eq(f, &t.frames) || **f == *t.frames);
        if same_frames {
            flags |= SAME_FRAMES;
        }
        if let Some(c) = t.counters {
            flags |= counter_flags(&c, prev.counters == Some(c));
        }
        if t.stack_read.rereads > 0 {
            flags |= REREAD;
        }
        if t.stack_read.dropped {
            flags |= DROPPED;
        }
        if t.running_task.is_some() {
            flags |= RUNNING_TASK;
        }
        put_u64(&mut self.cols[THREAD_FLAGS - 1], flags);
        self.cols[THREAD_FLAGS - 1].push(gil_code(t.gil) | (activity_code(t.activity) << 2));
        if t.stack_read.rereads > 0 {
            self.cols[THREAD_FLAGS - 1].push(t.stack_read.rereads);
        }
        if let Some(task) = t.running_task {
            put_u64(&mut self.cols[THREAD_FLAGS - 1], task);
        }
        if let (Some(name), false) = (&t.name, flags & SAME_NAME != 0) {
            self.put_string(name);
        }
        if !same_frames {
            self.put_stack(&t.frames);
        }
        if let (Some(c), false) = (t.counters, flags & SAME_COUNTERS != 0) {
            let b = prev.counters.unwrap_or_default();
            let cols = &mut self.cols;
            let out = &mut cols[STATE - 1];
            out.push(os_code(c.state));
            put_delta(out, c.start_ticks, b.start_ticks);
            put_delta(out, c.cpu_ticks, b.cpu_ticks);
            put_delta(out, c.minor_faults, b.minor_faults);
            put_delta(out, c.major_faults, b.major_faults);
            let sub_micro = flags & SUB_MICRO != 0;
            if let Some(v) = c.run_ns {
                put_micros(&mut cols[RUN - 1], v, b.run_ns.unwrap_or(0), sub_micro);
            }
            if let Some(v) = c.runqueue_wait_ns {
                put_micros(
                    &mut cols[WAIT - 1],
                    v,
                    b.runqueue_wait_ns.unwrap_or(0),
                    sub_micro,
                );
            }
            if let Some(s) = c.slow {
                let out = &mut cols[SLOW_COL - 1];
                put_delta(out, s.voluntary_ctxsw, prev.slow.voluntary_ctxsw);
                put_delta(out, s.involuntary_ctxsw, prev.slow.involuntary_ctxsw);
                put_delta(out, s.read_bytes, prev.slow.read_bytes);
                put_delta(out, s.write_bytes, prev.slow.write_bytes);
                prev.slow = s;
            }
            if let Some(s) = c.syscall {
                put_u64(&mut cols[SYS - 1], s.number);
                put_delta(&mut cols[SYS - 1], s.arg0, prev.arg0);
                prev.arg0 = s.arg0;
            }
            if let Some(v) = c.io_bytes {
                put_delta(&mut cols[IO - 1], v, prev.io);
                prev.io = v;
            }
        }
        if t.counters.is_some() {
            prev.counters = t.counters;
        }
        if t.name.is_some() {
            prev.name.clone_from(&t.name);
        }
        prev.frames = Some(Arc::clone(&t.frames));
        self.base.threads.insert(key, prev);
    }
}

/// A code object: function name, file name, short file name, first line.
type Code = (Arc<str>, Arc<str>, Option<Arc<str>>, u32);

/// Reads one segment's payload back into the events it was made of.
#[derive(Default)]
pub struct Decoder {
    strings: Vec<Arc<str>>,
    codes: Vec<Code>,
    stacks: Vec<Arc<[Frame]>>,
    base: Baselines,
}

/// What a segment held, in order.
#[derive(Debug)]
pub enum Recorded {
    /// A process attached in this segment.
    Attached(TargetInfo),
    /// A process attached before this segment (skip it if already known).
    Known(TargetInfo),
    /// One tick.
    Tick(Tick),
    /// A process exited.
    Exited(u32),
    /// A process's sampler stopped with this message.
    Panicked(u32, String),
}

impl Decoder {
    /// Decodes a whole payload; on damage, the events read before it and the error.
    pub fn decode(payload: &[u8]) -> (Vec<Recorded>, Option<RecordError>) {
        let mut decoder = Self::default();
        let (mut r, mut c) = match split_columns(payload) {
            Ok(columns) => columns,
            Err(e) => return (Vec::new(), Some(e)),
        };
        let mut events = Vec::new();
        while !r.at_end() {
            match decoder.event(&mut r, &mut c) {
                Ok(event) => events.push(event),
                Err(e) => return (events, Some(e)),
            }
        }
        (events, None)
    }

    fn event(&mut self, r: &mut Reader, c: &mut Cols) -> Result<Recorded, RecordError> {
        Ok(match r.u8()? {
            ATTACHED => Recorded::Attached(self.target(r)?),
            KNOWN => Recorded::Known(self.target(r)?),
            TICK => Recorded::Tick(self.tick(r, c)?),
            EXITED => Recorded::Exited(r.u32()?),
            PANICKED => {
                let pid = r.u32()?;
                Recorded::Panicked(pid, self.string(r)?.to_string())
            }
            _ => return Err(RecordError::Damaged("unknown record")),
        })
    }

    fn target(&mut self, r: &mut Reader) -> Result<TargetInfo, RecordError> {
        let pid = r.u32()?;
        let parent = r.u32()?;
        let start_ticks = r.u64()?;
        let python_version = self.string(r)?.to_string();
        let n = r.count(1)?;
        let mut cmdline = Vec::with_capacity(n);
        for _ in 0..n {
            cmdline.push(self.string(r)?.to_string());
        }
        Ok(TargetInfo {
            pid,
            ppid: parent,
            cmdline,
            python_version,
            start_ticks,
        })
    }

    fn string(&mut self, r: &mut Reader) -> Result<Arc<str>, RecordError> {
        let id = r.u64()?;
        if let Some(s) = self.strings.get(id as usize) {
            return Ok(Arc::clone(s));
        }
        if id != self.strings.len() as u64 {
            return Err(RecordError::Damaged("string reference out of range"));
        }
        let s: Arc<str> = r.str(MAX_STRING)?.into();
        self.strings.push(Arc::clone(&s));
        Ok(s)
    }

    fn code(&mut self, r: &mut Reader) -> Result<usize, RecordError> {
        let id = r.u64()?;
        if (id as usize) < self.codes.len() {
            return Ok(id as usize);
        }
        if id != self.codes.len() as u64 {
            return Err(RecordError::Damaged("code reference out of range"));
        }
        let name = self.string(r)?;
        let file = self.string(r)?;
        let flag = r.u8()?;
        if flag > 3 {
            return Err(RecordError::Damaged("bad short file flag"));
        }
        let short = if flag & 1 == 1 {
            Some(self.string(r)?)
        } else {
            None
        };
        // Format 1 has no first lines (flags 0 and 1).
        let first_line = if flag & 2 == 2 { r.u32()? } else { 0 };
        self.codes.push((name, file, short, first_line));
        Ok(id as usize)
    }

    fn stack(&mut self, r: &mut Reader) -> Result<Arc<[Frame]>, RecordError> {
        let id = r.u64()?;
        if id == 0 {
            return Ok(Arc::from(Vec::new()));
        }
        let index = (id - 1) as usize;
        if let Some(s) = self.stacks.get(index) {
            return Ok(Arc::clone(s));
        }
        if index != self.stacks.len() {
            return Err(RecordError::Damaged("stack reference out of range"));
        }
        let n = r.count(2)?;
        let mut frames = Vec::with_capacity(n);
        for _ in 0..n {
            let code = self.code(r)?;
            let line = r.u32()?;
            let (name, file, short, first_line) = &self.codes[code];
            frames.push(Frame {
                name: Arc::clone(name),
                filename: Arc::clone(file),
                short_filename: short.clone(),
                line,
                first_line: *first_line,
            });
        }
        let frames: Arc<[Frame]> = frames.into();
        self.stacks.push(Arc::clone(&frames));
        Ok(frames)
    }

    #[expect(
        clippy::many_single_char_names,
        reason = "r and c are the two readers throughout"
    )]
    fn tick(&mut self, r: &mut Reader, c: &mut Cols) -> Result<Tick, RecordError> {
        let at = r.delta(self.base.at_ns)?;
        let interval = r.delta(self.base.interval_ns)?;
        self.base.at_ns = at;
        self.base.interval_ns = interval;
        let skipped = r.u32()?;
        let flags = r.u64()?;
        let pid = r.u32()?;
        let mut prev = self.base.procs.get(&pid).copied().unwrap_or_default();
        let counters = if flags & PROC_COUNTERS != 0 {
            let b = prev.counters;
            let p = &mut c[PROC - 1];
            let counters = ProcCounters {
                cpu_ticks: p.delta(b.cpu_ticks)?,
                minor_faults: p.delta(b.minor_faults)?,
                major_faults: p.delta(b.major_faults)?,
                rss_bytes: p.delta(b.rss_bytes)?,
                read_bytes: optional(p, flags & PROC_READ != 0, b.read_bytes.unwrap_or(0))?,
                write_bytes: optional(p, flags & PROC_WRITE != 0, b.write_bytes.unwrap_or(0))?,
            };
            prev.counters = counters;
            Some(counters)
        } else {
            None
        };
        let memory = if flags & MEMORY != 0 {
            let b = prev.memory;
            let p = &mut c[PROC - 1];
            let mut m = MemoryCounters {
                swap_bytes: p.delta(b.swap_bytes)?,
                hwm_bytes: p.delta(b.hwm_bytes)?,
                rss_anon_bytes: p.delta(b.rss_anon_bytes)?,
                rss_file_bytes: p.delta(b.rss_file_bytes)?,
                rss_shmem_bytes: p.delta(b.rss_shmem_bytes)?,
                rollup: None,
            };
            if flags & ROLLUP != 0 {
                m.rollup = Some(SmapsRollup {
                    pss_bytes: p.u64()?,
                    uss_bytes: p.u64()?,
                });
            }
            prev.memory = m;
            Some(m)
        } else {
            None
        };
        let stack_error = if flags & STACK_ERROR != 0 {
            Some(self.string(r)?.to_string())
        } else {
            None
        };
        let gil_switches = if flags & GIL_SWITCHES != 0 {
            let n = c[PROC - 1].delta(prev.gil_switches)?;
            prev.gil_switches = n;
            Some(n)
        } else {
            None
        };
        let tasks = if flags & TASKS != 0 {
            Some(self.tasks(r)?)
        } else {
            None
        };
        self.base.procs.insert(pid, prev);
        // Each thread has at least two bytes in the thread-flags column.
        let n = r.u64()?;
        if n.saturating_mul(2) > c[THREAD_FLAGS - 1].rest().len() as u64 {
            return Err(RecordError::Damaged("thread count larger than the payload"));
        }
        let n = n as usize;
        let mut threads = Vec::with_capacity(n);
        let mut last_tid = 0;
        for _ in 0..n {
            let tid = c[TID - 1].delta(last_tid)?;
            last_tid = tid;
            let tid = u32::try_from(tid).map_err(|_| RecordError::Damaged("tid out of range"))?;
            threads.push(self.thread(r, c, pid, tid)?);
        }
        Ok(Tick {
            at: Duration::from_nanos(at),
            interval: Duration::from_nanos(interval),
            skipped,
            resumed: flags & RESUMED != 0,
            process: ProcessTick {
                pid,
                counters,
                memory,
                threads,
                stack_error,
                exited: flags & PROC_EXITED != 0,
                gil_switches,
                tasks,
            },
        })
    }

    fn thread(
        &mut self,
        r: &mut Reader,
        c: &mut Cols,
        pid: u32,
        tid: u32,
    ) -> Result<ThreadTick, RecordError> {
        let key = (pid, tid);
        let mut prev = self.base.threads.remove(&key).unwrap_or_default();
        let flags = c[THREAD_FLAGS - 1].u64()?;
        let codes = c[THREAD_FLAGS - 1].u8()?;
        let gil = gil_of(codes & 3);
        let activity = activity_of(codes >> 2)?;
        let stack_read = StackRead {
            rereads: if flags & REREAD != 0 {
                c[THREAD_FLAGS - 1].u8()?
            } else {
                0
            },
            dropped: flags & DROPPED != 0,
        };
        let running_task = if flags & RUNNING_TASK != 0 {
            Some(c[THREAD_FLAGS - 1].u64()?)
        } else {
            None
        };
        let name = match (flags & NAME != 0, flags & SAME_NAME != 0) {
            (false, _) => None,
            (true, true) => prev.name.clone(),
            (true, false) => Some(self.string(r)?),
        };
        let frames = match (flags & SAME_FRAMES != 0, &prev.frames) {
            (true, Some(frames)) => Arc::clone(frames),
            (true, None) => return Err(RecordError::Damaged("no previous stack")),
            (false, _) => self.stack(r)?,
        };
        let counters = match (flags & COUNTERS != 0, flags & SAME_COUNTERS != 0) {
            (false, _) => None,
            (true, true) => Some(
                prev.counters
                    .ok_or(RecordError::Damaged("no previous counters"))?,
            ),
            (true, false) => Some(thread_counters(c, flags, &mut prev)?),
        };
        if counters.is_some() {
            prev.counters = counters;
        }
        if name.is_some() {
            prev.name.clone_from(&name);
        }
        prev.frames = Some(Arc::clone(&frames));
        self.base.threads.insert(key, prev);
        Ok(ThreadTick {
            tid,
            name,
            is_python: flags & PYTHON != 0,
            gil,
            activity,
            frames,
            counters,
            stack_read,
            running_task,
        })
    }
}

/// The thread flags that say which counters `c` has (`same`: equal to the last ones).
fn counter_flags(c: &ThreadCounters, same: bool) -> u64 {
    let mut flags = COUNTERS;
    if same {
        flags |= SAME_COUNTERS;
    }
    let bit = |present: bool, flag: u64| if present { flag } else { 0 };
    flags |= bit(c.slow.is_some(), SLOW);
    flags |= bit(c.run_ns.is_some(), RUN_NS);
    flags |= bit(c.runqueue_wait_ns.is_some(), WAIT_NS);
    flags |= bit(c.syscall.is_some(), SYSCALL);
    flags |= bit(c.io_bytes.is_some(), IO_BYTES);
    let sub_micro = |v: Option<u64>| v.is_some_and(|v| v % 1000 != 0);
    flags |= bit(
        sub_micro(c.run_ns) || sub_micro(c.runqueue_wait_ns),
        SUB_MICRO,
    );
    flags |= bit(c.not_run_since_last_read, NOT_RUN);
    flags
        | match c.on_cpu {
            Some(true) => ON_CPU_TOLD | ON_CPU,
            Some(false) => ON_CPU_TOLD,
            None => 0,
        }
}

/// The column readers after the control one (index - 1).
type Cols<'a> = [Reader<'a>; COLUMNS - 1];

/// The control column and the others, from a payload's column table.
fn split_columns(payload: &[u8]) -> Result<(Reader<'_>, Cols<'_>), RecordError> {
    let mut head = Reader::new(payload);
    if head.u64()? != COLUMNS as u64 {
        return Err(RecordError::Damaged("unknown column layout"));
    }
    let mut lens = [0usize; COLUMNS];
    for len in &mut lens {
        *len = head.count(0)?;
    }
    let mut rest = head.rest();
    if lens.iter().sum::<usize>() != rest.len() {
        return Err(RecordError::Damaged(
            "column lengths do not match the payload",
        ));
    }
    let mut columns = lens.map(|len| {
        let (col, tail) = rest.split_at(len);
        rest = tail;
        Reader::new(col)
    });
    let control = std::mem::replace(&mut columns[CONTROL], Reader::new(&[]));
    let [_, others @ ..] = columns;
    Ok((control, others))
}

fn thread_counters(
    c: &mut Cols,
    flags: u64,
    prev: &mut ThreadPrev,
) -> Result<ThreadCounters, RecordError> {
    let b = prev.counters.unwrap_or_default();
    let r = &mut c[STATE - 1];
    let state = os_of(r.u8()?)?;
    let mut counters = ThreadCounters {
        state,
        start_ticks: r.delta(b.start_ticks)?,
        cpu_ticks: r.delta(b.cpu_ticks)?,
        minor_faults: r.delta(b.minor_faults)?,
        major_faults: r.delta(b.major_faults)?,
        not_run_since_last_read: flags & NOT_RUN != 0,
        on_cpu: (flags & ON_CPU_TOLD != 0).then_some(flags & ON_CPU != 0),
        ..ThreadCounters::default()
    };
    let sub_micro = flags & SUB_MICRO != 0;
    if flags & RUN_NS != 0 {
        counters.run_ns = Some(micros(&mut c[RUN - 1], b.run_ns.unwrap_or(0), sub_micro)?);
    }
    if flags & WAIT_NS != 0 {
        let before = b.runqueue_wait_ns.unwrap_or(0);
        counters.runqueue_wait_ns = Some(micros(&mut c[WAIT - 1], before, sub_micro)?);
    }
    if flags & SLOW != 0 {
        let r = &mut c[SLOW_COL - 1];
        let s = SlowThreadCounters {
            voluntary_ctxsw: r.delta(prev.slow.voluntary_ctxsw)?,
            involuntary_ctxsw: r.delta(prev.slow.involuntary_ctxsw)?,
            read_bytes: r.delta(prev.slow.read_bytes)?,
            write_bytes: r.delta(prev.slow.write_bytes)?,
        };
        prev.slow = s;
        counters.slow = Some(s);
    }
    if flags & SYSCALL != 0 {
        let r = &mut c[SYS - 1];
        let number = r.u64()?;
        let arg0 = r.delta(prev.arg0)?;
        prev.arg0 = arg0;
        counters.syscall = Some(Syscall { number, arg0 });
    }
    if flags & IO_BYTES != 0 {
        let io = c[IO - 1].delta(prev.io)?;
        prev.io = io;
        counters.io_bytes = Some(io);
    }
    Ok(counters)
}

/// A time in ns as a delta of whole µs, then (with `sub_micro`) its ns remainder.
fn put_micros(out: &mut Vec<u8>, now: u64, before: u64, sub_micro: bool) {
    put_delta(out, now / 1000, before / 1000);
    if sub_micro {
        put_u64(out, now % 1000);
    }
}

fn micros(r: &mut Reader, before: u64, sub_micro: bool) -> Result<u64, RecordError> {
    let us = r.delta(before / 1000)?;
    let rest = if sub_micro { r.u64()? } else { 0 };
    if rest >= 1000 {
        return Err(RecordError::Damaged("bad sub-microsecond part"));
    }
    Ok(us.wrapping_mul(1000).wrapping_add(rest))
}

fn optional(r: &mut Reader, present: bool, before: u64) -> Result<Option<u64>, RecordError> {
    present.then(|| r.delta(before)).transpose()
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn gil_code(g: GilState) -> u8 {
    match g {
        GilState::Held => 0,
        GilState::Waiting => 1,
        GilState::NotHeld => 2,
        GilState::Unknown => 3,
    }
}

fn gil_of(code: u8) -> GilState {
    match code {
        0 => GilState::Held,
        1 => GilState::Waiting,
        2 => GilState::NotHeld,
        _ => GilState::Unknown,
    }
}

fn activity_code(a: Activity) -> u8 {
    match a {
        Activity::HoldsGil => 0,
        Activity::WaitsGil => 1,
        Activity::Native => 2,
        Activity::Blocked => 3,
        Activity::Sleeping => 4,
        Activity::Unknown => 5,
    }
}

fn activity_of(code: u8) -> Result<Activity, RecordError> {
    Ok(match code {
        0 => Activity::HoldsGil,
        1 => Activity::WaitsGil,
        2 => Activity::Native,
        3 => Activity::Blocked,
        4 => Activity::Sleeping,
        5 => Activity::Unknown,
        _ => return Err(RecordError::Damaged("bad activity")),
    })
}

fn os_code(s: OsState) -> u8 {
    match s {
        OsState::Running => 0,
        OsState::Sleeping => 1,
        OsState::DiskSleep => 2,
        OsState::Stopped => 3,
        OsState::Dead => 4,
        OsState::Other => 5,
    }
}

fn os_of(code: u8) -> Result<OsState, RecordError> {
    Ok(match code {
        0 => OsState::Running,
        1 => OsState::Sleeping,
        2 => OsState::DiskSleep,
        3 => OsState::Stopped,
        4 => OsState::Dead,
        5 => OsState::Other,
        _ => return Err(RecordError::Damaged("bad thread state")),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::collect::tick::TaskTick;

    /// Events exercising every optional field, repeated stacks and a thread that vanishes.
    #[expect(
        clippy::too_many_lines,
        reason = "one hand-made recording that sets every field"
    )]
    pub(crate) fn sample_events(ticks: u32) -> Vec<SamplerEvent> {
        let frame = |name: &str, line| Frame {
            name: name.into(),
            filename: format!("/app/{name}.py").into(),
            short_filename: (line % 2 == 0).then(|| format!("{name}.py").into()),
            line,
            first_line: line.saturating_sub(2),
        };
        let hot: Arc<[Frame]> = vec![frame("work", 3), frame("<module>", 10)].into();
        let mut events = vec![SamplerEvent::Attached(TargetInfo {
            pid: 40,
            ppid: 1,
            cmdline: vec!["python3".into(), "job.py".into()],
            python_version: "3.12.1".into(),
            start_ticks: 123,
        })];
        let mut batch = Vec::new();
        for i in 0..ticks {
            let (i64_, slow) = (u64::from(i), i % 10 == 0);
            let threads = (0..3u32)
                .filter(|k| *k != 2 || i % 7 != 3)
                .map(|k| ThreadTick {
                    tid: 40 + k * 3,
                    name: (k != 1 || i > 2).then(|| format!("t{k}").into()),
                    is_python: k != 2,
                    gil: [GilState::Held, GilState::Waiting, GilState::Unknown][k as usize],
                    activity: [Activity::HoldsGil, Activity::Sleeping, Activity::Unknown]
                        [k as usize],
                    frames: match k {
                        0 => Arc::clone(&hot),
                        1 => vec![frame("wait", 5 + i % 3), frame("<module>", 10)].into(),
                        _ => Arc::from(Vec::new()),
                    },
                    counters: (k != 1 || i % 5 != 0).then(|| ThreadCounters {
                        state: if k == 0 {
                            OsState::Running
                        } else {
                            OsState::Sleeping
                        },
                        start_ticks: 100 + u64::from(k),
                        cpu_ticks: i64_ * u64::from(k == 0),
                        minor_faults: i64_ / 3,
                        major_faults: 0,
                        slow: slow.then_some(SlowThreadCounters {
                            voluntary_ctxsw: i64_,
                            involuntary_ctxsw: i64_ / 2,
                            read_bytes: i64_ * 4096,
                            write_bytes: 0,
                        }),
                        run_ns: (k != 2).then_some(i64_ * 9_999_937),
                        runqueue_wait_ns: (k == 0).then_some(i64_ * 17),
                        not_run_since_last_read: k == 1 && i % 2 == 0,
                        on_cpu: (k == 0).then_some(i % 3 != 0),
                        syscall: (k == 1).then_some(Syscall {
                            number: 202,
                            arg0: 0x7f00_1234_5678 + u64::from(i % 2) * 8,
                        }),
                        io_bytes: (k == 0).then_some(i64_ * 100),
                    }),
                    stack_read: StackRead {
                        rereads: u8::from(k == 0 && i % 4 == 1) * 3,
                        dropped: k == 0 && i % 9 == 5,
                    },
                    running_task: (k == 0 && i % 3 == 1).then_some(0x7f00_0000 + u64::from(i % 2)),
                })
                .collect();
            batch.push(Tick {
                at: Duration::from_nanos(10_000_123 * i64_),
                interval: Duration::from_millis(10),
                skipped: i % 11,
                resumed: i == 4,
                process: ProcessTick {
                    pid: 40,
                    tasks: (i % 10 == 2).then(|| {
                        vec![TaskTick {
                            id: 0x7f00_0000,
                            name: format!("worker-{}", i % 3).into(),
                            tid: (i % 20 == 2).then_some(40),
                            running: i % 20 == 12,
                            done: false,
                            frames: vec![frame("crunch_loop", 35), frame("sleep", 704 + i % 2)],
                            awaited_by: vec![0x7f00_0100, 0x7f00_0200],
                        }]
                        .into()
                    }),
                    counters: slow.then_some(ProcCounters {
                        cpu_ticks: i64_,
                        minor_faults: i64_ * 2,
                        major_faults: 1,
                        read_bytes: (i % 20 == 0).then_some(i64_ * 10),
                        write_bytes: Some(5),
                        rss_bytes: 50_000_000 - i64_ * 4096,
                    }),
                    memory: slow.then_some(MemoryCounters {
                        swap_bytes: 0,
                        hwm_bytes: 60_000_000,
                        rss_anon_bytes: 40_000_000 + i64_,
                        rss_file_bytes: 9_000_000,
                        rss_shmem_bytes: 0,
                        rollup: (i == 0).then_some(SmapsRollup {
                            pss_bytes: 45_000_000,
                            uss_bytes: 44_000_000,
                        }),
                    }),
                    threads,
                    stack_error: (i % 13 == 5).then(|| "torn \u{1b}[31m read".into()),
                    exited: false,
                    gil_switches: (i % 3 == 0).then_some(1000 + i64_),
                },
            });
            if batch.len() == 25 {
                events.push(SamplerEvent::Ticks(std::mem::take(&mut batch)));
            }
        }
        events.push(SamplerEvent::Ticks(batch));
        events.push(SamplerEvent::Panicked(41, "boom".into()));
        events.push(SamplerEvent::Exited(40));
        events
    }

    /// The events as the decoder gives them back, one per tick.
    fn flat(events: &[SamplerEvent]) -> Vec<String> {
        let mut out = Vec::new();
        for e in events {
            match e {
                SamplerEvent::Ticks(ticks) => out.extend(ticks.iter().map(|t| format!("{t:?}"))),
                other => out.push(format!("{other:?}")),
            }
        }
        out
    }

    fn flat_recorded(events: &[Recorded]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Recorded::Attached(info) => {
                    Some(format!("{:?}", SamplerEvent::Attached(info.clone())))
                }
                Recorded::Known(_) => None,
                Recorded::Tick(t) => Some(format!("{t:?}")),
                Recorded::Exited(pid) => Some(format!("{:?}", SamplerEvent::Exited(*pid))),
                Recorded::Panicked(pid, m) => {
                    Some(format!("{:?}", SamplerEvent::Panicked(*pid, m.clone())))
                }
            })
            .collect()
    }

    #[test]
    fn every_field_comes_back_exactly_across_segments() {
        let events = sample_events(200);
        let mut encoder = Encoder::default();
        let mut decoded = Vec::new();
        let mut segments = 0;
        for (i, event) in events.iter().enumerate() {
            encoder.push(event);
            // Segments end at odd places: baselines and tables must restart cleanly.
            if i % 3 == 1 {
                let (got, error) = Decoder::decode(&encoder.finish());
                assert_eq!(error, None);
                decoded.extend(got);
                segments += 1;
            }
        }
        let (got, error) = Decoder::decode(&encoder.finish());
        assert_eq!(error, None);
        decoded.extend(got);
        assert!(segments > 2);
        assert_eq!(flat_recorded(&decoded), flat(&events));
        // Every segment after the first restates the process it continues.
        assert!(decoded
            .iter()
            .any(|e| matches!(e, Recorded::Known(t) if t.pid == 40)));
    }
}
