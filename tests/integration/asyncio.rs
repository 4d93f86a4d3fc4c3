//! asyncio tasks (issue 24): what hptop lists against the interpreter's own reader
//! (`python -m asyncio ps`, 3.14+) of the same process, and per-task CPU against the
//! workload's own thread time.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

use crate::common::{all_pythons, process, report_json, workload_truth, Workload};

/// `asyncio ps` rows of `pid`: task name -> (task id, awaiter id). Names in the workload are
/// single words.
fn asyncio_ps(python: &std::path::Path, pid: u32) -> HashMap<String, (String, String)> {
    let out = Command::new(python)
        .args(["-m", "asyncio", "ps", &pid.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("----"))
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let (id, name, awaiter) = (cols.get(1)?, cols.get(2)?, cols.last()?);
            Some((
                (*name).to_owned(),
                ((*id).to_owned(), (*awaiter).to_owned()),
            ))
        })
        .collect()
}

/// The first Python 3.14+ (whose task lists hptop reads); `None`, said on stderr, without one.
fn newer_python() -> Option<crate::common::Python> {
    let found = all_pythons()
        .into_iter()
        .find(|p| p.minor().is_some_and(|m| m >= 14));
    if found.is_none() {
        eprintln!("skipped: no Python 3.14+ (../shared/tools/newer-pythons.sh installs them)");
    }
    found
}

fn task<'a>(tasks: &'a [Value], name: &str) -> &'a Value {
    tasks
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name}: {tasks:?}"))
}

/// On 3.14 and 3.15: the same tasks as the interpreter's own listing (names, ids, who
/// awaits whom), a waiting task's await point, and two tasks running one coroutine function
/// (10 and 30 units of work per step: ~1 and ~3 ms) told apart, each task's CPU within 5 points of its
/// thread time.
#[test]
fn asyncio_tasks_are_the_interpreters_own_and_their_cpu_is_their_thread_time() {
    // A clean-clone CI run beside the quiet GC test (a busy workload sampled at 200 Hz) saw
    // neither worker credited any CPU (21 % run-queue wait): alone, as the loaded tests are.
    let _alone = crate::common::machine_alone();
    let dir = std::env::temp_dir().join(format!("hptop-asyncio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut tested = 0;
    for python in all_pythons() {
        if python.minor().is_none_or(|m| m < 14) {
            continue;
        }
        let truth_path = dir.join(format!("truth-{}.json", python.label));
        let (workload, first, report, last) = sampled_with_truth(&python, &truth_path, "10");
        let pid = workload.pid();
        let p = process(&report);
        tested += 1;
        let tasks = p["tasks"].as_array().unwrap();
        let ps = asyncio_ps(&python.path, pid);
        let names = |it: &mut dyn Iterator<Item = String>| {
            let mut v: Vec<String> = it.collect();
            v.sort();
            v
        };
        assert_eq!(
            names(&mut tasks.iter().map(|t| t["name"].as_str().unwrap().to_owned())),
            names(&mut ps.keys().cloned()),
            "{}",
            python.label
        );
        for t in tasks {
            let (id, _) = &ps[t["name"].as_str().unwrap()];
            assert_eq!(t["id"].as_str().unwrap(), id, "{}: {t}", python.label);
            assert_eq!(t["thread"].as_u64(), Some(u64::from(pid)), "{t}");
        }
        let fan_out = task(tasks, "fan-out")["id"].clone();
        for worker in ["worker-a", "worker-b"] {
            assert_eq!(
                task(tasks, worker)["awaited_by"],
                serde_json::json!([fan_out])
            );
            assert_eq!(ps[worker].1, fan_out.as_str().unwrap(), "{}", python.label);
        }
        assert_eq!(ps["waiter"].1, ps["joiner"].0, "{}", python.label);
        assert_eq!(
            task(tasks, "waiter")["awaited_by"],
            serde_json::json!([ps["joiner"].0])
        );
        let waiter = task(tasks, "waiter")["frames"].as_array().unwrap().clone();
        let chain: Vec<&str> = waiter.iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(chain, ["wait_forever", "Event.wait"], "{}", python.label);
        assert_eq!(task(tasks, "waiter")["state"], "waiting");
        // Per-task CPU: worker-b's share of the two workers' CPU against thread time, with
        // steps of ~1 and ~3 ms and of ~0.1 and ~0.3 ms.
        check_share(&python.label, p, &first, &last, "1-3 ms steps");
        drop(workload);
        let (_workload, short_first, short, short_last) =
            sampled_with_truth(&python, &truth_path, "1");
        check_share(
            &python.label,
            process(&short),
            &short_first,
            &short_last,
            "0.1-0.3 ms steps",
        );
        assert!(task(tasks, "waiter")["samples"].as_u64() == Some(0));
    }
    if tested == 0 {
        eprintln!("skipped: no Python 3.14+ (../shared/tools/newer-pythons.sh installs them)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// On 3.11-3.13, which publish no task layout, hptop reads asyncio's own globals: the same
/// tasks as the program's own `asyncio.all_tasks()` (names, ids `hex(id(task))`, coroutine
/// chains by `cr_await`), `awaited_by` only for a task awaited directly (`await task`:
/// asyncio records no `TaskGroup` link before 3.14, and none is made up), and each task's CPU
/// within 5 points of its thread time, as on 3.14+. On 3.10 and older: no `tasks`.
#[test]
fn asyncio_tasks_before_3_14_are_the_programs_own_and_their_cpu_is_their_thread_time() {
    let _alone = crate::common::machine_alone();
    let dir = std::env::temp_dir().join(format!("hptop-asyncio-old-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut tested = 0;
    for python in all_pythons() {
        let Some(minor) = python.minor() else {
            continue;
        };
        if minor >= 14 {
            continue;
        }
        let truth_path = dir.join(format!("truth-{}.json", python.label));
        let label = &python.label;
        if minor < 11 {
            // 3.10 (names of tasks are 3.8+, TaskGroup 3.11+): tasks and gather, and no task
            // list read, none shown.
            if minor == 10 {
                let workload = Workload::start(&python, "many_tasks.py", &["10", "10", "60"]);
                let report =
                    report_json(&["--pid", &workload.pid().to_string(), "--duration", "1"]);
                assert!(process(&report).get("tasks").is_none(), "{label}");
            }
            continue;
        }
        tested += 1;
        let (workload, first, report, last) = sampled_with_truth(&python, &truth_path, "10");
        let p = process(&report);
        let tasks = p["tasks"]
            .as_array()
            .unwrap_or_else(|| panic!("{label}: no tasks: {p}"));
        let own = last["tasks"].as_object().unwrap();
        let mut listed: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
        let mut expected: Vec<&str> = own.keys().map(String::as_str).collect();
        listed.sort_unstable();
        expected.sort_unstable();
        assert_eq!(listed, expected, "{label}");
        for t in tasks {
            let name = t["name"].as_str().unwrap();
            assert_eq!(t["id"], own[name]["id"], "{label}: {t}");
            assert_eq!(
                t["thread"].as_u64(),
                Some(u64::from(workload.pid())),
                "{label}: {t}"
            );
        }
        // Tasks whose chain does not change while the program runs.
        for name in ["waiter", "joiner", "fan-out", "Task-1"] {
            let chain: Vec<&Value> = task(tasks, name)["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| &f["name"])
                .collect();
            let truth: Vec<&Value> = own[name]["chain"].as_array().unwrap().iter().collect();
            assert_eq!(chain, truth, "{label}: {name}");
            assert_eq!(task(tasks, name)["state"], "waiting", "{label}: {name}");
        }
        assert_eq!(
            task(tasks, "waiter")["awaited_by"],
            serde_json::json!([own["joiner"]["id"]]),
            "{label}"
        );
        for worker in ["worker-a", "worker-b"] {
            assert_eq!(
                task(tasks, worker)["awaited_by"],
                serde_json::json!([]),
                "{label}"
            );
        }
        check_share(label, p, &first, &last, "1-3 ms steps");
        drop(workload);
        let (_workload, short_first, short, short_last) =
            sampled_with_truth(&python, &truth_path, "1");
        check_share(
            label,
            process(&short),
            &short_first,
            &short_last,
            "0.1-0.3 ms steps",
        );
    }
    if tested == 0 {
        eprintln!("skipped: no Python 3.11-3.13");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `async_tasks.py` with `units` of work per step of worker-a, and a 4 s report of it at
/// 200 Hz (~800 samples split 3:1 between the workers: the share's sampling noise, ~1.5
/// points, stays well inside the 5-point bound), with the workload's truth before and after.
fn sampled_with_truth(
    python: &crate::common::Python,
    truth_path: &std::path::Path,
    units: &str,
) -> (Workload, Value, Value, Value) {
    let truth_arg = truth_path.to_string_lossy().into_owned();
    let workload = Workload::start(python, "async_tasks.py", &["60", &truth_arg, units]);
    let pid = workload.pid();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let first = workload_truth(pid, truth_path);
    let report = report_json(&[
        "--pid",
        &pid.to_string(),
        "--duration",
        "4",
        "--rate",
        "200",
    ]);
    let last = workload_truth(pid, truth_path);
    (workload, first, report, last)
}

/// worker-b's share of the two workers' CPU in `p` against the workload's thread time between
/// `first` and `last`.
fn check_share(label: &str, p: &Value, first: &Value, last: &Value, steps: &str) {
    let tasks = p["tasks"].as_array().unwrap();
    let spent = |k: &str| last[k].as_f64().unwrap() - first[k].as_f64().unwrap();
    let truth_b = spent("worker-b") * 100.0 / (spent("worker-a") + spent("worker-b"));
    let cpu = |k: &str| task(tasks, k)["cpu_s"].as_f64().unwrap();
    let b = cpu("worker-b") * 100.0 / (cpu("worker-a") + cpu("worker-b"));
    let runq = p["runqueue_wait_percent"].as_f64().unwrap();
    eprintln!(
        "{label} ({steps}): worker-b {b:.1}% of the workers' CPU (truth {truth_b:.1}%), run-queue wait {runq:.0}%"
    );
    // Quiet (the kernel's run-queue wait under 5 %), within 5 points; beside other load
    // within 15 (a clean-clone CI run, the suite's loaded tests beside it, saw 67.5 % vs
    // 76.4 % at 9 % run-queue wait). On an overloaded machine (run-queue wait of 50 % and
    // more: the loaded suite, 6 busy loops on 2 cores) the loop thread is seen on a CPU at
    // few ticks and task shares are not asserted: measured 52-100 % against 76 % there
    // (docs/figures.md).
    let bound = if runq >= 5.0 { 15.0 } else { 5.0 };
    assert!(
        runq >= 50.0 || (b - truth_b).abs() <= bound,
        "{label} ({steps}): {b} vs {truth_b}"
    );
}

/// 1,000 waiting tasks beside 1,000 tasks created and finished a second: every waiting task
/// listed once, and no task under a name the program never gave.
#[test]
fn a_thousand_tasks_and_a_thousand_a_second_are_listed_without_a_wrong_name() {
    // On 3.14+ (the interpreter's lists) and on one of 3.11-3.13 (asyncio's own sets).
    let older = all_pythons()
        .into_iter()
        .filter(|p| p.minor().is_some_and(|m| (11..14).contains(&m)))
        .max_by_key(crate::common::Python::minor);
    for python in newer_python().into_iter().chain(older) {
        thousand_tasks(&python);
    }
}

/// [`a_thousand_tasks_and_a_thousand_a_second_are_listed_without_a_wrong_name`] on `python`.
fn thousand_tasks(python: &crate::common::Python) {
    let workload = Workload::start(python, "many_tasks.py", &["1000", "1000", "60"]);
    let report = report_json(&["--pid", &workload.pid().to_string(), "--duration", "3"]);
    let tasks = process(&report)["tasks"].as_array().unwrap().clone();
    let mut live: Vec<u64> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for t in &tasks {
        let name = t["name"].as_str().unwrap();
        assert!(ids.insert(t["id"].as_str().unwrap().to_owned()), "{t}");
        let known = |prefix: &str| {
            name.strip_prefix(prefix)
                .and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(n) = known("live-") {
            live.push(n);
        } else {
            let expected =
                known("churn-").is_some() || name == "spawner" || known("Task-").is_some();
            assert!(
                expected,
                "{}: a name the program never gave: {name:?}",
                python.label
            );
        }
    }
    live.sort_unstable();
    assert_eq!(live, (0..1000).collect::<Vec<u64>>(), "{}", python.label);
}

/// Recordings carry the tasks (format 3): a report of a recording lists the same tasks, and
/// the per-task figures are those of the live report of the same samples.
#[test]
fn a_recording_carries_the_tasks_and_their_figures() {
    let Some(python) = newer_python() else { return };
    let dir = std::env::temp_dir().join(format!("hptop-asyncio-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("r.hptop");
    let workload = Workload::start(&python, "async_tasks.py", &["60"]);
    let path = file.to_str().unwrap();
    let live = report_json(&[
        "--pid",
        &workload.pid().to_string(),
        "--duration",
        "3",
        "--record",
        path,
    ]);
    let replayed = report_json(&["--input", path]);
    let figures = |report: &Value| {
        let mut v: Vec<(String, u64, String)> = process(report)["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let name = t["name"].as_str().unwrap().to_owned();
                let figures = format!(
                    "{:.4} {:.2}",
                    t["cpu_s"].as_f64().unwrap(),
                    t["gil_held_percent"].as_f64().unwrap()
                );
                (name, t["samples"].as_u64().unwrap(), figures)
            })
            .collect();
        v.sort();
        v
    };
    let (a, b) = (figures(&live), figures(&replayed));
    assert_eq!(a, b);
    assert!(
        a.iter()
            .any(|(name, samples, _)| name == "worker-b" && *samples > 0),
        "{a:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A launched program that imports asyncio 1 s in has its tasks listed within the report (the
/// module was looked for again only every tenth read: ~11 s). The window leaves 7 s after the
/// import: under scripts/loaded-tests.sh (run-queue wait ~70 %) a 3 s margin was too short
/// for 3.14 to start, import asyncio and run its first task.
#[test]
fn tasks_of_a_program_that_imports_asyncio_late_are_listed() {
    let Some(python) = newer_python() else { return };
    let script = crate::common::workload_path("late_asyncio.py");
    let report = report_json(&[
        "--duration",
        "8",
        "--",
        python.path.to_str().unwrap(),
        script.to_str().unwrap(),
        "1",
    ]);
    let p = process(&report);
    let tasks = p["tasks"].as_array();
    assert!(
        tasks.is_some_and(|t| t.iter().any(|t| t["name"] == "late")),
        "{}: {:?}",
        python.label,
        p.get("tasks")
    );
}

/// Per-task GIL: a task that spins holds the GIL at its samples, one that blocks the loop in
/// `time.sleep` (GIL released) does not; the tasks' GIL-held samples are their thread's.
#[test]
fn each_task_holds_the_gil_as_its_code_does() {
    // Beside the suite's busy loops the loop thread is starved and the spinner barely runs
    // (a clean-clone CI run: 8 samples against the sleeper's 587).
    let _quiet = crate::common::quiet_machine();
    let Some(python) = newer_python() else { return };
    let workload = Workload::start(&python, "async_gil.py", &["60"]);
    let report = report_json(&[
        "--pid",
        &workload.pid().to_string(),
        "--duration",
        "4",
        "--rate",
        "200",
    ]);
    let p = process(&report);
    let tasks = p["tasks"].as_array().unwrap();
    let gil = |name: &str| task(tasks, name)["gil_held_percent"].as_f64().unwrap();
    let samples = |name: &str| task(tasks, name)["samples"].as_u64().unwrap();
    let label = &python.label;
    assert!(
        samples("spinner") >= 20 && samples("sleeper") >= 20,
        "{label}: {tasks:?}"
    );
    assert!(
        gil("spinner") >= 80.0,
        "{label}: spinner {}",
        gil("spinner")
    );
    assert!(
        gil("sleeper") <= 20.0,
        "{label}: sleeper {}",
        gil("sleeper")
    );
    // The same basis as the thread's GIL figure: the tasks' held samples are among its own.
    let thread = &p["threads"][0];
    let thread_held =
        thread["samples"].as_f64().unwrap() * thread["gil_held_percent"].as_f64().unwrap() / 100.0;
    let tasks_held: f64 = tasks
        .iter()
        .map(|t| t["samples"].as_f64().unwrap() * t["gil_held_percent"].as_f64().unwrap() / 100.0)
        .sum();
    assert!(
        tasks_held <= thread_held + 0.5 && tasks_held >= thread_held * 0.8,
        "{label}: tasks {tasks_held:.1} vs thread {thread_held:.1} GIL-held samples"
    );
}

/// `--async`: a flame graph shows tasks, not the event loop: the samples of the workers'
/// coroutine are rooted at `fan-out > worker-a|b`, each under its own task.
#[test]
fn async_stacks_are_rooted_at_the_task_and_its_awaiters() {
    let Some(python) = newer_python() else { return };
    let workload = Workload::start(&python, "async_tasks.py", &["60"]);
    let out = crate::common::hptop(&[
        "report",
        "--pid",
        &workload.pid().to_string(),
        "--duration",
        "3",
        "--async",
        "-f",
        "collapsed",
    ]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let folded = String::from_utf8(out.stdout).unwrap();
    let (mut rooted, mut all) = (0u64, 0u64);
    for line in folded.lines() {
        let Some((stack, n)) = line.rsplit_once(' ') else {
            continue;
        };
        let n: u64 = n.parse().unwrap();
        if stack.contains(";crunch_loop (") {
            all += n;
            let ok = stack.contains(";fan-out (<task>);worker-a (<task>);crunch_loop (")
                || stack.contains(";fan-out (<task>);worker-b (<task>);crunch_loop (");
            if ok {
                assert!(!stack.contains("_run_once"), "{stack}");
                rooted += n;
            }
        }
    }
    // Left unrooted: ticks before the first task list (read at once), and ticks at which
    // the thread was between steps when its running task was read: a few percent quiet,
    // up to half beside the rest of the suite on 2 cores.
    eprintln!("{rooted} of {all} rooted");
    assert!(
        all > 100 && rooted * 100 >= all * 40,
        "{rooted} of {all}:\n{folded}"
    );
}
