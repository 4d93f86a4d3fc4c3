//! Deadline schedule for sampling: deadline k sits at a random point of the middle half of
//! its slot, `start + (k ± ¼) * interval`, so two deadlines are between half an interval and
//! one and a half apart. When a sample runs late, the deadlines already past are skipped and
//! counted rather than sampled back to back (py-spy's timer catches up in a busy loop under
//! load, py-spy #547, #807).
//!
//! Why random: the scheduler acts on its own clock (its tick, 4 ms at `HZ=250`; a thread's
//! slice is checked there and at system calls). Deadlines at a fixed period keep a fixed
//! phase to that clock (10 ms is 2.5 ticks), so each sample meets the threads at the same
//! point of their scheduling, and which code is on a CPU then need not be a fair sample of
//! where CPU goes. A deadline anywhere in half its slot keeps the mean rate and sees every
//! phase of a scheduler tick up to half the interval long (at 100 Hz, 5 ms against 4 ms);
//! never closer than half an interval, a paused read's threads have time to settle before
//! the next (`dump --blocking` reads their states).

use std::time::{Duration, Instant};

/// Fixed-rate schedule, each deadline at a random point of the middle half of its slot, that
/// skips missed ones.
#[derive(Debug, Clone)]
pub struct Timer {
    start: Instant,
    interval: Duration,
    next_index: u64,
    random: fastrand::Rng,
}

impl Timer {
    /// A schedule whose first deadline is `start`.
    pub fn new(start: Instant, interval: Duration) -> Self {
        Self {
            start,
            interval: interval.max(Duration::from_micros(100)),
            next_index: 0,
            random: fastrand::Rng::new(),
        }
    }

    /// The nominal interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Given the time `now`, returns the next deadline to sleep until (a random point of the
    /// middle half of its slot, see the module's doc) and how many deadlines were skipped
    /// because they are already past.
    pub fn next(&mut self, now: Instant) -> (Instant, u32) {
        let (slot, skipped) = self.next_slot(now);
        let half = self.interval.as_nanos() / 2;
        let offset = self
            .random
            .u64(0..u64::try_from(half).unwrap_or(u64::MAX).max(1));
        let deadline = (slot + Duration::from_nanos(offset))
            .checked_sub(self.interval / 4)
            .unwrap_or(slot);
        (deadline, skipped)
    }

    /// The middle of the next slot to sample, and how many slots were skipped. A slot whose
    /// middle is past by less than half an interval is still sampled (at once); one later
    /// than that is skipped, and so are all others already past, so a slow sample never
    /// causes a burst of catch-up samples.
    fn next_slot(&mut self, now: Instant) -> (Instant, u32) {
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
        assert_eq!(timer.next_slot(t0), (t0, 0));
        assert_eq!(timer.next_slot(t0 + ms / 2), (t0 + ms, 0));
        assert_eq!(timer.next_slot(t0 + ms), (t0 + 2 * ms, 0));
    }

    #[test]
    fn late_tick_skips_past_deadlines_without_bursting() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(10);
        let mut timer = Timer::new(t0, ms);
        timer.next_slot(t0);
        // The sample that started at t0 ran 35 ms: deadlines at 10, 20, 30 are past.
        let (deadline, skipped) = timer.next_slot(t0 + Duration::from_millis(35));
        assert_eq!(deadline, t0 + Duration::from_millis(40));
        assert_eq!(skipped, 3);
        // Back on schedule afterwards.
        assert_eq!(
            timer.next_slot(t0 + Duration::from_millis(41)),
            (t0 + Duration::from_millis(50), 0)
        );
        // Slightly late (2 ms of 10): sampled at once, not skipped.
        assert_eq!(
            timer.next_slot(t0 + Duration::from_millis(62)),
            (t0 + Duration::from_millis(60), 0)
        );
    }

    #[test]
    fn deadlines_fall_anywhere_in_the_middle_half_of_their_slot() {
        let now = Instant::now();
        let t0 = now + Duration::from_secs(1);
        let ms = Duration::from_millis(10);
        let mut timer = Timer::new(t0, ms);
        let mut phases = [0u32; 10];
        let mut last: Option<Instant> = None;
        for k in 0..2000u32 {
            let (deadline, skipped) = timer.next(now);
            assert_eq!(skipped, 0);
            let slot = t0 + ms * k;
            assert!(
                deadline + ms / 4 >= slot && deadline < slot + ms / 4,
                "slot {k}"
            );
            if let Some(last) = last {
                assert!(deadline.duration_since(last) >= ms / 2, "slot {k}");
            }
            last = Some(deadline);
            // Where in the middle half, in tenths: every tenth is met about as often.
            let into = (deadline + ms / 4).duration_since(slot).as_micros() / 500;
            phases[usize::try_from(into).unwrap()] += 1;
        }
        assert!(
            phases.iter().all(|&n| (120..=280).contains(&n)),
            "{phases:?}"
        );
    }
}
