//! Per-thread files kept open between reads, and the budget of descriptors they may use.

use super::parse::Schedstat;
use super::PARKED_AFTER_READS;
use crate::collect::tick::{OsState, ThreadCounters};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Reads a whole `/proc` file with one `pread` at offset 0 into `buf` (grown as needed).
pub(super) fn pread_all(file: &File, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    loop {
        let n = file.read_at(buf, 0)?;
        if n < buf.len() {
            return Ok(n);
        }
        // The file is larger than the buffer: grow and read again from the start.
        let len = buf.len() * 2;
        buf.resize(len, 0);
    }
}

/// Page size in bytes, for `statm`.
pub(super) fn page_bytes() -> u64 {
    page_size::get() as u64
}

/// What is known of one thread between reads; its kept-open files count against
/// [`ProcReader`]'s file budget.
#[derive(Default)]
pub(super) struct ThreadFiles {
    pub(super) schedstat: Option<File>,
    pub(super) stat: Option<File>,
    pub(super) syscall: Option<File>,
    /// `status` (slow timer), kept open while the budget is less than half used.
    pub(super) status: Option<File>,
    /// `io`: read at every tick it runs for a thread that does I/O, else on the slow timer.
    pub(super) io: Option<File>,
    /// The thread has been seen reading or writing bytes (its `io` grew between two slow
    /// reads): its `io` is read at every tick it ran, so its bytes are credited to the stack
    /// of that tick.
    pub(super) does_io: bool,
    /// `read_bytes + write_bytes` at the last slow read.
    pub(super) io_moved: Option<u64>,
    /// `schedstat` at the previous read.
    pub(super) last_sched: Option<Schedstat>,
    /// `schedstat` at the previous slow read.
    pub(super) slow_sched: Option<Schedstat>,
    /// The previous read's counters, reused while the thread has not run.
    pub(super) last: Option<ThreadCounters>,
    /// The thread's id inside the target's own PID namespace, when that is not hptop's.
    pub(super) ns_tid: Option<u32>,
    /// Reads in a row that found the thread had not run.
    pub(super) idle_reads: u32,
    /// The last state was told from `syscall` alone (see [`FAULT_GATE_MAX_THREADS`]): a
    /// stopped thread looks like one asleep there, so the next slow tick reads `stat`.
    pub(super) state_from_syscall: bool,
}

impl ThreadFiles {
    /// For a parked thread between slow ticks: its last counters, unread (see
    /// [`PARKED_AFTER_READS`]).
    pub(super) fn parked(&self, slow: bool) -> Option<ThreadCounters> {
        if slow || self.idle_reads < PARKED_AFTER_READS {
            return None;
        }
        let last = self.last.filter(|l| l.state != OsState::Running)?;
        Some(ThreadCounters {
            slow: None,
            io_bytes: None,
            not_run_since_last_read: true,
            ..last
        })
    }

    pub(super) fn open_count(&self) -> usize {
        usize::from(self.schedstat.is_some())
            + usize::from(self.stat.is_some())
            + usize::from(self.syscall.is_some())
            + usize::from(self.status.is_some())
            + usize::from(self.io.is_some())
    }
}

/// Kept-open files of all threads, at most: past it a file is opened for one read and closed,
/// so hptop's descriptors stay bounded whatever the thread count (see [`fd_budget`]).
pub const MAX_THREAD_FILES: usize = 8192;

/// How many per-thread files may stay open: [`MAX_THREAD_FILES`], or half the soft
/// `RLIMIT_NOFILE` when that is lower (the rest stays for everything else hptop opens).
pub fn fd_budget() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    usize::try_from(soft / 2)
        .unwrap_or(MAX_THREAD_FILES)
        .min(MAX_THREAD_FILES)
}

/// Which per-thread file to read.
#[derive(Debug, Clone, Copy)]
pub(super) enum ThreadFile {
    Schedstat,
    Stat,
    Syscall,
    Status,
    /// `io` of a thread not known to do I/O: read on the slow timer only.
    Io,
    /// `io` of a thread that does I/O, read at every tick it runs.
    IoKept,
}

impl ThreadFile {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Schedstat => "schedstat",
            Self::Stat => "stat",
            Self::Syscall => "syscall",
            Self::Status => "status",
            Self::Io | Self::IoKept => "io",
        }
    }
}
