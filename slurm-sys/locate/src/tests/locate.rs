use super::*;
use std::collections::HashMap;

#[derive(Default)]
struct FakeProbe {
    env: Option<PathBuf>,
    pkg: Vec<PathBuf>,
    files: HashMap<PathBuf, String>,
}

impl FakeProbe {
    fn with_headers(mut self, dir: &str, version_line: &str) -> Self {
        for h in HEADERS {
            let text = if h.ends_with("slurm_version.h") {
                version_line.to_string()
            } else {
                String::new()
            };
            self.files.insert(Path::new(dir).join(h), text);
        }
        self
    }
}

impl Probe for FakeProbe {
    fn env_include_dir(&self) -> Option<PathBuf> {
        self.env.clone()
    }
    fn pkg_config_include_dirs(&self) -> Vec<PathBuf> {
        self.pkg.clone()
    }
    fn exists(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }
    fn read(&self, path: &Path) -> Result<String, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| "no such file".into())
    }
}

const V2205: &str = "#define SLURM_VERSION_NUMBER 0x160508\n";

#[test]
fn parses_debian_12_header() {
    let text = "#ifndef _SLURM_VERSION_H\n#define SLURM_VERSION_NUMBER 0x160508\n\
                #define SLURM_VERSION_NUM(a,b,c) (((a) << 16) + ((b) << 8) + (c))\n";
    let v = SlurmVersion::parse_version_header(text).unwrap();
    assert_eq!((v.major, v.minor, v.micro), (22, 5, 8));
    assert_eq!(v.number(), 0x160508);
    assert_eq!(v.to_string(), "22.05.8");
}

#[test]
fn parses_24_11_and_decimal_and_parenthesised() {
    let v = SlurmVersion::parse_version_header("#define  SLURM_VERSION_NUMBER\t0x180b05").unwrap();
    assert_eq!(v.to_string(), "24.11.5");
    let v = SlurmVersion::parse_version_header("#define SLURM_VERSION_NUMBER (1443080)").unwrap();
    assert_eq!(v.to_string(), "22.05.8");
}

#[test]
fn rejects_missing_or_garbage_version() {
    assert!(matches!(
        SlurmVersion::parse_version_header("#define SLURM_VERSION_STRING \"22.05.8\""),
        Err(LocateError::BadVersion(_))
    ));
    assert!(matches!(
        SlurmVersion::parse_version_header("#define SLURM_VERSION_NUMBER 0xzz"),
        Err(LocateError::BadVersion(_))
    ));
    assert!(matches!(
        SlurmVersion::parse_version_header("#define SLURM_VERSION_NUMBER 0x10000000"),
        Err(LocateError::BadVersion(_))
    ));
}

#[test]
fn parses_program_version() {
    assert_eq!(
        SlurmVersion::parse_program_version("slurm-wlm 22.05.8\n"),
        Some(SlurmVersion {
            major: 22,
            minor: 5,
            micro: 8
        })
    );
    assert_eq!(
        SlurmVersion::parse_program_version("slurm 24.11.5"),
        Some(SlurmVersion {
            major: 24,
            minor: 11,
            micro: 5
        })
    );
    assert_eq!(SlurmVersion::parse_program_version("garbage"), None);
}

#[test]
fn cfgs_follow_releases() {
    let v = SlurmVersion::from_number(0x160508);
    assert_eq!(v.cfgs(), vec!["slurm_ge_22_05"]);
    let v = SlurmVersion::from_number(0x180b05);
    assert_eq!(
        v.cfgs(),
        vec![
            "slurm_ge_22_05",
            "slurm_ge_23_02",
            "slurm_ge_23_11",
            "slurm_ge_24_05",
            "slurm_ge_24_11"
        ]
    );
    assert!(all_cfg_names().contains(&"slurm_ge_25_11".to_string()));
    assert!(all_cfg_names().contains(&"slurm_ge_26_05".to_string()));
}

#[test]
fn env_var_wins_and_never_falls_back() {
    let probe = FakeProbe {
        env: Some("/env/include".into()),
        ..Default::default()
    }
    .with_headers("/usr/include", V2205);
    match locate_with(&probe) {
        Err(LocateError::EnvDirIncomplete { dir, missing }) => {
            assert_eq!(dir, PathBuf::from("/env/include"));
            assert_eq!(missing.len(), HEADERS.len());
        }
        other => panic!("expected EnvDirIncomplete, got {other:?}"),
    }
    let probe = FakeProbe {
        env: Some("/env/include".into()),
        ..Default::default()
    }
    .with_headers("/env/include", V2205)
    .with_headers("/usr/include", "#define SLURM_VERSION_NUMBER 0x180b00");
    let h = locate_with(&probe).unwrap();
    assert_eq!(h.source, Source::EnvVar);
    assert_eq!(h.version.to_string(), "22.05.8");
}

#[test]
fn pkg_config_before_default_paths() {
    let probe = FakeProbe {
        pkg: vec!["/opt/slurm-24/include".into()],
        ..Default::default()
    }
    .with_headers(
        "/opt/slurm-24/include",
        "#define SLURM_VERSION_NUMBER 0x180b05",
    )
    .with_headers("/usr/include", V2205);
    let h = locate_with(&probe).unwrap();
    assert_eq!(h.source, Source::PkgConfig);
    assert_eq!(h.include_dir, PathBuf::from("/opt/slurm-24/include"));
}

#[test]
fn default_paths_in_order_and_incomplete_dirs_skipped() {
    let mut probe = FakeProbe::default().with_headers("/opt/slurm/include", V2205);
    // /usr/local/include has only some headers: skipped, not half-used.
    probe
        .files
        .insert("/usr/local/include/slurm/slurm.h".into(), String::new());
    let h = locate_with(&probe).unwrap();
    assert_eq!(h.source, Source::DefaultPath);
    assert_eq!(h.include_dir, PathBuf::from("/opt/slurm/include"));
}

#[test]
fn not_found_names_the_package_and_the_variable() {
    let err = locate_with(&FakeProbe::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("libslurm-dev"), "{msg}");
    assert!(msg.contains("slurm-devel"), "{msg}");
    assert!(msg.contains("SLURM_INCLUDE_DIR"), "{msg}");
    assert!(msg.contains("/opt/slurm/include"), "{msg}");
}

#[test]
fn slurmfull_dir_debian_and_rhel_layouts() {
    let debian = |p: &Path| p == Path::new("/usr/lib/x86_64-linux-gnu/slurm-wlm/libslurmfull.so");
    assert_eq!(
        find_slurmfull_dir(Path::new("/usr/include"), &debian),
        Some(PathBuf::from("/usr/lib/x86_64-linux-gnu/slurm-wlm"))
    );
    let rhel = |p: &Path| p == Path::new("/usr/lib64/slurm/libslurmfull.so");
    assert_eq!(
        find_slurmfull_dir(Path::new("/usr/include"), &rhel),
        Some(PathBuf::from("/usr/lib64/slurm"))
    );
    let opt = |p: &Path| p == Path::new("/opt/slurm/lib/slurm/libslurmfull.so");
    assert_eq!(
        find_slurmfull_dir(Path::new("/opt/slurm/include"), &opt),
        Some(PathBuf::from("/opt/slurm/lib/slurm"))
    );
    assert_eq!(
        find_slurmfull_dir(Path::new("/usr/include"), &|_: &Path| false),
        None
    );
}

#[test]
fn pkg_config_cflags() {
    assert_eq!(
        parse_pkg_config_cflags("-I/opt/slurm/include  -I/x/y\n"),
        vec![PathBuf::from("/opt/slurm/include"), PathBuf::from("/x/y")]
    );
    assert!(parse_pkg_config_cflags("\n").is_empty());
}
