//! asyncio tasks as the sampler hands them on: py-spy's reading (patch 21, Python 3.14+)
//! with every string sanitised and addresses as ids.
use std::sync::Arc;

use super::sanitize::sanitize;
use super::tick::{Frame, TaskTick};

/// Tasks read at most once per this many slow ticks (~10 Hz): about once a second.
pub const TASKS_EVERY_SLOW_TICKS: u32 = 10;

/// Slow ticks to wait after a task-list read that took `spent`: so that reading lists takes
/// at most ~1 % of the time (a list of thousands that takes 30 ms is read every 3 s), and
/// never more often than [`TASKS_EVERY_SLOW_TICKS`].
pub fn slow_ticks_after(spent: std::time::Duration) -> u32 {
    // 100 x the read's time, in slow ticks of ~100 ms.
    let ticks = (spent.as_secs_f64() * 1000.0).ceil().min(6000.0);
    TASKS_EVERY_SLOW_TICKS.max(ticks as u32)
}

/// py-spy's task list as ticks carry it; `None` when there is none to read.
pub fn convert(
    read: Result<Option<py_spy::AsyncioTasks>, anyhow::Error>,
) -> Option<Arc<[TaskTick]>> {
    // A failed read (the list changed under the reader) is a tick without a list.
    let tasks = read.ok()??;
    Some(tasks.tasks.iter().map(task).collect())
}

fn task(t: &py_spy::AsyncTask) -> TaskTick {
    TaskTick {
        id: t.id as u64,
        name: sanitize(&t.name).into(),
        tid: t.native_thread_id.and_then(|id| u32::try_from(id).ok()),
        running: t.running,
        done: t.done,
        // py-spy gives the chain innermost first, as `asyncio ps` prints it.
        frames: t
            .frames
            .iter()
            .rev()
            .map(|f| Frame {
                name: sanitize(&f.name).into(),
                filename: sanitize(&f.filename).into(),
                short_filename: None,
                line: u32::try_from(f.line).unwrap_or(0),
                first_line: 0,
            })
            .collect(),
        awaited_by: t.awaited_by.iter().map(|&a| a as u64).collect(),
    }
}

/// `list` with each task's thread id mapped by `ours` (the target's PID namespace to
/// hptop's; a thread not mapped is shown as exited).
pub fn in_our_namespace(
    list: &Arc<[TaskTick]>,
    ours: impl Fn(u32) -> Option<u32>,
) -> Arc<[TaskTick]> {
    if list
        .iter()
        .all(|t| t.tid.is_none_or(|tid| ours(tid) == Some(tid)))
    {
        return Arc::clone(list);
    }
    list.iter()
        .map(|t| TaskTick {
            tid: t.tid.and_then(&ours),
            ..t.clone()
        })
        .collect()
}
