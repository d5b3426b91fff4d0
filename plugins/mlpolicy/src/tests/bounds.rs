use super::*;
use crate::gres::GpuRequest;

fn job(per_node: Option<&str>, per_task: Option<&str>) -> Job {
    Job {
        gpus: GpuRequest::from_tres(None, per_node, None, per_task).unwrap(),
        ..Job::default()
    }
}

#[test]
fn nodes_and_tasks_follow_slurms_defaults() {
    // Nothing said: one task on one node.
    let s = Sizing::of(&job(Some("gres/gpu:2"), None));
    assert_eq!((s.min_nodes, s.max_nodes, s.max_tasks_per_node), (1, 1, 1));
    assert_eq!(
        (s.gpus_per_node, s.gpus_per_job),
        (Ok(Some(2)), Ok(Some(2)))
    );
    // -n8, no -N: up to 8 nodes, up to 8 tasks on one.
    let mut j = job(None, Some("gres/gpu=1"));
    j.num_tasks = Some(8);
    let s = Sizing::of(&j);
    assert_eq!((s.max_nodes, s.max_tasks_per_node, s.max_tasks), (8, 8, 8));
    assert_eq!(
        (s.gpus_per_node, s.gpus_per_job),
        (Ok(Some(8)), Ok(Some(8)))
    );
    // -N3 -n8: each other node runs a task, so 6 on one.
    j.min_nodes = Some(3);
    j.max_nodes = Some(3);
    assert_eq!(Sizing::of(&j).max_tasks_per_node, 6);
    // --ntasks-per-node=2 lowers that.
    j.ntasks_per_node = Some(2);
    assert_eq!(Sizing::of(&j).gpus_per_node, Ok(Some(2)));
    // -N2-4 --ntasks-per-node=2, no -n: 8 tasks at most.
    let mut j = job(None, Some("gres/gpu=1"));
    (j.min_nodes, j.max_nodes, j.ntasks_per_node) = (Some(2), Some(4), Some(2));
    let s = Sizing::of(&j);
    assert_eq!(
        (s.min_tasks, s.max_tasks, s.gpus_per_job),
        (4, 8, Ok(Some(8)))
    );
}

#[test]
fn per_socket_needs_a_socket_count() {
    let mut j = Job {
        gpus: GpuRequest::from_tres(None, None, Some("gres/gpu:2"), None).unwrap(),
        ..Job::default()
    };
    assert_eq!(Sizing::of(&j).gpus_per_node, Err("--sockets-per-node"));
    j.num_tasks = Some(4);
    j.ntasks_per_socket = Some(1);
    assert_eq!(Sizing::of(&j).gpus_per_node, Ok(Some(8)));
    j.sockets_per_node = Some(2);
    (j.min_nodes, j.max_nodes) = (Some(3), Some(3));
    let s = Sizing::of(&j);
    assert_eq!(
        (s.gpus_per_node, s.gpus_per_job),
        (Ok(Some(4)), Ok(Some(12)))
    );
}

#[test]
fn exact_gpus_per_node_only_when_fixed() {
    let mut j = job(None, Some("gres/gpu=1"));
    (j.min_nodes, j.max_nodes, j.ntasks_per_node) = (Some(2), Some(2), Some(8));
    let s = Sizing::of(&j);
    assert_eq!(s.exact_gpus_per_node(&j), Some(8));
    j.max_nodes = Some(3);
    assert_eq!(Sizing::of(&j).exact_gpus_per_node(&j), None);
    let j = job(Some("gres/gpu:8"), Some("gres/gpu=1"));
    assert_eq!(Sizing::of(&j).exact_gpus_per_node(&j), None);
}

#[test]
fn ratios_compare_without_rounding() {
    let r = Ratio::new(15, 4);
    assert!(r.below(4) && !r.below(3) && r.above(3) && !r.above(4));
    assert_eq!(r.to_string(), "3.75");
    assert_eq!(Ratio::new(8, 2).to_string(), "4");
    assert!(!Ratio::new(u64::MAX, 1).below(u64::MAX));
}
