use super::*;

const A: u32 = 1001;
const B: u32 = 1002;

fn seg(id: i32, uid: u32, nattch: u64, cpid: i32, lpid: i32) -> ShmSeg {
    ShmSeg {
        id,
        size: 1 << 20,
        cpid,
        lpid,
        nattch,
        uid,
        cuid: uid,
    }
}

fn file(name: &str, uid: u32, kind: FileKind) -> ShmFile {
    ShmFile {
        name: name.into(),
        uid,
        kind,
        size: 4096,
        same_fs: true,
    }
}

struct World {
    shm: Vec<ShmSeg>,
    sem: Vec<SemSet>,
    msg: Vec<MsgQueue>,
    files: Vec<ShmFile>,
}

fn world() -> World {
    World {
        shm: vec![
            seg(1, A, 0, 100, 101), // A's, dead
            seg(2, A, 1, 200, 200), // A's, attached by live pid 200
            seg(3, A, 0, 300, 0),   // A's, creator 300 still alive, never attached
            seg(4, B, 0, 400, 401), // B's
            seg(5, 0, 0, 1, 1),     // root's
        ],
        sem: vec![
            SemSet {
                id: 7,
                nsems: 1,
                uid: A,
                cuid: A,
            },
            SemSet {
                id: 8,
                nsems: 1,
                uid: B,
                cuid: B,
            },
        ],
        msg: vec![MsgQueue {
            id: 9,
            cbytes: 0,
            qnum: 0,
            uid: A,
            cuid: A,
        }],
        files: vec![
            file("nccl-a1", A, FileKind::Regular),
            file("nccl-link", A, FileKind::Symlink),
            file("adir", A, FileKind::Directory),
            file("nccl-b1", B, FileKind::Regular),
            file("sem.x", A, FileKind::Regular),
            ShmFile {
                same_fs: false,
                ..file("mnt", A, FileKind::Regular)
            },
        ],
    }
}

fn alive(pid: i32) -> bool {
    matches!(pid, 1 | 200 | 300)
}

fn plan(uid: u32, cfg: &Config, live: bool, w: &World) -> Result<Plan, Skip> {
    decide(
        uid,
        cfg,
        live,
        &alive,
        &Gathered {
            shm: &w.shm,
            sem: &w.sem,
            msg: &w.msg,
            files: &w.files,
        },
    )
}

fn ids(p: &Plan) -> (Vec<i32>, Vec<i32>, Vec<i32>, Vec<String>) {
    (
        p.shm.iter().map(|s| s.id).collect(),
        p.sem.iter().map(|s| s.id).collect(),
        p.msg.iter().map(|m| m.id).collect(),
        p.files
            .iter()
            .map(|f| f.name.to_string_lossy().into_owned())
            .collect(),
    )
}

#[test]
fn user_gone_everything_of_theirs_and_nothing_else() {
    let w = world();
    let p = plan(A, &Config::default(), false, &w).unwrap();
    assert_eq!(p.mode, Mode::Everything);
    assert_eq!(
        ids(&p),
        (
            vec![1, 2, 3],
            vec![7],
            vec![9],
            vec!["nccl-a1".into(), "sem.x".into()]
        )
    );
    assert_eq!(p.shm_bytes(), 3 << 20);
    assert_eq!(p.file_bytes(), 8192);
    assert_eq!(p.kept, Kept::default());
}

#[test]
fn user_still_live_only_provably_dead_segments() {
    let w = world();
    let p = plan(A, &Config::default(), true, &w).unwrap();
    assert_eq!(p.mode, Mode::DeadOnly);
    assert_eq!(ids(&p), (vec![1], vec![], vec![], vec![]));
    assert_eq!(
        p.kept,
        Kept {
            shm: 2,
            sem: 1,
            msg: 1,
            files: 2
        }
    );
}

#[test]
fn dead_means_unattached_and_both_pids_gone() {
    assert!(shm_is_dead(&seg(1, A, 0, 100, 0), &alive));
    assert!(!shm_is_dead(&seg(1, A, 1, 100, 101), &alive), "attached");
    assert!(
        !shm_is_dead(&seg(1, A, 0, 200, 101), &alive),
        "creator alive"
    );
    assert!(
        !shm_is_dead(&seg(1, A, 0, 100, 300), &alive),
        "last user alive"
    );
    assert!(shm_is_dead(&seg(1, A, 0, 0, 0), &alive), "no pids at all");
}

#[test]
fn root_and_system_accounts_are_never_cleaned() {
    let w = world();
    assert_eq!(
        plan(0, &Config::default(), false, &w),
        Err(Skip::SystemAccount {
            uid: 0,
            min_uid: 1000
        })
    );
    assert!(plan(999, &Config::default(), false, &w).is_err());
    let cfg = Config {
        min_uid: 1002,
        ..Config::default()
    };
    assert!(plan(A, &cfg, false, &w).is_err());
    assert!(plan(B, &cfg, false, &w).is_ok());
}

#[test]
fn switches_and_patterns() {
    let w = world();
    let cfg = Config {
        clean_sem: false,
        clean_msg: false,
        patterns: vec!["nccl-*".into()],
        ..Config::default()
    };
    let p = plan(A, &cfg, false, &w).unwrap();
    assert_eq!(
        ids(&p),
        (vec![1, 2, 3], vec![], vec![], vec!["nccl-a1".into()])
    );
    assert_eq!(
        p.kept,
        Kept {
            shm: 0,
            sem: 1,
            msg: 1,
            files: 0
        }
    );
    let cfg = Config {
        clean_files: false,
        ..Config::default()
    };
    let p = plan(A, &cfg, false, &w).unwrap();
    assert!(p.files.is_empty());
    assert_eq!(p.kept.files, 2);
}

#[test]
fn non_utf8_names_are_left_alone() {
    use std::os::unix::ffi::OsStringExt;
    let mut w = world();
    w.files = vec![ShmFile {
        name: OsString::from_vec(vec![b'n', 0xff]),
        ..file("x", A, FileKind::Regular)
    }];
    assert!(plan(A, &Config::default(), false, &w)
        .unwrap()
        .files
        .is_empty());
}
