//! Property tests of the version parsers: any header text or `-V` output is read without a
//! panic, and every version round-trips through its encodings.

use proptest::prelude::*;
use slurm_locate::SlurmVersion;

proptest! {
    #[test]
    fn header_and_program_parsers_never_panic(text in ".{0,400}") {
        let _ = SlurmVersion::parse_version_header(&text);
        let _ = SlurmVersion::parse_program_version(&text);
    }

    #[test]
    fn versions_round_trip(major in 20u32..40, minor in 0u32..12, micro in 0u32..30) {
        let v = SlurmVersion { major, minor, micro };
        prop_assert_eq!(SlurmVersion::from_number(v.number()), v);
        let header = format!("#define SLURM_VERSION_NUMBER 0x{:06x}\n", v.number());
        prop_assert_eq!(SlurmVersion::parse_version_header(&header).unwrap(), v);
        let program = format!("slurm {major}.{minor:02}.{micro}\n");
        prop_assert_eq!(SlurmVersion::parse_program_version(&program), Some(v));
        // The cfgs are exactly the known releases at or below this one.
        let cfgs = v.cfgs();
        prop_assert!(cfgs.windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(cfgs.is_empty(), (major, minor) < (22, 5));
    }
}
