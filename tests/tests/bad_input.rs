//! Bad input against a running cachedesk-server: malformed frames, huge claimed lengths,
//! requests trickled byte by byte, binary garbage and a million-command pipeline. The server
//! answers with Redis's protocol errors, stays up, keeps other clients unaffected and keeps
//! its memory bounded.

use std::time::Duration;

use cachedesk_engine::util::rss_bytes;
use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::ServerProcess;
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn assert_healthy(addr: std::net::SocketAddr) {
    let mut c = RawClient::connect(addr)
        .await
        .expect("server still accepts connections");
    assert_eq!(
        c.command(&["PING"]).await.unwrap(),
        Resp::Simple("PONG".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_protocol_errors_and_close() {
    let server = ServerProcess::cachedesk(&[]);
    let mut bystander = RawClient::connect(server.addr).await.unwrap();
    bystander.command(&["SET", "safe", "value"]).await.unwrap();
    let cases: &[(&[u8], &str)] = &[
        (b"*1048577\r\n", "Protocol error: invalid multibulk length"),
        (b"*abc\r\n", "Protocol error: invalid multibulk length"),
        (
            b"*1\r\n$536870913\r\n",
            "Protocol error: invalid bulk length",
        ),
        (b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n+OK\r\n", "Protocol error: expected '$', got '+'"),
        (
            b"set \"unbalanced\r\n",
            "Protocol error: unbalanced quotes in request",
        ),
    ];
    for (input, expected) in cases {
        let mut c = RawClient::connect(server.addr).await.unwrap();
        c.send_raw(input).await.unwrap();
        let rest = String::from_utf8_lossy(&c.read_to_close().await).into_owned();
        assert_eq!(
            rest,
            format!("-ERR {expected}\r\n"),
            "for {:?}",
            String::from_utf8_lossy(input)
        );
    }
    // Over-long inline and header lines.
    for input in [
        vec![b'a'; 70_000],
        [b"*1\r\n$".as_slice(), &[b'9'; 70_000]].concat(),
    ] {
        let mut c = RawClient::connect(server.addr).await.unwrap();
        c.send_raw(&input).await.unwrap();
        let rest = String::from_utf8_lossy(&c.read_to_close().await).into_owned();
        assert!(rest.starts_with("-ERR Protocol error: too big"), "{rest}");
    }
    assert_eq!(
        bystander.command(&["GET", "safe"]).await.unwrap(),
        Resp::Bulk(b"value".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_claims_are_not_allocated() {
    let server = ServerProcess::cachedesk(&[]);
    let pid = server.child.id();
    let before = rss_bytes(Some(pid));
    let mut holders = Vec::new();
    for _ in 0..20 {
        let mut c = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        c.write_all(b"*2\r\n$3\r\nGET\r\n$536870912\r\nabc")
            .await
            .unwrap();
        let mut d = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        d.write_all(b"*1048576\r\n$4\r\nPING\r\n").await.unwrap();
        holders.push(c);
        holders.push(d);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_bytes(Some(pid));
    assert!(
        after < before + 64 * 1024 * 1024,
        "RSS grew from {before} to {after}"
    );
    assert_healthy(server.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_trickled_byte_by_byte() {
    let server = ServerProcess::cachedesk(&[]);
    let mut c = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    c.set_nodelay(true).unwrap();
    let request = b"*3\r\n$3\r\nSET\r\n$7\r\ntrickle\r\n$11\r\nhello world\r\nGET trickle\r\n";
    for &b in request.iter() {
        c.write_all(&[b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut reply = vec![0u8; 64];
    let mut got = Vec::new();
    while got.len() < b"+OK\r\n$11\r\nhello world\r\n".len() {
        let n = c.read(&mut reply).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&reply[..n]);
    }
    assert_eq!(got, b"+OK\r\n$11\r\nhello world\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_garbage_never_takes_the_server_down() {
    let server = ServerProcess::cachedesk(&[]);
    let mut rng = rand::rng();
    for _ in 0..200 {
        let mut garbage = vec![0u8; 4096];
        rng.fill_bytes(&mut garbage);
        if let Ok(mut c) = tokio::net::TcpStream::connect(server.addr).await {
            let _ = c.write_all(&garbage).await;
            let mut sink = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_millis(200), c.read_to_end(&mut sink)).await;
        }
    }
    assert!(server_alive(&server));
    assert_healthy(server.addr).await;
}

fn server_alive(server: &ServerProcess) -> bool {
    std::path::Path::new(&format!("/proc/{}", server.child.id())).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn million_command_pipeline_with_bounded_memory() {
    const COMMANDS: usize = 1_000_000;
    let server = ServerProcess::cachedesk(&[]);
    let pid = server.child.id();
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        let one = RawClient::encode(&["INCR", "pipelined"]);
        let batch: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * 10_000)
            .collect();
        for _ in 0..COMMANDS / 10_000 {
            writer.write_all(&batch).await.unwrap();
        }
        writer
    });
    let mut buf = vec![0u8; 256 * 1024];
    let mut lines = 0usize;
    let mut peak_rss = 0;
    while lines < COMMANDS {
        let n = reader.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed after {lines} replies");
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        if lines % 100_000 < 2_000 {
            peak_rss = peak_rss.max(rss_bytes(Some(pid)));
        }
    }
    let _writer = sender.await.unwrap();
    assert_eq!(lines, COMMANDS);
    assert!(peak_rss < 256 * 1024 * 1024, "peak RSS {peak_rss}");
    let mut c = RawClient::connect(server.addr).await.unwrap();
    assert_eq!(
        c.command(&["GET", "pipelined"]).await.unwrap(),
        Resp::Bulk(COMMANDS.to_string().into_bytes())
    );
}
