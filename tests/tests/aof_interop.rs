//! Multi-part AOF directories both ways with redis-server 7.0: what the engine logs (a base
//! from a rewrite, then incr files with every kind of propagated write) passes redis-check-aof
//! and loads into redis-server with identical data; what redis-server logs (with and without
//! the RDB preamble) loads into the engine with identical data. The servers are killed with
//! SIGKILL before their files are read: everything acknowledged must already be in them.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cachedesk_tests::dataset::{self, differences, Dataset};
use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::{require_redis_server, workload, ServerProcess};

async fn info_field(addr: SocketAddr, name: &str) -> String {
    let mut c = RawClient::connect(addr).await.expect("connect");
    let Resp::Bulk(text) = c
        .command(&[b"INFO".as_slice(), b"persistence"])
        .await
        .expect("info")
    else {
        panic!("INFO gives text")
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("INFO persistence lacks {name}:\n{text}"))
}

/// BGREWRITEAOF, then waits until the rewrite is done.
async fn rewrite(addr: SocketAddr) {
    let before: u64 = info_field(addr, "aof_rewrites")
        .await
        .parse()
        .expect("number");
    let mut c = RawClient::connect(addr).await.expect("connect");
    let reply = c.command(&[b"BGREWRITEAOF"]).await.expect("reply");
    assert!(matches!(reply, Resp::Simple(_)), "BGREWRITEAOF: {reply}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done: u64 = info_field(addr, "aof_rewrites")
            .await
            .parse()
            .expect("number");
        if done > before && info_field(addr, "aof_rewrite_in_progress").await == "0" {
            break;
        }
        assert!(Instant::now() < deadline, "the rewrite did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn check_aof(manifest: &Path) {
    let out = Command::new("redis-check-aof")
        .arg(manifest)
        .output()
        .expect("redis-check-aof runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("All AOF files and manifest are valid"),
        "redis-check-aof rejected {}:\n{text}",
        manifest.display()
    );
}

/// Copies `<from>/appendonlydir` into a fresh directory.
fn copy_aof_dir(from: &Path, name: &str) -> std::path::PathBuf {
    let to = std::env::temp_dir().join(format!("cachedesk-aof-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    let target = to.join("appendonlydir");
    std::fs::create_dir_all(&target).expect("mkdir");
    for entry in std::fs::read_dir(from.join("appendonlydir")).expect("aof dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), target.join(entry.file_name())).expect("copy");
    }
    to
}

/// Writes the data set and the propagation workload around a rewrite, reads it back, and
/// kills the server.
async fn write_everything(server: &mut ServerProcess) -> Dataset {
    dataset::fill(server.addr, 5).await;
    rewrite(server.addr).await;
    workload::propagated_forms(server.addr).await;
    let expected = dataset::read(server.addr).await;
    server.kill_hard();
    expected
}

fn assert_same(expected: &Dataset, loaded: &Dataset) {
    let diff = differences(expected, loaded);
    assert!(
        diff.is_empty(),
        "{} differences, first: {:?}",
        diff.len(),
        &diff[..diff.len().min(5)]
    );
    assert_eq!(loaded.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_aof_passes_redis_check_aof_and_loads_into_redis_server() {
    if !require_redis_server("engine_aof_loads_into_redis") {
        return;
    }
    let mut ours = ServerProcess::cachedesk(&["--appendonly", "yes"]);
    let expected = write_everything(&mut ours).await;
    assert!(expected.len() > 1500, "{} keys", expected.len());
    let manifest = ours.dir.join("appendonlydir/appendonly.aof.manifest");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert_eq!(
        text,
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n",
        "the first base and the rewrite's base, named as Redis names them"
    );
    check_aof(&manifest);

    let copy = copy_aof_dir(&ours.dir, "to-redis");
    let dir = copy.display().to_string();
    let redis = ServerProcess::redis(&["--dir", &dir, "--appendonly", "yes"]);
    let loaded = dataset::read(redis.addr).await;
    drop(redis);
    let _ = std::fs::remove_dir_all(&copy);
    assert_same(&expected, &loaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_server_aof_loads_into_the_engine() {
    if !require_redis_server("redis_aof_loads_into_engine") {
        return;
    }
    for preamble in ["yes", "no"] {
        let mut redis =
            ServerProcess::redis(&["--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
        let expected = write_everything(&mut redis).await;
        let base_ext = if preamble == "yes" { "rdb" } else { "aof" };
        assert!(
            redis
                .dir
                .join(format!("appendonlydir/appendonly.aof.2.base.{base_ext}"))
                .exists(),
            "redis-server wrote a .{base_ext} base"
        );
        let copy = copy_aof_dir(&redis.dir, "from-redis");
        let dir = copy.display().to_string();
        let ours = ServerProcess::cachedesk(&["--dir", &dir, "--appendonly", "yes"]);
        let loaded = dataset::read(ours.addr).await;
        drop(ours);
        let _ = std::fs::remove_dir_all(&copy);
        assert_same(&expected, &loaded);
    }
}
