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

/// The plugin's expansion (first host and all) agrees with `scontrol show hostnames`, the
/// command site scripts use for MASTER_ADDR, over node lists as clusters name nodes.
#[test]
fn agrees_with_scontrol_show_hostnames() {
    let mut corpus = vec![
        "n1",
        "n[1-3]",
        "n[3,1,2]",
        "n[1-3,7,10-11]",
        "gpu[001-004]",
        "gpu[098-102]",
        "node-[08-11]",
        "ip-10-0-1-[5-6]",
        "a-b-c[1-2],d-e[3-4]",
        "rack[1-2]-node[01-02]",
        "queue1-dy-p5-48xlarge-[1-3]",
        "compute-st-c5-[1-2],compute-dy-g5-[1-4]",
        "x[0000-0002]",
        "n[9-12]",
        "n10,n9,n[1-2]",
        "host.example",
    ];
    // A suffix after the brackets parses from 23.11 on.
    if cfg!(slurm_ge_23_11) {
        corpus.push("n[1-3]-ib");
    }
    // scontrol reads a slurm.conf before anything else; a minimal one is enough here.
    let conf =
        std::env::temp_dir().join(format!("slurm-plugin-hostlist-{}.conf", std::process::id()));
    std::fs::write(&conf, "ClusterName=hostlist\nSlurmctldHost=localhost\n").unwrap();
    for list in corpus {
        let out = std::process::Command::new("scontrol")
            .args(["show", "hostnames", list])
            .env("SLURM_CONF", &conf)
            .output()
            .expect("scontrol runs (Slurm's client commands are installed with its headers)"); // ok-panic: test
        assert!(
            out.status.success(),
            "scontrol show hostnames {list}: {out:?}"
        );
        let want: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(HostList::expand(list).unwrap(), want, "{list}");
        assert_eq!(
            HostList::first(list).unwrap().as_ref(),
            want.first(),
            "{list}"
        );
    }
    let _ = std::fs::remove_file(&conf);
}
