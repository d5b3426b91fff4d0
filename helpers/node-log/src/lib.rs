//! What the node helpers (run by slurmd as root) share about their surroundings: a line to
//! syslog, where an admin finds what a helper did to a node, slurmd's environment, and the
//! command line's usage handling.

use std::ffi::CString;
use std::process::ExitCode;

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
