//! Stream commands (t_stream.c): XADD, XRANGE/XREVRANGE, XLEN, XDEL, XTRIM, XSETID, XREAD and
//! XREADGROUP (blocking like the list pops: `Ctx::block`, run again when the stream grows),
//! consumer groups (XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM) and XINFO, with Redis 7.0's
//! texts. Writes log what Redis propagates: XADD with the id it generated and an exact trim,
//! XREADGROUP deliveries as XCLAIMs, NOACK reads as XGROUP SETID.

use super::lists::block;
use super::{event, int_arg, is, lower, CmdError, CmdResult, Ctx};
use crate::keyspace::listpack::Elem;
use crate::keyspace::stream::{
    Group, NodeLimits, Stream, StreamEntry, StreamId, Trim, ENTRIES_READ_UNKNOWN,
};
use crate::keyspace::{Blob, Value};
use crate::protocol::{ArrayWriter, Reply};

/// What a blocked XREAD serves at most per stream when it gave no COUNT.
const BLOCKED_DEFAULT_COUNT: i64 = 1000;

fn new_stream() -> Value {
    Value::Stream(Box::default())
}

fn invalid_id() -> CmdError {
    CmdError::other("Invalid stream ID specified as stream command argument")
}

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// C's strtoull as Redis's string2ull uses it: spaces, a sign and leading zeros allowed, a
/// negative number refused unless it only reads as one through strtoull's wrap-around.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(n) = crate::util::parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let start = s.iter().position(|c| !b" \t\n\x0b\x0c\r".contains(c))?;
    let mut rest = &s[start..];
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &c in rest {
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if negative { n.wrapping_neg() } else { n })
}

/// An id argument: `ms-seq`, `ms` (seq `missing_seq`), and unless `strict` also `-` and `+`.
/// With `star`, `ms-*` is taken too: the second value says whether the seq was given.
fn parse_id_with(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    star: bool,
) -> Result<(StreamId, bool), CmdError> {
    // Redis reads the argument as a C string: it ends at a NUL.
    let arg = arg.split(|&b| b == 0).next().unwrap_or_default();
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" | b"+" if strict => return Err(invalid_id()),
        b"-" => return Ok((StreamId::MIN, true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms).ok_or_else(invalid_id)?;
    match seq {
        Some(b"*") if star => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((
            StreamId::new(ms, parse_u64(seq).ok_or_else(invalid_id)?),
            true,
        )),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

fn parse_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    parse_id_with(arg, missing_seq, false, false).map(|(id, _)| id)
}

fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_id_with(arg, 0, true, false).map(|(id, _)| id)
}

/// A range bound: `(id` is exclusive (and strict), anything else as `parse_id`.
fn parse_bound(arg: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        let (id, _) = parse_id_with(&arg[1..], missing_seq, true, false)?;
        let moved = if start { id.next() } else { id.prev() };
        return moved.ok_or_else(|| {
            CmdError::other(if start {
                "invalid start ID for the interval"
            } else {
                "invalid end ID for the interval"
            })
        });
    }
    parse_id(arg, missing_seq)
}

/// `ms-seq` as reply bytes (inline, no allocation).
fn id_bytes(id: StreamId) -> Blob {
    let mut out = Blob::new();
    out.extend_from_slice(itoa::Buffer::new().format(id.ms).as_bytes());
    out.push(b'-');
    out.extend_from_slice(itoa::Buffer::new().format(id.seq).as_bytes());
    out
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id_bytes(id))
}

fn write_elem(out: &mut ArrayWriter, elem: Elem) {
    match elem {
        Elem::Str(s) => out.bulk(s),
        Elem::Int(n) => out.bulk(itoa::Buffer::new().format(n).as_bytes()),
    }
}

/// Writes `[id, [field, value, ...]]`.
fn write_entry(out: &mut ArrayWriter, entry: &StreamEntry) {
    out.array_header(2);
    out.bulk(&id_bytes(entry.id));
    out.array_header(entry.fields.len() * 2);
    for (f, v) in &entry.fields {
        write_elem(out, *f);
        write_elem(out, *v);
    }
}

/// `[id, [field, value, ...]]`.
fn entry_reply(entry: &StreamEntry) -> Reply {
    let mut out = ArrayWriter::headless(false);
    write_entry(&mut out, entry);
    out.finish()
}

/// Entries from `start` to `end`, at most `count` (0: all), encoded as they are read.
fn range_reply(stream: &Stream, start: StreamId, end: StreamId, rev: bool, count: usize) -> Reply {
    let mut out = ArrayWriter::headless(false);
    let mut n = 0;
    stream.scan(start, end, rev, |e| {
        write_entry(&mut out, &e);
        n += 1;
        count == 0 || n < count
    });
    out.into_array(n)
}

fn node_limits(ctx: &Ctx) -> NodeLimits {
    let e = &ctx.ks.config.encodings;
    NodeLimits {
        max_bytes: e.stream_node_max_bytes,
        max_entries: e.stream_node_max_entries,
    }
}

/// The trimming and id arguments of XADD and XTRIM (streamParseAddOrTrimArgsOrReply).
#[derive(Default)]
struct AddArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Where the MAXLEN count or MINID id is, to log the exact trim in its place.
    trim_at: usize,
    no_mkstream: bool,
    /// The id given (None: `*`) and whether its sequence was.
    id: Option<(StreamId, bool)>,
    /// Where the id (XADD) or the end of the options (XTRIM) is.
    id_at: usize,
}

fn parse_add_args(ctx: &Ctx, args: &[&[u8]], xadd: bool) -> Result<AddArgs, CmdError> {
    let mut parsed = AddArgs::default();
    let mut limit_given = false;
    let mut i = 2;
    let incompatible = || {
        CmdError::other(
            "syntax error, MAXLEN and MINID options at the same time are not compatible",
        )
    };
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args[i];
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "MAXLEN") || is(opt, "MINID")) && more > 0 {
            if parsed.trim.is_some() {
                return Err(incompatible());
            }
            parsed.approx = false;
            if more >= 2 && (args[i + 1] == b"~" || args[i + 1] == b"=") {
                parsed.approx = args[i + 1] == b"~";
                i += 1;
            }
            let value = args[i + 1];
            parsed.trim = Some(if is(opt, "MAXLEN") {
                let n = int_arg(value)?;
                if n < 0 {
                    return Err(CmdError::other("The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_strict_id(value)?)
            });
            i += 1;
            parsed.trim_at = i;
        } else if is(opt, "LIMIT") && more > 0 {
            let n = int_arg(args[i + 1])?;
            if n < 0 {
                return Err(CmdError::other("The LIMIT argument must be >= 0."));
            }
            parsed.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "NOMKSTREAM") {
            parsed.no_mkstream = true;
        } else if xadd {
            parsed.id = Some(parse_id_with(opt, 0, true, true)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    parsed.id_at = i;
    if parsed.limit > 0 && parsed.trim.is_none() {
        return Err(CmdError::other(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && parsed.trim.is_none() {
        return Err(CmdError::other(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if ctx.client.replaying {
        // A logged trim is exact already (see `log_trim`).
        parsed.limit = 0;
    } else if limit_given {
        if !parsed.approx {
            return Err(CmdError::other(
                "syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if parsed.approx {
        let per_node = ctx.ks.config.encodings.stream_node_max_entries as u64;
        parsed.limit = match per_node.saturating_mul(100) {
            0 => 10_000,
            n => n.min(1_000_000),
        };
    } else {
        parsed.limit = 0;
    }
    Ok(parsed)
}

/// The logged form of an approximate trim: `=` and what it left (the length, or the first
/// entry's id), so a replay trims exactly as much.
fn exact_trim(logged: &mut [Vec<u8>], parsed: &AddArgs, stream: &Stream) {
    if !parsed.approx {
        return;
    }
    logged[parsed.trim_at - 1] = b"=".to_vec();
    logged[parsed.trim_at] = match parsed.trim {
        Some(Trim::MaxLen(_)) => stream.len().to_string().into_bytes(),
        _ => stream
            .edge_id(false)
            .unwrap_or_default()
            .text()
            .into_bytes(),
    };
}

pub fn xadd(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let parsed = parse_add_args(ctx, args, true)?;
    let fields_at = parsed.id_at + 1;
    let field_args = args.len() as i64 - fields_at as i64;
    if field_args < 2 || field_args % 2 == 1 {
        return Err(CmdError::Arity("xadd".into()));
    }
    if let Some((id, true)) = parsed.id {
        if id == StreamId::MIN {
            return Err(CmdError::other(
                "The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let key = args[1];
    let limits = node_limits(ctx);
    let now = ctx.ks.now;
    let db = ctx.db();
    let aof = ctx.aof_on();
    let existed = match ctx.read::<Stream>(key)? {
        Some(_) => true,
        None if parsed.no_mkstream => return Ok(Reply::Null),
        None => false,
    };
    let mut stream = ctx.write_or_create::<Stream>(key, new_stream)?;
    if stream.last_id == StreamId::MAX {
        return Err(CmdError::other(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let last = stream.last_id;
    let id = match parsed.id {
        Some((id, true)) => Some(id),
        Some((id, false)) if id.ms == last.ms => last.next().filter(|n| n.ms == last.ms),
        Some((id, false)) => Some(id),
        None if now > last.ms => Some(StreamId::new(now, 0)),
        None => last.next(),
    };
    let id = id.filter(|&id| id > last).ok_or_else(|| {
        CmdError::other(
            "The ID specified in XADD is equal or smaller than the target stream top item",
        )
    })?;
    if args[fields_at..].iter().map(|a| a.len()).sum::<usize>() > 1 << 30 {
        return Err(CmdError::other("Elements are too large to be stored"));
    }
    let pairs: Vec<(&[u8], &[u8])> = args[fields_at..]
        .chunks_exact(2)
        .map(|p| (p[0], p[1]))
        .collect();
    stream.append(id, &pairs, limits);
    let trimmed = match parsed.trim {
        Some(trim) => stream.trim(trim, parsed.approx, parsed.limit),
        None => 0,
    };
    if aof && (parsed.approx || !matches!(parsed.id, Some((_, true)))) {
        let mut logged: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        exact_trim(&mut logged, &parsed, &stream);
        logged[parsed.id_at] = id.text().into_bytes();
        drop(stream);
        ctx.propagate(&logged);
    } else {
        drop(stream);
    }
    if existed {
        ctx.ks.signal_ready(db, key);
    }
    ctx.notify(event::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(event::STREAM, "xtrim", key);
    }
    Ok(id_reply(id))
}

fn range(ctx: &mut Ctx, args: &[&[u8]], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (args[3], args[2])
    } else {
        (args[2], args[3])
    };
    let start = parse_bound(start_arg, 0, true)?;
    let end = parse_bound(end_arg, u64::MAX, false)?;
    let mut count: i64 = -1;
    let mut i = 4;
    while i < args.len() {
        if is(args[i], "COUNT") && i + 1 < args.len() {
            count = int_arg(args[i + 1])?.max(0);
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let Some(stream) = ctx.read::<Stream>(args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(match count {
        0 => Reply::NullArray,
        -1 => range_reply(stream, start, end, rev, 0),
        n => range_reply(stream, start, end, rev, n as usize),
    })
}

pub fn xrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range(ctx, args, false)
}

pub fn xrevrange(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    range(ctx, args, true)
}

pub fn xlen(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(
        ctx.read::<Stream>(args[1])?.map_or(0, |s| s.len() as i64),
    ))
}

pub fn xdel(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let ids = args[2..]
        .iter()
        .map(|a| parse_strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    if ctx.read::<Stream>(args[1])?.is_none() {
        return Ok(Reply::Int(0));
    }
    let Some(mut stream) = ctx.write::<Stream>(args[1])? else {
        return Ok(Reply::Int(0));
    };
    let deleted = ids.into_iter().filter(|&id| stream.delete(id)).count();
    drop(stream);
    if deleted == 0 {
        ctx.propagate_none();
    } else {
        ctx.notify(event::STREAM, "xdel", args[1]);
    }
    Ok(Reply::Int(deleted as i64))
}

pub fn xtrim(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let parsed = parse_add_args(ctx, args, false)?;
    if ctx.read::<Stream>(args[1])?.is_none() {
        return Ok(Reply::Int(0));
    }
    let Some(mut stream) = ctx.write::<Stream>(args[1])? else {
        return Ok(Reply::Int(0));
    };
    let Some(trim) = parsed.trim else {
        return Ok(Reply::Int(0));
    };
    let removed = stream.trim(trim, parsed.approx, parsed.limit);
    if removed == 0 {
        drop(stream);
        ctx.propagate_none();
        return Ok(Reply::Int(0));
    }
    if parsed.approx {
        let mut logged: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        exact_trim(&mut logged, &parsed, &stream);
        drop(stream);
        ctx.propagate(&logged);
    } else {
        drop(stream);
    }
    ctx.notify(event::STREAM, "xtrim", args[1]);
    Ok(Reply::Int(removed as i64))
}

pub fn xsetid(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let id = parse_strict_id(args[2])?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is(args[i], "ENTRIESADDED") && more > 0 {
            let n = int_arg(args[i + 1])?;
            if n < 0 {
                return Err(CmdError::other("entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if is(args[i], "MAXDELETEDID") && more > 0 {
            max_deleted = parse_strict_id(args[i + 1])?;
            if id < max_deleted {
                return Err(CmdError::other(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    if ctx.read::<Stream>(args[1])?.is_none() {
        return Err(CmdError::NoSuchKey);
    }
    let Some(mut stream) = ctx.write::<Stream>(args[1])? else {
        return Err(CmdError::NoSuchKey);
    };
    if !stream.is_empty() {
        if stream.edge_id(true).is_some_and(|top| id < top) {
            return Err(CmdError::other(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added.is_some_and(|n| stream.len() > n) {
            return Err(CmdError::other(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    stream.last_id = id;
    if let Some(n) = entries_added {
        stream.entries_added = n;
    }
    if max_deleted != StreamId::MIN {
        stream.max_deleted_id = max_deleted;
    }
    drop(stream);
    ctx.notify(event::STREAM, "xsetid", args[1]);
    Ok(Reply::OK)
}

/// XREAD and XREADGROUP's options.
struct ReadArgs<'a> {
    block: Option<&'a [u8]>,
    count: i64,
    group: Option<(&'a [u8], &'a [u8])>,
    noack: bool,
    keys: &'a [&'a [u8]],
    ids: &'a [&'a [u8]],
}

fn parse_read_args<'a>(
    ctx: &Ctx,
    args: &'a [&'a [u8]],
    xreadgroup: bool,
) -> Result<ReadArgs<'a>, CmdError> {
    let mut parsed = ReadArgs {
        block: None,
        count: 0,
        group: None,
        noack: false,
        keys: &[],
        ids: &[],
    };
    let mut streams_at = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args[i];
        if is(opt, "BLOCK") && more > 0 {
            if ctx.client.in_script {
                return Err(CmdError::other(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    text(args[0])
                )));
            }
            i += 1;
            parsed.block = Some(args[i]);
        } else if is(opt, "COUNT") && more > 0 {
            i += 1;
            parsed.count = int_arg(args[i])?.max(0);
        } else if is(opt, "STREAMS") && more > 0 {
            let rest = args.len() - (i + 1);
            if !rest.is_multiple_of(2) {
                return Err(CmdError::other("Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            streams_at = Some(i + 1);
            break;
        } else if is(opt, "GROUP") && more >= 2 {
            if !xreadgroup {
                return Err(CmdError::other(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            parsed.group = Some((args[i + 1], args[i + 2]));
            i += 2;
        } else if is(opt, "NOACK") {
            if !xreadgroup {
                return Err(CmdError::other(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            parsed.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let Some(at) = streams_at else {
        return Err(CmdError::Syntax);
    };
    if xreadgroup && parsed.group.is_none() {
        return Err(CmdError::other("Missing GROUP option for XREADGROUP"));
    }
    let half = (args.len() - at) / 2;
    parsed.keys = &args[at..at + half];
    parsed.ids = &args[at + half..];
    Ok(parsed)
}

/// The timeout of BLOCK in ms, as an absolute deadline (None: forever); kept across retries.
fn block_deadline(ctx: &mut Ctx, arg: &[u8]) -> Result<Option<u64>, CmdError> {
    if let Some(known) = ctx.client.block_deadline {
        return Ok(known);
    }
    let ms = crate::util::parse_i64(arg)
        .ok_or_else(|| CmdError::other("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::other("timeout is negative"));
    }
    let deadline = (ms > 0).then(|| ctx.ks.now.saturating_add(ms as u64));
    ctx.client.block_deadline = Some(deadline);
    Ok(deadline)
}

/// What one stream of an XREAD or XREADGROUP asks for.
#[derive(Clone, Copy)]
enum Wanted {
    /// Entries after this id.
    After(StreamId),
    /// XREADGROUP's `>`: entries never delivered to the group.
    New,
    /// XREADGROUP with an id: the consumer's pending entries after it.
    History(StreamId),
}

pub fn xread(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    read(ctx, args, false)
}

pub fn xreadgroup(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    read(ctx, args, true)
}

fn read(ctx: &mut Ctx, args: &[&[u8]], xreadgroup: bool) -> CmdResult {
    let parsed = parse_read_args(ctx, args, xreadgroup)?;
    let deadline = match parsed.block {
        Some(arg) => Some(block_deadline(ctx, arg)?),
        None => None,
    };
    let serving_blocked = ctx.client.serving_blocked;
    let mut wanted = Vec::with_capacity(parsed.keys.len());
    for (key, id) in parsed.keys.iter().zip(parsed.ids) {
        let stream = match ctx.read_source::<Stream>(key) {
            Ok(stream) => stream,
            // Run again after a wait, a key that no longer holds a stream is absent: XREAD
            // waits on, XREADGROUP's wait ends with an error.
            Err(CmdError::WrongType) if serving_blocked => None,
            Err(e) => return Err(e),
        };
        if let Some((group, _)) = parsed.group {
            let found = stream.and_then(|s| s.groups.get(group));
            if found.is_none() {
                return Err(match (serving_blocked, stream) {
                    (true, None) => {
                        CmdError::Coded("UNBLOCKED the stream key no longer exists".into())
                    }
                    (true, Some(_)) => CmdError::Coded(
                        "NOGROUP the consumer group this client was blocked on no longer exists"
                            .into(),
                    ),
                    _ => CmdError::Coded(format!(
                        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                        text(key),
                        text(group)
                    )),
                });
            }
        }
        wanted.push(match *id {
            b"$" if xreadgroup => {
                return Err(CmdError::other("The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            b"$" => Wanted::After(stream.map_or(StreamId::MIN, |s| s.last_id)),
            b">" if !xreadgroup => {
                return Err(CmdError::other("The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
            }
            b">" => Wanted::New,
            other if xreadgroup => Wanted::History(parse_strict_id(other)?),
            other => Wanted::After(parse_strict_id(other)?),
        });
    }
    let count = match parsed.count {
        0 => 0,
        n => n as usize,
    };
    let mut served = Vec::new();
    for (key, want) in parsed.keys.iter().zip(&wanted) {
        let entries = match parsed.group {
            Some((group, consumer)) => {
                read_group(ctx, key, group, consumer, *want, count, parsed.noack)?
            }
            None => match (ctx.read::<Stream>(key), want) {
                (Ok(Some(stream)), Wanted::After(after)) => {
                    let has_new = stream.edge_id(true).is_some_and(|top| top > *after);
                    has_new.then(|| {
                        let start = after.next().unwrap_or(StreamId::MIN);
                        range_reply(stream, start, StreamId::MAX, false, count)
                    })
                }
                _ => None,
            },
        };
        if let Some(entries) = entries {
            served.push((Reply::bulk(key), entries));
        }
    }
    if !served.is_empty() {
        return Ok(if ctx.client.resp3 {
            Reply::Map(served)
        } else {
            Reply::Array(
                served
                    .into_iter()
                    .map(|(k, v)| Reply::Array(vec![k, v]))
                    .collect(),
            )
        });
    }
    let Some(deadline) = deadline else {
        return Ok(Reply::NullArray);
    };
    let reply = block(ctx, deadline, Reply::NullArray)?;
    if let Some(request) = ctx.block.as_mut() {
        request.retry_args = Some(retry_args(&parsed, &wanted, xreadgroup));
    }
    Ok(reply)
}

/// The command a blocked XREAD or XREADGROUP runs again with: `$` resolved to the id it was
/// when the client blocked, and Redis's count for a blocked read without one.
fn retry_args(parsed: &ReadArgs, wanted: &[Wanted], xreadgroup: bool) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    out.push(if xreadgroup { "XREADGROUP" } else { "XREAD" }.into());
    if let Some((group, consumer)) = parsed.group {
        out.extend([b"GROUP".to_vec(), group.to_vec(), consumer.to_vec()]);
    }
    if parsed.noack {
        out.push(b"NOACK".to_vec());
    }
    let count = match parsed.count {
        0 => BLOCKED_DEFAULT_COUNT,
        n => n,
    };
    out.extend([b"COUNT".to_vec(), count.to_string().into_bytes()]);
    out.extend([b"BLOCK".to_vec(), parsed.block.unwrap_or(b"0").to_vec()]);
    out.push(b"STREAMS".to_vec());
    out.extend(parsed.keys.iter().map(|k| k.to_vec()));
    for want in wanted {
        out.push(match want {
            Wanted::After(id) | Wanted::History(id) => id.text().into_bytes(),
            Wanted::New => b">".to_vec(),
        });
    }
    out
}

/// One stream of an XREADGROUP: new entries delivered (and made pending unless NOACK), or
/// the consumer's history. None if there is nothing new to serve.
fn read_group(
    ctx: &mut Ctx,
    key: &[u8],
    group_name: &[u8],
    consumer: &[u8],
    want: Wanted,
    count: usize,
    noack: bool,
) -> Result<Option<Reply>, CmdError> {
    let now = ctx.ks.now;
    let serve = match (ctx.read::<Stream>(key)?, want) {
        (Some(stream), Wanted::New) => {
            let last = stream
                .groups
                .get(group_name)
                .map_or(StreamId::MAX, |g| g.last_id);
            stream.edge_id(true).is_some_and(|top| top > last)
        }
        (Some(_), _) => true,
        (None, _) => false,
    };
    if !serve {
        return Ok(None);
    }
    let aof = ctx.aof_on();
    let Some(mut stream) = ctx.write::<Stream>(key)? else {
        return Ok(None);
    };
    let Some(group) = stream.groups.get_mut(group_name) else {
        return Ok(None);
    };
    let (owner, created) = group.consumer(consumer, now);
    owner.seen_time = now;
    if let Wanted::History(after) = want {
        let start = after.next().unwrap_or(StreamId::MIN);
        let limit = if count == 0 { usize::MAX } else { count };
        let ids: Vec<StreamId> = owner.pending.range(start..).take(limit).copied().collect();
        let mut out = Vec::with_capacity(ids.len());
        let mut redelivered = Vec::new();
        for id in ids {
            match stream.get(id) {
                Some(entry) => {
                    out.push(entry_reply(&entry));
                    redelivered.push(id);
                }
                // Deleted since it was delivered: its id with a nil body.
                None => out.push(Reply::Array(vec![id_reply(id), Reply::NullArray])),
            }
        }
        if let Some(group) = stream.groups.get_mut(group_name) {
            for id in redelivered {
                if let Some(p) = group.pending.get_mut(&id) {
                    p.delivery_time = now;
                    p.delivery_count += 1;
                }
            }
        }
        drop(stream);
        ctx.propagate_none();
        if created {
            ctx.notify(event::STREAM, "xgroup-createconsumer", key);
        }
        return Ok(Some(Reply::Array(out)));
    }
    let after = group.last_id;
    let mut delivered = Vec::new();
    let mut out = ArrayWriter::headless(false);
    stream.scan(
        after.next().unwrap_or(StreamId::MAX),
        StreamId::MAX,
        false,
        |e| {
            delivered.push(e.id);
            write_entry(&mut out, &e);
            count == 0 || delivered.len() < count
        },
    );
    let mut logged: Vec<Vec<Vec<u8>>> = Vec::new();
    for &id in &delivered {
        stream.advance_group(group_name, id);
        if noack {
            continue;
        }
        let Some(group) = stream.groups.get_mut(group_name) else {
            continue;
        };
        group.deliver(id, consumer, now);
        if aof {
            logged.push(xclaim_form(key, group_name, group, id));
        }
    }
    if aof && noack {
        if created {
            logged.push(vec![
                b"XGROUP".to_vec(),
                b"CREATECONSUMER".to_vec(),
                key.to_vec(),
                group_name.to_vec(),
                consumer.to_vec(),
            ]);
        }
        if let Some(group) = stream.groups.get(group_name) {
            if group.last_id > after {
                logged.push(setid_form(key, group_name, group));
            }
        }
    }
    drop(stream);
    ctx.propagate_all(&logged);
    if created {
        ctx.notify(event::STREAM, "xgroup-createconsumer", key);
    }
    Ok(Some(out.into_array(delivered.len())))
}

/// How Redis logs a delivery or claim: an XCLAIM that sets the pending entry as it is now.
fn xclaim_form(key: &[u8], group_name: &[u8], group: &Group, id: StreamId) -> Vec<Vec<u8>> {
    let pending = group.pending.get(&id);
    let consumer = pending.map_or_else(Vec::new, |p| p.consumer.to_vec());
    let time = pending.map_or(0, |p| p.delivery_time);
    let retries = pending.map_or(0, |p| p.delivery_count);
    vec![
        b"XCLAIM".to_vec(),
        key.to_vec(),
        group_name.to_vec(),
        consumer,
        b"0".to_vec(),
        id.text().into_bytes(),
        b"TIME".to_vec(),
        time.to_string().into_bytes(),
        b"RETRYCOUNT".to_vec(),
        retries.to_string().into_bytes(),
        b"FORCE".to_vec(),
        b"JUSTID".to_vec(),
        b"LASTID".to_vec(),
        group.last_id.text().into_bytes(),
    ]
}

fn setid_form(key: &[u8], group_name: &[u8], group: &Group) -> Vec<Vec<u8>> {
    vec![
        b"XGROUP".to_vec(),
        b"SETID".to_vec(),
        key.to_vec(),
        group_name.to_vec(),
        group.last_id.text().into_bytes(),
        b"ENTRIESREAD".to_vec(),
        group.entries_read.to_string().into_bytes(),
    ]
}

fn subcommand_error(args: &[&[u8]]) -> CmdError {
    CmdError::other(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        text(&args[1][..args[1].len().min(128)]),
        text(args[0]).to_uppercase()
    ))
}

/// Checks a container command's subcommand and its arity (Redis's `name|sub` commands).
fn check_subcommand(args: &[&[u8]], subs: &[(&str, i32)]) -> Result<String, CmdError> {
    let sub = lower(args[1]);
    let Some(&(_, arity)) = subs.iter().find(|(name, _)| *name == sub) else {
        return Err(CmdError::other(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            text(&args[1][..args[1].len().min(128)]),
            text(args[0]).to_uppercase()
        )));
    };
    let n = args.len() as i32;
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(CmdError::Arity(format!("{}|{}", lower(args[0]), sub)));
    }
    Ok(sub)
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> CmdError {
    CmdError::Coded(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        text(group),
        text(key)
    ))
}

pub fn xgroup(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = check_subcommand(
        args,
        &[
            ("create", -5),
            ("setid", -5),
            ("destroy", 4),
            ("createconsumer", 5),
            ("delconsumer", 5),
            ("help", 2),
        ],
    )?;
    if sub == "help" {
        return Ok(super::help_reply(
            "XGROUP",
            &[
                "CREATE <key> <groupname> <id|$> [option]",
                "    Create a new consumer group. Options are:",
                "    * MKSTREAM",
                "      Create the empty stream if it does not exist.",
                "    * ENTRIESREAD entries_read",
                "      Set the group's entries_read counter (internal use).",
                "CREATECONSUMER <key> <groupname> <consumer>",
                "    Create a new consumer in the specified group.",
                "DELCONSUMER <key> <groupname> <consumer>",
                "    Remove the specified consumer.",
                "DESTROY <key> <groupname>",
                "    Remove the specified group.",
                "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                "    Set the current group ID and entries_read counter.",
            ],
        ));
    }
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_UNKNOWN;
    let mut i = 5;
    while i < args.len() {
        if sub == "create" && is(args[i], "MKSTREAM") {
            mkstream = true;
            i += 1;
        } else if (sub == "create" || sub == "setid")
            && is(args[i], "ENTRIESREAD")
            && i + 1 < args.len()
        {
            entries_read = int_arg(args[i + 1])?;
            if entries_read < 0 && entries_read != ENTRIES_READ_UNKNOWN {
                return Err(CmdError::other(
                    "value for ENTRIESREAD must be positive or -1",
                ));
            }
            i += 2;
        } else {
            return Err(subcommand_error(args));
        }
    }
    let (key, name) = (args[2], args[3]);
    let exists = ctx
        .read::<Stream>(key)?
        .map(|s| s.groups.contains_key(name));
    if !mkstream {
        match exists {
            None => return Err(CmdError::other("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")),
            Some(false) if matches!(sub.as_str(), "setid" | "createconsumer" | "delconsumer") => {
                return Err(nogroup_for_key(name, key));
            }
            _ => {}
        }
    }
    let now = ctx.ks.now;
    let db = ctx.db();
    match sub.as_str() {
        "create" if args.len() <= 8 => {
            let last = ctx.read::<Stream>(key)?.map(|s| s.last_id);
            let id = match args[4] {
                b"$" => last.unwrap_or_default(),
                other => parse_strict_id(other)?,
            };
            if exists == Some(true) {
                return Err(CmdError::Coded(
                    "BUSYGROUP Consumer Group name already exists".into(),
                ));
            }
            let mut stream = ctx.write_or_create::<Stream>(key, new_stream)?;
            stream
                .groups
                .insert(Blob::from_slice(name), Group::new(id, entries_read));
            drop(stream);
            ctx.notify(event::STREAM, "xgroup-create", key);
            Ok(Reply::OK)
        }
        "setid" if args.len() == 5 || args.len() == 7 => {
            let Some(mut stream) = ctx.write::<Stream>(key)? else {
                return Err(subcommand_error(args));
            };
            let id = match args[4] {
                b"$" => stream.last_id,
                other => parse_id(other, 0)?,
            };
            let Some(group) = stream.groups.get_mut(name) else {
                return Err(nogroup_for_key(name, key));
            };
            group.last_id = id;
            group.entries_read = entries_read;
            drop(stream);
            ctx.notify(event::STREAM, "xgroup-setid", key);
            Ok(Reply::OK)
        }
        "destroy" => {
            if exists != Some(true) {
                return Ok(Reply::Int(0));
            }
            if let Some(mut stream) = ctx.write::<Stream>(key)? {
                stream.groups.remove(name);
            }
            ctx.ks.signal_ready(db, key);
            ctx.notify(event::STREAM, "xgroup-destroy", key);
            Ok(Reply::Int(1))
        }
        "createconsumer" => {
            let Some(mut stream) = ctx.write::<Stream>(key)? else {
                return Ok(Reply::Int(0));
            };
            let created = stream
                .groups
                .get_mut(name)
                .is_some_and(|g| g.consumer(args[4], now).1);
            drop(stream);
            if created {
                ctx.notify(event::STREAM, "xgroup-createconsumer", key);
            } else {
                ctx.propagate_none();
            }
            Ok(Reply::Int(i64::from(created)))
        }
        "delconsumer" => {
            let Some(mut stream) = ctx.write::<Stream>(key)? else {
                return Ok(Reply::Int(0));
            };
            let pending = stream
                .groups
                .get_mut(name)
                .and_then(|g| g.delete_consumer(args[4]));
            drop(stream);
            if pending.is_none() {
                ctx.propagate_none();
            } else {
                ctx.notify(event::STREAM, "xgroup-delconsumer", key);
            }
            Ok(Reply::Int(pending.unwrap_or(0) as i64))
        }
        _ => Err(subcommand_error(args)),
    }
}

fn nogroup(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Coded(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        text(key),
        text(group)
    ))
}

pub fn xack(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let found = ctx
        .read::<Stream>(args[1])?
        .is_some_and(|s| s.groups.contains_key(args[2]));
    if !found {
        return Ok(Reply::Int(0));
    }
    let ids = args[3..]
        .iter()
        .map(|a| parse_strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(mut stream) = ctx.write::<Stream>(args[1])? else {
        return Ok(Reply::Int(0));
    };
    let Some(group) = stream.groups.get_mut(args[2]) else {
        return Ok(Reply::Int(0));
    };
    let acked = ids.into_iter().filter(|&id| group.ack(id)).count();
    drop(stream);
    if acked == 0 {
        ctx.propagate_none();
    }
    Ok(Reply::Int(acked as i64))
}

pub fn xpending(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (key, name) = (args[1], args[2]);
    if args.len() != 3 && !(6..=9).contains(&args.len()) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    if args.len() >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if is(args[3], "IDLE") {
            min_idle = int_arg(args[4])?;
            if args.len() < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = int_arg(args[at + 2])?.max(0) as usize;
        let start = parse_bound(args[at], 0, true)?;
        let end = parse_bound(args[at + 1], u64::MAX, false)?;
        let consumer = args.get(at + 3).copied();
        range = Some((min_idle, start, end, count, consumer));
    }
    let now = ctx.ks.now;
    let stream = ctx.read::<Stream>(key)?;
    let Some(group) = stream.and_then(|s| s.groups.get(name)) else {
        return Err(nogroup(key, name));
    };
    let Some((min_idle, start, end, count, consumer)) = range else {
        if group.pending.is_empty() {
            return Ok(Reply::Array(vec![
                Reply::Int(0),
                Reply::Null,
                Reply::Null,
                Reply::NullArray,
            ]));
        }
        let first = group.pending.keys().next().copied().unwrap_or_default();
        let last = group
            .pending
            .keys()
            .next_back()
            .copied()
            .unwrap_or_default();
        let owners = group
            .consumers
            .iter()
            .filter(|(_, c)| !c.pending.is_empty())
            .map(|(n, c)| {
                Reply::Array(vec![
                    Reply::bulk(n),
                    Reply::bulk(c.pending.len().to_string()),
                ])
            })
            .collect();
        return Ok(Reply::Array(vec![
            Reply::Int(group.pending.len() as i64),
            id_reply(first),
            id_reply(last),
            Reply::Array(owners),
        ]));
    };
    let ids: Box<dyn Iterator<Item = &StreamId>> = match consumer {
        Some(c) => match group.consumers.get(c) {
            Some(c) => Box::new(c.pending.iter()),
            None => return Ok(Reply::Array(Vec::new())),
        },
        None => Box::new(group.pending.keys()),
    };
    let mut out = Vec::new();
    if start <= end {
        for id in ids.skip_while(|id| **id < start) {
            if out.len() >= count || *id > end {
                break;
            }
            let Some(p) = group.pending.get(id) else {
                continue;
            };
            let idle = now as i64 - p.delivery_time as i64;
            if min_idle != 0 && idle < min_idle {
                continue;
            }
            out.push(Reply::Array(vec![
                id_reply(*id),
                Reply::bulk(&p.consumer),
                Reply::Int(idle.max(0)),
                Reply::Int(p.delivery_count as i64),
            ]));
        }
    }
    Ok(Reply::Array(out))
}

/// The claims XCLAIM makes, by option.
struct ClaimOptions {
    min_idle: i64,
    delivery_time: u64,
    retry_count: Option<u64>,
    force: bool,
    just_id: bool,
    last_id: StreamId,
}

pub fn xclaim(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (key, name, consumer) = (args[1], args[2], args[3]);
    let found = ctx
        .read::<Stream>(key)?
        .is_some_and(|s| s.groups.contains_key(name));
    if !found {
        return Err(nogroup(key, name));
    }
    let min_idle = crate::util::parse_i64(args[4])
        .ok_or_else(|| CmdError::other("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < args.len() {
        match parse_strict_id(args[j]) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.ks.now;
    let mut options = ClaimOptions {
        min_idle,
        delivery_time: now,
        retry_count: None,
        force: false,
        just_id: false,
        last_id: StreamId::MIN,
    };
    let mut time_given: Option<i64> = None;
    let number = |arg: &[u8], what: &str| {
        crate::util::parse_i64(arg)
            .ok_or_else(|| CmdError::other(format!("Invalid {what} option argument for XCLAIM")))
    };
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args[j];
        if is(opt, "FORCE") {
            options.force = true;
        } else if is(opt, "JUSTID") {
            options.just_id = true;
        } else if is(opt, "IDLE") && more > 0 {
            j += 1;
            time_given = Some(now as i64 - number(args[j], "IDLE")?);
        } else if is(opt, "TIME") && more > 0 {
            j += 1;
            time_given = Some(number(args[j], "TIME")?);
        } else if is(opt, "RETRYCOUNT") && more > 0 {
            j += 1;
            options.retry_count = Some(number(args[j], "RETRYCOUNT")?.max(0) as u64);
        } else if is(opt, "LASTID") && more > 0 {
            j += 1;
            options.last_id = parse_strict_id(args[j])?;
        } else {
            return Err(CmdError::other(format!(
                "Unrecognized XCLAIM option '{}'",
                text(opt)
            )));
        }
        j += 1;
    }
    if let Some(t) = time_given {
        options.delivery_time = if t < 0 || t as u64 > now {
            now
        } else {
            t as u64
        };
    }
    let aof = ctx.aof_on();
    // The consumer is created by the first entry it claims (and only then has its event).
    let mut consumer_created = false;
    let Some(mut stream) = ctx.write::<Stream>(key)? else {
        return Err(nogroup(key, name));
    };
    let mut logged: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut out = Vec::new();
    let mut setid = false;
    if let Some(group) = stream.groups.get_mut(name) {
        if options.last_id > group.last_id {
            group.last_id = options.last_id;
            setid = true;
        }
    }
    for id in ids {
        let entry = stream.get(id).map(|e| entry_reply(&e));
        let Some(group) = stream.groups.get_mut(name) else {
            break;
        };
        let Some(entry) = entry else {
            if group.pending.contains_key(&id) {
                if aof {
                    logged.push(xclaim_form(key, name, group, id));
                }
                setid = false;
                group.ack(id);
            }
            continue;
        };
        let pending = group.pending.get(&id);
        let unowned = options.force && pending.is_none();
        if pending.is_none() && !unowned {
            continue;
        }
        if let (Some(p), false) = (pending, unowned) {
            if options.min_idle > 0 && (now as i64 - p.delivery_time as i64) < options.min_idle {
                continue;
            }
        }
        let (owner, created) = group.consumer(consumer, now);
        owner.seen_time = now;
        consumer_created |= created;
        // A FORCEd entry starts as delivered once, as Redis's new pending entries do.
        let retries = match options.retry_count {
            Some(n) => Some(n),
            None if options.just_id => None,
            None => Some(group.pending.get(&id).map_or(1, |p| p.delivery_count) + 1),
        };
        group.claim(id, consumer, options.delivery_time, retries);
        out.push(if options.just_id { id_reply(id) } else { entry });
        if aof {
            logged.push(xclaim_form(key, name, group, id));
        }
        setid = false;
    }
    if setid && aof {
        if let Some(group) = stream.groups.get(name) {
            logged.push(setid_form(key, name, group));
        }
    }
    drop(stream);
    ctx.propagate_all(&logged);
    if consumer_created {
        ctx.notify(event::STREAM, "xgroup-createconsumer", key);
    }
    Ok(Reply::Array(out))
}

pub fn xautoclaim(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (key, name, consumer) = (args[1], args[2], args[3]);
    let min_idle = crate::util::parse_i64(args[4])
        .ok_or_else(|| CmdError::other("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let start = parse_bound(args[5], 0, true)?;
    let mut count: usize = 100;
    let mut just_id = false;
    let mut j = 6;
    while j < args.len() {
        if is(args[j], "COUNT") && j + 1 < args.len() {
            let max = i64::MAX / 16;
            count = crate::util::parse_i64(args[j + 1])
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| CmdError::other("COUNT must be > 0"))? as usize;
            j += 1;
        } else if is(args[j], "JUSTID") {
            just_id = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let found = ctx
        .read::<Stream>(key)?
        .is_some_and(|s| s.groups.contains_key(name));
    if !found {
        return Err(nogroup(key, name));
    }
    let now = ctx.ks.now;
    let aof = ctx.aof_on();
    // The consumer is created by the first entry it claims (and only then has its event).
    let mut consumer_created = false;
    let Some(mut stream) = ctx.write::<Stream>(key)? else {
        return Err(nogroup(key, name));
    };
    let mut attempts = count.saturating_mul(10);
    let mut logged: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut cursor = start;
    let mut next = StreamId::MIN;
    while let Some((id, delivery_time)) = stream
        .groups
        .get(name)
        .and_then(|g| g.pending.range(cursor..).next())
        .map(|(id, p)| (*id, p.delivery_time))
    {
        if attempts == 0 || count == 0 {
            next = id;
            break;
        }
        attempts -= 1;
        let entry = stream.get(id).map(|e| entry_reply(&e));
        let Some(group) = stream.groups.get_mut(name) else {
            break;
        };
        match entry {
            // Deleted from the stream: dropped from the pending list and reported.
            None => {
                if aof {
                    logged.push(xclaim_form(key, name, group, id));
                }
                group.ack(id);
                deleted.push(id_reply(id));
                count -= 1;
            }
            Some(_) if min_idle > 0 && (now as i64 - delivery_time as i64) < min_idle => {}
            Some(entry) => {
                let (owner, created) = group.consumer(consumer, now);
                owner.seen_time = now;
                consumer_created |= created;
                let retries = if just_id {
                    None
                } else {
                    Some(group.pending.get(&id).map_or(0, |p| p.delivery_count) + 1)
                };
                group.claim(id, consumer, now, retries);
                claimed.push(if just_id { id_reply(id) } else { entry });
                count -= 1;
                if aof {
                    logged.push(xclaim_form(key, name, group, id));
                }
            }
        }
        match id.next() {
            Some(after) => cursor = after,
            None => break,
        }
    }
    drop(stream);
    ctx.propagate_all(&logged);
    if consumer_created {
        ctx.notify(event::STREAM, "xgroup-createconsumer", key);
    }
    Ok(Reply::Array(vec![
        id_reply(next),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ]))
}

pub fn xinfo(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = check_subcommand(
        args,
        &[("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)],
    )?;
    if sub == "help" {
        return Ok(super::help_reply(
            "XINFO",
            &[
                "CONSUMERS <key> <groupname>",
                "    Show consumers of <groupname>.",
                "GROUPS <key>",
                "    Show the stream consumer groups.",
                "STREAM <key> [FULL [COUNT <count>]",
                "    Show information about the stream.",
            ],
        ));
    }
    let key = args[2];
    let now = ctx.ks.now;
    let Some(stream) = ctx.read::<Stream>(key)? else {
        return Err(CmdError::NoSuchKey);
    };
    match sub.as_str() {
        "consumers" => {
            let Some(group) = stream.groups.get(args[3]) else {
                return Err(nogroup_for_key(args[3], key));
            };
            Ok(Reply::Array(
                group
                    .consumers
                    .iter()
                    .map(|(n, c)| {
                        Reply::Map(vec![
                            (Reply::bulk("name"), Reply::bulk(n)),
                            (Reply::bulk("pending"), Reply::Int(c.pending.len() as i64)),
                            (
                                Reply::bulk("idle"),
                                Reply::Int((now as i64 - c.seen_time as i64).max(0)),
                            ),
                        ])
                    })
                    .collect(),
            ))
        }
        "groups" => Ok(Reply::Array(
            stream
                .groups
                .iter()
                .map(|(n, g)| {
                    Reply::Map(vec![
                        (Reply::bulk("name"), Reply::bulk(n)),
                        (
                            Reply::bulk("consumers"),
                            Reply::Int(g.consumers.len() as i64),
                        ),
                        (Reply::bulk("pending"), Reply::Int(g.pending.len() as i64)),
                        (Reply::bulk("last-delivered-id"), id_reply(g.last_id)),
                        (Reply::bulk("entries-read"), entries_read_reply(g)),
                        (Reply::bulk("lag"), lag_reply(stream, g)),
                    ])
                })
                .collect(),
        )),
        _ => stream_info(stream, args),
    }
}

fn entries_read_reply(group: &Group) -> Reply {
    match group.entries_read {
        ENTRIES_READ_UNKNOWN => Reply::Null,
        n => Reply::Int(n),
    }
}

fn lag_reply(stream: &Stream, group: &Group) -> Reply {
    stream.lag(group).map_or(Reply::Null, Reply::Int)
}

fn stream_info(stream: &Stream, args: &[&[u8]]) -> CmdResult {
    let options = &args[3..];
    let full = !options.is_empty();
    let mut count: i64 = 10;
    if full {
        if (options.len() != 1 && options.len() != 3) || !is(options[0], "FULL") {
            return Err(subcommand_error(args));
        }
        if options.len() == 3 {
            if !is(options[1], "COUNT") {
                return Err(subcommand_error(args));
            }
            count = int_arg(options[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let count = count as usize;
    let mut fields = vec![
        (Reply::bulk("length"), Reply::Int(stream.len() as i64)),
        (
            Reply::bulk("radix-tree-keys"),
            Reply::Int(stream.node_count() as i64),
        ),
        (
            Reply::bulk("radix-tree-nodes"),
            Reply::Int(stream.node_count() as i64 + 1),
        ),
        (Reply::bulk("last-generated-id"), id_reply(stream.last_id)),
        (
            Reply::bulk("max-deleted-entry-id"),
            id_reply(stream.max_deleted_id),
        ),
        (
            Reply::bulk("entries-added"),
            Reply::Int(stream.entries_added as i64),
        ),
        (
            Reply::bulk("recorded-first-entry-id"),
            id_reply(stream.first_id),
        ),
    ];
    if !full {
        let edge = |last: bool| {
            let mut found = Reply::Null;
            stream.scan(StreamId::MIN, StreamId::MAX, last, |e| {
                found = entry_reply(&e);
                false
            });
            found
        };
        fields.push((
            Reply::bulk("groups"),
            Reply::Int(stream.groups.len() as i64),
        ));
        fields.push((Reply::bulk("first-entry"), edge(false)));
        fields.push((Reply::bulk("last-entry"), edge(true)));
        return Ok(Reply::Map(fields));
    }
    let limit = if count == 0 { usize::MAX } else { count };
    fields.push((
        Reply::bulk("entries"),
        range_reply(stream, StreamId::MIN, StreamId::MAX, false, count),
    ));
    let groups = stream
        .groups
        .iter()
        .map(|(name, g)| {
            let pending = g
                .pending
                .iter()
                .take(limit)
                .map(|(id, p)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::bulk(&p.consumer),
                        Reply::Int(p.delivery_time as i64),
                        Reply::Int(p.delivery_count as i64),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cname, c)| {
                    let owned = c
                        .pending
                        .iter()
                        .take(limit)
                        .map(|id| {
                            let p = g.pending.get(id);
                            Reply::Array(vec![
                                id_reply(*id),
                                Reply::Int(p.map_or(0, |p| p.delivery_time as i64)),
                                Reply::Int(p.map_or(0, |p| p.delivery_count as i64)),
                            ])
                        })
                        .collect();
                    Reply::Map(vec![
                        (Reply::bulk("name"), Reply::bulk(cname)),
                        (Reply::bulk("seen-time"), Reply::Int(c.seen_time as i64)),
                        (Reply::bulk("pel-count"), Reply::Int(c.pending.len() as i64)),
                        (Reply::bulk("pending"), Reply::Array(owned)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                (Reply::bulk("name"), Reply::bulk(name)),
                (Reply::bulk("last-delivered-id"), id_reply(g.last_id)),
                (Reply::bulk("entries-read"), entries_read_reply(g)),
                (Reply::bulk("lag"), lag_reply(stream, g)),
                (Reply::bulk("pel-count"), Reply::Int(g.pending.len() as i64)),
                (Reply::bulk("pending"), Reply::Array(pending)),
                (Reply::bulk("consumers"), Reply::Array(consumers)),
            ])
        })
        .collect();
    fields.push((Reply::bulk("groups"), Reply::Array(groups)));
    Ok(Reply::Map(fields))
}
