//! List commands, including the blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH): when no
//! list has an element they ask the connection to wait (`Ctx::block`) and are run again when
//! a list receives elements or the timeout passes.

use super::{event, int_arg, is, mpop_args, rank_range, BlockRequest, CmdError, CmdResult, Ctx};
use crate::keyspace::{Blob, List, Value};
use crate::protocol::Reply;

fn new_list() -> Value {
    Value::List(Box::default())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Left,
    Right,
}

impl End {
    fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }

    fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }
}

fn push(ctx: &mut Ctx, args: &[&[u8]], end: End, only_existing: bool) -> CmdResult {
    let mut value = if only_existing {
        match ctx.write::<List>(args[1])? {
            Some(v) => v,
            None => return Ok(Reply::Int(0)),
        }
    } else {
        ctx.write_or_create::<List>(args[1], new_list)?
    };
    let list = &mut *value;
    for item in &args[2..] {
        match end {
            End::Left => list.push_front(item),
            End::Right => list.push_back(item),
        }
    }
    let len = list.len() as i64;
    drop(value);
    ctx.notify(event::LIST, end.push_event(), args[1]);
    Ok(Reply::Int(len))
}

pub fn lpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Left, false)
}
pub fn rpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Right, false)
}
pub fn lpushx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Left, true)
}
pub fn rpushx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    push(ctx, args, End::Right, true)
}

fn pop_one(list: &mut List, end: End) -> Option<Blob> {
    match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    }
}

fn pop(ctx: &mut Ctx, args: &[&[u8]], end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Arity(
            if end == End::Left { "lpop" } else { "rpop" }.into(),
        ));
    }
    let count = match args.get(2) {
        Some(c) => {
            let n = crate::util::parse_i64(c)
                .filter(|&n| n >= 0)
                .ok_or_else(|| CmdError::other("value is out of range, must be positive"))?;
            Some(n as usize)
        }
        None => None,
    };
    let Some(mut value) = ctx.write::<List>(args[1])? else {
        return Ok(if count.is_some() {
            Reply::NullArray
        } else {
            Reply::Null
        });
    };
    let list = &mut *value;
    let reply = match count {
        None => pop_one(list, end).map_or(Reply::Null, |b| Reply::bulk(&b)),
        Some(n) => Reply::Array(
            (0..n)
                .map_while(|_| pop_one(list, end))
                .map(|b| Reply::bulk(&b))
                .collect(),
        ),
    };
    drop(value);
    if count != Some(0) {
        ctx.notify(event::LIST, end.pop_event(), args[1]);
    }
    Ok(reply)
}

pub fn lpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, End::Left)
}
pub fn rpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop(ctx, args, End::Right)
}

pub fn llen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(
        ctx.read::<List>(args[1])?.map_or(0, |l| l.len() as i64),
    ))
}

pub fn lrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let start = int_arg(args[2])?;
    let end = int_arg(args[3])?;
    let Some(list) = ctx.read::<List>(args[1])? else {
        return Ok(Reply::Array(vec![]));
    };
    Ok(Reply::Array(match rank_range(start, end, list.len()) {
        Some((a, b)) => list.iter_from(a).take(b - a + 1).map(Reply::bulk).collect(),
        None => vec![],
    }))
}

/// Resolves a possibly negative index against a length.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

pub fn lindex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let index = int_arg(args[2])?;
    let list = ctx.read::<List>(args[1])?;
    Ok(list
        .and_then(|l| resolve_index(index, l.len()).and_then(|i| l.get(i)))
        .map_or(Reply::Null, Reply::bulk))
}

pub fn lset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let index = int_arg(args[2])?;
    let Some(mut value) = ctx.write::<List>(args[1])? else {
        return Err(CmdError::NoSuchKey);
    };
    let list = &mut *value;
    let i = resolve_index(index, list.len()).ok_or(CmdError::IndexOutOfRange)?;
    list.set(i, args[3]);
    drop(value);
    ctx.notify(event::LIST, "lset", args[1]);
    Ok(Reply::OK)
}

pub fn lrem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let count = int_arg(args[2])?;
    let Some(mut value) = ctx.write::<List>(args[1])? else {
        return Ok(Reply::Int(0));
    };
    let target = &args[3];
    let removed = value.remove_matching(count, target);
    drop(value);
    if removed > 0 {
        ctx.notify(event::LIST, "lrem", args[1]);
    }
    Ok(Reply::Int(removed as i64))
}

pub fn ltrim(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let start = int_arg(args[2])?;
    let end = int_arg(args[3])?;
    let Some(mut value) = ctx.write::<List>(args[1])? else {
        return Ok(Reply::OK);
    };
    let list = &mut *value;
    match rank_range(start, end, list.len()) {
        Some((a, b)) => list.keep_range(a, b + 1),
        None => list.keep_range(0, 0),
    }
    drop(value);
    ctx.notify(event::LIST, "ltrim", args[1]);
    Ok(Reply::OK)
}

pub fn linsert(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let after = if is(args[2], "AFTER") {
        true
    } else if is(args[2], "BEFORE") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let Some(mut value) = ctx.write::<List>(args[1])? else {
        return Ok(Reply::Int(0));
    };
    let list = &mut *value;
    let Some(pos) = list.iter().position(|b| b[..] == args[3][..]) else {
        return Ok(Reply::Int(-1));
    };
    list.insert(if after { pos + 1 } else { pos }, args[4]);
    let len = list.len() as i64;
    drop(value);
    ctx.notify(event::LIST, "linsert", args[1]);
    Ok(Reply::Int(len))
}

pub fn lpos(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<usize>, 0usize);
    let mut i = 3;
    while i < args.len() {
        let Some(v) = args.get(i + 1) else {
            return Err(CmdError::Syntax);
        };
        if is(args[i], "RANK") {
            rank = int_arg(v)?;
            if rank == 0 {
                return Err(CmdError::other("RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
            if rank == i64::MIN {
                return Err(CmdError::other("value is out of range"));
            }
        } else if is(args[i], "COUNT") {
            let n = int_arg(v)?;
            if n < 0 {
                return Err(CmdError::other("COUNT can't be negative"));
            }
            count = Some(n as usize);
        } else if is(args[i], "MAXLEN") {
            let n = int_arg(v)?;
            if n < 0 {
                return Err(CmdError::other("MAXLEN can't be negative"));
            }
            maxlen = n as usize;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let Some(list) = ctx.read::<List>(args[1])? else {
        return Ok(if count.is_some() {
            Reply::Array(vec![])
        } else {
            Reply::Null
        });
    };
    let len = list.len();
    let scan_limit = if maxlen == 0 { len } else { maxlen.min(len) };
    let want = match count {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => 1,
    };
    let mut skip = rank.unsigned_abs() as usize - 1;
    let mut found = Vec::new();
    let items: Box<dyn Iterator<Item = (usize, &[u8])>> = if rank > 0 {
        Box::new(list.iter().enumerate())
    } else {
        Box::new(list.iter().enumerate().rev())
    };
    for (idx, item) in items.take(scan_limit) {
        if item == args[2] {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(idx as i64);
            if found.len() >= want {
                break;
            }
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Int).collect()),
        None => found.first().map_or(Reply::Null, |&i| Reply::Int(i)),
    })
}

fn parse_end(arg: &[u8]) -> Result<End, CmdError> {
    if is(arg, "LEFT") {
        Ok(End::Left)
    } else if is(arg, "RIGHT") {
        Ok(End::Right)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Pops from `src` and pushes onto `dst`; None if `src` is empty or missing.
fn move_element(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<Blob>, CmdError> {
    // A source of another type keeps a blocked move waiting (see `Ctx::waited_on`); a
    // destination of another type is the client's error, as in Redis.
    let serving_blocked = ctx.client.serving_blocked;
    match ctx.read::<List>(src) {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(None),
        Err(CmdError::WrongType) if serving_blocked => return Ok(None),
        Err(e) => return Err(e),
    }
    ctx.read::<List>(dst)?;
    let item = {
        let Some(mut value) = ctx.write::<List>(src)? else {
            return Ok(None);
        };
        pop_one(&mut value, from)
    };
    let Some(item) = item else {
        return Ok(None);
    };
    let mut value = ctx.write_or_create::<List>(dst, new_list)?;
    let list = &mut *value;
    match to {
        End::Left => list.push_front(&item),
        End::Right => list.push_back(&item),
    }
    drop(value);
    // The destination's event first, as Redis raises them.
    ctx.notify(event::LIST, to.push_event(), dst);
    ctx.notify(event::LIST, from.pop_event(), src);
    Ok(Some(item))
}

pub fn lmove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let from = parse_end(args[3])?;
    let to = parse_end(args[4])?;
    Ok(move_element(ctx, args[1], args[2], from, to)?.map_or(Reply::Null, |b| Reply::bulk(&b)))
}

pub fn rpoplpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(move_element(ctx, args[1], args[2], End::Right, End::Left)?
        .map_or(Reply::Null, |b| Reply::bulk(&b)))
}

/// Parses a blocking timeout in seconds (fractions allowed) into an absolute deadline.
pub(super) fn deadline(ctx: &mut Ctx, arg: &[u8]) -> Result<Option<u64>, CmdError> {
    if let Some(known) = ctx.client.block_deadline {
        return Ok(known);
    }
    let secs = crate::util::parse_f64(arg)
        .filter(|s| s.is_finite())
        .ok_or_else(|| CmdError::other("timeout is not a float or out of range"))?;
    if secs < 0.0 {
        return Err(CmdError::other("timeout is negative"));
    }
    let ms = (secs * 1000.0).round();
    if ms > i64::MAX as f64 / 2.0 {
        return Err(CmdError::other("timeout is out of range"));
    }
    let deadline = (ms > 0.0).then(|| ctx.ks.now + ms as u64);
    ctx.client.block_deadline = Some(deadline);
    Ok(deadline)
}

/// Asks the connection to wait, unless inside EXEC where blocking commands never block.
pub(super) fn block(ctx: &mut Ctx, deadline_ms: Option<u64>, timeout_reply: Reply) -> CmdResult {
    if !ctx.client.in_exec {
        ctx.block = Some(BlockRequest {
            deadline_ms,
            ..Default::default()
        });
    }
    Ok(timeout_reply)
}

fn blocking_pop(ctx: &mut Ctx, args: &[&[u8]], end: End) -> CmdResult {
    let deadline_ms = deadline(ctx, args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    for key in keys {
        let popped = match ctx.waited_on::<List>(key)? {
            Some(mut value) => pop_one(&mut value, end),
            None => None,
        };
        if let Some(item) = popped {
            ctx.notify(event::LIST, end.pop_event(), key);
            let pop: &[u8] = match end {
                End::Left => b"LPOP",
                End::Right => b"RPOP",
            };
            ctx.propagate(&[pop, key]);
            return Ok(Reply::Array(vec![Reply::bulk(key), Reply::bulk(&item)]));
        }
    }
    block(ctx, deadline_ms, Reply::NullArray)
}

/// Pops up to `count` elements from the first non-empty list of `keys`: its key and the
/// elements, logged as the LPOP or RPOP that repeats it (as Redis propagates LMPOP).
fn mpop(ctx: &mut Ctx, keys: &[&[u8]], end: End, count: usize) -> Result<Option<Reply>, CmdError> {
    for key in keys {
        let popped: Vec<Blob> = match ctx.waited_on::<List>(key)? {
            Some(mut value) => (0..count).map_while(|_| pop_one(&mut value, end)).collect(),
            None => continue,
        };
        if popped.is_empty() {
            continue;
        }
        ctx.notify(event::LIST, end.pop_event(), key);
        // The dispatcher removes emptied keys at fixed positions; these keys move with numkeys.
        let db = ctx.db();
        ctx.ks.remove_emptied(db, &[key]);
        let pop: &[u8] = match end {
            End::Left => b"LPOP",
            End::Right => b"RPOP",
        };
        ctx.propagate(&[pop, key, count.to_string().as_bytes()]);
        return Ok(Some(Reply::Array(vec![
            Reply::bulk(key),
            Reply::Array(popped.iter().map(Reply::bulk).collect()),
        ])));
    }
    Ok(None)
}

pub fn lmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (keys, end, count) = mpop_args(args, 1, |a| parse_end(a).ok())?;
    Ok(mpop(ctx, keys, end, count)?.unwrap_or(Reply::NullArray))
}

pub fn blmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (keys, end, count) = mpop_args(args, 2, |a| parse_end(a).ok())?;
    let deadline_ms = deadline(ctx, args[1])?;
    match mpop(ctx, keys, end, count)? {
        Some(reply) => Ok(reply),
        None => block(ctx, deadline_ms, Reply::NullArray),
    }
}

pub fn blpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, args, End::Left)
}
pub fn brpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_pop(ctx, args, End::Right)
}

fn blocking_move(ctx: &mut Ctx, args: &[&[u8]], from: End, to: End, timeout: &[u8]) -> CmdResult {
    let deadline_ms = deadline(ctx, timeout)?;
    match move_element(ctx, args[1], args[2], from, to)? {
        Some(item) => {
            let side = |end| match end {
                End::Left => b"LEFT".as_slice(),
                End::Right => b"RIGHT".as_slice(),
            };
            ctx.propagate(&[b"LMOVE", args[1], args[2], side(from), side(to)]);
            Ok(Reply::bulk(&item))
        }
        None => block(ctx, deadline_ms, Reply::NullArray),
    }
}

pub fn blmove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let from = parse_end(args[3])?;
    let to = parse_end(args[4])?;
    blocking_move(ctx, args, from, to, args[5])
}

pub fn brpoplpush(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_move(ctx, args, End::Right, End::Left, args[3])
}
