//! Active checks: suites (`dcgmi diag`, nccl-tests' `all_reduce_perf`) run as Slurm jobs
//! on idle nodes by `ml-healthcheck active`. Pure: the config (`active` in
//! ml-healthcheck.json), the batch script, and the judgement of what a suite left behind
//! (its exit status and output) as an outcome and findings. [`crate::active_run`] submits,
//! waits and acts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::evaluate::{Action, Check, Finding, Judgement, Severity};
use crate::{dcgm, nccl};

/// Which suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `dcgmi diag -r LEVEL --json`.
    DcgmDiag,
    /// `all_reduce_perf -b 8 -e 8G -f 2 -g GPUS` on one node.
    Nccl,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::DcgmDiag => "dcgm-diag",
            Kind::Nccl => "nccl",
        }
    }

    pub fn check(self) -> Check {
        match self {
            Kind::DcgmDiag => Check::DcgmDiag,
            Kind::Nccl => Check::Nccl,
        }
    }
}

/// One suite of `active.suites`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub suite: Kind,
    /// The program, run on the node: a path, or a name looked up on the job's PATH
    /// (default `dcgmi`, `all_reduce_perf`).
    #[serde(default)]
    pub command: Option<String>,
    /// `dcgmi diag -r LEVEL`: 1 (seconds) or 2 (minutes). Default 1.
    #[serde(default)]
    pub level: Option<u8>,
    /// `all_reduce_perf -g GPUS`. Default 8.
    #[serde(default)]
    pub gpus: Option<u32>,
    /// Past this the suite is killed and its outcome is a hang (UNKNOWN).
    pub timeout_s: u64,
}

impl Suite {
    /// The command line the job runs.
    pub fn argv(&self) -> Vec<String> {
        let (default, args): (&str, Vec<String>) = match self.suite {
            Kind::DcgmDiag => (
                "dcgmi",
                vec![
                    "diag".into(),
                    "-r".into(),
                    self.level.unwrap_or(1).to_string(),
                    "--json".into(),
                ],
            ),
            Kind::Nccl => (
                "all_reduce_perf",
                ["-b", "8", "-e", "8G", "-f", "2", "-g"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain([self.gpus.unwrap_or(8).to_string()])
                    .collect(),
            ),
        };
        let mut v = vec![self.command.clone().unwrap_or_else(|| default.into())];
        v.extend(args);
        v
    }
}

/// What a bus bandwidth below the expectation leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slow {
    #[default]
    Drain,
    Warn,
}

/// `active` in ml-healthcheck.json.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveConfig {
    /// The hidden partition the suites run in ...
    #[serde(default)]
    pub partition: Option<String>,
    /// ... or the reservation (exactly one of the two).
    #[serde(default)]
    pub reservation: Option<String>,
    /// `"idle"`: every idle node of the partition or reservation; or a hostlist
    /// (`gpu[01-16]`), of which the idle nodes are tested.
    #[serde(default = "idle")]
    pub nodes: String,
    /// A directory the nodes and this host share: each run writes its scripts there and
    /// the jobs their results.
    pub results_dir: PathBuf,
    pub suites: Vec<Suite>,
    /// The least bus bandwidth (GB/s, out of place, the largest message size) of an
    /// 8-GPU all-reduce per GPU model, by a part of the name nccl-tests prints
    /// (`H100`, `H200 NVL`); the longest part found wins.
    #[serde(default)]
    pub expected_busbw_gbps: BTreeMap<String, f64>,
    /// Below that: drain (default) or warn.
    #[serde(default)]
    pub slow: Slow,
    /// More `sbatch` options for every job (`["--gpus-per-node=8", "--account=ops"]`).
    #[serde(default)]
    pub sbatch_args: Vec<String>,
}

fn idle() -> String {
    "idle".into()
}

/// Names Slurm and the batch script take as they are: no spaces, quotes or separators.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.[],".contains(&b))
}

impl ActiveConfig {
    /// The checks serde cannot make; errors name the key (`origin`: the file).
    pub fn validate(&self, origin: &str) -> Result<(), String> {
        let e = |m: String| Err(format!("{origin}: active.{m}"));
        match (&self.partition, &self.reservation) {
            (Some(_), Some(_)) | (None, None) => {
                return e("partition or active.reservation: give exactly one".into())
            }
            (Some(p), None) if !plain(p) => return e(format!("partition {p:?} is not a name")),
            (None, Some(r)) if !plain(r) => return e(format!("reservation {r:?} is not a name")),
            _ => {}
        }
        if !plain(&self.nodes) {
            return e(format!(
                "nodes {:?} is neither \"idle\" nor a hostlist",
                self.nodes
            ));
        }
        if !self.results_dir.is_absolute() {
            return e("results_dir must be an absolute path".into());
        }
        if let Some(a) = self.sbatch_args.iter().find(|a| !a.starts_with('-')) {
            return e(format!(
                "sbatch_args: {a:?} is not an option (start it with -)"
            ));
        }
        if self.suites.is_empty() {
            return e("suites is empty: name at least one".into());
        }
        for (i, s) in self.suites.iter().enumerate() {
            if s.timeout_s == 0 {
                return e(format!("suites[{i}].timeout_s must be at least 1"));
            }
            if self.suites[..i].iter().any(|o| o.suite == s.suite) {
                return e(format!("suites[{i}]: {} is named twice", s.suite.name()));
            }
            match s.suite {
                Kind::DcgmDiag if s.gpus.is_some() => {
                    return e(format!("suites[{i}].gpus is for nccl"))
                }
                Kind::DcgmDiag if !matches!(s.level, None | Some(1) | Some(2)) => {
                    return e(format!(
                        "suites[{i}].level must be 1 or 2 (3 and 4 take hours: run them by hand)"
                    ))
                }
                Kind::Nccl if s.level.is_some() => {
                    return e(format!("suites[{i}].level is for dcgm-diag"))
                }
                Kind::Nccl if s.gpus == Some(0) => {
                    return e(format!("suites[{i}].gpus must be at least 1"))
                }
                Kind::Nccl if self.expected_busbw_gbps.is_empty() => {
                    return e(
                        "expected_busbw_gbps is empty: the nccl suite needs the bus bandwidth of each GPU model"
                            .into(),
                    )
                }
                _ => {}
            }
        }
        if let Some((k, v)) = self
            .expected_busbw_gbps
            .iter()
            .find(|(k, v)| k.is_empty() || !v.is_finite() || **v <= 0.0)
        {
            return e(format!(
                "expected_busbw_gbps.{k:?} must be a model name with a positive number (got {v})"
            ));
        }
        Ok(())
    }

    /// The job's time limit in minutes: every suite's timeout, plus a minute for the rest.
    pub fn time_limit_minutes(&self) -> u64 {
        let secs: u64 = self
            .suites
            .iter()
            .map(|s| s.timeout_s.saturating_add(10))
            .sum();
        secs.div_ceil(60).saturating_add(1)
    }
}

/// `'text'` for sh.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The batch script: each suite under `timeout` (TERM, then KILL 5 s later), its output in
/// `<dir>/<suite>.out` and `.err`, its exit status in `<dir>/<suite>.rc` once it has ended
/// (a missing `.rc` with an `.out`: it never ended).
pub fn script(suites: &[Suite], dir: &str) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# ml-healthcheck active: one job per node, its suites one after the other.\n",
    );
    s.push_str(&format!("dir={}\n", quote(dir)));
    for suite in suites {
        let name = suite.suite.name();
        let argv: Vec<String> = suite.argv().iter().map(|a| quote(a)).collect();
        s.push_str(&format!(
            "timeout -k 5 {} {} >\"$dir/{name}.out\" 2>\"$dir/{name}.err\" </dev/null\necho $? >\"$dir/{name}.rc.tmp\" && mv \"$dir/{name}.rc.tmp\" \"$dir/{name}.rc\"\n",
            suite.timeout_s,
            argv.join(" ")
        ));
    }
    s
}

/// How a suite ended on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    /// The test found a fault.
    Fail,
    /// Below the expected bandwidth.
    Slow,
    /// Ended without a result that can be judged (non-zero exit, no output): UNKNOWN.
    Crash,
    /// Past its timeout: UNKNOWN.
    Hang,
    /// The job never ran it (it did not start, or ended before): UNKNOWN.
    NotRun,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Slow => "slow",
            Outcome::Crash => "crash",
            Outcome::Hang => "hang",
            Outcome::NotRun => "not-run",
        }
    }

    pub const ALL: [Outcome; 6] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Slow,
        Outcome::Crash,
        Outcome::Hang,
        Outcome::NotRun,
    ];

    /// The suite's check was made: a pass lifts our drain for it, a failure drains.
    pub fn judged(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Fail | Outcome::Slow)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a suite left: its exit status (`None`: no `.rc`, it never ended) and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub rc: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// One suite's result on one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuiteResult {
    pub suite: Kind,
    pub outcome: Outcome,
    pub evidence: String,
    pub findings: Vec<Finding>,
}

fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

fn unknown(suite: &Suite, outcome: Outcome, why: String) -> SuiteResult {
    let f = Finding::unknown(suite.suite.check(), None, why.clone());
    SuiteResult {
        suite: suite.suite,
        outcome,
        evidence: why,
        findings: vec![f],
    }
}

/// The judgement of what `suite` left; `ran`: the job started (else: not run).
pub fn judge(suite: &Suite, left: Option<&Left>, cfg: &ActiveConfig) -> SuiteResult {
    let name = suite.suite.name();
    let Some(left) = left else {
        return unknown(
            suite,
            Outcome::NotRun,
            format!("{name} did not run: the job ended (or never started) before it"),
        );
    };
    // `timeout` exits 124 when it stopped the suite, 137 when it had to kill it.
    match left.rc {
        None | Some(124) | Some(137) => {
            return unknown(
                suite,
                Outcome::Hang,
                format!(
                    "{name} gave no result within {} s (timeout_s): killed",
                    suite.timeout_s
                ),
            )
        }
        Some(_) => {}
    }
    let rc = left.rc.unwrap_or(0);
    let crash = |why: String| {
        let err = last_line(&left.stderr);
        let why = if err.is_empty() {
            why
        } else {
            format!("{why}; stderr: {err}")
        };
        unknown(suite, Outcome::Crash, why)
    };
    match suite.suite {
        Kind::DcgmDiag => match dcgm::parse(&left.stdout) {
            Ok(d) => {
                let findings = dcgm::findings(&d);
                let failed = findings.iter().any(|f| f.severity == Severity::Drain);
                let evidence = match findings.iter().find(|f| f.severity == Severity::Drain) {
                    Some(f) => format!("{}: {}", f.reason, f.evidence),
                    None => format!("{} results, none failed (exit {rc})", d.results),
                };
                SuiteResult {
                    suite: suite.suite,
                    outcome: if failed { Outcome::Fail } else { Outcome::Pass },
                    evidence,
                    findings,
                }
            }
            Err(e) => crash(format!("exit {rc}: {e}")),
        },
        Kind::Nccl => {
            let out = nccl::parse(&left.stdout);
            let evidence = nccl::evidence(&out);
            let (outcome, finding) = match nccl::judge(&out, &cfg.expected_busbw_gbps) {
                nccl::Verdict::Pass { .. } => (Outcome::Pass, None),
                nccl::Verdict::Wrong { count } => (
                    Outcome::Fail,
                    Some((
                        Severity::Drain,
                        Action::Replace,
                        format!("nccl wrong={count}"),
                        format!("all_reduce_perf found {count} wrong values: the GPUs or NVLinks corrupt data"),
                    )),
                ),
                nccl::Verdict::Slow { busbw, expected } => (
                    Outcome::Slow,
                    Some((
                        match cfg.slow {
                            Slow::Drain => Severity::Drain,
                            Slow::Warn => Severity::Warn,
                        },
                        Action::Reboot,
                        format!("nccl busbw {}<{}", busbw.floor(), expected),
                        format!("all-reduce bus bandwidth {busbw} GB/s, below the {expected} GB/s expected (expected_busbw_gbps)"),
                    )),
                ),
                nccl::Verdict::Unknown(e) => {
                    let why = if rc == 0 { e } else { format!("exit {rc}: {e}") };
                    return crash(why);
                }
            };
            let findings = finding
                .map(|(severity, action, short, detail)| {
                    let reason = format!("{short} [{}]", action.name());
                    Finding {
                        severity,
                        check: Check::Nccl,
                        gpu: None,
                        action,
                        reason,
                        detail,
                        evidence: evidence.clone(),
                    }
                })
                .into_iter()
                .collect();
            SuiteResult {
                suite: suite.suite,
                outcome,
                evidence,
                findings,
            }
        }
    }
}

/// The node's judgement from its suites: every finding, and the checks made (a suite
/// that could not be judged is not made: it neither drains nor lifts a drain).
pub fn judgement(results: &[SuiteResult]) -> Judgement {
    let mut j = Judgement::default();
    for r in results {
        j.findings.extend(r.findings.iter().cloned());
        if r.outcome.judged() {
            j.made(r.suite.check(), None);
        }
    }
    j
}

/// Whether a reason of ours names an active check (a drain `active` may retest).
pub fn names_active_check(reason: &str) -> bool {
    crate::reason::items(reason).is_some_and(|items| {
        items
            .iter()
            .any(|i| matches!(i.names, Some((Check::DcgmDiag | Check::Nccl, _))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{decide, NodeInfo};

    const DCGM_PASS: &str = include_str!("../tests/fixtures/dcgm-diag-r2-pass.json");
    const DCGM_PCIE: &str = include_str!("../tests/fixtures/dcgm-diag-r2-fail-pcie.json");
    const NCCL_H100: &str = include_str!("../tests/fixtures/nccl-allreduce-h100x8.txt");

    fn cfg() -> ActiveConfig {
        serde_json::from_str(
            r#"{"partition": "mlhealth", "results_dir": "/shared/mlhealth",
                "suites": [{"suite": "dcgm-diag", "level": 2, "timeout_s": 600},
                           {"suite": "nccl", "gpus": 8, "command": "/opt/nccl-tests/all_reduce_perf", "timeout_s": 300}],
                "expected_busbw_gbps": {"H100": 350, "H200": 350, "A100": 200}}"#,
        )
        .unwrap()
    }

    fn left(rc: Option<i32>, stdout: &str, stderr: &str) -> Left {
        Left {
            rc,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn the_config_is_checked_with_the_key_named() {
        let c = cfg();
        c.validate("c").unwrap();
        assert_eq!(c.nodes, "idle");
        // (600 + 10 + 300 + 10) s is 16 minutes, and one more.
        assert_eq!(c.time_limit_minutes(), 17);
        let bad = |f: &dyn Fn(&mut ActiveConfig), want: &str| {
            let mut c = cfg();
            f(&mut c);
            let e = c.validate("/etc/slurm/ml-healthcheck.json").unwrap_err();
            assert!(
                e.starts_with("/etc/slurm/ml-healthcheck.json: active."),
                "{e}"
            );
            assert!(e.contains(want), "{e}");
        };
        bad(&|c| c.reservation = Some("r".into()), "give exactly one");
        bad(&|c| c.partition = None, "give exactly one");
        bad(&|c| c.partition = Some("a b".into()), "is not a name");
        bad(
            &|c| c.nodes = "n1;reboot".into(),
            "neither \"idle\" nor a hostlist",
        );
        bad(
            &|c| c.results_dir = "rel".into(),
            "results_dir must be an absolute path",
        );
        bad(&|c| c.suites.clear(), "suites is empty");
        bad(&|c| c.suites[0].timeout_s = 0, "suites[0].timeout_s");
        bad(
            &|c| c.suites[0].level = Some(3),
            "suites[0].level must be 1 or 2",
        );
        bad(
            &|c| c.suites[1].level = Some(1),
            "suites[1].level is for dcgm-diag",
        );
        bad(
            &|c| c.suites[1].suite = Kind::DcgmDiag,
            "suites[1]: dcgm-diag is named twice",
        );
        bad(
            &|c| {
                c.suites.remove(0);
                c.suites[0].suite = Kind::DcgmDiag;
            },
            "suites[0].gpus is for nccl",
        );
        bad(
            &|c| c.sbatch_args = vec!["gpus=8".into()],
            "sbatch_args: \"gpus=8\" is not an option",
        );
        bad(
            &|c| c.expected_busbw_gbps.clear(),
            "expected_busbw_gbps is empty",
        );
        bad(
            &|c| {
                c.expected_busbw_gbps.insert("B200".into(), -1.0);
            },
            "expected_busbw_gbps.\"B200\"",
        );
    }

    #[test]
    fn the_script_runs_each_suite_under_its_timeout() {
        let c = cfg();
        assert_eq!(
            script(&c.suites, "/shared/mlhealth/r1/n1"),
            "#!/bin/sh\n# ml-healthcheck active: one job per node, its suites one after the other.\n\
             dir='/shared/mlhealth/r1/n1'\n\
             timeout -k 5 600 'dcgmi' 'diag' '-r' '2' '--json' >\"$dir/dcgm-diag.out\" 2>\"$dir/dcgm-diag.err\" </dev/null\n\
             echo $? >\"$dir/dcgm-diag.rc.tmp\" && mv \"$dir/dcgm-diag.rc.tmp\" \"$dir/dcgm-diag.rc\"\n\
             timeout -k 5 300 '/opt/nccl-tests/all_reduce_perf' '-b' '8' '-e' '8G' '-f' '2' '-g' '8' >\"$dir/nccl.out\" 2>\"$dir/nccl.err\" </dev/null\n\
             echo $? >\"$dir/nccl.rc.tmp\" && mv \"$dir/nccl.rc.tmp\" \"$dir/nccl.rc\"\n"
        );
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn every_outcome() {
        let c = cfg();
        let (dcgm, nccl) = (&c.suites[0], &c.suites[1]);
        let r = judge(dcgm, Some(&left(Some(0), DCGM_PASS, "")), &c);
        assert_eq!((r.outcome, r.findings.len()), (Outcome::Pass, 0));
        // dcgmi exits non-zero on a failed test: the document is judged all the same.
        let r = judge(dcgm, Some(&left(Some(226), DCGM_PCIE, "")), &c);
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.findings[0].reason, "gpu2 dcgm-diag pcie [replace]");
        let r = judge(nccl, Some(&left(Some(0), NCCL_H100, "")), &c);
        assert_eq!(r.outcome, Outcome::Pass);
        assert_eq!(
            r.evidence,
            "busbw 470.73 GB/s at 2147483648 bytes, avg bus bandwidth 448.212 GB/s, 8 x NVIDIA H100 80GB HBM3"
        );
        let slow = NCCL_H100.replace("470.73", "180.37");
        let r = judge(nccl, Some(&left(Some(0), &slow, "")), &c);
        assert_eq!(r.outcome, Outcome::Slow);
        assert_eq!(r.findings[0].reason, "nccl busbw 180<350 [reboot]");
        assert_eq!(r.findings[0].severity, Severity::Drain);
        let mut warn = cfg();
        warn.slow = Slow::Warn;
        let r = judge(nccl, Some(&left(Some(0), &slow, "")), &warn);
        assert_eq!(r.findings[0].severity, Severity::Warn);
        // Crash: non-zero without output; hang: killed by timeout or never ended.
        let r = judge(
            dcgm,
            Some(&left(Some(1), "", "Error: unable to connect\n")),
            &c,
        );
        assert_eq!(r.outcome, Outcome::Crash);
        assert_eq!(r.findings[0].severity, Severity::Unknown);
        assert!(
            r.evidence.ends_with("; stderr: Error: unable to connect"),
            "{}",
            r.evidence
        );
        let r = judge(nccl, Some(&left(Some(139), "# nThread 1\n", "")), &c);
        assert_eq!(r.outcome, Outcome::Crash);
        for rc in [None, Some(124), Some(137)] {
            let r = judge(nccl, Some(&left(rc, "", "")), &c);
            assert_eq!(r.outcome, Outcome::Hang);
            assert_eq!(
                r.evidence,
                "nccl gave no result within 300 s (timeout_s): killed"
            );
        }
        assert_eq!(judge(nccl, None, &c).outcome, Outcome::NotRun);
    }

    #[test]
    fn a_pass_lifts_only_our_active_drain_and_unknown_keeps_it() {
        let c = cfg();
        let pass = judge(&c.suites[0], Some(&left(Some(0), DCGM_PASS, "")), &c);
        let hang = judge(&c.suites[0], Some(&left(None, "", "")), &c);
        let node = |reason: &str| NodeInfo {
            name: "n1".into(),
            state: "IDLE+DRAIN".into(),
            reason: Some(reason.into()),
        };
        let ours = node("mlhealth: gpu2 dcgm-diag pcie [replace]");
        assert!(names_active_check(ours.reason.as_deref().unwrap()));
        use crate::node::Action as A;
        assert_eq!(
            decide(&ours, &judgement(std::slice::from_ref(&pass)), true),
            A::Resume
        );
        assert_eq!(decide(&ours, &judgement(&[hang]), true), A::Nothing);
        // A passive item stays with its drain; an admin's drain is left alone.
        let mixed =
            node("mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu], gpu2 dcgm-diag pcie [replace]");
        assert_eq!(
            decide(&mixed, &judgement(std::slice::from_ref(&pass)), true),
            A::UpdateReason("mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]".into())
        );
        assert!(!names_active_check(
            "mlhealth: gpu1 ecc uncorrectable=2 [reset-gpu]"
        ));
        assert_eq!(
            decide(&node("admin: fan"), &judgement(&[pass]), true),
            A::LeaveOthersDrain
        );
    }

    /// The passive health check never makes an active check: it never lifts its drain.
    #[test]
    fn the_health_check_keeps_an_active_drain() {
        let items = crate::reason::items("mlhealth: nccl busbw 180<350 [reboot]").unwrap();
        assert_eq!(items[0].names, Some((Check::Nccl, None)));
        let passive = crate::evaluate::Judgement::default();
        assert_eq!(
            crate::reason::after(
                Some("mlhealth: nccl busbw 180<350 [reboot]"),
                &[],
                &passive.judged
            ),
            Some("mlhealth: nccl busbw 180<350 [reboot]".into())
        );
    }
}
