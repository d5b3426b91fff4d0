use super::*;

#[test]
fn lines_carry_prefix_and_warning_marker() {
    let log = SlurmLog::new("job_submit/mlpolicy");
    assert_eq!(
        log.format_line(&Level::ERROR, "bad config"),
        "job_submit/mlpolicy: bad config"
    );
    assert_eq!(
        log.format_line(&Level::WARN, "no aws-ofi-nccl"),
        "job_submit/mlpolicy: warning: no aws-ofi-nccl"
    );
}

#[test]
fn levels_map_to_slurm() {
    assert_eq!(SlurmLevel::from_tracing(&Level::ERROR), SlurmLevel::Error);
    assert_eq!(SlurmLevel::from_tracing(&Level::WARN), SlurmLevel::Info);
    assert_eq!(SlurmLevel::from_tracing(&Level::DEBUG), SlurmLevel::Debug);
    assert_eq!(SlurmLevel::from_tracing(&Level::TRACE), SlurmLevel::Debug2);
}

#[test]
fn interior_nul_does_not_lose_the_message() {
    assert_eq!(c_message("a\0b").to_str().unwrap(), "a\u{fffd}b");
}
