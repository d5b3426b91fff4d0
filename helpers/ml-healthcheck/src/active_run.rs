//! `ml-healthcheck active`: picks the idle nodes, submits one job per node (`sbatch -w
//! NODE --exclusive`), waits, reads what each suite left, judges it ([`crate::active`]),
//! and drains or resumes through the passive run's rules: [`node::decide`], the report-only
//! modes and the circuit breaker ([`fleet::gate`]), the repair step ([`repair::step`]).
//!
//! A node drained by an active check is tested again to be resumed: Slurm starts no job on
//! a drained node, so the run puts it in a reservation of its own first (`mlhealth_NODE`,
//! `Flags=MAINT`, which may overlap the configured one), resumes it inside (no other job
//! can take it), runs the suites there, then drains it again unless they pass, and only
//! then deletes the reservation. Report-only runs and `--dry-run` do not retest.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::active::{self, ActiveConfig, Left, Outcome, SuiteResult};
use crate::config::Config;
use crate::fleet::{self, Fleet, Held, Hold};
use crate::node::{self, Action, NodeInfo, Scontrol};
use crate::reboots;
use crate::repair;
use crate::report::{self, BreakerCount, Repair};

/// What `active` does with a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Test,
    /// Drained by an active check of ours: tested again inside a reservation of its own.
    Retest,
    Skip(String),
}

/// State flags with which a node is not tested (powered down, rebooting, not responding).
const UNTESTABLE: [&str; 7] = [
    "POWERED_DOWN",
    "POWERING_DOWN",
    "POWERING_UP",
    "POWER_DOWN",
    "CLOUD",
    "REBOOT_REQUESTED",
    "REBOOT_ISSUED",
];

/// The plan for a node as Slurm shows it. Pure.
pub fn plan(n: &NodeInfo, retest_allowed: bool) -> Plan {
    let shown = || match &n.reason {
        Some(r) => format!("{} ({r})", n.state),
        None => n.state.clone(),
    };
    if n.failed() {
        return Plan::Skip(format!("failed, left to its owner: {}", shown()));
    }
    let flags: Vec<&str> = n.state.split('+').collect();
    let responding = !n.state.contains('*');
    if !n.without_jobs()
        || !responding
        || flags
            .iter()
            .any(|f| UNTESTABLE.contains(f) || *f == "COMPLETING")
    {
        return Plan::Skip(format!("not idle: {}", shown()));
    }
    if !n.drained() {
        return Plan::Test;
    }
    let reason = n.reason.as_deref().unwrap_or("");
    match (n.ours(), active::names_active_check(reason)) {
        (true, true) if retest_allowed => Plan::Retest,
        (true, true) => Plan::Skip(format!(
            "drained by an active check ({reason}): a retest resumes it inside a reservation, not done when nothing may change in Slurm"
        )),
        (true, false) => Plan::Skip(format!(
            "drained by the health check ({reason}): the health check lifts it"
        )),
        (false, _) => Plan::Skip(format!("drained by someone else ({reason})")),
    }
}

/// The value of `Key=` in one line of `scontrol -o` output.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .filter(|v| !v.is_empty() && *v != "(null)")
}

/// One node's run.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRun {
    pub node: String,
    /// The node's state and reason before the run.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_reason: Option<String>,
    /// Why it was not tested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Tested again to lift an active check's drain.
    pub retest: bool,
    /// Drained again after a retest a killed run left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<u32>,
    pub suites: Vec<SuiteResult>,
    /// `action` and, with a drain, `reason`.
    #[serde(flatten)]
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActiveReport {
    pub mode: &'static str,
    pub run_dir: PathBuf,
    pub nodes: Vec<NodeRun>,
    pub report_only: bool,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerCount>,
    pub breaker_open: bool,
    pub errors: Vec<String>,
}

pub struct Opts {
    pub slurm_conf: Option<PathBuf>,
    pub dry_run: bool,
    /// How often the jobs are polled.
    pub poll: Duration,
}

/// A file a job wrote, read without following a link, at most 8 MiB.
fn read_result(path: &Path) -> Option<String> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    f.take(8 << 20).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// What a suite left in `dir`; `None` when it never started.
fn left(dir: &Path, suite: &str) -> Option<Left> {
    let stdout = read_result(&dir.join(format!("{suite}.out")));
    let rc = read_result(&dir.join(format!("{suite}.rc"))).and_then(|r| r.trim().parse().ok());
    if stdout.is_none() && rc.is_none() {
        return None;
    }
    Some(Left {
        rc,
        stdout: stdout.unwrap_or_default(),
        stderr: read_result(&dir.join(format!("{suite}.err"))).unwrap_or_default(),
    })
}

const FINAL: [&str; 9] = [
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
];

/// A submitted job: its node's index, id and directory.
struct Submitted {
    index: usize,
    id: u32,
    dir: PathBuf,
}

struct Ctx<'a> {
    cfg: &'a Config,
    active: &'a ActiveConfig,
    scontrol: Scontrol,
    opts: &'a Opts,
}

const RESV_PREFIX: &str = "mlhealth_";

fn resv_name(node: &str) -> String {
    format!("{RESV_PREFIX}{node}")
}

impl Ctx<'_> {
    fn hostnames(&self, list: &str) -> Result<Vec<String>, String> {
        let out = self.scontrol.run(&["show", "hostnames", list])?;
        Ok(out.split_whitespace().map(str::to_string).collect())
    }

    /// The nodes to look at: the config's hostlist, or every node of the partition or
    /// reservation.
    fn targets(&self) -> Result<Vec<String>, String> {
        let a = self.active;
        if a.nodes != "idle" {
            return self.hostnames(&a.nodes);
        }
        let (what, name) = match (&a.partition, &a.reservation) {
            (Some(p), _) => ("partition", p),
            (None, Some(r)) => ("reservation", r),
            (None, None) => return Err("active: no partition or reservation".into()),
        };
        let out = self.scontrol.run(&["-o", "show", what, name])?;
        let line = out.lines().next().unwrap_or("");
        match field(line, "Nodes=") {
            Some(list) => self.hostnames(list),
            None => Err(format!("{what} {name} has no nodes: {}", line.trim())),
        }
    }

    fn submit(&self, node: &str, dir: &Path, retest: bool) -> Result<u32, String> {
        let script = dir.join("job.sh");
        let text = active::script(&self.active.suites, &dir.to_string_lossy());
        fs::write(&script, text).map_err(|e| format!("{}: {e}", script.display()))?;
        let out = dir.join("job.out");
        let mut args: Vec<String> = vec![
            "--parsable".into(),
            "-J".into(),
            "mlhealth-active".into(),
            "-w".into(),
            node.into(),
            "-N".into(),
            "1".into(),
            "--exclusive".into(),
            format!("--time={}", self.active.time_limit_minutes()),
            "-o".into(),
            out.to_string_lossy().into_owned(),
            "-D".into(),
            dir.to_string_lossy().into_owned(),
        ];
        if let Some(p) = &self.active.partition {
            args.push(format!("--partition={p}"));
        }
        if retest {
            args.push(format!("--reservation={}", resv_name(node)));
        } else if let Some(r) = &self.active.reservation {
            args.push(format!("--reservation={r}"));
        }
        args.extend(self.active.sbatch_args.iter().cloned());
        args.push(script.to_string_lossy().into_owned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let sbatch = self.scontrol.sibling("sbatch");
        let said = self.scontrol.run_program(&sbatch, &argv)?;
        said.trim()
            .split(';')
            .next()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| format!("sbatch printed no job id: {said:?}"))
    }

    /// Puts a node drained by an active check in a reservation of its own, then resumes it.
    fn open_retest(&self, node: &str) -> Result<(), String> {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .ok_or("cannot name the user running this (uid not in the user database)")?;
        self.scontrol.run(&[
            "create",
            "reservation",
            &format!("ReservationName={}", resv_name(node)),
            &format!("Nodes={node}"),
            "StartTime=now",
            // No end: if this run is killed, the node (resumed inside) stays out of
            // service until the next run drains it again ([`recover`]).
            "Duration=UNLIMITED",
            &format!("Users={user}"),
            "Flags=MAINT,IGNORE_JOBS",
        ])?;
        if let Err(e) = self.scontrol.apply(node, &Action::Resume) {
            self.close_retest(node);
            return Err(e);
        }
        Ok(())
    }

    /// The nodes of `mlhealth_NODE` reservations still there: retests of a run that was
    /// killed before it ended them.
    fn leftover_retests(&self) -> Result<Vec<String>, String> {
        let out = self.scontrol.run(&["-o", "show", "reservation"])?;
        Ok(out
            .lines()
            .filter_map(|l| field(l, "ReservationName="))
            .filter_map(|r| r.strip_prefix(RESV_PREFIX))
            .map(str::to_string)
            .collect())
    }

    fn close_retest(&self, node: &str) -> Option<String> {
        let name = format!("ReservationName={}", resv_name(node));
        self.scontrol.run(&["delete", &name]).err()
    }

    /// Polls the jobs until each is final or `deadline` passes; the rest are cancelled.
    /// The state of each (by index in `jobs`).
    fn wait(&self, jobs: &[Submitted], deadline: Instant) -> Vec<String> {
        let mut states: Vec<Option<String>> = vec![None; jobs.len()];
        loop {
            for (i, j) in jobs.iter().enumerate() {
                if states[i].is_some() {
                    continue;
                }
                let out = self.scontrol.run(&["-o", "show", "job", &j.id.to_string()]);
                let state = out.ok().and_then(|o| {
                    field(o.lines().next().unwrap_or(""), "JobState=").map(str::to_string)
                });
                if let Some(s) = state.filter(|s| FINAL.contains(&s.as_str())) {
                    states[i] = Some(s);
                }
            }
            if states.iter().all(Option::is_some) {
                break;
            }
            if Instant::now() >= deadline {
                let scancel = self.scontrol.sibling("scancel");
                for (i, j) in jobs.iter().enumerate() {
                    if states[i].is_none() {
                        let _ = self.scontrol.run_program(&scancel, &[&j.id.to_string()]);
                        states[i] = Some("CANCELLED (past the run's deadline)".into());
                    }
                }
                break;
            }
            std::thread::sleep(self.opts.poll);
        }
        states.into_iter().map(Option::unwrap_or_default).collect()
    }
}

/// `results_dir` and every directory above it (links resolved) may be changed only by
/// root or the user running this, or are sticky (`/tmp`): the jobs run as that user and
/// write through `<run>/<node>/`, and whoever can rename a directory on the way can put a
/// link there (root writes through it) or results of their own (drains and resumes).
fn trusted_results_dir(results: &Path) -> Result<(), String> {
    let key = |m: String| format!("active.results_dir {}: {m}", results.display());
    let real = fs::canonicalize(results).map_err(|e| key(e.to_string()))?;
    let me = nix::unistd::geteuid().as_raw();
    for dir in real.ancestors() {
        let meta = fs::metadata(dir).map_err(|e| key(format!("{}: {e}", dir.display())))?;
        if !meta.is_dir() {
            return Err(key("not a directory".into()));
        }
        let (uid, mode) = (meta.uid(), meta.mode());
        if uid != 0 && uid != me {
            return Err(key(format!(
                "{} is owned by uid {uid}, neither root nor the user running this: refusing it",
                dir.display()
            )));
        }
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(key(format!(
                "{} is writable by group or others (mode {:o}): another user could put results or a link in a run's place: refusing it (chmod go-w, or +t)",
                dir.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
}

/// Holds `<results_dir>/.lock` for the whole run, or says which run holds it: two runs
/// at once would each count the cluster's drains before the other drained, and could
/// drain past the circuit breaker's limit together. The lock is a file only its owner can
/// open (anyone could lock a directory they can read).
fn lock_results(results: &Path) -> Result<nix::fcntl::Flock<fs::File>, String> {
    use std::os::unix::fs::PermissionsExt;
    trusted_results_dir(results)?;
    let path = results.join(".lock");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| format!("active.results_dir: {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("active.results_dir: {}: {e}", path.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_file() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "active.results_dir: {} is not a file that only uid {me} (running this) owns and can open: refusing it (remove it; a run makes it anew)",
            path.display()
        ));
    }
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        match e {
            nix::errno::Errno::EWOULDBLOCK => format!(
                "another `ml-healthcheck active` run holds {}: one run at a time",
                path.display()
            ),
            e => format!("cannot lock {}: {e}", path.display()),
        }
    })
}

/// A directory of the run: new, and writable by its owner only whatever the umask.
fn new_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// The run directory: `<results_dir>/<unix time>-<pid>`, new.
fn run_dir(results: &Path) -> Result<PathBuf, String> {
    trusted_results_dir(results)?;
    let now = crate::run::unix_now();
    let dir = results.join(format!("{now}-{}", std::process::id()));
    new_dir(&dir).map_err(|e| format!("active.results_dir: {e}"))?;
    Ok(dir)
}

pub fn run(cfg: &Config, opts: &Opts) -> Result<ActiveReport, String> {
    let active = cfg.active.as_ref().ok_or(
        "no \"active\" section in ml-healthcheck.json: configure the partition or reservation, results_dir and suites (see --help)",
    )?;
    let ctx = Ctx {
        cfg,
        active,
        scontrol: Scontrol {
            program: node::find_scontrol(cfg.scontrol.as_deref()),
            slurm_conf: opts.slurm_conf.clone(),
            timeout: None,
        },
        opts,
    };
    let report_only = fleet::report_only(cfg, |p| p.symlink_metadata().is_ok());
    let changes_allowed = report_only.is_none() && !opts.dry_run;
    // One run at a time: the breaker counts the cluster's drains once per run.
    let _one_run = lock_results(&active.results_dir)?;
    let mut all = ctx.scontrol.show_all()?;
    let mut fleet = Fleet::count(&all);
    let dir = run_dir(&active.results_dir)?;
    let mut errors = Vec::new();
    let leftovers = ctx.leftover_retests().unwrap_or_else(|e| {
        errors.push(format!("cannot list the reservations: {e}"));
        Vec::new()
    });
    let mut nodes: Vec<NodeRun> = Vec::new();
    let mut jobs: Vec<Submitted> = Vec::new();
    for name in ctx.targets()? {
        let Some(at) = all.iter().position(|n| n.name == name) else {
            nodes.push(skipped(
                &name,
                "",
                None,
                "not a node of this cluster".into(),
            ));
            continue;
        };
        let mut nr = skipped(&name, &all[at].state, all[at].reason.clone(), String::new());
        nr.skipped = None;
        if leftovers.contains(&name) {
            if let Err(why) = recover(&ctx, &mut all[at], &mut nr, changes_allowed) {
                nr.skipped = Some(why);
                nodes.push(nr);
                continue;
            }
            if nr.recovered.is_some() {
                fleet = fleet.after(false, true);
            }
        }
        let info = &all[at];
        let p = plan(info, changes_allowed);
        match p {
            Plan::Skip(why) => {
                nr.skipped = Some(why);
                nodes.push(nr);
                continue;
            }
            Plan::Retest => {
                nr.retest = true;
                if let Err(e) = ctx.open_retest(&name) {
                    nr.skipped = Some(format!("could not be retested: {e}"));
                    nodes.push(nr);
                    continue;
                }
            }
            Plan::Test => {}
        }
        let ndir = dir.join(&name);
        let submitted = new_dir(&ndir).and_then(|()| ctx.submit(&name, &ndir, nr.retest));
        match submitted {
            Ok(id) => {
                nr.job = Some(id);
                jobs.push(Submitted {
                    index: nodes.len(),
                    id,
                    dir: ndir,
                });
            }
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                nr.errors.push(e);
            }
        }
        nodes.push(nr);
    }
    // Every job has its time limit; a minute more for the queue, then it is cancelled.
    let limit = Duration::from_secs(active.time_limit_minutes() * 60 + 60);
    let states = ctx.wait(&jobs, Instant::now() + limit);
    for (j, state) in jobs.iter().zip(&states) {
        let nr = &mut nodes[j.index];
        nr.suites = active
            .suites
            .iter()
            .map(|s| {
                let mut r = active::judge(s, left(&j.dir, s.suite.name()).as_ref(), active);
                if r.outcome == Outcome::NotRun {
                    r.evidence = format!("{} (job {} {state})", r.evidence, j.id);
                }
                r
            })
            .collect();
    }
    for nr in nodes.iter_mut() {
        if nr.job.is_none() && !nr.retest {
            continue;
        }
        act(&ctx, nr, &all, &mut fleet, report_only.clone(), &mut errors);
    }
    let breaker_open = fleet::breaker_open(&fleet, cfg);
    Ok(ActiveReport {
        mode: "active",
        run_dir: dir,
        nodes,
        report_only: report_only.is_some(),
        dry_run: opts.dry_run,
        breaker: Some(BreakerCount {
            drained: fleet.ours,
            nodes: fleet.nodes,
            limit: fleet::limit(fleet.nodes, cfg.breaker_max_nodes, cfg.breaker_max_percent),
        }),
        breaker_open,
        errors,
    })
}

/// A node with a reservation `mlhealth_NODE` left by a killed run. Not drained: the run
/// was killed after it resumed the node for its retest, so it is drained again with an
/// item per suite (`mlhealth: dcgm-diag retest interrupted`, which the retest that
/// follows lifts or replaces); drained: the reservation goes (a retest makes its own).
/// `Err`: why it is left as it is (in its reservation, which keeps jobs off it).
fn recover(
    ctx: &Ctx,
    info: &mut NodeInfo,
    nr: &mut NodeRun,
    changes_allowed: bool,
) -> Result<(), String> {
    let resv = resv_name(&info.name);
    if !changes_allowed {
        return Err(format!(
            "reservation {resv} was left by an interrupted retest: kept (nothing may change in Slurm now; it keeps jobs off the node)"
        ));
    }
    if !info.drained() && !info.failed() {
        let items: Vec<String> = ctx
            .active
            .suites
            .iter()
            .map(|s| format!("{} retest interrupted", s.suite.name()))
            .collect();
        let reason = crate::reason::format(items.iter().map(String::as_str))
            .unwrap_or_else(|| crate::reason::PREFIX.to_string());
        ctx.scontrol
            .apply(&info.name, &Action::Drain(reason.clone()))
            .map_err(|e| {
                format!("reservation {resv} was left by an interrupted retest and the node could not be drained again ({e}): reservation kept")
            })?;
        info.state = format!("{}+DRAIN", info.state);
        info.reason = Some(reason.clone());
        nr.recovered = Some(format!(
            "a retest was interrupted (reservation {resv} left, the node not drained): drained again: {reason}"
        ));
        nr.node_reason = Some(reason);
    }
    if let Some(e) = ctx.close_retest(&info.name) {
        nr.errors.push(e);
    }
    Ok(())
}

fn skipped(name: &str, state: &str, reason: Option<String>, why: String) -> NodeRun {
    NodeRun {
        recovered: None,
        node: name.into(),
        state: state.into(),
        node_reason: reason,
        skipped: Some(why),
        retest: false,
        job: None,
        suites: Vec::new(),
        action: Action::Nothing,
        held: None,
        repair: None,
        errors: Vec::new(),
    }
}

/// Judges one node's suites and acts as the health check would; a retested node is
/// drained again unless it passed, then its reservation goes.
fn act(
    ctx: &Ctx,
    nr: &mut NodeRun,
    all: &[NodeInfo],
    fleet: &mut Fleet,
    report_only: Option<Hold>,
    errors: &mut Vec<String>,
) {
    let Some(info) = all.iter().find(|n| n.name == nr.node) else {
        return;
    };
    let mut judgement = active::judgement(&nr.suites);
    // A reboot for a check this node was rebooted for already asks for new hardware
    // instead, as in the health check: no reboot loop. The runner keeps the reboots it
    // asked for in its own history_dir (it runs off the node).
    let node = nr.node.clone();
    let mut ledger = None;
    if let Some((l, warn)) = reboots::Ledger::open(ctx.cfg, &node, crate::run::unix_now()) {
        if let Some(w) = warn {
            errors.push(format!("{node}: {w}"));
            nr.errors.push(w);
        }
        let ours = ((info.drained() || info.failed()) && info.ours())
            .then_some(info.reason.as_deref())
            .flatten();
        l.escalate(&mut judgement.findings, ours);
        ledger = Some(l);
    }
    let decided = node::decide(info, &judgement, true);
    let report_only = if ctx.opts.dry_run {
        Some(report_only.unwrap_or(Hold::DryRun))
    } else {
        report_only
    };
    let (action, held) = fleet::gate(decided, report_only, Some(fleet), ctx.cfg);
    let was = (info.drained() || info.failed()) && info.ours();
    *fleet = fleet.after(was, action.leaves_our_drain(info));
    let step = repair::step(
        &ctx.cfg.actions,
        &action,
        repair::needed(&judgement.findings),
    );
    let done = if held.is_some() || ctx.opts.dry_run {
        Ok(())
    } else if nr.retest {
        // The node is resumed inside its reservation: a pass leaves it so; anything else
        // drains it again (the old reason, or the new one).
        let again = match &action {
            Action::Resume => None,
            Action::UpdateReason(r) | Action::Drain(r) => Some(r.clone()),
            _ => info.reason.clone(),
        };
        match again {
            Some(r) => ctx.scontrol.apply(&nr.node, &Action::Drain(r)),
            None => Ok(()),
        }
    } else {
        match &step {
            Some(s) if !s.after_drain() => ctx.scontrol.step(&s.args(&nr.node)),
            Some(s) => ctx
                .scontrol
                .apply(&nr.node, &action)
                .and_then(|()| ctx.scontrol.step(&s.args(&nr.node))),
            None => ctx.scontrol.apply(&nr.node, &action),
        }
    };
    let drained_again = done.is_ok();
    // The step was taken only where nothing held it and it was no retest's.
    let taken = done.is_ok() && held.is_none() && !ctx.opts.dry_run && !nr.retest;
    if let (true, Some(s), Some(l)) = (taken, &step, ledger.as_mut()) {
        if let Err(e) = l.taken(s, &judgement.findings) {
            errors.push(format!("{node}: {e}"));
            nr.errors.push(e);
        }
    }
    if let Err(e) = done {
        nr.errors.push(e.clone());
        errors.push(format!("{}: {e}", nr.node));
    }
    if nr.retest {
        // Without its drain back the reservation is all that keeps jobs off the node.
        if drained_again {
            if let Some(e) = ctx.close_retest(&nr.node) {
                nr.errors.push(e);
            }
        } else {
            nr.errors.push(format!(
                "reservation {} kept: the node could not be drained again",
                resv_name(&nr.node)
            ));
        }
    }
    nr.repair = step.filter(|_| !nr.retest).map(|s| Repair {
        command: s.describe(&nr.node),
        instead_of_drain: !s.after_drain(),
    });
    nr.action = action;
    nr.held = held;
}

impl NodeRun {
    /// One line per suite, then what was done to the node.
    pub fn human(&self) -> Vec<String> {
        let n = &self.node;
        if let Some(why) = &self.skipped {
            return vec![format!("ml-healthcheck: {n}: active: skipped: {why}")];
        }
        let mut lines: Vec<String> = self
            .recovered
            .iter()
            .map(|r| format!("ml-healthcheck: {n}: active: {r}"))
            .collect();
        lines.extend(self.suites.iter().map(|s| {
            format!(
                "ml-healthcheck: {n}: active {}: {}: {}",
                s.suite.name(),
                s.outcome.name().to_ascii_uppercase(),
                s.evidence
            )
        }));
        for e in &self.errors {
            lines.push(format!("ml-healthcheck: {n}: active: error: {e}"));
        }
        let was = self.node_reason.as_deref().unwrap_or("");
        let done = match (&self.held, &self.action) {
            (Some(h), _) => format!(
                "held ({}): would {}{}",
                h.hold,
                h.action.name(),
                h.action
                    .drain_reason()
                    .map_or(String::new(), |r| format!(": {r}"))
            ),
            (None, Action::Drain(r)) => format!("drained: {r}"),
            (None, Action::UpdateReason(r)) => format!("drained, reason now: {r}"),
            (None, Action::Resume) => format!("resumed (was drained: {was})"),
            (None, Action::LeaveOthersDrain) => {
                format!("left as it is: drained by someone else ({was})")
            }
            (None, Action::Nothing) if self.retest => format!("kept drained: {was}"),
            (None, Action::Nothing) if self.suites.is_empty() => {
                "not tested (no job ran): nothing changed".into()
            }
            (None, Action::Nothing) => {
                let unknown = self.suites.iter().filter(|s| !s.outcome.judged()).count();
                if unknown > 0 {
                    format!("{unknown} suite(s) UNKNOWN: nothing changed")
                } else {
                    "passed".into()
                }
            }
        };
        let repair = self
            .repair
            .as_ref()
            .map_or(String::new(), |r| format!("; {}", r.command));
        lines.push(format!(
            "ml-healthcheck: {n}: active checks: {done}{repair}"
        ));
        lines
    }
}

impl ActiveReport {
    pub fn human(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.nodes.iter().flat_map(NodeRun::human).collect();
        // The run's own errors (a node's are on its lines).
        for e in &self.errors {
            if !self
                .nodes
                .iter()
                .any(|n| e.starts_with(&format!("{}: ", n.node)))
            {
                lines.push(format!("ml-healthcheck: active: error: {e}"));
            }
        }
        if self.breaker_open {
            if let Some(b) = &self.breaker {
                lines.push(format!(
                    "ml-healthcheck: active: CIRCUIT BREAKER OPEN: {} of {} nodes carry ml-healthcheck's drain, at most {} may: new drains are held",
                    b.drained, b.nodes, b.limit
                ));
            }
        }
        lines
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The textfile for node_exporter: each tested node's suites by outcome (one of them
    /// 1), what was held, the breaker.
    pub fn prometheus(&self, now_unix: f64) -> String {
        let mut s = String::from("# HELP ml_healthcheck_active_outcome Each active suite's outcome on each node in the last run (one of pass, fail, slow, crash, hang, not-run is 1).\n# TYPE ml_healthcheck_active_outcome gauge\n");
        for n in &self.nodes {
            for r in &n.suites {
                for o in Outcome::ALL {
                    s.push_str(&format!(
                        "ml_healthcheck_active_outcome{{node=\"{}\",suite=\"{}\",outcome=\"{}\"}} {}\n",
                        n.node,
                        r.suite.name(),
                        o.name(),
                        u8::from(r.outcome == o)
                    ));
                }
            }
        }
        s.push_str("# HELP ml_healthcheck_active_held 1 when the run held an action on the node (report only, circuit breaker).\n# TYPE ml_healthcheck_active_held gauge\n");
        for n in self.nodes.iter().filter(|n| n.skipped.is_none()) {
            s.push_str(&format!(
                "ml_healthcheck_active_held{{node=\"{}\"}} {}\n",
                n.node,
                u8::from(n.held.is_some())
            ));
        }
        s.push_str(&format!("# HELP ml_healthcheck_active_breaker_open 1 when the circuit breaker holds new drains.\n# TYPE ml_healthcheck_active_breaker_open gauge\nml_healthcheck_active_breaker_open {}\n", u8::from(self.breaker_open)));
        s.push_str(&format!("# HELP ml_healthcheck_active_last_run_timestamp_seconds When the last active run ended.\n# TYPE ml_healthcheck_active_last_run_timestamp_seconds gauge\nml_healthcheck_active_last_run_timestamp_seconds {now_unix:.0}\n"));
        s
    }

    pub fn write_textfile(&self, dir: &Path, now_unix: f64) -> Result<(), String> {
        report::write_textfile(dir, "active", &self.prometheus(now_unix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(state: &str, reason: Option<&str>) -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            state: state.into(),
            reason: reason.map(Into::into),
        }
    }

    #[test]
    fn only_idle_nodes_and_our_active_drains_are_tested() {
        assert_eq!(plan(&n("IDLE", None), true), Plan::Test);
        assert_eq!(plan(&n("IDLE+RESERVED", None), true), Plan::Test);
        for s in [
            "MIXED",
            "ALLOCATED",
            "IDLE+COMPLETING",
            "IDLE*",
            "DOWN*",
            "IDLE+POWERED_DOWN",
            "IDLE+CLOUD",
        ] {
            assert!(
                matches!(plan(&n(s, None), true), Plan::Skip(w) if w.starts_with("not idle")),
                "{s}"
            );
        }
        let active = Some("mlhealth: gpu2 dcgm-diag pcie [replace]");
        assert_eq!(plan(&n("IDLE+DRAIN", active), true), Plan::Retest);
        assert!(
            matches!(plan(&n("IDLE+DRAIN", active), false), Plan::Skip(w) if w.contains("not done when nothing may change"))
        );
        // Busy with a job: not now.
        assert!(matches!(
            plan(&n("MIXED+DRAIN", active), true),
            Plan::Skip(_)
        ));
        let passive = Some("mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]");
        assert!(
            matches!(plan(&n("IDLE+DRAIN", passive), true), Plan::Skip(w) if w.contains("the health check lifts it"))
        );
        assert!(
            matches!(plan(&n("IDLE+DRAIN", Some("admin: fan")), true), Plan::Skip(w) if w.contains("someone else"))
        );
        assert!(
            matches!(plan(&n("IDLE+FAIL", Some("Action:Reboot")), true), Plan::Skip(w) if w.starts_with("failed"))
        );
    }

    /// A second run while one holds results_dir/.lock does not start.
    #[test]
    fn one_active_run_at_a_time() {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(
            d.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let held = lock_results(d.path()).unwrap();
        let e = lock_results(d.path()).unwrap_err();
        assert_eq!(
            e,
            format!(
                "another `ml-healthcheck active` run holds {}/.lock: one run at a time",
                d.path().display()
            )
        );
        drop(held);
        assert!(lock_results(d.path()).is_ok());
    }

    /// A user who can write results_dir (or a directory above it) could put a link or
    /// results of their own where a run's directory was; a sticky one (`/tmp`) is safe.
    #[test]
    fn results_dir_only_its_owner_can_change() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let results = d.path().join("shared/active");
        fs::create_dir_all(&results).unwrap();
        let mode =
            |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        mode(&results, 0o755);
        let run = run_dir(&results).unwrap();
        assert_eq!(fs::metadata(&run).unwrap().mode() & 0o7777, 0o755);
        // The same second and pid name the same run: out of the way for the next.
        fs::remove_dir(&run).unwrap();
        mode(&results, 0o777);
        let e = run_dir(&results).unwrap_err();
        assert!(
            e.starts_with(&format!("active.results_dir {}: ", results.display()))
                && e.contains("is writable by group or others (mode 777)"),
            "{e}"
        );
        mode(&results, 0o1777);
        assert!(run_dir(&results).is_ok());
        mode(&results, 0o755);
        mode(&d.path().join("shared"), 0o775);
        let e = run_dir(&results).unwrap_err();
        assert!(
            e.contains("/shared is writable by group or others (mode 775)"),
            "{e}"
        );
        mode(&d.path().join("shared"), 0o755);
        let e = run_dir(&d.path().join("missing")).unwrap_err();
        assert!(e.contains("missing: No such file or directory"), "{e}");
    }

    #[test]
    fn fields_of_scontrol_lines() {
        let l =
            "PartitionName=mlhealth AllowGroups=ALL Hidden=YES Nodes=n[1-3] PriorityJobFactor=1";
        assert_eq!(field(l, "Nodes="), Some("n[1-3]"));
        assert_eq!(field("Nodes=(null) X=1", "Nodes="), None);
        assert_eq!(
            field("JobId=5 JobState=COMPLETED Reason=None", "JobState="),
            Some("COMPLETED")
        );
    }
}
