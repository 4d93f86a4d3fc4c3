//! asyncio tasks (`a`, in the functions pane's place): each task's share of the CPU its
//! loop threads spent in tasks, its state and where it is (docs/figures.md, "asyncio tasks").

use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

use crate::fmt;
use crate::model::snapshot::TaskRow;
use crate::tui::app::App;

/// Draws the tasks table, or why there is none.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let p = &app.snapshot;
    let Some(tasks) = &p.tasks else {
        let why = if p.python_minor().is_some_and(|m| m < 11) {
            format!(
                "The task view needs Python 3.11+ (this is {}): older asyncio keeps no task list hptop reads.",
                p.python_version
            )
        } else {
            "No asyncio task list yet: the program has not imported asyncio (looked for about once a second).".into()
        };
        let block = Block::default()
            .borders(Borders::TOP)
            .title(Line::styled("Tasks (a: back to functions)", theme.title));
        frame.render_widget(Paragraph::new(why).block(block), area);
        return;
    };
    let cpu = p.tasks_cpu_s();
    let header = Row::new([
        "CPU%↓",
        "CPU time",
        "Samples",
        "GIL%",
        "State",
        "Task",
        "At (innermost first)",
    ])
    .style(theme.title);
    let body = tasks.iter().map(|t| {
        Row::new([
            format!("{:.1}", t.figures.cpu_percent_of(cpu)),
            fmt::seconds(t.figures.cpu_s),
            fmt::count(t.figures.samples),
            format!("{:.0}", t.figures.gil_held_percent()),
            t.state.to_owned(),
            t.name.clone(),
            at(t),
        ])
    });
    let title = format!(
        "Tasks · {} listed, {} finished · share of the CPU spent in tasks (Enter: its functions · a: all functions)",
        fmt::count(tasks.len() as u64),
        fmt::count(p.tasks_finished.0),
    );
    let table = Table::new(
        body,
        [
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(20),
            Constraint::Min(10),
        ],
    )
    .header(header);
    let selected = app
        .view
        .selected_task
        .and_then(|id| tasks.iter().position(|t| t.id == id));
    super::draw_list(frame, area, table, title, selected, theme);
}

/// Its chain, innermost first: `sleep <- flush_loop:42`.
fn at(t: &TaskRow) -> String {
    let parts: Vec<String> = t
        .frames
        .iter()
        .rev()
        .map(|f| format!("{}:{}", f.name, f.line))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" <- ")
    }
}
