//! One watched target: its sampler's events folded into a model that is never reset (the
//! counters of a scrape), the kernel's lifetime counters kept from the ticks, and windows
//! opened on request (`/debug/pprof/profile`, `/report`) fed from the same events.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::metrics::{FunctionMetrics, ProcessMetrics, ThreadMetrics, MAX_THREAD_SERIES};
use crate::collect::procfs::TICKS_PER_S;
use crate::collect::tick::Tick;
use crate::collect::{Sampler, SamplerEvent};
use crate::model::family::Family;
use crate::model::snapshot::{Mode, ProcessSnapshot, Snapshot, SnapshotQuery};
use crate::model::SessionMeta;

/// How often the published figures are refreshed.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// Windows open at once per target; more are refused (the server answers 503).
pub const MAX_WINDOWS: usize = 4;

/// A window of the next `seconds`, answered with its snapshot (with stacks) when it ends.
pub struct WindowRequest {
    /// How long.
    pub duration: Duration,
    /// Where the snapshot goes.
    pub reply: tokio::sync::oneshot::Sender<Snapshot>,
}

/// What a worker shares with the server.
#[derive(Default)]
pub struct Published {
    /// The figures of the last refresh, one entry per process of the target.
    pub processes: Vec<ProcessMetrics>,
    /// The target exited (its last figures stay until one scrape has shown them).
    pub exited: bool,
    /// When it exited (local time, RFC 3339), for the answers about it.
    pub exited_at: Option<String>,
}

/// Lifetime kernel counters of one process, from the latest ticks.
#[derive(Default)]
struct Lifetime {
    counters: Option<crate::collect::tick::ProcCounters>,
    /// tid -> (CPU s, run-queue wait s) since the thread started.
    threads: HashMap<u32, (f64, Option<f64>)>,
    gil_last: Option<u64>,
    gil_handoffs: u64,
}

impl Lifetime {
    fn ingest(&mut self, tick: &Tick) {
        let p = &tick.process;
        if let Some(c) = p.counters {
            self.counters = Some(c);
        }
        if let Some(n) = p.gil_switches {
            // The interpreter's counter; a smaller value (a wrap, a new interpreter) restarts.
            if let Some(last) = self.gil_last {
                self.gil_handoffs += n.saturating_sub(last);
            }
            self.gil_last = Some(n);
        }
        for t in &p.threads {
            let Some(c) = &t.counters else { continue };
            let cpu = c
                .run_ns
                .map_or(c.cpu_ticks as f64 / TICKS_PER_S as f64, |ns| {
                    ns as f64 / 1e9
                });
            let wait = c.runqueue_wait_ns.map(|ns| ns as f64 / 1e9);
            self.threads.insert(t.tid, (cpu, wait));
        }
    }
}

/// Which functions get a series of their own: the `limit` with the most CPU so far; the CPU
/// of the others goes to `(other)`, which only grows (each refresh adds their increase), so
/// every series stays a counter when functions move in and out of the top.
struct FunctionSeries {
    limit: usize,
    last: HashMap<(String, String), f64>,
    other: f64,
}

impl FunctionSeries {
    fn series(&mut self, p: &ProcessSnapshot) -> Vec<FunctionMetrics> {
        let mut rows: Vec<(&str, &str, f64)> = p
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f.filename.as_str(), f.credited.cpu_s))
            .collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        let mut out = Vec::with_capacity(self.limit + 1);
        for (rank, &(name, file, cpu)) in rows.iter().enumerate() {
            let key = (name.to_owned(), file.to_owned());
            let before = self.last.insert(key, cpu).unwrap_or(0.0);
            if rank < self.limit && cpu > 0.0 {
                out.push(FunctionMetrics {
                    function: name.to_owned(),
                    file: file.to_owned(),
                    cpu_seconds: cpu,
                });
            } else {
                self.other += (cpu - before).max(0.0);
            }
        }
        out.push(FunctionMetrics {
            function: "(other)".into(),
            file: String::new(),
            cpu_seconds: self.other,
        });
        out
    }
}

/// A window in progress.
struct Window {
    family: Family,
    until: Instant,
    reply: tokio::sync::oneshot::Sender<Snapshot>,
}

/// Runs a target until it exits or `stop` is set: folds events, refreshes `published`,
/// answers windows.
pub fn run(
    mut sampler: Sampler,
    published: &Arc<Mutex<Published>>,
    requests: &Receiver<WindowRequest>,
    stop: &std::sync::atomic::AtomicBool,
    top_functions: usize,
) {
    let root = sampler.target.pid;
    let mut family = Family::new(root);
    let mut metas: Vec<SessionMeta> = Vec::new();
    let mut lifetimes: HashMap<u32, Lifetime> = HashMap::new();
    let mut functions: HashMap<u32, FunctionSeries> = HashMap::new();
    let mut windows: Vec<Window> = Vec::new();
    let mut next_publish = Instant::now();
    let mut ended = false;
    while !ended && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match sampler.events.recv_timeout(Duration::from_millis(100)) {
            Ok(SamplerEvent::Attached(info)) => {
                let meta = crate::session::session_meta(&info);
                for w in &mut windows {
                    w.family.attach(meta.clone());
                }
                family.attach(meta.clone());
                metas.retain(|m| m.pid != meta.pid);
                metas.push(meta);
            }
            Ok(SamplerEvent::Ticks(ticks)) => {
                for tick in &ticks {
                    family.ingest(tick);
                    lifetimes.entry(tick.process.pid).or_default().ingest(tick);
                    for w in &mut windows {
                        w.family.ingest(tick);
                    }
                }
            }
            Ok(SamplerEvent::Exited(pid) | SamplerEvent::Panicked(pid, _)) => {
                ended = pid == root;
                metas.retain(|m| m.pid != pid);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => ended = true,
        }
        while let Ok(request) = requests.try_recv() {
            let mut w = Window {
                family: Family::new(root),
                until: Instant::now() + request.duration,
                reply: request.reply,
            };
            for meta in &metas {
                w.family.attach(meta.clone());
            }
            windows.push(w);
        }
        let now = Instant::now();
        // A window ends at its time, or with the target (what was gathered).
        let (done, open): (Vec<Window>, Vec<Window>) =
            windows.drain(..).partition(|w| ended || now >= w.until);
        windows = open;
        for mut w in done {
            w.family.settle();
            let query = SnapshotQuery {
                stacks: true,
                ..SnapshotQuery::default()
            };
            let _ = w.reply.send(w.family.snapshot(&query));
        }
        if ended || now >= next_publish {
            next_publish = now + PUBLISH_EVERY;
            let processes = refresh(&family, &mut lifetimes, &mut functions, top_functions);
            // Exited children have been shown for the last time: forget them.
            family.forget_exited();
            let alive: Vec<u32> = processes.iter().map(|p| p.pid).collect();
            lifetimes.retain(|pid, _| alive.contains(pid));
            functions.retain(|pid, _| alive.contains(pid));
            if let Ok(mut p) = published.lock() {
                p.processes = processes;
                if ended && !p.exited {
                    let at = exit_time();
                    eprintln!("hptop: PID {root} exited at {at}");
                    p.exited_at = Some(at);
                }
                p.exited = ended;
            }
        }
    }
    sampler.stop();
}

/// Now, as exit times are told (local time, to the second).
fn exit_time() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// The figures of every live process of the family.
fn refresh(
    family: &Family,
    lifetimes: &mut HashMap<u32, Lifetime>,
    functions: &mut HashMap<u32, FunctionSeries>,
    top_functions: usize,
) -> Vec<ProcessMetrics> {
    let query = SnapshotQuery {
        mode: Mode::Cpu,
        ..SnapshotQuery::default()
    };
    let snapshot = family.snapshot(&query);
    // Threads that exited leave no series (and no memory behind under thread churn).
    for p in &snapshot.processes {
        if let Some(life) = lifetimes.get_mut(&p.pid) {
            let alive: std::collections::HashSet<u32> = p
                .threads
                .iter()
                .filter(|t| t.alive)
                .map(|t| t.tid)
                .collect();
            life.threads.retain(|tid, _| alive.contains(tid));
        }
    }
    snapshot
        .processes
        .iter()
        // Shown once its kernel counters are known (not as zeros right after attaching).
        .filter(|p| !p.exited && lifetimes.get(&p.pid).is_some_and(|l| l.counters.is_some()))
        .map(|p| {
            let life = lifetimes.get(&p.pid);
            let series = functions.entry(p.pid).or_insert_with(|| FunctionSeries {
                limit: top_functions,
                last: HashMap::new(),
                other: 0.0,
            });
            process_metrics(p, life, series)
        })
        .collect()
}

fn process_metrics(
    p: &ProcessSnapshot,
    life: Option<&Lifetime>,
    series: &mut FunctionSeries,
) -> ProcessMetrics {
    let counters = life.and_then(|l| l.counters).unwrap_or_default();
    let mut threads: Vec<ThreadMetrics> = p
        .threads
        .iter()
        .filter(|t| t.alive)
        .map(|t| {
            let sampled_s = t.samples as f64 * p.seconds_per_sample;
            let (cpu, wait) = life
                .and_then(|l| l.threads.get(&t.tid))
                .copied()
                .unwrap_or((0.0, None));
            ThreadMetrics {
                tid: t.tid,
                name: t.name.clone().unwrap_or_default(),
                cpu_seconds: cpu,
                runqueue_wait_seconds: wait,
                gil_held_seconds: t.gil_held_percent / 100.0 * sampled_s,
                gil_wait_seconds: p
                    .gil_located
                    .then_some(t.gil_wait_percent / 100.0 * sampled_s),
            }
        })
        .collect();
    let thread_count = threads.len();
    threads.sort_by(|a, b| b.cpu_seconds.total_cmp(&a.cpu_seconds));
    threads.truncate(MAX_THREAD_SERIES);
    ProcessMetrics {
        pid: p.pid,
        comm: script_name(&p.cmdline),
        cpu_seconds: counters.cpu_ticks as f64 / TICKS_PER_S as f64,
        resident_bytes: counters.rss_bytes,
        minor_faults: counters.minor_faults,
        major_faults: counters.major_faults,
        voluntary_ctxsw: p.voluntary_ctxsw,
        involuntary_ctxsw: p.involuntary_ctxsw,
        read_bytes: counters.read_bytes,
        write_bytes: counters.write_bytes,
        gil_handoffs: life
            .filter(|l| l.gil_last.is_some())
            .map(|l| l.gil_handoffs),
        samples: p.samples,
        sample_errors: p.sample_errors,
        gc_seconds: p.gc.cpu_s,
        threads,
        thread_count,
        functions: series.series(p),
    }
}

/// What a fleet calls a Python process: its script (`job.py`), `-m` module, or program.
pub fn script_name(cmdline: &[String]) -> String {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
    let mut args = cmdline.iter().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-m" => return args.next().cloned().unwrap_or_default(),
            "-c" => return "-c".into(),
            // Options that take a value.
            "-W" | "-X" | "-Q" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            a => return base(a),
        }
    }
    cmdline.first().map_or_else(String::new, |a| base(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::FunctionRow;

    #[test]
    fn script_names() {
        let s = |v: &[&str]| script_name(&v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>());
        assert_eq!(s(&["python3", "-u", "/srv/etl/job.py", "--x"]), "job.py");
        assert_eq!(
            s(&["python3", "-X", "dev", "-m", "celery", "worker"]),
            "celery"
        );
        assert_eq!(s(&["/usr/bin/gunicorn"]), "gunicorn");
        assert_eq!(s(&[]), "");
    }

    fn process(cpu: &[(&str, f64)]) -> ProcessSnapshot {
        ProcessSnapshot {
            functions: cpu
                .iter()
                .map(|&(name, cpu_s)| {
                    let mut f = FunctionRow {
                        name: name.into(),
                        filename: "f.py".into(),
                        ..FunctionRow::default()
                    };
                    f.credited.cpu_s = cpu_s;
                    f
                })
                .collect(),
            ..ProcessSnapshot::default()
        }
    }

    #[test]
    fn function_series_stay_counters_when_the_top_changes() {
        let mut s = FunctionSeries {
            limit: 1,
            last: HashMap::new(),
            other: 0.0,
        };
        let first = s.series(&process(&[("a", 5.0), ("b", 1.0)]));
        assert_eq!(first[0].function, "a");
        assert!((first[1].cpu_seconds - 1.0).abs() < 1e-9);
        // b overtakes a: b gets a series; a's growth since goes to (other), which never falls.
        let second = s.series(&process(&[("a", 6.0), ("b", 9.0)]));
        assert_eq!(second[0].function, "b");
        assert!((second[1].cpu_seconds - 2.0).abs() < 1e-9, "{second:?}");
        let third = s.series(&process(&[("a", 6.5), ("b", 9.0)]));
        assert!((third[1].cpu_seconds - 2.5).abs() < 1e-9);
    }
}
