//! The node in Slurm: its state and drain reason (from `scontrol show node -o`), what to do
//! about the findings (pure: [`decide`]), and doing it (`scontrol update`).
//!
//! A drain is ours only when its reason starts with [`reason::PREFIX`]; anyone else's drain
//! (an admin's, Slurm's own "Prolog error", another health checker's) is never overwritten
//! and never lifted.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::evaluate::{drain_reason, Judgement};
use crate::reason;

/// The node as Slurm shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// `NodeName=`.
    pub name: String,
    /// `IDLE+DRAIN`, `MIXED`, `DOWN*+DRAIN`, ...
    pub state: String,
    pub reason: Option<String>,
}

impl NodeInfo {
    pub fn drained(&self) -> bool {
        self.state.split('+').any(|f| f == "DRAIN")
    }

    /// `FAIL` (`scontrol update state=fail`, HyperPod's way to ask for a repair).
    pub fn failed(&self) -> bool {
        self.state
            .split('+')
            .any(|f| matches!(f.trim_end_matches('*'), "FAIL" | "FAILING"))
    }

    /// Slurm shows no job on the node (and none finishing).
    pub fn without_jobs(&self) -> bool {
        let mut flags = self.state.split('+');
        flags
            .next()
            .is_some_and(|base| base.trim_end_matches('*') == "IDLE")
            && !flags.any(|f| f == "COMPLETING")
    }

    pub fn ours(&self) -> bool {
        self.reason
            .as_deref()
            .is_some_and(|r| r.starts_with(reason::PREFIX))
    }
}

/// Parses one node's `scontrol show node NAME -o` line. The reason is printed as
/// `Reason=TEXT [USER@TIME]` and, from 23.02, may be followed by `Comment=`/`Extra=`.
pub fn parse_show_node(line: &str) -> Result<NodeInfo, String> {
    let name = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("NodeName="))
        .unwrap_or("")
        .to_string();
    let state = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("State="))
        .ok_or_else(|| format!("no State= in scontrol's answer: {line:?}"))?
        .to_string();
    let reason = line.find(" Reason=").map(|i| {
        let rest = &line[i + " Reason=".len()..];
        // The text ends at the " [user@time]" Slurm appends.
        let mut end = rest.len();
        let mut from = 0;
        while let Some(j) = rest[from..].find(" [") {
            let at = from + j;
            if let Some(close) = rest[at..].find(']') {
                let inner = &rest[at + 2..at + close];
                if inner.contains('@') && !inner.contains(' ') {
                    end = at;
                    break;
                }
            }
            from = at + 2;
        }
        rest[..end].trim().to_string()
    });
    Ok(NodeInfo {
        name,
        state,
        reason,
    })
}

/// What to do with the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Healthy and not drained by us, or unhealthy and already drained by us for this reason.
    Nothing,
    Drain(String),
    /// Already drained by us, for other findings now.
    UpdateReason(String),
    /// Drained by us, and every check passes.
    Resume,
    /// Drained by someone else: left as it is, whatever we found.
    LeaveOthersDrain,
}

impl Action {
    /// The name in `--json` (`action`): `none`, `drain`, `update-reason`, `resume`,
    /// `leave-others-drain`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Nothing => "none",
            Action::Drain(_) => "drain",
            Action::UpdateReason(_) => "update-reason",
            Action::Resume => "resume",
            Action::LeaveOthersDrain => "leave-others-drain",
        }
    }

    /// Whether the action changes the node in Slurm (a drain, a new reason, a resume).
    pub fn changes(&self) -> bool {
        matches!(
            self,
            Action::Drain(_) | Action::UpdateReason(_) | Action::Resume
        )
    }

    /// Whether `node` carries our drain once this action is done.
    pub fn leaves_our_drain(&self, node: &NodeInfo) -> bool {
        match self {
            Action::Drain(_) | Action::UpdateReason(_) => true,
            Action::Nothing => node.drained() && node.ours(),
            Action::Resume | Action::LeaveOthersDrain => false,
        }
    }

    /// The reason the node is drained with, when the action drains it.
    pub fn drain_reason(&self) -> Option<&str> {
        match self {
            Action::Drain(r) | Action::UpdateReason(r) => Some(r),
            _ => None,
        }
    }
}

/// `"action": "drain", "reason": "mlhealth: ..."` (the reason only with a drain), the
/// fields `--json` has always had.
impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let reason = self.drain_reason();
        let mut m = s.serialize_map(Some(1 + usize::from(reason.is_some())))?;
        m.serialize_entry("action", self.name())?;
        if let Some(r) = reason {
            m.serialize_entry("reason", r)?;
        }
        m.end()
    }
}

/// `full_check`: the run is the health check. Only it rewrites our reason or lifts our
/// drain, and only for the checks it made again: an item of our reason whose check the
/// run skipped (busy GPUs on a node that runs jobs, where any process may be a job's)
/// stays, and so does the drain.
pub fn decide(node: &NodeInfo, now: &Judgement, full_check: bool) -> Action {
    // A failed node (HyperPod's `Action:Reboot`) is somebody else's, as a drain is.
    match (node.drained() || node.failed(), node.ours()) {
        (true, false) => Action::LeaveOthersDrain,
        (false, _) => drain_reason(&now.findings).map_or(Action::Nothing, Action::Drain),
        (true, true) if !full_check => Action::Nothing,
        (true, true) => {
            let old = node.reason.as_deref();
            match reason::after(old, &now.findings, &now.judged) {
                None => Action::Resume,
                Some(r) if old == Some(r.as_str()) => Action::Nothing,
                Some(r) => Action::UpdateReason(r),
            }
        }
    }
}

/// `scontrol`, found without trusting PATH to be set: slurmd runs HealthCheckProgram with
/// an environment of `SLURMD_NODENAME` alone.
pub fn find_scontrol(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in ["/usr/bin", "/usr/local/bin", "/opt/slurm/bin", "/usr/sbin"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter()
        .map(|d| d.join("scontrol"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("scontrol"))
}

enum Within {
    Io(std::io::Error),
    Late,
}

/// `c`'s output, or `Late` (and the child killed) past `limit`. Its output is read on
/// threads of their own, so a long answer cannot fill a pipe and stall it.
fn within(mut c: Command, limit: std::time::Duration) -> Result<std::process::Output, Within> {
    use std::io::Read;
    use std::process::Stdio;
    let end = std::time::Instant::now() + limit;
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Within::Io)?;
    let reader = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        match child.try_wait().map_err(Within::Io)? {
            Some(s) => break s,
            None if std::time::Instant::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Within::Late);
            }
            None => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Runs `scontrol` for one node.
pub struct Scontrol {
    pub program: PathBuf,
    /// `SLURM_CONF` for scontrol, when the run knows it.
    pub slurm_conf: Option<PathBuf>,
    /// How long one call may take, and the config key that sets it (in a slurmd slot: a
    /// slurmctld that does not answer must not hold the job); past it the call is killed.
    pub timeout: Option<(std::time::Duration, &'static str)>,
}

impl Scontrol {
    /// `scontrol ARGS`: its output, or an error with what it printed.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        self.run_program(&self.program, args)
    }

    /// Another Slurm command (`sbatch`, `scancel`) from scontrol's directory, else PATH.
    pub fn sibling(&self, name: &str) -> PathBuf {
        self.program
            .parent()
            .map(|d| d.join(name))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(name))
    }

    /// Runs `program ARGS` with this cluster's `SLURM_CONF`.
    pub fn run_program(&self, program: &Path, args: &[&str]) -> Result<String, String> {
        let mut c = Command::new(program);
        c.args(args);
        if let Some(conf) = &self.slurm_conf {
            c.env("SLURM_CONF", conf);
        }
        let out = match self.timeout {
            None => c.output().map_err(Within::Io),
            Some((limit, _)) => within(c, limit),
        }
        .map_err(|e| match (e, self.timeout) {
            (Within::Late, Some((limit, key))) => format!(
                "{} {} gave no answer within {} ms ({key}): killed",
                program
                    .file_name()
                    .map_or(program.as_os_str(), |n| n)
                    .to_string_lossy(),
                args.join(" "),
                limit.as_millis()
            ),
            (Within::Io(e), _) => format!("cannot run {}: {e}", program.display()),
            (Within::Late, None) => format!("{} was killed", program.display()),
        })?;
        self.finish(program, args, out)
    }

    fn finish(
        &self,
        program: &Path,
        args: &[&str],
        out: std::process::Output,
    ) -> Result<String, String> {
        if !out.status.success() {
            let name = program.file_name().map_or(program.as_os_str(), |n| n);
            return Err(format!(
                "{} {} failed: {}",
                name.to_string_lossy(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A repair step's command ([`crate::repair::Step::args`]).
    pub fn step(&self, args: &[String]) -> Result<(), String> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args).map(drop)
    }

    /// This node, as every run asks.
    pub fn show(&self, node: &str) -> Result<NodeInfo, String> {
        let out = self.run(&["show", "node", node, "-o"])?;
        parse_show_node(out.lines().next().unwrap_or(""))
    }

    /// Every node of the cluster, for the circuit breaker's count: asked only by a run
    /// that changes its node, so the prolog of every job does not list the whole cluster.
    /// `--all`: nodes whose partitions are all hidden are nodes of the cluster too.
    pub fn show_all(&self) -> Result<Vec<NodeInfo>, String> {
        let out = self.run(&["--all", "show", "node", "-o"])?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_show_node)
            .collect()
    }

    /// Every node, with the time slurmctld recorded its reason ([`crate::fleet::reason_time`]).
    pub fn show_all_timed(&self) -> Result<Vec<(NodeInfo, Option<String>)>, String> {
        let out = self.run(&["--all", "show", "node", "-o"])?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                parse_show_node(l).map(|n| (n, crate::fleet::reason_time(l).map(str::to_string)))
            })
            .collect()
    }

    pub fn apply(&self, node: &str, action: &Action) -> Result<(), String> {
        let name = format!("NodeName={node}");
        match action {
            Action::Drain(r) | Action::UpdateReason(r) => {
                let reason = format!("Reason={r}");
                self.run(&["update", &name, "State=DRAIN", &reason])
                    .map(drop)
            }
            Action::Resume => self.run(&["update", &name, "State=RESUME"]).map(drop),
            Action::Nothing | Action::LeaveOthersDrain => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::evaluate::{self, Context};
    use crate::snapshot::Snapshot;

    const N2: &str = "NodeName=n2 Arch=x86_64 CoresPerSocket=8  CPUAlloc=0 Gres=gpu:8 NodeAddr=127.0.0.1 State=IDLE+DRAIN ThreadsPerCore=1 Partitions=debug  CfgTRES=cpu=8,mem=8000M,billing=8 AllocTRES= CapWatts=n/a ExtSensorsTemp=n/s Reason=admin: bad fan [root@2026-11-25T03:18:04]";

    #[test]
    fn reads_state_and_reason_of_every_release() {
        assert_eq!(
            parse_show_node(N2).unwrap(),
            NodeInfo {
                name: "n2".into(),
                state: "IDLE+DRAIN".into(),
                reason: Some("admin: bad fan".into())
            }
        );
        // 24.11 prints Comment= and Extra= after the reason.
        let n = parse_show_node("NodeName=n3 State=MIXED+DRAIN Reason=mlhealth: gpu3 xid79 [x] [slurm@2026-11-25T03:18:04] Comment=(null) Extra=(null)").unwrap();
        assert_eq!(n.reason.as_deref(), Some("mlhealth: gpu3 xid79 [x]"));
        assert_eq!(n.name, "n3");
        assert!(n.drained() && n.ours());
        let n = parse_show_node("NodeName=n1 State=IDLE ThreadsPerCore=1").unwrap();
        assert_eq!(n.reason, None);
        assert!(!n.drained());
        assert!(n.without_jobs());
        assert!(parse_show_node("Node n1 not found").is_err());
        for (state, without_jobs) in [
            ("IDLE+DRAIN", true),
            ("IDLE*+DRAIN", true),
            ("MIXED", false),
            ("ALLOCATED+DRAIN", false),
            ("IDLE+COMPLETING", false),
            ("DOWN*", false),
        ] {
            assert_eq!(node(state, None).without_jobs(), without_jobs, "{state}");
        }
        // DRAINING / DRAINED are shown as flags on the base state.
        assert!(
            parse_show_node("NodeName=n1 State=DOWN*+DRAIN Reason=x [root@t]")
                .unwrap()
                .drained()
        );
    }

    fn node(state: &str, reason: Option<&str>) -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            state: state.into(),
            reason: reason.map(Into::into),
        }
    }

    const HEALTHY: &str = include_str!("../tests/fixtures/h100x8-healthy.json");

    /// A health check on the healthy fixture with one change, in `ctx`.
    fn run(ctx: &Context, change: impl FnOnce(&mut serde_json::Value)) -> Judgement {
        let mut v: serde_json::Value = serde_json::from_str(HEALTHY).unwrap();
        change(&mut v);
        let snap = Snapshot::from_json(&v.to_string(), "fixture").unwrap();
        evaluate::judge(&snap, &[], &Config::default(), ctx)
    }

    /// A value NVML could not read this run (the query failed: `null` in the snapshot)
    /// proves nothing: an item of our reason about it stays, the others are lifted.
    #[test]
    fn a_value_that_could_not_be_read_does_not_lift_its_item() {
        let failed = node(
            "IDLE+DRAIN",
            Some("mlhealth: gpu3 row remap failed [replace], gpu1 ecc uncorrectable=2 [reset-gpu]"),
        );
        for key in ["remapped_rows_failure", "remapped_rows_pending"] {
            let unread = run(&without_jobs(), |v| {
                v["gpus"][3][key] = serde_json::Value::Null
            });
            assert_eq!(
                decide(&failed, &unread, true),
                Action::UpdateReason("mlhealth: gpu3 row remap failed [replace]".into()),
                "{key}"
            );
        }
        let unread = run(&without_jobs(), |v| {
            v["gpus"][1]["ecc_volatile_uncorrected"] = serde_json::Value::Null
        });
        assert_eq!(
            decide(&failed, &unread, true),
            Action::UpdateReason("mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]".into())
        );
        // Read, and clean: lifted.
        assert_eq!(decide(&failed, &healthy(), true), Action::Resume);
        // An NVLink whose state NVML did not give is left out of the snapshot.
        let down = node(
            "IDLE+DRAIN",
            Some("mlhealth: gpu7 nvlink4 down [reset-gpu]"),
        );
        let unread = run(&without_jobs(), |v| {
            let links = v["gpus"][7]["nvlinks"].as_array_mut().unwrap();
            links.retain(|l| l["link"] != 4);
        });
        assert_eq!(decide(&down, &unread, true), Action::Nothing);
        assert_eq!(decide(&down, &healthy(), true), Action::Resume);
    }

    /// A health check on a node that runs jobs: every check but busy GPUs.
    fn with_jobs() -> Context {
        Context {
            kmsg_read: true,
            ..Context::default()
        }
    }

    /// A health check on a node without jobs: every check.
    fn without_jobs() -> Context {
        Context {
            node_without_jobs: true,
            ..with_jobs()
        }
    }

    fn healthy() -> Judgement {
        run(&without_jobs(), |_| {})
    }

    fn ecc_gpu1() -> Judgement {
        run(&without_jobs(), |v| {
            v["gpus"][1]["ecc_volatile_uncorrected"] = 2.into()
        })
    }

    #[test]
    fn only_our_own_drain_is_changed_or_lifted() {
        let bad = "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]";
        assert_eq!(
            decide(&node("IDLE", None), &ecc_gpu1(), true),
            Action::Drain(bad.into())
        );
        assert_eq!(
            decide(&node("IDLE", None), &healthy(), true),
            Action::Nothing
        );
        // An admin's drain: never overwritten, never lifted.
        let admin = node("IDLE+DRAIN", Some("admin: bad fan"));
        assert_eq!(decide(&admin, &ecc_gpu1(), true), Action::LeaveOthersDrain);
        assert_eq!(decide(&admin, &healthy(), true), Action::LeaveOthersDrain);
        // Ours: kept while unhealthy, the reason follows the findings, lifted when healthy.
        let ours = node("IDLE+DRAIN", Some(bad));
        assert_eq!(decide(&ours, &ecc_gpu1(), true), Action::Nothing);
        let worse = run(&without_jobs(), |v| {
            v["gpus"][1]["ecc_volatile_uncorrected"] = 2.into();
            v["gpus"][6]["remapped_rows_pending"] = true.into();
        });
        assert_eq!(
            decide(&ours, &worse, true),
            Action::UpdateReason(format!("{bad}, gpu6 row remap pending [reset-gpu]"))
        );
        assert_eq!(decide(&ours, &healthy(), true), Action::Resume);
        // A reason of ours left on an undrained node (resumed by an admin) is not a drain.
        assert_eq!(
            decide(&node("IDLE", Some(bad)), &healthy(), true),
            Action::Nothing
        );
        // A prolog or epilog drains, but leaves an existing drain of ours to the health check.
        assert_eq!(decide(&ours, &healthy(), false), Action::Nothing);
        assert_eq!(decide(&ours, &worse, false), Action::Nothing);
        assert_eq!(
            decide(&node("MIXED", None), &ecc_gpu1(), false),
            Action::Drain(bad.into())
        );
    }

    /// A node failed for HyperPod (or anyone) is left alone, as another's drain is: never
    /// drained over, never resumed.
    #[test]
    fn a_failed_node_is_left_alone() {
        for state in ["IDLE+FAIL", "FAIL", "FAILING", "DOWN*+FAIL"] {
            let failed = node(state, Some("Action:Reboot"));
            assert!(failed.failed(), "{state}");
            assert_eq!(decide(&failed, &ecc_gpu1(), true), Action::LeaveOthersDrain);
            assert_eq!(decide(&failed, &healthy(), true), Action::LeaveOthersDrain);
        }
    }

    #[test]
    fn a_drain_is_lifted_only_by_a_run_that_made_its_checks_again() {
        let busy = node("MIXED+DRAIN", Some("mlhealth: gpu1 busy"));
        // Busy GPUs are not judged while the node runs jobs: the prolog's drain stays.
        let running = run(&with_jobs(), |_| {});
        assert_eq!(decide(&busy, &running, true), Action::Nothing);
        // Judged on the node without jobs: kept while the process is there, then lifted.
        let idle_busy = node("IDLE+DRAIN", Some("mlhealth: gpu1 busy"));
        let stray = run(&without_jobs(), |v| {
            v["gpus"][1]["compute_pids"] = vec![7].into()
        });
        assert_eq!(decide(&idle_busy, &stray, true), Action::Nothing);
        assert_eq!(decide(&idle_busy, &healthy(), true), Action::Resume);
        // A new finding does not drop what the run could not judge.
        let ecc = run(&with_jobs(), |v| {
            v["gpus"][2]["ecc_volatile_uncorrected"] = 2.into()
        });
        assert_eq!(
            decide(&busy, &ecc, true),
            Action::UpdateReason(
                "mlhealth: gpu2 ecc uncorrectable=2 [reset-gpu], gpu1 busy".into()
            )
        );
        // A GPU that NVML cannot use is not checked for ECC errors.
        let ours = node(
            "IDLE+DRAIN",
            Some("mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]"),
        );
        let lost = run(&without_jobs(), |v| v["gpus"][1]["lost"] = true.into());
        assert_eq!(
            decide(&ours, &lost, true),
            Action::UpdateReason(
                "mlhealth: gpu1 lost [reboot], gpu1 ecc uncorrectable=2 [reset-gpu]".into()
            )
        );
        // XIDs without the kernel log are not judged.
        let xid = node("IDLE+DRAIN", Some("mlhealth: gpu2 xid79 [reboot]"));
        let no_kmsg = Context {
            kmsg_read: false,
            ..without_jobs()
        };
        assert_eq!(decide(&xid, &run(&no_kmsg, |_| {}), true), Action::Nothing);
        assert_eq!(decide(&xid, &healthy(), true), Action::Resume);
        // What cannot be read item by item needs every check.
        let more = node(
            "MIXED+DRAIN",
            Some("mlhealth: gpu0 row remap pending, +7 more"),
        );
        assert_eq!(decide(&more, &running, true), Action::Nothing);
        assert_eq!(decide(&more, &run(&no_kmsg, |_| {}), true), Action::Nothing);
        assert_eq!(decide(&more, &healthy(), true), Action::Resume);
    }
}
