//! Makes strings read from the target inert before they reach a terminal or a report.
//!
//! Function, file and thread names and command lines are the target's data: a thread
//! named `"\x1b]0;pwned\x07"` must not retitle the user's terminal. Every control
//! character (C0, DEL, C1) and the Unicode bidi controls are shown as visible escapes.

use std::fmt::Write as _;

/// Returns `s` with control characters replaced by visible escapes (`\x1b`, `\u{202e}`).
pub fn sanitize(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            let code = u32::from(c);
            if code < 0x100 {
                let _ = write!(out, "\\x{code:02x}");
            } else {
                let _ = write!(out, "\\u{{{code:04x}}}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn escapes_controls_and_keeps_text() {
        assert_eq!(sanitize("plain_name"), "plain_name");
        assert_eq!(sanitize("naïve→ok"), "naïve→ok");
        assert_eq!(sanitize("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(sanitize("t\x07\n\r\x7f"), "t\\x07\\x0a\\x0d\\x7f");
        assert_eq!(sanitize("\u{9b}"), "\\x9b");
        assert_eq!(sanitize("x\u{202e}y"), "x\\u{202e}y");
    }
}
