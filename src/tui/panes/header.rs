//! Header: what the target is and its process figures.

use std::fmt::Write as _;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::fmt;
use crate::tui::app::App;

/// Lines the header takes.
pub const HEIGHT: u16 = 5;

/// Draws the header.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let p = &app.snapshot;
    let theme = app.theme();
    let per_s = |n: u64| {
        if p.duration_s > 0.0 {
            n as f64 / p.duration_s
        } else {
            0.0
        }
    };
    let last = p.timeline.last();
    let mut state = Vec::new();
    if p.exited {
        state.push(Span::styled(
            " TARGET EXITED (data kept; q quits) ",
            theme.warn,
        ));
    }
    if app.view.paused {
        state.push(Span::styled(" PAUSED ", theme.warn));
    }
    let width = area.width;
    let mut first = vec![
        Span::styled(format!("PID {} ", p.pid), theme.title),
        Span::raw(p.cmdline.join(" ")),
    ];
    first.splice(0..0, state);
    // Averages are over the view's window: the session, or the last second with `w`.
    let window = if app.view.windowed { "last s" } else { "avg" };
    let cpu = cpu_items(app);
    let lines = vec![
        Line::from(first),
        fit(
            vec![
                item(format!("Python {}", p.python_version)),
                item(format!(
                    "{} {}",
                    if app.view.windowed { "last" } else { "session" },
                    fmt::seconds(p.duration_s)
                )),
                item(format!(
                    "{} at {:.1} Hz ({} requested)",
                    fmt::counted(p.samples, "sample"),
                    p.rate_hz,
                    app.rate_hz
                )),
                // A replay's process is not running now: no uptime to tell.
                item(if app.replay {
                    String::new()
                } else {
                    format!(
                        "up {}",
                        app.target_uptime_s.map_or_else(|| "?".into(), fmt::seconds)
                    )
                }),
                item(format!("hptop CPU {}", fmt::percent(app.hptop_cpu_percent))),
            ],
            width,
        ),
        fit(cpu, width),
        fit(
            vec![
                item(format!(
                    "faults/s {:.0} minor, {:.0} major (last s)",
                    last.map_or(0.0, |t| t.minor_faults_per_s),
                    last.map_or(0.0, |t| t.major_faults_per_s),
                )),
                item(format!(
                    "ctxsw/s {:.0} vol, {:.0} invol ({window})",
                    per_s(p.voluntary_ctxsw),
                    per_s(p.involuntary_ctxsw),
                )),
                item(format!(
                    "I/O/s {} read, {} written ({window})",
                    fmt::bytes(per_s(p.read_bytes) as u64),
                    fmt::bytes(per_s(p.write_bytes) as u64),
                )),
            ],
            width,
        ),
        memory_line(app, width),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

/// The CPU line's figures, most telling first.
fn cpu_items(app: &App) -> Vec<Vec<Span<'static>>> {
    let p = &app.snapshot;
    let theme = app.theme();
    let last = p.timeline.last();
    let mut cpu = vec![item(format!(
        "CPU {} now (avg {})",
        fmt::percent(last.map_or(p.cpu_percent, |t| t.cpu_percent)),
        fmt::percent(p.cpu_percent)
    ))];
    if crate::model::verdict::runqueue(p).is_some() {
        cpu.push(vec![Span::styled(
            format!(
                "OVERLOADED: CPU wait {}",
                fmt::percent(p.runqueue_wait_percent)
            ),
            theme.warn,
        )]);
    }
    cpu.push(item(format!(
        "GIL held {} / wanted {}",
        fmt::percent(p.gil_held_percent),
        fmt::percent(p.gil_wanted_percent)
    )));
    // Then the thread count and, rarer, partial stacks and hand-offs.
    if p.partial_stacks_percent > 1.0 {
        cpu.push(item(format!(
            "PARTIAL stacks {}",
            fmt::percent(p.partial_stacks_percent)
        )));
    }
    if p.gc.samples > 0 {
        // Time in the cyclic garbage collector (the `<GC>` row's own share in cpu mode).
        cpu.push(item(format!("GC {}", fmt::percent(p.gc.percent))));
    }
    if p.stacks_reread > 0 {
        // Walks that raced with their thread: read again, or dropped (docs/figures.md).
        cpu.push(item(format!(
            "stacks re-read {}, dropped {}",
            fmt::count(p.stacks_reread),
            fmt::count(p.stacks_dropped)
        )));
    }
    // Live: threads running now. A replay or an exited process has none running "now":
    // the threads seen in the window, as the threads pane lists them.
    cpu.push(item(if app.replay || p.exited {
        format!("{} seen", fmt::counted(p.threads.len() as u64, "thread"))
    } else {
        fmt::counted(
            p.threads.iter().filter(|t| t.alive).count() as u64,
            "thread",
        )
    }));
    if p.gil_located {
        if let Some(h) = p.gil_handoffs_per_s {
            cpu.push(item(format!("{h:.0} hand-offs/s")));
        }
    } else {
        cpu.push(item("GIL waits not measured (GIL not located)".into()));
    }
    cpu
}

/// One header figure: kept whole or left out, never cut mid-number.
fn item(text: String) -> Vec<Span<'static>> {
    vec![Span::raw(text)]
}

/// The figures that fit in `width`, in order of importance, joined by " · "; a figure too
/// long for what is left is left out (a shorter one after it may still fit).
fn fit(items: Vec<Vec<Span<'static>>>, width: u16) -> Line<'static> {
    let mut spans = Vec::new();
    let mut used = 0usize;
    for item in items {
        let len: usize = item.iter().map(|s| s.content.chars().count()).sum();
        if len == 0 {
            continue;
        }
        let sep = if spans.is_empty() { 0 } else { 3 };
        if used + sep + len > usize::from(width) {
            continue;
        }
        if sep > 0 {
            spans.push(Span::raw(" · "));
        }
        used += sep + len;
        spans.extend(item);
    }
    Line::from(spans)
}

/// RSS, its trend and split, PSS/USS, and the leak hint when growth is sustained; the most
/// telling figures first: what does not fit in `width` is left out whole.
fn memory_line(app: &App, width: u16) -> Line<'static> {
    let p = &app.snapshot;
    let m = &p.memory;
    let mut rss = format!("RSS {}", fmt::bytes(p.rss_bytes));
    if let Some(g) = m.growth {
        let _ = write!(
            rss,
            " {} over {}",
            fmt::rate_bytes(g.bytes_per_s),
            fmt::seconds(g.window_s)
        );
    }
    let mut items = vec![item(rss)];
    if let Some(first) = m.leak_suspects.first() {
        items.push(vec![Span::styled(
            format!(
                "RSS GROWS steadily; new pages first touched by: {} (not proof of what retains them)",
                first.name
            ),
            app.theme().warn,
        )]);
    }
    if let Some(r) = m.rollup {
        // Read every 10 s or more (see `collect::smaps`): an older figure says its age.
        let age = m
            .rollup_age_s
            .filter(|&age| age >= 5.0)
            .map_or_else(String::new, |age| format!(" ({} old)", fmt::seconds(age)));
        items.push(item(format!(
            "PSS {} USS {}{age}",
            fmt::bytes(r.pss_bytes),
            fmt::bytes(r.uss_bytes)
        )));
    }
    items.push(item(format!("peak {}", fmt::bytes(p.rss_peak_bytes))));
    items.push(item(format!(
        "anon {} file {} shmem {}",
        fmt::bytes(m.split.anon_bytes),
        fmt::bytes(m.split.file_bytes),
        fmt::bytes(m.split.shmem_bytes),
    )));
    items.push(item(format!("swap {}", fmt::bytes(p.swap_bytes))));
    fit(items, width)
}
