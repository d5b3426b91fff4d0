//! `mlacct`: usage per accounting domain, account and user over a period, from slurmdbd's
//! job records and slurmctld's association usage. This library is the pure part (no FFI):
//!
//! - [`tres`]: the one reader of slurmdbd's stored TRES strings (`1=8,5=80,1001=2`);
//! - [`report`]: the arithmetic: period clipping, domains, totals, cost, budgets left;
//! - [`render`]: the table for people, CSV and JSON;
//! - [`cli`]: the command line.
//!
//! `main.rs` reads Slurm through `slurm_plugin::slurmdb` and hands plain values in here.

pub mod cli;
pub mod render;
pub mod report;
pub mod tres;
