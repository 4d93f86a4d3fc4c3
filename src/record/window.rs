//! `--from` / `--to`: a moment of a recording, as an offset from its start or a clock time.

use std::time::Duration;

use chrono::{DateTime, Local, NaiveTime, TimeZone as _};

use super::RecordingHeader;
use crate::error::HptopError;

/// A moment as the user wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeSpec {
    /// Since the recording's start (`90s`, `1m30s`, `1h`, `2.5`).
    Offset(Duration),
    /// A wall-clock instant (RFC 3339).
    Instant(DateTime<chrono::FixedOffset>),
    /// A local time of day (`HH:MM[:SS]`): its first occurrence at or after the start.
    TimeOfDay(NaiveTime),
}

impl TimeSpec {
    /// Parses one of the three forms.
    ///
    /// # Errors
    /// A usage error naming the forms.
    pub fn parse(text: &str) -> Result<Self, HptopError> {
        let t = text.trim();
        if let Ok(at) = DateTime::parse_from_rfc3339(t) {
            return Ok(Self::Instant(at));
        }
        for format in ["%H:%M:%S", "%H:%M"] {
            if let Ok(time) = NaiveTime::parse_from_str(t, format) {
                return Ok(Self::TimeOfDay(time));
            }
        }
        parse_offset(t).map(Self::Offset).ok_or_else(|| {
            HptopError::Usage(format!(
                "time \"{text}\" is not understood: give an offset from the recording's start \
                 (90s, 1m30s, 1h), a time of day (14:05 or 14:05:30, local), or RFC 3339 \
                 (2026-11-29T03:00:00Z)"
            ))
        })
    }

    /// The moment as `at` (time since the recording's start).
    pub fn resolve(&self, header: &RecordingHeader) -> Duration {
        let start_ns = i128::from(header.started_unix_ns);
        let since_start = |unix_ns: i128| {
            Duration::from_nanos(u64::try_from((unix_ns - start_ns).max(0)).unwrap_or(u64::MAX))
        };
        match self {
            Self::Offset(d) => *d,
            Self::Instant(at) => since_start(i128::from(at.timestamp_nanos_opt().unwrap_or(0))),
            Self::TimeOfDay(time) => {
                let start = Local.timestamp_nanos(header.started_unix_ns as i64);
                let mut day = start.date_naive();
                for _ in 0..2 {
                    if let Some(at) = Local.from_local_datetime(&day.and_time(*time)).earliest() {
                        if at >= start {
                            return since_start(i128::from(at.timestamp_nanos_opt().unwrap_or(0)));
                        }
                    }
                    day = day.succ_opt().unwrap_or(day);
                }
                Duration::ZERO
            }
        }
    }
}

/// `90s`, `1m30s`, `1h`, `1h2m3.5s`, or a plain number of seconds.
fn parse_offset(t: &str) -> Option<Duration> {
    if let Ok(s) = t.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
    }
    let mut total = 0.0;
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * unit;
        number.clear();
    }
    (number.is_empty() && total.is_finite() && !t.is_empty())
        .then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_clock_times_and_nonsense() {
        let s = |t: &str| TimeSpec::parse(t).ok();
        assert_eq!(s("90s"), Some(TimeSpec::Offset(Duration::from_secs(90))));
        assert_eq!(s("1m30s"), Some(TimeSpec::Offset(Duration::from_secs(90))));
        assert_eq!(s("1h"), Some(TimeSpec::Offset(Duration::from_hours(1))));
        assert_eq!(
            s("2.5"),
            Some(TimeSpec::Offset(Duration::from_millis(2500)))
        );
        assert!(matches!(s("14:05"), Some(TimeSpec::TimeOfDay(_))));
        assert!(matches!(
            s("2026-11-29T03:00:00Z"),
            Some(TimeSpec::Instant(_))
        ));
        for bad in ["", "abc", "5x", "1h5", "-3"] {
            assert!(TimeSpec::parse(bad).is_err(), "{bad}");
        }
        let header = RecordingHeader {
            started_unix_ns: 1_000_000_000_000,
            ..RecordingHeader::default()
        };
        let at = TimeSpec::parse("1970-01-01T00:16:50Z")
            .ok()
            .map(|t| t.resolve(&header));
        assert_eq!(at, Some(Duration::from_secs(10)));
    }
}
