//! RDB files in and out at the user's request (the portal's Import/Export).
//!
//! Export writes the data as of its start to any path, from a point-in-time capture, while
//! the instance keeps serving (the same walk as a background save; see snapshot.rs). It does
//! not count as a save: changes since the last save stay unsaved.
//!
//! Import reads a dump (Redis's or ours) into fresh databases on the caller's thread, then
//! swaps them in, evicting allkeys-lru if the data exceeds maxmemory. Meanwhile clients get
//! -LOADING and no save or rewrite starts (a capture must not see its keyspace replaced). A
//! file that fails to read leaves the data as it was. Under AOF a rewrite makes the imported
//! data the AOF's base before clients are let back in; under RDB the next save holds it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::rdb::RdbError;
use super::restore::{self, RestoreReport};
use super::{aof, LoadingProgress};
use crate::instance::Shared;
use crate::telemetry::{EventData, EventKind};

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("a save, rewrite or transfer is in progress; try again when it ends")]
    Busy,
    #[error("the data set is still loading")]
    Loading,
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
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

/// Starts exporting to `target`; `done` gets the outcome from the writing thread.
pub fn start_export(
    shared: &Arc<Shared>,
    target: PathBuf,
    done: impl FnOnce(Result<ExportReport, TransferError>) + Send + 'static,
) -> Result<(), TransferError> {
    if shared.persistence.is_loading() {
        return Err(TransferError::Loading);
    }
    let mut ks = shared.keyspace.lock();
    if !ks.start_capture() {
        return Err(TransferError::Busy);
    }
    let started = Instant::now();
    shared.events.push(
        EventKind::SaveStarted,
        format!("export to {} started", target.display()),
    );
    let path = target.clone();
    super::save::write_capture_in_background(
        shared,
        &mut ks,
        "rdb-export",
        target,
        false,
        |ks, _| ks.finish_capture().map_or(0, |c| c.keys_done()),
        move |shared, written, keys| {
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
                    Ok(report)
                }
                Err(source) => {
                    let error = TransferError::Write {
                        path: path.display().to_string(),
                        source,
                    };
                    shared
                        .events
                        .push(EventKind::ExportFailed, format!("export failed: {error}"));
                    Err(error)
                }
            };
            done(outcome);
        },
    );
    Ok(())
}

const POLL: Duration = Duration::from_millis(10);

/// Replaces the data with the dump at `path` and returns what was loaded. Blocking: call it
/// off the async runtime's worker threads.
pub fn import(shared: &Arc<Shared>, path: &Path) -> Result<RestoreReport, TransferError> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let total_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    // Wait for a running save or rewrite; then -LOADING keeps new ones from starting.
    let (mark, lfu) = loop {
        if shared.is_shutting_down() {
            return Err(TransferError::Interrupted);
        }
        {
            let ks = shared.keyspace.lock();
            let st = shared.persistence.status();
            if !ks.capture_running() && st.aof.rewrite.is_none() && !shared.persistence.is_loading()
            {
                shared.persistence.set_loading(Some(LoadingProgress {
                    source: path.to_path_buf(),
                    started,
                    started_unix_secs: crate::util::now_ms() / 1000,
                    total_bytes,
                    loaded_bytes: 0,
                    keys_loaded: 0,
                }));
                break (ks.mark, ks.config.policy.is_lfu());
            }
        }
        std::thread::sleep(POLL);
    };
    shared.events.push(
        EventKind::RestoreStarted,
        format!("importing {} ({total_bytes} bytes)", path.display()),
    );
    let result = imported(shared, path, mark, lfu, started, started_at);
    shared.persistence.set_loading(None);
    match &result {
        Ok(report) => {
            let mut detail = format!(
                "imported {} keys from {} in {:.3} s ({} skipped as expired)",
                report.keys_loaded,
                path.display(),
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
        }
        Err(e) => shared
            .events
            .push(EventKind::ImportFailed, format!("import failed: {e}")),
    }
    result
}

/// The import proper, while the instance is marked loading.
fn imported(
    shared: &Arc<Shared>,
    path: &Path,
    mark: bool,
    lfu: bool,
    started: Instant,
    started_at: SystemTime,
) -> Result<RestoreReport, TransferError> {
    let (dbs, keys_loaded, keys_expired, bytes) = restore::read_dump(shared, path, mark, lfu)
        .map_err(|source| TransferError::Read {
            path: path.display().to_string(),
            source,
        })?;
    let keys_evicted = restore::install(shared, dbs);
    {
        let mut ks = shared.keyspace.lock();
        // Everything imported is unsaved until the next save.
        ks.dirty += keys_loaded;
        if ks.feed.is_on() {
            if let Err(e) = aof::rewrite::start(shared, &mut ks, aof::RewriteReason::Requested) {
                shared.events.push(
                    EventKind::RewriteFailed,
                    format!("the AOF rewrite after an import could not start: {e}"),
                );
            }
        }
    }
    while shared.persistence.status().aof.rewrite.is_some() {
        std::thread::sleep(POLL);
    }
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
