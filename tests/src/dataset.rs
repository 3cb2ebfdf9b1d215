//! Whole data sets for persistence tests: fill a server with every type in small and large
//! encodings, and read a server's complete contents (every database, key, type, value and
//! expiry time) into a map two servers' contents can be compared with.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::resp::{RawClient, Resp};

/// What one key holds, comparable across servers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyState {
    pub kind: String,
    pub value: Resp,
    /// PEXPIRETIME: -1 without expiry.
    pub expire_at_ms: i64,
}

pub type Dataset = BTreeMap<(u8, Vec<u8>), KeyState>;

async fn ok(client: &mut RawClient, args: &[&[u8]]) {
    let reply = client.command(args).await.expect("server answers");
    assert!(
        !matches!(reply, Resp::Error(_)),
        "{:?} failed: {reply}",
        args.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
    );
}

/// Fills a server: every type, listpack/intset-sized and hashtable/skiplist/quicklist-sized
/// values, integers, long and compressible strings, binary keys, expiries, several databases.
/// `scale` multiplies the number of generic keys.
pub async fn fill(addr: SocketAddr, scale: usize) {
    let mut c = RawClient::connect(addr).await.expect("connect");
    let big_text = "compressible text ".repeat(200);
    let far_future = b"4102444800000"; // 2100-01-01 in ms
    for db in [0u8, 1, 15] {
        ok(&mut c, &[b"SELECT", db.to_string().as_bytes()]).await;
        let p = |name: &str| format!("db{db}:{name}").into_bytes();
        ok(&mut c, &[b"SET", &p("str"), b"hello"]).await;
        ok(&mut c, &[b"SET", &p("int"), b"-12345"]).await;
        ok(&mut c, &[b"SET", &p("bigint"), b"9223372036854775807"]).await;
        ok(&mut c, &[b"SET", &p("empty"), b""]).await;
        ok(&mut c, &[b"SET", &p("long"), big_text.as_bytes()]).await;
        ok(
            &mut c,
            &[b"SET", b"\x00bin\xffkey\r\n", b"\x01\x02\x00\xfe"],
        )
        .await;
        ok(&mut c, &[b"SET", &p("ttl"), b"v", b"PXAT", far_future]).await;
        ok(
            &mut c,
            &[b"RPUSH", &p("list-small"), b"a", b"1", b"-7", b"bb"],
        )
        .await;
        ok(
            &mut c,
            &[b"HSET", &p("hash-small"), b"f", b"v", b"n", b"42"],
        )
        .await;
        ok(
            &mut c,
            &[b"SADD", &p("set-int"), b"1", b"2", b"-300000", b"70000"],
        )
        .await;
        ok(&mut c, &[b"SADD", &p("set-str"), b"x", b"y", b"zz"]).await;
        ok(
            &mut c,
            &[
                b"ZADD",
                &p("zset-small"),
                b"1.5",
                b"a",
                b"-inf",
                b"b",
                b"3",
                b"c",
            ],
        )
        .await;
        ok(&mut c, &[b"PEXPIREAT", &p("zset-small"), far_future]).await;
        let mut list = vec![b"RPUSH".to_vec(), p("list-big")];
        let mut hash = vec![b"HSET".to_vec(), p("hash-big")];
        let mut set = vec![b"SADD".to_vec(), p("set-big")];
        let mut zset = vec![b"ZADD".to_vec(), p("zset-big")];
        for i in 0..1000 {
            list.push(format!("element-{i}-{}", "x".repeat(i % 70)).into_bytes());
            hash.push(format!("field-{i}").into_bytes());
            hash.push(format!("value-{}", i * 7).into_bytes());
            set.push(format!("member-{i}").into_bytes());
            zset.push(format!("{}", i as f64 / 3.0).into_bytes());
            zset.push(format!("m{i}").into_bytes());
        }
        for cmd in [list, hash, set, zset] {
            let args: Vec<&[u8]> = cmd.iter().map(|a| &a[..]).collect();
            ok(&mut c, &args).await;
        }
        // A stream over several nodes with a deleted entry, a group with pending entries.
        for i in 1..=250u64 {
            let id = format!("{}-{}", 1_600_000_000_000 + i / 3, i % 3);
            let amount = (i * 13).to_string();
            ok(
                &mut c,
                &[
                    b"XADD",
                    &p("stream"),
                    id.as_bytes(),
                    b"item",
                    b"sku-1",
                    b"amount",
                    amount.as_bytes(),
                ],
            )
            .await;
        }
        ok(&mut c, &[b"XDEL", &p("stream"), b"1600000000010-1"]).await;
        ok(
            &mut c,
            &[b"XGROUP", b"CREATE", &p("stream"), b"workers", b"0"],
        )
        .await;
        ok(
            &mut c,
            &[
                b"XREADGROUP",
                b"GROUP",
                b"workers",
                b"w1",
                b"COUNT",
                b"20",
                b"STREAMS",
                &p("stream"),
                b">",
            ],
        )
        .await;
        ok(
            &mut c,
            &[b"XACK", &p("stream"), b"workers", b"1600000000001-1"],
        )
        .await;
        ok(
            &mut c,
            &[b"HSET", &p("hash-longval"), b"f", big_text.as_bytes()],
        )
        .await;
        for i in 0..(scale * 100) {
            let key = format!("db{db}:k:{i}");
            ok(
                &mut c,
                &[b"SET", key.as_bytes(), format!("v{i}").as_bytes()],
            )
            .await;
        }
    }
}

/// Reads everything a server holds, once it has loaded its data.
pub async fn read(addr: SocketAddr) -> Dataset {
    let mut c = RawClient::connect(addr).await.expect("connect");
    wait_loaded(&mut c).await;
    let mut out = Dataset::new();
    for db in 0..16u8 {
        ok(&mut c, &[b"SELECT", db.to_string().as_bytes()]).await;
        let mut cursor = b"0".to_vec();
        loop {
            let reply = c
                .command(&[b"SCAN", &cursor[..], b"COUNT", b"1000"])
                .await
                .expect("scan");
            let Resp::Array(parts) = reply else {
                panic!("SCAN reply {reply}")
            };
            let (Some(Resp::Bulk(next)), Some(Resp::Array(keys))) = (parts.first(), parts.get(1))
            else {
                panic!("SCAN reply shape")
            };
            for key in keys {
                let Resp::Bulk(key) = key else { continue };
                let state = key_state(&mut c, key).await;
                out.insert((db, key.clone()), state);
            }
            cursor = next.clone();
            if cursor == b"0" {
                break;
            }
        }
    }
    out
}

async fn key_state(c: &mut RawClient, key: &[u8]) -> KeyState {
    let kind = match c.command(&[b"TYPE", key]).await.expect("type") {
        Resp::Simple(s) => s,
        other => panic!("TYPE reply {other}"),
    };
    let value = match kind.as_str() {
        "string" => c.command(&[b"GET", key]).await,
        "list" => c.command(&[b"LRANGE", key, b"0", b"-1"]).await,
        "hash" => c.command(&[b"HGETALL", key]).await.map(Resp::sorted_pairs),
        "set" => c.command(&[b"SMEMBERS", key]).await.map(Resp::sorted),
        "zset" => {
            c.command(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"])
                .await
        }
        "stream" => c
            .command(&[b"XINFO".as_slice(), b"STREAM", key, b"FULL", b"COUNT", b"0"])
            .await
            .map(mask_stream_details),
        other => panic!("unexpected type {other}"),
    }
    .expect("value");
    let expire_at_ms = match c
        .command(&[b"PEXPIRETIME", key])
        .await
        .expect("pexpiretime")
    {
        Resp::Int(n) => n,
        other => panic!("PEXPIRETIME reply {other}"),
    };
    KeyState {
        kind,
        value,
        expire_at_ms,
    }
}

/// XINFO STREAM FULL without what a faithful copy need not keep: how entries are split into
/// nodes (radix-tree-keys and -nodes: an AOF replay packs them anew, under its own
/// stream-node-max-entries) and consumers' seen-time (a replay sees them anew, as in Redis).
fn mask_stream_details(reply: Resp) -> Resp {
    match reply {
        Resp::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut mask_next = false;
            for item in items {
                if mask_next {
                    out.push(Resp::Int(0));
                    mask_next = false;
                    continue;
                }
                mask_next = matches!(&item, Resp::Bulk(b) if matches!(&b[..], b"radix-tree-keys" | b"radix-tree-nodes" | b"seen-time"));
                out.push(mask_stream_details(item));
            }
            Resp::Array(out)
        }
        other => other,
    }
}

/// Describes how two data sets differ (empty if they are equal).
pub fn differences(a: &Dataset, b: &Dataset) -> Vec<String> {
    let mut out = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            None => out.push(format!(
                "db {} key {:?} missing on the right",
                k.0,
                String::from_utf8_lossy(&k.1)
            )),
            Some(vb) if vb != va => out.push(format!(
                "db {} key {:?}: {:?} vs {:?}",
                k.0,
                String::from_utf8_lossy(&k.1),
                va,
                vb
            )),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!(
            "db {} key {:?} missing on the left",
            k.0,
            String::from_utf8_lossy(&k.1)
        ));
    }
    out.truncate(20);
    out
}

/// Waits while the server answers -LOADING (a server accepts connections before its data is
/// in: redis-server and cachedesk-server alike).
pub async fn wait_loaded(c: &mut RawClient) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match c.command(&[b"PING"]).await.expect("ping") {
            Resp::Error(e) if e.starts_with("LOADING") => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "still loading after 60 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            _ => return,
        }
    }
}
