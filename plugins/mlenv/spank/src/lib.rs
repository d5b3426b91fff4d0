//! `spank_mlenv.so`: every task of a step gets the environment distributed training needs
//! (`MASTER_ADDR`/`MASTER_PORT`, ranks, torchrun's `PET_*`, the node's fabric profile).
//! This file holds the exported entry points only; [`plugin`] adapts them to the `mlenv`
//! crate.

#![deny(unsafe_code)]

mod plugin;

slurm_plugin::spank_plugin! {
    name: "mlenv",
    plugin: plugin::MlEnv,
    // user_init: once per node (parent slurmstepd) for what is costly; task_init: per task,
    // where SLURM_PROCID/SLURM_LOCALID are known. No job_prolog/epilog, no task_exit.
    hooks: [init_post_opt, user_init, task_init],
}
