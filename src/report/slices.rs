//! Whole stacks per time slice, for outputs with a timeline (speedscope's "Time Order"): the
//! model's stack table is cumulative, so each slice is the difference between two snapshots
//! of it, taken about once a second of the window.

use std::collections::HashMap;
use std::time::Duration;

use crate::model::functions::Credited;
use crate::model::snapshot::{Snapshot, StackRow};

/// Longest a timeline gets: past this many slices, neighbours are merged (and the slice
/// length doubled), so a report of days stays small.
pub const MAX_SLICES: usize = 3600;

/// One stack's share of one slice.
#[derive(Debug, Clone, Copy)]
pub struct SliceEntry {
    /// Index into [`StackSlices::stacks`].
    pub stack: usize,
    /// Samples in the slice.
    pub samples: u64,
    /// Counters credited in the slice.
    pub credited: Credited,
}

/// A stack's identity across snapshots: pid, tid, (function, file, line sampled) root first
/// (the model keeps a stack per line of each frame).
type StackKey = (u32, u32, Vec<(String, String, u32)>);

/// Stacks by time slice.
#[derive(Debug, Default)]
pub struct StackSlices {
    /// Slice length.
    slice: Duration,
    /// When the next slice ends (recording or session time).
    next_at: Option<Duration>,
    /// Every stack seen: (pid, the stack with the counts it had at the last slice).
    stacks: Vec<(u32, StackRow)>,
    ids: HashMap<StackKey, usize>,
    slices: Vec<Vec<SliceEntry>>,
}

impl StackSlices {
    /// An empty timeline of 1 s slices.
    pub fn new() -> Self {
        Self {
            slice: Duration::from_secs(1),
            ..Self::default()
        }
    }

    /// Whether a slice ends at `at` (time since the session or recording started).
    pub fn due(&mut self, at: Duration) -> bool {
        match self.next_at {
            None => {
                self.next_at = Some(at + self.slice);
                false
            }
            Some(next) => at >= next,
        }
    }

    /// Ends a slice at `at` (the last one: `None`) with the stacks of `snapshot`
    /// (cumulative, as the model keeps them).
    pub fn take(&mut self, at: Option<Duration>, snapshot: &Snapshot) {
        if let Some(at) = at {
            self.next_at = Some(at + self.slice);
        }
        let mut entries = Vec::new();
        for p in &snapshot.processes {
            for row in &p.stacks {
                let key = (
                    p.pid,
                    row.tid,
                    row.frames
                        .iter()
                        .map(|f| (f.name.clone(), f.file.clone(), f.sampled_line))
                        .collect::<Vec<_>>(),
                );
                let index = *self.ids.entry(key).or_insert_with(|| {
                    let mut seen = row.clone();
                    seen.samples = 0;
                    seen.credited = Credited::default();
                    self.stacks.push((p.pid, seen));
                    self.stacks.len() - 1
                });
                let before = &mut self.stacks[index].1;
                let samples = row.samples.saturating_sub(before.samples);
                let credited = row.credited.minus(&before.credited);
                before.samples = row.samples;
                before.credited = row.credited;
                if samples > 0 || credited.any() {
                    entries.push(SliceEntry {
                        stack: index,
                        samples,
                        credited,
                    });
                }
            }
        }
        self.slices.push(entries);
        if self.slices.len() > MAX_SLICES {
            self.halve();
        }
    }

    /// Merges neighbouring slices: half as many, twice as long.
    fn halve(&mut self) {
        let old = std::mem::take(&mut self.slices);
        for pair in old.chunks(2) {
            let mut merged: HashMap<usize, SliceEntry> = HashMap::new();
            for e in pair.iter().flatten() {
                merged
                    .entry(e.stack)
                    .and_modify(|m| {
                        m.samples += e.samples;
                        m.credited.add_scaled(&e.credited, 1.0);
                    })
                    .or_insert(*e);
            }
            let mut entries: Vec<SliceEntry> = merged.into_values().collect();
            entries.sort_by_key(|e| e.stack);
            self.slices.push(entries);
        }
        self.slice *= 2;
    }

    /// Forgets the timeline (a report period starts afresh with the model).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Every stack seen: (pid, stack).
    pub fn stacks(&self) -> &[(u32, StackRow)] {
        &self.stacks
    }

    /// The slices, oldest first.
    pub fn slices(&self) -> &[Vec<SliceEntry>] {
        &self.slices
    }

    /// Length of one slice.
    pub fn slice_length(&self) -> Duration {
        self.slice
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::{ProcessSnapshot, StackFrame};

    fn cumulative(a: u64, b: u64) -> Snapshot {
        let row = |name: &str, samples| StackRow {
            tid: 7,
            frames: vec![StackFrame {
                name: name.into(),
                ..StackFrame::default()
            }],
            samples,
            ..StackRow::default()
        };
        Snapshot {
            processes: vec![ProcessSnapshot {
                pid: 1,
                stacks: vec![row("a", a), row("b", b)],
                ..ProcessSnapshot::default()
            }],
        }
    }

    #[test]
    fn slices_hold_differences_and_merging_keeps_every_sample() {
        let mut s = StackSlices::new();
        assert!(!s.due(Duration::ZERO));
        assert!(s.due(Duration::from_secs(1)));
        s.take(Some(Duration::from_secs(1)), &cumulative(5, 0));
        s.take(Some(Duration::from_secs(2)), &cumulative(5, 3));
        s.take(None, &cumulative(9, 3));
        let samples = |s: &StackSlices| -> Vec<Vec<(usize, u64)>> {
            s.slices()
                .iter()
                .map(|e| e.iter().map(|e| (e.stack, e.samples)).collect())
                .collect()
        };
        assert_eq!(samples(&s), [vec![(0, 5)], vec![(1, 3)], vec![(0, 4)]]);
        for n in 0..MAX_SLICES as u64 {
            s.take(None, &cumulative(10 + n, 3 + n));
        }
        assert!(s.slices().len() <= MAX_SLICES);
        assert_eq!(s.slice_length(), Duration::from_secs(2));
        let total: u64 = s.slices().iter().flatten().map(|e| e.samples).sum();
        assert_eq!(
            total,
            (10 + MAX_SLICES as u64 - 1) + (3 + MAX_SLICES as u64 - 1)
        );
    }
}
