//! The judge: a snapshot, the critical XIDs seen, the thresholds and the slot in; findings
//! out, and which checks were made on what ([`Judged`]: a drain is lifted only by a run
//! that made again the checks its reason names). Pure, so every check is tested on JSON
//! fixtures.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::snapshot::{Gpu, Snapshot};
use crate::xid::{self, Xid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The check could not be made (a call failed, a file could not be read, the run's
    /// deadline passed): reported and exported, but it never drains a node by itself and
    /// never lifts a drain either.
    Unknown,
    Warn,
    Drain,
}

impl Severity {
    /// As the JSON, the human lines (upper case) and the metric label write it.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Warn => "warn",
            Severity::Drain => "drain",
        }
    }
}

/// The repair a finding needs, in the words of NVIDIA's XID catalogue resolution buckets
/// and NVML's GPU recovery action (`RESET_GPU`, `RESTART_BM`/`NODE_REBOOT`) and of
/// HyperPod (`Action:Reboot`, `Action:Replace`). Ordered: the node needs the most of its
/// findings' actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing to repair: watch it (a warning, a leftover process, an application fault).
    Monitor,
    /// Reset the GPU (`nvidia-smi -r`), or reboot where a reset cannot be done.
    ResetGpu,
    /// Reboot the node (the catalogue's `RESTART_BM`).
    Reboot,
    /// Hardware to replace (RMA): a reboot does not help.
    Replace,
}

impl Action {
    /// As the JSON writes it, and the tag in a drain reason (`[reboot]`).
    pub fn name(self) -> &'static str {
        match self {
            Action::Monitor => "monitor",
            Action::ResetGpu => "reset-gpu",
            Action::Reboot => "reboot",
            Action::Replace => "replace",
        }
    }

    /// In a sentence: "the driver asks for {}".
    pub fn words(self) -> &'static str {
        match self {
            Action::Monitor => "nothing",
            Action::ResetGpu => "a GPU reset",
            Action::Reboot => "a reboot",
            Action::Replace => "new hardware",
        }
    }
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

/// One check. Its name (`xid`, `ecc`, `gpu-count`, ...) is the JSON value and the metric
/// label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    Nvml,
    GpuCount,
    Xid,
    GpuLost,
    GpuError,
    Ecc,
    RetiredPages,
    RemappedRows,
    Pcie,
    Nvlink,
    Temperature,
    Throttle,
    Busy,
    /// NVML's GPU recovery action: the driver asks for a repair.
    Recovery,
    /// NVSwitch SXids in the kernel log ([`crate::kevents`]).
    Sxid,
    /// PCIe AER counters of the GPUs and fabric NICs ([`crate::pci_aer`]).
    PcieAer,
    /// InfiniBand / EFA devices and ports ([`crate::ibports`]).
    IbPort,
    /// The GPU's NVLink fabric registration (fabric manager).
    #[serde(rename = "nvlink-fabric")]
    Fabric,
    /// `dcgmi diag` run as a Slurm job by `ml-healthcheck active` ([`crate::dcgm`]): the
    /// health check never makes it, so it never lifts a drain for it.
    DcgmDiag,
    /// nccl-tests' `all_reduce_perf` run as a Slurm job by `ml-healthcheck active`
    /// ([`crate::nccl`]).
    Nccl,
}

impl Check {
    /// The checks that may drain a node, made on each GPU.
    const DRAINING_PER_GPU: [Check; 8] = [
        Check::GpuLost,
        Check::GpuError,
        Check::Ecc,
        Check::RetiredPages,
        Check::RemappedRows,
        Check::Nvlink,
        Check::Busy,
        Check::Recovery,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Nvml => "nvml",
            Check::GpuCount => "gpu-count",
            Check::Xid => "xid",
            Check::GpuLost => "gpu-lost",
            Check::GpuError => "gpu-error",
            Check::Ecc => "ecc",
            Check::RetiredPages => "retired-pages",
            Check::RemappedRows => "remapped-rows",
            Check::Pcie => "pcie",
            Check::Nvlink => "nvlink",
            Check::Temperature => "temperature",
            Check::Throttle => "throttle",
            Check::Busy => "busy",
            Check::Recovery => "recovery",
            Check::Sxid => "sxid",
            Check::PcieAer => "pcie-aer",
            Check::IbPort => "ib-port",
            Check::Fabric => "nvlink-fabric",
            Check::DcgmDiag => "dcgm-diag",
            Check::Nccl => "nccl",
        }
    }

    /// The check that wrote a short drain reason (`ecc uncorrectable=2`, `xid79`,
    /// `gpus 7/8`; without its `gpuN `), from its first word as [`judge`] writes it.
    /// `None` for any other text (`+3 more`, an admin's edit).
    pub fn of_short_reason(short: &str) -> Option<Check> {
        let word = short.split(' ').next().unwrap_or("");
        let numbered = |prefix: &str| {
            word.strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        Some(match word {
            "nvml" => Check::Nvml,
            "gpus" => Check::GpuCount,
            "lost" => Check::GpuLost,
            "unusable" => Check::GpuError,
            "ecc" => Check::Ecc,
            "retired" | "retirement" => Check::RetiredPages,
            "row" => Check::RemappedRows,
            "busy" => Check::Busy,
            "recovery" => Check::Recovery,
            _ if numbered("xid") => Check::Xid,
            _ if numbered("nvlink") => Check::Nvlink,
            _ if numbered("sxid") => Check::Sxid,
            "aer" => Check::PcieAer,
            "ib" | "efa" => Check::IbPort,
            "fabric" => Check::Fabric,
            "dcgm-diag" => Check::DcgmDiag,
            "nccl" => Check::Nccl,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub check: Check,
    /// `null` in JSON for a finding on the whole node.
    pub gpu: Option<u32>,
    /// The repair this finding needs.
    pub action: Action,
    /// Short, for the node's drain reason: `gpu3 xid79 [reboot]` (the action tagged when
    /// it is more than monitoring).
    pub reason: String,
    /// One line for the admin.
    pub detail: String,
    /// What was read that made the finding: the values (`ecc_volatile_uncorrected=2`) or
    /// the kernel log line.
    pub evidence: String,
}

impl Finding {
    /// A check that could not be made (`gpu`: on that GPU): UNKNOWN, with why.
    pub fn unknown(check: Check, gpu: Option<u32>, why: String) -> Finding {
        let name = gpu.map_or(String::new(), |g| format!("gpu{g} "));
        Finding {
            severity: Severity::Unknown,
            check,
            gpu,
            action: Action::Monitor,
            reason: format!("{name}{} unknown", check.name()),
            detail: format!("{name}{}: not checked: {why}", check.name()),
            evidence: why,
        }
    }
}

/// What the evaluator needs besides the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub expect_gpus: Option<u32>,
    /// Prolog only: the job's GPUs (`SLURM_JOB_GPUS`: `/dev/nvidiaN` numbers).
    pub job_gpus: Option<Vec<u32>>,
    pub prolog: bool,
    /// Health check on a node Slurm shows with no jobs: any compute process is a leftover.
    /// With jobs on the node, busy GPUs are not judged at all (and a drain for them stays).
    pub node_without_jobs: bool,
    /// The kernel log could be read: XIDs were judged (the remembered ones alone are not
    /// all of them).
    pub kmsg_read: bool,
    /// The GPU source gave no answer (its deadline passed), and why: the GPU checks are
    /// UNKNOWN, not made (the snapshot is empty, not a node without GPUs).
    pub gpus_unknown: Option<String>,
}

/// What a run judged: checks made for the whole node, and checks made on one GPU (by its
/// `gpuN` number). A check that was skipped (busy GPUs on a node running jobs, every check
/// of a GPU that NVML cannot use, XIDs without the kernel log) is not in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judged {
    node: BTreeSet<Check>,
    gpus: BTreeSet<(Check, u32)>,
    /// Every GPU NVML listed, judged or not.
    seen: BTreeSet<u32>,
    /// Checks of the other sources ([`crate::sources`]) the run could not make (sysfs
    /// unreadable): no run that missed one is complete.
    missed: BTreeSet<Check>,
    /// Checks made on a GPU whose value NVML did not give this run (`null`: the query
    /// failed, or the GPU does not support it): they lift no item of a reason. Not
    /// counted against [`Judged::complete`], as a GPU without the feature never reads it.
    unread: BTreeSet<(Check, u32)>,
    /// The NVLinks whose state NVML gave, by GPU: a link it did not give is left out of
    /// the snapshot, and lifts no item about it.
    links: BTreeSet<(u32, u32)>,
}

impl Judged {
    /// Every check the run made, on the node or on any GPU.
    pub fn checks(&self) -> BTreeSet<Check> {
        self.node
            .iter()
            .copied()
            .chain(self.gpus.iter().map(|&(c, _)| c))
            .collect()
    }

    /// Whether the run made `check` for the whole node or on `gpu`.
    pub fn covers(&self, check: Check, gpu: Option<u32>) -> bool {
        self.node.contains(&check)
            || gpu.is_some_and(|g| {
                self.gpus.contains(&(check, g)) && !self.unread.contains(&(check, g))
            })
    }

    /// Whether NVML gave the state of `gpu`'s NVLink `link` this run.
    pub fn read_link(&self, gpu: u32, link: u32) -> bool {
        self.links.contains(&(gpu, link))
    }

    /// Whether the run made every check that can drain: what a drain reason that cannot
    /// be read item by item (`+3 more`) needs before it is lifted. The GPU count is not
    /// asked for: it is made on every run that has a count to compare with.
    pub fn complete(&self) -> bool {
        self.node.contains(&Check::Nvml)
            && self.node.contains(&Check::Xid)
            && self.missed.is_empty()
            && self.seen.iter().all(|&g| {
                Check::DRAINING_PER_GPU
                    .iter()
                    .all(|&c| self.gpus.contains(&(c, g)))
            })
    }
}

/// A run's findings and what it judged to find them.
#[derive(Debug, Clone, Default)]
pub struct Judgement {
    pub findings: Vec<Finding>,
    pub judged: Judged,
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
    judged: Judged,
    gpu: Option<&'a Gpu>,
}

impl<'a> Out<'a> {
    /// `check` is made, for the GPU at hand or the whole node.
    fn judge(&mut self, check: Check) {
        match self.gpu {
            Some(g) => self.judged.gpus.insert((check, g.minor.unwrap_or(g.index))),
            None => self.judged.node.insert(check),
        };
    }

    /// NVML gave the state of this GPU's NVLink `link`.
    fn read_link(&mut self, link: u32) {
        if let Some(g) = self.gpu {
            self.judged.links.insert((g.minor.unwrap_or(g.index), link));
        }
    }

    /// The check was made on this GPU, but a value it stands on was not read.
    fn unread(&mut self, check: Check) {
        if let Some(g) = self.gpu {
            self.judged
                .unread
                .insert((check, g.minor.unwrap_or(g.index)));
        }
    }

    fn add(
        &mut self,
        severity: Severity,
        check: Check,
        action: Action,
        short: &str,
        detail: String,
        evidence: String,
    ) {
        // The driver's own recovery action for this GPU wins over the tables (for what
        // drains: a warning stays a warning to watch).
        let action = match (severity, self.gpu.and_then(|g| g.gpu_recovery_action)) {
            (Severity::Drain, Some(v)) => xid::recovery_action(v).unwrap_or(action),
            _ => action,
        };
        let tagged;
        let short = match action {
            Action::Monitor => short,
            a => {
                tagged = format!("{short} [{}]", a.name());
                &tagged
            }
        };
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
            action,
            reason,
            detail,
            evidence,
        });
    }
}

impl Judgement {
    /// A finding of a source judged outside this module ([`crate::sources`]), on `gpu` or
    /// the whole node, named and tagged as [`judge`]'s own; the same problem twice is one.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        gpu: Option<&Gpu>,
        severity: Severity,
        check: Check,
        action: Action,
        short: &str,
        detail: String,
        evidence: String,
    ) {
        let mut out = Out {
            findings: std::mem::take(&mut self.findings),
            judged: Judged::default(),
            gpu,
        };
        out.add(severity, check, action, short, detail, evidence);
        self.findings = dedup(out.findings);
    }

    /// `check` was made by such a source, on `gpu` or the whole node.
    pub fn made(&mut self, check: Check, gpu: Option<&Gpu>) {
        let mut out = Out {
            findings: Vec::new(),
            judged: std::mem::take(&mut self.judged),
            gpu,
        };
        out.judge(check);
        self.judged = out.judged;
    }

    /// `check` was made on `gpu` by such a source, but the value it read cannot be judged
    /// (a state this release does not know): it lifts no item about that GPU, and does
    /// not keep the run from being complete.
    pub fn made_unread(&mut self, check: Check, gpu: &Gpu) {
        let mut out = Out {
            findings: Vec::new(),
            judged: std::mem::take(&mut self.judged),
            gpu: Some(gpu),
        };
        out.judge(check);
        out.unread(check);
        self.judged = out.judged;
    }

    /// `check` of such a source could not be made this run: a drain reason that cannot be
    /// read item by item stays.
    pub fn missed(&mut self, check: Check) {
        self.judged.missed.insert(check);
    }
}

/// The findings alone.
pub fn evaluate(snap: &Snapshot, xids: &[Xid], cfg: &Config, ctx: &Context) -> Vec<Finding> {
    judge(snap, xids, cfg, ctx).findings
}

pub fn judge(snap: &Snapshot, xids: &[Xid], cfg: &Config, ctx: &Context) -> Judgement {
    use Check::*;
    use Severity::*;
    let mut out = Out {
        findings: Vec::new(),
        judged: Judged::default(),
        gpu: None,
    };
    let expected = ctx.expect_gpus.or(cfg.expect_gpus);
    if let Some(why) = &ctx.gpus_unknown {
        out.findings.push(Finding::unknown(Nvml, None, why.clone()));
        judge_xids(&mut out, snap, xids, cfg, ctx);
        return Judgement {
            findings: dedup(out.findings),
            judged: out.judged,
        };
    }
    out.judge(Nvml);
    if let Some(err) = &snap.nvml_error {
        if expected.is_some_and(|n| n > 0) {
            out.add(
                Drain,
                Nvml,
                Action::Reboot,
                "nvml unavailable",
                format!("NVML cannot be used ({err}) but this node should have GPUs"),
                format!("nvml_error={err:?}"),
            );
        }
        return Judgement {
            findings: out.findings,
            judged: out.judged,
        };
    }
    let found = snap.gpus.len() as u32;
    if let Some(n) = expected {
        out.judge(GpuCount);
        if found < n {
            out.add(
                Drain,
                GpuCount,
                Action::Reboot,
                &format!("gpus {found}/{n}"),
                format!("NVML sees {found} GPUs, {n} expected"),
                format!("gpus={found} expect_gpus={n}"),
            );
        }
    }
    judge_xids(&mut out, snap, xids, cfg, ctx);
    for g in &snap.gpus {
        out.judged.seen.insert(g.minor.unwrap_or(g.index));
        out.gpu = Some(g);
        check_gpu(&mut out, g, cfg, ctx);
    }
    Judgement {
        findings: dedup(out.findings),
        judged: out.judged,
    }
}

/// The critical XIDs seen, on the GPU each names.
fn judge_xids<'a>(
    out: &mut Out<'a>,
    snap: &'a Snapshot,
    xids: &[Xid],
    cfg: &Config,
    ctx: &Context,
) {
    use Check::*;
    use Severity::*;
    if ctx.kmsg_read {
        out.judge(Xid);
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
            Xid,
            xid::action_of(xid.code, xid::describe(&xid.text)),
            &short,
            format!(
                "XID {} in the kernel log ({} s after boot): {}",
                xid.code,
                xid.usec / 1_000_000,
                xid::describe(&xid.text)
            ),
            format!("NVRM: Xid (PCI:{}): {}, {}", xid.pci, xid.code, xid.text),
        );
    }
    out.gpu = None;
}

fn check_gpu(out: &mut Out, g: &Gpu, cfg: &Config, ctx: &Context) {
    use Check::*;
    use Severity::*;
    out.judge(GpuLost);
    if g.lost {
        out.add(
            Drain,
            GpuLost,
            Action::Reboot,
            "lost",
            "NVML reports the GPU lost (fallen off the bus)".into(),
            "NVML_ERROR_GPU_IS_LOST".into(),
        );
        return;
    }
    out.judge(GpuError);
    if let Some(e) = &g.error {
        out.add(
            Drain,
            GpuError,
            Action::Reboot,
            "unusable",
            format!("NVML cannot use the GPU: {e}"),
            format!("error={e:?}"),
        );
        return;
    }
    for c in [Ecc, RetiredPages, RemappedRows, Nvlink, Recovery] {
        out.judge(c);
    }
    // A value NVML did not give proves nothing: its items stay.
    if g.ecc_volatile_uncorrected.is_none() {
        out.unread(Ecc);
    }
    if g.remapped_rows_failure.is_none() || g.remapped_rows_pending.is_none() {
        out.unread(RemappedRows);
    }
    if g.retired_pages_dbe.is_none() || g.retired_pages_pending.is_none() {
        out.unread(RetiredPages);
    }
    if let Some(v) = g.gpu_recovery_action {
        if let Some(a) = xid::recovery_action(v) {
            out.add(
                Drain,
                Recovery,
                a,
                "recovery",
                format!(
                    "NVML's GPU recovery action is {v}: the driver asks for {}",
                    a.words()
                ),
                format!("gpu_recovery_action={v}"),
            );
        }
    }
    if let Some(n) = g
        .ecc_volatile_uncorrected
        .filter(|&n| n > cfg.ecc_uncorrected_max)
    {
        out.add(
            Drain,
            Ecc,
            Action::ResetGpu,
            &format!("ecc uncorrectable={n}"),
            format!("{n} uncorrectable ECC errors since the last driver load"),
            format!("ecc_volatile_uncorrected={n}"),
        );
    }
    if let Some(n) = g
        .retired_pages_dbe
        .filter(|&n| n > cfg.retired_pages_dbe_max)
    {
        out.add(
            Drain,
            RetiredPages,
            Action::Replace,
            &format!("retired dbe={n}"),
            format!("{n} pages retired for double-bit ECC errors"),
            format!("retired_pages_dbe={n}"),
        );
    }
    let retired = g.retired_pages_dbe.unwrap_or(0) + g.retired_pages_sbe.unwrap_or(0);
    if retired >= cfg.retired_pages_limit {
        out.add(
            Drain,
            RetiredPages,
            Action::Replace,
            &format!("retired pages={retired}"),
            format!(
                "{retired} retired pages, at or above the limit of {}: replace the GPU",
                cfg.retired_pages_limit
            ),
            format!(
                "retired_pages_dbe={} retired_pages_sbe={}",
                g.retired_pages_dbe.unwrap_or(0),
                g.retired_pages_sbe.unwrap_or(0)
            ),
        );
    }
    if g.retired_pages_pending == Some(true) {
        out.add(
            Drain,
            RetiredPages,
            Action::ResetGpu,
            "retirement pending",
            "a page retirement is pending: the GPU needs a reset".into(),
            "retired_pages_pending=true".into(),
        );
    }
    if g.remapped_rows_failure == Some(true) {
        out.add(
            Drain,
            RemappedRows,
            Action::Replace,
            "row remap failed",
            "row remapping failed: replace the GPU".into(),
            "remapped_rows_failure=true".into(),
        );
    }
    if g.remapped_rows_pending == Some(true) {
        out.add(
            Drain,
            RemappedRows,
            Action::ResetGpu,
            "row remap pending",
            "a row remapping is pending: the GPU needs a reset".into(),
            "remapped_rows_pending=true".into(),
        );
    }
    if cfg.pcie_width || cfg.pcie_gen {
        out.judge(Pcie);
    }
    if cfg.pcie_width {
        if let (Some(w), Some(max)) = (g.pcie_width, g.pcie_width_max) {
            if w < max {
                out.add(
                    Warn,
                    Pcie,
                    Action::Monitor,
                    &format!("pcie x{w}/x{max}"),
                    format!("PCIe link runs at x{w}, the GPU supports x{max}"),
                    format!("pcie_width={w} pcie_width_max={max}"),
                );
            }
        }
    }
    if cfg.pcie_gen {
        if let (Some(gen), Some(max)) = (g.pcie_gen, g.pcie_gen_max) {
            if gen < max {
                out.add(
                    Warn,
                    Pcie,
                    Action::Monitor,
                    &format!("pcie gen{gen}/gen{max}"),
                    format!("PCIe link runs at gen {gen}, the GPU supports gen {max}"),
                    format!("pcie_gen={gen} pcie_gen_max={max}"),
                );
            }
        }
    }
    for l in &g.nvlinks {
        out.read_link(l.link);
        if !l.active {
            let sev = if cfg.nvlink_inactive_drains {
                Drain
            } else {
                Warn
            };
            out.add(
                sev,
                Nvlink,
                Action::ResetGpu,
                &format!("nvlink{} down", l.link),
                format!("NVLink {} is inactive", l.link),
                format!("nvlink{} active=false", l.link),
            );
        }
        for (what, n) in [("replay", l.replay_errors), ("recovery", l.recovery_errors)] {
            if let Some(n) = n.filter(|&n| n > cfg.nvlink_errors_max) {
                out.add(
                    Warn,
                    Nvlink,
                    Action::Monitor,
                    &format!("nvlink{} {what}={n}", l.link),
                    format!("NVLink {} has {n} {what} errors", l.link),
                    format!("nvlink{} {what}_errors={n}", l.link),
                );
            }
        }
    }
    if cfg.temperature {
        out.judge(Temperature);
        if let (Some(t), Some(max)) = (g.temperature_c, g.slowdown_temperature_c) {
            if t >= max {
                out.add(
                    Warn,
                    Temperature,
                    Action::Monitor,
                    &format!("temp {t}C"),
                    format!("{t} C, at or above the slowdown temperature of {max} C"),
                    format!("temperature_c={t} slowdown_temperature_c={max}"),
                );
            }
        }
    }
    if cfg.hw_throttle {
        out.judge(Throttle);
        let hw: Vec<&str> = g
            .throttle_reasons
            .iter()
            .map(String::as_str)
            .filter(|r| r.starts_with("hw_"))
            .collect();
        if !hw.is_empty() {
            out.add(
                Warn,
                Throttle,
                Action::Monitor,
                &format!("throttle {}", hw.join("+")),
                format!("clocks held down by hardware: {}", hw.join(", ")),
                format!("throttle_reasons={}", hw.join(",")),
            );
        }
    }
    check_busy(out, g, ctx);
}

/// Compute processes are a problem only where no job of the node may own them: on the
/// job's GPUs in its prolog, on any GPU of a node without jobs. Elsewhere the check is
/// not made (and not recorded as made).
fn check_busy(out: &mut Out, g: &Gpu, ctx: &Context) {
    let mine = g.minor.unwrap_or(g.index);
    let on = if ctx.prolog && ctx.job_gpus.as_ref().is_none_or(|v| v.contains(&mine)) {
        "already on the job's GPU before it starts"
    } else if ctx.node_without_jobs {
        "on a GPU of a node that runs no job"
    } else {
        return;
    };
    out.judge(Check::Busy);
    if g.compute_pids.is_empty() {
        return;
    }
    let pids: Vec<String> = g.compute_pids.iter().map(u32::to_string).collect();
    out.add(
        Severity::Drain,
        Check::Busy,
        Action::Monitor,
        "busy",
        format!("compute processes {on}: pid {}", pids.join(", ")),
        format!("compute_pids={}", pids.join(",")),
    );
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
/// reasons ([`crate::reason`]).
pub fn drain_reason(findings: &[Finding]) -> Option<String> {
    crate::reason::after(None, findings, &Judged::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON, the textfile's labels and `fail_after`'s keys name a check alike.
    #[test]
    fn a_check_has_one_name() {
        use Check::*;
        for c in [
            Nvml,
            GpuCount,
            Xid,
            GpuLost,
            GpuError,
            Ecc,
            RetiredPages,
            RemappedRows,
            Pcie,
            Nvlink,
            Temperature,
            Throttle,
            Busy,
            Recovery,
            Sxid,
            PcieAer,
            IbPort,
            Fabric,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.name(), "{c:?}");
            assert_eq!(serde_json::from_value::<Check>(c.name().into()).unwrap(), c);
        }
    }
}
