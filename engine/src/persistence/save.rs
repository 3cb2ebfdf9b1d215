//! Writing the dump file from a point-in-time capture (see snapshot.rs): in the background for
//! BGSAVE and the schedule, in the foreground for SAVE. The file is written as Redis writes it:
//! `temp-<pid>-<n>.rdb` in the instance's directory (created exclusively, see temp.rs), fsync,
//! rename over the dump, fsync of the directory, so a crash at any moment leaves the previous
//! dump or the new one, never half of one. Temp files a crash left behind are removed when the
//! instance starts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::rdb::{RdbWriter, CRC64};
use super::snapshot::Step;
use super::temp::{TempFile, TempKind};
use super::{PersistenceMode, RunningSave};
use crate::instance::Shared;
use crate::keyspace::Keyspace;
use crate::telemetry::{EventData, EventKind};

/// Removes the temp files an interrupted save left in a directory (see temp.rs for which).
pub use super::temp::remove_stale as remove_stale_temp_files;

/// Keys the save thread walks per turn when connections are not walking (an idle instance).
const KEYS_PER_STEP: u64 = 512;

/// Keys per chunk of a foreground save (the file is written as the walk goes).
const FOREGROUND_KEYS_PER_STEP: u64 = 8192;

/// What started a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveReason {
    /// BGSAVE, or "Back up now".
    Requested,
    /// SAVE: the client waits for it.
    Foreground,
    /// The backup frequency or a save point.
    Scheduled,
    /// Retrying after a failed save.
    Retry,
    /// Saving on SHUTDOWN.
    Shutdown,
}

impl SaveReason {
    pub fn describe(self) -> &'static str {
        match self {
            SaveReason::Requested => "requested",
            SaveReason::Foreground => "SAVE",
            SaveReason::Scheduled => "scheduled",
            SaveReason::Retry => "retry after failure",
            SaveReason::Shutdown => "shutdown",
        }
    }
}

/// The outcome of one save.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveReport {
    pub path: PathBuf,
    pub reason: SaveReason,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub bytes: u64,
    pub keys: u64,
    /// None if the save succeeded.
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("Background save already in progress")]
    InProgress,
    #[error("the data set is still loading")]
    Loading,
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Where an instance's dump lives.
pub fn dump_path(shared: &Shared) -> PathBuf {
    let cfg = shared.config();
    cfg.dir.join(cfg.dbfilename)
}

/// Starts a background save from `ks` (the caller holds the keyspace lock); it runs on its own
/// thread and reports through events.
pub fn start_background(
    shared: &Arc<Shared>,
    ks: &mut Keyspace,
    reason: SaveReason,
) -> Result<(), SaveError> {
    if shared.persistence.is_loading() {
        return Err(SaveError::Loading);
    }
    if !ks.start_capture() {
        return Err(SaveError::InProgress);
    }
    let started = begin(shared, reason);
    let path = dump_path(shared);
    write_capture_in_background(
        shared,
        ks,
        "rdb-save",
        path.clone(),
        false,
        settle,
        move |shared, written, keys| {
            report(shared, started, path, &written, keys);
        },
    );
    Ok(())
}

/// Writes the capture just started under `ks` (held by the caller) to `target` on a thread of
/// its own. When the walk ends, `settle` runs with the keyspace locked (it ends the capture),
/// then `report` runs without that lock with the outcome (the file's size). `aof_base` marks
/// the file as an AOF base in its header.
pub(super) fn write_capture_in_background<T>(
    shared: &Arc<Shared>,
    ks: &mut Keyspace,
    thread_name: &str,
    target: PathBuf,
    aof_base: bool,
    settle: impl FnOnce(&mut Keyspace, &std::io::Result<u64>) -> T + Send + 'static,
    report: impl FnOnce(&Shared, std::io::Result<u64>, T) + Send + 'static,
) {
    let used_memory = ks.used_memory();
    let worker = shared.clone();
    // Shared with the thread so that, if it cannot start, the steps run here instead.
    let ending = Arc::new(parking_lot::Mutex::new(Some((settle, report))));
    let ending_in_thread = ending.clone();
    let spawned = std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            let written = write_dump(&target, aof_base, used_memory, || {
                let mut ks = worker.keyspace.lock();
                let step = ks.capture_step(KEYS_PER_STEP);
                // Hand the lock to a waiting connection rather than taking it straight back.
                parking_lot::MutexGuard::unlock_fair(ks);
                if step.traffic {
                    // Connections are walking: only collect, every quarter of a millisecond.
                    std::thread::sleep(Duration::from_micros(250));
                }
                step
            });
            if let Some((settle, report)) = ending_in_thread.lock().take() {
                let settled = settle(&mut worker.keyspace.lock(), &written);
                report(&worker, written, settled);
            }
        });
    if let Err(e) = spawned {
        // Without a thread, finish the walk here so the marks stay consistent.
        while !ks.capture_step(u64::MAX).done {}
        if let Some((settle, report)) = ending.lock().take() {
            let written = Err(e);
            let settled = settle(ks, &written);
            report(shared, written, settled);
        }
    }
}

/// The save redis-server makes when it stops: with SHUTDOWN SAVE, or when save points are
/// configured (unless SHUTDOWN NOSAVE). Waits for a running background save first. Never
/// saves over a dump that failed to load.
pub fn save_on_stop(shared: &Shared) {
    let st = shared.persistence.status();
    let wanted = st.shutdown_save.unwrap_or_else(|| {
        matches!(&shared.config().persistence, PersistenceMode::Rdb(s) if !s.save_points.is_empty())
    });
    if !wanted || st.loading.is_some() || st.load_failed() {
        return;
    }
    while shared.keyspace.lock().capture_running() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut ks = shared.keyspace.lock();
    if let Err(e) = save_foreground_as(shared, &mut ks, SaveReason::Shutdown) {
        shared
            .events
            .push(EventKind::Error, format!("save on shutdown failed: {e}"));
    }
}

/// Saves while holding the keyspace (SAVE): the caller's lock keeps everyone else waiting,
/// as Redis's SAVE does.
pub fn save_foreground(shared: &Shared, ks: &mut Keyspace) -> Result<SaveReport, SaveError> {
    save_foreground_as(shared, ks, SaveReason::Foreground)
}

fn save_foreground_as(
    shared: &Shared,
    ks: &mut Keyspace,
    reason: SaveReason,
) -> Result<SaveReport, SaveError> {
    if shared.persistence.is_loading() {
        return Err(SaveError::Loading);
    }
    if !ks.start_capture() {
        return Err(SaveError::InProgress);
    }
    let started = begin(shared, reason);
    let path = dump_path(shared);
    let used_memory = ks.used_memory();
    let written = write_dump(&path, false, used_memory, || {
        ks.capture_step(FOREGROUND_KEYS_PER_STEP)
    });
    let keys = settle(ks, &written);
    let saved = report(shared, started, path.clone(), &written, keys);
    written.map(|_| saved).map_err(|source| SaveError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn begin(shared: &Shared, reason: SaveReason) -> RunningSave {
    let running = RunningSave {
        reason,
        started: Instant::now(),
        started_at: SystemTime::now(),
    };
    shared
        .persistence
        .update(|st| st.running = Some(running.clone()));
    shared.events.push(
        EventKind::SaveStarted,
        format!("save started ({})", reason.describe()),
    );
    running
}

/// Ends the capture; after a successful save, the changes it holds no longer count as
/// unsaved (Redis's dirty - dirty_before_bgsave). Returns the keys written.
fn settle(ks: &mut Keyspace, written: &std::io::Result<u64>) -> u64 {
    let Some(capture) = ks.finish_capture() else {
        return 0;
    };
    if written.is_ok() {
        ks.dirty = ks.dirty.saturating_sub(capture.dirty_at_start);
    }
    capture.keys_done()
}

/// Records the outcome in the status and the event log.
fn report(
    shared: &Shared,
    started: RunningSave,
    path: PathBuf,
    written: &std::io::Result<u64>,
    keys: u64,
) -> SaveReport {
    let duration = started.started.elapsed();
    let (bytes, outcome) = match written {
        Ok(bytes) => (*bytes, Ok(())),
        Err(e) => (0, Err(format!("cannot write {}: {e}", path.display()))),
    };
    let report = SaveReport {
        path,
        reason: started.reason,
        started_at: started.started_at,
        duration,
        bytes,
        keys,
        error: outcome.clone().err(),
    };
    shared.persistence.record_save(&report, &outcome);
    match &outcome {
        Ok(()) => shared.events.push_with(
            EventKind::SaveFinished,
            format!(
                "saved {keys} keys, {bytes} bytes to {} in {:.3} s",
                report.path.display(),
                duration.as_secs_f64()
            ),
            EventData::Save(report.clone()),
        ),
        Err(reason) => {
            let retried = matches!(&shared.config().persistence,
                PersistenceMode::Rdb(s) if s.frequency.is_some() || !s.save_points.is_empty());
            let then = if retried {
                "; the schedule retries in 5 s"
            } else {
                ""
            };
            shared.events.push_with(
                EventKind::SaveFailed,
                format!("save failed: {reason}{then}"),
                EventData::Save(report.clone()),
            )
        }
    }
    report
}

/// The dump being written to its temp file: remembers the first error and ignores writes
/// after it.
struct DumpFile {
    file: std::io::Result<TempFile>,
    digest: crc::Digest<'static, u64, crc::Table<16>>,
    written: u64,
}

impl DumpFile {
    fn write(&mut self, bytes: &[u8]) {
        if let Ok(f) = &mut self.file {
            match f.write_all(bytes) {
                Ok(()) => {
                    self.digest.update(bytes);
                    self.written += bytes.len() as u64;
                }
                Err(e) => self.file = Err(e),
            }
        }
    }
}

/// Writes a complete dump to `target` from the steps of a capture; returns its size. On an
/// error the remaining steps are still run (and discarded) so the capture completes.
fn write_dump(
    target: &Path,
    aof_base: bool,
    used_memory: usize,
    mut next: impl FnMut() -> Step,
) -> std::io::Result<u64> {
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut header = RdbWriter::new();
    header.header(&[
        ("redis-ver", crate::REDIS_VERSION.to_string()),
        ("redis-bits", "64".to_string()),
        ("ctime", (crate::util::now_ms() / 1000).to_string()),
        ("used-mem", used_memory.to_string()),
        ("aof-base", u8::from(aof_base).to_string()),
    ]);
    let mut dump = DumpFile {
        file: TempFile::create(dir, TempKind::Rdb),
        digest: CRC64.digest(),
        written: 0,
    };
    dump.write(&header.buf);
    loop {
        let step = next();
        dump.write(&step.bytes);
        if step.done {
            break;
        }
    }
    let DumpFile {
        file,
        digest,
        written,
    } = dump;
    // On an error the temp file is removed as it drops.
    file.and_then(|mut f| {
        let mut tail = RdbWriter::new();
        tail.finish(digest);
        f.write_all(&tail.buf)?;
        f.persist(target)?;
        Ok(written + tail.buf.len() as u64)
    })
}
