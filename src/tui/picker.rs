//! The process picker (`hptop` with no target): plain state plus a draw function, so it is
//! tested with ratatui's `TestBackend` from a fixed list.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::theme::Theme;
use crate::fmt;
use crate::model::dump::PsRow;

/// What a key press decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picked {
    /// Keep choosing.
    Nothing,
    /// Leave without a choice.
    Quit,
    /// Attach to this process.
    Pid(u32),
}

/// The picker's state: the processes, the search text, the selection (by pid, so a refresh
/// that re-sorts the list does not move it).
#[derive(Debug, Default)]
pub struct Picker {
    rows: Vec<PsRow>,
    /// Text typed to search pid, user and command line.
    pub filter: String,
    /// Pid of the selected row.
    pub selected: Option<u32>,
    /// The list has been measured at least once.
    pub loaded: bool,
}

impl Picker {
    /// Replaces the list (a new measurement).
    pub fn set_rows(&mut self, rows: Vec<PsRow>) {
        self.rows = rows;
        self.loaded = true;
    }

    /// The rows matching the search, busiest first.
    pub fn visible(&self) -> Vec<&PsRow> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&PsRow> = self
            .rows
            .iter()
            .filter(|r| {
                needle.is_empty()
                    || r.pid.to_string().contains(&needle)
                    || r.user.to_lowercase().contains(&needle)
                    || r.command.to_lowercase().contains(&needle)
            })
            .collect();
        rows.sort_by(|a, b| {
            b.cpu_percent
                .total_cmp(&a.cpu_percent)
                .then(a.pid.cmp(&b.pid))
        });
        rows
    }

    /// The selected pid if it is visible, else the first visible one.
    pub fn current(&self) -> Option<u32> {
        let visible = self.visible();
        self.selected
            .filter(|pid| visible.iter().any(|r| r.pid == *pid))
            .or_else(|| visible.first().map(|r| r.pid))
    }

    /// Handles a key: arrows move, text searches, Enter attaches, Esc clears the search or
    /// leaves, ^C leaves.
    pub fn key(&mut self, key: KeyEvent) -> Picked {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => return Picked::Quit,
            KeyCode::Esc if self.filter.is_empty() => return Picked::Quit,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Enter => {
                if let Some(pid) = self.current() {
                    return Picked::Pid(pid);
                }
            }
            KeyCode::Up => self.step(-1),
            KeyCode::Down => self.step(1),
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) if !c.is_control() && !ctrl => self.filter.push(c),
            _ => {}
        }
        Picked::Nothing
    }

    fn step(&mut self, delta: isize) {
        let pids: Vec<u32> = self.visible().iter().map(|r| r.pid).collect();
        let Some(current) = self.current() else {
            return;
        };
        let i = pids.iter().position(|p| *p == current).unwrap_or(0);
        let next = i
            .saturating_add_signed(delta)
            .min(pids.len().saturating_sub(1));
        self.selected = pids.get(next).copied();
    }
}

/// Draws the picker over the whole screen.
/// A command line as the picker shows it: what tells processes apart first. The interpreter
/// (the same long install path for every process of a pyenv or venv Python) goes last, by
/// its file name: `etl.py --day 3 (python3.11)`.
pub fn telling(command: &str) -> String {
    let Some((program, rest)) = command.split_once(' ') else {
        return command.to_owned();
    };
    let name = program.rsplit('/').next().unwrap_or(program);
    if name.starts_with("python") || name.starts_with("pypy") {
        format!("{} ({name})", rest.trim_start())
    } else {
        command.to_owned()
    }
}

/// Draws the picker: search line, the processes (busiest first), its keys.
pub fn draw(frame: &mut Frame, picker: &Picker) {
    let theme = Theme::from_env();
    let area = frame.area();
    if area.width == 0 || area.height < 4 {
        return;
    }
    let [title, search, list, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Line::styled(
            "hptop: pick a Python process to inspect (busiest first)",
            theme.title,
        )),
        title,
    );
    frame.render_widget(
        Paragraph::new(format!("search: {}▏", picker.filter)),
        search,
    );
    let visible = picker.visible();
    let rows = visible.iter().map(|r| {
        Row::new([
            r.pid.to_string(),
            fmt::truncate(&r.user, 10),
            r.python_version.clone(),
            format!("{:.1}", r.cpu_percent),
            fmt::bytes(r.rss_bytes),
            telling(&r.command),
        ])
    });
    let empty = if !picker.loaded {
        "looking for Python processes…"
    } else if visible.is_empty() && picker.filter.is_empty() {
        "no Python processes found (start one, or run hptop -- python3 script.py)"
    } else if visible.is_empty() {
        "no process matches the search"
    } else {
        ""
    };
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(["PID", "USER", "PYTHON", "CPU%", "RSS", "COMMAND"]).style(theme.title))
    .row_highlight_style(theme.selected)
    .block(Block::default().borders(Borders::TOP).title(empty));
    let mut state = TableState::default();
    state.select(
        picker
            .current()
            .and_then(|pid| visible.iter().position(|r| r.pid == pid)),
    );
    frame.render_stateful_widget(table, list, &mut state);
    frame.render_widget(
        Paragraph::new(Line::styled(
            "type to search · ↑ ↓ choose · Enter attach · Esc clear / quit",
            theme.dim,
        )),
        help,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;

    fn row(pid: u32, cpu: f64, command: &str) -> PsRow {
        PsRow {
            pid,
            ppid: 1,
            user: "etl".into(),
            python_version: "3.12".into(),
            cpu_percent: cpu,
            rss_bytes: 50 << 20,
            command: command.into(),
        }
    }

    fn screen(picker: &Picker) -> String {
        let mut terminal = Terminal::new(TestBackend::new(100, 12)).unwrap();
        terminal.draw(|f| draw(f, picker)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_command_shows_the_script_before_the_interpreter() {
        assert_eq!(
            super::telling("/root/.pyenv/versions/3.11.7/bin/python3.11 etl.py --day 3"),
            "etl.py --day 3 (python3.11)"
        );
        assert_eq!(super::telling("gunicorn app:wsgi"), "gunicorn app:wsgi");
        assert_eq!(super::telling("/usr/bin/python3"), "/usr/bin/python3");
    }

    #[test]
    fn any_size_renders_without_panic() {
        let mut picker = Picker::default();
        picker.set_rows(vec![row(1, 1.0, "python3 a.py")]);
        for width in (0..=60).step_by(7) {
            for height in 0..=8 {
                let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
                terminal.draw(|f| draw(f, &picker)).unwrap();
            }
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn lists_busiest_first_searches_and_attaches_the_choice() {
        let mut picker = Picker::default();
        assert!(screen(&picker).contains("looking for Python processes"));
        picker.set_rows(vec![
            row(300, 5.0, "python3 idle.py"),
            row(200, 180.0, "python3 etl.py --day 2026-11-21"),
            row(100, 40.0, "celery worker -A jobs"),
        ]);
        let text = screen(&picker);
        let at = |needle: &str| text.find(needle).unwrap();
        assert!(
            at("etl.py") < at("celery") && at("celery") < at("idle.py"),
            "{text}"
        );
        assert_eq!(picker.current(), Some(200));
        assert_eq!(picker.key(key(KeyCode::Down)), Picked::Nothing);
        assert_eq!(picker.key(key(KeyCode::Enter)), Picked::Pid(100));
        // Typing searches; the selection falls back to the first match.
        for c in "idle".chars() {
            picker.key(key(KeyCode::Char(c)));
        }
        let text = screen(&picker);
        assert!(
            text.contains("search: idle") && !text.contains("etl.py"),
            "{text}"
        );
        assert_eq!(picker.key(key(KeyCode::Enter)), Picked::Pid(300));
        for c in "zzz".chars() {
            picker.key(key(KeyCode::Char(c)));
        }
        assert!(screen(&picker).contains("no process matches"));
        assert_eq!(picker.key(key(KeyCode::Enter)), Picked::Nothing);
        // Esc clears the search first, then leaves.
        assert_eq!(picker.key(key(KeyCode::Esc)), Picked::Nothing);
        assert!(picker.filter.is_empty());
        assert_eq!(picker.key(key(KeyCode::Esc)), Picked::Quit);
    }
}
