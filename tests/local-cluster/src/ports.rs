//! TCP ports for a cluster's daemons, reserved across processes.
//!
//! A port that is free when the cluster starts must stay free until its daemon binds it:
//! a cloud node's slurmd binds only when the ResumeProgram starts it, a restarted
//! slurmctld binds again. Ports are therefore taken below the kernel's ephemeral range
//! (no client socket of any process is given one), and each is reserved by a file named
//! after it that holds the cluster's directory, so that test processes running side by
//! side never share one. A reservation lives while its cluster's directory exists; a
//! killed test's reservations are taken back once its directory is gone.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{err, Result};

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

/// Reserves `n` distinct ports for the cluster in `dir` (which must exist).
pub(crate) fn reserve(n: usize, dir: &Path) -> Result<Vec<u16>> {
    let (first, last) = range()?;
    let store = reservations();
    fs::create_dir_all(&store)
        .map_err(|e| crate::Error(format!("create {}: {e}", store.display())))?;
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
        release(dir);
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
    if let Ok(owner) = fs::read_to_string(&file) {
        if Path::new(owner.trim_end()).exists() {
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

/// Drops every reservation the cluster in `dir` holds.
pub(crate) fn release(dir: &Path) {
    let Ok(entries) = fs::read_dir(reservations()) else {
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
        // A cluster whose directory is gone holds nothing.
        let path = b.path().to_path_buf();
        drop(b);
        assert!(take(&reservations(), pb[0], a.path()));
        release(a.path());
        release(&path);
    }
}
