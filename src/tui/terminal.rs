//! `TerminalGuard`: enters and restores the terminal. Restoring is idempotent and never
//! panics, and runs on drop, on a panic (chained hook), and before hptop suspends itself.

use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::crossterm::{cursor, event, execute, terminal};

/// Whether the terminal is in hptop's mode (raw, alternate screen); shared with the panic hook.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Owns the terminal's raw mode and alternate screen while alive.
pub struct TerminalGuard {
    _private: (),
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen, and installs a panic hook that restores the
    /// terminal before the default hook prints (only for panics on the main thread). A panic
    /// on a sampler thread is caught and reported in the UI instead, so while the screen is
    /// hptop's it is not printed over it.
    ///
    /// # Errors
    /// When the terminal cannot be set up (not a terminal).
    pub fn enter() -> io::Result<Self> {
        let main = std::thread::current().id();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let current = std::thread::current();
            if current.id() == main {
                restore();
            } else if current.name() == Some(crate::collect::SAMPLER_THREAD)
                && ACTIVE.load(Ordering::SeqCst)
            {
                return;
            }
            previous(info);
        }));
        enter()?;
        Ok(Self { _private: () })
    }

    /// Leaves hptop's mode (e.g. before suspending).
    pub fn suspend(&self) {
        restore();
    }

    /// Enters hptop's mode again (after a resume).
    ///
    /// # Errors
    /// When the terminal cannot be set up.
    pub fn resume(&self) -> io::Result<()> {
        enter()
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

fn enter() -> io::Result<()> {
    terminal::enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    execute!(
        io::stdout(),
        terminal::EnterAlternateScreen,
        event::EnableMouseCapture,
        cursor::Hide
    )
}

/// Restores the terminal if hptop changed it. Safe to call any number of times, from a panic
/// hook too: errors are ignored (a hung-up terminal cannot be restored anyway).
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(
            out,
            event::DisableMouseCapture,
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
        let _ = terminal::disable_raw_mode();
        let _ = out.flush();
    }
}
