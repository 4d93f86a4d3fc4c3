//! `hptop report`: sample for a window, then print one report (text or JSON).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::launch::Launched;
use super::{
    family_event, own_cpu_s, resolve_target, sampler_options, write_output, ReportOptions,
};
use crate::collect::{Sampler, SamplerEvent};
use crate::error::HptopError;
use crate::model::family::Family;
use crate::model::snapshot::SnapshotQuery;
use crate::report::json::Report;
use crate::report::{text, Format, ReportHeader};

/// How often the collecting loop looks at the interrupt flag and the deadline.
const POLL: Duration = Duration::from_millis(100);
/// Runs a report.
///
/// # Errors
/// A typed error: bad target, launch failure, unwritable output.
pub fn run(options: &ReportOptions) -> Result<(), HptopError> {
    // ^C or SIGTERM ends the window early; the report covers what was gathered.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&interrupted));
    }
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let log = options.sampling.log.clone();
    let resolved = resolve_target(&options.target, |argv| match &log {
        Some(path) => Launched::spawn_logged(argv, path),
        None => Launched::spawn(argv),
    })?;
    if let Some(notice) = &resolved.notice {
        eprintln!("hptop: {notice}");
    }
    let mut launched = resolved.launched;
    let sampler_opts = sampler_options(resolved.pid, &options.sampling, launched.is_some());
    let cpu_before = own_cpu_s();
    let mut sampler = Sampler::start(&sampler_opts)?;
    let root = sampler.target.pid;
    let mut family = Family::new(root);
    // ^Z: suspend only between samples, so a --blocking pause is never left held.
    let _ = signal_hook::flag::register(signal_hook::consts::SIGTSTP, sampler.suspend_request());

    let deadline = Instant::now() + options.duration;
    let mut sampler_panics = Vec::new();
    while !interrupted.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match sampler.events.recv_timeout(POLL.min(deadline - now)) {
            // The target's sampler ends the report; a follower's ends only its process's data.
            Ok(SamplerEvent::Panicked(pid, message)) => {
                let root_stopped = pid == root;
                sampler_panics.push((pid, message));
                if root_stopped {
                    break;
                }
            }
            Ok(SamplerEvent::Exited(pid)) if pid == root => break,
            Ok(event) => family_event(&mut family, event),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    sampler.stop();
    // Ticks already queued were taken inside the window.
    while let Ok(event) = sampler.events.try_recv() {
        family_event(&mut family, event);
    }
    let hptop_cpu_s = own_cpu_s() - cpu_before;
    if let Some(child) = launched.as_mut() {
        let exited_before = child.exited();
        if let Some(status) = child.stop() {
            let how = if exited_before {
                "exited"
            } else {
                "was stopped at the end of the window"
            };
            eprintln!("hptop: the launched command {how} ({status})");
        }
    }
    for (pid, message) in sampler_panics {
        eprintln!("hptop: warning: sampling of PID {pid} stopped early ({message}); the report covers what was gathered");
    }

    let query = SnapshotQuery {
        include_idle: options.sampling.include_idle,
        ..SnapshotQuery::default()
    };
    let snapshot = family.snapshot(&query);
    if family.dropped() > 0 {
        eprintln!(
            "hptop: {} exited processes beyond the newest {} are not in the report",
            family.dropped(),
            crate::model::family::MAX_EXITED
        );
    }
    let header = ReportHeader {
        started_at,
        rate_hz: options.sampling.rate_hz,
        hptop_cpu_s,
        include_idle: options.sampling.include_idle,
    };
    let out = match options.format {
        Format::Text => text::render(&snapshot, &header),
        Format::Json => {
            let mut json = Report::new(&snapshot, &header)
                .to_json()
                .map_err(|e| HptopError::Usage(format!("cannot serialise the report: {e}")))?;
            json.push('\n');
            json
        }
    };
    write_output(options.output.as_deref(), &out)
}
