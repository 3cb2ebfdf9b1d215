//! Keyspace notifications (`notify-keyspace-events`): the event classes, the setting's text
//! both ways, and the events a command raised, which wait here until the command ends and
//! are then published on `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`
//! (`instance::pubsub::publish_notices`).
//!
//! Everything that changes keys raises its events through `Keyspace::notify`: commands with
//! the event names Redis 7.0 gives them, and the keyspace itself for what it does on its own
//! (`new` keys, `expired`, `evicted`, `del` of an emptied collection).

use super::{Blob, Keyspace};

/// The event classes, as Redis numbers them.
pub mod class {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 13;
    pub const NEW: u32 = 1 << 14;
    /// `A`: every class but key-miss and new.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// Each class's letter, in the order CONFIG GET writes them after `A`.
const LETTERS: [(char, u32); 11] = [
    ('g', class::GENERIC),
    ('$', class::STRING),
    ('l', class::LIST),
    ('s', class::SET),
    ('h', class::HASH),
    ('z', class::ZSET),
    ('x', class::EXPIRED),
    ('e', class::EVICTED),
    ('t', class::STREAM),
    ('d', class::MODULE),
    ('n', class::NEW),
];

/// Parses the setting's letters (Redis's keyspaceEventsStringToFlags); None on an unknown one.
pub fn parse_flags(text: &str) -> Option<u32> {
    text.chars().try_fold(0, |flags, c| {
        let flag = match c {
            'A' => class::ALL,
            'K' => class::KEYSPACE,
            'E' => class::KEYEVENT,
            'm' => class::KEY_MISS,
            c => LETTERS.iter().find(|(l, _)| *l == c)?.1,
        };
        Some(flags | flag)
    })
}

/// The setting as CONFIG GET gives it (keyspaceEventsFlagsToString), including Redis 7.0's
/// quirk: with every `A` class on, `n` is not written even when set.
pub fn flags_text(flags: u32) -> String {
    let mut text = String::new();
    if flags & class::ALL == class::ALL {
        text.push('A');
    } else {
        text.extend(
            LETTERS
                .iter()
                .filter(|(_, f)| flags & f != 0)
                .map(|(c, _)| c),
        );
    }
    for (c, f) in [
        ('K', class::KEYSPACE),
        ('E', class::KEYEVENT),
        ('m', class::KEY_MISS),
    ] {
        if flags & f != 0 {
            text.push(c);
        }
    }
    text
}

/// One event waiting to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub db: usize,
    pub event: &'static str,
    pub key: Blob,
}

/// Whether setting `flags` publishes events of `class` at all.
pub fn wanted(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (class::KEYSPACE | class::KEYEVENT) != 0
}

impl Notice {
    pub fn new(event: &'static str, db: usize, key: &[u8]) -> Notice {
        Notice {
            db,
            event,
            key: Blob::from_slice(key),
        }
    }
}

impl Keyspace {
    /// Raises event `event` of class `class` on `key`, if the setting asks for that class
    /// (and for keyspace or keyevent channels at all).
    pub fn notify(&mut self, class: u32, event: &'static str, db: usize, key: &[u8]) {
        if wanted(self.config.notify_flags, class) {
            self.notices.push(Notice::new(event, db, key));
        }
    }

    /// The events raised since the last call, to publish.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_text_round_trips_as_redis_writes_it() {
        for (given, shown) in [
            ("KEA", "AKE"),
            ("Ex", "xE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("Elg", "glE"),
            ("mKEA", "AKEm"),
            ("KEn", "nKE"),
            ("g$lshzxetd", "A"),
            ("KEAn", "AKE"),
            ("", ""),
        ] {
            assert_eq!(flags_text(parse_flags(given).unwrap()), shown, "{given}");
        }
        assert_eq!(parse_flags("KEw"), None);
        assert_eq!(
            parse_flags("KEAn").unwrap() & class::NEW,
            class::NEW,
            "n stays on"
        );
    }
}
