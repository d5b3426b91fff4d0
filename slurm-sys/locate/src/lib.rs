//! Finds the installed Slurm development headers and reads their version.
//!
//! Used by the build scripts of `slurm-sys`, of crates that follow Slurm's ABI through
//! version cfgs, and of the workspace root. Pure and synchronous so it is unit-tested
//! without a Slurm install: the environment and the file system are passed in.

use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable that overrides header discovery.
pub const INCLUDE_DIR_VAR: &str = "SLURM_INCLUDE_DIR";

/// Well-known prefixes searched after `SLURM_INCLUDE_DIR` and pkg-config.
pub const DEFAULT_INCLUDE_DIRS: &[&str] =
    &["/usr/include", "/usr/local/include", "/opt/slurm/include"];

/// The headers bindgen reads; every one must be present.
pub const HEADERS: &[&str] = &[
    "slurm/spank.h",
    "slurm/slurm.h",
    "slurm/slurm_errno.h",
    "slurm/slurm_version.h",
];

/// Slurm releases whose ABI differs from the one before in a way this project follows.
/// Each one becomes a cfg `slurm_ge_<major>_<minor>` when the installed Slurm is that
/// release or newer.
pub const ABI_RELEASES: &[(u32, u32)] = &[
    (22, 5),  // oldest release supported
    (23, 2),  // job_modify gains err_msg; job_submit calls may run concurrently
    (23, 11), // GRES strings gres/gpu; SLURM_NODE_ALIASES removed; spank_prepend_task_argv
    (24, 5),  // tres_per_task written with '='; more SPANK hooks switch on stepd paths
    (24, 11),
    (25, 5), // slurm_spank_init_failure_mode
    (25, 11),
    (26, 5), // newest release tested (Debian sid)
];

/// A Slurm version as `SLURM_VERSION_NUMBER` encodes it: `(major << 16) | (minor << 8) | micro`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlurmVersion {
    pub major: u32,
    pub minor: u32,
    pub micro: u32,
}

impl SlurmVersion {
    pub fn from_number(n: u32) -> Self {
        SlurmVersion {
            major: (n >> 16) & 0xff,
            minor: (n >> 8) & 0xff,
            micro: n & 0xff,
        }
    }

    pub fn number(&self) -> u32 {
        (self.major << 16) | (self.minor << 8) | self.micro
    }

    /// Reads `#define SLURM_VERSION_NUMBER 0x160508` from the text of `slurm_version.h`.
    pub fn parse_version_header(text: &str) -> Result<Self, LocateError> {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("#define") || words.next() != Some("SLURM_VERSION_NUMBER") {
                continue;
            }
            let value = words.next().unwrap_or("");
            let value = value.trim_start_matches('(').trim_end_matches(')');
            let parsed = match value
                .strip_prefix("0x")
                .or_else(|| value.strip_prefix("0X"))
            {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => value.parse::<u32>().ok(),
            };
            return match parsed {
                Some(n) if n > 0 && n <= 0xff_ffff => Ok(SlurmVersion::from_number(n)),
                _ => Err(LocateError::BadVersion(format!(
                    "SLURM_VERSION_NUMBER has an unreadable value {value:?}"
                ))),
            };
        }
        Err(LocateError::BadVersion(
            "no '#define SLURM_VERSION_NUMBER' line".to_string(),
        ))
    }

    /// Parses the version that Slurm's programs print with `-V`: `slurm 24.11.5`,
    /// `slurm-wlm 22.05.8`.
    pub fn parse_program_version(text: &str) -> Option<Self> {
        let word = text.split_whitespace().nth(1)?;
        let mut parts = word.split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let micro = parts.next()?.parse().ok()?;
        Some(SlurmVersion {
            major,
            minor,
            micro,
        })
    }

    /// The version cfgs that hold for this version, e.g. `["slurm_ge_22_05", "slurm_ge_23_02"]`.
    pub fn cfgs(&self) -> Vec<String> {
        ABI_RELEASES
            .iter()
            .filter(|&&(major, minor)| (self.major, self.minor) >= (major, minor))
            .map(|&(major, minor)| cfg_name(major, minor))
            .collect()
    }
}

impl fmt::Display for SlurmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}.{}", self.major, self.minor, self.micro)
    }
}

fn cfg_name(major: u32, minor: u32) -> String {
    format!("slurm_ge_{major}_{minor:02}")
}

/// Every version cfg name this project may test, for `cargo::rustc-check-cfg`.
pub fn all_cfg_names() -> Vec<String> {
    ABI_RELEASES.iter().map(|&(a, b)| cfg_name(a, b)).collect()
}

/// Prints the `cargo:` lines that declare every version cfg and set those that hold.
/// Call from a build script of any crate that uses `#[cfg(slurm_ge_..)]`.
pub fn emit_cfgs(version: SlurmVersion) {
    for name in all_cfg_names() {
        println!("cargo:rustc-check-cfg=cfg({name})");
    }
    for name in version.cfgs() {
        println!("cargo:rustc-cfg={name}");
    }
}

/// How the include directory was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    EnvVar,
    PkgConfig,
    DefaultPath,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::EnvVar => write!(f, "{INCLUDE_DIR_VAR}"),
            Source::PkgConfig => write!(f, "pkg-config"),
            Source::DefaultPath => write!(f, "default search path"),
        }
    }
}

/// The installed headers: where, how found, which version.
#[derive(Debug, Clone)]
pub struct SlurmHeaders {
    /// The directory that contains `slurm/slurm.h`.
    pub include_dir: PathBuf,
    pub source: Source,
    pub version: SlurmVersion,
}

impl SlurmHeaders {
    pub fn header_paths(&self) -> Vec<PathBuf> {
        HEADERS.iter().map(|h| self.include_dir.join(h)).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocateError {
    /// `SLURM_INCLUDE_DIR` is set but does not hold the headers: never fall back silently.
    EnvDirIncomplete {
        dir: PathBuf,
        missing: Vec<String>,
    },
    NotFound {
        searched: Vec<PathBuf>,
    },
    BadVersion(String),
    Io(String),
}

impl fmt::Display for LocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocateError::EnvDirIncomplete { dir, missing } => write!(
                f,
                "{INCLUDE_DIR_VAR}={} does not contain {}; point it at the directory that holds slurm/slurm.h",
                dir.display(),
                missing.join(", ")
            ),
            LocateError::NotFound { searched } => {
                let list: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "the Slurm development headers (slurm/slurm.h, slurm/spank.h, ...) were not found in {}. \
                     Install them: `apt-get install libslurm-dev` on Debian/Ubuntu, `dnf install slurm-devel` on RHEL; \
                     or set {INCLUDE_DIR_VAR} to the directory that contains slurm/slurm.h",
                    list.join(", ")
                )
            }
            LocateError::BadVersion(why) => write!(f, "cannot read the Slurm version from slurm/slurm_version.h: {why}"),
            LocateError::Io(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for LocateError {}

/// What discovery needs from the outside world; the real one reads the process
/// environment, runs pkg-config and reads files.
pub trait Probe {
    fn env_include_dir(&self) -> Option<PathBuf>;
    /// Include directories pkg-config reports for the `slurm` package (empty when none).
    fn pkg_config_include_dirs(&self) -> Vec<PathBuf>;
    fn exists(&self, path: &Path) -> bool;
    fn read(&self, path: &Path) -> Result<String, String>;
}

/// Discovery order: `SLURM_INCLUDE_DIR`, then pkg-config, then [`DEFAULT_INCLUDE_DIRS`].
pub fn locate_with(probe: &dyn Probe) -> Result<SlurmHeaders, LocateError> {
    let missing_in = |dir: &Path| -> Vec<String> {
        HEADERS
            .iter()
            .filter(|h| !probe.exists(&dir.join(h)))
            .map(|h| h.to_string())
            .collect()
    };
    let found = |dir: PathBuf, source: Source| -> Result<SlurmHeaders, LocateError> {
        let path = dir.join("slurm/slurm_version.h");
        let text = probe
            .read(&path)
            .map_err(|e| LocateError::Io(format!("cannot read {}: {e}", path.display())))?;
        let version = SlurmVersion::parse_version_header(&text)?;
        Ok(SlurmHeaders {
            include_dir: dir,
            source,
            version,
        })
    };

    if let Some(dir) = probe.env_include_dir() {
        let missing = missing_in(&dir);
        if !missing.is_empty() {
            return Err(LocateError::EnvDirIncomplete { dir, missing });
        }
        return found(dir, Source::EnvVar);
    }
    let mut searched = Vec::new();
    for dir in probe.pkg_config_include_dirs() {
        if missing_in(&dir).is_empty() {
            return found(dir, Source::PkgConfig);
        }
        searched.push(dir);
    }
    for dir in DEFAULT_INCLUDE_DIRS.iter().map(PathBuf::from) {
        if missing_in(&dir).is_empty() {
            return found(dir, Source::DefaultPath);
        }
        searched.push(dir);
    }
    Err(LocateError::NotFound { searched })
}

/// Where `libslurmfull.so` (the private library every Slurm daemon and command links, and
/// whose symbols plugins use) lives for headers in `include_dir`. Test binaries of the safe
/// layer link it; plugins never do.
pub fn find_slurmfull_dir(include_dir: &Path, exists: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    let prefix = include_dir.parent()?;
    let mut candidates = Vec::new();
    for lib in ["lib", "lib64"] {
        let base = prefix.join(lib);
        for arch in ["x86_64-linux-gnu", "aarch64-linux-gnu", ""] {
            for sub in ["slurm-wlm", "slurm"] {
                candidates.push(if arch.is_empty() {
                    base.join(sub)
                } else {
                    base.join(arch).join(sub)
                });
            }
        }
    }
    candidates
        .into_iter()
        .find(|d| exists(&d.join("libslurmfull.so")))
}

/// The real probe: process environment, the `pkg-config` program if installed, the file system.
pub struct SystemProbe;

impl Probe for SystemProbe {
    fn env_include_dir(&self) -> Option<PathBuf> {
        std::env::var_os(INCLUDE_DIR_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    fn pkg_config_include_dirs(&self) -> Vec<PathBuf> {
        // Slurm ships slurm.pc only in some builds (not Debian's); absence is normal.
        let out = std::process::Command::new("pkg-config")
            .args(["--cflags-only-I", "slurm"])
            .output();
        match out {
            Ok(out) if out.status.success() => {
                parse_pkg_config_cflags(&String::from_utf8_lossy(&out.stdout))
            }
            _ => Vec::new(),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn read(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

/// `-I/opt/slurm/include -I/x` -> the directories.
pub fn parse_pkg_config_cflags(text: &str) -> Vec<PathBuf> {
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix("-I"))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// Finds the installed headers the way the build scripts do.
pub fn locate() -> Result<SlurmHeaders, LocateError> {
    locate_with(&SystemProbe)
}

/// For build scripts: finds the headers and emits the rerun hints, or prints the error
/// (prefixed with `who`) and ends the build script with a failure.
pub fn locate_or_exit(who: &str) -> SlurmHeaders {
    match locate() {
        Ok(h) => {
            emit_rerun_hints(Some(&h));
            h
        }
        Err(e) => {
            emit_rerun_hints(None);
            eprintln!("error: {who}{e}");
            std::process::exit(1);
        }
    }
}

/// Tells cargo to rerun a build script when discovery inputs change.
pub fn emit_rerun_hints(headers: Option<&SlurmHeaders>) {
    println!("cargo:rerun-if-env-changed={INCLUDE_DIR_VAR}");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if let Some(h) = headers {
        for p in h.header_paths() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

#[cfg(test)]
#[path = "tests/locate.rs"]
mod tests;
