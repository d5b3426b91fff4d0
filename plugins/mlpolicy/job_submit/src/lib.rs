//! `job_submit_mlpolicy.so` (`JobSubmitPlugins=mlpolicy`): the site's partition and GPU
//! rules, inside slurmctld. This file holds the exported entry points only; [`plugin`]
//! adapts `job_desc_msg_t` to the `mlpolicy` engine.

#![deny(unsafe_code)]

mod plugin;

slurm_plugin::job_submit_plugin! {
    name: "mlpolicy",
    description: "ML partition and GPU policy",
    plugin: plugin::MlPolicy,
}
