//! Client-side caching's table (CLIENT TRACKING), as Redis 7.0's tracking.c keeps it: which
//! clients may hold which keys (by key name, across databases), the prefixes clients in BCAST
//! mode follow, and the invalidations owed to them. The keyspace calls `invalidate` as keys
//! change and `flush` as databases empty; the instance delivers what is owed
//! (instance/tracking.rs), encoding each message for its receiver.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use indexmap::IndexMap;

use super::Blob;

/// One tracking client's settings that decide what it is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    /// The client invalidations go to instead of this one (0: this one).
    pub redirect: u64,
    pub bcast: bool,
    /// Not sent invalidations of keys it changed itself.
    pub noloop: bool,
    /// The redirect target went away (CLIENT LIST's R, TRACKINGINFO's broken_redirect).
    pub broken: bool,
    /// Its BCAST prefixes, sorted.
    pub prefixes: Vec<Blob>,
}

/// CLIENT TRACKING ON's options.
#[derive(Debug, Clone, Default)]
pub struct TrackingOptions {
    pub redirect: u64,
    pub bcast: bool,
    pub noloop: bool,
    /// BCAST prefixes (none: every key).
    pub prefixes: Vec<Blob>,
}

/// What one message says is stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// Shared by the clients of one BCAST prefix (one list, however many receive it).
    Keys(Arc<[Blob]>),
    /// Every key (a database was flushed): sent as a null.
    All,
}

/// An invalidation owed to a tracking client (delivered to it or to its redirect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    pub to: u64,
    pub stale: Stale,
}

/// The clients following one BCAST prefix, and the keys under it changed since the last
/// broadcast, each with the client that changed it last (None: the server itself).
#[derive(Debug, Default)]
struct Prefix {
    clients: Vec<u64>,
    changed: BTreeMap<Blob, Option<u64>>,
}

/// The instance's tracking state (one per keyspace).
#[derive(Debug, Default)]
pub struct Tracking {
    /// Key name → the ids of the clients that read it since it last changed, sorted.
    keys: IndexMap<Blob, Vec<u64>, foldhash::fast::FixedState>,
    /// Entries of `keys`' lists, summed (INFO's tracking_total_items).
    items: usize,
    /// Clients with tracking on.
    trackers: HashMap<u64, Tracker>,
    prefixes: BTreeMap<Blob, Prefix>,
    /// Some prefix noted a changed key since the last broadcast.
    broadcast_due: bool,
    /// The client whose command runs (NOLOOP and the order of its own messages depend on
    /// it), and whether its command is executing right now.
    current: Option<u64>,
    executing: bool,
    /// The change being made is the server's own (expiry, eviction): BCAST records no client
    /// as its author, so a NOLOOP client hears of it too.
    server_change: bool,
    /// Owed now, in order.
    outbox: Vec<Invalidation>,
    /// Owed to the running client, sent after its reply (as Redis's tracking_pending_keys).
    after_reply: Vec<Invalidation>,
    /// Rounds in a row `enforce_limit` could not get under the limit (its effort grows).
    limit_misses: u32,
}

impl Tracking {
    /// Nothing to look up when a key changes.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.keys.is_empty() && self.prefixes.is_empty()
    }

    /// The client `id`'s settings, if it tracks.
    pub fn tracker(&self, id: u64) -> Option<&Tracker> {
        self.trackers.get(&id)
    }

    /// Records that the redirect target of client `id` is gone.
    pub fn mark_broken(&mut self, id: u64) {
        if let Some(t) = self.trackers.get_mut(&id) {
            t.broken = true;
        }
    }

    /// Sets the client whose request runs (None between requests), and whether its command
    /// is executing (then its own invalidations wait for its reply).
    pub fn set_current(&mut self, client: Option<u64>, executing: bool) {
        self.current = client;
        self.executing = executing;
    }

    /// Marks the changes that follow as the server's own (true) or the running client's.
    pub fn set_server_change(&mut self, on: bool) {
        self.server_change = on;
    }

    /// Turns tracking on for client `id` (again, possibly with new options), as Redis's
    /// enableTracking: the redirect and modes are replaced, BCAST prefixes are added.
    pub fn enable(&mut self, id: u64, options: TrackingOptions) {
        let tracker = self.trackers.entry(id).or_default();
        tracker.redirect = options.redirect;
        tracker.broken = false;
        tracker.noloop = options.noloop;
        tracker.bcast = options.bcast;
        if !options.bcast {
            return;
        }
        let prefixes = if options.prefixes.is_empty() {
            vec![Blob::new()]
        } else {
            options.prefixes
        };
        for prefix in prefixes {
            if let Err(at) = tracker.prefixes.binary_search(&prefix) {
                tracker.prefixes.insert(at, prefix.clone());
                self.prefixes.entry(prefix).or_default().clients.push(id);
            }
        }
    }

    /// Turns tracking off for client `id` (CLIENT TRACKING OFF, RESET, a disconnect). Its
    /// entries in the key table stay until those keys change, as in Redis.
    pub fn disable(&mut self, id: u64) {
        let Some(tracker) = self.trackers.remove(&id) else {
            return;
        };
        for prefix in tracker.prefixes {
            if let Some(p) = self.prefixes.get_mut(&prefix) {
                p.clients.retain(|&c| c != id);
                if p.clients.is_empty() {
                    self.prefixes.remove(&prefix);
                }
            }
        }
    }

    /// Remembers that client `id` read `key`: it is told when the key changes.
    pub fn remember(&mut self, id: u64, key: &[u8]) {
        let clients = match self.keys.get_mut(key) {
            Some(clients) => clients,
            None => self.keys.entry(Blob::from_slice(key)).or_default(),
        };
        if let Err(at) = clients.binary_search(&id) {
            clients.insert(at, id);
            self.items += 1;
        }
    }

    /// `key` changed (or was dropped from the table, `bcast` false): the clients that read it
    /// are owed an invalidation and forget it, and BCAST prefixes note it for their next
    /// broadcast, as Redis's trackingInvalidateKey.
    pub fn invalidate(&mut self, key: &[u8], bcast: bool) {
        if bcast && !self.prefixes.is_empty() {
            let author = if self.server_change {
                None
            } else {
                self.current
            };
            for (prefix, p) in self.prefixes.iter_mut() {
                if key.starts_with(prefix) {
                    p.changed.insert(Blob::from_slice(key), author);
                    self.broadcast_due = true;
                }
            }
        }
        let Some(clients) = self.keys.swap_remove(key) else {
            return;
        };
        self.items -= clients.len();
        for id in clients {
            let Some(tracker) = self.trackers.get(&id) else {
                continue;
            };
            let own = self.current == Some(id);
            if tracker.bcast || (tracker.noloop && own) {
                continue;
            }
            let message = Invalidation {
                to: id,
                stale: Stale::Keys(Arc::new([Blob::from_slice(key)])),
            };
            if own && self.executing {
                self.after_reply.push(message);
            } else {
                self.outbox.push(message);
            }
        }
    }

    /// Every database was flushed (or one, or two swapped): every tracking client is told
    /// all its keys are stale, and the key table is emptied.
    pub fn flush(&mut self) {
        let mut ids: Vec<u64> = self.trackers.keys().copied().collect();
        ids.sort_unstable();
        for to in ids {
            let message = Invalidation {
                to,
                stale: Stale::All,
            };
            if self.current == Some(to) {
                self.after_reply.push(message);
            } else {
                self.outbox.push(message);
            }
        }
        self.keys = IndexMap::default();
        self.items = 0;
    }

    /// Keeps the key table within `max_keys` entries (0: no limit) by dropping random keys,
    /// whose readers are told as if they changed; the effort grows while it falls short, as
    /// Redis's trackingLimitUsedSlots.
    pub fn enforce_limit(&mut self, max_keys: usize) {
        if max_keys == 0 || self.keys.len() <= max_keys {
            self.limit_misses = 0;
            return;
        }
        let effort = 100 * (self.limit_misses as usize + 1);
        for _ in 0..effort {
            if self.keys.is_empty() {
                break;
            }
            let at = rand::random_range(0..self.keys.len());
            let Some((key, _)) = self.keys.get_index(at) else {
                break;
            };
            let key = key.clone();
            self.invalidate(&key, false);
            if self.keys.len() <= max_keys {
                self.limit_misses = 0;
                return;
            }
        }
        self.limit_misses += 1;
    }

    /// Moves what the BCAST prefixes noted into the outbox: each prefix's changed keys to
    /// each of its clients, less (for a NOLOOP client) those it changed itself, as Redis's
    /// trackingBroadcastInvalidationMessages.
    pub fn broadcast(&mut self) {
        if !std::mem::take(&mut self.broadcast_due) {
            return;
        }
        let Tracking {
            prefixes,
            trackers,
            outbox,
            ..
        } = self;
        for prefix in prefixes.values_mut() {
            if prefix.changed.is_empty() {
                continue;
            }
            let changed = std::mem::take(&mut prefix.changed);
            let all: Arc<[Blob]> = changed.keys().cloned().collect();
            for &to in &prefix.clients {
                let noloop = trackers.get(&to).is_some_and(|t| t.noloop);
                let keys: Arc<[Blob]> = if noloop && changed.values().any(|by| *by == Some(to)) {
                    changed
                        .iter()
                        .filter(|(_, by)| **by != Some(to))
                        .map(|(key, _)| key.clone())
                        .collect()
                } else {
                    all.clone()
                };
                if !keys.is_empty() {
                    outbox.push(Invalidation {
                        to,
                        stale: Stale::Keys(keys),
                    });
                }
            }
        }
    }

    /// Takes the invalidations owed now.
    pub fn take_outbox(&mut self) -> Vec<Invalidation> {
        std::mem::take(&mut self.outbox)
    }

    /// Takes the invalidations owed to the running client after its reply.
    pub fn take_after_reply(&mut self) -> Vec<Invalidation> {
        std::mem::take(&mut self.after_reply)
    }

    /// Something is owed (now or after a reply), or a prefix has keys to broadcast.
    pub fn has_mail(&self) -> bool {
        !self.outbox.is_empty() || !self.after_reply.is_empty() || self.broadcast_due
    }

    /// INFO's figures: tracking clients, keys, items, prefixes.
    pub fn stats(&self) -> TrackingStats {
        TrackingStats {
            clients: self.trackers.len(),
            keys: self.keys.len(),
            items: self.items,
            prefixes: self.prefixes.len(),
        }
    }
}

/// INFO's tracking figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackingStats {
    pub clients: usize,
    pub keys: usize,
    pub items: usize,
    pub prefixes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(stale: &Stale) -> Vec<&[u8]> {
        match stale {
            Stale::Keys(keys) => keys.iter().map(|k| &k[..]).collect(),
            Stale::All => Vec::new(),
        }
    }

    #[test]
    fn a_change_invalidates_each_reader_once_and_forgets_the_key() {
        let mut t = Tracking::default();
        t.enable(1, TrackingOptions::default());
        t.enable(2, TrackingOptions::default());
        t.remember(1, b"k");
        t.remember(1, b"k");
        t.remember(2, b"k");
        assert_eq!(t.stats().items, 2);
        t.invalidate(b"k", true);
        let out = t.take_outbox();
        assert_eq!(out.iter().map(|m| m.to).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(keys(&out[0].stale), [b"k"]);
        assert_eq!(t.stats().keys, 0);
        t.invalidate(b"k", true);
        assert!(t.take_outbox().is_empty());
    }

    #[test]
    fn the_running_client_hears_of_its_own_change_after_its_reply_unless_noloop() {
        let mut t = Tracking::default();
        t.enable(1, TrackingOptions::default());
        t.enable(
            2,
            TrackingOptions {
                noloop: true,
                ..Default::default()
            },
        );
        t.remember(1, b"a");
        t.remember(2, b"b");
        t.set_current(Some(1), true);
        t.invalidate(b"a", true);
        assert!(t.take_outbox().is_empty());
        assert_eq!(t.take_after_reply().len(), 1);
        t.set_current(Some(2), true);
        t.invalidate(b"b", true);
        assert!(t.take_outbox().is_empty() && t.take_after_reply().is_empty());
    }

    #[test]
    fn bcast_sends_changed_keys_per_prefix_leaving_out_a_noloop_clients_own() {
        let mut t = Tracking::default();
        let bcast = |prefixes: &[&[u8]], noloop| TrackingOptions {
            bcast: true,
            noloop,
            prefixes: prefixes.iter().map(|p| Blob::from_slice(p)).collect(),
            ..Default::default()
        };
        t.enable(1, bcast(&[b"user:"], false));
        t.enable(2, bcast(&[b"user:"], true));
        t.set_current(Some(2), true);
        t.invalidate(b"user:2", true);
        t.set_current(Some(3), true);
        t.invalidate(b"user:1", true);
        t.invalidate(b"other", true);
        t.broadcast();
        let out = t.take_outbox();
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].to, keys(&out[0].stale)),
            (1, vec![&b"user:1"[..], b"user:2"])
        );
        assert_eq!((out[1].to, keys(&out[1].stale)), (2, vec![&b"user:1"[..]]));
        t.broadcast();
        assert!(t.take_outbox().is_empty());
        t.disable(1);
        t.disable(2);
        assert_eq!(t.stats().prefixes, 0);
    }

    #[test]
    fn a_noloop_bcast_client_hears_of_the_servers_own_changes() {
        let mut t = Tracking::default();
        t.enable(
            1,
            TrackingOptions {
                bcast: true,
                noloop: true,
                ..Default::default()
            },
        );
        t.set_current(Some(1), true);
        t.set_server_change(true);
        t.invalidate(b"expired", true);
        t.set_server_change(false);
        t.invalidate(b"written", true);
        t.broadcast();
        let out = t.take_outbox();
        assert_eq!(out.len(), 1);
        assert_eq!(keys(&out[0].stale), [b"expired"]);
    }

    #[test]
    fn a_prefixs_clients_share_one_key_list() {
        let mut t = Tracking::default();
        let bcast = TrackingOptions {
            bcast: true,
            ..Default::default()
        };
        for id in 1..=3 {
            t.enable(id, bcast.clone());
        }
        t.invalidate(b"k", true);
        t.broadcast();
        let out = t.take_outbox();
        let lists: Vec<&Arc<[Blob]>> = out
            .iter()
            .map(|m| match &m.stale {
                Stale::Keys(keys) => keys,
                Stale::All => panic!("a key list"),
            })
            .collect();
        assert_eq!(lists.len(), 3);
        assert!(lists.windows(2).all(|w| Arc::ptr_eq(w[0], w[1])));
    }

    #[test]
    fn the_limit_drops_keys_until_the_table_fits() {
        let mut t = Tracking::default();
        t.enable(1, TrackingOptions::default());
        for i in 0..50 {
            t.remember(1, format!("k{i}").as_bytes());
        }
        t.enforce_limit(10);
        assert_eq!(t.stats().keys, 10);
        assert_eq!(t.take_outbox().len(), 40);
    }
}
