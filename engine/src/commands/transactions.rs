//! MULTI/EXEC/DISCARD and optimistic locking with WATCH/UNWATCH.

use super::{arg_slices, run, CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::Blob;
use crate::protocol::Reply;

/// Queues a command inside MULTI.
pub fn queue(ctx: &mut Ctx, spec: &'static CommandSpec, args: &[&[u8]]) -> Reply {
    if let Some(queue) = ctx.client.multi.as_mut() {
        queue.push((spec, args.iter().map(|a| a.to_vec()).collect()));
        ctx.client.multi_bytes += args.iter().map(|a| a.len() + 16).sum::<usize>();
    }
    Reply::Status("QUEUED")
}

pub fn multi(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::other("MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_failed = false;
    ctx.client.multi_bytes = 0;
    Ok(Reply::OK)
}

pub fn exec(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let Some(queued) = ctx.client.multi.take() else {
        return Err(CmdError::other("EXEC without MULTI"));
    };
    if std::mem::take(&mut ctx.client.multi_failed) {
        release_watches(ctx);
        return Err(CmdError::Coded(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    let touched = ctx
        .client
        .watched
        .iter()
        .any(|(db, key, version)| ctx.ks.watch_version(*db, key) != *version);
    release_watches(ctx);
    if touched {
        return Ok(Reply::NullArray);
    }
    ctx.client.in_exec = true;
    ctx.ks.feed.begin_transaction();
    let replies = queued
        .iter()
        .map(|(spec, args)| run(ctx, spec, &arg_slices(args)))
        .collect();
    ctx.ks.feed.end_transaction();
    ctx.client.in_exec = false;
    Ok(Reply::Array(replies))
}

pub fn discard(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CmdError::other("DISCARD without MULTI"));
    }
    ctx.client.multi_failed = false;
    release_watches(ctx);
    Ok(Reply::OK)
}

pub fn watch(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::other("WATCH inside MULTI is not allowed"));
    }
    let db = ctx.db();
    for key in &args[1..] {
        if ctx
            .client
            .watched
            .iter()
            .any(|(d, k, _)| *d == db && k[..] == key[..])
        {
            continue;
        }
        let version = ctx.ks.watch(db, key);
        ctx.client
            .watched
            .push((db, Blob::from_slice(key), version));
    }
    Ok(Reply::OK)
}

pub fn unwatch(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    release_watches(ctx);
    Ok(Reply::OK)
}

/// Drops every WATCH this client holds (after EXEC/DISCARD/UNWATCH, on RESET and on close).
pub fn release_watches(ctx: &mut Ctx) {
    for (db, key, _) in ctx.client.watched.drain(..) {
        ctx.ks.unwatch(db, &key);
    }
}
