//! Sorted set commands: adds and increments, ranges by rank, score and lex (forward and
//! reverse, with LIMIT), pops, removals by range, stores and the union/intersection algebra.

use std::ops::Bound;

use super::hashes::{pick_random, random_count, random_pairs_reply, random_repeats_reply};
use super::keys::{parse_scan, scan_dict, scan_reply};
use super::{event, float_arg, int_arg, is, lower, rank_range, CmdError, CmdResult, Ctx};
use crate::keyspace::{Blob, Scored, Value, ZSet};
use crate::protocol::reply::format_double;
use crate::protocol::Reply;
use crate::util::{glob_match, parse_f64};

fn new_zset() -> Value {
    Value::ZSet(Box::default())
}

pub fn zadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "NX") {
            nx = true;
        } else if is(a, "XX") {
            xx = true;
        } else if is(a, "GT") {
            gt = true;
        } else if is(a, "LT") {
            lt = true;
        } else if is(a, "CH") {
            ch = true;
        } else if is(a, "INCR") {
            incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        return Err(CmdError::other(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::other(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && pairs.len() > 2 {
        return Err(CmdError::other(
            "INCR option supports a single increment-element pair",
        ));
    }
    let scores: Vec<f64> = pairs
        .chunks(2)
        .map(|p| float_arg(p[0]))
        .collect::<Result<_, _>>()?;
    if xx && ctx.read::<ZSet>(args[1])?.is_none() {
        return Ok(if incr { Reply::Null } else { Reply::Int(0) });
    }
    let mut value = ctx.write_or_create::<ZSet>(args[1], new_zset)?;
    let zset = &mut *value;
    let (mut added, mut changed) = (0, 0);
    let mut incr_result = None;
    for (pair, &score) in pairs.chunks(2).zip(&scores) {
        let member = &pair[1];
        let old = zset.score(member);
        let mut new_score = score;
        if let Some(old_score) = old {
            if nx {
                continue;
            }
            if incr {
                new_score = old_score + score;
                if new_score.is_nan() {
                    return Err(CmdError::other("resulting score is not a number (NaN)"));
                }
            }
            if (gt && new_score <= old_score) || (lt && new_score >= old_score) {
                continue;
            }
            incr_result = Some(new_score);
            if new_score != old_score {
                zset.insert(member, new_score);
                changed += 1;
            }
        } else {
            if xx {
                continue;
            }
            zset.insert(member, new_score);
            incr_result = Some(new_score);
            added += 1;
        }
    }
    drop(value);
    if added + changed > 0 {
        ctx.notify(event::ZSET, if incr { "zincr" } else { "zadd" }, args[1]);
    }
    if incr {
        return Ok(incr_result.map_or(Reply::Null, Reply::Double));
    }
    Ok(Reply::Int(if ch { added + changed } else { added }))
}

pub fn zincrby(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let delta = float_arg(args[2])?;
    let mut value = ctx.write_or_create::<ZSet>(args[1], new_zset)?;
    let zset = &mut *value;
    let next = zset.score(args[3]).unwrap_or(0.0) + delta;
    if next.is_nan() {
        return Err(CmdError::other("resulting score is not a number (NaN)"));
    }
    zset.insert(args[3], next);
    drop(value);
    ctx.notify(event::ZSET, "zincr", args[1]);
    Ok(Reply::Double(next))
}

pub fn zrem(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let Some(mut value) = ctx.write::<ZSet>(args[1])? else {
        return Ok(Reply::Int(0));
    };
    let zset = &mut *value;
    let removed = args[2..]
        .iter()
        .filter(|m| zset.remove(m).is_some())
        .count();
    drop(value);
    if removed > 0 {
        ctx.notify(event::ZSET, "zrem", args[1]);
    }
    Ok(Reply::Int(removed as i64))
}

pub fn zscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let zset = ctx.read::<ZSet>(args[1])?;
    Ok(zset
        .and_then(|z| z.score(args[2]))
        .map_or(Reply::Null, Reply::Double))
}

pub fn zmscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let zset = ctx.read::<ZSet>(args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| {
                zset.and_then(|z| z.score(m))
                    .map_or(Reply::Null, Reply::Double)
            })
            .collect(),
    ))
}

pub fn zcard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(
        ctx.read::<ZSet>(args[1])?.map_or(0, |z| z.len() as i64),
    ))
}

/// A score interval as ZRANGEBYSCORE takes it: `1.5`, `(1.5`, `-inf`, `+inf`.
#[derive(Debug, Clone, Copy)]
struct ScoreRange {
    min: f64,
    min_ex: bool,
    max: f64,
    max_ex: bool,
}

fn score_bound(arg: &[u8]) -> Result<(f64, bool), CmdError> {
    let err = || CmdError::other("min or max is not a float");
    match arg.first() {
        Some(b'(') => Ok((parse_f64(&arg[1..]).ok_or_else(err)?, true)),
        _ => Ok((parse_f64(arg).ok_or_else(err)?, false)),
    }
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<Self, CmdError> {
        let (min, min_ex) = score_bound(min)?;
        let (max, max_ex) = score_bound(max)?;
        Ok(ScoreRange {
            min,
            min_ex,
            max,
            max_ex,
        })
    }
    fn above_min(&self, s: f64) -> bool {
        if self.min_ex {
            s > self.min
        } else {
            s >= self.min
        }
    }
    fn below_max(&self, s: f64) -> bool {
        if self.max_ex {
            s < self.max
        } else {
            s <= self.max
        }
    }
    /// Elements in range, ascending or descending, using the tree's order to start.
    fn select<'a>(&self, z: &'a ZSet, rev: bool) -> Box<dyn Iterator<Item = &'a Scored> + 'a> {
        let r = *self;
        if rev {
            let upper = if r.max == f64::INFINITY {
                Bound::Unbounded
            } else {
                Bound::Excluded(Scored {
                    score: r.max.next_up(),
                    member: Blob::new(),
                })
            };
            Box::new(
                z.ordered
                    .range((Bound::Unbounded, upper))
                    .rev()
                    .skip_while(move |e| !r.below_max(e.score))
                    .take_while(move |e| r.above_min(e.score)),
            )
        } else {
            let lower = if r.min == f64::NEG_INFINITY {
                Bound::Unbounded
            } else {
                Bound::Included(Scored {
                    score: r.min,
                    member: Blob::new(),
                })
            };
            Box::new(
                z.ordered
                    .range((lower, Bound::Unbounded))
                    .skip_while(move |e| !r.above_min(e.score))
                    .take_while(move |e| r.below_max(e.score)),
            )
        }
    }
}

/// A lex interval: `[a`, `(a`, `-`, `+`.
#[derive(Debug, Clone)]
enum LexBound<'a> {
    NegInf,
    PosInf,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

fn lex_bound(arg: &[u8]) -> Result<LexBound<'_>, CmdError> {
    match arg.first() {
        Some(b'-') if arg.len() == 1 => Ok(LexBound::NegInf),
        Some(b'+') if arg.len() == 1 => Ok(LexBound::PosInf),
        Some(b'[') => Ok(LexBound::Incl(&arg[1..])),
        Some(b'(') => Ok(LexBound::Excl(&arg[1..])),
        _ => Err(CmdError::other("min or max not valid string range item")),
    }
}

#[derive(Debug, Clone)]
struct LexRange<'a> {
    min: LexBound<'a>,
    max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    fn parse(min: &'a [u8], max: &'a [u8]) -> Result<Self, CmdError> {
        Ok(LexRange {
            min: lex_bound(min)?,
            max: lex_bound(max)?,
        })
    }
    fn above_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(b) => m >= &b[..],
            LexBound::Excl(b) => m > &b[..],
        }
    }
    fn below_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m <= &b[..],
            LexBound::Excl(b) => m < &b[..],
        }
    }
    fn contains(&self, m: &[u8]) -> bool {
        self.above_min(m) && self.below_max(m)
    }
    fn select<'z>(&'z self, z: &'z ZSet, rev: bool) -> Box<dyn Iterator<Item = &'z Scored> + 'z> {
        if rev {
            Box::new(
                z.ordered
                    .iter()
                    .rev()
                    .skip_while(|e| !self.below_max(&e.member))
                    .take_while(|e| self.above_min(&e.member)),
            )
        } else {
            Box::new(
                z.ordered
                    .iter()
                    .skip_while(|e| !self.above_min(&e.member))
                    .take_while(|e| self.below_max(&e.member)),
            )
        }
    }
}

pub fn zcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = ScoreRange::parse(args[2], args[3])?;
    let zset = ctx.read::<ZSet>(args[1])?;
    Ok(Reply::Int(
        zset.map_or(0, |z| range.select(z, false).count() as i64),
    ))
}

pub fn zlexcount(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = LexRange::parse(args[2], args[3])?;
    let zset = ctx.read::<ZSet>(args[1])?;
    Ok(Reply::Int(
        zset.map_or(0, |z| range.select(z, false).count() as i64),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RangeKind {
    Rank,
    Score,
    Lex,
}

/// A parsed ZRANGE-family request.
#[derive(Debug, Clone)]
struct RangeQuery<'a> {
    kind: RangeKind,
    rev: bool,
    start: &'a [u8],
    stop: &'a [u8],
    limit: Option<(i64, i64)>,
    with_scores: bool,
}

impl<'a> RangeQuery<'a> {
    /// Parses options after `start stop` beginning at `args[at]`, for ZRANGE/ZRANGESTORE.
    fn parse_zrange(args: &[&'a [u8]], at: usize, store: bool) -> Result<Self, CmdError> {
        let mut q = RangeQuery {
            kind: RangeKind::Rank,
            rev: false,
            start: args[at - 2],
            stop: args[at - 1],
            limit: None,
            with_scores: false,
        };
        let mut i = at;
        while i < args.len() {
            let a = &args[i];
            if is(a, "BYSCORE") {
                q.kind = RangeKind::Score;
            } else if is(a, "BYLEX") {
                q.kind = RangeKind::Lex;
            } else if is(a, "REV") {
                q.rev = true;
            } else if !store && is(a, "WITHSCORES") {
                q.with_scores = true;
            } else if is(a, "LIMIT") && i + 2 < args.len() {
                q.limit = Some((int_arg(args[i + 1])?, int_arg(args[i + 2])?));
                i += 2;
            } else {
                return Err(CmdError::Syntax);
            }
            i += 1;
        }
        if q.limit.is_some() && q.kind == RangeKind::Rank {
            return Err(CmdError::other(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if q.with_scores && q.kind == RangeKind::Lex {
            return Err(CmdError::other(
                "syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        if q.rev && q.kind != RangeKind::Rank {
            std::mem::swap(&mut q.start, &mut q.stop);
        }
        Ok(q)
    }

    /// Parses the options of the older forms (ZRANGEBYSCORE, ZREVRANGE, ...).
    fn parse_legacy(args: &[&'a [u8]], kind: RangeKind, rev: bool) -> Result<Self, CmdError> {
        let (start, stop) = if rev && kind != RangeKind::Rank {
            (args[3], args[2])
        } else {
            (args[2], args[3])
        };
        let mut q = RangeQuery {
            kind,
            rev,
            start,
            stop,
            limit: None,
            with_scores: false,
        };
        let mut i = 4;
        while i < args.len() {
            if kind != RangeKind::Lex && is(args[i], "WITHSCORES") {
                q.with_scores = true;
            } else if kind != RangeKind::Rank && is(args[i], "LIMIT") && i + 2 < args.len() {
                q.limit = Some((int_arg(args[i + 1])?, int_arg(args[i + 2])?));
                i += 2;
            } else {
                return Err(CmdError::Syntax);
            }
            i += 1;
        }
        Ok(q)
    }

    /// Validates the bounds before the key is looked up (errors win over a missing key).
    fn check(&self) -> Result<(), CmdError> {
        match self.kind {
            RangeKind::Rank => {
                int_arg(self.start)?;
                int_arg(self.stop)?;
            }
            RangeKind::Score => {
                ScoreRange::parse(self.start, self.stop)?;
            }
            RangeKind::Lex => {
                LexRange::parse(self.start, self.stop)?;
            }
        }
        Ok(())
    }

    /// The selected (member, score) pairs.
    fn run(&self, z: &ZSet) -> Result<Vec<(Blob, f64)>, CmdError> {
        let pairs = |it: Box<dyn Iterator<Item = &Scored> + '_>| -> Vec<(Blob, f64)> {
            let it = match self.limit {
                Some((offset, count)) => {
                    if offset < 0 {
                        return vec![];
                    }
                    let count = if count < 0 {
                        usize::MAX
                    } else {
                        count as usize
                    };
                    Box::new(it.skip(offset as usize).take(count))
                        as Box<dyn Iterator<Item = &Scored>>
                }
                None => it,
            };
            it.map(|e| (e.member.clone(), e.score)).collect()
        };
        Ok(match self.kind {
            RangeKind::Rank => {
                let (start, stop) = (int_arg(self.start)?, int_arg(self.stop)?);
                match rank_range(start, stop, z.len()) {
                    None => vec![],
                    Some((a, b)) => {
                        let it: Box<dyn Iterator<Item = &Scored>> = if self.rev {
                            Box::new(z.iter().rev())
                        } else {
                            Box::new(z.iter())
                        };
                        it.skip(a)
                            .take(b - a + 1)
                            .map(|e| (e.member.clone(), e.score))
                            .collect()
                    }
                }
            }
            RangeKind::Score => {
                pairs(ScoreRange::parse(self.start, self.stop)?.select(z, self.rev))
            }
            RangeKind::Lex => {
                let range = LexRange::parse(self.start, self.stop)?;
                pairs(range.select(z, self.rev))
            }
        })
    }
}

/// Member/score pairs as a reply: flat in RESP2, nested pairs in RESP3.
fn pairs_reply(items: Vec<(Blob, f64)>, with_scores: bool, resp3: bool) -> Reply {
    if !with_scores {
        return Reply::Array(items.iter().map(|(m, _)| Reply::bulk(m)).collect());
    }
    if resp3 {
        Reply::Array(
            items
                .iter()
                .map(|(m, s)| Reply::Array(vec![Reply::bulk(m), Reply::Double(*s)]))
                .collect(),
        )
    } else {
        Reply::Array(
            items
                .iter()
                .flat_map(|(m, s)| [Reply::bulk(m), Reply::Double(*s)])
                .collect(),
        )
    }
}

fn range_reply(ctx: &mut Ctx, key: &[u8], q: RangeQuery) -> CmdResult {
    q.check()?;
    let resp3 = ctx.client.resp3;
    let Some(zset) = ctx.read::<ZSet>(key)? else {
        return Ok(Reply::Array(vec![]));
    };
    Ok(pairs_reply(q.run(zset)?, q.with_scores, resp3))
}

pub fn zrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let q = RangeQuery::parse_zrange(args, 4, false)?;
    range_reply(ctx, args[1], q)
}
pub fn zrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(
        ctx,
        args[1],
        RangeQuery::parse_legacy(args, RangeKind::Score, false)?,
    )
}
pub fn zrevrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(
        ctx,
        args[1],
        RangeQuery::parse_legacy(args, RangeKind::Score, true)?,
    )
}
pub fn zrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(
        ctx,
        args[1],
        RangeQuery::parse_legacy(args, RangeKind::Lex, false)?,
    )
}
pub fn zrevrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(
        ctx,
        args[1],
        RangeQuery::parse_legacy(args, RangeKind::Lex, true)?,
    )
}
pub fn zrevrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range_reply(
        ctx,
        args[1],
        RangeQuery::parse_legacy(args, RangeKind::Rank, true)?,
    )
}

pub fn zrangestore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let q = RangeQuery::parse_zrange(&args[1..], 4, true)?;
    q.check()?;
    let picked = match ctx.read_source::<ZSet>(args[2])? {
        Some(z) => q.run(z)?,
        None => vec![],
    };
    store_pairs(ctx, args[1], picked, "zrangestore")
}

/// Replaces `dst` with a sorted set of the given pairs (deleting it when empty), with the
/// event `name` (GEO's store forms use it too).
pub fn store_pairs(
    ctx: &mut Ctx,
    dst: &[u8],
    pairs: Vec<(Blob, f64)>,
    name: &'static str,
) -> CmdResult {
    let mut zset = ZSet::default();
    for (m, s) in &pairs {
        zset.insert(m, *s);
    }
    let len = zset.len() as i64;
    let stored = (len > 0).then(|| Value::ZSet(Box::new(zset)));
    ctx.store_result(dst, stored, event::ZSET, name);
    Ok(Reply::Int(len))
}

fn rank_generic(ctx: &mut Ctx, args: &[&[u8]], rev: bool) -> CmdResult {
    let zset = ctx.read::<ZSet>(args[1])?;
    Ok(zset
        .and_then(|z| {
            z.rank(args[2])
                .map(|r| if rev { z.len() - 1 - r } else { r })
        })
        .map_or(Reply::Null, |r| Reply::Int(r as i64)))
}

pub fn zrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, args, false)
}
pub fn zrevrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    rank_generic(ctx, args, true)
}

fn pop_generic(ctx: &mut Ctx, args: &[&[u8]], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.get(2) {
        Some(c) => Some(
            crate::util::parse_i64(c)
                .filter(|&n| n >= 0)
                .ok_or_else(|| CmdError::other("value is out of range, must be positive"))?
                as usize,
        ),
        None => None,
    };
    let resp3 = ctx.client.resp3;
    let Some(mut value) = ctx.write::<ZSet>(args[1])? else {
        return Ok(Reply::Array(vec![]));
    };
    let popped = pop_ends(&mut value, max, count.unwrap_or(1));
    drop(value);
    if !popped.is_empty() {
        ctx.notify(event::ZSET, pop_event(max), args[1]);
    }
    if count.is_none() {
        return Ok(Reply::Array(
            popped
                .into_iter()
                .flat_map(|(m, s)| [Reply::bulk(&m), Reply::Double(s)])
                .collect(),
        ));
    }
    Ok(pairs_reply(popped, true, resp3))
}

/// Removes up to `count` members from the low (or, with `max`, the high) end.
fn pop_ends(zset: &mut ZSet, max: bool, count: usize) -> Vec<(Blob, f64)> {
    let mut popped = Vec::new();
    for _ in 0..count {
        let next = if max {
            zset.ordered.last()
        } else {
            zset.ordered.first()
        };
        let Some(e) = next.cloned() else { break };
        zset.remove(&e.member);
        popped.push((e.member, e.score));
    }
    popped
}

fn pop_event(max: bool) -> &'static str {
    if max {
        "zpopmax"
    } else {
        "zpopmin"
    }
}

/// MIN or MAX, as ZMPOP and BZMPOP take them (true for MAX).
fn zmpop_side(arg: &[u8]) -> Option<bool> {
    if is(arg, "MIN") {
        Some(false)
    } else if is(arg, "MAX") {
        Some(true)
    } else {
        None
    }
}

/// ZMPOP numkeys key... MIN|MAX [COUNT count]: from the first non-empty sorted set, its key
/// and the popped members with their scores (pairs in both protocols), logged as the ZPOPMIN
/// or ZPOPMAX that repeats it.
pub fn zmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (keys, max, count) = super::mpop_args(args, 1, zmpop_side)?;
    Ok(zmpop_keys(ctx, keys, max, count)?.unwrap_or(Reply::NullArray))
}

/// BZMPOP timeout numkeys key... MIN|MAX [COUNT count]: ZMPOP, or wait for a member.
pub fn bzmpop(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (keys, max, count) = super::mpop_args(args, 2, zmpop_side)?;
    let deadline_ms = super::lists::deadline(ctx, args[1])?;
    match zmpop_keys(ctx, keys, max, count)? {
        Some(reply) => Ok(reply),
        None => super::lists::block(ctx, deadline_ms, Reply::NullArray),
    }
}

/// BZPOPMIN/BZPOPMAX key... timeout: the key, member and score popped from the first
/// non-empty sorted set, or wait for one; logged as the ZPOPMIN/ZPOPMAX that repeats it.
fn blocking_zpop(ctx: &mut Ctx, args: &[&[u8]], max: bool) -> CmdResult {
    let deadline_ms = super::lists::deadline(ctx, args[args.len() - 1])?;
    for key in &args[1..args.len() - 1] {
        let popped = match ctx.waited_on::<ZSet>(key)? {
            Some(mut value) => pop_ends(&mut value, max, 1),
            None => continue,
        };
        let Some((member, score)) = popped.into_iter().next() else {
            continue;
        };
        ctx.notify(event::ZSET, pop_event(max), key);
        let pop: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        ctx.propagate(&[pop, key]);
        return Ok(Reply::Array(vec![
            Reply::bulk(key),
            Reply::bulk(&member),
            Reply::Double(score),
        ]));
    }
    super::lists::block(ctx, deadline_ms, Reply::NullArray)
}

pub fn bzpopmin(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_zpop(ctx, args, false)
}
pub fn bzpopmax(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    blocking_zpop(ctx, args, true)
}

/// Pops up to `count` members from the first non-empty sorted set of `keys` (ZMPOP, BZMPOP).
fn zmpop_keys(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    max: bool,
    count: usize,
) -> Result<Option<Reply>, CmdError> {
    for key in keys {
        let popped = match ctx.waited_on::<ZSet>(key)? {
            Some(mut value) => pop_ends(&mut value, max, count),
            None => continue,
        };
        if popped.is_empty() {
            continue;
        }
        ctx.notify(event::ZSET, pop_event(max), key);
        // The dispatcher removes emptied keys at fixed positions; these keys move with numkeys.
        let db = ctx.db();
        ctx.ks.remove_emptied(db, &[key]);
        let pop: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        ctx.propagate(&[pop, key, count.to_string().as_bytes()]);
        return Ok(Some(Reply::Array(vec![
            Reply::bulk(key),
            pairs_reply(popped, true, true),
        ])));
    }
    Ok(None)
}

pub fn zpopmin(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop_generic(ctx, args, false)
}
pub fn zpopmax(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    pop_generic(ctx, args, true)
}

fn remove_where(
    ctx: &mut Ctx,
    key: &[u8],
    name: &'static str,
    pick: impl Fn(&ZSet) -> Vec<Blob>,
) -> CmdResult {
    let Some(mut value) = ctx.write::<ZSet>(key)? else {
        return Ok(Reply::Int(0));
    };
    let zset = &mut *value;
    let doomed = pick(zset);
    for m in &doomed {
        zset.remove(m);
    }
    drop(value);
    if !doomed.is_empty() {
        ctx.notify(event::ZSET, name, key);
    }
    Ok(Reply::Int(doomed.len() as i64))
}

pub fn zremrangebyscore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = ScoreRange::parse(args[2], args[3])?;
    remove_where(ctx, args[1], "zremrangebyscore", |z| {
        range.select(z, false).map(|e| e.member.clone()).collect()
    })
}

pub fn zremrangebyrank(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (start, stop) = (int_arg(args[2])?, int_arg(args[3])?);
    remove_where(ctx, args[1], "zremrangebyrank", |z| {
        match rank_range(start, stop, z.len()) {
            Some((a, b)) => z
                .iter()
                .skip(a)
                .take(b - a + 1)
                .map(|e| e.member.clone())
                .collect(),
            None => vec![],
        }
    })
}

pub fn zremrangebylex(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let range = LexRange::parse(args[2], args[3])?;
    remove_where(ctx, args[1], "zremrangebylex", |z| {
        z.iter()
            .filter(|e| range.contains(&e.member))
            .map(|e| e.member.clone())
            .collect()
    })
}

#[derive(Debug, Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let s = a + b;
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            }
            Aggregate::Min => a.min(b),
            Aggregate::Max => a.max(b),
        }
    }
}

/// Members and scores of a sorted set or a plain set (score 1) at `key`.
/// A ZUNIONSTORE/ZINTERSTORE input: a sorted set, or a set whose members score 1. Borrowed,
/// never copied: a command may name the same big key thousands of times.
#[derive(Clone, Copy)]
enum Source<'a> {
    ZSet(&'a ZSet),
    Set(&'a crate::keyspace::Set),
}

impl<'a> Source<'a> {
    fn of(value: &'a Value) -> Option<Source<'a>> {
        match value {
            Value::ZSet(z) => Some(Source::ZSet(z)),
            Value::Set(s) => Some(Source::Set(s)),
            _ => None,
        }
    }

    fn entries(self) -> Box<dyn Iterator<Item = (&'a Blob, f64)> + 'a> {
        match self {
            Source::ZSet(z) => Box::new(z.iter().map(|e| (&e.member, e.score))),
            Source::Set(s) => Box::new(s.iter().map(|m| (m, 1.0))),
        }
    }

    fn score(self, member: &[u8]) -> Option<f64> {
        match self {
            Source::ZSet(z) => z.score(member),
            Source::Set(s) => s.contains(member).then_some(1.0),
        }
    }
}

/// The inputs at `keys` (None for a missing key), type-checked.
fn weighted_sources<'k>(
    ctx: &'k mut Ctx,
    keys: &[&[u8]],
) -> Result<Vec<Option<Source<'k>>>, CmdError> {
    let db = ctx.db();
    for key in keys {
        if let Some(value) = ctx.ks.lookup(db, key, true) {
            Source::of(value).ok_or(CmdError::WrongType)?;
        }
    }
    let entries = &ctx.ks.dbs[db].entries;
    Ok(keys
        .iter()
        .map(|k| entries.get(k).and_then(|e| Source::of(&e.value)))
        .collect())
}

/// How a sorted-set algebra command combines its inputs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ZOp {
    Union,
    Inter,
    Diff,
}

/// What a sorted-set algebra command does with the result.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ZOut<'a> {
    /// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: into this key.
    Store(&'a [u8]),
    /// ZUNION, ZINTER, ZDIFF: as a reply (WITHSCORES allowed).
    Reply,
    /// ZINTERCARD: only how many (LIMIT allowed).
    Count,
}

/// ZUNION/ZINTER/ZDIFF, their STORE forms and ZINTERCARD, as Redis's
/// zunionInterDiffGenericCommand: numkeys at `at`, the keys type-checked before the options,
/// WEIGHTS and AGGREGATE except for a difference, sets taken as members of score 1.
fn zset_algebra(ctx: &mut Ctx, args: &[&[u8]], at: usize, op: ZOp, out: ZOut) -> CmdResult {
    let n = int_arg(args[at])?;
    if n < 1 {
        return Err(CmdError::other(format!(
            "at least 1 input key is needed for '{}' command",
            lower(args[0])
        )));
    }
    let n = n as usize;
    if n > args.len() - at - 1 {
        return Err(CmdError::Syntax);
    }
    let keys = &args[at + 1..at + 1 + n];
    let sources = weighted_sources(ctx, keys)?;
    let mut weights = vec![1.0; n];
    let mut aggregate = Aggregate::Sum;
    let (mut withscores, mut limit) = (false, 0usize);
    let mut i = at + 1 + n;
    while i < args.len() {
        let remaining = args.len() - i;
        let combines = op != ZOp::Diff && out != ZOut::Count;
        if combines && remaining > n && is(args[i], "WEIGHTS") {
            for (w, arg) in weights.iter_mut().zip(&args[i + 1..=i + n]) {
                *w =
                    parse_f64(arg).ok_or_else(|| CmdError::other("weight value is not a float"))?;
            }
            i += n + 1;
        } else if combines && remaining >= 2 && is(args[i], "AGGREGATE") {
            aggregate = if is(args[i + 1], "SUM") {
                Aggregate::Sum
            } else if is(args[i + 1], "MIN") {
                Aggregate::Min
            } else if is(args[i + 1], "MAX") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            i += 2;
        } else if out == ZOut::Reply && is(args[i], "WITHSCORES") {
            withscores = true;
            i += 1;
        } else if out == ZOut::Count && remaining >= 2 && is(args[i], "LIMIT") {
            let negative = || CmdError::other("LIMIT can't be negative");
            let l = int_arg(args[i + 1]).map_err(|_| negative())?;
            limit = usize::try_from(l).map_err(|_| negative())?;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let weigh = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut acc: std::collections::HashMap<Blob, f64> = std::collections::HashMap::new();
    match op {
        ZOp::Union => {
            for (source, &w) in sources.iter().zip(&weights) {
                for (m, s) in source.iter().flat_map(|s| s.entries()) {
                    let v = weigh(s, w);
                    acc.entry(m.clone())
                        .and_modify(|cur| *cur = aggregate.apply(*cur, v))
                        .or_insert(v);
                }
            }
        }
        ZOp::Inter => {
            if let Some(present) = sources.iter().copied().collect::<Option<Vec<Source>>>() {
                if let Some((first, rest)) = present.split_first() {
                    'members: for (m, s) in first.entries() {
                        let mut v = weigh(s, weights[0]);
                        for (other, &w) in rest.iter().zip(&weights[1..]) {
                            match other.score(m) {
                                Some(score) => v = aggregate.apply(v, weigh(score, w)),
                                None => continue 'members,
                            }
                        }
                        acc.insert(m.clone(), v);
                        if out == ZOut::Count && limit > 0 && acc.len() >= limit {
                            break;
                        }
                    }
                }
            }
        }
        ZOp::Diff => {
            if let Some((Some(first), rest)) = sources.split_first() {
                for (m, s) in first.entries() {
                    if !rest.iter().flatten().any(|other| other.score(m).is_some()) {
                        acc.insert(m.clone(), s);
                    }
                }
            }
        }
    }
    match out {
        ZOut::Store(dst) => {
            let name = match op {
                ZOp::Union => "zunionstore",
                ZOp::Inter => "zinterstore",
                ZOp::Diff => "zdiffstore",
            };
            store_pairs(ctx, dst, acc.into_iter().collect(), name)
        }
        ZOut::Count => Ok(Reply::Int(acc.len() as i64)),
        ZOut::Reply => {
            // In sorted-set order, as Redis replies from the set it built.
            let mut pairs: Vec<(Blob, f64)> = acc.into_iter().collect();
            pairs.sort_by(|a, b| {
                a.1.partial_cmp(&b.1)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.0.cmp(&b.0))
            });
            Ok(pairs_reply(pairs, withscores, ctx.client.resp3))
        }
    }
}

pub fn zunionstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zset_algebra(ctx, args, 2, ZOp::Union, ZOut::Store(args[1]))
}
pub fn zinterstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zset_algebra(ctx, args, 2, ZOp::Inter, ZOut::Store(args[1]))
}
pub fn zdiffstore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zset_algebra(ctx, args, 2, ZOp::Diff, ZOut::Store(args[1]))
}
pub fn zunion(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zset_algebra(ctx, args, 1, ZOp::Union, ZOut::Reply)
}
pub fn zinter(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zset_algebra(ctx, args, 1, ZOp::Inter, ZOut::Reply)
}
pub fn zdiff(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zset_algebra(ctx, args, 1, ZOp::Diff, ZOut::Reply)
}
pub fn zintercard(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    zset_algebra(ctx, args, 1, ZOp::Inter, ZOut::Count)
}

pub fn zscan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let opts = parse_scan(args, 2, false)?;
    let Some(zset) = ctx.read::<ZSet>(args[1])? else {
        return Ok(scan_reply(0, vec![]));
    };
    let mut items = Vec::new();
    let mut emit = |m: &Blob, s: &f64| {
        if opts
            .pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, m, false))
        {
            items.push(Reply::bulk(m));
            items.push(Reply::bulk(format_double(*s)));
        }
    };
    // A compact (listpack) sorted set is returned whole, in order, as Redis does.
    let next = if zset.compact {
        zset.iter().for_each(|e| emit(&e.member, &e.score));
        0
    } else {
        scan_dict(&zset.scores, opts.cursor, opts.count, emit)
    };
    Ok(scan_reply(next, items))
}

pub fn zrandmember(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let with_scores = match args.len() {
        2 | 3 => false,
        4 if is(args[3], "WITHSCORES") => true,
        _ => return Err(CmdError::Syntax),
    };
    let count = args
        .get(2)
        .map(|c| random_count(c, with_scores))
        .transpose()?;
    let resp3 = ctx.client.resp3;
    let max_reply = ctx.ks.config.max_string;
    let Some(zset) = ctx.read::<ZSet>(args[1])? else {
        return Ok(if count.is_some() {
            Reply::Array(vec![])
        } else {
            Reply::Null
        });
    };
    let rng = &mut rand::rng();
    let Some((count, repeat)) = count else {
        return Ok(zset
            .scores
            .random_entry(rng)
            .map_or(Reply::Null, |(m, _)| Reply::bulk(m)));
    };
    if repeat {
        return random_repeats_reply(&zset.scores, count, with_scores, resp3, max_reply, |s| {
            Reply::Double(*s)
        });
    }
    let picked = pick_random(&zset.scores, count, rng);
    Ok(random_pairs_reply(picked, with_scores, resp3, |s| {
        Reply::Double(*s)
    }))
}
