//! Switching persistence on a running instance, as the portal allows, without stopping its
//! traffic. The new mode is put in force first; the old mode's files are removed only then:
//! - Disabled/RDB → AOF: logging starts at once into a new incr file and a first rewrite
//!   writes the base; once the base is in, the AOF is in force (and the dump goes).
//! - AOF → RDB: a snapshot is taken while the AOF still logs; once it is on disk, the AOF
//!   stops and its files go.
//! - any → Disabled: saving and logging stop, then the files go.
//!
//! Until the old files are removed, a restart loads whichever exists (restore.rs falls back
//! on the other mode's files), so a crash in the middle of a switch loses nothing.
//! RDB and AOF are never on together: `PersistenceMode` has one variant for each.

use std::path::Path;
use std::sync::Arc;

use super::aof::{self, RewriteReason};
use super::jobs::{JobHandle, JobKind};
use super::save::{self, SaveReason};
use super::PersistenceMode;
use crate::instance::Shared;
use crate::telemetry::EventKind;

#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error("the data set is still loading")]
    Loading,
    #[error("cannot start the AOF: {0}")]
    AofStart(std::io::Error),
    #[error("the first AOF rewrite failed: {0}; the AOF keeps logging and retries it")]
    FirstBase(String),
    #[error("the snapshot that replaces the AOF failed: {0}; the AOF stays on")]
    Snapshot(String),
    #[error("the switch was interrupted: {0}")]
    Interrupted(String),
}

/// Applies `new` to a running instance and returns once it is in force: a straight sequence
/// of steps, each awaited. A step that needs the capture waits for the running job first.
pub async fn apply(shared: &Arc<Shared>, new: PersistenceMode) -> Result<(), ModeError> {
    if shared.persistence.is_loading() {
        return Err(ModeError::Loading);
    }
    let old = shared.config().persistence;
    match (&old, &new) {
        (PersistenceMode::Aof, PersistenceMode::Aof) => return Ok(()),
        (_, PersistenceMode::Aof) => {
            let first_base = start_aof(shared, new.clone()).await?;
            first_base.outcome().await.map_err(ModeError::FirstBase)?;
            if matches!(old, PersistenceMode::Rdb(_)) {
                // A BGSAVE still writing the dump would put it back.
                shared.persistence.jobs.idle().await;
                remove_file(shared, &save::dump_path(shared));
            }
        }
        (PersistenceMode::Aof, _) => {
            if matches!(new, PersistenceMode::Rdb(_)) {
                snapshot(shared).await?;
            }
            set_mode(shared, new.clone());
            let worker = shared.clone();
            tokio::task::spawn_blocking(move || {
                aof::stop(&worker, &mut worker.keyspace.lock());
                remove_aof_files(&worker);
            })
            .await
            .map_err(|e| ModeError::Interrupted(e.to_string()))?;
        }
        (PersistenceMode::Rdb(_), PersistenceMode::Disabled) => {
            set_mode(shared, new.clone());
            // A save still writing the dump would put it back.
            shared.persistence.jobs.idle().await;
            remove_file(shared, &save::dump_path(shared));
        }
        _ if old == new => return Ok(()),
        _ => set_mode(shared, new.clone()),
    }
    logged(shared, &old, &new);
    Ok(())
}

/// Turns AOF on once the running job (a save, an export) has ended: logging starts into a
/// new incr file and the first rewrite writes the base; returns that rewrite's handle.
async fn start_aof(shared: &Arc<Shared>, mode: PersistenceMode) -> Result<JobHandle, ModeError> {
    let job = shared
        .persistence
        .jobs
        .begin_when_free(JobKind::Rewrite(RewriteReason::FirstBase))
        .await;
    set_mode(shared, mode);
    let mut ks = shared.keyspace.lock();
    aof::create(shared, &mut ks).map_err(ModeError::AofStart)?;
    aof::rewrite::run(shared, &mut ks, job).map_err(|e| ModeError::FirstBase(e.to_string()))
}

/// Takes a snapshot once the running job has ended, and waits for it.
async fn snapshot(shared: &Arc<Shared>) -> Result<(), ModeError> {
    let job = shared
        .persistence
        .jobs
        .begin_when_free(JobKind::Save(SaveReason::Requested))
        .await;
    let saved = save::run_background(shared, &mut shared.keyspace.lock(), job);
    saved.outcome().await.map_err(ModeError::Snapshot)?;
    Ok(())
}

fn set_mode(shared: &Shared, mode: PersistenceMode) {
    let mut cfg = shared.config();
    cfg.persistence = mode;
    shared.set_config(cfg);
}

fn describe(mode: &PersistenceMode) -> String {
    match mode {
        PersistenceMode::Disabled => "disabled".into(),
        PersistenceMode::Rdb(s) => match s.frequency {
            Some(f) => format!("RDB every {} s", f.as_secs()),
            None => format!("RDB (save {})", s.save_points_text()),
        },
        PersistenceMode::Aof => "AOF".into(),
    }
}

fn logged(shared: &Shared, old: &PersistenceMode, new: &PersistenceMode) {
    shared.events.push(
        EventKind::PersistenceChanged,
        format!("persistence: {} -> {}", describe(old), describe(new)),
    );
}

fn remove_file(shared: &Shared, path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => shared.events.push(
            EventKind::PersistenceChanged,
            format!("removed {}", path.display()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => shared.events.push(
            EventKind::Error,
            format!("cannot remove {}: {e}", path.display()),
        ),
    }
}

/// Removes the AOF's files (those its manifest lists, the manifest, temp files), then the
/// directory if nothing else is in it.
pub fn remove_aof_files(shared: &Shared) {
    let cfg = shared.config();
    let dir = cfg.dir.join(&cfg.appenddirname);
    let manifest_path = dir.join(aof::appender::manifest_name(&cfg.appendfilename));
    if let Ok(Some(m)) = aof::load::read_manifest(&dir, &cfg.appendfilename) {
        for f in m.files_to_load().chain(&m.history) {
            let _ = std::fs::remove_file(dir.join(&f.name));
        }
    }
    let _ = std::fs::remove_file(&manifest_path);
    super::temp::remove_stale(&dir);
    if std::fs::remove_dir(&dir).is_ok() {
        shared.events.push(
            EventKind::PersistenceChanged,
            format!("removed {}", dir.display()),
        );
    }
}
