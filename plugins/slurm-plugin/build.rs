//! Follows the installed Slurm's ABI: the same version cfgs as slurm-sys (`slurm_ge_23_02`, ...).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_SLURM_VERSION_NUMBER");
    let number = std::env::var("DEP_SLURM_VERSION_NUMBER")
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    match number {
        Some(n) => slurm_locate::emit_cfgs(slurm_locate::SlurmVersion::from_number(n)),
        None => {
            eprintln!("error: slurm-plugin: slurm-sys did not report DEP_SLURM_VERSION_NUMBER");
            std::process::exit(1);
        }
    }
    // This crate's unit tests call Slurm's log and string functions for real, so its test
    // binary links libslurmfull (cfg(test) in lib.rs). These lines only affect binaries
    // linked for this crate; the plugins built on it never link libslurmfull.
    if let Ok(dir) = std::env::var("DEP_SLURM_SLURMFULL_DIR") {
        println!("cargo:rustc-link-search=native={dir}");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
