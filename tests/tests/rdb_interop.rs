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
    let expected = dataset::read(redis.addr).await;
    // Every key DUMPed on one side is RESTOREd (with REPLACE) on the other, into db 0 under a
    // new name, and must read back identically there.
    for (from, to) in [(redis.addr, ours.addr), (ours.addr, redis.addr)] {
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
