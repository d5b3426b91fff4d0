//! The reboots we asked for, kept across boots: a fault a reboot does not mend must not
//! reboot the node in a loop. The state file is per boot (/run), and a node HyperPod
//! rebooted comes back in service with a fresh one, so without this file a persistent
//! fault failed it with `Action:Reboot` after every reboot; with `actions.reboot =
//! "reboot"` a node resumed after a passing check and failing again was rebooted again.
//!
//! The rule ([`escalate`], pure): a drain finding that needs a reboot (or a GPU reset)
//! for a check this node was already rebooted for `actions.reboot_limit` times within the
//! last `actions.reboot_window_hours` needs new hardware instead: its action becomes
//! `replace`, and the site's `actions.replace` says what that does (HyperPod's
//! `Action:Replace`, or our plain drain, whose reason then says `[replace]`). A finding
//! our drain already names with `[replace]` stays so while the node is drained, so the
//! reason does not turn back to `[reboot]` when the window passes.
//!
//! Kept per node name in `history_dir` (`/var/lib/ml-healthcheck`: it must outlive a
//! reboot), root-only, written atomically like the state file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::evaluate::{Action, Check, Finding, Severity};
use crate::repair::Step;

/// One node's bound for one run, as the health check and `ml-healthcheck active` both
/// keep it: the history read before the findings are judged, and what a step taken in
/// Slurm adds to it.
pub struct Ledger<'a> {
    dir: &'a Path,
    node: &'a str,
    limit: Limit,
    now: u64,
    history: History,
}

impl<'a> Ledger<'a> {
    /// `None` where nothing reboots (`actions.reboot: "drain"`); else the node's history,
    /// with a warning where it could not be read (the bound is off for this run).
    pub fn open(cfg: &'a Config, node: &'a str, now: u64) -> Option<(Ledger<'a>, Option<String>)> {
        let limit = cfg.actions.reboot_bound()?;
        let (history, warn) = load(&cfg.history_dir, node);
        let ledger = Ledger {
            dir: &cfg.history_dir,
            node,
            limit,
            now,
            history,
        };
        Some((ledger, warn))
    }

    /// [`escalate`] against this history.
    pub fn escalate(&self, findings: &mut [Finding], our_reason: Option<&str>) -> usize {
        escalate(findings, &self.history, self.limit, self.now, our_reason)
    }

    /// After `step` was taken in Slurm: a reboot is recorded; a replacement (new hardware
    /// under the same node name) starts the count afresh. Err: the history is not kept.
    pub fn taken(&mut self, step: &Step, findings: &[Finding]) -> Result<(), String> {
        if step.reboots() {
            let reason = crate::evaluate::drain_reason(findings).unwrap_or_default();
            self.history
                .record(self.now, self.limit.window_secs, findings, &reason);
        } else if step.replaces() {
            self.history = History::default();
        } else {
            return Ok(());
        }
        save(self.dir, self.node, &self.history).map_err(|e| {
            format!("cannot keep the reboot history (the next reboot is not bounded): {e}")
        })
    }
}

/// One reboot asked for: when (seconds since the epoch), and the checks that needed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reboot {
    pub at: u64,
    pub checks: Vec<Check>,
    /// The drain reason at the time, for the admin who reads the file.
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    pub reboots: Vec<Reboot>,
}

/// The bound: at most `limit` reboots for one check within `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: u32,
    pub window_secs: u64,
}

impl History {
    /// The reboots for `check` within the window before `now`.
    fn count(&self, check: Check, now: u64, window_secs: u64) -> (u32, Option<u64>) {
        let recent: Vec<u64> = self
            .reboots
            .iter()
            .filter(|r| r.checks.contains(&check) && now.saturating_sub(r.at) < window_secs)
            .map(|r| r.at)
            .collect();
        (
            u32::try_from(recent.len()).unwrap_or(u32::MAX),
            recent.into_iter().max(),
        )
    }

    /// Remembers a reboot asked for now, and forgets those past the window.
    pub fn record(&mut self, now: u64, window_secs: u64, findings: &[Finding], reason: &str) {
        self.reboots
            .retain(|r| now.saturating_sub(r.at) < window_secs);
        let mut checks: Vec<Check> = findings
            .iter()
            .filter(|f| needs_reboot(f))
            .map(|f| f.check)
            .collect();
        checks.sort();
        checks.dedup();
        self.reboots.push(Reboot {
            at: now,
            checks,
            reason: reason.to_string(),
        });
    }
}

fn needs_reboot(f: &Finding) -> bool {
    f.severity == Severity::Drain && matches!(f.action, Action::ResetGpu | Action::Reboot)
}

/// The reason item a finding has once escalated: its `[reboot]` / `[reset-gpu]` tag
/// becomes `[replace]`.
fn escalated_reason(f: &Finding) -> String {
    let tag = format!(" [{}]", f.action.name());
    match f.reason.strip_suffix(&tag) {
        Some(rest) => format!("{rest} [{}]", Action::Replace.name()),
        None => f.reason.clone(),
    }
}

/// Turns the drain findings that need a reboot for a check rebooted for too often into
/// findings that need new hardware ([module docs](self)). `our_reason`: the node's drain
/// reason when it is ours. Returns how many findings were escalated.
pub fn escalate(
    findings: &mut [Finding],
    history: &History,
    limit: Limit,
    now: u64,
    our_reason: Option<&str>,
) -> usize {
    let kept = our_reason
        .and_then(crate::reason::items)
        .unwrap_or_default();
    // Ours already asks for new hardware for this check and GPU: by the same words, or by
    // the check's name where the words carry a measured value (`nccl busbw 68<350`).
    let replaced = |f: &Finding, escalated: &str| {
        kept.iter().any(|i| {
            i.text == escalated
                || (i.names == Some((f.check, f.gpu))
                    && i.text.ends_with(&format!(" [{}]", Action::Replace.name())))
        })
    };
    let mut n = 0;
    for f in findings.iter_mut().filter(|f| needs_reboot(f)) {
        let escalated = escalated_reason(f);
        let (count, last) = history.count(f.check, now, limit.window_secs);
        let why = if count >= limit.limit {
            let hours = limit.window_secs / 3600;
            let ago = last.map_or(0, |at| now.saturating_sub(at) / 60);
            format!(
                "rebooted for {} {count} time(s) within {hours} h already (the last {ago} min ago; actions.reboot_limit {}): replace",
                f.check.name(),
                limit.limit
            )
        } else if replaced(f, &escalated) {
            "drained for new hardware already: replace".to_string()
        } else {
            continue;
        };
        f.action = Action::Replace;
        f.reason = escalated;
        f.detail = format!("{}; {why}", f.detail);
        n += 1;
    }
    n
}

/// The history of `node` in `dir`: none yet is empty; an unreadable one is empty and
/// reported (the bound is off for that run, which the warning says).
pub fn load(dir: &Path, node: &str) -> (History, Option<String>) {
    let file = crate::state::path(dir, node);
    if std::fs::symlink_metadata(&file).is_err() {
        return (History::default(), None);
    }
    let parsed = trusted_config::read(&file).and_then(|t| {
        serde_json::from_str::<History>(&t).map_err(|e| format!("{}: {e}", file.display()))
    });
    match parsed {
        Ok(h) => (h, None),
        Err(e) => (
            History::default(),
            Some(format!(
                "ignoring the reboot history (reboots are not bounded this run): {e}"
            )),
        ),
    }
}

/// Writes the history atomically into `dir`, created root-only when missing; refuses a
/// directory that is not root's or is a link.
pub fn save(dir: &Path, node: &str, history: &History) -> Result<(), String> {
    crate::state::save_json(dir, &crate::state::path(dir, node), history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const DAY: Limit = Limit {
        limit: 1,
        window_secs: 24 * 3600,
    };

    fn finding(check: Check, action: Action, short: &str) -> Finding {
        Finding {
            severity: Severity::Drain,
            check,
            gpu: Some(2),
            action,
            reason: format!("gpu2 {short} [{}]", action.name()),
            detail: format!("gpu2: {short}"),
            evidence: String::new(),
        }
    }

    fn rebooted(at: u64, checks: &[Check]) -> History {
        History {
            reboots: vec![Reboot {
                at,
                checks: checks.to_vec(),
                reason: String::new(),
            }],
        }
    }

    #[test]
    fn a_second_reboot_for_the_same_check_within_the_window_asks_for_replace() {
        let now = 1_000_000;
        let mut f = vec![finding(Check::Fabric, Action::Reboot, "fabric failed")];
        // Rebooted for it two hours ago: replace.
        let h = rebooted(now - 2 * 3600, &[Check::Fabric]);
        assert_eq!(escalate(&mut f, &h, DAY, now, None), 1);
        assert_eq!(f[0].action, Action::Replace);
        assert_eq!(f[0].reason, "gpu2 fabric failed [replace]");
        assert_eq!(
            f[0].detail,
            "gpu2: fabric failed; rebooted for nvlink-fabric 1 time(s) within 24 h already (the last 120 min ago; actions.reboot_limit 1): replace"
        );
        // The node then needs new hardware.
        assert_eq!(crate::repair::needed(&f), Action::Replace);
    }

    #[test]
    fn another_check_an_old_reboot_or_a_higher_limit_still_reboots() {
        let now = 1_000_000;
        let fresh = || vec![finding(Check::Xid, Action::ResetGpu, "xid79")];
        let mut f = fresh();
        assert_eq!(
            escalate(
                &mut f,
                &rebooted(now - 60, &[Check::Fabric]),
                DAY,
                now,
                None
            ),
            0
        );
        assert_eq!(f, fresh());
        // 24 h and a second ago: outside the window.
        let mut f = fresh();
        assert_eq!(
            escalate(
                &mut f,
                &rebooted(now - 24 * 3600 - 1, &[Check::Xid]),
                DAY,
                now,
                None
            ),
            0
        );
        assert_eq!(f[0].reason, "gpu2 xid79 [reset-gpu]");
        let two = Limit { limit: 2, ..DAY };
        let mut f = fresh();
        assert_eq!(
            escalate(&mut f, &rebooted(now - 60, &[Check::Xid]), two, now, None),
            0
        );
        let mut h = rebooted(now - 120, &[Check::Xid]);
        h.record(
            now - 60,
            DAY.window_secs,
            &fresh(),
            "mlhealth: gpu2 xid79 [reset-gpu]",
        );
        assert_eq!(escalate(&mut f, &h, two, now, None), 1);
        assert_eq!(f[0].reason, "gpu2 xid79 [replace]");
    }

    #[test]
    fn warnings_and_replacements_are_left_alone() {
        let now = 1_000_000;
        let h = rebooted(now - 60, &[Check::Xid, Check::RemappedRows]);
        let mut warn = finding(Check::Xid, Action::Reboot, "xid79");
        warn.severity = Severity::Warn;
        let replace = finding(Check::RemappedRows, Action::Replace, "row remap failed");
        let mut f = vec![warn.clone(), replace.clone()];
        assert_eq!(escalate(&mut f, &h, DAY, now, None), 0);
        assert_eq!(f, vec![warn, replace]);
    }

    #[test]
    fn our_replace_drain_stays_replace_after_the_window() {
        let now = 1_000_000;
        let mut f = vec![finding(Check::Fabric, Action::Reboot, "fabric failed")];
        let old = rebooted(now - 30 * 3600, &[Check::Fabric]);
        let ours = "mlhealth: gpu2 fabric failed [replace]";
        assert_eq!(escalate(&mut f, &old, DAY, now, Some(ours)), 1);
        assert_eq!(
            crate::reason::after(Some(ours), &f, &Default::default()).as_deref(),
            Some(ours)
        );
        // Someone else's words are not ours.
        let mut f = vec![finding(Check::Fabric, Action::Reboot, "fabric failed")];
        assert_eq!(
            escalate(
                &mut f,
                &old,
                DAY,
                now,
                Some("admin: gpu2 fabric failed [replace]")
            ),
            0
        );
    }

    #[test]
    fn a_replace_item_with_a_measured_value_stays_replace_when_the_value_moves() {
        let now = 1_000_000;
        let old = rebooted(now - 30 * 3600, &[Check::Nccl]);
        let ours = "mlhealth: nccl busbw 68<350 [replace]";
        let mut f = vec![Finding {
            gpu: None,
            reason: "nccl busbw 71<350 [reboot]".into(),
            ..finding(Check::Nccl, Action::Reboot, "")
        }];
        assert_eq!(escalate(&mut f, &old, DAY, now, Some(ours)), 1);
        assert_eq!(f[0].reason, "nccl busbw 71<350 [replace]");
        assert_eq!(f[0].action, Action::Replace);
        // Another check's [replace] item is not this one's.
        let mut f = vec![finding(Check::Xid, Action::Reboot, "xid79")];
        assert_eq!(escalate(&mut f, &old, DAY, now, Some(ours)), 0);
    }

    #[test]
    fn record_keeps_the_checks_that_needed_it_and_forgets_old_ones() {
        let now = 1_000_000;
        let mut h = rebooted(now - 25 * 3600, &[Check::Xid]);
        let mut warn = finding(Check::Temperature, Action::Reboot, "hot");
        warn.severity = Severity::Warn;
        h.record(
            now,
            DAY.window_secs,
            &[
                finding(Check::Xid, Action::Reboot, "xid79"),
                finding(Check::Fabric, Action::ResetGpu, "fabric failed"),
                finding(Check::Xid, Action::Reboot, "xid48"),
                warn,
            ],
            "mlhealth: gpu2 xid79 [reboot]",
        );
        assert_eq!(
            h.reboots,
            vec![Reboot {
                at: now,
                checks: vec![Check::Xid, Check::Fabric],
                reason: "mlhealth: gpu2 xid79 [reboot]".into()
            }]
        );
    }

    #[test]
    fn kept_across_runs_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("history");
        assert_eq!(load(&d, "n1"), (History::default(), None));
        let h = rebooted(5, &[Check::Xid]);
        save(&d, "n1", &h).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        let f = crate::state::path(&d, "n1");
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        assert_eq!(load(&d, "n1"), (h, None));
        std::fs::write(&f, "{").unwrap();
        let (h, warn) = load(&d, "n1");
        assert_eq!(h, History::default());
        assert!(warn
            .unwrap()
            .starts_with("ignoring the reboot history (reboots are not bounded this run): "));
        // A link in the directory's place is refused.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(save(&link, "n1", &History::default())
            .unwrap_err()
            .ends_with("is not a directory"));
    }
}
