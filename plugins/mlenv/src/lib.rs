//! The logic of the `mlenv` SPANK plugin, with no FFI: the adapter in `spank/` reads what
//! Slurm gives it (items, the step's environment, options), calls into here, and writes
//! the result back with `spank_setenv`.
//!
//! - [`config`]: plugstack.conf's `key=value` words and the JSON profiles file;
//! - [`options`]: the user's `--mlenv*` options and `SLURM_MLENV*` variables;
//! - [`values`]: the mode and the name checks those two share (a leaf: it imports neither);
//! - [`fabric`]: EFA / InfiniBand / none from sysfs, and the profile's library directories;
//! - [`env`]: rendezvous address and port, ranks, torchrun's `PET_*`, and precedence.

pub mod config;
pub mod env;
pub mod fabric;
pub mod options;
pub mod values;

/// Any error of this crate: a message for the daemon log and the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
