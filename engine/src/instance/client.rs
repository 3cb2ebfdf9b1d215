//! Per-connection state: what a connection's own task keeps (`ClientState`) and what other
//! connections may read for CLIENT LIST or act on for CLIENT KILL (`ClientInfo`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::pubsub::{Mailbox, Subscriptions};
use crate::commands::CommandSpec;
use crate::keyspace::Blob;

/// The part of a client other connections can see.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    created: Instant,
    name: Mutex<Option<String>>,
    db: AtomicU8,
    /// When the client last ran commands, in ms since `created`.
    last_active_ms: AtomicU64,
    resp: AtomicU8,
    commands: AtomicU64,
    killed: AtomicBool,
    /// Waiting in a blocking command (then `timeout` does not apply, as in Redis).
    blocked: AtomicBool,
    /// Its channel, pattern and shard-channel subscriptions, for CLIENT LIST.
    subscriptions: [AtomicU32; 3],
    /// What its connection holds, as of its last batch or write (CLIENT LIST's qbuf, omem
    /// and multi-mem): input not yet run, output not yet written, queued MULTI arguments.
    query_bytes: AtomicUsize,
    output_bytes: AtomicUsize,
    multi_bytes: AtomicUsize,
    /// The instance's total of client memory (what maxmemory-clients limits), which this
    /// client's figures are part of from its creation to its drop.
    counted_in: Arc<AtomicUsize>,
    /// CLIENT NO-EVICT ON: never closed by client eviction.
    no_evict: AtomicBool,
    /// CLIENT TRACKING as CLIENT LIST shows it: `TRACKING_*` bits, and the redirect.
    tracking_flags: AtomicU8,
    tracking_redirect: AtomicU64,
    /// The last command it ran (CLIENT LIST's `cmd`; None: none yet).
    last_command: Mutex<Option<&'static str>>,
    /// The access key this client authenticated with (None: none, or none was needed).
    auth_key: Mutex<Option<String>>,
    /// Woken by CLIENT KILL.
    pub kill_notify: Notify,
    /// Where pushes for it wait: Pub/Sub messages, MONITOR lines, tracking invalidations.
    pub mailbox: Mailbox,
}

impl ClientInfo {
    /// A client whose memory counts in `counted_in` (the instance's total of client memory).
    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, counted_in: Arc<AtomicUsize>) -> Self {
        counted_in.fetch_add(CLIENT_BASE_BYTES, Ordering::Relaxed);
        ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            db: AtomicU8::new(0),
            last_active_ms: AtomicU64::new(0),
            resp: AtomicU8::new(2),
            commands: AtomicU64::new(0),
            killed: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            subscriptions: Default::default(),
            query_bytes: AtomicUsize::new(0),
            output_bytes: AtomicUsize::new(0),
            multi_bytes: AtomicUsize::new(0),
            no_evict: AtomicBool::new(false),
            tracking_flags: AtomicU8::new(0),
            tracking_redirect: AtomicU64::new(0),
            last_command: Mutex::new(None),
            auth_key: Mutex::new(None),
            kill_notify: Notify::new(),
            mailbox: Mailbox::new(counted_in.clone()),
            counted_in,
        }
    }

    /// Sets one of the figures counted in the instance's client memory.
    fn account(&self, figure: &AtomicUsize, bytes: usize) {
        let old = figure.swap(bytes, Ordering::Relaxed);
        if old != bytes {
            // Modular: a shrinking figure adds the two's complement of what it lost.
            self.counted_in
                .fetch_add(bytes.wrapping_sub(old), Ordering::Relaxed);
        }
    }

    /// What the client holds as of its last batch: its records and buffers, the messages
    /// waiting for it (Redis's tot-mem, as maxmemory-clients counts it).
    pub fn memory(&self) -> usize {
        CLIENT_BASE_BYTES
            + self.query_bytes.load(Ordering::Relaxed)
            + self.output_bytes.load(Ordering::Relaxed)
            + self.multi_bytes.load(Ordering::Relaxed)
            + self.mailbox.pending()
    }

    /// CLIENT NO-EVICT.
    pub fn set_no_evict(&self, on: bool) {
        self.no_evict.store(on, Ordering::Relaxed);
    }

    /// Whether client eviction may close it (Redis evicts normal and Pub/Sub clients, the
    /// only kinds there are here, unless NO-EVICT is on).
    pub fn evictable(&self) -> bool {
        !self.no_evict.load(Ordering::Relaxed)
    }

    pub fn db(&self) -> usize {
        usize::from(self.db.load(Ordering::Relaxed))
    }

    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill_notify.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::Relaxed);
    }

    /// True if the client has been idle past `timeout` (never while blocked).
    pub fn idle_past(&self, timeout: Duration) -> bool {
        !self.blocked.load(Ordering::Relaxed) && self.idle_for() > timeout
    }

    /// Whether this client authenticated with `key`.
    pub fn authenticated_with(&self, key: &str) -> bool {
        self.auth_key
            .lock()
            .as_deref()
            .is_some_and(|k| crate::util::constant_time_eq(k.as_bytes(), key.as_bytes()))
    }

    /// Whether this client authenticated with a key that is no longer one of `keys`.
    pub fn key_revoked(&self, keys: &[String]) -> bool {
        self.auth_key
            .lock()
            .as_deref()
            .is_some_and(|k| !keys.iter().any(|valid| valid == k))
    }

    /// Records activity after a batch of commands, the last of them `last`.
    pub fn mark_active(
        &self,
        db: usize,
        resp3: bool,
        multi_bytes: usize,
        commands: u64,
        last: Option<&'static str>,
    ) {
        if last.is_some() {
            *self.last_command.lock() = last;
        }
        // Databases number 0..16 (keyspace::DB_COUNT).
        self.db.store(db as u8, Ordering::Relaxed);
        self.account(&self.multi_bytes, multi_bytes);
        self.resp
            .store(if resp3 { 3 } else { 2 }, Ordering::Relaxed);
        self.commands.fetch_add(commands, Ordering::Relaxed);
        self.touch();
    }

    /// Notes that the client was heard from (a read, or commands run): `timeout` counts
    /// from here, as from Redis's lastinteraction.
    pub fn touch(&self) {
        let since_created = self.created.elapsed().as_millis() as u64;
        self.last_active_ms.store(since_created, Ordering::Relaxed);
    }

    /// How long since the client last ran commands (since it connected, if it never did).
    fn idle_for(&self) -> Duration {
        let active = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(active)
    }

    /// Records how many channels, patterns and shard channels the client subscribes to.
    pub fn set_subscriptions(&self, subs: &Subscriptions) {
        let counts = [
            subs.channels.len(),
            subs.patterns.len(),
            subs.shard_channels.len(),
        ];
        for (slot, count) in self.subscriptions.iter().zip(counts) {
            slot.store(count as u32, Ordering::Relaxed);
        }
    }

    /// Records the input its connection holds unrun (a partial request, or what follows a
    /// blocked command).
    pub fn set_query_bytes(&self, bytes: usize) {
        self.account(&self.query_bytes, bytes);
    }

    /// Records the output its connection holds unwritten.
    pub fn set_output_bytes(&self, bytes: usize) {
        self.account(&self.output_bytes, bytes);
    }

    /// Records the CLIENT TRACKING state for CLIENT LIST (off: `mode.on` false).
    pub fn set_tracking(&self, mode: &TrackingMode, redirect: u64) {
        let mut flags = 0;
        if mode.on {
            flags |= TRACKING_ON;
        }
        if mode.bcast {
            flags |= TRACKING_BCAST;
        }
        self.tracking_flags.store(flags, Ordering::Relaxed);
        self.tracking_redirect.store(redirect, Ordering::Relaxed);
    }

    /// Its tracking redirect target went away.
    pub fn set_tracking_broken(&self) {
        self.tracking_flags
            .fetch_or(TRACKING_BROKEN_REDIRECT, Ordering::Relaxed);
    }

    /// Subscribed to any channel, pattern or shard channel.
    pub fn is_subscriber(&self) -> bool {
        self.subscriptions
            .iter()
            .any(|n| n.load(Ordering::Relaxed) > 0)
    }

    /// CLIENT KILL's and CLIENT LIST's TYPE: pubsub while subscribed, else normal (a
    /// MONITOR counts as normal, as Redis types it).
    pub fn client_type(&self) -> &'static str {
        if self.is_subscriber() {
            "pubsub"
        } else {
            "normal"
        }
    }

    /// One line of CLIENT LIST, in Redis's format. `current` describes the client running
    /// CLIENT LIST or CLIENT INFO itself: its command, the bytes of its request, its MULTI.
    pub fn describe(&self, db: usize, current: Option<&Current>) -> String {
        let [sub, psub, ssub] = self
            .subscriptions
            .each_ref()
            .map(|n| n.load(Ordering::Relaxed));
        // In Redis's order.
        let mut flags = String::new();
        if sub + psub + ssub > 0 {
            flags.push('P');
        }
        if current.is_some_and(|c| c.multi.is_some()) {
            flags.push('x');
        }
        if self.blocked.load(Ordering::Relaxed) {
            flags.push('b');
        }
        let tracking = self.tracking_flags.load(Ordering::Relaxed);
        for (bit, letter) in [
            (TRACKING_ON, 't'),
            (TRACKING_BROKEN_REDIRECT, 'R'),
            (TRACKING_BCAST, 'B'),
        ] {
            if tracking & bit != 0 {
                flags.push(letter);
            }
        }
        if !self.evictable() {
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let redirect = if tracking & TRACKING_ON != 0 {
            self.tracking_redirect.load(Ordering::Relaxed) as i64
        } else {
            -1
        };
        let multi = current.and_then(|c| c.multi).map_or(-1, |n| n as i64);
        // The running client's request is its query buffer while it runs, as in Redis.
        let qbuf = current.map_or_else(
            || self.query_bytes.load(Ordering::Relaxed),
            |c| c.request_bytes,
        );
        let argv_mem = current.map_or(0, |c| c.argument_bytes);
        let multi_mem = self.multi_bytes.load(Ordering::Relaxed);
        let omem = self.output_bytes.load(Ordering::Relaxed) + self.mailbox.pending();
        let tot_mem = CLIENT_BASE_BYTES + qbuf + argv_mem + multi_mem + omem;
        let cmd = match current {
            Some(c) => c.command.clone(),
            None => self
                .last_command
                .lock()
                .map_or_else(|| "NULL".to_string(), str::to_string),
        };
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={flags} db={} sub={sub} psub={psub} ssub={ssub} multi={multi} qbuf={qbuf} qbuf-free=0 argv-mem={argv_mem} multi-mem={multi_mem} rbs=16384 rbp=0 obl=0 oll=0 omem={omem} tot-mem={tot_mem} events=r cmd={cmd} user=default redir={redirect} resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.name.lock().clone().unwrap_or_default(),
            self.created.elapsed().as_secs(),
            self.idle_for().as_secs(),
            db,
            self.resp.load(Ordering::Relaxed),
        )
    }
}

impl Drop for ClientInfo {
    fn drop(&mut self) {
        let figures = [&self.query_bytes, &self.output_bytes, &self.multi_bytes];
        let held: usize = figures.iter().map(|f| f.load(Ordering::Relaxed)).sum();
        self.counted_in
            .fetch_sub(CLIENT_BASE_BYTES + held, Ordering::Relaxed);
    }
}

/// What a connection costs before any buffer: its client records (CLIENT LIST's tot-mem
/// adds the buffers to it).
const CLIENT_BASE_BYTES: usize =
    std::mem::size_of::<ClientInfo>() + std::mem::size_of::<ClientState>();

const TRACKING_ON: u8 = 1;
const TRACKING_BCAST: u8 = 2;
const TRACKING_BROKEN_REDIRECT: u8 = 4;

/// CLIENT TRACKING's modes, as the client's own commands need them (the keyspace's tracking
/// table keeps what delivery needs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackingMode {
    pub on: bool,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    /// CLIENT CACHING YES/NO was given for the next command.
    pub caching: bool,
}

/// What CLIENT LIST knows of the client running it (the others' are from their last batch).
#[derive(Debug)]
pub struct Current {
    /// Its command's full name (`client|list`).
    pub command: String,
    /// The bytes of its request as sent (Redis's qbuf while it runs).
    pub request_bytes: usize,
    /// The bytes of its arguments (Redis's argv-mem).
    pub argument_bytes: usize,
    /// Commands queued in its MULTI (None outside one).
    pub multi: Option<usize>,
}

impl ClientInfo {
    /// Whether CLIENT KILL's filters pick this client.
    pub fn matches_kill(&self, filter: &KillFilter) -> bool {
        filter
            .addr
            .as_ref()
            .is_none_or(|a| *a == self.addr.to_string())
            && filter
                .laddr
                .as_ref()
                .is_none_or(|a| *a == self.laddr.to_string())
            && filter.kind.is_none_or(|t| t == self.client_type())
            && filter.id.is_none_or(|id| id == self.id)
    }
}

/// CLIENT KILL's filters.
#[derive(Debug, Default)]
pub struct KillFilter {
    pub addr: Option<String>,
    pub laddr: Option<String>,
    pub kind: Option<&'static str>,
    pub id: Option<u64>,
}

/// A queued MULTI command: its spec and arguments.
pub type QueuedCommand = (&'static CommandSpec, Vec<Vec<u8>>);

/// Everything a connection remembers between commands.
#[derive(Debug)]
pub struct ClientState {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    /// The instance's access-key generation `authenticated` was decided under.
    pub auth_generation: u64,
    /// Commands queued since MULTI (None outside a transaction).
    pub multi: Option<Vec<QueuedCommand>>,
    /// A command failed to queue: EXEC will abort.
    pub multi_failed: bool,
    /// Bytes of the arguments queued since MULTI (held to client-query-buffer-limit).
    pub multi_bytes: usize,
    /// Running EXEC: blocking commands do not block.
    pub in_exec: bool,
    /// WATCHed keys with the version seen.
    pub watched: Vec<(usize, Blob, u64)>,
    /// A blocked command is being run again after its wait: its keys count as absent while
    /// they hold another type (`Ctx::waited_on`).
    pub serving_blocked: bool,
    /// The deadline of the blocking command being retried (Some(None): wait forever).
    pub block_deadline: Option<Option<u64>>,
    pub close_after_reply: bool,
    /// Running a script's redis.call (XREAD BLOCK is refused there).
    pub in_script: bool,
    /// Replaying the AOF: commands obey as logged (an XADD's trim is exact, never limited).
    pub replaying: bool,
    /// The command of the previous request, which the next one most likely repeats.
    pub last_command: Option<&'static CommandSpec>,
    /// Pub/Sub subscriptions and MONITOR (None: never subscribed).
    pub pubsub: Option<Box<Subscriptions>>,
    /// CLIENT REPLY: whether replies are sent.
    pub reply_mode: ReplyMode,
    /// CLIENT TRACKING's modes.
    pub tracking: TrackingMode,
    /// In a script run for a tracking client: the keys its EVAL or FCALL declared, which
    /// the script's reads make the client track, as Redis tracks them.
    pub script_keys: Vec<Vec<u8>>,
}

/// CLIENT REPLY's modes. Pub/Sub pushes are sent whatever the mode, as in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// CLIENT REPLY SKIP ran: the next command's reply is dropped.
    SkipNext,
    /// This command's reply is dropped.
    Skip,
}

impl ReplyMode {
    /// Moves past a command that just ran; true if its reply is dropped. As in Redis, the
    /// mode as the reply is made decides (CLIENT REPLY ON's own OK goes out after SKIP).
    pub fn after_command(&mut self) -> bool {
        let dropped = matches!(*self, ReplyMode::Off | ReplyMode::Skip);
        *self = match *self {
            ReplyMode::SkipNext => ReplyMode::Skip,
            ReplyMode::Skip => ReplyMode::On,
            mode => mode,
        };
        dropped
    }
}

impl ClientState {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Self {
        ClientState {
            info,
            db: 0,
            resp3: false,
            authenticated,
            auth_generation: 0,
            multi: None,
            multi_failed: false,
            multi_bytes: 0,
            in_exec: false,
            serving_blocked: false,
            watched: Vec::new(),
            block_deadline: None,
            close_after_reply: false,
            in_script: false,
            replaying: false,
            last_command: None,
            pubsub: None,
            reply_mode: ReplyMode::On,
            tracking: TrackingMode::default(),
            script_keys: Vec::new(),
        }
    }

    /// Switches the protocol, for replies and for the Pub/Sub messages still to come.
    pub fn set_resp3(&mut self, resp3: bool) {
        self.resp3 = resp3;
        self.info.mailbox.set_resp3(resp3);
    }

    /// Subscribed to anything: in RESP2 only the subscriber commands are allowed.
    pub fn subscribed(&self) -> bool {
        self.pubsub.as_ref().is_some_and(|s| s.total() > 0)
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// Records a successful AUTH, with the key used (None when no key was needed).
    pub fn authenticate(&mut self, key: Option<String>, generation: u64) {
        self.authenticated = true;
        self.auth_generation = generation;
        *self.info.auth_key.lock() = key;
    }

    /// Re-decides `authenticated` if the access keys changed since it was decided: a client
    /// that connected while no keys were set needs AUTH once they are.
    pub fn refresh_auth(&mut self, generation: u64, keys: impl FnOnce() -> Vec<String>) {
        if generation == self.auth_generation {
            return;
        }
        self.auth_generation = generation;
        let keys = keys();
        self.authenticated =
            keys.is_empty() || keys.iter().any(|k| self.info.authenticated_with(k));
    }

    pub fn name(&self) -> Option<String> {
        self.info.name.lock().clone()
    }

    pub fn set_name(&self, name: String) {
        *self.info.name.lock() = Some(name);
    }

    pub fn clear_name(&self) {
        *self.info.name.lock() = None;
    }

    pub fn describe(&self, db: usize, current: Option<&Current>) -> String {
        self.info.describe(db, current)
    }
}
