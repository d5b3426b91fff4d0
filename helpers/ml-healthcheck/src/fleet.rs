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

/// When slurmctld recorded a node's reason: the `TIME` of `Reason=TEXT [USER@TIME]` in a
/// `scontrol show node -o` line (ISO 8601, so the text sorts as the time does).
pub fn reason_time(line: &str) -> Option<&str> {
    let rest = &line[line.find(" Reason=")? + " Reason=".len()..];
    let mut from = 0;
    while let Some(j) = rest[from..].find(" [") {
        let at = from + j + 2;
        if let Some(close) = rest[at..].find(']') {
            let inner = &rest[at..at + close];
            if let Some((_, time)) = inner.split_once('@').filter(|_| !inner.contains(' ')) {
                return Some(time);
            }
        }
        from = at;
    }
    None
}

/// After its new drain, whether `me` keeps it: the breaker was asked before the drain,
/// but the runs of many nodes start together (slurmd runs HealthCheckProgram on every
/// node at once unless HealthCheckNodeState=CYCLE; a bad driver push fails them all),
/// each counting the drains before its own. So each counts again once drained: it
/// yields when `limit` other nodes carry our drain from no later than its own (the time
/// slurmctld recorded each reason). The last of more than `limit` such drains always
/// sees the others, so no more than `limit` stay; nodes drained in the same second may
/// all yield, which holds too many rather than too few. `drains`: the nodes carrying our
/// drain or HyperPod's fail, with their reason's time.
pub fn keeps_drain(me: &str, drains: &[(String, Option<String>)], limit: usize) -> bool {
    let Some(mine) = drains.iter().find(|(n, _)| n == me).map(|(_, t)| t) else {
        return true;
    };
    let earlier = drains
        .iter()
        .filter(|(n, t)| n != me && (t.is_none() || mine.is_none() || t <= mine))
        .count();
    earlier < limit
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

    #[test]
    fn reason_times() {
        assert_eq!(
            reason_time("NodeName=n1 State=IDLE+DRAIN Reason=mlhealth: gpu2 xid79 [reboot] [root@2026-12-02T01:59:50] Comment=(null)"),
            Some("2026-12-02T01:59:50")
        );
        assert_eq!(reason_time("NodeName=n1 State=IDLE Reason=x"), None);
        assert_eq!(reason_time("NodeName=n1 State=IDLE"), None);
    }

    /// Three nodes drained at once with room for one: whatever order their counts ran
    /// in, at most one keeps its drain.
    #[test]
    fn of_drains_made_together_no_more_than_the_limit_stay() {
        let t = |s: &str| Some(format!("2026-12-02T02:00:{s}"));
        let d = |v: &[(&str, Option<String>)]| -> Vec<(String, Option<String>)> {
            v.iter().map(|(n, t)| (n.to_string(), t.clone())).collect()
        };
        // Each run's count after its own drain: n2 counted first (alone), n1 saw n2,
        // n3 saw both.
        assert!(keeps_drain("n2", &d(&[("n2", t("00"))]), 1));
        assert!(!keeps_drain(
            "n1",
            &d(&[("n1", t("00")), ("n2", t("00"))]),
            1
        ));
        assert!(!keeps_drain(
            "n3",
            &d(&[("n1", t("00")), ("n2", t("00")), ("n3", t("01"))]),
            1
        ));
        // A drain from a later second does not count against an earlier one.
        assert!(keeps_drain(
            "n1",
            &d(&[("n1", t("00")), ("n2", t("05"))]),
            1
        ));
        // Room for two: the third yields.
        let all = d(&[("n1", t("00")), ("n2", t("01")), ("n3", t("02"))]);
        assert!(keeps_drain("n2", &all, 2));
        assert!(!keeps_drain("n3", &all, 2));
        // Not in the list (the count raced with someone's resume): kept.
        assert!(keeps_drain("n9", &all, 1));
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
