//! The SysV IPC calls the fixture makes (create a segment, a semaphore set, a queue; attach
//! a segment). nix has no SysV IPC, so they go through libc here: the workspace forbids
//! `unsafe`, this crate denies it and lifts that for this module only.
#![allow(unsafe_code)]

fn checked(what: &str, id: libc::c_int) -> Result<i32, String> {
    if id < 0 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(id)
    }
}

/// A new private shm segment of `size` bytes, mode 0600.
pub fn new_shm(size: usize) -> Result<i32, String> {
    // SAFETY: plain syscall.
    checked("shmget", unsafe {
        libc::shmget(libc::IPC_PRIVATE, size, libc::IPC_CREAT | 0o600)
    })
}

/// A new private set of one semaphore, mode 0600.
pub fn new_sem() -> Result<i32, String> {
    // SAFETY: plain syscall.
    checked("semget", unsafe {
        libc::semget(libc::IPC_PRIVATE, 1, libc::IPC_CREAT | 0o600)
    })
}

/// A new private message queue, mode 0600.
pub fn new_msg() -> Result<i32, String> {
    // SAFETY: plain syscall.
    checked("msgget", unsafe {
        libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600)
    })
}

/// A segment attached to this process until dropped.
pub struct Attached(*mut libc::c_void);

/// Attaches segment `id` anywhere (read-only with `read_only`).
pub fn attach(id: i32, read_only: bool) -> Result<Attached, String> {
    let flags = if read_only { libc::SHM_RDONLY } else { 0 };
    // SAFETY: attach at an address the kernel picks; the mapping is never read or written
    // here, and detached in Drop.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if addr as isize == -1 {
        return Err(format!("shmat: {}", std::io::Error::last_os_error()));
    }
    Ok(Attached(addr))
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: the address came from shmat and is detached once.
        unsafe { libc::shmdt(self.0) };
    }
}
