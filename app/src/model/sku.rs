//! The portal's cache sizes: data tier, performance level and SKU, with the memory each gives.
//! Locally a SKU sets the instance's maxmemory (the size less the ~20% Azure reserves).

/// In-memory or Flash (the portal's "Data tier").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tier {
    InMemory,
    Flash,
}

impl Tier {
    pub const ALL: [Tier; 2] = [Tier::InMemory, Tier::Flash];

    pub fn label(self) -> &'static str {
        match self {
            Tier::InMemory => "In-memory",
            Tier::Flash => "Flash",
        }
    }

    pub fn performances(self) -> &'static [Performance] {
        match self {
            Tier::InMemory => &[
                Performance::MemoryOptimized,
                Performance::Balanced,
                Performance::ComputeOptimized,
            ],
            Tier::Flash => &[Performance::FlashOptimized],
        }
    }
}

/// The portal's "Performance" choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Performance {
    MemoryOptimized,
    Balanced,
    ComputeOptimized,
    FlashOptimized,
}

impl Performance {
    pub fn label(self) -> &'static str {
        match self {
            Performance::MemoryOptimized => "Memory Optimized",
            Performance::Balanced => "Balanced",
            Performance::ComputeOptimized => "Compute Optimized",
            Performance::FlashOptimized => "Flash Optimized",
        }
    }

    /// The prefix of the SKU's string form (`Balanced_B10`).
    fn api_prefix(self) -> &'static str {
        match self {
            Performance::MemoryOptimized => "MemoryOptimized",
            Performance::Balanced => "Balanced",
            Performance::ComputeOptimized => "ComputeOptimized",
            Performance::FlashOptimized => "FlashOptimized",
        }
    }

    pub fn tier(self) -> Tier {
        match self {
            Performance::FlashOptimized => Tier::Flash,
            _ => Tier::InMemory,
        }
    }

    /// The SKUs of this performance level, smallest first.
    pub fn skus(self) -> impl Iterator<Item = &'static Sku> {
        SKUS.iter().filter(move |s| s.performance == self)
    }
}

/// One cache size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sku {
    /// The short code the portal shows (`B10`).
    pub code: &'static str,
    pub performance: Performance,
    /// The size in GB, as the portal lists it.
    pub gb: f64,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

impl Sku {
    /// The string form of the API (`Balanced_B10`), which the app stores.
    pub fn id(&self) -> String {
        format!("{}_{}", self.performance.api_prefix(), self.code)
    }

    pub fn by_id(id: &str) -> Option<&'static Sku> {
        SKUS.iter().find(|s| s.id() == id)
    }

    pub fn size_bytes(&self) -> u64 {
        (self.gb * GIB) as u64
    }

    /// What the data may use: the size less the ~20% reserved for the system.
    pub fn maxmemory(&self) -> u64 {
        self.size_bytes() / 5 * 4
    }

    pub fn describe(&self) -> String {
        format!("{} ({} GB)", self.code, self.gb)
    }
}

macro_rules! skus {
    ($($perf:ident $code:literal $gb:literal),* $(,)?) => {
        &[$(Sku { code: $code, performance: Performance::$perf, gb: $gb }),*]
    };
}

/// Every SKU, by performance level, smallest first.
pub static SKUS: &[Sku] = skus![
    Balanced "B0" 0.5, Balanced "B1" 1.0, Balanced "B3" 3.0, Balanced "B5" 6.0,
    Balanced "B10" 12.0, Balanced "B20" 24.0, Balanced "B50" 60.0, Balanced "B100" 120.0,
    Balanced "B150" 180.0, Balanced "B250" 240.0, Balanced "B350" 360.0, Balanced "B500" 480.0,
    Balanced "B700" 720.0, Balanced "B1000" 960.0,
    MemoryOptimized "M10" 12.0, MemoryOptimized "M20" 24.0, MemoryOptimized "M50" 60.0,
    MemoryOptimized "M100" 120.0, MemoryOptimized "M150" 180.0, MemoryOptimized "M250" 240.0,
    MemoryOptimized "M350" 360.0, MemoryOptimized "M500" 480.0, MemoryOptimized "M700" 720.0,
    MemoryOptimized "M1000" 960.0, MemoryOptimized "M1500" 1440.0, MemoryOptimized "M2000" 1920.0,
    ComputeOptimized "X3" 3.0, ComputeOptimized "X5" 6.0, ComputeOptimized "X10" 12.0,
    ComputeOptimized "X20" 24.0, ComputeOptimized "X50" 60.0, ComputeOptimized "X100" 120.0,
    ComputeOptimized "X150" 180.0, ComputeOptimized "X250" 240.0, ComputeOptimized "X350" 360.0,
    ComputeOptimized "X500" 480.0, ComputeOptimized "X700" 720.0,
    FlashOptimized "A250" 240.0, FlashOptimized "A500" 480.0, FlashOptimized "A700" 720.0,
    FlashOptimized "A1000" 960.0, FlashOptimized "A1500" 1440.0, FlashOptimized "A2000" 1920.0,
    FlashOptimized "A4500" 4500.0,
];

/// The SKU a new cache starts with: the smallest, which fits on a laptop.
pub fn default_sku() -> &'static Sku {
    &SKUS[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sizes_follow_the_portal() {
        for sku in SKUS {
            assert_eq!(Sku::by_id(&sku.id()), Some(sku));
        }
        let b10 = Sku::by_id("Balanced_B10").unwrap();
        assert_eq!(b10.gb, 12.0);
        assert_eq!(b10.maxmemory(), b10.size_bytes() / 5 * 4);
        assert_eq!(Performance::Balanced.skus().count(), 14);
        assert_eq!(Performance::FlashOptimized.tier(), Tier::Flash);
    }
}
