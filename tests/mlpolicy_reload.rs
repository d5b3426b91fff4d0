//! The mlpolicy plugin's policy loading inside a real slurmctld: a reconfigure is loaded
//! by the plugin's own thread, off the submission path; `admins.accounts` exempts only
//! where slurmctld enforces associations (without that, `--account` is whatever the user
//! typed).

mod common;

use std::time::Duration;

use common::*;
use local_cluster::{cargo_artifact, ensure_user, Cluster, Options, User};

/// Two partitions with opposite rules, and an admin account.
const POLICY: &str = r#"{
  "admins": {"accounts": ["ops"]},
  "partitions": {
    "gpu": {"kind": "gpu"},
    "cpu": {"kind": "cpu"}
  }
}
"#;

const NEEDS_GPUS: &str =
    "sbatch: error: mlpolicy: partition 'gpu' needs a GPU request: add --gpus-per-node=N\n";

fn cluster(accounting: bool, extra: &[&str]) -> Cluster {
    let plugin = cargo_artifact("libjob_submit_mlpolicy.so").unwrap_or_else(|e| panic!("{e}"));
    let mut conf: Vec<String> = ["gpu", "cpu"]
        .iter()
        .map(|p| format!("PartitionName={p} Nodes=n[1-3] State=UP"))
        .collect();
    conf.extend(extra.iter().map(|s| s.to_string()));
    start(Options {
        accounting,
        job_submit_plugins: vec![plugin],
        extra_slurm_conf: conf,
        extra_files: vec![("mlpolicy.json".into(), POLICY.into())],
        ..Options::default()
    })
}

/// A held GPU-less job in partition gpu, which only an exempt user may submit, as `user`
/// with `--account=account`: (accepted, stderr).
fn gpu_less_job(c: &Cluster, user: &User, account: &str) -> (bool, String) {
    let acct = format!("--account={account}");
    let args = [
        "-H",
        "-o",
        "/dev/null",
        "-p",
        "gpu",
        &acct,
        "--wrap",
        "true",
    ];
    let out = c.run_as(user, "sbatch", args).unwrap();
    (out.status.success(), stderr(&out))
}

/// The reload after `scontrol reconfigure` runs on the plugin's thread: it happens with no
/// submission at all (before, the first submission did it, under slurmctld's locks).
#[test]
fn a_reconfigure_is_loaded_without_any_submission() {
    let c = cluster(false, &[]);
    let path = c.dir().join("mlpolicy.json");
    // `last_update` has one-second resolution: let the second of the start pass.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(
        &path,
        POLICY.replace("\"kind\": \"gpu\"", "\"kind\": \"cpu\""),
    )
    .unwrap();
    let loaded = format!(
        "job_submit/mlpolicy: loaded {}: 2 partition rule set(s)",
        path.display()
    );
    let before = c.log("slurmctld").matches(&loaded).count();
    ok(c.run("scontrol", ["reconfigure"]).unwrap());
    wait_for(
        "the reload after the reconfigure, with no submission",
        Duration::from_secs(20),
        || c.log("slurmctld").matches(&loaded).count() > before,
        || format!("slurmctld log:\n{}", c.log("slurmctld")),
    );
    // The new policy is the one in force: partition gpu is now a CPU partition.
    let u = ensure_user("mltest-a").unwrap();
    let out = c
        .run_as(
            &u,
            "sbatch",
            [
                "-H",
                "-o",
                "/dev/null",
                "-p",
                "gpu",
                "--gpus-per-node=1",
                "--wrap",
                "true",
            ],
        )
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "sbatch: error: mlpolicy: partition 'gpu' has no GPUs: remove the GPU request\n"
        ),
        "{}",
        stderr(&out)
    );
}

/// Without `AccountingStorageEnforce=associations` (the local cluster sets none) any user
/// may name any account, so an admin account exempts no one, and the log says why.
#[test]
fn admin_accounts_are_ignored_without_association_enforcement() {
    let c = cluster(false, &[]);
    let u = ensure_user("mltest-a").unwrap();
    let (accepted, err) = gpu_less_job(&c, &u, "ops");
    assert!(
        !accepted,
        "a user naming the admin account skipped the rules"
    );
    assert!(err.contains(NEEDS_GPUS), "{err}");
    let log = c.log("slurmctld");
    assert!(
        log.contains("job_submit/mlpolicy: warning: admins.accounts ignored: AccountingStorageEnforce lacks associations, any user may name any account\n"),
        "{log}"
    );
    assert!(!log.contains("admins.accounts honoured"), "{log}");
}

/// `AccountingStorageEnforce=associations` without slurmdbd enforces nothing (slurmctld
/// takes any `--account`). Set at start, slurmctld clears it ("You can not have
/// AccountingStorageEnforce set for AccountingStorageType='accounting_storage/none'"); added
/// by a reconfigure, 22.05 keeps the bit: an admin account must still exempt no one.
#[test]
fn admin_accounts_are_ignored_where_enforcement_has_no_slurmdbd() {
    let c = cluster(false, &[]);
    std::thread::sleep(Duration::from_millis(1100));
    let conf = c.conf_path();
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("AccountingStorageEnforce=associations\n");
    std::fs::write(&conf, text).unwrap();
    let ignored = "job_submit/mlpolicy: warning: admins.accounts ignored: ";
    let before = c.log("slurmctld").matches(ignored).count();
    ok(c.run("scontrol", ["reconfigure"]).unwrap());
    wait_for(
        "the reload after the reconfigure",
        Duration::from_secs(20),
        || c.log("slurmctld").matches(ignored).count() > before,
        || format!("slurmctld log:\n{}", c.log("slurmctld")),
    );
    let u = ensure_user("mltest-a").unwrap();
    let (accepted, err) = gpu_less_job(&c, &u, "ops");
    assert!(
        !accepted,
        "a user naming the admin account skipped the rules"
    );
    assert!(err.contains(NEEDS_GPUS), "{err}");
    assert!(
        !c.log("slurmctld").contains("admins.accounts honoured"),
        "{}",
        c.log("slurmctld")
    );
}

/// With associations enforced (slurmdbd), a user who really is in the admin account is
/// exempt; the same user under another account is not; a user outside it who names it is
/// refused by Slurm's own association check.
#[test]
fn admin_accounts_exempt_their_members_where_associations_are_enforced() {
    let c = cluster(true, &["AccountingStorageEnforce=associations"]);
    let member = ensure_user("mltest-a").unwrap();
    let outsider = ensure_user("mltest-out").unwrap();
    let name = c.cluster_name().to_string();
    let cluster_arg = format!("cluster={name}");
    ok(c.run(
        "sacctmgr",
        ["-i", "add", "account", "ops,research", &cluster_arg],
    )
    .unwrap());
    ok(c.run(
        "sacctmgr",
        [
            "-i",
            "add",
            "user",
            &member.name,
            "account=ops,research",
            &cluster_arg,
        ],
    )
    .unwrap());
    ok(c.run(
        "sacctmgr",
        [
            "-i",
            "add",
            "user",
            &outsider.name,
            "account=research",
            &cluster_arg,
        ],
    )
    .unwrap());
    assert!(
        c.log("slurmctld")
            .contains("job_submit/mlpolicy: admins.accounts honoured: associations enforced\n"),
        "{}",
        c.log("slurmctld")
    );
    // slurmdbd pushes the new associations to slurmctld asynchronously.
    let last = std::cell::RefCell::new(String::new());
    wait_for(
        "the member's job under the admin account accepted",
        Duration::from_secs(30),
        || {
            let (accepted, err) = gpu_less_job(&c, &member, "ops");
            *last.borrow_mut() = err;
            accepted
        },
        || {
            format!(
                "last sbatch: {}\nslurmctld log:\n{}",
                last.borrow(),
                c.log("slurmctld")
            )
        },
    );
    let (accepted, err) = gpu_less_job(&c, &member, "research");
    assert!(
        !accepted,
        "the rules did not apply under a non-admin account"
    );
    assert!(err.contains(NEEDS_GPUS), "{err}");
    wait_for(
        "the outsider known to slurmctld",
        Duration::from_secs(30),
        || {
            let out = c
                .run_as(
                    &outsider,
                    "sbatch",
                    ["-H", "-o", "/dev/null", "-p", "cpu", "--wrap", "true"],
                )
                .unwrap();
            out.status.success()
        },
        || format!("slurmctld log:\n{}", c.log("slurmctld")),
    );
    let (accepted, err) = gpu_less_job(&c, &outsider, "ops");
    assert!(
        !accepted,
        "a user outside the admin account got in by naming it"
    );
    assert!(
        err.contains("sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified\n"),
        "{err}"
    );
}
