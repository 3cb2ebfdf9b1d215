//! String commands: GET/SET and friends, counters, ranges.

use super::{event, int_arg, is, CmdError, CmdResult, Ctx};
use crate::keyspace::{Blob, Value};
use crate::long_double::LongDouble;
use crate::protocol::Reply;

fn bulk_of(s: Option<&Blob>) -> Reply {
    s.map_or(Reply::Null, Reply::bulk)
}

pub fn get(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(bulk_of(ctx.get_str(args[1])?))
}

/// An expiry option as SET/GETEX take them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expiry {
    None,
    At(u64),
    Keep,
    Persist,
}

/// Converts a relative or absolute time to an absolute ms time, as Redis validates it.
fn expiry_at(
    now: u64,
    amount: i64,
    unit_ms: i64,
    absolute: bool,
    cmd: &'static str,
) -> Result<u64, CmdError> {
    if amount <= 0 {
        return Err(CmdError::InvalidExpire(cmd));
    }
    let ms = amount
        .checked_mul(unit_ms)
        .ok_or(CmdError::InvalidExpire(cmd))?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now as i64)
            .ok_or(CmdError::InvalidExpire(cmd))?
    };
    Ok(at as u64)
}

pub fn set(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (key, value) = (&args[1], &args[2]);
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut expiry = Expiry::None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let next = args.get(i + 1);
        let unit = if is(a, "EX") {
            Some((1000, false))
        } else if is(a, "PX") {
            Some((1, false))
        } else if is(a, "EXAT") {
            Some((1000, true))
        } else if is(a, "PXAT") {
            Some((1, true))
        } else {
            None
        };
        if let (Some((unit_ms, absolute)), Some(amount)) = (unit, next) {
            if expiry != Expiry::None {
                return Err(CmdError::Syntax);
            }
            let amount = int_arg(amount)?;
            expiry = Expiry::At(expiry_at(ctx.ks.now, amount, unit_ms, absolute, "set")?);
            i += 2;
            continue;
        }
        if is(a, "NX") && !xx {
            nx = true;
        } else if is(a, "XX") && !nx {
            xx = true;
        } else if is(a, "GET") {
            get = true;
        } else if is(a, "KEEPTTL") && expiry == Expiry::None {
            expiry = Expiry::Keep;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let db = ctx.db();
    let old = if get {
        ctx.read_source::<Blob>(key)?.cloned()
    } else {
        None
    };
    let exists = ctx.ks.contains(db, key);
    if (nx && exists) || (xx && !exists) {
        return Ok(if get {
            bulk_of(old.as_ref())
        } else {
            Reply::Null
        });
    }
    write_with_expiry(ctx, key, value, expiry);
    Ok(if get {
        bulk_of(old.as_ref())
    } else {
        Reply::OK
    })
}

/// Stores a string with its expiry. A relative or future time is logged to the AOF as an
/// absolute one (SET key value PXAT ms); a time already past as the deletion it is.
fn write_with_expiry(ctx: &mut Ctx, key: &[u8], value: &[u8], expiry: Expiry) {
    let db = ctx.db();
    match expiry {
        Expiry::Keep => {
            let value = ctx.string_value(key, value);
            ctx.ks.set_keep_ttl(db, key, value);
            ctx.notify(event::STRING, "set", key);
        }
        Expiry::At(at) if at <= ctx.ks.now => {
            if ctx.ks.delete(db, key) {
                ctx.propagate(&[b"DEL", key]);
                ctx.notify(event::GENERIC, "del", key);
            }
        }
        Expiry::At(at) => {
            let stored = ctx.string_value(key, value);
            ctx.ks.set(db, key, stored);
            ctx.notify(event::STRING, "set", key);
            ctx.ks.set_expire(db, key, at);
            ctx.notify(event::GENERIC, "expire", key);
            if ctx.aof_on() {
                let at = at.to_string();
                ctx.propagate(&[b"SET", key, value, b"PXAT", at.as_bytes()]);
            }
        }
        Expiry::None | Expiry::Persist => {
            let value = ctx.string_value(key, value);
            ctx.ks.set(db, key, value);
            ctx.notify(event::STRING, "set", key);
        }
    }
}

pub fn mget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let replies = args[1..]
        .iter()
        .map(|k| match ctx.ks.get(db, k) {
            Some(Value::Str(s)) => Reply::bulk(s),
            _ => Reply::Null,
        })
        .collect();
    Ok(Reply::Array(replies))
}

pub fn mset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Arity("mset".into()));
    }
    let db = ctx.db();
    for pair in args[1..].chunks(2) {
        let value = ctx.string_value(pair[0], pair[1]);
        ctx.ks.set(db, pair[0], value);
        ctx.notify(event::STRING, "set", pair[0]);
    }
    Ok(Reply::OK)
}

pub fn msetnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Arity("msetnx".into()));
    }
    let db = ctx.db();
    if args[1..].chunks(2).any(|pair| ctx.ks.contains(db, pair[0])) {
        return Ok(Reply::Int(0));
    }
    for pair in args[1..].chunks(2) {
        let value = ctx.string_value(pair[0], pair[1]);
        ctx.ks.set(db, pair[0], value);
        ctx.notify(event::STRING, "set", pair[0]);
    }
    Ok(Reply::Int(1))
}

pub fn setnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    if ctx.ks.contains(db, args[1]) {
        return Ok(Reply::Int(0));
    }
    let value = ctx.string_value(args[1], args[2]);
    ctx.ks.set(db, args[1], value);
    ctx.notify(event::STRING, "set", args[1]);
    Ok(Reply::Int(1))
}

fn set_with_ttl(ctx: &mut Ctx, args: &[&[u8]], unit_ms: i64, cmd: &'static str) -> CmdResult {
    let amount = int_arg(args[2])?;
    let at = expiry_at(ctx.ks.now, amount, unit_ms, false, cmd)?;
    write_with_expiry(ctx, args[1], args[3], Expiry::At(at));
    Ok(Reply::OK)
}

pub fn setex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    set_with_ttl(ctx, args, 1000, "setex")
}

pub fn psetex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    set_with_ttl(ctx, args, 1, "psetex")
}

pub fn getset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let old = ctx.read_source::<Blob>(args[1])?.cloned();
    let db = ctx.db();
    let value = ctx.string_value(args[1], args[2]);
    ctx.ks.set(db, args[1], value);
    ctx.notify(event::STRING, "set", args[1]);
    Ok(bulk_of(old.as_ref()))
}

pub fn getdel(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let old = ctx.read_source::<Blob>(args[1])?.cloned();
    if old.is_some() {
        let db = ctx.db();
        ctx.ks.delete(db, args[1]);
        ctx.notify(event::GENERIC, "del", args[1]);
    }
    Ok(bulk_of(old.as_ref()))
}

pub fn getex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut expiry = Expiry::None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        let unit = if is(a, "EX") {
            Some((1000, false))
        } else if is(a, "PX") {
            Some((1, false))
        } else if is(a, "EXAT") {
            Some((1000, true))
        } else if is(a, "PXAT") {
            Some((1, true))
        } else {
            None
        };
        match (unit, args.get(i + 1)) {
            (Some((unit_ms, absolute)), Some(amount)) if expiry == Expiry::None => {
                let amount = int_arg(amount)?;
                expiry = Expiry::At(expiry_at(ctx.ks.now, amount, unit_ms, absolute, "getex")?);
                i += 2;
            }
            (None, _) if is(a, "PERSIST") && expiry == Expiry::None => {
                expiry = Expiry::Persist;
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let Some(value) = ctx.read_source::<Blob>(args[1])?.cloned() else {
        return Ok(Reply::Null);
    };
    let db = ctx.db();
    let key = args[1];
    match expiry {
        Expiry::At(at) if at <= ctx.ks.now => {
            ctx.ks.delete(db, key);
            ctx.propagate(&[b"DEL", key]);
            ctx.notify(event::GENERIC, "del", key);
        }
        Expiry::At(at) => {
            ctx.ks.set_expire(db, key, at);
            ctx.notify(event::GENERIC, "expire", key);
            if ctx.aof_on() {
                let at = at.to_string();
                ctx.propagate(&[b"PEXPIREAT", key, at.as_bytes()]);
            }
        }
        Expiry::Persist => {
            if ctx.ks.persist(db, key) {
                ctx.propagate(&[b"PERSIST", key]);
                ctx.notify(event::GENERIC, "persist", key);
            }
        }
        Expiry::None | Expiry::Keep => {}
    }
    Ok(Reply::bulk(&value))
}

fn incr_by(ctx: &mut Ctx, key: &[u8], delta: i64) -> CmdResult {
    // One lookup: the counter is rewritten in place (a new key starts from "0").
    let mut value = ctx.write_or_create::<Blob>(key, || Value::Str(Blob::from_slice(b"0")))?;
    let s = &mut *value;
    let current = crate::util::parse_i64(s).ok_or(CmdError::NotInteger)?;
    let next = current.checked_add(delta).ok_or(CmdError::Overflow)?;
    s.clear();
    s.extend_from_slice(itoa::Buffer::new().format(next).as_bytes());
    drop(value);
    ctx.notify(event::STRING, "incrby", key);
    Ok(Reply::Int(next))
}

pub fn incr(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    incr_by(ctx, args[1], 1)
}

pub fn decr(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    incr_by(ctx, args[1], -1)
}

pub fn incrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let delta = int_arg(args[2])?;
    incr_by(ctx, args[1], delta)
}

pub fn decrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let delta = int_arg(args[2])?;
    let delta = delta
        .checked_neg()
        .ok_or_else(|| CmdError::other("decrement would overflow"))?;
    incr_by(ctx, args[1], delta)
}

pub fn incrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let delta = LongDouble::parse(args[2]).ok_or(CmdError::NotFloat)?;
    let current = match ctx.get_str(args[1])? {
        Some(s) => LongDouble::parse(s).ok_or(CmdError::NotFloat)?,
        None => LongDouble::ZERO,
    };
    let next = current + delta;
    if !next.is_finite() {
        return Err(CmdError::other("increment would produce NaN or Infinity"));
    }
    let text = next.to_human_string();
    let db = ctx.db();
    ctx.ks
        .set_keep_ttl(db, args[1], Value::Str(Blob::from_slice(text.as_bytes())));
    // Logged as the value it produced: a replay must not redo the float arithmetic.
    ctx.propagate(&[b"SET", args[1], text.as_bytes(), b"KEEPTTL"]);
    ctx.notify(event::STRING, "incrbyfloat", args[1]);
    Ok(Reply::bulk(text))
}

pub fn append(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let current_len = ctx.get_str(args[1])?.map_or(0, |s| s.len());
    check_string_length(ctx, current_len, args[2].len())?;
    let mut value = ctx.write_or_create::<Blob>(args[1], || Value::Str(Blob::new()))?;
    let s = &mut *value;
    s.extend_from_slice(args[2]);
    let len = s.len();
    drop(value);
    ctx.notify(event::STRING, "append", args[1]);
    Ok(Reply::Int(len as i64))
}

pub fn strlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(
        ctx.get_str(args[1])?.map_or(0, |s| s.len() as i64),
    ))
}

/// Refuses a string of `len + added` bytes past proto-max-bulk-len.
fn check_string_length(ctx: &Ctx, len: usize, added: usize) -> Result<(), CmdError> {
    if len.saturating_add(added) > ctx.ks.config.max_string {
        return Err(CmdError::other(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    Ok(())
}

/// Pads a string with zero bytes to `len` bytes (if shorter).
pub fn zero_extend(s: &mut Blob, len: usize) {
    if s.len() < len {
        // Vec's resize zero-fills in bulk (SmallVec's goes byte by byte).
        let mut bytes = std::mem::take(s).into_vec();
        bytes.resize(len, 0);
        *s = Blob::from_vec(bytes);
    }
}

/// Resolves an inclusive start/end (negative from the end, an end before the start of the
/// string its first element) against `len`, as GETRANGE, BITCOUNT and BITPOS do.
/// Returns None for an empty range.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if end < 0 {
        end = 0;
    }
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

pub fn getrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let start = int_arg(args[2])?;
    let end = int_arg(args[3])?;
    let Some(s) = ctx.get_str(args[1])? else {
        return Ok(Reply::bulk(""));
    };
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::bulk(""));
    }
    Ok(match clamp_range(start, end, s.len()) {
        Some((a, b)) => Reply::bulk(&s[a..=b]),
        None => Reply::bulk(""),
    })
}

pub fn setrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let offset = int_arg(args[2])?;
    if offset < 0 {
        return Err(CmdError::other("offset is out of range"));
    }
    let offset = offset as usize;
    let patch = &args[3];
    let current_len = ctx.get_str(args[1])?.map(|s| s.len());
    if patch.is_empty() {
        return Ok(Reply::Int(current_len.unwrap_or(0) as i64));
    }
    check_string_length(ctx, offset, patch.len())?;
    let mut value = ctx.write_or_create::<Blob>(args[1], || Value::Str(Blob::new()))?;
    let s = &mut *value;
    let end = offset + patch.len();
    zero_extend(s, end);
    s[offset..end].copy_from_slice(patch);
    let len = s.len();
    drop(value);
    ctx.notify(event::STRING, "setrange", args[1]);
    Ok(Reply::Int(len as i64))
}

/// One common run LCS IDX reports: inclusive ranges in the first and the second string.
struct LcsMatch {
    a: (usize, usize),
    b: (usize, usize),
}

pub fn lcs(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let mut lens = [0usize; 2];
    for (len, key) in lens.iter_mut().zip(&args[1..3]) {
        *len = match ctx.ks.get(db, key) {
            None => 0,
            Some(Value::Str(s)) => s.len(),
            Some(_) => {
                return Err(CmdError::other(
                    "The specified keys must contain string values",
                ))
            }
        };
    }
    let (mut want_len, mut want_idx, mut with_match_len, mut min_match_len) =
        (false, false, false, 0usize);
    let mut i = 3;
    while i < args.len() {
        let a = args[i];
        if is(a, "IDX") {
            want_idx = true;
        } else if is(a, "LEN") {
            want_len = true;
        } else if is(a, "WITHMATCHLEN") {
            with_match_len = true;
        } else if is(a, "MINMATCHLEN") && i + 1 < args.len() {
            min_match_len = int_arg(args[i + 1])?.max(0) as usize;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if want_len && want_idx {
        return Err(CmdError::other(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    let [alen, blen] = lens;
    if alen >= u32::MAX as usize - 1 || blen >= u32::MAX as usize - 1 {
        return Err(CmdError::other("String too long for LCS"));
    }
    let table_bytes = (alen as u128 + 1) * (blen as u128 + 1) * 4;
    if table_bytes > ctx.ks.config.max_string as u128 {
        return Err(CmdError::other(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let a = ctx.get_str(args[1])?.cloned().unwrap_or_default();
    let b = ctx.get_str(args[2])?.cloned().unwrap_or_default();
    // table[i][j]: the length of the LCS of a[..i] and b[..j].
    let width = blen + 1;
    let mut table = vec![0u32; (alen + 1) * width];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[alen * width + blen];
    if want_len {
        return Ok(Reply::Int(i64::from(total)));
    }
    // Walk back from the ends, collecting the common bytes and (for IDX) the runs, last first.
    let mut common = Vec::with_capacity(total as usize);
    let mut matches = Vec::new();
    let mut run: Option<LcsMatch> = None;
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            common.push(a[i - 1]);
            match &mut run {
                None => {
                    run = Some(LcsMatch {
                        a: (i - 1, i - 1),
                        b: (j - 1, j - 1),
                    })
                }
                Some(r) if r.a.0 == i && r.b.0 == j => {
                    r.a.0 -= 1;
                    r.b.0 -= 1;
                }
                Some(_) => emit = true,
            }
            if run.as_ref().is_some_and(|r| r.a.0 == 0 || r.b.0 == 0) {
                emit = true;
            }
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = run.is_some();
        }
        if emit {
            if let Some(r) = run.take() {
                if min_match_len == 0 || r.a.1 - r.a.0 + 1 >= min_match_len {
                    matches.push(r);
                }
            }
        }
    }
    if !want_idx {
        common.reverse();
        return Ok(Reply::Bulk(Blob::from_vec(common)));
    }
    let range = |(start, end): (usize, usize)| {
        Reply::Array(vec![Reply::Int(start as i64), Reply::Int(end as i64)])
    };
    let matches = matches
        .into_iter()
        .map(|m| {
            let mut item = vec![range(m.a), range(m.b)];
            if with_match_len {
                item.push(Reply::Int((m.a.1 - m.a.0 + 1) as i64));
            }
            Reply::Array(item)
        })
        .collect();
    Ok(Reply::Map(vec![
        (Reply::bulk("matches"), Reply::Array(matches)),
        (Reply::bulk("len"), Reply::Int(i64::from(total))),
    ]))
}
