//! What the site's platform does for the repair a node needs (config `actions`). Pure: the
//! repair comes from the run's drain findings, the step is a list of `scontrol` words.
//!
//! - **drain** (the default for both): our drain only; a person (or another tool) repairs.
//! - **reboot** (`actions.reboot`): our drain, then `scontrol reboot NODE` (no `ASAP`, no
//!   `nextstate`). The drain keeps new jobs off, so the node reboots once its jobs end,
//!   as `ASAP` would; without a `nextstate` slurmctld keeps the DRAIN flag and our reason
//!   through the reboot (node_mgr.c `validate_node_specs` clears DRAIN on the rebooted
//!   node's registration only when `next_state` was given), and the first health check
//!   after it whose checks pass lifts our drain. `nextstate=resume` would put a node back
//!   in service that nobody checked, and 22.05's `ASAP` sets `nextstate=resume` itself
//!   (proc_req.c `_slurm_rpc_reboot_nodes`).
//! - **hyperpod** (`actions.reboot`, `actions.replace`): SageMaker HyperPod's own words,
//!   `scontrol update NodeName=N State=FAIL Reason=Action:Reboot` (or `Action:Replace`),
//!   instead of our drain: HyperPod's agent then reboots or replaces the node and owns it
//!   until it is back.
//!
//! Reboots are bounded across boots ([`crate::reboots`]): a finding of a check the node
//! was rebooted for `actions.reboot_limit` times within `actions.reboot_window_hours`
//! needs new hardware instead (`[replace]`), which `actions.replace` maps.

use serde::Deserialize;

use crate::evaluate::{Action, Finding, Severity};
use crate::node;

/// `actions.reboot`: what a finding that needs a reboot (or a GPU reset, which only a
/// reboot does without a person) leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RebootBy {
    #[default]
    Drain,
    Reboot,
    Hyperpod,
}

/// `actions.replace`: what a finding that needs new hardware leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplaceBy {
    #[default]
    Drain,
    Hyperpod,
}

/// The config's `actions` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Actions {
    pub reboot: RebootBy,
    pub replace: ReplaceBy,
    /// Reboots asked for one check of a node within `reboot_window_hours` before a finding
    /// of that check needs new hardware instead ([`crate::reboots`]); kept across boots in
    /// the config's `history_dir`.
    pub reboot_limit: u32,
    pub reboot_window_hours: u64,
}

impl Default for Actions {
    fn default() -> Self {
        Actions {
            reboot: RebootBy::Drain,
            replace: ReplaceBy::Drain,
            reboot_limit: 1,
            reboot_window_hours: 24,
        }
    }
}

impl Actions {
    /// The bound on reboots, or `None` where nothing reboots (`reboot: "drain"`).
    pub fn reboot_bound(&self) -> Option<crate::reboots::Limit> {
        (self.reboot != RebootBy::Drain).then_some(crate::reboots::Limit {
            limit: self.reboot_limit,
            window_secs: self.reboot_window_hours.saturating_mul(3600),
        })
    }
}

/// What is done in Slurm besides (or instead of) our drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `scontrol reboot NODE`, after our drain.
    Reboot,
    /// `scontrol update NodeName=N State=FAIL Reason=<reason>`, instead of our drain.
    Fail(&'static str),
}

/// The most the run's drain findings need: the repair of the node.
pub fn needed(findings: &[Finding]) -> Action {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Drain)
        .map(|f| f.action)
        .max()
        .unwrap_or(Action::Monitor)
}

/// The step for a node action (only a drain or a new reason of ours leads to one) and
/// the repair it needs. A GPU reset is asked of the platform as a reboot: no Slurm or
/// HyperPod word resets one GPU, and a reboot resets them all.
///
/// Only a new drain leads to one: a node we drained already (rebooted once, and still
/// failing after it) keeps our drain for a person, never reboots in a loop.
pub fn step(actions: &Actions, action: &node::Action, repair: Action) -> Option<Step> {
    if !matches!(action, node::Action::Drain(_)) {
        return None;
    }
    match repair {
        Action::Monitor => None,
        Action::ResetGpu | Action::Reboot => match actions.reboot {
            RebootBy::Drain => None,
            RebootBy::Reboot => Some(Step::Reboot),
            RebootBy::Hyperpod => Some(Step::Fail("Action:Reboot")),
        },
        Action::Replace => match actions.replace {
            ReplaceBy::Drain => None,
            ReplaceBy::Hyperpod => Some(Step::Fail("Action:Replace")),
        },
    }
}

impl Step {
    /// `scontrol`'s arguments for this step on `node`.
    pub fn args(&self, node: &str) -> Vec<String> {
        match self {
            Step::Reboot => vec!["reboot".into(), node.into()],
            Step::Fail(reason) => vec![
                "update".into(),
                format!("NodeName={node}"),
                "State=FAIL".into(),
                format!("Reason={reason}"),
            ],
        }
    }

    /// Whether the step reboots the node (ours, or HyperPod's `Action:Reboot`): what
    /// [`crate::reboots`] counts.
    pub fn reboots(&self) -> bool {
        matches!(self, Step::Reboot | Step::Fail("Action:Reboot"))
    }

    /// Whether the step asks the platform for new hardware (HyperPod's `Action:Replace`).
    pub fn replaces(&self) -> bool {
        matches!(self, Step::Fail("Action:Replace"))
    }

    /// Whether our drain is still done first (a reboot), or the step replaces it.
    pub fn after_drain(&self) -> bool {
        matches!(self, Step::Reboot)
    }

    /// For the human line and the JSON.
    pub fn describe(&self, node: &str) -> String {
        format!("scontrol {}", self.args(node).join(" "))
    }
}

/// A node HyperPod was asked to repair: failed with one of its reasons. Such a node is
/// left to HyperPod (never drained or resumed by us) and counts for the breaker.
pub fn hyperpod_owns(n: &node::NodeInfo) -> bool {
    n.failed()
        && n.reason
            .as_deref()
            .is_some_and(|r| r == "Action:Reboot" || r == "Action:Replace")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::Check;

    fn finding(severity: Severity, action: Action) -> Finding {
        Finding {
            severity,
            check: Check::Xid,
            gpu: Some(2),
            action,
            reason: "gpu2 xid79 [reboot]".into(),
            detail: String::new(),
            evidence: String::new(),
        }
    }

    #[test]
    fn the_node_needs_the_most_of_its_drains() {
        assert_eq!(needed(&[]), Action::Monitor);
        assert_eq!(
            needed(&[
                finding(Severity::Drain, Action::ResetGpu),
                finding(Severity::Drain, Action::Reboot),
                // A warning asks for nothing, whatever its action.
                finding(Severity::Warn, Action::Replace),
                finding(Severity::Unknown, Action::Replace),
            ]),
            Action::Reboot
        );
    }

    #[test]
    fn each_mapping_gives_its_step() {
        let drain = node::Action::Drain("mlhealth: gpu2 xid79 [reboot]".into());
        let site = |reboot, replace| Actions {
            reboot,
            replace,
            ..Actions::default()
        };
        let default = Actions::default();
        assert_eq!(step(&default, &drain, Action::Reboot), None);
        assert_eq!(step(&default, &drain, Action::Replace), None);
        let rebooting = site(RebootBy::Reboot, ReplaceBy::Drain);
        assert_eq!(step(&rebooting, &drain, Action::Reboot), Some(Step::Reboot));
        assert_eq!(
            step(&rebooting, &drain, Action::ResetGpu),
            Some(Step::Reboot)
        );
        assert_eq!(step(&rebooting, &drain, Action::Monitor), None);
        assert_eq!(step(&rebooting, &drain, Action::Replace), None);
        // Only a new drain leads to a step: not a new reason on a node we drained before
        // (rebooted once and failing still), not a resume.
        let update = node::Action::UpdateReason("mlhealth: gpu2 xid79 [reboot]".into());
        assert_eq!(step(&rebooting, &update, Action::Reboot), None);
        assert_eq!(
            step(&rebooting, &node::Action::Resume, Action::Reboot),
            None
        );
        assert_eq!(
            step(&rebooting, &node::Action::Nothing, Action::Reboot),
            None
        );
        let hyperpod = site(RebootBy::Hyperpod, ReplaceBy::Hyperpod);
        assert_eq!(
            step(&hyperpod, &drain, Action::Reboot),
            Some(Step::Fail("Action:Reboot"))
        );
        assert_eq!(
            step(&hyperpod, &drain, Action::Replace),
            Some(Step::Fail("Action:Replace"))
        );
        assert_eq!(
            Step::Fail("Action:Replace").args("n3"),
            [
                "update",
                "NodeName=n3",
                "State=FAIL",
                "Reason=Action:Replace"
            ]
        );
        assert_eq!(Step::Reboot.args("n3"), ["reboot", "n3"]);
        assert!(Step::Reboot.after_drain());
        assert!(Step::Reboot.reboots() && Step::Fail("Action:Reboot").reboots());
        assert!(!Step::Fail("Action:Replace").reboots());
        assert!(!Step::Fail("Action:Reboot").after_drain());
    }

    #[test]
    fn hyperpod_owns_only_its_own_fail() {
        let n = |state: &str, reason: Option<&str>| node::NodeInfo {
            name: "n1".into(),
            state: state.into(),
            reason: reason.map(Into::into),
        };
        assert!(hyperpod_owns(&n("IDLE+FAIL", Some("Action:Reboot"))));
        assert!(hyperpod_owns(&n("DOWN+FAIL", Some("Action:Replace"))));
        assert!(!hyperpod_owns(&n("IDLE+DRAIN", Some("Action:Reboot"))));
        assert!(!hyperpod_owns(&n("IDLE+FAIL", Some("admin"))));
    }
}
