//! Config files that steer root code (slurmstepd's SPANK plugins, slurmctld's job_submit
//! plugin, root-run node helpers) are used only when root owns them and neither group nor
//! others can write them; otherwise anyone who can edit the file controls what root does.
//! One check, one wording, for every such file of the project.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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
