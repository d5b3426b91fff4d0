//! A deadline for the GPU source and the sysfs scan: NVML calls can hang on a stuck
//! driver (a GPU falling off the bus, a GSP timeout), and a prolog that hangs holds the
//! job's start. Each source runs on a worker thread; when it has not answered by the
//! deadline the run goes on without it (its checks UNKNOWN) and ends. The thread is left
//! behind: the process exits with it. A thread stuck inside the kernel in uninterruptible sleep (D state) keeps the
//! process from being reaped until the call returns; nothing in user space can end that.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::gather::GpuSource;
use crate::snapshot::Snapshot;

/// What the source gave within the deadline.
#[derive(Debug)]
pub enum Gathered {
    Done(Result<Snapshot, String>),
    /// No answer within this many milliseconds.
    TimedOut(u64),
}

/// Work started on a worker thread, to be waited for until a deadline.
pub struct Pending<T>(Result<mpsc::Receiver<T>, String>);

/// Starts `f` on a worker thread named `name`.
pub fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // The receiver may be gone (deadline passed): nobody to tell.
            let _ = tx.send(f());
        });
    Pending(
        worker
            .map(|_| rx)
            .map_err(|e| format!("cannot start the {name} thread: {e}")),
    )
}

/// Why a wait gave no value.
#[derive(Debug, PartialEq, Eq)]
pub enum Missed {
    /// The deadline passed first.
    TimedOut,
    /// The worker could not start, or ended without an answer (a panic).
    Failed(String),
}

impl<T> Pending<T> {
    /// The value, if it comes before `until`.
    pub fn wait_until(self, until: Instant) -> Result<T, Missed> {
        let rx = self.0.map_err(Missed::Failed)?;
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(v) => Ok(v),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Missed::TimedOut),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(Missed::Failed("ended without an answer".into()))
            }
        }
    }
}

/// `source.snapshot()` on a worker thread, waited for at most `deadline`.
pub fn gather_within(source: Box<dyn GpuSource + Send>, deadline: Duration) -> Gathered {
    let until = Instant::now() + deadline;
    match spawn("gather", move || source.snapshot()).wait_until(until) {
        Ok(r) => Gathered::Done(r),
        Err(Missed::TimedOut) => {
            Gathered::TimedOut(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX))
        }
        Err(Missed::Failed(e)) => Gathered::Done(Err(format!("the GPU source: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::SnapshotFile;

    /// A snapshot path that is a FIFO nobody writes: opening it blocks, as a stuck NVML
    /// call would. The run must go on at the deadline. (No bound on how long that took is
    /// asserted: the test's point is that it returns at all, with `TimedOut`.)
    #[test]
    fn a_source_that_blocks_ends_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stuck.json");
        nix::unistd::mkfifo(
            &fifo,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
        match gather_within(Box::new(SnapshotFile(fifo)), Duration::from_millis(200)) {
            Gathered::TimedOut(ms) => assert_eq!(ms, 200),
            other => panic!("{other:?}"),
        }
    }

    /// Work that outlives the deadline is missed; work that ends in time is had.
    #[test]
    fn pending_work_is_waited_for_until_the_deadline() {
        let slow = spawn("slow", || {
            std::thread::sleep(Duration::from_secs(30));
            1
        });
        assert_eq!(
            slow.wait_until(Instant::now() + Duration::from_millis(100)),
            Err(Missed::TimedOut)
        );
        let quick = spawn("quick", || 2);
        assert_eq!(
            quick.wait_until(Instant::now() + Duration::from_secs(30)),
            Ok(2)
        );
        let panics = spawn("panics", || -> u8 { panic!("test: a worker that fails") });
        assert_eq!(
            panics.wait_until(Instant::now() + Duration::from_secs(30)),
            Err(Missed::Failed("ended without an answer".into()))
        );
    }

    #[test]
    fn a_source_that_answers_is_used() {
        let p = std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/h100x8-healthy.json"
        ));
        match gather_within(Box::new(SnapshotFile(p)), Duration::from_secs(30)) {
            Gathered::Done(Ok(s)) => assert_eq!(s.gpus.len(), 8),
            other => panic!("{other:?}"),
        }
        let missing = std::path::PathBuf::from("/nonexistent/snap.json");
        match gather_within(Box::new(SnapshotFile(missing)), Duration::from_secs(30)) {
            Gathered::Done(Err(e)) => {
                assert_eq!(
                    e,
                    "/nonexistent/snap.json: No such file or directory (os error 2)"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
