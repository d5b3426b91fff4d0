use super::*;

#[test]
fn expands_with_slurms_grammar() {
    assert_eq!(
        HostList::expand("n[1-3],gpu-[07-08]").unwrap(),
        ["n1", "n2", "n3", "gpu-07", "gpu-08"]
    );
    assert_eq!(
        HostList::first("ip-10-0-1-[5-6]").unwrap().as_deref(),
        Some("ip-10-0-1-5")
    );
    assert_eq!(HostList::expand("").unwrap(), Vec::<String>::new());
}

#[test]
fn refuses_what_cannot_reach_slurm() {
    // A NUL cannot be passed to C. (Slurm refuses descending ranges such as n[5-3] too,
    // but outside a daemon its error() path ends the process, so that is not tested here.)
    assert!(HostList::parse("a\0b").is_err());
}

/// Text after a bracket: a suffix from 23.11 on ("Extend hostlist to support suffix",
/// SchedMD/slurm 0994b5f198), refused before.
#[test]
fn suffix_after_a_range_follows_the_release() {
    #[cfg(slurm_ge_23_11)]
    assert_eq!(HostList::expand("n[1-3]x").unwrap(), ["n1x", "n2x", "n3x"]);
    #[cfg(not(slurm_ge_23_11))]
    assert!(HostList::parse("n[1-3]x").is_err());
}
