//! One file per pane; each draws from the `App` (its snapshot and view state) only.

pub mod detail;
pub mod functions;
pub mod header;
pub mod help;
pub mod tasks;
pub mod threads;
pub mod timeline;
pub mod workers;

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Table, TableState};
use ratatui::Frame;

/// Draws a list pane's table under a top border titled `title`, with the row `selected`
/// highlighted (and scrolled to): the shape the functions, tasks, threads and workers panes
/// share.
pub fn draw_list(
    frame: &mut Frame,
    area: Rect,
    table: Table<'_>,
    title: String,
    selected: Option<usize>,
    theme: crate::tui::theme::Theme,
) {
    let table = table.row_highlight_style(theme.selected).block(
        Block::default()
            .borders(Borders::TOP)
            .title(Line::styled(title, theme.title)),
    );
    let mut state = TableState::default();
    state.select(selected);
    frame.render_stateful_widget(table, area, &mut state);
}
