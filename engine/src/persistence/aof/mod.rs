//! Redis 7.0 multi-part AOF: every write is logged as Redis propagates it (`feed`), written by
//! the `appender` before the replies leave, compacted by a background `rewrite` into a new
//! base from a point-in-time capture, and replayed on start by `load`. The files are listed by
//! the `manifest` in `<dir>/<appenddirname>/`, named as Redis names them.
//!
//! Locks: a batch holds the keyspace lock while it feeds, then takes the appender's lock
//! before releasing the keyspace, so the log keeps the order in which commands ran while the
//! write itself happens outside the keyspace lock.
//!
//! What survives what, with appendfsync everysec: a kill -9 loses nothing acknowledged, since
//! every write reached the file (the page cache) before its reply was sent. A power loss can
//! lose what the last fsync did not cover: about one second of writes, more only while an
//! fsync runs slow (INFO's aof_delayed_fsync counts those seconds). `always` fsyncs before
//! replying and loses nothing acknowledged either way.

pub mod appender;
pub mod load;
pub mod manifest;
pub mod rewrite;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use crate::instance::batch::Batch;
use crate::instance::Shared;
use crate::keyspace::Keyspace;
use crate::telemetry::EventKind;
use appender::Appender;
pub use rewrite::{RewriteError, RewriteReason, RewriteReport};

/// When the appender makes written data durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppendFsync {
    /// fsync before every reply: nothing acknowledged is lost, even on power loss.
    Always,
    /// fsync about once a second, off the hot path (the portal's one option).
    #[default]
    EverySec,
    /// Leave it to the operating system.
    No,
}

impl AppendFsync {
    pub fn name(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::EverySec => "everysec",
            AppendFsync::No => "no",
        }
    }

    pub fn from_name(name: &str) -> Option<AppendFsync> {
        match name.to_ascii_lowercase().as_str() {
            "always" => Some(AppendFsync::Always),
            "everysec" => Some(AppendFsync::EverySec),
            "no" => Some(AppendFsync::No),
            _ => None,
        }
    }
}

/// Where an instance's AOF lives.
pub fn aof_dir(shared: &Shared) -> PathBuf {
    let cfg = shared.config();
    cfg.dir.join(cfg.appenddirname)
}

/// What the end of a batch (`instance::batch::Batch::end`) says of its writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flushed {
    /// Where appendfsync promises them before a reply (or nothing was fed, or AOF is off):
    /// the replies may leave.
    Durable,
    /// Not there: the batch's replies must not leave as they are; each must be this error.
    NotDurable(AofWriteError),
}

/// The AOF cannot be written. Its text is the -MISCONF refusal, as Redis words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MISCONF Errors writing to the AOF file: {0}")]
pub struct AofWriteError(pub String);

/// Takes what a batch fed to the AOF: None if it fed nothing (it read only, or AOF is off),
/// else the bytes to write (empty if a rewrite that started in the batch already wrote them).
pub fn take_batch_feed(ks: &mut Keyspace) -> Option<Vec<u8>> {
    if !ks.feed.take_fed() {
        return None;
    }
    Some(if ks.feed.has_pending() {
        ks.feed.take()
    } else {
        Vec::new()
    })
}

/// Writes a batch's feed with the appender's lock (taken while the batch still held the
/// keyspace's), and says whether its writes are where appendfsync promises them before its
/// replies leave: in the file (everysec, no; so a kill -9 loses nothing acknowledged), on disk
/// (always).
pub fn write_batch_feed(
    shared: &Shared,
    mut appender: MutexGuard<'_, Option<Appender>>,
    feed: Vec<u8>,
) -> Flushed {
    let Some(app) = appender.as_mut() else {
        return Flushed::Durable;
    };
    if !feed.is_empty() {
        app.append(feed);
        note_status(shared, app);
    }
    match app.unmet_promise() {
        Some(error) => Flushed::NotDurable(AofWriteError(error.to_owned())),
        None => Flushed::Durable,
    }
}

/// Announces a change of the AOF's write status: an event, and the flag that refuses
/// writes (INFO's aof_last_write_status reads the appender's error).
pub(crate) fn note_status(shared: &Shared, app: &mut Appender) {
    let error = app.error().map(str::to_owned);
    if error == app.announced {
        return;
    }
    match &error {
        Some(error) => shared.events.push(
            EventKind::AofWriteFailed,
            format!(
                "cannot write the AOF in {}: {error}; writes are refused until it recovers",
                app.dir.display()
            ),
        ),
        None => shared.events.push(
            EventKind::AofWriteRecovered,
            "the AOF is written again; writes are accepted",
        ),
    }
    shared.persistence.set_aof_write_failed(error.is_some());
    app.announced = error;
}

/// The text of the refusal while the AOF cannot be written (Redis's MISCONF).
pub fn write_refusal(shared: &Shared) -> String {
    let error = shared
        .persistence
        .aof
        .lock()
        .as_ref()
        .and_then(|a| a.error().map(str::to_owned))
        .unwrap_or_else(|| "unknown error".into());
    AofWriteError(error).to_string()
}

/// The cron's AOF work: write what was fed outside connections' batches (active expiry,
/// eviction after a restore or a new maxmemory) by ending a batch of its own, retry a failed
/// write, start the once-a-second fsync, and start a scheduled or automatic rewrite.
pub fn tick(shared: &Arc<Shared>) {
    Batch::begin(shared).end();
    let size_and_base = {
        let mut guard = shared.persistence.aof.lock();
        let Some(app) = guard.as_mut() else {
            return;
        };
        app.retry();
        app.fsync_tick();
        note_status(shared, app);
        (app.current_size(), app.base_size, app.manifest_saved)
    };
    if shared.persistence.jobs.running().is_some() {
        return;
    }
    let st = shared.persistence.status();
    let (size, base, has_base) = size_and_base;
    let now = Instant::now();
    let backed_off = st.aof.next_auto_attempt.is_some_and(|t| now < t);
    let reason = if st.aof.scheduled {
        RewriteReason::Requested
    } else if !has_base && !backed_off {
        RewriteReason::FirstBase
    } else if !backed_off && auto_rewrite_due(shared, size, base) {
        RewriteReason::Automatic
    } else {
        return;
    };
    let started = rewrite::start(shared, &mut shared.keyspace.lock(), reason);
    match &started {
        // Another job began meanwhile: the next tick tries again.
        Err(RewriteError::InProgress | RewriteError::Busy(_) | RewriteError::Loading) => return,
        Err(RewriteError::Disabled) => {}
        Err(e @ RewriteError::Io(_)) => rewrite::failed_to_start(shared, reason, e),
        Ok(_) => {}
    }
    shared.persistence.update(|st| st.aof.scheduled = false);
}

/// auto-aof-rewrite-percentage / -min-size: the AOF grew past the minimum and by the given
/// percentage over the base the last rewrite left.
fn auto_rewrite_due(shared: &Shared, size: u64, base: u64) -> bool {
    let cfg = shared.config();
    let percentage = cfg.auto_aof_rewrite_percentage;
    if percentage == 0 || size <= cfg.auto_aof_rewrite_min_size {
        return false;
    }
    let base = base.max(1);
    let growth = (size.saturating_mul(100) / base).saturating_sub(100);
    growth >= percentage
}

/// The size at which an automatic rewrite starts (for the live chart): None if it never does.
pub fn auto_rewrite_threshold(shared: &Shared, base: u64) -> Option<u64> {
    let cfg = shared.config();
    if cfg.auto_aof_rewrite_percentage == 0 {
        return None;
    }
    let growth = base
        .max(1)
        .saturating_mul(cfg.auto_aof_rewrite_percentage.saturating_add(100))
        / 100;
    Some(growth.max(cfg.auto_aof_rewrite_min_size.saturating_add(1)))
}

/// After 3 consecutive failed rewrites, automatic ones wait 1, 2, 4 ... up to 60 minutes.
pub fn backoff_after(failures_in_a_row: u32) -> Option<Duration> {
    if failures_in_a_row < 3 {
        return (failures_in_a_row > 0).then_some(Duration::from_secs(5));
    }
    let minutes = 1u64 << (failures_in_a_row - 3).min(6);
    Some(Duration::from_secs(60 * minutes.min(60)))
}

/// Starts logging to a new AOF whose base a first rewrite then writes from the data as it is
/// (turning AOF on at run time, or starting in AOF mode without AOF files). The caller holds
/// the keyspace lock.
pub fn create(shared: &Shared, ks: &mut Keyspace) -> std::io::Result<()> {
    let cfg = shared.config();
    let app = Appender::create(
        cfg.dir.join(&cfg.appenddirname),
        cfg.appendfilename.clone(),
        cfg.appendfsync,
    )?;
    *shared.persistence.aof.lock() = Some(app);
    ks.feed.set_on(true);
    Ok(())
}

/// Starts the first rewrite of an AOF just created, if it can start now; else the cron
/// starts it as soon as it can (the writes meanwhile are logged in the new incr file).
pub fn start_first_base(shared: &Arc<Shared>, ks: &mut Keyspace) {
    if let Err(e) = rewrite::start(shared, ks, RewriteReason::FirstBase) {
        shared.events.push(
            EventKind::RewriteFailed,
            format!("the first AOF rewrite could not start: {e}; retrying"),
        );
    }
}

/// Stops logging (AOF turned off): what was fed is written and fsynced first. Files stay.
pub fn stop(shared: &Shared, ks: &mut Keyspace) {
    let rest = ks.feed.take();
    ks.feed.set_on(false);
    if let Some(mut app) = shared.persistence.aof.lock().take() {
        if !rest.is_empty() {
            app.append(rest);
        }
        // An error is kept in the appender's status, read just below.
        let _ = app.sync_now();
        if let Some(error) = app.error() {
            shared.events.push(
                EventKind::Error,
                format!(
                    "the AOF in {} was turned off while it could not be written: {error}",
                    app.dir.display()
                ),
            );
        }
    }
    shared.persistence.set_aof_write_failed(false);
}

/// Status of the AOF for INFO and telemetry.
#[derive(Debug, Clone, Default)]
pub struct AofStatus {
    /// BGREWRITEAOF asked while another capture ran: start once it ends.
    pub scheduled: bool,
    pub last_rewrite: Option<RewriteReport>,
    pub rewrites: u64,
    pub failures_in_a_row: u32,
    /// Automatic rewrites wait until then after failures.
    pub next_auto_attempt: Option<Instant>,
    pub history: std::collections::VecDeque<RewriteReport>,
}

/// Figures of the open AOF, read under the appender's lock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AofFigures {
    pub current_size: u64,
    pub base_size: u64,
    pub buffer_length: u64,
    pub fsync_running: bool,
    pub delayed_fsyncs: u64,
    pub last_fsync_age: Duration,
    pub write_error: Option<String>,
    pub has_base: bool,
    pub fsync: AppendFsync,
}

pub fn figures(shared: &Shared) -> Option<AofFigures> {
    let guard = shared.persistence.aof.lock();
    let app = guard.as_ref()?;
    Some(AofFigures {
        current_size: app.current_size(),
        base_size: app.base_size,
        buffer_length: app.pending_len() as u64,
        fsync_running: app.fsync_running(),
        delayed_fsyncs: app.delayed_fsyncs,
        last_fsync_age: app.last_fsync.elapsed(),
        write_error: app.error().map(str::to_owned),
        has_base: app.manifest_saved,
        fsync: app.fsync,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InstanceConfig;
    use std::fs::OpenOptions;

    fn device(path: &str) -> std::fs::File {
        OpenOptions::new().write(true).open(path).unwrap()
    }

    /// Runs a batch that wrote (fed a command) or only read, and ends it.
    fn batch(shared: &Shared, writes: bool) -> Flushed {
        let mut batch = Batch::begin(shared);
        if writes {
            batch.feed.command(0, &[b"SET".as_slice(), b"k", b"v"]);
        }
        batch.end()
    }

    fn with_appender(shared: &Shared, f: impl FnOnce(&mut Appender)) {
        f(shared.persistence.aof.lock().as_mut().unwrap());
    }

    fn count(shared: &Shared, kind: EventKind) -> usize {
        shared
            .events
            .since(0)
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }

    #[test]
    fn a_batch_end_says_when_its_replies_must_not_be_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::new(InstanceConfig::default());
        let app = Appender::create(
            dir.path().to_path_buf(),
            "appendonly.aof".into(),
            AppendFsync::Always,
        )
        .unwrap();
        let incr = dir.path().join(appender::incr_name("appendonly.aof", 1));
        *shared.persistence.aof.lock() = Some(app);
        shared.keyspace.lock().feed.set_on(true);
        assert_eq!(batch(&shared, true), Flushed::Durable);

        // always: the write lands but its fsync fails (/dev/null).
        with_appender(&shared, |app| {
            app.replace_file_for_test(device("/dev/null"))
        });
        let Flushed::NotDurable(error) = batch(&shared, true) else {
            panic!("a batch whose fsync failed was durable");
        };
        let text = error.to_string();
        assert!(
            text.starts_with("MISCONF Errors writing to the AOF file: fsync: "),
            "{text}"
        );
        assert!(shared.persistence.aof_write_failed(), "writes are refused");
        assert_eq!(write_refusal(&shared), text);
        assert_eq!(count(&shared, EventKind::AofWriteFailed), 1);
        // A batch that only read has nothing to answer for.
        assert_eq!(batch(&shared, false), Flushed::Durable);
        // The same failure again is not announced again.
        assert!(matches!(batch(&shared, true), Flushed::NotDurable(_)));
        assert_eq!(count(&shared, EventKind::AofWriteFailed), 1);

        // Back on the real file: written, fsynced, acknowledged; writes accepted again.
        with_appender(&shared, |app| {
            app.replace_file_for_test(OpenOptions::new().append(true).open(&incr).unwrap())
        });
        assert_eq!(batch(&shared, true), Flushed::Durable);
        assert!(!shared.persistence.aof_write_failed());
        assert_eq!(count(&shared, EventKind::AofWriteRecovered), 1);

        // everysec promises the file, not the disk: a failed write (/dev/full) is not
        // durable, a write whose fsync would fail (/dev/null) is.
        with_appender(&shared, |app| {
            app.fsync = AppendFsync::EverySec;
            app.replace_file_for_test(device("/dev/full"));
        });
        let Flushed::NotDurable(error) = batch(&shared, true) else {
            panic!("a batch whose write failed was durable");
        };
        assert!(!error.0.starts_with("fsync"), "{error}");
        with_appender(&shared, |app| {
            app.replace_file_for_test(device("/dev/null"));
            app.retry();
        });
        assert_eq!(batch(&shared, true), Flushed::Durable);
    }

    #[test]
    fn backoff_grows_to_an_hour() {
        assert_eq!(backoff_after(0), None);
        assert_eq!(backoff_after(2), Some(Duration::from_secs(5)));
        assert_eq!(backoff_after(3), Some(Duration::from_secs(60)));
        assert_eq!(backoff_after(4), Some(Duration::from_secs(120)));
        assert_eq!(backoff_after(9), Some(Duration::from_secs(3600)));
        assert_eq!(backoff_after(40), Some(Duration::from_secs(3600)));
    }
}
