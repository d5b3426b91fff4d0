//! `ml-epilog.conf`: one typed struct, one loader. Format: `key = value` lines, `#`
//! comments. The file steers code that runs as root, so it is refused unless it is owned
//! by root and not writable by group or others.

use std::path::{Path, PathBuf};

/// Where the config is looked for when `--config` is not given: next to the slurm.conf
/// slurmd uses (`$SLURM_CONF`, set in the epilog environment), then /etc/slurm.
pub const DEFAULT_NAME: &str = "ml-epilog.conf";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Objects of uids below this (system accounts, root) are never touched.
    pub min_uid: u32,
    /// Which `/dev/shm` file names may be removed (`*` and `?` globs).
    pub patterns: Vec<String>,
    pub clean_sem: bool,
    pub clean_msg: bool,
    pub clean_files: bool,
    /// The directory of POSIX shared memory files.
    pub shm_dir: PathBuf,
    /// Append the run's log line here instead of syslog.
    pub log_file: Option<PathBuf>,
    /// Exit non-zero (which drains the node) when a removal fails for a reason other than
    /// the object being gone already. Off by default: a leftover is not worth a drain.
    pub fail_on_error: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_uid: 1000,
            patterns: vec!["*".to_string()],
            clean_sem: true,
            clean_msg: true,
            clean_files: true,
            shm_dir: PathBuf::from("/dev/shm"),
            log_file: None,
            fail_on_error: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" => Some(true),
        "no" | "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Applies one `key = value` setting (from the file or a flag).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bool_value =
            || parse_bool(value).ok_or_else(|| format!("{key} takes yes or no, not {value:?}"));
        match key {
            "min_uid" => {
                self.min_uid = value
                    .parse()
                    .map_err(|_| format!("min_uid takes a number, not {value:?}"))?;
                if self.min_uid == 0 {
                    return Err(
                        "min_uid = 0 would clean root's objects; the lowest allowed is 1".into(),
                    );
                }
            }
            "patterns" => {
                let p: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect();
                if p.is_empty() {
                    return Err("patterns needs at least one pattern (use clean_files = no to keep all files)".into());
                }
                if let Some(bad) = p.iter().find(|p| p.contains('/')) {
                    return Err(format!("pattern {bad:?} contains '/': patterns match file names in the shm directory"));
                }
                self.patterns = p;
            }
            "clean_sem" => self.clean_sem = bool_value()?,
            "clean_msg" => self.clean_msg = bool_value()?,
            "clean_files" => self.clean_files = bool_value()?,
            "fail_on_error" => self.fail_on_error = bool_value()?,
            "shm_dir" => {
                if !value.starts_with('/') {
                    return Err(format!("shm_dir must be an absolute path, not {value:?}"));
                }
                self.shm_dir = PathBuf::from(value);
            }
            "log_file" => {
                if !value.starts_with('/') {
                    return Err(format!("log_file must be an absolute path, not {value:?}"));
                }
                self.log_file = Some(PathBuf::from(value));
            }
            _ => return Err(format!("unknown key {key:?}")),
        }
        Ok(())
    }

    /// Applies a config file's text; errors name the file and line.
    pub fn apply_text(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(ConfigError(format!(
                    "{origin}:{}: expected key = value, got {raw:?}",
                    i + 1
                )));
            };
            self.set(key.trim(), value.trim())
                .map_err(|e| ConfigError(format!("{origin}:{}: {e}", i + 1)))?;
        }
        Ok(())
    }

    /// Whether `name` may be removed by the configured patterns.
    pub fn name_allowed(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| glob_match(p, name))
    }
}

/// Reads and applies the file at `path`; it must be root-owned and writable by no one
/// else (ml-epilog runs as root).
pub fn load_file(cfg: &mut Config, path: &Path) -> Result<(), ConfigError> {
    let text = trusted_config::read(path).map_err(ConfigError)?;
    cfg.apply_text(&text, &path.display().to_string())
}

/// The config file to read when none is named: next to `$SLURM_CONF`, then /etc/slurm.
pub fn default_path(slurm_conf: Option<&Path>, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    trusted_config::beside_slurm_conf(DEFAULT_NAME, slurm_conf, exists)
}

/// Shell-style glob with `*` and `?` (no classes), on the whole name.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Position after the last '*' and the name index it was matched against.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
#[path = "tests/config.rs"]
mod tests;
