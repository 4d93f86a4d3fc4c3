//! Hostile strings and recycled thread ids: every frame survives, every name is its own thread's.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::{all_pythons, f64_of, process, report_json, Python, Workload};

fn thread_names(p: &Value) -> Vec<Option<String>> {
    p["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

fn own_samples(p: &Value, name: &str) -> u64 {
    p["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == name)
        .map(|f| f["own_samples"].as_u64().unwrap())
        .sum()
}

fn check_hostile_strings(python: &Python) {
    let label = &python.label;
    let workload = Workload::start(python, "hostile_strings.py", &[]);
    let report = report_json(&["--pid", &workload.pid().to_string(), "--duration", "1.5"]);
    let p = process(&report);
    let functions = p["functions"].as_array().unwrap();

    // A 5,000-character name: kept, cut with a visible mark, and its time is its own.
    let long = functions
        .iter()
        .find(|f| f["name"].as_str().unwrap().starts_with("fffff"))
        .unwrap_or_else(|| panic!("{label}: the long-named function vanished: {functions:?}"));
    let name = long["name"].as_str().unwrap();
    assert!(name.ends_with("…(5000 chars)"), "{label}: {name:.40}…");
    assert!(name.chars().count() < 1100, "{label}: {} chars", name.len());
    assert!(
        long["own_samples"].as_u64().unwrap() > 10,
        "{label}: {long}"
    );
    assert_eq!(
        own_samples(p, "call_long"),
        0,
        "{label}: time went to the caller"
    );

    // A lone surrogate in a name (3.8+ renames the code object) and \xff\xfe in a path.
    let bad_name = "bad\\u{dcff}name";
    assert!(own_samples(p, bad_name) > 10, "{label}: {bad_name} missing");
    let in_bad_file = functions
        .iter()
        .find(|f| f["name"] == "spin_in_badpath")
        .unwrap_or_else(|| panic!("{label}: frames of the non-UTF-8 file vanished"));
    let file = in_bad_file["filename"].as_str().unwrap();
    assert!(
        file.ends_with("mod_\\u{dcff}\\u{dcfe}.py"),
        "{label}: {file}"
    );
    assert!(f64_of(&in_bad_file["own_samples"]) > 10.0, "{label}");

    // One 5,000-character thread name is cut; the others keep theirs.
    let names = thread_names(p);
    let present: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
    for expected in ["MainThread", "long-fn", "surrogate", "badpath"] {
        assert!(
            present.contains(&expected),
            "{label}: {expected} in {present:?}"
        );
    }
    let long_thread = present
        .iter()
        .find(|n| n.starts_with("TTTT"))
        .unwrap_or_else(|| panic!("{label}: long thread name missing: {present:?}"));
    assert!(long_thread.ends_with("…(5000 chars)"), "{label}");
}

#[test]
fn long_and_undecodable_names_keep_their_frames_on_every_python() {
    for python in all_pythons().iter().filter(|p| p.minor() >= Some(8)) {
        check_hostile_strings(python);
    }
}

fn check_churned_names(python: &Python) {
    let label = &python.label;
    let workload = Workload::start(python, "churn_names.py", &[]);
    let report = report_json(&["--pid", &workload.pid().to_string(), "--duration", "2"]);
    let p = process(&report);
    let names = thread_names(p);
    // ~60 ms per thread, 4 at a time: dozens of threads, their ids recycled.
    assert!(names.len() >= 20, "{label}: {} threads", names.len());
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for name in names.iter().flatten() {
        *seen.entry(name.as_str()).or_default() += 1;
    }
    let repeated: Vec<&Value> = p["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"].as_str().is_some_and(|n| seen[n] > 1))
        .collect();
    assert!(
        repeated.is_empty(),
        "{label}: names shared by several threads (inherited from a recycled id): {repeated:#?}"
    );
    // A thread seen before its name is set may stay unnamed; most are named.
    let with_name = names.iter().flatten().count();
    assert!(
        with_name * 10 >= names.len() * 7,
        "{label}: {with_name} of {} named",
        names.len()
    );
}

#[test]
fn a_recycled_thread_id_does_not_inherit_a_name_on_every_python() {
    for python in all_pythons().iter().filter(|p| p.minor() >= Some(6)) {
        check_churned_names(python);
    }
}
