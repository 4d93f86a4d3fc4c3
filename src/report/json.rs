//! The `hptop.report/1` JSON contract: serde types converted from the Snapshot, so the
//! contract survives refactors of the view rows. Field names are stable; fields may be added.

use serde::Serialize;

use super::ReportHeader;
use crate::model::snapshot::{FunctionRow, ProcessSnapshot, Snapshot, ThreadRow};

/// Schema identifier.
pub const SCHEMA: &str = "hptop.report/1";

/// A whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// hptop's version.
    pub hptop_version: &'static str,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// Window length in seconds (longest process window).
    pub duration_s: f64,
    /// Requested sampling rate.
    pub rate_hz: f64,
    /// Ticks per second achieved (added to the contract: `rate_hz` is the request).
    pub achieved_rate_hz: f64,
    /// Ticks whose stacks were read, over all processes.
    pub samples: u64,
    /// Ticks whose stack read failed.
    pub sample_errors: u64,
    /// hptop's own CPU seconds during the report (added to the contract).
    pub hptop_cpu_s: f64,
    /// One entry per process.
    pub processes: Vec<Process>,
}

/// GIL figures of a process.
#[derive(Debug, Serialize)]
pub struct Gil {
    /// Share of samples in which some thread held the GIL.
    pub held_percent: f64,
    /// GIL hand-offs per second; `null` where the GIL state could not be located.
    pub handoffs_per_s: Option<f64>,
    /// Share of samples in which some thread waited for the GIL.
    pub wanted_percent: f64,
    /// The GIL state was located: waits and hand-offs are measured (false: not measured).
    pub located: bool,
    /// Mean time the GIL is held per hold, ms; `null` without hand-offs.
    pub mean_hold_ms: Option<f64>,
    /// A plain-words reading, when clear.
    pub verdict: Option<String>,
}

/// One process.
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub cmdline: Vec<String>,
    pub python_version: String,
    pub exited: bool,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub rss_peak_bytes: u64,
    pub swap_bytes: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub voluntary_ctxsw: u64,
    pub involuntary_ctxsw: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub gil: Gil,
    pub threads: Vec<Thread>,
    pub functions: Vec<Function>,
}

/// One thread.
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct Thread {
    pub tid: u32,
    pub name: Option<String>,
    pub samples: u64,
    pub cpu_percent: f64,
    pub gil_held_percent: f64,
    pub gil_wait_percent: f64,
    pub idle_percent: f64,
    pub native_percent: f64,
    pub blocked_percent: f64,
    pub sleep_percent: f64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub voluntary_ctxsw: u64,
    pub involuntary_ctxsw: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// One function.
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct Function {
    pub name: String,
    pub filename: String,
    pub own_samples: u64,
    pub total_samples: u64,
    pub own_percent: f64,
    pub total_percent: f64,
    pub cpu_s: f64,
    pub minor_faults: f64,
    pub major_faults: f64,
    pub voluntary_ctxsw: f64,
    pub involuntary_ctxsw: f64,
    pub io_bytes: f64,
    /// Samples in which the GIL holder ran it while another thread waited for the GIL.
    pub gil_held_while_waited: u64,
    pub lines: Vec<Line>,
}

/// One line of a function.
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct Line {
    pub line: u32,
    pub own_samples: u64,
    pub total_samples: u64,
}

impl Report {
    /// Builds the report from a snapshot.
    pub fn new(snapshot: &Snapshot, header: &ReportHeader) -> Self {
        let procs = &snapshot.processes;
        let duration_s = procs.iter().map(|p| p.duration_s).fold(0.0, f64::max);
        Self {
            schema: SCHEMA,
            hptop_version: env!("CARGO_PKG_VERSION"),
            started_at: header.started_at.clone(),
            duration_s,
            rate_hz: header.rate_hz,
            achieved_rate_hz: procs.iter().map(|p| p.rate_hz).fold(0.0, f64::max),
            samples: procs.iter().map(|p| p.samples).sum(),
            sample_errors: procs.iter().map(|p| p.sample_errors).sum(),
            hptop_cpu_s: header.hptop_cpu_s,
            processes: procs.iter().map(process).collect(),
        }
    }

    /// Pretty JSON text.
    ///
    /// # Errors
    /// Never in practice: every field serialises.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}

fn process(p: &ProcessSnapshot) -> Process {
    Process {
        pid: p.pid,
        ppid: p.ppid,
        cmdline: p.cmdline.clone(),
        python_version: p.python_version.clone(),
        exited: p.exited,
        cpu_percent: p.cpu_percent,
        rss_bytes: p.rss_bytes,
        rss_peak_bytes: p.rss_peak_bytes,
        swap_bytes: p.swap_bytes,
        minor_faults: p.minor_faults,
        major_faults: p.major_faults,
        voluntary_ctxsw: p.voluntary_ctxsw,
        involuntary_ctxsw: p.involuntary_ctxsw,
        read_bytes: p.read_bytes,
        write_bytes: p.write_bytes,
        gil: Gil {
            held_percent: p.gil_held_percent,
            handoffs_per_s: p.gil_handoffs_per_s,
            wanted_percent: p.gil_wanted_percent,
            located: p.gil_located,
            mean_hold_ms: p.gil_mean_hold_ms,
            verdict: p.verdict.clone(),
        },
        threads: p
            .threads
            .iter()
            .filter(|t| t.is_python)
            .map(thread)
            .collect(),
        functions: p.functions.iter().map(function).collect(),
    }
}

fn thread(t: &ThreadRow) -> Thread {
    Thread {
        tid: t.tid,
        name: t.name.clone(),
        samples: t.samples,
        cpu_percent: t.cpu_percent,
        gil_held_percent: t.gil_held_percent,
        gil_wait_percent: t.gil_wait_percent,
        idle_percent: t.idle_percent,
        native_percent: t.native_percent,
        blocked_percent: t.blocked_percent,
        sleep_percent: t.sleep_percent,
        minor_faults: t.minor_faults,
        major_faults: t.major_faults,
        voluntary_ctxsw: t.voluntary_ctxsw,
        involuntary_ctxsw: t.involuntary_ctxsw,
        read_bytes: t.read_bytes,
        write_bytes: t.write_bytes,
    }
}

fn function(f: &FunctionRow) -> Function {
    Function {
        name: f.name.clone(),
        filename: f.filename.clone(),
        own_samples: f.own_samples,
        total_samples: f.total_samples,
        own_percent: f.own_percent,
        total_percent: f.total_percent,
        cpu_s: f.credited.cpu_s,
        minor_faults: f.credited.minor_faults,
        major_faults: f.credited.major_faults,
        voluntary_ctxsw: f.credited.voluntary_ctxsw,
        involuntary_ctxsw: f.credited.involuntary_ctxsw,
        io_bytes: f.credited.io_bytes,
        gil_held_while_waited: f.gil_held_while_waited,
        lines: f
            .lines
            .iter()
            .map(|l| Line {
                line: l.line,
                own_samples: l.own_samples,
                total_samples: l.total_samples,
            })
            .collect(),
    }
}
