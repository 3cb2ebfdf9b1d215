//! Connection commands: PING, ECHO, AUTH, HELLO, QUIT, RESET, CLIENT.

use super::transactions::release_watches;
use super::{int_arg, is, lower, CmdError, CmdResult, Ctx};
use crate::instance::client::{Current, KillFilter, ReplyMode};
use crate::instance::pause::{Pause, PauseKind};
use crate::protocol::{Output, Reply};

pub fn ping(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::Arity("ping".into()));
    }
    // A RESP2 subscriber gets its PONG as a message-shaped array, as Redis gives it.
    if ctx.client.subscribed() && !ctx.client.resp3 {
        let echoed = args.get(1).copied().unwrap_or(b"");
        return Ok(Reply::Array(vec![Reply::bulk("pong"), Reply::bulk(echoed)]));
    }
    Ok(match args.get(1) {
        None => Reply::Status("PONG"),
        Some(echoed) => Reply::bulk(echoed),
    })
}

pub fn echo(_ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    Ok(Reply::bulk(args[1]))
}

const NO_PASSWORD: &str = "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks a username/password pair against the instance's access keys, in constant time.
fn check_credentials(ctx: &mut Ctx, user: Option<&[u8]>, password: &[u8]) -> Result<(), CmdError> {
    let keys = ctx.shared.access_keys();
    if keys.is_empty() {
        // Without keys the default user takes any password, but the one-argument form is
        // reported as a likely configuration mistake, as Redis does.
        return match user {
            None => Err(CmdError::other(NO_PASSWORD)),
            Some(b"default") => {
                ctx.client.authenticate(None, ctx.shared.auth_generation());
                Ok(())
            }
            Some(_) => Err(CmdError::Coded(WRONGPASS.into())),
        };
    }
    let user_ok = user.is_none_or(|u| u == b"default");
    // Every key is compared, whatever matched, so the time says nothing about any of them.
    let matched = keys.iter().fold(None, |found, k| {
        match crate::util::constant_time_eq(k.as_bytes(), password) {
            true => Some(k.clone()),
            false => found,
        }
    });
    match matched {
        Some(key) if user_ok => {
            ctx.client
                .authenticate(Some(key), ctx.shared.auth_generation());
            Ok(())
        }
        _ => Err(CmdError::Coded(WRONGPASS.into())),
    }
}

pub fn auth(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    match args.len() {
        2 => check_credentials(ctx, None, args[1])?,
        3 => check_credentials(ctx, Some(args[1]), args[2])?,
        _ => return Err(CmdError::Syntax),
    }
    Ok(Reply::OK)
}

pub fn hello(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let mut proto = None;
    if let Some(v) = args.get(1) {
        let version = crate::util::parse_i64(v)
            .ok_or_else(|| CmdError::other("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&version) {
            return Err(CmdError::Coded(
                "NOPROTO unsupported protocol version".into(),
            ));
        }
        proto = Some(version);
    }
    let mut name = None;
    let mut i = 2;
    while i < args.len() {
        if is(args[i], "AUTH") && i + 2 < args.len() {
            check_credentials(ctx, Some(args[i + 1]), args[i + 2])?;
            i += 3;
        } else if is(args[i], "SETNAME") && i + 1 < args.len() {
            name = Some(valid_client_name(args[i + 1])?);
            i += 2;
        } else {
            return Err(CmdError::other(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(args[i])
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::Coded("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(name) = name {
        ctx.client.set_name(name);
    }
    if let Some(version) = proto {
        ctx.client.set_resp3(version == 3);
    }
    Ok(Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(crate::REDIS_VERSION)),
        (
            Reply::bulk("proto"),
            Reply::Int(if ctx.client.resp3 { 3 } else { 2 }),
        ),
        (Reply::bulk("id"), Reply::Int(ctx.client.id() as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(vec![])),
    ]))
}

pub fn quit(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.client.close_after_reply = true;
    Ok(Reply::OK)
}

pub fn reset(ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    ctx.client.multi = None;
    ctx.client.multi_failed = false;
    release_watches(ctx);
    ctx.client.db = 0;
    ctx.client.reply_mode = ReplyMode::On;
    super::pubsub::unsubscribe_all(ctx);
    super::tracking::disable(ctx);
    ctx.client.set_resp3(false);
    ctx.client.clear_name();
    ctx.client.authenticated = ctx.shared.access_keys().is_empty();
    Ok(Reply::Status("RESET"))
}

/// A client type as CLIENT LIST and CLIENT KILL name them (`replica` and `slave` alike).
fn client_type(name: &[u8]) -> Result<&'static str, CmdError> {
    match lower(name).as_str() {
        "normal" => Ok("normal"),
        "pubsub" => Ok("pubsub"),
        "slave" | "replica" => Ok("replica"),
        "master" => Ok("master"),
        _ => Err(CmdError::other(format!(
            "Unknown client type '{}'",
            String::from_utf8_lossy(name)
        ))),
    }
}

/// What CLIENT LIST and CLIENT INFO show of the client running them.
fn current_of(ctx: &Ctx, args: &[&[u8]]) -> Current {
    // `*<n>\r\n`, then `$<len>\r\n<arg>\r\n` for each argument.
    let digits = |n: usize| n.to_string().len();
    let request_bytes = 3
        + digits(args.len())
        + args
            .iter()
            .map(|a| 3 + digits(a.len()) + a.len() + 2)
            .sum::<usize>();
    Current {
        command: super::full_name_of(args),
        request_bytes,
        argument_bytes: args.iter().map(|a| a.len()).sum(),
        multi: ctx.client.multi.as_ref().map(Vec::len),
    }
}

fn valid_client_name(name: &[u8]) -> Result<String, CmdError> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::other(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

pub fn client(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = lower(args[1]);
    let arity_error = || CmdError::Arity(format!("client|{sub}"));
    match sub.as_str() {
        "id" if args.len() == 2 => Ok(Reply::Int(ctx.client.id() as i64)),
        "getname" if args.len() == 2 => Ok(ctx.client.name().map_or(Reply::Null, Reply::bulk)),
        "setname" if args.len() == 3 => {
            let name = valid_client_name(args[2])?;
            if name.is_empty() {
                ctx.client.clear_name();
            } else {
                ctx.client.set_name(name);
            }
            Ok(Reply::OK)
        }
        "info" if args.len() == 2 => {
            let current = current_of(ctx, args);
            Ok(Reply::Verbatim(format!(
                "{}\n",
                ctx.client.describe(ctx.client.db, Some(&current))
            )))
        }
        "list" => {
            let mut ids: Option<Vec<u64>> = None;
            let mut kind = None;
            if args.len() == 4 && is(args[2], "TYPE") {
                kind = Some(client_type(args[3])?);
            } else if args.len() > 3 && is(args[2], "ID") {
                let list = args[3..]
                    .iter()
                    .map(|a| int_arg(a).map(|n| n as u64))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| CmdError::other("Invalid client ID"))?;
                ids = Some(list);
            } else if args.len() != 2 {
                return Err(CmdError::Syntax);
            }
            let current = current_of(ctx, args);
            let mut text = String::new();
            for client in ctx.shared.clients_snapshot() {
                if ids.as_ref().is_some_and(|ids| !ids.contains(&client.id))
                    || kind.is_some_and(|k| k != client.client_type())
                {
                    continue;
                }
                let line = if client.id == ctx.client.id() {
                    client.describe(ctx.client.db, Some(&current))
                } else {
                    client.describe(client.db(), None)
                };
                text.push_str(&line);
                text.push('\n');
            }
            Ok(Reply::Verbatim(text))
        }
        "kill" if args.len() >= 3 => {
            let old_form = args.len() == 3;
            let mut filter = KillFilter::default();
            let mut skip_me = !old_form;
            if old_form {
                filter.addr = Some(String::from_utf8_lossy(args[2]).into_owned());
            } else {
                for pair in args[2..].chunks(2) {
                    let [option, value] = pair else {
                        return Err(CmdError::Syntax);
                    };
                    if is(option, "ID") {
                        let id = crate::util::parse_i64(value)
                            .filter(|&n| n >= 1)
                            .ok_or_else(|| CmdError::other("client-id should be greater than 0"))?;
                        filter.id = Some(id as u64);
                    } else if is(option, "TYPE") {
                        filter.kind = Some(client_type(value)?);
                    } else if is(option, "ADDR") {
                        filter.addr = Some(String::from_utf8_lossy(value).into_owned());
                    } else if is(option, "LADDR") {
                        filter.laddr = Some(String::from_utf8_lossy(value).into_owned());
                    } else if is(option, "USER") {
                        // The default user is the only one (access keys are its passwords).
                        if *value != b"default" {
                            return Err(CmdError::other(format!(
                                "No such user '{}'",
                                String::from_utf8_lossy(value)
                            )));
                        }
                    } else if is(option, "SKIPME") && is(value, "YES") {
                        skip_me = true;
                    } else if is(option, "SKIPME") && is(value, "NO") {
                        skip_me = false;
                    } else {
                        return Err(CmdError::Syntax);
                    }
                }
            }
            let me = ctx.client.id();
            let mut killed = 0;
            for client in ctx.shared.clients_snapshot() {
                if client.matches_kill(&filter) && !(skip_me && client.id == me) {
                    // This very client is closed once its reply is written.
                    client.kill();
                    killed += 1;
                }
            }
            match (old_form, killed) {
                (true, 0) => Err(CmdError::other("No such client")),
                (true, _) => Ok(Reply::OK),
                (false, n) => Ok(Reply::Int(n)),
            }
        }
        "pause" if args.len() == 3 || args.len() == 4 => {
            let kind = match args.get(3) {
                None => PauseKind::All,
                Some(a) if is(a, "WRITE") => PauseKind::Write,
                Some(a) if is(a, "ALL") => PauseKind::All,
                Some(_) => return Err(CmdError::other("CLIENT PAUSE mode must be WRITE or ALL")),
            };
            let ms = crate::util::parse_i64(args[2])
                .ok_or_else(|| CmdError::other("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(CmdError::other("timeout is negative"));
            }
            let until_ms = if ms > 0 {
                ctx.ks.now.saturating_add(ms as u64)
            } else {
                0
            };
            ctx.shared.set_pause(ctx.ks, Pause { kind, until_ms });
            Ok(Reply::OK)
        }
        "unpause" if args.len() == 2 => {
            ctx.shared.set_pause(ctx.ks, Pause::default());
            Ok(Reply::OK)
        }
        "reply" if args.len() == 3 => {
            let mode = &mut ctx.client.reply_mode;
            if is(args[2], "ON") {
                *mode = ReplyMode::On;
                return Ok(Reply::OK);
            }
            if is(args[2], "OFF") {
                *mode = ReplyMode::Off;
            } else if is(args[2], "SKIP") {
                if *mode != ReplyMode::Off {
                    *mode = ReplyMode::SkipNext;
                }
            } else {
                return Err(CmdError::Syntax);
            }
            // OFF and SKIP answer nothing.
            Ok(Reply::Encoded(Output::new()))
        }
        "unblock" if args.len() == 3 || args.len() == 4 => {
            let id = int_arg(args[2])? as u64;
            let error = match args.get(3) {
                None => false,
                Some(a) if is(a, "TIMEOUT") => false,
                Some(a) if is(a, "ERROR") => true,
                Some(_) => {
                    return Err(CmdError::other(
                        "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                    ))
                }
            };
            let Some(waiter) = ctx.shared.blocked.lock().remove(ctx.ks, id) else {
                return Ok(Reply::Int(0));
            };
            let reply = if error {
                Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
            } else {
                waiter.timeout_reply
            };
            let _ = waiter.done.send(reply);
            Ok(Reply::Int(1))
        }
        "tracking" if args.len() >= 3 => super::tracking::tracking(ctx, args),
        "caching" if args.len() == 3 => super::tracking::caching(ctx, args),
        "getredir" if args.len() == 2 => super::tracking::getredir(ctx, args),
        "trackinginfo" if args.len() == 2 => super::tracking::trackinginfo(ctx, args),
        "no-evict" if args.len() == 3 => {
            let on = if is(args[2], "ON") {
                true
            } else if is(args[2], "OFF") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
            ctx.client.info.set_no_evict(on);
            Ok(Reply::OK)
        }
        "help" => Ok(Reply::Array(
            [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CACHING (YES|NO)",
                "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
                "GETREDIR",
                "    Return the client ID we are redirecting to when tracking is enabled.",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are:",
                "    * ADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made from the specified address",
                "    * LADDR (<ip:port>|<unixsocket>:0)",
                "      Kill connections made to specified local address",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Kill connections by type.",
                "    * USER <username>",
                "      Kill connections authenticated by <username>.",
                "    * SKIPME (YES|NO)",
                "      Skip killing current connection (default: yes).",
                "LIST [options ...]",
                "    Return information about client connections. Options:",
                "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                "      Return clients of specified type.",
                "UNPAUSE",
                "    Stop the current client pause, resuming traffic.",
                "PAUSE <timeout> [WRITE|ALL]",
                "    Suspend all, or just write, clients for <timeout> milliseconds.",
                "REPLY (ON|OFF|SKIP)",
                "    Control the replies sent to the current connection.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                "    Unblock the specified blocked client.",
                "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
                "         [OPTIN] [OPTOUT] [NOLOOP]",
                "    Control server assisted client side caching.",
                "TRACKINGINFO",
                "    Report tracking status for the current connection.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::StatusOwned((*l).into()))
            .collect(),
        )),
        "id" | "getname" | "setname" | "info" | "kill" | "unblock" | "reply" | "pause"
        | "unpause" | "tracking" | "caching" | "getredir" | "trackinginfo" | "no-evict" => {
            Err(arity_error())
        }
        _ => Err(CmdError::other(format!(
            "unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(args[1])
        ))),
    }
}
