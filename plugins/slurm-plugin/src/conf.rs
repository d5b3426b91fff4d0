//! The host daemon's slurm.conf, as Slurm loaded it: its path, when it was read, and the
//! node table. Read through libslurmfull's own data (`slurm_conf`) and functions, looked up
//! at run time: they are internal to Slurm, not in slurm.h.

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;

use slurm_sys as sys;

type GetAddress = unsafe extern "C" fn(*const c_char) -> *mut c_char;

/// The `NodeAddr` slurm.conf gives `node` (its name when none is set), or `None` when the
/// process has no such table or no such node.
///
/// Calls libslurmfull's `slurm_conf_get_address` (src/common/read_config.c, same signature
/// 22.05 through 25.11). It is internal to Slurm, not in slurm.h, so it is looked up at run
/// time instead of linked: a release without it gives `None`, not a plugin that fails to
/// load. It takes Slurm's config lock: call it from a hook of the main process
/// (`user_init`), never from a forked task.
pub fn node_address(node: &str) -> Option<String> {
    let name = CString::new(node).ok()?;
    // SAFETY: dlsym with a valid C string; RTLD_DEFAULT searches the host process.
    let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"slurm_conf_get_address".as_ptr()) };
    if sym.is_null() {
        return None;
    }
    // SAFETY: the symbol is slurm_conf_get_address, `char *(const char *)` in every release
    // this project builds for.
    let get: GetAddress = unsafe { std::mem::transmute::<*mut c_void, GetAddress>(sym) };
    // SAFETY: valid C string; the result is NULL or an xmalloc'd string we now own.
    let mut p = unsafe { get(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, NUL-terminated.
    let addr = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: allocated by Slurm's allocator; xfree sets `p` to NULL.
    unsafe { sys::slurm_xfree(&mut p as *mut *mut c_char as *mut *mut c_void) };
    Some(addr).filter(|a| !a.is_empty())
}

/// libslurmfull's global `slurm_conf` (src/common/read_config.c), whose layout is
/// `slurm_conf_t` of the installed slurm.h.
fn global() -> Option<&'static sys::slurm_conf_t> {
    // Looked up once: the address does not change for the life of the process, and
    // job_submit reads `last_update` on every call.
    static ADDR: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let addr = *ADDR.get_or_init(|| {
        // SAFETY: dlsym with a valid C string.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"slurm_conf".as_ptr()) as usize }
    });
    // SAFETY: the symbol is the daemon's `slurm_conf_t slurm_conf`, which lives as long as
    // the process; callers read it under the lock Slurm holds while calling the plugin.
    unsafe { (addr as *const sys::slurm_conf_t).as_ref() }
}

/// A path-valued field of `slurm_conf`.
fn path_field(field: fn(&sys::slurm_conf_t) -> *mut c_char) -> Option<std::path::PathBuf> {
    let conf = global()?;
    // SAFETY: NULL or a string Slurm owns for as long as this configuration.
    let p = unsafe { crate::xstr::borrow(field(conf)) }?;
    Some(std::path::PathBuf::from(p.into_owned()))
}

/// The slurm.conf the daemon read (`slurmctld -f`, `SLURM_CONF`, or the built-in default).
pub fn path() -> Option<std::path::PathBuf> {
    path_field(|c| c.slurm_conf)
}

/// When the daemon last read its configuration (`scontrol reconfigure` changes it): a plain
/// memory read, cheap enough for every call of a hot path.
pub fn last_update() -> Option<i64> {
    global().map(|c| c.last_update)
}

/// `StateSaveLocation`: where slurmctld keeps state across restarts.
pub fn state_save_location() -> Option<std::path::PathBuf> {
    path_field(|c| c.state_save_location)
}
