// Declares the probe's cfg, so that a normal build (which never sets it) has no
// unexpected_cfgs warning.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(unsafe_probe, values(\"block\", \"allow\"))");
}
