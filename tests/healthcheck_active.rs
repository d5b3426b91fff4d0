//! `ml-healthcheck active` against the local cluster's real slurmctld and slurmd: the
//! suites run as Slurm jobs in a hidden partition, with `dcgmi` and `all_reduce_perf`
//! replaced by a script that prints captured output (the fixtures: pass, fail, slow) or
//! crashes or hangs, per node. What the admin sees: the run's lines, `sinfo`'s states and
//! drain reasons, the JSON and the textfile.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use local_cluster::{cargo_artifact, scontrol_field, Cluster, Options};
use serde_json::Value;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/helpers/ml-healthcheck/tests/fixtures"
);

fn bin() -> PathBuf {
    cargo_artifact("ml-healthcheck").unwrap_or_else(|e| panic!("{e}"))
}

/// The stand-in for `dcgmi` or `all_reduce_perf`: it does what `fake/<tool>-<node>` says
/// (pass, fail, slow, crash, hang; pass when absent), printing the fixtures' captured
/// output. `SLURMD_NODENAME` names the node the job runs on.
fn fake_tool(dir: &Path, tool: &str, pass: &str, fail: &str) -> PathBuf {
    let fake = dir.join("fake");
    fs::create_dir_all(&fake).unwrap();
    fs::copy(
        Path::new(FIXTURES).join(pass),
        fake.join(format!("{tool}.pass")),
    )
    .unwrap();
    fs::copy(
        Path::new(FIXTURES).join(fail),
        fake.join(format!("{tool}.fail")),
    )
    .unwrap();
    let script = fake.join(tool);
    let f = fake.display();
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             mode=$(cat \"{f}/{tool}-$SLURMD_NODENAME\" 2>/dev/null || echo pass)\n\
             case $mode in\n\
             pass) cat \"{f}/{tool}.pass\" ;;\n\
             fail) cat \"{f}/{tool}.fail\"; exit 1 ;;\n\
             slow) cat \"{f}/{tool}.fail\" ;;\n\
             crash) echo 'Error: unable to establish a connection to the specified host: localhost' >&2; exit 255 ;;\n\
             hang) exec sleep 600 ;;\n\
             esac\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn set_mode(c: &Cluster, tool: &str, node: &str, mode: &str) {
    fs::write(c.dir().join("fake").join(format!("{tool}-{node}")), mode).unwrap();
}

/// The config: the hidden partition, nodes n[1-3], both suites with 3 s timeouts.
fn config(c: &Cluster, name: &str, extra: &str) -> PathBuf {
    let d = c.dir().display().to_string();
    let dcgmi = fake_tool(
        c.dir(),
        "dcgmi",
        "dcgm-diag-r2-pass.json",
        "dcgm-diag-r2-fail-pcie.json",
    );
    let nccl = fake_tool(
        c.dir(),
        "all_reduce_perf",
        "nccl-allreduce-h100x8.txt",
        "nccl-allreduce-h200nvl-x8.txt",
    );
    fs::create_dir_all(c.dir().join("active")).unwrap();
    let p = c.dir().join(name);
    fs::write(
        &p,
        format!(
            "{{\"expect_gpus\": 8, \"state_dir\": \"{d}/mlhealth-state\", \"history_dir\": \"{d}/mlhealth-history\", \"kmsg\": \"{d}/kmsg\", \"killswitch\": \"{d}/mlhealth.disable\", \"breaker_max_percent\": 100, {extra}
              \"active\": {{\"partition\": \"mlhealth\", \"nodes\": \"n[1-3]\", \"results_dir\": \"{d}/active\",
                \"suites\": [{{\"suite\": \"dcgm-diag\", \"level\": 2, \"command\": \"{}\", \"timeout_s\": 3}},
                             {{\"suite\": \"nccl\", \"gpus\": 8, \"command\": \"{}\", \"timeout_s\": 3}}],
                \"expected_busbw_gbps\": {{\"H100\": 350, \"H200\": 350, \"A100\": 200}}}}}}\n",
            dcgmi.display(),
            nccl.display()
        ),
    )
    .unwrap();
    p
}

fn active(c: &Cluster, conf: &Path, extra: &[&str]) -> std::process::Output {
    let b = bin();
    let mut args = vec!["active", "--config", conf.to_str().unwrap()];
    args.extend_from_slice(extra);
    c.run(b.to_str().unwrap(), args).unwrap()
}

/// The run's lines without the job ids (`(job 12 COMPLETED)` is not in any line we
/// assert) and with the stand-ins' directory as `FAKE`.
fn lines(c: &Cluster, o: &std::process::Output) -> Vec<String> {
    let fake = c.dir().join("fake").display().to_string();
    stdout(o)
        .lines()
        .map(|l| l.replace(&fake, "FAKE"))
        .collect()
}

fn cluster() -> Cluster {
    let c = start(Options {
        extra_slurm_conf: vec![
            "PartitionName=mlhealth Nodes=n[1-3] Hidden=YES MaxTime=INFINITE State=UP".into(),
        ],
        ..Options::default()
    });
    fs::write(c.dir().join("kmsg"), "").unwrap();
    c
}

#[test]
fn the_active_suites_drain_on_fail_and_slow_change_nothing_on_crash_or_hang_and_resume_on_a_pass() {
    let c = cluster();
    let conf = config(&c, "active.json", "");
    set_mode(&c, "dcgmi", "n2", "fail");
    set_mode(&c, "all_reduce_perf", "n3", "slow");

    // n1 passes, n2's DCGM diagnostic fails on GPU 2's PCIe, n3's all-reduce is slow.
    let out = ok(active(&c, &conf, &[]));
    let got = lines(&c, &out);
    println!("{}", got.join("\n"));
    assert_eq!(
        got,
        [
            "ml-healthcheck: n1: active dcgm-diag: PASS: 33 results, none failed (exit 0)",
            "ml-healthcheck: n1: active nccl: PASS: busbw 470.73 GB/s at 2147483648 bytes, avg bus bandwidth 448.212 GB/s, 8 x NVIDIA H100 80GB HBM3",
            "ml-healthcheck: n1: active checks: passed",
            "ml-healthcheck: n2: active dcgm-diag: FAIL: gpu2 dcgm-diag pcie [replace]: Detected more than 8 PCIe replays per minute for GPU 2 : 412",
            "ml-healthcheck: n2: active nccl: PASS: busbw 470.73 GB/s at 2147483648 bytes, avg bus bandwidth 448.212 GB/s, 8 x NVIDIA H100 80GB HBM3",
            "ml-healthcheck: n2: active checks: drained: mlhealth: gpu2 dcgm-diag pcie [replace]",
            "ml-healthcheck: n3: active dcgm-diag: PASS: 33 results, none failed (exit 0)",
            "ml-healthcheck: n3: active nccl: SLOW: busbw 68.66 GB/s at 34359738368 bytes, avg bus bandwidth 68.6248 GB/s, 8 x NVIDIA H200 NVL",
            "ml-healthcheck: n3: active checks: drained: mlhealth: nccl busbw 68<350 [reboot]",
        ]
    );
    assert_eq!(sinfo(&c, "n1"), ("idle".into(), "none".into()));
    assert_eq!(
        sinfo(&c, "n2"),
        (
            "drained".into(),
            "mlhealth: gpu2 dcgm-diag pcie [replace]".into()
        )
    );
    assert_eq!(
        sinfo(&c, "n3"),
        (
            "drained".into(),
            "mlhealth: nccl busbw 68<350 [reboot]".into()
        )
    );

    // The health check does not make the active checks: it keeps their drain.
    let snap = Path::new(FIXTURES).join("h100x8-healthy.json");
    let out = ok(c
        .run(
            bin().to_str().unwrap(),
            [
                "--config",
                conf.to_str().unwrap(),
                "--node",
                "n3",
                "--snapshot",
                snap.to_str().unwrap(),
            ],
        )
        .unwrap());
    assert_eq!(
        stdout(&out),
        "ml-healthcheck: n3: 8 GPUs checked, healthy; still drained: mlhealth: nccl busbw 68<350 [reboot] (not every check it names was made again)\n"
    );
    assert_eq!(
        sinfo(&c, "n3"),
        (
            "drained".into(),
            "mlhealth: nccl busbw 68<350 [reboot]".into()
        )
    );

    // Second run: n1's DCGM cannot reach its host engine and its all-reduce hangs
    // (UNKNOWN: n1 stays in service); n2 passes now: retested in its own reservation and
    // resumed; n3 hangs: kept drained for the same reason.
    set_mode(&c, "dcgmi", "n1", "crash");
    set_mode(&c, "all_reduce_perf", "n1", "hang");
    set_mode(&c, "dcgmi", "n2", "pass");
    set_mode(&c, "all_reduce_perf", "n3", "hang");
    let prom = c.dir().join("prom");
    fs::create_dir_all(&prom).unwrap();
    let out = ok(active(&c, &conf, &["--textfile", prom.to_str().unwrap()]));
    let got = lines(&c, &out);
    println!("{}", got.join("\n"));
    assert_eq!(
        got,
        [
            "ml-healthcheck: n1: active dcgm-diag: CRASH: exit 255: not dcgmi's JSON: EOF while parsing a value at line 1 column 0; stderr: Error: unable to establish a connection to the specified host: localhost",
            "ml-healthcheck: n1: active nccl: HANG: nccl gave no result within 3 s (timeout_s): killed",
            "ml-healthcheck: n1: active checks: 2 suite(s) UNKNOWN: nothing changed",
            "ml-healthcheck: n2: active dcgm-diag: PASS: 33 results, none failed (exit 0)",
            "ml-healthcheck: n2: active nccl: PASS: busbw 470.73 GB/s at 2147483648 bytes, avg bus bandwidth 448.212 GB/s, 8 x NVIDIA H100 80GB HBM3",
            "ml-healthcheck: n2: active checks: resumed (was drained: mlhealth: gpu2 dcgm-diag pcie [replace])",
            "ml-healthcheck: n3: active dcgm-diag: PASS: 33 results, none failed (exit 0)",
            "ml-healthcheck: n3: active nccl: HANG: nccl gave no result within 3 s (timeout_s): killed",
            "ml-healthcheck: n3: active checks: kept drained: mlhealth: nccl busbw 68<350 [reboot]",
        ]
    );
    assert_eq!(sinfo(&c, "n1").0, "idle");
    assert_eq!(sinfo(&c, "n2").0, "idle");
    assert_eq!(
        sinfo(&c, "n3"),
        (
            "drained".into(),
            "mlhealth: nccl busbw 68<350 [reboot]".into()
        )
    );
    // The retests' reservations are gone.
    let resv = stdout(&ok(c.run("scontrol", ["show", "reservation"]).unwrap()));
    assert!(!resv.contains("mlhealth_"), "{resv}");
    let text = fs::read_to_string(prom.join("ml_healthcheck_active.prom")).unwrap();
    println!("{text}");
    for line in [
        "ml_healthcheck_active_outcome{node=\"n1\",suite=\"dcgm-diag\",outcome=\"crash\"} 1\n",
        "ml_healthcheck_active_outcome{node=\"n1\",suite=\"nccl\",outcome=\"hang\"} 1\n",
        "ml_healthcheck_active_outcome{node=\"n1\",suite=\"nccl\",outcome=\"pass\"} 0\n",
        "ml_healthcheck_active_outcome{node=\"n2\",suite=\"dcgm-diag\",outcome=\"pass\"} 1\n",
        "ml_healthcheck_active_breaker_open 0\n",
    ] {
        assert!(text.contains(line), "{line} not in:\n{text}");
    }

    // --json: per node, each suite's outcome and evidence, and the action.
    set_mode(&c, "dcgmi", "n1", "fail");
    set_mode(&c, "all_reduce_perf", "n1", "pass");
    let out = ok(active(&c, &conf, &["--json"]));
    println!("{}", stdout(&out));
    let j: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let n1 = &j["nodes"][0];
    assert_eq!(n1["node"], "n1");
    assert_eq!(n1["suites"][0]["suite"], "dcgm-diag");
    assert_eq!(n1["suites"][0]["outcome"], "fail");
    assert_eq!(
        n1["suites"][0]["findings"][0]["reason"],
        "gpu2 dcgm-diag pcie [replace]"
    );
    assert_eq!(n1["suites"][1]["outcome"], "pass");
    assert_eq!(n1["action"], "drain");
    assert_eq!(n1["reason"], "mlhealth: gpu2 dcgm-diag pcie [replace]");
    // n3 is drained by an active check and still hangs: kept.
    assert_eq!(j["nodes"][2]["retest"], true);
    assert_eq!(j["nodes"][2]["action"], "none");
    assert_eq!(
        sinfo(&c, "n1"),
        (
            "drained".into(),
            "mlhealth: gpu2 dcgm-diag pcie [replace]".into()
        )
    );
}

#[test]
fn the_killswitch_and_the_breaker_hold_active_drains() {
    let c = cluster();
    let conf = config(&c, "active.json", "");
    for n in ["n1", "n2", "n3"] {
        set_mode(&c, "dcgmi", n, "fail");
    }
    // --dry-run: the suites run, nothing is done in Slurm.
    let out = ok(active(&c, &conf, &["--dry-run"]));
    let got = lines(&c, &out);
    assert!(
        got.contains(&"ml-healthcheck: n2: active checks: held (report only: --dry-run): would drain: mlhealth: gpu2 dcgm-diag pcie [replace]".to_string()),
        "{got:?}"
    );
    assert_eq!(sinfo(&c, "n2"), ("idle".into(), "none".into()));
    // The killswitch: every drain held, nothing changed in Slurm.
    let ks = c.dir().join("mlhealth.disable");
    fs::write(&ks, "").unwrap();
    let out = ok(active(&c, &conf, &[]));
    let got = lines(&c, &out);
    println!("{}", got.join("\n"));
    assert!(got.contains(&format!(
        "ml-healthcheck: n1: active checks: held (report only: killswitch {} exists): would drain: mlhealth: gpu2 dcgm-diag pcie [replace]",
        ks.display()
    )), "{got:?}");
    for n in ["n1", "n2", "n3"] {
        assert_eq!(sinfo(&c, n), ("idle".into(), "none".into()), "{n}");
    }
    fs::remove_file(&ks).unwrap();

    // The breaker: at most 2 of 3 nodes may carry our drain; the third is held.
    let capped = config(&c, "capped.json", "\"breaker_max_nodes\": 2,");
    let out = ok(active(&c, &capped, &[]));
    let got = lines(&c, &out);
    println!("{}", got.join("\n"));
    assert!(got.contains(&"ml-healthcheck: n3: active checks: held (circuit breaker open: 2 of 3 nodes already carry ml-healthcheck's drain, at most 2 may): would drain: mlhealth: gpu2 dcgm-diag pcie [replace]".to_string()), "{got:?}");
    assert!(got.contains(&"ml-healthcheck: active: CIRCUIT BREAKER OPEN: 2 of 3 nodes carry ml-healthcheck's drain, at most 2 may: new drains are held".to_string()), "{got:?}");
    assert_eq!(sinfo(&c, "n1").0, "drained");
    assert_eq!(sinfo(&c, "n2").0, "drained");
    assert_eq!(sinfo(&c, "n3"), ("idle".into(), "none".into()));
}

/// A run killed during a retest (a timer's timeout, the host going down) leaves the node
/// resumed inside its reservation: the next run must not let it back into service
/// untested when the reservation ends. It drains it again ("retest interrupted", an item
/// per suite), removes the leftover reservation and retests it.
#[test]
fn a_retest_left_by_a_killed_run_is_drained_again_and_retested() {
    let c = cluster();
    let conf = config(&c, "active.json", "");
    set_mode(&c, "dcgmi", "n1", "fail");
    let out = ok(active(&c, &conf, &[]));
    assert!(
        lines(&c, &out).contains(
            &"ml-healthcheck: n1: active checks: drained: mlhealth: gpu2 dcgm-diag pcie [replace]"
                .to_string()
        ),
        "{}",
        stdout(&out)
    );
    // What a run killed after `open_retest` leaves: the reservation, the node resumed.
    ok(c.run(
        "scontrol",
        [
            "create",
            "reservation",
            "ReservationName=mlhealth_n1",
            "Nodes=n1",
            "StartTime=now",
            "Duration=60",
            "Users=root",
            "Flags=MAINT,IGNORE_JOBS",
        ],
    )
    .unwrap());
    ok(c.run("scontrol", ["update", "NodeName=n1", "State=RESUME"])
        .unwrap());
    // Resumed: idle (24.11 keeps the old reason of a resumed node without accounting
    // storage: clusteracct_storage_g_node_up returns before clearing it; 22.05 and 26.05
    // clear it). What counts is that the node is no longer drained.
    assert_eq!(sinfo(&c, "n1").0, "idle");

    // Still failing: drained again, retested, kept drained with the finding.
    let out = ok(active(&c, &conf, &[]));
    let got = lines(&c, &out);
    println!("{}", got.join("\n"));
    let n1: Vec<&String> = got.iter().filter(|l| l.contains(" n1: ")).collect();
    assert_eq!(
        n1,
        [
            "ml-healthcheck: n1: active: a retest was interrupted (reservation mlhealth_n1 left, the node not drained): drained again: mlhealth: dcgm-diag retest interrupted, nccl retest interrupted",
            "ml-healthcheck: n1: active dcgm-diag: FAIL: gpu2 dcgm-diag pcie [replace]: Detected more than 8 PCIe replays per minute for GPU 2 : 412",
            "ml-healthcheck: n1: active nccl: PASS: busbw 470.73 GB/s at 2147483648 bytes, avg bus bandwidth 448.212 GB/s, 8 x NVIDIA H100 80GB HBM3",
            "ml-healthcheck: n1: active checks: drained, reason now: mlhealth: gpu2 dcgm-diag pcie [replace]",
        ]
    );
    assert_eq!(
        sinfo(&c, "n1"),
        (
            "drained".into(),
            "mlhealth: gpu2 dcgm-diag pcie [replace]".into()
        )
    );
    let resv = stdout(&ok(c.run("scontrol", ["show", "reservation"]).unwrap()));
    assert!(!resv.contains("mlhealth_"), "{resv}");
}

/// A node whose job could not be submitted is a node not handled: its line says why and
/// the run exits 1 (a timer's unit shows it failed).
#[test]
fn a_job_sbatch_refuses_makes_the_run_fail() {
    let c = cluster();
    let conf = config(&c, "active.json", "");
    let text = fs::read_to_string(&conf).unwrap().replace(
        "\"expected_busbw_gbps\"",
        "\"sbatch_args\": [\"--gres=nosuch:1\"], \"expected_busbw_gbps\"",
    );
    fs::write(&conf, text).unwrap();
    let out = active(&c, &conf, &[]);
    let got = lines(&c, &out);
    println!("{}", got.join("\n"));
    assert!(
        got.iter()
            .any(|l| l.starts_with("ml-healthcheck: n1: active: error: sbatch ")),
        "{got:?}"
    );
    assert!(
        got.contains(
            &"ml-healthcheck: n1: active checks: not tested (no job ran): nothing changed"
                .to_string()
        ),
        "{got:?}"
    );
    assert_eq!(out.status.code(), Some(1), "{got:?}");
    assert_eq!(sinfo(&c, "n1"), ("idle".into(), "none".into()));
}

/// `actions.reboot: "hyperpod"` in the active runner: n3's slow all-reduce needs a reboot,
/// asked of HyperPod with `State=FAIL Reason=Action:Reboot`. The runner runs off the node,
/// so it keeps the reboots it asked for in its own history_dir: the same fault after
/// HyperPod put the node back asks for a replacement, not a second reboot (no loop).
#[test]
fn a_fault_the_active_runner_s_reboot_did_not_mend_asks_for_replace() {
    let c = cluster();
    let conf = config(
        &c,
        "active.json",
        "\"actions\": {\"reboot\": \"hyperpod\", \"replace\": \"hyperpod\"},",
    );
    set_mode(&c, "all_reduce_perf", "n3", "slow");
    let reason_of = |node: &str| {
        let shown = stdout(&ok(c
            .run("scontrol", ["show", "node", node, "-o"])
            .unwrap()));
        scontrol_field(&shown, "Reason").unwrap_or_default()
    };

    let out = ok(active(&c, &conf, &[]));
    let got = lines(&c, &out);
    println!("{}", got.join("\n"));
    assert_eq!(sinfo(&c, "n3").0, "fail");
    assert!(
        reason_of("n3").starts_with("Action:Reboot ["),
        "{}",
        reason_of("n3")
    );

    // HyperPod's reboot: the node back in service; the fault is still there.
    ok(c.run("scontrol", ["update", "NodeName=n3", "State=RESUME"])
        .unwrap());
    wait_for(
        "n3 back in service",
        std::time::Duration::from_secs(60),
        || sinfo(&c, "n3").0 == "idle",
        || format!("{:?}", sinfo(&c, "n3")),
    );
    let out = ok(active(&c, &conf, &[]));
    let got = lines(&c, &out);
    println!("{}", got.join("\n"));
    assert!(
        got.iter()
            .any(|l| l.starts_with("ml-healthcheck: n3: active checks: ")
                && l.contains("mlhealth: nccl busbw 68<350 [replace]")
                && l.ends_with("Reason=Action:Replace")),
        "{got:?}"
    );
    assert_eq!(sinfo(&c, "n3").0, "fail");
    assert!(
        reason_of("n3").starts_with("Action:Replace ["),
        "{}",
        reason_of("n3")
    );
    // n1 and n2 passed both times.
    assert_eq!(sinfo(&c, "n1"), ("idle".into(), "none".into()));
    // The replacement is new hardware under the same name: its count starts afresh.
    let history = fs::read_to_string(c.dir().join("mlhealth-history/n3.json")).unwrap();
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history["reboots"], serde_json::json!([]), "{history}");
}
