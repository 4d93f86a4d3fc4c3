//! `hptop dump` and `hptop ps` on real processes.

use serde_json::Value;

use crate::common::{default_python, hptop, Workload};

fn dump(pid: u32) -> Value {
    let out = hptop(&["dump", "--pid", &pid.to_string(), "--format", "json"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn dump_shows_every_thread_with_stack_and_counters_that_only_grow() {
    let python = default_python();
    let workload = Workload::start(&python, "cpu_threads.py", &["2", "30"]);
    let first = dump(workload.pid());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let second = dump(workload.pid());
    assert_eq!(first["schema"], "hptop.dump/1");
    let threads = second["threads"].as_array().unwrap();
    assert_eq!(threads.iter().filter(|t| t["python"] == true).count(), 4);
    let worker = threads.iter().find(|t| t["name"] == "worker-0").unwrap();
    // In `burn`, or in the `stop.is_set()` it calls once per 1,000 iterations (a thread
    // that lost the GIL often waits right at that call's start).
    let innermost: Vec<&str> = worker["frames"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        innermost.first() == Some(&"burn")
            || innermost == ["Event.is_set", "burn"]
            || innermost == ["is_set", "burn"],
        "{innermost:?}"
    );
    let main = threads.iter().find(|t| t["name"] == "MainThread").unwrap();
    assert_eq!(main["tid"], workload.pid());
    // The GIL has one holder at most.
    assert!(threads.iter().filter(|t| t["holds_gil"] == true).count() <= 1);
    for t in first["threads"].as_array().unwrap() {
        let Some(later) = threads.iter().find(|u| u["tid"] == t["tid"]) else {
            continue;
        };
        for key in [
            "cpu_s",
            "minor_faults",
            "major_faults",
            "voluntary_ctxsw",
            "involuntary_ctxsw",
        ] {
            let (a, b) = (t[key].as_f64().unwrap(), later[key].as_f64().unwrap());
            assert!(b >= a, "{key} of {} went down: {a} -> {b}", t["tid"]);
        }
    }
    let cpu = |d: &Value| {
        d["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "worker-0")
            .unwrap()["cpu_s"]
            .as_f64()
            .unwrap()
    };
    assert!(cpu(&second) > cpu(&first), "a busy worker's CPU time grows");

    let text = hptop(&["dump", "--pid", &workload.pid().to_string()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Thread ")
            && text.contains("\"worker-1\"")
            && text.contains("burn (cpu_threads.py:")
    );
}

#[test]
fn ps_lists_the_python_workload() {
    let python = default_python();
    let workload = Workload::start(&python, "idle.py", &[]);
    let out = hptop(&["ps", "--format", "json"]);
    assert!(out.status.success());
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["pid"] == workload.pid())
        .unwrap_or_else(|| panic!("pid {} not in {rows}", workload.pid()));
    assert!(
        row["python_version"].as_str().unwrap().starts_with("3."),
        "{row}"
    );
    assert!(row["command"].as_str().unwrap().contains("idle.py"));
    assert_eq!(row["user"], "root");
    let text = hptop(&["ps"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains(&workload.pid().to_string()));
}

#[test]
fn dump_shows_true_thread_states_also_when_blocking() {
    let python = default_python();
    let workload = Workload::start(&python, "idle_pool.py", &["3", "30"]);
    let pid = workload.pid().to_string();
    for blocking in [false, true] {
        let mut args = vec!["dump", "--pid", &pid, "--format", "json"];
        if blocking {
            args.push("--blocking");
        }
        let out = hptop(&args);
        assert!(out.status.success(), "{}", crate::common::stderr(&out));
        let dump: Value = serde_json::from_slice(&out.stdout).unwrap();
        let threads = dump["threads"].as_array().unwrap();
        for t in threads
            .iter()
            .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with("pool-")))
        {
            assert_eq!(
                t["state"], "S",
                "blocking={blocking}: a pool thread blocked on a queue: {t}"
            );
            assert_eq!(
                t["frames"][0]["name"], "Condition.wait",
                "blocking={blocking}"
            );
        }
        let compute = threads.iter().find(|t| t["name"] == "compute").unwrap();
        let frames = compute["frames"].as_array().unwrap();
        assert!(
            frames.iter().any(|f| f["name"] == "compute"),
            "blocking={blocking}: {compute}"
        );
    }
}

#[test]
fn a_400_deep_recursion_is_read_whole_on_every_python() {
    // 3.11-3.14 read a thread's newest frames in one read of its data stack, the others frame
    // by frame: every version must give the whole stack, innermost first.
    for python in crate::common::all_pythons() {
        let workload = Workload::start(&python, "deep_recursion.py", &["400", "60"]);
        let out = hptop(&[
            "dump",
            "--pid",
            &workload.pid().to_string(),
            "--format",
            "json",
            "--blocking",
        ]);
        assert!(
            out.status.success(),
            "{}: {}",
            python.label,
            crate::common::stderr(&out)
        );
        let dump: Value = serde_json::from_slice(&out.stdout).unwrap();
        // The main thread (no name: the workload never imports threading).
        let main = dump["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tid"] == workload.pid())
            .unwrap_or_else(|| panic!("{}: no main thread", python.label));
        let frames = main["frames"].as_array().unwrap();
        let names: Vec<&str> = frames.iter().filter_map(|f| f["name"].as_str()).collect();
        assert_eq!(names.first(), Some(&"leaf"), "{}: {names:?}", python.label);
        let descend = names.iter().filter(|n| n.ends_with("descend")).count();
        assert_eq!(descend, 401, "{}: {} frames", python.label, names.len());
        assert!(
            names.last().is_some_and(|n| n.contains("module")),
            "{}: {names:?}",
            python.label
        );
    }
}

/// Share of the alternator's samples (tests/workloads/alternate.py) whose stack below `loop` is
/// no prefix of either call chain: a stack the program can never have, read while it changed.
fn impossible_share(report: &Value) -> (f64, u64) {
    let chains = [
        ["left", "left_mid", "left_leaf"],
        ["right", "right_mid", "right_leaf"],
    ];
    let (mut possible, mut impossible) = (0, 0);
    let stacks = report["processes"][0]["stacks"].as_array().cloned();
    for s in stacks.unwrap_or_default() {
        let names: Vec<&str> = s["frames"]
            .as_array()
            .map(|f| f.iter().filter_map(|f| f["name"].as_str()).collect())
            .unwrap_or_default();
        let Some(at) = names.iter().position(|n| *n == "loop") else {
            continue;
        };
        let below: Vec<&str> = names[at + 1..]
            .iter()
            .copied()
            .filter(|n| !n.ends_with("is_set"))
            .collect();
        let samples = s["samples"].as_u64().unwrap_or(0);
        if chains.iter().any(|c| c.starts_with(&below)) {
            possible += samples;
        } else {
            impossible += samples;
        }
    }
    let total = possible + impossible;
    (impossible as f64 * 100.0 / total.max(1) as f64, total)
}

/// Issue 23: stacks read without pausing while they change must not come back as ones the
/// program never had. Before py-spy patch 20, 3.11-3.14 tore 1-5 % of the alternator's
/// stacks (a frame popped while the chunk was copied, walked as if live) and 3.15 78 %; the
/// walk now checks that each frame fits (live, and its function where its caller's call left
/// it) and reads the stack again when one does not: measured 0-0.2 % on 10 s runs. Versions
/// before 3.11 read frame objects that stay put: 0 %. The read-again and dropped counts are
/// in the report, and drops stay rare.
#[test]
fn stacks_of_a_thread_alternating_call_chains_are_not_torn_on_every_python() {
    for python in crate::common::all_pythons() {
        let workload = Workload::start(&python, "alternate.py", &["60"]);
        let out = hptop(&[
            "report",
            "--pid",
            &workload.pid().to_string(),
            "--duration",
            "3",
            "--mode",
            "samples",
            "--format",
            "json",
            "--stacks",
        ]);
        assert!(out.status.success(), "{}", python.label);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (share, samples) = impossible_share(&report);
        eprintln!(
            "{}: {share:.2}% of {samples} samples impossible",
            python.label
        );
        assert!(samples >= 100, "{}: {samples} samples", python.label);
        // 2 %: this is the debug build beside the suite's other tests, whose walks take
        // longer than a release build's and race more (a clean-clone CI run: 1.66 % of 301
        // on pyenv 3.11.7, where the release build measures 0.1-0.7 % quiet, 10 s).
        assert!(share <= 2.0, "{}: {share:.2}% torn", python.label);
        let reread = report["stacks_reread"].as_u64().unwrap();
        let dropped = report["stacks_dropped"].as_u64().unwrap();
        eprintln!("{}: {reread} read again, {dropped} dropped", python.label);
        // (Under load the thread runs less while read: fewer reads race, maybe none; the
        // fields are there either way.) 5 %: the debug build beside the suite (a clean-clone
        // CI run: 6 of 295 on Debian's 3.11 with patch 25's stricter checks; the release
        // build drops 0.1-0.7 % quiet, 20 s).
        assert!(
            dropped * 20 <= samples,
            "{}: {dropped} dropped",
            python.label
        );
    }
}

/// The interpreter's main thread is `MainThread` on every version, also in a program that
/// never imports `threading` (3.14 and 3.15 start without it): in dump, in JSON stacks and
/// in speedscope (issue 27; 3.11 always said so).
#[test]
fn the_main_thread_is_main_thread_without_threading_on_every_python() {
    for python in crate::common::all_pythons() {
        let workload = Workload::start(&python, "no_threading.py", &[]);
        let pid = workload.pid().to_string();
        let dump = hptop(&["dump", "--pid", &pid]);
        let text = String::from_utf8_lossy(&dump.stdout).into_owned();
        assert!(
            text.contains(&format!("Thread {pid} \"MainThread\"")),
            "{}: {text}",
            python.label
        );
        let out = hptop(&["report", "--pid", &pid, "-d", "1", "-f", "json", "--stacks"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let stacks = report["processes"][0]["stacks"].as_array().unwrap();
        assert!(!stacks.is_empty(), "{}: no stacks", python.label);
        for stack in stacks {
            assert_eq!(stack["thread"], "MainThread", "{}: {stack}", python.label);
        }
        let out = hptop(&["report", "--pid", &pid, "-d", "1", "-f", "speedscope"]);
        let speedscope: Value = serde_json::from_slice(&out.stdout).unwrap();
        let name = speedscope["profiles"][0]["name"]
            .as_str()
            .unwrap_or_default();
        assert!(name.starts_with("MainThread ("), "{}: {name}", python.label);
    }
}

/// Class-based code read while paused (`--blocking`) comes back whole on every Python: a
/// class called (`__init__`, through a shim on 3.13+, not shown), a property, `__getitem__`
/// and a method each hold about a quarter of the worker's samples (tests/workloads/classes.py),
/// and no paused read is dropped: a read the same as the one before it is of a thread that
/// did not move, so it is kept whatever the torn-stack check makes of it (py-spy patch 25;
/// before, 1-2 % of paused reads on 3.11-3.14 were dropped as torn).
#[test]
fn paused_reads_of_class_based_code_are_whole_on_every_python() {
    for python in crate::common::all_pythons() {
        let (paths, report) = class_paths(&python, &["--blocking"]);
        let total: u64 = paths.values().sum();
        eprintln!("{}: {paths:?}", python.label);
        assert!(total >= 100, "{}: {total} worker samples", python.label);
        for path in ["__init__>calc", "calc", "total", "__getitem__"] {
            let share = paths.get(path).copied().unwrap_or(0) * 100 / total;
            assert!(share >= 8, "{}: {path} {share}% of {paths:?}", python.label);
        }
        assert!(
            !paths.keys().any(|p| p.contains("__init__>__init__")),
            "{}: the shim shown: {paths:?}",
            python.label
        );
        assert_eq!(report["stacks_dropped"], 0, "{}", python.label);
    }
}

/// Read without pausing on 3.12, a thread that just returned from `__init__` (run in an
/// evaluation of its own, called from C) was read through that evaluation's old `cframe`: its
/// entry frame on the C stack, whose caller is `work`. Those samples showed `work` running
/// its own code in 58-68 % of the worker's samples (paused reference: 3-7 %). A walk that
/// starts outside the data-stack chunk must reach the chunk at its newest frame (py-spy patch
/// 26), else the sample is dropped: 14-23 % now (the rest of the gap is samples of the other
/// paths dropped; docs/figures.md, dropped share). And a property read without pausing on
/// 3.12 is not dropped as torn: its specialized call moves the receiver into the getter and
/// clears the caller's slot, so no function object is on the caller's stack; the getter is
/// cached in the caller's own instruction (py-spy patch 29). Before, `total` read 0 % (paused
/// reference: ~20 %).
#[test]
fn a_returned_evaluation_is_not_read_as_its_callers_stack_on_3_12() {
    let Some(python) = crate::common::all_pythons()
        .into_iter()
        .find(|p| p.label.starts_with("pyenv-3.12"))
    else {
        eprintln!("SKIP: no pyenv Python 3.12");
        return;
    };
    let (paths, _) = class_paths(&python, &[]);
    let total: u64 = paths.values().sum();
    let own = paths.get("").copied().unwrap_or(0) * 100 / total.max(1);
    eprintln!("{}: work's own code {own}% of {paths:?}", python.label);
    assert!(total >= 50, "{}: {total} worker samples", python.label);
    assert!(
        own <= 40,
        "{}: work's own code {own}% of {paths:?}",
        python.label
    );
    let property = paths.get("total").copied().unwrap_or(0) * 100 / total.max(1);
    assert!(
        property >= 4,
        "{}: the property {property}% of {paths:?}",
        python.label
    );
}

/// Read without pausing on 3.11 and 3.12, a class's `__init__` runs in an evaluation of its
/// own, called from C, and a thread state copied between two calls names the outer
/// evaluation's `cframe`, whose current frame is `work`: the frames above it were missed and
/// the sample read again, and dropped after three tries; `__init__ > calc` held 5-11 % of
/// the worker's samples against ~25 % paused, 40 % of the samples dropped on 3.11. The frames
/// above are now found in the copy, each linked to the one below, the first an evaluation's
/// entry (py-spy patch 30): 14-30 % in this debug build. At most 2 % of stacks the program
/// cannot have, and at most a quarter as many dropped as kept (3.12 dropped half as many as it
/// kept before py-spy patch 34).
#[test]
fn a_function_called_from_c_is_read_without_pausing_on_3_11_and_3_12() {
    let pythons: Vec<_> = crate::common::all_pythons()
        .into_iter()
        .filter(|p| {
            ["debian-3.11", "pyenv-3.11", "pyenv-3.12"]
                .iter()
                .any(|l| p.label.starts_with(l))
        })
        .collect();
    if pythons.is_empty() {
        eprintln!("SKIP: no Python 3.11 or 3.12");
    }
    for python in pythons {
        let (paths, report) = class_paths(&python, &[]);
        let total: u64 = paths.values().sum();
        let init = paths.get("__init__>calc").copied().unwrap_or(0) * 100 / total.max(1);
        eprintln!("{}: __init__>calc {init}% of {paths:?}", python.label);
        assert!(total >= 50, "{}: {total} worker samples", python.label);
        assert!(
            init >= 10,
            "{}: __init__>calc {init}% of {paths:?}",
            python.label
        );
        // Paths the program has. 3.11 also reads `calc > calc` (a returned frame's header
        // copied with the slots of the `__init__` pushed over it): in up to 1 % of 2 s in a
        // release build before py-spy patch 31, 0 of 4,353 after; this debug build, beside
        // the suite, still read 2 of 194 in a clean-clone run (its slower reads race in
        // ways patch 31 does not catch): 2 %, as the alternating-chains test allows.
        let possible = [
            "",
            "__init__",
            "__init__>calc",
            "calc",
            "total",
            "__getitem__",
        ];
        let impossible: u64 = paths
            .iter()
            .filter(|(p, _)| !possible.contains(&p.as_str()))
            .map(|(_, n)| n)
            .sum();
        assert!(
            impossible * 50 <= total,
            "{}: {impossible} impossible in {paths:?}",
            python.label
        );
        // Dropped: 40-45 % before patch 30 (3.11 and 3.12); on 3.12 ~30 % until a start
        // found stale only when its walk reached the chunk was read again rather than dropped
        // (py-spy patch 34): now 8-13 % in a release build.
        let dropped = report["stacks_dropped"].as_u64().unwrap_or(0);
        eprintln!("{}: {dropped} dropped", python.label);
        assert!(
            dropped * 4 <= total,
            "{}: {dropped} dropped, {total} kept",
            python.label
        );
    }
}

/// Read without pausing, class-based code's frames are often copied while the thread moves:
/// a link from them that leads nowhere readable is a race, read again, not a failed read.
/// Before (py-spy patch 34) 3.13 failed 4 % of its reads (`Failed to copy PyCodeObject: Bad
/// address`), 3.12 about 1 %, each shown as an error in the report's header.
#[test]
fn racing_reads_of_class_based_code_are_read_again_not_failed_on_3_11_and_later() {
    let pythons: Vec<_> = crate::common::all_pythons()
        .into_iter()
        .filter(|p| p.minor().is_some_and(|m| m >= 11))
        .collect();
    if pythons.is_empty() {
        eprintln!("SKIP: no Python 3.11 or later");
    }
    for python in pythons {
        let (paths, report) = class_paths(&python, &[]);
        let total: u64 = paths.values().sum();
        let errors = report["sample_errors"].as_u64().unwrap_or(0);
        eprintln!("{}: {errors} failed reads, {total} kept", python.label);
        assert!(total >= 50, "{}: {total} worker samples", python.label);
        assert!(
            errors * 100 <= total,
            "{}: {errors} failed reads ({}), {total} kept",
            python.label,
            report["first_sample_error"]
        );
    }
}

/// Runs tests/workloads/classes.py under `report` (2 s, `extra` arguments) and returns the
/// worker's samples by the path below `work` ("" for `work`'s own code), with the report.
fn class_paths(
    python: &crate::common::Python,
    extra: &[&str],
) -> (std::collections::BTreeMap<String, u64>, Value) {
    let workload = Workload::start(python, "classes.py", &["60"]);
    let pid = workload.pid().to_string();
    let mut args = vec![
        "report",
        "--pid",
        &pid,
        "--duration",
        "2",
        "--mode",
        "samples",
        "--format",
        "json",
        "--stacks",
    ];
    args.extend_from_slice(extra);
    let out = hptop(&args);
    assert!(out.status.success(), "{}", python.label);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut paths = std::collections::BTreeMap::<String, u64>::new();
    for stack in report["processes"][0]["stacks"].as_array().unwrap() {
        if stack["thread"] != "worker" {
            continue;
        }
        let names: Vec<&str> = stack["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().rsplit('.').next().unwrap())
            .collect();
        let Some(at) = names.iter().position(|&n| n == "work") else {
            continue;
        };
        let path = names[at + 1..].join(">");
        *paths.entry(path).or_default() += stack["samples"].as_u64().unwrap();
    }
    (paths, report)
}

/// `--json`, as py-spy spells it (`py-spy dump --json`), is `--format json` for dump, ps and
/// report; given with `--format` it is a usage error.
#[test]
fn the_json_flag_of_py_spy_is_format_json() {
    let python = default_python();
    let workload = Workload::start(&python, "idle.py", &[]);
    let pid = workload.pid().to_string();
    let json = |args: &[&str]| -> Value {
        let out = hptop(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            crate::common::stderr(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} is not JSON ({e})"))
    };
    assert_eq!(
        json(&["dump", "--pid", &pid, "--json"])["schema"],
        "hptop.dump/1"
    );
    let rows = json(&["ps", "--json"]);
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["pid"] == workload.pid()));
    let report = json(&["report", "--pid", &pid, "--duration", "0.5", "--json"]);
    assert_eq!(report["processes"][0]["pid"], workload.pid());
    let both = hptop(&["dump", "--pid", &pid, "--json", "--format", "text"]);
    assert_eq!(both.status.code(), Some(2));
}
