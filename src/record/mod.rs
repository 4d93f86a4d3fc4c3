//! Recordings: the sampler's events on disk, so any report or the TUI can be had again for
//! any window of a long job. The format is in docs/recording.md: a header, then
//! self-contained, checksummed, zstd-compressed segments of about a second each.

pub mod codec;
pub mod file;
pub mod window;
pub mod wire;

pub use file::{RecordingHeader, RecordingReader, RecordingWriter, Segment, WriterStatus};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"HPTOPREC";
/// Format written by this hptop; it reads this and every older one.
pub const FORMAT_VERSION: u16 = 3;
/// A segment's first bytes.
pub const SEGMENT_MAGIC: &[u8; 4] = b"HSEG";

/// What stops a recording from being read further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not what the format says (truncated, flipped, or not a recording).
    #[error("damaged: {0}")]
    Damaged(&'static str),
    /// Written by a newer hptop.
    #[error("recorded in format {0}, newer than this hptop reads (up to {FORMAT_VERSION}): use a newer hptop")]
    Newer(u16),
}
