//! A regular user trying to get more GPUs, nodes or time than the policy allows, through
//! every door Slurm has: sbatch, srun, salloc, het jobs, arrays, `scontrol update`, a
//! requeued job, an admin account named without enforcement; and many users at once.
//! Every attempt must be refused with the policy's line, and nothing of it must reach the
//! job. The policy is the shipped `conf-examples/mlpolicy.json`, with sharing GRES counted.

mod common;

use std::time::{Duration, Instant};

use common::*;
use local_cluster::{cargo_artifact, ensure_user, Cluster, Options, User};

fn policy() -> String {
    // The local cluster's cpu partition is on GPU nodes: the shipped policy's
    // `gpus_per_node: 0` for it would be false here.
    let shipped =
        include_str!("../conf-examples/mlpolicy.json").replacen("\"gpus_per_node\": 0,", "", 1);
    shipped.replacen(
        "\"default_gpu_partition\"",
        "\"gpu_gres\": [\"gpu\", \"shard\", \"mps\"],\n  \"default_gpu_partition\"",
        1,
    )
}

fn cluster_with(policy: &str, partitions: &[&str]) -> Cluster {
    let plugin = cargo_artifact("libjob_submit_mlpolicy.so").unwrap_or_else(|e| panic!("{e}"));
    start(Options {
        job_submit_plugins: vec![plugin],
        extra_slurm_conf: partitions
            .iter()
            .map(|p| format!("PartitionName={p} Nodes=n[1-3] State=UP"))
            // Sharing GRES known to Slurm, so the client sends the requests on; users may
            // ask for specialized cores (which makes whole-node jobs).
            .chain([
                "GresTypes=gpu,shard,mps".to_string(),
                "AllowSpecResourcesUsage=YES".to_string(),
            ])
            .collect(),
        extra_files: vec![("mlpolicy.json".into(), policy.into())],
        ..Options::default()
    })
}

fn cluster() -> Cluster {
    cluster_with(&policy(), &["gpu", "interactive", "cpu"])
}

fn user() -> User {
    ensure_user("mltest-a").unwrap()
}

const SEE: &str = " (see https://wiki.example.org/hpc/gpu-policy)";

/// `program args` as `u` is refused with the plugin's line containing `says`, and the
/// refusal is logged by rule.
fn refused_as(c: &Cluster, u: &User, program: &str, args: &[&str], rule: &str, says: &str) {
    let out = c.run_as(u, program, args).unwrap();
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{program} {args:?} was accepted:\n{}",
        stdout(&out)
    );
    // A het job's line names the component: `salloc: error: 1: mlpolicy: ...`.
    let prefix = format!("{program}: error: ");
    let line = err
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains("mlpolicy: "));
    assert!(
        line.is_some_and(|l| l.contains(says) && l.ends_with(SEE)),
        "{program} {args:?}: wanted a line with {says:?}:\n{err}\nslurmctld: {}",
        local_cluster::tail(&c.log_path("slurmctld"), 5)
    );
    let log = c.log("slurmctld");
    assert!(
        log.contains(&format!("refused for uid {} by rule {rule}: ", u.uid)),
        "{program} {args:?}: rule {rule} not logged:\n{log}"
    );
}

fn refused(c: &Cluster, program: &str, args: &[&str], rule: &str, says: &str) {
    refused_as(c, &user(), program, args, rule, says);
}

/// `sbatch -H -o /dev/null ARGS --wrap true`.
fn held(args: &[&str]) -> Vec<String> {
    ["-H", "-o", "/dev/null"]
        .iter()
        .chain(args)
        .chain(&["--wrap", "true"])
        .map(|s| s.to_string())
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn every_request_form_is_judged_at_its_most() {
    let c = cluster();
    let per_job = "allows at most 2 GPUs per job; this request can get";
    let per_node = "allows at most 8 GPUs per node; this request can get";
    let cases: &[(&[&str], &str, &str)] = &[
        // Node ranges: the top of the range counts.
        (
            &[
                "-p",
                "interactive",
                "--time=1:00",
                "-N1-16",
                "--gpus-per-node=2",
            ],
            "max-gpus-per-job",
            "can get 32 (on 1-16 nodes)",
        ),
        // Tasks with no -N: each task may land on its own node.
        (
            &[
                "-p",
                "interactive",
                "--time=1:00",
                "-n4",
                "--gpus-per-node=1",
            ],
            "max-gpus-per-job",
            per_job,
        ),
        (
            &[
                "-p",
                "interactive",
                "--time=1:00",
                "-n3",
                "--gpus-per-task=1",
            ],
            "max-gpus-per-job",
            per_job,
        ),
        // Every GPU form against the per-node limit.
        (
            &["-p", "gpu", "-N1", "--gpus=16", "--cpus-per-gpu=4"],
            "max-gpus-per-node",
            per_node,
        ),
        (
            &["-p", "gpu", "-N1", "-n16", "-c4", "--gpus-per-task=1"],
            "max-gpus-per-node",
            per_node,
        ),
        (
            &[
                "-p",
                "gpu",
                "-n16",
                "--ntasks-per-node=16",
                "-c4",
                "--gpus-per-task=1",
            ],
            "max-gpus-per-node",
            per_node,
        ),
        (
            &[
                "-p",
                "gpu",
                "-N1",
                "--gpus-per-socket=8",
                "--sockets-per-node=2",
                "--cpus-per-gpu=4",
            ],
            "max-gpus-per-node",
            per_node,
        ),
        // A range of nodes that are not taken whole.
        (
            &["-p", "gpu", "-N1-8", "--gpus-per-node=4", "-c16"],
            "whole-nodes",
            "a job that can span 8 nodes must take whole nodes",
        ),
        // CPUs per GPU as Slurm allocates them.
        (
            &["-p", "gpu", "-c2", "--gpus-per-node=8"],
            "cpus-per-gpu",
            "at least 4 CPUs per GPU; this request gives 0.25",
        ),
        (
            &["-p", "gpu", "-N1", "-n64", "--gpus=1"],
            "cpus-per-gpu",
            "at most 24 CPUs per GPU; this request gives 64",
        ),
        // GPU sharing GRES count as GPUs where the policy says.
        (
            &["-p", "cpu", "--gres=shard:1"],
            "cpu-partition-no-gpus",
            "partition 'cpu' has no GPUs",
        ),
        (
            &["-p", "cpu", "--gres=mps:50"],
            "cpu-partition-no-gpus",
            "partition 'cpu' has no GPUs",
        ),
        // Time.
        (
            &["-p", "interactive", "--gpus-per-node=1"],
            "require-time",
            "needs a time limit",
        ),
        (
            &["-p", "interactive", "--gpus-per-node=1", "--time=4:01:00"],
            "max-time",
            "allows at most 4:00:00",
        ),
        // GPUs Slurm adds after job_submit: --ntasks-per-gpu with no GPU option.
        (
            &["-p", "cpu", "-n8", "--ntasks-per-gpu=1"],
            "cpu-partition-no-gpus",
            "partition 'cpu' has no GPUs",
        ),
        (
            &[
                "-p",
                "interactive",
                "--time=10",
                "-n4",
                "--ntasks-per-gpu=1",
            ],
            "max-gpus-per-job",
            per_job,
        ),
        // --exclusive is given every GPU of its nodes.
        (
            &["-p", "interactive", "--time=10", "--gpus=1", "--exclusive"],
            "max-gpus-per-job",
            "leave out --exclusive",
        ),
        // --core-spec makes a whole-node job too; --exclusive in a cpu partition on GPU nodes.
        (
            &[
                "-p",
                "interactive",
                "--time=10",
                "--gpus=1",
                "--core-spec=1",
            ],
            "max-gpus-per-job",
            "leave out --exclusive (and --core-spec, --thread-spec)",
        ),
        (
            &["-p", "cpu", "--time=10", "--exclusive"],
            "cpu-partition-whole-nodes",
            "gets every GPU on them",
        ),
        // CPUs past the ceiling through tasks or --mincpus, whatever --cpus-per-gpu says.
        (
            &[
                "-p",
                "gpu",
                "-N1",
                "-n32",
                "--gpus-per-node=1",
                "--cpus-per-gpu=4",
            ],
            "cpus-per-gpu",
            "at most 24 CPUs per GPU; this request gives 32",
        ),
        (
            &["-p", "gpu", "--gpus=1", "--mincpus=32", "--cpus-per-gpu=4"],
            "cpus-per-gpu",
            "at most 24 CPUs per GPU; this request gives 32",
        ),
        // An admin account named where associations are not enforced exempts no one.
        (
            &["-A", "hpc-ops", "-p", "gpu"],
            "gpu-partition-needs-gpus",
            "needs a GPU request",
        ),
        // Arrays: every element is the same request.
        (
            &[
                "--array=1-4",
                "-p",
                "interactive",
                "--time=10",
                "-n3",
                "--gpus-per-task=1",
            ],
            "max-gpus-per-job",
            per_job,
        ),
    ];
    for (args, rule, says) in cases {
        refused(&c, "sbatch", &strs(&held(args)), rule, says);
    }
    // srun and salloc ask for allocations the same way.
    refused(
        &c,
        "srun",
        &[
            "-p",
            "interactive",
            "--time=10",
            "-N1-3",
            "--gpus-per-node=1",
            "true",
        ],
        "max-gpus-per-job",
        per_job,
    );
    refused(
        &c,
        "salloc",
        &[
            "-p",
            "interactive",
            "--time=10",
            "-N2",
            "--gpus-per-node=2",
            "true",
        ],
        "max-gpus-per-job",
        per_job,
    );
    refused(
        &c,
        "salloc",
        &[
            "-p",
            "gpu",
            "-N1",
            "-n16",
            "-c4",
            "--gpus-per-task=1",
            "true",
        ],
        "max-gpus-per-node",
        per_node,
    );
    // A het job: each component is judged on its own.
    refused(
        &c,
        "salloc",
        &[
            "-p",
            "cpu",
            "-n1",
            ":",
            "-p",
            "interactive",
            "--time=10",
            "-N3",
            "--gpus-per-node=1",
            "true",
        ],
        "max-gpus-per-job",
        per_job,
    );
    refused(
        &c,
        "sbatch",
        &[
            "-H",
            "-o",
            "/dev/null",
            "-p",
            "cpu",
            "-n1",
            "--wrap",
            "true",
            ":",
            "-p",
            "gpu",
            "-N1",
            "--gpus=16",
            "--cpus-per-gpu=4",
        ],
        "max-gpus-per-node",
        per_node,
    );
    // Nothing was queued by any of it.
    let q = stdout(&ok(c.run("squeue", ["-h", "-o", "%i"]).unwrap()));
    assert_eq!(q.trim(), "", "jobs were queued:\n{q}");
    // The same shapes within the limits are accepted.
    for args in [
        &[
            "-p",
            "interactive",
            "--time=1:00",
            "-N1",
            "--gpus-per-node=2",
        ][..],
        &["-p", "gpu", "-N1", "-n8", "-c4", "--gpus-per-task=1"],
        &[
            "-p",
            "gpu",
            "-N2",
            "--exclusive",
            "--gpus-per-node=8",
            "--cpus-per-gpu=4",
        ],
    ] {
        c.sbatch(Some(&user()), &strs(&held(args)))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
}

#[test]
fn a_job_without_a_partition_meets_the_rules_of_slurms_default() {
    // No default_gpu_partition: a GPU job without -p goes to slurm.conf's Default=YES
    // partition (the local cluster's `debug`), whose rules apply.
    let policy = r#"{"partitions": {"debug": {"max_gpus_per_job": 1}, "gpu": {"kind": "gpu"}}}"#;
    let c = cluster_with(policy, &["gpu"]);
    let out = c
        .run_as(&user(), "sbatch", strs(&held(&["--gpus-per-node=2"])))
        .unwrap();
    assert!(!out.status.success(), "accepted");
    assert!(
        stderr(&out).contains("sbatch: error: mlpolicy: partition 'debug' allows at most 1 GPUs per job; this request can get 2 (on 1 node(s)): use fewer nodes, tasks or GPUs\n"),
        "{}",
        stderr(&out)
    );
    let job = c
        .sbatch(Some(&user()), &strs(&held(&["--gpus-per-node=1"])))
        .unwrap();
    assert_eq!(
        c.job_field(job, "Partition").unwrap().as_deref(),
        Some("debug")
    );
}

/// Updates of a held job, and of a running job the user requeued and held: the update
/// cannot show the job's partition or its other requests, so it is refused.
#[test]
fn updates_and_requeues_cannot_grow_a_job() {
    let c = cluster();
    let u = user();
    let small = c
        .sbatch(
            Some(&u),
            &strs(&held(&[
                "-p",
                "interactive",
                "--time=10",
                "--gpus-per-node=1",
            ])),
        )
        .unwrap();
    let running = c
        .sbatch(
            Some(&u),
            &[
                "-o",
                "/dev/null",
                "-p",
                "cpu",
                "--time=10",
                "--wrap",
                "sleep 300",
            ],
        )
        .unwrap();
    wait_for(
        "the job running",
        JOB_TIMEOUT,
        || c.job_field(running, "JobState").ok().flatten().as_deref() == Some("RUNNING"),
        || c.log("slurmctld"),
    );
    let ok_ = ok(c
        .run_as(&u, "scontrol", ["requeuehold", &running.to_string()])
        .unwrap());
    let _ = ok_;
    for job in [small, running] {
        let id = format!("jobid={job}");
        for args in [
            &["Gres=gpu:64"][..],
            &["TresPerNode=gres/gpu:8"],
            &["TresPerJob=gres/gpu:16"],
            &["TresPerTask=gres/gpu=4", "NumTasks=3"],
            &["NumNodes=3"],
            &["NumNodes=1-3"],
            &["NumTasks=3"],
            &["CPUsPerTask=8"],
            &["Partition=gpu", "Gres=gpu:8"],
            &["Partition=interactive", "TimeLimit=30"],
            &["TimeLimit=5-00:00:00"],
            &["ReqNodeList=n[1-3]"],
            &["TresPerNode="],
            &["NumTasks=8", "TresPerJob=gres/gpu:1"],
        ] {
            let mut a = vec!["update", id.as_str()];
            a.extend_from_slice(args);
            let out = c.run_as(&u, "scontrol", &a).unwrap();
            assert!(!out.status.success(), "job {job}: {args:?} accepted");
        }
        let log = c.log("slurmctld");
        for rule in ["update-resources", "update-partition", "update-time"] {
            assert!(
                log.contains(&format!(
                    "job_modify refused for uid {} by rule {rule}",
                    u.uid
                )),
                "{rule}:\n{log}"
            );
        }
        assert_eq!(node_count(&c, job).as_deref(), Some("1"), "job {job}");
    }
    assert_eq!(
        c.job_field(small, "Partition").unwrap().as_deref(),
        Some("interactive")
    );
    assert_eq!(
        c.job_field(running, "Partition").unwrap().as_deref(),
        Some("cpu")
    );
    assert_eq!(c.job_field(running, "TresPerNode").unwrap(), None);
}

/// Many users submitting at once (from 23.02 job_submit runs concurrently): every verdict
/// is right and the controller stays up. `ADVERSARIAL_SECS` sets the length (30 s).
#[test]
fn concurrent_submitters_get_the_right_verdicts() {
    let c = cluster();
    let users = [
        ensure_user("mltest-a").unwrap(),
        ensure_user("mltest-b").unwrap(),
    ];
    let secs = std::env::var("ADVERSARIAL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let until = Instant::now() + Duration::from_secs(secs);
    let good = held(&["-p", "interactive", "--time=10", "--gpus-per-node=1"]);
    let bad = held(&[
        "-p",
        "interactive",
        "--time=10",
        "-N1-3",
        "--gpus-per-node=1",
    ]);
    let counts: Vec<(u32, u32)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let (c, u, good, bad) = (&c, &users[i % 2], &good, &bad);
                s.spawn(move || {
                    let mut n = (0, 0);
                    while Instant::now() < until {
                        let want_ok = (n.0 + n.1 + i as u32).is_multiple_of(2);
                        let args = if want_ok { good } else { bad };
                        let out = c.run_as(u, "sbatch", strs(args)).unwrap();
                        assert_eq!(
                            out.status.success(),
                            want_ok,
                            "worker {i}: {}",
                            stderr(&out)
                        );
                        if want_ok {
                            n.0 += 1
                        } else {
                            n.1 += 1
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let (accepted, refused): (u32, u32) =
        counts.iter().fold((0, 0), |(a, r), (x, y)| (a + x, r + y));
    assert!(accepted > 0 && refused > 0, "{counts:?}");
    let queued = stdout(&ok(c.run("squeue", ["-h", "-o", "%i"]).unwrap()))
        .lines()
        .count() as u32;
    assert_eq!(queued, accepted, "accepted {accepted}, refused {refused}");
    let ping = stdout(&ok(c.run("scontrol", ["ping"]).unwrap()));
    assert!(ping.contains("is UP"), "{ping}");
    eprintln!("{secs} s, 8 submitters: {accepted} accepted, {refused} refused");
}
