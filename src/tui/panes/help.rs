//! Help overlay, drawn from the keymap table.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::keymap::BINDINGS;

/// Draws the help over the middle of `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| Line::from(format!("{:<24} {}", b.keys, b.help)))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::styled("Esc or ? closes this help", theme.dim));
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = 96.min(area.width);
    let [_, middle, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(height),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, middle, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(width),
        Constraint::Fill(1),
    ])
    .areas(middle);
    frame.render_widget(Clear, middle);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Line::styled(" hptop keys ", theme.title)),
        ),
        middle,
    );
}
