//! hptop: a live inspector for running Python processes.
//!
//! Data flows one way, **collect -> model -> view**: [`collect`] reads the target (py-spy
//! for Python stacks, `/proc` for kernel counters) into `Tick`s on its own thread; [`model`]
//! folds Ticks into a `Session` and answers `Snapshot`s; [`report`] (and later the TUI)
//! render snapshots. [`modes`] wires the three for each command.

pub mod cli;
pub mod collect;
pub mod error;
pub mod fmt;
pub mod model;
pub mod modes;
pub mod record;
pub mod report;
pub mod serve;
pub mod session;
pub mod tui;

pub use error::HptopError;

/// Runs the command line.
///
/// # Errors
/// A typed error with its exit code and fix.
pub fn run(cli: cli::Cli) -> Result<(), HptopError> {
    modes::run(cli.into_mode()?)
}
