//! The live TUI (ratatui): renders `App`, which holds a plain `Snapshot` and view state. It
//! never touches the collector or the session.

pub mod app;
pub mod keymap;
pub mod panes;
pub mod picker;
pub mod terminal;
pub mod theme;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use app::App;

/// Smallest terminal the full view fits in.
pub const MIN_WIDTH: u16 = 60;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 16;

impl App {
    /// Styles (chosen once, from the environment, when the app was made).
    pub fn theme(&self) -> theme::Theme {
        self.theme
    }
}

/// Draws the whole screen. Below the minimum size it says what size it needs instead; at
/// 0x0 (a hung-up terminal) it draws nothing. Never panics on any size.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "hptop needs {MIN_WIDTH}x{MIN_HEIGHT}; this terminal is {}x{}",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let areas = Areas::of(area, app);
    panes::header::draw(frame, areas.header, app);
    panes::timeline::draw(frame, areas.timeline, app);
    panes::threads::draw(frame, areas.threads, app);
    if let Some(workers) = areas.workers {
        panes::workers::draw(frame, workers, app);
    }
    if app.view.show_tasks {
        panes::tasks::draw(frame, areas.functions, app);
    } else {
        panes::functions::draw(frame, areas.functions, app);
    }
    if let Some(detail) = areas.detail {
        panes::detail::draw(frame, detail, app);
    }
    draw_status(frame, areas.status, app);
    if app.view.show_help {
        panes::help::draw(frame, area, app);
    }
}

/// Where each pane is drawn; shared by drawing and mouse hit-testing.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    /// Header.
    pub header: Rect,
    /// Timeline.
    pub timeline: Rect,
    /// Threads table.
    pub threads: Rect,
    /// Workers table, when shown.
    pub workers: Option<Rect>,
    /// Functions table.
    pub functions: Rect,
    /// Detail pane, when shown.
    pub detail: Option<Rect>,
    /// Status line.
    pub status: Rect,
}

impl Areas {
    /// The layout of a screen of size `area` (at least the minimum size).
    pub fn of(area: Rect, app: &App) -> Self {
        let threads = app.snapshot.threads.iter().filter(|t| t.is_python).count() as u16;
        let workers = if app.show_workers() {
            panes::workers::height(app.workers.len(), area.height)
        } else {
            0
        };
        let status_height = status_lines(app, area.width).len() as u16;
        // On a narrow screen the detail pane takes the place of the timeline and the threads,
        // under a functions pane cut to the selected row (↑↓ still choose the function).
        let narrow_detail = app.view.show_detail && area.width < 120;
        let (timeline_height, threads_height, workers) = if narrow_detail {
            (0, 0, 0)
        } else {
            let (t, h) = fold(area.height + 1 - status_height, workers, threads);
            (t, h, workers)
        };
        let [header, timeline, workers_area, threads_area, functions, status] = Layout::vertical([
            Constraint::Length(panes::header::HEIGHT),
            Constraint::Length(timeline_height),
            Constraint::Length(workers),
            Constraint::Length(threads_height),
            Constraint::Min(3),
            Constraint::Length(status_height),
        ])
        .areas(area);
        let (functions, detail) = if narrow_detail {
            let [first, second] =
                Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(functions);
            (first, Some(second))
        } else if app.view.show_detail {
            // Beside the functions on a wide screen, so function names keep their width.
            let [first, second] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                    .areas(functions);
            (first, Some(second))
        } else {
            (functions, None)
        };
        Self {
            header,
            timeline,
            threads: threads_area,
            workers: (workers > 0).then_some(workers_area),
            functions,
            detail,
            status,
        }
    }
}

/// Rows the functions pane keeps at least (title, column header, 4 functions).
const FUNCTIONS_MIN: u16 = 6;

/// Heights of the timeline and threads panes on a screen `height` rows high: every thread
/// when it fits, the timeline folding first (it may vanish), then the threads pane scrolling
/// (at most half of what is left when there are many), the functions pane keeping its
/// least.
fn fold(height: u16, workers: u16, threads: u16) -> (u16, u16) {
    let budget = height
        .saturating_sub(panes::header::HEIGHT + 1 + workers)
        .saturating_sub(FUNCTIONS_MIN);
    let want = threads + 2;
    let timeline = panes::timeline::HEIGHT.min(budget.saturating_sub(want));
    // A timeline of a line or two says nothing: fold it away.
    let timeline = if timeline < 3 { 0 } else { timeline };
    let room = budget - timeline;
    let threads = if want <= room {
        want
    } else {
        room.min(u16::midpoint(room, FUNCTIONS_MIN))
            .max(3.min(room))
    };
    (timeline, threads)
}

/// Handles a left click at (`x`, `y`) on a screen of size `area`: a row selects it (and
/// focuses its pane), a functions column header sorts by it (again: inverts).
pub fn click(app: &mut App, area: Rect, x: u16, y: u16) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT || app.view.show_help {
        return;
    }
    let areas = Areas::of(area, app);
    let inside = |r: Rect| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
    app.dirty = true;
    if inside(areas.functions) {
        app.view.focus = app::Pane::Functions;
        if y == areas.functions.y + 1 {
            if let Some(column) = panes::functions::column_at(x - areas.functions.x) {
                if app.view.sort == column {
                    app.view.reverse = !app.view.reverse;
                } else {
                    app.view.sort = column;
                }
            }
            return;
        }
        let rows = app.function_lines();
        let index = row_at(areas.functions, y, app.selected_function_index(&rows));
        if let Some(row) = index.and_then(|i| rows.get(i)) {
            app.view.selected_function = Some(row.key.clone());
        }
    } else if let Some(workers) = areas.workers.filter(|w| inside(*w)) {
        app.view.focus = app::Pane::Workers;
        let selected = app
            .shown_process()
            .and_then(|pid| app.workers.iter().position(|w| w.pid == pid));
        if let Some(pid) = row_at(workers, y, selected)
            .and_then(|i| app.workers.get(i))
            .map(|w| w.pid)
        {
            app.select_process(Some(pid));
        }
    } else if inside(areas.threads) {
        app.view.focus = app::Pane::Threads;
        let tids = app.thread_tids();
        let selected = app
            .view
            .selected_thread
            .and_then(|tid| tids.iter().position(|t| *t == tid));
        if let Some(tid) = row_at(areas.threads, y, selected).and_then(|i| tids.get(i)) {
            app.view.selected_thread = Some(*tid);
        }
    }
}

/// Index of the table row drawn at screen line `y` of a table with a top border and a
/// header line. The table scrolls just enough to show the selected row.
fn row_at(table: Rect, y: u16, selected: Option<usize>) -> Option<usize> {
    let first = table.y + 2;
    let visible = table.height.saturating_sub(2) as usize;
    if y < first || visible == 0 {
        return None;
    }
    let offset = selected.map_or(0, |s| (s + 1).saturating_sub(visible));
    Some(offset + (y - first) as usize)
}

/// Lines of the status line at most: a notice or the GIL verdict wraps to them, not cut.
const STATUS_MAX_LINES: usize = 3;

/// The status line's text as drawn in `width` columns: a notice or the GIL verdict, wrapped
/// (at most [`STATUS_MAX_LINES`] lines), or the focused pane's keys, fitted to one line.
fn status_lines(app: &App, width: u16) -> Vec<String> {
    let gc = crate::model::verdict::gc(&app.snapshot);
    let text = match (&app.status, &app.snapshot.verdict, gc) {
        (Some(status), _, _) => status.clone(),
        (None, Some(verdict), _) => format!("GIL: {verdict}"),
        (None, None, Some(verdict)) => format!("GC: {verdict}"),
        (None, None, None) => return vec![fit_keys(footer(app), usize::from(width))],
    };
    let mut lines = crate::fmt::wrap(&text, usize::from(width));
    if lines.len() > STATUS_MAX_LINES {
        lines.truncate(STATUS_MAX_LINES);
        if let Some(last) = lines.last_mut() {
            let keep = usize::from(width).saturating_sub(1);
            *last = last.chars().take(keep).collect::<String>() + "…";
        }
    }
    lines
}

/// The keys of a footer (items joined by " · ") that fit in `width`: the last two (help and
/// quit) always, the others in order while they fit.
fn fit_keys(footer: &str, width: usize) -> String {
    let items: Vec<&str> = footer.split(" · ").collect();
    let split = items.len().saturating_sub(2);
    let (rest, always) = items.split_at(split);
    let mut used: usize = always.iter().map(|i| i.chars().count() + 3).sum();
    let mut kept: Vec<&str> = Vec::new();
    for item in rest {
        let len = item.chars().count() + 3;
        if used + len <= width {
            kept.push(item);
            used += len;
        }
    }
    kept.extend(always);
    kept.join(" · ")
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let style = if app.status.is_some()
        || app.snapshot.verdict.is_some()
        || crate::model::verdict::gc(&app.snapshot).is_some()
    {
        theme.warn
    } else {
        theme.dim
    };
    let lines: Vec<Line> = status_lines(app, area.width)
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// The keys that matter in the focused pane (all keys: `?`).
fn footer(app: &App) -> &'static str {
    match app.view.focus {
        app::Pane::Functions if app.view.show_tasks => {
            "↑↓ select · Enter its functions · a functions · Tab pane · ? help · q quit"
        }
        app::Pane::Functions if app.view.task_focus.is_some() => {
            "Esc all tasks · ↑↓ select · Enter detail · a tasks · Tab pane · ? help · q quit"
        }
        app::Pane::Functions if app.view.show_detail => {
            "Esc close detail · ↑↓ function · L lines · Tab pane · ? help · q quit"
        }
        app::Pane::Functions => {
            "↑↓ select · Enter detail · / filter · > < sort · c counter · M mode · L lines · Tab pane · ? help · q quit"
        }
        app::Pane::Threads if app.view.thread_focus.is_some() => {
            "t all threads again · ↑↓ select · Tab pane · ? help · q quit"
        }
        app::Pane::Threads => {
            "↑↓ select · t its functions only · Tab pane · w last second · p pause · ? help · q quit"
        }
        app::Pane::Workers => {
            "↑↓ select (every pane shows it) · m merge all · Tab pane · ? help · q quit"
        }
    }
}

/// Rows of the functions table that fit on screen (for page up/down).
pub fn function_page(height: u16) -> usize {
    height
        .saturating_sub(panes::header::HEIGHT + panes::timeline::HEIGHT + 12)
        .max(1) as usize
}

#[cfg(test)]
mod tests;
