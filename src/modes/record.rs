//! `hptop record`: sample headless and write every event to a recording, until the duration,
//! the target's exit, ^C or SIGTERM.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::RecordOptions;
use crate::collect::{SamplerEvent, TargetInfo};
use crate::error::HptopError;
use crate::record::{RecordingHeader, RecordingWriter, WriterStatus};
use crate::session::{start_headless, RecordTo, SamplingOptions};

const POLL: Duration = Duration::from_millis(100);

/// Runs `hptop record`.
///
/// # Errors
/// Bad target, unwritable file, or the recording stopped (disk full: the file stays readable).
pub fn run(options: &RecordOptions) -> Result<(), HptopError> {
    let Some(to) = &options.sampling.record else {
        return Err(HptopError::Usage("hptop record needs -o FILE".into()));
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&interrupted));
    }
    let (mut launched, mut sampler) =
        start_headless(&options.target, &options.sampling, options.duration)?;
    let mut recorder = start_recording(to, &options.sampling, &sampler.target, sampler.epoch())?;
    let root = sampler.target.pid;
    let _ = signal_hook::flag::register(signal_hook::consts::SIGTSTP, sampler.suspend_request());
    eprintln!(
        "hptop: recording PID {root} to {} at {} Hz{}; ^C or SIGTERM stops it",
        to.path.display(),
        options.sampling.rate_hz,
        to.max_size.map_or_else(String::new, |m| format!(
            ", newest {} kept",
            crate::fmt::bytes(m)
        ))
    );
    let deadline = options.duration.map(|d| Instant::now() + d);
    let mut failed = None;
    while !interrupted.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        let wait = deadline.map_or(POLL, |d| {
            POLL.min(d.saturating_duration_since(Instant::now()))
        });
        match sampler.events.recv_timeout(wait) {
            Ok(event) => {
                let root_ended = matches!(event, SamplerEvent::Exited(pid) | SamplerEvent::Panicked(pid, _) if pid == root);
                recorder.push(&event);
                if root_ended {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(error) = recorder.status().error {
            failed = Some(error);
            break;
        }
    }
    sampler.stop();
    while let Ok(event) = sampler.events.try_recv() {
        recorder.push(&event);
    }
    if let Some(child) = launched.as_mut() {
        child.stop();
    }
    let status = recorder.finish();
    eprintln!("hptop: {}", summary(&to.path, &status));
    match failed.or(status.error) {
        Some(error) => Err(HptopError::Output {
            path: to.path.display().to_string(),
            source: std::io::Error::other(error),
        }),
        None => Ok(()),
    }
}

/// Opens the recording for a sampler that has attached `target`.
///
/// # Errors
/// The file cannot be created (see `session::output`).
pub fn start_recording(
    to: &RecordTo,
    sampling: &SamplingOptions,
    target: &TargetInfo,
    epoch: Instant,
) -> Result<RecordingWriter, HptopError> {
    // Ticks' `at` counts from the sampler's start: the header's clock is that instant's.
    let now = chrono::Utc::now() - chrono::Duration::from_std(epoch.elapsed()).unwrap_or_default();
    let header = RecordingHeader {
        hptop_version: env!("CARGO_PKG_VERSION").into(),
        started_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        started_unix_ns: now
            .timestamp_nanos_opt()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        rate_hz: sampling.rate_hz,
        pid: target.pid,
        command: target.cmdline.clone(),
        blocking: sampling.blocking,
        subprocesses: sampling.subprocesses,
    };
    RecordingWriter::create(&to.path, to.force, &header, to.max_size)
}

/// What a recording kept, in one line.
pub fn summary(path: &std::path::Path, status: &WriterStatus) -> String {
    let span = status.span.map_or(0.0, |(first, last)| {
        last.saturating_sub(first).as_secs_f64()
    });
    let mut line = format!(
        "{} holds {span:.1} s: {} ticks, {} thread-samples, {} in {} segments",
        path.display(),
        status.ticks,
        status.thread_samples,
        crate::fmt::bytes(status.bytes),
        status.segments
    );
    if status.thread_samples > 0 {
        let _ = write!(
            line,
            " ({:.1} bytes per thread-sample)",
            status.bytes as f64 / status.thread_samples as f64
        );
    }
    if status.compactions > 0 {
        line.push_str("; the oldest seconds were dropped to stay within --max-size");
    }
    if status.dropped_segments > 0 {
        let _ = write!(
            line,
            "; {} seconds were not written (the disk was too slow)",
            status.dropped_segments
        );
    }
    line
}
