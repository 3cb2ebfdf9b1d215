//! maxmemory policies with Redis's approximations: a 24-bit seconds clock for LRU, a
//! logarithmic 8-bit counter with minute-based decay for LFU, and eviction that samples
//! `maxmemory-samples` keys per round into a small pool of the best candidates seen.

use super::{Keyspace, DB_COUNT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl EvictionPolicy {
    pub const ALL: [EvictionPolicy; 8] = [
        EvictionPolicy::NoEviction,
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::AllKeysLfu,
        EvictionPolicy::AllKeysRandom,
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::AllKeysLfu => "allkeys-lfu",
            EvictionPolicy::AllKeysRandom => "allkeys-random",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn is_lfu(self) -> bool {
        matches!(
            self,
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu
        )
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }
}

const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
pub const LFU_INIT_VAL: u32 = 5;

/// The LRU clock: seconds, 24 bits, wrapping.
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32) & LRU_CLOCK_MAX
}

/// Seconds since the access recorded in an LRU field.
pub fn idle_seconds(access: u32, now_ms: u64) -> u64 {
    let clock = lru_clock(now_ms);
    u64::from(if clock >= access {
        clock - access
    } else {
        clock + (LRU_CLOCK_MAX - access)
    })
}

/// The access field for a key loaded from a file: its saved idle time (LRU) or counter (LFU),
/// or a fresh access if the file has neither.
pub fn access_from_saved(lfu: bool, now_ms: u64, idle_secs: Option<u64>, freq: Option<u8>) -> u32 {
    if lfu {
        let counter = freq.map_or(LFU_INIT_VAL, u32::from);
        (lfu_minutes(now_ms) << 8) | counter
    } else {
        let idle_ms = idle_secs.unwrap_or(0).saturating_mul(1000);
        lru_clock(now_ms.saturating_sub(idle_ms))
    }
}

fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) as u32) & 0xFFFF
}

/// A new key's LFU field: current minute, counter LFU_INIT_VAL.
pub fn lfu_new(now_ms: u64) -> u32 {
    (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL
}

/// The LFU counter after decay for elapsed time (without recording an access).
pub fn lfu_counter(access: u32, now_ms: u64, decay_time: u64) -> u32 {
    let last = access >> 8;
    let counter = access & 0xFF;
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= last {
        now - last
    } else {
        0xFFFF - last + now
    };
    let periods = u64::from(elapsed).checked_div(decay_time).unwrap_or(0);
    counter.saturating_sub(periods.min(255) as u32)
}

/// Records an access in an LFU field: decay, then a logarithmic increment (`r` in [0,1)).
pub fn lfu_touch(access: u32, now_ms: u64, log_factor: u32, decay_time: u64, r: f64) -> u32 {
    let mut counter = lfu_counter(access, now_ms, decay_time);
    if counter < 255 {
        let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
        let p = 1.0 / (base * f64::from(log_factor) + 1.0);
        if r < p {
            counter += 1;
        }
    }
    (lfu_minutes(now_ms) << 8) | counter
}

#[derive(Debug, Clone)]
pub(super) struct Candidate {
    score: u64,
    db: usize,
    key: super::Blob,
}

const POOL_SIZE: usize = 16;

impl Keyspace {
    /// True if memory is over the limit and nothing may be evicted (writes get -OOM).
    pub fn over_limit_without_eviction(&self) -> bool {
        self.config.maxmemory > 0
            && self.used_memory() as u64 > self.config.maxmemory
            && self.config.policy == EvictionPolicy::NoEviction
    }

    /// Evicts keys until memory is under maxmemory. Returns false if it could not get there
    /// (no policy, or no candidate keys).
    pub fn evict_to_limit(&mut self) -> bool {
        let limit = self.config.maxmemory;
        if limit == 0 {
            return true;
        }
        while self.used_memory() as u64 > limit {
            if self.config.policy == EvictionPolicy::NoEviction {
                return false;
            }
            let Some((db, key)) = self.pick_victim() else {
                return false;
            };
            self.tracking.set_server_change(true);
            let removed = self.remove(db, &key).is_some();
            self.tracking.set_server_change(false);
            if removed {
                self.stats.evicted_keys += 1;
                self.notify(super::notify::class::EVICTED, "evicted", db, &key);
                self.feed.command(db, &[b"DEL".as_slice(), &key]);
            }
        }
        true
    }

    fn pick_victim(&mut self) -> Option<(usize, super::Blob)> {
        let policy = self.config.policy;
        let volatile = policy.volatile_only();
        let pool_dbs: Vec<usize> = (0..DB_COUNT)
            .filter(|&db| {
                if volatile {
                    !self.dbs[db].expires.is_empty()
                } else {
                    !self.dbs[db].entries.is_empty()
                }
            })
            .collect();
        if pool_dbs.is_empty() {
            return None;
        }
        if matches!(
            policy,
            EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom
        ) {
            let db = pool_dbs[rand::Rng::random_range(&mut self.rng, 0..pool_dbs.len())];
            let key = if volatile {
                self.dbs[db].expires.random_entry(&mut self.rng)?.0.clone()
            } else {
                self.dbs[db].entries.random_entry(&mut self.rng)?.0.clone()
            };
            return Some((db, key));
        }
        // Sample into the pool; higher score = better to evict.
        let now = self.now;
        let decay = self.config.lfu_decay_time;
        for &db in &pool_dbs {
            for _ in 0..self.config.maxmemory_samples {
                let d = &self.dbs[db];
                let sampled = if volatile {
                    d.expires
                        .random_entry(&mut self.rng)
                        .map(|(k, &at)| (k.clone(), Some(at)))
                } else {
                    d.entries
                        .random_entry(&mut self.rng)
                        .map(|(k, _)| (k.clone(), None))
                };
                let Some((key, at)) = sampled else { break };
                let Some(entry) = d.entries.get(&key) else {
                    continue;
                };
                let score = match policy {
                    EvictionPolicy::VolatileTtl => u64::MAX - at.unwrap_or(u64::MAX),
                    p if p.is_lfu() => 255 - u64::from(lfu_counter(entry.access, now, decay)),
                    _ => idle_seconds(entry.access, now),
                };
                if self
                    .eviction_pool
                    .iter()
                    .any(|c| c.db == db && c.key == key)
                {
                    continue;
                }
                self.eviction_pool.push(Candidate { score, db, key });
            }
        }
        self.eviction_pool
            .sort_by_key(|c| std::cmp::Reverse(c.score));
        self.eviction_pool.truncate(POOL_SIZE);
        while !self.eviction_pool.is_empty() {
            let best = self.eviction_pool.remove(0);
            if self.dbs[best.db].entries.contains_key(&best.key) {
                return Some((best.db, best.key));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Keyspace, KeyspaceConfig, Value};
    use super::*;

    fn filled(policy: EvictionPolicy) -> Keyspace {
        let mut ks = Keyspace::new(KeyspaceConfig {
            policy,
            ..Default::default()
        });
        for i in 0..2000 {
            ks.set(
                0,
                format!("key:{i}").as_bytes(),
                Value::Str(vec![b'x'; 100].into()),
            );
        }
        ks
    }

    #[test]
    fn evicts_down_to_the_limit() {
        let mut ks = filled(EvictionPolicy::AllKeysLru);
        let limit = ks.used_memory() / 2;
        ks.config.maxmemory = limit as u64;
        assert!(ks.evict_to_limit());
        assert!(ks.used_memory() <= limit);
        assert!(ks.stats.evicted_keys > 500);
    }

    #[test]
    fn lru_prefers_idle_keys() {
        let mut ks = filled(EvictionPolicy::AllKeysLru);
        // Age the first half by 100 s.
        for i in 0..1000 {
            if let Some(e) = ks.dbs[0].entries.get_mut(format!("key:{i}").as_bytes()) {
                e.access = lru_clock(ks.now - 100_000);
            }
        }
        ks.config.maxmemory = (ks.used_memory() * 3 / 4) as u64;
        assert!(ks.evict_to_limit());
        let old_left = (0..1000)
            .filter(|i| ks.contains(0, format!("key:{i}").as_bytes()))
            .count();
        let new_left = (1000..2000)
            .filter(|i| ks.contains(0, format!("key:{i}").as_bytes()))
            .count();
        assert!(new_left > old_left, "old {old_left} new {new_left}");
    }

    #[test]
    fn volatile_policies_spare_keys_without_ttl() {
        let mut ks = filled(EvictionPolicy::VolatileTtl);
        ks.config.maxmemory = 1;
        assert!(!ks.evict_to_limit());
        assert_eq!(ks.key_count(), 2000);
    }

    #[test]
    fn noeviction_reports_over_limit() {
        let mut ks = filled(EvictionPolicy::NoEviction);
        ks.config.maxmemory = 1;
        assert!(ks.over_limit_without_eviction());
        assert!(!ks.evict_to_limit());
    }
}
