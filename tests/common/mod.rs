//! Shared by the integration tests: clusters with the test plugins, output helpers.

#![allow(dead_code)]

use std::process::Output;
use std::time::Duration;

use local_cluster::{cargo_artifact, Cluster, Options, SpankPlugin, User};

pub const JOB_TIMEOUT: Duration = Duration::from_secs(60);

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics with the command's output when it failed.
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Submits a batch job with `-o <work dir>/<out_name>` added, waits for it to complete and
/// returns its id and its output.
pub fn run_batch(c: &Cluster, user: &User, out_name: &str, args: &[&str]) -> (u32, String) {
    let out_file = c.work_dir().join(out_name);
    let mut all = vec!["-o", out_file.to_str().unwrap()];
    all.extend_from_slice(args);
    let job = c.sbatch(Some(user), &all).unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    (job, std::fs::read_to_string(&out_file).unwrap())
}

/// Polls `cond` until it holds; after `timeout`, panics with `what` and `diagnostics()`
/// (the logs that say why).
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
    diagnostics: impl FnOnce() -> String,
) {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(cond(), "{what}: not within {timeout:?}; {}", diagnostics());
}

/// Polls `sacct -n -X -P -j JOB -o FIELDS` (trimmed) every half second until `accept`
/// takes it: slurmctld sends job records to slurmdbd asynchronously, and for a moment a
/// row can exist with placeholder or empty values. After 60 s, panics with `what`, the
/// last output and slurmdbd's log.
pub fn sacct_until<T>(
    c: &Cluster,
    job: u32,
    fields: &str,
    what: &str,
    mut accept: impl FnMut(&str) -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = ok(c
            .run(
                "sacct",
                ["-n", "-X", "-P", "-j", &job.to_string(), "-o", fields],
            )
            .unwrap());
        let text = stdout(&out).trim().to_string();
        if let Some(v) = accept(&text) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sacct never showed job {job} {what}; last output: {text:?}\nslurmdbd log:\n{}",
            c.log("slurmdbd")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `sinfo`'s state and reason for a node, as an admin reads them.
pub fn sinfo(c: &Cluster, node: &str) -> (String, String) {
    let out = ok(c
        .run("sinfo", ["-h", "-N", "-n", node, "-o", "%T|%E"])
        .unwrap());
    let text = stdout(&out);
    let line = text.lines().next().unwrap_or("").to_string();
    let (state, reason) = line.split_once('|').unwrap_or((&line, ""));
    // A resumed node shows `idle*` (not responding) until slurmctld's next ping.
    (state.trim_end_matches('*').to_string(), reason.to_string())
}

/// A job's `NumNodes` as one count where min and max agree (24.11 shows `1-1`, 22.05 `1`).
pub fn node_count(c: &Cluster, job: u32) -> Option<String> {
    let n = c.job_field(job, "NumNodes").unwrap()?;
    Some(match n.split_once('-') {
        Some((lo, hi)) if lo == hi => lo.to_string(),
        _ => n,
    })
}

pub fn start(opts: Options) -> Cluster {
    match Cluster::start(opts) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// A 3-node cluster with the selftest SPANK and job_submit plugins loaded.
pub fn selftest_cluster() -> Cluster {
    let spank = cargo_artifact("libspank_selftest.so").unwrap_or_else(|e| panic!("{e}"));
    let job_submit = cargo_artifact("libjob_submit_selftest.so").unwrap_or_else(|e| panic!("{e}"));
    start(Options {
        spank_plugins: vec![SpankPlugin {
            artifact: spank,
            args: vec![],
            required: true,
        }],
        job_submit_plugins: vec![job_submit],
        ..Options::default()
    })
}

/// Waits until slurmctld holds `user` (with `default` as DefAccount, when given) and the
/// user's associations with `accounts`: slurmdbd pushes what `sacctmgr` added to
/// slurmctld asynchronously, and a job submitted before that is refused ("Invalid account
/// or account/partition combination specified"). Reads slurmctld's own cache
/// (`scontrol show assoc_mgr`, scontrol/info_assoc_mgr.c in 22.05 to 26.05).
pub fn wait_for_associations(c: &Cluster, user: &str, accounts: &[&str], default: Option<&str>) {
    let shown = || {
        c.run(
            "scontrol",
            [
                "show",
                "assoc_mgr",
                &format!("users={user}"),
                "flags=users,assoc",
            ],
        )
        .map(|o| stdout(&o))
        .unwrap_or_default()
    };
    wait_for(
        &format!("{user}'s associations in slurmctld"),
        Duration::from_secs(30),
        || {
            let text = shown();
            let named = format!("UserName={user}(");
            let has_default = default.is_none_or(|d| {
                text.lines()
                    .any(|l| l.contains(&named) && l.contains(&format!(" DefAccount={d} ")))
            });
            has_default
                && accounts.iter().all(|a| {
                    text.lines()
                        .any(|l| l.contains(&format!("Account={a} {named}")))
                })
        },
        || format!("scontrol show assoc_mgr:\n{}", shown()),
    );
}
