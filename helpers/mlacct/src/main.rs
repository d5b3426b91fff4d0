//! `mlacct`: reads slurmdbd's job records and slurmctld's association usage through
//! libslurm (`slurm_plugin::slurmdb`), the accounting domains from mlpolicy.json, and
//! prints usage per domain, account and user (see `mlacct --help`). The arithmetic is in
//! the library (`mlacct::report`); this file only gathers and hands over plain values.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mlacct::cli::{self, Format};
use mlacct::render::{self, Heading};
use mlacct::report::{self, AssocBilling, Job, Period};
use mlpolicy::domains::Accounting;
use slurm_plugin::slurmdb::{self, Connection, DbError, JobQuery, JobRecord, Tres};

/// How mlacct ends when it cannot finish.
enum Failure {
    /// Bad arguments, policy or data: exit 1.
    Input(String),
    /// slurmdbd or slurmctld cannot be reached: exit 2.
    Unreachable(DbError),
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Argument(m) => Failure::Input(m),
            e => Failure::Unreachable(e),
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match cli::parse(&argv) {
        Ok(a) if a.help => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(a) => a,
        Err(e) => {
            eprintln!("mlacct: {e} (mlacct --help)");
            return ExitCode::from(1);
        }
    };
    match run(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Input(e)) => {
            eprintln!("mlacct: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Unreachable(e)) => {
            eprintln!("mlacct: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &cli::Args) -> Result<String, Failure> {
    // libslurm waits a minute for a missing slurm.conf, then exits: say it at once.
    if let Some(conf) = std::env::var_os("SLURM_CONF").filter(|c| !c.is_empty()) {
        if !Path::new(&conf).is_file() {
            return Err(Failure::Input(format!(
                "SLURM_CONF={} is not a file",
                Path::new(&conf).display()
            )));
        }
    }
    slurmdb::init_client();
    let now = now();
    let time = |opt: &str, v: &str| {
        slurmdb::parse_time(v)
            .ok_or_else(|| Failure::Input(format!("{opt}: Slurm cannot read {v:?} as a time")))
    };
    let period = Period {
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
    };
    if period.since >= period.until {
        return Err(Failure::Input(format!(
            "--since {} is not before --until {}",
            slurmdb::format_time(period.since),
            slurmdb::format_time(period.until)
        )));
    }
    let accounting = load_accounting(args.policy.as_deref())?;
    let cluster = slurm_plugin::conf::cluster_name().unwrap_or_default();
    let conn = Connection::open()?;
    let tres = conn.tres()?;
    let records = conn.jobs(&JobQuery {
        clusters: vec![cluster.clone()]
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect(),
        since: period.since,
        until: period.until,
        truncate: true,
    })?;
    drop(conn);
    let ids = TresIds::of(&tres);
    let jobs = records
        .iter()
        .map(|r| ids.job(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::Input)?;
    let rows = report::tally(&jobs, &accounting, &period, now, &args.filters);
    // CSV has no budgets: slurmctld is not asked, so it serves while slurmctld is down.
    let budgets =
        if args.format != Format::Csv && accounting.domains.values().any(|d| d.tags_account()) {
            report::budgets(&billing_limits()?, &accounting, &args.filters)
        } else {
            Vec::new()
        };
    let heading = Heading {
        cluster,
        since: slurmdb::format_time(period.since),
        until: slurmdb::format_time(period.until.min(now)),
        currency: accounting.currency.clone(),
    };
    Ok(match args.format {
        Format::Table => render::table(&heading, &rows, &budgets),
        Format::Csv => render::csv(&heading, &rows),
        Format::Json => render::json(&heading, &rows, &budgets),
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The `accounting` section of the policy: `--policy`, else mlpolicy.json beside the
/// slurm.conf in use, loaded as slurmctld's plugin loads it (root-owned, not writable by
/// others; any user may read it). No file found: every partition is `onprem`, unpriced.
fn load_accounting(given: Option<&Path>) -> Result<Accounting, Failure> {
    let slurm_conf =
        slurm_plugin::conf::path().or_else(|| std::env::var_os("SLURM_CONF").map(PathBuf::from));
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => match trusted_config::beside_slurm_conf(
            "mlpolicy.json",
            slurm_conf.as_deref(),
            Path::exists,
        ) {
            Some(p) => p,
            None => {
                eprintln!("mlacct: no mlpolicy.json beside slurm.conf: every partition is onprem, no prices (--policy FILE)");
                return Ok(Accounting::default());
            }
        },
    };
    let (policy, _) = mlpolicy::config::load_file(&path).map_err(Failure::Input)?;
    Ok(policy.accounting.unwrap_or_default())
}

/// The TRES ids of the cluster's table that the report counts.
struct TresIds {
    cpu: Option<u32>,
    gpu: Option<u32>,
    billing: Option<u32>,
}

impl TresIds {
    fn of(tres: &[Tres]) -> TresIds {
        let id = |name: &str| tres.iter().find(|t| t.name == name).map(|t| t.id);
        TresIds {
            cpu: id("cpu"),
            gpu: id("gres/gpu"),
            billing: id("billing"),
        }
    }

    fn job(&self, r: &JobRecord) -> Result<Job, String> {
        let count = |id: Option<u32>| match id {
            Some(id) => {
                mlacct::tres::count(&r.tres_alloc, id).map_err(|e| format!("job {}: {e}", r.job_id))
            }
            None => Ok(0),
        };
        Ok(Job {
            partition: r.partition.clone(),
            account: r.account.clone(),
            user: r.user.clone(),
            start: r.start,
            end: r.end,
            elapsed: r.elapsed,
            allocated: !r.tres_alloc.is_empty(),
            cpus: count(self.cpu)?,
            gpus: count(self.gpu)?,
            billing: count(self.billing)?,
        })
    }
}

/// Every account association's `GrpTRESMins=billing` and billing usage, from slurmctld.
fn billing_limits() -> Result<Vec<AssocBilling>, Failure> {
    let assocs = slurmdb::assoc_usage(&[])?;
    Ok(assocs
        .into_iter()
        .filter(|a| a.user.is_empty() && a.partition.is_empty())
        .filter_map(|a| {
            let billing = a.tres.iter().find(|t| t.name == "billing")?;
            Some(AssocBilling {
                account: a.account.clone(),
                limit_mins: billing.grp_mins,
                used_secs: billing.usage_raw_secs,
            })
        })
        .collect())
}
