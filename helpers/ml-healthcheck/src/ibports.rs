//! InfiniBand and EFA ports, from sysfs (drivers/infiniband/core/sysfs.c):
//! `/sys/class/infiniband/<dev>/ports/<n>/` holds `state` (`4: ACTIVE`), `phys_state`
//! (`5: LinkUp`), `rate` (`400 Gb/sec (4X NDR)`), `link_layer` (`InfiniBand`, `Ethernet`)
//! and, where the device answers performance MADs (Mellanox, not EFA), `counters/`
//! (`link_downed`, `symbol_error`, `port_rcv_errors`: plain numbers).
//!
//! EFA devices (`efa_0`, or `rdmap...` under udev's naming) are told by their PCI vendor
//! (Amazon, 0x1d0f): the EFA driver reports every port ACTIVE / LinkUp at a fixed 4X EDR
//! rate and has no `counters/`, so for EFA what counts is that every device is there.
//! Ports with an Ethernet link layer (RoCE on a host or storage NIC) are not judged: an
//! unused second port of such a card is down by design.

use std::path::Path;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ib,
    Efa,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ib => "ib",
            Kind::Efa => "efa",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Port {
    pub device: String,
    pub port: u32,
    /// As sysfs writes them, newline removed.
    pub state: String,
    pub phys_state: Option<String>,
    pub rate: Option<String>,
    pub link_downed: Option<u64>,
    pub symbol_error: Option<u64>,
    pub port_rcv_errors: Option<u64>,
}

impl Port {
    /// `mlx5_0/1`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.device, self.port)
    }
}

/// A device and the ports judged on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub name: String,
    pub kind: Kind,
    pub ports: Vec<Port>,
}

/// The number before the colon of `4: ACTIVE`.
pub fn state_number(text: &str) -> Option<u32> {
    text.split(':').next()?.trim().parse().ok()
}

/// `ACTIVE` of `4: ACTIVE`.
pub fn state_word(text: &str) -> &str {
    text.split_once(':').map_or(text, |(_, w)| w.trim())
}

pub const ACTIVE: u32 = 4;
pub const LINK_UP: u32 = 5;

/// Gb/s of `400 Gb/sec (4X NDR)` or `2.5 Gb/sec (1X SDR)`.
pub fn rate_gbps(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim_end().to_string())
}

fn number(dir: &Path, file: &str) -> Option<u64> {
    read(dir, file)?.trim().parse().ok()
}

const AMAZON: &str = "0x1d0f";

/// The RDMA devices under `sysfs_root` (none when `class/infiniband` is absent: no RDMA
/// driver loaded), with the ports to judge; an Ethernet-only device is left out. `Err`
/// when the class directory exists but cannot be read.
pub fn scan(sysfs_root: &Path) -> Result<Vec<Device>, String> {
    let class = sysfs_root.join("class/infiniband");
    let entries = match std::fs::read_dir(&class) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", class.display())),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = match read(&dir, "device/vendor").as_deref() {
            Some(AMAZON) => Kind::Efa,
            _ => Kind::Ib,
        };
        let ports = ports(&dir, &name, kind);
        if kind == Kind::Ib && ports.is_empty() {
            continue;
        }
        out.push(Device { name, kind, ports });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn ports(dir: &Path, device: &str, kind: Kind) -> Vec<Port> {
    let Ok(entries) = std::fs::read_dir(dir.join("ports")) else {
        return Vec::new();
    };
    let mut out: Vec<Port> = entries
        .flatten()
        .filter_map(|e| {
            let port: u32 = e.file_name().to_str()?.parse().ok()?;
            let p = e.path();
            if kind == Kind::Ib && read(&p, "link_layer").as_deref() == Some("Ethernet") {
                return None;
            }
            let c = p.join("counters");
            Some(Port {
                device: device.to_string(),
                port,
                state: read(&p, "state").unwrap_or_default(),
                phys_state: read(&p, "phys_state"),
                rate: read(&p, "rate"),
                link_downed: number(&c, "link_downed"),
                symbol_error: number(&c, "symbol_error"),
                port_rcv_errors: number(&c, "port_rcv_errors"),
            })
        })
        .collect();
    out.sort_by_key(|p| p.port);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_words() {
        assert_eq!(state_number("4: ACTIVE"), Some(4));
        assert_eq!(state_number("1: DOWN"), Some(1));
        assert_eq!(state_word("1: DOWN"), "DOWN");
        assert_eq!(state_number("5: LinkUp"), Some(5));
        assert_eq!(state_word("3: Disabled"), "Disabled");
        assert_eq!(state_number(""), None);
        assert_eq!(rate_gbps("400 Gb/sec (4X NDR)"), Some(400.0));
        assert_eq!(rate_gbps("2.5 Gb/sec (1X SDR)"), Some(2.5));
        assert_eq!(rate_gbps("fast"), None);
    }
}
