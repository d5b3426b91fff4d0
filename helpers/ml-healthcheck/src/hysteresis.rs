//! `fail_after`: a noisy check (thermal, PCIe width, NVLink counters) drains only after N
//! consecutive runs that found it failing. The count is kept per check and GPU in the
//! state file. Pure: the run's findings and what it judged in, the findings as they count
//! out.
//!
//! - A run that made the check and found it failing adds one; below N its drain findings
//!   count as warnings (said in their detail).
//! - A run that made the check and found it passing starts the count again.
//! - A run that did not make the check (skipped, or UNKNOWN: it could not run) leaves the
//!   count as it is: an error is not a pass, nor a failure.
//! - A drain of ours that already names the check and GPU is kept by a failing run
//!   whatever the count (the count is lost with the state at a reboot: the node must not
//!   be resumed and drained again N runs later).

use std::collections::{BTreeMap, BTreeSet};

use crate::evaluate::{Check, Finding, Judged, Severity};

/// Consecutive failing runs, by `check` or `check/gpuN`.
pub type Streaks = BTreeMap<String, u32>;

fn key(check: Check, gpu: Option<u32>) -> String {
    match gpu {
        Some(g) => format!("{}/gpu{g}", check.name()),
        None => check.name().to_string(),
    }
}

/// Counts this run into `streaks` (`counts`: the run is the periodic health check) and
/// turns the drains of checks still under their `fail_after` into warnings. `ours`: the
/// checks and GPUs our drain on the node names.
///
/// Only the health check counts, as only it moves the error counters' baseline: the
/// prologs and epilogs of many short jobs would reach N within seconds of a passing
/// spike (and pass the count back to 0 between two failing health checks). They judge
/// against the count the health checks made.
pub fn apply(
    findings: &mut [Finding],
    judged: &Judged,
    fail_after: &BTreeMap<Check, u32>,
    streaks: &mut Streaks,
    ours: &BTreeSet<(Check, Option<u32>)>,
    counts: bool,
) {
    let mut scratch;
    let streaks = if counts {
        streaks
    } else {
        scratch = streaks.clone();
        &mut scratch
    };
    // Each (check, GPU) counts once per run, however many findings it has.
    let failing: BTreeSet<(Check, Option<u32>)> = findings
        .iter()
        .filter(|f| f.severity == Severity::Drain && fail_after.contains_key(&f.check))
        .map(|f| (f.check, f.gpu))
        .collect();
    if counts {
        for &(check, gpu) in &failing {
            *streaks.entry(key(check, gpu)).or_insert(0) += 1;
        }
        // Passing runs start again; checks not made keep their count.
        streaks.retain(|k, _| {
            let Some((check, gpu)) = parse_key(k) else {
                return false;
            };
            failing.contains(&(check, gpu)) || !judged.covers(check, gpu)
        });
    }
    for f in findings.iter_mut() {
        let Some(&n) = fail_after.get(&f.check) else {
            continue;
        };
        let count = streaks.get(&key(f.check, f.gpu)).copied().unwrap_or(0);
        if f.severity == Severity::Drain && count < n && !ours.contains(&(f.check, f.gpu)) {
            f.severity = Severity::Warn;
            f.detail = if counts {
                format!(
                    "{} (failing run {count} of the {n} it takes to drain: fail_after)",
                    f.detail
                )
            } else {
                format!(
                    "{} ({count} failing health checks in a row of the {n} it takes to drain: fail_after)",
                    f.detail
                )
            };
        }
    }
}

fn parse_key(k: &str) -> Option<(Check, Option<u32>)> {
    let (name, gpu) = match k.split_once("/gpu") {
        Some((n, g)) => (n, Some(g.parse().ok()?)),
        None => (k, None),
    };
    let check: Check = serde_json::from_value(serde_json::Value::String(name.into())).ok()?;
    Some((check, gpu))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::evaluate::{judge, Context};
    use crate::snapshot::Snapshot;

    const HEALTHY: &str = include_str!("../tests/fixtures/h100x8-healthy.json");

    /// A health check with GPU 7's NVLink 4 down (or not).
    fn run(down: bool) -> (Vec<Finding>, Judged) {
        let mut v: serde_json::Value = serde_json::from_str(HEALTHY).unwrap();
        if down {
            v["gpus"][7]["nvlinks"][4]["active"] = false.into();
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

    fn severities(f: &[Finding]) -> Vec<Severity> {
        f.iter().map(|f| f.severity).collect()
    }

    #[test]
    fn a_check_drains_only_after_n_failing_runs_in_a_row() {
        let after3 = BTreeMap::from([(Check::Nvlink, 3)]);
        let none = BTreeSet::new();
        let mut streaks = Streaks::new();
        let step = |down: bool, streaks: &mut Streaks| {
            let (mut f, j) = run(down);
            apply(&mut f, &j, &after3, streaks, &none, true);
            f
        };
        // Runs 1 and 2 fail: warnings, counted.
        for n in 1..=2 {
            let f = step(true, &mut streaks);
            assert_eq!(severities(&f), [Severity::Warn], "run {n}");
            assert_eq!(
                f[0].detail,
                format!("gpu7 (GPU-5c1e0f2a-8d3b-4f6e-9a7c-000000000007, 00000000:DB:00.0): NVLink 4 is inactive (failing run {n} of the 3 it takes to drain: fail_after)")
            );
        }
        assert_eq!(streaks.get("nvlink/gpu7"), Some(&2));
        // A passing run starts again.
        assert!(step(false, &mut streaks).is_empty());
        assert_eq!(streaks.get("nvlink/gpu7"), None);
        for _ in 1..=2 {
            assert_eq!(severities(&step(true, &mut streaks)), [Severity::Warn]);
        }
        // The third failing run in a row drains.
        assert_eq!(severities(&step(true, &mut streaks)), [Severity::Drain]);
        assert_eq!(streaks.get("nvlink/gpu7"), Some(&3));
    }

    /// Prologs and epilogs judge against the health checks' count and do not move it:
    /// three short jobs in a row must not drain for a check with fail_after 3.
    #[test]
    fn only_the_health_check_counts() {
        let after3 = BTreeMap::from([(Check::Nvlink, 3)]);
        let none = BTreeSet::new();
        let mut streaks = Streaks::from([("nvlink/gpu7".to_string(), 1)]);
        for _ in 0..5 {
            let (mut f, j) = run(true);
            apply(&mut f, &j, &after3, &mut streaks, &none, false);
            assert_eq!(severities(&f), [Severity::Warn]);
            assert!(
                f[0].detail.ends_with(
                    "(1 failing health checks in a row of the 3 it takes to drain: fail_after)"
                ),
                "{}",
                f[0].detail
            );
        }
        // A passing prolog does not start the count again either.
        let (mut f, j) = run(false);
        apply(&mut f, &j, &after3, &mut streaks, &none, false);
        assert_eq!(streaks.get("nvlink/gpu7"), Some(&1));
        // At N (the health checks' count), a prolog's finding drains.
        let mut streaks = Streaks::from([("nvlink/gpu7".to_string(), 3)]);
        let (mut f, j) = run(true);
        apply(&mut f, &j, &after3, &mut streaks, &none, false);
        assert_eq!(severities(&f), [Severity::Drain]);
    }

    #[test]
    fn a_run_that_did_not_make_the_check_keeps_the_count() {
        let after2 = BTreeMap::from([(Check::Nvlink, 2)]);
        let mut streaks = Streaks::from([("nvlink/gpu7".to_string(), 1)]);
        // Nothing judged (the GPU source timed out): the count stays.
        apply(
            &mut [],
            &Judged::default(),
            &after2,
            &mut streaks,
            &BTreeSet::new(),
            true,
        );
        assert_eq!(streaks.get("nvlink/gpu7"), Some(&1));
        let (mut f, j) = run(true);
        apply(&mut f, &j, &after2, &mut streaks, &BTreeSet::new(), true);
        assert_eq!(severities(&f), [Severity::Drain]);
    }

    #[test]
    fn our_drain_for_the_check_stays_whatever_the_count() {
        let after3 = BTreeMap::from([(Check::Nvlink, 3)]);
        let ours = BTreeSet::from([(Check::Nvlink, Some(7))]);
        let mut streaks = Streaks::new();
        let (mut f, j) = run(true);
        apply(&mut f, &j, &after3, &mut streaks, &ours, true);
        assert_eq!(severities(&f), [Severity::Drain]);
        // Checks without fail_after are untouched; a key that no longer reads is dropped.
        let mut streaks = Streaks::from([("no-such-check".to_string(), 4)]);
        let (mut f, j) = run(true);
        apply(
            &mut f,
            &j,
            &BTreeMap::new(),
            &mut streaks,
            &BTreeSet::new(),
            true,
        );
        assert_eq!(severities(&f), [Severity::Drain]);
        assert!(streaks.is_empty());
    }
}
