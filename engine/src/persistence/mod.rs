//! Persistence beside the keyspace: RDB files (`rdb`), the point-in-time snapshot that feeds
//! them without fork (`snapshot`, a write hook of the keyspace), writing the dump (`save`), the
//! save schedule (`schedule`), the append-only file (`aof`), loading on start (`restore`),
//! switching between modes on a running instance (`mode`), RDB files in and out at the user's
//! request (`transfer`) and the temp files all of them write before renaming into place
//! (`temp`). `jobs` owns the one slot all of that background work runs in.
//!
//! `PersistenceState` is what the rest of the engine (INFO, LASTSAVE, telemetry, the cron)
//! reads: the running job, the last save's outcome and the history of saves. It sits behind
//! its own small locks, never the keyspace's.

pub mod aof;
pub mod jobs;
pub mod mode;
pub mod rdb;
pub mod restore;
pub mod save;
pub mod schedule;
pub mod snapshot;
pub mod temp;
pub mod transfer;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use aof::{AppendFsync, RewriteReason, RewriteReport};
pub use jobs::{JobHandle, JobKind, JobOutcome, JobReport, Jobs, RunningJob};
pub use restore::RestoreReport;
pub use save::{SaveError, SaveReason, SaveReport};
pub use schedule::{RdbSchedule, SavePoint};

/// How an instance keeps its data across restarts (the portal's Data persistence choice).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PersistenceMode {
    /// Nothing is saved automatically and nothing is loaded on start.
    #[default]
    Disabled,
    /// RDB snapshots on a schedule; the newest dump is loaded on start.
    Rdb(RdbSchedule),
    /// Every write logged to the append-only file, replayed on start.
    Aof,
}

/// How many recent saves the history keeps (for the timeline chart).
const HISTORY: usize = 100;

/// Everything known about saving and loading, as of now.
#[derive(Debug, Clone)]
pub struct PersistenceStatus {
    /// Unix seconds of the last successful save (LASTSAVE); the start time before any.
    pub last_save_unix_secs: u64,
    pub last_save_ok: bool,
    pub last_error: Option<String>,
    /// When the last successful save ended (or the instance started): the schedule counts
    /// from here.
    pub last_success_end: Instant,
    /// When the backup frequency was last set (RDB turned on, or a new frequency): the first
    /// save after that comes one frequency later, as the panel promises.
    pub frequency_set: Instant,
    /// When the last attempt (successful or not) ended.
    pub last_attempt_end: Option<Instant>,
    /// Duration of the last save, successful or not.
    pub last_duration: Option<Duration>,
    pub saves: u64,
    /// BGSAVE SCHEDULE asked for a save once the running one ends.
    pub scheduled: bool,
    pub history: VecDeque<SaveReport>,
    pub last_restore: Option<RestoreReport>,
    /// SHUTDOWN SAVE (true) or NOSAVE (false); None follows the save points.
    pub shutdown_save: Option<bool>,
    pub aof: aof::AofStatus,
}

impl PersistenceStatus {
    /// True if the last load failed: then nothing may be saved over the file it refused.
    pub fn load_failed(&self) -> bool {
        self.last_restore
            .as_ref()
            .is_some_and(|r| r.error.is_some())
    }
}

impl PersistenceStatus {
    fn new(now_unix_secs: u64) -> Self {
        let now = Instant::now();
        PersistenceStatus {
            last_save_unix_secs: now_unix_secs,
            last_save_ok: true,
            last_error: None,
            last_success_end: now,
            frequency_set: now,
            last_attempt_end: None,
            last_duration: None,
            saves: 0,
            scheduled: false,
            history: VecDeque::new(),
            last_restore: None,
            shutdown_save: None,
            aof: aof::AofStatus::default(),
        }
    }
}

/// The shared persistence state of an instance.
#[derive(Debug)]
pub struct PersistenceState {
    status: Mutex<PersistenceStatus>,
    /// The one slot background work runs in (jobs.rs).
    pub jobs: Arc<Jobs>,
    /// The open AOF, while the instance runs AOF. Taken after the keyspace lock, never before.
    pub aof: Mutex<Option<aof::appender::Appender>>,
    /// The AOF cannot be written: writes are refused (checked per write command).
    aof_write_failed: AtomicBool,
}

impl PersistenceState {
    pub fn new(now_unix_secs: u64) -> Self {
        PersistenceState {
            status: Mutex::new(PersistenceStatus::new(now_unix_secs)),
            jobs: Arc::default(),
            aof: Mutex::new(None),
            aof_write_failed: AtomicBool::new(false),
        }
    }

    pub fn aof_write_failed(&self) -> bool {
        self.aof_write_failed.load(Ordering::Relaxed)
    }

    pub fn set_aof_write_failed(&self, failed: bool) {
        self.aof_write_failed.store(failed, Ordering::Relaxed);
    }

    /// A copy of the current status.
    pub fn status(&self) -> PersistenceStatus {
        self.status.lock().clone()
    }

    /// Runs `f` with the status locked.
    pub fn update<T>(&self, f: impl FnOnce(&mut PersistenceStatus) -> T) -> T {
        f(&mut self.status.lock())
    }

    /// True while a dump is loading (commands without the LOADING flag are refused).
    pub fn is_loading(&self) -> bool {
        self.jobs.is_loading()
    }

    fn record_save(&self, report: &SaveReport, outcome: &Result<(), String>) {
        let mut st = self.status.lock();
        let now = Instant::now();
        st.last_attempt_end = Some(now);
        st.last_duration = Some(report.duration);
        match outcome {
            Ok(()) => {
                st.last_save_ok = true;
                st.last_error = None;
                st.last_success_end = now;
                st.last_save_unix_secs = crate::util::now_ms() / 1000;
                st.saves += 1;
            }
            Err(reason) => {
                st.last_save_ok = false;
                st.last_error = Some(reason.clone());
            }
        }
        if st.history.len() == HISTORY {
            st.history.pop_front();
        }
        st.history.push_back(report.clone());
    }
}
