//! Recordings: what `report --input` reads back is what the live report saw; a killed
//! recorder leaves a readable file; windows, sizes and full disks behave as documented.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{default_python, hptop, report_json, stderr, workload_path, Workload};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hptop-it-rec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The report without what depends on when and by whom it was made.
fn figures(mut report: Value) -> Value {
    if let Some(o) = report.as_object_mut() {
        o.remove("started_at");
        o.remove("hptop_cpu_s");
    }
    report
}

fn input_report(file: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--input", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    report_json(&args)
}

#[test]
fn a_report_from_the_recording_equals_the_live_report_of_the_same_window() {
    let dir = temp_dir("exact");
    let python = default_python();
    for (name, script, extra) in [
        ("threads", "cpu_threads.py", &[][..]),
        ("pool", "pool.py", &["--subprocesses"][..]),
    ] {
        let workload = Workload::start(&python, script, &[]);
        let file = dir.join(format!("{name}.hptop"));
        let pid = workload.pid().to_string();
        let mut args = vec![
            "--pid",
            &pid,
            "--duration",
            "3",
            "--record",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let live = report_json(&args);
        let replayed = input_report(&file, &[]);
        let (live, replayed) = (figures(live), figures(replayed));
        let processes = live["processes"].as_array().map_or(0, Vec::len);
        assert!(live["samples"].as_u64().unwrap() > 100, "{name}");
        if name == "pool" {
            assert!(processes >= 4, "pool: {processes} processes");
        }
        // Every figure: samples, every function's samples and counters, per-thread GIL, CPU.
        assert!(
            live == replayed,
            "{name}: the report from the recording differs"
        );
    }
}

#[test]
fn a_window_of_a_recording_counts_only_its_ticks() {
    let dir = temp_dir("window");
    let file = dir.join("w.hptop");
    let python = default_python();
    let workload = Workload::start(&python, "cpu_threads.py", &[]);
    let pid = workload.pid().to_string();
    let out = hptop(&[
        "record",
        "--pid",
        &pid,
        "--duration",
        "4",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("bytes per thread-sample"),
        "{}",
        stderr(&out)
    );
    let whole = input_report(&file, &[]);
    let part = input_report(&file, &["--from", "1s", "--to", "3s"]);
    let samples = |r: &Value| r["samples"].as_f64().unwrap();
    // Two of the four seconds: about half the samples, whatever the rate reached.
    let ratio = samples(&part) / samples(&whole);
    assert!(
        (0.35..=0.65).contains(&ratio),
        "window holds {ratio:.2} of the samples"
    );
    // A window past the end is an error saying so, not an empty report.
    let out = hptop(&["report", "--input", file.to_str().unwrap(), "--from", "1h"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no sample in that window"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_recorder_killed_mid_run_leaves_a_readable_file() {
    let dir = temp_dir("kill");
    let file = dir.join("k.hptop");
    let python = default_python();
    let workload = Workload::start(&python, "cpu_threads.py", &[]);
    let mut recorder = Command::new(env!("CARGO_BIN_EXE_hptop"))
        .args([
            "record",
            "--pid",
            &workload.pid().to_string(),
            "-o",
            file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(3500));
    recorder.kill().unwrap();
    let ran = started.elapsed().as_secs_f64();
    let _ = recorder.wait();
    // The target kept running (not left stopped).
    assert!(crate::common::thread_states(workload.pid()).contains(&'R'));
    let report = input_report(&file, &[]);
    let samples = report["samples"].as_f64().unwrap();
    let rate = report["rate_hz"].as_f64().unwrap_or(100.0);
    // At most about the last second (plus attach time) is lost.
    assert!(
        samples >= (ran - 2.0) * rate * 0.5,
        "{samples} samples of {ran:.1} s"
    );
}

#[test]
fn existing_files_and_links_are_refused_and_a_full_disk_stops_the_recording_cleanly() {
    let dir = temp_dir("safe");
    let python = default_python();
    let workload = Workload::start(&python, "cpu_threads.py", &[]);
    let pid = workload.pid().to_string();
    let existing = dir.join("exists.hptop");
    std::fs::write(&existing, b"keep me").unwrap();
    let out = hptop(&[
        "record",
        "--pid",
        &pid,
        "-d",
        "1",
        "-o",
        existing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    let link = dir.join("link.hptop");
    std::os::unix::fs::symlink(&existing, &link).unwrap();
    let out = hptop(&[
        "record",
        "--pid",
        &pid,
        "-d",
        "1",
        "--force",
        "-o",
        link.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");

    // A full disk: a 64 KiB tmpfs (root only).
    let small = dir.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=64k",
            "tmpfs",
            small.to_str().unwrap(),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIP: full-disk case needs root to mount a small tmpfs");
        return;
    }
    let file = small.join("full.hptop");
    let many = Workload::start(&python, "idle_pool.py", &["200"]);
    let out = hptop(&[
        "record",
        "--pid",
        &many.pid().to_string(),
        "-d",
        "30",
        "-o",
        file.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    let report = input_report(&file, &[]);
    let _ = Command::new("umount").arg(&small).status();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the disk is full") && err.contains("stays readable"),
        "{err}"
    );
    assert!(report["samples"].as_u64().unwrap() > 0);
    let _ = workload_path("idle_pool.py");
}

/// A recording of `cpu_threads.py WORKERS` for SECS seconds, in a fresh directory named
/// after `name`: (directory, file).
fn recorded_cpu_threads(name: &str, workers: &str, secs: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let file = dir.join("r.hptop");
    let workload = Workload::start(&default_python(), "cpu_threads.py", &[workers, "60"]);
    let pid = workload.pid().to_string();
    let out = hptop(&[
        "record",
        "--pid",
        &pid,
        "--duration",
        secs,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (dir, file)
}

/// A `secs` recording of `script` (no arguments) in a fresh directory `name`.
fn recorded(name: &str, script: &str, secs: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let file = dir.join("r.hptop");
    let workload = Workload::start(&default_python(), script, &[]);
    let pid = workload.pid().to_string();
    let out = hptop(&[
        "record",
        "--pid",
        &pid,
        "-d",
        secs,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (dir, file)
}

/// Sum over the first process's functions of their own samples.
fn own_samples(report: &Value) -> u64 {
    report["processes"][0]["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["own_samples"].as_u64().unwrap())
        .sum()
}

/// Sum of the counts of folded-stack lines.
fn folded_total(folded: &str) -> u64 {
    folded_count_of(folded, "")
}

/// Samples of the collapsed stacks that hold `frame`.
fn folded_count_of(folded: &str, frame: &str) -> u64 {
    folded
        .lines()
        .filter(|l| l.contains(frame))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

#[test]
fn collapsed_stacks_and_flame_graphs_count_what_the_report_counts() {
    let (_, file) = recorded_cpu_threads("stacks", "3", "3");
    let report = input_report(&file, &[]);
    let functions = report["processes"][0]["functions"].as_array().unwrap();
    let own = own_samples(&report);
    let run = |args: &[&str]| {
        let mut all = vec!["report", "--input", file.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = hptop(&all);
        assert!(out.status.success(), "{all:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    // Samples: every thread-sample counted once, as the report's functions count them.
    let folded = run(&["-f", "collapsed"]);
    assert_eq!(folded_total(&folded), own, "{folded}");
    // Each stack is rooted at its thread; the hot function is the heaviest leaf.
    let heaviest = folded
        .lines()
        .max_by_key(|l| {
            l.rsplit_once(' ')
                .map_or(0, |(_, n)| n.parse::<u64>().unwrap_or(0))
        })
        .unwrap();
    assert!(heaviest.starts_with("worker-"), "{heaviest}");
    assert!(heaviest.contains(";burn (cpu_threads.py) "), "{heaviest}");
    // The JSON report carries the same stacks with --stacks (and none without).
    let with_stacks = input_report(&file, &["--stacks"]);
    let stacks = with_stacks["processes"][0]["stacks"].as_array().unwrap();
    let stack_samples: u64 = stacks.iter().map(|s| s["samples"].as_u64().unwrap()).sum();
    assert_eq!(stack_samples, own);
    assert!(stacks.iter().any(|s| s["frames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "burn")));
    assert!(report["processes"][0].get("stacks").is_none());
    // Merged threads: the same total, fewer lines.
    let merged = run(&["-f", "collapsed", "--no-threads"]);
    assert_eq!(folded_total(&merged), own);
    assert!(merged.lines().count() < folded.lines().count());
    // CPU weight: the on-CPU µs credited, within rounding of each stack.
    let cpu_s: f64 = functions.iter().map(|f| f["cpu_s"].as_f64().unwrap()).sum();
    let cpu = run(&["-f", "collapsed", "--weight", "cpu"]);
    let lines = cpu.lines().count() as f64;
    let credited_us = folded_total(&cpu) as f64;
    assert!(
        (credited_us - cpu_s * 1e6).abs() <= lines,
        "{credited_us} µs vs {cpu_s} s"
    );
    // The SVG names the hot function; a weight nothing was credited with is an error.
    let svg = run(&["-f", "flamegraph"]);
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("burn (cpu_threads.py)"));
    let out = hptop(&[
        "report",
        "--input",
        file.to_str().unwrap(),
        "-f",
        "flamegraph",
        "--weight",
        "major-faults",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing to draw"), "{}", stderr(&out));
}

#[test]
fn pprof_output_decodes_with_every_sample_type_and_the_hot_function_first() {
    let (dir, file) = recorded_cpu_threads("pprof", "2", "2");
    let path = dir.join("p.pb.gz");
    let out = hptop(&[
        "report",
        "--input",
        file.to_str().unwrap(),
        "-f",
        "pprof",
        "--weight",
        "cpu",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "pprof files are gzipped");
    let profile = hptop::report::pprof::decode(&bytes).unwrap();
    let text = |i: i64| profile.string_table[i as usize].as_str();
    assert_eq!(text(0), "");
    let types: Vec<(&str, &str)> = profile
        .sample_type
        .iter()
        .map(|t| (text(t.r#type), text(t.unit)))
        .collect();
    assert_eq!(
        types,
        [
            ("samples", "count"),
            ("cpu", "nanoseconds"),
            ("minor_faults", "count"),
            ("major_faults", "count"),
            ("voluntary_switches", "count"),
            ("involuntary_switches", "count"),
            ("io", "bytes"),
        ]
    );
    assert_eq!(text(profile.default_sample_type), "cpu");
    assert!(profile.period > 0 && profile.duration_nanos > 0 && profile.time_nanos > 0);
    // The same samples and CPU as the report; every location and function exists.
    let report = input_report(&file, &[]);
    let sum = |i: usize| profile.sample.iter().map(|s| s.value[i]).sum::<i64>();
    assert_eq!(sum(0) as u64, own_samples(&report));
    let cpu_s: f64 = report["processes"][0]["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["cpu_s"].as_f64().unwrap())
        .sum();
    let credited_ns = sum(1) as f64;
    assert!(
        (credited_ns - cpu_s * 1e9).abs() <= profile.sample.len() as f64,
        "{credited_ns} ns vs {cpu_s} s"
    );
    let function_of = |location: u64| {
        let l = profile.location.iter().find(|l| l.id == location).unwrap();
        profile
            .function
            .iter()
            .find(|f| f.id == l.line[0].function_id)
            .unwrap()
    };
    // The heaviest sample by CPU: `burn` innermost (leaf first), with its file and first
    // line; its root is the thread.
    let heaviest = profile.sample.iter().max_by_key(|s| s.value[1]).unwrap();
    let leaf = function_of(heaviest.location_id[0]);
    assert_eq!(text(leaf.name), "burn");
    assert!(text(leaf.filename).contains("cpu_threads.py"));
    let def_line = i64::from(crate::common::line_of("cpu_threads.py", "def burn"));
    assert_eq!(leaf.start_line, def_line);
    let root = function_of(*heaviest.location_id.last().unwrap());
    assert!(
        text(root.name).starts_with("worker-"),
        "{}",
        text(root.name)
    );
    let labels: Vec<&str> = heaviest.label.iter().map(|l| text(l.key)).collect();
    assert_eq!(labels, ["pid", "tid", "thread"]);
    // The JSON report gives the same first line.
    let burn = report["processes"][0]["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "burn")
        .unwrap();
    assert_eq!(burn["line"].as_i64(), Some(def_line));
    // Standard output gets it when it is not a terminal.
    let piped = hptop(&["report", "--input", file.to_str().unwrap(), "-f", "pprof"]);
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert!(hptop::report::pprof::decode(&piped.stdout).is_ok());
}

#[test]
fn speedscope_output_follows_the_file_format_and_weighs_like_the_report() {
    let (dir, file) = recorded_cpu_threads("speedscope", "2", "2");
    let json_path = dir.join("s.speedscope.json");
    let out = hptop(&[
        "report",
        "--input",
        file.to_str().unwrap(),
        "-f",
        "speedscope",
        "-o",
        json_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    // Validated against speedscope's format (jsonschema for python3; .ci/run installs it).
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/speedscope-file-format-schema.json");
    let check = Command::new("python3")
        .args([
            "-c",
            "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('valid')",
            json_path.to_str().unwrap(),
            schema.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr);
    if said.contains("No module named 'jsonschema'") {
        eprintln!("SKIP: the schema check needs jsonschema for python3 (.ci/run installs it)");
    } else {
        assert!(check.status.success(), "not valid speedscope: {said}");
    }
    // One profile per thread; the weights add up to the report's own samples; every sample
    // names frames that exist, root first (the thread's bootstrap, not `burn`).
    let report = input_report(&file, &[]);
    let own = own_samples(&report);
    let frames = doc["shared"]["frames"].as_array().unwrap();
    let mut total = 0;
    for p in doc["profiles"].as_array().unwrap() {
        for (stack, w) in p["samples"]
            .as_array()
            .unwrap()
            .iter()
            .zip(p["weights"].as_array().unwrap())
        {
            total += w.as_u64().unwrap();
            let ids: Vec<usize> = stack
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as usize)
                .collect();
            assert!(ids.iter().all(|&i| i < frames.len()));
            if frames[*ids.last().unwrap()]["name"] == "burn" && ids.len() > 1 {
                assert_ne!(frames[ids[0]]["name"], "burn");
            }
        }
    }
    assert_eq!(total, own);
    let names: Vec<&str> = doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("worker-0 (")),
        "{names:?}"
    );
}

/// In a speedscope file's profile, the positions of the samples whose innermost frame is
/// `early_work` and of those in `late_work`.
fn early_and_late_positions(doc: &Value, profile: &str) -> (Vec<usize>, Vec<usize>) {
    let frames = doc["shared"]["frames"].as_array().unwrap();
    let p = doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap().starts_with(profile))
        .unwrap_or_else(|| panic!("no profile {profile}: {doc}"));
    let (mut early, mut late) = (Vec::new(), Vec::new());
    for (i, stack) in p["samples"].as_array().unwrap().iter().enumerate() {
        let leaf = stack.as_array().unwrap().last().unwrap().as_u64().unwrap() as usize;
        match frames[leaf]["name"].as_str().unwrap() {
            "early_work" => early.push(i),
            "late_work" => late.push(i),
            _ => {}
        }
    }
    (early, late)
}

#[test]
fn speedscope_samples_are_in_time_order_live_and_from_a_recording() {
    let dir = temp_dir("timeorder");
    let file = dir.join("t.hptop");
    let json = dir.join("live.speedscope.json");
    let python = default_python();
    // Live: `early_work` for 2 s, then `late_work`; recorded at the same time.
    let out = hptop(&[
        "report",
        "-d",
        "5",
        "-f",
        "speedscope",
        "-o",
        json.to_str().unwrap(),
        "--record",
        file.to_str().unwrap(),
        "--",
        python.path.to_str().unwrap(),
        workload_path("switch_hot.py").to_str().unwrap(),
        "2",
        "60",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let from_recording = hptop(&[
        "report",
        "--input",
        file.to_str().unwrap(),
        "-f",
        "speedscope",
    ]);
    assert!(
        from_recording.status.success(),
        "{}",
        stderr(&from_recording)
    );
    let docs = [
        serde_json::from_slice::<Value>(&std::fs::read(&json).unwrap()).unwrap(),
        serde_json::from_slice::<Value>(&from_recording.stdout).unwrap(),
    ];
    for doc in &docs {
        let (early, late) = early_and_late_positions(doc, "worker (");
        assert!(!early.is_empty() && !late.is_empty(), "{doc}");
        // Every `early_work` sample comes before every `late_work` one: the job's timeline.
        assert!(early.iter().max() < late.iter().min(), "{early:?} {late:?}");
        // Several slices: more samples than distinct stacks.
        assert!(early.len() + late.len() > 2, "{early:?} {late:?}");
    }
}

#[test]
fn a_diff_of_two_windows_names_the_function_that_took_over_with_the_right_signs() {
    let dir = temp_dir("diff");
    let file = dir.join("d.hptop");
    let python = default_python();
    // `early_work` for 3 s, then `late_work`.
    let out = hptop(&[
        "record",
        "-d",
        "6",
        "-o",
        file.to_str().unwrap(),
        "--",
        python.path.to_str().unwrap(),
        workload_path("switch_hot.py").to_str().unwrap(),
        "3",
        "60",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (base, new) = (
        format!("{}@0..2.5", file.display()),
        format!("{}@3.5..6", file.display()),
    );
    let out = hptop(&["diff", &base, &new, "-f", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let diff: Value = serde_json::from_slice(&out.stdout).unwrap();
    let delta = |name: &str| {
        diff["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .map_or(0.0, |f| f["delta"].as_f64().unwrap())
    };
    assert!(delta("late_work") > 80.0, "{diff}");
    assert!(delta("early_work") < -80.0, "{diff}");
    // The biggest changes come first; text says both; the SVG is the differential one.
    let first = diff["functions"][0]["name"].as_str().unwrap();
    assert!(first == "late_work" || first == "early_work", "{first}");
    let text = String::from_utf8(hptop(&["diff", &base, &new]).stdout).unwrap();
    let (up, down) = text.split_once("Down:").unwrap();
    assert!(
        up.contains("late_work") && down.contains("early_work"),
        "{text}"
    );
    let svg = String::from_utf8(hptop(&["diff", &base, &new, "-f", "flamegraph"]).stdout).unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("late_work") && svg.contains("+100"),
        "{svg:.300}"
    );
    // A JSON report made with --stacks is a side too.
    let json_report = dir.join("new.json");
    let out = hptop(&[
        "report",
        "--input",
        file.to_str().unwrap(),
        "--from",
        "3.5",
        "-f",
        "json",
        "--stacks",
        "-o",
        json_report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = hptop(&["diff", &base, json_report.to_str().unwrap(), "-f", "json"]);
    let diff: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        diff["functions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "late_work" && f["delta"].as_f64().unwrap() > 80.0),
        "{diff}"
    );
}

#[test]
fn every_period_writes_its_own_report_and_sigusr1_writes_one_at_once() {
    let dir = temp_dir("every");
    let python = default_python();
    let workload = Workload::start(&python, "cpu_threads.py", &["2", "60"]);
    let pid = workload.pid().to_string();
    let pattern = dir.join("r-{n}.json");
    let out = hptop(&[
        "report",
        "--pid",
        &pid,
        "--every",
        "2s",
        "-d",
        "5",
        "-f",
        "json",
        "-o",
        pattern.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let samples: Vec<f64> = (1..=3)
        .map(|n| {
            let path = dir.join(format!("r-{n}.json"));
            let report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            report["samples"].as_f64().unwrap()
        })
        .collect();
    // Periods of 2 s, 2 s and the last 1 s: each report covers its own period only.
    assert!((samples[0] / samples[1] - 1.0).abs() < 0.25, "{samples:?}");
    assert!(samples[2] < samples[1] * 0.75, "{samples:?}");
    assert!(!dir.join("r-4.json").exists());
    // SIGUSR1: the window so far goes to -o, the rest to -o.2.
    let folded = dir.join("u.folded");
    let child = Command::new(env!("CARGO_BIN_EXE_hptop"))
        .args([
            "report",
            "--pid",
            &pid,
            "-d",
            "4",
            "-f",
            "collapsed",
            "-o",
            folded.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    let status = child.wait_with_output().unwrap().status;
    assert!(status.success());
    for path in [folded.clone(), dir.join("u.folded.2")] {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(";burn (cpu_threads.py) "),
            "{}: {text}",
            path.display()
        );
    }
}

/// A thread named after hptop first saw it (started through `_thread`, named `loader` later)
/// is `loader` in every export, as in the JSON report: not `thread (TID)` in speedscope.
#[test]
fn a_thread_named_late_has_its_latest_name_in_every_export() {
    let (dir, file) = recorded("late-name", "late_name.py", "3");
    let input = file.to_str().unwrap();
    let report = report_json(&["--input", input, "--stacks"]);
    let names: Vec<&str> = report["processes"][0]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"loader"), "{names:?}");
    let speedscope = hptop(&["report", "--input", input, "-f", "speedscope"]);
    let speedscope: Value = serde_json::from_slice(&speedscope.stdout).unwrap();
    let profiles: Vec<&str> = speedscope["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        profiles.iter().any(|p| p.starts_with("loader (")),
        "{profiles:?}"
    );
    assert!(
        !profiles.iter().any(|p| p.starts_with("thread (")),
        "{profiles:?}"
    );
    let collapsed = hptop(&["report", "--input", input, "-f", "collapsed"]);
    let collapsed = String::from_utf8_lossy(&collapsed.stdout).into_owned();
    assert!(
        collapsed.lines().any(|l| l.starts_with("loader (")),
        "{collapsed}"
    );
    assert!(
        !collapsed.lines().any(|l| l.starts_with("thread (")),
        "{collapsed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stacks at line granularity (issue 27): pprof Locations carry the line being executed (its
/// Function the `def`), so `go tool pprof -lines` shows the loop's lines; collapsed stacks
/// with `--lines` name frames `func (file:line)`; JSON `--stacks` frames carry the sampled
/// line beside the first. Totals do not change with `--lines`.
#[test]
fn stack_exports_keep_the_sampled_line_of_each_frame() {
    let (dir, file) = recorded("lines", "hot_lines.py", "2");
    let input = file.to_str().unwrap();
    let line = |marker| crate::common::line_of("hot_lines.py", marker);
    let (def, body) = (
        line("# DEF"),
        [line("# LOOP"), line("# HOT-A"), line("# HOT-B")],
    );
    let lines_of_crunch = def..=line("# LAST");
    // JSON: crunch's frames keep its def as `line` and the line it ran as `sampled_line`:
    // one of its own, nearly always one of the loop's.
    let report = report_json(&["--input", input, "--stacks"]);
    let (mut crunch_samples, mut in_loop) = (0, 0);
    for stack in report["processes"][0]["stacks"].as_array().unwrap() {
        let frames = stack["frames"].as_array().unwrap();
        if let Some(leaf) = frames.last().filter(|f| f["name"] == "crunch") {
            assert_eq!(leaf["line"].as_u64(), Some(u64::from(def)), "{leaf}");
            let ran = leaf["sampled_line"].as_u64().unwrap() as u32;
            assert!(lines_of_crunch.contains(&ran), "{leaf}: not crunch's");
            let count = stack["samples"].as_u64().unwrap();
            crunch_samples += count;
            if body.contains(&ran) {
                in_loop += count;
            }
        }
    }
    assert!(crunch_samples > 0, "no crunch stack");
    assert!(
        in_loop * 100 >= crunch_samples * 95,
        "{in_loop} of {crunch_samples} crunch samples on its loop's lines"
    );
    // Collapsed: by line with --lines, the same total either way.
    let folded = |args: &[&str]| {
        let mut all = vec!["report", "--input", input, "-f", "collapsed"];
        all.extend_from_slice(args);
        String::from_utf8(hptop(&all).stdout).unwrap()
    };
    let (by_function, by_line) = (folded(&[]), folded(&["--lines"]));
    assert_eq!(folded_total(&by_function), folded_total(&by_line));
    assert!(
        by_function.contains("crunch (hot_lines.py);")
            || by_function.contains("crunch (hot_lines.py) "),
        "{by_function}"
    );
    assert!(
        body.iter()
            .any(|l| by_line.contains(&format!("crunch (hot_lines.py:{l}) "))),
        "{by_line}"
    );
    // The def's line is run once a call: at most a stray sample, never what stacks are named by.
    let on_def = folded_count_of(&by_line, &format!("crunch (hot_lines.py:{def}) "));
    assert!(
        on_def * 100 <= folded_total(&by_line),
        "{on_def} samples on the def line: {by_line}"
    );
    // pprof: the heaviest leaf location of crunch is a loop line; its function starts at def.
    let path = dir.join("p.pb.gz");
    let out = hptop(&[
        "report",
        "--input",
        input,
        "-f",
        "pprof",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let profile = hptop::report::pprof::decode(&std::fs::read(&path).unwrap()).unwrap();
    let text = |i: i64| profile.string_table[i as usize].as_str();
    let mut by_location: std::collections::HashMap<u64, i64> = std::collections::HashMap::new();
    for s in &profile.sample {
        *by_location.entry(s.location_id[0]).or_default() += s.value[0];
    }
    let (&hot, _) = by_location.iter().max_by_key(|(_, v)| **v).unwrap();
    let location = profile.location.iter().find(|l| l.id == hot).unwrap();
    let function = profile
        .function
        .iter()
        .find(|f| f.id == location.line[0].function_id)
        .unwrap();
    assert_eq!(text(function.name), "crunch");
    assert_eq!(function.start_line, i64::from(def));
    assert!(
        body.contains(&(location.line[0].line as u32)),
        "{:?}",
        location.line
    );
    // go tool pprof (Debian's golang-go), where installed, lists the loop's lines.
    if crate::common::which("go").is_ok() {
        let out = Command::new("go")
            .args(["tool", "pprof", "-lines", "-top", path.to_str().unwrap()])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            body.iter()
                .any(|l| listing.contains(&format!("hot_lines.py:{l}"))),
            "{listing}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("SKIP: go not installed: go tool pprof -lines not checked");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a new user gets wrong with files gets a message that says what was expected.
#[test]
fn file_mistakes_are_explained() {
    let (dir, file) = recorded_cpu_threads("mistakes", "1", "2");
    let input = file.to_str().unwrap();
    let error = |args: &[&str]| {
        let out = hptop(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        stderr(&out)
    };
    let err = error(&["report", "--input", dir.to_str().unwrap()]);
    assert!(
        err.contains("is a directory") && err.contains("hptop report --help"),
        "{err}"
    );
    let err = error(&["diff", "/bin/ls", input]);
    assert!(err.contains("neither an hptop recording"), "{err}");
    let err = error(&["diff", &format!("{input}@5s"), input]);
    assert!(err.contains("FILE@FROM..TO"), "{err}");
    let err = error(&["report", "--input", input, "--from", "1h"]);
    assert!(
        err.contains("it holds 0.") && err.contains("of recording time"),
        "{err}"
    );
    let err = error(&["diff", &format!("{input}@1h.."), input]);
    assert!(err.contains("it holds"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
