//! `local-cluster start|stop|status`: the demo's way to boot a local Slurm cluster and
//! leave it running.

use std::path::PathBuf;
use std::process::ExitCode;

use local_cluster::{cargo_artifact, stop_dir, Cluster, Options, SpankPlugin};

const USAGE: &str = "usage:
  local-cluster start --dir DIR [--nodes N] [--cpus-per-node N] [--gpus-per-node N] [--accounting]
                      [--cloud-nodes N] [--billing PARTITION=WEIGHTS]
                      [--spank LIB.so[:ARG,...]] [--job-submit LIB.so] [--prolog PATH]
                      [--epilog PATH] [--conf 'Key=Value'] [--file NAME=PATH]
  local-cluster stop --dir DIR
  local-cluster status --dir DIR

Plugin paths that are bare file names (libspank_selftest.so) are looked up next to this
binary (cargo's target directory).";

fn artifact(arg: &str) -> Result<PathBuf, String> {
    if arg.contains('/') {
        Ok(PathBuf::from(arg))
    } else {
        cargo_artifact(arg).map_err(|e| e.to_string())
    }
}

fn parse_start(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--dir" => o.dir = Some(PathBuf::from(val()?)),
            "--nodes" => o.nodes = val()?.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--cpus-per-node" => {
                o.cpus_per_node = val()?
                    .parse()
                    .map_err(|e| format!("--cpus-per-node: {e}"))?
            }
            "--gpus-per-node" => {
                o.gpus_per_node = val()?
                    .parse()
                    .map_err(|e| format!("--gpus-per-node: {e}"))?
            }
            "--accounting" => o.accounting = true,
            "--cloud-nodes" => {
                o.cloud_nodes = val()?.parse().map_err(|e| format!("--cloud-nodes: {e}"))?
            }
            "--billing" => {
                let v = val()?;
                let (part, weights) = v
                    .split_once('=')
                    .ok_or("--billing takes PARTITION=WEIGHTS (cloud=CPU=4.0,GRES/gpu=400)")?;
                o.billing_weights
                    .push((part.to_string(), weights.to_string()));
            }
            "--spank" => {
                let v = val()?;
                let (path, args) = match v.split_once(':') {
                    Some((p, a)) => (p.to_string(), a.split(',').map(str::to_string).collect()),
                    None => (v, Vec::new()),
                };
                o.spank_plugins.push(SpankPlugin {
                    artifact: artifact(&path)?,
                    args,
                    required: true,
                });
            }
            "--job-submit" => {
                let v = val()?;
                o.job_submit_plugins.push(artifact(&v)?);
            }
            "--prolog" => o.prolog = Some(PathBuf::from(val()?)),
            "--epilog" => o.epilog = Some(PathBuf::from(val()?)),
            "--conf" => o.extra_slurm_conf.push(val()?),
            "--file" => {
                let v = val()?;
                let (name, path) = v.split_once('=').ok_or("--file takes NAME=PATH")?;
                let content =
                    std::fs::read_to_string(path).map_err(|e| format!("--file {path}: {e}"))?;
                o.extra_files.push((name.to_string(), content));
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if o.dir.is_none() {
        return Err(format!("start needs --dir\n{USAGE}"));
    }
    Ok(o)
}

fn dir_arg(args: &[String]) -> Result<PathBuf, String> {
    match args {
        [flag, dir] if flag == "--dir" => Ok(PathBuf::from(dir)),
        _ => Err(USAGE.to_string()),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("start") => {
            let opts = parse_start(&args[1..])?;
            let nodes = opts.nodes;
            let cloud = opts.cloud_nodes;
            let cluster = Cluster::start(opts).map_err(|e| e.to_string())?;
            let conf = cluster.conf_path();
            let name = cluster.cluster_name().to_string();
            let dir = cluster.detach();
            println!(
                "local cluster '{name}' is up: {nodes} nodes, state and logs in {}",
                dir.display()
            );
            if cloud > 0 {
                println!("  plus {cloud} powered-down cloud nodes in partition 'cloud' (resumed by Slurm's power saving)");
            }
            println!("  use it:   export SLURM_CONF={}", conf.display());
            println!("  stop it:  {} stop --dir {}", exe_name(), dir.display());
            Ok(())
        }
        Some("stop") => {
            let dir = dir_arg(&args[1..])?;
            stop_dir(&dir).map_err(|e| e.to_string())?;
            println!("stopped the local cluster in {}", dir.display());
            Ok(())
        }
        Some("status") => {
            let dir = dir_arg(&args[1..])?;
            let pids = std::fs::read_to_string(dir.join(local_cluster::layout::PIDS))
                .map_err(|e| format!("no cluster running in {}: {e}", dir.display()))?;
            print!("{pids}");
            // Cloud nodes' slurmds, started by the ResumeProgram while powered up.
            for (node, pid) in local_cluster::cloud_slurmds(&dir) {
                println!("{pid} slurmd-{node}");
            }
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

fn exe_name() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "local-cluster".to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}
