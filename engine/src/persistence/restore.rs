//! Rehydrating an instance on start from its dump or its AOF, while it already answers clients
//! (they get -LOADING until the data is in, as with Redis). The load is a job (jobs.rs).
//!
//! The file is read on its own thread into fresh databases that no one else sees, so the
//! keyspace lock is taken only once, to swap them in. Keys already expired are skipped. If the
//! data exceeds maxmemory (the cache was scaled down), keys are evicted allkeys-lru right after
//! the load, using the idle times stored in the file, as Redis evicts after loading. A file
//! that fails to load is left untouched and the instance stops with the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::aof::{self, appender::Appender, manifest::Manifest};
use super::jobs::{Job, JobKind, JobReport, Progress};
use super::rdb::{self, RdbError};
use super::PersistenceMode;
use crate::instance::Shared;
use crate::keyspace::eviction::access_from_saved;
use crate::keyspace::{Db, EncodingLimits, EvictionPolicy, Kind, DB_COUNT};
use crate::telemetry::{EventData, EventKind};

/// What a restore did (one row of the app's restore table).
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreReport {
    /// The dump file, or the AOF directory.
    pub source: PathBuf,
    /// "RDB" or "AOF".
    pub format: &'static str,
    /// The files read, in order (the dump, or the AOF's base and incr files).
    pub files: Vec<String>,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub bytes: u64,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    pub keys_evicted: u64,
    /// An AOF whose last command was cut short: what was cut off.
    pub truncated: Option<String>,
    /// None on success.
    pub error: Option<String>,
}

impl RestoreReport {
    /// A successful load of the dump at `path`.
    pub(super) fn rdb(
        path: PathBuf,
        started_at: SystemTime,
        started: Instant,
        bytes: u64,
        keys_loaded: u64,
        keys_expired: u64,
        keys_evicted: u64,
    ) -> RestoreReport {
        RestoreReport {
            files: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .into_iter()
                .collect(),
            source: path,
            format: "RDB",
            started_at,
            duration: started.elapsed(),
            bytes,
            keys_loaded,
            keys_expired,
            keys_evicted,
            truncated: None,
            error: None,
        }
    }
}

/// Loads `path` into fresh databases, reporting progress (bytes read, keys loaded), and
/// waiting `key_load_delay` after each key (see `wait_after_key`).
pub(crate) fn read_dump(
    progress: &mut dyn FnMut(u64, u64),
    path: &Path,
    mark: bool,
    lfu: bool,
    limits: &EncodingLimits,
    key_load_delay: i32,
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
        // Encodings follow this instance's settings, as Redis re-checks them on load.
        let mut value = key.value;
        value.settle_encoding(limits);
        if let Err(name) = dbs[key.db].load(key.key, value, key.expire_ms, access, mark) {
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
            progress(reader.position(), loaded);
        }
        wait_after_key(key_load_delay);
    }
    Ok((dbs, loaded, expired, reader.total()))
}

/// Redis's hidden key-load-delay, to watch a load run: `usec` microseconds after each key,
/// or for a negative -n one microsecond after one key in n on average (as debugDelay).
fn wait_after_key(usec: i32) {
    let wait = match usec {
        0 => return,
        1.. => usec.unsigned_abs(),
        _ => u32::from(rand::random::<u32>().is_multiple_of(usec.unsigned_abs())),
    };
    if wait > 0 {
        std::thread::sleep(Duration::from_micros(u64::from(wait)));
    }
}

/// Where a start loads its data from.
enum Source {
    Rdb(PathBuf),
    Aof(PathBuf, Manifest),
}

/// The files the instance's mode loads. Each mode falls back on the other's files when its
/// own are absent, so a crash in the middle of switching modes loses nothing.
fn find_source(shared: &Shared) -> Result<Option<Source>, (PathBuf, String)> {
    let cfg = shared.config();
    let dump = super::save::dump_path(shared);
    let aof_dir = aof::aof_dir(shared);
    let manifest = aof::load::read_manifest(&aof_dir, &cfg.appendfilename);
    Ok(match cfg.persistence {
        PersistenceMode::Disabled => None,
        PersistenceMode::Rdb(_) if dump.exists() => Some(Source::Rdb(dump)),
        PersistenceMode::Rdb(_) => manifest.ok().flatten().map(|m| Source::Aof(aof_dir, m)),
        PersistenceMode::Aof => match manifest {
            Ok(Some(m)) => Some(Source::Aof(aof_dir, m)),
            Ok(None) if dump.exists() => Some(Source::Rdb(dump)),
            Ok(None) => None,
            Err(e) => return Err((aof_dir, e.to_string())),
        },
    })
}

/// Starts loading the instance's data on its own thread (clients get -LOADING meanwhile):
/// the dump in RDB mode, the AOF in AOF mode. In AOF mode the AOF is then opened for
/// appending, or created with a first rewrite if there was none.
pub fn start(shared: &Arc<Shared>) {
    let aof_mode = shared.config().persistence == PersistenceMode::Aof;
    let source = match find_source(shared) {
        Ok(Some(source)) => source,
        Ok(None) => {
            if aof_mode {
                let mut ks = shared.keyspace.lock();
                match aof::create(shared, &mut ks) {
                    Ok(()) => aof::start_first_base(shared, &mut ks),
                    Err(e) => {
                        drop(ks);
                        let failed = failed_report(aof::aof_dir(shared), "AOF", Instant::now(), &e);
                        finish(shared, failed, None);
                    }
                }
            }
            return;
        }
        Err((path, e)) => {
            finish(shared, failed_report(path, "AOF", Instant::now(), &e), None);
            return;
        }
    };
    let (path, total_bytes) = match &source {
        Source::Rdb(path) => (path.clone(), std::fs::metadata(path).map_or(0, |m| m.len())),
        Source::Aof(dir, manifest) => match aof::load::total_bytes(dir, manifest) {
            Ok(total) => (dir.clone(), total),
            Err(e) => {
                let failed = failed_report(dir.clone(), "AOF", Instant::now(), &e);
                finish(shared, failed, None);
                return;
            }
        },
    };
    let job = match shared.persistence.jobs.begin(JobKind::Load) {
        Ok(job) => job,
        Err(busy) => {
            finish(
                shared,
                failed_report(path, "RDB", Instant::now(), &busy),
                None,
            );
            return;
        }
    };
    note_progress(&job, 0, total_bytes, 0);
    shared.events.push(
        EventKind::RestoreStarted,
        format!("loading {} ({total_bytes} bytes)", path.display()),
    );
    let worker = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("data-load".into())
        .spawn(move || run(&worker, source, total_bytes, aof_mode, job));
    if let Err(e) = spawned {
        // The job went with the closure: its slot is free again.
        finish(shared, failed_report(path, "RDB", Instant::now(), &e), None);
    }
}

fn failed_report(
    source: PathBuf,
    format: &'static str,
    started: Instant,
    error: &dyn std::fmt::Display,
) -> RestoreReport {
    RestoreReport {
        source,
        format,
        files: Vec::new(),
        started_at: SystemTime::now(),
        duration: started.elapsed(),
        bytes: 0,
        keys_loaded: 0,
        keys_expired: 0,
        keys_evicted: 0,
        truncated: None,
        error: Some(error.to_string()),
    }
}

fn note_progress(job: &Job, bytes: u64, total_bytes: u64, keys: u64) {
    job.progress(Progress {
        done: bytes,
        total: total_bytes,
        keys,
    });
}

fn run(shared: &Arc<Shared>, source: Source, total_bytes: u64, aof_mode: bool, job: Job) {
    let started = Instant::now();
    let from_dump = matches!(source, Source::Rdb(_));
    let mut progress = |bytes, keys| note_progress(&job, bytes, total_bytes, keys);
    let report = match source {
        Source::Rdb(path) => load_rdb(shared, &mut progress, path, started, aof_mode),
        Source::Aof(dir, manifest) => {
            load_aof(shared, &mut progress, dir, manifest, started, aof_mode)
        }
    };
    let loaded = report.error.is_none();
    finish(shared, report, Some(job));
    if loaded && aof_mode && from_dump {
        // AOF mode without AOF files: the data came from the dump; the first rewrite makes
        // it the AOF's base.
        aof::start_first_base(shared, &mut shared.keyspace.lock());
    }
}

fn load_rdb(
    shared: &Arc<Shared>,
    progress: &mut dyn FnMut(u64, u64),
    path: PathBuf,
    started: Instant,
    aof_mode: bool,
) -> RestoreReport {
    let report = match load_dump(shared, progress, &path) {
        Ok(report) => report,
        Err(e) => return failed_report(path, "RDB", started, &e),
    };
    if aof_mode {
        // AOF mode without AOF files: logging starts now (its base follows, see `run`).
        if let Err(e) = aof::create(shared, &mut shared.keyspace.lock()) {
            return failed_report(aof::aof_dir(shared), "AOF", started, &e);
        }
    }
    report
}

/// Reads the dump at `path` into fresh databases and swaps them in (at start, or for an
/// import). No capture runs meanwhile (the caller's job holds the slot), so the mark new
/// entries get stays as read here.
pub(super) fn load_dump(
    shared: &Shared,
    progress: &mut dyn FnMut(u64, u64),
    path: &Path,
) -> Result<RestoreReport, RdbError> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let (mark, lfu, limits) = {
        let ks = shared.keyspace.lock();
        (
            ks.mark,
            ks.config.policy.is_lfu(),
            ks.config.encodings.clone(),
        )
    };
    let key_load_delay = shared.config().key_load_delay;
    let (dbs, keys_loaded, keys_expired, bytes) =
        read_dump(progress, path, mark, lfu, &limits, key_load_delay)?;
    let keys_evicted = install(shared, dbs);
    Ok(RestoreReport::rdb(
        path.to_path_buf(),
        started_at,
        started,
        bytes,
        keys_loaded,
        keys_expired,
        keys_evicted,
    ))
}

fn load_aof(
    shared: &Arc<Shared>,
    progress: &mut dyn FnMut(u64, u64),
    dir: PathBuf,
    manifest: Manifest,
    started: Instant,
    aof_mode: bool,
) -> RestoreReport {
    let started_at = SystemTime::now();
    let replayed = match aof::load::replay(shared, &dir, &manifest, progress) {
        Ok(replayed) => replayed,
        Err(e) => return failed_report(dir, "AOF", started, &e),
    };
    if aof_mode {
        // Appending continues where the log ends; evictions to fit are logged after it.
        let cfg = shared.config();
        let opened = Appender::open(dir.clone(), cfg.appendfilename, manifest, cfg.appendfsync);
        match opened {
            Ok(mut app) => {
                app.delete_history();
                let mut ks = shared.keyspace.lock();
                *shared.persistence.aof.lock() = Some(app);
                ks.feed.set_on(true);
            }
            Err(e) => return failed_report(dir, "AOF", started, &e),
        }
    }
    let keys_loaded = replayed.dbs.iter().map(|d| d.len() as u64).sum();
    let keys_evicted = install(shared, replayed.dbs);
    RestoreReport {
        source: dir,
        format: "AOF",
        files: replayed.files,
        started_at,
        duration: started.elapsed(),
        bytes: replayed.bytes,
        keys_loaded,
        keys_expired: replayed.keys_expired,
        keys_evicted,
        truncated: replayed.truncated,
        error: None,
    }
}

/// Swaps the loaded databases in and evicts down to maxmemory; returns the keys evicted.
/// The replaced databases (an import's old data) are freed after the keyspace lock is
/// released.
pub(super) fn install(shared: &Shared, dbs: Vec<Db>) -> u64 {
    let mut ks = shared.keyspace.lock();
    let old = ks.replace_dbs(dbs);
    ks.now = crate::util::now_ms();
    let evicted = if ks.config.maxmemory == 0 || ks.used_memory() as u64 <= ks.config.maxmemory {
        0
    } else {
        let policy = ks.config.policy;
        let before = ks.stats.evicted_keys;
        ks.config.policy = EvictionPolicy::AllKeysLru;
        ks.evict_to_limit();
        ks.config.policy = policy;
        ks.stats.evicted_keys - before
    };
    crate::instance::tracking::end_of_batch(shared, &mut ks);
    drop(ks);
    drop(old);
    evicted
}

/// Records a load's outcome and logs it, then ends its job (if it got one) with it.
fn finish(shared: &Shared, report: RestoreReport, job: Option<Job>) {
    shared
        .persistence
        .update(|st| st.last_restore = Some(report.clone()));
    let outcome = match &report.error {
        None => Ok(JobReport::Restore(report.clone())),
        Some(e) => Err(e.clone()),
    };
    log_restore(shared, report);
    if let Some(job) = job {
        job.finish(outcome);
    }
}

fn log_restore(shared: &Shared, report: RestoreReport) {
    match &report.error {
        None => {
            let mut detail = format!(
                "loaded {} keys from {} ({}) in {:.3} s ({} skipped as expired)",
                report.keys_loaded,
                report.source.display(),
                report.format,
                report.duration.as_secs_f64(),
                report.keys_expired
            );
            if let Some(cut) = &report.truncated {
                detail.push_str(&format!("; truncated tail repaired: {cut}"));
            }
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
                    "cannot load {}: {error}; the files are left untouched and the instance stops",
                    report.source.display()
                ),
                EventData::Restore(report.clone()),
            );
            shared.request_shutdown();
        }
    }
}
