//! The two SysV IPC calls ml-epilog makes, `IPC_STAT` and `IPC_RMID` on shm segments,
//! semaphore sets and message queues. nix has no SysV IPC, so they go through libc here:
//! the one module of the workspace outside the FFI crates allowed `unsafe` (the workspace
//! forbids it; this crate denies it and lifts that for this module only).
#![allow(unsafe_code)]

use nix::errno::Errno;

/// The three kinds of SysV IPC object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipc {
    Shm,
    Sem,
    Msg,
}

impl Ipc {
    pub fn name(self) -> &'static str {
        match self {
            Ipc::Shm => "shm",
            Ipc::Sem => "sem",
            Ipc::Msg => "msg",
        }
    }
}

/// What IPC_STAT says now: the owner, and for shm the attachments and pids.
pub struct IpcStat {
    pub owner: u32,
    pub nattch: u64,
    pub cpid: i32,
    pub lpid: i32,
}

fn check(rc: libc::c_int) -> Result<(), Errno> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

pub fn ipc_stat(kind: Ipc, id: i32) -> Result<IpcStat, Errno> {
    // SAFETY: each *_ds is plain data that IPC_STAT fills through a valid pointer (for
    // semctl the fourth argument is semun.buf, a semid_ds pointer).
    unsafe {
        match kind {
            Ipc::Shm => {
                let mut ds: libc::shmid_ds = std::mem::zeroed();
                check(libc::shmctl(id, libc::IPC_STAT, &mut ds))?;
                Ok(IpcStat {
                    owner: ds.shm_perm.uid,
                    nattch: ds.shm_nattch as u64,
                    cpid: ds.shm_cpid,
                    lpid: ds.shm_lpid,
                })
            }
            Ipc::Sem => {
                let mut ds: libc::semid_ds = std::mem::zeroed();
                check(libc::semctl(
                    id,
                    0,
                    libc::IPC_STAT,
                    &mut ds as *mut libc::semid_ds,
                ))?;
                Ok(IpcStat {
                    owner: ds.sem_perm.uid,
                    nattch: 0,
                    cpid: 0,
                    lpid: 0,
                })
            }
            Ipc::Msg => {
                let mut ds: libc::msqid_ds = std::mem::zeroed();
                check(libc::msgctl(id, libc::IPC_STAT, &mut ds))?;
                Ok(IpcStat {
                    owner: ds.msg_perm.uid,
                    nattch: 0,
                    cpid: 0,
                    lpid: 0,
                })
            }
        }
    }
}

pub fn ipc_rmid(kind: Ipc, id: i32) -> Result<(), Errno> {
    // SAFETY: IPC_RMID takes no buffer.
    check(unsafe {
        match kind {
            Ipc::Shm => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            Ipc::Sem => libc::semctl(id, 0, libc::IPC_RMID),
            Ipc::Msg => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
        }
    })
}
