//! Checks the installed Slurm before anything else is built: the headers must be there (or
//! the build stops with the package to install), and the daemons that will load the plugins
//! must be the release the headers describe (a job_submit plugin whose `plugin_version`
//! differs from slurmctld's in any of major, minor, micro is refused at load time).

use std::process::Command;

use slurm_locate::SlurmVersion;

fn main() {
    let headers = slurm_locate::locate_or_exit("");
    println!(
        "cargo:rustc-env=SLURM_ML_HEADERS_VERSION={}",
        headers.version
    );
    // The integration tests assert what differs between releases with the same cfgs the
    // plugins are built with (slurm_ge_23_02, slurm_ge_23_11, ...).
    slurm_locate::emit_cfgs(headers.version);

    // The daemons are optional on a build host (packaging), so a missing one is fine;
    // a different release is a plugin that will not load: say so now.
    for daemon in ["slurmctld", "slurmd"] {
        let Ok(out) = Command::new(daemon).arg("-V").output() else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        match SlurmVersion::parse_program_version(&text) {
            Some(v) if v != headers.version => println!(
                "cargo:warning=the Slurm headers in {} are {} but the installed {daemon} is {}: \
                 plugins built here will be refused by that daemon (plugin_version mismatch). \
                 Install the matching libslurm-dev / slurm-devel or set SLURM_INCLUDE_DIR.",
                headers.include_dir.display(),
                headers.version,
                v
            ),
            Some(_) => {}
            None => println!(
                "cargo:warning=cannot read {daemon} -V output: {}",
                text.trim()
            ),
        }
    }
}
