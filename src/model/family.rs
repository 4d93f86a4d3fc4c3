//! A family of processes: the target and, with `--subprocesses`, its Python descendants. One
//! `Session` per process; the workers rows, stragglers and the merged view are computed from
//! the plain `Snapshot`, so the report, the TUI and a stored window all share them.

use std::cell::RefCell;
use std::collections::HashMap;

use super::functions::Counts;
use super::functions::Credited;
use super::rows::{sort_functions, Shares};
use super::snapshot::{
    FunctionRow, GcFigures, LineRow, Mode, ProcessSnapshot, Snapshot, SnapshotQuery, Straggler,
    TaskRow, WorkerRow,
};
use super::tasks::TaskFigures;
use super::{Session, SessionMeta};
use crate::collect::tick::Tick;

/// Exited processes kept; older ones are dropped (and counted) so a pool that replaces its
/// workers for days stays bounded.
pub const MAX_EXITED: usize = 256;

/// Every process of one inspection.
#[derive(Debug, Default)]
pub struct Family {
    root: u32,
    sessions: Vec<Session>,
    /// pid -> index in `sessions` of its current process.
    current: HashMap<u32, usize>,
    dropped: u64,
    /// Snapshots of exited processes by index in `sessions`: their figures no longer change,
    /// so a view redrawn 4 times a second over hundreds of finished workers builds each once.
    exited_cache: RefCell<HashMap<usize, (SnapshotQuery, ProcessSnapshot)>>,
}

impl Family {
    /// An empty family whose target is `root`.
    pub fn new(root: u32) -> Self {
        Self {
            root,
            ..Self::default()
        }
    }

    /// Starts a session for a newly attached process (a reused pid starts a new one).
    pub fn attach(&mut self, meta: SessionMeta) {
        let pid = meta.pid;
        self.current.insert(pid, self.sessions.len());
        self.sessions.push(Session::new(meta));
        self.evict_exited();
    }

    /// Folds one tick into its process's session.
    pub fn ingest(&mut self, tick: &Tick) {
        let pid = tick.process.pid;
        if !self.current.contains_key(&pid) {
            // Ticks come after their process's `Attached`; this only guards the order.
            self.attach(SessionMeta {
                pid,
                ..SessionMeta::default()
            });
        }
        if let Some(&index) = self.current.get(&pid) {
            self.sessions[index].ingest(tick);
        }
    }

    /// Ends the window for every session (see [`Session::settle`]).
    pub fn settle(&mut self) {
        for session in &mut self.sessions {
            session.settle();
        }
        self.exited_cache.borrow_mut().clear();
    }

    /// Forgets every figure; exited processes are forgotten altogether.
    pub fn reset(&mut self) {
        let root = self.root;
        let kept: Vec<Session> = std::mem::take(&mut self.sessions)
            .into_iter()
            .filter(|s| !s.exited() || s.meta().pid == root)
            .map(|mut s| {
                s.reset();
                s
            })
            .collect();
        self.sessions = kept;
        self.reindex();
        self.dropped = 0;
    }

    /// The target's pid.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// The current session of `pid`.
    pub fn session(&self, pid: u32) -> Option<&Session> {
        self.current.get(&pid).map(|&i| &self.sessions[i])
    }

    /// Exited processes dropped beyond [`MAX_EXITED`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Number of processes kept.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no process is known.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every process's figures: the target first, then in the order they were attached.
    pub fn snapshot(&self, query: &SnapshotQuery) -> Snapshot {
        let mut cache = self.exited_cache.borrow_mut();
        let mut processes: Vec<ProcessSnapshot> = self
            .sessions
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if !s.exited() {
                    return s.snapshot(query);
                }
                match cache.get(&i) {
                    Some((q, snapshot)) if q == query => snapshot.clone(),
                    _ => {
                        let snapshot = s.snapshot(query);
                        cache.insert(i, (*query, snapshot.clone()));
                        snapshot
                    }
                }
            })
            .collect();
        let root = self.root;
        processes.sort_by_key(|p| p.pid != root);
        Snapshot { processes }
    }

    /// Forgets the exited processes other than the target, figures and all (a long-running
    /// server keeps only what it still shows).
    pub fn forget_exited(&mut self) {
        let root = self.root;
        let before = self.sessions.len();
        self.sessions
            .retain(|s| !s.exited() || s.meta().pid == root);
        if self.sessions.len() != before {
            self.reindex();
        }
    }

    fn evict_exited(&mut self) {
        let exited = self.sessions.iter().filter(|s| s.exited()).count();
        if exited <= MAX_EXITED {
            return;
        }
        let mut excess = exited - MAX_EXITED;
        let root = self.root;
        self.sessions.retain(|s| {
            let drop = excess > 0 && s.exited() && s.meta().pid != root;
            excess -= usize::from(drop);
            !drop
        });
        self.dropped += (exited - MAX_EXITED - excess) as u64;
        self.reindex();
    }

    fn reindex(&mut self) {
        self.exited_cache.get_mut().clear();
        self.current.clear();
        for (i, s) in self.sessions.iter().enumerate() {
            self.current.insert(s.meta().pid, i);
        }
    }
}

/// Fewest live workers for a straggler to be named.
pub const STRAGGLER_MIN_WORKERS: usize = 3;
/// Least median CPU (percent) of the workers for a straggler to be named.
pub const STRAGGLER_MIN_MEDIAN: f64 = 10.0;

/// One row per process: the target first.
pub fn workers(snapshot: &Snapshot, root: u32) -> Vec<WorkerRow> {
    let mut rows: Vec<WorkerRow> = snapshot
        .processes
        .iter()
        .map(|p| {
            let per_s = |n: u64| {
                if p.duration_s > 0.0 {
                    n as f64 / p.duration_s
                } else {
                    0.0
                }
            };
            let state = if p.exited {
                'X'
            } else {
                p.threads
                    .iter()
                    .find(|t| t.tid == p.pid)
                    .map_or('?', |t| t.state.letter())
            };
            WorkerRow {
                pid: p.pid,
                ppid: p.ppid,
                is_root: p.pid == root,
                exited: p.exited,
                state,
                cpu_percent: p.cpu_percent,
                rss_bytes: p.rss_bytes,
                gil_held_percent: p.gil_held_percent,
                faults_per_s: per_s(p.minor_faults + p.major_faults),
                ctxsw_per_s: per_s(p.voluntary_ctxsw + p.involuntary_ctxsw),
                hottest: p
                    .functions
                    .iter()
                    .filter(|f| f.own_samples > 0)
                    .max_by_key(|f| f.own_samples)
                    .map(|f| f.name.clone()),
                straggler: None,
            }
        })
        .collect();
    stragglers(&mut rows);
    rows
}

/// Marks workers far from their live siblings' median CPU: with at least
/// [`STRAGGLER_MIN_WORKERS`] live workers and a median of at least [`STRAGGLER_MIN_MEDIAN`] %,
/// a worker at most half the median and 15 points under it is `Slow`; one at least 1.5 × the
/// median and 15 points over it is `Busy`. The target itself is not a sibling.
pub fn stragglers(rows: &mut [WorkerRow]) {
    let mut cpus: Vec<f64> = rows
        .iter()
        .filter(|r| !r.is_root && !r.exited)
        .map(|r| r.cpu_percent)
        .collect();
    if cpus.len() < STRAGGLER_MIN_WORKERS {
        return;
    }
    cpus.sort_by(f64::total_cmp);
    let mid = cpus.len() / 2;
    let median = if cpus.len().is_multiple_of(2) {
        f64::midpoint(cpus[mid - 1], cpus[mid])
    } else {
        cpus[mid]
    };
    if median < STRAGGLER_MIN_MEDIAN {
        return;
    }
    for r in rows.iter_mut().filter(|r| !r.is_root && !r.exited) {
        r.straggler = if r.cpu_percent <= median * 0.5 && median - r.cpu_percent >= 15.0 {
            Some(Straggler::Slow)
        } else if r.cpu_percent >= median * 1.5 && r.cpu_percent - median >= 15.0 {
            Some(Straggler::Busy)
        } else {
            None
        };
    }
}

/// All processes as one: functions merged by (file, name) with their samples, counters and
/// lines summed and percentages over all counted samples (pools run the same code); process
/// counters summed; threads of every process; timelines summed second by second. Figures that
/// are shares (GIL held) are averaged over processes, weighted by samples.
pub fn merged(snapshot: &Snapshot, query: &SnapshotQuery) -> ProcessSnapshot {
    let procs = &snapshot.processes;
    let Some(first) = procs.first() else {
        return ProcessSnapshot::default();
    };
    let counted: u64 = procs.iter().map(|p| p.counted_samples).sum();
    let samples: u64 = procs.iter().map(|p| p.samples).sum();
    let weighted = |f: fn(&ProcessSnapshot) -> f64| {
        if samples == 0 {
            0.0
        } else {
            procs.iter().map(|p| f(p) * p.samples as f64).sum::<f64>() / samples as f64
        }
    };
    let functions = merged_functions(procs, counted, query);
    let mut timeline: Vec<super::timeline::TimelinePoint> = Vec::new();
    let mut points: Vec<_> = procs.iter().flat_map(|p| p.timeline.iter()).collect();
    points.sort_by_key(|p| p.at);
    for p in points {
        match timeline.last_mut().filter(|t| t.at == p.at) {
            Some(t) => {
                t.cpu_percent += p.cpu_percent;
                t.rss_bytes += p.rss_bytes;
                t.minor_faults_per_s += p.minor_faults_per_s;
                t.major_faults_per_s += p.major_faults_per_s;
                t.ctxsw_per_s += p.ctxsw_per_s;
                t.gil_held_percent = t.gil_held_percent.max(p.gil_held_percent);
                t.gil_wanted_percent = t.gil_wanted_percent.max(p.gil_wanted_percent);
            }
            None => timeline.push(*p),
        }
    }
    let sum = |f: fn(&ProcessSnapshot) -> u64| procs.iter().map(f).sum::<u64>();
    ProcessSnapshot {
        pid: first.pid,
        ppid: first.ppid,
        cmdline: vec![format!("{} processes merged", procs.len())],
        python_version: first.python_version.clone(),
        start_ticks: first.start_ticks,
        exited: first.exited,
        duration_s: procs.iter().map(|p| p.duration_s).fold(0.0, f64::max),
        samples,
        sample_errors: sum(|p| p.sample_errors),
        exit_cut_reads: sum(|p| p.exit_cut_reads),
        first_sample_error: procs.iter().find_map(|p| p.first_sample_error.clone()),
        partial_stacks: sum(|p| p.partial_stacks),
        partial_stacks_percent: weighted(|p| p.partial_stacks_percent),
        stacks_reread: sum(|p| p.stacks_reread),
        stacks_dropped: sum(|p| p.stacks_dropped),
        on_cpu_stacks: sum(|p| p.on_cpu_stacks),
        stacks_dropped_percent: weighted(|p| p.stacks_dropped_percent),
        tasks: merged_tasks(procs),
        tasks_finished: procs
            .iter()
            .fold((0, TaskFigures::default()), |(n, mut f), p| {
                f.add(&p.tasks_finished.1);
                (n + p.tasks_finished.0, f)
            }),
        skipped_ticks: sum(|p| p.skipped_ticks),
        rate_hz: first.rate_hz,
        counted_samples: counted,
        seconds_per_sample: first.seconds_per_sample,
        cpu_percent: procs.iter().map(|p| p.cpu_percent).sum(),
        gc: merged_gc(procs),
        rss_bytes: sum(|p| if p.exited { 0 } else { p.rss_bytes }),
        rss_peak_bytes: sum(|p| p.rss_peak_bytes),
        swap_bytes: sum(|p| p.swap_bytes),
        memory: super::snapshot::MemorySnapshot::default(),
        minor_faults: sum(|p| p.minor_faults),
        major_faults: sum(|p| p.major_faults),
        read_bytes: sum(|p| p.read_bytes),
        write_bytes: sum(|p| p.write_bytes),
        voluntary_ctxsw: sum(|p| p.voluntary_ctxsw),
        involuntary_ctxsw: sum(|p| p.involuntary_ctxsw),
        gil_held_percent: weighted(|p| p.gil_held_percent),
        gil_wanted_percent: weighted(|p| p.gil_wanted_percent),
        runqueue_wait_percent: weighted(|p| p.runqueue_wait_percent),
        gil_located: procs.iter().all(|p| p.gil_located),
        gil_mean_hold_ms: None,
        verdict: None,
        gil_handoffs_per_s: None,
        threads: procs
            .iter()
            .flat_map(|p| p.threads.iter().cloned())
            .collect(),
        functions,
        stacks: procs
            .iter()
            .flat_map(|p| p.stacks.iter().cloned())
            .collect(),
        timeline,
    }
}

/// Functions of all processes merged by (file, name), ordered and limited as `query` asks.
/// GC figures of processes merged: seconds and samples add up, and the share is of all their
/// thread-samples seen on a CPU, those of processes never seen collecting included.
fn merged_gc(procs: &[ProcessSnapshot]) -> GcFigures {
    let seen_in_gc = procs.iter().map(|p| p.gc.seen_in_gc).sum();
    let on_cpu = procs.iter().map(|p| p.on_cpu_stacks).sum();
    GcFigures {
        percent: super::percent(seen_in_gc, on_cpu),
        cpu_s: procs.iter().map(|p| p.gc.cpu_s).sum(),
        samples: procs.iter().map(|p| p.gc.samples).sum(),
        seen_in_gc,
    }
}

fn merged_functions(
    procs: &[ProcessSnapshot],
    counted: u64,
    query: &SnapshotQuery,
) -> Vec<FunctionRow> {
    let mut functions: HashMap<(String, String), FunctionRow> = HashMap::new();
    for f in procs.iter().flat_map(|p| &p.functions) {
        let row = functions
            .entry((f.filename.clone(), f.name.clone()))
            .or_insert_with(|| FunctionRow {
                name: f.name.clone(),
                filename: f.filename.clone(),
                short_filename: f.short_filename.clone(),
                ..FunctionRow::default()
            });
        row.own_samples += f.own_samples;
        row.total_samples += f.total_samples;
        row.own_s += f.own_s;
        row.total_s += f.total_s;
        add(&mut row.credited, &f.credited);
        add(&mut row.credited_total, &f.credited_total);
        row.gil_held_while_waited += f.gil_held_while_waited;
        for l in &f.lines {
            match row.lines.iter_mut().find(|m| m.line == l.line) {
                Some(m) => {
                    m.own_samples += l.own_samples;
                    m.total_samples += l.total_samples;
                    m.own_s += l.own_s;
                    m.total_s += l.total_s;
                    add(&mut m.credited, &l.credited);
                    add(&mut m.credited_total, &l.credited_total);
                }
                None => row.lines.push(*l),
            }
        }
    }
    // The same basis as each process's rows: on-CPU seconds in cpu mode (no thread focus),
    // else samples.
    let shares = if query.mode == Mode::Cpu && query.thread.is_none() {
        Shares::CpuSeconds(functions.values().map(|f| f.credited.cpu_s).sum())
    } else {
        Shares::Samples {
            counted,
            seconds_per_sample: 0.0,
        }
    };
    let counts = |own, total| Counts { own, total };
    let mut functions: Vec<FunctionRow> = functions
        .into_values()
        .map(|mut f| {
            (f.own_percent, f.total_percent) = shares.percents(
                counts(f.own_samples, f.total_samples),
                &f.credited,
                &f.credited_total,
            );
            for l in &mut f.lines {
                (l.own_percent, l.total_percent) = shares.percents(
                    counts(l.own_samples, l.total_samples),
                    &l.credited,
                    &l.credited_total,
                );
            }
            f.lines.sort_by(|a: &LineRow, b: &LineRow| {
                b.total_samples
                    .cmp(&a.total_samples)
                    .then(b.own_samples.cmp(&a.own_samples))
                    .then(a.line.cmp(&b.line))
            });
            f.hottest_line = f.lines.first().map_or(0, |l| l.line);
            f
        })
        .collect();
    sort_functions(&mut functions, query.sort);
    if let Some(limit) = query.limit {
        functions.truncate(limit);
    }
    functions
}

fn add(into: &mut Credited, other: &Credited) {
    into.add_scaled(other, 1.0);
}

/// Every process's tasks, hottest first; `None` when no process listed any.
fn merged_tasks(procs: &[ProcessSnapshot]) -> Option<Vec<TaskRow>> {
    let mut all: Option<Vec<TaskRow>> = None;
    for p in procs {
        if let Some(tasks) = &p.tasks {
            all.get_or_insert_with(Vec::new)
                .extend(tasks.iter().cloned());
        }
    }
    if let Some(all) = all.as_mut() {
        all.sort_by(|a, b| b.figures.cpu_s.total_cmp(&a.figures.cpu_s));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: u32, cpu: f64) -> WorkerRow {
        WorkerRow {
            pid,
            cpu_percent: cpu,
            ..WorkerRow::default()
        }
    }

    #[test]
    fn stragglers_are_far_from_the_median_of_live_siblings() {
        let mut rows = vec![
            WorkerRow {
                is_root: true,
                ..row(1, 0.0)
            },
            row(2, 95.0),
            row(3, 100.0),
            row(4, 98.0),
            row(5, 20.0),
            WorkerRow {
                exited: true,
                ..row(6, 0.0)
            },
        ];
        stragglers(&mut rows);
        let marks: Vec<Option<Straggler>> = rows.iter().map(|r| r.straggler).collect();
        assert_eq!(marks, [None, None, None, None, Some(Straggler::Slow), None]);
        let mut busy = vec![row(2, 30.0), row(3, 30.0), row(4, 90.0)];
        stragglers(&mut busy);
        assert_eq!(busy[2].straggler, Some(Straggler::Busy));
        // Two workers are no crowd; an idle pool has no stragglers.
        let mut two = vec![row(2, 100.0), row(3, 1.0)];
        stragglers(&mut two);
        assert!(two.iter().all(|r| r.straggler.is_none()));
        let mut idle = vec![row(2, 1.0), row(3, 0.0), row(4, 5.0)];
        stragglers(&mut idle);
        assert!(idle.iter().all(|r| r.straggler.is_none()));
    }

    fn tick(pid: u32, at_ms: u64, exited: bool) -> Tick {
        use crate::collect::tick::{Frame, ProcessTick, ThreadTick};
        Tick {
            at: std::time::Duration::from_millis(at_ms),
            process: ProcessTick {
                pid,
                exited,
                threads: vec![ThreadTick {
                    tid: pid,
                    is_python: true,
                    frames: vec![Frame {
                        name: "work".into(),
                        filename: "w.py".into(),
                        ..Frame::default()
                    }]
                    .into(),
                    ..ThreadTick::default()
                }],
                ..ProcessTick::default()
            },
            ..Tick::default()
        }
    }

    #[test]
    fn exited_processes_are_kept_and_forgotten_on_reset() {
        let meta = |pid| SessionMeta {
            pid,
            ..SessionMeta::default()
        };
        let mut family = Family::new(1);
        family.attach(meta(1));
        family.attach(meta(2));
        for at in [0, 10, 20] {
            family.ingest(&tick(1, at, false));
            family.ingest(&tick(2, at, false));
        }
        family.ingest(&tick(2, 30, true));
        let query = SnapshotQuery {
            include_idle: true,
            ..SnapshotQuery::default()
        };
        let first = family.snapshot(&query);
        assert_eq!(first.processes.len(), 2);
        assert!(first.processes[1].exited);
        assert_eq!(first.processes[1].functions[0].own_samples, 3);
        // The exited one is built once and served again, the same, for the same query; another
        // query builds it anew.
        let again = family.snapshot(&query);
        assert_eq!(again.processes[1].functions[0].own_samples, 3);
        let active_only = family.snapshot(&SnapshotQuery::default());
        assert!(active_only.processes[1].functions.is_empty());
        family.reset();
        let after = family.snapshot(&query);
        assert_eq!(after.processes.len(), 1);
        assert_eq!(after.processes[0].pid, 1);
        assert!(after.processes[0].functions.is_empty());
    }

    #[test]
    fn merging_sums_functions_and_recomputes_shares() {
        let f = |name: &str, own: u64| FunctionRow {
            name: name.into(),
            filename: "w.py".into(),
            own_samples: own,
            total_samples: own,
            credited: Credited {
                cpu_s: own as f64 * 0.001,
                ..Credited::default()
            },
            lines: vec![LineRow {
                line: 3,
                own_samples: own,
                total_samples: own,
                credited: Credited {
                    cpu_s: own as f64 * 0.001,
                    ..Credited::default()
                },
                ..LineRow::default()
            }],
            ..FunctionRow::default()
        };
        let p = |pid: u32, functions: Vec<FunctionRow>, counted: u64| ProcessSnapshot {
            pid,
            counted_samples: counted,
            samples: counted,
            cpu_percent: 50.0,
            functions,
            ..ProcessSnapshot::default()
        };
        let snapshot = Snapshot {
            processes: vec![
                p(1, vec![f("main", 10)], 10),
                p(2, vec![f("work", 80)], 90),
                p(3, vec![f("work", 60), f("main", 40)], 100),
            ],
        };
        let samples = SnapshotQuery {
            mode: Mode::Samples,
            ..SnapshotQuery::default()
        };
        let m = merged(&snapshot, &samples);
        assert_eq!(m.counted_samples, 200);
        assert_eq!(m.functions[0].name, "work");
        assert_eq!(m.functions[0].own_samples, 140);
        assert!((m.functions[0].own_percent - 70.0).abs() < 1e-9);
        assert_eq!(m.functions[0].lines[0].own_samples, 140);
        assert_eq!(m.functions[1].own_samples, 50);
        assert!((m.cpu_percent - 150.0).abs() < 1e-9);
        // In cpu mode the merged shares are of on-CPU seconds, as each process's are, and a
        // function's line carries the same figure as the function.
        let cpu = merged(&snapshot, &SnapshotQuery::default());
        let work = &cpu.functions[0];
        assert!((work.own_percent - 14.0 / 19.0 * 100.0).abs() < 1e-9);
        assert!((work.lines[0].own_percent - work.own_percent).abs() < 1e-9);
    }

    #[test]
    fn the_family_gc_share_counts_processes_never_seen_collecting() {
        // One worker of four collected in 30 of its 100 on-CPU stacks; the other three were
        // seen on a CPU as often and never in a collection (no `<GC>` function at all).
        let p = |pid: u32, seen_in_gc: u64| ProcessSnapshot {
            pid,
            on_cpu_stacks: 100,
            gc: GcFigures {
                percent: super::super::percent(seen_in_gc, 100),
                cpu_s: seen_in_gc as f64 * 0.01,
                samples: seen_in_gc,
                seen_in_gc,
            },
            ..ProcessSnapshot::default()
        };
        let snapshot = Snapshot {
            processes: vec![p(1, 30), p(2, 0), p(3, 0), p(4, 0)],
        };
        let m = merged(&snapshot, &SnapshotQuery::default());
        assert_eq!(m.on_cpu_stacks, 400);
        assert_eq!(m.gc.samples, 30);
        assert!((m.gc.percent - 7.5).abs() < 1e-9, "{}", m.gc.percent);
        assert!((m.gc.cpu_s - 0.3).abs() < 1e-9);
    }
}
