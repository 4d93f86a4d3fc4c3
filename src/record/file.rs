//! The recording file: its header, and segments written by a thread of their own (compress,
//! write, sync: the sampler never waits for the disk) and read back with every length checked.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::codec::{Decoder, Encoder, Recorded};
use super::{RecordError, FORMAT_VERSION, MAGIC, SEGMENT_MAGIC};
use crate::collect::SamplerEvent;
use crate::error::HptopError;
use crate::session::output::{open_output, Existing};

/// A segment is closed after this much time (what a crash can lose).
const SEGMENT_EVERY: Duration = Duration::from_secs(1);
/// ... or once its payload is this large.
const SEGMENT_MAX_RAW: usize = 16 << 20;
/// Largest payload a reader accepts, compressed and not.
const MAX_COMPRESSED: u32 = 32 << 20;
const MAX_RAW: u32 = 64 << 20;
/// Largest header a reader accepts.
const MAX_HEADER: u32 = 64 << 10;
/// Bytes before a segment's payload: magic, lengths, times, counts, checksum.
const SEGMENT_HEADER: usize = 40;
/// Segments waiting for the writer thread; more are dropped (and counted), never waited for.
const QUEUE: usize = 16;
/// Smallest `--max-size`.
pub const MIN_MAX_SIZE: u64 = 1 << 20;

/// What the file's header says about the recording.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RecordingHeader {
    /// hptop's version that wrote it.
    pub hptop_version: String,
    /// Wall-clock time of `at` = 0 (the sampler's start), RFC 3339.
    pub started_at: String,
    /// The same, in ns since the Unix epoch.
    pub started_unix_ns: u64,
    /// Requested sampling rate.
    pub rate_hz: f64,
    /// The target's pid.
    pub pid: u32,
    /// The target's command line.
    pub command: Vec<String>,
    /// Sampled with `--blocking`.
    pub blocking: bool,
    /// Sampled with `--subprocesses`.
    pub subprocesses: bool,
}

impl RecordingHeader {
    fn to_bytes(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(16 + json.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out
    }
}

/// How the writer is doing (shared with its thread).
#[derive(Debug, Clone, Default)]
pub struct WriterStatus {
    /// Segments in the file.
    pub segments: u64,
    /// Bytes in the file.
    pub bytes: u64,
    /// Ticks and thread-samples written.
    pub ticks: u64,
    /// Thread-samples written.
    pub thread_samples: u64,
    /// Segments not written because the disk was slower than the sampler.
    pub dropped_segments: u64,
    /// Segments written in all (some may since have been dropped by `--max-size`).
    pub written: u64,
    /// Times the oldest segments were dropped to stay within `--max-size`.
    pub compactions: u64,
    /// `at` of the oldest and newest tick in the file.
    pub span: Option<(Duration, Duration)>,
    /// Why recording stopped early (the file is readable up to there).
    pub error: Option<String>,
}

/// One encoded segment on its way to the writer thread.
struct RawSegment {
    payload: Vec<u8>,
    first_at: u64,
    last_at: u64,
    ticks: u32,
    thread_samples: u32,
}

/// Records sampler events to a file: encoding here, compression and I/O on its own thread.
pub struct RecordingWriter {
    encoder: Encoder,
    tx: Option<SyncSender<RawSegment>>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<WriterStatus>>,
    last_flush: Instant,
}

impl RecordingWriter {
    /// Creates `path` (as `-o` files are: no link followed, no file replaced unless `force`)
    /// and writes the header.
    ///
    /// # Errors
    /// The file cannot be created or written, or `max_size` is below [`MIN_MAX_SIZE`].
    pub fn create(
        path: &Path,
        force: bool,
        header: &RecordingHeader,
        max_size: Option<u64>,
    ) -> Result<Self, HptopError> {
        if let Some(max) = max_size.filter(|&m| m < MIN_MAX_SIZE) {
            return Err(HptopError::Usage(format!(
                "--max-size {max} is too small: at least 1M"
            )));
        }
        let existing = if force {
            Existing::Replace
        } else {
            Existing::Refuse
        };
        // A recording is written in place (segments, a header rewritten, --max-size): a device
        // or a pipe cannot hold one.
        if path
            .symlink_metadata()
            .is_ok_and(|m| !m.is_file() && !m.is_dir() && !m.file_type().is_symlink())
        {
            return Err(HptopError::OutputRefused {
                path: path.display().to_string(),
                why: "a recording must be a regular file (it is written in place), and this is a device or a pipe".into(),
                fix: "give a file name, e.g. job.hptop; to sample without keeping anything, use `hptop report`".into(),
            });
        }
        let file = open_output(path, existing)?;
        let header_bytes = header.to_bytes();
        file.write_all_at(&header_bytes, 0)
            .and_then(|()| file.sync_data())
            .map_err(|source| HptopError::Output {
                path: path.display().to_string(),
                source,
            })?;
        let status = Arc::new(Mutex::new(WriterStatus {
            bytes: header_bytes.len() as u64,
            ..WriterStatus::default()
        }));
        let (tx, rx) = sync_channel(QUEUE);
        let out = SegmentFile {
            file,
            path: path.to_path_buf(),
            header: header_bytes,
            segments: VecDeque::new(),
            max_size,
        };
        let thread_status = Arc::clone(&status);
        let thread = std::thread::Builder::new()
            .name("hptop-record".into())
            .spawn(move || out.run(&rx, &thread_status))
            .map_err(|source| HptopError::Output {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Self {
            encoder: Encoder::default(),
            tx: Some(tx),
            thread: Some(thread),
            status,
            last_flush: Instant::now(),
        })
    }

    /// Records one event; about once a second a segment goes to the writer thread.
    pub fn push(&mut self, event: &SamplerEvent) {
        if self.tx.is_none() {
            return;
        }
        self.encoder.push(event);
        if !self.encoder.is_empty()
            && (self.last_flush.elapsed() >= SEGMENT_EVERY || self.encoder.len() > SEGMENT_MAX_RAW)
        {
            self.flush();
        }
    }

    /// How the recording is doing.
    pub fn status(&self) -> WriterStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn flush(&mut self) {
        self.send(false);
    }

    /// Ends the segment and hands it to the writer thread: waiting for room when `wait`
    /// (the last one), else dropping it (and counting) if the writer is behind.
    fn send(&mut self, wait: bool) {
        self.last_flush = Instant::now();
        if self.encoder.is_empty() {
            return;
        }
        let (first_at, last_at) = self.encoder.span_ns.unwrap_or_default();
        let ticks = self.encoder.ticks as u32;
        let thread_samples = self.encoder.thread_samples as u32;
        let payload = self.encoder.finish();
        let Some(tx) = &self.tx else { return };
        let raw = RawSegment {
            payload,
            first_at,
            last_at,
            ticks,
            thread_samples,
        };
        if wait {
            if tx.send(raw).is_err() {
                self.tx = None;
            }
            return;
        }
        match tx.try_send(raw) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .dropped_segments += 1;
            }
            // The writer stopped (its error is in the status): stop encoding too.
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Writes what is left and waits for the writer thread; what was kept.
    pub fn finish(mut self) -> WriterStatus {
        self.send(true);
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.status()
    }
}

/// The writer thread's side: the open file and where its segments are.
struct SegmentFile {
    file: File,
    path: PathBuf,
    header: Vec<u8>,
    /// (offset, length, first at, last at, ticks, thread-samples) of each segment.
    segments: VecDeque<SegmentSpot>,
    max_size: Option<u64>,
}

#[derive(Clone, Copy)]
struct SegmentSpot {
    offset: u64,
    len: u64,
    first_at: u64,
    last_at: u64,
    ticks: u64,
    thread_samples: u64,
}

impl SegmentFile {
    fn end(&self) -> u64 {
        self.segments
            .back()
            .map_or(self.header.len() as u64, |s| s.offset + s.len)
    }

    fn run(mut self, rx: &Receiver<RawSegment>, status: &Mutex<WriterStatus>) {
        for raw in rx {
            let bytes = segment_bytes(&raw);
            let result = self.append(&bytes, &raw);
            let mut s = status.lock().unwrap_or_else(PoisonError::into_inner);
            match result {
                Ok(compacted) => {
                    s.written += 1;
                    s.compactions += u64::from(compacted);
                    s.segments = self.segments.len() as u64;
                    s.bytes = self.end();
                    s.ticks = self.segments.iter().map(|x| x.ticks).sum();
                    s.thread_samples = self.segments.iter().map(|x| x.thread_samples).sum();
                    s.span = self
                        .segments
                        .front()
                        .zip(self.segments.back())
                        .map(|(a, b)| {
                            (
                                Duration::from_nanos(a.first_at),
                                Duration::from_nanos(b.last_at),
                            )
                        });
                }
                Err(e) => {
                    // A half-written segment is cut off, so the file ends on a whole one.
                    let _ = self.file.set_len(self.end());
                    s.error = Some(write_error(&self.path, &e));
                    return;
                }
            }
        }
    }

    /// Appends one segment (first dropping the oldest ones past `max_size`); whether it
    /// had to drop some.
    fn append(&mut self, bytes: &[u8], raw: &RawSegment) -> std::io::Result<bool> {
        let len = bytes.len() as u64;
        let compacted = match self.max_size {
            Some(max) if self.end() + len > max => {
                self.compact(max, len)?;
                true
            }
            _ => false,
        };
        let offset = self.end();
        self.file.write_all_at(bytes, offset)?;
        self.file.sync_data()?;
        self.segments.push_back(SegmentSpot {
            offset,
            len,
            first_at: raw.first_at,
            last_at: raw.last_at,
            ticks: u64::from(raw.ticks),
            thread_samples: u64::from(raw.thread_samples),
        });
        Ok(compacted)
    }

    /// Rewrites the file with only its newest segments (within 3/4 of `max`, room for
    /// `incoming`) and puts it in place with one rename: a reader sees the old file or
    /// the new one, never half of one.
    fn compact(&mut self, max: u64, incoming: u64) -> std::io::Result<()> {
        let budget = (max / 4 * 3).saturating_sub(self.header.len() as u64 + incoming);
        let mut kept = 0;
        let mut first = self.segments.len();
        while first > 0 && kept + self.segments[first - 1].len <= budget {
            first -= 1;
            kept += self.segments[first].len;
        }
        let mut tmp_name = self.path.as_os_str().to_owned();
        tmp_name.push(".hptop-compact");
        let tmp = PathBuf::from(tmp_name);
        // A leftover of a crash: unlink does not follow a link.
        let _ = std::fs::remove_file(&tmp);
        let file = open_output(&tmp, Existing::Refuse).map_err(std::io::Error::other)?;
        file.write_all_at(&self.header, 0)?;
        let mut offset = self.header.len() as u64;
        let mut moved = VecDeque::new();
        let mut buf = Vec::new();
        for spot in self.segments.iter().skip(first) {
            buf.resize(spot.len as usize, 0);
            self.file.read_exact_at(&mut buf, spot.offset)?;
            file.write_all_at(&buf, offset)?;
            moved.push_back(SegmentSpot { offset, ..*spot });
            offset += spot.len;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        self.file = file;
        self.segments = moved;
        Ok(())
    }
}

fn write_error(path: &Path, e: &std::io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(nix::libc::ENOSPC) => "the disk is full".to_string(),
        Some(nix::libc::EDQUOT) => "the disk quota is exceeded".to_string(),
        _ => e.to_string(),
    };
    format!(
        "recording to {} stopped: {why}; the file holds everything before and stays readable",
        path.display()
    )
}

/// A segment as stored: header, then the zstd-compressed payload.
fn segment_bytes(raw: &RawSegment) -> Vec<u8> {
    let compressed = ruzstd::encoding::compress_to_vec(
        raw.payload.as_slice(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let mut out = Vec::with_capacity(SEGMENT_HEADER + compressed.len());
    out.extend_from_slice(SEGMENT_MAGIC);
    out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
    out.extend_from_slice(&(raw.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&raw.first_at.to_le_bytes());
    out.extend_from_slice(&raw.last_at.to_le_bytes());
    out.extend_from_slice(&raw.ticks.to_le_bytes());
    out.extend_from_slice(&raw.thread_samples.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out[4..36]);
    crc.update(&compressed);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&compressed);
    out
}

/// A segment's header, as read (its payload is read by [`RecordingReader::read`]).
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// Where it starts in the file.
    pub offset: u64,
    /// `at` of its first and last tick.
    pub first_at: Duration,
    /// `at` of its last tick.
    pub last_at: Duration,
    /// Ticks in it.
    pub ticks: u32,
    /// Thread-samples in it.
    pub thread_samples: u32,
    compressed: u32,
    raw: u32,
    crc: u32,
    header: [u8; SEGMENT_HEADER],
}

/// Reads a recording: the header at once, then segment by segment; damage ends the reading
/// where it is found (what came before is kept) and is said in `damage`.
pub struct RecordingReader {
    file: File,
    len: u64,
    next: u64,
    /// Where the first segment starts.
    first_segment: u64,
    /// The header.
    pub header: RecordingHeader,
    /// The format version the file was written in.
    pub version: u16,
    /// Where and how the file is damaged, once reading met it.
    pub damage: Option<String>,
}

impl RecordingReader {
    /// Opens `path` and reads its header.
    ///
    /// # Errors
    /// Not readable, not a recording, a newer format, or a damaged header.
    pub fn open(path: &Path) -> Result<Self, HptopError> {
        let shown = path.display().to_string();
        let bad =
            |why: String| HptopError::Usage(format!("cannot read the recording {shown}: {why}"));
        let mut file = File::open(path).map_err(|e| bad(e.to_string()))?;
        let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
        if meta.is_dir() {
            return Err(bad("it is a directory; give a recording file in it".into()));
        }
        let len = meta.len();
        let mut fixed = [0u8; 16];
        file.read_exact(&mut fixed)
            .map_err(|_| bad("it is not an hptop recording (too short)".into()))?;
        if &fixed[..8] != MAGIC {
            return Err(bad("it is not an hptop recording".into()));
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if version > FORMAT_VERSION {
            return Err(bad(RecordError::Newer(version).to_string()));
        }
        let json_len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]);
        if json_len > MAX_HEADER || u64::from(json_len) + 16 > len {
            return Err(bad("its header is damaged".into()));
        }
        let mut json = vec![0u8; json_len as usize];
        file.read_exact(&mut json)
            .map_err(|_| bad("its header is damaged".into()))?;
        let header: RecordingHeader =
            serde_json::from_slice(&json).map_err(|_| bad("its header is damaged".into()))?;
        Ok(Self {
            file,
            len,
            next: 16 + u64::from(json_len),
            first_segment: 16 + u64::from(json_len),
            header,
            version,
            damage: None,
        })
    }

    /// Recording time of the first and last tick the readable segments hold, and the damage
    /// met, if any. Reads segment headers, and the last segment whole: a writer that stopped
    /// mid-write leaves a last segment whose header promises more than its payload holds.
    /// Where the reading is, and what it found, are left as they were.
    pub fn span(&mut self) -> (Option<(Duration, Duration)>, Option<String>) {
        let (next, damage) = (self.next, self.damage.take());
        self.next = self.first_segment;
        let (mut span, mut before_last): (Option<(Duration, Duration)>, _) = (None, None);
        let mut last = None;
        while let Some(s) = self.next_segment() {
            if s.ticks > 0 {
                before_last = span;
                span = Some(span.map_or((s.first_at, s.last_at), |(a, _)| (a, s.last_at)));
                last = Some(s);
            }
        }
        if let Some(s) = last {
            if let Err(why) = self.payload(&s) {
                self.damaged::<()>(s.offset, why);
                span = before_last;
            }
        }
        let found = std::mem::replace(&mut self.damage, damage);
        self.next = next;
        (span, found)
    }

    /// "it holds 0.1 s to 4.0 s" of the readable segments, for a window that found nothing.
    pub fn holds(&mut self) -> String {
        match self.span().0 {
            Some((a, b)) => format!(
                "it holds {:.1} s to {:.1} s of recording time",
                a.as_secs_f64(),
                b.as_secs_f64()
            ),
            None => "it holds no sample".into(),
        }
    }

    /// The next segment's header, or None at the end of the file or at damage.
    pub fn next_segment(&mut self) -> Option<Segment> {
        if self.damage.is_some() || self.next >= self.len {
            return None;
        }
        let offset = self.next;
        let mut h = [0u8; SEGMENT_HEADER];
        if self.file.read_exact_at(&mut h, offset).is_err() {
            return self.damaged(
                offset,
                "a segment header is cut short (the writer stopped mid-write)",
            );
        }
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let (compressed, raw) = (u32_at(4), u32_at(8));
        if &h[..4] != SEGMENT_MAGIC || compressed > MAX_COMPRESSED || raw > MAX_RAW {
            return self.damaged(offset, "a segment header is not valid");
        }
        let end = offset + SEGMENT_HEADER as u64 + u64::from(compressed);
        if end > self.len {
            return self.damaged(
                offset,
                "the last segment is cut short (the writer stopped mid-write)",
            );
        }
        self.next = end;
        Some(Segment {
            offset,
            first_at: Duration::from_nanos(u64_at(12)),
            last_at: Duration::from_nanos(u64_at(20)),
            ticks: u32_at(28),
            thread_samples: u32_at(32),
            compressed,
            raw,
            crc: u32_at(36),
            header: h,
        })
    }

    /// A segment's events; on damage, those before it (and reading stops there).
    pub fn read(&mut self, segment: &Segment) -> Vec<Recorded> {
        match self.payload(segment) {
            Ok(payload) => {
                let (events, error) = Decoder::decode(&payload);
                if let Some(e) = error {
                    self.damaged::<()>(segment.offset, &e.to_string());
                }
                events
            }
            Err(why) => {
                self.damaged::<()>(segment.offset, why);
                Vec::new()
            }
        }
    }

    fn payload(&self, s: &Segment) -> Result<Vec<u8>, &'static str> {
        let mut compressed = vec![0u8; s.compressed as usize];
        self.file
            .read_exact_at(&mut compressed, s.offset + SEGMENT_HEADER as u64)
            .map_err(|_| "a segment cannot be read")?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&s.header[4..36]);
        crc.update(&compressed);
        if crc.finalize() != s.crc {
            return Err("a segment's checksum does not match");
        }
        let decoder = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
            compressed.as_slice(),
            u64::from(MAX_RAW),
        )
        .map_err(|_| "a segment does not decompress")?;
        let mut payload = Vec::with_capacity(s.raw as usize);
        decoder
            .take(u64::from(s.raw) + 1)
            .read_to_end(&mut payload)
            .map_err(|_| "a segment does not decompress")?;
        if payload.len() != s.raw as usize {
            return Err("a segment's length does not match");
        }
        Ok(payload)
    }

    fn damaged<T>(&mut self, offset: u64, why: &str) -> Option<T> {
        if self.damage.is_none() {
            self.damage = Some(format!("at byte {offset}: {why}"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tick::Tick;
    use crate::record::codec::tests::sample_events;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hptop-rec-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        dir.join("r.hptop")
    }

    /// Writes the sample events as a recording of several segments; its bytes.
    fn recording(name: &str) -> (PathBuf, Vec<u8>) {
        let path = temp_path(name);
        let header = RecordingHeader {
            rate_hz: 100.0,
            pid: 40,
            ..RecordingHeader::default()
        };
        let mut writer = RecordingWriter::create(&path, false, &header, None).expect("create");
        for (i, event) in sample_events(300).iter().enumerate() {
            writer.push(event);
            if i % 3 == 2 {
                writer.flush();
            }
        }
        let status = writer.finish();
        assert_eq!(status.error, None);
        assert!(status.segments >= 3, "{status:?}");
        let bytes = std::fs::read(&path).expect("read back");
        (path, bytes)
    }

    /// Every event a file holds (and whether the reader met damage); never panics.
    fn read_all(path: &Path) -> Result<(usize, bool), String> {
        let mut reader = RecordingReader::open(path).map_err(|e| e.to_string())?;
        let mut n = 0;
        while let Some(segment) = reader.next_segment() {
            n += reader.read(&segment).len();
        }
        Ok((n, reader.damage.is_some()))
    }

    #[test]
    fn truncated_files_read_up_to_their_last_whole_segment() {
        let (path, bytes) = recording("truncate");
        let (whole, damaged) = read_all(&path).expect("whole file");
        assert!(!damaged);
        let header_len = 16 + u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let mut last = whole;
        // Cut at (nearly) every offset from the end back: never more events than before the
        // cut, and an error only for a cut inside the header.
        for cut in (0..bytes.len()).rev().step_by(3) {
            std::fs::write(&path, &bytes[..cut]).expect("write");
            match read_all(&path) {
                Ok((n, _)) => {
                    assert!(n <= last, "cut at {cut}: {n} > {last}");
                    last = n;
                }
                Err(e) => assert!(cut < header_len as usize, "cut at {cut}: {e}"),
            }
        }
        assert_eq!(last, 0);
    }

    /// The span a file holds ends with its last readable segment: a last segment whose
    /// payload is damaged does not stretch it (replay's time axis, "it holds ..." messages).
    #[test]
    fn the_span_ends_at_the_last_readable_segment() {
        let (path, mut bytes) = recording("span");
        let mut reader = RecordingReader::open(&path).expect("open");
        let (Some((first, last)), None) = reader.span() else {
            panic!("no span");
        };
        let mut segments = Vec::new();
        while let Some(s) = reader.next_segment() {
            segments.push(s);
        }
        assert_eq!(
            (first, last),
            (segments[0].first_at, segments.last().unwrap().last_at)
        );
        // One byte of the last segment's payload flipped: its header still claims its span.
        let end = bytes.len() - 1;
        bytes[end] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let (span, damage) = RecordingReader::open(&path).expect("open").span();
        let before_last = segments[segments.len() - 2].last_at;
        assert_eq!(span, Some((first, before_last)));
        assert!(damage.is_some());
        assert!(RecordingReader::open(&path)
            .expect("open")
            .holds()
            .contains("of recording time"));
    }

    #[test]
    fn flipped_bytes_and_random_garbage_never_panic() {
        let (path, bytes) = recording("flip");
        let (whole, _) = read_all(&path).expect("whole file");
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..1500 {
            let mut damaged = bytes.clone();
            let flips = 1 + next() % 4;
            for _ in 0..flips {
                let at = (next() % damaged.len() as u64) as usize;
                damaged[at] ^= 1 << (next() % 8);
            }
            if round % 10 == 0 {
                // Garbage appended after the last segment, or a random tail.
                let at = (next() % damaged.len() as u64) as usize;
                damaged.truncate(at.max(24));
                damaged.extend((0..next() % 4096).map(|_| next() as u8));
            }
            std::fs::write(&path, &damaged).expect("write");
            if let Ok((n, _)) = read_all(&path) {
                assert!(n <= whole + 1, "round {round}: {n} events");
            }
        }
    }

    #[test]
    fn foreign_and_newer_files_are_refused_with_a_reason() {
        let (path, mut bytes) = recording("newer");
        bytes[8..10].copy_from_slice(&9u16.to_le_bytes());
        std::fs::write(&path, &bytes).expect("write");
        let newer = RecordingReader::open(&path).err().map(|e| e.to_string());
        assert!(
            newer.as_deref().is_some_and(|e| e.contains("newer hptop")),
            "{newer:?}"
        );
        std::fs::write(&path, b"#!/bin/sh\necho not a recording\n").expect("write");
        let foreign = RecordingReader::open(&path).err().map(|e| e.to_string());
        assert!(
            foreign
                .as_deref()
                .is_some_and(|e| e.contains("not an hptop recording")),
            "{foreign:?}"
        );
    }

    #[test]
    fn max_size_keeps_the_newest_segments_within_it() {
        let path = temp_path("max");
        let header = RecordingHeader::default();
        let max = MIN_MAX_SIZE;
        let mut writer = RecordingWriter::create(&path, false, &header, Some(max)).expect("create");
        let events = sample_events(400);
        // Many segments of incompressible-ish data: the file must wrap several times.
        let mut pushed = 0;
        for round in 0..400u64 {
            for event in &events {
                if let SamplerEvent::Ticks(ticks) = event {
                    let shifted: Vec<_> = ticks
                        .iter()
                        .map(|t| Tick {
                            at: t.at + Duration::from_secs(round * 5),
                            ..t.clone()
                        })
                        .collect();
                    writer.push(&SamplerEvent::Ticks(shifted));
                } else {
                    writer.push(event);
                }
            }
            writer.flush();
            pushed += 1;
            // Let the writer thread keep up (a full queue drops segments, by design).
            let start = std::time::Instant::now();
            while writer.status().written + writer.status().dropped_segments < pushed
                && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let status = writer.finish();
        assert_eq!(status.error, None);
        assert!(status.compactions > 0, "{status:?} after {pushed} segments");
        let len = std::fs::metadata(&path).expect("metadata").len();
        assert!(len <= max, "{len} > {max}");
        let mut reader = RecordingReader::open(&path).expect("open");
        let first = reader.next_segment().expect("a segment");
        // The oldest seconds are gone; the newest are there.
        assert!(first.first_at > Duration::ZERO);
        let mut last = first;
        while let Some(s) = reader.next_segment() {
            last = s;
        }
        assert_eq!(reader.damage, None);
        assert!(last.last_at >= Duration::from_secs(399 * 5));
    }
}
