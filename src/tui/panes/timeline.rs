//! Timeline: per-second sparklines of CPU, RSS and GIL held, as wide as the pane allows.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

use crate::fmt;
use crate::model::timeline::TimelinePoint;
use crate::tui::app::App;

/// Lines the timeline takes: six series and the time axis.
pub const HEIGHT: u16 = 7;
const LABEL_WIDTH: u16 = 22;

/// Draws the timeline: the most recent seconds that fit, or (zoomed out) the whole session
/// averaged down to the pane's width.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let width = area.width.saturating_sub(LABEL_WIDTH) as usize;
    let points = shown(&app.snapshot.timeline, width, app.view.zoomed_out);
    // A folded pane keeps its first series and the axis.
    let series_rows = area.height.saturating_sub(1).min(6);
    let row = |i: u16| Rect::new(area.x, area.y + i, area.width, 1);
    let rows: Vec<Rect> = (0..series_rows).map(row).collect();
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
    for (i, (row, (name, data, now))) in rows.iter().zip(series).enumerate() {
        let row = *row;
        let [label, graph] =
            Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Min(0)]).areas(row);
        frame.render_widget(
            Paragraph::new(Span::styled(format!("{name:<9}{now:>12} "), theme.dim)),
            label,
        );
        // Percentages on a 0-100 scale (more when several cores are busy); rates on a robust
        // one, so one start-up spike does not flatten the rest into nothing.
        let max = match i {
            0 | 2 | 3 => data.iter().copied().max().unwrap_or(0).max(100),
            1 => data.iter().copied().max().unwrap_or(0),
            _ => robust_max(&data),
        };
        let clipped: Vec<u64> = data.iter().map(|&v| v.min(max)).collect();
        frame.render_widget(
            Sparkline::default()
                .data(&clipped)
                .max(max.max(1))
                .style(theme.graph),
            graph,
        );
    }
    if area.height >= 2 {
        let [label, graph] =
            Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Min(0)])
                .areas(row(series_rows));
        frame.render_widget(
            Paragraph::new(Span::styled(
                axis_label(app.snapshot.timeline.len(), points.len(), app),
                theme.dim,
            )),
            label,
        );
        frame.render_widget(
            Paragraph::new(Span::styled(axis(&points, graph.width), theme.dim)),
            graph,
        );
    }
}

/// What the graphs span, for the axis row's label.
/// What one column is, within the label's width (the axis itself says how far back).
fn axis_label(seconds: usize, columns: usize, app: &App) -> String {
    let per = seconds.div_ceil(columns.max(1)).max(1);
    if app.view.zoomed_out && per > 1 {
        format!("session, {per} s/col")
    } else if app.view.zoomed_out {
        "session, per second".into()
    } else {
        "recent, per second".into()
    }
}

/// The time axis under the graphs: the first point's age at the left, "now" at the right.
fn axis(points: &[TimelinePoint], width: u16) -> String {
    let width = usize::from(width);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return String::new();
    };
    let left = format!("-{}s", last.at.saturating_sub(first.at).as_secs());
    let right = "now";
    let used = points.len().min(width);
    if used < left.len() + right.len() + 2 {
        return format!("{:>width$}", right, width = used.max(right.len()));
    }
    format!(
        "{left}{}{right}",
        "─".repeat(used - left.len() - right.len())
    )
}

/// A scale for a rate: twice its 90th percentile, but never above its maximum (so a lone
/// spike is drawn full and the rest keep their shape).
fn robust_max(data: &[u64]) -> u64 {
    let mut sorted = data.to_vec();
    sorted.sort_unstable();
    let Some(&max) = sorted.last() else { return 1 };
    let p90 = sorted[(sorted.len() - 1) * 9 / 10];
    (p90.saturating_mul(2)).clamp(1, max.max(1))
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
