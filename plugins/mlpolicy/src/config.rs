//! The site policy: one JSON file (`mlpolicy.json` next to slurm.conf), loaded in the
//! plugin's `init` and on reconfiguration, and by `mlpolicy validate`. One typed struct;
//! unknown keys and bad values are errors naming the key, line and column.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domains::Accounting;

/// What a partition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Jobs must ask for GPUs.
    Gpu,
    /// Jobs must not ask for GPUs.
    Cpu,
}

/// The rules of one partition; every rule is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRules {
    pub kind: Option<Kind>,
    pub max_gpus_per_job: Option<u64>,
    pub max_gpus_per_node: Option<u64>,
    /// Allowed GPU types (`--gpus=h100:8`); a request without a type is allowed.
    #[serde(default)]
    pub gpu_types: Vec<String>,
    pub min_cpus_per_gpu: Option<u64>,
    pub max_cpus_per_gpu: Option<u64>,
    /// GPUs on each node of the partition: with `whole_nodes`, a multi-node GPU job must
    /// ask for exactly this many per node (or `--exclusive`); a whole-node job
    /// (`--exclusive`, `--core-spec`) is given this many. `0` in a `cpu` partition says its
    /// nodes have none, which lets whole-node jobs in.
    pub gpus_per_node: Option<u64>,
    /// Multi-node GPU jobs must take whole nodes.
    #[serde(default)]
    pub whole_nodes: bool,
    /// Longest time limit, in Slurm's format (`MM`, `HH:MM:SS`, `D-HH[:MM[:SS]]`).
    pub max_time: Option<String>,
    /// Jobs must give a time limit (`--time`).
    #[serde(default)]
    pub require_time: bool,
}

/// Who skips the rules (uid 0 always does).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admins {
    #[serde(default)]
    pub uids: Vec<u32>,
    /// User names, resolved to uids when the policy is loaded (never per job).
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
}

fn default_gpu_gres() -> Vec<String> {
    crate::gres::DEFAULT_GPU_GRES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

// PartialEq only: accounting prices are f64.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Appended to every refusal: where the site explains its rules.
    pub doc_url: Option<String>,
    #[serde(default)]
    pub admins: Admins,
    /// The GRES names that count as GPUs (default `["gpu"]`); add `shard` and `mps` where
    /// nodes share GPUs that way, so those requests meet the GPU rules too.
    #[serde(default = "default_gpu_gres")]
    pub gpu_gres: Vec<String>,
    /// Where a job with no partition and a GPU request goes.
    pub default_gpu_partition: Option<String>,
    /// Where a job with no partition and no GPU request goes.
    pub default_cpu_partition: Option<String>,
    #[serde(default)]
    pub partitions: BTreeMap<String, PartitionRules>,
    /// Accounting domains: how jobs are tagged per set of partitions (none: no tags).
    pub accounting: Option<Accounting>,
    /// Filled by [`Policy::parse`]: `max_time` in minutes, by partition.
    #[serde(skip)]
    pub max_minutes: BTreeMap<String, u32>,
    /// Set by the loader, not the file: whether slurmctld enforces associations
    /// (`AccountingStorageEnforce=associations`), without which any user may name any
    /// account, so `admins.accounts` exempts no one.
    #[serde(skip)]
    pub accounts_enforced: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            doc_url: None,
            admins: Admins::default(),
            gpu_gres: default_gpu_gres(),
            default_gpu_partition: None,
            default_cpu_partition: None,
            partitions: BTreeMap::new(),
            accounting: None,
            max_minutes: BTreeMap::new(),
            accounts_enforced: false,
        }
    }
}

impl PartitionRules {
    /// Whether a rule reads the job's GPUs, nodes, tasks or CPUs (not only its time).
    pub fn judges_resources(&self) -> bool {
        self.kind.is_some()
            || self.max_gpus_per_job.is_some()
            || self.max_gpus_per_node.is_some()
            || !self.gpu_types.is_empty()
            || self.min_cpus_per_gpu.is_some()
            || self.max_cpus_per_gpu.is_some()
            || self.whole_nodes
    }
}

/// A policy that cannot be used; the text names the file, key, line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Policy {
    /// Parses and checks a policy; `origin` names it in messages; `uid_of` resolves admin
    /// user names (getpwnam in the plugin, a table in tests).
    pub fn parse(
        text: &str,
        origin: &str,
        uid_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Policy, ConfigError> {
        let mut p: Policy = serde_json::from_str(text)
            .map_err(|e| ConfigError(trusted_config::json_error(origin, &e)))?;
        let bad = |key: String, why: String| ConfigError(format!("{origin}: {key}: {why}"));
        for (key, default) in [
            ("default_gpu_partition", &p.default_gpu_partition),
            ("default_cpu_partition", &p.default_cpu_partition),
        ] {
            if let Some(name) = default {
                if name.is_empty() || name.contains(',') {
                    return Err(bad(key.into(), format!("{name:?} is not a partition name")));
                }
            }
        }
        if p.gpu_gres.is_empty() {
            return Err(bad(
                "gpu_gres".into(),
                "names no GRES (the default is [\"gpu\"])".into(),
            ));
        }
        if let Some(n) = p
            .gpu_gres
            .iter()
            .find(|n| n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(bad("gpu_gres".into(), format!("{n:?} is not a GRES name")));
        }
        for (name, r) in &p.partitions {
            let key = |k: &str| format!("partitions.{name}.{k}");
            if let Some(t) = &r.max_time {
                let m = parse_time_limit(t).map_err(|why| bad(key("max_time"), why))?;
                p.max_minutes.insert(name.clone(), m);
            }
            if let (Some(lo), Some(hi)) = (r.min_cpus_per_gpu, r.max_cpus_per_gpu) {
                if lo > hi {
                    return Err(bad(
                        key("min_cpus_per_gpu"),
                        format!("{lo} is above max_cpus_per_gpu {hi}"),
                    ));
                }
            }
            if r.whole_nodes && r.gpus_per_node.is_none() {
                return Err(bad(
                    key("whole_nodes"),
                    "needs gpus_per_node (the GPUs of one node)".into(),
                ));
            }
            if r.kind == Some(Kind::Cpu)
                && (r.max_gpus_per_job.is_some()
                    || r.max_gpus_per_node.is_some()
                    || !r.gpu_types.is_empty())
            {
                return Err(bad(
                    key("kind"),
                    "a cpu partition cannot have GPU limits".into(),
                ));
            }
        }
        if let Some(a) = &p.accounting {
            a.check()
                .map_err(|why| ConfigError(format!("{origin}: {why}")))?;
        }
        let users = std::mem::take(&mut p.admins.users);
        for u in &users {
            let uid = uid_of(u)
                .ok_or_else(|| bad("admins.users".into(), format!("no user {u:?} on this host")))?;
            p.admins.uids.push(uid);
        }
        p.admins.users = users;
        Ok(p)
    }

    pub fn rules(&self, partition: &str) -> Option<&PartitionRules> {
        self.partitions.get(partition)
    }

    /// The shortest `max_time` of any partition, in minutes: a time limit within it is
    /// allowed whatever partition the job is in.
    pub fn shortest_max_minutes(&self) -> Option<u32> {
        self.max_minutes.values().copied().min()
    }
}

/// The uid of a user name on this host (getpwnam).
pub fn system_uid(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

/// Reads a policy file as slurmctld's plugin does: root-owned and writable by no one else
/// (the policy steers what the controller accepts), admin names resolved on this host.
/// Returns its text too (the plugin keeps it as the last good policy).
pub fn load_file(path: &std::path::Path) -> Result<(Policy, String), String> {
    let text = trusted_config::read(path)?;
    let policy = Policy::parse(&text, &path.display().to_string(), &system_uid).map_err(|e| e.0)?;
    Ok((policy, text))
}

/// A time limit in Slurm's formats, in minutes: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`,
/// `D-HH:MM`, `D-HH:MM:SS`; seconds round up, as Slurm does.
pub fn parse_time_limit(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a time limit (MM, HH:MM:SS or D-HH:MM:SS)");
    let num = |x: &str| x.parse::<u64>().map_err(|_| bad());
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (num(d)?, Some(r)),
        None => (0, None),
    };
    let secs = match rest {
        Some(r) => {
            let p: Vec<&str> = r.split(':').collect();
            match p.as_slice() {
                [h] => num(h)? * 3600,
                [h, m] => num(h)? * 3600 + num(m)? * 60,
                [h, m, sec] => num(h)? * 3600 + num(m)? * 60 + num(sec)?,
                _ => return Err(bad()),
            }
        }
        None => {
            let p: Vec<&str> = s.split(':').collect();
            match p.as_slice() {
                [m] => num(m)? * 60,
                [m, sec] => num(m)? * 60 + num(sec)?,
                [h, m, sec] => num(h)? * 3600 + num(m)? * 60 + num(sec)?,
                _ => return Err(bad()),
            }
        }
    };
    let total = days
        .checked_mul(86400)
        .and_then(|d| d.checked_add(secs))
        .ok_or_else(bad)?;
    u32::try_from(total.div_ceil(60)).map_err(|_| bad())
}

#[cfg(test)]
#[path = "tests/config.rs"]
mod tests;
