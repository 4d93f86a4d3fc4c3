//! `hptop diff BASE NEW`: what changed between two windows. Each side is a recording, a
//! window of one (`FILE@FROM..TO`), or a JSON report (with `--stacks` for flame graphs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::replay::feed;
use crate::error::HptopError;
use crate::model::family::Family;
use crate::model::snapshot::{Mode, Snapshot, SnapshotQuery};
use crate::record::window::TimeSpec;
use crate::record::{RecordingReader, MAGIC};
use crate::report::{StackFormat, StackOutput, Weight};
use crate::session::output;
use crate::session::write_output;

/// What `hptop diff` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffFormat {
    /// Functions whose share changed most, up and down.
    Text,
    /// The same, as JSON.
    Json,
    /// inferno's differential flame graph (the new side's shape, colored by change).
    Flamegraph,
}

/// Options of `hptop diff`.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// The base side, as written (`FILE`, `FILE@FROM..TO`).
    pub base: String,
    /// The new side.
    pub new: String,
    /// Output.
    pub format: DiffFormat,
    /// What function shares count.
    pub mode: Mode,
    /// What a stack's width counts (flame graph).
    pub weight: Weight,
    /// Output file (standard output when `None`).
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    pub force: bool,
}

/// One side: each function's own share (percent) and the folded stacks.
struct Side {
    label: String,
    shares: BTreeMap<(String, String), f64>,
    folded: String,
}

/// Runs `hptop diff`.
///
/// # Errors
/// An unreadable side, or an unwritable output.
pub fn run(options: &DiffOptions) -> Result<(), HptopError> {
    let output = options
        .output
        .as_deref()
        .map(|path| {
            let existing = if options.force {
                output::Existing::Replace
            } else {
                output::Existing::Refuse
            };
            output::open_output(path, existing).map(|f| (path, f))
        })
        .transpose()?;
    let base = side(&options.base, options)?;
    let new = side(&options.new, options)?;
    let out = match options.format {
        DiffFormat::Text => text(&base, &new, options.mode),
        DiffFormat::Json => {
            let mut json = serde_json::to_string_pretty(&json(&base, &new))
                .map_err(|e| HptopError::Usage(format!("cannot serialise the diff: {e}")))?;
            json.push('\n');
            json
        }
        DiffFormat::Flamegraph => flamegraph(&base, &new, options.weight)?,
    };
    match &output {
        Some((path, file)) => output::write_all(file, path, out.as_bytes()),
        None => write_output(out.as_bytes()),
    }
}

/// Reads one side: a recording (or a window of it), or a JSON report.
fn side(spec: &str, options: &DiffOptions) -> Result<Side, HptopError> {
    let (path, window) = match spec.rsplit_once('@') {
        Some((path, window)) if window.contains("..") => (path, Some(window)),
        _ => (spec, None),
    };
    let bad = |why: String| HptopError::Usage(format!("diff side \"{spec}\": {why}"));
    if std::path::Path::new(path).is_dir() {
        return Err(bad(
            "it is a directory; give a recording or a JSON report".into()
        ));
    }
    let head = match std::fs::read(path) {
        Ok(bytes) => bytes.get(..8).map(<[u8]>::to_vec).unwrap_or_default(),
        // `job.hptop@5s`: a window needs both ends' separator.
        Err(_)
            if window.is_none()
                && spec
                    .rsplit_once('@')
                    .is_some_and(|(p, _)| std::path::Path::new(p).exists()) =>
        {
            return Err(bad(
                "a window of a recording is FILE@FROM..TO, e.g. job.hptop@5s..1m, job.hptop@5s.. (to the end) or job.hptop@..1m".into(),
            ));
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    if head == MAGIC {
        return recording_side(spec, path, window, options);
    }
    if window.is_some() {
        return Err(bad("a window (@FROM..TO) needs a recording".into()));
    }
    let neither = || {
        bad("neither an hptop recording (`hptop record -o FILE`) nor a JSON report (`hptop report --format json --stacks`)".into())
    };
    let text = std::fs::read_to_string(path).map_err(|_| neither())?;
    let report: Value = serde_json::from_str(&text).map_err(|_| neither())?;
    json_side(spec, &report).ok_or_else(|| bad("a JSON report without processes".into()))
}

fn recording_side(
    spec: &str,
    path: &str,
    window: Option<&str>,
    options: &DiffOptions,
) -> Result<Side, HptopError> {
    let mut reader = RecordingReader::open(path.as_ref())?;
    let header = reader.header.clone();
    let (from, to) = match window.and_then(|w| w.split_once("..")) {
        Some((a, b)) => (
            if a.is_empty() {
                Duration::ZERO
            } else {
                TimeSpec::parse(a)?.resolve(&header)
            },
            if b.is_empty() {
                Duration::MAX
            } else {
                TimeSpec::parse(b)?.resolve(&header)
            },
        ),
        None => (Duration::ZERO, Duration::MAX),
    };
    let mut family = Family::new(header.pid);
    if feed(&mut reader, &mut family, from, to).ticks == 0 {
        return Err(HptopError::Usage(format!(
            "diff side \"{spec}\": no sample in that window: {}",
            reader.holds()
        )));
    }
    family.settle();
    let snapshot = family.snapshot(&SnapshotQuery {
        mode: options.mode,
        include_idle: options.mode == Mode::Wall,
        stacks: true,
        ..SnapshotQuery::default()
    });
    Ok(Side {
        label: spec.to_owned(),
        shares: shares_of(&snapshot),
        folded: crate::report::stacks::collapsed(
            &snapshot,
            &StackOutput {
                format: StackFormat::Collapsed,
                weight: options.weight,
                by_thread: false,
                lines: false,
            },
        ),
    })
}

fn shares_of(snapshot: &Snapshot) -> BTreeMap<(String, String), f64> {
    let mut shares = BTreeMap::new();
    let n = snapshot.processes.len().max(1) as f64;
    for p in &snapshot.processes {
        for f in &p.functions {
            *shares
                .entry((f.name.clone(), f.filename.clone()))
                .or_default() += f.own_percent / n;
        }
    }
    shares
}

/// A side from a JSON report: the functions' own percent and (with `--stacks`) the stacks.
fn json_side(spec: &str, report: &Value) -> Option<Side> {
    let processes = report.get("processes")?.as_array()?;
    let n = processes.len().max(1) as f64;
    let mut shares = BTreeMap::new();
    let mut folded: BTreeMap<String, u64> = BTreeMap::new();
    for p in processes {
        for f in p.get("functions")?.as_array()? {
            let key = (
                f["name"].as_str()?.to_owned(),
                f["filename"].as_str()?.to_owned(),
            );
            *shares.entry(key).or_default() += f["own_percent"].as_f64()? / n;
        }
        for s in p
            .get("stacks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let frames: Vec<String> = s["frames"]
                .as_array()?
                .iter()
                .map(|f| {
                    format!(
                        "{} ({})",
                        f["name"].as_str().unwrap_or("?"),
                        f["file"].as_str().unwrap_or("")
                    )
                })
                .collect();
            *folded.entry(frames.join(";")).or_default() += s["samples"].as_u64()?;
        }
    }
    let folded =
        folded
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .fold(String::new(), |mut out, (stack, n)| {
                let _ = writeln!(out, "{stack} {n}");
                out
            });
    Some(Side {
        label: spec.to_owned(),
        shares,
        folded,
    })
}

/// (function, file, base %, new %) for every function, biggest change first.
fn changes(base: &Side, new: &Side) -> Vec<(String, String, f64, f64)> {
    let mut keys: Vec<&(String, String)> = base.shares.keys().chain(new.shares.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut rows: Vec<(String, String, f64, f64)> = keys
        .into_iter()
        .map(|k| {
            let a = base.shares.get(k).copied().unwrap_or(0.0);
            let b = new.shares.get(k).copied().unwrap_or(0.0);
            (k.0.clone(), k.1.clone(), a, b)
        })
        .collect();
    rows.sort_by(|x, y| (y.3 - y.2).abs().total_cmp(&(x.3 - x.2).abs()));
    rows
}

fn text(base: &Side, new: &Side, mode: Mode) -> String {
    let rows = changes(base, new);
    let mut out = format!(
        "What changed from {} to {} (own share of each function, mode {}):\n",
        base.label,
        new.label,
        mode.name()
    );
    for (title, up) in [("Up", true), ("Down", false)] {
        let _ = writeln!(out, "\n{title}:");
        let picked: Vec<_> = rows
            .iter()
            .filter(|r| if up { r.3 > r.2 } else { r.3 < r.2 })
            .filter(|r| (r.3 - r.2).abs() >= 0.05)
            .take(10)
            .collect();
        if picked.is_empty() {
            out.push_str("  (none)\n");
        }
        for (name, file, a, b) in picked {
            let _ = writeln!(
                out,
                "  {:+7.1}  {a:5.1}% -> {b:5.1}%  {name} ({file})",
                b - a
            );
        }
    }
    out
}

fn json(base: &Side, new: &Side) -> Value {
    serde_json::json!({
        "base": base.label,
        "new": new.label,
        "functions": changes(base, new)
            .into_iter()
            .map(|(name, file, a, b)| serde_json::json!({
                "name": name, "filename": file,
                "base_own_percent": a, "new_own_percent": b, "delta": b - a,
            }))
            .collect::<Vec<_>>(),
    })
}

/// inferno's differential flame graph: the new side's stacks, red where they grew.
fn flamegraph(base: &Side, new: &Side, weight: Weight) -> Result<String, HptopError> {
    if base.folded.is_empty() || new.folded.is_empty() {
        return Err(HptopError::Usage(
            "a flame graph diff needs stacks on both sides (a recording, or a JSON report made with --stacks)".into(),
        ));
    }
    let mut merged = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options::default(),
        base.folded.as_bytes(),
        new.folded.as_bytes(),
        &mut merged,
    )
    .map_err(|e| HptopError::Usage(format!("cannot diff the stacks: {e}")))?;
    let merged = String::from_utf8_lossy(&merged).into_owned();
    let mut options = inferno::flamegraph::Options::default();
    format!("hptop diff: {} -> {}", base.label, new.label).clone_into(&mut options.title);
    weight.unit().clone_into(&mut options.count_name);
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, merged.lines(), &mut svg)
        .map_err(|e| HptopError::Usage(format!("cannot draw the diff: {e}")))?;
    String::from_utf8(svg).map_err(|e| HptopError::Usage(e.to_string()))
}
