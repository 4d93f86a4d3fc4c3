//! Pools of thousands of threads: every thread reported, with few open files.

use std::process::{Command, Stdio};

use crate::common::{default_python, function, process, Workload};

/// `hptop report --format json` run under `ulimit -n FILES`.
fn report_with_file_limit(files: u32, args: &[&str]) -> serde_json::Value {
    let script = format!("ulimit -n {files} && exec \"$0\" report --format json \"$@\"");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_hptop"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hptop {args:?} under ulimit -n {files}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check_pool(pool: u32, files: u32, seconds: &str) {
    let workload = Workload::start(
        &default_python(),
        "idle_pool.py",
        &[&pool.to_string(), "600"],
    );
    let pid = workload.pid();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    let report = report_with_file_limit(files, &["--pid", &pid.to_string(), "--duration", seconds]);
    let p = process(&report);
    let threads = p["threads"].as_array().unwrap();
    // Every OS thread, each with its Python name; none lost to the file limit.
    assert_eq!(threads.len(), tasks, "threads reported vs /proc/{pid}/task");
    let named = threads.iter().filter(|t| t["name"].is_string()).count();
    assert_eq!(named, tasks, "every thread named");
    assert_eq!(
        report["sample_errors"], 0,
        "{}",
        report["first_sample_error"]
    );
    assert!(report["samples"].as_u64().unwrap() >= 2);
    let compute = function(p, "compute").expect("the busy thread's function");
    // compute's loop calls Event.is_set each turn: their own shares can swap.
    let top = crate::common::top_functions(p, 2);
    assert!(top.contains(&"compute"), "hottest: {top:?}");
    assert!(compute["own_samples"].as_u64().unwrap() > 0);
}

#[test]
fn a_pool_of_a_thousand_threads_is_sampled_whole_within_256_open_files() {
    check_pool(1000, 256, "3");
}

/// Over py-spy's former limit of 4,096 threads (it refused to attach). Minutes: run with
/// `scripts/long-tests.sh` (`cargo test -- --ignored`).
#[test]
#[ignore = "long: thousands of threads; scripts/long-tests.sh runs it"]
fn a_pool_of_five_thousand_threads_attaches_and_is_sampled() {
    check_pool(5000, 1024, "5");
}
