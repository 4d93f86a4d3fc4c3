//! Safe as root: output files are opened before sampling, never through a symbolic link,
//! never replacing a file unasked, and handed to the sudo user; only launchers stand for
//! their Python child; nothing sampled is an error with its cause.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{default_python, hptop, stderr, workload_path, Workload};

/// Runs hptop with `args` and `env`; panics if it runs longer than `limit` (it would have
/// sampled a long window instead of failing first).
fn hptop_within(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hptop"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("hptop {args:?} was still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hptop-out-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn output_files_refuse_links_and_existing_files_before_sampling() {
    let workload = Workload::start(&default_python(), "idle.py", &[]);
    let pid = workload.pid().to_string();
    let dir = temp_dir("links");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let link = dir.join("report.txt");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let quick = Duration::from_secs(20);
    // A 600 s window: failing at once means failing before sampling.
    let long = ["report", "--pid", &pid, "--duration", "600", "-o"];

    let link_arg = link.to_str().unwrap();
    let out = hptop_within(&[&long[..], &[link_arg, "--force"]].concat(), &[], quick);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    let out = hptop_within(
        &[&long[..], &[victim.to_str().unwrap()]].concat(),
        &[],
        quick,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    let missing_dir = dir.join("no/such/dir/report.txt");
    let out = hptop_within(
        &[&long[..], &[missing_dir.to_str().unwrap()]].concat(),
        &[],
        quick,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // --force replaces a regular file; a new file goes to the sudo user.
    let short = ["report", "--pid", &pid, "--duration", "0.5", "-o"];
    let out = hptop(&[&short[..], &[victim.to_str().unwrap(), "--force"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&victim).unwrap().contains("PID "));
    if nix::unistd::Uid::effective().is_root() {
        let fresh = dir.join("fresh.txt");
        let out = hptop_within(
            &[&short[..], &[fresh.to_str().unwrap()]].concat(),
            &[("SUDO_UID", "65534"), ("SUDO_GID", "65533")],
            quick,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let meta = std::fs::metadata(&fresh).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65533));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn only_a_launcher_stands_for_its_python_child() {
    // flock waits for its child: a parent that is not a launcher.
    let python = default_python();
    let lock = std::env::temp_dir().join(format!("hptop-flock-{}", std::process::id()));
    let mut parent = Command::new("flock")
        .arg(&lock)
        .arg(&python.path)
        .arg(workload_path("idle.py"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", parent.id()))
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "flock did not start python");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = parent.id().to_string();
    let out = hptop(&["dump", "--pid", &pid]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a Python process"), "{err}");
    assert!(!err.contains("inspecting its Python child"), "{err}");
    // Its child is still named as a candidate.
    assert!(err.contains("idle.py"), "{err}");
    crate::common::kill_tree(parent.id());
    let _ = parent.wait();
    let _ = std::fs::remove_file(&lock);
}

#[test]
fn a_window_shorter_than_two_samples_is_refused() {
    let workload = Workload::start(&default_python(), "idle.py", &[]);
    let pid = workload.pid().to_string();
    let out = hptop(&[
        "report",
        "--pid",
        &pid,
        "--duration",
        "0.001",
        "--rate",
        "1",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("shorter than two samples"), "{err}");
    assert!(out.stdout.is_empty(), "no report is printed");
}

/// `-o /dev/null` is written as it is (only an existing regular file needs --force); a
/// directory is said to be one; a recording refuses a device, saying why.
#[test]
fn devices_and_directories_as_output() {
    let workload = Workload::start(&default_python(), "idle.py", &[]);
    let pid = workload.pid().to_string();
    let out = hptop(&["report", "--pid", &pid, "-d", "1", "-o", "/dev/null"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = std::env::temp_dir();
    let out = hptop(&[
        "report",
        "--pid",
        &pid,
        "-d",
        "1",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("it is a directory"), "{err}");
    let out = hptop(&["record", "--pid", &pid, "-d", "1", "-o", "/dev/null"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("must be a regular file"), "{err}");
}
