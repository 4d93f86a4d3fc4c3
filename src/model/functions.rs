//! Function and line figures, keyed by (file, function name): memory grows with the
//! number of distinct functions and lines in the program, never with the number of samples.

use super::snapshot::Mode;
use rustc_hash::FxHashMap as HashMap;

use crate::collect::tick::Frame;

/// Sample counts under both counting rules, so a view can switch without re-sampling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Thread-samples where this was the innermost frame.
    pub own: u64,
    /// Thread-samples where this was anywhere on the stack, counted once per stack.
    pub total: u64,
}

/// What one thread-sample was.
#[derive(Debug, Clone, Copy, Default)]
pub struct SampleKind {
    /// The thread was in kernel state R.
    pub active: bool,
    /// The thread held the GIL.
    pub held: bool,
}

/// Counts among active thread-samples only, and among all thread-samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DualCounts {
    /// Active threads only (the default, as py-spy).
    pub active: Counts,
    /// Idle threads included (`--idle`).
    pub all: Counts,
    /// Samples whose thread held the GIL (`--mode gil`).
    pub gil: Counts,
}

impl DualCounts {
    /// The counts under the chosen rule.
    pub fn pick(&self, include_idle: bool) -> Counts {
        if include_idle {
            self.all
        } else {
            self.active
        }
    }

    /// The counts `mode` asks for (`include_idle` for the sample modes).
    pub fn pick_for(&self, mode: Mode, include_idle: bool) -> Counts {
        match mode {
            Mode::Gil => self.gil,
            Mode::Wall => self.all,
            Mode::Cpu | Mode::Samples => self.pick(include_idle),
        }
    }

    /// Counts one thread-sample of `kind`: `own` if innermost, `total` if first on this stack.
    pub fn add(&mut self, own: bool, total: bool, kind: SampleKind) {
        for (counts, on) in [
            (&mut self.all, true),
            (&mut self.active, kind.active),
            (&mut self.gil, kind.held),
        ] {
            if on {
                counts.own += u64::from(own);
                counts.total += u64::from(total);
            }
        }
    }
}

/// Kernel counter deltas credited to a function (see `attribution`); serialised as the JSON
/// report's counters (`cpu_s`, `minor_faults`, ... `io_bytes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Credited {
    /// CPU seconds (utime + stime).
    pub cpu_s: f64,
    /// Minor page faults.
    pub minor_faults: f64,
    /// Major page faults.
    pub major_faults: f64,
    /// Voluntary context switches.
    pub voluntary_ctxsw: f64,
    /// Involuntary context switches.
    pub involuntary_ctxsw: f64,
    /// Bytes read from plus written to storage.
    pub io_bytes: f64,
}

impl Credited {
    /// Adds `other` scaled by `share`.
    pub fn add_scaled(&mut self, other: &Credited, share: f64) {
        self.cpu_s += other.cpu_s * share;
        self.minor_faults += other.minor_faults * share;
        self.major_faults += other.major_faults * share;
        self.voluntary_ctxsw += other.voluntary_ctxsw * share;
        self.involuntary_ctxsw += other.involuntary_ctxsw * share;
        self.io_bytes += other.io_bytes * share;
    }

    /// What `self` has beyond `before` (each counter at least 0).
    #[must_use]
    pub fn minus(&self, before: &Credited) -> Credited {
        let d = |a: f64, b: f64| (a - b).max(0.0);
        Credited {
            cpu_s: d(self.cpu_s, before.cpu_s),
            minor_faults: d(self.minor_faults, before.minor_faults),
            major_faults: d(self.major_faults, before.major_faults),
            voluntary_ctxsw: d(self.voluntary_ctxsw, before.voluntary_ctxsw),
            involuntary_ctxsw: d(self.involuntary_ctxsw, before.involuntary_ctxsw),
            io_bytes: d(self.io_bytes, before.io_bytes),
        }
    }

    /// Whether any counter is above 0.
    pub fn any(&self) -> bool {
        Counter::ALL.iter().any(|c| c.of(self) > 0.0)
    }
}

/// One of the counters credited to functions, in display order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Counter {
    /// CPU seconds.
    #[default]
    Cpu,
    /// Minor page faults.
    MinorFaults,
    /// Major page faults.
    MajorFaults,
    /// Voluntary context switches.
    VoluntaryCtxsw,
    /// Involuntary context switches.
    InvoluntaryCtxsw,
    /// Bytes read from and written to storage.
    Io,
}

impl Counter {
    /// Every counter, in display order.
    pub const ALL: [Counter; 6] = [
        Self::Cpu,
        Self::MinorFaults,
        Self::MajorFaults,
        Self::VoluntaryCtxsw,
        Self::InvoluntaryCtxsw,
        Self::Io,
    ];

    /// Its name on the command line (`--weight`).
    pub fn arg_name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::MinorFaults => "minor-faults",
            Self::MajorFaults => "major-faults",
            Self::VoluntaryCtxsw => "vcsw",
            Self::InvoluntaryCtxsw => "icsw",
            Self::Io => "io",
        }
    }

    /// This counter's value in `c` (CPU in seconds, I/O in bytes).
    pub fn of(self, c: &Credited) -> f64 {
        match self {
            Self::Cpu => c.cpu_s,
            Self::MinorFaults => c.minor_faults,
            Self::MajorFaults => c.major_faults,
            Self::VoluntaryCtxsw => c.voluntary_ctxsw,
            Self::InvoluntaryCtxsw => c.involuntary_ctxsw,
            Self::Io => c.io_bytes,
        }
    }
}

/// One line's figures.
#[derive(Debug, Clone, Default)]
pub struct LineStats {
    /// Sample counts.
    pub counts: DualCounts,
    /// Counters credited while this line was the innermost frame.
    pub credited: Credited,
    /// Counters credited while this line was anywhere on the stack (once per stack).
    pub credited_total: Credited,
    last_stamp: u64,
}

/// One function's figures.
#[derive(Debug, Clone, Default)]
pub struct FunctionStats {
    /// Function name.
    pub name: String,
    /// Full file name.
    pub filename: String,
    /// Short file name for display.
    pub short_filename: Option<String>,
    /// Its first line (`co_firstlineno`, of the first code object seen under this name and
    /// file); 0 when unknown.
    pub first_line: u32,
    /// Sample counts.
    pub counts: DualCounts,
    /// Counters credited while this function was the innermost frame.
    pub credited: Credited,
    /// Counters credited while this function was anywhere on the stack (once per stack).
    pub credited_total: Credited,
    /// Samples in which it was the GIL holder's innermost function while another thread
    /// waited for the GIL ("who starves whom").
    pub held_while_waited: u64,
    /// Per line.
    pub lines: HashMap<u32, LineStats>,
    last_stamp: u64,
}

/// What `FunctionTable::add_stack` reports of one stack, in buffers reused across calls.
#[derive(Debug, Clone, Default)]
pub struct StackIds {
    /// The whole stack's entry (see [`FunctionTable::stacks`]): given back with an unchanged
    /// stack, it spares looking the stack up again.
    pub slot: Option<usize>,
    /// Each function on the stack once, with whether it was the innermost frame.
    pub on_stack: Vec<(FunctionId, bool)>,
    /// The stack as (function, line), innermost first.
    pub frames: Vec<(FunctionId, u32)>,
}

/// Index of a function in its table.
pub type FunctionId = usize;

/// A thread's previous stack: its frames and their (function, line) pairs.
pub type StackBefore<'a> = (&'a [Frame], &'a [(FunctionId, u32)]);

/// How many outermost frames of `frames` are those of `before` (whose ids are `ids`): the
/// same names by pointer (so the same function) and the same line.
fn shared_outer_frames(frames: &[Frame], before: &[Frame], ids: &[(FunctionId, u32)]) -> usize {
    if ids.len() != before.len() {
        return 0;
    }
    frames
        .iter()
        .rev()
        .zip(before.iter().rev())
        .take_while(|(now, was)| {
            now.line == was.line
                && std::sync::Arc::ptr_eq(&now.name, &was.name)
                && std::sync::Arc::ptr_eq(&now.filename, &was.filename)
        })
        .count()
}

/// Samples in which one function called another (adjacent frames), once per stack.
#[derive(Debug, Clone, Default)]
pub struct EdgeStats {
    /// Sample counts (`total` is the one that means something for an edge).
    pub counts: DualCounts,
    last_stamp: u64,
}

/// Distinct functions a session keeps apart. Code that makes fresh function names (templates,
/// exec'd code, per-request handlers) would otherwise grow hptop without end; past this, a
/// function first seen later is counted in the one [`OTHER_FUNCTIONS`] row, so every total
/// stays exact. A function costs ~3.5 KB of hptop's memory all told (its lines, call edges
/// and counters in the model, its rows while a report is built): measured 56 MB peak at 14,000
/// functions, so this keeps hptop under 64 MB (`tests/integration/bounded.rs`).
pub const MAX_FUNCTIONS: usize = 10_000;
/// Name of the row that counts functions past [`MAX_FUNCTIONS`].
pub const OTHER_FUNCTIONS: &str = "(other functions)";

/// Distinct (thread, stack) pairs kept apart for flame graphs; later ones count in one
/// `(other stacks)` stack per thread, so every total stays exact.
pub const MAX_STACKS: usize = 20_000;

/// One whole stack of one thread: its samples and the counters credited to it.
#[derive(Debug, Clone, Default)]
pub struct StackStats {
    /// Samples with exactly this stack (innermost function's "own" counts).
    pub counts: DualCounts,
    /// Counter deltas credited to this stack.
    pub credited: Credited,
}

/// A stack as flame graphs take it: the thread's tid, then its frames innermost first as
/// function and sampled line, flattened (none: the `(other stacks)` of that thread). One
/// boxed slice, so a lookup borrows the key being built and allocates nothing.
pub type StackKey = Box<[usize]>;

/// All functions seen, interned by (file, name).
#[derive(Debug, Clone, Default)]
pub struct FunctionTable {
    /// The thread (tid) the stacks counted and credited next belong to: whole stacks are kept
    /// per thread, which is their root in flame graphs.
    pub thread_root: u32,
    /// Whole stacks, by key, as indexes into `stack_stats`.
    stacks: HashMap<StackKey, usize>,
    stack_stats: Vec<(StackKey, StackStats)>,
    stack_key: Vec<FunctionId>,
    ids: HashMap<String, FunctionId>,
    /// Distinct functions kept apart (0: [`MAX_FUNCTIONS`]).
    budget: usize,
    /// The id of the [`OTHER_FUNCTIONS`] row, once made.
    other: Option<FunctionId>,
    /// The id of the `<GC>` row, once seen (see `collect::tick::GC_FRAME`).
    gc: Option<FunctionId>,
    functions: Vec<FunctionStats>,
    /// (caller, callee) -> samples with that call on the stack.
    edges: HashMap<(FunctionId, FunctionId), EdgeStats>,
    key_buf: String,
    stamp: u64,
}

impl FunctionTable {
    /// A table that keeps at most `budget` functions apart (tests use small ones).
    pub fn with_budget(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// The function id for `frame`, interning it on first sight (past the budget, the id of
    /// the [`OTHER_FUNCTIONS`] row).
    pub fn intern(&mut self, frame: &Frame) -> FunctionId {
        self.key_buf.clear();
        self.key_buf.push_str(&frame.filename);
        self.key_buf.push('\0');
        self.key_buf.push_str(&frame.name);
        if let Some(&id) = self.ids.get(self.key_buf.as_str()) {
            return id;
        }
        let budget = if self.budget == 0 {
            MAX_FUNCTIONS
        } else {
            self.budget
        };
        // `<GC>` is always kept apart: GC time is a figure of its own.
        let gc = frame.filename.is_empty() && &*frame.name == crate::collect::tick::GC_FRAME;
        if self.ids.len() >= budget && !gc {
            return self.other_id();
        }
        let id = self.functions.len();
        self.ids.insert(self.key_buf.clone(), id);
        if gc {
            self.gc = Some(id);
        }
        self.functions.push(FunctionStats {
            name: frame.name.to_string(),
            filename: frame.filename.to_string(),
            short_filename: frame.short_filename.as_deref().map(str::to_owned),
            first_line: frame.first_line,
            ..FunctionStats::default()
        });
        id
    }

    fn other_id(&mut self) -> FunctionId {
        if let Some(id) = self.other {
            return id;
        }
        let id = self.functions.len();
        self.functions.push(FunctionStats {
            name: OTHER_FUNCTIONS.into(),
            ..FunctionStats::default()
        });
        self.other = Some(id);
        id
    }

    /// Counts one thread-sample with `frames` (innermost first). `active` says whether the
    /// thread was on CPU. `before` is the thread's previous stack and its (function, line)
    /// pairs, if known. Returns the id of the innermost function, if any; `out` receives
    /// each function on the stack once (with whether it was the innermost) and the stack as
    /// (function, line) pairs.
    pub fn add_stack(
        &mut self,
        frames: &[Frame],
        before: Option<StackBefore<'_>>,
        active: bool,
        held: bool,
        out: &mut StackIds,
    ) -> Option<FunctionId> {
        // The outer frames a stack shares with the thread's previous one (the very same names,
        // by pointer) keep their ids: a deep stack whose innermost frames moved is not looked
        // up again whole.
        let shared = before.map_or(0, |(frames_before, ids)| {
            shared_outer_frames(frames, frames_before, ids)
        });
        let fresh = frames.len() - shared;
        out.frames.clear();
        for frame in &frames[..fresh] {
            let id = self.intern(frame);
            out.frames.push((id, frame.line));
        }
        if let Some((_, ids)) = before {
            out.frames.extend_from_slice(&ids[ids.len() - shared..]);
        }
        self.count_stack(active, held, out)
    }

    /// [`Self::add_stack`] for a stack already interned (innermost first, as (function,
    /// line)): a thread whose frames did not change since its last sample.
    pub fn add_interned_stack(
        &mut self,
        stack: &[(FunctionId, u32)],
        active: bool,
        held: bool,
        out: &mut StackIds,
    ) -> Option<FunctionId> {
        out.frames.clear();
        out.frames.extend_from_slice(stack);
        self.count_stack(active, held, out)
    }

    /// Counts the stack in `out.frames` and fills `out.on_stack`.
    fn count_stack(&mut self, active: bool, held: bool, out: &mut StackIds) -> Option<FunctionId> {
        out.on_stack.clear();
        // A stamp per thread-sample lets recursion count once in `total` without a set.
        self.stamp += 1;
        let stamp = self.stamp;
        let mut innermost = None;
        let mut callee: Option<FunctionId> = None;
        let kind = SampleKind { active, held };
        for (depth, &(id, line)) in out.frames.iter().enumerate() {
            if let Some(callee) = callee.replace(id) {
                let edge = self.edges.entry((id, callee)).or_default();
                let first = edge.last_stamp != stamp;
                edge.last_stamp = stamp;
                edge.counts.add(false, first, kind);
            }
            let own = depth == 0;
            if own {
                innermost = Some(id);
            }
            let f = &mut self.functions[id];
            let first_in_stack = f.last_stamp != stamp;
            f.last_stamp = stamp;
            f.counts.add(own, first_in_stack, kind);
            if first_in_stack {
                out.on_stack.push((id, own));
            }
            let line = f.lines.entry(line).or_default();
            let line_first = line.last_stamp != stamp;
            line.last_stamp = stamp;
            line.counts.add(own, line_first, kind);
        }
        if !out.frames.is_empty() {
            // The caller's slot is this stack's while its frames are unchanged.
            let slot = match out.slot.filter(|&i| i < self.stack_stats.len()) {
                Some(i) => i,
                None => self.whole_stack_slot(&out.frames),
            };
            self.stack_stats[slot].1.counts.add(true, true, kind);
            out.slot = Some(slot);
        }
        innermost
    }

    /// The entry of the current thread's whole `stack` (past [`MAX_STACKS`], its thread's
    /// `(other stacks)` entry).
    fn whole_stack(&mut self, stack: &[(FunctionId, u32)]) -> &mut StackStats {
        let slot = self.whole_stack_slot(stack);
        &mut self.stack_stats[slot].1
    }

    /// The index in `stack_stats` of the current thread's whole `stack` (made on first sight).
    fn whole_stack_slot(&mut self, stack: &[(FunctionId, u32)]) -> usize {
        self.stack_key.clear();
        self.stack_key.push(self.thread_root as usize);
        self.stack_key
            .extend(stack.iter().flat_map(|&(id, line)| [id, line as usize]));
        if !self.stacks.contains_key(self.stack_key.as_slice()) && self.stacks.len() >= MAX_STACKS {
            self.stack_key.truncate(1);
        }
        if let Some(&i) = self.stacks.get(self.stack_key.as_slice()) {
            return i;
        }
        let key: StackKey = self.stack_key.as_slice().into();
        self.stacks.insert(key.clone(), self.stack_stats.len());
        self.stack_stats.push((key, StackStats::default()));
        self.stack_stats.len() - 1
    }

    /// Whole stacks: (tid, frames innermost first as function and sampled line, figures).
    pub fn stacks(
        &self,
    ) -> impl Iterator<
        Item = (
            u32,
            impl DoubleEndedIterator<Item = (FunctionId, u32)> + '_,
            &StackStats,
        ),
    > {
        self.stack_stats.iter().filter_map(|(key, stats)| {
            let frames = key[1..].chunks_exact(2).map(|f| (f[0], f[1] as u32));
            Some((*key.first()? as u32, frames, stats))
        })
    }

    /// Counts one sample in which `id` ran in the GIL holder while others waited for the GIL.
    pub fn credit_gil_hold(&mut self, id: FunctionId) {
        if let Some(f) = self.functions.get_mut(id) {
            f.held_while_waited += 1;
        }
    }

    /// Credits counter deltas to a stack (innermost first, as (function, line)): all of it to
    /// the innermost function and line (`credited`), and to each function and line on the
    /// stack once (`credited_total`), so recursion does not count twice.
    pub fn credit_stack(&mut self, stack: &[(FunctionId, u32)], credited: &Credited, share: f64) {
        let Some(&(innermost, innermost_line)) = stack.first() else {
            return;
        };
        self.whole_stack(stack).credited.add_scaled(credited, share);
        self.stamp += 1;
        let stamp = self.stamp;
        if let Some(f) = self.functions.get_mut(innermost) {
            f.credited.add_scaled(credited, share);
            f.lines
                .entry(innermost_line)
                .or_default()
                .credited
                .add_scaled(credited, share);
        }
        for &(id, line) in stack {
            let Some(f) = self.functions.get_mut(id) else {
                continue;
            };
            if f.last_stamp != stamp {
                f.last_stamp = stamp;
                f.credited_total.add_scaled(credited, share);
            }
            let l = f.lines.entry(line).or_default();
            if l.last_stamp != stamp {
                l.last_stamp = stamp;
                l.credited_total.add_scaled(credited, share);
            }
        }
    }

    /// The id of the function in `filename` named `name`, if seen.
    pub fn id(&self, filename: &str, name: &str) -> Option<FunctionId> {
        self.ids.get(&format!("{filename}\0{name}")).copied()
    }

    /// Call edges: ((caller, callee), stats).
    pub fn edges(&self) -> impl Iterator<Item = (&(FunctionId, FunctionId), &EdgeStats)> {
        self.edges.iter()
    }

    /// The frame a (function, line) pair stands for.
    pub fn frame(&self, id: FunctionId, line: u32) -> Option<Frame> {
        let f = self.functions.get(id)?;
        Some(Frame {
            name: f.name.as_str().into(),
            filename: f.filename.as_str().into(),
            short_filename: f.short_filename.as_deref().map(std::sync::Arc::from),
            line,
            first_line: f.first_line,
        })
    }

    /// All functions, in first-seen order.
    pub fn all(&self) -> &[FunctionStats] {
        &self.functions
    }

    /// The id of the `<GC>` function (time in garbage collection), once it was seen.
    pub fn gc_id(&self) -> Option<FunctionId> {
        self.gc
    }

    /// Whether `stack` (innermost first) was sampled inside a garbage collection.
    pub fn is_gc_stack(&self, stack: &[(FunctionId, u32)]) -> bool {
        self.gc.is_some() && stack.first().map(|&(id, _)| id) == self.gc
    }

    /// Number of distinct functions.
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    /// Whether no function was seen.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> Frame {
        Frame {
            name: name.into(),
            filename: "gen.py".into(),
            short_filename: None,
            line: 1,
            first_line: 1,
        }
    }

    #[test]
    fn outer_frames_shared_with_the_last_stack_keep_their_ids_and_counts() {
        let mut table = FunctionTable::default();
        let mut out = StackIds::default();
        let (main, descend) = (frame("main"), frame("descend"));
        let at = |f: &Frame, line| Frame { line, ..f.clone() };
        // A 3-deep recursion whose innermost line moves; its outer frames are the same names.
        let first = vec![
            at(&frame("leaf"), 5),
            descend.clone(),
            descend.clone(),
            main.clone(),
        ];
        table.add_stack(&first, None, true, false, &mut out);
        let ids = out.frames.clone();
        let second = vec![
            at(&first[0], 6),
            descend.clone(),
            descend.clone(),
            main.clone(),
        ];
        table.add_stack(&second, Some((&first, &ids)), true, false, &mut out);
        assert_eq!(out.frames[1..], ids[1..], "outer frames keep their ids");
        // A new innermost function on the same outer frames; then equal names that are not
        // shared (as from another reader): interned afresh, counted the same.
        let third = vec![frame("other"), descend.clone(), main.clone()];
        let ids = out.frames.clone();
        table.add_stack(&third, Some((&second, &ids)), true, false, &mut out);
        let fourth = vec![frame("leaf"), frame("descend"), frame("main")];
        let ids = out.frames.clone();
        table.add_stack(&fourth, Some((&third, &ids)), true, false, &mut out);
        let row = |name: &str| table.all().iter().find(|f| f.name == name).unwrap();
        assert_eq!(table.len(), 4);
        assert_eq!(row("main").counts.active.total, 4);
        assert_eq!(
            row("descend").counts.active.total,
            4,
            "recursion counts once per stack"
        );
        assert_eq!(row("leaf").counts.active.own, 3);
        assert_eq!(row("other").counts.active.own, 1);
        let lines: Vec<u32> = {
            let mut l: Vec<u32> = row("leaf").lines.keys().copied().collect();
            l.sort_unstable();
            l
        };
        assert_eq!(lines, vec![1, 5, 6]);
    }

    #[test]
    fn functions_past_the_budget_fold_into_one_row_and_totals_stay_exact() {
        fn row<'a>(table: &'a FunctionTable, name: &str) -> &'a FunctionStats {
            table.all().iter().find(|f| f.name == name).unwrap()
        }
        let mut table = FunctionTable::with_budget(3);
        let mut out = StackIds::default();
        for i in 0..10 {
            // A fresh name every sample, called from one `main`.
            table.add_stack(
                &[frame(&format!("gen_{i}")), frame("main")],
                None,
                true,
                false,
                &mut out,
            );
        }
        // main + gen_0 + gen_1 kept apart; gen_2..gen_9 in the other row.
        assert_eq!(table.len(), 4);
        assert!(table.all().iter().any(|f| f.name == OTHER_FUNCTIONS));
        assert_eq!(row(&table, "main").counts.active.total, 10);
        assert_eq!(row(&table, "gen_0").counts.active.own, 1);
        assert_eq!(row(&table, OTHER_FUNCTIONS).counts.active.own, 8);
        let own: u64 = table.all().iter().map(|f| f.counts.active.own).sum();
        assert_eq!(own, 10, "every sample counted once as own");
        // A function kept apart stays itself after the budget is reached.
        table.add_stack(&[frame("gen_1")], None, true, false, &mut out);
        assert_eq!(row(&table, "gen_1").counts.active.own, 2);
    }
}
