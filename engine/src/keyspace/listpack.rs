//! Redis's listpack, byte for byte: the packed array a stream keeps its entries in (so a
//! stream's nodes are written to an RDB file as they are held). A listpack is a 6-byte header
//! (total bytes, element count), the elements, and an 0xFF end byte; each element is its
//! encoding and data followed by its own length ("backlen"), so it can be walked both ways.
//! Strings that read as integers are stored as integers, as Redis's `lpAppend` does.
//!
//! Positions are byte offsets of an element's first byte. Listpacks built here are valid by
//! construction; one read from a file is checked by `validate` before it is used.

use std::borrow::Cow;

use smallvec::SmallVec;

const HEADER: usize = 6;
const END: u8 = 0xFF;
/// The element count a header holds once it no longer fits in 16 bits.
const UNKNOWN_COUNT: u16 = u16::MAX;

/// One element: an integer or a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl<'a> Elem<'a> {
    /// The element as bytes (an integer as its decimal text).
    pub fn bytes(self) -> Cow<'a, [u8]> {
        match self {
            Elem::Str(s) => Cow::Borrowed(s),
            Elem::Int(n) => Cow::Owned(itoa::Buffer::new().format(n).as_bytes().to_vec()),
        }
    }

    /// The element as an integer (a string that reads as one counts, as in `lpGetInteger`).
    pub fn int(self) -> Option<i64> {
        match self {
            Elem::Int(n) => Some(n),
            Elem::Str(s) => crate::util::parse_i64(s),
        }
    }

    /// True if the element equals `bytes` as Redis compares them (an integer by its text).
    pub fn equals(self, bytes: &[u8]) -> bool {
        match self {
            Elem::Str(s) => s == bytes,
            Elem::Int(n) => crate::util::parse_i64(bytes) == Some(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listpack {
    bytes: Vec<u8>,
}

impl Default for Listpack {
    fn default() -> Self {
        let mut bytes = Vec::with_capacity(HEADER + 1);
        bytes.extend_from_slice(&((HEADER + 1) as u32).to_le_bytes());
        bytes.extend_from_slice(&0u16.to_le_bytes());
        bytes.push(END);
        Listpack { bytes }
    }
}

/// Why a listpack read from outside is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid listpack: {0}")]
pub struct InvalidListpack(pub &'static str);

impl Listpack {
    /// The listpack's bytes, as an RDB file stores them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Heap bytes it holds.
    pub fn heap_size(&self) -> usize {
        super::value::malloc_size(self.bytes.capacity())
    }

    /// Total bytes (header and end byte included), as Redis's `lpBytes`.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Takes a listpack read from a file, checking every element lies inside it, the header's
    /// sizes and the end byte.
    pub fn validate(bytes: Vec<u8>) -> Result<Listpack, InvalidListpack> {
        if bytes.len() < HEADER + 1 {
            return Err(InvalidListpack("shorter than its header"));
        }
        let total = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if total != bytes.len() {
            return Err(InvalidListpack("total bytes differ from its header"));
        }
        if bytes[bytes.len() - 1] != END {
            return Err(InvalidListpack("no end byte"));
        }
        let lp = Listpack { bytes };
        let mut pos = HEADER;
        let mut count = 0usize;
        while pos < lp.bytes.len() - 1 {
            let (_, data_len) = lp
                .decode(pos)
                .ok_or(InvalidListpack("an element runs past its end"))?;
            let back_at = pos + data_len;
            let back_len = backlen_size(data_len);
            let back = lp
                .bytes
                .get(back_at..back_at + back_len)
                .ok_or(InvalidListpack("a backlen runs past its end"))?;
            if back != &encode_backlen(data_len)[..back_len] {
                return Err(InvalidListpack("a backlen does not match its element"));
            }
            pos = back_at + back_len;
            count += 1;
        }
        if pos != lp.bytes.len() - 1 {
            return Err(InvalidListpack("elements overrun the end byte"));
        }
        let header_count = u16::from_le_bytes([lp.bytes[4], lp.bytes[5]]);
        if header_count != UNKNOWN_COUNT && usize::from(header_count) != count {
            return Err(InvalidListpack("element count differs from its header"));
        }
        Ok(lp)
    }

    /// Position of the first element, None if empty.
    pub fn first(&self) -> Option<usize> {
        (self.bytes[HEADER] != END).then_some(HEADER)
    }

    /// Position of the element after the one at `pos`, None at the end.
    pub fn next(&self, pos: usize) -> Option<usize> {
        let (_, data_len) = self.decode(pos)?;
        let next = pos + data_len + backlen_size(data_len);
        (self.bytes.get(next).is_some_and(|&b| b != END)).then_some(next)
    }

    /// Position of the element before the one at `pos`, None at the start.
    pub fn prev(&self, pos: usize) -> Option<usize> {
        if pos <= HEADER {
            return None;
        }
        let mut at = pos - 1;
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let b = self.bytes[at];
            len |= usize::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            at = at.checked_sub(1)?;
        }
        at.checked_sub(len)
    }

    /// Position of the last element, None if empty.
    pub fn last(&self) -> Option<usize> {
        self.prev(self.bytes.len() - 1)
    }

    /// The element at `pos`.
    pub fn get(&self, pos: usize) -> Elem<'_> {
        self.decode(pos).map_or(Elem::Int(0), |(elem, _)| elem)
    }

    /// The element at `pos` as an integer (0 if it is not one, which a listpack built or
    /// validated here never gives where an integer is expected).
    pub fn int_at(&self, pos: usize) -> i64 {
        self.get(pos).int().unwrap_or(0)
    }

    /// Appends a string, stored as an integer if it reads as one.
    pub fn push_str(&mut self, s: &[u8]) {
        self.push_all(&[Elem::Str(s)]);
    }

    pub fn push_int(&mut self, n: i64) {
        self.push_all(&[Elem::Int(n)]);
    }

    /// Appends several elements at once (strings that read as integers become integers),
    /// growing the listpack once.
    pub fn push_all(&mut self, items: &[Elem]) {
        let mut enc: SmallVec<[u8; 128]> = SmallVec::new();
        for item in items {
            let start = enc.len();
            match *item {
                Elem::Int(n) => encode_int(&mut enc, n),
                Elem::Str(s) => match crate::util::parse_i64(s) {
                    Some(n) => encode_int(&mut enc, n),
                    None => encode_str(&mut enc, s),
                },
            }
            let data_len = enc.len() - start;
            enc.extend_from_slice(&encode_backlen(data_len)[..backlen_size(data_len)]);
        }
        // Exactly: the allocator grows a block in place up to its size class, so appends copy
        // rarely, and a node holds no slack once full (Redis's listpacks neither).
        self.bytes.reserve_exact(enc.len());
        let end = self.bytes.len() - 1;
        self.bytes.truncate(end);
        self.bytes.extend_from_slice(&enc);
        self.bytes.push(END);
        self.set_total();
        let count = u16::from_le_bytes([self.bytes[4], self.bytes[5]]);
        if count != UNKNOWN_COUNT {
            let new = usize::from(count) + items.len();
            let stored = u16::try_from(new).unwrap_or(UNKNOWN_COUNT);
            self.bytes[4..6].copy_from_slice(&stored.to_le_bytes());
        }
    }

    /// Replaces the integer at `pos` (the element keeps its position; what follows moves if
    /// the new value's encoding is longer or shorter).
    pub fn replace_int(&mut self, pos: usize, n: i64) {
        let Some((_, old_len)) = self.decode(pos) else {
            return;
        };
        let old_total = old_len + backlen_size(old_len);
        let mut enc: SmallVec<[u8; 128]> = SmallVec::new();
        encode_int(&mut enc, n);
        let data_len = enc.len();
        enc.extend_from_slice(&encode_backlen(data_len)[..backlen_size(data_len)]);
        if enc.len() == old_total {
            self.bytes[pos..pos + old_total].copy_from_slice(&enc);
        } else {
            self.bytes.splice(pos..pos + old_total, enc.iter().copied());
            self.bytes.shrink_to_fit();
            self.set_total();
        }
    }

    fn set_total(&mut self) {
        let total = self.bytes.len() as u32;
        self.bytes[..4].copy_from_slice(&total.to_le_bytes());
    }

    /// The element at `pos` and the length of its encoding and data (without the backlen);
    /// None if it runs past the end.
    fn decode(&self, pos: usize) -> Option<(Elem<'_>, usize)> {
        let b = &self.bytes;
        let first = *b.get(pos)?;
        let le = |from: usize, n: usize| -> Option<u64> {
            let bytes = b.get(from..from + n)?;
            Some(
                bytes
                    .iter()
                    .rev()
                    .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
            )
        };
        let signed = |raw: u64, bits: u32| ((raw << (64 - bits)) as i64) >> (64 - bits);
        let string = |from: usize, len: usize, head: usize| -> Option<(Elem<'_>, usize)> {
            let s = b.get(from..from.checked_add(len)?)?;
            Some((Elem::Str(s), head + len))
        };
        match first {
            0x00..=0x7F => Some((Elem::Int(i64::from(first)), 1)),
            0x80..=0xBF => string(pos + 1, usize::from(first & 0x3F), 1),
            0xC0..=0xDF => {
                let raw = (u64::from(first & 0x1F) << 8) | u64::from(*b.get(pos + 1)?);
                Some((Elem::Int(signed(raw, 13)), 2))
            }
            0xE0..=0xEF => {
                let len = (usize::from(first & 0x0F) << 8) | usize::from(*b.get(pos + 1)?);
                string(pos + 2, len, 2)
            }
            0xF0 => string(pos + 5, le(pos + 1, 4)? as usize, 5),
            0xF1 => Some((Elem::Int(signed(le(pos + 1, 2)?, 16)), 3)),
            0xF2 => Some((Elem::Int(signed(le(pos + 1, 3)?, 24)), 4)),
            0xF3 => Some((Elem::Int(signed(le(pos + 1, 4)?, 32)), 5)),
            0xF4 => Some((Elem::Int(le(pos + 1, 8)? as i64), 9)),
            _ => None,
        }
    }
}

fn encode_int(out: &mut SmallVec<[u8; 128]>, n: i64) {
    if (0..=127).contains(&n) {
        out.push(n as u8);
    } else if (-4096..=4095).contains(&n) {
        let v = (n as u64) & 0x1FFF;
        out.push(0xC0 | (v >> 8) as u8);
        out.push(v as u8);
    } else {
        let (tag, width) = if (-32768..=32767).contains(&n) {
            (0xF1, 2)
        } else if (-8_388_608..=8_388_607).contains(&n) {
            (0xF2, 3)
        } else if i32::try_from(n).is_ok() {
            (0xF3, 4)
        } else {
            (0xF4, 8)
        };
        out.push(tag);
        out.extend_from_slice(&n.to_le_bytes()[..width]);
    }
}

fn encode_str(out: &mut SmallVec<[u8; 128]>, s: &[u8]) {
    let len = s.len();
    if len < 64 {
        out.push(0x80 | len as u8);
    } else if len < 4096 {
        out.push(0xE0 | (len >> 8) as u8);
        out.push(len as u8);
    } else {
        out.push(0xF0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
}

/// Bytes of the backlen of an element whose encoding and data take `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// The backlen bytes (the first `backlen_size` are used): most significant 7 bits first,
/// every byte but the first flagged 0x80, so it reads back from its last byte.
fn encode_backlen(len: usize) -> [u8; 5] {
    let size = backlen_size(len);
    let mut out = [0u8; 5];
    for (i, slot) in out.iter_mut().take(size).enumerate() {
        let shift = 7 * (size - 1 - i);
        *slot = ((len >> shift) & 0x7F) as u8 | if i == 0 { 0 } else { 0x80 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_round_trip_both_ways_with_redis_encodings() {
        let mut lp = Listpack::default();
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let values: Vec<Vec<u8>> = vec![
            b"0".to_vec(),
            b"127".to_vec(),
            b"-1".to_vec(),
            b"4095".to_vec(),
            b"-4096".to_vec(),
            b"32767".to_vec(),
            b"8388607".to_vec(),
            b"2147483647".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"007".to_vec(),
            b"-0".to_vec(),
            b"hello".to_vec(),
            mid.clone(),
            long.clone(),
        ];
        for v in &values {
            lp.push_str(v);
        }
        let lp = Listpack::validate(lp.as_bytes().to_vec()).expect("valid");
        let mut forward = Vec::new();
        let mut pos = lp.first();
        while let Some(p) = pos {
            forward.push(lp.get(p).bytes().into_owned());
            pos = lp.next(p);
        }
        assert_eq!(forward, values);
        let mut backward = Vec::new();
        let mut pos = lp.last();
        while let Some(p) = pos {
            backward.push(lp.get(p).bytes().into_owned());
            pos = lp.prev(p);
        }
        backward.reverse();
        assert_eq!(backward, values);
        assert_eq!(lp.get(HEADER), Elem::Int(0));
        assert!(matches!(
            lp.get(lp.first().and_then(|p| lp.next(p)).unwrap()),
            Elem::Int(127)
        ));
    }

    #[test]
    fn a_replaced_integer_that_grows_moves_what_follows() {
        let mut lp = Listpack::default();
        lp.push_int(1);
        lp.push_str(b"after");
        lp.replace_int(HEADER, 100_000);
        let lp = Listpack::validate(lp.as_bytes().to_vec()).expect("valid");
        assert_eq!(lp.int_at(HEADER), 100_000);
        let next = lp.next(HEADER).expect("second");
        assert_eq!(lp.get(next), Elem::Str(b"after"));
    }

    #[test]
    fn a_tampered_listpack_is_refused() {
        let mut lp = Listpack::default();
        lp.push_str(b"abc");
        let mut bytes = lp.as_bytes().to_vec();
        bytes[6] = 0x85;
        assert!(Listpack::validate(bytes).is_err());
        assert!(Listpack::validate(vec![7, 0, 0, 0, 0, 0]).is_err());
    }
}
