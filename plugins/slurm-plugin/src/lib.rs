//! The safe layer every plugin of this project is built on. It is the only place with
//! `unsafe` FFI; plugin crates inherit the workspace's `unsafe_code = "forbid"` and use:
//!
//! - [`spank_plugin!`] / [`job_submit_plugin!`]: export `plugin_name`, `plugin_type`,
//!   `plugin_version` and exactly the entry points a plugin implements, each behind
//!   [`guard`];
//! - [`guard`]: the FFI guard; no panic ever unwinds into Slurm;
//! - [`spank::Spank`]: the SPANK handle (items, environment, context, options);
//! - [`job_submit::JobDesc`]: a view of `job_desc_msg_t` whose string setters allocate
//!   with Slurm's allocator ([`xstr`]);
//! - [`hostlist::HostList`]: Slurm's own hostlist expansion;
//! - [`assoc`]: slurmctld's association manager (a user's default account);
//! - [`conf`]: the daemon's slurm.conf (path, last read, a node's `NodeAddr`);
//! - [`log`]: a `tracing` subscriber that writes through Slurm's log calls;
//! - `slurmdb` (feature `slurmdb`, helpers only): slurmdbd job records and slurmctld's
//!   association usage, copied into plain values.

// The FFI guard stops a panic at the extern "C" edge with catch_unwind; under
// panic = "abort" there is nothing to catch and any panic kills slurmctld or slurmstepd.
#[cfg(panic = "abort")]
compile_error!(
    "slurm-plugin needs panic = \"unwind\": its FFI guard catches panics with catch_unwind; \
     with panic = \"abort\" a panic in a plugin kills the Slurm daemon that loaded it"
);

pub mod assoc;
pub mod conf;
pub mod guard;
pub mod hostlist;
pub mod job_submit;
pub mod log;
pub mod rc;
#[cfg(feature = "slurmdb")]
pub mod slurmdb;
pub mod spank;
pub mod xstr;

pub use guard::guard;

/// For the export macros only: they expand in plugin crates, which do not depend on these.
#[doc(hidden)]
pub mod __private {
    pub use slurm_sys;
    pub use std::os::raw::{c_char, c_int};

    /// The Slurm release the plugin is built for: Slurm's loader compares it with its own
    /// `SLURM_VERSION_NUMBER` (all of major.minor.micro for job_submit; major.minor for SPANK).
    pub const PLUGIN_VERSION: u32 = slurm_sys::SLURM_VERSION_NUMBER;

    /// Copies a NUL-terminated string into the fixed-size array Slurm reads as
    /// `const char plugin_name[]`.
    pub const fn c_array<const N: usize>(s: &str) -> [u8; N] {
        let bytes = s.as_bytes();
        assert!(bytes.len() == N, "length mismatch"); // ok-panic: compile time only
        assert!(bytes[N - 1] == 0, "not NUL-terminated"); // ok-panic: compile time only
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            assert!(i == N - 1 || bytes[i] != 0, "interior NUL"); // ok-panic: compile time only
            out[i] = bytes[i];
            i += 1;
        }
        out
    }
}

/// Exports `plugin_name`, `plugin_type` and `plugin_version` as Slurm's loader reads them.
///
/// The export macros carry no `#[allow(unsafe_code)]`: the plugin crates that expand them
/// forbid `unsafe_code`, which no attribute can lift (an `allow` there is error E0453), and
/// rustc does not report that lint for what a macro of another crate generates (here
/// `#[unsafe(no_mangle)]` and the `unsafe extern "C" fn` entry points). Should a rustc ever
/// report it, the plugin crates stop building: the line fails closed.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin_identity {
    ($name:expr, $type:expr) => {
        const __PLUGIN_NAME: &str = concat!($name, "\0");
        const __PLUGIN_TYPE: &str = concat!($type, "\0");
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static plugin_name: [u8; __PLUGIN_NAME.len()] =
            $crate::__private::c_array(__PLUGIN_NAME);
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static plugin_type: [u8; __PLUGIN_TYPE.len()] =
            $crate::__private::c_array(__PLUGIN_TYPE);
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static plugin_version: u32 = $crate::__private::PLUGIN_VERSION;
    };
}

// Unit tests run outside any Slurm daemon: take Slurm's symbols from its library.
#[cfg(test)]
#[link(name = "slurmfull")]
extern "C" {}
