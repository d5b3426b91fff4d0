//! A simulated cloud burst on real Slurm daemons (issue 13): a `cloud` partition of
//! `State=CLOUD` nodes that Slurm's power saving starts and stops (local `slurmd`
//! processes standing in for instances), billing at each partition's
//! `TRESBillingWeights`, and a cloud budget (`GrpTRESMins=billing=N` on the shadow
//! account) enforced by slurmctld while the project's on-premises jobs still run.
//!
//! The cluster-wide lines and both partitions' weights come from
//! conf-examples/accounting/slurm.conf.accounting as it is, and the accounts from
//! conf-examples/accounting/sacctmgr-setup.sh run against this cluster's slurmdbd.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use local_cluster::{ensure_user, Cluster, Options, User};

/// The shipped example: the admin's files, loaded by this test as they are.
fn example(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("conf-examples/accounting")
        .join(file)
}

/// What the test takes from slurm.conf.accounting.
struct ExampleConf {
    /// Cluster-wide lines handed to slurmctld verbatim.
    lines: Vec<String>,
    /// Keys whose lines the local cluster writes itself (its own programs, paths, short
    /// timers): the test checks its slurm.conf has each of them.
    owned_keys: Vec<String>,
    /// `TRESBillingWeights` per partition of the example (`onprem`, `cloud`).
    weights: BTreeMap<String, String>,
}

/// Keys of slurm.conf.accounting used as they are.
const VERBATIM: &[&str] = &[
    "AccountingStorageEnforce",
    "TrackWCKey",
    "PriorityType",
    "PriorityDecayHalfLife",
    "PriorityUsageResetPeriod",
    "PriorityCalcPeriod",
    "PriorityWeightFairshare",
    "PriorityWeightAge",
    "TreeWidth",
];

/// Keys the local cluster sets to its own values (slurmdbd's port, the programs in the
/// cluster directory, power-saving timers of seconds, localhost nodes).
const OWNED: &[&str] = &[
    "AccountingStorageType",
    "AccountingStorageTRES",
    "ResumeProgram",
    "SuspendProgram",
    "ResumeRate",
    "SuspendRate",
    "SlurmctldParameters",
    "PrivateData",
];

fn example_conf() -> ExampleConf {
    let text = std::fs::read_to_string(example("slurm.conf.accounting")).unwrap();
    let mut conf = ExampleConf {
        lines: Vec::new(),
        owned_keys: Vec::new(),
        weights: BTreeMap::new(),
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap();
        match key {
            k if VERBATIM.contains(&k) => conf.lines.push(line.to_string()),
            k if OWNED.contains(&k) => conf.owned_keys.push(k.to_string()),
            "NodeName" => {}
            "PartitionName" => {
                let name = value.split_whitespace().next().unwrap();
                let weights = line
                    .split_once("TRESBillingWeights=\"")
                    .and_then(|(_, w)| w.split_once('"'))
                    .map(|(w, _)| w.to_string())
                    .unwrap_or_else(|| panic!("no TRESBillingWeights on {line}"));
                conf.weights.insert(name.to_string(), weights);
            }
            other => panic!(
                "slurm.conf.accounting has a new key {other}: say in tests/cloud_burst.rs how the test uses it"
            ),
        }
    }
    conf
}

/// slurmdbd.conf of the example: (lines slurmdbd gets verbatim, keys the local cluster
/// sets itself: its ports, paths, database user and password).
fn example_dbd_conf() -> (Vec<String>, Vec<String>) {
    const OWNED_DBD: &[&str] = &[
        "AuthType",
        "DbdHost",
        "DbdPort",
        "SlurmUser",
        "DebugLevel",
        "LogFile",
        "PidFile",
        "StorageType",
        "StorageHost",
        "StoragePort",
        "StorageUser",
        "StoragePass",
        "StorageLoc",
    ];
    let text = std::fs::read_to_string(example("slurmdbd.conf")).unwrap();
    let (mut lines, mut owned) = (Vec::new(), Vec::new());
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, _) = line.split_once('=').unwrap();
        if key.starts_with("Purge") {
            lines.push(line.to_string());
        } else if OWNED_DBD.contains(&key) {
            owned.push(key.to_string());
        } else {
            panic!("slurmdbd.conf has a new key {key}: say in tests/cloud_burst.rs how the test uses it");
        }
    }
    (lines, owned)
}

/// `TRESBillingWeights` as TRES name (lower case) -> weight.
fn parse_weights(w: &str) -> BTreeMap<String, f64> {
    w.split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_ascii_lowercase(), v.parse().unwrap())
        })
        .collect()
}

/// The billing Slurm computes for an allocation (the sum of weight x count; no
/// PriorityFlags=MAX_TRES), from the weights alone.
fn billing(weights: &str, cpus: u32, gpus: u32) -> u64 {
    let w = parse_weights(weights);
    let total = w.get("cpu").copied().unwrap_or(0.0) * f64::from(cpus)
        + w.get("gres/gpu").copied().unwrap_or(0.0) * f64::from(gpus);
    total as u64
}

/// A TRES string (`billing=408,cpu=2,gres/gpu=1,node=1`) as name -> value.
fn tres_map(tres: &str) -> BTreeMap<String, String> {
    tres.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The shadow account's budget, as in the README: one 1-minute cloud job of this test's
/// size (2 CPUs, 1 GPU: 408 billing units at the example's weights) plus 2.
const BUDGET: u64 = 410;
const USER: &str = "mltest-cloud";
const CLOUD_NODE: &str = "cloud-1";

fn cluster(conf: &ExampleConf, dbd_lines: Vec<String>) -> Cluster {
    let weight = |p: &str| {
        conf.weights
            .get(p)
            .unwrap_or_else(|| panic!("slurm.conf.accounting has no partition {p}"))
            .clone()
    };
    start(Options {
        accounting: true,
        nodes: 1,
        cloud_nodes: 1,
        gpus_per_node: 2,
        extra_slurm_conf: conf.lines.clone(),
        extra_slurmdbd_conf: dbd_lines,
        // The example's on-premises partition is this cluster's `debug`.
        billing_weights: vec![
            ("debug".into(), weight("onprem")),
            ("cloud".into(), weight("cloud")),
        ],
        ..Options::default()
    })
}

/// Runs conf-examples/accounting/sacctmgr-setup.sh as it is, for `proj` and USER.
fn run_setup_script(c: &Cluster) -> String {
    let out = c
        .command("bash")
        .arg(example("sacctmgr-setup.sh"))
        .env("ACCOUNT", "proj")
        .env("USERS", USER)
        .env("BUDGET_BILLING_MINUTES", BUDGET.to_string())
        .output()
        .unwrap();
    stdout(&ok(out))
}

/// The cloud node's state as sinfo prints it (`idle~`, `mixed#`, ...).
fn cloud_state(c: &Cluster) -> String {
    c.node_states()
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == CLOUD_NODE)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

/// Polls the cloud node's state until `done` holds, returning the states seen in order
/// (each once per run of equal states).
fn watch_cloud_node(
    c: &Cluster,
    timeout: Duration,
    mut done: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let state = cloud_state(c);
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if done(&state) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "cloud node states so far: {seen:?}\npower-save log:\n{}\nslurmctld log:\n{}",
            local_cluster::tail(&c.dir().join(local_cluster::layout::POWER_SAVE_LOG), 20),
            local_cluster::tail(&c.log_path("slurmctld"), 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sacct -X -P` fields of one job, once slurmdbd has its final record.
fn sacct_job(c: &Cluster, job: u32, fields: &str) -> Vec<String> {
    sacct_until(c, job, &format!("State,{fields}"), "COMPLETED", |text| {
        // A record can be COMPLETED for a moment before it has every field (an empty
        // Partition): wait for the full one.
        let rest = text
            .strip_prefix("COMPLETED|")
            .filter(|rest| rest.split('|').all(|f| !f.is_empty()))?;
        println!("$ sacct -X -P -j {job} -o {fields}\n{rest}");
        Some(rest.split('|').map(str::to_string).collect())
    })
}

/// The shadow account's `GrpTRESMins` as slurmctld counts it: (limit, minutes used), from
/// `scontrol show assoc_mgr` (`GrpTRESMins=...,billing=410(20),...`).
fn budget_used(c: &Cluster, account: &str) -> Option<(u64, u64)> {
    let out = c
        .run(
            "scontrol",
            [
                "show",
                "assoc_mgr",
                &format!("accounts={account}"),
                "flags=assoc",
            ],
        )
        .ok()?;
    let text = stdout(&out);
    // One record per association; the account's own (no user) carries its limit.
    let record = text
        .split("ClusterName=")
        .find(|r| r.contains(&format!("Account={account} UserName= ")))?;
    let mins = local_cluster::scontrol_field(record, "GrpTRESMins")?;
    let billing = mins.split(',').find_map(|kv| kv.strip_prefix("billing="))?;
    let (limit, used) = billing.strip_suffix(')')?.split_once('(')?;
    Some((limit.parse().ok()?, used.parse().ok()?))
}

fn squeue_state_reason(c: &Cluster, job: u32) -> String {
    let out = ok(c
        .run("squeue", ["-h", "-j", &job.to_string(), "-o", "%T %r"])
        .unwrap());
    stdout(&out).trim().to_string()
}

fn submit(c: &Cluster, user: &User, args: &[&str]) -> u32 {
    let mut all = vec!["-o", "/dev/null", "-n2", "--gpus=1", "-t", "1"];
    all.extend_from_slice(args);
    c.sbatch(Some(user), &all).unwrap()
}

#[test]
fn cloud_burst_billing_and_budget() {
    let conf = example_conf();
    let (dbd_lines, dbd_owned) = example_dbd_conf();
    let c = cluster(&conf, dbd_lines);
    for (file, keys) in [
        ("slurm.conf", &conf.owned_keys),
        ("slurmdbd.conf", &dbd_owned),
    ] {
        let text = std::fs::read_to_string(c.dir().join(file)).unwrap();
        for key in keys {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{key}="))),
                "the example's {key} is not exercised: {text}"
            );
        }
    }
    let user = ensure_user(USER).unwrap();

    // The admin's script, twice: the second run changes nothing that exists.
    run_setup_script(&c);
    run_setup_script(&c);
    let assocs = ok(c
        .run(
            "sacctmgr",
            [
                "-n",
                "-P",
                "show",
                "assoc",
                "where",
                "account=proj,proj_cloud",
                "format=Account,ParentName,User,GrpTRESMins,QOS,DefaultQOS",
            ],
        )
        .unwrap());
    let rows: Vec<String> = stdout(&assocs).lines().map(str::to_string).collect();
    assert_eq!(
        rows,
        [
            "proj|root|||normal|".to_string(),
            format!("proj||{USER}||normal|"),
            format!("proj_cloud|root||billing={BUDGET}|cloud|cloud"),
            format!("proj_cloud||{USER}||cloud|cloud"),
        ],
        "{}",
        stdout(&assocs)
    );

    // slurmdbd pushes new associations to slurmctld asynchronously.
    wait_for_associations(&c, USER, &["proj", "proj_cloud"], None);

    // (a) The burst: the powered-down cloud node is resumed for the job, runs it, and is
    // power-saved again.
    assert_eq!(cloud_state(&c), "idle~");
    assert_eq!(c.cloud_slurmd_pid(CLOUD_NODE), None);
    let burst = submit(
        &c,
        &user,
        &["-A", "proj_cloud", "-p", "cloud", "--wrap", "sleep 3"],
    );
    let mut slurmd_seen = false;
    let up = watch_cloud_node(&c, Duration::from_secs(120), |_| {
        slurmd_seen |= c.cloud_slurmd_pid(CLOUD_NODE).is_some();
        c.job_field(burst, "JobState").unwrap().as_deref() == Some("COMPLETED")
    });
    assert!(slurmd_seen, "no slurmd -N {CLOUD_NODE} while the job ran");
    println!("sinfo states of {CLOUD_NODE} during the burst: {up:?}");
    assert_eq!(up.first().map(String::as_str), Some("idle~"), "{up:?}");
    let powering_up = up.iter().position(|s| s == "mixed#");
    let running = up.iter().rposition(|s| s == "mixed");
    assert!(
        matches!((powering_up, running), (Some(p), Some(r)) if p < r),
        "expected idle~ .. mixed# (POWERING_UP) .. mixed: {up:?}"
    );
    let down = watch_cloud_node(&c, Duration::from_secs(90), |s| s == "idle~");
    println!("sinfo states of {CLOUD_NODE} after the job: {down:?}");
    assert!(
        down.iter().any(|s| s == "idle%"),
        "expected idle .. idle% (POWERING_DOWN) .. idle~: {down:?}"
    );
    if let Some(pid) = c.cloud_slurmd_pid(CLOUD_NODE) {
        panic!(
            "slurmd -N {CLOUD_NODE} still runs at {:?}: {}\n{}",
            std::time::SystemTime::now(),
            std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default(),
            local_cluster::tail(&c.dir().join(local_cluster::layout::POWER_SAVE_LOG), 20)
        );
    }
    let node = ok(c
        .run("scontrol", ["-o", "show", "node", CLOUD_NODE])
        .unwrap());
    assert_eq!(
        local_cluster::scontrol_field(&stdout(&node), "State").as_deref(),
        Some("IDLE+CLOUD+POWERED_DOWN")
    );

    // Billed at the cloud partition's weights.
    let fields = sacct_job(&c, burst, "Partition,Account,AllocTRES,ElapsedRaw");
    assert_eq!(fields[..2], ["cloud", "proj_cloud"]);
    let tres = tres_map(&fields[2]);
    let cloud_billing = billing(&conf.weights["cloud"], 2, 1);
    assert_eq!(cloud_billing, 408);
    assert_eq!(tres["billing"], cloud_billing.to_string(), "{}", fields[2]);
    assert_eq!(
        (tres["cpu"].as_str(), tres["gres/gpu"].as_str()),
        ("2", "1")
    );

    // (b) The budget: slurmctld charges the job's billing x seconds to proj_cloud at its
    // next PriorityCalcPeriod, without decay (PriorityDecayHalfLife=0).
    let elapsed: u64 = fields[3].parse().unwrap();
    let used = cloud_billing * elapsed / 60;
    wait_for(
        "proj_cloud's usage counted",
        Duration::from_secs(150),
        || budget_used(&c, "proj_cloud") == Some((BUDGET, used)),
        || format!("assoc_mgr says {:?}", budget_used(&c, "proj_cloud")),
    );
    println!("proj_cloud GrpTRESMins billing={BUDGET}({used}) after one job of {elapsed} s");

    // What is left (BUDGET - used) is less than a 1-minute job of 408: with `safe` the next
    // cloud job pends for the budget, and the cloud node stays powered down.
    let held = submit(
        &c,
        &user,
        &["-A", "proj_cloud", "-p", "cloud", "--wrap", "true"],
    );
    wait_for(
        "the second cloud job held by the budget",
        Duration::from_secs(60),
        || squeue_state_reason(&c, held) == "PENDING AssocGrpBillingMinutes",
        || squeue_state_reason(&c, held),
    );
    println!(
        "$ squeue -j {held} -o '%T %r'\n{}",
        squeue_state_reason(&c, held)
    );

    // The same user's on-premises job, charged to proj, runs at the on-premises weights.
    let onprem = submit(&c, &user, &["-A", "proj", "-p", "debug", "--wrap", "true"]);
    assert_eq!(c.wait_job(onprem, JOB_TIMEOUT).unwrap(), "COMPLETED");
    let fields = sacct_job(&c, onprem, "Partition,Account,AllocTRES");
    assert_eq!(fields[..2], ["debug", "proj"]);
    let onprem_billing = billing(&conf.weights["onprem"], 2, 1);
    assert_eq!(onprem_billing, 102);
    assert_eq!(tres_map(&fields[2])["billing"], onprem_billing.to_string());

    assert_eq!(
        squeue_state_reason(&c, held),
        "PENDING AssocGrpBillingMinutes"
    );
    assert_eq!(cloud_state(&c), "idle~");

    // The monthly reset from the script's comments: the budget is whole again.
    ok(c.run("scancel", [held.to_string()]).unwrap());
    ok(c.run(
        "sacctmgr",
        [
            "-i",
            "modify",
            "account",
            "where",
            "name=proj_cloud",
            "set",
            "RawUsage=0",
        ],
    )
    .unwrap());
    wait_for(
        "proj_cloud's usage reset",
        Duration::from_secs(30),
        || budget_used(&c, "proj_cloud") == Some((BUDGET, 0)),
        || format!("assoc_mgr says {:?}", budget_used(&c, "proj_cloud")),
    );
}

/// resume.sh and suspend.sh as slurmctld needs them: bash that parses, executable, not
/// writable by group or others (power_save.c refuses such a program).
#[test]
fn example_power_programs_are_usable() {
    for f in ["resume.sh", "suspend.sh", "sacctmgr-setup.sh"] {
        let path = example(f);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{f} is not executable");
        assert_eq!(mode & 0o022, 0, "{f} is writable by group or others");
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{f}: {}", stderr(&out));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("#!/bin/bash\n"), "{f}");
    }
}
