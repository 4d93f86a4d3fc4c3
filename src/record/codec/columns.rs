//! Column helpers shared by the encoder and the decoder: which counters a thread tick
//! carries, the column table, deltas in microseconds, and the one-byte codes of thread states.

use super::{
    ThreadPrev, COLUMNS, CONTROL, COUNTERS, IO, IO_BYTES, NOT_RUN, ON_CPU, ON_CPU_TOLD, RUN,
    RUN_NS, SAME_COUNTERS, SLOW, SLOW_COL, STATE, SUB_MICRO, SYS, SYSCALL, WAIT, WAIT_NS,
};
use crate::collect::tick::{
    Activity, GilState, OsState, SlowThreadCounters, Syscall, ThreadCounters,
};
use crate::record::wire::{put_delta, put_u64, Reader};
use crate::record::RecordError;
use std::time::Duration;

/// The thread flags that say which counters `c` has (`same`: equal to the last ones).
pub(super) fn counter_flags(c: &ThreadCounters, same: bool) -> u64 {
    let mut flags = COUNTERS;
    if same {
        flags |= SAME_COUNTERS;
    }
    let bit = |present: bool, flag: u64| if present { flag } else { 0 };
    flags |= bit(c.slow.is_some(), SLOW);
    flags |= bit(c.run_ns.is_some(), RUN_NS);
    flags |= bit(c.runqueue_wait_ns.is_some(), WAIT_NS);
    flags |= bit(c.syscall.is_some(), SYSCALL);
    flags |= bit(c.io_bytes.is_some(), IO_BYTES);
    let sub_micro = |v: Option<u64>| v.is_some_and(|v| v % 1000 != 0);
    flags |= bit(
        sub_micro(c.run_ns) || sub_micro(c.runqueue_wait_ns),
        SUB_MICRO,
    );
    flags |= bit(c.not_run_since_last_read, NOT_RUN);
    flags
        | match c.on_cpu {
            Some(true) => ON_CPU_TOLD | ON_CPU,
            Some(false) => ON_CPU_TOLD,
            None => 0,
        }
}

/// The column readers after the control one (index - 1).
pub(super) type Cols<'a> = [Reader<'a>; COLUMNS - 1];

/// The control column and the others, from a payload's column table.
pub(super) fn split_columns(payload: &[u8]) -> Result<(Reader<'_>, Cols<'_>), RecordError> {
    let mut head = Reader::new(payload);
    if head.u64()? != COLUMNS as u64 {
        return Err(RecordError::Damaged("unknown column layout"));
    }
    let mut lens = [0usize; COLUMNS];
    for len in &mut lens {
        *len = head.count(0)?;
    }
    let mut rest = head.rest();
    if lens.iter().sum::<usize>() != rest.len() {
        return Err(RecordError::Damaged(
            "column lengths do not match the payload",
        ));
    }
    let mut columns = lens.map(|len| {
        let (col, tail) = rest.split_at(len);
        rest = tail;
        Reader::new(col)
    });
    let control = std::mem::replace(&mut columns[CONTROL], Reader::new(&[]));
    let [_, others @ ..] = columns;
    Ok((control, others))
}

pub(super) fn thread_counters(
    c: &mut Cols,
    flags: u64,
    prev: &mut ThreadPrev,
) -> Result<ThreadCounters, RecordError> {
    let b = prev.counters.unwrap_or_default();
    let r = &mut c[STATE - 1];
    let state = os_of(r.u8()?)?;
    let mut counters = ThreadCounters {
        state,
        start_ticks: r.delta(b.start_ticks)?,
        cpu_ticks: r.delta(b.cpu_ticks)?,
        minor_faults: r.delta(b.minor_faults)?,
        major_faults: r.delta(b.major_faults)?,
        not_run_since_last_read: flags & NOT_RUN != 0,
        on_cpu: (flags & ON_CPU_TOLD != 0).then_some(flags & ON_CPU != 0),
        ..ThreadCounters::default()
    };
    let sub_micro = flags & SUB_MICRO != 0;
    if flags & RUN_NS != 0 {
        counters.run_ns = Some(micros(&mut c[RUN - 1], b.run_ns.unwrap_or(0), sub_micro)?);
    }
    if flags & WAIT_NS != 0 {
        let before = b.runqueue_wait_ns.unwrap_or(0);
        counters.runqueue_wait_ns = Some(micros(&mut c[WAIT - 1], before, sub_micro)?);
    }
    if flags & SLOW != 0 {
        let r = &mut c[SLOW_COL - 1];
        let s = SlowThreadCounters {
            voluntary_ctxsw: r.delta(prev.slow.voluntary_ctxsw)?,
            involuntary_ctxsw: r.delta(prev.slow.involuntary_ctxsw)?,
            read_bytes: r.delta(prev.slow.read_bytes)?,
            write_bytes: r.delta(prev.slow.write_bytes)?,
        };
        prev.slow = s;
        counters.slow = Some(s);
    }
    if flags & SYSCALL != 0 {
        let r = &mut c[SYS - 1];
        let number = r.u64()?;
        let arg0 = r.delta(prev.arg0)?;
        prev.arg0 = arg0;
        counters.syscall = Some(Syscall { number, arg0 });
    }
    if flags & IO_BYTES != 0 {
        let io = c[IO - 1].delta(prev.io)?;
        prev.io = io;
        counters.io_bytes = Some(io);
    }
    Ok(counters)
}

/// A time in ns as a delta of whole µs, then (with `sub_micro`) its ns remainder.
pub(super) fn put_micros(out: &mut Vec<u8>, now: u64, before: u64, sub_micro: bool) {
    put_delta(out, now / 1000, before / 1000);
    if sub_micro {
        put_u64(out, now % 1000);
    }
}

pub(super) fn micros(r: &mut Reader, before: u64, sub_micro: bool) -> Result<u64, RecordError> {
    let us = r.delta(before / 1000)?;
    let rest = if sub_micro { r.u64()? } else { 0 };
    if rest >= 1000 {
        return Err(RecordError::Damaged("bad sub-microsecond part"));
    }
    Ok(us.wrapping_mul(1000).wrapping_add(rest))
}

pub(super) fn optional(
    r: &mut Reader,
    present: bool,
    before: u64,
) -> Result<Option<u64>, RecordError> {
    present.then(|| r.delta(before)).transpose()
}

pub(super) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(super) fn gil_code(g: GilState) -> u8 {
    match g {
        GilState::Held => 0,
        GilState::Waiting => 1,
        GilState::NotHeld => 2,
        GilState::Unknown => 3,
    }
}

pub(super) fn gil_of(code: u8) -> GilState {
    match code {
        0 => GilState::Held,
        1 => GilState::Waiting,
        2 => GilState::NotHeld,
        _ => GilState::Unknown,
    }
}

pub(super) fn activity_code(a: Activity) -> u8 {
    match a {
        Activity::HoldsGil => 0,
        Activity::WaitsGil => 1,
        Activity::Native => 2,
        Activity::Blocked => 3,
        Activity::Sleeping => 4,
        Activity::Unknown => 5,
    }
}

pub(super) fn activity_of(code: u8) -> Result<Activity, RecordError> {
    Ok(match code {
        0 => Activity::HoldsGil,
        1 => Activity::WaitsGil,
        2 => Activity::Native,
        3 => Activity::Blocked,
        4 => Activity::Sleeping,
        5 => Activity::Unknown,
        _ => return Err(RecordError::Damaged("bad activity")),
    })
}

pub(super) fn os_code(s: OsState) -> u8 {
    match s {
        OsState::Running => 0,
        OsState::Sleeping => 1,
        OsState::DiskSleep => 2,
        OsState::Stopped => 3,
        OsState::Dead => 4,
        OsState::Other => 5,
    }
}

pub(super) fn os_of(code: u8) -> Result<OsState, RecordError> {
    Ok(match code {
        0 => OsState::Running,
        1 => OsState::Sleeping,
        2 => OsState::DiskSleep,
        3 => OsState::Stopped,
        4 => OsState::Dead,
        5 => OsState::Other,
        _ => return Err(RecordError::Damaged("bad thread state")),
    })
}
