//! The command table: every command's name, arity, flags and key positions (what COMMAND
//! reports and what dispatch checks), and the function that runs it.

use super::{
    bitmaps, connection, geo, hashes, hyperloglog, keys, lists, persistence, pubsub, scripting,
    server, sets, sort, streams, strings, transactions, zsets,
};
use super::{is, CmdResult, Ctx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(u16);

impl Flags {
    pub const WRITE: Flags = Flags(1);
    pub const READONLY: Flags = Flags(1 << 1);
    pub const DENY_OOM: Flags = Flags(1 << 2);
    pub const FAST: Flags = Flags(1 << 3);
    pub const NO_AUTH: Flags = Flags(1 << 4);
    /// Runs at once even inside MULTI (MULTI, EXEC, DISCARD, WATCH, UNWATCH, QUIT, RESET).
    pub const TRANSACTION_CONTROL: Flags = Flags(1 << 5);
    pub const BLOCKING: Flags = Flags(1 << 6);
    pub const ADMIN: Flags = Flags(1 << 7);
    /// Allowed while the data set is loading.
    pub const LOADING: Flags = Flags(1 << 8);
    pub const STALE: Flags = Flags(1 << 9);
    pub const NOSCRIPT: Flags = Flags(1 << 10);
    /// Refused inside MULTI (SAVE, SHUTDOWN).
    pub const NO_MULTI: Flags = Flags(1 << 11);
    /// Not fed to MONITOR as it ends (scripts feed themselves as they start).
    pub const SKIP_MONITOR: Flags = Flags(1 << 12);
    /// Writes nothing to the keyspace but may propagate (PUBLISH, PFCOUNT, scripts): held
    /// back by CLIENT PAUSE WRITE.
    pub const MAY_REPLICATE: Flags = Flags(1 << 13);

    const NAMES: [(Flags, &'static str); 14] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENY_OOM, "denyoom"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::TRANSACTION_CONTROL, "allow_busy"),
        (Flags::BLOCKING, "blocking"),
        (Flags::ADMIN, "admin"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::NO_MULTI, "no_multi"),
        (Flags::SKIP_MONITOR, "skip_monitor"),
        (Flags::MAY_REPLICATE, "may_replicate"),
    ];

    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Flag names as COMMAND INFO lists them.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

pub type Handler = fn(&mut Ctx, &[&[u8]]) -> CmdResult;

/// Finds the keys of a command whose keys move with its arguments (Redis's movablekeys):
/// their indices in the arguments, besides those of first/last/step.
pub type KeysFinder = fn(&[&[u8]]) -> Vec<usize>;

#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    /// Redis's arity: exact argument count including the name, or at least -arity if negative.
    pub arity: i32,
    pub flags: Flags,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
    pub movable_keys: Option<KeysFinder>,
}

impl CommandSpec {
    /// Argument indices holding keys: from first/last/step (last < 0 counts from the end),
    /// then those the command's finder reports.
    pub fn key_positions(&self, args: &[&[u8]]) -> Vec<usize> {
        let argc = args.len() as i32;
        let (first, step) = (self.first_key, self.step.max(1));
        let last = if self.last_key < 0 {
            argc + self.last_key
        } else {
            self.last_key
        };
        let range = if first == 0 {
            0..0
        } else {
            first..(last.min(argc - 1) + 1)
        };
        let mut keys: Vec<usize> = range.step_by(step as usize).map(|i| i as usize).collect();
        if let Some(find) = self.movable_keys {
            keys.extend(find(args));
        }
        keys
    }
}

/// The keys of a command with `numkeys key...` at argument AT (ZUNION, LMPOP, ...); none if
/// numkeys is not a count the arguments hold.
fn numkeys<const AT: usize>(args: &[&[u8]]) -> Vec<usize> {
    let count = args
        .get(AT)
        .and_then(|n| crate::util::parse_i64(n))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| AT + n < args.len());
    count.map_or_else(Vec::new, |n| (AT + 1..=AT + n).collect())
}

/// GEORADIUS's and GEORADIUSBYMEMBER's STORE and STOREDIST destinations, as their key
/// specs find them: the argument after the first of each keyword from argument FROM on.
fn georadius_store_keys<const FROM: usize>(args: &[&[u8]]) -> Vec<usize> {
    ["STORE", "STOREDIST"]
        .iter()
        .filter_map(|keyword| {
            let at = (FROM..args.len()).find(|&i| is(args[i], keyword))?;
            (at + 1 < args.len()).then_some(at + 1)
        })
        .collect()
}

/// SORT's STORE destination (the last one given), skipping the arguments of the options
/// that take them, as Redis finds it.
fn sort_store_key(args: &[&[u8]]) -> Vec<usize> {
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = args[i];
        if is(a, "LIMIT") {
            i += 2;
        } else if is(a, "GET") || is(a, "BY") {
            i += 1;
        } else if is(a, "STORE") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    store.into_iter().collect()
}

/// The keys of XREAD and XREADGROUP: the first half of what follows STREAMS.
fn xread_keys(args: &[&[u8]]) -> Vec<usize> {
    let Some(at) = args.iter().position(|a| is(a, "STREAMS")) else {
        return Vec::new();
    };
    let rest = args.len() - at - 1;
    if rest == 0 || !rest.is_multiple_of(2) {
        return Vec::new();
    }
    (at + 1..at + 1 + rest / 2).collect()
}

const W: Flags = Flags::WRITE;
const R: Flags = Flags::READONLY;
const M: Flags = Flags::DENY_OOM;
const F: Flags = Flags::FAST;
const NA: Flags = Flags::NO_AUTH;
const TX: Flags = Flags::TRANSACTION_CONTROL;
const B: Flags = Flags::BLOCKING;
const A: Flags = Flags::ADMIN;
const L: Flags = Flags::LOADING;
const S: Flags = Flags::STALE;
const NS: Flags = Flags::NOSCRIPT;
const NM: Flags = Flags::NO_MULTI;
const SM: Flags = Flags::SKIP_MONITOR;
const MR: Flags = Flags::MAY_REPLICATE;

macro_rules! movable {
    () => {
        None
    };
    ($keys:expr) => {
        Some($keys)
    };
}

macro_rules! commands {
    ($( $name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $group:literal, $handler:path, $summary:literal $(, $movable:expr)?; )*) => {
        pub static COMMANDS: &[CommandSpec] = &[
            $( CommandSpec {
                name: $name, arity: $arity, flags: $flags, first_key: $first, last_key: $last,
                step: $step, group: $group, summary: $summary, handler: $handler,
                movable_keys: movable!($($movable)?),
            }, )*
        ];
    };
}

commands! {
    // strings
    "get", 2, R.union(F), 1, 1, 1, "string", strings::get, "Returns the string value of a key.";
    "set", -3, W.union(M), 1, 1, 1, "string", strings::set, "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.";
    "mget", -2, R.union(F), 1, -1, 1, "string", strings::mget, "Atomically returns the string values of one or more keys.";
    "mset", -3, W.union(M), 1, -1, 2, "string", strings::mset, "Atomically creates or modifies the string values of one or more keys.";
    "msetnx", -3, W.union(M), 1, -1, 2, "string", strings::msetnx, "Atomically modifies the string values of one or more keys only when all keys don't exist.";
    "setnx", 3, W.union(M).union(F), 1, 1, 1, "string", strings::setnx, "Set the string value of a key only when the key doesn't exist.";
    "setex", 4, W.union(M), 1, 1, 1, "string", strings::setex, "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.";
    "psetex", 4, W.union(M), 1, 1, 1, "string", strings::psetex, "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.";
    "getset", 3, W.union(M).union(F), 1, 1, 1, "string", strings::getset, "Returns the previous string value of a key after setting it to a new value.";
    "getdel", 2, W.union(F), 1, 1, 1, "string", strings::getdel, "Returns the string value of a key after deleting the key.";
    "getex", -2, W.union(F), 1, 1, 1, "string", strings::getex, "Returns the string value of a key after setting its expiration time.";
    "incr", 2, W.union(M).union(F), 1, 1, 1, "string", strings::incr, "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.";
    "decr", 2, W.union(M).union(F), 1, 1, 1, "string", strings::decr, "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.";
    "incrby", 3, W.union(M).union(F), 1, 1, 1, "string", strings::incrby, "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.";
    "decrby", 3, W.union(M).union(F), 1, 1, 1, "string", strings::decrby, "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.";
    "incrbyfloat", 3, W.union(M).union(F), 1, 1, 1, "string", strings::incrbyfloat, "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.";
    "append", 3, W.union(M), 1, 1, 1, "string", strings::append, "Appends a string to the value of a key. Creates the key if it doesn't exist.";
    "strlen", 2, R.union(F), 1, 1, 1, "string", strings::strlen, "Returns the length of a string value.";
    "getrange", 4, R, 1, 1, 1, "string", strings::getrange, "Returns a substring of the string stored at a key.";
    "substr", 4, R, 1, 1, 1, "string", strings::getrange, "Returns a substring from a string value.";
    "setrange", 4, W.union(M), 1, 1, 1, "string", strings::setrange, "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.";
    "lcs", -3, R, 1, 2, 1, "string", strings::lcs, "Finds the longest common substring.";
    // bitmaps
    "setbit", 4, W.union(M), 1, 1, 1, "bitmap", bitmaps::setbit, "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.";
    "getbit", 3, R.union(F), 1, 1, 1, "bitmap", bitmaps::getbit, "Returns a bit value by offset.";
    "bitcount", -2, R, 1, 1, 1, "bitmap", bitmaps::bitcount, "Counts the number of set bits (population counting) in a string.";
    "bitpos", -3, R, 1, 1, 1, "bitmap", bitmaps::bitpos, "Finds the first set (1) or clear (0) bit in a string.";
    "bitop", -4, W.union(M), 2, -1, 1, "bitmap", bitmaps::bitop, "Performs bitwise operations on multiple strings, and stores the result.";
    "bitfield", -2, W.union(M), 1, 1, 1, "bitmap", bitmaps::bitfield, "Performs arbitrary bitfield integer operations on strings.";
    "bitfield_ro", -2, R.union(F), 1, 1, 1, "bitmap", bitmaps::bitfield_ro, "Performs arbitrary read-only bitfield integer operations on strings.";
    // hyperloglog
    "pfadd", -2, W.union(M).union(F), 1, 1, 1, "hyperloglog", hyperloglog::pfadd, "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.";
    "pfcount", -2, R.union(MR), 1, -1, 1, "hyperloglog", hyperloglog::pfcount, "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).";
    "pfmerge", -2, W.union(M), 1, -1, 1, "hyperloglog", hyperloglog::pfmerge, "Merges one or more HyperLogLog values into a single key.";
    "pfdebug", 3, W.union(M).union(A), 2, 2, 1, "hyperloglog", hyperloglog::pfdebug, "Internal commands for debugging HyperLogLog values.";
    "pfselftest", 1, A, 0, 0, 0, "hyperloglog", hyperloglog::pfselftest, "An internal command for testing HyperLogLog values.";
    // geo
    "geoadd", -5, W.union(M), 1, 1, 1, "geo", geo::geoadd, "Adds one or more members to a geospatial index. The key is created if it doesn't exist.";
    "geopos", -2, R, 1, 1, 1, "geo", geo::geopos, "Returns the longitude and latitude of members from a geospatial index.";
    "geohash", -2, R, 1, 1, 1, "geo", geo::geohash, "Returns members from a geospatial index as geohash strings.";
    "geodist", -4, R, 1, 1, 1, "geo", geo::geodist, "Returns the distance between two members of a geospatial index.";
    "georadius", -6, W.union(M), 1, 1, 1, "geo", geo::georadius, "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.", georadius_store_keys::<6>;
    "georadius_ro", -6, R, 1, 1, 1, "geo", geo::georadius_ro, "Returns members from a geospatial index that are within a distance from a coordinate.";
    "georadiusbymember", -5, W.union(M), 1, 1, 1, "geo", geo::georadiusbymember, "Queries a geospatial index for members within a distance from a member, optionally stores the result.", georadius_store_keys::<5>;
    "georadiusbymember_ro", -5, R, 1, 1, 1, "geo", geo::georadiusbymember_ro, "Returns members from a geospatial index that are within a distance from a member.";
    "geosearch", -7, R, 1, 1, 1, "geo", geo::geosearch, "Queries a geospatial index for members inside an area of a box or a circle.";
    "geosearchstore", -8, W.union(M), 1, 2, 1, "geo", geo::geosearchstore, "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.";
    // streams
    "xadd", -5, W.union(M).union(F), 1, 1, 1, "stream", streams::xadd, "Appends a new message to a stream. Creates the key if it doesn't exist.";
    "xrange", -4, R, 1, 1, 1, "stream", streams::xrange, "Returns the messages from a stream within a range of IDs.";
    "xrevrange", -4, R, 1, 1, 1, "stream", streams::xrevrange, "Returns the messages from a stream within a range of IDs in reverse order.";
    "xlen", 2, R.union(F), 1, 1, 1, "stream", streams::xlen, "Return the number of messages in a stream.";
    "xdel", -3, W.union(F), 1, 1, 1, "stream", streams::xdel, "Returns the number of messages after removing them from a stream.";
    "xtrim", -4, W, 1, 1, 1, "stream", streams::xtrim, "Deletes messages from the beginning of a stream.";
    "xsetid", -3, W.union(M).union(F), 1, 1, 1, "stream", streams::xsetid, "An internal command for replicating stream values.";
    "xread", -4, R.union(B), 0, 0, 0, "stream", streams::xread, "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", xread_keys;
    "xreadgroup", -7, W.union(B), 0, 0, 0, "stream", streams::xreadgroup, "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", xread_keys;
    "xgroup", -2, W.union(M), 2, 2, 1, "stream", streams::xgroup, "A container for consumer groups commands.";
    "xack", -4, W.union(F), 1, 1, 1, "stream", streams::xack, "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.";
    "xpending", -3, R, 1, 1, 1, "stream", streams::xpending, "Returns the information and entries from a stream consumer group's pending entries list.";
    "xclaim", -6, W.union(F), 1, 1, 1, "stream", streams::xclaim, "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.";
    "xautoclaim", -6, W.union(F), 1, 1, 1, "stream", streams::xautoclaim, "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.";
    "xinfo", -2, R, 2, 2, 1, "stream", streams::xinfo, "A container for stream introspection commands.";
    // keys
    "del", -2, W, 1, -1, 1, "generic", keys::del, "Deletes one or more keys.";
    "unlink", -2, W.union(F), 1, -1, 1, "generic", keys::del, "Asynchronously deletes one or more keys.";
    "exists", -2, R.union(F), 1, -1, 1, "generic", keys::exists, "Determines whether one or more keys exist.";
    "touch", -2, R.union(F), 1, -1, 1, "generic", keys::touch, "Returns the number of existing keys out of those specified after updating the time they were last accessed.";
    "type", 2, R.union(F), 1, 1, 1, "generic", keys::type_, "Determines the type of value stored at a key.";
    "expire", -3, W.union(F), 1, 1, 1, "generic", keys::expire, "Sets the expiration time of a key in seconds.";
    "pexpire", -3, W.union(F), 1, 1, 1, "generic", keys::pexpire, "Sets the expiration time of a key in milliseconds.";
    "expireat", -3, W.union(F), 1, 1, 1, "generic", keys::expireat, "Sets the expiration time of a key to a Unix timestamp.";
    "pexpireat", -3, W.union(F), 1, 1, 1, "generic", keys::pexpireat, "Sets the expiration time of a key to a Unix milliseconds timestamp.";
    "ttl", 2, R.union(F), 1, 1, 1, "generic", keys::ttl, "Returns the expiration time in seconds of a key.";
    "pttl", 2, R.union(F), 1, 1, 1, "generic", keys::pttl, "Returns the expiration time in milliseconds of a key.";
    "expiretime", 2, R.union(F), 1, 1, 1, "generic", keys::expiretime, "Returns the expiration time of a key as a Unix timestamp.";
    "pexpiretime", 2, R.union(F), 1, 1, 1, "generic", keys::pexpiretime, "Returns the expiration time of a key as a Unix milliseconds timestamp.";
    "persist", 2, W.union(F), 1, 1, 1, "generic", keys::persist, "Removes the expiration time of a key.";
    "rename", 3, W, 1, 2, 1, "generic", keys::rename, "Renames a key and overwrites the destination.";
    "renamenx", 3, W.union(F), 1, 2, 1, "generic", keys::renamenx, "Renames a key only when the target key name doesn't exist.";
    "keys", 2, R, 0, 0, 0, "generic", keys::keys, "Returns all key names that match a pattern.";
    "scan", -2, R, 0, 0, 0, "generic", keys::scan, "Iterates over the key names in the database.";
    "randomkey", 1, R, 0, 0, 0, "generic", keys::randomkey, "Returns a random key name from the database.";
    "copy", -3, W.union(M), 1, 2, 1, "generic", keys::copy, "Copies the value of a key to a new key.";
    "sort", -2, W.union(M), 1, 1, 1, "generic", sort::sort, "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.", sort_store_key;
    "sort_ro", -2, R, 1, 1, 1, "generic", sort::sort_ro, "Returns the sorted elements of a list, a set, or a sorted set.";
    "move", 3, W.union(F), 1, 1, 1, "generic", keys::move_, "Moves a key to another database.";
    "dbsize", 1, R.union(F), 0, 0, 0, "server", keys::dbsize, "Returns the number of keys in the database.";
    "flushdb", -1, W, 0, 0, 0, "server", keys::flushdb, "Removes all keys from the current database.";
    "flushall", -1, W, 0, 0, 0, "server", keys::flushall, "Removes all keys from all databases.";
    "select", 2, L.union(S).union(F), 0, 0, 0, "connection", keys::select, "Changes the selected database.";
    "swapdb", 3, W.union(F), 0, 0, 0, "server", keys::swapdb, "Swaps two Redis databases.";
    "object", -2, R, 2, 2, 1, "generic", keys::object, "A container for object introspection commands.";
    // hashes
    "hset", -4, W.union(M).union(F), 1, 1, 1, "hash", hashes::hset, "Creates or modifies the value of a field in a hash.";
    "hmset", -4, W.union(M).union(F), 1, 1, 1, "hash", hashes::hmset, "Sets the values of multiple fields.";
    "hsetnx", 4, W.union(M).union(F), 1, 1, 1, "hash", hashes::hsetnx, "Sets the value of a field in a hash only when the field doesn't exist.";
    "hget", 3, R.union(F), 1, 1, 1, "hash", hashes::hget, "Returns the value of a field in a hash.";
    "hmget", -3, R.union(F), 1, 1, 1, "hash", hashes::hmget, "Returns the values of all fields in a hash.";
    "hdel", -3, W.union(F), 1, 1, 1, "hash", hashes::hdel, "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.";
    "hlen", 2, R.union(F), 1, 1, 1, "hash", hashes::hlen, "Returns the number of fields in a hash.";
    "hstrlen", 3, R.union(F), 1, 1, 1, "hash", hashes::hstrlen, "Returns the length of the value of a field.";
    "hexists", 3, R.union(F), 1, 1, 1, "hash", hashes::hexists, "Determines whether a field exists in a hash.";
    "hgetall", 2, R, 1, 1, 1, "hash", hashes::hgetall, "Returns all fields and values in a hash.";
    "hkeys", 2, R, 1, 1, 1, "hash", hashes::hkeys, "Returns all fields in a hash.";
    "hvals", 2, R, 1, 1, 1, "hash", hashes::hvals, "Returns all values in a hash.";
    "hincrby", 4, W.union(M).union(F), 1, 1, 1, "hash", hashes::hincrby, "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.";
    "hincrbyfloat", 4, W.union(M).union(F), 1, 1, 1, "hash", hashes::hincrbyfloat, "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.";
    "hscan", -3, R, 1, 1, 1, "hash", hashes::hscan, "Iterates over fields and values of a hash.";
    "hrandfield", -2, R, 1, 1, 1, "hash", hashes::hrandfield, "Returns one or more random fields from a hash.";
    // lists
    "lpush", -3, W.union(M).union(F), 1, 1, 1, "list", lists::lpush, "Prepends one or more elements to a list. Creates the key if it doesn't exist.";
    "rpush", -3, W.union(M).union(F), 1, 1, 1, "list", lists::rpush, "Appends one or more elements to a list. Creates the key if it doesn't exist.";
    "lpushx", -3, W.union(M).union(F), 1, 1, 1, "list", lists::lpushx, "Prepends one or more elements to a list only when the list exists.";
    "rpushx", -3, W.union(M).union(F), 1, 1, 1, "list", lists::rpushx, "Appends an element to a list only when the list exists.";
    "lpop", -2, W.union(F), 1, 1, 1, "list", lists::lpop, "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.";
    "rpop", -2, W.union(F), 1, 1, 1, "list", lists::rpop, "Returns and removes the last elements of a list. Deletes the list if the last element was popped.";
    "llen", 2, R.union(F), 1, 1, 1, "list", lists::llen, "Returns the length of a list.";
    "lrange", 4, R, 1, 1, 1, "list", lists::lrange, "Returns a range of elements from a list.";
    "lindex", 3, R, 1, 1, 1, "list", lists::lindex, "Returns an element from a list by its index.";
    "lset", 4, W.union(M), 1, 1, 1, "list", lists::lset, "Sets the value of an element in a list by its index.";
    "lrem", 4, W, 1, 1, 1, "list", lists::lrem, "Removes elements from a list. Deletes the list if the last element was removed.";
    "ltrim", 4, W, 1, 1, 1, "list", lists::ltrim, "Removes elements from both ends a list. Deletes the list if all elements were trimmed.";
    "linsert", 5, W.union(M), 1, 1, 1, "list", lists::linsert, "Inserts an element before or after another element in a list.";
    "lpos", -3, R, 1, 1, 1, "list", lists::lpos, "Returns the index of matching elements in a list.";
    "lmove", 5, W.union(M), 1, 2, 1, "list", lists::lmove, "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.";
    "rpoplpush", 3, W.union(M), 1, 2, 1, "list", lists::rpoplpush, "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.";
    "blpop", -3, W.union(B).union(NS), 1, -2, 1, "list", lists::blpop, "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.";
    "brpop", -3, W.union(B).union(NS), 1, -2, 1, "list", lists::brpop, "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.";
    "lmpop", -4, W, 0, 0, 0, "list", lists::lmpop, "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", numkeys::<1>;
    "blmpop", -5, W.union(B), 0, 0, 0, "list", lists::blmpop, "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", numkeys::<2>;
    "blmove", 6, W.union(M).union(B).union(NS), 1, 2, 1, "list", lists::blmove, "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.";
    "brpoplpush", 4, W.union(M).union(B).union(NS), 1, 2, 1, "list", lists::brpoplpush, "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.";
    // sets
    "sadd", -3, W.union(M).union(F), 1, 1, 1, "set", sets::sadd, "Adds one or more members to a set. Creates the key if it doesn't exist.";
    "srem", -3, W.union(F), 1, 1, 1, "set", sets::srem, "Removes one or more members from a set. Deletes the set if the last member was removed.";
    "smembers", 2, R, 1, 1, 1, "set", sets::smembers, "Returns all members of a set.";
    "sismember", 3, R.union(F), 1, 1, 1, "set", sets::sismember, "Determines whether a member belongs to a set.";
    "smismember", -3, R.union(F), 1, 1, 1, "set", sets::smismember, "Determines whether multiple members belong to a set.";
    "scard", 2, R.union(F), 1, 1, 1, "set", sets::scard, "Returns the number of members in a set.";
    "spop", -2, W.union(F), 1, 1, 1, "set", sets::spop, "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.";
    "srandmember", -2, R, 1, 1, 1, "set", sets::srandmember, "Get one or multiple random members from a set";
    "smove", 4, W.union(F), 1, 2, 1, "set", sets::smove, "Moves a member from one set to another.";
    "sinter", -2, R, 1, -1, 1, "set", sets::sinter, "Returns the intersect of multiple sets.";
    "sintercard", -3, R, 0, 0, 0, "set", sets::sintercard, "Returns the number of members of the intersect of multiple sets.", numkeys::<1>;
    "sunion", -2, R, 1, -1, 1, "set", sets::sunion, "Returns the union of multiple sets.";
    "sdiff", -2, R, 1, -1, 1, "set", sets::sdiff, "Returns the difference of multiple sets.";
    "sinterstore", -3, W.union(M), 1, -1, 1, "set", sets::sinterstore, "Stores the intersect of multiple sets in a key.";
    "sunionstore", -3, W.union(M), 1, -1, 1, "set", sets::sunionstore, "Stores the union of multiple sets in a key.";
    "sdiffstore", -3, W.union(M), 1, -1, 1, "set", sets::sdiffstore, "Stores the difference of multiple sets in a key.";
    "sscan", -3, R, 1, 1, 1, "set", sets::sscan, "Iterates over members of a set.";
    // sorted sets
    "zadd", -4, W.union(M).union(F), 1, 1, 1, "sorted-set", zsets::zadd, "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.";
    "zincrby", 4, W.union(M).union(F), 1, 1, 1, "sorted-set", zsets::zincrby, "Increments the score of a member in a sorted set.";
    "zrem", -3, W.union(F), 1, 1, 1, "sorted-set", zsets::zrem, "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.";
    "zscore", 3, R.union(F), 1, 1, 1, "sorted-set", zsets::zscore, "Returns the score of a member in a sorted set.";
    "zmscore", -3, R.union(F), 1, 1, 1, "sorted-set", zsets::zmscore, "Returns the score of one or more members in a sorted set.";
    "zcard", 2, R.union(F), 1, 1, 1, "sorted-set", zsets::zcard, "Returns the number of members in a sorted set.";
    "zcount", 4, R.union(F), 1, 1, 1, "sorted-set", zsets::zcount, "Returns the count of members in a sorted set that have scores within a range.";
    "zlexcount", 4, R.union(F), 1, 1, 1, "sorted-set", zsets::zlexcount, "Returns the number of members in a sorted set within a lexicographical range.";
    "zrange", -4, R, 1, 1, 1, "sorted-set", zsets::zrange, "Returns members in a sorted set within a range of indexes.";
    "zrangebyscore", -4, R, 1, 1, 1, "sorted-set", zsets::zrangebyscore, "Returns members in a sorted set within a range of scores.";
    "zrevrangebyscore", -4, R, 1, 1, 1, "sorted-set", zsets::zrevrangebyscore, "Returns members in a sorted set within a range of scores in reverse order.";
    "zrangebylex", -4, R, 1, 1, 1, "sorted-set", zsets::zrangebylex, "Returns members in a sorted set within a lexicographical range.";
    "zrevrangebylex", -4, R, 1, 1, 1, "sorted-set", zsets::zrevrangebylex, "Returns members in a sorted set within a lexicographical range in reverse order.";
    "zrevrange", -4, R, 1, 1, 1, "sorted-set", zsets::zrevrange, "Returns members in a sorted set within a range of indexes in reverse order.";
    "zrank", 3, R.union(F), 1, 1, 1, "sorted-set", zsets::zrank, "Returns the index of a member in a sorted set ordered by ascending scores.";
    "zrevrank", 3, R.union(F), 1, 1, 1, "sorted-set", zsets::zrevrank, "Returns the index of a member in a sorted set ordered by descending scores.";
    "zpopmin", -2, W.union(F), 1, 1, 1, "sorted-set", zsets::zpopmin, "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.";
    "bzpopmin", -3, W.union(F).union(B).union(NS), 1, -2, 1, "sorted-set", zsets::bzpopmin, "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.";
    "bzpopmax", -3, W.union(F).union(B).union(NS), 1, -2, 1, "sorted-set", zsets::bzpopmax, "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.";
    "bzmpop", -5, W.union(B), 0, 0, 0, "sorted-set", zsets::bzmpop, "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", numkeys::<2>;
    "zmpop", -4, W, 0, 0, 0, "sorted-set", zsets::zmpop, "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", numkeys::<1>;
    "zpopmax", -2, W.union(F), 1, 1, 1, "sorted-set", zsets::zpopmax, "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.";
    "zremrangebyscore", 4, W, 1, 1, 1, "sorted-set", zsets::zremrangebyscore, "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.";
    "zremrangebyrank", 4, W, 1, 1, 1, "sorted-set", zsets::zremrangebyrank, "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.";
    "zremrangebylex", 4, W, 1, 1, 1, "sorted-set", zsets::zremrangebylex, "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.";
    "zrangestore", -5, W.union(M), 1, 2, 1, "sorted-set", zsets::zrangestore, "Stores a range of members from sorted set in a key.";
    "zunionstore", -4, W.union(M), 1, 1, 1, "sorted-set", zsets::zunionstore, "Stores the union of multiple sorted sets in a key.", numkeys::<2>;
    "zinterstore", -4, W.union(M), 1, 1, 1, "sorted-set", zsets::zinterstore, "Stores the intersect of multiple sorted sets in a key.", numkeys::<2>;
    "zdiffstore", -4, W.union(M), 1, 1, 1, "sorted-set", zsets::zdiffstore, "Stores the difference of multiple sorted sets in a key.", numkeys::<2>;
    "zunion", -3, R, 0, 0, 0, "sorted-set", zsets::zunion, "Returns the union of multiple sorted sets.", numkeys::<1>;
    "zinter", -3, R, 0, 0, 0, "sorted-set", zsets::zinter, "Returns the intersect of multiple sorted sets.", numkeys::<1>;
    "zdiff", -3, R, 0, 0, 0, "sorted-set", zsets::zdiff, "Returns the difference between multiple sorted sets.", numkeys::<1>;
    "zintercard", -3, R, 0, 0, 0, "sorted-set", zsets::zintercard, "Returns the number of members of the intersect of multiple sorted sets.", numkeys::<1>;
    "zscan", -3, R, 1, 1, 1, "sorted-set", zsets::zscan, "Iterates over members and scores of a sorted set.";
    "zrandmember", -2, R, 1, 1, 1, "sorted-set", zsets::zrandmember, "Returns one or more random members from a sorted set.";
    // transactions
    "multi", 1, NS.union(L).union(S).union(F).union(TX), 0, 0, 0, "transactions", transactions::multi, "Starts a transaction.";
    "exec", 1, NS.union(L).union(S).union(TX), 0, 0, 0, "transactions", transactions::exec, "Executes all commands in a transaction.";
    "discard", 1, NS.union(L).union(S).union(F).union(TX), 0, 0, 0, "transactions", transactions::discard, "Discards a transaction.";
    "watch", -2, NS.union(L).union(S).union(F).union(TX), 1, -1, 1, "transactions", transactions::watch, "Monitors changes to keys to determine the execution of a transaction.";
    "unwatch", 1, NS.union(L).union(S).union(F).union(TX), 0, 0, 0, "transactions", transactions::unwatch, "Forgets about watched keys of a transaction.";
    // connection
    "ping", -1, F.union(S), 0, 0, 0, "connection", connection::ping, "Returns the server's liveliness response.";
    "echo", 2, F.union(S).union(L), 0, 0, 0, "connection", connection::echo, "Returns the given string.";
    "auth", -2, NS.union(L).union(S).union(F).union(NA).union(TX), 0, 0, 0, "connection", connection::auth, "Authenticates the connection.";
    "hello", -1, NS.union(L).union(S).union(F).union(NA).union(TX), 0, 0, 0, "connection", connection::hello, "Handshakes with the Redis server.";
    "quit", -1, NS.union(L).union(S).union(F).union(NA).union(TX), 0, 0, 0, "connection", connection::quit, "Closes the connection.";
    "reset", 1, NS.union(L).union(S).union(F).union(NA).union(TX), 0, 0, 0, "connection", connection::reset, "Resets the connection.";
    "client", -2, NS.union(L).union(S), 0, 0, 0, "connection", connection::client, "A container for client connection commands.";
    // pubsub
    "subscribe", -2, NS.union(L).union(S), 0, 0, 0, "pubsub", pubsub::subscribe, "Listens for messages published to channels.";
    "unsubscribe", -1, NS.union(L).union(S), 0, 0, 0, "pubsub", pubsub::unsubscribe, "Stops listening to messages posted to channels.";
    "psubscribe", -2, NS.union(L).union(S), 0, 0, 0, "pubsub", pubsub::psubscribe, "Listens for messages published to channels that match one or more patterns.";
    "punsubscribe", -1, NS.union(L).union(S), 0, 0, 0, "pubsub", pubsub::punsubscribe, "Stops listening to messages published to channels that match one or more patterns.";
    "ssubscribe", -2, NS.union(L).union(S), 1, -1, 1, "pubsub", pubsub::ssubscribe, "Listens for messages published to shard channels.";
    "sunsubscribe", -1, NS.union(L).union(S), 1, -1, 1, "pubsub", pubsub::sunsubscribe, "Stops listening to messages posted to shard channels.";
    "publish", 3, L.union(S).union(F).union(MR), 0, 0, 0, "pubsub", pubsub::publish, "Posts a message to a channel.";
    "spublish", 3, L.union(S).union(F).union(MR), 1, 1, 1, "pubsub", pubsub::spublish, "Post a message to a shard channel";
    "pubsub", -2, L.union(S), 0, 0, 0, "pubsub", pubsub::pubsub, "A container for Pub/Sub commands.";
    "monitor", 1, A.union(NS).union(L).union(S), 0, 0, 0, "server", pubsub::monitor, "Listens for all requests received by the server in real-time.";
    // server
    "command", -1, L.union(S), 0, 0, 0, "server", server::command, "Returns detailed information about all commands.";
    "info", -1, L.union(S), 0, 0, 0, "server", server::info, "Returns information and statistics about the server.";
    "config", -2, A.union(NS).union(L).union(S), 0, 0, 0, "server", server::config, "A container for server configuration commands.";
    "time", 1, L.union(S).union(F), 0, 0, 0, "server", server::time, "Returns the server time.";
    "lastsave", 1, L.union(S).union(F), 0, 0, 0, "server", persistence::lastsave, "Returns the Unix timestamp of the last successful save to disk.";
    "save", 1, A.union(NS).union(NM), 0, 0, 0, "server", persistence::save, "Synchronously saves the database(s) to disk.";
    "bgsave", -1, A.union(NS), 0, 0, 0, "server", persistence::bgsave, "Asynchronously saves the database(s) to disk.";
    "bgrewriteaof", 1, A.union(NS), 0, 0, 0, "server", persistence::bgrewriteaof, "Asynchronously rewrites the append-only file to disk.";
    "dump", 2, R, 1, 1, 1, "generic", persistence::dump, "Returns a serialized representation of the value stored at a key.";
    "restore", -4, W.union(M), 1, 1, 1, "generic", persistence::restore, "Creates a key from the serialized representation of a value.";
    "debug", -2, A.union(NS).union(L).union(S), 0, 0, 0, "server", server::debug, "A container for debugging commands.";
    "memory", -2, R, 0, 0, 0, "server", server::memory, "A container for memory diagnostics commands.";
    "shutdown", -1, A.union(NS).union(L).union(S).union(NM), 0, 0, 0, "server", server::shutdown, "Synchronously saves the database(s) to disk and shuts down the Redis server.";
    // scripting
    "function", -2, W.union(NS), 0, 0, 0, "scripting", scripting::function, "A container for function commands.";
    "eval", -3, NS.union(S).union(SM).union(MR), 0, 0, 0, "scripting", scripting::eval, "Executes a server-side Lua script.", numkeys::<2>;
    "evalsha", -3, NS.union(S).union(SM).union(MR), 0, 0, 0, "scripting", scripting::evalsha, "Executes a server-side Lua script by SHA1 digest.", numkeys::<2>;
    "eval_ro", -3, R.union(NS).union(S).union(SM), 0, 0, 0, "scripting", scripting::eval_ro, "Executes a read-only server-side Lua script.", numkeys::<2>;
    "evalsha_ro", -3, R.union(NS).union(S).union(SM), 0, 0, 0, "scripting", scripting::evalsha_ro, "Executes a read-only server-side Lua script by SHA1 digest.", numkeys::<2>;
    "fcall", -3, NS.union(S).union(SM).union(MR), 0, 0, 0, "scripting", scripting::fcall, "Invokes a function.", numkeys::<2>;
    "fcall_ro", -3, R.union(NS).union(S).union(SM), 0, 0, 0, "scripting", scripting::fcall_ro, "Invokes a read-only function.", numkeys::<2>;
    "script", -2, NS, 0, 0, 0, "scripting", scripting::script, "A container for Lua scripts management commands.";
}
