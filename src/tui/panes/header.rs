//! Header: what the target is and its process figures.

use std::fmt::Write as _;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::fmt;
use crate::tui::app::App;

/// Lines the header takes.
pub const HEIGHT: u16 = 5;

/// Draws the header.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let p = &app.snapshot;
    let theme = app.theme();
    let per_s = |n: u64| {
        if p.duration_s > 0.0 {
            n as f64 / p.duration_s
        } else {
            0.0
        }
    };
    let last = p.timeline.last();
    let mut state = Vec::new();
    if p.exited {
        state.push(Span::styled(
            " TARGET EXITED (data kept; q quits) ",
            theme.warn,
        ));
    }
    if app.view.paused {
        state.push(Span::styled(" PAUSED ", theme.warn));
    }
    let mut first = vec![
        Span::styled(format!("PID {} ", p.pid), theme.title),
        Span::raw(p.cmdline.join(" ")),
    ];
    first.splice(0..0, state);
    let lines = vec![
        Line::from(first),
        Line::from(format!(
            "Python {} · up {} · {} {} · {} samples at {:.1} Hz ({} requested) · hptop CPU {}",
            p.python_version,
            app.target_uptime_s.map_or_else(|| "?".into(), fmt::seconds),
            if app.view.windowed { "last" } else { "session" },
            fmt::seconds(p.duration_s),
            fmt::count(p.samples),
            p.rate_hz,
            app.rate_hz,
            fmt::percent(app.hptop_cpu_percent),
        )),
        Line::from(format!(
            "CPU {} (avg {}){}{} · {} threads · GIL held {} / wanted {}{}",
            fmt::percent(last.map_or(p.cpu_percent, |t| t.cpu_percent)),
            fmt::percent(p.cpu_percent),
            crate::model::verdict::runqueue(p).map_or_else(String::new, |_| format!(
                " · OVERLOADED: waited for a CPU {}",
                fmt::percent(p.runqueue_wait_percent)
            )),
            if p.partial_stacks_percent > 1.0 {
                format!(" · PARTIAL stacks {}", fmt::percent(p.partial_stacks_percent))
            } else {
                String::new()
            },
            p.threads.iter().filter(|t| t.alive).count(),
            fmt::percent(p.gil_held_percent),
            fmt::percent(p.gil_wanted_percent),
            if p.gil_located {
                p.gil_handoffs_per_s
                    .map_or_else(String::new, |h| format!(", {h:.0} hand-offs/s"))
            } else {
                " (GIL waits not measured: GIL not located)".into()
            },
        )),
        Line::from(format!(
            "faults/s {:.0} minor, {:.0} major · ctxsw/s {:.0} vol, {:.0} invol (avg) · I/O/s {} read, {} written (avg)",
            last.map_or(0.0, |t| t.minor_faults_per_s),
            last.map_or(0.0, |t| t.major_faults_per_s),
            per_s(p.voluntary_ctxsw),
            per_s(p.involuntary_ctxsw),
            fmt::bytes(per_s(p.read_bytes) as u64),
            fmt::bytes(per_s(p.write_bytes) as u64),
        )),
        memory_line(app),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

/// RSS, its trend and split, PSS/USS, and the leak hint when growth is sustained; the most
/// telling figures first, since a narrow terminal cuts the line's end.
fn memory_line(app: &App) -> Line<'static> {
    let p = &app.snapshot;
    let m = &p.memory;
    let mut text = format!("RSS {}", fmt::bytes(p.rss_bytes));
    if let Some(g) = m.growth {
        let _ = write!(
            text,
            " {} over {}",
            fmt::rate_bytes(g.bytes_per_s),
            fmt::seconds(g.window_s)
        );
    }
    let mut spans = vec![Span::raw(text)];
    if let Some(first) = m.leak_suspects.first() {
        spans.push(Span::styled(
            format!(
                " RSS GROWS steadily; new pages first touched by: {} (not proof of what retains them)",
                first.name
            ),
            app.theme().warn,
        ));
    }
    let mut rest = format!(
        " · anon {} file {} shmem {} · peak {} · swap {}",
        fmt::bytes(m.split.anon_bytes),
        fmt::bytes(m.split.file_bytes),
        fmt::bytes(m.split.shmem_bytes),
        fmt::bytes(p.rss_peak_bytes),
        fmt::bytes(p.swap_bytes),
    );
    if let Some(r) = m.rollup {
        let _ = write!(
            rest,
            " · PSS {} USS {}",
            fmt::bytes(r.pss_bytes),
            fmt::bytes(r.uss_bytes)
        );
    }
    spans.push(Span::raw(rest));
    Line::from(spans)
}
