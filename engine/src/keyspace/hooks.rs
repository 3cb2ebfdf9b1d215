//! The keyspace's write-hook seam: whatever must see writes as they happen plugs in here, so
//! the keyspace depends on none of it. Today the point-in-time snapshot of a save, rewrite or
//! export (persistence/snapshot.rs) is the one hook; keyspace notifications, client tracking
//! and replication are meant to plug in the same way.
//!
//! Cost: one branch per write while no hook is installed.

use std::any::Any;
use std::fmt::Debug;

use super::Db;

/// Something that sees every write to the keyspace, under the keyspace lock.
pub trait WriteHook: Any + Send + Debug {
    /// `key` in database `db` is about to change, expire, be evicted or be deleted: `dbs`
    /// still holds its old contents.
    fn before_write(&mut self, _dbs: &mut [Db], _db: usize, _key: &[u8]) {}

    /// `key` in database `db` was written (set, changed, deleted); for a change made through
    /// a handle the keyspace returns (`get_mut`), as the handle is given out.
    fn after_write(&mut self, _db: usize, _key: &[u8]) {}

    /// A database was emptied (FLUSHDB, FLUSHALL): the hook may keep its old contents; what it
    /// hands back is freed.
    fn flushed(&mut self, old: Db) -> Option<Db> {
        Some(old)
    }

    /// A batch of commands ended, the lock still held: room for a small share of the hook's
    /// own work (the snapshot's walk advances here).
    fn batch_ended(&mut self, _dbs: &mut [Db]) {}
}

/// The installed hooks, in the order they were added.
#[derive(Debug, Default)]
pub struct WriteHooks {
    hooks: Vec<Box<dyn WriteHook>>,
}

impl WriteHooks {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    pub fn add(&mut self, hook: Box<dyn WriteHook>) {
        self.hooks.push(hook);
    }

    /// The installed hook of type `T`, if any.
    pub fn get<T: WriteHook>(&self) -> Option<&T> {
        self.hooks
            .iter()
            .find_map(|h| (h.as_ref() as &dyn Any).downcast_ref::<T>())
    }

    pub fn get_mut<T: WriteHook>(&mut self) -> Option<&mut T> {
        self.hooks
            .iter_mut()
            .find_map(|h| (h.as_mut() as &mut dyn Any).downcast_mut::<T>())
    }

    /// Removes the hook of type `T` and hands it back.
    pub fn remove<T: WriteHook>(&mut self) -> Option<Box<T>> {
        let i = self
            .hooks
            .iter()
            .position(|h| (h.as_ref() as &dyn Any).is::<T>())?;
        let hook: Box<dyn Any> = self.hooks.remove(i);
        hook.downcast::<T>().ok()
    }

    pub(super) fn before_write(&mut self, dbs: &mut [Db], db: usize, key: &[u8]) {
        for hook in &mut self.hooks {
            hook.before_write(dbs, db, key);
        }
    }

    pub(super) fn after_write(&mut self, db: usize, key: &[u8]) {
        for hook in &mut self.hooks {
            hook.after_write(db, key);
        }
    }

    /// Offers a flushed database to each hook in turn; what none keeps is handed back.
    pub(super) fn flushed(&mut self, old: Db) -> Option<Db> {
        self.hooks
            .iter_mut()
            .try_fold(old, |old, hook| hook.flushed(old))
    }

    pub(super) fn batch_ended(&mut self, dbs: &mut [Db]) {
        for hook in &mut self.hooks {
            hook.batch_ended(dbs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{Blob, Keyspace, Value};

    /// Records what it sees, with the value a key had before each write.
    #[derive(Debug, Default)]
    struct Recorder {
        seen: Vec<String>,
        keep_flushed: bool,
        kept: Vec<Db>,
    }

    impl WriteHook for Recorder {
        fn before_write(&mut self, dbs: &mut [Db], db: usize, key: &[u8]) {
            let old = match dbs[db].entries.get(key).map(|e| &e.value) {
                Some(Value::Str(s)) => String::from_utf8_lossy(s).into_owned(),
                Some(_) => "other".into(),
                None => "none".into(),
            };
            self.seen.push(format!(
                "before {db} {} (was {old})",
                String::from_utf8_lossy(key)
            ));
        }

        fn after_write(&mut self, db: usize, key: &[u8]) {
            self.seen
                .push(format!("after {db} {}", String::from_utf8_lossy(key)));
        }

        fn flushed(&mut self, old: Db) -> Option<Db> {
            self.seen.push(format!("flushed {} keys", old.len()));
            if self.keep_flushed {
                self.kept.push(old);
                return None;
            }
            Some(old)
        }

        fn batch_ended(&mut self, _dbs: &mut [Db]) {
            self.seen.push("batch".into());
        }
    }

    fn string(v: &str) -> Value {
        Value::Str(Blob::from_slice(v.as_bytes()))
    }

    #[test]
    fn a_hook_sees_every_write_with_the_old_contents_first() {
        let mut ks = Keyspace::default();
        ks.set(0, b"k", string("one"));
        ks.hooks.add(Box::new(Recorder {
            keep_flushed: true,
            ..Recorder::default()
        }));
        ks.set(0, b"k", string("two"));
        ks.set_expire(0, b"k", u64::MAX);
        ks.delete(0, b"k");
        ks.set(3, b"gone", string("x"));
        ks.flush_db(3);
        ks.batch_ended();
        let recorder = ks.hooks.remove::<Recorder>().expect("installed");
        assert_eq!(
            recorder.seen,
            [
                "before 0 k (was one)",
                "after 0 k",
                "before 0 k (was two)",
                "after 0 k",
                "before 0 k (was two)",
                "after 0 k",
                "before 3 gone (was none)",
                "after 3 gone",
                "flushed 1 keys",
                "batch",
            ]
        );
        assert_eq!(recorder.kept.len(), 1, "the hook kept the flushed database");
        assert!(ks.hooks.is_empty());
        assert!(ks.hooks.get::<Recorder>().is_none());
        // Without the hook, writes go on as before.
        ks.set(0, b"k", string("three"));
        assert_eq!(ks.key_count(), 1);
    }
}
