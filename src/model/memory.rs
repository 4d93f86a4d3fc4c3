//! Memory over time: RSS growth rate from the per-second timeline, and the leak hint.
//!
//! Growth is the least-squares slope of RSS over the last [`GROWTH_WINDOW_S`] seconds of the
//! timeline (one point per second). The leak hint asks for growth that is sustained, not a
//! step: at least [`LEAK_MIN_S`] seconds of points, a fit that explains most of the variance
//! (R² ≥ [`LEAK_MIN_R2`]), growth in both halves of the window, and at least
//! [`LEAK_MIN_BYTES`] gained. Docs: docs/figures.md, "Memory".

use super::timeline::TimelinePoint;

/// Seconds of timeline the growth rate is fitted over (the most recent ones).
pub const GROWTH_WINDOW_S: usize = 300;
/// Fewest seconds of RSS points for a growth rate.
pub const GROWTH_MIN_S: usize = 10;
/// Fewest seconds of steady growth for a leak hint.
pub const LEAK_MIN_S: usize = 60;
/// Least goodness of fit for a leak hint.
pub const LEAK_MIN_R2: f64 = 0.8;
/// Least RSS gained over the window for a leak hint.
pub const LEAK_MIN_BYTES: f64 = 16.0 * 1024.0 * 1024.0;

/// A fitted RSS trend.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Growth {
    /// Slope of RSS, bytes per second (negative: shrinking).
    pub bytes_per_s: f64,
    /// Seconds of points fitted.
    pub window_s: f64,
    /// Goodness of fit, 0..1 (1: a straight line).
    pub r2: f64,
    /// The trend is a sustained rise: see the module doc.
    pub sustained: bool,
}

/// The growth of RSS over the recent timeline, when there are enough points.
pub fn growth(points: &[TimelinePoint]) -> Option<Growth> {
    let with_rss: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.rss_bytes > 0)
        .map(|p| (p.at.as_secs_f64(), p.rss_bytes as f64))
        .collect();
    let recent = &with_rss[with_rss.len().saturating_sub(GROWTH_WINDOW_S)..];
    if recent.len() < GROWTH_MIN_S {
        return None;
    }
    let (slope, r2) = fit(recent)?;
    let window_s = recent[recent.len() - 1].0 - recent[0].0;
    let (first, second) = recent.split_at(recent.len() / 2);
    let halves_grow = [first, second]
        .iter()
        .all(|half| fit(half).is_some_and(|(s, _)| s > slope * 0.25));
    let sustained = recent.len() >= LEAK_MIN_S
        && slope > 0.0
        && r2 >= LEAK_MIN_R2
        && halves_grow
        && slope * window_s >= LEAK_MIN_BYTES;
    Some(Growth {
        bytes_per_s: slope,
        window_s,
        r2,
        sustained,
    })
}

/// Least-squares slope and R² of `points` as (x, y); `None` for fewer than 2 distinct x.
fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in points {
        sxx += (x - mean_x) * (x - mean_x);
        sxy += (x - mean_x) * (y - mean_y);
        syy += (y - mean_y) * (y - mean_y);
    }
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy == 0.0 {
        0.0
    } else {
        sxy * sxy / (sxx * syy)
    };
    Some((slope, r2))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn points(rss: impl Fn(u64) -> u64, seconds: u64) -> Vec<TimelinePoint> {
        (0..seconds)
            .map(|s| TimelinePoint {
                at: Duration::from_secs(s),
                rss_bytes: rss(s),
                ..TimelinePoint::default()
            })
            .collect()
    }

    #[test]
    fn steady_growth_is_fitted_and_hinted() {
        let g = growth(&points(|s| (100 << 20) + s * (1 << 20), 90)).unwrap();
        assert!((g.bytes_per_s - f64::from(1 << 20)).abs() < 1.0);
        assert!(g.r2 > 0.999);
        assert!(g.sustained);
        // The same slope over 30 s is a rate, not yet a leak.
        let g = growth(&points(|s| (100 << 20) + s * (1 << 20), 30)).unwrap();
        assert!(!g.sustained);
        assert!(growth(&points(|_| 1, 5)).is_none());
    }

    #[test]
    fn a_step_or_a_flat_line_is_no_leak() {
        let step = |s| if s < 45 { 100 << 20 } else { 300 << 20 };
        let g = growth(&points(step, 90)).unwrap();
        assert!(g.bytes_per_s > 0.0);
        assert!(!g.sustained);
        let g = growth(&points(|_| 100 << 20, 90)).unwrap();
        assert!(g.bytes_per_s.abs() < 1e-9);
        assert!(!g.sustained);
    }
}
