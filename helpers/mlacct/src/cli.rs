//! The command line of `mlacct`.

use std::path::PathBuf;

use crate::report::Filters;

pub const USAGE: &str = "\
usage: mlacct [--since TIME] [--until TIME] [--policy FILE] [--account A[,A..]]
              [--user U[,U..]] [--domain D[,D..]] [--csv | --json]

Usage per accounting domain, account and user over a period, read from slurmdbd (job
records, cut to the period as `sacct --truncate`; running jobs count until now) and from
slurmctld (the budget left of shadow accounts with GrpTRESMins=billing=N).

  --since TIME    start of the period (default: today, 00:00), in Slurm's time formats:
                  YYYY-MM-DD[THH:MM[:SS]], now[-N{minutes,hours,days,weeks}], today,
                  midnight, noon, MMDDYY, HH:MM ...
  --until TIME    end of the period (default: now), same formats
  --policy FILE   mlpolicy.json with the `accounting` domains (default: mlpolicy.json
                  beside the slurm.conf in use, else /etc/slurm/mlpolicy.json)
  --account LIST  only these accounts (a parent account matches its shadow accounts)
  --user LIST     only these users
  --domain LIST   only these domains
  --csv           one CSV row per domain, account and user
  --json          the rows and budgets as JSON
  -h, --help      this text

A job's domain is the domain of the partition it ran in (partitions in no domain are
`onprem`). Billing units are the billing TRES (TRESBillingWeights) times hours; cost is
billing units times the domain's cost_per_billing_hour.
Exit status: 0 done, 1 bad arguments or policy, 2 slurmdbd or slurmctld unreachable
(--csv needs slurmdbd only).";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub since: String,
    pub until: String,
    pub policy: Option<PathBuf>,
    pub filters: Filters,
    pub format: Format,
    pub help: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            since: "today".into(),
            until: "now".into(),
            policy: None,
            filters: Filters::default(),
            format: Format::Table,
            help: false,
        }
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Reads `--opt VALUE` and `--opt=VALUE`.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--since" | "-S" => a.since = value()?,
            "--until" | "-E" => a.until = value()?,
            "--policy" => a.policy = Some(PathBuf::from(value()?)),
            "--account" | "-A" => a.filters.accounts.extend(list(&value()?)),
            "--user" | "-u" => a.filters.users.extend(list(&value()?)),
            "--domain" => a.filters.domains.extend(list(&value()?)),
            "--csv" | "--json" if a.format != Format::Table => {
                return Err("--csv and --json exclude each other".into())
            }
            "--csv" => a.format = Format::Csv,
            "--json" => a.format = Format::Json,
            "-h" | "--help" => a.help = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_and_defaults() {
        assert_eq!(p(&[]).unwrap(), Args::default());
        let a = p(&[
            "--since=2026-12-01T10:00",
            "--until",
            "now",
            "--account",
            "proj,vision",
            "-A",
            "x",
            "--user=alice",
            "--domain",
            "cloud",
            "--csv",
            "--policy",
            "/etc/slurm/mlpolicy.json",
        ])
        .unwrap();
        assert_eq!(a.since, "2026-12-01T10:00");
        assert_eq!(a.until, "now");
        assert_eq!(a.filters.accounts, ["proj", "vision", "x"]);
        assert_eq!(a.filters.users, ["alice"]);
        assert_eq!(a.filters.domains, ["cloud"]);
        assert_eq!(a.format, Format::Csv);
        assert_eq!(
            a.policy.as_deref(),
            Some(std::path::Path::new("/etc/slurm/mlpolicy.json"))
        );
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(p(&["--since"]).unwrap_err(), "--since needs a value");
        assert_eq!(p(&["--bogus"]).unwrap_err(), "unknown argument \"--bogus\"");
        assert_eq!(
            p(&["--csv", "--json"]).unwrap_err(),
            "--csv and --json exclude each other"
        );
        assert!(p(&["-h"]).unwrap().help);
    }
}
