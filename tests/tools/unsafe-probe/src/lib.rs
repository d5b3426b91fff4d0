//! Proof that the workspace's `unsafe_code = "forbid"` holds, for scripts/check-safety.sh.
//! Built as usual this crate is empty. Built with `--cfg unsafe_probe="block"` it writes an
//! `unsafe` block, and with `--cfg unsafe_probe="allow"` it also tries to lift the lint for
//! one module: both must fail, the way any crate that inherits the workspace's lints would.

#[cfg(unsafe_probe = "block")]
pub fn block() {
    #[allow(unused_unsafe)]
    unsafe {}
}

#[cfg(unsafe_probe = "allow")]
#[allow(unsafe_code)]
pub mod lifted {
    pub fn block() {
        #[allow(unused_unsafe)]
        unsafe {}
    }
}
