//! Help overlay, drawn from the keymap table (and, in a replay, the player's keys). Long
//! descriptions wrap under their own column; a help taller than the screen scrolls (↑↓).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::fmt;
use crate::tui::app::App;
use crate::tui::keymap::{BINDINGS, REPLAY_KEYS};

/// Width of the keys column when the screen allows it (the longest keys).
const KEYS_WIDTH: usize = 24;

/// The (keys, what they do) rows of the help: a replay's say what they do there, leave out
/// what does nothing there, and add the player's keys.
pub fn rows(replay: bool) -> Vec<(&'static str, &'static str)> {
    let mut rows: Vec<(&str, &str)> = BINDINGS
        .iter()
        .filter_map(|b| match (replay, b.in_replay) {
            (true, Some("")) => None,
            (true, Some(there)) => Some((b.keys, there)),
            _ => Some((b.keys, b.help)),
        })
        .collect();
    if replay {
        rows.splice(1..1, REPLAY_KEYS.iter().copied());
    }
    rows
}

/// Draws the help over the middle of `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let width = 96.min(area.width);
    let inner = usize::from(width.saturating_sub(2));
    // A narrow screen gives the descriptions room: the keys column shrinks and keys wrap.
    let keys_width = if inner >= KEYS_WIDTH + 50 {
        KEYS_WIDTH
    } else {
        12
    };
    let text_width = inner.saturating_sub(keys_width + 1);
    let mut lines: Vec<Line> = Vec::new();
    for (keys, help) in rows(app.replay) {
        let keys = fmt::wrap(keys, keys_width);
        let help = fmt::wrap(help, text_width);
        for i in 0..keys.len().max(help.len()) {
            let k = keys.get(i).map_or("", String::as_str);
            let h = help.get(i).map_or("", String::as_str);
            lines.push(Line::from(format!("{k:<keys_width$} {h}")));
        }
    }
    lines.push(Line::from(""));
    let height = (lines.len() + 3).min(usize::from(area.height)) as u16;
    let shown = usize::from(height.saturating_sub(3));
    let last_top = lines.len().saturating_sub(shown);
    let top = app.view.help_scroll.min(last_top);
    let closing = if last_top > 0 {
        format!(
            "Esc or ? closes this help · ↑↓ scroll ({}/{})",
            top + 1,
            last_top + 1
        )
    } else {
        "Esc or ? closes this help".into()
    };
    let mut shown_lines: Vec<Line> = lines.into_iter().skip(top).take(shown).collect();
    shown_lines.push(Line::styled(closing, theme.dim));
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
    let title = if app.replay {
        " hptop keys (replay) "
    } else {
        " hptop keys "
    };
    frame.render_widget(
        Paragraph::new(shown_lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Line::styled(title, theme.title)),
        ),
        middle,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_lists_its_own_keys_and_not_live_only_ones() {
        let live = rows(false);
        let replay = rows(true);
        assert!(live.iter().any(|(k, _)| *k == "r"));
        assert!(!replay.iter().any(|(k, _)| *k == "r"));
        for (keys, _) in REPLAY_KEYS {
            assert!(replay.iter().any(|(k, _)| k == keys), "{keys}");
            assert!(!live.iter().any(|(k, _)| k == keys), "{keys}");
        }
        assert!(replay.iter().any(|(_, h)| h.contains("play or pause")));
        assert!(!replay.iter().any(|(_, h)| h.contains("pause sampling")));
    }
}
