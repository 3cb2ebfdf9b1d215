//! Hostile clients against cachedesk-server, with redis-server 7.0 beside it where Redis
//! behaves the same: patterns that backtrack, replies that try to inject, transactions refused
//! for memory, replies whose size the client picks, slow readers, huge input, idle and killed
//! connections, floods past maxclients, keys that change under a session. Each time the server
//! stays up, other clients are answered and memory stays bounded.

use std::net::SocketAddr;
use std::time::Duration;

use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::{require_redis_server, ServerProcess};
use tokio::io::AsyncWriteExt;

fn bulk(s: &str) -> Resp {
    Resp::Bulk(s.as_bytes().to_vec())
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn rss(pid: u32) -> u64 {
    cachedesk_engine::util::rss_bytes(Some(pid))
}

async fn client(addr: SocketAddr) -> RawClient {
    RawClient::connect(addr).await.expect("connect")
}

/// Another client's PING is answered within `within`.
async fn answers_ping(addr: SocketAddr, within: Duration) {
    let ping = async {
        let mut c = client(addr).await;
        c.command(&["PING"]).await
    };
    let reply = tokio::time::timeout(within, ping)
        .await
        .expect("a bystander's PING is answered while the hostile client works")
        .expect("PING");
    assert_eq!(reply, Resp::Simple("PONG".into()));
}

/// The servers to compare: cachedesk-server, and redis-server where it is installed.
fn servers(test: &str, extra: &[&str]) -> Vec<ServerProcess> {
    let mut servers = vec![ServerProcess::cachedesk(extra)];
    if require_redis_server(test) {
        servers.push(ServerProcess::redis(extra));
    }
    servers
}

/// Runs `script` on each server and asserts every server gave the same replies.
async fn same_replies(test: &str, script: &[&[&str]]) -> Vec<Resp> {
    let mut seen: Option<Vec<Resp>> = None;
    for server in servers(test, &[]) {
        let mut c = client(server.addr).await;
        let mut replies = Vec::new();
        for command in script {
            replies.push(c.command(command).await.expect("reply"));
        }
        match &seen {
            None => seen = Some(replies),
            Some(first) => assert_eq!(first, &replies, "cachedesk vs redis-server"),
        }
    }
    seen.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_patterns_answer_at_once_everywhere_they_are_reachable() {
    let key = "a".repeat(60);
    let pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*b";
    for server in servers("pathological_patterns", &[]) {
        let mut c = client(server.addr).await;
        for setup in [
            vec!["SET", &key, "1"],
            vec!["SADD", "s", &key],
            vec!["HSET", "h", &key, "v"],
            vec!["ZADD", "z", "1", &key],
        ] {
            c.command(&setup).await.unwrap();
        }
        let probes: Vec<Vec<&str>> = vec![
            vec!["KEYS", pattern],
            vec!["SCAN", "0", "MATCH", pattern],
            vec!["SSCAN", "s", "0", "MATCH", pattern],
            vec!["HSCAN", "h", "0", "MATCH", pattern],
            vec!["ZSCAN", "z", "0", "MATCH", pattern],
            vec!["CONFIG", "GET", pattern],
        ];
        for probe in probes {
            let mut hostile = client(server.addr).await;
            let run = tokio::spawn(async move { hostile.command(&probe).await });
            answers_ping(server.addr, Duration::from_secs(5)).await;
            let reply = tokio::time::timeout(Duration::from_secs(10), run)
                .await
                .expect("the pattern finishes")
                .unwrap()
                .unwrap();
            assert!(!matches!(reply, Resp::Error(_)), "{reply:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_texts_never_inject_a_reply() {
    let replies = same_replies(
        "error_texts_never_inject",
        &[
            &["SET", "k", "v"],
            &["EXPIRE", "k", "10", "\r\n+PONG"],
            &["PING"],
        ],
    )
    .await;
    assert_eq!(
        replies[1],
        Resp::Error("ERR Unsupported option   +PONG".into())
    );
    assert_eq!(replies[2], Resp::Simple("PONG".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiretime_rounds_as_redis_does() {
    let replies = same_replies(
        "expiretime_rounds",
        &[
            &["SET", "s1", "v"],
            &["PEXPIREAT", "s1", "99999999999999"],
            &["EXPIRETIME", "s1"],
        ],
    )
    .await;
    assert_eq!(replies[2], Resp::Int(100_000_000_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_refused_while_queueing_discards_the_transaction() {
    let mut seen = None;
    for server in servers("multi_refused_for_memory", &[]) {
        let mut tx = client(server.addr).await;
        let mut admin = client(server.addr).await;
        // Our used_memory counts the data set only (Redis's has a baseline): hold a key so
        // that maxmemory 1 is exceeded on both.
        admin.command(&["SET", "filler", "x"]).await.unwrap();
        let mut replies = vec![
            tx.command(&["MULTI"]).await.unwrap(),
            tx.command(&["SET", "foo1", "bar1"]).await.unwrap(),
        ];
        admin
            .command(&["CONFIG", "SET", "maxmemory", "1"])
            .await
            .unwrap();
        replies.push(tx.command(&["LPUSH", "mylist", "v"]).await.unwrap());
        admin
            .command(&["CONFIG", "SET", "maxmemory", "0"])
            .await
            .unwrap();
        replies.push(tx.command(&["SET", "foo2", "bar2"]).await.unwrap());
        replies.push(tx.command(&["EXEC"]).await.unwrap());
        replies.push(tx.command(&["EXISTS", "foo1", "foo2"]).await.unwrap());
        // An unknown command and a wrong arity flag it the same way.
        replies.push(tx.command(&["MULTI"]).await.unwrap());
        replies.push(tx.command(&["NOSUCHCOMMAND"]).await.unwrap());
        replies.push(tx.command(&["SET", "foo3", "x"]).await.unwrap());
        replies.push(tx.command(&["EXEC"]).await.unwrap());
        replies.push(tx.command(&["MULTI"]).await.unwrap());
        replies.push(tx.command(&["GET"]).await.unwrap());
        replies.push(tx.command(&["EXEC"]).await.unwrap());
        replies.push(tx.command(&["EXISTS", "foo3"]).await.unwrap());
        match &seen {
            None => seen = Some(replies),
            Some(first) => assert_eq!(first, &replies, "cachedesk vs redis-server"),
        }
    }
    let replies = seen.unwrap();
    assert!(matches!(&replies[2], Resp::Error(e) if e.starts_with("OOM")));
    assert_eq!(
        replies[4],
        Resp::Error("EXECABORT Transaction discarded because of previous errors.".into())
    );
    assert_eq!(replies[5], Resp::Int(0));
    assert_eq!(replies[13], Resp::Int(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_whose_size_the_client_picks_cost_what_they_weigh() {
    let server = ServerProcess::cachedesk(&[]);
    let pid = server.child.id();
    let mut c = client(server.addr).await;
    c.command(&["SADD", "s", "a"]).await.unwrap();
    c.command(&["HSET", "h", "f", "v"]).await.unwrap();
    c.command(&["ZADD", "z", "1", "m"]).await.unwrap();
    let before = peak_rss(pid);
    const PICKS: usize = 3_000_000;
    let count = format!("-{PICKS}");
    let Resp::Array(members) = c.command(&["SRANDMEMBER", "s", &count]).await.unwrap() else {
        panic!("SRANDMEMBER reply is an array");
    };
    assert_eq!(members.len(), PICKS);
    assert!(members.iter().all(|m| *m == bulk("a")));
    drop(members);
    let Resp::Array(pairs) = c
        .command(&["HRANDFIELD", "h", &count, "WITHVALUES"])
        .await
        .unwrap()
    else {
        panic!("HRANDFIELD reply is an array");
    };
    assert_eq!(pairs.len(), 2 * PICKS);
    assert_eq!(&pairs[..2], &[bulk("f"), bulk("v")]);
    drop(pairs);
    let Resp::Array(scored) = c
        .command(&["ZRANDMEMBER", "z", &count, "WITHSCORES"])
        .await
        .unwrap()
    else {
        panic!("ZRANDMEMBER reply is an array");
    };
    assert_eq!(scored.len(), 2 * PICKS);
    drop(scored);
    // The largest reply (HRANDFIELD WITHVALUES, 14 bytes a pick) is 42 MB encoded; a reply
    // tree of one value per element would have cost about 5x that.
    let growth = peak_rss(pid).saturating_sub(before);
    assert!(
        growth < 120 * 1024 * 1024,
        "peak memory grew {} MB for a 42 MB reply",
        growth >> 20
    );
    answers_ping(server.addr, Duration::from_secs(5)).await;
}

/// A random-pick count near -2^63 asks for a reply no memory holds: it is refused at once
/// (redis-server would try to build it), and the instance goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_picks_past_any_reply_size_are_refused_at_once() {
    let server = ServerProcess::cachedesk(&[]);
    let mut c = client(server.addr).await;
    c.command(&["SADD", "s", "a"]).await.unwrap();
    c.command(&["HSET", "h", "f", "v"]).await.unwrap();
    c.command(&["ZADD", "z", "1", "m"]).await.unwrap();
    let huge = (i64::MIN + 1).to_string();
    for command in [
        vec!["SRANDMEMBER", "s", &huge],
        vec!["HRANDFIELD", "h", &huge],
        vec!["ZRANDMEMBER", "z", &huge],
    ] {
        let reply = tokio::time::timeout(Duration::from_secs(5), c.command(&command))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(
            matches!(&reply, Resp::Error(e) if e.contains("proto-max-bulk-len")),
            "{command:?} gave {reply:?}"
        );
    }
    answers_ping(server.addr, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_algebra_over_one_key_named_many_times_copies_nothing() {
    let mut seen = None;
    for server in servers("set_algebra_many_keys", &[]) {
        let pid = server.child.id();
        let mut c = client(server.addr).await;
        let members: Vec<String> = (0..10_000).map(|i| format!("m{i}")).collect();
        for chunk in members.chunks(1000) {
            let mut sadd = vec!["SADD", "big"];
            sadd.extend(chunk.iter().map(String::as_str));
            c.command(&sadd).await.unwrap();
        }
        let before = peak_rss(pid);
        let mut replies = Vec::new();
        // Redis itself walks every named set for a union or difference: 2,000 names keep its
        // side of the comparison quick.
        for (op, names) in [("SINTER", 50_000), ("SUNION", 2_000), ("SDIFF", 2_000)] {
            let mut args = vec![op];
            args.extend(std::iter::repeat_n("big", names));
            replies.push(c.command(&args).await.unwrap().sorted());
        }
        let mut zunion = vec!["ZUNIONSTORE", "dst", "2000"];
        zunion.extend(std::iter::repeat_n("big", 2_000));
        replies.push(c.command(&zunion).await.unwrap());
        let growth = peak_rss(pid).saturating_sub(before);
        assert!(growth < 64 * 1024 * 1024, "peak grew {} MB", growth >> 20);
        match &seen {
            None => seen = Some(replies),
            Some(first) => assert_eq!(first, &replies, "cachedesk vs redis-server"),
        }
    }
    let replies = seen.unwrap();
    let (Resp::Set(inter) | Resp::Array(inter)) = &replies[0] else {
        panic!("SINTER reply")
    };
    assert_eq!(inter.len(), 10_000);
    assert_eq!(replies[3], Resp::Int(10_000));
}

/// Sends `LRANGE big 0 -1` `times` times on a connection that never reads.
async fn pipeline_unread(addr: SocketAddr, times: usize) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = RawClient::encode(&["LRANGE", "big", "0", "-1"]).repeat(times);
    // The server may close the connection part way: that is one of the outcomes under test.
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.write_all(&request)).await;
    stream
}

async fn fill_big_list(c: &mut RawClient, items: usize) {
    let value = "x".repeat(100);
    for _ in 0..items / 1000 {
        let mut rpush = vec!["RPUSH", "big"];
        rpush.extend(std::iter::repeat_n(value.as_str(), 1000));
        c.command(&rpush).await.unwrap();
    }
}

async fn connected_clients(c: &mut RawClient) -> i64 {
    let Resp::Bulk(info) = c.command(&["INFO", "clients"]).await.unwrap() else {
        panic!("INFO reply");
    };
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

async fn wait_for_clients(c: &mut RawClient, want: i64) {
    for _ in 0..100 {
        if connected_clients(c).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(connected_clients(c).await, want, "connected clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_at_its_output_limit() {
    for server in servers("output_limit", &[]) {
        let mut admin = client(server.addr).await;
        fill_big_list(&mut admin, 20_000).await;
        admin
            .command(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 4mb 0 0",
            ])
            .await
            .unwrap();
        let _slow = pipeline_unread(server.addr, 50).await;
        answers_ping(server.addr, Duration::from_secs(5)).await;
        wait_for_clients(&mut admin, 1).await;
        admin
            .command(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 0 0 0",
            ])
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_pipeline_to_a_slow_reader_holds_no_huge_buffer_and_client_kill_ends_it() {
    let server = ServerProcess::cachedesk(&[]);
    let pid = server.child.id();
    let mut admin = client(server.addr).await;
    fill_big_list(&mut admin, 200_000).await;
    let Resp::Int(admin_id) = admin.command(&["CLIENT", "ID"]).await.unwrap() else {
        panic!("CLIENT ID");
    };
    // 50 replies of 200k items (about 21 MB each) to a client that reads nothing: with no
    // output limit (Redis's default for normal clients) they are all kept, in blocks. Killed,
    // the client's memory comes back: a second round fits in the same memory as the first
    // (the allocator may keep the pages, so RSS need not drop, but it must not grow again).
    let mut peaks = Vec::new();
    for _ in 0..2 {
        let slow = pipeline_unread(server.addr, 50).await;
        answers_ping(server.addr, Duration::from_secs(5)).await;
        let Resp::Bulk(list) = admin.command(&["CLIENT", "LIST"]).await.unwrap() else {
            panic!("CLIENT LIST");
        };
        let list = String::from_utf8_lossy(&list).into_owned();
        let slow_id = list
            .lines()
            .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .find(|id| *id != admin_id.to_string())
            .expect("the slow client is listed")
            .to_string();
        assert_eq!(
            admin
                .command(&["CLIENT", "KILL", "ID", &slow_id])
                .await
                .unwrap(),
            Resp::Int(1)
        );
        wait_for_clients(&mut admin, 1).await;
        drop(slow);
        answers_ping(server.addr, Duration::from_secs(5)).await;
        peaks.push(peak_rss(pid));
    }
    assert!(
        peaks[1] < peaks[0] + 256 * 1024 * 1024,
        "a killed client's memory is reused: peaks {} MB then {} MB",
        peaks[0] >> 20,
        peaks[1] >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_past_the_query_buffer_limit_closes_the_client_and_memory_stays_bounded() {
    let server = ServerProcess::cachedesk(&[]);
    let pid = server.child.id();
    let mut admin = client(server.addr).await;
    admin
        .command(&["CONFIG", "SET", "client-query-buffer-limit", "32mb"])
        .await
        .unwrap();
    let before = rss(pid);
    let mut flood = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // One request of four 512 MB arguments: 2 GB of input, of which the server must keep
    // no more than the limit before it gives up on the client.
    let head = b"*5\r\n$3\r\nSET\r\n".to_vec();
    let mut sent = 0usize;
    let chunk = vec![b'x'; 1 << 20];
    let send = async {
        flood.write_all(&head).await?;
        for _ in 0..4 {
            flood.write_all(b"$536870912\r\n").await?;
            for _ in 0..512 {
                flood.write_all(&chunk).await?;
                sent += chunk.len();
            }
        }
        std::io::Result::Ok(())
    };
    let result = tokio::time::timeout(Duration::from_secs(60), send).await;
    assert!(
        matches!(result, Ok(Err(_))),
        "the server closes the connection before 2 GB arrive"
    );
    assert!(sent < 512 * 1024 * 1024, "closed after {} MB", sent >> 20);
    assert!(rss(pid) < before + 128 * 1024 * 1024);
    answers_ping(server.addr, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_512_mb_value_is_held_once() {
    const LEN: usize = 512 * 1024 * 1024;
    for server in servers("a_512_mb_value_is_held_once", &[]) {
        let pid = server.child.id();
        let before = peak_rss(pid);
        let mut c = client(server.addr).await;
        c.send_raw(format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${LEN}\r\n").as_bytes())
            .await
            .unwrap();
        let chunk = vec![b'v'; 1 << 20];
        for _ in 0..LEN / chunk.len() {
            c.send_raw(&chunk).await.unwrap();
        }
        c.send_raw(b"\r\n").await.unwrap();
        assert_eq!(c.read_reply().await.unwrap(), ok());
        let growth = peak_rss(pid).saturating_sub(before);
        assert!(
            growth < LEN as u64 * 5 / 4,
            "peak RSS grew {} MB for a 512 MB value",
            growth >> 20
        );
        let strlen = c.command(&["STRLEN", "big"]).await.unwrap();
        assert_eq!(strlen, Resp::Int(LEN as i64));
        let tail = c.command(&["GETRANGE", "big", "-3", "-1"]).await.unwrap();
        assert_eq!(tail, bulk("vvv"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_values_keep_every_byte_through_the_aof() {
    let mut server = ServerProcess::cachedesk(&["--appendonly", "yes", "--appendfsync", "always"]);
    let values: Vec<Vec<u8>> = (0..3)
        // Past the size that gets a buffer of its own (protocol::parser::BIG_ARG).
        .map(|i| (0..1_500_000 + i * 7).map(|j| (j * 31 + i) as u8).collect())
        .collect();
    let [v0, v1, v2] = [&values[0][..], &values[1][..], &values[2][..]];
    let mut c = client(server.addr).await;
    let script: [&[&[u8]]; 5] = [
        &[b"MSET", b"a", v0, b"b", v1],
        &[b"SET", b"c", v2, b"PX", b"100000"],
        &[b"SETEX", b"d", b"100", v0],
        // The same key twice in one command: the last value wins.
        &[b"MSET", b"e", v0, b"e", v1],
        &[b"SET", b"f", v1, b"KEEPTTL"],
    ];
    for command in script {
        assert_eq!(c.command(command).await.unwrap(), ok());
    }
    let old = c.command(&[&b"GETSET"[..], b"a", v2]).await.unwrap();
    assert_eq!(old, Resp::Bulk(v0.to_vec()));
    let expected = [
        ("a", v2),
        ("b", v1),
        ("c", v2),
        ("d", v0),
        ("e", v1),
        ("f", v1),
    ];
    for restarted in [false, true] {
        if restarted {
            server.restart();
            c = client(server.addr).await;
            cachedesk_tests::dataset::wait_loaded(&mut c).await;
        }
        for (key, value) in expected {
            let got = c.command(&["GET", key]).await.unwrap();
            assert!(
                got == Resp::Bulk(value.to_vec()),
                "{key} (restarted: {restarted}): {} bytes, {} expected",
                match &got {
                    Resp::Bulk(b) => b.len() as i64,
                    _ => -1,
                },
                value.len()
            );
        }
        let ttl = c.command(&["PTTL", "c"]).await.unwrap();
        assert!(
            matches!(ttl, Resp::Int(ms) if ms > 0),
            "c keeps its TTL: {ttl:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_cheap_and_closed_after_the_timeout() {
    let server = ServerProcess::cachedesk(&[]);
    let pid = server.child.id();
    let mut admin = client(server.addr).await;
    const IDLE: usize = 800;
    let before = rss(pid);
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        let mut c = client(server.addr).await;
        c.command(&["PING"]).await.unwrap();
        idle.push(c);
    }
    wait_for_clients(&mut admin, IDLE as i64 + 1).await;
    let per_client = rss(pid).saturating_sub(before) / IDLE as u64;
    eprintln!("idle client: {per_client} bytes of RSS each");
    assert!(per_client < 8 * 1024, "{per_client} bytes per idle client");
    admin
        .command(&["CONFIG", "SET", "timeout", "1"])
        .await
        .unwrap();
    // The admin keeps talking, so only the idle ones time out.
    for _ in 0..60 {
        if connected_clients(&mut admin).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(connected_clients(&mut admin).await, 1);
    assert!(!idle[0].read_to_close().await.starts_with(b"+"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_is_not_idle() {
    for server in servers("a_slow_upload_is_not_idle", &["--timeout", "1"]) {
        let mut c = client(server.addr).await;
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$12\r\n")
            .await
            .unwrap();
        // Twelve bytes over three seconds: longer than `timeout`, but never silent for long.
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            c.send_raw(b"x").await.unwrap();
        }
        c.send_raw(b"\r\n").await.unwrap();
        assert_eq!(c.read_reply().await.unwrap(), ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_maxclients_is_refused_and_every_slot_comes_back() {
    let server = ServerProcess::cachedesk(&["--maxclients", "5"]);
    for round in 0..3 {
        let mut held = Vec::new();
        for _ in 0..5 {
            let mut c = client(server.addr).await;
            // A command that used to panic the connection (capacity overflow) and leak its slot.
            let reply = c
                .command(&["DEBUG", "POPULATE", "1", "k", "9223372036854775807"])
                .await
                .unwrap();
            assert!(matches!(reply, Resp::Error(_)), "round {round}: {reply:?}");
            held.push(c);
        }
        let mut extra = client(server.addr).await;
        assert_eq!(
            extra.read_to_close().await,
            b"-ERR max number of clients reached\r\n"
        );
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    answers_ping(server.addr, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_follow_the_access_keys() {
    let server = ServerProcess::cachedesk(&["--secondary-key", "second"]);
    let mut early = client(server.addr).await;
    // Only a secondary key: set, so AUTH is needed from the start; the early client uses it.
    assert_eq!(early.command(&["AUTH", "second"]).await.unwrap(), ok());
    assert_eq!(
        early
            .command(&["CONFIG", "SET", "requirepass", "first"])
            .await
            .unwrap(),
        ok()
    );
    assert_eq!(
        early
            .command(&["CONFIG", "GET", "requirepass"])
            .await
            .unwrap(),
        Resp::Array(vec![bulk("requirepass"), bulk("")]),
        "a secondary-key session never sees the primary key"
    );
    let mut primary = client(server.addr).await;
    assert_eq!(primary.command(&["AUTH", "first"]).await.unwrap(), ok());
    assert_eq!(
        primary
            .command(&["CONFIG", "GET", "requirepass"])
            .await
            .unwrap(),
        Resp::Array(vec![bulk("requirepass"), bulk("first")])
    );
    // Regenerating the primary key ends the sessions that used the old one.
    assert_eq!(
        early
            .command(&["CONFIG", "SET", "requirepass", "renewed"])
            .await
            .unwrap(),
        ok()
    );
    assert!(primary.read_to_close().await.is_empty());
    assert_eq!(
        early.command(&["PING"]).await.unwrap(),
        Resp::Simple("PONG".into())
    );

    // A connection opened while no keys are set needs AUTH once they are.
    let open = ServerProcess::cachedesk(&[]);
    let mut before_keys = client(open.addr).await;
    let mut admin = client(open.addr).await;
    assert_eq!(before_keys.command(&["SET", "k", "v"]).await.unwrap(), ok());
    admin
        .command(&["CONFIG", "SET", "requirepass", "now"])
        .await
        .unwrap();
    assert_eq!(
        before_keys.command(&["GET", "k"]).await.unwrap(),
        Resp::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(before_keys.command(&["AUTH", "now"]).await.unwrap(), ok());
    assert_eq!(before_keys.command(&["GET", "k"]).await.unwrap(), bulk("v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_sleep_holds_up_only_its_own_client() {
    let server = ServerProcess::cachedesk(&[]);
    let mut sleeper = client(server.addr).await;
    let sleeping = tokio::spawn(async move { sleeper.command(&["DEBUG", "SLEEP", "2"]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    answers_ping(server.addr, Duration::from_millis(1500)).await;
    let reply = tokio::time::timeout(Duration::from_secs(10), sleeping)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, ok());
}

/// A non-loopback address of this machine, if it has one (`hostname -I`).
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_mode_serves_only_loopback_until_a_key_is_set() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this machine has no non-loopback IPv4 address");
        return;
    };
    let test = "protected_mode_serves_only_loopback_until_a_key_is_set";
    let mut denials = Vec::new();
    for server in servers(test, &["--bind", "0.0.0.0"]) {
        let outside = SocketAddr::new(ip, server.addr.port());
        let mut c = client(outside).await;
        let denied = c.command(&["PING"]).await.unwrap();
        assert!(
            matches!(&denied, Resp::Error(e) if e.starts_with("DENIED Redis is running in protected mode")),
            "{denied:?}"
        );
        denials.push(denied);
        // Loopback is served, and a key opens the door to the others (who must use it).
        let mut admin = client(server.addr).await;
        assert_eq!(
            admin.command(&["PING"]).await.unwrap(),
            Resp::Simple("PONG".into())
        );
        admin
            .command(&["CONFIG", "SET", "requirepass", "s3cret"])
            .await
            .unwrap();
        let mut c = client(outside).await;
        let refused = c.command(&["PING"]).await.unwrap();
        assert!(
            matches!(&refused, Resp::Error(e) if e.starts_with("NOAUTH")),
            "{refused:?}"
        );
        assert_eq!(c.command(&["AUTH", "s3cret"]).await.unwrap(), ok());
        assert_eq!(
            c.command(&["PING"]).await.unwrap(),
            Resp::Simple("PONG".into())
        );
    }
    if let [ours, redis] = &denials[..] {
        assert_eq!(ours, redis, "cachedesk vs redis-server");
    }
}
