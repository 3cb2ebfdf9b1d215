//! Redis 7.0 RDB files (version 10): the writer (`encode`), the reader (`decode`) with the
//! compact encodings Redis writes and older versions wrote (`compact`), and LZF (`lzf`).
//!
//! Layout, from redis/src/rdb.h: "REDIS0010", AUX fields, per database SELECTDB + RESIZEDB and
//! its keys (each optionally preceded by EXPIRETIME_MS, IDLE or FREQ), EOF, then a CRC64 of
//! everything before it. Lengths are big-endian; integers, expiry times, binary doubles and the
//! checksum are little-endian.

pub mod compact;
pub mod decode;
pub mod encode;
pub mod lzf;

pub use decode::{open_file, restore_payload, LoadedKey, PayloadError, RdbReader};
pub use encode::{dump_payload, KeyMeta, RdbWriter};

/// The version this engine writes (Redis 7.0's).
pub const RDB_VERSION: u16 = 10;
/// The oldest version the reader accepts.
pub const RDB_OLDEST_VERSION: u16 = 1;

/// Opcodes that may stand where a value type is expected.
pub mod opcode {
    pub const FUNCTION2: u8 = 0xF5;
    pub const FUNCTION: u8 = 0xF6;
    pub const MODULE_AUX: u8 = 0xF7;
    pub const IDLE: u8 = 0xF8;
    pub const FREQ: u8 = 0xF9;
    pub const AUX: u8 = 0xFA;
    pub const RESIZEDB: u8 = 0xFB;
    pub const EXPIRETIME_MS: u8 = 0xFC;
    pub const EXPIRETIME: u8 = 0xFD;
    pub const SELECTDB: u8 = 0xFE;
    pub const EOF: u8 = 0xFF;
}

/// Value type codes.
pub mod kind {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// Most elements a count read from the input reserves room for at once; past it, a
/// collection grows as its elements are actually read, so a count that lies costs nothing.
const PREALLOC_LIMIT: usize = 1 << 16;

/// Room to reserve for `claimed` elements (a count from the input, already checked against
/// the bytes left).
pub(crate) fn prealloc<N: TryInto<usize>>(claimed: N) -> usize {
    claimed
        .try_into()
        .map_or(PREALLOC_LIMIT, |n| n.min(PREALLOC_LIMIT))
}

/// CRC-64/Jones as Redis uses it (reflected, init 0), table-sliced for speed.
pub const CRC64: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

/// Why an RDB file or DUMP payload could not be read. Offsets count bytes from the start.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not an RDB file: bad signature at offset 0")]
    BadSignature,
    #[error("RDB version {0} is not supported (this engine reads versions 1 to 10, as Redis 7.0)")]
    UnsupportedVersion(u16),
    #[error("file ends early at offset {offset}: {what}")]
    Truncated { offset: u64, what: &'static str },
    #[error("corrupt data at offset {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
    #[error("at offset {offset}: {what} (type {code}) is not supported by this engine")]
    Unsupported {
        offset: u64,
        code: u8,
        what: &'static str,
    },
    #[error("checksum mismatch: the file says {stored:#018x}, its contents give {computed:#018x}")]
    Checksum { stored: u64, computed: u64 },
}
