//! The adapter: `job_desc_msg_t` in, the engine's verdict out (a partition routed to, or a
//! refusal with its `ESLURM_*` code and the user's one-line message).
//!
//! The policy is read in `init` and again only when slurmctld has re-read its configuration
//! (`slurm_conf.last_update` moved: `scontrol reconfigure`), never per call. The reload runs
//! on the plugin's own thread, not on the submission path: slurmctld calls job_submit with
//! its config, job, node and partition locks held, and a reload resolves admin user names
//! (NSS, possibly LDAP) and writes an fsync'd copy into StateSaveLocation (often NFS); under
//! those locks either would stall the whole controller. Submissions only compare
//! `last_update` and clone the policy in force; until the reload is done they use the one
//! before. A policy that cannot be loaded never stops the controller: the last good one
//! stays; with none ever, jobs of everyone but root are refused with a message that says
//! the policy is broken.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use mlpolicy::config::{self, Policy};
use mlpolicy::engine::{self, Code, Job, Verdict};
use mlpolicy::gres::{gpu_entries, GpuRequest};
use mlpolicy::tagging::{self, Submission};
use slurm_plugin::job_submit::{self, JobDesc, JobSubmitPlugin, Rejection};
use slurm_plugin::rc;
use slurm_plugin::{assoc, conf};

pub const FILE_NAME: &str = "mlpolicy.json";

pub struct MlPolicy {
    holder: Arc<Holder>,
    reloader: Option<Reloader>,
}

/// The policy in force and where it comes from; shared by the submission path (reads) and
/// the reload thread (the only writer after `init`).
struct Holder {
    path: PathBuf,
    /// Where the last good policy is kept (StateSaveLocation).
    last_good: Option<PathBuf>,
    /// The write lock is held only to swap the `Arc`, never across a load.
    policy: RwLock<Option<Arc<Policy>>>,
    /// The `last_update` of the slurm.conf read the policy was (re)loaded for
    /// ([`NEVER`] outside a Slurm daemon).
    seen: AtomicI64,
    /// `AccountingStorageType=accounting_storage/slurmdbd`, read in `init`: without it no
    /// association exists to enforce, whatever `AccountingStorageEnforce` says.
    slurmdbd: bool,
}

/// `seen` when the process has no `slurm_conf` (never in slurmctld).
const NEVER: i64 = i64::MIN;

/// How often the reload thread looks at `last_update` when no submission wakes it: a
/// reconfigure is reloaded (and a broken policy reported) even on an idle cluster.
const POLL: Duration = Duration::from_secs(1);

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

/// `admins.accounts` exempts only where slurmctld enforces associations: without that, any
/// user may name any account with `--account`. Read at each load: a reconfigure may change it.
fn set_accounts_enforced(p: &mut Policy, slurmdbd: bool) {
    let enforce = conf::associations_enforced().unwrap_or(false);
    p.accounts_enforced = slurmdbd && enforce;
    let by_account = p.accounting.as_ref().is_some_and(|a| {
        a.domains
            .values()
            .any(|d| d.tags_account() || !d.allowed_accounts.is_empty())
    });
    if by_account && !p.accounts_enforced {
        // Jobs are still tagged; but nothing makes a shadow account one the user belongs
        // to, nor holds a job to its budget.
        tracing::warn!("accounting: shadow accounts and allowed_accounts need AccountingStorageType=accounting_storage/slurmdbd and AccountingStorageEnforce=associations (or limits, safe): without them any user may name any account and no budget holds a job");
    }
    if p.admins.accounts.is_empty() {
        return;
    }
    if p.accounts_enforced {
        tracing::info!("admins.accounts honoured: associations enforced");
    } else if enforce {
        tracing::warn!("admins.accounts ignored: AccountingStorageType is not accounting_storage/slurmdbd, so no association is enforced and any user may name any account");
    } else {
        tracing::warn!("admins.accounts ignored: AccountingStorageEnforce lacks associations, any user may name any account");
    }
}

impl Holder {
    /// Paths from `slurm_conf`, read here in `init` only: its strings are freed and
    /// replaced when slurmctld reconfigures, which the reload thread cannot exclude.
    fn new() -> Holder {
        Holder {
            path: policy_path(),
            last_good: last_good_path(),
            policy: RwLock::new(None),
            seen: AtomicI64::new(NEVER),
            slurmdbd: conf::accounting_storage_type().as_deref()
                == Some("accounting_storage/slurmdbd"),
        }
    }

    fn seen(&self) -> Option<i64> {
        Some(self.seen.load(Ordering::Acquire)).filter(|&s| s != NEVER)
    }

    fn policy(&self) -> Option<Arc<Policy>> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn swap(&self, p: Policy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(p));
    }

    /// Loads the policy for the configuration read at `now`. Only `init` and the reload
    /// thread call it, one after the other, never on the submission path.
    fn reload(&self, now: Option<i64>) {
        match config::load_file(&self.path) {
            Ok((mut p, text)) => {
                tracing::info!(
                    "loaded {}: {} partition rule set(s)",
                    self.path.display(),
                    p.partitions.len()
                );
                set_accounts_enforced(&mut p, self.slurmdbd);
                self.swap(p);
                if let Some(copy) = &self.last_good {
                    if let Err(e) = trusted_config::write_atomically(copy, text.as_bytes(), 0o600) {
                        tracing::error!("cannot keep a copy of the policy: {e}");
                    }
                }
            }
            Err(e) if self.policy().is_some() => {
                tracing::error!("{e}; keeping the policy loaded before");
            }
            Err(e) => {
                let kept = self.last_good.as_ref().and_then(|copy| {
                    let text = std::fs::read_to_string(copy).ok()?;
                    Policy::parse(&text, &copy.display().to_string(), &config::system_uid).ok()
                });
                match kept {
                    Some(mut p) => {
                        tracing::error!("{e}; keeping the last policy that loaded (saved in StateSaveLocation)");
                        set_accounts_enforced(&mut p, self.slurmdbd);
                        self.swap(p);
                    }
                    None => tracing::error!("{e}; no usable policy: jobs of users other than root are refused until it is fixed and slurmctld reconfigured"),
                }
            }
        }
        // After the swap: a submission that still sees the old value only wakes the thread.
        self.seen.store(now.unwrap_or(NEVER), Ordering::Release);
    }
}

/// The reload thread: started in `init`, stopped and joined when the plugin is dropped
/// (`fini`, before slurmctld unloads the library: a thread left running in unmapped code
/// would crash the controller).
///
/// Signals: the thread inherits the mask of the thread that runs `init`. In 22.05
/// slurmctld blocks its signals in `main` before `job_submit_plugin_init`
/// (src/slurmctld/controller.c) and takes them with `sigwait` in its own thread; from 23.11
/// they are caught by conmgr's `sigaction` handlers (src/conmgr/signals.c), which run in
/// whichever thread the kernel picks. Either way this thread never needs to handle one.
struct Reloader {
    /// Wakes the thread early (a submission saw `last_update` move); dropping it stops it.
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Reloader {
    fn start(holder: Arc<Holder>) -> std::io::Result<Reloader> {
        // One pending wake is enough: the thread reads `last_update` itself.
        let (wake, woken) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("mlpolicy-reload".into())
            .spawn(move || watch(&holder, &woken))?;
        Ok(Reloader {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Never blocks: a full channel means a wake is already pending.
    fn wake(&self) {
        if let Some(w) = &self.wake {
            let _ = w.try_send(());
        }
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        // Disconnecting the channel ends the thread's wait at once; a reload under way
        // finishes first.
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The reload thread's loop: until the plugin is dropped, reloads whenever slurmctld has
/// re-read its configuration.
fn watch(holder: &Holder, woken: &Receiver<()>) {
    loop {
        match woken.recv_timeout(POLL) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // `last_update` is set at the end of slurmctld's configuration read, so the
        // configuration is complete when it moves.
        let now = conf::last_update();
        if now == holder.seen() {
            continue;
        }
        let reloaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            holder.reload(now);
        }));
        if reloaded.is_err() {
            // Not retried for this configuration: the next reconfigure tries again.
            holder.seen.store(now.unwrap_or(NEVER), Ordering::Release);
            tracing::error!("internal error while reloading the policy; keeping the one in force");
        }
    }
}

impl MlPolicy {
    /// The policy in force. When slurmctld has re-read its configuration, the reload
    /// thread is woken and this call still gets the policy before: no load here.
    fn current(&self) -> Option<Arc<Policy>> {
        if conf::last_update() != self.holder.seen() {
            if let Some(r) = &self.reloader {
                r.wake();
            }
        }
        self.holder.policy()
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
        let mut req = read_job(job, update, &policy)?;
        req.uid = uid;
        match engine::evaluate(&policy, &req) {
            Verdict::Accept { route_to, exempt } => {
                if exempt {
                    tracing::debug!("uid {uid}: exempt from the rules");
                }
                if let Some(p) = &route_to {
                    job.set_partition(Some(p)).map_err(internal)?;
                    tracing::info!("uid {uid}: job routed to partition {p}");
                } else {
                    tracing::debug!("uid {uid}: accepted");
                }
                if !update {
                    set_tags(job, &policy, &req, route_to, exempt)?;
                }
                Ok(())
            }
            Verdict::Refuse(r) => Err(Rejection::new(code(r.code), r.message).with_rule(r.rule)),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Rejection {
    Rejection::new(rc::ERROR, format!("mlpolicy: {e}"))
}

/// Tags an accepted submission with its accounting domain (see `mlpolicy::tagging`): the
/// partitions it may run in are those it names, else where it was routed, else slurmctld's
/// default; the default account comes from slurmctld's association manager (memory only).
fn set_tags(
    job: &mut JobDesc<'_>,
    policy: &Policy,
    req: &Job,
    route_to: Option<String>,
    exempt: bool,
) -> Result<(), Rejection> {
    if policy.accounting.is_none() {
        return Ok(());
    }
    let list = route_to
        .or_else(|| req.partition.clone().filter(|p| !p.is_empty()))
        .or_else(|| req.default_partition.clone());
    let sub = Submission {
        partitions: list
            .map(|l| l.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        account: req.account.clone(),
        exempt,
    };
    let uid = req.uid;
    let tags = tagging::tag(policy, &sub, &|| assoc::default_account(uid))
        .map_err(|r| Rejection::new(code(r.code), r.message).with_rule(r.rule))?;
    if let Some(a) = &tags.account {
        job.set_account(Some(a)).map_err(internal)?;
    }
    if let Some(w) = &tags.wckey {
        job.set_wckey(Some(w)).map_err(internal)?;
    }
    if let Some(c) = &tags.admin_comment {
        job.set_admin_comment(Some(c)).map_err(internal)?;
    }
    if let Some(d) = &tags.domain {
        tracing::debug!(
            "uid {uid}: domain {d}, account {}",
            tags.account.as_deref().unwrap_or("as given")
        );
    }
    Ok(())
}

fn code(c: Code) -> i32 {
    match c {
        Code::InvalidGres => rc::ESLURM_INVALID_GRES,
        Code::InvalidPartition => rc::ESLURM_INVALID_PARTITION_NAME,
        Code::InvalidTimeLimit => rc::ESLURM_INVALID_TIME_LIMIT,
        Code::InvalidNodeCount => rc::ESLURM_INVALID_NODE_COUNT,
        Code::InvalidCpuCount => rc::ESLURM_INVALID_CPU_COUNT,
        Code::InvalidAccount => rc::ESLURM_INVALID_ACCOUNT,
        Code::AccessDenied => rc::ESLURM_ACCESS_DENIED,
    }
}

/// The engine's view of `job_desc`.
fn read_job(job: &JobDesc<'_>, update: bool, policy: &Policy) -> Result<Job, Rejection> {
    let bad_gres = |e: mlpolicy::gres::BadTres| {
        Rejection::new(rc::ESLURM_INVALID_GRES, format!("mlpolicy: {e}")).with_rule("gres-syntax")
    };
    let tres = [
        job.tres_per_job(),
        job.tres_per_node(),
        job.tres_per_socket(),
        job.tres_per_task(),
    ];
    let [per_job, per_node, per_socket, per_task] = tres.each_ref().map(|t| t.as_deref());
    let gpus = GpuRequest::counting(&policy.gpu_gres, per_job, per_node, per_socket, per_task)
        .map_err(bad_gres)?;
    let cpus_per_tres = job.cpus_per_tres();
    let cpus_per_gpu = match &cpus_per_tres {
        Some(s) => gpu_entries(s).map_err(bad_gres)?.first().map(|e| e.count),
        None => None,
    };
    let partition = job.partition().map(|p| p.into_owned());
    // Where Slurm puts a job that names no partition: read only when it matters.
    let default_partition = match (&partition, update) {
        (None, false) => job_submit::slurmctld_default_partition(),
        _ => None,
    };
    Ok(Job {
        uid: 0, // set by the caller
        account: job.account().map(|a| a.into_owned()),
        partition,
        default_partition,
        gpus,
        min_nodes: job.min_nodes(),
        max_nodes: job.max_nodes(),
        num_tasks: job.num_tasks(),
        ntasks_per_node: job.ntasks_per_node().map(u32::from),
        ntasks_per_socket: job.ntasks_per_socket().map(u32::from),
        sockets_per_node: job.sockets_per_node().map(u32::from),
        cpus_per_task: job.cpus_per_task().map(u32::from),
        min_cpus: job.min_cpus(),
        pn_min_cpus: job.pn_min_cpus().map(u32::from),
        ntasks_per_gpu: job.ntasks_per_tres().map(u32::from),
        req_nodes: job.req_nodes().is_some(),
        tres_set: tres.iter().any(Option::is_some) || cpus_per_tres.is_some(),
        cpus_per_gpu,
        time_limit: job.time_limit(),
        shared: job.shared(),
        core_spec: job.core_spec(),
        wckey: job.wckey().map(|w| w.into_owned()),
        admin_comment: job.admin_comment().map(|c| c.into_owned()),
        update,
    })
}

impl JobSubmitPlugin for MlPolicy {
    fn init() -> Result<Self, String> {
        let holder = Arc::new(Holder::new());
        // slurmctld calls init at start-up (in 22.05 also when a reconfigure changes
        // JobSubmitPlugins), not under a job lock: the first load happens here. A broken
        // policy must not stop slurmctld from starting: it is reported and jobs are refused
        // until it is fixed.
        holder.reload(conf::last_update());
        let reloader = match Reloader::start(Arc::clone(&holder)) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!("cannot start the policy reload thread: {e}; the policy loaded now stays until slurmctld restarts");
                None
            }
        };
        Ok(MlPolicy { holder, reloader })
    }

    fn job_submit(&self, job: &mut JobDesc<'_>, _submit_uid: u32) -> Result<(), Rejection> {
        let uid = job.user_id();
        self.check(job, uid, false)
    }

    fn job_modify(&self, job: &mut JobDesc<'_>, submit_uid: u32) -> Result<(), Rejection> {
        self.check(job, submit_uid, true)
    }
}
