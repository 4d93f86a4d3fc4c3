//! `hptop report`: sample for a window, then print one report (text or JSON).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ReportOptions;
use crate::collect::SamplerEvent;
use crate::error::HptopError;
use crate::model::family::Family;
use crate::model::snapshot::{Snapshot, SnapshotQuery};
use crate::record::RecordingWriter;
use crate::report::json::Report;
use crate::report::slices::StackSlices;
use crate::report::{text, Format, ReportHeader};
use crate::session::launch::Launched;
use crate::session::output::{open_output, write_all, Existing};
use crate::session::{family_event, own_cpu_s, start_headless, write_output};

/// How often the collecting loop looks at the interrupt flag and the deadline.
const POLL: Duration = Duration::from_millis(100);
/// Runs a report.
///
/// # Errors
/// A typed error: bad target, launch failure, unwritable output.
pub fn run(options: &ReportOptions) -> Result<(), HptopError> {
    if let Some(input) = &options.input {
        return super::replay::report(options, input);
    }
    // ^C or SIGTERM ends the window early; the report covers what was gathered.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&interrupted));
    }
    // SIGUSR1 writes a report of the window so far and starts the next one (as --every).
    let write_now = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&write_now));
    // Opened before sampling: a bad path fails now, not after the whole window. With
    // --every each period opens its own file (its name expanded) when it is written.
    let output = if options.every.is_some() {
        refuse_binary_to_terminal(options)?;
        None
    } else {
        open_report_output(options)?
    };
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let cpu_before = own_cpu_s();
    let (mut launched, mut sampler) =
        start_headless(&options.target, &options.sampling, Some(options.duration))?;
    let root = sampler.target.pid;
    let mut family = Family::new(root);
    let mut recorder = options
        .sampling
        .record
        .as_ref()
        .map(|to| {
            super::record::start_recording(to, &options.sampling, &sampler.target, sampler.epoch())
        })
        .transpose()?;
    // ^Z: suspend only between samples, so a --blocking pause is never left held.
    let _ = signal_hook::flag::register(signal_hook::consts::SIGTSTP, sampler.suspend_request());

    let deadline = Instant::now() + options.duration;
    let mut sampler_panics = Vec::new();
    let mut slices = wants_timeline(options).then(StackSlices::new);
    let started = Instant::now();
    let mut period = Period {
        number: 1,
        started: Instant::now(),
        started_at,
        cpu_mark: cpu_before,
        first: output,
    };
    while !interrupted.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let due = options
            .every
            .is_some_and(|every| now >= period.started + every);
        if due || write_now.swap(false, Ordering::Relaxed) {
            period.write(&mut family, options, slices.as_mut())?;
        }
        match sampler.events.recv_timeout(POLL.min(deadline - now)) {
            // The target's sampler ends the report; a follower's ends only its process's data.
            Ok(SamplerEvent::Panicked(pid, message)) => {
                let root_stopped = pid == root;
                if let Some(r) = recorder.as_mut() {
                    r.push(&SamplerEvent::Panicked(pid, message.clone()));
                }
                sampler_panics.push((pid, message));
                if root_stopped {
                    break;
                }
            }
            Ok(SamplerEvent::Exited(pid)) if pid == root => {
                take(&mut recorder, &mut family, SamplerEvent::Exited(pid));
                break;
            }
            Ok(event) => take(&mut recorder, &mut family, event),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(s) = slices.as_mut() {
            let at = started.elapsed();
            if s.due(at) {
                s.take(Some(at), &family.snapshot(&stack_query(options)));
            }
        }
    }
    sampler.stop();
    // Ticks already queued were taken inside the window.
    while let Ok(event) = sampler.events.try_recv() {
        take(&mut recorder, &mut family, event);
    }
    // A command that failed at once (a missing script...) leaves no report worth reading.
    let failed = launched.as_mut().and_then(|c| c.early_failure(false));
    wind_down(recorder, launched.as_mut(), sampler_panics, options);
    if let Some(error) = failed {
        return Err(error);
    }
    // The whole window, or with --every or after SIGUSR1 the last period.
    period.write(&mut family, options, slices.as_mut())
}

/// After the window: the recording's summary, the launched command stopped, warnings.
fn wind_down(
    recorder: Option<RecordingWriter>,
    launched: Option<&mut Launched>,
    sampler_panics: Vec<(u32, String)>,
    options: &ReportOptions,
) {
    if let (Some(r), Some(to)) = (recorder, &options.sampling.record) {
        let status = r.finish();
        if let Some(error) = &status.error {
            eprintln!("hptop: warning: {error}");
        }
        eprintln!("hptop: {}", super::record::summary(&to.path, &status));
    }
    if let Some(child) = launched {
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
}

/// The current period of a report written more than once (`--every`, SIGUSR1).
struct Period<'a> {
    number: u64,
    started: Instant,
    started_at: String,
    cpu_mark: f64,
    /// `-o` as opened before sampling (without --every): the first report's file.
    first: Option<(&'a std::path::Path, std::fs::File)>,
}

impl Period<'_> {
    /// Writes the report of this period (to `-o` with `{n}` and `{time}` expanded, or
    /// standard output) and starts the next with fresh figures.
    fn write(
        &mut self,
        family: &mut Family,
        options: &ReportOptions,
        mut slices: Option<&mut StackSlices>,
    ) -> Result<(), HptopError> {
        let cpu = own_cpu_s();
        let header = ReportHeader {
            started_at: self.started_at.clone(),
            rate_hz: options.sampling.rate_hz,
            hptop_cpu_s: cpu - self.cpu_mark,
            include_idle: options.sampling.include_idle,
            mode: options.sampling.mode,
            stacks: options.json_stacks,
        };
        let opened = match (self.first.take(), &options.output) {
            (Some((path, file)), _) => Some((path.to_path_buf(), file)),
            (None, Some(pattern)) => {
                let path = period_path(pattern, self.number);
                let existing = if options.force {
                    Existing::Replace
                } else {
                    Existing::Refuse
                };
                let file = open_output(&path, existing)?;
                eprintln!(
                    "hptop: report {} written to {}",
                    self.number,
                    path.display()
                );
                Some((path, file))
            }
            (None, None) => None,
        };
        let output = opened.as_ref().map(|(path, file)| (path.as_path(), file));
        let written = write_report(family, &header, options, output, slices.as_deref_mut());
        family.reset();
        if let Some(s) = slices {
            s.reset();
        }
        self.number += 1;
        self.started = Instant::now();
        self.started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.cpu_mark = cpu;
        written
    }
}

/// `-o`'s name for the `n`-th report: `{n}` and `{time}` (local, `YYYYmmddTHHMMSS`)
/// expanded; a name without them gets `.n` appended from the second report on.
pub fn period_path(pattern: &std::path::Path, n: u64) -> std::path::PathBuf {
    let text = pattern.to_string_lossy();
    if text.contains("{n}") || text.contains("{time}") {
        let time = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
        return text
            .replace("{n}", &n.to_string())
            .replace("{time}", &time)
            .into();
    }
    if n <= 1 {
        return pattern.to_path_buf();
    }
    format!("{text}.{n}").into()
}

/// Folds an event into the family, recording it first when asked.
fn take(recorder: &mut Option<RecordingWriter>, family: &mut Family, event: SamplerEvent) {
    if let Some(r) = recorder.as_mut() {
        r.push(&event);
    }
    family_event(family, event);
}

/// Renders the report of `family`'s window and writes it (to `-o` or standard output).
///
/// # Errors
/// Nothing was sampled, or the output cannot be written.
pub fn write_report(
    family: &mut Family,
    header: &ReportHeader,
    options: &ReportOptions,
    output: Option<(&std::path::Path, &std::fs::File)>,
    mut slices: Option<&mut StackSlices>,
) -> Result<(), HptopError> {
    let root = family.root();
    let query = stack_query(options);
    family.settle();
    let snapshot = family.snapshot(&query);
    // The last slice of the timeline: up to the end, settled figures included.
    if let Some(s) = slices.as_deref_mut() {
        s.take(None, &snapshot);
    }
    if family.dropped() > 0 {
        eprintln!(
            "hptop: {} exited processes beyond the newest {} are not in the report",
            family.dropped(),
            crate::model::family::MAX_EXITED
        );
    }
    if let Some(warning) = check_sampled(&snapshot, root)? {
        eprintln!("hptop: warning: {warning}");
    }
    let out = match (options.stacks, options.format) {
        (Some(stacks), _) => {
            let title = format!(
                "hptop: {} ({} s from {})",
                snapshot
                    .processes
                    .first()
                    .map_or_else(String::new, |p| p.cmdline.join(" ")),
                snapshot
                    .processes
                    .iter()
                    .map(|p| p.duration_s)
                    .fold(0.0, f64::max)
                    .round(),
                header.started_at
            );
            let window = crate::report::pprof::Window {
                start_unix_nanos: chrono::DateTime::parse_from_rfc3339(&header.started_at)
                    .ok()
                    .and_then(|t| t.timestamp_nanos_opt())
                    .unwrap_or(0),
                rate_hz: header.rate_hz,
            };
            crate::report::stacks::render(&snapshot, &stacks, &title, window, slices.as_deref())
                .map_err(HptopError::Usage)?
        }
        (None, Format::Text) => text::render(&snapshot, header).into_bytes(),
        (None, Format::Json) => {
            let mut json = Report::new(&snapshot, header)
                .to_json()
                .map_err(|e| HptopError::Usage(format!("cannot serialise the report: {e}")))?;
            json.push('\n');
            json.into_bytes()
        }
    };
    match output {
        Some((path, file)) => write_all(file, path, &out),
        None => write_output(&out),
    }
}

/// What a report's snapshots ask of the model (stacks only when an output needs them).
pub fn stack_query(options: &ReportOptions) -> SnapshotQuery {
    SnapshotQuery {
        include_idle: options.sampling.include_idle,
        mode: options.sampling.mode,
        stacks: options.stacks.is_some() || options.json_stacks,
        ..SnapshotQuery::default()
    }
}

/// Whether the output has a timeline (speedscope's time order), kept in slices.
pub fn wants_timeline(options: &ReportOptions) -> bool {
    options
        .stacks
        .is_some_and(|s| s.format == crate::report::StackFormat::Speedscope)
}

/// A binary format (pprof) is not written to a terminal, where it would garble the screen.
fn refuse_binary_to_terminal(options: &ReportOptions) -> Result<(), HptopError> {
    use std::io::IsTerminal;
    let binary = options.stacks.is_some_and(|s| s.format.is_binary());
    if binary && options.output.is_none() && std::io::stdout().is_terminal() {
        return Err(HptopError::Usage(
            "pprof output is binary (gzipped protobuf): give -o FILE.pb.gz, or redirect \
             standard output to a file"
                .into(),
        ));
    }
    Ok(())
}

/// The `-o` file, opened (see `session::output`).
///
/// # Errors
/// It cannot be created, exists (without `--force`), or is a link; a binary format would
/// go to a terminal.
pub fn open_report_output(
    options: &ReportOptions,
) -> Result<Option<(&std::path::Path, std::fs::File)>, HptopError> {
    refuse_binary_to_terminal(options)?;
    let existing = if options.force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    options
        .output
        .as_deref()
        .map(|path| open_output(path, existing).map(|file| (path, file)))
        .transpose()
}

/// Errors never hide: a window in which no stack was read is an error, and one in which more
/// than a tenth of the reads failed gets a warning; both name the first failure's cause.
fn check_sampled(snapshot: &Snapshot, root: u32) -> Result<Option<String>, HptopError> {
    let samples: u64 = snapshot.processes.iter().map(|p| p.samples).sum();
    let failed: u64 = snapshot.processes.iter().map(|p| p.sample_errors).sum();
    let cause = snapshot
        .processes
        .iter()
        .find_map(|p| p.first_sample_error.clone());
    if samples == 0 {
        return Err(HptopError::NothingSampled {
            pid: root,
            failed,
            cause: cause.unwrap_or_else(|| "the target exited before its first sample".into()),
        });
    }
    Ok(cause
        .filter(|_| failed * 10 > samples + failed)
        .map(|cause| {
            format!(
                "{failed} of {} reads failed; the first: {cause}\nhptop: {}",
                samples + failed,
                crate::error::sampling_fix(&cause)
            )
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tick::{ProcessTick, Tick};
    use crate::model::{Session, SessionMeta};

    fn snapshot_of(errors: &[Option<&str>]) -> Snapshot {
        let mut session = Session::new(SessionMeta {
            pid: 7,
            ..SessionMeta::default()
        });
        for (i, error) in (0u32..).zip(errors) {
            session.ingest(&Tick {
                at: Duration::from_millis(10) * i,
                interval: Duration::from_millis(10),
                skipped: 0,
                resumed: false,
                process: ProcessTick {
                    pid: 7,
                    stack_error: error.map(str::to_owned),
                    ..ProcessTick::default()
                },
            });
        }
        Snapshot {
            processes: vec![session.snapshot(&SnapshotQuery::default())],
        }
    }

    #[test]
    fn nothing_sampled_fails_with_the_first_cause_and_many_failures_warn() {
        let all_failed = snapshot_of(&[Some("Too many open files (os error 24)"), Some("later")]);
        match check_sampled(&all_failed, 7) {
            Err(e @ HptopError::NothingSampled { failed: 2, .. }) => {
                assert!(e.to_string().contains("Too many open files"), "{e}");
                assert!(e.fix().contains("ulimit -n"), "{}", e.fix());
                assert_eq!(e.exit_code(), 1);
            }
            other => panic!("expected NothingSampled, got {other:?}"),
        }
        let some_failed = snapshot_of(&[None, Some("torn read"), None, Some("x"), None]);
        let warning = check_sampled(&some_failed, 7).unwrap().unwrap();
        assert!(
            warning.starts_with("2 of 5 reads failed; the first: torn read"),
            "{warning}"
        );
        let few_failed = snapshot_of(&[&[None; 10][..], &[Some("torn read")]].concat());
        assert_eq!(check_sampled(&few_failed, 7).unwrap(), None);
    }
}
