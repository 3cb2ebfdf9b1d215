//! The one owner of background persistence work. An instance runs one job at a time: a save
//! (BGSAVE, SAVE, the schedule, shutdown), an AOF rewrite, an export, an import or the load at
//! start. Saves, rewrites and exports each need the keyspace's single point-in-time capture;
//! loads and imports replace the data, so nothing may run beside them either.
//!
//! A job is begun here (`Jobs::begin`, or `begin_when_free` to wait its turn), publishes its
//! progress in the slot while it runs, and ends by publishing its outcome on a watch channel
//! that its callers await (`JobHandle::outcome`). Whoever wants to know what runs asks the
//! slot (`Jobs::running`); whoever waits for it to change awaits the slot's channel. Nothing
//! polls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use super::aof::{RewriteReason, RewriteReport};
use super::restore::RestoreReport;
use super::save::{SaveReason, SaveReport};
use super::transfer::ExportReport;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Save(SaveReason),
    Rewrite(RewriteReason),
    Export,
    Import,
    /// Loading the data set as the instance starts.
    Load,
}

impl JobKind {
    /// Loads and imports replace the data (an import under AOF until its rewrite is in):
    /// commands without the LOADING flag are refused.
    pub fn loads(self) -> bool {
        matches!(
            self,
            JobKind::Import | JobKind::Load | JobKind::Rewrite(RewriteReason::Import)
        )
    }

    /// Saves, rewrites and exports write the keyspace's point-in-time capture.
    pub fn captures(self) -> bool {
        matches!(
            self,
            JobKind::Save(_) | JobKind::Rewrite(_) | JobKind::Export
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            JobKind::Save(_) => "a save",
            JobKind::Rewrite(_) => "an AOF rewrite",
            JobKind::Export => "an export",
            JobKind::Import => "an import",
            JobKind::Load => "the load of the data set",
        }
    }
}

/// How far a job is: keys written of a capture's keys, or bytes read of a file (and keys).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub keys: u64,
}

/// The job in the slot.
#[derive(Debug, Clone)]
pub struct RunningJob {
    pub id: u64,
    pub kind: JobKind,
    pub started: Instant,
    pub started_at: SystemTime,
    pub progress: Progress,
}

impl RunningJob {
    pub fn started_unix_secs(&self) -> u64 {
        self.started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    pub fn percent(&self) -> f64 {
        if self.progress.total == 0 {
            return 0.0;
        }
        self.progress.done as f64 * 100.0 / self.progress.total as f64
    }

    /// Estimated seconds left, from the rate so far.
    pub fn eta_secs(&self) -> u64 {
        let Progress { done, total, .. } = self.progress;
        let elapsed = self.started.elapsed().as_secs_f64();
        if done == 0 || elapsed <= 0.0 {
            return 1;
        }
        let rate = done as f64 / elapsed;
        (total.saturating_sub(done) as f64 / rate) as u64
    }
}

/// What a finished job reports.
#[derive(Debug, Clone, PartialEq)]
pub enum JobReport {
    Save(SaveReport),
    Rewrite(RewriteReport),
    Export(ExportReport),
    Restore(RestoreReport),
}

/// A job's outcome: its report, or why it failed.
pub type JobOutcome = Result<JobReport, String>;

/// Another job holds the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} is in progress", .0.describe())]
pub struct Busy(pub JobKind);

/// The slot of an instance's jobs.
#[derive(Debug)]
pub struct Jobs {
    slot: watch::Sender<Option<RunningJob>>,
    next_id: AtomicU64,
    /// Mirrors "the slot holds a load" for the per-command check.
    loading: AtomicBool,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            slot: watch::Sender::new(None),
            next_id: AtomicU64::new(1),
            loading: AtomicBool::new(false),
        }
    }
}

impl Jobs {
    /// The running job, if any.
    pub fn running(&self) -> Option<RunningJob> {
        self.slot.borrow().clone()
    }

    /// The running job's kind, if any.
    pub fn running_kind(&self) -> Option<JobKind> {
        self.slot.borrow().as_ref().map(|j| j.kind)
    }

    /// True while a load or an import runs (commands without the LOADING flag are refused).
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    /// Takes the slot for a job of `kind`, or says which job holds it.
    pub fn begin(self: &Arc<Self>, kind: JobKind) -> Result<Job, Busy> {
        let job = Job::new(self, kind);
        let mut busy = None;
        self.slot.send_if_modified(|slot| match slot {
            Some(running) => {
                busy = Some(running.kind);
                false
            }
            None => {
                self.loading.store(kind.loads(), Ordering::Release);
                *slot = Some(job.running());
                true
            }
        });
        if let Some(running) = busy {
            // Never in the slot: nothing to end.
            let mut job = job;
            job.ended = true;
            return Err(Busy(running));
        }
        Ok(job)
    }

    /// Takes the slot for a job of `kind` as soon as it is free.
    pub async fn begin_when_free(self: &Arc<Self>, kind: JobKind) -> Job {
        loop {
            if let Ok(job) = self.begin(kind) {
                return job;
            }
            self.wait_until(|running| running.is_none()).await;
        }
    }

    /// Waits until `ready` holds for the slot (at once if it holds now).
    pub async fn wait_until(&self, ready: impl Fn(Option<&RunningJob>) -> bool) {
        let mut slot = self.slot.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = slot.wait_for(|running| ready(running.as_ref())).await;
    }

    /// Waits until no job runs.
    pub async fn idle(&self) {
        self.wait_until(|running| running.is_none()).await;
    }

    fn set_progress(&self, id: u64, progress: Progress) {
        self.slot.send_if_modified(|slot| match slot {
            Some(running) if running.id == id && running.progress != progress => {
                running.progress = progress;
                true
            }
            _ => false,
        });
    }

    /// Empties the slot of job `id`, or gives it to `next` at once.
    fn end(&self, id: u64, next: Option<RunningJob>) {
        self.slot.send_if_modified(|slot| {
            if slot.as_ref().is_none_or(|running| running.id != id) {
                return false;
            }
            // Before anyone waiting on the slot wakes.
            let loads = next.as_ref().is_some_and(|next| next.kind.loads());
            self.loading.store(loads, Ordering::Release);
            *slot = next;
            true
        });
    }
}

/// A running job, held by whoever does its work. Ending it frees the slot and publishes the
/// outcome; dropping it unended does the same with an error, so the slot is never left held.
#[derive(Debug)]
pub struct Job {
    jobs: Arc<Jobs>,
    id: u64,
    kind: JobKind,
    started: Instant,
    started_at: SystemTime,
    outcome: watch::Sender<Option<JobOutcome>>,
    ended: bool,
}

impl Job {
    fn new(jobs: &Arc<Jobs>, kind: JobKind) -> Job {
        Job {
            jobs: jobs.clone(),
            id: jobs.next_id.fetch_add(1, Ordering::Relaxed),
            kind,
            started: Instant::now(),
            started_at: SystemTime::now(),
            outcome: watch::Sender::new(None),
            ended: false,
        }
    }

    /// The job as the slot shows it as it starts.
    fn running(&self) -> RunningJob {
        RunningJob {
            id: self.id,
            kind: self.kind,
            started: self.started,
            started_at: self.started_at,
            progress: Progress::default(),
        }
    }

    pub fn kind(&self) -> JobKind {
        self.kind
    }

    /// When the job began.
    pub fn started(&self) -> (Instant, SystemTime) {
        (self.started, self.started_at)
    }

    /// A handle to await the outcome with.
    pub fn handle(&self) -> JobHandle {
        JobHandle {
            outcome: self.outcome.subscribe(),
        }
    }

    pub fn progress(&self, progress: Progress) {
        self.jobs.set_progress(self.id, progress);
    }

    /// Ends the job with `outcome`: the slot is free before its waiters hear of it.
    pub fn finish(mut self, outcome: JobOutcome) {
        self.ended = true;
        self.jobs.end(self.id, None);
        self.outcome.send_replace(Some(outcome));
    }

    /// Ends the job with `outcome` and hands the slot straight to a job of `next` (an import's
    /// follow-up rewrite), so nothing else can start in between.
    pub fn hand_over(mut self, outcome: JobOutcome, next: JobKind) -> Job {
        self.ended = true;
        let next = Job::new(&self.jobs, next);
        self.jobs.end(self.id, Some(next.running()));
        self.outcome.send_replace(Some(outcome));
        next
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if !self.ended {
            self.jobs.end(self.id, None);
            self.outcome
                .send_replace(Some(Err(format!("{} ended early", self.kind.describe()))));
        }
    }
}

/// Awaits a job's outcome.
#[derive(Debug, Clone)]
pub struct JobHandle {
    outcome: watch::Receiver<Option<JobOutcome>>,
}

impl JobHandle {
    pub async fn outcome(mut self) -> JobOutcome {
        match self.outcome.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or_else(|| Err("no outcome".into())),
            Err(_) => Err("the job ended without an outcome".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> JobOutcome {
        Ok(JobReport::Export(ExportReport {
            path: "x.rdb".into(),
            keys: 1,
            bytes: 2,
            duration: std::time::Duration::ZERO,
        }))
    }

    #[tokio::test]
    async fn one_job_at_a_time_and_waiters_wake_when_it_ends() {
        let jobs = Arc::new(Jobs::default());
        let save = jobs.begin(JobKind::Save(SaveReason::Requested)).unwrap();
        assert_eq!(
            jobs.begin(JobKind::Export).unwrap_err(),
            Busy(JobKind::Save(SaveReason::Requested))
        );
        assert!(!jobs.is_loading());
        save.progress(Progress {
            done: 5,
            total: 10,
            keys: 5,
        });
        assert_eq!(jobs.running().unwrap().progress.done, 5);

        // An import waits its turn and gets the slot as the save ends.
        let waiting = tokio::spawn({
            let jobs = jobs.clone();
            async move { jobs.begin_when_free(JobKind::Import).await }
        });
        let handle = save.handle();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        save.finish(report());
        assert_eq!(handle.outcome().await, report());
        let import = waiting.await.unwrap();
        assert_eq!(jobs.running_kind(), Some(JobKind::Import));
        assert!(jobs.is_loading());

        // A handover leaves no gap (an import's rewrite still keeps clients out); dropping a
        // job frees the slot with an error outcome.
        let rewrite = import.hand_over(report(), JobKind::Rewrite(RewriteReason::Import));
        assert_eq!(
            jobs.running_kind(),
            Some(JobKind::Rewrite(RewriteReason::Import))
        );
        assert!(jobs.is_loading());
        let handle = rewrite.handle();
        drop(rewrite);
        assert!(handle.outcome().await.is_err());
        assert!(jobs.running().is_none());
        assert!(!jobs.is_loading());
        jobs.idle().await;
    }
}
