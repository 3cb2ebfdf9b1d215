//! An instance's settings: what it is started with (`InstanceConfig`) and the CONFIG GET/SET
//! view of every setting the engine has, with Redis's names, units and error texts.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::keyspace::{EncodingLimits, EvictionPolicy, KeyspaceConfig};
use crate::persistence::schedule::{parse_frequency, parse_save_points};
use crate::persistence::{AppendFsync, PersistenceMode, RdbSchedule};

/// How an instance is started. Runtime changes go through CONFIG SET or the Instance API.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    /// A name for logs and telemetry.
    pub name: String,
    pub bind: IpAddr,
    /// 0 picks any free port.
    pub port: u16,
    /// Where the instance keeps its files.
    pub dir: PathBuf,
    /// The dump's file name in `dir`.
    pub dbfilename: String,
    pub persistence: PersistenceMode,
    /// The AOF's directory inside `dir`, and the prefix of its file names.
    pub appenddirname: String,
    pub appendfilename: String,
    pub appendfsync: AppendFsync,
    /// Automatic rewrite: when the AOF has grown this many percent over its base (0: never)
    /// and is larger than `auto_aof_rewrite_min_size` bytes.
    pub auto_aof_rewrite_percentage: u64,
    pub auto_aof_rewrite_min_size: u64,
    /// `repl-backlog-size`: what a replication backlog would keep (allocated, as in Redis,
    /// only once a replica attaches; none can here yet).
    pub repl_backlog_size: u64,
    pub maxmemory: u64,
    pub maxmemory_policy: EvictionPolicy,
    pub maxmemory_samples: usize,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u64,
    /// `notify-keyspace-events`, as class bits (keyspace::notify); 0: none.
    pub notify_keyspace_events: u32,
    /// `tracking-table-max-keys`: the most keys CLIENT TRACKING remembers (0: no limit).
    pub tracking_table_max_keys: usize,
    /// The encoding settings (hash-max-listpack-entries and the rest).
    pub encodings: EncodingLimits,
    /// Access keys: when either is set, clients must AUTH with one of them.
    pub primary_key: Option<String>,
    pub secondary_key: Option<String>,
    pub maxclients: usize,
    /// busy-reply-threshold (alias lua-time-limit): how long a script runs before other
    /// clients get -BUSY and SCRIPT KILL may stop it, in ms (0: never).
    pub busy_reply_threshold_ms: u64,
    /// Background task frequency (active expiry, statistics), as Redis's hz.
    pub hz: u32,
    /// The client limits Redis has, under its names and defaults.
    pub limits: ClientLimits,
    /// With no access keys and a non-loopback bind, serve loopback clients only.
    pub protected_mode: bool,
    /// Redis's hidden `key-load-delay`, for watching a load: microseconds to wait after each
    /// key read from a dump (negative -n: 1 µs after one key in n, on average).
    pub key_load_delay: i32,
}

/// Redis's per-client limits: what one client may make the instance hold or wait for.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientLimits {
    /// `client-query-buffer-limit`: unparsed input, or queued MULTI commands, beyond this
    /// closes the client.
    pub query_buffer: u64,
    /// `proto-max-bulk-len`: the longest bulk argument a request may carry.
    pub proto_max_bulk_len: u64,
    /// `client-output-buffer-limit`, per client class.
    pub output: [OutputLimit; 3],
    /// `timeout`: idle seconds before a client is closed (0: never).
    pub timeout_secs: u64,
    /// `tcp-keepalive`: seconds between TCP keepalive probes (0: off).
    pub tcp_keepalive_secs: u64,
    /// `maxmemory-clients`: what all clients together may hold before the biggest are closed.
    pub maxmemory_clients: MaxmemoryClients,
}

/// `maxmemory-clients`, Redis 7.0's client eviction: a size in bytes, or a percentage of
/// maxmemory (off while maxmemory is 0); 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxmemoryClients {
    #[default]
    Off,
    Bytes(u64),
    Percent(u64),
}

/// The least `maxmemory-clients` allows, so a small setting never locks every client out.
const MIN_CLIENT_EVICTION_LIMIT: u64 = 128 * 1024;

impl MaxmemoryClients {
    /// The clients' memory limit in bytes given `maxmemory` (None: no limit).
    pub fn limit(self, maxmemory: u64) -> Option<u64> {
        let bytes = match self {
            MaxmemoryClients::Off => return None,
            MaxmemoryClients::Bytes(n) => n,
            MaxmemoryClients::Percent(_) if maxmemory == 0 => return None,
            MaxmemoryClients::Percent(p) => (maxmemory as f64 * p as f64 / 100.0) as u64,
        };
        Some(bytes.max(MIN_CLIENT_EVICTION_LIMIT))
    }

    /// Parses CONFIG SET's value as Redis does: a memory amount, else `<n>%` up to 100%.
    fn parse(text: &str) -> Result<Self, &'static str> {
        if let Some(n) = parse_memory(text).filter(|&n| n <= i64::MAX as u64) {
            return Ok(if n == 0 {
                MaxmemoryClients::Off
            } else {
                MaxmemoryClients::Bytes(n)
            });
        }
        let percent = text
            .strip_suffix('%')
            .filter(|digits| !digits.is_empty())
            .and_then(|digits| digits.parse::<i64>().ok())
            .and_then(|p| u64::try_from(p).ok())
            .ok_or("argument must be a memory or percent value")?;
        match percent {
            0 => Ok(MaxmemoryClients::Off),
            1..=100 => Ok(MaxmemoryClients::Percent(percent)),
            _ => Err("percentage argument must be less or equal to 100"),
        }
    }

    fn text(self) -> String {
        match self {
            MaxmemoryClients::Off => "0".to_string(),
            MaxmemoryClients::Bytes(n) => n.to_string(),
            MaxmemoryClients::Percent(p) => format!("{p}%"),
        }
    }
}

/// The client classes of `client-output-buffer-limit`, in Redis's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientClass {
    Normal = 0,
    Replica = 1,
    PubSub = 2,
}

impl ClientClass {
    const NAMES: [&'static str; 3] = ["normal", "slave", "pubsub"];

    fn from_name(name: &str) -> Option<ClientClass> {
        match name.to_ascii_lowercase().as_str() {
            "normal" => Some(ClientClass::Normal),
            "slave" | "replica" => Some(ClientClass::Replica),
            "pubsub" => Some(ClientClass::PubSub),
            _ => None,
        }
    }
}

/// One class's output limit: closed at once past `hard` bytes, or after staying past `soft`
/// bytes for more than `soft_secs` seconds (0 bytes: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        const MB: u64 = 1024 * 1024;
        ClientLimits {
            query_buffer: 1024 * MB,
            proto_max_bulk_len: 512 * MB,
            output: [
                OutputLimit {
                    hard: 0,
                    soft: 0,
                    soft_secs: 0,
                },
                OutputLimit {
                    hard: 256 * MB,
                    soft: 64 * MB,
                    soft_secs: 60,
                },
                OutputLimit {
                    hard: 32 * MB,
                    soft: 8 * MB,
                    soft_secs: 60,
                },
            ],
            timeout_secs: 0,
            tcp_keepalive_secs: 300,
            maxmemory_clients: MaxmemoryClients::Off,
        }
    }
}

impl ClientLimits {
    /// CONFIG GET's text of `client-output-buffer-limit`.
    fn output_text(&self) -> String {
        self.output
            .iter()
            .zip(ClientClass::NAMES)
            .map(|(l, name)| format!("{name} {} {} {}", l.hard, l.soft, l.soft_secs))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Applies `client-output-buffer-limit` text: `<class> <hard> <soft> <seconds>`, any
    /// number of times; all or nothing, with Redis's error texts.
    fn set_output(&mut self, value: &str) -> Result<(), &'static str> {
        let words: Vec<&str> = value.split_whitespace().collect();
        if !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.");
        }
        let mut output = self.output;
        for group in words.chunks(4) {
            let class = ClientClass::from_name(group[0])
                .ok_or("Invalid client class specified in buffer limit configuration.")?;
            let bad = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            output[class as usize] = OutputLimit {
                hard: parse_memory(group[1]).ok_or(bad)?,
                soft: parse_memory(group[2]).ok_or(bad)?,
                soft_secs: group[3].parse().map_err(|_| bad)?,
            };
        }
        self.output = output;
        Ok(())
    }
}

impl Default for InstanceConfig {
    fn default() -> Self {
        InstanceConfig {
            name: "cache".into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            dir: PathBuf::from("."),
            dbfilename: "dump.rdb".into(),
            persistence: PersistenceMode::Disabled,
            appenddirname: "appendonlydir".into(),
            appendfilename: "appendonly.aof".into(),
            appendfsync: AppendFsync::EverySec,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            repl_backlog_size: 1024 * 1024,
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::NoEviction,
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            notify_keyspace_events: 0,
            tracking_table_max_keys: 1_000_000,
            encodings: EncodingLimits::default(),
            primary_key: None,
            secondary_key: None,
            maxclients: 10_000,
            busy_reply_threshold_ms: 5000,
            hz: 10,
            limits: ClientLimits::default(),
            protected_mode: true,
            key_load_delay: 0,
        }
    }
}

impl InstanceConfig {
    pub fn keyspace_config(&self) -> KeyspaceConfig {
        KeyspaceConfig {
            maxmemory: self.maxmemory,
            policy: self.maxmemory_policy,
            maxmemory_samples: self.maxmemory_samples,
            lfu_log_factor: self.lfu_log_factor,
            lfu_decay_time: self.lfu_decay_time,
            notify_flags: self.notify_keyspace_events,
            tracking_table_max_keys: self.tracking_table_max_keys,
            encodings: self.encodings.clone(),
            max_string: usize::try_from(self.limits.proto_max_bulk_len).unwrap_or(usize::MAX),
        }
    }

    /// The keys AUTH accepts.
    pub fn access_keys(&self) -> Vec<String> {
        self.primary_key
            .iter()
            .chain(&self.secondary_key)
            .filter(|k| !k.is_empty())
            .cloned()
            .collect()
    }
}

/// Every parameter CONFIG GET knows, in the order it lists them.
pub const PARAMETERS: &[&str] = &[
    "bind",
    "port",
    "dir",
    "databases",
    "daemonize",
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "maxmemory-clients",
    "lfu-log-factor",
    "lfu-decay-time",
    "requirepass",
    "maxclients",
    "hz",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "client-output-buffer-limit",
    "timeout",
    "tcp-keepalive",
    "protected-mode",
    "hash-max-listpack-entries",
    "hash-max-ziplist-entries",
    "hash-max-listpack-value",
    "hash-max-ziplist-value",
    "set-max-intset-entries",
    "zset-max-listpack-entries",
    "zset-max-ziplist-entries",
    "zset-max-listpack-value",
    "zset-max-ziplist-value",
    "list-max-listpack-size",
    "list-max-ziplist-size",
    "list-compress-depth",
    "hll-sparse-max-bytes",
    "stream-node-max-bytes",
    "stream-node-max-entries",
    "busy-reply-threshold",
    "lua-time-limit",
    "save",
    "rdb-frequency",
    "dbfilename",
    "rdbcompression",
    "rdbchecksum",
    "appendonly",
    "appendfsync",
    "appenddirname",
    "appendfilename",
    "auto-aof-rewrite-percentage",
    "auto-aof-rewrite-min-size",
    "repl-backlog-size",
    "notify-keyspace-events",
    "tracking-table-max-keys",
    "replicaof",
    "slaveof",
];

/// Parameters CONFIG GET shows only when asked for by name, never for a pattern (Redis's
/// HIDDEN_CONFIG debugging settings).
pub const HIDDEN: &[&str] = &["key-load-delay"];

/// Parameters Redis 7.0 itself never changes at run time.
const IMMUTABLE: &[&str] = &["databases", "daemonize", "replicaof"];

/// The name a Redis 7.0 alias stands for (the encoding settings' *-ziplist-* names).
pub fn canonical(name: &str) -> &str {
    match name {
        "hash-max-ziplist-entries" => "hash-max-listpack-entries",
        "hash-max-ziplist-value" => "hash-max-listpack-value",
        "zset-max-ziplist-entries" => "zset-max-listpack-entries",
        "zset-max-ziplist-value" => "zset-max-listpack-value",
        "lua-time-limit" => "busy-reply-threshold",
        "list-max-ziplist-size" => "list-max-listpack-size",
        "slaveof" => "replicaof",
        other => other,
    }
}

/// Parameters CONFIG SET refuses at run time, as Redis 7.0 does by default
/// (enable-protected-configs no); they are set when the instance starts.
pub const PROTECTED: &[&str] = &["dir", "dbfilename"];

/// Why CONFIG SET refused a value (Redis words the reason after the parameter name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    #[error("CONFIG SET failed (possibly related to argument '{0}') - {1}")]
    Invalid(String, String),
}

/// The current value of a parameter.
pub fn get(name: &str, cfg: &InstanceConfig, ks: &KeyspaceConfig) -> Option<String> {
    let encodings = &ks.encodings;
    Some(match canonical(name) {
        "bind" => cfg.bind.to_string(),
        "port" => cfg.port.to_string(),
        "dir" => cfg.dir.display().to_string(),
        "databases" => crate::keyspace::DB_COUNT.to_string(),
        "daemonize" => "no".to_string(),
        "maxmemory" => ks.maxmemory.to_string(),
        "maxmemory-policy" => ks.policy.name().to_string(),
        "maxmemory-samples" => ks.maxmemory_samples.to_string(),
        "lfu-log-factor" => ks.lfu_log_factor.to_string(),
        "lfu-decay-time" => ks.lfu_decay_time.to_string(),
        "requirepass" => cfg.primary_key.clone().unwrap_or_default(),
        "maxclients" => cfg.maxclients.to_string(),
        "hz" => cfg.hz.to_string(),
        "busy-reply-threshold" => cfg.busy_reply_threshold_ms.to_string(),
        "proto-max-bulk-len" => cfg.limits.proto_max_bulk_len.to_string(),
        "client-query-buffer-limit" => cfg.limits.query_buffer.to_string(),
        "client-output-buffer-limit" => cfg.limits.output_text(),
        "timeout" => cfg.limits.timeout_secs.to_string(),
        "tcp-keepalive" => cfg.limits.tcp_keepalive_secs.to_string(),
        "protected-mode" => if cfg.protected_mode { "yes" } else { "no" }.to_string(),
        "hash-max-listpack-entries" => encodings.hash_entries.to_string(),
        "hash-max-listpack-value" => encodings.hash_value.to_string(),
        "zset-max-listpack-entries" => encodings.zset_entries.to_string(),
        "zset-max-listpack-value" => encodings.zset_value.to_string(),
        "set-max-intset-entries" => encodings.intset_entries.to_string(),
        "hll-sparse-max-bytes" => encodings.hll_sparse_max_bytes.to_string(),
        "stream-node-max-bytes" => encodings.stream_node_max_bytes.to_string(),
        "stream-node-max-entries" => encodings.stream_node_max_entries.to_string(),
        "list-max-listpack-size" => encodings.list_node_size.to_string(),
        "list-compress-depth" => encodings.list_compress_depth.to_string(),
        "save" => match &cfg.persistence {
            PersistenceMode::Rdb(schedule) => schedule.save_points_text(),
            PersistenceMode::Disabled | PersistenceMode::Aof => String::new(),
        },
        "rdb-frequency" => match &cfg.persistence {
            PersistenceMode::Rdb(RdbSchedule {
                frequency: Some(f), ..
            }) => f.as_secs().to_string(),
            _ => "0".to_string(),
        },
        "dbfilename" => cfg.dbfilename.clone(),
        "rdbcompression" | "rdbchecksum" => "yes".to_string(),
        "appendonly" => if cfg.persistence == PersistenceMode::Aof {
            "yes"
        } else {
            "no"
        }
        .to_string(),
        "appendfsync" => cfg.appendfsync.name().to_string(),
        "appenddirname" => cfg.appenddirname.clone(),
        "appendfilename" => cfg.appendfilename.clone(),
        "auto-aof-rewrite-percentage" => cfg.auto_aof_rewrite_percentage.to_string(),
        "auto-aof-rewrite-min-size" => cfg.auto_aof_rewrite_min_size.to_string(),
        "repl-backlog-size" => cfg.repl_backlog_size.to_string(),
        "notify-keyspace-events" => crate::keyspace::notify::flags_text(ks.notify_flags),
        "tracking-table-max-keys" => ks.tracking_table_max_keys.to_string(),
        "maxmemory-clients" => cfg.limits.maxmemory_clients.text(),
        "key-load-delay" => cfg.key_load_delay.to_string(),
        // An instance here is always a primary: Redis shows an empty value then.
        "replicaof" => String::new(),
        _ => return None,
    })
}

/// Applies one CONFIG SET.
pub fn set(
    name: &str,
    value: &str,
    cfg: &mut InstanceConfig,
    ks: &mut KeyspaceConfig,
) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid(name.to_string(), reason.to_string());
    let number = |max: u64| -> Result<u64, ConfigError> {
        value
            .parse::<u64>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| invalid("argument couldn't be parsed into an integer"))
    };
    let both_on =
        || invalid("RDB snapshots and AOF can't both be on; turn AOF off first (appendonly no)");
    // The encoding settings, as Redis 7.0 bounds them: sizes up to LONG_MAX (the *-value ones
    // also in memory units), the list node size any int, the compress depth a non-negative int.
    let size = || -> Result<usize, ConfigError> {
        let n = value
            .parse::<i128>()
            .map_err(|_| invalid("argument couldn't be parsed into an integer"))?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n as u64 <= i64::MAX as u64)
            .ok_or_else(|| invalid("argument must be between 0 and 9223372036854775807 inclusive"))
    };
    let memory_size = || -> Result<usize, ConfigError> {
        parse_memory(value)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| invalid("argument must be a memory value"))
    };
    let encodings = &mut ks.encodings;
    match canonical(name) {
        "hash-max-listpack-entries" => encodings.hash_entries = size()?,
        "hash-max-listpack-value" => encodings.hash_value = memory_size()?,
        "zset-max-listpack-entries" => encodings.zset_entries = size()?,
        "zset-max-listpack-value" => encodings.zset_value = memory_size()?,
        "set-max-intset-entries" => encodings.intset_entries = size()?,
        "hll-sparse-max-bytes" => encodings.hll_sparse_max_bytes = memory_size()?,
        "stream-node-max-bytes" => encodings.stream_node_max_bytes = memory_size()?,
        "stream-node-max-entries" => encodings.stream_node_max_entries = size()?,
        "list-max-listpack-size" => {
            encodings.list_node_size = value
                .parse::<i32>()
                .map_err(|_| invalid("argument couldn't be parsed into an integer"))?
                .into();
        }
        "list-compress-depth" => {
            let n = value
                .parse::<i64>()
                .map_err(|_| invalid("argument couldn't be parsed into an integer"))?;
            encodings.list_compress_depth = u64::try_from(n)
                .ok()
                .filter(|&n| n <= i32::MAX as u64)
                .ok_or_else(|| invalid("argument must be between 0 and 2147483647 inclusive"))?;
        }
        "maxmemory" => {
            ks.maxmemory =
                parse_memory(value).ok_or_else(|| invalid("argument must be a memory value"))?;
            cfg.maxmemory = ks.maxmemory;
        }
        "maxmemory-policy" => {
            ks.policy = EvictionPolicy::from_name(value).ok_or_else(|| invalid("argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"))?;
            cfg.maxmemory_policy = ks.policy;
        }
        "maxmemory-samples" => {
            let n = number(64)?;
            if n == 0 {
                return Err(invalid("argument must be between 1 and 64 inclusive"));
            }
            ks.maxmemory_samples = n as usize;
            cfg.maxmemory_samples = n as usize;
        }
        "lfu-log-factor" => {
            ks.lfu_log_factor = number(u64::from(u32::MAX))? as u32;
            cfg.lfu_log_factor = ks.lfu_log_factor;
        }
        "lfu-decay-time" => {
            ks.lfu_decay_time = number(u64::MAX)?;
            cfg.lfu_decay_time = ks.lfu_decay_time;
        }
        "notify-keyspace-events" => {
            ks.notify_flags = crate::keyspace::notify::parse_flags(value)
                .ok_or_else(|| invalid("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."))?;
            cfg.notify_keyspace_events = ks.notify_flags;
        }
        "tracking-table-max-keys" => {
            let n = value
                .parse::<i64>()
                .map_err(|_| invalid("argument couldn't be parsed into an integer"))?;
            ks.tracking_table_max_keys = usize::try_from(n).map_err(|_| {
                invalid("argument must be between 0 and 9223372036854775807 inclusive")
            })?;
            cfg.tracking_table_max_keys = ks.tracking_table_max_keys;
        }
        "requirepass" => cfg.primary_key = (!value.is_empty()).then(|| value.to_string()),
        "maxclients" => {
            let n = number(u64::from(u32::MAX))?;
            if n == 0 {
                return Err(invalid(
                    "argument must be between 1 and 4294967295 inclusive",
                ));
            }
            cfg.maxclients = n as usize;
        }
        "proto-max-bulk-len" | "client-query-buffer-limit" => {
            let n =
                parse_memory(value).ok_or_else(|| invalid("argument must be a memory value"))?;
            if !(1024 * 1024..=i64::MAX as u64).contains(&n) {
                return Err(invalid(
                    "argument must be between 1048576 and 9223372036854775807 inclusive",
                ));
            }
            if name == "proto-max-bulk-len" {
                cfg.limits.proto_max_bulk_len = n;
                ks.max_string = usize::try_from(n).unwrap_or(usize::MAX);
            } else {
                cfg.limits.query_buffer = n;
            }
        }
        "client-output-buffer-limit" => {
            cfg.limits.set_output(value).map_err(invalid)?;
        }
        "maxmemory-clients" => {
            cfg.limits.maxmemory_clients = MaxmemoryClients::parse(value).map_err(invalid)?;
        }
        "key-load-delay" => {
            let n = value
                .parse::<i64>()
                .map_err(|_| invalid("argument couldn't be parsed into an integer"))?;
            cfg.key_load_delay = i32::try_from(n).map_err(|_| {
                invalid("argument must be between -2147483648 and 2147483647 inclusive")
            })?;
        }
        // Applied by CONFIG SET, which moves the listener (see `Shared::rebind`).
        "port" => {
            cfg.port = value
                .parse::<i64>()
                .map_err(|_| invalid("argument couldn't be parsed into an integer"))
                .and_then(|n| {
                    u16::try_from(n)
                        .map_err(|_| invalid("argument must be between 0 and 65535 inclusive"))
                })?;
        }
        "timeout" => cfg.limits.timeout_secs = number(i32::MAX as u64)?,
        "tcp-keepalive" => cfg.limits.tcp_keepalive_secs = number(i32::MAX as u64)?,
        "protected-mode" => {
            cfg.protected_mode =
                parse_yes_no(value).ok_or_else(|| invalid("argument must be 'yes' or 'no'"))?;
        }
        "hz" => cfg.hz = number(500)?.max(1) as u32,
        "busy-reply-threshold" => cfg.busy_reply_threshold_ms = number(i64::MAX as u64)?,
        "save" => {
            let points =
                parse_save_points(value).ok_or_else(|| invalid("Invalid save parameters"))?;
            cfg.persistence = match std::mem::take(&mut cfg.persistence) {
                PersistenceMode::Rdb(mut schedule) => {
                    schedule.save_points = points;
                    PersistenceMode::Rdb(schedule)
                }
                mode @ (PersistenceMode::Disabled | PersistenceMode::Aof) if points.is_empty() => {
                    mode
                }
                PersistenceMode::Disabled => PersistenceMode::Rdb(RdbSchedule {
                    frequency: None,
                    save_points: points,
                }),
                PersistenceMode::Aof => {
                    cfg.persistence = PersistenceMode::Aof;
                    return Err(both_on());
                }
            };
        }
        "rdb-frequency" => {
            let frequency = parse_frequency(value).ok_or_else(|| {
                invalid("argument must be a duration such as 1h, 6h, 12h or seconds")
            })?;
            cfg.persistence = match std::mem::take(&mut cfg.persistence) {
                PersistenceMode::Rdb(mut schedule) => {
                    schedule.frequency = frequency;
                    PersistenceMode::Rdb(schedule)
                }
                PersistenceMode::Disabled => match frequency {
                    Some(f) => PersistenceMode::Rdb(RdbSchedule::every(f)),
                    None => PersistenceMode::Disabled,
                },
                PersistenceMode::Aof if frequency.is_none() => PersistenceMode::Aof,
                PersistenceMode::Aof => {
                    cfg.persistence = PersistenceMode::Aof;
                    return Err(both_on());
                }
            };
        }
        "appendonly" => {
            let on =
                parse_yes_no(value).ok_or_else(|| invalid("argument must be 'yes' or 'no'"))?;
            cfg.persistence = match (std::mem::take(&mut cfg.persistence), on) {
                // Turning AOF on replaces the snapshots: the two are never on together.
                (_, true) => PersistenceMode::Aof,
                (PersistenceMode::Aof, false) => PersistenceMode::Disabled,
                (mode, false) => mode,
            };
        }
        "appendfsync" => {
            cfg.appendfsync = AppendFsync::from_name(value).ok_or_else(|| {
                invalid("argument(s) must be one of the following: always, everysec, no")
            })?;
        }
        "auto-aof-rewrite-percentage" => {
            cfg.auto_aof_rewrite_percentage = number(i32::MAX as u64)?;
        }
        "repl-backlog-size" => {
            cfg.repl_backlog_size = parse_memory(value)
                .filter(|&n| n >= 1)
                .ok_or_else(|| invalid("argument must be a memory value"))?;
        }
        "auto-aof-rewrite-min-size" => {
            cfg.auto_aof_rewrite_min_size =
                parse_memory(value).ok_or_else(|| invalid("argument must be a memory value"))?;
        }
        "dbfilename" => {
            if value.is_empty() || value.contains('/') || value == "." || value == ".." {
                return Err(invalid("dbfilename can't be a path, just a filename"));
            }
            cfg.dbfilename = value.to_string();
        }
        "dir" => {
            let path = PathBuf::from(value);
            if !path.is_dir() {
                return Err(invalid("No such file or directory"));
            }
            cfg.dir = path;
        }
        canonical_name if IMMUTABLE.contains(&canonical_name) => {
            return Err(invalid("can't set immutable config"))
        }
        // What Redis changes at run time but stays as the instance started here (the
        // bind address, the RDB's compression and checksum): the value it has, which
        // CONFIG GET gave, is accepted.
        _ if PARAMETERS.contains(&name) && get(name, cfg, ks).as_deref() == Some(value) => {}
        _ if PARAMETERS.contains(&name) => {
            return Err(invalid("this setting can't change while the instance runs"))
        }
        _ => return Err(ConfigError::Unknown(name.to_string())),
    }
    cfg.encodings = ks.encodings.clone();
    Ok(())
}

/// Parses Redis's yes/no booleans.
pub fn parse_yes_no(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Parses a memory amount as Redis's memtoull: plain bytes, or k/kb/m/mb/g/gb (any case).
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let (n, unit) = crate::util::split_number_unit(&lower)?;
    let multiplier = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(multiplier)
}

/// Formats bytes as Redis's INFO does ("1.50M").
pub fn human_bytes(n: u64) -> String {
    let n_f = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if n_f < K * K {
        format!("{:.2}K", n_f / K)
    } else if n_f < K * K * K {
        format!("{:.2}M", n_f / (K * K))
    } else if n_f < K * K * K * K {
        format!("{:.2}G", n_f / (K * K * K))
    } else {
        format!("{:.2}T", n_f / (K * K * K * K))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("2GB"), Some(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_memory("1x"), None);
        assert_eq!(human_bytes(1536), "1.50K");
    }

    #[test]
    fn set_and_get_round_trip() {
        let mut cfg = InstanceConfig::default();
        let mut ks = cfg.keyspace_config();
        set("maxmemory", "10mb", &mut cfg, &mut ks).unwrap();
        assert_eq!(get("maxmemory", &cfg, &ks).unwrap(), "10485760");
        set("maxmemory-policy", "allkeys-lfu", &mut cfg, &mut ks).unwrap();
        assert_eq!(get("maxmemory-policy", &cfg, &ks).unwrap(), "allkeys-lfu");
        assert!(matches!(
            set("bind", "10.0.0.1", &mut cfg, &mut ks),
            Err(ConfigError::Invalid(..))
        ));
        assert!(matches!(
            set("nope", "1", &mut cfg, &mut ks),
            Err(ConfigError::Unknown(..))
        ));
    }

    #[test]
    fn maxmemory_clients_in_bytes_or_percent() {
        let mut cfg = InstanceConfig::default();
        let mut ks = cfg.keyspace_config();
        assert_eq!(get("maxmemory-clients", &cfg, &ks).unwrap(), "0");
        set("maxmemory-clients", "10%", &mut cfg, &mut ks).unwrap();
        assert_eq!(get("maxmemory-clients", &cfg, &ks).unwrap(), "10%");
        assert_eq!(cfg.limits.maxmemory_clients.limit(0), None);
        assert_eq!(
            cfg.limits.maxmemory_clients.limit(100 << 20),
            Some(10 << 20)
        );
        set("maxmemory-clients", "1kb", &mut cfg, &mut ks).unwrap();
        assert_eq!(get("maxmemory-clients", &cfg, &ks).unwrap(), "1024");
        assert_eq!(
            cfg.limits.maxmemory_clients.limit(0),
            Some(MIN_CLIENT_EVICTION_LIMIT)
        );
        let refused = |value| {
            set(
                "maxmemory-clients",
                value,
                &mut cfg.clone(),
                &mut ks.clone(),
            )
        };
        assert_eq!(
            refused("101%").unwrap_err().to_string(),
            "CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"
        );
        for bad in ["-1%", "%", "x"] {
            assert!(refused(bad)
                .unwrap_err()
                .to_string()
                .ends_with("argument must be a memory or percent value"));
        }
        set("maxmemory-clients", "0%", &mut cfg, &mut ks).unwrap();
        assert_eq!(cfg.limits.maxmemory_clients, MaxmemoryClients::Off);
    }

    #[test]
    fn client_limits_as_redis_spells_them() {
        let mut cfg = InstanceConfig::default();
        let mut ks = cfg.keyspace_config();
        assert_eq!(
            get("client-output-buffer-limit", &cfg, &ks).unwrap(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        set(
            "client-output-buffer-limit",
            "normal 1mb 512kb 10",
            &mut cfg,
            &mut ks,
        )
        .unwrap();
        assert_eq!(
            cfg.limits.output[0],
            OutputLimit {
                hard: 1024 * 1024,
                soft: 512 * 1024,
                soft_secs: 10
            }
        );
        let before = cfg.limits.clone();
        for bad in ["normal 1 2", "master 1 1 1", "normal 1 1 -1 pubsub x 1 1"] {
            assert!(set("client-output-buffer-limit", bad, &mut cfg, &mut ks).is_err());
        }
        assert_eq!(cfg.limits, before, "a refused value changes nothing");
        assert!(set("client-query-buffer-limit", "1000", &mut cfg, &mut ks).is_err());
        set("client-query-buffer-limit", "2mb", &mut cfg, &mut ks).unwrap();
        assert_eq!(
            get("client-query-buffer-limit", &cfg, &ks).unwrap(),
            "2097152"
        );
    }
}
