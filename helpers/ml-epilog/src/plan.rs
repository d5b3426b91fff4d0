//! What to remove: pure decisions over what was gathered, so every rule is unit-tested.
//!
//! - Only objects owned by the job's uid, and never a uid below `min_uid` (root, system
//!   accounts).
//! - If the user still has live processes on the node (another job, an ssh session), only
//!   what is provably dead goes: shm segments with no attachment whose creator and last
//!   user are both gone. Semaphores, queues and files may be in use by the live processes
//!   and are left alone.
//! - Otherwise everything of the user's goes: shm, semaphores and queues (each kind can be
//!   switched off) and the user's regular files in the shm directory that match the
//!   patterns, on the same file system (never a symlink, a directory or a mount).

use std::ffi::OsString;

use crate::config::Config;
use crate::sysvipc::{MsgQueue, SemSet, ShmSeg};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Symlink,
    Directory,
    Other,
}

/// An entry of the shm directory, as `fstatat(AT_SYMLINK_NOFOLLOW)` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShmFile {
    pub name: OsString,
    pub uid: u32,
    pub kind: FileKind,
    pub size: u64,
    /// On the same device as the directory itself (not a mount point inside it).
    pub same_fs: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The user has nothing running on the node: remove all of the user's objects.
    Everything,
    /// The user still runs something here: remove only provably dead shm segments.
    DeadOnly,
}

/// What is left in place on purpose, for the log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub shm: usize,
    pub sem: usize,
    pub msg: usize,
    pub files: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub mode: Mode,
    pub shm: Vec<ShmSeg>,
    pub sem: Vec<SemSet>,
    pub msg: Vec<MsgQueue>,
    pub files: Vec<ShmFile>,
    pub kept: Kept,
}

impl Plan {
    pub fn shm_bytes(&self) -> u64 {
        self.shm.iter().map(|s| s.size).sum()
    }

    pub fn file_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shm.is_empty() && self.sem.is_empty() && self.msg.is_empty() && self.files.is_empty()
    }
}

/// Why nothing is planned at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// uid 0 or below `min_uid`.
    SystemAccount { uid: u32, min_uid: u32 },
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::SystemAccount { uid, min_uid } => {
                write!(
                    f,
                    "uid {uid} is below min_uid {min_uid}: system accounts are never cleaned"
                )
            }
        }
    }
}

/// Everything gathered on the node.
pub struct Gathered<'a> {
    pub shm: &'a [ShmSeg],
    pub sem: &'a [SemSet],
    pub msg: &'a [MsgQueue],
    pub files: &'a [ShmFile],
}

/// A shm segment nobody can be using: unattached, and its creator and last user are gone
/// (pid 0 means "none").
pub fn shm_is_dead(seg: &ShmSeg, pid_alive: &dyn Fn(i32) -> bool) -> bool {
    let gone = |pid: i32| pid <= 0 || !pid_alive(pid);
    seg.nattch == 0 && gone(seg.cpid) && gone(seg.lpid)
}

fn file_removable(f: &ShmFile, uid: u32, cfg: &Config) -> bool {
    f.uid == uid
        && f.kind == FileKind::Regular
        && f.same_fs
        && f.name.to_str().is_some_and(|n| cfg.name_allowed(n))
}

pub fn decide(
    uid: u32,
    cfg: &Config,
    user_live: bool,
    pid_alive: &dyn Fn(i32) -> bool,
    g: &Gathered<'_>,
) -> Result<Plan, Skip> {
    if uid == 0 || uid < cfg.min_uid {
        return Err(Skip::SystemAccount {
            uid,
            min_uid: cfg.min_uid,
        });
    }
    let own_shm = g.shm.iter().filter(|s| s.uid == uid);
    let own_sem = g.sem.iter().filter(|s| s.uid == uid);
    let own_msg = g.msg.iter().filter(|m| m.uid == uid);
    let own_files = g.files.iter().filter(|f| file_removable(f, uid, cfg));

    if user_live {
        let (dead, live): (Vec<ShmSeg>, Vec<ShmSeg>) =
            own_shm.cloned().partition(|s| shm_is_dead(s, pid_alive));
        return Ok(Plan {
            mode: Mode::DeadOnly,
            shm: dead,
            sem: Vec::new(),
            msg: Vec::new(),
            files: Vec::new(),
            kept: Kept {
                shm: live.len(),
                sem: own_sem.count(),
                msg: own_msg.count(),
                files: own_files.count(),
            },
        });
    }
    let sem: Vec<SemSet> = own_sem.cloned().collect();
    let msg: Vec<MsgQueue> = own_msg.cloned().collect();
    let files: Vec<ShmFile> = own_files.cloned().collect();
    let kept = Kept {
        shm: 0,
        sem: if cfg.clean_sem { 0 } else { sem.len() },
        msg: if cfg.clean_msg { 0 } else { msg.len() },
        files: if cfg.clean_files { 0 } else { files.len() },
    };
    Ok(Plan {
        mode: Mode::Everything,
        shm: own_shm.cloned().collect(),
        sem: if cfg.clean_sem { sem } else { Vec::new() },
        msg: if cfg.clean_msg { msg } else { Vec::new() },
        files: if cfg.clean_files { files } else { Vec::new() },
        kept,
    })
}

#[cfg(test)]
#[path = "tests/plan.rs"]
mod tests;
