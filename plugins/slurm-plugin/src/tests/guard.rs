use super::*;

#[test]
fn passes_values_through() {
    assert_eq!(catch("t", || 7), Ok(7));
}

#[test]
fn records_panic_message_and_location() {
    // The log write goes to Slurm's logger, which prints to stderr by default.
    let err = catch("job_submit", || -> i32 { panic!("boom {}", 42) }).unwrap_err();
    assert!(err.message.starts_with("boom 42 (at "), "{}", err.message);
    assert!(err.message.contains("guard.rs"), "{}", err.message);
    // The thread is usable and out of guard mode afterwards.
    assert!(!IN_GUARD.with(|g| g.get()));
    assert_eq!(catch("again", || 1), Ok(1));
}

#[test]
fn nested_guards_restore_state() {
    let r = catch("outer", || {
        catch("inner", || -> i32 { panic!("inner") }).is_err()
    });
    assert_eq!(r, Ok(true));
    assert!(!IN_GUARD.with(|g| g.get()));
}

#[test]
fn errno_is_left_as_the_caller_had_it() {
    set_errno(0);
    let r = catch("t", || {
        // What a failed stat or a contended futex leaves behind.
        set_errno(libc::EAGAIN);
        3
    });
    assert_eq!((r, errno()), (Ok(3), 0));
    set_errno(libc::EINTR);
    let _ = catch("t", || -> i32 {
        set_errno(libc::ENOENT);
        panic!("x")
    });
    assert_eq!(errno(), libc::EINTR);
}
