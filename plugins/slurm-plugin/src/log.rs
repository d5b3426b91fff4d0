//! Plugin messages through Slurm's own log calls, so they land in the slurmctld / slurmd /
//! slurmstepd log (and, for SPANK in srun and slurmstepd, on the user's terminal) at the
//! right level, with the plugin's prefix.
//!
//! Plugin code logs with `tracing` macros; [`init`] installs the subscriber once per plugin.
//! Level mapping: `error!` -> `error()`, `warn!` -> `info()` with "warning: " (what Slurm's
//! own `warning()` does), `info!` -> `info()`, `debug!` -> `debug()`, `trace!` -> `debug2()`.

use std::ffi::CString;
use std::os::raw::c_int;
use std::sync::OnceLock;

use slurm_sys as sys;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// Slurm's log levels (src/common/log.h `log_level_t`), the ones a plugin writes at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SlurmLevel {
    Error = 2,
    Info = 3,
    Verbose = 4,
    Debug = 5,
    Debug2 = 6,
}

impl SlurmLevel {
    fn from_tracing(level: &Level) -> Self {
        match *level {
            Level::ERROR => SlurmLevel::Error,
            Level::WARN | Level::INFO => SlurmLevel::Info,
            Level::DEBUG => SlurmLevel::Debug,
            Level::TRACE => SlurmLevel::Debug2,
        }
    }
}

/// Whether Slurm would print a message of `level` anywhere (log file, stderr, syslog).
pub fn would_log(level: SlurmLevel) -> bool {
    // SAFETY: no arguments; reads the log configuration of the host process.
    let current = unsafe { sys::slurm_get_log_level() };
    current >= level as c_int
}

/// Builds a C string from a message, replacing interior NULs rather than losing it.
pub(crate) fn c_message(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\u{fffd}")).unwrap_or_default()
}

/// Writes one line through Slurm's log at `level`. Always passes the text as a `%s`
/// argument, never as the format, so a `%` in a user's input cannot be interpreted.
pub fn write(level: SlurmLevel, msg: &str) {
    let text = c_message(msg);
    let fmt = c"%s".as_ptr();
    // SAFETY: variadic Slurm log calls with a constant "%s" format and one valid C string.
    unsafe {
        match level {
            SlurmLevel::Error => sys::slurm_error(fmt, text.as_ptr()),
            SlurmLevel::Info => sys::slurm_info(fmt, text.as_ptr()),
            SlurmLevel::Verbose => sys::slurm_verbose(fmt, text.as_ptr()),
            SlurmLevel::Debug => sys::slurm_debug(fmt, text.as_ptr()),
            SlurmLevel::Debug2 => sys::slurm_debug2(fmt, text.as_ptr()),
        }
    }
}

/// The subscriber behind `tracing` macros in a plugin.
pub struct SlurmLog {
    prefix: &'static str,
}

impl SlurmLog {
    pub fn new(prefix: &'static str) -> Self {
        SlurmLog { prefix }
    }

    /// The line as it is handed to Slurm (prefix, then "warning: " for `warn!`).
    pub fn format_line(&self, level: &Level, message: &str) -> String {
        if *level == Level::WARN {
            format!("{}: warning: {}", self.prefix, message)
        } else {
            format!("{}: {}", self.prefix, message)
        }
    }
}

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={}", field.name(), value));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={:?}", field.name(), value));
        }
    }
}

impl Subscriber for SlurmLog {
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        // Never cache the answer: the daemon's log level can change at run time
        // (`scontrol setdebug`), so `enabled` asks Slurm every time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        would_log(SlurmLevel::from_tracing(metadata.level()))
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        // Spans carry no output of their own here; one id serves all.
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let level = event.metadata().level();
        write(
            SlurmLevel::from_tracing(level),
            &self.format_line(level, &visitor.0),
        );
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

static PREFIX: OnceLock<&'static str> = OnceLock::new();

/// Installs the subscriber for this plugin (once; later calls are no-ops) and returns the
/// prefix in use. Called by the export macros before any plugin code runs.
pub fn init(prefix: &'static str) -> &'static str {
    PREFIX.get_or_init(|| {
        // Fails only if this plugin image already has a subscriber: keep that one.
        let _ = tracing::subscriber::set_global_default(SlurmLog::new(prefix));
        prefix
    })
}

/// The prefix [`init`] installed, or a generic one before it.
pub fn prefix() -> &'static str {
    PREFIX.get().copied().unwrap_or("slurm-plugin")
}

#[cfg(test)]
#[path = "tests/log.rs"]
mod tests;
