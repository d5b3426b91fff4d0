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

/// Which of the user's choices an option sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    Mode,
    Profile,
    NcclDebug,
    MasterPort,
}

/// One option, declared once: its command-line name, the variable that can carry it, its
/// SPANK `val`, what `--help` shows, and the choice it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub opt: Opt,
    pub name: &'static str,
    pub c_name: &'static CStr,
    pub arginfo: &'static CStr,
    pub usage: &'static CStr,
    pub env: &'static str,
    pub val: i32,
}

pub const OPT_MODE: OptionSpec = OptionSpec {
    opt: Opt::Mode,
    name: "mlenv",
    c_name: c"mlenv",
    arginfo: c"on|off|fabric-only",
    usage: c"Distributed-training environment in every task (MASTER_ADDR/PORT, RANK, ..., fabric profile): on, off, or fabric-only (no rendezvous or rank variables). Also $SLURM_MLENV.",
    env: "SLURM_MLENV",
    val: 1,
};
pub const OPT_PROFILE: OptionSpec = OptionSpec {
    opt: Opt::Profile,
    name: "mlenv-profile",
    c_name: c"mlenv-profile",
    arginfo: c"NAME",
    usage: c"Fabric profile to apply instead of the one for the node's fabric (e.g. efa-legacy). Also $SLURM_MLENV_PROFILE.",
    env: "SLURM_MLENV_PROFILE",
    val: 2,
};
pub const OPT_NCCL_DEBUG: OptionSpec = OptionSpec {
    opt: Opt::NcclDebug,
    name: "nccl-debug",
    c_name: c"nccl-debug",
    arginfo: c"LEVEL",
    usage:
        c"Set NCCL_DEBUG in every task (VERSION, WARN, INFO, TRACE). Also $SLURM_MLENV_NCCL_DEBUG.",
    env: "SLURM_MLENV_NCCL_DEBUG",
    val: 3,
};
pub const OPT_MASTER_PORT: OptionSpec = OptionSpec {
    opt: Opt::MasterPort,
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
    /// Slurm may pass the same option twice with the same value (srun handles the options
    /// of each het component); a different value is refused, as pyxis does, rather than
    /// silently replacing the first.
    pub fn set(&mut self, val: i32, arg: &str, via: Via) -> Result<(), BadValue> {
        let Some(spec) = ALL.iter().find(|o| o.val == val) else {
            let names: Vec<String> = ALL.iter().map(|o| format!("--{}", o.name)).collect();
            return Err(BadValue(format!(
                "option number {val} is none of mlenv's ({})",
                names.join(", ")
            )));
        };
        let named = |e: BadValue| BadValue(format!("{}: {}", spec.shown(via), e.0));
        match spec.opt {
            Opt::Mode => {
                let m = Mode::parse(arg).map_err(named)?;
                set_once(&mut self.mode, m, |m| m.name().to_string())
            }
            Opt::Profile => set_once(
                &mut self.profile,
                parse_profile(arg).map_err(named)?,
                String::clone,
            ),
            Opt::NcclDebug => set_once(
                &mut self.nccl_debug,
                parse_nccl_debug(arg).map_err(named)?,
                String::clone,
            ),
            Opt::MasterPort => set_once(
                &mut self.master_port,
                parse_master_port(arg).map_err(named)?,
                u16::to_string,
            ),
        }
        .map_err(named)
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

impl OptionSpec {
    /// The option as the user gave it: `--mlenv` or `$SLURM_MLENV`.
    pub fn shown(&self, via: Via) -> String {
        match via {
            Via::CommandLine => format!("--{}", self.name),
            Via::Environment => format!("${}", self.env),
        }
    }
}

/// Stores `new` unless a different value is there already.
fn set_once<T: PartialEq>(
    slot: &mut Option<T>,
    new: T,
    show: impl Fn(&T) -> String,
) -> Result<(), BadValue> {
    match slot {
        Some(old) if *old != new => Err(BadValue(format!(
            "specified multiple times ({:?}, then {:?})",
            show(old),
            show(&new)
        ))),
        _ => {
            *slot = Some(new);
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "tests/options.rs"]
mod tests;
