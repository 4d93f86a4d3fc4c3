//! `Session::ingest` and `Session::snapshot` at scale: 100 threads with 30-frame stacks over
//! 500 distinct functions, the shape of a busy worker pool. `cargo bench --bench model`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use hptop::collect::tick::{
    Activity, Frame, GilState, OsState, ProcCounters, ProcessTick, SlowThreadCounters, StackRead,
    ThreadCounters, ThreadTick, Tick,
};
use hptop::model::snapshot::SnapshotQuery;
use hptop::model::{Session, SessionMeta};

const THREADS: u32 = 100;
const DEPTH: u32 = 30;
const FUNCTIONS: u32 = 500;

fn tick(index: u32) -> Tick {
    let threads = (0..THREADS)
        .map(|t| ThreadTick {
            stack_read: StackRead::default(),
            running_task: None,
            tid: 1000 + t,
            name: Some(format!("worker-{t}").into()),
            is_python: true,
            gil: if t == index % THREADS {
                GilState::Held
            } else {
                GilState::NotHeld
            },
            activity: Activity::Unknown,
            frames: (0..DEPTH)
                .map(|d| {
                    let f = (t * 7 + d * 13 + index % 3) % FUNCTIONS;
                    Frame {
                        name: format!("function_{f}").into(),
                        filename: format!("/srv/app/module_{}.py", f % 40).into(),
                        short_filename: None,
                        line: 10 + (index + d) % 20,
                        first_line: 10,
                    }
                })
                .collect(),
            counters: Some(ThreadCounters {
                state: if t % 4 == 0 {
                    OsState::Running
                } else {
                    OsState::Sleeping
                },
                start_ticks: 1,
                cpu_ticks: u64::from(index),
                minor_faults: u64::from(index * 3),
                slow: index.is_multiple_of(10).then_some(SlowThreadCounters {
                    voluntary_ctxsw: u64::from(index),
                    ..SlowThreadCounters::default()
                }),
                ..ThreadCounters::default()
            }),
        })
        .collect();
    Tick {
        at: Duration::from_millis(u64::from(index) * 10),
        interval: Duration::from_millis(10),
        process: ProcessTick {
            pid: 1,
            counters: index.is_multiple_of(10).then_some(ProcCounters {
                cpu_ticks: u64::from(index),
                rss_bytes: 1 << 30,
                ..ProcCounters::default()
            }),
            threads,
            ..ProcessTick::default()
        },
        ..Tick::default()
    }
}

fn bench(c: &mut Criterion) {
    let ticks: Vec<Tick> = (0..200).map(tick).collect();
    c.bench_function("ingest one tick: 100 threads x 30 frames", |b| {
        let mut session = Session::new(SessionMeta::default());
        let mut i = 0;
        b.iter(|| {
            session.ingest(&ticks[i % ticks.len()]);
            i += 1;
        });
    });
    let mut session = Session::new(SessionMeta::default());
    for t in &ticks {
        session.ingest(t);
    }
    c.bench_function("snapshot: 500 functions, 100 threads", |b| {
        b.iter(|| session.snapshot(&SnapshotQuery::default()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
