//! Threads: one row per Python thread with its state, CPU, GIL and current function.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Row, Table};
use ratatui::Frame;

use crate::collect::tick::GilState;
use crate::fmt;
use crate::model::snapshot::ThreadRow;
use crate::tui::app::{App, Pane};

/// Width of a thread's time-split bar.
const SPLIT_WIDTH: usize = 10;
/// Glyphs of the split, in order: holds the GIL, waits for it, native, blocked, sleeping.
const SPLIT_GLYPHS: [char; 5] = ['█', '▓', '▒', '░', '·'];

/// A thread's samples split into holds / waits / native / blocked / sleeping, as a bar of
/// `width` cells (largest remainders, so the cells always add up to the width when the
/// shares add up to 100 %).
pub fn split_bar(shares: [f64; 5], width: usize) -> String {
    let total: f64 = shares.iter().sum();
    if total <= 0.0 {
        return " ".repeat(width);
    }
    let exact: Vec<f64> = shares
        .iter()
        .map(|s| s / total.max(100.0) * width as f64)
        .collect();
    let mut cells: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let target = (total.min(100.0) / 100.0 * width as f64).round() as usize;
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for &i in order
        .iter()
        .cycle()
        .take(target.saturating_sub(cells.iter().sum()))
    {
        cells[i] += 1;
    }
    let mut bar: String = cells
        .iter()
        .zip(SPLIT_GLYPHS)
        .map(|(&n, g)| g.to_string().repeat(n))
        .collect();
    let used = bar.chars().count();
    bar.push_str(&" ".repeat(width.saturating_sub(used)));
    bar
}

/// A column of the threads table: its header, width, and rank (columns of a higher rank are
/// dropped first when the terminal is narrow).
struct Column {
    header: &'static str,
    width: u16,
    rank: u8,
}

/// The columns, in display order. "FUNCTION NOW" takes what is left (at least 10).
const COLUMNS: [Column; 13] = [
    Column {
        header: "TID",
        width: 7,
        rank: 0,
    },
    Column {
        header: "THREAD",
        width: 12,
        rank: 0,
    },
    Column {
        header: "ST",
        width: 4,
        rank: 0,
    },
    Column {
        header: "CPU%",
        width: 5,
        rank: 0,
    },
    Column {
        header: "RUNQ%",
        width: 5,
        rank: 3,
    },
    Column {
        header: "GIL%",
        width: 5,
        rank: 1,
    },
    Column {
        header: "WAIT%",
        width: 5,
        rank: 1,
    },
    Column {
        header: "IDLE%",
        width: 5,
        rank: 4,
    },
    Column {
        header: "GIL/STATE",
        width: SPLIT_WIDTH as u16,
        rank: 5,
    },
    Column {
        header: "FLT/s",
        width: 6,
        rank: 4,
    },
    Column {
        header: "CSW/s",
        width: 6,
        rank: 4,
    },
    Column {
        header: "IO/s",
        width: 9,
        rank: 2,
    },
    // Shown only when some thread was sampled inside a garbage collection.
    Column {
        header: "GC%",
        width: 5,
        rank: 3,
    },
];
/// Index of the GC% column.
const GC_COLUMN: usize = 12;
/// Least width of "FUNCTION NOW".
const FUNCTION_MIN: u16 = 10;

/// Which columns fit in `width` (highest ranks dropped first), with the thread names' width:
/// as wide as the longest name up to 20, at least 12 when the names need it.
fn columns_for(width: u16, longest_name: usize, gc: bool) -> (Vec<usize>, u16) {
    let name_width = (longest_name as u16).clamp(6, 20);
    let need = |shown: &[usize], name: u16| -> u16 {
        shown
            .iter()
            .map(|&i| if i == 1 { name } else { COLUMNS[i].width } + 1)
            .sum::<u16>()
            + FUNCTION_MIN
    };
    let mut shown: Vec<usize> = (0..COLUMNS.len())
        .filter(|&i| gc || i != GC_COLUMN)
        .collect();
    let mut name = name_width;
    for rank in (1..=5).rev() {
        if need(&shown, name) <= width {
            break;
        }
        shown.retain(|&i| COLUMNS[i].rank != rank);
    }
    // Still too wide: names give way, down to 12 (then 6).
    while need(&shown, name) > width && name > 6 {
        name -= 1;
        if name < 12 && longest_name >= 12 && need(&shown, 12) <= width {
            name = 12;
            break;
        }
    }
    (shown, name)
}

/// One row of the threads table, with the cells of the `shown` columns.
fn thread_row(
    t: &ThreadRow,
    shown: &[usize],
    name_width: usize,
    exited: bool,
    per_s: &dyn Fn(u64) -> String,
    io_per_s: &dyn Fn(u64) -> String,
) -> Row<'static> {
    let now = t
        .stack
        .first()
        .map_or_else(String::new, |f| f.name.to_string());
    // After the target exited, no thread runs or holds the GIL any more.
    let state = if t.alive && !exited {
        let gil = if t.gil == GilState::Held { "*" } else { "" };
        format!("{}{gil}", t.state.letter())
    } else {
        "gone".into()
    };
    let cell = |i: usize| -> String {
        match i {
            0 => t.tid.to_string(),
            1 => fmt::truncate(t.name.as_deref().unwrap_or("-"), name_width),
            2 => state.clone(),
            3 => format!("{:.1}", t.cpu_percent),
            4 => format!("{:.1}", t.runqueue_wait_percent),
            5 => format!("{:.1}", t.gil_held_percent),
            6 => format!("{:.1}", t.gil_wait_percent),
            7 => format!("{:.1}", t.idle_percent),
            8 => split_bar(
                [
                    t.gil_held_percent,
                    t.gil_wait_percent,
                    t.native_percent,
                    t.blocked_percent,
                    t.sleep_percent,
                ],
                SPLIT_WIDTH,
            ),
            9 => per_s(t.minor_faults + t.major_faults),
            10 => per_s(t.voluntary_ctxsw + t.involuntary_ctxsw),
            GC_COLUMN => format!("{:.1}", t.gc_percent),
            _ => io_per_s(t.read_bytes + t.write_bytes),
        }
    };
    let mut cells: Vec<String> = shown.iter().map(|&i| cell(i)).collect();
    cells.push(now);
    Row::new(cells)
}

/// Draws the threads table: every thread when there is room, else as many as fit and a
/// "+N more" mark in the title.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let threads: Vec<_> = app
        .snapshot
        .threads
        .iter()
        .filter(|t| t.is_python)
        .collect();
    let longest = threads
        .iter()
        .map(|t| t.name.as_deref().map_or(1, |n| n.chars().count()))
        .max()
        .unwrap_or(6);
    let (shown, name_width) = columns_for(area.width, longest, app.snapshot.gc.samples > 0);
    let mut headers: Vec<&str> = shown.iter().map(|&i| COLUMNS[i].header).collect();
    headers.push("FUNCTION NOW");
    let header = Row::new(headers).style(theme.title);
    let duration = app.snapshot.duration_s;
    let per_s = |n: u64| {
        if duration > 0.0 {
            format!("{:.0}", n as f64 / duration)
        } else {
            "-".into()
        }
    };
    let io_per_s = |n: u64| {
        if duration > 0.0 && n > 0 {
            fmt::bytes((n as f64 / duration).round() as u64)
        } else {
            String::new()
        }
    };
    let exited = app.snapshot.exited;
    let rows = threads.iter().map(|t| {
        thread_row(
            t,
            &shown,
            usize::from(name_width),
            exited,
            &per_s,
            &io_per_s,
        )
    });
    let mut widths: Vec<Constraint> = shown
        .iter()
        .map(|&i| Constraint::Length(if i == 1 { name_width } else { COLUMNS[i].width }))
        .collect();
    widths.push(Constraint::Min(FUNCTION_MIN));
    let table = Table::new(rows, widths).header(header);
    let selected = app
        .view
        .selected_thread
        .and_then(|tid| threads.iter().position(|t| t.tid == tid));
    let title = title(app, &threads, area);
    super::draw_list(frame, area, table, title, selected, theme);
}

/// The pane's title: focus, the thread focus by name, how many rows are hidden, and (when
/// there is room) the legend and window.
fn title(app: &App, threads: &[&ThreadRow], area: Rect) -> String {
    let focus = if app.view.focus == Pane::Threads {
        " [focus]"
    } else {
        ""
    };
    let filter = match app.view.thread_focus {
        Some(tid) => {
            let name = threads
                .iter()
                .find(|t| t.tid == tid)
                .and_then(|t| t.name.clone())
                .unwrap_or_else(|| tid.to_string());
            format!(" · functions of {name} only (t: all)")
        }
        None => String::new(),
    };
    let rows = usize::from(area.height.saturating_sub(2));
    let more = if threads.len() > rows {
        format!(" · +{} more (↑↓ scroll)", threads.len() - rows)
    } else {
        String::new()
    };
    let window = if app.view.windowed {
        "last second"
    } else {
        "session"
    };
    let head = format!("Threads{focus}{filter}{more} · over the {window}");
    let legend = " · * holds the GIL · RUNQ% waited for a CPU · split: █ holds ▓ waits ▒ native ░ blocked · sleeps";
    if head.chars().count() + legend.chars().count() <= usize::from(area.width) {
        head + legend
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::split_bar;

    #[test]
    fn split_bars_fill_their_width_in_proportion() {
        assert_eq!(split_bar([50.0, 50.0, 0.0, 0.0, 0.0], 10), "█████▓▓▓▓▓");
        assert_eq!(split_bar([0.0, 0.0, 100.0, 0.0, 0.0], 4), "▒▒▒▒");
        assert_eq!(
            split_bar([33.4, 33.3, 0.0, 33.3, 0.0], 10).chars().count(),
            10
        );
        assert_eq!(split_bar([0.0; 5], 3), "   ");
        // Shares short of 100 % (unreadable system calls) leave the rest blank.
        assert_eq!(split_bar([50.0, 0.0, 0.0, 0.0, 0.0], 10), "█████     ");
    }
}
