//! The workspace root package. It holds no code of its own: its build script checks the
//! installed Slurm (headers present, daemons of the same release), and its `tests/` are the
//! integration tests that run real Slurm daemons through the `local-cluster` crate.

/// The Slurm release whose headers this workspace was built against, e.g. `22.05.8`.
pub const SLURM_HEADERS_VERSION: &str = env!("SLURM_ML_HEADERS_VERSION");
