//! Where snapshots come from: NVML on a real node, a JSON file for tests and replays. The
//! rest of the program sees only [`GpuSource`].

use std::path::PathBuf;

use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{
    EccCounter, MemoryError, RetirementCause, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::FieldValueSample;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id::{
    NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, NVML_FI_DEV_REMAPPED_FAILURE,
    NVML_FI_DEV_REMAPPED_PENDING, NVML_FI_DEV_REMAPPED_UNC,
};
use nvml_wrapper::{Device, Nvml};

use crate::snapshot::{Gpu, NvLink, Snapshot};

const NVLINK_MAX_LINKS: u32 = 18;

pub trait GpuSource {
    /// A snapshot; NVML being unusable is data (`nvml_error`), not an error. `Err` is for
    /// a source that cannot be read at all (a missing or malformed snapshot file).
    fn snapshot(&self) -> Result<Snapshot, String>;
}

/// A snapshot saved earlier (`--snapshot FILE`).
pub struct SnapshotFile(pub PathBuf);

impl GpuSource for SnapshotFile {
    fn snapshot(&self) -> Result<Snapshot, String> {
        let p = self.0.display().to_string();
        let text = std::fs::read_to_string(&self.0).map_err(|e| format!("{p}: {e}"))?;
        Snapshot::from_json(&text, &p)
    }
}

/// The node's GPUs, through `libnvidia-ml.so.1` loaded at run time.
pub struct NvmlSource;

impl GpuSource for NvmlSource {
    fn snapshot(&self) -> Result<Snapshot, String> {
        Ok(gather())
    }
}

/// A metric NVML may not support on this GPU: `None`, never a finding.
fn opt<T>(r: Result<T, NvmlError>) -> Option<T> {
    r.ok()
}

fn gather() -> Snapshot {
    let nvml = match Nvml::init() {
        Ok(n) => n,
        Err(e) => {
            return Snapshot {
                nvml_error: Some(describe_init_error(&e)),
                ..Snapshot::default()
            }
        }
    };
    let count = match nvml.device_count() {
        Ok(n) => n,
        Err(e) => {
            return Snapshot {
                nvml_error: Some(format!("nvmlDeviceGetCount: {e}")),
                ..Snapshot::default()
            }
        }
    };
    let gpus = (0..count)
        .map(|index| match nvml.device_by_index(index) {
            Ok(d) => gpu(index, &d),
            Err(NvmlError::GpuLost) => Gpu {
                index,
                lost: true,
                ..Gpu::default()
            },
            Err(e) => Gpu {
                index,
                error: Some(e.to_string()),
                ..Gpu::default()
            },
        })
        .collect();
    Snapshot {
        nvml_error: None,
        driver_version: opt(nvml.sys_driver_version()),
        gpus,
    }
}

fn describe_init_error(e: &NvmlError) -> String {
    match e {
        // libloading's text names the library and why: "libnvidia-ml.so.1: cannot open
        // shared object file: No such file or directory".
        NvmlError::LibloadingError(inner) => inner.to_string(),
        NvmlError::LibraryNotFound => "libnvidia-ml.so.1 not found".into(),
        NvmlError::DriverNotLoaded => "the NVIDIA kernel driver is not loaded".into(),
        _ => format!("nvmlInit: {e}"),
    }
}

fn throttle_names(r: ThrottleReasons) -> Vec<String> {
    // The reasons that slow a training job down; idle and application clock settings are
    // normal.
    [
        (ThrottleReasons::HW_SLOWDOWN, "hw_slowdown"),
        (ThrottleReasons::HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
        (
            ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
            "hw_power_brake_slowdown",
        ),
        (ThrottleReasons::SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
        (ThrottleReasons::SW_POWER_CAP, "sw_power_cap"),
    ]
    .into_iter()
    .filter(|(f, _)| r.contains(*f))
    .map(|(_, n)| n.to_string())
    .collect()
}

fn field_u64(samples: &[Result<FieldValueSample, NvmlError>], id: u32) -> Option<u64> {
    samples
        .iter()
        .flatten()
        .find(|s| s.field.0 == id)
        .and_then(|s| match &s.value {
            Ok(SampleValue::U32(v)) => Some(u64::from(*v)),
            Ok(SampleValue::U64(v)) => Some(*v),
            Ok(SampleValue::I64(v)) => u64::try_from(*v).ok(),
            Ok(SampleValue::F64(_)) | Err(_) => None,
        })
}

fn gpu(index: u32, d: &Device) -> Gpu {
    // A GPU that fell off the bus after nvmlInit answers GPU_IS_LOST to everything.
    if let Err(NvmlError::GpuLost) = d.uuid() {
        return Gpu {
            index,
            lost: true,
            ..Gpu::default()
        };
    }
    // Row remapping and the recovery action are not wrapped by nvml-wrapper: NVML's
    // field values carry them (a driver before R550 answers the recovery action with an
    // error of its own, which leaves it `None`).
    let remap = d
        .field_values_for(&[
            FieldId(NVML_FI_DEV_REMAPPED_UNC),
            FieldId(NVML_FI_DEV_REMAPPED_PENDING),
            FieldId(NVML_FI_DEV_REMAPPED_FAILURE),
            FieldId(NVML_FI_DEV_GET_GPU_RECOVERY_ACTION),
        ])
        .unwrap_or_default();
    // NVML_NVLINK_MAX_LINKS in the NVML headers of Hopper and Blackwell drivers.
    let nvlinks = (0..NVLINK_MAX_LINKS)
        .filter_map(|link| {
            let l = d.link_wrapper_for(link);
            // Links a GPU does not have answer NotSupported / InvalidArg.
            let active = l.is_active().ok()?;
            Some(NvLink {
                link,
                active,
                replay_errors: opt(l.error_counter(ErrorCounter::DlReplay)),
                recovery_errors: opt(l.error_counter(ErrorCounter::DlRecovery)),
                crc_errors: opt(l.error_counter(ErrorCounter::DlCrcFlit)),
            })
        })
        .collect();
    let fabric = crate::nvml_fabric::fabric(d);
    let retired = |cause| opt(d.retired_pages(cause)).map(|v| v.len() as u64);
    Gpu {
        index,
        minor: opt(d.minor_number()),
        uuid: opt(d.uuid()),
        name: opt(d.name()),
        pci_bus_id: opt(d.pci_info()).map(|p| p.bus_id),
        serial: opt(d.serial()),
        lost: false,
        error: None,
        ecc_volatile_uncorrected: opt(
            d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
        ),
        ecc_volatile_corrected: opt(
            d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile)
        ),
        retired_pages_dbe: retired(RetirementCause::DoubleBitEccError),
        retired_pages_sbe: retired(RetirementCause::MultipleSingleBitEccErrors),
        retired_pages_pending: opt(d.are_pages_pending_retired()),
        remapped_rows_pending: field_u64(&remap, NVML_FI_DEV_REMAPPED_PENDING).map(|v| v > 0),
        remapped_rows_failure: field_u64(&remap, NVML_FI_DEV_REMAPPED_FAILURE).map(|v| v > 0),
        remapped_rows_uncorrectable: field_u64(&remap, NVML_FI_DEV_REMAPPED_UNC),
        gpu_recovery_action: field_u64(&remap, NVML_FI_DEV_GET_GPU_RECOVERY_ACTION)
            .and_then(|v| u32::try_from(v).ok()),
        pcie_gen: opt(d.current_pcie_link_gen()),
        pcie_gen_max: opt(d.max_pcie_link_gen()),
        pcie_width: opt(d.current_pcie_link_width()),
        pcie_width_max: opt(d.max_pcie_link_width()),
        nvlinks,
        // nvml-wrapper 0.13 does not wrap nvmlDeviceGetGpuFabricInfo: the raw binding,
        // in the crate's one module allowed `unsafe`.
        fabric_state: fabric.as_ref().map(|(s, _)| s.clone()),
        fabric_status: fabric.and_then(|(_, st)| st),
        temperature_c: opt(d.temperature(TemperatureSensor::Gpu)),
        slowdown_temperature_c: opt(d.temperature_threshold(TemperatureThreshold::Slowdown)),
        throttle_reasons: opt(d.current_throttle_reasons())
            .map(throttle_names)
            .unwrap_or_default(),
        compute_pids: opt(d.running_compute_processes())
            .map(|v| v.iter().map(|p| p.pid).collect())
            .unwrap_or_default(),
    }
}
