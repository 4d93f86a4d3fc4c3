//! The live TUI: sampler -> session -> snapshot -> screen, with input and signals as events.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyEventKind, MouseButton, MouseEventKind};
use ratatui::prelude::CrosstermBackend;
use ratatui::Terminal;

use super::player::{Player, Step};
use crate::collect::{Sampler, SamplerEvent};
use crate::error::HptopError;
use crate::model::family::{self, Family};
use crate::model::snapshot::{ProcessSnapshot, Snapshot, SnapshotQuery};
use crate::session::launch::Launched;
use crate::session::{
    own_cpu_s, resolve_target, sampler_options, session_meta, SamplingOptions, Target,
};
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

/// Runs the live view until the user quits. With no target, the picker chooses one first.
///
/// # Errors
/// A typed error: no terminal, a bad target, a launch failure.
pub fn run(target: Target, sampling: &SamplingOptions) -> Result<(), HptopError> {
    if !std::io::stdout().is_terminal() {
        return Err(HptopError::Usage(
            "the live view needs a terminal; for a file or a pipe use `hptop report --pid PID` \
             (or `--format json`)"
                .into(),
        ));
    }
    let target = match target {
        Target::Pick => match super::pick::run()? {
            Some(pid) => Target::Pid(pid),
            None => return Ok(()),
        },
        other => other,
    };
    let signals = SignalFlags::register();
    // A launched command's output would tear the screen: it goes to --log FILE, or nowhere.
    let log = sampling.log.clone();
    let resolved = resolve_target(&target, None, |argv| match &log {
        Some(path) => Launched::spawn_logged(argv, path),
        None => Launched::spawn_quiet(argv),
    })?;
    let mut launched = resolved.launched;
    let options = sampler_options(resolved.pid, sampling, launched.is_some());
    let mut sampler = crate::session::start_sampler(&options, launched.as_mut())?;
    let root = sampler.target.pid;
    let mut app = App::new(
        ProcessSnapshot::default(),
        sampling.rate_hz,
        sampling.include_idle,
        sampling.mode,
    );
    app.follow = sampling.subprocesses;
    app.status = match (&resolved.notice, &launched, &log) {
        (Some(notice), _, _) => Some(notice.clone()),
        (None, Some(_), Some(path)) => Some(format!(
            "launched command: its output goes to {}; q stops it",
            path.display()
        )),
        (None, Some(_), None) => {
            Some("launched command: its output is hidden (--log FILE keeps it); q stops it".into())
        }
        _ => None,
    };
    // The launch notice passes: the status line is the GIL verdict's.
    if launched.is_some() {
        app.status_until = Some(Instant::now() + Duration::from_secs(8));
    }

    let guard = TerminalGuard::enter().map_err(|e| HptopError::Output {
        path: "the terminal".into(),
        source: e,
    })?;
    let recorder = sampling
        .record
        .as_ref()
        .map(|to| super::record::start_recording(to, sampling, &sampler.target, sampler.epoch()))
        .transpose()?;
    if let Some(to) = &sampling.record {
        app.status = Some(format!("recording to {}", to.path.display()));
    }
    let mut sessions = Sessions::new(root, recorder);
    let result = event_loop(
        &mut app,
        &mut sessions,
        Feed::Live {
            sampler: &sampler,
            launched: launched.as_mut(),
        },
        &guard,
        &signals,
    );
    drop(guard);
    sampler.stop();
    while let Ok(event) = sampler.events.try_recv() {
        sessions.event(&event);
    }
    if let Some(child) = launched.as_mut() {
        child.stop();
    }
    if let (Some(recorder), Some(to)) = (sessions.recorder.take(), &sampling.record) {
        let status = recorder.finish();
        if let Some(error) = &status.error {
            eprintln!("hptop: {error}");
        }
        eprintln!("hptop: {}", super::record::summary(&to.path, &status));
    }
    result
}

/// The whole session, and the current one-second window for the windowed view, of every
/// process followed.
struct Sessions {
    session: Family,
    recent: Family,
    /// The last complete window, all processes.
    last_window: Option<Snapshot>,
    rolled: Instant,
    /// Ticks of a running process in the current window: a window after the target's exit
    /// has none, and the last window before the exit stays shown.
    recent_ticks: u64,
    root: u32,
    /// The last source file read.
    source: Option<SourceCache>,
    /// `--record`: every event goes to the file too.
    recorder: Option<crate::record::RecordingWriter>,
    /// The recording stopped (its reason was shown); sampling goes on.
    recording_failed: bool,
}

/// A source file as read from a process's filesystem: (pid, file name, its lines).
type SourceCache = (u32, String, Option<Arc<[String]>>);

/// Length of the windowed view's window.
const WINDOW: Duration = Duration::from_secs(1);

impl Sessions {
    /// Empty figures for the target `root`, recording every event to `recorder` if given.
    fn new(root: u32, recorder: Option<crate::record::RecordingWriter>) -> Self {
        Self {
            session: Family::new(root),
            recent: Family::new(root),
            last_window: None,
            rolled: Instant::now(),
            recent_ticks: 0,
            root,
            source: None,
            recorder,
            recording_failed: false,
        }
    }

    fn event(&mut self, event: &SamplerEvent) {
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.push(event);
        }
        match event {
            SamplerEvent::Attached(info) => {
                self.session.attach(session_meta(info));
                self.recent.attach(session_meta(info));
            }
            SamplerEvent::Ticks(ticks) => {
                for tick in ticks {
                    self.session.ingest(tick);
                    self.recent.ingest(tick);
                    self.recent_ticks += u64::from(!tick.process.exited);
                }
            }
            SamplerEvent::Exited(_) | SamplerEvent::Panicked(..) => {}
        }
    }

    /// The recording's error, once, when it has just stopped.
    fn recording_error(&mut self) -> Option<String> {
        if self.recording_failed {
            return None;
        }
        let error = self.recorder.as_ref()?.status().error?;
        self.recording_failed = true;
        Some(error)
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
        let pid = app.shown_process().unwrap_or(self.root);
        app.detail = self
            .session
            .session(pid)
            .and_then(|s| s.function_detail(&file, &name, app.view.include_idle));
        if self
            .source
            .as_ref()
            .is_none_or(|(p, cached, _)| *cached != file || *p != pid)
        {
            let lines = crate::collect::source::read_source(pid, &file).map(Arc::from);
            self.source = Some((pid, file, lines));
        }
        app.source = self.source.as_ref().and_then(|(_, _, lines)| lines.clone());
    }

    fn reset(&mut self) {
        self.session.reset();
        self.recent.reset();
        self.recent_ticks = 0;
        self.last_window = None;
    }

    /// Writes the view as shown (window, mode, thread focus, process) in the export format
    /// (`E`) to files in the current directory; what it says of it. Stack widths count what
    /// the functions pane ranks by: its counter column when sorted by it, else samples.
    fn export(&mut self, app: &mut App) -> String {
        use crate::report::{StackFormat, StackOutput, Weight};
        use crate::tui::app::{ExportFormat, SortColumn};
        let query = SnapshotQuery {
            limit: None,
            stacks: true,
            ..app.query()
        };
        let snapshot = match (&self.last_window, app.view.windowed) {
            (Some(_), true) => self.recent.snapshot(&query),
            _ => self.session.snapshot(&query),
        };
        let view = match app.shown_process() {
            Some(pid) => Snapshot {
                processes: snapshot
                    .processes
                    .into_iter()
                    .filter(|p| p.pid == pid)
                    .collect(),
            },
            None => snapshot,
        };
        let weight = if app.view.sort == SortColumn::Counter {
            Weight::Counter(app.view.counter)
        } else {
            Weight::Samples
        };
        // By line in the view: frames by line in the export too.
        let stack_output = |format| StackOutput {
            format,
            weight,
            by_thread: true,
            lines: app.view.by_line,
        };
        let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S");
        let base = format!("hptop-{}-{stamp}", self.root);
        let started_at = chrono::Utc::now();
        let title = format!("hptop: PID {} ({})", self.root, query.mode.name());
        let window = crate::report::pprof::Window {
            start_unix_nanos: started_at.timestamp_nanos_opt().unwrap_or(0),
            rate_hz: app.rate_hz,
        };
        let stacks = |format| {
            crate::report::stacks::render(&view, &stack_output(format), &title, window, None)
        };
        let files: Vec<(&str, Result<Vec<u8>, String>)> = match app.view.export_format {
            ExportFormat::JsonAndFlamegraph => {
                let header = crate::report::ReportHeader {
                    started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    rate_hz: app.rate_hz,
                    hptop_cpu_s: 0.0,
                    include_idle: query.include_idle,
                    mode: query.mode,
                    stacks: true,
                };
                let json = crate::report::json::Report::new(&view, &header)
                    .to_json()
                    .map(String::into_bytes)
                    .map_err(|e| e.to_string());
                vec![("json", json), ("svg", stacks(StackFormat::Flamegraph))]
            }
            ExportFormat::Speedscope => {
                vec![("speedscope.json", stacks(StackFormat::Speedscope))]
            }
            ExportFormat::Collapsed => vec![("folded", stacks(StackFormat::Collapsed))],
            ExportFormat::Pprof => vec![("pb.gz", stacks(StackFormat::Pprof))],
        };
        let mut written = Vec::new();
        for (ext, bytes) in files {
            let path = std::path::PathBuf::from(format!("{base}.{ext}"));
            let result = bytes.and_then(|bytes| {
                let file = crate::session::output::open_output(
                    &path,
                    crate::session::output::Existing::Refuse,
                )
                .map_err(|e| e.to_string())?;
                crate::session::output::write_all(&file, &path, &bytes).map_err(|e| e.to_string())
            });
            match result {
                Ok(()) => written.push(path.display().to_string()),
                Err(e) => return format!("export failed ({ext}): {e}"),
            }
        }
        let window = if app.view.windowed {
            "last second"
        } else {
            "session"
        };
        format!(
            "exported the view ({window}, mode {}, width {}) to {}",
            query.mode.name(),
            weight.unit(),
            written.join(" and ")
        )
    }

    /// Forgets every process and figure (a replay rebuilding its view).
    fn clear(&mut self) {
        self.session = Family::new(self.root);
        self.recent = Family::new(self.root);
        self.recent_ticks = 0;
        self.last_window = None;
    }

    /// Figures for the view: the whole session, or the last complete window (with the
    /// session's timeline, which a one-second window would not fill); of the process the
    /// workers pane selects, or of all merged. Fills the app's workers rows too.
    fn snapshot(&mut self, app: &mut App) -> ProcessSnapshot {
        let query = SnapshotQuery {
            limit: None,
            ..app.query()
        };
        if self.rolled.elapsed() >= WINDOW && (self.recent_ticks > 0 || self.last_window.is_none())
        {
            self.last_window = Some(self.recent.snapshot(&query));
            self.recent.reset();
            self.recent_ticks = 0;
            self.rolled = Instant::now();
        }
        let whole = self.session.snapshot(&query);
        let shown = match (&self.last_window, app.view.windowed) {
            (Some(window), true) => window,
            _ => &whole,
        };
        app.workers = family::workers(shown, self.root);
        let pick = |snapshot: &Snapshot| -> ProcessSnapshot {
            match app.shown_process() {
                Some(pid) => snapshot
                    .processes
                    .iter()
                    .find(|p| p.pid == pid)
                    .or_else(|| snapshot.processes.first())
                    .cloned()
                    .unwrap_or_default(),
                None => family::merged(snapshot, &query),
            }
        };
        let view = pick(shown);
        if app.view.windowed {
            // The window's figures, the session's timeline and exit: after the exit the last
            // window is the last second before it.
            let whole = pick(&whole);
            ProcessSnapshot {
                timeline: whole.timeline,
                exited: whole.exited,
                ..view
            }
        } else {
            view
        }
    }
}

/// Where the view's events come from.
enum Feed<'a> {
    /// A running sampler (and the command it watches, when launched).
    Live {
        sampler: &'a Sampler,
        launched: Option<&'a mut Launched>,
    },
    /// A recording being played.
    Replay(&'a mut Player),
}

impl Feed<'_> {
    /// Takes the events ready now into the sessions; whether anything changed.
    fn take(&mut self, sessions: &mut Sessions, app: &mut App) -> Result<bool, HptopError> {
        match self {
            Feed::Live { sampler, launched } => {
                let mut changed = false;
                while let Ok(event) = sampler.events.try_recv() {
                    live_notice(&event, sessions.root, launched.as_deref_mut(), app);
                    sessions.event(&event);
                    changed = true;
                }
                Ok(changed)
            }
            Feed::Replay(player) => {
                let events = match player.step()? {
                    Step::Idle => return Ok(false),
                    Step::Feed(events) => events,
                    Step::Rebuild(events) => {
                        sessions.clear();
                        events
                    }
                };
                for event in &events {
                    sessions.event(event);
                }
                Ok(true)
            }
        }
    }
}

/// The status line's word on a sampler's event: the target exited, sampling stopped.
fn live_notice(event: &SamplerEvent, root: u32, launched: Option<&mut Launched>, app: &mut App) {
    if matches!(event, SamplerEvent::Exited(pid) if *pid == root)
        || matches!(event, SamplerEvent::Panicked(..))
    {
        // This one stays.
        app.status_until = None;
    }
    match event {
        SamplerEvent::Exited(pid) if *pid == root => {
            let how = launched
                .and_then(Launched::status)
                .map_or_else(String::new, |status| format!(" ({status})"));
            let at = chrono::Local::now().format("%H:%M:%S");
            app.status = Some(format!(
                "the target exited at {at}{how}; its figures stay here until q (w: its last second)"
            ));
        }
        SamplerEvent::Panicked(pid, message) => {
            let which = if *pid == root {
                String::new()
            } else {
                format!(" of PID {pid}")
            };
            app.status = Some(format!(
                "sampling{which} stopped: {message}; the figures so far stay"
            ));
        }
        _ => {}
    }
}

/// Handles a key (the replay's own first); whether it quits.
fn press(
    key: event::KeyEvent,
    page: usize,
    app: &mut App,
    sessions: &mut Sessions,
    feed: &mut Feed,
    signals: &SignalFlags,
) -> bool {
    if let Feed::Replay(player) = feed {
        if player.key(key) {
            app.dirty = true;
            return false;
        }
    }
    match (app.key(key, page), feed) {
        (Effect::Quit, _) => return true,
        (Effect::Suspend, _) => signals.suspend.store(true, Ordering::Relaxed),
        (Effect::Pause(paused), Feed::Live { sampler, .. }) => sampler.set_paused(paused),
        (Effect::Pause(paused), Feed::Replay(player)) => player.set_playing(!paused),
        (Effect::Reset, Feed::Live { .. }) => sessions.reset(),
        (Effect::Export, _) => {
            app.status = Some(sessions.export(app));
            app.status_until = Some(Instant::now() + Duration::from_secs(10));
        }
        (Effect::Reset | Effect::Requery | Effect::None, _) => {}
    }
    false
}

fn event_loop(
    app: &mut App,
    sessions: &mut Sessions,
    mut feed: Feed,
    guard: &TerminalGuard,
    signals: &SignalFlags,
) -> Result<(), HptopError> {
    let to_output = |e: std::io::Error| HptopError::Output {
        path: "the terminal".into(),
        source: e,
    };
    let mut terminal =
        Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(to_output)?;
    let input = Input::spawn();
    let mut last_draw: Option<Instant> = None;
    let mut cpu_mark = (Instant::now(), own_cpu_s());
    let mut suspended = false;
    let outcome = loop {
        if signals.quit.load(Ordering::Relaxed) {
            break Ok(());
        }
        if signals.suspend.swap(false, Ordering::Relaxed) && !suspended {
            suspended = true;
            match &feed {
                Feed::Live { sampler, .. } => suspend(guard, sampler),
                Feed::Replay(_) => {
                    guard.suspend();
                    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
                }
            }
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
                if press(key, page, app, sessions, &mut feed, signals) {
                    break Ok(());
                }
            }
            Ok(Event::Mouse(mouse)) => {
                let height = terminal.size().map_or(24, |s| s.height);
                if let Feed::Replay(player) = &mut feed {
                    if player.mouse(mouse.kind, mouse.column, mouse.row, height) {
                        app.dirty = true;
                        continue;
                    }
                }
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
        if feed.take(sessions, app)? {
            app.dirty = true;
        }
        if app
            .status_until
            .is_some_and(|until| Instant::now() >= until)
        {
            app.status = None;
            app.status_until = None;
            app.dirty = true;
        }
        if let Feed::Replay(player) = &mut feed {
            app.status = Some(player.bar(terminal.size().map_or(80, |s| s.width.into())));
        }
        if let Some(error) = sessions.recording_error() {
            app.status = Some(format!("{error}; sampling goes on"));
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
        let snapshot = sessions.snapshot(app);
        // A recording's process may be long gone (or its pid reused): no uptime then.
        app.target_uptime_s = crate::collect::procfs::age_s(snapshot.start_ticks).filter(|_| {
            snapshot.start_ticks > 0 && !snapshot.exited && matches!(feed, Feed::Live { .. })
        });
        app.set_snapshot(snapshot);
        sessions.detail(app);
        terminal
            .draw(|frame| crate::tui::draw(frame, app))
            .map_err(to_output)?;
        app.dirty = false;
        last_draw = Some(Instant::now());
    };
    input.stop();
    outcome
}

/// Restores the terminal and stops hptop, between two samples of every sampler (so a
/// `--blocking` pause of a target is never held; this works too once the target has exited).
fn suspend(guard: &TerminalGuard, sampler: &Sampler) {
    guard.suspend();
    sampler.suspend_self();
}

/// Terminal events read on a thread of its own, so the loop never blocks on input (and a
/// hung-up terminal, whose reads may spin inside crossterm, never holds the loop).
pub(super) struct Input {
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
}

/// How often the input thread looks whether it is to stop.
const INPUT_POLL: Duration = Duration::from_millis(100);

impl Input {
    /// Starts reading the terminal.
    pub(super) fn spawn() -> Self {
        let (tx, events) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let _ = std::thread::Builder::new()
            .name("hptop-input".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    match event::poll(INPUT_POLL) {
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
        Self { events, stop }
    }

    /// The next event, waiting at most `timeout`; `Disconnected` once the thread has ended
    /// (end of file or an error on the terminal).
    pub(super) fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        self.events.recv_timeout(timeout)
    }

    /// Tells the thread to stop; it ends within one poll.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the thread and waits until it has ended (at most a second: a hung-up terminal may
    /// hold it), so that a reader started next is the only one: a key meant for it (the live
    /// view's `q` after the picker) is not read here and lost. Events read meanwhile are
    /// dropped.
    pub(super) fn stop_and_wait(self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Err(RecvTimeoutError::Disconnected) = self.events.recv_timeout(INPUT_POLL / 2) {
                break;
            }
        }
    }
}

/// Runs `hptop replay FILE`: the live view, fed from a recording.
///
/// # Errors
/// No terminal, or an unreadable recording.
pub fn replay(options: &super::ReplayOptions) -> Result<(), HptopError> {
    // The file first: a bad one is the error to hear of, terminal or not.
    let mut player = Player::open(&options.path)?;
    if !std::io::stdout().is_terminal() {
        return Err(HptopError::Usage(
            "replay needs a terminal; for a file or a pipe use `hptop report --input FILE`".into(),
        ));
    }
    let signals = SignalFlags::register();
    let root = player.header.pid;
    let mut app = App::new(
        ProcessSnapshot::default(),
        player.header.rate_hz,
        options.mode == crate::model::snapshot::Mode::Wall,
        options.mode,
    );
    app.follow = player.header.subprocesses;
    // A replay opens still (showing the whole recording): space plays it.
    app.view.paused = true;
    app.replay = true;
    let guard = TerminalGuard::enter().map_err(|e| HptopError::Output {
        path: "the terminal".into(),
        source: e,
    })?;
    let mut sessions = Sessions::new(root, None);
    let result = event_loop(
        &mut app,
        &mut sessions,
        Feed::Replay(&mut player),
        &guard,
        &signals,
    );
    drop(guard);
    result
}
