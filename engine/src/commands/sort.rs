//! SORT and SORT_RO: a list, set or sorted set sorted by its elements or by other keys'
//! values (BY), with other keys' values fetched for each element (GET), returned or stored
//! as a list (STORE), as Redis 7.0's sort.c does it.

use std::cmp::Ordering;

use super::{event, int_arg, is, CmdError, CmdResult, Ctx};
use crate::keyspace::{Blob, List, Value};
use crate::protocol::Reply;

/// The parsed options of one SORT.
#[derive(Default)]
struct Options<'a> {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    store: Option<&'a [u8]>,
    by: Option<&'a [u8]>,
    gets: Vec<&'a [u8]>,
}

impl<'a> Options<'a> {
    fn parse(args: &[&'a [u8]], readonly: bool) -> Result<Self, CmdError> {
        let mut o = Options::default();
        let mut i = 2;
        while i < args.len() {
            let (a, left) = (args[i], args.len() - i - 1);
            if is(a, "ASC") {
                o.desc = false;
            } else if is(a, "DESC") {
                o.desc = true;
            } else if is(a, "ALPHA") {
                o.alpha = true;
            } else if is(a, "LIMIT") && left >= 2 {
                o.limit = Some((int_arg(args[i + 1])?, int_arg(args[i + 2])?));
                i += 2;
            } else if is(a, "STORE") && left >= 1 && !readonly {
                o.store = Some(args[i + 1]);
                i += 1;
            } else if is(a, "BY") && left >= 1 {
                o.by = Some(args[i + 1]);
                i += 1;
            } else if is(a, "GET") && left >= 1 {
                o.gets.push(args[i + 1]);
                i += 1;
            } else {
                return Err(CmdError::Syntax);
            }
            i += 1;
        }
        Ok(o)
    }
}

pub fn sort(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, args, false)
}

pub fn sort_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, args, true)
}

fn sort_generic(ctx: &mut Ctx, args: &[&[u8]], readonly: bool) -> CmdResult {
    let mut o = Options::parse(args, readonly)?;
    // A BY pattern without `*` names one key for every element: there is nothing to sort by.
    let mut dontsort = o.by.is_some_and(|p| !p.contains(&b'*'));
    let db = ctx.db();
    let (mut elements, is_set): (Vec<Blob>, bool) = match ctx.ks.lookup(db, args[1], true) {
        None => (Vec::new(), false),
        Some(Value::List(list)) => (list.iter().map(Blob::from_slice).collect(), false),
        Some(Value::ZSet(zset)) => (zset.iter().map(|s| s.member.clone()).collect(), false),
        Some(Value::Set(set)) => (set.iter().cloned().collect(), true),
        Some(_) => return Err(CmdError::WrongType),
    };
    if dontsort && o.desc && !is_set {
        elements.reverse();
    }
    // A set's own order is arbitrary: one that is stored is sorted, so that what is stored
    // (and logged) does not depend on it.
    if dontsort && is_set && o.store.is_some() {
        dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let (start, end) = limit_range(o.limit, elements.len());
    // Sorted as indices (small to move) into the elements and what they sort by: numbers,
    // or for ALPHA by a pattern the values looked up (None when missing: those go first).
    let mut order: Vec<u32> = (0..elements.len() as u32).collect();
    let mut scores: Vec<f64> = Vec::new();
    let mut by_values: Vec<Option<Blob>> = Vec::new();
    if !dontsort {
        match (o.alpha, o.by) {
            (true, None) => {}
            (true, Some(pattern)) => {
                by_values = elements
                    .iter()
                    .map(|e| lookup_by_pattern(ctx, pattern, e))
                    .collect();
            }
            (false, by) => {
                // Every element is looked at, as Redis does, before a bad one is reported.
                let mut bad_score = false;
                scores = elements
                    .iter()
                    .map(|element| {
                        let score = match by {
                            // A missing key sorts as 0.
                            Some(pattern) => lookup_by_pattern(ctx, pattern, element)
                                .map_or(Some(0.0), |v| strtod_score(&v)),
                            None => strtod_score(element),
                        };
                        bad_score |= score.is_none();
                        score.unwrap_or_default()
                    })
                    .collect();
                if bad_score {
                    return Err(CmdError::other(
                        "One or more scores can't be converted into double",
                    ));
                }
            }
        }
        let compare = |a: &u32, b: &u32| {
            let (a, b) = (*a as usize, *b as usize);
            let order = if !o.alpha {
                scores[a]
                    .partial_cmp(&scores[b])
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| elements[a].cmp(&elements[b]))
            } else if o.by.is_some() {
                by_values[a].cmp(&by_values[b])
            } else {
                elements[a].cmp(&elements[b])
            };
            if o.desc {
                order.reverse()
            } else {
                order
            }
        };
        // With LIMIT only the first `end` places matter: those are picked out, then sorted.
        // That needs a total order, which equal scores have (they fall back to the elements);
        // ALPHA by a pattern has ties, which keep their first order in a full stable sort.
        let total_order = !(o.alpha && o.by.is_some());
        if total_order && end < order.len() {
            if end > 0 {
                order.select_nth_unstable_by(end - 1, compare);
                order[..end].sort_unstable_by(compare);
            }
        } else {
            order.sort_by(compare);
        }
    }
    let selected = order
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|&i| &elements[i as usize]);
    let Some(dest) = o.store else {
        let mut out = Vec::with_capacity((end - start) * o.gets.len().max(1));
        for element in selected {
            if o.gets.is_empty() {
                out.push(Reply::bulk(element));
            }
            for pattern in &o.gets {
                let value = lookup_by_pattern(ctx, pattern, element);
                out.push(value.map_or(Reply::Null, Reply::Bulk));
            }
        }
        return Ok(Reply::Array(out));
    };
    let mut stored: Vec<Blob> = Vec::with_capacity((end - start) * o.gets.len().max(1));
    for element in selected {
        if o.gets.is_empty() {
            stored.push(element.clone());
        }
        for pattern in &o.gets {
            stored.push(lookup_by_pattern(ctx, pattern, element).unwrap_or_default());
        }
    }
    let len = stored.len() as i64;
    if stored.is_empty() {
        if ctx.ks.delete(db, dest) {
            ctx.propagate(&[&b"DEL"[..], dest]);
            ctx.notify(event::GENERIC, "del", dest);
        }
    } else {
        let mut list = List::default();
        for value in &stored {
            list.push_back(value);
        }
        ctx.ks.set(db, dest, Value::List(Box::new(list)));
        ctx.notify(event::LIST, "sortstore", dest);
        if ctx.aof_on() {
            // Logged as what it stored, so a replay needs none of the keys it read.
            ctx.propagate(&[&b"DEL"[..], dest]);
            let mut push: Vec<&[u8]> = vec![b"RPUSH", dest];
            push.extend(stored.iter().map(|v| &v[..]));
            ctx.propagate(&push);
        }
    }
    Ok(Reply::Int(len))
}

/// The half-open index range LIMIT selects out of `len` sorted elements, clamped as Redis
/// clamps it (a negative count means all the rest).
fn limit_range(limit: Option<(i64, i64)>, len: usize) -> (usize, usize) {
    let n = len as i64;
    let (offset, count) = limit.unwrap_or((0, -1));
    let start = offset.clamp(0, n);
    let count = count.clamp(-1, n);
    let end = if count < 0 { n } else { (start + count).min(n) };
    (start as usize, end.max(start) as usize)
}

/// The value a SORT pattern names for `element`: `#` is the element itself; otherwise the
/// first `*` is replaced by the element, and `key->field` reads a hash field. None when the
/// pattern has no `*`, the key is missing or holds another type.
fn lookup_by_pattern(ctx: &mut Ctx, pattern: &[u8], element: &[u8]) -> Option<Blob> {
    if pattern == b"#" {
        return Some(Blob::from_slice(element));
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| star + 1 + i)
        .filter(|&i| i + 2 < pattern.len());
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let db = ctx.db();
    match (ctx.ks.lookup(db, &key, true)?, arrow) {
        (Value::Hash(hash), Some(arrow)) => hash.get(&pattern[arrow + 2..]).cloned(),
        (Value::Str(s), None) => Some(s.clone()),
        _ => None,
    }
}

/// A value read as a number to sort by, as C's strtod reads it in Redis: leading spaces
/// allowed, nothing after the number (up to a NUL), no NaN, no overflow or underflow. The
/// empty string reads as 0.
fn strtod_score(bytes: &[u8]) -> Option<f64> {
    let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
    if text.is_empty() {
        return Some(0.0);
    }
    let number = match text.iter().position(|b| !b" \t\n\x0b\x0c\r".contains(b)) {
        Some(i) => &text[i..],
        None => return None,
    };
    if let Some(value) = crate::util::parse_small_integer_f64(number) {
        return Some(value);
    }
    let value = crate::util::parse_f64(number)?;
    // The common case, an ordinary number, needs no look at how it was written.
    if value.is_normal() && value.is_finite() {
        return Some(value);
    }
    let lower = number.to_ascii_lowercase();
    let mantissa = lower.split(|&b| b == b'e').next().unwrap_or_default();
    let overflow = value.is_infinite() && !lower.windows(3).any(|w| w == b"inf");
    let underflow = (value == 0.0 && mantissa.iter().any(|b| (b'1'..=b'9').contains(b)))
        || (value != 0.0 && value.abs() < f64::MIN_POSITIVE);
    (!overflow && !underflow).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_clamps_as_redis() {
        assert_eq!(limit_range(None, 5), (0, 5));
        assert_eq!(limit_range(Some((1, 2)), 5), (1, 3));
        assert_eq!(limit_range(Some((-3, 2)), 5), (0, 2));
        assert_eq!(limit_range(Some((3, -1)), 5), (3, 5));
        assert_eq!(limit_range(Some((10, 2)), 5), (5, 5));
        assert_eq!(limit_range(Some((0, 0)), 5), (0, 0));
        assert_eq!(limit_range(Some((2, i64::MAX)), 5), (2, 5));
        assert_eq!(limit_range(Some((0, 3)), 0), (0, 0));
    }

    #[test]
    fn scores_read_as_strtod() {
        assert_eq!(strtod_score(b"1.5"), Some(1.5));
        assert_eq!(strtod_score(b"  -2"), Some(-2.0));
        assert_eq!(strtod_score(b""), Some(0.0));
        assert_eq!(strtod_score(b"7\0junk"), Some(7.0));
        assert_eq!(strtod_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(strtod_score(b"1 "), None);
        assert_eq!(strtod_score(b"  "), None);
        assert_eq!(strtod_score(b"nan"), None);
        assert_eq!(strtod_score(b"abc"), None);
        assert_eq!(strtod_score(b"1e400"), None);
        assert_eq!(strtod_score(b"1e-400"), None);
        assert_eq!(strtod_score(b"0e5"), Some(0.0));
    }
}
