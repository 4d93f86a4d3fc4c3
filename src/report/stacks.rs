//! Stack outputs: folded ("collapsed") stacks and SVG flame graphs, weighted by samples or by
//! any kernel counter credited to the stacks.

use std::collections::BTreeMap;

use super::{StackFormat, StackOutput, Weight};
use crate::model::functions::Counter;
use crate::model::snapshot::{ProcessSnapshot, Snapshot, StackRow};

impl Weight {
    /// A stack's width under this weight (credited counters are rounded to whole units).
    fn of(self, row: &StackRow) -> u64 {
        self.of_counts(row.samples, &row.credited)
    }

    /// The width of `samples` and `credited` counters under this weight.
    fn of_counts(self, samples: u64, c: &crate::model::functions::Credited) -> u64 {
        self.units(samples, c).round().max(0.0) as u64
    }

    /// [`Self::of_counts`] before rounding: stacks that one output merges (the lines of a
    /// function) are summed first, so the total does not depend on how finely they were kept.
    fn units(self, samples: u64, c: &crate::model::functions::Credited) -> f64 {
        match self {
            Weight::Samples => samples as f64,
            Weight::Counter(Counter::Cpu) => c.cpu_s * 1e6,
            Weight::Counter(counter) => counter.of(c),
        }
    }

    /// What one unit of width is, for a flame graph's legend.
    pub fn unit(self) -> &'static str {
        match self {
            Weight::Samples => "samples",
            Weight::Counter(Counter::Cpu) => "µs on CPU",
            Weight::Counter(Counter::MinorFaults) => "minor faults",
            Weight::Counter(Counter::MajorFaults) => "major faults",
            Weight::Counter(Counter::VoluntaryCtxsw) => "voluntary switches",
            Weight::Counter(Counter::InvoluntaryCtxsw) => "involuntary switches",
            Weight::Counter(Counter::Io) => "bytes read and written",
        }
    }
}

/// A frame as the folded format can carry it: no separator, no line break.
fn frame_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Every stack of every process with its weight, those of zero weight left out.
pub(crate) fn weighted(
    snapshot: &Snapshot,
    weight: Weight,
) -> impl Iterator<Item = (&ProcessSnapshot, &StackRow, u64)> {
    snapshot.processes.iter().flat_map(move |p| {
        p.stacks
            .iter()
            .map(move |row| (p, row, weight.of(row)))
            .filter(|&(_, _, w)| w > 0)
    })
}

/// The frames above a stack's functions: its process (when there are several) and thread,
/// as py-spy roots them; none when merged (`--no-threads`). A stack with no functions (a
/// thread's `(other stacks)`) gets that as its one frame.
pub fn root_frames(
    p: &ProcessSnapshot,
    row: &StackRow,
    by_thread: bool,
    several: bool,
) -> Vec<String> {
    let mut frames = Vec::with_capacity(row.frames.len() + 3);
    if several && by_thread {
        let command = p.cmdline.join(" ");
        frames.push(frame_text(&format!("process {} {command}", p.pid)));
    }
    if by_thread {
        let name = row.thread.as_deref().unwrap_or("thread");
        frames.push(frame_text(&format!("{name} ({})", row.tid)));
    }
    if row.frames.is_empty() {
        frames.push("(other stacks)".into());
    }
    frames
}

/// Folded stacks, one `root;...;innermost COUNT` line per distinct stack, sorted; stacks
/// of zero weight are left out.
pub fn collapsed(snapshot: &Snapshot, output: &StackOutput) -> String {
    let mut folded: BTreeMap<String, f64> = BTreeMap::new();
    let several = snapshot.processes.len() > 1;
    for p in &snapshot.processes {
        for row in &p.stacks {
            let mut frames = root_frames(p, row, output.by_thread, several);
            frames.extend(
                row.frames
                    .iter()
                    .map(|f| frame_text(&f.label(output.lines))),
            );
            *folded.entry(frames.join(";")).or_default() +=
                output.weight.units(row.samples, &row.credited);
        }
    }
    let mut out = String::new();
    for (stack, weight) in folded {
        let weight = weight.round().max(0.0) as u64;
        if weight == 0 {
            continue;
        }
        out.push_str(&stack);
        out.push(' ');
        out.push_str(&weight.to_string());
        out.push('\n');
    }
    out
}

/// An interactive SVG flame graph (inferno) of the folded stacks.
///
/// # Errors
/// When there is nothing to draw (inferno refuses an empty profile) or it fails.
pub fn flamegraph(
    snapshot: &Snapshot,
    output: &StackOutput,
    title: &str,
) -> Result<String, String> {
    let folded = collapsed(snapshot, output);
    if folded.is_empty() {
        return Err(format!(
            "no stack has any {} in the window: nothing to draw",
            output.weight.unit()
        ));
    }
    let mut options = inferno::flamegraph::Options::default();
    title.clone_into(&mut options.title);
    output.weight.unit().clone_into(&mut options.count_name);
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)
        .map_err(|e| e.to_string())?;
    String::from_utf8(svg).map_err(|e| e.to_string())
}

/// speedscope's file format (`https://www.speedscope.app/file-format-schema.json`): the
/// functions as shared frames, one sampled profile per thread (one in all with
/// `--no-threads`), stacks root first, weighted as asked. With `slices` (a timeline of the
/// window) the samples are in time order, slice by slice, so speedscope's "Time Order" view
/// is the job's timeline at the slices' resolution; without, each distinct stack is one
/// sample.
pub fn speedscope(
    snapshot: &Snapshot,
    output: &StackOutput,
    title: &str,
    slices: Option<&super::slices::StackSlices>,
) -> String {
    let several = snapshot.processes.len() > 1;
    let mut profile = SpeedscopeBuilder::default();
    // A thread is named by its latest name, as the JSON report and collapsed stacks name it
    // (a slice taken before the thread was named holds no name).
    for p in &snapshot.processes {
        let named = p
            .stacks
            .iter()
            .filter_map(|r| Some((r.tid, r.thread.as_ref()?)));
        let threads = p
            .threads
            .iter()
            .filter_map(|t| Some((t.tid, t.name.as_ref()?)));
        for (tid, name) in named.chain(threads) {
            profile.names.insert((p.pid, tid), name.clone());
        }
    }
    match slices {
        Some(slices) => {
            let stacks = slices.stacks();
            for entry in slices.slices().iter().flatten() {
                let weight = output.weight.of_counts(entry.samples, &entry.credited);
                if let Some((pid, row)) = stacks.get(entry.stack).filter(|_| weight > 0) {
                    profile.add(*pid, row, weight, *output, several);
                }
            }
        }
        None => {
            for (p, row, weight) in weighted(snapshot, output.weight) {
                profile.add(p.pid, row, weight, *output, several);
            }
        }
    }
    let unit = match output.weight {
        Weight::Counter(Counter::Cpu) => "microseconds",
        Weight::Counter(Counter::Io) => "bytes",
        _ => "none",
    };
    let profiles: Vec<serde_json::Value> = profile
        .profiles
        .into_iter()
        .map(|(name, samples, weights)| {
            let end: u64 = weights.iter().sum();
            serde_json::json!({
                "type": "sampled",
                "name": name,
                "unit": unit,
                "startValue": 0,
                "endValue": end,
                "samples": samples,
                "weights": weights,
            })
        })
        .collect();
    let file = serde_json::json!({
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": { "frames": profile.frames },
        "profiles": profiles,
        "name": format!("{title} · {}", output.weight.unit()),
        "activeProfileIndex": 0,
        "exporter": format!("hptop {}", env!("CARGO_PKG_VERSION")),
    });
    let mut out = file.to_string();
    out.push('\n');
    out
}

/// A speedscope file under construction: shared frames, profiles in first-seen order.
#[derive(Default)]
struct SpeedscopeBuilder {
    frames: Vec<serde_json::Value>,
    frame_ids: std::collections::HashMap<(String, String, u32), usize>,
    /// (name, stacks, weights).
    profiles: Vec<(String, Vec<Vec<usize>>, Vec<u64>)>,
    /// Each thread's profile by (pid, tid) (`None`: the merged one): a thread whose name is
    /// learned late keeps one timeline, named with its latest name.
    profile_ids: std::collections::HashMap<Option<(u32, u32)>, usize>,
    /// Each thread's latest name, by (pid, tid).
    names: std::collections::HashMap<(u32, u32), String>,
}

impl SpeedscopeBuilder {
    /// Appends one weighted stack to its thread's (or the merged) profile.
    fn add(&mut self, pid: u32, row: &StackRow, weight: u64, output: StackOutput, several: bool) {
        let by_thread = output.by_thread;
        let thread = self
            .names
            .get(&(pid, row.tid))
            .map(String::as_str)
            .or(row.thread.as_deref())
            .unwrap_or("thread");
        let name = match (by_thread, several) {
            (false, _) => "all threads".to_owned(),
            (true, false) => format!("{thread} ({})", row.tid),
            (true, true) => format!("PID {pid} · {thread} ({})", row.tid),
        };
        let key = by_thread.then_some((pid, row.tid));
        let index = if let Some(&i) = self.profile_ids.get(&key) {
            // Stacks come in time order: a name seen now is the thread's latest (unless the
            // snapshot's latest names were given).
            if row.thread.is_some() && !self.names.contains_key(&(pid, row.tid)) {
                self.profiles[i].0 = name;
            }
            i
        } else {
            self.profiles.push((name, Vec::new(), Vec::new()));
            self.profile_ids.insert(key, self.profiles.len() - 1);
            self.profiles.len() - 1
        };
        let stack: Vec<usize> = if row.frames.is_empty() {
            vec![self.frame("(other stacks)", "", 0)]
        } else if output.lines {
            // One frame per line executed, named as the folded stacks name it.
            row.frames
                .iter()
                .map(|f| self.frame(&f.label(true), &f.file, f.sampled_line))
                .collect()
        } else {
            row.frames
                .iter()
                .map(|f| self.frame(&f.name, &f.file, f.line))
                .collect()
        };
        self.profiles[index].1.push(stack);
        self.profiles[index].2.push(weight);
    }

    /// The index of the frame (name, file, line), added on first sight.
    fn frame(&mut self, name: &str, file: &str, line: u32) -> usize {
        let key = (name.to_owned(), file.to_owned(), line);
        if let Some(&i) = self.frame_ids.get(&key) {
            return i;
        }
        let mut frame = serde_json::json!({ "name": name });
        if !file.is_empty() {
            frame["file"] = file.into();
        }
        if line > 0 {
            frame["line"] = line.into();
        }
        self.frames.push(frame);
        self.frame_ids.insert(key, self.frames.len() - 1);
        self.frames.len() - 1
    }
}

/// The output asked for, as the bytes of its file.
///
/// # Errors
/// See [`flamegraph`]; pprof's compression failed.
pub fn render(
    snapshot: &Snapshot,
    output: &StackOutput,
    title: &str,
    window: super::pprof::Window,
    slices: Option<&super::slices::StackSlices>,
) -> Result<Vec<u8>, String> {
    match output.format {
        StackFormat::Collapsed => Ok(collapsed(snapshot, output).into_bytes()),
        StackFormat::Flamegraph => flamegraph(snapshot, output, title).map(String::into_bytes),
        StackFormat::Speedscope => Ok(speedscope(snapshot, output, title, slices).into_bytes()),
        StackFormat::Pprof => {
            super::pprof::encode(&super::pprof::profile(snapshot, output, window, title))
                .map_err(|e| format!("cannot compress the pprof profile: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SpeedscopeBuilder;
    use crate::model::snapshot::{StackFrame, StackRow};

    fn row(tid: u32, thread: Option<&str>, function: &str) -> StackRow {
        StackRow {
            tid,
            thread: thread.map(str::to_owned),
            frames: vec![StackFrame {
                name: function.into(),
                file: "job.py".into(),
                line: 1,
                sampled_line: 2,
            }],
            samples: 1,
            credited: crate::model::functions::Credited::default(),
        }
    }

    #[test]
    fn a_thread_named_late_keeps_one_timeline_under_its_latest_name() {
        let mut builder = SpeedscopeBuilder::default();
        let output = crate::report::StackOutput {
            format: crate::report::StackFormat::Speedscope,
            weight: crate::report::Weight::Samples,
            by_thread: true,
            lines: false,
        };
        builder.add(1, &row(7, None, "early"), 3, output, false);
        builder.add(1, &row(7, Some("worker"), "late"), 2, output, false);
        builder.add(1, &row(8, Some("other"), "early"), 1, output, false);
        let names: Vec<&str> = builder.profiles.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["worker (7)", "other (8)"]);
        assert_eq!(builder.profiles[0].2, [3, 2]);
    }
}
