//! CLIENT PAUSE: for a while, clients' commands (all of them, or those that write or may
//! replicate) wait instead of running, as Redis postpones them, and run in order once the
//! pause ends (CLIENT UNPAUSE or its timeout). A waiting client counts as blocked.

/// What a pause holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PauseKind {
    #[default]
    Off,
    /// Writes and commands that may replicate (PUBLISH, PFCOUNT, scripts that may write).
    Write,
    All,
}

/// The pause in effect, as the instance's watch channel carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pause {
    pub kind: PauseKind,
    /// When it ends, in ms since the epoch.
    pub until_ms: u64,
}

impl Pause {
    /// The pause as of `now_ms` (Off once it has run out).
    pub fn at(&self, now_ms: u64) -> PauseKind {
        if now_ms < self.until_ms {
            self.kind
        } else {
            PauseKind::Off
        }
    }

    /// Whether a command that writes (or may replicate) when `writes`, waits now.
    pub fn holds(&self, now_ms: u64, writes: bool) -> bool {
        match self.at(now_ms) {
            PauseKind::Off => false,
            PauseKind::Write => writes,
            PauseKind::All => true,
        }
    }
}

/// Waits until the pause no longer holds a command that `writes` (or the client is killed:
/// false).
pub async fn wait_unpaused(
    shared: &super::Shared,
    info: &super::client::ClientInfo,
    writes: bool,
) -> bool {
    let mut changes = shared.pause.subscribe();
    loop {
        let pause = *changes.borrow_and_update();
        let now = crate::util::now_ms();
        if !pause.holds(now, writes) {
            return true;
        }
        let left = std::time::Duration::from_millis(pause.until_ms.saturating_sub(now));
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(left) => {}
            _ = info.kill_notify.notified() => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_holds_what_its_kind_says_until_it_ends() {
        let write = Pause {
            kind: PauseKind::Write,
            until_ms: 1000,
        };
        assert!(write.holds(999, true));
        assert!(!write.holds(999, false));
        assert!(!write.holds(1000, true));
        let all = Pause {
            kind: PauseKind::All,
            until_ms: 1000,
        };
        assert!(all.holds(10, false));
        assert_eq!(all.at(1000), PauseKind::Off);
    }
}
