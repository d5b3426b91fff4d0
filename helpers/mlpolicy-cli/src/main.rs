//! `mlpolicy validate FILE`: loads a site policy exactly as the job_submit plugin does
//! (same parser, same checks, admin user names resolved on this host), so an admin can
//! check it before `scontrol reconfigure`. Exit 0 when it is usable, 1 with the reason when
//! not, 2 on a usage error.

use std::process::ExitCode;

use mlpolicy::config::{Kind, Policy};

const USAGE: &str = "usage: mlpolicy validate FILE";

fn uid_of(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

fn validate(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let p = Policy::parse(&text, path, &uid_of).map_err(|e| e.0)?;
    let parts: Vec<String> = p
        .partitions
        .iter()
        .map(|(name, r)| match r.kind {
            Some(Kind::Gpu) => format!("{name} (gpu)"),
            Some(Kind::Cpu) => format!("{name} (cpu)"),
            None => name.clone(),
        })
        .collect();
    Ok(format!(
        "{path}: ok: {} partition rule set(s): {}; default partitions: gpu {}, cpu {}; {} admin uid(s), {} admin account(s)",
        parts.len(),
        parts.join(", "),
        p.default_gpu_partition.as_deref().unwrap_or("(none)"),
        p.default_cpu_partition.as_deref().unwrap_or("(none)"),
        p.admins.uids.len(),
        p.admins.accounts.len()
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["validate", path] => match validate(path) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mlpolicy: {e}");
                ExitCode::from(1)
            }
        },
        ["-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
