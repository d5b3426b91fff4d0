//! Accounting domains in the mlpolicy job_submit plugin, on a real slurmctld + slurmdbd +
//! MariaDB: jobs are tagged (shadow account, wckey, admin_comment) as sacct shows them,
//! accounts outside `allowed_accounts` are refused, a `-p` list across domains follows
//! `span`, updates cannot untag, and a job with no `-A` gets its default account's shadow.

mod common;

use std::time::Duration;

use common::*;
use local_cluster::{cargo_artifact, ensure_user, Cluster, Options, User};

const POLICY: &str = r#"{
  "accounting": {
    "span": "refuse",
    "domains": {
      "onprem": { "wckey": true, "admin_comment": true },
      "cloud": {
        "partitions": ["cloud"],
        "account_suffix": "_cloud",
        "wckey": true,
        "admin_comment": true,
        "allowed_accounts": ["proj"],
        "contact": "hpc-help@example.org"
      }
    }
  }
}
"#;

fn cluster() -> Cluster {
    let plugin = cargo_artifact("libjob_submit_mlpolicy.so").unwrap_or_else(|e| panic!("{e}"));
    start(Options {
        accounting: true,
        nodes: 2,
        job_submit_plugins: vec![plugin],
        extra_slurm_conf: vec![
            "PartitionName=onprem Nodes=n[1-2] State=UP".into(),
            "PartitionName=cloud Nodes=n[1-2] State=UP".into(),
            "AccountingStorageEnforce=associations,limits,safe".into(),
            "TrackWCKey=yes".into(),
        ],
        extra_files: vec![("mlpolicy.json".into(), POLICY.into())],
        ..Options::default()
    })
}

/// `sacctmgr -i ARGS... cluster=NAME`.
fn sacctmgr(c: &Cluster, args: &[&str]) {
    let cluster = format!("cluster={}", c.cluster_name());
    let mut all = vec!["-i"];
    all.extend_from_slice(args);
    all.push(&cluster);
    ok(c.run("sacctmgr", &all).unwrap());
}

/// The accounts and users: `member` in proj (default) and proj_cloud, `outsider` in other
/// (default) and other_cloud. Waits until slurmctld's association manager has them.
fn associations(c: &Cluster, member: &User, outsider: &User) {
    sacctmgr(c, &["add", "account", "proj,proj_cloud,other,other_cloud"]);
    sacctmgr(
        c,
        &[
            "add",
            "user",
            &member.name,
            "account=proj,proj_cloud",
            "defaultaccount=proj",
        ],
    );
    sacctmgr(
        c,
        &[
            "add",
            "user",
            &outsider.name,
            "account=other,other_cloud",
            "defaultaccount=other",
        ],
    );
    // slurmdbd pushes new associations to slurmctld asynchronously.
    wait_for_associations(c, &member.name, &["proj", "proj_cloud"], Some("proj"));
    wait_for_associations(c, &outsider.name, &["other", "other_cloud"], Some("other"));
}

/// Runs `--wrap true` as `user` with `args` and waits for it to complete.
fn run_job(c: &Cluster, user: &User, args: &[&str]) -> u32 {
    let mut all = vec!["-o", "/dev/null"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--wrap", "true"]);
    let job = c.sbatch(Some(user), &all).unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    job
}

/// sacct's `Partition|Account|WCKey|AdminComment` of a completed job, once slurmdbd has
/// its full record (and its AdminComment: every job here has one but the untagged).
fn sacct_tags(c: &Cluster, job: u32) -> String {
    sacct_record(c, job, true)
}

fn sacct_record(c: &Cluster, job: u32, tagged: bool) -> String {
    sacct_until(
        c,
        job,
        "State,Partition,Account,WCKey,AdminComment",
        "completed and tagged",
        |text| {
            // The row can exist for a moment before its full record (no partition yet).
            let rest = text.strip_prefix("COMPLETED|")?;
            let complete = !rest.starts_with('|');
            let commented = !rest.ends_with('|');
            (complete && (commented || !tagged)).then(|| rest.to_string())
        },
    )
}

/// `program args` as `user` fails, and its stderr has `line`.
fn refused(c: &Cluster, user: &User, program: &str, args: &[&str], line: &str) {
    let out = c.run_as(user, program, args).unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{program} {args:?} was accepted");
    assert!(
        err.contains(line),
        "{program} {args:?}:\n{err}\nwanted: {line}"
    );
}

fn held(c: &Cluster, user: &User, args: &[&str]) -> u32 {
    let mut all = vec!["-H", "-o", "/dev/null"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--wrap", "true"]);
    c.sbatch(Some(user), &all).unwrap()
}

const CLOUD_TAG: &str = r#"{"mlpolicy":{"domain":"cloud","account":"proj"}}"#;

#[test]
fn jobs_are_tagged_with_their_domain() {
    let c = cluster();
    let member = ensure_user("mltest-a").unwrap();
    let outsider = ensure_user("mltest-out").unwrap();
    associations(&c, &member, &outsider);

    // Cloud: charged to the shadow account, with the domain's wckey and admin_comment.
    let job = run_job(&c, &member, &["-p", "cloud", "-A", "proj"]);
    assert_eq!(
        sacct_tags(&c, job),
        format!("cloud|proj_cloud|cloud|{CLOUD_TAG}")
    );
    // No -A: the user's default account (proj), found in slurmctld's association manager.
    let job = run_job(&c, &member, &["-p", "cloud"]);
    assert_eq!(
        sacct_tags(&c, job),
        format!("cloud|proj_cloud|cloud|{CLOUD_TAG}")
    );
    // On premises: the account stays, the onprem tags are set; naming the cloud shadow
    // there is charged back to its parent.
    let onprem = r#"onprem|proj|onprem|{"mlpolicy":{"domain":"onprem","account":"proj"}}"#;
    let job = run_job(&c, &member, &["-p", "onprem", "-A", "proj"]);
    assert_eq!(sacct_tags(&c, job), onprem);
    let job = run_job(&c, &member, &["-p", "onprem", "-A", "proj_cloud"]);
    assert_eq!(sacct_tags(&c, job), onprem);
    // No -p: slurmctld's default partition (debug), in no domain: onprem.
    let job = run_job(&c, &outsider, &[]);
    assert_eq!(
        sacct_tags(&c, job),
        r#"debug|other|onprem|{"mlpolicy":{"domain":"onprem","account":"other"}}"#
    );

    // An account outside allowed_accounts, named or by default.
    let denied = "sbatch: error: mlpolicy: account other may not use the cloud domain (partitions cloud); ask hpc-help@example.org\n";
    refused(
        &c,
        &outsider,
        "sbatch",
        &["-H", "-p", "cloud", "-A", "other", "--wrap", "true"],
        denied,
    );
    refused(
        &c,
        &outsider,
        "sbatch",
        &["-H", "-p", "cloud", "--wrap", "true"],
        denied,
    );
    refused(
        &c,
        &outsider,
        "srun",
        &["-p", "cloud", "true"],
        "srun: error: mlpolicy: account other may not use the cloud domain (partitions cloud); ask hpc-help@example.org\n",
    );

    // -p across domains, span = refuse.
    refused(
        &c,
        &member,
        "sbatch",
        &["-H", "-p", "onprem,cloud", "--wrap", "true"],
        "sbatch: error: mlpolicy: partitions onprem,cloud lie in more than one accounting domain (onprem, cloud), whose usage is accounted apart: submit to one domain's partitions (-p onprem or -p cloud)\n",
    );

    // Root is exempt: never refused (a list across domains is accepted, untagged), but
    // tagged where the job lies in one domain, so its usage lands there too.
    sacctmgr(&c, &["add", "account", "root_cloud"]);
    sacctmgr(&c, &["add", "user", "root", "account=root_cloud"]);
    let root_job = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--wrap", "true"]);
        let job = c.sbatch(None, &all).unwrap();
        assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
        job
    };
    let last = std::cell::RefCell::new(String::new());
    wait_for(
        "root's cloud job charged to root_cloud",
        Duration::from_secs(30),
        || {
            let job = root_job(&["-p", "cloud"]);
            *last.borrow_mut() = sacct_tags(&c, job);
            *last.borrow()
                == r#"cloud|root_cloud|cloud|{"mlpolicy":{"domain":"cloud","account":"root"}}"#
        },
        || format!("last sacct: {}", last.borrow()),
    );
    let job = root_job(&["-p", "onprem,cloud", "-A", "root"]);
    // It ran in one of them; Slurm gave it the default wckey ("*": none).
    let untagged = sacct_record(&c, job, false);
    assert!(untagged.ends_with("|root|*|"), "{untagged}");

    // Updates cannot untag: account, wckey, partition.
    let job = held(&c, &member, &["-p", "cloud"]);
    let id = format!("jobid={job}");
    for (arg, key, tag) in [
        ("account=proj", "Account", "account"),
        ("wckey=", "WCKey", "wckey"),
        ("wckey=onprem", "WCKey", "wckey"),
    ] {
        let out = c.run_as(&member, "scontrol", ["update", &id, arg]).unwrap();
        assert!(!out.status.success(), "{arg} was accepted");
        let err = stderr(&out);
        // job_modify gained err_msg in 23.02: from then on the user sees the reason.
        #[cfg(slurm_ge_23_02)]
        assert!(
            err.contains(&format!("mlpolicy: a job's {key} is its accounting domain's {tag} tag, set at submission, and cannot be changed by an update here: cancel the job and submit it again with the new value (or ask an admin)")),
            "{arg}: {err}"
        );
        let _ = (key, tag);
        assert!(err.contains("Access/permission denied"), "{arg}: {err}");
    }
    let out = c
        .run_as(&member, "scontrol", ["update", &id, "partition=onprem"])
        .unwrap();
    assert!(!out.status.success(), "partition=onprem was accepted");
    #[cfg(slurm_ge_23_02)]
    assert!(
        stderr(&out).contains("mlpolicy: a job cannot be moved to partition onprem by an update here: its accounting domain's tags were set at submission and an update cannot show the job's partition to redo them; cancel the job and submit it again with -p onprem (or ask an admin)"),
        "{}",
        stderr(&out)
    );
    let log = c.log("slurmctld");
    for rule in ["update-domain-tag", "update-domain-partition"] {
        assert!(
            log.contains(&format!(
                "job_submit/mlpolicy: job_modify refused for uid {} by rule {rule}",
                member.uid
            )),
            "{log}"
        );
    }
    // The tags stayed.
    for (field, want) in [
        ("Account", "proj_cloud"),
        ("Partition", "cloud"),
        ("WCKey", "cloud"),
        ("AdminComment", CLOUD_TAG),
    ] {
        assert_eq!(
            c.job_field(job, field).unwrap().as_deref(),
            Some(want),
            "{field}"
        );
    }
    ok(c.run("scancel", [job.to_string()]).unwrap());

    // span = untagged: the same list is accepted, with no domain tag.
    let path = c.dir().join("mlpolicy.json");
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(
        &path,
        POLICY.replace(r#""span": "refuse""#, r#""span": "untagged""#),
    )
    .unwrap();
    ok(c.run("scontrol", ["reconfigure"]).unwrap());
    let spanning = [
        "-H",
        "-o",
        "/dev/null",
        "-p",
        "onprem,cloud",
        "--wrap",
        "true",
    ];
    let job = std::cell::Cell::new(0);
    wait_for(
        "the untagged span policy in force",
        Duration::from_secs(30),
        || {
            let out = c.run_as(&member, "sbatch", spanning).unwrap();
            let id = stdout(&out);
            job.set(
                id.trim()
                    .rsplit(' ')
                    .next()
                    .unwrap_or_default()
                    .parse()
                    .unwrap_or(0),
            );
            out.status.success()
        },
        || format!("slurmctld log:\n{}", c.log("slurmctld")),
    );
    let job = job.get();
    assert_eq!(
        c.job_field(job, "Partition").unwrap().as_deref(),
        Some("onprem,cloud")
    );
    assert_eq!(
        c.job_field(job, "Account").unwrap().as_deref(),
        Some("proj")
    );
    assert_eq!(c.job_field(job, "AdminComment").unwrap(), None);
    ok(c.run("scancel", [job.to_string()]).unwrap());
    // Still only for accounts the cloud domain allows.
    refused(
        &c,
        &outsider,
        "sbatch",
        &["-H", "-p", "onprem,cloud", "--wrap", "true"],
        "sbatch: error: mlpolicy: account other may not use the cloud domain (partitions cloud); ask hpc-help@example.org\n",
    );
}

/// Without slurmdbd, slurmctld knows no default account: a job that names none is refused
/// with the way to fix it (never guessed), one that names one is tagged, and the controller
/// log says the shadow accounts are not enforced.
#[test]
fn without_accounting_no_account_is_guessed() {
    let plugin = cargo_artifact("libjob_submit_mlpolicy.so").unwrap_or_else(|e| panic!("{e}"));
    let c = start(Options {
        nodes: 1,
        job_submit_plugins: vec![plugin],
        extra_slurm_conf: vec![
            "PartitionName=onprem Nodes=n1 State=UP".into(),
            "PartitionName=cloud Nodes=n1 State=UP".into(),
        ],
        extra_files: vec![("mlpolicy.json".into(), POLICY.into())],
        ..Options::default()
    });
    let user = ensure_user("mltest-a").unwrap();
    refused(
        &c,
        &user,
        "sbatch",
        &["-H", "-p", "cloud", "--wrap", "true"],
        "sbatch: error: mlpolicy: this job names no account and slurmctld knows no default account for its user, so its cloud domain account cannot be chosen: pass -A ACCOUNT\n",
    );
    // (scontrol shows no WCKey without TrackWCKey.)
    let job = held(&c, &user, &["-p", "cloud", "-A", "proj"]);
    for (field, want) in [("Account", "proj_cloud"), ("AdminComment", CLOUD_TAG)] {
        assert_eq!(
            c.job_field(job, field).unwrap().as_deref(),
            Some(want),
            "{field}"
        );
    }
    let log = c.log("slurmctld");
    assert!(
        log.contains("job_submit/mlpolicy: warning: accounting: shadow accounts and allowed_accounts need AccountingStorageType=accounting_storage/slurmdbd and AccountingStorageEnforce=associations (or limits, safe): without them any user may name any account and no budget holds a job\n"),
        "{log}"
    );
}

/// `scontrol -o show job ID` lines' `Partition` and `Account`, one per component.
fn components(c: &Cluster, job: &str) -> Vec<String> {
    let out = ok(c.run("scontrol", ["-o", "show", "job", job]).unwrap());
    stdout(&out)
        .lines()
        .map(|l| {
            let f = |k: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{k}=")))
                    .unwrap_or_default()
                    .to_string()
            };
            format!("{}|{}|{}", f("Partition"), f("Account"), f("WCKey"))
        })
        .collect()
}

/// What a user tries to run in the cloud uncharged to the shadow account: other spellings
/// of the account and partitions, wckeys, arrays, heterogeneous jobs, srun/salloc.
#[test]
fn no_submission_escapes_the_cloud_tags() {
    let c = cluster();
    let member = ensure_user("mltest-a").unwrap();
    let outsider = ensure_user("mltest-out").unwrap();
    associations(&c, &member, &outsider);
    let script = c.dir().join("het.sh");
    std::fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
    let script = script.to_str().unwrap().to_string();
    let sb = |user: &User, args: &[&str]| -> Result<String, String> {
        let mut all = vec!["--parsable", "-H", "-o", "/dev/null"];
        all.extend_from_slice(args);
        let out = c.run_as(user, "sbatch", &all).unwrap();
        if out.status.success() {
            Ok(stdout(&out)
                .trim()
                .split(';')
                .next()
                .unwrap_or_default()
                .to_string())
        } else {
            Err(stderr(&out))
        }
    };
    let mut seen = vec![];
    for args in [
        vec!["-p", "cloud", "-A", "PROJ", "--wrap", "true"],
        vec!["-p", "cloud", "-A", "Proj_Cloud", "--wrap", "true"],
        vec!["-p", "cloud,cloud", "--wrap", "true"],
        vec!["-p", "cloud,", "--wrap", "true"],
        vec!["-p", ",cloud", "--wrap", "true"],
        vec!["-p", "CLOUD", "--wrap", "true"],
        vec!["-p", "cloud", "--wckey=onprem", "--wrap", "true"],
        vec!["-p", "cloud", "--array=0-2", "--wrap", "true"],
        vec!["-p", "onprem", ":", "-p", "cloud", script.as_str()],
        vec![
            "-p",
            "cloud",
            "-A",
            "proj",
            ":",
            "-p",
            "cloud",
            "-A",
            "proj",
            script.as_str(),
        ],
    ] {
        let got = match sb(&member, &args) {
            Ok(id) => components(&c, &id).join(" "),
            Err(e) => e,
        };
        seen.push(format!("{args:?} -> {got}"));
    }
    let cloud = "cloud|proj_cloud|cloud";
    let want = [
        cloud.to_string(),
        cloud.to_string(),
        "cloud,cloud|proj_cloud|cloud".to_string(),
        // Empty entries name nothing (slurmctld reads the list with strtok).
        "cloud,|proj_cloud|cloud".to_string(),
        ",cloud|proj_cloud|cloud".to_string(),
        // Partition names are case-sensitive in slurmctld, as in the policy.
        "sbatch: error: invalid partition specified: CLOUD\nsbatch: error: Batch job submission failed: Invalid partition name specified\n".to_string(),
        cloud.to_string(),
        // A held array is one record until it runs.
        cloud.to_string(),
        format!("onprem|proj|onprem {cloud}"),
        format!("{cloud} {cloud}"),
    ];
    let got: Vec<String> = seen
        .iter()
        .map(|s| s.split(" -> ").nth(1).unwrap_or_default().to_string())
        .collect();
    assert_eq!(got, want, "{seen:#?}");
    // Updates of a pending cloud job, as its user: whatever Slurm or the plugin refuses,
    // the job stays in the cloud partition charged to the shadow account, with its tags.
    let job = sb(&member, &["-p", "cloud", "--wrap", "true"]).unwrap();
    let id = format!("jobid={job}");
    let mut tries = vec![];
    for arg in [
        "partition=",
        "partition=,onprem",
        "partition=onprem,",
        "account=",
        "account=PROJ_CLOUD",
        "admincomment=x",
        "wckey=*",
        "comment=mine",
        "qos=normal",
    ] {
        let out = c.run_as(&member, "scontrol", ["update", &id, arg]).unwrap();
        tries.push(format!(
            "{arg}: {} {}",
            out.status.success(),
            stderr(&out).trim()
        ));
    }
    assert_eq!(
        components(&c, &job),
        vec!["cloud|proj_cloud|cloud".to_string()],
        "{tries:#?}"
    );
    assert_eq!(
        c.job_field(job.parse().unwrap(), "AdminComment")
            .unwrap()
            .as_deref(),
        Some(CLOUD_TAG),
        "{tries:#?}"
    );
    println!("{tries:#?}");

    // The default account changed while slurmctld runs: the next job without -A is
    // judged by the new one.
    sacctmgr(&c, &["add", "user", &member.name, "account=other"]);
    ok(c.run(
        "sacctmgr",
        [
            "-i",
            "modify",
            "user",
            "where",
            &format!("name={}", member.name),
            "set",
            "defaultaccount=other",
        ],
    )
    .unwrap());
    let last = std::cell::RefCell::new(String::new());
    wait_for(
        "the new default account in force",
        Duration::from_secs(30),
        || {
            *last.borrow_mut() = match sb(&member, &["-p", "cloud", "--wrap", "true"]) {
                Ok(id) => components(&c, &id).join(" "),
                Err(e) => e,
            };
            last.borrow()
                .contains("account other may not use the cloud domain")
        },
        || format!("last sbatch: {}", last.borrow()),
    );
    let id = sb(&member, &["-p", "onprem", "--wrap", "true"]).unwrap();
    assert_eq!(components(&c, &id), vec!["onprem|other|onprem".to_string()]);

    // The outsider's heterogeneous job with a cloud component is refused.
    refused(
        &c,
        &outsider,
        "sbatch",
        &[
            "-H",
            "-o",
            "/dev/null",
            "-p",
            "onprem",
            ":",
            "-p",
            "cloud",
            &script,
        ],
        "account other may not use the cloud domain",
    );
    refused(
        &c,
        &outsider,
        "sbatch",
        &["-H", "-p", "cloud", "-A", "OTHER_CLOUD", "--wrap", "true"],
        "account other may not use the cloud domain",
    );
}
