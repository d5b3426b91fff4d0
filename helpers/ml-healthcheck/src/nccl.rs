//! nccl-tests' `all_reduce_perf -b 8 -e 8G -f 2 -g N` output on one node: the devices it
//! used, its result table and its summary lines, and the judgement against the expected bus
//! bandwidth of the GPU model. Pure.
//!
//! The threshold is compared with the out-of-place `busbw` of the largest message size,
//! not with `# Avg bus bandwidth`: the average is taken over every size from 8 B, most of
//! which are latency-bound (an 8-GPU A100 node that reaches 238 GB/s at 8 GiB averages 66),
//! so it says more about the size range than about the links. The average is kept as
//! evidence.

use std::collections::BTreeMap;

/// One row of the result table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub bytes: u64,
    /// Out-of-place bus bandwidth, GB/s.
    pub busbw: f64,
    /// Out-of-place and in-place `#wrong` added (`N/A` when not checked: 0).
    pub wrong: u64,
}

/// What `all_reduce_perf` printed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// The devices of the `# Using devices` lines (`NVIDIA H100 80GB HBM3`).
    pub devices: Vec<String>,
    pub rows: Vec<Row>,
    /// `# Out of bounds values : N OK|FAILED`.
    pub out_of_bounds: Option<u64>,
    /// `# Avg bus bandwidth    : X`.
    pub avg_busbw: Option<f64>,
}

/// The device name of a `#  Rank  0 Group  0 Pid 1623025 on host device  0 [0x1b] NVIDIA
/// H100 80GB HBM3` line (older releases have no `Group`; the bus id may be `[0000:18:00]`).
fn device(line: &str) -> Option<String> {
    let rest = line.trim_start().trim_start_matches('#').trim_start();
    if !rest.starts_with("Rank") {
        return None;
    }
    let after = &rest[rest.find(" device ")?..];
    let close = after.find(']')?;
    Some(after[close + 1..].trim().to_string()).filter(|d| !d.is_empty())
}

/// A table row: `size count type redop root time algbw busbw #wrong time algbw busbw
/// #wrong`; mpirun's `[1,0]<stdout>:` prefix is dropped.
fn row(line: &str) -> Option<Row> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.len() < 9 {
        return None;
    }
    let bytes = w[0].parse().ok()?;
    w[1].parse::<u64>().ok()?;
    let busbw = w[7].parse().ok()?;
    let wrong = |s: &str| s.parse::<u64>().unwrap_or(0);
    let in_place = w.get(12).map_or(0, |s| wrong(s));
    Some(Row {
        bytes,
        busbw,
        wrong: wrong(w[8]).saturating_add(in_place),
    })
}

fn summary<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let i = line.find(key)?;
    let rest = line[i + key.len()..].trim_start();
    rest.strip_prefix(':').map(str::trim)
}

/// The line without mpirun's `[1,0]<stdout>:` prefix.
fn unprefixed(line: &str) -> &str {
    match line.find("<stdout>:") {
        Some(i) if line.starts_with('[') => &line[i + "<stdout>:".len()..],
        _ => line,
    }
}

pub fn parse(text: &str) -> Output {
    let mut o = Output::default();
    for line in text.lines().map(unprefixed) {
        if let Some(d) = device(line) {
            o.devices.push(d);
        } else if let Some(v) = summary(line, "# Out of bounds values") {
            o.out_of_bounds = v.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(v) = summary(line, "# Avg bus bandwidth") {
            o.avg_busbw = v.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(r) = row(line) {
            o.rows.push(r);
        }
    }
    o
}

/// The judgement of one run.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass {
        busbw: f64,
        expected: f64,
    },
    /// Wrong results (`#wrong`, out-of-bounds values): the data was corrupted.
    Wrong {
        count: u64,
    },
    Slow {
        busbw: f64,
        expected: f64,
    },
    /// The output cannot be judged (no table, no summary, no expectation for the model).
    Unknown(String),
}

/// The expectation for these devices: for each device, the value of the longest key of
/// `expected` found in its name (`H200 NVL` before `H200`); the lowest over the devices.
pub fn expected_for(devices: &[String], expected: &BTreeMap<String, f64>) -> Result<f64, String> {
    if devices.is_empty() {
        return Err("no '# Using devices' lines: the GPU model is not known".into());
    }
    let mut least: Option<f64> = None;
    for d in devices {
        let Some((_, v)) = expected
            .iter()
            .filter(|(k, _)| d.contains(k.as_str()))
            .max_by_key(|(k, _)| k.len())
        else {
            return Err(format!(
                "no expected_busbw_gbps for {d:?}: add its model (a part of that name) to active.expected_busbw_gbps"
            ));
        };
        least = Some(least.map_or(*v, |l: f64| l.min(*v)));
    }
    least.ok_or_else(|| "no devices".into())
}

pub fn judge(o: &Output, expected: &BTreeMap<String, f64>) -> Verdict {
    let wrong = o
        .rows
        .iter()
        .map(|r| r.wrong)
        .fold(o.out_of_bounds.unwrap_or(0), u64::saturating_add);
    if wrong > 0 {
        return Verdict::Wrong { count: wrong };
    }
    let Some(largest) = o.rows.iter().max_by_key(|r| r.bytes) else {
        return Verdict::Unknown("no result table in all_reduce_perf's output".into());
    };
    // A bandwidth that is not a number is no pass (NaN compares false with everything).
    if !largest.busbw.is_finite() || largest.busbw < 0.0 {
        return Verdict::Unknown(format!("busbw {:?} is not a bandwidth", largest.busbw));
    }
    if o.avg_busbw.is_none() {
        return Verdict::Unknown(
            "all_reduce_perf ended before its '# Avg bus bandwidth' line".into(),
        );
    }
    let want = match expected_for(&o.devices, expected) {
        Ok(w) => w,
        Err(e) => return Verdict::Unknown(e),
    };
    if largest.busbw < want {
        Verdict::Slow {
            busbw: largest.busbw,
            expected: want,
        }
    } else {
        Verdict::Pass {
            busbw: largest.busbw,
            expected: want,
        }
    }
}

/// The evidence line: the largest size's busbw, the average, the model.
pub fn evidence(o: &Output) -> String {
    let largest = o.rows.iter().max_by_key(|r| r.bytes);
    format!(
        "busbw {} GB/s at {} bytes, avg bus bandwidth {} GB/s, {} x {}",
        largest.map_or("?".into(), |r| format!("{:.2}", r.busbw)),
        largest.map_or("?".into(), |r| r.bytes.to_string()),
        o.avg_busbw.map_or("?".into(), |v| v.to_string()),
        o.devices.len(),
        o.devices.first().map_or("?", String::as_str)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = include_str!("../tests/fixtures/nccl-allreduce-h100x8.txt");
    const NVL: &str = include_str!("../tests/fixtures/nccl-allreduce-h200nvl-x8.txt");

    fn h100() -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("H100".to_string(), 350.0),
            ("H200".to_string(), 350.0),
            ("H200 NVL".to_string(), 60.0),
            ("A100".to_string(), 200.0),
        ])
    }

    #[test]
    fn reads_the_devices_the_table_and_the_summary() {
        let o = parse(PASS);
        assert_eq!(o.devices.len(), 8);
        assert_eq!(o.devices[0], "NVIDIA H100 80GB HBM3");
        assert_eq!(o.rows.len(), 4);
        assert_eq!(o.rows[0].bytes, 268_435_456);
        let last = o.rows.last().unwrap();
        assert_eq!((last.bytes, last.busbw), (2_147_483_648, 470.73));
        assert_eq!(o.out_of_bounds, Some(0));
        assert_eq!(o.avg_busbw, Some(448.212));
        // Without the in-place columns (nccl-tests 2.17 with one size).
        let o = parse(NVL);
        assert_eq!(o.devices.len(), 8);
        assert_eq!(o.devices[7], "NVIDIA H200 NVL");
        assert_eq!(o.rows[0].busbw, 68.66);
        assert_eq!(o.avg_busbw, Some(68.6248));
        // mpirun's prefix and a 2-node run.
        let o = parse("[1,0]<stdout>:#  Rank  0 Group  0 Pid  21 on w-0 device  0 [0x0f] NVIDIA A100-SXM4-40GB\n[1,0]<stdout>:  1073741824     268435456     float     sum      -1   344981    3.11    3.11      0   344454    3.12    3.12      0\n[1,0]<stdout>:# Avg bus bandwidth    : 1.15327 \n");
        assert_eq!(o.devices, ["NVIDIA A100-SXM4-40GB"]);
        assert_eq!(o.rows[0].busbw, 3.11);
        assert_eq!(o.avg_busbw, Some(1.15327));
    }

    #[test]
    fn judged_on_both_sides_of_the_threshold() {
        assert_eq!(
            judge(&parse(PASS), &h100()),
            Verdict::Pass {
                busbw: 470.73,
                expected: 350.0
            }
        );
        // An H200 NVL (PCIe cards, NVLink bridges) held to the SXM figure is slow; with
        // its own key it passes.
        let sxm = BTreeMap::from([("H200".to_string(), 350.0)]);
        assert_eq!(
            judge(&parse(NVL), &sxm),
            Verdict::Slow {
                busbw: 68.66,
                expected: 350.0
            }
        );
        assert!(matches!(judge(&parse(NVL), &h100()), Verdict::Pass { .. }));
        let at = BTreeMap::from([("H100".to_string(), 470.73)]);
        assert!(matches!(judge(&parse(PASS), &at), Verdict::Pass { .. }));
        let above = BTreeMap::from([("H100".to_string(), 470.74)]);
        assert!(matches!(judge(&parse(PASS), &above), Verdict::Slow { .. }));
    }

    #[test]
    fn wrong_values_fail_and_what_cannot_be_judged_is_unknown() {
        let wrong = PASS.replace(
            "# Out of bounds values : 0 OK",
            "# Out of bounds values : 3 FAILED",
        );
        assert_eq!(judge(&parse(&wrong), &h100()), Verdict::Wrong { count: 3 });
        // No expectation for the model: unknown, with how to fix it.
        let other = BTreeMap::from([("A100".to_string(), 200.0)]);
        match judge(&parse(PASS), &other) {
            Verdict::Unknown(e) => assert!(e.contains("add its model"), "{e}"),
            v => panic!("{v:?}"),
        }
        // Cut short: no summary.
        let cut: String = PASS.lines().take(18).map(|l| format!("{l}\n")).collect();
        assert!(matches!(judge(&parse(&cut), &h100()), Verdict::Unknown(_)));
        assert!(matches!(judge(&parse(""), &h100()), Verdict::Unknown(_)));
        let nan = PASS.replace("470.73      0   7985.2", "nan      0   7985.2");
        assert!(matches!(judge(&parse(&nan), &h100()), Verdict::Unknown(_)));
        let huge = PASS.replace(
            "# Out of bounds values : 0 OK",
            "# Out of bounds values : 18446744073709551615 FAILED",
        );
        let huge = huge.replacen("419.49      0", "419.49      5", 1);
        assert_eq!(
            judge(&parse(&huge), &h100()),
            Verdict::Wrong { count: u64::MAX }
        );
        // The longest key wins: an H200 NVL is not held to the SXM figure.
        let nvl = vec!["NVIDIA H200 NVL".to_string()];
        assert_eq!(expected_for(&nvl, &h100()), Ok(60.0));
    }
}
