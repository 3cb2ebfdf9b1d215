//! Hash commands.

use rand::seq::SliceRandom;
use rand::Rng;

use super::keys::{parse_scan, scan_dict, scan_reply};
use super::{event, int_arg, is, CmdError, CmdResult, Ctx};
use crate::keyspace::{Blob, Hash, Value};
use crate::long_double::LongDouble;
use crate::protocol::{ArrayWriter, Reply};
use crate::util::{glob_match, parse_i64};

fn new_hash() -> Value {
    Value::Hash(Box::default())
}

fn set_fields(ctx: &mut Ctx, args: &[&[u8]], name: &str) -> Result<i64, CmdError> {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Arity(name.into()));
    }
    let mut value = ctx.write_or_create::<Hash>(args[1], new_hash)?;
    let hash = &mut *value;
    let added = args[2..]
        .chunks(2)
        .filter(|pair| hash.insert(pair[0], Blob::from_slice(pair[1])))
        .count();
    drop(value);
    ctx.notify(event::HASH, "hset", args[1]);
    Ok(added as i64)
}

pub fn hset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    set_fields(ctx, args, "hset").map(Reply::Int)
}

pub fn hmset(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    set_fields(ctx, args, "hmset").map(|_| Reply::OK)
}

pub fn hsetnx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut value = ctx.write_or_create::<Hash>(args[1], new_hash)?;
    let hash = &mut *value;
    if hash.get(args[2]).is_some() {
        return Ok(Reply::Int(0));
    }
    hash.insert(args[2], Blob::from_slice(args[3]));
    drop(value);
    ctx.notify(event::HASH, "hset", args[1]);
    Ok(Reply::Int(1))
}

pub fn hget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let hash = ctx.read::<Hash>(args[1])?;
    Ok(hash
        .and_then(|h| h.get(args[2]))
        .map_or(Reply::Null, Reply::bulk))
}

pub fn hmget(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let hash = ctx.read::<Hash>(args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|f| hash.and_then(|h| h.get(f)).map_or(Reply::Null, Reply::bulk))
            .collect(),
    ))
}

pub fn hdel(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let Some(mut value) = ctx.write::<Hash>(args[1])? else {
        return Ok(Reply::Int(0));
    };
    let hash = &mut *value;
    let removed = args[2..].iter().filter(|f| hash.remove(f)).count();
    drop(value);
    if removed > 0 {
        ctx.notify(event::HASH, "hdel", args[1]);
    }
    Ok(Reply::Int(removed as i64))
}

pub fn hlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(
        ctx.read::<Hash>(args[1])?.map_or(0, |h| h.len() as i64),
    ))
}

pub fn hstrlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let hash = ctx.read::<Hash>(args[1])?;
    Ok(Reply::Int(
        hash.and_then(|h| h.get(args[2]))
            .map_or(0, |v| v.len() as i64),
    ))
}

pub fn hexists(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let hash = ctx.read::<Hash>(args[1])?;
    Ok(Reply::Int(i64::from(
        hash.is_some_and(|h| h.get(args[2]).is_some()),
    )))
}

pub fn hgetall(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let hash = ctx.read::<Hash>(args[1])?;
    Ok(Reply::Map(
        hash.map(|h| {
            h.fields
                .iter()
                .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                .collect()
        })
        .unwrap_or_default(),
    ))
}

pub fn hkeys(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let hash = ctx.read::<Hash>(args[1])?;
    Ok(Reply::Array(
        hash.map(|h| h.fields.keys().map(Reply::bulk).collect())
            .unwrap_or_default(),
    ))
}

pub fn hvals(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let hash = ctx.read::<Hash>(args[1])?;
    Ok(Reply::Array(
        hash.map(|h| h.fields.iter().map(|(_, v)| Reply::bulk(v)).collect())
            .unwrap_or_default(),
    ))
}

pub fn hincrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let delta = int_arg(args[3])?;
    let mut value = ctx.write_or_create::<Hash>(args[1], new_hash)?;
    let hash = &mut *value;
    let current = match hash.get(args[2]) {
        Some(v) => parse_i64(v).ok_or_else(|| CmdError::other("hash value is not an integer"))?,
        None => 0,
    };
    let next = current.checked_add(delta).ok_or(CmdError::Overflow)?;
    hash.insert(
        args[2],
        Blob::from_slice(itoa::Buffer::new().format(next).as_bytes()),
    );
    drop(value);
    ctx.notify(event::HASH, "hincrby", args[1]);
    Ok(Reply::Int(next))
}

pub fn hincrbyfloat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let delta = LongDouble::parse(args[3]).ok_or(CmdError::NotFloat)?;
    if !delta.is_finite() {
        return Err(CmdError::other("value is NaN or Infinity"));
    }
    let mut value = ctx.write_or_create::<Hash>(args[1], new_hash)?;
    let hash = &mut *value;
    let current = match hash.get(args[2]) {
        Some(v) => {
            LongDouble::parse(v).ok_or_else(|| CmdError::other("hash value is not a float"))?
        }
        None => LongDouble::ZERO,
    };
    let next = current + delta;
    if !next.is_finite() {
        return Err(CmdError::other("increment would produce NaN or Infinity"));
    }
    let text = next.to_human_string();
    hash.insert(args[2], Blob::from_slice(text.as_bytes()));
    drop(value);
    // Logged as the value it produced: a replay must not redo the float arithmetic.
    ctx.propagate(&[b"HSET", args[1], args[2], text.as_bytes()]);
    ctx.notify(event::HASH, "hincrbyfloat", args[1]);
    Ok(Reply::bulk(text))
}

pub fn hscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let opts = parse_scan(args, 2, false)?;
    let Some(hash) = ctx.read::<Hash>(args[1])? else {
        return Ok(scan_reply(0, vec![]));
    };
    let mut items = Vec::new();
    let mut emit = |f: &Blob, v: &Blob| {
        if opts
            .pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, f, false))
        {
            items.push(Reply::bulk(f));
            items.push(Reply::bulk(v));
        }
    };
    // A compact (listpack) hash is returned whole in one call, as Redis does.
    let next = if hash.compact {
        hash.fields.for_each(&mut emit);
        0
    } else {
        scan_dict(&hash.fields, opts.cursor, opts.count, emit)
    };
    Ok(scan_reply(next, items))
}

/// Parses the count of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER: (count, repeats allowed).
pub fn random_count(arg: &[u8], pairs: bool) -> Result<(usize, bool), CmdError> {
    let count = int_arg(arg)?;
    let limit = if pairs { i64::MAX / 2 } else { i64::MAX };
    if count < -limit {
        return Err(CmdError::other("value is out of range"));
    }
    Ok((count.unsigned_abs() as usize, count < 0))
}

pub fn hrandfield(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let with_values = match args.len() {
        2 | 3 => false,
        4 if is(args[3], "WITHVALUES") => true,
        _ => return Err(CmdError::Syntax),
    };
    let count = args
        .get(2)
        .map(|c| random_count(c, with_values))
        .transpose()?;
    let resp3 = ctx.client.resp3;
    let max_reply = ctx.ks.config.max_string;
    let Some(hash) = ctx.read::<Hash>(args[1])? else {
        return Ok(if count.is_some() {
            Reply::Array(vec![])
        } else {
            Reply::Null
        });
    };
    let rng = &mut rand::rng();
    let Some((count, repeat)) = count else {
        return Ok(hash
            .fields
            .random_entry(rng)
            .map_or(Reply::Null, |(f, _)| Reply::bulk(f)));
    };
    if repeat {
        return random_repeats_reply(&hash.fields, count, with_values, resp3, max_reply, |v| {
            Reply::bulk(v)
        });
    }
    let picked = pick_random(&hash.fields, count, rng);
    Ok(random_pairs_reply(picked, with_values, resp3, |v| {
        Reply::bulk(v)
    }))
}

/// Chooses `count` distinct entries of a dict (all of them if count >= len).
pub fn pick_random<'a, V>(
    dict: &'a crate::keyspace::Dict<V>,
    count: usize,
    rng: &mut impl Rng,
) -> Vec<(&'a Blob, &'a V)> {
    if count >= dict.len() {
        return dict.iter().collect();
    }
    let mut all: Vec<(&Blob, &V)> = dict.iter().collect();
    let (chosen, _) = all.partial_shuffle(rng, count);
    chosen.to_vec()
}

/// The reply for `count` random picks with repeats (a negative count). The client picks the
/// count, so the reply is encoded as the picks are drawn, a few bytes each, never held as a
/// list of picks: SRANDMEMBER s -30000000 costs what its reply does, as in Redis.
pub fn random_repeats_reply<V>(
    dict: &crate::keyspace::Dict<V>,
    count: usize,
    with_values: bool,
    resp3: bool,
    max_reply: usize,
    value_reply: impl Fn(&V) -> Reply,
) -> CmdResult {
    // A count near -2^63 asks for more than any reply can hold: refused, rather than have
    // the instance build it for ever. The estimate takes one element as typical.
    if let Some((key, _)) = dict.random_entry(&mut rand::rng()) {
        let per_element = key.len() + if with_values { 48 } else { 16 };
        if count.saturating_mul(per_element) > max_reply {
            return Err(CmdError::other(
                "count is too large: the reply would pass proto-max-bulk-len",
            ));
        }
    }
    let rng = &mut rand::rng();
    let elements = if with_values && !resp3 {
        count.saturating_mul(2)
    } else {
        count
    };
    let mut reply = ArrayWriter::new(elements, resp3);
    for _ in 0..count {
        let Some((key, value)) = dict.random_entry(rng) else {
            break;
        };
        if with_values && resp3 {
            reply.array_header(2);
        }
        reply.bulk(key);
        if with_values {
            reply.reply(value_reply(value));
        }
    }
    Ok(reply.finish())
}

/// The reply for random picks, with values as flat pairs (RESP2) or nested pairs (RESP3).
pub fn random_pairs_reply<V>(
    picked: Vec<(&Blob, &V)>,
    with_values: bool,
    resp3: bool,
    value_reply: impl Fn(&V) -> Reply,
) -> Reply {
    if !with_values {
        return Reply::Array(picked.into_iter().map(|(k, _)| Reply::bulk(k)).collect());
    }
    if resp3 {
        Reply::Array(
            picked
                .into_iter()
                .map(|(k, v)| Reply::Array(vec![Reply::bulk(k), value_reply(v)]))
                .collect(),
        )
    } else {
        Reply::Array(
            picked
                .into_iter()
                .flat_map(|(k, v)| [Reply::bulk(k), value_reply(v)])
                .collect(),
        )
    }
}
