use super::*;

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_shipped_profiles_parse_and_cover_every_fabric() {
    let p = Profiles::parse(BUILTIN_PROFILES, "mlenv.json").unwrap();
    assert_eq!(p.fabric_profiles.get(&Fabric::Efa).unwrap(), "efa");
    assert_eq!(
        p.fabric_profiles.get(&Fabric::Infiniband).unwrap(),
        "infiniband"
    );
    assert_eq!(p.fabric_profiles.get(&Fabric::None).unwrap(), "none");
    // Current aws-ofi-nccl tunes NCCL_*/FI_* itself for unset variables: set none.
    assert!(p.profiles["efa"].env.is_empty());
    assert!(p.profiles["efa"].needs_nccl_net_plugin);
    let legacy = &p.profiles["efa-legacy"].env;
    assert_eq!(legacy["FI_PROVIDER"], "efa");
    assert_eq!(legacy["FI_EFA_USE_DEVICE_RDMA"], "1");
    assert_eq!(legacy["NCCL_PROTO"], "simple");
    assert!(!legacy.contains_key("FI_EFA_USE_HUGE_PAGE"));
    assert_eq!(
        p.profiles["efa-nohugepage"].env["FI_EFA_USE_HUGE_PAGE"],
        "0"
    );
    assert_eq!(Profiles::builtin(), p);
}

#[test]
fn defaults_without_arguments() {
    let c = Config::from_args(&[]).unwrap();
    assert_eq!(c.default_mode, Mode::On);
    assert_eq!(c.addr, AddrMode::Name);
    assert_eq!(c.ports, 20000..=29999);
    assert_eq!(c.sysfs, PathBuf::from("/sys"));
    assert_eq!(c.lib_root, PathBuf::from("/"));
    assert!(c.forced.is_empty());
}

#[test]
fn every_key_is_read() {
    let c = Config::from_args(&args(&[
        "default=fabric-only",
        "addr=nodeaddr",
        "ports=30000-30099",
        "sysfs=/tmp/sys",
        "lib_root=/tmp/root",
        "force=NCCL_SOCKET_IFNAME,FI_PROVIDER",
    ]))
    .unwrap();
    assert_eq!(c.default_mode, Mode::FabricOnly);
    assert_eq!(c.addr, AddrMode::NodeAddr);
    assert_eq!(c.ports, 30000..=30099);
    assert_eq!(c.sysfs, PathBuf::from("/tmp/sys"));
    assert_eq!(c.lib_root, PathBuf::from("/tmp/root"));
    assert!(c.is_forced("FI_PROVIDER") && !c.is_forced("RANK"));
    assert_eq!(
        Config::from_args(&args(&["addr=alias"])).unwrap().addr,
        AddrMode::Alias
    );
}

#[test]
fn bad_arguments_are_named() {
    let err = |w: &[&str]| Config::from_args(&args(w)).unwrap_err().0;
    assert_eq!(
        err(&["colour=blue"]),
        "plugstack.conf: unknown key \"colour\" (keys: default, addr, ports, sysfs, lib_root, force, profiles)"
    );
    assert!(err(&["verbose"]).starts_with("plugstack.conf: argument \"verbose\" is not key=value"));
    assert_eq!(
        err(&["addr=dns"]),
        "plugstack.conf: addr=dns: use name, alias or nodeaddr"
    );
    assert_eq!(
        err(&["ports=40000-30000"]),
        "plugstack.conf: ports=40000-30000: 40000 is above 30000"
    );
    assert_eq!(
        err(&["ports=80-90"]),
        "plugstack.conf: ports=80-90: \"80\" is not a port in 1024-65535"
    );
    assert_eq!(
        err(&["sysfs=sys"]),
        "plugstack.conf: sysfs=sys: must be an absolute path"
    );
    assert_eq!(
        err(&["default=maybe"]),
        "plugstack.conf: default=maybe: \"maybe\" is not on, off or fabric-only"
    );
    assert_eq!(
        err(&["force=A-B"]),
        "plugstack.conf: force=A-B: \"A-B\" is not a variable name"
    );
    assert_eq!(
        err(&["addr=name", "addr=alias"]),
        "plugstack.conf: addr=alias: given twice"
    );
}

#[test]
fn profile_file_errors_name_the_line_and_the_key() {
    let text =
        "{\n  \"fabric_profiles\": {},\n  \"profiles\": {\n    \"x\": {\"envv\": {}}\n  }\n}\n";
    let e = Profiles::parse(text, "/etc/slurm/mlenv.json")
        .unwrap_err()
        .0;
    assert!(
        e.starts_with("/etc/slurm/mlenv.json: line 4, column"),
        "{e}"
    );
    assert!(e.contains("unknown field `envv`"), "{e}");
    let e = Profiles::parse(
        r#"{"fabric_profiles": {"efa": "fast"}, "profiles": {}}"#,
        "f.json",
    )
    .unwrap_err()
    .0;
    assert_eq!(
        e,
        "f.json: fabric_profiles.efa names the profile \"fast\", which is not in \"profiles\""
    );
    let e = Profiles::parse(
        r#"{"fabric_profiles": {"myrinet": "x"}, "profiles": {}}"#,
        "f.json",
    )
    .unwrap_err()
    .0;
    assert!(e.contains("unknown variant `myrinet`"), "{e}");
    let e = Profiles::parse(
        r#"{"fabric_profiles": {}, "profiles": {"x": {"env": {"A B": "1"}}}}"#,
        "f.json",
    )
    .unwrap_err()
    .0;
    assert_eq!(
        e,
        "f.json: profiles.x.env: \"A B\" is not a valid variable name"
    );
    let e = Profiles::parse(
        r#"{"fabric_profiles": {}, "profiles": {"x": {"ld_library_path": ["lib"]}}}"#,
        "f.json",
    )
    .unwrap_err()
    .0;
    assert_eq!(
        e,
        "f.json: profiles.x.ld_library_path: lib must be an absolute path without ':'"
    );
}

#[test]
fn choose_prefers_the_named_profile() {
    let p = Profiles::builtin();
    assert_eq!(p.choose(None, Fabric::Efa).unwrap().0, "efa");
    assert_eq!(p.choose(None, Fabric::None).unwrap().0, "none");
    assert_eq!(
        p.choose(Some("efa-legacy"), Fabric::None).unwrap().0,
        "efa-legacy"
    );
    assert!(p.choose(Some("nope"), Fabric::Efa).is_none());
}

#[test]
fn profiles_files_must_be_root_owned_and_not_writable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mlenv.json");
    std::fs::write(&path, BUILTIN_PROFILES).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    use std::os::unix::fs::MetadataExt;
    let is_root = std::fs::metadata(&path).unwrap().uid() == 0;
    if is_root {
        assert_eq!(load_profiles_file(&path).unwrap(), Profiles::builtin());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = load_profiles_file(&path).unwrap_err().0;
        assert_eq!(
            e,
            format!(
                "{0} is writable by group or others (mode 666): refusing it (chmod go-w {0})",
                path.display()
            )
        );
    } else {
        let e = load_profiles_file(&path).unwrap_err().0;
        assert!(e.contains("not root: refusing it"), "{e}");
    }
    let e = load_profiles_file(&dir.path().join("missing.json"))
        .unwrap_err()
        .0;
    assert!(e.contains("No such file"), "{e}");
}

/// Every spank_mlenv.so line of conf-examples/plugstack.conf (commented or not) parses.
#[test]
fn the_plugstack_examples_parse() {
    let text = include_str!("../../../../conf-examples/plugstack.conf");
    let mut n = 0;
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        let mut words = line.split_whitespace();
        if !matches!(words.next(), Some("required" | "optional")) {
            continue;
        }
        if !words.next().is_some_and(|p| p.ends_with("/spank_mlenv.so")) {
            continue;
        }
        let args: Vec<String> = words.map(str::to_string).collect();
        Config::from_args(&args).unwrap_or_else(|e| panic!("{line}: {e}"));
        n += 1;
    }
    assert!(n >= 3, "only {n} example lines");
}
