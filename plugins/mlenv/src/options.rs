//! The user's choices: `--mlenv`, `--mlenv-profile`, `--nccl-debug`, `--master-port` on
//! srun/sbatch/salloc, or the `SLURM_MLENV*` variables; the command line wins.

use std::ffi::CStr;

use crate::values::{valid_profile_name, BadValue, Mode};

/// NCCL_DEBUG's levels (NCCL documentation, "Environment Variables").
pub const NCCL_DEBUG_LEVELS: &[&str] = &["VERSION", "WARN", "INFO", "TRACE"];

pub fn parse_nccl_debug(s: &str) -> Result<String, BadValue> {
    let up = s.to_ascii_uppercase();
    if NCCL_DEBUG_LEVELS.contains(&up.as_str()) {
        Ok(up)
    } else {
        Err(BadValue(format!(
            "{s:?} is not an NCCL_DEBUG level ({})",
            NCCL_DEBUG_LEVELS.join(", ")
        )))
    }
}

pub fn parse_master_port(s: &str) -> Result<u16, BadValue> {
    match s.parse::<u16>() {
        Ok(p) if p >= 1024 => Ok(p),
        _ => Err(BadValue(format!("{s:?} is not a port in 1024-65535"))),
    }
}

pub fn parse_profile(s: &str) -> Result<String, BadValue> {
    if valid_profile_name(s) {
        Ok(s.to_string())
    } else {
        Err(BadValue(format!("{s:?} is not a profile name")))
    }
}

/// One option, declared once: its command-line name, the variable that can carry it, its
/// SPANK `val`, and what `--help` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub c_name: &'static CStr,
    pub arginfo: &'static CStr,
    pub usage: &'static CStr,
    pub env: &'static str,
    pub val: i32,
}

pub const OPT_MODE: OptionSpec = OptionSpec {
    name: "mlenv",
    c_name: c"mlenv",
    arginfo: c"on|off|fabric-only",
    usage: c"Distributed-training environment in every task (MASTER_ADDR/PORT, RANK, ..., fabric profile): on, off, or fabric-only (no rendezvous or rank variables). Also $SLURM_MLENV.",
    env: "SLURM_MLENV",
    val: 1,
};
pub const OPT_PROFILE: OptionSpec = OptionSpec {
    name: "mlenv-profile",
    c_name: c"mlenv-profile",
    arginfo: c"NAME",
    usage: c"Fabric profile to apply instead of the one for the node's fabric (e.g. efa-legacy). Also $SLURM_MLENV_PROFILE.",
    env: "SLURM_MLENV_PROFILE",
    val: 2,
};
pub const OPT_NCCL_DEBUG: OptionSpec = OptionSpec {
    name: "nccl-debug",
    c_name: c"nccl-debug",
    arginfo: c"LEVEL",
    usage:
        c"Set NCCL_DEBUG in every task (VERSION, WARN, INFO, TRACE). Also $SLURM_MLENV_NCCL_DEBUG.",
    env: "SLURM_MLENV_NCCL_DEBUG",
    val: 3,
};
pub const OPT_MASTER_PORT: OptionSpec = OptionSpec {
    name: "master-port",
    c_name: c"master-port",
    arginfo: c"N",
    usage: c"Use port N as MASTER_PORT instead of the one derived from the job and step ids. Also $SLURM_MLENV_MASTER_PORT.",
    env: "SLURM_MLENV_MASTER_PORT",
    val: 4,
};
pub const ALL: &[OptionSpec] = &[OPT_MODE, OPT_PROFILE, OPT_NCCL_DEBUG, OPT_MASTER_PORT];

/// The user's settings, as far as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choices {
    pub mode: Option<Mode>,
    pub profile: Option<String>,
    pub nccl_debug: Option<String>,
    pub master_port: Option<u16>,
}

impl Choices {
    /// Records one option's value; the message names the option as the user wrote it.
    pub fn set(&mut self, val: i32, arg: &str, via: Via) -> Result<(), BadValue> {
        let spec = ALL
            .iter()
            .find(|o| o.val == val)
            .ok_or_else(|| BadValue(format!("unknown option {val}")))?;
        let named = |e: BadValue| match via {
            Via::CommandLine => BadValue(format!("--{}: {}", spec.name, e.0)),
            Via::Environment => BadValue(format!("${}: {}", spec.env, e.0)),
        };
        match spec.val {
            v if v == OPT_MODE.val => self.mode = Some(Mode::parse(arg).map_err(named)?),
            v if v == OPT_PROFILE.val => self.profile = Some(parse_profile(arg).map_err(named)?),
            v if v == OPT_NCCL_DEBUG.val => {
                self.nccl_debug = Some(parse_nccl_debug(arg).map_err(named)?)
            }
            _ => self.master_port = Some(parse_master_port(arg).map_err(named)?),
        }
        Ok(())
    }

    /// Fills what the command line left open from `SLURM_MLENV*` variables.
    pub fn fill_from_env(
        &mut self,
        getenv: impl Fn(&str) -> Option<String>,
    ) -> Result<(), BadValue> {
        let mut from_env = Choices::default();
        for spec in ALL {
            if let Some(v) = getenv(spec.env).filter(|v| !v.is_empty()) {
                from_env.set(spec.val, &v, Via::Environment)?;
            }
        }
        self.mode = self.mode.or(from_env.mode);
        self.profile = self.profile.take().or(from_env.profile);
        self.nccl_debug = self.nccl_debug.take().or(from_env.nccl_debug);
        self.master_port = self.master_port.or(from_env.master_port);
        Ok(())
    }

    /// The `SLURM_MLENV*` variables that carry these choices on to the steps of a batch
    /// job (Slurm hands sbatch's SPANK options to the batch step only).
    pub fn as_env(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(m) = self.mode {
            out.push((OPT_MODE.env, m.name().to_string()));
        }
        if let Some(p) = &self.profile {
            out.push((OPT_PROFILE.env, p.clone()));
        }
        if let Some(l) = &self.nccl_debug {
            out.push((OPT_NCCL_DEBUG.env, l.clone()));
        }
        if let Some(p) = self.master_port {
            out.push((OPT_MASTER_PORT.env, p.to_string()));
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    CommandLine,
    Environment,
}

#[cfg(test)]
#[path = "tests/options.rs"]
mod tests;
