//! Render tests: hand-made snapshots drawn with ratatui's `TestBackend`; the screen text is
//! asserted, at normal and tiny sizes.

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::app::{App, Effect, Pane, SortColumn};
use super::keymap::Action;
use crate::collect::tick::{Frame, GilState, OsState};
use crate::model::snapshot::{FunctionRow, LineRow, Mode, ProcessSnapshot, ThreadRow};

fn function(name: &str, own: u64, total: u64, lines: &[(u32, u64)]) -> FunctionRow {
    FunctionRow {
        name: name.into(),
        filename: "/srv/app/jobs.py".into(),
        short_filename: Some("jobs.py".into()),
        own_samples: own,
        total_samples: total,
        own_percent: own as f64,
        total_percent: total as f64,
        own_s: own as f64 * 0.01,
        total_s: total as f64 * 0.01,
        hottest_line: lines.first().map_or(0, |l| l.0),
        lines: lines
            .iter()
            .map(|&(line, n)| LineRow {
                line,
                own_samples: n,
                total_samples: n,
                own_percent: n as f64,
                total_percent: n as f64,
                own_s: n as f64 * 0.01,
                total_s: n as f64 * 0.01,
                ..LineRow::default()
            })
            .collect(),
        ..FunctionRow::default()
    }
}

fn thread(tid: u32, name: &str, gil: GilState, now: &str) -> ThreadRow {
    ThreadRow {
        tid,
        name: Some(name.into()),
        alive: true,
        is_python: true,
        state: OsState::Running,
        gil,
        samples: 100,
        cpu_percent: 50.0,
        stack: vec![Frame {
            name: now.into(),
            ..Frame::default()
        }],
        ..ThreadRow::default()
    }
}

fn snapshot() -> ProcessSnapshot {
    ProcessSnapshot {
        pid: 4242,
        cmdline: vec!["python3".into(), "etl.py".into()],
        python_version: "3.12.1".into(),
        duration_s: 12.0,
        samples: 1200,
        rate_hz: 99.5,
        counted_samples: 100,
        seconds_per_sample: 0.01,
        threads: vec![
            thread(4242, "MainThread", GilState::NotHeld, "join"),
            thread(4250, "parser-0", GilState::Held, "parse_row"),
        ],
        functions: vec![
            function("parse_row", 60, 60, &[(12, 40), (13, 20)]),
            function("load", 30, 35, &[(40, 30)]),
            function("main", 0, 100, &[(90, 100)]),
        ],
        ..ProcessSnapshot::default()
    }
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| super::draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn function_order(screen: &str) -> Vec<&str> {
    let names = ["parse_row", "load", "main"];
    let mut found: Vec<(usize, &str)> = names
        .iter()
        .filter_map(|n| Some((screen.find(&format!("{n} ("))?, *n)))
        .collect();
    found.sort_unstable();
    found.into_iter().map(|(_, n)| n).collect()
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

#[test]
fn many_dropped_stacks_are_said_in_the_functions_title_at_80_columns() {
    let mut p = snapshot();
    p.stacks_dropped = 400;
    p.stacks_dropped_percent = 71.4;
    let screen = render(&App::new(p, 100.0, false, Mode::Samples), 80, 24);
    assert!(screen.contains("· 71.4% dropped · mode"), "{screen}");
    let mut few = snapshot();
    few.stacks_dropped_percent = 1.0;
    let screen = render(&App::new(few, 100.0, false, Mode::Samples), 80, 24);
    assert!(!screen.contains("dropped ·"), "{screen}");
}

#[test]
fn the_functions_title_says_what_the_shares_are_a_sample_of() {
    // cpu mode: the stacks seen on a CPU, as the text report says; other modes: the
    // thread-samples counted.
    let mut p = snapshot();
    p.on_cpu_stacks = 1234;
    p.counted_samples = 5678;
    let screen = render(&App::new(p.clone(), 100.0, false, Mode::Cpu), 80, 24);
    assert!(screen.contains("1,234 seen on a CPU"), "{screen}");
    assert!(!screen.contains("5,678"), "{screen}");
    let screen = render(&App::new(p, 100.0, false, Mode::Samples), 80, 24);
    assert!(screen.contains("5,678 thread-samples"), "{screen}");
}

#[test]
fn every_pane_shows_its_figures() {
    let app = App::new(snapshot(), 100.0, false, Mode::Samples);
    let screen = render(&app, 120, 30);
    for needle in [
        "PID 4242",
        "python3 etl.py",
        "Python 3.12.1",
        "99.5 Hz (100 requested)",
        "CPU ",
        "RSS ",
        "GIL held",
        "MainThread",
        "parser-0",
        "parse_row (jobs.py:12)",
        "%Own↓",
        "? help",
    ] {
        assert!(screen.contains(needle), "{needle:?} missing:\n{screen}");
    }
    // The GIL holder is marked.
    let row = screen.lines().find(|l| l.contains("parser-0")).unwrap();
    assert!(row.contains("R*"), "{row}");
    assert!(screen.contains("GIL/STATE"), "{screen}");
    assert_eq!(function_order(&screen), ["parse_row", "load", "main"]);
}

#[test]
fn sorting_inverting_filtering_and_lines() {
    let mut app = App::new(snapshot(), 100.0, false, Mode::Samples);
    app.apply(Action::SortNext, 10);
    assert_eq!(
        function_order(&render(&app, 120, 30)),
        ["main", "parse_row", "load"]
    );
    app.apply(Action::Invert, 10);
    assert_eq!(
        function_order(&render(&app, 120, 30)),
        ["load", "parse_row", "main"]
    );
    app.apply(Action::Invert, 10);
    app.apply(Action::SortPrev, 10);

    app.key(key('/'), 10);
    for c in "LOA".chars() {
        app.key(key(c), 10);
    }
    app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), 10);
    let screen = render(&app, 120, 30);
    assert_eq!(function_order(&screen), ["load"], "case-insensitive filter");
    assert!(screen.contains("filter: LOA"));
    app.key(key('/'), 10);
    app.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE), 10);
    assert_eq!(
        function_order(&render(&app, 120, 30)).len(),
        3,
        "Esc clears the filter"
    );

    app.apply(Action::ToggleLines, 10);
    let screen = render(&app, 120, 30);
    assert!(
        screen.contains("parse_row (jobs.py:12)") && screen.contains("parse_row (jobs.py:13)"),
        "{screen}"
    );
    assert!(screen.contains("by line"));
}

#[test]
fn selection_follows_the_function_when_rows_re_sort() {
    let mut app = App::new(snapshot(), 100.0, false, Mode::Samples);
    app.apply(Action::Down, 10); // first row: parse_row
    app.apply(Action::Down, 10); // load
    let selected = app.view.selected_function.clone().unwrap();
    assert!(selected.ends_with("load"));
    // New figures put `load` first: the selection stays on `load`.
    let mut next = snapshot();
    next.functions[1].own_samples = 99;
    next.functions[1].own_percent = 99.0;
    app.set_snapshot(next);
    let rows = app.function_lines();
    assert_eq!(rows[0].name, "load");
    assert_eq!(app.selected_function_index(&rows), Some(0));
    // Threads pane: Tab, then selection by tid; `t` focuses functions on it.
    app.apply(Action::NextPane, 10);
    assert_eq!(app.view.focus, Pane::Threads);
    app.apply(Action::Down, 10);
    app.apply(Action::Down, 10);
    assert_eq!(app.view.selected_thread, Some(4250));
    assert_eq!(app.apply(Action::ThreadFocus, 10), Effect::Requery);
    assert_eq!(app.query().thread, Some(4250));
    assert!(render(&app, 120, 30).contains("functions of parser-0 only"));
}

#[test]
fn exited_paused_and_help_states() {
    let mut snap = snapshot();
    snap.exited = true;
    let mut app = App::new(snap, 100.0, false, Mode::Samples);
    assert_eq!(app.apply(Action::Pause, 10), Effect::Pause(true));
    app.status = Some("sampling stopped: read went wrong; the figures so far stay".into());
    let screen = render(&app, 120, 30);
    assert!(
        screen.contains("TARGET EXITED") && screen.contains("PAUSED"),
        "{screen}"
    );
    assert!(
        screen.contains("sampling stopped: read went wrong"),
        "{screen}"
    );
    app.apply(Action::Help, 10);
    let screen = render(&app, 120, 30);
    for binding in super::keymap::BINDINGS {
        assert!(
            screen.contains(binding.help),
            "help lacks {:?}",
            binding.help
        );
    }
    assert_eq!(app.apply(Action::Quit, 10), Effect::Quit);
}

#[test]
fn any_size_renders_without_panic_and_tiny_ones_say_what_they_need() {
    let app = App::new(snapshot(), 100.0, false, Mode::Samples);
    for width in (0..=130).step_by(7) {
        for height in (0..=45).step_by(3) {
            render(&app, width, height);
        }
    }
    let screen = render(&app, 40, 10);
    assert!(screen.contains("hptop needs 60x16"), "{screen}");
    assert!(screen.contains("40x10"));
    let mut helped = App::new(snapshot(), 100.0, false, Mode::Samples);
    helped.apply(Action::Help, 10);
    render(&helped, 60, 16);
}

#[test]
fn no_color_keeps_only_modifiers() {
    let theme = super::theme::Theme::new(true);
    assert_eq!(theme.warn.fg, None);
    assert_eq!(theme.graph.fg, None);
    assert!(super::theme::Theme::new(false).warn.fg.is_some());
}

#[test]
fn detail_pane_shows_callers_callees_and_source_heat() {
    use crate::model::snapshot::{CallRow, FunctionDetail};
    let mut app = App::new(snapshot(), 100.0, false, Mode::Samples);
    assert_eq!(app.apply(Action::Detail, 10), Effect::Requery);
    assert_eq!(
        app.selected_function_id(),
        Some(("/srv/app/jobs.py", "parse_row"))
    );
    app.detail = Some(FunctionDetail {
        name: "parse_row".into(),
        filename: "/srv/app/jobs.py".into(),
        callers: vec![CallRow {
            name: "main".into(),
            file: "jobs.py".into(),
            samples: 60,
        }],
        callees: vec![],
        lines: vec![
            LineRow {
                line: 12,
                own_samples: 40,
                total_samples: 40,
                ..LineRow::default()
            },
            LineRow {
                line: 13,
                own_samples: 20,
                total_samples: 20,
                ..LineRow::default()
            },
        ],
    });
    app.source = Some(
        (1..=20)
            .map(|n| format!("source line {n}"))
            .collect::<Vec<_>>()
            .into(),
    );
    app.snapshot.functions[0].gil_held_while_waited = 37;
    let screen = render(&app, 140, 40);
    assert!(
        screen.contains("Called by") && screen.contains("main (jobs.py)"),
        "{screen}"
    );
    assert!(screen.contains("(none)"));
    let hot = screen
        .lines()
        .find(|l| l.contains("source line 12"))
        .unwrap();
    let warm = screen
        .lines()
        .find(|l| l.contains("source line 13"))
        .unwrap();
    assert!(
        hot.matches('█').count() > warm.matches('█').count(),
        "{hot}\n{warm}"
    );
    assert!(hot.contains("40"));
    assert!(
        screen.contains("Held the GIL while others waited: 37 samples"),
        "{screen}"
    );
    app.source = None;
    assert!(render(&app, 140, 40).contains("source not readable"));
}

#[test]
fn mouse_clicks_select_rows_and_sort_columns() {
    use ratatui::layout::Rect;
    let mut app = App::new(snapshot(), 100.0, false, Mode::Samples);
    let area = Rect::new(0, 0, 120, 30);
    let areas = super::Areas::of(area, &app);
    let header_y = areas.functions.y + 1;
    // %Total header (columns: %Own 0-5, gap, %Total 7-13).
    super::click(&mut app, area, areas.functions.x + 9, header_y);
    assert_eq!(app.view.sort, super::app::SortColumn::Total);
    super::click(&mut app, area, areas.functions.x + 9, header_y);
    assert!(app.view.reverse, "a second click inverts");
    super::click(&mut app, area, areas.functions.x + 50, header_y);
    assert_eq!(app.view.sort, super::app::SortColumn::Name);
    // Third function row: by name, not reversed -> load, main, parse_row.
    app.view.reverse = false;
    super::click(
        &mut app,
        area,
        areas.functions.x + 50,
        areas.functions.y + 2 + 2,
    );
    assert_eq!(
        app.selected_function_id(),
        Some(("/srv/app/jobs.py", "parse_row"))
    );
    // Second thread row.
    super::click(&mut app, area, areas.threads.x + 3, areas.threads.y + 3);
    assert_eq!(app.view.selected_thread, Some(4250));
    assert_eq!(app.view.focus, Pane::Threads);
    // Clicks on a tiny screen or outside tables change nothing.
    super::click(&mut app, Rect::new(0, 0, 20, 5), 1, 1);
    super::click(&mut app, area, 1, 0);
    assert_eq!(app.view.selected_thread, Some(4250));
}

#[test]
fn the_counter_column_ranks_functions_by_the_chosen_counter_per_second() {
    let mut snap = snapshot();
    // `load` faults 2,400 pages over the 12 s window (200/s); `parse_row` none.
    snap.functions[1].credited.minor_faults = 2400.0;
    snap.functions[0].credited.cpu_s = 6.0;
    snap.memory.growth = Some(crate::model::memory::Growth {
        bytes_per_s: 2.0 * 1024.0 * 1024.0,
        window_s: 90.0,
        r2: 0.99,
        sustained: true,
    });
    snap.memory.leak_suspects = vec![crate::model::snapshot::LeakSuspect {
        name: "load".into(),
        ..Default::default()
    }];
    let mut app = App::new(snap, 100.0, false, Mode::Samples);
    // CPU first: 6 s over 12 s is 50 % of a core.
    let screen = render(&app, 130, 40);
    assert!(screen.contains("CPU%"), "{screen}");
    assert!(screen.contains("50.0"), "{screen}");
    app.apply(Action::NextCounter, 10);
    assert_eq!(app.view.sort, SortColumn::Counter);
    let rows = app.function_lines();
    assert_eq!(rows[0].name, "load");
    assert!((rows[0].counter_rate - 200.0).abs() < 1e-9);
    let screen = render(&app, 130, 40);
    assert!(screen.contains("minflt/s"), "{screen}");
    assert!(screen.contains("200"), "{screen}");
    assert!(screen.contains("+2.0 MiB/s"), "{screen}");
    assert!(screen.contains("RSS GROWS"), "{screen}");
}

#[test]
fn the_workers_pane_lists_processes_marks_stragglers_and_focuses_the_selected_one() {
    use crate::model::snapshot::{Straggler, WorkerRow};
    let worker = |pid: u32, cpu: f64, straggler: Option<Straggler>| WorkerRow {
        pid,
        ppid: 4242,
        state: 'R',
        cpu_percent: cpu,
        rss_bytes: 40 << 20,
        hottest: Some("crunch".into()),
        straggler,
        ..WorkerRow::default()
    };
    let mut app = App::new(snapshot(), 100.0, false, Mode::Samples);
    app.follow = true;
    app.workers = vec![
        WorkerRow {
            pid: 4242,
            is_root: true,
            state: 'S',
            hottest: Some("select".into()),
            ..WorkerRow::default()
        },
        worker(5001, 98.0, None),
        worker(5002, 97.0, None),
        worker(5003, 12.0, Some(Straggler::Slow)),
    ];
    let screen = render(&app, 130, 45);
    for needle in [
        "Workers",
        "4 processes",
        "parent",
        "worker",
        "slow",
        "crunch",
    ] {
        assert!(screen.contains(needle), "{needle:?} missing:\n{screen}");
    }
    assert_eq!(app.shown_process(), Some(4242));
    app.apply(Action::NextPane, 10);
    app.apply(Action::NextPane, 10);
    assert_eq!(app.view.focus, Pane::Workers);
    app.apply(Action::Down, 10);
    assert_eq!(app.shown_process(), Some(5001));
    assert!(render(&app, 130, 45).contains("showing 5001"));
    assert_eq!(app.apply(Action::Merge, 10), Effect::Requery);
    assert_eq!(app.shown_process(), None);
    assert!(render(&app, 130, 45).contains("all merged"));
    // Without followers and with one process, no workers pane.
    let single = App::new(snapshot(), 100.0, false, Mode::Samples);
    assert!(!render(&single, 130, 45).contains("Workers"));
}

#[test]
fn overload_partial_stacks_run_queue_and_mode_are_shown() {
    let mut snap = snapshot();
    snap.runqueue_wait_percent = 53.0;
    snap.partial_stacks_percent = 4.0;
    snap.threads[1].runqueue_wait_percent = 61.5;
    let mut app = App::new(snap, 100.0, false, Mode::Cpu);
    let screen = render(&app, 160, 40);
    assert!(screen.contains("OVERLOADED: CPU wait 53"), "{screen}");
    assert!(screen.contains("PARTIAL stacks 4"), "{screen}");
    assert!(
        screen.contains("RUNQ%") && screen.contains("61.5"),
        "{screen}"
    );
    assert!(screen.contains("mode cpu (M)"), "{screen}");
    assert_eq!(
        super::keymap::action(key('M')),
        Some(Action::NextMode),
        "M cycles the mode"
    );
    app.apply(Action::NextMode, 10);
    assert_eq!(app.view.mode, Mode::Samples);
    assert!(app.query().mode == Mode::Samples);
    assert!(render(&app, 160, 40).contains("mode samples (M)"));
}

/// A 6-thread ETL job with 12-character names, some I/O and a full header.
fn six_threads() -> ProcessSnapshot {
    let mut snap = snapshot();
    snap.threads = [
        (4242, "MainThread"),
        (4250, "parser-00001"),
        (4251, "parser-00002"),
        (4252, "hasher-blake"),
        (4253, "writer-batch"),
        (4254, "loader-chunk"),
    ]
    .into_iter()
    .map(|(tid, name)| {
        let mut t = thread(tid, name, GilState::NotHeld, "parse_row");
        t.write_bytes = 10_066_329;
        t
    })
    .collect();
    snap.rss_bytes = 50_123_456;
    snap.rss_peak_bytes = 51_123_456;
    snap.gil_located = true;
    snap.gil_handoffs_per_s = Some(124.0);
    snap
}

#[test]
fn at_80x24_every_thread_shows_with_its_name_and_numbers_keep_their_units() {
    for (width, height) in [(80, 24), (100, 30), (120, 40)] {
        let app = App::new(six_threads(), 100.0, false, Mode::Cpu);
        let screen = render(&app, width, height);
        for name in [
            "MainThread",
            "parser-00001",
            "parser-00002",
            "hasher-blake",
            "writer-batch",
            "loader-chunk",
        ] {
            assert!(
                screen.contains(name),
                "{width}x{height}: {name} missing\n{screen}"
            );
        }
        // 10 MiB over 12 s: the I/O column keeps its unit.
        assert!(
            screen.contains("819.2 KiB"),
            "{width}x{height}: I/O unit\n{screen}"
        );
        assert!(
            screen.contains("parse_row ("),
            "{width}x{height}: functions\n{screen}"
        );
        assert!(
            !screen.contains("more (↑↓ scroll)"),
            "{width}x{height}\n{screen}"
        );
        // Header figures are whole or absent: never cut mid-number.
        for line in screen.lines().take(5) {
            let line = line.trim_end();
            assert!(
                !line.ends_with('.') && !line.ends_with(" ·"),
                "{width}x{height}: cut header line {line:?}"
            );
        }
    }
}

#[test]
fn many_threads_at_80x24_scroll_with_a_mark_of_how_many_are_hidden() {
    let mut snap = six_threads();
    let more: Vec<ThreadRow> = (0..30)
        .map(|i| thread(5000 + i, &format!("pool-{i}"), GilState::NotHeld, "wait"))
        .collect();
    snap.threads.extend(more);
    let app = App::new(snap, 100.0, false, Mode::Cpu);
    let screen = render(&app, 80, 24);
    assert!(screen.contains("more (↑↓ scroll)"), "{screen}");
    // The functions pane keeps room for its hottest rows.
    assert!(screen.contains("parse_row ("), "{screen}");
}

#[test]
fn the_footer_names_the_keys_of_the_focused_pane() {
    let mut app = App::new(snapshot(), 100.0, false, Mode::Cpu);
    assert!(render(&app, 120, 30).contains("Enter detail"));
    app.apply(Action::NextPane, 10);
    let screen = render(&app, 120, 30);
    assert!(screen.contains("t its functions only"), "{screen}");
    app.apply(Action::ThreadFocus, 10);
    assert!(render(&app, 120, 30).contains("t all threads again"));
}

/// Issue 23: in cpu mode a function's shares are CPU seconds, not samples; the pane sorts by
/// the very figure each column shows, in both directions, by function and by line.
#[test]
fn every_sort_column_orders_rows_by_the_figure_it_shows_in_both_directions() {
    let cpu_row = |name: &str, samples: u64, own: f64, total: f64, cpu_s: f64| {
        let mut f = function(name, samples, samples, &[]);
        (f.own_percent, f.total_percent, f.own_s, f.total_s) = (own, total, cpu_s, cpu_s * 2.0);
        f.credited.cpu_s = cpu_s;
        f.lines = vec![
            LineRow {
                line: 1,
                own_samples: samples,
                total_samples: samples,
                own_percent: own * 0.25,
                total_percent: total * 0.25,
                ..LineRow::default()
            },
            LineRow {
                line: 2,
                own_samples: 1,
                total_samples: 1,
                own_percent: own * 0.75,
                total_percent: total * 0.75,
                ..LineRow::default()
            },
        ];
        f
    };
    let mut snap = snapshot();
    // Samples and CPU disagree, as when runnable threads wait at system-call sites.
    snap.functions = vec![
        cpu_row("waits_often", 90, 4.1, 10.0, 0.4),
        cpu_row("runs_most", 10, 86.6, 90.0, 8.6),
        cpu_row("middling", 50, 7.2, 50.0, 0.7),
        cpu_row("rare", 5, 0.9, 5.0, 0.1),
    ];
    let mut app = App::new(snap, 100.0, false, Mode::Cpu);
    for by_line in [false, true] {
        if by_line {
            app.apply(Action::ToggleLines, 10);
        }
        for column in [
            SortColumn::Own,
            SortColumn::Total,
            SortColumn::Counter,
            SortColumn::Name,
        ] {
            for reverse in [false, true] {
                app.view.sort = column;
                app.view.reverse = reverse;
                let rows = app.function_lines();
                let ordered = rows.windows(2).all(|w| {
                    let (a, b) = (&w[0], &w[1]);
                    let down = match column {
                        SortColumn::Own => a.own_percent >= b.own_percent,
                        SortColumn::Total => a.total_percent >= b.total_percent,
                        SortColumn::Counter => a.counter_rate >= b.counter_rate,
                        SortColumn::Name => a.name <= b.name,
                    };
                    let up = match column {
                        SortColumn::Own => a.own_percent <= b.own_percent,
                        SortColumn::Total => a.total_percent <= b.total_percent,
                        SortColumn::Counter => a.counter_rate <= b.counter_rate,
                        SortColumn::Name => a.name >= b.name,
                    };
                    if reverse {
                        up
                    } else {
                        down
                    }
                });
                let shown: Vec<(&str, f64)> = rows
                    .iter()
                    .map(|r| (r.name.as_str(), r.own_percent))
                    .collect();
                assert!(
                    ordered,
                    "{column:?} reverse {reverse} by line {by_line}: {shown:?}"
                );
            }
        }
    }
    // The screen says so too: %Own↓ over 86.6, 7.2, 4.1, 0.9.
    app.apply(Action::ToggleLines, 10);
    app.view.sort = SortColumn::Own;
    app.view.reverse = false;
    let screen = render(&app, 120, 30);
    let mut order: Vec<(usize, &str)> = ["runs_most", "middling", "waits_often", "rare"]
        .iter()
        .filter_map(|n| Some((screen.find(&format!("{n} ("))?, *n)))
        .collect();
    order.sort_unstable();
    let order: Vec<&str> = order.into_iter().map(|(_, n)| n).collect();
    assert_eq!(
        order,
        ["runs_most", "middling", "waits_often", "rare"],
        "{screen}"
    );
    assert!(screen.contains("%Own↓"));
}

#[test]
fn the_tasks_view_shows_each_task_or_why_there_is_none() {
    use crate::model::snapshot::TaskRow;
    use crate::model::tasks::TaskFigures;
    let frame = |name: &str, line: u32| Frame {
        name: name.into(),
        line,
        ..Frame::default()
    };
    let mut snap = snapshot();
    snap.python_version = "3.14.10".into();
    snap.tasks = Some(vec![
        TaskRow {
            id: 0x7f00_0010,
            name: "worker-b".into(),
            state: "running",
            tid: Some(4242),
            frames: vec![frame("crunch_loop", 35)],
            awaited_by: vec![0x7f00_0030],
            figures: TaskFigures {
                samples: 300,
                cpu_s: 3.0,
                gil_held_samples: 240,
            },
        },
        TaskRow {
            id: 0x7f00_0020,
            name: "waiter".into(),
            state: "waiting",
            tid: Some(4242),
            frames: vec![frame("wait_forever", 46), frame("Event.wait", 213)],
            awaited_by: Vec::new(),
            figures: TaskFigures::default(),
        },
    ]);
    snap.tasks_finished = (
        3,
        TaskFigures {
            samples: 10,
            cpu_s: 1.0,
            gil_held_samples: 10,
        },
    );
    let mut app = App::new(snap, 100.0, false, Mode::Samples);
    app.apply(Action::ToggleTasks, 10);
    let screen = render(&app, 120, 40);
    for needle in [
        "Tasks · 2 listed, 3 finished",
        "worker-b",
        "75.0",
        " 80 ",
        "running",
        "Event.wait:213 <- wait_forever:46",
        "a functions",
        "Enter its functions",
    ] {
        assert!(screen.contains(needle), "{needle:?} missing:\n{screen}");
    }
    // A task selected and entered: the functions it ran, until Esc.
    app.apply(Action::Down, 10);
    app.apply(Action::Down, 10);
    assert_eq!(app.view.selected_task, Some(0x7f00_0020));
    assert_eq!(app.apply(Action::Detail, 10), Effect::Requery);
    assert!(!app.view.show_tasks);
    assert_eq!(app.query().task, Some(0x7f00_0020));
    let screen = render(&app, 120, 40);
    assert!(screen.contains("task waiter only (Esc: all)"), "{screen}");
    assert!(screen.contains("Esc all tasks"), "{screen}");
    assert_eq!(app.key(KeyEvent::from(KeyCode::Esc), 10), Effect::Requery);
    assert_eq!(app.query().task, None);
    app.apply(Action::ToggleTasks, 10);
    // Back to functions.
    app.apply(Action::ToggleTasks, 10);
    assert!(render(&app, 120, 40).contains("parse_row (jobs.py:12)"));
    // A Python without a task list says so, and which it is.
    let mut old = snapshot();
    old.python_version = "3.10.13".into();
    let mut app = App::new(old, 100.0, false, Mode::Samples);
    app.apply(Action::ToggleTasks, 10);
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("needs Python 3.11+ (this is 3.10.13)"),
        "{screen}"
    );
}

/// Issue 26: at 80x24 nothing that carries meaning is cut: the help wraps (and scrolls), a
/// long verdict or notice wraps onto a second line, the footer keeps `? help · q quit`, the
/// timeline's label stays in its column, and the detail pane gets the room below the header.
#[test]
fn at_80x24_help_status_footer_timeline_and_detail_keep_their_meaning() {
    let mut app = App::new(six_threads(), 100.0, false, Mode::Cpu);
    app.snapshot.timeline = (0..30)
        .map(|i| crate::model::timeline::TimelinePoint {
            at: std::time::Duration::from_secs(i),
            ..Default::default()
        })
        .collect();
    // The footer: the focused pane's keys, ending with help and quit.
    let screen = render(&app, 80, 24);
    assert!(screen.contains("? help · q quit"), "{screen}");
    // The timeline's label, zoomed out, stays within its column (no "per seco-29s").
    app.apply(Action::Zoom, 10);
    let screen = render(&app, 80, 24);
    assert!(!screen.contains("seco-"), "{screen}");
    // The help: every description whole, over one or more scrolled pages.
    app.apply(Action::Help, 10);
    let mut seen = String::new();
    for _ in 0..30 {
        seen.push_str(&render(&app, 80, 24).replace(['│', '\n'], " "));
        app.apply(Action::Down, 10);
    }
    let seen = seen.split_whitespace().collect::<Vec<_>>().join(" ");
    for (_, help) in super::panes::help::rows(false) {
        let words: Vec<&str> = help.split_whitespace().collect();
        assert!(
            words.iter().all(|w| seen.contains(w)),
            "{help:?} cut in the help"
        );
    }
    app.apply(Action::Help, 10);
    // A long notice wraps instead of losing its end.
    let notice = "exported the view to hptop-4242-20261206-201500.json and \
                  hptop-4242-20261206-201500.svg (widths: samples)";
    app.status = Some(notice.into());
    let screen = render(&app, 80, 24).replace('\n', " ");
    let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("(widths: samples)"), "{screen}");
    app.status = None;
    // The detail pane, on a narrow screen, has the rows below the header.
    app.apply(Action::Detail, 10);
    let screen = render(&app, 80, 24);
    let below: usize = screen.lines().skip_while(|l| !l.contains('┌')).count();
    assert!(below >= 12, "{screen}");
}

/// Issue 26: a replay's header counts the threads seen (not those alive "now", which a
/// replay has none of) and says nothing of the target's uptime.
#[test]
fn a_replay_header_counts_threads_seen_and_no_uptime() {
    let mut snap = six_threads();
    for t in &mut snap.threads {
        t.alive = false;
    }
    let mut app = App::new(snap, 100.0, false, Mode::Cpu);
    app.replay = true;
    let screen = render(&app, 140, 45);
    assert!(screen.contains("6 threads seen"), "{screen}");
    assert!(!screen.contains("up ?"), "{screen}");
    app.replay = false;
    let screen = render(&app, 140, 45);
    assert!(
        screen.contains("0 threads") && screen.contains("up ?"),
        "{screen}"
    );
}
