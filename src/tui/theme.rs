//! Styles. Colours are few and work on dark and light backgrounds (no fixed background);
//! selection is reverse video. `NO_COLOR` (any non-empty value) turns colours off.

use ratatui::style::{Color, Modifier, Style};

/// The styles panes use.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    /// Pane titles and table headers.
    pub title: Style,
    /// The sorted column's header.
    pub sorted: Style,
    /// The selected row.
    pub selected: Style,
    /// Warnings (paused, exited, errors).
    pub warn: Style,
    /// Secondary text.
    pub dim: Style,
    /// Bars and sparklines.
    pub graph: Style,
}

impl Default for Theme {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Theme {
    /// The theme for this environment.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()))
    }

    /// Colours, or none.
    pub fn new(no_color: bool) -> Self {
        let color = |c: Color| {
            if no_color {
                Style::new()
            } else {
                Style::new().fg(c)
            }
        };
        Self {
            title: Style::new().add_modifier(Modifier::BOLD),
            sorted: Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            warn: color(Color::Yellow).add_modifier(Modifier::BOLD),
            dim: if no_color {
                Style::new()
            } else {
                Style::new().add_modifier(Modifier::DIM)
            },
            graph: color(Color::Cyan),
        }
    }
}
