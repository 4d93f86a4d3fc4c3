//! asyncio tasks as the sampler hands them on: py-spy's reading (patches 21 and 28, Python 3.11+)
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

/// What the sampler keeps of asyncio tasks between ticks.
#[derive(Debug, Default)]
pub struct TaskReading {
    /// Slow ticks until the list is read again.
    pub due_in: u32,
    /// The last list read.
    pub last: Option<Arc<[TaskTick]>>,
    /// Root the stacks of code running in a task at the task (`--async`).
    pub rooted: bool,
    /// Each loop thread's running task, read right after this tick's stacks.
    pub running: Vec<(u32, u64)>,
}

impl TaskReading {
    /// Reading for a sampler; `rooted`: `--async`.
    pub fn new(rooted: bool) -> Self {
        Self {
            rooted,
            ..Self::default()
        }
    }

    /// Roots each thread's stack at the task it runs, where the last list knows the task.
    pub fn root_stacks(&self, threads: &mut [super::tick::ThreadTick]) {
        let Some(list) = &self.last else { return };
        for t in threads {
            if let Some(frames) = t
                .running_task
                .and_then(|task| rooted_at_task(&t.frames, task, list))
            {
                t.frames = frames;
            }
        }
    }
}

/// Most tasks of an awaiter chain shown above a task's coroutine.
const MAX_AWAITERS: usize = 32;

/// `frames` (innermost first) of a thread running task `running`, rooted at the task: the
/// frames outside the task's outermost coroutine (the event loop's: `run_forever`,
/// `_run_once`, `Handle._run`, `Task.__step`) give way to the task and the tasks awaiting
/// it, outermost last (`Task-1 > fan-out > worker-b > crunch_loop > ...` read outermost
/// first). `None` (left as read) when the task or its coroutine's frame is not found: a task
/// newer than the last list.
pub fn rooted_at_task(
    frames: &Arc<[Frame]>,
    running: u64,
    list: &[TaskTick],
) -> Option<Arc<[Frame]>> {
    let task = list.iter().find(|t| t.id == running)?;
    let coroutine = task.frames.first()?;
    let cut = frames
        .iter()
        .rposition(|f| f.name == coroutine.name && f.filename == coroutine.filename)?;
    let mut out: Vec<Frame> = frames[..=cut].to_vec();
    let mut at = task;
    let mut seen = vec![task.id];
    loop {
        out.push(task_frame(at));
        let Some(parent) = at
            .awaited_by
            .first()
            .and_then(|by| list.iter().find(|t| t.id == *by))
        else {
            break;
        };
        if seen.contains(&parent.id) || seen.len() >= MAX_AWAITERS {
            break;
        }
        seen.push(parent.id);
        at = parent;
    }
    Some(out.into())
}

/// A task as a frame of a rooted stack: its name, in the file `<task>`.
fn task_frame(task: &TaskTick) -> Frame {
    Frame {
        name: Arc::clone(&task.name),
        filename: Arc::from("<task>"),
        short_filename: None,
        line: 0,
        first_line: 0,
    }
}
