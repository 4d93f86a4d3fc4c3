//! Functions: like py-spy top, sortable, filterable, by function or by line.

use std::fmt::Write as _;

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

use crate::fmt;
use crate::model::snapshot::Mode;
use crate::tui::app::{App, Pane, SortColumn};

/// Column widths; the table puts one space between columns.
const WIDTHS: [u16; 5] = [6, 7, 8, 9, 9];

/// `name (file:line)` in `width` columns, shortened before it is cut: the file's directories
/// go first, then the middle of a dotted name (`Loader.<locals>.parse` -> `Loader.….parse`),
/// then the location; only then is the name itself cut, with an ellipsis.
pub fn fit_function(name: &str, location: &str, width: usize) -> String {
    let len = |s: &str| s.chars().count();
    if location.is_empty() {
        return fmt::truncate(name, width);
    }
    let full = format!("{name} ({location})");
    if len(&full) <= width {
        return full;
    }
    let file = location.rsplit('/').next().unwrap_or(location);
    let short_location = format!("{name} ({file})");
    if len(&short_location) <= width {
        return short_location;
    }
    let parts: Vec<&str> = name.split('.').collect();
    if let [first, .., last] = parts[..] {
        let elided = format!("{first}.….{last}");
        if len(&elided) < len(name) {
            let with_file = format!("{elided} ({file})");
            if len(&with_file) <= width {
                return with_file;
            }
            if len(name) > width && len(&elided) <= width {
                return elided;
            }
        }
    }
    if len(name) <= width {
        return name.to_owned();
    }
    fmt::truncate(name, width)
}

/// The sort column under `x` (relative to the table's left edge) in the header line.
pub fn column_at(x: u16) -> Option<SortColumn> {
    let columns = [
        SortColumn::Own,
        SortColumn::Total,
        SortColumn::Own,
        SortColumn::Total,
        SortColumn::Counter,
    ];
    let mut left = 0;
    for (width, column) in WIDTHS.iter().zip(columns) {
        if x < left + width {
            return Some(column);
        }
        left += width + 1;
    }
    Some(SortColumn::Name)
}

/// Draws the functions table.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let rows = app.function_lines();
    let sorted = app.view.sort;
    let arrow = if app.view.reverse { "↑" } else { "↓" };
    let head = |col: SortColumn, text: &str| {
        if col == sorted {
            Cell::from(format!("{text}{arrow}")).style(theme.sorted)
        } else {
            Cell::from(text.to_owned())
        }
    };
    let header = Row::new([
        head(SortColumn::Own, "%Own"),
        head(SortColumn::Total, "%Total"),
        Cell::from("OwnTime"),
        Cell::from("TotalTime"),
        head(SortColumn::Counter, app.view.counter.label()),
        head(SortColumn::Name, "Function (file:line)"),
    ])
    .style(theme.title);
    let name_width = usize::from(area.width)
        .saturating_sub(WIDTHS.iter().map(|w| usize::from(*w) + 1).sum::<usize>());
    let body = rows.iter().map(|r| {
        Row::new([
            format!("{:.1}", r.own_percent),
            format!("{:.1}", r.total_percent),
            fmt::seconds(r.own_s),
            fmt::seconds(r.total_s),
            app.view.counter.format(r.counter_rate),
            fit_function(&r.name, &r.location, name_width),
        ])
    });
    // The window (`w`) shares are always of samples; the session's follow the mode.
    let mode = if app.view.windowed {
        "samples, last second"
    } else {
        app.view.mode.name()
    };
    // Many stacks dropped (code that calls faster than a read takes, docs/figures.md): said
    // first, where 80 columns still show it; the text report names --blocking.
    let dropped = if app.snapshot.many_dropped() {
        format!(
            " · {} dropped",
            fmt::percent(app.snapshot.stacks_dropped_percent)
        )
    } else {
        String::new()
    };
    // What the shares are a sample of: in cpu mode the stacks seen on a CPU, as the text
    // report says (docs/figures.md, "Stacks seen on a CPU"); else the thread-samples counted.
    let sampled = if !app.view.windowed && app.view.mode == Mode::Cpu {
        format!("{} seen on a CPU", fmt::count(app.snapshot.on_cpu_stacks))
    } else {
        format!(
            "{} thread-samples",
            fmt::count(app.snapshot.counted_samples)
        )
    };
    let mut title = format!(
        "Functions{}{dropped} · mode {mode} (M) · {} · {sampled}",
        if app.view.focus == Pane::Functions {
            " [focus]"
        } else {
            ""
        },
        if app.view.by_line {
            "by line"
        } else {
            "by function"
        },
    );
    if let Some(id) = app.view.task_focus {
        let name = app
            .task_focus_name()
            .map_or_else(|| format!("{id:#x}"), str::to_owned);
        let _ = write!(title, " · task {name} only (Esc: all)");
    }
    if app.view.editing_filter || !app.view.filter.is_empty() {
        let cursor = if app.view.editing_filter { "▏" } else { "" };
        let _ = write!(title, " · filter: {}{cursor}", app.view.filter);
    }
    let table = Table::new(
        body,
        [
            Constraint::Length(WIDTHS[0]),
            Constraint::Length(WIDTHS[1]),
            Constraint::Length(WIDTHS[2]),
            Constraint::Length(WIDTHS[3]),
            Constraint::Length(WIDTHS[4]),
            Constraint::Min(10),
        ],
    )
    .header(header);
    let selected = app.selected_function_index(&rows);
    super::draw_list(frame, area, table, title, selected, theme);
}

#[cfg(test)]
mod tests {
    use super::fit_function;

    #[test]
    fn a_function_is_shortened_before_it_is_cut() {
        let (name, location) = ("Loader.<locals>.parse_row", "etl/jobs/load.py:120");
        let fit = |width| fit_function(name, location, width);
        assert_eq!(fit(60), "Loader.<locals>.parse_row (etl/jobs/load.py:120)");
        assert_eq!(fit(40), "Loader.<locals>.parse_row (load.py:120)");
        assert_eq!(fit(36), "Loader.….parse_row (load.py:120)");
        assert_eq!(fit(26), "Loader.<locals>.parse_row");
        assert_eq!(fit(20), "Loader.….parse_row");
        assert_eq!(fit_function("work", location, 3), "wo…");
    }
}
