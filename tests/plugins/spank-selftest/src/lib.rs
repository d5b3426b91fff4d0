//! `spank_selftest.so`: a SPANK plugin that proves the safe layer inside real srun and
//! slurmstepd processes.
//!
//! - Every task of every step gets `SLURM_ML_SELFTEST=<job id>.<step id>` (set in
//!   `user_init`, which slurmstepd runs once per node before it forks the tasks).
//! - `--selftest-panic=user_init|task_init` makes that hook panic on purpose, so a test can
//!   check that the FFI guard catches it: the step fails with a clear error, slurmd and the
//!   node stay up.

#![deny(unsafe_code)]

use slurm_plugin::spank::{Context, HasArg, Spank, SpankError, SpankOpt, SpankPlugin, SpankResult};

const OPT_PANIC: i32 = 1;

#[derive(Default)]
pub struct SelfTest {
    panic_in: Option<String>,
}

impl SpankPlugin for SelfTest {
    const OPTIONS: &'static [SpankOpt] = &[SpankOpt {
        name: c"selftest-panic",
        arginfo: Some(c"hook"),
        usage: c"Make the spank_selftest plugin panic in the named hook (user_init or task_init).",
        has_arg: HasArg::Required,
        val: OPT_PANIC,
    }];

    fn init(spank: &Spank, _args: &[String]) -> SpankResult<Self> {
        tracing::debug!("init in {:?} context", spank.context());
        Ok(SelfTest::default())
    }

    fn option(&mut self, val: i32, optarg: Option<&str>, _remote: bool) -> SpankResult<()> {
        match (val, optarg) {
            (OPT_PANIC, Some(hook @ ("user_init" | "task_init"))) => {
                self.panic_in = Some(hook.to_string());
                Ok(())
            }
            (OPT_PANIC, other) => Err(SpankError::new(format!(
                "--selftest-panic takes user_init or task_init, not {:?}",
                other.unwrap_or("")
            ))),
            _ => Ok(()),
        }
    }

    fn user_init(&mut self, spank: &Spank) -> SpankResult<()> {
        if spank.context() != Context::Remote {
            return Ok(());
        }
        if self.panic_in.as_deref() == Some("user_init") {
            panic!("deliberate panic in user_init (--selftest-panic)"); // ok-panic: the test of the guard
        }
        let value = format!("{}.{}", spank.job_id()?, spank.step_id()?);
        spank.setenv("SLURM_ML_SELFTEST", &value, true)?;
        tracing::info!("set SLURM_ML_SELFTEST={value}");
        Ok(())
    }

    fn task_init(&mut self, _spank: &Spank) -> SpankResult<()> {
        if self.panic_in.as_deref() == Some("task_init") {
            panic!("deliberate panic in task_init (--selftest-panic)"); // ok-panic: the test of the guard
        }
        Ok(())
    }
}

slurm_plugin::spank_plugin! {
    name: "spank_selftest",
    plugin: SelfTest,
    hooks: [user_init, task_init],
}
