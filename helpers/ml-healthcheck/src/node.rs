//! The node in Slurm: its state and drain reason (from `scontrol show node -o`), what to do
//! about the findings (pure: [`decide`]), and doing it (`scontrol update`).
//!
//! A drain is ours only when its reason starts with [`REASON_PREFIX`]; anyone else's drain
//! (an admin's, Slurm's own "Prolog error", another health checker's) is never overwritten
//! and never lifted.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const REASON_PREFIX: &str = "mlhealth:";

/// The node as Slurm shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// `IDLE+DRAIN`, `MIXED`, `DOWN*+DRAIN`, ...
    pub state: String,
    pub reason: Option<String>,
}

impl NodeInfo {
    pub fn drained(&self) -> bool {
        self.state.split('+').any(|f| f == "DRAIN")
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
            .is_some_and(|r| r.starts_with(REASON_PREFIX))
    }
}

/// Parses one node's `scontrol show node NAME -o` line. The reason is printed as
/// `Reason=TEXT [USER@TIME]` and, from 23.02, may be followed by `Comment=`/`Extra=`.
pub fn parse_show_node(line: &str) -> Result<NodeInfo, String> {
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
    Ok(NodeInfo { state, reason })
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

/// `full_check`: the run made every check (the health check). Only such a run rewrites
/// our reason or lifts our drain: a prolog's "busy" drain must not be lifted by the epilog
/// that follows the failed prolog, which does not look for busy GPUs.
pub fn decide(node: &NodeInfo, drain_reason: Option<&str>, full_check: bool) -> Action {
    match (drain_reason, node.drained(), node.ours()) {
        (_, true, false) => Action::LeaveOthersDrain,
        (Some(r), false, _) => Action::Drain(r.to_string()),
        (_, true, true) if !full_check => Action::Nothing,
        (Some(r), true, true) if node.reason.as_deref() != Some(r) => {
            Action::UpdateReason(r.to_string())
        }
        (Some(_), true, true) => Action::Nothing,
        (None, true, true) => Action::Resume,
        (None, false, _) => Action::Nothing,
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

/// Runs `scontrol` for one node.
pub struct Scontrol {
    pub program: PathBuf,
    /// `SLURM_CONF` for scontrol, when the run knows it.
    pub slurm_conf: Option<PathBuf>,
}

impl Scontrol {
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let mut c = Command::new(&self.program);
        c.args(args);
        if let Some(conf) = &self.slurm_conf {
            c.env("SLURM_CONF", conf);
        }
        let out = c
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        if !out.status.success() {
            return Err(format!(
                "scontrol {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn show(&self, node: &str) -> Result<NodeInfo, String> {
        let out = self.run(&["show", "node", node, "-o"])?;
        parse_show_node(out.lines().next().unwrap_or(""))
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

    const N2: &str = "NodeName=n2 Arch=x86_64 CoresPerSocket=8  CPUAlloc=0 Gres=gpu:8 NodeAddr=127.0.0.1 State=IDLE+DRAIN ThreadsPerCore=1 Partitions=debug  CfgTRES=cpu=8,mem=8000M,billing=8 AllocTRES= CapWatts=n/a ExtSensorsTemp=n/s Reason=admin: bad fan [root@2026-11-25T03:18:04]";

    #[test]
    fn reads_state_and_reason_of_every_release() {
        assert_eq!(
            parse_show_node(N2).unwrap(),
            NodeInfo {
                state: "IDLE+DRAIN".into(),
                reason: Some("admin: bad fan".into())
            }
        );
        // 24.11 prints Comment= and Extra= after the reason.
        let n = parse_show_node("NodeName=n3 State=MIXED+DRAIN Reason=mlhealth: gpu3 xid79 [x] [slurm@2026-11-25T03:18:04] Comment=(null) Extra=(null)").unwrap();
        assert_eq!(n.reason.as_deref(), Some("mlhealth: gpu3 xid79 [x]"));
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
            state: state.into(),
            reason: reason.map(Into::into),
        }
    }

    #[test]
    fn only_our_own_drain_is_changed_or_lifted() {
        let bad = Some("mlhealth: gpu3 xid79");
        assert_eq!(
            decide(&node("IDLE", None), bad, true),
            Action::Drain("mlhealth: gpu3 xid79".into())
        );
        assert_eq!(decide(&node("IDLE", None), None, true), Action::Nothing);
        // An admin's drain: never overwritten, never lifted.
        let admin = node("IDLE+DRAIN", Some("admin: bad fan"));
        assert_eq!(decide(&admin, bad, true), Action::LeaveOthersDrain);
        assert_eq!(decide(&admin, None, true), Action::LeaveOthersDrain);
        // Ours: kept while unhealthy, the reason follows the findings, lifted when healthy.
        let ours = node("IDLE+DRAIN", bad);
        assert_eq!(decide(&ours, bad, true), Action::Nothing);
        assert_eq!(
            decide(&ours, Some("mlhealth: gpu1 ecc uncorrectable=2"), true),
            Action::UpdateReason("mlhealth: gpu1 ecc uncorrectable=2".into())
        );
        assert_eq!(decide(&ours, None, true), Action::Resume);
        // A reason of ours left on an undrained node (resumed by an admin) is not a drain.
        assert_eq!(decide(&node("IDLE", bad), None, true), Action::Nothing);
        // A prolog or epilog drains, but leaves an existing drain of ours to the health check.
        assert_eq!(decide(&ours, None, false), Action::Nothing);
        assert_eq!(
            decide(&ours, Some("mlhealth: gpu1 ecc uncorrectable=2"), false),
            Action::Nothing
        );
        assert_eq!(
            decide(&node("MIXED", None), bad, false),
            Action::Drain("mlhealth: gpu3 xid79".into())
        );
    }
}
