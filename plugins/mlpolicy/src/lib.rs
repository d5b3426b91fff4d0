//! The policy engine of the `mlpolicy` job_submit plugin, with no FFI:
//!
//! - [`gres`]: the one parser of GPU requests in `tres_per_*` strings, every release's form;
//! - [`config`]: the site policy (`mlpolicy.json`), checked when loaded;
//! - [`domains`]: accounting domains (the `accounting` section): which partitions, which tags;
//! - [`bounds`]: the most a request can be given (nodes, tasks, GPUs, CPUs per GPU);
//! - [`tagging`]: a submission's accounting domain and its tags (account, wckey, admin_comment);
//! - [`engine`]: the rules, a [`engine::Job`] in, a [`engine::Verdict`] out.
//!
//! The job_submit adapter and `mlpolicy validate` build on it.

pub mod bounds;
pub mod config;
pub mod domains;
pub mod engine;
pub mod gres;
pub mod tagging;
