//! NVIDIA XID lines in the kernel log. The driver writes, across releases:
//!
//! ```text
//! NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.
//! NVRM: Xid (PCI:0000:18:00): 48, pid=2117, name=python, An uncorrectable double bit error ...
//! NVRM: Xid (0000:03:00): 13, Graphics Exception: ...          (older drivers)
//! ```
//!
//! NVML's event sets only see events from the moment they are registered, so past XIDs
//! (the ones that killed the last job) are found here.

use serde::{Deserialize, Serialize};

use crate::evaluate::Action;

/// One XID line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xid {
    /// The kernel log record's sequence number (orders records, survives nothing but a boot).
    pub seq: u64,
    /// Microseconds since boot, from the record.
    pub usec: u64,
    /// The GPU's PCI address as the driver wrote it (`0000:3b:00`).
    pub pci: String,
    pub code: u32,
    /// The rest of the line, for the human report.
    pub text: String,
}

/// NVIDIA's resolution buckets (the XID catalogue's "Resolution Bucket (Immediate
/// Action)" column) and the repair each stands for here.
fn bucket_action(bucket: &str) -> Action {
    match bucket {
        "RESTART_APP" | "IGNORE" | "UPDATE_SWFW" | "CHECK_UVM" | "WORKFLOW_XID_45" => {
            Action::Monitor
        }
        // WORKFLOW_XID_48 (a DBE) and the NVLink workflows begin with a GPU reset; a row
        // remap that then fails is NVML's `remapped_rows_failure`: replace.
        "RESET_GPU" | "WORKFLOW_XID_48" | "WORKFLOW_NVLINK_ERR" | "WORKFLOW_NVLINK5_ERR" => {
            Action::ResetGpu
        }
        "RESTART_BM" | "RESTART_VM" => Action::Reboot,
        // Hands on the hardware: nothing the node can do by itself.
        "CHECK_MECHANICALS" | "CONTACT_SUPPORT" => Action::Replace,
        _ => Action::Reboot,
    }
}

/// XID code -> resolution bucket, for the XIDs a GPU cluster meets (Ampere and later),
/// from NVIDIA's XID catalogue
/// (<https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html>, column
/// "Resolution Bucket (Immediate Action)"), as NVIDIA's NVSentinel ships it
/// (`distros/kubernetes/nvsentinel/charts/gpu-health-monitor/xiderrorsmapping.csv`,
/// NVIDIA/NVSentinel commit 6f8b0fcf, which writes the catalogue's `CONTACT_SUPPORT` of
/// unused and unexpected XIDs as `UNEXPECTED_ERR_REPORT_ISSUE`). XID 154 names its action
/// in its text ([`action_of`]).
const CATALOGUE: &[(u32, &str)] = &[
    (8, "RESTART_APP"),
    (13, "RESTART_APP"),
    (31, "RESTART_APP"),
    (32, "RESTART_APP"),
    (43, "IGNORE"),
    (45, "WORKFLOW_XID_45"),
    (46, "RESET_GPU"),
    (48, "WORKFLOW_XID_48"),
    (54, "CHECK_MECHANICALS"),
    (61, "CONTACT_SUPPORT"),
    (62, "RESET_GPU"),
    (63, "IGNORE"),
    (64, "RESET_GPU"),
    (74, "WORKFLOW_NVLINK_ERR"),
    (79, "RESTART_BM"),
    (92, "IGNORE"),
    (94, "RESTART_APP"),
    (95, "RESET_GPU"),
    (109, "RESET_GPU"),
    (110, "RESET_GPU"),
    (119, "RESET_GPU"),
    (120, "RESET_GPU"),
    (121, "IGNORE"),
    (136, "RESET_GPU"),
    (140, "RESET_GPU"),
    (143, "RESET_GPU"),
    (144, "WORKFLOW_NVLINK5_ERR"),
    (145, "WORKFLOW_NVLINK5_ERR"),
    (146, "WORKFLOW_NVLINK5_ERR"),
    (147, "WORKFLOW_NVLINK5_ERR"),
    (148, "WORKFLOW_NVLINK5_ERR"),
    (149, "WORKFLOW_NVLINK5_ERR"),
    (150, "WORKFLOW_NVLINK5_ERR"),
    (151, "RESTART_VM"),
    (155, "RESET_GPU"),
    (156, "RESET_GPU"),
    (158, "RESET_GPU"),
    (160, "RESTART_BM"),
];

/// The catalogue's bucket for an XID, if the table has it.
pub fn bucket(code: u32) -> Option<&'static str> {
    CATALOGUE.iter().find(|(c, _)| *c == code).map(|(_, b)| *b)
}

/// The repair an XID needs by the catalogue. An XID the table does not know, that a site
/// made critical, gets a reboot: it clears every GPU state a reset clears, and more.
pub fn action(code: u32) -> Action {
    bucket(code).map_or(Action::Reboot, bucket_action)
}

/// NVML's GPU recovery action (`nvmlDeviceGpuRecoveryAction_t`, the field
/// `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`, drivers from R550), as a repair: `None` for
/// `NONE` (0). Values past the ones this build knows get a reboot.
pub fn recovery_action(value: u32) -> Option<Action> {
    match value {
        0 => None,
        // GPU_RESET, DRAIN_P2P (stop peer traffic, then reset), DRAIN_AND_RESET,
        // RECOVER_IMEX_DOMAIN, BUS_RESET.
        1 | 3 | 4 | 5 | 6 => Some(Action::ResetGpu),
        // NODE_REBOOT, SYSTEM_REBOOT, anything newer.
        _ => Some(Action::Reboot),
    }
}

/// The repair one XID line needs: XID 154 carries NVML's new recovery action in its text
/// (`GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)`), which
/// wins; every other XID goes by the catalogue.
pub fn action_of(code: u32, text: &str) -> Action {
    if code == 154 {
        let to = text
            .rsplit_once(" to 0x")
            .and_then(|(_, v)| v.split(|c: char| !c.is_ascii_hexdigit()).next())
            .and_then(|v| u32::from_str_radix(v, 16).ok());
        return match to {
            Some(v) => recovery_action(v).unwrap_or(Action::Monitor),
            None => Action::Reboot,
        };
    }
    action(code)
}

/// The XID in a kernel log message, if it is one.
pub fn parse_message(message: &str) -> Option<(String, u32, String)> {
    let rest = &message[message.find("NVRM: Xid (")? + "NVRM: Xid (".len()..];
    let close = rest.find("):")?;
    let pci = rest[..close].trim().trim_start_matches("PCI:").to_string();
    let after = rest[close + 2..].trim_start();
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    let code = after[..digits].parse().ok()?;
    let text = after[digits..].trim_start_matches(',').trim().to_string();
    Some((pci, code, text))
}

/// The human part of an XID line: drops the `pid=..., name=...,` fields.
pub fn describe(text: &str) -> &str {
    let mut t = text;
    for field in ["pid=", "name="] {
        if t.starts_with(field) {
            t = t.find(", ").map(|i| &t[i + 2..]).unwrap_or("");
        }
    }
    t.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_every_driver_generation() {
        assert_eq!(
            parse_message("NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."),
            Some(("0000:3b:00".into(), 79, "pid='<unknown>', name=<unknown>, GPU has fallen off the bus.".into()))
        );
        assert_eq!(
            parse_message("NVRM: Xid (PCI:0000:18:00): 48, pid=2117, name=python, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0."),
            Some(("0000:18:00".into(), 48, "pid=2117, name=python, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.".into()))
        );
        assert_eq!(
            parse_message(
                "NVRM: Xid (0000:03:00): 13, Graphics Exception: ESR 0x404600=0x80000002"
            ),
            Some((
                "0000:03:00".into(),
                13,
                "Graphics Exception: ESR 0x404600=0x80000002".into()
            ))
        );
        assert_eq!(
            parse_message("NVRM: Xid (PCI:0000:b7:00): 119, pid=988, name=nvidia-smi, Timeout after 6s of waiting for RPC response from GPU1 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20800a4c 0x4)."),
            Some(("0000:b7:00".into(), 119, "pid=988, name=nvidia-smi, Timeout after 6s of waiting for RPC response from GPU1 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20800a4c 0x4).".into()))
        );
        assert_eq!(
            parse_message("NVRM: Xid (PCI:0000:9a:00): 95, pid=4114, name=python3, Uncontained: FBHUB. RST: Yes, D-RST: No"),
            Some(("0000:9a:00".into(), 95, "pid=4114, name=python3, Uncontained: FBHUB. RST: Yes, D-RST: No".into()))
        );
    }

    #[test]
    fn other_lines_are_not_xids() {
        assert_eq!(
            parse_message("NVRM: loading NVIDIA UNIX x86_64 Kernel Module  550.54.15"),
            None
        );
        assert_eq!(parse_message("NVRM: Xid (PCI:0000:3b:00): abc"), None);
        assert_eq!(parse_message("NVRM: Xid (PCI:0000:3b:00"), None);
        assert_eq!(parse_message("eth0: link up"), None);
        assert_eq!(parse_message(""), None);
    }

    #[test]
    fn each_xid_gets_the_catalogues_repair() {
        for (code, want) in [
            (13, Action::Monitor),
            (31, Action::Monitor),
            (43, Action::Monitor),
            (45, Action::Monitor),
            (48, Action::ResetGpu),
            (61, Action::Replace),
            (62, Action::ResetGpu),
            (63, Action::Monitor),
            (64, Action::ResetGpu),
            (74, Action::ResetGpu),
            (79, Action::Reboot),
            (92, Action::Monitor),
            (94, Action::Monitor),
            (95, Action::ResetGpu),
            (119, Action::ResetGpu),
            (120, Action::ResetGpu),
            (121, Action::Monitor),
            (140, Action::ResetGpu),
            (143, Action::ResetGpu),
            (145, Action::ResetGpu),
            (151, Action::Reboot),
            (160, Action::Reboot),
            // Not in the table: a reboot.
            (999, Action::Reboot),
        ] {
            assert_eq!(action(code), want, "xid {code}");
        }
    }

    #[test]
    fn xid_154_names_its_own_repair() {
        let t = |s| action_of(154, s);
        assert_eq!(
            t("GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)"),
            Action::ResetGpu
        );
        assert_eq!(
            t("GPU recovery action changed from 0x1 (GPU Reset Required) to 0x2 (Node Reboot Required)"),
            Action::Reboot
        );
        assert_eq!(
            t("GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)"),
            Action::Monitor
        );
        assert_eq!(t("something else"), Action::Reboot);
        assert_eq!(action_of(79, "GPU has fallen off the bus."), Action::Reboot);
        assert_eq!(recovery_action(0), None);
        assert_eq!(recovery_action(4), Some(Action::ResetGpu));
        assert_eq!(recovery_action(7), Some(Action::Reboot));
    }

    #[test]
    fn descriptions_drop_the_process_fields() {
        assert_eq!(
            describe("pid='<unknown>', name=<unknown>, GPU has fallen off the bus."),
            "GPU has fallen off the bus."
        );
        assert_eq!(describe("Graphics Exception: x"), "Graphics Exception: x");
        assert_eq!(describe("pid=1"), "");
    }
}
