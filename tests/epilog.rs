//! `ml-epilog` as slurmd's `Epilog=` on the local cluster, with real users' jobs leaving
//! SysV IPC objects and /dev/shm files behind. Each test uses its own users, so tests can
//! run side by side (SysV IPC and /dev/shm are shared by all clusters on the machine).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use local_cluster::{
    cargo_artifact, ensure_user, lock_exclusive, Cluster, FileLock, Options, User,
    CLUSTER_DIR_PLACEHOLDER,
};
use ml_epilog::sysvipc;

const SHM_DIR: &str = "/dev/shm";

/// SysV IPC and /dev/shm are shared by everything on the machine, including a second run of
/// this suite (another checkout, or the 24.11 suite in its chroot, whose test users have
/// other names for the same uids). One run's epilog tests at a time: an exclusive lock on
/// a file in /dev/shm, held until this test process exits.
fn machine_lock() {
    static LOCK: std::sync::OnceLock<FileLock> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| {
        lock_exclusive(&Path::new(SHM_DIR).join(".slurm-ml-epilog-tests.lock"))
            .unwrap_or_else(|e| panic!("{e}"))
    });
}

fn epilog_cluster() -> Cluster {
    machine_lock();
    start(Options {
        epilog: Some(cargo_artifact("ml-epilog").unwrap_or_else(|e| panic!("{e}"))),
        extra_files: vec![(
            "ml-epilog.conf".into(),
            format!("# read from next to slurm.conf\nlog_file = {CLUSTER_DIR_PLACEHOLDER}/log/ml-epilog.log\n"),
        )],
        ..Options::default()
    })
}

fn fixture(c: &Cluster) -> String {
    let tool = cargo_artifact("ipc-fixture").unwrap_or_else(|e| panic!("{e}"));
    c.install_tool(&tool).unwrap().display().to_string()
}

/// The SysV objects of `uid`, as (shm ids, sem ids, msg ids), read with ml-epilog's parser.
fn sysv_of(uid: u32) -> (Vec<i32>, Vec<i32>, Vec<i32>) {
    let read = |f: &str| fs::read_to_string(format!("/proc/sysvipc/{f}")).unwrap();
    let shm = sysvipc::parse_shm(&read("shm")).unwrap().rows;
    let sem = sysvipc::parse_sem(&read("sem")).unwrap().rows;
    let msg = sysvipc::parse_msg(&read("msg")).unwrap().rows;
    (
        shm.iter().filter(|s| s.uid == uid).map(|s| s.id).collect(),
        sem.iter().filter(|s| s.uid == uid).map(|s| s.id).collect(),
        msg.iter().filter(|m| m.uid == uid).map(|m| m.id).collect(),
    )
}

fn attached_shm_of(uid: u32) -> Vec<i32> {
    let text = fs::read_to_string("/proc/sysvipc/shm").unwrap();
    sysvipc::parse_shm(&text)
        .unwrap()
        .rows
        .iter()
        .filter(|s| s.uid == uid && s.nattch > 0)
        .map(|s| s.id)
        .collect()
}

/// Names of the regular files and symlinks in /dev/shm owned by `uid`.
fn shm_files_of(uid: u32) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(SHM_DIR)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.path()
                .symlink_metadata()
                .map(|m| m.uid() == uid)
                .unwrap_or(false)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Waits for the epilog's log line about `job` and returns it.
fn epilog_line(c: &Cluster, job: u32) -> String {
    let log = c.dir().join("log/ml-epilog.log");
    let needle = format!("job {job} ");
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        if let Some(line) = fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains(&needle))
        {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no ml-epilog line for job {job} in {}; slurmd log:\n{}",
            log.display(),
            local_cluster::tail(&c.log_path("slurmd-n1"), 20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_job(c: &Cluster, user: &User, args: &[&str]) -> u32 {
    let job = c.sbatch(Some(user), args).unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    job
}

/// Creates objects as `user` outside Slurm (not a job, so no epilog runs for them).
fn create_as(c: &Cluster, user: &User, tool: &str, prefix: &str) {
    ok(c.run_as(
        user,
        tool,
        [
            "create", "--shm", "1", "--sem", "1", "--msg", "1", "--files", "1", "--prefix", prefix,
        ],
    )
    .unwrap());
}

/// Removes what a test left for `uid`, before it starts and when it ends (also when an
/// assertion fails), so no run depends on an earlier one.
struct Cleanup(u32);

impl Cleanup {
    fn new(user: &User) -> Cleanup {
        cleanup(user.uid);
        Cleanup(user.uid)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        cleanup(self.0);
    }
}

/// Root's objects a test made on purpose, removed when the test ends however it ends.
struct RootObjects {
    shm: i32,
    file: PathBuf,
}

impl Drop for RootObjects {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ipcrm")
            .args(["-m", &self.shm.to_string()])
            .output();
        let _ = fs::remove_file(&self.file);
    }
}

fn cleanup(uid: u32) {
    let (shm, sem, msg) = sysv_of(uid);
    for (flag, ids) in [("-m", shm), ("-s", sem), ("-q", msg)] {
        for id in ids {
            let _ = std::process::Command::new("ipcrm")
                .args([flag, &id.to_string()])
                .output();
        }
    }
    for f in shm_files_of(uid) {
        let _ = fs::remove_file(Path::new(SHM_DIR).join(f));
    }
}

#[test]
fn a_finished_job_leaves_nothing_and_other_users_keep_theirs() {
    let c = epilog_cluster();
    let tool = fixture(&c);
    let a = ensure_user("mltest-e1").unwrap();
    let b = ensure_user("mltest-e2").unwrap();
    let _clean = (Cleanup::new(&a), Cleanup::new(&b));
    create_as(&c, &b, &tool, "nccl-e2");
    // Root's objects, not from a job either.
    let root_out = ok(c
        .run(
            &tool,
            [
                "create",
                "--shm",
                "1",
                "--files",
                "1",
                "--prefix",
                "nccl-root-e1",
            ],
        )
        .unwrap());
    let root_shm: i32 = stdout(&root_out)
        .lines()
        .find_map(|l| l.strip_prefix("shm ")?.parse().ok())
        .unwrap();
    let _root_clean = RootObjects {
        shm: root_shm,
        file: Path::new(SHM_DIR).join("nccl-root-e1-0"),
    };
    let b_before = (sysv_of(b.uid), shm_files_of(b.uid));

    let cmd =
        format!("{tool} create --shm 3 --sem 1 --msg 1 --files 2 --prefix nccl-e1-$SLURM_JOB_ID");
    let job = run_job(&c, &a, &["-o", "/dev/null", "--wrap", &cmd]);
    let line = epilog_line(&c, job);
    assert!(
        line.contains(&format!(
            "job {job} user mltest-e1 (uid {}) on n1: removed 3 shm (3.0 MiB), 1 sem, 1 msg, 2 files (8.0 KiB) \
             [user has no processes left here: all of the user's objects]; 0 errors",
            a.uid
        )),
        "{line}"
    );
    assert_eq!(sysv_of(a.uid), (vec![], vec![], vec![]));
    assert_eq!(shm_files_of(a.uid), Vec::<String>::new());
    // Everyone else's objects are still there.
    assert_eq!((sysv_of(b.uid), shm_files_of(b.uid)), b_before);
    assert_eq!(b_before.0 .0.len(), 1);
    let root_shm_left = sysvipc::parse_shm(&fs::read_to_string("/proc/sysvipc/shm").unwrap())
        .unwrap()
        .rows
        .iter()
        .any(|s| s.id == root_shm && s.uid == 0);
    assert!(root_shm_left, "root's segment {root_shm} was removed");
    assert!(Path::new(SHM_DIR).join("nccl-root-e1-0").exists());
}

#[test]
fn a_user_with_another_running_job_keeps_what_it_uses() {
    let c = epilog_cluster();
    let tool = fixture(&c);
    let a = ensure_user("mltest-e3").unwrap();
    let _clean = Cleanup::new(&a);
    // Job 1 holds a segment attached and a /dev/shm file, like a running NCCL job.
    let hold = format!("{tool} hold --seconds 300 --file nccl-e3-live");
    let running = c
        .sbatch(Some(&a), &["-w", "n1", "-o", "/dev/null", "--wrap", &hold])
        .unwrap();
    let deadline = Instant::now() + JOB_TIMEOUT;
    while attached_shm_of(a.uid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the holding job never attached its segment"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let live_shm = attached_shm_of(a.uid);

    // Job 2 on the same node ends and leaves dead objects.
    let cmd = format!("{tool} create --shm 2 --sem 1 --msg 1 --files 1 --prefix nccl-e3-dead");
    let job = run_job(&c, &a, &["-w", "n1", "-o", "/dev/null", "--wrap", &cmd]);
    let line = epilog_line(&c, job);
    assert!(
        line.contains("removed 2 shm (2.0 MiB), 0 sem, 0 msg, 0 files (0 B) [user still has processes here: dead shm segments only]; kept 1 shm, 1 sem, 1 msg, 2 files"),
        "{line}"
    );
    let (shm, sem, msg) = sysv_of(a.uid);
    assert_eq!(shm, live_shm, "only the attached segment is left");
    assert_eq!(
        (sem.len(), msg.len()),
        (1, 1),
        "semaphores and queues are kept while the user is live"
    );
    assert_eq!(shm_files_of(a.uid), ["nccl-e3-dead-0", "nccl-e3-live"]);

    // When the last job ends, everything goes.
    ok(c.run("scancel", [running.to_string()]).unwrap());
    let line = epilog_line(&c, running);
    assert!(
        line.contains("[user has no processes left here: all of the user's objects]"),
        "{line}"
    );
    assert!(
        line.contains("removed 1 shm (1.0 MiB), 1 sem, 1 msg, 2 files (8.0 KiB)"),
        "{line}"
    );
    assert_eq!(sysv_of(a.uid), (vec![], vec![], vec![]));
    assert_eq!(shm_files_of(a.uid), Vec::<String>::new());
}

#[test]
fn a_symlink_in_dev_shm_never_leads_root_elsewhere() {
    let c = epilog_cluster();
    let tool = fixture(&c);
    let a = ensure_user("mltest-e4").unwrap();
    let _clean = Cleanup::new(&a);
    // A root-owned file the user must not be able to have deleted or changed.
    let decoy_dir = tempfile::tempdir().unwrap();
    let decoy: PathBuf = decoy_dir.path().join("precious");
    fs::write(&decoy, "precious\n").unwrap();
    fs::set_permissions(
        decoy_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let cmd = format!(
        "ln -s {} /dev/shm/nccl-e4-decoy-$SLURM_JOB_ID && ln -s /etc/passwd /dev/shm/nccl-e4-passwd-$SLURM_JOB_ID \
         && {tool} create --files 1 --prefix nccl-e4-real",
        decoy.display()
    );
    let job = run_job(&c, &a, &["-o", "/dev/null", "--wrap", &cmd]);
    let line = epilog_line(&c, job);
    assert!(
        line.contains("1 files (4.0 KiB)"),
        "only the regular file goes: {line}"
    );
    assert_eq!(fs::read_to_string(&decoy).unwrap(), "precious\n");
    // (Other tests add users meanwhile, so /etc/passwd is checked for being there, not equal.)
    assert!(fs::symlink_metadata("/etc/passwd")
        .unwrap()
        .file_type()
        .is_file());
    assert!(fs::read_to_string("/etc/passwd")
        .unwrap()
        .starts_with("root:"));
    // The links themselves are the user's and are left for the user (not regular files).
    assert_eq!(
        shm_files_of(a.uid),
        [
            format!("nccl-e4-decoy-{job}"),
            format!("nccl-e4-passwd-{job}")
        ]
    );
}

#[test]
fn root_jobs_are_left_alone() {
    let c = epilog_cluster();
    let tool = fixture(&c);
    let job = c
        .sbatch(
            None,
            &[
                "-o",
                "/dev/null",
                "--wrap",
                &format!("{tool} create --shm 1 --prefix nccl-rootjob"),
            ],
        )
        .unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    let line = epilog_line(&c, job);
    assert!(
        line.contains("uid 0 is below min_uid 1000: system accounts are never cleaned"),
        "{line}"
    );
    // The segment the job made is still there; remove it here.
    let text = fs::read_to_string("/proc/sysvipc/shm").unwrap();
    let rows = sysvipc::parse_shm(&text).unwrap().rows;
    let created: Vec<i32> = rows
        .iter()
        .filter(|s| s.uid == 0 && s.size == 1 << 20)
        .map(|s| s.id)
        .collect();
    assert!(!created.is_empty());
    for id in created {
        let _ = std::process::Command::new("ipcrm")
            .args(["-m", &id.to_string()])
            .output();
    }
}

#[test]
fn an_insecure_config_is_refused_and_nothing_is_cleaned() {
    machine_lock();
    let a = ensure_user("mltest-e5").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ml-epilog.conf");
    fs::write(&conf, "min_uid = 1000\n").unwrap();
    fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let path = fs::canonicalize(Path::new(SHM_DIR))
        .unwrap()
        .join("nccl-e5-keep");
    fs::write(&path, "x").unwrap();
    std::os::unix::fs::chown(&path, Some(a.uid), Some(a.gid)).unwrap();
    let out = std::process::Command::new(cargo_artifact("ml-epilog").unwrap())
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--uid",
            &a.uid.to_string(),
            "--log-file",
        ])
        .arg(dir.path().join("log"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "a refused config must not drain the node"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "config refused, nothing cleaned: {0} is writable by group or others (mode 666): refusing it (chmod go-w {0})",
            conf.display()
        )),
        "{err}"
    );
    assert!(path.exists());
    fs::remove_file(path).unwrap();
}

#[test]
fn a_segment_still_attached_is_kept_even_when_its_owner_is_gone() {
    let c = epilog_cluster();
    let tool = fixture(&c);
    let a = ensure_user("mltest-e6").unwrap();
    let _clean = Cleanup::new(&a);
    // A's segment, made outside a job, attached by a root process (as a process in another
    // pid namespace would look): A has no process of its own on the node.
    let out = ok(c.run_as(&a, &tool, ["create", "--shm", "1"]).unwrap());
    let id: i32 = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("shm ")?.parse().ok())
        .unwrap();
    let mut holder = std::process::Command::new(&tool)
        .args(["attach", "--id", &id.to_string(), "--seconds", "120"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + JOB_TIMEOUT;
    while attached_shm_of(a.uid) != [id] {
        assert!(Instant::now() < deadline, "segment {id} never attached");
        std::thread::sleep(Duration::from_millis(50));
    }
    let job = run_job(&c, &a, &["-o", "/dev/null", "--wrap", "true"]);
    let line = epilog_line(&c, job);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        line.contains("[user has no processes left here: all of the user's objects]"),
        "{line}"
    );
    assert!(line.contains("removed 0 shm (0 B)"), "{line}");
    assert!(
        line.contains("1 changed since the scan and left alone"),
        "{line}"
    );
    assert_eq!(sysv_of(a.uid).0, [id], "the attached segment survives");
}
