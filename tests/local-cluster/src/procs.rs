//! Process bookkeeping for teardown: is a pid alive, is it ours, who holds files in a dir.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use crate::{io, Result};

/// Daemon pids this process has reaped: never waited for again (the number may already
/// belong to another process).
static REAPED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// True while the daemon `pid` (one this cluster started) runs; reaps it once it exited,
/// so it does not linger as a zombie. Only for daemon pids: waiting on any other pid
/// could steal the exit status of a command another thread is running.
pub fn alive(pid: u32) -> bool {
    let mut reaped = REAPED.lock().unwrap_or_else(|e| e.into_inner());
    if reaped.contains(&pid) {
        return false;
    }
    if let Ok(p) = libc::pid_t::try_from(pid) {
        // Reaps `pid` if it is our exited child; ECHILD otherwise, which is fine.
        let status = waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG));
        if matches!(status, Ok(s) if s.pid() == Some(Pid::from_raw(p))) {
            reaped.insert(pid);
            return false;
        }
    }
    running(pid)
}

/// True while `pid` exists and is not a zombie. Never waits on it.
pub fn running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Whether `pid` is one of the cluster's processes: its command line or environment
/// names the cluster directory (a recycled pid would not).
pub fn belongs_to(pid: u32, dir: &Path) -> bool {
    let needle = dir.as_os_str().as_bytes();
    ["cmdline", "environ"].iter().any(|f| {
        fs::read(format!("/proc/{pid}/{f}"))
            .map(|b| b.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}

fn signal(pid: u32, sig: Signal) {
    if let Ok(p) = libc::pid_t::try_from(pid) {
        // A process already gone (ESRCH) is what the caller wants anyway.
        let _ = kill(Pid::from_raw(p), sig);
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL; `is_alive` is [`alive`] for the cluster's
/// daemons (reaped) and [`running`] for other processes (never waited on).
pub fn terminate(pid: u32, grace: Duration, is_alive: fn(u32) -> bool) {
    signal(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while is_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_alive(pid) {
        signal(pid, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn inside(link: &Path, dir: &Path) -> bool {
    link.starts_with(dir)
}

/// Processes (other than this one) whose working directory or an open file is under `dir`.
pub fn holders_of(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || !running(pid) {
            continue;
        }
        let cwd_inside = fs::read_link(format!("/proc/{pid}/cwd"))
            .map(|l| inside(&l, dir))
            .unwrap_or(false);
        let fd_inside = || {
            fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.flatten().any(|fd| {
                        fs::read_link(fd.path())
                            .map(|l| inside(&l, dir))
                            .unwrap_or(false)
                    })
                })
                .unwrap_or(false)
        };
        if cwd_inside || fd_inside() {
            pids.push(pid);
        }
    }
    pids
}

/// Whether a slurmstepd still holds files under `dir`.
pub fn any_stepd(dir: &Path) -> bool {
    holders_of(dir).into_iter().any(|pid| {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.starts_with("slurmstepd"))
            .unwrap_or(false)
    })
}

/// Creates a character device node (root only).
pub fn mknod_char(path: &Path, major: u32, minor: u32) -> Result<()> {
    let dev = makedev(u64::from(major), u64::from(minor));
    io(
        &format!("mknod {}", path.display()),
        mknod(path, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), dev)
            .map_err(std::io::Error::from),
    )
}
