//! asyncio tasks in recordings (format 3): the task list on the ticks it was read, in the
//! control stream after the process's figures (process flag `TASKS`), and each thread's
//! running task in the thread-flags column (thread flag `RUNNING_TASK`). Files of formats 1
//! and 2 set neither flag: they read as before, without tasks.
use crate::record::RecordError;
use std::sync::Arc;

use super::{Decoder, Encoder};
use crate::collect::tick::{Frame, TaskTick};
use crate::record::wire::{put_u64, Reader};

/// Task flags.
const RUNNING: u64 = 1;
const DONE: u64 = 2;

impl Encoder {
    /// A task list: count, then per task its id, name, thread (0: none), flags, frames (a
    /// stack reference: stacks repeat from one list to the next) and awaiters.
    pub(super) fn put_tasks(&mut self, tasks: &[TaskTick]) {
        put_u64(&mut self.out, tasks.len() as u64);
        for t in tasks {
            put_u64(&mut self.out, t.id);
            self.put_string(&t.name);
            put_u64(&mut self.out, u64::from(t.tid.unwrap_or(0)));
            let flags = if t.running { RUNNING } else { 0 } | if t.done { DONE } else { 0 };
            put_u64(&mut self.out, flags);
            let frames: Arc<[Frame]> = Arc::from(t.frames.as_slice());
            self.put_stack(&frames);
            put_u64(&mut self.out, t.awaited_by.len() as u64);
            for &a in &t.awaited_by {
                put_u64(&mut self.out, a);
            }
        }
    }
}

impl Decoder {
    /// A task list written by [`Encoder::put_tasks`].
    pub(super) fn tasks(&mut self, r: &mut Reader) -> Result<Arc<[TaskTick]>, RecordError> {
        // Each task takes at least 6 bytes.
        let n = r.count(6)?;
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.u64()?;
            let name = self.string(r)?;
            let tid = r.u32()?;
            let flags = r.u64()?;
            let frames = self.stack(r)?.to_vec();
            let awaiters = r.count(1)?;
            let mut awaited_by = Vec::with_capacity(awaiters);
            for _ in 0..awaiters {
                awaited_by.push(r.u64()?);
            }
            tasks.push(TaskTick {
                id,
                name,
                tid: (tid != 0).then_some(tid),
                running: flags & RUNNING != 0,
                done: flags & DONE != 0,
                frames,
                awaited_by,
            });
        }
        Ok(tasks.into())
    }
}
