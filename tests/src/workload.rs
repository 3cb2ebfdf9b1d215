//! Writes whose AOF form differs from what the client sent (Redis "propagates" them): relative
//! expiries, past deadlines, float increments, random pops, blocking pops, transactions,
//! RESTORE with a TTL, keys that expire, FLUSHDB, SWAPDB, MOVE, stream ids and trims, consumer
//! group deliveries and claims. Run against a server with AOF
//! on, then compare what a replay of its files holds with what the server held.

use std::net::SocketAddr;
use std::time::Duration;

use crate::resp::{RawClient, Resp};

async fn run(c: &mut RawClient, args: &[&[u8]]) -> Resp {
    let reply = c.command(args).await.expect("server answers");
    assert!(
        !matches!(reply, Resp::Error(_)),
        "{:?} failed: {reply}",
        args.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
    );
    reply
}

/// Runs the propagation workload (keys under "w:" in databases 0, 3 and 4).
pub async fn propagated_forms(addr: SocketAddr) {
    let mut c = RawClient::connect(addr).await.expect("connect");
    run(&mut c, &[b"SELECT", b"3"]).await;
    run(&mut c, &[b"SET", b"w:ex", b"v", b"EX", b"1000"]).await;
    run(&mut c, &[b"SET", b"w:px", b"v", b"PX", b"900000", b"GET"]).await;
    run(&mut c, &[b"SETEX", b"w:setex", b"1000", b"v"]).await;
    run(&mut c, &[b"PSETEX", b"w:psetex", b"1000000", b"v"]).await;
    run(&mut c, &[b"SET", b"w:exp", b"v"]).await;
    run(&mut c, &[b"EXPIRE", b"w:exp", b"5000"]).await;
    run(&mut c, &[b"SET", b"w:pexp", b"v"]).await;
    run(&mut c, &[b"PEXPIRE", b"w:pexp", b"5000000", b"NX"]).await;
    run(&mut c, &[b"SET", b"w:past", b"v"]).await;
    run(&mut c, &[b"EXPIREAT", b"w:past", b"1000"]).await;
    run(&mut c, &[b"SET", b"w:getex", b"v"]).await;
    run(&mut c, &[b"GETEX", b"w:getex", b"EX", b"7000"]).await;
    run(&mut c, &[b"SET", b"w:persist", b"v", b"EX", b"100"]).await;
    run(&mut c, &[b"GETEX", b"w:persist", b"PERSIST"]).await;
    run(&mut c, &[b"INCRBYFLOAT", b"w:float", b"10.1"]).await;
    run(&mut c, &[b"INCRBYFLOAT", b"w:float", b"3.0e3"]).await;
    run(&mut c, &[b"HINCRBYFLOAT", b"w:hfloat", b"f", b"1.25"]).await;
    run(
        &mut c,
        &[b"SADD", b"w:set", b"a", b"b", b"c", b"d", b"e", b"f"],
    )
    .await;
    run(&mut c, &[b"SPOP", b"w:set"]).await;
    run(&mut c, &[b"SPOP", b"w:set", b"2"]).await;
    run(&mut c, &[b"RPUSH", b"w:list", b"1", b"2", b"3", b"4"]).await;
    run(&mut c, &[b"BLPOP", b"w:list", b"0"]).await;
    run(&mut c, &[b"BRPOP", b"w:list", b"0"]).await;
    run(
        &mut c,
        &[b"BLMOVE", b"w:list", b"w:list2", b"LEFT", b"RIGHT", b"0"],
    )
    .await;
    let Resp::Bulk(payload) = run(&mut c, &[b"DUMP", b"w:list2"]).await else {
        panic!("DUMP gives a payload")
    };
    run(&mut c, &[b"RESTORE", b"w:restored", b"600000", &payload]).await;
    run(&mut c, &[b"MULTI"]).await;
    c.command(&[b"INCR".as_slice(), b"w:tx"])
        .await
        .expect("queued");
    c.command(&[b"SET".as_slice(), b"w:tx2", b"x", b"EX", b"800"])
        .await
        .expect("queued");
    c.command(&[b"SELECT".as_slice(), b"4"])
        .await
        .expect("queued");
    c.command(&[b"SPOP".as_slice(), b"w:none"])
        .await
        .expect("queued");
    c.command(&[b"LPUSH".as_slice(), b"w:in4", b"z"])
        .await
        .expect("queued");
    run(&mut c, &[b"EXEC"]).await;
    // A blocked pop served by another client's push.
    let mut waiter = RawClient::connect(addr).await.expect("connect");
    waiter
        .command(&[b"SELECT".as_slice(), b"4"])
        .await
        .expect("select");
    let blocked = tokio::spawn(async move {
        waiter
            .command(&[b"BLPOP".as_slice(), b"w:later", b"10"])
            .await
            .expect("served")
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    run(&mut c, &[b"RPUSH", b"w:later", b"first", b"second"]).await;
    assert!(matches!(blocked.await.expect("joins"), Resp::Array(_)));
    // Keys that expire on their own (active expiry and lazy access both log a DEL).
    run(&mut c, &[b"SET", b"w:short1", b"v", b"PX", b"50"]).await;
    run(&mut c, &[b"SET", b"w:short2", b"v", b"PX", b"50"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.command(&[b"GET".as_slice(), b"w:short1"])
        .await
        .expect("get");
    run(&mut c, &[b"SELECT", b"0"]).await;
    run(&mut c, &[b"SET", b"w:moved", b"m"]).await;
    run(&mut c, &[b"MOVE", b"w:moved", b"5"]).await;
    run(&mut c, &[b"SET", b"w:renamed", b"r", b"EX", b"9000"]).await;
    run(&mut c, &[b"RENAME", b"w:renamed", b"w:renamed2"]).await;
    streams(&mut c, addr).await;
    run(&mut c, &[b"SELECT", b"6"]).await;
    run(&mut c, &[b"SET", b"w:gone", b"x"]).await;
    run(&mut c, &[b"FLUSHDB"]).await;
    run(&mut c, &[b"SET", b"w:swap", b"in 6"]).await;
    run(&mut c, &[b"SWAPDB", b"6", b"7"]).await;
}

/// Stream writes Redis logs in another form: generated ids, approximate trims, deliveries to
/// consumers (XCLAIMs), NOACK reads (XGROUP SETID), claims and auto-claims of deleted entries,
/// and a blocked XREADGROUP served by an XADD.
async fn streams(c: &mut RawClient, addr: SocketAddr) {
    run(c, &[b"CONFIG", b"SET", b"stream-node-max-entries", b"5"]).await;
    for _ in 0..30 {
        run(c, &[b"XADD", b"w:stream", b"*", b"f", b"v"]).await;
    }
    run(
        c,
        &[
            b"XADD",
            b"w:stream",
            b"MAXLEN",
            b"~",
            b"12",
            b"*",
            b"f",
            b"last",
        ],
    )
    .await;
    run(c, &[b"XTRIM", b"w:stream", b"MINID", b"~", b"0-1"]).await;
    run(c, &[b"XADD", b"w:capped", b"5-*", b"a", b"1"]).await;
    run(c, &[b"XADD", b"w:capped", b"5-*", b"a", b"2"]).await;
    run(c, &[b"XGROUP", b"CREATE", b"w:stream", b"g", b"0"]).await;
    run(c, &[b"XGROUP", b"CREATE", b"w:stream", b"quiet", b"0"]).await;
    run(
        c,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"alice",
            b"COUNT",
            b"4",
            b"STREAMS",
            b"w:stream",
            b">",
        ],
    )
    .await;
    run(
        c,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"quiet",
            b"bob",
            b"NOACK",
            b"COUNT",
            b"3",
            b"STREAMS",
            b"w:stream",
            b">",
        ],
    )
    .await;
    let Resp::Array(pending) = run(c, &[b"XPENDING", b"w:stream", b"g", b"-", b"+", b"10"]).await
    else {
        panic!("XPENDING gives entries")
    };
    let ids: Vec<Vec<u8>> = pending
        .iter()
        .filter_map(|p| match p {
            Resp::Array(parts) => match parts.first() {
                Some(Resp::Bulk(id)) => Some(id.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 4);
    run(
        c,
        &[
            b"XCLAIM",
            b"w:stream",
            b"g",
            b"carol",
            b"0",
            &ids[0],
            b"RETRYCOUNT",
            b"7",
        ],
    )
    .await;
    run(c, &[b"XDEL", b"w:stream", &ids[1]]).await;
    run(
        c,
        &[
            b"XAUTOCLAIM",
            b"w:stream",
            b"g",
            b"dave",
            b"0",
            b"0",
            b"COUNT",
            b"2",
        ],
    )
    .await;
    run(c, &[b"XACK", b"w:stream", b"g", &ids[3]]).await;
    run(c, &[b"XGROUP", b"SETID", b"w:stream", b"quiet", b"$"]).await;
    // A consumer blocked for new entries, served by another client's XADD.
    let mut waiter = RawClient::connect(addr).await.expect("connect");
    waiter
        .command(&[b"SELECT".as_slice(), b"0"])
        .await
        .expect("select");
    let blocked = tokio::spawn(async move {
        waiter
            .command(&[
                b"XREADGROUP".as_slice(),
                b"GROUP",
                b"g",
                b"erin",
                b"BLOCK",
                b"10000",
                b"STREAMS",
                b"w:stream",
                b">",
            ])
            .await
            .expect("served")
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    run(
        c,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"alice",
            b"STREAMS",
            b"w:stream",
            b">",
        ],
    )
    .await;
    run(c, &[b"XADD", b"w:stream", b"*", b"f", b"for erin"]).await;
    let served = blocked.await.expect("joins");
    assert!(matches!(served, Resp::Array(_)), "{served}");
    // The XCLAIMs that log deliveries carry no read count (in Redis neither): set it.
    run(
        c,
        &[
            b"XGROUP",
            b"SETID",
            b"w:stream",
            b"g",
            b"$",
            b"ENTRIESREAD",
            b"32",
        ],
    )
    .await;
}
