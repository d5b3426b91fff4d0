use super::*;

#[test]
fn status_state_and_uids() {
    let live = "Name:\tpython\nState:\tS (sleeping)\nTgid:\t42\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\n";
    assert_eq!(parse_status(live), (true, vec![1001, 1001, 1001, 1001]));
    let setuid = "State:\tR (running)\nUid:\t1001\t0\t0\t0\n";
    assert_eq!(parse_status(setuid), (true, vec![1001, 0, 0, 0]));
    assert!(!parse_status("State:\tZ (zombie)\nUid:\t1001\t1001\t1001\t1001\n").0);
    assert!(!parse_status("State:\tX (dead)\n").0);
}

#[test]
fn this_process_runs_and_pid_zero_does_not() {
    assert!(pid_running(std::process::id() as i32));
    assert!(!pid_running(0));
    assert!(!pid_running(-1));
}
