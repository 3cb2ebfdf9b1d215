//! Keyspace notifications, differentially: the same commands of every family run against
//! redis-server 7.0 and cachedesk-server with `notify-keyspace-events KEA` plus new-key
//! events, and the messages a pattern subscriber receives must be the same, in the same order.

use std::time::Duration;

use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::{require_redis_server, ServerProcess};

/// Commands that raise events (and some that must raise none), in order.
const COMMANDS: &[&[&str]] = &[
    // strings
    &["SET", "s", "v"],
    &["SET", "s", "v2", "EX", "100"],
    &["SET", "s", "v3", "NX"],
    &["SETNX", "s2", "x"],
    &["SETEX", "s3", "100", "x"],
    &["PSETEX", "s4", "100000", "x"],
    &["GETSET", "s", "v4"],
    &["MSET", "m1", "a", "m2", "b"],
    &["MSETNX", "m1", "a", "m3", "c"],
    &["GETDEL", "m2"],
    &["GETEX", "s", "PX", "100000"],
    &["GETEX", "s", "PERSIST"],
    &["GETEX", "s", "PERSIST"],
    &["SETRANGE", "s", "1", "zz"],
    &["SETRANGE", "s", "1", ""],
    &["APPEND", "s", "tail"],
    &["APPEND", "newappend", ""],
    &["INCR", "n"],
    &["DECRBY", "n", "5"],
    &["INCRBYFLOAT", "f", "1.5"],
    &["INCR", "s"],
    // generic
    &["DEL", "m1", "missing"],
    &["EXPIRE", "s3", "500"],
    &["EXPIRE", "missing", "500"],
    &["PERSIST", "s3"],
    &["PERSIST", "s3"],
    &["PEXPIRE", "s4", "-1"],
    &["RENAME", "s", "renamed"],
    &["RENAME", "renamed", "s3"],
    &["RENAMENX", "s3", "s2"],
    &["COPY", "s3", "copied"],
    &["COPY", "s3", "copied", "REPLACE"],
    &["MOVE", "copied", "1"],
    &["UNLINK", "s2"],
    // lists
    &["LPUSH", "l", "a", "b", "c"],
    &["RPUSH", "l", "d"],
    &["LPUSHX", "nolist", "a"],
    &["RPUSHX", "l", "e"],
    &["LINSERT", "l", "BEFORE", "a", "z"],
    &["LINSERT", "l", "BEFORE", "nothere", "z"],
    &["LSET", "l", "0", "first"],
    &["LREM", "l", "1", "z"],
    &["LREM", "l", "1", "nothere"],
    &["LTRIM", "l", "0", "-1"],
    &["LPOP", "l"],
    &["RPOP", "l", "2"],
    &["LPOP", "l", "0"],
    &["LMOVE", "l", "l2", "LEFT", "RIGHT"],
    &["RPOPLPUSH", "l", "l2"],
    &["LMPOP", "2", "nolist", "l2", "LEFT", "COUNT", "1"],
    &["BLPOP", "l2", "0"],
    &["BRPOP", "l", "l2", "0.01"],
    &["RPUSH", "lt", "a", "b"],
    &["LTRIM", "lt", "5", "10"],
    // hashes
    &["HSET", "h", "f", "1", "g", "2"],
    &["HSET", "h", "f", "1"],
    &["HSETNX", "h", "f", "x"],
    &["HSETNX", "h", "n", "x"],
    &["HINCRBY", "h", "f", "2"],
    &["HINCRBYFLOAT", "h", "f", "0.5"],
    &["HDEL", "h", "nothere"],
    &["HDEL", "h", "f", "g", "n"],
    // sets
    &["SADD", "st", "a", "b", "c"],
    &["SADD", "st", "a"],
    &["SREM", "st", "zz"],
    &["SREM", "st", "a"],
    &["SMOVE", "st", "st2", "b"],
    &["SMOVE", "st", "st2", "nothere"],
    &["SPOP", "st"],
    &["SADD", "sa", "1", "2", "3"],
    &["SADD", "sb", "3", "4"],
    &["SINTERSTORE", "sdst", "sa", "sb"],
    &["SUNIONSTORE", "sdst", "sa", "sb"],
    &["SDIFFSTORE", "sdst", "sa", "sa"],
    &["SDIFFSTORE", "sdst", "sa", "sa"],
    &["SPOP", "sa", "10"],
    // sorted sets
    &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
    &["ZADD", "z", "1", "a"],
    &["ZADD", "z", "INCR", "5", "a"],
    &["ZADD", "znone", "XX", "1", "a"],
    &["ZINCRBY", "z", "1", "b"],
    &["ZREM", "z", "nothere"],
    &["ZREM", "z", "c"],
    &["ZREMRANGEBYSCORE", "z", "100", "200"],
    &["ZREMRANGEBYRANK", "z", "0", "0"],
    &["ZADD", "zl", "0", "a", "0", "b", "0", "c"],
    &["ZREMRANGEBYLEX", "zl", "[a", "[b"],
    &["ZREMRANGEBYLEX", "zl", "[x", "[y"],
    &["ZADD", "z2", "1", "x", "2", "y"],
    &["ZUNIONSTORE", "zdst", "2", "z", "z2"],
    &["ZINTERSTORE", "zdst", "2", "z", "z2"],
    &["ZDIFFSTORE", "zdst", "1", "z2"],
    &["ZRANGESTORE", "zr", "z2", "0", "-1"],
    &["ZRANGESTORE", "zr", "nothere", "0", "-1"],
    &["ZPOPMIN", "z2"],
    &["ZPOPMAX", "z2", "5"],
    &["ZMPOP", "1", "z", "MIN"],
    &["BZPOPMIN", "zdst", "0"],
    // geo
    &[
        "GEOADD",
        "g",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ],
    &["GEOADD", "g", "13.361389", "38.115556", "Palermo"],
    &["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gstore"],
    &[
        "GEOSEARCHSTORE",
        "gs",
        "g",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
    ],
    &[
        "GEOSEARCHSTORE",
        "gs",
        "g",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "km",
    ],
    // bitmaps and HyperLogLog
    &["SETBIT", "b", "7", "1"],
    &["SETBIT", "b", "7", "1"],
    &["BITFIELD", "bf", "SET", "u8", "0", "255"],
    &["BITFIELD", "bf", "GET", "u8", "0"],
    &["BITOP", "OR", "bdst", "b", "bf"],
    &["BITOP", "AND", "bdst", "nothere"],
    &["PFADD", "hll", "a", "b"],
    &["PFADD", "hll", "a"],
    &["PFMERGE", "hll2", "hll"],
    // sort
    &["RPUSH", "tosort", "3", "1", "2"],
    &["SORT", "tosort", "STORE", "sorted"],
    &["SORT", "nothere", "STORE", "sorted"],
    // streams
    &["XADD", "x", "1-1", "f", "v"],
    &["XADD", "x", "MAXLEN", "1", "2-1", "f", "v"],
    &["XADD", "nox", "NOMKSTREAM", "*", "f", "v"],
    &["XGROUP", "CREATE", "x", "g", "0"],
    &["XGROUP", "CREATE", "xm", "g", "$", "MKSTREAM"],
    &["XGROUP", "CREATECONSUMER", "x", "g", "alice"],
    &["XGROUP", "CREATECONSUMER", "x", "g", "alice"],
    &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "x", ">"],
    &["XCLAIM", "x", "g", "carol", "0", "2-1"],
    &["XAUTOCLAIM", "x", "g", "dave", "0", "0-0"],
    &["XGROUP", "SETID", "x", "g", "0"],
    &["XGROUP", "DELCONSUMER", "x", "g", "nobody"],
    &["XGROUP", "DELCONSUMER", "x", "g", "alice"],
    &["XGROUP", "DESTROY", "x", "g"],
    &["XGROUP", "DESTROY", "x", "g"],
    &["XDEL", "x", "9-9"],
    &["XDEL", "x", "2-1"],
    &["XADD", "x", "3-1", "f", "v"],
    &["XTRIM", "x", "MAXLEN", "0"],
    &["XSETID", "x", "5-0"],
    // reads of a write command that count as reads (old values)
    &["GETDEL", "nothere2"],
    &["GETEX", "nothere2", "PERSIST"],
    &["GETSET", "fresh", "v"],
    &["SET", "fresh2", "v", "GET"],
    &["BITFIELD", "nobits", "GET", "u8", "0"],
    // restore
    &["SET", "dumped", "value"],
];

/// Runs the commands against one server; returns the (channel, message) pairs a pattern
/// subscriber received, in order.
async fn events_of(server: &ServerProcess, classes: &str) -> Vec<(String, String)> {
    let mut admin = RawClient::connect(server.addr).await.unwrap();
    admin.command(&["FLUSHALL"]).await.unwrap();
    admin
        .command(&["CONFIG", "SET", "notify-keyspace-events", classes])
        .await
        .unwrap();
    let mut sub = RawClient::connect(server.addr).await.unwrap();
    sub.command(&["PSUBSCRIBE", "__key*__:*"]).await.unwrap();
    for command in COMMANDS {
        admin.command(command).await.unwrap();
    }
    // RESTORE, and an expiry found by a read, then a marker that ends the stream.
    let Resp::Bulk(dump) = admin.command(&["DUMP", "dumped"]).await.unwrap() else {
        panic!("DUMP gives a payload");
    };
    admin
        .command(&[&b"RESTORE"[..], b"restored", b"0", &dump])
        .await
        .unwrap();
    admin
        .command(&[&b"RESTORE"[..], b"restored", b"0", &dump, b"REPLACE"])
        .await
        .unwrap();
    admin.command(&["PSETEX", "short", "1", "x"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    admin.command(&["GET", "short"]).await.unwrap();
    admin
        .command(&["CONFIG", "SET", "notify-keyspace-events", ""])
        .await
        .unwrap();
    admin.command(&["PUBLISH", "end", "."]).await.unwrap();
    // The marker is published once the subscriber's SUBSCRIBE is confirmed (the events
    // before the confirmation are read, not dropped).
    sub.send_raw(&RawClient::encode(&["SUBSCRIBE", "end"]))
        .await
        .unwrap();
    let mut events = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), sub.read_reply())
            .await
            .unwrap_or_else(|_| {
                let tail = &events[events.len().saturating_sub(4)..];
                panic!(
                    "events stopped at {:?} ({}): {tail:?}",
                    server.addr,
                    server.dir.display()
                )
            })
            .unwrap();
        match frame {
            Resp::Array(parts) => match parts.as_slice() {
                [_, _, Resp::Bulk(channel), Resp::Bulk(message)] => events.push((
                    String::from_utf8_lossy(channel).into_owned(),
                    String::from_utf8_lossy(message).into_owned(),
                )),
                [_, Resp::Bulk(channel), Resp::Bulk(_)] if channel == b"end" => break,
                [Resp::Bulk(kind), Resp::Bulk(channel), Resp::Int(_)]
                    if kind == b"subscribe" && channel == b"end" =>
                {
                    admin.command(&["PUBLISH", "end", "."]).await.unwrap();
                }
                _ => {}
            },
            other => panic!("unexpected frame {other}"),
        }
    }
    events
}

/// Runs the commands on redis-server and on cachedesk-server with the event classes
/// `classes`; asserts the events are the same, one by one, and at least `at_least` of them.
async fn same_events_as_redis(classes: &str, at_least: usize) {
    let redis = ServerProcess::redis(&[]);
    let ours = ServerProcess::cachedesk(&[]);
    let expected = events_of(&redis, classes).await;
    let got = events_of(&ours, classes).await;
    assert!(
        expected.len() >= at_least,
        "the script raises too few {classes} events: {expected:?}"
    );
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(e, g, "event {i} differs");
    }
    assert_eq!(expected.len(), got.len(), "as many events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_raises_the_events_redis_raises() {
    if !require_redis_server("keyspace notifications") {
        return;
    }
    same_events_as_redis("KEAn", 201).await;
}

/// `keymiss` (class m, outside A): raised by the reads that find no key, as Redis raises it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_miss_raise_keymiss_as_redis_does() {
    if !require_redis_server("keymiss notifications") {
        return;
    }
    same_events_as_redis("KEm", 7).await;
}
