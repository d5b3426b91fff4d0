//! `ml-healthcheck` command line. slurmd runs it as `HealthCheckProgram=` (environment:
//! `SLURMD_NODENAME` only), `Prolog=` and `Epilog=` (`SLURM_SCRIPT_CONTEXT`,
//! `SLURMD_NODENAME`, `SLURM_CONF`, `SLURM_JOB_GPUS`, `SLURM_JOB_START_TIME` from 23.11).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use ml_healthcheck::active_run;
use ml_healthcheck::config::Config;
use ml_healthcheck::evaluate::Mode;
use ml_healthcheck::gather::{GpuSource, NvmlSource, SnapshotFile};
use ml_healthcheck::jobmap::{self, MappingDir, Op};
use ml_healthcheck::report;
use ml_healthcheck::run::{self, Job};
use node_log::env;

const USAGE: &str = "usage: ml-healthcheck [--mode health-check|prolog|epilog] [--node NAME]
                      [--config FILE] [--expect-gpus N] [--snapshot FILE]
                      [--save-snapshot FILE] [--json] [--textfile DIR] [--dry-run]
                      [--no-slurm] [--forget-xids]
       ml-healthcheck active [--config FILE] [--json] [--textfile DIR] [--dry-run]

Checks the node's NVIDIA GPUs through NVML (GPU count, lost GPUs, ECC, retired pages,
row remapping, critical XIDs in the kernel log, PCIe links, NVLinks, temperature, and in
the prolog processes already on the job's GPUs), and from the kernel log and sysfs the
NVSwitch SXids, GPUs fallen off the bus, PCIe AER counters of the GPUs and fabric NICs,
and the InfiniBand/EFA devices and ports (ib_devices, efa_devices, ib_rate_gbps). A
problem drains the node in Slurm with a reason starting 'mlhealth:'; the health check
resumes it once every check the reason names has been made again and passes (busy GPUs:
on a node without jobs). Another drain (an
admin's) is never changed. As Prolog it exits 1 on a problem so the job goes elsewhere;
as HealthCheckProgram and Epilog it exits 0. Fleet safety: with mode = report in the
config, or while the killswitch file exists, nothing is done in Slurm (what would be done
is printed); a new drain is held while breaker_max_percent / breaker_max_nodes of the
cluster's nodes carry our drain (the circuit breaker).

Each finding names its repair (monitor, reset-gpu, reboot, replace; NVML's GPU recovery
action wins over the XID table), and the drain reason tags it ('mlhealth: gpu2 xid79
[reboot]'). actions.reboot = reboot also runs 'scontrol reboot NODE' after a new drain;
hyperpod fails the node with Reason=Action:Reboot or Action:Replace instead. A check that
could not run (the GPU source past deadline_ms / job_deadline_ms, an unreadable kernel
log) is UNKNOWN: reported, never draining, never lifting a drain. fail_after drains a
check only on its Nth failing health check in a row (prologs and epilogs do not count).

The mode comes from SLURM_SCRIPT_CONTEXT (prolog_slurmd, epilog_slurmd), else
health-check; the node from SLURMD_NODENAME. Settings: --config FILE, else
ml-healthcheck.json next to $SLURM_CONF, else /etc/slurm/ml-healthcheck.json (optional;
root-owned, not writable by others).
  --snapshot FILE       judge a saved snapshot instead of asking NVML
  --save-snapshot FILE  also write what NVML said, to replay it later
  --json                print the run as JSON instead of lines
  --textfile DIR        write ml_healthcheck_<node>.prom for node_exporter
  --dry-run             change nothing in Slurm and keep no state
  --no-slurm            judge and report only, ask Slurm nothing (implies --dry-run)
  --forget-xids         forget the critical XIDs seen since boot (after a GPU reset
                        without a reboot; they otherwise keep the node drained)

Active checks ('ml-healthcheck active', run by an admin or a timer on a login or
controller node): the config's active section names a hidden partition or a reservation,
the nodes (\"idle\" or a hostlist), a results_dir the nodes share, and the suites:
dcgm-diag (dcgmi diag -r 1|2 --json) and nccl (all_reduce_perf -b 8 -e 8G -f 2 -g N,
judged on the largest size's bus bandwidth against expected_busbw_gbps per GPU model).
One job per idle node (sbatch -w NODE --exclusive), each suite under its timeout_s. A
failed test drains ('mlhealth: gpu2 dcgm-diag pcie [replace]', 'mlhealth: nccl busbw
180<350 [reboot]'); slow = warn only warns; a crash or a hang is UNKNOWN and changes
nothing. A node drained by an active check is retested inside a reservation of its own
(mlhealth_NODE) and resumed when its suites pass; a run killed meanwhile leaves the
reservation, and the next run drains the node again and retests it. results_dir and the
directories above it must be writable only by root or the user running it (or sticky).
The killswitch, report mode and the circuit breaker hold its drains as they hold the
health check's; --dry-run changes nothing in Slurm (the suites still run).";

#[derive(Default)]
struct Args {
    mode: Option<Mode>,
    node: Option<String>,
    config: Option<PathBuf>,
    expect_gpus: Option<u32>,
    snapshot: Option<PathBuf>,
    save_snapshot: Option<PathBuf>,
    json: bool,
    textfile: Option<PathBuf>,
    dry_run: bool,
    no_slurm: bool,
    forget_xids: bool,
}

fn parse_mode(v: &str) -> Result<Mode, String> {
    match v {
        "health-check" | "health" => Ok(Mode::HealthCheck),
        "prolog" | "prolog_slurmd" => Ok(Mode::Prolog),
        "epilog" | "epilog_slurmd" => Ok(Mode::Epilog),
        _ => Err(format!(
            "unknown mode {v:?}: use health-check, prolog or epilog"
        )),
    }
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--mode" => a.mode = Some(parse_mode(&value()?)?),
            "--node" => a.node = Some(value()?),
            "--config" => a.config = Some(PathBuf::from(value()?)),
            "--expect-gpus" => {
                a.expect_gpus = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--expect-gpus takes a number".to_string())?,
                )
            }
            "--snapshot" => a.snapshot = Some(PathBuf::from(value()?)),
            "--save-snapshot" => a.save_snapshot = Some(PathBuf::from(value()?)),
            "--json" => a.json = true,
            "--textfile" => a.textfile = Some(PathBuf::from(value()?)),
            "--dry-run" | "-n" => a.dry_run = true,
            "--forget-xids" => a.forget_xids = true,
            "--no-slurm" => {
                a.no_slurm = true;
                a.dry_run = true;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().split('.').next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty())
}

/// A source that also saves what it gathered.
struct Saving {
    inner: Box<dyn GpuSource + Send>,
    to: PathBuf,
}

impl GpuSource for Saving {
    fn snapshot(&self) -> Result<ml_healthcheck::snapshot::Snapshot, String> {
        let s = self.inner.snapshot()?;
        std::fs::write(&self.to, s.to_json() + "\n")
            .map_err(|e| format!("{}: {e}", self.to.display()))?;
        Ok(s)
    }
}

/// dcgm-exporter's job mapping for this job (`SLURM_JOB_ID`, `SLURM_JOB_GPUS`, which
/// slurmd sets in the prolog and the epilog); what went wrong, if anything. A failure here
/// never fails the slot: the metrics lose their job label, the job is unharmed.
fn map_job(dir: &std::path::Path, op: Op) -> Vec<String> {
    let Some(job) = env("SLURM_JOB_ID").filter(|j| jobmap::valid_job_id(j)) else {
        return vec!["no valid SLURM_JOB_ID: dcgm-exporter's job mapping not changed".into()];
    };
    let gpus = match env("SLURM_JOB_GPUS").map(|v| run::parse_job_gpus(&v)) {
        None => return Vec::new(),
        Some(Err(e)) => return vec![e],
        Some(Ok(g)) => g,
    };
    if gpus.is_empty() {
        return Vec::new();
    }
    let map = match MappingDir::open(dir) {
        Ok(m) => m,
        Err(e) => return vec![format!("dcgm-exporter's job mapping: {e}")],
    };
    map.apply(op, &job, &gpus)
        .into_iter()
        .filter_map(|(gpu, r)| r.err().map(|e| format!("job {job} gpu{gpu}: {e}")))
        .collect()
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("ml-healthcheck: error: {msg}");
    ExitCode::from(2)
}

/// `ml-healthcheck active ...`.
fn active_main(args: &[String]) -> ExitCode {
    let (mut config, mut json, mut textfile, mut dry_run) = (None, false, None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => match it.next() {
                Some(v) => config = Some(PathBuf::from(v)),
                None => return fail("--config needs a value"),
            },
            "--textfile" => match it.next() {
                Some(v) => textfile = Some(PathBuf::from(v)),
                None => return fail("--textfile needs a value"),
            },
            "--json" => json = true,
            "--dry-run" | "-n" => dry_run = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return fail(&format!("active: unknown argument {other:?}")),
        }
    }
    let slurm_conf = env("SLURM_CONF").map(PathBuf::from);
    let cfg = match Config::load(config.as_deref(), slurm_conf.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let opts = active_run::Opts {
        slurm_conf,
        dry_run,
        poll: std::time::Duration::from_millis(500),
    };
    let r = match active_run::run(&cfg, &opts) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if json {
        println!("{}", r.json());
    } else {
        for line in r.human() {
            println!("{line}");
        }
    }
    for line in r
        .human()
        .iter()
        .filter(|l| l.contains(": active checks: ") && !l.ends_with(": passed"))
    {
        node_log::syslog("ml-healthcheck", libc::LOG_WARNING, line);
    }
    let mut code = u8::from(!r.errors.is_empty());
    if let Some(dir) = &textfile {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if let Err(e) = r.write_textfile(dir, now) {
            eprintln!("ml-healthcheck: active: error: {e}");
            code = 2;
        }
    }
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("active") {
        return active_main(&argv[1..]);
    }
    let args = match node_log::parse_command_line("ml-healthcheck", USAGE, parse_args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mode = match (args.mode, env("SLURM_SCRIPT_CONTEXT")) {
        (Some(m), _) => m,
        (None, Some(ctx)) => parse_mode(&ctx).unwrap_or(Mode::HealthCheck),
        (None, None) => Mode::HealthCheck,
    };
    let Some(node) = args
        .node
        .or_else(|| env("SLURMD_NODENAME"))
        .or_else(hostname)
    else {
        return fail("no node name: set --node or SLURMD_NODENAME");
    };
    let slurm_conf = env("SLURM_CONF").map(PathBuf::from);
    let cfg = match Config::load(args.config.as_deref(), slurm_conf.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let job_gpus = match mode {
        Mode::Prolog => match env("SLURM_JOB_GPUS").map(|v| run::parse_job_gpus(&v)) {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => return fail(&e),
            None => Some(Vec::new()),
        },
        _ => None,
    };
    let job = Job {
        mode,
        node,
        expect_gpus: args.expect_gpus,
        job_gpus,
        job_start: env("SLURM_JOB_START_TIME").and_then(|v| v.parse().ok()),
        slurm_conf,
        dry_run: args.dry_run,
        no_slurm: args.no_slurm,
        forget_xids: args.forget_xids,
    };
    let mut source: Box<dyn GpuSource + Send> = match &args.snapshot {
        Some(p) => Box::new(SnapshotFile(p.clone())),
        None => Box::new(NvmlSource),
    };
    if let Some(to) = args.save_snapshot {
        source = Box::new(Saving { inner: source, to });
    }
    let outcome = match run::run(&job, &cfg, source) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let r = &outcome.report;
    if args.json {
        println!("{}", r.json());
    } else {
        for line in r.human() {
            println!("{line}");
        }
    }
    let mut code = outcome.exit_code();
    for e in &outcome.errors {
        eprintln!("ml-healthcheck: {}: error: {e}", r.node);
        node_log::syslog("ml-healthcheck", libc::LOG_ERR, &format!("{}: {e}", r.node));
    }
    if !args.dry_run {
        if let Some(dir) = &cfg.hpc_job_mapping_dir {
            // The prolog maps the job only when it lets the job run.
            let op = match mode {
                Mode::Prolog if code == 0 => Some(Op::Add),
                Mode::Epilog => Some(Op::Remove),
                _ => None,
            };
            if let Some(op) = op {
                for e in map_job(dir, op) {
                    eprintln!("ml-healthcheck: {}: warning: {e}", r.node);
                    node_log::syslog(
                        "ml-healthcheck",
                        libc::LOG_WARNING,
                        &format!("{}: {e}", r.node),
                    );
                }
            }
        }
    }
    if let Some((priority, line)) = r.syslog() {
        node_log::syslog("ml-healthcheck", priority, &line);
    }
    if let Some(dir) = &args.textfile {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if let Err(e) = report::write_textfile(dir, &r.node, &r.prometheus(now)) {
            eprintln!("ml-healthcheck: {}: error: {e}", r.node);
            code = code.max(2);
        }
    }
    ExitCode::from(code)
}
