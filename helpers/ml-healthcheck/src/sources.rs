//! The node's sources besides NVML and XIDs: NVSwitch SXids and "fallen off the bus"
//! lines ([`crate::kevents`]), PCIe AER counters ([`crate::pci_aer`]), InfiniBand and EFA
//! ports ([`crate::ibports`]), and the GPUs' NVLink fabric registration (in the snapshot).
//! [`Host::scan`] reads sysfs; [`judge`] is pure and adds its findings to the run's
//! [`Judgement`] with the same naming, tagging and reasons as [`crate::evaluate`].
//!
//! Actions, each with why:
//! - fatal SXid: reboot. NVIDIA's fabric manager guide: a fatal NVSwitch error needs the
//!   switches and the GPUs of the baseboard reset, which a reboot does.
//! - non-fatal SXid: monitor (a warning).
//! - GPU fallen off the bus: XID 79's action in the catalogue (`RESTART_BM`: reboot).
//! - AER fatal on a GPU or NIC: reboot. The link was reset under the driver; a reboot
//!   re-trains it and reloads the driver; a fault that comes back is the hardware's.
//! - AER non-fatal or correctable growth: monitor (warnings).
//! - IB/EFA device missing: reboot (a device that did not enumerate, or whose driver did
//!   not bind, is most often back after one; if not, the card is replaced).
//! - IB port down or slow: drain, monitor. A reboot does not mend a cable, a transceiver
//!   or a switch port: the node waits, drained, for someone to look.
//! - IB counters growing: monitor (warnings).
//! - fabric registration failed: reboot (restarts the fabric manager's training of the
//!   node's NVLinks); not started or in progress: drain, monitor (the fabric manager is
//!   still coming up: the next health check resumes the node once it completes).

use std::path::Path;

use crate::config::Config;
use crate::counters::Counters;
use crate::evaluate::{Action, Check, Finding, Judgement, Severity};
use crate::ibports::{self, Kind as IbKind};
use crate::kevents::{Event, What};
use crate::pci_aer::{self, Kind as PciKind};
use crate::snapshot::{pci_key, Snapshot};
use crate::xid::{self, Xid};

/// What sysfs says; `Err`: that source could not be read (its check is UNKNOWN).
#[derive(Debug, Clone)]
pub struct Host {
    pub aer: Result<Vec<pci_aer::Device>, String>,
    pub ib: Result<Vec<ibports::Device>, String>,
}

impl Host {
    pub fn scan(sysfs_root: &Path) -> Host {
        Host {
            aer: pci_aer::scan(sysfs_root),
            ib: ibports::scan(sysfs_root),
        }
    }

    /// The error counters read now, for the next run's deltas. A value not read now (its
    /// source unreadable, a counter file that did not answer) keeps its value in `old`:
    /// dropped, the next run would count all of it since boot as new.
    pub fn counters(&self, now_unix: u64, old: &Counters) -> Counters {
        let mut c = Counters {
            at: Some(now_unix),
            values: old.values.clone(),
        };
        for d in self.aer.iter().flatten() {
            c.values.insert(aer_key(d, "correctable"), d.correctable);
            c.values.insert(aer_key(d, "nonfatal"), d.nonfatal);
        }
        for p in self.ib.iter().flatten().flat_map(|d| &d.ports) {
            for (what, v) in ib_counters(p) {
                if let Some(v) = v {
                    c.values.insert(ib_key(p, what), v);
                }
            }
        }
        c
    }
}

fn aer_key(d: &pci_aer::Device, what: &str) -> String {
    format!("aer {} {what}", d.address)
}

fn ib_key(p: &ibports::Port, what: &str) -> String {
    format!("ib {} {what}", p.name())
}

fn ib_counters(p: &ibports::Port) -> [(&'static str, Option<u64>); 3] {
    [
        ("link_downed", p.link_downed),
        ("symbol_error", p.symbol_error),
        ("port_rcv_errors", p.port_rcv_errors),
    ]
}

/// Everything [`judge`] reads besides the snapshot and the config.
pub struct Inputs<'a> {
    /// The kernel log could be read this run.
    pub kmsg_read: bool,
    /// The events remembered since boot and this run's window of the log.
    pub events: &'a [Event],
    /// The critical XIDs judged this run (a GPU with XID 79 is not named twice).
    pub xids: &'a [Xid],
    pub host: &'a Host,
    /// The counters of the last health check.
    pub baseline: &'a Counters,
    pub now_unix: u64,
}

pub fn judge(j: &mut Judgement, snap: &Snapshot, inp: &Inputs, cfg: &Config) {
    if inp.kmsg_read {
        j.made(Check::Sxid, None);
    }
    for e in inp.events {
        judge_event(j, snap, e, inp.xids);
    }
    // A source that cannot be read is UNKNOWN: it neither drains nor lifts a drain.
    match &inp.host.aer {
        Ok(devices) => {
            j.made(Check::PcieAer, None);
            for d in devices {
                judge_aer(j, snap, d, inp, cfg);
            }
        }
        Err(e) => {
            j.missed(Check::PcieAer);
            j.findings
                .push(Finding::unknown(Check::PcieAer, None, e.clone()));
        }
    }
    match &inp.host.ib {
        Ok(devices) => {
            j.made(Check::IbPort, None);
            judge_ib(j, devices, inp.baseline, cfg);
        }
        Err(e) => {
            j.missed(Check::IbPort);
            j.findings
                .push(Finding::unknown(Check::IbPort, None, e.clone()));
        }
    }
    if snap.nvml_error.is_none() {
        for g in snap.gpus.iter().filter(|g| !g.lost && g.error.is_none()) {
            judge_fabric(j, g);
        }
    }
}

fn after_boot(e: &Event) -> u64 {
    e.usec / 1_000_000
}

fn judge_event(j: &mut Judgement, snap: &Snapshot, e: &Event, xids: &[Xid]) {
    match e.what {
        What::Sxid {
            switch,
            code,
            fatal: Some(fatal),
        } => {
            let (severity, action, word) = if fatal {
                (Severity::Drain, Action::Reboot, "fatal")
            } else {
                (Severity::Warn, Action::Monitor, "non-fatal")
            };
            j.add(
                None,
                severity,
                Check::Sxid,
                action,
                &format!("sxid{code} nvswitch{switch}"),
                format!(
                    "{word} SXid {code} of NVSwitch {switch} ({}) in the kernel log ({} s after boot)",
                    e.pci,
                    after_boot(e)
                ),
                e.message.clone(),
            );
        }
        // A follow-up line (`Severity 5 Engine instance ...`): its first line was judged.
        What::Sxid { fatal: None, .. } => {}
        What::OffBus => {
            // The XID 79 line of the same GPU already says it: one problem, one item.
            let key = pci_key(&e.pci);
            if xids.iter().any(|x| x.code == 79 && pci_key(&x.pci) == key) {
                return;
            }
            let gpu = snap.gpu_at(&e.pci);
            let short = match gpu {
                Some(_) => "lost".to_string(),
                None => format!("lost pci {}", e.pci),
            };
            j.add(
                gpu,
                Severity::Drain,
                Check::GpuLost,
                xid::action(79),
                &short,
                format!(
                    "the kernel log says the GPU at {} has fallen off the bus ({} s after boot)",
                    e.pci,
                    after_boot(e)
                ),
                e.message.clone(),
            );
        }
    }
}

fn judge_aer(j: &mut Judgement, snap: &Snapshot, d: &pci_aer::Device, inp: &Inputs, cfg: &Config) {
    let gpu = match d.kind {
        PciKind::Gpu => snap.gpu_at(&d.address),
        PciKind::Nic => None,
    };
    // A GPU is named `gpuN` by the finding; anything else by its address.
    let (what, at) = match (d.kind, gpu) {
        (PciKind::Gpu, Some(_)) => ("GPU", String::new()),
        (PciKind::Gpu, None) => ("GPU", format!(" {}", d.address)),
        (PciKind::Nic, _) => ("NIC", format!(" {}", d.address)),
    };
    if d.fatal > 0 {
        j.add(
            gpu,
            Severity::Drain,
            Check::PcieAer,
            Action::Reboot,
            &format!("aer{at} fatal={}", d.fatal),
            format!(
                "{} fatal uncorrectable PCIe errors (AER) on the {what} at {} since boot",
                d.fatal, d.address
            ),
            format!("{}/aer_dev_fatal: TOTAL_ERR_FATAL {}", d.address, d.fatal),
        );
    }
    let nonfatal = inp.baseline.delta(&aer_key(d, "nonfatal"), d.nonfatal);
    if nonfatal > 0 {
        j.add(
            gpu,
            Severity::Warn,
            Check::PcieAer,
            Action::Monitor,
            &format!("aer{at} nonfatal+{nonfatal}"),
            format!(
                "{nonfatal} new non-fatal uncorrectable PCIe errors (AER) on the {what} at {}",
                d.address
            ),
            format!(
                "{}/aer_dev_nonfatal: TOTAL_ERR_NONFATAL {}",
                d.address, d.nonfatal
            ),
        );
    }
    let correctable = inp
        .baseline
        .delta(&aer_key(d, "correctable"), d.correctable);
    let hours = inp
        .baseline
        .age(inp.now_unix)
        .map_or(1, |s| s.div_ceil(3600).max(1));
    let allowed = cfg.aer_correctable_per_hour.saturating_mul(hours);
    if correctable > allowed {
        j.add(
            gpu,
            Severity::Warn,
            Check::PcieAer,
            Action::Monitor,
            &format!("aer{at} correctable+{correctable}"),
            format!(
                "{correctable} new correctable PCIe errors (AER) on the {what} at {} in {hours} h, more than {} per hour",
                d.address, cfg.aer_correctable_per_hour
            ),
            format!(
                "{}/aer_dev_correctable: TOTAL_ERR_COR {}",
                d.address, d.correctable
            ),
        );
    }
}

fn judge_ib(j: &mut Judgement, devices: &[ibports::Device], baseline: &Counters, cfg: &Config) {
    for (kind, expected, label) in [
        (IbKind::Ib, cfg.ib_devices, "InfiniBand"),
        (IbKind::Efa, cfg.efa_devices, "EFA"),
    ] {
        let Some(n) = expected else { continue };
        let found: Vec<&str> = devices
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.name.as_str())
            .collect();
        if (found.len() as u32) < n {
            j.add(
                None,
                Severity::Drain,
                Check::IbPort,
                Action::Reboot,
                &format!("{} devices {}/{n}", kind.name(), found.len()),
                format!("{} {label} devices, {n} expected", found.len()),
                format!("class/infiniband: {}", found.join(" ")),
            );
        }
    }
    for d in devices {
        for p in &d.ports {
            judge_port(j, d.kind, p, baseline, cfg);
        }
    }
}

fn judge_port(
    j: &mut Judgement,
    kind: IbKind,
    p: &ibports::Port,
    baseline: &Counters,
    cfg: &Config,
) {
    let name = format!("{} {}", kind.name(), p.name());
    let phys_up = p
        .phys_state
        .as_deref()
        .is_none_or(|s| ibports::state_number(s) == Some(ibports::LINK_UP));
    let evidence = format!(
        "state {:?}, phys_state {:?}, rate {:?}",
        p.state,
        p.phys_state.as_deref().unwrap_or(""),
        p.rate.as_deref().unwrap_or("")
    );
    if ibports::state_number(&p.state) != Some(ibports::ACTIVE) || !phys_up {
        let word = match ibports::state_number(&p.state) {
            Some(ibports::ACTIVE) => p.phys_state.as_deref().map_or("", ibports::state_word),
            _ => ibports::state_word(&p.state),
        };
        // An unreadable state file is not up either; the item still needs a word.
        let word = if word.is_empty() { "unreadable" } else { word };
        j.add(
            None,
            Severity::Drain,
            Check::IbPort,
            Action::Monitor,
            &format!("{name} {}", word.to_ascii_lowercase()),
            format!(
                "port {} is not up: {}, {}",
                p.name(),
                p.state,
                p.phys_state.as_deref().unwrap_or("no physical state")
            ),
            evidence,
        );
        return;
    }
    // EFA reports a fixed nominal rate: only InfiniBand's is measured.
    if let (IbKind::Ib, Some(min), Some(rate)) = (
        kind,
        cfg.ib_rate_gbps,
        p.rate.as_deref().and_then(ibports::rate_gbps),
    ) {
        if rate < f64::from(min) {
            j.add(
                None,
                Severity::Drain,
                Check::IbPort,
                Action::Monitor,
                &format!("{name} rate {rate}/{min}"),
                format!(
                    "port {} runs at {}, {min} Gb/sec expected",
                    p.name(),
                    p.rate.as_deref().unwrap_or("")
                ),
                evidence,
            );
        }
    }
    for (what, v) in ib_counters(p) {
        let Some(v) = v else { continue };
        let max = match what {
            "link_downed" => cfg.ib_link_downed_max,
            _ => cfg.ib_errors_max,
        };
        let delta = baseline.delta(&ib_key(p, what), v);
        if delta > max {
            j.add(
                None,
                Severity::Warn,
                Check::IbPort,
                Action::Monitor,
                &format!("{name} {what}+{delta}"),
                format!(
                    "port {}: {what} grew by {delta} since the last health check (more than {max})",
                    p.name()
                ),
                format!("counters/{what}: {v}"),
            );
        }
    }
}

/// The fabric states [`crate::nvml_fabric::from_raw`] names (nvidia-smi's words).
const FABRIC_STATES: [&str; 4] = ["not-supported", "not-started", "in-progress", "completed"];

fn judge_fabric(j: &mut Judgement, g: &crate::snapshot::Gpu) {
    let (state, status) = (g.fabric_state.as_deref(), g.fabric_status.as_deref());
    if let Some(s) = state.filter(|s| !FABRIC_STATES.contains(s)) {
        // A state NVML added after this release: not judged, so it neither drains nor
        // lifts an item about this GPU's fabric; the rest of the run still counts.
        j.made_unread(Check::Fabric, g);
        j.findings.push(Finding::unknown(
            Check::Fabric,
            Some(g.minor.unwrap_or(g.index)),
            format!("NVML reports fabric state {s}, which this release does not know"),
        ));
        return;
    }
    j.made(Check::Fabric, Some(g));
    let (action, short, detail) = match (state, status) {
        (None | Some("not-supported"), _) => return,
        (Some("completed"), None | Some("success")) => return,
        (Some("completed"), Some(err)) => (
            Action::Reboot,
            "fabric failed".to_string(),
            format!("NVLink fabric registration failed: {err}"),
        ),
        (Some(s), _) => (
            Action::Monitor,
            format!("fabric {s}"),
            format!("NVLink fabric registration {s}: the fabric manager has not finished"),
        ),
    };
    j.add(
        Some(g),
        Severity::Drain,
        Check::Fabric,
        action,
        &short,
        detail,
        format!(
            "fabric_state={} fabric_status={}",
            state.unwrap_or(""),
            status.unwrap_or("")
        ),
    );
}
