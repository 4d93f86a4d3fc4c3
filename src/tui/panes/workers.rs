//! Workers: one row per process of the family (the target, then its followed descendants).
//! The selected row is the process every other pane shows; `m` merges them all.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Row, Table};
use ratatui::Frame;

use crate::fmt;
use crate::model::snapshot::{Straggler, WorkerRow};
use crate::tui::app::{App, Pane};

/// Lines the pane takes for `rows` processes, at most a third of `height`.
pub fn height(rows: usize, height: u16) -> u16 {
    (rows as u16)
        .saturating_add(2)
        .clamp(3, (height / 4).max(3))
}

fn row(w: &WorkerRow) -> Row<'static> {
    let mark = match w.straggler {
        Some(Straggler::Slow) => "slow",
        Some(Straggler::Busy) => "busy",
        None => "",
    };
    Row::new([
        w.pid.to_string(),
        if w.is_root { "parent" } else { "worker" }.to_owned(),
        if w.exited {
            "exited".to_owned()
        } else {
            w.state.to_string()
        },
        format!("{:.1}", w.cpu_percent),
        fmt::bytes(w.rss_bytes),
        format!("{:.1}", w.gil_held_percent),
        format!("{:.0}", w.faults_per_s),
        format!("{:.0}", w.ctxsw_per_s),
        mark.to_owned(),
        w.hottest.clone().unwrap_or_default(),
    ])
}

/// Draws the workers table.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let header = Row::new([
        "PID", "ROLE", "ST", "CPU%", "RSS", "GIL%", "FLT/s", "CSW/s", "!", "HOTTEST",
    ])
    .style(theme.title);
    let focus = if app.view.focus == Pane::Workers {
        " [focus]"
    } else {
        ""
    };
    let shown = if app.view.merged {
        "all merged (m: one)".to_owned()
    } else {
        app.shown_process()
            .map_or_else(String::new, |pid| format!("showing {pid} (m: merge all)"))
    };
    let table = Table::new(
        app.workers.iter().map(row),
        [
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(4),
            Constraint::Min(10),
        ],
    )
    .header(header);
    let title = format!(
        "Workers{focus} · {} processes · {shown} · ! slow/busy: far from the siblings' median CPU",
        app.workers.len()
    );
    let selected = app
        .shown_process()
        .filter(|_| !app.view.merged)
        .and_then(|pid| app.workers.iter().position(|w| w.pid == pid));
    super::draw_list(frame, area, table, title, selected, theme);
}
