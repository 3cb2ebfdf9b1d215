//! A cache's Activity log: its lines, how many are kept, and how each lifecycle event and
//! each outcome of long work is worded for the user (the lifecycle itself is in `caches`).

use std::time::SystemTime;

use cachedesk_engine::{ExportReport, RestoreReport, Telemetry, TransferError};

use crate::model::sku::Sku;
use crate::model::{CacheSettings, Persistence};
use crate::widgets::bytes;

/// One line of a cache's Activity log.
#[derive(Debug, Clone)]
pub struct Activity {
    pub at: SystemTime,
    pub what: String,
    pub detail: String,
}

/// Activity entries kept per cache (the oldest go first).
const KEPT: usize = 1000;

/// Appends `line` to `log`, dropping the oldest lines beyond what is kept.
pub(super) fn push(log: &mut Vec<Activity>, line: Activity) {
    if log.len() >= KEPT {
        log.drain(..log.len() + 1 - KEPT);
    }
    log.push(line);
}

/// "Created": the size and port of a new cache.
pub(super) fn created(settings: &CacheSettings) -> String {
    format!("{} on port {}", settings.sku().describe(), settings.port)
}

/// What a reboot under `persistence` loses, from the telemetry just before it (None if the
/// cache was not running).
pub(super) fn reboot_loss(
    persistence: Persistence,
    telemetry: Option<Telemetry>,
) -> Option<String> {
    match (persistence, telemetry) {
        (_, None) => None,
        (Persistence::Disabled, Some(t)) => Some(format!(
            "Persistence is off: all {} keys are gone.",
            t.total_keys()
        )),
        (Persistence::Rdb(_), Some(t)) => Some(format!(
            "{} changes since the last backup were lost; the rest came back from the last RDB snapshot.",
            t.changes_since_save
        )),
        (Persistence::Aof, Some(_)) => Some(
            "Every acknowledged write came back from the AOF (a power loss could lose up to the last second)."
                .into(),
        ),
    }
}

/// "Rebooted", with what the reboot lost.
pub(super) fn rebooted(loss: Option<&str>) -> String {
    format!(
        "the cache drops its memory without saving and restarts from its persistence. {}",
        loss.unwrap_or("")
    )
}

/// A change made while the cache is stopped.
fn deferred(change: String) -> String {
    format!("{change} (applies when the cache starts)")
}

/// "Persistence changed" on a stopped cache.
pub(super) fn persistence_deferred(new: Persistence) -> String {
    deferred(new.describe())
}

/// "Persistence changed" on a running cache.
pub(super) fn persistence_changed(old: Persistence, new: Persistence) -> String {
    format!("{} -> {}", old.describe(), new.describe())
}

/// "Persistence change failed": the mode in force stays.
pub(super) fn persistence_kept(old: Persistence, error: &str) -> String {
    format!("{} stays: {error}", old.describe())
}

/// "Scaled" on a stopped cache.
pub(super) fn scale_deferred(from: &Sku, to: &Sku) -> String {
    deferred(format!("{} -> {}", from.describe(), to.describe()))
}

/// "Scaled" on a running cache, with what was evicted to fit.
pub(super) fn scaled(from: &Sku, to: &Sku, evicted: u64) -> String {
    format!(
        "{} -> {}; {evicted} keys evicted (allkeys-lru) to fit",
        from.describe(),
        to.describe()
    )
}

/// "Stopped".
pub(super) const STOPPED: &str = "the cache is stopped";

/// What came back when the cache started: a restore's figures, or why it started empty.
pub(super) fn start_note(
    report: Option<RestoreReport>,
    persistence: Persistence,
    creating: bool,
) -> String {
    match (report, persistence) {
        (Some(r), _) => format!(
            "Rehydrated from {} ({}): {} keys loaded, {} skipped as expired, {} evicted to fit, in {:.2} s.",
            r.format,
            r.files.join(", "),
            r.keys_loaded,
            r.keys_expired,
            r.keys_evicted,
            r.duration.as_secs_f64()
        ),
        (None, Persistence::Disabled) if !creating => {
            "Persistence is off: the cache started empty; its earlier data is gone.".into()
        }
        (None, _) => "The cache started empty.".into(),
    }
}

/// A finished export.
pub(super) fn exported(r: &ExportReport) -> String {
    format!(
        "exported {} keys ({}) to {} in {:.2} s",
        r.keys,
        bytes(r.bytes),
        r.path.display(),
        r.duration.as_secs_f64()
    )
}

/// A finished import.
pub(super) fn imported(r: &RestoreReport) -> String {
    format!(
        "imported {} keys from {} ({} skipped as expired, {} evicted to fit) in {:.2} s",
        r.keys_loaded,
        r.source.display(),
        r.keys_expired,
        r.keys_evicted,
        r.duration.as_secs_f64()
    )
}

/// An export or import (`what`) that failed or was refused.
pub(super) fn transfer_failed(what: &str, error: &TransferError) -> String {
    format!("{} failed: {error}", what.to_lowercase())
}

/// "Access key regenerated": which key (`primary` or `secondary`) was replaced.
pub(super) fn key_replaced(which: &str) -> String {
    format!("the {which} key was replaced")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_newest_lines() {
        let mut log = Vec::new();
        for i in 0..KEPT + 5 {
            let line = Activity {
                at: SystemTime::UNIX_EPOCH,
                what: "Stopped".into(),
                detail: i.to_string(),
            };
            push(&mut log, line);
        }
        assert_eq!(log.len(), KEPT);
        assert_eq!(log[0].detail, "5");
        assert_eq!(log[KEPT - 1].detail, (KEPT + 4).to_string());
    }
}
