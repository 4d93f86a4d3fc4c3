//! End-to-end tests: real Python processes started by the tests, inspected by the real
//! hptop binary, checked against what each workload is known to do.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failed unwrap is a failed test"
)]
mod asyncio;
mod bounded;
mod common;
mod container;
mod counters;
mod dump_ps;
mod errors;
mod gc;
mod gil;
mod hostile;
mod loaded;
mod many_threads;
mod record;
mod report;
mod safe_output;
mod sanitize;
mod serve;
mod signals;
mod tui;
mod workers;
