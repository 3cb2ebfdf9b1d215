//! Readers for the compact blobs Redis stores inside RDB values: listpack (7.0), ziplist
//! (before 7.0), intset and zipmap (before 2.6). Each is validated completely (header sizes,
//! entry counts, every entry inside the blob, the end marker) and turned into its elements;
//! integers become their decimal strings, as Redis returns them.

use super::{prealloc, RdbError};
use crate::keyspace::Blob;

/// Reads a compact blob found at file offset `base`.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Cursor<'a> {
    fn corrupt(&self, reason: impl Into<String>) -> RdbError {
        RdbError::Corrupt {
            offset: self.base + self.pos as u64,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], RdbError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.corrupt(format!("{what} runs past the end of its blob")))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self, what: &str) -> Result<u8, RdbError> {
        Ok(self.take(1, what)?[0])
    }

    fn le(&mut self, n: usize, what: &str) -> Result<u64, RdbError> {
        let bytes = self.take(n, what)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A little-endian signed integer of `n` bytes.
    fn signed(&mut self, n: usize, what: &str) -> Result<i64, RdbError> {
        let raw = self.le(n, what)?;
        let shift = 64 - 8 * n as u32;
        Ok(((raw << shift) as i64) >> shift)
    }
}

fn int_blob(n: i64) -> Blob {
    Blob::from_slice(itoa::Buffer::new().format(n).as_bytes())
}

/// The elements of a listpack.
pub fn listpack(data: &[u8], base: u64) -> Result<Vec<Blob>, RdbError> {
    let mut c = Cursor { data, pos: 0, base };
    let total = c.le(4, "listpack header")? as usize;
    let count = c.le(2, "listpack header")? as usize;
    if total != data.len() {
        return Err(c.corrupt(format!(
            "listpack header says {total} bytes, blob has {}",
            data.len()
        )));
    }
    let mut items = Vec::with_capacity(prealloc(count.min(data.len())));
    loop {
        let start = c.pos;
        let b = c.u8("listpack entry")?;
        if b == 0xFF {
            break;
        }
        let item = if b & 0x80 == 0 {
            int_blob(i64::from(b))
        } else if b & 0xC0 == 0x80 {
            Blob::from_slice(c.take(usize::from(b & 0x3F), "listpack string")?)
        } else if b & 0xE0 == 0xC0 {
            let low = c.u8("listpack int")?;
            let raw = (u16::from(b & 0x1F) << 8) | u16::from(low);
            int_blob(i64::from(((raw << 3) as i16) >> 3))
        } else if b & 0xF0 == 0xE0 {
            let low = c.u8("listpack string length")?;
            let len = (usize::from(b & 0x0F) << 8) | usize::from(low);
            Blob::from_slice(c.take(len, "listpack string")?)
        } else {
            match b {
                0xF0 => {
                    let len = c.le(4, "listpack string length")? as usize;
                    Blob::from_slice(c.take(len, "listpack string")?)
                }
                0xF1 => int_blob(c.signed(2, "listpack int")?),
                0xF2 => int_blob(c.signed(3, "listpack int")?),
                0xF3 => int_blob(c.signed(4, "listpack int")?),
                0xF4 => int_blob(c.signed(8, "listpack int")?),
                _ => return Err(c.corrupt(format!("unknown listpack encoding {b:#04x}"))),
            }
        };
        let entry_len = c.pos - start;
        let backlen_size = match entry_len {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            2_097_152..=268_435_455 => 4,
            _ => 5,
        };
        c.take(backlen_size, "listpack entry length")?;
        items.push(item);
    }
    if c.pos != data.len() {
        return Err(c.corrupt("bytes after the listpack end marker"));
    }
    if count != 0xFFFF && count != items.len() {
        return Err(c.corrupt(format!(
            "listpack header says {count} entries, found {}",
            items.len()
        )));
    }
    Ok(items)
}

/// The elements of a ziplist.
pub fn ziplist(data: &[u8], base: u64) -> Result<Vec<Blob>, RdbError> {
    let mut c = Cursor { data, pos: 0, base };
    let total = c.le(4, "ziplist header")? as usize;
    let tail = c.le(4, "ziplist header")? as usize;
    let count = c.le(2, "ziplist header")? as usize;
    if total != data.len() || tail >= data.len() {
        return Err(c.corrupt(format!(
            "ziplist header says {total} bytes (tail at {tail}), blob has {}",
            data.len()
        )));
    }
    let mut items = Vec::with_capacity(prealloc(count.min(data.len())));
    loop {
        let first = *data
            .get(c.pos)
            .ok_or_else(|| c.corrupt("ziplist has no end marker"))?;
        if first == 0xFF {
            c.pos += 1;
            break;
        }
        if first == 0xFE {
            c.take(5, "ziplist previous-entry length")?;
        } else {
            c.take(1, "ziplist previous-entry length")?;
        }
        let b = c.u8("ziplist entry")?;
        let item = match b >> 6 {
            0 => Blob::from_slice(c.take(usize::from(b & 0x3F), "ziplist string")?),
            1 => {
                let low = c.u8("ziplist string length")?;
                let len = (usize::from(b & 0x3F) << 8) | usize::from(low);
                Blob::from_slice(c.take(len, "ziplist string")?)
            }
            2 => {
                let bytes = c.take(4, "ziplist string length")?;
                let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
                Blob::from_slice(c.take(len, "ziplist string")?)
            }
            _ => match b {
                0xC0 => int_blob(c.signed(2, "ziplist int")?),
                0xD0 => int_blob(c.signed(4, "ziplist int")?),
                0xE0 => int_blob(c.signed(8, "ziplist int")?),
                0xF0 => int_blob(c.signed(3, "ziplist int")?),
                0xFE => int_blob(c.signed(1, "ziplist int")?),
                0xF1..=0xFD => int_blob(i64::from(b & 0x0F) - 1),
                _ => return Err(c.corrupt(format!("unknown ziplist encoding {b:#04x}"))),
            },
        };
        items.push(item);
    }
    if c.pos != data.len() {
        return Err(c.corrupt("bytes after the ziplist end marker"));
    }
    if count != 0xFFFF && count != items.len() {
        return Err(c.corrupt(format!(
            "ziplist header says {count} entries, found {}",
            items.len()
        )));
    }
    Ok(items)
}

/// The members of an intset (sorted, distinct integers).
pub fn intset(data: &[u8], base: u64) -> Result<Vec<Blob>, RdbError> {
    let mut c = Cursor { data, pos: 0, base };
    let width = c.le(4, "intset header")? as usize;
    let count = c.le(4, "intset header")? as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(c.corrupt(format!("intset element width {width}")));
    }
    if count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(data.len()) {
        return Err(c.corrupt(format!(
            "intset header says {count} elements of {width} bytes, blob has {}",
            data.len()
        )));
    }
    let mut members = Vec::with_capacity(prealloc(count));
    let mut previous = None;
    for _ in 0..count {
        let n = c.signed(width, "intset element")?;
        if previous.is_some_and(|p| p >= n) {
            return Err(c.corrupt("intset elements out of order"));
        }
        previous = Some(n);
        members.push(int_blob(n));
    }
    Ok(members)
}

/// The fields and values of a zipmap (Redis before 2.6), alternating.
pub fn zipmap(data: &[u8], base: u64) -> Result<Vec<Blob>, RdbError> {
    let mut c = Cursor { data, pos: 0, base };
    c.u8("zipmap header")?;
    let mut items = Vec::new();
    loop {
        let b = c.u8("zipmap entry")?;
        if b == 0xFF {
            break;
        }
        let len = match b {
            0..=253 => usize::from(b),
            254 => c.le(4, "zipmap length")? as usize,
            _ => unreachable!("0xFF handled above"),
        };
        let field = Blob::from_slice(c.take(len, "zipmap field")?);
        let b = c.u8("zipmap value length")?;
        let len = match b {
            0..=253 => usize::from(b),
            254 => c.le(4, "zipmap length")? as usize,
            _ => return Err(c.corrupt("zipmap field without a value")),
        };
        let free = usize::from(c.u8("zipmap free byte")?);
        let value = Blob::from_slice(c.take(len, "zipmap value")?);
        c.take(free, "zipmap free space")?;
        items.push(field);
        items.push(value);
    }
    if c.pos != data.len() {
        return Err(c.corrupt("bytes after the zipmap end marker"));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[Blob]) -> Vec<String> {
        items
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn listpack_with_every_encoding() {
        // Built by hand from listpack.c's encoding table.
        let mut body = Vec::new();
        let mut entry = |bytes: &[u8]| {
            body.extend_from_slice(bytes);
            body.push(bytes.len() as u8);
        };
        entry(&[5]); // 7-bit uint
        entry(&[0x83, b'a', b'b', b'c']); // 6-bit string
        entry(&[0xDF, 0xFF]); // 13-bit int -1
        entry(&[0xF1, 0x00, 0x80]); // int16 -32768
        entry(&[0xF2, 0x00, 0x00, 0x80]); // int24 min
        entry(&[0xF3, 0xFF, 0xFF, 0xFF, 0x7F]); // int32 max
        entry(&[0xF4, 0, 0, 0, 0, 0, 0, 0, 0x80]); // int64 min
        let mut data = Vec::new();
        let total = 4 + 2 + body.len() + 1;
        data.extend_from_slice(&(total as u32).to_le_bytes());
        data.extend_from_slice(&7u16.to_le_bytes());
        data.extend_from_slice(&body);
        data.push(0xFF);
        let items = listpack(&data, 0).unwrap();
        assert_eq!(
            strings(&items),
            [
                "5",
                "abc",
                "-1",
                "-32768",
                "-8388608",
                "2147483647",
                "-9223372036854775808"
            ]
        );
        // A header that lies about the count or size is refused.
        let mut lying = data.clone();
        lying[4] = 8;
        let err = listpack(&lying, 100).unwrap_err().to_string();
        assert!(
            err.contains("says 8 entries") && err.contains("offset 1"),
            "{err}"
        );
        let mut lying = data.clone();
        lying[0] = 200;
        assert!(listpack(&lying, 0).is_err());
        // A string claiming more bytes than the blob holds.
        let mut lying = data;
        lying[8] = 0xBF;
        assert!(listpack(&lying, 0).is_err());
    }

    #[test]
    fn ziplist_with_every_encoding() {
        let mut body = Vec::new();
        for entry in [
            &[0x03, b'f', b'o', b'o'][..],
            &[0xC0, 0x2C, 0x01],
            &[0xD0, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0xE0, 1, 0, 0, 0, 0, 0, 0, 0],
            &[0xF0, 0xFF, 0xFF, 0x7F],
            &[0xFE, 0x80],
            &[0xF1],
            &[0xFD],
        ] {
            body.push(0); // previous-entry length (not checked)
            body.extend_from_slice(entry);
        }
        let mut data = Vec::new();
        let total = 10 + body.len() + 1;
        data.extend_from_slice(&(total as u32).to_le_bytes());
        data.extend_from_slice(&10u32.to_le_bytes());
        data.extend_from_slice(&8u16.to_le_bytes());
        data.extend_from_slice(&body);
        data.push(0xFF);
        assert_eq!(
            strings(&ziplist(&data, 0).unwrap()),
            ["foo", "300", "-1", "1", "8388607", "-128", "0", "12"]
        );
        assert!(ziplist(&data[..data.len() - 1], 0).is_err());
    }

    #[test]
    fn intset_and_zipmap() {
        let mut data = vec![2, 0, 0, 0, 3, 0, 0, 0];
        for n in [-5i16, 1, 300] {
            data.extend_from_slice(&n.to_le_bytes());
        }
        assert_eq!(strings(&intset(&data, 0).unwrap()), ["-5", "1", "300"]);
        data[4] = 4;
        assert!(intset(&data, 0).is_err());

        let data = [2, 1, b'a', 2, 1, b'x', b'y', 0, 1, b'b', 1, 0, b'z', 0xFF];
        assert_eq!(strings(&zipmap(&data, 0).unwrap()), ["a", "xy", "b", "z"]);
    }
}
