//! `hptop dump`: one tick of every thread's stack and counters.

use std::time::Duration;

use super::DumpOptions;
use crate::collect::tick::Tick;
use crate::collect::{Sampler, SamplerEvent, SamplerOptions};
use crate::error::HptopError;
use crate::model::dump::DumpSnapshot;
use crate::report::{dump, Format};
use crate::session::{session_meta, write_output};

/// Ticks to try for one whose stacks read cleanly (a read can race with the target).
const ATTEMPTS: usize = 6;

/// Runs a dump.
///
/// # Errors
/// A typed error for a bad target.
pub fn run(options: DumpOptions) -> Result<(), HptopError> {
    let resolved = crate::session::resolve_pid(options.pid, None)?;
    if let Some(notice) = &resolved.notice {
        eprintln!("hptop: {notice}");
    }
    let pid = resolved.pid;
    // Paused reads 100 ms apart (at least 50: see collect/timer.rs): threads a pause woke
    // have time to block again before the next read takes their states.
    let rate = if options.blocking { 10.0 } else { 50.0 };
    let mut sampler = Sampler::start(&SamplerOptions {
        blocking: options.blocking,
        slow_every: 1,
        ..SamplerOptions::new(pid, rate)
    })?;
    let meta = session_meta(&sampler.target);
    let mut best: Option<Tick> = None;
    let mut seen = 0;
    'wait: while seen < ATTEMPTS {
        let ticks = match sampler.events.recv_timeout(Duration::from_secs(5)) {
            Ok(SamplerEvent::Ticks(ticks)) => ticks,
            Ok(SamplerEvent::Attached(_)) => continue,
            _ => break,
        };
        for tick in ticks.into_iter().filter(|t| !t.process.exited) {
            seen += 1;
            // With --blocking, attaching took a paused sample just before the first tick:
            // threads it resumed are still briefly runnable then, so their state would lie.
            if options.blocking && seen == 1 {
                continue;
            }
            // A stack dropped as torn (it changed under the read: small calls in a loop) is
            // empty in its tick: the dump reads on (at most ATTEMPTS ticks) for a tick with
            // none, else shows the one with the fewest (a CI run's dump showed a busy thread
            // with no frame: 2 dumps in 60 of a loop calling `Event.is_set`).
            // Best: no read error first, then the fewest stacks dropped (the later on a tie).
            let worse = |t: &Tick| (t.process.stack_error.is_some(), dropped_stacks(t));
            let this = worse(&tick);
            let clean = this == (false, 0);
            if best.as_ref().is_none_or(|b| this <= worse(b)) {
                best = Some(tick);
            }
            if clean {
                break 'wait;
            }
        }
    }
    sampler.stop();
    let tick = best.ok_or(HptopError::ProcessGone { pid })?;
    let snapshot = DumpSnapshot::from_tick(&meta, &tick);
    let out = match options.format {
        Format::Text => dump::text(&snapshot),
        Format::Json => {
            let mut json = dump::json(&snapshot)
                .map_err(|e| HptopError::Usage(format!("cannot serialise the dump: {e}")))?;
            json.push('\n');
            json
        }
    };
    write_output(out.as_bytes())
}

/// Threads whose stack the tick dropped as torn.
fn dropped_stacks(tick: &Tick) -> usize {
    tick.process
        .threads
        .iter()
        .filter(|t| t.stack_read.dropped)
        .count()
}
