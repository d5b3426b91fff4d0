//! Gathering and acting on the node: processes, SysV IPC objects, the shm directory.
//! Everything here runs as root next to directories users can write, so:
//! - the shm directory is opened once (`O_DIRECTORY | O_NOFOLLOW`) and every later look
//!   and removal is relative to that handle, with `AT_SYMLINK_NOFOLLOW`;
//! - every object is checked again right before it is removed (owner, type, attachments),
//!   so an id or a name reused meanwhile by someone else is left alone;
//! - something that disappeared on its own is not an error.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode as FileMode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

pub use crate::ipc_ctl::Ipc;
use crate::ipc_ctl::{ipc_rmid, ipc_stat};
use crate::plan::{FileKind, ShmFile};

/// Live processes on the node: their pids, and the uids they run as.
#[derive(Debug, Default)]
pub struct Processes {
    pub pids: HashSet<i32>,
    pub uids: HashSet<u32>,
}

/// From the text of `/proc/<pid>/status`: whether the process is live (not a zombie) and
/// its uids (real, effective, saved, filesystem).
fn parse_status(status: &str) -> (bool, Vec<u32>) {
    let mut live = true;
    let mut uids = Vec::new();
    for line in status.lines() {
        if let Some(state) = line.strip_prefix("State:") {
            let state = state.trim_start();
            live = !(state.starts_with('Z') || state.starts_with('X'));
        } else if let Some(u) = line.strip_prefix("Uid:") {
            uids = u
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
        }
    }
    (live, uids)
}

/// Whether `pid` is a live process now (gone and zombies are not), by the same reading of
/// `/proc/<pid>/status` as [`scan_processes`].
pub fn pid_running(pid: i32) -> bool {
    pid > 0
        && fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| parse_status(&s).0)
            .unwrap_or(false)
}

/// Reads `/proc/<pid>/status` of every process (zombies do not count as live). A process
/// counts for every uid it has (real, effective, saved, filesystem).
pub fn scan_processes(proc_root: &Path) -> std::io::Result<Processes> {
    let mut p = Processes::default();
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // A process may exit while we look: skip it.
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let (live, uids) = parse_status(&status);
        if live {
            p.pids.insert(pid);
            p.uids.extend(uids);
        }
    }
    Ok(p)
}

/// The result of removing one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Removed,
    /// Gone before we got to it.
    Vanished,
    /// Changed since the scan (owner, type, attachments): left alone.
    Changed(String),
    Failed(String),
}

fn gone(e: Errno) -> bool {
    matches!(e, Errno::EINVAL | Errno::EIDRM | Errno::ENOENT)
}

/// Removes the object if it is still owned by `uid` and (with `only_if`, shm) still passes
/// that check on fresh IPC_STAT data (attachments, creator pid, last pid).
pub fn remove_ipc(
    kind: Ipc,
    id: i32,
    uid: u32,
    only_if: Option<&dyn Fn(u64, i32, i32) -> bool>,
) -> Outcome {
    let what = kind.name();
    let st = match ipc_stat(kind, id) {
        Ok(st) => st,
        Err(e) if gone(e) => return Outcome::Vanished,
        Err(e) => return Outcome::Failed(format!("{what} {id}: IPC_STAT: {e}")),
    };
    if st.owner != uid {
        return Outcome::Changed(format!("{what} {id} is now owned by uid {}", st.owner));
    }
    if let Some(still_ok) = only_if {
        if !still_ok(st.nattch, st.cpid, st.lpid) {
            return Outcome::Changed(format!("{what} {id} is in use again"));
        }
    }
    match ipc_rmid(kind, id) {
        Ok(()) => Outcome::Removed,
        Err(e) if gone(e) => Outcome::Vanished,
        Err(e) => Outcome::Failed(format!("{what} {id}: IPC_RMID: {e}")),
    }
}

/// The shm directory, opened once without following a symlink.
pub struct ShmDir {
    dir: Dir,
    dev: u64,
}

fn kind_of(mode: u32) -> FileKind {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => FileKind::Regular,
        SFlag::S_IFLNK => FileKind::Symlink,
        SFlag::S_IFDIR => FileKind::Directory,
        _ => FileKind::Other,
    }
}

impl ShmDir {
    pub fn open(path: &Path) -> Result<ShmDir, String> {
        let dir = Dir::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            FileMode::empty(),
        )
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let st = fstat(dir.as_fd()).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        Ok(ShmDir {
            dir,
            dev: st.st_dev,
        })
    }

    fn stat(&self, name: &OsStr) -> Result<nix::sys::stat::FileStat, Errno> {
        fstatat(self.dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
    }

    /// The top-level entries (no recursion), each as `lstat` sees it. Entries that vanish
    /// while listed are skipped.
    pub fn list(&mut self) -> Result<Vec<ShmFile>, String> {
        let names: Vec<OsString> = self
            .dir
            .iter()
            .filter_map(|e| e.ok())
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
            .filter(|n| n != "." && n != "..")
            .collect();
        let mut files = Vec::with_capacity(names.len());
        for name in names {
            match self.stat(&name) {
                Ok(st) => files.push(ShmFile {
                    name,
                    uid: st.st_uid,
                    kind: kind_of(st.st_mode),
                    size: u64::try_from(st.st_size).unwrap_or(0),
                    same_fs: st.st_dev == self.dev,
                }),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(format!("cannot stat {:?}: {e}", name)),
            }
        }
        Ok(files)
    }

    /// Unlinks `name` if it is still a regular file of `uid` on this file system. The name
    /// is resolved relative to the open directory and never through a symlink; unlinking a
    /// name removes that directory entry only.
    pub fn remove(&self, name: &OsStr, uid: u32) -> Outcome {
        let st = match self.stat(name) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Outcome::Vanished,
            Err(e) => return Outcome::Failed(format!("{name:?}: stat: {e}")),
        };
        if kind_of(st.st_mode) != FileKind::Regular || st.st_uid != uid || st.st_dev != self.dev {
            return Outcome::Changed(format!("{name:?} is no longer a regular file of uid {uid}"));
        }
        match unlinkat(self.dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Outcome::Removed,
            Err(Errno::ENOENT) => Outcome::Vanished,
            Err(e) => Outcome::Failed(format!("{name:?}: unlink: {e}")),
        }
    }
}

/// Writes one line to syslog (facility daemon, tag ml-epilog).
pub fn syslog(priority: libc::c_int, line: &str) {
    node_log::syslog("ml-epilog", priority, line);
}

#[cfg(test)]
#[path = "tests/node.rs"]
mod tests;
