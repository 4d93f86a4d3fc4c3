//! Parsers of the text the kernel writes in /proc files (stat, status, io, syscall, schedstat):
//! pure functions of the bytes read.

use crate::collect::tick::{OsState, Syscall};

/// Clock ticks per second of `stat`'s time fields (`USER_HZ`, 100 on every Linux ABI hptop targets).
pub const TICKS_PER_S: u64 = 100;

/// Fields of `/proc/.../stat` that hptop uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatFields {
    /// Scheduling state.
    pub state: OsState,
    /// Parent process id.
    pub ppid: u32,
    /// Minor faults.
    pub minor_faults: u64,
    /// Major faults.
    pub major_faults: u64,
    /// utime + stime in clock ticks.
    pub cpu_ticks: u64,
    /// Number of threads.
    pub num_threads: u64,
    /// Start time since boot in clock ticks.
    pub start_ticks: u64,
}

/// Parses the text of a `stat` file. The command name may hold spaces and parentheses,
/// so fields are counted from the last `)`.
pub fn parse_stat(text: &[u8]) -> Option<StatFields> {
    // Read at every tick for every thread that ran: fields are sliced in place, with no
    // allocation (the 20 after the name are all hptop needs).
    let mut fields: [&[u8]; 20] = [&[]; 20];
    let words = stat_words(text)?;
    let mut count = 0;
    for (slot, word) in fields.iter_mut().zip(words) {
        *slot = word;
        count += 1;
    }
    if count < fields.len() {
        return None;
    }
    let num = |i: usize| fields.get(i).and_then(|f| parse_decimal(f));
    Some(StatFields {
        state: OsState::from_letter(*fields[0].first()?),
        ppid: u32::try_from(num(1)?).ok()?,
        minor_faults: num(7)?,
        major_faults: num(9)?,
        cpu_ticks: num(11)? + num(12)?,
        num_threads: num(17)?,
        start_ticks: num(19)?,
    })
}

/// The fields of a `stat` text after the command name (which may hold spaces and
/// parentheses: fields are counted from the last `)`), the state first.
fn stat_words(text: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let close = text.iter().rposition(|&b| b == b')')?;
    Some(
        text.get(close + 1..)?
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty()),
    )
}

/// The CPU a thread in state `R` (running or waiting for a CPU) is on (`stat` field 39, the
/// 37th after the command name); `None` in any other state.
pub fn parse_runnable_cpu(text: &[u8]) -> Option<u32> {
    let mut words = stat_words(text)?;
    if words.next()? != b"R" {
        return None;
    }
    u32::try_from(parse_decimal(words.nth(35)?)?).ok()
}

/// An unsigned decimal number of ASCII digits, as the kernel writes them.
pub(super) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Seconds since a process or thread started, from its `stat` start time and `/proc/uptime`.
pub fn age_s(start_ticks: u64) -> Option<f64> {
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let up: f64 = uptime.split_ascii_whitespace().next()?.parse().ok()?;
    Some((up - start_ticks as f64 / TICKS_PER_S as f64).max(0.0))
}

/// Looks up `key:` in a `status`- or `io`-style text and returns its first number.
pub fn field_value(text: &[u8], key: &str) -> Option<u64> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(key.as_bytes())?.strip_prefix(b":")?;
        let digits = rest.trim_ascii_start();
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        parse_decimal(&digits[..end])
    })
}

/// Parses `/proc/.../syscall`: `NR ARG0 ...` (hex arguments) when blocked in a system call;
/// `running` or `-1 ...` (not in one) give `None`.
pub fn parse_syscall(text: &[u8]) -> Option<Syscall> {
    let mut fields = text
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty());
    let number = parse_decimal(fields.next()?)?;
    let arg0 = fields.next()?.strip_prefix(b"0x")?;
    let arg0 = arg0.iter().try_fold(0u64, |n, &d| {
        let digit = char::from(d).to_digit(16)?;
        n.checked_mul(16)?.checked_add(u64::from(digit))
    })?;
    Some(Syscall { number, arg0 })
}

/// The innermost id of `NSpid:` in a `status` text (the id as the process itself sees it),
/// when the process is in a PID namespace below the one `/proc` was mounted in.
pub fn inner_ns_id(status: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let ids: Vec<u32> = line
        .split_ascii_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if ids.len() > 1 {
        ids.last().copied()
    } else {
        None
    }
}

/// `read_bytes` and `write_bytes` of an `io` file (0 when absent).
pub(super) fn io_fields(text: &[u8]) -> (u64, u64) {
    (
        field_value(text, "read_bytes").unwrap_or(0),
        field_value(text, "write_bytes").unwrap_or(0),
    )
}

/// `schedstat`'s fields: time on a CPU (ns), time runnable waiting for one (ns), times
/// switched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Schedstat {
    pub(super) run_ns: u64,
    pub(super) wait_ns: u64,
    pub(super) switched_in: u64,
}

impl Schedstat {
    /// Whether the thread has neither run nor been switched in since `before`.
    pub(super) fn same_run(self, before: Option<Self>) -> bool {
        before.is_some_and(|b| b.run_ns == self.run_ns && b.switched_in == self.switched_in)
    }
}

pub(super) fn parse_schedstat(text: &[u8]) -> Option<Schedstat> {
    let mut fields = text
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
        .map(parse_decimal);
    Some(Schedstat {
        run_ns: fields.next()??,
        wait_ns: fields.next()??,
        switched_in: fields.next()??,
    })
}

/// `ns` rounded down to whole microseconds (still in ns).
pub(super) fn to_micros(ns: u64) -> u64 {
    ns / 1000 * 1000
}
