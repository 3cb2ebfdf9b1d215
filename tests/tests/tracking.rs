//! Client-side caching (CLIENT TRACKING) end to end: one multi-connection scenario run against
//! redis-server 7.0 and cachedesk-server, every reply and push compared in order (RESP3
//! invalidations after the writer's own reply, a RESP2 redirect to a `__redis__:invalidate`
//! subscriber, BCAST with NOLOOP, OPTIN, flushes, lazy expiry, script reads, a broken
//! redirect); the `redis` crate receiving invalidations as RESP3 pushes; and the
//! tracking-table-max-keys limit.

use std::time::Duration;

use cachedesk_engine::{Instance, InstanceConfig};
use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::servers::{require_redis_server, ServerProcess};

/// Reads one frame within 5 s, or says which step waited in vain.
async fn next(client: &mut RawClient, step: &str) -> Resp {
    match tokio::time::timeout(Duration::from_secs(5), client.read_reply()).await {
        Ok(Ok(frame)) => frame,
        Ok(Err(e)) => panic!("{step}: {e}"),
        Err(_) => panic!("{step}: no frame within 5 s"),
    }
}

/// The frames a scenario saw, in order, with client ids replaced by names (they differ
/// between servers).
#[derive(Default)]
struct Transcript {
    frames: Vec<String>,
    ids: Vec<(i64, &'static str)>,
}

impl Transcript {
    /// Sends `args` on `client` and records the `frames` that follow.
    async fn run(&mut self, client: &mut RawClient, args: &[&str], frames: usize) {
        client
            .send_raw(&RawClient::encode(args))
            .await
            .expect("send");
        self.read(client, &args.join(" "), frames).await;
    }

    /// Records `frames` more frames from `client` (pushes sent to it unasked).
    async fn read(&mut self, client: &mut RawClient, step: &str, frames: usize) {
        let step: Vec<&str> = step
            .split(' ')
            .map(|word| {
                self.ids
                    .iter()
                    .find(|(id, _)| id.to_string() == word)
                    .map_or(word, |(_, name)| name)
            })
            .collect();
        let step = step.join(" ");
        for _ in 0..frames {
            let frame = next(client, &step).await;
            let mut text = format!("{step} => {frame:?}");
            for (id, name) in &self.ids {
                text = text.replace(&format!("Int({id})"), &format!("Id({name})"));
            }
            self.frames.push(text);
        }
    }

    /// Learns `client`'s id under `name`.
    async fn id(&mut self, client: &mut RawClient, name: &'static str) -> String {
        match client.command(&["CLIENT", "ID"]).await.expect("CLIENT ID") {
            Resp::Int(id) => {
                self.ids.push((id, name));
                id.to_string()
            }
            other => panic!("CLIENT ID gave {other:?}"),
        }
    }
}

async fn connect(addr: std::net::SocketAddr) -> RawClient {
    RawClient::connect(addr).await.expect("connect")
}

/// Switches to RESP3 (HELLO's reply, which names the server, is not compared).
async fn hello3(client: &mut RawClient) {
    client.command(&["HELLO", "3"]).await.expect("HELLO 3");
}

async fn scenario(addr: std::net::SocketAddr) -> Vec<String> {
    let mut t = Transcript::default();
    let mut writer = connect(addr).await;
    writer.command(&["FLUSHALL"]).await.expect("FLUSHALL");
    let mut a = connect(addr).await;
    hello3(&mut a).await;
    t.run(&mut a, &["CLIENT", "TRACKING", "on"], 1).await;
    t.run(&mut a, &["GET", "k"], 1).await;
    t.run(&mut writer, &["SET", "k", "1"], 1).await;
    t.read(&mut a, "push after another client's SET", 1).await;
    // Its own write: the reply, then the invalidation.
    t.run(&mut a, &["GET", "k"], 1).await;
    t.run(&mut a, &["SET", "k", "2"], 2).await;
    // In a transaction: the invalidation follows EXEC's reply.
    t.run(&mut a, &["MULTI"], 1).await;
    t.run(&mut a, &["GET", "k"], 1).await;
    t.run(&mut a, &["SET", "k", "3"], 1).await;
    t.run(&mut a, &["EXEC"], 2).await;
    t.run(&mut writer, &["SET", "a", "x"], 1).await;
    t.run(&mut a, &["MGET", "k", "a", "b"], 1).await;
    t.run(&mut writer, &["DEL", "a", "b", "k"], 1).await;
    t.read(&mut a, "pushes after DEL", 2).await;
    // A write refused for the key's type changes nothing: no invalidation.
    t.run(&mut writer, &["SET", "w", "1"], 1).await;
    t.run(&mut a, &["GET", "w"], 1).await;
    t.run(&mut writer, &["HSET", "w", "f", "v"], 1).await;
    // (A push sent for the refused HSET would arrive here instead of GET's reply.)
    t.run(&mut a, &["GET", "w"], 1).await;
    t.run(&mut writer, &["APPEND", "w", "x"], 1).await;
    t.read(&mut a, "one push after the APPEND", 1).await;
    // Lazy expiry by another client's read.
    t.run(&mut writer, &["SET", "t", "1", "PX", "50"], 1).await;
    t.run(&mut a, &["GET", "t"], 1).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    t.run(&mut writer, &["GET", "t"], 1).await;
    t.read(&mut a, "push after expiry", 1).await;
    // A script's reads track the keys it declared.
    let script = "return redis.call('get', KEYS[1])";
    t.run(&mut a, &["EVAL", script, "1", "s1"], 1).await;
    t.run(&mut writer, &["SET", "s1", "v"], 1).await;
    t.read(&mut a, "push after a script's key changed", 1).await;
    t.run(&mut a, &["FLUSHALL"], 2).await;
    t.run(&mut a, &["CLIENT", "TRACKINGINFO"], 1).await;

    // RESP2: invalidations redirected to a subscriber of __redis__:invalidate.
    let mut sub = connect(addr).await;
    let sub_id = t.id(&mut sub, "subscriber").await;
    t.run(&mut sub, &["SUBSCRIBE", "__redis__:invalidate"], 1)
        .await;
    let mut d = connect(addr).await;
    t.run(
        &mut d,
        &["CLIENT", "TRACKING", "on", "REDIRECT", &sub_id],
        1,
    )
    .await;
    t.run(&mut d, &["GET", "x"], 1).await;
    t.run(&mut writer, &["SET", "x", "1"], 1).await;
    t.read(&mut sub, "redirected message", 1).await;
    t.run(&mut d, &["CLIENT", "GETREDIR"], 1).await;
    t.run(&mut writer, &["FLUSHDB"], 1).await;
    t.read(&mut sub, "redirected flush", 1).await;
    t.read(&mut a, "flush push to the RESP3 tracker", 1).await;

    // BCAST with NOLOOP: only the others' changes under the prefix.
    let mut e = connect(addr).await;
    hello3(&mut e).await;
    let bcast = [
        "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "u:", "NOLOOP",
    ];
    t.run(&mut e, &bcast, 1).await;
    t.run(&mut e, &["SET", "u:1", "a"], 1).await;
    t.run(
        &mut writer,
        &["MSET", "u:2", "b", "v:1", "c", "u:3", "d"],
        1,
    )
    .await;
    t.read(&mut e, "BCAST push", 1).await;
    t.run(&mut e, &["CLIENT", "TRACKINGINFO"], 1).await;

    // OPTIN: only the read after CLIENT CACHING YES is tracked.
    let mut j = connect(addr).await;
    hello3(&mut j).await;
    t.run(&mut j, &["CLIENT", "TRACKING", "on", "OPTIN"], 1)
        .await;
    t.run(&mut j, &["GET", "o1"], 1).await;
    t.run(&mut j, &["CLIENT", "CACHING", "yes"], 1).await;
    t.run(&mut j, &["GET", "o2"], 1).await;
    t.run(&mut writer, &["MSET", "o1", "1", "o2", "2"], 1).await;
    t.read(&mut j, "OPTIN push", 1).await;
    t.run(&mut j, &["PING"], 1).await;

    // The redirect target goes away: a RESP3 tracker is told, and TRACKINGINFO says so.
    let mut g = connect(addr).await;
    let mut h = connect(addr).await;
    let h_id = t.id(&mut h, "gone").await;
    hello3(&mut g).await;
    t.run(&mut g, &["CLIENT", "TRACKING", "on", "REDIRECT", &h_id], 1)
        .await;
    t.run(&mut g, &["GET", "y"], 1).await;
    drop(h);
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.run(&mut writer, &["SET", "y", "1"], 1).await;
    t.read(&mut g, "broken redirect push", 1).await;
    t.run(&mut g, &["CLIENT", "TRACKINGINFO"], 1).await;
    t.frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_scenario_matches_redis() {
    if !require_redis_server("tracking_scenario_matches_redis") {
        return;
    }
    let redis = ServerProcess::redis(&[]);
    let ours = ServerProcess::cachedesk(&[]);
    let expected = scenario(redis.addr).await;
    let got = scenario(ours.addr).await;
    for (i, (want, have)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(have, want, "frame {i} differs");
    }
    assert_eq!(got.len(), expected.len());
    // What the scenario proves, counted (a server that sent nothing would fail): ten
    // invalidations to the first tracker, one each to the BCAST, OPTIN and broken-redirect
    // ones, and two messages to the RESP2 subscriber.
    let pushes = got.iter().filter(|f| f.contains("=> Push(")).count();
    assert_eq!(pushes, 13, "{got:#?}");
    let redirected = got.iter().filter(|f| f.starts_with("redirected")).count();
    assert_eq!(redirected, 2);
}

/// The `redis` crate in RESP3 gets an invalidation push when a key it read changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_receives_invalidation_pushes() {
    let instance = Instance::start(InstanceConfig::default())
        .await
        .expect("instance starts");
    let url = format!("redis://{}/?protocol=resp3", instance.addr());
    let client = redis::Client::open(url).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .query_async(&mut con)
        .await
        .unwrap();
    let cached: Option<String> = redis::cmd("GET")
        .arg("user:1")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(cached, None);
    let mut other = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("user:1")
        .arg("ada")
        .query_async(&mut other)
        .await
        .unwrap();
    let push = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a push within 5 s")
        .expect("the sender lives");
    assert_eq!(push.kind, redis::PushKind::Invalidate);
    assert_eq!(
        push.data,
        vec![redis::Value::Array(vec![redis::Value::BulkString(
            b"user:1".to_vec()
        )])]
    );
}

/// Past tracking-table-max-keys, keys are dropped from the table and their readers told,
/// before the reply of the command that found the table too big.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_limit_invalidates_dropped_keys_before_the_reply() {
    let instance = Instance::start(InstanceConfig::default())
        .await
        .expect("instance starts");
    let mut c = connect(instance.addr()).await;
    c.command(&["HELLO", "3"]).await.expect("HELLO");
    let set = c
        .command(&["CONFIG", "SET", "tracking-table-max-keys", "5"])
        .await
        .expect("CONFIG SET");
    assert_eq!(set, Resp::Simple("OK".into()));
    c.command(&["CLIENT", "TRACKING", "on"]).await.expect("on");
    let keys: Vec<String> = (0..20).map(|i| format!("key{i}")).collect();
    let mut mget = vec!["MGET".to_string()];
    mget.extend(keys.iter().cloned());
    c.command(&mget).await.expect("MGET");
    c.send_raw(&RawClient::encode(&["PING"])).await.unwrap();
    let mut dropped = Vec::new();
    loop {
        match next(&mut c, "PING after the table grew").await {
            Resp::Push(items) => match &items[..] {
                [Resp::Bulk(kind), Resp::Array(keys)] if kind == b"invalidate" => {
                    dropped.extend(keys.iter().cloned())
                }
                other => panic!("unexpected push {other:?}"),
            },
            Resp::Simple(pong) => {
                assert_eq!(pong, "PONG");
                break;
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(dropped.len(), 15, "20 keys tracked, 5 kept");
    let info = c.command(&["INFO", "stats"]).await.expect("INFO");
    let Resp::Verbatim(_, text) = info else {
        panic!("INFO gave {info:?}")
    };
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("tracking_total_keys:5"), "{text}");
}

/// An import replaces the data set: a tracking client is told every key is stale, and a
/// transaction WATCHing a key the import replaced is aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_invalidates_everything_and_aborts_watchers() {
    let source = Instance::start(InstanceConfig::default())
        .await
        .expect("source starts");
    source.execute(0, &["SET", "k", "imported"]);
    let dump = cachedesk_tests::in_process::temp_dir("tracking-import").join("dump.rdb");
    source.export_rdb(dump.clone()).await.expect("export");
    let instance = Instance::start(InstanceConfig::default())
        .await
        .expect("instance starts");
    instance.execute(0, &["SET", "k", "old"]);
    let mut tracker = connect(instance.addr()).await;
    hello3(&mut tracker).await;
    tracker
        .command(&["CLIENT", "TRACKING", "on"])
        .await
        .unwrap();
    tracker.command(&["GET", "k"]).await.unwrap();
    let mut watcher = connect(instance.addr()).await;
    watcher.command(&["WATCH", "k"]).await.unwrap();
    instance.import_rdb(dump).await.expect("import");
    let push = next(&mut tracker, "push after the import").await;
    assert_eq!(
        push,
        Resp::Push(vec![Resp::Bulk(b"invalidate".to_vec()), Resp::Null])
    );
    watcher.command(&["MULTI"]).await.unwrap();
    watcher.command(&["SET", "k", "mine"]).await.unwrap();
    let exec = watcher.command(&["EXEC"]).await.unwrap();
    assert_eq!(exec, Resp::NullArray, "the WATCHed key changed under it");
    let value = tracker.command(&["GET", "k"]).await.unwrap();
    assert_eq!(value, Resp::Bulk(b"imported".to_vec()));
}
