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

/// Thread-samples in which the process ran Python code: the sum of its functions' own samples.
fn own_samples(p: &Value) -> u64 {
    p["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["own_samples"].as_u64())
        .sum()
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
    let sampled = workers.iter().filter(|w| own_samples(w) > 0).count();
    assert!(sampled >= workers.len() / 2);
    for w in &workers {
        assert_eq!(w["ppid"].as_u64(), Some(parent_pid));
    }
    // A worker caught only in its first or last moments shows its start-up, its hand-back of
    // results or the collection its interpreter runs as it exits (`<GC>`): judged are the
    // workers seen long enough to have run tasks, and all the workers together.
    let seen_long: Vec<&&Value> = workers.iter().filter(|w| own_samples(w) >= 10).collect();
    let crunching = seen_long
        .iter()
        .filter(|w| hottest(w) == Some("crunch"))
        .count();
    assert!(
        seen_long.len() >= 3 && crunching * 5 >= seen_long.len() * 4,
        "{crunching} of {} workers seen 10 times or more hottest in crunch",
        seen_long.len()
    );
    let mut by_function = std::collections::HashMap::<&str, u64>::new();
    for w in &workers {
        for f in w["functions"].as_array().into_iter().flatten() {
            let name = f["name"].as_str().unwrap_or_default();
            *by_function.entry(name).or_default() += f["own_samples"].as_u64().unwrap_or(0);
        }
    }
    let all_hottest = by_function.iter().max_by_key(|(_, n)| **n).map(|(f, _)| *f);
    assert_eq!(all_hottest, Some("crunch"), "{by_function:?}");
}
