//! Command table and dispatch: arity, authentication, MULTI queuing, maxmemory and WATCH
//! bookkeeping happen here once, so each family file only implements its commands.
//!
//! A handler takes the arguments (the command name first) and returns a reply or a typed
//! error whose text is Redis 7.0's.

pub mod bitmaps;
pub mod connection;
pub mod docs;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod lists;
pub mod persistence;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod table;
pub mod tracking;
pub mod transactions;
pub mod zsets;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::instance::client::ClientState;
use crate::instance::Shared;
pub use crate::keyspace::notify::class as event;
use crate::keyspace::{Blob, Keyspace, Kind, Value, ValueMut, WrongType};
use crate::protocol::Reply;
pub use table::{CommandSpec, Flags};

/// A command's failure, rendered as Redis 7.0's error text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR index out of range")]
    IndexOutOfRange,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(&'static str),
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    Oom,
    /// A malformed EXEC, which Redis reports as the abort of the transaction.
    #[error("EXECABORT Transaction discarded because of: {0}")]
    ExecAbort(String),
    #[error("LOADING Redis is loading the dataset in memory")]
    Loading,
    #[error("ERR {0}")]
    Other(String),
    /// An error whose text carries its own code (WRONGPASS, NOPROTO, EXECABORT...).
    #[error("{0}")]
    Coded(String),
}

impl CmdError {
    pub fn other(text: impl Into<String>) -> Self {
        CmdError::Other(text.into())
    }
}

impl From<CmdError> for Reply {
    fn from(e: CmdError) -> Reply {
        Reply::Error(e.to_string())
    }
}

pub type CmdResult = Result<Reply, CmdError>;

/// What a command runs against: the keyspace (locked by the caller for the whole batch), the
/// client that sent it, and the instance's shared state.
pub struct Ctx<'a> {
    pub ks: &'a mut Keyspace,
    pub client: &'a mut ClientState,
    pub shared: &'a Shared,
    /// Set by a blocking command that found nothing: the connection waits, then retries.
    pub block: Option<BlockRequest>,
    /// Set when the command logged itself to the AOF in another form (`propagate`).
    propagated: bool,
    /// The request's big arguments, each read into a buffer of its own by the connection
    /// (empty for other callers).
    pub big_args: &'a [Vec<u8>],
    /// Strings stored from big arguments, whose buffers the connection moves in after the
    /// command (`string_value`).
    pub adopted: Vec<Adoption>,
}

/// A string the running command stored empty, to receive a big argument's own buffer once
/// the command is done: its bytes are then held once, as Redis keeps the argument object.
#[derive(Debug)]
pub struct Adoption {
    pub db: usize,
    pub key: Vec<u8>,
    /// Index into `Ctx::big_args`.
    pub arg: usize,
}

/// A blocking command's wish to wait: until `deadline_ms` (None: forever).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BlockRequest {
    pub deadline_ms: Option<u64>,
    /// The command to run again after the wait, if not the one sent (XREAD's `$` is the id
    /// it stood for when the client blocked).
    pub retry_args: Option<Vec<Vec<u8>>>,
    /// Not waiting for a key but for CLIENT PAUSE to end (then the command runs); true if
    /// the command writes (or may replicate).
    pub paused: Option<bool>,
}

impl<'a> Ctx<'a> {
    pub fn new(ks: &'a mut Keyspace, client: &'a mut ClientState, shared: &'a Shared) -> Self {
        Ctx {
            ks,
            client,
            shared,
            block: None,
            propagated: false,
            big_args: &[],
            adopted: Vec::new(),
        }
    }

    /// The string value to store under `key` from `bytes`, an argument of the running
    /// command. A big argument is not copied: the value is stored empty and receives the
    /// argument's buffer after the command, so the caller must store it under `key` and leave
    /// it as it is for the rest of the command. (The argument itself stays readable, for the
    /// AOF, until then.)
    pub fn string_value(&mut self, key: &[u8], bytes: &[u8]) -> Value {
        // A value stored earlier in the command under the same key is replaced by this one.
        let db = self.db();
        self.adopted.retain(|a| a.db != db || a.key != key);
        let big = self
            .big_args
            .iter()
            .position(|big| std::ptr::eq(big.as_ptr(), bytes.as_ptr()) && big.len() == bytes.len());
        match big {
            Some(arg) if !self.adopted.iter().any(|a| a.arg == arg) => {
                self.adopted.push(Adoption {
                    db,
                    key: key.to_vec(),
                    arg,
                });
                Value::Str(Blob::new())
            }
            _ => Value::Str(Blob::from_slice(bytes)),
        }
    }

    /// True if writes are logged to an AOF (so a handler need not build its logged form).
    pub fn aof_on(&self) -> bool {
        self.ks.feed.is_on()
    }

    /// Logs the running command to the AOF as `args` instead of as it was sent, as Redis
    /// propagates it: relative times become absolute, random or blocking effects explicit.
    pub fn propagate<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.propagated = true;
        let db = self.db();
        self.ks.feed.command(db, args);
    }

    /// Logs nothing for the running command beyond what it logged with `propagate` (a write
    /// that, as in Redis, changed nothing worth replaying).
    pub fn propagate_none(&mut self) {
        self.propagated = true;
    }

    /// Logs several commands for the running one, as one transaction unless it runs inside
    /// one (Redis wraps what a command propagates in MULTI/EXEC).
    pub fn propagate_all(&mut self, commands: &[Vec<Vec<u8>>]) {
        self.propagated = true;
        let wrap = commands.len() > 1 && !self.ks.feed.in_transaction();
        if wrap {
            self.ks.feed.begin_transaction();
        }
        for command in commands {
            self.propagate(command);
        }
        if wrap {
            self.ks.feed.end_transaction();
        }
    }

    pub fn db(&self) -> usize {
        self.client.db
    }

    /// Stores the result of a *STORE command under `dst`, replacing what was there, with
    /// its event; an empty result (None) deletes `dst` instead, with `del` if it existed.
    pub fn store_result(
        &mut self,
        dst: &[u8],
        result: Option<Value>,
        class: u32,
        name: &'static str,
    ) {
        let db = self.db();
        match result {
            Some(value) => {
                self.ks.set(db, dst, value);
                self.notify(class, name, dst);
            }
            None => {
                if self.ks.delete(db, dst) {
                    self.notify(event::GENERIC, "del", dst);
                }
            }
        }
    }

    /// Raises keyspace event `event` of class `class` on `key` in the client's database.
    pub fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        let db = self.db();
        self.ks.notify(class, event, db, key);
    }

    /// Reads a key expected to hold a string.
    pub fn get_str(&mut self, key: &[u8]) -> Result<Option<&Blob>, CmdError> {
        self.read::<Blob>(key)
    }

    /// Reads a key expected to hold a `T`; None if absent.
    pub fn read<T: Kind>(&mut self, key: &[u8]) -> Result<Option<&T>, CmdError> {
        let counted = !self.ks.write_command;
        self.read_counted(key, counted)
    }

    /// `read` for a key a write command reads as Redis's lookupKeyRead does (SORT's and a
    /// *STORE command's sources, GETSET's and GETDEL's old value, XREADGROUP's stream): it
    /// counts a hit or miss and may raise `keymiss`, where the keys a write command changes
    /// count neither.
    pub fn read_source<T: Kind>(&mut self, key: &[u8]) -> Result<Option<&T>, CmdError> {
        self.read_counted(key, true)
    }

    fn read_counted<T: Kind>(&mut self, key: &[u8], counted: bool) -> Result<Option<&T>, CmdError> {
        let db = self.db();
        match self.ks.lookup(db, key, counted) {
            None => Ok(None),
            Some(v) => T::of(v).map(Some).ok_or(CmdError::WrongType),
        }
    }

    /// Writable access to a key expected to hold a `T`; None if absent.
    pub fn write<T: Kind>(&mut self, key: &[u8]) -> Result<Option<ValueMut<'_, T>>, CmdError> {
        let db = self.db();
        self.ks
            .get_mut::<T>(db, key)
            .map_err(|WrongType| CmdError::WrongType)
    }

    /// Writable access to a key a blocking command waits on. Run again after the wait, a key
    /// that now holds another type is as good as absent, so the client stays blocked: Redis
    /// serves a blocked client only from a key of the type it waits for.
    pub fn waited_on<T: Kind>(&mut self, key: &[u8]) -> Result<Option<ValueMut<'_, T>>, CmdError> {
        let serving_blocked = self.client.serving_blocked;
        match self.write::<T>(key) {
            Err(CmdError::WrongType) if serving_blocked => Ok(None),
            other => other,
        }
    }

    /// Writable access to a key expected to hold a `T`, creating it with `make` if absent.
    pub fn write_or_create<T: Kind>(
        &mut self,
        key: &[u8],
        make: fn() -> Value,
    ) -> Result<ValueMut<'_, T>, CmdError> {
        let db = self.db();
        self.ks
            .get_mut_or_create::<T>(db, key, make)
            .map_err(|WrongType| CmdError::WrongType)
    }
}

/// Borrows owned arguments (a queued, blocked or replayed command) as a handler takes them.
pub fn arg_slices(args: &[Vec<u8>]) -> Vec<&[u8]> {
    args.iter().map(Vec::as_slice).collect()
}

/// Resolves the inclusive start/end ranks of LRANGE, LTRIM, ZRANGE and ZREMRANGEBYRANK
/// (negative from the end) against `len`, as Redis does for them: a start before the first
/// element is the first, an end past the last is the last, and an end still before the start
/// (`0 -5` on four elements) is an empty range. None for an empty range.
pub fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.min(len - 1);
    (start <= end && start < len).then_some((start as usize, end as usize))
}

/// The arguments of LMPOP, BLMPOP and ZMPOP from `at`: numkeys key... SIDE [COUNT count], as
/// Redis parses them (its texts for a bad numkeys or count, a syntax error otherwise). Returns
/// the keys, the side `side` read, and the count (1 by default).
pub fn mpop_args<'s, 'a, W>(
    args: &'s [&'a [u8]],
    at: usize,
    side: impl Fn(&[u8]) -> Option<W>,
) -> Result<(&'s [&'a [u8]], W, usize), CmdError> {
    let positive = |arg: &[u8], what: &str| {
        crate::util::parse_i64(arg)
            .filter(|&n| n >= 1)
            .map(|n| n as usize)
            .ok_or_else(|| CmdError::other(format!("{what} should be greater than 0")))
    };
    let numkeys = positive(args[at], "numkeys")?;
    let side_at = at
        .checked_add(numkeys)
        .and_then(|i| i.checked_add(1))
        .filter(|&i| i < args.len())
        .ok_or(CmdError::Syntax)?;
    let side = side(args[side_at]).ok_or(CmdError::Syntax)?;
    let count = match &args[side_at + 1..] {
        [] => 1,
        [keyword, n] if is(keyword, "COUNT") => positive(n, "count")?,
        _ => return Err(CmdError::Syntax),
    };
    Ok((&args[at + 1..side_at], side, count))
}

/// A HELP reply in Redis's form (addReplyHelp): a header naming the command, the lines, and
/// the HELP line itself.
pub fn help_reply(command: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::StatusOwned(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::StatusOwned((*l).to_string())));
    out.push(Reply::Status("HELP"));
    out.push(Reply::Status("    Prints this help."));
    Reply::Array(out)
}

/// Parses an integer argument.
pub fn int_arg(arg: &[u8]) -> Result<i64, CmdError> {
    crate::util::parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Parses a float argument.
pub fn float_arg(arg: &[u8]) -> Result<f64, CmdError> {
    crate::util::parse_f64(arg).ok_or(CmdError::NotFloat)
}

/// Case-insensitive comparison of an argument with a keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// Lower-case text of an argument, for error messages.
pub fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_lowercase()
}

type CommandMap = HashMap<&'static [u8], &'static CommandSpec, foldhash::fast::FixedState>;

fn lookup_table() -> &'static CommandMap {
    static TABLE: OnceLock<CommandMap> = OnceLock::new();
    TABLE.get_or_init(|| {
        table::COMMANDS
            .iter()
            .map(|c| (c.name.as_bytes(), c))
            .collect()
    })
}

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    let lowered = &mut buf[..name.len()];
    lowered.copy_from_slice(name);
    lowered.make_ascii_lowercase();
    lookup_table().get(&*lowered).copied()
}

fn unknown_command_error(args: &[&[u8]]) -> CmdError {
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        String::from_utf8_lossy(&args[0][..args[0].len().min(128)])
    );
    for arg in args.iter().skip(1) {
        if text.len() >= 128 + 60 {
            break;
        }
        text.push_str(&format!(
            "'{}' ",
            String::from_utf8_lossy(&arg[..arg.len().min(128)])
        ));
    }
    CmdError::Coded(text)
}

/// Checks a command's name and arity.
pub fn resolve(args: &[&[u8]]) -> Result<&'static CommandSpec, CmdError> {
    let spec = lookup(args[0]).ok_or_else(|| unknown_command_error(args))?;
    check_arity(spec, args)
}

/// `resolve` for a client's request: the client's previous command is tried first, as clients
/// mostly send runs of the same command.
fn resolve_for(client: &mut ClientState, args: &[&[u8]]) -> Result<&'static CommandSpec, CmdError> {
    let spec = match client.last_command {
        Some(last) if args[0].eq_ignore_ascii_case(last.name.as_bytes()) => last,
        _ => {
            let spec = lookup(args[0]).ok_or_else(|| unknown_command_error(args))?;
            client.last_command = Some(spec);
            spec
        }
    };
    check_arity(spec, args)
}

fn check_arity(
    spec: &'static CommandSpec,
    args: &[&[u8]],
) -> Result<&'static CommandSpec, CmdError> {
    let n = args.len() as i32;
    if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
        if spec.name == "exec" {
            return Err(CmdError::ExecAbort(format!(
                "wrong number of arguments for '{}' command",
                spec.name
            )));
        }
        return Err(CmdError::Arity(spec.name.to_string()));
    }
    Ok(spec)
}

/// Runs one request from a client: the whole path from lookup to reply.
pub fn execute(ctx: &mut Ctx, args: &[&[u8]]) -> Reply {
    ctx.ks.tracking.set_current(Some(ctx.client.id()), false);
    let reply = dispatch(ctx, args);
    // CLIENT CACHING's word is for the next command (in a transaction, for all it queues).
    if ctx.client.tracking.caching
        && ctx.client.multi.is_none()
        && !args[0].eq_ignore_ascii_case(b"client")
    {
        ctx.client.tracking.caching = false;
    }
    ctx.ks.tracking.set_current(None, false);
    reply
}

fn dispatch(ctx: &mut Ctx, args: &[&[u8]]) -> Reply {
    let spec = match resolve_for(ctx.client, args) {
        Ok(spec) => spec,
        Err(e) => return reject(ctx, None, e),
    };
    let admitted = admit(ctx, spec, args);
    if admitted.is_ok() {
        // The tracking table is kept to its limit before a command runs or is queued; the
        // invalidations that costs (and an eviction's) go out ahead of the reply.
        let max_keys = ctx.ks.config.tracking_table_max_keys;
        ctx.ks.tracking.enforce_limit(max_keys);
    }
    crate::instance::tracking::send(ctx.shared, ctx.ks);
    if let Err(e) = admitted {
        return reject(ctx, Some(spec), e);
    }
    // `ks.now` may be the previous command's time (never later than the clock): a pause it
    // has seen end is over, one it still sees is checked against the clock.
    if ctx.shared.paused_at(ctx.ks.now) && !ctx.client.replaying {
        let writes = may_replicate(ctx.shared, ctx.client, spec, args);
        if ctx
            .shared
            .pause
            .borrow()
            .holds(crate::util::now_ms(), writes)
        {
            // Postponed, as Redis blocks a client while clients are paused.
            ctx.block = Some(BlockRequest {
                paused: Some(writes),
                ..Default::default()
            });
            return Reply::Encoded(crate::protocol::Output::new());
        }
    }
    if ctx.client.multi.is_some() && !spec.flags.contains(Flags::TRANSACTION_CONTROL) {
        return transactions::queue(ctx, spec, args);
    }
    // Executing: what the command owes its own client waits for its reply.
    ctx.ks.tracking.set_current(Some(ctx.client.id()), true);
    run(ctx, spec, args)
}

/// Whether a command writes or may replicate (what CLIENT PAUSE WRITE holds back): by its
/// flags, a script by its shebang, an EXEC by what it queued.
pub fn may_replicate(
    shared: &Shared,
    client: &ClientState,
    spec: &'static CommandSpec,
    args: &[&[u8]],
) -> bool {
    if spec.name == "exec" {
        return client.multi.as_ref().is_some_and(|queued| {
            queued
                .iter()
                .any(|(s, a)| s.name != "exec" && may_replicate(shared, client, s, &arg_slices(a)))
        });
    }
    if spec.flags.contains(Flags::MAY_REPLICATE) && spec.group == "scripting" {
        return !scripting::declares_no_writes(shared, spec, args);
    }
    spec.flags.contains(Flags::WRITE) || spec.flags.contains(Flags::MAY_REPLICATE)
}

/// The checks a command passes before it runs or is queued, in Redis's order: access, the
/// memory limit, the AOF's health, a RESP2 subscriber's few commands, loading. An EXEC counts
/// as the commands it would run.
fn admit(ctx: &mut Ctx, spec: &'static CommandSpec, args: &[&[u8]]) -> Result<(), CmdError> {
    let shared = ctx.shared;
    ctx.client
        .refresh_auth(shared.auth_generation(), || shared.access_keys());
    if !ctx.client.authenticated && !spec.flags.contains(Flags::NO_AUTH) {
        return Err(CmdError::NoAuth);
    }
    if ctx.client.multi.is_some() && spec.flags.contains(Flags::NO_MULTI) {
        return Err(CmdError::other("Command not allowed inside a transaction"));
    }
    let is_exec = spec.name == "exec";
    let queued_flag = |flag: Flags| {
        is_exec
            && ctx
                .client
                .multi
                .as_ref()
                .is_some_and(|q| q.iter().any(|(s, _)| s.flags.contains(flag)))
    };
    let deny_oom = spec.flags.contains(Flags::DENY_OOM) || queued_flag(Flags::DENY_OOM);
    let write = spec.flags.contains(Flags::WRITE) || queued_flag(Flags::WRITE);
    // Queuing inside MULTI takes memory too: under the limit, only EXEC, DISCARD, QUIT and
    // RESET are let through.
    let queuing =
        ctx.client.multi.is_some() && !matches!(spec.name, "exec" | "discard" | "quit" | "reset");
    // Every command makes room first (as Redis's performEvictions); only those that may
    // grow the data set are refused while it stays over the limit.
    if ctx.ks.config.maxmemory > 0 {
        ctx.ks.read_clock();
        ctx.ks.evict_to_limit();
        if (deny_oom || queuing) && ctx.ks.used_memory() as u64 > ctx.ks.config.maxmemory {
            return Err(CmdError::Oom);
        }
    }
    if write && ctx.shared.persistence.aof_write_failed() {
        return Err(CmdError::Coded(crate::persistence::aof::write_refusal(
            ctx.shared,
        )));
    }
    if ctx.client.subscribed() && !ctx.client.resp3 && !ALLOWED_SUBSCRIBED.contains(&spec.name) {
        return Err(CmdError::other(format!(
            "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            full_name(spec, args)
        )));
    }
    if !spec.flags.contains(Flags::LOADING) && ctx.shared.persistence.is_loading() {
        return Err(CmdError::Loading);
    }
    Ok(())
}

/// What a RESP2 client may run while subscribed.
const ALLOWED_SUBSCRIBED: [&str; 9] = [
    "ping",
    "subscribe",
    "ssubscribe",
    "unsubscribe",
    "sunsubscribe",
    "psubscribe",
    "punsubscribe",
    "quit",
    "reset",
];

/// The commands Redis 7.0 defines as containers of subcommands.
const CONTAINERS: [&str; 10] = [
    "client", "config", "command", "object", "memory", "script", "function", "xinfo", "xgroup",
    "pubsub",
];

/// The full name of the command `args` runs (`client|list`), as CLIENT LIST shows it.
pub fn full_name_of(args: &[&[u8]]) -> String {
    match lookup(args[0]) {
        Some(spec) => full_name(spec, args),
        None => lower(args[0]),
    }
}

/// A command's name as Redis's errors give it: `container|subcommand` for a subcommand.
fn full_name(spec: &CommandSpec, args: &[&[u8]]) -> String {
    match args.get(1) {
        Some(sub) if CONTAINERS.contains(&spec.name) => {
            format!("{}|{}", spec.name, lower(sub))
        }
        _ => spec.name.to_string(),
    }
}

/// Refuses a request. Inside MULTI the refusal flags the transaction, so EXEC discards it;
/// a refused EXEC discards it at once (Redis's rejectCommand and execCommandAbort).
fn reject(ctx: &mut Ctx, spec: Option<&'static CommandSpec>, e: CmdError) -> Reply {
    let exec_refused =
        matches!(e, CmdError::ExecAbort(_)) || spec.is_some_and(|s| s.name == "exec");
    if ctx.client.multi.is_some() {
        ctx.client.multi_failed = true;
        if exec_refused {
            ctx.client.multi = None;
            ctx.client.multi_failed = false;
            transactions::release_watches(ctx);
            if !matches!(e, CmdError::ExecAbort(_)) {
                return CmdError::ExecAbort(e.to_string()).into();
            }
        }
    } else if matches!(e, CmdError::ExecAbort(_)) {
        transactions::release_watches(ctx);
    }
    e.into()
}

/// Runs a resolved command (also used by EXEC for queued commands and by the AOF loader).
pub fn run(ctx: &mut Ctx, spec: &'static CommandSpec, args: &[&[u8]]) -> Reply {
    ctx.ks.read_clock();
    let db = ctx.db();
    let dirty = ctx.ks.dirty;
    ctx.propagated = false;
    // A blocked command run again after its wait counts no hit or miss, as Redis serves it.
    let counts_nothing = spec.flags.contains(Flags::WRITE) || ctx.client.serving_blocked;
    let outer_write = std::mem::replace(&mut ctx.ks.write_command, counts_nothing);
    // One bad command never takes the connection, the instance or the process with it: a
    // panic in a handler becomes an error reply and an error event.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (spec.handler)(ctx, args)));
    ctx.ks.write_command = outer_write;
    let reply = match outcome {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => e.into(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let text = format!("internal error in '{}' command: {what}", spec.name);
            ctx.shared
                .events
                .push(crate::telemetry::EventKind::Error, text.clone());
            CmdError::Other(text).into()
        }
    };
    // A write that changed something is logged as sent, unless it logged its own form
    // (blocking commands always do: a replay must never wait or pop something else).
    if ctx.ks.feed.is_on()
        && spec.flags.contains(Flags::WRITE)
        && !spec.flags.contains(Flags::BLOCKING)
        && !ctx.propagated
        && ctx.ks.dirty != dirty
        && !matches!(reply, Reply::Error(_))
    {
        ctx.ks.feed.command(db, args);
    }
    if spec.flags.contains(Flags::WRITE) && ctx.ks.dbs[db].emptied {
        let keys: Vec<&[u8]> = spec
            .key_positions(args)
            .into_iter()
            .map(|i| args[i])
            .collect();
        ctx.ks.remove_emptied(db, &keys);
    }
    if ctx.client.tracking.on && spec.flags.contains(Flags::READONLY) {
        remember_read_keys(ctx, spec, args);
    }
    // Invalidations first, as Redis signals a key modified before it notifies the event.
    crate::instance::tracking::send(ctx.shared, ctx.ks);
    crate::instance::pubsub::publish_notices(ctx.shared, ctx.ks);
    // As it ends, unless it waits (it is fed once it is served) or is one MONITOR never
    // shows (administrative ones, and scripts, which feed themselves as they start).
    if ctx.block.is_none()
        && !spec.flags.contains(Flags::ADMIN)
        && !spec.flags.contains(Flags::SKIP_MONITOR)
    {
        pubsub::feed_monitors(ctx, args);
    }
    ctx.ks.clock_reusable = spec.flags.contains(Flags::FAST);
    reply
}

/// A tracking client read keys: it is told when they change (Redis's trackingRememberKeys).
/// In OPTIN mode only after CLIENT CACHING YES, in OPTOUT mode unless CLIENT CACHING NO, never
/// in BCAST mode. A script's reads track the keys its EVAL declared; the read-only script
/// commands and Pub/Sub's shard channels track nothing themselves.
fn remember_read_keys(ctx: &mut Ctx, spec: &'static CommandSpec, args: &[&[u8]]) {
    let mode = ctx.client.tracking;
    if mode.bcast
        || (mode.optin && !mode.caching)
        || (mode.optout && mode.caching)
        || spec.group == "pubsub"
        || matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
    {
        return;
    }
    let id = ctx.client.id();
    if ctx.client.in_script {
        for key in &ctx.client.script_keys {
            ctx.ks.tracking.remember(id, key);
        }
    } else {
        for at in spec.key_positions(args) {
            ctx.ks.tracking.remember(id, args[at]);
        }
    }
}
