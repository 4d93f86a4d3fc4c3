//! Readers of `/proc/PID/...` and `/proc/PID/task/TID/...` into cumulative counters.
//!
//! Files are opened once and re-read with `pread` at offset 0, which makes the kernel
//! regenerate their text: cheaper than open/read/close at 100 Hz. Per-thread files are
//! reached through `/proc/PID/task/TID`, never `/proc/TID` (the latter is an O(threads)
//! lookup in the kernel).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;

mod files;
mod parse;

pub use files::{fd_budget, MAX_THREAD_FILES};
pub use parse::{
    age_s, field_value, inner_ns_id, parse_stat, parse_syscall, StatFields, TICKS_PER_S,
};

use files::{page_bytes, pread_all, ThreadFile, ThreadFiles};
use parse::{io_fields, parse_runnable_cpu, parse_schedstat, to_micros};

use super::tick::{
    MemoryCounters, OsState, ProcCounters, SlowThreadCounters, SmapsRollup, Syscall, ThreadCounters,
};

/// Kept-open `/proc` files of one process and its threads.
pub struct ProcReader {
    pid: u32,
    root: PathBuf,
    stat: File,
    statm: File,
    status: Option<File>,
    io: Option<File>,
    smaps_rollup: Option<File>,
    threads: HashMap<u32, ThreadFiles>,
    /// `/proc/PID/task`, kept open and rewound for each listing (no open/close per tick).
    task_dir: Option<nix::dir::Dir>,
    buf: Vec<u8>,
    page_bytes: u64,
    /// The target lives in a PID namespace of its own (a container): its threads' ids as
    /// the interpreter knows them differ from ours (see [`ProcReader::namespace_tids`]).
    namespaced: bool,
    /// Per-thread files open now, and how many may be.
    open_files: usize,
    file_budget: usize,
    /// The thread list `threads` was last pruned to.
    listed: Vec<u32>,
    /// The process's minor + major faults at the last tick that read them (the fault gate, or
    /// a slow tick's `read_process`).
    faults_at_last_tick: Option<u64>,
    /// Threads that ran (were read in full) at the last tick.
    ran_last_tick: usize,
}

/// The fault gate: at a tick where at least two threads ran at the last one, and the process
/// has at most this many threads, the process's `stat` is read first. If its faults have not
/// changed since the last tick, no thread faulted, so a thread that ran needs no `stat` of
/// its own for its faults: its state comes from `syscall` (`running`, or asleep in a call
/// that sleeps interruptibly), read anyway for a thread that is not running. One read of
/// the process instead of one per thread that ran (the process's `stat` sums its threads in
/// the kernel: hence the bound). Slow ticks read every `stat` as before.
pub const FAULT_GATE_MAX_THREADS: usize = 64;

/// What a thread's `syscall` file told, before (or instead of) its `stat`.
enum SyscallRead {
    /// The state and system call are known without `stat`.
    Known(OsState, Option<Syscall>),
    /// `stat` is needed; `syscall` was not read.
    Unread,
    /// `stat` is needed; `syscall` was read: the call the thread is in, if any.
    Read(Option<Syscall>),
}

/// Reads in a row without running (0.5 s at 100 Hz) after which a thread counts as parked:
/// it is read on slow ticks only (~10 Hz), so a pool of parked threads costs a tenth. A parked
/// thread that wakes is seen at the next slow tick (within ~100 ms); its counters are
/// cumulative, so nothing of them is lost, only placed up to that much later.
pub const PARKED_AFTER_READS: u32 = 50;

/// What one read of a process found.
pub struct ProcessRead {
    /// Whole-process counters.
    pub counters: ProcCounters,
    /// Memory figures, when the slow files were read.
    pub memory: Option<MemoryCounters>,
    /// Scheduling state of the process (its main thread).
    pub state: OsState,
}

impl ProcReader {
    /// Opens the process's files.
    ///
    /// # Errors
    /// The I/O error of opening `/proc/PID/stat` (`NotFound` when the process is gone).
    pub fn open(pid: u32) -> io::Result<Self> {
        let root = PathBuf::from(format!("/proc/{pid}"));
        let stat = File::open(root.join("stat"))?;
        let statm = File::open(root.join("statm"))?;
        let task_dir = nix::dir::Dir::open(
            &root.join("task"),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .ok();
        let status = File::open(root.join("status")).ok();
        let mut buf = vec![0; 4096];
        let namespaced = status
            .as_ref()
            .and_then(|f| pread_all(f, &mut buf).ok())
            .is_some_and(|n| inner_ns_id(&buf[..n]).is_some());
        Ok(Self {
            pid,
            status,
            io: File::open(root.join("io")).ok(),
            smaps_rollup: None,
            root,
            stat,
            statm,
            threads: HashMap::new(),
            task_dir,
            buf,
            page_bytes: page_bytes(),
            namespaced,
            open_files: 0,
            file_budget: fd_budget(),
            listed: Vec::new(),
            faults_at_last_tick: None,
            ran_last_tick: 0,
        })
    }

    /// The process id this reader reads.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads the whole-process counters; `slow` adds `status` (swap, peak RSS).
    ///
    /// # Errors
    /// When the process is gone (the kernel answers `ESRCH` or an empty file).
    pub fn read_process(&mut self, slow: bool) -> io::Result<ProcessRead> {
        let n = pread_all(&self.stat, &mut self.buf)?;
        let stat = parse_stat(&self.buf[..n]).ok_or_else(gone)?;
        if slow {
            // The slow tick reads every thread's `stat` after this: the fault gate's baseline
            // for the next tick, which then need not read the process's `stat` for nothing.
            self.faults_at_last_tick = Some(stat.minor_faults + stat.major_faults);
        }
        let n = pread_all(&self.statm, &mut self.buf)?;
        let rss_pages = std::str::from_utf8(&self.buf[..n])
            .ok()
            .and_then(|s| s.split_ascii_whitespace().nth(1)?.parse::<u64>().ok())
            .ok_or_else(gone)?;
        let (read_bytes, write_bytes) = match &self.io {
            Some(f) => match pread_all(f, &mut self.buf) {
                Ok(n) => (
                    field_value(&self.buf[..n], "read_bytes"),
                    field_value(&self.buf[..n], "write_bytes"),
                ),
                Err(_) => (None, None),
            },
            None => (None, None),
        };
        let memory = match (&self.status, slow) {
            (Some(f), true) => pread_all(f, &mut self.buf).ok().map(|n| {
                let text = &self.buf[..n];
                let kib = |key| field_value(text, key).unwrap_or(0) * 1024;
                MemoryCounters {
                    swap_bytes: kib("VmSwap"),
                    hwm_bytes: kib("VmHWM"),
                    rss_anon_bytes: kib("RssAnon"),
                    rss_file_bytes: kib("RssFile"),
                    rss_shmem_bytes: kib("RssShmem"),
                    rollup: None,
                }
            }),
            _ => None,
        };
        Ok(ProcessRead {
            counters: ProcCounters {
                cpu_ticks: stat.cpu_ticks,
                minor_faults: stat.minor_faults,
                major_faults: stat.major_faults,
                read_bytes,
                write_bytes,
                rss_bytes: rss_pages * self.page_bytes,
            },
            memory,
            state: stat.state,
        })
    }

    /// Reads `/proc/PID/smaps_rollup`. It walks the target's page tables under its memory-map
    /// lock (~10 ms per GiB of RSS): call it on `collect::smaps`'s schedule only.
    pub fn read_smaps_rollup(&mut self) -> Option<SmapsRollup> {
        if self.smaps_rollup.is_none() {
            self.smaps_rollup = File::open(self.root.join("smaps_rollup")).ok();
        }
        let n = pread_all(self.smaps_rollup.as_ref()?, &mut self.buf).ok()?;
        let text = &self.buf[..n];
        let kib = |key| field_value(text, key).map(|v| v * 1024);
        Some(SmapsRollup {
            pss_bytes: kib("Pss")?,
            uss_bytes: kib("Private_Clean")? + kib("Private_Dirty")?,
        })
    }

    /// Lists the thread ids in `/proc/PID/task`, ascending.
    ///
    /// # Errors
    /// When the directory cannot be read (the process is gone).
    pub fn list_tids(&mut self) -> io::Result<Vec<u32>> {
        let mut tids: Vec<u32> = match self.task_dir.as_mut() {
            Some(dir) => dir
                .iter()
                .filter_map(|e| e.ok()?.file_name().to_str().ok()?.parse().ok())
                .collect(),
            None => std::fs::read_dir(self.root.join("task"))?
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect(),
        };
        if tids.is_empty() {
            // A process that is gone lists no task, not even its main thread.
            return Err(gone());
        }
        tids.sort_unstable();
        Ok(tids)
    }

    /// Reads the counters of each thread in `tids`; `None` for a thread that vanished.
    /// Forgets the files of threads not in `tids`.
    pub fn read_threads(&mut self, tids: &[u32], slow: bool) -> Vec<Option<ThreadCounters>> {
        // Out of `self` while reading, so each thread's entry is borrowed in place, not moved
        // out and back at every tick.
        let mut threads = std::mem::take(&mut self.threads);
        // Threads gone since the last listing: only when the list changed (the same list is
        // reused between slow ticks).
        if tids != self.listed.as_slice() {
            let mut closed = 0;
            threads.retain(|tid, files| {
                let keep = tids.binary_search(tid).is_ok();
                if !keep {
                    closed += files.open_count();
                }
                keep
            });
            self.open_files -= closed;
            tids.clone_into(&mut self.listed);
        }
        let faults_unchanged = self.fault_gate(tids.len(), slow);
        let counters: Vec<Option<ThreadCounters>> = tids
            .iter()
            .map(
                |&tid| match threads.get(&tid).and_then(|f| f.parked(slow)) {
                    Some(unchanged) => Some(unchanged),
                    None => self.read_thread(&mut threads, tid, slow, faults_unchanged),
                },
            )
            .collect();
        self.ran_last_tick = counters
            .iter()
            .flatten()
            .filter(|c| !c.not_run_since_last_read)
            .count();
        self.threads = threads;
        counters
    }

    /// Whether the process has not faulted since the last tick (see
    /// [`FAULT_GATE_MAX_THREADS`]); false when that is not asked or not known.
    fn fault_gate(&mut self, threads: usize, slow: bool) -> bool {
        // A slow tick reads every thread's `stat`; the baseline stays (see `read_process`).
        if slow {
            return false;
        }
        let before = self.faults_at_last_tick.take();
        if threads > FAULT_GATE_MAX_THREADS || self.ran_last_tick < 2 {
            return false;
        }
        let now = pread_all(&self.stat, &mut self.buf)
            .ok()
            .and_then(|n| parse_stat(&self.buf[..n]))
            .map(|stat| stat.minor_faults + stat.major_faults);
        self.faults_at_last_tick = now;
        now.is_some() && now == before
    }

    /// A thread's state from its `syscall` alone, where that tells it: `running` is `R`; a
    /// call that sleeps interruptibly is `S`. Only when `faults_unchanged` (its faults are
    /// then those of its last read), on a fast tick, and with schedstat for its CPU.
    fn state_from_syscall(
        &mut self,
        tid: u32,
        files: &mut ThreadFiles,
        faults_unchanged: bool,
        slow: bool,
    ) -> SyscallRead {
        // Without schedstat, `stat` is the thread's only CPU figure: always read then.
        if !faults_unchanged || slow || files.last.is_none_or(|l| l.run_ns.is_none()) {
            return SyscallRead::Unread;
        }
        let Some(n) = self.read_file(tid, &mut files.syscall, ThreadFile::Syscall) else {
            return SyscallRead::Unread;
        };
        let text = &self.buf[..n];
        if text.starts_with(b"running") {
            return SyscallRead::Known(OsState::Running, None);
        }
        match parse_syscall(text) {
            Some(call) if call.sleeps_interruptibly() => {
                SyscallRead::Known(OsState::Sleeping, Some(call))
            }
            call => SyscallRead::Read(call),
        }
    }

    /// The system call a thread is blocked in and its `stat` fields (state included): read,
    /// or where the fault gate allows, the state told from `syscall` and the other fields
    /// those of the last read.
    fn state_and_stat(
        &mut self,
        tid: u32,
        files: &mut ThreadFiles,
        faults_unchanged: bool,
        slow: bool,
    ) -> Option<(Option<Syscall>, StatFields)> {
        let read = match self.state_from_syscall(tid, files, faults_unchanged, slow) {
            SyscallRead::Known(state, syscall) => {
                // No fault since the last read (the gate), and `start_ticks` never changes.
                // Its `cpu_ticks` lag: schedstat's time is the CPU figure where it is read.
                let last = files.last?;
                files.state_from_syscall = true;
                let stat = StatFields {
                    state,
                    ppid: 0,
                    minor_faults: last.minor_faults,
                    major_faults: last.major_faults,
                    cpu_ticks: last.cpu_ticks,
                    num_threads: 0,
                    start_ticks: last.start_ticks,
                };
                return Some((syscall, stat));
            }
            SyscallRead::Unread => None,
            SyscallRead::Read(call) => Some(call),
        };
        files.state_from_syscall = false;
        let n = self.read_file(tid, &mut files.stat, ThreadFile::Stat)?;
        let stat = parse_stat(&self.buf[..n])?;
        // Only a thread that is not running is in a system call worth naming.
        let syscall = match (stat.state, read) {
            (OsState::Running, _) => None,
            (_, Some(read)) => read,
            (_, None) => self
                .read_file(tid, &mut files.syscall, ThreadFile::Syscall)
                .and_then(|n| parse_syscall(&self.buf[..n])),
        };
        Some((syscall, stat))
    }

    /// How many times `tid` has been switched in so far (`schedstat` field 3): one read.
    pub fn switch_ins(&mut self, tid: u32) -> Option<u64> {
        let read = self.read_one(tid, ThreadFile::Schedstat, parse_schedstat, |f| {
            &mut f.schedstat
        })?;
        Some(read.switched_in)
    }

    /// The CPU a thread in state `R` is on (running, or waiting for that CPU); `None` for a
    /// thread in any other state.
    pub fn runnable_cpu(&mut self, tid: u32) -> Option<u32> {
        self.read_one(tid, ThreadFile::Stat, parse_runnable_cpu, |f| &mut f.stat)
    }

    /// One read of a listed thread's file `which` (`slot` of its files: kept open), parsed.
    fn read_one<T>(
        &mut self,
        tid: u32,
        which: ThreadFile,
        parse: impl Fn(&[u8]) -> Option<T>,
        slot: impl Fn(&mut ThreadFiles) -> &mut Option<File>,
    ) -> Option<T> {
        let mut files = self.threads.remove(&tid)?;
        let read = self
            .read_file(tid, slot(&mut files), which)
            .and_then(|n| parse(&self.buf[..n]));
        self.threads.insert(tid, files);
        read
    }

    /// For a target in its own PID namespace, `(id inside it, our id)` of each thread in
    /// `tids` whose files are open (read by [`Self::read_threads`]), sorted by the inner id;
    /// `None` when the target shares our namespace (the ids are the same).
    pub fn namespace_tids(&self, tids: &[u32]) -> Option<Vec<(u32, u32)>> {
        if !self.namespaced {
            return None;
        }
        let mut pairs: Vec<(u32, u32)> = tids
            .iter()
            .filter_map(|tid| Some((self.threads.get(tid)?.ns_tid?, *tid)))
            .collect();
        pairs.sort_unstable();
        Some(pairs)
    }

    fn read_thread(
        &mut self,
        threads: &mut HashMap<u32, ThreadFiles>,
        tid: u32,
        slow: bool,
        faults_unchanged: bool,
    ) -> Option<ThreadCounters> {
        // A kept-open file of a thread that exited fails; its tid may have been reused by a
        // new thread, so start afresh once before giving up.
        for attempt in 0..2 {
            if attempt == 1 || !threads.contains_key(&tid) {
                let fresh = self.first_sight(tid);
                if let Some(old) = threads.insert(tid, fresh) {
                    self.open_files -= old.open_count();
                }
            }
            let files = threads.get_mut(&tid)?;
            if let Some(counters) = self.read_thread_files(tid, files, slow, faults_unchanged) {
                return Some(counters);
            }
        }
        if let Some(old) = threads.remove(&tid) {
            self.open_files -= old.open_count();
        }
        None
    }

    fn first_sight(&mut self, tid: u32) -> ThreadFiles {
        let mut files = ThreadFiles::default();
        // The inner id never changes: read once, when the thread is first seen.
        if self.namespaced {
            files.ns_tid = self
                .read_file(tid, &mut files.status, ThreadFile::Status)
                .and_then(|n| inner_ns_id(&self.buf[..n]));
        }
        files
    }

    /// Reads one of `tid`'s files into `self.buf`: through `slot` when it holds the file open,
    /// else by opening it, kept in `slot` while the budget allows, or closed after this read.
    /// Files read on the slow timer only (`status`, `io` of a thread not doing I/O) are kept
    /// while less than half the budget is used: an open and a close cost more than the read,
    /// but the files read at every tick come first.
    fn read_file(&mut self, tid: u32, slot: &mut Option<File>, which: ThreadFile) -> Option<usize> {
        if let Some(file) = slot.as_ref() {
            return pread_all(file, &mut self.buf).ok();
        }
        let path = self
            .root
            .join("task")
            .join(tid.to_string())
            .join(which.name());
        let file = File::open(path).ok()?;
        let n = pread_all(&file, &mut self.buf).ok()?;
        let budget = if matches!(which, ThreadFile::Status | ThreadFile::Io) {
            self.file_budget / 2
        } else {
            self.file_budget
        };
        if self.open_files < budget {
            self.open_files += 1;
            *slot = Some(file);
        }
        Some(n)
    }

    fn read_thread_files(
        &mut self,
        tid: u32,
        files: &mut ThreadFiles,
        slow: bool,
        faults_unchanged: bool,
    ) -> Option<ThreadCounters> {
        let sched = self
            .read_file(tid, &mut files.schedstat, ThreadFile::Schedstat)
            .and_then(|n| parse_schedstat(&self.buf[..n]));
        // A thread that has neither run nor been switched in since the last read (and was not
        // running then) has the same state, counters and system call: one read, not three.
        // (Slow counters likewise since the last slow read.)
        let not_run = sched.is_some_and(|s| s.same_run(files.last_sched));
        files.idle_reads = if not_run {
            files.idle_reads.saturating_add(1)
        } else {
            0
        };
        let confirm_state = slow && files.state_from_syscall;
        if let Some(last) = files
            .last
            .filter(|l| not_run && l.state != OsState::Running && !confirm_state)
        {
            let slow = match (slow, last.slow) {
                (false, _) => None,
                (true, Some(kept)) if sched.is_some_and(|s| s.same_run(files.slow_sched)) => {
                    Some(kept)
                }
                (true, _) => {
                    files.slow_sched = sched;
                    Some(self.read_slow(tid, files)?)
                }
            };
            let counters = ThreadCounters {
                slow,
                // Only for a thread that does I/O: the others' bytes are credited per span.
                io_bytes: slow
                    .filter(|_| files.does_io)
                    .map(SlowThreadCounters::io_bytes),
                not_run_since_last_read: true,
                ..last
            };
            files.last = Some(ThreadCounters {
                slow: slow.or(last.slow),
                ..counters
            });
            return Some(counters);
        }
        let (syscall, stat) = self.state_and_stat(tid, files, faults_unchanged, slow)?;
        let slow = if slow {
            files.slow_sched = sched;
            Some(self.read_slow(tid, files)?)
        } else {
            None
        };
        // Per tick only for a thread that does I/O (the others' bytes are credited per span):
        // the slow read's value, or a read of its own.
        let io_bytes = match (slow, files.does_io) {
            (_, false) => None,
            (Some(slow), true) => Some(slow.io_bytes()),
            (None, true) => self
                .read_file(tid, &mut files.io, ThreadFile::IoKept)
                .map(|n| {
                    let (read, written) = io_fields(&self.buf[..n]);
                    read + written
                }),
        };
        files.last_sched = sched;
        let counters = ThreadCounters {
            state: stat.state,
            start_ticks: stat.start_ticks,
            cpu_ticks: stat.cpu_ticks,
            minor_faults: stat.minor_faults,
            major_faults: stat.major_faults,
            slow,
            // Kept to the microsecond: finer is noise at any sampling rate, and costs a
            // recording two incompressible bytes per thread-sample.
            run_ns: sched.map(|s| to_micros(s.run_ns)),
            runqueue_wait_ns: sched.map(|s| to_micros(s.wait_ns)),
            not_run_since_last_read: false,
            syscall,
            io_bytes,
            on_cpu: None,
        };
        files.last = Some(ThreadCounters {
            slow: slow.or(files.last.and_then(|l| l.slow)),
            ..counters
        });
        Some(counters)
    }

    /// A thread's context switches (`status`) and I/O bytes (`io`).
    fn read_slow(&mut self, tid: u32, files: &mut ThreadFiles) -> Option<SlowThreadCounters> {
        let n = self.read_file(tid, &mut files.status, ThreadFile::Status)?;
        let (voluntary_ctxsw, involuntary_ctxsw) = (
            field_value(&self.buf[..n], "voluntary_ctxt_switches").unwrap_or(0),
            field_value(&self.buf[..n], "nonvoluntary_ctxt_switches").unwrap_or(0),
        );
        // A thread that does I/O has its `io` read at every tick: kept open under the whole budget.
        let which = if files.does_io {
            ThreadFile::IoKept
        } else {
            ThreadFile::Io
        };
        let io = self
            .read_file(tid, &mut files.io, which)
            .map(|n| io_fields(&self.buf[..n]));
        if let Some((read, written)) = io {
            // Only bytes seen moving make an I/O thread: what a thread moved before it was
            // first read (a main thread's imports at start-up) would cost a read per tick for
            // the whole session.
            files.does_io |= files.io_moved.is_some_and(|before| read + written > before);
            files.io_moved = Some(read + written);
        }
        let (read_bytes, write_bytes) = io.unwrap_or((0, 0));
        Some(SlowThreadCounters {
            voluntary_ctxsw,
            involuntary_ctxsw,
            read_bytes,
            write_bytes,
        })
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "process is gone")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_parentheses_in_name() {
        let text =
            b"42 (a) b (c)) S 1 42 42 0 -1 4194560 150 0 3 0 7 5 0 0 20 0 3 0 999 1000 200 rest";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.state, OsState::Sleeping);
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.minor_faults, 150);
        assert_eq!(stat.major_faults, 3);
        assert_eq!(stat.cpu_ticks, 12);
        assert_eq!(stat.num_threads, 3);
        assert_eq!(stat.start_ticks, 999);
    }

    #[test]
    fn the_cpu_a_thread_last_ran_on_is_stat_field_39() {
        // A real line (the command name with a space and parentheses in it).
        let text = b"7036 (py (x) y) R 7000 7000 6500 34816 7000 4194368 1200 0 0 0 950 12 0 0 \
            20 0 7 0 5000 500000000 4000 18446744073709551615 1 1 0 0 0 0 0 16781312 2 0 0 0 \
            17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert_eq!(parse_runnable_cpu(text), Some(1));
        assert_eq!(parse_runnable_cpu(b"7036 (py) R 1 2 3"), None);
        let sleeping = String::from_utf8_lossy(text).replacen(") R ", ") S ", 1);
        assert_eq!(parse_runnable_cpu(sleeping.as_bytes()), None);
        // Ours, read live (running: state R), pinned to one CPU we may run on: that CPU.
        let me = nix::unistd::Pid::from_raw(0);
        let allowed = nix::sched::sched_getaffinity(me).unwrap();
        let cpu = (0..nix::sched::CpuSet::count())
            .rev()
            .find(|&c| allowed.is_set(c).unwrap_or(false))
            .unwrap();
        let mut pinned = nix::sched::CpuSet::new();
        pinned.set(cpu).unwrap();
        nix::sched::sched_setaffinity(me, &pinned).unwrap();
        std::thread::yield_now();
        let mut reader = ProcReader::open(std::process::id()).unwrap();
        let tids = reader.list_tids().unwrap();
        let _ = reader.read_threads(&tids, false);
        let tid = nix::unistd::gettid().as_raw() as u32;
        let read = reader.runnable_cpu(tid);
        nix::sched::sched_setaffinity(me, &allowed).unwrap();
        assert_eq!(read, u32::try_from(cpu).ok());
    }

    #[test]
    fn reads_own_process() {
        let mut reader = ProcReader::open(std::process::id()).unwrap();
        // Other tests' threads come and go; the main thread and this one stay.
        let me = nix::unistd::gettid().as_raw() as u32;
        for _ in 0..3 {
            let tids = reader.list_tids().unwrap();
            assert!(
                tids.contains(&std::process::id()) && tids.contains(&me),
                "{tids:?}"
            );
        }
        let read = reader.read_process(true).unwrap();
        assert!(read.counters.rss_bytes > 0);
        assert!(read.memory.unwrap().hwm_bytes >= read.counters.rss_bytes / 2);
        let tids = reader.list_tids().unwrap();
        assert!(!tids.is_empty());
        let threads = reader.read_threads(&tids, true);
        assert!(threads.iter().any(Option::is_some));
    }

    #[test]
    fn the_open_file_count_is_what_the_threads_hold() {
        let mut reader = ProcReader::open(std::process::id()).unwrap();
        // Slow reads keep `status` and `io` open too, while the budget is less than half used.
        for _ in 0..20 {
            let tids = reader.list_tids().unwrap();
            let _ = reader.read_threads(&tids, true);
        }
        let held: usize = reader.threads.values().map(ThreadFiles::open_count).sum();
        assert_eq!(reader.open_files, held);
        assert!(held <= reader.threads.len() * 5);
    }

    #[test]
    fn parses_syscall_lines() {
        let s = parse_syscall(b"202 0x7f00001b0 0x80 0x0 0x0 0x0 0x0 0x7ffd 0x7f00\n").unwrap();
        assert_eq!((s.number, s.arg0), (202, 0x7f00_001b0));
        assert_eq!(parse_syscall(b"running\n"), None);
        assert_eq!(parse_syscall(b"-1 0x7ffd 0x7f00\n"), None);
    }

    #[test]
    fn inner_namespace_id_only_when_nested() {
        assert_eq!(inner_ns_id(b"Name:\tx\nNSpid:\t4242\t7\nX:\t1\n"), Some(7));
        assert_eq!(inner_ns_id(b"NSpid:\t4242\n"), None);
        assert_eq!(inner_ns_id(b"Name:\tx\n"), None);
    }

    #[test]
    fn field_value_finds_keys() {
        let text = b"Name:\tx\nVmSwap:\t    12 kB\nvoluntary_ctxt_switches:\t7\n";
        assert_eq!(field_value(text, "VmSwap"), Some(12));
        assert_eq!(field_value(text, "voluntary_ctxt_switches"), Some(7));
        assert_eq!(field_value(text, "Missing"), None);
    }
}
