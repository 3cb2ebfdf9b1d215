//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO: client-side caching's commands, with
//! Redis 7.0's option checks and error texts (networking.c). The table they drive is
//! keyspace/tracking.rs; its invalidations are delivered by instance/tracking.rs.

use super::{int_arg, is, CmdError, CmdResult, Ctx};
use crate::instance::client::TrackingMode;
use crate::keyspace::tracking::TrackingOptions;
use crate::keyspace::Blob;
use crate::protocol::Reply;

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP].
pub fn tracking(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut options = TrackingOptions::default();
    let (mut optin, mut optout) = (false, false);
    let mut at = 3;
    while at < args.len() {
        let more = at + 1 < args.len();
        let option = args[at];
        if is(option, "REDIRECT") && more {
            at += 1;
            if options.redirect != 0 {
                return Err(CmdError::other(
                    "A client can only redirect to a single other client",
                ));
            }
            let id = int_arg(args[at])?;
            let known = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.shared.client(id))
                .is_some();
            if !known {
                return Err(CmdError::other(
                    "The client ID you want redirect to does not exist",
                ));
            }
            options.redirect = id as u64;
        } else if is(option, "BCAST") {
            options.bcast = true;
        } else if is(option, "OPTIN") {
            optin = true;
        } else if is(option, "OPTOUT") {
            optout = true;
        } else if is(option, "NOLOOP") {
            options.noloop = true;
        } else if is(option, "PREFIX") && more {
            at += 1;
            options.prefixes.push(Blob::from_slice(args[at]));
        } else {
            return Err(CmdError::Syntax);
        }
        at += 1;
    }
    let id = ctx.client.id();
    if is(args[2], "OFF") {
        disable(ctx);
        return Ok(Reply::OK);
    }
    if !is(args[2], "ON") {
        return Err(CmdError::Syntax);
    }
    let mode = ctx.client.tracking;
    if !options.bcast && !options.prefixes.is_empty() {
        return Err(CmdError::other(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if mode.on && mode.bcast != options.bcast {
        return Err(CmdError::other("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if options.bcast && (optin || optout) {
        return Err(CmdError::other(
            "OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if optin && optout {
        return Err(CmdError::other(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if (optin && mode.optout) || (optout && mode.optin) {
        return Err(CmdError::other("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if options.bcast {
        let existing = ctx
            .ks
            .tracking
            .tracker(id)
            .map(|t| t.prefixes.clone())
            .unwrap_or_default();
        check_prefix_overlaps(&existing, &options.prefixes)?;
    }
    let redirect = options.redirect;
    ctx.client.tracking = TrackingMode {
        on: true,
        bcast: options.bcast,
        optin,
        optout,
        caching: mode.caching,
    };
    ctx.ks.tracking.enable(id, options);
    ctx.client.info.set_tracking(&ctx.client.tracking, redirect);
    Ok(Reply::OK)
}

/// Two prefixes of one client overlap if one starts the other (a key would match both).
fn check_prefix_overlaps(existing: &[Blob], given: &[Blob]) -> Result<(), CmdError> {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, prefix) in given.iter().enumerate() {
        if let Some(old) = existing.iter().find(|old| overlap(old, prefix)) {
            return Err(CmdError::other(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(old)
            )));
        }
        if let Some(other) = given[i + 1..].iter().find(|other| overlap(prefix, other)) {
            return Err(CmdError::other(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(other)
            )));
        }
    }
    Ok(())
}

/// Turns the client's tracking off (CLIENT TRACKING OFF, RESET, a disconnect).
pub fn disable(ctx: &mut Ctx) {
    if !ctx.client.tracking.on {
        return;
    }
    ctx.ks.tracking.disable(ctx.client.id());
    ctx.client.tracking = TrackingMode::default();
    ctx.client.info.set_tracking(&ctx.client.tracking, 0);
}

/// CLIENT CACHING YES|NO: whether the next command's reads are tracked, in OPTIN and OPTOUT
/// modes.
pub fn caching(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mode = &mut ctx.client.tracking;
    if !mode.on {
        return Err(CmdError::other("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    }
    if is(args[2], "YES") {
        if !mode.optin {
            return Err(CmdError::other(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(args[2], "NO") {
        if !mode.optout {
            return Err(CmdError::other(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    mode.caching = true;
    Ok(Reply::OK)
}

/// The client's redirect: -1 with tracking off, 0 without a redirect.
fn redirect(ctx: &Ctx) -> i64 {
    if !ctx.client.tracking.on {
        return -1;
    }
    ctx.ks
        .tracking
        .tracker(ctx.client.id())
        .map_or(0, |t| t.redirect as i64)
}

/// CLIENT GETREDIR.
pub fn getredir(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(redirect(ctx)))
}

/// CLIENT TRACKINGINFO: the flags (a set), the redirect and the BCAST prefixes.
pub fn trackinginfo(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let mode = ctx.client.tracking;
    let tracker = ctx.ks.tracking.tracker(ctx.client.id());
    let mut flags = vec![if mode.on { "on" } else { "off" }];
    if mode.bcast {
        flags.push("bcast");
    }
    if mode.optin {
        flags.push("optin");
        if mode.caching {
            flags.push("caching-yes");
        }
    }
    if mode.optout {
        flags.push("optout");
        if mode.caching {
            flags.push("caching-no");
        }
    }
    if tracker.is_some_and(|t| t.noloop) {
        flags.push("noloop");
    }
    if tracker.is_some_and(|t| t.broken) {
        flags.push("broken_redirect");
    }
    let prefixes = tracker
        .map(|t| t.prefixes.iter().map(Reply::bulk).collect())
        .unwrap_or_default();
    Ok(Reply::Map(vec![
        (
            Reply::bulk("flags"),
            Reply::Set(flags.into_iter().map(Reply::bulk).collect()),
        ),
        (Reply::bulk("redirect"), Reply::Int(redirect(ctx))),
        (Reply::bulk("prefixes"), Reply::Array(prefixes)),
    ]))
}
