//! GIL waiting, grounded in the kernel (issue 4, first part): a thread blocked in futex on the
//! GIL state is a waiter; a thread blocked on a threading.Lock is not. Every Python 3.7+ found
//! (3.7–3.11 find the GIL inside `_PyRuntime` by its fields; 3.12+ through the interpreter).

use serde_json::Value;

use crate::common::{all_pythons, report_json, Workload};

fn thread<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap()
}

fn pct(t: &Value, key: &str) -> f64 {
    t[key].as_f64().unwrap()
}

#[test]
fn cpu_threads_wait_for_the_gil_and_a_lock_waiter_does_not() {
    let pythons: Vec<_> = all_pythons()
        .into_iter()
        .filter(|p| p.minor().is_some_and(|m| m >= 7))
        .collect();
    if pythons.is_empty() {
        eprintln!("SKIP: no Python 3.7+ found (GIL waiting is measured from 3.7 on)");
        return;
    }
    for python in &pythons {
        let label = &python.label;
        let workload = Workload::start(python, "gil_mix.py", &["60"]);
        let report = report_json(&["--pid", &workload.pid().to_string(), "--duration", "2"]);
        let p = &report["processes"][0];
        for name in ["worker-0", "worker-1"] {
            let t = thread(p, name);
            // Two GIL-bound threads: each holds it about half the time and waits the rest.
            let (held, wait) = (pct(t, "gil_held_percent"), pct(t, "gil_wait_percent"));
            assert!((15.0..=85.0).contains(&held), "{label} {name}: held {held}");
            assert!((15.0..=85.0).contains(&wait), "{label} {name}: wait {wait}");
            assert!(
                held + wait <= 100.5,
                "{label} {name}: held {held} + wait {wait}"
            );
        }
        // Two GIL-bound threads trade the GIL every switch interval (5 ms): ~200 per second.
        let handoffs = p["gil"]["handoffs_per_s"].as_f64().unwrap_or(0.0);
        assert!(
            (100.0..=320.0).contains(&handoffs),
            "{label}: {handoffs} hand-offs/s"
        );
        let locked = thread(p, "locked");
        assert!(
            pct(locked, "gil_wait_percent") < 5.0,
            "{label}: a Lock waiter is not a GIL waiter: {locked}"
        );
        assert!(pct(locked, "idle_percent") > 95.0, "{label}: {locked}");
        let main = thread(p, "MainThread");
        assert!(
            pct(main, "gil_wait_percent") < 5.0,
            "{label}: a sleeping thread is not a GIL waiter"
        );
        eprintln!(
            "ok: {label}: worker-0 held {:.0}% wait {:.0}%",
            pct(thread(p, "worker-0"), "gil_held_percent"),
            pct(thread(p, "worker-0"), "gil_wait_percent")
        );
    }
}
