//! What a run tells: one human line per finding and a summary, a JSON document, and a
//! Prometheus textfile for node_exporter's textfile collector.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::evaluate::{Check, Finding, Judged, Mode, Severity};
use crate::fleet::{Held, Hold};
use crate::node::Action;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub node: String,
    pub mode: Mode,
    pub gpus: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvml_error: Option<String>,
    pub findings: Vec<Finding>,
    /// In JSON `action` (its name) and `reason` (the drain's).
    #[serde(flatten)]
    pub action: Action,
    /// What the run would have done but did not (report only, circuit breaker), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// The circuit breaker holds new drains now (without Slurm: unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker_open: Option<bool>,
    /// The breaker's count when the run made one (a run that changes its node): nodes
    /// carrying our drain after the run, the cluster's nodes, and the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerCount>,
    /// `mode = "report"` or the killswitch: nothing is done in Slurm.
    pub report_only: bool,
    /// The drain reason already on the node, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_reason: Option<String>,
    /// The node carries our drain after this run (without Slurm: it would).
    pub drained_by_healthcheck: bool,
    pub dry_run: bool,
    pub warnings: Vec<String>,
    pub seconds: f64,
    /// The platform's repair done after (or instead of) the drain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
    /// Each check this run made or could not make, and how it ended.
    pub checks: BTreeMap<Check, Status>,
}

/// The platform's repair step ([`crate::repair`]): the `scontrol` command, and whether it
/// was done instead of our drain (HyperPod's fail) or after it (a reboot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repair {
    pub command: String,
    pub instead_of_drain: bool,
}

/// The circuit breaker's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BreakerCount {
    pub drained: usize,
    pub nodes: usize,
    pub limit: usize,
}

/// How a check ended in a run: the textfile's `status` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// It could not be made (UNKNOWN): neither a pass nor a failure.
    Unknown,
    Warn,
    Fail,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Ok, Status::Warn, Status::Fail, Status::Unknown];

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// Each check's status: the worst of its findings (fail, warn, unknown), else ok where the
/// run made it. A check neither made nor found is not listed.
pub fn statuses(findings: &[Finding], judged: &Judged) -> BTreeMap<Check, Status> {
    let mut m: BTreeMap<Check, Status> = judged
        .checks()
        .into_iter()
        .map(|c| (c, Status::Ok))
        .collect();
    for f in findings {
        let s = match f.severity {
            Severity::Drain => Status::Fail,
            Severity::Warn => Status::Warn,
            Severity::Unknown => Status::Unknown,
        };
        let e = m.entry(f.check).or_insert(s);
        *e = (*e).max(s);
    }
    m
}

/// The run in one line: what was checked, what was found, what was done to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Summary<'a> {
    /// No driver, and no GPUs expected (a CPU node).
    NothingToCheck { node: &'a str, nvml_error: &'a str },
    Checked {
        node: &'a str,
        gpus: usize,
        drains: usize,
        warnings: usize,
        /// Checks that could not be made (UNKNOWN findings).
        unknown: usize,
        /// The platform's repair step done with (or instead of) the drain.
        repair: Option<&'a Repair>,
        action: &'a Action,
        held: Option<&'a Held>,
        /// The reason on the node before the run.
        node_reason: Option<&'a str>,
        /// Our drain stays although this run found nothing that drains: it did not make
        /// every check the reason names.
        kept: bool,
        dry_run: bool,
    },
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Summary::NothingToCheck { node, nvml_error } => write!(
                f,
                "{node}: no NVIDIA driver ({nvml_error}) and no GPUs expected: nothing to check"
            ),
            Summary::Checked {
                node,
                gpus,
                drains,
                warnings,
                unknown,
                action,
                held,
                node_reason,
                kept,
                dry_run,
                repair,
            } => {
                write!(f, "{node}: {gpus} GPUs checked, ")?;
                // A run with checks that could not run is not called healthy.
                let ok = if unknown > 0 {
                    "nothing failed"
                } else {
                    "healthy"
                };
                match (drains, warnings) {
                    (0, 0) => write!(f, "{ok}")?,
                    (0, w) => write!(f, "{ok}, {w} warnings")?,
                    (1, _) => write!(f, "1 problem that drains the node")?,
                    (d, _) => write!(f, "{d} problems that drain the node")?,
                }
                match unknown {
                    0 => {}
                    1 => write!(f, ", 1 check could not run (unknown)")?,
                    u => write!(f, ", {u} checks could not run (unknown)")?,
                }
                let would = if dry_run { "would have " } else { "" };
                if let Some(h) = held {
                    return match (&h.action, &h.hold) {
                        (Action::Drain(r), Hold::Breaker { .. }) => {
                            write!(f, "; NOT drained ({}): {r}", h.hold)
                        }
                        (Action::Drain(r) | Action::UpdateReason(r), _) => {
                            write!(f, "; would have drained ({}): {r}", h.hold)
                        }
                        (Action::Resume, _) => write!(
                            f,
                            "; would have resumed ({}; drained: {})",
                            h.hold,
                            node_reason.unwrap_or("")
                        ),
                        (Action::Nothing | Action::LeaveOthersDrain, _) => Ok(()),
                    };
                }
                match (action, node_reason) {
                    (Action::Drain(r) | Action::UpdateReason(r), _) => match repair {
                        Some(Repair {
                            command,
                            instead_of_drain: true,
                        }) => write!(f, "; {would}handed to the platform for {r}: {command}"),
                        Some(Repair { command, .. }) => {
                            write!(f, "; {would}drained: {r}; then {command}")
                        }
                        None => write!(f, "; {would}drained: {r}"),
                    },
                    (Action::Resume, r) => {
                        write!(f, "; {would}resumed (was drained: {})", r.unwrap_or(""))
                    }
                    (Action::LeaveOthersDrain, r) => write!(
                        f,
                        "; left as it is: drained by someone else ({})",
                        r.unwrap_or("no reason")
                    ),
                    (Action::Nothing, Some(r)) if kept => write!(
                        f,
                        "; still drained: {r} (not every check it names was made again)"
                    ),
                    (Action::Nothing, _) => Ok(()),
                }
            }
        }
    }
}

impl Report {
    pub fn drains(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Drain)
            .count()
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    pub fn human(&self) -> Vec<String> {
        let p = format!("ml-healthcheck: {}", self.node);
        let mut lines: Vec<String> = self
            .warnings
            .iter()
            .map(|w| format!("{p}: warning: {w}"))
            .collect();
        for f in &self.findings {
            let sev = f.severity.name().to_ascii_uppercase();
            lines.push(format!("{p}: {sev} {}", f.detail));
        }
        if let Some(line) = self.breaker_line() {
            lines.push(format!("ml-healthcheck: {line}"));
        }
        lines.push(format!("ml-healthcheck: {}", self.summary()));
        lines
    }

    /// The loud line of a drain the circuit breaker held.
    pub fn breaker_line(&self) -> Option<String> {
        match self.held.as_ref()? {
            Held {
                action: Action::Drain(r),
                hold: h @ Hold::Breaker { .. },
            } => Some(format!(
                "{}: CIRCUIT BREAKER OPEN: {}: {} is not drained for {r}; find out why so many nodes fail before resuming any",
                self.node,
                h.to_string().trim_start_matches("circuit breaker open: "),
                self.node
            )),
            _ => None,
        }
    }

    pub fn summary(&self) -> Summary<'_> {
        if let (Some(e), true) = (&self.nvml_error, self.findings.is_empty()) {
            return Summary::NothingToCheck {
                node: &self.node,
                nvml_error: e,
            };
        }
        Summary::Checked {
            node: &self.node,
            gpus: self.gpus,
            drains: self.drains(),
            warnings: self.count(Severity::Warn),
            unknown: self.count(Severity::Unknown),
            repair: self.repair.as_ref(),
            action: &self.action,
            held: self.held.as_ref(),
            node_reason: self.node_reason.as_deref(),
            kept: self.action == Action::Nothing
                && self.drained_by_healthcheck
                && self.drains() == 0,
            dry_run: self.dry_run,
        }
    }

    /// The syslog line and its priority, for a run that changed the node (slurmd keeps a
    /// helper's output only when it fails); `None` for one that changed nothing.
    pub fn syslog(&self) -> Option<(libc::c_int, String)> {
        if self.dry_run {
            return None;
        }
        if let Some(line) = self.breaker_line() {
            return Some((libc::LOG_CRIT, format!("{line} ({})", self.mode.name())));
        }
        if self.held.is_some() {
            return Some((
                libc::LOG_NOTICE,
                format!("{} ({})", self.summary(), self.mode.name()),
            ));
        }
        let priority = match (&self.action, self.dry_run) {
            (_, true) => return None,
            (Action::Drain(_) | Action::UpdateReason(_), _) => libc::LOG_WARNING,
            (Action::Resume, _) => libc::LOG_INFO,
            (Action::Nothing | Action::LeaveOthersDrain, _) => return None,
        };
        Some((
            priority,
            format!("{} ({})", self.summary(), self.mode.name()),
        ))
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The textfile collector's format.
    pub fn prometheus(&self, now_unix: f64) -> String {
        let node = escape(&self.node);
        let mut s = String::new();
        s.push_str("# HELP ml_healthcheck_up 1 when NVML could be used (or no GPUs are expected).\n# TYPE ml_healthcheck_up gauge\n");
        s.push_str(&format!(
            "ml_healthcheck_up{{node=\"{node}\"}} {}\n",
            u8::from(self.nvml_error.is_none() || self.findings.is_empty())
        ));
        s.push_str(
            "# HELP ml_healthcheck_gpus GPUs NVML found.\n# TYPE ml_healthcheck_gpus gauge\n",
        );
        s.push_str(&format!(
            "ml_healthcheck_gpus{{node=\"{node}\"}} {}\n",
            self.gpus
        ));
        s.push_str("# HELP ml_healthcheck_findings Findings of the last run, by severity.\n# TYPE ml_healthcheck_findings gauge\n");
        s.push_str(&format!(
            "ml_healthcheck_findings{{node=\"{node}\",severity=\"drain\"}} {}\n",
            self.drains()
        ));
        s.push_str(&format!(
            "ml_healthcheck_findings{{node=\"{node}\",severity=\"warn\"}} {}\n",
            self.count(Severity::Warn)
        ));
        s.push_str(&format!(
            "ml_healthcheck_findings{{node=\"{node}\",severity=\"unknown\"}} {}\n",
            self.count(Severity::Unknown)
        ));
        s.push_str("# HELP ml_healthcheck_finding One finding of the last run.\n# TYPE ml_healthcheck_finding gauge\n");
        for f in &self.findings {
            let gpu = f.gpu.map(|g| g.to_string()).unwrap_or_default();
            let sev = f.severity.name();
            s.push_str(&format!(
                "ml_healthcheck_finding{{node=\"{node}\",check=\"{}\",gpu=\"{gpu}\",severity=\"{sev}\",reason=\"{}\"}} 1\n",
                f.check.name(),
                escape(&f.reason)
            ));
        }
        s.push_str("# HELP ml_healthcheck_check_status Each check's status in the last run (one of ok, warn, fail, unknown is 1).\n# TYPE ml_healthcheck_check_status gauge\n");
        for (check, status) in &self.checks {
            for st in Status::ALL {
                s.push_str(&format!(
                    "ml_healthcheck_check_status{{node=\"{node}\",check=\"{}\",status=\"{}\"}} {}\n",
                    check.name(),
                    st.name(),
                    u8::from(*status == st)
                ));
            }
        }
        s.push_str("# HELP ml_healthcheck_drained_by_healthcheck 1 when the node carries ml-healthcheck's drain after this run.\n# TYPE ml_healthcheck_drained_by_healthcheck gauge\n");
        s.push_str(&format!(
            "ml_healthcheck_drained_by_healthcheck{{node=\"{node}\"}} {}\n",
            u8::from(self.drained_by_healthcheck)
        ));
        if let Some(b) = self.breaker {
            for (name, help, v) in [
                ("breaker_drained_nodes", "Nodes carrying ml-healthcheck's drain (or HyperPod's fail) after this run, as the circuit breaker counts them.", b.drained),
                ("breaker_limit_nodes", "The most nodes that may carry ml-healthcheck's drain before the circuit breaker holds new drains.", b.limit),
                ("cluster_nodes", "The cluster's nodes, as the circuit breaker counts them.", b.nodes),
            ] {
                s.push_str(&format!(
                    "# HELP ml_healthcheck_{name} {help}\n# TYPE ml_healthcheck_{name} gauge\nml_healthcheck_{name}{{node=\"{node}\"}} {v}\n"
                ));
            }
        }
        if let Some(open) = self.breaker_open {
            s.push_str("# HELP ml_healthcheck_breaker_open 1 when the circuit breaker holds new drains: too many nodes carry ml-healthcheck's drain.\n# TYPE ml_healthcheck_breaker_open gauge\n");
            s.push_str(&format!(
                "ml_healthcheck_breaker_open{{node=\"{node}\"}} {}\n",
                u8::from(open)
            ));
        }
        s.push_str("# HELP ml_healthcheck_report_only 1 when the run did nothing in Slurm: mode = \"report\" or the killswitch file.\n# TYPE ml_healthcheck_report_only gauge\n");
        s.push_str(&format!(
            "ml_healthcheck_report_only{{node=\"{node}\"}} {}\n",
            u8::from(self.report_only)
        ));
        s.push_str("# HELP ml_healthcheck_held 1 when the run held an action (report only, circuit breaker).\n# TYPE ml_healthcheck_held gauge\n");
        s.push_str(&format!(
            "ml_healthcheck_held{{node=\"{node}\"}} {}\n",
            u8::from(self.held.is_some())
        ));
        s.push_str("# HELP ml_healthcheck_duration_seconds How long the last run took.\n# TYPE ml_healthcheck_duration_seconds gauge\n");
        s.push_str(&format!(
            "ml_healthcheck_duration_seconds{{node=\"{node}\"}} {:.3}\n",
            self.seconds
        ));
        s.push_str("# HELP ml_healthcheck_last_run_timestamp_seconds When the last run ended.\n# TYPE ml_healthcheck_last_run_timestamp_seconds gauge\n");
        s.push_str(&format!(
            "ml_healthcheck_last_run_timestamp_seconds{{node=\"{node}\"}} {now_unix:.0}\n"
        ));
        s
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `ml_healthcheck_<node>.prom` in `dir`, renamed into place so node_exporter never
/// reads half of one.
pub fn write_textfile(dir: &Path, node: &str, text: &str) -> Result<(), String> {
    let name = format!("ml_healthcheck_{}.prom", node.replace(['/', '.'], "_"));
    trusted_config::write_atomically(&dir.join(name), text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::Check;

    fn report(action: Action, node_reason: Option<&str>, findings: usize) -> Report {
        let ecc = Finding {
            severity: Severity::Drain,
            check: Check::Ecc,
            gpu: Some(1),
            action: crate::evaluate::Action::ResetGpu,
            reason: "gpu1 ecc uncorrectable=2 [reset-gpu]".into(),
            detail: "gpu1: 2 uncorrectable ECC errors since the last driver load".into(),
            evidence: "ecc_volatile_uncorrected=2".into(),
        };
        Report {
            node: "n2".into(),
            mode: Mode::HealthCheck,
            gpus: 8,
            driver_version: None,
            nvml_error: None,
            findings: vec![ecc; findings],
            drained_by_healthcheck: action.drain_reason().is_some()
                || node_reason.is_some_and(|r| r.starts_with("mlhealth:")),
            action,
            held: None,
            breaker_open: None,
            breaker: None,
            report_only: false,
            node_reason: node_reason.map(Into::into),
            dry_run: false,
            warnings: vec!["/dev/kmsg: Permission denied: XIDs not checked".into()],
            seconds: 0.0,
            repair: None,
            checks: BTreeMap::new(),
        }
    }

    /// The summary is the run's last line and, for a run that changed the node, its
    /// syslog line (with the slot); a warning never takes its place.
    #[test]
    fn the_summary_says_what_was_done_and_goes_to_syslog_when_the_node_changed() {
        let drain = report(
            Action::Drain("mlhealth: gpu1 ecc uncorrectable=2".into()),
            None,
            1,
        );
        assert_eq!(
            drain.human().last().map(String::as_str),
            Some("ml-healthcheck: n2: 8 GPUs checked, 1 problem that drains the node; drained: mlhealth: gpu1 ecc uncorrectable=2")
        );
        assert_eq!(
            drain.syslog(),
            Some((
                libc::LOG_WARNING,
                "n2: 8 GPUs checked, 1 problem that drains the node; drained: mlhealth: gpu1 ecc uncorrectable=2 (health-check)".into()
            ))
        );
        let resume = report(Action::Resume, Some("mlhealth: gpu1 busy"), 0);
        assert_eq!(
            resume.syslog(),
            Some((
                libc::LOG_INFO,
                "n2: 8 GPUs checked, healthy; resumed (was drained: mlhealth: gpu1 busy) (health-check)".into()
            ))
        );
        // Our drain kept by a run that could not judge busy GPUs: said, not logged.
        let kept = report(Action::Nothing, Some("mlhealth: gpu1 busy"), 0);
        assert_eq!(
            kept.summary().to_string(),
            "n2: 8 GPUs checked, healthy; still drained: mlhealth: gpu1 busy (not every check it names was made again)"
        );
        assert_eq!(kept.syslog(), None);
        let others = report(Action::LeaveOthersDrain, Some("admin: bad fan"), 1);
        assert_eq!(others.syslog(), None);
        let mut dry = report(Action::Resume, Some("mlhealth: gpu1 busy"), 0);
        dry.dry_run = true;
        assert_eq!(dry.syslog(), None);
        assert!(dry
            .summary()
            .to_string()
            .ends_with("; would have resumed (was drained: mlhealth: gpu1 busy)"));
    }

    #[test]
    fn json_names_the_action_and_its_reason() {
        let j = |r: &Report| serde_json::from_str::<serde_json::Value>(&r.json()).unwrap();
        let drain = j(&report(
            Action::UpdateReason("mlhealth: gpu1 ecc uncorrectable=2".into()),
            None,
            1,
        ));
        assert_eq!(drain["action"], "update-reason");
        assert_eq!(drain["reason"], "mlhealth: gpu1 ecc uncorrectable=2");
        assert_eq!(drain["findings"][0]["check"], "ecc");
        let resume = j(&report(Action::Resume, Some("mlhealth: gpu1 busy"), 0));
        assert_eq!(resume["action"], "resume");
        assert_eq!(resume.get("reason"), None);
        assert_eq!(resume["node_reason"], "mlhealth: gpu1 busy");
    }

    /// A drain held by the breaker: one loud line (stdout and syslog at LOG_CRIT), the
    /// summary says it was not done, the metric says the breaker is open.
    #[test]
    fn a_held_drain_is_loud_and_exported() {
        let reason = "mlhealth: gpu1 ecc uncorrectable=2";
        let mut r = report(Action::Nothing, None, 1);
        r.drained_by_healthcheck = false;
        r.held = Some(Held {
            action: Action::Drain(reason.into()),
            hold: Hold::Breaker {
                ours: 2,
                nodes: 3,
                limit: 2,
            },
        });
        r.breaker_open = Some(true);
        let loud = "n2: CIRCUIT BREAKER OPEN: 2 of 3 nodes already carry ml-healthcheck's drain, at most 2 may: n2 is not drained for mlhealth: gpu1 ecc uncorrectable=2; find out why so many nodes fail before resuming any";
        let lines = r.human();
        assert_eq!(lines[lines.len() - 2], format!("ml-healthcheck: {loud}"));
        assert_eq!(
            lines[lines.len() - 1],
            "ml-healthcheck: n2: 8 GPUs checked, 1 problem that drains the node; NOT drained (circuit breaker open: 2 of 3 nodes already carry ml-healthcheck's drain, at most 2 may): mlhealth: gpu1 ecc uncorrectable=2"
        );
        assert_eq!(
            r.syslog(),
            Some((libc::LOG_CRIT, format!("{loud} (health-check)")))
        );
        let prom = r.prometheus(0.0);
        assert!(
            prom.contains("ml_healthcheck_breaker_open{node=\"n2\"} 1\n"),
            "{prom}"
        );
        assert!(
            prom.contains("ml_healthcheck_held{node=\"n2\"} 1\n"),
            "{prom}"
        );
        assert!(
            prom.contains("ml_healthcheck_drained_by_healthcheck{node=\"n2\"} 0\n"),
            "{prom}"
        );
        let j: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(j["action"], "none");
        assert_eq!(j["held"]["action"], "drain");
        assert_eq!(j["held"]["reason"], reason);
        assert_eq!(j["held"]["why"], "breaker");
        assert_eq!(j["breaker_open"], true);

        // Report only: what it would do, logged at LOG_NOTICE; no loud line.
        r.held = Some(Held {
            action: Action::Resume,
            hold: Hold::ReportMode,
        });
        r.breaker_open = Some(false);
        r.report_only = true;
        r.node_reason = Some(reason.into());
        let want = "n2: 8 GPUs checked, 1 problem that drains the node; would have resumed (report only: mode = \"report\"; drained: mlhealth: gpu1 ecc uncorrectable=2)";
        assert_eq!(r.summary().to_string(), want);
        assert_eq!(r.breaker_line(), None);
        assert_eq!(
            r.syslog(),
            Some((libc::LOG_NOTICE, format!("{want} (health-check)")))
        );
        let prom = r.prometheus(0.0);
        assert!(
            prom.contains("ml_healthcheck_breaker_open{node=\"n2\"} 0\n"),
            "{prom}"
        );
        assert!(
            prom.contains("ml_healthcheck_report_only{node=\"n2\"} 1\n"),
            "{prom}"
        );
    }
}
