//! `hptop ps` output.

use std::fmt::Write as _;

use serde::Serialize;

use crate::fmt;
use crate::model::dump::PsRow;

/// Text table, one process a line.
pub fn text(rows: &[PsRow]) -> String {
    let mut out = format!(
        "{:>8} {:>8} {:<10} {:<8} {:>6} {:>10}  COMMAND\n",
        "PID", "PPID", "USER", "PYTHON", "CPU%", "RSS"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>8} {:>8} {:<10} {:<8} {:>6.1} {:>10}  {}",
            r.pid,
            r.ppid,
            fmt::truncate(&r.user, 10),
            r.python_version,
            r.cpu_percent,
            fmt::bytes(r.rss_bytes),
            r.command
        );
    }
    if rows.is_empty() {
        out.push_str("(no Python processes found)\n");
    }
    out
}

#[derive(Serialize)]
struct PsJson<'a> {
    pid: u32,
    ppid: u32,
    user: &'a str,
    python_version: &'a str,
    cpu_percent: f64,
    rss_bytes: u64,
    command: &'a str,
}

/// JSON array, one object a process.
///
/// # Errors
/// Never in practice.
pub fn json(rows: &[PsRow]) -> serde_json::Result<String> {
    let docs: Vec<PsJson> = rows
        .iter()
        .map(|r| PsJson {
            pid: r.pid,
            ppid: r.ppid,
            user: &r.user,
            python_version: &r.python_version,
            cpu_percent: r.cpu_percent,
            rss_bytes: r.rss_bytes,
            command: &r.command,
        })
        .collect();
    serde_json::to_string_pretty(&docs)
}
