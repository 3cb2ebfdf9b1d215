//! Real clients against the engine: the `redis` crate (RESP2 and RESP3, pipelines,
//! transactions), redis-cli in its modes, inline commands as telnet sends them, access keys,
//! blocking pops, and several instances side by side.

use std::process::{Command, Stdio};
use std::time::Duration;

use cachedesk_engine::{EvictionPolicy, Instance, InstanceConfig};
use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::{require_redis_server, ServerProcess};
use redis::AsyncCommands;

async fn start(config: InstanceConfig) -> Instance {
    Instance::start(config).await.expect("instance starts")
}

async fn client(instance: &Instance, query: &str) -> redis::aio::MultiplexedConnection {
    let url = format!("redis://{}/{query}", instance.addr());
    let client = redis::Client::open(url).expect("url");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_round_trips_every_family() {
    let instance = start(InstanceConfig::default()).await;
    for query in ["", "?protocol=resp3"] {
        let mut con = client(&instance, query).await;
        let _: () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
        let _: () = con.set("greeting", "hello").await.unwrap();
        let got: String = con.get("greeting").await.unwrap();
        assert_eq!(got, "hello");
        let n: i64 = con.incr("counter", 5).await.unwrap();
        assert_eq!(n, 5);
        let _: () = con
            .hset_multiple("h", &[("a", "1"), ("b", "2")])
            .await
            .unwrap();
        let all: std::collections::HashMap<String, String> = con.hgetall("h").await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["b"], "2");
        let _: () = con.rpush("l", &["x", "y", "z"]).await.unwrap();
        let items: Vec<String> = con.lrange("l", 0, -1).await.unwrap();
        assert_eq!(items, ["x", "y", "z"]);
        let _: () = con.sadd("s", &["m1", "m2"]).await.unwrap();
        let members: std::collections::HashSet<String> = con.smembers("s").await.unwrap();
        assert!(members.contains("m1") && members.contains("m2"));
        let _: () = con
            .zadd_multiple("z", &[(1.5, "a"), (0.5, "b")])
            .await
            .unwrap();
        let ranked: Vec<(String, f64)> = con.zrange_withscores("z", 0, -1).await.unwrap();
        assert_eq!(ranked, vec![("b".to_string(), 0.5), ("a".to_string(), 1.5)]);
        let score: f64 = con.zscore("z", "a").await.unwrap();
        assert_eq!(score, 1.5);
        // A pipeline and a MULTI/EXEC transaction.
        let (a, b): (i64, i64) = redis::pipe()
            .incr("p", 1)
            .incr("p", 1)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!((a, b), (1, 2));
        let (x, y): (String, i64) = redis::pipe()
            .atomic()
            .set("t", "v")
            .ignore()
            .get("t")
            .incr("tc", 3)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!((x.as_str(), y), ("v", 3));
        // Expiry and TTLs.
        let _: () = con.set_ex("temp", "v", 100).await.unwrap();
        let ttl: i64 = con.ttl("temp").await.unwrap();
        assert!((99..=100).contains(&ttl));
        let big = vec![7u8; 3 * 1024 * 1024];
        let _: () = con.set("big", &big).await.unwrap();
        let back: Vec<u8> = con.get("big").await.unwrap();
        assert_eq!(back, big);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_keys_gate_every_command() {
    let config = InstanceConfig {
        primary_key: Some("primary-secret".into()),
        secondary_key: Some("secondary-secret".into()),
        ..Default::default()
    };
    let instance = start(config).await;
    let mut raw = RawClient::connect(instance.addr()).await.unwrap();
    assert_eq!(
        raw.command(&["GET", "k"]).await.unwrap(),
        Resp::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(
        raw.command(&["AUTH", "wrong"]).await.unwrap(),
        Resp::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    assert_eq!(
        raw.command(&["AUTH", "secondary-secret"]).await.unwrap(),
        Resp::Simple("OK".into())
    );
    assert_eq!(
        raw.command(&["SET", "k", "v"]).await.unwrap(),
        Resp::Simple("OK".into())
    );
    let mut raw2 = RawClient::connect(instance.addr()).await.unwrap();
    let hello = raw2
        .command(&["HELLO", "3", "AUTH", "default", "primary-secret"])
        .await
        .unwrap();
    assert!(matches!(hello, Resp::Map(_)), "{hello}");
    assert_eq!(
        raw2.command(&["GET", "k"]).await.unwrap(),
        Resp::Bulk(b"v".to_vec())
    );
    // The redis crate authenticates from the URL.
    let url = format!("redis://:primary-secret@{}/", instance.addr());
    let mut con = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let v: String = con.get("k").await.unwrap();
    assert_eq!(v, "v");
    // Rotating the keys applies to new AUTHs at once.
    instance.set_access_keys(Some("rotated".into()), None);
    let mut raw3 = RawClient::connect(instance.addr()).await.unwrap();
    assert!(matches!(
        raw3.command(&["AUTH", "primary-secret"]).await.unwrap(),
        Resp::Error(_)
    ));
    assert_eq!(
        raw3.command(&["AUTH", "rotated"]).await.unwrap(),
        Resp::Simple("OK".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_commands_as_telnet_sends_them() {
    let instance = start(InstanceConfig::default()).await;
    let mut raw = RawClient::connect(instance.addr()).await.unwrap();
    raw.send_raw(b"SET greeting \"hello world\"\r\nGET greeting\nPING\r\n")
        .await
        .unwrap();
    assert_eq!(raw.read_reply().await.unwrap(), Resp::Simple("OK".into()));
    assert_eq!(
        raw.read_reply().await.unwrap(),
        Resp::Bulk(b"hello world".to_vec())
    );
    assert_eq!(raw.read_reply().await.unwrap(), Resp::Simple("PONG".into()));
}

/// The next reply of a client that is waiting on a blocking command, within 3 seconds.
async fn reply_within(waiter: &mut RawClient) -> Resp {
    tokio::time::timeout(Duration::from_secs(3), waiter.read_reply())
        .await
        .expect("a reply within 3 s")
        .expect("a reply")
}

/// Sends a command and reads its reply, failing the test (never hanging it) after 3 s.
async fn command_within(client: &mut RawClient, args: &[&str]) -> Resp {
    client
        .send_raw(&RawClient::encode(args))
        .await
        .expect("the command is sent");
    reply_within(client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_pop_wakes_on_push_and_times_out() {
    let instance = start(InstanceConfig::default()).await;
    let mut waiter = RawClient::connect(instance.addr()).await.unwrap();
    let mut pusher = RawClient::connect(instance.addr()).await.unwrap();
    waiter
        .send_raw(&RawClient::encode(&["BLPOP", "jobs", "5"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        pusher.command(&["RPUSH", "jobs", "job1"]).await.unwrap(),
        Resp::Int(1)
    );
    let popped = reply_within(&mut waiter).await;
    assert_eq!(
        popped,
        Resp::Array(vec![
            Resp::Bulk(b"jobs".to_vec()),
            Resp::Bulk(b"job1".to_vec())
        ])
    );
    assert_eq!(
        pusher.command(&["EXISTS", "jobs"]).await.unwrap(),
        Resp::Int(0)
    );
    let started = std::time::Instant::now();
    assert_eq!(
        waiter.command(&["BRPOP", "nothing", "0.2"]).await.unwrap(),
        Resp::NullArray
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    // BLMOVE wakes too, and the connection keeps working afterwards.
    waiter
        .send_raw(&RawClient::encode(&[
            "BLMOVE", "src", "dst", "LEFT", "RIGHT", "0",
        ]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    pusher.command(&["LPUSH", "src", "item"]).await.unwrap();
    let moved = reply_within(&mut waiter).await;
    assert_eq!(moved, Resp::Bulk(b"item".to_vec()));
    assert_eq!(
        waiter.command(&["LRANGE", "dst", "0", "-1"]).await.unwrap(),
        Resp::Array(vec![Resp::Bulk(b"item".to_vec())])
    );
    // BLMPOP waits on several lists and takes up to COUNT from the one pushed to.
    waiter
        .send_raw(&RawClient::encode(&[
            "BLMPOP", "5", "2", "q1", "q2", "RIGHT", "COUNT", "2",
        ]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    pusher
        .command(&["RPUSH", "q2", "a", "b", "c"])
        .await
        .unwrap();
    let popped = reply_within(&mut waiter).await;
    assert_eq!(
        popped,
        Resp::Array(vec![
            Resp::Bulk(b"q2".to_vec()),
            Resp::Array(vec![Resp::Bulk(b"c".to_vec()), Resp::Bulk(b"b".to_vec())])
        ])
    );
    assert_eq!(
        pusher.command(&["LRANGE", "q2", "0", "-1"]).await.unwrap(),
        Resp::Array(vec![Resp::Bulk(b"a".to_vec())])
    );
    // A sorted set wakes its blocked clients too.
    waiter
        .send_raw(&RawClient::encode(&["BZPOPMIN", "z1", "z2", "5"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    pusher
        .command(&["ZADD", "z2", "2", "two", "1", "one"])
        .await
        .unwrap();
    let popped = reply_within(&mut waiter).await;
    assert_eq!(
        popped,
        Resp::Array(vec![
            Resp::Bulk(b"z2".to_vec()),
            Resp::Bulk(b"one".to_vec()),
            Resp::Bulk(b"1".to_vec())
        ])
    );
    // A key fed and then turned into another type leaves the client blocked until its
    // timeout, as in Redis: no WRONGTYPE for a client that was waiting.
    waiter
        .send_raw(&RawClient::encode(&["BZPOPMIN", "z3", "0.3"]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for c in [
        &["MULTI"][..],
        &["ZADD", "z3", "1", "a"],
        &["DEL", "z3"],
        &["SET", "z3", "text"],
        &["EXEC"],
    ] {
        pusher.command(c).await.unwrap();
    }
    let reply = reply_within(&mut waiter).await;
    assert_eq!(reply, Resp::NullArray);
}

/// Waits until the instance counts `n` blocked clients (as the Tcl suite's
/// wait_for_blocked_clients_count does).
async fn until_blocked(client: &mut RawClient, n: usize) {
    for _ in 0..300 {
        let Resp::Bulk(info) = client.command(&["INFO", "clients"]).await.unwrap() else {
            panic!("INFO is a bulk string");
        };
        if String::from_utf8_lossy(&info).contains(&format!("blocked_clients:{n}\r\n")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} clients never blocked");
}

fn bulk(s: &str) -> Resp {
    Resp::Bulk(s.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_clients_are_served_in_order_before_the_next_command() {
    let instance = start(InstanceConfig::default()).await;
    let mut pusher = RawClient::connect(instance.addr()).await.unwrap();
    let mut waiters = Vec::new();
    // First blocked, first served: each takes one element, in the order they blocked.
    for n in 1..=3 {
        let mut w = RawClient::connect(instance.addr()).await.unwrap();
        w.send_raw(&RawClient::encode(&["BLPOP", "q", "5"]))
            .await
            .unwrap();
        until_blocked(&mut pusher, n).await;
        waiters.push(w);
    }
    pusher
        .command(&["RPUSH", "q", "a", "b", "c"])
        .await
        .unwrap();
    for (w, item) in waiters.iter_mut().zip(["a", "b", "c"]) {
        assert_eq!(
            reply_within(w).await,
            Resp::Array(vec![bulk("q"), bulk(item)])
        );
    }
    // Linked moves: a push to list1 feeds the first client, whose move feeds the second,
    // all before the pusher's next command runs.
    let (mut first, mut second) = (waiters.remove(0), waiters.remove(0));
    first
        .send_raw(&RawClient::encode(&[
            "BLMOVE", "list1", "list2", "RIGHT", "LEFT", "0",
        ]))
        .await
        .unwrap();
    until_blocked(&mut pusher, 1).await;
    second
        .send_raw(&RawClient::encode(&[
            "BLMOVE", "list2", "list3", "LEFT", "RIGHT", "0",
        ]))
        .await
        .unwrap();
    until_blocked(&mut pusher, 2).await;
    pusher.command(&["RPUSH", "list1", "foo"]).await.unwrap();
    assert_eq!(
        pusher
            .command(&["LRANGE", "list3", "0", "-1"])
            .await
            .unwrap(),
        Resp::Array(vec![bulk("foo")])
    );
    assert_eq!(reply_within(&mut first).await, bulk("foo"));
    assert_eq!(reply_within(&mut second).await, bulk("foo"));
    // CLIENT UNBLOCK ends a wait as a timeout or as an error; a client not blocked is 0.
    let Resp::Int(id) = first.command(&["CLIENT", "ID"]).await.unwrap() else {
        panic!("CLIENT ID is an integer");
    };
    let id = id.to_string();
    first
        .send_raw(&RawClient::encode(&["BLPOP", "none", "0"]))
        .await
        .unwrap();
    until_blocked(&mut pusher, 1).await;
    assert_eq!(
        pusher.command(&["CLIENT", "UNBLOCK", &id]).await.unwrap(),
        Resp::Int(1)
    );
    assert_eq!(reply_within(&mut first).await, Resp::NullArray);
    first
        .send_raw(&RawClient::encode(&["BZPOPMIN", "none", "0"]))
        .await
        .unwrap();
    until_blocked(&mut pusher, 1).await;
    assert_eq!(
        pusher
            .command(&["CLIENT", "UNBLOCK", &id, "ERROR"])
            .await
            .unwrap(),
        Resp::Int(1)
    );
    assert_eq!(
        reply_within(&mut first).await,
        Resp::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
    );
    assert_eq!(
        pusher.command(&["CLIENT", "UNBLOCK", &id]).await.unwrap(),
        Resp::Int(0)
    );
    assert_eq!(
        first.command(&["PING"]).await.unwrap(),
        Resp::Simple("PONG".into())
    );
}

/// A script past busy-reply-threshold: others get -BUSY, SCRIPT KILL stops it (not once it
/// wrote), and the instance serves again. Run on both a one-worker server process and an
/// embedded instance on two workers: either way the script hands its worker's other tasks over.
async fn busy_script_is_killed(addr: std::net::SocketAddr) {
    let mut other = RawClient::connect(addr).await.unwrap();
    other
        .command(&["CONFIG", "SET", "busy-reply-threshold", "100"])
        .await
        .unwrap();
    for (script, killable) in [
        ("while true do end", true),
        ("redis.call('set', 'w', 1) while true do end", false),
    ] {
        let mut runner = RawClient::connect(addr).await.unwrap();
        runner
            .send_raw(&RawClient::encode(&["EVAL", script, "0"]))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Resp::Error(busy) = command_within(&mut other, &["PING"]).await else {
            panic!("PING during a busy script is refused");
        };
        assert!(busy.starts_with("BUSY "), "{busy}");
        let kill = command_within(&mut other, &["SCRIPT", "KILL"]).await;
        if killable {
            assert_eq!(kill, Resp::Simple("OK".into()));
            let Resp::Error(killed) = reply_within(&mut runner).await else {
                panic!("the killed script's caller gets an error");
            };
            assert!(
                killed.starts_with("ERR Script killed by user with SCRIPT KILL..."),
                "{killed}"
            );
            assert_eq!(
                command_within(&mut other, &["PING"]).await,
                Resp::Simple("PONG".into())
            );
        } else {
            let Resp::Error(unkillable) = kill else {
                panic!("a script that wrote cannot be killed");
            };
            assert!(unkillable.starts_with("UNKILLABLE "), "{unkillable}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_scripts_answer_busy_and_die_by_script_kill() {
    let instance = start(InstanceConfig::default()).await;
    busy_script_is_killed(instance.addr()).await;
    // SHUTDOWN NOSAVE ends even the script that wrote.
    let mut other = RawClient::connect(instance.addr()).await.unwrap();
    let _ = other.command(&["SHUTDOWN", "NOSAVE"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The server binary, on its one worker: its writing script ends by SHUTDOWN NOSAVE.
    if !require_redis_server("busy_scripts_server") {
        return;
    }
    let server = ServerProcess::cachedesk(&[]);
    busy_script_is_killed(server.addr).await;
    let mut other = RawClient::connect(server.addr).await.unwrap();
    let _ = other.command(&["SHUTDOWN", "NOSAVE"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        RawClient::connect(server.addr).await.is_err(),
        "the server stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_independent() {
    let a = start(InstanceConfig {
        name: "a".into(),
        ..Default::default()
    })
    .await;
    let b = start(InstanceConfig {
        name: "b".into(),
        ..Default::default()
    })
    .await;
    let c = start(InstanceConfig {
        name: "c".into(),
        ..Default::default()
    })
    .await;
    let mut ca = RawClient::connect(a.addr()).await.unwrap();
    let mut cc = RawClient::connect(c.addr()).await.unwrap();
    ca.command(&["SET", "k", "from-a"]).await.unwrap();
    cc.command(&["SET", "k", "from-c"]).await.unwrap();
    let b_addr = b.addr();
    b.stop().await;
    assert!(
        tokio::net::TcpStream::connect(b_addr).await.is_err(),
        "b's port is closed"
    );
    assert_eq!(
        ca.command(&["GET", "k"]).await.unwrap(),
        Resp::Bulk(b"from-a".to_vec())
    );
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ca.command(&["DBSIZE"]).await.unwrap(), Resp::Int(1));
    assert!(
        cc.command(&["PING"]).await.is_err(),
        "c's connections close when it is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxmemory_policies_evict_or_refuse() {
    let instance = start(InstanceConfig::default()).await;
    let mut raw = RawClient::connect(instance.addr()).await.unwrap();
    for i in 0..2000 {
        raw.command(&["SET", &format!("key:{i}"), &"x".repeat(100)])
            .await
            .unwrap();
    }
    let used = instance.telemetry_now().used_memory;
    // noeviction: writes are refused with Redis's text, reads still work.
    raw.command(&["CONFIG", "SET", "maxmemory", &(used / 2).to_string()])
        .await
        .unwrap();
    assert_eq!(
        raw.command(&["SET", "another", "v"]).await.unwrap(),
        Resp::Error("OOM command not allowed when used memory > 'maxmemory'.".into())
    );
    assert_eq!(
        raw.command(&["GET", "key:1"]).await.unwrap(),
        Resp::Bulk("x".repeat(100).into_bytes())
    );
    // allkeys-lru: the next write evicts down to the limit.
    raw.command(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
        .await
        .unwrap();
    assert_eq!(
        raw.command(&["SET", "another", "v"]).await.unwrap(),
        Resp::Simple("OK".into())
    );
    // As in Redis, eviction runs before a write, so the write itself may go a key over.
    let t = instance.telemetry_now();
    assert!(
        t.used_memory <= used / 2 + 1024,
        "{} > {}",
        t.used_memory,
        used / 2
    );
    assert!(t.evicted_keys > 500);
    let Resp::Bulk(info) = raw.command(&["INFO", "stats"]).await.unwrap() else {
        panic!("INFO")
    };
    assert!(String::from_utf8_lossy(&info).contains(&format!("evicted_keys:{}", t.evicted_keys)));
    // Scaling down through the API evicts at once and reports how many.
    let evicted = instance.set_maxmemory(used / 4, EvictionPolicy::AllKeysLru);
    assert!(evicted > 0);
    assert!(instance.telemetry_now().used_memory <= used / 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_expiry_removes_keys_nobody_reads() {
    let instance = start(InstanceConfig::default()).await;
    let mut raw = RawClient::connect(instance.addr()).await.unwrap();
    for i in 0..500 {
        raw.command(&["SET", &format!("temp:{i}"), "v", "PX", "50"])
            .await
            .unwrap();
    }
    raw.command(&["SET", "stays", "v"]).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let Resp::Int(n) = raw.command(&["DBSIZE"]).await.unwrap() else {
            panic!("DBSIZE")
        };
        if n == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{n} keys left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(instance.telemetry_now().expired_keys, 500);
}

#[test]
fn redis_cli_in_argument_stdin_pipe_and_resp3_modes() {
    if !require_redis_server("redis_cli_in_argument_stdin_pipe_and_resp3_modes") {
        return;
    }
    let server = ServerProcess::cachedesk(&[]);
    let port = server.addr.port().to_string();
    let cli = |args: &[&str], stdin: Option<&str>| -> String {
        let mut child = Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-cli");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(cli(&["SET", "k", "hello world"], None), "OK\n");
    assert_eq!(cli(&["GET", "k"], None), "hello world\n");
    assert_eq!(cli(&["RPUSH", "l", "a", "b"], None), "2\n");
    assert_eq!(cli(&["LRANGE", "l", "0", "-1"], None), "a\nb\n");
    assert_eq!(
        cli(&["--no-raw", "LRANGE", "l", "0", "-1"], None),
        "1) \"a\"\n2) \"b\"\n"
    );
    // Commands read from standard input, one per line.
    assert_eq!(cli(&[], Some("SET a 1\nINCR a\nGET a\n")), "OK\n2\n2\n");
    // Mass insertion with --pipe (raw RESP on stdin).
    let mut payload = String::new();
    for i in 0..1000 {
        payload.push_str(&format!(
            "*3\r\n$3\r\nSET\r\n${}\r\nbulk:{i}\r\n$1\r\nv\r\n",
            format!("bulk:{i}").len()
        ));
    }
    let piped = cli(&["--pipe"], Some(&payload));
    assert!(piped.contains("errors: 0, replies: 1000"), "{piped}");
    assert_eq!(cli(&["DBSIZE"], None), "1003\n");
    // RESP3.
    assert_eq!(cli(&["-3", "HSET", "h", "f", "v"], None), "1\n");
    assert_eq!(
        cli(&["-3", "--no-raw", "HGETALL", "h"], None),
        "1# \"f\" => \"v\"\n"
    );
    assert_eq!(cli(&["-3", "ZADD", "z", "1.5", "m"], None), "1\n");
    assert_eq!(
        cli(&["-3", "--no-raw", "ZSCORE", "z", "m"], None),
        "(double) 1.5\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_docs_carry_arguments_for_redis_cli_hints() {
    let instance = start(InstanceConfig::default()).await;
    let mut raw = RawClient::connect(instance.addr()).await.unwrap();
    let Resp::Array(docs) = raw.command(&["COMMAND", "DOCS", "lpos"]).await.unwrap() else {
        panic!("docs")
    };
    assert_eq!(docs[0], Resp::Bulk(b"lpos".to_vec()));
    let text = docs[1].to_string();
    assert!(text.contains("\"arguments\""), "{text}");
    assert!(text.contains("\"RANK rank\""), "{text}");
    assert!(text.contains("+optional"), "{text}");
    let Resp::Int(count) = raw.command(&["COMMAND", "COUNT"]).await.unwrap() else {
        panic!("count")
    };
    assert!(count >= 140, "{count} commands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_and_events_follow_the_instance() {
    let instance = start(InstanceConfig::default()).await;
    let mut events = instance.subscribe_events();
    let started = instance.events_since(0);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].kind, cachedesk_engine::EventKind::Started);
    let mut raw = RawClient::connect(instance.addr()).await.unwrap();
    raw.command(&["MSET", "a", "1", "b", "2"]).await.unwrap();
    raw.command(&["SELECT", "3"]).await.unwrap();
    raw.command(&["SET", "c", "3", "EX", "100"]).await.unwrap();
    // The cached snapshot catches up within a few cron ticks.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let t = instance.telemetry();
        if t.total_keys() == 3 {
            assert_eq!(t.keys_per_db[0], 2);
            assert_eq!(t.keys_per_db[3], 1);
            assert_eq!(t.expires_per_db[3], 1);
            assert!(t.total_commands >= 3 && t.connected_clients == 1 && t.used_memory > 0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "telemetry stuck at {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = *events.borrow_and_update();
    let stopped = tokio::spawn(async move {
        events.changed().await.unwrap();
        *events.borrow()
    });
    instance.stop().await;
    assert!(
        stopped.await.unwrap() > seen,
        "listeners are woken by the Stopped event"
    );
}

/// CPU time (user + system, in clock ticks) a process has used so far, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which is in parentheses): utime and stime are 12 and 13.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split(' ')
        .collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[test]
fn the_server_stops_polling_once_traffic_stops() {
    use std::io::{Read, Write};
    let server = ServerProcess::cachedesk(&[]);
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    let pings = RawClient::encode(&["PING"]).repeat(10_000);
    let expected = b"+PONG\r\n".len() * 10_000;
    for _ in 0..5 {
        stream.write_all(&pings).expect("send");
        let mut got = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while got < expected {
            got += stream.read(&mut buf).expect("read");
        }
    }
    // The busy-poll after a batch lasts 200 µs; after that the worker must sleep.
    std::thread::sleep(Duration::from_millis(100));
    let before = cpu_ticks(server.child.id());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(server.child.id()) - before;
    // A second of spinning would be ~100 ticks; an idle server uses next to none.
    assert!(
        used < 20,
        "idle server used {used} ticks of CPU in a second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pause_postpones_writes_then_runs_them_in_order() {
    let instance = start(InstanceConfig::default()).await;
    let mut admin = RawClient::connect(instance.addr()).await.unwrap();
    let mut writer = RawClient::connect(instance.addr()).await.unwrap();
    let mut reader = RawClient::connect(instance.addr()).await.unwrap();
    command_within(&mut admin, &["SET", "e", "1", "PX", "30"]).await;
    assert_eq!(
        command_within(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"]).await,
        Resp::Simple("OK".into())
    );
    // Expiry waits too: a key past its time reads as gone but stays in place.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        command_within(&mut reader, &["GET", "e"]).await,
        Resp::NullBulk
    );
    assert_eq!(expired_keys(&mut reader).await, 0);
    // Reads go on; a pipelined write and PUBLISH wait, in order, and count as blocked.
    assert_eq!(
        command_within(&mut reader, &["GET", "k"]).await,
        Resp::NullBulk
    );
    let mut pipeline = RawClient::encode(&["SET", "k", "v"]);
    pipeline.extend(RawClient::encode(&["PUBLISH", "ch", "m"]));
    writer.send_raw(&pipeline).await.unwrap();
    until_blocked(&mut admin, 1).await;
    assert_eq!(
        command_within(&mut reader, &["GET", "k"]).await,
        Resp::NullBulk,
        "the write waits"
    );
    assert_eq!(
        command_within(&mut admin, &["CLIENT", "UNPAUSE"]).await,
        Resp::Simple("OK".into())
    );
    assert_eq!(reply_within(&mut writer).await, Resp::Simple("OK".into()));
    assert_eq!(reply_within(&mut writer).await, Resp::Int(0));
    assert_eq!(command_within(&mut reader, &["GET", "k"]).await, bulk("v"));
    assert_eq!(
        command_within(&mut reader, &["GET", "e"]).await,
        Resp::NullBulk
    );
    assert_eq!(expired_keys(&mut reader).await, 1);
    // PAUSE ALL holds reads too, until its timeout runs out.
    assert_eq!(
        command_within(&mut admin, &["CLIENT", "PAUSE", "300", "ALL"]).await,
        Resp::Simple("OK".into())
    );
    let started = std::time::Instant::now();
    assert_eq!(command_within(&mut reader, &["GET", "k"]).await, bulk("v"));
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// INFO stats' expired_keys.
async fn expired_keys(client: &mut RawClient) -> u64 {
    let Resp::Bulk(info) = command_within(client, &["INFO", "stats"]).await else {
        panic!("INFO is a bulk string");
    };
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix("expired_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO stats has expired_keys")
}

/// One client's `field=value` from CLIENT LIST, as a number.
fn list_field(list: &str, id: i64, field: &str) -> u64 {
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap_or_else(|| panic!("client {id} in {list}"));
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {line}"))
}

/// CLIENT LIST shows what each connection holds: a partial request (qbuf), output a client is
/// not reading (omem), queued MULTI arguments (multi-mem), each counted in tot-mem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_list_shows_what_each_connection_holds() {
    let instance = start(InstanceConfig::default()).await;
    let mut admin = RawClient::connect(instance.addr()).await.unwrap();
    admin
        .command(&["SET", "big", &"x".repeat(1 << 20)])
        .await
        .unwrap();
    let id_of = |reply: Resp| match reply {
        Resp::Int(id) => id,
        other => panic!("CLIENT ID gave {other:?}"),
    };
    let mut partial = RawClient::connect(instance.addr()).await.unwrap();
    let partial_id = id_of(partial.command(&["CLIENT", "ID"]).await.unwrap());
    partial
        .send_raw(b"*2\r\n$3\r\nGET\r\n$10\r\nabc")
        .await
        .unwrap();
    let mut queued = RawClient::connect(instance.addr()).await.unwrap();
    let queued_id = id_of(queued.command(&["CLIENT", "ID"]).await.unwrap());
    queued.command(&["MULTI"]).await.unwrap();
    queued
        .command(&["SET", "k", &"v".repeat(5000)])
        .await
        .unwrap();
    let mut deaf = RawClient::connect(instance.addr()).await.unwrap();
    let deaf_id = id_of(deaf.command(&["CLIENT", "ID"]).await.unwrap());
    let gets: Vec<u8> = (0..64)
        .flat_map(|_| RawClient::encode(&["GET", "big"]))
        .collect();
    deaf.send_raw(&gets).await.unwrap();
    let mut list = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        list = match admin.command(&["CLIENT", "LIST"]).await.unwrap() {
            Resp::Bulk(text) | Resp::Verbatim(_, text) => String::from_utf8(text).unwrap(),
            other => panic!("CLIENT LIST gave {other:?}"),
        };
        if list_field(&list, deaf_id, "omem") > 0 && list_field(&list, partial_id, "qbuf") > 0 {
            break;
        }
    }
    assert!(list_field(&list, partial_id, "qbuf") >= 20, "{list}");
    assert!(list_field(&list, queued_id, "multi-mem") >= 5000, "{list}");
    let omem = list_field(&list, deaf_id, "omem");
    assert!(
        omem >= 1 << 20,
        "a client not reading holds its replies: {list}"
    );
    assert!(list_field(&list, deaf_id, "tot-mem") > omem, "{list}");
    assert!(list_field(&list, queued_id, "tot-mem") > 5000, "{list}");
}

/// One INFO field, as a number.
async fn info_field(client: &mut RawClient, section: &str, field: &str) -> u64 {
    let Resp::Bulk(info) = command_within(client, &["INFO", section]).await else {
        panic!("INFO is a bulk string");
    };
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has {field}"))
}

/// Client eviction (maxmemory-clients): once all clients together hold more than the limit,
/// the biggest evictable one is closed, not a small one and not one with NO-EVICT, whether it
/// holds output it does not read or a request it has not finished sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_eviction_closes_the_biggest_evictable_client() {
    let instance = start(InstanceConfig::default()).await;
    let mut admin = RawClient::connect(instance.addr()).await.unwrap();
    let ok = Resp::Simple("OK".into());
    assert_eq!(
        command_within(&mut admin, &["CLIENT", "NO-EVICT", "on"]).await,
        ok
    );
    assert_eq!(
        command_within(&mut admin, &["SET", "big", &"x".repeat(1 << 20)]).await,
        ok
    );
    assert_eq!(
        command_within(&mut admin, &["CONFIG", "SET", "maxmemory-clients", "8mb"]).await,
        ok
    );
    let mut small = RawClient::connect(instance.addr()).await.unwrap();
    small.command(&["PING"]).await.unwrap();
    // A protected client holding 3 MB it does not read: under the limit alone.
    let mut keeper = RawClient::connect(instance.addr()).await.unwrap();
    keeper.command(&["CLIENT", "NO-EVICT", "on"]).await.unwrap();
    let three_gets: Vec<u8> = (0..3)
        .flat_map(|_| RawClient::encode(&["GET", "big"]))
        .collect();
    keeper.send_raw(&three_gets).await.unwrap();
    // A client that asks for 64 MB and reads none of it.
    let mut hog = RawClient::connect(instance.addr()).await.unwrap();
    let gets: Vec<u8> = (0..64)
        .flat_map(|_| RawClient::encode(&["GET", "big"]))
        .collect();
    hog.send_raw(&gets).await.unwrap();
    let closed = hog.read_to_close().await;
    assert!(hog.command(&["PING"]).await.is_err(), "the hog is closed");
    assert!(
        closed.len() < 64 << 20,
        "closed before it got everything ({} bytes)",
        closed.len()
    );
    assert_eq!(info_field(&mut admin, "stats", "evicted_clients").await, 1);
    assert_eq!(
        command_within(&mut small, &["PING"]).await,
        Resp::Simple("PONG".into())
    );
    let list = match command_within(&mut admin, &["CLIENT", "LIST"]).await {
        Resp::Bulk(text) | Resp::Verbatim(_, text) => String::from_utf8(text).unwrap(),
        other => panic!("CLIENT LIST gave {other:?}"),
    };
    assert_eq!(
        list.lines().filter(|l| l.contains(" flags=e ")).count(),
        2,
        "NO-EVICT shows as flag e: {list}"
    );
    for _ in 0..3 {
        let Resp::Bulk(value) = reply_within(&mut keeper).await else {
            panic!("the keeper gets its values");
        };
        assert_eq!(value.len(), 1 << 20);
    }
    // A request still arriving counts too: 9 MB of a 20 MB argument.
    let mut sender = RawClient::connect(instance.addr()).await.unwrap();
    sender
        .send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20971520\r\n")
        .await
        .unwrap();
    let chunk = vec![b'y'; 1 << 20];
    let mut sent = 0;
    for _ in 0..9 {
        if sender.send_raw(&chunk).await.is_err() {
            break;
        }
        sent += 1;
    }
    let closed = sender.read_to_close().await;
    assert!(
        closed.is_empty(),
        "no reply: the SET never ran ({sent} MB sent)"
    );
    assert!(
        sender.command(&["PING"]).await.is_err(),
        "the sender is closed"
    );
    assert_eq!(info_field(&mut admin, "stats", "evicted_clients").await, 2);
    assert_eq!(
        command_within(&mut admin, &["EXISTS", "k"]).await,
        Resp::Int(0)
    );
    assert!(instance
        .events_since(0)
        .iter()
        .any(|e| e.detail.starts_with("Evicting client: id=")));
}

/// CONFIG SET port moves the listener while connected clients stay; a port that is taken
/// is refused with every setting of the command left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_port_moves_the_listener() {
    let instance = start(InstanceConfig::default()).await;
    let old = instance.addr();
    let mut admin = RawClient::connect(old).await.unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let reply = command_within(
        &mut admin,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10000001",
            "port",
            &taken_port,
        ],
    )
    .await;
    let Resp::Error(text) = reply else {
        panic!("a taken port is refused, got {reply:?}");
    };
    assert!(
        text.starts_with(
            "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port"
        ),
        "{text}"
    );
    assert_eq!(
        command_within(&mut admin, &["CONFIG", "GET", "maxmemory"]).await,
        Resp::Array(vec![bulk("maxmemory"), bulk("0")])
    );
    assert_eq!(instance.addr(), old);
    drop(taken);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let new_port = free.local_addr().unwrap().port();
    drop(free);
    assert_eq!(
        command_within(
            &mut admin,
            &["CONFIG", "SET", "port", &new_port.to_string()]
        )
        .await,
        Resp::Simple("OK".into())
    );
    assert_eq!(instance.addr().port(), new_port);
    assert_eq!(
        command_within(&mut admin, &["PING"]).await,
        Resp::Simple("PONG".into()),
        "the connected client stays"
    );
    let mut fresh = RawClient::connect(instance.addr()).await.unwrap();
    assert_eq!(
        command_within(&mut fresh, &["CONFIG", "GET", "port"]).await,
        Resp::Array(vec![bulk("port"), bulk(&new_port.to_string())])
    );
    assert!(
        RawClient::connect(old).await.is_err(),
        "the old port no longer listens"
    );
}
