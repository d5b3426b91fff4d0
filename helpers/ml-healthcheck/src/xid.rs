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

/// The repair an XID needs (see [`crate::evaluate::Action`]); refined from NVIDIA's
/// catalogue below.
pub fn action(code: u32) -> Action {
    match code {
        79 | 119 | 120 | 140 => Action::Reboot,
        48 | 63 | 64 | 92 | 94 | 95 => Action::ResetGpu,
        _ => Action::Monitor,
    }
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
    fn descriptions_drop_the_process_fields() {
        assert_eq!(
            describe("pid='<unknown>', name=<unknown>, GPU has fallen off the bus."),
            "GPU has fallen off the bus."
        );
        assert_eq!(describe("Graphics Exception: x"), "Graphics Exception: x");
        assert_eq!(describe("pid=1"), "");
    }
}
