use super::*;

#[test]
fn values_are_parsed_and_normalised() {
    assert_eq!(Mode::parse("on"), Ok(Mode::On));
    assert_eq!(Mode::parse("off"), Ok(Mode::Off));
    assert_eq!(Mode::parse("fabric-only"), Ok(Mode::FabricOnly));
    assert_eq!(parse_nccl_debug("info"), Ok("INFO".to_string()));
    assert_eq!(parse_master_port("29500"), Ok(29500));
    assert!(parse_master_port("80").is_err());
    assert!(parse_master_port("65536").is_err());
    assert!(parse_profile("efa-legacy").is_ok());
    assert!(parse_profile("../x").is_err());
}

#[test]
fn messages_name_the_option_as_the_user_gave_it() {
    let mut c = Choices::default();
    assert_eq!(
        c.set(OPT_MODE.val, "maybe", Via::CommandLine)
            .unwrap_err()
            .0,
        "--mlenv: \"maybe\" is not on, off or fabric-only"
    );
    assert_eq!(
        c.set(OPT_NCCL_DEBUG.val, "loud", Via::Environment)
            .unwrap_err()
            .0,
        "$SLURM_MLENV_NCCL_DEBUG: \"loud\" is not an NCCL_DEBUG level (VERSION, WARN, INFO, TRACE)"
    );
    assert_eq!(
        c.set(OPT_MASTER_PORT.val, "http", Via::CommandLine)
            .unwrap_err()
            .0,
        "--master-port: \"http\" is not a port in 1024-65535"
    );
}

#[test]
fn the_command_line_wins_over_the_environment() {
    let mut c = Choices::default();
    c.set(OPT_MODE.val, "fabric-only", Via::CommandLine)
        .unwrap();
    c.set(OPT_MASTER_PORT.val, "31000", Via::CommandLine)
        .unwrap();
    let env = |k: &str| match k {
        "SLURM_MLENV" => Some("off".to_string()),
        "SLURM_MLENV_MASTER_PORT" => Some("32000".to_string()),
        "SLURM_MLENV_NCCL_DEBUG" => Some("warn".to_string()),
        "SLURM_MLENV_PROFILE" => Some(String::new()),
        _ => None,
    };
    c.fill_from_env(env).unwrap();
    assert_eq!(c.mode, Some(Mode::FabricOnly));
    assert_eq!(c.master_port, Some(31000));
    assert_eq!(c.nccl_debug.as_deref(), Some("WARN"));
    assert_eq!(c.profile, None);
    assert_eq!(
        c.as_env(),
        vec![
            ("SLURM_MLENV", "fabric-only".to_string()),
            ("SLURM_MLENV_NCCL_DEBUG", "WARN".to_string()),
            ("SLURM_MLENV_MASTER_PORT", "31000".to_string()),
        ]
    );
    // A bad value in the environment is refused even when the command line has its own.
    let mut c = Choices::default();
    let e = c
        .fill_from_env(|k| (k == "SLURM_MLENV").then(|| "bogus".to_string()))
        .unwrap_err();
    assert_eq!(e.0, "$SLURM_MLENV: \"bogus\" is not on, off or fabric-only");
}

#[test]
fn options_are_declared_consistently() {
    for o in ALL {
        assert_eq!(o.c_name.to_str().unwrap(), o.name);
        assert_eq!(
            o.env,
            format!(
                "SLURM_{}",
                if o.val == 1 {
                    "MLENV".to_string()
                } else {
                    format!(
                        "MLENV_{}",
                        o.name
                            .trim_start_matches("mlenv-")
                            .replace('-', "_")
                            .to_uppercase()
                    )
                }
            )
        );
        assert!(o.usage.to_str().unwrap().contains(&format!("${}", o.env)));
    }
}

#[test]
fn a_repeated_option_must_repeat_its_value() {
    let mut c = Choices::default();
    c.set(OPT_MASTER_PORT.val, "31000", Via::CommandLine)
        .unwrap();
    // Slurm may hand the same option over twice: the same value is fine.
    c.set(OPT_MASTER_PORT.val, "31000", Via::CommandLine)
        .unwrap();
    assert_eq!(
        c.set(OPT_MASTER_PORT.val, "32000", Via::CommandLine)
            .unwrap_err()
            .0,
        "--master-port: specified multiple times (\"31000\", then \"32000\")"
    );
    assert_eq!(c.master_port, Some(31000), "the first value stays");
    // Compared as parsed: "yes" is "on", "info" is "INFO".
    c.set(OPT_MODE.val, "on", Via::CommandLine).unwrap();
    c.set(OPT_MODE.val, "yes", Via::CommandLine).unwrap();
    c.set(OPT_NCCL_DEBUG.val, "info", Via::CommandLine).unwrap();
    c.set(OPT_NCCL_DEBUG.val, "INFO", Via::CommandLine).unwrap();
    assert_eq!(
        c.set(OPT_MODE.val, "fabric-only", Via::CommandLine)
            .unwrap_err()
            .0,
        "--mlenv: specified multiple times (\"on\", then \"fabric-only\")"
    );
    c.set(OPT_PROFILE.val, "efa", Via::CommandLine).unwrap();
    assert_eq!(
        c.set(OPT_PROFILE.val, "efa-legacy", Via::CommandLine)
            .unwrap_err()
            .0,
        "--mlenv-profile: specified multiple times (\"efa\", then \"efa-legacy\")"
    );
}

#[test]
fn an_unknown_option_number_is_not_taken_for_the_port() {
    let mut c = Choices::default();
    assert_eq!(
        c.set(9, "31000", Via::CommandLine).unwrap_err().0,
        "option number 9 is none of mlenv's (--mlenv, --mlenv-profile, --nccl-debug, --master-port)"
    );
    assert_eq!(c, Choices::default());
    // Each option sets its own choice, whatever its number.
    for spec in ALL {
        let mut c = Choices::default();
        let arg = match spec.opt {
            Opt::Mode => "off",
            Opt::Profile => "efa",
            Opt::NcclDebug => "warn",
            Opt::MasterPort => "31000",
        };
        c.set(spec.val, arg, Via::Environment).unwrap();
        let set = [
            c.mode.is_some(),
            c.profile.is_some(),
            c.nccl_debug.is_some(),
            c.master_port.is_some(),
        ];
        assert_eq!(set.iter().filter(|s| **s).count(), 1, "{spec:?}: {c:?}");
    }
}
