//! `ml-epilog`: the Slurm Epilog that removes what a finished job left in SysV IPC and
//! `/dev/shm` (NCCL segments and files), without forking, without touching other users'
//! objects, and without following a symlink as root.
//!
//! Layout: [`sysvipc`] parses `/proc/sysvipc/*`, [`config`] loads `ml-epilog.conf`,
//! [`plan`] decides (pure), [`node`] gathers and removes (its SysV calls in `ipc_ctl`),
//! [`run`] ties them together.

pub mod config;
mod ipc_ctl;
pub mod node;
pub mod plan;
pub mod run;
pub mod sysvipc;
