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
use std::time::{Duration, SystemTime};

use super::aof;
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

const POLL: Duration = Duration::from_millis(10);

/// Applies `new` to a running instance and waits until it is in force. Blocking: call it off
/// the async runtime's worker threads.
pub fn apply(shared: &Arc<Shared>, new: PersistenceMode) -> Result<(), ModeError> {
    if shared.persistence.is_loading() {
        return Err(ModeError::Loading);
    }
    let old = shared.config().persistence;
    match (&old, &new) {
        (PersistenceMode::Aof, PersistenceMode::Aof) => Ok(()),
        (_, PersistenceMode::Aof) => {
            let started = SystemTime::now();
            set_mode(shared, new.clone());
            aof::create(shared, &mut shared.keyspace.lock()).map_err(ModeError::AofStart)?;
            wait_for_first_base(shared, started)?;
            if matches!(old, PersistenceMode::Rdb(_)) {
                wait_for_save(shared);
                remove_file(shared, &save::dump_path(shared));
            }
            logged(shared, &old, &new);
            Ok(())
        }
        (PersistenceMode::Aof, PersistenceMode::Rdb(_)) => {
            snapshot(shared)?;
            set_mode(shared, new.clone());
            aof::stop(shared, &mut shared.keyspace.lock());
            remove_aof_files(shared);
            logged(shared, &old, &new);
            Ok(())
        }
        (PersistenceMode::Aof, PersistenceMode::Disabled) => {
            set_mode(shared, new.clone());
            aof::stop(shared, &mut shared.keyspace.lock());
            remove_aof_files(shared);
            logged(shared, &old, &new);
            Ok(())
        }
        (PersistenceMode::Rdb(_), PersistenceMode::Disabled) => {
            set_mode(shared, new.clone());
            wait_for_save(shared);
            remove_file(shared, &save::dump_path(shared));
            logged(shared, &old, &new);
            Ok(())
        }
        _ => {
            if old != new {
                set_mode(shared, new.clone());
                logged(shared, &old, &new);
            }
            Ok(())
        }
    }
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

/// Waits until the AOF has its first base, or a rewrite started since `since` failed.
fn wait_for_first_base(shared: &Shared, since: SystemTime) -> Result<(), ModeError> {
    loop {
        match aof::figures(shared) {
            Some(f) if f.has_base => return Ok(()),
            None => return Err(ModeError::FirstBase("the AOF was turned off".into())),
            Some(_) => {}
        }
        let st = shared.persistence.status();
        let failed = st
            .aof
            .last_rewrite
            .filter(|r| st.aof.rewrite.is_none() && r.started_at >= since)
            .and_then(|r| r.error);
        if let Some(e) = failed {
            return Err(ModeError::FirstBase(e));
        }
        std::thread::sleep(POLL);
    }
}

fn wait_for_save(shared: &Shared) {
    while shared.persistence.status().running.is_some() {
        std::thread::sleep(POLL);
    }
}

/// Takes a snapshot (after any running rewrite or save) and waits for it.
fn snapshot(shared: &Arc<Shared>) -> Result<(), ModeError> {
    loop {
        let st = shared.persistence.status();
        if st.aof.rewrite.is_none() && st.running.is_none() {
            // Bound first: the keyspace lock must be released before waiting for the save.
            let started =
                save::start_background(shared, &mut shared.keyspace.lock(), SaveReason::Requested);
            match started {
                Ok(()) => {
                    wait_for_save(shared);
                    let st = shared.persistence.status();
                    return match st.history.back().and_then(|r| r.error.clone()) {
                        Some(e) => Err(ModeError::Snapshot(e)),
                        None => Ok(()),
                    };
                }
                Err(save::SaveError::InProgress) => {}
                Err(e) => return Err(ModeError::Snapshot(e.to_string())),
            }
        }
        std::thread::sleep(POLL);
    }
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
