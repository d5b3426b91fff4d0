use super::*;
use std::collections::HashMap;

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

#[test]
fn the_rendezvous_node_list() {
    let e = envf(&[
        ("SLURM_STEP_NODELIST", "n[2-3]"),
        ("SLURM_JOB_NODELIST", "n[1-3]"),
    ]);
    assert_eq!(
        master_nodelist(Step::Id(0), &e),
        Some(("SLURM_STEP_NODELIST", "n[2-3]".to_string()))
    );
    assert_eq!(
        master_nodelist(Step::Batch, &e),
        Some(("SLURM_JOB_NODELIST", "n[1-3]".to_string()))
    );
    let het = envf(&[
        ("SLURM_STEP_NODELIST", "n[1-3]"),
        ("SLURM_NODELIST_HET_GROUP_0", "n3"),
    ]);
    assert_eq!(
        master_nodelist(Step::Id(0), &het),
        Some(("SLURM_NODELIST_HET_GROUP_0", "n3".to_string()))
    );
    assert_eq!(
        master_nodelist(Step::Id(0), &envf(&[("SLURM_STEP_NODELIST", "(null)")])),
        None
    );
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
    let p = plan(&w, &[], &envf(&[("MASTER_PORT", "1234")]), &|_| false);
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
    let p = plan(&w, &[], &envf(&[("MASTER_PORT", "12345")]), &|_| false);
    assert_eq!(
        p.kept,
        vec![("MASTER_PORT".to_string(), "12345".to_string())]
    );
    assert!(!p.set.iter().any(|(n, _, _)| n == "MASTER_PORT"));
    // Unless the admin forces it.
    let p = plan(&w, &[], &envf(&[("MASTER_PORT", "12345")]), &|v| {
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
        &envf(&[("LD_LIBRARY_PATH", "/home/u/lib")]),
        &|_| false,
    );
    assert_eq!(
        p.set[0],
        (
            "LD_LIBRARY_PATH".to_string(),
            "/opt/amazon/efa/lib:/home/u/lib".to_string(),
            "profile library directories".to_string()
        )
    );
    assert_eq!(p.set[1].0, APPLIED_VAR);
    assert!(plan(
        &[],
        &dirs,
        &envf(&[("LD_LIBRARY_PATH", "/opt/amazon/efa/lib")]),
        &|_| false
    )
    .set
    .is_empty());
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
}
