//! Pub/Sub and MONITOR end to end: the `redis` crate in RESP2 and RESP3, redis-cli's
//! subscribe mode, RESP2 subscriber mode, CLIENT REPLY, many subscribers receiving every
//! message in order, a slow subscriber cut at its output limit while the others go on, and
//! MONITOR's lines.

use std::time::Duration;

use cachedesk_engine::{Instance, InstanceConfig};
use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::servers::{require_redis_server, ServerProcess};
use futures_util::StreamExt;

async fn start() -> Instance {
    Instance::start(InstanceConfig::default())
        .await
        .expect("instance starts")
}

fn bulk(text: &str) -> Resp {
    Resp::Bulk(text.as_bytes().to_vec())
}

/// Reads one reply within 30 s (a test fails rather than hangs; the other tests of this file
/// share the machine meanwhile).
async fn next(client: &mut RawClient) -> Resp {
    tokio::time::timeout(Duration::from_secs(30), client.read_reply())
        .await
        .expect("a reply within 30 s")
        .expect("a reply")
}

/// A message frame as a RESP2 subscriber gets it.
fn message(channel: &str, payload: &str) -> Resp {
    Resp::Array(vec![bulk("message"), bulk(channel), bulk(payload)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_subscribes_to_channels_and_patterns() {
    let instance = start().await;
    let client = redis::Client::open(format!("redis://{}/", instance.addr())).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("news").await.unwrap();
    pubsub.psubscribe("n*").await.unwrap();
    let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(receivers, 2, "the channel and the pattern subscription");
    let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .arg("other")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(
        numsub,
        vec![
            redis::Value::BulkString(b"news".to_vec()),
            redis::Value::Int(1),
            redis::Value::BulkString(b"other".to_vec()),
            redis::Value::Int(0),
        ]
    );
    let mut stream = pubsub.on_message();
    let mut got = Vec::new();
    for _ in 0..2 {
        let msg = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a message within 5 s")
            .expect("the stream goes on");
        let pattern: Option<String> = msg.get_pattern().ok();
        got.push((
            msg.get_channel_name().to_string(),
            msg.get_payload::<String>().unwrap(),
            pattern,
        ));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("news".into(), "hello".into(), None),
            ("news".into(), "hello".into(), Some("n*".into())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_pushes_interleave_with_replies() {
    let instance = start().await;
    let client =
        redis::Client::open(format!("redis://{}/?protocol=resp3", instance.addr())).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    con.subscribe("events").await.unwrap();
    // RESP3 has no subscriber mode: ordinary commands go on working.
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    let mut other = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("events")
        .arg("e1")
        .query_async(&mut other)
        .await
        .unwrap();
    let value: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, "v");
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let push = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a push within 5 s")
            .expect("the sender lives");
        kinds.push((push.kind.clone(), push.data));
    }
    assert_eq!(kinds[0].0, redis::PushKind::Subscribe);
    assert_eq!(kinds[1].0, redis::PushKind::Message);
    assert_eq!(
        kinds[1].1,
        vec![
            redis::Value::BulkString(b"events".to_vec()),
            redis::Value::BulkString(b"e1".to_vec()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp2_subscriber_mode_allows_only_the_subscriber_commands() {
    let instance = start().await;
    let mut sub = RawClient::connect(instance.addr()).await.unwrap();
    sub.send_raw(&RawClient::encode(&["SUBSCRIBE", "a", "b", "a"]))
        .await
        .unwrap();
    for (channel, count) in [("a", 1), ("b", 2), ("a", 2)] {
        assert_eq!(
            next(&mut sub).await,
            Resp::Array(vec![bulk("subscribe"), bulk(channel), Resp::Int(count)])
        );
    }
    assert_eq!(
        sub.command(&["GET", "x"]).await.unwrap(),
        Resp::Error("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context".into())
    );
    assert_eq!(
        sub.command(&["CONFIG", "GET", "maxmemory"]).await.unwrap(),
        Resp::Error("ERR Can't execute 'config|get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context".into())
    );
    assert_eq!(
        sub.command(&["PING"]).await.unwrap(),
        Resp::Array(vec![bulk("pong"), bulk("")])
    );
    // Unsubscribing from everything confirms each channel, then leaves subscriber mode.
    sub.send_raw(&RawClient::encode(&["UNSUBSCRIBE"]))
        .await
        .unwrap();
    let mut left = vec![next(&mut sub).await, next(&mut sub).await];
    left.sort();
    assert_eq!(
        left,
        vec![
            Resp::Array(vec![bulk("unsubscribe"), bulk("a"), Resp::Int(1)]),
            Resp::Array(vec![bulk("unsubscribe"), bulk("b"), Resp::Int(0)]),
        ]
    );
    assert_eq!(
        sub.command(&["PING"]).await.unwrap(),
        Resp::Simple("PONG".into())
    );
    // RESET leaves subscriptions behind too.
    sub.send_raw(&RawClient::encode(&["PSUBSCRIBE", "p*"]))
        .await
        .unwrap();
    next(&mut sub).await;
    assert_eq!(
        sub.command(&["RESET"]).await.unwrap(),
        Resp::Simple("RESET".into())
    );
    let mut other = RawClient::connect(instance.addr()).await.unwrap();
    assert_eq!(
        other.command(&["PUBSUB", "NUMPAT"]).await.unwrap(),
        Resp::Int(0)
    );
    assert_eq!(
        other.command(&["PUBLISH", "px", "m"]).await.unwrap(),
        Resp::Int(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resp3_client_gets_its_own_message_before_the_reply() {
    let instance = start().await;
    let mut c = RawClient::connect(instance.addr()).await.unwrap();
    c.command(&["HELLO", "3"]).await.unwrap();
    assert_eq!(
        c.command(&["SUBSCRIBE", "me"]).await.unwrap(),
        Resp::Push(vec![bulk("subscribe"), bulk("me"), Resp::Int(1)])
    );
    c.send_raw(&RawClient::encode(&["PUBLISH", "me", "hi"]))
        .await
        .unwrap();
    assert_eq!(
        next(&mut c).await,
        Resp::Push(vec![bulk("message"), bulk("me"), bulk("hi")])
    );
    assert_eq!(next(&mut c).await, Resp::Int(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reply_off_still_delivers_messages() {
    let instance = start().await;
    let mut c = RawClient::connect(instance.addr()).await.unwrap();
    c.send_raw(&RawClient::encode(&["CLIENT", "REPLY", "OFF"]))
        .await
        .unwrap();
    c.send_raw(&RawClient::encode(&["SET", "k", "v"]))
        .await
        .unwrap();
    c.send_raw(&RawClient::encode(&["SUBSCRIBE", "ch"]))
        .await
        .unwrap();
    // The confirmation is a push: it comes even with replies off, and the SET's +OK does not.
    assert_eq!(
        next(&mut c).await,
        Resp::Array(vec![bulk("subscribe"), bulk("ch"), Resp::Int(1)])
    );
    let mut publisher = RawClient::connect(instance.addr()).await.unwrap();
    publisher.command(&["PUBLISH", "ch", "m1"]).await.unwrap();
    assert_eq!(next(&mut c).await, message("ch", "m1"));
    // SKIP drops exactly the next reply.
    let mut d = RawClient::connect(instance.addr()).await.unwrap();
    d.send_raw(&RawClient::encode(&["CLIENT", "REPLY", "SKIP"]))
        .await
        .unwrap();
    d.send_raw(&RawClient::encode(&["ECHO", "dropped"]))
        .await
        .unwrap();
    assert_eq!(d.command(&["ECHO", "kept"]).await.unwrap(), bulk("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_subscribers_receive_every_message_in_order() {
    const CONNECTIONS: usize = 50;
    const CHANNELS_EACH: usize = 20;
    const MESSAGES: usize = 2_000;
    const PATTERNS: [&str; CHANNELS_EACH - 1] = [
        "bus", "bu*", "b*", "*", "*s", "*us", "?us", "b?s", "bu?", "??s", "?u?", "b??", "???",
        "*u*", "*b*", "b*s", "[b]us", "b[u]s", "bu[s]",
    ];
    let instance = start().await;
    // 50 connections with 20 subscriptions each (one channel, 19 patterns that match it):
    // 1,000 subscriptions, each receiving every message.
    let mut subscribers = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut c = RawClient::connect(instance.addr()).await.unwrap();
        let mut args = vec!["PSUBSCRIBE"];
        args.extend(PATTERNS);
        c.send_raw(&RawClient::encode(&args)).await.unwrap();
        for _ in 1..CHANNELS_EACH {
            next(&mut c).await;
        }
        c.command(&["SUBSCRIBE", "bus"]).await.unwrap();
        subscribers.push(c);
    }
    let _ = subscribers;
    let addr = instance.addr();
    let publisher = tokio::spawn(async move {
        let mut p = RawClient::connect(addr).await.unwrap();
        let mut pipeline = Vec::new();
        for i in 0..MESSAGES {
            pipeline.extend(RawClient::encode(&["PUBLISH", "bus", &i.to_string()]));
        }
        p.send_raw(&pipeline).await.unwrap();
        for _ in 0..MESSAGES {
            let reply = p.read_reply().await.unwrap();
            assert!(matches!(reply, Resp::Int(_)), "{reply}");
        }
    });
    let mut readers = Vec::new();
    for mut c in std::mem::take(&mut subscribers) {
        readers.push(tokio::spawn(async move {
            // Per subscription (the channel, or one pattern), the messages in order.
            let mut seen = std::collections::HashMap::<String, usize>::new();
            for _ in 0..MESSAGES * CHANNELS_EACH {
                let frame = tokio::time::timeout(Duration::from_secs(60), c.read_reply())
                    .await
                    .expect("messages keep coming")
                    .unwrap();
                let Resp::Array(parts) = frame else {
                    panic!("a message frame");
                };
                let (subscription, payload) = match parts.as_slice() {
                    [_, Resp::Bulk(channel), Resp::Bulk(payload)] => (
                        format!("channel {}", String::from_utf8_lossy(channel)),
                        payload,
                    ),
                    [_, Resp::Bulk(pattern), _, Resp::Bulk(payload)] => (
                        format!("pattern {}", String::from_utf8_lossy(pattern)),
                        payload,
                    ),
                    other => panic!("unexpected frame {other:?}"),
                };
                let n: usize = String::from_utf8_lossy(payload).parse().unwrap();
                let expected = seen.entry(subscription).or_insert(0);
                assert_eq!(n, *expected, "in order, none missing");
                *expected += 1;
            }
            assert_eq!(seen.len(), CHANNELS_EACH);
            assert!(seen.values().all(|&n| n == MESSAGES));
        }));
    }
    publisher.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_cut_at_its_limit_and_the_others_go_on() {
    let instance = start().await;
    let mut admin = RawClient::connect(instance.addr()).await.unwrap();
    admin
        .command(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 4mb 0 0",
        ])
        .await
        .unwrap();
    // The slow one subscribes and never reads again.
    let mut slow = RawClient::connect(instance.addr()).await.unwrap();
    slow.command(&["SUBSCRIBE", "firehose"]).await.unwrap();
    let mut reader = RawClient::connect(instance.addr()).await.unwrap();
    reader.command(&["SUBSCRIBE", "firehose"]).await.unwrap();
    let payload = "x".repeat(64 * 1024);
    let addr = instance.addr();
    // The reader acknowledges what it has read, and the publisher keeps at most 8 messages
    // (512 KB) ahead of it: only the slow subscriber goes past the limit.
    let (read_tx, mut read_rx) = tokio::sync::watch::channel(0usize);
    let read_all = tokio::spawn(async move {
        for i in 0..400 {
            let frame = next(&mut reader).await;
            let Resp::Array(parts) = frame else {
                panic!("message {i}");
            };
            assert_eq!(parts.len(), 3);
            let _ = read_tx.send(i + 1);
        }
        reader
    });
    let mut publisher = RawClient::connect(addr).await.unwrap();
    for i in 0..400 {
        read_rx
            .wait_for(|&read| read + 8 >= i)
            .await
            .expect("the reader goes on");
        publisher
            .command(&["PUBLISH", "firehose", &payload])
            .await
            .unwrap();
    }
    let _reader = read_all.await.unwrap();
    // 25 MB went to a client that reads nothing: it was closed, the reader was not.
    assert_eq!(
        admin
            .command(&["PUBSUB", "NUMSUB", "firehose"])
            .await
            .unwrap(),
        Resp::Array(vec![bulk("firehose"), Resp::Int(1)])
    );
    assert!(
        instance
            .events_since(0)
            .iter()
            .any(|e| e.detail.contains("output buffer limits (pubsub)")),
        "the cut is logged"
    );
    let _ = slow;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_subscribe_mode_prints_messages() {
    if !require_redis_server("redis_cli_subscribe_mode") {
        return;
    }
    let server = ServerProcess::cachedesk(&[]);
    let mut cli = std::process::Command::new("redis-cli")
        .args(["-p", &server.addr.port().to_string(), "SUBSCRIBE", "cli"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut publisher = RawClient::connect(server.addr).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while publisher
        .command(&["PUBSUB", "NUMSUB", "cli"])
        .await
        .unwrap()
        != Resp::Array(vec![bulk("cli"), Resp::Int(1)])
    {
        assert!(std::time::Instant::now() < deadline, "redis-cli subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publisher
        .command(&["PUBLISH", "cli", "first"])
        .await
        .unwrap();
    publisher
        .command(&["PUBLISH", "cli", "second"])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = cli.kill();
    let output = cli.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "subscribe",
            "cli",
            "1",
            "message",
            "cli",
            "first",
            "message",
            "cli",
            "second"
        ],
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_shows_each_command_as_redis_writes_it() {
    let instance = start().await;
    let mut monitor = RawClient::connect(instance.addr()).await.unwrap();
    assert_eq!(
        monitor.command(&["MONITOR"]).await.unwrap(),
        Resp::Simple("OK".into())
    );
    let mut c = RawClient::connect(instance.addr()).await.unwrap();
    let client_addr = c.command(&["CLIENT", "INFO"]).await.unwrap();
    let Resp::Bulk(info) = client_addr else {
        panic!("CLIENT INFO text");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    let addr = info
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .unwrap()
        .to_string();
    for command in [
        &["SET", "k", "two words\n"][..],
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "k"],
        &["MULTI"],
        &["INCR", "n"],
        &["EXEC"],
        &["AUTH", "user", "secret"],
        &["HELLO", "2", "AUTH", "default", "secret"],
        &["CONFIG", "GET", "maxmemory"],
        &["SELECT", "3"],
        &["PING"],
    ] {
        c.command(command).await.unwrap();
    }
    let expected = [
        format!(r#"[0 {addr}] "CLIENT" "INFO""#),
        format!(r#"[0 {addr}] "SET" "k" "two words\n""#),
        format!(r#"[0 {addr}] "EVAL" "return redis.call('get', KEYS[1])" "1" "k""#),
        r#"[0 lua] "get" "k""#.to_string(),
        format!(r#"[0 {addr}] "MULTI""#),
        format!(r#"[0 {addr}] "INCR" "n""#),
        format!(r#"[0 {addr}] "EXEC""#),
        format!(r#"[0 {addr}] "AUTH" "(redacted)" "(redacted)""#),
        format!(r#"[0 {addr}] "HELLO" "2" "AUTH" "(redacted)" "(redacted)""#),
        format!(r#"[3 {addr}] "SELECT" "3""#),
        format!(r#"[3 {addr}] "PING""#),
    ];
    for want in expected {
        let Resp::Simple(line) = next(&mut monitor).await else {
            panic!("a status line");
        };
        let (time, rest) = line.split_once(' ').unwrap();
        let (secs, micros) = time.split_once('.').unwrap();
        assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{line}");
        assert_eq!(rest, want);
    }
}
