//! The most a submission can be given: nodes, tasks and GPUs, worked out from every field
//! Slurm sizes a job by (`min/max_nodes`, `num_tasks`, `ntasks_per_node`,
//! `ntasks_per_socket`, `sockets_per_node` and the four `tres_per_*`). Rules are judged on
//! these upper bounds, never on the least the job could get.
//!
//! Slurm's own reading of those fields, which these bounds follow:
//! - `-N 4` sets `min_nodes` and `max_nodes` to 4, `-N 1-16` a range; with no `max_nodes`
//!   a job spans as many nodes as its tasks need (each node runs at least one task), so
//!   at most `num_tasks` (src/common/proc_args.c `verify_node_count`);
//! - `--ntasks-per-node` is a maximum per node when `-n` is also given (sbatch(1));
//! - without `-n`, a job runs one task per node, or `--ntasks-per-node` of them;
//! - `--gpus-per-socket` is counted on `--sockets-per-node` sockets, or on
//!   `num_tasks / ntasks_per_socket` of them (src/common/gres.c `gres_job_state_validate`).

use crate::engine::Job;

/// What the job can be given at most (and, for the CPU ratio, at least).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizing {
    pub min_nodes: u64,
    pub max_nodes: u64,
    pub max_tasks_per_node: u64,
    pub min_tasks: u64,
    pub max_tasks: u64,
    /// GPUs on one node; `None` without a GPU request; `Err` names the option that would
    /// bound it (a request Slurm sizes from the node's hardware).
    pub gpus_per_node: Result<Option<u64>, &'static str>,
    /// GPUs of the whole job, likewise.
    pub gpus_per_job: Result<Option<u64>, &'static str>,
}

fn opt(v: Option<u32>) -> Option<u64> {
    v.filter(|&n| n > 0).map(u64::from)
}

impl Sizing {
    pub fn of(job: &Job) -> Sizing {
        let min_nodes = opt(job.min_nodes).unwrap_or(1);
        let num_tasks = opt(job.num_tasks);
        let ntpn = opt(job.ntasks_per_node);
        let max_nodes = opt(job.max_nodes)
            .unwrap_or_else(|| num_tasks.unwrap_or(1).max(min_nodes))
            .max(min_nodes);
        // Every other node of the job runs at least one task.
        let from_tasks = num_tasks.map(|n| n.saturating_sub(min_nodes - 1).max(1));
        let max_tasks_per_node = match (ntpn, from_tasks) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => 1,
        };
        let max_tasks = num_tasks.unwrap_or(max_tasks_per_node.saturating_mul(max_nodes));
        let min_tasks = num_tasks.unwrap_or(ntpn.unwrap_or(1).saturating_mul(min_nodes));
        let sockets = sockets_per_node(job, num_tasks);
        let g = &job.gpus;
        let per_socket_node = g
            .per_socket
            .map(|s| sockets.map(|n| s.saturating_mul(n)))
            .transpose();
        let gpus_per_node = per_socket_node.map(|socket| {
            [
                g.per_node,
                g.per_job,
                g.per_task.map(|t| t.saturating_mul(max_tasks_per_node)),
                socket,
            ]
            .into_iter()
            .flatten()
            .max()
        });
        let gpus_per_job = per_socket_node.map(|socket| {
            [
                g.per_job,
                g.per_node.map(|n| n.saturating_mul(max_nodes)),
                g.per_task.map(|t| t.saturating_mul(max_tasks)),
                socket.map(|s| s.saturating_mul(max_nodes)),
            ]
            .into_iter()
            .flatten()
            .max()
        });
        Sizing {
            min_nodes,
            max_nodes,
            max_tasks_per_node,
            min_tasks,
            max_tasks,
            gpus_per_node,
            gpus_per_job,
        }
    }

    /// The job's GPUs on each node when the request fixes them: `--gpus-per-node` alone, or
    /// `--gpus-per-task` with a fixed number of tasks on every node.
    pub fn exact_gpus_per_node(&self, job: &Job) -> Option<u64> {
        let g = &job.gpus;
        if g.per_job.is_some() || g.per_socket.is_some() {
            return None;
        }
        match (g.per_node, g.per_task) {
            (Some(n), None) => Some(n),
            (None, Some(t)) => {
                let ntpn = opt(job.ntasks_per_node)?;
                let fixed = self.min_nodes == self.max_nodes
                    && self.min_tasks == self.max_tasks
                    && self.max_tasks == ntpn.saturating_mul(self.max_nodes);
                fixed.then(|| t.saturating_mul(ntpn))
            }
            _ => None,
        }
    }

    /// CPUs per GPU as Slurm will allocate them: the lowest and the highest a node of the
    /// job can see, as fractions `(cpus, gpus)`. `None` without GPUs. Slurm gives a node
    /// the most of what its tasks (`-c` each), `--mincpus` and `--cpus-per-gpu` ask.
    pub fn cpus_per_gpu(&self, job: &Job) -> Option<(Ratio, Ratio)> {
        let c = u64::from(job.cpus_per_task.filter(|&c| c > 0).unwrap_or(1));
        let pn_min = u64::from(job.pn_min_cpus.unwrap_or(0));
        let total = u64::from(job.min_cpus.unwrap_or(0));
        let cpg = job.cpus_per_gpu;
        // CPUs on a node running `tasks` tasks with `gpus` GPUs.
        let node = |tasks: u64, gpus: u64| {
            let by_gpu = cpg.unwrap_or(0).saturating_mul(gpus);
            Ratio::new(c.saturating_mul(tasks).max(pn_min).max(by_gpu), gpus)
        };
        let g = &job.gpus;
        let only_per_task = g.per_node.is_none() && g.per_job.is_none() && g.per_socket.is_none();
        let (lo, hi) = if let (Some(t), true) = (g.per_task, only_per_task) {
            // Every task brings its GPUs: a node with one task, or with the most.
            let one = node(1, t);
            let most = node(
                self.max_tasks_per_node,
                t.saturating_mul(self.max_tasks_per_node),
            );
            let average = Ratio::new(total, t.saturating_mul(self.min_tasks));
            (Ratio::new(c, t), one.max(most).max(average))
        } else if g.per_job.is_some() && g.per_node.is_none() && g.per_socket.is_none() {
            // GPUs counted for the whole job: judged on the job's totals.
            let gpus = (*self.gpus_per_job.as_ref().ok()?)?;
            let lo = Ratio::new(c.saturating_mul(self.min_tasks), gpus);
            let all = Ratio::new(
                c.saturating_mul(self.max_tasks)
                    .max(total)
                    .max(pn_min.saturating_mul(self.max_nodes))
                    .max(cpg.unwrap_or(0).saturating_mul(gpus)),
                gpus,
            );
            (lo, all)
        } else {
            // GPUs counted per node: the lowest is the job's average at its fewest nodes,
            // the highest a node that runs as many tasks as it can.
            let per_node = (*self.gpus_per_node.as_ref().ok()?)?;
            let lo = Ratio::new(
                c.saturating_mul(self.min_tasks),
                per_node.saturating_mul(self.min_nodes),
            );
            // The job's total CPUs (`min_cpus`, which API clients may set alone) over
            // its GPUs at its fewest nodes.
            let average = Ratio::new(total, per_node.saturating_mul(self.min_nodes));
            (lo, node(self.max_tasks_per_node, per_node).max(average))
        };
        // --cpus-per-gpu is the floor Slurm gives.
        Some((cpg.map_or(lo, |x| Ratio::new(x, 1)), hi))
    }
}

/// Sockets `--gpus-per-socket` is counted on, or the option that would bound it.
fn sockets_per_node(job: &Job, num_tasks: Option<u64>) -> Result<u64, &'static str> {
    if let Some(s) = opt(job.sockets_per_node) {
        return Ok(s);
    }
    match (num_tasks, opt(job.ntasks_per_socket)) {
        (Some(n), Some(per)) => Ok(n.div_ceil(per)),
        _ => Err("--sockets-per-node"),
    }
}

/// A ratio of two counts, compared without rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: u64,
    pub den: u64,
}

impl Ratio {
    /// The larger of two ratios.
    pub fn max(self, other: Ratio) -> Ratio {
        let a = u128::from(self.num) * u128::from(other.den);
        let b = u128::from(other.num) * u128::from(self.den);
        if a >= b {
            self
        } else {
            other
        }
    }

    pub fn new(num: u64, den: u64) -> Ratio {
        Ratio {
            num,
            den: den.max(1),
        }
    }

    pub fn below(self, n: u64) -> bool {
        u128::from(self.num) < u128::from(n) * u128::from(self.den)
    }

    pub fn above(self, n: u64) -> bool {
        u128::from(self.num) > u128::from(n) * u128::from(self.den)
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.num.is_multiple_of(self.den) {
            write!(f, "{}", self.num / self.den)
        } else {
            write!(f, "{:.2}", self.num as f64 / self.den as f64)
        }
    }
}

#[cfg(test)]
#[path = "tests/bounds.rs"]
mod tests;
