//! A stream, laid out as Redis 7.0 lays it out: entries packed into listpack nodes keyed by
//! their master entry's id (Redis's radix tree of listpacks; here an ordered map), each entry
//! stored as its id's difference from the master id, with its field names left out when they
//! are the master entry's. Deleting marks an entry; a node goes once all of its entries are
//! deleted. Consumer groups keep their pending entries (PEL) and consumers beside it.
//!
//! Node layout (t_stream.c): master entry `count deleted num-fields field... 0`, then per
//! entry `flags ms-diff seq-diff [num-fields field value... | value...] lp-count`.

use std::collections::{BTreeMap, BTreeSet};

use smallvec::SmallVec;

use super::listpack::{Elem, Listpack};
use super::value::{malloc_size, Blob};

const FLAG_DELETED: i64 = 1;
const FLAG_SAME_FIELDS: i64 = 2;
/// Redis's cap on one node's size whatever stream-node-max-bytes says.
const NODE_MAX_SIZE: usize = 1 << 30;
/// The value of `entries_read` that means "not known" (Redis's SCG_INVALID_ENTRIES_READ).
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

/// An entry id: milliseconds and a sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The next id up, None past the last possible one.
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The next id down, None before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self
                .ms
                .checked_sub(1)
                .map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }

    /// `ms-seq`, as replies give it.
    pub fn text(self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    /// The 16-byte big-endian form an RDB file keys nodes and PELs by.
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    pub fn from_be_bytes(bytes: &[u8]) -> Option<StreamId> {
        let bytes: &[u8; 16] = bytes.try_into().ok()?;
        let (ms, seq) = bytes.split_at(8);
        Some(StreamId {
            ms: u64::from_be_bytes(ms.try_into().ok()?),
            seq: u64::from_be_bytes(seq.try_into().ok()?),
        })
    }
}

/// An entry as read: its id and its field/value pairs (borrowed from the node).
#[derive(Debug, Clone)]
pub struct StreamEntry<'a> {
    pub id: StreamId,
    pub fields: SmallVec<[(Elem<'a>, Elem<'a>); 4]>,
}

/// One entry of a node as a walk finds it: its id and flags, where its fields start.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: StreamId,
    deleted: bool,
    flags_at: usize,
    same_fields: bool,
    body_at: Option<usize>,
}

/// Walks a node's entries in order, reading each one's id and flags; the fields are read
/// only for the entries asked for (`fields`).
struct NodeCursor<'a> {
    lp: &'a Listpack,
    master: StreamId,
    names: SmallVec<[Elem<'a>; 4]>,
    pos: Option<usize>,
}

impl<'a> NodeCursor<'a> {
    fn new(lp: &'a Listpack, master: StreamId) -> Self {
        let (names, pos) = master_fields(lp);
        NodeCursor {
            lp,
            master,
            names,
            pos,
        }
    }

    fn fields(&self, slot: &Slot) -> SmallVec<[(Elem<'a>, Elem<'a>); 4]> {
        let lp = self.lp;
        let mut fields = SmallVec::new();
        let mut at = slot.body_at;
        if slot.same_fields {
            for name in &self.names {
                let Some(p) = at else { break };
                fields.push((*name, lp.get(p)));
                at = lp.next(p);
            }
        } else {
            let count = at.map_or(0, |p| lp.int_at(p)).max(0);
            at = at.and_then(|p| lp.next(p));
            for _ in 0..count {
                let (Some(f), Some(v)) = (at, at.and_then(|p| lp.next(p))) else {
                    break;
                };
                fields.push((lp.get(f), lp.get(v)));
                at = lp.next(v);
            }
        }
        fields
    }

    fn entry(&self, slot: &Slot) -> StreamEntry<'a> {
        StreamEntry {
            id: slot.id,
            fields: self.fields(slot),
        }
    }
}

impl Iterator for NodeCursor<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        let lp = self.lp;
        let flags_at = self.pos?;
        let flags = lp.int_at(flags_at);
        let ms_at = lp.next(flags_at)?;
        let seq_at = lp.next(ms_at)?;
        let id = StreamId {
            ms: self.master.ms.wrapping_add(lp.int_at(ms_at) as u64),
            seq: self.master.seq.wrapping_add(lp.int_at(seq_at) as u64),
        };
        let body_at = lp.next(seq_at);
        let same_fields = flags & FLAG_SAME_FIELDS != 0;
        // The fields (and, unless the master's, their names), then lp-count.
        let skip = if same_fields {
            self.names.len()
        } else {
            1 + 2 * body_at.map_or(0, |p| lp.int_at(p)).max(0) as usize
        };
        let mut at = body_at;
        for _ in 0..=skip {
            at = at.and_then(|p| lp.next(p));
        }
        self.pos = at;
        Some(Slot {
            id,
            deleted: flags & FLAG_DELETED != 0,
            flags_at,
            same_fields,
            body_at,
        })
    }
}

/// How far a node grows before the next entry starts a new one (stream-node-max-bytes,
/// stream-node-max-entries; 0 for no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

/// What trimming keeps: the newest `MaxLen` entries, or those from `MinId` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// A pending entry: delivered to `consumer`, not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub delivery_time: u64,
    pub delivery_count: u64,
    pub consumer: Blob,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumer {
    pub seen_time: u64,
    pub pending: BTreeSet<StreamId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read, as Redis counts them for the lag; ENTRIES_READ_UNKNOWN if
    /// it cannot be known.
    pub entries_read: i64,
    pub pending: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Blob, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Self {
        Group {
            last_id,
            entries_read,
            pending: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The consumer named `name`, created if new (true as the second value then).
    pub fn consumer(&mut self, name: &[u8], now: u64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let consumer = self
            .consumers
            .entry(Blob::from_slice(name))
            .or_insert_with(|| Consumer {
                seen_time: now,
                pending: BTreeSet::new(),
            });
        (consumer, created)
    }

    /// Records a delivery of `id` to `consumer` (which must exist) by XREADGROUP: pending
    /// from now, delivered once, whoever had it before.
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: u64) {
        self.claim(id, consumer, now, Some(1));
    }

    /// Gives the pending entry `id` (created if absent, as delivered once) to `consumer`
    /// (which must exist), delivered at `time`, with `retries` as its delivery count if given.
    pub fn claim(&mut self, id: StreamId, consumer: &[u8], time: u64, retries: Option<u64>) {
        let entry = self.pending.entry(id).or_insert_with(|| Pending {
            delivery_time: time,
            delivery_count: 1,
            consumer: Blob::new(),
        });
        if entry.consumer[..] != *consumer {
            if let Some(previous) = self.consumers.get_mut(&entry.consumer) {
                previous.pending.remove(&id);
            }
            entry.consumer = Blob::from_slice(consumer);
        }
        entry.delivery_time = time;
        if let Some(n) = retries {
            entry.delivery_count = n;
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    /// Acknowledges `id`; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(pending) = self.pending.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&pending.consumer) {
            c.pending.remove(&id);
        }
        true
    }

    /// Removes a consumer and its pending entries; returns how many it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pending {
            self.pending.remove(id);
        }
        Some(consumer.pending.len())
    }

    fn heap_size(&self, name: &Blob) -> usize {
        const PENDING_BYTES: usize = 96;
        const CONSUMER_BYTES: usize = 96;
        super::value::heap_size_of(name)
            + malloc_size(std::mem::size_of::<Group>())
            + self.pending.len() * PENDING_BYTES
            + self.consumers.len() * CONSUMER_BYTES
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Listpack>,
    length: u64,
    pub last_id: StreamId,
    /// The first live entry's id (0-0 when empty).
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    /// Entries ever added (XADD), for the consumer groups' lag.
    pub entries_added: u64,
    /// Consumer groups by name, in the byte order Redis's radix tree keeps them.
    pub groups: BTreeMap<Blob, Group>,
    node_heap: usize,
}

/// Bytes of a node's place in the map, besides its listpack.
const NODE_BYTES: usize = 64;

impl Stream {
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Nodes holding entries (Redis's radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes, in id order, by master id: what an RDB file stores.
    pub fn nodes(&self) -> impl Iterator<Item = (&StreamId, &Listpack)> {
        self.nodes.iter()
    }

    pub fn heap_size(&self) -> usize {
        self.node_heap
            + self.nodes.len() * NODE_BYTES
            + self
                .groups
                .iter()
                .map(|(name, g)| g.heap_size(name))
                .sum::<usize>()
    }

    /// Adds a node read from a file (already checked by `check_node`), with its live count.
    pub fn load_node(&mut self, master: StreamId, lp: Listpack, live: u64) {
        self.node_heap += lp.heap_size();
        self.length += live;
        self.nodes.insert(master, lp);
    }

    /// Appends an entry with `id` (greater than `last_id`; the caller checks), splitting nodes
    /// at `limits` as Redis's streamAppendItem does.
    pub fn append(&mut self, id: StreamId, fields: &[(&[u8], &[u8])], limits: NodeLimits) {
        let entry_bytes: usize = fields.iter().map(|(f, v)| f.len() + v.len()).sum();
        let max_bytes = match limits.max_bytes {
            0 => NODE_MAX_SIZE,
            n => n.min(NODE_MAX_SIZE),
        };
        let reuse = self.nodes.last_key_value().is_some_and(|(_, lp)| {
            if lp.len_bytes() + entry_bytes >= max_bytes {
                return false;
            }
            let (live, deleted, _) = master_counts(lp);
            limits.max_entries == 0 || ((live + deleted) as usize) < limits.max_entries
        });
        if reuse {
            if let Some((&master, lp)) = self.nodes.iter_mut().next_back() {
                self.node_heap -= lp.heap_size();
                append_to_node(lp, master, id, fields);
                self.node_heap += lp.heap_size();
            }
        } else {
            let mut lp = Listpack::default();
            let mut items: Vec<Elem> = vec![Elem::Int(1), Elem::Int(0)];
            items.push(Elem::Int(fields.len() as i64));
            items.extend(fields.iter().map(|(f, _)| Elem::Str(f)));
            items.push(Elem::Int(0));
            lp.push_all(&items);
            push_entry(&mut lp, id, id, fields, true);
            self.node_heap += lp.heap_size();
            self.nodes.insert(id, lp);
        }
        if self.length == 0 {
            self.first_id = id;
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
    }

    /// Visits the live entries with ids in `range` (inclusive bounds), ascending or, with
    /// `rev`, descending, until `visit` returns false.
    pub fn scan<'a>(
        &'a self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        mut visit: impl FnMut(StreamEntry<'a>) -> bool,
    ) {
        if start > end {
            return;
        }
        // The node that may hold `start` begins at or before it.
        let from = self
            .nodes
            .range(..=start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        let nodes = self.nodes.range(from..=end);
        let wanted = |slot: &Slot| !slot.deleted && slot.id >= start && slot.id <= end;
        if rev {
            for (master, lp) in nodes.rev() {
                let cursor = NodeCursor::new(lp, *master);
                let slots: Vec<Slot> = NodeCursor::new(lp, *master).collect();
                for slot in slots.iter().rev().filter(|s| wanted(s)) {
                    if !visit(cursor.entry(slot)) {
                        return;
                    }
                }
            }
        } else {
            for (master, lp) in nodes {
                let mut cursor = NodeCursor::new(lp, *master);
                while let Some(slot) = cursor.next() {
                    if slot.id > end {
                        return;
                    }
                    if wanted(&slot) && !visit(cursor.entry(&slot)) {
                        return;
                    }
                }
            }
        }
    }

    /// The live entry with `id`, if any.
    pub fn get(&self, id: StreamId) -> Option<StreamEntry<'_>> {
        let mut found = None;
        self.scan(id, id, false, |e| {
            found = Some(e);
            false
        });
        found
    }

    /// The first (or, with `last`, the last) live entry's id.
    pub fn edge_id(&self, last: bool) -> Option<StreamId> {
        if last {
            return self
                .nodes
                .iter()
                .rev()
                .find_map(|(master, lp)| last_entry_id(lp, *master, true));
        }
        self.nodes.iter().find_map(|(master, lp)| {
            NodeCursor::new(lp, *master)
                .find(|slot| !slot.deleted)
                .map(|slot| slot.id)
        })
    }

    /// Deletes the entry `id`; true if it was there.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, lp)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(flags_at) = NodeCursor::new(lp, master)
            .take_while(|slot| slot.id <= id)
            .find(|slot| slot.id == id && !slot.deleted)
            .map(|slot| slot.flags_at)
        else {
            return false;
        };
        self.node_heap -= lp.heap_size();
        mark_deleted(lp, flags_at);
        let emptied = count_deleted(lp, 1) == 0;
        self.node_heap += lp.heap_size();
        if emptied {
            if let Some(lp) = self.nodes.remove(&master) {
                self.node_heap -= lp.heap_size();
            }
        }
        self.length -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.edge_id(false).unwrap_or_default();
        }
        true
    }

    /// Trims as XADD and XTRIM do (Redis's streamTrim): whole nodes while they fit, then,
    /// unless `approx`, entries inside the next node. `limit` caps the entries removed
    /// (0: no cap). Returns how many were removed.
    pub fn trim(&mut self, trim: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        let masters: Vec<StreamId> = self.nodes.keys().copied().collect();
        for master in masters {
            if let Trim::MaxLen(max) = trim {
                if self.length <= max {
                    break;
                }
            }
            let Some(lp) = self.nodes.get_mut(&master) else {
                continue;
            };
            let (live, _, _) = master_counts(lp);
            if limit > 0 && removed + live > limit {
                break;
            }
            let whole = match trim {
                Trim::MaxLen(max) => self.length - live >= max,
                Trim::MinId(min) => last_entry_id(lp, master, false).unwrap_or(master) < min,
            };
            if whole {
                if let Some(lp) = self.nodes.remove(&master) {
                    self.node_heap -= lp.heap_size();
                }
                self.length -= live;
                removed += live;
                continue;
            }
            if approx {
                break;
            }
            let entries: Vec<(StreamId, usize)> = NodeCursor::new(lp, master)
                .filter(|slot| !slot.deleted)
                .map(|slot| (slot.id, slot.flags_at))
                .collect();
            self.node_heap -= lp.heap_size();
            let mut marks = Vec::new();
            let mut length = self.length;
            for &(id, flags_at) in &entries {
                let stop = match trim {
                    Trim::MaxLen(max) => length <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                marks.push(flags_at);
                length -= 1;
            }
            // Flags change in place; the master counts (which may change size) come last.
            for &flags_at in &marks {
                mark_deleted(lp, flags_at);
            }
            count_deleted(lp, marks.len() as i64);
            self.node_heap += lp.heap_size();
            removed += marks.len() as u64;
            self.length = length;
            break;
        }
        if removed > 0 {
            self.first_id = if self.length == 0 {
                StreamId::MIN
            } else {
                self.edge_id(false).unwrap_or_default()
            };
        }
        removed
    }

    /// True if an entry between `start` and `end` (inclusive) was deleted, as far as the
    /// stream can tell (Redis's streamRangeHasTombstones: the last deleted id is in range).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id == StreamId::MIN {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// How many entries were added up to and including `id`, where that can be known
    /// (Redis's streamEstimateDistanceFromFirstEverEntry); ENTRIES_READ_UNKNOWN otherwise.
    pub fn estimate_entries_read(&self, id: StreamId) -> i64 {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        }
        if id > self.last_id {
            return ENTRIES_READ_UNKNOWN;
        }
        if self.max_deleted_id == StreamId::MIN || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return added - self.length as i64;
            }
            if id == self.first_id {
                return added - self.length as i64 + 1;
            }
        }
        ENTRIES_READ_UNKNOWN
    }

    /// The group's lag (entries added it has not read), None where it cannot be known.
    pub fn lag(&self, group: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if group.entries_read != ENTRIES_READ_UNKNOWN
            && !self.range_has_tombstones(group.last_id, StreamId::MAX)
        {
            return Some(self.entries_added as i64 - group.entries_read);
        }
        let read = self.estimate_entries_read(group.last_id);
        (read != ENTRIES_READ_UNKNOWN).then(|| self.entries_added as i64 - read)
    }

    /// Moves a group's last id to `id`, an entry just delivered past it, counting the read.
    pub fn advance_group(&mut self, name: &[u8], id: StreamId) {
        let tombstones = self.range_has_tombstones(id, StreamId::MAX);
        let estimate = self.estimate_entries_read(id);
        let added = self.entries_added;
        let Some(group) = self.groups.get_mut(name) else {
            return;
        };
        if id <= group.last_id {
            return;
        }
        if group.entries_read != ENTRIES_READ_UNKNOWN && !tombstones {
            group.entries_read += 1;
        } else if added > 0 {
            group.entries_read = estimate;
        }
        group.last_id = id;
    }
}

/// `count`, `deleted` and the master field count of a node.
fn master_counts(lp: &Listpack) -> (u64, u64, usize) {
    let Some(first) = lp.first() else {
        return (0, 0, 0);
    };
    let deleted_at = lp.next(first);
    let fields_at = deleted_at.and_then(|p| lp.next(p));
    (
        lp.int_at(first).max(0) as u64,
        deleted_at.map_or(0, |p| lp.int_at(p)).max(0) as u64,
        fields_at.map_or(0, |p| lp.int_at(p)).max(0) as usize,
    )
}

/// The master entry's field names and the position of the first entry.
fn master_fields(lp: &Listpack) -> (SmallVec<[Elem<'_>; 4]>, Option<usize>) {
    let mut fields = SmallVec::new();
    let (_, _, count) = master_counts(lp);
    let mut pos = lp.first().and_then(|p| lp.next(p)).and_then(|p| lp.next(p));
    for _ in 0..count {
        pos = pos.and_then(|p| lp.next(p));
        if let Some(p) = pos {
            fields.push(lp.get(p));
        }
    }
    // Past the last field, then past the master terminator.
    let first_entry = pos.and_then(|p| lp.next(p)).and_then(|p| lp.next(p));
    (fields, first_entry)
}

/// The id of a node's last entry (with `live_only`, its last live one), read backwards from
/// the end as Redis's lpGetEdgeStreamID does: each entry's lp-count says how far back its
/// flags are.
fn last_entry_id(lp: &Listpack, master: StreamId, live_only: bool) -> Option<StreamId> {
    let (live, deleted, _) = master_counts(lp);
    let mut lp_count_at = lp.last();
    for _ in 0..live + deleted {
        let count_at = lp_count_at?;
        let mut flags_at = count_at;
        for _ in 0..lp.int_at(count_at).max(0) {
            flags_at = lp.prev(flags_at)?;
        }
        if !live_only || lp.int_at(flags_at) & FLAG_DELETED == 0 {
            let ms_at = lp.next(flags_at)?;
            let seq_at = lp.next(ms_at)?;
            return Some(StreamId {
                ms: master.ms.wrapping_add(lp.int_at(ms_at) as u64),
                seq: master.seq.wrapping_add(lp.int_at(seq_at) as u64),
            });
        }
        lp_count_at = lp.prev(flags_at);
    }
    None
}

fn append_to_node(lp: &mut Listpack, master: StreamId, id: StreamId, fields: &[(&[u8], &[u8])]) {
    let same = {
        let (names, _) = master_fields(lp);
        names.len() == fields.len()
            && names
                .iter()
                .zip(fields)
                .all(|(name, (f, _))| name.equals(f))
    };
    if let Some(first) = lp.first() {
        let live = lp.int_at(first);
        lp.replace_int(first, live + 1);
    }
    push_entry(lp, master, id, fields, same);
}

fn push_entry(
    lp: &mut Listpack,
    master: StreamId,
    id: StreamId,
    fields: &[(&[u8], &[u8])],
    same: bool,
) {
    let mut items: SmallVec<[Elem; 12]> = SmallVec::new();
    let flags = if same { FLAG_SAME_FIELDS } else { 0 };
    items.push(Elem::Int(flags));
    items.push(Elem::Int(id.ms.wrapping_sub(master.ms) as i64));
    items.push(Elem::Int(id.seq.wrapping_sub(master.seq) as i64));
    if same {
        items.extend(fields.iter().map(|(_, v)| Elem::Str(v)));
    } else {
        items.push(Elem::Int(fields.len() as i64));
        for (f, v) in fields {
            items.push(Elem::Str(f));
            items.push(Elem::Str(v));
        }
    }
    let lp_count = if same {
        fields.len() + 3
    } else {
        fields.len() * 2 + 4
    };
    items.push(Elem::Int(lp_count as i64));
    lp.push_all(&items);
}

/// Flags the entry at `flags_at` deleted (in place: flags are one byte either way).
fn mark_deleted(lp: &mut Listpack, flags_at: usize) {
    let flags = lp.int_at(flags_at);
    lp.replace_int(flags_at, flags | FLAG_DELETED);
}

/// Moves `n` entries from the master entry's live count to its deleted count; returns the
/// live entries left.
fn count_deleted(lp: &mut Listpack, n: i64) -> i64 {
    let Some(first) = lp.first() else {
        return 0;
    };
    let live = lp.int_at(first) - n;
    if let Some(deleted_at) = lp.next(first) {
        let deleted = lp.int_at(deleted_at);
        lp.replace_int(deleted_at, deleted + n);
    }
    lp.replace_int(first, live);
    live
}

/// Checks a node read from a file the way Redis's deep integrity check does, returning its
/// live entry count: counts that match its entries, every entry's elements present and its
/// lp-count right, ids inside the node ascending and above its master id.
pub fn check_node(lp: &Listpack, master: StreamId) -> Result<u64, &'static str> {
    let first = lp.first().ok_or("an empty stream node")?;
    let mut pos = Some(first);
    let take = |pos: &mut Option<usize>, what: &'static str| -> Result<i64, &'static str> {
        let p = pos.ok_or(what)?;
        let n = lp.get(p).int().ok_or(what)?;
        *pos = lp.next(p);
        Ok(n)
    };
    let live = take(&mut pos, "a stream node without its count")?;
    let deleted = take(&mut pos, "a stream node without its deleted count")?;
    let nfields = take(&mut pos, "a stream node without its field count")?;
    if live < 0 || deleted < 0 || nfields < 0 {
        return Err("negative counts in a stream node");
    }
    for _ in 0..nfields {
        let p = pos.ok_or("a stream node's master fields are cut short")?;
        pos = lp.next(p);
    }
    if take(&mut pos, "a stream node without its master terminator")? != 0 {
        return Err("a stream node's master entry is not terminated");
    }
    let entries: Vec<Slot> = NodeCursor::new(lp, master).collect();
    let mut seen_live = 0i64;
    let mut seen_deleted = 0i64;
    let mut previous: Option<StreamId> = None;
    for e in &entries {
        if e.id < master || previous.is_some_and(|p| e.id <= p) {
            return Err("stream entry ids out of order");
        }
        previous = Some(e.id);
        if e.deleted {
            seen_deleted += 1;
        } else {
            seen_live += 1;
        }
    }
    if seen_live != live || seen_deleted != deleted {
        return Err("a stream node's counts differ from its entries");
    }
    // The walk must end exactly at the listpack's end, with every lp-count right.
    let mut at = lp.first();
    for _ in 0..(3 + nfields + 1) {
        at = at.and_then(|p| lp.next(p));
    }
    while let Some(flags_at) = at {
        let flags = lp.get(flags_at).int().ok_or("a stream entry's flags")?;
        let mut count = 0i64;
        let mut p = Some(flags_at);
        let body = if flags & FLAG_SAME_FIELDS != 0 {
            nfields + 3
        } else {
            let n_at = lp
                .next(flags_at)
                .and_then(|p| lp.next(p))
                .and_then(|p| lp.next(p))
                .ok_or("a stream entry is cut short")?;
            let n = lp.get(n_at).int().ok_or("a stream entry's field count")?;
            if n < 0 {
                return Err("a stream entry's field count");
            }
            n * 2 + 4
        };
        while count < body {
            p = p.and_then(|q| lp.next(q));
            if p.is_none() {
                return Err("a stream entry is cut short");
            }
            count += 1;
        }
        let lp_count_at = p.ok_or("a stream entry without lp-count")?;
        if lp.get(lp_count_at).int() != Some(body) {
            return Err("a stream entry's lp-count is wrong");
        }
        at = lp.next(lp_count_at);
    }
    if entries.len() as i64 != live + deleted {
        return Err("a stream node's entries are malformed");
    }
    Ok(live as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> NodeLimits {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 3,
        }
    }

    fn ids(s: &Stream, rev: bool) -> Vec<u64> {
        let mut out = Vec::new();
        s.scan(StreamId::MIN, StreamId::MAX, rev, |e| {
            out.push(e.id.ms);
            true
        });
        out
    }

    #[test]
    fn entries_split_into_nodes_and_read_back_both_ways() {
        let mut s = Stream::default();
        for ms in 1..=7u64 {
            let fields: Vec<(&[u8], &[u8])> = if ms % 2 == 0 {
                vec![(b"a", b"1"), (b"b", b"x")]
            } else {
                vec![(b"other", b"12345")]
            };
            s.append(StreamId::new(ms, 0), &fields, limits());
        }
        assert_eq!(s.node_count(), 3);
        assert_eq!(ids(&s, false), (1..=7).collect::<Vec<_>>());
        assert_eq!(ids(&s, true), (1..=7).rev().collect::<Vec<_>>());
        let e = s.get(StreamId::new(4, 0)).expect("entry 4");
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = e
            .fields
            .iter()
            .map(|(f, v)| (f.bytes().into_owned(), v.bytes().into_owned()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"x".to_vec())
            ]
        );
        for (master, lp) in s.nodes() {
            let lp = Listpack::validate(lp.as_bytes().to_vec()).expect("valid listpack");
            assert!(check_node(&lp, *master).is_ok());
        }
    }

    #[test]
    fn a_node_is_byte_for_byte_what_redis_builds() {
        // XADD s 1-1 f1 v1, XADD s 1-2 f1 v2, XADD s 2-0 a 100, XDEL s 1-1 on redis-server 7.0.
        let mut s = Stream::default();
        let limits = NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        };
        s.append(StreamId::new(1, 1), &[(b"f1", b"v1")], limits);
        s.append(StreamId::new(1, 2), &[(b"f1", b"v2")], limits);
        s.append(StreamId::new(2, 0), &[(b"a", b"100")], limits);
        assert!(s.delete(StreamId::new(1, 1)));
        let (_, lp) = s.nodes().next().expect("one node");
        assert_eq!(
            lp.as_bytes(),
            [
                0x3b, 0, 0, 0, 0x16, 0, 2, 1, 1, 1, 1, 1, 0x82, 0x66, 0x31, 3, 0, 1, 3, 1, 0, 1, 0,
                1, 0x82, 0x76, 0x31, 3, 4, 1, 2, 1, 0, 1, 1, 1, 0x82, 0x76, 0x32, 3, 4, 1, 0, 1, 1,
                1, 0xdf, 0xff, 2, 1, 1, 0x81, 0x61, 2, 0x64, 1, 6, 1, 0xff,
            ]
        );
    }

    #[test]
    fn deletes_mark_entries_and_drop_emptied_nodes() {
        let mut s = Stream::default();
        for ms in 1..=6u64 {
            s.append(StreamId::new(ms, 0), &[(b"f", b"v")], limits());
        }
        assert!(s.delete(StreamId::new(1, 0)));
        assert!(!s.delete(StreamId::new(1, 0)));
        assert_eq!(s.first_id, StreamId::new(2, 0));
        assert!(s.delete(StreamId::new(2, 0)) && s.delete(StreamId::new(3, 0)));
        assert_eq!(s.node_count(), 1);
        assert_eq!(s.len(), 3);
        assert_eq!(s.max_deleted_id, StreamId::new(3, 0));
        assert_eq!(ids(&s, false), vec![4, 5, 6]);
    }

    #[test]
    fn trimming_approximately_removes_only_whole_nodes() {
        let mut s = Stream::default();
        for ms in 1..=10u64 {
            s.append(StreamId::new(ms, 0), &[(b"f", b"v")], limits());
        }
        assert_eq!(s.trim(Trim::MaxLen(5), true, 0), 3);
        assert_eq!(s.len(), 7);
        assert_eq!(s.trim(Trim::MaxLen(5), false, 0), 2);
        assert_eq!(ids(&s, false), vec![6, 7, 8, 9, 10]);
        assert_eq!(s.trim(Trim::MinId(StreamId::new(9, 0)), false, 0), 3);
        assert_eq!(ids(&s, false), vec![9, 10]);
        assert_eq!(s.first_id, StreamId::new(9, 0));
    }
}
