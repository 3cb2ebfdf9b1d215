//! Rehydrating an instance on start from its dump, while it already answers clients (they get
//! -LOADING until the data is in, as with Redis).
//!
//! The file is read on its own thread into fresh databases that no one else sees, so the
//! keyspace lock is taken only once, to swap them in. Keys already expired are skipped. If the
//! data exceeds maxmemory (the cache was scaled down), keys are evicted allkeys-lru right after
//! the load, using the idle times stored in the file, as Redis evicts after loading. A file
//! that fails to load is left untouched and the instance stops with the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::rdb::{self, RdbError};
use super::LoadingProgress;
use crate::keyspace::eviction::access_from_saved;
use crate::keyspace::{Db, EvictionPolicy, DB_COUNT};
use crate::server::Shared;
use crate::telemetry::{EventData, EventKind};

/// What a restore did (one row of the app's restore table).
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreReport {
    pub source: PathBuf,
    /// "RDB" (AOF restores arrive with the AOF).
    pub format: &'static str,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub bytes: u64,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    pub keys_evicted: u64,
    /// None on success.
    pub error: Option<String>,
}

/// Loads `path` into fresh databases, reporting progress into the instance's status.
fn read_dump(
    shared: &Shared,
    path: &Path,
    mark: bool,
    lfu: bool,
) -> Result<(Vec<Db>, u64, u64, u64), RdbError> {
    let now = crate::util::now_ms();
    let mut dbs: Vec<Db> = (0..DB_COUNT).map(|_| Db::default()).collect();
    let (mut loaded, mut expired) = (0u64, 0u64);
    let mut reader = rdb::decode::open_file(path)?;
    while let Some(key) = reader.next_key()? {
        if let Some((db, keys, expires)) = reader.take_resize_hint() {
            dbs[db].reserve(keys as usize, expires as usize);
        }
        if key.expire_ms.is_some_and(|at| at <= now) {
            expired += 1;
            continue;
        }
        let access = access_from_saved(lfu, now, key.idle_secs, key.freq);
        if let Err(name) = dbs[key.db].load(key.key, key.value, key.expire_ms, access, mark) {
            return Err(RdbError::Corrupt {
                offset: reader.position(),
                reason: format!(
                    "duplicate key '{}' in database {}",
                    String::from_utf8_lossy(&name),
                    key.db
                ),
            });
        }
        loaded += 1;
        if loaded.is_multiple_of(4096) {
            let bytes = reader.position();
            shared.persistence.update(|st| {
                if let Some(p) = st.loading.as_mut() {
                    p.loaded_bytes = bytes;
                    p.keys_loaded = loaded;
                }
            });
        }
    }
    Ok((dbs, loaded, expired, reader.total()))
}

/// Starts loading the dump on its own thread if there is one. Returns false if there is none.
pub fn start(shared: &Arc<Shared>) -> bool {
    let path = super::save::dump_path(shared);
    let Ok(meta) = std::fs::metadata(&path) else {
        return false;
    };
    shared.persistence.set_loading(Some(LoadingProgress {
        source: path.clone(),
        started: Instant::now(),
        started_unix_secs: crate::util::now_ms() / 1000,
        total_bytes: meta.len(),
        loaded_bytes: 0,
        keys_loaded: 0,
    }));
    shared.events.push(
        EventKind::RestoreStarted,
        format!("loading {} ({} bytes)", path.display(), meta.len()),
    );
    let worker = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("rdb-load".into())
        .spawn(move || run(&worker, path));
    if let Err(e) = spawned {
        finish(
            shared,
            failed_report(
                super::save::dump_path(shared),
                Instant::now(),
                &e.to_string(),
            ),
        );
    }
    true
}

fn failed_report(source: PathBuf, started: Instant, error: &str) -> RestoreReport {
    RestoreReport {
        source,
        format: "RDB",
        started_at: SystemTime::now(),
        duration: started.elapsed(),
        bytes: 0,
        keys_loaded: 0,
        keys_expired: 0,
        keys_evicted: 0,
        error: Some(error.to_string()),
    }
}

fn run(shared: &Shared, path: PathBuf) {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let (mark, lfu) = {
        let ks = shared.keyspace.lock();
        (ks.mark, ks.config.policy.is_lfu())
    };
    let report = match read_dump(shared, &path, mark, lfu) {
        Ok((dbs, keys_loaded, keys_expired, bytes)) => {
            let keys_evicted = install(shared, dbs);
            RestoreReport {
                source: path,
                format: "RDB",
                started_at,
                duration: started.elapsed(),
                bytes,
                keys_loaded,
                keys_expired,
                keys_evicted,
                error: None,
            }
        }
        Err(e) => failed_report(path, started, &e.to_string()),
    };
    finish(shared, report);
}

/// Swaps the loaded databases in and evicts down to maxmemory; returns the keys evicted.
fn install(shared: &Shared, dbs: Vec<Db>) -> u64 {
    let mut ks = shared.keyspace.lock();
    let old = std::mem::replace(&mut ks.dbs, dbs);
    drop(old);
    ks.now = crate::util::now_ms();
    if ks.config.maxmemory == 0 || ks.used_memory() as u64 <= ks.config.maxmemory {
        return 0;
    }
    let policy = ks.config.policy;
    let before = ks.stats.evicted_keys;
    ks.config.policy = EvictionPolicy::AllKeysLru;
    ks.evict_to_limit();
    ks.config.policy = policy;
    ks.stats.evicted_keys - before
}

fn finish(shared: &Shared, report: RestoreReport) {
    shared
        .persistence
        .update(|st| st.last_restore = Some(report.clone()));
    shared.persistence.set_loading(None);
    match &report.error {
        None => {
            let mut detail = format!(
                "loaded {} keys from {} in {:.3} s ({} skipped as expired)",
                report.keys_loaded,
                report.source.display(),
                report.duration.as_secs_f64(),
                report.keys_expired
            );
            if report.keys_evicted > 0 {
                detail.push_str(&format!(
                    "; evicted {} keys (allkeys-lru) to fit maxmemory",
                    report.keys_evicted
                ));
            }
            shared
                .events
                .push_with(EventKind::Restored, detail, EventData::Restore(report));
        }
        Some(error) => {
            shared.events.push_with(
                EventKind::RestoreFailed,
                format!(
                    "cannot load {}: {error}; the file is left untouched and the instance stops",
                    report.source.display()
                ),
                EventData::Restore(report.clone()),
            );
            shared.request_shutdown();
        }
    }
}
