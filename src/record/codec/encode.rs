//! The encoder: sampler events into one segment's payload, strings, code objects and stacks
//! interned, counters as deltas from the same thread's previous tick.

use super::columns::{activity_code, counter_flags, duration_ns, gil_code, os_code, put_micros};
use super::{
    Baselines, ATTACHED, COLUMNS, DROPPED, EXITED, GIL_SWITCHES, IO, KNOWN, MEMORY, NAME, PANICKED,
    PROC, PROC_COUNTERS, PROC_EXITED, PROC_READ, PROC_WRITE, PYTHON, REREAD, RESUMED, ROLLUP, RUN,
    RUNNING_TASK, SAME_COUNTERS, SAME_FRAMES, SAME_NAME, SLOW_COL, STACK_ERROR, STATE, SUB_MICRO,
    SYS, TASKS, THREAD_FLAGS, TICK, TID, WAIT,
};
use crate::collect::tick::{Frame, ThreadTick, Tick};
use crate::collect::{SamplerEvent, TargetInfo};
use crate::record::wire::{put_delta, put_str, put_u64};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
pub struct Encoder {
    /// The control column (records, references, definitions).
    pub(super) out: Vec<u8>,
    /// The other columns (index - 1).
    pub(super) cols: [Vec<u8>; COLUMNS - 1],
    pub(super) strings: HashMap<String, u64>,
    pub(super) codes: HashMap<(u64, u64, u64, u32), u64>,
    pub(super) stacks: HashMap<Arc<[Frame]>, u64>,
    pub(super) base: Baselines,
    /// Processes attached and not exited: repeated at the start of every segment.
    pub(super) live: HashMap<u32, TargetInfo>,
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

    pub(super) fn put_target(&mut self, info: &TargetInfo) {
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
    pub(super) fn put_string(&mut self, s: &str) {
        if let Some(&id) = self.strings.get(s) {
            put_u64(&mut self.out, id);
            return;
        }
        let id = self.strings.len() as u64;
        put_u64(&mut self.out, id);
        put_str(&mut self.out, s);
        self.strings.insert(s.to_owned(), id);
    }

    pub(super) fn string_id(&mut self, s: &str) -> u64 {
        self.put_string(s);
        self.strings.get(s).copied().unwrap_or_default()
    }

    /// A stack reference: 0 for none, id + 1, or the next id + 1 followed by its frames.
    pub(super) fn put_stack(&mut self, frames: &Arc<[Frame]>) {
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
    pub(super) fn put_code(&mut self, frame: &Frame) {
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

    pub(super) fn put_tick(&mut self, tick: &Tick) {
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

    pub(super) fn put_thread(&mut self, pid: u32, t: &ThreadTick) {
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
