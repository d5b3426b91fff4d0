//! Micro-benchmark of the engine alone (not a test): per job, reading the four
//! `tres_per_*` strings and judging the job against conf-examples/mlpolicy.json, over a mix
//! of accepted and refused jobs.
//!   cargo run --release -p mlpolicy --example engine_bench [ITERATIONS]

use std::hint::black_box;
use std::time::Instant;

use mlpolicy::config::Policy;
use mlpolicy::engine::{evaluate, Job, Verdict};
use mlpolicy::gres::GpuRequest;

fn main() {
    let iterations: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let text = include_str!("../../../conf-examples/mlpolicy.json");
    let policy = match Policy::parse(text, "mlpolicy.json", &|_| Some(0)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    // (partition, tres_per_job, tres_per_node, tres_per_task, nodes, time)
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        u32,
        Option<u32>,
    );
    let cases: [Case; 6] = [
        (Some("gpu"), None, Some("gres/gpu:8"), None, 4, Some(600)),
        (None, None, Some("gres/gpu:h100:2"), None, 1, None),
        (Some("gpu"), None, None, None, 1, None),
        (Some("cpu"), None, Some("gres:gpu:1"), None, 1, Some(60)),
        (
            Some("interactive"),
            Some("gres/gpu:1"),
            None,
            Some("gres/gpu=1"),
            1,
            None,
        ),
        (
            Some("gpu,cpu"),
            None,
            Some("gres/shard:2,gres/gpu:a100:4"),
            None,
            2,
            Some(30),
        ),
    ];
    let mut refused = 0u64;
    let start = Instant::now();
    for i in 0..iterations {
        let (partition, per_job, per_node, per_task, nodes, time) =
            cases[(i % cases.len() as u64) as usize];
        let Ok(gpus) = GpuRequest::from_tres(
            black_box(per_job),
            black_box(per_node),
            None,
            black_box(per_task),
        ) else {
            continue;
        };
        let job = Job {
            uid: 1001,
            partition: partition.map(str::to_string),
            gpus,
            min_nodes: Some(nodes),
            time_limit: time,
            ..Job::default()
        };
        if matches!(black_box(evaluate(&policy, &job)), Verdict::Refuse(_)) {
            refused += 1;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "engine: {:.0} ns per job (parse 4 tres_per_* strings + evaluate), {iterations} jobs, {:.0}% refused",
        elapsed.as_nanos() as f64 / iterations as f64,
        100.0 * refused as f64 / iterations as f64
    );
}
