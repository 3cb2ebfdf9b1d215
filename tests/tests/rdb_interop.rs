//! RDB files both ways with redis-server 7.0: dumps written by the engine pass redis-check-rdb
//! and load into redis-server with identical data; dumps written by redis-server load into the
//! engine with identical data. DUMP payloads cross over the same way.

use std::path::Path;
use std::process::Command;

use cachedesk_tests::dataset::{self, differences};
use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::{require_redis_server, ServerProcess};

async fn command(addr: std::net::SocketAddr, args: &[&[u8]]) -> Resp {
    let mut c = RawClient::connect(addr).await.expect("connect");
    c.command(args).await.expect("reply")
}

fn check_rdb(path: &Path) {
    let out = Command::new("redis-check-rdb")
        .arg(path)
        .output()
        .expect("redis-check-rdb runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb rejected {}:\n{text}",
        path.display()
    );
}

fn copy_dump(from: &Path, to_dir: &Path) {
    std::fs::create_dir_all(to_dir).expect("mkdir");
    std::fs::copy(from.join("dump.rdb"), to_dir.join("dump.rdb")).expect("copy dump");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_dump_passes_redis_check_rdb_and_loads_into_redis_server() {
    if !require_redis_server("engine_dump_loads_into_redis") {
        return;
    }
    let ours = ServerProcess::cachedesk(&[]);
    dataset::fill(ours.addr, 20).await;
    assert_eq!(
        command(ours.addr, &[b"SAVE"]).await,
        Resp::Simple("OK".into())
    );
    let expected = dataset::read(ours.addr).await;
    check_rdb(&ours.dir.join("dump.rdb"));

    let theirs_dir =
        std::env::temp_dir().join(format!("cachedesk-rdb-to-redis-{}", std::process::id()));
    copy_dump(&ours.dir, &theirs_dir);
    let dir = theirs_dir.display().to_string();
    let redis = ServerProcess::redis(&["--dir", &dir]);
    let loaded = dataset::read(redis.addr).await;
    let _ = std::fs::remove_dir_all(&theirs_dir);
    assert_eq!(loaded.len(), expected.len());
    assert!(expected.len() > 6000, "{} keys", expected.len());
    let diff = differences(&expected, &loaded);
    assert!(
        diff.is_empty(),
        "redis-server loaded different data:\n{}",
        diff.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_server_dump_loads_into_the_engine() {
    if !require_redis_server("redis_dump_loads_into_engine") {
        return;
    }
    let redis = ServerProcess::redis(&[]);
    dataset::fill(redis.addr, 20).await;
    // A second list long enough for several quicklist nodes, and Redis's own big encodings.
    let mut c = RawClient::connect(redis.addr).await.expect("connect");
    for i in 0..3000 {
        c.command(&[b"RPUSH", &b"quicklist"[..], format!("item {i}").as_bytes()])
            .await
            .expect("rpush");
    }
    assert_eq!(
        command(redis.addr, &[b"SAVE"]).await,
        Resp::Simple("OK".into())
    );
    let expected = dataset::read(redis.addr).await;

    let ours_dir =
        std::env::temp_dir().join(format!("cachedesk-rdb-from-redis-{}", std::process::id()));
    copy_dump(&redis.dir, &ours_dir);
    let dir = ours_dir.display().to_string();
    let ours = ServerProcess::cachedesk(&["--dir", &dir]);
    let loaded = dataset::read(ours.addr).await;
    let _ = std::fs::remove_dir_all(&ours_dir);
    assert_eq!(loaded.len(), expected.len());
    let diff = differences(&expected, &loaded);
    assert!(
        diff.is_empty(),
        "the engine loaded different data:\n{}",
        diff.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_payloads_restore_across_servers() {
    if !require_redis_server("dump_payloads_restore_across_servers") {
        return;
    }
    let redis = ServerProcess::redis(&[]);
    let ours = ServerProcess::cachedesk(&[]);
    dataset::fill(redis.addr, 0).await;
    dataset::fill(ours.addr, 0).await;
    // Every key DUMPed on one side is RESTOREd (with REPLACE) on the other, into db 0 under a
    // new name, and must read back there as it reads on its side (streams carry the times
    // their side delivered entries at).
    for (from, to) in [(redis.addr, ours.addr), (ours.addr, redis.addr)] {
        let expected = dataset::read(from).await;
        let mut src = RawClient::connect(from).await.expect("connect");
        let mut dst = RawClient::connect(to).await.expect("connect");
        for ((db, key), state) in &expected {
            src.command(&[b"SELECT", db.to_string().as_bytes()])
                .await
                .expect("select");
            let Resp::Bulk(payload) = src.command(&[b"DUMP", &key[..]]).await.expect("dump") else {
                panic!("DUMP gave no payload")
            };
            let mut copy = b"restored:".to_vec();
            copy.extend_from_slice(key);
            let reply = dst
                .command(&[b"RESTORE", &copy[..], b"0", &payload[..], b"REPLACE"])
                .await
                .expect("restore");
            assert_eq!(
                reply,
                Resp::Simple("OK".into()),
                "RESTORE of {:?}",
                String::from_utf8_lossy(key)
            );
            let got = dataset::read(to).await;
            let restored = &got[&(0, copy.clone())];
            assert_eq!(
                (&restored.kind, &restored.value),
                (&state.kind, &state.value)
            );
            dst.command(&[b"DEL", &copy[..]]).await.expect("del");
        }
    }
}

/// HyperLogLogs (sparse and dense) and a geo set, as `probe` reads them.
async fn fill_probabilistic(addr: std::net::SocketAddr) {
    let mut c = RawClient::connect(addr).await.expect("connect");
    let sparse: Vec<String> = (0..100).map(|i| format!("visitor:{i}")).collect();
    let dense: Vec<String> = (0..6000).map(|i| format!("visitor:{i}")).collect();
    for (key, elements) in [("hll:sparse", &sparse), ("hll:dense", &dense)] {
        let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
        args.extend(elements.iter().map(|e| e.as_bytes()));
        c.command(&args).await.expect("pfadd");
    }
    let points: Vec<[String; 3]> = (0..300)
        .map(|i| {
            let lon = -170.0 + (i as f64 * 1.137) % 340.0;
            let lat = -80.0 + (i as f64 * 0.731) % 160.0;
            [lon.to_string(), lat.to_string(), format!("place:{i}")]
        })
        .collect();
    let mut args: Vec<&[u8]> = vec![b"GEOADD", b"geo"];
    args.extend(points.iter().flatten().map(|s| s.as_bytes()));
    c.command(&args).await.expect("geoadd");
}

/// What a client sees of `fill_probabilistic`'s keys: counts, bytes, positions, searches.
async fn probe(addr: std::net::SocketAddr) -> Vec<Resp> {
    let mut c = RawClient::connect(addr).await.expect("connect");
    let reads: [&[&[u8]]; 8] = [
        &[b"PFCOUNT", b"hll:sparse"],
        &[b"PFCOUNT", b"hll:dense"],
        &[b"PFCOUNT", b"hll:sparse", b"hll:dense"],
        &[b"GET", b"hll:sparse"],
        &[b"GEOPOS", b"geo", b"place:1", b"place:150", b"place:299"],
        &[b"GEOHASH", b"geo", b"place:7", b"place:77"],
        &[b"GEODIST", b"geo", b"place:3", b"place:200", b"km"],
        &[
            b"GEOSEARCH",
            b"geo",
            b"FROMLONLAT",
            b"10",
            b"20",
            b"BYRADIUS",
            b"3000",
            b"km",
            b"WITHDIST",
            b"WITHCOORD",
            b"WITHHASH",
            b"ASC",
        ],
    ];
    let mut replies = Vec::new();
    for args in reads {
        replies.push(c.command(args).await.expect("read"));
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyperloglogs_and_geo_sets_count_the_same_after_crossing_servers() {
    if !require_redis_server("hyperloglogs_and_geo_sets_cross_servers") {
        return;
    }
    let redis = ServerProcess::redis(&[]);
    let ours = ServerProcess::cachedesk(&[]);
    for addr in [redis.addr, ours.addr] {
        fill_probabilistic(addr).await;
        assert_eq!(command(addr, &[b"SAVE"]).await, Resp::Simple("OK".into()));
    }
    let expected = probe(redis.addr).await;
    assert_eq!(probe(ours.addr).await, expected, "built alike on both");
    assert!(matches!(&expected[7], Resp::Array(hits) if hits.len() > 3));
    check_rdb(&ours.dir.join("dump.rdb"));
    // Each side's dump, loaded by the other.
    for (from, name, load) in [
        (
            &redis.dir,
            "from-redis",
            ServerProcess::cachedesk as fn(&[&str]) -> ServerProcess,
        ),
        (&ours.dir, "to-redis", ServerProcess::redis),
    ] {
        let dir =
            std::env::temp_dir().join(format!("cachedesk-hll-geo-{name}-{}", std::process::id()));
        copy_dump(from, &dir);
        let dir_arg = dir.display().to_string();
        let loaded = load(&["--dir", &dir_arg]);
        let got = probe(loaded.addr).await;
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, expected, "{name}");
    }
}

/// Streams with several nodes, deleted entries, an emptied stream and consumer groups with
/// pending entries, consumers with and without them, and an unknown entries-read.
async fn fill_streams(addr: std::net::SocketAddr) {
    let mut c = RawClient::connect(addr).await.expect("connect");
    let run =
        |args: Vec<String>| -> Vec<Vec<u8>> { args.into_iter().map(String::into_bytes).collect() };
    let mut script: Vec<Vec<Vec<u8>>> = Vec::new();
    script.push(run(vec![
        "CONFIG".into(),
        "SET".into(),
        "stream-node-max-entries".into(),
        "7".into(),
    ]));
    for i in 1..=40u64 {
        let fields = if i % 3 == 0 {
            vec![
                "kind".to_string(),
                "other".into(),
                "n".into(),
                i.to_string(),
            ]
        } else {
            vec![
                "user".to_string(),
                format!("u{i}"),
                "amount".into(),
                (i * 100).to_string(),
            ]
        };
        let mut args = vec![
            "XADD".to_string(),
            "orders".into(),
            format!("{}-{}", 1000 + i, i % 2),
        ];
        args.extend(fields);
        script.push(run(args));
    }
    for id in ["1005-1", "1006-0", "1020-0", "1040-0"] {
        script.push(run(vec!["XDEL".into(), "orders".into(), id.into()]));
    }
    for line in [
        "XGROUP CREATE orders billing 0",
        "XGROUP CREATE orders audit $",
        "XGROUP CREATE orders shipping 1010-0 ENTRIESREAD 3",
        "XREADGROUP GROUP billing alice COUNT 5 STREAMS orders >",
        "XREADGROUP GROUP billing bob COUNT 3 STREAMS orders >",
        "XACK orders billing 1002-0",
        "XGROUP CREATECONSUMER orders billing carol",
        "XREADGROUP GROUP shipping dave COUNT 2 STREAMS orders >",
        "XDEL orders 1008-0",
        "XADD emptied 5-5 f v",
        "XDEL emptied 5-5",
        "XGROUP CREATE fresh g $ MKSTREAM",
    ] {
        script.push(line.split(' ').map(|s| s.as_bytes().to_vec()).collect());
    }
    for args in script {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let reply = c.command(&args).await.expect("reply");
        assert!(!matches!(reply, Resp::Error(_)), "{args:?}: {reply:?}");
    }
}

/// What a client sees of `fill_streams`'s keys. With `full`, XINFO STREAM FULL too (its
/// seen and delivery times match only between a server and a load of its own dump), with
/// radix-tree-nodes masked (a detail of Redis's radix tree).
async fn probe_streams(addr: std::net::SocketAddr, full: bool) -> Vec<Resp> {
    let mut c = RawClient::connect(addr).await.expect("connect");
    let mut reads: Vec<Vec<&[u8]>> = vec![
        vec![b"XRANGE", b"orders", b"-", b"+"],
        vec![b"XREVRANGE", b"orders", b"+", b"-", b"COUNT", b"4"],
        vec![b"XLEN", b"emptied"],
        vec![b"XINFO", b"GROUPS", b"orders"],
        vec![b"XINFO", b"GROUPS", b"fresh"],
        vec![b"XPENDING", b"orders", b"billing"],
        vec![b"XPENDING", b"orders", b"shipping"],
        vec![b"XRANGE", b"emptied", b"-", b"+"],
    ];
    if full {
        for key in [&b"orders"[..], b"emptied", b"fresh"] {
            reads.push(vec![b"XINFO", b"STREAM", key, b"FULL"]);
        }
    }
    let mut replies = Vec::new();
    for args in reads {
        let mut reply = c.command(&args).await.expect("read");
        if let Resp::Array(items) = &mut reply {
            if let Some(at) = items
                .iter()
                .position(|r| *r == Resp::Bulk(b"radix-tree-nodes".to_vec()))
            {
                items[at + 1] = Resp::Int(0);
            }
        }
        replies.push(reply);
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_with_consumer_groups_cross_servers_in_both_directions() {
    if !require_redis_server("streams_cross_servers") {
        return;
    }
    let redis = ServerProcess::redis(&[]);
    let ours = ServerProcess::cachedesk(&[]);
    for addr in [redis.addr, ours.addr] {
        fill_streams(addr).await;
        assert_eq!(command(addr, &[b"SAVE"]).await, Resp::Simple("OK".into()));
    }
    let built = probe_streams(redis.addr, false).await;
    assert_eq!(
        probe_streams(ours.addr, false).await,
        built,
        "built alike on both"
    );
    assert!(matches!(&built[0], Resp::Array(entries) if entries.len() == 35));
    check_rdb(&ours.dir.join("dump.rdb"));
    for (from, name, load) in [
        (
            &redis,
            "from-redis",
            ServerProcess::cachedesk as fn(&[&str]) -> ServerProcess,
        ),
        (&ours, "to-redis", ServerProcess::redis),
    ] {
        let expected = probe_streams(from.addr, true).await;
        let dir =
            std::env::temp_dir().join(format!("cachedesk-streams-{name}-{}", std::process::id()));
        copy_dump(&from.dir, &dir);
        let dir_arg = dir.display().to_string();
        let loaded = load(&["--dir", &dir_arg]);
        let got = probe_streams(loaded.addr, true).await;
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, expected, "{name}");
    }
}
