use super::*;

fn e(t: Option<&str>, count: u64) -> GpuEntry {
    GpuEntry {
        gpu_type: t.map(str::to_string),
        count,
    }
}

#[test]
fn every_form_slurm_uses() {
    assert_eq!(gpu_entries("gres:gpu:4").unwrap(), [e(None, 4)]); // 22.05
    assert_eq!(gpu_entries("gres/gpu:4").unwrap(), [e(None, 4)]); // 23.11+
    assert_eq!(
        gpu_entries("gres/gpu:h100:4").unwrap(),
        [e(Some("h100"), 4)]
    );
    assert_eq!(
        gpu_entries("gres:gpu:a100_80gb:2").unwrap(),
        [e(Some("a100_80gb"), 2)]
    );
    assert_eq!(gpu_entries("gres/gpu=1").unwrap(), [e(None, 1)]); // tres_per_task
    assert_eq!(
        gpu_entries("gres/gpu:h100=2").unwrap(),
        [e(Some("h100"), 2)]
    );
    assert_eq!(gpu_entries("gres/gpu").unwrap(), [e(None, 1)]);
    assert_eq!(gpu_entries("gres/gpu:h100").unwrap(), [e(Some("h100"), 1)]);
    assert_eq!(gpu_entries("gpu:2").unwrap(), [e(None, 2)]);
    assert_eq!(
        gpu_entries("gres/gpu:2,gres/gpu:1").unwrap(),
        [e(None, 2), e(None, 1)]
    );
    assert_eq!(
        gpu_entries("gres/shard:4,gres/gpu:h100:8,license/x:1").unwrap(),
        [e(Some("h100"), 8)]
    );
    assert_eq!(gpu_entries("gres/gpu:0").unwrap(), [e(None, 0)]);
    assert_eq!(gpu_entries("gres/gpu:1k").unwrap(), [e(None, 1024)]);
    assert!(gpu_entries("").unwrap().is_empty());
    assert!(gpu_entries("gres/shard:2").unwrap().is_empty());
}

#[test]
fn sharing_gres_count_where_the_policy_says() {
    let names = ["gpu", "shard", "mps"];
    assert_eq!(
        gres_entries("gres/shard:4,gres/gpu:h100:8,license/x:1", &names).unwrap(),
        [e(None, 4), e(Some("h100"), 8)]
    );
    // An MPS share is served from one GPU per node, whatever the percentage.
    assert_eq!(gres_entries("gres:mps:50", &names).unwrap(), [e(None, 1)]);
    assert_eq!(gres_entries("gres/mps:0", &names).unwrap(), [e(None, 0)]);
    let r = GpuRequest::counting(&names, None, Some("gres/shard:2"), None, None).unwrap();
    assert_eq!(r.per_node, Some(2));
    assert!(
        GpuRequest::from_tres(None, Some("gres/shard:2"), None, None)
            .unwrap()
            .per_node
            .is_none()
    );
}

#[test]
fn malformed_strings_are_errors() {
    for s in [
        "gres/gpu:h100:x",
        "gres/gpu:a:b:c",
        "gres/gpu=many",
        "gres/gpu:h 100:1",
        ":1",
        "gres/gpu:99999999999999999999",
    ] {
        assert!(gpu_entries(s).is_err(), "{s}");
    }
    let err = gpu_entries("gres/gpu:h100:x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read the GRES request \"gres/gpu:h100:x\": \"x\" is not a count"
    );
}

#[test]
fn requests_sum_per_field_and_collect_types() {
    let r = GpuRequest::from_tres(
        Some("gres/gpu:h100:2,gres/gpu:a100:1"),
        Some("gres:gpu:8"),
        None,
        Some("gres/gpu=1"),
    )
    .unwrap();
    assert_eq!(r.per_job, Some(3));
    assert_eq!(r.per_node, Some(8));
    assert_eq!(r.per_socket, None);
    assert_eq!(r.per_task, Some(1));
    assert_eq!(r.types, ["h100", "a100"]);
    assert!(r.asked() && !r.has_zero());
    let none = GpuRequest::from_tres(None, Some("gres/shard:1"), None, None).unwrap();
    assert!(!none.asked());
    assert!(GpuRequest::from_tres(None, Some("gres:gpu:0"), None, None)
        .unwrap()
        .has_zero());
}
