//! CacheDesk's cache engine: a Redis-compatible server as a library.
//!
//! An [`Instance`] is one cache: its own keyspace (16 databases), loopback listener, settings,
//! telemetry and event log. Many instances live in one process; starting, stopping or dropping
//! one leaves the others alone. The desktop app and the headless `cachedesk-server` are two thin
//! fronts on this crate.
//!
//! Layers, in the direction bytes flow: `protocol` (RESP frames in, replies out) → `server`
//! (listener, connections, batching) → `commands` (one file per family) → `keyspace` (values,
//! expiry, eviction, memory accounting).

// Nothing a client, a file or a user sends may reach an unwrap: the engine handles errors.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod commands;
pub mod config;
#[doc(hidden)]
pub mod fuzz;
pub mod instance;
pub mod keyspace;
pub mod long_double;
pub mod persistence;
pub mod protocol;
pub mod scripting;
pub mod server;
pub mod telemetry;
pub mod util;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use config::InstanceConfig;
pub use instance::local::LocalClient;
pub use keyspace::EvictionPolicy;
pub use persistence::aof::{AppendFsync, RewriteError, RewriteReason, RewriteReport};
pub use persistence::mode::ModeError;
pub use persistence::transfer::{ExportReport, TransferError};
pub use persistence::{
    JobHandle, JobKind, JobOutcome, JobReport, PersistenceMode, PersistenceStatus, RdbSchedule,
    RestoreReport, RunningJob, SaveError, SaveReason, SaveReport,
};
pub use protocol::Reply;
pub use telemetry::{Event, EventData, EventKind, PersistenceFiles, Telemetry};

/// The Redis version whose behaviour the engine follows (reported by INFO and HELLO).
pub const REDIS_VERSION: &str = "7.0.15";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// One running cache.
#[derive(Debug)]
pub struct Instance {
    shared: Arc<instance::Shared>,
    /// The listener's task, until `stop` takes it.
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Instance {
    /// Starts an instance on the current tokio runtime and returns once it is listening. In
    /// RDB mode an existing dump is loaded in the background meanwhile (clients get -LOADING
    /// until it is in; `wait_loaded` waits for it). In AOF mode the AOF is replayed the same way
    /// and then appended to.
    pub async fn start(config: InstanceConfig) -> Result<Instance, EngineError> {
        let bind_text = format!("{}:{}", config.bind, config.port);
        let dirs = [config.dir.clone(), config.dir.join(&config.appenddirname)];
        let shared = instance::Shared::new(config);
        let listener = server::bind(&shared)
            .await
            .map_err(|source| EngineError::Bind {
                addr: bind_text,
                source,
            })?;
        let addr = shared.local_addr();
        shared
            .events
            .push(EventKind::Started, format!("listening on {addr}"));
        for stale in dirs
            .iter()
            .flat_map(|d| persistence::save::remove_stale_temp_files(d))
        {
            shared.events.push(
                EventKind::Error,
                format!("removed {} left by an interrupted save", stale.display()),
            );
        }
        persistence::restore::start(&shared);
        *shared.telemetry.lock() = Arc::new(Telemetry::capture(&shared));
        let task = tokio::spawn(server::serve(shared.clone(), listener));
        Ok(Instance {
            shared,
            task: parking_lot::Mutex::new(Some(task)),
        })
    }

    /// Waits until the data set is loaded; the restore's report, if there was a dump. An error
    /// means the dump could not be loaded (the instance then stops; the file is untouched).
    pub async fn wait_loaded(&self) -> Result<Option<RestoreReport>, String> {
        let jobs = &self.shared.persistence.jobs;
        jobs.wait_until(|running| !running.is_some_and(|j| j.kind.loads()))
            .await;
        match self.shared.persistence.status().last_restore {
            Some(report) => match &report.error {
                Some(e) => Err(e.clone()),
                None => Ok(Some(report)),
            },
            None => Ok(None),
        }
    }

    /// Starts a background save ("Back up now"); the handle gives its outcome.
    pub fn background_save(&self) -> Result<JobHandle, SaveError> {
        persistence::save::start_background(
            &self.shared,
            &mut self.shared.keyspace.lock(),
            SaveReason::Requested,
        )
    }

    /// Saving and loading as of now: last save, history, last restore.
    pub fn persistence_status(&self) -> PersistenceStatus {
        self.shared.persistence.status()
    }

    /// The persistence job running now (a save, rewrite, export, import or the load), with
    /// its progress.
    pub fn running_job(&self) -> Option<RunningJob> {
        self.shared.persistence.jobs.running()
    }

    /// Waits until no persistence job runs.
    pub async fn wait_idle(&self) {
        self.shared.persistence.jobs.idle().await
    }

    /// Starts an AOF rewrite ("Rewrite now"); the handle gives its outcome. With a save or an
    /// export running, it is scheduled after it (no handle then).
    pub fn rewrite_aof(&self) -> Result<Option<JobHandle>, RewriteError> {
        let started = persistence::aof::rewrite::start(
            &self.shared,
            &mut self.shared.keyspace.lock(),
            RewriteReason::Requested,
        );
        match started {
            Ok(handle) => Ok(Some(handle)),
            Err(RewriteError::Busy(_)) => {
                self.shared.persistence.update(|st| st.aof.scheduled = true);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Figures of the open AOF (sizes, fsync health); None unless the instance runs AOF.
    pub fn aof_figures(&self) -> Option<persistence::aof::AofFigures> {
        persistence::aof::figures(&self.shared)
    }

    /// Switches persistence on the running instance (the portal's Data persistence panel)
    /// and returns once the new mode is in force; the old mode's files are removed then.
    /// Traffic goes on meanwhile.
    pub async fn set_persistence(&self, mode: PersistenceMode) -> Result<(), ModeError> {
        persistence::mode::apply(&self.shared, mode).await
    }

    /// Exports the data as of now to an RDB file at `path` (the portal's Export) while the
    /// instance keeps serving; returns once the file is written.
    pub async fn export_rdb(&self, path: PathBuf) -> Result<ExportReport, TransferError> {
        let export = persistence::transfer::start_export(&self.shared, path)?;
        persistence::transfer::export_outcome(export).await
    }

    /// Replaces the data with the RDB file at `path` (the portal's Import); clients get
    /// -LOADING meanwhile. A file that fails to read leaves the data as it was.
    pub async fn import_rdb(&self, path: PathBuf) -> Result<RestoreReport, TransferError> {
        persistence::transfer::import(&self.shared, path).await
    }

    /// The address clients connect to (CONFIG SET port moves it).
    pub fn addr(&self) -> SocketAddr {
        self.shared.local_addr()
    }

    pub fn name(&self) -> String {
        self.shared.config().name
    }

    /// The latest figures (refreshed by the instance a few times a second; cheap to call).
    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.shared.telemetry.lock().clone()
    }

    /// Figures read right now (takes the keyspace lock briefly).
    pub fn telemetry_now(&self) -> Telemetry {
        Telemetry::capture(&self.shared)
    }

    pub fn events_since(&self, after: u64) -> Vec<Event> {
        self.shared.events.since(after)
    }

    pub fn subscribe_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.events.subscribe()
    }

    pub fn config(&self) -> InstanceConfig {
        self.shared.config()
    }

    /// Replaces the access keys; new connections (and AUTH) use them at once.
    pub fn set_access_keys(&self, primary: Option<String>, secondary: Option<String>) {
        let mut cfg = self.shared.config();
        cfg.primary_key = primary;
        cfg.secondary_key = secondary;
        self.shared.set_config(cfg);
    }

    /// Changes maxmemory and evicts at once if the data no longer fits. Returns the keys
    /// evicted.
    pub fn set_maxmemory(&self, maxmemory: u64, policy: EvictionPolicy) -> u64 {
        let mut cfg = self.shared.config();
        cfg.maxmemory = maxmemory;
        cfg.maxmemory_policy = policy;
        self.shared.set_config(cfg.clone());
        let mut ks = self.shared.keyspace.lock();
        ks.config = cfg.keyspace_config();
        let before = ks.stats.evicted_keys;
        ks.now = util::now_ms();
        ks.evict_to_limit();
        ks.stats.evicted_keys - before
    }

    /// A client inside the process that keeps its state between commands and waits in
    /// blocking ones (the app's console).
    pub fn local_client(&self) -> LocalClient {
        LocalClient::new(self.shared.clone())
    }

    /// Runs one command in-process, as a client on database `db` would (no network).
    pub fn execute<A: AsRef<[u8]>>(&self, db: usize, args: &[A]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(AsRef::as_ref).collect();
        if args.is_empty() {
            return Reply::error("ERR empty command");
        }
        let addr = self.addr();
        let info = Arc::new(instance::client::ClientInfo::new(
            0,
            addr,
            addr,
            Default::default(),
        ));
        let mut client = instance::client::ClientState::new(info, true);
        client.auth_generation = self.shared.auth_generation();
        client.db = db.min(keyspace::DB_COUNT - 1);
        client.in_exec = true;
        let mut batch = instance::batch::Batch::begin(&self.shared);
        let mut ctx = commands::Ctx::new(&mut batch, &mut client, &self.shared);
        let reply = commands::execute(&mut ctx, &args);
        self.shared.stats.commands_processed(1);
        match batch.end() {
            persistence::aof::Flushed::Durable => reply.into_tree(),
            persistence::aof::Flushed::NotDurable(e) => Reply::Error(e.to_string()),
        }
    }

    /// Stops as `stop` does, saving a dump first if `save` (SHUTDOWN SAVE) or not at all
    /// (SHUTDOWN NOSAVE), whatever the save points say.
    pub async fn stop_saving(&self, save: bool) {
        self.shared
            .persistence
            .update(|st| st.shutdown_save = Some(save));
        self.stop().await
    }

    /// A signal that turns true when the instance is asked to stop (SHUTDOWN or `stop`).
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shared.shutdown_signal()
    }

    /// Stops listening, closes every connection and waits until they are gone; then saves
    /// as redis-server does on shutdown (with SHUTDOWN SAVE, or when save points are set).
    /// Other handles to the instance (a console command still running) do not hold it up;
    /// a second call returns at once.
    pub async fn stop(&self) {
        self.shared.request_shutdown();
        let task = self.task.lock().take();
        let Some(task) = task else {
            return;
        };
        let _ = task.await;
        let shared = self.shared.clone();
        // The save on stop waits for the running job (a save, a rewrite) to end first.
        let save = if persistence::save::saves_on_stop(&shared) {
            let jobs = &shared.persistence.jobs;
            Some(
                jobs.begin_when_free(JobKind::Save(SaveReason::Shutdown))
                    .await,
            )
        } else {
            None
        };
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(job) = save {
                persistence::save::save_on_stop(&shared, job);
            }
            persistence::aof::stop(&shared, &mut shared.keyspace.lock());
        })
        .await;
        self.shared.events.push(EventKind::Stopped, "stopped");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.shared.request_shutdown();
    }
}
