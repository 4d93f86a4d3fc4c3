//! When to read `/proc/PID/smaps_rollup` (PSS, USS). The kernel walks the target's page
//! tables under its memory-map lock to answer, ~10 ms per GiB of RSS (FIELD-NOTES): a page
//! fault or `mmap` in the target waits meanwhile. So it is never read at the sample rate:
//! every [`BASE_EVERY`] up to 1 GiB of RSS, then one more `BASE_EVERY` per GiB (the lock is
//! held for at most ~1 ms per second of the target's life), and never above [`MAX_RSS`].

use std::time::{Duration, Instant};

/// Interval between reads for a process of up to 1 GiB.
pub const BASE_EVERY: Duration = Duration::from_secs(10);
/// Above this RSS, PSS and USS are not read at all (one read would hold the lock ~0.3 s).
pub const MAX_RSS: u64 = 32 << 30;
const GIB: u64 = 1 << 30;

/// The next time `smaps_rollup` may be read.
#[derive(Debug, Default)]
pub struct SmapsSchedule {
    next: Option<Instant>,
    reads: u32,
}

/// After the read at attach, two more while a just-started target settles (its first read
/// may see the interpreter before it loaded anything): 1 s and 3 s in.
const SETTLING: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

impl SmapsSchedule {
    /// Whether to read now, for a process of `rss_bytes`; if so, sets the next time.
    pub fn due(&mut self, now: Instant, rss_bytes: u64) -> bool {
        if rss_bytes > MAX_RSS || self.next.is_some_and(|next| now < next) {
            return false;
        }
        let wait = SETTLING
            .get(self.reads as usize)
            .copied()
            .unwrap_or_else(|| interval(rss_bytes));
        self.reads = self.reads.saturating_add(1);
        self.next = Some(now + wait);
        true
    }
}

/// Time between reads for a process of `rss_bytes`.
pub fn interval(rss_bytes: u64) -> Duration {
    let gib = u32::try_from(rss_bytes.div_ceil(GIB))
        .unwrap_or(u32::MAX)
        .max(1);
    BASE_EVERY * gib
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rarer_for_larger_processes_and_never_for_huge_ones() {
        assert_eq!(interval(200 << 20), BASE_EVERY);
        assert_eq!(interval(3 << 30), BASE_EVERY * 3);
        let t0 = Instant::now();
        let mut s = SmapsSchedule::default();
        let at = |secs| t0 + Duration::from_secs(secs);
        // At attach, then 1 s and 3 s in while the target settles, then every 10 s.
        assert!(s.due(at(0), 100 << 20));
        assert!(!s.due(at(0), 100 << 20));
        assert!(s.due(at(1), 100 << 20));
        assert!(!s.due(at(2), 100 << 20));
        assert!(s.due(at(3), 100 << 20));
        assert!(!s.due(at(12), 100 << 20));
        assert!(s.due(at(13), 100 << 20));
        let mut huge = SmapsSchedule::default();
        assert!(!huge.due(t0, MAX_RSS + 1));
    }
}
