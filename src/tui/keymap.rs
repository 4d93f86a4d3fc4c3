//! One table of keys: it drives both input handling and the help overlay.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave hptop.
    Quit,
    /// Move the selection.
    Up,
    /// Move the selection.
    Down,
    /// Move the selection a page.
    PageUp,
    /// Move the selection a page.
    PageDown,
    /// First row.
    Home,
    /// Last row.
    End,
    /// Focus the next pane.
    NextPane,
    /// Start typing a filter.
    Filter,
    /// Next sort column.
    SortNext,
    /// Previous sort column.
    SortPrev,
    /// Show and rank by the next kernel counter.
    NextCounter,
    /// Merge all processes into one view (again: back to one process).
    Merge,
    /// Reverse the sort order.
    Invert,
    /// Pause or resume sampling (nothing of the target stops either way).
    Pause,
    /// Forget all figures gathered so far.
    Reset,
    /// Show only the selected thread's functions (again: all threads).
    ThreadFocus,
    /// Functions or lines.
    ToggleLines,
    /// The functions pane shows asyncio tasks instead (again: functions).
    ToggleTasks,
    /// Figures of the last second, or of the whole session.
    Window,
    /// Timeline: the last minutes, or the whole session.
    Zoom,
    /// What function shares count: cpu, samples, wall.
    NextMode,
    /// Detail of the selected function: callers, callees, source with line heat.
    Detail,
    /// The help overlay.
    Help,
    /// Suspend hptop (^Z).
    Suspend,
    /// Write the view in the export format.
    Export,
    /// Choose the export format.
    ExportFormat,
}

/// A key, the action it triggers, and its help text.
pub struct Binding {
    /// Key as the help overlay shows it.
    pub keys: &'static str,
    /// The action.
    pub action: Action,
    /// What it does.
    pub help: &'static str,
    /// What it does in a replay, where that differs (`None`: the same; `Some("")`: nothing,
    /// and the replay's help leaves it out).
    pub in_replay: Option<&'static str>,
}

/// Keys a replay adds, taken by the player (`modes::player`) before this table: (keys, help).
pub const REPLAY_KEYS: &[(&str, &str)] = &[
    ("← →", "seek 10 s back / on (Shift: 60 s)"),
    (
        "[  ]",
        "start / end the range shown at the cursor (or drag on the axis)",
    ),
    ("x", "clear the range: the whole recording"),
    (
        "1 2 3 4",
        "jump to the peak of CPU, RSS, GIL wait, page faults",
    ),
    ("+  -", "replay speed"),
];

/// Every key hptop knows, in help order.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: "↑↓ jk PgUp PgDn Home End",
        action: Action::Down,
        help: "move the selection",
        in_replay: None,
    },
    Binding {
        keys: "Tab  Shift-Tab",
        action: Action::NextPane,
        help: "next pane (threads, workers, functions)",
        in_replay: None,
    },
    Binding {
        keys: "/  F3  F4",
        action: Action::Filter,
        help: "filter functions by text (Enter keeps, Esc clears)",
        in_replay: None,
    },
    Binding {
        keys: "> <  s  F6",
        action: Action::SortNext,
        help: "sort by the next / previous column",
        in_replay: None,
    },
    Binding {
        keys: "c",
        action: Action::NextCounter,
        help: "counter column: CPU, faults, switches, I/O; ranks by it",
        in_replay: None,
    },
    Binding {
        keys: "I",
        action: Action::Invert,
        help: "invert the sort order",
        in_replay: None,
    },
    Binding {
        keys: "L",
        action: Action::ToggleLines,
        help: "functions or single lines",
        in_replay: None,
    },
    Binding {
        keys: "a",
        action: Action::ToggleTasks,
        help: "asyncio tasks (3.11+) instead of functions; Enter: a task's functions",
        in_replay: None,
    },
    Binding {
        keys: "Enter",
        action: Action::Detail,
        help: "function detail: callers, callees, source heat (Esc closes)",
        in_replay: None,
    },
    Binding {
        keys: "w",
        action: Action::Window,
        help: "figures of the last second, or of the whole session",
        in_replay: None,
    },
    Binding {
        keys: "M",
        action: Action::NextMode,
        help: "function shares: on-CPU time, samples (as py-spy), wall (idle too)",
        in_replay: None,
    },
    Binding {
        keys: "z",
        action: Action::Zoom,
        help: "timeline: recent seconds, or the whole session",
        in_replay: None,
    },
    Binding {
        keys: "m",
        action: Action::Merge,
        help: "workers: merge all processes into one view (again: one)",
        in_replay: None,
    },
    Binding {
        keys: "t",
        action: Action::ThreadFocus,
        help: "functions of the selected thread only (again: all)",
        in_replay: None,
    },
    Binding {
        keys: "p  Space",
        action: Action::Pause,
        help: "pause sampling (the target never stops)",
        in_replay: Some("play or pause the replay"),
    },
    Binding {
        keys: "e",
        action: Action::Export,
        help: "export the view as shown to files here (widths: the ranked column)",
        in_replay: None,
    },
    Binding {
        keys: "E",
        action: Action::ExportFormat,
        help: "export format: JSON + flame graph, speedscope, collapsed, pprof",
        in_replay: None,
    },
    Binding {
        keys: "r",
        action: Action::Reset,
        help: "reset all figures",
        in_replay: Some(""),
    },
    Binding {
        keys: "?  h  F1",
        action: Action::Help,
        help: "this help",
        in_replay: None,
    },
    Binding {
        keys: "^Z",
        action: Action::Suspend,
        help: "suspend hptop (fg resumes)",
        in_replay: None,
    },
    Binding {
        keys: "q  F10  ^C",
        action: Action::Quit,
        help: "quit",
        in_replay: None,
    },
];

/// The action of a key press, if any.
pub fn action(key: KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Char('z') if ctrl => Action::Suspend,
        KeyCode::Char('q') | KeyCode::F(10) => Action::Quit,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home => Action::Home,
        KeyCode::End => Action::End,
        KeyCode::Tab | KeyCode::BackTab => Action::NextPane,
        KeyCode::Char('/') | KeyCode::F(3 | 4) => Action::Filter,
        KeyCode::Char('>' | '.' | 's') | KeyCode::F(6) => Action::SortNext,
        KeyCode::Char('c') => Action::NextCounter,
        KeyCode::Char('<' | ',') => Action::SortPrev,
        KeyCode::Char('I' | 'i') => Action::Invert,
        KeyCode::Char('p' | ' ') => Action::Pause,
        KeyCode::Char('r') => Action::Reset,
        KeyCode::Char('e') => Action::Export,
        KeyCode::Char('E') => Action::ExportFormat,
        KeyCode::Char('t') => Action::ThreadFocus,
        KeyCode::Char('m') => Action::Merge,
        KeyCode::Char('L' | 'l') => Action::ToggleLines,
        KeyCode::Char('a' | 'A') => Action::ToggleTasks,
        KeyCode::Char('w') => Action::Window,
        KeyCode::Enter => Action::Detail,
        KeyCode::Char('z') => Action::Zoom,
        KeyCode::Char('M') => Action::NextMode,
        KeyCode::Char('?' | 'h') | KeyCode::F(1) => Action::Help,
        _ => return None,
    })
}
