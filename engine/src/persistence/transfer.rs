//! RDB files in and out at the user's request (the portal's Import/Export).
//!
//! Export writes the data as of its start to any path, from a point-in-time capture, while
//! the instance keeps serving (the same walk as a background save; see snapshot.rs). It does
//! not count as a save: changes since the last save stay unsaved.
//!
//! Import waits for any running job to end, reads a dump (Redis's or ours) into fresh
//! databases on a blocking thread, then swaps them in, evicting allkeys-lru if the data exceeds maxmemory. Meanwhile clients get
//! -LOADING and no save or rewrite starts (a capture must not see its keyspace replaced). A
//! file that fails to read leaves the data as it was. Under AOF a rewrite makes the imported
//! data the AOF's base before clients are let back in; under RDB the next save holds it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::aof::{self, RewriteReason};
use super::jobs::{Job, JobHandle, JobKind, JobReport, Progress};
use super::rdb::RdbError;
use super::restore::{self, RestoreReport};
use crate::instance::Shared;
use crate::telemetry::{EventData, EventKind};

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("a save, rewrite or transfer is in progress; try again when it ends")]
    Busy,
    #[error("the data set is still loading")]
    Loading,
    /// The export could not be written (the text says where and why).
    #[error("{0}")]
    Write(String),
    #[error("cannot import {path}: {source}; the data is as it was")]
    Read { path: String, source: RdbError },
    #[error("the instance stopped before the transfer finished")]
    Interrupted,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    pub path: PathBuf,
    pub keys: u64,
    pub bytes: u64,
    pub duration: Duration,
}

/// Starts exporting to `target`, as a job whose handle gives the outcome.
pub fn start_export(shared: &Arc<Shared>, target: PathBuf) -> Result<JobHandle, TransferError> {
    let mut ks = shared.keyspace.lock();
    let job = shared
        .persistence
        .jobs
        .begin(JobKind::Export)
        .map_err(|busy| {
            if busy.0.loads() {
                TransferError::Loading
            } else {
                TransferError::Busy
            }
        })?;
    let handle = job.handle();
    let started = Instant::now();
    shared.events.push(
        EventKind::SaveStarted,
        format!("export to {} started", target.display()),
    );
    let path = target.clone();
    super::save::write_capture_in_background(
        shared,
        &mut ks,
        job,
        target,
        move |shared, job, written, keys| {
            let outcome = match written {
                Ok(bytes) => {
                    let report = ExportReport {
                        path: path.clone(),
                        keys,
                        bytes,
                        duration: started.elapsed(),
                    };
                    shared.events.push(
                        EventKind::Exported,
                        format!(
                            "exported {keys} keys ({bytes} bytes) to {} in {:.3} s",
                            path.display(),
                            report.duration.as_secs_f64()
                        ),
                    );
                    Ok(JobReport::Export(report))
                }
                Err(source) => {
                    let error = format!("cannot write {}: {source}", path.display());
                    shared
                        .events
                        .push(EventKind::ExportFailed, format!("export failed: {error}"));
                    Err(error)
                }
            };
            job.finish(outcome);
        },
    );
    Ok(handle)
}

/// Waits for an export's outcome.
pub async fn export_outcome(handle: JobHandle) -> Result<ExportReport, TransferError> {
    match handle.outcome().await {
        Ok(JobReport::Export(report)) => Ok(report),
        Ok(_) => Err(TransferError::Interrupted),
        Err(error) => Err(TransferError::Write(error)),
    }
}

/// Replaces the data with the dump at `path` and returns what was loaded, once any running
/// job has ended (or the instance stops first). Under AOF it returns once the rewrite that
/// makes the imported data the AOF's base has ended.
pub async fn import(shared: &Arc<Shared>, path: PathBuf) -> Result<RestoreReport, TransferError> {
    let mut stopping = shared.shutdown_signal();
    let job = tokio::select! {
        job = shared.persistence.jobs.begin_when_free(JobKind::Import) => job,
        _ = stopping.wait_for(|stop| *stop) => return Err(TransferError::Interrupted),
    };
    let total_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    job.progress(Progress {
        done: 0,
        total: total_bytes,
        keys: 0,
    });
    shared.events.push(
        EventKind::RestoreStarted,
        format!("importing {} ({total_bytes} bytes)", path.display()),
    );
    let worker = shared.clone();
    let (job, result) = tokio::task::spawn_blocking(move || {
        let result = imported(&worker, &job, &path, total_bytes);
        (job, result)
    })
    .await
    .map_err(|_| TransferError::Interrupted)?;
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            shared
                .events
                .push(EventKind::ImportFailed, format!("import failed: {e}"));
            job.finish(Err(e.to_string()));
            return Err(e);
        }
    };
    let mut detail = format!(
        "imported {} keys from {} in {:.3} s ({} skipped as expired)",
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
    shared.events.push_with(
        EventKind::Imported,
        detail,
        EventData::Restore(report.clone()),
    );
    let outcome = Ok(JobReport::Restore(report.clone()));
    let rewrite = {
        let mut ks = shared.keyspace.lock();
        if ks.feed.is_on() {
            let next = job.hand_over(outcome, JobKind::Rewrite(RewriteReason::Import));
            match aof::rewrite::run(shared, &mut ks, next) {
                Ok(handle) => Some(handle),
                Err(e) => {
                    shared.events.push(
                        EventKind::RewriteFailed,
                        format!("the AOF rewrite after an import could not start: {e}"),
                    );
                    None
                }
            }
        } else {
            job.finish(outcome);
            None
        }
    };
    if let Some(rewrite) = rewrite {
        // Its outcome is in the AOF's status and the event log.
        let _ = rewrite.outcome().await;
    }
    Ok(report)
}

/// The import proper, while `job` keeps clients out.
fn imported(
    shared: &Shared,
    job: &Job,
    path: &Path,
    total_bytes: u64,
) -> Result<RestoreReport, TransferError> {
    let mut progress = |bytes, keys| {
        job.progress(Progress {
            done: bytes,
            total: total_bytes,
            keys,
        })
    };
    let report =
        restore::load_dump(shared, &mut progress, path).map_err(|source| TransferError::Read {
            path: path.display().to_string(),
            source,
        })?;
    // Everything imported is unsaved until the next save.
    shared.keyspace.lock().dirty += report.keys_loaded;
    Ok(report)
}
