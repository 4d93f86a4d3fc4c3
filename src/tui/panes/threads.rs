//! Threads: one row per Python thread with its state, CPU, GIL and current function.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Row, Table, TableState};
use ratatui::Frame;

use crate::collect::tick::GilState;
use crate::fmt;
use crate::model::snapshot::ThreadRow;
use crate::tui::app::{App, Pane};

/// Width of a thread's time-split bar.
const SPLIT_WIDTH: usize = 10;
/// Glyphs of the split, in order: holds the GIL, waits for it, native, blocked, sleeping.
const SPLIT_GLYPHS: [char; 5] = ['█', '▓', '▒', '░', '·'];

/// A thread's samples split into holds / waits / native / blocked / sleeping, as a bar of
/// `width` cells (largest remainders, so the cells always add up to the width when the
/// shares add up to 100 %).
pub fn split_bar(shares: [f64; 5], width: usize) -> String {
    let total: f64 = shares.iter().sum();
    if total <= 0.0 {
        return " ".repeat(width);
    }
    let exact: Vec<f64> = shares
        .iter()
        .map(|s| s / total.max(100.0) * width as f64)
        .collect();
    let mut cells: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let target = (total.min(100.0) / 100.0 * width as f64).round() as usize;
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for &i in order
        .iter()
        .cycle()
        .take(target.saturating_sub(cells.iter().sum()))
    {
        cells[i] += 1;
    }
    let mut bar: String = cells
        .iter()
        .zip(SPLIT_GLYPHS)
        .map(|(&n, g)| g.to_string().repeat(n))
        .collect();
    let used = bar.chars().count();
    bar.push_str(&" ".repeat(width.saturating_sub(used)));
    bar
}

/// One row of the threads table.
fn thread_row(
    t: &ThreadRow,
    per_s: &dyn Fn(u64) -> String,
    io_per_s: &dyn Fn(u64) -> String,
) -> Row<'static> {
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
        format!("{:.1}", t.runqueue_wait_percent),
        format!("{:.1}", t.gil_held_percent),
        format!("{:.1}", t.gil_wait_percent),
        format!("{:.1}", t.idle_percent),
        split_bar(
            [
                t.gil_held_percent,
                t.gil_wait_percent,
                t.native_percent,
                t.blocked_percent,
                t.sleep_percent,
            ],
            SPLIT_WIDTH,
        ),
        per_s(t.minor_faults + t.major_faults),
        per_s(t.voluntary_ctxsw + t.involuntary_ctxsw),
        io_per_s(t.read_bytes + t.write_bytes),
        now,
    ])
}

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
        "RUNQ%",
        "GIL%",
        "WAIT%",
        "IDLE%",
        "GIL/STATE",
        "FLT/s",
        "CSW/s",
        "IO/s",
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
    let io_per_s = |n: u64| {
        if duration > 0.0 && n > 0 {
            fmt::bytes((n as f64 / duration).round() as u64)
        } else {
            String::new()
        }
    };
    let rows = threads.iter().map(|t| thread_row(t, &per_s, &io_per_s));
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
            Constraint::Length(6),
            Constraint::Length(SPLIT_WIDTH as u16),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Min(10),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selected)
    .block(Block::default().borders(Borders::TOP).title(Line::styled(
        format!(
            "Threads{focus}{filter} · * holds the GIL · RUNQ% waited for a CPU · split: █ holds ▓ waits ▒ native ░ blocked · sleeps · over the {}",
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

#[cfg(test)]
mod tests {
    use super::split_bar;

    #[test]
    fn split_bars_fill_their_width_in_proportion() {
        assert_eq!(split_bar([50.0, 50.0, 0.0, 0.0, 0.0], 10), "█████▓▓▓▓▓");
        assert_eq!(split_bar([0.0, 0.0, 100.0, 0.0, 0.0], 4), "▒▒▒▒");
        assert_eq!(
            split_bar([33.4, 33.3, 0.0, 33.3, 0.0], 10).chars().count(),
            10
        );
        assert_eq!(split_bar([0.0; 5], 3), "   ");
        // Shares short of 100 % (unreadable system calls) leave the rest blank.
        assert_eq!(split_bar([50.0, 0.0, 0.0, 0.0, 0.0], 10), "█████     ");
    }
}
