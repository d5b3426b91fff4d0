//! The evaluator on JSON fixtures: a healthy 8x H100 node (the shape NVML reports on a
//! p5/DGX H100), each check triggered by changing one field of it, and each threshold on
//! both sides of its limit.

use std::collections::BTreeSet;

use ml_healthcheck::config::Config;
use ml_healthcheck::evaluate::{
    drain_reason, evaluate, judge, Check, Context, Finding, Judgement, Severity,
};
use ml_healthcheck::kmsg;
use ml_healthcheck::reason;
use ml_healthcheck::snapshot::Snapshot;
use ml_healthcheck::xid::Xid;
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn healthy() -> Value {
    serde_json::from_str(&fixture("h100x8-healthy.json")).unwrap()
}

fn snap(v: &Value) -> Snapshot {
    Snapshot::from_json(&v.to_string(), "fixture").unwrap()
}

/// The healthy fixture with `field` of GPU `gpu` set to `value`.
fn with(gpu: usize, field: &str, value: Value) -> Snapshot {
    let mut v = healthy();
    v["gpus"][gpu][field] = value;
    snap(&v)
}

fn check(s: &Snapshot, cfg: &Config) -> Vec<(Severity, String)> {
    check_ctx(s, &[], cfg, &Context::default())
}

fn check_ctx(s: &Snapshot, xids: &[Xid], cfg: &Config, ctx: &Context) -> Vec<(Severity, String)> {
    evaluate(s, xids, cfg, ctx)
        .into_iter()
        .map(|f: Finding| (f.severity, f.reason))
        .collect()
}

use Severity::{Drain, Warn};

fn d(r: &str) -> (Severity, String) {
    (Drain, r.to_string())
}

fn w(r: &str) -> (Severity, String) {
    (Warn, r.to_string())
}

#[test]
fn a_healthy_node_has_no_findings() {
    let cfg = Config {
        expect_gpus: Some(8),
        ..Config::default()
    };
    assert_eq!(check(&snap(&healthy()), &cfg), vec![]);
}

#[test]
fn fewer_gpus_than_expected_drains() {
    let mut v = healthy();
    v["gpus"].as_array_mut().unwrap().truncate(7);
    let s = snap(&v);
    let cfg = Config::default();
    assert_eq!(check(&s, &cfg), vec![], "no expectation, no finding");
    let ctx = Context {
        expect_gpus: Some(8),
        ..Context::default()
    };
    assert_eq!(check_ctx(&s, &[], &cfg, &ctx), vec![d("gpus 7/8 [reboot]")]);
    // --expect-gpus wins over the config.
    let cfg = Config {
        expect_gpus: Some(4),
        ..Config::default()
    };
    assert_eq!(check_ctx(&s, &[], &cfg, &ctx), vec![d("gpus 7/8 [reboot]")]);
    assert_eq!(check(&s, &cfg), vec![]);
}

#[test]
fn no_driver_drains_only_where_gpus_are_expected() {
    let s = snap(&json!({"nvml_error": "libnvidia-ml.so.1 cannot be loaded"}));
    assert_eq!(check(&s, &Config::default()), vec![]);
    let cfg = Config {
        expect_gpus: Some(8),
        ..Config::default()
    };
    assert_eq!(check(&s, &cfg), vec![d("nvml unavailable [reboot]")]);
    let f = evaluate(&s, &[], &cfg, &Context::default());
    assert_eq!(
        f[0].detail,
        "NVML cannot be used (libnvidia-ml.so.1 cannot be loaded) but this node should have GPUs"
    );
}

#[test]
fn a_lost_gpu_drains() {
    let s = with(3, "lost", json!(true));
    assert_eq!(check(&s, &Config::default()), vec![d("gpu3 lost [reboot]")]);
    let s = with(2, "error", json!("Unknown Error"));
    assert_eq!(
        check(&s, &Config::default()),
        vec![d("gpu2 unusable [reboot]")]
    );
}

#[test]
fn ecc_and_retired_pages_thresholds() {
    let cfg = Config::default();
    assert_eq!(
        check(&with(1, "ecc_volatile_uncorrected", json!(2)), &cfg),
        vec![d("gpu1 ecc uncorrectable=2 [reset-gpu]")]
    );
    let lenient = Config {
        ecc_uncorrected_max: 2,
        ..Config::default()
    };
    assert_eq!(
        check(&with(1, "ecc_volatile_uncorrected", json!(2)), &lenient),
        vec![]
    );
    assert_eq!(
        check(&with(1, "ecc_volatile_corrected", json!(5000)), &cfg),
        vec![]
    );
    assert_eq!(
        check(&with(4, "retired_pages_dbe", json!(1)), &cfg),
        vec![d("gpu4 retired dbe=1 [replace]")]
    );
    // Single-bit retirements alone drain only at the limit (63).
    assert_eq!(
        check(&with(4, "retired_pages_sbe", json!(62)), &cfg),
        vec![]
    );
    assert_eq!(
        check(&with(4, "retired_pages_sbe", json!(63)), &cfg),
        vec![d("gpu4 retired pages=63 [replace]")]
    );
    assert_eq!(
        check(&with(0, "retired_pages_pending", json!(true)), &cfg),
        vec![d("gpu0 retirement pending [reset-gpu]")]
    );
    // Not supported (Ampere and later do not retire pages): null is no finding.
    assert_eq!(
        check(&with(0, "retired_pages_pending", Value::Null), &cfg),
        vec![]
    );
}

#[test]
fn row_remapping() {
    let cfg = Config::default();
    assert_eq!(
        check(&with(5, "remapped_rows_pending", json!(true)), &cfg),
        vec![d("gpu5 row remap pending [reset-gpu]")]
    );
    assert_eq!(
        check(&with(5, "remapped_rows_failure", json!(true)), &cfg),
        vec![d("gpu5 row remap failed [replace]")]
    );
    // Remapped rows that succeeded are the mechanism working.
    assert_eq!(
        check(&with(5, "remapped_rows_uncorrectable", json!(3)), &cfg),
        vec![]
    );
}

#[test]
fn pcie_links() {
    let cfg = Config::default();
    assert_eq!(
        check(&with(6, "pcie_width", json!(8)), &cfg),
        vec![w("gpu6 pcie x8/x16")]
    );
    // Idle GPUs lower their link generation: only checked when asked.
    assert_eq!(check(&with(6, "pcie_gen", json!(1)), &cfg), vec![]);
    let strict = Config {
        pcie_gen: true,
        ..Config::default()
    };
    assert_eq!(
        check(&with(6, "pcie_gen", json!(4)), &strict),
        vec![w("gpu6 pcie gen4/gen5")]
    );
    let off = Config {
        pcie_width: false,
        ..Config::default()
    };
    assert_eq!(check(&with(6, "pcie_width", json!(8)), &off), vec![]);
}

#[test]
fn nvlinks() {
    let cfg = Config::default();
    let mut v = healthy();
    v["gpus"][7]["nvlinks"][4]["active"] = json!(false);
    assert_eq!(
        check(&snap(&v), &cfg),
        vec![d("gpu7 nvlink4 down [reset-gpu]")]
    );
    let warn_only = Config {
        nvlink_inactive_drains: false,
        ..Config::default()
    };
    assert_eq!(
        check(&snap(&v), &warn_only),
        vec![w("gpu7 nvlink4 down [reset-gpu]")]
    );
    let mut v = healthy();
    v["gpus"][7]["nvlinks"][2]["replay_errors"] = json!(12);
    v["gpus"][7]["nvlinks"][3]["recovery_errors"] = json!(1);
    assert_eq!(
        check(&snap(&v), &cfg),
        vec![w("gpu7 nvlink2 replay=12"), w("gpu7 nvlink3 recovery=1")]
    );
    let lenient = Config {
        nvlink_errors_max: 12,
        ..Config::default()
    };
    assert_eq!(check(&snap(&v), &lenient), vec![]);
}

#[test]
fn temperature_at_the_slowdown_threshold_warns() {
    let cfg = Config::default();
    assert_eq!(check(&with(2, "temperature_c", json!(86)), &cfg), vec![]);
    assert_eq!(
        check(&with(2, "temperature_c", json!(87)), &cfg),
        vec![w("gpu2 temp 87C")]
    );
}

#[test]
fn prolog_finds_processes_on_the_jobs_gpus_only() {
    let s = with(1, "compute_pids", json!([4242]));
    let cfg = Config::default();
    let prolog = |gpus: Vec<u32>| Context {
        prolog: true,
        job_gpus: Some(gpus),
        ..Context::default()
    };
    assert_eq!(
        check_ctx(&s, &[], &cfg, &prolog(vec![0, 1])),
        vec![d("gpu1 busy")]
    );
    assert_eq!(check_ctx(&s, &[], &cfg, &prolog(vec![2, 3])), vec![]);
    // Outside the prolog a busy GPU is a running job, not a problem.
    assert_eq!(check(&s, &cfg), vec![]);
    let f = evaluate(&s, &[], &cfg, &prolog(vec![1]));
    assert!(
        f[0].detail
            .ends_with("compute processes already on the job's GPU before it starts: pid 4242"),
        "{}",
        f[0].detail
    );
}

#[test]
fn critical_xids_from_a_real_kernel_log_drain_the_gpu_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kmsg");
    std::fs::write(&log, fixture("kmsg-xid79")).unwrap();
    let scan = kmsg::scan(&log).unwrap();
    assert_eq!(scan.last_seq, Some(1933));
    let cfg = Config::default();
    let s = snap(&healthy());
    // XID 13 (an application fault) is not critical by default.
    let f = evaluate(&s, &scan.xids, &cfg, &Context::default());
    assert_eq!(
        f.iter()
            .map(|f| (f.severity, f.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![(Drain, "gpu2 xid79 [reboot]")]
    );
    assert_eq!(
        f[0].detail,
        "gpu2 (GPU-5c1e0f2a-8d3b-4f6e-9a7c-000000000002, 00000000:3A:00.0): XID 79 in the kernel log (5824 s after boot): GPU has fallen off the bus."
    );
    let all = Config {
        critical_xids: vec![13, 79],
        ..Config::default()
    };
    assert_eq!(
        check_ctx(&s, &scan.xids, &all, &Context::default()),
        vec![d("gpu2 xid79 [reboot]"), d("gpu4 xid13")]
    );
    // A GPU that is gone from NVML is named by its PCI address.
    let mut v = healthy();
    v["gpus"].as_array_mut().unwrap().remove(2);
    assert_eq!(
        check_ctx(&snap(&v), &scan.xids, &cfg, &Context::default()),
        vec![d("xid79 pci 0000:3a:00 [reboot]")]
    );
}

#[test]
fn the_drain_reason_is_short_and_names_the_problems() {
    let mut v = healthy();
    v["gpus"][3]["lost"] = json!(true);
    v["gpus"][1]["ecc_volatile_uncorrected"] = json!(4);
    v["gpus"][2]["temperature_c"] = json!(90);
    let f = evaluate(&snap(&v), &[], &Config::default(), &Context::default());
    assert_eq!(
        drain_reason(&f).as_deref(),
        Some("mlhealth: gpu1 ecc uncorrectable=4 [reset-gpu], gpu3 lost [reboot]")
    );
    assert_eq!(drain_reason(&[]), None);
    let mut v = healthy();
    for g in 0..8 {
        v["gpus"][g]["remapped_rows_pending"] = json!(true);
    }
    let r = drain_reason(&evaluate(
        &snap(&v),
        &[],
        &Config::default(),
        &Context::default(),
    ))
    .unwrap();
    assert!(r.len() <= 100, "{r}");
    assert!(
        r.starts_with(
            "mlhealth: gpu0 row remap pending [reset-gpu], gpu1 row remap pending [reset-gpu]"
        ),
        "{r}"
    );
    assert!(r.ends_with(" more"), "{r}");
}

#[test]
fn a_health_check_finds_leftover_processes_on_a_node_without_jobs() {
    let s = with(1, "compute_pids", json!([4242, 4243]));
    let idle = Context {
        node_without_jobs: true,
        ..Context::default()
    };
    let f = evaluate(&s, &[], &Config::default(), &idle);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].reason, "gpu1 busy");
    assert!(
        f[0].detail
            .ends_with("compute processes on a GPU of a node that runs no job: pid 4242, 4243"),
        "{}",
        f[0].detail
    );
}

#[test]
fn hardware_throttling_warns_and_the_power_cap_does_not() {
    let cfg = Config::default();
    assert_eq!(
        check(&with(3, "throttle_reasons", json!(["sw_power_cap"])), &cfg),
        vec![]
    );
    assert_eq!(
        check(
            &with(
                3,
                "throttle_reasons",
                json!(["hw_slowdown", "hw_power_brake_slowdown", "sw_power_cap"])
            ),
            &cfg
        ),
        vec![w("gpu3 throttle hw_slowdown+hw_power_brake_slowdown")]
    );
    let off = Config {
        hw_throttle: false,
        ..Config::default()
    };
    assert_eq!(
        check(&with(3, "throttle_reasons", json!(["hw_slowdown"])), &off),
        vec![]
    );
}

/// Every drain finding, each check triggered once: the fixture with a problem on each GPU,
/// the XIDs of the kernel-log fixture (one of them for a GPU NVML no longer lists), one
/// GPU short of the count, and busy GPUs judged on a node without jobs.
fn every_drain() -> Judgement {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kmsg");
    std::fs::write(&log, fixture("kmsg-xid79")).unwrap();
    let mut xids = kmsg::scan(&log).unwrap().xids;
    let mut gone = xids[0].clone();
    gone.pci = "0000:ee:00".into();
    xids.push(gone);
    let mut v = healthy();
    let gpus = &mut v["gpus"];
    gpus[0]["retired_pages_pending"] = json!(true);
    gpus[1]["ecc_volatile_uncorrected"] = json!(2);
    gpus[2]["error"] = json!("Unknown Error");
    gpus[3]["lost"] = json!(true);
    gpus[4]["retired_pages_dbe"] = json!(1);
    gpus[4]["retired_pages_sbe"] = json!(70);
    gpus[5]["remapped_rows_failure"] = json!(true);
    gpus[5]["remapped_rows_pending"] = json!(true);
    gpus[6]["compute_pids"] = json!([4242]);
    gpus[7]["nvlinks"][4]["active"] = json!(false);
    let ctx = Context {
        expect_gpus: Some(9),
        node_without_jobs: true,
        kmsg_read: true,
        ..Context::default()
    };
    judge(&snap(&v), &xids, &Config::default(), &ctx)
}

/// A later run reads our drain reason back to know which checks it stands on: each item
/// names the check and GPU of the finding that wrote it, and the run that found it made
/// that check.
#[test]
fn each_item_of_the_drain_reason_names_its_check_and_gpu() {
    let j = every_drain();
    let drains: Vec<&Finding> = j.findings.iter().filter(|f| f.severity == Drain).collect();
    let checks: BTreeSet<Check> = drains.iter().map(|f| f.check).collect();
    assert_eq!(
        checks.into_iter().map(Check::name).collect::<Vec<_>>(),
        [
            "gpu-count",
            "xid",
            "gpu-lost",
            "gpu-error",
            "ecc",
            "retired-pages",
            "remapped-rows",
            "nvlink",
            "busy"
        ],
        "every check that drains (nvml: below)"
    );
    for f in drains {
        let reason = drain_reason(std::slice::from_ref(f)).unwrap();
        let items = reason::items(&reason).unwrap();
        assert_eq!(
            items,
            vec![reason::Item {
                text: &f.reason,
                names: Some((f.check, f.gpu)),
            }],
            "{reason}"
        );
        assert!(j.judged.covers(f.check, f.gpu), "{reason}");
    }
    let s = snap(&json!({"nvml_error": "libnvidia-ml.so.1 cannot be loaded"}));
    let ctx = Context {
        expect_gpus: Some(8),
        ..Context::default()
    };
    let j = judge(&s, &[], &Config::default(), &ctx);
    let reason = drain_reason(&j.findings).unwrap();
    assert_eq!(
        reason::items(&reason).unwrap()[0].names,
        Some((Check::Nvml, None))
    );
    // Without NVML nothing else is judged.
    assert!(!j.judged.covers(Check::Ecc, Some(1)) && !j.judged.complete());
}
