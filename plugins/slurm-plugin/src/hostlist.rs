//! Slurm's own hostlist expansion (`n[1-3,7]` -> n1 n2 n3 n7) through the host daemon's
//! `slurm_hostlist_*` functions: the grammar is Slurm's, so it is not re-implemented here.

use std::ffi::{CStr, CString};

use slurm_sys as sys;

// 23.11 made hostlist_t an opaque struct and the functions take `hostlist_t *`; before, the
// typedef itself was the pointer (slurm.h, SchedMD/slurm 23.02 -> 23.11).
#[cfg(slurm_ge_23_11)]
type RawHostList = *mut sys::hostlist_t;
#[cfg(not(slurm_ge_23_11))]
type RawHostList = sys::hostlist_t;

/// An owned Slurm hostlist; destroyed on drop.
pub struct HostList {
    raw: RawHostList,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHostList(pub String);

impl std::fmt::Display for BadHostList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slurm cannot parse the host list {:?}", self.0)
    }
}

impl std::error::Error for BadHostList {}

impl HostList {
    pub fn parse(expr: &str) -> Result<Self, BadHostList> {
        let c = CString::new(expr).map_err(|_| BadHostList(expr.to_string()))?;
        // SAFETY: valid C string; returns NULL on a parse error.
        let raw = unsafe { sys::slurm_hostlist_create(c.as_ptr()) };
        if raw.is_null() {
            return Err(BadHostList(expr.to_string()));
        }
        Ok(HostList { raw })
    }

    /// Removes and returns the first host.
    pub fn shift(&mut self) -> Option<String> {
        // SAFETY: `raw` is a live hostlist. The result is malloc()ed by hostrange_shift
        // (src/common/hostlist.c), so it is released with free(), not xfree().
        unsafe {
            let p = sys::slurm_hostlist_shift(self.raw);
            if p.is_null() {
                return None;
            }
            let host = CStr::from_ptr(p).to_string_lossy().into_owned();
            libc::free(p as *mut libc::c_void);
            Some(host)
        }
    }

    /// The first host of `expr`, without expanding the rest.
    pub fn first(expr: &str) -> Result<Option<String>, BadHostList> {
        Ok(HostList::parse(expr)?.shift())
    }

    /// Every host, in order.
    pub fn expand(expr: &str) -> Result<Vec<String>, BadHostList> {
        let mut hl = HostList::parse(expr)?;
        Ok(std::iter::from_fn(|| hl.shift()).collect())
    }
}

impl Drop for HostList {
    fn drop(&mut self) {
        // SAFETY: created by slurm_hostlist_create, destroyed once.
        unsafe { sys::slurm_hostlist_destroy(self.raw) }
    }
}

#[cfg(test)]
#[path = "tests/hostlist.rs"]
mod tests;
