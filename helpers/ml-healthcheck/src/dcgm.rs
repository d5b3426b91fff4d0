//! `dcgmi diag -r 1|2 --json`: DCGM's diagnostic result document, judged. Pure.
//!
//! The document (DCGM's nvvs `JsonOutput.h`): one top-level object (`"DCGM GPU
//! Diagnostic"`; `"DCGM Diagnostic"` in DCGM 4) holding `test_categories`, each with
//! `tests`, each with `results`: a `status` (`PASS`, `FAIL`, `WARN`, `SKIP`; DCGM 4 writes
//! `Pass`, `Fail`), the GPUs (`gpu_ids`: `"2"` or `"0,1,2,3"` for the deployment tests;
//! `gpu_id`; DCGM 4 `entity_id`), and `warnings` (strings, or objects with `warning`) or
//! DCGM 4 `errors` (objects with `message`). A `runtime_error` means the diagnostic did not
//! run. The document is judged whatever `dcgmi` exits with: it exits non-zero when a test
//! fails, and its exit code alone does not say which.

use serde_json::Value;

use crate::evaluate::{Action, Check, Finding, Severity};

/// One test result that is not a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `pcie`, `gpu-memory`, `persistence-mode`: the test's name in a drain reason.
    pub test: String,
    /// One GPU; `None` for a result on several (the deployment tests).
    pub gpu: Option<u32>,
    pub failed: bool,
    pub message: String,
}

/// What the document says: the problems, and how many results were read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diag {
    pub problems: Vec<Problem>,
    pub results: usize,
    /// Results that passed: a run whose every test was skipped proves nothing.
    pub passed: usize,
}

/// The test's name as a drain reason word: lower case, runs of anything else one `-`.
pub fn short_name(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_string()
}

/// The repair a failed test asks for: the deployment checks (software, configuration,
/// driver state) a reboot; pending page retirement or row remapping a GPU reset; the
/// inforom and every hardware test (memory, PCIe, stress, power, bandwidth) new hardware.
pub fn action_of(test: &str) -> Action {
    match test {
        "page-retirement-row-remap" => Action::ResetGpu,
        "inforom" => Action::Replace,
        "denylist"
        | "nvml-library"
        | "cuda-main-library"
        | "cuda-sdk-library"
        | "permissions-and-os-related-blocks"
        | "permissions-and-os-blocks"
        | "persistence-mode"
        | "environmental-variables"
        | "environment-variables"
        | "environment"
        | "graphics-processes"
        | "software"
        | "context-create" => Action::Reboot,
        _ => Action::Replace,
    }
}

fn gpu_of(r: &Value) -> Option<u32> {
    let v = r
        .get("gpu_ids")
        .or_else(|| r.get("gpu_id"))
        .or_else(|| r.get("entity_id"))?;
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn message_of(r: &Value) -> String {
    let texts = |key: &str, field: &str| -> Vec<String> {
        r.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|w| match w {
                        Value::String(s) => Some(s.clone()),
                        o => o.get(field).and_then(Value::as_str).map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut all = texts("warnings", "warning");
    all.extend(texts("errors", "message"));
    all.join("; ")
}

/// The categories array, under whichever top-level key holds it.
fn categories(doc: &Value) -> Result<&Vec<Value>, String> {
    let obj = doc
        .as_object()
        .ok_or("dcgmi diag --json printed no JSON object")?;
    for inner in obj.values() {
        if let Some(e) = inner.get("runtime_error").and_then(Value::as_str) {
            return Err(format!("DCGM could not run the diagnostic: {e}"));
        }
        if let Some(c) = inner.get("test_categories").and_then(Value::as_array) {
            return Ok(c);
        }
    }
    Err("no test_categories in dcgmi diag's JSON".into())
}

/// Reads the document; `Err` when it cannot be judged (not JSON, no results, DCGM's own
/// runtime error).
pub fn parse(text: &str) -> Result<Diag, String> {
    let doc: Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("not dcgmi's JSON: {e}"))?;
    let mut d = Diag::default();
    for cat in categories(&doc)? {
        let tests = cat.get("tests").and_then(Value::as_array);
        for t in tests.into_iter().flatten() {
            let name = short_name(t.get("name").and_then(Value::as_str).unwrap_or("unnamed"));
            let results = t.get("results").and_then(Value::as_array);
            for r in results.into_iter().flatten() {
                d.results += 1;
                let status = r
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_uppercase();
                let failed = match status.as_str() {
                    "FAIL" => true,
                    "WARN" => false,
                    "PASS" => {
                        d.passed += 1;
                        continue;
                    }
                    _ => continue,
                };
                d.problems.push(Problem {
                    test: name.clone(),
                    gpu: gpu_of(r),
                    failed,
                    message: message_of(r),
                });
            }
        }
    }
    if d.results == 0 {
        return Err("dcgmi diag's JSON holds no test results".into());
    }
    if d.passed == 0 && d.problems.is_empty() {
        return Err(format!(
            "every one of the {} results in dcgmi diag's JSON was skipped",
            d.results
        ));
    }
    Ok(d)
}

/// The findings: a failed test drains (`gpu2 dcgm-diag pcie [replace]`), a warning warns.
pub fn findings(d: &Diag) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for p in &d.problems {
        let (severity, action) = if p.failed {
            (Severity::Drain, action_of(&p.test))
        } else {
            (Severity::Warn, Action::Monitor)
        };
        let gpu = p.gpu.map_or(String::new(), |g| format!("gpu{g} "));
        let tag = match action {
            Action::Monitor => String::new(),
            a => format!(" [{}]", a.name()),
        };
        let reason = format!("{gpu}dcgm-diag {}{tag}", p.test);
        if out.iter().any(|f| f.reason == reason) {
            continue;
        }
        let word = if p.failed { "failed" } else { "warned" };
        out.push(Finding {
            severity,
            check: Check::DcgmDiag,
            gpu: p.gpu,
            action,
            reason,
            detail: format!("{gpu}DCGM diagnostic test {} {word}: {}", p.test, p.message),
            evidence: p.message.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = include_str!("../tests/fixtures/dcgm-diag-r2-pass.json");
    const PCIE: &str = include_str!("../tests/fixtures/dcgm-diag-r2-fail-pcie.json");
    const PERSISTENCE: &str = include_str!("../tests/fixtures/dcgm-diag-r1-persistence-fail.json");

    #[test]
    fn a_pass_has_no_findings_and_a_failed_test_drains_its_gpu() {
        let d = parse(PASS).unwrap();
        assert_eq!(d.results, 9 + 3 * 8);
        assert!(findings(&d).is_empty());
        let f = findings(&parse(PCIE).unwrap());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Drain);
        assert_eq!(f[0].gpu, Some(2));
        assert_eq!(f[0].reason, "gpu2 dcgm-diag pcie [replace]");
        assert_eq!(
            f[0].evidence,
            "Detected more than 8 PCIe replays per minute for GPU 2 : 412"
        );
    }

    #[test]
    fn a_deployment_failure_is_the_nodes_and_asks_for_a_reboot() {
        let f = findings(&parse(PERSISTENCE).unwrap());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].gpu, None);
        assert_eq!(f[0].reason, "dcgm-diag persistence-mode [reboot]");
        assert!(f[0].evidence.starts_with("Persistence mode for GPU 1"));
    }

    #[test]
    fn dcgm_4_words_warnings_and_what_cannot_be_judged() {
        let doc = r#"{"DCGM Diagnostic": {"test_categories": [{"category": "Hardware", "tests": [
            {"name": "memory", "results": [{"entity_group": "GPU", "entity_id": 5, "status": "Fail",
              "errors": [{"error_id": 95, "message": "ECC DBE on GPU 5"}]}]},
            {"name": "Targeted Power", "results": [{"gpu_id": "1", "status": "Warn", "warnings": [{"warning": "power low", "error_id": 1}]}]}]}]}}"#;
        let f = findings(&parse(doc).unwrap());
        assert_eq!(f[0].reason, "gpu5 dcgm-diag memory [replace]");
        assert_eq!(f[0].evidence, "ECC DBE on GPU 5");
        assert_eq!(f[1].severity, Severity::Warn);
        assert_eq!(f[1].reason, "gpu1 dcgm-diag targeted-power");
        for bad in [
            "",
            "Error: unable to connect to host engine",
            "{}",
            r#"{"DCGM GPU Diagnostic": {"runtime_error": "nv-hostengine is not running"}}"#,
            r#"{"DCGM GPU Diagnostic": {"test_categories": []}}"#,
            r#"{"DCGM GPU Diagnostic": {"test_categories": [{"tests": [{"name": "PCIe", "results": [{"gpu_ids": "0", "status": "SKIP"}]}]}]}}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(short_name("PCIe - GPU Bandwidth"), "pcie-gpu-bandwidth");
        assert_eq!(
            short_name("Page Retirement/Row Remap"),
            "page-retirement-row-remap"
        );
        assert_eq!(action_of("page-retirement-row-remap"), Action::ResetGpu);
    }
}
