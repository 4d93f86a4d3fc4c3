//! `hptop ps`: Python processes on this machine, busiest first.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::PsOptions;
use crate::collect::discover::{self, ProcessInfo};
use crate::collect::procfs::TICKS_PER_S;
use crate::error::HptopError;
use crate::model::dump::PsRow;
use crate::report::{ps, Format};
use crate::session::write_output;

/// Window over which CPU % is measured.
const CPU_WINDOW: Duration = Duration::from_millis(500);

/// Lists Python processes.
///
/// # Errors
/// Only when the output cannot be written.
pub fn run(options: PsOptions) -> Result<(), HptopError> {
    let rows = python_rows(CPU_WINDOW);
    let hidden = discover::unreadable_pythons();
    if hidden > 0 {
        eprintln!(
            "hptop: {} of other users could not be read; `sudo hptop ps` lists them too",
            crate::fmt::counted(hidden as u64, "Python process")
        );
    }
    let out = match options.format {
        Format::Text => ps::text(&rows),
        Format::Json => {
            let mut json =
                ps::json(&rows).map_err(|e| HptopError::Usage(format!("cannot serialise: {e}")))?;
            json.push('\n');
            json
        }
    };
    write_output(out.as_bytes())
}

/// The Python processes on this machine with their CPU over `window` (measured by reading
/// their `stat` twice), busiest first.
pub fn python_rows(window: Duration) -> Vec<PsRow> {
    let first = discover::python_processes();
    let before: HashMap<u32, u64> = first
        .iter()
        .map(|(p, _)| (p.pid, p.stat.cpu_ticks))
        .collect();
    let start = Instant::now();
    std::thread::sleep(window);
    let elapsed = start.elapsed().as_secs_f64();
    let mut rows: Vec<PsRow> = first
        .into_iter()
        .filter_map(|(info, guess)| {
            // Read again: a process that exited meanwhile is left out.
            let now = ProcessInfo::read(info.pid).filter(|p| !p.is_zombie())?;
            let ticks = now.stat.cpu_ticks.saturating_sub(*before.get(&info.pid)?);
            Some(PsRow {
                pid: now.pid,
                ppid: now.stat.ppid,
                user: user_name(now.uid),
                python_version: guess.version.unwrap_or_else(|| "?".into()),
                cpu_percent: ticks as f64 / TICKS_PER_S as f64 / elapsed * 100.0,
                rss_bytes: now.rss_bytes,
                command: now.command(),
            })
        })
        .collect();
    rows.sort_by_key(|r| (Reverse((r.cpu_percent * 10.0) as u64), r.pid));
    rows
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}
