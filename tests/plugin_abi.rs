//! What the plugin files export and link, as Slurm's loader sees them: exactly the entry
//! points each implements (a stray `init` in a SPANK plugin would be called by Slurm's
//! generic loader; a stray `slurm_spank_job_prolog` makes slurmd fork for every job), and
//! never libslurm (the daemon already has it).

use std::collections::BTreeSet;
use std::process::Command;

use local_cluster::cargo_artifact;

fn dynamic_symbols(lib: &str, defined: bool) -> BTreeSet<String> {
    let path = cargo_artifact(lib).unwrap_or_else(|e| panic!("{e}"));
    let flag = if defined {
        "--defined-only"
    } else {
        "--undefined-only"
    };
    let out = Command::new("nm")
        .args(["-D", flag])
        .arg(&path)
        .output()
        .expect("nm (binutils) runs");
    assert!(
        out.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        // Rust's own runtime symbols are not entry points.
        .filter(|s| !s.starts_with('_') && !s.starts_with("rust_"))
        .collect()
}

fn needed(lib: &str) -> Vec<String> {
    let path = cargo_artifact(lib).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&path)
        .output()
        .expect("readelf (binutils) runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| {
            l.split('[')
                .nth(1)
                .map(|s| s.trim_end_matches(']').to_string())
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn spank_plugin_exports_only_its_hooks() {
    assert_eq!(
        dynamic_symbols("libspank_selftest.so", true),
        set(&[
            "plugin_name",
            "plugin_type",
            "plugin_version",
            "slurm_spank_init",
            "slurm_spank_task_init",
            "slurm_spank_user_init",
            "spank_plugin_version",
        ])
    );
}

/// mlenv: no job_prolog/epilog (slurmd would fork for every job), no task_exit, no
/// init/fini; and slurm_conf_get_address is looked up at run time, never linked.
#[test]
fn mlenv_exports_only_its_hooks() {
    assert_eq!(
        dynamic_symbols("libspank_mlenv.so", true),
        set(&[
            "plugin_name",
            "plugin_type",
            "plugin_version",
            "slurm_spank_init",
            "slurm_spank_init_post_opt",
            "slurm_spank_task_init",
            "slurm_spank_user_init",
            "spank_plugin_version",
        ])
    );
    assert!(!dynamic_symbols("libspank_mlenv.so", false).contains("slurm_conf_get_address"));
}

/// What slurmctld looks up in a job_submit plugin, and all such a plugin exports.
const JOB_SUBMIT_INTERFACE: &[&str] = &[
    "fini",
    "init",
    "job_modify",
    "job_submit",
    "plugin_name",
    "plugin_type",
    "plugin_version",
];

/// mlpolicy: the job_submit interface only; `slurm_conf` is looked up at run time.
#[test]
fn mlpolicy_exports_the_job_submit_interface() {
    assert_eq!(
        dynamic_symbols("libjob_submit_mlpolicy.so", true),
        set(JOB_SUBMIT_INTERFACE)
    );
    assert!(!dynamic_symbols("libjob_submit_mlpolicy.so", false).contains("slurm_conf"));
}

#[test]
fn job_submit_plugin_exports_the_job_submit_interface() {
    assert_eq!(
        dynamic_symbols("libjob_submit_selftest.so", true),
        set(JOB_SUBMIT_INTERFACE)
    );
}

#[test]
fn plugins_do_not_link_libslurm() {
    for lib in [
        "libspank_selftest.so",
        "libjob_submit_selftest.so",
        "libspank_mlenv.so",
        "libjob_submit_mlpolicy.so",
    ] {
        let needed = needed(lib);
        assert!(
            !needed.is_empty(),
            "readelf found no NEEDED entries in {lib}"
        );
        assert!(
            needed.iter().all(|n| !n.contains("slurm")),
            "{lib} links {needed:?}: Slurm symbols must come from the daemon"
        );
        // Every Slurm symbol it uses is one the daemons export from libslurmfull.
        for sym in dynamic_symbols(lib, false) {
            if sym.contains("slurm") || sym.starts_with("spank_") {
                assert!(
                    sym.starts_with("slurm_") || sym.starts_with("spank_"),
                    "{lib} references {sym}, which is not part of Slurm's exported API"
                );
            }
        }
    }
}
