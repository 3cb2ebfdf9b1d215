//! Import and export of RDB files on a running in-process instance (the portal's
//! Import/Export): an export taken while clients write holds the data of its start and loads
//! into redis-server 7.0; a dump redis-server saved imports with identical data, under AOF too
//! (the import survives a restart); a file that fails to import leaves the data as it was.

use std::path::Path;

use cachedesk_engine::{EventKind, Instance, InstanceConfig, PersistenceMode, Reply};
use cachedesk_tests::dataset::{self, differences, Dataset};
use cachedesk_tests::in_process::{run, temp_dir};
use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::{require_redis_server, ServerProcess};

fn assert_same(expected: &Dataset, loaded: &Dataset) {
    let diff = differences(expected, loaded);
    assert!(
        diff.is_empty(),
        "{} differences:\n{}",
        diff.len(),
        diff[..diff.len().min(5)].join("\n")
    );
    assert_eq!(loaded.len(), expected.len());
}

async fn start(dir: &Path, persistence: PersistenceMode) -> Instance {
    let instance = Instance::start(InstanceConfig {
        dir: dir.to_path_buf(),
        persistence,
        ..InstanceConfig::default()
    })
    .await
    .expect("start");
    instance.wait_loaded().await.expect("loads");
    instance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_under_writes_loads_into_redis_server_with_the_data_of_its_start() {
    if !require_redis_server("export_loads_into_redis") {
        return;
    }
    let dir = temp_dir("export");
    let instance = start(&dir, PersistenceMode::Disabled).await;
    dataset::fill(instance.addr(), 20).await;
    let expected = dataset::read(instance.addr()).await;
    let changes_before = instance.telemetry_now().changes_since_save;

    let target = dir.join("picked by the user.rdb");
    let export = instance.export_rdb(target.clone());
    let writer = async {
        let mut c = RawClient::connect(instance.addr()).await.expect("connect");
        for i in 0..2000 {
            let reply = c
                .command(&[b"SET", format!("after:{i}").as_bytes(), b"x"])
                .await
                .expect("SET during the export");
            assert_eq!(reply, Resp::Simple("OK".into()));
        }
    };
    let (report, ()) = tokio::join!(export, writer);
    let report = report.expect("exported");
    assert_eq!(report.keys, expected.len() as u64);
    assert!(
        instance.telemetry_now().changes_since_save >= changes_before,
        "an export is not a save"
    );
    assert!(instance
        .events_since(0)
        .iter()
        .any(|e| e.kind == EventKind::Exported));

    let redis_dir = temp_dir("export-to-redis");
    std::fs::copy(&target, redis_dir.join("dump.rdb")).expect("copy");
    let dir_arg = redis_dir.display().to_string();
    let redis = ServerProcess::redis(&["--dir", &dir_arg]);
    let loaded = dataset::read(redis.addr).await;
    assert_same(&expected, &loaded);
    instance.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&redis_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_server_dump_imports_and_a_bad_file_leaves_the_data_as_it_was() {
    if !require_redis_server("redis_dump_imports") {
        return;
    }
    let redis = ServerProcess::redis(&[]);
    dataset::fill(redis.addr, 10).await;
    let mut c = RawClient::connect(redis.addr).await.expect("connect");
    assert_eq!(
        c.command(&[b"SAVE"]).await.expect("SAVE"),
        Resp::Simple("OK".into())
    );
    let expected = dataset::read(redis.addr).await;
    let dump = redis.dir.join("dump.rdb");

    let dir = temp_dir("import");
    let instance = start(&dir, PersistenceMode::Aof).await;
    run(&instance, &["SET", "old", "data"]);

    // A truncated copy fails to import: nothing changes.
    let bad = dir.join("truncated.rdb");
    let bytes = std::fs::read(&dump).expect("dump");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).expect("write");
    let err = instance
        .import_rdb(bad)
        .await
        .expect_err("a truncated file fails");
    assert!(err.to_string().contains("the data is as it was"), "{err}");
    assert_eq!(run(&instance, &["GET", "old"]), Reply::bulk("data"));
    assert!(instance
        .events_since(0)
        .iter()
        .any(|e| e.kind == EventKind::ImportFailed));

    let report = instance.import_rdb(dump).await.expect("imports");
    assert_eq!(
        report.keys_loaded + report.keys_expired,
        expected.len() as u64
    );
    assert_eq!(
        run(&instance, &["EXISTS", "old"]),
        Reply::Int(0),
        "the data was replaced"
    );
    assert_same(&expected, &dataset::read(instance.addr()).await);

    // Under AOF the import is durable: a restart replays it.
    instance.stop().await;
    let again = start(&dir, PersistenceMode::Aof).await;
    assert_same(&expected, &dataset::read(again.addr()).await);
    again.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
