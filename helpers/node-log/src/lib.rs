//! What the node helpers (run by slurmd as root) share about their surroundings: a line to
//! syslog, where an admin finds what a helper did to a node, and slurmd's environment.

use std::ffi::CString;

/// Writes one line to syslog, facility daemon, tagged `tag[pid]`.
pub fn syslog(tag: &str, priority: libc::c_int, line: &str) {
    let text = CString::new(line.replace('\0', " ")).unwrap_or_default();
    let tag = CString::new(tag.replace('\0', " ")).unwrap_or_default();
    // SAFETY: NUL-terminated tag (kept alive until closelog) and a "%s" format with one
    // valid C string.
    unsafe {
        libc::openlog(tag.as_ptr(), libc::LOG_PID, libc::LOG_DAEMON);
        libc::syslog(priority, c"%s".as_ptr(), text.as_ptr());
        libc::closelog();
    }
}

/// A variable slurmd set, unset when empty (`SLURM_JOB_UID=` means no value).
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
