use super::*;

const SHM: &str = include_str!("../../tests/fixtures/shm");
const SEM: &str = include_str!("../../tests/fixtures/sem");
const MSG: &str = include_str!("../../tests/fixtures/msg");

#[test]
fn shm_rows_and_malformed_lines() {
    let p = parse_shm(SHM).unwrap();
    assert_eq!(p.malformed, 3, "garbage, a non-numeric size, a short row");
    assert_eq!(p.rows.len(), 4);
    assert_eq!(
        p.rows[0],
        ShmSeg {
            id: 3,
            size: 4194304,
            cpid: 2311,
            lpid: 2344,
            nattch: 0,
            uid: 1001,
            cuid: 1001
        }
    );
    assert_eq!(p.rows[1].lpid, 0);
    assert_eq!((p.rows[2].uid, p.rows[2].nattch), (0, 2));
}

#[test]
fn older_kernels_without_rss_and_swap_columns() {
    let text = "       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime\n\
                         0      32769  1600     524288  4000  4001      0  1001  1001  1001  1001 1 2 3\n";
    let p = parse_shm(text).unwrap();
    assert_eq!(p.malformed, 0);
    assert_eq!(p.rows[0].id, 32769);
    assert_eq!(p.rows[0].size, 524288);
}

#[test]
fn sem_and_msg() {
    let s = parse_sem(SEM).unwrap();
    assert_eq!(s.malformed, 0);
    assert_eq!(
        s.rows,
        vec![
            SemSet {
                id: 0,
                nsems: 1,
                uid: 1001,
                cuid: 1001
            },
            SemSet {
                id: 1,
                nsems: 4,
                uid: 0,
                cuid: 0
            }
        ]
    );
    let m = parse_msg(MSG).unwrap();
    assert_eq!(
        m.rows,
        vec![MsgQueue {
            id: 0,
            cbytes: 128,
            qnum: 2,
            uid: 1001,
            cuid: 1001
        }]
    );
}

#[test]
fn header_only_is_an_empty_table() {
    let p = parse_sem(
        "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
    )
    .unwrap();
    assert!(p.rows.is_empty());
    assert_eq!(p.malformed, 0);
}

#[test]
fn a_header_without_the_needed_columns_is_an_error() {
    let e = parse_shm("key shmid perms size\n0 1 600 4096\n").unwrap_err();
    assert!(e.0.contains("no 'cpid' column"), "{e}");
    assert!(parse_msg("").is_err());
}
