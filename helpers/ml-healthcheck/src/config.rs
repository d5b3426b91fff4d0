//! `ml-healthcheck.json`: thresholds and paths. Every key is optional (the defaults follow
//! DCGM's health watches); unknown keys and bad values are errors naming the line and the
//! key. The file steers root code, so it is used only when root owns it and nobody else
//! can write it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use trusted_config::json_error;

use crate::evaluate::Check;

pub const FILE_NAME: &str = "ml-healthcheck.json";

/// XIDs that mean the GPU needs a reset or a reboot (or is gone): 48 double-bit ECC, 64 ECC
/// page retirement or row remapping failure, 74 NVLink error, 79 fallen off the bus, 95
/// uncontained ECC error, 119/120 GSP RPC timeout / GSP error, 140 unrecovered ECC error.
pub const DEFAULT_CRITICAL_XIDS: [u32; 8] = [48, 64, 74, 79, 95, 119, 120, 140];

/// `mode`: whether the run acts on Slurm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Drain and resume (the default).
    Enforce,
    /// Shadow mode: findings reported (lines, JSON, textfile, syslog), nothing done in
    /// Slurm; for trying new checks or thresholds on a live cluster.
    Report,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// GPUs this node must have (also `--expect-gpus`). Unset: whatever NVML finds.
    pub expect_gpus: Option<u32>,
    pub critical_xids: Vec<u32>,
    /// Drain when volatile uncorrectable ECC errors exceed this.
    pub ecc_uncorrected_max: u64,
    /// Drain when pages retired for double-bit errors exceed this.
    pub retired_pages_dbe_max: u64,
    /// Drain when retired pages (all causes) reach this (NVIDIA's RMA guidance: 60-64).
    pub retired_pages_limit: u64,
    /// Warn when an NVLink's replay or recovery error counter exceeds this.
    pub nvlink_errors_max: u64,
    /// Drain on an inactive NVLink (false: warn).
    pub nvlink_inactive_drains: bool,
    /// Warn when a PCIe link runs below its maximum width; `pcie_gen` also below its
    /// maximum generation (off by default: idle GPUs lower their link speed to save power).
    pub pcie_width: bool,
    pub pcie_gen: bool,
    /// Warn at or above the GPU's slowdown temperature.
    pub temperature: bool,
    /// Warn when the clocks are held down by hardware (`hw_slowdown`, `hw_thermal_slowdown`,
    /// `hw_power_brake_slowdown`): a failing fan, power supply or board, not the workload.
    pub hw_throttle: bool,
    /// Where the kernel log is read (`/dev/kmsg`; a file of records for replay).
    pub kmsg: PathBuf,
    /// Where the last run's position in the kernel log and the critical XIDs seen since
    /// boot are kept (tmpfs: a reboot forgets them, as it clears the GPUs' state).
    pub state_dir: PathBuf,
    /// Where the reboots asked for are kept across boots (per node, root-only), to bound
    /// them ([`crate::reboots`], `actions.reboot_limit`): a persistent directory, never
    /// tmpfs. Used only when `actions.reboot` reboots.
    pub history_dir: PathBuf,
    /// `scontrol`; unset: looked up on PATH, then in Slurm's usual places (slurmd runs the
    /// health check with no PATH).
    pub scontrol: Option<PathBuf>,
    /// `"enforce"` or `"report"` (shadow: nothing done in Slurm).
    pub mode: Enforcement,
    /// While this file exists every run is report-only, whatever `mode` says: one `touch`
    /// stops every drain and resume of the fleet. Keep it in a directory only root can
    /// write: whoever can create it can stop the health checks.
    pub killswitch: PathBuf,
    /// Circuit breaker: a new drain is held (logged and exported, not done) once this many
    /// nodes carry our drain. Unset: only `breaker_max_percent` counts.
    pub breaker_max_nodes: Option<u32>,
    /// ... or this percentage of the cluster's nodes (rounded down; never below one node).
    pub breaker_max_percent: u32,
    /// dcgm-exporter's `--hpc-job-mapping-dir` (e.g. `/run/dcgm-job-map`): the prolog
    /// writes the job's id into one file per GPU, the epilog removes it. Unset: off.
    pub hpc_job_mapping_dir: Option<PathBuf>,
    /// Where sysfs is (`/sys`): PCIe AER counters under `bus/pci/devices`, InfiniBand and
    /// EFA ports under `class/infiniband`. A fixture tree for tests and replays.
    pub sysfs_root: PathBuf,
    /// Warn when a GPU's or fabric NIC's correctable PCIe errors grow faster than this
    /// per hour (counted over at least an hour: a short window is not a rate).
    pub aer_correctable_per_hour: u64,
    /// InfiniBand devices (with an InfiniBand port) this node must have; fewer drain.
    pub ib_devices: Option<u32>,
    /// EFA devices this node must have; fewer drain.
    pub efa_devices: Option<u32>,
    /// The rate an InfiniBand port must run at, in Gb/s (`400` for NDR); below drains.
    pub ib_rate_gbps: Option<u32>,
    /// Warn when an InfiniBand port's `link_downed` grows by more than this between two
    /// health checks.
    pub ib_link_downed_max: u64,
    /// Warn when an InfiniBand port's `symbol_error` or `port_rcv_errors` grows by more
    /// than this between two health checks.
    pub ib_errors_max: u64,
    /// What the platform does for a node that needs a reboot or new hardware
    /// ([`crate::repair`]): `{"reboot": "drain" | "reboot" | "hyperpod", "replace": "drain" |
    /// "hyperpod"}`; drain only by default.
    pub actions: crate::repair::Actions,
    /// Checks that drain only after this many consecutive failing runs (`{"nvlink": 3}`),
    /// counted in the state file ([`crate::hysteresis`]).
    pub fail_after: BTreeMap<Check, u32>,
    /// How long the health check waits for the GPU source (NVML) before its checks are
    /// UNKNOWN and the run goes on ([`crate::deadline`]).
    pub deadline_ms: u64,
    /// The same in the prolog and the epilog, shorter: a stuck driver must not hold a job.
    pub job_deadline_ms: u64,
    /// `ml-healthcheck active`: suites run as Slurm jobs on idle nodes
    /// ([`crate::active::ActiveConfig`]). Unset: `active` refuses to run.
    pub active: Option<crate::active::ActiveConfig>,
}

pub const DEFAULT_KILLSWITCH: &str = "/etc/slurm/ml-healthcheck.disable";

impl Default for Config {
    fn default() -> Self {
        Config {
            expect_gpus: None,
            critical_xids: DEFAULT_CRITICAL_XIDS.to_vec(),
            ecc_uncorrected_max: 0,
            retired_pages_dbe_max: 0,
            retired_pages_limit: 63,
            nvlink_errors_max: 0,
            nvlink_inactive_drains: true,
            pcie_width: true,
            pcie_gen: false,
            temperature: true,
            hw_throttle: true,
            kmsg: PathBuf::from("/dev/kmsg"),
            state_dir: PathBuf::from("/run/ml-healthcheck"),
            history_dir: PathBuf::from("/var/lib/ml-healthcheck"),
            scontrol: None,
            mode: Enforcement::Enforce,
            killswitch: PathBuf::from(DEFAULT_KILLSWITCH),
            breaker_max_nodes: None,
            breaker_max_percent: 10,
            hpc_job_mapping_dir: None,
            sysfs_root: PathBuf::from("/sys"),
            aer_correctable_per_hour: 100,
            ib_devices: None,
            efa_devices: None,
            ib_rate_gbps: None,
            ib_link_downed_max: 0,
            ib_errors_max: 10,
            actions: crate::repair::Actions::default(),
            fail_after: BTreeMap::new(),
            deadline_ms: 20_000,
            job_deadline_ms: 5_000,
            active: None,
        }
    }
}

impl Config {
    pub fn parse(text: &str, origin: &str) -> Result<Config, String> {
        let c: Config = serde_json::from_str(text).map_err(|e| json_error(origin, &e))?;
        if c.retired_pages_limit == 0 {
            return Err(format!(
                "{origin}: retired_pages_limit must be at least 1 (0 would drain every GPU)"
            ));
        }
        if c.breaker_max_percent > 100 {
            return Err(format!(
                "{origin}: breaker_max_percent must be 0 to 100 (got {})",
                c.breaker_max_percent
            ));
        }
        if c.hpc_job_mapping_dir
            .as_ref()
            .is_some_and(|d| !d.is_absolute())
        {
            return Err(format!(
                "{origin}: hpc_job_mapping_dir must be an absolute path"
            ));
        }
        if c.breaker_max_nodes == Some(0) {
            return Err(format!(
                "{origin}: breaker_max_nodes must be at least 1 (one bad node can always be drained; use mode = \"report\" to drain none)"
            ));
        }
        if let Some((check, _)) = c.fail_after.iter().find(|(_, n)| **n == 0) {
            return Err(format!(
                "{origin}: fail_after.{} must be at least 1 (1: the first failing run drains)",
                check.name()
            ));
        }
        if let Some(check) = c
            .fail_after
            .keys()
            .find(|k| matches!(k, Check::DcgmDiag | Check::Nccl))
        {
            return Err(format!(
                "{origin}: fail_after.{}: the active checks count no runs (each run of `ml-healthcheck active` judges its suites afresh): remove it",
                check.name()
            ));
        }
        if c.actions.reboot_limit == 0 || c.actions.reboot_window_hours == 0 {
            return Err(format!(
                "{origin}: actions.reboot_limit and actions.reboot_window_hours must be at least 1 (to reboot never, set actions.reboot to \"drain\")"
            ));
        }
        if !c.history_dir.is_absolute() {
            return Err(format!("{origin}: history_dir must be an absolute path"));
        }
        if c.deadline_ms == 0 || c.job_deadline_ms == 0 {
            return Err(format!(
                "{origin}: deadline_ms and job_deadline_ms must be at least 1"
            ));
        }
        if let Some(a) = &c.active {
            a.validate(origin)?;
        }
        Ok(c)
    }

    /// The GPU source's deadline in `mode`.
    pub fn deadline(&self, mode: crate::evaluate::Mode) -> std::time::Duration {
        std::time::Duration::from_millis(match mode {
            crate::evaluate::Mode::HealthCheck => self.deadline_ms,
            _ => self.job_deadline_ms,
        })
    }

    /// `--config FILE` (must exist), else `ml-healthcheck.json` next to `slurm_conf`, else
    /// in /etc/slurm; none there means the built-in defaults.
    pub fn load(explicit: Option<&Path>, slurm_conf: Option<&Path>) -> Result<Config, String> {
        if let Some(p) = explicit {
            return Config::parse(&trusted_config::read(p)?, &p.display().to_string());
        }
        match trusted_config::beside_slurm_conf(FILE_NAME, slurm_conf, Path::exists) {
            Some(p) => Config::parse(&trusted_config::read(&p)?, &p.display().to_string()),
            None => Ok(Config::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_optional() {
        assert_eq!(Config::parse("{}", "c").unwrap(), Config::default());
        let c = Config::parse(
            "{\"expect_gpus\": 8, \"critical_xids\": [79], \"pcie_gen\": true}",
            "c",
        )
        .unwrap();
        assert_eq!(c.expect_gpus, Some(8));
        assert_eq!(c.critical_xids, vec![79]);
        assert!(c.pcie_gen);
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let e = Config::parse(
            "{\n  \"expect_gpu\": 8\n}",
            "/etc/slurm/ml-healthcheck.json",
        )
        .unwrap_err();
        assert!(
            e.starts_with("/etc/slurm/ml-healthcheck.json: line 2, column "),
            "{e}"
        );
        assert!(e.contains("unknown field `expect_gpu`"), "{e}");
        let e = Config::parse("{\"expect_gpus\": -1}", "c").unwrap_err();
        assert!(e.contains("invalid value"), "{e}");
        let e = Config::parse("{\"retired_pages_limit\": 0}", "c").unwrap_err();
        assert!(e.contains("retired_pages_limit"), "{e}");
        let e = Config::parse("{\"breaker_max_percent\": 101}", "c").unwrap_err();
        assert!(e.contains("breaker_max_percent must be 0 to 100"), "{e}");
        let e = Config::parse("{\"breaker_max_nodes\": 0}", "c").unwrap_err();
        assert!(e.contains("breaker_max_nodes must be at least 1"), "{e}");
        let e = Config::parse("{\"mode\": \"shadow\"}", "c").unwrap_err();
        assert!(e.contains("unknown variant `shadow`"), "{e}");
        let c = Config::parse("{\"mode\": \"report\", \"breaker_max_nodes\": 4}", "c").unwrap();
        assert_eq!(c.mode, Enforcement::Report);
        assert_eq!(c.breaker_max_nodes, Some(4));
    }

    #[test]
    fn actions_fail_after_and_deadlines() {
        use crate::repair::{RebootBy, ReplaceBy};
        let c = Config::parse(
            "{\"actions\": {\"reboot\": \"reboot\", \"replace\": \"hyperpod\"}, \"fail_after\": {\"nvlink\": 3, \"temperature\": 2}, \"job_deadline_ms\": 1000}",
            "c",
        )
        .unwrap();
        assert_eq!(c.actions.reboot, RebootBy::Reboot);
        assert_eq!(c.actions.replace, ReplaceBy::Hyperpod);
        assert_eq!(c.fail_after.get(&Check::Nvlink), Some(&3));
        assert_eq!(c.fail_after.get(&Check::Temperature), Some(&2));
        assert_eq!(
            c.deadline(crate::evaluate::Mode::Prolog),
            std::time::Duration::from_millis(1000)
        );
        assert_eq!(
            c.deadline(crate::evaluate::Mode::HealthCheck),
            std::time::Duration::from_millis(20_000)
        );
        let e = Config::parse("{\"actions\": {\"replace\": \"reboot\"}}", "c").unwrap_err();
        assert!(
            e.contains("unknown variant `reboot`, expected `drain` or `hyperpod`"),
            "{e}"
        );
        let e = Config::parse("{\"fail_after\": {\"nvlinks\": 3}}", "c").unwrap_err();
        assert!(e.contains("unknown variant `nvlinks`"), "{e}");
        let e = Config::parse("{\"fail_after\": {\"ecc\": 0}}", "c").unwrap_err();
        assert!(e.contains("fail_after.ecc must be at least 1"), "{e}");
        // `active` counts no runs: a key for its checks would be read and do nothing.
        for check in ["dcgm-diag", "nccl"] {
            let e =
                Config::parse(&format!("{{\"fail_after\": {{\"{check}\": 2}}}}"), "c").unwrap_err();
            assert_eq!(
                e,
                format!("c: fail_after.{check}: the active checks count no runs (each run of `ml-healthcheck active` judges its suites afresh): remove it")
            );
        }
        let c = Config::parse(
            "{\"actions\": {\"reboot\": \"hyperpod\", \"reboot_limit\": 2, \"reboot_window_hours\": 6}, \"history_dir\": \"/var/lib/mlh\"}",
            "c",
        )
        .unwrap();
        assert_eq!(
            (c.actions.reboot_limit, c.actions.reboot_window_hours),
            (2, 6)
        );
        assert_eq!(c.history_dir, PathBuf::from("/var/lib/mlh"));
        assert_eq!(
            Config::default().actions.reboot_bound(),
            None,
            "drain only: nothing to bound"
        );
        assert_eq!(
            c.actions.reboot_bound(),
            Some(crate::reboots::Limit {
                limit: 2,
                window_secs: 6 * 3600
            })
        );
        let e = Config::parse("{\"actions\": {\"reboot_limit\": 0}}", "c").unwrap_err();
        assert_eq!(e, "c: actions.reboot_limit and actions.reboot_window_hours must be at least 1 (to reboot never, set actions.reboot to \"drain\")");
        let e = Config::parse("{\"history_dir\": \"var/lib\"}", "c").unwrap_err();
        assert_eq!(e, "c: history_dir must be an absolute path");
        let e = Config::parse("{\"deadline_ms\": 0}", "c").unwrap_err();
        assert!(
            e.contains("deadline_ms and job_deadline_ms must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../../conf-examples/ml-healthcheck.json");
        Config::parse(text, "conf-examples/ml-healthcheck.json").unwrap();
    }
}
