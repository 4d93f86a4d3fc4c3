//! `hptop dump` output: every thread's stack and counters, once.

use std::fmt::Write as _;

use serde::Serialize;

use crate::collect::tick::GilState;
use crate::fmt;
use crate::model::dump::{DumpSnapshot, DumpThread};

/// Schema identifier of the dump JSON.
pub const SCHEMA: &str = "hptop.dump/1";

/// Text form.
pub fn text(d: &DumpSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "PID {}  {}", d.meta.pid, d.meta.cmdline.join(" "));
    let _ = writeln!(
        out,
        "Python {} · {} threads · RSS {} · CPU {} since start · faults {} minor, {} major",
        d.meta.python_version,
        d.threads.len(),
        fmt::bytes(d.rss_bytes),
        fmt::seconds(d.cpu_s),
        fmt::count(d.minor_faults),
        fmt::count(d.major_faults)
    );
    if let Some(e) = &d.stack_error {
        let _ = writeln!(out, "Python stacks could not be read: {e}");
    }
    for t in &d.threads {
        out.push('\n');
        thread_text(&mut out, t);
    }
    out
}

fn thread_text(out: &mut String, t: &DumpThread) {
    let kind = if t.is_python { "" } else { ", native" };
    let gil = if t.gil == GilState::Held {
        ", holds the GIL"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "Thread {} \"{}\" ({}{kind}{gil})",
        t.tid,
        t.name.as_deref().unwrap_or("-"),
        state_word(t.state.letter()),
    );
    let _ = writeln!(
        out,
        "    cpu {} · faults {} minor, {} major · ctxsw {} voluntary, {} involuntary · I/O {} read, {} written",
        fmt::seconds(t.cpu_s),
        fmt::count(t.minor_faults),
        fmt::count(t.major_faults),
        fmt::count(t.voluntary_ctxsw),
        fmt::count(t.involuntary_ctxsw),
        fmt::bytes(t.read_bytes),
        fmt::bytes(t.write_bytes)
    );
    for f in &t.stack {
        let _ = writeln!(
            out,
            "    {} ({}:{})",
            f.name,
            f.short_filename.as_deref().unwrap_or(&f.filename),
            f.line
        );
    }
}

fn state_word(letter: char) -> &'static str {
    match letter {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk wait",
        'T' => "stopped",
        'Z' => "exiting",
        _ => "unknown",
    }
}

#[derive(Serialize)]
struct DumpJson<'a> {
    schema: &'static str,
    pid: u32,
    cmdline: &'a [String],
    python_version: &'a str,
    rss_bytes: u64,
    cpu_s: f64,
    minor_faults: u64,
    major_faults: u64,
    stack_error: Option<&'a str>,
    threads: Vec<ThreadJson<'a>>,
}

#[derive(Serialize)]
struct ThreadJson<'a> {
    tid: u32,
    name: Option<&'a str>,
    python: bool,
    state: String,
    holds_gil: bool,
    cpu_s: f64,
    minor_faults: u64,
    major_faults: u64,
    voluntary_ctxsw: u64,
    involuntary_ctxsw: u64,
    read_bytes: u64,
    write_bytes: u64,
    frames: Vec<FrameJson<'a>>,
}

#[derive(Serialize)]
struct FrameJson<'a> {
    name: &'a str,
    filename: &'a str,
    line: u32,
}

/// JSON form (`hptop.dump/1`).
///
/// # Errors
/// Never in practice: every field serialises.
pub fn json(d: &DumpSnapshot) -> serde_json::Result<String> {
    let doc = DumpJson {
        schema: SCHEMA,
        pid: d.meta.pid,
        cmdline: &d.meta.cmdline,
        python_version: &d.meta.python_version,
        rss_bytes: d.rss_bytes,
        cpu_s: d.cpu_s,
        minor_faults: d.minor_faults,
        major_faults: d.major_faults,
        stack_error: d.stack_error.as_deref(),
        threads: d
            .threads
            .iter()
            .map(|t| ThreadJson {
                tid: t.tid,
                name: t.name.as_deref(),
                python: t.is_python,
                state: t.state.letter().to_string(),
                holds_gil: t.gil == GilState::Held,
                cpu_s: t.cpu_s,
                minor_faults: t.minor_faults,
                major_faults: t.major_faults,
                voluntary_ctxsw: t.voluntary_ctxsw,
                involuntary_ctxsw: t.involuntary_ctxsw,
                read_bytes: t.read_bytes,
                write_bytes: t.write_bytes,
                frames: t
                    .stack
                    .iter()
                    .map(|f| FrameJson {
                        name: &f.name,
                        filename: &f.filename,
                        line: f.line,
                    })
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc)
}
