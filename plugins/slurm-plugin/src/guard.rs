//! The FFI guard: every `extern "C"` entry point of a plugin runs its body through
//! [`guard`], so a panic never unwinds into slurmctld, slurmd or slurmstepd. A panic is
//! logged (with its message and source location) and becomes a Slurm error code; the
//! daemon stays up and the request that hit it fails cleanly.

use std::cell::{Cell, RefCell};
use std::os::raw::c_int;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::log::{self, SlurmLevel};

thread_local! {
    static IN_GUARD: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Replaces the default panic hook (which prints to a stderr nobody reads in a daemon) with
/// one that records the panic for the guard, or logs it through Slurm outside a guard.
fn install_panic_hook() {
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            let text = match info.location() {
                Some(loc) => format!("{msg} (at {}:{})", loc.file(), loc.line()),
                None => msg,
            };
            if IN_GUARD.with(|g| g.get()) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else {
                log::write(
                    SlurmLevel::Error,
                    &format!("{}: panic outside an entry point: {text}", log::prefix()),
                );
            }
        }));
    });
}

/// What a caught panic turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked {
    /// The panic message with its source location.
    pub message: String,
}

/// The calling thread's `errno`.
fn errno() -> c_int {
    // SAFETY: glibc's __errno_location returns this thread's errno slot, valid for the
    // thread's lifetime.
    unsafe { *libc::__errno_location() }
}

pub(crate) fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

/// Runs `body`, catching any panic. Returns the body's value, or [`Panicked`] after logging
/// `"<prefix>: <entry>: internal error (panic): <message>"` at error level.
///
/// `errno` is left as the caller had it: a futex wait or a failed stat in the plugin must not
/// leak into the daemon, which reads `errno` after some calls without setting it first (see
/// `job_submit::run_call` for the one place where a clean 0 is handed back instead).
pub fn catch<T>(entry: &str, body: impl FnOnce() -> T) -> Result<T, Panicked> {
    let saved_errno = errno();
    let result = catch_inner(entry, body);
    set_errno(saved_errno);
    result
}

fn catch_inner<T>(entry: &str, body: impl FnOnce() -> T) -> Result<T, Panicked> {
    install_panic_hook();
    let was_in_guard = IN_GUARD.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(body));
    IN_GUARD.with(|g| g.set(was_in_guard));
    result.map_err(|_| {
        let message = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "unknown panic".to_string());
        log::write(
            SlurmLevel::Error,
            &format!(
                "{}: {entry}: internal error (panic): {message}",
                log::prefix()
            ),
        );
        Panicked { message }
    })
}

/// The guard for entry points that return a Slurm return code: a panic becomes
/// `SLURM_ERROR` (-1).
pub fn guard(entry: &str, body: impl FnOnce() -> c_int) -> c_int {
    catch(entry, body).unwrap_or(crate::rc::ERROR)
}

#[cfg(test)]
#[path = "tests/guard.rs"]
mod tests;
