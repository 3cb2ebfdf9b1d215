//! A client inside the process (the app's console): it keeps its state between commands as
//! a connection does (database, MULTI, WATCH), is listed by CLIENT LIST, and waits in blocking
//! commands (BLPOP, XREAD BLOCK...) until it is served, times out or is unblocked, through
//! the same blocked-client queue as network clients.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::batch::Batch;
use super::blocked::{leave_queue, BlockedCount, Waiter};
use super::client::ClientState;
use super::Shared;
use crate::commands::{self, Ctx};
use crate::persistence::aof::Flushed;
use crate::protocol::{Output, Reply};

pub struct LocalClient {
    shared: Arc<Shared>,
    state: ClientState,
}

impl LocalClient {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let addr = shared.local_addr();
        let info = shared.register_client(addr, addr);
        let mut state = ClientState::new(info, true);
        state.auth_generation = shared.auth_generation();
        LocalClient { shared, state }
    }

    /// The database it works on (SELECT changes it).
    pub fn db(&self) -> usize {
        self.state.db
    }

    /// The client's id, as CLIENT LIST and CLIENT UNBLOCK name it.
    pub fn id(&self) -> u64 {
        self.state.id()
    }

    /// Subscribed to a channel or pattern: messages are waiting to be read (`messages`).
    pub fn subscribed(&self) -> bool {
        self.state.subscribed()
    }

    /// Waits for Pub/Sub messages and returns those that have arrived, decoded (never, if
    /// the client never subscribed).
    pub async fn messages(&mut self) -> Vec<Reply> {
        if self.state.pubsub.is_none() {
            return std::future::pending().await;
        }
        let info = self.state.info.clone();
        let mailbox = &info.mailbox;
        loop {
            let mut out = Output::new();
            let taken = mailbox.take_into(&mut out);
            if taken > 0 {
                mailbox.written(taken);
                return Reply::decode_all(&out.to_vec());
            }
            mailbox.arrived.notified().await;
        }
    }

    /// Whether CLIENT PAUSE holds `args` back now (Some(writes)).
    fn paused(&mut self, args: &[Vec<u8>]) -> Option<bool> {
        if !self.shared.paused_at(crate::util::now_ms()) {
            return None;
        }
        let args = commands::arg_slices(args);
        let writes = commands::resolve(&args)
            .ok()
            .map(|spec| commands::may_replicate(&self.shared, &self.state, spec, &args))?;
        self.shared
            .pause
            .borrow()
            .holds(crate::util::now_ms(), writes)
            .then_some(writes)
    }

    /// Runs one command; a blocking command that finds nothing waits until it is served.
    /// The reply is a tree (nothing left encoded).
    pub async fn run<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_ref().to_vec()).collect();
        if args.is_empty() {
            return Reply::error("ERR empty command");
        }
        let shared = self.shared.clone();
        // Held back by CLIENT PAUSE: it runs once the pause ends.
        while let Some(writes) = self.paused(&args) {
            let info = self.state.info.clone();
            let _counted = BlockedCount::register(&shared, &info);
            if !super::pause::wait_unpaused(&shared, &info, writes).await {
                return Reply::error("ERR the client was killed");
            }
        }
        let (done, mut served) = oneshot::channel();
        let (reply, deadline, flushed) = shared.wait_for_keyspace(|| {
            let mut batch = Batch::begin(&shared);
            let mut ctx = Ctx::new(&mut batch, &mut self.state, &shared);
            let reply = commands::execute(&mut ctx, &commands::arg_slices(&args));
            let block = ctx.block.take();
            shared.stats.commands_processed(1);
            let deadline = block.map(|block| {
                let retry = block.retry_args.unwrap_or_else(|| args.clone());
                let waiter = Waiter::new(
                    &self.state,
                    &commands::arg_slices(&retry),
                    reply.clone(),
                    done,
                );
                shared.blocked.lock().add(&mut batch, waiter);
                block.deadline_ms
            });
            (reply, deadline, batch.end())
        });
        let reply = match deadline {
            None => reply,
            Some(deadline) => {
                let info = self.state.info.clone();
                let _counted = BlockedCount::register(&shared, &info);
                let remaining = deadline
                    .map(|d| Duration::from_millis(d.saturating_sub(crate::util::now_ms())));
                let timeout = async {
                    match remaining {
                        Some(r) => tokio::time::sleep(r).await,
                        None => std::future::pending().await,
                    }
                };
                let id = self.id();
                let outcome = tokio::select! {
                    reply = &mut served => reply.ok(),
                    _ = timeout => leave_queue(&shared, id, &mut served).await,
                };
                self.state.block_deadline = None;
                outcome.unwrap_or(reply)
            }
        };
        match flushed {
            Flushed::Durable => reply.into_tree(),
            Flushed::NotDurable(e) => Reply::Error(e.to_string()),
        }
    }
}

impl Drop for LocalClient {
    fn drop(&mut self) {
        super::pubsub::leave(&self.shared, &mut self.state);
        if self.state.tracking.on {
            let shared = &self.shared;
            shared.wait_for_keyspace(|| shared.keyspace.lock().tracking.disable(self.state.id()));
        }
        self.shared.unregister_client(self.id());
    }
}
