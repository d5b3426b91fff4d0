//! The admin's configuration: `key=value` words after the plugin's path in plugstack.conf,
//! and the JSON profiles file they may name. Loaded once per process (slurm_spank_init).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::values::{valid_profile_name, valid_var_name, Mode};
use crate::{Error, Result};

/// The profiles shipped in `conf-examples/mlenv.json`, used when plugstack.conf names none.
pub const BUILTIN_PROFILES: &str = include_str!("../../../conf-examples/mlenv.json");

/// Where `MASTER_ADDR` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrMode {
    /// The first node's name, as site scripts do.
    Name,
    /// The node's address from `SLURM_NODE_ALIASES` (cloud nodes whose names do not
    /// resolve; Slurm sets it up to 23.02), else its NodeAddr.
    Alias,
    /// The node's `NodeAddr` from Slurm's configuration.
    NodeAddr,
}

/// The fabric a node has, as read from sysfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fabric {
    Efa,
    Infiniband,
    None,
}

impl Fabric {
    pub fn name(self) -> &'static str {
        match self {
            Fabric::Efa => "efa",
            Fabric::Infiniband => "infiniband",
            Fabric::None => "none",
        }
    }
}

/// One fabric profile of the JSON file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub description: String,
    /// Library directories prepended to `LD_LIBRARY_PATH`, each only where it exists.
    #[serde(default)]
    pub ld_library_path: Vec<PathBuf>,
    /// On a node with an EFA device, warn the user once when none of `ld_library_path`
    /// holds an NCCL net plugin (`libnccl-net*.so`): NCCL would fall back to TCP sockets.
    #[serde(default)]
    pub needs_nccl_net_plugin: bool,
    /// Variables to set (a user's own value wins unless the variable is forced).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// The JSON profiles file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    /// The profile applied on a node with each fabric when the user names none.
    pub fabric_profiles: BTreeMap<Fabric, String>,
    pub profiles: BTreeMap<String, Profile>,
}

impl Profiles {
    /// Parses and checks the file's text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Profiles> {
        let p: Profiles = serde_json::from_str(text)
            .map_err(|e| Error::new(trusted_config::json_error(origin, &e)))?;
        for (fabric, name) in &p.fabric_profiles {
            if !p.profiles.contains_key(name) {
                return Err(Error::new(format!(
                    "{origin}: fabric_profiles.{} names the profile {name:?}, which is not in \"profiles\"",
                    fabric.name()
                )));
            }
        }
        for (name, profile) in &p.profiles {
            if !valid_profile_name(name) {
                return Err(Error::new(format!(
                    "{origin}: profile name {name:?}: use letters, digits, '-', '_' and '.'"
                )));
            }
            for var in profile.env.keys() {
                if !valid_var_name(var) {
                    return Err(Error::new(format!(
                        "{origin}: profiles.{name}.env: {var:?} is not a valid variable name"
                    )));
                }
            }
            for dir in &profile.ld_library_path {
                if !dir.is_absolute() || dir.as_os_str().to_string_lossy().contains(':') {
                    return Err(Error::new(format!(
                        "{origin}: profiles.{name}.ld_library_path: {} must be an absolute path without ':'",
                        dir.display()
                    )));
                }
            }
        }
        Ok(p)
    }

    pub fn builtin() -> Profiles {
        match Profiles::parse(BUILTIN_PROFILES, "conf-examples/mlenv.json") {
            Ok(p) => p,
            // The shipped file is checked by a unit test; this cannot be reached.
            Err(_) => Profiles {
                fabric_profiles: BTreeMap::new(),
                profiles: BTreeMap::new(),
            },
        }
    }

    /// The profile for a node: the one the user named, else the one for its fabric.
    pub fn choose(&self, named: Option<&str>, fabric: Fabric) -> Option<(&str, &Profile)> {
        let name = match named {
            Some(n) => n,
            None => self.fabric_profiles.get(&fabric)?.as_str(),
        };
        self.profiles
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
    }

    pub fn names(&self) -> Vec<&str> {
        self.profiles.keys().map(String::as_str).collect()
    }
}

/// Everything the plugin is told by the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// What a job gets when the user says nothing (`default=`).
    pub default_mode: Mode,
    pub addr: AddrMode,
    /// Where `MASTER_PORT` is taken from (`ports=`).
    pub ports: RangeInclusive<u16>,
    /// Root of sysfs, for fabric detection (`sysfs=`; a fixture tree in tests).
    pub sysfs: PathBuf,
    /// Prefix of every profile library directory (`lib_root=`; a fixture tree in tests).
    pub lib_root: PathBuf,
    /// Variables set even when the user already has them (`force=`).
    pub forced: Vec<String>,
    /// The profiles file (`profiles=`), if not the built-in one.
    pub profiles_path: Option<PathBuf>,
    pub profiles: Profiles,
}

/// The default port range: below Linux's ephemeral range (32768-60999), above Slurm's
/// own ports (6817-6819) and the 12000-12999 often reserved with MpiParams=ports=.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 20000..=29999;

pub const KEYS: &[&str] = &[
    "default", "addr", "ports", "sysfs", "lib_root", "force", "profiles",
];

impl Config {
    /// Parses plugstack.conf's words and reads the profiles file they name.
    pub fn load(args: &[String]) -> Result<Config> {
        let mut c = Config::from_args(args)?;
        if let Some(path) = &c.profiles_path {
            c.profiles = load_profiles_file(path)?;
        }
        Ok(c)
    }

    /// Parses the words only; profiles stay the built-in ones.
    pub fn from_args(args: &[String]) -> Result<Config> {
        let mut c = Config {
            default_mode: Mode::On,
            addr: AddrMode::Name,
            ports: DEFAULT_PORTS,
            sysfs: PathBuf::from("/sys"),
            lib_root: PathBuf::from("/"),
            forced: Vec::new(),
            profiles_path: None,
            profiles: Profiles::builtin(),
        };
        let mut seen: Vec<&str> = Vec::new();
        for arg in args {
            let (key, value) = arg.split_once('=').ok_or_else(|| {
                Error::new(format!(
                    "plugstack.conf: argument {arg:?} is not key=value (keys: {})",
                    KEYS.join(", ")
                ))
            })?;
            let bad = |why: &str| Error::new(format!("plugstack.conf: {key}={value}: {why}"));
            if seen.contains(&key) {
                return Err(bad("given twice"));
            }
            match key {
                "default" => c.default_mode = Mode::parse(value).map_err(|e| bad(&e.0))?,
                "addr" => {
                    c.addr = match value {
                        "name" => AddrMode::Name,
                        "alias" => AddrMode::Alias,
                        "nodeaddr" => AddrMode::NodeAddr,
                        _ => return Err(bad("use name, alias or nodeaddr")),
                    }
                }
                "ports" => c.ports = parse_port_range(value).map_err(|e| bad(&e))?,
                "sysfs" => c.sysfs = absolute(value).map_err(|e| bad(&e))?,
                "lib_root" => c.lib_root = absolute(value).map_err(|e| bad(&e))?,
                "profiles" => c.profiles_path = Some(absolute(value).map_err(|e| bad(&e))?),
                "force" => {
                    for v in value.split(',').filter(|v| !v.is_empty()) {
                        if !valid_var_name(v) {
                            return Err(bad(&format!("{v:?} is not a variable name")));
                        }
                        c.forced.push(v.to_string());
                    }
                }
                _ => {
                    return Err(Error::new(format!(
                        "plugstack.conf: unknown key {key:?} (keys: {})",
                        KEYS.join(", ")
                    )))
                }
            }
            seen.push(key);
        }
        Ok(c)
    }

    pub fn is_forced(&self, var: &str) -> bool {
        self.forced.iter().any(|f| f == var)
    }
}

fn absolute(value: &str) -> std::result::Result<PathBuf, String> {
    let p = PathBuf::from(value);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err("must be an absolute path".into())
    }
}

/// `MIN-MAX`, both in 1024..=65535.
pub fn parse_port_range(value: &str) -> std::result::Result<RangeInclusive<u16>, String> {
    let (lo, hi) = value
        .split_once('-')
        .ok_or_else(|| "use MIN-MAX, e.g. 20000-29999".to_string())?;
    let port = |s: &str| -> std::result::Result<u16, String> {
        match s.trim().parse::<u16>() {
            Ok(p) if p >= 1024 => Ok(p),
            _ => Err(format!("{s:?} is not a port in 1024-65535")),
        }
    };
    let (lo, hi) = (port(lo)?, port(hi)?);
    if lo > hi {
        return Err(format!("{lo} is above {hi}"));
    }
    Ok(lo..=hi)
}

/// Reads the profiles file. It steers what root-started slurmstepd puts into every job,
/// so it must be owned by root and writable by no one else.
pub fn load_profiles_file(path: &Path) -> Result<Profiles> {
    let text = trusted_config::read(path).map_err(Error)?;
    Profiles::parse(&text, &path.display().to_string())
}

#[cfg(test)]
#[path = "tests/config.rs"]
mod tests;
