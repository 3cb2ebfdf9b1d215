//! The RDB writer: appends opcodes, keys and values to a byte buffer in Redis 7.0's format.
//!
//! Values use the plain encodings every Redis since 2.x loads (list 1, set 2, hash 4, zset 5
//! with binary scores); redis-server 7.0 converts them to its compact forms as it loads.
//! Streams are written as Redis 7.0 writes them (STREAM_LISTPACKS_2): their nodes are held as
//! Redis's own listpacks, so they go out as they are.
//! Strings follow Redis's rules exactly: an integer encoding for short decimal strings that
//! convert back unchanged, LZF for strings over 20 bytes when that saves at least 4 bytes.

use super::lzf::Compressor;
use super::{kind, opcode, CRC64, RDB_VERSION};
use crate::keyspace::stream::{Stream, StreamId};
use crate::keyspace::Value;

/// Access metadata stored before a key: LRU idle seconds or the LFU counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMeta {
    None,
    Idle(u64),
    Freq(u8),
}

/// Serializes into `buf`; the owner drains `buf` to a file (or keeps it, for DUMP).
#[derive(Debug, Default)]
pub struct RdbWriter {
    pub buf: Vec<u8>,
    lzf: Compressor,
    current_db: Option<usize>,
}

impl RdbWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// "REDIS0010" and the AUX fields redis-server writes.
    pub fn header(&mut self, aux: &[(&str, String)]) {
        self.buf
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        for (name, value) in aux {
            self.buf.push(opcode::AUX);
            self.string(name.as_bytes());
            self.string(value.as_bytes());
        }
    }

    /// Switches to `db` if the stream is not already there; `sizes` (keys, keys with a TTL)
    /// adds a RESIZEDB hint.
    pub fn select_db(&mut self, db: usize, sizes: Option<(u64, u64)>) {
        if self.current_db == Some(db) {
            return;
        }
        self.current_db = Some(db);
        self.buf.push(opcode::SELECTDB);
        self.len(db as u64);
        if let Some((keys, expires)) = sizes {
            self.buf.push(opcode::RESIZEDB);
            self.len(keys);
            self.len(expires);
        }
    }

    /// One key with its expiry and access metadata, in the current database.
    pub fn key(&mut self, key: &[u8], value: &Value, expire_ms: Option<u64>, meta: KeyMeta) {
        if let Some(at) = expire_ms {
            self.buf.push(opcode::EXPIRETIME_MS);
            self.buf.extend_from_slice(&at.to_le_bytes());
        }
        match meta {
            KeyMeta::None => {}
            KeyMeta::Idle(secs) => {
                self.buf.push(opcode::IDLE);
                self.len(secs);
            }
            KeyMeta::Freq(counter) => {
                self.buf.push(opcode::FREQ);
                self.buf.push(counter);
            }
        }
        self.buf.push(value_kind(value));
        self.string(key);
        self.value_body(value);
    }

    /// EOF and the CRC64 of everything written before it (`digest` has taken in what was
    /// drained from `buf` earlier).
    pub fn finish(&mut self, mut digest: crc::Digest<'static, u64, crc::Table<16>>) {
        self.buf.push(opcode::EOF);
        digest.update(&self.buf);
        let crc = digest.finalize();
        self.buf.extend_from_slice(&crc.to_le_bytes());
    }

    /// A length in RDB's variable encoding.
    pub fn len(&mut self, n: u64) {
        if n < 1 << 6 {
            self.buf.push(n as u8);
        } else if n < 1 << 14 {
            self.buf.push(0x40 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else if n <= u64::from(u32::MAX) {
            self.buf.push(0x80);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.buf.push(0x81);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// A string, integer-encoded or LZF-compressed where Redis would.
    pub fn string(&mut self, s: &[u8]) {
        if s.len() <= 11 {
            if let Some(n) = integer_form(s) {
                if let Ok(v) = i8::try_from(n) {
                    self.buf.push(0xC0);
                    self.buf.extend_from_slice(&v.to_le_bytes());
                    return;
                }
                if let Ok(v) = i16::try_from(n) {
                    self.buf.push(0xC1);
                    self.buf.extend_from_slice(&v.to_le_bytes());
                    return;
                }
                if let Ok(v) = i32::try_from(n) {
                    self.buf.push(0xC2);
                    self.buf.extend_from_slice(&v.to_le_bytes());
                    return;
                }
            }
        }
        if s.len() > 20 && self.compressed(s) {
            return;
        }
        self.len(s.len() as u64);
        self.buf.extend_from_slice(s);
    }

    /// Writes `s` LZF-compressed if that saves at least 4 bytes.
    fn compressed(&mut self, s: &[u8]) -> bool {
        let mut packed = Vec::with_capacity(s.len());
        if !self.lzf.compress(s, &mut packed, s.len() - 4) {
            return false;
        }
        self.buf.push(0xC3);
        self.len(packed.len() as u64);
        self.len(s.len() as u64);
        self.buf.extend_from_slice(&packed);
        true
    }

    fn value_body(&mut self, value: &Value) {
        match value {
            Value::Str(s) => self.string(s),
            Value::List(list) => {
                self.len(list.len() as u64);
                for item in list.iter() {
                    self.string(item);
                }
            }
            Value::Set(set) => {
                self.len(set.len() as u64);
                for member in set.iter() {
                    self.string(member);
                }
            }
            Value::Hash(hash) => {
                self.len(hash.len() as u64);
                for (field, v) in hash.fields.iter() {
                    self.string(field);
                    self.string(v);
                }
            }
            Value::ZSet(zset) => {
                self.len(zset.len() as u64);
                // Highest first, as Redis writes them (its loader then inserts at the head).
                for entry in zset.iter().rev() {
                    self.string(&entry.member);
                    self.buf.extend_from_slice(&entry.score.to_le_bytes());
                }
            }
            Value::Stream(stream) => self.stream(stream),
        }
    }

    /// A stream as rdb.c's STREAM_LISTPACKS_2: nodes (master id, listpack), length, the ids
    /// and counters, then each group with its pending entries and consumers.
    fn stream(&mut self, stream: &Stream) {
        self.len(stream.node_count() as u64);
        for (master, lp) in stream.nodes() {
            self.string(&master.to_be_bytes());
            self.string(lp.as_bytes());
        }
        self.len(stream.len());
        for id in [stream.last_id, stream.first_id, stream.max_deleted_id] {
            self.id(id);
        }
        self.len(stream.entries_added);
        self.len(stream.groups.len() as u64);
        for (name, group) in &stream.groups {
            self.string(name);
            self.id(group.last_id);
            // A negative count (unknown) is stored as its two's complement, as rdbSaveLen
            // stores Redis's long long.
            self.len(group.entries_read as u64);
            self.len(group.pending.len() as u64);
            for (id, pending) in &group.pending {
                self.buf.extend_from_slice(&id.to_be_bytes());
                self.buf
                    .extend_from_slice(&pending.delivery_time.to_le_bytes());
                self.len(pending.delivery_count);
            }
            self.len(group.consumers.len() as u64);
            for (name, consumer) in &group.consumers {
                self.string(name);
                self.buf
                    .extend_from_slice(&consumer.seen_time.to_le_bytes());
                self.len(consumer.pending.len() as u64);
                for id in &consumer.pending {
                    self.buf.extend_from_slice(&id.to_be_bytes());
                }
            }
        }
    }

    fn id(&mut self, id: StreamId) {
        self.len(id.ms);
        self.len(id.seq);
    }
}

/// The type code a value is written with.
fn value_kind(value: &Value) -> u8 {
    match value {
        Value::Str(_) => kind::STRING,
        Value::List(_) => kind::LIST,
        Value::Set(_) => kind::SET,
        Value::Hash(_) => kind::HASH,
        Value::ZSet(_) => kind::ZSET_2,
        Value::Stream(_) => kind::STREAM_LISTPACKS_2,
    }
}

/// The integer a string spells, if it spells one exactly (no sign, spaces or leading zeros
/// that would not survive a round trip).
fn integer_form(s: &[u8]) -> Option<i64> {
    let n = crate::util::parse_i64(s)?;
    (itoa::Buffer::new().format(n).as_bytes() == s).then_some(n)
}

/// DUMP's payload: type, value, RDB version (2 bytes LE) and CRC64 (8 bytes LE).
pub fn dump_payload(value: &Value) -> Vec<u8> {
    let mut w = RdbWriter::new();
    w.buf.push(value_kind(value));
    w.value_body(value);
    w.buf.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&w.buf);
    w.buf.extend_from_slice(&crc.to_le_bytes());
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_redis_check_value() {
        assert_eq!(CRC64.checksum(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn lengths_use_the_shortest_form() {
        let mut w = RdbWriter::new();
        w.len(10);
        w.len(300);
        w.len(70_000);
        w.len(1 << 40);
        assert_eq!(
            w.buf,
            [
                vec![10],
                vec![0x41, 0x2C],
                vec![0x80, 0, 1, 0x11, 0x70],
                vec![0x81, 0, 0, 1, 0, 0, 0, 0, 0]
            ]
            .concat()
        );
    }

    #[test]
    fn strings_are_encoded_as_redis_encodes_them() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"12", &[0xC0, 12]),
            (b"-1", &[0xC0, 0xFF]),
            (b"300", &[0xC1, 0x2C, 0x01]),
            (b"100000", &[0xC2, 0xA0, 0x86, 0x01, 0x00]),
            (b"012", &[3, b'0', b'1', b'2']),
            (b"+1", &[2, b'+', b'1']),
            (
                b"12345678901",
                &[
                    11, b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', b'9', b'0', b'1',
                ],
            ),
            (b"", &[0]),
        ];
        for (input, expected) in cases {
            let mut w = RdbWriter::new();
            w.string(input);
            assert_eq!(
                &w.buf[..],
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let mut w = RdbWriter::new();
        w.string(&[b'x'; 100]);
        assert_eq!(w.buf[0], 0xC3);
        assert!(w.buf.len() < 20);
    }

    #[test]
    fn dump_of_a_string_matches_redis() {
        // redis-cli DUMP of SET k hello in Redis 7.0.
        assert_eq!(
            dump_payload(&Value::Str("hello".as_bytes().into())),
            b"\x00\x05hello\n\x00cr\xdfve4 \n"
        );
        assert_eq!(
            dump_payload(&Value::Str("12345".as_bytes().into())),
            b"\x00\xc190\n\x00\x9d\x94\xea'\x93\xfc\x08\xb9"
        );
    }
}
