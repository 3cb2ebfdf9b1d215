//! cachedesk-server: the engine as a headless server, taking redis-server's command-line
//! syntax for the options both share, so one script can drive either.
//!
//!     cachedesk-server --port 6380 --maxmemory 100mb --maxmemory-policy allkeys-lru

use std::process::ExitCode;

/// mimalloc: measured faster than glibc's malloc for the engine's many small allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cachedesk_engine::config::{self, InstanceConfig};
use cachedesk_engine::{Instance, PersistenceMode, RdbSchedule};

const USAGE: &str =
    "usage: cachedesk-server [--port N] [--bind ADDR] [--dir PATH] [--maxmemory BYTES] \
[--maxmemory-policy POLICY] [--maxmemory-samples N] [--requirepass KEY] [--secondary-key KEY] \
[--hz N] [--maxclients N] [--io-threads N] [--save \"SECS CHANGES ...\"] [--rdb-frequency 1h] \
[--dbfilename NAME] [--appendonly yes|no] [--appendfsync always|everysec|no] \
[--appenddirname NAME] [--appendfilename NAME] [--auto-aof-rewrite-percentage N] \
[--auto-aof-rewrite-min-size BYTES] [--hash-max-listpack-entries N] [--hash-max-listpack-value N] \
[--zset-max-listpack-entries N] [--zset-max-listpack-value N] [--set-max-intset-entries N] \
[--list-max-listpack-size N] [--list-compress-depth N] (and their *-ziplist-* names) \
[--hll-sparse-max-bytes BYTES] [--stream-node-max-bytes BYTES] [--stream-node-max-entries N]";

/// What the command line asks for: the instance's settings and the runtime's thread count.
struct Options {
    config: InstanceConfig,
    /// Worker threads (Redis's io-threads; 1 by default, as Redis, which measured fastest
    /// beside a load generator on a 2-core machine).
    io_threads: usize,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut io_threads = 1;
    let mut cfg = InstanceConfig {
        name: "cachedesk-server".into(),
        port: 6379,
        // As redis-server: save points 3600 1 300 100 60 10000, the dump loaded on start.
        persistence: PersistenceMode::Rdb(RdbSchedule::redis_default()),
        ..Default::default()
    };
    let mut ks = cfg.keyspace_config();
    let mut explicit_save_points = false;
    let mut i = 0;
    while i < args.len() {
        let name = args[i]
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument '{}'\n{USAGE}", args[i]))?;
        if name == "help" || name == "h" {
            return Err(USAGE.into());
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("option --{name} needs a value\n{USAGE}"))?;
        match name {
            "port" => {
                cfg.port = value
                    .parse()
                    .map_err(|_| format!("invalid port '{value}'"))?
            }
            "bind" => {
                cfg.bind = value
                    .parse()
                    .map_err(|_| format!("invalid bind address '{value}'"))?
            }
            "secondary-key" => cfg.secondary_key = Some(value.clone()),
            "io-threads" => {
                io_threads = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=128).contains(n))
                    .ok_or_else(|| format!("invalid io-threads '{value}'"))?
            }
            "appenddirname" | "appendfilename" => {
                if value.is_empty() || value.contains('/') || value == "." || value == ".." {
                    return Err(format!("--{name} can't be a path, just a name"));
                }
                if name == "appenddirname" {
                    cfg.appenddirname = value.clone();
                } else {
                    cfg.appendfilename = value.clone();
                }
            }
            "save" => {
                explicit_save_points = !value.trim().is_empty();
                config::set(name, value, &mut cfg, &mut ks).map_err(|e| e.to_string())?;
            }
            "dir" => {
                std::fs::create_dir_all(value)
                    .map_err(|e| format!("cannot create dir '{value}': {e}"))?;
                config::set("dir", value, &mut cfg, &mut ks).map_err(|e| e.to_string())?;
            }
            _ => config::set(name, value, &mut cfg, &mut ks).map_err(|e| match e {
                config::ConfigError::Unknown(_) => format!("unknown option --{name}\n{USAGE}"),
                other => other.to_string(),
            })?,
        }
        i += 2;
    }
    if explicit_save_points && cfg.persistence == PersistenceMode::Aof {
        return Err(
            "RDB save points and AOF can't both be on: use --save \"\" with --appendonly yes"
                .into(),
        );
    }
    Ok(Options {
        config: cfg,
        io_threads,
    })
}

fn main() -> ExitCode {
    // As Redis does (disable-thp yes): mimalloc asks for transparent huge pages, and with
    // them a buffer reserved but not yet filled (a big argument's room) would cost a 2 MB page.
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: cannot disable transparent huge pages: {e}");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Options {
        config: cfg,
        io_threads,
    } = match parse_args(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match cachedesk_engine::server::runtime_builder()
        .worker_threads(io_threads)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let instance = match Instance::start(cfg).await {
            Ok(instance) => instance,
            Err(e) => {
                eprintln!("cachedesk-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "cachedesk-server {} (Redis {} compatible) pid {} ready to accept connections on {}",
            env!("CARGO_PKG_VERSION"),
            cachedesk_engine::REDIS_VERSION,
            std::process::id(),
            instance.addr()
        );
        let mut shutdown = instance.shutdown_signal();
        match instance.wait_loaded().await {
            Ok(Some(report)) => eprintln!(
                "cachedesk-server: DB loaded from {} ({}): {} keys in {:.3} s ({} expired skipped, {} evicted){}",
                report.source.display(),
                report.format,
                report.keys_loaded,
                report.duration.as_secs_f64(),
                report.keys_expired,
                report.keys_evicted,
                report
                    .truncated
                    .map(|t| format!("; {t}"))
                    .unwrap_or_default()
            ),
            Ok(None) => {}
            Err(e) => {
                eprintln!("cachedesk-server: cannot load the data: {e}");
                instance.stop().await;
                return ExitCode::FAILURE;
            }
        }
        // Log the instance's events (saves, loads, errors) as they happen, until a signal.
        let mut events = instance.subscribe_events();
        let mut seen = instance.events_since(0).last().map_or(0, |e| e.seq);
        let signal = wait_for_signal(&mut shutdown);
        tokio::pin!(signal);
        let reason = loop {
            tokio::select! {
                reason = &mut signal => break reason,
                Ok(()) = events.changed() => log_events(&instance, &mut seen),
            }
        };
        eprintln!("cachedesk-server: {reason}, shutting down");
        instance.stop().await;
        eprintln!("cachedesk-server: bye");
        ExitCode::SUCCESS
    })
}

/// Prints the events after `seen` and moves `seen` past them.
fn log_events(instance: &Instance, seen: &mut u64) {
    for event in instance.events_since(*seen) {
        eprintln!("cachedesk-server: {:?}: {}", event.kind, event.detail);
        *seen = event.seq;
    }
}

async fn wait_for_signal(shutdown: &mut tokio::sync::watch::Receiver<bool>) -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        cachedesk_engine::server::stopping(shutdown).await;
        return "SHUTDOWN received";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM received",
        _ = int.recv() => "SIGINT received",
        _ = cachedesk_engine::server::stopping(shutdown) => "SHUTDOWN received",
    }
}
