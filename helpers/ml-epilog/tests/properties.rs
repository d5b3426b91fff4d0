//! Property tests of ml-epilog's parsers: whatever the kernel (or a corrupted file) hands
//! them, they never panic, and what they read back is what was written.

use ml_epilog::config::{glob_match, Config};
use ml_epilog::sysvipc::{parse_msg, parse_sem, parse_shm, ShmSeg};
use proptest::prelude::*;

const SHM_HEADER: &str = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap";

fn shm_line(s: &ShmSeg) -> String {
    format!(
        "{:>10} {:>10} {:>5} {:>20} {:>5} {:>5} {:>6} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>21} {:>21}",
        0, s.id, 600, s.size, s.cpid, s.lpid, s.nattch, s.uid, 100, s.cuid, 100, 1, 2, 3, 4096, 0
    )
}

fn seg() -> impl Strategy<Value = ShmSeg> {
    (
        0..i32::MAX,
        any::<u64>(),
        0..4_194_304i32,
        0..4_194_304i32,
        0..1000u64,
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(id, size, cpid, lpid, nattch, uid, cuid)| ShmSeg {
            id,
            size,
            cpid,
            lpid,
            nattch,
            uid,
            cuid,
        })
}

proptest! {
    #[test]
    fn parsers_never_panic(text in ".{0,2000}") {
        let _ = parse_shm(&text);
        let _ = parse_sem(&text);
        let _ = parse_msg(&text);
    }

    #[test]
    fn garbage_rows_after_a_good_header_are_counted_not_guessed(rows in prop::collection::vec("[ -~]{0,80}", 0..20)) {
        let text = format!("{SHM_HEADER}\n{}", rows.join("\n"));
        let p = parse_shm(&text).unwrap();
        prop_assert!(p.rows.len() + p.malformed <= rows.len());
    }

    #[test]
    fn shm_rows_read_back_as_written(segs in prop::collection::vec(seg(), 0..50)) {
        let mut text = String::from(SHM_HEADER);
        for s in &segs {
            text.push('\n');
            text.push_str(&shm_line(s));
        }
        let p = parse_shm(&text).unwrap();
        prop_assert_eq!(p.malformed, 0);
        prop_assert_eq!(p.rows, segs);
    }

    #[test]
    fn config_text_never_panics(text in "(.{0,60}\n){0,10}") {
        let mut c = Config::default();
        let _ = c.apply_text(&text, "prop");
        // Whatever was accepted, root is never in reach.
        prop_assert!(c.min_uid >= 1);
    }

    #[test]
    fn star_matches_everything_and_literals_match_themselves(name in "[a-z0-9._-]{0,30}") {
        prop_assert!(glob_match("*", &name));
        prop_assert!(glob_match(&name, &name));
        let starred = format!("{name}*");
        let extended = format!("{name}x");
        prop_assert!(glob_match(&starred, &extended));
        prop_assert!(!glob_match(&extended, &name));
    }

    #[test]
    fn question_marks_match_exactly_that_many(name in "[a-z]{0,12}") {
        let qs = "?".repeat(name.chars().count());
        prop_assert!(glob_match(&qs, &name));
        let one_more = format!("{qs}?");
        prop_assert!(!glob_match(&one_more, &name));
    }
}
