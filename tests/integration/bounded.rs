//! hptop's memory stays bounded whatever the target does.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{default_python, Workload};

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A target that makes ~2,000 new function names a second, reported over 3 minutes: hptop
/// stays under 64 MB and the report is cut at the function budget.
#[test]
#[ignore = "long: 3 minutes; scripts/long-tests.sh runs it"]
fn fresh_function_names_do_not_grow_hptop_without_end() {
    let workload = Workload::start(&default_python(), "name_factory.py", &[]);
    let seconds = 180;
    let mut hptop = Command::new(env!("CARGO_BIN_EXE_hptop"))
        .args([
            "report",
            "--format",
            "json",
            "--pid",
            &workload.pid().to_string(),
        ])
        .args(["--duration", &seconds.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hptop_pid = hptop.id();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut hptop.stdout.take().unwrap(), &mut out).unwrap();
        (hptop.wait().unwrap(), out)
    });
    let start = Instant::now();
    let mut peak = 0;
    while let Some(kib) = rss_kib(hptop_pid) {
        peak = peak.max(kib);
        if start.elapsed() > Duration::from_secs(seconds + 60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, out) = reader.join().unwrap();
    assert!(status.success());
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let functions = report["processes"][0]["functions"].as_array().unwrap();
    eprintln!(
        "hptop peak RSS {peak} KiB over {seconds} s; {} functions in the report",
        functions.len()
    );
    assert!(peak < 64 * 1024, "hptop peak RSS {peak} KiB");
    assert!(functions.len() <= hptop::model::functions::MAX_FUNCTIONS + 1);
    let other = hptop::model::functions::OTHER_FUNCTIONS;
    assert!(
        functions.iter().any(|f| f["name"] == other),
        "the budget was not reached: the test shows nothing"
    );
}
