//! What a run leaves for the next one: where it stopped reading the kernel log, and the
//! critical XIDs seen since boot. A critical XID needs a GPU reset or a reboot, so it keeps
//! the node drained until the node reboots (a new boot id), not just until the next run
//! stops seeing it as new. Kept per node name (several slurmd may share a host), written by
//! root into a root-only directory, read back only if root owns it.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::kevents::Event;
use crate::xid::Xid;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub boot_id: String,
    /// The last kernel log record read in health-check mode.
    pub last_seq: Option<u64>,
    /// Critical XIDs seen since boot.
    pub critical: Vec<Xid>,
    /// Fatal SXids and GPUs fallen off the bus seen since boot: like a critical XID, they
    /// keep the node drained until a reboot.
    #[serde(default)]
    pub events: Vec<Event>,
    /// The error counters the last health check read (PCIe AER, InfiniBand ports).
    #[serde(default)]
    pub counters: Counters,
    /// Consecutive failing runs of the checks with a `fail_after` ([`crate::hysteresis`]).
    #[serde(default)]
    pub streaks: crate::hysteresis::Streaks,
}

impl State {
    /// Adds XIDs not seen yet (by record sequence number).
    pub fn remember(&mut self, xids: impl IntoIterator<Item = Xid>) {
        for x in xids {
            if !self.critical.iter().any(|c| c.seq == x.seq) {
                self.critical.push(x);
            }
        }
        self.critical.sort_by_key(|x| x.seq);
    }

    /// Adds the events that need a reboot, not seen yet (by record sequence number).
    pub fn remember_events<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for e in events.into_iter().filter(|e| e.needs_reboot()) {
            if !self.events.iter().any(|o| o.seq == e.seq) {
                self.events.push(e.clone());
            }
        }
        self.events.sort_by_key(|e| e.seq);
    }
}

pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn path(dir: &Path, node: &str) -> PathBuf {
    // Node names are Slurm's (no '/'), but never let one leave the directory.
    let safe: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.json"))
}

/// The state for this boot: a missing file, another boot's file or an unreadable one
/// starts afresh (an unreadable one is reported).
pub fn load(file: &Path, boot: &str) -> (State, Option<String>) {
    let fresh = State {
        boot_id: boot.to_string(),
        ..State::default()
    };
    if !file.exists() {
        return (fresh, None);
    }
    let parsed = trusted_config::read(file).and_then(|t| {
        serde_json::from_str::<State>(&t).map_err(|e| format!("{}: {e}", file.display()))
    });
    match parsed {
        Ok(s) if s.boot_id == boot => (s, None),
        Ok(_) => (fresh, None),
        Err(e) => (fresh, Some(format!("ignoring the state file: {e}"))),
    }
}

/// Writes the state atomically (a new file renamed over the old one) into `dir`, created
/// root-only when missing; refuses a directory that is not root's.
pub fn save(dir: &Path, file: &Path, state: &State) -> Result<(), String> {
    save_json(dir, file, state)
}

/// Writes `value` as JSON atomically into `file` inside `dir`, created root-only when
/// missing; refuses a directory that is not root's or is a link.
pub fn save_json<T: Serialize>(dir: &Path, file: &Path, value: &T) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    trusted_config::check(meta.uid(), meta.mode(), dir)?;
    let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
    trusted_config::write_atomically(file, text.as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xid(seq: u64, code: u32) -> Xid {
        Xid {
            seq,
            usec: seq * 10,
            pci: "0000:3b:00".into(),
            code,
            text: String::new(),
        }
    }

    #[test]
    fn remembers_each_record_once_and_forgets_on_reboot() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("state");
        let f = path(&d, "n2");
        let (mut s, warn) = load(&f, "boot-a");
        assert_eq!((s.critical.len(), warn), (0, None));
        s.remember([xid(5, 79), xid(3, 48)]);
        s.remember([xid(5, 79)]);
        s.last_seq = Some(9);
        save(&d, &f, &s).unwrap();
        assert_eq!(
            std::fs::metadata(&d).unwrap().mode() & 0o777,
            0o700,
            "root-only directory"
        );
        let (again, _) = load(&f, "boot-a");
        assert_eq!(
            again.critical.iter().map(|x| x.seq).collect::<Vec<_>>(),
            [3, 5]
        );
        assert_eq!(again.last_seq, Some(9));
        let (other_boot, _) = load(&f, "boot-b");
        assert!(other_boot.critical.is_empty());
        assert_eq!(other_boot.last_seq, None);
        std::fs::write(&f, "{").unwrap();
        let (broken, warn) = load(&f, "boot-a");
        assert!(broken.critical.is_empty());
        assert!(warn.unwrap().starts_with("ignoring the state file: "));
    }

    #[test]
    fn node_names_stay_in_the_directory() {
        assert_eq!(
            path(Path::new("/run/x"), "../etc/n1"),
            PathBuf::from("/run/x/.._etc_n1.json")
        );
    }
}
