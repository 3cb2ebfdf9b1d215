//! The app driven through its real UI by AccessKit label (egui_kittest): the whole wizard,
//! with invalid input on its tabs and the errors they show; a created cache that real
//! clients use over its port; the console; closing and reopening the app with the cache
//! coming back from its persistence; scaling down with evictions; a settings file naming a
//! cache outside the data folder; revealed access keys hidden again when another cache is
//! selected.

mod common;

use std::path::Path;

use cachedesk::caches::Status;
use cachedesk::CacheDeskApp;
use common::{click, set_field, wait_until};
use egui::accesskit::Role;
use egui::Key;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

fn harness(dir: &Path, runtime: &tokio::runtime::Runtime) -> Harness<'static, CacheDeskApp> {
    common::harness(Harness::builder().with_size([1200.0, 820.0]), dir, runtime)
}

fn status_of(app: &CacheDeskApp, name: &str) -> Option<Status> {
    let i = app.caches.find(name)?;
    Some(app.caches.list[i].status.clone())
}

fn running(name: &'static str) -> impl Fn(&CacheDeskApp) -> bool {
    move |app| status_of(app, name) == Some(Status::Running)
}

async fn client(port: u16, key: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://:{key}@127.0.0.1:{port}/"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects with the primary key")
}

#[test]
fn the_wizard_checks_every_tab_and_creates_a_cache_clients_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut h = harness(dir.path(), &runtime);
    h.run_steps(2);
    click(&mut h, "+ Create");

    // Invalid input on Basics, Networking and Tags, each marked on its tab.
    set_field(&mut h, "Cache name", "bad--name");
    click(&mut h, "Next");
    assert!(h.query_by_label("Basics (!)").is_some(), "Basics is marked");
    set_field(&mut h, "Port", "80");
    click(&mut h, "Next");
    assert!(h.query_by_label("Networking (!)").is_some());
    click(&mut h, "Networking (!)");
    h.get_by_label_contains("from 1024 to 65535");
    click(&mut h, "Advanced");
    click(&mut h, "RDB (snapshots)");
    h.get_by_label_contains("Backup Frequency");
    click(&mut h, "Tags");
    click(&mut h, "Add tag");
    set_field(&mut h, "Tag 1 value", "web");
    click(&mut h, "Review + create");
    h.get_by_label_contains("two hyphens in a row");
    h.get_by_label_contains("Tag 1 has a value but no name");
    click(&mut h, "Create");
    assert!(
        h.state().caches.list.is_empty(),
        "nothing is created while errors remain"
    );

    // Fix each tab.
    click(&mut h, "Basics (!)");
    set_field(&mut h, "Cache name", "orders-1");
    click(&mut h, "Networking (!)");
    let port = cachedesk::model::validation::free_port();
    set_field(&mut h, "Port", &port.to_string());
    click(&mut h, "Tags (!)");
    set_field(&mut h, "Tag 1 name", "team");
    click(&mut h, "Review + create");
    h.get_by_label("Validation passed.");
    h.get_by_label("RDB, backup every 60 Minutes");
    h.get_by_label("team=web");
    click(&mut h, "Create");
    wait_until(&mut h, "the cache to run", running("orders-1"));
    h.get_by_label_contains("127.0.0.1:");

    let settings = h.state().caches.list[0].settings.clone();
    assert_eq!(settings.port, port);
    assert_eq!(settings.tags.len(), 1);
    runtime.block_on(async {
        let mut c = client(port, &settings.primary_key).await;
        let _: () = redis::cmd("SET")
            .arg("greeting")
            .arg("hello")
            .query_async(&mut c)
            .await
            .expect("SET");
        let anonymous = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("url");
        let mut plain = anonymous
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let refused: redis::RedisResult<String> = redis::cmd("GET")
            .arg("greeting")
            .query_async(&mut plain)
            .await;
        assert!(refused.is_err(), "access keys are required");
    });
    // The screen shows the redis-cli line without the key.
    h.get_by_label_contains("-a <primary key>");
    assert!(h.query_by_label_contains(&settings.primary_key).is_none());

    // Access keys: revealed on demand; a regenerated primary key replaces the old one at once.
    click(&mut h, "Access keys");
    assert!(h.query_by_label_contains(&settings.primary_key).is_none());
    click(&mut h, "Show access keys");
    h.get_by_label(&settings.primary_key);
    click(&mut h, "Regenerate primary key");
    let new_key = h.state().caches.list[0].settings.primary_key.clone();
    assert_ne!(new_key, settings.primary_key);
    h.get_by_label(&new_key);
    runtime.block_on(async {
        let old = redis::Client::open(format!(
            "redis://:{}@127.0.0.1:{port}/",
            settings.primary_key
        ))
        .expect("url");
        assert!(
            old.get_multiplexed_async_connection().await.is_err(),
            "the old key is refused"
        );
        let mut c = client(port, &new_key).await;
        let _: () = redis::cmd("PING").query_async(&mut c).await.expect("PING");
        let mut c = client(port, &settings.secondary_key).await;
        let _: () = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .expect("the secondary key works");
    });

    // The console answers as redis-cli would, and keeps a history.
    click(&mut h, "Console");
    set_field(&mut h, "db0>", "GET greeting");
    h.key_press(Key::Enter);
    wait_until(&mut h, "the reply", |app| {
        app.console_transcript().iter().any(|l| l == "\"hello\"")
    });
    h.get_by_label("\"hello\"");
    set_field(&mut h, "db0>", "INCR greeting");
    h.key_press(Key::Enter);
    wait_until(&mut h, "the error", |app| {
        app.console_transcript()
            .iter()
            .any(|l| l.starts_with("(error) ERR value is not an integer"))
    });
    h.get_by_role_and_label(Role::TextInput, "db0>").focus();
    h.key_press(Key::ArrowUp);
    h.run_steps(2);
    assert_eq!(
        h.get_by_role_and_label(Role::TextInput, "db0>")
            .value()
            .as_deref(),
        Some("INCR greeting"),
        "up recalls the last command"
    );

    // A blocking read waits, and shows its reply once another client adds to the stream.
    set_field(&mut h, "db0>", "XREAD BLOCK 0 STREAMS events $");
    h.key_press(Key::Enter);
    wait_until(&mut h, "the console to wait", |app| app.console_waiting());
    h.get_by_label("Waiting for the reply…");
    runtime.block_on(async {
        let mut c = client(port, &new_key).await;
        let _: String = redis::cmd("XADD")
            .arg("events")
            .arg("*")
            .arg("kind")
            .arg("signup")
            .query_async(&mut c)
            .await
            .expect("XADD");
    });
    wait_until(&mut h, "the stream entry", |app| {
        app.console_transcript()
            .iter()
            .any(|l| l.contains("\"events\"") && l.contains("\"signup\""))
    });
    assert!(!h.state().console_waiting());
    // The Overview counts the keys by type, the stream among them.
    click(&mut h, "Overview");
    wait_until(&mut h, "the stream in the key counts", |app| {
        app.caches.list[0]
            .instance
            .as_ref()
            .is_some_and(|i| i.telemetry().keys_by_type == [1, 0, 0, 0, 0, 1])
    });
    h.get_by_label("1 string, 1 stream");
    click(&mut h, "Console");
    // A wait that nothing would end is cancelled as CLIENT UNBLOCK ends it.
    set_field(&mut h, "db0>", "BLPOP nothing 0");
    h.key_press(Key::Enter);
    wait_until(&mut h, "the console to wait", |app| app.console_waiting());
    click(&mut h, "Cancel the waiting command");
    wait_until(&mut h, "the cancelled wait", |app| {
        !app.console_waiting()
            && app.console_transcript().last().map(String::as_str) == Some("(nil)")
    });

    // SUBSCRIBE: messages show as they are published, until Stop.
    set_field(&mut h, "db0>", "SUBSCRIBE news");
    h.key_press(Key::Enter);
    wait_until(&mut h, "the console to read messages", |app| {
        app.console_reading_messages()
    });
    h.get_by_label("Reading messages…");
    runtime.block_on(async {
        let mut c = client(port, &new_key).await;
        let _: i64 = redis::cmd("PUBLISH")
            .arg("news")
            .arg("extra!")
            .query_async(&mut c)
            .await
            .expect("PUBLISH");
    });
    wait_until(&mut h, "the message in the transcript", |app| {
        app.console_transcript()
            .iter()
            .any(|l| l.contains("\"message\"") && l.contains("\"extra!\""))
    });
    click(&mut h, "Overview");
    wait_until(&mut h, "the subscription in the figures", |app| {
        app.caches.list[0]
            .instance
            .as_ref()
            .is_some_and(|i| i.telemetry().pubsub_subscribers == 1)
    });
    h.get_by_label("1 channel, 0 patterns, 1 subscriber");
    click(&mut h, "Console");
    click(&mut h, "Stop reading messages");
    wait_until(&mut h, "the console back to commands", |app| {
        !app.console_reading_messages()
    });
    set_field(&mut h, "db0>", "PUBSUB NUMSUB news");
    h.key_press(Key::Enter);
    wait_until(&mut h, "no subscriber left", |app| {
        app.console_transcript()
            .last()
            .is_some_and(|l| l.contains("(integer) 0"))
    });
}

#[test]
fn a_cache_comes_back_when_the_app_reopens_and_scaling_down_evicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut h = harness(dir.path(), &runtime);
    h.run_steps(2);
    click(&mut h, "+ Create");
    set_field(&mut h, "Cache name", "sessions");
    click(&mut h, "Cache size");
    click(&mut h, "B1 (1 GB)");
    click(&mut h, "Advanced");
    click(&mut h, "AOF (write every second)");
    click(&mut h, "Review + create");
    h.get_by_label("AOF, write every second");
    click(&mut h, "Create");
    wait_until(&mut h, "the cache to run", running("sessions"));
    let settings = h.state().caches.list[0].settings.clone();
    assert_eq!(settings.sku, "Balanced_B1");
    let value = "x".repeat(1000);
    runtime.block_on(async {
        let mut c = client(settings.port, &settings.primary_key).await;
        for i in 0..2000 {
            let _: () = redis::cmd("SET")
                .arg(format!("s:{i}"))
                .arg(&value)
                .query_async(&mut c)
                .await
                .expect("SET");
        }
    });

    // Closing the app stops its caches; reopening brings them back from their persistence.
    h.state_mut().caches.shutdown_all();
    drop(h);
    let mut h = harness(dir.path(), &runtime);
    wait_until(&mut h, "the cache to come back", running("sessions"));
    h.get_by_label_contains("Rehydrated from AOF");
    h.get_by_label_contains("2000 keys loaded");

    // Scale: 600 MB of data in B1 (819 MB for data), then down to B0 (410 MB): the page says
    // keys will be evicted before it applies, then the keys go and the log says how many.
    let instance = h.state().caches.list[0].instance.clone().expect("running");
    let populate: Vec<bytes::Bytes> = ["DEBUG", "POPULATE", "600", "big", "1000000"]
        .iter()
        .map(|a| bytes::Bytes::from(*a))
        .collect();
    assert_eq!(instance.execute(0, &populate), cachedesk_engine::Reply::OK);
    // The page reads the figures the instance refreshes a few times a second.
    wait_until(&mut h, "the figures to show the new data", |app| {
        app.caches.list[0]
            .instance
            .as_ref()
            .is_some_and(|i| i.telemetry().used_memory > 600_000_000)
    });
    click(&mut h, "Scale");
    click(&mut h, "New cache size");
    click(&mut h, "B0 (0.5 GB)");
    h.get_by_label_contains("keys will be evicted (allkeys-lru)");
    click(&mut h, "Apply scale");
    wait_until(&mut h, "the scale to finish", |app| {
        app.caches.list[0].last_scale.is_some()
    });
    assert_eq!(status_of(h.state(), "sessions"), Some(Status::Running));
    let keys = instance.telemetry_now().total_keys();
    assert!(
        keys < 2000 + 600 - 150,
        "{keys} keys left after scaling down"
    );
    h.get_by_label_contains("Last scale: B1 (1 GB) -> B0 (0.5 GB)");
    click(&mut h, "Activity log");
    h.get_by_label_contains("keys evicted (allkeys-lru) to fit");
    assert_eq!(h.state().caches.list[0].settings.sku, "Balanced_B0");
}

#[test]
fn a_cache_that_cannot_start_shows_create_failed_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The folder that should hold every cache's files is a file: the create must fail.
    std::fs::write(dir.path().join("caches"), b"not a folder").expect("write");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut h = harness(dir.path(), &runtime);
    h.run_steps(2);
    click(&mut h, "+ Create");
    set_field(&mut h, "Cache name", "doomed");
    click(&mut h, "Review + create");
    click(&mut h, "Create");
    wait_until(&mut h, "the create to fail", |app| {
        matches!(status_of(app, "doomed"), Some(Status::CreateFailed(_)))
    });
    assert!(!h
        .get_all_by_label("CreateFailed")
        .collect::<Vec<_>>()
        .is_empty());
    h.get_by_label_contains("cannot create");
    click(&mut h, "Activity log");
    h.get_by_label("Create failed");
}

/// The file choice a test makes instead of the desktop's dialog.
struct Chosen(std::path::PathBuf);

impl cachedesk::pages::import_export::FilePicker for Chosen {
    fn save_rdb(
        &self,
        _: &tokio::runtime::Handle,
        _: &str,
    ) -> poll_promise::Promise<Option<std::path::PathBuf>> {
        poll_promise::Promise::from_ready(Some(self.0.clone()))
    }

    fn open_rdb(
        &self,
        _: &tokio::runtime::Handle,
    ) -> poll_promise::Promise<Option<std::path::PathBuf>> {
        poll_promise::Promise::from_ready(Some(self.0.clone()))
    }
}

#[test]
fn export_then_import_through_the_page_with_the_file_choice_faked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("export.rdb");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let app = CacheDeskApp::with_file_picker(
        cachedesk::model::store::Paths::in_dir(dir.path()),
        runtime.handle().clone(),
        Box::new(Chosen(file.clone())),
    );
    let mut h = Harness::builder()
        .with_size([1200.0, 820.0])
        .build_ui_state(|ui, app: &mut CacheDeskApp| app.show(ui), app);
    h.run_steps(2);
    click(&mut h, "+ Create");
    set_field(&mut h, "Cache name", "carts");
    click(&mut h, "Review + create");
    click(&mut h, "Create");
    wait_until(&mut h, "the cache to run", running("carts"));
    let instance = h.state().caches.list[0].instance.clone().expect("running");
    let set = |key: &str, value: &str| {
        let args: Vec<bytes::Bytes> = ["SET", key, value]
            .iter()
            .map(|a| bytes::Bytes::from(a.to_string()))
            .collect();
        assert_eq!(instance.execute(0, &args), cachedesk_engine::Reply::OK);
    };
    set("cart:1", "apples");
    set("cart:2", "pears");

    click(&mut h, "Import/Export");
    click(&mut h, "Export to RDB file...");
    wait_until(&mut h, "the export", |app| {
        app.caches.list[0].last_transfer.is_some()
    });
    h.get_by_label_contains("exported 2 keys");
    assert!(file.exists());

    // Change the data, then import the export back: the change is undone.
    set("cart:1", "changed");
    set("cart:3", "new");
    click(&mut h, "Import RDB file...");
    h.get_by_label_contains("Replace all data of carts");
    click(&mut h, "Yes, import");
    wait_until(&mut h, "the import", |app| {
        app.caches.list[0]
            .last_transfer
            .as_deref()
            .is_some_and(|l| l.starts_with("imported"))
    });
    assert_eq!(status_of(h.state(), "carts"), Some(Status::Running));
    h.get_by_label_contains("imported 2 keys");
    let get = |key: &str| {
        instance.execute(
            0,
            &[
                bytes::Bytes::from("GET"),
                bytes::Bytes::from(key.to_string()),
            ],
        )
    };
    assert_eq!(get("cart:1"), cachedesk_engine::Reply::bulk("apples"));
    assert_eq!(get("cart:3"), cachedesk_engine::Reply::Null);

    // A file that is not an RDB fails to import and leaves the data as it was.
    std::fs::write(&file, b"not an rdb file").expect("write");
    click(&mut h, "Import RDB file...");
    click(&mut h, "Yes, import");
    wait_until(&mut h, "the failed import", |app| {
        app.caches.list[0]
            .last_transfer
            .as_deref()
            .is_some_and(|l| l.starts_with("import failed"))
    });
    h.get_by_label_contains("the data is as it was");
    assert_eq!(get("cart:2"), cachedesk_engine::Reply::bulk("pears"));
    click(&mut h, "Activity log");
    h.get_by_label("Imported");
    h.get_by_label("ImportFailed");
    h.get_by_label("Exported");
}

/// A file listing of everything under `dir`, with each file's content.
fn tree(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(tree(&path));
        } else {
            let content = std::fs::read(&path).expect("read");
            found.push((path, content));
        }
    }
    found.sort();
    found
}

#[test]
fn a_cache_named_outside_the_data_folder_is_skipped_and_never_used_as_a_path() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    // The bait: "../../outside" from the caches' folder (data/caches) is this folder.
    let bait = root.path().join("outside");
    std::fs::create_dir(&bait).expect("bait");
    std::fs::write(bait.join("precious.txt"), "keep me").expect("bait file");
    let before = tree(&bait);
    let cache = |name: &str, port: u16| {
        format!(
            r#"(name: "{name}", sku: "Balanced_B0", bind: "127.0.0.1", port: {port},
                access_keys: false, primary_key: "", secondary_key: "", eviction: NoEviction,
                persistence: Aof, tags: [], created: 0, running: true)"#
        )
    };
    let free = cachedesk::model::validation::free_port;
    std::fs::write(
        data.join("caches.ron"),
        format!(
            "(caches: [{}, {}])",
            cache("orders", free()),
            cache("../../outside", free())
        ),
    )
    .expect("settings");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut h = harness(&data, &runtime);
    wait_until(&mut h, "the good cache to run", running("orders"));
    let names: Vec<_> = h
        .state()
        .caches
        .list
        .iter()
        .map(|c| c.settings.name.clone())
        .collect();
    assert_eq!(names, ["orders"]);
    assert!(h.get_all_by_label("orders").next().is_some(), "listed");
    assert!(h.query_by_label("../../outside").is_none());
    h.get_by_label_contains(r#"Cache "../../outside" in "#);
    h.get_by_label_contains("was skipped");
    h.get_by_label_contains("a path separator");
    assert_eq!(tree(&bait), before, "the bait is untouched");
    // The settings were saved once the cache started: without the skipped cache, 0600.
    let saved = std::fs::read_to_string(data.join("caches.ron")).expect("settings");
    assert!(
        saved.contains("orders") && !saved.contains("outside"),
        "{saved}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(data.join("caches.ron")).expect("metadata");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    // A bad name that got in some other way: Delete refuses to compute its folder, and
    // removes nothing.
    h.state_mut().caches.list[0].settings.name = "../../outside".into();
    h.state_mut().caches.delete(0);
    wait_until(&mut h, "the delete to end", |app| {
        app.caches.list.first().is_none_or(|c| !c.busy())
    });
    assert!(bait.is_dir(), "the bait is still there");
    assert_eq!(tree(&bait), before, "the bait is untouched");
    let status = h.state().caches.list.first().map(|c| c.status.clone());
    assert!(
        matches!(&status, Some(Status::Failed(reason)) if reason.contains("cannot be a cache's folder")),
        "{status:?}"
    );
    assert!(data.join("caches").join("orders").is_dir());
}

#[test]
fn revealed_access_keys_are_hidden_again_when_another_cache_is_selected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = |name: &str| {
        format!(
            r#"(name: "{name}", access_keys: true, primary_key: "{name}-primary-key",
                secondary_key: "{name}-secondary-key", running: false)"#
        )
    };
    std::fs::write(
        dir.path().join("caches.ron"),
        format!("(caches: [{}, {}])", cache("alpha"), cache("beta")),
    )
    .expect("settings");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut h = harness(dir.path(), &runtime);
    h.run_steps(2);
    let hidden = "*".repeat(16);

    // alpha is selected first: its keys are hidden until shown.
    click(&mut h, "Access keys");
    assert_eq!(h.get_all_by_label(&hidden).count(), 2, "both keys hidden");
    click(&mut h, "Show access keys");
    h.get_by_label("alpha-primary-key");
    h.get_by_label("alpha-secondary-key");
    assert!(
        h.query_by_label(&hidden).is_none(),
        "no placeholder once shown"
    );

    // Another cache starts with its keys hidden, and so does alpha when it comes back.
    for name in ["beta", "alpha"] {
        click(&mut h, name);
        click(&mut h, "Access keys");
        assert_eq!(
            h.get_all_by_label(&hidden).count(),
            2,
            "{name}'s keys are hidden"
        );
        assert!(h.query_by_label_contains("-primary-key").is_none());
        assert!(h.query_by_label_contains("-secondary-key").is_none());
    }
}
