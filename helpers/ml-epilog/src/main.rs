//! `ml-epilog` command line. Run by slurmd as `Epilog=/usr/local/sbin/ml-epilog`; reads
//! `SLURM_JOB_UID`, `SLURM_JOB_USER`, `SLURM_JOB_ID`, `SLURMD_NODENAME` and `SLURM_CONF`.

use std::path::PathBuf;
use std::process::ExitCode;

use ml_epilog::config::{self, Config};
use ml_epilog::run::{self, Job};
use node_log::env;

const USAGE: &str = "usage: ml-epilog [--dry-run] [--config FILE] [--uid UID] [--min-uid UID]
                 [--pattern GLOB]... [--no-sem] [--no-msg] [--no-files] [--shm-dir DIR]
                 [--log-file FILE] [--fail-on-error]

Removes the SysV shared memory segments, semaphores and message queues and the /dev/shm
files of the job's user (SLURM_JOB_UID, or --uid) after a job. If the user still has
processes on the node, only unattached shm segments whose processes are gone are removed.
Settings come from --config FILE, else ml-epilog.conf next to $SLURM_CONF, else
/etc/slurm/ml-epilog.conf (root-owned, not writable by others); flags override them.";

struct Args {
    dry_run: bool,
    config: Option<PathBuf>,
    uid: Option<u32>,
    settings: Vec<(String, String)>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        dry_run: false,
        config: None,
        uid: None,
        settings: Vec::new(),
    };
    let mut patterns: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--dry-run" | "-n" => a.dry_run = true,
            "--config" => a.config = Some(PathBuf::from(value()?)),
            "--uid" => {
                a.uid = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--uid takes a number".to_string())?,
                )
            }
            "--min-uid" => a.settings.push(("min_uid".into(), value()?)),
            "--pattern" => patterns.push(value()?),
            "--no-sem" => a.settings.push(("clean_sem".into(), "no".into())),
            "--no-msg" => a.settings.push(("clean_msg".into(), "no".into())),
            "--no-files" => a.settings.push(("clean_files".into(), "no".into())),
            "--shm-dir" => a.settings.push(("shm_dir".into(), value()?)),
            "--log-file" => a.settings.push(("log_file".into(), value()?)),
            "--fail-on-error" => a.settings.push(("fail_on_error".into(), "yes".into())),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !patterns.is_empty() {
        a.settings.push(("patterns".into(), patterns.join(",")));
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match node_log::parse_command_line("ml-epilog", USAGE, parse_args) {
        Ok(a) => a,
        Err(code) => return code,
    };

    let mut cfg = Config::default();
    let path = args.config.clone().or_else(|| {
        let slurm_conf = env("SLURM_CONF").map(PathBuf::from);
        config::default_path(slurm_conf.as_deref(), |p| p.exists())
    });
    if let Some(path) = &path {
        if let Err(e) = config::load_file(&mut cfg, path) {
            // Root code does nothing on a config it cannot trust; the node is not drained
            // for it, the log says why.
            let line = format!("config refused, nothing cleaned: {e}");
            eprintln!("ml-epilog: {line}");
            run::log(&cfg, true, &line);
            return ExitCode::SUCCESS;
        }
    }
    for (k, v) in &args.settings {
        if let Err(e) = cfg.set(k, v) {
            eprintln!("ml-epilog: {e}");
            return ExitCode::from(2);
        }
    }

    let uid = match args
        .uid
        .or_else(|| env("SLURM_JOB_UID").and_then(|u| u.parse().ok()))
    {
        Some(uid) => uid,
        None => {
            eprintln!("ml-epilog: no job uid: SLURM_JOB_UID is not set (slurmd sets it for Epilog=); pass --uid to run by hand");
            return ExitCode::from(2);
        }
    };
    let job = Job {
        uid,
        user: env("SLURM_JOB_USER"),
        job_id: env("SLURM_JOB_ID"),
        node: env("SLURMD_NODENAME"),
    };
    match u8::try_from(run::run(&job, &cfg, args.dry_run)) {
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::FAILURE,
    }
}
