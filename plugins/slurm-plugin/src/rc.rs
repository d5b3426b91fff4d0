//! Slurm return codes a plugin hands back, as `c_int`, from the installed `slurm_errno.h`.

use std::os::raw::c_int;

use slurm_sys as sys;

pub const SUCCESS: c_int = sys::SLURM_SUCCESS as c_int;
pub const ERROR: c_int = sys::SLURM_ERROR as c_int;
pub const ESLURM_INVALID_PARTITION_NAME: c_int = sys::ESLURM_INVALID_PARTITION_NAME as c_int;
pub const ESLURM_ACCESS_DENIED: c_int = sys::ESLURM_ACCESS_DENIED as c_int;
pub const ESLURM_INVALID_NODE_COUNT: c_int = sys::ESLURM_INVALID_NODE_COUNT as c_int;
pub const ESLURM_INVALID_ACCOUNT: c_int = sys::ESLURM_INVALID_ACCOUNT as c_int;
pub const ESLURM_INVALID_TIME_LIMIT: c_int = sys::ESLURM_INVALID_TIME_LIMIT as c_int;
pub const ESLURM_INVALID_WCKEY: c_int = sys::ESLURM_INVALID_WCKEY as c_int;
pub const ESLURM_INVALID_QOS: c_int = sys::ESLURM_INVALID_QOS as c_int;
pub const ESLURM_INVALID_GRES: c_int = sys::ESLURM_INVALID_GRES as c_int;
pub const ESLURM_INVALID_TRES: c_int = sys::ESLURM_INVALID_TRES as c_int;
pub const ESLURM_INVALID_CPU_COUNT: c_int = sys::ESLURM_INVALID_CPU_COUNT as c_int;

#[cfg(test)]
#[path = "tests/rc.rs"]
mod tests;
