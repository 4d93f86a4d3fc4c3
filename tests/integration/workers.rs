//! Worker pools (issue 6): `--subprocesses` follows a real `multiprocessing.Pool`, also as it
//! replaces its workers (`maxtasksperchild`).

use serde_json::Value;

use crate::common::{default_python, f64_of, report_json, workload_path};

fn processes(report: &Value) -> &Vec<Value> {
    report["processes"].as_array().unwrap()
}

fn hottest(p: &Value) -> Option<&str> {
    p["functions"]
        .as_array()?
        .iter()
        .max_by_key(|f| f["own_samples"].as_u64())
        .and_then(|f| f["name"].as_str())
}

fn pool_report(maxtasks: &str, method: &str, seconds: &str) -> Value {
    let python = default_python();
    let script = workload_path("pool.py");
    report_json(&[
        "--subprocesses",
        "--duration",
        seconds,
        "--",
        &python.path.to_string_lossy(),
        &script.to_string_lossy(),
        "60",
        maxtasks,
        method,
    ])
}

#[test]
fn a_pool_reports_its_parent_and_every_worker_with_the_worker_function_hottest() {
    let report = pool_report("0", "fork", "3");
    let procs = processes(&report);
    let parent = &procs[0];
    assert!(
        parent["cmdline"].to_string().contains("pool.py"),
        "{}",
        parent["cmdline"]
    );
    let parent_pid = parent["pid"].as_u64().unwrap();
    let workers: Vec<&Value> = procs[1..].iter().collect();
    assert_eq!(workers.len(), 3, "pool of 3: {procs:#?}");
    for w in &workers {
        assert_eq!(w["ppid"].as_u64(), Some(parent_pid));
        assert_eq!(w["exited"], false);
        assert_eq!(hottest(w), Some("crunch"), "worker {}", w["pid"]);
        // Each worker runs one CPU-bound task after another; the parent only waits. A ratio,
        // not a band: on a loaded machine the workers get what the scheduler leaves them.
        assert!(
            f64_of(&w["cpu_percent"]) > 0.5
                && f64_of(&w["cpu_percent"]) >= 2.0 * f64_of(&parent["cpu_percent"]),
            "worker {}: {} vs parent {}",
            w["pid"],
            w["cpu_percent"],
            parent["cpu_percent"]
        );
    }
    // The parent only hands out tasks and waits.
    assert_ne!(hottest(parent), Some("crunch"));
}

#[test]
fn workers_replaced_by_maxtasksperchild_are_picked_up() {
    // Each worker exits after 10 tasks (~0.2-0.4 s here) and the pool starts a new one, with
    // the spawn method: fork, then exec of a fresh interpreter, which hptop must not catch
    // half-way.
    let report = pool_report("10", "spawn", "4");
    let procs = processes(&report);
    let parent_pid = procs[0]["pid"].as_u64().unwrap();
    // Spawn adds multiprocessing's resource tracker, a Python child that is not a worker.
    let workers: Vec<&Value> = procs[1..]
        .iter()
        .filter(|p| !p["cmdline"].to_string().contains("resource_tracker"))
        .collect();
    let exited = workers.iter().filter(|w| w["exited"] == true).count();
    assert!(
        workers.len() >= 6 && exited >= 3,
        "{} workers, {exited} exited: replacements were not followed",
        workers.len()
    );
    let sampled: Vec<&&Value> = workers
        .iter()
        .filter(|w| w["functions"].as_array().is_some_and(|f| !f.is_empty()))
        .collect();
    assert!(sampled.len() >= workers.len() / 2);
    for w in &workers {
        assert_eq!(w["ppid"].as_u64(), Some(parent_pid));
    }
    // A worker caught only in its last moments may show its hand-back of results instead.
    let crunching = sampled
        .iter()
        .filter(|w| hottest(w) == Some("crunch"))
        .count();
    assert!(
        crunching * 5 >= sampled.len() * 4,
        "{crunching} of {} sampled workers hottest in crunch",
        sampled.len()
    );
}
