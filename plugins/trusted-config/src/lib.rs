//! Config files that steer root code (slurmstepd's SPANK plugins, slurmctld's job_submit
//! plugin, root-run node helpers) are used only when root owns them and neither group nor
//! others can write them; otherwise anyone who can edit the file controls what root does.
//! One check, one wording, for every such file of the project; one rule for where such a
//! file is looked for; one way to write one.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where Slurm's own config lives when nothing says otherwise.
pub const SLURM_CONF_DIR: &str = "/etc/slurm";

/// The file `name` an admin put beside slurm.conf: in `slurm_conf`'s directory, else in
/// /etc/slurm; the first that `exists`. Every config of the project is found this way.
pub fn beside_slurm_conf(
    name: &str,
    slurm_conf: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    slurm_conf
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .into_iter()
        .chain(std::iter::once(Path::new(SLURM_CONF_DIR).join(name)))
        .find(|p| exists(p))
}

/// A JSON config error as every config of the project words it:
/// `ORIGIN: line L, column C: what is wrong` (serde_json puts the position last).
pub fn json_error(origin: &str, e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
    format!("{origin}: line {}, column {}: {msg}", e.line(), e.column())
}

/// Writes `file` as a new file beside it, renamed over it: a reader (the next run, the
/// next slurmctld, node_exporter) sees the old content or the new, never half of one.
pub fn write_atomically(file: &Path, content: &[u8], mode: u32) -> Result<(), String> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = file.with_file_name(format!(".{name}.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", file.display())
    })
}

/// Why a file with this owner and mode is refused, or `Ok`.
pub fn check(uid: u32, mode: u32, path: &Path) -> Result<(), String> {
    let p = path.display();
    if uid != 0 {
        return Err(format!(
            "{p} is owned by uid {uid}, not root: refusing it (chown root {p})"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "{p} is writable by group or others (mode {:o}): refusing it (chmod go-w {p})",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// Reads the file after the check, from the same open file (what is checked is what is
/// read, even if the name is replaced in between).
pub fn read(path: &Path) -> Result<String, String> {
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    check(meta.uid(), meta.mode(), path)?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(io)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn owner_and_mode() {
        let p = Path::new("/etc/slurm/x.conf");
        assert_eq!(check(0, 0o100644, p), Ok(()));
        assert_eq!(check(0, 0o100600, p), Ok(()));
        assert_eq!(
            check(1000, 0o100644, p),
            Err("/etc/slurm/x.conf is owned by uid 1000, not root: refusing it (chown root /etc/slurm/x.conf)".into())
        );
        assert_eq!(
            check(0, 0o100664, p),
            Err("/etc/slurm/x.conf is writable by group or others (mode 664): refusing it (chmod go-w /etc/slurm/x.conf)".into())
        );
        assert!(check(0, 0o100646, p).is_err());
    }

    #[test]
    fn json_errors_put_the_position_first() {
        let e = serde_json::from_str::<Vec<u32>>("[1,\n x]").unwrap_err();
        assert_eq!(
            json_error("/etc/slurm/a.json", &e),
            "/etc/slurm/a.json: line 2, column 2: expected value"
        );
    }

    #[test]
    fn found_beside_slurm_conf_then_in_etc_slurm() {
        let conf = Some(Path::new("/tmp/c/slurm.conf"));
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            beside_slurm_conf("x.conf", conf, |_| true),
            p("/tmp/c/x.conf")
        );
        let only_etc = |f: &Path| f.starts_with("/etc");
        assert_eq!(
            beside_slurm_conf("x.conf", conf, only_etc),
            p("/etc/slurm/x.conf")
        );
        assert_eq!(
            beside_slurm_conf("x.conf", None, |_| true),
            p("/etc/slurm/x.conf")
        );
        assert_eq!(beside_slurm_conf("x.conf", conf, |_| false), None);
    }

    #[test]
    fn writes_whole_files_with_their_mode() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("state.json");
        write_atomically(&f, b"one", 0o600).unwrap();
        write_atomically(&f, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        let e = write_atomically(&d.path().join("no/such/dir"), b"x", 0o600).unwrap_err();
        assert!(e.starts_with("cannot write "), "{e}");
    }

    #[test]
    fn reads_only_what_passes() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.conf");
        std::fs::write(&f, "key = 1\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let root = std::fs::metadata(&f).unwrap().uid() == 0;
        assert_eq!(read(&f).is_ok(), root);
        if root {
            assert_eq!(read(&f).unwrap(), "key = 1\n");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
            assert!(read(&f).unwrap_err().contains("(mode 666): refusing it"));
        }
        assert!(read(d.path()).unwrap_err().contains("not a regular file"));
        assert!(read(&d.path().join("missing"))
            .unwrap_err()
            .contains("No such file"));
    }
}
