//! The decoder: one segment's payload back into the events it was made of.

use super::columns::{activity_of, gil_of, optional, split_columns, thread_counters, Cols};
use super::{
    Baselines, ATTACHED, COUNTERS, DROPPED, EXITED, GIL_SWITCHES, KNOWN, MAX_STRING, MEMORY, NAME,
    PANICKED, PROC, PROC_COUNTERS, PROC_EXITED, PROC_READ, PROC_WRITE, PYTHON, REREAD, RESUMED,
    ROLLUP, RUNNING_TASK, SAME_COUNTERS, SAME_FRAMES, SAME_NAME, STACK_ERROR, TASKS, THREAD_FLAGS,
    TICK, TID,
};
use crate::collect::tick::{
    Frame, MemoryCounters, ProcCounters, ProcessTick, SmapsRollup, StackRead, ThreadTick, Tick,
};
use crate::collect::TargetInfo;
use crate::record::wire::Reader;
use crate::record::RecordError;
use std::sync::Arc;
use std::time::Duration;

/// A code object: function name, file name, short file name, first line.
pub(super) type Code = (Arc<str>, Arc<str>, Option<Arc<str>>, u32);

/// Reads one segment's payload back into the events it was made of.
#[derive(Default)]
pub struct Decoder {
    pub(super) strings: Vec<Arc<str>>,
    pub(super) codes: Vec<Code>,
    pub(super) stacks: Vec<Arc<[Frame]>>,
    pub(super) base: Baselines,
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

    pub(super) fn event(&mut self, r: &mut Reader, c: &mut Cols) -> Result<Recorded, RecordError> {
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

    pub(super) fn target(&mut self, r: &mut Reader) -> Result<TargetInfo, RecordError> {
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

    pub(super) fn string(&mut self, r: &mut Reader) -> Result<Arc<str>, RecordError> {
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

    pub(super) fn code(&mut self, r: &mut Reader) -> Result<usize, RecordError> {
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

    pub(super) fn stack(&mut self, r: &mut Reader) -> Result<Arc<[Frame]>, RecordError> {
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
    pub(super) fn tick(&mut self, r: &mut Reader, c: &mut Cols) -> Result<Tick, RecordError> {
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

    pub(super) fn thread(
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
