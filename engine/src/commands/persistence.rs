//! Commands about saving and restoring: SAVE, BGSAVE [SCHEDULE], BGREWRITEAOF, LASTSAVE, DUMP,
//! RESTORE.

use super::{event, int_arg, is, CmdError, CmdResult, Ctx};
use crate::keyspace::{eviction::access_from_saved, Blob};
use crate::persistence::aof::rewrite::{self, RewriteError, RewriteReason};
use crate::persistence::jobs::{Busy, JobKind};
use crate::persistence::rdb::{dump_payload, restore_payload};
use crate::persistence::save::{save_foreground, start_background, SaveError, SaveReason};
use crate::protocol::Reply;

pub fn save(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    match save_foreground(ctx.shared, ctx.ks) {
        Ok(_) => Ok(Reply::OK),
        Err(SaveError::InProgress) => Err(CmdError::other("Background save already in progress")),
        Err(e) => Err(CmdError::other(e.to_string())),
    }
}

pub fn bgsave(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if is(args[1], "SCHEDULE") => true,
        _ => return Err(CmdError::Syntax),
    };
    let Some(shared) = ctx.shared.handle() else {
        return Err(CmdError::other("the instance is stopping"));
    };
    match start_background(&shared, ctx.ks, SaveReason::Requested) {
        Ok(_) => Ok(Reply::Status("Background saving started")),
        Err(SaveError::InProgress | SaveError::Busy(_)) if schedule => {
            ctx.shared.persistence.update(|st| st.scheduled = true);
            Ok(Reply::Status("Background saving scheduled"))
        }
        Err(SaveError::Busy(Busy(JobKind::Rewrite(_)))) => {
            Err(CmdError::other("Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."))
        }
        Err(e) => Err(CmdError::other(e.to_string())),
    }
}

pub fn bgrewriteaof(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let Some(shared) = ctx.shared.handle() else {
        return Err(CmdError::other("the instance is stopping"));
    };
    match rewrite::start(&shared, ctx.ks, RewriteReason::Requested) {
        Ok(_) => Ok(Reply::Status(
            "Background append only file rewriting started",
        )),
        Err(RewriteError::Busy(_)) => {
            ctx.shared.persistence.update(|st| {
                st.aof.scheduled = true;
                st.aof.failures_in_a_row = 0;
            });
            Ok(Reply::Status(
                "Background append only file rewriting scheduled",
            ))
        }
        Err(e) => Err(CmdError::other(e.to_string())),
    }
}

pub fn lastsave(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(
        ctx.shared.persistence.status().last_save_unix_secs as i64,
    ))
}

pub fn dump(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let db = ctx.db();
    Ok(match ctx.ks.peek(db, args[1]) {
        Some(entry) => Reply::Bulk(Blob::from_vec(dump_payload(&entry.value))),
        None => Reply::Null,
    })
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
pub fn restore(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None, None);
    let mut i = 4;
    while i < args.len() {
        let more = i + 1 < args.len();
        if is(args[i], "REPLACE") {
            replace = true;
        } else if is(args[i], "ABSTTL") {
            absttl = true;
        } else if is(args[i], "IDLETIME") && more && freq.is_none() {
            let n = int_arg(args[i + 1])?;
            if n < 0 {
                return Err(CmdError::other("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(n as u64);
            i += 1;
        } else if is(args[i], "FREQ") && more && idle.is_none() {
            let n = int_arg(args[i + 1])?;
            if !(0..=255).contains(&n) {
                return Err(CmdError::other(
                    "Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            freq = Some(n as u8);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let db = ctx.db();
    let key = &args[1];
    if !replace && ctx.ks.contains(db, key) {
        return Err(CmdError::Coded(
            "BUSYKEY Target key name already exists.".into(),
        ));
    }
    let ttl = int_arg(args[2])?;
    if ttl < 0 {
        return Err(CmdError::other("Invalid TTL value, must be >= 0"));
    }
    let value = restore_payload(args[3]).map_err(|e| CmdError::Coded(e.to_string()))?;
    let replaced = replace && ctx.ks.delete(db, key);
    let expire_at = match ttl {
        0 => None,
        t if absttl => Some(t as u64),
        t => Some(ctx.ks.now.saturating_add(t as u64)),
    };
    if expire_at.is_some_and(|at| at <= ctx.ks.now) {
        if replace {
            ctx.propagate(&[b"DEL", &key[..]]);
        }
        if replaced {
            ctx.notify(event::GENERIC, "del", key);
        }
        return Ok(Reply::OK);
    }
    ctx.ks.set(db, key, value);
    ctx.notify(event::GENERIC, "restore", key);
    if let Some(at) = expire_at {
        ctx.ks.set_expire(db, key, at);
    }
    if idle.is_some() || freq.is_some() {
        let lfu = ctx.ks.config.policy.is_lfu();
        let access = access_from_saved(lfu, ctx.ks.now, idle, freq);
        ctx.ks.set_access(db, key, access);
    }
    if let (Some(at), false, true) = (expire_at, absttl, ctx.aof_on()) {
        // Logged with the absolute time, so a replay gives the key the same deadline.
        let at = at.to_string();
        let mut logged: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        logged[2] = at.as_bytes();
        logged.push(b"ABSTTL");
        ctx.propagate(&logged);
    }
    Ok(Reply::OK)
}
