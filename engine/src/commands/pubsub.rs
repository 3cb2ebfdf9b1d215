//! Pub/Sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE,
//! SUNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB, with Redis 7.0's confirmations (one push per
//! channel, with the client's subscription count) and texts. Delivery is `instance::pubsub`.

use std::sync::atomic::Ordering;

use super::{help_reply, is, lower, CmdError, CmdResult, Ctx};
use crate::config::ClientClass;
use crate::instance::client::ClientState;
use crate::instance::pubsub::{Kind, Subscriptions};
use crate::protocol::{Output, Reply};

pub fn subscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    subscribe_to(ctx, Kind::Channel, &args[1..])
}

pub fn psubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    subscribe_to(ctx, Kind::Pattern, &args[1..])
}

pub fn ssubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    subscribe_to(ctx, Kind::Shard, &args[1..])
}

pub fn unsubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    unsubscribe_from(ctx, Kind::Channel, &args[1..])
}

pub fn punsubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    unsubscribe_from(ctx, Kind::Pattern, &args[1..])
}

pub fn sunsubscribe(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    unsubscribe_from(ctx, Kind::Shard, &args[1..])
}

pub fn publish(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(deliver(ctx, args[1], args[2], false) as i64))
}

pub fn spublish(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(deliver(ctx, args[1], args[2], true) as i64))
}

/// Publishes one message to the channel's subscribers (and the patterns it matches, unless a
/// shard channel); returns how many received it.
pub fn deliver(ctx: &mut Ctx, channel: &[u8], message: &[u8], shard: bool) -> usize {
    let limit = ctx.shared.output_limit(ClientClass::PubSub);
    ctx.shared
        .pubsub
        .lock()
        .publish(channel, message, shard, limit)
}

/// The push frames confirming (un)subscriptions, one after another, as one reply.
struct Confirmations {
    out: Output,
    resp3: bool,
}

impl Confirmations {
    fn new(resp3: bool) -> Self {
        Confirmations {
            out: Output::new(),
            resp3,
        }
    }

    fn push(&mut self, word: &str, name: Option<&[u8]>, count: usize) {
        let name = name.map_or(Reply::Null, Reply::bulk);
        Reply::Push(vec![Reply::bulk(word), name, Reply::Int(count as i64)])
            .encode(&mut self.out, self.resp3);
    }

    fn into_reply(self) -> Reply {
        Reply::Pushes(self.out)
    }
}

fn subscribe_to(ctx: &mut Ctx, kind: Kind, names: &[&[u8]]) -> CmdResult {
    // Redis's DENY BLOCKING clients (those that expect one reply per command) cannot
    // subscribe: a script, and a MULTI only for shard channels.
    if ctx.client.in_script || (kind == Kind::Shard && ctx.client.in_exec) {
        return Err(CmdError::other(format!(
            "{} isn't allowed for a DENY BLOCKING client",
            kind.subscribe_word().to_uppercase()
        )));
    }
    let mut confirmations = Confirmations::new(ctx.client.resp3);
    let info = ctx.client.info.clone();
    let subs = subscriptions_of(ctx.client);
    let mut hub = ctx.shared.pubsub.lock();
    for name in names {
        hub.subscribe(subs, kind, name);
        confirmations.push(kind.subscribe_word(), Some(name), subs.count(kind));
    }
    info.set_subscriptions(subs);
    Ok(confirmations.into_reply())
}

fn unsubscribe_from(ctx: &mut Ctx, kind: Kind, names: &[&[u8]]) -> CmdResult {
    let client = &mut *ctx.client;
    let mut confirmations = Confirmations::new(client.resp3);
    let word = kind.unsubscribe_word();
    let Some(subs) = client.pubsub.as_mut() else {
        // Never subscribed: each name (or the lone nil) is confirmed with a count of 0.
        if names.is_empty() {
            confirmations.push(word, None, 0);
        }
        for name in names {
            confirmations.push(word, Some(name), 0);
        }
        return Ok(confirmations.into_reply());
    };
    let mut hub = ctx.shared.pubsub.lock();
    if names.is_empty() {
        let all: Vec<_> = subs.of(kind).iter().cloned().collect();
        if all.is_empty() {
            confirmations.push(word, None, subs.count(kind));
        }
        for name in all {
            hub.unsubscribe(subs, kind, &name);
            confirmations.push(word, Some(&name), subs.count(kind));
        }
    } else {
        for name in names {
            hub.unsubscribe(subs, kind, name);
            confirmations.push(word, Some(name), subs.count(kind));
        }
    }
    client.info.set_subscriptions(subs);
    Ok(confirmations.into_reply())
}

/// Drops every subscription without confirmations, and a MONITOR (RESET, and a connection
/// that ends).
pub fn unsubscribe_all(ctx: &mut Ctx) {
    crate::instance::pubsub::leave(ctx.shared, ctx.client);
}

/// MONITOR: from now on the client receives every command the instance runs.
pub fn monitor(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    if ctx.client.in_exec || ctx.client.in_script {
        return Err(CmdError::other(
            "MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    let subs = subscriptions_of(ctx.client);
    let mut hub = ctx.shared.pubsub.lock();
    if !hub.add_monitor(subs) {
        // Already a monitor: Redis ignores the command, without a reply.
        return Ok(Reply::Encoded(Output::new()));
    }
    ctx.shared.monitoring.store(true, Ordering::Release);
    Ok(Reply::OK)
}

/// The client's subscriptions, made at its first subscription (or MONITOR).
fn subscriptions_of(client: &mut ClientState) -> &mut Subscriptions {
    let info = client.info.clone();
    client
        .pubsub
        .get_or_insert_with(|| Box::new(Subscriptions::new(info)))
}

/// Feeds a command to the MONITOR clients, if there are any (and it is not replayed from
/// the AOF).
pub fn feed_monitors(ctx: &Ctx, args: &[&[u8]]) {
    if ctx.shared.monitoring.load(Ordering::Acquire) && !ctx.client.replaying {
        write_monitor_line(ctx, args);
    }
}

/// A command's MONITOR line, as Redis writes it: time, database and client (`lua` for a
/// script's), then each argument quoted, credentials redacted.
fn write_monitor_line(ctx: &Ctx, args: &[&[u8]]) {
    let now = crate::util::now_us();
    let db = ctx.db();
    let mut line = format!("+{}.{:06} [{db} ", now / 1_000_000, now % 1_000_000).into_bytes();
    if ctx.client.in_script {
        line.extend_from_slice(b"lua");
    } else {
        line.extend_from_slice(ctx.client.info.addr.to_string().as_bytes());
    }
    line.push(b']');
    let redacted = redacted_from(args);
    for (i, arg) in args.iter().enumerate() {
        line.push(b' ');
        if redacted.contains(&i) {
            line.extend_from_slice(b"\"(redacted)\"");
        } else {
            crate::util::quote_repr(&mut line, arg);
        }
    }
    line.extend_from_slice(b"\r\n");
    let limit = ctx.shared.output_limit(ClientClass::Replica);
    ctx.shared.pubsub.lock().feed_monitors(&line, limit);
}

/// Which arguments MONITOR shows as "(redacted)": AUTH's, and HELLO's AUTH pair.
fn redacted_from(args: &[&[u8]]) -> Vec<usize> {
    if is(args[0], "AUTH") {
        return (1..args.len()).collect();
    }
    if is(args[0], "HELLO") {
        if let Some(at) = args.iter().position(|a| is(a, "AUTH")) {
            return (at + 1..(at + 3).min(args.len())).collect();
        }
    }
    Vec::new()
}

pub fn pubsub(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = lower(args[1]);
    // Each subcommand's arity, as Redis 7.0's table has it (negative: at least).
    let arity: i32 = match sub.as_str() {
        "channels" | "shardchannels" => -2,
        "numsub" | "shardnumsub" => -2,
        "numpat" | "help" => 2,
        _ => {
            return Err(CmdError::other(format!(
                "unknown subcommand '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(args[1])
            )))
        }
    };
    let argc = args.len() as i32;
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err(CmdError::Arity(format!("pubsub|{sub}")));
    }
    if sub.ends_with("channels") && argc > 3 {
        return Err(CmdError::other(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(args[1])
        )));
    }
    let hub = ctx.shared.pubsub.lock();
    let shard = sub.starts_with("shard");
    Ok(match sub.as_str() {
        "channels" | "shardchannels" => {
            Reply::Array(hub.channel_names(shard, args.get(2).copied()))
        }
        "numsub" | "shardnumsub" => {
            let mut counts = Vec::with_capacity(2 * (args.len() - 2));
            for channel in &args[2..] {
                counts.push(Reply::bulk(channel));
                counts.push(Reply::Int(hub.subscriber_count(shard, channel) as i64));
            }
            Reply::Array(counts)
        }
        "numpat" => Reply::Int(hub.stats().patterns as i64),
        _ => help_reply("PUBSUB", HELP),
    })
}

const HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];
