use super::*;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

fn envf(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| m.get(k).cloned()
}

#[test]
fn step_ids_follow_slurm() {
    assert_eq!(Step::from_raw(0), Step::Id(0));
    assert_eq!(Step::from_raw(0xffff_fffb), Step::Batch);
    assert_eq!(Step::from_raw(0xffff_fffa), Step::Interactive);
    assert_eq!(Step::from_raw(0xffff_fffc), Step::Extern);
    assert_eq!(Step::from_raw(0xffff_fffd), Step::Special(0xffff_fffd));
    assert_eq!(Step::Batch.label(), "batch");
}

#[test]
fn ports_differ_for_close_jobs_and_concurrent_steps() {
    let r = 20000..=29999;
    assert_eq!(master_port(&r, 0, Step::Batch), 20000);
    assert_eq!(master_port(&r, 0, Step::Id(0)), 20001);
    assert_eq!(master_port(&r, 1, Step::Batch), 20008);
    assert_eq!(master_port(&r, 1250, Step::Id(0)), 20001); // wraps after 1,250 jobs
    let mut seen = std::collections::HashSet::new();
    for job in 5000..5000 + 1250 {
        for step in [Step::Batch, Step::Id(0), Step::Id(1), Step::Id(6)] {
            let p = master_port(&r, job, step);
            assert!(r.contains(&p));
            assert!(seen.insert(p), "job {job} {step:?} reuses port {p}");
        }
    }
    // A range smaller than a block still stays inside.
    let small = 30000..=30002;
    for job in 0..20 {
        assert!(small.contains(&master_port(&small, job, Step::Id(job))));
    }
    assert_eq!(master_port(&(65535..=65535), u32::MAX, Step::Id(7)), 65535);
}

/// Issue 12: the batch step and steps 7, 15, 23, ... had the same port.
#[test]
fn no_numbered_step_shares_the_batch_or_interactive_steps_port() {
    let r = 20000..=29999;
    for job in [0, 1, 4242, u32::MAX] {
        let batch = master_port(&r, job, Step::Batch);
        assert_eq!(master_port(&r, job, Step::Interactive), batch);
        let block = 20000 + (job % 1250) * 8;
        assert_eq!(u32::from(batch), block);
        for step in 0..1000 {
            let p = master_port(&r, job, Step::Id(step));
            assert_ne!(p, batch, "job {job} step {step}");
            // The documented rule: 1 + id mod 7 within the block.
            assert_eq!(u32::from(p), block + 1 + step % 7, "job {job} step {step}");
        }
        // Any 7 consecutive steps get 7 ports.
        for first in [0, 7, 15, 23, 1000] {
            let ports: std::collections::HashSet<u16> = (first..first + 7)
                .map(|s| master_port(&r, job, Step::Id(s)))
                .collect();
            assert_eq!(ports.len(), 7, "job {job} steps {first}..");
        }
    }
    // A range of 3 ports: the batch step keeps its own, steps alternate on the other two.
    let small = 30000..=30002;
    assert_eq!(master_port(&small, 0, Step::Batch), 30000);
    assert_eq!(master_port(&small, 0, Step::Id(0)), 30001);
    assert_eq!(master_port(&small, 0, Step::Id(1)), 30002);
    assert_eq!(master_port(&small, 0, Step::Id(2)), 30001);
}

/// Host lists as comma-separated names, for these tests.
fn split(list: &str) -> Result<Vec<String>, String> {
    if list.contains('[') {
        return Err(format!("bad list {list:?}"));
    }
    Ok(list.split(',').map(str::to_string).collect())
}

fn host(step: Step, component_tasks: u32, vars: &[(&str, &str)]) -> Option<String> {
    master_host(step, component_tasks, &envf(vars), &split)
        .unwrap()
        .map(|(h, _)| h)
}

#[test]
fn the_rendezvous_host() {
    let plain = [
        ("SLURM_STEP_NODELIST", "n2,n3"),
        ("SLURM_STEP_NUM_TASKS", "4"),
        ("SLURM_JOB_NODELIST", "n1,n2,n3"),
    ];
    assert_eq!(host(Step::Id(0), 4, &plain).as_deref(), Some("n2"));
    assert_eq!(host(Step::Batch, 1, &plain).as_deref(), Some("n1"));
    assert_eq!(
        master_host(Step::Id(0), 4, &envf(&plain), &split).unwrap(),
        Some((
            "n2".to_string(),
            "first host of $SLURM_STEP_NODELIST".to_string()
        ))
    );
    assert_eq!(
        host(Step::Id(0), 1, &[("SLURM_STEP_NODELIST", "(null)")]),
        None
    );
    let e = master_host(
        Step::Id(0),
        1,
        &envf(&[("SLURM_STEP_NODELIST", "n[")]),
        &split,
    )
    .unwrap_err();
    assert_eq!(e.0, "$SLURM_STEP_NODELIST: bad list \"n[\"");
}

/// Issue 12: in a het allocation (group 0 on n3, group 1 on n1-n2), every step inherits
/// the allocation's `*_HET_GROUP_N` variables, whichever groups it runs in.
#[test]
fn the_rendezvous_host_of_het_steps_is_in_the_steps_first_component() {
    let alloc = [
        ("SLURM_HET_SIZE", "2"),
        ("SLURM_JOB_NODELIST_HET_GROUP_0", "n3"),
        ("SLURM_NODELIST_HET_GROUP_0", "n3"),
        ("SLURM_JOB_NODELIST_HET_GROUP_1", "n1,n2"),
        ("SLURM_NODELIST_HET_GROUP_1", "n1,n2"),
    ];
    let with = |more: &[(&'static str, &'static str)]| {
        let mut v = alloc.to_vec();
        v.extend_from_slice(more);
        v
    };
    // srun --het-group=1: a step of group 1 alone (4 tasks, all of them this component's).
    let group1 = with(&[
        ("SLURM_STEP_NODELIST", "n1,n2"),
        ("SLURM_STEP_NUM_TASKS", "4"),
    ]);
    assert_eq!(host(Step::Id(0), 4, &group1).as_deref(), Some("n1"));
    // --het-group=0,1 (or 1,0): 1 + 4 tasks on the sorted union; either component's nodes
    // see their own task count only.
    let both = with(&[
        ("SLURM_STEP_NODELIST", "n1,n2,n3"),
        ("SLURM_STEP_NUM_TASKS", "5"),
    ]);
    assert_eq!(host(Step::Id(0), 1, &both).as_deref(), Some("n3"));
    assert_eq!(host(Step::Id(0), 4, &both).as_deref(), Some("n3"));
    assert_eq!(
        master_host(Step::Id(0), 4, &envf(&both), &split)
            .unwrap()
            .unwrap()
            .1,
        "first host of het group 0 ($SLURM_JOB_NODELIST_HET_GROUP_0) in the step"
    );
    // Groups 1 and 2 of three: group 0's nodes are not in the step.
    let three = [
        ("SLURM_JOB_NODELIST_HET_GROUP_0", "n5"),
        ("SLURM_JOB_NODELIST_HET_GROUP_1", "n3,n4"),
        ("SLURM_JOB_NODELIST_HET_GROUP_2", "n1"),
        ("SLURM_STEP_NODELIST", "n1,n3"),
        ("SLURM_STEP_NUM_TASKS", "3"),
    ];
    assert_eq!(host(Step::Id(2), 1, &three).as_deref(), Some("n3"));
    // Components on a shared node: srun leaves the list in component order.
    let shared = [
        ("SLURM_JOB_NODELIST_HET_GROUP_0", "n2"),
        ("SLURM_JOB_NODELIST_HET_GROUP_1", "n1,n2"),
        ("SLURM_STEP_NODELIST", "n2,n1,n2"),
        ("SLURM_STEP_NUM_TASKS", "3"),
    ];
    assert_eq!(host(Step::Id(0), 1, &shared).as_deref(), Some("n2"));
    // No group list names a node of the step: no rendezvous rather than a wrong one.
    let none = [
        ("SLURM_STEP_NODELIST", "n1,n2"),
        ("SLURM_STEP_NUM_TASKS", "3"),
    ];
    assert_eq!(host(Step::Id(0), 1, &none), None);
}

#[test]
fn node_aliases() {
    let a = "ec2-a:10.0.0.5:ip-10-0-0-5,ec2-b:[fe80::1]:hb,ec2-c:10.0.0.7:c";
    assert_eq!(alias_address(a, "ec2-a").as_deref(), Some("10.0.0.5"));
    assert_eq!(alias_address(a, "ec2-b").as_deref(), Some("fe80::1"));
    assert_eq!(alias_address(a, "ec2-c").as_deref(), Some("10.0.0.7"));
    assert_eq!(alias_address(a, "ec2-d"), None);
    assert_eq!(alias_address("garbage", "x"), None);
    assert_eq!(alias_address("", "x"), None);
}

fn shape(local_tasks: u32) -> StepShape {
    StepShape {
        job_id: 42,
        step: Step::Id(0),
        nnodes: 3,
        node_rank: 1,
        ntasks: 6,
        local_tasks,
        gpus_on_node: Some(8),
    }
}

fn rdv() -> Rendezvous {
    Rendezvous {
        addr: "n1".into(),
        why: "first host".into(),
        port: 20337,
        port_why: "job 42 step 0".into(),
    }
}

fn names(w: &[Wanted]) -> Vec<(&str, &str)> {
    w.iter()
        .map(|w| (w.name.as_str(), w.value.as_str()))
        .collect()
}

#[test]
fn a_task_gets_rendezvous_ranks_and_fabric() {
    let fabric = FabricPlan {
        profile: "efa-legacy".into(),
        env: [("FI_PROVIDER".to_string(), "efa".to_string())].into(),
        lib_dirs: vec![],
    };
    let t = TaskIds {
        rank: 3,
        local_rank: 1,
    };
    let w = wanted(
        Mode::On,
        &Choices::default(),
        &shape(2),
        Some(t),
        Some(&rdv()),
        &fabric,
    );
    assert_eq!(
        names(&w),
        vec![
            ("MASTER_ADDR", "n1"),
            ("MASTER_PORT", "20337"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("WORLD_SIZE", "6"),
            ("LOCAL_WORLD_SIZE", "2"),
            ("NODE_RANK", "1"),
            ("FI_PROVIDER", "efa"),
        ]
    );
    // One task per node: torchrun's variables too.
    let w = wanted(
        Mode::On,
        &Choices::default(),
        &shape(1),
        Some(t),
        Some(&rdv()),
        &fabric,
    );
    let n = names(&w);
    for pair in [
        ("PET_NNODES", "3"),
        ("PET_NODE_RANK", "1"),
        ("PET_NPROC_PER_NODE", "8"),
        ("PET_MASTER_ADDR", "n1"),
        ("PET_MASTER_PORT", "20337"),
        ("PET_RDZV_ID", "42.0"),
    ] {
        assert!(n.contains(&pair), "{pair:?} missing from {n:?}");
    }
    // fabric-only: no rendezvous, no ranks; off: nothing; the batch step: no ranks.
    let w = wanted(
        Mode::FabricOnly,
        &Choices::default(),
        &shape(1),
        Some(t),
        Some(&rdv()),
        &fabric,
    );
    assert_eq!(names(&w), vec![("FI_PROVIDER", "efa")]);
    assert!(wanted(
        Mode::Off,
        &Choices::default(),
        &shape(1),
        Some(t),
        Some(&rdv()),
        &fabric
    )
    .is_empty());
    let w = wanted(
        Mode::On,
        &Choices::default(),
        &shape(1),
        None,
        Some(&rdv()),
        &FabricPlan::default(),
    );
    assert_eq!(
        names(&w),
        vec![("MASTER_ADDR", "n1"), ("MASTER_PORT", "20337")]
    );
}

#[test]
fn explicit_options_win() {
    let choices = Choices {
        nccl_debug: Some("INFO".into()),
        master_port: Some(31000),
        ..Choices::default()
    };
    let fabric = FabricPlan {
        profile: "x".into(),
        env: [("NCCL_DEBUG".to_string(), "WARN".to_string())].into(),
        lib_dirs: vec![],
    };
    let mut r = rdv();
    r.port = 31000;
    let w = wanted(Mode::On, &choices, &shape(2), None, Some(&r), &fabric);
    let nccl: Vec<_> = w.iter().filter(|w| w.name == "NCCL_DEBUG").collect();
    assert_eq!(nccl.len(), 1);
    assert_eq!(nccl[0].value, "INFO");
    assert!(nccl[0].explicit);
    assert!(w.iter().find(|w| w.name == "MASTER_PORT").unwrap().explicit);
    // A user's MASTER_PORT export loses to --master-port.
    let p = plan(&w, &[], &envf(&[("MASTER_PORT", "1234")]), None, &|_| false);
    assert!(p
        .set
        .iter()
        .any(|(n, v, _)| n == "MASTER_PORT" && v == "31000"));
}

#[test]
fn the_user_wins_unless_forced_and_the_plugins_own_values_are_replaced() {
    let w = wanted(
        Mode::On,
        &Choices::default(),
        &shape(2),
        Some(TaskIds {
            rank: 0,
            local_rank: 0,
        }),
        Some(&rdv()),
        &FabricPlan::default(),
    );
    // The user exported MASTER_PORT: it stays.
    let p = plan(&w, &[], &envf(&[("MASTER_PORT", "12345")]), None, &|_| {
        false
    });
    assert_eq!(
        p.kept,
        vec![("MASTER_PORT".to_string(), "12345".to_string())]
    );
    assert!(!p.set.iter().any(|(n, _, _)| n == "MASTER_PORT"));
    // Unless the admin forces it.
    let p = plan(&w, &[], &envf(&[("MASTER_PORT", "12345")]), None, &|v| {
        v == "MASTER_PORT"
    });
    assert!(p.kept.is_empty());
    // A value the plugin set in the batch step is the plugin's own: replaced.
    let batch = plan(
        &wanted(
            Mode::On,
            &Choices::default(),
            &shape(1),
            None,
            Some(&Rendezvous {
                port: 20336,
                ..rdv()
            }),
            &FabricPlan::default(),
        ),
        &[],
        &envf(&[]),
        None,
        &|_| false,
    );
    let marker = batch
        .set
        .iter()
        .find(|(n, _, _)| n == APPLIED_VAR)
        .unwrap()
        .1
        .clone();
    let p = plan(
        &w,
        &[],
        &envf(&[("MASTER_PORT", "20336"), (APPLIED_VAR, &marker)]),
        None,
        &|_| false,
    );
    assert!(p.kept.is_empty(), "{:?}", p.kept);
    assert!(p
        .set
        .iter()
        .any(|(n, v, _)| n == "MASTER_PORT" && v == "20337"));
    // ... but a user's change after it (export in the batch script) is the user's.
    let p = plan(
        &w,
        &[],
        &envf(&[("MASTER_PORT", "4444"), (APPLIED_VAR, &marker)]),
        None,
        &|_| false,
    );
    assert_eq!(
        p.kept,
        vec![("MASTER_PORT".to_string(), "4444".to_string())]
    );
    // The marker lists what was set, last.
    let (name, value, _) = p.set.last().unwrap();
    assert_eq!(name, APPLIED_VAR);
    assert!(
        value.starts_with("MASTER_ADDR:") && !value.contains("MASTER_PORT"),
        "{value}"
    );
}

#[test]
fn library_directories_are_merged_not_clobbered() {
    let dirs = vec![PathBuf::from("/opt/amazon/efa/lib")];
    let p = plan(
        &[],
        &dirs,
        &envf(&[]),
        Some(OsStr::new("/home/u/lib")),
        &|_| false,
    );
    assert_eq!(
        p.ld_library_path,
        Some(OsString::from("/opt/amazon/efa/lib:/home/u/lib"))
    );
    assert_eq!(p.set.len(), 1);
    assert_eq!(p.set[0].0, APPLIED_VAR);
    let p = plan(
        &[],
        &dirs,
        &envf(&[]),
        Some(OsStr::new("/opt/amazon/efa/lib")),
        &|_| false,
    );
    assert_eq!(p, Plan::default());
}

#[test]
fn shape_and_task_from_the_environment() {
    let e = envf(&[
        ("SLURM_JOB_ID", "77"),
        ("SLURM_STEP_NUM_NODES", "3"),
        ("SLURM_NODEID", "2"),
        ("SLURM_STEP_NUM_TASKS", "5"),
        ("CUDA_VISIBLE_DEVICES", "0,1,2"),
        ("SLURM_PROCID", "4"),
        ("SLURM_LOCALID", "0"),
    ]);
    let s = StepShape::from_env(9, Step::Id(1), (1, 0, 4, 1), &e);
    assert_eq!(
        s,
        StepShape {
            job_id: 77,
            step: Step::Id(1),
            nnodes: 3,
            node_rank: 2,
            ntasks: 5,
            local_tasks: 1,
            gpus_on_node: Some(3)
        }
    );
    assert_eq!(
        TaskIds::from_env(&e),
        Some(TaskIds {
            rank: 4,
            local_rank: 0
        })
    );
    assert_eq!(TaskIds::from_env(&envf(&[])), None);
    // Items fill in what the environment lacks.
    let s = StepShape::from_env(
        9,
        Step::Id(1),
        (2, 1, 4, 2),
        &envf(&[("SLURM_GPUS_ON_NODE", "4")]),
    );
    assert_eq!(
        (s.job_id, s.nnodes, s.node_rank, s.ntasks, s.gpus_on_node),
        (9, 2, 1, 4, Some(4))
    );
    assert_eq!(
        gpus_on_node(&envf(&[("CUDA_VISIBLE_DEVICES", "NoDevFiles")])),
        None
    );
    // Slurm writes GPU UUIDs instead of indices for MIG devices (25.11) and with gres.conf
    // `Flags=env_uuid` (26.05): they are counted the same way.
    let uuids = "GPU-6fb6d3db-aafb-f8da-a089-89b8077580fe,GPU-b668a901-6b19-5c0c-554c-cce49d58af0a";
    assert_eq!(
        gpus_on_node(&envf(&[("CUDA_VISIBLE_DEVICES", uuids)])),
        Some(2)
    );
    assert_eq!(
        gpus_on_node(&envf(&[(
            "CUDA_VISIBLE_DEVICES",
            "MIG-4d5a4f2e-1c1b-5d2e-9a49-0b6c1d2e3f40"
        )])),
        Some(1)
    );
}
