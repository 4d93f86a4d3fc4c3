//! Strings from the target reach the terminal inert.

use crate::common::{default_python, hptop, Workload};

#[test]
fn escape_sequences_in_thread_and_function_names_are_shown_escaped() {
    let python = default_python();
    let workload = Workload::start(&python, "evil_names.py", &[]);
    let pid = workload.pid().to_string();
    for args in [
        vec!["report", "--pid", &pid, "--duration", "1"],
        vec![
            "report",
            "--pid",
            &pid,
            "--duration",
            "1",
            "--format",
            "json",
        ],
        vec!["dump", "--pid", &pid],
    ] {
        let out = hptop(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            crate::common::stderr(&out)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains('\x1b'),
            "{args:?}: raw ESC reached the output"
        );
        assert!(
            !text.contains('\x07') && !text.contains('\u{202e}'),
            "{args:?}"
        );
        // JSON escapes backslashes again; the text forms show the escape once.
        assert!(
            text.contains("x1b]0;pwned"),
            "{args:?}: thread name missing:\n{text}"
        );
        assert!(
            text.contains("burn\\x1b") || text.contains("burn\\\\x1b"),
            "{args:?}: function name:\n{text}"
        );
    }
}
