//! `hptop serve`: headless, scraped over HTTP. Each watched process has a worker thread of
//! its own (sampler + model, see [`worker`]); the HTTP side only reads what they publish, so
//! a slow or hostile client never stalls sampling.

pub mod http;
pub mod metrics;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::HptopError;
use crate::session::SamplingOptions;
use worker::{Published, WindowRequest};

/// What `hptop serve` watches.
#[derive(Debug, Clone)]
pub enum Watch {
    /// These processes.
    Pids(Vec<u32>),
    /// Every Python process whose command line matches, as it appears.
    Match(regex::Regex),
}

/// Options of `hptop serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// What to watch.
    pub watch: Watch,
    /// Where to listen.
    pub listen: SocketAddr,
    /// How to sample each process.
    pub sampling: SamplingOptions,
    /// Function series per process (the rest in `(other)`).
    pub top_functions: usize,
}

/// One watched target as the server sees it.
struct Target {
    root: u32,
    start_ticks: u64,
    published: Arc<Mutex<Published>>,
    requests: SyncSender<WindowRequest>,
    /// Tells the worker to stop its sampler and end.
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Everything watched, shared by the watcher and the server.
#[derive(Default)]
pub struct Fleet {
    targets: Mutex<Vec<Target>>,
    /// Targets that exited and were dropped: (PID, when), newest last, at most [`GONE_KEPT`].
    gone: Mutex<std::collections::VecDeque<(u32, String)>>,
    stop: AtomicBool,
}

/// Exited targets remembered, to answer "PID N exited at TIME" about them.
const GONE_KEPT: usize = 256;

/// Why no window could be opened: the HTTP status and the message.
pub type WindowRefusal = (u16, String);

/// How many processes one `serve` watches at most (each costs a sampler thread).
pub const MAX_TARGETS: usize = 256;

impl Fleet {
    /// Starts sampling `pid` on a worker of its own.
    ///
    /// # Errors
    /// The process cannot be attached (not Python, gone, no permission...).
    pub fn watch(&self, pid: u32, options: &ServeOptions) -> Result<(), HptopError> {
        let sampler_options = crate::session::sampler_options(pid, &options.sampling, false);
        let sampler = crate::collect::Sampler::start(&sampler_options)?;
        let published = Arc::new(Mutex::new(Published::default()));
        let (requests, receive) = sync_channel(worker::MAX_WINDOWS);
        let start_ticks = sampler.target.start_ticks;
        let shared = Arc::clone(&published);
        let top = options.top_functions;
        let stop = Arc::new(AtomicBool::new(false));
        let worker_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("serve-{pid}"))
            .spawn(move || worker::run(sampler, &shared, &receive, &worker_stop, top))
            .map_err(|e| HptopError::Usage(format!("cannot start a worker thread: {e}")))?;
        if let Ok(mut targets) = self.targets.lock() {
            targets.push(Target {
                root: pid,
                start_ticks,
                published,
                requests,
                stop,
                thread: Some(thread),
            });
        }
        Ok(())
    }

    /// Whether `pid` (started at `start_ticks`) is watched, as a target or a followed child.
    fn watches(&self, pid: u32, start_ticks: u64) -> bool {
        let Ok(targets) = self.targets.lock() else {
            return false;
        };
        targets.iter().any(|t| {
            (t.root == pid && t.start_ticks == start_ticks)
                || t.published
                    .lock()
                    .is_ok_and(|p| p.processes.iter().any(|m| m.pid == pid && t.root != pid))
        })
    }

    /// The figures of a scrape; targets that exited are shown once more, then dropped.
    pub fn scrape(&self) -> metrics::Scrape {
        let mut processes = Vec::new();
        if let Ok(mut targets) = self.targets.lock() {
            targets.retain_mut(|t| {
                let Ok(p) = t.published.lock() else {
                    return false;
                };
                processes.extend(p.processes.iter().cloned());
                let keep = !p.exited;
                let gone = (!keep).then(|| (t.root, p.exited_at.clone().unwrap_or_default()));
                drop(p);
                if let (Some(gone), Ok(mut list)) = (gone, self.gone.lock()) {
                    if list.len() >= GONE_KEPT {
                        list.pop_front();
                    }
                    list.push_back(gone);
                }
                if !keep {
                    if let Some(thread) = t.thread.take() {
                        let _ = thread.join();
                    }
                }
                keep
            });
        }
        metrics::Scrape {
            processes,
            self_cpu_seconds: crate::session::own_cpu_s(),
            self_resident_bytes: crate::session::own_rss_bytes(),
        }
    }

    /// Opens a window of `duration` on every live target (or only `pid`'s); the receivers
    /// answer with its snapshot when it ends.
    ///
    /// # Errors
    /// 404 when no target matches (saying when an exited one exited), 503 when too many
    /// windows are open or the server is stopping.
    pub fn windows(
        &self,
        duration: Duration,
        pid: Option<u32>,
    ) -> Result<Vec<tokio::sync::oneshot::Receiver<crate::model::snapshot::Snapshot>>, WindowRefusal>
    {
        let stopping = || (503, "the server is shutting down".to_owned());
        let targets = self.targets.lock().map_err(|_| stopping())?;
        let mut receivers = Vec::new();
        // Targets that exited, as (PID, when): still listed, or dropped after a scrape.
        let mut exited: Vec<(u32, String)> = self
            .gone
            .lock()
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default();
        for t in targets.iter() {
            let published = t.published.lock().map_err(|_| stopping())?;
            if published.exited {
                exited.push((t.root, published.exited_at.clone().unwrap_or_default()));
                continue;
            }
            let shown = published.processes.iter().any(|p| Some(p.pid) == pid);
            if pid.is_some_and(|pid| t.root != pid && !shown) {
                continue;
            }
            drop(published);
            let (reply, receive) = tokio::sync::oneshot::channel();
            t.requests
                .try_send(WindowRequest { duration, reply })
                .map_err(|_| {
                    (
                        503,
                        format!(
                            "too many profiles in progress (at most {} at once): try again later",
                            worker::MAX_WINDOWS
                        ),
                    )
                })?;
            receivers.push(receive);
        }
        if receivers.is_empty() {
            let said = |(pid, at): &(u32, String)| format!("PID {pid} exited at {at}");
            return Err((
                404,
                match pid {
                    Some(pid) => exited
                        .iter()
                        .rev()
                        .find(|(p, _)| *p == pid)
                        .map_or_else(|| format!("PID {pid} is not watched"), said),
                    None if !exited.is_empty() => {
                        let told: Vec<String> = exited.iter().rev().take(5).map(said).collect();
                        format!("no process is watched now: {}", told.join("; "))
                    }
                    None => "no process is watched yet".into(),
                },
            ));
        }
        Ok(receivers)
    }

    /// How many targets are watched.
    pub fn watched(&self) -> usize {
        self.targets.lock().map_or(0, |t| t.len())
    }

    /// Stops every worker (their samplers stop; the targets run on untouched).
    pub fn stop_all(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut targets) = self.targets.lock() {
            for t in targets.iter() {
                t.stop.store(true, Ordering::Relaxed);
            }
            for t in targets.iter_mut() {
                if let Some(thread) = t.thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

/// How often `--match` looks for new processes.
const SCAN_EVERY: Duration = Duration::from_secs(1);
/// Attach attempts for a matching process (one per scan): an interpreter may still be
/// starting when first seen.
const ATTACH_TRIES: u32 = 5;

/// Watches the machine for Python processes whose command line matches `re`.
pub fn watch_matching(fleet: &Fleet, re: &regex::Regex, options: &ServeOptions) {
    use crate::collect::discover::python_processes;
    // (pid, start) -> attempts; a pid seen again with another start is another process.
    let mut tried: HashMap<(u32, u64), u32> = HashMap::new();
    while !fleet.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let found = python_processes();
        let present: Vec<(u32, u64)> = found
            .iter()
            .map(|(p, _)| (p.pid, p.stat.start_ticks))
            .collect();
        tried.retain(|key, _| present.contains(key));
        for (info, _) in found {
            let key = (info.pid, info.stat.start_ticks);
            if info.is_zombie() || !re.is_match(&info.command()) || fleet.watches(key.0, key.1) {
                continue;
            }
            let attempts = tried.entry(key).or_insert(0);
            if *attempts >= ATTACH_TRIES {
                continue;
            }
            *attempts += 1;
            if fleet.watched() >= MAX_TARGETS {
                eprintln!(
                    "hptop: not watching PID {}: {MAX_TARGETS} processes are watched already",
                    info.pid
                );
                *attempts = ATTACH_TRIES;
                continue;
            }
            match fleet.watch(info.pid, options) {
                Ok(()) => eprintln!("hptop: watching PID {} ({})", info.pid, info.command()),
                Err(e) if *attempts >= ATTACH_TRIES => {
                    eprintln!(
                        "hptop: not watching PID {} ({}): {e}",
                        info.pid,
                        info.command()
                    );
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(SCAN_EVERY.saturating_sub(started.elapsed()));
    }
}
