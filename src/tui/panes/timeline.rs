//! Timeline: per-second sparklines of CPU, RSS and GIL held, as wide as the pane allows.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

use crate::fmt;
use crate::model::timeline::TimelinePoint;
use crate::tui::app::App;

/// Lines the timeline takes.
pub const HEIGHT: u16 = 6;
const LABEL_WIDTH: u16 = 22;

/// Draws the timeline: the most recent seconds that fit, or (zoomed out) the whole session
/// averaged down to the pane's width.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let width = area.width.saturating_sub(LABEL_WIDTH) as usize;
    let points = shown(&app.snapshot.timeline, width, app.view.zoomed_out);
    let rows = Layout::vertical([Constraint::Length(1); 6]).split(area);
    let last = points.last();
    let series: [(&str, Vec<u64>, String); 6] = [
        (
            "CPU",
            points
                .iter()
                .map(|p| p.cpu_percent.round() as u64)
                .collect(),
            last.map_or_else(String::new, |p| fmt::percent(p.cpu_percent)),
        ),
        (
            "RSS",
            points.iter().map(|p| p.rss_bytes).collect(),
            last.map_or_else(String::new, |p| fmt::bytes(p.rss_bytes)),
        ),
        (
            "GIL held",
            points
                .iter()
                .map(|p| p.gil_held_percent.round() as u64)
                .collect(),
            last.map_or_else(String::new, |p| fmt::percent(p.gil_held_percent)),
        ),
        (
            "GIL want",
            points
                .iter()
                .map(|p| p.gil_wanted_percent.round() as u64)
                .collect(),
            last.map_or_else(String::new, |p| fmt::percent(p.gil_wanted_percent)),
        ),
        (
            "faults/s",
            points
                .iter()
                .map(|p| (p.minor_faults_per_s + p.major_faults_per_s).round() as u64)
                .collect(),
            last.map_or_else(String::new, |p| {
                format!("{:.0}", p.minor_faults_per_s + p.major_faults_per_s)
            }),
        ),
        (
            "ctxsw/s",
            points
                .iter()
                .map(|p| p.ctxsw_per_s.round() as u64)
                .collect(),
            last.map_or_else(String::new, |p| format!("{:.0}", p.ctxsw_per_s)),
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

/// The points to draw in `width` columns: the last `width` seconds, or all of them averaged
/// in equal groups (the last point of a group gives RSS, a level rather than a rate).
fn shown(points: &[TimelinePoint], width: usize, whole: bool) -> Vec<TimelinePoint> {
    if width == 0 {
        return Vec::new();
    }
    if !whole || points.len() <= width {
        return points[points.len().saturating_sub(width)..].to_vec();
    }
    let group = points.len().div_ceil(width);
    points
        .chunks(group)
        .map(|chunk| {
            let n = chunk.len() as f64;
            let mean = |f: fn(&TimelinePoint) -> f64| chunk.iter().map(f).sum::<f64>() / n;
            TimelinePoint {
                at: chunk[0].at,
                cpu_percent: mean(|p| p.cpu_percent),
                rss_bytes: chunk.last().map_or(0, |p| p.rss_bytes),
                memory: chunk.last().map(|p| p.memory).unwrap_or_default(),
                minor_faults_per_s: mean(|p| p.minor_faults_per_s),
                major_faults_per_s: mean(|p| p.major_faults_per_s),
                gil_held_percent: mean(|p| p.gil_held_percent),
                ctxsw_per_s: mean(|p| p.ctxsw_per_s),
                gil_wanted_percent: mean(|p| p.gil_wanted_percent),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoomed_out_averages_the_whole_session_into_the_width() {
        let points: Vec<TimelinePoint> = (0..100)
            .map(|i| TimelinePoint {
                cpu_percent: f64::from(i),
                rss_bytes: u64::from(i as u32),
                ..TimelinePoint::default()
            })
            .collect();
        let recent = shown(&points, 10, false);
        assert_eq!(recent.len(), 10);
        assert!((recent[0].cpu_percent - 90.0).abs() < 1e-9);
        let whole = shown(&points, 10, true);
        assert_eq!(whole.len(), 10);
        assert!((whole[0].cpu_percent - 4.5).abs() < 1e-9);
        assert_eq!(whole[9].rss_bytes, 99);
        assert!(shown(&points, 0, true).is_empty());
    }
}
