//! Clients blocked on keys (BLPOP, BLMOVE, BLMPOP, BZPOPMIN, BZMPOP...), in the order they
//! blocked. They are served where a batch ends, under the batch's hold of the keyspace lock,
//! as Redis serves them before its next command: each key the batch created wakes the
//! clients waiting on it, first blocked first served, and what a served command creates (a
//! BLMOVE's destination) wakes the next ones in the same pass.
//!
//! Lock order: the keyspace, then this registry.

use tokio::sync::oneshot;

use super::client::{ClientInfo, ClientState};
use super::Shared;
use crate::commands::{self, Ctx};
use crate::keyspace::{Blob, Keyspace};
use crate::protocol::Reply;

/// A blocked client's command, kept to be run again when one of its keys gets a value.
pub struct Waiter {
    pub client_id: u64,
    db: usize,
    keys: Vec<Blob>,
    args: Vec<Vec<u8>>,
    /// The state the command runs with when served (the client's own stays with its
    /// connection, which is only waiting).
    state: ClientState,
    /// The reply if the wait ends unserved (the timeout's).
    pub timeout_reply: Reply,
    /// Where the reply goes once served.
    pub done: oneshot::Sender<Reply>,
}

impl Waiter {
    /// A waiter for `args`, which just blocked for `client`.
    pub fn new(
        client: &ClientState,
        args: &[&[u8]],
        timeout_reply: Reply,
        done: oneshot::Sender<Reply>,
    ) -> Self {
        let keys = commands::resolve(args)
            .map(|spec| {
                spec.key_positions(args)
                    .into_iter()
                    .map(|i| Blob::from_slice(args[i]))
                    .collect()
            })
            .unwrap_or_default();
        let mut state = ClientState::new(client.info.clone(), true);
        state.db = client.db;
        state.resp3 = client.resp3;
        state.auth_generation = client.auth_generation;
        state.serving_blocked = true;
        state.block_deadline = client.block_deadline;
        Waiter {
            client_id: client.id(),
            db: client.db,
            keys,
            args: args.iter().map(|a| a.to_vec()).collect(),
            state,
            timeout_reply,
            done,
        }
    }

    fn waits_on(&self, db: usize, key: &[u8]) -> bool {
        self.db == db && self.keys.iter().any(|k| &k[..] == key)
    }
}

/// The blocked clients, oldest first.
#[derive(Default)]
pub struct BlockedClients {
    waiters: Vec<Waiter>,
}

impl BlockedClients {
    pub fn add(&mut self, ks: &mut Keyspace, waiter: Waiter) {
        self.waiters.push(waiter);
        ks.track_created = true;
    }

    /// Takes a client out of the queue; None if it is not blocked (or was just served).
    pub fn remove(&mut self, ks: &mut Keyspace, client_id: u64) -> Option<Waiter> {
        let at = self.waiters.iter().position(|w| w.client_id == client_id)?;
        let waiter = self.waiters.remove(at);
        ks.track_created = !self.waiters.is_empty();
        Some(waiter)
    }

    /// After SWAPDB or a flush of the databases `dbs` selects: every key clients wait on
    /// there counts as created, so each waiter looks again (a list may be there now, or an
    /// XREADGROUP's stream gone).
    pub fn keys_replaced(&self, ks: &mut Keyspace, dbs: impl Fn(usize) -> bool) {
        for waiter in self.waiters.iter().filter(|w| dbs(w.db)) {
            for key in &waiter.keys {
                ks.created.push((waiter.db, key.clone()));
            }
        }
    }

    /// Serves the clients the batch's new keys can serve, in the order they blocked; returns
    /// their replies, to send once the batch is durable.
    pub fn serve(
        &mut self,
        ks: &mut Keyspace,
        shared: &Shared,
    ) -> Vec<(oneshot::Sender<Reply>, Reply)> {
        let mut served = Vec::new();
        let mut next = 0;
        while next < ks.created.len() {
            let (db, key) = ks.created[next].clone();
            next += 1;
            let mut i = 0;
            while i < self.waiters.len() {
                if !self.waiters[i].waits_on(db, &key) {
                    i += 1;
                    continue;
                }
                let waiter = &mut self.waiters[i];
                let args = commands::arg_slices(&waiter.args);
                let mut ctx = Ctx::new(ks, &mut waiter.state, shared);
                let reply = commands::execute(&mut ctx, &args);
                if ctx.block.is_some() {
                    i += 1;
                    continue;
                }
                let waiter = self.waiters.remove(i);
                served.push((waiter.done, reply));
            }
        }
        ks.created.clear();
        ks.track_created = !self.waiters.is_empty();
        served
    }
}

/// Takes a client out of the blocked queue as its wait ends unserved. None if it left the
/// queue; if it was served meanwhile, the reply it was served.
pub async fn leave_queue(
    shared: &Shared,
    id: u64,
    served: &mut oneshot::Receiver<Reply>,
) -> Option<Reply> {
    let left = shared.wait_for_keyspace(|| {
        let mut ks = shared.keyspace.lock();
        let left = shared.blocked.lock().remove(&mut ks, id).is_some();
        left
    });
    if left {
        None
    } else {
        served.await.ok()
    }
}

/// Counts a client as blocked (for INFO, and so `timeout` spares it) while it lives, however
/// the wait ends.
pub struct BlockedCount<'a>(&'a Shared, &'a ClientInfo);

impl<'a> BlockedCount<'a> {
    pub fn register(shared: &'a Shared, info: &'a ClientInfo) -> Self {
        shared.stats.note_blocked(true);
        info.set_blocked(true);
        BlockedCount(shared, info)
    }
}

impl Drop for BlockedCount<'_> {
    fn drop(&mut self) {
        self.1.set_blocked(false);
        self.0.stats.note_blocked(false);
    }
}
