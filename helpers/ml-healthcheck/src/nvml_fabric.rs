//! A GPU's NVLink fabric registration (`nvmlDeviceGetGpuFabricInfo`), which nvml-wrapper
//! 0.13 does not wrap (its `unwrapped_functions.txt`): the raw binding of nvml-wrapper-sys,
//! called through the loaded library's function table and the device's raw handle. The one
//! module of this crate allowed `unsafe` (the workspace forbids it; this crate denies it
//! and lifts that here only; `scripts/check-safety.sh` holds that). Everything else is the
//! pure mapping of the raw values, [`from_raw`], tested without a GPU.
#![allow(unsafe_code)]

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Device;
use nvml_wrapper_sys::bindings::{
    nvmlGpuFabricInfo_t, nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED, nvmlReturn_enum_NVML_SUCCESS,
    nvmlReturn_t, NVML_GPU_FABRIC_STATE_COMPLETED, NVML_GPU_FABRIC_STATE_IN_PROGRESS,
    NVML_GPU_FABRIC_STATE_NOT_STARTED, NVML_GPU_FABRIC_STATE_NOT_SUPPORTED,
};

/// The snapshot's `fabric_state` and `fabric_status` from one answer of
/// `nvmlDeviceGetGpuFabricInfo`: the call's own return code, the struct's `state` and
/// `status`. `None` where there is nothing to judge: the call or the state says not
/// supported (no NVSwitch fabric, a GPU before Hopper), or the call failed (a missing
/// value is never a finding). The status counts only once the registration completed.
pub fn from_raw(
    call: nvmlReturn_t,
    state: u8,
    status: nvmlReturn_t,
) -> Option<(String, Option<String>)> {
    if call != nvmlReturn_enum_NVML_SUCCESS {
        return None;
    }
    let word = match u32::from(state) {
        NVML_GPU_FABRIC_STATE_NOT_SUPPORTED => return None,
        NVML_GPU_FABRIC_STATE_NOT_STARTED => "not-started",
        NVML_GPU_FABRIC_STATE_IN_PROGRESS => "in-progress",
        NVML_GPU_FABRIC_STATE_COMPLETED => "completed",
        // A state a newer driver added: shown as its number; judged UNKNOWN, never a drain.
        other => return Some((format!("state-{other}"), None)),
    };
    let status = (u32::from(state) == NVML_GPU_FABRIC_STATE_COMPLETED).then(|| {
        if status == nvmlReturn_enum_NVML_SUCCESS {
            "success".to_string()
        } else {
            NvmlError::from(status).to_string()
        }
    });
    Some((word.to_string(), status))
}

/// This GPU's fabric registration, or `None`: not supported, or a driver whose NVML has no
/// `nvmlDeviceGetGpuFabricInfo` (before R525; the symbol is looked up when the library is
/// loaded and missing ones are kept as errors, never called).
pub fn fabric(d: &Device) -> Option<(String, Option<String>)> {
    let lib = d.nvml().lib();
    // The binding's own method would panic on a missing symbol: the table's entry is
    // checked here instead.
    let get = match &lib.nvmlDeviceGetGpuFabricInfo {
        Ok(f) => *f,
        Err(_) => return None,
    };
    let mut info = nvmlGpuFabricInfo_t {
        clusterUuid: [0; 16],
        status: nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED,
        cliqueId: 0,
        state: 0,
    };
    // SAFETY: `handle()` is the handle NVML gave for this device; `d` borrows the `Nvml`
    // that holds the library loaded and NVML initialized for as long as the call runs.
    let handle = unsafe { d.handle() };
    // SAFETY: `get` is `nvmlDeviceGetGpuFabricInfo` as resolved from the loaded library,
    // with the C signature the NVML header declares (bindgen's); `info` is a live,
    // initialized `nvmlGpuFabricInfo_t` that NVML only writes for the length of the call
    // (the unversioned struct: the unversioned function takes no version field).
    let call = unsafe { get(handle, &mut info) };
    from_raw(call, info.state, info.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nvml_wrapper_sys::bindings::{
        nvmlReturn_enum_NVML_ERROR_FUNCTION_NOT_FOUND, nvmlReturn_enum_NVML_ERROR_UNKNOWN,
    };

    const OK: nvmlReturn_t = nvmlReturn_enum_NVML_SUCCESS;
    const NOT_SUPPORTED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;

    #[test]
    fn each_state_as_nvidia_smi_words_it() {
        assert_eq!(from_raw(OK, 1, OK), Some(("not-started".into(), None)));
        assert_eq!(from_raw(OK, 2, OK), Some(("in-progress".into(), None)));
        assert_eq!(
            from_raw(OK, 3, OK),
            Some(("completed".into(), Some("success".into())))
        );
        // The status before completion is not the outcome yet.
        assert_eq!(
            from_raw(OK, 2, nvmlReturn_enum_NVML_ERROR_UNKNOWN),
            Some(("in-progress".into(), None))
        );
        assert_eq!(from_raw(OK, 9, OK), Some(("state-9".into(), None)));
    }

    #[test]
    fn a_failed_registration_carries_nvml_s_error() {
        let (state, status) = from_raw(OK, 3, nvmlReturn_enum_NVML_ERROR_UNKNOWN).unwrap();
        assert_eq!(state, "completed");
        let status = status.unwrap();
        assert_ne!(status, "success");
        assert_eq!(status, NvmlError::Unknown.to_string());
    }

    #[test]
    fn not_supported_or_a_failed_call_is_no_value() {
        // The state says so (a GPU outside an NVSwitch fabric).
        assert_eq!(from_raw(OK, 0, OK), None);
        // The call says so, or fails: never a finding.
        assert_eq!(from_raw(NOT_SUPPORTED, 3, OK), None);
        assert_eq!(
            from_raw(nvmlReturn_enum_NVML_ERROR_FUNCTION_NOT_FOUND, 3, OK),
            None
        );
        assert_eq!(from_raw(nvmlReturn_enum_NVML_ERROR_UNKNOWN, 3, OK), None);
    }
}
