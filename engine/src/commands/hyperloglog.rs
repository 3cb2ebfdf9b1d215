//! HyperLogLog commands (PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST) over Redis 7.0's own
//! representation, byte for byte: a string starting "HYLL", 16384 six-bit registers held
//! sparse (run-length opcodes) until they outgrow hll-sparse-max-bytes or a register passes
//! 32, dense after, and a cached cardinality in the header. So a HyperLogLog moved between
//! Redis and CacheDesk by DUMP/RESTORE, RDB or AOF counts the same on both sides.

use super::{event, is, CmdError, CmdResult, Ctx};
use crate::keyspace::{Blob, Value};
use crate::protocol::Reply;

const REGISTERS: usize = 1 << 14;
const INDEX_MASK: u64 = REGISTERS as u64 - 1;
const HEADER: usize = 16;
const DENSE_LEN: usize = HEADER + REGISTERS * 6 / 8;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
/// The highest register value a sparse VAL opcode holds.
const SPARSE_VAL_MAX: u8 = 32;
const SEED: u64 = 0xadc83b19;

/// A HyperLogLog whose bytes do not decode (a body that does not cover the registers).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Corrupt;

fn not_hll() -> CmdError {
    CmdError::Coded("WRONGTYPE Key is not a valid HyperLogLog string value.".into())
}

fn corrupted() -> CmdError {
    CmdError::Coded("INVALIDOBJ Corrupted HLL object detected".into())
}

impl From<Corrupt> for CmdError {
    fn from(_: Corrupt) -> CmdError {
        corrupted()
    }
}

/// Checks that a string is a HyperLogLog as Redis's isHLLObjectOrReply does: the header,
/// a known encoding, and the exact length if dense (a sparse body is checked as it is read).
fn check(s: &[u8]) -> Result<(), CmdError> {
    let valid = s.len() >= HEADER
        && &s[..4] == b"HYLL"
        && s[4] <= SPARSE
        && (s[4] == SPARSE || s.len() == DENSE_LEN);
    if valid {
        Ok(())
    } else {
        Err(not_hll())
    }
}

/// A new, empty HyperLogLog: sparse, one XZERO opcode covering every register.
fn new_hll() -> Vec<u8> {
    let mut s = vec![0u8; HEADER];
    s[..4].copy_from_slice(b"HYLL");
    s[4] = SPARSE;
    s.extend_from_slice(&xzero(REGISTERS));
    s
}

fn invalidate_cache(s: &mut [u8]) {
    s[15] |= 0x80;
}

fn cached(s: &[u8]) -> Option<u64> {
    (s[15] & 0x80 == 0).then(|| u64::from_le_bytes(s[8..16].try_into().unwrap_or([0; 8])))
}

/// MurmurHash64A, as Redis's copy of it (blocks read little-endian on every platform).
fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4a7935bd1e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in blocks.by_ref() {
        let mut k = u64::from_le_bytes(block.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in, and the value it offers it: one more than the
/// trailing zeros of the rest of its hash (1..=51).
fn register_of(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, SEED);
    let index = (hash & INDEX_MASK) as usize;
    let rest = (hash >> 14) | (1 << 50);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Dense register `i`: six bits, packed from the least significant bit of each byte on.
fn dense_get(s: &[u8], i: usize) -> u8 {
    let bit = i * 6;
    let (byte, shift) = (HEADER + bit / 8, bit % 8);
    let b0 = u16::from(s[byte]);
    let b1 = u16::from(s.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> shift) | (b1 << (8 - shift))) & 63) as u8
}

fn dense_put(s: &mut [u8], i: usize, value: u8) {
    let bit = i * 6;
    let (byte, shift) = (HEADER + bit / 8, bit % 8);
    let v = u16::from(value);
    s[byte] = ((u16::from(s[byte]) & !(63 << shift)) | (v << shift)) as u8;
    if let Some(next) = s.get_mut(byte + 1) {
        *next = ((u16::from(*next) & !(63 >> (8 - shift))) | (v >> (8 - shift))) as u8;
    }
}

/// Raises a dense register to `count`; true if it grew.
fn dense_raise(s: &mut [u8], i: usize, count: u8) -> bool {
    let grew = count > dense_get(s, i);
    if grew {
        dense_put(s, i, count);
    }
    grew
}

/// One sparse opcode: ZERO (1 byte, runs of 1..=64), XZERO (2 bytes, up to 16384) or VAL
/// (1 byte, a value of 1..=32 for 1..=4 registers).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Opcode {
    value: u8,
    run: usize,
    len: usize,
}

fn opcode_at(s: &[u8], p: usize) -> Opcode {
    let b = s[p];
    match b & 0xc0 {
        0x00 => Opcode {
            value: 0,
            run: usize::from(b & 0x3f) + 1,
            len: 1,
        },
        0x40 => Opcode {
            value: 0,
            // A truncated XZERO reads its missing byte as 0, as Redis reads the terminator.
            run: ((usize::from(b & 0x3f) << 8) | usize::from(s.get(p + 1).copied().unwrap_or(0)))
                + 1,
            len: 2,
        },
        _ => Opcode {
            value: ((b >> 2) & 0x1f) + 1,
            run: usize::from(b & 0x03) + 1,
            len: 1,
        },
    }
}

fn xzero(run: usize) -> [u8; 2] {
    let l = run - 1;
    [0x40 | (l >> 8) as u8, (l & 0xff) as u8]
}

fn val(value: u8, run: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (run - 1) as u8
}

/// Appends the opcode for a run of zero registers: ZERO up to 64, XZERO beyond.
fn push_zeros(seq: &mut Vec<u8>, run: usize) {
    if run > 64 {
        seq.extend_from_slice(&xzero(run));
    } else {
        seq.push((run - 1) as u8);
    }
}

/// Converts a sparse HyperLogLog to dense in place (the header, cache included, kept).
fn to_dense(s: &mut Vec<u8>) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_LEN];
    dense[..HEADER].copy_from_slice(&s[..HEADER]);
    dense[4] = DENSE;
    let mut idx = 0;
    let mut p = HEADER;
    while p < s.len() {
        let op = opcode_at(s, p);
        if op.value > 0 {
            if idx + op.run > REGISTERS {
                break;
            }
            for r in idx..idx + op.run {
                dense_put(&mut dense, r, op.value);
            }
        }
        idx += op.run;
        p += op.len;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    *s = dense;
    Ok(())
}

/// Raises register `index` of a sparse HyperLogLog to `count`, as Redis's hllSparseSet:
/// the opcode covering it is split, neighbouring equal values merged, and the whole turned
/// dense when the value does not fit a VAL or the string would pass `max_bytes`.
fn sparse_raise(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, Corrupt> {
    if count > SPARSE_VAL_MAX {
        return promote(s, index, count);
    }
    let (mut p, mut first, mut prev, mut span) = (HEADER, 0, None, 0);
    while p < s.len() {
        let op = opcode_at(s, p);
        span = op.run;
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += op.len;
        first += span;
    }
    if span == 0 || p >= s.len() {
        return Err(Corrupt);
    }
    let op = opcode_at(s, p);
    if op.value >= count {
        return Ok(false);
    }
    if op.run == 1 && op.len == 1 {
        s[p] = val(count, 1);
    } else {
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if op.value == 0 {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        } else {
            if index != first {
                seq.push(val(op.value, index - first));
            }
            seq.push(val(count, 1));
            if index != last {
                seq.push(val(op.value, last - index));
            }
        }
        let new_len = s.len() + seq.len() - op.len;
        if seq.len() > op.len && new_len > max_bytes {
            return promote(s, index, count);
        }
        let tail = (p + op.len).min(s.len());
        s.splice(p..tail, seq);
        s.truncate(new_len);
    }
    // Merge runs of equal values the change made adjacent, from the opcode before it.
    let mut q = prev.unwrap_or(HEADER);
    for _ in 0..5 {
        if q >= s.len() {
            break;
        }
        let op = opcode_at(s, q);
        if op.value > 0 && q + 1 < s.len() && s[q + 1] & 0x80 != 0 {
            let next = opcode_at(s, q + 1);
            if next.value == op.value && op.run + next.run <= 4 {
                s[q + 1] = val(op.value, op.run + next.run);
                s.remove(q);
                continue;
            }
        }
        q += op.len;
    }
    invalidate_cache(s);
    Ok(true)
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(s)?;
    dense_raise(s, index, count);
    Ok(true)
}

/// Adds an element; true if a register grew.
fn add(s: &mut Vec<u8>, element: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = register_of(element);
    if s[4] == DENSE {
        Ok(dense_raise(s, index, count))
    } else {
        sparse_raise(s, index, count, max_bytes)
    }
}

/// Raises each of `max` to the HyperLogLog's register, as Redis's hllMerge.
fn merge_into(max: &mut [u8], s: &[u8]) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(s, i));
        }
        return Ok(());
    }
    let (mut idx, mut p) = (0, HEADER);
    while p < s.len() {
        let op = opcode_at(s, p);
        if op.value > 0 {
            if idx + op.run > REGISTERS {
                break;
            }
            for m in &mut max[idx..idx + op.run] {
                *m = (*m).max(op.value);
            }
        }
        idx += op.run;
        p += op.len;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// How many registers hold each value.
fn histogram(s: &[u8]) -> Result<[u32; 64], Corrupt> {
    let mut h = [0u32; 64];
    if s[4] == DENSE {
        for i in 0..REGISTERS {
            h[usize::from(dense_get(s, i))] += 1;
        }
        return Ok(h);
    }
    let (mut idx, mut p) = (0, HEADER);
    while p < s.len() {
        let op = opcode_at(s, p);
        h[usize::from(op.value)] += op.run as u32;
        idx += op.run;
        p += op.len;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    Ok(h)
}

/// The cardinality estimate from a register histogram: Ertl's improved raw estimator, in
/// Redis 7.0's order of floating-point operations.
fn estimate(h: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(h[51])) / m);
    for j in (1..=50).rev() {
        z += f64::from(h[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(h[0]) / m);
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    ((ALPHA_INF * m) * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        let t = 1.0 - x;
        z -= t * t * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

/// A key's HyperLogLog, checked, as bytes to work on; None if the key is missing.
fn load(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    match ctx.get_str(key)? {
        None => Ok(None),
        Some(s) => {
            check(s)?;
            Ok(Some(s.to_vec()))
        }
    }
}

/// Stores a HyperLogLog back under its key, keeping the key's TTL.
fn store(ctx: &mut Ctx, key: &[u8], hll: Vec<u8>) {
    let db = ctx.db();
    ctx.ks
        .set_keep_ttl(db, key, Value::Str(Blob::from_vec(hll)));
}

pub fn pfadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let max_bytes = ctx.ks.config.encodings.hll_sparse_max_bytes;
    // A dense HyperLogLog (12 KB) is raised where it is, and only if a register grows (a
    // PFADD that changes nothing is no write); a sparse one, small, is rebuilt.
    let raises: Option<Vec<(usize, u8)>> = match ctx.get_str(args[1])? {
        Some(s) => {
            check(s)?;
            (s[4] == DENSE).then(|| {
                args[2..]
                    .iter()
                    .map(|e| register_of(e))
                    .filter(|&(i, count)| dense_get(s, i) < count)
                    .collect()
            })
        }
        None => None,
    };
    if let Some(raises) = raises {
        if raises.is_empty() {
            return Ok(Reply::Int(0));
        }
        let mut hll = ctx.write_or_create::<Blob>(args[1], || Value::Str(Blob::new()))?;
        for (i, count) in raises {
            dense_raise(&mut hll, i, count);
        }
        invalidate_cache(&mut hll);
        drop(hll);
        ctx.notify(event::STRING, "pfadd", args[1]);
        return Ok(Reply::Int(1));
    }
    let (mut hll, mut updated) = match load(ctx, args[1])? {
        Some(hll) => (hll, false),
        None => (new_hll(), true),
    };
    for element in &args[2..] {
        updated |= add(&mut hll, element, max_bytes)?;
    }
    if updated {
        invalidate_cache(&mut hll);
        store(ctx, args[1], hll);
        ctx.notify(event::STRING, "pfadd", args[1]);
    }
    Ok(Reply::Int(i64::from(updated)))
}

pub fn pfcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 2 {
        let mut max = vec![0u8; REGISTERS];
        for key in &args[1..] {
            if let Some(s) = ctx.get_str(key)? {
                check(s)?;
                merge_into(&mut max, s)?;
            }
        }
        let mut h = [0u32; 64];
        for &r in &max {
            h[usize::from(r)] += 1;
        }
        return Ok(Reply::Int(estimate(&h) as i64));
    }
    let count = match ctx.get_str(args[1])? {
        None => return Ok(Reply::Int(0)),
        Some(hll) => {
            check(hll)?;
            if let Some(count) = cached(hll) {
                return Ok(Reply::Int(count as i64));
            }
            estimate(&histogram(hll)?)
        }
    };
    // The count is cached in the value, which is a write (logged, as Redis propagates it).
    let mut hll = ctx.write_or_create::<Blob>(args[1], || Value::Str(Blob::new()))?;
    hll[8..16].copy_from_slice(&count.to_le_bytes());
    drop(hll);
    if ctx.aof_on() {
        ctx.propagate(args);
    }
    Ok(Reply::Int(count as i64))
}

pub fn pfmerge(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let max_bytes = ctx.ks.config.encodings.hll_sparse_max_bytes;
    let mut max = vec![0u8; REGISTERS];
    let mut dense = false;
    let mut dest = None;
    for (i, key) in args[1..].iter().enumerate() {
        if let Some(s) = ctx.read_source::<Blob>(key)? {
            check(s)?;
            dense |= s[4] == DENSE;
            merge_into(&mut max, s)?;
            if i == 0 {
                dest = Some(s.to_vec());
            }
        }
    }
    let mut hll = dest.unwrap_or_else(new_hll);
    if dense {
        to_dense(&mut hll)?;
    }
    for (i, &count) in max.iter().enumerate().filter(|(_, &c)| c > 0) {
        if hll[4] == DENSE {
            dense_raise(&mut hll, i, count);
        } else {
            // As in Redis, a register the sparse form cannot take is passed over.
            let _ = sparse_raise(&mut hll, i, count, max_bytes);
        }
    }
    invalidate_cache(&mut hll);
    store(ctx, args[1], hll);
    ctx.notify(event::STRING, "pfadd", args[1]);
    Ok(Reply::OK)
}

pub fn pfdebug(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (sub, key) = (args[1], args[2]);
    let Some(mut hll) = load(ctx, key)? else {
        return Err(CmdError::other("The specified key does not exist"));
    };
    if is(sub, "GETREG") {
        if hll[4] == SPARSE {
            to_dense(&mut hll)?;
            store(ctx, key, hll.clone());
        }
        let registers = (0..REGISTERS)
            .map(|i| Reply::Int(i64::from(dense_get(&hll, i))))
            .collect();
        Ok(Reply::Array(registers))
    } else if is(sub, "DECODE") {
        if hll[4] == DENSE {
            return Err(CmdError::other("HLL encoding is not sparse"));
        }
        let mut text = String::new();
        let mut p = HEADER;
        while p < hll.len() {
            let op = opcode_at(&hll, p);
            match (op.value, op.len) {
                (0, 1) => text.push_str(&format!("z:{} ", op.run)),
                (0, _) => text.push_str(&format!("Z:{} ", op.run)),
                (v, _) => text.push_str(&format!("v:{},{} ", v, op.run)),
            }
            p += op.len;
        }
        Ok(Reply::bulk(text.trim()))
    } else if is(sub, "ENCODING") {
        Ok(Reply::Status(if hll[4] == DENSE {
            "dense"
        } else {
            "sparse"
        }))
    } else if is(sub, "TODENSE") {
        let converted = hll[4] == SPARSE;
        if converted {
            to_dense(&mut hll)?;
            store(ctx, key, hll);
        }
        Ok(Reply::Int(i64::from(converted)))
    } else {
        Err(CmdError::other(format!(
            "Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(sub)
        )))
    }
}

/// PFSELFTEST: dense registers read back what was written, and sparse and dense forms of
/// the same elements count alike and within the expected error, up to ten million elements
/// (as Redis does).
pub fn pfselftest(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let failed = |what: String| Err(CmdError::other(format!("TESTFAILED {what}")));
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::from_os_rng();
    let mut dense = new_hll();
    if to_dense(&mut dense).is_err() {
        return failed("new HyperLogLog does not convert".into());
    }
    for _ in 0..100 {
        let values: Vec<u8> = (0..REGISTERS).map(|_| rng.random_range(0..64u8)).collect();
        for (i, &v) in values.iter().enumerate() {
            dense_put(&mut dense, i, v);
        }
        for (i, &v) in values.iter().enumerate() {
            let got = dense_get(&dense, i);
            if got != v {
                return failed(format!("Register {i} should be {v} but is {got}"));
            }
        }
    }
    let max_bytes = ctx.ks.config.encodings.hll_sparse_max_bytes;
    let (mut dense, mut sparse) = (new_hll(), new_hll());
    let _ = to_dense(&mut dense);
    let seed: u64 = rng.random();
    let mut checkpoint = 1u64;
    for j in 1..=10_000_000u64 {
        let element = (j ^ seed).to_le_bytes();
        add(&mut dense, &element, max_bytes)?;
        add(&mut sparse, &element, max_bytes)?;
        if j != checkpoint {
            continue;
        }
        checkpoint *= 10;
        if (j as usize) < max_bytes / 2 && sparse[4] != SPARSE {
            return failed("sparse encoding not used".into());
        }
        let count = estimate(&histogram(&dense)?);
        if count != estimate(&histogram(&sparse)?) {
            return failed("dense/sparse disagree".into());
        }
        let relative = 1.04 / (REGISTERS as f64).sqrt();
        let mut max_error = (relative * 6.0 * j as f64).ceil() as u64;
        if j == 10 {
            max_error = 1;
        }
        let error = count.abs_diff(j);
        if error > max_error {
            return failed(format!("Too big error. card:{count} abserr:{error}"));
        }
    }
    Ok(Reply::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &[u8]) -> String {
        s.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hashes_as_redis() {
        assert_eq!(murmur64a(b"a", SEED), 0x53d2470a9b43b1a7);
        assert_eq!(murmur64a(b"", SEED), 0xd8dfea6585bc9732);
        assert_eq!(murmur64a(b"foobarbaz", SEED), 0xd65160dd721a9d88);
        assert_eq!(register_of(b"a"), (12711, 2));
        assert_eq!(register_of(b"hello"), (9216, 1));
    }

    #[test]
    fn sparse_bytes_match_redis() {
        let mut h = new_hll();
        for e in [&b"a"[..], b"b", b"c"] {
            add(&mut h, e, 3000).unwrap();
        }
        invalidate_cache(&mut h);
        let header = "48594c4c010000000000000000000080";
        assert_eq!(hex(&h), format!("{header}60f38050b1844bfb80425a"));
        let mut merged = new_hll();
        for e in [&b"e6"[..], b"e340", b"e785"] {
            add(&mut merged, e, 3000).unwrap();
        }
        assert_eq!(hex(&merged), "48594c4c0100000000000000000000805c208263db");
    }

    #[test]
    fn counts_match_redis() {
        let mut h = new_hll();
        let mut expected = [
            (10, 10),
            (100, 100),
            (1000, 1001),
            (10000, 9988),
            (100000, 99562),
        ]
        .into_iter()
        .peekable();
        for n in 1..=100000u64 {
            add(&mut h, n.to_string().as_bytes(), 3000).unwrap();
            if let Some(&(at, count)) = expected.peek() {
                if n == at {
                    assert_eq!(estimate(&histogram(&h).unwrap()), count, "at {n}");
                    expected.next();
                }
            }
        }
        assert_eq!(h.len(), DENSE_LEN);
    }

    #[test]
    fn corrupt_bodies_are_errors() {
        let mut h = new_hll();
        add(&mut h, b"a", 3000).unwrap();
        h.extend_from_slice(b"hello");
        assert_eq!(histogram(&h), Err(Corrupt));
        let mut short = new_hll();
        short.truncate(HEADER);
        assert_eq!(add(&mut short, b"a", 3000), Err(Corrupt));
        assert!(check(b"HYLL\x00rest").is_err());
    }
}
