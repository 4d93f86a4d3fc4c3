//! Process figures over time, one point per second, in a ring buffer of fixed capacity.

use std::collections::VecDeque;
use std::time::Duration;

use crate::collect::tick::MemoryCounters;

/// One second of process figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimelinePoint {
    /// Start of the second, since the session started.
    pub at: Duration,
    /// CPU use over the second; 100 = one core busy.
    pub cpu_percent: f64,
    /// RSS at the last read in the second (0 when none was read in it).
    pub rss_bytes: u64,
    /// Minor faults per second.
    pub minor_faults_per_s: f64,
    /// Major faults per second.
    pub major_faults_per_s: f64,
    /// Share of the second's stack samples in which some thread held the GIL, in percent.
    pub gil_held_percent: f64,
    /// Context switches (voluntary + involuntary, all threads) per second.
    pub ctxsw_per_s: f64,
    /// Share of the second's stack samples in which some thread waited for the GIL, in percent.
    pub gil_wanted_percent: f64,
    /// RSS split (`RssAnon`, `RssFile`, `RssShmem`) and swap at the last read in the second
    /// (0 when none was read in it).
    pub memory: MemorySplit,
}

/// Where the resident memory is, and what is swapped out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemorySplit {
    /// Resident anonymous memory.
    pub anon_bytes: u64,
    /// Resident file-backed pages.
    pub file_bytes: u64,
    /// Resident shared memory.
    pub shmem_bytes: u64,
    /// Swapped out.
    pub swap_bytes: u64,
}

impl From<&MemoryCounters> for MemorySplit {
    fn from(m: &MemoryCounters) -> Self {
        Self {
            anon_bytes: m.rss_anon_bytes,
            file_bytes: m.rss_file_bytes,
            shmem_bytes: m.rss_shmem_bytes,
            swap_bytes: m.swap_bytes,
        }
    }
}

/// Per-second inputs accumulated until the second ends.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: u64,
    cpu_ticks: u64,
    minor_faults: u64,
    major_faults: u64,
    rss_bytes: u64,
    memory: MemorySplit,
    stack_ticks: u64,
    gil_ticks: u64,
    gil_wanted_ticks: u64,
    span: Duration,
    switches: u64,
}

/// Seconds kept: one hour.
pub const TIMELINE_CAPACITY: usize = 3600;

/// Ring buffer of the last [`TIMELINE_CAPACITY`] seconds.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    points: VecDeque<TimelinePoint>,
    bucket: Option<Bucket>,
}

/// What one tick adds to the timeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimelineInput {
    /// Tick time.
    pub at: Duration,
    /// Time since the previous tick.
    pub span: Duration,
    /// Process CPU ticks since the previous tick.
    pub cpu_ticks: u64,
    /// Minor faults since the previous tick.
    pub minor_faults: u64,
    /// Major faults since the previous tick.
    pub major_faults: u64,
    /// RSS now, when read at this tick.
    pub rss_bytes: Option<u64>,
    /// Memory split now, when read at this tick.
    pub memory: Option<MemorySplit>,
    /// Context switches read at this tick (0 between slow reads).
    pub switches: u64,
    /// Stacks were read at this tick.
    pub stacks_ok: bool,
    /// Some thread held the GIL at this tick.
    pub gil_held: bool,
    /// Some thread waited for the GIL at this tick.
    pub gil_wanted: bool,
}

impl Timeline {
    /// Adds one tick; closes the current second when the tick belongs to a later one.
    pub fn push(&mut self, input: TimelineInput) {
        let second = input.at.as_secs();
        if self.bucket.is_some_and(|b| b.second != second) {
            self.close();
        }
        let bucket = self.bucket.get_or_insert(Bucket {
            second,
            ..Bucket::default()
        });
        bucket.cpu_ticks += input.cpu_ticks;
        bucket.minor_faults += input.minor_faults;
        bucket.major_faults += input.major_faults;
        if let Some(rss) = input.rss_bytes {
            bucket.rss_bytes = rss;
        }
        if let Some(memory) = input.memory {
            bucket.memory = memory;
        }
        bucket.stack_ticks += u64::from(input.stacks_ok);
        bucket.gil_ticks += u64::from(input.stacks_ok && input.gil_held);
        bucket.gil_wanted_ticks += u64::from(input.stacks_ok && input.gil_wanted);
        bucket.span += input.span;
        // Switches come with the slow reads, as the process counters do: the same span.
        bucket.switches += input.switches;
    }

    fn close(&mut self) {
        let Some(b) = self.bucket.take() else { return };
        let span_s = b.span.as_secs_f64();
        let per_s = |n: u64| if span_s > 0.0 { n as f64 / span_s } else { 0.0 };
        self.points.push_back(TimelinePoint {
            at: Duration::from_secs(b.second),
            cpu_percent: per_s(b.cpu_ticks) / crate::collect::procfs::TICKS_PER_S as f64 * 100.0,
            rss_bytes: b.rss_bytes,
            memory: b.memory,
            minor_faults_per_s: per_s(b.minor_faults),
            major_faults_per_s: per_s(b.major_faults),
            ctxsw_per_s: per_s(b.switches),
            gil_wanted_percent: if b.stack_ticks > 0 {
                b.gil_wanted_ticks as f64 * 100.0 / b.stack_ticks as f64
            } else {
                0.0
            },
            gil_held_percent: if b.stack_ticks > 0 {
                b.gil_ticks as f64 * 100.0 / b.stack_ticks as f64
            } else {
                0.0
            },
        });
        if self.points.len() > TIMELINE_CAPACITY {
            self.points.pop_front();
        }
    }

    /// Completed seconds, oldest first.
    pub fn points(&self) -> impl Iterator<Item = &TimelinePoint> {
        self.points.iter()
    }

    /// Number of completed seconds kept.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no second has completed.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}
