//! The GRES parser and the engine never panic, whatever the strings (they run inside
//! slurmctld), and the parser reads back what it is given in Slurm's forms.

use mlpolicy::config::Policy;
use mlpolicy::engine::{evaluate, Job};
use mlpolicy::gres::{gpu_entries, GpuRequest};
use proptest::prelude::*;

fn policy() -> Policy {
    Policy::parse(
        include_str!("../../../conf-examples/mlpolicy.json"),
        "mlpolicy.json",
        &|_| Some(0),
    )
    .unwrap()
}

proptest! {
    #[test]
    fn the_parser_never_panics(s in ".{0,64}") {
        let _ = gpu_entries(&s);
    }

    #[test]
    fn slurms_forms_read_back(sep in prop::sample::select(vec!["gres:", "gres/"]), ty in proptest::option::of("[a-z][a-z0-9_]{0,8}"), n in 0u64..100_000, other in any::<bool>()) {
        let entry = match &ty {
            Some(t) => format!("{sep}gpu:{t}:{n}"),
            None => format!("{sep}gpu:{n}"),
        };
        let s = if other { format!("{sep}shard:3,{entry}") } else { entry };
        let e = gpu_entries(&s).unwrap();
        prop_assert_eq!(e.len(), 1);
        prop_assert_eq!(e[0].count, n);
        prop_assert_eq!(e[0].gpu_type.clone(), ty);
    }

    #[test]
    fn the_engine_never_panics(
        part in proptest::option::of("(gpu|cpu|interactive|debug|gpu,cpu|)"),
        node in proptest::option::of("gres/gpu(:[a-z0-9]{1,5})?(:[0-9]{1,20})?"),
        task in proptest::option::of("gres/gpu=[0-9]{1,20}"),
        nodes in proptest::option::of(any::<u32>()),
        tasks in proptest::option::of(any::<u32>()),
        cpt in proptest::option::of(any::<u32>()),
        time in proptest::option::of(any::<u32>()),
        uid in any::<u32>(),
    ) {
        let p = policy();
        if let Ok(gpus) = GpuRequest::from_tres(None, node.as_deref(), None, task.as_deref()) {
            let job = Job {
                uid,
                partition: part,
                gpus,
                min_nodes: nodes,
                num_tasks: tasks,
                ntasks_per_node: tasks,
                cpus_per_task: cpt,
                time_limit: time,
                ..Job::default()
            };
            let _ = evaluate(&p, &job);
        }
    }
}
