//! What a run tells: one human line per finding and a summary, a JSON document, and a
//! Prometheus textfile for node_exporter's textfile collector.

use std::path::Path;

use serde::Serialize;

use crate::evaluate::{Finding, Mode, Severity};
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
    /// `none`, `drain`, `update-reason`, `resume`, `leave-others-drain`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The drain reason already on the node, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_reason: Option<String>,
    pub dry_run: bool,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

pub fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Nothing => "none",
        Action::Drain(_) => "drain",
        Action::UpdateReason(_) => "update-reason",
        Action::Resume => "resume",
        Action::LeaveOthersDrain => "leave-others-drain",
    }
}

impl Report {
    pub fn drains(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Drain)
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
            let sev = match f.severity {
                Severity::Drain => "DRAIN",
                Severity::Warn => "WARN",
            };
            lines.push(format!("{p}: {sev} {}", f.detail));
        }
        let would = if self.dry_run { "would have " } else { "" };
        if let (Some(e), true) = (&self.nvml_error, self.findings.is_empty()) {
            lines.push(format!(
                "{p}: no NVIDIA driver ({e}) and no GPUs expected: nothing to check"
            ));
            return lines;
        }
        let checked = format!("{} GPUs checked", self.gpus);
        let warns = self.findings.len() - self.drains();
        let summary = match (self.action, self.drains(), warns) {
            (_, 0, 0) => "healthy".to_string(),
            (_, 0, w) => format!("healthy, {w} warnings"),
            (_, 1, _) => "1 problem that drains the node".to_string(),
            (_, d, _) => format!("{d} problems that drain the node"),
        };
        let what = match self.action {
            "drain" | "update-reason" => {
                format!("; {would}drained: {}", self.reason.as_deref().unwrap_or(""))
            }
            "resume" => format!(
                "; {would}resumed (was drained: {})",
                self.node_reason.as_deref().unwrap_or("")
            ),
            "leave-others-drain" => format!(
                "; left as it is: drained by someone else ({})",
                self.node_reason.as_deref().unwrap_or("no reason")
            ),
            _ => String::new(),
        };
        lines.push(format!("{p}: {checked}, {summary}{what}"));
        lines
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
            self.findings.len() - self.drains()
        ));
        s.push_str("# HELP ml_healthcheck_finding One finding of the last run.\n# TYPE ml_healthcheck_finding gauge\n");
        for f in &self.findings {
            let gpu = f.gpu.map(|g| g.to_string()).unwrap_or_default();
            let sev = match f.severity {
                Severity::Drain => "drain",
                Severity::Warn => "warn",
            };
            s.push_str(&format!(
                "ml_healthcheck_finding{{node=\"{node}\",check=\"{}\",gpu=\"{gpu}\",severity=\"{sev}\",reason=\"{}\"}} 1\n",
                f.check,
                escape(&f.reason)
            ));
        }
        s.push_str("# HELP ml_healthcheck_drained_by_healthcheck 1 when the node carries ml-healthcheck's drain after this run.\n# TYPE ml_healthcheck_drained_by_healthcheck gauge\n");
        let drained = matches!(self.action, "drain" | "update-reason")
            || (self.action == "none" && self.drains() > 0);
        s.push_str(&format!(
            "ml_healthcheck_drained_by_healthcheck{{node=\"{node}\"}} {}\n",
            u8::from(drained)
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
