//! `hptop` with no target: a picker of the machine's Python processes (as `hptop ps` lists
//! them), busiest first, searchable; Enter attaches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{Event, KeyEventKind};
use ratatui::prelude::CrosstermBackend;
use ratatui::Terminal;

use super::ps::python_rows;
use crate::error::HptopError;
use crate::tui::picker::{Picked, Picker};
use crate::tui::terminal::TerminalGuard;

/// Window over which each refresh measures CPU (also the refresh period).
const REFRESH: Duration = Duration::from_secs(1);

/// Shows the picker until the user chooses a process (`Some(pid)`) or leaves (`None`).
///
/// # Errors
/// When the terminal cannot be drawn.
pub fn run() -> Result<Option<u32>, HptopError> {
    let to_output = |e: std::io::Error| HptopError::Output {
        path: "the terminal".into(),
        source: e,
    };
    let quit = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&quit));
    }
    let guard = TerminalGuard::enter().map_err(to_output)?;
    // The list is measured on a thread of its own (each refresh sleeps a CPU window).
    let stop = Arc::new(AtomicBool::new(false));
    let (rows_tx, rows_rx) = mpsc::channel();
    let thread_stop = Arc::clone(&stop);
    let _ = std::thread::Builder::new()
        .name("hptop-picker".into())
        .spawn(move || {
            while !thread_stop.load(Ordering::Relaxed) {
                if rows_tx.send(python_rows(REFRESH)).is_err() {
                    return;
                }
            }
        });
    let mut terminal =
        Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(to_output)?;
    let mut picker = Picker::default();
    let input = super::live::Input::spawn();
    let outcome = loop {
        if quit.load(Ordering::Relaxed) {
            break Ok(None);
        }
        match rows_rx.recv_timeout(Duration::ZERO) {
            Ok(rows) => picker.set_rows(rows),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        // A hung-up terminal fails this draw: the picker ends instead of spinning.
        if let Err(e) = terminal.draw(|frame| crate::tui::picker::draw(frame, &picker)) {
            break Err(to_output(e));
        }
        match input.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => match picker.key(key) {
                Picked::Nothing => {}
                Picked::Quit => break Ok(None),
                Picked::Pid(pid) => break Ok(Some(pid)),
            },
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            // The input thread ended: end of file or an error on the terminal.
            Err(RecvTimeoutError::Disconnected) => break Ok(None),
        }
    };
    stop.store(true, Ordering::Relaxed);
    // The live view that follows reads the terminal with an input thread of its own.
    input.stop_and_wait();
    drop(guard);
    outcome
}
