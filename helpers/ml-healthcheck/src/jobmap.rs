//! dcgm-exporter's HPC job mapping (`--hpc-job-mapping-dir`, `DCGM_HPC_JOB_MAPPING_DIR`):
//! one file per GPU, named by its index (`0`, `1`, ...), holding the ids of the jobs on that
//! GPU, one per line. dcgm-exporter reads every file whose name is a number
//! (internal/pkg/transformation/hpc.go, `getGPUFiles`, `readFile`) and labels that GPU's
//! metrics `hpc_job="<id>"`. The prolog adds the job's id to the files of its GPUs
//! (`SLURM_JOB_GPUS`), the epilog takes it out again (a file left empty goes).
//!
//! Root code in a directory: the directory must be root's and writable by nobody else; it
//! is opened once with `O_NOFOLLOW` and every file is reached relative to it, without
//! following a link (a file that is a link is replaced, never written through). Files are
//! written beside their name and renamed over it, so dcgm-exporter reads the old list or
//! the new one; the temporary names (`.0.<pid>`) are not numbers and it skips them. Prologs
//! and epilogs of jobs sharing a GPU (shards, `OverSubscribe`) take turns on a `flock` of a
//! root-only file in the directory (`.lock`: anyone may lock the directory itself).

use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, Flock, FlockArg, OFlag};
use nix::sys::stat::{fstat, Mode as FileMode};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// The file's new text with `job` added: its lines kept, `job` once, at the end.
pub fn with_job(old: &str, job: &str) -> String {
    let mut lines: Vec<&str> = old.lines().filter(|l| !l.trim().is_empty()).collect();
    if !lines.iter().any(|l| l.trim() == job) {
        lines.push(job);
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The file's new text without `job`: `None` when it names no job any more (the file
/// goes), the text unchanged when it did not name `job` (another job's file is left
/// alone).
pub fn without_job(old: &str, job: &str) -> Option<String> {
    let rest: Vec<&str> = old
        .lines()
        .filter(|l| !l.trim().is_empty() && l.trim() != job)
        .collect();
    if rest.is_empty() {
        None
    } else {
        Some(rest.iter().map(|l| format!("{l}\n")).collect())
    }
}

/// What the slot does to the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Prolog: the job's id into its GPUs' files.
    Add,
    /// Epilog: out of them.
    Remove,
}

/// What one file became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Written,
    Removed,
    /// It did not name the job (epilog): left as it was.
    NotOurs,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Written => "written",
            Change::Removed => "removed",
            Change::NotOurs => "left (another job's)",
        })
    }
}

/// The mapping directory, open and locked.
pub struct MappingDir {
    dir: OwnedFd,
    /// Held while the directory is changed.
    _lock: Flock<OwnedFd>,
    path: String,
}

/// The lock file: not a number, so dcgm-exporter skips it.
const LOCK: &str = ".lock";

impl MappingDir {
    /// Opens (and first creates, mode 0755: it lives on tmpfs and a reboot removes it) the
    /// directory, refuses it unless root owns it and nobody else can write it, and waits
    /// for the lock.
    pub fn open(path: &Path) -> Result<MappingDir, String> {
        let p = path.display().to_string();
        let mut mkdir = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut mkdir, 0o755);
        match mkdir.create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {p}: {e}")),
        }
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            FileMode::empty(),
        )
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => {
                format!("{p} is not a directory (a link?): refusing it")
            }
            e => format!("cannot open {p}: {e}"),
        })?;
        let st = fstat(fd.as_fd()).map_err(|e| format!("cannot stat {p}: {e}"))?;
        trusted_config::check(st.st_uid, st.st_mode, path)?;
        // The lock is a root-only file in the directory, not the directory: anyone can
        // open the directory and lock it, and so hold every prolog of the node.
        let lock = openat(
            fd.as_fd(),
            LOCK,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            FileMode::from_bits_truncate(0o600),
        )
        .map_err(|e| format!("cannot open {p}/{LOCK}: {e}"))?;
        let ls = fstat(lock.as_fd()).map_err(|e| format!("cannot stat {p}/{LOCK}: {e}"))?;
        if ls.st_mode & libc::S_IFMT != libc::S_IFREG
            || ls.st_uid != st.st_uid
            || ls.st_mode & 0o077 != 0
        {
            return Err(format!(
                "{p}/{LOCK} is not a file only its owner can open: refusing it"
            ));
        }
        let lock = Flock::lock(lock, FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("cannot lock {p}/{LOCK}: {e}"))?;
        Ok(MappingDir {
            dir: fd,
            _lock: lock,
            path: p,
        })
    }

    /// One GPU's file, as text; `""` when there is none. A link or anything but a regular
    /// file counts as none (it is replaced by the write).
    fn read(&self, name: &str) -> Result<String, String> {
        let fd = match openat(
            self.dir.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            FileMode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ELOOP) => return Ok(String::new()),
            Err(e) => return Err(format!("cannot open {}/{name}: {e}", self.path)),
        };
        let f = std::fs::File::from(fd);
        let meta = f
            .metadata()
            .map_err(|e| format!("{}/{name}: {e}", self.path))?;
        if !meta.is_file() || meta.uid() != 0 {
            return Ok(String::new());
        }
        let mut text = String::new();
        f.take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read {}/{name}: {e}", self.path))?;
        Ok(text)
    }

    /// Writes `text` beside `name` and renames it over: whatever `name` was (a link too)
    /// is replaced, nothing is written through it.
    fn write(&self, name: &str, text: &str) -> Result<(), String> {
        let tmp = format!(".{name}.{}", std::process::id());
        let err = |e: &dyn fmt::Display| format!("cannot write {}/{name}: {e}", self.path);
        let _ = unlinkat(self.dir.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        let fd = openat(
            self.dir.as_fd(),
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            FileMode::from_bits_truncate(0o644),
        )
        .map_err(|e| err(&e))?;
        let mut f = std::fs::File::from(fd);
        let done = f
            .write_all(text.as_bytes())
            .map_err(|e| err(&e))
            .and_then(|()| {
                renameat(self.dir.as_fd(), tmp.as_str(), self.dir.as_fd(), name)
                    .map_err(|e| err(&e))
            });
        if done.is_err() {
            let _ = unlinkat(self.dir.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        done
    }

    fn remove(&self, name: &str) -> Result<(), String> {
        match unlinkat(self.dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(format!("cannot remove {}/{name}: {e}", self.path)),
        }
    }

    /// Adds `job` to, or takes it out of, the file of each GPU in `gpus`.
    pub fn apply(&self, op: Op, job: &str, gpus: &[u32]) -> Vec<(u32, Result<Change, String>)> {
        gpus.iter()
            .map(|&gpu| (gpu, self.apply_one(op, job, &gpu.to_string())))
            .collect()
    }

    fn apply_one(&self, op: Op, job: &str, name: &str) -> Result<Change, String> {
        let old = self.read(name)?;
        match op {
            Op::Add => self
                .write(name, &with_job(&old, job))
                .map(|()| Change::Written),
            Op::Remove if !old.lines().any(|l| l.trim() == job) => Ok(Change::NotOurs),
            Op::Remove => match without_job(&old, job) {
                None => self.remove(name).map(|()| Change::Removed),
                Some(rest) => self.write(name, &rest).map(|()| Change::Written),
            },
        }
    }
}

/// `SLURM_JOB_ID`: digits (an array task has its own plain id). Anything else is refused:
/// it becomes a line of a file.
pub fn valid_job_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_goes_in_once_and_out_alone() {
        assert_eq!(with_job("", "42"), "42\n");
        assert_eq!(with_job("41\n", "42"), "41\n42\n");
        assert_eq!(with_job("41\n42\n", "42"), "41\n42\n");
        assert_eq!(with_job("\n41", "42"), "41\n42\n");
        assert_eq!(without_job("42\n", "42"), None);
        assert_eq!(without_job("41\n42\n", "42"), Some("41\n".into()));
        assert_eq!(without_job("41\n", "42"), Some("41\n".into()));
        assert_eq!(without_job("420\n", "42"), Some("420\n".into()));
        assert_eq!(without_job("", "42"), None);
    }

    #[test]
    fn job_ids() {
        assert!(valid_job_id("42"));
        assert!(!valid_job_id(""));
        assert!(!valid_job_id("42\n43"));
        assert!(!valid_job_id("../x"));
    }

    /// Anyone may open the directory (0755: dcgm-exporter reads it) and `flock` it: a
    /// user holding that lock must not hold every prolog and epilog of the node. The
    /// slots lock a root-only file in it instead.
    #[test]
    fn a_lock_a_user_holds_on_the_directory_holds_no_slot() {
        let d = tempfile::tempdir().unwrap();
        if d.path().metadata().unwrap().uid() != 0 {
            return;
        }
        let dir = d.path().join("map");
        drop(MappingDir::open(&dir).unwrap());
        // What `flock -x DIR sleep` of any user does: a read-only descriptor, locked.
        let users = std::fs::File::open(&dir).unwrap();
        let _held = Flock::lock(users, FlockArg::LockExclusive).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let at = dir.clone();
        std::thread::spawn(move || {
            let r = MappingDir::open(&at).map(|m| m.apply(Op::Add, "42", &[0]));
            let _ = tx.send(r);
        });
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the prolog waited on the user's lock");
        assert_eq!(r, Ok(vec![(0, Ok(Change::Written))]));
        let lock = dir.join(".lock").metadata().unwrap();
        assert_eq!(lock.mode() & 0o777, 0o600);
    }

    /// The directory rules need root (ownership); the tests run as root on the cluster
    /// machine, and skip the ownership part otherwise.
    #[test]
    fn files_appear_and_go_and_links_are_replaced_not_followed() {
        let d = tempfile::tempdir().unwrap();
        if d.path().metadata().unwrap().uid() != 0 {
            return;
        }
        let dir = d.path().join("map");
        let outside = d.path().join("outside");
        std::fs::write(&outside, "keep\n").unwrap();
        let m = MappingDir::open(&dir).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("3")).unwrap();
        let r = m.apply(Op::Add, "42", &[1, 3]);
        assert!(r.iter().all(|(_, c)| c == &Ok(Change::Written)), "{r:?}");
        assert_eq!(std::fs::read_to_string(dir.join("1")).unwrap(), "42\n");
        assert_eq!(std::fs::read_to_string(dir.join("3")).unwrap(), "42\n");
        assert!(!dir.join("3").symlink_metadata().unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep\n");
        // Another job on GPU 1; the epilog of 42 leaves it, and a file of someone else's.
        m.apply(Op::Add, "43", &[1]);
        std::fs::write(dir.join("5"), "44\n").unwrap();
        let r = m.apply(Op::Remove, "42", &[1, 3, 5]);
        assert_eq!(
            r,
            vec![
                (1, Ok(Change::Written)),
                (3, Ok(Change::Removed)),
                (5, Ok(Change::NotOurs))
            ]
        );
        assert_eq!(std::fs::read_to_string(dir.join("1")).unwrap(), "43\n");
        assert!(!dir.join("3").exists());
        assert_eq!(std::fs::read_to_string(dir.join("5")).unwrap(), "44\n");
        drop(m);
        // A directory others can write, or a link to one, is refused.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = MappingDir::open(&dir).err().unwrap();
        assert!(e.contains("writable by group or others"), "{e}");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let e = MappingDir::open(&link).err().unwrap();
        assert!(e.contains("is not a directory (a link?)"), "{e}");
    }
}
