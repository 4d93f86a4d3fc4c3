//! Crediting a thread's counter deltas to the stacks it ran: CPU over the span since the last
//! slow read to the stacks seen on a CPU, I/O to the stacks blocked in I/O calls, faults and
//! switches per tick; what cannot be placed yet is held, within bounds.

use rustc_hash::FxHashMap as HashMap;

use super::{
    CounterSums, HeldCredit, InCall, ThreadStats, MAX_HELD_SPANS, MAX_HELD_TICKS, MAX_PENDING,
    MAX_UNPLACED_SPANS, MAX_UNPLACED_STACKS, RECENT_ON_CPU,
};
use crate::collect::tick::{OsState, ThreadCounters};
use crate::model::functions::{Credited, FunctionId, FunctionTable};

/// Keeps the stack just read (none: no Python stack) for the next slow read's split, with
/// whether the thread was blocked in an I/O system call.
pub(super) fn remember_for_slow(
    stats: &mut ThreadStats,
    has_stack: bool,
    counters: Option<ThreadCounters>,
    call: InCall,
    functions: &mut FunctionTable,
) {
    let seen_on_cpu = has_stack && counters.as_ref().is_some_and(on_cpu);
    if counters.is_some_and(|c| c.state == OsState::Running && !on_cpu(&c)) {
        stats.spans_since_waiting = 0;
        if has_stack {
            stats.last_runnable.clone_from(&stats.stack);
        }
    }
    if seen_on_cpu {
        keep_on_cpu(stats);
    }
    if stats.pending_len >= MAX_PENDING {
        return;
    }
    if stats.pending_len == stats.pending_slow.len() {
        stats.pending_slow.push(Vec::new());
        stats.pending_call.push(InCall::None);
    }
    let slot = &mut stats.pending_slow[stats.pending_len];
    slot.clear();
    if has_stack {
        slot.extend_from_slice(&stats.stack);
    }
    stats.pending_call[stats.pending_len] = if has_stack { call } else { InCall::None };
    if call == InCall::Io && has_stack {
        stats.io_site.clone_from(&stats.stack);
        place_held_io(stats, functions);
    }
    if call == InCall::Other && has_stack {
        stats.call_site.clone_from(&stats.stack);
    }
    stats.pending_len += 1;
}

/// Keeps the stack just read, seen on a CPU, for the span's CPU and among the recent ones.
pub(super) fn keep_on_cpu(stats: &mut ThreadStats) {
    if stats.cpu_span_len < MAX_PENDING {
        if stats.cpu_span_len == stats.cpu_span.len() {
            stats.cpu_span.push(Vec::new());
        }
        stats.cpu_span[stats.cpu_span_len].clone_from(&stats.stack);
        stats.cpu_span_len += 1;
    }
    let mut kept = if stats.recent_on_cpu.len() >= RECENT_ON_CPU {
        stats.recent_on_cpu.pop_front().unwrap_or_default()
    } else {
        Vec::new()
    };
    kept.clone_from(&stats.stack);
    stats.recent_on_cpu.push_back(kept);
}

/// At the thread's slow read, once this tick's stack is known: credits the span's CPU, all
/// of it, to the stacks seen on a CPU in the span, this tick's included, evenly: each is a
/// sample of where the thread's CPU time goes. (Not each interval to the stack at its start:
/// schedstat's run time is brought up to date only at the thread's system calls and
/// scheduler ticks, so an interval that starts inside a long phase starts, in run time,
/// where the phase began, and long phases read high: 77-79 % against 75 % on the contention
/// workload. Nor the CPU of intervals that began with the thread off a CPU held apart: beside
/// heavy load that is most of it, and what was held grew faster than it was given back, to
/// land at the window's end on the last few stacks seen.) Stacks of a thread off a CPU are
/// not such samples: they show where it sleeps or where the scheduler stopped it. Without
/// one in the span, a thread seen waiting for a CPU in the last second holds the span's CPU
/// for the next spans, up to [`MAX_HELD_SPANS`]; held CPU is given back at most as fast as
/// the thread runs. Else, and with `last` (the end of the window or of the thread), it goes
/// to the last stacks seen on a CPU (a pool worker's job, not the queue it waits on again),
/// or, for a thread never seen on one, to the stack read now.
pub(super) fn credit_span_cpu(stats: &mut ThreadStats, last: bool, functions: &mut FunctionTable) {
    let span_cpu = std::mem::take(&mut stats.span_cpu);
    stats.spans_since_waiting = stats.spans_since_waiting.saturating_add(1);
    let credit = |functions: &mut FunctionTable, stacks: &[&Vec<(FunctionId, u32)>], cpu_s| {
        let cpu = Credited {
            cpu_s,
            ..Credited::default()
        };
        for stack in stacks {
            functions.credit_stack(stack, &cpu, 1.0 / stacks.len() as f64);
        }
    };
    let on_cpu = stats.cpu_span_len;
    if on_cpu > 0 {
        // CPU held from spans without such a stack is given back at most as fast as the
        // thread runs, so it lands on the stacks of many spans, not on the few of one.
        let give = if last {
            stats.cpu_pool
        } else {
            stats.cpu_pool.min(span_cpu.max(1e-3))
        };
        stats.cpu_pool -= give;
        stats.cpu_pool_spans = 0;
        stats.cpu_span_len = 0;
        let stacks: Vec<_> = stats.cpu_span[..on_cpu].iter().collect();
        if span_cpu + give > 0.0 {
            credit(functions, &stacks, span_cpu + give);
        }
        return;
    }
    stats.cpu_pool += span_cpu;
    if stats.cpu_pool <= 0.0 {
        return;
    }
    let give_up = last || stats.cpu_pool_spans + 1 >= MAX_HELD_SPANS;
    if !give_up && stats.spans_since_waiting <= 10 {
        stats.cpu_pool_spans += 1;
        return;
    }
    // Where the thread was last seen running; for a thread never seen on a CPU, where it was
    // last seen waiting for one, else (it runs only between samples: a sleeper that wakes
    // for a millisecond) the stack read now.
    let recent: Vec<_> = stats.recent_on_cpu.iter().collect();
    let fallback = [if stats.last_runnable.is_empty() {
        &stats.stack
    } else {
        &stats.last_runnable
    }];
    let stacks: &[&Vec<(FunctionId, u32)>] = if recent.is_empty() {
        &fallback
    } else {
        &recent
    };
    // Without any stack: as any interval without a Python frame, credited to none.
    credit(functions, stacks, stats.cpu_pool);
    stats.cpu_pool = 0.0;
    stats.cpu_pool_spans = 0;
}

/// Credits a slow span's I/O bytes. They go to the stacks seen blocked in an I/O system call
/// during the span (the code that reads and writes), split among them; in a span without one,
/// to the last stack the thread was seen doing I/O at (a fast write is never caught in the
/// act, but the same code's slower calls are). A thread never seen in one: held for a site
/// (see [`place_held_io`]), to go otherwise to the span's stacks that were in a system call
/// other than a wait (bytes move in system calls, not in Python code on a CPU), else to all.
pub(super) fn credit_span_io(stats: &mut ThreadStats, bytes: f64, functions: &mut FunctionTable) {
    if bytes <= 0.0 {
        return;
    }
    let pending = &stats.pending_slow[..stats.pending_len];
    let calls = &stats.pending_call[..stats.pending_len];
    let count = |kind: InCall| calls.iter().filter(|&&c| c == kind).count();
    let io = Credited {
        io_bytes: bytes,
        ..Credited::default()
    };
    let (io_stacks, in_calls) = (count(InCall::Io), count(InCall::Other));
    if io_stacks == 0 && !stats.io_site.is_empty() {
        functions.credit_stack(&stats.io_site, &io, 1.0);
    } else if io_stacks > 0 {
        for (stack, _) in pending.iter().zip(calls).filter(|(_, &c)| c == InCall::Io) {
            functions.credit_stack(stack, &io, 1.0 / io_stacks as f64);
        }
    } else {
        let (keep, n): (fn(InCall) -> bool, usize) = if in_calls > 0 {
            (|c| c == InCall::Other, in_calls)
        } else {
            (|_| true, pending.len())
        };
        for (stack, _) in pending.iter().zip(calls).filter(|(_, &c)| keep(c)) {
            hold_io(&mut stats.unplaced_io, stack, bytes / n as f64, functions);
        }
    }
}

/// Holds `bytes` for a later I/O site, to go to `stack` if none is seen (see
/// [`place_held_io`]); past `MAX_UNPLACED_STACKS` stacks they go to `stack` at once.
pub(super) fn hold_io(
    unplaced: &mut HashMap<Vec<(FunctionId, u32)>, f64>,
    stack: &[(FunctionId, u32)],
    bytes: f64,
    functions: &mut FunctionTable,
) {
    if let Some(held) = unplaced.get_mut(stack) {
        *held += bytes;
    } else if unplaced.len() < MAX_UNPLACED_STACKS {
        unplaced.insert(stack.to_vec(), bytes);
    } else {
        let io = Credited {
            io_bytes: bytes,
            ..Credited::default()
        };
        functions.credit_stack(stack, &io, 1.0);
    }
}

/// Credits the bytes read at this tick (a thread that does I/O, see `ThreadCounters::io_bytes`)
/// to the code that moved them: this tick's stack if it is in an I/O call; else the thread's
/// I/O site; else this tick's stack if it is in another call (a write is often followed by
/// waiting for the GIL or a lock where it was made); else held for a site to be seen.
pub(super) fn credit_tick_io(
    stats: &mut ThreadStats,
    has_stack: bool,
    call: InCall,
    functions: &mut FunctionTable,
) {
    let bytes = std::mem::take(&mut stats.tick_io);
    if bytes == 0 || stats.stack.is_empty() {
        return;
    }
    let io = Credited {
        io_bytes: bytes as f64,
        ..Credited::default()
    };
    if has_stack && call == InCall::Io {
        functions.credit_stack(&stats.stack, &io, 1.0);
    } else if !stats.io_site.is_empty() {
        functions.credit_stack(&stats.io_site, &io, 1.0);
    } else if has_stack && call == InCall::Other {
        functions.credit_stack(&stats.stack, &io, 1.0);
    } else {
        hold_io(&mut stats.unplaced_io, &stats.stack, io.io_bytes, functions);
    }
}

/// Credits the I/O bytes a thread held while it had no I/O site: to that site if it has one
/// now (the code this thread does its I/O at), else to the stack last seen in a call that
/// is not a sleep (`call_site`), else to the stacks they were held for.
/// Bytes move in system calls, and a fast write on a CPU is never caught in one, while the
/// same code's slower calls (an fsync, a full pipe) are, sooner or later.
pub(super) fn place_held_io(stats: &mut ThreadStats, functions: &mut FunctionTable) {
    stats.unplaced_spans = 0;
    if stats.unplaced_io.is_empty() {
        return;
    }
    let credit = |bytes: f64| Credited {
        io_bytes: bytes,
        ..Credited::default()
    };
    // Never the stacks a sleeper was held for while a better site is known: no bytes move
    // in nanosleep or poll.
    let site = if stats.io_site.is_empty() {
        &stats.call_site
    } else {
        &stats.io_site
    };
    if site.is_empty() {
        for (stack, bytes) in stats.unplaced_io.drain() {
            functions.credit_stack(&stack, &credit(bytes), 1.0);
        }
    } else {
        let bytes: f64 = stats.unplaced_io.drain().map(|(_, b)| b).sum();
        functions.credit_stack(site, &credit(bytes), 1.0);
    }
}

/// Whether the thread was on a CPU when its stack was read: told by its task clock where
/// hptop could read it (see `collect::oncpu`), else by state `R` (running or runnable).
pub(super) fn on_cpu(counters: &ThreadCounters) -> bool {
    counters
        .on_cpu
        .unwrap_or(counters.state == OsState::Running)
}

/// After this tick's stack is known: faults held from intervals that began off a CPU go to
/// it if the thread is on a CPU now; else they stay held, at most [`MAX_HELD_TICKS`].
pub(super) fn place_off_cpu(
    stats: &mut ThreadStats,
    counters: Option<ThreadCounters>,
    read: bool,
    functions: &mut FunctionTable,
) {
    let held = &mut stats.off_cpu;
    if !held.credit.any() {
        return;
    }
    if held.ticks == 0 {
        held.fallback.clone_from(&stats.stack);
    }
    held.ticks += 1;
    if read && counters.as_ref().is_some_and(on_cpu) {
        functions.credit_stack(&stats.stack, &held.credit, 1.0);
        *held = HeldCredit {
            fallback: std::mem::take(&mut held.fallback),
            ..HeldCredit::default()
        };
    } else if held.ticks >= MAX_HELD_TICKS {
        release_off_cpu(stats, functions);
    }
}

/// Credits held faults to their fallback stack (the thread exits, the window ends, or they
/// were held too long).
pub(super) fn release_off_cpu(stats: &mut ThreadStats, functions: &mut FunctionTable) {
    let held = &mut stats.off_cpu;
    if held.credit.any() {
        functions.credit_stack(&held.fallback, &held.credit, 1.0);
    }
    held.credit = Credited::default();
    held.ticks = 0;
}

/// (voluntary + involuntary) of this read's slow delta.
pub(super) fn account_counters(
    stats: &mut ThreadStats,
    now: &ThreadCounters,
    functions: &mut FunctionTable,
) -> u64 {
    let io_mark_before = stats.io_mark;
    if let Some(io) = now.io_bytes {
        if let Some(mark) = io_mark_before {
            stats.tick_io += io.saturating_sub(mark);
        }
        stats.io_mark = Some(io);
    }
    if let Some(last) = stats.last {
        let ns = |now: Option<u64>, last: Option<u64>| match (now, last) {
            (Some(now), Some(last)) => now.saturating_sub(last),
            _ => 0,
        };
        // Where schedstat is read, CPU is its nanoseconds, even 0: `stat`'s ticks may lag by
        // several reads (procfs's fault gate reads no `stat` while nothing faults).
        let schedstat = now.run_ns.is_some() && last.run_ns.is_some();
        let delta = CounterSums {
            cpu_ticks: if schedstat {
                0
            } else {
                now.cpu_ticks.saturating_sub(last.cpu_ticks)
            },
            minor_faults: now.minor_faults.saturating_sub(last.minor_faults),
            major_faults: now.major_faults.saturating_sub(last.major_faults),
            run_ns: ns(now.run_ns, last.run_ns),
            runqueue_wait_ns: ns(now.runqueue_wait_ns, last.runqueue_wait_ns),
            ..CounterSums::default()
        };
        stats.sums.add(&delta);
        let changed = delta.cpu_ticks + delta.minor_faults + delta.major_faults + delta.run_ns > 0;
        if stats.pending_fast && changed {
            // On-CPU time in ns, not 10 ms ticks: a thread that ran 3 ms of a 10 ms interval
            // is credited 3 ms, not 0 or 10.
            // Its CPU is shared among the stacks seen on a CPU (see `credit_span_cpu`).
            stats.span_cpu += delta.cpu_s();
            let credited = Credited {
                minor_faults: delta.minor_faults as f64,
                major_faults: delta.major_faults as f64,
                ..Credited::default()
            };
            if on_cpu(&last) {
                functions.credit_stack(&stats.stack, &credited, 1.0);
            } else {
                // Off a CPU at the previous read (blocked, sleeping, waiting for the GIL or
                // for a CPU): its stack then caused nothing of what it ran since.
                stats.off_cpu.credit.add_scaled(&credited, 1.0);
            }
        }
    }
    stats.last = Some(*now);
    let Some(slow) = now.slow else { return 0 };
    let mut switches = 0;
    if let Some(last) = stats.last_slow {
        let delta = CounterSums {
            voluntary_ctxsw: slow.voluntary_ctxsw.saturating_sub(last.voluntary_ctxsw),
            involuntary_ctxsw: slow
                .involuntary_ctxsw
                .saturating_sub(last.involuntary_ctxsw),
            read_bytes: slow.read_bytes.saturating_sub(last.read_bytes),
            write_bytes: slow.write_bytes.saturating_sub(last.write_bytes),
            ..CounterSums::default()
        };
        stats.sums.add(&delta);
        switches = delta.voluntary_ctxsw + delta.involuntary_ctxsw;
        // Bytes a per-tick read already passed to `tick_io` are not the span's.
        let span_io = match (io_mark_before, stats.io_mark) {
            (Some(_), Some(mark)) => {
                stats.io_mark = Some(mark.max(slow.io_bytes()));
                slow.io_bytes().saturating_sub(mark)
            }
            _ => delta.read_bytes + delta.write_bytes,
        };
        let credited = Credited {
            voluntary_ctxsw: delta.voluntary_ctxsw as f64,
            involuntary_ctxsw: delta.involuntary_ctxsw as f64,
            io_bytes: span_io as f64,
            ..Credited::default()
        };
        let share = 1.0 / stats.pending_len.max(1) as f64;
        credit_span_io(stats, span_io as f64, functions);
        let switch_credit = Credited {
            io_bytes: 0.0,
            ..credited
        };
        let pending = &stats.pending_slow[..stats.pending_len];
        if switches > 0 {
            for stack in pending {
                functions.credit_stack(stack, &switch_credit, share);
            }
        }
    }
    stats.last_slow = Some(slow);
    stats.pending_len = 0;
    if !stats.unplaced_io.is_empty() {
        stats.unplaced_spans += 1;
    }
    if stats.unplaced_spans >= MAX_UNPLACED_SPANS {
        place_held_io(stats, functions);
    }
    switches
}
