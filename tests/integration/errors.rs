//! Clear errors, exit codes and no panics for bad targets and bad usage.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::common::{default_python, hptop, stderr, which, workload_path, Workload};

fn assert_error(args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = hptop(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "{args:?}: {needle:?} missing from: {err}"
        );
    }
    err
}

fn unused_pid() -> u32 {
    (4_000_000..4_100_000)
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap()
}

#[test]
fn a_pid_that_does_not_exist() {
    let pid = unused_pid().to_string();
    for mode in ["report", "dump"] {
        assert_error(
            &[mode, "--pid", &pid],
            1,
            &["no process with PID", &format!("\"{pid}\""), "hptop ps"],
        );
    }
}

#[test]
fn not_python_and_a_wrapper_naming_its_python_child() {
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = sleeper.id().to_string();
    assert_error(
        &["report", "--pid", &pid],
        1,
        &["is not a Python process", &format!("\"{pid}\"")],
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

/// Starts `sh -c SCRIPT` and waits until it has `count` children; returns them.
fn shell_with_children(script: &str, count: usize) -> (std::process::Child, Vec<String>) {
    // Its stderr is dropped: a killed child makes sh say "Terminated".
    let shell = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = shell.id();
    let children = (0..400)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(25));
            let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            let kids: Vec<String> = kids.split_whitespace().map(str::to_owned).collect();
            (kids.len() == count).then_some(kids)
        })
        .expect("the shell did not start its children");
    // Let the interpreters get past their start-up.
    std::thread::sleep(std::time::Duration::from_millis(500));
    (shell, children)
}

#[test]
fn a_wrapper_pid_resolves_to_its_only_python_child_or_lists_them() {
    let python = default_python();
    let script = workload_path("idle.py");
    let run = format!(
        "'{}' '{}' >/dev/null",
        python.path.display(),
        script.display()
    );

    // One Python child: hptop inspects it, and says so.
    let (mut shell, children) = shell_with_children(&format!("{run}; true"), 1);
    let child = &children[0];
    let out = hptop(&["dump", "--pid", &shell.id().to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("inspecting its Python child PID {child}")),
        "{}",
        stderr(&out)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(dump.contains(&format!("PID {child}")), "{dump}");
    let out = hptop(&[
        "report",
        "--pid",
        &shell.id().to_string(),
        "--duration",
        "1",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["processes"][0]["pid"].to_string(), *child);
    let _ = Command::new("kill").arg(child).status();
    shell.wait().unwrap();

    // Two: no guess; the error names both.
    let (mut shell, children) = shell_with_children(&format!("{run} & {run}; wait"), 2);
    let err = assert_error(
        &["dump", "--pid", &shell.id().to_string()],
        1,
        &["is not a Python process", "wrapper"],
    );
    for child in &children {
        assert!(
            err.contains(&format!("    {child}  ")),
            "{child} not listed: {err}"
        );
        let _ = Command::new("kill").arg(child).status();
    }
    shell.wait().unwrap();
}

#[test]
fn a_zombie() {
    // A child that exits and is not waited for stays a zombie of this test process.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id().to_string();
    let stat_path = format!("/proc/{pid}/stat");
    for _ in 0..200 {
        if std::fs::read_to_string(&stat_path).is_ok_and(|s| s.contains(") Z ")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_error(
        &["report", "--pid", &pid],
        1,
        &["is a zombie", &format!("\"{pid}\"")],
    );
    child.wait().unwrap();
}

#[test]
fn permission_denied_says_to_use_sudo() {
    let Ok(setpriv) = which("setpriv") else {
        eprintln!("SKIP: setpriv not found");
        return;
    };
    if !nix_is_root() {
        eprintln!("SKIP: the permission test needs root to drop to another user");
        return;
    }
    let python = default_python();
    let workload = Workload::start(&python, "idle.py", &[]);
    let out = Command::new(setpriv)
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_hptop"))
        .args([
            "report",
            "--pid",
            &workload.pid().to_string(),
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("permission denied") && err.contains("sudo"),
        "{err}"
    );
    assert!(err.contains(&format!("\"{}\"", workload.pid())), "{err}");
}

#[test]
fn a_python_version_that_cannot_be_read() {
    // A program named like an interpreter that is not one: hptop tries, py-spy fails.
    let dir = std::env::temp_dir().join(format!("hptop-fake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("python3.99");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new(&fake).arg("60").spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let pid = child.id().to_string();
    assert_error(
        &["report", "--pid", &pid, "--duration", "1"],
        1,
        &[
            "cannot read the Python interpreter",
            &format!("\"{pid}\""),
            "CPython",
        ],
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    assert_error(&["report"], 2, &["--pid"]);
    assert_error(
        &["report", "--pid", "1", "--rate", "0"],
        2,
        &["--rate \"0\""],
    );
    assert_error(&["report", "--pid", "1", "--duration", "-1"], 2, &[]);
    assert_error(&["report", "--pid", "notanumber"], 2, &["notanumber"]);
    assert_error(&["report", "--pid", "1", "--", "python3"], 2, &[]);
    assert_error(&["serve"], 2, &["--pid", "--match"]);
    assert_error(
        &["serve", "--match", "("],
        2,
        &["--match \"(\"", "regular expression"],
    );
    assert_error(
        &["serve", "--pid", "1", "--listen", "nonsense"],
        2,
        &["--listen \"nonsense\""],
    );
    assert_error(&["serve", "--pid", "999999999"], 1, &["999999999"]);
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A launched command that is not Python is said to be so at once (not after the report's
/// duration, nor after the command ends), and -d bounds any wait.
#[test]
fn a_launched_program_that_is_not_python_is_named_at_once() {
    let started = std::time::Instant::now();
    assert_error(
        &["report", "-d", "30", "--", "sleep", "60"],
        1,
        &["`sleep 60`", "not a Python program"],
    );
    // "At once" is a grace of about a second; 20 s leaves room for a loaded machine.
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
}

/// A command that fails before its code runs is a failure with its status and the end of
/// its standard error, not a report of interpreter start-up.
#[test]
fn a_launched_command_that_fails_at_once_is_an_error_with_its_stderr() {
    let python = default_python();
    let python = python.path.to_str().unwrap();
    let err = assert_error(
        &["report", "-d", "5", "--", python, "/nonexistent/missing.py"],
        1,
        &[
            "failed at once",
            "exit status: 2",
            "can't open file",
            "missing.py",
        ],
    );
    assert!(!err.contains("zombie"), "{err}");
    let out = hptop(&[
        "report",
        "-d",
        "5",
        "--format",
        "json",
        "--",
        python,
        "-c",
        "import no_such_module_here",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "a report was written: {err}");
    assert!(err.contains("ModuleNotFoundError"), "{err}");
}

/// `--pid` of a launcher whose Python starts later (py-spy's `test_delayed_subprocess`): hptop
/// says it waits, then inspects the Python child; a launcher that never starts one is an
/// error naming what happened.
#[test]
fn a_launcher_pid_waits_for_its_python_child() {
    let python = default_python();
    // The launcher waits as long as the report lasts (2 s): its Python child starts half a
    // second in, with time to spare on a loaded machine (with `sleep 1` and 1 s, a CI run
    // under the suite's load saw no child within the second).
    let script = format!(
        "sleep 0.5; {} {} 30",
        python.path.display(),
        workload_path("idle.py").display()
    );
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = shell.id().to_string();
    let out = hptop(&["report", "--pid", &pid, "-d", "2", "--format", "json"]);
    let err = stderr(&out);
    crate::common::kill_tree(shell.id());
    shell.wait().unwrap();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("no Python process yet: waiting"), "{err}");
    assert!(err.contains("inspecting its Python child"), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inspected = report["processes"][0]["pid"].as_u64().unwrap();
    assert_ne!(inspected.to_string(), pid);

    // Exits well within the wait (with `sleep 1` against a 1 s wait, a loaded run saw the
    // wait end first).
    let mut shell = Command::new("sh")
        .args(["-c", "sleep 0.3"])
        .spawn()
        .unwrap();
    let pid = shell.id().to_string();
    let out = hptop(&["report", "--pid", &pid, "-d", "3"]);
    shell.wait().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is a launcher") && err.contains("without starting a Python process"),
        "{err}"
    );
}
