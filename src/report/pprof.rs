//! pprof's `profile.proto` (gzipped), as `go tool pprof`, Grafana Pyroscope and Parca read it:
//! every stack once, with all of hptop's figures as sample types side by side.
//!
//! The messages below are those of `perftools.profiles` (github.com/google/pprof,
//! `proto/profile.proto`), the fields hptop writes, with the proto's own tags: prost encodes
//! them as the generated code would, without a protoc at build time.

use std::collections::HashMap;
use std::io::Write;

use super::stacks::root_frames;
use super::{StackOutput, Weight};
use crate::model::functions::Counter;
use crate::model::snapshot::Snapshot;

/// `perftools.profiles.Profile`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    /// What each of a sample's values is.
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    /// The stacks with their values.
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    /// Frames (one line each here).
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    /// Functions the locations name.
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// Every string, referenced by index; index 0 is "".
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    /// Start, nanoseconds since the Unix epoch.
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    /// Window length in nanoseconds.
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    /// What `period` counts.
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    /// Time between samples.
    #[prost(int64, tag = "12")]
    pub period: i64,
    /// Free text (string indexes).
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    /// The sample type shown by default (string index of its type).
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

/// `perftools.profiles.ValueType`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ValueType {
    /// String index of the type, e.g. "cpu".
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    /// String index of the unit, e.g. "nanoseconds".
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// `perftools.profiles.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Location ids, innermost first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    /// One value per sample type.
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    /// Process and thread.
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// `perftools.profiles.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// String index of the key.
    #[prost(int64, tag = "1")]
    pub key: i64,
    /// String index of a text value.
    #[prost(int64, tag = "2")]
    pub str: i64,
    /// A numeric value.
    #[prost(int64, tag = "3")]
    pub num: i64,
}

/// `perftools.profiles.Location`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    /// Nonzero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The function (one line: Python frames are not inlined).
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

/// `perftools.profiles.Line`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Line {
    /// The function's id.
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    /// Line number (0: not known).
    #[prost(int64, tag = "2")]
    pub line: i64,
}

/// `perftools.profiles.Function`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    /// Nonzero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// String index of the name.
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// String index of the name as the system knows it (the same here).
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// String index of the source file.
    #[prost(int64, tag = "4")]
    pub filename: i64,
    /// The function's first line (0: not known).
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

/// The sample types, in value order: (type, unit, the weight that selects it as default).
pub const SAMPLE_TYPES: [(&str, &str, Weight); 7] = [
    ("samples", "count", Weight::Samples),
    ("cpu", "nanoseconds", Weight::Counter(Counter::Cpu)),
    (
        "minor_faults",
        "count",
        Weight::Counter(Counter::MinorFaults),
    ),
    (
        "major_faults",
        "count",
        Weight::Counter(Counter::MajorFaults),
    ),
    (
        "voluntary_switches",
        "count",
        Weight::Counter(Counter::VoluntaryCtxsw),
    ),
    (
        "involuntary_switches",
        "count",
        Weight::Counter(Counter::InvoluntaryCtxsw),
    ),
    ("io", "bytes", Weight::Counter(Counter::Io)),
];

/// The string table under construction.
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Strings::default();
        s.id("");
        s
    }

    fn id(&mut self, text: &str) -> i64 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(text.to_owned());
        self.index.insert(text.to_owned(), i);
        i
    }
}

/// One function per (name, file), its `start_line` the `def`; one location per (function,
/// line being executed), so `pprof -lines` and `-list` show where the time went (Python
/// frames have no addresses).
#[derive(Default)]
struct Locations {
    functions: HashMap<(String, String), u64>,
    ids: HashMap<(u64, u32), u64>,
}

impl Locations {
    /// The location of (name, file) at `line`, added to the profile (with its function) on
    /// first sight.
    fn id(
        &mut self,
        profile: &mut Profile,
        strings: &mut Strings,
        name: &str,
        file: &str,
        (first_line, line): (u32, u32),
    ) -> u64 {
        let next_function = self.functions.len() as u64 + 1;
        let function = *self
            .functions
            .entry((name.to_owned(), file.to_owned()))
            .or_insert_with(|| {
                let name = strings.id(name);
                profile.function.push(Function {
                    id: next_function,
                    name,
                    system_name: name,
                    filename: strings.id(file),
                    start_line: i64::from(first_line),
                });
                next_function
            });
        let next = self.ids.len() as u64 + 1;
        *self.ids.entry((function, line)).or_insert_with(|| {
            profile.location.push(Location {
                id: next,
                line: vec![Line {
                    function_id: function,
                    line: i64::from(line),
                }],
            });
            next
        })
    }
}

/// What a profile covers besides its stacks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nanos: i64,
    /// Sampling rate in Hz (the period is its inverse).
    pub rate_hz: f64,
}

/// The profile of the snapshot's stacks (each stack once, all sample types); `weight` picks
/// the default sample type. Stacks with nothing to show in any type are left out.
pub fn profile(snapshot: &Snapshot, output: &StackOutput, window: Window, title: &str) -> Profile {
    let mut strings = Strings::new();
    let mut profile = Profile {
        sample_type: SAMPLE_TYPES
            .iter()
            .map(|(kind, unit, _)| ValueType {
                r#type: strings.id(kind),
                unit: strings.id(unit),
            })
            .collect(),
        ..Profile::default()
    };
    let (default_type, _, _) = SAMPLE_TYPES
        .iter()
        .find(|(_, _, w)| *w == output.weight)
        .unwrap_or(&SAMPLE_TYPES[0]);
    profile.default_sample_type = strings.id(default_type);
    profile.period_type = Some(ValueType {
        r#type: strings.id("cpu"),
        unit: strings.id("nanoseconds"),
    });
    if window.rate_hz > 0.0 {
        profile.period = (1e9 / window.rate_hz).round() as i64;
    }
    profile.time_nanos = window.start_unix_nanos;
    let duration_s = snapshot
        .processes
        .iter()
        .map(|p| p.duration_s)
        .fold(0.0, f64::max);
    profile.duration_nanos = (duration_s * 1e9).round() as i64;
    profile.comment = vec![strings.id(title)];

    let mut locations = Locations::default();
    let several = snapshot.processes.len() > 1;
    let (pid_key, tid_key, thread_key) =
        (strings.id("pid"), strings.id("tid"), strings.id("thread"));
    let rows = snapshot
        .processes
        .iter()
        .flat_map(|p| p.stacks.iter().map(move |row| (p, row)));
    // Every stack once: the sample types are side by side, so no weight leaves one out.
    for (p, row) in rows {
        // One value per sample type, in the table's order (CPU in ns, the rest in units).
        let value: Vec<i64> = SAMPLE_TYPES
            .iter()
            .map(|(_, _, weight)| match weight {
                Weight::Samples => row.samples as i64,
                Weight::Counter(Counter::Cpu) => (row.credited.cpu_s * 1e9).round() as i64,
                Weight::Counter(counter) => counter.of(&row.credited).round() as i64,
            })
            .collect();
        if value.iter().all(|&v| v <= 0) {
            continue;
        }
        let roots = root_frames(p, row, output.by_thread, several);
        let frames = roots.iter().map(|r| (r.as_str(), "", (0, 0))).chain(
            row.frames
                .iter()
                .map(|f| (f.name.as_str(), f.file.as_str(), (f.line, f.sampled_line))),
        );
        let mut location_id = Vec::with_capacity(roots.len() + row.frames.len());
        for (name, file, line) in frames {
            location_id.push(locations.id(&mut profile, &mut strings, name, file, line));
        }
        // pprof lists a stack innermost first.
        location_id.reverse();
        let thread = strings.id(row.thread.as_deref().unwrap_or(""));
        let number = |key, num| Label {
            key,
            num,
            ..Label::default()
        };
        profile.sample.push(Sample {
            location_id,
            value,
            label: vec![
                number(pid_key, i64::from(p.pid)),
                number(tid_key, i64::from(row.tid)),
                Label {
                    key: thread_key,
                    str: thread,
                    ..Label::default()
                },
            ],
        });
    }
    profile.string_table = strings.table;
    profile
}

/// The profile, encoded and gzipped as pprof files are.
///
/// # Errors
/// Compression failed (in memory: not expected).
pub fn encode(profile: &Profile) -> std::io::Result<Vec<u8>> {
    use prost::Message;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&profile.encode_to_vec())?;
    gz.finish()
}

/// A gzipped profile, decoded (tests and `hptop diff`).
///
/// # Errors
/// Not gzip, or not a profile.
pub fn decode(bytes: &[u8]) -> Result<Profile, String> {
    use prost::Message;
    use std::io::Read;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(1 << 30)
        .read_to_end(&mut raw)
        .map_err(|e| format!("not a gzipped pprof file: {e}"))?;
    Profile::decode(raw.as_slice()).map_err(|e| format!("not a pprof profile: {e}"))
}
