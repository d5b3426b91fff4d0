//! The adapter: `job_desc_msg_t` in, the engine's verdict out (a partition routed to, or a
//! refusal with its `ESLURM_*` code and the user's one-line message).
//!
//! The policy is read in `init` and again only when slurmctld has re-read its configuration
//! (`slurm_conf.last_update` moved: `scontrol reconfigure`), never per call. A policy that
//! cannot be loaded never stops the controller: the last good one stays; with none ever,
//! jobs of everyone but root are refused with a message that says the policy is broken.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use mlpolicy::config::{self, Policy};
use mlpolicy::engine::{self, Code, Job, Verdict};
use mlpolicy::gres::{gpu_entries, GpuRequest};
use slurm_plugin::conf;
use slurm_plugin::job_submit::{JobDesc, JobSubmitPlugin, Rejection};
use slurm_plugin::rc;

pub const FILE_NAME: &str = "mlpolicy.json";

pub struct MlPolicy {
    holder: RwLock<Holder>,
}

struct Holder {
    path: PathBuf,
    policy: Option<Arc<Policy>>,
    /// The `last_update` of the slurm.conf read the policy was (re)loaded for.
    seen: Option<i64>,
}

/// `mlpolicy.json` next to the slurm.conf slurmctld uses, else in /etc/slurm; when there is
/// none, the first of those (where the refusal's log line sends the admin).
fn policy_path() -> PathBuf {
    let slurm_conf = conf::path();
    let beside = |exists: fn(&Path) -> bool| {
        trusted_config::beside_slurm_conf(FILE_NAME, slurm_conf.as_deref(), exists)
    };
    beside(Path::exists)
        .or_else(|| beside(|_| true))
        .unwrap_or_else(|| PathBuf::from(FILE_NAME))
}

/// The last policy that loaded, kept in StateSaveLocation: from 23.11 `scontrol
/// reconfigure` re-executes slurmctld, so "keep the last good policy" must survive a new
/// process.
fn last_good_path() -> Option<PathBuf> {
    conf::state_save_location().map(|d| d.join("mlpolicy.last-good.json"))
}

impl Holder {
    fn reload(&mut self, now: Option<i64>) {
        self.seen = now;
        match config::load_file(&self.path) {
            Ok((p, text)) => {
                tracing::info!(
                    "loaded {}: {} partition rule set(s)",
                    self.path.display(),
                    p.partitions.len()
                );
                self.policy = Some(Arc::new(p));
                if let Some(copy) = last_good_path() {
                    if let Err(e) = trusted_config::write_atomically(&copy, text.as_bytes(), 0o600)
                    {
                        tracing::error!("cannot keep a copy of the policy: {e}");
                    }
                }
            }
            Err(e) if self.policy.is_some() => {
                tracing::error!("{e}; keeping the policy loaded before");
            }
            Err(e) => {
                let kept = last_good_path().and_then(|copy| {
                    let text = std::fs::read_to_string(&copy).ok()?;
                    Policy::parse(&text, &copy.display().to_string(), &config::system_uid).ok()
                });
                match kept {
                    Some(p) => {
                        tracing::error!("{e}; keeping the last policy that loaded (saved in StateSaveLocation)");
                        self.policy = Some(Arc::new(p));
                    }
                    None => tracing::error!("{e}; no usable policy: jobs of users other than root are refused until it is fixed and slurmctld reconfigured"),
                }
            }
        }
    }
}

impl MlPolicy {
    /// The policy in force, reloaded first if slurmctld re-read its configuration.
    fn current(&self) -> Option<Arc<Policy>> {
        let now = conf::last_update();
        {
            let h = self.holder.read().unwrap_or_else(|e| e.into_inner());
            if h.seen == now {
                return h.policy.clone();
            }
        }
        let mut h = self.holder.write().unwrap_or_else(|e| e.into_inner());
        if h.seen != now {
            h.reload(now);
        }
        h.policy.clone()
    }

    /// `uid`: the job's user for a submission, the requester for an update (an admin may
    /// move a job anywhere).
    fn check(&self, job: &mut JobDesc<'_>, uid: u32, update: bool) -> Result<(), Rejection> {
        let Some(policy) = self.current() else {
            if uid == 0 {
                return Ok(());
            }
            return Err(Rejection::new(
                rc::ESLURM_ACCESS_DENIED,
                "mlpolicy: this cluster's job policy is misconfigured, so jobs cannot be checked and are not accepted; tell your admin (the reason is in the slurmctld log)",
            )
            .with_rule("no-policy"));
        };
        let mut req = read_job(job, update)?;
        req.uid = uid;
        match engine::evaluate(&policy, &req) {
            Verdict::Accept { route_to, exempt } => {
                if exempt {
                    tracing::debug!("uid {uid}: exempt from the rules");
                }
                if let Some(p) = route_to {
                    job.set_partition(Some(&p))
                        .map_err(|e| Rejection::new(rc::ERROR, format!("mlpolicy: {e}")))?;
                    tracing::info!("uid {uid}: job routed to partition {p}");
                } else {
                    tracing::debug!("uid {uid}: accepted");
                }
                Ok(())
            }
            Verdict::Refuse(r) => Err(Rejection::new(code(r.code), r.message).with_rule(r.rule)),
        }
    }
}

fn code(c: Code) -> i32 {
    match c {
        Code::InvalidGres => rc::ESLURM_INVALID_GRES,
        Code::InvalidPartition => rc::ESLURM_INVALID_PARTITION_NAME,
        Code::InvalidTimeLimit => rc::ESLURM_INVALID_TIME_LIMIT,
        Code::InvalidNodeCount => rc::ESLURM_INVALID_NODE_COUNT,
        Code::InvalidCpuCount => rc::ESLURM_INVALID_CPU_COUNT,
    }
}

/// The engine's view of `job_desc`.
fn read_job(job: &JobDesc<'_>, update: bool) -> Result<Job, Rejection> {
    let bad_gres = |e: mlpolicy::gres::BadTres| {
        Rejection::new(rc::ESLURM_INVALID_GRES, format!("mlpolicy: {e}")).with_rule("gres-syntax")
    };
    let gpus = GpuRequest::from_tres(
        job.tres_per_job().as_deref(),
        job.tres_per_node().as_deref(),
        job.tres_per_socket().as_deref(),
        job.tres_per_task().as_deref(),
    )
    .map_err(bad_gres)?;
    let cpus_per_gpu = match job.cpus_per_tres() {
        Some(s) => gpu_entries(&s).map_err(bad_gres)?.first().map(|e| e.count),
        None => None,
    };
    Ok(Job {
        uid: 0, // set by the caller
        account: job.account().map(|a| a.into_owned()),
        partition: job.partition().map(|p| p.into_owned()),
        gpus,
        min_nodes: job.min_nodes(),
        num_tasks: job.num_tasks(),
        ntasks_per_node: job.ntasks_per_node().map(u32::from),
        cpus_per_task: job.cpus_per_task().map(u32::from),
        cpus_per_gpu,
        time_limit: job.time_limit(),
        exclusive: job.shared() == Some(0),
        update,
    })
}

impl JobSubmitPlugin for MlPolicy {
    fn init() -> Result<Self, String> {
        let mut holder = Holder {
            path: policy_path(),
            policy: None,
            seen: None,
        };
        // A broken policy must not stop slurmctld from starting: it is reported and jobs
        // are refused until it is fixed.
        holder.reload(conf::last_update());
        Ok(MlPolicy {
            holder: RwLock::new(holder),
        })
    }

    fn job_submit(&self, job: &mut JobDesc<'_>, _submit_uid: u32) -> Result<(), Rejection> {
        let uid = job.user_id();
        self.check(job, uid, false)
    }

    fn job_modify(&self, job: &mut JobDesc<'_>, submit_uid: u32) -> Result<(), Rejection> {
        self.check(job, submit_uid, true)
    }
}
