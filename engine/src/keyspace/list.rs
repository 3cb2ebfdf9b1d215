//! A list's storage: a deque of chunks, each a buffer of packed entries, as Redis's quicklist
//! of listpacks. Pushes and pops at either end are O(1) and never move the rest of the list;
//! a three-byte member costs five bytes instead of a 32-byte slot; a long list grows by adding
//! chunks, never by reallocating and copying itself.
//!
//! Entry layout: `len data len`, where each `len` is one byte below 255, or 0xFF followed (at
//! the front) or preceded (at the back) by the length as u32 LE. So entries can be walked from
//! either end. Each chunk's buffer keeps free room at both ends: pushes at the front fill the
//! room before `start`, pushes at the back the room after `end`.

use std::collections::VecDeque;

use super::value::{malloc_size, Blob};

/// A chunk stops growing at this many bytes (a longer member gets a chunk of its own).
const CHUNK_MAX: usize = 4096;
/// The first buffer of a new list's first chunk (it doubles as the list grows).
const CHUNK_MIN: usize = 16;
/// Lengths from this value up use the long form.
const LONG: u8 = 0xFF;

/// Bytes an entry of `len` data bytes takes.
fn entry_size(len: usize) -> usize {
    if len < LONG as usize {
        len + 2
    } else {
        len + 10
    }
}

/// Writes an entry into `dst`, which is exactly `entry_size(data.len())` long.
fn write_entry(dst: &mut [u8], data: &[u8]) {
    let n = dst.len();
    if data.len() < LONG as usize {
        dst[0] = data.len() as u8;
        dst[n - 1] = data.len() as u8;
        dst[1..n - 1].copy_from_slice(data);
    } else {
        let len = (data.len() as u32).to_le_bytes();
        dst[0] = LONG;
        dst[1..5].copy_from_slice(&len);
        dst[5..n - 5].copy_from_slice(data);
        dst[n - 5..n - 1].copy_from_slice(&len);
        dst[n - 1] = LONG;
    }
}

fn read_u32(bytes: &[u8]) -> usize {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word) as usize
}

/// The data of the entry starting at `at`, and where the next one starts.
fn entry_at(buf: &[u8], at: usize) -> (&[u8], usize) {
    if buf[at] < LONG {
        let len = buf[at] as usize;
        (&buf[at + 1..at + 1 + len], at + len + 2)
    } else {
        let len = read_u32(&buf[at + 1..]);
        (&buf[at + 5..at + 5 + len], at + len + 10)
    }
}

/// The data of the entry ending at `end`, and where it starts.
fn entry_before(buf: &[u8], end: usize) -> (&[u8], usize) {
    if buf[end - 1] < LONG {
        let len = buf[end - 1] as usize;
        (&buf[end - 1 - len..end - 1], end - len - 2)
    } else {
        let len = read_u32(&buf[end - 5..]);
        (&buf[end - 5 - len..end - 5], end - len - 10)
    }
}

#[derive(Debug, Clone)]
struct Chunk {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    count: usize,
}

/// Which end of a chunk an entry goes to; it decides where the free room is kept.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Front,
    Back,
}

impl Chunk {
    /// An empty chunk of `capacity` bytes, with its room on the side pushes will come from.
    fn new(capacity: usize, side: Side) -> Chunk {
        let at = if side == Side::Front { capacity } else { 0 };
        Chunk {
            buf: vec![0; capacity].into_boxed_slice(),
            start: at,
            end: at,
            count: 0,
        }
    }

    /// A chunk holding `items`, its buffer just large enough.
    fn packed<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Chunk {
        let items: Vec<&[u8]> = items.into_iter().collect();
        let size = items.iter().map(|i| entry_size(i.len())).sum();
        let mut chunk = Chunk::new(size, Side::Back);
        for item in items {
            chunk.put(item, Side::Back);
        }
        chunk
    }

    fn used(&self) -> usize {
        self.end - self.start
    }

    fn entries(&self) -> ChunkEntries<'_> {
        ChunkEntries {
            buf: &self.buf,
            at: self.start,
            end: self.end,
        }
    }

    /// Heap bytes of the buffer, as malloc rounds them.
    fn heap(&self) -> usize {
        malloc_size(self.buf.len())
    }

    /// Adds an entry at `side` if it fits within CHUNK_MAX (an empty chunk takes any size),
    /// moving or growing the buffer as needed. Returns the change in heap bytes, or None if
    /// the entry belongs in a new chunk.
    fn try_push(&mut self, data: &[u8], side: Side) -> Option<isize> {
        let size = entry_size(data.len());
        let room = match side {
            Side::Front => self.start,
            Side::Back => self.buf.len() - self.end,
        };
        if room >= size {
            self.put(data, side);
            return Some(0);
        }
        let needed = self.used() + size;
        if needed > CHUNK_MAX && self.count > 0 {
            return None;
        }
        let old = self.buf.len();
        let capacity = if needed <= old {
            old
        } else {
            (old * 2).clamp(needed, CHUNK_MAX.max(needed))
        };
        // Keep the entries, with all the free room on `side`.
        let mut buf = if capacity == old {
            std::mem::take(&mut self.buf)
        } else {
            vec![0; capacity].into_boxed_slice()
        };
        let used = self.used();
        let at = if side == Side::Front {
            capacity - used
        } else {
            0
        };
        if capacity == old {
            buf.copy_within(self.start..self.end, at);
        } else {
            buf[at..at + used].copy_from_slice(&self.buf[self.start..self.end]);
        }
        self.buf = buf;
        self.start = at;
        self.end = at + used;
        self.put(data, side);
        Some(malloc_size(capacity) as isize - malloc_size(old) as isize)
    }

    /// Writes an entry into the room at `side` (the caller made sure it fits).
    fn put(&mut self, data: &[u8], side: Side) {
        let size = entry_size(data.len());
        match side {
            Side::Front => {
                self.start -= size;
                write_entry(&mut self.buf[self.start..self.start + size], data);
            }
            Side::Back => {
                write_entry(&mut self.buf[self.end..self.end + size], data);
                self.end += size;
            }
        }
        self.count += 1;
    }

    fn pop(&mut self, side: Side) -> Blob {
        self.count -= 1;
        match side {
            Side::Front => {
                let (data, next) = entry_at(&self.buf, self.start);
                let item = Blob::from_slice(data);
                self.start = next;
                item
            }
            Side::Back => {
                let (data, prev) = entry_before(&self.buf, self.end);
                let item = Blob::from_slice(data);
                self.end = prev;
                item
            }
        }
    }

    /// Byte offset of the entry `index` places from the chunk's first.
    fn offset_of(&self, index: usize) -> usize {
        let mut at = self.start;
        for _ in 0..index {
            at = entry_at(&self.buf, at).1;
        }
        at
    }
}

/// The entries of one chunk, front to back.
struct ChunkEntries<'a> {
    buf: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Iterator for ChunkEntries<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.end {
            return None;
        }
        let (data, next) = entry_at(self.buf, self.at);
        self.at = next;
        Some(data)
    }
}

impl DoubleEndedIterator for ChunkEntries<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let (data, prev) = entry_before(self.buf, self.end);
        self.end = prev;
        Some(data)
    }
}

/// A change to one chunk's entries (see `List::rebuild_chunk`).
enum Edit<'a> {
    Set(usize, &'a [u8]),
    Insert(usize, &'a [u8]),
    /// Removes the entries marked true.
    Remove(Vec<bool>),
}

/// A list of byte strings.
#[derive(Debug, Clone, Default)]
pub struct List {
    chunks: VecDeque<Chunk>,
    len: usize,
    /// Heap bytes of all chunk buffers.
    buffers: usize,
}

impl List {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes: the chunk table and every chunk's buffer, as malloc rounds them.
    pub(super) fn mem_size(&self) -> usize {
        let table = self.chunks.capacity() * std::mem::size_of::<Chunk>();
        if table == 0 {
            self.buffers
        } else {
            malloc_size(table) + self.buffers
        }
    }

    fn push(&mut self, data: &[u8], side: Side) {
        let end = match side {
            Side::Front => self.chunks.front_mut(),
            Side::Back => self.chunks.back_mut(),
        };
        match end.and_then(|chunk| chunk.try_push(data, side)) {
            Some(grown) => self.buffers = self.buffers.saturating_add_signed(grown),
            None => {
                let size = entry_size(data.len());
                let capacity = if self.chunks.is_empty() {
                    size.max(CHUNK_MIN)
                } else {
                    size.max(CHUNK_MAX)
                };
                let mut chunk = Chunk::new(capacity, side);
                chunk.put(data, side);
                self.buffers += chunk.heap();
                match side {
                    Side::Front => self.chunks.push_front(chunk),
                    Side::Back => self.chunks.push_back(chunk),
                }
            }
        }
        self.len += 1;
    }

    pub fn push_front(&mut self, data: &[u8]) {
        self.push(data, Side::Front);
    }

    pub fn push_back(&mut self, data: &[u8]) {
        self.push(data, Side::Back);
    }

    fn pop(&mut self, side: Side) -> Option<Blob> {
        let chunk = match side {
            Side::Front => self.chunks.front_mut()?,
            Side::Back => self.chunks.back_mut()?,
        };
        let item = chunk.pop(side);
        if chunk.count == 0 {
            self.buffers -= chunk.heap();
            match side {
                Side::Front => self.chunks.pop_front(),
                Side::Back => self.chunks.pop_back(),
            };
        }
        self.len -= 1;
        self.shrink_table();
        Some(item)
    }

    pub fn pop_front(&mut self) -> Option<Blob> {
        self.pop(Side::Front)
    }

    pub fn pop_back(&mut self) -> Option<Blob> {
        self.pop(Side::Back)
    }

    /// The chunk holding `index` and the index within it, walking from the nearer end.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        if index < self.len / 2 {
            let mut rest = index;
            for (c, chunk) in self.chunks.iter().enumerate() {
                if rest < chunk.count {
                    return Some((c, rest));
                }
                rest -= chunk.count;
            }
        } else {
            let mut from_end = self.len - index;
            for (c, chunk) in self.chunks.iter().enumerate().rev() {
                if from_end <= chunk.count {
                    return Some((c, chunk.count - from_end));
                }
                from_end -= chunk.count;
            }
        }
        None
    }

    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let (c, i) = self.locate(index)?;
        let chunk = &self.chunks[c];
        Some(entry_at(&chunk.buf, chunk.offset_of(i)).0)
    }

    /// Rebuilds chunk `c` with `edit` applied to its entries, split in two or more if it grew
    /// too big, or gone if it became empty.
    fn rebuild_chunk(&mut self, c: usize, edit: Edit) {
        let chunk = &self.chunks[c];
        let mut items: Vec<&[u8]> = chunk.entries().collect();
        match edit {
            Edit::Set(i, data) => items[i] = data,
            Edit::Insert(i, data) => items.insert(i, data),
            Edit::Remove(gone) => {
                let mut i = 0;
                items.retain(|_| {
                    i += 1;
                    !gone[i - 1]
                });
            }
        }
        let mut parts = Vec::new();
        let mut from = 0;
        let mut size = 0;
        for (i, item) in items.iter().enumerate() {
            let item_size = entry_size(item.len());
            if size + item_size > CHUNK_MAX && i > from {
                parts.push(Chunk::packed(items[from..i].iter().copied()));
                from = i;
                size = 0;
            }
            size += item_size;
        }
        if from < items.len() {
            parts.push(Chunk::packed(items[from..].iter().copied()));
        }
        if let Some(old) = self.chunks.remove(c) {
            self.buffers -= old.heap();
        }
        for (k, chunk) in parts.into_iter().enumerate() {
            self.buffers += chunk.heap();
            self.chunks.insert(c + k, chunk);
        }
    }

    pub fn set(&mut self, index: usize, data: &[u8]) {
        let Some((c, i)) = self.locate(index) else {
            return;
        };
        let chunk = &mut self.chunks[c];
        let at = chunk.offset_of(i);
        let (old, next) = entry_at(&chunk.buf, at);
        if old.len() == data.len() {
            write_entry(&mut chunk.buf[at..next], data);
        } else {
            self.rebuild_chunk(c, Edit::Set(i, data));
        }
    }

    /// Inserts `data` before the item at `index` (at the end if `index == len`).
    pub fn insert(&mut self, index: usize, data: &[u8]) {
        if index >= self.len {
            self.push_back(data);
            return;
        }
        let Some((c, i)) = self.locate(index) else {
            return;
        };
        self.rebuild_chunk(c, Edit::Insert(i, data));
        self.len += 1;
    }

    /// Keeps only the items in `start..end`.
    pub fn keep_range(&mut self, start: usize, end: usize) {
        let end = end.min(self.len);
        let start = start.min(end);
        let (mut drop_front, mut drop_back) = (start, self.len - end);
        while drop_back > 0 {
            let Some(last) = self.chunks.back_mut() else {
                break;
            };
            if last.count <= drop_back {
                drop_back -= last.count;
                self.buffers -= last.heap();
                self.chunks.pop_back();
            } else {
                for _ in 0..drop_back {
                    last.end = entry_before(&last.buf, last.end).1;
                }
                last.count -= drop_back;
                drop_back = 0;
            }
        }
        while drop_front > 0 {
            let Some(first) = self.chunks.front_mut() else {
                break;
            };
            if first.count <= drop_front {
                drop_front -= first.count;
                self.buffers -= first.heap();
                self.chunks.pop_front();
            } else {
                first.start = first.offset_of(drop_front);
                first.count -= drop_front;
                drop_front = 0;
            }
        }
        self.len = end - start;
        self.shrink_table();
    }

    /// Gives back the chunk table's memory once it is mostly unused.
    fn shrink_table(&mut self) {
        if self.chunks.is_empty() || self.chunks.len() * 4 < self.chunks.capacity() {
            self.chunks.shrink_to_fit();
        }
    }

    /// All items, front to back (and back to front with `.rev()`).
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// The items from `index` on, front to back.
    pub fn iter_from(&self, index: usize) -> Iter<'_> {
        let (chunk, inner) = match self.locate(index) {
            Some((c, i)) => {
                let mut entries = self.chunks[c].entries();
                entries.at = self.chunks[c].offset_of(i);
                (c, Some(entries))
            }
            None => (self.chunks.len(), None),
        };
        Iter {
            list: self,
            front_chunk: chunk,
            front: inner,
            back_chunk: self.chunks.len(),
            back: None,
            remaining: self.len.saturating_sub(index),
        }
    }

    /// Removes items equal to `target`, from the head if `count >= 0` (at most `count`, 0 =
    /// all) or from the tail for negative `count`. Returns how many were removed.
    pub fn remove_matching(&mut self, count: i64, target: &[u8]) -> usize {
        let mut limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs() as usize
        };
        let order: Vec<usize> = if count >= 0 {
            (0..self.chunks.len()).collect()
        } else {
            (0..self.chunks.len()).rev().collect()
        };
        let mut removed = 0;
        let mut edits = Vec::new();
        for c in order {
            if limit == 0 {
                break;
            }
            let chunk = &self.chunks[c];
            let mut gone = vec![false; chunk.count];
            let mut hits = 0;
            let mut mark = |i: usize, item: &[u8]| {
                if hits < limit && item == target {
                    gone[i] = true;
                    hits += 1;
                }
            };
            if count >= 0 {
                chunk.entries().enumerate().for_each(|(i, e)| mark(i, e));
            } else {
                let n = chunk.count;
                chunk
                    .entries()
                    .rev()
                    .enumerate()
                    .for_each(|(i, e)| mark(n - 1 - i, e));
            }
            if hits > 0 {
                limit -= hits;
                removed += hits;
                edits.push((c, gone));
            }
        }
        // Highest chunk first, so earlier indexes stay valid as chunks are replaced.
        edits.sort_unstable_by_key(|edit| std::cmp::Reverse(edit.0));
        for (c, gone) in edits {
            self.rebuild_chunk(c, Edit::Remove(gone));
        }
        self.len -= removed;
        self.shrink_table();
        removed
    }
}

impl<A: AsRef<[u8]>> FromIterator<A> for List {
    fn from_iter<I: IntoIterator<Item = A>>(iter: I) -> Self {
        let mut list = List::default();
        for item in iter {
            list.push_back(item.as_ref());
        }
        list
    }
}

/// Iterates a list's items from both ends.
pub struct Iter<'a> {
    list: &'a List,
    front_chunk: usize,
    front: Option<ChunkEntries<'a>>,
    back_chunk: usize,
    back: Option<ChunkEntries<'a>>,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            if let Some(item) = self.front.as_mut().and_then(Iterator::next) {
                self.remaining -= 1;
                return Some(item);
            }
            self.front_chunk += 1;
            self.front = Some(self.list.chunks.get(self.front_chunk)?.entries());
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            if let Some(item) = self.back.as_mut().and_then(DoubleEndedIterator::next_back) {
                self.remaining -= 1;
                return Some(item);
            }
            self.back_chunk = self.back_chunk.checked_sub(1)?;
            self.back = Some(self.list.chunks.get(self.back_chunk)?.entries());
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn items(list: &List) -> Vec<Vec<u8>> {
        list.iter().map(<[u8]>::to_vec).collect()
    }

    /// Runs the same operations on a `List` and on a `VecDeque`, comparing after each.
    #[test]
    fn behaves_as_a_deque_under_random_operations() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut list = List::default();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for step in 0..20_000 {
            let size = match rng.random_range(0..20) {
                0 => rng.random_range(250..5000),
                _ => rng.random_range(0..12),
            };
            let item: Vec<u8> = (0..size).map(|_| rng.random_range(b'a'..b'e')).collect();
            match rng.random_range(0..12) {
                0..=2 => {
                    list.push_front(&item);
                    model.push_front(item);
                }
                3..=5 => {
                    list.push_back(&item);
                    model.push_back(item);
                }
                6 => assert_eq!(list.pop_front().map(|b| b.to_vec()), model.pop_front()),
                7 => assert_eq!(list.pop_back().map(|b| b.to_vec()), model.pop_back()),
                8 if !model.is_empty() => {
                    let i = rng.random_range(0..model.len());
                    list.set(i, &item);
                    model[i] = item;
                }
                9 => {
                    let i = rng.random_range(0..=model.len());
                    list.insert(i, &item);
                    model.insert(i, item);
                }
                10 if step % 50 == 0 => {
                    let target: Vec<u8> = item.iter().take(1).copied().collect();
                    let count = rng.random_range(-3..4);
                    let removed = list.remove_matching(count, &target);
                    let limit = if count == 0 {
                        usize::MAX
                    } else {
                        count.unsigned_abs() as usize
                    };
                    let mut hits: Vec<usize> =
                        (0..model.len()).filter(|&i| model[i] == target).collect();
                    if count < 0 {
                        hits.reverse();
                    }
                    hits.truncate(limit);
                    hits.sort_unstable_by(|a, b| b.cmp(a));
                    hits.iter().for_each(|&i| {
                        model.remove(i);
                    });
                    assert_eq!(removed, hits.len());
                }
                11 if step % 100 == 0 => {
                    let a = rng.random_range(0..=model.len());
                    let b = rng.random_range(a..=model.len());
                    list.keep_range(a, b);
                    model = model.range(a..b).cloned().collect();
                }
                _ => {}
            }
            assert_eq!(list.len(), model.len());
            if step % 97 == 0 {
                assert_eq!(items(&list), Vec::from(model.clone()));
                let backwards: Vec<Vec<u8>> = list.iter().rev().map(<[u8]>::to_vec).collect();
                assert!(backwards.iter().eq(model.iter().rev()));
                if !model.is_empty() {
                    let i = rng.random_range(0..model.len());
                    assert_eq!(list.get(i), Some(&model[i][..]));
                    assert!(list.iter_from(i).eq(model.range(i..).map(|v| &v[..])));
                }
            }
        }
    }

    #[test]
    fn a_long_list_is_compact_and_frees_its_chunks() {
        let mut list = List::default();
        for i in 0..100_000u32 {
            list.push_front(format!("{:03}", i % 1000).as_bytes());
        }
        // Five bytes an entry plus chunk overhead: far below a 32-byte slot per item.
        assert!(list.mem_size() < 100_000 * 6, "{}", list.mem_size());
        assert_eq!(list.get(0), Some(&b"999"[..]));
        assert_eq!(list.get(99_999), Some(&b"000"[..]));
        while list.pop_back().is_some() {}
        assert_eq!(list.mem_size(), 0);
    }

    #[test]
    fn long_members_and_both_length_forms() {
        let big = vec![b'x'; 100_000];
        let mut list: List = [&b"a"[..], &big[..], &[7u8; 254][..], &[8u8; 255][..]]
            .into_iter()
            .collect();
        list.push_front(&big);
        assert_eq!(list.len(), 5);
        assert_eq!(list.get(1), Some(&b"a"[..]));
        assert_eq!(list.get(4), Some(&[8u8; 255][..]));
        assert_eq!(list.iter().rev().nth(1), Some(&[7u8; 254][..]));
        assert_eq!(list.pop_front().map(|b| b.len()), Some(100_000));
        list.set(1, b"small");
        assert_eq!(items(&list)[1], b"small");
    }
}
