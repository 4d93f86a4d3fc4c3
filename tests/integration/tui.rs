//! The live TUI end to end, in tmux: real workload, keys pressed, screen read back, and the
//! terminal restored after `q` and after SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{default_python, process_state, thread_states, Workload};

struct Tmux {
    session: String,
}

impl Tmux {
    /// Runs `command` in a detached 120x40 tmux session; `None` when tmux is missing.
    fn start(command: &str) -> Option<Self> {
        Self::start_sized(command, 120, 40)
    }

    /// Runs `command` in a detached `width`x`height` tmux session.
    fn start_sized(command: &str, width: u16, height: u16) -> Option<Self> {
        let session = format!("hptop-test-{}-{}", std::process::id(), rand_suffix());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                command,
            ])
            .status()
            .ok()?
            .success();
        ok.then_some(Self { session })
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
    }

    fn wait_for(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{needle:?} never appeared:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_without(&self, needle: &str) {
        let start = Instant::now();
        while self.screen().contains(needle) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{needle:?} never went away"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Pid of the process running in the pane's shell (hptop).
    fn hptop_pid(&self) -> u32 {
        let out = Command::new("tmux")
            .args(["list-panes", "-t", &self.session, "-F", "#{pane_pid}"])
            .output()
            .unwrap();
        let shell: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        children.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Quietly: a test may have ended the session already.
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The pane's command: hptop, then proof that the terminal is back in cooked mode.
fn pane_command(pid: u32) -> String {
    format!(
        "{} --pid {pid}; echo HPTOP-EXIT=$?; stty -a | grep -q -- ' icanon' && echo TTY-COOKED; sleep 60",
        env!("CARGO_BIN_EXE_hptop")
    )
}

/// A `cpu_threads.py` workload with `workers` workers and hptop's live view on it in tmux,
/// once the hot function shows; `None` (skipped, with a message) without tmux.
fn start_live(workers: &str) -> Option<(Workload, Tmux)> {
    if !tmux_available() {
        return None;
    }
    let workload = Workload::start(&default_python(), "cpu_threads.py", &[workers, "60"]);
    let Some(tmux) = Tmux::start(&pane_command(workload.pid())) else {
        eprintln!("SKIP: tmux could not start a session");
        return None;
    };
    tmux.wait_for("burn (cpu_threads.py:");
    Some((workload, tmux))
}

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP: tmux not found (.ci/run installs it)");
    }
    found
}

#[test]
fn live_view_shows_the_workload_takes_keys_and_restores_the_terminal_on_q() {
    let Some((workload, tmux)) = start_live("2") else {
        return;
    };
    let screen = tmux.screen();
    let pid_line = format!("PID {}", workload.pid());
    for needle in [pid_line.as_str(), "worker-0", "worker-1", "sleeper", "%Own"] {
        assert!(screen.contains(needle), "{needle:?} missing:\n{screen}");
    }
    tmux.keys(&["?"]);
    tmux.wait_for("hptop keys");
    // `?` closes the help too (an Escape followed at once by `/` would read as Alt+/).
    tmux.keys(&["?"]);
    tmux.wait_without("hptop keys");
    tmux.keys(&["/", "s", "l", "e", "e", "p", "Enter"]);
    let screen = tmux.wait_for("filter: sleep");
    assert!(
        !screen.contains("burn (cpu_threads.py:"),
        "filter left burn in:\n{screen}"
    );
    tmux.keys(&["p"]);
    tmux.wait_for("PAUSED");
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("HPTOP-EXIT=0");
    tmux.wait_for("TTY-COOKED");
    assert!(
        !screen.contains("%Own"),
        "the alternate screen was not left:\n{screen}"
    );
    // The target was never stopped.
    assert!(std::fs::metadata(format!("/proc/{}", workload.pid())).is_ok());
}

#[test]
fn sigterm_restores_the_terminal() {
    let Some((_workload, tmux)) = start_live("1") else {
        return;
    };
    let hptop = tmux.hptop_pid();
    assert!(Command::new("kill")
        .args(["-TERM", &hptop.to_string()])
        .status()
        .unwrap()
        .success());
    let screen = tmux.wait_for("TTY-COOKED");
    assert!(screen.contains("HPTOP-EXIT=0"), "{screen}");
    assert!(
        !screen.contains("%Own"),
        "the alternate screen was not left:\n{screen}"
    );
}

#[test]
fn ctrl_z_suspends_without_pausing_the_target_and_resume_redraws() {
    let Some((workload, tmux)) = start_live("1") else {
        return;
    };
    let hptop = tmux.hptop_pid();
    tmux.keys(&["C-z"]);
    let start = Instant::now();
    while process_state(hptop) != 'T' {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "hptop did not suspend on ^Z"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Suspended: the terminal is back to normal and the target runs on.
    tmux.wait_without("%Own");
    let states = thread_states(workload.pid());
    assert!(
        !states.contains(&'t') && !states.contains(&'T'),
        "target paused: {states:?}"
    );
    assert!(Command::new("kill")
        .args(["-CONT", &hptop.to_string()])
        .status()
        .unwrap()
        .success());
    tmux.wait_for("burn (cpu_threads.py:");
    tmux.keys(&["q"]);
    tmux.wait_for("TTY-COOKED");
}

#[test]
fn with_no_target_the_picker_lists_python_processes_and_enter_attaches() {
    if !tmux_available() {
        return;
    }
    let workload = Workload::start(&default_python(), "cpu_threads.py", &["1", "60"]);
    let pid = workload.pid().to_string();
    let command = format!(
        "{}; echo HPTOP-EXIT=$?; stty -a | grep -q -- ' icanon' && echo TTY-COOKED; sleep 60",
        env!("CARGO_BIN_EXE_hptop")
    );
    let Some(tmux) = Tmux::start(&command) else {
        eprintln!("SKIP: tmux could not start a session");
        return;
    };
    tmux.wait_for("pick a Python process");
    tmux.wait_for("cpu_threads.py");
    // Search by pid (other tests' workloads may be listed too), then attach.
    let mut keys: Vec<String> = pid.chars().map(String::from).collect();
    keys.push("Enter".into());
    tmux.keys(&keys.iter().map(String::as_str).collect::<Vec<_>>());
    let screen = tmux.wait_for("burn (cpu_threads.py:");
    assert!(screen.contains(&format!("PID {pid}")), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for("HPTOP-EXIT=0");
    tmux.wait_for("TTY-COOKED");
}

#[test]
fn a_pool_shows_its_workers_and_a_worker_row_focuses_the_view() {
    if !tmux_available() {
        return;
    }
    let python = default_python();
    let command = format!(
        "{} --subprocesses -- '{}' '{}' 60; echo HPTOP-EXIT=$?; sleep 60",
        env!("CARGO_BIN_EXE_hptop"),
        python.path.display(),
        crate::common::workload_path("pool.py").display()
    );
    let Some(tmux) = Tmux::start(&command) else {
        eprintln!("SKIP: tmux could not start a session");
        return;
    };
    let screen = tmux.wait_for("worker");
    assert!(screen.contains("Workers"), "{screen}");
    // All three workers, each running the pool's function.
    let start = Instant::now();
    loop {
        let screen = tmux.screen();
        let rows = screen
            .lines()
            .filter(|l| l.contains(" worker ") && l.contains("crunch"))
            .count();
        if rows == 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "3 worker rows with crunch never showed:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Tab to the workers pane, down one row: every pane shows that worker.
    tmux.keys(&["Tab", "Tab", "Down"]);
    let screen = tmux.wait_for("Workers [focus]");
    let worker = screen
        .lines()
        .find(|l| l.contains(" worker "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let screen = tmux.wait_for(&format!("showing {worker}"));
    assert!(screen.contains(&format!("PID {worker}")), "{screen}");
    tmux.keys(&["m"]);
    tmux.wait_for("processes merged");
    tmux.keys(&["q"]);
    tmux.wait_for("HPTOP-EXIT=0");
}

#[test]
fn a_launched_command_writes_to_its_log_and_its_exit_status_shows() {
    if !tmux_available() {
        return;
    }
    let python = default_python();
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("launched-{}.log", std::process::id()));
    let command = format!(
        "{} --log '{}' -- '{}' '{}' 2 3; echo HPTOP-EXIT=$?; sleep 60",
        env!("CARGO_BIN_EXE_hptop"),
        log.display(),
        python.path.display(),
        crate::common::workload_path("exits_soon.py").display()
    );
    let Some(tmux) = Tmux::start(&command) else {
        eprintln!("SKIP: tmux could not start a session");
        return;
    };
    tmux.wait_for("its output goes to");
    tmux.wait_for("(exit status: 3)");
    // The command's output went to the log (after a line marking the run), not over the
    // screen.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("==== hptop: ") && lines[0].contains("exits_soon.py"),
        "{text}"
    );
    assert_eq!(lines[1], "ready");
    tmux.keys(&["q"]);
    tmux.wait_for("HPTOP-EXIT=0");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn a_recording_replays_with_a_cursor_a_range_and_peaks() {
    if !tmux_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("hptop-it-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("r.hptop");
    let workload = Workload::start(&default_python(), "cpu_threads.py", &["2", "60"]);
    let out = crate::common::hptop(&[
        "record",
        "--pid",
        &workload.pid().to_string(),
        "-d",
        "12",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    drop(workload);
    let command = format!(
        "{} replay {}; echo HPTOP-EXIT=$?; stty -a | grep -q -- ' icanon' && echo TTY-COOKED; sleep 60",
        env!("CARGO_BIN_EXE_hptop"),
        file.display()
    );
    let Some(tmux) = Tmux::start(&command) else {
        return;
    };
    // Opens on the whole recording, still: every pane as live.
    let screen = tmux.wait_for("REPLAY");
    for needle in ["burn (cpu_threads.py:", "worker-0", "PAUSED", "/0:00:1"] {
        assert!(screen.contains(needle), "{needle:?} missing:\n{screen}");
    }
    // Back 10 s: the view covers the first ~2 s only.
    tmux.keys(&["Left"]);
    let screen = tmux.wait_for("REPLAY ⏸ 1x 0:00:0");
    assert!(screen.contains("burn (cpu_threads.py:"), "{screen}");
    // A range from here to 10 s later, then the CPU peak.
    tmux.keys(&["["]);
    tmux.keys(&["Right"]);
    tmux.keys(&["]"]);
    tmux.wait_for(" range 0:00:0");
    tmux.keys(&["1"]);
    tmux.wait_for("CPU peak at");
    // Play at 2x to the end of the range.
    tmux.keys(&["x", "Left", "+", " "]);
    tmux.wait_for("REPLAY ▶ 2x");
    tmux.keys(&["q"]);
    tmux.wait_for("HPTOP-EXIT=0");
    tmux.wait_for("TTY-COOKED");
}

#[test]
fn the_picker_ends_when_its_terminal_goes_away() {
    if !tmux_available() {
        return;
    }
    // SIGHUP ignored (as under nohup): the picker must notice the dead terminal itself.
    let command = format!("trap '' HUP; exec {}", env!("CARGO_BIN_EXE_hptop"));
    let Some(tmux) = Tmux::start(&command) else {
        return;
    };
    tmux.wait_for("Python processes");
    // `exec`: hptop is the pane's own process.
    let out = Command::new("tmux")
        .args(["list-panes", "-t", &tmux.session, "-F", "#{pane_pid}"])
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &tmux.session])
        .status();
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let state = process_state(pid);
        if state == 'Z' {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the picker still runs (state {state}) after its terminal closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn at_80x24_in_tmux_every_thread_and_the_hot_function_show() {
    if !tmux_available() {
        return;
    }
    let workload = Workload::start(&default_python(), "cpu_threads.py", &["4", "60"]);
    let Some(tmux) = Tmux::start_sized(&pane_command(workload.pid()), 80, 24) else {
        return;
    };
    let screen = tmux.wait_for("burn (cpu_threads.py:");
    for name in [
        "MainThread",
        "worker-0",
        "worker-1",
        "worker-2",
        "worker-3",
        "sleeper",
    ] {
        assert!(screen.contains(name), "{name} missing at 80x24:\n{screen}");
    }
    assert!(!screen.contains("more (↑↓ scroll)"), "{screen}");
    tmux.keys(&["Tab"]);
    tmux.wait_for("Threads [focus]");
    tmux.keys(&["q"]);
    tmux.wait_for("HPTOP-EXIT=0");
}

#[test]
fn e_exports_the_view_as_a_json_report_and_a_flame_graph() {
    if !tmux_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("hptop-it-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let workload = Workload::start(&default_python(), "cpu_threads.py", &["2", "60"]);
    let command = format!(
        "cd '{}' && {} --pid {}; sleep 60",
        dir.display(),
        env!("CARGO_BIN_EXE_hptop"),
        workload.pid()
    );
    let Some(tmux) = Tmux::start(&command) else {
        return;
    };
    tmux.wait_for("burn (cpu_threads.py:");
    tmux.keys(&["e"]);
    tmux.wait_for("exported the view (session, mode cpu, width samples)");
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    let json = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(report["mode"], "cpu");
    assert!(report["processes"][0]["stacks"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    let svg = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "svg"))
        .unwrap();
    assert!(std::fs::read_to_string(svg)
        .unwrap()
        .contains("burn (cpu_threads.py)"));
    // `E` picks the format (three presses: pprof); ranked by the counter column (`>` twice:
    // %Own, %Total, then the counter, CPU), the export's widths are on-CPU time.
    tmux.keys(&["E", "E", "E"]);
    tmux.wait_for("export format: pprof");
    tmux.keys(&[">", ">", "e"]);
    tmux.wait_for("s on CPU) to ");
    let pprof = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .find(|p| p.to_string_lossy().ends_with(".pb.gz"))
        .unwrap();
    let profile = hptop::report::pprof::decode(&std::fs::read(pprof).unwrap()).unwrap();
    let default_type = &profile.string_table[profile.default_sample_type as usize];
    assert_eq!(default_type, "cpu");
    tmux.keys(&["q"]);
}

/// Rows of a functions table in `screen` (text report or TUI), after its header line (the one
/// containing `header`), until a line with no function: (first tokens, function label).
fn function_rows(screen: &str, header: &str) -> Vec<(Vec<String>, String)> {
    screen
        .lines()
        .skip_while(|l| !l.contains(header))
        .skip(1)
        .map_while(|l| {
            let at = l.find(" (")?;
            let start = l[..at].rfind("  ")? + 2;
            let figures = l[..start].split_whitespace().map(str::to_owned).collect();
            Some((figures, l[start..].trim_end().to_owned()))
        })
        .collect()
}

/// Each of the report's three hottest functions (`cpu`, the JSON report's in cpu mode) is
/// credited as much CPU in the collapsed export (`--weight cpu`, µs) where it is the leaf.
fn collapsed_leaves_weigh_the_reports_cpu(path: &str, cpu: &[serde_json::Value]) {
    let out = crate::common::hptop(&[
        "report",
        "--input",
        path,
        "-f",
        "collapsed",
        "--weight",
        "cpu",
    ]);
    let folded = String::from_utf8(out.stdout).unwrap();
    for f in cpu.iter().take(3) {
        let leaf = format!("{} (", f["name"].as_str().unwrap());
        let (credited_us, lines) = folded
            .lines()
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(stack, _)| {
                stack
                    .rsplit(';')
                    .next()
                    .is_some_and(|last| last.starts_with(&leaf))
            })
            .fold((0.0, 0.0), |(sum, n), (_, weight)| {
                (sum + weight.parse::<f64>().unwrap(), n + 1.0)
            });
        let cpu_us = f["cpu_s"].as_f64().unwrap() * 1e6;
        assert!(
            (credited_us - cpu_us).abs() <= lines + 1.0,
            "{f}: {credited_us} µs"
        );
    }
}

/// Issue 23: one window, one set of figures. The whole window of one recording (a pool that
/// overloads the machine, so CPU is held back for placement while threads wait) shows each
/// function's own and total share, in the same order, and its own CPU time alike in the JSON
/// report, the text report, the collapsed export and the replay TUI, in each mode.
#[test]
fn every_view_of_one_window_shows_the_same_figures() {
    use crate::common::{hptop, report_json, stderr};
    let dir = std::env::temp_dir().join(format!("hptop-it-views-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("r.hptop");
    let path = file.to_str().unwrap();
    let workload = Workload::start(&default_python(), "mixed_pool.py", &["60"]);
    let out = hptop(&[
        "record",
        "--pid",
        &workload.pid().to_string(),
        "-d",
        "3",
        "-o",
        path,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(workload);
    let json_of = |mode: &str| {
        let report = report_json(&["--input", path, "--mode", mode]);
        report["processes"][0]["functions"]
            .as_array()
            .unwrap()
            .clone()
    };
    let label = |f: &serde_json::Value| format!("{} (", f["name"].as_str().unwrap());
    let pct = |f: &serde_json::Value, key: &str| format!("{:.1}", f[key].as_f64().unwrap());
    for mode in ["cpu", "samples", "wall"] {
        let functions = json_of(mode);
        let out = hptop(&["report", "--input", path, "--mode", mode]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        let rows = function_rows(&text, "%OWN  %TOTAL");
        assert_eq!(rows.len(), functions.len(), "{mode}:\n{text}");
        for (f, (figures, name)) in functions.iter().zip(&rows) {
            assert!(name.starts_with(&label(f)), "{mode}: {name} vs {f}");
            assert_eq!(
                figures[0],
                format!("{}%", pct(f, "own_percent")),
                "{mode}: {name}"
            );
            assert_eq!(
                figures[1],
                format!("{}%", pct(f, "total_percent")),
                "{mode}: {name}"
            );
        }
    }
    // The collapsed export weighs each leaf as the report counts its function.
    let cpu = json_of("cpu");
    collapsed_leaves_weigh_the_reports_cpu(path, &cpu);
    // The replay TUI over the whole recording, in cpu mode (its default) and samples mode.
    if !tmux_available() {
        return;
    }
    let command = format!("{} replay {path}; sleep 60", env!("CARGO_BIN_EXE_hptop"));
    let Some(tmux) = Tmux::start_sized(&command, 140, 45) else {
        return;
    };
    for (mode, functions) in [("cpu", cpu), ("samples", json_of("samples"))] {
        let screen = tmux.wait_for(&format!("mode {mode} (M)"));
        let rows = function_rows(&screen, "%Own");
        for f in functions
            .iter()
            .filter(|f| f["own_percent"].as_f64().unwrap() >= 0.1)
            .take(4)
        {
            let (figures, name) = rows
                .iter()
                .find(|(_, name)| name.starts_with(&label(f)))
                .unwrap_or_else(|| panic!("{mode}: {f} not shown:\n{screen}"));
            assert_eq!(
                figures[0],
                pct(f, "own_percent"),
                "{mode}: {name}\n{screen}"
            );
            assert_eq!(
                figures[1],
                pct(f, "total_percent"),
                "{mode}: {name}\n{screen}"
            );
        }
        tmux.keys(&["M"]);
    }
}
