//! The instance's background work, `hz` times a second: active expiry, idle clients, client
//! eviction, ops/s
//! sampling, the tracking table's limit, the save schedule, the AOF's fsync and rewrites,
//! and the telemetry snapshot.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use crate::telemetry::Telemetry;

/// Closes the clients idle for longer than `timeout` seconds (0: never), as Redis's
/// clientsCronHandleTimeout; a blocked client waits on its own timeout instead.
fn close_idle_clients(shared: &Shared) {
    let timeout = shared.client_limits().timeout_secs;
    if timeout == 0 {
        return;
    }
    let timeout = Duration::from_secs(timeout);
    for client in shared.clients.lock().values() {
        if client.idle_past(timeout) {
            client.kill();
        }
    }
}

/// Background work, `hz` times a second: active expiry in short slices (the keyspace lock is
/// held ~1 ms at a time), incremental rehashing, ops/s sampling and the telemetry snapshot.
pub async fn run(shared: Arc<Shared>) {
    let mut last_commands = shared.stats.total_commands();
    let mut last_tick = Instant::now();
    let mut samples = [0u64; 16];
    let mut sample_idx = 0;
    loop {
        let hz = shared.config().hz.max(1);
        tokio::time::sleep(Duration::from_millis(1000 / u64::from(hz))).await;
        // A running script holds the keyspace: the tick waits for it off the worker.
        let busy = shared.script_status.running();
        // Active expiry waits out a CLIENT PAUSE, as Redis's does (nothing changes meanwhile).
        let paused = shared.paused_at(crate::util::now_ms());
        if shared.active_expire.load(Ordering::Relaxed) && !busy && !paused {
            for _ in 0..25 {
                let stale = shared.wait_for_keyspace(|| {
                    let mut ks = shared.keyspace.lock();
                    let stale = ks.expire_cycle(Duration::from_millis(1));
                    super::pubsub::publish_notices(&shared, &mut ks);
                    super::tracking::end_of_batch(&shared, &mut ks);
                    stale
                });
                if !stale {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        let commands = shared.stats.total_commands();
        let elapsed = last_tick.elapsed().as_secs_f64().max(1e-3);
        samples[sample_idx % samples.len()] =
            ((commands.saturating_sub(last_commands)) as f64 / elapsed) as u64;
        sample_idx += 1;
        last_commands = commands;
        last_tick = Instant::now();
        let filled = sample_idx.min(samples.len());
        let ops = samples[..filled].iter().sum::<u64>() / filled as u64;
        shared.stats.ops_per_sec.store(ops, Ordering::Relaxed);
        close_idle_clients(&shared);
        // Messages may have piled up for subscribers that are not reading.
        shared.evict_clients();
        if busy {
            continue;
        }
        shared.wait_for_keyspace(|| {
            super::tracking::tick(&shared, &mut shared.keyspace.lock());
            crate::persistence::schedule::tick(&shared);
            crate::persistence::aof::tick(&shared);
            let snapshot = Arc::new(Telemetry::capture(&shared));
            *shared.telemetry.lock() = snapshot;
        });
    }
}
