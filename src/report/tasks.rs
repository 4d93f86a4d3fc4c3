//! asyncio tasks in reports: the JSON report's `processes[].tasks[]` and the text report's
//! Tasks section (definitions: docs/figures.md, "asyncio tasks").
use std::fmt::Write as _;

use serde::Serialize;

use crate::fmt;
use crate::model::snapshot::{ProcessSnapshot, TaskRow};

/// One task of the JSON report.
#[derive(Debug, Serialize)]
pub struct TaskJson {
    /// The task object's address, `0x…` (as `python -m asyncio ps` prints it).
    pub id: String,
    pub name: String,
    /// `running`, `waiting` or `done`, as listed.
    pub state: &'static str,
    /// OS thread id of its event loop; `null` when that thread exited.
    pub thread: Option<u32>,
    /// Its coroutine chain down to what it awaits, outermost first.
    pub frames: Vec<TaskFrameJson>,
    /// Ids of the tasks and futures awaiting it.
    pub awaited_by: Vec<String>,
    /// Ticks at which its thread ran it.
    pub samples: u64,
    /// Its share of its thread's on-CPU seconds: each span's, split among the ticks seen on
    /// a CPU (docs/figures.md, "asyncio tasks").
    pub cpu_s: f64,
    /// Share of `samples` at which its thread held the GIL.
    pub gil_held_percent: f64,
}

/// One frame of a task's chain.
#[derive(Debug, Serialize)]
pub struct TaskFrameJson {
    pub name: String,
    pub filename: String,
    /// The line it is at (its await point when suspended).
    pub line: u32,
}

/// Tasks no longer listed: how many, and their figures.
#[derive(Debug, Serialize)]
pub struct TasksFinishedJson {
    pub count: u64,
    pub samples: u64,
    pub cpu_s: f64,
}

/// `0x…` of a task id.
fn id(task: u64) -> String {
    format!("{task:#x}")
}

/// The process's tasks for the JSON report; `None` when no task list was read.
pub fn json(p: &ProcessSnapshot) -> Option<Vec<TaskJson>> {
    let tasks = p.tasks.as_ref()?;
    Some(
        tasks
            .iter()
            .map(|t| TaskJson {
                id: id(t.id),
                name: t.name.clone(),
                state: t.state,
                thread: t.tid,
                frames: t
                    .frames
                    .iter()
                    .map(|f| TaskFrameJson {
                        name: f.name.to_string(),
                        filename: f.filename.to_string(),
                        line: f.line,
                    })
                    .collect(),
                awaited_by: t.awaited_by.iter().map(|&a| id(a)).collect(),
                samples: t.figures.samples,
                cpu_s: t.figures.cpu_s,
                gil_held_percent: t.figures.gil_held_percent(),
            })
            .collect(),
    )
}

/// The finished tasks' line of the JSON report, beside `tasks`.
pub fn finished_json(p: &ProcessSnapshot) -> Option<TasksFinishedJson> {
    p.tasks.as_ref()?;
    let (count, f) = &p.tasks_finished;
    Some(TasksFinishedJson {
        count: *count,
        samples: f.samples,
        cpu_s: f.cpu_s,
    })
}

/// Tasks shown in the text report at most (the JSON report has them all).
const TEXT_ROWS: usize = 30;

/// The text report's Tasks section; nothing when no task list was read.
pub fn render_text(out: &mut String, p: &ProcessSnapshot) {
    let Some(tasks) = &p.tasks else {
        // An asyncio program on an interpreter that publishes no task list: say so once.
        let older = p.python_minor().is_some_and(|m| m < 11);
        if older && p.functions.iter().any(|f| f.filename.contains("asyncio")) {
            let _ = writeln!(
                out,
                "\nTasks: the per-task view needs Python 3.11+ (this is {}), whose asyncio keeps a task list hptop reads.",
                p.python_version
            );
        }
        return;
    };
    let cpu = p.tasks_cpu_s();
    let _ = writeln!(
        out,
        "\nTasks (asyncio): {} listed; CPU% is each task's share of the CPU its loop threads spent in tasks",
        fmt::count(tasks.len() as u64)
    );
    let _ = writeln!(
        out,
        "    CPU%   CPU TIME  SAMPLES   GIL%  STATE    TASK                   AT"
    );
    for t in tasks.iter().take(TEXT_ROWS) {
        let _ = writeln!(
            out,
            "  {:>6} {:>10} {:>8} {:>6}  {:<8} {:<22} {}",
            fmt::percent(t.figures.cpu_percent_of(cpu)),
            fmt::seconds(t.figures.cpu_s),
            fmt::count(t.figures.samples),
            fmt::percent(t.figures.gil_held_percent()),
            t.state,
            fmt::truncate(&t.name, 22),
            at(t),
        );
    }
    if tasks.len() > TEXT_ROWS {
        let _ = writeln!(out, "  … {} more in --format json", tasks.len() - TEXT_ROWS);
    }
    let (count, f) = &p.tasks_finished;
    if *count > 0 {
        let _ = writeln!(
            out,
            "  {} finished tasks: {} CPU, {}",
            fmt::count(*count),
            fmt::seconds(f.cpu_s),
            fmt::counted(f.samples, "sample"),
        );
    }
}

/// Where a task is: its innermost frame (what it awaits or runs), with its caller.
fn at(t: &TaskRow) -> String {
    let mut frames = t.frames.iter().rev();
    match (frames.next(), frames.next()) {
        (Some(leaf), Some(caller)) => {
            format!("{} <- {} (line {})", leaf.name, caller.name, caller.line)
        }
        (Some(leaf), None) => format!("{} (line {})", leaf.name, leaf.line),
        _ => String::from("-"),
    }
}
