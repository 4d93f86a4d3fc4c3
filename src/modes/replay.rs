//! Recordings read back: `report --input` (a report of any window) and `hptop replay` (the
//! live view over a recording). Both feed the recorded events to the same model as live.

use std::collections::HashSet;
use std::time::Duration;

use super::report::{open_report_output, stack_query, wants_timeline, write_report};
use super::{InputWindow, ReplayOptions, ReportOptions};
use crate::error::HptopError;
use crate::model::family::Family;
use crate::model::snapshot::SnapshotQuery;
use crate::record::codec::Recorded;
use crate::record::RecordingReader;
use crate::report::slices::StackSlices;
use crate::report::ReportHeader;
use crate::session::session_meta;

/// What was fed from a recording.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fed {
    /// Ticks fed.
    pub ticks: u64,
    /// `at` of the first and last tick fed.
    pub span: Option<(Duration, Duration)>,
}

/// Feeds the ticks with `from <= at <= to` (and the processes they belong to) to `family`.
pub fn feed(
    reader: &mut RecordingReader,
    family: &mut Family,
    from: Duration,
    to: Duration,
) -> Fed {
    feed_timeline(reader, family, from, to, None)
}

/// [`feed`], ending a slice of `timeline` (with a snapshot made by its query) whenever one is
/// due in recording time.
pub fn feed_timeline(
    reader: &mut RecordingReader,
    family: &mut Family,
    from: Duration,
    to: Duration,
    mut timeline: Option<(&mut StackSlices, &SnapshotQuery)>,
) -> Fed {
    let mut fed = Fed::default();
    let mut known = HashSet::new();
    while let Some(segment) = reader.next_segment() {
        if segment.last_at < from {
            continue;
        }
        if segment.first_at > to {
            break;
        }
        for event in reader.read(&segment) {
            match event {
                Recorded::Attached(info) => {
                    known.insert(info.pid);
                    family.attach(session_meta(&info));
                }
                Recorded::Known(info) => {
                    if known.insert(info.pid) {
                        family.attach(session_meta(&info));
                    }
                }
                Recorded::Tick(tick) if (from..=to).contains(&tick.at) => {
                    fed.ticks += 1;
                    fed.span = Some(fed.span.map_or((tick.at, tick.at), |(a, _)| (a, tick.at)));
                    family.ingest(&tick);
                    if let Some((slices, query)) = timeline.as_mut() {
                        if slices.due(tick.at) {
                            slices.take(Some(tick.at), &family.snapshot(query));
                        }
                    }
                }
                Recorded::Tick(_) | Recorded::Exited(_) | Recorded::Panicked(..) => {}
            }
        }
    }
    fed
}

/// `hptop report --input FILE [--from T] [--to T]`.
///
/// # Errors
/// Unreadable or foreign file, an empty window, or an unwritable output.
pub fn report(options: &ReportOptions, input: &InputWindow) -> Result<(), HptopError> {
    let output = open_report_output(options)?;
    let mut reader = RecordingReader::open(&input.path)?;
    let header = reader.header.clone();
    let from = input
        .from
        .as_ref()
        .map_or(Duration::ZERO, |t| t.resolve(&header));
    let to = input
        .to
        .as_ref()
        .map_or(Duration::MAX, |t| t.resolve(&header));
    if from > to {
        return Err(HptopError::Usage("--from is after --to".into()));
    }
    let mut family = Family::new(header.pid);
    let mut slices = wants_timeline(options).then(StackSlices::new);
    let query = stack_query(options);
    let timeline = slices.as_mut().map(|s| (s, &query));
    let fed = feed_timeline(&mut reader, &mut family, from, to, timeline);
    if let Some(damage) = &reader.damage {
        eprintln!(
            "hptop: warning: {} is damaged {damage}; the report covers what came before",
            input.path.display()
        );
    }
    let Some((first, last)) = fed.span else {
        return Err(HptopError::Usage(format!(
            "{} has no sample in that window{}: {}",
            input.path.display(),
            if reader.damage.is_some() {
                " (before its damage)"
            } else {
                ""
            },
            reader.holds()
        )));
    };
    let start = chrono::DateTime::from_timestamp_nanos(header.started_unix_ns as i64)
        + chrono::Duration::from_std(first).unwrap_or_default();
    eprintln!(
        "hptop: {} from {:.1} s to {:.1} s of the recording ({} ticks)",
        input.path.display(),
        first.as_secs_f64(),
        last.as_secs_f64(),
        fed.ticks
    );
    let report_header = ReportHeader {
        started_at: start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        rate_hz: header.rate_hz,
        hptop_cpu_s: 0.0,
        include_idle: options.sampling.include_idle,
        mode: options.sampling.mode,
        stacks: options.json_stacks,
    };
    let output = output.as_ref().map(|(path, file)| (*path, file));
    write_report(
        &mut family,
        &report_header,
        options,
        output,
        slices.as_mut(),
    )
}

/// `hptop replay FILE`.
///
/// # Errors
/// Unreadable or foreign file, or no terminal.
pub fn run(options: &ReplayOptions) -> Result<(), HptopError> {
    super::live::replay(options)
}
