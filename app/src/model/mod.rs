//! What the app remembers about each cache (saved as RON, see `store`), the portal's choices
//! behind it, and the rules a new cache's settings must follow (`validation`). Every
//! remembered type has a `Default`, a new cache's choice, which a field missing from a file
//! written by an older version takes.

pub mod sku;
pub mod store;
pub mod validation;

use std::path::Path;
use std::time::Duration;

use cachedesk_engine::{EvictionPolicy, InstanceConfig, PersistenceMode, RdbSchedule};
use serde::{Deserialize, Serialize};

/// The portal's Backup Frequency for RDB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupFrequency {
    #[default]
    Hourly,
    SixHours,
    TwelveHours,
}

impl BackupFrequency {
    pub const ALL: [BackupFrequency; 3] = [
        BackupFrequency::Hourly,
        BackupFrequency::SixHours,
        BackupFrequency::TwelveHours,
    ];

    pub fn label(self) -> &'static str {
        match self {
            BackupFrequency::Hourly => "60 Minutes",
            BackupFrequency::SixHours => "6 hours",
            BackupFrequency::TwelveHours => "12 hours",
        }
    }

    pub fn interval(self) -> Duration {
        let hours = match self {
            BackupFrequency::Hourly => 1,
            BackupFrequency::SixHours => 6,
            BackupFrequency::TwelveHours => 12,
        };
        Duration::from_secs(hours * 3600)
    }
}

/// The portal's Data persistence choice: RDB and AOF are never on together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Persistence {
    #[default]
    Disabled,
    Rdb(BackupFrequency),
    Aof,
}

impl Persistence {
    pub fn describe(self) -> String {
        match self {
            Persistence::Disabled => "Disabled".into(),
            Persistence::Rdb(f) => format!("RDB, backup every {}", f.label()),
            Persistence::Aof => "AOF, write every second".into(),
        }
    }

    pub fn engine_mode(self) -> PersistenceMode {
        match self {
            Persistence::Disabled => PersistenceMode::Disabled,
            Persistence::Rdb(f) => PersistenceMode::Rdb(RdbSchedule::every(f.interval())),
            Persistence::Aof => PersistenceMode::Aof,
        }
    }
}

/// The portal's eviction policies, under the portal's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Eviction {
    AllKeysLfu,
    AllKeysLru,
    AllKeysRandom,
    #[default]
    VolatileLru,
    VolatileLfu,
    VolatileTtl,
    VolatileRandom,
    NoEviction,
}

impl Eviction {
    pub const ALL: [Eviction; 8] = [
        Eviction::AllKeysLfu,
        Eviction::AllKeysLru,
        Eviction::AllKeysRandom,
        Eviction::VolatileLru,
        Eviction::VolatileLfu,
        Eviction::VolatileTtl,
        Eviction::VolatileRandom,
        Eviction::NoEviction,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Eviction::AllKeysLfu => "AllKeysLFU",
            Eviction::AllKeysLru => "AllKeysLRU",
            Eviction::AllKeysRandom => "AllKeysRandom",
            Eviction::VolatileLru => "VolatileLRU",
            Eviction::VolatileLfu => "VolatileLFU",
            Eviction::VolatileTtl => "VolatileTTL",
            Eviction::VolatileRandom => "VolatileRandom",
            Eviction::NoEviction => "NoEviction",
        }
    }

    pub fn engine_policy(self) -> EvictionPolicy {
        match self {
            Eviction::AllKeysLfu => EvictionPolicy::AllKeysLfu,
            Eviction::AllKeysLru => EvictionPolicy::AllKeysLru,
            Eviction::AllKeysRandom => EvictionPolicy::AllKeysRandom,
            Eviction::VolatileLru => EvictionPolicy::VolatileLru,
            Eviction::VolatileLfu => EvictionPolicy::VolatileLfu,
            Eviction::VolatileTtl => EvictionPolicy::VolatileTtl,
            Eviction::VolatileRandom => EvictionPolicy::VolatileRandom,
            Eviction::NoEviction => EvictionPolicy::NoEviction,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

/// One cache as the app remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheSettings {
    pub name: String,
    /// The SKU's string form (`Balanced_B0`).
    pub sku: String,
    pub bind: String,
    pub port: u16,
    pub access_keys: bool,
    pub primary_key: String,
    pub secondary_key: String,
    pub eviction: Eviction,
    pub persistence: Persistence,
    pub tags: Vec<Tag>,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Whether the cache should run: the app starts these when it starts.
    pub running: bool,
}

/// What a new cache gets: the default SKU on loopback, a port picked when it starts (0),
/// access keys on with fresh keys, VolatileLRU, no persistence, no tags, created now, not
/// running. A field missing from an older settings file takes its value from here.
impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            name: String::new(),
            sku: sku::default_sku().id(),
            bind: "127.0.0.1".into(),
            port: 0,
            access_keys: true,
            primary_key: new_access_key(),
            secondary_key: new_access_key(),
            eviction: Eviction::default(),
            persistence: Persistence::default(),
            tags: Vec::new(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            running: false,
        }
    }
}

impl CacheSettings {
    pub fn sku(&self) -> &'static sku::Sku {
        sku::Sku::by_id(&self.sku).unwrap_or_else(|| sku::default_sku())
    }

    /// The engine's configuration of this cache, its files in `dir`.
    pub fn instance_config(&self, dir: &Path) -> InstanceConfig {
        let keys = self.access_keys;
        InstanceConfig {
            name: self.name.clone(),
            bind: self.bind.parse().unwrap_or(InstanceConfig::default().bind),
            port: self.port,
            dir: dir.to_path_buf(),
            persistence: self.persistence.engine_mode(),
            maxmemory: self.sku().maxmemory(),
            maxmemory_policy: self.eviction.engine_policy(),
            primary_key: keys.then(|| self.primary_key.clone()),
            secondary_key: keys.then(|| self.secondary_key.clone()),
            ..InstanceConfig::default()
        }
    }

    /// A ready-to-paste redis-cli line for this cache; with `reveal` false the access key
    /// is shown as a placeholder (the line for the screen, not the clipboard).
    pub fn redis_cli_line(&self, port: u16, reveal: bool) -> String {
        let auth = match (self.access_keys, reveal) {
            (false, _) => String::new(),
            (true, true) => format!(" -a '{}'", self.primary_key),
            (true, false) => " -a <primary key>".into(),
        };
        format!("redis-cli -h {} -p {port}{auth}", self.bind)
    }
}

/// A new random access key: 32 bytes, base64-like letters and digits (44 characters).
pub fn new_access_key() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..44)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
