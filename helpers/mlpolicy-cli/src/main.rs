//! `mlpolicy validate FILE`: loads a site policy exactly as the job_submit plugin does
//! (same owner and mode check, parser and rules, admin user names resolved on this host),
//! so an admin can check it before `scontrol reconfigure`. When the policy names admin
//! accounts, it also says whether slurmctld will honour them, as the plugin logs it at
//! load: only where slurm.conf enforces associations. With an `accounting` section, it
//! lists the domains and checks them against that slurm.conf: every domain partition must
//! be defined there (an error), and it warns where wckey tags lack `TrackWCKey=yes` or
//! shadow accounts lack association enforcement. Exit 0 when it is usable, 1 with the
//! reason when not, 2 on a usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mlpolicy::config::{self, Kind};
use mlpolicy::domains::{Accounting, Span, ONPREM};

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
    if let Some(a) = &p.accounting {
        summary.push('\n');
        summary.push_str(&domains_line(a));
        let conf = slurm_conf_for(Path::new(path));
        let (errors, warnings) = match std::fs::read_to_string(&conf) {
            Ok(text) => check_domains(a, &text, &conf.display().to_string()),
            Err(e) => (
                vec![],
                vec![format!(
                    "accounting: cannot check the domains against {} (cannot read it: {e})",
                    conf.display()
                )],
            ),
        };
        for w in warnings {
            summary.push_str(&format!("\nwarning: {w}"));
        }
        if !errors.is_empty() {
            return Err(format!(
                "{path}: {}",
                errors.join(&format!("\nmlpolicy: {path}: "))
            ));
        }
    }
    Ok(summary)
}

/// One line per policy on its accounting domains: partitions, tags, span.
fn domains_line(a: &Accounting) -> String {
    let mut domains: Vec<String> = a
        .domains
        .iter()
        .map(|(name, d)| {
            let parts = if d.partitions.is_empty() {
                "every other partition".to_string()
            } else {
                format!("partitions {}", d.partitions.join(","))
            };
            let tags: Vec<&str> = [
                (d.tags_account(), "account"),
                (d.wckey, "wckey"),
                (d.admin_comment, "admin_comment"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, t)| *t)
            .collect();
            let tags = if tags.is_empty() {
                "no tags".into()
            } else {
                tags.join("+")
            };
            format!("{name} ({parts}; {tags})")
        })
        .collect();
    if !a.domains.contains_key(ONPREM) {
        domains.push(format!("{ONPREM} (every other partition; no tags)"));
    }
    let span = match a.span {
        Span::Refuse => "refused",
        Span::Untagged => "accepted untagged",
    };
    format!(
        "accounting: {} domain(s): {}; a -p list across domains is {span}",
        domains.len(),
        domains.join(", ")
    )
}

/// The domains against slurm.conf (`at` names it): errors (a partition slurm.conf does not
/// define) and warnings (a tag Slurm would not keep or enforce).
fn check_domains(a: &Accounting, text: &str, at: &str) -> (Vec<String>, Vec<String>) {
    let (mut errors, mut warnings) = (vec![], vec![]);
    // One partition per `PartitionName=` line; `PartitionName=DEFAULT` sets defaults.
    let (defined, includes) = conf_values(text, "PartitionName");
    for (name, d) in &a.domains {
        let known = |p: &&String| defined.contains(p) && !p.eq_ignore_ascii_case("DEFAULT");
        for part in d.partitions.iter().filter(|p| !known(p)) {
            let line =
                format!("accounting.domains.{name}.partitions: no partition {part:?} in {at}");
            if includes {
                warnings.push(format!(
                    "{line} (it has Include lines, which may define it)"
                ));
            } else {
                errors.push(line);
            }
        }
    }
    if a.domains.values().any(|d| d.wckey) && !wckeys_tracked(text) {
        warnings.push(format!("accounting: wckey tagging is on but {at} lacks TrackWCKey=yes (and slurmdbd.conf needs it too): slurmdbd keeps no wckey usage for sreport"));
    }
    let accounts = a
        .domains
        .values()
        .any(|d| d.tags_account() || !d.allowed_accounts.is_empty());
    if accounts && associations_enforced(text) != Some(true) {
        warnings.push(format!("accounting: shadow accounts or allowed_accounts are set but {at} lacks AccountingStorageEnforce=associations (or limits, safe, ...): a job runs under an account its user has no association with, and no budget holds it"));
    }
    (errors, warnings)
}

/// `TrackWCKey`, a boolean as Slurm reads one (yes, true, up, 1).
fn wckeys_tracked(slurm_conf: &str) -> bool {
    conf_value(slurm_conf, "TrackWCKey").0.is_some_and(|v| {
        ["yes", "true", "up", "1"]
            .iter()
            .any(|y| v.eq_ignore_ascii_case(y))
    })
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
    let (mut values, includes) = conf_values(slurm_conf, key);
    (values.pop(), includes)
}

/// Every value of a slurm.conf key, in order, and whether the file has Includes.
fn conf_values(slurm_conf: &str, key: &str) -> (Vec<String>, bool) {
    let mut values = vec![];
    let mut includes = false;
    for line in slurm_conf.lines() {
        let line = line.split('#').next().unwrap_or_default();
        for word in line.split_whitespace() {
            includes |= word.eq_ignore_ascii_case("include");
            if let Some((k, v)) = word.split_once('=') {
                if k.eq_ignore_ascii_case(key) {
                    values.push(v.to_string());
                }
            }
        }
    }
    (values, includes)
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
