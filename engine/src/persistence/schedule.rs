//! When automatic saves happen. Two ways to ask, which may be combined:
//! - a backup frequency, as the portal offers (60 minutes, 6 hours, 12 hours; any duration
//!   here): a save starts when the frequency has elapsed since the END of the previous
//!   successful save (or since the frequency was set, if that is later), whether or not
//!   anything changed;
//! - Redis's save points (`save 3600 1 300 100`): a save starts when at least `changes` writes
//!   happened and `seconds` have elapsed since the last successful save.
//!
//! After a failed save the next attempt waits 5 seconds, as Redis's CONFIG_BGSAVE_RETRY_DELAY.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::save::{start_background, SaveReason};
use super::{PersistenceMode, PersistenceStatus};
use crate::instance::Shared;

/// Delay before retrying a failed save.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);

/// One Redis save point: save after `seconds` if at least `changes` writes happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavePoint {
    pub seconds: u64,
    pub changes: u64,
}

/// The RDB schedule of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RdbSchedule {
    pub frequency: Option<Duration>,
    pub save_points: Vec<SavePoint>,
}

impl RdbSchedule {
    /// A portal-style schedule: one save every `frequency`.
    pub fn every(frequency: Duration) -> Self {
        RdbSchedule {
            frequency: Some(frequency),
            save_points: Vec::new(),
        }
    }

    /// redis-server's default save points: 3600 1 300 100 60 10000.
    pub fn redis_default() -> Self {
        RdbSchedule {
            frequency: None,
            save_points: parse_save_points("3600 1 300 100 60 10000").unwrap_or_default(),
        }
    }

    /// Whether a save should start now (if no other job runs).
    pub fn due(&self, st: &PersistenceStatus, dirty: u64, now: Instant) -> bool {
        if !st.last_save_ok
            && st
                .last_attempt_end
                .is_some_and(|t| now.duration_since(t) < RETRY_DELAY)
        {
            return false;
        }
        let since_save = now.duration_since(st.last_success_end);
        self.frequency
            .is_some_and(|f| now.duration_since(frequency_start(st)) >= f)
            || self
                .save_points
                .iter()
                .any(|p| dirty >= p.changes && since_save.as_secs() >= p.seconds)
    }

    /// When the next save is expected, if one can be predicted from the clock alone (the
    /// frequency, or a save point whose change count is already reached).
    pub fn next_due(&self, st: &PersistenceStatus, dirty: u64) -> Option<Instant> {
        let mut next = self.frequency.map(|f| frequency_start(st) + f);
        for p in &self.save_points {
            if dirty >= p.changes {
                let at = st.last_success_end + Duration::from_secs(p.seconds);
                next = Some(next.map_or(at, |n: Instant| n.min(at)));
            }
        }
        if !st.last_save_ok {
            if let (Some(n), Some(failed)) = (next, st.last_attempt_end) {
                next = Some(n.max(failed + RETRY_DELAY));
            }
        }
        next
    }

    /// The save points as CONFIG GET save shows them ("3600 1 300 100").
    pub fn save_points_text(&self) -> String {
        self.save_points
            .iter()
            .map(|p| format!("{} {}", p.seconds, p.changes))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where the frequency counts from: the end of the last successful save, or the moment the
/// frequency was set if that is later.
fn frequency_start(st: &PersistenceStatus) -> Instant {
    st.last_success_end.max(st.frequency_set)
}

/// The backup frequency of a configuration, if it saves on one.
pub fn frequency_of(mode: &PersistenceMode) -> Option<Duration> {
    match mode {
        PersistenceMode::Rdb(schedule) => schedule.frequency,
        _ => None,
    }
}

/// Called by the instance's cron: starts a save if the schedule (or BGSAVE SCHEDULE) says so.
pub fn tick(shared: &Arc<Shared>) {
    if shared.persistence.jobs.running().is_some() {
        return;
    }
    let st = shared.persistence.status();
    if st.load_failed() {
        return;
    }
    let reason = if st.scheduled {
        SaveReason::Requested
    } else {
        let PersistenceMode::Rdb(schedule) = shared.config().persistence else {
            return;
        };
        let dirty = shared.keyspace.lock().dirty;
        if !schedule.due(&st, dirty, Instant::now()) {
            return;
        }
        if st.last_save_ok {
            SaveReason::Scheduled
        } else {
            SaveReason::Retry
        }
    };
    shared.persistence.update(|st| st.scheduled = false);
    // A save that is already running (started by a command meanwhile) is fine.
    let _ = start_background(shared, &mut shared.keyspace.lock(), reason);
}

/// Parses save points as redis-server takes them: pairs of seconds and changes, or "".
pub fn parse_save_points(text: &str) -> Option<Vec<SavePoint>> {
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    if !numbers.len().is_multiple_of(2) {
        return None;
    }
    Some(
        numbers
            .chunks(2)
            .map(|pair| SavePoint {
                seconds: pair[0],
                changes: pair[1],
            })
            .collect(),
    )
}

/// Parses a frequency: "60m", "1h", "6h", "12h", "30s", "2d" or plain seconds; "0" is none.
pub fn parse_frequency(text: &str) -> Option<Option<Duration>> {
    let text = text.trim().to_ascii_lowercase();
    let (n, unit) = crate::util::split_number_unit(&text)?;
    let secs = match unit {
        "" | "s" => n,
        "m" | "min" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some((secs > 0).then(|| Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::PersistenceState;

    #[test]
    fn frequency_counts_from_the_end_of_the_last_success() {
        let state = PersistenceState::new(0);
        let st = state.status();
        let schedule = RdbSchedule::every(Duration::from_secs(60));
        let t0 = st.last_success_end;
        assert!(!schedule.due(&st, 0, t0 + Duration::from_secs(59)));
        assert!(schedule.due(&st, 0, t0 + Duration::from_secs(60)));
        assert_eq!(
            schedule.next_due(&st, 0),
            Some(t0 + Duration::from_secs(60))
        );
    }

    #[test]
    fn turning_on_a_frequency_starts_its_countdown_then() {
        use crate::config::InstanceConfig;
        const HOUR: Duration = Duration::from_secs(3600);
        let shared = Shared::new(InstanceConfig::default());
        // An instance that has run for seven hours and never saved.
        let Some(started) = Instant::now().checked_sub(7 * HOUR) else {
            return; // the machine's monotonic clock is younger than that
        };
        shared.persistence.update(|st| {
            st.last_success_end = started;
            st.frequency_set = started;
        });
        let set_frequency = |frequency: Duration| {
            let mut cfg = shared.config();
            cfg.persistence = PersistenceMode::Rdb(RdbSchedule::every(frequency));
            let before = Instant::now();
            shared.set_config(cfg);
            before
        };
        let next_due = |frequency: Duration| {
            let st = shared.persistence.status();
            let schedule = RdbSchedule::every(frequency);
            assert!(!schedule.due(&st, 0, Instant::now()), "no save at once");
            schedule.next_due(&st, 0).expect("a next save")
        };
        let turned_on = set_frequency(6 * HOUR);
        let next = next_due(6 * HOUR);
        assert!(next >= turned_on + 6 * HOUR && next <= Instant::now() + 6 * HOUR);
        // The same frequency again keeps the countdown; a new one restarts it.
        set_frequency(6 * HOUR);
        assert_eq!(next_due(6 * HOUR), next);
        let changed = set_frequency(12 * HOUR);
        let next = next_due(12 * HOUR);
        assert!(next >= changed + 12 * HOUR && next <= Instant::now() + 12 * HOUR);
    }

    #[test]
    fn failure_waits_five_seconds() {
        let state = PersistenceState::new(0);
        let mut st = state.status();
        let schedule = RdbSchedule::every(Duration::from_secs(10));
        let failed = st.last_success_end + Duration::from_secs(11);
        st.last_save_ok = false;
        st.last_attempt_end = Some(failed);
        assert!(!schedule.due(&st, 0, failed + Duration::from_secs(4)));
        assert!(schedule.due(&st, 0, failed + Duration::from_secs(5)));
        assert_eq!(schedule.next_due(&st, 0), Some(failed + RETRY_DELAY));
    }

    #[test]
    fn save_points_need_changes() {
        let state = PersistenceState::new(0);
        let st = state.status();
        let schedule = RdbSchedule {
            frequency: None,
            save_points: parse_save_points("10 2").unwrap(),
        };
        let later = st.last_success_end + Duration::from_secs(11);
        assert!(!schedule.due(&st, 1, later));
        assert!(schedule.due(&st, 2, later));
        assert_eq!(schedule.next_due(&st, 1), None);
        assert_eq!(schedule.save_points_text(), "10 2");
        assert!(parse_save_points("10").is_none());
        assert_eq!(parse_save_points("").unwrap(), vec![]);
    }

    #[test]
    fn frequencies_parse_with_units() {
        assert_eq!(parse_frequency("1h"), Some(Some(Duration::from_secs(3600))));
        assert_eq!(
            parse_frequency("60m"),
            Some(Some(Duration::from_secs(3600)))
        );
        assert_eq!(
            parse_frequency("12H"),
            Some(Some(Duration::from_secs(43_200)))
        );
        assert_eq!(parse_frequency("5"), Some(Some(Duration::from_secs(5))));
        assert_eq!(parse_frequency("0"), Some(None));
        assert_eq!(parse_frequency("x"), None);
    }
}
