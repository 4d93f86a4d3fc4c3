//! Raw, owned data as the sampler read it: no deltas, no aggregation.
//!
//! Counters travel cumulative (as the kernel reports them); the model turns them
//! into deltas and rates using [`Tick::at`] and [`Tick::interval`].

use std::sync::Arc;
use std::time::Duration;

/// One sampling instant of one process.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    /// Monotonic time of this tick since the sampler started.
    pub at: Duration,
    /// Nominal interval between ticks (1 / rate).
    pub interval: Duration,
    /// Deadlines missed (not sampled) since the previous tick, because a sample ran late.
    pub skipped: u32,
    /// First tick after sampling was paused: counter deltas since the previous tick span the
    /// pause, when no stacks were seen, so they must not be credited to functions.
    pub resumed: bool,
    /// What was read of the target.
    pub process: ProcessTick,
}

/// What one tick read of one process.
#[derive(Debug, Clone, Default)]
pub struct ProcessTick {
    /// Process id.
    pub pid: u32,
    /// Whole-process counters, read on the slow timer only (`None` between slow reads).
    pub counters: Option<ProcCounters>,
    /// Memory figures, read on the slow timer only (see `SamplerOptions::slow_every`).
    pub memory: Option<MemoryCounters>,
    /// One entry per OS thread present at this tick.
    pub threads: Vec<ThreadTick>,
    /// Why the Python stacks could not be read at this tick, if they could not.
    pub stack_error: Option<String>,
    /// The process is gone (or a zombie) as of this tick.
    pub exited: bool,
    /// The GIL's `switch_number` (cumulative hand-offs), where the GIL state is located.
    pub gil_switches: Option<u64>,
    /// The asyncio tasks, on the ticks the list was read (about once a second, Python 3.11+
    /// after the target imported asyncio).
    pub tasks: Option<Arc<[TaskTick]>>,
}

/// One asyncio task as listed (see py-spy patch 21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTick {
    /// The task object's address, as `python -m asyncio ps` prints it.
    pub id: u64,
    /// `Task.get_name()`, sanitised.
    pub name: Arc<str>,
    /// OS thread id of its event loop's thread (`None`: that thread exited).
    pub tid: Option<u32>,
    /// Its thread ran it when the list was read.
    pub running: bool,
    /// Its coroutine finished; the task is still listed.
    pub done: bool,
    /// Where it is: its coroutine chain down to what it awaits, outermost first.
    pub frames: Vec<Frame>,
    /// Ids of the tasks and futures awaiting it.
    pub awaited_by: Vec<u64>,
}

/// Cumulative whole-process counters from `/proc/PID/stat` and `/proc/PID/io`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcCounters {
    /// utime + stime of all threads, dead ones included, in clock ticks (`ticks_per_s`).
    pub cpu_ticks: u64,
    /// Minor page faults of the whole process.
    pub minor_faults: u64,
    /// Major page faults of the whole process.
    pub major_faults: u64,
    /// Bytes the process caused to be read from storage (`io: read_bytes`); `None` when unreadable.
    pub read_bytes: Option<u64>,
    /// Bytes the process caused to be written to storage (`io: write_bytes`).
    pub write_bytes: Option<u64>,
    /// Resident set size in bytes (`statm` resident pages × page size).
    pub rss_bytes: u64,
}

/// Memory figures from `/proc/PID/status`, cheap enough for the slow timer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryCounters {
    /// `VmSwap` in bytes.
    pub swap_bytes: u64,
    /// `VmHWM` in bytes: the lifetime peak RSS the kernel recorded.
    pub hwm_bytes: u64,
    /// `RssAnon` in bytes: resident anonymous memory (heap, arenas, mmap'd buffers).
    pub rss_anon_bytes: u64,
    /// `RssFile` in bytes: resident file-backed pages (code, libraries, mapped files).
    pub rss_file_bytes: u64,
    /// `RssShmem` in bytes: resident shared memory (tmpfs, `SysV` shm, shared anonymous maps).
    pub rss_shmem_bytes: u64,
    /// PSS and USS from `smaps_rollup`, on the ticks it was read (see `collect::smaps`).
    pub rollup: Option<SmapsRollup>,
}

/// Figures from `/proc/PID/smaps_rollup`: costly, read on their own slow schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmapsRollup {
    /// Proportional set size: each resident page divided by the number of processes mapping it.
    pub pss_bytes: u64,
    /// Unique set size: `Private_Clean` + `Private_Dirty`, what exiting would free.
    pub uss_bytes: u64,
}

/// The kernel's scheduling state of a thread (`stat` field 3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OsState {
    /// `R`: running or runnable.
    Running,
    /// `S`: interruptible sleep.
    Sleeping,
    /// `D`: uninterruptible sleep, usually disk I/O.
    DiskSleep,
    /// `T`/`t`: stopped or traced.
    Stopped,
    /// `Z`/`X`: exiting.
    Dead,
    /// Anything else (idle kernel threads, unknown letters).
    #[default]
    Other,
}

impl OsState {
    /// Maps the letter of `/proc/.../stat` field 3.
    pub fn from_letter(letter: u8) -> Self {
        match letter {
            b'R' => Self::Running,
            b'S' => Self::Sleeping,
            b'D' => Self::DiskSleep,
            b'T' | b't' => Self::Stopped,
            b'Z' | b'X' | b'x' => Self::Dead,
            _ => Self::Other,
        }
    }

    /// The letter as `ps` shows it.
    pub fn letter(self) -> char {
        match self {
            Self::Running => 'R',
            Self::Sleeping => 'S',
            Self::DiskSleep => 'D',
            Self::Stopped => 'T',
            Self::Dead => 'Z',
            Self::Other => '?',
        }
    }
}

/// Cumulative per-thread counters from `/proc/PID/task/TID/{stat,status,io}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadCounters {
    /// Kernel scheduling state at this tick.
    pub state: OsState,
    /// Thread start time since boot in clock ticks: tells a reused tid from the thread it replaced.
    pub start_ticks: u64,
    /// utime + stime in clock ticks.
    pub cpu_ticks: u64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Major page faults.
    pub major_faults: u64,
    /// Read on the slow timer only; `None` between slow reads.
    pub slow: Option<SlowThreadCounters>,
    /// CPU time in nanoseconds from `schedstat` (precise, unlike `cpu_ticks`); `None` when
    /// the kernel has no schedstat.
    pub run_ns: Option<u64>,
    /// Time spent runnable but waiting for a CPU (run-queue wait), in nanoseconds, from
    /// `schedstat` field 2; `None` when the kernel has no schedstat.
    pub runqueue_wait_ns: Option<u64>,
    /// The thread has not been switched in nor accrued run time since the previous read and
    /// is not running now: its Python stack cannot have changed since then.
    pub not_run_since_last_read: bool,
    /// The system call the thread is blocked in (`/proc/.../syscall`), when it is not running.
    pub syscall: Option<Syscall>,
    /// `read_bytes + write_bytes` of `io`, read at this tick: on slow reads, and at every tick
    /// a thread known to do I/O ran (so its bytes meet the stack of that tick).
    pub io_bytes: Option<u64>,
    /// Whether the thread was on a CPU where its stack was read (its task clock ran), not
    /// waiting for one; `None` when not told: not runnable, or no perf events (see
    /// `collect::oncpu`). State `R` alone also holds for a thread waiting for a CPU.
    pub on_cpu: Option<bool>,
}

/// A system call a thread is blocked in: its number and first argument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Syscall {
    /// System call number (of the target's architecture).
    pub number: u64,
    /// First argument (for `futex`: the address of the futex word).
    pub arg0: u64,
}

/// System calls that move file or socket data (`x86_64` numbers): `read`, `write`, `pread64`,
/// `pwrite64`, `readv`, `writev`, `sendfile`, `fsync`, `fdatasync`, `sync`, `io_getevents`,
/// `io_submit`, `splice`, `sync_file_range`, `preadv`, `pwritev`, `syncfs`, `copy_file_range`,
/// `preadv2`, `pwritev2`, `io_uring_enter`.
#[cfg(target_arch = "x86_64")]
const IO_CALLS: &[u64] = &[
    0, 1, 17, 18, 19, 20, 40, 74, 75, 162, 208, 209, 275, 277, 295, 296, 306, 326, 327, 328, 426,
];
#[cfg(not(target_arch = "x86_64"))]
const IO_CALLS: &[u64] = &[];

/// System calls that only wait (`x86_64` numbers): `poll`, `select`, `pause`, `nanosleep`,
/// `wait4`, `rt_sigtimedwait`, `rt_sigsuspend`, `clock_nanosleep`, `epoll_wait`, `pselect6`,
/// `ppoll`, `epoll_pwait`, `epoll_pwait2`. No bytes move while a thread is in one.
#[cfg(target_arch = "x86_64")]
const WAIT_CALLS: &[u64] = &[7, 23, 34, 35, 61, 128, 130, 230, 232, 270, 271, 281, 441];
#[cfg(not(target_arch = "x86_64"))]
const WAIT_CALLS: &[u64] = &[];

impl Syscall {
    /// Whether the call reads or writes file or socket data (or waits for it to reach disk).
    pub fn is_io(self) -> bool {
        IO_CALLS.contains(&self.number)
    }

    /// Whether the call only sleeps or waits for readiness (moves no data itself).
    pub fn is_wait(self) -> bool {
        WAIT_CALLS.contains(&self.number)
    }

    /// Whether a thread blocked in this call is in interruptible sleep (`S`), never in disk
    /// sleep (`D`): `futex` and the calls that only wait sleep interruptibly.
    pub fn sleeps_interruptibly(self) -> bool {
        self.number == super::gil::SYS_FUTEX || self.is_wait()
    }
}

impl SlowThreadCounters {
    /// Bytes read and written, as credited to functions.
    pub fn io_bytes(self) -> u64 {
        self.read_bytes + self.write_bytes
    }
}

/// Per-thread counters read on the slow timer (`status` and `io` cost more than `stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlowThreadCounters {
    /// `voluntary_ctxt_switches`.
    pub voluntary_ctxsw: u64,
    /// `nonvoluntary_ctxt_switches`.
    pub involuntary_ctxsw: u64,
    /// `io: read_bytes`, 0 when unreadable.
    pub read_bytes: u64,
    /// `io: write_bytes`, 0 when unreadable.
    pub write_bytes: u64,
}

/// Whether a thread held the interpreter's GIL at this tick, as far as the interpreter says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GilState {
    /// The interpreter's GIL holder is this thread.
    Held,
    /// Blocked on the interpreter's GIL (a futex inside its GIL state): waiting for it.
    Waiting,
    /// Another thread (or none) holds it, and this one is not waiting for it (as far as
    /// can be told: see `collect::gil`).
    NotHeld,
    /// Not a Python thread, or its stack could not be read.
    #[default]
    Unknown,
}

/// What a Python thread was doing at one tick, from the interpreter and the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Activity {
    /// Holds the GIL (runs Python, or C code that keeps the GIL).
    HoldsGil,
    /// Blocked waiting for the GIL.
    WaitsGil,
    /// On CPU (or runnable) without the GIL: native code that released it.
    Native,
    /// Blocked on something else: a lock, a queue, I/O (or in disk wait).
    Blocked,
    /// Sleeping or polling: `time.sleep`, `select`, `poll`, `epoll`.
    Sleeping,
    /// Not known (no kernel counters for this tick).
    #[default]
    Unknown,
}

/// One OS thread at one tick: kernel counters joined with its Python stack, if it has one.
#[derive(Debug, Clone, Default)]
pub struct ThreadTick {
    /// OS thread id, as in `/proc/PID/task`.
    pub tid: u32,
    /// Python thread name (`threading.current_thread().name`), sanitised.
    pub name: Option<Arc<str>>,
    /// Whether this thread is a Python thread whose stack was read at this tick.
    pub is_python: bool,
    /// GIL ownership at this tick.
    pub gil: GilState,
    /// What the thread was doing (Python threads).
    pub activity: Activity,
    /// Python frames, innermost first; empty for non-Python threads. Shared: a thread that
    /// has not run since the last tick carries the very same frames (see `Arc::ptr_eq`).
    pub frames: Arc<[Frame]>,
    /// Kernel counters; `None` when the thread vanished while being read.
    pub counters: Option<ThreadCounters>,
    /// How its stack read went (Python threads).
    pub stack_read: StackRead,
    /// The asyncio task this thread's event loop runs at this tick (its id), if any.
    pub running_task: Option<u64>,
}

/// How one thread's stack read went: a walk that raced with the thread (its frames were not
/// all live at one instant) is read again; one that raced at every read is dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StackRead {
    /// Times the stack was read again at this tick.
    pub rereads: u8,
    /// Every read raced: `frames` is empty and the stack unknown (never credited).
    pub dropped: bool,
}

/// The function name of the frame put on top of the stack of a thread sampled inside the
/// cyclic garbage collector (file name empty), as `CPython`'s own sampler shows it: every view
/// and export then shows the time in collections as the function `<GC>` (docs/figures.md,
/// "Time in garbage collection").
pub const GC_FRAME: &str = "<GC>";

/// One Python frame; strings are sanitised (see `collect::sanitize`). They are shared: every
/// frame of a function holds the same names, so a frame is copied without copying text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Function name (`co_name`).
    pub name: Arc<str>,
    /// Full file name as the interpreter knows it.
    pub filename: Arc<str>,
    /// Shorter file name for display (package-relative), when one is known.
    pub short_filename: Option<Arc<str>>,
    /// Line being executed; 0 when unknown.
    pub line: u32,
    /// The function's first line (`co_firstlineno`); 0 when unknown.
    pub first_line: u32,
}
