//! Variable-length integers and bounded reads: the building blocks of a segment's payload.
//! Every read returns `RecordError::Damaged` when the bytes run out or make no sense.
#![allow(
    clippy::missing_errors_doc,
    reason = "every read fails the same way, said once above"
)]

use super::RecordError;

/// Appends `v` as LEB128 (7 bits a byte, low first).
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a signed delta `now - before` (zigzag, so small changes either way stay short).
pub fn put_delta(out: &mut Vec<u8>, now: u64, before: u64) {
    let d = now.wrapping_sub(before) as i64;
    put_u64(out, ((d << 1) ^ (d >> 63)) as u64);
}

/// Appends a string: length, then its UTF-8 bytes.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A cursor over a decompressed payload: every read is checked against its end.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// What is left to read.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos.min(self.data.len())..]
    }

    /// Whether everything was read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, RecordError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or(RecordError::Damaged("payload ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    /// A LEB128 integer (at most 10 bytes).
    pub fn u64(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(RecordError::Damaged("integer too long"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(RecordError::Damaged("integer too long"))
    }

    /// A LEB128 integer that must fit in a u32.
    pub fn u32(&mut self) -> Result<u32, RecordError> {
        u32::try_from(self.u64()?).map_err(|_| RecordError::Damaged("value out of range"))
    }

    /// A count of items, each at least `min_bytes` long in the payload: a count the rest of
    /// the payload cannot hold is damage (no allocation is sized by an unchecked number).
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, RecordError> {
        let n = self.u64()?;
        let left = (self.data.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes.max(1) as u64) > left {
            return Err(RecordError::Damaged("count larger than the payload"));
        }
        Ok(n as usize)
    }

    /// The value a zigzag delta (see [`put_delta`]) applied to `before` gives.
    pub fn delta(&mut self, before: u64) -> Result<u64, RecordError> {
        let z = self.u64()?;
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        Ok(before.wrapping_add(d as u64))
    }

    /// A string of at most `max` bytes; invalid UTF-8 is damage.
    pub fn str(&mut self, max: usize) -> Result<String, RecordError> {
        let len = self.count(1)?;
        if len > max {
            return Err(RecordError::Damaged("string too long"));
        }
        let bytes = &self.data[self.pos..self.pos + len];
        self.pos += len;
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::Damaged("string not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_deltas_round_trip() {
        let mut out = Vec::new();
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            put_u64(&mut out, v);
        }
        for (now, before) in [(5, 3), (3, 5), (0, u64::MAX), (u64::MAX, 0), (7, 7)] {
            put_delta(&mut out, now, before);
        }
        put_str(&mut out, "héllo");
        let mut r = Reader::new(&out);
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(r.u64().ok(), Some(v));
        }
        for (now, before) in [(5, 3), (3, 5), (0, u64::MAX), (u64::MAX, 0), (7, 7)] {
            assert_eq!(r.delta(before).ok(), Some(now));
        }
        assert_eq!(r.str(100).ok().as_deref(), Some("héllo"));
        assert!(r.at_end());
        assert!(r.u8().is_err());
    }

    #[test]
    fn counts_and_lengths_are_checked_against_what_is_left() {
        let mut out = Vec::new();
        put_u64(&mut out, 1 << 40);
        assert!(Reader::new(&out).count(1).is_err());
        assert!(Reader::new(&out).str(1 << 50).is_err());
        assert!(Reader::new(&[0xff; 11]).u64().is_err());
    }
}
