use super::*;

#[test]
fn defaults_are_safe() {
    let c = Config::default();
    assert_eq!(c.min_uid, 1000);
    assert!(c.name_allowed("nccl-abc") && c.name_allowed("anything"));
    assert!(!c.fail_on_error);
}

#[test]
fn file_text_sets_every_key() {
    let mut c = Config::default();
    c.apply_text(
        "# site settings\nmin_uid = 2000\npatterns = nccl-*, psm2_*  # NCCL and PSM2\nclean_sem = no\n\
         clean_msg=false\nclean_files = yes\nshm_dir = /run/shm\nlog_file = /var/log/ml-epilog.log\nfail_on_error = yes\n",
        "t.conf",
    )
    .unwrap();
    assert_eq!(
        c,
        Config {
            min_uid: 2000,
            patterns: vec!["nccl-*".into(), "psm2_*".into()],
            clean_sem: false,
            clean_msg: false,
            clean_files: true,
            shm_dir: "/run/shm".into(),
            log_file: Some("/var/log/ml-epilog.log".into()),
            fail_on_error: true,
        }
    );
    assert!(c.name_allowed("nccl-123") && !c.name_allowed("sem.foo"));
}

#[test]
fn errors_name_the_line_and_the_key() {
    let mut c = Config::default();
    let e = c
        .apply_text(
            "min_uid = 1000\ncolour = blue\n",
            "/etc/slurm/ml-epilog.conf",
        )
        .unwrap_err();
    assert_eq!(e.0, "/etc/slurm/ml-epilog.conf:2: unknown key \"colour\"");
    let e = c.apply_text("min_uid = lots\n", "f").unwrap_err();
    assert_eq!(e.0, "f:1: min_uid takes a number, not \"lots\"");
    assert!(c
        .apply_text("min_uid = 0\n", "f")
        .unwrap_err()
        .0
        .contains("root"));
    assert!(c
        .apply_text("clean_sem = maybe\n", "f")
        .unwrap_err()
        .0
        .contains("yes or no"));
    assert!(c
        .apply_text("patterns = ../etc/*\n", "f")
        .unwrap_err()
        .0
        .contains("contains '/'"));
    assert!(c
        .apply_text("just words\n", "f")
        .unwrap_err()
        .0
        .contains("expected key = value"));
    assert!(c.apply_text("log_file = relative.log\n", "f").is_err());
}

#[test]
fn default_path_prefers_the_slurm_conf_directory() {
    let exists_both = |p: &Path| {
        p == Path::new("/tmp/c/ml-epilog.conf") || p == Path::new("/etc/slurm/ml-epilog.conf")
    };
    assert_eq!(
        default_path(Some(Path::new("/tmp/c/slurm.conf")), exists_both),
        Some(PathBuf::from("/tmp/c/ml-epilog.conf"))
    );
    let only_etc = |p: &Path| p == Path::new("/etc/slurm/ml-epilog.conf");
    assert_eq!(
        default_path(Some(Path::new("/tmp/c/slurm.conf")), only_etc),
        Some(PathBuf::from("/etc/slurm/ml-epilog.conf"))
    );
    assert_eq!(default_path(None, |_: &Path| false), None);
}

#[test]
fn globs() {
    assert!(glob_match("nccl-*", "nccl-shm-1234"));
    assert!(glob_match("*", ""));
    assert!(glob_match("*-?", "a-b"));
    assert!(glob_match("a*b*c", "axxbyyc"));
    assert!(glob_match("a*b*c", "abcbc"));
    assert!(!glob_match("nccl-*", "xnccl-1"));
    assert!(!glob_match("a?c", "ac"));
    assert!(!glob_match("a*b", "a"));
    assert!(glob_match("**", "x"));
}
