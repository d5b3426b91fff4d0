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
fn refuses_what_slurm_refuses() {
    // Text after a range is refused. (Descending ranges such as n[5-3] are refused too,
    // but outside a daemon Slurm's error() path ends the process, so not tested here.)
    assert!(HostList::parse("n[1-3]x").is_err());
    assert!(HostList::parse("a\0b").is_err());
}
