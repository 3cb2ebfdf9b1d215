//! Generic key commands: deletion, existence, TTLs, renames, iteration, databases, OBJECT.

use super::{event, int_arg, is, lower, CmdError, CmdResult, Ctx};
use crate::keyspace::eviction::{idle_seconds, lfu_counter};
use crate::keyspace::{Blob, ValueType, DB_COUNT};
use crate::protocol::Reply;
use crate::util::glob_match;

pub fn del(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for key in &args[1..] {
        if ctx.ks.delete(db, key) {
            ctx.notify(event::GENERIC, "del", key);
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

pub fn exists(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let n = args[1..].iter().filter(|k| ctx.ks.contains(db, k)).count();
    Ok(Reply::Int(n as i64))
}

pub fn touch(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let n = args[1..]
        .iter()
        .filter(|k| ctx.ks.get(db, k).is_some())
        .count();
    Ok(Reply::Int(n as i64))
}

pub fn type_(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let name = ctx
        .ks
        .peek(db, args[1])
        .map_or("none", |e| e.value.value_type().name());
    Ok(Reply::Status(name))
}

fn expire_generic(
    ctx: &mut Ctx,
    args: &[&[u8]],
    unit_ms: i64,
    absolute: bool,
    cmd: &'static str,
) -> CmdResult {
    let amount = int_arg(args[2])?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        if is(opt, "NX") {
            nx = true;
        } else if is(opt, "XX") {
            xx = true;
        } else if is(opt, "GT") {
            gt = true;
        } else if is(opt, "LT") {
            lt = true;
        } else {
            return Err(CmdError::other(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::other(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CmdError::other(
            "GT and LT options at the same time are not compatible",
        ));
    }
    let now = ctx.ks.now as i64;
    let ms = amount
        .checked_mul(unit_ms)
        .ok_or(CmdError::InvalidExpire(cmd))?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now).ok_or(CmdError::InvalidExpire(cmd))?
    };
    let db = ctx.db();
    if !ctx.ks.contains(db, args[1]) {
        return Ok(Reply::Int(0));
    }
    let current = ctx.ks.expire_time(db, args[1]);
    let allowed = match current {
        Some(cur) => !nx && (!gt || at > cur as i64) && (!lt || at < cur as i64),
        // No TTL counts as an infinite one: GT never beats it, LT always does.
        None => !xx && !gt,
    };
    if !allowed {
        return Ok(Reply::Int(0));
    }
    let key = args[1];
    if at <= now {
        ctx.ks.delete(db, key);
        ctx.propagate(&[b"DEL", key]);
        ctx.notify(event::GENERIC, "del", key);
    } else {
        ctx.ks.set_expire(db, key, at as u64);
        ctx.notify(event::GENERIC, "expire", key);
        if ctx.aof_on() {
            let at = at.to_string();
            ctx.propagate(&[b"PEXPIREAT", key, at.as_bytes()]);
        }
    }
    Ok(Reply::Int(1))
}

pub fn expire(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1000, false, "expire")
}
pub fn pexpire(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}
pub fn expireat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}
pub fn pexpireat(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// TTL-style reply: -2 for a missing key, -1 for no expiry, else `f(expire_at_ms, now_ms)`.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], f: fn(u64, u64) -> i64) -> CmdResult {
    let db = ctx.db();
    if !ctx.ks.contains(db, key) {
        return Ok(Reply::Int(-2));
    }
    Ok(Reply::Int(match ctx.ks.expire_time(db, key) {
        None => -1,
        Some(at) => f(at, ctx.ks.now),
    }))
}

pub fn ttl(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], |at, now| {
        ((at.saturating_sub(now) + 500) / 1000) as i64
    })
}
pub fn pttl(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], |at, now| at.saturating_sub(now) as i64)
}
pub fn expiretime(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], |at, _| (at.saturating_add(500) / 1000) as i64)
}
pub fn pexpiretime(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ttl_generic(ctx, args[1], |at, _| at as i64)
}

pub fn persist(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let persisted = ctx.ks.persist(db, args[1]);
    if persisted {
        ctx.notify(event::GENERIC, "persist", args[1]);
    }
    Ok(Reply::Int(i64::from(persisted)))
}

/// Moves `src` to `dst` in database `db` (same or other), keeping the TTL, with the
/// events of `verb` (`rename` or `move`): `<verb>_from` on the source, `<verb>_to` on the
/// destination.
fn move_key(ctx: &mut Ctx, from_db: usize, src: &[u8], to_db: usize, dst: &[u8], verb: Verb) {
    let ttl = ctx.ks.expire_time(from_db, src);
    if let Some(value) = ctx.ks.remove(from_db, src) {
        ctx.ks.delete(to_db, dst);
        ctx.ks.set(to_db, dst, value);
        if let Some(at) = ttl {
            ctx.ks.set_expire(to_db, dst, at);
        }
        let (from, to) = match verb {
            Verb::Rename => ("rename_from", "rename_to"),
            Verb::Move => ("move_from", "move_to"),
        };
        ctx.ks.notify(event::GENERIC, from, from_db, src);
        ctx.ks.notify(event::GENERIC, to, to_db, dst);
    }
}

/// Which of the two key moves runs (for its events).
#[derive(Clone, Copy)]
enum Verb {
    Rename,
    Move,
}

fn rename_generic(ctx: &mut Ctx, args: &[&[u8]], nx: bool) -> CmdResult {
    let db = ctx.db();
    if !ctx.ks.contains(db, args[1]) {
        return Err(CmdError::NoSuchKey);
    }
    if args[1] == args[2] {
        return Ok(if nx { Reply::Int(0) } else { Reply::OK });
    }
    if nx && ctx.ks.contains(db, args[2]) {
        return Ok(Reply::Int(0));
    }
    move_key(ctx, db, args[1], db, args[2], Verb::Rename);
    Ok(if nx { Reply::Int(1) } else { Reply::OK })
}

pub fn rename(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, args, false)
}
pub fn renamenx(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    rename_generic(ctx, args, true)
}

pub fn keys(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    let now = ctx.ks.now;
    let d = &ctx.ks.dbs[db];
    let all = args[1][..] == b"*"[..];
    let mut out = Vec::new();
    d.entries.for_each(|k, e| {
        let live = !e.volatile || d.expires.get(k).is_none_or(|&at| at > now);
        if live && (all || glob_match(args[1], k, false)) {
            out.push(Reply::bulk(k));
        }
    });
    Ok(Reply::Array(out))
}

/// Options shared by SCAN, HSCAN, SSCAN and ZSCAN.
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Vec<u8>>,
    pub count: usize,
    /// Only keys of this type; `Some(None)` for an unknown type name, which matches nothing.
    pub type_filter: Option<Option<ValueType>>,
}

/// Parses `cursor [MATCH p] [COUNT n] [TYPE t]` starting at `args[at]`.
pub fn parse_scan(args: &[&[u8]], at: usize, allow_type: bool) -> Result<ScanArgs, CmdError> {
    let cursor = std::str::from_utf8(args[at])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| CmdError::other("invalid cursor"))?;
    let mut scan = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
        type_filter: None,
    };
    let mut i = at + 1;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return Err(CmdError::Syntax);
        };
        if is(args[i], "MATCH") {
            scan.pattern = (value[..] != b"*"[..]).then(|| value.to_vec());
        } else if is(args[i], "COUNT") {
            let n = int_arg(value)?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            scan.count = n as usize;
        } else if allow_type && is(args[i], "TYPE") {
            scan.type_filter = Some(ValueType::from_name(value));
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(scan)
}

/// Walks a dict with SCAN semantics: stops when `count` items were gathered or after
/// 10*count buckets. Returns the next cursor.
pub fn scan_dict<V>(
    dict: &crate::keyspace::Dict<V>,
    cursor: u64,
    count: usize,
    mut emit: impl FnMut(&Blob, &V),
) -> u64 {
    let mut cursor = cursor;
    let mut visited = 0;
    let mut max_iterations = count.saturating_mul(10);
    loop {
        cursor = dict.scan(cursor, |k, v| {
            visited += 1;
            emit(k, v);
        });
        max_iterations -= 1;
        if cursor == 0 || max_iterations == 0 || visited >= count {
            return cursor;
        }
    }
}

/// Builds the `[cursor, [items]]` reply.
pub fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(cursor.to_string()), Reply::Array(items)])
}

pub fn scan(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let opts = parse_scan(args, 1, true)?;
    let db = ctx.db();
    let mut found: Vec<Blob> = Vec::new();
    let next = scan_dict(&ctx.ks.dbs[db].entries, opts.cursor, opts.count, |k, e| {
        let pattern_ok = opts
            .pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, k, false));
        let type_ok = opts
            .type_filter
            .is_none_or(|t| t == Some(e.value.value_type()));
        if pattern_ok && type_ok {
            found.push(k.clone());
        }
    });
    // Keys found past their time are expired now rather than returned.
    let items = found
        .into_iter()
        .filter(|k| ctx.ks.contains(db, k))
        .map(|k| Reply::bulk(&k))
        .collect();
    Ok(scan_reply(next, items))
}

pub fn randomkey(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    Ok(ctx
        .ks
        .random_key(db)
        .map_or(Reply::Null, |k| Reply::bulk(&k)))
}

fn db_index(arg: &[u8]) -> Result<usize, CmdError> {
    let index = int_arg(arg)?;
    usize::try_from(index)
        .ok()
        .filter(|&i| i < DB_COUNT)
        .ok_or(CmdError::DbIndexOutOfRange)
}

pub fn copy(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let src_db = ctx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(args[i], "REPLACE") {
            replace = true;
            i += 1;
        } else if is(args[i], "DB") && i + 1 < args.len() {
            dst_db = db_index(args[i + 1])?;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if src_db == dst_db && args[1] == args[2] {
        return Err(CmdError::other(
            "source and destination objects are the same",
        ));
    }
    let Some(entry) = ctx.ks.peek(src_db, args[1]) else {
        return Ok(Reply::Int(0));
    };
    let value = entry.value.clone();
    let ttl = ctx.ks.expire_time(src_db, args[1]);
    if ctx.ks.contains(dst_db, args[2]) {
        if !replace {
            return Ok(Reply::Int(0));
        }
        ctx.ks.delete(dst_db, args[2]);
    }
    ctx.ks.set(dst_db, args[2], value);
    if let Some(at) = ttl {
        ctx.ks.set_expire(dst_db, args[2], at);
    }
    ctx.ks.notify(event::GENERIC, "copy_to", dst_db, args[2]);
    Ok(Reply::Int(1))
}

pub fn move_(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let src_db = ctx.db();
    let dst_db = db_index(args[2])?;
    if src_db == dst_db {
        return Err(CmdError::other(
            "source and destination objects are the same",
        ));
    }
    if !ctx.ks.contains(src_db, args[1]) || ctx.ks.contains(dst_db, args[1]) {
        return Ok(Reply::Int(0));
    }
    move_key(ctx, src_db, args[1], dst_db, args[1], Verb::Move);
    Ok(Reply::Int(1))
}

pub fn dbsize(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(ctx.ks.dbs[ctx.client.db].len() as i64))
}

fn flush_mode_ok(args: &[&[u8]]) -> Result<(), CmdError> {
    match args.len() {
        1 => Ok(()),
        2 if is(args[1], "ASYNC") || is(args[1], "SYNC") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

pub fn flushdb(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    flush_mode_ok(args)?;
    let db = ctx.db();
    ctx.ks.flush_db(db);
    ctx.shared.blocked.lock().keys_replaced(ctx.ks, |d| d == db);
    Ok(Reply::OK)
}

pub fn flushall(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    flush_mode_ok(args)?;
    ctx.ks.flush_all();
    ctx.shared.blocked.lock().keys_replaced(ctx.ks, |_| true);
    Ok(Reply::OK)
}

pub fn select(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    ctx.client.db = db_index(args[1])?;
    Ok(Reply::OK)
}

pub fn swapdb(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let a =
        crate::util::parse_i64(args[1]).ok_or_else(|| CmdError::other("invalid first DB index"))?;
    let b = crate::util::parse_i64(args[2])
        .ok_or_else(|| CmdError::other("invalid second DB index"))?;
    let valid = |i: i64| usize::try_from(i).ok().filter(|&i| i < DB_COUNT);
    let (Some(a), Some(b)) = (valid(a), valid(b)) else {
        return Err(CmdError::DbIndexOutOfRange);
    };
    ctx.ks.swap_db(a, b);
    ctx.shared
        .blocked
        .lock()
        .keys_replaced(ctx.ks, |db| db == a || db == b);
    Ok(Reply::OK)
}

const POLICY_SWITCH_NOTE: &str = "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

pub fn object(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = lower(args[1]);
    if sub == "help" {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help.",
        ];
        return Ok(Reply::Array(
            lines
                .iter()
                .map(|l| Reply::StatusOwned((*l).into()))
                .collect(),
        ));
    }
    if !matches!(sub.as_str(), "encoding" | "freq" | "idletime" | "refcount") {
        return Err(CmdError::other(format!(
            "unknown subcommand '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(args[1])
        )));
    }
    if args.len() != 3 {
        return Err(CmdError::Arity(format!("object|{sub}")));
    }
    let db = ctx.db();
    let policy = ctx.ks.config.policy;
    let (now, decay) = (ctx.ks.now, ctx.ks.config.lfu_decay_time);
    let Some(entry) = ctx.ks.peek(db, args[2]) else {
        return Ok(Reply::Null);
    };
    Ok(match sub.as_str() {
        "encoding" => Reply::bulk(entry.value.encoding()),
        "refcount" => Reply::Int(1),
        "freq" => {
            if !policy.is_lfu() {
                return Err(CmdError::other(format!(
                    "An LFU maxmemory policy is not selected, access frequency not tracked. {POLICY_SWITCH_NOTE}"
                )));
            }
            Reply::Int(i64::from(lfu_counter(entry.access, now, decay)))
        }
        _ => {
            if policy.is_lfu() {
                return Err(CmdError::other(format!(
                    "An LFU maxmemory policy is selected, idle time not tracked. {POLICY_SWITCH_NOTE}"
                )));
            }
            Reply::Int(idle_seconds(entry.access, now) as i64)
        }
    })
}
