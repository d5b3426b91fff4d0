//! Fleet safety: what keeps a bad driver push or a broken config from draining the whole
//! cluster. Pure: the node list comes from `scontrol --all show node`, which a run asks
//! only when it would change its node.
//!
//! - **Report only** (`mode = "report"`, or the killswitch file exists): every action is
//!   reported as what it would be, and nothing is done in Slurm.
//! - **Circuit breaker**: a new drain is held when the nodes that already carry our drain
//!   reach the limit (`breaker_max_nodes`, `breaker_max_percent` of the cluster's nodes,
//!   never below one node). Only a new drain is held: a resume, or a new reason on a node
//!   already drained by us, never adds a drained node.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, Enforcement};
use crate::node::{Action, NodeInfo};

/// How many of the cluster's nodes Slurm shows, and how many carry our drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fleet {
    pub nodes: usize,
    /// Nodes drained (or failed) with a reason of ours, this one included.
    pub ours: usize,
}

impl Fleet {
    pub fn count<'a>(nodes: impl IntoIterator<Item = &'a NodeInfo>) -> Fleet {
        let mut f = Fleet { nodes: 0, ours: 0 };
        for n in nodes {
            f.nodes += 1;
            f.ours += usize::from(
                ((n.drained() || n.failed()) && n.ours()) || crate::repair::hyperpod_owns(n),
            );
        }
        f
    }
}

impl Fleet {
    /// The count once this run's action is done on a node that carried our drain (`was`)
    /// and carries it now (`is`): what the metric shows.
    pub fn after(self, was: bool, is: bool) -> Fleet {
        Fleet {
            nodes: self.nodes,
            ours: (self.ours + usize::from(is)).saturating_sub(usize::from(was)),
        }
    }
}

/// The most nodes that may carry our drain at once: `breaker_max_percent` of the
/// cluster's nodes (rounded down) and at most `breaker_max_nodes`, but never below one, so
/// a small cluster (under 10 nodes at the default 10%) can still drain its one bad node.
pub fn limit(nodes: usize, max_nodes: Option<u32>, max_percent: u32) -> usize {
    let by_percent = nodes.saturating_mul(max_percent as usize) / 100;
    let capped = max_nodes.map_or(by_percent, |m| by_percent.min(m as usize));
    capped.max(1)
}

/// Why an action was not done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum Hold {
    /// `mode = "report"` in the config.
    ReportMode,
    /// The killswitch file exists.
    Killswitch { path: PathBuf },
    /// `ml-healthcheck active --dry-run`.
    DryRun,
    /// Another drain would pass the limit.
    Breaker {
        ours: usize,
        nodes: usize,
        limit: usize,
    },
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::ReportMode => write!(f, "report only: mode = \"report\""),
            Hold::DryRun => write!(f, "report only: --dry-run"),
            Hold::Killswitch { path } => {
                write!(f, "report only: killswitch {} exists", path.display())
            }
            Hold::Breaker {
                ours,
                nodes,
                limit,
            } => write!(
                f,
                "circuit breaker open: {ours} of {nodes} nodes already carry ml-healthcheck's drain, at most {limit} may"
            ),
        }
    }
}

/// The action not done, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    #[serde(flatten)]
    pub action: Action,
    #[serde(flatten)]
    pub hold: Hold,
}

/// Report-only from the config and the killswitch (`exists`: the file system's answer,
/// a parameter for the tests). Any entry at the path counts, a dangling link too.
pub fn report_only(cfg: &Config, exists: impl Fn(&Path) -> bool) -> Option<Hold> {
    if exists(&cfg.killswitch) {
        return Some(Hold::Killswitch {
            path: cfg.killswitch.clone(),
        });
    }
    (cfg.mode == Enforcement::Report).then_some(Hold::ReportMode)
}

/// Whether the breaker holds a new drain now (the metric `ml_healthcheck_breaker_open`).
pub fn breaker_open(fleet: &Fleet, cfg: &Config) -> bool {
    fleet.ours >= limit(fleet.nodes, cfg.breaker_max_nodes, cfg.breaker_max_percent)
}

/// The action to do and the one held instead: report-only holds every change, the
/// breaker holds a new drain (the node is not drained by us yet, so it would add one).
pub fn gate(
    action: Action,
    report_only: Option<Hold>,
    fleet: Option<&Fleet>,
    cfg: &Config,
) -> (Action, Option<Held>) {
    let changes = action.changes();
    let hold = match (&action, report_only, fleet) {
        (_, Some(h), _) if changes => Some(h),
        (Action::Drain(_), _, Some(f)) if breaker_open(f, cfg) => Some(Hold::Breaker {
            ours: f.ours,
            nodes: f.nodes,
            limit: limit(f.nodes, cfg.breaker_max_nodes, cfg.breaker_max_percent),
        }),
        _ => None,
    };
    match hold {
        Some(hold) => (Action::Nothing, Some(Held { action, hold })),
        None => (action, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_at_and_around_its_thresholds() {
        // 10% of 100 nodes is 10; of 109, still 10 (rounded down); of 110, 11.
        assert_eq!(limit(100, None, 10), 10);
        assert_eq!(limit(109, None, 10), 10);
        assert_eq!(limit(110, None, 10), 11);
        // Never below one node: 10% of 9 nodes, 0%, a cap of 1.
        assert_eq!(limit(9, None, 10), 1);
        assert_eq!(limit(10, None, 10), 1);
        assert_eq!(limit(20, None, 10), 2);
        assert_eq!(limit(500, None, 0), 1);
        assert_eq!(limit(0, None, 10), 1);
        // The smaller of the two.
        assert_eq!(limit(1000, Some(5), 10), 5);
        assert_eq!(limit(30, Some(5), 10), 3);
        assert_eq!(limit(3, Some(2), 100), 2);
        assert_eq!(limit(3, None, 67), 2);
        assert_eq!(limit(3, None, 66), 1);
        assert_eq!(limit(usize::MAX, None, 100), usize::MAX / 100);
    }

    fn cfg(max_nodes: Option<u32>, max_percent: u32) -> Config {
        Config {
            breaker_max_nodes: max_nodes,
            breaker_max_percent: max_percent,
            ..Config::default()
        }
    }

    fn drain() -> Action {
        Action::Drain("mlhealth: gpu1 ecc uncorrectable=2".into())
    }

    #[test]
    fn the_breaker_holds_the_drain_that_would_pass_the_limit() {
        let c = cfg(Some(2), 100);
        let fleet = |ours| Fleet { nodes: 3, ours };
        // 0 and 1 of ours: a second drain is allowed; 2: the third is held.
        assert_eq!(gate(drain(), None, Some(&fleet(0)), &c), (drain(), None));
        assert_eq!(gate(drain(), None, Some(&fleet(1)), &c), (drain(), None));
        let held = Held {
            action: drain(),
            hold: Hold::Breaker {
                ours: 2,
                nodes: 3,
                limit: 2,
            },
        };
        assert_eq!(
            gate(drain(), None, Some(&fleet(2)), &c),
            (Action::Nothing, Some(held.clone()))
        );
        assert!(breaker_open(&fleet(2), &c) && !breaker_open(&fleet(1), &c));
        assert_eq!(
            held.hold.to_string(),
            "circuit breaker open: 2 of 3 nodes already carry ml-healthcheck's drain, at most 2 may"
        );
        // Never a resume, a new reason or an admin's drain left alone.
        for a in [
            Action::Resume,
            Action::UpdateReason("mlhealth: gpu2 xid79".into()),
            Action::LeaveOthersDrain,
            Action::Nothing,
        ] {
            assert_eq!(gate(a.clone(), None, Some(&fleet(3)), &c), (a, None));
        }
        // Without Slurm there is no fleet to count.
        assert_eq!(gate(drain(), None, None, &c), (drain(), None));
        // The defaults: 10% of the cluster, at least one node.
        let d = Config::default();
        let f = |nodes, ours| Fleet { nodes, ours };
        assert!(gate(drain(), None, Some(&f(3, 0)), &d).1.is_none());
        assert!(gate(drain(), None, Some(&f(3, 1)), &d).1.is_some());
        assert!(gate(drain(), None, Some(&f(200, 19)), &d).1.is_none());
        assert!(gate(drain(), None, Some(&f(200, 20)), &d).1.is_some());
    }

    #[test]
    fn report_only_holds_every_change() {
        let mut c = Config::default();
        assert_eq!(report_only(&c, |_| false), None);
        c.mode = Enforcement::Report;
        assert_eq!(report_only(&c, |_| false), Some(Hold::ReportMode));
        // The killswitch wins, and is named.
        let ks = Hold::Killswitch {
            path: PathBuf::from("/etc/slurm/ml-healthcheck.disable"),
        };
        assert_eq!(report_only(&c, |_| true), Some(ks.clone()));
        assert_eq!(
            ks.to_string(),
            "report only: killswitch /etc/slurm/ml-healthcheck.disable exists"
        );
        for a in [
            drain(),
            Action::Resume,
            Action::UpdateReason("mlhealth: x".into()),
        ] {
            let (done, held) = gate(a.clone(), Some(ks.clone()), None, &c);
            assert_eq!(done, Action::Nothing);
            assert_eq!(held.map(|h| h.action), Some(a));
        }
        for a in [Action::Nothing, Action::LeaveOthersDrain] {
            assert_eq!(gate(a.clone(), Some(ks.clone()), None, &c), (a, None));
        }
    }

    #[test]
    fn counts_our_drains_and_fails_only() {
        let n = |state: &str, reason: Option<&str>| NodeInfo {
            name: String::new(),
            state: state.into(),
            reason: reason.map(Into::into),
        };
        let nodes = [
            n("IDLE+DRAIN", Some("mlhealth: gpu1 busy")),
            n("MIXED+DRAIN", Some("mlhealth: gpu2 xid79")),
            n("DOWN+FAIL", Some("mlhealth: gpu2 xid79")),
            n("IDLE+DRAIN", Some("admin: bad fan")),
            // Resumed by an admin, our old reason still shown (24.11).
            n("IDLE", Some("mlhealth: gpu1 busy")),
            n("ALLOCATED", None),
            // Handed to HyperPod for a repair (actions: hyperpod): counted.
            n("IDLE+FAIL", Some("Action:Reboot")),
            n("FAIL", Some("Action:Replace")),
            // A fail of someone else's: not counted.
            n("IDLE+FAIL", Some("admin: psu")),
        ];
        let f = Fleet::count(&nodes);
        assert_eq!(f, Fleet { nodes: 9, ours: 5 });
        // A resume, a drain, no change.
        assert_eq!(f.after(true, false).ours, 4);
        assert_eq!(f.after(false, true).ours, 6);
        assert_eq!(f.after(true, true).ours, 5);
    }
}
