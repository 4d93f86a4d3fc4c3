//! Kernel counters credited to Python functions, and memory over time (issue 5), against
//! workloads whose causes are known: each counter has one thread and one function behind it.

use std::time::Instant;

use serde_json::Value;

use crate::common::{
    credited_sum, default_python, f64_of, function, process, report_json, Workload,
};

/// utime + stime (clock ticks), minor faults, `write_bytes` of `pid`, and when they were read.
fn proc_counters(pid: u32) -> (f64, f64, f64, Instant) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let num = |i: usize| fields[i].parse::<f64>().unwrap();
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let write_bytes = io
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .unwrap()
        .parse()
        .unwrap();
    (num(11) + num(12), num(7), write_bytes, Instant::now())
}

fn within(value: f64, truth: f64, tolerance: f64) -> bool {
    (value - truth).abs() <= truth * tolerance
}

#[test]
fn switches_writes_and_process_totals_match_their_causes_and_proc() {
    let python = default_python();
    let dir = tempfile_dir("counters");
    let workload = Workload::start(&python, "counters.py", &[&dir, "60"]);
    let pid = workload.pid();
    let before = proc_counters(pid);
    let report = report_json(&["--pid", &pid.to_string(), "--duration", "6"]);
    let after = proc_counters(pid);
    let p = process(&report);
    let window = f64_of(&report["duration_s"]);

    // Voluntary switches: the relays passing the token, not the hasher, land on `relay`
    // (inclusive: the innermost frame is inside queue.py / threading.py).
    let switches = credited_sum(p, "voluntary_ctxsw");
    let relay = function(p, "relay").expect("relay sampled");
    let relay_share = f64_of(&relay["inclusive"]["voluntary_ctxsw"]) / switches;
    assert!(
        relay_share >= 0.9,
        "relay got {:.0}% of {switches} voluntary switches",
        relay_share * 100.0
    );
    let hasher = function(p, "hasher").map_or(0.0, |f| f64_of(&f["inclusive"]["voluntary_ctxsw"]));
    assert!(hasher < 0.05 * switches, "hasher {hasher} of {switches}");

    // Write bytes: all of the writer's, at its known rate (8 MiB/s).
    let io = credited_sum(p, "io_bytes");
    let writer = function(p, "writer").expect("writer sampled");
    let writer_share = f64_of(&writer["io_bytes"]) / io;
    assert!(
        writer_share >= 0.9,
        "writer got {:.0}% of {io} bytes",
        writer_share * 100.0
    );
    let write_rate = p["write_bytes"].as_u64().unwrap() as f64 / window;
    assert!(
        within(write_rate, f64::from(8 << 20), 0.15),
        "write rate {write_rate:.0} B/s, the writer keeps 8 MiB/s"
    );
    // Faults: the toucher's.
    let faults = credited_sum(p, "minor_faults");
    let toucher = function(p, "toucher").expect("toucher sampled");
    assert!(f64_of(&toucher["minor_faults"]) >= 0.9 * faults);

    // Process totals equal /proc's over the same span. The test's reads bracket the report's
    // window (attach and exit add a little), and the workload is steady: compare rates.
    let proc_s = after.3.duration_since(before.3).as_secs_f64();
    let truth_cpu = (after.0 - before.0) / proc_s; // clock ticks per second = percent
    let truth_faults = (after.1 - before.1) / proc_s;
    let truth_writes = (after.2 - before.2) / proc_s;
    let cpu = f64_of(&p["cpu_percent"]);
    let faults_rate = p["minor_faults"].as_u64().unwrap() as f64 / window;
    assert!(
        within(cpu, truth_cpu, 0.06),
        "cpu {cpu:.1}% vs /proc {truth_cpu:.1}%"
    );
    assert!(
        within(faults_rate, truth_faults, 0.06),
        "faults {faults_rate:.0}/s vs /proc {truth_faults:.0}/s"
    );
    assert!(
        within(write_rate, truth_writes, 0.06),
        "writes {write_rate:.0} B/s vs /proc {truth_writes:.0} B/s"
    );
    // What the functions were credited adds up to the process's own counts.
    assert!(within(
        faults,
        p["minor_faults"].as_u64().unwrap() as f64,
        0.05
    ));
    assert!(within(credited_sum(p, "cpu_s"), cpu / 100.0 * window, 0.08));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn faults_in_bursts_between_quiet_spells_go_to_the_code_that_faults() {
    // Between bursts nothing faults, and hptop reads no thread's `stat` then (procfs's fault
    // gate: the state comes from `syscall`): every burst must still land on `touch_burst`,
    // whole, and none on the threads that only compute.
    let python = default_python();
    let workload = Workload::start(&python, "fault_bursts.py", &["60"]);
    let report = report_json(&["--pid", &workload.pid().to_string(), "--duration", "6"]);
    let p = process(&report);
    let window = f64_of(&report["duration_s"]);
    let process_faults = p["minor_faults"].as_u64().unwrap() as f64;
    assert!(
        process_faults >= 3.0 * 16384.0,
        "{process_faults} minor faults in {window:.1} s: fewer than 3 bursts"
    );
    let faults = credited_sum(p, "minor_faults");
    let burst = function(p, "touch_burst").map_or(0.0, |f| f64_of(&f["minor_faults"]));
    assert!(
        burst >= 0.95 * faults,
        "touch_burst got {burst} of {faults} credited minor faults"
    );
    let compute = function(p, "compute").map_or(0.0, |f| f64_of(&f["inclusive"]["minor_faults"]));
    assert!(
        compute <= 0.01 * faults,
        "compute got {compute} of {faults}"
    );
    assert!(
        within(faults, process_faults, 0.05),
        "credited {faults} vs the process's {process_faults}"
    );
}

#[test]
fn steady_rss_growth_is_measured_and_hinted_as_a_leak() {
    // The leaker keeps 2 MiB/s; a leak hint needs 60 s of sustained growth.
    let python = default_python();
    let workload = Workload::start(&python, "leak.py", &["90"]);
    let report = report_json(&["--pid", &workload.pid().to_string(), "--duration", "66"]);
    let p = process(&report);
    let m: &Value = &p["memory"];
    let growth = f64_of(&m["growth_bytes_per_s"]);
    let truth = f64::from(2 << 20);
    assert!(
        within(growth, truth, 0.2),
        "RSS grows {growth:.0} B/s, the workload keeps {truth} B/s"
    );
    let hint = &m["leak_hint"];
    assert!(hint.is_object(), "no leak hint: {m}");
    assert_eq!(hint["suspects"][0]["name"], "leak", "{hint}");
    // The split and the per-second history are there, and anon memory is what grew.
    let timeline = m["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 60, "{} points", timeline.len());
    let anon = |i: usize| timeline[i]["anon_bytes"].as_u64().unwrap() as f64;
    assert!(anon(timeline.len() - 1) - anon(0) >= 0.8 * truth * 55.0);
    assert!(m["pss_bytes"].as_u64().unwrap() > 0);
    assert!(m["uss_bytes"].as_u64().unwrap() > 0);
}

/// A fresh directory on the disk the tests build on (not tmpfs: writes must reach the page
/// cache's dirty accounting).
fn tempfile_dir(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_string_lossy().into_owned()
}

/// The demo's writer encodes JSON (CPU), then writes and fsyncs it in `write_batch`: the
/// bytes go to the code that does the I/O, not to the encoder that ran most of the time.
#[test]
fn io_bytes_go_to_the_code_that_reads_and_writes() {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.py");
    let python = default_python();
    let report = report_json(&[
        "--duration",
        "6",
        "--",
        &python.path.to_string_lossy(),
        &demo.to_string_lossy(),
    ]);
    let p = &report["processes"][0];
    let credited = credited_sum(p, "io_bytes");
    if credited < 1e6 {
        eprintln!("SKIP: the demo's writes reached no storage here ({credited} bytes; tmpfs?)");
        return;
    }
    let share = |name: &str| {
        p["functions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["name"] == name)
            .map(|f| f64_of(&f["io_bytes"]))
            .sum::<f64>()
            / credited
            * 100.0
    };
    eprintln!(
        "io credited {credited:.0} B: write_batch {:.1}%, writer {:.1}%, iterencode {:.1}%",
        share("write_batch"),
        share("writer"),
        share("JSONEncoder.iterencode")
    );
    let mut top: Vec<(String, f64)> = p["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or("?").to_owned(),
                f64_of(&f["io_bytes"]),
            )
        })
        .filter(|(_, bytes)| *bytes > 0.0)
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(6);
    assert!(
        share("write_batch") >= 50.0,
        "write_batch; by function: {top:?}"
    );
    for pure in [
        "JSONEncoder.iterencode",
        "JSONEncoder.encode",
        "parse_record",
        "checksum",
        "aggregate",
        "load_chunk",
    ] {
        assert!(
            share(pure) <= 5.0,
            "{pure} makes no I/O call: {:.1}%",
            share(pure)
        );
    }
}
