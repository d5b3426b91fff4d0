use super::*;
use crate::plan::Kept;

#[test]
fn bytes_for_people() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(4 << 20), "4.0 MiB");
    assert_eq!(human_bytes(1536), "1.5 KiB");
}

#[test]
fn utc_timestamps() {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_557_966);
    assert_eq!(utc_timestamp(t), "2026-11-24T22:06:06Z");
    assert_eq!(utc_timestamp(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    let leap = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
    assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00Z");
}

#[test]
fn one_line_summary() {
    let job = Job {
        uid: 1001,
        user: Some("alice".into()),
        job_id: Some("42".into()),
        node: Some("n1".into()),
    };
    let plan = Plan {
        mode: Mode::DeadOnly,
        shm: vec![],
        sem: vec![],
        msg: vec![],
        files: vec![],
        kept: Kept {
            shm: 1,
            sem: 2,
            msg: 0,
            files: 3,
        },
    };
    let r = Report {
        shm: 2,
        shm_bytes: 8 << 20,
        changed: 1,
        ..Report::default()
    };
    assert_eq!(
        summary(&job, &plan, &r, 1.25),
        "job 42 user alice (uid 1001) on n1: removed 2 shm (8.0 MiB), 0 sem, 0 msg, 0 files (0 B) \
         [user still has processes here: dead shm segments only]; kept 1 shm, 2 sem, 0 msg, 3 files; \
         1 changed since the scan and left alone; 0 errors; 1.2 ms"
    );
}
