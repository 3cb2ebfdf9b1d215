//! Set commands, including the algebra (SINTER, SUNION, SDIFF and their STORE forms).

use super::hashes::{pick_random, random_repeats_reply};
use super::keys::{parse_scan, scan_dict, scan_reply};
use super::{event, int_arg, is, CmdError, CmdResult, Ctx};
use crate::keyspace::{Blob, Kind, Set, Value};
use crate::protocol::Reply;
use crate::util::glob_match;

fn new_set() -> Value {
    Value::Set(Box::default())
}

fn members_reply<'a>(members: impl Iterator<Item = &'a Blob>) -> Reply {
    Reply::Set(members.map(Reply::bulk).collect())
}

pub fn sadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut value = ctx.write_or_create::<Set>(args[1], new_set)?;
    let set = &mut *value;
    let added = args[2..].iter().filter(|m| set.insert(m)).count();
    drop(value);
    if added > 0 {
        ctx.notify(event::SET, "sadd", args[1]);
    }
    Ok(Reply::Int(added as i64))
}

pub fn srem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let Some(mut value) = ctx.write::<Set>(args[1])? else {
        return Ok(Reply::Int(0));
    };
    let set = &mut *value;
    let removed = args[2..].iter().filter(|m| set.remove(m)).count();
    drop(value);
    if removed > 0 {
        ctx.notify(event::SET, "srem", args[1]);
    }
    Ok(Reply::Int(removed as i64))
}

pub fn smembers(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let set = ctx.read::<Set>(args[1])?;
    Ok(set.map_or(Reply::Set(vec![]), |s| members_reply(s.iter())))
}

pub fn sismember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let set = ctx.read::<Set>(args[1])?;
    Ok(Reply::Int(i64::from(
        set.is_some_and(|s| s.contains(args[2])),
    )))
}

pub fn smismember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let set = ctx.read::<Set>(args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| Reply::Int(i64::from(set.is_some_and(|s| s.contains(m)))))
            .collect(),
    ))
}

pub fn scard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(
        ctx.read::<Set>(args[1])?.map_or(0, |s| s.len() as i64),
    ))
}

fn positive_count(arg: &[u8]) -> Result<usize, CmdError> {
    crate::util::parse_i64(arg)
        .filter(|&n| n >= 0)
        .map(|n| n as usize)
        .ok_or_else(|| CmdError::other("value is out of range, must be positive"))
}

pub fn spop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = args.get(2).map(|c| positive_count(c)).transpose()?;
    let Some(mut value) = ctx.write::<Set>(args[1])? else {
        return Ok(if count.is_some() {
            Reply::Set(vec![])
        } else {
            Reply::Null
        });
    };
    let set = &mut *value;
    let rng = &mut rand::rng();
    let picked: Vec<Blob> = pick_random(&set.members, count.unwrap_or(1), rng)
        .into_iter()
        .map(|(m, _)| m.clone())
        .collect();
    for m in &picked {
        set.remove(m);
    }
    drop(value);
    if !picked.is_empty() {
        ctx.notify(event::SET, "spop", args[1]);
    }
    // Logged as the members it removed: a replay must not pick again at random.
    if ctx.aof_on() {
        let mut srem: Vec<&[u8]> = vec![b"SREM", &args[1]];
        srem.extend(picked.iter().map(|m| &m[..]));
        ctx.propagate(&srem);
    }
    Ok(match count {
        None => picked.first().map_or(Reply::Null, Reply::bulk),
        Some(_) => Reply::Set(picked.iter().map(Reply::bulk).collect()),
    })
}

pub fn srandmember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = args
        .get(2)
        .map(|c| super::hashes::random_count(c, false))
        .transpose()?;
    let resp3 = ctx.client.resp3;
    let max_reply = ctx.ks.config.max_string;
    let Some(set) = ctx.read::<Set>(args[1])? else {
        return Ok(if count.is_some() {
            Reply::Array(vec![])
        } else {
            Reply::Null
        });
    };
    let rng = &mut rand::rng();
    Ok(match count {
        None => set
            .members
            .random_entry(rng)
            .map_or(Reply::Null, |(m, _)| Reply::bulk(m)),
        Some((n, true)) => {
            random_repeats_reply(&set.members, n, false, resp3, max_reply, |_| Reply::Null)?
        }
        Some((n, false)) => Reply::Array(
            pick_random(&set.members, n, rng)
                .into_iter()
                .map(|(m, _)| Reply::bulk(m))
                .collect(),
        ),
    })
}

pub fn smove(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let Some(src_set) = ctx.read::<Set>(src)? else {
        return Ok(Reply::Int(0));
    };
    let present = src_set.contains(member);
    let in_dst = ctx.read::<Set>(dst)?.is_some_and(|s| s.contains(member));
    if src == dst {
        return Ok(Reply::Int(i64::from(present)));
    }
    if !present {
        return Ok(Reply::Int(0));
    }
    if let Some(mut value) = ctx.write::<Set>(src)? {
        value.remove(member);
    }
    ctx.notify(event::SET, "srem", src);
    // The emptied source goes first, as in Redis (the dispatcher would remove it later).
    let db = ctx.db();
    ctx.ks.remove_emptied(db, &[src]);
    // A destination that has the member already is not written (nor its WATCH touched).
    if !in_dst {
        let mut value = ctx.write_or_create::<Set>(dst, new_set)?;
        value.insert(member);
        drop(value);
        ctx.notify(event::SET, "sadd", dst);
    }
    Ok(Reply::Int(1))
}

/// The sets an algebra command names, type-checked and borrowed rather than copied.
struct Operands<'k> {
    /// The first key's set (the one a difference subtracts from).
    first: Option<&'k Set>,
    /// The other keys' sets, each once: a set named twice changes no result, so it is not
    /// looked through twice.
    others: Vec<&'k Set>,
    /// Some key holds no set (an intersection is then empty).
    missing: bool,
}

fn load_sets<'k>(ctx: &'k mut Ctx, keys: &[&[u8]]) -> Result<Operands<'k>, CmdError> {
    let mut missing = false;
    for key in keys {
        missing |= ctx.read_source::<Set>(key)?.is_none();
    }
    let db = ctx.db();
    let entries = &ctx.ks.dbs[db].entries;
    let set_at = |k: &[u8]| entries.get(k).and_then(|e| Set::of(&e.value));
    let mut seen = std::collections::HashSet::new();
    let others = keys
        .iter()
        .skip(1)
        .filter_map(|k| set_at(k))
        .filter(|s| seen.insert(std::ptr::from_ref::<Set>(s)))
        .collect();
    Ok(Operands {
        first: keys.first().and_then(|k| set_at(k)),
        others,
        missing,
    })
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Inter,
    Union,
    Diff,
}

fn compute(sets: &Operands, op: Op) -> Set {
    let all = || sets.first.into_iter().chain(sets.others.iter().copied());
    match op {
        Op::Inter => {
            if sets.missing {
                return Set::default();
            }
            let mut all: Vec<&Set> = all().collect();
            all.sort_by_key(|s| s.len());
            all.dedup_by_key(|s| std::ptr::from_ref::<Set>(s));
            let Some((smallest, rest)) = all.split_first() else {
                return Set::default();
            };
            smallest
                .iter()
                .filter(|m| rest.iter().all(|s| s.contains(m)))
                .map(|m| &m[..])
                .collect()
        }
        Op::Union => all().flat_map(|s| s.iter()).map(|m| &m[..]).collect(),
        Op::Diff => {
            let Some(first) = sets.first else {
                return Set::default();
            };
            first
                .iter()
                .filter(|m| !sets.others.iter().any(|s| s.contains(m)))
                .map(|m| &m[..])
                .collect()
        }
    }
}

fn algebra(ctx: &mut Ctx, keys: &[&[u8]], op: Op) -> CmdResult {
    let sets = load_sets(ctx, keys)?;
    Ok(members_reply(compute(&sets, op).iter()))
}

fn algebra_store(ctx: &mut Ctx, args: &[&[u8]], op: Op) -> CmdResult {
    let sets = load_sets(ctx, &args[2..])?;
    let result = compute(&sets, op);
    let len = result.len() as i64;
    let name = match op {
        Op::Inter => "sinterstore",
        Op::Union => "sunionstore",
        Op::Diff => "sdiffstore",
    };
    let stored = (len > 0).then(|| Value::Set(Box::new(result)));
    ctx.store_result(args[1], stored, event::SET, name);
    Ok(Reply::Int(len))
}

pub fn sinter(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    algebra(ctx, &args[1..], Op::Inter)
}
pub fn sunion(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    algebra(ctx, &args[1..], Op::Union)
}
pub fn sdiff(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    algebra(ctx, &args[1..], Op::Diff)
}
pub fn sinterstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    algebra_store(ctx, args, Op::Inter)
}
pub fn sunionstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    algebra_store(ctx, args, Op::Union)
}
pub fn sdiffstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    algebra_store(ctx, args, Op::Diff)
}

/// Parses `numkeys key...` at args[1]; returns the keys and the index after them.
pub fn numkeys<'s, 'a>(
    args: &'s [&'a [u8]],
    at: usize,
) -> Result<(&'s [&'a [u8]], usize), CmdError> {
    let n = crate::util::parse_i64(args[at]).unwrap_or(0);
    if n <= 0 {
        return Err(CmdError::other("numkeys should be greater than 0"));
    }
    let end = at + 1 + n as usize;
    if n as usize > args.len() - at - 1 {
        return Err(CmdError::other(
            "Number of keys can't be greater than number of args",
        ));
    }
    Ok((&args[at + 1..end], end))
}

pub fn sintercard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (keys, mut i) = numkeys(args, 1)?;
    let mut limit = 0usize;
    while i < args.len() {
        if is(args[i], "LIMIT") && i + 1 < args.len() {
            // As Redis words it for a non-number too.
            let negative = || CmdError::other("LIMIT can't be negative");
            let n = int_arg(args[i + 1]).map_err(|_| negative())?;
            limit = usize::try_from(n).map_err(|_| negative())?;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let sets = load_sets(ctx, keys)?;
    let card = compute(&sets, Op::Inter).len();
    Ok(Reply::Int(
        if limit > 0 { card.min(limit) } else { card } as i64
    ))
}

pub fn sscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let opts = parse_scan(args, 2, false)?;
    let Some(set) = ctx.read::<Set>(args[1])? else {
        return Ok(scan_reply(0, vec![]));
    };
    let mut items = Vec::new();
    let mut emit = |m: &Blob, _: &()| {
        if opts
            .pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, m, false))
        {
            items.push(Reply::bulk(m));
        }
    };
    // An intset is returned whole in one call, in numeric order, as Redis does.
    let next = if set.intset {
        let mut members: Vec<&Blob> = set.iter().collect();
        members.sort_by_key(|m| crate::util::parse_i64(m).unwrap_or(0));
        members.into_iter().for_each(|m| emit(m, &()));
        0
    } else {
        scan_dict(&set.members, opts.cursor, opts.count, emit)
    };
    Ok(scan_reply(next, items))
}
