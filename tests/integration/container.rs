//! A target in its own PID and mount namespaces (what docker and k8s make), seen from the host.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    cpu_ticks, default_python, f64_of, function, process, report_json, workload_path,
};

/// `unshare --pid --fork --mount-proc --mount` running `cpu_threads.py` from a tmpfs that only
/// its mount namespace has; killed (with the namespace's init) when dropped.
struct Contained {
    unshare: Child,
    python_pid: u32,
    dir: PathBuf,
}

impl Contained {
    fn start() -> Option<Self> {
        let root = nix::unistd::Uid::effective().is_root();
        let found = Command::new("unshare")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !root || !found {
            eprintln!("SKIP: needs root and unshare (util-linux) for a PID namespace");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("hptop-ns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "mount -t tmpfs hptop-ns {d} && cp {w} {d}/inside.py && exec {py} {d}/inside.py 2 60",
            d = dir.display(),
            w = workload_path("cpu_threads.py").display(),
            py = default_python().path.display(),
        );
        let mut unshare = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount-proc",
                "--mount",
                "--propagation",
                "private",
            ])
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(unshare.stdout.take().unwrap()).lines();
        let ready = lines.next().and_then(Result::ok);
        assert_eq!(
            ready.as_deref(),
            Some("ready"),
            "the contained workload did not start"
        );
        std::thread::spawn(move || for _ in lines {});
        // unshare forks the namespace's init (pid 1 inside), which execs python.
        let deadline = Instant::now() + Duration::from_secs(5);
        let python_pid = loop {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
                    .unwrap_or_default();
            if let Some(pid) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "no child of unshare");
            std::thread::sleep(Duration::from_millis(20));
        };
        Some(Self {
            unshare,
            python_pid,
            dir,
        })
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        // Killing the namespace's init ends every process in it.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.python_pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn host_tids(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_containerised_target_joins_every_counter_by_host_tid() {
    let Some(target) = Contained::start() else {
        return;
    };
    let pid = target.python_pid;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains(&format!("NSpid:\t{pid}\t1")),
        "not in its own namespace"
    );
    let (ticks_before, at) = (cpu_ticks(&format!("/proc/{pid}/stat")), Instant::now());
    let report = report_json(&["--pid", &pid.to_string(), "--duration", "2"]);
    let truth_percent =
        (cpu_ticks(&format!("/proc/{pid}/stat")) - ticks_before) / at.elapsed().as_secs_f64();
    let p = process(&report);

    // One row per OS thread, each by its host tid, with its counters joined.
    let threads = p["threads"].as_array().unwrap();
    let tasks = host_tids(pid);
    assert_eq!(threads.len(), 4, "threads: {threads:#?}");
    for t in threads {
        let tid = t["tid"].as_u64().unwrap();
        assert!(
            tasks.contains(&tid),
            "tid {tid} is not a host tid: {tasks:?}"
        );
    }
    let main = threads.iter().find(|t| t["name"] == "MainThread").unwrap();
    assert_eq!(main["tid"], pid, "MainThread must show the host pid");
    let workers_cpu: f64 = threads
        .iter()
        .filter(|t| t["name"].as_str().unwrap_or("").starts_with("worker"))
        .map(|t| f64_of(&t["cpu_percent"]))
        .sum();
    let process_cpu = f64_of(&p["cpu_percent"]);
    assert!(process_cpu > 0.0, "process CPU {process_cpu}");
    // Against the test's own /proc reading over (nearly) the same window.
    assert!(
        (process_cpu - truth_percent).abs() <= truth_percent * 0.15 + 5.0,
        "process CPU {process_cpu} vs /proc {truth_percent}"
    );
    assert!(
        workers_cpu >= process_cpu * 0.8,
        "workers' CPU {workers_cpu} of process {process_cpu}: counters not joined"
    );
    let burn = function(p, "burn").expect("burn sampled");
    let cpu_s = f64_of(&burn["cpu_s"]);
    let window = f64_of(&report["duration_s"]);
    assert!(
        cpu_s >= process_cpu / 100.0 * window * 0.7,
        "burn cpu_s {cpu_s}: thread counters not credited"
    );

    // The source is only in the target's mount namespace; the source view reads it there.
    let file = burn["filename"].as_str().unwrap();
    assert!(
        !std::path::Path::new(file).exists(),
        "{file} visible on the host"
    );
    let lines =
        hptop::collect::source::read_source(pid, file).expect("source through /proc/PID/root");
    assert!(lines.iter().any(|l| l.contains("# HOT")));
}
