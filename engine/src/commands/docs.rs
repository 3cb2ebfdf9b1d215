//! Argument syntax of every command, as COMMAND DOCS reports it (redis-cli builds its
//! interactive hints from these). Each hint is a list of top-level arguments: `name`,
//! `name...` (repeatable), `[optional]`, `[optional...]`.

use crate::protocol::Reply;

/// The syntax line of a command, after its name.
pub fn hint(command: &str) -> &'static str {
    match command {
        "get" | "strlen" | "getdel" | "incr" | "decr" | "type" | "ttl" | "pttl" | "expiretime"
        | "pexpiretime" | "persist" | "llen" | "hlen" | "hgetall" | "hkeys" | "hvals" | "scard"
        | "smembers" | "zcard" => "key",
        "set" => "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]",
        "mget" | "exists" | "touch" | "del" | "unlink" | "watch" | "sinter" | "sunion" | "sdiff" => "key...",
        "mset" | "msetnx" => "key value...",
        "setnx" | "getset" | "append" => "key value",
        "setex" => "key seconds value",
        "psetex" => "key milliseconds value",
        "getex" => "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]",
        "incrby" | "decrby" => "key increment",
        "incrbyfloat" => "key increment",
        "getrange" | "substr" => "key start end",
        "setrange" => "key offset value",
        "lcs" => "key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]",
        "setbit" => "key offset value",
        "xadd" => "key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value...",
        "xrange" => "key start end [COUNT count]",
        "xrevrange" => "key end start [COUNT count]",
        "xlen" => "key",
        "xdel" => "key id...",
        "xtrim" => "key MAXLEN|MINID [=|~] threshold [LIMIT count]",
        "xsetid" => "key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]",
        "xread" => "[COUNT count] [BLOCK milliseconds] STREAMS key... id...",
        "xreadgroup" => "GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key... id...",
        "xgroup" => "CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP [key group [id|$|consumer]] [MKSTREAM] [ENTRIESREAD entries-read]",
        "xack" => "key group id...",
        "xpending" => "key group [[IDLE min-idle-time] start end count [consumer]]",
        "xclaim" => "key group consumer min-idle-time id... [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]",
        "xautoclaim" => "key group consumer min-idle-time start [COUNT count] [JUSTID]",
        "xinfo" => "CONSUMERS|GROUPS|STREAM|HELP [key] [group] [FULL [COUNT count]]",
        "geoadd" => "key [NX|XX] [CH] longitude latitude member...",
        "geopos" | "geohash" => "key [member...]",
        "geodist" => "key member1 member2 [M|KM|FT|MI]",
        "georadius" => "key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key] [STOREDIST key]",
        "georadius_ro" => "key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]",
        "georadiusbymember" => "key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key] [STOREDIST key]",
        "georadiusbymember_ro" => "key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]",
        "geosearch" => "key FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius M|KM|FT|MI|BYBOX width height M|KM|FT|MI [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]",
        "geosearchstore" => "destination source FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius M|KM|FT|MI|BYBOX width height M|KM|FT|MI [ASC|DESC] [COUNT count [ANY]] [STOREDIST]",
        "pfadd" => "key [element...]",
        "pfcount" => "key...",
        "pfmerge" => "destkey [sourcekey...]",
        "pfdebug" => "subcommand key",
        "getbit" => "key offset",
        "bitcount" => "key [start end [BYTE|BIT]]",
        "bitpos" => "key bit [start [end [BYTE|BIT]]]",
        "bitop" => "AND|OR|XOR|NOT destkey key...",
        "bitfield" => "key [GET encoding offset|SET encoding offset value|INCRBY encoding offset increment|OVERFLOW WRAP|SAT|FAIL...]",
        "bitfield_ro" => "key [GET encoding offset...]",
        "expire" | "pexpire" => "key time [NX|XX|GT|LT]",
        "expireat" | "pexpireat" => "key unix-time [NX|XX|GT|LT]",
        "rename" | "renamenx" => "key newkey",
        "keys" => "pattern",
        "scan" => "cursor [MATCH pattern] [COUNT count] [TYPE type]",
        "copy" => "source destination [DB destination-db] [REPLACE]",
        "move" => "key db",
        "sort" => "key [BY pattern] [LIMIT offset count] [GET pattern...] [ASC|DESC] [ALPHA] [STORE destination]",
        "sort_ro" => "key [BY pattern] [LIMIT offset count] [GET pattern...] [ASC|DESC] [ALPHA]",
        "flushdb" | "flushall" => "[ASYNC|SYNC]",
        "select" => "index",
        "swapdb" => "index1 index2",
        "object" => "ENCODING|FREQ|IDLETIME|REFCOUNT|HELP [key]",
        "hset" | "hmset" => "key field value...",
        "hsetnx" => "key field value",
        "hget" | "hstrlen" | "hexists" => "key field",
        "hmget" | "hdel" => "key field...",
        "hincrby" | "hincrbyfloat" => "key field increment",
        "hscan" | "sscan" | "zscan" => "key cursor [MATCH pattern] [COUNT count]",
        "hrandfield" => "key [count [WITHVALUES]]",
        "lpush" | "rpush" | "lpushx" | "rpushx" => "key element...",
        "lpop" | "rpop" => "key [count]",
        "lrange" | "ltrim" => "key start stop",
        "lindex" => "key index",
        "lset" => "key index element",
        "lrem" => "key count element",
        "linsert" => "key BEFORE|AFTER pivot element",
        "lpos" => "key element [RANK rank] [COUNT num-matches] [MAXLEN len]",
        "lmove" => "source destination LEFT|RIGHT LEFT|RIGHT",
        "rpoplpush" => "source destination",
        "blpop" | "brpop" => "key... timeout",
        "lmpop" => "numkeys key... LEFT|RIGHT [COUNT count]",
        "blmpop" => "timeout numkeys key... LEFT|RIGHT [COUNT count]",
        "zmpop" => "numkeys key... MIN|MAX [COUNT count]",
        "bzmpop" => "timeout numkeys key... MIN|MAX [COUNT count]",
        "bzpopmin" | "bzpopmax" => "key... timeout",
        "blmove" => "source destination LEFT|RIGHT LEFT|RIGHT timeout",
        "brpoplpush" => "source destination timeout",
        "sadd" | "srem" => "key member...",
        "sismember" => "key member",
        "smismember" => "key member...",
        "spop" | "srandmember" => "key [count]",
        "smove" => "source destination member",
        "sintercard" => "numkeys key... [LIMIT limit]",
        "sinterstore" | "sunionstore" | "sdiffstore" => "destination key...",
        "zadd" => "key [NX|XX] [GT|LT] [CH] [INCR] score member...",
        "zincrby" => "key increment member",
        "zrem" => "key member...",
        "zscore" | "zrank" | "zrevrank" => "key member",
        "zmscore" => "key member...",
        "zcount" => "key min max",
        "zlexcount" => "key min max",
        "zrange" => "key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]",
        "zrangebyscore" => "key min max [WITHSCORES] [LIMIT offset count]",
        "zrevrangebyscore" => "key max min [WITHSCORES] [LIMIT offset count]",
        "zrangebylex" => "key min max [LIMIT offset count]",
        "zrevrangebylex" => "key max min [LIMIT offset count]",
        "zrevrange" => "key start stop [WITHSCORES]",
        "zpopmin" | "zpopmax" => "key [count]",
        "zremrangebyscore" | "zremrangebylex" => "key min max",
        "zremrangebyrank" => "key start stop",
        "zrangestore" => "dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]",
        "zunionstore" | "zinterstore" => "destination numkeys key... [WEIGHTS weight...] [AGGREGATE SUM|MIN|MAX]",
        "zunion" | "zinter" => "numkeys key... [WEIGHTS weight...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]",
        "zdiff" => "numkeys key... [WITHSCORES]",
        "zdiffstore" => "destination numkeys key...",
        "zintercard" => "numkeys key... [LIMIT limit]",
        "zrandmember" => "key [count [WITHSCORES]]",
        "ping" => "[message]",
        "subscribe" | "ssubscribe" => "channel...",
        "unsubscribe" | "sunsubscribe" => "[channel...]",
        "psubscribe" => "pattern...",
        "punsubscribe" => "[pattern...]",
        "publish" | "spublish" => "channel message",
        "pubsub" => "CHANNELS|NUMPAT|NUMSUB|SHARDCHANNELS|SHARDNUMSUB|HELP [pattern|channel...]",
        "echo" => "message",
        "auth" => "[username] password",
        "hello" => "[protover [AUTH username password] [SETNAME clientname]]",
        "client" => "ID|GETNAME|SETNAME|INFO|LIST|KILL|UNBLOCK|HELP [arg...]",
        "command" => "[COUNT|DOCS|INFO|LIST|GETKEYS [arg...]]",
        "info" => "[section...]",
        "config" => "GET|SET|RESETSTAT|REWRITE|HELP [arg...]",
        "debug" => "SLEEP|POPULATE|SET-ACTIVE-EXPIRE [arg...]",
        "memory" => "USAGE key [SAMPLES count]",
        "shutdown" => "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]",
        "function" => "LOAD|DELETE|FLUSH|LIST|KILL|HELP [arg...]",
        "eval" | "eval_ro" => "script numkeys [key...] [arg...]",
        "evalsha" | "evalsha_ro" => "sha1 numkeys [key...] [arg...]",
        "fcall" | "fcall_ro" => "function numkeys [key...] [arg...]",
        "script" => "LOAD|EXISTS|FLUSH|KILL|HELP [arg...]",
        "bgsave" => "[SCHEDULE]",
        "dump" => "key",
        "restore" => "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]",
        _ => "",
    }
}

/// The `arguments` array of COMMAND DOCS for a hint.
pub fn arguments(hint: &str) -> Reply {
    Reply::Array(split_top_level(hint).into_iter().map(argument).collect())
}

fn argument(item: &str) -> Reply {
    let (inner, optional) = match item.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
        Some(inner) => (inner, true),
        None => (item, false),
    };
    let (name, multiple) = match inner.strip_suffix("...") {
        Some(name) => (name, true),
        None => (inner, false),
    };
    let mut flags = Vec::new();
    if optional {
        flags.push(Reply::Status("optional"));
    }
    if multiple {
        flags.push(Reply::Status("multiple"));
    }
    let kind = if name == "key" { "key" } else { "string" };
    let mut fields = vec![
        (Reply::bulk("name"), Reply::bulk(name)),
        (Reply::bulk("type"), Reply::bulk(kind)),
    ];
    if !flags.is_empty() {
        fields.push((Reply::bulk("flags"), Reply::Set(flags)));
    }
    Reply::Map(fields)
}

/// Splits on spaces outside brackets.
fn split_top_level(hint: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in hint.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ' ' if depth == 0 => {
                if i > start {
                    items.push(&hint[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < hint.len() {
        items.push(&hint[start..]);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::table::COMMANDS;

    #[test]
    fn every_command_with_arguments_has_a_hint() {
        for spec in COMMANDS {
            let needs_args = spec.arity > 1 || spec.arity < -1;
            assert!(
                !needs_args || !hint(spec.name).is_empty(),
                "no hint for {}",
                spec.name
            );
        }
    }

    #[test]
    fn hints_split_into_arguments() {
        assert_eq!(
            split_top_level("key [EX seconds|PX ms] value..."),
            ["key", "[EX seconds|PX ms]", "value..."]
        );
        let Reply::Array(args) = arguments("key [count [WITHVALUES]]") else {
            panic!()
        };
        assert_eq!(args.len(), 2);
    }
}
