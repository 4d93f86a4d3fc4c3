//! Where a tick's CPU goes, on a real target: the cost of waking alone, of each per-thread
//! kernel source hptop reads (or could read: a batched taskstats request over netlink), of
//! hptop's `/proc` reader, of its stack reader, and of the whole sampler with the model.
//!
//! `cargo bench --bench collector_cost [-- SECONDS [WORKLOAD ARGS...]]` (default: 5 s per row
//! against `tests/workloads/cpu_threads.py 4`). `COLLECTOR_COST_ROWS=proc,stacks` runs only
//! those rows (of `files`, `taskstats`, `proc`, `stacks`, `sampler`; waking always runs). Each row runs at 100 Hz on this thread and
//! reports its thread CPU (user + system, from `/proc/thread-self/schedstat`) per tick, so
//! rows compare like for like; "above waking" subtracts the first row.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hptop::collect::procfs::ProcReader;
use hptop::collect::stacks::{StackOptions, StackReader};
use hptop::collect::{Sampler, SamplerEvent, SamplerOptions};
use hptop::model::{Session, SessionMeta};

const RATE_HZ: u32 = 100;
/// Every this many ticks hptop's reader also reads the slow files (as the sampler does).
const SLOW_EVERY: u64 = 10;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let mut workload: Vec<String> = args.collect();
    if workload.is_empty() {
        workload = vec!["cpu_threads.py".into(), "4".into(), "1000".into()];
    }
    let mut target = start(&workload);
    let pid = target.id();
    std::thread::sleep(Duration::from_secs(1));
    let tids = hptop::collect::procfs::ProcReader::open(pid)
        .and_then(|mut r| r.list_tids())
        .expect("the workload's threads");
    println!(
        "target: {} (pid {pid}, {} threads); {seconds} s per row at {RATE_HZ} Hz; µs of this thread's CPU per tick",
        workload.join(" "),
        tids.len()
    );
    println!("| what is read per tick | µs per tick | above waking |\n|---|---|---|");
    let wake = run(seconds, |_| {});
    row("nothing (waking 100 times a second)", wake, wake);
    let rows = std::env::var("COLLECTOR_COST_ROWS").ok();
    let wanted = |name: &str| {
        rows.as_deref()
            .is_none_or(|r| r.split(',').any(|w| w == name))
    };

    let files = if wanted("files") {
        &["schedstat", "stat", "syscall", "status", "io"][..]
    } else {
        &[]
    };
    for file in files {
        let files: Vec<File> = tids
            .iter()
            .filter_map(|t| File::open(format!("/proc/{pid}/task/{t}/{file}")).ok())
            .collect();
        let mut buf = vec![0u8; 4096];
        let cost = run(seconds, |_| {
            for f in &files {
                let _ = f.read_at(&mut buf, 0);
            }
        });
        row(
            &format!("`{file}` of each thread ({} preads)", files.len()),
            cost,
            wake,
        );
    }

    if wanted("taskstats") {
        match taskstats::Batch::new(&tids) {
            Ok(mut batch) => {
                let mut failed = None;
                let cost = run(seconds, |_| {
                    if let Err(e) = batch.read_all() {
                        failed.get_or_insert(e);
                    }
                });
                match failed {
                    None => row(
                        &format!(
                            "taskstats of each thread, one netlink batch ({} replies)",
                            tids.len()
                        ),
                        cost,
                        wake,
                    ),
                    Some(e) => println!("| taskstats batch | failed: {e} | |"),
                }
            }
            Err(e) => println!("| taskstats batch | unavailable: {e} | |"),
        }
    }

    if wanted("proc") {
        let mut procs = ProcReader::open(pid).expect("/proc of the target");
        let mut listed = tids.clone();
        let cost = run(seconds, |tick| {
            let slow = tick % SLOW_EVERY == 0;
            if slow {
                listed = procs.list_tids().unwrap_or_default();
            }
            let _ = procs.read_threads(&listed, slow);
        });
        row("hptop's /proc reader (all it reads per tick)", cost, wake);
    }

    if wanted("stacks") {
        let mut stacks =
            StackReader::attach(pid, StackOptions::default(), 3).expect("attach to the target");
        let cost = run(seconds, |_| {
            let _ = stacks.read(&[], &[], tids.len(), &mut |_| {});
        });
        row("hptop's stack reader (py-spy, patched)", cost, wake);
        drop(stacks);
    }
    if wanted("sampler") {
        whole_sampler(pid, seconds, wake);
    }
    let _ = target.kill();
    let _ = target.wait();
}

/// The sampler as hptop runs it, with the model fed on this thread: each thread's CPU.
fn whole_sampler(pid: u32, seconds: f64, wake: f64) {
    let mut sampler =
        Sampler::start(&SamplerOptions::new(pid, f64::from(RATE_HZ))).expect("start the sampler");
    let mut session = Session::new(SessionMeta::default());
    let consumer_start = thread_cpu_ns();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut ticks = 0u64;
    while Instant::now() < until {
        if let Ok(SamplerEvent::Ticks(batch)) =
            sampler.events.recv_timeout(Duration::from_millis(200))
        {
            for tick in &batch {
                session.ingest(tick);
            }
            ticks += batch.len() as u64;
        }
    }
    let consumer = thread_cpu_ns().saturating_sub(consumer_start);
    let sampling = sampler_threads_cpu_ns();
    sampler.stop();
    let ticks = ticks.max(1) as f64;
    row(
        "hptop's sampler thread (wake, /proc, stacks, joining)",
        sampling as f64 / 1000.0 / ticks,
        wake,
    );
    println!(
        "| hptop's model (`Session::ingest`, the consumer thread) | {:.1} | |",
        consumer as f64 / 1000.0 / ticks
    );
}

fn row(what: &str, us: f64, wake: f64) {
    println!("| {what} | {us:.1} | {:+.1} |", us - wake);
}

/// Runs `body` at every tick for `seconds` at [`RATE_HZ`]; this thread's CPU per tick in µs.
fn run(seconds: f64, mut body: impl FnMut(u64)) -> f64 {
    let interval = Duration::from_secs(1) / RATE_HZ;
    let ticks = (seconds * f64::from(RATE_HZ)) as u64;
    let start = Instant::now();
    let cpu = thread_cpu_ns();
    for tick in 0..ticks {
        let deadline = start + interval * u32::try_from(tick).unwrap_or(u32::MAX);
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        body(tick);
    }
    thread_cpu_ns().saturating_sub(cpu) as f64 / 1000.0 / ticks.max(1) as f64
}

/// This thread's time on a CPU, in ns.
fn thread_cpu_ns() -> u64 {
    schedstat_ns("/proc/thread-self/schedstat")
}

fn schedstat_ns(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_ascii_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU of this process's threads named `hptop-sampler`, in ns.
fn sampler_threads_cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.trim() == hptop::collect::SAMPLER_THREAD)
        })
        .map(|e| schedstat_ns(&e.path().join("schedstat").to_string_lossy()))
        .sum()
}

/// Starts `tests/workloads/ARGS[0] ARGS[1..]` and waits for its "ready".
fn start(args: &[String]) -> Child {
    let script = format!(
        "{}/tests/workloads/{}",
        env!("CARGO_MANIFEST_DIR"),
        args.first().map_or("cpu_threads.py", String::as_str)
    );
    let mut child = Command::new("python3")
        .arg(&script)
        .args(args.get(1..).unwrap_or_default())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 and the workload");
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    assert_eq!(
        line.trim(),
        "ready",
        "the workload {script} did not start (usage: collector_cost [SECONDS [WORKLOAD ARGS...]])"
    );
    child
}

/// Per-thread counters through the kernel's taskstats interface (generic netlink): one
/// `send` carries a request per thread, replies come back with `recvmmsg`. It needs
/// `CAP_NET_ADMIN` and the initial network namespace, and has no scheduling state nor
/// system call: measured here as the batched alternative to per-thread `/proc` files.
mod taskstats {
    use std::io::IoSliceMut;
    use std::os::fd::{AsRawFd, OwnedFd};

    use nix::sys::socket::{
        bind, recv, recvmmsg, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags,
        MultiHeaders, NetlinkAddr, SockFlag, SockProtocol, SockType,
    };

    const GENL_ID_CTRL: u16 = 0x10;
    const CTRL_CMD_GETFAMILY: u8 = 3;
    const CTRL_ATTR_FAMILY_ID: u16 = 1;
    const CTRL_ATTR_FAMILY_NAME: u16 = 2;
    const TASKSTATS_CMD_GET: u8 = 1;
    const TASKSTATS_CMD_ATTR_PID: u16 = 1;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const REPLY_BYTES: usize = 1024;

    /// A socket and the requests for a fixed set of threads.
    pub struct Batch {
        socket: OwnedFd,
        requests: Vec<u8>,
        count: usize,
        replies: Vec<Vec<u8>>,
    }

    /// A generic netlink message: header, command, one attribute.
    fn message(kind: u16, seq: u32, command: u8, attr: u16, value: &[u8]) -> Vec<u8> {
        let attr_len = 4 + value.len();
        let len = 16 + 4 + attr_len;
        let mut m = Vec::with_capacity(len.next_multiple_of(4));
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[command, 1, 0, 0]);
        m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
        m.extend_from_slice(&attr.to_ne_bytes());
        m.extend_from_slice(value);
        m.resize(len.next_multiple_of(4), 0);
        m
    }

    impl Batch {
        /// Opens the socket and looks up the taskstats family.
        pub fn new(tids: &[u32]) -> Result<Self, String> {
            let socket = socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::empty(),
                SockProtocol::NetlinkGeneric,
            )
            .map_err(|e| e.to_string())?;
            bind(socket.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(|e| e.to_string())?;
            let _ = setsockopt(&socket, sockopt::RcvBuf, &(1 << 20));
            let ask = message(
                GENL_ID_CTRL,
                0,
                CTRL_CMD_GETFAMILY,
                CTRL_ATTR_FAMILY_NAME,
                b"TASKSTATS\0",
            );
            send(socket.as_raw_fd(), &ask, MsgFlags::empty()).map_err(|e| e.to_string())?;
            let mut reply = vec![0u8; 8192];
            let n = recv(socket.as_raw_fd(), &mut reply, MsgFlags::empty())
                .map_err(|e| e.to_string())?;
            let family = family_id(&reply[..n]).ok_or("no TASKSTATS family")?;
            let requests = tids
                .iter()
                .enumerate()
                .flat_map(|(i, tid)| {
                    message(
                        family,
                        i as u32,
                        TASKSTATS_CMD_GET,
                        TASKSTATS_CMD_ATTR_PID,
                        &tid.to_ne_bytes(),
                    )
                })
                .collect();
            Ok(Self {
                socket,
                requests,
                count: tids.len(),
                replies: vec![vec![0u8; REPLY_BYTES]; tids.len()],
            })
        }

        /// Sends every request and receives every reply.
        pub fn read_all(&mut self) -> Result<(), String> {
            let fd = self.socket.as_raw_fd();
            send(fd, &self.requests, MsgFlags::empty()).map_err(|e| e.to_string())?;
            let mut got = 0;
            while got < self.count {
                let mut headers = MultiHeaders::<NetlinkAddr>::preallocate(self.count - got, None);
                let mut slices: Vec<[IoSliceMut; 1]> = self.replies[got..]
                    .iter_mut()
                    .map(|b| [IoSliceMut::new(b)])
                    .collect();
                let results =
                    recvmmsg(fd, &mut headers, slices.iter_mut(), MsgFlags::empty(), None)
                        .map_err(|e| e.to_string())?;
                let mut received = 0;
                for r in results {
                    received += 1;
                    if r.bytes < 20 {
                        return Err("short reply".into());
                    }
                }
                for reply in &self.replies[got..got + received] {
                    if u16::from_ne_bytes([reply[4], reply[5]]) == NLMSG_ERROR {
                        return Err("the kernel refused a request (CAP_NET_ADMIN?)".into());
                    }
                }
                got += received;
            }
            Ok(())
        }
    }

    /// `CTRL_ATTR_FAMILY_ID` of a `CTRL_CMD_GETFAMILY` reply.
    fn family_id(reply: &[u8]) -> Option<u16> {
        let mut at = 20;
        while at + 4 <= reply.len() {
            let len = usize::from(u16::from_ne_bytes([reply[at], reply[at + 1]]));
            let kind = u16::from_ne_bytes([reply[at + 2], reply[at + 3]]);
            if kind == CTRL_ATTR_FAMILY_ID {
                return Some(u16::from_ne_bytes([reply[at + 4], reply[at + 5]]));
            }
            if len < 4 {
                return None;
            }
            at += len.next_multiple_of(4);
        }
        None
    }
}
