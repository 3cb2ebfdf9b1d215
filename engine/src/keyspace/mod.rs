//! The keyspace: 16 databases of keys with expiry, access metadata for LRU/LFU eviction,
//! memory accounting, WATCH versions and the statistics INFO reports.
//!
//! Expiry is lazy (a key found past its time on access is deleted) plus active (`expire_cycle`
//! samples keys with a TTL, as Redis does). Memory is accounted incrementally: every table
//! knows its bucket and node allocations and every value its heap bytes, so `used_memory` is
//! O(1) to read and follows allocation closely (see `Keyspace::used_memory`).

pub mod dict;
pub mod eviction;
pub mod feed;
pub mod hooks;
pub mod list;
pub mod listpack;
pub mod notify;
pub mod stream;
pub mod tracking;
pub mod value;

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;

pub use dict::Dict;
pub use eviction::EvictionPolicy;
pub use feed::WriteFeed;
pub use hooks::{WriteHook, WriteHooks};
pub use stream::{Stream, StreamId};
pub use value::{Blob, EncodingLimits, Hash, Kind, List, Scored, Set, Value, ValueType, ZSet};

pub const DB_COUNT: usize = 16;

/// A key's value and its access metadata (Redis's 24-bit `lru` field: seconds clock for LRU,
/// or minutes/counter for LFU).
#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    pub access: u32,
    pub volatile: bool,
    /// A point-in-time walk's version bit: entries are born with `Keyspace::mark`; a walk
    /// flips that and re-marks each entry it has visited (see persistence/snapshot.rs).
    pub mark: bool,
}

#[derive(Debug, Default)]
pub struct Db {
    pub entries: Dict<Entry>,
    pub expires: Dict<u64>,
    value_heap: usize,
    /// Keys by type (`ValueType::index`), kept as keys come and go.
    types: [u64; ValueType::ALL.len()],
    /// Set when a write left a collection empty; the dispatcher then removes empty keys.
    pub emptied: bool,
    /// Which database of the running point-in-time walk this one is (None: created during
    /// it; set and read by the walk).
    pub(crate) snapshot_id: Option<usize>,
}

impl Db {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many keys hold each type (`ValueType::index`).
    pub fn keys_by_type(&self) -> [u64; ValueType::ALL.len()] {
        self.types
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn mem_size(&self) -> usize {
        self.entries.mem_size() + self.expires.mem_size() + self.value_heap
    }

    /// Sizes a database being loaded for its keys (the file's RESIZEDB hint).
    pub fn reserve(&mut self, keys: usize, expires: usize) {
        self.entries.reserve(keys);
        self.expires.reserve(expires);
    }

    /// Adds a key read from a file to a database being loaded (not yet in any keyspace).
    /// A key already there (a corrupt file) is handed back and the database is unchanged.
    pub fn load(
        &mut self,
        key: Blob,
        value: Value,
        expire_ms: Option<u64>,
        access: u32,
        mark: bool,
    ) -> Result<(), Blob> {
        if self.entries.contains_key(&key) {
            return Err(key);
        }
        if let Some(at) = expire_ms {
            self.expires.insert(key.clone(), at);
        }
        self.value_heap += value.heap_size();
        self.types[value.value_type().index()] += 1;
        let entry = Entry {
            value,
            access,
            volatile: expire_ms.is_some(),
            mark,
        };
        self.entries.insert_new(key, entry);
        Ok(())
    }

    fn remove_entry(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.value_heap -= entry.value.heap_size();
        self.types[entry.value.value_type().index()] -= 1;
        if entry.volatile {
            self.expires.remove(key);
        }
        Some(entry)
    }
}

/// An access-time update computed once per access (LRU clock or LFU bump).
#[derive(Debug, Clone, Copy)]
struct AccessUpdate {
    lfu: bool,
    now: u64,
    log_factor: u32,
    decay: u64,
    r: f64,
}

impl AccessUpdate {
    fn apply(self, old: u32) -> u32 {
        if self.lfu {
            eviction::lfu_touch(old, self.now, self.log_factor, self.decay, self.r)
        } else {
            eviction::lru_clock(self.now)
        }
    }
}

/// Counters reported under INFO stats.
#[derive(Debug, Default, Clone)]
pub struct KeyspaceStats {
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_stale_perc: f64,
}

/// Mutable access to a value of type `T` (a whole `Value`, or one type projected out of it);
/// on drop it settles the value's encoding and memory and notes emptiness.
pub struct ValueMut<'a, T: Kind> {
    value: &'a mut T,
    heap: &'a mut usize,
    emptied: &'a mut bool,
    limits: &'a EncodingLimits,
    before: usize,
}

impl<'a, T: Kind> ValueMut<'a, T> {
    fn new(
        value: &'a mut T,
        heap: &'a mut usize,
        emptied: &'a mut bool,
        limits: &'a EncodingLimits,
    ) -> Self {
        let before = value.heap();
        ValueMut {
            value,
            heap,
            emptied,
            limits,
            before,
        }
    }
}

impl<T: Kind> Deref for ValueMut<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T: Kind> DerefMut for ValueMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

impl<T: Kind> Drop for ValueMut<'_, T> {
    fn drop(&mut self) {
        self.value.settle_encoding(self.limits);
        *self.heap = *self.heap - self.before + self.value.heap();
        if self.value.emptied() {
            *self.emptied = true;
        }
    }
}

/// A key holds a value of another type than the command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

#[derive(Debug)]
struct WatchSlot {
    version: u64,
    watchers: usize,
}

/// Settings of the keyspace that CONFIG can change.
#[derive(Debug, Clone)]
pub struct KeyspaceConfig {
    pub maxmemory: u64,
    pub policy: EvictionPolicy,
    pub maxmemory_samples: usize,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u64,
    pub encodings: EncodingLimits,
    /// The longest string a command may build (proto-max-bulk-len).
    pub max_string: usize,
    /// `notify-keyspace-events`, as class bits (notify.rs).
    pub notify_flags: u32,
    /// `tracking-table-max-keys`: the most keys CLIENT TRACKING remembers (0: no limit).
    pub tracking_table_max_keys: usize,
}

impl Default for KeyspaceConfig {
    fn default() -> Self {
        KeyspaceConfig {
            maxmemory: 0,
            policy: EvictionPolicy::NoEviction,
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            encodings: EncodingLimits::default(),
            max_string: crate::protocol::parser::PROTO_MAX_BULK_LEN,
            notify_flags: 0,
            tracking_table_max_keys: 1_000_000,
        }
    }
}

pub struct Keyspace {
    pub dbs: Vec<Db>,
    pub stats: KeyspaceStats,
    pub config: KeyspaceConfig,
    /// Writes since the last successful save (Redis's `dirty`).
    pub dirty: u64,
    /// Time of the command being run, in ms; expiry decisions use it throughout a command.
    pub now: u64,
    /// `now` may serve the next command too: the previous one in the same batch was fast (a
    /// few microseconds), so reading the clock again would only cost time. Set as a command
    /// ends (commands::run), cleared as a batch begins (instance::batch), used by `read_clock`.
    pub clock_reusable: bool,
    /// Lists and sorted sets created or stored since the batch began, recorded while clients
    /// are blocked (`track_created`): the keys a blocked client may now be served from.
    pub created: Vec<(usize, Blob)>,
    pub track_created: bool,
    watched: HashMap<(usize, Blob), WatchSlot>,
    watch_clock: u64,
    rng: SmallRng,
    eviction_pool: Vec<eviction::Candidate>,
    /// What sees writes as they happen (hooks.rs): the running snapshot, if any.
    pub hooks: WriteHooks,
    /// The mark entries are born with (see `Entry::mark`).
    pub(crate) mark: bool,
    /// Every write as the command that reproduces it, for the AOF (feed.rs); off without AOF.
    pub feed: WriteFeed,
    /// Keyspace events raised and not yet published (notify.rs).
    notices: Vec<notify::Notice>,
    /// While clients are paused (CLIENT PAUSE, until this time in ms), reads leave expired
    /// keys in place and only hide them, as Redis keeps the data set still during a pause.
    pub expiry_paused_until: u64,
    /// CLIENT TRACKING's table: who read which keys, and the invalidations owed.
    pub tracking: tracking::Tracking,
    /// The running command writes: its lookups are Redis's lookupKeyWrite, which count no
    /// hit or miss and raise no `keymiss` (set by commands::run).
    pub write_command: bool,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("keys", &self.key_count())
            .finish()
    }
}

impl Default for Keyspace {
    fn default() -> Self {
        Self::new(KeyspaceConfig::default())
    }
}

impl Keyspace {
    pub fn new(config: KeyspaceConfig) -> Self {
        Keyspace {
            dbs: (0..DB_COUNT).map(|_| Db::default()).collect(),
            stats: KeyspaceStats::default(),
            config,
            dirty: 0,
            now: crate::util::now_ms(),
            clock_reusable: false,
            created: Vec::new(),
            track_created: false,
            watched: HashMap::new(),
            watch_clock: 0,
            rng: SmallRng::from_os_rng(),
            eviction_pool: Vec::new(),
            hooks: WriteHooks::default(),
            mark: false,
            feed: Default::default(),
            notices: Vec::new(),
            expiry_paused_until: 0,
            tracking: Default::default(),
            write_command: false,
        }
    }

    pub fn key_count(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }

    /// Bytes held by the data set: bucket arrays, entry nodes, spilled keys and values, TTL
    /// tables. Each allocation is counted at the size glibc's malloc gives it.
    pub fn used_memory(&self) -> usize {
        self.dbs.iter().map(Db::mem_size).sum()
    }

    fn is_expired(&self, db: usize, key: &[u8]) -> bool {
        self.dbs[db]
            .expires
            .get(key)
            .is_some_and(|&at| at <= self.now)
    }

    /// For a read: whether `key`'s time has passed, deleting it unless a pause holds expiry.
    fn expired_for_read(&mut self, db: usize, key: &[u8]) -> bool {
        if self.now < self.expiry_paused_until {
            !self.dbs[db].expires.is_empty() && self.is_expired(db, key)
        } else {
            self.expire_if_needed(db, key)
        }
    }

    /// Deletes `key` if its time has passed; true if it did.
    fn expire_if_needed(&mut self, db: usize, key: &[u8]) -> bool {
        if self.dbs[db].expires.is_empty() || !self.is_expired(db, key) {
            return false;
        }
        self.before_write(db, key);
        if let Some(entry) = self.dbs[db].remove_entry(key) {
            self.note_stream_gone(db, key, &entry.value);
        }
        self.stats.expired_keys += 1;
        self.tracking.set_server_change(true);
        self.modified(db, key);
        self.tracking.set_server_change(false);
        self.notify(notify::class::EXPIRED, "expired", db, key);
        // Logged as Redis propagates an expiry, so a replay never depends on the clock.
        self.feed.command(db, &[b"DEL", key]);
        true
    }

    /// How to update an entry's access field for an access happening now.
    fn access_update(&mut self) -> AccessUpdate {
        let lfu = self.config.policy.is_lfu();
        AccessUpdate {
            lfu,
            now: self.now,
            log_factor: self.config.lfu_log_factor,
            decay: self.config.lfu_decay_time,
            r: if lfu {
                rand::Rng::random(&mut self.rng)
            } else {
                0.0
            },
        }
    }

    fn new_access(&self) -> u32 {
        if self.config.policy.is_lfu() {
            eviction::lfu_new(self.now)
        } else {
            eviction::lru_clock(self.now)
        }
    }

    /// Brings the entries of `keys` into the cache ahead of a batch's lookups (`Dict::warm`).
    pub fn warm(&self, db: usize, keys: &[&[u8]]) {
        if let Some(d) = self.dbs.get(db) {
            d.entries.warm(keys);
        }
    }

    /// Looks a key up for reading: lazy expiry, access time update, hit/miss statistics.
    pub fn get(&mut self, db: usize, key: &[u8]) -> Option<&Value> {
        self.lookup(db, key, !self.write_command)
    }

    /// `get`, counting the hit or miss (and raising `keymiss`) only if `counted`.
    pub fn lookup(&mut self, db: usize, key: &[u8], counted: bool) -> Option<&Value> {
        if self.expired_for_read(db, key) {
            if counted {
                note_miss(
                    &mut self.stats,
                    &mut self.notices,
                    self.config.notify_flags,
                    db,
                    key,
                );
            }
            return None;
        }
        let update = self.access_update();
        let Keyspace {
            dbs,
            stats,
            notices,
            config,
            ..
        } = self;
        match dbs[db].entries.get_mut(key) {
            Some(entry) => {
                stats.keyspace_hits += u64::from(counted);
                entry.access = update.apply(entry.access);
                Some(&entry.value)
            }
            None => {
                if counted {
                    note_miss(stats, notices, config.notify_flags, db, key);
                }
                None
            }
        }
    }

    /// Looks a key up without touching its access time or statistics (TYPE, OBJECT, TTL...).
    pub fn peek(&mut self, db: usize, key: &[u8]) -> Option<&Entry> {
        if self.expired_for_read(db, key) {
            return None;
        }
        self.dbs[db].entries.get(key)
    }

    /// Called before any change to `key`, while it still holds its old contents: the write
    /// hooks see it first (a running snapshot saves the old contents if it has not yet).
    #[inline]
    fn before_write(&mut self, db: usize, key: &[u8]) {
        if !self.hooks.is_empty() {
            self.hooks.before_write(&mut self.dbs, db, key);
        }
    }

    /// Records a modification: the write hooks, WATCH versions and the count of changes
    /// since the last save.
    fn modified(&mut self, db: usize, key: &[u8]) {
        self.dirty += 1;
        self.key_changed(db, key);
        self.after_write(db, key);
    }

    /// What a change of `key` means beyond the data: WATCHes see a new version and the
    /// clients caching it are owed an invalidation (Redis's signalModifiedKey).
    #[inline]
    fn key_changed(&mut self, db: usize, key: &[u8]) {
        self.touch_watched(db, key);
        if !self.tracking.is_idle() {
            self.tracking.invalidate(key, true);
        }
    }

    /// Whether a write to an existing key has anyone to tell (WATCH or tracking).
    #[inline]
    fn key_observed(&self) -> bool {
        !self.watched.is_empty() || !self.tracking.is_idle()
    }

    #[inline]
    fn after_write(&mut self, db: usize, key: &[u8]) {
        if !self.hooks.is_empty() {
            self.hooks.after_write(db, key);
        }
    }

    /// The end of a batch of commands: the write hooks take their share of work.
    #[inline]
    pub fn batch_ended(&mut self) {
        if !self.hooks.is_empty() {
            self.hooks.batch_ended(&mut self.dbs);
        }
    }

    /// Sets `now` for the command about to run: the clock, unless the previous command of
    /// the batch was fast and its time serves again (`clock_reusable`, used once).
    pub fn read_clock(&mut self) {
        if !std::mem::take(&mut self.clock_reusable) {
            self.now = crate::util::now_ms();
        }
    }

    /// Looks a key up for writing as a `T` (counts as a modification if the key exists, of
    /// whatever type).
    pub fn get_mut<T: Kind>(
        &mut self,
        db: usize,
        key: &[u8],
    ) -> Result<Option<ValueMut<'_, T>>, WrongType> {
        self.expire_if_needed(db, key);
        if self.key_observed() {
            // A key of another type is refused before anyone is told it changed.
            match self.dbs[db].entries.get(key) {
                Some(entry) if T::of(&entry.value).is_none() => return Err(WrongType),
                Some(_) => self.key_changed(db, key),
                None => {}
            }
        }
        self.before_write(db, key);
        let update = self.access_update();
        let Keyspace {
            dbs,
            dirty,
            hooks,
            config,
            ..
        } = self;
        let d = &mut dbs[db];
        let Some(entry) = d.entries.get_mut(key) else {
            return Ok(None);
        };
        *dirty += 1;
        if !hooks.is_empty() {
            hooks.after_write(db, key);
        }
        entry.access = update.apply(entry.access);
        let value = T::of_mut(&mut entry.value).ok_or(WrongType)?;
        Ok(Some(ValueMut::new(
            value,
            &mut d.value_heap,
            &mut d.emptied,
            &config.encodings,
        )))
    }

    /// Writable access to a key as a `T`, creating it with `make()` if absent (one hash
    /// lookup).
    pub fn get_mut_or_create<T: Kind>(
        &mut self,
        db: usize,
        key: &[u8],
        make: impl FnOnce() -> Value,
    ) -> Result<ValueMut<'_, T>, WrongType> {
        self.expire_if_needed(db, key);
        if self.key_observed() {
            if let Some(entry) = self.dbs[db].entries.get(key) {
                if T::of(&entry.value).is_none() {
                    return Err(WrongType);
                }
            }
            self.key_changed(db, key);
        }
        self.before_write(db, key);
        let update = self.access_update();
        let fresh_access = self.new_access();
        let Keyspace {
            dbs,
            dirty,
            mark,
            hooks,
            config,
            created: created_keys,
            track_created,
            notices,
            ..
        } = self;
        let d = &mut dbs[db];
        let (entry, created) = d.entries.get_or_insert_with(key, || Entry {
            value: make(),
            access: fresh_access,
            volatile: false,
            mark: *mark,
        });
        if created {
            // A new value's heap counts in full; the guard settles what the command adds.
            d.value_heap += entry.value.heap_size();
            d.types[entry.value.value_type().index()] += 1;
            if *track_created && serves_blocked(&entry.value) {
                created_keys.push((db, Blob::from_slice(key)));
            }
            if notify::wanted(config.notify_flags, notify::class::NEW) {
                notices.push(notify::Notice::new("new", db, key));
            }
        } else {
            entry.access = update.apply(entry.access);
        }
        *dirty += 1;
        if !hooks.is_empty() {
            hooks.after_write(db, key);
        }
        let value = T::of_mut(&mut entry.value).ok_or(WrongType)?;
        Ok(ValueMut::new(
            value,
            &mut d.value_heap,
            &mut d.emptied,
            &config.encodings,
        ))
    }

    pub fn contains(&mut self, db: usize, key: &[u8]) -> bool {
        !self.expired_for_read(db, key) && self.dbs[db].entries.contains_key(key)
    }

    /// Stores a value, dropping any TTL the key had (SET without KEEPTTL).
    pub fn set(&mut self, db: usize, key: &[u8], value: Value) {
        self.store(db, key, value, false);
    }

    /// Stores a value, keeping the key's TTL if it had one.
    pub fn set_keep_ttl(&mut self, db: usize, key: &[u8], value: Value) {
        self.store(db, key, value, true);
    }

    fn store(&mut self, db: usize, key: &[u8], mut value: Value, keep_ttl: bool) {
        value.settle_encoding(&self.config.encodings);
        self.expire_if_needed(db, key);
        self.before_write(db, key);
        let access = self.new_access();
        let mark = self.mark;
        self.note_created(db, key, &value);
        let d = &mut self.dbs[db];
        d.value_heap += value.heap_size();
        d.types[value.value_type().index()] += 1;
        match d.entries.get_mut(key) {
            Some(entry) => {
                d.value_heap -= entry.value.heap_size();
                d.types[entry.value.value_type().index()] -= 1;
                let old = std::mem::replace(&mut entry.value, value);
                if self.track_created && matches!(old, Value::Stream(_)) {
                    self.created.push((db, Blob::from_slice(key)));
                }
                entry.access = access;
                if entry.volatile && !keep_ttl {
                    entry.volatile = false;
                    d.expires.remove(key);
                }
                drop_in_background(old);
            }
            None => {
                d.entries.insert_new(
                    Blob::from_slice(key),
                    Entry {
                        value,
                        access,
                        volatile: false,
                        mark,
                    },
                );
                self.notify(notify::class::NEW, "new", db, key);
            }
        }
        self.modified(db, key);
    }

    /// Records that `key` got something a blocked client may take (XADD to a stream that
    /// already existed), if clients are blocked (see `created`).
    pub fn signal_ready(&mut self, db: usize, key: &[u8]) {
        if self.track_created {
            self.created.push((db, Blob::from_slice(key)));
        }
    }

    /// Records that the stream under `key` is gone, if clients are blocked: a client blocked
    /// in XREADGROUP there is then answered with an error (see `created`).
    fn note_stream_gone(&mut self, db: usize, key: &[u8], value: &Value) {
        if self.track_created && matches!(value, Value::Stream(_)) {
            self.created.push((db, Blob::from_slice(key)));
        }
    }

    /// Records that `key` now holds a new list or sorted set, if clients are blocked (see
    /// `created`).
    fn note_created(&mut self, db: usize, key: &[u8], value: &Value) {
        if self.track_created && serves_blocked(value) {
            self.created.push((db, Blob::from_slice(key)));
        }
    }

    /// Moves `bytes` into the string the running command just stored empty under `key` (a big
    /// argument's own buffer, taken instead of copied; see `Ctx::string_value`). It is the
    /// same write, so no hook or counter runs again.
    pub fn adopt_string(&mut self, db: usize, key: &[u8], bytes: Vec<u8>) {
        let d = &mut self.dbs[db];
        if let Some(Entry {
            value: Value::Str(s),
            ..
        }) = d.entries.get_mut(key)
        {
            let value = Blob::from_vec(bytes);
            d.value_heap = d.value_heap - value::heap_size_of(s) + value::heap_size_of(&value);
            *s = value;
        }
    }

    /// Deletes a key; returns its value.
    pub fn remove(&mut self, db: usize, key: &[u8]) -> Option<Value> {
        if self.expire_if_needed(db, key) {
            return None;
        }
        self.before_write(db, key);
        let entry = self.dbs[db].remove_entry(key)?;
        self.note_stream_gone(db, key, &entry.value);
        self.modified(db, key);
        Some(entry.value)
    }

    /// Deletes a key, freeing a large value on another thread (DEL, UNLINK, overwrite).
    pub fn delete(&mut self, db: usize, key: &[u8]) -> bool {
        match self.remove(db, key) {
            Some(value) => {
                drop_in_background(value);
                true
            }
            None => false,
        }
    }

    /// The key's expiry time in ms, if it has one (and exists).
    pub fn expire_time(&mut self, db: usize, key: &[u8]) -> Option<u64> {
        if self.expired_for_read(db, key) {
            return None;
        }
        self.dbs[db].expires.get(key).copied()
    }

    /// Sets a key's absolute expiry; the key must exist.
    pub fn set_expire(&mut self, db: usize, key: &[u8], at_ms: u64) {
        self.before_write(db, key);
        self.modified(db, key);
        let d = &mut self.dbs[db];
        if let Some(entry) = d.entries.get_mut(key) {
            entry.volatile = true;
            d.expires.insert(Blob::from_slice(key), at_ms);
        }
    }

    /// Sets a key's access field (RESTORE's IDLETIME/FREQ); not a modification.
    pub fn set_access(&mut self, db: usize, key: &[u8], access: u32) {
        if let Some(entry) = self.dbs[db].entries.get_mut(key) {
            entry.access = access;
        }
    }

    /// Removes a key's TTL; true if it had one.
    pub fn persist(&mut self, db: usize, key: &[u8]) -> bool {
        self.expire_if_needed(db, key);
        self.before_write(db, key);
        let d = &mut self.dbs[db];
        match d.entries.get_mut(key) {
            Some(entry) if entry.volatile => {
                entry.volatile = false;
                d.expires.remove(key);
                self.modified(db, key);
                true
            }
            _ => false,
        }
    }

    /// Removes the given keys if they hold empty collections (after a write emptied one).
    pub fn remove_emptied(&mut self, db: usize, keys: &[&[u8]]) {
        let d = &mut self.dbs[db];
        if !std::mem::take(&mut d.emptied) {
            return;
        }
        let mut removed = Vec::new();
        for key in keys {
            let empty = d.entries.get(key).is_some_and(|e| Kind::emptied(&e.value));
            if empty {
                d.remove_entry(key);
                removed.push(*key);
            }
        }
        for key in removed {
            self.notify(notify::class::GENERIC, "del", db, key);
        }
    }

    /// Empties one database (FLUSHDB); every client caching keys is told they are all stale.
    pub fn flush_db(&mut self, db: usize) {
        self.empty_db(db);
        self.tracking.flush();
    }

    /// Empties every database (FLUSHALL), with one invalidation of everything.
    pub fn flush_all(&mut self) {
        for db in 0..DB_COUNT {
            self.empty_db(db);
        }
        self.tracking.flush();
    }

    /// Empties one database; the old contents are freed on another thread (or kept by a
    /// write hook: a running snapshot finishes saving them first).
    fn empty_db(&mut self, db: usize) {
        let old = std::mem::take(&mut self.dbs[db]);
        self.dirty += old.len() as u64;
        self.touch_watched_in(db, Some(&old), &[]);
        if let Some(old) = self.hooks.flushed(old) {
            drop_in_background(old);
        }
    }

    /// Replaces every database at once (a restore or an import) and returns the old ones:
    /// WATCHes on keys either side holds see a change, and every client caching keys is
    /// told they are all stale.
    pub fn replace_dbs(&mut self, dbs: Vec<Db>) -> Vec<Db> {
        let old = std::mem::replace(&mut self.dbs, dbs);
        for (db, emptied) in old.iter().enumerate() {
            self.touch_watched_in(db, Some(emptied), &[db]);
        }
        self.tracking.flush();
        old
    }

    pub fn swap_db(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
        self.dirty += 1;
        self.touch_watched_in(a, None, &[a, b]);
        self.touch_watched_in(b, None, &[a, b]);
        // Redis 7.0 leaves clients caching the swapped keys stale; a swap changes every key
        // either database holds, so they are told, as after a flush.
        if a != b {
            self.tracking.flush();
        }
    }

    /// A random live key of a database.
    pub fn random_key(&mut self, db: usize) -> Option<Blob> {
        for _ in 0..100 {
            let key = self.dbs[db].entries.random_entry(&mut self.rng)?.0.clone();
            if !self.expired_for_read(db, &key) {
                return Some(key);
            }
        }
        None
    }

    /// Registers a WATCH on a key and returns its current version.
    pub fn watch(&mut self, db: usize, key: &[u8]) -> u64 {
        let slot = self
            .watched
            .entry((db, Blob::from_slice(key)))
            .or_insert(WatchSlot {
                version: 0,
                watchers: 0,
            });
        slot.watchers += 1;
        slot.version
    }

    pub fn unwatch(&mut self, db: usize, key: &[u8]) {
        let id = (db, Blob::from_slice(key));
        if let Some(slot) = self.watched.get_mut(&id) {
            slot.watchers -= 1;
            if slot.watchers == 0 {
                self.watched.remove(&id);
            }
        }
    }

    /// Current version of a watched key; it changes whenever the key is modified.
    pub fn watch_version(&mut self, db: usize, key: &[u8]) -> u64 {
        // A watched key that has expired since counts as modified (as in Redis 7.0).
        self.expire_if_needed(db, key);
        self.watched
            .get(&(db, Blob::from_slice(key)))
            .map_or(0, |s| s.version)
    }

    /// Marks a key modified for WATCH.
    fn touch_watched(&mut self, db: usize, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(slot) = self.watched.get_mut(&(db, Blob::from_slice(key))) {
            self.watch_clock += 1;
            slot.version = self.watch_clock;
        }
    }

    /// Touches the keys watched in database `db` that a flush or swap changed, as Redis's
    /// touchAllWatchedKeysInDb: those the flushed contents `emptied` held, or one of the
    /// databases `holders` holds (a swap changes a key either side has, and no other).
    fn touch_watched_in(&mut self, db: usize, emptied: Option<&Db>, holders: &[usize]) {
        let Keyspace {
            watched,
            watch_clock,
            dbs,
            ..
        } = self;
        for ((slot_db, key), slot) in watched.iter_mut() {
            let changed = emptied.is_some_and(|d| d.entries.contains_key(key))
                || holders.iter().any(|&h| dbs[h].entries.contains_key(key));
            if *slot_db == db && changed {
                *watch_clock += 1;
                slot.version = *watch_clock;
            }
        }
    }

    /// One slice of active expiry: samples keys with a TTL in every database and deletes
    /// those past their time, for at most `budget`. Returns true if a database still looked
    /// stale (more than a quarter of a sample expired), meaning another slice should follow.
    pub fn expire_cycle(&mut self, budget: Duration) -> bool {
        const SAMPLE: usize = 20;
        let start = Instant::now();
        self.now = crate::util::now_ms();
        let mut stale = false;
        let (mut sampled, mut expired_total) = (0usize, 0usize);
        for db in 0..DB_COUNT {
            self.dbs[db].entries.rehash_for(Duration::from_micros(200));
            self.dbs[db].expires.rehash_for(Duration::from_micros(200));
            loop {
                if self.dbs[db].expires.is_empty() || start.elapsed() >= budget {
                    break;
                }
                let mut expired = 0;
                let n = SAMPLE.min(self.dbs[db].expires.len());
                for _ in 0..n {
                    let Some((key, &at)) = self.dbs[db].expires.random_entry(&mut self.rng) else {
                        break;
                    };
                    if at <= self.now {
                        let key = key.clone();
                        self.expire_if_needed(db, &key);
                        expired += 1;
                    }
                }
                sampled += n;
                expired_total += expired;
                if expired * 4 <= n {
                    break;
                }
                stale = true;
            }
        }
        if sampled > 0 {
            let perc = expired_total as f64 / sampled as f64;
            self.stats.expired_stale_perc = self.stats.expired_stale_perc * 0.95 + perc * 0.05;
        }
        stale
    }
}

/// A read found no key: counted, and the `keymiss` event raised (class `m`), as Redis's
/// lookupKeyRead does.
fn note_miss(
    stats: &mut KeyspaceStats,
    notices: &mut Vec<notify::Notice>,
    notify_flags: u32,
    db: usize,
    key: &[u8],
) {
    stats.keyspace_misses += 1;
    if notify::wanted(notify_flags, notify::class::KEY_MISS) {
        notices.push(notify::Notice::new("keymiss", db, key));
    }
}

/// A value of a type clients block for (what BLPOP, BZPOPMIN and XREAD wait on).
pub fn serves_blocked(value: &Value) -> bool {
    matches!(value, Value::List(_) | Value::ZSet(_) | Value::Stream(_))
}

/// Frees a value; large ones go to the lazy-free thread so the caller is not held up for
/// time proportional to their size (Redis's lazyfree).
pub fn drop_in_background<T: Weigh + Send + 'static>(value: T) {
    const LAZY_THRESHOLD_BYTES: usize = 64 * 1024;
    if value.weight() < LAZY_THRESHOLD_BYTES {
        return;
    }
    static LAZY_FREE: std::sync::OnceLock<
        std::sync::Mutex<std::sync::mpsc::Sender<Box<dyn Send>>>,
    > = std::sync::OnceLock::new();
    let sender = LAZY_FREE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn Send>>();
        let spawned = std::thread::Builder::new()
            .name("lazyfree".into())
            .spawn(move || {
                for value in rx {
                    drop(value);
                    LAZYFREE_PENDING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        if spawned.is_err() {
            // Without the helper thread, values are dropped where they are released.
        }
        std::sync::Mutex::new(tx)
    });
    if let Ok(sender) = sender.lock() {
        LAZYFREE_PENDING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // If the thread is gone the value comes back in the error and is dropped here.
        if sender.send(Box::new(value)).is_err() {
            LAZYFREE_PENDING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Values handed to the lazyfree thread and not yet freed (INFO's lazyfree_pending_objects).
static LAZYFREE_PENDING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn lazyfree_pending() -> usize {
    LAZYFREE_PENDING.load(std::sync::atomic::Ordering::Relaxed)
}

/// How many bytes freeing a value releases, to decide whether to free it elsewhere.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for Value {
    fn weight(&self) -> usize {
        self.heap_size()
    }
}

impl Weigh for Db {
    fn weight(&self) -> usize {
        self.mem_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_counted_by_type_as_they_come_go_and_change_type() {
        let mut ks = Keyspace::default();
        let count = |ks: &Keyspace, t: ValueType| ks.dbs[0].keys_by_type()[t.index()];
        ks.set(0, b"a", Value::Str(Blob::from_slice(b"1")));
        ks.set(0, b"b", Value::Str(Blob::from_slice(b"2")));
        let created = ks.get_mut_or_create::<Stream>(0, b"s", || Value::Stream(Box::default()));
        drop(created);
        assert_eq!(count(&ks, ValueType::String), 2);
        assert_eq!(count(&ks, ValueType::Stream), 1);
        ks.set(0, b"a", Value::Hash(Box::default()));
        assert_eq!(count(&ks, ValueType::String), 1);
        assert_eq!(count(&ks, ValueType::Hash), 1);
        assert!(ks.delete(0, b"s"));
        assert_eq!(count(&ks, ValueType::Stream), 0);
        ks.flush_db(0);
        assert_eq!(ks.dbs[0].keys_by_type(), [0; 6]);
    }
}
