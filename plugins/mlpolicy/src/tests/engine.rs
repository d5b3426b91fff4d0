use super::*;
use crate::config::Policy;

fn policy() -> Policy {
    Policy::parse(
        include_str!("../../../../conf-examples/mlpolicy.json"),
        "mlpolicy.json",
        &|u| (u == "root").then_some(0),
    )
    .unwrap()
}

fn gpus(per_job: Option<&str>, per_node: Option<&str>, per_task: Option<&str>) -> GpuRequest {
    GpuRequest::from_tres(per_job, per_node, None, per_task).unwrap()
}

fn job(partition: Option<&str>, g: GpuRequest) -> Job {
    Job {
        uid: 1001,
        partition: partition.map(str::to_string),
        gpus: g,
        time_limit: Some(60),
        ..Job::default()
    }
}

fn refusal(v: Verdict) -> (Code, &'static str, String) {
    match v {
        Verdict::Refuse(r) => (r.code, r.rule, r.message),
        other => panic!("accepted: {other:?}"), // ok-panic: test
    }
}

const DOC: &str = " (see https://wiki.example.org/hpc/gpu-policy)";

#[test]
fn gpu_and_cpu_partitions() {
    let p = policy();
    let (code, rule, msg) = refusal(evaluate(&p, &job(Some("gpu"), GpuRequest::default())));
    assert_eq!(
        (code, rule),
        (Code::InvalidGres, "gpu-partition-needs-gpus")
    );
    assert_eq!(msg, format!("mlpolicy: partition 'gpu' needs a GPU request: add --gpus-per-node=N (or submit to partition 'cpu'){DOC}"));
    let (_, rule, msg) = refusal(evaluate(
        &p,
        &job(Some("cpu"), gpus(None, Some("gres/gpu:1"), None)),
    ));
    assert_eq!(rule, "cpu-partition-no-gpus");
    assert_eq!(msg, format!("mlpolicy: partition 'cpu' has no GPUs: remove the GPU request (or submit to partition 'gpu'){DOC}"));
    let (_, rule, _) = refusal(evaluate(
        &p,
        &job(Some("gpu"), gpus(None, Some("gres:gpu:0"), None)),
    ));
    assert_eq!(rule, "zero-gpus");
    assert_eq!(
        evaluate(&p, &job(Some("gpu"), gpus(None, Some("gres/gpu:8"), None))),
        Verdict::Accept {
            route_to: None,
            exempt: false
        }
    );
    // A partition the policy does not name has no rules.
    assert!(matches!(
        evaluate(&p, &job(Some("debug"), GpuRequest::default())),
        Verdict::Accept { .. }
    ));
}

#[test]
fn limits_types_and_cpus_per_gpu() {
    let p = policy();
    let (_, rule, msg) = refusal(evaluate(
        &p,
        &job(Some("gpu"), gpus(None, Some("gres/gpu:9"), None)),
    ));
    assert_eq!(rule, "max-gpus-per-node");
    assert!(
        msg.contains("at most 8 GPUs per node; this request can get 9 on one node"),
        "{msg}"
    );
    let mut j = job(Some("gpu"), gpus(None, Some("gres/gpu:8"), None));
    j.min_nodes = Some(9);
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-job");
    assert!(
        msg.contains("at most 64 GPUs per job; this request can get 72 (on 9 node(s))"),
        "{msg}"
    );
    let (_, rule, msg) = refusal(evaluate(
        &p,
        &job(Some("gpu"), gpus(Some("gres/gpu:a100:2"), None, None)),
    ));
    assert_eq!(rule, "gpu-type");
    assert!(
        msg.contains("partition 'gpu' has no 'a100' GPUs: use one of h100 (or no type)"),
        "{msg}"
    );
    let mut j = job(Some("gpu"), gpus(None, Some("gres/gpu:h100:2"), None));
    j.cpus_per_gpu = Some(2);
    let (code, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!((code, rule), (Code::InvalidCpuCount, "cpus-per-gpu"));
    assert!(
        msg.contains("needs at least 4 CPUs per GPU; this request gives 2: set --cpus-per-gpu=4"),
        "{msg}"
    );
    // From cpus per task over GPUs per task.
    let mut j = job(Some("gpu"), gpus(None, None, Some("gres/gpu=1")));
    j.cpus_per_task = Some(32);
    assert_eq!(refusal(evaluate(&p, &j)).1, "cpus-per-gpu");
    j.cpus_per_task = Some(8);
    assert!(matches!(evaluate(&p, &j), Verdict::Accept { .. }));
}

#[test]
fn whole_nodes_and_time_limits() {
    let p = policy();
    let mut j = job(Some("gpu"), gpus(None, Some("gres/gpu:4"), None));
    j.min_nodes = Some(2);
    let (code, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!((code, rule), (Code::InvalidNodeCount, "whole-nodes"));
    assert!(
        msg.contains(
            "a job that can span 2 nodes must take whole nodes: add --exclusive or --gpus-per-node=8 (or use -N1)"
        ),
        "{msg}"
    );
    j.shared = Some(0);
    assert!(matches!(evaluate(&p, &j), Verdict::Accept { .. }));
    let mut j = job(Some("interactive"), gpus(None, Some("gres/gpu:1"), None));
    j.time_limit = None;
    let (code, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!((code, rule), (Code::InvalidTimeLimit, "require-time"));
    assert!(
        msg.contains("partition 'interactive' needs a time limit: add --time=4:00:00"),
        "{msg}"
    );
    j.time_limit = Some(241);
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-time");
    assert!(
        msg.contains("at most 4:00:00 (240 minutes); the job asks for 241 minutes"),
        "{msg}"
    );
}

#[test]
fn routing_lists_and_exemptions() {
    let p = policy();
    assert_eq!(
        evaluate(&p, &job(None, gpus(None, Some("gres/gpu:2"), None))),
        Verdict::Accept {
            route_to: Some("gpu".into()),
            exempt: false
        }
    );
    assert_eq!(
        evaluate(&p, &job(None, GpuRequest::default())),
        Verdict::Accept {
            route_to: Some("cpu".into()),
            exempt: false
        }
    );
    // Routed jobs meet the rules of where they go.
    assert_eq!(
        refusal(evaluate(
            &p,
            &job(None, gpus(None, Some("gres/gpu:9"), None))
        ))
        .1,
        "max-gpus-per-node"
    );
    // Every partition of a list must accept; the message names the one that refuses.
    let (_, _, msg) = refusal(evaluate(
        &p,
        &job(Some("gpu,cpu"), gpus(None, Some("gres/gpu:1"), None)),
    ));
    assert!(
        msg.starts_with("mlpolicy: partition 'cpu' has no GPUs"),
        "{msg}"
    );
    // uid 0, admin uids and admin accounts skip the rules.
    let mut j = job(Some("gpu"), GpuRequest::default());
    j.uid = 0;
    assert_eq!(
        evaluate(&p, &j),
        Verdict::Accept {
            route_to: None,
            exempt: true
        }
    );
    j.uid = 1001;
    j.account = Some("hpc-ops".into());
    // An admin account counts only where slurmctld enforces associations: elsewhere any
    // user may name it.
    assert_eq!(refusal(evaluate(&p, &j)).1, "gpu-partition-needs-gpus");
    let mut p = p;
    p.accounts_enforced = true;
    assert_eq!(
        evaluate(&p, &j),
        Verdict::Accept {
            route_to: None,
            exempt: true
        }
    );
}

fn rule_of(p: &Policy, j: &Job) -> Option<&'static str> {
    match evaluate(p, j) {
        Verdict::Refuse(r) => Some(r.rule),
        Verdict::Accept { .. } => None,
    }
}

/// A request in the `interactive` partition (at most 2 GPUs per job) or `gpu` (8 per
/// node, 64 per job, whole nodes), with the given shape.
fn shaped(part: &str, g: GpuRequest, shape: impl FnOnce(&mut Job)) -> Job {
    let mut j = job(Some(part), g);
    shape(&mut j);
    j
}

#[test]
fn node_ranges_are_judged_at_their_top() {
    let p = policy();
    let per_node = |n| gpus(None, Some(n), None);
    // -N1-16 --gpus-per-node=2 can be given 32 GPUs.
    let j = shaped("interactive", per_node("gres/gpu:2"), |j| {
        (j.min_nodes, j.max_nodes) = (Some(1), Some(16));
    });
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-job");
    assert!(msg.contains("can get 32 (on 1-16 nodes)"), "{msg}");
    // -p gpu -N1-8 --gpus-per-node=4 can span 8 nodes without taking them whole.
    let j = shaped("gpu", per_node("gres/gpu:4"), |j| {
        (j.min_nodes, j.max_nodes) = (Some(1), Some(8));
        j.cpus_per_task = Some(16);
    });
    assert_eq!(rule_of(&p, &j), Some("whole-nodes"));
    // -n4 with no -N: up to 4 nodes, each with its --gpus-per-node.
    let j = shaped("interactive", per_node("gres/gpu:1"), |j| {
        j.num_tasks = Some(4)
    });
    assert_eq!(rule_of(&p, &j), Some("max-gpus-per-job"));
    // -N1 -n4: one node.
    let j = shaped("interactive", per_node("gres/gpu:1"), |j| {
        (j.min_nodes, j.max_nodes, j.num_tasks) = (Some(1), Some(1), Some(4));
    });
    assert_eq!(rule_of(&p, &j), None);
}

#[test]
fn every_gpu_form_is_held_to_the_per_node_limit() {
    let p = policy();
    let one_node = |j: &mut Job| (j.min_nodes, j.max_nodes) = (Some(1), Some(1));
    // -N1 --gpus=16, and -N2 --gpus=16: all of them may land on one node.
    let j = shaped("gpu", gpus(Some("gres/gpu:16"), None, None), one_node);
    assert_eq!(rule_of(&p, &j), Some("max-gpus-per-node"));
    let j = shaped("gpu", gpus(Some("gres/gpu:16"), None, None), |j| {
        (j.min_nodes, j.max_nodes) = (Some(2), Some(2));
        j.shared = Some(0);
    });
    let (_, _, msg) = refusal(evaluate(&p, &j));
    assert!(msg.contains("can get 16 on one node: lower the GPUs per node or per task, or the tasks per node (--gpus may all land on one node: ask with --gpus-per-node)"), "{msg}");
    // -N1 -n16 --gpus-per-task=1
    let j = shaped("gpu", gpus(None, None, Some("gres/gpu=1")), |j| {
        one_node(j);
        j.num_tasks = Some(16);
        j.cpus_per_task = Some(4);
    });
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-node");
    assert!(msg.contains("can get 16 on one node"), "{msg}");
    // --ntasks-per-node=16 --gpus-per-task=1
    let j = shaped("gpu", gpus(None, None, Some("gres/gpu=1")), |j| {
        j.ntasks_per_node = Some(16);
        j.cpus_per_task = Some(4);
    });
    assert_eq!(rule_of(&p, &j), Some("max-gpus-per-node"));
    // -N2 -n10 --gpus-per-task=1: one node can run 9 of the tasks.
    let j = shaped("gpu", gpus(None, None, Some("gres/gpu=1")), |j| {
        (j.min_nodes, j.max_nodes, j.num_tasks) = (Some(2), Some(2), Some(10));
        j.cpus_per_task = Some(4);
        j.shared = Some(0);
    });
    assert_eq!(rule_of(&p, &j), Some("max-gpus-per-node"));
    // --gpus-per-socket=4 --sockets-per-node=4
    let socket = || GpuRequest::from_tres(None, None, Some("gres/gpu:4"), None).unwrap();
    let j = shaped("gpu", socket(), |j| {
        one_node(j);
        j.sockets_per_node = Some(4);
    });
    assert_eq!(rule_of(&p, &j), Some("max-gpus-per-node"));
    // --gpus-per-socket with no socket count: bounded only by the hardware.
    let j = shaped("gpu", socket(), one_node);
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-node");
    assert!(
        msg.ends_with(&format!("add --sockets-per-node{DOC}")),
        "{msg}"
    );
    // Within the limits: 2 sockets x 4.
    let j = shaped("gpu", socket(), |j| {
        one_node(j);
        j.sockets_per_node = Some(2);
        j.cpus_per_gpu = Some(8);
    });
    assert_eq!(rule_of(&p, &j), None);
}

#[test]
fn cpus_per_gpu_is_what_slurm_allocates() {
    let p = policy();
    // -c 2 --gpus-per-node=8: one task, 2 CPUs for 8 GPUs.
    let j = shaped("gpu", gpus(None, Some("gres/gpu:8"), None), |j| {
        j.cpus_per_task = Some(2);
    });
    let (code, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!((code, rule), (Code::InvalidCpuCount, "cpus-per-gpu"));
    assert!(
        msg.contains("at least 4 CPUs per GPU; this request gives 0.25"),
        "{msg}"
    );
    // Nothing said about CPUs: slurm.conf's DefCpuPerGPU decides, so no floor here...
    let j = job(Some("gpu"), gpus(None, Some("gres/gpu:8"), None));
    assert_eq!(rule_of(&p, &j), None);
    // ... but the ceiling holds: -N1 -n64 --gpus=1 gets 64 CPUs for one GPU.
    let j = shaped("gpu", gpus(Some("gres/gpu:1"), None, None), |j| {
        (j.min_nodes, j.max_nodes, j.num_tasks) = (Some(1), Some(1), Some(64));
    });
    assert_eq!(rule_of(&p, &j), Some("cpus-per-gpu"));
    // --mincpus=200 --gpus-per-node=8: 25 per GPU on the node.
    let j = shaped("gpu", gpus(None, Some("gres/gpu:8"), None), |j| {
        j.pn_min_cpus = Some(200);
    });
    assert_eq!(rule_of(&p, &j), Some("cpus-per-gpu"));
    // -N2 -n16 -c4 --gpus-per-node=8: 4 per GPU on average, at most 7.5 on a node.
    let j = shaped("gpu", gpus(None, Some("gres/gpu:8"), None), |j| {
        (j.min_nodes, j.max_nodes, j.num_tasks) = (Some(2), Some(2), Some(16));
        j.cpus_per_task = Some(4);
    });
    assert_eq!(rule_of(&p, &j), None);
    // --ntasks-per-node=8 -c 32 --gpus-per-node=8: 32 per GPU, above 24.
    let j = shaped("gpu", gpus(None, Some("gres/gpu:8"), None), |j| {
        j.ntasks_per_node = Some(8);
        j.cpus_per_task = Some(32);
    });
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "cpus-per-gpu");
    assert!(
        msg.contains("at most 24 CPUs per GPU; this request gives 32"),
        "{msg}"
    );
    // --gpus=8 -n8 -c4 -N1: totals, 4 per GPU.
    let j = shaped("gpu", gpus(Some("gres/gpu:8"), None, None), |j| {
        (j.min_nodes, j.max_nodes, j.num_tasks) = (Some(1), Some(1), Some(8));
        j.cpus_per_task = Some(4);
    });
    assert_eq!(rule_of(&p, &j), None);
}

#[test]
fn no_partition_is_judged_where_slurm_puts_it() {
    let mut p = policy();
    p.default_gpu_partition = None;
    // slurmctld's Default=YES partition is interactive: its rules apply.
    let mut j = job(None, gpus(None, Some("gres/gpu:4"), None));
    j.default_partition = Some("interactive".into());
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-job");
    assert!(
        msg.starts_with("mlpolicy: partition 'interactive'"),
        "{msg}"
    );
    // Not routed: Slurm puts it there itself.
    j.gpus = gpus(None, Some("gres/gpu:1"), None);
    assert_eq!(evaluate(&p, &j), ACCEPT);
    // The default cannot be read: the job must name a partition.
    j.default_partition = None;
    let (code, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!((code, rule), (Code::InvalidPartition, "no-partition"));
    assert!(msg.contains("add -p PARTITION"), "{msg}");
    // The policy's own default still routes.
    let p = policy();
    assert_eq!(
        evaluate(&p, &j),
        Verdict::Accept {
            route_to: Some("gpu".into()),
            exempt: false
        }
    );
}

#[test]
fn sharing_gres_count_as_gpus_where_the_policy_says() {
    let mut p = policy();
    let shard = |p: &Policy| {
        GpuRequest::counting(&p.gpu_gres, None, Some("gres:shard:1"), None, None).unwrap()
    };
    // By default a shard is not a GPU: a cpu partition takes it.
    assert_eq!(evaluate(&p, &job(Some("cpu"), shard(&p))), ACCEPT);
    p.gpu_gres = vec!["gpu".into(), "shard".into(), "mps".into()];
    assert_eq!(
        rule_of(&p, &job(Some("cpu"), shard(&p))),
        Some("cpu-partition-no-gpus")
    );
    let mps = GpuRequest::counting(&p.gpu_gres, None, Some("gres/mps:50"), None, None).unwrap();
    assert_eq!(
        rule_of(&p, &job(Some("cpu"), mps)),
        Some("cpu-partition-no-gpus")
    );
}

fn update(partition: Option<&str>, set: impl FnOnce(&mut Job)) -> Job {
    let mut u = Job {
        uid: 1001,
        partition: partition.map(str::to_string),
        update: true,
        ..Job::default()
    };
    set(&mut u);
    u
}

#[test]
fn updates_are_never_let_through_unjudged() {
    let p = policy();
    // Gres=gpu:64, NumNodes=, NumTasks=, CPUsPerTask= on a held job: the job's partition
    // and its other requests cannot be seen, so none of these can be checked.
    for u in [
        update(None, |u| u.gpus = gpus(None, Some("gres/gpu:64"), None)),
        update(None, |u| u.gpus = gpus(None, None, Some("gres/gpu=8"))),
        update(None, |u| (u.min_nodes, u.max_nodes) = (Some(16), Some(16))),
        update(None, |u| u.num_tasks = Some(64)),
        update(None, |u| u.cpus_per_task = Some(64)),
        update(None, |u| u.sockets_per_node = Some(4)),
        update(None, |u| u.pn_min_cpus = Some(64)),
    ] {
        let (code, rule, msg) = refusal(evaluate(&p, &u));
        assert_eq!(
            (code, rule),
            (Code::AccessDenied, "update-resources"),
            "{u:?}"
        );
        assert!(msg.contains("cancel the job and submit it again"), "{msg}");
    }
    // Moving a GPU-less job into a gpu partition, or any job into a partition whose rules
    // read its resources, even with fields alongside.
    for u in [
        update(Some("gpu"), |_| {}),
        update(Some("interactive"), |u| u.time_limit = Some(30)),
        update(Some("interactive"), |u| {
            u.time_limit = Some(30);
            u.gpus = gpus(None, Some("gres/gpu:1"), None);
        }),
        update(Some("cpu"), |u| u.time_limit = Some(30)),
    ] {
        let (_, rule, msg) = refusal(evaluate(&p, &u));
        assert_eq!(rule, "update-partition", "{u:?}");
        assert!(msg.contains("submit it again with -p "), "{msg}");
    }
    // A time limit: at most the shortest max_time when no partition is named.
    assert_eq!(
        evaluate(&p, &update(None, |u| u.time_limit = Some(240))),
        ACCEPT
    );
    assert_eq!(
        rule_of(&p, &update(None, |u| u.time_limit = Some(241))),
        Some("update-time")
    );
    // Updates that change nothing the policy judges pass.
    assert_eq!(evaluate(&p, &update(None, |_| {})), ACCEPT);
    // gpu:0 is refused anywhere.
    assert_eq!(
        rule_of(
            &p,
            &update(None, |u| u.gpus = gpus(None, Some("gres/gpu:0"), None))
        ),
        Some("zero-gpus")
    );
    // An admin may change anything.
    let mut u = update(Some("gpu"), |u| {
        u.gpus = gpus(None, Some("gres/gpu:64"), None)
    });
    u.uid = 0;
    assert!(matches!(
        evaluate(&p, &u),
        Verdict::Accept { exempt: true, .. }
    ));
}

#[test]
fn updates_into_partitions_with_time_rules_only() {
    let mut p = policy();
    let text =
        r#"{"partitions": {"short": {"max_time": "1:00:00", "require_time": true}, "free": {}}}"#;
    p = Policy {
        accounts_enforced: p.accounts_enforced,
        ..Policy::parse(text, "t.json", &|_| None).unwrap()
    };
    // Into a partition with time rules only: the time limit must come along and fit.
    assert_eq!(
        rule_of(&p, &update(Some("short"), |_| {})),
        Some("update-needs-time")
    );
    assert_eq!(
        rule_of(&p, &update(Some("short"), |u| u.time_limit = Some(61))),
        Some("max-time")
    );
    assert_eq!(
        evaluate(&p, &update(Some("short"), |u| u.time_limit = Some(60))),
        ACCEPT
    );
    // No rule reads resources anywhere: resources may change.
    assert_eq!(
        evaluate(
            &p,
            &update(None, |u| u.gpus = gpus(None, Some("gres/gpu:8"), None))
        ),
        ACCEPT
    );
    assert_eq!(
        evaluate(&p, &update(Some("free"), |u| u.num_tasks = Some(8))),
        ACCEPT
    );
}

#[test]
fn review_findings_are_judged() {
    let p = policy();
    // -n8 --ntasks-per-gpu=1 with no GPU option: Slurm gives 8 GPUs after job_submit.
    let mut j = job(Some("cpu"), GpuRequest::default());
    (j.num_tasks, j.ntasks_per_gpu) = (Some(8), Some(1));
    assert_eq!(rule_of(&p, &j), Some("cpu-partition-no-gpus"));
    j.partition = Some("interactive".into());
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-job");
    assert!(msg.contains("can get 8"), "{msg}");
    // --exclusive is given every GPU of its nodes: -N3 --exclusive --gpus-per-node=1 in a
    // partition of 8-GPU nodes gets 24.
    let mut j = shaped("gpu", gpus(None, Some("gres/gpu:1"), None), |j| {
        (j.min_nodes, j.max_nodes) = (Some(9), Some(9));
        j.shared = Some(0);
    });
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-job");
    assert!(msg.contains("can get 72"), "{msg}");
    // Where the policy does not say a node's GPUs, --exclusive cannot be bounded.
    j.partition = Some("interactive".into());
    (j.min_nodes, j.max_nodes) = (Some(1), Some(1));
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-job");
    assert!(msg.contains("leave out --exclusive"), "{msg}");
    // A cpu partition's nodes have no GPUs: --exclusive there is fine.
    let mut j = job(Some("cpu"), GpuRequest::default());
    j.shared = Some(0);
    assert_eq!(evaluate(&p, &j), ACCEPT);
    // --cpus-per-gpu is a floor: tasks and --mincpus can raise a node's CPUs past the ceiling.
    let j = shaped("gpu", gpus(None, Some("gres/gpu:1"), None), |j| {
        (j.min_nodes, j.max_nodes, j.num_tasks) = (Some(1), Some(1), Some(32));
        j.cpus_per_gpu = Some(4);
    });
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "cpus-per-gpu");
    assert!(
        msg.contains("at most 24 CPUs per GPU; this request gives 32"),
        "{msg}"
    );
    let j = shaped("gpu", gpus(Some("gres/gpu:1"), None, None), |j| {
        j.pn_min_cpus = Some(32);
        j.cpus_per_gpu = Some(4);
    });
    assert_eq!(rule_of(&p, &j), Some("cpus-per-gpu"));
    let j = shaped("gpu", gpus(None, None, Some("gres/gpu=1")), |j| {
        j.num_tasks = Some(1);
        j.pn_min_cpus = Some(32);
        j.cpus_per_task = Some(4);
    });
    assert_eq!(rule_of(&p, &j), Some("cpus-per-gpu"));
    // Updates: ReqNodeList=, an empty TresPerNode=, --ntasks-per-gpu change resources.
    for u in [
        update(None, |u| u.req_nodes = true),
        update(None, |u| u.tres_set = true),
        update(None, |u| u.ntasks_per_gpu = Some(1)),
    ] {
        assert_eq!(rule_of(&p, &u), Some("update-resources"), "{u:?}");
    }
}

#[test]
fn second_review_findings_are_judged() {
    let p = policy();
    // --core-spec is a whole-node job: in interactive (no gpus_per_node) it cannot be bounded.
    let mut j = job(Some("interactive"), gpus(Some("gres/gpu:1"), None, None));
    j.core_spec = Some(1);
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-job");
    assert!(
        msg.contains("leave out --exclusive (and --core-spec"),
        "{msg}"
    );
    // A whole-node job in a cpu partition: only where the nodes have no GPUs.
    let mut j = job(Some("cpu"), GpuRequest::default());
    j.shared = Some(0);
    assert_eq!(evaluate(&p, &j), ACCEPT); // the example says gpus_per_node: 0
    let mut q = p.clone();
    if let Some(r) = q.partitions.get_mut("cpu") {
        r.gpus_per_node = None;
    }
    assert_eq!(rule_of(&q, &j), Some("cpu-partition-whole-nodes"));
    // Total CPUs alone (an API client's min_cpus): 8 for one GPU.
    let j = shaped("gpu", gpus(Some("gres/gpu:1"), None, None), |j| {
        (j.min_nodes, j.max_nodes) = (Some(1), Some(1));
        j.min_cpus = Some(32);
    });
    assert_eq!(rule_of(&p, &j), Some("cpus-per-gpu"));
    let j = shaped("gpu", gpus(None, Some("gres/gpu:1"), None), |j| {
        (j.min_nodes, j.max_nodes) = (Some(2), Some(2));
        j.min_cpus = Some(64);
    });
    assert_eq!(rule_of(&p, &j), Some("cpus-per-gpu"));
}
