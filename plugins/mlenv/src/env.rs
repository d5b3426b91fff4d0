//! The variables a task gets, computed from plain values (the step's environment as Slurm
//! set it, the user's choices, the node's fabric): rendezvous, ranks, torchrun's `PET_*`,
//! fabric profile; then which of them the user's own values override.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use crate::options::Choices;
use crate::values::Mode;

/// A step id as Slurm numbers it (slurm.h: `SLURM_EXTERN_CONT` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Id(u32),
    Batch,
    Interactive,
    Extern,
    /// Another of Slurm's reserved ids (pending step, ...).
    Special(u32),
}

impl Step {
    pub const EXTERN: u32 = 0xffff_fffc;
    pub const BATCH: u32 = 0xffff_fffb;
    pub const INTERACTIVE: u32 = 0xffff_fffa;

    pub fn from_raw(id: u32) -> Step {
        match id {
            Self::EXTERN => Step::Extern,
            Self::BATCH => Step::Batch,
            Self::INTERACTIVE => Step::Interactive,
            id if id >= 0xffff_fff0 => Step::Special(id),
            id => Step::Id(id),
        }
    }

    /// `42.0`, `42.batch`: the rendezvous id torchrun gets.
    pub fn label(self) -> String {
        match self {
            Step::Id(n) => n.to_string(),
            Step::Batch => "batch".into(),
            Step::Interactive => "interactive".into(),
            Step::Extern => "extern".into(),
            Step::Special(n) => format!("{n:#x}"),
        }
    }
}

/// Ports per job: one block of the range.
pub const PORT_SLOTS_PER_JOB: u32 = 8;

/// A step's slot in its job's block of `slots` ports. Slot 0 is the batch step's, or the
/// interactive step's (a job has one or the other: sbatch makes the first, salloc the
/// second), and never a numbered step's; numbered steps take the other slots in turn, so
/// steps whose ids differ by less than `slots - 1` never share a port.
fn port_slot(step: Step, slots: u32) -> u32 {
    match step {
        Step::Id(n) if slots > 1 => 1 + n % (slots - 1),
        _ => 0,
    }
}

/// `MASTER_PORT` of a step: the range is cut into blocks of [`PORT_SLOTS_PER_JOB`] ports,
/// one block per job (by job id, wrapping), one port per step within the block
/// ([`port_slot`]). With the default range, jobs whose ids differ by less than 1,250
/// never share a port; within a job, the batch (or interactive) step never shares one
/// with a numbered step, and steps 0-6, or any 7 consecutive step ids, get 7 different
/// ports. A range smaller than a block is shared by all jobs, slot by slot.
pub fn master_port(ports: &RangeInclusive<u16>, job_id: u32, step: Step) -> u16 {
    let lo = u32::from(*ports.start());
    let len = u32::from(*ports.end()).saturating_sub(lo) + 1;
    let offset = if len >= PORT_SLOTS_PER_JOB {
        let blocks = len / PORT_SLOTS_PER_JOB;
        (job_id % blocks) * PORT_SLOTS_PER_JOB + port_slot(step, PORT_SLOTS_PER_JOB)
    } else {
        (job_id % len + port_slot(step, len)) % len
    };
    // offset < len <= 65536 - lo, so this fits.
    u16::try_from(lo + offset).unwrap_or(*ports.end())
}

/// Het components a job may have (slurm.h: `MAX_HET_JOB_COMPONENTS`).
const MAX_HET_COMPONENTS: u32 = 128;

/// A node list variable of the step's environment, unless unset, empty or "(null)".
fn nodelist_var(getenv: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    getenv(var).filter(|v| !v.is_empty() && v != "(null)")
}

/// The rendezvous host, the node of rank 0, and why: `(host, why)`. `None` when the
/// environment does not tell.
///
/// - batch step: the first host of the job (`SLURM_JOB_NODELIST`);
/// - a step of one component, including `srun --het-group=1` in a het allocation: the
///   first host of `SLURM_STEP_NODELIST`. The allocation's `*_HET_GROUP_N` variables are
///   inherited by every step, so they do not say which components the step runs in;
/// - a het step (`--het-group=0,1`, or `srun ... : ...`): rank 0 is on the first node of
///   the lowest het group in the step (srun takes `--het-group` as a set). srun sets
///   `SLURM_STEP_NODELIST` to all of the step's nodes, sorted, so its first host may belong
///   to a later component; the first component is the lowest group N whose
///   `SLURM_JOB_NODELIST_HET_GROUP_N` has nodes in the step, and the host is its first
///   node in the step. When components share a node, srun cannot sort the list and leaves
///   it in component order (srun.c `_reorder_het_job_recs`): then its first host is it.
///
/// `component_tasks` is SPANK's task count, which counts this component's tasks only;
/// `SLURM_STEP_NUM_TASKS` counts all of the step's, so they differ exactly in het steps.
/// `expand` is Slurm's hostlist expansion.
pub fn master_host(
    step: Step,
    component_tasks: u32,
    getenv: &dyn Fn(&str) -> Option<String>,
    expand: &dyn Fn(&str) -> std::result::Result<Vec<String>, String>,
) -> crate::Result<Option<(String, String)>> {
    let first_of = |var: &'static str| -> crate::Result<Option<(String, String)>> {
        let Some(list) = nodelist_var(getenv, var) else {
            return Ok(None);
        };
        let hosts = expand(&list).map_err(|e| crate::Error::new(format!("${var}: {e}")))?;
        Ok(hosts
            .into_iter()
            .next()
            .map(|h| (h, format!("first host of ${var}"))))
    };
    if step == Step::Batch {
        return Ok(first_of("SLURM_JOB_NODELIST")?.or(first_of("SLURM_NODELIST")?));
    }
    let step_tasks = getenv("SLURM_STEP_NUM_TASKS").and_then(|v| v.trim().parse::<u32>().ok());
    if step_tasks.is_none_or(|n| n <= component_tasks) {
        return Ok(first_of("SLURM_STEP_NODELIST")?.or(first_of("SLURM_JOB_NODELIST")?));
    }
    het_step_master(getenv, expand)
}

/// [`master_host`] in a het step.
fn het_step_master(
    getenv: &dyn Fn(&str) -> Option<String>,
    expand: &dyn Fn(&str) -> std::result::Result<Vec<String>, String>,
) -> crate::Result<Option<(String, String)>> {
    let var = "SLURM_STEP_NODELIST";
    let Some(list) = nodelist_var(getenv, var) else {
        return Ok(None);
    };
    let step_hosts = expand(&list).map_err(|e| crate::Error::new(format!("${var}: {e}")))?;
    let unique: std::collections::BTreeSet<&String> = step_hosts.iter().collect();
    if unique.len() < step_hosts.len() {
        return Ok(step_hosts.first().map(|h| {
            (
                h.clone(),
                format!("first host of ${var} (het components share nodes: component order)"),
            )
        }));
    }
    for group in 0..MAX_HET_COMPONENTS {
        let var = format!("SLURM_JOB_NODELIST_HET_GROUP_{group}");
        let Some(list) = nodelist_var(getenv, &var) else {
            break;
        };
        let hosts = expand(&list).map_err(|e| crate::Error::new(format!("${var}: {e}")))?;
        if let Some(h) = hosts.into_iter().find(|h| unique.contains(h)) {
            let why = format!("first host of het group {group} (${var}) in the step");
            return Ok(Some((h, why)));
        }
    }
    Ok(None)
}

/// The address `SLURM_NODE_ALIASES` gives a node (`name:addr:host,...`, IPv6 addresses in
/// brackets; Slurm sets it up to 23.02 for nodes whose names do not resolve).
pub fn alias_address(aliases: &str, node: &str) -> Option<String> {
    let mut rest = aliases;
    while !rest.is_empty() {
        let (name, after) = rest.split_once(':')?;
        let (addr, after) = if let Some(v6) = after.strip_prefix('[') {
            let (a, r) = v6.split_once(']')?;
            (a, r.strip_prefix(':').unwrap_or(r))
        } else {
            after.split_once(':')?
        };
        let (_host, after) = after.split_once(',').unwrap_or((after, ""));
        if name == node && !addr.is_empty() {
            return Some(addr.to_string());
        }
        rest = after;
    }
    None
}

/// Where the rendezvous host is reached, as decided on each node (identically: every
/// input is the same on every node of the step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendezvous {
    pub addr: String,
    /// Why this address (for the debug log).
    pub why: String,
    pub port: u16,
    pub port_why: String,
}

/// The step as this node sees it, read from the environment Slurm gives every task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepShape {
    pub job_id: u32,
    pub step: Step,
    pub nnodes: u32,
    pub node_rank: u32,
    pub ntasks: u32,
    pub local_tasks: u32,
    pub gpus_on_node: Option<u32>,
}

/// One task's place: `SLURM_PROCID` (global, het components included) and `SLURM_LOCALID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskIds {
    pub rank: u32,
    pub local_rank: u32,
}

fn num(getenv: &dyn Fn(&str) -> Option<String>, vars: &[&str]) -> Option<u32> {
    vars.iter()
        .find_map(|v| getenv(v).and_then(|s| s.trim().parse::<u32>().ok()))
}

impl StepShape {
    /// Reads the step's shape from the variables Slurm sets (global in het steps), with
    /// SPANK's items as the fallback.
    pub fn from_env(
        job_id: u32,
        step: Step,
        items: (u32, u32, u32, u32),
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> StepShape {
        let (nnodes, node_rank, ntasks, local_tasks) = items;
        StepShape {
            job_id: num(getenv, &["SLURM_JOB_ID", "SLURM_JOBID"]).unwrap_or(job_id),
            step,
            nnodes: num(getenv, &["SLURM_STEP_NUM_NODES", "SLURM_NNODES"]).unwrap_or(nnodes),
            node_rank: num(getenv, &["SLURM_NODEID"]).unwrap_or(node_rank),
            ntasks: num(getenv, &["SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"]).unwrap_or(ntasks),
            local_tasks,
            gpus_on_node: gpus_on_node(getenv),
        }
    }
}

/// `SLURM_GPUS_ON_NODE`, else the devices in `CUDA_VISIBLE_DEVICES`.
pub fn gpus_on_node(getenv: &dyn Fn(&str) -> Option<String>) -> Option<u32> {
    if let Some(n) = num(getenv, &["SLURM_GPUS_ON_NODE"]) {
        return Some(n);
    }
    let cvd = getenv("CUDA_VISIBLE_DEVICES")?;
    let n = cvd
        .split(',')
        .filter(|d| !d.trim().is_empty() && *d != "NoDevFiles")
        .count();
    u32::try_from(n).ok().filter(|&n| n > 0)
}

impl TaskIds {
    pub fn from_env(getenv: &dyn Fn(&str) -> Option<String>) -> Option<TaskIds> {
        Some(TaskIds {
            rank: num(getenv, &["SLURM_PROCID"])?,
            local_rank: num(getenv, &["SLURM_LOCALID"])?,
        })
    }
}

/// The fabric part, decided once per node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FabricPlan {
    pub profile: String,
    pub env: BTreeMap<String, String>,
    pub lib_dirs: Vec<PathBuf>,
}

/// A variable the plugin wants to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub value: String,
    pub why: String,
    /// Asked for on the command line or in `SLURM_MLENV*` (`--nccl-debug`, `--master-port`):
    /// it wins over a value already in the environment.
    pub explicit: bool,
}

fn want(name: &str, value: impl ToString, why: impl Into<String>) -> Wanted {
    Wanted {
        name: name.to_string(),
        value: value.to_string(),
        why: why.into(),
        explicit: false,
    }
}

/// Everything a task should get, before precedence. `task` is `None` in the batch step,
/// which is one process, not a distributed world: it gets the rendezvous (for sruns and
/// launchers started from the script) but no ranks.
pub fn wanted(
    mode: Mode,
    choices: &Choices,
    shape: &StepShape,
    task: Option<TaskIds>,
    rendezvous: Option<&Rendezvous>,
    fabric: &FabricPlan,
) -> Vec<Wanted> {
    let mut out = Vec::new();
    if mode == Mode::Off {
        return out;
    }
    if mode == Mode::On {
        if let Some(r) = rendezvous {
            out.push(want("MASTER_ADDR", &r.addr, r.why.clone()));
            out.push(Wanted {
                explicit: choices.master_port.is_some(),
                ..want("MASTER_PORT", r.port, r.port_why.clone())
            });
        }
        if let Some(t) = task {
            out.push(want("RANK", t.rank, "SLURM_PROCID"));
            out.push(want("LOCAL_RANK", t.local_rank, "SLURM_LOCALID"));
            out.push(want("WORLD_SIZE", shape.ntasks, "tasks in the step"));
            out.push(want(
                "LOCAL_WORLD_SIZE",
                shape.local_tasks,
                "tasks of the step on this node",
            ));
            out.push(want("NODE_RANK", shape.node_rank, "SLURM_NODEID"));
            // One launcher per node: what torchrun reads instead of its arguments.
            if shape.local_tasks == 1 {
                let why = "one task on this node: torchrun's defaults";
                out.push(want("PET_NNODES", shape.nnodes, why));
                out.push(want("PET_NODE_RANK", shape.node_rank, why));
                if let Some(g) = shape.gpus_on_node {
                    out.push(want(
                        "PET_NPROC_PER_NODE",
                        g,
                        "GPUs of the step on this node",
                    ));
                }
                if let Some(r) = rendezvous {
                    out.push(want("PET_MASTER_ADDR", &r.addr, why));
                    out.push(Wanted {
                        explicit: choices.master_port.is_some(),
                        ..want("PET_MASTER_PORT", r.port, why)
                    });
                }
                out.push(want(
                    "PET_RDZV_ID",
                    format!("{}.{}", shape.job_id, shape.step.label()),
                    "job.step",
                ));
            }
        }
    }
    for (name, value) in &fabric.env {
        out.push(Wanted {
            name: name.clone(),
            value: value.clone(),
            why: format!("profile '{}'", fabric.profile),
            explicit: false,
        });
    }
    if let Some(level) = &choices.nccl_debug {
        out.retain(|w| w.name != "NCCL_DEBUG");
        out.push(Wanted {
            explicit: true,
            ..want("NCCL_DEBUG", level, "--nccl-debug")
        });
    }
    out
}

/// The variable that records what the plugin set, so a step started from the batch script
/// (whose environment it inherits) can tell the plugin's values from the user's.
pub const APPLIED_VAR: &str = "MLENV_APPLIED";

/// FNV-1a: a stable, dependency-free fingerprint of a value.
fn fingerprint(value: &str) -> u32 {
    value.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// `MLENV_APPLIED`'s content: `NAME:fingerprint` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied(Vec<(String, u32)>);

impl Applied {
    pub fn parse(s: &str) -> Applied {
        Applied(
            s.split(',')
                .filter_map(|e| {
                    let (n, h) = e.split_once(':')?;
                    Some((n.to_string(), u32::from_str_radix(h, 16).ok()?))
                })
                .collect(),
        )
    }

    /// True when `value` of `name` is what the plugin set in an enclosing step.
    pub fn owns(&self, name: &str, value: &str) -> bool {
        let fp = fingerprint(value);
        self.0.iter().any(|(n, h)| n == name && *h == fp)
    }

    pub fn encode<'a>(vars: impl Iterator<Item = (&'a str, &'a str)>) -> String {
        vars.map(|(n, v)| format!("{n}:{:08x}", fingerprint(v)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What happens to one wanted variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Set,
    /// The user's own value stays.
    KeepUser(String),
}

/// A user's value wins, unless the admin forces the variable or the user asked for this
/// value explicitly; a value the plugin itself set in an enclosing step (the batch step) is
/// replaced.
pub fn decide(w: &Wanted, current: Option<&str>, applied: &Applied, forced: bool) -> Decision {
    match current {
        None => Decision::Set,
        Some(cur) if w.explicit || forced || cur == w.value || applied.owns(&w.name, cur) => {
            Decision::Set
        }
        Some(cur) => Decision::KeepUser(cur.to_string()),
    }
}

/// The result for one task: what to set, what was left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `(name, value, why)`, in order; ends with `MLENV_APPLIED` when anything is set.
    pub set: Vec<(String, String, String)>,
    /// The new `LD_LIBRARY_PATH`, when it changes: bytes, as the user's part may be.
    pub ld_library_path: Option<OsString>,
    /// `(name, the user's value)`.
    pub kept: Vec<(String, String)>,
}

/// Decides each wanted variable against the task's environment (`getenv`), and puts the
/// profile's library directories in front of the task's `LD_LIBRARY_PATH` (read as bytes:
/// it need not be UTF-8).
pub fn plan(
    wanted: &[Wanted],
    lib_dirs: &[PathBuf],
    getenv: &dyn Fn(&str) -> Option<String>,
    ld_library_path: Option<&OsStr>,
    is_forced: &dyn Fn(&str) -> bool,
) -> Plan {
    let applied = getenv(APPLIED_VAR)
        .map(|s| Applied::parse(&s))
        .unwrap_or_default();
    let mut p = Plan::default();
    for w in wanted {
        match decide(w, getenv(&w.name).as_deref(), &applied, is_forced(&w.name)) {
            Decision::Set => p.set.push((w.name.clone(), w.value.clone(), w.why.clone())),
            Decision::KeepUser(v) => p.kept.push((w.name.clone(), v)),
        }
    }
    p.ld_library_path = crate::fabric::prepend_paths(lib_dirs, ld_library_path);
    if !p.set.is_empty() || p.ld_library_path.is_some() {
        // LD_LIBRARY_PATH is not in the marker: it is merged, never taken for the user's.
        let marker = Applied::encode(p.set.iter().map(|(n, v, _)| (n.as_str(), v.as_str())));
        p.set
            .push((APPLIED_VAR.into(), marker, "what mlenv set".into()));
    }
    p
}

#[cfg(test)]
#[path = "tests/env.rs"]
mod tests;
