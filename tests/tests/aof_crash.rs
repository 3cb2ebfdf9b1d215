//! Crash tests: cachedesk-server with AOF (appendfsync everysec) is killed with SIGKILL at
//! random moments under a steady write load (including in the middle of rewrites, which run
//! often here because the automatic rewrite threshold is low, and of the once-a-second fsync).
//! Clients record every write the server acknowledged; after each restart every one of them
//! must be there. The seed is printed so a failure can be replayed (CACHEDESK_CRASH_SEED).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachedesk_tests::resp::{RawClient, Resp};
use cachedesk_tests::servers::which;
use cachedesk_tests::ServerProcess;
use rand::{Rng, SeedableRng};

const WRITERS: usize = 4;
const ROUNDS: usize = 8;

/// One writer's round: ops 0..acked were acknowledged. Op n is `SET r{round}:w{w}:{n} n`,
/// `INCR ctr:r{round}:w{w}` and `RPUSH lst:r{round}:w{w} n`, pipelined.
struct Written {
    round: usize,
    writer: usize,
    acked: u64,
}

async fn writer(
    addr: SocketAddr,
    round: usize,
    w: usize,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let Ok(mut c) = RawClient::connect(addr).await else {
        return;
    };
    let ctr = format!("ctr:r{round}:w{w}");
    let lst = format!("lst:r{round}:w{w}");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let value = n.to_string();
        let key = format!("r{round}:w{w}:{n}");
        let mut batch = RawClient::encode(&[b"SET", key.as_bytes(), value.as_bytes()]);
        batch.extend(RawClient::encode(&[b"INCR".as_slice(), ctr.as_bytes()]));
        batch.extend(RawClient::encode(&[
            b"RPUSH",
            lst.as_bytes(),
            value.as_bytes(),
        ]));
        if c.send_raw(&batch).await.is_err() {
            return;
        }
        for _ in 0..3 {
            match c.read_reply().await {
                Ok(Resp::Error(e)) => panic!("write refused: {e}"),
                Ok(_) => {}
                Err(_) => return,
            }
        }
        n += 1;
        acked.store(n, Ordering::Release);
    }
}

/// Waits until the restarted server has loaded its data (PING answers PONG, not -LOADING).
async fn wait_loaded(addr: SocketAddr) -> RawClient {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = RawClient::connect(addr).await {
            if let Ok(Resp::Simple(s)) = c.command(&[b"PING"]).await {
                if s == "PONG" {
                    return c;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server did not finish loading"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn verify(c: &mut RawClient, written: &[Written]) {
    for wr in written {
        let (round, w, acked) = (wr.round, wr.writer, wr.acked);
        for chunk_start in (0..acked).step_by(1000) {
            let chunk_end = (chunk_start + 1000).min(acked);
            let mut args = vec![b"MGET".to_vec()];
            args.extend(
                (chunk_start..chunk_end).map(|n| format!("r{round}:w{w}:{n}").into_bytes()),
            );
            let Resp::Array(values) = c.command(&args).await.expect("mget") else {
                panic!("MGET reply")
            };
            for (n, v) in (chunk_start..chunk_end).zip(values) {
                assert_eq!(
                    v,
                    Resp::Bulk(n.to_string().into_bytes()),
                    "round {round} writer {w}: acknowledged write {n} of {acked} lost"
                );
            }
        }
        let ctr = c
            .command(&[b"GET".to_vec(), format!("ctr:r{round}:w{w}").into_bytes()])
            .await
            .expect("get");
        let count: u64 = match ctr {
            Resp::Bulk(b) => String::from_utf8_lossy(&b).parse().expect("counter"),
            Resp::Null => 0,
            other => panic!("counter reply {other}"),
        };
        assert!(
            count == acked || count == acked + 1,
            "round {round} writer {w}: counter {count}, {acked} acknowledged"
        );
        let len = c
            .command(&[b"LLEN".to_vec(), format!("lst:r{round}:w{w}").into_bytes()])
            .await
            .expect("llen");
        let Resp::Int(len) = len else {
            panic!("LLEN reply")
        };
        assert!(
            len as u64 == acked || len as u64 == acked + 1,
            "round {round} writer {w}: list of {len}, {acked} acknowledged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_write() {
    let seed: u64 = std::env::var("CACHEDESK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test seed {seed} (CACHEDESK_CRASH_SEED replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut server = ServerProcess::cachedesk(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--auto-aof-rewrite-min-size",
        "256kb",
        "--auto-aof-rewrite-percentage",
        "50",
    ]);
    // Bulk so that a rewrite takes long enough to be killed in the middle of.
    let mut c = RawClient::connect(server.addr).await.expect("connect");
    let mut bulk = Vec::new();
    for i in 0..100_000 {
        bulk.extend(RawClient::encode(&[
            b"SET".to_vec(),
            format!("bulk:{i}").into_bytes(),
            vec![b'x'; 40],
        ]));
    }
    c.send_raw(&bulk).await.expect("send bulk");
    for _ in 0..100_000 {
        c.read_reply().await.expect("bulk reply");
    }
    drop(c);

    let mut written = Vec::new();
    let mut mid_rewrite_kills = 0;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let counters: Vec<_> = (0..WRITERS).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let tasks: Vec<_> = counters
            .iter()
            .enumerate()
            .map(|(w, acked)| {
                tokio::spawn(writer(server.addr, round, w, acked.clone(), stop.clone()))
            })
            .collect();
        let run_for = Duration::from_millis(rng.random_range(200..1500));
        if round % 2 == 1 {
            // Kill shortly after a rewrite starts.
            tokio::time::sleep(run_for / 2).await;
            let mut c = RawClient::connect(server.addr).await.expect("connect");
            c.command(&[b"BGREWRITEAOF"]).await.expect("rewrite");
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..30))).await;
            if let Ok(Resp::Bulk(info)) = c.command(&[b"INFO".as_slice(), b"persistence"]).await {
                if String::from_utf8_lossy(&info).contains("aof_rewrite_in_progress:1") {
                    mid_rewrite_kills += 1;
                }
            }
        } else {
            tokio::time::sleep(run_for).await;
        }
        server.kill_hard();
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        for (w, acked) in counters.iter().enumerate() {
            written.push(Written {
                round,
                writer: w,
                acked: acked.load(Ordering::Acquire),
            });
        }
        server.restart();
        let mut c = wait_loaded(server.addr).await;
        verify(&mut c, &written).await;
        let Resp::Int(bulk_keys) = c
            .command(&[b"EXISTS".as_slice(), b"bulk:0", b"bulk:99999"])
            .await
            .expect("exists")
        else {
            panic!("EXISTS reply")
        };
        assert_eq!(bulk_keys, 2, "round {round}: the bulk keys survived");
    }
    let total: u64 = written.iter().map(|w| w.acked).sum();
    eprintln!("{total} acknowledged writes checked over {ROUNDS} kills, {mid_rewrite_kills} of them mid-rewrite");
    assert!(total > 1000, "the writers made progress ({total})");
    assert!(
        mid_rewrite_kills > 0,
        "at least one kill landed in a rewrite"
    );
    if which("redis-check-aof").is_some() {
        server.kill_hard();
        let out = std::process::Command::new("redis-check-aof")
            .arg(server.dir.join("appendonlydir/appendonly.aof.manifest"))
            .output()
            .expect("redis-check-aof runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "after the kills redis-check-aof says:\n{text}"
        );
    }
}
