//! A deadline for the GPU source: NVML calls can hang on a stuck driver (a GPU falling off
//! the bus, a GSP timeout), and a prolog that hangs holds the job's start. The source runs
//! on a worker thread; when it has not answered by the deadline the run goes on without
//! it (its checks UNKNOWN) and ends. The thread is left behind: the process exits with
//! it. A thread stuck inside the kernel in uninterruptible sleep (D state) keeps the
//! process from being reaped until the call returns; nothing in user space can end that.

use std::sync::mpsc;
use std::time::Duration;

use crate::gather::GpuSource;
use crate::snapshot::Snapshot;

/// What the source gave within the deadline.
#[derive(Debug)]
pub enum Gathered {
    Done(Result<Snapshot, String>),
    /// No answer within this many milliseconds.
    TimedOut(u64),
}

/// `source.snapshot()` on a worker thread, waited for at most `deadline`.
pub fn gather_within(source: Box<dyn GpuSource + Send>, deadline: Duration) -> Gathered {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("gather".into())
        .spawn(move || {
            // The receiver may be gone (deadline passed): nobody to tell.
            let _ = tx.send(source.snapshot());
        });
    if let Err(e) = worker {
        return Gathered::Done(Err(format!("cannot start the gathering thread: {e}")));
    }
    match rx.recv_timeout(deadline) {
        Ok(r) => Gathered::Done(r),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Gathered::TimedOut(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Gathered::Done(Err("the GPU source ended without an answer".into()))
        }
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
