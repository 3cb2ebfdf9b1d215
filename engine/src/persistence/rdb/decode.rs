//! The RDB reader: a streaming parser of RDB files and DUMP payloads that turns each key into
//! a ready `Value`.
//!
//! Untrusted input is the norm here (a file from anywhere, a RESTORE payload from any client),
//! so: every length is checked against the bytes actually left before anything is allocated,
//! every compact blob is validated in full, duplicates and impossible values are refused, and
//! each error names its offset. Reading never writes: a file that fails to load is untouched.

use std::io::Read;
use std::path::Path;

use super::{
    compact, kind, lzf, opcode, prealloc, RdbError, CRC64, RDB_OLDEST_VERSION, RDB_VERSION,
};
use crate::keyspace::listpack::Listpack;
use crate::keyspace::stream::{self, Group, Stream, StreamId};
use crate::keyspace::{Blob, Hash, List, Set, Value, ZSet, DB_COUNT};

/// One key read from a file, with what was stored before it.
#[derive(Debug)]
pub struct LoadedKey {
    pub db: usize,
    pub key: Blob,
    pub value: Value,
    pub expire_ms: Option<u64>,
    pub idle_secs: Option<u64>,
    pub freq: Option<u8>,
}

/// A byte source that knows its length, so claimed lengths can be checked before allocating.
/// It reads the input in large blocks into a window and hands out slices of it; the CRC is
/// computed over whole consumed stretches of the window rather than per field.
pub struct RdbReader<R: Read> {
    input: R,
    window: Vec<u8>,
    /// Consumed up to here; filled up to `end`; hashed up to `hashed`.
    start: usize,
    end: usize,
    hashed: usize,
    /// Offset in the input of `window[0]`.
    window_offset: u64,
    pos: u64,
    total: u64,
    digest: crc::Digest<'static, u64, crc::Table<16>>,
    pub version: u16,
    db: usize,
    /// AUX fields seen so far (name, value).
    pub aux: Vec<(String, String)>,
    /// FUNCTION2 libraries skipped (functions are not supported; their keys still load).
    pub skipped_functions: u64,
    /// The last RESIZEDB hint not yet taken: (db, keys, keys with a TTL), capped by what the
    /// rest of the input could hold.
    resize_hint: Option<(usize, u64, u64)>,
    finished: bool,
}

impl<R: Read> std::fmt::Debug for RdbReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdbReader")
            .field("pos", &self.pos)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// Opens an RDB file for reading; checks the signature and version.
pub fn open_file(path: &Path) -> Result<RdbReader<std::fs::File>, RdbError> {
    let io = |source| RdbError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let total = file.metadata().map_err(io)?.len();
    RdbReader::new(file, total)
}

impl<R: Read> RdbReader<R> {
    /// Starts reading a file of `total` bytes: checks "REDIS" and the version.
    pub fn new(input: R, total: u64) -> Result<Self, RdbError> {
        let mut reader = RdbReader {
            input,
            window: Vec::new(),
            start: 0,
            end: 0,
            hashed: 0,
            window_offset: 0,
            pos: 0,
            total,
            digest: CRC64.digest(),
            version: 0,
            db: 0,
            aux: Vec::new(),
            skipped_functions: 0,
            resize_hint: None,
            finished: false,
        };
        let magic = reader
            .take(9, "header")
            .map_err(|_| RdbError::BadSignature)?
            .to_vec();
        if &magic[..5] != b"REDIS" {
            return Err(RdbError::BadSignature);
        }
        let version = std::str::from_utf8(&magic[5..])
            .ok()
            .and_then(|v| v.parse::<u16>().ok())
            .ok_or(RdbError::BadSignature)?;
        if !(RDB_OLDEST_VERSION..=RDB_VERSION).contains(&version) {
            return Err(RdbError::UnsupportedVersion(version));
        }
        reader.version = version;
        Ok(reader)
    }

    /// The size hint of the database being read, once (RESIZEDB).
    pub fn take_resize_hint(&mut self) -> Option<(usize, u64, u64)> {
        self.resize_hint.take()
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    fn truncated(&self, what: &'static str) -> RdbError {
        RdbError::Truncated {
            offset: self.pos,
            what,
        }
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> RdbError {
        RdbError::Corrupt {
            offset,
            reason: reason.into(),
        }
    }

    /// Makes at least `n` unconsumed bytes available in the window (the caller checked that
    /// the input holds them).
    fn ensure(&mut self, n: usize, what: &'static str) -> Result<(), RdbError> {
        const BLOCK: usize = 1 << 20;
        if self.end - self.start >= n {
            return Ok(());
        }
        // Hash what was consumed, drop it, and read on.
        self.digest.update(&self.window[self.hashed..self.start]);
        self.window.copy_within(self.start..self.end, 0);
        self.window_offset += self.start as u64;
        self.end -= self.start;
        self.start = 0;
        self.hashed = 0;
        let left_in_input = (self.total - self.window_offset) as usize;
        let want = n.max(BLOCK).min(left_in_input);
        if self.window.len() < want {
            self.window.resize(want, 0);
        }
        while self.end < n {
            let limit = self.window.len().min(left_in_input);
            match self.input.read(&mut self.window[self.end..limit]) {
                Ok(0) | Err(_) => return Err(self.truncated(what)),
                Ok(read) => self.end += read,
            }
        }
        Ok(())
    }

    /// The next `n` bytes; a length past the end of the input is refused before allocating.
    fn take(&mut self, n: u64, what: &'static str) -> Result<&[u8], RdbError> {
        let left = self.total - self.pos;
        if n > left {
            return Err(if n <= 8 {
                self.truncated(what)
            } else {
                RdbError::Corrupt {
                    offset: self.pos,
                    reason: format!("{what} claims {n} bytes but only {left} remain"),
                }
            });
        }
        let n = n as usize;
        self.ensure(n, what)?;
        let at = self.start;
        self.start += n;
        self.pos += n as u64;
        Ok(&self.window[at..at + n])
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RdbError> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RdbError> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N as u64, what)?);
        Ok(b)
    }

    /// A length, or the special-encoding marker of a string (`Err(Ok(kind))`).
    fn len_or_special(&mut self, what: &'static str) -> Result<Result<u64, u8>, RdbError> {
        let b = self.u8(what)?;
        Ok(match b >> 6 {
            0 => Ok(u64::from(b & 0x3F)),
            1 => Ok((u64::from(b & 0x3F) << 8) | u64::from(self.u8(what)?)),
            2 => match b {
                0x80 => Ok(u64::from(u32::from_be_bytes(self.array(what)?))),
                0x81 => Ok(u64::from_be_bytes(self.array(what)?)),
                _ => {
                    return Err(self.corrupt(self.pos - 1, format!("bad length byte {b:#04x}")));
                }
            },
            _ => Err(b & 0x3F),
        })
    }

    fn len(&mut self, what: &'static str) -> Result<u64, RdbError> {
        let at = self.pos;
        match self.len_or_special(what)? {
            Ok(n) => Ok(n),
            Err(_) => Err(self.corrupt(
                at,
                format!("{what}: expected a length, found a string encoding"),
            )),
        }
    }

    /// An element count, refused if it could not fit in the bytes left (each element takes
    /// at least `min_bytes`).
    fn count(&mut self, what: &'static str, min_bytes: u64) -> Result<u64, RdbError> {
        let at = self.pos;
        let n = self.len(what)?;
        if n.saturating_mul(min_bytes) > self.total - self.pos {
            return Err(self.corrupt(
                at,
                format!("{what} claims {n} elements but the input is too short"),
            ));
        }
        Ok(n)
    }

    /// A string in any of its encodings.
    pub fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        self.blob().map(|b| b.into_vec())
    }

    /// A string in any of its encodings, straight into a `Blob` (short ones stay inline).
    fn blob(&mut self) -> Result<Blob, RdbError> {
        let at = self.pos;
        let int = |n: i64| Blob::from_slice(itoa::Buffer::new().format(n).as_bytes());
        match self.len_or_special("string")? {
            Ok(n) => self.take(n, "string").map(Blob::from_slice),
            Err(0) => Ok(int(i64::from(self.u8("int8")? as i8))),
            Err(1) => Ok(int(i64::from(i16::from_le_bytes(self.array("int16")?)))),
            Err(2) => Ok(int(i64::from(i32::from_le_bytes(self.array("int32")?)))),
            Err(3) => {
                let clen = self.len("compressed length")?;
                let len = self.len("uncompressed length")?;
                let len =
                    usize::try_from(len).map_err(|_| self.corrupt(at, "LZF length too large"))?;
                let packed = self.take(clen, "compressed string")?;
                lzf::decompress(packed, len)
                    .map(Blob::from_vec)
                    .map_err(|e| self.corrupt(at, e.to_string()))
            }
            Err(other) => Err(self.corrupt(at, format!("unknown string encoding {other}"))),
        }
    }

    /// A compact blob stored as a string, read into its elements by `parse`.
    fn compact(&mut self, parse: CompactParser) -> Result<Vec<Blob>, RdbError> {
        let base = self.pos;
        let blob = self.string()?;
        parse(&blob, base)
    }

    fn stream_id(&mut self, what: &'static str) -> Result<StreamId, RdbError> {
        Ok(StreamId::new(self.len(what)?, self.len(what)?))
    }

    fn raw_id(&mut self, what: &'static str) -> Result<StreamId, RdbError> {
        let bytes: [u8; 16] = self.array(what)?;
        Ok(StreamId::from_be_bytes(&bytes).unwrap_or_default())
    }

    /// A stream of type STREAM_LISTPACKS (6.x), _2 (7.0) or _3 (7.2, whose consumers also
    /// carry an active time, read and dropped: 7.0 has none). Every node is checked as Redis's
    /// deep integrity check does; the groups' pending entries must match their consumers'.
    fn stream(&mut self, code: u8, at: u64) -> Result<Stream, RdbError> {
        let mut stream = Stream::default();
        let nodes = self.count("stream nodes", 2)?;
        let mut previous: Option<StreamId> = None;
        for _ in 0..nodes {
            let key_at = self.pos;
            let key = self.string()?;
            let master = StreamId::from_be_bytes(&key)
                .ok_or_else(|| self.corrupt(key_at, "stream node key is not 16 bytes"))?;
            if previous.is_some_and(|p| master <= p) {
                return Err(self.corrupt(key_at, "stream nodes out of order"));
            }
            previous = Some(master);
            let lp_at = self.pos;
            let lp = Listpack::validate(self.string()?)
                .map_err(|e| self.corrupt(lp_at, e.to_string()))?;
            let live = stream::check_node(&lp, master).map_err(|e| self.corrupt(lp_at, e))?;
            stream.load_node(master, lp, live);
        }
        let length = self.len("stream length")?;
        if length != stream.len() {
            return Err(self.corrupt(at, "stream length differs from its entries"));
        }
        stream.last_id = self.stream_id("stream last id")?;
        if code == kind::STREAM_LISTPACKS {
            stream.entries_added = stream.len();
            stream.first_id = stream.edge_id(false).unwrap_or_default();
        } else {
            stream.first_id = self.stream_id("stream first id")?;
            stream.max_deleted_id = self.stream_id("stream max deleted id")?;
            stream.entries_added = self.len("stream entries added")?;
        }
        if stream
            .edge_id(true)
            .is_some_and(|last| last > stream.last_id)
        {
            return Err(self.corrupt(at, "stream entries past its last id"));
        }
        let groups = self.count("stream groups", 3)?;
        for _ in 0..groups {
            let group_at = self.pos;
            let name = self.blob()?;
            let last_id = self.stream_id("group last id")?;
            let entries_read = if code == kind::STREAM_LISTPACKS {
                stream.estimate_entries_read(last_id)
            } else {
                self.len("group entries read")? as i64
            };
            let mut group = Group::new(last_id, entries_read);
            let pending = self.count("group pending entries", 17)?;
            for _ in 0..pending {
                let id = self.raw_id("pending entry id")?;
                let delivery_time = u64::from_le_bytes(self.array("delivery time")?);
                let delivery_count = self.len("delivery count")?;
                let entry = stream::Pending {
                    delivery_time,
                    delivery_count,
                    consumer: Blob::new(),
                };
                if group.pending.insert(id, entry).is_some() {
                    return Err(self.corrupt(group_at, "duplicate pending entry"));
                }
            }
            let consumers = self.count("group consumers", 10)?;
            let mut owned_ids = std::collections::BTreeSet::new();
            for _ in 0..consumers {
                let consumer_at = self.pos;
                let name = self.blob()?;
                let seen_time = u64::from_le_bytes(self.array("consumer seen time")?);
                if code == kind::STREAM_LISTPACKS_3 {
                    let _active_time: [u8; 8] = self.array("consumer active time")?;
                }
                let mut consumer = stream::Consumer {
                    seen_time,
                    pending: Default::default(),
                };
                let owned = self.count("consumer pending entries", 16)?;
                for _ in 0..owned {
                    let id = self.raw_id("consumer pending id")?;
                    let Some(entry) = group.pending.get_mut(&id) else {
                        return Err(self.corrupt(
                            consumer_at,
                            "a consumer's pending entry is not in its group's",
                        ));
                    };
                    if !owned_ids.insert(id) {
                        return Err(self.corrupt(consumer_at, "a pending entry owned twice"));
                    }
                    entry.consumer = name.clone();
                    consumer.pending.insert(id);
                }
                if group.consumers.insert(name, consumer).is_some() {
                    return Err(self.corrupt(consumer_at, "duplicate consumer"));
                }
            }
            if owned_ids.len() != group.pending.len() {
                return Err(self.corrupt(group_at, "a pending entry without a consumer"));
            }
            if stream.groups.insert(name, group).is_some() {
                return Err(self.corrupt(group_at, "duplicate consumer group"));
            }
        }
        Ok(stream)
    }

    /// A score stored as text with a length byte (zset type 3).
    fn text_double(&mut self) -> Result<f64, RdbError> {
        let at = self.pos;
        match self.u8("score")? {
            253 => Err(self.corrupt(at, "NaN score")),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let score = parse_score(self.take(u64::from(n), "score")?);
                score.ok_or_else(|| self.corrupt(at, "score is not a number"))
            }
        }
    }

    /// The next key, or None after EOF (with the checksum verified).
    pub fn next_key(&mut self) -> Result<Option<LoadedKey>, RdbError> {
        if self.finished {
            return Ok(None);
        }
        let mut expire_ms = None;
        let mut idle_secs = None;
        let mut freq = None;
        loop {
            let at = self.pos;
            let code = self.u8("opcode")?;
            match code {
                opcode::EOF => {
                    self.finish()?;
                    return Ok(None);
                }
                opcode::SELECTDB => {
                    let db = self.len("database number")?;
                    if db >= DB_COUNT as u64 {
                        return Err(self.corrupt(
                            at,
                            format!("database {db} is out of range (0-{})", DB_COUNT - 1),
                        ));
                    }
                    self.db = db as usize;
                }
                opcode::RESIZEDB => {
                    let keys = self.len("database size")?;
                    let expires = self.len("expires size")?;
                    // A key takes at least 3 bytes (type, empty name, empty value), one with
                    // a TTL 8 more (EXPIRETIME and 4 bytes): never more than the rest holds.
                    let left = self.total - self.pos;
                    self.resize_hint = Some((self.db, keys.min(left / 3), expires.min(left / 8)));
                }
                opcode::AUX => {
                    let name = self.string()?;
                    let value = self.string()?;
                    self.aux.push((
                        String::from_utf8_lossy(&name).into_owned(),
                        String::from_utf8_lossy(&value).into_owned(),
                    ));
                }
                opcode::EXPIRETIME_MS => {
                    expire_ms = Some(u64::from_le_bytes(self.array("expire time")?))
                }
                opcode::EXPIRETIME => {
                    let secs = u32::from_le_bytes(self.array("expire time")?);
                    expire_ms = Some(u64::from(secs) * 1000);
                }
                opcode::IDLE => idle_secs = Some(self.len("idle time")?),
                opcode::FREQ => freq = Some(self.u8("frequency")?),
                opcode::FUNCTION2 => {
                    self.string()?;
                    self.skipped_functions += 1;
                }
                opcode::FUNCTION => {
                    return Err(RdbError::Unsupported {
                        offset: at,
                        code,
                        what: "a function library (pre-7.0 format)",
                    });
                }
                opcode::MODULE_AUX => {
                    return Err(RdbError::Unsupported {
                        offset: at,
                        code,
                        what: "module data",
                    });
                }
                value_kind => {
                    let key = self.blob()?;
                    let Some(value) = self.value(value_kind, at)? else {
                        // Empty collections are skipped, as Redis does.
                        expire_ms = None;
                        idle_secs = None;
                        freq = None;
                        continue;
                    };
                    return Ok(Some(LoadedKey {
                        db: self.db,
                        key,
                        value,
                        expire_ms,
                        idle_secs,
                        freq,
                    }));
                }
            }
        }
    }

    /// After EOF: verifies the CRC64 (files from version 5 on carry one; 0 means unchecked).
    fn finish(&mut self) -> Result<(), RdbError> {
        self.finished = true;
        if self.version < 5 {
            return Ok(());
        }
        self.digest.update(&self.window[self.hashed..self.start]);
        self.hashed = self.start;
        let computed = self.digest.clone().finalize();
        let stored = u64::from_le_bytes(self.array("checksum")?);
        if stored != 0 && stored != computed {
            return Err(RdbError::Checksum { stored, computed });
        }
        Ok(())
    }

    /// A value of type `code`; None for an empty collection.
    pub fn value(&mut self, code: u8, at: u64) -> Result<Option<Value>, RdbError> {
        let value = match code {
            kind::STRING => Value::Str(self.blob()?),
            kind::LIST => {
                let n = self.count("list", 1)?;
                let mut list = List::default();
                for _ in 0..n {
                    list.push_back(&self.blob()?);
                }
                Value::List(Box::new(list))
            }
            kind::SET => {
                let n = self.count("set", 1)?;
                let mut members = Vec::with_capacity(prealloc(n));
                for _ in 0..n {
                    members.push(self.blob()?);
                }
                Value::Set(Box::new(build_set(members, at)?))
            }
            kind::ZSET | kind::ZSET_2 => {
                let n = self.count("sorted set", 2)?;
                let mut zset = ZSet::default();
                for _ in 0..n {
                    let member = self.blob()?;
                    let score = if code == kind::ZSET_2 {
                        let score = f64::from_le_bytes(self.array("score")?);
                        if score.is_nan() {
                            return Err(self.corrupt(at, "NaN score"));
                        }
                        score
                    } else {
                        self.text_double()?
                    };
                    if zset.insert(&member, score).is_some() {
                        return Err(self.corrupt(at, "duplicate sorted set member"));
                    }
                }
                Value::ZSet(Box::new(zset))
            }
            kind::HASH => {
                let n = self.count("hash", 2)?;
                let mut pairs = Vec::with_capacity(prealloc(n.saturating_mul(2)));
                for _ in 0..n * 2 {
                    pairs.push(self.blob()?);
                }
                Value::Hash(Box::new(build_hash(pairs, at)?))
            }
            kind::HASH_ZIPMAP => {
                Value::Hash(Box::new(build_hash(self.compact(compact::zipmap)?, at)?))
            }
            kind::LIST_ZIPLIST => Value::List(Box::new(
                self.compact(compact::ziplist)?.into_iter().collect(),
            )),
            kind::SET_INTSET => {
                Value::Set(Box::new(build_set(self.compact(compact::intset)?, at)?))
            }
            kind::SET_LISTPACK => {
                Value::Set(Box::new(build_set(self.compact(compact::listpack)?, at)?))
            }
            kind::ZSET_ZIPLIST | kind::ZSET_LISTPACK => {
                let items = self.compact(ziplist_or_listpack(code == kind::ZSET_ZIPLIST))?;
                Value::ZSet(Box::new(build_zset(items, at)?))
            }
            kind::HASH_ZIPLIST | kind::HASH_LISTPACK => {
                let items = self.compact(ziplist_or_listpack(code == kind::HASH_ZIPLIST))?;
                Value::Hash(Box::new(build_hash(items, at)?))
            }
            kind::LIST_QUICKLIST | kind::LIST_QUICKLIST_2 => {
                let nodes = self.count("quicklist", 2)?;
                let parse = ziplist_or_listpack(code == kind::LIST_QUICKLIST);
                let mut list = List::default();
                for _ in 0..nodes {
                    let container = if code == kind::LIST_QUICKLIST_2 {
                        self.len("quicklist container")?
                    } else {
                        2
                    };
                    let base = self.pos;
                    match container {
                        1 => list.push_back(&self.blob()?),
                        2 => {
                            let items = self.compact(parse)?;
                            if items.is_empty() {
                                return Err(self.corrupt(base, "empty quicklist node"));
                            }
                            items.into_iter().for_each(|item| list.push_back(&item));
                        }
                        other => {
                            return Err(
                                self.corrupt(base, format!("unknown quicklist container {other}"))
                            );
                        }
                    }
                }
                Value::List(Box::new(list))
            }
            kind::MODULE | kind::MODULE_2 => {
                return Err(RdbError::Unsupported {
                    offset: at,
                    code,
                    what: "a module value",
                });
            }
            kind::STREAM_LISTPACKS | kind::STREAM_LISTPACKS_2 | kind::STREAM_LISTPACKS_3 => {
                // A stream is kept even with no entries left (its ids and groups are state).
                return self
                    .stream(code, at)
                    .map(|s| Some(Value::Stream(Box::new(s))));
            }
            other => {
                return Err(RdbError::Unsupported {
                    offset: at,
                    code: other,
                    what: "an unknown value type",
                });
            }
        };
        Ok((value.element_count() > 0).then_some(value))
    }
}

/// A reader of the compact blobs inside a value (listpack, ziplist, intset, zipmap).
type CompactParser = fn(&[u8], u64) -> Result<Vec<Blob>, RdbError>;

fn ziplist_or_listpack(ziplist: bool) -> CompactParser {
    if ziplist {
        compact::ziplist
    } else {
        compact::listpack
    }
}

/// Parses a score as Redis writes it in text ("1.5", "inf", "-inf").
fn parse_score(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    let v: f64 = s.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

fn build_set(members: Vec<Blob>, at: u64) -> Result<Set, RdbError> {
    let mut set = Set::default();
    for m in members {
        if !set.insert(&m) {
            return Err(RdbError::Corrupt {
                offset: at,
                reason: "duplicate set member".into(),
            });
        }
    }
    Ok(set)
}

fn build_hash(items: Vec<Blob>, at: u64) -> Result<Hash, RdbError> {
    if !items.len().is_multiple_of(2) {
        return Err(RdbError::Corrupt {
            offset: at,
            reason: "hash with a field but no value".into(),
        });
    }
    let mut hash = Hash::default();
    let mut items = items.into_iter();
    while let (Some(field), Some(value)) = (items.next(), items.next()) {
        if !hash.insert(&field, value) {
            return Err(RdbError::Corrupt {
                offset: at,
                reason: "duplicate hash field".into(),
            });
        }
    }
    Ok(hash)
}

fn build_zset(items: Vec<Blob>, at: u64) -> Result<ZSet, RdbError> {
    let corrupt = |reason: &str| RdbError::Corrupt {
        offset: at,
        reason: reason.into(),
    };
    if !items.len().is_multiple_of(2) {
        return Err(corrupt("sorted set member without a score"));
    }
    let mut zset = ZSet::default();
    let mut items = items.into_iter();
    while let (Some(member), Some(score)) = (items.next(), items.next()) {
        let score = parse_score(&score).ok_or_else(|| corrupt("score is not a number"))?;
        if zset.insert(&member, score).is_some() {
            return Err(corrupt("duplicate sorted set member"));
        }
    }
    Ok(zset)
}

/// Checks a DUMP payload's footer (version, CRC64) and reads its value.
pub fn restore_payload(payload: &[u8]) -> Result<Value, PayloadError> {
    if payload.len() < 11 {
        return Err(PayloadError::Footer);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().map_err(|_| PayloadError::Footer)?);
    if version > RDB_VERSION || CRC64.checksum(&payload[..payload.len() - 8]) != crc {
        return Err(PayloadError::Footer);
    }
    let mut reader = RdbReader {
        input: &body[1..],
        window: Vec::new(),
        start: 0,
        end: 0,
        hashed: 0,
        window_offset: 0,
        pos: 0,
        total: body.len() as u64 - 1,
        digest: CRC64.digest(),
        version,
        db: 0,
        aux: Vec::new(),
        skipped_functions: 0,
        resize_hint: None,
        finished: false,
    };
    let value = reader
        .value(body[0], 0)
        .map_err(|_| PayloadError::BadData)?
        .ok_or(PayloadError::BadData)?;
    if reader.pos != reader.total {
        return Err(PayloadError::BadData);
    }
    Ok(value)
}

/// Why RESTORE refused a payload (the texts are Redis's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("ERR DUMP payload version or checksum are wrong")]
    Footer,
    #[error("ERR Bad data format")]
    BadData,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::rdb::RdbWriter;

    /// A ziplist of short strings, and of small integers written as such.
    fn ziplist(items: &[&str]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0u8;
        for item in items {
            let start = body.len();
            body.push(prev);
            match item.parse::<i8>() {
                Ok(n) => body.extend_from_slice(&[0xFE, n as u8]),
                Err(_) => {
                    body.push(item.len() as u8);
                    body.extend_from_slice(item.as_bytes());
                }
            }
            prev = (body.len() - start) as u8;
        }
        let mut out = Vec::new();
        out.extend_from_slice(&((10 + body.len() + 1) as u32).to_le_bytes());
        out.extend_from_slice(&10u32.to_le_bytes());
        out.extend_from_slice(&(items.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xFF);
        out
    }

    fn listpack(items: &[&str]) -> Vec<u8> {
        let mut body = Vec::new();
        for item in items {
            match item.parse::<u8>() {
                Ok(n) if n < 128 => body.extend_from_slice(&[n, 1]),
                _ => {
                    body.push(0x80 | item.len() as u8);
                    body.extend_from_slice(item.as_bytes());
                    body.push(item.len() as u8 + 1);
                }
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&((6 + body.len() + 1) as u32).to_le_bytes());
        out.extend_from_slice(&(items.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xFF);
        out
    }

    fn file(version: u16, body: impl FnOnce(&mut RdbWriter)) -> Vec<u8> {
        let mut w = RdbWriter::new();
        w.buf
            .extend_from_slice(format!("REDIS{version:04}").as_bytes());
        body(&mut w);
        w.buf.push(opcode::EOF);
        if version >= 5 {
            let crc = CRC64.checksum(&w.buf);
            w.buf.extend_from_slice(&crc.to_le_bytes());
        }
        w.buf
    }

    fn blob_of(w: &mut RdbWriter, bytes: &[u8]) {
        w.len(bytes.len() as u64);
        w.buf.extend_from_slice(bytes);
    }

    fn read_all(data: &[u8]) -> Result<Vec<LoadedKey>, RdbError> {
        let mut reader = RdbReader::new(data, data.len() as u64)?;
        let mut keys = Vec::new();
        while let Some(k) = reader.next_key()? {
            keys.push(k);
        }
        Ok(keys)
    }

    fn describe(v: &Value) -> String {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match v {
            Value::Str(s) => text(s),
            Value::List(l) => l.iter().map(text).collect::<Vec<_>>().join(","),
            Value::Set(s) => {
                let mut m: Vec<_> = s.iter().map(|m| text(m)).collect();
                m.sort();
                m.join(",")
            }
            Value::Hash(h) => {
                let mut m: Vec<_> = h
                    .fields
                    .iter()
                    .map(|(f, v)| format!("{}={}", text(f), text(v)))
                    .collect();
                m.sort();
                m.join(",")
            }
            Value::ZSet(z) => z
                .iter()
                .map(|e| format!("{}:{}", text(&e.member), e.score))
                .collect::<Vec<_>>()
                .join(","),
            Value::Stream(s) => {
                let mut out = Vec::new();
                s.scan(StreamId::MIN, StreamId::MAX, false, |e| {
                    let fields: Vec<String> = e
                        .fields
                        .iter()
                        .map(|(f, v)| format!("{}={}", text(&f.bytes()), text(&v.bytes())))
                        .collect();
                    out.push(format!("{}:{}", e.id.text(), fields.join("&")));
                    true
                });
                out.join(",")
            }
        }
    }

    /// DUMP of a stream from redis-server 7.0 (XADD s 1-1 f1 v1, 1-2 f1 v2, 2-0 a 100,
    /// XDEL s 1-1, XGROUP CREATE s g 0, XREADGROUP GROUP g alice COUNT 1, XGROUP
    /// CREATECONSUMER s g bob), with its seen times zeroed and the CRC recomputed.
    fn redis_stream_payload() -> Vec<u8> {
        let mut p = vec![0x13, 0x01, 0x10];
        p.extend_from_slice(&StreamId::new(1, 1).to_be_bytes());
        p.push(0x3b);
        p.extend_from_slice(&[
            0x3b, 0, 0, 0, 0x16, 0, 2, 1, 1, 1, 1, 1, 0x82, 0x66, 0x31, 3, 0, 1, 3, 1, 0, 1, 0, 1,
            0x82, 0x76, 0x31, 3, 4, 1, 2, 1, 0, 1, 1, 1, 0x82, 0x76, 0x32, 3, 4, 1, 0, 1, 1, 1,
            0xdf, 0xff, 2, 1, 1, 0x81, 0x61, 2, 0x64, 1, 6, 1, 0xff,
        ]);
        p.extend_from_slice(&[2, 2, 0, 1, 2, 1, 1, 3, 1, 1, 0x67, 1, 2, 2, 1]);
        p.extend_from_slice(&StreamId::new(1, 2).to_be_bytes());
        p.extend_from_slice(&0x01a235953e41u64.to_le_bytes());
        p.extend_from_slice(&[1, 2, 5, b'a', b'l', b'i', b'c', b'e']);
        p.extend_from_slice(&[0; 8]);
        p.push(1);
        p.extend_from_slice(&StreamId::new(1, 2).to_be_bytes());
        p.extend_from_slice(&[3, b'b', b'o', b'b']);
        p.extend_from_slice(&[0; 8]);
        p.push(0);
        p.extend_from_slice(&super::super::RDB_VERSION.to_le_bytes());
        let crc = CRC64.checksum(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    #[test]
    fn a_redis_stream_dump_restores_with_its_groups_and_dumps_back_the_same() {
        let payload = redis_stream_payload();
        let value = restore_payload(&payload).expect("restores");
        let Value::Stream(stream) = &value else {
            panic!("not a stream");
        };
        assert_eq!(describe(&value), "1-2:f1=v2,2-0:a=100");
        assert_eq!(
            (
                stream.len(),
                stream.last_id,
                stream.first_id,
                stream.max_deleted_id
            ),
            (
                2,
                StreamId::new(2, 0),
                StreamId::new(1, 2),
                StreamId::new(1, 1)
            )
        );
        let group = stream.groups.get(&b"g"[..]).expect("group g");
        assert_eq!(
            (group.last_id, group.entries_read),
            (StreamId::new(1, 2), 2)
        );
        let pending = group
            .pending
            .get(&StreamId::new(1, 2))
            .expect("pending 1-2");
        assert_eq!(
            (&pending.consumer[..], pending.delivery_count),
            (&b"alice"[..], 1)
        );
        assert_eq!(group.consumers.len(), 2);
        assert_eq!(super::super::dump_payload(&value), payload);
    }

    #[test]
    fn a_stream_whose_consumer_owns_an_entry_its_group_lacks_is_refused() {
        let mut payload = redis_stream_payload();
        // alice's pending id 1-2 becomes 1-3, which the group's list does not hold.
        let alice = payload
            .windows(5)
            .position(|w| w == b"alice")
            .expect("alice");
        let id_at = alice + 5 + 8 + 1;
        payload[id_at + 15] = 3;
        let body = payload.len() - 8;
        let crc = CRC64.checksum(&payload[..body]);
        payload[body..].copy_from_slice(&crc.to_le_bytes());
        assert!(restore_payload(&payload).is_err());
    }

    #[test]
    fn version_3_file_with_zipmap_ziplist_intset_and_text_scores() {
        let data = file(3, |w| {
            w.buf.push(opcode::SELECTDB);
            w.len(2);
            w.buf.push(opcode::EXPIRETIME);
            w.buf.extend_from_slice(&4_000_000_000u32.to_le_bytes());
            w.buf.push(kind::STRING);
            w.string(b"s");
            w.string(b"v");
            w.buf.push(kind::HASH_ZIPMAP);
            w.string(b"zm");
            blob_of(
                w,
                &[2, 1, b'a', 1, 0, b'1', 1, b'b', 2, 1, b'x', b'y', 0, 0xFF],
            );
            w.buf.push(kind::LIST_ZIPLIST);
            w.string(b"zl");
            blob_of(w, &ziplist(&["a", "-5", "hello"]));
            w.buf.push(kind::SET_INTSET);
            w.string(b"is");
            let mut intset = vec![4, 0, 0, 0, 2, 0, 0, 0];
            intset.extend_from_slice(&(-70_000i32).to_le_bytes());
            intset.extend_from_slice(&70_000i32.to_le_bytes());
            blob_of(w, &intset);
            w.buf.push(kind::ZSET);
            w.string(b"z");
            w.len(2);
            w.string(b"m1");
            w.buf.extend_from_slice(&[3, b'1', b'.', b'5']);
            w.string(b"m2");
            w.buf.push(255);
        });
        let keys = read_all(&data).unwrap();
        let got: Vec<_> = keys
            .iter()
            .map(|k| (k.db, describe(&k.value), k.expire_ms))
            .collect();
        assert_eq!(
            got,
            [
                (2, "v".to_string(), Some(4_000_000_000_000)),
                (2, "a=1,b=xy".into(), None),
                (2, "a,-5,hello".into(), None),
                (2, "-70000,70000".into(), None),
                (2, "m2:-inf,m1:1.5".into(), None),
            ]
        );
    }

    #[test]
    fn version_8_and_10_compact_encodings() {
        let data = file(8, |w| {
            w.buf.push(opcode::AUX);
            w.string(b"redis-ver");
            w.string(b"4.0.9");
            w.buf.push(opcode::SELECTDB);
            w.len(0);
            w.buf.push(opcode::RESIZEDB);
            w.len(3);
            w.len(0);
            w.buf.push(kind::LIST_QUICKLIST);
            w.string(b"ql");
            w.len(2);
            blob_of(w, &ziplist(&["a", "b"]));
            blob_of(w, &ziplist(&["c"]));
            w.buf.push(kind::HASH_ZIPLIST);
            w.string(b"hz");
            blob_of(w, &ziplist(&["f", "v", "g", "7"]));
            w.buf.push(kind::ZSET_ZIPLIST);
            w.string(b"zz");
            blob_of(w, &ziplist(&["x", "1", "y", "2.5"]));
        });
        let keys = read_all(&data).unwrap();
        let got: Vec<_> = keys.iter().map(|k| describe(&k.value)).collect();
        assert_eq!(got, ["a,b,c", "f=v,g=7", "x:1,y:2.5"]);

        let data = file(10, |w| {
            w.buf.push(opcode::SELECTDB);
            w.len(15);
            w.buf.push(opcode::IDLE);
            w.len(500);
            w.buf.push(kind::LIST_QUICKLIST_2);
            w.string(b"q2");
            w.len(2);
            w.len(1);
            w.string(b"plain-node");
            w.len(2);
            blob_of(w, &listpack(&["p", "7"]));
            w.buf.push(opcode::FREQ);
            w.buf.push(9);
            w.buf.push(kind::HASH_LISTPACK);
            w.string(b"hl");
            blob_of(w, &listpack(&["f", "v"]));
            w.buf.push(kind::ZSET_LISTPACK);
            w.string(b"zl");
            blob_of(w, &listpack(&["m", "3", "n", "inf"]));
            // An empty collection is skipped, as Redis does.
            w.buf.push(kind::SET);
            w.string(b"empty");
            w.len(0);
        });
        let keys = read_all(&data).unwrap();
        let got: Vec<_> = keys
            .iter()
            .map(|k| (k.db, describe(&k.value), k.idle_secs, k.freq))
            .collect();
        assert_eq!(
            got,
            [
                (15, "plain-node,p,7".to_string(), Some(500), None),
                (15, "f=v".into(), None, Some(9)),
                (15, "m:3,n:inf".into(), None, None),
            ]
        );
    }

    #[test]
    fn bad_input_gets_a_clear_error_with_its_offset() {
        let good = file(10, |w| {
            w.buf.push(kind::STRING);
            w.string(b"key");
            w.string(b"value");
            w.buf.push(kind::HASH_LISTPACK);
            w.string(b"h");
            blob_of(w, &listpack(&["f", "v"]));
        });
        assert_eq!(read_all(&good).unwrap().len(), 2);

        let err = |data: &[u8]| read_all(data).unwrap_err().to_string();
        // Truncated anywhere.
        for cut in [5, 12, 20, good.len() - 3] {
            let e = err(&good[..cut]);
            assert!(e.contains("offset"), "{cut}: {e}");
        }
        // Wrong checksum.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(err(&bad).contains("checksum mismatch"));
        // Unknown type.
        let mut bad = good.clone();
        bad[9] = 99;
        assert_eq!(
            err(&bad),
            "at offset 9: an unknown value type (type 99) is not supported by this engine"
        );
        // A string length past the end: refused before allocating 2^32 bytes.
        let mut bad = good.clone();
        bad[10..15].copy_from_slice(&[0x80, 0xFF, 0xFF, 0xFF, 0xF0]);
        assert!(
            err(&bad).contains("claims 4294967280 bytes"),
            "{}",
            err(&bad)
        );
        // A listpack whose header lies about its entry count.
        let mut lying = listpack(&["f", "v"]);
        lying[4] = 3;
        let bad = file(10, |w| {
            w.buf.push(kind::HASH_LISTPACK);
            w.string(b"h");
            blob_of(w, &lying);
        });
        let e = err(&bad);
        assert!(e.contains("says 3 entries") && e.contains("offset"), "{e}");
        // An element count no file could hold.
        let bad = file(10, |w| {
            w.buf.push(kind::LIST);
            w.string(b"l");
            w.len(1 << 40);
        });
        assert!(err(&bad).contains("too short"));
        // Not an RDB at all, or from the future.
        assert!(matches!(
            read_all(b"HELLO WORLD"),
            Err(RdbError::BadSignature)
        ));
        assert!(matches!(
            read_all(b"REDIS0011\xff"),
            Err(RdbError::UnsupportedVersion(11))
        ));
    }

    /// A RESTORE payload: type, body, version and CRC as DUMP writes them.
    fn payload(code: u8, body: impl FnOnce(&mut RdbWriter)) -> Vec<u8> {
        let mut w = RdbWriter::new();
        w.buf.push(code);
        body(&mut w);
        w.buf.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = CRC64.checksum(&w.buf);
        w.buf.extend_from_slice(&crc.to_le_bytes());
        w.buf
    }

    /// An LZF string (encoding 3) of `clen` compressed bytes claiming `len` plain ones.
    fn lzf_string(w: &mut RdbWriter, len: u64) {
        w.buf.push(0xC3);
        w.len(2);
        w.len(len);
        w.buf.extend_from_slice(&[0, b'a']);
    }

    // Each input below claims about 2^40 of something. An allocation that size would abort
    // the test process, so the tests passing shows nothing of the sort was attempted.
    #[test]
    fn huge_claims_in_tiny_inputs_allocate_nothing() {
        const HUGE: u64 = 1 << 40;
        for code in [
            kind::LIST,
            kind::SET,
            kind::ZSET_2,
            kind::HASH,
            kind::LIST_QUICKLIST_2,
        ] {
            let bad = payload(code, |w| w.len(HUGE));
            assert_eq!(
                restore_payload(&bad).unwrap_err(),
                PayloadError::BadData,
                "{code}"
            );
            let bad = file(10, |w| {
                w.buf.push(code);
                w.string(b"k");
                w.len(HUGE);
            });
            let e = read_all(&bad).unwrap_err().to_string();
            assert!(e.contains("too short"), "{code}: {e}");
        }
        let bad = payload(kind::STRING, |w| lzf_string(w, HUGE));
        assert_eq!(restore_payload(&bad).unwrap_err(), PayloadError::BadData);
        let bad = file(10, |w| {
            w.buf.push(kind::STRING);
            w.string(b"k");
            lzf_string(w, HUGE);
        });
        let e = read_all(&bad).unwrap_err().to_string();
        assert!(e.contains("LZF string claims 1099511627776 bytes"), "{e}");
        // A compact blob inside an LZF string: the same bound.
        let bad = file(10, |w| {
            w.buf.push(kind::HASH_LISTPACK);
            w.string(b"h");
            lzf_string(w, HUGE);
        });
        assert!(read_all(&bad).unwrap_err().to_string().contains("LZF"));
    }

    #[test]
    fn resizedb_hints_are_capped_by_the_input() {
        let data = file(10, |w| {
            w.buf.push(opcode::RESIZEDB);
            w.len(1 << 40);
            w.len(1 << 40);
            w.buf.push(kind::STRING);
            w.string(b"k");
            w.string(b"v");
        });
        let mut reader = RdbReader::new(data.as_slice(), data.len() as u64).unwrap();
        assert!(reader.next_key().unwrap().is_some());
        let (db, keys, expires) = reader.take_resize_hint().unwrap();
        assert_eq!(db, 0);
        assert!(keys <= data.len() as u64 / 3, "{keys}");
        assert!(expires <= data.len() as u64 / 8, "{expires}");
    }

    #[test]
    fn counts_reserve_at_most_the_preallocation_limit() {
        assert_eq!(prealloc(10u64), 10);
        assert_eq!(prealloc(1u64 << 40), super::super::PREALLOC_LIMIT);
        assert_eq!(prealloc(u64::MAX), super::super::PREALLOC_LIMIT);
    }

    #[test]
    fn dump_payload_round_trips_and_checks_its_footer() {
        let mut set = Set::default();
        set.insert(b"a");
        set.insert(b"b");
        let value = Value::Set(Box::new(set));
        let payload = super::super::dump_payload(&value);
        assert_eq!(describe(&restore_payload(&payload).unwrap()), "a,b");
        let mut bad = payload.clone();
        bad[2] ^= 1;
        assert_eq!(restore_payload(&bad).unwrap_err(), PayloadError::Footer);
        assert_eq!(restore_payload(b"short").unwrap_err(), PayloadError::Footer);
    }
}
