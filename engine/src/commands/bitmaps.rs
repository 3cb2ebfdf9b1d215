//! Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO, as Redis 7.0's bitops.c. Bit 0 is the most significant bit of the first byte;
//! a string reads as zero bits past its end and grows, zero-filled, when a bit past it is set.
//!
//! A command writes the key only when it changes it (a new key, a longer string, a different
//! bit), so a write that changes nothing is neither counted nor logged, as in Redis.

use std::collections::BTreeMap;

use super::strings::{clamp_range, zero_extend};
use super::{event, int_arg, is, CmdError, CmdResult, Ctx};
use crate::keyspace::{Blob, Value};
use crate::protocol::Reply;

fn new_string() -> Value {
    Value::Str(Blob::new())
}

fn offset_error() -> CmdError {
    CmdError::other("bit offset is not an integer or out of range")
}

/// A bit offset argument: a non-negative integer whose byte is within proto-max-bulk-len.
/// With `width` (BITFIELD), `#n` means the n-th field of that width.
fn bit_offset(ctx: &Ctx, arg: &[u8], width: Option<u32>) -> Result<u64, CmdError> {
    let (digits, multiplier) = match (arg.first(), width) {
        (Some(b'#'), Some(width)) => (&arg[1..], i64::from(width)),
        _ => (arg, 1),
    };
    let n = crate::util::parse_i64(digits)
        .ok_or_else(offset_error)?
        .wrapping_mul(multiplier);
    if n < 0 || (n as u64 >> 3) >= ctx.ks.config.max_string as u64 {
        return Err(offset_error());
    }
    Ok(n as u64)
}

fn bit_at(s: &[u8], offset: u64) -> bool {
    let byte = (offset >> 3) as usize;
    s.get(byte).is_some_and(|b| b & (0x80 >> (offset & 7)) != 0)
}

pub fn setbit(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let offset = bit_offset(ctx, args[2], None)?;
    let on = match args[3] {
        b"0" => false,
        b"1" => true,
        _ => return Err(CmdError::other("bit is not an integer or out of range")),
    };
    let byte = (offset >> 3) as usize;
    let (old, grows) = match ctx.get_str(args[1])? {
        Some(s) => (bit_at(s, offset), s.len() <= byte),
        None => (false, true),
    };
    if grows || old != on {
        let mut value = ctx.write_or_create::<Blob>(args[1], new_string)?;
        zero_extend(&mut value, byte + 1);
        let mask = 0x80 >> (offset & 7);
        if on {
            value[byte] |= mask;
        } else {
            value[byte] &= !mask;
        }
        drop(value);
        ctx.notify(event::STRING, "setbit", args[1]);
    }
    Ok(Reply::Int(i64::from(old)))
}

pub fn getbit(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let offset = bit_offset(ctx, args[2], None)?;
    let bit = ctx.get_str(args[1])?.is_some_and(|s| bit_at(s, offset));
    Ok(Reply::Int(i64::from(bit)))
}

/// The optional `start end [BYTE|BIT]` of BITCOUNT and BITPOS: true for BIT.
fn unit_is_bit(arg: Option<&&[u8]>) -> Result<bool, CmdError> {
    match arg {
        None => Ok(false),
        Some(a) if is(a, "BYTE") => Ok(false),
        Some(a) if is(a, "BIT") => Ok(true),
        Some(_) => Err(CmdError::Syntax),
    }
}

/// Set bits in `s` from bit `first` to bit `last`, inclusive.
fn count_bits(s: &[u8], first: u64, last: u64) -> u64 {
    let (first_byte, last_byte) = ((first >> 3) as usize, (last >> 3) as usize);
    let bytes = &s[first_byte..=last_byte];
    let mut chunks = bytes.chunks_exact(8);
    let mut count: u64 = chunks
        .by_ref()
        .map(|c| u64::from(u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])).count_ones()))
        .sum();
    count += chunks
        .remainder()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum::<u64>();
    let before = u32::from(s[first_byte]) >> (8 - (first & 7));
    let after = u32::from(s[last_byte]) & (0xff >> ((last & 7) + 1));
    count - u64::from(before.count_ones()) - u64::from(after.count_ones())
}

pub fn bitcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let Some(s) = ctx.get_str(args[1])? else {
        return Ok(Reply::Int(0));
    };
    let (start, end, bits) = match args.len() {
        2 => (0, -1, false),
        4 | 5 => {
            let (start, end) = (int_arg(args[2])?, int_arg(args[3])?);
            if start < 0 && end < 0 && start > end {
                return Ok(Reply::Int(0));
            }
            (start, end, unit_is_bit(args.get(4))?)
        }
        _ => return Err(CmdError::Syntax),
    };
    let total = if bits { s.len() * 8 } else { s.len() };
    let Some((first, last)) = clamp_range(start, end, total) else {
        return Ok(Reply::Int(0));
    };
    let (first, last) = if bits {
        (first as u64, last as u64)
    } else {
        (first as u64 * 8, last as u64 * 8 + 7)
    };
    Ok(Reply::Int(count_bits(s, first, last) as i64))
}

/// The first bit equal to `bit` from bit `first` to bit `last` (inclusive) of `s`.
fn find_bit(s: &[u8], bit: bool, first: u64, last: u64) -> Option<u64> {
    let skip: u8 = if bit { 0x00 } else { 0xff };
    let mut i = first;
    while i <= last {
        let byte = (i >> 3) as usize;
        if i & 7 == 0 && i + 63 <= last {
            let word = &s[byte..byte + 8];
            if word.iter().all(|&b| b == skip) {
                i += 64;
                continue;
            }
        }
        if i & 7 == 0 && i + 7 <= last {
            if s[byte] == skip {
                i += 8;
                continue;
            }
            let b = if bit { s[byte] } else { !s[byte] };
            return Some(i + u64::from(b.leading_zeros()));
        }
        if bit_at(s, i) == bit {
            return Some(i);
        }
        i += 1;
    }
    None
}

pub fn bitpos(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let bit = match int_arg(args[2])? {
        0 => false,
        1 => true,
        _ => return Err(CmdError::other("The bit argument must be 1 or 0.")),
    };
    let Some(s) = ctx.get_str(args[1])? else {
        return Ok(Reply::Int(if bit { -1 } else { 0 }));
    };
    if args.len() > 6 {
        return Err(CmdError::Syntax);
    }
    let start = args.get(3).map(|a| int_arg(a)).transpose()?.unwrap_or(0);
    let bits = unit_is_bit(args.get(5))?;
    let end = args.get(4).map(|a| int_arg(a)).transpose()?;
    let total = if bits { s.len() * 8 } else { s.len() };
    let Some((first, last)) = clamp_range(start, end.unwrap_or(-1), total) else {
        return Ok(Reply::Int(-1));
    };
    let (first, last) = if bits {
        (first as u64, last as u64)
    } else {
        (first as u64 * 8, last as u64 * 8 + 7)
    };
    Ok(Reply::Int(match find_bit(s, bit, first, last) {
        Some(pos) => pos as i64,
        // Looking for a clear bit in the rest of the string: the first bit past its end.
        None if !bit && end.is_none() => s.len() as i64 * 8,
        None => -1,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

pub fn bitop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let op = [
        ("AND", BitOp::And),
        ("OR", BitOp::Or),
        ("XOR", BitOp::Xor),
        ("NOT", BitOp::Not),
    ]
    .into_iter()
    .find(|(name, _)| is(args[1], name))
    .map(|(_, op)| op)
    .ok_or(CmdError::Syntax)?;
    if op == BitOp::Not && args.len() != 4 {
        return Err(CmdError::other(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let (dest, sources) = (args[2], &args[3..]);
    let mut result: Vec<u8> = Vec::new();
    for (i, key) in sources.iter().enumerate() {
        let src: &[u8] = ctx.read_source::<Blob>(key)?.map_or(&[][..], |s| &s[..]);
        if i == 0 {
            result.extend_from_slice(src);
            if op == BitOp::Not {
                result.iter_mut().for_each(|b| *b = !*b);
            }
            continue;
        }
        if result.len() < src.len() {
            result.resize(src.len(), 0);
        }
        match op {
            BitOp::And => {
                let (common, rest) = result.split_at_mut(src.len());
                common.iter_mut().zip(src).for_each(|(r, s)| *r &= s);
                rest.fill(0);
            }
            BitOp::Or => result.iter_mut().zip(src).for_each(|(r, s)| *r |= s),
            BitOp::Xor => result.iter_mut().zip(src).for_each(|(r, s)| *r ^= s),
            BitOp::Not => {}
        }
    }
    let len = result.len() as i64;
    let stored = (len > 0).then(|| Value::Str(Blob::from_vec(result)));
    ctx.store_result(dest, stored, event::STRING, "set");
    Ok(Reply::Int(len))
}

/// What BITFIELD does when a value does not fit its field.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One BITFIELD operation on a field of `width` bits at bit `offset`.
#[derive(Debug, Clone, Copy)]
struct Field {
    op: FieldOp,
    signed: bool,
    width: u32,
    offset: u64,
    overflow: Overflow,
}

fn field_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let error = || {
        CmdError::other(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let (signed, max) = match arg.first() {
        Some(b'i') => (true, 64),
        Some(b'u') => (false, 63),
        _ => return Err(error()),
    };
    let width = crate::util::parse_i64(&arg[1..])
        .filter(|w| (1..=max).contains(w))
        .ok_or_else(error)?;
    Ok((signed, width as u32))
}

/// Parses BITFIELD's operations, all before any runs.
fn parse_fields(ctx: &Ctx, args: &[&[u8]]) -> Result<Vec<Field>, CmdError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let (name, left) = (args[i], args.len() - i - 1);
        if is(name, "OVERFLOW") && left >= 1 {
            overflow = [
                ("WRAP", Overflow::Wrap),
                ("SAT", Overflow::Sat),
                ("FAIL", Overflow::Fail),
            ]
            .into_iter()
            .find(|(n, _)| is(args[i + 1], n))
            .map(|(_, o)| o)
            .ok_or_else(|| CmdError::other("Invalid OVERFLOW type specified"))?;
            i += 2;
            continue;
        }
        let get = is(name, "GET") && left >= 2;
        let write = (is(name, "SET") || is(name, "INCRBY")) && left >= 3;
        if !get && !write {
            return Err(CmdError::Syntax);
        }
        let (signed, width) = field_type(args[i + 1])?;
        let offset = bit_offset(ctx, args[i + 2], Some(width))?;
        let op = if get {
            FieldOp::Get
        } else if is(name, "SET") {
            FieldOp::Set(int_arg(args[i + 3])?)
        } else {
            FieldOp::IncrBy(int_arg(args[i + 3])?)
        };
        fields.push(Field {
            op,
            signed,
            width,
            offset,
            overflow,
        });
        i += if get { 3 } else { 4 };
    }
    Ok(fields)
}

/// A string as BITFIELD sees it while it runs: the stored bytes, with the bytes written by
/// the operations so far laid over them (kept apart until the end, so that a command that
/// changes nothing does not write the key).
struct Overlay<'a> {
    base: &'a [u8],
    written: BTreeMap<usize, u8>,
}

impl Overlay<'_> {
    fn byte(&self, i: usize) -> u8 {
        match self.written.get(&i) {
            Some(&b) => b,
            None => self.base.get(i).copied().unwrap_or(0),
        }
    }

    /// The `width` bits at `offset`, as an unsigned number.
    fn get(&self, offset: u64, width: u32) -> u64 {
        (offset..offset + u64::from(width)).fold(0, |v, bit| {
            let on = self.byte((bit >> 3) as usize) & (0x80 >> (bit & 7)) != 0;
            (v << 1) | u64::from(on)
        })
    }

    fn set(&mut self, offset: u64, width: u32, value: u64) {
        for k in 0..u64::from(width) {
            let bit = offset + k;
            let byte = (bit >> 3) as usize;
            let mask = 0x80 >> (bit & 7);
            let current = self.byte(byte);
            let on = (value >> (u64::from(width) - 1 - k)) & 1 == 1;
            self.written
                .insert(byte, if on { current | mask } else { current & !mask });
        }
    }

    fn get_signed(&self, offset: u64, width: u32) -> i64 {
        let v = self.get(offset, width);
        if width < 64 && v & (1 << (width - 1)) != 0 {
            (v | (u64::MAX << width)) as i64
        } else {
            v as i64
        }
    }
}

/// Redis's overflow check for a signed field: `value + incr` against a `width`-bit field.
/// None if it fits; else the value to write (for WRAP and SAT). Its wrapping arithmetic is
/// Redis's, quirks included (SAT of a SET far below the minimum gives the maximum).
fn signed_overflow(value: i64, incr: i64, width: u32, overflow: Overflow) -> Option<i64> {
    let max = if width == 64 {
        i64::MAX
    } else {
        (1i64 << (width - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let up = value > max
        || (width != 64 && incr > max_incr)
        || (value >= 0 && incr > 0 && incr > max_incr);
    let down = value < min
        || (width != 64 && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr);
    if !up && !down {
        return None;
    }
    Some(match overflow {
        Overflow::Wrap => {
            let sum = (value as u64).wrapping_add(incr as u64);
            if width == 64 {
                sum as i64
            } else if sum & (1 << (width - 1)) != 0 {
                (sum | (u64::MAX << width)) as i64
            } else {
                (sum & !(u64::MAX << width)) as i64
            }
        }
        _ if up => max,
        _ => min,
    })
}

/// Redis's overflow check for an unsigned field (width at most 63).
fn unsigned_overflow(value: u64, incr: i64, width: u32, overflow: Overflow) -> Option<u64> {
    let max = (1u64 << width) - 1;
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let up = value > max || (incr > 0 && incr > max_incr);
    let down = !up && incr < 0 && incr < min_incr;
    if !up && !down {
        return None;
    }
    Some(match overflow {
        Overflow::Wrap => value.wrapping_add(incr as u64) & max,
        _ if up => max,
        _ => 0,
    })
}

/// Runs one field operation: its reply (None when FAIL refused it), and whether it wrote a
/// different value.
fn run_field(bits: &mut Overlay, f: &Field) -> (Option<i64>, bool) {
    let (argument, incr) = match f.op {
        FieldOp::Get => {
            let value = if f.signed {
                bits.get_signed(f.offset, f.width)
            } else {
                bits.get(f.offset, f.width) as i64
            };
            return (Some(value), false);
        }
        FieldOp::Set(v) => (v, false),
        FieldOp::IncrBy(d) => (d, true),
    };
    let (old, new, overflowed) = if f.signed {
        let old = bits.get_signed(f.offset, f.width);
        let (value, add) = if incr { (old, argument) } else { (argument, 0) };
        let limited = signed_overflow(value, add, f.width, f.overflow);
        let new = limited.unwrap_or_else(|| value.wrapping_add(add));
        (old, new, limited.is_some())
    } else {
        let old = bits.get(f.offset, f.width);
        let (value, add) = if incr {
            (old, argument)
        } else {
            (argument as u64, 0)
        };
        let limited = unsigned_overflow(value, add, f.width, f.overflow);
        let new = limited.unwrap_or_else(|| value.wrapping_add(add as u64));
        (old as i64, new as i64, limited.is_some())
    };
    if overflowed && f.overflow == Overflow::Fail {
        return (None, false);
    }
    bits.set(f.offset, f.width, new as u64);
    (Some(if incr { new } else { old }), old != new)
}

fn bitfield_generic(ctx: &mut Ctx, args: &[&[u8]], readonly: bool) -> CmdResult {
    let fields = parse_fields(ctx, args)?;
    let writes = fields.iter().any(|f| f.op != FieldOp::Get);
    if readonly && writes {
        return Err(CmdError::other(
            "BITFIELD_RO only supports the GET subcommand",
        ));
    }
    // The string as long as the highest bit a SET or INCRBY names needs it.
    let needed = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| ((f.offset + u64::from(f.width) - 1) >> 3) as usize + 1)
        .max()
        .unwrap_or(0);
    // Only GETs: a read, as Redis looks it up.
    let stored = if writes {
        ctx.get_str(args[1])?
    } else {
        ctx.read_source::<Blob>(args[1])?
    };
    let grows = writes && stored.is_none_or(|s| s.len() < needed);
    let mut bits = Overlay {
        base: stored.map_or(&[][..], |s| &s[..]),
        written: BTreeMap::new(),
    };
    let mut replies = Vec::with_capacity(fields.len());
    let mut changed = grows;
    for field in &fields {
        let (reply, wrote) = run_field(&mut bits, field);
        changed |= wrote;
        replies.push(reply.map_or(Reply::Null, Reply::Int));
    }
    let written = bits.written;
    if changed {
        let mut value = ctx.write_or_create::<Blob>(args[1], new_string)?;
        zero_extend(&mut value, needed);
        for (i, b) in written {
            value[i] = b;
        }
        drop(value);
        ctx.notify(event::STRING, "setbit", args[1]);
    }
    Ok(Reply::Array(replies))
}

pub fn bitfield(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

pub fn bitfield_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bits_in_ranges() {
        let s = b"foobar";
        let all: u64 = s.iter().map(|b| u64::from(b.count_ones())).sum();
        assert_eq!(count_bits(s, 0, 47), all);
        assert_eq!(count_bits(b"\xff", 1, 6), 6);
        assert_eq!(
            count_bits(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 3, 77),
            75
        );
        assert_eq!(count_bits(b"\x80\x01", 0, 0), 1);
        assert_eq!(count_bits(b"\x80\x01", 1, 14), 0);
    }

    #[test]
    fn finds_bits() {
        assert_eq!(find_bit(b"\x00\x00\x01", true, 0, 23), Some(23));
        assert_eq!(find_bit(b"\xff\xff\xff", false, 0, 23), None);
        assert_eq!(find_bit(b"\xff\xf0\x00", false, 0, 23), Some(12));
        assert_eq!(find_bit(b"\x00\xff\x00", true, 9, 15), Some(9));
        let long = [0u8; 40];
        let mut with_one = long;
        with_one[33] = 0x10;
        assert_eq!(find_bit(&with_one, true, 5, 319), Some(33 * 8 + 3));
        assert_eq!(find_bit(&long, true, 0, 319), None);
    }

    #[test]
    fn overflow_follows_redis() {
        // u8: 100 + 257 wraps to 101; saturates at 255; SET -1 saturates up (a u64 cast).
        assert_eq!(unsigned_overflow(100, 257, 8, Overflow::Wrap), Some(101));
        assert_eq!(unsigned_overflow(100, 257, 8, Overflow::Sat), Some(255));
        assert_eq!(unsigned_overflow(10, -20, 8, Overflow::Sat), Some(0));
        assert_eq!(unsigned_overflow(u64::MAX, 0, 8, Overflow::Sat), Some(255));
        assert_eq!(unsigned_overflow(10, 5, 8, Overflow::Wrap), None);
        // i8: 100 + 257 wraps to 101, saturates to 127; -128 below.
        assert_eq!(signed_overflow(100, 257, 8, Overflow::Wrap), Some(101));
        assert_eq!(signed_overflow(100, 257, 8, Overflow::Sat), Some(127));
        assert_eq!(signed_overflow(-100, -255, 8, Overflow::Sat), Some(-128));
        assert_eq!(signed_overflow(255, 0, 8, Overflow::Wrap), Some(-1));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            Some(i64::MIN)
        );
        assert_eq!(signed_overflow(5, 5, 64, Overflow::Wrap), None);
    }

    #[test]
    fn overlay_reads_its_writes() {
        let base = [0u8; 1];
        let mut o = Overlay {
            base: &base,
            written: BTreeMap::new(),
        };
        o.set(4, 8, 0xab);
        assert_eq!(o.get(4, 8), 0xab);
        assert_eq!(o.get(0, 16), 0x0ab0);
        o.set(0, 8, 0xff);
        assert_eq!(o.get_signed(0, 8), -1);
        assert_eq!(o.get_signed(4, 4), -1);
    }
}
