//! Properties of the repair tags, `fail_after` and the check statuses, on the healthy 8x
//! H100 fixture with random faults: a tagged drain reason still reads back to the check
//! and GPU of each item (what lifting our drain depends on); a check with `fail_after = N`
//! drains exactly when its last N runs that made it all failed; UNKNOWN never drains.

use std::collections::{BTreeMap, BTreeSet};

use ml_healthcheck::config::Config;
use ml_healthcheck::evaluate::{judge, Action, Check, Context, Finding, Judged, Severity};
use ml_healthcheck::hysteresis::{self, Streaks};
use ml_healthcheck::reason;
use ml_healthcheck::report::{statuses, Status};
use ml_healthcheck::snapshot::Snapshot;
use ml_healthcheck::xid;
use proptest::prelude::*;
use serde_json::{json, Value};

const HEALTHY: &str = include_str!("fixtures/h100x8-healthy.json");

/// One fault on one GPU of the fixture.
fn fault(v: &mut Value, gpu: usize, kind: u8) {
    let g = &mut v["gpus"][gpu];
    match kind {
        0 => g["ecc_volatile_uncorrected"] = json!(3),
        1 => g["remapped_rows_pending"] = json!(true),
        2 => g["remapped_rows_failure"] = json!(true),
        3 => g["retired_pages_pending"] = json!(true),
        4 => g["nvlinks"][1]["active"] = json!(false),
        5 => g["gpu_recovery_action"] = json!(2),
        6 => g["gpu_recovery_action"] = json!(1),
        _ => g["lost"] = json!(true),
    }
}

fn run(faults: &[(usize, u8)]) -> (Vec<Finding>, Judged) {
    let mut v: Value = serde_json::from_str(HEALTHY).unwrap();
    for &(gpu, kind) in faults {
        fault(&mut v, gpu, kind);
    }
    let snap = Snapshot::from_json(&v.to_string(), "fixture").unwrap();
    let ctx = Context {
        kmsg_read: true,
        node_without_jobs: true,
        ..Context::default()
    };
    let j = judge(&snap, &[], &Config::default(), &ctx);
    (j.findings, j.judged)
}

proptest! {
    /// Every item of the reason we write, tags and all, names the check and GPU of a
    /// drain finding; the tag is the finding's action, which the NVML recovery action
    /// of its GPU decides where there is one.
    #[test]
    fn tagged_reasons_read_back(faults in prop::collection::vec((0usize..8, 0u8..8), 1..4)) {
        let (findings, _) = run(&faults);
        let drains: Vec<&Finding> = findings.iter().filter(|f| f.severity == Severity::Drain).collect();
        prop_assert!(!drains.is_empty());
        let r = reason::format(drains.iter().map(|f| f.reason.as_str())).unwrap();
        let items = reason::items(&r).unwrap();
        for item in items.iter().filter(|i| !i.text.starts_with('+')) {
            let f = drains.iter().find(|f| f.reason == item.text).unwrap();
            prop_assert_eq!(item.names, Some((f.check, f.gpu)));
            match f.action {
                Action::Monitor => prop_assert!(!f.reason.ends_with(']')),
                a => {
                    let tag = format!(" [{}]", a.name());
                    prop_assert!(f.reason.ends_with(&tag));
                }
            }
        }
        for f in &drains {
            let nvml = faults
                .iter()
                .filter(|&&(g, k)| g as u32 == f.gpu.unwrap_or(u32::MAX) && (k == 5 || k == 6))
                .map(|&(_, k)| if k == 5 { 2 } else { 1 })
                .next_back();
            // The last fault written on a GPU is its recovery action; lost GPUs have none.
            if let (Some(v), false) = (nvml, f.check == Check::GpuLost) {
                prop_assert_eq!(Some(f.action), xid::recovery_action(v));
            }
        }
    }

    /// fail_after = n: a run's NVLink drain on GPU 7 counts only when the runs that made
    /// the check, back to the last passing one, are at least n failing ones; runs that
    /// did not make it (UNKNOWN) change nothing.
    #[test]
    fn fail_after_counts_consecutive_failing_runs(n in 1u32..5, runs in prop::collection::vec(0u8..3, 1..12)) {
        let fail_after = BTreeMap::from([(Check::Nvlink, n)]);
        let mut streaks = Streaks::new();
        let mut failing = 0u32;
        for r in runs {
            let (mut findings, judged) = match r {
                0 => run(&[]),
                1 => run(&[(7, 4)]),
                _ => (Vec::new(), Judged::default()),
            };
            hysteresis::apply(&mut findings, &judged, &fail_after, &mut streaks, &BTreeSet::new(), true);
            match r {
                0 => failing = 0,
                1 => failing += 1,
                _ => {}
            }
            let drains = findings.iter().filter(|f| f.severity == Severity::Drain).count();
            prop_assert_eq!(drains, usize::from(r == 1 && failing >= n));
        }
    }

    /// UNKNOWN never drains and never reads as ok; a check's status is its worst finding.
    #[test]
    fn statuses_are_the_worst_finding(faults in prop::collection::vec((0usize..8, 0u8..8), 0..4), why in "[a-z ]{1,20}") {
        let (mut findings, judged) = run(&faults);
        findings.push(Finding::unknown(Check::Xid, None, why));
        let s = statuses(&findings, &judged);
        prop_assert_eq!(s.get(&Check::Xid), Some(&Status::Unknown));
        for f in &findings {
            let want = match f.severity {
                Severity::Drain => Status::Fail,
                Severity::Warn => Status::Warn,
                Severity::Unknown => Status::Unknown,
            };
            prop_assert!(s[&f.check] >= want);
        }
        prop_assert!(reason::format(findings.iter().filter(|f| f.severity == Severity::Drain).map(|f| f.reason.as_str())).is_none_or(|r| !r.contains("unknown")));
    }
}
