//! What the node helpers (run by slurmd as root) share about their surroundings: a line to
//! syslog, where an admin finds what a helper did to a node, slurmd's environment, and the
//! command line's usage handling.

use std::ffi::{CStr, CString};
use std::process::ExitCode;
use std::sync::Mutex;

use nix::syslog::{self, Facility, LogFlags, Priority, Severity};

/// The command line's arguments through `parse`, which answers `Err("")` for `--help`:
/// `Err(exit code)` after printing the usage (to stdout for `--help`, with the error to
/// stderr otherwise, exit 2).
pub fn parse_command_line<T>(
    program: &str,
    usage: &str,
    parse: impl FnOnce(&[String]) -> Result<T, String>,
) -> Result<T, ExitCode> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match parse(&argv) {
        Ok(a) => Ok(a),
        Err(e) if e.is_empty() => {
            println!("{usage}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{program}: {e}\n{usage}");
            Err(ExitCode::from(2))
        }
    }
}

/// Writes one line to syslog, facility daemon, tagged `tag[pid]`. `priority` is a
/// severity (`libc::LOG_ERR`, ...); an unknown one is logged as an error.
pub fn syslog(tag: &str, priority: libc::c_int, line: &str) {
    // A failed openlog or syslog has nowhere better to be reported: the line is lost, as
    // with syslog(3), which returns nothing.
    let _ = syslog::openlog(Some(ident(tag)), LogFlags::LOG_PID, Facility::LOG_DAEMON);
    let priority = Priority::new(severity(priority), Facility::LOG_DAEMON);
    let _ = syslog::syslog(priority, line.replace('\0', " ").as_str());
    syslog::closelog();
}

/// The tag as openlog(3) wants it: glibc keeps the pointer until closelog, and nix asks for
/// a `'static` one, so each distinct tag is allocated once per process (helpers use one).
fn ident(tag: &str) -> &'static CStr {
    static IDENTS: Mutex<Vec<&'static CStr>> = Mutex::new(Vec::new());
    let tag = CString::new(tag.replace('\0', " ")).unwrap_or_default();
    let mut idents = IDENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = idents.iter().find(|i| **i == tag.as_c_str()) {
        return known;
    }
    let leaked: &'static CStr = Box::leak(tag.into_boxed_c_str());
    idents.push(leaked);
    leaked
}

fn severity(priority: libc::c_int) -> Severity {
    match priority & libc::LOG_PRIMASK {
        libc::LOG_EMERG => Severity::LOG_EMERG,
        libc::LOG_ALERT => Severity::LOG_ALERT,
        libc::LOG_CRIT => Severity::LOG_CRIT,
        libc::LOG_WARNING => Severity::LOG_WARNING,
        libc::LOG_NOTICE => Severity::LOG_NOTICE,
        libc::LOG_INFO => Severity::LOG_INFO,
        libc::LOG_DEBUG => Severity::LOG_DEBUG,
        _ => Severity::LOG_ERR,
    }
}

/// A variable slurmd set, unset when empty (`SLURM_JOB_UID=` means no value).
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tag_is_allocated_once() {
        let a = ident("ml-epilog");
        assert_eq!(a, c"ml-epilog");
        assert!(std::ptr::eq(a, ident("ml-epilog")));
        assert_eq!(ident("a\0b"), c"a b");
    }

    #[test]
    fn severities_keep_their_level() {
        assert_eq!(severity(libc::LOG_INFO) as libc::c_int, libc::LOG_INFO);
        assert_eq!(
            severity(libc::LOG_WARNING) as libc::c_int,
            libc::LOG_WARNING
        );
        assert_eq!(severity(libc::LOG_ERR) as libc::c_int, libc::LOG_ERR);
        assert_eq!(
            severity(libc::LOG_DAEMON | libc::LOG_DEBUG) as libc::c_int,
            libc::LOG_DEBUG
        );
    }
}
