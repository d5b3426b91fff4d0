//! TCP ports for a cluster's daemons, reserved across processes.
//!
//! A port that is free when the cluster starts must stay free until its daemon binds it:
//! a cloud node's slurmd binds only when the ResumeProgram starts it, a restarted
//! slurmctld binds again. Ports are therefore taken below the kernel's ephemeral range
//! (no client socket of any process is given one), and each is reserved by a file named
//! after it that holds the cluster's directory (canonical), so that test processes
//! running side by side never share one. Reservations are made and dropped under one lock.
//! A reservation lives while its cluster's directory exists and either it is younger than
//! the cluster's start can take or a daemon of that cluster still runs: a killed test's
//! ports come back once its daemons are gone, even where its directory stays.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{err, layout, procs, Result};

/// Longer than a cluster takes from reserving its ports to writing its daemons' pids.
const START_GRACE: Duration = Duration::from_secs(600);

/// Whole range: below Linux's default ephemeral range (32768-60999). The release roots
/// share the host's network but not its /run, so each is given its own part of it
/// (`LOCAL_CLUSTER_PORTS=FIRST-LAST`, set by scripts/test-release.sh).
const DEFAULT_RANGE: (u16, u16) = (20000, 24999);

fn range() -> Result<(u16, u16)> {
    let Some(v) = std::env::var_os("LOCAL_CLUSTER_PORTS") else {
        return Ok(DEFAULT_RANGE);
    };
    let v = v.to_string_lossy();
    let parsed = v
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)));
    match parsed {
        Some((a, b)) if 1024 <= a && a < b => Ok((a, b)),
        _ => err(format!(
            "LOCAL_CLUSTER_PORTS={v}: expected FIRST-LAST, 1024 <= FIRST < LAST"
        )),
    }
}

fn reservations() -> PathBuf {
    let base = Path::new("/run");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join("local-cluster-ports")
}

/// The cluster directory as reservations name it: canonical where it exists, so that a
/// relative `--dir` or a trailing slash names the same cluster in every process.
fn owner(dir: &Path) -> PathBuf {
    fs::canonicalize(dir).unwrap_or_else(|_| dir.components().collect())
}

fn locked_store() -> Result<(PathBuf, crate::FileLock)> {
    let store = reservations();
    fs::create_dir_all(&store)
        .map_err(|e| crate::Error(format!("create {}: {e}", store.display())))?;
    let lock = crate::lock_exclusive(&store.join(".lock"))?;
    Ok((store, lock))
}

/// Reserves `n` distinct ports for the cluster in `dir` (which must exist); any it still
/// held (an earlier start in the same `--dir` that failed) are dropped first.
pub(crate) fn reserve(n: usize, dir: &Path) -> Result<Vec<u16>> {
    let (first, last) = range()?;
    let dir = &owner(dir);
    let (store, _lock) = locked_store()?;
    drop_owned(&store, dir);
    let span = u32::from(last - first) + 1;
    // Processes start their search at different places, so they rarely contend.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let start = (std::process::id().wrapping_mul(7919) ^ nanos) % span;
    let mut ports = Vec::new();
    for i in 0..span {
        if ports.len() == n {
            break;
        }
        let port = first + ((start + i) % span) as u16;
        if take(&store, port, dir) {
            ports.push(port);
        }
    }
    if ports.len() < n {
        drop_owned(&store, dir);
        return err(format!(
            "no {n} free ports left in {first}-{last} (reservations in {})",
            store.display()
        ));
    }
    Ok(ports)
}

/// Reserves one port: its file made anew (or taken over from a cluster whose directory
/// is gone), then the port checked bindable on every address.
fn take(store: &Path, port: u16, dir: &Path) -> bool {
    let file = store.join(port.to_string());
    if file.symlink_metadata().is_ok() {
        if live(&file) {
            return false;
        }
        let _ = fs::remove_file(&file);
    }
    let made = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .and_then(|mut f| writeln!(f, "{}", dir.display()));
    if made.is_err() {
        return false; // another process took it first
    }
    if std::net::TcpListener::bind(("0.0.0.0", port)).is_err() {
        let _ = fs::remove_file(&file); // used by something that is not ours
        return false;
    }
    true
}

/// Whether the reservation in `file` still holds (see the module's comment).
fn live(file: &Path) -> bool {
    let Ok(text) = fs::read_to_string(file) else {
        return true; // unreadable: leave it be
    };
    let dir = Path::new(text.trim_end());
    if text.is_empty() || !dir.is_absolute() || !dir.exists() {
        return false;
    }
    let young = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_none_or(|age| age < START_GRACE);
    young
        || fs::read_to_string(dir.join(layout::PIDS)).is_ok_and(|pids| {
            pids.lines()
                .filter_map(|l| l.split_once(' ')?.0.parse::<u32>().ok())
                .any(|pid| procs::running(pid) && procs::belongs_to(pid, dir))
        })
}

/// Drops every reservation the cluster in `dir` holds.
pub(crate) fn release(dir: &Path) {
    if let Ok((store, _lock)) = locked_store() {
        drop_owned(&store, &owner(dir));
    }
}

fn drop_owned(store: &Path, dir: &Path) {
    let Ok(entries) = fs::read_dir(store) else {
        return;
    };
    let mine = format!("{}\n", dir.display());
    for e in entries.flatten() {
        if fs::read_to_string(e.path()).is_ok_and(|owner| owner == mine) {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_distinct_below_the_ephemeral_range_and_released() {
        if crate::effective_uid() != 0 {
            return; // the store is root's, as clusters are
        }
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let pa = reserve(6, a.path()).unwrap();
        let pb = reserve(6, b.path()).unwrap();
        let mut all: Vec<u16> = pa.iter().chain(&pb).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 12, "{pa:?} {pb:?}");
        let (first, last) = range().unwrap();
        assert!(all.iter().all(|p| (first..=last).contains(p)), "{all:?}");
        assert!(last < 32768, "below the ephemeral range");
        release(a.path());
        for p in &pa {
            assert!(!reservations().join(p.to_string()).exists());
        }
        for p in &pb {
            assert!(reservations().join(p.to_string()).exists());
        }
        // Named by another spelling of its directory, the cluster is the same one.
        release(&b.path().join("."));
        for p in &pb {
            assert!(!reservations().join(p.to_string()).exists());
        }
        // A cluster whose directory is gone holds nothing.
        let pc = reserve(1, b.path()).unwrap();
        let path = owner(b.path());
        drop(b);
        assert!(take(&reservations(), pc[0], &owner(a.path())));
        release(a.path());
        release(&path);
        // Nor does one whose start is long past and whose daemons are gone.
        let c = tempfile::tempdir().unwrap();
        let pd = reserve(1, c.path()).unwrap();
        let file = reservations().join(pd[0].to_string());
        let old = SystemTime::now() - START_GRACE - Duration::from_secs(1);
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(!live(&file));
        release(c.path());
    }
}
