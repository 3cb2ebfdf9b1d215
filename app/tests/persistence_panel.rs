//! The Data persistence panel on a running cache, driven by label: every transition
//! (Disabled → RDB → AOF → RDB → Disabled, and a frequency change), each checked in the
//! engine (files on disk, INFO persistence); Back up now, Rewrite now and Reboot, with the
//! live views and the restore table following.

mod common;

use std::path::Path;

use bytes::Bytes;
use cachedesk::caches::Status;
use cachedesk::CacheDeskApp;
use cachedesk_engine::{Instance, Reply};
use common::{click, set_field, wait_until};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

fn run(instance: &Instance, args: &[&str]) -> Reply {
    let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
    instance.execute(0, &args)
}

fn info(instance: &Instance, field: &str) -> String {
    let Reply::Verbatim(text) = run(instance, &["INFO", "persistence"]) else {
        panic!("INFO gives text")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
}

fn instance(h: &Harness<'_, CacheDeskApp>) -> std::sync::Arc<Instance> {
    h.state().caches.list[0].instance.clone().expect("running")
}

/// Chooses `option` in the panel, checks what it says will happen, saves, and waits until
/// the cache is Running again.
fn switch_to(h: &mut Harness<'_, CacheDeskApp>, option: &str, says: &str) {
    click(h, option);
    h.get_by_label_contains(says);
    click(h, "Save");
    wait_until(h, "the switch", |app| {
        app.caches.list[0].status == Status::Running
    });
}

fn aof_manifest(dir: &Path) -> bool {
    dir.join("caches/ledger/appendonlydir/appendonly.aof.manifest")
        .exists()
}

fn dump(dir: &Path) -> bool {
    dir.join("caches/ledger/dump.rdb").exists()
}

#[test]
fn every_transition_backups_rewrites_and_reboots_from_the_panel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut h = common::harness(
        Harness::builder().with_size([1200.0, 900.0]),
        dir.path(),
        &runtime,
    );
    h.run_steps(2);
    click(&mut h, "+ Create");
    set_field(&mut h, "Cache name", "ledger");
    click(&mut h, "Review + create");
    click(&mut h, "Create");
    wait_until(&mut h, "the cache to run", |app| {
        app.caches
            .list
            .first()
            .is_some_and(|c| c.status == Status::Running)
    });
    let cache = instance(&h);
    for i in 0..500 {
        run(&cache, &["SET", &format!("k{i}"), "v"]);
    }
    click(&mut h, "Advanced settings");
    h.get_by_label_contains("a failure or reboot loses all data");

    // Disabled → RDB every 6 hours (the frequency changed before saving).
    click(&mut h, "RDB (snapshots)");
    click(&mut h, "Backup Frequency");
    click(&mut h, "6 hours");
    switch_to(&mut h, "RDB (snapshots)", "Backups run every 6 hours");
    assert_eq!(
        run(&cache, &["CONFIG", "GET", "rdb-frequency"]),
        Reply::Map(vec![(Reply::bulk("rdb-frequency"), Reply::bulk("21600"))])
    );
    assert_eq!(info(&cache, "aof_enabled"), "0");
    // The live view follows the engine's telemetry (refreshed a few times a second).
    wait_until(&mut h, "the schedule", |_| {
        cache.telemetry().rdb.next_save_at.is_some()
    });
    h.get_by_label_contains("Snapshot timing");
    h.get_by_label_contains("in 5 h 59 min");
    h.get_by_label("500 (a failure now would lose them)");

    // Back up now: the dump appears and the live view shows it.
    click(&mut h, "Back up now");
    wait_until(&mut h, "the backup", |_| {
        cache.telemetry().rdb.last_save.is_some()
    });
    assert!(dump(dir.path()));
    h.get_by_label_contains("500 keys");
    assert_eq!(info(&cache, "rdb_last_bgsave_status"), "ok");

    // Frequency change alone: 6 hours → 12 hours.
    click(&mut h, "Backup Frequency");
    switch_to(&mut h, "12 hours", "Backups run every 12 hours");
    assert_eq!(
        run(&cache, &["CONFIG", "GET", "rdb-frequency"]),
        Reply::Map(vec![(Reply::bulk("rdb-frequency"), Reply::bulk("43200"))])
    );

    // RDB → AOF: a rewrite writes the base, then the dump goes. Traffic goes on meanwhile:
    // a client writes throughout the switch and every write is answered OK.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (cache, stop) = (cache.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut written = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(
                    run(&cache, &["SET", "during-switch", &written.to_string()]),
                    Reply::OK
                );
                written += 1;
            }
            written
        })
    };
    // RDB → AOF: a rewrite writes the base, then the dump goes.
    switch_to(
        &mut h,
        "AOF (write every second)",
        "a rewrite creates the AOF's base",
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().expect("the writer saw every write answered");
    assert!(written > 0, "writes went on during the switch");
    assert_eq!(run(&cache, &["DEL", "during-switch"]), Reply::Int(1));
    assert!(aof_manifest(dir.path()) && !dump(dir.path()));
    assert_eq!(info(&cache, "aof_enabled"), "1");
    wait_until(&mut h, "the AOF figures", |_| {
        cache.telemetry().aof.figures.is_some()
    });
    h.get_by_label_contains("AOF size");
    h.get_by_label_contains("fsync health");

    // Rewrite now.
    let rewrites: u64 = info(&cache, "aof_rewrites").parse().expect("number");
    click(&mut h, "Rewrite now");
    wait_until(&mut h, "the rewrite", |_| {
        info(&cache, "aof_rewrites").parse::<u64>().expect("number") > rewrites
            && cache.telemetry().aof.last_rewrite.is_some()
            && cache.telemetry().aof.rewrite_progress.is_none()
    });
    h.get_by_label_contains("Last rewrite at");

    // Reboot under AOF: every write comes back, and the restore table lists it. (The test
    // lets go of the instance first: a stop waits until nobody holds it.)
    drop(cache);
    click(&mut h, "Reboot");
    wait_until(&mut h, "the reboot", |app| {
        app.caches.list[0].status == Status::Running && app.caches.list[0].restores.len() == 1
    });
    let cache = instance(&h);
    assert_eq!(run(&cache, &["DBSIZE"]), Reply::Int(500));
    click(&mut h, "Advanced settings");
    h.get_by_label("Restore events");
    h.get_by_label("AOF");

    // AOF → RDB: a snapshot, then the AOF files go.
    switch_to(&mut h, "RDB (snapshots)", "A snapshot is taken first");
    assert!(dump(dir.path()) && !aof_manifest(dir.path()));
    assert_eq!(info(&cache, "aof_enabled"), "0");

    // Reboot under RDB loses the changes since the last backup, and says how many.
    for i in 0..7 {
        run(&cache, &["SET", &format!("late{i}"), "v"]);
    }
    click(&mut h, "Overview");
    drop(cache);
    click(&mut h, "Reboot");
    wait_until(&mut h, "the reboot", |app| {
        app.caches.list[0].status == Status::Running && app.caches.list[0].restores.len() == 2
    });
    h.get_by_label_contains("7 changes since the last backup were lost");
    let cache = instance(&h);
    assert_eq!(run(&cache, &["DBSIZE"]), Reply::Int(500));

    // RDB → Disabled: the dump goes; a reboot now loses everything, and says so.
    click(&mut h, "Advanced settings");
    switch_to(&mut h, "Disabled", "the dump is removed");
    assert!(!dump(dir.path()) && !aof_manifest(dir.path()));
    drop(cache);
    click(&mut h, "Reboot");
    wait_until(&mut h, "the reboot", |app| {
        app.caches.list[0].status == Status::Running
            && app.caches.list[0]
                .reboot_loss
                .as_deref()
                .is_some_and(|l| l.contains("all 500 keys are gone"))
    });
    assert_eq!(run(&instance(&h), &["DBSIZE"]), Reply::Int(0));
    click(&mut h, "Activity log");
    assert!(h.get_all_by_label("Persistence changed").count() >= 5);
}
