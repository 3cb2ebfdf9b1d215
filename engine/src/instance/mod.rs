//! An instance's state, shared by everything that serves it: the keyspace, the settings, the
//! clients, the counters, the event log, persistence's state and the telemetry snapshot. The
//! listener and its connections (server/), the persistence jobs, the console and the cron are
//! its consumers; it depends on none of them.

pub mod batch;
pub mod blocked;
pub mod client;
pub mod cron;
pub mod local;
pub mod pause;
pub mod pubsub;
pub mod tracking;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{watch, Notify};

use crate::config::InstanceConfig;
use crate::keyspace::Keyspace;
use crate::persistence::schedule::frequency_of;
use crate::persistence::PersistenceState;
use crate::telemetry::{EventLog, Telemetry};
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
    evicted_clients: AtomicU64,
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
    pub fn reject_connection(&self) {
        self.rejected_connections.fetch_add(1, Ordering::Relaxed);
    }
    /// A client starts (`true`) or stops (`false`) waiting in a blocking command.
    pub fn note_blocked(&self, blocked: bool) {
        if blocked {
            self.blocked_clients.fetch_add(1, Ordering::Relaxed);
        } else {
            self.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        }
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
    pub fn evicted_clients(&self) -> u64 {
        self.evicted_clients.load(Ordering::Relaxed)
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
            &self.evicted_clients,
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
    /// What all clients hold (each `ClientInfo` keeps its part up to date), and the
    /// maxmemory-clients limit in bytes (0: none): past it the biggest are closed.
    client_memory: Arc<AtomicUsize>,
    client_eviction_limit: AtomicUsize,
    /// Taken by the one client-eviction pass at a time.
    client_eviction: Mutex<EvictionPasses>,
    /// Counts changes of the access keys, so each connection re-checks its AUTH once after one.
    auth_generation: AtomicU64,
    /// Clients blocked on keys, served as batches end (locked after the keyspace).
    pub blocked: Mutex<blocked::BlockedClients>,
    /// The Lua state and script cache, started at the first script (locked after the
    /// keyspace).
    pub scripts: Mutex<Option<crate::scripting::Scripts>>,
    /// Pub/Sub subscriptions and delivery (locked after the keyspace).
    pub pubsub: Mutex<pubsub::Hub>,
    /// CLIENT PAUSE in effect (waiting clients watch it), and when it ends (ms since the
    /// epoch; read by every command, without the channel's lock).
    pub pause: watch::Sender<pause::Pause>,
    pause_until_ms: AtomicU64,
    /// Some client runs MONITOR (set under the hub's lock): commands are fed to it.
    pub monitoring: AtomicBool,
    /// The running script, as other clients see it without the keyspace lock.
    pub script_status: Arc<crate::scripting::ScriptStatus>,
    /// Woken by every batch of commands: starts the worker's short busy-poll (`stay_awake`).
    traffic: Notify,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub run_id: String,
    local_addr: RwLock<SocketAddr>,
    /// Where CONFIG SET port hands the accept loop its new listener (None in the message:
    /// stop listening); None while no accept loop runs.
    relisten: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Option<std::net::TcpListener>>>>,
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
        let busy_reply_threshold_ms = config.busy_reply_threshold_ms;
        let client_eviction_limit = AtomicUsize::new(client_eviction_limit(&config));
        Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            keyspace: Mutex::new(keyspace),
            config: RwLock::new(config),
            stats: Stats::default(),
            clients: Mutex::new(HashMap::new()),
            next_client_id: AtomicU64::new(1),
            client_memory: Arc::default(),
            client_eviction_limit,
            client_eviction: Mutex::new(EvictionPasses {
                next_scan: Instant::now(),
                over_warned: false,
            }),
            auth_generation: AtomicU64::new(0),
            blocked: Mutex::new(Default::default()),
            scripts: Mutex::new(None),
            pubsub: Mutex::new(pubsub::Hub::default()),
            monitoring: AtomicBool::new(false),
            pause: watch::channel(pause::Pause::default()).0,
            pause_until_ms: AtomicU64::new(0),
            script_status: Arc::new(crate::scripting::ScriptStatus::with_threshold(
                busy_reply_threshold_ms,
            )),
            traffic: Notify::new(),
            started: Instant::now(),
            started_unix_ms: crate::util::now_ms(),
            run_id: (0..40)
                .map(|_| format!("{:x}", rand::random::<u8>() % 16))
                .collect(),
            local_addr: RwLock::new(SocketAddr::from(([127, 0, 0, 1], 0))),
            relisten: Mutex::new(None),
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
        self.script_status
            .threshold_ms
            .store(config.busy_reply_threshold_ms, Ordering::Relaxed);
        let keys = config.access_keys();
        self.client_eviction_limit
            .store(client_eviction_limit(&config), Ordering::Relaxed);
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

    /// Runs `f`, which takes the keyspace lock: off the worker if a script holds the lock
    /// (`util::off_worker`), so the wait never holds up other connections.
    pub fn wait_for_keyspace<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.script_status.running() {
            crate::util::off_worker(f)
        } else {
            f()
        }
    }

    /// The access-key generation (see `ClientState::refresh_auth`).
    pub fn auth_generation(&self) -> u64 {
        self.auth_generation.load(Ordering::Acquire)
    }

    /// Whether a CLIENT PAUSE may be in effect at `now_ms`.
    pub fn paused_at(&self, now_ms: u64) -> bool {
        now_ms < self.pause_until_ms.load(Ordering::Acquire)
    }

    /// CLIENT PAUSE and UNPAUSE (an Off pause): clients waiting on it are woken, and the
    /// keyspace holds lazy expiry for as long.
    pub fn set_pause(&self, ks: &mut Keyspace, pause: pause::Pause) {
        ks.expiry_paused_until = pause.until_ms;
        self.pause_until_ms.store(pause.until_ms, Ordering::Release);
        self.pause.send_replace(pause);
    }

    /// One client class's output limit (read as each message is delivered).
    pub fn output_limit(&self, class: crate::config::ClientClass) -> crate::config::OutputLimit {
        self.config.read().limits.output[class as usize]
    }

    /// The client limits alone (read on every batch: no copy of the whole settings).
    pub fn client_limits(&self) -> crate::config::ClientLimits {
        self.config.read().limits.clone()
    }

    pub fn access_keys(&self) -> Vec<String> {
        self.config.read().access_keys()
    }

    /// The address the listener is bound to (port 0: none).
    pub fn local_addr(&self) -> SocketAddr {
        *self.local_addr.read()
    }

    pub fn connected_clients(&self) -> usize {
        self.clients.lock().len()
    }

    /// The connected client with this id.
    pub fn client(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.clients.lock().get(&id).cloned()
    }

    pub fn clients_snapshot(&self) -> Vec<Arc<ClientInfo>> {
        let mut clients: Vec<_> = self.clients.lock().values().cloned().collect();
        clients.sort_by_key(|c| c.id);
        clients
    }

    /// Notes that commands ran, so the worker keeps polling for the next ones a little while.
    pub fn note_traffic(&self) {
        self.traffic.notify_one();
    }

    /// Resolves at the next `note_traffic`.
    pub async fn traffic(&self) {
        self.traffic.notified().await;
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

    pub fn register_client(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(ClientInfo::new(id, addr, laddr, self.client_memory.clone()));
        self.clients.lock().insert(id, info.clone());
        self.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        info
    }

    pub fn unregister_client(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// Forgets every client (the listener has closed them all).
    pub fn forget_clients(&self) {
        self.clients.lock().clear();
    }

    /// Records the address the listener is bound to.
    pub fn set_local_addr(&self, addr: SocketAddr) {
        *self.local_addr.write() = addr;
    }

    /// Starts taking listeners from `relisten` (the accept loop, while it runs).
    pub fn accept_relistens(
        &self,
    ) -> tokio::sync::mpsc::UnboundedReceiver<Option<std::net::TcpListener>> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        *self.relisten.lock() = Some(sender);
        receiver
    }

    /// The accept loop has ended: nothing takes a new listener any more.
    pub fn stop_relistens(&self) {
        *self.relisten.lock() = None;
    }

    /// Moves the listener to `port` on `bind` (0: stops listening), as CONFIG SET port does:
    /// the new socket listens before the old one closes, and connected clients stay. An
    /// error (the port is taken) leaves the old listener as it was.
    pub fn relisten(&self, bind: std::net::IpAddr, port: u16) -> std::io::Result<SocketAddr> {
        let relisten = self.relisten.lock();
        let sender = relisten
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the instance has no listener"))?;
        let (listener, addr) = if port == 0 {
            (None, SocketAddr::new(bind, 0))
        } else {
            let listener = std::net::TcpListener::bind((bind, port))?;
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            (Some(listener), addr)
        };
        sender
            .send(listener)
            .map_err(|_| std::io::Error::other("the instance is stopping"))?;
        self.set_local_addr(addr);
        Ok(addr)
    }

    /// Client eviction, as Redis 7.0's evictClients: while all clients together hold
    /// maxmemory-clients or more, closes the evictable ones holding the most, biggest first,
    /// each logged and counted (INFO's evicted_clients). Cheap while under the limit (two
    /// loads); one pass runs at a time.
    pub fn evict_clients(&self) {
        let limit = self.client_eviction_limit.load(Ordering::Relaxed);
        if limit == 0 || self.client_memory.load(Ordering::Relaxed) < limit {
            return;
        }
        let Some(mut passes) = self.client_eviction.try_lock() else {
            return;
        };
        let now = Instant::now();
        if now < passes.next_scan {
            return;
        }
        // Clients already closing (killed, not yet gone) no longer count.
        let mut clients: Vec<(usize, Arc<ClientInfo>)> = self
            .clients
            .lock()
            .values()
            .filter(|c| !c.is_killed())
            .map(|c| (c.memory(), c.clone()))
            .collect();
        let mut total: usize = clients.iter().map(|(bytes, _)| bytes).sum();
        clients.retain(|(_, c)| c.evictable());
        clients.sort_unstable_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
        for (bytes, client) in clients {
            if total < limit {
                break;
            }
            self.events.push(
                crate::telemetry::EventKind::ClientEvicted,
                format!("Evicting client: {}", client.describe(client.db(), None)),
            );
            client.kill();
            self.stats.evicted_clients.fetch_add(1, Ordering::Relaxed);
            total -= bytes;
        }
        let over = total >= limit;
        if over {
            passes.next_scan = now + FRUITLESS_EVICTION_PAUSE;
            if !passes.over_warned {
                self.events.push(
                    crate::telemetry::EventKind::Error,
                    "Over client maxmemory after evicting all evictable clients",
                );
            }
        }
        passes.over_warned = over;
    }
}

/// What one client-eviction pass leaves the next.
struct EvictionPasses {
    /// After a pass that could not get under the limit (what is over it is not evictable),
    /// the next looks again only from here: scanning at every batch would cost every
    /// command the whole client list.
    next_scan: Instant,
    /// The last pass ended over the limit, and said so (once, not at every pass).
    over_warned: bool,
}

/// How long after a pass that ended over the limit the next may scan.
const FRUITLESS_EVICTION_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// maxmemory-clients in bytes as the settings give it (0: none).
fn client_eviction_limit(config: &InstanceConfig) -> usize {
    config
        .limits
        .maxmemory_clients
        .limit(config.maxmemory)
        .map_or(0, |bytes| usize::try_from(bytes).unwrap_or(usize::MAX))
}
