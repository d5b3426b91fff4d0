//! The adapter: Slurm's items, environment and options in; `spank_setenv` out. Every
//! decision is made by the `mlenv` crate.

use mlenv::config::{AddrMode, Config};
use mlenv::env::{self, FabricPlan, Rendezvous, Step, StepShape, TaskIds};
use mlenv::fabric;
use mlenv::options::{self, Choices, Via};
use mlenv::values::Mode;
use slurm_plugin::conf;
use slurm_plugin::hostlist::HostList;
use slurm_plugin::spank::{
    self, Context, HasArg, Spank, SpankError, SpankOpt, SpankPlugin, SpankResult,
};

// mlenv numbers Slurm's special steps without FFI; the installed slurm.h must agree.
const _: () = assert!(
    Step::BATCH == spank::STEP_BATCH
        && Step::EXTERN == spank::STEP_EXTERN
        && Step::INTERACTIVE == spank::STEP_INTERACTIVE
);

pub struct MlEnv {
    /// `None` where the plugin has nothing to do (slurmd, prolog/epilog).
    active: Option<Active>,
}

struct Active {
    config: Config,
    /// From the command line (srun/sbatch/salloc options, or slurmstepd's copy of them).
    command_line: Choices,
    /// Decided in `user_init`, used by every task of this node.
    node: Option<NodeState>,
}

struct NodeState {
    step: Step,
    job_id: u32,
    mode: Mode,
    choices: Choices,
    rendezvous: Option<Rendezvous>,
    fabric: FabricPlan,
    /// Shown once per step, by the task of rank 0.
    warning: Option<String>,
}

const fn spank_opt(o: &options::OptionSpec) -> SpankOpt {
    SpankOpt {
        name: o.c_name,
        arginfo: Some(o.arginfo),
        usage: o.usage,
        has_arg: HasArg::Required,
        val: o.val,
    }
}

/// `options::ALL`, as SPANK registers them.
const OPTIONS: [SpankOpt; options::ALL.len()] = {
    let mut out = [spank_opt(&options::ALL[0]); options::ALL.len()];
    let mut i = 1;
    while i < out.len() {
        out[i] = spank_opt(&options::ALL[i]);
        i += 1;
    }
    out
};

impl SpankPlugin for MlEnv {
    const OPTIONS: &'static [SpankOpt] = &OPTIONS;

    fn init(spank: &Spank, args: &[String]) -> SpankResult<Self> {
        let active = match spank.context() {
            Context::Local | Context::Remote | Context::Allocator => {
                let config = Config::load(args).map_err(|e| SpankError::new(e.0))?;
                Some(Active {
                    config,
                    command_line: Choices::default(),
                    node: None,
                })
            }
            _ => None,
        };
        Ok(MlEnv { active })
    }

    fn option(&mut self, val: i32, optarg: Option<&str>, remote: bool) -> SpankResult<()> {
        let Some(a) = self.active.as_mut() else {
            return Ok(());
        };
        a.command_line
            .set(val, optarg.unwrap_or(""), Via::CommandLine)
            .map_err(|e| SpankError::new(e.0))?;
        if !remote {
            a.check_profile(a.command_line.profile.as_deref(), Via::CommandLine)?;
        }
        Ok(())
    }

    /// In srun/sbatch/salloc: refuse a bad `SLURM_MLENV*` value before anything is
    /// allocated.
    fn init_post_opt(&mut self, spank: &Spank) -> SpankResult<()> {
        let Some(a) = self.active.as_mut() else {
            return Ok(());
        };
        if spank.is_remote() {
            return Ok(());
        }
        let mut choices = a.command_line.clone();
        choices
            .fill_from_env(|k| std::env::var(k).ok())
            .map_err(|e| SpankError::new(e.0))?;
        a.check_profile(choices.profile.as_deref(), Via::Environment)
    }

    /// In slurmstepd, once per node, before the tasks are forked: the costly parts
    /// (hostlist, NodeAddr lookup under Slurm's config lock, sysfs).
    fn user_init(&mut self, spank: &Spank) -> SpankResult<()> {
        let Some(a) = self.active.as_mut() else {
            return Ok(());
        };
        if spank.context() != Context::Remote {
            return Ok(());
        }
        let step = Step::from_raw(spank.step_id()?);
        if step == Step::Extern {
            return Ok(());
        }
        let getenv = |k: &str| spank.getenv(k).ok().flatten();
        let mut choices = a.command_line.clone();
        choices
            .fill_from_env(getenv)
            .map_err(|e| SpankError::new(e.0))?;
        let mode = choices.mode.unwrap_or(a.config.default_mode);
        // In a heterogeneous job each component has its own job id; SLURM_JOB_ID is the
        // leader's in every component, so all of them derive the same port.
        let job_id = match getenv("SLURM_JOB_ID").and_then(|j| j.trim().parse().ok()) {
            Some(j) => j,
            None => spank.job_id()?,
        };
        let mut node = NodeState {
            step,
            job_id,
            mode,
            choices,
            rendezvous: None,
            fabric: FabricPlan::default(),
            warning: None,
        };
        if mode != Mode::Off {
            a.plan_fabric(&mut node, spank)?;
        }
        if mode == Mode::On {
            node.rendezvous = a.rendezvous(&node, spank)?;
        }
        a.node = Some(node);
        Ok(())
    }

    /// Per task, just before exec; `SLURM_PROCID`/`SLURM_LOCALID` are set by now.
    fn task_init(&mut self, spank: &Spank) -> SpankResult<()> {
        let Some(a) = self.active.as_ref() else {
            return Ok(());
        };
        let Some(node) = a.node.as_ref() else {
            return Ok(());
        };
        let getenv = |k: &str| spank.getenv(k).ok().flatten();
        if node.step == Step::Batch {
            // Slurm hands sbatch's SPANK options to the batch step only: pass them on to
            // the steps the script starts, as the variables the plugin reads there.
            for (var, value) in a.command_line.as_env() {
                spank.setenv(var, &value, true)?;
            }
        }
        if node.mode == Mode::Off {
            return Ok(());
        }
        let items = (
            spank.job_nnodes()?,
            spank.job_nodeid()?,
            spank.total_task_count()?,
            spank.local_task_count()?,
        );
        let shape = StepShape::from_env(node.job_id, node.step, items, &getenv);
        let task = match node.step {
            Step::Id(_) => TaskIds::from_env(&getenv),
            _ => None,
        };
        let wanted = env::wanted(
            node.mode,
            &node.choices,
            &shape,
            task,
            node.rendezvous.as_ref(),
            &node.fabric,
        );
        // As bytes: a user's LD_LIBRARY_PATH need not be UTF-8.
        let ld_library_path = spank.getenv_os("LD_LIBRARY_PATH")?;
        let plan = env::plan(
            &wanted,
            &node.fabric.lib_dirs,
            &getenv,
            ld_library_path.as_deref(),
            &|v| a.config.is_forced(v),
        );
        if let Some(ld) = &plan.ld_library_path {
            spank.setenv_os("LD_LIBRARY_PATH", ld, true)?;
            tracing::debug!(
                "task {}: LD_LIBRARY_PATH={} (profile library directories)",
                task.map_or(0, |t| t.rank),
                ld.to_string_lossy()
            );
        }
        for (name, value, why) in &plan.set {
            spank.setenv(name, value, true)?;
            tracing::debug!(
                "task {}: {name}={value} ({why})",
                task.map_or(0, |t| t.rank)
            );
        }
        for (name, value) in &plan.kept {
            tracing::debug!(
                "task {}: {name}={value} kept: the user set it",
                task.map_or(0, |t| t.rank)
            );
        }
        if let Some(w) = &node.warning {
            if task.is_none_or(|t| t.rank == 0) {
                // The task's own stderr: the user's terminal or output file.
                eprintln!("{w}");
            }
        }
        Ok(())
    }
}

impl Active {
    fn check_profile(&self, name: Option<&str>, via: Via) -> SpankResult<()> {
        let Some(name) = name else { return Ok(()) };
        if self.config.profiles.profiles.contains_key(name) {
            return Ok(());
        }
        let what = match via {
            Via::CommandLine => format!("--{}", options::OPT_PROFILE.name),
            Via::Environment => format!(
                "--{} or ${}",
                options::OPT_PROFILE.name,
                options::OPT_PROFILE.env
            ),
        };
        Err(SpankError::new(format!(
            "{what}: {}",
            self.unknown_profile(name)
        )))
    }

    fn unknown_profile(&self, name: &str) -> String {
        format!(
            "no profile {name:?} on this cluster (profiles: {})",
            self.config.profiles.names().join(", ")
        )
    }

    fn plan_fabric(&self, node: &mut NodeState, spank: &Spank) -> SpankResult<()> {
        let detected = fabric::detect(&self.config.sysfs);
        let named = node.choices.profile.as_deref();
        let Some((name, profile)) = self.config.profiles.choose(named, detected.fabric) else {
            return match named {
                Some(n) => Err(SpankError::new(self.unknown_profile(n))),
                None => Ok(()), // no profile for this fabric: nothing to apply
            };
        };
        let libs = fabric::find_libraries(profile, &self.config.lib_root);
        tracing::debug!(
            "fabric {} ({} device(s)), profile '{name}', library directories {:?}, NCCL net plugin {:?}",
            detected.fabric.name(),
            detected.devices.len(),
            libs.dirs,
            libs.nccl_net_plugin
        );
        if detected.fabric == mlenv::config::Fabric::Efa
            && profile.needs_nccl_net_plugin
            && libs.nccl_net_plugin.is_none()
            && spank.job_nodeid().unwrap_or(0) == 0
        {
            node.warning = Some(fabric::missing_plugin_warning(
                name,
                profile,
                &self.config.lib_root,
            ));
        }
        node.fabric = FabricPlan {
            profile: name.to_string(),
            env: profile.env.clone(),
            lib_dirs: libs.dirs,
        };
        Ok(())
    }

    fn rendezvous(&self, node: &NodeState, spank: &Spank) -> SpankResult<Option<Rendezvous>> {
        let getenv = |k: &str| spank.getenv(k).ok().flatten();
        // SPANK's task count is this het component's; the step's, in its environment, is
        // all components': the pure code tells het steps apart by that.
        let component_tasks = spank.total_task_count()?;
        let expand = |list: &str| HostList::expand(list).map_err(|e| e.to_string());
        let Some((host, host_why)) = env::master_host(node.step, component_tasks, &getenv, &expand)
            .map_err(|e| SpankError::new(e.0))?
        else {
            tracing::debug!("no rendezvous host in the step's environment: no MASTER_ADDR");
            return Ok(None);
        };
        let (addr, why) = match self.config.addr {
            AddrMode::Name => (host.clone(), host_why),
            AddrMode::Alias => {
                match getenv("SLURM_NODE_ALIASES").and_then(|a| env::alias_address(&a, &host)) {
                    Some(a) => (a, format!("address of {host} in $SLURM_NODE_ALIASES")),
                    None => node_addr(&host, &host_why),
                }
            }
            AddrMode::NodeAddr => node_addr(&host, &host_why),
        };
        let (port, port_why) = match node.choices.master_port {
            Some(p) => (p, "--master-port".to_string()),
            None => (
                env::master_port(&self.config.ports, node.job_id, node.step),
                format!("job {} step {}", node.job_id, node.step.label()),
            ),
        };
        Ok(Some(Rendezvous {
            addr,
            why,
            port,
            port_why,
        }))
    }
}

/// `NodeAddr` of `host` from the daemon's node table, else its name; `why` says why
/// `host`.
fn node_addr(host: &str, why: &str) -> (String, String) {
    match conf::node_address(host) {
        Some(a) => (a, format!("NodeAddr of {host}, {why}")),
        None => (host.to_string(), format!("{why} (no NodeAddr known)")),
    }
}
