//! Generates raw bindings from the installed Slurm headers and emits the version cfgs.

use std::env;
use std::path::PathBuf;

fn main() {
    let headers = slurm_locate::locate_or_exit("slurm-sys: ");
    println!("cargo:rerun-if-changed=wrapper.h");

    // For dependents' build scripts (links = "slurm").
    println!("cargo:version_number={}", headers.version.number());
    println!("cargo:include={}", headers.include_dir.display());
    slurm_locate::emit_cfgs(headers.version);
    if let Some(dir) = slurm_locate::find_slurmfull_dir(&headers.include_dir, &|p| p.is_file()) {
        println!("cargo:slurmfull_dir={}", dir.display());
    }

    if env::var_os("CARGO_FEATURE_LINK").is_some() {
        // Debian puts libslurm.so in the multiarch dir; other installs next to include/.
        if let Some(prefix) = headers.include_dir.parent() {
            for lib in ["lib64", "lib"] {
                let dir = prefix.join(lib);
                if dir.join("libslurm.so").exists() {
                    println!("cargo:rustc-link-search=native={}", dir.display());
                }
            }
        }
        println!("cargo:rustc-link-lib=dylib=slurm");
    }

    let include = headers.include_dir.display().to_string();
    let builder = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_arg(format!("-I{include}"))
        // Only what Slurm declares, not libc's headers that come along.
        .allowlist_file(r".*/slurm/(slurm|spank|slurm_errno|slurm_version|slurmdb)\.h")
        // spank.h declares the hooks a plugin *defines*; declaring them here as imports
        // would be wrong (and a plugin exports them itself).
        .blocklist_function("slurm_spank_.*")
        .blocklist_item("spank_options")
        .blocklist_item("spank_option_table")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));

    // bindgen panics when it cannot load libclang: turn that into the package to install.
    let generated =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            eprintln!("error: slurm-sys: bindgen failed on the Slurm headers in {include}: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!(
                "error: slurm-sys: bindgen could not run; it needs libclang: \
                 `apt-get install libclang-dev` on Debian/Ubuntu, `dnf install clang-devel` on RHEL"
            );
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("bindings.rs");
    if let Err(e) = bindings.write_to_file(&out) {
        eprintln!("error: slurm-sys: cannot write {}: {e}", out.display());
        std::process::exit(1);
    }
}
