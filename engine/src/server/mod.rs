//! The network side of an instance: its TCP listener (maxclients fitted to the open-file
//! limit, protected mode, keepalive) and its connections (connection.rs), which serve the
//! instance's state (crate::instance).

pub mod connection;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::InstanceConfig;
use crate::instance::{cron, Shared};
use crate::telemetry::EventKind;

/// File descriptors kept for everything but clients (Redis's CONFIG_MIN_RESERVED_FDS).
const RESERVED_FDS: u64 = 32;

/// Raises the open-file limit to what maxclients needs, or lowers maxclients to what the limit
/// allows, with a warning, as Redis does at start: running out of descriptors must show as
/// refused clients, never as a failed fsync or a lost file.
fn fit_maxclients_to_fd_limit(shared: &Shared) {
    let mut cfg = shared.config();
    let wanted = cfg.maxclients as u64 + RESERVED_FDS;
    let limit = match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) => limit,
        Err(e) => {
            shared.events.push(
                EventKind::Error,
                format!("can't read the open files limit: {e}"),
            );
            return;
        }
    };
    if limit < wanted {
        let fitted = limit.saturating_sub(RESERVED_FDS).max(1);
        shared.events.push(
            EventKind::Error,
            format!(
                "You requested maxclients of {} requiring at least {wanted} max file descriptors. \
                 Current maximum open files is {limit}. maxclients has been reduced to {fitted} \
                 to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.",
                cfg.maxclients
            ),
        );
        cfg.maxclients = fitted as usize;
        shared.set_config(cfg);
    }
}

/// Binds the instance's listener.
pub async fn bind(shared: &Shared) -> std::io::Result<TcpListener> {
    fit_maxclients_to_fd_limit(shared);
    let cfg = shared.config();
    let listener = TcpListener::bind((cfg.bind, cfg.port)).await?;
    let addr = listener.local_addr()?;
    shared.set_local_addr(addr);
    let mut cfg = cfg;
    cfg.port = addr.port();
    shared.set_config(cfg);
    Ok(listener)
}

/// Resolves once shutdown is requested, even if it was requested before the call.
pub async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// Accepts connections until shutdown, on the listener CONFIG SET port last gave (none
/// after port 0); then closes them all.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown_signal();
    let mut connections = JoinSet::new();
    let cron = tokio::spawn(cron::run(shared.clone()));
    let stay_awake = tokio::spawn(stay_awake(shared.clone()));
    let mut listener = Some(listener);
    let mut relistens = shared.accept_relistens();
    loop {
        tokio::select! {
            Some(moved) = relistens.recv() => {
                // The old socket closes here; its connections stay.
                listener = moved.and_then(|l| match TcpListener::from_std(l) {
                    Ok(l) => Some(l),
                    Err(e) => {
                        shared.events.push(EventKind::Error, format!("can't listen: {e}"));
                        None
                    }
                });
                let addr = shared.local_addr();
                let detail = match listener {
                    Some(_) => format!("listening on {addr}"),
                    None => "no longer listening on TCP (port 0)".to_string(),
                };
                shared.events.push(EventKind::Started, detail);
            }
            accepted = accept(listener.as_ref()) => {
                let (stream, addr) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        shared.events.push(EventKind::Error, format!("accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let cfg = shared.config();
                let _ = stream.set_nodelay(true);
                if cfg.limits.tcp_keepalive_secs > 0 {
                    let keepalive = socket2::TcpKeepalive::new()
                        .with_time(Duration::from_secs(cfg.limits.tcp_keepalive_secs));
                    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
                }
                let laddr = stream.local_addr().unwrap_or_else(|_| shared.local_addr());
                if refused_by_protected_mode(&cfg, addr) {
                    shared.stats.reject_connection();
                    connections.spawn(connection::refuse(stream, PROTECTED_MODE_ERROR));
                    continue;
                }
                if shared.connected_clients() >= cfg.maxclients {
                    shared.stats.reject_connection();
                    connections.spawn(connection::refuse(
                        stream,
                        b"-ERR max number of clients reached\r\n",
                    ));
                    continue;
                }
                let info = shared.register_client(addr, laddr);
                connections.spawn(connection::serve(shared.clone(), stream, info));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopping(&mut shutdown) => break,
        }
    }
    shared.stop_relistens();
    cron.abort();
    stay_awake.abort();
    connections.shutdown().await;
    shared.forget_clients();
}

/// The next connection on `listener`; never, without one.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Redis 7.0's answer to a non-loopback client in protected mode.
const PROTECTED_MODE_ERROR: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode as Redis 7.0 has it: with no access keys, only loopback clients are served
/// (which matters once the bind address is not loopback).
fn refused_by_protected_mode(cfg: &InstanceConfig, peer: SocketAddr) -> bool {
    cfg.protected_mode
        && cfg.access_keys().is_empty()
        && !peer.ip().is_loopback()
        && !peer.ip().to_canonical().is_loopback()
}

/// How long the worker keeps polling for requests after the last batch before it sleeps.
const STAY_AWAKE: Duration = Duration::from_micros(200);

/// While commands keep coming, keeps the runtime's worker polling the sockets (by yielding,
/// which makes tokio poll for I/O without sleeping) instead of sleeping in epoll_wait between
/// batches. A client's write to a sleeping server must wake its thread, which costs the client
/// more than the request itself on a busy loopback; a thread that is already awake costs
/// nothing to reach. The poll stops `STAY_AWAKE` after the last batch, so an idle instance
/// sleeps as before: the spin is bounded by traffic.
async fn stay_awake(shared: Arc<Shared>) {
    loop {
        shared.traffic().await;
        let mut seen = shared.stats.total_commands();
        let mut quiet_since = Instant::now();
        loop {
            tokio::task::yield_now().await;
            let commands = shared.stats.total_commands();
            if commands != seen {
                seen = commands;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= STAY_AWAKE {
                break;
            }
        }
    }
}

/// The tokio runtime instances are served on best (the app's and the headless server's).
///
/// Without tokio's LIFO slot, tasks woken together run in the order they were woken, so
/// requests that reach the sockets one after another run in that order, as Redis runs them
/// (the LIFO slot would run the last-woken connection first). The option is one of tokio's
/// unstable ones: `.cargo/config.toml` builds with `--cfg tokio_unstable`.
pub fn runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder
}
