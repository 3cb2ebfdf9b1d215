//! Live figures and the event log of an instance, for the app and for tests.
//!
//! `Telemetry` is a plain snapshot refreshed by the instance's cron a few times a second, so a
//! reader (the GUI, every frame) copies a small struct and never touches the keyspace lock.
//! Events go to a bounded log; `EventLog::subscribe` wakes listeners when one is added.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::instance::Shared;
use crate::keyspace::DB_COUNT;
use crate::persistence::aof::{self, AofFigures};
use crate::persistence::{JobKind, PersistenceMode, RestoreReport, RewriteReport, SaveReport};

/// A point-in-time view of an instance's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Telemetry {
    pub keys_per_db: [u64; DB_COUNT],
    /// Keys of each type over all databases, in `ValueType::ALL` order.
    pub keys_by_type: [u64; 6],
    pub expires_per_db: [u64; DB_COUNT],
    pub used_memory: u64,
    pub maxmemory: u64,
    pub connected_clients: usize,
    pub blocked_clients: usize,
    pub ops_per_sec: u64,
    pub total_commands: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    /// Pub/Sub: channels and patterns with subscribers, clients subscribed to anything, and
    /// messages published (keyspace notifications included).
    pub pubsub_channels: usize,
    pub pubsub_patterns: usize,
    pub pubsub_subscribers: usize,
    pub pubsub_messages: u64,
    /// Writes since the last save (Redis's rdb_changes_since_last_save).
    pub changes_since_save: u64,
    pub uptime_secs: u64,
    pub rdb: RdbTelemetry,
    pub aof: AofTelemetry,
    pub files: PersistenceFiles,
}

/// The persistence files in the instance's folder, under the names it uses, with sizes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistenceFiles {
    /// The dump (dbfilename) and its size, if there is one.
    pub dump: Option<(String, u64)>,
    /// The AOF folder (appenddirname) and the total size of its files, if there is one.
    pub aof_dir: Option<(String, u64)>,
}

impl PersistenceFiles {
    /// Looks at the files in `dir` named as the instance's settings name them.
    pub fn in_dir(dir: &std::path::Path, dbfilename: &str, appenddirname: &str) -> Self {
        let dump = std::fs::metadata(dir.join(dbfilename))
            .ok()
            .map(|meta| (dbfilename.to_string(), meta.len()));
        let aof_dir = std::fs::read_dir(dir.join(appenddirname))
            .ok()
            .map(|entries| {
                let total = entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum();
                (appenddirname.to_string(), total)
            });
        PersistenceFiles { dump, aof_dir }
    }
}

/// AOF figures, for the live views (AOF size, fsync health, rewrite progress).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AofTelemetry {
    /// Sizes and fsync health of the open AOF; None unless the instance runs AOF.
    pub figures: Option<AofFigures>,
    /// The size at which an automatic rewrite starts (None: never).
    pub rewrite_threshold: Option<u64>,
    /// (keys written, keys to write) of the rewrite in progress.
    pub rewrite_progress: Option<(u64, u64)>,
    pub rewrite_started_at: Option<SystemTime>,
    pub last_rewrite: Option<RewriteReport>,
    pub rewrites_failed_in_a_row: u32,
}

/// Saving and loading figures, for the live views.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RdbTelemetry {
    /// (keys written, keys to write) of the save in progress.
    pub save_progress: Option<(u64, u64)>,
    pub save_started_at: Option<SystemTime>,
    pub last_save: Option<SaveReport>,
    /// The recent saves, oldest first (for the timeline chart).
    pub history: Vec<SaveReport>,
    /// When the schedule will start the next save, if the clock alone decides it.
    pub next_save_at: Option<SystemTime>,
    pub last_save_ok: bool,
    /// (bytes read, bytes in the file, estimated seconds left) of a load in progress.
    pub loading: Option<(u64, u64, u64)>,
    pub last_restore: Option<RestoreReport>,
}

impl Telemetry {
    /// Reads the figures from an instance (takes the keyspace lock for O(databases) work, and
    /// looks at its persistence files: the cron does this, off every UI's thread).
    pub fn capture(shared: &Shared) -> Telemetry {
        let mut t = Telemetry {
            connected_clients: shared.connected_clients(),
            blocked_clients: shared.stats.blocked_clients(),
            ops_per_sec: shared.stats.ops_per_sec(),
            total_commands: shared.stats.total_commands(),
            uptime_secs: shared.started.elapsed().as_secs(),
            ..Telemetry::default()
        };
        let ks = shared.keyspace.lock();
        for (i, db) in ks.dbs.iter().enumerate() {
            t.keys_per_db[i] = db.len() as u64;
            for (total, n) in t.keys_by_type.iter_mut().zip(db.keys_by_type()) {
                *total += n;
            }
            t.expires_per_db[i] = db.expires.len() as u64;
        }
        t.used_memory = ks.used_memory() as u64;
        t.maxmemory = ks.config.maxmemory;
        t.expired_keys = ks.stats.expired_keys;
        t.evicted_keys = ks.stats.evicted_keys;
        t.keyspace_hits = ks.stats.keyspace_hits;
        t.keyspace_misses = ks.stats.keyspace_misses;
        t.changes_since_save = ks.dirty;
        drop(ks);
        let hub = shared.pubsub.lock().stats();
        t.pubsub_channels = hub.channels + hub.shard_channels;
        t.pubsub_patterns = hub.patterns;
        t.pubsub_messages = hub.published;
        t.pubsub_subscribers = shared
            .clients_snapshot()
            .iter()
            .filter(|c| c.is_subscriber())
            .count();
        let st = shared.persistence.status();
        if let Some(job) = shared.persistence.jobs.running() {
            let progress = Some((job.progress.done, job.progress.total));
            match job.kind {
                JobKind::Rewrite(_) => {
                    t.aof.rewrite_progress = progress;
                    t.aof.rewrite_started_at = Some(job.started_at);
                }
                JobKind::Save(_) => {
                    t.rdb.save_progress = progress;
                    t.rdb.save_started_at = Some(job.started_at);
                }
                JobKind::Export => t.rdb.save_progress = progress,
                JobKind::Import | JobKind::Load => {}
            }
            if job.kind.loads() {
                t.rdb.loading = Some((job.progress.done, job.progress.total, job.eta_secs()));
            }
        }
        t.aof.figures = aof::figures(shared);
        t.aof.rewrite_threshold = t
            .aof
            .figures
            .as_ref()
            .and_then(|f| aof::auto_rewrite_threshold(shared, f.base_size));
        t.aof.last_rewrite = st.aof.last_rewrite.clone();
        t.aof.rewrites_failed_in_a_row = st.aof.failures_in_a_row;
        t.rdb.last_save = st.history.back().cloned();
        t.rdb.history = st.history.iter().cloned().collect();
        t.rdb.last_save_ok = st.last_save_ok;
        let cfg = shared.config();
        t.files = PersistenceFiles::in_dir(&cfg.dir, &cfg.dbfilename, &cfg.appenddirname);
        if let PersistenceMode::Rdb(schedule) = cfg.persistence {
            let now = Instant::now();
            t.rdb.next_save_at = schedule
                .next_due(&st, t.changes_since_save)
                .map(|at| SystemTime::now() + at.saturating_duration_since(now));
        }
        t.rdb.last_restore = st.last_restore;
        t
    }

    pub fn total_keys(&self) -> u64 {
        self.keys_per_db.iter().sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Started,
    Stopped,
    Error,
    SaveStarted,
    SaveFinished,
    SaveFailed,
    RestoreStarted,
    Restored,
    RestoreFailed,
    RewriteStarted,
    RewriteFinished,
    RewriteFailed,
    AofWriteFailed,
    AofWriteRecovered,
    PersistenceChanged,
    Exported,
    ExportFailed,
    Imported,
    ImportFailed,
    /// A script's redis.log line.
    ScriptLog,
    /// A client closed by client eviction (maxmemory-clients).
    ClientEvicted,
}

/// Structured figures some events carry (the app's tables and charts read these).
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    None,
    Save(SaveReport),
    Restore(RestoreReport),
    Rewrite(RewriteReport),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: u64,
    pub at: SystemTime,
    pub kind: EventKind,
    pub detail: String,
    pub data: EventData,
}

const EVENT_LOG_CAPACITY: usize = 1000;

/// A bounded log of events; the oldest are dropped first.
#[derive(Debug)]
pub struct EventLog {
    events: Mutex<VecDeque<Event>>,
    latest: watch::Sender<u64>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            events: Mutex::new(VecDeque::new()),
            latest: watch::channel(0).0,
        }
    }
}

impl EventLog {
    pub fn push(&self, kind: EventKind, detail: impl Into<String>) {
        self.push_with(kind, detail, EventData::None);
    }

    pub fn push_with(&self, kind: EventKind, detail: impl Into<String>, data: EventData) {
        let mut events = self.events.lock();
        let seq = events.back().map_or(1, |e| e.seq + 1);
        if events.len() == EVENT_LOG_CAPACITY {
            events.pop_front();
        }
        events.push_back(Event {
            seq,
            at: SystemTime::now(),
            kind,
            detail: detail.into(),
            data,
        });
        drop(events);
        self.latest.send_replace(seq);
    }

    /// Events with a sequence number above `after`.
    pub fn since(&self, after: u64) -> Vec<Event> {
        self.events
            .lock()
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect()
    }

    /// A receiver that changes whenever an event is added.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_is_bounded_and_ordered() {
        let log = EventLog::default();
        for i in 0..(EVENT_LOG_CAPACITY + 10) {
            log.push(EventKind::Error, format!("e{i}"));
        }
        let all = log.since(0);
        assert_eq!(all.len(), EVENT_LOG_CAPACITY);
        assert_eq!(all[0].seq, 11);
        assert_eq!(log.since(all[all.len() - 2].seq).len(), 1);
    }
}
