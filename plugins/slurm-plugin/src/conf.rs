//! The host daemon's slurm.conf, as Slurm loaded it: its path, when it was read, what it
//! enforces, and the node table. Read through libslurmfull's own data (`slurm_conf`) and
//! functions, looked up at run time: they are internal to Slurm, not in slurm.h.

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
/// `slurm_conf_t` of the installed slurm.h. A raw pointer, never a reference: slurmctld
/// rewrites this memory on every reconfigure, so each field is read at the moment of use.
fn global() -> Option<*const sys::slurm_conf_t> {
    // Looked up once: the address does not change for the life of the process, and
    // job_submit reads `last_update` on every call.
    static ADDR: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let addr = *ADDR.get_or_init(|| {
        // SAFETY: dlsym with a valid C string.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"slurm_conf".as_ptr()) as usize }
    });
    (addr != 0).then_some(addr as *const sys::slurm_conf_t)
}

/// Reads one field of `slurm_conf` by value, through the raw pointer (no reference to the
/// struct is ever formed). Volatile: the field may change under us between two calls, and
/// each call must see it as it is now.
macro_rules! field {
    ($field:ident) => {
        global().map(|conf| {
            // SAFETY: `conf` is the daemon's `slurm_conf`, alive for the whole process;
            // the field is a plain value of the installed slurm.h's layout, aligned.
            unsafe { std::ptr::addr_of!((*conf).$field).read_volatile() }
        })
    };
}

/// A string field of `slurm_conf`, copied out at once. Only from a thread that holds
/// Slurm's config lock or runs before slurmctld reconfigures (init): the string is freed
/// and replaced on reconfigure.
fn string_field(p: Option<*mut c_char>) -> Option<String> {
    // SAFETY: NULL or a string Slurm owns for as long as this configuration; copied here.
    let s = unsafe { crate::xstr::borrow(p?) }?;
    Some(s.into_owned())
}

fn path_field(p: Option<*mut c_char>) -> Option<std::path::PathBuf> {
    string_field(p).map(std::path::PathBuf::from)
}

/// The slurm.conf the daemon read (`slurmctld -f`, `SLURM_CONF`, or the built-in default).
pub fn path() -> Option<std::path::PathBuf> {
    path_field(field!(slurm_conf))
}

/// When the daemon last read its configuration (`scontrol reconfigure` changes it): a plain
/// memory read, cheap enough for every call of a hot path, and safe from any thread (an
/// aligned integer, never freed).
pub fn last_update() -> Option<i64> {
    field!(last_update)
}

/// `AccountingStorageType` (`accounting_storage/slurmdbd`, `accounting_storage/none`, ...),
/// copied out. Same rule as the path fields: read it in `init`.
pub fn accounting_storage_type() -> Option<String> {
    string_field(field!(accounting_storage_type))
}

/// Where slurmdbd is (`AccountingStorageHost`, `AccountingStoragePort`), for messages.
pub fn slurmdbd_address() -> Option<String> {
    let host = string_field(field!(accounting_storage_host))?;
    let port = field!(accounting_storage_port)?;
    Some(format!("{host}:{port}"))
}

/// `ClusterName`, copied out.
pub fn cluster_name() -> Option<String> {
    string_field(field!(cluster_name))
}

/// `StateSaveLocation`: where slurmctld keeps state across restarts.
pub fn state_save_location() -> Option<std::path::PathBuf> {
    path_field(field!(state_save_location))
}

/// `ACCOUNTING_ENFORCE_ASSOCS`: src/common/read_config.h (`SLURM_BIT(0)` from 22.05
/// through 24.11), not in slurm.h. `AccountingStorageEnforce=associations` sets it, and so
/// do `limits`, `qos`, `safe`, `wckeys` and `all` (read_config.c,
/// `_validate_accounting_storage_enforce`).
const ACCOUNTING_ENFORCE_ASSOCS: u16 = 1 << 0;

/// Whether slurmctld refuses jobs without a valid association (user, account, partition):
/// only then is a job's `--account` one its user belongs to. A plain integer read, safe
/// from any thread.
pub fn associations_enforced() -> Option<bool> {
    field!(accounting_storage_enforce).map(|f| f & ACCOUNTING_ENFORCE_ASSOCS != 0)
}
