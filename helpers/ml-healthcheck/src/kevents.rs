//! Kernel log lines besides XIDs that mean a GPU or the NVLink fabric needs a repair, as
//! the NVIDIA drivers write them (seen in DGX/HGX logs):
//!
//! ```text
//! nvidia-nvswitch0: SXid (PCI:0000:c2:00.0): 20034, Fatal, Link 28 LTSSM Fault Up
//! nvidia-nvswitch2: SXid (PCI:0000:c4:00.0): 20034, Severity 5 Engine instance 00 Sub-engine instance 00
//! nvidia-nvswitch3: SXid (PCI:0000:c5:00.0): 19084, Non-fatal, Link 10 AN1 Heartbeat Timeout Error (First)
//! NVRM: GPU 0000:3a:00.0: GPU has fallen off the bus.
//! NVRM: GPU at 0000:01:00.0 has fallen off the bus.            (older drivers)
//! ```
//!
//! An SXid is the NVSwitch driver's XID; its first line says `Fatal` or `Non-fatal`, the
//! lines after it (`Severity ...`, `Data {...}`) add detail and carry neither. The "fallen
//! off the bus" line is XID 79's companion, and older drivers write it without an XID 79.
//! [`crate::kmsg`] reads the log once and hands each message to [`parse_message`].

use serde::{Deserialize, Serialize};

/// What a line says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum What {
    /// An NVSwitch error: the switch (`nvidia-nvswitchN`), the SXid, and whether the line
    /// says `Fatal` (`None`: a follow-up line that says neither).
    Sxid {
        switch: u32,
        code: u32,
        fatal: Option<bool>,
    },
    /// The GPU at `pci` is gone from the PCIe bus.
    OffBus,
}

/// One such line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The kernel log record's sequence number.
    pub seq: u64,
    /// Microseconds since boot, from the record.
    pub usec: u64,
    /// The device's PCI address as the driver wrote it (`0000:c2:00.0`).
    pub pci: String,
    #[serde(flatten)]
    pub what: What,
    /// The message as logged, for the evidence.
    pub message: String,
}

impl Event {
    /// A fatal SXid or a GPU off the bus: the node needs a reboot (NVIDIA's fabric manager
    /// guide: a fatal NVSwitch error needs the switches and GPUs reset), so the state keeps
    /// it until one.
    pub fn needs_reboot(&self) -> bool {
        matches!(
            self.what,
            What::OffBus
                | What::Sxid {
                    fatal: Some(true),
                    ..
                }
        )
    }
}

/// The event in a kernel log message, if it is one: (PCI address, what).
pub fn parse_message(message: &str) -> Option<(String, What)> {
    parse_sxid(message).or_else(|| parse_off_bus(message))
}

fn parse_sxid(message: &str) -> Option<(String, What)> {
    let rest = message.strip_prefix("nvidia-nvswitch")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let switch = rest[..digits].parse().ok()?;
    let rest = rest[digits..].strip_prefix(": SXid (")?;
    let close = rest.find("):")?;
    // `PCI:0000:c2:00.0` in NVIDIA's guides, `PCI@0000:86:00.0` in some driver builds.
    let pci = rest[..close]
        .trim()
        .trim_start_matches("PCI:")
        .trim_start_matches("PCI@")
        .to_string();
    let after = rest[close + 2..].trim_start();
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    let code = after[..digits].parse().ok()?;
    let fatal = match after[digits..].trim_start_matches(',').trim_start() {
        t if t.starts_with("Fatal") => Some(true),
        t if t.starts_with("Non-fatal") => Some(false),
        _ => None,
    };
    Some((
        pci,
        What::Sxid {
            switch,
            code,
            fatal,
        },
    ))
}

fn parse_off_bus(message: &str) -> Option<(String, What)> {
    let rest = message.strip_prefix("NVRM: GPU ")?;
    let rest = rest.strip_prefix("at ").unwrap_or(rest);
    let (pci, tail) = rest.split_once(' ')?;
    if !tail.ends_with("has fallen off the bus.") {
        return None;
    }
    let pci = pci.trim_end_matches(':').trim_start_matches("PCI:");
    crate::snapshot::pci_key(pci)?;
    Some((pci.to_string(), What::OffBus))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sxid(switch: u32, code: u32, fatal: Option<bool>) -> What {
        What::Sxid {
            switch,
            code,
            fatal,
        }
    }

    #[test]
    fn sxid_lines_as_the_nvswitch_driver_writes_them() {
        assert_eq!(
            parse_message(
                "nvidia-nvswitch0: SXid (PCI:0000:c2:00.0): 20034, Fatal, Link 28 LTSSM Fault Up"
            ),
            Some(("0000:c2:00.0".into(), sxid(0, 20034, Some(true))))
        );
        assert_eq!(
            parse_message("nvidia-nvswitch4: SXid (PCI:0000:c6:00.0): 19084, Non-fatal, Link 29 AN1 Heartbeat Timeout Error (First)"),
            Some(("0000:c6:00.0".into(), sxid(4, 19084, Some(false))))
        );
        assert_eq!(
            parse_message("nvidia-nvswitch3: SXid (PCI@0000:86:00.0): 12028, Non-fatal, Link 44 egress non-posted PRIV error (First)"),
            Some(("0000:86:00.0".into(), sxid(3, 12028, Some(false))))
        );
        assert_eq!(
            parse_message("nvidia-nvswitch2: SXid (PCI:0000:c4:00.0): 10002, Severity 5 Engine instance 00 Sub-engine instance 00"),
            Some(("0000:c4:00.0".into(), sxid(2, 10002, None)))
        );
    }

    #[test]
    fn fallen_off_the_bus_in_both_driver_generations() {
        assert_eq!(
            parse_message("NVRM: GPU 0000:3a:00.0: GPU has fallen off the bus."),
            Some(("0000:3a:00.0".into(), What::OffBus))
        );
        assert_eq!(
            parse_message("NVRM: GPU at 0000:01:00.0 has fallen off the bus."),
            Some(("0000:01:00.0".into(), What::OffBus))
        );
    }

    #[test]
    fn other_lines_are_not_events() {
        for m in [
            "NVRM: Xid (PCI:0000:3a:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
            "NVRM: GPU at PCI:0000:01:00: GPU-bc0fa0b9-cac2-f507-b715-9bebdb69c71e",
            "NVRM: GPU Board Serial Number: 1653223060000",
            "nvidia-nvswitch0: probe successful",
            "nvidia-nvswitch: SXid (PCI:0000:c2:00.0): 20034, Fatal",
            "nvidia-nvswitch0: SXid (PCI:0000:c2:00.0): x, Fatal",
            "NVRM: GPU zz: GPU has fallen off the bus.",
            "",
        ] {
            assert_eq!(parse_message(m), None, "{m}");
        }
    }

    #[test]
    fn what_needs_a_reboot() {
        let e = |what| Event {
            seq: 1,
            usec: 1,
            pci: String::new(),
            what,
            message: String::new(),
        };
        assert!(e(What::OffBus).needs_reboot());
        assert!(e(sxid(0, 20034, Some(true))).needs_reboot());
        assert!(!e(sxid(0, 19084, Some(false))).needs_reboot());
        assert!(!e(sxid(0, 10002, None)).needs_reboot());
    }
}
