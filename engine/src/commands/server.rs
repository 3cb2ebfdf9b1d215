//! Server commands: COMMAND, INFO, CONFIG, TIME, DEBUG, MEMORY, SHUTDOWN (the save commands
//! are in persistence.rs).

use std::fmt::Write as _;

use super::table::COMMANDS;
use super::{int_arg, is, lookup, lower, CmdError, CmdResult, CommandSpec, Ctx};
use crate::config::{self, human_bytes, ConfigError};
use crate::keyspace::value::heap_size_of;
use crate::keyspace::{Blob, Value};
use crate::persistence::{aof, JobKind, PersistenceMode};
use crate::protocol::Reply;

fn command_info(spec: &CommandSpec) -> Reply {
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Int(i64::from(spec.arity)),
        Reply::Set(
            spec.flags
                .names()
                .chain(spec.movable_keys.map(|_| "movablekeys"))
                .map(Reply::Status)
                .collect(),
        ),
        Reply::Int(i64::from(spec.first_key)),
        Reply::Int(i64::from(spec.last_key)),
        Reply::Int(i64::from(spec.step)),
        Reply::Set(vec![]),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

fn command_docs(spec: &CommandSpec) -> Reply {
    Reply::Map(vec![
        (Reply::bulk("summary"), Reply::bulk(spec.summary)),
        (Reply::bulk("since"), Reply::bulk("1.0.0")),
        (Reply::bulk("group"), Reply::bulk(spec.group)),
        (
            Reply::bulk("arguments"),
            super::docs::arguments(super::docs::hint(spec.name)),
        ),
    ])
}

pub fn command(_ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let Some(sub) = args.get(1).map(|s| lower(s)) else {
        return Ok(Reply::Array(COMMANDS.iter().map(command_info).collect()));
    };
    match sub.as_str() {
        "count" => Ok(Reply::Int(COMMANDS.len() as i64)),
        "list" => Ok(Reply::Array(
            COMMANDS.iter().map(|c| Reply::bulk(c.name)).collect(),
        )),
        "info" => Ok(Reply::Array(if args.len() == 2 {
            COMMANDS.iter().map(command_info).collect()
        } else {
            args[2..]
                .iter()
                .map(|n| lookup(n).map_or(Reply::Null, command_info))
                .collect()
        })),
        "docs" => {
            let specs: Vec<&CommandSpec> = if args.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                args[2..].iter().filter_map(|n| lookup(n)).collect()
            };
            Ok(Reply::Map(
                specs
                    .into_iter()
                    .map(|s| (Reply::bulk(s.name), command_docs(s)))
                    .collect(),
            ))
        }
        "getkeys" if args.len() >= 3 => {
            let spec = super::resolve(&args[2..])?;
            let keys: Vec<Reply> = spec
                .key_positions(&args[2..])
                .into_iter()
                .map(|i| Reply::bulk(args[2 + i]))
                .collect();
            if keys.is_empty() {
                return Err(CmdError::other("The command has no key arguments"));
            }
            Ok(Reply::Array(keys))
        }
        _ => Err(CmdError::other(format!(
            "unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(args[1])
        ))),
    }
}

const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "keyspace",
];

pub fn info(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let requested: Vec<String> = args[1..].iter().map(|a| lower(a)).collect();
    let all = requested.is_empty()
        || requested
            .iter()
            .any(|s| matches!(s.as_str(), "all" | "everything" | "default"));
    let mut out = String::new();
    for section in SECTIONS {
        if all || requested.iter().any(|r| r == section) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            write_section(ctx, section, &mut out);
        }
    }
    Ok(Reply::Verbatim(out))
}

fn write_section(ctx: &mut Ctx, section: &str, out: &mut String) {
    let shared = ctx.shared;
    let stats = &shared.stats;
    let cfg = shared.config();
    let ks = &*ctx.ks;
    let now_ms = crate::util::now_ms();
    let mut w = Lines(out);
    match section {
        "server" => {
            w.header("Server");
            w.line("redis_version", &crate::REDIS_VERSION);
            w.line("cachedesk_version", &env!("CARGO_PKG_VERSION"));
            w.line("redis_git_sha1", &"00000000");
            w.line("redis_git_dirty", &0);
            w.line("redis_mode", &"standalone");
            w.line("os", &std::env::consts::OS);
            w.line("arch_bits", &64);
            w.line("multiplexing_api", &"tokio");
            w.line("process_id", &std::process::id());
            w.line("run_id", &shared.run_id);
            w.line("tcp_port", &shared.local_addr().port());
            w.line("server_time_usec", &crate::util::now_us());
            let uptime = shared.started.elapsed().as_secs();
            w.line("uptime_in_seconds", &uptime);
            w.line("uptime_in_days", &(uptime / 86400));
            w.line("hz", &cfg.hz);
            w.line(
                "executable",
                &std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
            w.line("config_file", &"");
        }
        "clients" => {
            w.header("Clients");
            w.line("connected_clients", &shared.connected_clients());
            w.line("maxclients", &cfg.maxclients);
            w.line("blocked_clients", &stats.blocked_clients());
            w.line("tracking_clients", &ks.tracking.stats().clients);
        }
        "memory" => {
            w.header("Memory");
            let used = ks.used_memory() as u64;
            let peak = stats.note_memory(used);
            w.line("used_memory", &used);
            w.line("used_memory_human", &human_bytes(used));
            w.line("used_memory_rss", &crate::util::rss_bytes(None));
            w.line("used_memory_peak", &peak);
            w.line("used_memory_peak_human", &human_bytes(peak));
            w.line("used_memory_dataset", &used);
            w.line("maxmemory", &ks.config.maxmemory);
            w.line("maxmemory_human", &human_bytes(ks.config.maxmemory));
            w.line("maxmemory_policy", &ks.config.policy.name());
            w.line("mem_not_counted_for_evict", &0);
            w.line("mem_allocator", &"libc");
            w.line(
                "lazyfree_pending_objects",
                &crate::keyspace::lazyfree_pending(),
            );
        }
        "persistence" => {
            w.header("Persistence");
            let st = shared.persistence.status();
            let job = shared.persistence.jobs.running();
            let job_of = |wanted: fn(JobKind) -> bool| job.as_ref().filter(|j| wanted(j.kind));
            let saving = job_of(|k| matches!(k, JobKind::Save(_)));
            let rewriting = job_of(|k| matches!(k, JobKind::Rewrite(_)));
            let loading = job_of(JobKind::loads);
            let capturing = job_of(JobKind::captures);
            let (done, total) = capturing.map_or((0, 0), |j| (j.progress.done, j.progress.total));
            let perc = if total > 0 {
                done as f64 * 100.0 / total as f64
            } else {
                0.0
            };
            let secs = |d: Option<std::time::Duration>| d.map_or(-1, |d| d.as_secs() as i64);
            let restore = st.last_restore.as_ref();
            w.line("loading", &u8::from(loading.is_some()));
            w.line("async_loading", &0);
            w.line("current_cow_peak", &0);
            w.line("current_cow_size", &0);
            w.line("current_cow_size_age", &0);
            w.line("current_fork_perc", &format!("{perc:.2}"));
            w.line("current_save_keys_processed", &done);
            w.line("current_save_keys_total", &total);
            w.line("rdb_changes_since_last_save", &ks.dirty);
            w.line("rdb_bgsave_in_progress", &u8::from(saving.is_some()));
            w.line("rdb_last_save_time", &st.last_save_unix_secs);
            w.line(
                "rdb_last_bgsave_status",
                &if st.last_save_ok { "ok" } else { "err" },
            );
            w.line("rdb_last_bgsave_time_sec", &secs(st.last_duration));
            w.line(
                "rdb_current_bgsave_time_sec",
                &secs(saving.map(|r| r.started.elapsed())),
            );
            w.line("rdb_saves", &st.saves);
            w.line("rdb_last_cow_size", &0);
            w.line(
                "rdb_last_load_keys_expired",
                &restore.map_or(0, |r| r.keys_expired),
            );
            w.line(
                "rdb_last_load_keys_loaded",
                &restore.map_or(0, |r| r.keys_loaded),
            );
            let aof = &st.aof;
            let figures = aof::figures(ctx.shared);
            w.line("aof_enabled", &u8::from(figures.is_some()));
            w.line("aof_rewrite_in_progress", &u8::from(rewriting.is_some()));
            w.line("aof_rewrite_scheduled", &u8::from(aof.scheduled));
            w.line(
                "aof_last_rewrite_time_sec",
                &secs(aof.last_rewrite.as_ref().map(|r| r.duration)),
            );
            w.line(
                "aof_current_rewrite_time_sec",
                &secs(rewriting.map(|r| r.started.elapsed())),
            );
            let rewrite_ok = aof.last_rewrite.as_ref().is_none_or(|r| r.error.is_none());
            w.line(
                "aof_last_bgrewrite_status",
                &if rewrite_ok { "ok" } else { "err" },
            );
            w.line("aof_rewrites", &aof.rewrites);
            w.line("aof_rewrites_consecutive_failures", &aof.failures_in_a_row);
            let write_ok = figures.as_ref().is_none_or(|f| f.write_error.is_none());
            w.line(
                "aof_last_write_status",
                &if write_ok { "ok" } else { "err" },
            );
            w.line("aof_last_cow_size", &0);
            w.line("module_fork_in_progress", &0);
            w.line("module_fork_last_cow_size", &0);
            if let Some(f) = &figures {
                w.line("aof_current_size", &f.current_size);
                w.line("aof_base_size", &f.base_size);
                w.line("aof_pending_rewrite", &u8::from(aof.scheduled));
                w.line("aof_buffer_length", &f.buffer_length);
                w.line("aof_pending_bio_fsync", &u8::from(f.fsync_running));
                w.line("aof_delayed_fsync", &f.delayed_fsyncs);
            }
            if let Some(load) = loading {
                w.line("loading_start_time", &load.started_unix_secs());
                w.line("loading_total_bytes", &load.progress.total);
                w.line("loading_rdb_used_mem", &0);
                w.line("loading_loaded_bytes", &load.progress.done);
                w.line("loading_loaded_perc", &format!("{:.2}", load.percent()));
                w.line("loading_eta_seconds", &load.eta_secs());
            }
        }
        "stats" => {
            w.header("Stats");
            w.line("total_connections_received", &stats.connections_received());
            w.line("total_commands_processed", &stats.total_commands());
            w.line("instantaneous_ops_per_sec", &stats.ops_per_sec());
            w.line("total_net_input_bytes", &stats.net_input());
            w.line("total_net_output_bytes", &stats.net_output());
            w.line("rejected_connections", &stats.rejected_connections());
            w.line("expired_keys", &ks.stats.expired_keys);
            w.line(
                "expired_stale_perc",
                &format!("{:.2}", ks.stats.expired_stale_perc * 100.0),
            );
            w.line("evicted_keys", &ks.stats.evicted_keys);
            w.line("evicted_clients", &stats.evicted_clients());
            w.line("keyspace_hits", &ks.stats.keyspace_hits);
            w.line("keyspace_misses", &ks.stats.keyspace_misses);
            let hub = ctx.shared.pubsub.lock().stats();
            w.line("pubsub_channels", &hub.channels);
            w.line("pubsub_patterns", &hub.patterns);
            w.line("pubsubshard_channels", &hub.shard_channels);
            let tracking = ks.tracking.stats();
            w.line("tracking_total_keys", &tracking.keys);
            w.line("tracking_total_items", &tracking.items);
            w.line("tracking_total_prefixes", &tracking.prefixes);
        }
        _ => {
            w.header("Keyspace");
            for (i, db) in ks.dbs.iter().enumerate().filter(|(_, d)| !d.is_empty()) {
                let avg_ttl = average_ttl(&db.expires, now_ms);
                w.line(
                    &format!("db{i}"),
                    &format!(
                        "keys={},expires={},avg_ttl={avg_ttl}",
                        db.len(),
                        db.expires.len()
                    ),
                );
            }
        }
    }
}

/// Writes INFO's `# Section` headers and `field:value` lines.
struct Lines<'a>(&'a mut String);

impl Lines<'_> {
    fn header(&mut self, title: &str) {
        let _ = write!(self.0, "# {title}\r\n");
    }
    fn line(&mut self, field: &str, value: &dyn std::fmt::Display) {
        let _ = write!(self.0, "{field}:{value}\r\n");
    }
}

/// Mean remaining TTL of up to 100 sampled volatile keys, in ms.
fn average_ttl(expires: &crate::keyspace::Dict<u64>, now_ms: u64) -> u64 {
    let sample: Vec<u64> = expires
        .iter()
        .take(100)
        .map(|(_, &at)| at.saturating_sub(now_ms))
        .collect();
    if sample.is_empty() {
        0
    } else {
        sample.iter().sum::<u64>() / sample.len() as u64
    }
}

pub fn config(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = lower(args[1]);
    match sub.as_str() {
        "get" if args.len() >= 3 => {
            let cfg = ctx.shared.config();
            // As Redis 7.0: a name without pattern characters answers under the name as
            // typed; a pattern answers every parameter (aliases too, hidden ones never) it
            // matches, once each.
            let mut matched: Vec<(String, &str)> = Vec::new();
            for pattern in &args[2..] {
                let exact = !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
                let hidden = if exact { config::HIDDEN } else { &[] };
                for name in config::PARAMETERS.iter().chain(hidden) {
                    let hit = if exact {
                        pattern.eq_ignore_ascii_case(name.as_bytes())
                    } else {
                        crate::util::glob_match(pattern, name.as_bytes(), true)
                    };
                    if !hit {
                        continue;
                    }
                    let shown = if exact {
                        String::from_utf8_lossy(pattern).into_owned()
                    } else {
                        name.to_string()
                    };
                    if !matched.iter().any(|(s, _)| *s == shown) {
                        matched.push((shown, name));
                    }
                }
            }
            let mut pairs = Vec::new();
            for (shown, name) in matched {
                if let Some(mut v) = config::get(name, &cfg, &ctx.ks.config) {
                    // The primary key is shown only to a client that knows it (or that needed
                    // no key): a secondary-key session never learns it.
                    let primary_hidden = name == "requirepass"
                        && !(ctx.client.info.authenticated_with(&v)
                            || cfg.access_keys().is_empty());
                    if primary_hidden {
                        v.clear();
                    }
                    pairs.push((Reply::bulk(shown), Reply::bulk(v)));
                }
            }
            Ok(Reply::Map(pairs))
        }
        "set" if args.len() >= 4 && args.len().is_multiple_of(2) => {
            let mut cfg = ctx.shared.config();
            let mut ks_cfg = ctx.ks.config.clone();
            let mut seen = Vec::new();
            for pair in args[2..].chunks(2) {
                let name = lower(pair[0]);
                let value = String::from_utf8_lossy(pair[1]);
                // By the name given: an alias and its name do not count as one.
                if seen.contains(&name) {
                    return Err(CmdError::other(format!(
                        "CONFIG SET failed (possibly related to argument '{}') - duplicate parameter",
                        String::from_utf8_lossy(pair[0])
                    )));
                }
                seen.push(name.clone());
                if config::PROTECTED.contains(&name.as_str()) {
                    // As Redis 7.0 with enable-protected-configs off: set them at start.
                    return Err(CmdError::other(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"
                    )));
                }
                config::set(&name, &value, &mut cfg, &mut ks_cfg).map_err(|e| match e {
                    ConfigError::Unknown(_) | ConfigError::Invalid(..) => {
                        CmdError::other(e.to_string())
                    }
                })?;
            }
            // The one setting applied outside the settings: all or nothing, so before any
            // is kept (a port that is taken leaves every setting as it was).
            let old = ctx.shared.config();
            if cfg.port != old.port {
                cfg.port = ctx
                    .shared
                    .relisten(cfg.bind, cfg.port)
                    .map_err(|e| {
                        CmdError::other(format!(
                            "CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port: {e}"
                        ))
                    })?
                    .port();
            }
            let old_mode = old.persistence;
            let was_aof = old_mode == PersistenceMode::Aof;
            let is_aof = cfg.persistence == PersistenceMode::Aof;
            ctx.ks.config = ks_cfg;
            ctx.shared.set_config(cfg);
            if let Some(app) = ctx.shared.persistence.aof.lock().as_mut() {
                app.fsync = ctx.shared.config().appendfsync;
            }
            match (was_aof, is_aof) {
                (false, true) => {
                    let shared = ctx
                        .shared
                        .handle()
                        .ok_or_else(|| CmdError::other("the instance is stopping"))?;
                    if let Err(e) = aof::create(&shared, ctx.ks) {
                        let mut cfg = ctx.shared.config();
                        cfg.persistence = old_mode;
                        ctx.shared.set_config(cfg);
                        return Err(CmdError::other(format!("Unable to turn on AOF: {e}")));
                    }
                }
                (true, false) => aof::stop(ctx.shared, ctx.ks),
                _ => {}
            }
            // A lower limit applies at once, as Redis evicts when maxmemory is set.
            if ctx.ks.config.maxmemory > 0 {
                ctx.ks.evict_to_limit();
            }
            Ok(Reply::OK)
        }
        "resetstat" if args.len() == 2 => {
            ctx.shared.stats.reset();
            let expired_stale = ctx.ks.stats.expired_stale_perc;
            ctx.ks.stats = Default::default();
            ctx.ks.stats.expired_stale_perc = expired_stale;
            Ok(Reply::OK)
        }
        "rewrite" if args.len() == 2 => Err(CmdError::other(
            "The server is running without a config file",
        )),
        "get" | "set" | "resetstat" | "rewrite" => Err(CmdError::Arity(format!("config|{sub}"))),
        "help" => Ok(Reply::Array(
            [
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::StatusOwned((*l).into()))
            .collect(),
        )),
        _ => Err(CmdError::other(format!(
            "unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(args[1])
        ))),
    }
}

pub fn time(_ctx: &mut Ctx, _args: &[&[u8]]) -> CmdResult {
    let us = crate::util::now_us();
    Ok(Reply::Array(vec![
        Reply::bulk((us / 1_000_000).to_string()),
        Reply::bulk((us % 1_000_000).to_string()),
    ]))
}

pub fn debug(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = lower(args[1]);
    match sub.as_str() {
        "sleep" if args.len() == 3 => {
            let secs = crate::util::parse_f64(args[2])
                .filter(|s| *s >= 0.0 && s.is_finite())
                .ok_or(CmdError::NotFloat)?;
            // The connection waits without holding the keyspace or its thread, as a blocked
            // client does, so other instances and the app never wait with it.
            let deadline = match ctx.client.block_deadline {
                Some(Some(known)) => known,
                _ => {
                    let at = ctx.ks.now.saturating_add((secs * 1000.0) as u64);
                    ctx.client.block_deadline = Some(Some(at));
                    at
                }
            };
            if ctx.ks.now < deadline && !ctx.client.in_exec {
                ctx.block = Some(super::BlockRequest {
                    deadline_ms: Some(deadline),
                    ..Default::default()
                });
            }
            Ok(Reply::OK)
        }
        "populate" if (3..=5).contains(&args.len()) => {
            let count = int_arg(args[2])?;
            if count < 0 {
                return Err(CmdError::other("count can't be negative"));
            }
            let prefix = args.get(3).map_or(&b"key"[..], |p| &p[..]);
            let max_size = ctx.shared.config().limits.proto_max_bulk_len;
            let size = args
                .get(4)
                .map(|s| int_arg(s))
                .transpose()?
                .map(|s| {
                    u64::try_from(s)
                        .ok()
                        .filter(|&s| s <= max_size)
                        .map(|s| s as usize)
                        .ok_or_else(|| {
                            CmdError::other("value size is out of range (proto-max-bulk-len)")
                        })
                })
                .transpose()?;
            let db = ctx.db();
            let maxmemory = ctx.ks.config.maxmemory;
            for i in 0..count {
                // Keys cost memory a client picks: stop at maxmemory, as writes do.
                if maxmemory > 0 && ctx.ks.used_memory() as u64 > maxmemory {
                    return Err(CmdError::Oom);
                }
                let key = [prefix, b":", i.to_string().as_bytes()].concat();
                if ctx.ks.contains(db, &key) {
                    continue;
                }
                let mut value = Blob::from_slice(format!("value:{i}").as_bytes());
                if let Some(size) = size {
                    value.resize(size, 0);
                }
                ctx.ks.set(db, &key, Value::Str(value));
            }
            Ok(Reply::OK)
        }
        "set-active-expire" if args.len() == 3 => {
            ctx.shared.set_active_expire(int_arg(args[2])? != 0);
            Ok(Reply::OK)
        }
        _ => Err(CmdError::other(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(args[1])
        ))),
    }
}

pub fn memory(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    let sub = lower(args[1]);
    match sub.as_str() {
        "usage" if args.len() == 3 || (args.len() == 5 && is(args[3], "SAMPLES")) => {
            let db = ctx.db();
            Ok(match ctx.ks.peek(db, args[2]) {
                None => Reply::Null,
                Some(e) => {
                    let node = crate::keyspace::dict::node_alloc_size::<crate::keyspace::Entry>();
                    Reply::Int(
                        (node + 8 + heap_size_of(&Blob::from_slice(args[2])) + e.value.heap_size())
                            as i64,
                    )
                }
            })
        }
        "usage" => Err(CmdError::Syntax),
        _ => Err(CmdError::other(format!(
            "unknown subcommand '{}'. Try MEMORY HELP.",
            String::from_utf8_lossy(args[1])
        ))),
    }
}

pub fn shutdown(ctx: &mut Ctx, args: &[&[u8]]) -> CmdResult {
    for a in &args[1..] {
        if !(is(a, "NOSAVE") || is(a, "SAVE") || is(a, "NOW") || is(a, "FORCE") || is(a, "ABORT")) {
            return Err(CmdError::Syntax);
        }
    }
    let save = if args[1..].iter().any(|a| is(a, "NOSAVE")) {
        Some(false)
    } else if args[1..].iter().any(|a| is(a, "SAVE")) {
        Some(true)
    } else {
        None
    };
    ctx.shared.persistence.update(|st| st.shutdown_save = save);
    ctx.shared.request_shutdown();
    ctx.client.close_after_reply = true;
    Ok(Reply::OK)
}
