use super::*;

#[test]
fn replace_frees_old_and_sets_new_with_slurms_allocator() {
    let mut field: *mut c_char = xstrdup("gres:gpu:1").unwrap();
    unsafe {
        replace(&mut field, Some("gres/gpu:8")).unwrap();
        assert_eq!(borrow(field).as_deref(), Some("gres/gpu:8"));
        assert_eq!(
            replace(&mut field, Some("a\0b")),
            Err(InteriorNul("a\0b".into()))
        );
        // A refused value leaves the old one in place.
        assert_eq!(borrow(field).as_deref(), Some("gres/gpu:8"));
        replace(&mut field, None).unwrap();
    }
    assert!(field.is_null());
}

#[test]
fn lossy_copy_keeps_the_message() {
    let mut p = xstrdup_lossy("bad\0value");
    unsafe {
        assert_eq!(borrow(p).as_deref(), Some("bad\u{fffd}value"));
        replace(&mut p, None).unwrap();
    }
}
