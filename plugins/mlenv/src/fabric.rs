//! What fabric a node has (sysfs only: no network calls, no subprocesses) and which of a
//! profile's library directories exist on it. Runs once per step and node.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::config::{Fabric, Profile};

/// The RDMA devices found under `<sysfs>/class/infiniband`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub fabric: Fabric,
    /// `(device, driver)` pairs, sorted by device.
    pub devices: Vec<(String, String)>,
}

/// EFA devices are InfiniBand-class devices bound to the `efa` driver; any other device
/// there is an InfiniBand/RoCE HCA. EFA wins on a node that has both.
pub fn detect(sysfs: &Path) -> Detected {
    let mut devices = Vec::new();
    if let Ok(entries) = std::fs::read_dir(sysfs.join("class/infiniband")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let driver = std::fs::read_link(e.path().join("device/driver"))
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            devices.push((name, driver));
        }
    }
    devices.sort();
    let fabric = if devices.iter().any(|(_, d)| d == "efa") {
        Fabric::Efa
    } else if devices.is_empty() {
        Fabric::None
    } else {
        Fabric::Infiniband
    };
    Detected { fabric, devices }
}

/// A profile's library directories as found on this node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Libraries {
    /// The directories that exist, in the profile's order.
    pub dirs: Vec<PathBuf>,
    /// The first NCCL net plugin found in them (`libnccl-net*.so`).
    pub nccl_net_plugin: Option<PathBuf>,
}

/// A profile directory under `lib_root` (a fixture tree in tests; `/` on nodes).
fn under_root(lib_root: &Path, dir: &Path) -> PathBuf {
    lib_root.join(dir.strip_prefix("/").unwrap_or(dir))
}

/// Directories of `profile.ld_library_path` that hold a shared library.
pub fn find_libraries(profile: &Profile, lib_root: &Path) -> Libraries {
    let mut out = Libraries::default();
    for dir in &profile.ld_library_path {
        let full = under_root(lib_root, dir);
        if out.dirs.contains(&full) {
            continue;
        }
        // A directory counts only with a library in it: /opt/amazon/ofi-nccl/lib exists
        // on installs that keep the libraries in its arch subdirectory.
        let Some(plugin) = shared_libraries(&full) else {
            continue;
        };
        if out.nccl_net_plugin.is_none() {
            out.nccl_net_plugin = plugin;
        }
        out.dirs.push(full);
    }
    out
}

/// `None` when `dir` holds no shared library; else the first NCCL net plugin in it, if any
/// (aws-ofi-nccl installs `libnccl-net.so`, and from 1.9 also `libnccl-net-ofi.so`).
fn shared_libraries(dir: &Path) -> Option<Option<PathBuf>> {
    let mut any = false;
    let mut plugins: Vec<PathBuf> = Vec::new();
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.contains(".so") {
            any = true;
            if name.starts_with("libnccl-net") {
                plugins.push(e.path());
            }
        }
    }
    plugins.sort();
    any.then(|| plugins.into_iter().next())
}

/// The warning the user sees once per step when an EFA device is present but NCCL would
/// not find the aws-ofi-nccl plugin.
pub fn missing_plugin_warning(profile_name: &str, profile: &Profile, lib_root: &Path) -> String {
    let dirs: Vec<String> = profile
        .ld_library_path
        .iter()
        .map(|d| under_root(lib_root, d).display().to_string())
        .collect();
    format!(
        "mlenv: warning: this node has an EFA device but no aws-ofi-nccl library (libnccl-net*.so) in {} (profile '{profile_name}'): NCCL will fall back to TCP sockets; install aws-ofi-nccl or tell your admin",
        dirs.join(", ")
    )
}

/// `dirs` in front of `current` (the user's `LD_LIBRARY_PATH`), leaving out those already
/// in it; `None` when nothing changes. `current` is kept byte for byte: it need not be
/// UTF-8, and an empty entry (`a::b`, a leading or trailing `:`) is the current directory
/// to ld.so, so it stays. An empty `current` has no entry at all (ld.so ignores it), so
/// no `:` is added for it.
pub fn prepend_paths(dirs: &[PathBuf], current: Option<&OsStr>) -> Option<OsString> {
    let current = current.map_or(&[][..], OsStr::as_bytes);
    let existing: Vec<&[u8]> = if current.is_empty() {
        Vec::new()
    } else {
        current.split(|&b| b == b':').collect()
    };
    let mut new: Vec<&[u8]> = Vec::new();
    for d in dirs {
        let d = d.as_os_str().as_bytes();
        if !existing.contains(&d) && !new.contains(&d) {
            new.push(d);
        }
    }
    if new.is_empty() {
        return None;
    }
    let mut out = new.join(&b':');
    if !current.is_empty() {
        out.push(b':');
        out.extend_from_slice(current);
    }
    Some(OsString::from_vec(out))
}

#[cfg(test)]
#[path = "tests/fabric.rs"]
mod tests;
