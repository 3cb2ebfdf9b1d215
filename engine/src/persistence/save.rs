//! Writing the dump file from a point-in-time capture (see snapshot.rs), as a job (jobs.rs): in
//! the background for BGSAVE and the schedule, in the foreground for SAVE. The file is written as Redis writes it:
//! `temp-<pid>-<n>.rdb` in the instance's directory (created exclusively, see temp.rs), fsync,
//! rename over the dump, fsync of the directory, so a crash at any moment leaves the previous
//! dump or the new one, never half of one. Temp files a crash left behind are removed when the
//! instance starts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use super::jobs::{Busy, Job, JobHandle, JobKind, JobReport, Progress};
use super::rdb::{RdbWriter, CRC64};
use super::snapshot::{Capture, Handoff, Step};
use super::temp::{TempFile, TempKind};
use super::PersistenceMode;
use crate::instance::Shared;
use crate::keyspace::Keyspace;
use crate::telemetry::{EventData, EventKind};

/// Removes the temp files an interrupted save left in a directory (see temp.rs for which).
pub use super::temp::remove_stale as remove_stale_temp_files;

/// Keys the save thread walks per turn when connections are not walking (an idle instance).
const KEYS_PER_STEP: u64 = 512;

/// How long no batch may run before the save thread walks itself.
const QUIET: Duration = Duration::from_millis(1);

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
    /// Another job (a rewrite, an export) holds the capture.
    #[error("{0}; try again when it ends")]
    Busy(Busy),
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

/// Takes the job slot for a save.
fn begin(shared: &Shared, reason: SaveReason) -> Result<Job, SaveError> {
    shared
        .persistence
        .jobs
        .begin(JobKind::Save(reason))
        .map_err(|busy| match busy.0 {
            JobKind::Save(_) => SaveError::InProgress,
            kind if kind.loads() => SaveError::Loading,
            _ => SaveError::Busy(busy),
        })
}

/// Starts a background save from `ks` (the caller holds the keyspace lock); it runs on its own
/// thread, reports through events and publishes its outcome on the handle.
pub fn start_background(
    shared: &Arc<Shared>,
    ks: &mut Keyspace,
    reason: SaveReason,
) -> Result<JobHandle, SaveError> {
    let job = begin(shared, reason)?;
    Ok(run_background(shared, ks, job))
}

/// Runs a background save as `job`, which holds the slot.
pub fn run_background(shared: &Arc<Shared>, ks: &mut Keyspace, job: Job) -> JobHandle {
    let handle = job.handle();
    let running = announce(shared, &job);
    let path = dump_path(shared);
    write_capture_in_background(
        shared,
        ks,
        job,
        path.clone(),
        move |shared, job, written, keys| {
            let report = report(shared, running, path, &written, keys);
            job.finish(match &report.error {
                None => Ok(JobReport::Save(report)),
                Some(e) => Err(e.clone()),
            });
        },
    );
    handle
}

/// Writes a capture of `ks` (held by the caller) to `target` on a thread of its own, as `job`
/// (a save, a rewrite, whose file is marked as an AOF base, or an export). When the walk
/// ends, the capture ends with the keyspace locked (`settle`), then `report` runs without
/// that lock with the outcome (the file's size) and the keys written, and ends the job.
pub(super) fn write_capture_in_background(
    shared: &Arc<Shared>,
    ks: &mut Keyspace,
    job: Job,
    target: PathBuf,
    report: impl FnOnce(&Shared, Job, std::io::Result<u64>, u64) + Send + 'static,
) {
    let (thread_name, aof_base) = match job.kind() {
        JobKind::Rewrite(_) => ("aof-rewrite", true),
        JobKind::Export => ("rdb-export", false),
        _ => ("rdb-save", false),
    };
    // The slot is held, so no other capture runs.
    let Some(handoff) = Capture::start(ks) else {
        job.finish(Err("a capture is already running".into()));
        return;
    };
    job.progress(Progress {
        done: 0,
        total: ks.key_count() as u64,
        keys: 0,
    });
    let used_memory = ks.used_memory();
    let worker = shared.clone();
    // Shared with the thread so that, if it cannot start, the steps run here instead.
    let ending = Arc::new(parking_lot::Mutex::new(Some((job, report, handoff))));
    let ending_in_thread = ending.clone();
    let spawned = std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            let Some((job, report, mut handoff)) = ending_in_thread.lock().take() else {
                return;
            };
            let mut walker = Walker::Waiting;
            let written = write_dump(&target, aof_base, used_memory, || {
                let step = next_step(&worker, &mut handoff, &mut walker);
                job.progress(Progress {
                    done: step.keys_done,
                    total: step.keys_total,
                    keys: step.keys_done,
                });
                step
            });
            let keys = settle(&mut worker.keyspace.lock(), job.kind(), &written);
            report(&worker, job, written, keys);
        });
    if let Err(e) = spawned {
        // Without a thread, finish the walk here so the marks stay consistent.
        while !Capture::step(ks, u64::MAX).done {}
        if let Some((job, report, _)) = ending.lock().take() {
            let written = Err(e);
            let keys = settle(ks, job.kind(), &written);
            report(shared, job, written, keys);
        }
    }
}

/// Who walks the capture now.
#[derive(Clone, Copy)]
enum Walker {
    /// Connections: the save thread waits for the bytes they hand over.
    Waiting,
    /// The save thread, in turns under the lock; `busy_turns` counts the turns in a row with
    /// batches run in between (one, as a client polling INFO gives, is not traffic).
    Alone { busy_turns: u8 },
}

/// The save thread's next bytes: what connections hand over while they walk; once no batch
/// ran for `QUIET`, turns of its own under the lock until batches run between two turns in a
/// row, each turn after the bytes handed over before it took the lock (the file keeps the
/// order the walk produced them in).
fn next_step(shared: &Shared, handoff: &mut Handoff, walker: &mut Walker) -> Step {
    while let Walker::Waiting = walker {
        match handoff.steps.recv_timeout(QUIET) {
            Ok(step) => return step,
            Err(mpsc::RecvTimeoutError::Timeout) if handoff.batches_since_last() > 0 => {}
            Err(_) => *walker = Walker::Alone { busy_turns: 0 },
        }
    }
    let mut ks = shared.keyspace.lock();
    let handed: Vec<Step> = handoff.steps.try_iter().collect();
    let step = Capture::step(&mut ks, KEYS_PER_STEP);
    // Hand the lock to a waiting connection rather than taking it straight back.
    parking_lot::MutexGuard::unlock_fair(ks);
    if let Walker::Alone { busy_turns } = walker {
        *busy_turns = if handoff.batches_since_last() > 0 {
            *busy_turns + 1
        } else {
            0
        };
        if *busy_turns >= 2 {
            *walker = Walker::Waiting;
        }
    }
    if handed.is_empty() {
        return step;
    }
    let mut bytes: Vec<u8> = handed.into_iter().flat_map(|s| s.bytes).collect();
    bytes.extend_from_slice(&step.bytes);
    Step { bytes, ..step }
}

/// Whether stopping saves a dump, as redis-server decides: with SHUTDOWN SAVE, or when save
/// points are configured (unless SHUTDOWN NOSAVE). Never over a dump that failed to load, nor
/// while the data is still loading.
pub fn saves_on_stop(shared: &Shared) -> bool {
    let st = shared.persistence.status();
    let wanted = st.shutdown_save.unwrap_or_else(|| {
        matches!(&shared.config().persistence, PersistenceMode::Rdb(s) if !s.save_points.is_empty())
    });
    wanted && !shared.persistence.is_loading() && !st.load_failed()
}

/// The save redis-server makes when it stops, as `job` (taken once any running job ended).
pub fn save_on_stop(shared: &Shared, job: Job) {
    let mut ks = shared.keyspace.lock();
    if let Err(e) = save_foreground_as(shared, &mut ks, job) {
        shared
            .events
            .push(EventKind::Error, format!("save on shutdown failed: {e}"));
    }
}

/// Saves while holding the keyspace (SAVE): the caller's lock keeps everyone else waiting,
/// as Redis's SAVE does.
pub fn save_foreground(shared: &Shared, ks: &mut Keyspace) -> Result<SaveReport, SaveError> {
    let job = begin(shared, SaveReason::Foreground)?;
    save_foreground_as(shared, ks, job)
}

fn save_foreground_as(
    shared: &Shared,
    ks: &mut Keyspace,
    job: Job,
) -> Result<SaveReport, SaveError> {
    let running = announce(shared, &job);
    // The caller holds the lock throughout: no connection walks, nothing is handed over.
    let _handoff = Capture::start(ks);
    let path = dump_path(shared);
    let used_memory = ks.used_memory();
    let written = write_dump(&path, false, used_memory, || {
        Capture::step(ks, FOREGROUND_KEYS_PER_STEP)
    });
    let keys = settle(ks, job.kind(), &written);
    let saved = report(shared, running, path.clone(), &written, keys);
    job.finish(match &saved.error {
        None => Ok(JobReport::Save(saved.clone())),
        Some(e) => Err(e.clone()),
    });
    written.map(|_| saved).map_err(|source| SaveError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// What a save's report needs of its start.
struct Started {
    reason: SaveReason,
    started: Instant,
    started_at: SystemTime,
}

/// Logs the start of the save `job` runs.
fn announce(shared: &Shared, job: &Job) -> Started {
    let reason = match job.kind() {
        JobKind::Save(reason) => reason,
        _ => SaveReason::Requested,
    };
    let (started, started_at) = job.started();
    shared.events.push(
        EventKind::SaveStarted,
        format!("save started ({})", reason.describe()),
    );
    Started {
        reason,
        started,
        started_at,
    }
}

/// Ends the capture of a `kind` job; after a successful save, the changes it holds no longer
/// count as unsaved (Redis's dirty - dirty_before_bgsave). Returns the keys written.
fn settle(ks: &mut Keyspace, kind: JobKind, written: &std::io::Result<u64>) -> u64 {
    let Some(capture) = Capture::finish(ks) else {
        return 0;
    };
    if written.is_ok() && matches!(kind, JobKind::Save(_)) {
        ks.dirty = ks.dirty.saturating_sub(capture.dirty_at_start);
    }
    capture.keys_done()
}

/// Records the outcome in the status and the event log.
fn report(
    shared: &Shared,
    started: Started,
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
