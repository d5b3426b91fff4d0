//! `mlpolicy validate` on the shipped example and on broken files: what the admin sees.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    run_with(args, Some(std::path::Path::new("/nonexistent/slurm.conf")))
}

/// With `SLURM_CONF` set to `slurm_conf`, or unset.
fn run_with(args: &[&str], slurm_conf: Option<&std::path::Path>) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlpolicy"));
    c.args(args);
    match slurm_conf {
        Some(f) => c.env("SLURM_CONF", f),
        None => c.env_remove("SLURM_CONF"),
    };
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../conf-examples/mlpolicy.json"
);

#[test]
fn the_example_is_valid() {
    let (code, out, err) = run(&["validate", EXAMPLE]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.ends_with(": ok: 3 partition rule set(s): cpu (cpu), gpu (gpu), interactive (gpu); default partitions: gpu gpu, cpu cpu; 1 admin uid(s), 1 admin account(s)\nadmins.accounts: cannot tell whether slurmctld honours them (cannot read /nonexistent/slurm.conf: No such file or directory (os error 2)): only with AccountingStorageEnforce=associations\n"),
        "{out}"
    );
}

/// The example names an admin account: validate says, as the plugin logs at load, whether
/// slurmctld will honour it, from the slurm.conf in `SLURM_CONF` or beside the policy.
#[test]
fn admin_accounts_are_judged_by_the_slurm_conf() {
    let dir = std::env::temp_dir().join(format!("mlpolicy-validate-acct-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("slurm.conf");
    let last_line = |slurm_conf: Option<&std::path::Path>, policy: &str| {
        let (code, out, err) = run_with(&["validate", policy], slurm_conf);
        assert_eq!(code, 0, "{err}");
        out.lines().last().unwrap_or_default().to_string()
    };
    // Enforcement without slurmdbd enforces nothing: slurmctld takes any --account.
    std::fs::write(
        &conf,
        "ClusterName=c\nAccountingStorageEnforce=limits,qos\n",
    )
    .unwrap();
    assert_eq!(
        last_line(Some(&conf), EXAMPLE),
        format!(
            "admins.accounts ignored: AccountingStorageType is not accounting_storage/slurmdbd, so no association is enforced and any user may name any account ({})",
            conf.display()
        )
    );
    std::fs::write(
        &conf,
        "ClusterName=c\nAccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageEnforce=limits,qos\n",
    )
    .unwrap();
    assert_eq!(
        last_line(Some(&conf), EXAMPLE),
        format!(
            "admins.accounts honoured: associations enforced ({})",
            conf.display()
        )
    );
    std::fs::write(&conf, "ClusterName=c\nAccountingStorageEnforce=nojobs\n").unwrap();
    assert_eq!(
        last_line(Some(&conf), EXAMPLE),
        format!("admins.accounts ignored: AccountingStorageEnforce lacks associations, any user may name any account ({})", conf.display())
    );
    std::fs::write(&conf, "ClusterName=c\nInclude /etc/slurm/accounting.conf\n").unwrap();
    assert_eq!(
        last_line(Some(&conf), EXAMPLE),
        format!("admins.accounts: cannot tell whether slurmctld honours them ({} has Include lines and no AccountingStorageEnforce of its own): only with AccountingStorageEnforce=associations", conf.display())
    );
    // Without SLURM_CONF: the slurm.conf beside the policy, as slurmctld pairs them.
    std::fs::write(
        &conf,
        "AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageEnforce=associations\n",
    )
    .unwrap();
    let policy = dir.join("mlpolicy.json");
    std::fs::copy(EXAMPLE, &policy).unwrap();
    assert_eq!(
        last_line(None, policy.to_str().unwrap()),
        format!(
            "admins.accounts honoured: associations enforced ({})",
            conf.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_policy_is_refused_with_the_key_and_line() {
    let dir = std::env::temp_dir().join(format!("mlpolicy-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mlpolicy.json");
    std::fs::write(
        &file,
        "{\n  \"partitions\": {\n    \"gpu\": {\"max_time\": \"tomorrow\"}\n  }\n}\n",
    )
    .unwrap();
    let (code, out, err) = run(&["validate", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        err,
        format!("mlpolicy: {}: partitions.gpu.max_time: \"tomorrow\" is not a time limit (MM, HH:MM:SS or D-HH:MM:SS)\n", file.display())
    );
    std::fs::write(&file, "{\"partitions\": {\"gpu\": {\"kind\": \"gpu\",}}}").unwrap();
    let (code, _, err) = run(&["validate", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("mlpolicy: {}: line 1, column", file.display())),
        "{err}"
    );
    let (code, _, err) = run(&["validate"]);
    assert_eq!((code, err.as_str()), (2, "usage: mlpolicy validate FILE\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A policy slurmctld would refuse (writable by others) is refused here too, with the same
/// reason.
#[test]
fn a_policy_others_can_write_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = std::env::temp_dir().join(format!("mlpolicy-validate-mode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mlpolicy.json");
    std::fs::write(&file, "{\"partitions\": {}}\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, out, err) = run(&["validate", file.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (1, ""));
    let p = file.display();
    // The suite runs as root (CI); elsewhere the owner is refused first.
    if std::fs::metadata(&file).unwrap().uid() == 0 {
        assert_eq!(
            err,
            format!("mlpolicy: {p} is writable by group or others (mode 666): refusing it (chmod go-w {p})\n")
        );
    } else {
        assert!(err.contains("not root: refusing it"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The accounting domains against slurm.conf: every domain partition must be defined, and
/// the tags need TrackWCKey and association enforcement to mean anything.
#[test]
fn accounting_domains_are_checked_against_slurm_conf() {
    let dir = std::env::temp_dir().join(format!("mlpolicy-validate-dom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("slurm.conf");
    let policy = dir.join("mlpolicy.json");
    std::fs::write(
        &policy,
        r#"{"accounting": {"domains": {
            "onprem": {"wckey": true},
            "cloud": {"partitions": ["cloud", "cloud-big"], "account_suffix": "_cloud", "wckey": true, "admin_comment": true}
        }}}"#,
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let c = conf.display();
    std::fs::write(
        &conf,
        "ClusterName=c\nAccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageEnforce=associations,limits,safe\nTrackWCKey=yes\nPartitionName=DEFAULT MaxTime=60\nPartitionName=onprem Nodes=ALL Default=YES\nPartitionName=cloud Nodes=ALL\nPartitionName=cloud-big Nodes=ALL # big\n",
    )
    .unwrap();
    let (code, out, err) = run_with(&["validate", p], Some(&conf));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("{p}: ok: 0 partition rule set(s): ; default partitions: gpu (none), cpu (none); 0 admin uid(s), 0 admin account(s)\naccounting: 2 domain(s): cloud (partitions cloud,cloud-big; account+wckey+admin_comment), onprem (every other partition; wckey); a -p list across domains is refused\n")
    );
    // A partition slurm.conf does not define; no TrackWCKey; no association enforcement.
    std::fs::write(
        &conf,
        "ClusterName=c\nPartitionName=onprem Nodes=ALL\n#PartitionName=cloud-big\nPartitionName=cloud Nodes=ALL\nTrackWCKey=no\n",
    )
    .unwrap();
    let (code, out, err) = run_with(&["validate", p], Some(&conf));
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!("mlpolicy: {p}: accounting.domains.cloud.partitions: no partition \"cloud-big\" in {c}\n")
    );
    std::fs::write(
        &conf,
        "ClusterName=c\nPartitionName=onprem Nodes=ALL\nPartitionName=cloud Nodes=ALL\nTrackWCKey=no\nInclude /etc/slurm/parts.conf\n",
    )
    .unwrap();
    let (code, out, err) = run_with(&["validate", p], Some(&conf));
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(
        warnings,
        [
            format!("warning: accounting.domains.cloud.partitions: no partition \"cloud-big\" in {c} (it has Include lines, which may define it)"),
            format!("warning: accounting: wckey tagging is on but {c} lacks TrackWCKey=yes (and slurmdbd.conf needs it too): slurmdbd keeps no wckey usage for sreport"),
            format!("warning: accounting: shadow accounts or allowed_accounts are set but {c} lacks AccountingStorageEnforce=associations (or limits, safe, ...): a job runs under an account its user has no association with, and no budget holds it"),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
