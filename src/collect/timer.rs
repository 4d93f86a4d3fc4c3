//! Deadline schedule for sampling: deadlines sit at `start + k * interval`. When a sample
//! runs late, the deadlines already past are skipped and counted rather than sampled back to
//! back (py-spy's timer catches up in a busy loop under load, py-spy #547, #807).

use std::time::{Duration, Instant};

/// Fixed-rate schedule that skips missed deadlines.
#[derive(Debug, Clone)]
pub struct Timer {
    start: Instant,
    interval: Duration,
    next_index: u64,
}

impl Timer {
    /// A schedule whose first deadline is `start`.
    pub fn new(start: Instant, interval: Duration) -> Self {
        Self {
            start,
            interval: interval.max(Duration::from_micros(100)),
            next_index: 0,
        }
    }

    /// The nominal interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Given the time `now`, returns the next deadline to sleep until and how many deadlines
    /// were skipped because they are already past. A deadline late by less than half an
    /// interval is still sampled (at once); one later than that is skipped, and so are all
    /// others already past, so a slow sample never causes a burst of catch-up samples.
    pub fn next(&mut self, now: Instant) -> (Instant, u32) {
        let mut deadline = self.deadline(self.next_index);
        let mut skipped = 0u32;
        if deadline + self.interval / 2 <= now {
            let late = now.duration_since(deadline);
            let behind = (late.as_nanos() / self.interval.as_nanos()) as u64;
            // The deadline at `index + behind` is still <= now; the one after is in the future.
            let next = self.next_index + behind + 1;
            skipped = u32::try_from(next - self.next_index).unwrap_or(u32::MAX);
            self.next_index = next;
            deadline = self.deadline(self.next_index);
        }
        self.next_index += 1;
        (deadline, skipped)
    }

    fn deadline(&self, index: u64) -> Instant {
        let nanos = self.interval.as_nanos().saturating_mul(u128::from(index));
        self.start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_time_ticks_skip_nothing() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(10);
        let mut timer = Timer::new(t0, ms);
        assert_eq!(timer.next(t0), (t0, 0));
        assert_eq!(timer.next(t0 + ms / 2), (t0 + ms, 0));
        assert_eq!(timer.next(t0 + ms), (t0 + 2 * ms, 0));
    }

    #[test]
    fn late_tick_skips_past_deadlines_without_bursting() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(10);
        let mut timer = Timer::new(t0, ms);
        timer.next(t0);
        // The sample that started at t0 ran 35 ms: deadlines at 10, 20, 30 are past.
        let (deadline, skipped) = timer.next(t0 + Duration::from_millis(35));
        assert_eq!(deadline, t0 + Duration::from_millis(40));
        assert_eq!(skipped, 3);
        // Back on schedule afterwards.
        assert_eq!(
            timer.next(t0 + Duration::from_millis(41)),
            (t0 + Duration::from_millis(50), 0)
        );
        // Slightly late (2 ms of 10): sampled at once, not skipped.
        assert_eq!(
            timer.next(t0 + Duration::from_millis(62)),
            (t0 + Duration::from_millis(60), 0)
        );
    }
}
