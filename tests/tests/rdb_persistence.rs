//! RDB persistence of an in-process instance: point-in-time background saves under concurrent
//! writes, the schedule and its retry, restore on start (with -LOADING, eviction to fit and the
//! restore event), stale temp files, and a dump that fails to load.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachedesk_engine::persistence::rdb::open_file;
use cachedesk_engine::{
    EventKind, EvictionPolicy, Instance, InstanceConfig, PersistenceMode, RdbSchedule, Reply,
};
use cachedesk_tests::in_process::{run, temp_dir};
use cachedesk_tests::resp::{RawClient, Resp};

fn rdb_config(dir: &Path, schedule: RdbSchedule) -> InstanceConfig {
    InstanceConfig {
        dir: dir.to_path_buf(),
        persistence: PersistenceMode::Rdb(schedule),
        ..InstanceConfig::default()
    }
}

async fn wait_for_save(instance: &Instance) {
    tokio::time::timeout(Duration::from_secs(120), instance.wait_idle())
        .await
        .expect("save did not finish");
}

/// Reads a dump into (db, key) → string value (non-strings as their type name).
fn read_dump(path: &Path) -> std::collections::HashMap<(usize, String), String> {
    let mut out = std::collections::HashMap::new();
    let mut reader = open_file(path).expect("dump opens");
    while let Some(k) = reader.next_key().expect("dump reads back") {
        let value = match k.value {
            cachedesk_engine::keyspace::Value::Str(s) => String::from_utf8_lossy(&s).into_owned(),
            other => other.value_type().name().to_string(),
        };
        let key = String::from_utf8_lossy(&k.key).into_owned();
        assert!(out.insert((k.db, key), value).is_none(), "key saved twice");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_save_is_point_in_time_under_concurrent_writes() {
    const KEYS: usize = 1_000_000;
    let dir = temp_dir("pit");
    let instance = Instance::start(rdb_config(&dir, RdbSchedule::default()))
        .await
        .expect("start");
    assert_eq!(
        run(&instance, &["DEBUG", "POPULATE", &KEYS.to_string()]),
        Reply::OK
    );

    instance.background_save().expect("save starts");
    // Real clients write during the save (their connections also advance the walk).
    let saving = Arc::new(AtomicBool::new(true));
    let writes_during_save = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let (saving, count) = (saving.clone(), writes_during_save.clone());
        let mut client = RawClient::connect(instance.addr()).await.expect("connect");
        writers.push(tokio::spawn(async move {
            let mut i = w;
            while saving.load(Ordering::Relaxed) {
                let key = format!("key:{}", (i * 7919) % KEYS as u64);
                let reply = match i % 3 {
                    0 => client.command(&["SET", &key, "overwritten"]).await,
                    1 => client.command(&["DEL", &key]).await,
                    _ => {
                        client
                            .command(&["SET", &format!("new:{i}"), "created"])
                            .await
                    }
                };
                assert!(!matches!(reply.expect("reply"), Resp::Error(_)));
                count.fetch_add(1, Ordering::Relaxed);
                i += 2;
            }
        }));
    }
    let progress = instance.telemetry_now().rdb.save_progress;
    assert!(
        matches!(progress, Some((_, total)) if total == KEYS as u64),
        "{progress:?}"
    );
    wait_for_save(&instance).await;
    saving.store(false, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let status = instance.persistence_status();
    assert!(status.last_save_ok, "{:?}", status.last_error);
    let written = writes_during_save.load(Ordering::Relaxed);
    assert!(written > 1000, "only {written} writes overlapped the save");

    let saved = read_dump(&dir.join("dump.rdb"));
    assert_eq!(
        saved.len(),
        KEYS,
        "the dump holds exactly the keys present at its start"
    );
    for i in 0..KEYS {
        assert_eq!(
            saved.get(&(0, format!("key:{i}"))).map(String::as_str),
            Some(&*format!("value:{i}"))
        );
    }
    let report = status.history.back().expect("save recorded");
    assert_eq!(report.keys, KEYS as u64);
    eprintln!(
        "saved {KEYS} keys in {:.3} s while {written} writes ran",
        report.duration.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bgsave_schedule_runs_after_the_current_save_and_lastsave_follows() {
    let dir = temp_dir("bgsave-schedule");
    let instance = Instance::start(rdb_config(&dir, RdbSchedule::default()))
        .await
        .expect("start");
    assert_eq!(run(&instance, &["DEBUG", "POPULATE", "300000"]), Reply::OK);
    let Reply::Int(before) = run(&instance, &["LASTSAVE"]) else {
        panic!("LASTSAVE reply")
    };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        run(&instance, &["BGSAVE"]),
        Reply::Status("Background saving started")
    );
    assert_eq!(
        run(&instance, &["BGSAVE"]),
        Reply::Error("ERR Background save already in progress".into())
    );
    assert_eq!(
        run(&instance, &["BGSAVE", "SCHEDULE"]),
        Reply::Status("Background saving scheduled")
    );
    assert_eq!(
        run(&instance, &["SAVE"]),
        Reply::Error("ERR Background save already in progress".into())
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while instance.persistence_status().saves < 2 {
        assert!(Instant::now() < deadline, "the scheduled save did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Reply::Int(after) = run(&instance, &["LASTSAVE"]) else {
        panic!("LASTSAVE reply")
    };
    assert!(after > before, "LASTSAVE {before} -> {after}");
    let reasons: Vec<_> = instance
        .persistence_status()
        .history
        .iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(reasons.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_saves_on_frequency_and_retries_failures_after_five_seconds() {
    let dir = temp_dir("schedule");
    let instance = Instance::start(rdb_config(&dir, RdbSchedule::every(Duration::from_secs(1))))
        .await
        .expect("start");
    let mut events = instance.subscribe_events();
    run(&instance, &["SET", "k", "v"]);
    let wait_kind = |kind: EventKind, after: u64| {
        let instance = &instance;
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(e) = instance
                    .events_since(after)
                    .into_iter()
                    .find(|e| e.kind == kind)
                {
                    return e;
                }
                assert!(Instant::now() < deadline, "no {kind:?} event");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let first = wait_kind(EventKind::SaveFinished, 0).await;
    assert!(dir.join("dump.rdb").is_file());
    let rdb = instance.telemetry_now().rdb;
    assert!(rdb.last_save.is_some_and(|s| s.error.is_none()));
    let next = rdb.next_save_at.expect("next save known");
    let until = next
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(until <= Duration::from_secs(1), "next save in {until:?}");
    let second = wait_kind(EventKind::SaveFinished, first.seq).await;
    let gap = second.at.duration_since(first.at).expect("ordered");
    assert!(
        gap >= Duration::from_millis(950),
        "next save {gap:?} after the previous one ended"
    );

    // Take the directory away: the save fails, is reported, and is retried after 5 s.
    std::fs::remove_dir_all(&dir).expect("remove dir");
    let failed = wait_kind(EventKind::SaveFailed, second.seq).await;
    let status = instance.persistence_status();
    assert!(!status.last_save_ok);
    let Reply::Verbatim(info) = run(&instance, &["INFO", "persistence"]) else {
        panic!("INFO reply")
    };
    assert!(info.contains("rdb_last_bgsave_status:err"), "{info}");
    std::fs::create_dir_all(&dir).expect("mkdir again");
    let retried = wait_kind(EventKind::SaveFinished, failed.seq).await;
    let retry_gap = retried.at.duration_since(failed.at).expect("ordered");
    assert!(
        retry_gap >= Duration::from_millis(4900) && retry_gap < Duration::from_secs(8),
        "retried {retry_gap:?} after the failure"
    );
    assert!(instance.persistence_status().last_save_ok);
    let _ = events.borrow_and_update();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_on_start_refuses_commands_while_loading_then_evicts_to_fit() {
    let dir = temp_dir("restore");
    let first = Instance::start(rdb_config(&dir, RdbSchedule::default()))
        .await
        .expect("start");
    assert_eq!(
        run(&first, &["DEBUG", "POPULATE", "500000", "key", "100"]),
        Reply::OK
    );
    run(&first, &["SET", "gone", "x", "PX", "300"]);
    let used = first.telemetry_now().used_memory;
    assert_eq!(run(&first, &["SAVE"]), Reply::OK);
    first.stop().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A pid above Linux's pid_max (4194304) is never a live process.
    std::fs::write(dir.join("temp-4194305-4.rdb"), b"left by a crash").expect("write temp");

    // Restart scaled down to half the memory.
    let mut config = rdb_config(&dir, RdbSchedule::default());
    config.maxmemory = used / 2;
    config.maxmemory_policy = EvictionPolicy::NoEviction;
    let instance = Instance::start(config).await.expect("restart");
    assert!(
        !dir.join("temp-4194305-4.rdb").exists(),
        "stale temp file removed at start"
    );
    let mut client = RawClient::connect(instance.addr()).await.expect("connect");
    let (mut saw_loading, mut saw_progress) = (false, false);
    loop {
        match client.command(&["GET", "key:1"]).await.expect("reply") {
            Resp::Error(e) if e.starts_with("LOADING") => {
                saw_loading = true;
                // INFO answers during the load, with progress and an ETA; so does telemetry.
                let info = client
                    .command(&["INFO", "persistence"])
                    .await
                    .expect("info")
                    .to_string();
                let loading = instance.telemetry_now().rdb.loading;
                if info.contains("loading:1") {
                    assert!(info.contains("loading_eta_seconds:"), "{info}");
                    assert!(info.contains("loading_total_bytes:"), "{info}");
                    saw_progress |=
                        loading.is_some_and(|(done, total, _)| done <= total && total > 0);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            _ => break,
        }
    }
    assert!(
        saw_loading && saw_progress,
        "a command sent right after start should get -LOADING, with progress in INFO and telemetry"
    );
    let report = instance
        .wait_loaded()
        .await
        .expect("loads")
        .expect("had a dump");
    assert_eq!(report.keys_expired, 1);
    assert_eq!(report.keys_loaded, 500_000);
    assert!(report.keys_evicted > 100_000, "{report:?}");
    let t = instance.telemetry_now();
    assert!(t.used_memory <= used / 2);
    assert_eq!(t.total_keys(), 500_000 - report.keys_evicted);
    let events = instance.events_since(0);
    let restored = events
        .iter()
        .find(|e| e.kind == EventKind::Restored)
        .expect("restore event");
    assert!(restored.detail.contains("evicted"), "{}", restored.detail);
    let info = client
        .command(&["INFO", "persistence"])
        .await
        .expect("info")
        .to_string();
    assert!(info.contains("rdb_last_load_keys_loaded:500000"), "{info}");
    assert!(info.contains("rdb_last_load_keys_expired:1"), "{info}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_that_fails_to_load_stops_the_instance_and_is_left_untouched() {
    let dir = temp_dir("badload");
    let first = Instance::start(rdb_config(&dir, RdbSchedule::every(Duration::from_secs(1))))
        .await
        .expect("start");
    run(&first, &["SET", "k", "v"]);
    assert_eq!(run(&first, &["SAVE"]), Reply::OK);
    first.stop().await;
    let path = dir.join("dump.rdb");
    let mut bytes = std::fs::read(&path).expect("dump");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&path, &bytes).expect("corrupt it");

    let instance = Instance::start(rdb_config(&dir, RdbSchedule::every(Duration::from_secs(1))))
        .await
        .expect("start");
    let err = instance.wait_loaded().await.expect_err("load fails");
    assert!(err.contains("checksum mismatch"), "{err}");
    let mut stopped = instance.shutdown_signal();
    tokio::time::timeout(Duration::from_secs(5), stopped.wait_for(|s| *s))
        .await
        .expect("stops")
        .expect("signal");
    instance.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        bytes,
        "file untouched"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The hidden key-load-delay slows a load to a pace that can be watched: every key read waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_load_delay_waits_after_each_key_loaded() {
    let dir = temp_dir("key-load-delay");
    let first = Instance::start(rdb_config(&dir, RdbSchedule::default()))
        .await
        .expect("start");
    assert_eq!(
        run(&first, &["DEBUG", "POPULATE", "400", "key", "10"]),
        Reply::OK
    );
    assert_eq!(run(&first, &["SAVE"]), Reply::OK);
    first.stop().await;
    let mut config = rdb_config(&dir, RdbSchedule::default());
    config.key_load_delay = 2500;
    let instance = Instance::start(config).await.expect("restart");
    let report = instance
        .wait_loaded()
        .await
        .expect("loads")
        .expect("had a dump");
    assert_eq!(report.keys_loaded, 400);
    assert!(
        report.duration >= Duration::from_secs(1),
        "400 keys at 2.5 ms each: {:?}",
        report.duration
    );
    assert_eq!(
        run(&instance, &["CONFIG", "GET", "key-load-delay"]),
        Reply::Map(vec![(Reply::bulk("key-load-delay"), Reply::bulk("2500"))])
    );
    let _ = std::fs::remove_dir_all(&dir);
}
