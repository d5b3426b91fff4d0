//! `mlpolicy validate FILE`: loads a site policy exactly as the job_submit plugin does
//! (same owner and mode check, parser and rules, admin user names resolved on this host),
//! so an admin can check it before `scontrol reconfigure`. When the policy names admin
//! accounts, it also says whether slurmctld will honour them, as the plugin logs it at
//! load: only where slurm.conf enforces associations. Exit 0 when it is usable, 1 with the
//! reason when not, 2 on a usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mlpolicy::config::{self, Kind};

const USAGE: &str = "usage: mlpolicy validate FILE";

fn validate(path: &str) -> Result<String, String> {
    let (p, _) = config::load_file(Path::new(path))?;
    let parts: Vec<String> = p
        .partitions
        .iter()
        .map(|(name, r)| match r.kind {
            Some(Kind::Gpu) => format!("{name} (gpu)"),
            Some(Kind::Cpu) => format!("{name} (cpu)"),
            None => name.clone(),
        })
        .collect();
    let mut summary = format!(
        "{path}: ok: {} partition rule set(s): {}; default partitions: gpu {}, cpu {}; {} admin uid(s), {} admin account(s)",
        parts.len(),
        parts.join(", "),
        p.default_gpu_partition.as_deref().unwrap_or("(none)"),
        p.default_cpu_partition.as_deref().unwrap_or("(none)"),
        p.admins.uids.len(),
        p.admins.accounts.len()
    );
    if !p.admins.accounts.is_empty() {
        summary.push('\n');
        summary.push_str(&accounts_line(&slurm_conf_for(Path::new(path))));
    }
    Ok(summary)
}

/// The slurm.conf whose slurmctld would load this policy: `$SLURM_CONF` when set (as for
/// every Slurm command), else the one beside the policy (the plugin reads the policy beside
/// slurm.conf), else /etc/slurm/slurm.conf.
fn slurm_conf_for(policy: &Path) -> PathBuf {
    if let Some(c) = std::env::var_os("SLURM_CONF").filter(|c| !c.is_empty()) {
        return PathBuf::from(c);
    }
    policy
        .parent()
        .map(|d| d.join("slurm.conf"))
        .filter(|c| c.is_file())
        .unwrap_or_else(|| Path::new("/etc/slurm/slurm.conf").to_path_buf())
}

/// The plugin's load-time line about `admins.accounts`, for `slurm_conf`.
fn accounts_line(slurm_conf: &Path) -> String {
    let at = slurm_conf.display();
    let unknown = |why: String| {
        format!("admins.accounts: cannot tell whether slurmctld honours them ({why}): only with AccountingStorageEnforce=associations")
    };
    let text = match std::fs::read_to_string(slurm_conf) {
        Ok(t) => t,
        Err(e) => return unknown(format!("cannot read {at}: {e}")),
    };
    match associations_enforced(&text) {
        Some(true) if !slurmdbd_storage(&text) => format!("admins.accounts ignored: AccountingStorageType is not accounting_storage/slurmdbd, so no association is enforced and any user may name any account ({at})"),
        Some(true) => format!("admins.accounts honoured: associations enforced ({at})"),
        Some(false) => format!("admins.accounts ignored: AccountingStorageEnforce lacks associations, any user may name any account ({at})"),
        None => unknown(format!(
            "{at} has Include lines and no AccountingStorageEnforce of its own"
        )),
    }
}

/// The value of a slurm.conf key as Slurm reads it (case-insensitive key, the last one
/// wins; `#` starts a comment), and whether the file includes others, which may set it.
fn conf_value(slurm_conf: &str, key: &str) -> (Option<String>, bool) {
    let mut value = None;
    let mut includes = false;
    for line in slurm_conf.lines() {
        let line = line.split('#').next().unwrap_or_default();
        for word in line.split_whitespace() {
            includes |= word.eq_ignore_ascii_case("include");
            if let Some((k, v)) = word.split_once('=') {
                if k.eq_ignore_ascii_case(key) {
                    value = Some(v.to_string());
                }
            }
        }
    }
    (value, includes)
}

/// Whether slurm.conf stores accounting in slurmdbd (`AccountingStorageType`): only then
/// does slurmctld have associations to enforce.
fn slurmdbd_storage(slurm_conf: &str) -> bool {
    conf_value(slurm_conf, "AccountingStorageType")
        .0
        .is_some_and(|v| v.eq_ignore_ascii_case("accounting_storage/slurmdbd"))
}

/// Whether slurm.conf's `AccountingStorageEnforce` sets Slurm's associations bit, read as
/// Slurm reads it (src/common/read_config.c, `_validate_accounting_storage_enforce`, 22.05
/// to 24.11): comma-separated values of which `1`, `associations`, `2`, `limits`, `safe`,
/// `wckeys`, `qos` and `all` imply associations. `None` when the file has no such key but
/// includes others, which may.
fn associations_enforced(slurm_conf: &str) -> Option<bool> {
    const IMPLY: [&str; 8] = [
        "1",
        "associations",
        "2",
        "limits",
        "safe",
        "wckeys",
        "qos",
        "all",
    ];
    match conf_value(slurm_conf, "AccountingStorageEnforce") {
        (Some(v), _) => Some(
            v.split(',')
                .any(|t| IMPLY.iter().any(|a| t.eq_ignore_ascii_case(a))),
        ),
        (None, true) => None,
        (None, false) => Some(false),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["validate", path] => match validate(path) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mlpolicy: {e}");
                ExitCode::from(1)
            }
        },
        ["-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::associations_enforced;

    #[test]
    fn associations_follow_slurms_reading_of_accounting_storage_enforce() {
        let cases = [
            ("ClusterName=c\n", Some(false)),
            ("AccountingStorageEnforce=associations\n", Some(true)),
            ("accountingstorageenforce=Limits,QOS\n", Some(true)),
            ("AccountingStorageEnforce=nojobs,nosteps\n", Some(false)),
            ("AccountingStorageEnforce=safe", Some(true)),
            ("AccountingStorageEnforce=all", Some(true)),
            ("#AccountingStorageEnforce=associations\n", Some(false)),
            (
                "AccountingStorageEnforce=associations\nAccountingStorageEnforce=nojobs\n",
                Some(false),
            ),
            ("Include /etc/slurm/accounting.conf\n", None),
            (
                "Include /etc/slurm/more.conf\nAccountingStorageEnforce=qos\n",
                Some(true),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(associations_enforced(text), want, "{text:?}");
        }
    }
}
