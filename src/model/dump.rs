//! One tick shown as it is: every thread's stack and its cumulative counters (since the
//! thread started), for `hptop dump`.

use super::SessionMeta;
use crate::collect::procfs::TICKS_PER_S;
use crate::collect::tick::{Frame, GilState, OsState, Tick};

/// Rows of one dump.
#[derive(Debug, Clone, Default)]
pub struct DumpSnapshot {
    /// What the process is.
    pub meta: SessionMeta,
    /// RSS now.
    pub rss_bytes: u64,
    /// CPU seconds since the process started.
    pub cpu_s: f64,
    /// Minor faults since the process started.
    pub minor_faults: u64,
    /// Major faults since the process started.
    pub major_faults: u64,
    /// Why stacks could not be read, if they could not.
    pub stack_error: Option<String>,
    /// Python threads first, then by tid.
    pub threads: Vec<DumpThread>,
}

/// One thread in a dump; counters are cumulative since the thread started.
#[derive(Debug, Clone, Default)]
pub struct DumpThread {
    /// OS thread id (0: unresolved).
    pub tid: u32,
    /// Python thread name.
    pub name: Option<String>,
    /// Has a Python stack.
    pub is_python: bool,
    /// Kernel state.
    pub state: OsState,
    /// GIL ownership.
    pub gil: GilState,
    /// CPU seconds.
    pub cpu_s: f64,
    /// Minor faults.
    pub minor_faults: u64,
    /// Major faults.
    pub major_faults: u64,
    /// Voluntary context switches.
    pub voluntary_ctxsw: u64,
    /// Involuntary context switches.
    pub involuntary_ctxsw: u64,
    /// Bytes read from storage.
    pub read_bytes: u64,
    /// Bytes written to storage.
    pub write_bytes: u64,
    /// Innermost first.
    pub stack: Vec<Frame>,
}

impl DumpSnapshot {
    /// Rows of `tick` (read with the slow counters) of the process `meta` describes.
    pub fn from_tick(meta: &SessionMeta, tick: &Tick) -> Self {
        let p = &tick.process;
        let counters = p.counters.unwrap_or_default();
        let mut threads: Vec<DumpThread> = p
            .threads
            .iter()
            .map(|t| {
                let c = t.counters.unwrap_or_default();
                let slow = c.slow.unwrap_or_default();
                DumpThread {
                    tid: t.tid,
                    name: t.name.as_deref().map(str::to_owned),
                    is_python: t.is_python,
                    state: c.state,
                    gil: t.gil,
                    cpu_s: c.cpu_ticks as f64 / TICKS_PER_S as f64,
                    minor_faults: c.minor_faults,
                    major_faults: c.major_faults,
                    voluntary_ctxsw: slow.voluntary_ctxsw,
                    involuntary_ctxsw: slow.involuntary_ctxsw,
                    read_bytes: slow.read_bytes,
                    write_bytes: slow.write_bytes,
                    stack: t.frames.to_vec(),
                }
            })
            .collect();
        threads.sort_by_key(|t| (!t.is_python, t.tid));
        Self {
            meta: meta.clone(),
            rss_bytes: counters.rss_bytes,
            cpu_s: counters.cpu_ticks as f64 / TICKS_PER_S as f64,
            minor_faults: counters.minor_faults,
            major_faults: counters.major_faults,
            stack_error: p.stack_error.clone(),
            threads,
        }
    }
}

/// One line of `hptop ps`.
#[derive(Debug, Clone, Default)]
pub struct PsRow {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// User name (or uid).
    pub user: String,
    /// Python version as file names tell, or `?`.
    pub python_version: String,
    /// CPU over the measuring window; 100 = one core.
    pub cpu_percent: f64,
    /// RSS.
    pub rss_bytes: u64,
    /// Command line.
    pub command: String,
}
