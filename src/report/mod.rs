//! Snapshot -> text or JSON. Reads only `model::snapshot` and `fmt`.

pub mod dump;
pub mod json;
pub mod ps;
pub mod text;

/// Output format of `report`, `dump` and `ps`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Text,
    /// Machine-readable JSON.
    Json,
}

/// What a report covers besides the snapshot: when and how it was taken.
#[derive(Debug, Clone, Default)]
pub struct ReportHeader {
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// Requested sampling rate.
    pub rate_hz: f64,
    /// hptop's own CPU time (user + system) while reporting, in seconds.
    pub hptop_cpu_s: f64,
    /// Functions were counted with idle threads included.
    pub include_idle: bool,
    /// What function shares count.
    pub mode: crate::model::snapshot::Mode,
}
