//! Number, byte and duration formatting shared by the TUI and the reports.

/// Bytes with a binary unit: `512 B`, `1.5 KiB`, `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Seconds, with a precision that suits the size: `0.012s`, `1.23s`, `95.1s`, `1h02m`.
pub fn seconds(s: f64) -> String {
    if s >= 3600.0 {
        let minutes = (s / 60.0) as u64;
        format!("{}h{:02}m", minutes / 60, minutes % 60)
    } else if s >= 100.0 {
        format!("{s:.0}s")
    } else if s >= 10.0 {
        format!("{s:.1}s")
    } else if s >= 1.0 {
        format!("{s:.2}s")
    } else {
        format!("{s:.3}s")
    }
}

/// A count with thousands separators: `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A percentage with one decimal: `12.5%`.
pub fn percent(p: f64) -> String {
    format!("{p:.1}%")
}

/// Cuts `s` to at most `width` characters, marking the cut with `…`.
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A signed byte rate: `+2.0 MiB/s`, `-512.0 KiB/s`.
pub fn rate_bytes(bytes_per_s: f64) -> String {
    let sign = if bytes_per_s < 0.0 { "-" } else { "+" };
    format!("{sign}{}/s", bytes(bytes_per_s.abs().round() as u64))
}

/// `n` and the noun, plural unless `n` is 1 ("1 thread", "2 threads", "0 processes").
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if noun.ends_with('s') || noun.ends_with("sh") || noun.ends_with("ch") {
        format!("{} {noun}es", count(n))
    } else {
        format!("{} {noun}s", count(n))
    }
}

/// `text` cut into lines of at most `width` characters, at spaces where it can be.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !line.is_empty() && !fits {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let rest: String = line.chars().skip(width).collect();
            lines.push(line.chars().take(width).collect());
            line = rest;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word() {
        let text = "function detail: callers, callees, source heat (Esc closes)";
        let lines = wrap(text, 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(lines.join(" "), text);
    }

    #[test]
    fn nouns_ending_in_s_take_es() {
        assert_eq!(counted(0, "process"), "0 processes");
        assert_eq!(counted(1, "process"), "1 process");
        assert_eq!(counted(2, "thread"), "2 threads");
        assert_eq!(counted(3, "switch"), "3 switches");
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(seconds(0.0123), "0.012s");
        assert_eq!(seconds(3.456), "3.46s");
        assert_eq!(seconds(3725.0), "1h02m");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(percent(12.345), "12.3%");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
