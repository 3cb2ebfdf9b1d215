//! A hash table in the manner of Redis's dict: chained buckets, power-of-two sizes and
//! incremental rehashing, so growing or shrinking never stops traffic for time proportional to
//! the data set (each mutation moves one bucket; `rehash_for` moves more when idle).
//!
//! It also gives what the commands need from the keyspace and collections: SCAN cursors with
//! Redis's guarantee (reverse-binary cursor: every element present for the whole scan is
//! returned at least once, even across a resize) and uniform-ish random sampling for
//! RANDOMKEY, SPOP, eviction and active expiry.

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use rand::Rng;
use smallvec::SmallVec;

use super::value::{heap_size_of, Blob};

type Link<V> = Option<Box<Node<V>>>;

/// A node's position: table, bucket, links down the chain. Valid until the next mutation.
#[derive(Debug, Clone, Copy)]
struct Slot {
    in_next: bool,
    bucket: usize,
    depth: usize,
}

#[derive(Debug, Clone)]
struct Node<V> {
    key: Blob,
    value: V,
    next: Link<V>,
}

#[derive(Debug, Clone)]
struct Table<V> {
    buckets: Vec<Link<V>>,
    used: usize,
}

impl<V> Table<V> {
    fn with_size(size: usize) -> Self {
        let mut buckets = Vec::with_capacity(size);
        buckets.resize_with(size, || None);
        Table { buckets, used: 0 }
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }
}

/// Bytes of one node allocation, as glibc's malloc rounds it (8-byte header, 16-byte steps).
pub const fn node_alloc_size<V>() -> usize {
    (std::mem::size_of::<Node<V>>() + 8).div_ceil(16) * 16
}

const INITIAL_SIZE: usize = 4;
/// Random picks treat every chain as this long (see `Dict::random_entry`).
const FAIR_CHAIN: usize = 8;
/// Shrink when fewer than 1 in this many buckets are used (as Redis's HASHTABLE_MIN_FILL).
const MIN_FILL: usize = 10;

#[derive(Debug, Clone)]
pub struct Dict<V> {
    main: Table<V>,
    /// The table being filled while rehashing; empty otherwise.
    next: Option<Table<V>>,
    /// Next bucket of `main` to move while rehashing.
    rehash_idx: usize,
    hasher: foldhash::fast::RandomState,
    /// Heap bytes of keys held outside their inline space (values account for themselves).
    key_heap: usize,
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Dict<V> {
    pub fn new() -> Self {
        Dict {
            main: Table::with_size(0),
            next: None,
            rehash_idx: 0,
            hasher: foldhash::fast::RandomState::default(),
            key_heap: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.main.used + self.next.as_ref().map_or(0, |t| t.used)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Memory this table holds: bucket arrays, node allocations, spilled key bytes.
    pub fn mem_size(&self) -> usize {
        let buckets = self.main.buckets.len() + self.next.as_ref().map_or(0, |t| t.buckets.len());
        buckets * std::mem::size_of::<Link<V>>()
            + self.len() * node_alloc_size::<V>()
            + self.key_heap
    }

    fn hash(&self, key: &[u8]) -> usize {
        self.hasher.hash_one(key) as usize
    }

    fn is_rehashing(&self) -> bool {
        self.next.is_some()
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.find(key).map(|n| &n.value)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    fn find(&self, key: &[u8]) -> Option<&Node<V>> {
        if self.is_empty() {
            return None;
        }
        let slot = self.locate(key, self.hash(key))?;
        self.node(slot)
    }

    /// Where `key` sits (one hash, one walk of its chain in each table).
    fn locate(&self, key: &[u8], hash: usize) -> Option<Slot> {
        for (in_next, table) in [(false, Some(&self.main)), (true, self.next.as_ref())] {
            let Some(table) = table.filter(|t| !t.buckets.is_empty()) else {
                continue;
            };
            let bucket = hash & table.mask();
            let mut link = &table.buckets[bucket];
            let mut depth = 0;
            while let Some(node) = link {
                if node.key[..] == *key {
                    return Some(Slot {
                        in_next,
                        bucket,
                        depth,
                    });
                }
                link = &node.next;
                depth += 1;
            }
        }
        None
    }

    fn node(&self, slot: Slot) -> Option<&Node<V>> {
        let table = if slot.in_next {
            self.next.as_ref()?
        } else {
            &self.main
        };
        let mut node = table.buckets.get(slot.bucket)?.as_deref()?;
        for _ in 0..slot.depth {
            node = node.next.as_deref()?;
        }
        Some(node)
    }

    fn node_mut(&mut self, slot: Slot) -> Option<&mut Node<V>> {
        let table = if slot.in_next {
            self.next.as_mut()?
        } else {
            &mut self.main
        };
        let mut node = table.buckets.get_mut(slot.bucket)?.as_deref_mut()?;
        for _ in 0..slot.depth {
            node = node.next.as_deref_mut()?;
        }
        Some(node)
    }

    /// Reads the bucket and the first chain node of each of `keys`, so that lookups of them
    /// soon after hit the cache. The loads of each pass do not depend on one another, so the
    /// CPU overlaps their cache misses instead of paying them one lookup at a time.
    pub fn warm(&self, keys: &[&[u8]]) {
        if self.is_empty() || self.is_rehashing() {
            return;
        }
        let mask = self.main.mask();
        let heads: SmallVec<[Option<&Node<V>>; 32]> = keys
            .iter()
            .map(|key| self.main.buckets[self.hash(key) & mask].as_deref())
            .collect();
        let touched = heads
            .iter()
            .flatten()
            .fold(0usize, |sum, node| sum.wrapping_add(node.key.len()));
        std::hint::black_box(touched);
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        let slot = self.locate(key, self.hash(key))?;
        self.node_mut(slot).map(|n| &mut n.value)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: Blob, value: V) -> Option<V> {
        self.rehash_step();
        let hash = self.hash(&key);
        if let Some(slot) = self.locate(&key, hash) {
            return self
                .node_mut(slot)
                .map(|n| std::mem::replace(&mut n.value, value));
        }
        self.insert_hashed(hash, key, value);
        None
    }

    /// Inserts `key` unless present; true if it was inserted.
    pub fn insert_if_absent(&mut self, key: &[u8], make: impl FnOnce() -> V) -> bool {
        self.rehash_step();
        let hash = self.hash(key);
        if self.locate(key, hash).is_some() {
            return false;
        }
        self.insert_hashed(hash, Blob::from_slice(key), make());
        true
    }

    /// Inserts a key known to be absent.
    pub fn insert_new(&mut self, key: Blob, value: V) {
        self.rehash_step();
        let hash = self.hash(&key);
        self.insert_hashed(hash, key, value);
    }

    /// Inserts at the head of the key's bucket; returns where it went.
    fn insert_hashed(&mut self, hash: usize, key: Blob, value: V) -> Slot {
        self.expand_if_needed();
        self.key_heap += heap_size_of(&key);
        let in_next = self.next.is_some();
        let table = match self.next.as_mut() {
            Some(t) => t,
            None => &mut self.main,
        };
        let bucket = hash & table.mask();
        let next = table.buckets[bucket].take();
        table.buckets[bucket] = Some(Box::new(Node { key, value, next }));
        table.used += 1;
        Slot {
            in_next,
            bucket,
            depth: 0,
        }
    }

    /// The value for `key`, inserting `make()` first if absent; true if it was inserted.
    pub fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> (&mut V, bool) {
        self.rehash_step();
        let hash = self.hash(key);
        let (slot, inserted) = match self.locate(key, hash) {
            Some(slot) => (slot, false),
            None => (
                self.insert_hashed(hash, Blob::from_slice(key), make()),
                true,
            ),
        };
        match self.node_mut(slot) {
            Some(node) => (&mut node.value, inserted),
            None => unreachable!("a located or inserted slot holds a node"),
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    pub fn remove_entry(&mut self, key: &[u8]) -> Option<(Blob, V)> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        let hash = self.hash(key);
        let mut removed = None;
        for table in std::iter::once(&mut self.main).chain(self.next.as_mut()) {
            if table.buckets.is_empty() {
                continue;
            }
            let mask = table.mask();
            let mut link = &mut table.buckets[hash & mask];
            while link.as_ref().is_some_and(|n| n.key[..] != *key) {
                link = &mut link.as_mut()?.next;
            }
            if let Some(mut node) = link.take() {
                *link = node.next.take();
                table.used -= 1;
                removed = Some((node.key, node.value));
                break;
            }
        }
        if let Some((key, _)) = &removed {
            self.key_heap -= heap_size_of(key);
            self.shrink_if_needed();
        }
        removed
    }

    /// Sizes an empty table for `n` entries up front (a load that knows its size skips the
    /// rehashes growing would do).
    pub fn reserve(&mut self, n: usize) {
        if self.is_empty() && !self.is_rehashing() && n > self.main.buckets.len() {
            self.main = Table::with_size(n.next_power_of_two());
        }
    }

    fn expand_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        if self.main.buckets.is_empty() {
            self.main = Table::with_size(INITIAL_SIZE);
        } else if self.main.used >= self.main.buckets.len() {
            self.start_rehash((self.main.used + 1).next_power_of_two());
        }
    }

    fn shrink_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        let size = self.main.buckets.len();
        if size > INITIAL_SIZE && self.main.used * MIN_FILL < size {
            self.start_rehash(self.main.used.next_power_of_two().max(INITIAL_SIZE));
        }
    }

    fn start_rehash(&mut self, size: usize) {
        self.next = Some(Table::with_size(size));
        self.rehash_idx = 0;
    }

    /// Moves up to `n` buckets (visiting at most 10*n empty ones) to the new table.
    fn rehash(&mut self, n: usize) -> bool {
        let Some(next) = self.next.as_mut() else {
            return false;
        };
        let mut empty_visits = n * 10;
        let mut moved = 0;
        while moved < n && self.main.used > 0 {
            let Some(bucket) = self.main.buckets.get_mut(self.rehash_idx) else {
                break;
            };
            let Some(mut chain) = bucket.take() else {
                self.rehash_idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    return true;
                }
                continue;
            };
            let mask = next.mask();
            loop {
                let rest = chain.next.take();
                let idx = self.hasher.hash_one(&chain.key[..]) as usize & mask;
                chain.next = next.buckets[idx].take();
                next.buckets[idx] = Some(chain);
                next.used += 1;
                self.main.used -= 1;
                match rest {
                    Some(n) => chain = n,
                    None => break,
                }
            }
            self.rehash_idx += 1;
            moved += 1;
        }
        if self.main.used == 0 {
            if let Some(next) = self.next.take() {
                self.main = next;
            }
            self.rehash_idx = 0;
            return false;
        }
        true
    }

    fn rehash_step(&mut self) {
        self.rehash(1);
    }

    /// Rehashes in steps of 100 buckets for up to `budget`; true if rehashing is still going.
    pub fn rehash_for(&mut self, budget: Duration) -> bool {
        let start = Instant::now();
        while self.rehash(100) {
            if start.elapsed() >= budget {
                return true;
            }
        }
        false
    }

    /// Calls `f` for every entry, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(&Blob, &V)) {
        for table in std::iter::once(&self.main).chain(self.next.as_ref()) {
            for bucket in &table.buckets {
                let mut link = bucket;
                while let Some(node) = link {
                    f(&node.key, &node.value);
                    link = &node.next;
                }
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Blob, &V)> {
        std::iter::once(&self.main)
            .chain(self.next.as_ref())
            .flat_map(|t| t.buckets.iter())
            .flat_map(|bucket| ChainIter {
                link: bucket.as_deref(),
            })
    }

    pub fn keys(&self) -> impl Iterator<Item = &Blob> {
        self.iter().map(|(k, _)| k)
    }

    /// The buckets one SCAN step from `cursor` visits, as (in `next`, index), and the next
    /// cursor (0 when the scan is complete).
    fn scan_plan(&self, cursor: u64) -> (smallvec::SmallVec<[(bool, usize); 8]>, u64) {
        let mut plan = smallvec::SmallVec::new();
        if self.is_empty() {
            return (plan, 0);
        }
        let mut v = cursor;
        match &self.next {
            None => {
                let m0 = self.main.mask() as u64;
                plan.push((false, (v & m0) as usize));
                v = next_cursor(v, m0);
            }
            Some(next) => {
                let small_is_main = self.main.buckets.len() <= next.buckets.len();
                let (small, large) = if small_is_main {
                    (&self.main, next)
                } else {
                    (next, &self.main)
                };
                let m0 = small.mask() as u64;
                let m1 = large.mask() as u64;
                plan.push((!small_is_main, (v & m0) as usize));
                loop {
                    plan.push((small_is_main, (v & m1) as usize));
                    v = next_cursor(v, m1);
                    if v & (m0 ^ m1) == 0 {
                        break;
                    }
                }
            }
        }
        (plan, v)
    }

    /// One SCAN step from `cursor`: calls `f` for the entries of one or more buckets and
    /// returns the next cursor (0 when the scan is complete).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&Blob, &V)) -> u64 {
        let (plan, next) = self.scan_plan(cursor);
        for (in_next, bucket) in plan {
            let table = if in_next {
                self.next.as_ref()
            } else {
                Some(&self.main)
            };
            if let Some(head) = table.and_then(|t| t.buckets.get(bucket)) {
                ChainIter {
                    link: head.as_deref(),
                }
                .for_each(|(k, v)| f(k, v));
            }
        }
        next
    }

    /// `scan` with mutable access to the values (the snapshot walk marks what it saved).
    pub fn scan_mut(&mut self, cursor: u64, mut f: impl FnMut(&Blob, &mut V)) -> u64 {
        let (plan, next) = self.scan_plan(cursor);
        for (in_next, bucket) in plan {
            let table = if in_next {
                self.next.as_mut()
            } else {
                Some(&mut self.main)
            };
            let mut link = table
                .and_then(|t| t.buckets.get_mut(bucket))
                .and_then(|b| b.as_deref_mut());
            while let Some(node) = link {
                f(&node.key, &mut node.value);
                link = node.next.as_deref_mut();
            }
        }
        next
    }

    /// A random entry, or None if empty.
    /// A random entry, each as likely as any other (exactly so while no chain is longer than
    /// `FAIR_CHAIN`, which at the tables' load factor they almost never are).
    pub fn random_entry(&self, rng: &mut impl Rng) -> Option<(&Blob, &V)> {
        if self.is_empty() {
            return None;
        }
        let main_size = self.main.buckets.len();
        let next_size = self.next.as_ref().map_or(0, |t| t.buckets.len());
        // While rehashing, buckets of `main` below rehash_idx are known to be empty.
        let low = if self.is_rehashing() {
            self.rehash_idx.min(main_size)
        } else {
            0
        };
        let span = main_size - low + next_size;
        loop {
            let pick = low + rng.random_range(0..span);
            let bucket = if pick < main_size {
                &self.main.buckets[pick]
            } else {
                &self.next.as_ref()?.buckets[pick - main_size]
            };
            if let Some(head) = bucket.as_deref() {
                // A place in a chain of FAIR_CHAIN, kept only if the chain reaches it: every
                // entry is then as likely as any other (picking among the chain's own entries
                // would favour those alone in their bucket).
                let chain_len = ChainIter { link: Some(head) }.count();
                let place = rng.random_range(0..chain_len.max(FAIR_CHAIN));
                if place >= chain_len {
                    continue;
                }
                let mut node = head;
                for _ in 0..place {
                    node = node.next.as_deref()?;
                }
                return Some((&node.key, &node.value));
            }
        }
    }
}

struct ChainIter<'a, V> {
    link: Option<&'a Node<V>>,
}

impl<'a, V> Iterator for ChainIter<'a, V> {
    type Item = (&'a Blob, &'a V);
    fn next(&mut self) -> Option<Self::Item> {
        let node = self.link?;
        self.link = node.next.as_deref();
        Some((&node.key, &node.value))
    }
}

/// Increments the masked-off high bits of `v` in reverse binary order (Redis's dictScan).
fn next_cursor(v: u64, mask: u64) -> u64 {
    let v = v | !mask;
    let v = v.reverse_bits().wrapping_add(1);
    v.reverse_bits()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn blob(i: usize) -> Blob {
        Blob::from_slice(format!("key:{i}").as_bytes())
    }

    #[test]
    fn insert_get_remove_across_resizes() {
        let mut d = Dict::new();
        for i in 0..10_000 {
            assert!(d.insert(blob(i), i).is_none());
        }
        assert_eq!(d.len(), 10_000);
        for i in 0..10_000 {
            assert_eq!(d.get(&blob(i)), Some(&i));
        }
        for i in 0..9_990 {
            assert_eq!(d.remove(&blob(i)), Some(i));
        }
        assert_eq!(d.len(), 10);
        assert_eq!(d.get(&blob(9_995)), Some(&9_995));
        assert!(d.get(&blob(5)).is_none());
    }

    #[test]
    fn inserting_alone_keeps_rehashing_going() {
        let mut d = Dict::new();
        for i in 0..100_000 {
            d.insert_new(blob(i), ());
        }
        let buckets = d.main.buckets.len() + d.next.as_ref().map_or(0, |t| t.buckets.len());
        assert!(
            buckets >= d.len() / 2,
            "{buckets} buckets for {} entries",
            d.len()
        );
    }

    #[test]
    fn scan_returns_every_stable_element_despite_resizes() {
        let mut d = Dict::new();
        for i in 0..1000 {
            d.insert(blob(i), ());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(k.clone());
            });
            // Grow and shrink the table under the scan.
            round += 1;
            if round % 3 == 0 {
                for j in 0..200 {
                    d.insert(blob(100_000 + round * 1000 + j), ());
                }
            } else if round % 3 == 1 {
                for j in 0..200 {
                    d.remove(&blob(100_000 + (round - 1) * 1000 + j));
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            assert!(seen.contains(&blob(i)), "missed key {i}");
        }
    }

    #[test]
    fn random_entry_is_fair() {
        // 10 entries in 16 buckets share some buckets: each must still come up about as
        // often as the others (chi-square with 9 degrees of freedom; 40 is p = 0.00001).
        let mut d = Dict::new();
        for i in 0..10 {
            d.insert(blob(i), i);
        }
        let mut rng = rand::rng();
        let mut counts = [0u32; 10];
        let draws = 20_000;
        for _ in 0..draws {
            counts[*d.random_entry(&mut rng).unwrap().1 as usize] += 1;
        }
        let expected = f64::from(draws) / 10.0;
        let chi: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum();
        assert!(chi < 40.0, "chi-square {chi}: {counts:?}");
    }

    #[test]
    fn random_entry_reaches_everything() {
        let mut d = Dict::new();
        for i in 0..20 {
            d.insert(blob(i), i);
        }
        let mut rng = rand::rng();
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            seen.insert(*d.random_entry(&mut rng).unwrap().1);
        }
        assert_eq!(seen.len(), 20);
    }
}
