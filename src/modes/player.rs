//! `hptop replay`: plays a recording into the live view's model. The view covers the ticks
//! from the range's start (or the recording's) to the cursor; moving the cursor back or
//! changing the range rebuilds the figures from the file.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEventKind};

use crate::collect::tick::GilState;
use crate::collect::SamplerEvent;
use crate::error::HptopError;
use crate::record::codec::Recorded;
use crate::record::{RecordingHeader, RecordingReader};

/// Playback speeds (recording seconds per second).
const SPEEDS: [u32; 6] = [1, 2, 5, 10, 30, 60];
/// Most ticks fed per call, so a long jump never freezes the screen (it catches up).
const FEED_PER_CALL: usize = 20_000;
/// A peak's range: this much either side of its second.
const PEAK_SPAN: Duration = Duration::from_secs(5);

/// The second with the most of each figure, found by a pass over the whole file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peaks {
    cpu: Option<Duration>,
    rss: Option<Duration>,
    gil_wait: Option<Duration>,
    faults: Option<Duration>,
}

/// What the player asks of the view.
pub enum Step {
    /// Nothing new.
    Idle,
    /// These events, in order.
    Feed(Vec<SamplerEvent>),
    /// Forget every figure, then these events.
    Rebuild(Vec<SamplerEvent>),
}

/// A recording being played.
pub struct Player {
    path: PathBuf,
    /// The file's header.
    pub header: RecordingHeader,
    reader: RecordingReader,
    pending: VecDeque<Recorded>,
    known: HashSet<u32>,
    start: Duration,
    end: Duration,
    cursor: Duration,
    range: (Option<Duration>, Option<Duration>),
    playing: bool,
    speed: usize,
    last: Instant,
    rebuild: bool,
    peaks: Arc<Mutex<Option<Peaks>>>,
    /// A note for the status line (a key's effect).
    note: Option<String>,
    /// First column and number of cells of the axis on the status line, as last drawn.
    axis_at: Option<(usize, usize)>,
    /// Where a mouse drag on the axis began.
    dragging: Option<Duration>,
}

impl Player {
    /// Opens a recording, showing all of it.
    ///
    /// # Errors
    /// Unreadable, foreign, newer or empty file.
    pub fn open(path: &Path) -> Result<Self, HptopError> {
        let (covered, damage) = RecordingReader::open(path)?.span();
        let Some((start, end)) = covered else {
            return Err(HptopError::Usage(format!(
                "{} holds no sample{}",
                path.display(),
                damage.map_or_else(String::new, |d| format!(" (damaged {d})"))
            )));
        };
        let peaks = Arc::new(Mutex::new(None));
        let (found, file) = (Arc::clone(&peaks), path.to_path_buf());
        let _ = std::thread::Builder::new()
            .name("hptop-peaks".into())
            .spawn(move || {
                let result = find_peaks(&file);
                *found.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
            });
        let reader = RecordingReader::open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            header: reader.header.clone(),
            reader,
            pending: VecDeque::new(),
            known: HashSet::new(),
            start,
            end,
            cursor: end,
            range: (None, None),
            playing: false,
            speed: 0,
            last: Instant::now(),
            rebuild: false,
            peaks,
            note: None,
            axis_at: None,
            dragging: None,
        })
    }

    fn view_start(&self) -> Duration {
        self.range.0.unwrap_or(self.start)
    }

    fn view_end(&self) -> Duration {
        self.range.1.map_or(self.cursor, |e| e.min(self.cursor))
    }

    /// Moves the cursor; backwards (or before the range) the figures are rebuilt.
    fn seek(&mut self, to: Duration) {
        let to = to.clamp(self.start, self.end);
        if to < self.cursor {
            self.rebuild = true;
        }
        self.cursor = to;
    }

    /// Plays (true) or pauses. Playing from the end starts over from the range's start.
    pub fn set_playing(&mut self, playing: bool) {
        if playing && self.cursor >= self.range.1.unwrap_or(self.end) {
            self.seek(self.view_start());
        }
        self.playing = playing;
        self.last = Instant::now();
    }

    /// Takes the replay's own keys; whether it took this one.
    pub fn key(&mut self, key: KeyEvent) -> bool {
        let big = key.modifiers.contains(KeyModifiers::SHIFT);
        let step = Duration::from_secs(if big { 60 } else { 10 });
        self.note = None;
        match key.code {
            KeyCode::Left => self.seek(self.cursor.saturating_sub(step)),
            KeyCode::Right => self.seek(self.cursor + step),
            KeyCode::Char('[') => {
                self.range.0 = Some(self.cursor);
                self.rebuild = true;
            }
            KeyCode::Char(']') => {
                self.range.1 = Some(self.cursor);
                self.rebuild = true;
            }
            KeyCode::Char('x') => {
                self.range = (None, None);
                self.rebuild = true;
            }
            KeyCode::Char('+' | '=') => self.speed = (self.speed + 1).min(SPEEDS.len() - 1),
            KeyCode::Char('-') => self.speed = self.speed.saturating_sub(1),
            KeyCode::Char(c @ '1'..='4') => self.jump_to_peak(c),
            _ => return false,
        }
        true
    }

    fn jump_to_peak(&mut self, which: char) {
        let peaks = *self.peaks.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(peaks) = peaks else {
            self.note = Some("still looking for the peaks".into());
            return;
        };
        let (name, at) = match which {
            '1' => ("CPU", peaks.cpu),
            '2' => ("RSS", peaks.rss),
            '3' => ("GIL wait", peaks.gil_wait),
            _ => ("page faults", peaks.faults),
        };
        let Some(at) = at else {
            self.note = Some(format!("no {name} in the recording"));
            return;
        };
        self.range = (
            Some(at.saturating_sub(PEAK_SPAN)),
            Some(at + PEAK_SPAN + Duration::from_secs(1)),
        );
        self.playing = false;
        self.cursor = self.range.1.unwrap_or(self.end).min(self.end);
        self.rebuild = true;
        self.note = Some(format!("{name} peak at {}", clock(at)));
    }

    /// Advances playback and returns what the view must ingest.
    ///
    /// # Errors
    /// The file can no longer be opened (to rebuild the view).
    pub fn step(&mut self) -> Result<Step, HptopError> {
        if self.playing {
            let elapsed = self.last.elapsed();
            self.last = Instant::now();
            let limit = self.range.1.unwrap_or(self.end).min(self.end);
            self.cursor = (self.cursor + elapsed * SPEEDS[self.speed]).min(limit);
            if self.cursor >= limit {
                self.playing = false;
            }
        }
        let rebuild = std::mem::take(&mut self.rebuild);
        if rebuild {
            self.reader = RecordingReader::open(&self.path)?;
            self.pending.clear();
            self.known.clear();
        }
        let events = self.feed();
        Ok(match (rebuild, events.is_empty()) {
            (true, _) => Step::Rebuild(events),
            (false, true) => Step::Idle,
            (false, false) => Step::Feed(events),
        })
    }

    /// Events up to the view's end (at most `FEED_PER_CALL` ticks).
    fn feed(&mut self) -> Vec<SamplerEvent> {
        let (from, to) = (self.view_start(), self.view_end());
        let mut out = Vec::new();
        let mut ticks = Vec::new();
        let mut fed = 0;
        while fed < FEED_PER_CALL {
            if self.pending.is_empty() {
                let Some(segment) = self.reader.next_segment() else {
                    break;
                };
                if segment.last_at < from {
                    continue;
                }
                self.pending.extend(self.reader.read(&segment));
                continue;
            }
            let Some(front) = self.pending.front() else {
                break;
            };
            if let Recorded::Tick(t) = front {
                if t.at > to {
                    break;
                }
            }
            match self.pending.pop_front() {
                Some(Recorded::Tick(t)) if t.at >= from => {
                    fed += 1;
                    ticks.push(t);
                }
                Some(Recorded::Attached(info)) => {
                    self.known.insert(info.pid);
                    flush(&mut out, &mut ticks);
                    out.push(SamplerEvent::Attached(info));
                }
                Some(Recorded::Known(info)) if self.known.insert(info.pid) => {
                    flush(&mut out, &mut ticks);
                    out.push(SamplerEvent::Attached(info));
                }
                Some(Recorded::Exited(pid)) => {
                    flush(&mut out, &mut ticks);
                    out.push(SamplerEvent::Exited(pid));
                }
                _ => {}
            }
        }
        flush(&mut out, &mut ticks);
        out
    }

    /// The status line: where the cursor is on the recording, the range, speed and keys.
    pub fn bar(&mut self, width: usize) -> String {
        let state = if self.playing { "▶" } else { "⏸" };
        let range = match self.range {
            (None, None) => String::new(),
            (a, b) => format!(
                " range {}-{}",
                clock(a.unwrap_or(self.start)),
                clock(b.unwrap_or(self.end))
            ),
        };
        let head = format!(
            "REPLAY {state} {}x {}/{}{range}",
            SPEEDS[self.speed],
            clock(self.cursor),
            clock(self.end)
        );
        let damage = self
            .reader
            .damage
            .as_ref()
            .map(|d| format!("DAMAGED {d}; "));
        let keys = damage.or_else(|| self.note.clone()).unwrap_or_else(|| {
            if width >= 120 {
                "←→ seek [ ] range (or drag) x clear 1-4 peaks(cpu,rss,gil,flt) +- speed".into()
            } else {
                "←→ [ ] x 1-4 +-".into()
            }
        });
        let axis_width = width.saturating_sub(head.chars().count() + keys.chars().count() + 3);
        let axis = self.axis(axis_width.clamp(0, 60));
        // Where the axis's cells are on the line, for a mouse drag.
        let cells = axis.chars().count().saturating_sub(2);
        self.axis_at = (cells > 1).then_some((head.chars().count() + 2, cells));
        format!("{head} {axis} {keys}")
    }

    /// A mouse event on the status line's axis: press and drag select a range (the view
    /// follows); whether it was the replay's.
    pub fn mouse(&mut self, kind: MouseEventKind, column: u16, row: u16, height: u16) -> bool {
        let Some((first, cells)) = self.axis_at else {
            return false;
        };
        let column = usize::from(column);
        if row + 1 != height || column < first || column >= first + cells {
            return matches!(kind, MouseEventKind::Drag(MouseButton::Left))
                && self.dragging.is_some();
        }
        let span = self.end.saturating_sub(self.start).as_secs_f64();
        let at = self.start
            + Duration::from_secs_f64(span * (column - first) as f64 / (cells - 1) as f64);
        match kind {
            MouseEventKind::Down(MouseButton::Left) => {
                self.dragging = Some(at);
                self.playing = false;
                self.seek(at);
            }
            MouseEventKind::Drag(MouseButton::Left) | MouseEventKind::Up(MouseButton::Left) => {
                let Some(from) = self.dragging else {
                    return false;
                };
                let (a, b) = if at < from { (at, from) } else { (from, at) };
                if b > a {
                    self.range = (Some(a), Some(b));
                    self.cursor = b;
                    self.rebuild = true;
                }
                if matches!(kind, MouseEventKind::Up(_)) {
                    self.dragging = None;
                }
            }
            _ => return false,
        }
        true
    }

    /// `[···===^···]`: the recording, the range (=) and the cursor (^).
    fn axis(&self, width: usize) -> String {
        if width < 5 {
            return String::new();
        }
        let cells = width - 2;
        let span = self.end.saturating_sub(self.start).as_secs_f64().max(1e-9);
        let cell = |t: Duration| {
            ((t.saturating_sub(self.start).as_secs_f64() / span) * (cells - 1) as f64).round()
                as usize
        };
        let (a, b) = (cell(self.view_start()), cell(self.view_end()));
        let c = cell(self.cursor);
        let body: String = (0..cells)
            .map(|i| match i {
                _ if i == c => '^',
                _ if (a..=b).contains(&i) => '=',
                _ => '·',
            })
            .collect();
        format!("[{body}]")
    }
}

fn flush(out: &mut Vec<SamplerEvent>, ticks: &mut Vec<crate::collect::tick::Tick>) {
    if !ticks.is_empty() {
        out.push(SamplerEvent::Ticks(std::mem::take(ticks)));
    }
}

/// `h:mm:ss` of a time since the recording's start.
fn clock(t: Duration) -> String {
    let s = t.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One pass over the file: per second, the on-CPU time, the largest RSS, the samples waiting
/// for the GIL and the page faults of all threads; the second with the most of each.
fn find_peaks(path: &Path) -> Peaks {
    use std::collections::HashMap;
    #[derive(Default, Clone, Copy)]
    struct Second {
        cpu_ns: u64,
        rss: u64,
        gil_wait: u64,
        faults: u64,
    }
    let Ok(mut reader) = RecordingReader::open(path) else {
        return Peaks::default();
    };
    let mut seconds: Vec<Second> = Vec::new();
    let mut last: HashMap<(u32, u32), (u64, u64)> = HashMap::new();
    while let Some(segment) = reader.next_segment() {
        for event in reader.read(&segment) {
            let Recorded::Tick(t) = event else { continue };
            let i = t.at.as_secs() as usize;
            if i >= seconds.len() {
                // A bound: a damaged time never makes this vector huge.
                if i > 40_000_000 {
                    continue;
                }
                seconds.resize(i + 1, Second::default());
            }
            let s = &mut seconds[i];
            if let Some(c) = t.process.counters {
                s.rss = s.rss.max(c.rss_bytes);
            }
            for th in &t.process.threads {
                s.gil_wait += u64::from(th.gil == GilState::Waiting);
                let Some(c) = th.counters else { continue };
                let now = (c.run_ns.unwrap_or(0), c.minor_faults + c.major_faults);
                if let Some(before) = last.insert((t.process.pid, th.tid), now) {
                    s.cpu_ns += now.0.saturating_sub(before.0);
                    s.faults += now.1.saturating_sub(before.1);
                }
            }
        }
    }
    let peak = |key: fn(&Second) -> u64| {
        seconds
            .iter()
            .enumerate()
            .filter(|(_, s)| key(s) > 0)
            .max_by_key(|(_, s)| key(s))
            .map(|(i, _)| Duration::from_secs(i as u64))
    };
    Peaks {
        cpu: peak(|s| s.cpu_ns),
        rss: peak(|s| s.rss),
        gil_wait: peak(|s| s.gil_wait),
        faults: peak(|s| s.faults),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::codec::tests::sample_events;
    use crate::record::RecordingWriter;

    fn player() -> Player {
        let dir = std::env::temp_dir().join(format!("hptop-player-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("p.hptop");
        let header = RecordingHeader {
            pid: 40,
            ..RecordingHeader::default()
        };
        let mut writer = RecordingWriter::create(&path, false, &header, None).expect("create");
        for event in sample_events(1000) {
            writer.push(&event);
        }
        let _ = writer.finish();
        Player::open(&path).expect("open")
    }

    #[test]
    fn a_drag_on_the_axis_selects_a_range_and_keys_move_the_cursor() {
        let mut p = player();
        let end = p.end;
        assert!(end > Duration::from_secs(9));
        let bar = p.bar(160);
        assert!(bar.contains("REPLAY ⏸ 1x"), "{bar}");
        let (first, cells) = p.axis_at.expect("an axis at 160 columns");
        // Press at a quarter of the axis, drag to three quarters, release.
        let col = |f: f64| (first as f64 + f * (cells - 1) as f64).round() as u16;
        assert!(p.mouse(MouseEventKind::Down(MouseButton::Left), col(0.25), 39, 40));
        assert!(p.mouse(MouseEventKind::Drag(MouseButton::Left), col(0.75), 39, 40));
        assert!(p.mouse(MouseEventKind::Up(MouseButton::Left), col(0.75), 39, 40));
        let (a, b) = (p.range.0.expect("start"), p.range.1.expect("end"));
        let quarter = end.as_secs_f64() / 4.0;
        assert!((a.as_secs_f64() - quarter).abs() < 0.5, "{a:?}");
        assert!((b.as_secs_f64() - 3.0 * quarter).abs() < 0.5, "{b:?}");
        // The view is rebuilt from the range's ticks only.
        let Ok(Step::Rebuild(events)) = p.step() else {
            panic!("no rebuild after a drag");
        };
        let ticks: Vec<Duration> = events
            .iter()
            .filter_map(|e| match e {
                SamplerEvent::Ticks(t) => Some(t.iter().map(|t| t.at)),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(ticks.iter().all(|&t| t >= a && t <= b) && !ticks.is_empty());
        // A click elsewhere is not the replay's; keys move the cursor.
        assert!(!p.mouse(MouseEventKind::Down(MouseButton::Left), 0, 5, 40));
        let before = p.cursor;
        assert!(p.key(KeyEvent::from(KeyCode::Left)));
        assert_eq!(
            p.cursor,
            before.saturating_sub(Duration::from_secs(10)).max(p.start)
        );
    }
}
