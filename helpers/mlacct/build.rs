//! Links libslurm into mlacct only (not through slurm-sys's `link` feature: cargo unifies
//! features across the workspace, and the plugins loaded by slurmctld must never carry a
//! second libslurm). Found next to the headers slurm-sys read, or in Debian's multiarch
//! directory, else where the linker looks by default.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_SLURM_INCLUDE");
    if let Some(prefix) = std::env::var_os("DEP_SLURM_INCLUDE")
        .as_deref()
        .and_then(|i| Path::new(i).parent().map(Path::to_path_buf))
    {
        let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
        let multiarch = format!("lib/{arch}-linux-gnu");
        for dir in ["lib64", "lib", multiarch.as_str()] {
            let dir = prefix.join(dir);
            if dir.join("libslurm.so").exists() {
                println!("cargo:rustc-link-search=native={}", dir.display());
            }
        }
    }
    println!("cargo:rustc-link-lib=dylib=slurm");
}
