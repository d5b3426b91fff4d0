//! What was gathered about a node's GPUs, as plain data. Serializes to JSON, so a snapshot
//! taken on a real GPU node (`ml-healthcheck --save-snapshot FILE`) is replayed by the
//! tests and by `--snapshot FILE`. A metric the GPU does not support is `null`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Why NVML could not be used at all (library missing, driver not loaded), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    /// GPUs NVML counts, including ones it then fails to open (those are in `gpus` with
    /// `lost` or `error` set).
    #[serde(default)]
    pub gpus: Vec<Gpu>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// NVML's index (PCI order).
    pub index: u32,
    /// The `/dev/nvidiaN` number: what gres.conf's `File=` and so `SLURM_JOB_GPUS` use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// NVML's form, `00000000:3B:00.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// NVML answered `GPU_IS_LOST` (fell off the bus) for this GPU.
    #[serde(default)]
    pub lost: bool,
    /// NVML could not open this GPU for another reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_volatile_uncorrected: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_volatile_corrected: Option<u64>,
    /// Pages retired for double-bit errors, and for repeated single-bit errors
    /// (pre-Ampere; Ampere and later remap rows instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pages_dbe: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pages_sbe: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pages_pending: Option<bool>,
    /// Row remapping (Ampere and later), from NVML field values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remapped_rows_pending: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remapped_rows_failure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remapped_rows_uncorrectable: Option<u64>,
    /// NVML's GPU recovery action (`NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`, drivers from
    /// R550): 0 none, 1 GPU reset, 2 node reboot, 3 drain P2P, 4 drain and reset, ...
    /// The driver's own word on the repair: it wins over the XID table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_recovery_action: Option<u32>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_gen: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_gen_max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_width_max: Option<u32>,

    /// NVLinks NVML reports for this GPU (empty on PCIe-only GPUs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nvlinks: Vec<NvLink>,
    /// The GPU's NVLink fabric registration with the fabric manager (NVSwitch systems,
    /// Hopper and later; NVML's `nvmlDeviceGetGpuFabricInfo`), as `nvidia-smi -q` words
    /// it: `not-supported`, `not-started`, `in-progress`, `completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fabric_state: Option<String>,
    /// How a completed registration ended: `success`, or NVML's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fabric_status: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowdown_temperature_c: Option<u32>,
    /// Active clock throttle reasons, by NVML's names (`hw_slowdown`, `sw_thermal_slowdown`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_reasons: Vec<String>,

    /// Pids of compute processes on this GPU.
    #[serde(default)]
    pub compute_pids: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvLink {
    pub link: u32,
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc_errors: Option<u64>,
}

/// A PCI address as (domain, bus, device), from NVML's `00000000:3B:00.0` or the kernel
/// log's `0000:3b:00`: the one key that joins an XID line to a GPU.
pub fn pci_key(s: &str) -> Option<(u32, u32, u32)> {
    let s = s.trim().trim_start_matches("PCI:");
    let mut parts = s.split(':');
    let domain = u32::from_str_radix(parts.next()?, 16).ok()?;
    let bus = u32::from_str_radix(parts.next()?, 16).ok()?;
    let dev_fn = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let dev = dev_fn.split('.').next()?;
    let dev = u32::from_str_radix(dev, 16).ok()?;
    Some((domain, bus, dev))
}

impl Snapshot {
    pub fn from_json(text: &str, origin: &str) -> Result<Snapshot, String> {
        serde_json::from_str(text).map_err(|e| trusted_config::json_error(origin, &e))
    }

    pub fn to_json(&self) -> String {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The GPU at this PCI address.
    pub fn gpu_at(&self, pci: &str) -> Option<&Gpu> {
        let key = pci_key(pci)?;
        self.gpus
            .iter()
            .find(|g| g.pci_bus_id.as_deref().and_then(pci_key) == Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_of_nvml_and_the_kernel_log_meet() {
        assert_eq!(pci_key("00000000:3B:00.0"), Some((0, 0x3b, 0)));
        assert_eq!(pci_key("PCI:0000:3b:00"), Some((0, 0x3b, 0)));
        assert_eq!(pci_key("0000:3b:00"), Some((0, 0x3b, 0)));
        assert_eq!(pci_key("0001:b7:1f.0"), Some((1, 0xb7, 0x1f)));
        assert_eq!(pci_key("3b:00"), None);
        assert_eq!(pci_key("zz:3b:00"), None);
        assert_eq!(pci_key("0:0:0:0"), None);
    }

    #[test]
    fn unknown_keys_are_errors_with_their_position() {
        let e =
            Snapshot::from_json("{\"gpus\": [{\"index\": 0, \"temp\": 3}]}", "f.json").unwrap_err();
        assert!(e.starts_with("f.json: line 1, column "), "{e}");
        assert!(e.contains("unknown field `temp`"), "{e}");
    }

    #[test]
    fn round_trips() {
        let s = Snapshot {
            driver_version: Some("550.54.15".into()),
            gpus: vec![Gpu {
                index: 0,
                pci_bus_id: Some("00000000:18:00.0".into()),
                nvlinks: vec![NvLink {
                    link: 0,
                    active: true,
                    replay_errors: Some(0),
                    ..NvLink::default()
                }],
                ..Gpu::default()
            }],
            ..Snapshot::default()
        };
        assert_eq!(Snapshot::from_json(&s.to_json(), "x").unwrap(), s);
        assert_eq!(s.gpu_at("PCI:0000:18:00").map(|g| g.index), Some(0));
    }
}
