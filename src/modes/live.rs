//! The live TUI: sampler -> session -> snapshot -> screen, with input and signals as events.

use std::io::IsTerminal as _;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyEventKind, MouseButton, MouseEventKind};
use ratatui::prelude::CrosstermBackend;
use ratatui::Terminal;

use super::launch::Launched;
use super::{own_cpu_s, resolve_target, sampler_options, session_meta, SamplingOptions, Target};
use crate::collect::{Sampler, SamplerEvent};
use crate::error::HptopError;
use crate::model::snapshot::{ProcessSnapshot, SnapshotQuery};
use crate::model::Session;
use crate::tui::app::{App, Effect};
use crate::tui::terminal::TerminalGuard;

/// Fewest milliseconds between two redraws.
const REDRAW: Duration = Duration::from_millis(250);
/// How long the loop waits for input before looking at the other sources.
const TICK: Duration = Duration::from_millis(50);

/// Signals turned into flags the loop reads.
struct SignalFlags {
    quit: Arc<AtomicBool>,
    suspend: Arc<AtomicBool>,
    resumed: Arc<AtomicBool>,
}

impl SignalFlags {
    fn register() -> Self {
        use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGTERM, SIGTSTP};
        let flags = Self {
            quit: Arc::new(AtomicBool::new(false)),
            suspend: Arc::new(AtomicBool::new(false)),
            resumed: Arc::new(AtomicBool::new(false)),
        };
        for signal in [SIGTERM, SIGHUP, SIGINT] {
            let _ = signal_hook::flag::register(signal, Arc::clone(&flags.quit));
        }
        let _ = signal_hook::flag::register(SIGTSTP, Arc::clone(&flags.suspend));
        let _ = signal_hook::flag::register(SIGCONT, Arc::clone(&flags.resumed));
        flags
    }
}

/// Runs the live view until the user quits.
///
/// # Errors
/// A typed error: no terminal, a bad target, a launch failure.
pub fn run(target: &Target, sampling: &SamplingOptions) -> Result<(), HptopError> {
    if !std::io::stdout().is_terminal() {
        return Err(HptopError::Usage(
            "the live view needs a terminal; for a file or a pipe use `hptop report --pid PID` \
             (or `--format json`)"
                .into(),
        ));
    }
    let signals = SignalFlags::register();
    // A launched command's output would tear the screen: it is discarded (`hptop report -- ...`
    // shows it).
    let (pid, mut launched) = resolve_target(target, |argv| {
        Launched::spawn_with(argv, Stdio::null(), Stdio::null())
    })?;
    let options = sampler_options(pid, sampling, launched.is_some());
    let mut sampler = Sampler::start(&options)?;
    let session = Session::new(session_meta(&sampler.target));
    let mut app = App::new(
        session.snapshot(&SnapshotQuery::default()),
        sampling.rate_hz,
        sampling.include_idle,
    );
    if launched.is_some() {
        app.status = Some("launched command: its output is discarded; q stops it".into());
    }

    let guard = TerminalGuard::enter().map_err(|e| HptopError::Output {
        path: "the terminal".into(),
        source: e,
    })?;
    let start_ticks = sampler.target.start_ticks;
    let mut sessions = Sessions {
        recent: Session::new(session_meta(&sampler.target)),
        session,
        last_window: None,
        rolled: Instant::now(),
        start_ticks,
        pid: sampler.target.pid,
        source: None,
    };
    let result = event_loop(&mut app, &mut sessions, &sampler, &guard, &signals);
    drop(guard);
    sampler.stop();
    if let Some(child) = launched.as_mut() {
        child.stop();
    }
    result
}

/// The whole session, and the current one-second window for the windowed view.
struct Sessions {
    session: Session,
    recent: Session,
    last_window: Option<ProcessSnapshot>,
    rolled: Instant,
    start_ticks: u64,
    pid: u32,
    /// The last source file read: (file name, its lines).
    source: Option<(String, Option<Arc<[String]>>)>,
}

/// Length of the windowed view's window.
const WINDOW: Duration = Duration::from_secs(1);

impl Sessions {
    fn ingest(&mut self, tick: &crate::collect::tick::Tick) {
        self.session.ingest(tick);
        self.recent.ingest(tick);
    }

    /// Fills the app's detail pane for the selected function (source read once per file).
    fn detail(&mut self, app: &mut App) {
        let selected = app
            .selected_function_id()
            .filter(|_| app.view.show_detail)
            .map(|(file, name)| (file.to_owned(), name.to_owned()));
        let Some((file, name)) = selected else {
            app.detail = None;
            return;
        };
        app.detail = self
            .session
            .function_detail(&file, &name, app.view.include_idle);
        if self
            .source
            .as_ref()
            .is_none_or(|(cached, _)| *cached != file)
        {
            let lines = crate::collect::source::read_source(self.pid, &file).map(Arc::from);
            self.source = Some((file, lines));
        }
        app.source = self.source.as_ref().and_then(|(_, lines)| lines.clone());
    }

    fn reset(&mut self) {
        self.session.reset();
        self.recent.reset();
        self.last_window = None;
    }

    /// Figures for the view: the whole session, or the last complete window (with the
    /// session's timeline, which a one-second window would not fill).
    fn snapshot(&mut self, app: &App) -> ProcessSnapshot {
        let query = app.query();
        if self.rolled.elapsed() >= WINDOW {
            self.last_window = Some(self.recent.snapshot(&query));
            self.recent.reset();
            self.rolled = Instant::now();
        }
        let whole = self.session.snapshot(&query);
        match (&self.last_window, app.view.windowed) {
            (Some(window), true) => ProcessSnapshot {
                timeline: whole.timeline,
                exited: whole.exited,
                ..window.clone()
            },
            _ => whole,
        }
    }
}

fn event_loop(
    app: &mut App,
    sessions: &mut Sessions,
    sampler: &Sampler,
    guard: &TerminalGuard,
    signals: &SignalFlags,
) -> Result<(), HptopError> {
    let to_output = |e: std::io::Error| HptopError::Output {
        path: "the terminal".into(),
        source: e,
    };
    let mut terminal =
        Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(to_output)?;
    let stop_input = Arc::new(AtomicBool::new(false));
    let input = spawn_input(Arc::clone(&stop_input));
    let mut last_draw: Option<Instant> = None;
    let mut cpu_mark = (Instant::now(), own_cpu_s());
    let mut suspended = false;
    let outcome = loop {
        if signals.quit.load(Ordering::Relaxed) {
            break Ok(());
        }
        if signals.suspend.swap(false, Ordering::Relaxed) && !suspended {
            suspended = true;
            suspend(guard, sampler, app.view.paused);
        }
        if signals.resumed.swap(false, Ordering::Relaxed) && suspended {
            suspended = false;
            guard.resume().map_err(to_output)?;
            terminal.clear().map_err(to_output)?;
            app.dirty = true;
        }
        match input.recv_timeout(TICK) {
            Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                let page = crate::tui::function_page(terminal.size().map_or(24, |s| s.height));
                match app.key(key, page) {
                    Effect::Quit => break Ok(()),
                    Effect::Suspend => signals.suspend.store(true, Ordering::Relaxed),
                    Effect::Pause(paused) => sampler.set_paused(paused),
                    Effect::Reset => sessions.reset(),
                    Effect::Requery | Effect::None => {}
                }
            }
            Ok(Event::Mouse(mouse)) => {
                if let MouseEventKind::Down(MouseButton::Left) = mouse.kind {
                    if let Ok(size) = terminal.size() {
                        let area = ratatui::layout::Rect::new(0, 0, size.width, size.height);
                        crate::tui::click(app, area, mouse.column, mouse.row);
                    }
                }
            }
            Ok(_) => app.dirty = true,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        }
        while let Ok(event) = sampler.events.try_recv() {
            match event {
                SamplerEvent::Ticks(ticks) => {
                    for tick in &ticks {
                        sessions.ingest(tick);
                    }
                }
                SamplerEvent::Exited => {
                    app.status = Some("the target exited; its figures stay here until q".into());
                }
                SamplerEvent::Panicked(message) => {
                    app.status = Some(format!(
                        "sampling stopped: {message}; the figures so far stay"
                    ));
                }
            }
            app.dirty = true;
        }
        if suspended || !app.dirty || last_draw.is_some_and(|at| at.elapsed() < REDRAW) {
            continue;
        }
        let (at, cpu) = cpu_mark;
        if at.elapsed() >= Duration::from_secs(1) {
            let now = own_cpu_s();
            app.hptop_cpu_percent = (now - cpu) * 100.0 / at.elapsed().as_secs_f64();
            cpu_mark = (Instant::now(), now);
        }
        app.target_uptime_s = crate::collect::procfs::age_s(sessions.start_ticks);
        let snapshot = sessions.snapshot(app);
        app.set_snapshot(snapshot);
        sessions.detail(app);
        terminal
            .draw(|frame| crate::tui::draw(frame, app))
            .map_err(to_output)?;
        app.dirty = false;
        last_draw = Some(Instant::now());
    };
    stop_input.store(true, Ordering::Relaxed);
    outcome
}

/// Restores the terminal and stops hptop. With sampling running, the sampler stops the
/// process between two samples, so a `--blocking` pause of the target is never held; with
/// sampling paused nothing holds one and the main thread stops it at once.
fn suspend(guard: &TerminalGuard, sampler: &Sampler, paused: bool) {
    guard.suspend();
    if paused {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    } else {
        sampler.suspend_request().store(true, Ordering::Relaxed);
    }
}

/// Reads terminal events on a thread of its own, so the loop never blocks on input.
fn spawn_input(stop: Arc<AtomicBool>) -> Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("hptop-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(100)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if tx.send(ev).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    },
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        });
    rx
}
