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
        msg.contains("at most 8 GPUs per node; the job asks for 9"),
        "{msg}"
    );
    let mut j = job(Some("gpu"), gpus(None, Some("gres/gpu:8"), None));
    j.min_nodes = Some(9);
    let (_, rule, msg) = refusal(evaluate(&p, &j));
    assert_eq!(rule, "max-gpus-per-job");
    assert!(
        msg.contains("at most 64 GPUs per job; the job asks for 72"),
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
        msg.contains("needs at least 4 CPUs per GPU; the job asks for 2"),
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
            "a job on 2 nodes must take whole nodes: add --exclusive or --gpus-per-node=8"
        ),
        "{msg}"
    );
    j.exclusive = true;
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

#[test]
fn updates_are_judged_on_what_they_change() {
    let p = policy();
    // Moving a job to the gpu partition: its GPU request is not in the update, so the
    // "needs GPUs" and "needs a time limit" rules cannot be judged and are skipped...
    let mut u = Job {
        uid: 1001,
        partition: Some("interactive".into()),
        update: true,
        ..Job::default()
    };
    assert!(matches!(
        evaluate(&p, &u),
        Verdict::Accept { route_to: None, .. }
    ));
    // ... but what the update sets is judged against the partition it names.
    u.time_limit = Some(600);
    assert_eq!(refusal(evaluate(&p, &u)).1, "max-time");
    let u = Job {
        uid: 1001,
        partition: Some("cpu".into()),
        gpus: gpus(None, Some("gres/gpu:1"), None),
        update: true,
        ..Job::default()
    };
    assert_eq!(refusal(evaluate(&p, &u)).1, "cpu-partition-no-gpus");
    // A GPU change alone: no partition to judge against, but gpu:0 is refused anywhere.
    let u = Job {
        uid: 1001,
        gpus: gpus(None, Some("gres/gpu:64"), None),
        update: true,
        ..Job::default()
    };
    assert!(matches!(
        evaluate(&p, &u),
        Verdict::Accept { route_to: None, .. }
    ));
    let u = Job {
        uid: 1001,
        gpus: gpus(None, Some("gres/gpu:0"), None),
        update: true,
        ..Job::default()
    };
    assert_eq!(refusal(evaluate(&p, &u)).1, "zero-gpus");
}
