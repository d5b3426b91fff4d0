//! `mlpolicy validate FILE`: loads a site policy exactly as the job_submit plugin does
//! (same owner and mode check, parser and rules, admin user names resolved on this host),
//! so an admin can
//! check it before `scontrol reconfigure`. Exit 0 when it is usable, 1 with the reason when
//! not, 2 on a usage error.

use std::process::ExitCode;

use mlpolicy::config::{self, Kind};

const USAGE: &str = "usage: mlpolicy validate FILE";

fn validate(path: &str) -> Result<String, String> {
    let (p, _) = config::load_file(std::path::Path::new(path))?;
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
