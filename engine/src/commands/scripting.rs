//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (the Lua side is in
//! crate::scripting), and FUNCTION FLUSH. Function libraries (FUNCTION LOAD, FCALL) are not
//! there yet: FUNCTION's other subcommands are refused as unknown, never faked.
//!
//! A script's `redis.call` runs its command through `commands::run`, as EXEC runs queued
//! commands: the same handlers, AOF logging and emptied-key removal. Its writes are logged
//! as they happen and wrapped in MULTI/EXEC when there are several, so a replay never runs
//! the script again.

use mlua::{Lua, MultiValue, Value};

use super::{int_arg, is, lower, CmdError, CmdResult, CommandSpec, Ctx, Flags};
use crate::instance::client::ClientState;
use crate::instance::Shared;
use crate::protocol::Reply;
use crate::scripting::convert::{lua_to_reply, reply_to_lua};
use crate::scripting::{self, RunError, ScriptFlags, Scripts, Target, KILLED};

pub fn eval(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

pub fn evalsha(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

pub fn eval_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

pub fn evalsha_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

/// Whether a script declares `no-writes` (EVAL's body, EVALSHA's cached script, FCALL's
/// function): CLIENT PAUSE WRITE lets such a script run, as Redis does.
pub fn declares_no_writes(shared: &Shared, spec: &CommandSpec, args: &[&[u8]]) -> bool {
    let Some(target) = args.get(1) else {
        return false;
    };
    if spec.name.starts_with("eval") && !spec.name.starts_with("evalsha") {
        return scripting::parse_shebang(target).is_ok_and(|(flags, _)| flags.no_writes);
    }
    let slot = shared.scripts.lock();
    let Some(scripts) = slot.as_ref() else {
        return false;
    };
    let name = String::from_utf8_lossy(target).to_ascii_lowercase();
    let flags = if spec.name.starts_with("evalsha") {
        scripts.cache.get(&name).map(|s| s.flags)
    } else {
        scripts.functions.get(&name).map(|f| f.flags)
    };
    flags.is_some_and(|f| f.no_writes)
}

fn no_script() -> CmdError {
    CmdError::Coded("NOSCRIPT No matching script. Please use EVAL.".into())
}

/// The instance's scripts, started at the first use.
fn scripts_of(slot: &mut Option<Scripts>) -> Result<&mut Scripts, CmdError> {
    if slot.is_none() {
        let scripts = Scripts::new()
            .map_err(|e| CmdError::other(format!("Lua scripting could not start: {e}")))?;
        *slot = Some(scripts);
    }
    slot.as_mut()
        .ok_or_else(|| CmdError::other("Lua scripting could not start"))
}

/// What a running script's calls share: its own client state (its database, its RESP
/// version) and what it has done.
struct ScriptClient {
    state: ClientState,
    readonly: bool,
    allow_oom: bool,
    /// The data set was over maxmemory when the script started.
    oom_at_start: bool,
    wrote: bool,
}

/// A script's keys and arguments, out of its command's arguments.
type KeysAndArgs<'s, 'a> = (&'s [&'a [u8]], &'s [&'a [u8]]);

/// Splits `numkeys key... arg...` at `at` into the keys and the arguments.
fn keys_and_args<'s, 'a>(args: &'s [&'a [u8]], at: usize) -> Result<KeysAndArgs<'s, 'a>, CmdError> {
    let numkeys = int_arg(args[at])?;
    if numkeys > (args.len() - at - 1) as i64 {
        return Err(CmdError::other(
            "Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(CmdError::other("Number of keys can't be negative"));
    }
    let split = at + 1 + numkeys as usize;
    Ok((&args[at + 1..split], &args[split..]))
}

fn eval_generic(ctx: &mut Ctx, args: &[&[u8]], by_sha: bool, readonly: bool) -> CmdResult {
    if by_sha && args[1].len() != 40 {
        return Err(no_script());
    }
    let (keys, argv) = keys_and_args(args, 2)?;
    // Fed to MONITOR before the commands it runs, as Redis feeds a script.
    super::pubsub::feed_monitors(ctx, args);
    let shared = ctx.shared;
    let mut slot = shared.scripts.lock();
    let scripts = scripts_of(&mut slot)?;
    let sha = if by_sha {
        String::from_utf8_lossy(args[1]).to_ascii_lowercase()
    } else {
        scripts.load(args[1]).map_err(CmdError::Other)?
    };
    let flags = scripts.cache.get(&sha).ok_or_else(no_script)?.flags;
    run_script(
        ctx,
        scripts,
        Target::Script(&sha),
        flags,
        readonly,
        keys,
        argv,
    )
}

pub fn fcall(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    fcall_generic(ctx, args, false)
}

pub fn fcall_ro(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    fcall_generic(ctx, args, true)
}

fn fcall_generic(ctx: &mut Ctx, args: &[&[u8]], readonly: bool) -> CmdResult {
    let (keys, argv) = keys_and_args(args, 2).map_err(|e| match e {
        CmdError::NotInteger => CmdError::other("Bad number of keys provided"),
        other => other,
    })?;
    super::pubsub::feed_monitors(ctx, args);
    let shared = ctx.shared;
    let mut slot = shared.scripts.lock();
    let scripts = scripts_of(&mut slot)?;
    let name = String::from_utf8_lossy(args[1]).into_owned();
    let flags = scripts
        .functions
        .get(&name.to_ascii_lowercase())
        .ok_or_else(|| CmdError::other("Function not found"))?
        .flags;
    run_script(
        ctx,
        scripts,
        Target::Function(&name),
        flags,
        readonly,
        keys,
        argv,
    )
}

/// Runs a script or a function under the checks its flags call for.
fn run_script(
    ctx: &mut Ctx,
    scripts: &mut Scripts,
    target: Target<'_>,
    flags: ScriptFlags,
    readonly: bool,
    keys: &[&[u8]],
    argv: &[&[u8]],
) -> CmdResult {
    let shared = ctx.shared;
    let maxmemory = ctx.ks.config.maxmemory;
    let oom_at_start = maxmemory > 0 && ctx.ks.used_memory() as u64 > maxmemory;
    if flags.shebang && !flags.no_writes {
        if readonly {
            return Err(CmdError::other(
                "Can not execute a script with write flag using *_ro command.",
            ));
        }
        if oom_at_start && !flags.allow_oom {
            return Err(CmdError::Coded("OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'".into()));
        }
    }
    let mut state = ClientState::new(ctx.client.info.clone(), true);
    state.db = ctx.client.db;
    // Blocking commands never block in a script (they answer as if timed out), as in EXEC.
    state.in_exec = true;
    state.in_script = true;
    if ctx.client.tracking.on {
        state.tracking = ctx.client.tracking;
        state.script_keys = keys.iter().map(|k| k.to_vec()).collect();
    }
    let mut script = ScriptClient {
        state,
        readonly: readonly || flags.no_writes,
        allow_oom: flags.allow_oom,
        oom_at_start,
        wrote: false,
    };
    let wraps = !ctx.ks.feed.in_transaction();
    if wraps {
        ctx.ks.feed.begin_transaction();
    }
    let status = shared.script_status.clone();
    let mut lend = |lua: &Lua, args: MultiValue| control(ctx, &mut script, lua, args);
    let run = || scripts.run(target, keys, argv, &status, &mut lend);
    // Other clients must go on being served while the script runs: the worker hands its
    // duties (its queued tasks, the one in its LIFO slot included, which no other worker may
    // steal) to another thread first, at the cost of a thread switch per script.
    let outcome = crate::util::off_worker(run);
    if wraps {
        ctx.ks.feed.end_transaction();
    }
    let resp3 = script.state.resp3;
    let (name, chunk) = match target {
        Target::Script(sha) => (sha, "@user_script"),
        Target::Function(name) => (name, "@user_function"),
    };
    match outcome {
        Ok(value) => Ok(lua_to_reply(&value, resp3)),
        Err(RunError::NoScript) => Err(no_script()),
        Err(RunError::Script(error)) => Err(CmdError::Coded(with_place(
            error_text(&error),
            name,
            chunk,
            scripting::error_line(&error),
        ))),
        Err(RunError::Killed(line)) => Err(CmdError::Coded(with_place(
            KILLED.to_string(),
            name,
            chunk,
            line,
        ))),
        Err(RunError::Lua(e)) => Err(CmdError::other(format!("Error running script {name}, {e}"))),
    }
}

/// The reply text for a script's error table: its `err`.
fn error_text(error: &Value) -> String {
    match error {
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => s.to_string_lossy(),
            Ok(Value::Number(n)) => n.to_string(),
            _ => "ERR".to_string(),
        },
        other => format!("ERR {other:?}"),
    }
}

/// An error text with where it happened: " script: <sha or function>, on <chunk>:<line>.".
fn with_place(text: String, name: &str, chunk: &str, line: Option<i64>) -> String {
    match line {
        Some(line) => format!("{text} script: {name}, on {chunk}:{line}."),
        None => text,
    }
}

/// The script's requests to its EVAL: `call` (redis.call and redis.pcall), `setresp`,
/// `set_repl`, `log`. A call returns (true, reply) or (false, error table).
fn control(
    ctx: &mut Ctx,
    script: &mut ScriptClient,
    lua: &Lua,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
    let mut args = args.into_iter();
    let op = match args.next() {
        Some(Value::String(s)) => s.to_string_lossy(),
        _ => String::new(),
    };
    match op.as_str() {
        "call" => {
            let call_args: Vec<Value> = match args.next() {
                Some(Value::Table(t)) => t.sequence_values().collect::<mlua::Result<_>>()?,
                _ => Vec::new(),
            };
            let (ok, value) = match script_call(ctx, script, call_args) {
                Ok(reply) => {
                    let failed = matches!(reply, Reply::Error(_));
                    (!failed, reply_to_lua(lua, reply, script.state.resp3)?)
                }
                Err(text) => (false, reply_to_lua(lua, Reply::Error(text), false)?),
            };
            Ok(MultiValue::from_iter([Value::Boolean(ok), value]))
        }
        "setresp" => {
            let resp = args.next();
            script.state.resp3 = matches!(resp, Some(Value::Number(n)) if n == 3.0)
                || matches!(resp, Some(Value::Integer(3)));
            Ok(MultiValue::new())
        }
        "log" => {
            let text = match args.nth(1) {
                Some(Value::String(s)) => s.to_string_lossy(),
                _ => String::new(),
            };
            ctx.shared
                .events
                .push(crate::telemetry::EventKind::ScriptLog, text);
            Ok(MultiValue::new())
        }
        // Replication targets come with the replication issue; the AOF takes every write.
        _ => Ok(MultiValue::new()),
    }
}

/// Runs one redis.call: the checks Redis makes for scripts, then the command itself.
/// Err is the text of a refusal.
fn script_call(
    ctx: &mut Ctx,
    script: &mut ScriptClient,
    args: Vec<Value>,
) -> Result<Reply, String> {
    if args.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call".into());
    }
    let mut owned = Vec::with_capacity(args.len());
    for arg in &args {
        owned.push(match arg {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Integer(n) => n.to_string().into_bytes(),
            Value::Number(n) => crate::protocol::reply::format_double(*n).into_bytes(),
            _ => {
                return Err(
                    "ERR Lua redis lib command arguments must be strings or integers".into(),
                )
            }
        });
    }
    let argv = super::arg_slices(&owned);
    let spec = match super::resolve(&argv) {
        Ok(spec) => spec,
        Err(CmdError::Arity(_)) => {
            return Err("ERR Wrong number of args calling Redis command from script".into())
        }
        Err(_) => return Err("ERR Unknown Redis command called from script".into()),
    };
    if spec.flags.contains(Flags::NOSCRIPT) {
        return Err("ERR This Redis command is not allowed from script".into());
    }
    let write = spec.flags.contains(Flags::WRITE);
    // A read-only script may not publish either (PUBLISH may replicate), as in Redis.
    if (write || spec.flags.contains(Flags::MAY_REPLICATE)) && script.readonly {
        return Err("ERR Write commands are not allowed from read-only scripts.".into());
    }
    if !script.wrote
        && !script.allow_oom
        && script.oom_at_start
        && spec.flags.contains(Flags::DENY_OOM)
    {
        return Err(CmdError::Oom.to_string());
    }
    if write {
        script.wrote = true;
        ctx.shared.script_status.note_write();
    }
    let mut inner = Ctx::new(ctx.ks, &mut script.state, ctx.shared);
    Ok(super::run(&mut inner, spec, &argv).into_tree())
}

pub fn script(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = lower(args[1]);
    let arity_error = || CmdError::Arity(format!("script|{sub}"));
    let shared = ctx.shared;
    match sub.as_str() {
        "load" if args.len() == 3 => {
            let mut slot = shared.scripts.lock();
            let sha = scripts_of(&mut slot)?
                .load(args[2])
                .map_err(CmdError::Other)?;
            Ok(Reply::bulk(sha))
        }
        "exists" if args.len() >= 3 => {
            let slot = shared.scripts.lock();
            Ok(Reply::Array(
                args[2..]
                    .iter()
                    .map(|sha| {
                        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                        let known = slot.as_ref().is_some_and(|s| s.cache.contains_key(&sha));
                        Reply::Int(i64::from(known))
                    })
                    .collect(),
            ))
        }
        "flush" if args.len() <= 3 => {
            if args.len() == 3 && !is(args[2], "ASYNC") && !is(args[2], "SYNC") {
                return Err(CmdError::other(
                    "SCRIPT FLUSH only support SYNC|ASYNC option",
                ));
            }
            if let Some(scripts) = shared.scripts.lock().as_mut() {
                scripts.cache.clear();
            }
            Ok(Reply::OK)
        }
        // A script holds the keyspace while it runs, so a SCRIPT KILL that gets here found
        // none running; one that comes while a script is busy is answered by the connection.
        "kill" if args.len() == 2 => Err(CmdError::Coded(
            "NOTBUSY No scripts in execution right now.".into(),
        )),
        "help" if args.len() == 2 => Ok(Reply::Array(
            [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::StatusOwned((*l).into()))
            .collect(),
        )),
        "load" | "exists" | "flush" | "kill" | "help" => Err(arity_error()),
        _ => Err(CmdError::other(format!(
            "unknown subcommand '{}'. Try SCRIPT HELP.",
            String::from_utf8_lossy(args[1])
        ))),
    }
}

pub fn function(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = lower(args[1]);
    let arity_error = || CmdError::Arity(format!("function|{sub}"));
    let shared = ctx.shared;
    let mut slot = shared.scripts.lock();
    match sub.as_str() {
        "load" if args.len() >= 3 => {
            let mut replace = false;
            for option in &args[2..args.len() - 1] {
                if !is(option, "REPLACE") {
                    return Err(CmdError::other(format!(
                        "Unknown option given: {}",
                        String::from_utf8_lossy(option)
                    )));
                }
                replace = true;
            }
            let name = scripts_of(&mut slot)?
                .load_library(args[args.len() - 1], replace)
                .map_err(CmdError::Other)?;
            // A library is data: it is logged, so a replay loads it too.
            ctx.ks.dirty += 1;
            Ok(Reply::bulk(name))
        }
        "delete" if args.len() == 3 => {
            let name = String::from_utf8_lossy(args[2]);
            let deleted = slot.as_mut().is_some_and(|s| s.delete_library(&name));
            if !deleted {
                return Err(CmdError::other("Library not found"));
            }
            ctx.ks.dirty += 1;
            Ok(Reply::OK)
        }
        "flush" => {
            if args.len() > 3 {
                return Err(CmdError::other(format!(
                    "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                    String::from_utf8_lossy(args[1])
                )));
            }
            if args.len() == 3 && !is(args[2], "ASYNC") && !is(args[2], "SYNC") {
                return Err(CmdError::other(
                    "FUNCTION FLUSH only supports SYNC|ASYNC option",
                ));
            }
            if let Some(scripts) = slot.as_mut() {
                scripts.libraries.clear();
                scripts.functions.clear();
            }
            ctx.ks.dirty += 1;
            Ok(Reply::OK)
        }
        "list" => {
            let (mut pattern, mut with_code) = (None, false);
            let mut i = 2;
            while i < args.len() {
                if is(args[i], "WITHCODE") {
                    with_code = true;
                } else if is(args[i], "LIBRARYNAME") && i + 1 < args.len() {
                    pattern = Some(args[i + 1]);
                    i += 1;
                } else {
                    return Err(CmdError::other(format!(
                        "Unknown argument {}",
                        String::from_utf8_lossy(args[i])
                    )));
                }
                i += 1;
            }
            let Some(scripts) = slot.as_ref() else {
                return Ok(Reply::Array(Vec::new()));
            };
            let libraries = scripts
                .libraries
                .values()
                .filter(|library| {
                    pattern
                        .is_none_or(|p| crate::util::glob_match(p, library.name.as_bytes(), false))
                })
                .map(|library| {
                    let functions = library
                        .functions
                        .iter()
                        .filter_map(|f| scripts.functions.get(f))
                        .map(|lf| {
                            Reply::Map(vec![
                                (Reply::bulk("name"), Reply::bulk(&lf.name)),
                                (
                                    Reply::bulk("description"),
                                    lf.description.as_ref().map_or(Reply::Null, Reply::bulk),
                                ),
                                (
                                    Reply::bulk("flags"),
                                    Reply::Set(
                                        lf.flag_names
                                            .iter()
                                            .map(|f| Reply::StatusOwned(f.clone()))
                                            .collect(),
                                    ),
                                ),
                            ])
                        })
                        .collect();
                    let mut fields = vec![
                        (Reply::bulk("library_name"), Reply::bulk(&library.name)),
                        (Reply::bulk("engine"), Reply::bulk("LUA")),
                        (Reply::bulk("functions"), Reply::Array(functions)),
                    ];
                    if with_code {
                        fields.push((Reply::bulk("library_code"), Reply::bulk(&library.code)));
                    }
                    Reply::Map(fields)
                })
                .collect();
            Ok(Reply::Array(libraries))
        }
        // As SCRIPT KILL: one that gets here found no function running.
        "kill" if args.len() == 2 => Err(CmdError::Coded(
            "NOTBUSY No scripts in execution right now.".into(),
        )),
        "help" if args.len() == 2 => Ok(Reply::Array(
            [
                "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "LOAD [REPLACE] <FUNCTION CODE>",
                "    Create a new library with the given library name and code.",
                "DELETE <LIBRARY NAME>",
                "    Delete the given library.",
                "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                "    Return general information on all the libraries.",
                "FLUSH [ASYNC|SYNC]",
                "    Delete all the libraries.",
                "KILL",
                "    Kill the current running function.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::StatusOwned((*l).into()))
            .collect(),
        )),
        "load" | "delete" | "kill" | "help" => Err(arity_error()),
        _ => Err(CmdError::other(format!(
            "unknown subcommand '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(args[1])
        ))),
    }
}
