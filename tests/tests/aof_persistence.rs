//! AOF persistence of an in-process instance: a truncated tail repaired and reported, a
//! corrupt file or a broken manifest stopping the start with the files untouched, automatic
//! rewrites with progress, failed rewrites backing off, and switching modes on a running
//! instance (Disabled → RDB → AOF → RDB → Disabled) while it keeps its data.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cachedesk_engine::{
    EventKind, Instance, InstanceConfig, PersistenceMode, RdbSchedule, Reply, RewriteReason,
};
use cachedesk_tests::in_process::{run, temp_dir};

fn aof_config(dir: &Path) -> InstanceConfig {
    InstanceConfig {
        dir: dir.to_path_buf(),
        persistence: PersistenceMode::Aof,
        ..InstanceConfig::default()
    }
}

fn info(instance: &Instance, field: &str) -> String {
    let Reply::Verbatim(text) = run(instance, &["INFO", "persistence"]) else {
        panic!("INFO gives text")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO persistence:\n{text}"))
}

fn aof_dir(dir: &Path) -> PathBuf {
    dir.join("appendonlydir")
}

/// Every file of the AOF directory with its bytes.
fn snapshot_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(aof_dir(dir))
        .expect("aof dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts an AOF instance in `dir`, runs `commands`, stops it cleanly.
async fn write_aof(dir: &Path, commands: &[&[&str]]) {
    let instance = Instance::start(aof_config(dir)).await.expect("start");
    instance.wait_loaded().await.expect("loads");
    wait_until("the first base", || {
        instance.aof_figures().is_some_and(|f| f.has_base)
    })
    .await;
    for c in commands {
        assert!(!matches!(run(&instance, c), Reply::Error(_)), "{c:?}");
    }
    instance.stop().await;
}

fn incr_path(dir: &Path) -> PathBuf {
    aof_dir(dir).join("appendonly.aof.1.incr.aof")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_last_command_is_cut_off_and_reported() {
    let dir = temp_dir("truncated");
    write_aof(&dir, &[&["SET", "a", "1"], &["RPUSH", "l", "x", "y"]]).await;
    let incr = incr_path(&dir);
    let whole = std::fs::read(&incr).expect("incr");
    let mut cut = whole.clone();
    // A transaction whose EXEC never made it, then half a command.
    cut.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$2\r\ntx\r\n$1\r\n1\r\n");
    cut.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\nhel");
    std::fs::write(&incr, &cut).expect("write");

    let instance = Instance::start(aof_config(&dir)).await.expect("start");
    let report = instance
        .wait_loaded()
        .await
        .expect("loads")
        .expect("a restore happened");
    assert_eq!(report.format, "AOF");
    let truncated = report.truncated.expect("the repair is reported");
    assert!(
        truncated.contains("appendonly.aof.1.incr.aof"),
        "{truncated}"
    );
    assert_eq!(
        std::fs::read(&incr).expect("incr"),
        whole,
        "cut back to the last whole command before the open transaction"
    );
    assert_eq!(run(&instance, &["GET", "a"]), Reply::bulk("1"));
    assert_eq!(run(&instance, &["LLEN", "l"]), Reply::Int(2));
    assert_eq!(run(&instance, &["EXISTS", "tx", "b"]), Reply::Int(0));
    let restored = instance
        .events_since(0)
        .into_iter()
        .find(|e| e.kind == EventKind::Restored)
        .expect("restore event");
    assert!(
        restored.detail.contains("truncated tail repaired"),
        "{}",
        restored.detail
    );
    // The repaired AOF takes new writes and loads again.
    assert_eq!(run(&instance, &["SET", "c", "3"]), Reply::OK);
    instance.stop().await;
    let again = Instance::start(aof_config(&dir)).await.expect("start");
    let report = again.wait_loaded().await.expect("loads").expect("restored");
    assert!(report.truncated.is_none());
    assert_eq!(
        run(&again, &["MGET", "a", "c"]),
        Reply::Array(vec![Reply::bulk("1"), Reply::bulk("3")])
    );
    again.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_stops_the_start_and_leaves_every_file_untouched() {
    let dir = temp_dir("corrupt");
    write_aof(
        &dir,
        &[&["SET", "a", "1"], &["SET", "b", "2"], &["SET", "c", "3"]],
    )
    .await;
    let incr = incr_path(&dir);
    let good = std::fs::read(&incr).expect("incr");
    let at = good
        .windows(5)
        .position(|w| w == b"\r\nb\r\n")
        .expect("key b");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown command", {
            let mut bad = good.clone();
            let set = good[..at]
                .windows(3)
                .rposition(|w| w == b"SET")
                .expect("SET");
            bad[set..set + 3].copy_from_slice(b"XYZ");
            bad
        }),
        ("expected '$'", {
            let mut bad = good.clone();
            bad[at - 2] = b'#';
            bad
        }),
        ("not a command an AOF holds", {
            let mut bad = good.clone();
            bad.extend_from_slice(b"*1\r\n$8\r\nSHUTDOWN\r\n*1\r\n$4\r\nPING\r\n");
            bad
        }),
    ];
    for (needle, bytes) in cases {
        std::fs::write(&incr, &bytes).expect("write");
        let before = snapshot_files(&dir);
        let instance = Instance::start(aof_config(&dir)).await.expect("start");
        let err = instance.wait_loaded().await.expect_err("the load fails");
        assert!(
            err.contains(needle) && err.contains("offset"),
            "{needle}: {err}"
        );
        let failed = instance
            .events_since(0)
            .into_iter()
            .find(|e| e.kind == EventKind::RestoreFailed)
            .expect("failure event");
        assert!(
            failed.detail.contains("left untouched"),
            "{}",
            failed.detail
        );
        let mut stopped = instance.shutdown_signal();
        tokio::time::timeout(Duration::from_secs(5), stopped.wait_for(|s| *s))
            .await
            .expect("the instance stops")
            .expect("signal");
        instance.stop().await;
        assert_eq!(snapshot_files(&dir), before, "{needle}: files untouched");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_manifests_give_clear_errors() {
    let dir = temp_dir("manifest");
    write_aof(&dir, &[&["SET", "a", "1"]]).await;
    let manifest = aof_dir(&dir).join("appendonly.aof.manifest");
    let good = std::fs::read_to_string(&manifest).expect("manifest");
    // A second incr whose first file is cut short: only the last file may be.
    std::fs::write(
        aof_dir(&dir).join("appendonly.aof.2.incr.aof"),
        b"*1\r\n$4\r\nPI",
    )
    .expect("w");
    std::fs::write(aof_dir(&dir).join("appendonly.aof.3.incr.aof"), b"").expect("w");
    for (text, needle) in [
        (
            format!("{good}file appendonly.aof.9.incr.aof seq 9 type i\n"),
            "cannot be read",
        ),
        (
            format!("{good}file appendonly.aof.2.incr.aof seq 1 type i\n"),
            "does not follow",
        ),
        (
            "file ../../etc/passwd seq 1 type b\n".to_string(),
            "not a plain file name",
        ),
        (
            format!("{good}file appendonly.aof.1.incr.aof seq 5 type i\n"),
            "twice",
        ),
        (
            format!("{good}file appendonly.aof.2.incr.aof seq 2 type i\nfile appendonly.aof.3.incr.aof seq 3 type i\n"),
            "middle of a command",
        ),
    ] {
        std::fs::write(&manifest, &text).expect("manifest");
        let before = snapshot_files(&dir);
        let instance = Instance::start(aof_config(&dir)).await.expect("start");
        let err = instance.wait_loaded().await.expect_err("the start fails");
        assert!(err.contains(needle), "{needle}: {err}");
        instance.stop().await;
        assert_eq!(snapshot_files(&dir), before, "{needle}: files untouched");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_rewrites_fire_at_the_threshold_and_report_progress() {
    let dir = temp_dir("auto");
    let config = InstanceConfig {
        auto_aof_rewrite_min_size: 200 * 1024,
        auto_aof_rewrite_percentage: 100,
        ..aof_config(&dir)
    };
    let instance = Instance::start(config).await.expect("start");
    instance.wait_loaded().await.expect("loads");
    wait_until("the first base", || {
        instance.aof_figures().is_some_and(|f| f.has_base)
    })
    .await;
    let telemetry = instance.telemetry_now();
    assert_eq!(telemetry.aof.rewrite_threshold, Some(200 * 1024 + 1));
    let value = "v".repeat(100);
    for i in 0..3000 {
        run(&instance, &["SET", &format!("k{}", i % 100), &value]);
    }
    wait_until("an automatic rewrite", || {
        instance
            .persistence_status()
            .aof
            .history
            .iter()
            .any(|r| r.reason == RewriteReason::Automatic && r.error.is_none())
    })
    .await;
    let st = instance.persistence_status();
    let auto = st
        .aof
        .history
        .iter()
        .find(|r| r.reason == RewriteReason::Automatic)
        .expect("automatic");
    assert_eq!(auto.keys, 100, "the base holds the live keys");
    assert!(auto.size_after < auto.size_before / 5, "{auto:?}");
    let figures = instance.aof_figures().expect("AOF on");
    assert!(figures.current_size < 200 * 1024, "{figures:?}");
    assert!(instance
        .events_since(0)
        .iter()
        .any(|e| e.kind == EventKind::RewriteFinished && e.detail.contains("100 keys")));
    instance.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_rewrites_are_reported_and_back_off() {
    let dir = temp_dir("rewrite-fail");
    let instance = Instance::start(aof_config(&dir)).await.expect("start");
    instance.wait_loaded().await.expect("loads");
    wait_until("the first base", || {
        instance.aof_figures().is_some_and(|f| f.has_base)
    })
    .await;
    run(&instance, &["SET", "a", "1"]);
    // The next base's name is taken by a directory: renaming the new base over it fails.
    let blocker = aof_dir(&dir).join("appendonly.aof.2.base.rdb");
    std::fs::create_dir_all(blocker.join("x")).expect("mkdir");
    for attempt in 1..=3u32 {
        assert_eq!(
            run(&instance, &["BGREWRITEAOF"]),
            Reply::Status("Background append only file rewriting started")
        );
        wait_until("the rewrite to fail", || {
            instance.persistence_status().aof.failures_in_a_row == attempt
        })
        .await;
    }
    assert_eq!(info(&instance, "aof_last_bgrewrite_status"), "err");
    assert_eq!(info(&instance, "aof_rewrites_consecutive_failures"), "3");
    let st = instance.persistence_status();
    let wait = st.aof.next_auto_attempt.expect("backing off") - Instant::now();
    assert!(
        wait > Duration::from_secs(50),
        "automatic rewrites wait a minute: {wait:?}"
    );
    let failed = instance
        .events_since(0)
        .into_iter()
        .filter(|e| e.kind == EventKind::RewriteFailed)
        .count();
    assert_eq!(failed, 3);
    // Nothing was lost meanwhile, and the next rewrite works once the way is clear.
    std::fs::remove_dir_all(&blocker).expect("rmdir");
    run(&instance, &["SET", "b", "2"]);
    run(&instance, &["BGREWRITEAOF"]);
    wait_until("a good rewrite", || {
        instance.persistence_status().aof.failures_in_a_row == 0
    })
    .await;
    assert_eq!(info(&instance, "aof_last_bgrewrite_status"), "ok");
    instance.stop().await;
    let again = Instance::start(aof_config(&dir)).await.expect("start");
    again.wait_loaded().await.expect("loads");
    assert_eq!(
        run(&again, &["MGET", "a", "b"]),
        Reply::Array(vec![Reply::bulk("1"), Reply::bulk("2")])
    );
    again.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_modes_switch_on_a_running_instance_without_losing_data() {
    let dir = temp_dir("modes");
    let config = InstanceConfig {
        dir: dir.clone(),
        ..InstanceConfig::default()
    };
    let instance = Instance::start(config.clone()).await.expect("start");
    let dump = dir.join("dump.rdb");
    let manifest = aof_dir(&dir).join("appendonly.aof.manifest");
    let mut n = 0;
    let mut write = |instance: &Instance| {
        for _ in 0..100 {
            run(instance, &["SET", &format!("k{n}"), &n.to_string()]);
            n += 1;
        }
    };
    write(&instance);

    let hourly = PersistenceMode::Rdb(RdbSchedule::every(Duration::from_secs(3600)));
    instance
        .set_persistence(hourly.clone())
        .await
        .expect("to RDB");
    assert_eq!(instance.config().persistence, hourly);
    assert!(
        !dump.exists() && !manifest.exists(),
        "no file until the first save"
    );
    write(&instance);

    instance
        .set_persistence(PersistenceMode::Aof)
        .await
        .expect("to AOF");
    assert!(manifest.exists(), "the first rewrite wrote a base");
    assert_eq!(info(&instance, "aof_enabled"), "1");
    assert_eq!(
        run(&instance, &["CONFIG", "GET", "save"]),
        Reply::Map(vec![(Reply::bulk("save"), Reply::bulk(""))]),
        "RDB and AOF are never on together"
    );
    assert!(matches!(
        run(&instance, &["CONFIG", "SET", "save", "60 1"]),
        Reply::Error(e) if e.contains("can't both be on")
    ));
    write(&instance);
    // A restart now comes back from the AOF alone.
    instance.stop().await;
    let instance = Instance::start(InstanceConfig {
        persistence: PersistenceMode::Aof,
        ..config.clone()
    })
    .await
    .expect("start");
    let report = instance
        .wait_loaded()
        .await
        .expect("loads")
        .expect("restored");
    assert_eq!((report.format, report.keys_loaded), ("AOF", 300));

    let six_hours = PersistenceMode::Rdb(RdbSchedule::every(Duration::from_secs(6 * 3600)));
    instance
        .set_persistence(six_hours.clone())
        .await
        .expect("to RDB");
    assert!(dump.exists(), "a snapshot replaced the AOF");
    assert!(!aof_dir(&dir).exists(), "the AOF files are gone");
    assert_eq!(info(&instance, "aof_enabled"), "0");
    assert_eq!(info(&instance, "rdb_last_bgsave_status"), "ok");
    write(&instance);
    let twelve_hours = PersistenceMode::Rdb(RdbSchedule::every(Duration::from_secs(12 * 3600)));
    instance
        .set_persistence(twelve_hours.clone())
        .await
        .expect("frequency");
    assert_eq!(
        run(&instance, &["CONFIG", "GET", "rdb-frequency"]),
        Reply::Map(vec![(Reply::bulk("rdb-frequency"), Reply::bulk("43200"))])
    );

    instance
        .set_persistence(PersistenceMode::Disabled)
        .await
        .expect("off");
    assert!(!dump.exists(), "the dump is gone once persistence is off");
    assert_eq!(
        run(&instance, &["DBSIZE"]),
        Reply::Int(400),
        "the data stays in memory"
    );

    // CONFIG SET appendonly behaves as in Redis: on starts the AOF with a rewrite, off stops it
    // and leaves the files.
    assert_eq!(
        run(&instance, &["CONFIG", "SET", "appendonly", "yes"]),
        Reply::OK
    );
    assert_eq!(info(&instance, "aof_enabled"), "1");
    wait_until("the first base", || {
        instance.aof_figures().is_some_and(|f| f.has_base)
    })
    .await;
    assert_eq!(
        run(&instance, &["CONFIG", "SET", "appendonly", "no"]),
        Reply::OK
    );
    assert_eq!(info(&instance, "aof_enabled"), "0");
    assert!(manifest.exists());
    assert!(instance
        .events_since(0)
        .iter()
        .any(|e| e.kind == EventKind::PersistenceChanged && e.detail.contains("AOF -> RDB")));
    instance.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_key_pops_replay_as_the_pops_they_made() {
    let dir = temp_dir("mpop");
    write_aof(
        &dir,
        &[
            &["RPUSH", "l1", "a", "b", "c"],
            &["RPUSH", "l2", "x"],
            &["LMPOP", "2", "empty", "l1", "LEFT", "COUNT", "2"],
            &["BLMPOP", "0", "2", "l1", "l2", "RIGHT"],
            &["ZADD", "z", "1", "m1", "2", "m2", "3", "m3"],
            &["ZMPOP", "1", "z", "MAX", "COUNT", "2"],
            &["ZADD", "z2", "5", "p", "6", "q"],
            &["BZPOPMIN", "z2", "0"],
            &["BZMPOP", "0", "1", "z2", "MAX"],
        ],
    )
    .await;
    let log = String::from_utf8_lossy(&std::fs::read(incr_path(&dir)).expect("incr")).into_owned();
    for blocking in ["BLMPOP", "BZPOPMIN", "BZMPOP"] {
        assert!(!log.contains(blocking), "{blocking} was logged as such");
    }
    let instance = Instance::start(aof_config(&dir)).await.expect("start");
    instance.wait_loaded().await.expect("loads");
    assert_eq!(run(&instance, &["EXISTS", "l1"]), Reply::Int(0));
    assert_eq!(
        run(&instance, &["LRANGE", "l2", "0", "-1"]),
        Reply::Array(vec![Reply::bulk("x")])
    );
    assert_eq!(
        run(&instance, &["ZRANGE", "z", "0", "-1"]),
        Reply::Array(vec![Reply::bulk("m1")])
    );
    assert_eq!(run(&instance, &["EXISTS", "z2"]), Reply::Int(0));
    instance.stop().await;
}
