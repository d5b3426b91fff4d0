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

/// How a row of a segment is spoiled: each of these is a malformed row, never a segment.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    /// One field fewer than the header.
    DropField(usize),
    /// One field more than the header.
    ExtraField,
    /// A column the parser reads (shmid, size, cpid, lpid, nattch, uid, cuid) is not a
    /// number of its type.
    NotANumber(usize),
    /// An unsigned column (size, nattch, uid, cuid) is negative.
    Negative(usize),
}

/// One line after the header: a segment, a spoiled segment, or a blank line (skipped).
#[derive(Debug, Clone)]
enum Line {
    Good(ShmSeg),
    Bad(ShmSeg, Spoil),
    Blank,
}

/// The header's positions of the columns the parser reads.
const READ: [usize; 7] = [1, 3, 4, 5, 6, 7, 9];
/// The positions of its unsigned columns: size, nattch, uid, cuid.
const UNSIGNED: [usize; 4] = [3, 6, 7, 9];

impl Line {
    fn text(&self) -> String {
        match self {
            Line::Good(s) => shm_line(s),
            Line::Blank => "   ".to_string(),
            Line::Bad(s, spoil) => {
                let mut f: Vec<String> = shm_line(s).split_whitespace().map(String::from).collect();
                match *spoil {
                    Spoil::DropField(i) => {
                        f.remove(i % f.len());
                    }
                    Spoil::ExtraField => f.push("0".to_string()),
                    Spoil::NotANumber(i) => f[READ[i % READ.len()]] = "x1".to_string(),
                    Spoil::Negative(i) => f[UNSIGNED[i % UNSIGNED.len()]] = "-1".to_string(),
                }
                f.join(" ")
            }
        }
    }
}

fn line() -> impl Strategy<Value = Line> {
    let spoil = prop_oneof![
        any::<usize>().prop_map(Spoil::DropField),
        Just(Spoil::ExtraField),
        any::<usize>().prop_map(Spoil::NotANumber),
        any::<usize>().prop_map(Spoil::Negative),
    ];
    prop_oneof![
        3 => seg().prop_map(Line::Good),
        3 => (seg(), spoil).prop_map(|(s, sp)| Line::Bad(s, sp)),
        1 => Just(Line::Blank),
    ]
}

proptest! {
    #[test]
    fn parsers_never_panic(text in ".{0,2000}") {
        let _ = parse_shm(&text);
        let _ = parse_sem(&text);
        let _ = parse_msg(&text);
    }

    #[test]
    fn good_rows_read_back_and_each_bad_line_is_counted(lines in prop::collection::vec(line(), 0..40)) {
        let mut text = String::from(SHM_HEADER);
        for l in &lines {
            text.push('\n');
            text.push_str(&l.text());
        }
        let p = parse_shm(&text).unwrap();
        let good: Vec<ShmSeg> = lines
            .iter()
            .filter_map(|l| match l {
                Line::Good(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let bad = lines.iter().filter(|l| matches!(l, Line::Bad(..))).count();
        prop_assert_eq!(p.rows, good);
        prop_assert_eq!(p.malformed, bad);
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
