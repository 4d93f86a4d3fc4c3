//! `App`: view state and the latest snapshot; `apply` turns actions into state changes and
//! effects for the event loop. Selection is by identity (function key, tid), not row index,
//! so rows can re-sort under the cursor without the selection jumping.

use std::cmp::Ordering;

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::keymap::{self, Action};
use crate::model::functions::Credited;
use crate::model::snapshot::{FunctionDetail, ProcessSnapshot, SnapshotQuery, WorkerRow};

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pane {
    /// The functions table.
    #[default]
    Functions,
    /// The threads table.
    Threads,
    /// The workers table (one row per process, with `--subprocesses`).
    Workers,
}

/// Columns of the functions table, in the order `>` walks them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortColumn {
    /// `%Own` (and `OwnTime`: the same order).
    #[default]
    Own,
    /// `%Total` (and `TotalTime`).
    Total,
    /// The kernel counter column (`c` picks which counter), as a rate per second.
    Counter,
    /// Function name.
    Name,
}

/// What the export key (`e`) writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// The JSON report (with stacks) and an SVG flame graph.
    #[default]
    JsonAndFlamegraph,
    /// speedscope's file format.
    Speedscope,
    /// Folded stacks.
    Collapsed,
    /// pprof (gzipped profile.proto).
    Pprof,
}

impl ExportFormat {
    /// The next format (`E`).
    fn next(self) -> Self {
        match self {
            Self::JsonAndFlamegraph => Self::Speedscope,
            Self::Speedscope => Self::Collapsed,
            Self::Collapsed => Self::Pprof,
            Self::Pprof => Self::JsonAndFlamegraph,
        }
    }

    /// As the status line names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::JsonAndFlamegraph => "JSON report + flame graph SVG",
            Self::Speedscope => "speedscope",
            Self::Collapsed => "collapsed stacks",
            Self::Pprof => "pprof",
        }
    }
}

/// The kernel counter the functions table shows and ranks by, credited to the innermost
/// function (or line) and shown per second of the view's window.
pub use crate::model::functions::Counter as CounterKind;

/// How the functions pane shows a counter.
impl CounterKind {
    fn next(self) -> Self {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    /// Column title.
    pub fn label(self) -> &'static str {
        match self {
            Self::Cpu => "CPU%",
            Self::MinorFaults => "minflt/s",
            Self::MajorFaults => "majflt/s",
            Self::VoluntaryCtxsw => "vcsw/s",
            Self::InvoluntaryCtxsw => "icsw/s",
            Self::Io => "IO/s",
        }
    }

    /// This counter of `c`, per second over `window_s` (CPU: percent of one core).
    pub fn rate(self, c: &Credited, window_s: f64) -> f64 {
        if window_s <= 0.0 {
            return 0.0;
        }
        let scale = if self == Self::Cpu { 100.0 } else { 1.0 };
        self.of(c) * scale / window_s
    }

    /// `rate` as the column shows it.
    pub fn format(self, rate: f64) -> String {
        match self {
            _ if rate <= 0.0 => String::new(),
            Self::Cpu => format!("{rate:.1}"),
            Self::Io => crate::fmt::bytes(rate.round() as u64),
            _ if rate < 10.0 => format!("{rate:.1}"),
            _ => format!("{rate:.0}"),
        }
    }
}

impl SortColumn {
    const ALL: [SortColumn; 4] = [Self::Own, Self::Total, Self::Counter, Self::Name];

    fn step(self, forward: bool) -> Self {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        let n = Self::ALL.len();
        Self::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }

    /// Column title.
    pub fn label(self) -> &'static str {
        match self {
            Self::Own => "%Own",
            Self::Total => "%Total",
            Self::Counter => "counter",
            Self::Name => "Function",
        }
    }
}

/// What the user has chosen to see.
#[derive(Debug, Clone, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent on/off view toggles, one per key"
)]
pub struct ViewState {
    /// Pane with the keyboard.
    pub focus: Pane,
    /// Sort column of the functions table.
    pub sort: SortColumn,
    /// The counter the functions table shows.
    pub counter: CounterKind,
    /// What `e` writes.
    pub export_format: ExportFormat,
    /// Reverse the sort.
    pub reverse: bool,
    /// Text filter on function name and file.
    pub filter: String,
    /// The filter is being typed.
    pub editing_filter: bool,
    /// Sampling is paused.
    pub paused: bool,
    /// One row per line instead of per function.
    pub by_line: bool,
    /// The functions pane shows asyncio tasks.
    pub show_tasks: bool,
    /// The task selected in the tasks view (by id).
    pub selected_task: Option<u64>,
    /// Functions of this task only (Enter on a task; Esc: all again).
    pub task_focus: Option<u64>,
    /// The help overlay is shown.
    pub show_help: bool,
    /// First line of the help shown (it scrolls when taller than the screen).
    pub help_scroll: usize,
    /// Key of the selected function row.
    pub selected_function: Option<String>,
    /// Tid of the selected thread.
    pub selected_thread: Option<u32>,
    /// Functions of this thread only.
    pub thread_focus: Option<u32>,
    /// Count idle threads in function figures.
    pub include_idle: bool,
    /// What function shares count.
    pub mode: crate::model::snapshot::Mode,
    /// Show the last second's figures instead of the whole session's.
    pub windowed: bool,
    /// Timeline over the whole session instead of the recent seconds.
    pub zoomed_out: bool,
    /// The detail pane of the selected function is shown.
    pub show_detail: bool,
    /// The process every pane shows (the target when `None`).
    pub process: Option<u32>,
    /// All processes merged into one view (pools run the same code).
    pub merged: bool,
}

/// One row of the functions table.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionLine {
    /// Identity for the selection.
    pub key: String,
    /// Function name.
    pub name: String,
    /// `file:line`.
    pub location: String,
    /// Own samples.
    pub own_samples: u64,
    /// Total samples.
    pub total_samples: u64,
    /// Own share in percent.
    pub own_percent: f64,
    /// Total share in percent.
    pub total_percent: f64,
    /// Own time in seconds.
    pub own_s: f64,
    /// Total time in seconds.
    pub total_s: f64,
    /// The chosen counter, per second of the window, credited while innermost.
    pub counter_rate: f64,
}

/// What the event loop must do after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond a redraw.
    None,
    /// Leave.
    Quit,
    /// Forget all figures.
    Reset,
    /// Pause (true) or resume sampling.
    Pause(bool),
    /// Suspend hptop.
    Suspend,
    /// The query changed: rebuild the snapshot now.
    Requery,
    /// Write the view (window, mode, focus) to files.
    Export,
}

/// The TUI's whole state.
#[derive(Debug, Default)]
pub struct App {
    /// View state.
    pub view: ViewState,
    /// Latest figures.
    pub snapshot: ProcessSnapshot,
    /// One-line status (errors, notices).
    pub status: Option<String>,
    /// When a passing notice in `status` gives the line back (to the GIL verdict or keys).
    pub status_until: Option<std::time::Instant>,
    /// hptop's own CPU use over the last second, percent of one core.
    pub hptop_cpu_percent: f64,
    /// Requested sampling rate.
    pub rate_hz: f64,
    /// Seconds since the target started, when known.
    pub target_uptime_s: Option<f64>,
    /// Detail of the selected function, when the detail pane is shown.
    pub detail: Option<FunctionDetail>,
    /// Source lines of the detailed function's file, when readable (shared, not copied,
    /// at each redraw).
    pub source: Option<std::sync::Arc<[String]>>,
    /// Styles.
    pub theme: super::theme::Theme,
    /// Something changed since the last draw.
    pub dirty: bool,
    /// One row per process of the family (the target first).
    pub workers: Vec<WorkerRow>,
    /// Following subprocesses: the workers pane is shown.
    pub follow: bool,
    /// The view is a replay of a recording (its help and keys differ).
    pub replay: bool,
}

impl App {
    /// A new app showing `snapshot`.
    pub fn new(
        snapshot: ProcessSnapshot,
        rate_hz: f64,
        include_idle: bool,
        mode: crate::model::snapshot::Mode,
    ) -> Self {
        Self {
            snapshot,
            rate_hz,
            view: ViewState {
                include_idle,
                mode,
                ..ViewState::default()
            },
            dirty: true,
            theme: super::theme::Theme::from_env(),
            ..Self::default()
        }
    }

    /// The model query for the current view.
    pub fn query(&self) -> SnapshotQuery {
        SnapshotQuery {
            include_idle: self.view.include_idle,
            mode: self.view.mode,
            thread: self.view.thread_focus,
            task: self.view.task_focus,
            ..SnapshotQuery::default()
        }
    }

    /// Replaces the figures.
    pub fn set_snapshot(&mut self, snapshot: ProcessSnapshot) {
        self.snapshot = snapshot;
        self.dirty = true;
    }

    /// Rows of the functions table: by function or line, filtered, sorted.
    pub fn function_lines(&self) -> Vec<FunctionLine> {
        let filter = self.view.filter.to_lowercase();
        let mut rows: Vec<FunctionLine> = Vec::new();
        let kind = self.view.counter;
        let window_s = self.snapshot.duration_s;
        for f in &self.snapshot.functions {
            let file = f.short_filename.as_deref().unwrap_or(&f.filename);
            if !filter.is_empty()
                && !f.name.to_lowercase().contains(&filter)
                && !file.to_lowercase().contains(&filter)
            {
                continue;
            }
            if self.view.by_line && self.view.thread_focus.is_none() {
                for l in &f.lines {
                    rows.push(FunctionLine {
                        key: format!("{}\0{}\0{}", f.filename, f.name, l.line),
                        name: f.name.clone(),
                        location: f.location(l.line),
                        own_samples: l.own_samples,
                        total_samples: l.total_samples,
                        own_percent: l.own_percent,
                        total_percent: l.total_percent,
                        own_s: l.own_s,
                        total_s: l.total_s,
                        counter_rate: kind.rate(&l.credited, window_s),
                    });
                }
            } else {
                rows.push(FunctionLine {
                    key: format!("{}\0{}", f.filename, f.name),
                    name: f.name.clone(),
                    location: f.location(f.hottest_line),
                    own_samples: f.own_samples,
                    total_samples: f.total_samples,
                    own_percent: f.own_percent,
                    total_percent: f.total_percent,
                    own_s: f.own_s,
                    total_s: f.total_s,
                    counter_rate: kind.rate(&f.credited, window_s),
                });
            }
        }
        let sort = self.view.sort;
        rows.sort_by(|a, b| {
            let order = match sort {
                // By the very figure the column shows (in cpu mode, CPU seconds, not samples).
                SortColumn::Own => b
                    .own_percent
                    .total_cmp(&a.own_percent)
                    .then(b.own_samples.cmp(&a.own_samples)),
                SortColumn::Total => b
                    .total_percent
                    .total_cmp(&a.total_percent)
                    .then(b.total_samples.cmp(&a.total_samples)),
                SortColumn::Counter => b.counter_rate.total_cmp(&a.counter_rate),
                SortColumn::Name => a.name.cmp(&b.name),
            }
            .then(b.total_samples.cmp(&a.total_samples))
            .then_with(|| a.key.cmp(&b.key));
            if self.view.reverse {
                order.reverse()
            } else {
                order
            }
        });
        rows
    }

    /// Tids of the threads table, in display order.
    pub fn thread_tids(&self) -> Vec<u32> {
        self.snapshot
            .threads
            .iter()
            .filter(|t| t.is_python)
            .map(|t| t.tid)
            .collect()
    }

    /// Handles a key press.
    pub fn key(&mut self, key: KeyEvent, page: usize) -> Effect {
        self.dirty = true;
        if self.view.editing_filter {
            match key.code {
                KeyCode::Enter => self.view.editing_filter = false,
                KeyCode::Esc => {
                    self.view.editing_filter = false;
                    self.view.filter.clear();
                }
                KeyCode::Backspace => {
                    self.view.filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() => self.view.filter.push(c),
                _ => {}
            }
            return Effect::None;
        }
        // Esc closes what is open: the help, else the detail pane, else a task's focus.
        if key.code == KeyCode::Esc {
            if self.view.show_help {
                self.view.show_help = false;
            } else if self.view.show_detail {
                self.view.show_detail = false;
            } else if self.view.task_focus.take().is_some() {
                return Effect::Requery;
            }
            return Effect::None;
        }
        match keymap::action(key) {
            Some(action) => self.apply(action, page),
            None => Effect::None,
        }
    }

    /// Over the help, the moving keys scroll it (the list behind stays put); whether
    /// `action` was one of them.
    fn scroll_help(&mut self, action: Action, page: usize) -> bool {
        let scroll = &mut self.view.help_scroll;
        match action {
            Action::Up => *scroll = scroll.saturating_sub(1),
            Action::Down => *scroll += 1,
            Action::PageUp => *scroll = scroll.saturating_sub(page),
            Action::PageDown => *scroll += page,
            Action::Home => *scroll = 0,
            Action::End => *scroll = usize::MAX / 2,
            _ => return false,
        }
        true
    }

    /// Applies an action; `page` is the number of visible rows.
    pub fn apply(&mut self, action: Action, page: usize) -> Effect {
        self.dirty = true;
        if self.view.show_help && self.scroll_help(action, page.max(1)) {
            return Effect::None;
        }
        match action {
            Action::Quit => return Effect::Quit,
            Action::Suspend => return Effect::Suspend,
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::PageUp => self.move_selection(-(page.max(1) as isize)),
            Action::PageDown => self.move_selection(page.max(1) as isize),
            Action::Home => self.move_selection(isize::MIN / 2),
            Action::End => self.move_selection(isize::MAX / 2),
            Action::NextPane => {
                self.view.focus = match self.view.focus {
                    Pane::Functions => Pane::Threads,
                    Pane::Threads if self.show_workers() => Pane::Workers,
                    Pane::Threads | Pane::Workers => Pane::Functions,
                };
                // Entering the threads pane highlights its first row, so the first ↓ moves.
                if self.view.focus == Pane::Threads && self.view.selected_thread.is_none() {
                    self.view.selected_thread = self.thread_tids().first().copied();
                }
            }
            Action::Merge => {
                self.view.merged = !self.view.merged;
                return Effect::Requery;
            }
            Action::Filter => self.view.editing_filter = true,
            Action::SortNext => self.view.sort = self.view.sort.step(true),
            Action::NextCounter => {
                self.view.counter = self.view.counter.next();
                self.view.sort = SortColumn::Counter;
            }
            Action::SortPrev => self.view.sort = self.view.sort.step(false),
            Action::Invert => self.view.reverse = !self.view.reverse,
            Action::Pause => {
                self.view.paused = !self.view.paused;
                return Effect::Pause(self.view.paused);
            }
            Action::Reset => return Effect::Reset,
            Action::ThreadFocus => {
                self.view.thread_focus = match self.view.thread_focus {
                    Some(_) => None,
                    None => self
                        .view
                        .selected_thread
                        .or_else(|| self.thread_tids().first().copied()),
                };
                return Effect::Requery;
            }
            Action::ToggleLines => self.view.by_line = !self.view.by_line,
            Action::ToggleTasks => self.view.show_tasks = !self.view.show_tasks,
            Action::Window => {
                self.view.windowed = !self.view.windowed;
                return Effect::Requery;
            }
            Action::Zoom => self.view.zoomed_out = !self.view.zoomed_out,
            Action::NextMode => {
                self.view.mode = self.view.mode.next();
                self.view.include_idle = self.view.mode == crate::model::snapshot::Mode::Wall;
                return Effect::Requery;
            }
            // On a task: the functions it ran.
            Action::Detail if self.view.show_tasks => {
                let task = self
                    .view
                    .selected_task
                    .or_else(|| self.task_ids().first().copied());
                if task.is_some() {
                    self.view.task_focus = task;
                    self.view.show_tasks = false;
                }
                return Effect::Requery;
            }
            Action::Detail => {
                self.view.show_detail = !self.view.show_detail;
                if self.view.selected_function.is_none() {
                    self.view.selected_function =
                        self.function_lines().first().map(|l| l.key.clone());
                }
                return Effect::Requery;
            }
            Action::Help => self.view.show_help = !self.view.show_help,
            Action::Export => return Effect::Export,
            Action::ExportFormat => {
                self.view.export_format = self.view.export_format.next();
                self.status = Some(format!(
                    "export format: {} (e writes it)",
                    self.view.export_format.name()
                ));
                self.status_until =
                    Some(std::time::Instant::now() + std::time::Duration::from_secs(5));
            }
        }
        Effect::None
    }

    fn move_selection(&mut self, delta: isize) {
        match self.view.focus {
            Pane::Functions if self.view.show_tasks => {
                let ids = self.task_ids();
                self.view.selected_task = moved(&ids, self.view.selected_task.as_ref(), delta);
            }
            Pane::Functions => {
                let keys: Vec<String> = self.function_lines().into_iter().map(|l| l.key).collect();
                self.view.selected_function =
                    moved(&keys, self.view.selected_function.as_ref(), delta);
            }
            Pane::Threads => {
                let tids = self.thread_tids();
                self.view.selected_thread = moved(&tids, self.view.selected_thread.as_ref(), delta);
            }
            Pane::Workers => {
                let pids: Vec<u32> = self.workers.iter().map(|w| w.pid).collect();
                let current = self.view.process.or_else(|| pids.first().copied());
                self.select_process(moved(&pids, current.as_ref(), delta));
            }
        }
    }

    /// Ids of the listed tasks, in the order the tasks view draws them.
    pub fn task_ids(&self) -> Vec<u64> {
        self.snapshot.tasks.iter().flatten().map(|t| t.id).collect()
    }

    /// The name of the focused task, while it is listed.
    pub fn task_focus_name(&self) -> Option<&str> {
        let id = self.view.task_focus?;
        self.snapshot
            .tasks
            .iter()
            .flatten()
            .find(|t| t.id == id)
            .map(|t| t.name.as_str())
    }

    /// Focuses every pane on the process `pid` (the target when `None`); a thread selection
    /// or focus of another process no longer applies.
    pub fn select_process(&mut self, pid: Option<u32>) {
        if pid != self.view.process {
            self.view.process = pid;
            self.view.merged = false;
            self.view.thread_focus = None;
            self.view.selected_thread = None;
            self.view.task_focus = None;
            self.view.selected_task = None;
        }
    }

    /// Whether the workers pane is shown: following subprocesses, or more than one process.
    pub fn show_workers(&self) -> bool {
        self.follow || self.workers.len() > 1
    }

    /// The pid the panes show (`None` when merged).
    pub fn shown_process(&self) -> Option<u32> {
        if self.view.merged {
            return None;
        }
        self.view
            .process
            .or_else(|| self.workers.first().map(|w| w.pid))
    }

    /// (file name, function name) of the selected row, if any.
    pub fn selected_function_id(&self) -> Option<(&str, &str)> {
        let mut parts = self.view.selected_function.as_deref()?.split('\0');
        Some((parts.next()?, parts.next()?))
    }

    /// Index of the selected function row, if it is shown.
    pub fn selected_function_index(&self, rows: &[FunctionLine]) -> Option<usize> {
        let key = self.view.selected_function.as_ref()?;
        rows.iter().position(|r| &r.key == key)
    }
}

/// The item `delta` rows from `current` (or the first), clamped to the list.
fn moved<T: Clone + PartialEq>(items: &[T], current: Option<&T>, delta: isize) -> Option<T> {
    if items.is_empty() {
        return None;
    }
    let Some(i) = current.and_then(|c| items.iter().position(|x| x == c)) else {
        return items.first().cloned();
    };
    let last = items.len() - 1;
    let target = match delta.cmp(&0) {
        Ordering::Less => i.saturating_sub(delta.unsigned_abs()),
        _ => i.saturating_add(delta.unsigned_abs()).min(last),
    };
    items.get(target).cloned()
}
