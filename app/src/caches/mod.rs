//! The caches the app runs: each one's settings, status, engine instance, activity log and
//! live samples. Long work (create, start with its restore, stop, reboot, scale, delete) runs
//! on tokio and comes back through a poll-promise that `poll` checks every frame, so the
//! window never waits on the engine. How the Activity log words it all is in `activity`.

mod activity;

pub use activity::Activity;

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use std::path::PathBuf;

use cachedesk_engine::{
    EventData, EvictionPolicy, ExportReport, Instance, RestoreReport, TransferError,
};
use eframe::egui;
use poll_promise::Promise;
use tokio::runtime::Handle;

use crate::model::sku::Sku;
use crate::model::store::{self, Paths};
use crate::model::{CacheSettings, Persistence};

/// A cache's state, with the portal's names.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Creating,
    Starting,
    Running,
    Stopping,
    Stopped,
    Scaling,
    Updating,
    Importing,
    Deleting,
    CreateFailed(String),
    Failed(String),
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Creating => "Creating",
            Status::Starting => "Starting",
            Status::Running => "Running",
            Status::Stopping => "Stopping",
            Status::Stopped => "Stopped",
            Status::Scaling => "Scaling",
            Status::Updating => "Updating",
            Status::Importing => "Importing",
            Status::Deleting => "Deleting",
            Status::CreateFailed(_) => "CreateFailed",
            Status::Failed(_) => "Failed",
        }
    }

    /// True while long work runs on the cache.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            Status::Creating
                | Status::Starting
                | Status::Stopping
                | Status::Scaling
                | Status::Updating
                | Status::Importing
                | Status::Deleting
        )
    }
}

/// One point of the Overview's live charts.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the cache started being sampled.
    pub t: f64,
    pub ops_per_sec: f64,
    pub clients: f64,
    /// The AOF's size in bytes (0 without AOF).
    pub aof_bytes: f64,
    /// Pub/Sub messages published so far, and per second since the previous sample.
    pub messages_total: f64,
    pub messages_per_sec: f64,
}

/// An export or import in flight.
#[derive(Debug, Clone, PartialEq)]
pub enum Transfer {
    Export(PathBuf),
    Import(PathBuf),
}

/// Samples kept for the charts (two minutes at one a second).
const SAMPLES: usize = 120;

/// What a piece of long work came back with.
enum Outcome {
    Started(Result<(Arc<Instance>, Option<RestoreReport>), String>),
    Stopped,
    Scaled {
        from: &'static Sku,
        to: &'static Sku,
        evicted: u64,
    },
    PersistenceSet(Persistence, Result<(), String>),
    Exported(Result<ExportReport, TransferError>),
    Imported(Result<RestoreReport, TransferError>),
    Deleted(Result<(), String>),
}

pub struct Cache {
    pub settings: CacheSettings,
    pub status: Status,
    pub instance: Option<Arc<Instance>>,
    pub activity: Vec<Activity>,
    pub samples: VecDeque<Sample>,
    /// What came back when the cache last started (rehydrated from persistence, or empty).
    pub data_note: Option<String>,
    /// The outcome of the last scale, for the Scale page.
    pub last_scale: Option<String>,
    /// Every restore (on start, reboot or import), oldest first, for the restore table.
    pub restores: Vec<RestoreReport>,
    /// What the last reboot lost: changes since the last save, or everything without
    /// persistence; shown until the next reboot.
    pub reboot_loss: Option<String>,
    /// The running export or import, and the outcome of the last one, for their page.
    pub transfer: Option<Transfer>,
    pub last_transfer: Option<String>,
    pending: Option<Promise<Outcome>>,
    /// What to do once the running work ends (a reboot starts again after stopping).
    then_start: bool,
    events_seen: u64,
    /// True once a task wakes the window on this instance's events.
    watched: bool,
    sampled_at: Option<Instant>,
    sampling_since: Instant,
}

impl Cache {
    fn new(settings: CacheSettings, status: Status) -> Cache {
        Cache {
            settings,
            status,
            instance: None,
            activity: Vec::new(),
            samples: VecDeque::new(),
            data_note: None,
            last_scale: None,
            restores: Vec::new(),
            reboot_loss: None,
            transfer: None,
            last_transfer: None,
            pending: None,
            then_start: false,
            events_seen: 0,
            watched: false,
            sampled_at: None,
            sampling_since: Instant::now(),
        }
    }

    pub fn log(&mut self, what: &str, detail: impl Into<String>) {
        activity::push(
            &mut self.activity,
            Activity {
                at: SystemTime::now(),
                what: what.into(),
                detail: detail.into(),
            },
        );
    }

    /// True while long work runs on the cache (its commands wait).
    pub fn busy(&self) -> bool {
        self.pending.is_some() || self.status.is_busy()
    }

    /// Whether a graceful stop takes a last snapshot (RDB); AOF has every write already.
    fn saves_on_stop(&self) -> bool {
        matches!(self.settings.persistence, Persistence::Rdb(_))
    }

    /// The port clients use: the instance's real one once it listens.
    pub fn port(&self) -> u16 {
        self.instance
            .as_ref()
            .map_or(self.settings.port, |i| i.addr().port())
    }
}

/// Every cache of the app, and what it needs to run them.
pub struct Caches {
    pub list: Vec<Cache>,
    pub paths: Paths,
    runtime: Handle,
    /// The window, once it has drawn: finished work wakes it (no polling while work runs).
    window: Arc<OnceLock<egui::Context>>,
    /// A problem the user must hear about (the settings file was unreadable, a cache in it
    /// was skipped, a save failed).
    pub notice: Option<String>,
}

/// Runs `work` on the runtime; its outcome wakes the window (once it has drawn).
fn spawn<T: Send + 'static>(
    runtime: &Handle,
    window: &Arc<OnceLock<egui::Context>>,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Promise<T> {
    let (sender, promise) = Promise::new();
    let window = window.clone();
    runtime.spawn(async move {
        sender.send(work.await);
        if let Some(window) = window.get() {
            window.request_repaint();
        }
    });
    promise
}

impl Caches {
    /// Loads the remembered caches and starts those that were running.
    pub fn open(paths: Paths, runtime: Handle) -> Caches {
        let loaded = store::load(&paths);
        let mut caches = Caches {
            list: loaded
                .caches
                .into_iter()
                .map(|s| Cache::new(s, Status::Stopped))
                .collect(),
            paths,
            runtime,
            window: Arc::default(),
            notice: (!loaded.problems.is_empty()).then(|| loaded.problems.join("\n")),
        };
        for i in 0..caches.list.len() {
            if caches.list[i].settings.running {
                caches.start(i);
            }
        }
        caches
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|c| c.settings.name == name)
    }

    fn save(&mut self) {
        let settings: Vec<_> = self.list.iter().map(|c| c.settings.clone()).collect();
        if let Err(e) = store::save(&self.paths, &settings) {
            self.notice = Some(format!("The settings could not be saved: {e:#}"));
        }
    }

    /// Creates a cache from the wizard's settings and starts it.
    pub fn create(&mut self, mut settings: CacheSettings) {
        settings.running = true;
        let mut cache = Cache::new(settings, Status::Creating);
        cache.log("Created", activity::created(&cache.settings));
        self.list.push(cache);
        self.save();
        let i = self.list.len() - 1;
        self.launch(i);
    }

    /// Starts a stopped cache; its data comes back from its persistence.
    pub fn start(&mut self, i: usize) {
        self.list[i].status = Status::Starting;
        self.launch(i);
    }

    fn launch(&mut self, i: usize) {
        let cache = &mut self.list[i];
        let dir = match self.paths.cache_dir(&cache.settings.name) {
            Ok(dir) => dir,
            Err(e) => {
                cache.pending = Some(Promise::from_ready(Outcome::Started(Err(format!("{e:#}")))));
                return;
            }
        };
        let config = cache.settings.instance_config(&dir);
        cache.pending = Some(spawn(&self.runtime, &self.window, async move {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return Outcome::Started(Err(format!("cannot create {}: {e}", dir.display())));
            }
            let instance = match Instance::start(config).await {
                Ok(instance) => instance,
                Err(e) => return Outcome::Started(Err(e.to_string())),
            };
            match instance.wait_loaded().await {
                Ok(report) => Outcome::Started(Ok((Arc::new(instance), report))),
                Err(e) => {
                    instance.stop().await;
                    Outcome::Started(Err(e))
                }
            }
        }));
    }

    /// Stops the cache gracefully: under RDB a last snapshot keeps every write.
    pub fn stop(&mut self, i: usize) {
        let save = self.list[i].saves_on_stop();
        self.stop_then(i, save, false);
        self.list[i].settings.running = false;
        self.save();
    }

    /// Simulates a node failure: the cache drops its memory without a last save and starts
    /// again, and its persistence brings back what it holds.
    pub fn reboot(&mut self, i: usize) {
        let cache = &mut self.list[i];
        let telemetry = cache.instance.as_ref().map(|i| i.telemetry_now());
        let loss = activity::reboot_loss(cache.settings.persistence, telemetry);
        cache.log("Rebooted", activity::rebooted(loss.as_deref()));
        cache.reboot_loss = loss;
        self.stop_then(i, false, true);
    }

    /// Switches the cache's Data persistence without stopping its traffic; the cache shows
    /// Updating until the new mode is in force.
    pub fn set_persistence(&mut self, i: usize, new: Persistence) {
        let cache = &mut self.list[i];
        let Some(instance) = cache.instance.clone() else {
            cache.log("Persistence changed", activity::persistence_deferred(new));
            cache.settings.persistence = new;
            self.save();
            return;
        };
        cache.status = Status::Updating;
        cache.pending = Some(spawn(&self.runtime, &self.window, async move {
            let result = instance
                .set_persistence(new.engine_mode())
                .await
                .map_err(|e| e.to_string());
            Outcome::PersistenceSet(new, result)
        }));
    }

    fn stop_then(&mut self, i: usize, save: bool, start_again: bool) {
        let cache = &mut self.list[i];
        let Some(instance) = cache.instance.take() else {
            return;
        };
        cache.status = Status::Stopping;
        cache.then_start = start_again;
        cache.pending = Some(spawn(&self.runtime, &self.window, async move {
            instance.stop_saving(save).await;
            Outcome::Stopped
        }));
    }

    /// The app is closing: every running cache stops gracefully (as `stop`, but they start
    /// again with the app). Blocks until they have; call it off the runtime's threads.
    pub fn shutdown_all(&mut self) {
        let stops: Vec<_> = self
            .list
            .iter_mut()
            .filter_map(|c| {
                let save = c.saves_on_stop();
                c.instance
                    .take()
                    .map(|i| async move { i.stop_saving(save).await })
            })
            .collect();
        self.runtime.block_on(async move {
            for stop in stops {
                stop.await;
            }
        });
    }

    /// Deletes the cache: stops it, removes its folder and forgets it.
    pub fn delete(&mut self, i: usize) {
        let cache = &mut self.list[i];
        cache.status = Status::Deleting;
        let instance = cache.instance.take();
        let dir = self.paths.cache_dir(&cache.settings.name);
        cache.pending = Some(spawn(&self.runtime, &self.window, async move {
            if let Some(instance) = instance {
                instance.stop_saving(false).await;
            }
            let removed = match dir {
                Err(e) => Err(format!("no folder was removed: {e:#}")),
                Ok(dir) => match std::fs::remove_dir_all(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(format!("cannot remove {}: {e}", dir.display()))
                    }
                    _ => Ok(()),
                },
            };
            Outcome::Deleted(removed)
        }));
    }

    /// Changes the cache's size. Data over the new size is evicted (allkeys-lru), on tokio's
    /// blocking pool while the cache shows Scaling; the result goes to the Activity log.
    pub fn scale(&mut self, i: usize, sku: &'static Sku) {
        let cache = &mut self.list[i];
        let from = cache.settings.sku();
        cache.settings.sku = sku.id();
        let Some(instance) = cache.instance.clone() else {
            cache.log("Scaled", activity::scale_deferred(from, sku));
            self.save();
            return;
        };
        cache.status = Status::Scaling;
        let policy = cache.settings.eviction.engine_policy();
        cache.pending = Some(spawn(&self.runtime, &self.window, async move {
            let evicted = tokio::task::spawn_blocking(move || {
                let evicted = instance.set_maxmemory(sku.maxmemory(), EvictionPolicy::AllKeysLru);
                instance.set_maxmemory(sku.maxmemory(), policy);
                evicted
            })
            .await
            .unwrap_or(0);
            Outcome::Scaled {
                from,
                to: sku,
                evicted,
            }
        }));
        self.save();
    }

    /// "Back up now": a background save; its progress and outcome show in the live views.
    pub fn back_up_now(&mut self, i: usize) {
        let cache = &mut self.list[i];
        if let Some(Err(e)) = cache.instance.as_ref().map(|i| i.background_save()) {
            cache.log("Backup refused", e.to_string());
        }
    }

    /// "Rewrite now": an AOF rewrite; its progress and outcome show in the live views.
    pub fn rewrite_now(&mut self, i: usize) {
        let cache = &mut self.list[i];
        if let Some(Err(e)) = cache.instance.as_ref().map(|i| i.rewrite_aof()) {
            cache.log("Rewrite refused", e.to_string());
        }
    }

    /// Exports the cache's data to `path` while it keeps serving.
    pub fn export(&mut self, i: usize, path: PathBuf) {
        let cache = &mut self.list[i];
        let Some(instance) = cache.instance.clone() else {
            return;
        };
        cache.transfer = Some(Transfer::Export(path.clone()));
        cache.pending = Some(spawn(&self.runtime, &self.window, async move {
            Outcome::Exported(instance.export_rdb(path).await)
        }));
    }

    /// Replaces the cache's data with the RDB file at `path`; clients wait meanwhile.
    pub fn import(&mut self, i: usize, path: PathBuf) {
        let cache = &mut self.list[i];
        let Some(instance) = cache.instance.clone() else {
            return;
        };
        cache.status = Status::Importing;
        cache.transfer = Some(Transfer::Import(path.clone()));
        cache.pending = Some(spawn(&self.runtime, &self.window, async move {
            Outcome::Imported(instance.import_rdb(path).await)
        }));
    }

    /// Replaces one access key with a new random one.
    pub fn regenerate_key(&mut self, i: usize, primary: bool) {
        let cache = &mut self.list[i];
        let key = crate::model::new_access_key();
        let which = if primary {
            cache.settings.primary_key = key;
            "primary"
        } else {
            cache.settings.secondary_key = key;
            "secondary"
        };
        if let Some(instance) = &cache.instance {
            if cache.settings.access_keys {
                instance.set_access_keys(
                    Some(cache.settings.primary_key.clone()),
                    Some(cache.settings.secondary_key.clone()),
                );
            }
        }
        cache.log("Access key regenerated", activity::key_replaced(which));
        self.save();
    }

    /// Collects finished work, engine events and live samples. True if something shown changed
    /// (samples do not count: the charts repaint once a second on their own).
    /// `window` is woken whenever a running cache's engine logs an event (a scheduled save,
    /// a rewrite, an error), so an idle window updates without polling.
    pub fn poll(&mut self, window: &egui::Context) -> bool {
        self.window.get_or_init(|| window.clone());
        let mut changed = false;
        let mut settled = false;
        let mut deleted = Vec::new();
        let mut restart = Vec::new();
        for (i, cache) in self.list.iter_mut().enumerate() {
            if let (Some(instance), false) = (&cache.instance, cache.watched) {
                cache.watched = true;
                let mut events = instance.subscribe_events();
                let window = window.clone();
                self.runtime.spawn(async move {
                    while events.changed().await.is_ok() {
                        window.request_repaint();
                    }
                });
            }
            if let Some(promise) = cache.pending.take() {
                match promise.try_take() {
                    Ok(outcome) => {
                        settled = true;
                        match outcome {
                            Outcome::Started(result) => started(cache, result),
                            Outcome::Stopped => {
                                cache.status = Status::Stopped;
                                cache.log("Stopped", activity::STOPPED);
                                if std::mem::take(&mut cache.then_start) {
                                    restart.push(i);
                                }
                            }
                            Outcome::Scaled { from, to, evicted } => {
                                cache.status = Status::Running;
                                let result = activity::scaled(from, to, evicted);
                                cache.log("Scaled", result.clone());
                                cache.last_scale = Some(result);
                            }
                            Outcome::PersistenceSet(new, result) => {
                                cache.status = Status::Running;
                                let old = cache.settings.persistence;
                                match result {
                                    Ok(()) => {
                                        cache.settings.persistence = new;
                                        cache.log(
                                            "Persistence changed",
                                            activity::persistence_changed(old, new),
                                        );
                                    }
                                    Err(e) => cache.log(
                                        "Persistence change failed",
                                        activity::persistence_kept(old, &e),
                                    ),
                                }
                            }
                            Outcome::Exported(result) => {
                                let line = result.map(|r| activity::exported(&r));
                                finish_transfer(cache, "Export", line);
                            }
                            Outcome::Imported(result) => {
                                cache.status = Status::Running;
                                let line = result.map(|r| activity::imported(&r));
                                finish_transfer(cache, "Import", line);
                            }
                            Outcome::Deleted(Ok(())) => deleted.push(i),
                            Outcome::Deleted(Err(e)) => {
                                cache.status = Status::Failed(e.clone());
                                cache.log("Delete failed", e);
                            }
                        }
                    }
                    Err(promise) => cache.pending = Some(promise),
                }
            }
            changed |= collect_events(cache);
            // Samples only feed the charts, which repaint once a second on their own.
            sample(cache);
        }
        for i in restart {
            self.start(i);
        }
        for i in deleted.into_iter().rev() {
            self.list.remove(i);
        }
        if settled {
            self.save();
        }
        changed || settled
    }
}

fn started(cache: &mut Cache, result: Result<(Arc<Instance>, Option<RestoreReport>), String>) {
    let creating = cache.status == Status::Creating;
    match result {
        Ok((instance, report)) => {
            let note = activity::start_note(report, cache.settings.persistence, creating);
            cache.settings.port = instance.addr().port();
            cache.settings.running = true;
            cache.events_seen = 0;
            cache.watched = false;
            cache.instance = Some(instance);
            cache.status = Status::Running;
            cache.log("Started", note.clone());
            cache.data_note = Some(note);
        }
        Err(e) => {
            cache.status = if creating {
                Status::CreateFailed(e.clone())
            } else {
                Status::Failed(e.clone())
            };
            cache.log(
                if creating {
                    "Create failed"
                } else {
                    "Start failed"
                },
                e,
            );
        }
    }
}

/// Ends an export or import. The engine logs what it ran (Exported, ImportFailed ...);
/// what it refused to start is logged here.
fn finish_transfer(cache: &mut Cache, what: &str, outcome: Result<String, TransferError>) {
    cache.transfer = None;
    let line = match outcome {
        Ok(line) => line,
        Err(e) => {
            let line = activity::transfer_failed(what, &e);
            if matches!(
                e,
                TransferError::Busy | TransferError::Loading | TransferError::Interrupted
            ) {
                cache.log(&format!("{what} refused"), line.clone());
            }
            line
        }
    };
    cache.last_transfer = Some(line);
}

/// Copies the engine's new events (saves, restores, rewrites, errors) into the Activity log.
fn collect_events(cache: &mut Cache) -> bool {
    let Some(instance) = &cache.instance else {
        return false;
    };
    let events = instance.events_since(cache.events_seen);
    let Some(last) = events.last() else {
        return false;
    };
    cache.events_seen = last.seq;
    for event in events {
        if let EventData::Restore(report) = &event.data {
            cache.restores.push(report.clone());
        }
        activity::push(
            &mut cache.activity,
            Activity {
                at: event.at,
                what: format!("{:?}", event.kind),
                detail: event.detail,
            },
        );
    }
    true
}

/// Takes a chart sample about once a second.
fn sample(cache: &mut Cache) {
    let Some(instance) = &cache.instance else {
        return;
    };
    if cache
        .sampled_at
        .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
    {
        return;
    }
    cache.sampled_at = Some(Instant::now());
    let telemetry = instance.telemetry();
    let t = cache.sampling_since.elapsed().as_secs_f64();
    let messages_total = telemetry.pubsub_messages as f64;
    let messages_per_sec = match cache.samples.back() {
        Some(prev) if t > prev.t && messages_total >= prev.messages_total => {
            (messages_total - prev.messages_total) / (t - prev.t)
        }
        _ => 0.0,
    };
    if cache.samples.len() == SAMPLES {
        cache.samples.pop_front();
    }
    cache.samples.push_back(Sample {
        t,
        messages_total,
        messages_per_sec,
        ops_per_sec: telemetry.ops_per_sec as f64,
        clients: telemetry.connected_clients as f64,
        aof_bytes: telemetry
            .aof
            .figures
            .as_ref()
            .map_or(0.0, |f| f.current_size as f64),
    });
}
