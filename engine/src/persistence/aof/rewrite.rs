//! AOF rewrite (BGREWRITEAOF, automatic, or the first base when AOF is turned on), a job of
//! its own (persistence/jobs.rs), as Redis 7.0 orders it so a crash at any moment loses nothing: first the current incr file is
//! written out, a new incr file is opened and the manifest saved listing it after the old
//! files; then a new base is written beside the traffic from a point-in-time capture taken at
//! that same instant (persistence/snapshot.rs); then the manifest swaps the old base and incr
//! files for the new base, and the old files are deleted.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::appender::base_name;
use super::manifest::{AofFile, FileKind, Manifest, ManifestError};
use crate::instance::Shared;
use crate::keyspace::Keyspace;
use crate::persistence::jobs::{Busy, Job, JobHandle, JobKind, JobReport};
use crate::telemetry::{EventData, EventKind};

/// What started a rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteReason {
    /// BGREWRITEAOF, or "Rewrite now".
    Requested,
    /// auto-aof-rewrite-percentage / -min-size.
    Automatic,
    /// AOF was turned on: the first base.
    FirstBase,
    /// An import replaced the data: its base, before clients are let back in.
    Import,
}

impl RewriteReason {
    pub fn describe(self) -> &'static str {
        match self {
            RewriteReason::Requested => "requested",
            RewriteReason::Automatic => "automatic",
            RewriteReason::FirstBase => "first base",
            RewriteReason::Import => "after an import",
        }
    }
}

/// The outcome of one rewrite.
#[derive(Debug, Clone, PartialEq)]
pub struct RewriteReport {
    pub reason: RewriteReason,
    pub started_at: SystemTime,
    pub duration: Duration,
    /// The new base file's name and size.
    pub base: String,
    pub base_bytes: u64,
    pub keys: u64,
    /// AOF size before and after.
    pub size_before: u64,
    pub size_after: u64,
    /// None if it succeeded.
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("Background append only file rewriting already in progress")]
    InProgress,
    /// A save or an export holds the capture; the rewrite can be scheduled after it.
    #[error("{0}")]
    Busy(Busy),
    #[error("the data set is still loading")]
    Loading,
    #[error("AOF is off on this instance (CONFIG SET appendonly yes turns it on)")]
    Disabled,
    #[error("cannot start the AOF rewrite: {0}")]
    Io(#[from] std::io::Error),
}

const HISTORY: usize = 100;

/// Takes the job slot for a rewrite.
fn begin(shared: &Shared, reason: RewriteReason) -> Result<Job, RewriteError> {
    shared
        .persistence
        .jobs
        .begin(JobKind::Rewrite(reason))
        .map_err(|busy| match busy.0 {
            JobKind::Rewrite(_) => RewriteError::InProgress,
            kind if kind.loads() => RewriteError::Loading,
            _ => RewriteError::Busy(busy),
        })
}

/// Starts a rewrite; the caller holds the keyspace lock.
pub fn start(
    shared: &Arc<Shared>,
    ks: &mut Keyspace,
    reason: RewriteReason,
) -> Result<JobHandle, RewriteError> {
    let job = begin(shared, reason)?;
    run(shared, ks, job)
}

/// The files a rewrite writes and swaps in.
struct Plan {
    base: AofFile,
    incr_seq: u64,
    target: std::path::PathBuf,
    size_before: u64,
}

/// Runs a rewrite as `job`, which holds the slot; the caller holds the keyspace lock. If it
/// cannot start, the job ends with the error.
pub fn run(shared: &Arc<Shared>, ks: &mut Keyspace, job: Job) -> Result<JobHandle, RewriteError> {
    let reason = match job.kind() {
        JobKind::Rewrite(reason) => reason,
        _ => RewriteReason::Requested,
    };
    let Plan {
        base,
        incr_seq,
        target,
        size_before,
    } = match plan(shared, ks, reason) {
        Ok(plan) => plan,
        Err(e) => {
            job.finish(Err(e.to_string()));
            return Err(e);
        }
    };
    let handle = job.handle();
    let (started, started_at) = job.started();
    shared.events.push(
        EventKind::RewriteStarted,
        format!("AOF rewrite started ({})", reason.describe()),
    );
    super::super::save::write_capture_in_background(
        shared,
        ks,
        job,
        target.clone(),
        move |shared, job, written, keys| {
            let installed = written.and_then(|bytes| {
                let mut guard = shared.persistence.aof.lock();
                let app = guard.as_mut().ok_or_else(|| {
                    std::io::Error::other("AOF was turned off during the rewrite")
                })?;
                app.install_base(base.clone(), incr_seq)?;
                Ok((bytes, app.current_size()))
            });
            if installed.is_err() {
                let _ = std::fs::remove_file(&target);
            }
            let installed = installed.map_err(|e| e.to_string());
            let report = finish(
                shared,
                (reason, started, started_at),
                base.name,
                size_before,
                keys,
                installed,
            );
            job.finish(match &report.error {
                None => Ok(JobReport::Rewrite(report)),
                Some(e) => Err(e.clone()),
            });
        },
    );
    Ok(handle)
}

/// Writes out what was fed, names the new base and opens the incr file that follows it.
fn plan(shared: &Shared, ks: &mut Keyspace, reason: RewriteReason) -> Result<Plan, RewriteError> {
    let mut guard = shared.persistence.aof.lock();
    let app = guard.as_mut().ok_or(RewriteError::Disabled)?;
    if ks.feed.has_pending() {
        // The end of the batch reports what this write gave (see Batch::end).
        app.append(ks.feed.take());
        super::note_status(shared, app);
    }
    // The new base's name first: nothing changes if there is none to give it.
    let base_seq = Manifest::next_seq(app.manifest.base.iter().chain(&app.manifest.history))
        .map_err(std::io::Error::from)?;
    let base = AofFile {
        name: base_name(&app.prefix, base_seq),
        seq: base_seq,
        kind: FileKind::Base,
    };
    if app.manifest.lists(&base.name) {
        return Err(std::io::Error::from(ManifestError::NameTaken(base.name)).into());
    }
    let size_before = app.current_size();
    // A first base goes with the incr file opened when AOF was turned on, while that file is
    // still empty; once it holds commands the base will hold too, a new file follows them.
    let incr_seq = match (reason, app.manifest_saved) {
        (RewriteReason::FirstBase, false) if app.current_file_is_empty() => {
            app.manifest.incrs.last().map_or(1, |f| f.seq)
        }
        _ => {
            let rotated = app.rotate();
            super::note_status(shared, app);
            let seq = rotated?;
            ks.feed.reselect();
            seq
        }
    };
    let target = app.dir.join(&base.name);
    Ok(Plan {
        base,
        incr_seq,
        target,
        size_before,
    })
}

/// A rewrite the cron wanted could not start (its next file could not be opened, the current
/// one not be fsynced...): reported and counted as a failed rewrite, so automatic ones back
/// off rather than retry unseen on every tick.
pub(super) fn failed_to_start(shared: &Shared, reason: RewriteReason, error: &RewriteError) {
    let size = super::figures(shared).map_or(0, |f| f.current_size);
    finish(
        shared,
        (reason, Instant::now(), SystemTime::now()),
        String::new(),
        size,
        0,
        Err(error.to_string()),
    );
}

/// Records a rewrite's outcome (started as `reason` at `started`) and returns its report.
fn finish(
    shared: &Shared,
    (reason, started, started_at): (RewriteReason, Instant, SystemTime),
    base: String,
    size_before: u64,
    keys: u64,
    installed: Result<(u64, u64), String>,
) -> RewriteReport {
    let (base_bytes, size_after, error) = match installed {
        Ok((bytes, size)) => (bytes, size, None),
        Err(e) => (0, size_before, Some(e)),
    };
    let report = RewriteReport {
        reason,
        started_at,
        duration: started.elapsed(),
        base,
        base_bytes,
        keys,
        size_before,
        size_after,
        error: error.clone(),
    };
    let failures = shared.persistence.update(|st| {
        let aof = &mut st.aof;
        if error.is_some() {
            aof.failures_in_a_row += 1;
        } else {
            aof.failures_in_a_row = 0;
            aof.rewrites += 1;
        }
        aof.next_auto_attempt =
            super::backoff_after(aof.failures_in_a_row).map(|d| Instant::now() + d);
        aof.last_rewrite = Some(report.clone());
        if aof.history.len() == HISTORY {
            aof.history.pop_front();
        }
        aof.history.push_back(report.clone());
        aof.failures_in_a_row
    });
    match error {
        None => shared.events.push_with(
            EventKind::RewriteFinished,
            format!(
                "AOF rewritten: {keys} keys in {} ({base_bytes} bytes) in {:.3} s; AOF {} -> {} bytes",
                report.base,
                report.duration.as_secs_f64(),
                size_before,
                size_after
            ),
            EventData::Rewrite(report.clone()),
        ),
        Some(e) => {
            let wait = super::backoff_after(failures)
                .map(|d| format!("; automatic rewrites wait {} s", d.as_secs()))
                .unwrap_or_default();
            shared.events.push_with(
                EventKind::RewriteFailed,
                format!("AOF rewrite failed ({failures} in a row): {e}{wait}"),
                EventData::Rewrite(report.clone()),
            )
        }
    }
    report
}
