//! The mlenv SPANK plugin in real srun, sbatch, salloc and slurmstepd processes: the exact
//! values every task sees, precedence, options, fabric profiles on a fixture sysfs, failure
//! modes of `optional`/`required`, and PyTorch's own rendezvous reading the variables.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::*;
use local_cluster::{cargo_artifact, ensure_user, Cluster, Options, SpankPlugin};

/// The variables mlenv may set, printed by every task as `NAME=value` words.
const SHOW: &str = r#"printf '%s' "task=$SLURM_PROCID"; for v in MASTER_ADDR MASTER_PORT RANK LOCAL_RANK WORLD_SIZE LOCAL_WORLD_SIZE NODE_RANK PET_NNODES PET_NODE_RANK PET_NPROC_PER_NODE PET_MASTER_ADDR PET_MASTER_PORT PET_RDZV_ID NCCL_DEBUG FI_PROVIDER FI_EFA_USE_DEVICE_RDMA NCCL_PROTO LD_LIBRARY_PATH; do [ -n "${!v+x}" ] && printf ' %s=%s' "$v" "${!v}"; done; echo"#;

/// A fixture tree: `sys/` with an EFA device (when `efa`), `root/` with the EFA library
/// directory (and aws-ofi-nccl's when `ofi`).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(efa: bool, ofi: bool) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("mlenv-fixture")
            .tempdir()
            .unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(sys.join("class/infiniband")).unwrap();
        if efa {
            let dev = sys.join("devices/pci0000:00/0000:00:1e.0");
            let drv = sys.join("bus/pci/drivers/efa");
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::create_dir_all(&drv).unwrap();
            symlink(&drv, dev.join("driver")).unwrap();
            std::fs::create_dir_all(sys.join("class/infiniband/rdmap0s30")).unwrap();
            symlink(&dev, sys.join("class/infiniband/rdmap0s30/device")).unwrap();
        }
        let efa_lib = dir.path().join("root/opt/amazon/efa/lib");
        std::fs::create_dir_all(&efa_lib).unwrap();
        std::fs::write(efa_lib.join("libfabric.so.1"), "").unwrap();
        let f = Fixture { dir };
        if ofi {
            f.install_ofi();
        }
        f
    }

    fn install_ofi(&self) {
        let ofi = self.ofi_dir();
        std::fs::create_dir_all(&ofi).unwrap();
        std::fs::write(ofi.join("libnccl-net.so"), "").unwrap();
    }

    fn ofi_dir(&self) -> PathBuf {
        self.dir
            .path()
            .join("root/opt/amazon/ofi-nccl/lib/x86_64-linux-gnu")
    }

    fn efa_lib(&self) -> PathBuf {
        self.dir.path().join("root/opt/amazon/efa/lib")
    }

    fn args(&self) -> Vec<String> {
        vec![
            format!("sysfs={}", self.dir.path().join("sys").display()),
            format!("lib_root={}", self.dir.path().join("root").display()),
        ]
    }
}

fn mlenv_cluster(args: Vec<String>, required: bool) -> Cluster {
    mlenv_cluster_with(args, required, vec![])
}

fn mlenv_cluster_with(args: Vec<String>, required: bool, extra_slurm_conf: Vec<String>) -> Cluster {
    let artifact = cargo_artifact("libspank_mlenv.so").unwrap_or_else(|e| panic!("{e}"));
    start(Options {
        spank_plugins: vec![SpankPlugin {
            artifact,
            args,
            required,
        }],
        extra_slurm_conf,
        ..Options::default()
    })
}

/// `task=N NAME=value ...` lines, by task.
fn tasks(text: &str) -> BTreeMap<u32, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("task=")) {
        let mut words = line.split(' ');
        let task: u32 = words.next().unwrap()["task=".len()..].parse().unwrap();
        let vars = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.insert(task, vars);
    }
    out
}

fn vars(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The port the plugin must give `job`'s step (`None`: the batch step), written out here
/// from the documented rule, not taken from the plugin's code: 8 ports per job, the first
/// for the batch step, then 1 + step id mod 7.
fn port(job: u32, step: Option<u32>) -> String {
    let slot = step.map_or(0, |s| 1 + s % 7);
    (20000 + (job % 1250) * 8 + slot).to_string()
}

fn job_of(text: &str) -> u32 {
    text.lines()
        .find_map(|l| l.strip_prefix("job="))
        .and_then(|j| j.trim().parse().ok())
        .unwrap_or_else(|| panic!("no job= line in {text}"))
}

/// Runs `srun ARGS bash -c SHOW` and returns the job id and what each task saw.
fn srun_show(c: &Cluster, args: &[&str]) -> (u32, BTreeMap<u32, BTreeMap<String, String>>) {
    let script = format!("[ $SLURM_PROCID = 0 ] && echo job=$SLURM_JOB_ID; {SHOW}");
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["bash", "-c", &script]);
    let text = stdout(&ok(c.run("srun", &full).unwrap()));
    (job_of(&text), tasks(&text))
}

#[test]
fn every_task_sees_its_ranks_and_one_rendezvous() {
    let fx = Fixture::new(false, false);
    let c = mlenv_cluster(fx.args(), true);
    let (job, got) = srun_show(&c, &["-N3", "-n6"]);
    // Block distribution: tasks 0-3 on n1, 4 on n2, 5 on n3.
    let placement = [
        (0, 0, 4, 0),
        (1, 1, 4, 0),
        (2, 2, 4, 0),
        (3, 3, 4, 0),
        (4, 0, 1, 1),
        (5, 0, 1, 2),
    ];
    assert_eq!(got.len(), 6, "{got:?}");
    for (rank, local, local_world, node) in placement {
        let mut want = vars(&[
            ("MASTER_ADDR", "n1".into()),
            ("MASTER_PORT", port(job, Some(0))),
            ("RANK", rank.to_string()),
            ("LOCAL_RANK", local.to_string()),
            ("WORLD_SIZE", "6".into()),
            ("LOCAL_WORLD_SIZE", local_world.to_string()),
            ("NODE_RANK", node.to_string()),
        ]);
        if local_world == 1 {
            // Alone on its node: torchrun's variables too (no GPUs asked: no NPROC).
            want.extend(vars(&[
                ("PET_NNODES", "3".into()),
                ("PET_NODE_RANK", node.to_string()),
                ("PET_MASTER_ADDR", "n1".into()),
                ("PET_MASTER_PORT", port(job, Some(0))),
                ("PET_RDZV_ID", format!("{job}.0")),
            ]));
        }
        assert_eq!(got[&rank], want, "task {rank}");
    }

    // One launcher per node with GPUs: torchrun gets the node count, rank and GPU count.
    let (job, got) = srun_show(&c, &["-N3", "--ntasks-per-node=1", "--gpus-per-node=2"]);
    for node in 0..3u32 {
        let want = vars(&[
            ("MASTER_ADDR", "n1".into()),
            ("MASTER_PORT", port(job, Some(0))),
            ("RANK", node.to_string()),
            ("LOCAL_RANK", "0".into()),
            ("WORLD_SIZE", "3".into()),
            ("LOCAL_WORLD_SIZE", "1".into()),
            ("NODE_RANK", node.to_string()),
            ("PET_NNODES", "3".into()),
            ("PET_NODE_RANK", node.to_string()),
            ("PET_NPROC_PER_NODE", "2".into()),
            ("PET_MASTER_ADDR", "n1".into()),
            ("PET_MASTER_PORT", port(job, Some(0))),
            ("PET_RDZV_ID", format!("{job}.0")),
        ]);
        assert_eq!(got[&node], want, "node {node}");
    }
}

/// A step over both components of a heterogeneous job is one world: global ranks, one
/// rendezvous on the first component's first node, the same port everywhere.
#[test]
fn heterogeneous_steps_are_one_world() {
    let fx = Fixture::new(false, false);
    // Het jobs are started by the backfill scheduler only (not at submission): run it
    // every second instead of every 30.
    let c = mlenv_cluster_with(
        fx.args(),
        true,
        vec!["SchedulerParameters=bf_interval=1".into()],
    );
    let script = format!("[ $SLURM_PROCID = 0 ] && echo job=$SLURM_JOB_ID; {SHOW}");
    let out = ok(c
        .run(
            "salloc",
            [
                "-w",
                "n3",
                "-n1",
                ":",
                "-w",
                "n[1-2]",
                "-n4",
                "srun",
                "--het-group=0,1",
                "bash",
                "-c",
                &script,
            ],
        )
        .unwrap());
    let text = stdout(&out);
    let job = job_of(&text);
    let got = tasks(&text);
    assert_eq!(got.len(), 5, "{text}");
    for (rank, v) in &got {
        assert_eq!(v["RANK"], rank.to_string(), "{v:?}");
        assert_eq!(v["WORLD_SIZE"], "5", "{v:?}");
        assert_eq!(v["MASTER_ADDR"], "n3", "{v:?}");
        assert_eq!(v["MASTER_PORT"], port(job, Some(0)), "{v:?}");
    }
}

/// Issue 12: in a het allocation every step inherits the allocation's `*_HET_GROUP_N`
/// variables. A step of group 1 alone must not rendezvous on group 0's node (outside the
/// step: it hangs); a step of both, however `--het-group` orders them, has rank 0 on group
/// 0's first node.
#[test]
fn het_steps_rendezvous_in_the_steps_first_component() {
    let fx = Fixture::new(false, false);
    let c = mlenv_cluster_with(
        fx.args(),
        true,
        vec!["SchedulerParameters=bf_interval=1".into()],
    );
    let show = c.work_dir().join("het-show.sh");
    std::fs::write(&show, format!("printf 'group=%s ' \"$G\"; {SHOW}\n")).unwrap();
    let script = format!(
        "echo job=$SLURM_JOB_ID; for G in 1 1,0 0,1; do export G; srun --het-group=$G bash {}; done",
        show.display()
    );
    let out = ok(c
        .run(
            "salloc",
            [
                "-w", "n3", "-n1", ":", "-w", "n[1-2]", "-n4", "bash", "-c", &script,
            ],
        )
        .unwrap());
    let text = stdout(&out);
    let job = job_of(&text);
    for (step, group, world, master) in
        [(0, "1", 4, "n1"), (1, "1,0", 5, "n3"), (2, "0,1", 5, "n3")]
    {
        let prefix = format!("group={group} ");
        let lines: String = text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|l| format!("{l}\n"))
            .collect();
        let got = tasks(&lines);
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            (0..world).collect::<Vec<_>>(),
            "{text}"
        );
        for (rank, v) in &got {
            assert_eq!(v["RANK"], rank.to_string(), "--het-group={group}: {v:?}");
            assert_eq!(
                v["WORLD_SIZE"],
                world.to_string(),
                "--het-group={group}: {v:?}"
            );
            assert_eq!(v["MASTER_ADDR"], master, "--het-group={group}: {v:?}");
            assert_eq!(
                v["MASTER_PORT"],
                port(job, Some(step)),
                "--het-group={group}: {v:?}"
            );
        }
    }
}

#[test]
fn batch_step_and_its_steps_agree_concurrent_steps_differ_and_user_exports_win() {
    let fx = Fixture::new(false, false);
    let c = mlenv_cluster(fx.args(), true);
    let user = ensure_user("mltest-a").unwrap();
    let script = c.work_dir().join("mlenv-batch.sh");
    std::fs::write(
        &script,
        r#"#!/bin/bash
echo job=$SLURM_JOB_ID
echo "batch MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT RANK=${RANK-unset}"
# Two steps at once: each must get its own port.
srun --overlap -N2 -n2 bash -c 'echo "step=$SLURM_STEP_ID rank=$RANK MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT"' &
srun --overlap -N2 -n2 bash -c 'echo "step=$SLURM_STEP_ID rank=$RANK MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT"' &
wait
# Steps 2-7 one after the other: step 7 is where the block of 8 ports wraps.
for i in 2 3 4 5 6 7; do
    srun -N2 -n2 bash -c 'echo "step=$SLURM_STEP_ID rank=$RANK MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT"'
done
export MASTER_PORT=4444
srun -N1 bash -c 'echo "exported MASTER_PORT=$MASTER_PORT"'
"#,
    )
    .unwrap();
    let (job, text) = run_batch(
        &c,
        &user,
        "mlenv-batch.out",
        &["-N2", script.to_str().unwrap()],
    );
    assert!(
        text.contains(&format!(
            "batch MASTER_ADDR=n1 MASTER_PORT={} RANK=unset\n",
            port(job, None)
        )),
        "{text}"
    );
    let mut step_ports = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("step=")) {
        let w: Vec<&str> = line.split(' ').collect();
        let step: u32 = w[0]["step=".len()..].parse().unwrap();
        assert_eq!(w[2], "MASTER_ADDR=n1", "{text}");
        assert_eq!(
            w[3],
            format!("MASTER_PORT={}", port(job, Some(step))),
            "{text}"
        );
        step_ports.insert(step, w[3].to_string());
    }
    assert_eq!(
        step_ports.keys().copied().collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>(),
        "{text}"
    );
    // Steps 0 and 1 ran at once: different ports. Step 7 (issue 12) had the batch step's.
    assert_ne!(step_ports[&0], step_ports[&1]);
    let batch_port = format!("MASTER_PORT={}", port(job, None));
    assert!(
        step_ports.values().all(|p| *p != batch_port),
        "{step_ports:?}"
    );
    // The user's own export in the script wins over the plugin in the next step.
    assert!(text.contains("exported MASTER_PORT=4444\n"), "{text}");

    // `sbatch --mlenv=off` reaches the steps the script starts.
    let (_, text) = run_batch(
        &c,
        &user,
        "mlenv-off.out",
        &[
            "--mlenv=off",
            "--wrap",
            "echo batch=${MASTER_ADDR-unset}; srun bash -c 'echo step=${MASTER_ADDR-unset} ${RANK-unset}'",
        ],
    );
    assert_eq!(text, "batch=unset\nstep=unset unset\n");
}

#[test]
fn options_precedence_and_refusals() {
    let fx = Fixture::new(false, false);
    let c = mlenv_cluster(fx.args(), true);
    // A user's export wins; the command line wins over the export.
    let out = ok(c
        .command("srun")
        .env("MASTER_PORT", "12345")
        .args(["-n2", "bash", "-c", SHOW])
        .output()
        .unwrap());
    for (_, v) in tasks(&stdout(&out)) {
        assert_eq!(v["MASTER_PORT"], "12345");
    }
    let out = ok(c
        .command("srun")
        .env("MASTER_PORT", "12345")
        .env("NCCL_DEBUG", "WARN")
        .args([
            "--master-port=31000",
            "--nccl-debug=info",
            "bash",
            "-c",
            SHOW,
        ])
        .output()
        .unwrap());
    let t = &tasks(&stdout(&out))[&0];
    assert_eq!(
        (t["MASTER_PORT"].as_str(), t["NCCL_DEBUG"].as_str()),
        ("31000", "INFO")
    );
    // The same through SLURM_MLENV_* variables.
    let out = ok(c
        .command("srun")
        .env("SLURM_MLENV_NCCL_DEBUG", "trace")
        .args(["bash", "-c", SHOW])
        .output()
        .unwrap());
    assert_eq!(tasks(&stdout(&out))[&0]["NCCL_DEBUG"], "TRACE");
    // off: nothing at all; fabric-only: no rendezvous, no ranks.
    let out = ok(c
        .run(
            "srun",
            [
                "-N2",
                "-n2",
                "--mlenv=off",
                "bash",
                "-c",
                &format!("{SHOW}; env | grep -q '^MLENV_APPLIED=' && echo applied; true"),
            ],
        )
        .unwrap());
    let got = tasks(&stdout(&out));
    assert_eq!(got.len(), 2);
    assert!(got.values().all(|v| v.is_empty()), "{got:?}");
    assert!(!stdout(&out).contains("applied"), "{}", stdout(&out));
    let out = ok(c
        .command("srun")
        .env("SLURM_MLENV", "fabric-only")
        .args(["-N2", "-n2", "--nccl-debug=warn", "bash", "-c", SHOW])
        .output()
        .unwrap());
    for (_, v) in tasks(&stdout(&out)) {
        assert_eq!(v, vars(&[("NCCL_DEBUG", "WARN".into())]));
    }
    // Bad values are refused before anything is allocated, with one line that says why.
    let refused = |program: &str, env: Option<(&str, &str)>, args: &[&str], line: &str| {
        let mut cmd = c.command(program);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.args(args).output().unwrap();
        assert!(!out.status.success(), "{program} {args:?} ran");
        assert!(
            stderr(&out).contains(line),
            "{program} {args:?}: {}",
            stderr(&out)
        );
    };
    refused(
        "srun",
        None,
        &["--mlenv=bogus", "true"],
        "srun: error: mlenv: --mlenv: \"bogus\" is not on, off or fabric-only\n",
    );
    refused("sbatch", None, &["--nccl-debug=loud", "--wrap", "true"], "sbatch: error: mlenv: --nccl-debug: \"loud\" is not an NCCL_DEBUG level (VERSION, WARN, INFO, TRACE)\n");
    refused(
        "salloc",
        None,
        &["--master-port=80", "true"],
        "salloc: error: mlenv: --master-port: \"80\" is not a port in 1024-65535\n",
    );
    refused("srun", None, &["--mlenv-profile=fast", "true"], "srun: error: mlenv: --mlenv-profile: no profile \"fast\" on this cluster (profiles: efa, efa-legacy, efa-nohugepage, infiniband, none)\n");
    refused(
        "srun",
        Some(("SLURM_MLENV", "maybe")),
        &["true"],
        "srun: error: mlenv: $SLURM_MLENV: \"maybe\" is not on, off or fabric-only\n",
    );
    refused("sbatch", Some(("SLURM_MLENV_PROFILE", "fast")), &["--wrap", "true"], "sbatch: error: mlenv: --mlenv-profile or $SLURM_MLENV_PROFILE: no profile \"fast\" on this cluster");
    // A repeated option must repeat its value (issue 12: the last one silently won).
    refused(
        "srun",
        None,
        &["--master-port=31000", "--master-port=32000", "true"],
        "srun: error: mlenv: --master-port: specified multiple times (\"31000\", then \"32000\")\n",
    );
    let out = ok(c
        .run(
            "srun",
            [
                "--master-port=31000",
                "--master-port=31000",
                "bash",
                "-c",
                SHOW,
            ],
        )
        .unwrap());
    assert_eq!(tasks(&stdout(&out))[&0]["MASTER_PORT"], "31000");
    // All four options are in --help.
    let help = stdout(&c.run("srun", ["--help"]).unwrap());
    for o in [
        "--mlenv=on|off|fabric-only",
        "--mlenv-profile=NAME",
        "--nccl-debug=LEVEL",
        "--master-port=N",
    ] {
        assert!(help.contains(o), "{o} missing from srun --help");
    }
}

#[test]
fn efa_nodes_get_the_efa_profile_and_one_warning_when_aws_ofi_nccl_is_missing() {
    let fx = Fixture::new(true, false);
    let c = mlenv_cluster(fx.args(), true);
    let out = ok(c.run("srun", ["-N3", "-n6", "bash", "-c", SHOW]).unwrap());
    for (_, v) in tasks(&stdout(&out)) {
        assert_eq!(v["LD_LIBRARY_PATH"], fx.efa_lib().display().to_string());
        // aws-ofi-nccl 1.7+ tunes these itself: the default EFA profile sets none.
        assert!(
            !v.contains_key("FI_PROVIDER") && !v.contains_key("NCCL_PROTO"),
            "{v:?}"
        );
    }
    let warnings = stderr(&out)
        .lines()
        .filter(|l| {
            l.starts_with("mlenv: warning: this node has an EFA device but no aws-ofi-nccl library")
        })
        .count();
    assert_eq!(warnings, 1, "{}", stderr(&out));
    // With the library there: its directory first, no warning; a user's path is kept.
    fx.install_ofi();
    let out = ok(c
        .command("srun")
        .env("LD_LIBRARY_PATH", "/home/u/lib")
        .args(["-N2", "-n2", "bash", "-c", SHOW])
        .output()
        .unwrap());
    assert!(!stderr(&out).contains("mlenv: warning"), "{}", stderr(&out));
    for (_, v) in tasks(&stdout(&out)) {
        assert_eq!(
            v["LD_LIBRARY_PATH"],
            format!(
                "{}:{}:/home/u/lib",
                fx.ofi_dir().display(),
                fx.efa_lib().display()
            )
        );
    }
    // Issue 12: the user's path as bytes, not UTF-8, with empty entries (the current
    // directory, to ld.so): kept byte for byte behind the profile's directories.
    let user: &[u8] = b"/home/u/\xfflib::/x:";
    let out = ok(c
        .command("srun")
        .env("LD_LIBRARY_PATH", std::ffi::OsStr::from_bytes(user))
        .args([
            "-N2",
            "-n2",
            "bash",
            "-c",
            "printf 'ld=%s\\n' \"$LD_LIBRARY_PATH\"",
        ])
        .output()
        .unwrap());
    let mut want =
        format!("ld={}:{}:", fx.ofi_dir().display(), fx.efa_lib().display()).into_bytes();
    want.extend_from_slice(user);
    let lines: Vec<&[u8]> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        vec![&want[..], &want[..]],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // fabric-only: the profile without rendezvous or ranks.
    let out = ok(c
        .run(
            "srun",
            ["-N2", "-n2", "--mlenv=fabric-only", "bash", "-c", SHOW],
        )
        .unwrap());
    for (_, v) in tasks(&stdout(&out)) {
        assert_eq!(v.keys().collect::<Vec<_>>(), ["LD_LIBRARY_PATH"], "{v:?}");
    }
    // The legacy profile for aws-ofi-nccl 1.6 and older, on request.
    let out = ok(c
        .run("srun", ["--mlenv-profile=efa-legacy", "bash", "-c", SHOW])
        .unwrap());
    let t = &tasks(&stdout(&out))[&0];
    assert_eq!(t["FI_PROVIDER"], "efa");
    assert_eq!(t["FI_EFA_USE_DEVICE_RDMA"], "1");
    assert_eq!(t["NCCL_PROTO"], "simple");
}

#[test]
fn optional_survives_a_broken_config_and_required_stops_with_the_reason() {
    let bad = vec!["colour=blue".to_string()];
    let reason = "mlenv: plugstack.conf: unknown key \"colour\" (keys: default, addr, ports, sysfs, lib_root, force, profiles)";
    let c = mlenv_cluster(bad.clone(), false);
    let out = ok(c
        .run("srun", ["-N2", "bash", "-c", "echo ${MASTER_ADDR-unset}"])
        .unwrap());
    assert_eq!(stdout(&out), "unset\nunset\n");
    assert!(stderr(&out).contains(reason), "{}", stderr(&out));
    // Options of an inert optional plugin are accepted, not fatal.
    ok(c.run("srun", ["--mlenv=off", "true"]).unwrap());
    drop(c);
    let c = mlenv_cluster(bad, true);
    let out = c.run("srun", ["true"]).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("srun: error: {reason}")),
        "{}",
        stderr(&out)
    );
    for (node, state) in c.node_states().unwrap() {
        assert_eq!(state, "idle", "node {node}");
    }
}

/// The real consumer: torch.distributed's `env://` rendezvous with nothing but the backend
/// named, 6 ranks on 3 nodes; then torchrun, one per node, with no rendezvous arguments.
/// Node names of the local cluster do not resolve, so the plugin gives NodeAddr (addr=nodeaddr),
/// as on clusters whose node names are not in DNS.
#[test]
fn pytorch_rendezvous_works_with_no_arguments() {
    let python = torch_python();
    let c = mlenv_cluster(vec!["addr=nodeaddr".to_string()], true);
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mlenv/allreduce.py");
    // All nodes share the loopback interface: tell gloo, as a user on such nodes would.
    let out = ok(c
        .command("srun")
        .env("GLOO_SOCKET_IFNAME", "lo")
        .args(["-N3", "-n6", "--time=5"])
        .arg(&python)
        .arg(&program)
        .output()
        .unwrap());
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    let want: Vec<String> = [(0, 0), (1, 1), (2, 2), (3, 3), (4, 0), (5, 0)]
        .iter()
        .map(|(r, l)| format!("rank={r} world=6 local_rank={l} sum=21"))
        .collect();
    assert_eq!(lines, want, "{}", stderr(&out));

    let torchrun = python.with_file_name("torchrun");
    let out = ok(c
        .command("srun")
        .env("GLOO_SOCKET_IFNAME", "lo")
        .args(["-N3", "--ntasks-per-node=1", "--time=5"])
        .arg(&torchrun)
        .arg("--nproc-per-node=2")
        .arg(&program)
        .output()
        .unwrap());
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    let want: Vec<String> = (0..6)
        .map(|r| format!("rank={r} world=6 local_rank={} sum=21", r % 2))
        .collect();
    assert_eq!(lines, want, "{}", stderr(&out));
}

/// The venv of scripts/torch-venv.sh (made on first use, then reused).
fn torch_python() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/torch-venv.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        stderr(&out)
    );
    PathBuf::from(stdout(&out).trim())
}
