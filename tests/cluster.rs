//! The local cluster itself: real slurmctld + 3 slurmd scheduling real jobs.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::*;
use local_cluster::{ensure_user, Options};

#[test]
fn srun_spreads_six_tasks_over_three_nodes() {
    let c = start(Options::default());
    let out = ok(c
        .run(
            "srun",
            [
                "-N3",
                "-n6",
                "-l",
                "bash",
                "-c",
                "echo $SLURMD_NODENAME $(hostname)",
            ],
        )
        .unwrap());
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for line in stdout(&out).lines() {
        // "3: n2 vm"
        let node = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(
        per_node.keys().cloned().collect::<Vec<_>>(),
        ["n1", "n2", "n3"],
        "{}",
        stdout(&out)
    );
    assert_eq!(per_node.values().sum::<usize>(), 6);
}

#[test]
fn sbatch_runs_as_the_submitting_user_and_completes() {
    let c = start(Options::default());
    let user = ensure_user("mltest-a").unwrap();
    let out_file = c.work_dir().join("whoami-%j.out");
    let job = c
        .sbatch(
            Some(&user),
            &[
                "-N2",
                "-o",
                out_file.to_str().unwrap(),
                "--wrap",
                "id -un; srun -N2 hostname | wc -l",
            ],
        )
        .unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    let text = fs::read_to_string(c.work_dir().join(format!("whoami-{job}.out"))).unwrap();
    assert_eq!(text, "mltest-a\n2\n");
    assert_eq!(
        c.job_field(job, "UserId").unwrap().unwrap(),
        format!("mltest-a({})", user.uid)
    );
}

#[test]
fn gpu_requests_schedule_on_the_placeholder_devices() {
    let c = start(Options::default());
    // --gpus-per-node: two GPUs on each of two nodes, as CUDA_VISIBLE_DEVICES shows.
    let out = ok(c
        .run(
            "srun",
            [
                "-N2",
                "--gpus-per-node=2",
                "bash",
                "-c",
                "echo $SLURMD_NODENAME:$CUDA_VISIBLE_DEVICES",
            ],
        )
        .unwrap());
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(lines, ["n1:0,1", "n2:0,1"]);
    // --gres=gpu:N
    let out = ok(c
        .run("srun", ["--gres=gpu:3", "printenv", "SLURM_STEP_GPUS"])
        .unwrap());
    assert_eq!(stdout(&out).trim(), "0,1,2");
    // --gpus over two nodes: 8 + 1.
    let out = ok(c
        .run(
            "srun",
            [
                "-N2",
                "--gpus=9",
                "bash",
                "-c",
                "echo $CUDA_VISIBLE_DEVICES | tr , '\\n' | wc -l",
            ],
        )
        .unwrap());
    let mut counts: Vec<u32> = stdout(&out)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    counts.sort();
    assert_eq!(counts, [1, 8]);
    // More GPUs than a node has is refused: by the scheduler up to 24.11, by the GRES
    // check at submission in 26.05 (25.x untested).
    let out = c.run("srun", ["-N1", "--gpus=9", "true"]).unwrap();
    assert!(!out.status.success());
    let refusal = if cfg!(slurm_ge_26_05) {
        "Invalid generic resource (gres) specification"
    } else {
        "Requested node configuration is not available"
    };
    assert!(stderr(&out).contains(refusal), "{}", stderr(&out));
}

#[test]
fn two_clusters_run_side_by_side_and_teardown_leaves_nothing() {
    let a = start(Options::default());
    let b = start(Options {
        nodes: 1,
        ..Options::default()
    });
    assert_ne!(a.conf_path(), b.conf_path());
    ok(a.run("srun", ["-N3", "true"]).unwrap());
    ok(b.run("srun", ["-N1", "true"]).unwrap());
    // A job still running at teardown is ended with the cluster.
    let job = b.sbatch(None, &["--wrap", "sleep 300"]).unwrap();
    let deadline = std::time::Instant::now() + JOB_TIMEOUT;
    while b.job_field(job, "JobState").unwrap().as_deref() != Some("RUNNING") {
        assert!(
            std::time::Instant::now() < deadline,
            "job {job} never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let b_dir = b.dir().to_path_buf();
    let pids: Vec<u32> = fs::read_to_string(b_dir.join(local_cluster::layout::PIDS))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 3, "munged, slurmctld, one slurmd");
    b.stop().unwrap();
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
                let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                stat.contains(") Z")
            },
            "daemon {pid} survived teardown"
        );
    }
    // No sleep 300 (or slurmstepd) of cluster b is left.
    let leftovers: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
            let needle = b_dir.as_os_str().as_encoded_bytes();
            env.windows(needle.len())
                .any(|w| w == needle)
                .then(|| pid.to_string())
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "processes of the stopped cluster: {leftovers:?}"
    );
    // The other cluster is untouched.
    ok(a.run("srun", ["-N3", "true"]).unwrap());
}

#[test]
fn prolog_and_epilog_slots_run_with_the_job_environment() {
    let scripts = tempfile::tempdir().unwrap();
    let out = scripts.path().join("out");
    fs::create_dir(&out).unwrap();
    let write_script = |name: &str| {
        let path = scripts.path().join(name);
        let body = format!(
            "#!/bin/sh\necho \"$(id -u) $SLURM_JOB_UID $SLURM_JOB_USER\" > {}/{name}-$SLURMD_NODENAME-$SLURM_JOB_ID\n",
            out.display()
        );
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path
    };
    let c = start(Options {
        prolog: Some(write_script("prolog")),
        epilog: Some(write_script("epilog")),
        ..Options::default()
    });
    let user = ensure_user("mltest-a").unwrap();
    let job = c
        .sbatch(
            Some(&user),
            &["-N2", "-o", "/dev/null", "--wrap", "srun true"],
        )
        .unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    let nodes = c.job_field(job, "NodeList").unwrap().unwrap();
    assert_eq!(nodes, "n[1-2]");
    // The epilog may still be running when the job shows COMPLETED.
    let deadline = std::time::Instant::now() + JOB_TIMEOUT;
    for slot in ["prolog", "epilog"] {
        for node in ["n1", "n2"] {
            let f = out.join(format!("{slot}-{node}-{job}"));
            while !f.exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{slot} never ran on {node}"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            // Run as root, told which user's job it was.
            assert_eq!(
                fs::read_to_string(&f).unwrap(),
                format!("0 {} mltest-a\n", user.uid)
            );
        }
    }
}

#[test]
fn a_daemon_that_fails_to_start_is_reported_with_its_log() {
    let e = local_cluster::Cluster::start(Options {
        extra_slurm_conf: vec!["SelectType=select/no_such_plugin".into()],
        ..Options::default()
    })
    .err()
    .expect("slurmctld cannot start with an unknown select plugin");
    let msg = e.to_string();
    assert!(msg.contains("slurmctld did not come up"), "{msg}");
    assert!(msg.contains("--- last lines of"), "{msg}");
    assert!(
        msg.contains("select/no_such_plugin"),
        "the log tail names the cause: {msg}"
    );
}
