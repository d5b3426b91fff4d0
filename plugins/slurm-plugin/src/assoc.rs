//! slurmctld's association manager (assoc_mgr): what slurmdbd knows of users and accounts,
//! kept in slurmctld's memory. Read here for what job_submit cannot see in `job_desc`.
//!
//! Slurm fills in a job's default account only after job_submit has run; job_submit/lua's
//! `default_account` finds it with `assoc_mgr_fill_in_user(acct_db_conn, &user,
//! accounting_enforce, NULL, false)` on a zeroed `slurmdb_user_rec_t` with `uid` set
//! (src/plugins/job_submit/lua/job_submit_lua.c, 22.05, 24.11 and 26.05 alike). We do the
//! same with two differences, both to stay off the network and off freed memory:
//! - `locked = true` under our own `assoc_mgr_lock({.user = READ_LOCK})`: with `false`,
//!   assoc_mgr_fill_in_user asks slurmdbd for the user list when it has none
//!   (`_get_assoc_mgr_user_list`), a network call under slurmctld's locks; we answer `None`
//!   instead.
//! - The default account it hands back is assoc_mgr's own string
//!   (`user->default_acct = found_user->default_acct`, src/common/assoc_mgr.c), never ours
//!   to free, and freed by assoc_mgr when slurmdbd sends an update: it is copied while the
//!   lock is held.
//!
//! All of these are slurmctld's or libslurmfull's internal symbols, not in slurm.h, looked
//! up with `dlsym(RTLD_DEFAULT)` (as `default_part_name` is): outside slurmctld everything
//! here is `None`. Signatures, checked in 22.05.8, 24.11.5 and 26.05.3 (assoc_mgr.h,
//! slurmctld.h, locks.h):
//! - `int assoc_mgr_fill_in_user(void *db_conn, slurmdb_user_rec_t *user, int enforce,
//!   slurmdb_user_rec_t **user_pptr, bool locked)`;
//! - `void assoc_mgr_lock(assoc_mgr_lock_t *)`, `void assoc_mgr_unlock(assoc_mgr_lock_t *)`,
//!   `assoc_mgr_lock_t` = seven `lock_level_t` (assoc, file, qos, res, tres, user, wckey),
//!   `lock_level_t` = enum { NO_LOCK, READ_LOCK, WRITE_LOCK };
//! - `List`/`list_t *assoc_mgr_user_list`; slurmctld's `void *acct_db_conn` and
//!   `uint16_t accounting_enforce`.

use std::ffi::{c_void, CStr};
use std::os::raw::{c_char, c_int};
use std::sync::OnceLock;

use slurm_sys as sys;

/// `lock_level_t` (src/slurmctld/locks.h): a C enum, an `int`.
const NO_LOCK: c_int = 0;
const READ_LOCK: c_int = 1;

/// `assoc_mgr_lock_t` (src/common/assoc_mgr.h), field for field.
#[repr(C)]
struct AssocMgrLock {
    assoc: c_int,
    file: c_int,
    qos: c_int,
    res: c_int,
    tres: c_int,
    user: c_int,
    wckey: c_int,
}

const USER_READ: AssocMgrLock = AssocMgrLock {
    assoc: NO_LOCK,
    file: NO_LOCK,
    qos: NO_LOCK,
    res: NO_LOCK,
    tres: NO_LOCK,
    user: READ_LOCK,
    wckey: NO_LOCK,
};

type FillInUser = unsafe extern "C" fn(
    *mut c_void,
    *mut sys::slurmdb_user_rec_t,
    c_int,
    *mut *mut sys::slurmdb_user_rec_t,
    bool,
) -> c_int;
type Lock = unsafe extern "C" fn(*mut AssocMgrLock);

/// The symbols, looked up once (their addresses do not change for the life of slurmctld).
#[derive(Clone, Copy)]
struct Symbols {
    fill_in_user: FillInUser,
    lock: Lock,
    unlock: Lock,
    /// `&assoc_mgr_user_list`
    user_list: *const *const c_void,
    /// `&acct_db_conn`
    db_conn: *const *mut c_void,
    /// `&accounting_enforce`
    enforce: *const u16,
}

// SAFETY: addresses of functions and globals of the host process, valid on every thread.
unsafe impl Send for Symbols {}
// SAFETY: as above; the globals are read only through the functions and under their locks.
unsafe impl Sync for Symbols {}

fn lookup(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with a valid C string; RTLD_DEFAULT searches the host process.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

fn symbols() -> Option<Symbols> {
    static SYMBOLS: OnceLock<Option<Symbols>> = OnceLock::new();
    *SYMBOLS.get_or_init(|| {
        // SAFETY (each transmute): the symbol is the function of that name, with the
        // signature in this module's header for every release this project builds for.
        Some(Symbols {
            fill_in_user: unsafe {
                std::mem::transmute::<*mut c_void, FillInUser>(lookup(c"assoc_mgr_fill_in_user")?)
            },
            lock: unsafe { std::mem::transmute::<*mut c_void, Lock>(lookup(c"assoc_mgr_lock")?) },
            unlock: unsafe {
                std::mem::transmute::<*mut c_void, Lock>(lookup(c"assoc_mgr_unlock")?)
            },
            user_list: lookup(c"assoc_mgr_user_list")? as *const *const c_void,
            db_conn: lookup(c"acct_db_conn")? as *const *mut c_void,
            enforce: lookup(c"accounting_enforce")? as *const u16,
        })
    })
}

/// The user's default account as slurmctld's association manager knows it (`sacctmgr add
/// user ... DefaultAccount=`), or `None`: not inside slurmctld, no accounting, the user
/// list not loaded yet (slurmdbd never reached), or no such user. Memory only: no slurmdbd
/// call, no NSS lookup, so it may run under slurmctld's locks (job_submit).
pub fn default_account(uid: u32) -> Option<String> {
    let s = symbols()?;
    let mut lock = USER_READ;
    // SAFETY: assoc_mgr_lock with a lock request of the installed layout; released below
    // on every path.
    unsafe { (s.lock)(&mut lock) };
    let found = fill_in_locked(&s, uid);
    let mut lock = USER_READ;
    // SAFETY: releases exactly what was taken above.
    unsafe { (s.unlock)(&mut lock) };
    found
}

/// Runs with assoc_mgr's user read lock held.
fn fill_in_locked(s: &Symbols, uid: u32) -> Option<String> {
    // SAFETY: the global `assoc_mgr_user_list`, read under its lock.
    if unsafe { std::ptr::read(s.user_list) }.is_null() {
        // With locked = true assoc_mgr would walk a NULL list where associations are
        // enforced; without the lock it would fetch the list from slurmdbd. Neither here.
        return None;
    }
    let mut user = sys::slurmdb_user_rec_t {
        uid,
        ..Default::default()
    };
    // SAFETY: slurmctld's globals (a pointer and an integer, set at start-up and on
    // reconfigure under slurmctld's config lock, which job_submit holds).
    let (db_conn, enforce) = unsafe { (std::ptr::read(s.db_conn), std::ptr::read(s.enforce)) };
    // SAFETY: a zeroed record with uid set, as job_submit/lua passes; user_pptr NULL;
    // locked = true: we hold the user read lock. The function fills `user` with pointers
    // into assoc_mgr's records, which we only read (below) and never free.
    let rc = unsafe {
        (s.fill_in_user)(
            db_conn,
            &mut user,
            c_int::from(enforce),
            std::ptr::null_mut(),
            true,
        )
    };
    if rc != crate::rc::SUCCESS {
        return None;
    }
    // SAFETY: NULL or assoc_mgr's NUL-terminated string, alive while the lock is held.
    let account = unsafe { crate::xstr::borrow(user.default_acct as *const c_char) }?;
    Some(account.into_owned()).filter(|a| !a.is_empty())
}
