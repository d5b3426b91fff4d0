//! `job_submit_selftest.so`: a job_submit plugin that proves the safe layer inside a real
//! slurmctld. It acts on the job name only:
//!
//! - `selftest-reject`: refused with a message the user sees from sbatch/srun;
//! - `selftest-rewrite`: accepted, its comment replaced (a Slurm-allocated string);
//! - `selftest-panic`: the plugin panics; the FFI guard must catch it, refuse the job with
//!   a clear message and keep slurmctld running;
//! - `selftest-show-tres`: refused with a message that shows the job's GPU request fields
//!   exactly as slurmctld hands them to a plugin (their format changes between releases).

#![deny(unsafe_code)]

use slurm_plugin::job_submit::{JobDesc, JobSubmitPlugin, Rejection};
use slurm_plugin::rc;

pub struct SelfTest;

pub const REJECT_MESSAGE: &str =
    "job_submit/selftest: jobs named 'selftest-reject' are refused by this cluster's test policy";
pub const REWRITTEN_COMMENT: &str = "rewritten by job_submit/selftest";

impl SelfTest {
    fn check(&self, job: &mut JobDesc<'_>, submit_uid: u32) -> Result<(), Rejection> {
        let name = job.name().map(|n| n.into_owned());
        tracing::debug!(
            "uid {submit_uid} job {:?} partition {:?}",
            name,
            job.partition()
        );
        match name.as_deref() {
            Some("selftest-reject") => {
                Err(Rejection::new(rc::ESLURM_ACCESS_DENIED, REJECT_MESSAGE))
            }
            Some("selftest-panic") => panic!("deliberate panic for a job named selftest-panic"), // ok-panic: the test of the guard
            Some("selftest-show-tres") => Err(Rejection::new(
                rc::ESLURM_INVALID_TRES,
                format!(
                    "job_submit/selftest: tres_per_job={} tres_per_node={} tres_per_socket={} tres_per_task={}",
                    job.tres_per_job().as_deref().unwrap_or("(null)"),
                    job.tres_per_node().as_deref().unwrap_or("(null)"),
                    job.tres_per_socket().as_deref().unwrap_or("(null)"),
                    job.tres_per_task().as_deref().unwrap_or("(null)"),
                ),
            )),
            Some("selftest-rewrite") => job
                .set_comment(Some(REWRITTEN_COMMENT))
                .map_err(|e| Rejection::new(rc::ERROR, e.to_string())),
            _ => Ok(()),
        }
    }
}

impl JobSubmitPlugin for SelfTest {
    fn init() -> Result<Self, String> {
        tracing::info!("loaded");
        Ok(SelfTest)
    }

    fn job_submit(&self, job: &mut JobDesc<'_>, submit_uid: u32) -> Result<(), Rejection> {
        self.check(job, submit_uid)
    }

    fn job_modify(&self, job: &mut JobDesc<'_>, submit_uid: u32) -> Result<(), Rejection> {
        self.check(job, submit_uid)
    }
}

slurm_plugin::job_submit_plugin! {
    name: "selftest",
    description: "job_submit selftest plugin",
    plugin: SelfTest,
}
