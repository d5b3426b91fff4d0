//! mlacct on real daemons (slurmctld, slurmdbd + MariaDB): its totals per domain, account
//! and user, in the table, CSV and JSON, equal the sums of `sacct -X --truncate` for the
//! same period, with a job that crosses the period's start and one still running; the
//! budget left of a shadow account is its GrpTRESMins less the usage `sshare -l` shows;
//! with slurmctld or slurmdbd down it says so in one line and exits 2.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use local_cluster::{cargo_artifact, ensure_user, Cluster, Options, User};

const POLICY: &str = r#"{
  "accounting": {
    "currency": "USD",
    "domains": {
      "onprem": { "cost_per_billing_hour": 0.0 },
      "cloud": {
        "partitions": ["cloud"],
        "account_suffix": "_cloud",
        "wckey": true,
        "cost_per_billing_hour": 0.01
      }
    }
  }
}
"#;

/// The shadow account's budget, in billing-minutes.
const BUDGET: u64 = 500_000;

fn cluster() -> Cluster {
    start(Options {
        accounting: true,
        nodes: 3,
        extra_slurm_conf: vec![
            // Usage as slurmctld counts it (sshare, GrpTRESMins) needs multifactor; no
            // decay, reset each quarter, so the budget is a budget.
            "PriorityType=priority/multifactor".into(),
            "PriorityDecayHalfLife=0".into(),
            "PriorityUsageResetPeriod=QUARTERLY".into(),
            "PriorityCalcPeriod=1".into(),
            "AccountingStorageEnforce=associations,limits,safe".into(),
            "PartitionName=onprem Nodes=n[1-2] State=UP TRESBillingWeights=CPU=1.0,GRES/gpu=10.0"
                .into(),
            "PartitionName=cloud Nodes=n3 State=UP TRESBillingWeights=CPU=2.0,GRES/gpu=100.0"
                .into(),
        ],
        extra_files: vec![("mlpolicy.json".into(), POLICY.into())],
        ..Options::default()
    })
}

/// The cluster with mlacct installed, and alice and bob in their accounts.
fn setup() -> (Cluster, PathBuf, User, User) {
    let c = cluster();
    let tool = c
        .install_tool(&cargo_artifact("mlacct").unwrap_or_else(|e| panic!("{e}")))
        .unwrap();
    let alice = ensure_user("mlacct-alice").unwrap();
    let bob = ensure_user("mlacct-bob").unwrap();
    accounts(&c, &alice, &bob);
    (c, tool, alice, bob)
}

fn sacctmgr(c: &Cluster, args: &[&str]) {
    let mut all = vec!["-i"];
    all.extend_from_slice(args);
    ok(c.run("sacctmgr", &all).unwrap());
}

/// proj (with its shadow proj_cloud, which has a billing budget) and vision; alice in
/// all, bob in proj and proj_cloud.
fn accounts(c: &Cluster, alice: &User, bob: &User) {
    let cluster = format!("cluster={}", c.cluster_name());
    sacctmgr(c, &["add", "account", "proj,vision", &cluster]);
    sacctmgr(
        c,
        &[
            "add",
            "account",
            "proj_cloud",
            "parent=proj",
            &cluster,
            &format!("GrpTRESMins=billing={BUDGET}"),
        ],
    );
    let both = format!("user={},{}", alice.name, bob.name);
    sacctmgr(
        c,
        &["add", "user", &both, "account=proj,proj_cloud", &cluster],
    );
    sacctmgr(c, &["add", "user", &alice.name, "account=vision", &cluster]);
    // slurmdbd pushes new associations to slurmctld asynchronously (a job submitted
    // before is refused: "Invalid account or account/partition combination specified").
    wait_for_associations(c, &alice.name, &["proj", "proj_cloud", "vision"], None);
    wait_for_associations(c, &bob.name, &["proj", "proj_cloud"], None);
}

fn now_text() -> String {
    let out = std::process::Command::new("date")
        .arg("+%Y-%m-%dT%H:%M:%S")
        .output()
        .unwrap();
    stdout(&out).trim().to_string()
}

fn submit(c: &Cluster, user: &User, args: &[&str]) -> u32 {
    // A time limit: with AccountingStorageEnforce=safe a job starts only if it can run to
    // its limit inside the budget.
    let mut all = vec!["-o", "/dev/null", "-t", "15"];
    all.extend_from_slice(args);
    c.sbatch(Some(user), &all).unwrap()
}

fn wait_running(c: &Cluster, job: u32) {
    wait_for(
        &format!("job {job} running"),
        JOB_TIMEOUT,
        || c.job_field(job, "JobState").unwrap().as_deref() == Some("RUNNING"),
        || c.log("slurmctld"),
    );
}

/// What the test expects per (domain, account, user): jobs and TRES-seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sums {
    jobs: u64,
    gpu_secs: u64,
    cpu_secs: u64,
    billing_secs: u64,
}

type Expected = BTreeMap<(String, String, String), Sums>;

/// One count of sacct's AllocTRES (`billing=22,cpu=2,gres/gpu=2,mem=..,node=1`).
fn alloc(tres: &str, name: &str) -> u64 {
    tres.split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map_or(0, |(_, v)| v.parse().unwrap())
}

/// The oracle: `sacct -X -D -P --truncate` for the period (every run of a requeued job),
/// summed per (domain, account, user), the domain from the partition the job ran in.
fn sacct_sums(c: &Cluster, since: &str, until: &str) -> (Expected, String) {
    let out = ok(c
        .run(
            "sacct",
            [
                "-X",
                "-D",
                "-P",
                "-n",
                "-a",
                "--truncate",
                "-S",
                since,
                "-E",
                until,
                "-o",
                "JobID,Partition,Account,User,ElapsedRaw,AllocTRES,Start",
            ],
        )
        .unwrap());
    let text = stdout(&out);
    let mut sums = Expected::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 7, "{line}");
        // Never allocated, or no start before the period's end (slurmdbd gives a record
        // with no start the period's end as start): not a job that ran in the period.
        if f[5].is_empty() || f[6] >= until {
            continue;
        }
        let domain = if f[1] == "cloud" { "cloud" } else { "onprem" };
        let secs: u64 = f[4].parse().unwrap();
        let s = sums
            .entry((domain.into(), f[2].into(), f[3].into()))
            .or_default();
        s.jobs += 1;
        s.gpu_secs += alloc(f[5], "gres/gpu") * secs;
        s.cpu_secs += alloc(f[5], "cpu") * secs;
        s.billing_secs += alloc(f[5], "billing") * secs;
    }
    (sums, text)
}

fn mlacct(c: &Cluster, tool: &Path, user: Option<&User>, args: &[&str]) -> Output {
    let tool = tool.to_str().unwrap();
    match user {
        Some(u) => c.run_as(u, tool, args).unwrap(),
        None => c.run(tool, args).unwrap(),
    }
}

fn csv_sums(text: &str) -> Expected {
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("domain,account,user,jobs,gpu_hours,cpu_hours,billing_hours,cost,currency,gpu_seconds,cpu_seconds,billing_seconds")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            let s = Sums {
                jobs: n(3),
                gpu_secs: n(9),
                cpu_secs: n(10),
                billing_secs: n(11),
            };
            // Cost: billing-hours at the domain's price; hours from the exact seconds.
            let price = if f[0] == "cloud" { 0.01 } else { 0.0 };
            assert_eq!(
                f[7],
                format!("{:.4}", s.billing_secs as f64 / 3600.0 * price),
                "{l}"
            );
            assert_eq!(f[4], format!("{:.4}", s.gpu_secs as f64 / 3600.0), "{l}");
            assert_eq!(f[8], "USD", "{l}");
            ((f[0].into(), f[1].into(), f[2].into()), s)
        })
        .collect()
}

fn json_sums(text: &str) -> Expected {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            let n = |k: &str| r[k].as_u64().unwrap();
            (
                (s("domain"), s("account"), s("user")),
                Sums {
                    jobs: n("jobs"),
                    gpu_secs: n("gpu_seconds"),
                    cpu_secs: n("cpu_seconds"),
                    billing_secs: n("billing_seconds"),
                },
            )
        })
        .collect()
}

/// The table's line for one row, as the test computes it from sacct's sums.
fn table_line(key: &(String, String, String), s: &Sums) -> Vec<String> {
    let h = |secs: u64| format!("{:.2}", secs as f64 / 3600.0);
    let price = if key.0 == "cloud" { 0.01 } else { 0.0 };
    vec![
        key.0.clone(),
        key.1.clone(),
        key.2.clone(),
        s.jobs.to_string(),
        h(s.gpu_secs),
        h(s.cpu_secs),
        h(s.billing_secs),
        format!("{:.2}", s.billing_secs as f64 / 3600.0 * price),
    ]
}

/// `sshare -l`'s GrpTRESMins and GrpTRESRaw (usage, minutes) of billing for an account.
fn sshare_billing(c: &Cluster, account: &str) -> (u64, u64) {
    let out = ok(c
        .run(
            "sshare",
            [
                "-l",
                "-P",
                "-n",
                "-A",
                account,
                "-o",
                "Account,User,GrpTRESMins,GrpTRESRaw",
            ],
        )
        .unwrap());
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.split('|').nth(1) == Some(""))
        .unwrap_or_else(|| panic!("no account line for {account} in sshare: {text}"));
    let f: Vec<&str> = line.split('|').collect();
    (alloc(f[2], "billing"), alloc(f[3], "billing"))
}

/// Calls `f` until it says done; after `secs`, panics with what it saw last.
fn poll<T: std::fmt::Debug>(what: &str, secs: u64, mut f: impl FnMut() -> (bool, T)) -> T {
    let start = std::time::Instant::now();
    loop {
        let (done, seen) = f();
        if done {
            return seen;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s; last seen: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn pid_of(c: &Cluster, daemon: &str) -> i32 {
    let text = std::fs::read_to_string(c.dir().join(format!("run/{daemon}.pid"))).unwrap();
    text.trim().parse().unwrap()
}

/// Whether a process runs (the daemons are this test's children: a dead one stays a
/// zombie until the cluster reaps it).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn stop_daemon(c: &Cluster, daemon: &str) {
    let pid = pid_of(c, daemon);
    ok(std::process::Command::new("kill")
        .arg(pid.to_string())
        .output()
        .unwrap());
    wait_for(
        &format!("{daemon} (pid {pid}) to exit"),
        Duration::from_secs(60),
        || !alive(pid),
        || c.log(daemon),
    );
}

#[test]
fn mlacct_totals_equal_sacct_and_budgets_equal_sshare() {
    let (c, tool, alice, bob) = setup();

    // A job that runs across the period's start.
    let crossing = submit(
        &c,
        &alice,
        &[
            "-p", "onprem", "-A", "proj", "-c", "2", "--wrap", "sleep 12",
        ],
    );
    wait_running(&c, crossing);
    std::thread::sleep(Duration::from_secs(4));
    let since = now_text();
    std::thread::sleep(Duration::from_secs(1));

    let finished = [
        submit(
            &c,
            &alice,
            &[
                "-p",
                "cloud",
                "-A",
                "proj_cloud",
                "-c",
                "2",
                "--gpus=1",
                "--wrap",
                "sleep 3",
            ],
        ),
        submit(
            &c,
            &bob,
            &[
                "-p",
                "cloud",
                "-A",
                "proj_cloud",
                "--gpus=2",
                "--wrap",
                "sleep 5",
            ],
        ),
        submit(
            &c,
            &bob,
            &[
                "-p", "onprem", "-A", "proj", "--gpus=1", "--wrap", "sleep 2",
            ],
        ),
        submit(
            &c,
            &alice,
            &[
                "-p", "onprem", "-A", "vision", "-c", "4", "--wrap", "sleep 4",
            ],
        ),
        // A -p list across domains: the domain is the partition it ran in.
        submit(
            &c,
            &alice,
            &[
                "-p",
                "onprem,cloud",
                "-A",
                "proj",
                "--gpus=1",
                "--wrap",
                "sleep 3",
            ],
        ),
    ];
    let running = submit(
        &c,
        &bob,
        &[
            "-p",
            "onprem",
            "-A",
            "proj",
            "-c",
            "1",
            "--wrap",
            "sleep 600",
        ],
    );
    for job in finished.iter().chain([&crossing]) {
        assert_eq!(c.wait_job(*job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    }
    wait_running(&c, running);
    std::thread::sleep(Duration::from_secs(3));
    let until = now_text();

    // slurmdbd gets job records asynchronously: wait until sacct has all 7, ended ones
    // with their end.
    let (expected, sacct_text) = poll("sacct to list the 7 jobs with allocations", 60, || {
        let (sums, text) = sacct_sums(&c, &since, &until);
        (
            sums.values().map(|s| s.jobs).sum::<u64>() == 7,
            (sums, text),
        )
    });
    // The oracle saw what the test made: the crossing job cut to the period, the running
    // job counted, both domains, the -p list job in the domain it ran in.
    let crossing_line = sacct_text
        .lines()
        .find(|l| l.starts_with(&format!("{crossing}|")))
        .unwrap();
    let crossing_secs: u64 = crossing_line.split('|').nth(4).unwrap().parse().unwrap();
    assert!(
        (1..12).contains(&crossing_secs),
        "the crossing job is cut: {crossing_line}"
    );
    let running_line = sacct_text
        .lines()
        .find(|l| l.starts_with(&format!("{running}|")))
        .unwrap();
    assert_ne!(running_line.split('|').nth(4), Some("0"), "{running_line}");
    let key = |d: &str, a: &str, u: &User| (d.to_string(), a.to_string(), u.name.clone());
    assert_eq!(expected[&key("cloud", "proj_cloud", &bob)].jobs, 1);
    assert_eq!(
        expected[&key("onprem", "proj", &bob)].jobs,
        2,
        "{sacct_text}"
    );
    assert!(expected[&key("cloud", "proj_cloud", &alice)].gpu_secs > 0);

    let period = ["--since", since.as_str(), "--until", until.as_str()];
    // CSV, as root and as a user (the policy is root-owned and readable).
    for user in [None, Some(&alice)] {
        let mut args = period.to_vec();
        args.push("--csv");
        let out = ok(mlacct(&c, &tool, user, &args));
        assert_eq!(
            csv_sums(&stdout(&out)),
            expected,
            "mlacct --csv as {user:?}:\n{}\nsacct:\n{sacct_text}",
            stdout(&out)
        );
        println!("mlacct {} (as {user:?}):\n{}", args.join(" "), stdout(&out));
    }
    // JSON.
    let mut args = period.to_vec();
    args.push("--json");
    let json_out = stdout(&ok(mlacct(&c, &tool, None, &args)));
    assert_eq!(json_sums(&json_out), expected, "{json_out}");
    println!("mlacct {}:\n{json_out}", args.join(" "));
    // The table: one line per row, as people read it.
    let table = stdout(&ok(mlacct(&c, &tool, None, &period)));
    println!("mlacct {}:\n{table}", period.join(" "));
    let table_rows: Vec<Vec<String>> = table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    for (key, s) in &expected {
        let want = table_line(key, s);
        assert!(
            table_rows.contains(&want),
            "no line {want:?} in the table:\n{table}"
        );
    }
    let total: Sums = expected.values().fold(Sums::default(), |a, s| Sums {
        jobs: a.jobs + s.jobs,
        gpu_secs: a.gpu_secs + s.gpu_secs,
        cpu_secs: a.cpu_secs + s.cpu_secs,
        billing_secs: a.billing_secs + s.billing_secs,
    });
    let all = (
        "(all)".to_string(),
        "(all)".to_string(),
        "(all)".to_string(),
    );
    let mut want_total = table_line(&all, &total);
    let cloud_cost: f64 = expected
        .iter()
        .filter(|(k, _)| k.0 == "cloud")
        .map(|(_, s)| s.billing_secs as f64 / 3600.0 * 0.01)
        .sum();
    want_total[7] = format!("{cloud_cost:.2}");
    assert!(table_rows.contains(&want_total), "{table}");
    // Filters: a parent account matches its shadow.
    let mut args = period.to_vec();
    args.extend(["--csv", "--account", "proj", "--domain", "cloud"]);
    let filtered = csv_sums(&stdout(&ok(mlacct(&c, &tool, None, &args))));
    let want: Expected = expected
        .iter()
        .filter(|(k, _)| k.0 == "cloud" && k.1.starts_with("proj"))
        .map(|(k, s)| (k.clone(), *s))
        .collect();
    assert_eq!(filtered, want);

    // A time Slurm cannot read: its own complaint is not printed, ours is.
    let out = mlacct(&c, &tool, None, &["--since", "yesterday-ish"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "mlacct: --since: Slurm cannot read \"yesterday-ish\" as a time\n"
    );

    budget_equals_sshare(&c, &tool, &table);
    unreachable_daemons(&c, &tool);
}

/// The budget left of proj_cloud: sshare's GrpTRESMins less its GrpTRESRaw, once the
/// cloud jobs' usage reached slurmctld (at job end or the next PriorityCalcPeriod).
fn budget_equals_sshare(c: &Cluster, tool: &Path, table: &str) {
    poll("slurmctld to count proj_cloud's billing usage", 150, || {
        let seen = sshare_billing(c, "proj_cloud");
        (seen.1 > 0, (seen, table.to_string()))
    });
    // Usage changes only while proj_cloud has jobs running: none now, so one reading of
    // sshare and one of mlacct see the same number.
    let (limit, used) = sshare_billing(c, "proj_cloud");
    assert_eq!(limit, BUDGET);
    let out = stdout(&ok(mlacct(c, tool, None, &["--json"])));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let budgets = v["budgets"].as_array().unwrap();
    assert_eq!(budgets.len(), 1, "{out}");
    let b = &budgets[0];
    assert_eq!(b["account"], "proj_cloud");
    assert_eq!(b["parent"], "proj");
    assert_eq!(b["domain"], "cloud");
    assert_eq!(b["limit_billing_minutes"], BUDGET);
    assert_eq!(b["used_billing_minutes"], used, "{out}");
    assert_eq!(b["left_billing_minutes"], BUDGET - used, "{out}");
    let table = stdout(&ok(mlacct(c, tool, None, &[])));
    let line = [
        "cloud".to_string(),
        "proj_cloud".into(),
        "proj".into(),
        BUDGET.to_string(),
        used.to_string(),
        (BUDGET - used).to_string(),
        format!("{:.2}", (BUDGET - used) as f64 / 60.0 * 0.01),
    ];
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().eq(line.iter().map(String::as_str))),
        "no budget line {line:?} in:\n{table}"
    );
    println!("mlacct (today until now):\n{table}");
}

/// slurmctld down: the budget cannot be read, but CSV (no budgets) still can; slurmdbd
/// down: nothing can. One line on stderr each, exit 2.
fn unreachable_daemons(c: &Cluster, tool: &Path) {
    let until = now_text();
    let csv_args = ["--csv", "--until", until.as_str()];
    let csv = stdout(&ok(mlacct(c, tool, None, &csv_args)));
    stop_daemon(c, "slurmctld");
    let out = mlacct(c, tool, None, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "mlacct: cannot read slurmctld: Unable to contact slurm controller (connect failure)\n"
    );
    assert_eq!(stdout(&ok(mlacct(c, tool, None, &csv_args))), csv);
    stop_daemon(c, "slurmdbd");
    let out = mlacct(c, tool, None, &["--csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let conf = std::fs::read_to_string(c.conf_path()).unwrap();
    let port = conf
        .lines()
        .find_map(|l| l.strip_prefix("AccountingStoragePort="))
        .unwrap();
    assert_eq!(
        stderr(&out),
        format!("mlacct: cannot read slurmdbd: Connection refused (AccountingStorageHost:Port 127.0.0.1:{port})\n")
    );
    assert_eq!(stdout(&out), "", "nothing half-printed");
}

/// A requeued job ran (and was charged by slurmctld) once per run; slurmdbd keeps one
/// record per run, which sacct lists with -D. The report counts every run: here the first
/// run, ended by `scontrol requeue` while the job pends again.
#[test]
fn a_requeued_job_counts_every_run() {
    let (c, tool, _alice, bob) = setup();
    let since = now_text();
    std::thread::sleep(Duration::from_secs(1));
    let job = submit(
        &c,
        &bob,
        &[
            "-p",
            "cloud",
            "-A",
            "proj_cloud",
            "-c",
            "2",
            "--requeue",
            "--wrap",
            "sleep 600",
        ],
    );
    wait_running(&c, job);
    std::thread::sleep(Duration::from_secs(3));
    ok(c.run("scontrol", ["requeue", &job.to_string()]).unwrap());
    // The requeued job waits (its begin time moved on); root lets it run again, and it
    // is cancelled in its second run.
    let records = |state: &'static str| {
        poll(&format!("sacct -D to list a {state} run"), 90, || {
            let out = ok(c
                .run(
                    "sacct",
                    [
                        "-X",
                        "-D",
                        "-P",
                        "-n",
                        "-j",
                        &job.to_string(),
                        "-o",
                        "State,ElapsedRaw,AllocTRES",
                    ],
                )
                .unwrap());
            let text = stdout(&out);
            let done = text
                .lines()
                .any(|l| l.starts_with(state) && !l.ends_with('|'));
            (done, text)
        })
    };
    records("REQUEUED");
    // The requeue sets the begin time once the run has ended (from 24.11 after the RPC
    // returns): move it to now until the job runs again.
    wait_for(
        &format!("job {job} pending again"),
        JOB_TIMEOUT,
        || c.job_field(job, "JobState").unwrap().as_deref() == Some("PENDING"),
        || c.log("slurmctld"),
    );
    // Forcing the start defeats the begin-time delay that shields the next run from the
    // first run's revoked credential: slurmd refuses a credential made in the second of
    // the revocation or before (cred_context.c, ctime <= revoked), "Job credential
    // revoked". PENDING shows only once the first run left its node (COMPLETING is shown
    // before it); a second more puts the next credential after the revocation.
    std::thread::sleep(Duration::from_secs(2));
    let _ = c.run("scontrol", ["release", &job.to_string()]);
    wait_for(
        &format!("job {job} running again"),
        JOB_TIMEOUT,
        || {
            let _ = c.run(
                "scontrol",
                ["update", &format!("jobid={job}"), "StartTime=now"],
            );
            std::thread::sleep(Duration::from_millis(500));
            c.job_field(job, "JobState").unwrap().as_deref() == Some("RUNNING")
        },
        || c.log("slurmctld"),
    );
    std::thread::sleep(Duration::from_secs(3));
    ok(c.run("scancel", [job.to_string()]).unwrap());
    let text = records("CANCELLED");
    // Every run with an allocation, as sacct -D lists them.
    let (mut runs, mut cpu, mut billing) = (0, 0, 0);
    for l in text.lines() {
        let f: Vec<&str> = l.split('|').collect();
        if f[2].is_empty() {
            continue;
        }
        let secs: u64 = f[1].parse().unwrap();
        runs += 1;
        cpu += alloc(f[2], "cpu") * secs;
        billing += alloc(f[2], "billing") * secs;
    }
    assert_eq!(runs, 2, "{text}");
    std::thread::sleep(Duration::from_secs(1));
    let until = now_text();
    let out = stdout(&ok(mlacct(
        &c,
        &tool,
        None,
        &["--since", &since, "--until", &until, "--csv"],
    )));
    let sums = csv_sums(&out);
    let key = (
        "cloud".to_string(),
        "proj_cloud".to_string(),
        bob.name.clone(),
    );
    let got = sums.get(&key).copied().unwrap_or_default();
    assert_eq!(
        (got.jobs, got.cpu_secs, got.billing_secs),
        (2, cpu, billing),
        "mlacct --csv:\n{out}\nsacct -D:\n{text}"
    );
}
