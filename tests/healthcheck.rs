//! `ml-healthcheck` against the local cluster's real slurmctld and slurmd, with the GPUs
//! replaced by snapshot files (the NVML path needs a GPU; see the README): what the admin
//! sees in `sinfo`, the run's lines, the textfile, and the three slurmd slots.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use local_cluster::{cargo_artifact, Cluster, Options, CLUSTER_DIR_PLACEHOLDER};
use serde_json::{json, Value};

const HEALTHY: &str = include_str!("../helpers/ml-healthcheck/tests/fixtures/h100x8-healthy.json");
const KMSG_XID79: &str = include_str!("../helpers/ml-healthcheck/tests/fixtures/kmsg-xid79");

fn bin() -> PathBuf {
    cargo_artifact("ml-healthcheck").unwrap_or_else(|e| panic!("{e}"))
}

/// The config next to slurm.conf: state, kernel log and killswitch inside the cluster
/// directory. These tests drain two of the three nodes, which the circuit breaker's
/// default (10% of the cluster, at least one node) would hold: it has its own test.
fn config_file() -> (String, String) {
    (
        "ml-healthcheck.json".into(),
        config_text(CLUSTER_DIR_PLACEHOLDER, "\"breaker_max_percent\": 100"),
    )
}

/// The tests' config in cluster directory `dir`, with `extra` keys.
fn config_text(dir: &str, extra: &str) -> String {
    format!(
        "{{\"expect_gpus\": 8, \"state_dir\": \"{dir}/mlhealth-state\", \"history_dir\": \"{dir}/mlhealth-history\", \"kmsg\": \"{dir}/kmsg\", \"killswitch\": \"{dir}/mlhealth.disable\", {extra}}}\n"
    )
}

/// A config file for `--config`, in the cluster directory.
fn config_at(c: &Cluster, name: &str, extra: &str) -> PathBuf {
    let p = c.dir().join(name);
    fs::write(&p, config_text(c.dir().to_str().unwrap(), extra)).unwrap();
    p
}

fn healthy() -> Value {
    serde_json::from_str(HEALTHY).unwrap()
}

/// The healthy snapshot with one change.
fn snapshot(change: impl FnOnce(&mut Value)) -> Value {
    let mut v = healthy();
    change(&mut v);
    v
}

fn write(path: &Path, v: &Value) {
    fs::write(path, v.to_string()).unwrap();
}

/// A cluster of the default options, its kernel log empty.
fn start_without_kmsg() -> Cluster {
    let c = start(Options::default());
    fs::write(c.dir().join("kmsg"), "").unwrap();
    c
}

/// `dir/good.json`, the healthy snapshot, and `dir/bad.json`, it with one change.
fn good_and_bad(dir: &Path, change: impl FnOnce(&mut Value)) -> (PathBuf, PathBuf) {
    let (good, bad) = (dir.join("good.json"), dir.join("bad.json"));
    write(&good, &healthy());
    write(&bad, &snapshot(change));
    (good, bad)
}

/// `scontrol show node NODE -o`: the node on one line.
fn show_node(c: &Cluster, node: &str) -> String {
    stdout(&ok(c
        .run("scontrol", ["show", "node", node, "-o"])
        .unwrap()))
}

/// Waits for a node's state; the failure shows sinfo and the node's and slurmctld's logs.
fn wait_for_node(c: &Cluster, node: &str, what: &str, cond: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(60), cond, || {
        format!(
            "sinfo: {:?}; slurmd log:\n{}\nslurmctld log:\n{}",
            sinfo(c, node),
            c.log(&format!("slurmd-{node}")),
            c.log("slurmctld")
        )
    });
}

/// One run of the helper as root, as slurmd would start it for `node`.
fn check(c: &Cluster, node: &str, snap: &Path, extra: &[&str]) -> std::process::Output {
    let b = bin();
    let mut args = vec!["--node", node, "--snapshot", snap.to_str().unwrap()];
    args.extend_from_slice(extra);
    c.run(b.to_str().unwrap(), args).unwrap()
}

/// A one-GPU root job pinned to n1 (its prolog and epilog run there); its id.
fn gpu_job_on_n1(c: &Cluster) -> u32 {
    c.sbatch(
        None,
        &[
            "-w",
            "n1",
            "--gpus-per-node=1",
            "-o",
            "/dev/null",
            "--wrap",
            "true",
        ],
    )
    .unwrap()
}

#[test]
fn drains_with_its_prefix_keeps_an_admins_drain_and_resumes_its_own() {
    let c = start(Options {
        extra_files: vec![config_file()],
        ..Options::default()
    });
    fs::write(c.dir().join("kmsg"), "").unwrap();
    let d = tempfile::tempdir().unwrap();
    let (good, bad) = good_and_bad(d.path(), |v| {
        v["gpus"][1]["ecc_volatile_uncorrected"] = json!(2)
    });

    // A bad GPU drains the node, with a reason that says which GPU and why.
    let out = ok(check(&c, "n2", &bad, &[]));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n2: DRAIN gpu1 (GPU-5c1e0f2a-8d3b-4f6e-9a7c-000000000001, 00000000:2A:00.0): 2 uncorrectable ECC errors since the last driver load\n\
         ml-healthcheck: n2: 8 GPUs checked, 1 problem that drains the node; drained: mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]\n"
    );
    assert_eq!(
        sinfo(&c, "n2"),
        (
            "drained".into(),
            "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]".into()
        )
    );
    // Still bad: nothing changes; worse: the reason follows.
    ok(check(&c, "n2", &bad, &[]));
    let worse = d.path().join("worse.json");
    write(
        &worse,
        &snapshot(|v| {
            v["gpus"][1]["ecc_volatile_uncorrected"] = json!(2);
            v["gpus"][6]["remapped_rows_pending"] = json!(true);
        }),
    );
    ok(check(&c, "n2", &worse, &[]));
    assert_eq!(
        sinfo(&c, "n2").1,
        "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu], gpu6 row remap pending [reset-gpu]"
    );

    // An admin's drain is never overwritten, nor lifted.
    ok(c.run(
        "scontrol",
        [
            "update",
            "NodeName=n3",
            "State=DRAIN",
            "Reason=admin: bad fan",
        ],
    )
    .unwrap());
    let out = ok(check(&c, "n3", &bad, &[]));
    assert!(
        stdout(&out).ends_with("; left as it is: drained by someone else (admin: bad fan)\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(sinfo(&c, "n3"), ("drained".into(), "admin: bad fan".into()));
    ok(check(&c, "n3", &good, &[]));
    assert_eq!(sinfo(&c, "n3"), ("drained".into(), "admin: bad fan".into()));

    // Healthy again: its own drain is lifted.
    let out = ok(check(&c, "n2", &good, &[]));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n2: 8 GPUs checked, healthy; resumed (was drained: mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu], gpu6 row remap pending [reset-gpu])\n"
    );
    // 22.05 and 26.05 clear the reason on resume; 24.11 keeps the old text on the idle
    // node (seen by `scontrol show node`, not by `sinfo -R`). 25.x is untested.
    let after_resume = if cfg!(slurm_ge_24_11) && !cfg!(slurm_ge_26_05) {
        "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu], gpu6 row remap pending [reset-gpu]"
    } else {
        "none"
    };
    assert_eq!(sinfo(&c, "n2"), ("idle".into(), after_resume.into()));

    // --dry-run acts on nothing; --json says what it would do.
    let out = ok(check(&c, "n1", &bad, &["--dry-run", "--json"]));
    let j: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(j["action"], "drain");
    assert_eq!(
        j["reason"],
        "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]"
    );
    assert_eq!(j["findings"][0]["check"], "ecc");
    assert_eq!(j["findings"][0]["gpu"], 1);
    assert_eq!(sinfo(&c, "n1").0, "idle");

    // Fewer GPUs than the config expects, and --expect-gpus.
    let seven = d.path().join("seven.json");
    write(
        &seven,
        &snapshot(|v| {
            v["gpus"].as_array_mut().unwrap().pop();
        }),
    );
    let out = ok(check(&c, "n1", &seven, &["--dry-run"]));
    assert!(
        stdout(&out).contains("ml-healthcheck: n1: DRAIN NVML sees 7 GPUs, 8 expected\n"),
        "{}",
        stdout(&out)
    );
    let out = ok(check(
        &c,
        "n1",
        &seven,
        &["--dry-run", "--expect-gpus", "7"],
    ));
    assert!(
        stdout(&out).ends_with("7 GPUs checked, healthy\n"),
        "{}",
        stdout(&out)
    );

    // The textfile for node_exporter.
    let prom = d.path().join("prom");
    fs::create_dir(&prom).unwrap();
    ok(check(
        &c,
        "n1",
        &bad,
        &["--dry-run", "--textfile", prom.to_str().unwrap()],
    ));
    let text = fs::read_to_string(prom.join("ml_healthcheck_n1.prom")).unwrap();
    assert!(
        text.contains("ml_healthcheck_findings{node=\"n1\",severity=\"drain\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("ml_healthcheck_finding{node=\"n1\",check=\"ecc\",gpu=\"1\",severity=\"drain\",reason=\"gpu1 ecc uncorrectable=2 [reset-gpu]\"} 1\n"), "{text}");
    assert!(
        text.contains("ml_healthcheck_gpus{node=\"n1\"} 8\n"),
        "{text}"
    );
}

#[test]
fn a_critical_xid_keeps_the_node_drained_until_it_reboots() {
    let c = start(Options {
        extra_files: vec![config_file()],
        ..Options::default()
    });
    let kmsg = c.dir().join("kmsg");
    fs::write(&kmsg, "6,1,100,-;Linux version 6.1.0-28-amd64\n").unwrap();
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.json");
    write(&good, &healthy());
    ok(check(&c, "n2", &good, &[]));
    assert_eq!(sinfo(&c, "n2").0, "idle");

    // XID 79 in the kernel log for the GPU at 0000:3a:00.
    let mut log = fs::read_to_string(&kmsg).unwrap();
    log.push_str(KMSG_XID79);
    fs::write(&kmsg, &log).unwrap();
    let out = ok(check(&c, "n2", &good, &[]));
    assert!(
        stdout(&out).contains("ml-healthcheck: n2: DRAIN gpu2 (GPU-5c1e0f2a-8d3b-4f6e-9a7c-000000000002, 00000000:3A:00.0): XID 79 in the kernel log (5824 s after boot): GPU has fallen off the bus.\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        sinfo(&c, "n2"),
        ("drained".into(), "mlhealth: gpu2 xid79 [reboot]".into())
    );
    // The next run finds nothing new in the log, and the node stays drained: the GPU
    // needs a reset or a reboot.
    ok(check(&c, "n2", &good, &[]));
    assert_eq!(
        sinfo(&c, "n2"),
        ("drained".into(), "mlhealth: gpu2 xid79 [reboot]".into())
    );
    // An admin who reset the GPU without a reboot says so; the next run resumes the node.
    ok(check(&c, "n2", &good, &["--forget-xids"]));
    assert_eq!(sinfo(&c, "n2").0, "idle");
    // A new XID 79 in the log drains it again.
    log.push_str(&KMSG_XID79.replace("4,1931,", "4,1990,"));
    fs::write(&kmsg, &log).unwrap();
    ok(check(&c, "n2", &good, &[]));
    assert_eq!(
        sinfo(&c, "n2"),
        ("drained".into(), "mlhealth: gpu2 xid79 [reboot]".into())
    );

    // After a reboot (another boot id, a new kernel log) the node is resumed.
    let state = c.dir().join("mlhealth-state/n2.json");
    let mut s: Value = serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(s["critical"][0]["code"], 79);
    s["boot_id"] = json!("an-earlier-boot");
    fs::write(&state, s.to_string()).unwrap();
    fs::write(&kmsg, "6,1,100,-;Linux version 6.1.0-28-amd64\n").unwrap();
    ok(check(&c, "n2", &good, &[]));
    assert_eq!(sinfo(&c, "n2").0, "idle");
}

/// Runs the helper as root for `node` and waits for it at most 30 s (a hang fails the
/// test; no bound on how long the run took is asserted).
fn check_waiting(c: &Cluster, node: &str, snap: &Path, extra: &[&str]) -> std::process::Output {
    let b = bin();
    let mut args = vec!["--node", node, "--snapshot", snap.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut child = c
        .command(b.to_str().unwrap())
        .args(args)
        .env("SLURM_JOB_GPUS", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        if waited >= Duration::from_secs(30) {
            let _ = child.kill();
            panic!("ml-healthcheck on {node} did not end within 30 s of its 1 s deadline");
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    child.wait_with_output().unwrap()
}

/// Error is not failure: a GPU source that never answers (a snapshot path that is a FIFO
/// nobody writes, as a stuck NVML call) and a sysfs read that never returns (a FIFO as an
/// InfiniBand device's `device/vendor`) end the run at the deadline with their checks
/// UNKNOWN. The prolog passes (the job starts), nothing is drained, and a drain of ours
/// is not lifted by a run that could not check.
#[test]
fn a_stuck_gpu_source_is_unknown_at_the_deadline_and_neither_drains_nor_resumes() {
    let c = start_without_kmsg();
    let d = tempfile::tempdir().unwrap();
    let stuck = d.path().join("stuck.json");
    let sysfs = c.dir().join("sysfs");
    let vendor = sysfs.join("class/infiniband/mlx5_0/device/vendor");
    fs::create_dir_all(vendor.parent().unwrap()).unwrap();
    for fifo in [&stuck, &vendor] {
        ok(std::process::Command::new("mkfifo")
            .arg(fifo)
            .output()
            .unwrap());
    }
    let conf = config_at(
        &c,
        "deadline.json",
        &format!(
            "\"breaker_max_percent\": 100, \"deadline_ms\": 1000, \"job_deadline_ms\": 1000, \"sysfs_root\": \"{}\"",
            sysfs.display()
        ),
    );
    let conf = conf.to_str().unwrap();
    let bad = d.path().join("bad.json");
    write(
        &bad,
        &snapshot(|v| v["gpus"][1]["ecc_volatile_uncorrected"] = json!(2)),
    );

    // The prolog: ends at its deadline, exit 0, the node untouched.
    let out = check_waiting(&c, "n1", &stuck, &["--config", conf, "--mode", "prolog"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n1: UNKNOWN nvml: not checked: the GPU source (NVML) gave no answer within 1000 ms (job_deadline_ms)\n\
         ml-healthcheck: n1: UNKNOWN pcie-aer: not checked: sysfs gave no answer within 1000 ms (job_deadline_ms)\n\
         ml-healthcheck: n1: UNKNOWN ib-port: not checked: sysfs gave no answer within 1000 ms (job_deadline_ms)\n\
         ml-healthcheck: n1: 0 GPUs checked, nothing failed, 3 checks could not run (unknown)\n"
    );
    assert_eq!(sinfo(&c, "n1"), ("idle".into(), "none".into()));

    // Our drain stays through a health check that could not check; the textfile and the
    // JSON say which check is unknown.
    ok(check(&c, "n1", &bad, &["--config", conf]));
    let reason = "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]";
    assert_eq!(sinfo(&c, "n1"), ("drained".into(), reason.into()));
    let prom = d.path().join("prom");
    fs::create_dir(&prom).unwrap();
    let out = check_waiting(
        &c,
        "n1",
        &stuck,
        &["--config", conf, "--textfile", prom.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with(&format!(
            "0 GPUs checked, nothing failed, 3 checks could not run (unknown); still drained: {reason} (not every check it names was made again)\n"
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(sinfo(&c, "n1"), ("drained".into(), reason.into()));
    let text = fs::read_to_string(prom.join("ml_healthcheck_n1.prom")).unwrap();
    for line in [
        "ml_healthcheck_check_status{node=\"n1\",check=\"nvml\",status=\"unknown\"} 1\n",
        "ml_healthcheck_check_status{node=\"n1\",check=\"nvml\",status=\"ok\"} 0\n",
        "ml_healthcheck_check_status{node=\"n1\",check=\"xid\",status=\"ok\"} 1\n",
        "ml_healthcheck_findings{node=\"n1\",severity=\"unknown\"} 3\n",
        "ml_healthcheck_check_status{node=\"n1\",check=\"ib-port\",status=\"unknown\"} 1\n",
        "ml_healthcheck_drained_by_healthcheck{node=\"n1\"} 1\n",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    let out = check_waiting(&c, "n1", &stuck, &["--config", conf, "--json", "--dry-run"]);
    let j: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        j["findings"][0],
        json!({
            "severity": "unknown",
            "check": "nvml",
            "gpu": null,
            "action": "monitor",
            "reason": "nvml unknown",
            "detail": "nvml: not checked: the GPU source (NVML) gave no answer within 1000 ms (deadline_ms)",
            "evidence": "the GPU source (NVML) gave no answer within 1000 ms (deadline_ms)"
        })
    );
    assert_eq!(j["checks"]["nvml"], "unknown");
    assert_eq!(j["checks"]["pcie-aer"], "unknown");
    assert_eq!(j["action"], "none");
}

/// `fail_after`: a noisy check drains only on its Nth failing run in a row; below that it
/// is a warning, and a passing run starts the count again.
#[test]
fn fail_after_drains_only_on_the_nth_failing_run_in_a_row() {
    let c = start_without_kmsg();
    let conf = config_at(
        &c,
        "fail-after.json",
        "\"breaker_max_percent\": 100, \"fail_after\": {\"nvlink\": 2}",
    );
    let conf = conf.to_str().unwrap();
    let d = tempfile::tempdir().unwrap();
    let (good, down) = good_and_bad(d.path(), |v| {
        v["gpus"][7]["nvlinks"][4]["active"] = json!(false)
    });
    let warn = "ml-healthcheck: n3: WARN gpu7 (GPU-5c1e0f2a-8d3b-4f6e-9a7c-000000000007, 00000000:DB:00.0): NVLink 4 is inactive (failing run 1 of the 2 it takes to drain: fail_after)\n\
                ml-healthcheck: n3: 8 GPUs checked, healthy, 1 warnings\n";
    // One failing run: a warning, the node stays up.
    assert_eq!(
        stdout(&ok(check(&c, "n3", &down, &["--config", conf]))),
        warn
    );
    assert_eq!(sinfo(&c, "n3"), ("idle".into(), "none".into()));
    // Prologs (the jobs of a busy node) judge against the health checks' count and do
    // not move it: many short jobs must not reach N within seconds.
    for _ in 0..3 {
        let out = check(&c, "n3", &down, &["--config", conf, "--mode", "prolog"]);
        assert!(out.status.success(), "{}", stdout(&out));
        assert!(
            stdout(&out).contains(
                "NVLink 4 is inactive (1 failing health checks in a row of the 2 it takes to drain: fail_after)"
            ),
            "{}",
            stdout(&out)
        );
    }
    assert_eq!(sinfo(&c, "n3"), ("idle".into(), "none".into()));
    // A passing run starts the count again: the next failing run is the first again.
    ok(check(&c, "n3", &good, &["--config", conf]));
    assert_eq!(
        stdout(&ok(check(&c, "n3", &down, &["--config", conf]))),
        warn
    );
    assert_eq!(sinfo(&c, "n3"), ("idle".into(), "none".into()));
    // The second failing run in a row drains.
    ok(check(&c, "n3", &down, &["--config", conf]));
    assert_eq!(
        sinfo(&c, "n3"),
        (
            "drained".into(),
            "mlhealth: gpu7 nvlink4 down [reset-gpu]".into()
        )
    );
}

/// A RebootProgram for the local cluster: "reboots" the node whose slurmd runs it by
/// restarting that slurmd with `-b` ("Report node rebooted when daemon restarted. Used
/// for testing purposes.", slurmd.8 in 22.05 to 26.05), which is what slurmctld asks of a
/// rebooted node: a boot time after the reboot request (node_mgr.c
/// `waiting_for_node_boot`). The machine itself is not rebooted.
const REBOOT_PROGRAM: &str = r#"#!/bin/sh
# The daemon is the topmost slurmd above this script (26.05's slurmd runs it from a
# forked child that is also called slurmd).
pid=0
p=$$
while [ "$p" -gt 1 ]; do
    [ "$(cat /proc/$p/comm)" = slurmd ] && pid=$p
    p=$(awk '{print $4}' /proc/$p/stat)
done
[ "$pid" -gt 1 ] || { echo "no slurmd above $$" >&2; exit 1; }
set -- $(tr '\0' ' ' </proc/$pid/cmdline)
# argv[0] as it was (`slurmd`, not the `slurmd-wlm` it may link to): Slurm tells its
# daemons apart by their program name.
exe=$1
node=; conf=
while [ $# -gt 0 ]; do
    case "$1" in -N) node=$2; shift ;; -f) conf=$2; shift ;; esac
    shift
done
echo "$node" >>"$(dirname "$conf")/reboots"
# 26.05's slurmd kills the script's process group when it ends (run_command.c
# _kill_pg): the restarter leaves it (setsid) before the script exits.
detached=$(dirname "$conf")/reboot-detached-$node
rm -f "$detached"
setsid sh -c "echo \$\$ >$detached; sleep 1; kill $pid
    while [ -e /proc/$pid ] && [ \"\$(awk '{print \$3}' /proc/$pid/stat)\" != Z ]; do sleep 0.2; done
    exec $exe -b -N $node -f $conf" </dev/null >/dev/null 2>&1 &
while [ ! -s "$detached" ]; do sleep 0.1; done
exit 0
"#;

/// `actions.reboot = "reboot"`: a finding that needs a reboot (NVML's recovery action 2,
/// node reboot, which wins over the tables) drains the node with the action in the reason
/// and asks Slurm to reboot it (no `nextstate`, so the drain and our reason stay through
/// the reboot); the rebooted node comes back drained, and a check still failing after it
/// turns the reason to `[replace]` (one reboot per check and 24 h, kept across boots);
/// the next health check whose checks pass resumes it, and the same fault again within the
/// day drains for new hardware without a second reboot.
#[test]
fn the_reboot_action_reboots_the_node_and_a_clean_check_resumes_it() {
    let d = tempfile::tempdir().unwrap();
    let program = d.path().join("reboot-slurmd");
    fs::write(&program, REBOOT_PROGRAM).unwrap();
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let c = start(Options {
        extra_slurm_conf: vec![format!("RebootProgram={}", program.display())],
        ..Options::default()
    });
    fs::write(c.dir().join("kmsg"), "").unwrap();
    let conf = config_at(
        &c,
        "reboot.json",
        "\"breaker_max_percent\": 100, \"actions\": {\"reboot\": \"reboot\"}",
    );
    let conf = conf.to_str().unwrap();
    let (good, bad) = good_and_bad(d.path(), |v| v["gpus"][2]["gpu_recovery_action"] = json!(2));

    // Report mode holds the reboot with the drain: nothing is done in Slurm.
    let report = config_at(
        &c,
        "reboot-report.json",
        "\"mode\": \"report\", \"actions\": {\"reboot\": \"reboot\"}",
    );
    let out = ok(check(
        &c,
        "n2",
        &bad,
        &["--config", report.to_str().unwrap()],
    ));
    assert!(
        stdout(&out).ends_with("; would have drained (report only: mode = \"report\"): mlhealth: gpu2 recovery [reboot]\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(sinfo(&c, "n2"), ("idle".into(), "none".into()));
    assert!(!c.dir().join("reboots").exists());

    let out = ok(check(&c, "n2", &bad, &["--config", conf]));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n2: DRAIN gpu2 (GPU-5c1e0f2a-8d3b-4f6e-9a7c-000000000002, 00000000:3A:00.0): NVML's GPU recovery action is 2: the driver asks for a reboot\n\
         ml-healthcheck: n2: 8 GPUs checked, 1 problem that drains the node; drained: mlhealth: gpu2 recovery [reboot]; then scontrol reboot n2\n"
    );
    // slurmctld issues the reboot to the idle node (DOWN+DRAIN+REBOOT_ISSUED, its reason
    // gains " : reboot issued"), slurmd runs the RebootProgram, the new slurmd registers
    // as rebooted; without a nextstate the node stays drained for our reason.
    let reason = "mlhealth: gpu2 recovery [reboot] : reboot issued";
    wait_for_node(&c, "n2", "n2 back from its reboot, drained", || {
        fs::read_to_string(c.dir().join("reboots")).unwrap_or_default() == "n2\n"
            && sinfo(&c, "n2") == ("drained".into(), reason.into())
            && c.log("slurmctld").contains("node n2 returned to service")
    });
    // A check that asks for new hardware: the reboot it had is named, no second reboot.
    let drained_for_replace = |out: &std::process::Output| {
        let text = stdout(out);
        assert!(
            text.contains(": NVML's GPU recovery action is 2: the driver asks for a reboot; rebooted for recovery 1 time(s) within 24 h already (the last "),
            "{text}"
        );
        assert!(
            text.ends_with("; drained: mlhealth: gpu2 recovery [replace]\n"),
            "{text}"
        );
        assert_eq!(
            sinfo(&c, "n2"),
            ("drained".into(), "mlhealth: gpu2 recovery [replace]".into())
        );
    };
    // Still failing after the reboot: the reboot (remembered in history_dir) did not mend
    // it, so the reason now says new hardware, and no second reboot (a person looks at a
    // node a reboot did not mend).
    let out = ok(check(&c, "n2", &bad, &["--config", conf]));
    drained_for_replace(&out);
    // Clean: our drain is lifted.
    let out = ok(check(&c, "n2", &good, &["--config", conf]));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n2: 8 GPUs checked, healthy; resumed (was drained: mlhealth: gpu2 recovery [replace])\n"
    );
    assert_eq!(sinfo(&c, "n2").0, "idle");
    // The same fault again within reboot_window_hours (24): the reboot it had did not
    // mend it, so it now needs new hardware; `actions.replace` is "drain": our plain
    // drain says so, and no second reboot.
    let out = ok(check(&c, "n2", &bad, &["--config", conf]));
    drained_for_replace(&out);
    assert_eq!(
        fs::read_to_string(c.dir().join("reboots")).unwrap(),
        "n2\n",
        "one reboot"
    );
}

/// `actions.reboot: "hyperpod"`: HyperPod reboots a failed node and puts it back in
/// service with a fresh state file (/run); the fault is still there. The reboot asked for
/// is remembered across boots (`history_dir`), so the second failure asks HyperPod for a
/// replacement, not another reboot.
#[test]
fn a_fault_hyperpod_s_reboot_did_not_mend_asks_for_replace() {
    let c = start_without_kmsg();
    let conf = config_at(
        &c,
        "hyperpod-loop.json",
        "\"breaker_max_percent\": 100, \"actions\": {\"reboot\": \"hyperpod\", \"replace\": \"hyperpod\"}",
    );
    let conf = conf.to_str().unwrap();
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.json");
    write(
        &bad,
        &snapshot(|v| v["gpus"][2]["gpu_recovery_action"] = json!(2)),
    );
    let out = ok(check(&c, "n1", &bad, &["--config", conf]));
    assert!(
        stdout(&out).ends_with("handed to the platform for mlhealth: gpu2 recovery [reboot]: scontrol update NodeName=n1 State=FAIL Reason=Action:Reboot\n"),
        "{}",
        stdout(&out)
    );
    // HyperPod's reboot: a new boot (no state file) and the node back in service.
    fs::remove_dir_all(c.dir().join("mlhealth-state")).unwrap();
    ok(c.run("scontrol", ["update", "NodeName=n1", "State=RESUME"])
        .unwrap());
    wait_for_node(&c, "n1", "n1 back in service", || {
        sinfo(&c, "n1").0 == "idle"
    });
    let out = ok(check(&c, "n1", &bad, &["--config", conf]));
    let text = stdout(&out);
    assert!(
        text.contains("; rebooted for recovery 1 time(s) within 24 h already (the last "),
        "{text}"
    );
    assert!(
        text.ends_with("handed to the platform for mlhealth: gpu2 recovery [replace]: scontrol update NodeName=n1 State=FAIL Reason=Action:Replace\n"),
        "{text}"
    );
    let shown = show_node(&c, "n1");
    assert!(shown.contains(" Reason=Action:Replace ["), "{shown}");
}

/// `actions: hyperpod`: a finding that needs new hardware (a failed row remap) fails the
/// node with HyperPod's own reason instead of our drain; later runs leave it to HyperPod,
/// and the circuit breaker counts it.
#[test]
fn the_hyperpod_action_fails_the_node_with_its_reason_and_leaves_it_to_hyperpod() {
    let c = start_without_kmsg();
    let conf = config_at(
        &c,
        "hyperpod.json",
        "\"breaker_max_percent\": 100, \"actions\": {\"reboot\": \"hyperpod\", \"replace\": \"hyperpod\"}",
    );
    let conf = conf.to_str().unwrap();
    let d = tempfile::tempdir().unwrap();
    let (good, bad) = good_and_bad(d.path(), |v| {
        v["gpus"][3]["remapped_rows_failure"] = json!(true)
    });
    let prom = d.path().join("prom");
    fs::create_dir(&prom).unwrap();
    let out = ok(check(
        &c,
        "n1",
        &bad,
        &["--config", conf, "--textfile", prom.to_str().unwrap()],
    ));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n1: DRAIN gpu3 (GPU-5c1e0f2a-8d3b-4f6e-9a7c-000000000003, 00000000:5D:00.0): row remapping failed: replace the GPU\n\
         ml-healthcheck: n1: 8 GPUs checked, 1 problem that drains the node; handed to the platform for mlhealth: gpu3 row remap failed [replace]: scontrol update NodeName=n1 State=FAIL Reason=Action:Replace\n"
    );
    let shown = show_node(&c, "n1");
    assert!(shown.contains(" Reason=Action:Replace ["), "{shown}");
    assert!(
        shown.split_whitespace().any(|w| w
            .strip_prefix("State=")
            .is_some_and(|s| s.split('+').any(|f| f == "FAIL"))),
        "{shown}"
    );
    let text = fs::read_to_string(prom.join("ml_healthcheck_n1.prom")).unwrap();
    for line in [
        "ml_healthcheck_breaker_drained_nodes{node=\"n1\"} 1\n",
        "ml_healthcheck_breaker_limit_nodes{node=\"n1\"} 3\n",
        "ml_healthcheck_cluster_nodes{node=\"n1\"} 3\n",
        "ml_healthcheck_breaker_open{node=\"n1\"} 0\n",
        "ml_healthcheck_drained_by_healthcheck{node=\"n1\"} 0\n",
        "ml_healthcheck_check_status{node=\"n1\",check=\"remapped-rows\",status=\"fail\"} 1\n",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    // HyperPod owns the node now: neither a new drain nor a resume from us.
    for snap in [&bad, &good] {
        let out = ok(check(&c, "n1", snap, &["--config", conf]));
        assert!(
            stdout(&out).ends_with("; left as it is: drained by someone else (Action:Replace)\n"),
            "{}",
            stdout(&out)
        );
    }
    let shown = show_node(&c, "n1");
    assert!(shown.contains(" Reason=Action:Replace ["), "{shown}");
}

/// Fleet safety: with 3 of 3 nodes failing, the breaker (at most 67% of 3 nodes: 2) lets
/// the first two drain and holds the third, with one loud line and the metric; it never
/// holds a resume.
#[test]
fn the_circuit_breaker_holds_the_drain_of_the_third_of_three_nodes() {
    let c = start_without_kmsg();
    let conf = config_at(&c, "breaker.json", "\"breaker_max_percent\": 67");
    let d = tempfile::tempdir().unwrap();
    let (good, bad) = good_and_bad(d.path(), |v| {
        v["gpus"][1]["ecc_volatile_uncorrected"] = json!(2)
    });
    let prom = d.path().join("prom");
    fs::create_dir(&prom).unwrap();
    let args = [
        "--config",
        conf.to_str().unwrap(),
        "--textfile",
        prom.to_str().unwrap(),
    ];
    let reason = "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]";
    for n in ["n1", "n2"] {
        ok(check(&c, n, &bad, &args));
        assert_eq!(sinfo(&c, n), ("drained".into(), reason.into()));
    }
    let out = ok(check(&c, "n3", &bad, &args));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n3: DRAIN gpu1 (GPU-5c1e0f2a-8d3b-4f6e-9a7c-000000000001, 00000000:2A:00.0): 2 uncorrectable ECC errors since the last driver load\n\
         ml-healthcheck: n3: CIRCUIT BREAKER OPEN: 2 of 3 nodes already carry ml-healthcheck's drain, at most 2 may: n3 is not drained for mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]; find out why so many nodes fail before resuming any\n\
         ml-healthcheck: n3: 8 GPUs checked, 1 problem that drains the node; NOT drained (circuit breaker open: 2 of 3 nodes already carry ml-healthcheck's drain, at most 2 may): mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]\n"
    );
    assert_eq!(sinfo(&c, "n3"), ("idle".into(), "none".into()));
    let text = fs::read_to_string(prom.join("ml_healthcheck_n3.prom")).unwrap();
    for line in [
        "ml_healthcheck_breaker_open{node=\"n3\"} 1\n",
        "ml_healthcheck_held{node=\"n3\"} 1\n",
        "ml_healthcheck_drained_by_healthcheck{node=\"n3\"} 0\n",
        "ml_healthcheck_findings{node=\"n3\",severity=\"drain\"} 1\n",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    // As the prolog it does not fail the job either (Slurm would drain the node itself).
    let out = check(&c, "n3", &bad, &[&args[..], &["--mode", "prolog"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(sinfo(&c, "n3"), ("idle".into(), "none".into()));
    // The breaker never holds a resume: n1 is repaired while it is open.
    let out = ok(check(&c, "n1", &good, &args));
    assert!(
        stdout(&out).contains("; resumed (was drained: "),
        "{}",
        stdout(&out)
    );
    assert_eq!(sinfo(&c, "n1").0, "idle");
    // One of ours left: n3 may drain now, and the breaker is closed on n1.
    ok(check(&c, "n3", &bad, &args));
    assert_eq!(sinfo(&c, "n3"), ("drained".into(), reason.into()));
    let text = fs::read_to_string(prom.join("ml_healthcheck_n1.prom")).unwrap();
    assert!(
        text.contains("ml_healthcheck_breaker_open{node=\"n1\"} 0\n"),
        "{text}"
    );
}

/// `mode = "report"` and the killswitch file: the findings are printed, nothing changes in
/// Slurm (state and reason), neither a drain nor a resume.
#[test]
fn report_mode_and_the_killswitch_change_nothing_in_slurm() {
    let c = start_without_kmsg();
    let report = config_at(&c, "report.json", "\"mode\": \"report\"");
    let enforce = config_at(&c, "enforce.json", "\"breaker_max_percent\": 100");
    let d = tempfile::tempdir().unwrap();
    let (good, bad) = good_and_bad(d.path(), |v| {
        v["gpus"][1]["ecc_volatile_uncorrected"] = json!(2)
    });
    let finding = "ml-healthcheck: n1: DRAIN gpu1 (GPU-5c1e0f2a-8d3b-4f6e-9a7c-000000000001, 00000000:2A:00.0): 2 uncorrectable ECC errors since the last driver load\n";
    let drains = "8 GPUs checked, 1 problem that drains the node";
    let reason = "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]";

    // Report mode: printed, not done; the prolog passes.
    let out = ok(check(
        &c,
        "n1",
        &bad,
        &["--config", report.to_str().unwrap()],
    ));
    assert_eq!(
        stdout(&out),
        format!("{finding}ml-healthcheck: n1: {drains}; would have drained (report only: mode = \"report\"): {reason}\n")
    );
    assert_eq!(sinfo(&c, "n1"), ("idle".into(), "none".into()));
    let out = check(
        &c,
        "n1",
        &bad,
        &["--config", report.to_str().unwrap(), "--mode", "prolog"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(sinfo(&c, "n1"), ("idle".into(), "none".into()));

    // The killswitch, whatever the mode says: no drain ...
    let ks = c.dir().join("mlhealth.disable");
    fs::write(&ks, "").unwrap();
    let out = ok(check(
        &c,
        "n1",
        &bad,
        &["--config", enforce.to_str().unwrap()],
    ));
    assert_eq!(
        stdout(&out),
        format!(
            "{finding}ml-healthcheck: n1: {drains}; would have drained (report only: killswitch {} exists): {reason}\n",
            ks.display()
        )
    );
    assert_eq!(sinfo(&c, "n1"), ("idle".into(), "none".into()));
    // ... and no resume of our own drain.
    fs::remove_file(&ks).unwrap();
    ok(check(
        &c,
        "n1",
        &bad,
        &["--config", enforce.to_str().unwrap()],
    ));
    assert_eq!(sinfo(&c, "n1"), ("drained".into(), reason.into()));
    fs::write(&ks, "").unwrap();
    let out = ok(check(
        &c,
        "n1",
        &good,
        &["--config", enforce.to_str().unwrap()],
    ));
    assert!(
        stdout(&out).ends_with(&format!(
            "; would have resumed (report only: killswitch {} exists; drained: {reason})\n",
            ks.display()
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(sinfo(&c, "n1"), ("drained".into(), reason.into()));
    // Report mode does not resume either; without the killswitch the drain is lifted.
    fs::remove_file(&ks).unwrap();
    ok(check(
        &c,
        "n1",
        &good,
        &["--config", report.to_str().unwrap()],
    ));
    assert_eq!(sinfo(&c, "n1"), ("drained".into(), reason.into()));
    ok(check(
        &c,
        "n1",
        &good,
        &["--config", enforce.to_str().unwrap()],
    ));
    assert_eq!(sinfo(&c, "n1").0, "idle");
}

/// A wrapper in the slots (HealthCheckProgram takes no arguments) that picks a snapshot
/// per slot and node: `<dir>/<SLURM_SCRIPT_CONTEXT or health>-<node>.json`, else healthy.
/// Each finished run adds its slot to `<dir>/runs-<node>`, so a test knows a run has come
/// and gone. It sets no PATH: slurmd gives HealthCheckProgram none, and the helper must
/// cope.
fn slot_wrapper(dir: &Path, conf: &Path) -> PathBuf {
    let w = dir.join("mlhealth-slot");
    fs::write(
        &w,
        format!(
            "#!/bin/sh\n\
             d={d}\n\
             slot=${{SLURM_SCRIPT_CONTEXT:-health}}\n\
             f=$d/$slot-$SLURMD_NODENAME.json\n\
             [ -f \"$f\" ] || f=$d/healthy.json\n\
             SLURM_CONF={conf} {bin} --snapshot \"$f\" --textfile $d/prom\n\
             rc=$?\n\
             echo $slot >> $d/runs-$SLURMD_NODENAME\n\
             exit $rc\n",
            d = dir.display(),
            conf = conf.display(),
            bin = bin().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&w, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(dir.join("prom")).unwrap();
    write(&dir.join("healthy.json"), &healthy());
    w
}

#[test]
fn slurmd_runs_it_as_health_check_program() {
    let d = tempfile::tempdir().unwrap();
    let cluster_dir = d.path().join("cluster");
    let w = slot_wrapper(d.path(), &cluster_dir.join("slurm.conf"));
    let c = start(Options {
        dir: Some(cluster_dir),
        health_check: Some((w, 2)),
        extra_files: vec![config_file()],
        ..Options::default()
    });
    fs::write(c.dir().join("kmsg"), "").unwrap();
    // After the start (which waits for every node to be idle): n3's NVLink 4 goes down.
    write(
        &d.path().join("health-n3.json"),
        &snapshot(|v| v["gpus"][7]["nvlinks"][4]["active"] = json!(false)),
    );
    wait_for_node(&c, "n3", "n3 drained by the health check", || {
        sinfo(&c, "n3")
            == (
                "drained".into(),
                "mlhealth: gpu7 nvlink4 down [reset-gpu]".into(),
            )
    });
    // slurmd runs each health check RPC in its own thread (slurmd's _rpc_health_check
    // takes no lock), so a run begun before the snapshot changed may write the file last.
    let prom = || fs::read_to_string(d.path().join("prom/ml_healthcheck_n3.prom")).unwrap();
    wait_for_node(&c, "n3", "the textfile says n3 carries our drain", || {
        prom().contains("ml_healthcheck_drained_by_healthcheck{node=\"n3\"} 1\n")
    });
    assert_eq!(sinfo(&c, "n1").0, "idle");
    // Repaired: the next run resumes it.
    fs::remove_file(d.path().join("health-n3.json")).unwrap();
    wait_for_node(&c, "n3", "n3 resumed", || sinfo(&c, "n3").0 == "idle");
}

#[test]
fn as_prolog_it_sends_the_job_elsewhere_and_as_epilog_it_drains_and_succeeds() {
    let d = tempfile::tempdir().unwrap();
    let cluster_dir = d.path().join("cluster");
    let w = slot_wrapper(d.path(), &cluster_dir.join("slurm.conf"));
    // n1: a process left on every GPU, seen by the prolog. n2: ECC errors after a job.
    write(
        &d.path().join("prolog_slurmd-n1.json"),
        &snapshot(|v| {
            for g in 0..8 {
                v["gpus"][g]["compute_pids"] = json!([31337]);
            }
        }),
    );
    write(
        &d.path().join("epilog_slurmd-n2.json"),
        &snapshot(|v| v["gpus"][1]["ecc_volatile_uncorrected"] = json!(2)),
    );
    let c = start(Options {
        dir: Some(cluster_dir),
        prolog: Some(w.clone()),
        epilog: Some(w),
        extra_files: vec![config_file()],
        ..Options::default()
    });
    fs::write(c.dir().join("kmsg"), "").unwrap();

    let job = gpu_job_on_n1(&c);
    wait_for_node(&c, "n1", "n1 drained by the prolog", || {
        sinfo(&c, "n1").0 == "drained"
    });
    // Our reason, not Slurm's "Prolog error": slurmctld keeps the reason of a drained node.
    let (_, reason) = sinfo(&c, "n1");
    assert!(
        reason.starts_with("mlhealth: gpu") && reason.ends_with(" busy") && !reason.contains(','),
        "only the job's GPU: {reason}"
    );
    // The job did not run there; Slurm requeued it.
    let state = c.job_field(job, "JobState").unwrap();
    assert_eq!(
        state.as_deref(),
        Some("PENDING"),
        "{:?}",
        c.job_field(job, "Reason")
    );

    let job = c
        .sbatch(None, &["-w", "n2", "-o", "/dev/null", "--wrap", "true"])
        .unwrap();
    assert_eq!(c.wait_job(job, JOB_TIMEOUT).unwrap(), "COMPLETED");
    wait_for_node(&c, "n2", "n2 drained by the epilog", || {
        sinfo(&c, "n2")
            == (
                "drained".into(),
                "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]".into(),
            )
    });
}

/// How many runs of `slot` on `node` the slot wrapper has seen end.
fn runs(dir: &Path, node: &str, slot: &str) -> usize {
    fs::read_to_string(dir.join(format!("runs-{node}")))
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == slot)
        .count()
}

/// Waits until at least one whole health check run on `node` started after the call:
/// three more ended (slurmd may run two at once: its _rpc_health_check takes no lock).
fn a_whole_health_check(c: &Cluster, dir: &Path, node: &str) {
    let seen = runs(dir, node, "health");
    wait_for_node(c, node, "three more health checks", || {
        runs(dir, node, "health") >= seen + 3
    });
}

/// The healthy snapshot with a compute process (a stray one: no job of ours) on `gpus`.
fn stray_on(gpus: &[usize]) -> Value {
    snapshot(|v| {
        for &g in gpus {
            v["gpus"][g]["compute_pids"] = json!([31337]);
        }
    })
}

/// Issue 12: busy GPUs are judged only by the prolog and on a node without jobs, so a
/// health check on a node still running other jobs must not lift the prolog's `busy` drain
/// (it used to: the drain flapped with every job sent to the stray process's GPU).
#[test]
fn a_busy_drain_stays_while_other_jobs_run_and_is_lifted_once_the_gpu_is_free() {
    let d = tempfile::tempdir().unwrap();
    let cluster_dir = d.path().join("cluster");
    let w = slot_wrapper(d.path(), &cluster_dir.join("slurm.conf"));
    let c = start(Options {
        dir: Some(cluster_dir),
        prolog: Some(w.clone()),
        health_check: Some((w, 2)),
        extra_files: vec![config_file()],
        ..Options::default()
    });
    fs::write(c.dir().join("kmsg"), "").unwrap();
    let running = |job: u32| c.job_field(job, "JobState").unwrap().as_deref() == Some("RUNNING");

    // Job A runs on one GPU of n1; then a stray process shows up on every other GPU.
    let a = c
        .sbatch(
            None,
            &[
                "-w",
                "n1",
                "--gpus-per-node=1",
                "-o",
                "/dev/null",
                "--wrap",
                "sleep 600",
            ],
        )
        .unwrap();
    // Slurm shows the job running before its prolog has run: wait for the prolog too.
    wait_for_node(&c, "n1", "job A running, after its prolog", || {
        running(a) && runs(d.path(), "n1", "prolog_slurmd") == 1
    });
    let stray = stray_on(&[0, 1, 2, 3, 4, 5, 6, 7]);
    write(&d.path().join("prolog_slurmd-n1.json"), &stray);
    write(&d.path().join("health-n1.json"), &stray);

    // Job B gets a GPU with the stray process: its prolog drains n1 and fails.
    let b = gpu_job_on_n1(&c);
    wait_for_node(&c, "n1", "job B's prolog", || {
        runs(d.path(), "n1", "prolog_slurmd") == 2
    });
    let (state, reason) = sinfo(&c, "n1");
    let gpu: usize = reason
        .strip_prefix("mlhealth: gpu")
        .and_then(|r| r.strip_suffix(" busy"))
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("n1 after job B's prolog: {state} {reason:?}"));
    // Job B is not run again (it would only drain n1 once more); the stray process stays.
    ok(c.run("scancel", [b.to_string()]).unwrap());
    write(&d.path().join("health-n1.json"), &stray_on(&[gpu]));

    // The health check cannot judge busy GPUs while job A runs: the drain stays.
    a_whole_health_check(&c, d.path(), "n1");
    assert_eq!(sinfo(&c, "n1"), ("draining".into(), reason.clone()));
    assert!(running(a));

    // Job A ends: on a node without jobs the health check judges busy GPUs, and the stray
    // process keeps the node drained.
    ok(c.run("scancel", [a.to_string()]).unwrap());
    wait_for_node(&c, "n1", "n1 without jobs", || {
        sinfo(&c, "n1").0 == "drained"
    });
    a_whole_health_check(&c, d.path(), "n1");
    assert_eq!(sinfo(&c, "n1"), ("drained".into(), reason));

    // The stray process is gone: that judgement lifts the drain.
    fs::remove_file(d.path().join("health-n1.json")).unwrap();
    wait_for_node(&c, "n1", "n1 resumed", || sinfo(&c, "n1").0 == "idle");
}

/// The files dcgm-exporter reads in its job mapping directory (those named by a number;
/// it skips the slots' `.lock`): name and content.
fn mapping(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, fs::read_to_string(e.path()).unwrap_or_default())
                })
                .filter(|(name, _)| name.bytes().all(|b| b.is_ascii_digit()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// dcgm-exporter's HPC job mapping: while a job runs on two GPUs of n1, one file per GPU
/// (named by its index) holds the job's id; after the job, they are gone.
#[test]
fn the_job_mapping_for_dcgm_exporter_appears_with_the_job_and_goes_with_it() {
    let d = tempfile::tempdir().unwrap();
    let cluster_dir = d.path().join("cluster");
    let w = slot_wrapper(d.path(), &cluster_dir.join("slurm.conf"));
    let c = start(Options {
        dir: Some(cluster_dir),
        prolog: Some(w.clone()),
        epilog: Some(w),
        extra_files: vec![(
            "ml-healthcheck.json".into(),
            config_text(
                CLUSTER_DIR_PLACEHOLDER,
                &format!("\"hpc_job_mapping_dir\": \"{CLUSTER_DIR_PLACEHOLDER}/dcgm-job-map\""),
            ),
        )],
        ..Options::default()
    });
    fs::write(c.dir().join("kmsg"), "").unwrap();
    let map = c.dir().join("dcgm-job-map");
    let job = c
        .sbatch(
            None,
            &[
                "-w",
                "n1",
                "--gpus-per-node=2",
                "-o",
                "/dev/null",
                "--wrap",
                "sleep 600",
            ],
        )
        .unwrap();
    wait_for_node(&c, "n1", "the job's prolog", || {
        runs(d.path(), "n1", "prolog_slurmd") == 1
    });
    // The job's GPUs as slurmctld shows them: `GRES=gpu:2(IDX:0-1)`.
    let detail = stdout(&ok(c
        .run("scontrol", ["show", "job", "-d", &job.to_string()])
        .unwrap()));
    let idx = detail
        .split("(IDX:")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no IDX in {detail}"));
    let gpus: Vec<String> = match idx.split_once('-') {
        Some((a, b)) => (a.parse::<u32>().unwrap()..=b.parse().unwrap())
            .map(|g| g.to_string())
            .collect(),
        None => idx.split(',').map(String::from).collect(),
    };
    assert_eq!(gpus.len(), 2, "{idx}");
    let want: Vec<(String, String)> = gpus
        .iter()
        .map(|g| (g.clone(), format!("{job}\n")))
        .collect();
    assert_eq!(mapping(&map), want);
    let mode = fs::metadata(&map).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);

    ok(c.run("scancel", [job.to_string()]).unwrap());
    wait_for_node(&c, "n1", "the job's epilog", || {
        runs(d.path(), "n1", "epilog_slurmd") == 1
    });
    assert_eq!(mapping(&map), vec![]);
}

/// A sysfs tree as the kernel writes it for `hcas` ConnectX-7 NDR HCAs (one InfiniBand
/// port each, all up) and the healthy fixture's eight GPUs with their AER counters.
fn ib_sysfs(root: &Path, hcas: usize) {
    let put = |p: PathBuf, text: &str| {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    let gpus = healthy()["gpus"].as_array().unwrap().clone();
    for g in gpus {
        // NVML's `00000000:18:00.0` is sysfs's `0000:18:00.0`.
        let bus_id = g["pci_bus_id"].as_str().unwrap().to_ascii_lowercase();
        let dev = root.join("bus/pci/devices").join(&bus_id[4..]);
        put(dev.join("class"), "0x030200\n");
        put(dev.join("vendor"), "0x10de\n");
        put(dev.join("aer_dev_correctable"), "RxErr 0\nBadTLP 0\nBadDLLP 0\nRollover 0\nTimeout 0\nNonFatalErr 0\nCorrIntErr 0\nHeaderOF 0\nTOTAL_ERR_COR 0\n");
        put(dev.join("aer_dev_nonfatal"), "Undefined 0\nDLP 0\nSDES 0\nTLP 0\nFCP 0\nCmpltTO 0\nCmpltAbrt 0\nUnxCmplt 0\nRxOF 0\nMalfTLP 0\nECRC 0\nUnsupReq 0\nACSViol 0\nUncorrIntErr 0\nBlockedTLP 0\nAtomicOpBlocked 0\nTLPBlockedErr 0\nPoisonTLPBlocked 0\nTOTAL_ERR_NONFATAL 0\n");
        put(dev.join("aer_dev_fatal"), "Undefined 0\nDLP 0\nSDES 0\nTLP 0\nFCP 0\nCmpltTO 0\nCmpltAbrt 0\nUnxCmplt 0\nRxOF 0\nMalfTLP 0\nECRC 0\nUnsupReq 0\nACSViol 0\nUncorrIntErr 0\nBlockedTLP 0\nAtomicOpBlocked 0\nTLPBlockedErr 0\nPoisonTLPBlocked 0\nTOTAL_ERR_FATAL 0\n");
    }
    for i in 0..hcas {
        let dev = root.join(format!("class/infiniband/mlx5_{i}"));
        put(dev.join("device/vendor"), "0x15b3\n");
        let port = dev.join("ports/1");
        put(port.join("state"), "4: ACTIVE\n");
        put(port.join("phys_state"), "5: LinkUp\n");
        put(port.join("rate"), "400 Gb/sec (4X NDR)\n");
        put(port.join("link_layer"), "InfiniBand\n");
        for c in ["link_downed", "symbol_error", "port_rcv_errors"] {
            put(port.join("counters").join(c), "0\n");
        }
    }
}

/// InfiniBand from sysfs (issue 15): a down port drains the node with the port in the
/// reason, and the health check resumes the node once the tree is clean again.
#[test]
fn a_down_infiniband_port_drains_the_node_and_a_clean_tree_resumes_it() {
    let c = start_without_kmsg();
    let sysfs = c.dir().join("sysfs");
    ib_sysfs(&sysfs, 4);
    let conf = config_at(
        &c,
        "ib.json",
        &format!(
            "\"ib_devices\": 4, \"ib_rate_gbps\": 400, \"sysfs_root\": \"{}\"",
            sysfs.display()
        ),
    );
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.json");
    write(&good, &healthy());
    let args = ["--config", conf.to_str().unwrap()];
    let out = ok(check(&c, "n2", &good, &args));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n2: 8 GPUs checked, healthy\n"
    );
    assert_eq!(sinfo(&c, "n2").0, "idle");

    let port = sysfs.join("class/infiniband/mlx5_2/ports/1");
    fs::write(port.join("state"), "1: DOWN\n").unwrap();
    fs::write(port.join("phys_state"), "2: Polling\n").unwrap();
    let out = ok(check(&c, "n2", &good, &args));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n2: DRAIN port mlx5_2/1 is not up: 1: DOWN, 2: Polling\n\
         ml-healthcheck: n2: 8 GPUs checked, 1 problem that drains the node; drained: mlhealth: ib mlx5_2/1 down\n"
    );
    assert_eq!(
        sinfo(&c, "n2"),
        ("drained".into(), "mlhealth: ib mlx5_2/1 down".into())
    );

    fs::write(port.join("state"), "4: ACTIVE\n").unwrap();
    fs::write(port.join("phys_state"), "5: LinkUp\n").unwrap();
    let out = ok(check(&c, "n2", &good, &args));
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n2: 8 GPUs checked, healthy; resumed (was drained: mlhealth: ib mlx5_2/1 down)\n"
    );
    assert_eq!(sinfo(&c, "n2").0, "idle");
}

/// slurmd runs HealthCheckProgram on every node at once (unless HealthCheckNodeState=
/// CYCLE), and a bad driver push fails them all: the runs start together, each counting
/// the drains before its own. With room for one drained node, one of three nodes failing
/// at the same moment stays drained; the others count again after their drain, lift it
/// and say the breaker held it.
#[test]
fn runs_that_start_together_drain_no_more_nodes_than_the_breaker_allows() {
    let c = start_without_kmsg();
    let conf = config_at(&c, "breaker.json", "\"breaker_max_nodes\": 1");
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.json");
    write(
        &bad,
        &snapshot(|v| v["gpus"][1]["ecc_volatile_uncorrected"] = json!(2)),
    );
    let b = bin();
    let children: Vec<_> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| {
            c.command(b.to_str().unwrap())
                .args([
                    "--node",
                    n,
                    "--snapshot",
                    bad.to_str().unwrap(),
                    "--config",
                    conf.to_str().unwrap(),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<String> = children
        .into_iter()
        .map(|ch| stdout(&ch.wait_with_output().unwrap()))
        .collect();
    println!("{}", outs.join(""));
    let drained: Vec<&str> = ["n1", "n2", "n3"]
        .into_iter()
        .filter(|n| sinfo(&c, n).0 == "drained")
        .collect();
    assert!(
        drained.len() <= 1,
        "drained: {drained:?}\n{}",
        outs.join("")
    );
    for (n, out) in ["n1", "n2", "n3"].iter().zip(&outs) {
        if !drained.contains(n) {
            assert!(
                out.contains(&format!("ml-healthcheck: {n}: CIRCUIT BREAKER OPEN: "))
                    && out.contains(&format!(
                        "{n} is not drained for mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]"
                    )),
                "{n}: {out}"
            );
            // Idle again. 24.11 keeps the reason of a resumed node when there is no
            // accounting storage (accounting_storage.c clusteracct_storage_g_node_up
            // returns before clearing it for accounting_storage/none); 22.05 clears it.
            let (state, reason) = sinfo(&c, n);
            assert_eq!(state, "idle", "{n}");
            assert!(
                reason == "none" || reason == "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]",
                "{n}: {reason}"
            );
        }
    }
}
