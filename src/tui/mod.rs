//! The live TUI (ratatui): renders `App`, which holds a plain `Snapshot` and view state. It
//! never touches the collector or the session.

pub mod app;
pub mod keymap;
pub mod panes;
pub mod terminal;
pub mod theme;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use app::App;

/// Smallest terminal the full view fits in.
pub const MIN_WIDTH: u16 = 60;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 16;

impl App {
    /// Styles for this environment.
    pub fn theme(&self) -> theme::Theme {
        theme::Theme::from_env()
    }
}

/// Draws the whole screen. Below the minimum size it says what size it needs instead; at
/// 0x0 (a hung-up terminal) it draws nothing. Never panics on any size.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "hptop needs {MIN_WIDTH}x{MIN_HEIGHT}; this terminal is {}x{}",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let threads = app.snapshot.threads.iter().filter(|t| t.is_python).count() as u16;
    let [header, timeline, threads_area, functions, status] = Layout::vertical([
        Constraint::Length(panes::header::HEIGHT),
        Constraint::Length(panes::timeline::HEIGHT),
        Constraint::Length((threads + 2).clamp(3, area.height / 3)),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    panes::header::draw(frame, header, app);
    panes::timeline::draw(frame, timeline, app);
    panes::threads::draw(frame, threads_area, app);
    if app.view.show_detail {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(functions);
        panes::functions::draw(frame, left, app);
        panes::detail::draw(frame, right, app);
    } else {
        panes::functions::draw(frame, functions, app);
    }
    draw_status(frame, status, app);
    if app.view.show_help {
        panes::help::draw(frame, area, app);
    }
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let line = match &app.status {
        Some(status) => Line::styled(status.clone(), theme.warn),
        None => Line::styled(
            "? help · / filter · > < sort · L lines · t thread · p pause · r reset · q quit",
            theme.dim,
        ),
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// Rows of the functions table that fit on screen (for page up/down).
pub fn function_page(height: u16) -> usize {
    height
        .saturating_sub(panes::header::HEIGHT + panes::timeline::HEIGHT + 12)
        .max(1) as usize
}

#[cfg(test)]
mod tests;
