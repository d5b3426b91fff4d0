//! The rules: a [`Job`] (plain values read from `job_desc_msg_t`) in, a [`Verdict`] out.
//! Pure and thread-safe (no state), so calls may run concurrently (Slurm 23.02+).
//!
//! A submission is judged on the most it can be given ([`Sizing`]), in every partition it
//! may run in: those it names, else the policy's default for its kind, else slurmctld's
//! default partition. An update (`scontrol update job`) shows only the fields it changes,
//! never the job's other requests, so it is let through only where that is enough to
//! judge it (see [`evaluate_update`]).

use crate::bounds::{Ratio, Sizing};
use crate::config::{Kind, PartitionRules, Policy};
use crate::gres::GpuRequest;

/// What the engine needs of a submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Job {
    pub uid: u32,
    pub account: Option<String>,
    /// `-p a,b` as given; `None` when the user named none.
    pub partition: Option<String>,
    /// slurmctld's default partition (slurm.conf `Default=YES`), where a job that names
    /// none goes when the policy routes it nowhere; `None` when it cannot be read.
    pub default_partition: Option<String>,
    pub gpus: GpuRequest,
    pub min_nodes: Option<u32>,
    pub max_nodes: Option<u32>,
    pub num_tasks: Option<u32>,
    pub ntasks_per_node: Option<u32>,
    pub ntasks_per_socket: Option<u32>,
    pub sockets_per_node: Option<u32>,
    pub cpus_per_task: Option<u32>,
    /// Total CPUs (`scontrol update NumCPUs=`).
    pub min_cpus: Option<u32>,
    /// `--mincpus` (`MinCPUsNode=`): CPUs on each node at least.
    pub pn_min_cpus: Option<u32>,
    /// `--cpus-per-gpu` (`cpus_per_tres` of `gres/gpu`).
    pub cpus_per_gpu: Option<u64>,
    /// `--ntasks-per-gpu` (`ntasks_per_tres`): without a GPU option, Slurm gives the job
    /// one GPU per that many tasks, after job_submit has run.
    pub ntasks_per_gpu: Option<u32>,
    /// `-w` / `ReqNodeList=` is given: an update that names nodes can grow the job to them.
    pub req_nodes: bool,
    /// Some `tres_per_*` or `cpus_per_tres` string is present, GPU or not, empty or not (an
    /// update's `TresPerNode=` with nothing after it clears the GPUs).
    pub tres_set: bool,
    /// Minutes; `None` when not given.
    pub time_limit: Option<u32>,
    /// `job_desc.shared`: `Some(0)` is `--exclusive`.
    pub shared: Option<u16>,
    /// `--core-spec` / `--thread-spec`: whole nodes, as `--exclusive`.
    pub core_spec: Option<u16>,
    /// `--wckey` / `WCKey=`.
    pub wckey: Option<String>,
    /// `AdminComment=` (only admins may set it; slurmctld refuses others').
    pub admin_comment: Option<String>,
    /// An update (`scontrol update job`, job_modify): only the fields it changes are set.
    pub update: bool,
}

impl Job {
    /// Whole nodes: `--exclusive`, or `--core-spec`/`--thread-spec` (Slurm makes those
    /// whole-node jobs where `AllowSpecResourcesUsage=YES`).
    pub fn exclusive(&self) -> bool {
        self.shared == Some(0) || self.core_spec.is_some()
    }

    /// Whether the request changes what the job is given besides its time: GPUs, nodes,
    /// tasks, CPUs or node sharing.
    pub fn sets_resources(&self) -> bool {
        self.gpus.asked()
            || [
                self.min_nodes,
                self.max_nodes,
                self.num_tasks,
                self.ntasks_per_node,
                self.ntasks_per_socket,
                self.sockets_per_node,
                self.cpus_per_task,
                self.min_cpus,
                self.pn_min_cpus,
            ]
            .iter()
            .any(Option::is_some)
            || self.cpus_per_gpu.is_some()
            || self.shared.is_some()
            || self.core_spec.is_some()
            || self.ntasks_per_gpu.is_some()
            || self.req_nodes
            || self.tres_set
    }

    /// The job as Slurm will size it: `--ntasks-per-gpu` with no GPU option asks for one
    /// GPU per that many of its tasks (at most all of them).
    fn with_implied_gpus(&self) -> std::borrow::Cow<'_, Job> {
        let Some(k) = self.ntasks_per_gpu.filter(|&k| k > 0) else {
            return std::borrow::Cow::Borrowed(self);
        };
        if self.gpus.asked() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut job = self.clone();
        job.gpus.per_job = Some(Sizing::of(self).max_tasks.div_ceil(u64::from(k)));
        std::borrow::Cow::Owned(job)
    }
}

/// Slurm's return code family for a refusal; the adapter maps it to `ESLURM_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidGres,
    InvalidPartition,
    InvalidTimeLimit,
    InvalidNodeCount,
    InvalidCpuCount,
    InvalidAccount,
    AccessDenied,
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

const ACCEPT: Verdict = Verdict::Accept {
    route_to: None,
    exempt: false,
};

pub fn is_exempt(policy: &Policy, job: &Job) -> bool {
    job.uid == 0
        || policy.admins.uids.contains(&job.uid)
        || (policy.accounts_enforced
            && job
                .account
                .as_ref()
                .is_some_and(|a| policy.admins.accounts.contains(a)))
}

/// Judges one submission (or one component of a het job, or an array), or an update.
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
    if job.update {
        return evaluate_update(policy, job);
    }
    let job = &*job.with_implied_gpus();
    let (names, route_to) = match partitions(policy, job) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let size = Sizing::of(job);
    for name in &names {
        if let Some(rules) = policy.rules(name) {
            let ctx = Ctx {
                policy,
                name,
                r: rules,
                job,
                size: &size,
            };
            if let Some(v) = RULES.iter().find_map(|rule| rule(&ctx)) {
                return v;
            }
        }
    }
    Verdict::Accept {
        route_to,
        exempt: false,
    }
}

/// The partitions a submission may run in, and the one it is routed to (it named none and
/// the policy has a default for its kind). Without either, it runs in slurmctld's default
/// partition, which is judged too; when that cannot be read, the job must name one.
fn partitions(policy: &Policy, job: &Job) -> Result<(Vec<String>, Option<String>), Verdict> {
    if let Some(list) = job.partition.as_deref().filter(|p| !p.is_empty()) {
        return Ok((list.split(',').map(str::to_string).collect(), None));
    }
    let default = if job.gpus.asked() {
        &policy.default_gpu_partition
    } else {
        &policy.default_cpu_partition
    };
    if let Some(p) = default {
        return Ok((vec![p.clone()], Some(p.clone())));
    }
    match &job.default_partition {
        Some(p) => Ok((vec![p.clone()], None)),
        None if policy.partitions.is_empty() => Ok((vec![], None)),
        None => Err(refuse(
            policy,
            Code::InvalidPartition,
            "no-partition",
            "this job names no partition and the cluster's default cannot be checked: add -p PARTITION".into(),
        )),
    }
}

/// What one rule sees.
struct Ctx<'a> {
    policy: &'a Policy,
    name: &'a str,
    r: &'a PartitionRules,
    job: &'a Job,
    size: &'a Sizing,
}

impl Ctx<'_> {
    fn refuse(&self, code: Code, rule: &'static str, message: String) -> Option<Verdict> {
        Some(refuse(self.policy, code, rule, message))
    }

    /// GPUs on one node: an `--exclusive` job is given every GPU of its nodes (the
    /// partition's `gpus_per_node`).
    fn gpus_per_node(&self) -> Result<Option<u64>, &'static str> {
        let asked = self.size.gpus_per_node?;
        if !self.job.exclusive() {
            return Ok(asked);
        }
        match self.r.gpus_per_node {
            Some(full) => Ok(Some(asked.map_or(full, |a| a.max(full)))),
            None => Err(EXCLUSIVE),
        }
    }

    /// GPUs of the whole job, likewise.
    fn gpus_per_job(&self) -> Result<Option<u64>, &'static str> {
        let asked = self.size.gpus_per_job?;
        if !self.job.exclusive() {
            return Ok(asked);
        }
        let full = self.r.gpus_per_node.ok_or(EXCLUSIVE)?;
        let all = full.saturating_mul(self.size.max_nodes);
        Ok(Some(asked.map_or(all, |a| a.max(all))))
    }

    fn gpus(&self) -> bool {
        self.job.gpus.asked()
    }
}

type Rule = fn(&Ctx) -> Option<Verdict>;

/// The rules of a partition, in the order a user would fix them.
const RULES: &[Rule] = &[
    gpu_partition_needs_gpus,
    cpu_partition_no_gpus,
    cpu_partition_whole_nodes,
    max_gpus_per_node,
    max_gpus_per_job,
    gpu_type,
    cpus_per_gpu,
    whole_nodes,
    require_time,
    max_time,
];

fn gpu_partition_needs_gpus(c: &Ctx) -> Option<Verdict> {
    if c.r.kind != Some(Kind::Gpu) || c.gpus() {
        return None;
    }
    let other = c
        .policy
        .default_cpu_partition
        .as_ref()
        .map(|p| format!(" (or submit to partition '{p}')"))
        .unwrap_or_default();
    c.refuse(
        Code::InvalidGres,
        "gpu-partition-needs-gpus",
        format!(
            "partition '{}' needs a GPU request: add --gpus-per-node=N{other}",
            c.name
        ),
    )
}

/// A whole-node job in a `cpu` partition is given every GPU of its nodes: allowed only
/// where the policy says those nodes have none (`gpus_per_node: 0`).
fn cpu_partition_whole_nodes(c: &Ctx) -> Option<Verdict> {
    if c.r.kind != Some(Kind::Cpu) || !c.job.exclusive() || c.r.gpus_per_node == Some(0) {
        return None;
    }
    c.refuse(
        Code::InvalidGres,
        "cpu-partition-whole-nodes",
        format!(
            "partition '{}': a job given whole nodes (--exclusive, --core-spec, --thread-spec) gets every GPU on them, and this policy does not say the nodes have none (gpus_per_node: 0): leave that option out",
            c.name
        ),
    )
}

fn cpu_partition_no_gpus(c: &Ctx) -> Option<Verdict> {
    if c.r.kind != Some(Kind::Cpu) || !c.gpus() {
        return None;
    }
    let other = c
        .policy
        .default_gpu_partition
        .as_ref()
        .map(|p| format!(" (or submit to partition '{p}')"))
        .unwrap_or_default();
    c.refuse(
        Code::InvalidGres,
        "cpu-partition-no-gpus",
        format!(
            "partition '{}' has no GPUs: remove the GPU request{other}",
            c.name
        ),
    )
}

/// How to bound an `--exclusive` request where the policy does not say how many GPUs a
/// node of the partition has.
const EXCLUSIVE: &str = "leave out --exclusive (and --core-spec, --thread-spec): such a job is given every GPU of its nodes, and this partition's policy has no gpus_per_node";

/// A GPU bound that a limit needs but the request leaves open (`--gpus-per-socket`
/// without a socket count, `--exclusive` where the node's GPUs are unknown): refused
/// rather than guessed. `how` is `add --sockets-per-node` or [`EXCLUSIVE`].
fn unbounded(c: &Ctx, rule: &'static str, how: &str) -> Option<Verdict> {
    let how = if how.starts_with("--") {
        format!("add {how}")
    } else {
        how.to_string()
    };
    c.refuse(
        Code::InvalidGres,
        rule,
        format!(
            "partition '{}' limits GPUs, and this request leaves their number to the node's hardware: {how}",
            c.name
        ),
    )
}

fn max_gpus_per_node(c: &Ctx) -> Option<Verdict> {
    let max = c.r.max_gpus_per_node?;
    let n = match c.gpus_per_node() {
        Ok(n) => n?,
        Err(option) => return unbounded(c, "max-gpus-per-node", option),
    };
    // --gpus counts for the whole job: Slurm may place all of it on one node.
    let per_job = if c.job.gpus.per_job.is_some_and(|g| g > max) {
        " (--gpus may all land on one node: ask with --gpus-per-node)"
    } else {
        ""
    };
    (n > max).then(|| {
        refuse(
            c.policy,
            Code::InvalidGres,
            "max-gpus-per-node",
            format!(
                "partition '{}' allows at most {max} GPUs per node; this request can get {n} on one node: lower the GPUs per node or per task, or the tasks per node{per_job}",
                c.name
            ),
        )
    })
}

fn max_gpus_per_job(c: &Ctx) -> Option<Verdict> {
    let max = c.r.max_gpus_per_job?;
    let n = match c.gpus_per_job() {
        Ok(n) => n?,
        Err(option) => return unbounded(c, "max-gpus-per-job", option),
    };
    (n > max).then(|| {
        let nodes = match (c.size.min_nodes, c.size.max_nodes) {
            (lo, hi) if lo == hi => format!("{hi} node(s)"),
            (lo, hi) => format!("{lo}-{hi} nodes"),
        };
        refuse(
            c.policy,
            Code::InvalidGres,
            "max-gpus-per-job",
            format!(
                "partition '{}' allows at most {max} GPUs per job; this request can get {n} (on {nodes}): use fewer nodes, tasks or GPUs",
                c.name
            ),
        )
    })
}

fn gpu_type(c: &Ctx) -> Option<Verdict> {
    if c.r.gpu_types.is_empty() {
        return None;
    }
    let t = c
        .job
        .gpus
        .types
        .iter()
        .find(|t| !c.r.gpu_types.contains(t))?;
    c.refuse(
        Code::InvalidGres,
        "gpu-type",
        format!(
            "partition '{}' has no '{t}' GPUs: use one of {} (or no type)",
            c.name,
            c.r.gpu_types.join(", ")
        ),
    )
}

fn cpus_per_gpu(c: &Ctx) -> Option<Verdict> {
    if c.r.min_cpus_per_gpu.is_none() && c.r.max_cpus_per_gpu.is_none() {
        return None;
    }
    let (lo, hi) = c.size.cpus_per_gpu(c.job)?;
    let out_of = |bound: &str, n: u64, got: Ratio| {
        c.refuse(
            Code::InvalidCpuCount,
            "cpus-per-gpu",
            format!(
                "partition '{}' needs {bound} {n} CPUs per GPU; this request gives {got}: set --cpus-per-gpu={n}",
                c.name
            ),
        )
    };
    // A job that gives neither -c nor --cpus-per-gpu gets slurm.conf's DefCpuPerGPU, which
    // the plugin cannot see: the floor is Slurm's to apply there, the ceiling still ours.
    let cpus_given = c.job.cpus_per_task.is_some() || c.job.cpus_per_gpu.is_some();
    if let Some(min) = c.r.min_cpus_per_gpu.filter(|&m| cpus_given && lo.below(m)) {
        return out_of("at least", min, lo);
    }
    if let Some(max) = c.r.max_cpus_per_gpu.filter(|&m| hi.above(m)) {
        return out_of("at most", max, hi);
    }
    None
}

fn whole_nodes(c: &Ctx) -> Option<Verdict> {
    if !c.r.whole_nodes || !c.gpus() || c.size.max_nodes <= 1 || c.job.exclusive() {
        return None;
    }
    let full = c.r.gpus_per_node.unwrap_or(0);
    if c.size.exact_gpus_per_node(c.job) == Some(full) {
        return None;
    }
    let nodes = c.size.max_nodes;
    c.refuse(
        Code::InvalidNodeCount,
        "whole-nodes",
        format!(
            "partition '{}': a job that can span {nodes} nodes must take whole nodes: add --exclusive or --gpus-per-node={full} (or use -N1)",
            c.name
        ),
    )
}

fn require_time(c: &Ctx) -> Option<Verdict> {
    if !c.r.require_time || c.job.time_limit.is_some() {
        return None;
    }
    c.refuse(
        Code::InvalidTimeLimit,
        "require-time",
        format!(
            "partition '{}' needs a time limit: add --time={}",
            c.name,
            c.r.max_time.as_deref().unwrap_or("HH:MM:SS")
        ),
    )
}

fn max_time(c: &Ctx) -> Option<Verdict> {
    let max = *c.policy.max_minutes.get(c.name)?;
    let t = c.job.time_limit.filter(|&t| t > max)?;
    c.refuse(
        Code::InvalidTimeLimit,
        "max-time",
        format!(
            "partition '{}' allows at most {} ({max} minutes); the job asks for {t} minutes: lower --time",
            c.name,
            c.r.max_time.as_deref().unwrap_or("")
        ),
    )
}

/// An update by a user who is not exempt. Slurm's job_modify interface passes the job
/// record, whose layout is not in the installed headers, so the job's partition and its
/// other requests are unknown here; and an update of one GPU form leaves the others in
/// place (`_update_job` merges the new `tres_per_*` into the job's GRES list, job_mgr.c in
/// 22.05 to 26.05). So:
/// - GPUs, nodes, tasks, CPUs or node sharing may change only where every partition the
///   update names has no rule about them;
/// - moving into a partition with such rules is refused (resubmit there instead);
/// - a time limit (which a user may raise while the job pends, up to the partition's
///   MaxTime) is judged against the partitions named, or against the shortest `max_time`
///   of the policy when none is named.
pub fn evaluate_update(policy: &Policy, job: &Job) -> Verdict {
    if let Some(v) = retag_update(policy, job) {
        return v;
    }
    let names: Vec<&str> = job
        .partition
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|l| l.split(',').collect())
        .unwrap_or_default();
    if names.is_empty() {
        return update_in_place(policy, job);
    }
    for name in names {
        let Some(r) = policy.rules(name) else {
            continue;
        };
        if r.judges_resources() {
            return refuse(
                policy,
                Code::AccessDenied,
                "update-partition",
                format!("a job cannot be moved into partition '{name}' by an update, since its rules depend on the job's GPU, node and CPU requests, which an update does not show: cancel the job and submit it again with -p {name} (or ask an admin)"),
            );
        }
        let size = Sizing::of(job);
        let ctx = Ctx {
            policy,
            name,
            r,
            job,
            size: &size,
        };
        if (r.require_time || r.max_time.is_some()) && job.time_limit.is_none() {
            return refuse(
                policy,
                Code::InvalidTimeLimit,
                "update-needs-time",
                format!(
                    "partition '{name}' limits time limits: add TimeLimit=... to the same update"
                ),
            );
        }
        if let Some(v) = max_time(&ctx) {
            return v;
        }
    }
    ACCEPT
}

/// An update that would change or clear an accounting domain's tag. The job record (its
/// partition, account and tags now) is opaque to job_modify, so a tag cannot be checked
/// against the job nor redone for a new partition: where the policy tags, these updates are
/// refused and the job must be submitted again, where it is tagged afresh.
/// - `Account=`, `WCKey=`, `AdminComment=`: where a domain tags that field (the account
///   also where a domain limits `allowed_accounts`: the new one could not be checked);
/// - `Partition=`: where any domain tags or limits anything (a move may cross domains;
///   an empty one moves the job to the default partition from 26.05).
fn retag_update(policy: &Policy, job: &Job) -> Option<Verdict> {
    let acct = policy.accounting.as_ref()?;
    let any = |f: fn(&crate::domains::Domain) -> bool| acct.domains.values().any(f);
    let account = any(|d| d.tags_account() || d.admin_comment || !d.allowed_accounts.is_empty());
    let wckey = any(|d| d.wckey);
    let comment = any(|d| d.admin_comment);
    let field = [
        (job.account.is_some() && account, "account", "Account"),
        (job.wckey.is_some() && wckey, "wckey", "WCKey"),
        (
            job.admin_comment.is_some() && comment,
            "admin_comment",
            "AdminComment",
        ),
    ]
    .into_iter()
    .find(|(hit, ..)| *hit);
    if let Some((_, tag, key)) = field {
        return Some(refuse(
            policy,
            Code::AccessDenied,
            "update-domain-tag",
            format!("a job's {key} is its accounting domain's {tag} tag, set at submission, and cannot be changed by an update here: cancel the job and submit it again with the new value (or ask an admin)"),
        ));
    }
    // An empty `Partition=` is a move too: 26.05 puts the job in the default partition.
    let tagged = account || wckey || comment;
    if let (Some(to), true) = (job.partition.as_deref(), tagged) {
        let (place, again) = if to.is_empty() {
            ("the default partition".to_string(), "PARTITION")
        } else {
            (format!("partition {to}"), to)
        };
        return Some(refuse(
            policy,
            Code::AccessDenied,
            "update-domain-partition",
            format!("a job cannot be moved to {place} by an update here: its accounting domain's tags were set at submission and an update cannot show the job's partition to redo them; cancel the job and submit it again with -p {again} (or ask an admin)"),
        ));
    }
    None
}

/// An update that names no partition.
fn update_in_place(policy: &Policy, job: &Job) -> Verdict {
    let ruled = policy.partitions.values().any(|r| r.judges_resources());
    if job.sets_resources() && ruled {
        return refuse(
            policy,
            Code::AccessDenied,
            "update-resources",
            "the GPUs, nodes, tasks or CPUs of a submitted job cannot be changed by an update here, since the policy could not check the result: cancel the job and submit it again with the new request (or ask an admin)".into(),
        );
    }
    match (job.time_limit, policy.shortest_max_minutes()) {
        (Some(t), Some(max)) if t > max => refuse(
            policy,
            Code::InvalidTimeLimit,
            "update-time",
            format!("a time limit above {max} minutes cannot be set by an update here, since the policy cannot see the job's partition to check it: ask an admin (or cancel the job and submit it again with the new --time)"),
        ),
        _ => ACCEPT,
    }
}

#[cfg(test)]
#[path = "tests/engine.rs"]
mod tests;
