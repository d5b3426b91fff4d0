//! The accounting option: MariaDB + slurmdbd, and sacct listing a finished job.

mod common;

use common::*;
use local_cluster::{ensure_user, Options};

#[test]
fn sacct_lists_a_finished_job() {
    let c = start(Options {
        accounting: true,
        nodes: 2,
        ..Options::default()
    });
    let user = ensure_user("mltest-a").unwrap();
    let job = c
        .sbatch(
            Some(&user),
            &[
                "-J",
                "acct-smoke",
                "-N2",
                "--gpus-per-node=1",
                "-o",
                "/dev/null",
                "--wrap",
                "srun true",
            ],
        )
        .unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    // slurmctld sends job records to slurmdbd asynchronously; for a moment the row can
    // exist with placeholder values ("allocation", root), so wait for the full record.
    let line = sacct_until(
        &c,
        job,
        "JobID,JobName,User,State,NNodes,AllocTRES",
        "completed",
        |text| {
            (text.contains("|acct-smoke|") && text.contains("|COMPLETED|"))
                .then(|| text.to_string())
        },
    );
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(
        &fields[..5],
        [
            job.to_string().as_str(),
            "acct-smoke",
            "mltest-a",
            "COMPLETED",
            "2"
        ],
        "{line}"
    );
    assert!(
        fields[5].contains("gres/gpu=2"),
        "GPU use is accounted: {line}"
    );
}
