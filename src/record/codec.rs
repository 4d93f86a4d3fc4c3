//! A segment's payload: sampler events with strings and stacks interned, counters as deltas
//! from the same thread's previous tick. Every segment starts afresh (its own tables and
//! baselines), so any segment can be read without the ones before it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::collect::tick::{
    Frame, MemoryCounters, ProcCounters, SlowThreadCounters, ThreadCounters,
};

mod columns;
mod decode;
mod encode;
/// asyncio tasks (format 3).
mod tasks;

pub use decode::{Decoder, Recorded};
pub use encode::Encoder;

/// Longest string a segment may hold (names are cut far shorter by the sampler).
const MAX_STRING: usize = 64 * 1024;

const ATTACHED: u8 = 1;
const TICK: u8 = 2;
const EXITED: u8 = 3;
const PANICKED: u8 = 4;
/// A process attached before this segment began, repeated so the segment stands alone.
const KNOWN: u8 = 5;

// Tick flags.
const RESUMED: u64 = 1;
const PROC_COUNTERS: u64 = 2;
const MEMORY: u64 = 4;
const ROLLUP: u64 = 8;
const STACK_ERROR: u64 = 16;
const PROC_EXITED: u64 = 32;
const GIL_SWITCHES: u64 = 64;
const PROC_READ: u64 = 128;
const PROC_WRITE: u64 = 256;
/// The asyncio task list follows (format 3; see `tasks`).
const TASKS: u64 = 512;

// Thread flags.
const PYTHON: u64 = 1;
const NAME: u64 = 2;
const SAME_NAME: u64 = 4;
const SAME_FRAMES: u64 = 8;
const COUNTERS: u64 = 16;
const SAME_COUNTERS: u64 = 32;
const SLOW: u64 = 64;
const RUN_NS: u64 = 128;
const WAIT_NS: u64 = 256;
const SYSCALL: u64 = 512;
const IO_BYTES: u64 = 1024;
const NOT_RUN: u64 = 2048;
/// Run and wait times are stored in µs, with their ns remainders only when this is set (the
/// sampler keeps them to the µs: see `collect::procfs`).
const SUB_MICRO: u64 = 4096;
/// `on_cpu` was told (see `collect::oncpu`); with [`ON_CPU`], the thread ran during the read.
const ON_CPU_TOLD: u64 = 8192;
const ON_CPU: u64 = 16384;
/// The stack was read again (`StackRead::rereads`, a byte after the GIL/activity codes).
const REREAD: u64 = 32768;
/// Every read of the stack raced: dropped (`StackRead::dropped`).
const DROPPED: u64 = 65536;
/// The thread ran an asyncio task (its id follows in the thread-flags column; format 3).
const RUNNING_TASK: u64 = 131_072;

/// Columns: like fields of all thread-samples are stored together (then compressed), which
/// compresses far better than one record after the other. The payload is `uint` column
/// count, each column's length, then the columns; records and references are in `CONTROL`.
const CONTROL: usize = 0;
const PROC: usize = 1;
const TID: usize = 2;
const THREAD_FLAGS: usize = 3;
const STATE: usize = 4;
const RUN: usize = 5;
const WAIT: usize = 6;
const SLOW_COL: usize = 7;
const SYS: usize = 8;
const IO: usize = 9;
const COLUMNS: usize = 10;

/// What the previous tick of one thread carried (both sides keep the same).
#[derive(Default, Clone)]
struct ThreadPrev {
    name: Option<Arc<str>>,
    frames: Option<Arc<[Frame]>>,
    counters: Option<ThreadCounters>,
    slow: SlowThreadCounters,
    arg0: u64,
    io: u64,
}

/// What the previous tick of one process carried.
#[derive(Default, Clone, Copy)]
struct ProcPrev {
    counters: ProcCounters,
    memory: MemoryCounters,
    gil_switches: u64,
}

/// Baselines of one segment, kept alike by the encoder and the decoder.
#[derive(Default)]
struct Baselines {
    at_ns: u64,
    interval_ns: u64,
    procs: HashMap<u32, ProcPrev>,
    threads: HashMap<(u32, u32), ThreadPrev>,
}

/// Turns events into one segment's payload at a time.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::collect::tick::{
        Activity, GilState, OsState, ProcessTick, SmapsRollup, StackRead, Syscall, TaskTick,
        ThreadTick, Tick,
    };
    use crate::collect::{SamplerEvent, TargetInfo};
    use std::time::Duration;

    /// Events exercising every optional field, repeated stacks and a thread that vanishes.
    #[expect(
        clippy::too_many_lines,
        reason = "one hand-made recording that sets every field"
    )]
    pub(crate) fn sample_events(ticks: u32) -> Vec<SamplerEvent> {
        let frame = |name: &str, line| Frame {
            name: name.into(),
            filename: format!("/app/{name}.py").into(),
            short_filename: (line % 2 == 0).then(|| format!("{name}.py").into()),
            line,
            first_line: line.saturating_sub(2),
        };
        let hot: Arc<[Frame]> = vec![frame("work", 3), frame("<module>", 10)].into();
        let mut events = vec![SamplerEvent::Attached(TargetInfo {
            pid: 40,
            ppid: 1,
            cmdline: vec!["python3".into(), "job.py".into()],
            python_version: "3.12.1".into(),
            start_ticks: 123,
        })];
        let mut batch = Vec::new();
        for i in 0..ticks {
            let (i64_, slow) = (u64::from(i), i % 10 == 0);
            let threads = (0..3u32)
                .filter(|k| *k != 2 || i % 7 != 3)
                .map(|k| ThreadTick {
                    tid: 40 + k * 3,
                    name: (k != 1 || i > 2).then(|| format!("t{k}").into()),
                    is_python: k != 2,
                    gil: [GilState::Held, GilState::Waiting, GilState::Unknown][k as usize],
                    activity: [Activity::HoldsGil, Activity::Sleeping, Activity::Unknown]
                        [k as usize],
                    frames: match k {
                        0 => Arc::clone(&hot),
                        1 => vec![frame("wait", 5 + i % 3), frame("<module>", 10)].into(),
                        _ => Arc::from(Vec::new()),
                    },
                    counters: (k != 1 || i % 5 != 0).then(|| ThreadCounters {
                        state: if k == 0 {
                            OsState::Running
                        } else {
                            OsState::Sleeping
                        },
                        start_ticks: 100 + u64::from(k),
                        cpu_ticks: i64_ * u64::from(k == 0),
                        minor_faults: i64_ / 3,
                        major_faults: 0,
                        slow: slow.then_some(SlowThreadCounters {
                            voluntary_ctxsw: i64_,
                            involuntary_ctxsw: i64_ / 2,
                            read_bytes: i64_ * 4096,
                            write_bytes: 0,
                        }),
                        run_ns: (k != 2).then_some(i64_ * 9_999_937),
                        runqueue_wait_ns: (k == 0).then_some(i64_ * 17),
                        not_run_since_last_read: k == 1 && i % 2 == 0,
                        on_cpu: (k == 0).then_some(i % 3 != 0),
                        syscall: (k == 1).then_some(Syscall {
                            number: 202,
                            arg0: 0x7f00_1234_5678 + u64::from(i % 2) * 8,
                        }),
                        io_bytes: (k == 0).then_some(i64_ * 100),
                    }),
                    stack_read: StackRead {
                        rereads: u8::from(k == 0 && i % 4 == 1) * 3,
                        dropped: k == 0 && i % 9 == 5,
                    },
                    running_task: (k == 0 && i % 3 == 1).then_some(0x7f00_0000 + u64::from(i % 2)),
                })
                .collect();
            batch.push(Tick {
                at: Duration::from_nanos(10_000_123 * i64_),
                interval: Duration::from_millis(10),
                skipped: i % 11,
                resumed: i == 4,
                process: ProcessTick {
                    pid: 40,
                    tasks: (i % 10 == 2).then(|| {
                        vec![TaskTick {
                            id: 0x7f00_0000,
                            name: format!("worker-{}", i % 3).into(),
                            tid: (i % 20 == 2).then_some(40),
                            running: i % 20 == 12,
                            done: false,
                            frames: vec![frame("crunch_loop", 35), frame("sleep", 704 + i % 2)],
                            awaited_by: vec![0x7f00_0100, 0x7f00_0200],
                        }]
                        .into()
                    }),
                    counters: slow.then_some(ProcCounters {
                        cpu_ticks: i64_,
                        minor_faults: i64_ * 2,
                        major_faults: 1,
                        read_bytes: (i % 20 == 0).then_some(i64_ * 10),
                        write_bytes: Some(5),
                        rss_bytes: 50_000_000 - i64_ * 4096,
                    }),
                    memory: slow.then_some(MemoryCounters {
                        swap_bytes: 0,
                        hwm_bytes: 60_000_000,
                        rss_anon_bytes: 40_000_000 + i64_,
                        rss_file_bytes: 9_000_000,
                        rss_shmem_bytes: 0,
                        rollup: (i == 0).then_some(SmapsRollup {
                            pss_bytes: 45_000_000,
                            uss_bytes: 44_000_000,
                        }),
                    }),
                    threads,
                    stack_error: (i % 13 == 5).then(|| "torn \u{1b}[31m read".into()),
                    exited: false,
                    gil_switches: (i % 3 == 0).then_some(1000 + i64_),
                },
            });
            if batch.len() == 25 {
                events.push(SamplerEvent::Ticks(std::mem::take(&mut batch)));
            }
        }
        events.push(SamplerEvent::Ticks(batch));
        events.push(SamplerEvent::Panicked(41, "boom".into()));
        events.push(SamplerEvent::Exited(40));
        events
    }

    /// The events as the decoder gives them back, one per tick.
    fn flat(events: &[SamplerEvent]) -> Vec<String> {
        let mut out = Vec::new();
        for e in events {
            match e {
                SamplerEvent::Ticks(ticks) => out.extend(ticks.iter().map(|t| format!("{t:?}"))),
                other => out.push(format!("{other:?}")),
            }
        }
        out
    }

    fn flat_recorded(events: &[Recorded]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Recorded::Attached(info) => {
                    Some(format!("{:?}", SamplerEvent::Attached(info.clone())))
                }
                Recorded::Known(_) => None,
                Recorded::Tick(t) => Some(format!("{t:?}")),
                Recorded::Exited(pid) => Some(format!("{:?}", SamplerEvent::Exited(*pid))),
                Recorded::Panicked(pid, m) => {
                    Some(format!("{:?}", SamplerEvent::Panicked(*pid, m.clone())))
                }
            })
            .collect()
    }

    #[test]
    fn every_field_comes_back_exactly_across_segments() {
        let events = sample_events(200);
        let mut encoder = Encoder::default();
        let mut decoded = Vec::new();
        let mut segments = 0;
        for (i, event) in events.iter().enumerate() {
            encoder.push(event);
            // Segments end at odd places: baselines and tables must restart cleanly.
            if i % 3 == 1 {
                let (got, error) = Decoder::decode(&encoder.finish());
                assert_eq!(error, None);
                decoded.extend(got);
                segments += 1;
            }
        }
        let (got, error) = Decoder::decode(&encoder.finish());
        assert_eq!(error, None);
        decoded.extend(got);
        assert!(segments > 2);
        assert_eq!(flat_recorded(&decoded), flat(&events));
        // Every segment after the first restates the process it continues.
        assert!(decoded
            .iter()
            .any(|e| matches!(e, Recorded::Known(t) if t.pid == 40)));
    }
}
