//! Detail of the selected function: callers, callees, and its source with per-line sample
//! heat (total samples of each line), like a line profiler with no code changes.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::fmt;
use crate::tui::app::App;

/// Callers and callees listed at most.
const CALLS: usize = 4;
/// Width of a line's heat bar.
const BAR: usize = 8;

/// Draws the detail pane.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let block = Block::default().borders(Borders::TOP | Borders::LEFT);
    let Some(detail) = &app.detail else {
        frame.render_widget(
            Paragraph::new("select a function (↑ ↓) for its callers, callees and source")
                .block(block),
            area,
        );
        return;
    };
    let title = Line::styled(
        format!("{} ({})", detail.name, detail.filename),
        theme.title,
    );
    let inner = block.clone().title(title).inner(area);
    frame.render_widget(
        block.title(Line::styled(format!(" {} ", detail.name), theme.title)),
        area,
    );
    let calls = |label: &str, rows: &[crate::model::snapshot::CallRow]| {
        let mut lines = vec![Line::styled(label.to_owned(), theme.title)];
        if rows.is_empty() {
            lines.push(Line::styled("  (none)", theme.dim));
        }
        lines.extend(
            rows.iter()
                .take(CALLS)
                .map(|c| Line::from(format!("  {:>6}  {} ({})", c.samples, c.name, c.file))),
        );
        lines
    };
    let mut top = calls("Called by", &detail.callers);
    top.extend(calls("Calls", &detail.callees));
    let starved = app
        .snapshot
        .functions
        .iter()
        .find(|f| f.name == detail.name && f.filename == detail.filename)
        .map_or(0, |f| f.gil_held_while_waited);
    if starved > 0 {
        top.push(Line::styled(
            format!(
                "Held the GIL while others waited: {} samples",
                fmt::count(starved)
            ),
            theme.warn,
        ));
    }
    let top_height = (top.len() as u16).min(inner.height / 2);
    let [calls_area, source_area] =
        Layout::vertical([Constraint::Length(top_height), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(top), calls_area);
    frame.render_widget(
        Paragraph::new(source_lines(app, source_area.height as usize)),
        source_area,
    );
}

/// Source lines around the hottest line, each with its samples as a bar.
fn source_lines(app: &App, height: usize) -> Vec<Line<'static>> {
    let theme = app.theme();
    let Some(detail) = &app.detail else {
        return Vec::new();
    };
    let Some(source) = &app.source else {
        return vec![Line::styled(
            "(source not readable from the target's filesystem)",
            theme.dim,
        )];
    };
    let max = detail
        .lines
        .iter()
        .map(|l| l.total_samples)
        .max()
        .unwrap_or(0)
        .max(1);
    let hottest = detail
        .lines
        .iter()
        .max_by_key(|l| l.total_samples)
        .map_or(1, |l| l.line as usize);
    let first = hottest.saturating_sub(height / 2).max(1);
    (first..first + height)
        .filter_map(|n| {
            let text = source.get(n - 1)?;
            let samples = detail
                .lines
                .iter()
                .find(|l| l.line as usize == n)
                .map_or(0, |l| l.total_samples);
            let filled = (samples as usize * BAR).div_ceil(max as usize);
            let bar = format!(
                "{}{}",
                "█".repeat(filled),
                " ".repeat(BAR - filled.min(BAR))
            );
            let count = if samples > 0 {
                fmt::count(samples)
            } else {
                String::new()
            };
            Some(Line::from(vec![
                Span::styled(format!("{n:>5} "), theme.dim),
                Span::styled(bar, theme.graph),
                Span::raw(format!("{count:>6} ")),
                Span::raw(text.clone()),
            ]))
        })
        .collect()
}
