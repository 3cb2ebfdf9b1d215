//! A batch: the commands a connection, a blocked client's retry or the console runs under one
//! hold of the keyspace lock, and the one place a batch ends: the clients blocked on keys it
//! created are served, the keyspace's write hooks take their turn (the snapshot walk
//! advances), and the batch's AOF feed goes to the appender, whose lock is taken before the
//! keyspace's is released (so batches reach the file in the order they ran). The served
//! clients' replies leave once the batch is durable, as the batch's own do.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use parking_lot::MutexGuard;

use super::Shared;
use crate::keyspace::Keyspace;
use crate::persistence::aof::{self, Flushed};
use crate::protocol::Reply;

/// The keyspace, locked for a batch of commands.
pub struct Batch<'a> {
    shared: &'a Shared,
    ks: MutexGuard<'a, Keyspace>,
}

impl<'a> Batch<'a> {
    /// Takes the keyspace lock for a batch. Its first command reads the clock.
    pub fn begin(shared: &'a Shared) -> Self {
        let mut ks = shared.keyspace.lock();
        ks.clock_reusable = false;
        Batch { shared, ks }
    }

    /// Takes the keyspace lock for a client's batch, unless a script holds it past
    /// busy-reply-threshold: then None, and the client is answered -BUSY without it. While a
    /// script runs, the wait happens off the worker (`Shared::wait_for_keyspace`).
    pub fn begin_unless_busy(shared: &'a Shared) -> Option<Self> {
        let mut ks = shared.wait_for_keyspace(|| loop {
            if let Some(ks) = shared.keyspace.try_lock_for(Duration::from_millis(5)) {
                return Some(ks);
            }
            if shared.script_status.timed_out() {
                return None;
            }
        })?;
        ks.clock_reusable = false;
        Some(Batch { shared, ks })
    }

    /// Ends the batch and releases the keyspace. `NotDurable` means the batch's writes are
    /// not where appendfsync promises them: none of its replies may leave as they are.
    pub fn end(self) -> Flushed {
        let Batch { shared, mut ks } = self;
        // Events raised outside a command (eviction before a refused one).
        super::pubsub::publish_notices(shared, &mut ks);
        let served = if ks.created.is_empty() {
            Vec::new()
        } else {
            shared.blocked.lock().serve(&mut ks, shared)
        };
        // Invalidations still owed (the BCAST prefixes' included), as Redis sends them before
        // it sleeps.
        super::tracking::end_of_batch(shared, &mut ks);
        ks.batch_ended();
        let flushed = match aof::take_batch_feed(&mut ks) {
            None => Flushed::Durable,
            Some(feed) => {
                let appender = shared.persistence.aof.lock();
                drop(ks);
                aof::write_batch_feed(shared, appender, feed)
            }
        };
        for (done, reply) in served {
            let _ = done.send(match &flushed {
                Flushed::Durable => reply,
                Flushed::NotDurable(e) => Reply::Error(e.to_string()),
            });
        }
        flushed
    }
}

impl Deref for Batch<'_> {
    type Target = Keyspace;
    fn deref(&self) -> &Keyspace {
        &self.ks
    }
}

impl DerefMut for Batch<'_> {
    fn deref_mut(&mut self) -> &mut Keyspace {
        &mut self.ks
    }
}
