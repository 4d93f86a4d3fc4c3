//! Timeline: per-second sparklines of CPU, RSS and GIL held, as wide as the pane allows.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

use crate::fmt;
use crate::tui::app::App;

/// Lines the timeline takes.
pub const HEIGHT: u16 = 3;
const LABEL_WIDTH: u16 = 22;

/// Draws the timeline.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let points = &app.snapshot.timeline;
    let width = area.width.saturating_sub(LABEL_WIDTH) as usize;
    let recent = &points[points.len().saturating_sub(width)..];
    let rows = Layout::vertical([Constraint::Length(1); 3]).split(area);
    let series: [(&str, Vec<u64>, String); 3] = [
        (
            "CPU",
            recent
                .iter()
                .map(|p| p.cpu_percent.round() as u64)
                .collect(),
            recent
                .last()
                .map_or_else(String::new, |p| fmt::percent(p.cpu_percent)),
        ),
        (
            "RSS",
            recent.iter().map(|p| p.rss_bytes).collect(),
            recent
                .last()
                .map_or_else(String::new, |p| fmt::bytes(p.rss_bytes)),
        ),
        (
            "GIL held",
            recent
                .iter()
                .map(|p| p.gil_held_percent.round() as u64)
                .collect(),
            recent
                .last()
                .map_or_else(String::new, |p| fmt::percent(p.gil_held_percent)),
        ),
    ];
    for (row, (name, data, now)) in rows.iter().zip(series) {
        let [label, graph] =
            Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Min(0)]).areas(*row);
        frame.render_widget(
            Paragraph::new(Span::styled(format!("{name:<9}{now:>12} "), theme.dim)),
            label,
        );
        frame.render_widget(Sparkline::default().data(&data).style(theme.graph), graph);
    }
}
