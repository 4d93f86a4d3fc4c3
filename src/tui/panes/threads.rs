//! Threads: one row per Python thread with its state, CPU, GIL and current function.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Row, Table, TableState};
use ratatui::Frame;

use crate::collect::tick::GilState;
use crate::fmt;
use crate::tui::app::{App, Pane};

/// Draws the threads table.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let threads: Vec<_> = app
        .snapshot
        .threads
        .iter()
        .filter(|t| t.is_python)
        .collect();
    let header = Row::new([
        "TID",
        "THREAD",
        "ST",
        "CPU%",
        "GIL%",
        "WAIT%",
        "IDLE%",
        "FLT/s",
        "CSW/s",
        "FUNCTION NOW",
    ])
    .style(theme.title);
    let duration = app.snapshot.duration_s;
    let per_s = |n: u64| {
        if duration > 0.0 {
            format!("{:.0}", n as f64 / duration)
        } else {
            "-".into()
        }
    };
    let rows = threads.iter().map(|t| {
        let now = t.stack.first().map_or_else(String::new, |f| f.name.clone());
        let state = if t.alive {
            t.state.letter().to_string()
        } else {
            "gone".into()
        };
        let gil = if t.gil == GilState::Held { "*" } else { "" };
        Row::new([
            t.tid.to_string(),
            fmt::truncate(t.name.as_deref().unwrap_or("-"), 20),
            format!("{state}{gil}"),
            format!("{:.1}", t.cpu_percent),
            format!("{:.1}", t.gil_held_percent),
            format!("{:.1}", t.gil_wait_percent),
            format!("{:.1}", t.idle_percent),
            per_s(t.minor_faults + t.major_faults),
            per_s(t.voluntary_ctxsw + t.involuntary_ctxsw),
            now,
        ])
    });
    let focus = if app.view.focus == Pane::Threads {
        " [focus]"
    } else {
        ""
    };
    let filter = match app.view.thread_focus {
        Some(tid) => format!(" · functions of {tid} only (t: all)"),
        None => String::new(),
    };
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(20),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Min(10),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selected)
    .block(Block::default().borders(Borders::TOP).title(Line::styled(
        format!(
            "Threads{focus}{filter} · * holds the GIL, WAIT% waits for it · rates per second over the {}",
            if app.view.windowed {
                "last second"
            } else {
                "session"
            }
        ),
        theme.title,
    )));
    let mut state = TableState::default();
    state.select(
        app.view
            .selected_thread
            .and_then(|tid| threads.iter().position(|t| t.tid == tid)),
    );
    frame.render_stateful_widget(table, area, &mut state);
}
