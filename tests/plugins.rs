//! Plugins built on the safe layer, loaded by real daemons: the SPANK plugin in srun and
//! slurmstepd, the job_submit plugin in slurmctld. Includes the guard: deliberate panics
//! inside the daemons are caught, the user gets a clear error, the daemons stay up.

mod common;

use common::*;
use local_cluster::ensure_user;

const REJECT: &str =
    "sbatch: error: job_submit/selftest: jobs named 'selftest-reject' are refused by this cluster's test policy";
const PANIC_TO_USER: &str = "sbatch: error: job_submit/selftest: internal error while checking this job, so it was not accepted; the details are in the slurmctld log";

fn assert_daemons_up(c: &local_cluster::Cluster) {
    for (name, alive) in c.all_daemons_alive() {
        assert!(
            alive,
            "{name} died; its log:\n{}",
            local_cluster::tail(&c.log_path(&name), 30)
        );
    }
    for (node, state) in c.node_states().unwrap() {
        assert_eq!(state, "idle", "node {node} is {state}");
    }
}

#[test]
fn spank_plugin_sets_the_variable_in_every_task() {
    let c = selftest_cluster();
    let out = ok(c
        .run(
            "srun",
            [
                "-N3",
                "-n6",
                "bash",
                "-c",
                "echo $SLURM_JOB_ID.$SLURM_STEP_ID=$SLURM_ML_SELFTEST",
            ],
        )
        .unwrap());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{}", stdout(&out));
    for l in &lines {
        let (expected, got) = l.split_once('=').unwrap();
        assert_eq!(
            got, expected,
            "task saw SLURM_ML_SELFTEST={got}, job.step is {expected}"
        );
    }
    // And in a batch job of a regular user: the second step sees its own step id.
    let user = ensure_user("mltest-a").unwrap();
    let job = c
        .sbatch(
            Some(&user),
            &[
                "-N2",
                "-o",
                "/dev/null",
                "--wrap",
                "srun true; srun -N2 bash -c 'echo $SLURM_ML_SELFTEST' > spank-$SLURM_JOB_ID.txt",
            ],
        )
        .unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    let text = std::fs::read_to_string(c.work_dir().join(format!("spank-{job}.txt"))).unwrap();
    assert_eq!(text, format!("{job}.1\n{job}.1\n"));
    // tracing::info! in the plugin reached slurmstepd's log through Slurm's logger.
    assert!(
        c.log("slurmd-n1")
            .contains(&format!("spank_selftest: set SLURM_ML_SELFTEST={job}.1")),
        "{}",
        c.log("slurmd-n1")
    );
}

#[test]
fn spank_panics_are_caught_and_the_node_stays_up() {
    let c = selftest_cluster();
    // In slurmstepd itself (user_init runs before the tasks are forked).
    let out = c
        .run("srun", ["--selftest-panic=user_init", "true"])
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("error: spank_selftest: user_init: internal error (panic): deliberate panic in user_init (--selftest-panic)"),
        "{err}"
    );
    // In the forked task, just before exec.
    let out = c
        .run("srun", ["-N2", "--selftest-panic=task_init", "true"])
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("error: spank_selftest: task_init: internal error (panic): deliberate panic in task_init (--selftest-panic)"),
        "{err}"
    );
    // A bad option value is refused in srun, before anything is allocated.
    let out = c.run("srun", ["--selftest-panic=bogus", "true"]).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("srun: error: spank_selftest: --selftest-panic takes user_init or task_init, not \"bogus\""),
        "{}",
        stderr(&out)
    );
    // The daemons stay up, no node is drained, and the next step runs everywhere.
    assert!(c
        .log("slurmd-n1")
        .contains("spank_selftest: user_init: internal error (panic)"));
    assert_daemons_up(&c);
    let out = ok(c
        .run("srun", ["-N3", "printenv", "SLURM_ML_SELFTEST"])
        .unwrap());
    assert_eq!(stdout(&out).lines().count(), 3);
}

#[test]
fn job_submit_plugin_rejects_with_the_users_message() {
    let c = selftest_cluster();
    let user = ensure_user("mltest-a").unwrap();
    let out = c
        .run_as(&user, "sbatch", ["-J", "selftest-reject", "--wrap", "true"])
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(REJECT), "{err}");
    assert!(
        err.contains("Batch job submission failed: Access/permission denied"),
        "{err}"
    );
    // srun allocations go through the plugin as well.
    let out = c.run("srun", ["-J", "selftest-reject", "true"]).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("job_submit/selftest: jobs named 'selftest-reject' are refused"),
        "{}",
        stderr(&out)
    );
    // Other jobs are untouched.
    let job = c
        .sbatch(
            Some(&user),
            &["-J", "fine", "-o", "/dev/null", "--wrap", "true"],
        )
        .unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
}

#[test]
fn job_submit_plugin_rewrites_fields_with_slurms_allocator() {
    let c = selftest_cluster();
    let job = c
        .sbatch(
            None,
            &[
                "-J",
                "selftest-rewrite",
                "--comment",
                "from the user",
                "-o",
                "/dev/null",
                "--wrap",
                "true",
            ],
        )
        .unwrap();
    assert_eq!(
        c.job_field(job, "Comment").unwrap().as_deref(),
        Some("rewritten by job_submit/selftest")
    );
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
}

#[test]
fn job_submit_panic_is_caught_and_slurmctld_keeps_scheduling() {
    let c = selftest_cluster();
    let out = c
        .run("sbatch", ["-J", "selftest-panic", "--wrap", "true"])
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(PANIC_TO_USER), "{err}");
    let log = c.log("slurmctld");
    assert!(
        log.contains("error: job_submit/selftest: job_submit: internal error (panic): deliberate panic for a job named selftest-panic"),
        "{log}"
    );
    assert_daemons_up(&c);
    let job = c
        .sbatch(None, &["-o", "/dev/null", "--wrap", "true"])
        .unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
}

#[test]
fn job_modify_goes_through_the_plugin() {
    let c = selftest_cluster();
    let job = c
        .sbatch(
            None,
            &["-H", "-J", "held", "-o", "/dev/null", "--wrap", "true"],
        )
        .unwrap();
    let id = format!("jobid={job}");
    let out = c
        .run("scontrol", ["update", &id, "name=selftest-reject"])
        .unwrap();
    assert!(
        !out.status.success(),
        "the rename was accepted: {}",
        stdout(&out)
    );
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains(&format!("Access/permission denied for job {job}")),
        "{said}"
    );
    // job_modify gained err_msg in 23.02: from then on the user sees the plugin's reason.
    #[cfg(slurm_ge_23_02)]
    assert!(
        said.contains("scontrol: error: job_submit/selftest: jobs named 'selftest-reject' are refused by this cluster's test policy"),
        "{said}"
    );
    #[cfg(not(slurm_ge_23_02))]
    assert!(
        !said.contains("job_submit/selftest"),
        "22.05 has no err_msg for job_modify: {said}"
    );
    assert_eq!(
        c.job_field(job, "JobName").unwrap().as_deref(),
        Some("held")
    );
    assert!(
        c.log("slurmctld")
            .contains("job_submit/selftest: job_modify refused for uid 0: job_submit/selftest: jobs named 'selftest-reject' are refused"),
        "{}",
        c.log("slurmctld")
    );
    ok(c.run("scontrol", ["update", &id, "name=renamed"]).unwrap());
    assert_eq!(
        c.job_field(job, "JobName").unwrap().as_deref(),
        Some("renamed")
    );
    ok(c.run("scancel", [job.to_string()]).unwrap());
}

/// The GPU request fields as slurmctld hands them to a job_submit plugin. Their format is
/// a real difference between releases (what a policy plugin's GRES parser must read):
/// `gres:gpu:N` up to 23.02, `gres/gpu:N` from 23.11, and `gres/gpu=N` in `tres_per_task`
/// from 24.05. Checked on 22.05 and 24.11.
#[test]
fn gpu_requests_reach_job_submit_in_the_releases_format() {
    let c = selftest_cluster();
    let gres = if cfg!(slurm_ge_23_11) {
        "gres/gpu"
    } else {
        "gres:gpu"
    };
    let per_task_1 = if cfg!(slurm_ge_24_05) {
        format!("{gres}=1")
    } else {
        format!("{gres}:1")
    };
    let null = || "(null)".to_string();
    let cases: Vec<(Vec<&str>, [String; 4])> = vec![
        (
            vec!["--gpus-per-node=2"],
            [null(), format!("{gres}:2"), null(), null()],
        ),
        (
            vec!["--gres=gpu:3"],
            [null(), format!("{gres}:3"), null(), null()],
        ),
        (
            vec!["--gpus=4"],
            [format!("{gres}:4"), null(), null(), null()],
        ),
        (
            vec!["-n2", "--gpus-per-task=1"],
            [null(), null(), null(), per_task_1],
        ),
        (
            vec!["--sockets-per-node=1", "--gpus-per-socket=1"],
            [null(), null(), format!("{gres}:1"), null()],
        ),
        (
            vec!["--gres=gpu:2,gpu:1"],
            [null(), format!("{gres}:2,{gres}:1"), null(), null()],
        ),
    ];
    for (args, [job, node, socket, task]) in cases {
        let mut full = vec!["-J", "selftest-show-tres"];
        full.extend(&args);
        full.extend(["--wrap", "true"]);
        let out = c.run("sbatch", &full).unwrap();
        let expected = format!(
            "sbatch: error: job_submit/selftest: tres_per_job={job} tres_per_node={node} tres_per_socket={socket} tres_per_task={task}\n"
        );
        assert!(
            stderr(&out).starts_with(&expected),
            "sbatch {args:?}:\n{}",
            stderr(&out)
        );
    }
}
