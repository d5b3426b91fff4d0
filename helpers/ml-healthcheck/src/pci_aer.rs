//! PCIe Advanced Error Reporting counters of the GPUs and the fabric NICs, from sysfs
//! (`/sys/bus/pci/devices/<dev>/aer_dev_{correctable,nonfatal,fatal}`, Linux 4.19+,
//! drivers/pci/pcie/aer.c). Each file lists one counter per error type and ends with its
//! total; the type names changed across kernels (`Receiver Error 2` in 4.19, `RxErr 2`
//! later), the totals did not:
//!
//! ```text
//! RxErr 0
//! BadTLP 0
//! ...
//! TOTAL_ERR_COR 0
//! ```
//!
//! The counters count since boot, as seen by the device itself.

use std::path::Path;

use serde::Serialize;

/// Which devices are read: the GPUs and the NICs of the GPU fabric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Gpu,
    Nic,
}

const NVIDIA: u32 = 0x10de;
const AMAZON: u32 = 0x1d0f;
const MELLANOX: u32 = 0x15b3;

/// The kind of a PCI device from its `class` and `vendor`: NVIDIA 3D (0x0302) and VGA
/// (0x0300) controllers; InfiniBand controllers (0x0207) of any vendor; Ethernet
/// controllers (0x0200) of EFA (Amazon) and Mellanox, whose Ethernet ports carry RoCE and
/// EFA traffic. Everything else (the host's own NICs, disks) is not ours to judge.
pub fn kind(class: u32, vendor: u32) -> Option<Kind> {
    match (class >> 8, vendor) {
        (0x0302 | 0x0300, NVIDIA) => Some(Kind::Gpu),
        (0x0207, _) => Some(Kind::Nic),
        (0x0200, AMAZON | MELLANOX) => Some(Kind::Nic),
        _ => None,
    }
}

/// One device's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// The sysfs name: `0000:3b:00.0`.
    pub address: String,
    pub kind: Kind,
    pub correctable: u64,
    pub nonfatal: u64,
    pub fatal: u64,
}

/// The `TOTAL_<name>` line of an `aer_dev_*` file.
pub fn total(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (key, value) = l.trim().rsplit_once(' ')?;
        (key.strip_prefix("TOTAL_")? == name)
            .then(|| value.parse().ok())
            .flatten()
    })
}

/// `0x030200` as sysfs writes a class or vendor.
fn hex(text: &str) -> Option<u32> {
    u32::from_str_radix(text.trim().strip_prefix("0x")?, 16).ok()
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// `class` or `vendor` (`0x030200\n`): one read into a small buffer. Every PCI function of
/// the node is asked its class on every run (hundreds on an HGX node): open, read, close,
/// without the size query and the second read of `read_to_string`.
fn read_hex(dir: &Path, file: &str) -> Option<u32> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    let n = std::fs::File::open(dir.join(file))
        .ok()?
        .read(&mut buf)
        .ok()?;
    hex(std::str::from_utf8(&buf[..n]).ok()?)
}

/// The AER totals of every GPU and fabric NIC under `sysfs_root`. A device without AER
/// (no `aer_dev_*` files: the capability is absent or the kernel has no AER) is left out;
/// `Err` when the device list cannot be read at all.
pub fn scan(sysfs_root: &Path) -> Result<Vec<Device>, String> {
    let devices = sysfs_root.join("bus/pci/devices");
    let entries = std::fs::read_dir(&devices).map_err(|e| format!("{}: {e}", devices.display()))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        // The class first: most devices end there, with one read.
        let Some(class) = read_hex(&dir, "class") else {
            continue;
        };
        if class >> 16 != 0x02 && class >> 16 != 0x03 {
            continue;
        }
        let Some(kind) = read_hex(&dir, "vendor").and_then(|v| kind(class, v)) else {
            continue;
        };
        let count = |file, name| read(&dir, file).and_then(|t| total(&t, name));
        let (Some(correctable), Some(nonfatal), Some(fatal)) = (
            count("aer_dev_correctable", "ERR_COR"),
            count("aer_dev_nonfatal", "ERR_NONFATAL"),
            count("aer_dev_fatal", "ERR_FATAL"),
        ) else {
            continue;
        };
        out.push(Device {
            address: entry.file_name().to_string_lossy().into_owned(),
            kind,
            correctable,
            nonfatal,
            fatal,
        });
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_of_old_and_new_kernels() {
        let new = "RxErr 0\nBadTLP 3\nBadDLLP 0\nRollover 0\nTimeout 0\nNonFatalErr 0\nCorrIntErr 0\nHeaderOF 0\nTOTAL_ERR_COR 3\n";
        assert_eq!(total(new, "ERR_COR"), Some(3));
        assert_eq!(total(new, "ERR_FATAL"), None);
        let old = "Receiver Error 2\nBad TLP 0\nBad DLLP 0\nRELAY_NUM Rollover 0\nReplay Timer Timeout 0\nAdvisory Non-Fatal 0\nCorrected Internal Error 0\nHeader Log Overflow 0\nTOTAL_ERR_COR 2\n";
        assert_eq!(total(old, "ERR_COR"), Some(2));
        assert_eq!(total("TOTAL_ERR_FATAL x\n", "ERR_FATAL"), None);
        assert_eq!(total("", "ERR_FATAL"), None);
    }

    #[test]
    fn which_devices_are_ours() {
        assert_eq!(kind(0x030200, 0x10de), Some(Kind::Gpu));
        assert_eq!(kind(0x030000, 0x10de), Some(Kind::Gpu));
        assert_eq!(kind(0x030000, 0x1a03), None, "the BMC's VGA");
        assert_eq!(kind(0x020700, 0x15b3), Some(Kind::Nic));
        assert_eq!(kind(0x020000, 0x15b3), Some(Kind::Nic));
        assert_eq!(kind(0x020000, 0x1d0f), Some(Kind::Nic));
        assert_eq!(kind(0x020000, 0x8086), None, "the host's own Ethernet");
        assert_eq!(kind(0x010802, 0x144d), None, "an NVMe disk");
        assert_eq!(kind(0x068000, 0x10de), None, "an NVSwitch bridge");
    }
}
