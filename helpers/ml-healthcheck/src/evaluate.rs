//! The judge: a snapshot, the critical XIDs seen, the thresholds and the slot in; findings
//! out. Pure, so every check is tested on JSON fixtures.

use serde::Serialize;

use crate::config::Config;
use crate::snapshot::{Gpu, Snapshot};
use crate::xid::{self, Xid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warn,
    Drain,
}

/// Which slot the run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    HealthCheck,
    Prolog,
    Epilog,
}

impl Mode {
    /// The slot's name, as `--mode` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::HealthCheck => "health-check",
            Mode::Prolog => "prolog",
            Mode::Epilog => "epilog",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// The check's name (`xid`, `ecc`, `gpu-count`, ...), also the metric label.
    pub check: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    /// Short, for the node's drain reason: `gpu3 xid79`.
    pub reason: String,
    /// One line for the admin.
    pub detail: String,
}

/// What the evaluator needs besides the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub expect_gpus: Option<u32>,
    /// Prolog only: the job's GPUs (`SLURM_JOB_GPUS`: `/dev/nvidiaN` numbers).
    pub job_gpus: Option<Vec<u32>>,
    pub prolog: bool,
    /// Health check on a node Slurm shows with no jobs: any compute process is a leftover
    /// (without this, a prolog's "busy" drain would be lifted by the next health check).
    pub node_without_jobs: bool,
}

fn name(g: &Gpu) -> String {
    format!("gpu{}", g.minor.unwrap_or(g.index))
}

fn ident(g: &Gpu) -> String {
    let mut parts = Vec::new();
    if let Some(u) = &g.uuid {
        parts.push(u.as_str());
    }
    if let Some(p) = &g.pci_bus_id {
        parts.push(p.as_str());
    }
    if parts.is_empty() {
        name(g)
    } else {
        format!("{} ({})", name(g), parts.join(", "))
    }
}

struct Out<'a> {
    findings: Vec<Finding>,
    gpu: Option<&'a Gpu>,
}

impl<'a> Out<'a> {
    fn add(&mut self, severity: Severity, check: &'static str, short: &str, detail: String) {
        let (gpu, reason, detail) = match self.gpu {
            Some(g) => (
                Some(g.minor.unwrap_or(g.index)),
                format!("{} {short}", name(g)),
                format!("{}: {detail}", ident(g)),
            ),
            None => (None, short.to_string(), detail),
        };
        self.findings.push(Finding {
            severity,
            check,
            gpu,
            reason,
            detail,
        });
    }
}

pub fn evaluate(snap: &Snapshot, xids: &[Xid], cfg: &Config, ctx: &Context) -> Vec<Finding> {
    use Severity::*;
    let mut out = Out {
        findings: Vec::new(),
        gpu: None,
    };
    let expected = ctx.expect_gpus.or(cfg.expect_gpus);
    if let Some(err) = &snap.nvml_error {
        if expected.is_some_and(|n| n > 0) {
            out.add(
                Drain,
                "nvml",
                "nvml unavailable",
                format!("NVML cannot be used ({err}) but this node should have GPUs"),
            );
        }
        return out.findings;
    }
    let found = snap.gpus.len() as u32;
    if let Some(n) = expected {
        if found < n {
            out.add(
                Drain,
                "gpu-count",
                &format!("gpus {found}/{n}"),
                format!("NVML sees {found} GPUs, {n} expected"),
            );
        }
    }
    for xid in xids {
        if !cfg.critical_xids.contains(&xid.code) {
            continue;
        }
        out.gpu = snap.gpu_at(&xid.pci);
        let short = match out.gpu {
            Some(_) => format!("xid{}", xid.code),
            None => format!("xid{} pci {}", xid.code, xid.pci),
        };
        out.add(
            Drain,
            "xid",
            &short,
            format!(
                "XID {} in the kernel log ({} s after boot): {}",
                xid.code,
                xid.usec / 1_000_000,
                xid::describe(&xid.text)
            ),
        );
    }
    for g in &snap.gpus {
        out.gpu = Some(g);
        check_gpu(&mut out, g, cfg, ctx);
    }
    dedup(out.findings)
}

fn check_gpu(out: &mut Out, g: &Gpu, cfg: &Config, ctx: &Context) {
    use Severity::*;
    if g.lost {
        out.add(
            Drain,
            "gpu-lost",
            "lost",
            "NVML reports the GPU lost (fallen off the bus)".into(),
        );
        return;
    }
    if let Some(e) = &g.error {
        out.add(
            Drain,
            "gpu-error",
            "unusable",
            format!("NVML cannot use the GPU: {e}"),
        );
        return;
    }
    if let Some(n) = g
        .ecc_volatile_uncorrected
        .filter(|&n| n > cfg.ecc_uncorrected_max)
    {
        out.add(
            Drain,
            "ecc",
            &format!("ecc uncorrectable={n}"),
            format!("{n} uncorrectable ECC errors since the last driver load"),
        );
    }
    if let Some(n) = g
        .retired_pages_dbe
        .filter(|&n| n > cfg.retired_pages_dbe_max)
    {
        out.add(
            Drain,
            "retired-pages",
            &format!("retired dbe={n}"),
            format!("{n} pages retired for double-bit ECC errors"),
        );
    }
    let retired = g.retired_pages_dbe.unwrap_or(0) + g.retired_pages_sbe.unwrap_or(0);
    if retired >= cfg.retired_pages_limit {
        out.add(
            Drain,
            "retired-pages",
            &format!("retired pages={retired}"),
            format!(
                "{retired} retired pages, at or above the limit of {}: replace the GPU",
                cfg.retired_pages_limit
            ),
        );
    }
    if g.retired_pages_pending == Some(true) {
        out.add(
            Drain,
            "retired-pages",
            "retirement pending",
            "a page retirement is pending: the GPU needs a reset".into(),
        );
    }
    if g.remapped_rows_failure == Some(true) {
        out.add(
            Drain,
            "remapped-rows",
            "row remap failed",
            "row remapping failed: replace the GPU".into(),
        );
    }
    if g.remapped_rows_pending == Some(true) {
        out.add(
            Drain,
            "remapped-rows",
            "row remap pending",
            "a row remapping is pending: the GPU needs a reset".into(),
        );
    }
    if cfg.pcie_width {
        if let (Some(w), Some(max)) = (g.pcie_width, g.pcie_width_max) {
            if w < max {
                out.add(
                    Warn,
                    "pcie",
                    &format!("pcie x{w}/x{max}"),
                    format!("PCIe link runs at x{w}, the GPU supports x{max}"),
                );
            }
        }
    }
    if cfg.pcie_gen {
        if let (Some(gen), Some(max)) = (g.pcie_gen, g.pcie_gen_max) {
            if gen < max {
                out.add(
                    Warn,
                    "pcie",
                    &format!("pcie gen{gen}/gen{max}"),
                    format!("PCIe link runs at gen {gen}, the GPU supports gen {max}"),
                );
            }
        }
    }
    for l in &g.nvlinks {
        if !l.active {
            let sev = if cfg.nvlink_inactive_drains {
                Drain
            } else {
                Warn
            };
            out.add(
                sev,
                "nvlink",
                &format!("nvlink{} down", l.link),
                format!("NVLink {} is inactive", l.link),
            );
        }
        for (what, n) in [("replay", l.replay_errors), ("recovery", l.recovery_errors)] {
            if let Some(n) = n.filter(|&n| n > cfg.nvlink_errors_max) {
                out.add(
                    Warn,
                    "nvlink",
                    &format!("nvlink{} {what}={n}", l.link),
                    format!("NVLink {} has {n} {what} errors", l.link),
                );
            }
        }
    }
    if cfg.temperature {
        if let (Some(t), Some(max)) = (g.temperature_c, g.slowdown_temperature_c) {
            if t >= max {
                out.add(
                    Warn,
                    "temperature",
                    &format!("temp {t}C"),
                    format!("{t} C, at or above the slowdown temperature of {max} C"),
                );
            }
        }
    }
    if cfg.hw_throttle {
        let hw: Vec<&str> = g
            .throttle_reasons
            .iter()
            .map(String::as_str)
            .filter(|r| r.starts_with("hw_"))
            .collect();
        if !hw.is_empty() {
            out.add(
                Warn,
                "throttle",
                &format!("throttle {}", hw.join("+")),
                format!("clocks held down by hardware: {}", hw.join(", ")),
            );
        }
    }
    if !g.compute_pids.is_empty() {
        let mine = g.minor.unwrap_or(g.index);
        let pids: Vec<String> = g.compute_pids.iter().map(u32::to_string).collect();
        let pids = pids.join(", ");
        if ctx.prolog && ctx.job_gpus.as_ref().is_none_or(|v| v.contains(&mine)) {
            out.add(
                Drain,
                "busy",
                "busy",
                format!("compute processes already on the job's GPU before it starts: pid {pids}"),
            );
        } else if ctx.node_without_jobs {
            out.add(
                Drain,
                "busy",
                "busy",
                format!("compute processes on a GPU of a node that runs no job: pid {pids}"),
            );
        }
    }
}

/// One finding per (check, GPU, reason): the same XID logged twice is one problem.
fn dedup(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        if !out
            .iter()
            .any(|o| o.check == f.check && o.gpu == f.gpu && o.reason == f.reason)
        {
            out.push(f);
        }
    }
    out
}

/// The drain reason for these findings: the prefix, then the drain findings' short
/// reasons, kept short enough to read in `sinfo -R`.
pub fn drain_reason(findings: &[Finding]) -> Option<String> {
    const MAX: usize = 100;
    let drains: Vec<&str> = findings
        .iter()
        .filter(|f| f.severity == Severity::Drain)
        .map(|f| f.reason.as_str())
        .collect();
    if drains.is_empty() {
        return None;
    }
    let mut reason = String::from(crate::node::REASON_PREFIX);
    for (i, r) in drains.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let more = format!(", +{} more", drains.len() - i);
        if reason.len() + sep.len() + r.len() + more.len() > MAX && i > 0 {
            reason.push_str(&more);
            break;
        }
        reason.push_str(sep);
        reason.push_str(r);
    }
    Some(reason)
}
