//! `ml-healthcheck`: GPU health for Slurm nodes, in the NHC/DCGM style: gather a
//! [`snapshot::Snapshot`] (from NVML, or from a JSON file), read the kernel log for XIDs,
//! judge both with pure code ([`evaluate`]), then act through Slurm (drain, resume) and
//! report (human lines, JSON, a Prometheus textfile).

pub mod active;
pub mod active_run;
pub mod config;
pub mod counters;
pub mod dcgm;
pub mod deadline;
pub mod evaluate;
pub mod fleet;
pub mod gather;
pub mod hysteresis;
pub mod ibports;
pub mod jobmap;
pub mod kevents;
pub mod kmsg;
pub mod nccl;
pub mod node;
pub mod nvml_fabric;
pub mod pci_aer;
pub mod reason;
pub mod reboots;
pub mod repair;
pub mod report;
pub mod run;
pub mod snapshot;
pub mod sources;
pub mod state;
pub mod xid;
