//! The mlpolicy job_submit plugin inside a real slurmctld: what a user sees from sbatch,
//! srun, salloc and scontrol update; routing; arrays and het jobs; reload on
//! `scontrol reconfigure`; a broken policy never stops the controller.

mod common;

use common::*;
use local_cluster::{cargo_artifact, ensure_user, Cluster, Options, User};

const POLICY: &str = r#"{
  "doc_url": "https://example.org/policy",
  "default_gpu_partition": "gpu",
  "default_cpu_partition": "cpu",
  "partitions": {
    "gpu": {"kind": "gpu", "max_gpus_per_node": 4, "max_gpus_per_job": 16, "gpu_types": ["h100"], "gpus_per_node": 8, "whole_nodes": true},
    "interactive": {"kind": "gpu", "max_time": "1:00:00", "require_time": true},
    "cpu": {"kind": "cpu"},
    "short": {"max_time": "0:30:00"}
  }
}
"#;

const SEE: &str = " (see https://example.org/policy)";

/// The partitions the policies of these tests name, all over the 3 nodes.
fn partitions() -> Vec<String> {
    ["gpu", "cpu", "interactive", "short"]
        .iter()
        .map(|p| format!("PartitionName={p} Nodes=n[1-3] State=UP"))
        .collect()
}

fn policy_cluster(policy: &str) -> Cluster {
    let plugin = cargo_artifact("libjob_submit_mlpolicy.so").unwrap_or_else(|e| panic!("{e}"));
    start(Options {
        job_submit_plugins: vec![plugin],
        extra_slurm_conf: partitions(),
        extra_files: vec![("mlpolicy.json".into(), policy.into())],
        ..Options::default()
    })
}

fn user() -> User {
    ensure_user("mltest-a").unwrap()
}

/// Submits a held `--wrap true` job with `args` as the test user; returns its id and the
/// partition slurmctld put it in.
fn held_job(c: &Cluster, args: &[&str]) -> (u32, String) {
    let mut full = vec!["-H", "-o", "/dev/null"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--wrap", "true"]);
    let job = c.sbatch(Some(&user()), &full).unwrap();
    let partition = c.job_field(job, "Partition").unwrap().unwrap_or_default();
    (job, partition)
}

/// Runs `program args` as the test user; returns (success, stderr).
fn as_user(c: &Cluster, program: &str, args: &[&str]) -> (bool, String) {
    let out = c.run_as(&user(), program, args).unwrap();
    (out.status.success(), stderr(&out))
}

/// `program args` as the test user is refused with exactly this line from the plugin, and
/// Slurm's own line for the code.
fn refused(c: &Cluster, program: &str, args: &[&str], reason: &str, slurm_says: &str) {
    let (ok, err) = as_user(c, program, args);
    assert!(!ok, "{program} {args:?} was accepted");
    let line = format!("{program}: error: mlpolicy: {reason}{SEE}\n");
    assert!(
        err.contains(&line),
        "{program} {args:?}:\n{err}\nwanted: {line}"
    );
    assert!(err.contains(slurm_says), "{program} {args:?}:\n{err}");
}

const GRES: &str = "Invalid generic resource (gres) specification";

#[test]
fn each_rule_refuses_with_one_clear_line() {
    let c = policy_cluster(POLICY);
    let held = |extra: &[&str]| {
        let mut a = vec!["-H", "-o", "/dev/null"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--wrap", "true"]);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let cases: &[(&[&str], &str, &str)] = &[
        (&["-p", "gpu"], "partition 'gpu' needs a GPU request: add --gpus-per-node=N (or submit to partition 'cpu')", GRES),
        (&["-p", "cpu", "--gpus-per-node=1"], "partition 'cpu' has no GPUs: remove the GPU request (or submit to partition 'gpu')", GRES),
        (&["-p", "gpu", "--gpus-per-node=5"], "partition 'gpu' allows at most 4 GPUs per node; this request can get 5 on one node: lower the GPUs per node or per task, or the tasks per node", GRES),
        (&["-p", "gpu", "--gpus=a100:1"], "partition 'gpu' has no 'a100' GPUs: use one of h100 (or no type)", GRES),
        (&["-p", "gpu", "-N2", "--gpus-per-node=2"], "partition 'gpu': a job that can span 2 nodes must take whole nodes: add --exclusive or --gpus-per-node=8 (or use -N1)", "Node count specification invalid"),
        (&["-p", "interactive", "--gpus-per-node=1"], "partition 'interactive' needs a time limit: add --time=1:00:00", "Requested time limit is invalid"),
        (&["-p", "interactive", "--gpus-per-node=1", "--time=2:00:00"], "partition 'interactive' allows at most 1:00:00 (60 minutes); the job asks for 120 minutes: lower --time", "Requested time limit is invalid"),
        (&["-p", "gpu,cpu", "--gpus-per-node=1"], "partition 'cpu' has no GPUs: remove the GPU request (or submit to partition 'gpu')", GRES),
        (&["-p", "gpu", "--gres=gpu:0"], "a request for 0 GPUs is not allowed: leave the GPU option out", GRES),
        (&["--array=1-3", "-p", "cpu", "--gpus-per-node=1"], "partition 'cpu' has no GPUs: remove the GPU request (or submit to partition 'gpu')", GRES),
    ];
    for (args, reason, slurm_says) in cases {
        let a = held(args);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        refused(&c, "sbatch", &a, reason, slurm_says);
    }
    // srun and salloc get the same line.
    refused(
        &c,
        "srun",
        &["-p", "cpu", "--gpus-per-node=1", "true"],
        "partition 'cpu' has no GPUs: remove the GPU request (or submit to partition 'gpu')",
        GRES,
    );
    refused(
        &c,
        "salloc",
        &["-p", "gpu", "true"],
        "partition 'gpu' needs a GPU request: add --gpus-per-node=N (or submit to partition 'cpu')",
        GRES,
    );
    // Each decision is in slurmctld's log with the user and the rule.
    let uid = user().uid;
    let log = c.log("slurmctld");
    for rule in [
        "gpu-partition-needs-gpus",
        "cpu-partition-no-gpus",
        "max-gpus-per-node",
        "gpu-type",
        "whole-nodes",
        "require-time",
        "max-time",
        "zero-gpus",
    ] {
        assert!(
            log.contains(&format!(
                "job_submit/mlpolicy: job_submit refused for uid {uid} by rule {rule}: mlpolicy: "
            )),
            "rule {rule} not logged:\n{log}"
        );
    }
}

#[test]
fn accepted_jobs_are_routed_and_admins_are_exempt() {
    let c = policy_cluster(POLICY);
    let u = user();
    assert_eq!(held_job(&c, &["--gpus-per-node=1"]).1, "gpu");
    assert_eq!(held_job(&c, &[]).1, "cpu");
    assert_eq!(
        held_job(&c, &["-p", "gpu", "-N1", "--gpus-per-node=2"]).1,
        "gpu"
    );
    // A routed job runs where it was sent.
    let ran = c
        .sbatch(
            Some(&u),
            &["-o", "/dev/null", "--gpus-per-node=1", "--wrap", "true"],
        )
        .unwrap();
    assert_eq!(c.wait_job(ran, JOB_TIMEOUT).unwrap(), "COMPLETED");
    // root skips the rules (logged at debug level only).
    let out = ok(c
        .run(
            "sbatch",
            ["-H", "-o", "/dev/null", "-p", "gpu", "--wrap", "true"],
        )
        .unwrap());
    assert!(stdout(&out).starts_with("Submitted batch job"));
}

#[test]
fn het_jobs_are_checked_per_component() {
    let c = policy_cluster(POLICY);
    let (ok_, err) = as_user(
        &c,
        "salloc",
        &["-p", "cpu", "-n1", ":", "-p", "gpu", "-n1", "true"],
    );
    assert!(!ok_);
    assert!(
        err.contains(&format!("mlpolicy: partition 'gpu' needs a GPU request: add --gpus-per-node=N (or submit to partition 'cpu'){SEE}")),
        "{err}"
    );
    let (ok_, err) = as_user(
        &c,
        "salloc",
        &[
            "-p",
            "cpu",
            "-n1",
            ":",
            "-p",
            "gpu",
            "-n1",
            "--gpus-per-node=1",
            "true",
        ],
    );
    assert!(ok_, "{err}");
}

/// `scontrol update` by the job's owner goes through job_modify. Slurm gives it only the
/// fields being changed, never the job's partition or its other requests, so an update is
/// let through only where that is enough to judge it (engine::evaluate_update).
#[test]
fn updates_are_never_let_through_unjudged() {
    let c = policy_cluster(POLICY);
    let u = user();
    let (job, _) = held_job(&c, &["-p", "cpu", "--time=10"]);
    let id = format!("jobid={job}");
    let update = |args: &[&str]| {
        let mut a = vec!["update", id.as_str()];
        a.extend_from_slice(args);
        as_user(&c, "scontrol", &a)
    };
    // GPUs, nodes, tasks or CPUs of a held job: refused, whatever the form.
    let resources = "the GPUs, nodes, tasks or CPUs of a submitted job cannot be changed by an update here, since the policy could not check the result: cancel the job and submit it again with the new request (or ask an admin)";
    for args in [
        &["Gres=gpu:64"][..],
        &["TresPerNode=gres/gpu:8"],
        &["TresPerTask=gres/gpu=1", "NumTasks=16"],
        &["NumNodes=3"],
        &["NumTasks=3"],
        &["MinCPUsNode=2"],
    ] {
        let (ok_, err) = update(args);
        assert!(!ok_, "{args:?} was accepted");
        // job_modify gained err_msg in 23.02: from then on the user sees the plugin's reason.
        #[cfg(slurm_ge_23_02)]
        assert!(
            err.contains(&format!("mlpolicy: {resources}{SEE}")),
            "{args:?}: {err}"
        );
        assert!(err.contains("Access/permission denied"), "{args:?}: {err}");
        let _ = resources;
    }
    let log = c.log("slurmctld");
    assert!(
        log.contains(&format!(
            "job_submit/mlpolicy: job_modify refused for uid {} by rule update-resources",
            u.uid
        )),
        "{log}"
    );
    assert_eq!(c.job_field(job, "TresPerNode").unwrap(), None);
    assert_eq!(node_count(&c, job).as_deref(), Some("1"));
    // Into a partition whose rules read the job's resources: refused, with the way to do it.
    let (ok_, err) = update(&["Partition=interactive", "TimeLimit=30", "Gres=gpu:1"]);
    assert!(!ok_, "moved into interactive");
    #[cfg(slurm_ge_23_02)]
    assert!(err.contains("mlpolicy: a job cannot be moved into partition 'interactive' by an update, since its rules depend on the job's GPU, node and CPU requests, which an update does not show: cancel the job and submit it again with -p interactive (or ask an admin)"), "{err}");
    let _ = err;
    assert_eq!(
        c.job_field(job, "Partition").unwrap().as_deref(),
        Some("cpu")
    );
    // Into a partition with time rules only: judged, the time limit must come along.
    let (ok_, _) = update(&["Partition=short"]);
    assert!(!ok_, "moved into short without a time limit");
    let (ok_, _) = update(&["Partition=short", "TimeLimit=31"]);
    assert!(!ok_, "moved into short with 31 minutes");
    let (ok_, err) = update(&["Partition=short", "TimeLimit=20"]);
    assert!(ok_, "{err}");
    assert_eq!(
        c.job_field(job, "Partition").unwrap().as_deref(),
        Some("short")
    );
    // A time limit alone: at most the policy's shortest max_time (short: 30 minutes).
    let (ok_, err) = update(&["TimeLimit=25"]);
    assert!(ok_, "{err}");
    let (ok_, _) = update(&["TimeLimit=45"]);
    assert!(!ok_, "45 minutes accepted without a partition");
    assert_eq!(
        c.job_field(job, "TimeLimit").unwrap().as_deref(),
        Some("00:25:00")
    );
    // Root (an admin) may change anything.
    ok(c.run("scontrol", ["update", id.as_str(), "NumNodes=2"])
        .unwrap());
    assert_eq!(node_count(&c, job).as_deref(), Some("2"));
}

/// `scontrol reconfigure` reloads the policy; a broken one is reported and the last good
/// one stays (across the re-exec that reconfigure is from 23.11 on); the controller stays up.
#[test]
fn reconfigure_reloads_and_a_broken_policy_keeps_the_last_good_one() {
    let c = policy_cluster(POLICY);
    let path = c.dir().join("mlpolicy.json");
    // The plugin sees a reconfigure by slurm.conf's `last_update`, which has one-second
    // resolution: let the second of the start pass.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(
        &path,
        POLICY.replace("\"max_gpus_per_node\": 4", "\"max_gpus_per_node\": 2"),
    )
    .unwrap();
    ok(c.run("scontrol", ["reconfigure"]).unwrap());
    let args = [
        "-H",
        "-o",
        "/dev/null",
        "-p",
        "gpu",
        "--gpus-per-node=3",
        "--wrap",
        "true",
    ];
    let reason =
        "partition 'gpu' allows at most 2 GPUs per node; this request can get 3 on one node: lower the GPUs per node or per task, or the tasks per node";
    // slurmctld applies a reconfigure asynchronously.
    wait_for(
        "the stricter policy in force",
        std::time::Duration::from_secs(20),
        || !as_user(&c, "sbatch", &args).0,
        || format!("slurmctld log:\n{}", c.log("slurmctld")),
    );
    refused(&c, "sbatch", &args, reason, GRES);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&path, "{\"partitions\": {\"gpu\": {\"kind\": \"gpu\",}}}\n").unwrap();
    ok(c.run("scontrol", ["reconfigure"]).unwrap());
    // The plugin's reload thread reads the policy again shortly after the reconfigure.
    // 22.05 keeps the policy in memory; from 23.11 reconfigure re-executes slurmctld,
    // which takes the copy the plugin saved in StateSaveLocation.
    let kept_in_memory = "trailing comma; keeping the policy loaded before";
    let kept_on_disk =
        "trailing comma; keeping the last policy that loaded (saved in StateSaveLocation)";
    wait_for(
        "the broken policy reported",
        std::time::Duration::from_secs(20),
        || {
            let log = c.log("slurmctld");
            log.contains(&format!(
                "mlpolicy.json: line 1, column 39: {kept_in_memory}"
            )) || log.contains(&format!("mlpolicy.json: line 1, column 39: {kept_on_disk}"))
        },
        || format!("slurmctld log:\n{}", c.log("slurmctld")),
    );
    refused(&c, "sbatch", &args, reason, GRES);
    // The controller answers (from 23.11 reconfigure replaces the slurmctld process, so
    // its pid is not the one the cluster started).
    let ping = stdout(&ok(c.run("scontrol", ["ping"]).unwrap()));
    assert!(ping.contains("is UP"), "{ping}");
}

#[test]
fn with_no_usable_policy_the_controller_runs_and_refuses_users() {
    let c = policy_cluster("{\"partitions\": [\n");
    let (ok_, err) = as_user(&c, "sbatch", &["-H", "-o", "/dev/null", "--wrap", "true"]);
    assert!(!ok_);
    assert!(
        err.contains("sbatch: error: mlpolicy: this cluster's job policy is misconfigured, so jobs cannot be checked and are not accepted; tell your admin (the reason is in the slurmctld log)"),
        "{err}"
    );
    assert!(
        c.log("slurmctld")
            .contains("no usable policy: jobs of users other than root are refused"),
        "{}",
        c.log("slurmctld")
    );
    // root can still submit (to repair, drain, test).
    ok(c.run("sbatch", ["-H", "-o", "/dev/null", "--wrap", "true"])
        .unwrap());
}

/// conf-examples/job_submit.lua is the benchmark's comparison: the rules of
/// conf-examples/mlpolicy.json written the way sites write them in Lua, judging the fields
/// a request gives rather than the most it can get. One table of cases says where the
/// script and the plugin agree (each plain rule) and where the script lets through what the
/// plugin refuses (node ranges, tasks without -N, per-task and per-job GPUs on one node,
/// CPUs per GPU from -c).
#[test]
fn the_lua_comparison_script_and_the_plugin_on_one_table() {
    let example = |f: &str| {
        std::fs::read_to_string(format!("{}/conf-examples/{f}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    };
    let lua = start(Options {
        extra_slurm_conf: partitions()
            .into_iter()
            .chain(["JobSubmitPlugins=lua".to_string()])
            .collect(),
        extra_files: vec![("job_submit.lua".into(), example("job_submit.lua"))],
        ..Options::default()
    });
    let native = policy_cluster(&example("mlpolicy.json"));
    // (request, the plugin accepts, the script accepts)
    let table: &[(&[&str], bool, bool)] = &[
        (&["-p", "gpu"], false, false),
        (&["-p", "cpu", "--gpus-per-node=1"], false, false),
        (&["-p", "gpu", "--gpus-per-node=9"], false, false),
        (&["-p", "gpu", "--gpus=a100:1"], false, false),
        (&["-p", "gpu", "-N2", "--gpus-per-node=4"], false, false),
        (&["-p", "interactive", "--gpus-per-node=1"], false, false),
        (
            &["-p", "interactive", "--gpus-per-node=1", "--time=5:00:00"],
            false,
            false,
        ),
        (&["-p", "gpu", "--gres=gpu:0"], false, false),
        (
            &["-p", "gpu", "--gpus-per-node=8", "--cpus-per-gpu=2"],
            false,
            false,
        ),
        (
            &["-p", "interactive", "--time=1:00", "--gpus-per-node=2"],
            true,
            true,
        ),
        (
            &["-p", "gpu", "-N2", "--exclusive", "--gpus-per-node=8"],
            true,
            true,
        ),
        (&["--gpus-per-node=1"], true, true),
        (&[], true, true),
        // Where the script judges the least a request gets.
        (
            &[
                "-p",
                "interactive",
                "--time=1:00",
                "-N1-16",
                "--gpus-per-node=2",
            ],
            false,
            true,
        ),
        (
            &[
                "-p",
                "interactive",
                "--time=1:00",
                "-n4",
                "--gpus-per-node=1",
            ],
            false,
            true,
        ),
        (
            &["-p", "gpu", "-N1", "--gpus=16", "--cpus-per-gpu=4"],
            false,
            true,
        ),
        (
            &["-p", "gpu", "-N1", "-n16", "-c4", "--gpus-per-task=1"],
            false,
            true,
        ),
        (&["-p", "gpu", "-N1-8", "--gpus-per-node=4"], false, true),
        (&["-p", "gpu", "-c2", "--gpus-per-node=8"], false, true),
    ];
    for (args, native_ok, lua_ok) in table {
        let mut full = vec!["-H", "-o", "/dev/null"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--wrap", "true"]);
        for (c, want, who) in [(&native, native_ok, "plugin"), (&lua, lua_ok, "script")] {
            let (got, err) = as_user(c, "sbatch", &full);
            assert_eq!(got, *want, "{who}: {args:?}: {err}");
            if !got {
                assert!(
                    err.contains("sbatch: error: mlpolicy: "),
                    "{who}: {args:?}: {err}"
                );
            }
        }
    }
}
