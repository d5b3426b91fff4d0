//! Error counters between runs (PCIe AER, InfiniBand ports): the values the last health
//! check read, kept in the state file, so a run judges what was added since. Counters and
//! state both start at boot (the state directory is on tmpfs and the state is per boot
//! id), so a counter the state does not know yet counts from zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// When they were read (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    /// By key: `aer 0000:3b:00.0 correctable`, `ib mlx5_0/1 symbol_error`.
    #[serde(default)]
    pub values: BTreeMap<String, u64>,
}

impl Counters {
    /// What `key` gained since these counters were read. A counter below its old value was
    /// reset (`perfquery -x`, a driver reload): all of it is new.
    pub fn delta(&self, key: &str, now: u64) -> u64 {
        match self.values.get(key) {
            Some(&old) if old <= now => now - old,
            _ => now,
        }
    }

    /// Seconds since these counters were read; `None` when never (or the clock went back).
    pub fn age(&self, now_unix: u64) -> Option<u64> {
        self.at.and_then(|at| now_unix.checked_sub(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_count_from_the_last_reading_or_from_boot() {
        let mut c = Counters::default();
        assert_eq!(c.delta("k", 5), 5, "unknown: counted since boot");
        c.values.insert("k".into(), 5);
        c.at = Some(1000);
        assert_eq!(c.delta("k", 5), 0);
        assert_eq!(c.delta("k", 9), 4);
        assert_eq!(c.delta("k", 2), 2, "reset counter");
        assert_eq!(c.age(1600), Some(600));
        assert_eq!(c.age(999), None);
        assert_eq!(Counters::default().age(5), None);
    }
}
