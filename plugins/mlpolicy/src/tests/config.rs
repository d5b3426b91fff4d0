use super::*;

fn uid_of(name: &str) -> Option<u32> {
    match name {
        "root" => Some(0),
        "alice" => Some(1001),
        _ => None,
    }
}

#[test]
fn the_shipped_example_parses() {
    let p = Policy::parse(
        include_str!("../../../../conf-examples/mlpolicy.json"),
        "mlpolicy.json",
        &uid_of,
    )
    .unwrap();
    assert_eq!(p.default_gpu_partition.as_deref(), Some("gpu"));
    assert_eq!(p.partitions["gpu"].kind, Some(Kind::Gpu));
    assert_eq!(p.max_minutes["gpu"], 2 * 24 * 60);
    assert_eq!(p.max_minutes["interactive"], 240);
    assert_eq!(p.admins.uids, [0]);
    assert_eq!(p.gpu_gres, ["gpu"]);
}

#[test]
fn gpu_gres_names_are_checked() {
    let p = Policy::parse(r#"{"gpu_gres": ["gpu", "shard", "mps"]}"#, "t", &uid_of).unwrap();
    assert_eq!(p.gpu_gres, ["gpu", "shard", "mps"]);
    for (text, why) in [
        (r#"{"gpu_gres": []}"#, "t: gpu_gres: names no GRES"),
        (
            r#"{"gpu_gres": ["gres/gpu"]}"#,
            "t: gpu_gres: \"gres/gpu\" is not a GRES name",
        ),
    ] {
        let e = Policy::parse(text, "t", &uid_of).unwrap_err();
        assert!(e.0.starts_with(why), "{e}");
    }
}

#[test]
fn errors_name_the_key_and_the_line() {
    let e = Policy::parse(
        "{\n  \"partitions\": {\n    \"gpu\": {\"kind\": \"gpu\", \"max_gpu\": 8}\n  }\n}",
        "/etc/slurm/mlpolicy.json",
        &uid_of,
    )
    .unwrap_err();
    assert!(
        e.0.starts_with("/etc/slurm/mlpolicy.json: line 3, column"),
        "{e}"
    );
    assert!(e.0.contains("unknown field `max_gpu`"), "{e}");
    let e = Policy::parse(
        r#"{"partitions": {"gpu": {"kind": "tpu"}}}"#,
        "p.json",
        &uid_of,
    )
    .unwrap_err();
    assert!(e.0.contains("unknown variant `tpu`"), "{e}");
    let e = Policy::parse(
        r#"{"partitions": {"gpu": {"max_time": "soon"}}}"#,
        "p.json",
        &uid_of,
    )
    .unwrap_err();
    assert_eq!(e.0, "p.json: partitions.gpu.max_time: \"soon\" is not a time limit (MM, HH:MM:SS or D-HH:MM:SS)");
    let e = Policy::parse(
        r#"{"partitions": {"gpu": {"whole_nodes": true}}}"#,
        "p.json",
        &uid_of,
    )
    .unwrap_err();
    assert_eq!(
        e.0,
        "p.json: partitions.gpu.whole_nodes: needs gpus_per_node (the GPUs of one node)"
    );
    let e = Policy::parse(
        r#"{"partitions": {"c": {"kind": "cpu", "max_gpus_per_node": 1}}}"#,
        "p.json",
        &uid_of,
    )
    .unwrap_err();
    assert_eq!(
        e.0,
        "p.json: partitions.c.kind: a cpu partition cannot have GPU limits"
    );
    let e = Policy::parse(r#"{"admins": {"users": ["mallory"]}}"#, "p.json", &uid_of).unwrap_err();
    assert_eq!(
        e.0,
        "p.json: admins.users: no user \"mallory\" on this host"
    );
    let e = Policy::parse(
        r#"{"partitions": {"g": {"min_cpus_per_gpu": 8, "max_cpus_per_gpu": 4}}}"#,
        "p.json",
        &uid_of,
    )
    .unwrap_err();
    assert_eq!(
        e.0,
        "p.json: partitions.g.min_cpus_per_gpu: 8 is above max_cpus_per_gpu 4"
    );
}

#[test]
fn time_limits_in_slurms_formats() {
    assert_eq!(parse_time_limit("30"), Ok(30));
    assert_eq!(parse_time_limit("30:01"), Ok(31));
    assert_eq!(parse_time_limit("4:00:00"), Ok(240));
    assert_eq!(parse_time_limit("1-12"), Ok(36 * 60));
    assert_eq!(parse_time_limit("2-00:30"), Ok(2 * 1440 + 30));
    assert_eq!(parse_time_limit("1-00:00:01"), Ok(1441));
    for bad in ["", "x", "1:2:3:4", "-1", "1-2:3:4:5", "99999999999-0"] {
        assert!(parse_time_limit(bad).is_err(), "{bad}");
    }
}
