//! Model tests on hand-made Ticks with exact times: every figure is asserted exactly.
#![expect(
    clippy::float_cmp,
    reason = "hand-made ticks give exact figures: equality is the point"
)]

use std::time::Duration;

use super::snapshot::{FunctionRow, FunctionSort, Mode, ProcessSnapshot, SnapshotQuery};
use super::timeline::TIMELINE_CAPACITY;
use super::{Session, SessionMeta};
use crate::collect::tick::{
    Frame, GilState, OsState, ProcCounters, ProcessTick, SlowThreadCounters, ThreadCounters,
    ThreadTick, Tick,
};

const MS10: Duration = Duration::from_millis(10);

/// Shares of samples, as py-spy counts them (these tests check sample counts).
const SAMPLES: SnapshotQuery = SnapshotQuery {
    include_idle: false,
    mode: Mode::Samples,
    sort: FunctionSort::Own,
    limit: None,
    thread: None,
    task: None,
    stacks: true,
};

fn frame(name: &str, line: u32) -> Frame {
    Frame {
        name: name.into(),
        filename: "app.py".into(),
        short_filename: None,
        line,
        first_line: 1,
    }
}

fn stack(names: &[(&str, u32)]) -> Vec<Frame> {
    names.iter().map(|(n, l)| frame(n, *l)).collect()
}

#[derive(Clone, Copy, Default)]
struct Counts {
    cpu_ticks: u64,
    minor: u64,
    start: u64,
    slow: Option<SlowThreadCounters>,
}

fn thread(tid: u32, running: bool, frames: Vec<Frame>, c: Counts) -> ThreadTick {
    ThreadTick {
        tid,
        name: Some(format!("t{tid}").into()),
        is_python: true,
        gil: if running {
            GilState::Held
        } else {
            GilState::NotHeld
        },
        frames: frames.into(),
        counters: Some(ThreadCounters {
            state: if running {
                OsState::Running
            } else {
                OsState::Sleeping
            },
            start_ticks: c.start,
            cpu_ticks: c.cpu_ticks,
            minor_faults: c.minor,
            major_faults: 0,
            slow: c.slow,
            ..ThreadCounters::default()
        }),
        ..ThreadTick::default()
    }
}

fn tick(index: u32, threads: Vec<ThreadTick>, proc_cpu_ticks: u64, rss: u64) -> Tick {
    Tick {
        at: MS10 * index,
        interval: MS10,
        skipped: 0,
        resumed: false,
        process: ProcessTick {
            pid: 7,
            counters: Some(ProcCounters {
                cpu_ticks: proc_cpu_ticks,
                rss_bytes: rss,
                ..ProcCounters::default()
            }),
            threads,
            ..ProcessTick::default()
        },
    }
}

/// The tick that says the process exited.
fn exited() -> Tick {
    Tick {
        process: ProcessTick {
            exited: true,
            ..ProcessTick::default()
        },
        ..Tick::default()
    }
}

fn session() -> Session {
    Session::new(SessionMeta {
        pid: 7,
        ..SessionMeta::default()
    })
}

fn find<'a>(p: &'a ProcessSnapshot, name: &str) -> &'a FunctionRow {
    p.functions.iter().find(|f| f.name == name).unwrap()
}

#[test]
fn percentages_count_active_threads_unless_idle_is_asked() {
    let mut s = session();
    for i in 0..10 {
        s.ingest(&tick(
            i,
            vec![
                thread(1, true, stack(&[("f", 1), ("main", 9)]), Counts::default()),
                thread(2, false, stack(&[("g", 2), ("main", 9)]), Counts::default()),
            ],
            0,
            1,
        ));
    }
    let active = s.snapshot(&SAMPLES);
    assert_eq!(active.samples, 10);
    assert_eq!(active.counted_samples, 10);
    assert_eq!(find(&active, "f").own_percent, 100.0);
    assert_eq!(find(&active, "main").total_percent, 100.0);
    assert_eq!(find(&active, "main").own_samples, 0);
    assert!(active.functions.iter().all(|f| f.name != "g"));

    let all = s.snapshot(&SnapshotQuery {
        include_idle: true,
        ..SAMPLES
    });
    assert_eq!(all.counted_samples, 20);
    assert_eq!(find(&all, "f").own_percent, 50.0);
    assert_eq!(find(&all, "g").own_percent, 50.0);
    assert_eq!(find(&all, "main").total_percent, 100.0);
    // By own samples (f and g tie; then total, then name); main owns nothing.
    let order: Vec<&str> = all.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(order, ["f", "g", "main"]);

    let t2 = all.threads.iter().find(|t| t.tid == 2).unwrap();
    assert_eq!(t2.idle_percent, 100.0);
    assert_eq!(t2.gil_held_percent, 0.0);
    let t1 = all.threads.iter().find(|t| t.tid == 1).unwrap();
    assert_eq!(t1.gil_held_percent, 100.0);
    assert_eq!(all.gil_held_percent, 100.0);
}

#[test]
fn recursion_counts_once_per_stack_and_lines_aggregate() {
    let mut s = session();
    for i in 0..4 {
        let inner_line = if i % 2 == 0 { 10 } else { 11 };
        s.ingest(&tick(
            i,
            vec![thread(
                1,
                true,
                stack(&[("f", inner_line), ("f", 20), ("main", 30)]),
                Counts::default(),
            )],
            0,
            1,
        ));
    }
    let p = s.snapshot(&SAMPLES);
    let f = find(&p, "f");
    assert_eq!((f.own_samples, f.total_samples), (4, 4));
    assert_eq!(f.total_percent, 100.0);
    let line = |n: u32| f.lines.iter().find(|l| l.line == n).copied().unwrap();
    assert_eq!((line(10).own_samples, line(10).total_samples), (2, 2));
    assert_eq!((line(11).own_samples, line(11).total_samples), (2, 2));
    assert_eq!((line(20).own_samples, line(20).total_samples), (0, 4));
    assert_eq!(f.hottest_line, 20);
    assert_eq!(p.seconds_per_sample, 0.01);
    assert!((f.own_s - 0.04).abs() < 1e-12);
}

#[test]
fn faults_go_to_the_stack_that_started_the_interval_and_cpu_to_the_spans_samples() {
    let mut s = session();
    // Ticks 0-2 in `alloc`, 3-5 in `compute`. `alloc` faults 10 per interval, `compute` none;
    // both use one clock tick of CPU per interval.
    let mut minor = 0;
    for i in 0..6u32 {
        let name = if i < 3 { "alloc" } else { "compute" };
        let c = Counts {
            cpu_ticks: u64::from(i),
            minor,
            ..Counts::default()
        };
        s.ingest(&tick(
            i,
            vec![thread(1, true, stack(&[(name, 1)]), c)],
            u64::from(i),
            1,
        ));
        if i < 3 {
            minor += 10;
        }
    }
    let p = s.snapshot(&SnapshotQuery::default());
    // Intervals (0,1], (1,2], (2,3] start in alloc; (3,4], (4,5] in compute: their faults.
    assert_eq!(find(&p, "alloc").credited.minor_faults, 30.0);
    assert_eq!(find(&p, "compute").credited.minor_faults, 0.0);
    // CPU is the span's, split evenly among its stacks seen on a CPU (3 and 3): schedstat's
    // run time is stale inside a long phase, so no interval is credited on its own.
    assert!((find(&p, "alloc").credited.cpu_s - 0.025).abs() < 1e-12);
    assert!((find(&p, "compute").credited.cpu_s - 0.025).abs() < 1e-12);
    let t = &p.threads[0];
    assert_eq!(t.minor_faults, 30);
    // 5 clock ticks (50 ms) of CPU over a 50 ms window: one core.
    assert!((t.cpu_percent - 100.0).abs() < 1e-9);
    assert!((p.cpu_percent - 100.0).abs() < 1e-9);
}

#[test]
fn counters_are_credited_inclusive_once_per_stack_and_per_line() {
    let mut s = session();
    // main:3 -> rec:7 -> rec:8 -> alloc:12 for 4 ticks, faulting 5 per interval.
    for i in 0..4u32 {
        let c = Counts {
            minor: u64::from(i) * 5,
            ..Counts::default()
        };
        let frames = stack(&[("alloc", 12), ("rec", 8), ("rec", 7), ("main", 3)]);
        s.ingest(&tick(i, vec![thread(1, true, frames, c)], 0, 1));
    }
    let p = s.snapshot(&SnapshotQuery::default());
    let alloc = find(&p, "alloc");
    assert_eq!(alloc.credited.minor_faults, 15.0);
    assert_eq!(alloc.credited_total.minor_faults, 15.0);
    // Recursion: `rec` is on each stack twice but credited once.
    let rec = find(&p, "rec");
    assert_eq!(rec.credited.minor_faults, 0.0);
    assert_eq!(rec.credited_total.minor_faults, 15.0);
    assert_eq!(find(&p, "main").credited_total.minor_faults, 15.0);
    let line = |f: &FunctionRow, n: u32| *f.lines.iter().find(|l| l.line == n).unwrap();
    assert_eq!(line(alloc, 12).credited.minor_faults, 15.0);
    assert_eq!(line(rec, 7).credited_total.minor_faults, 15.0);
    assert_eq!(line(rec, 8).credited_total.minor_faults, 15.0);
    assert_eq!(line(rec, 8).credited.minor_faults, 0.0);
}

#[test]
fn slow_counter_deltas_are_split_among_the_stacks_of_the_span() {
    let mut s = session();
    // Slow counters read every 2 ticks; stacks alternate f, g. Each slow read adds 4 switches.
    for i in 0..7u32 {
        let name = if i % 2 == 0 { "f" } else { "g" };
        let slow = (i % 2 == 0).then_some(SlowThreadCounters {
            voluntary_ctxsw: u64::from(i) * 2,
            write_bytes: u64::from(i) * 512,
            ..SlowThreadCounters::default()
        });
        let c = Counts {
            slow,
            ..Counts::default()
        };
        s.ingest(&tick(
            i,
            vec![thread(1, false, stack(&[(name, 1)]), c)],
            0,
            1,
        ));
    }
    // The thread is never seen in an I/O call: its bytes are held for a site until the
    // window ends.
    s.settle();
    let p = s.snapshot(&SnapshotQuery {
        include_idle: true,
        ..SnapshotQuery::default()
    });
    // Three spans of (f, g), 4 switches and 1024 bytes each: half to f, half to g.
    assert_eq!(find(&p, "f").credited.voluntary_ctxsw, 6.0);
    assert_eq!(find(&p, "g").credited.voluntary_ctxsw, 6.0);
    assert_eq!(find(&p, "g").credited.io_bytes, 1536.0);
    assert_eq!(p.voluntary_ctxsw, 12);
    assert_eq!(p.threads[0].write_bytes, 3072);
}

#[test]
fn a_reused_tid_is_a_new_thread_and_a_new_thread_counts_from_zero() {
    let mut s = session();
    let old = Counts {
        start: 100,
        cpu_ticks: 50,
        ..Counts::default()
    };
    s.ingest(&tick(
        0,
        vec![thread(5, true, stack(&[("a", 1)]), old)],
        0,
        1,
    ));
    s.ingest(&tick(
        1,
        vec![thread(
            5,
            true,
            stack(&[("a", 1)]),
            Counts {
                cpu_ticks: 51,
                ..old
            },
        )],
        0,
        1,
    ));
    // Thread 5 exits; a new thread gets tid 5 with 3 ticks of CPU since it started.
    let new = Counts {
        start: 200,
        cpu_ticks: 3,
        ..Counts::default()
    };
    s.ingest(&tick(
        2,
        vec![thread(5, true, stack(&[("b", 1)]), new)],
        0,
        1,
    ));
    let p = s.snapshot(&SnapshotQuery::default());
    assert_eq!(p.threads.len(), 2);
    let mut cpu: Vec<(bool, f64)> = p.threads.iter().map(|t| (t.alive, t.cpu_percent)).collect();
    cpu.sort_by(|a, b| a.1.total_cmp(&b.1));
    // Window 20 ms: old thread 1 tick = 50%, new one 3 ticks = 150%.
    assert_eq!(cpu, vec![(false, 50.0), (true, 150.0)]);
}

#[test]
fn process_figures_cover_the_window() {
    let mut s = session();
    for i in 0..=100u32 {
        let rss = if i == 40 { 9000 } else { 4096 };
        s.ingest(&tick(i, vec![], u64::from(i) / 2, rss));
    }
    let p = s.snapshot(&SnapshotQuery::default());
    assert!((p.duration_s - 1.0).abs() < 1e-9);
    assert!((p.cpu_percent - 50.0).abs() < 1e-9);
    assert_eq!((p.rss_bytes, p.rss_peak_bytes), (4096, 9000));
    assert!((p.rate_hz - 100.0).abs() < 1e-9);
    assert!(!p.exited);
    s.ingest(&exited());
    assert!(s.snapshot(&SnapshotQuery::default()).exited);
}

/// Reads that fail on the ticks just before the exit are the exit's, not errors; a failure
/// the process lived past stays an error.
#[test]
fn reads_failing_as_the_process_exits_are_not_errors() {
    let failed = |i: u32, why: &str| {
        let mut t = tick(i, vec![], 0, 4096);
        t.process.stack_error = Some(why.into());
        t
    };
    let mut s = session();
    s.ingest(&tick(1, vec![], 0, 4096));
    s.ingest(&failed(2, "a real failure"));
    s.ingest(&tick(3, vec![], 0, 4096));
    s.ingest(&failed(4, "Bad address"));
    s.ingest(&failed(5, "Bad address"));
    s.ingest(&exited());
    let p = s.snapshot(&SnapshotQuery::default());
    assert_eq!((p.sample_errors, p.exit_cut_reads), (1, 2));
    assert_eq!(p.first_sample_error.as_deref(), Some("a real failure"));
    let mut s = session();
    s.ingest(&tick(1, vec![], 0, 4096));
    s.ingest(&failed(2, "Bad address"));
    s.ingest(&exited());
    let p = s.snapshot(&SnapshotQuery::default());
    assert_eq!((p.sample_errors, p.exit_cut_reads), (0, 1));
    assert_eq!(p.first_sample_error, None);
}

#[test]
fn memory_stays_bounded_over_a_long_session() {
    let mut s = session();
    // Two hours at one tick per second, three functions, a new short-lived thread every tick.
    for i in 0..7200u32 {
        let name = ["a", "b", "c"][i as usize % 3];
        let threads = vec![
            thread(1, true, stack(&[(name, i % 7)]), Counts::default()),
            thread(
                1000 + i,
                true,
                stack(&[("worker", 1)]),
                Counts {
                    start: u64::from(i),
                    slow: Some(SlowThreadCounters {
                        voluntary_ctxsw: 1,
                        ..SlowThreadCounters::default()
                    }),
                    ..Counts::default()
                },
            ),
        ];
        s.ingest(&Tick {
            at: Duration::from_secs(u64::from(i)),
            ..tick(0, threads, u64::from(i), 1)
        });
    }
    assert_eq!(s.function_count(), 4);
    assert!(s.timeline_len() <= TIMELINE_CAPACITY);
    assert!(s.thread_count() <= 1024 + 2, "{}", s.thread_count());
    let p = s.snapshot(&SnapshotQuery::default());
    // Evicted threads still count in the process totals: each short thread switched once;
    // the first was there at the first tick (its baseline), 7199 were born later.
    assert_eq!(p.voluntary_ctxsw, 7199);
    assert_eq!(s.ticks(), 7200);
    assert_eq!(find(&p, "a").lines.len(), 7);
}

#[test]
fn process_counters_read_on_slow_ticks_only_give_the_same_figures() {
    let mut s = session();
    // 101 ticks 10 ms apart; whole-process counters on every 10th (the slow timer): 50 CPU
    // ticks per second, one fault per tick.
    for i in 0..=100u32 {
        let mut t = tick(i, vec![], u64::from(i) / 2, 4096);
        match t.process.counters.as_mut() {
            Some(c) if i % 10 == 0 => c.minor_faults = u64::from(i),
            _ => t.process.counters = None,
        }
        s.ingest(&t);
    }
    let p = s.snapshot(&SnapshotQuery::default());
    assert!((p.duration_s - 1.0).abs() < 1e-9);
    assert!((p.cpu_percent - 50.0).abs() < 1e-9);
    assert_eq!(p.minor_faults, 100);
    assert!((p.rate_hz - 100.0).abs() < 1e-9);
    // The first second's timeline point has the rate, not a tenth of it.
    assert!(
        (p.timeline[0].minor_faults_per_s - 100.0).abs() < 1e-9,
        "{:?}",
        p.timeline[0]
    );
}

#[test]
fn a_thread_focus_counts_only_that_threads_samples() {
    let mut s = session();
    for i in 0..4 {
        s.ingest(&tick(
            i,
            vec![
                thread(1, true, stack(&[("f", 1), ("main", 9)]), Counts::default()),
                thread(2, true, stack(&[("g", 2), ("main", 9)]), Counts::default()),
            ],
            0,
            1,
        ));
    }
    let p = s.snapshot(&SnapshotQuery {
        thread: Some(2),
        ..SnapshotQuery::default()
    });
    assert_eq!(p.counted_samples, 4);
    let names: Vec<&str> = p.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["g", "main"]);
    assert_eq!(find(&p, "g").own_percent, 100.0);
    assert_eq!(find(&p, "main").total_samples, 4);
}

#[test]
fn callers_and_callees_count_once_per_stack() {
    let mut s = session();
    for i in 0..6 {
        // main -> work -> f (4 ticks); main -> other -> f (2 ticks); f recursing once.
        let via = if i < 4 { "work" } else { "other" };
        s.ingest(&tick(
            i,
            vec![thread(
                1,
                true,
                stack(&[("f", 5), ("f", 6), (via, 2), ("main", 1)]),
                Counts::default(),
            )],
            0,
            1,
        ));
    }
    let d = s.function_detail("app.py", "f", false).unwrap();
    let called_by: Vec<(&str, u64)> = d
        .callers
        .iter()
        .map(|c| (c.name.as_str(), c.samples))
        .collect();
    assert_eq!(called_by, [("f", 6), ("work", 4), ("other", 2)]);
    let calls: Vec<(&str, u64)> = d
        .callees
        .iter()
        .map(|c| (c.name.as_str(), c.samples))
        .collect();
    assert_eq!(calls, [("f", 6)]);
    let lines: Vec<(u32, u64, u64)> = d
        .lines
        .iter()
        .map(|l| (l.line, l.own_samples, l.total_samples))
        .collect();
    assert_eq!(lines, [(5, 6, 6), (6, 0, 6)]);
    let main = s.function_detail("app.py", "main", false).unwrap();
    assert!(main.callers.is_empty());
    assert_eq!(main.callees.len(), 2);
    assert!(s.function_detail("app.py", "nope", false).is_none());
}

#[test]
fn a_pause_is_left_out_of_the_rate_and_its_deltas_credit_no_function() {
    let mut s = session();
    let c = |cpu: u64| Counts {
        cpu_ticks: cpu,
        ..Counts::default()
    };
    // 11 ticks at 100 Hz in `f`, then a 2 s pause, then 11 ticks in `g`.
    for i in 0..=10u32 {
        s.ingest(&tick(
            i,
            vec![thread(1, true, stack(&[("f", 1)]), c(u64::from(i)))],
            0,
            1,
        ));
    }
    for i in 210..=220u32 {
        let mut t = tick(
            i,
            vec![thread(1, true, stack(&[("g", 1)]), c(u64::from(i)))],
            0,
            1,
        );
        t.resumed = i == 210;
        s.ingest(&t);
    }
    let p = s.snapshot(&SnapshotQuery::default());
    assert!((p.rate_hz - 21.0 / 0.2).abs() < 1e-6, "{}", p.rate_hz);
    // f is credited its 10 intervals only, not the 200 ticks of CPU during the pause.
    assert!((find(&p, "f").credited.cpu_s - 0.10).abs() < 1e-9);
    assert!((find(&p, "g").credited.cpu_s - 0.10).abs() < 1e-9);
    // The thread's own CPU covers the whole window, pause included.
    assert!((p.threads[0].cpu_percent - 100.0).abs() < 1e-9);
}

#[test]
fn timeline_context_switches_per_second_from_slow_reads() {
    let mut s = session();
    // 101 ticks at 100 Hz; slow reads every 10th tick, 10 more switches each: 100 per second.
    for i in 0..=100u32 {
        let slow = (i % 10 == 0).then_some(SlowThreadCounters {
            voluntary_ctxsw: u64::from(i),
            ..SlowThreadCounters::default()
        });
        let mut t = tick(
            i,
            vec![thread(
                1,
                false,
                stack(&[("wait", 1)]),
                Counts {
                    slow,
                    ..Counts::default()
                },
            )],
            0,
            1,
        );
        if i % 10 != 0 {
            t.process.counters = None;
        }
        s.ingest(&t);
    }
    let p = s.snapshot(&SnapshotQuery::default());
    assert!(
        (p.timeline[0].ctxsw_per_s - 100.0).abs() < 1e-9,
        "{:?}",
        p.timeline[0]
    );
    assert_eq!(p.voluntary_ctxsw, 100);
}

#[test]
fn gil_handoffs_per_second_from_switch_numbers() {
    let mut s = session();
    for i in 0..=100u32 {
        let mut t = tick(i, vec![], 0, 1);
        t.process.gil_switches = Some(1000 + u64::from(i) * 2);
        s.ingest(&t);
    }
    let p = s.snapshot(&SnapshotQuery::default());
    assert!((p.gil_handoffs_per_s.unwrap() - 200.0).abs() < 1e-9);
    assert!(session()
        .snapshot(&SnapshotQuery::default())
        .gil_handoffs_per_s
        .is_none());
}

#[test]
fn the_function_holding_the_gil_while_others_wait_is_named() {
    let mut s = session();
    for i in 0..10u32 {
        let mut holder = thread(
            1,
            true,
            stack(&[("crunch", 1), ("main", 9)]),
            Counts::default(),
        );
        holder.gil = GilState::Held;
        let mut waiter = thread(2, false, stack(&[("poll", 2)]), Counts::default());
        // The second thread waits for the GIL in 6 of the 10 samples.
        waiter.gil = if i < 6 {
            GilState::Waiting
        } else {
            GilState::NotHeld
        };
        s.ingest(&tick(i, vec![holder, waiter], 0, 1));
    }
    let p = s.snapshot(&SnapshotQuery::default());
    assert_eq!(find(&p, "crunch").gil_held_while_waited, 6);
    assert_eq!(
        find(&p, "main").gil_held_while_waited,
        0,
        "only the innermost function"
    );
    assert!((p.gil_wanted_percent - 60.0).abs() < 1e-9);
}

#[test]
fn on_cpu_time_and_runqueue_wait_come_from_schedstat_nanoseconds() {
    let mut s = session();
    // One thread, runnable all along: each 10 ms interval it runs 3 ms and waits 7 ms for a
    // CPU. `stat`'s clock ticks say 0 (3 ms is under one 10 ms tick): schedstat says 3 ms.
    for i in 0..5u32 {
        let mut t = thread(1, true, stack(&[("crunch", 1)]), Counts::default());
        if let Some(c) = t.counters.as_mut() {
            c.run_ns = Some(3_000_000 * u64::from(i));
            c.runqueue_wait_ns = Some(7_000_000 * u64::from(i));
        }
        s.ingest(&tick(i, vec![t], 0, 1));
    }
    let p = s.snapshot(&SnapshotQuery::default());
    let t = &p.threads[0];
    assert!((t.cpu_percent - 30.0).abs() < 1e-9, "{}", t.cpu_percent);
    assert!((t.runqueue_wait_percent - 70.0).abs() < 1e-9);
    assert!((p.runqueue_wait_percent - 70.0).abs() < 1e-9);
    // Four intervals of 3 ms each, credited to the function that ran.
    assert!((find(&p, "crunch").credited.cpu_s - 0.012).abs() < 1e-12);
    assert!(super::verdict::runqueue(&p).is_some());
}

#[test]
fn stacks_cut_short_are_counted_and_a_short_first_stack_is_corrected() {
    let mut s = session();
    let whole = stack(&[("leaf", 5), ("descend", 3), ("descend", 3), ("<module>", 9)]);
    let cut = stack(&[("leaf", 5), ("descend", 3)]);
    // The first read is itself cut short; the next whole one shows it.
    let reads = [&cut, &whole, &whole, &cut, &whole, &cut];
    for (i, frames) in (0u32..).zip(reads) {
        let t = thread(1, true, frames.clone(), Counts::default());
        s.ingest(&tick(i, vec![t], 0, 1));
    }
    let p = s.snapshot(&SnapshotQuery::default());
    // The two cut stacks after the first whole one; the first is not counted (it set the
    // reference before anything showed it short).
    assert_eq!(p.partial_stacks, 2);
    assert!((p.partial_stacks_percent - 100.0 * 2.0 / 6.0).abs() < 1e-9);
}

#[test]
fn cpu_mode_shares_are_on_cpu_time_not_runnable_samples() {
    let mut s = session();
    // Two threads always in state R. `crunch` runs 8 ms of every 10; `heartbeat` is runnable
    // but gets 1 ms (it waits for a CPU the rest of the time).
    for i in 0..5u32 {
        let mut busy = thread(1, true, stack(&[("crunch", 1)]), Counts::default());
        let mut beat = thread(2, true, stack(&[("heartbeat", 1)]), Counts::default());
        if let Some(c) = busy.counters.as_mut() {
            c.run_ns = Some(8_000_000 * u64::from(i));
        }
        if let Some(c) = beat.counters.as_mut() {
            c.run_ns = Some(1_000_000 * u64::from(i));
        }
        s.ingest(&tick(i, vec![busy, beat], 0, 1));
    }
    let samples = s.snapshot(&SAMPLES);
    assert_eq!(find(&samples, "heartbeat").own_percent, 50.0);
    let cpu = s.snapshot(&SnapshotQuery::default());
    assert!((find(&cpu, "crunch").own_percent - 800.0 / 9.0).abs() < 1e-9);
    assert!((find(&cpu, "heartbeat").own_percent - 100.0 / 9.0).abs() < 1e-9);
    assert_eq!(cpu.functions[0].name, "crunch");
    assert!((find(&cpu, "heartbeat").own_s - 0.004).abs() < 1e-12);
}

#[test]
fn gil_mode_counts_only_samples_of_the_gil_holder() {
    let mut s = session();
    // Both threads in state R; `py_work` holds the GIL, `hashing` runs native code without it.
    for i in 0..4u32 {
        let holder = thread(1, true, stack(&[("py_work", 1)]), Counts::default());
        let mut native = thread(2, true, stack(&[("hashing", 1)]), Counts::default());
        native.gil = GilState::NotHeld;
        s.ingest(&tick(i, vec![holder, native], 0, 1));
    }
    let samples = s.snapshot(&SAMPLES);
    assert_eq!(find(&samples, "hashing").own_percent, 50.0);
    let gil = s.snapshot(&SnapshotQuery {
        mode: Mode::Gil,
        ..SAMPLES
    });
    assert_eq!(find(&gil, "py_work").own_percent, 100.0);
    assert!(gil.functions.iter().all(|f| f.name != "hashing"));
}

#[test]
fn io_bytes_go_to_the_code_seen_in_io_system_calls() {
    // Slow reads every 2 ticks, 1000 bytes written per span: `encode` (running) then
    // `flush` blocked in write(2); the last span's write was too fast to be caught (`pause`
    // sleeps in nanosleep), so its bytes go to where the thread was last seen writing.
    let s = io_session(&[
        ("encode", None),
        ("flush", Some(1)),
        ("encode", None),
        ("flush", Some(1)),
        ("encode", None),
        ("pause", Some(230)),
        ("encode", None),
    ]);
    let p = s.snapshot(&SnapshotQuery {
        mode: Mode::Wall,
        ..SAMPLES
    });
    // The slow reads at ticks 2, 4 and 6 end three spans of 1000 bytes: all of it to `flush`
    // (the third span's by the last place it was seen writing).
    assert_eq!(find(&p, "flush").credited.io_bytes, 3000.0);
    assert!(p
        .functions
        .iter()
        .all(|f| f.name == "flush" || f.credited.io_bytes == 0.0));
}

/// Drives one thread through `plan` (function, system call or None when running) with a slow
/// read every 2 ticks, 500 bytes written per tick.
fn io_session(plan: &[(&str, Option<u64>)]) -> Session {
    use crate::collect::tick::Syscall;
    let mut s = session();
    for (i, &(name, call)) in (0u32..).zip(plan) {
        let c = Counts {
            slow: (i % 2 == 0).then_some(SlowThreadCounters {
                write_bytes: u64::from(i) * 500,
                ..SlowThreadCounters::default()
            }),
            ..Counts::default()
        };
        let mut t = thread(1, call.is_none(), stack(&[(name, 1)]), c);
        if let Some(counters) = t.counters.as_mut() {
            counters.syscall = call.map(|number| Syscall { number, arg0: 0 });
        }
        s.ingest(&tick(i, vec![t], 0, 1));
    }
    s
}

#[test]
fn io_bytes_moved_before_the_first_io_call_seen_go_to_it_and_otherwise_settle() {
    let wall = SnapshotQuery {
        mode: Mode::Wall,
        ..SAMPLES
    };
    // Two spans (ticks 0-2, 2-4) where the thread encodes and sleeps in nanosleep (230): the
    // write is too fast to be caught. Then it is caught in fsync (74): those 2000 bytes are
    // the I/O site's too, not the sleep's.
    let mut caught = io_session(&[
        ("encode", None),
        ("pause", Some(230)),
        ("encode", None),
        ("pause", Some(230)),
        ("encode", None),
        ("flush", Some(74)),
        ("encode", None),
    ]);
    let held = caught.snapshot(&wall);
    assert_eq!(find(&held, "flush").credited.io_bytes, 3000.0);
    assert_eq!(find(&held, "pause").credited.io_bytes, 0.0);
    caught.settle();
    assert_eq!(
        find(&caught.snapshot(&wall), "flush").credited.io_bytes,
        3000.0
    );

    // Never caught: held until the window ends, then credited to the stacks that were in a
    // system call other than a sleep (here a futex: `lock`). A snapshot before the end shows
    // it where the end would put it (one window, one set of figures in every view).
    let mut never = io_session(&[
        ("encode", None),
        ("lock", Some(202)),
        ("encode", None),
        ("lock", Some(202)),
        ("encode", None),
    ]);
    let before = never.snapshot(&wall);
    never.settle();
    let after = never.snapshot(&wall);
    for p in [&before, &after] {
        assert_eq!(find(p, "lock").credited.io_bytes, 2000.0);
        assert_eq!(find(p, "encode").credited.io_bytes, 0.0);
    }
}

#[test]
fn bytes_read_at_every_tick_go_to_the_stack_of_that_tick() {
    let mut s = session();
    // (function, system call, io bytes so far): per-tick `io` reads of a thread that writes.
    let plan: [(&str, Option<u64>, u64); 6] = [
        ("encode", None, 0),
        // wrote 1000 bytes, now waits for the GIL (futex) where it wrote
        ("write_batch", Some(202), 1000),
        ("writer", Some(230), 1000),
        // 500 more, already back asleep: held until an I/O site is seen
        ("writer", Some(230), 1500),
        ("encode", None, 1500),
        // caught in fsync: the site, and the held 500 go there
        ("flush", Some(74), 1500),
    ];
    ingest_io_ticks(&mut s, &plan);
    let p = s.snapshot(&SnapshotQuery {
        mode: Mode::Wall,
        ..SAMPLES
    });
    assert_eq!(find(&p, "write_batch").credited.io_bytes, 1000.0);
    assert_eq!(find(&p, "flush").credited.io_bytes, 500.0);
    assert_eq!(find(&p, "writer").credited.io_bytes, 0.0);
    assert_eq!(find(&p, "encode").credited.io_bytes, 0.0);
}

/// Feeds one thread through `plan` (function, system call or None when running, `io` bytes
/// so far), one tick each: per-tick `io` reads of a thread that does I/O.
fn ingest_io_ticks(s: &mut Session, plan: &[(&str, Option<u64>, u64)]) {
    use crate::collect::tick::Syscall;
    for (i, &(name, call, io)) in (0u32..).zip(plan) {
        let mut t = thread(1, call.is_none(), stack(&[(name, 1)]), Counts::default());
        if let Some(counters) = t.counters.as_mut() {
            counters.syscall = call.map(|number| Syscall { number, arg0: 0 });
            counters.io_bytes = Some(io);
        }
        s.ingest(&tick(i, vec![t], 0, 1));
    }
}

#[test]
fn bytes_held_while_a_thread_sleeps_go_to_where_it_waited_after_writing() {
    let mut s = session();
    // A writer whose write(2) and fsync are never caught (a fast disk, a loaded machine):
    // it is seen asleep in nanosleep (230) and once waiting for the GIL (futex, 202) in
    // `write_batch` right after a write. Bytes held while it slept are not the sleep's.
    let plan: [(&str, Option<u64>, u64); 5] = [
        ("encode", None, 0),
        ("writer", Some(230), 1000),
        ("write_batch", Some(202), 1500),
        ("writer", Some(230), 2500),
        ("writer", Some(230), 2500),
    ];
    ingest_io_ticks(&mut s, &plan);
    s.settle();
    let p = s.snapshot(&SnapshotQuery {
        mode: Mode::Wall,
        ..SAMPLES
    });
    assert_eq!(find(&p, "write_batch").credited.io_bytes, 2500.0);
    assert_eq!(find(&p, "writer").credited.io_bytes, 0.0);
}

#[test]
fn whole_stacks_carry_their_samples_and_credited_counters_per_thread() {
    let mut s = session();
    // Thread 1 runs f<-main for 3 ticks then g<-main; thread 2 runs f<-main: CPU ticks credit
    // the stack each thread had.
    for i in 0..5u32 {
        let c = Counts {
            cpu_ticks: u64::from(i),
            ..Counts::default()
        };
        let one = if i < 3 { "f" } else { "g" };
        s.ingest(&tick(
            i,
            vec![
                thread(1, true, stack(&[(one, 1), ("main", 9)]), c),
                thread(2, true, stack(&[("f", 1), ("main", 9)]), c),
            ],
            0,
            1,
        ));
    }
    let p = s.snapshot(&SAMPLES);
    let row = |tid: u32, leaf: &str| {
        p.stacks
            .iter()
            .find(|r| r.tid == tid && r.frames.last().is_some_and(|f| f.name == leaf))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(row(1, "f").samples, 3);
    assert_eq!(row(1, "g").samples, 2);
    assert_eq!(row(2, "f").samples, 5);
    assert_eq!(
        row(1, "f")
            .frames
            .first()
            .map(ToString::to_string)
            .as_deref(),
        Some("main (app.py)")
    );
    assert_eq!(row(1, "f").thread.as_deref(), Some("t1"));
    // The total of the stacks' samples is the functions' own samples.
    let own: u64 = p.functions.iter().map(|f| f.own_samples).sum();
    assert_eq!(p.stacks.iter().map(|r| r.samples).sum::<u64>(), own);
    // Credited CPU per stack sums to the functions' own credited CPU.
    let stacks_cpu: f64 = p.stacks.iter().map(|r| r.credited.cpu_s).sum();
    let functions_cpu: f64 = p.functions.iter().map(|f| f.credited.cpu_s).sum();
    assert!((stacks_cpu - functions_cpu).abs() < 1e-9 && stacks_cpu > 0.0);
}

/// Thread 1 in state R at tick `i` with `frames`, `run_ns` of CPU so far, its task clock's
/// verdict `on_cpu`, and slow counters every 10 ticks.
fn runnable_thread(i: u32, frames: Vec<Frame>, run_ns: u64, on_cpu: Option<bool>) -> ThreadTick {
    let slow = i
        .is_multiple_of(10)
        .then_some(SlowThreadCounters::default());
    let mut t = thread(
        1,
        true,
        frames,
        Counts {
            slow,
            ..Counts::default()
        },
    );
    if let Some(c) = t.counters.as_mut() {
        c.run_ns = Some(run_ns);
        c.on_cpu = on_cpu;
    }
    t
}

/// One thread in state R at every tick, running 5 ms of each 10 ms interval. At odd ticks it
/// waits for a CPU at a system-call site; at even ticks it runs `crunch`. `told`: the task
/// clock told which (else no perf events: state R stands for on a CPU).
fn runnable_at_a_call_site(told: bool) -> Session {
    let mut s = session();
    for i in 0..21u32 {
        let waiting = i % 2 == 1;
        let frames = if waiting {
            stack(&[("syscall_site", 7), ("loop", 3)])
        } else {
            stack(&[("crunch", 12), ("loop", 4)])
        };
        let t = runnable_thread(
            i,
            frames,
            5_000_000 * u64::from(i),
            told.then_some(!waiting),
        );
        s.ingest(&tick(i, vec![t], 0, 1));
    }
    s
}

#[test]
fn cpu_goes_to_stacks_seen_on_a_cpu_not_to_where_a_runnable_thread_waits() {
    // Samples count both stacks; CPU goes to `crunch` only.
    let s = runnable_at_a_call_site(true);
    let samples = s.snapshot(&SAMPLES);
    assert!((find(&samples, "syscall_site").own_percent - 100.0 * 10.0 / 21.0).abs() < 1e-9);
    let cpu = s.snapshot(&SnapshotQuery::default());
    assert!((find(&cpu, "crunch").credited.cpu_s - 0.1).abs() < 1e-9);
    assert!(cpu
        .functions
        .iter()
        .all(|f| f.name == "crunch" || f.name == "loop" || f.credited.cpu_s == 0.0));
    assert!((find(&cpu, "loop").credited_total.cpu_s - 0.1).abs() < 1e-9);
    // Without the task clock (no perf events), state R stands for on a CPU, as before.
    let cpu = runnable_at_a_call_site(false).snapshot(&SnapshotQuery::default());
    assert!((find(&cpu, "syscall_site").credited.cpu_s - 0.05).abs() < 1e-9);
    assert!((find(&cpu, "crunch").credited.cpu_s - 0.05).abs() < 1e-9);
}

#[test]
fn cpu_of_spans_without_a_stack_on_a_cpu_is_held_for_the_next_ones() {
    let mut s = session();
    // Ticks 0-19: runnable but never seen on a CPU (hptop's own wake-up preempts it) at
    // `syscall_site`; it still runs 2 ms per interval. Ticks 20-40: seen on a CPU in `work`.
    for i in 0..41u32 {
        let early = i < 20;
        let frames = if early {
            stack(&[("syscall_site", 7)])
        } else {
            stack(&[("work", 2)])
        };
        let t = runnable_thread(i, frames, 2_000_000 * u64::from(i), Some(!early));
        s.ingest(&tick(i, vec![t], 0, 1));
    }
    let cpu = s.snapshot(&SnapshotQuery::default());
    assert!((find(&cpu, "work").credited.cpu_s - 0.08).abs() < 1e-9);
    assert_eq!(find(&cpu, "syscall_site").credited.cpu_s, 0.0);
}

#[test]
fn a_functions_lines_add_up_to_the_function_in_every_mode() {
    let mut s = session();
    // One busy thread moving between two lines of `parse` (3 ms and 7 ms per interval), and
    // a second that waits for a CPU at `sync` (no run time): samples and CPU disagree.
    for i in 0..31u32 {
        let line = if i % 3 == 0 { 5 } else { 6 };
        let slow = (i % 10 == 0).then_some(SlowThreadCounters::default());
        let mut busy = thread(
            1,
            true,
            stack(&[("parse", line), ("main", 9)]),
            Counts {
                slow,
                ..Counts::default()
            },
        );
        let mut waiter = thread(
            2,
            true,
            stack(&[("sync", 3), ("main", 9)]),
            Counts {
                slow,
                ..Counts::default()
            },
        );
        if let Some(c) = busy.counters.as_mut() {
            c.run_ns = Some(7_000_000 * u64::from(i));
            c.on_cpu = Some(true);
        }
        if let Some(c) = waiter.counters.as_mut() {
            c.run_ns = Some(0);
            c.on_cpu = Some(false);
        }
        s.ingest(&tick(i, vec![busy, waiter], 0, 1));
    }
    for mode in [Mode::Cpu, Mode::Samples, Mode::Gil, Mode::Wall] {
        let p = s.snapshot(&SnapshotQuery {
            mode,
            ..SnapshotQuery::default()
        });
        let f = find(&p, "parse");
        let own_percent: f64 = f.lines.iter().map(|l| l.own_percent).sum();
        let own_s: f64 = f.lines.iter().map(|l| l.own_s).sum();
        assert!(
            (own_percent - f.own_percent).abs() < 1e-9,
            "{mode:?}: {own_percent} vs {}",
            f.own_percent
        );
        assert!(
            (own_s - f.own_s).abs() < 1e-9,
            "{mode:?}: {own_s} vs {}",
            f.own_s
        );
        assert!(f.own_percent > 0.0, "{mode:?}");
        if mode == Mode::Cpu {
            // On-CPU seconds, not samples x interval: `sync` ran nothing.
            assert!((f.own_s - 0.21).abs() < 1e-9, "{}", f.own_s);
            assert_eq!(find(&p, "sync").own_percent, 0.0);
        }
    }
}

#[test]
fn a_dropped_stack_is_counted_and_credited_to_no_function() {
    use crate::collect::tick::StackRead;
    let mut s = session();
    for i in 0..10 {
        let mut t = thread(1, true, stack(&[("f", 1), ("main", 9)]), Counts::default());
        // Every third read raced once; tick 4's raced at every read (no frames, as read).
        t.stack_read.rereads = u8::from(i % 3 == 0);
        if i == 4 {
            t.frames = Vec::new().into();
            t.stack_read = StackRead {
                rereads: 3,
                dropped: true,
            };
        }
        s.ingest(&tick(i, vec![t], 0, 1));
    }
    let p = s.snapshot(&SAMPLES);
    assert_eq!((p.stacks_reread, p.stacks_dropped), (5, 1));
    assert!((p.stacks_dropped_percent - 10.0).abs() < 1e-9);
    // Nine stacks counted, all of `f`: the dropped one is in no function's count.
    let f = find(&p, "f");
    assert_eq!((f.own_samples, f.total_samples), (9, 9));
    assert_eq!(p.counted_samples, 9);
}

/// A task focus counts only the samples in which its loop thread ran that task (issue 24:
/// focus a task to see its functions).
#[test]
fn a_task_focus_shows_the_functions_that_task_ran() {
    let mut s = session();
    for i in 1..=30u32 {
        // Ticks alternate between two tasks on one loop thread, each in its own coroutine.
        let (task, name) = if i % 3 == 0 {
            (0xb, "flush")
        } else {
            (0xa, "parse")
        };
        let mut t = thread(
            1,
            true,
            stack(&[(name, 10), ("run_forever", 5)]),
            Counts::default(),
        );
        t.running_task = Some(task);
        s.ingest(&tick(i, vec![t], u64::from(i), 4096));
    }
    let focused = |task| {
        s.snapshot(&SnapshotQuery {
            task: Some(task),
            ..SAMPLES
        })
    };
    let a = focused(0xa);
    assert_eq!(find(&a, "parse").own_samples, 20);
    assert!(a.functions.iter().all(|f| f.name != "flush"));
    assert!((find(&a, "parse").own_percent - 100.0).abs() < 1e-9);
    let b = focused(0xb);
    assert_eq!(find(&b, "flush").own_samples, 10);
    assert_eq!(find(&b, "run_forever").total_samples, 10);
    // Unfocused: both.
    let all = s.snapshot(&SAMPLES);
    assert_eq!(find(&all, "run_forever").total_samples, 30);
}
