//! The rules: a [`Job`] (plain values read from `job_desc_msg_t`) in, a [`Verdict`] out.
//! Pure and thread-safe (no state), so calls may run concurrently (Slurm 23.02+).

use crate::config::{Kind, PartitionRules, Policy};
use crate::gres::GpuRequest;

/// What the engine needs of a submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Job {
    pub uid: u32,
    pub account: Option<String>,
    /// `-p a,b` as given; `None` when the user named none.
    pub partition: Option<String>,
    pub gpus: GpuRequest,
    pub min_nodes: Option<u32>,
    pub num_tasks: Option<u32>,
    pub ntasks_per_node: Option<u32>,
    pub cpus_per_task: Option<u32>,
    /// `--cpus-per-gpu` (`cpus_per_tres` of `gres/gpu`).
    pub cpus_per_gpu: Option<u64>,
    /// Minutes; `None` when not given.
    pub time_limit: Option<u32>,
    /// `--exclusive`.
    pub exclusive: bool,
    /// An update (`scontrol update job`, job_modify): only the fields it changes are set,
    /// the others are unknown rather than absent, so rules that need them are skipped.
    pub update: bool,
}

/// Slurm's return code family for a refusal; the adapter maps it to `ESLURM_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidGres,
    InvalidPartition,
    InvalidTimeLimit,
    InvalidNodeCount,
    InvalidCpuCount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    /// The rule's name, for the controller's log.
    pub rule: &'static str,
    /// One line for the user: which rule, what was asked, how to fix it.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept {
        /// The partition the job was routed to (it named none).
        route_to: Option<String>,
        /// The submitter skips the rules (uid 0 or a configured admin).
        exempt: bool,
    },
    Refuse(Refusal),
}

fn refuse(policy: &Policy, code: Code, rule: &'static str, message: String) -> Verdict {
    let message = match &policy.doc_url {
        Some(url) => format!("mlpolicy: {message} (see {url})"),
        None => format!("mlpolicy: {message}"),
    };
    Verdict::Refuse(Refusal {
        code,
        rule,
        message,
    })
}

pub fn is_exempt(policy: &Policy, job: &Job) -> bool {
    job.uid == 0
        || policy.admins.uids.contains(&job.uid)
        || (policy.accounts_enforced
            && job
                .account
                .as_ref()
                .is_some_and(|a| policy.admins.accounts.contains(a)))
}

/// Judges one submission (or one component of a het job, or an array).
pub fn evaluate(policy: &Policy, job: &Job) -> Verdict {
    if is_exempt(policy, job) {
        return Verdict::Accept {
            route_to: None,
            exempt: true,
        };
    }
    if job.gpus.has_zero() {
        return refuse(
            policy,
            Code::InvalidGres,
            "zero-gpus",
            "a request for 0 GPUs is not allowed: leave the GPU option out".into(),
        );
    }
    let (names, route_to) = match job.partition.as_deref().filter(|p| !p.is_empty()) {
        Some(list) => (
            list.split(',').map(str::to_string).collect::<Vec<_>>(),
            None,
        ),
        // An update that leaves the partition alone: the job's partition is not known here.
        None if job.update => (vec![], None),
        None => {
            let default = if job.gpus.asked() {
                &policy.default_gpu_partition
            } else {
                &policy.default_cpu_partition
            };
            match default {
                Some(p) => (vec![p.clone()], Some(p.clone())),
                None => (vec![], None),
            }
        }
    };
    for name in &names {
        if let Some(rules) = policy.rules(name) {
            if let Some(v) = check_partition(policy, name, rules, job) {
                return v;
            }
        }
    }
    Verdict::Accept {
        route_to,
        exempt: false,
    }
}

/// GPUs per node the job asks for, as far as the request says.
fn gpus_per_node(job: &Job) -> Option<u64> {
    job.gpus.per_node.or_else(|| {
        let per_task = job.gpus.per_task?;
        Some(per_task.saturating_mul(u64::from(job.ntasks_per_node?)))
    })
}

/// A lower bound of the job's GPUs in total.
fn gpus_total(job: &Job) -> Option<u64> {
    let nodes = u64::from(job.min_nodes.unwrap_or(1).max(1));
    [
        job.gpus.per_job,
        job.gpus.per_node.map(|n| n.saturating_mul(nodes)),
        job.gpus
            .per_task
            .map(|t| t.saturating_mul(u64::from(job.num_tasks.unwrap_or(1).max(1)))),
        job.gpus.per_socket.map(|s| s.saturating_mul(nodes)),
    ]
    .into_iter()
    .flatten()
    .max()
}

fn check_partition(policy: &Policy, name: &str, r: &PartitionRules, job: &Job) -> Option<Verdict> {
    let asked = job.gpus.asked();
    match r.kind {
        Some(Kind::Gpu) if !asked && !job.update => {
            let other = policy
                .default_cpu_partition
                .as_ref()
                .map(|c| format!(" (or submit to partition '{c}')"))
                .unwrap_or_default();
            return Some(refuse(
                policy,
                Code::InvalidGres,
                "gpu-partition-needs-gpus",
                format!("partition '{name}' needs a GPU request: add --gpus-per-node=N{other}"),
            ));
        }
        Some(Kind::Cpu) if asked => {
            let other = policy
                .default_gpu_partition
                .as_ref()
                .map(|g| format!(" (or submit to partition '{g}')"))
                .unwrap_or_default();
            return Some(refuse(
                policy,
                Code::InvalidGres,
                "cpu-partition-no-gpus",
                format!("partition '{name}' has no GPUs: remove the GPU request{other}"),
            ));
        }
        _ => {}
    }
    if asked {
        if let (Some(max), Some(n)) = (r.max_gpus_per_node, gpus_per_node(job)) {
            if n > max {
                return Some(refuse(
                    policy,
                    Code::InvalidGres,
                    "max-gpus-per-node",
                    format!("partition '{name}' allows at most {max} GPUs per node; the job asks for {n}: lower --gpus-per-node"),
                ));
            }
        }
        if let (Some(max), Some(n)) = (r.max_gpus_per_job, gpus_total(job)) {
            if n > max {
                return Some(refuse(
                    policy,
                    Code::InvalidGres,
                    "max-gpus-per-job",
                    format!("partition '{name}' allows at most {max} GPUs per job; the job asks for {n}: use fewer nodes or GPUs"),
                ));
            }
        }
        if !r.gpu_types.is_empty() {
            if let Some(t) = job.gpus.types.iter().find(|t| !r.gpu_types.contains(t)) {
                return Some(refuse(
                    policy,
                    Code::InvalidGres,
                    "gpu-type",
                    format!(
                        "partition '{name}' has no '{t}' GPUs: use one of {} (or no type)",
                        r.gpu_types.join(", ")
                    ),
                ));
            }
        }
        if let Some(v) = check_cpus_per_gpu(policy, name, r, job) {
            return Some(v);
        }
        let nodes = job.min_nodes.unwrap_or(1);
        if r.whole_nodes && nodes > 1 && !job.exclusive {
            let full = r.gpus_per_node.unwrap_or(0);
            if gpus_per_node(job) != Some(full) {
                return Some(refuse(
                    policy,
                    Code::InvalidNodeCount,
                    "whole-nodes",
                    format!("partition '{name}': a job on {nodes} nodes must take whole nodes: add --exclusive or --gpus-per-node={full}"),
                ));
            }
        }
    }
    if r.require_time && job.time_limit.is_none() && !job.update {
        return Some(refuse(
            policy,
            Code::InvalidTimeLimit,
            "require-time",
            format!(
                "partition '{name}' needs a time limit: add --time={}",
                r.max_time.as_deref().unwrap_or("HH:MM:SS")
            ),
        ));
    }
    if let (Some(&max), Some(t)) = (policy.max_minutes.get(name), job.time_limit) {
        if t > max {
            return Some(refuse(
                policy,
                Code::InvalidTimeLimit,
                "max-time",
                format!(
                    "partition '{name}' allows at most {} ({max} minutes); the job asks for {t} minutes: lower --time",
                    r.max_time.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    None
}

fn check_cpus_per_gpu(
    policy: &Policy,
    name: &str,
    r: &PartitionRules,
    job: &Job,
) -> Option<Verdict> {
    if r.min_cpus_per_gpu.is_none() && r.max_cpus_per_gpu.is_none() {
        return None;
    }
    // --cpus-per-gpu, else cpus per task over GPUs per task.
    let ratio = job.cpus_per_gpu.or_else(|| {
        let gpt = job.gpus.per_task.filter(|&g| g > 0)?;
        Some(u64::from(job.cpus_per_task?) / gpt)
    })?;
    let out_of = |bound: &str, n: u64| {
        refuse(
            policy,
            Code::InvalidCpuCount,
            "cpus-per-gpu",
            format!("partition '{name}' needs {bound} {n} CPUs per GPU; the job asks for {ratio}: change --cpus-per-gpu"),
        )
    };
    if let Some(lo) = r.min_cpus_per_gpu.filter(|&lo| ratio < lo) {
        return Some(out_of("at least", lo));
    }
    if let Some(hi) = r.max_cpus_per_gpu.filter(|&hi| ratio > hi) {
        return Some(out_of("at most", hi));
    }
    None
}

#[cfg(test)]
#[path = "tests/engine.rs"]
mod tests;
