//! `hptop serve`: scraped by a real Prometheus, profiles over HTTP, hostile clients, and
//! `--match` picking up processes as they appear.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::common::{cpu_ticks, default_python, which, Workload};

/// A running `hptop serve`, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    addr: String,
    /// Its standard error after the first line.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hptop"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The first line says where it listens ("serving http://ADDR/metrics ...").
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = tx.send(first);
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap_or_else(|| panic!("serve did not say where it listens: {first:?}"))
            .to_owned();
        Self { child, addr, log }
    }

    /// One request (HTTP/1.1, connection closed after): (status, content type, body).
    fn get(&self, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
        http_get(&self.addr, path, headers)
    }

    fn metrics(&self) -> String {
        let (status, _, body) = self.get("/metrics", "");
        assert_eq!(status, 200);
        String::from_utf8(body).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_mins(2))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, raw[split + 4..].to_vec())
}

/// The value of the sample of `name` whose labels contain every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Checks that the CPU seconds Prometheus scraped of `pid` over 20 s are what `/proc` says
/// over the very same span; returns the end of the window.
fn assert_scraped_cpu_matches_proc(query: &dyn Fn(&str, f64) -> Value, pid: u32) -> f64 {
    // Truth: the target's CPU from /proc, read by the test every 250 ms for 20 s.
    let stat = format!("/proc/{pid}/stat");
    std::thread::sleep(Duration::from_secs(4));
    let mut truth_series = vec![(unix_now(), cpu_ticks(&stat) / 100.0)];
    let t1 = truth_series[0].0 + 20.0;
    while unix_now() < t1 {
        std::thread::sleep(Duration::from_millis(250));
        truth_series.push((unix_now(), cpu_ticks(&stat) / 100.0));
    }
    let t1 = unix_now();
    // Let Prometheus scrape past t1, then take its raw samples of the window ending at t1
    // and compare their increase with /proc's over the very span between the first and the
    // last sample (no extrapolation: under load scrapes come late and rate() extrapolates).
    std::thread::sleep(Duration::from_secs(3));
    let q = format!("hptop_process_cpu_seconds_total{{pid=\"{pid}\"}}[20s]");
    let answer = query(&q, t1);
    let result = &answer["data"]["result"];
    assert_eq!(result.as_array().map(Vec::len), Some(1), "{answer}");
    let samples: Vec<(f64, f64)> = result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let value: f64 = v[1].as_str().unwrap().parse().unwrap();
            (v[0].as_f64().unwrap(), value)
        })
        .collect();
    assert!(samples.len() >= 10, "{answer}");
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let at = |t: f64| interpolate(&truth_series, t);
    let truth = at(last.0) - at(first.0);
    let scraped = last.1 - first.1;
    eprintln!(
        "Prometheus {scraped:.3} CPU s, /proc {truth:.3} CPU s over the same {:.1} s",
        last.0 - first.0
    );
    assert!(
        (scraped - truth).abs() <= truth * 0.10,
        "Prometheus {scraped:.3} CPU s vs /proc {truth:.3}"
    );
    let q = format!("rate(hptop_process_cpu_seconds_total{{pid=\"{pid}\"}}[20s])");
    assert_eq!(
        query(&q, t1)["data"]["result"].as_array().map(Vec::len),
        Some(1)
    );
    t1
}

/// The value of the piecewise-linear `series` ((time, value), time ascending) at `t`,
/// clamped to its ends.
fn interpolate(series: &[(f64, f64)], t: f64) -> f64 {
    let after = series.partition_point(|&(at, _)| at < t);
    match (
        after.checked_sub(1).and_then(|i| series.get(i)),
        series.get(after),
    ) {
        (Some(&(t0, v0)), Some(&(t1, v1))) if t1 > t0 => v0 + (v1 - v0) * (t - t0) / (t1 - t0),
        (Some(&(_, v)), _) | (None, Some(&(_, v))) => v,
        (None, None) => 0.0,
    }
}

#[test]
fn prometheus_scrapes_cpu_that_matches_proc_and_gil_waits_per_thread() {
    let Ok(prometheus) = which("prometheus") else {
        eprintln!(
            "SKIP: prometheus is not installed (Debian package `prometheus`; .ci/run installs it)"
        );
        return;
    };
    let workload = Workload::start(&default_python(), "cpu_threads.py", &["2", "120"]);
    let pid = workload.pid();
    let server = Server::start(&["--pid", &pid.to_string(), "--rate", "50"]);
    let dir = std::env::temp_dir().join(format!("hptop-it-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    quick_rules(&dir.join("rules.yml"));
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\nscrape_configs:\n  - job_name: hptop\n    static_configs:\n      - targets: ['{}']\n",
            dir.join("rules.yml").display(),
            server.addr
        ),
    )
    .unwrap();
    let port = free_port();
    let mut prom = KillOnDrop(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom_addr = format!("127.0.0.1:{port}");
    let query = |q: &str, at: f64| -> Value {
        let path = format!("/api/v1/query?query={}&time={at:.3}", encode(q));
        let (status, _, body) = http_get(&prom_addr, &path, "");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    };
    let t1 = assert_scraped_cpu_matches_proc(&query, pid);
    // The two workers wait for the GIL: their series exist and grew.
    let q = format!(
        "increase(hptop_thread_gil_wait_seconds_total{{pid=\"{pid}\",thread=~\"worker-.*\"}}[15s])"
    );
    let answer = query(&q, t1);
    let waits = answer["data"]["result"].as_array().unwrap();
    assert_eq!(waits.len(), 2, "{answer}");
    for w in waits {
        let v: f64 = w["value"][1].as_str().unwrap().parse().unwrap();
        assert!(v > 0.0, "{w}");
    }
    // Every query of the Grafana dashboard runs and has data (its variables filled in as
    // Grafana would: every script, a 10 s rate interval).
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "10s")
                .replace("$comm", ".*");
            let answer = query(&expr, t1);
            assert_eq!(answer["status"], "success", "{expr}: {answer}");
            let series = answer["data"]["result"].as_array().map_or(0, Vec::len);
            assert!(series > 0, "{} ({expr}): no data", panel["title"]);
            queries += 1;
        }
    }
    assert!(queries >= 11, "{queries}");
    // The GIL-bound target (two CPU-bound threads) fires the GIL-wait alert.
    assert_fires(&prom_addr, "HptopGilWaitHigh", pid);
    let comm = query("count by (comm) (hptop_process_cpu_seconds_total)", t1);
    assert_eq!(
        comm["data"]["result"][0]["metric"]["comm"], "cpu_threads.py",
        "{comm}"
    );
    prom.0.kill().ok();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The alerting rules users start from, as shipped (`promtool check rules` passes), written to
/// `to` with their windows shortened so that one fires within a test: the same expressions.
fn quick_rules(to: &std::path::Path) {
    let rules_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/prometheus-rules.yml");
    if let Ok(promtool) = which("promtool") {
        let out = Command::new(promtool)
            .args(["check", "rules"])
            .arg(&rules_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    } else {
        eprintln!("SKIP: promtool not installed: the rules are not checked");
    }
    let rules = std::fs::read_to_string(&rules_path)
        .unwrap()
        .replace("[5m]", "[10s]")
        .replace("[30m]", "[30s]")
        .replace("for: 5m", "for: 2s")
        .replace("for: 10m", "for: 2s")
        .replace("for: 30m", "for: 2s");
    std::fs::write(to, rules).unwrap();
}

/// Waits (at most 30 s) until the Prometheus at `prom_addr` has `alert` firing for `pid`.
fn assert_fires(prom_addr: &str, alert: &str, pid: u32) {
    let pid = pid.to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = http_get(prom_addr, "/api/v1/alerts", "");
        assert_eq!(status, 200);
        let alerts: Value = serde_json::from_slice(&body).unwrap();
        let fired = alerts["data"]["alerts"].as_array().is_some_and(|a| {
            a.iter().any(|a| {
                a["labels"]["alertname"] == alert
                    && a["labels"]["pid"].as_str() == Some(pid.as_str())
                    && a["state"] == "firing"
            })
        });
        if fired {
            return;
        }
        assert!(Instant::now() < deadline, "{alert} never fired: {alerts}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Percent-encoding of a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_pprof_endpoint_returns_a_profile_with_the_hot_function_and_reports_are_json() {
    let workload = Workload::start(&default_python(), "cpu_threads.py", &["2", "60"]);
    let pid = workload.pid().to_string();
    let server = Server::start(&["--pid", &pid]);
    let (status, content_type, body) = server.get("/debug/pprof/profile?seconds=2", "");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/octet-stream");
    let profile = hptop::report::pprof::decode(&body).unwrap();
    let text = |i: i64| profile.string_table[i as usize].as_str();
    assert_eq!(text(profile.default_sample_type), "cpu");
    let heaviest = profile.sample.iter().max_by_key(|s| s.value[1]).unwrap();
    let leaf = profile
        .location
        .iter()
        .find(|l| l.id == heaviest.location_id[0])
        .unwrap();
    let function = profile
        .function
        .iter()
        .find(|f| f.id == leaf.line[0].function_id)
        .unwrap();
    assert_eq!(text(function.name), "burn");
    // About two seconds of samples (a window, not the time since attach).
    let samples: i64 = profile.sample.iter().map(|s| s.value[0]).sum();
    assert!(
        profile.duration_nanos < 4_000_000_000,
        "{}",
        profile.duration_nanos
    );
    assert!(samples > 0);
    // /report is the JSON report of the window.
    let (status, content_type, body) = server.get(&format!("/report?seconds=1&pid={pid}"), "");
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let report: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(report["schema"], "hptop.report/1");
    assert_eq!(
        report["processes"][0]["pid"].as_u64(),
        Some(u64::from(workload.pid()))
    );
    // OpenMetrics when asked.
    let (status, content_type, body) = server.get(
        "/metrics",
        "Accept: application/openmetrics-text; version=1.0.0\r\n",
    );
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/openmetrics-text"));
    assert!(String::from_utf8(body).unwrap().ends_with("# EOF\n"));
}

#[test]
fn hostile_requests_leave_the_server_answering() {
    let workload = Workload::start(&default_python(), "cpu_threads.py", &["1", "60"]);
    let pid = workload.pid().to_string();
    let server = Server::start(&["--pid", &pid]);
    // The target's figures are published once its first counters are read.
    let labels = format!("pid=\"{pid}\"");
    let published = || sample(&server.metrics(), "hptop_samples_total", &[&labels]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while published().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Many idle connections (fewer than the cap): scrapes still answer, with the target.
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    assert!(published().is_some(), "{}", server.metrics());
    // A 1 MB header is refused; garbage gets an error or a closed connection.
    let mut big = TcpStream::connect(&server.addr).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let header = format!(
        "GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let _ = big.write_all(header.as_bytes());
    let mut answer = [0u8; 64];
    let n = big.read(&mut answer).unwrap_or(0);
    let said = String::from_utf8_lossy(&answer[..n]);
    assert!(n == 0 || said.starts_with("HTTP/1.1 431"), "{said}");
    let mut garbage = TcpStream::connect(&server.addr).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = garbage.write_all(&[0xff, 0x00, 0x13, 0x37, b'\r', b'\n', b'\r', b'\n']);
    let n = garbage.read(&mut answer).unwrap_or(0);
    let said = String::from_utf8_lossy(&answer[..n]);
    assert!(n == 0 || said.starts_with("HTTP/1.1 400"), "{said}");
    // Unknown paths, other methods, bad parameters: errors, not a crash.
    assert_eq!(server.get("/nope", "").0, 404);
    assert_eq!(server.get("/report?seconds=100000", "").0, 400);
    let mut post = TcpStream::connect(&server.addr).unwrap();
    write!(
        post,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    post.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 405"), "{text}");
    drop(idle);
    // Still serving, and still sampling (samples grew).
    let before = published().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let after = published().unwrap();
    assert!(after > before, "{before} -> {after}");
}

#[test]
fn match_picks_up_a_process_started_after_serve_and_drops_it_when_it_exits() {
    let tag = format!("hptop-match-{}", std::process::id());
    let server = Server::start(&["--match", &format!("cpu_threads\\.py .*{tag}")]);
    assert!(!server
        .metrics()
        .contains("hptop_process_cpu_seconds_total{"));
    // Started after serve; the tag is an argument the workload ignores.
    let workload = Workload::start(&default_python(), "cpu_threads.py", &["1", "60", &tag]);
    let pid = format!("pid=\"{}\"", workload.pid());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        std::thread::sleep(Duration::from_millis(500));
        let text = server.metrics();
        seen = sample(&text, "hptop_process_cpu_seconds_total", &[&pid])
            .is_some_and(|cpu| cpu > 0.0)
            && sample(
                &text,
                "hptop_function_cpu_seconds_total",
                &[&pid, "function=\"burn\""],
            )
            .is_some();
    }
    assert!(
        seen,
        "PID {} was not picked up: {}",
        workload.pid(),
        server.metrics()
    );
    // An unrelated Python process is not watched.
    let other = Workload::start(&default_python(), "cpu_threads.py", &["1", "60"]);
    std::thread::sleep(Duration::from_secs(3));
    let other_pid = format!("pid=\"{}\"", other.pid());
    assert!(!server.metrics().contains(&other_pid));
    // Gone: after its last scrape no series is left.
    drop(workload);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut gone = false;
    while Instant::now() < deadline && !gone {
        std::thread::sleep(Duration::from_millis(500));
        gone = !server.metrics().contains(&pid);
    }
    assert!(gone, "series of the exited process stayed");
}

/// Long (scripts/long-tests.sh): `serve` scraped every second for 3 minutes while its target
/// makes new function names without end and another churns short-lived threads: hptop's
/// memory levels off (the function budget, exited threads forgotten) and the series stay
/// bounded.
#[test]
#[ignore = "3 minutes: run by scripts/long-tests.sh"]
fn serve_memory_and_series_stay_flat_for_minutes_of_churn() {
    let python = default_python();
    let names = Workload::start(&python, "name_factory.py", &["2"]);
    let churn = Workload::start(&python, "churn_names.py", &[]);
    let server = Server::start(&["--pid", &format!("{},{}", names.pid(), churn.pid())]);
    let start = Instant::now();
    let mut rss_by_minute = [0f64; 3];
    let mut most_series = 0;
    while start.elapsed() < Duration::from_mins(3) {
        std::thread::sleep(Duration::from_secs(1));
        let text = server.metrics();
        let rss = sample(&text, "hptop_self_resident_memory_bytes", &[]).unwrap();
        let minute = (start.elapsed().as_secs() / 60).min(2) as usize;
        rss_by_minute[minute] = rss_by_minute[minute].max(rss);
        most_series = most_series.max(text.lines().filter(|l| !l.starts_with('#')).count());
    }
    let mb = |b: f64| b / 1e6;
    eprintln!(
        "serve under churn: peak RSS per minute {:.1} / {:.1} / {:.1} MB; most series in a scrape {most_series}",
        mb(rss_by_minute[0]),
        mb(rss_by_minute[1]),
        mb(rss_by_minute[2])
    );
    assert!(rss_by_minute[2] < 128e6, "{rss_by_minute:?}");
    assert!(
        rss_by_minute[2] <= rss_by_minute[1] * 1.15,
        "{rss_by_minute:?}"
    );
    // 2 processes x (8 process + 4 x 64 thread + 21 function + ...) series at most.
    assert!(most_series < 700, "{most_series}");
}

/// A `--pid` target that exits is logged; a window its exit cuts short, and later windows on
/// it, answer 404 saying when it exited (not a short 200, not "no process is watched yet").
#[test]
fn a_watched_pid_that_exits_is_logged_and_windows_on_it_say_so() {
    let workload = Workload::start(&default_python(), "cpu_threads.py", &["1", "60"]);
    let pid = workload.pid();
    let server = Server::start(&["--pid", &pid.to_string()]);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
    let (status, _, body) = server.get("/report?seconds=8", "");
    killer.join().unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("cut short") && body.contains(&format!("PID {pid} exited at")),
        "{body}"
    );
    drop(workload);
    for path in [
        format!("/report?seconds=1&pid={pid}"),
        format!("/debug/pprof/profile?seconds=1&pid={pid}"),
        "/report?seconds=1".to_owned(),
    ] {
        let (status, _, body) = server.get(&path, "");
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body.contains(&format!("PID {pid} exited at")),
            "{path}: {body}"
        );
    }
    // Its standard error is read by a thread of this test: give it a moment.
    let said = format!("PID {pid} exited at");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log.lock().unwrap().iter().any(|l| l.contains(&said)) {
        let log = server.log.lock().unwrap().join("\n");
        assert!(Instant::now() < deadline, "{said:?} never logged: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
