//! Strings handed to Slurm: allocated with Slurm's allocator (`slurm_xstrdup`), because
//! Slurm frees them with `xfree`, which expects its own header 16 bytes before the pointer.
//! A Rust or libc allocation freed that way corrupts the daemon's heap.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;

use slurm_sys as sys;

/// A string that cannot be passed to C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteriorNul(pub String);

impl std::fmt::Display for InteriorNul {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "value contains a NUL byte: {:?}", self.0)
    }
}

impl std::error::Error for InteriorNul {}

/// Duplicates `s` with Slurm's allocator. The caller hands the pointer to Slurm, which owns
/// it from then on.
pub fn xstrdup(s: &str) -> Result<*mut c_char, InteriorNul> {
    let c = CString::new(s).map_err(|_| InteriorNul(s.to_string()))?;
    // SAFETY: `c` is a valid C string; slurm_xstrdup copies it into Slurm-owned memory.
    Ok(unsafe { sys::slurm_xstrdup(c.as_ptr()) })
}

/// Like [`xstrdup`], but replaces NULs so a message is never lost on the way to the user.
pub fn xstrdup_lossy(s: &str) -> *mut c_char {
    let c = crate::log::c_message(s);
    // SAFETY: `c` is a valid C string.
    unsafe { sys::slurm_xstrdup(c.as_ptr()) }
}

/// Replaces a Slurm-owned string field: frees the old value with `xfree`, stores an
/// `xstrdup` of the new one (or NULL for `None`).
///
/// # Safety
/// `*field` must be NULL or a string allocated by Slurm's allocator that nobody else frees.
pub unsafe fn replace(field: &mut *mut c_char, value: Option<&str>) -> Result<(), InteriorNul> {
    let new = match value {
        Some(v) => xstrdup(v)?,
        None => ptr::null_mut(),
    };
    if !field.is_null() {
        // SAFETY: per the contract, the old value is Slurm-allocated; xfree sets it to NULL.
        unsafe { sys::slurm_xfree(field as *mut *mut c_char as *mut *mut std::os::raw::c_void) };
    }
    *field = new;
    Ok(())
}

/// Reads a C string field Slurm owns, without taking ownership. Invalid UTF-8 is read lossily.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that outlives `'a`.
pub unsafe fn borrow<'a>(p: *const c_char) -> Option<std::borrow::Cow<'a, str>> {
    if p.is_null() {
        None
    } else {
        // SAFETY: per the contract.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy())
    }
}

#[cfg(test)]
#[path = "tests/xstr.rs"]
mod tests;
