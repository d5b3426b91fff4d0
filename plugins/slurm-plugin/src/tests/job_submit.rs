use super::*;

struct Accepts;

impl JobSubmitPlugin for Accepts {
    fn init() -> Result<Self, String> {
        Ok(Accepts)
    }
    fn job_submit(&self, _: &mut JobDesc<'_>, _: u32) -> Result<(), Rejection> {
        Ok(())
    }
    fn job_modify(&self, _: &mut JobDesc<'_>, _: u32) -> Result<(), Rejection> {
        Ok(())
    }
}

/// An accepted `scontrol update` leaves errno 0 (slurmctld may read it as the update's
/// result); a submission leaves errno as slurmctld had it.
#[test]
fn an_accepted_update_hands_back_a_clean_errno() {
    let state = RwLock::new(Some(Accepts));
    // SAFETY: job_desc_msg_t is plain C data; all-zero is a valid (empty) value.
    let mut desc: sys::job_desc_msg_t = unsafe { std::mem::zeroed() };
    let call = |call: Call, desc: &mut sys::job_desc_msg_t| {
        guard::set_errno(libc::EAGAIN);
        // SAFETY: a valid job_desc_msg_t and no err_msg.
        let rc = unsafe { run_call(&state, call, desc, 1000, std::ptr::null_mut()) };
        (rc, std::io::Error::last_os_error().raw_os_error())
    };
    assert_eq!(call(Call::Modify, &mut desc), (crate::rc::SUCCESS, Some(0)));
    assert_eq!(
        call(Call::Submit, &mut desc),
        (crate::rc::SUCCESS, Some(libc::EAGAIN))
    );
}
