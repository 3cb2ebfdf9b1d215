//! The network side of an instance: its shared state, the TCP listener, and the background
//! cron (active expiry, incremental rehash, ops/s sampling, save schedule, AOF fsync and
//! rewrites, telemetry).

pub mod batch;
pub mod client;
pub mod connection;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::config::InstanceConfig;
use crate::keyspace::Keyspace;
use crate::persistence::schedule::frequency_of;
use crate::persistence::PersistenceState;
use crate::telemetry::{EventKind, EventLog, Telemetry};
use client::ClientInfo;

/// Counters for INFO stats, updated without locks.
#[derive(Debug, Default)]
pub struct Stats {
    connections_received: AtomicU64,
    commands_processed: AtomicU64,
    rejected_connections: AtomicU64,
    net_input: AtomicU64,
    net_output: AtomicU64,
    blocked_clients: AtomicUsize,
    ops_per_sec: AtomicU64,
    peak_memory: AtomicU64,
}

impl Stats {
    /// Counts commands run (once per batch, to keep the shared counter off the hot path).
    pub fn commands_processed(&self, n: u64) {
        self.commands_processed.fetch_add(n, Ordering::Relaxed);
    }
    pub fn total_commands(&self) -> u64 {
        self.commands_processed.load(Ordering::Relaxed)
    }
    pub fn connections_received(&self) -> u64 {
        self.connections_received.load(Ordering::Relaxed)
    }
    pub fn rejected_connections(&self) -> u64 {
        self.rejected_connections.load(Ordering::Relaxed)
    }
    pub fn add_input(&self, n: usize) {
        self.net_input.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn add_output(&self, n: usize) {
        self.net_output.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn net_input(&self) -> u64 {
        self.net_input.load(Ordering::Relaxed)
    }
    pub fn net_output(&self) -> u64 {
        self.net_output.load(Ordering::Relaxed)
    }
    pub fn blocked_clients(&self) -> usize {
        self.blocked_clients.load(Ordering::Relaxed)
    }
    pub fn ops_per_sec(&self) -> u64 {
        self.ops_per_sec.load(Ordering::Relaxed)
    }
    /// Records a used-memory reading; returns the peak so far.
    pub fn note_memory(&self, used: u64) -> u64 {
        self.peak_memory
            .fetch_max(used, Ordering::Relaxed)
            .max(used)
    }
    pub fn reset(&self) {
        for counter in [
            &self.connections_received,
            &self.commands_processed,
            &self.rejected_connections,
            &self.net_input,
            &self.net_output,
            &self.peak_memory,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// What every connection and background task of one instance shares.
pub struct Shared {
    pub keyspace: Mutex<Keyspace>,
    config: RwLock<InstanceConfig>,
    pub stats: Stats,
    clients: Mutex<HashMap<u64, Arc<ClientInfo>>>,
    next_client_id: AtomicU64,
    /// Counts changes of the access keys, so each connection re-checks its AUTH once after one.
    auth_generation: AtomicU64,
    /// Woken after a batch that pushed onto a list, for blocked clients to retry.
    pub list_pushed: Notify,
    /// Woken by every batch of commands: starts the worker's short busy-poll (`stay_awake`).
    traffic: Notify,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub run_id: String,
    local_addr: OnceLock<SocketAddr>,
    active_expire: AtomicBool,
    shutdown: watch::Sender<bool>,
    pub events: EventLog,
    /// The latest figures, swapped whole by the cron: a reader clones only the `Arc`.
    pub telemetry: Mutex<Arc<Telemetry>>,
    pub persistence: PersistenceState,
    /// This instance's own handle, for work that outlives a command (background saves).
    me: std::sync::Weak<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(config: InstanceConfig) -> Arc<Self> {
        let keyspace = Keyspace::new(config.keyspace_config());
        Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            keyspace: Mutex::new(keyspace),
            config: RwLock::new(config),
            stats: Stats::default(),
            clients: Mutex::new(HashMap::new()),
            next_client_id: AtomicU64::new(1),
            auth_generation: AtomicU64::new(0),
            list_pushed: Notify::new(),
            traffic: Notify::new(),
            started: Instant::now(),
            started_unix_ms: crate::util::now_ms(),
            run_id: (0..40)
                .map(|_| format!("{:x}", rand::random::<u8>() % 16))
                .collect(),
            local_addr: OnceLock::new(),
            active_expire: AtomicBool::new(true),
            shutdown: watch::channel(false).0,
            events: EventLog::default(),
            telemetry: Mutex::new(Arc::default()),
            persistence: PersistenceState::new(crate::util::now_ms() / 1000),
        })
    }

    /// A strong handle to this instance (None only while it is being dropped).
    pub fn handle(&self) -> Option<Arc<Shared>> {
        self.me.upgrade()
    }

    /// A copy of the current settings.
    pub fn config(&self) -> InstanceConfig {
        self.config.read().clone()
    }

    /// Replaces the settings. If the access keys changed, every session that authenticated
    /// with a key no longer valid is ended, and clients that needed no AUTH before need it now.
    pub fn set_config(&self, config: InstanceConfig) {
        let keys = config.access_keys();
        let frequency = frequency_of(&config.persistence);
        let old = std::mem::replace(&mut *self.config.write(), config);
        if frequency.is_some() && frequency != frequency_of(&old.persistence) {
            // RDB turned on or a new frequency: the countdown starts now.
            self.persistence
                .update(|st| st.frequency_set = Instant::now());
        }
        if old.access_keys() != keys {
            self.auth_generation.fetch_add(1, Ordering::Release);
            for client in self.clients.lock().values() {
                if client.key_revoked(&keys) {
                    client.kill();
                }
            }
        }
    }

    /// The access-key generation (see `ClientState::refresh_auth`).
    pub fn auth_generation(&self) -> u64 {
        self.auth_generation.load(Ordering::Acquire)
    }

    /// The client limits alone (read on every batch: no copy of the whole settings).
    pub fn client_limits(&self) -> crate::config::ClientLimits {
        self.config.read().limits.clone()
    }

    pub fn access_keys(&self) -> Vec<String> {
        self.config.read().access_keys()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
            .get()
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn connected_clients(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn clients_snapshot(&self) -> Vec<Arc<ClientInfo>> {
        let mut clients: Vec<_> = self.clients.lock().values().cloned().collect();
        clients.sort_by_key(|c| c.id);
        clients
    }

    /// Wakes blocked clients if the commands just run (under `ks`'s lock) pushed onto a list.
    pub fn wake_blocked_clients(&self, ks: &mut Keyspace) {
        if std::mem::take(&mut ks.lists_pushed) {
            self.list_pushed.notify_waiters();
        }
    }

    /// Notes that commands ran, so the worker keeps polling for the next ones a little while.
    pub fn note_traffic(&self) {
        self.traffic.notify_one();
    }

    pub fn set_active_expire(&self, on: bool) {
        self.active_expire.store(on, Ordering::Relaxed);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    fn register_client(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(ClientInfo::new(id, addr, laddr));
        self.clients.lock().insert(id, info.clone());
        self.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        info
    }

    fn unregister_client(&self, id: u64) {
        self.clients.lock().remove(&id);
    }
}

/// File descriptors kept for everything but clients (Redis's CONFIG_MIN_RESERVED_FDS).
const RESERVED_FDS: u64 = 32;

/// Raises the open-file limit to what maxclients needs, or lowers maxclients to what the limit
/// allows, with a warning, as Redis does at start: running out of descriptors must show as
/// refused clients, never as a failed fsync or a lost file.
fn fit_maxclients_to_fd_limit(shared: &Shared) {
    let mut cfg = shared.config();
    let wanted = cfg.maxclients as u64 + RESERVED_FDS;
    let limit = match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) => limit,
        Err(e) => {
            shared.events.push(
                EventKind::Error,
                format!("can't read the open files limit: {e}"),
            );
            return;
        }
    };
    if limit < wanted {
        let fitted = limit.saturating_sub(RESERVED_FDS).max(1);
        shared.events.push(
            EventKind::Error,
            format!(
                "You requested maxclients of {} requiring at least {wanted} max file descriptors. \
                 Current maximum open files is {limit}. maxclients has been reduced to {fitted} \
                 to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.",
                cfg.maxclients
            ),
        );
        cfg.maxclients = fitted as usize;
        shared.set_config(cfg);
    }
}

/// Binds the instance's listener.
pub async fn bind(shared: &Shared) -> std::io::Result<TcpListener> {
    fit_maxclients_to_fd_limit(shared);
    let cfg = shared.config();
    let listener = TcpListener::bind((cfg.bind, cfg.port)).await?;
    let addr = listener.local_addr()?;
    let _ = shared.local_addr.set(addr);
    let mut cfg = cfg;
    cfg.port = addr.port();
    shared.set_config(cfg);
    Ok(listener)
}

/// Resolves once shutdown is requested, even if it was requested before the call.
pub async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// Accepts connections until shutdown; then closes them all.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown_signal();
    let mut connections = JoinSet::new();
    let cron = tokio::spawn(cron(shared.clone()));
    let stay_awake = tokio::spawn(stay_awake(shared.clone()));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        shared.events.push(EventKind::Error, format!("accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let cfg = shared.config();
                let _ = stream.set_nodelay(true);
                if cfg.limits.tcp_keepalive_secs > 0 {
                    let keepalive = socket2::TcpKeepalive::new()
                        .with_time(Duration::from_secs(cfg.limits.tcp_keepalive_secs));
                    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
                }
                let laddr = stream.local_addr().unwrap_or_else(|_| shared.local_addr());
                if refused_by_protected_mode(&cfg, addr) {
                    shared.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(connection::refuse(stream, PROTECTED_MODE_ERROR));
                    continue;
                }
                if shared.connected_clients() >= cfg.maxclients {
                    shared.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(connection::refuse(
                        stream,
                        b"-ERR max number of clients reached\r\n",
                    ));
                    continue;
                }
                let info = shared.register_client(addr, laddr);
                connections.spawn(connection::serve(shared.clone(), stream, info));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopping(&mut shutdown) => break,
        }
    }
    cron.abort();
    stay_awake.abort();
    connections.shutdown().await;
    shared.clients.lock().clear();
}

/// Redis 7.0's answer to a non-loopback client in protected mode.
const PROTECTED_MODE_ERROR: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode as Redis 7.0 has it: with no access keys, only loopback clients are served
/// (which matters once the bind address is not loopback).
fn refused_by_protected_mode(cfg: &InstanceConfig, peer: SocketAddr) -> bool {
    cfg.protected_mode
        && cfg.access_keys().is_empty()
        && !peer.ip().is_loopback()
        && !peer.ip().to_canonical().is_loopback()
}

/// How long the worker keeps polling for requests after the last batch before it sleeps.
const STAY_AWAKE: Duration = Duration::from_micros(200);

/// While commands keep coming, keeps the runtime's worker polling the sockets (by yielding,
/// which makes tokio poll for I/O without sleeping) instead of sleeping in epoll_wait between
/// batches. A client's write to a sleeping server must wake its thread, which costs the client
/// more than the request itself on a busy loopback; a thread that is already awake costs
/// nothing to reach. The poll stops `STAY_AWAKE` after the last batch, so an idle instance
/// sleeps as before: the spin is bounded by traffic.
async fn stay_awake(shared: Arc<Shared>) {
    loop {
        shared.traffic.notified().await;
        let mut seen = shared.stats.total_commands();
        let mut quiet_since = Instant::now();
        loop {
            tokio::task::yield_now().await;
            let commands = shared.stats.total_commands();
            if commands != seen {
                seen = commands;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= STAY_AWAKE {
                break;
            }
        }
    }
}

/// Closes the clients idle for longer than `timeout` seconds (0: never), as Redis's
/// clientsCronHandleTimeout; a blocked client waits on its own timeout instead.
fn close_idle_clients(shared: &Shared) {
    let timeout = shared.client_limits().timeout_secs;
    if timeout == 0 {
        return;
    }
    let timeout = Duration::from_secs(timeout);
    for client in shared.clients.lock().values() {
        if client.idle_past(timeout) {
            client.kill();
        }
    }
}

/// Background work, `hz` times a second: active expiry in short slices (the keyspace lock is
/// held ~1 ms at a time), incremental rehashing, ops/s sampling and the telemetry snapshot.
async fn cron(shared: Arc<Shared>) {
    let mut last_commands = shared.stats.total_commands();
    let mut last_tick = Instant::now();
    let mut samples = [0u64; 16];
    let mut sample_idx = 0;
    loop {
        let hz = shared.config().hz.max(1);
        tokio::time::sleep(Duration::from_millis(1000 / u64::from(hz))).await;
        if shared.active_expire.load(Ordering::Relaxed) {
            for _ in 0..25 {
                let stale = shared
                    .keyspace
                    .lock()
                    .expire_cycle(Duration::from_millis(1));
                if !stale {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        let commands = shared.stats.total_commands();
        let elapsed = last_tick.elapsed().as_secs_f64().max(1e-3);
        samples[sample_idx % samples.len()] =
            ((commands.saturating_sub(last_commands)) as f64 / elapsed) as u64;
        sample_idx += 1;
        last_commands = commands;
        last_tick = Instant::now();
        let filled = sample_idx.min(samples.len());
        let ops = samples[..filled].iter().sum::<u64>() / filled as u64;
        shared.stats.ops_per_sec.store(ops, Ordering::Relaxed);
        close_idle_clients(&shared);
        crate::persistence::schedule::tick(&shared);
        crate::persistence::aof::tick(&shared);
        let snapshot = Arc::new(Telemetry::capture(&shared));
        *shared.telemetry.lock() = snapshot;
    }
}
