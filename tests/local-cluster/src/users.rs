//! Real Unix users for tests (jobs of different users, root vs non-root).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::{err, io, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// Finds `name` in an /etc/passwd text.
pub fn parse_passwd(text: &str, name: &str) -> Option<User> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 || f[0] != name {
            return None;
        }
        Some(User {
            name: name.to_string(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: PathBuf::from(f[5]),
        })
    })
}

fn lookup(name: &str) -> Result<Option<User>> {
    let text = io("read /etc/passwd", fs::read_to_string("/etc/passwd"))?;
    Ok(parse_passwd(&text, name))
}

/// Returns the user `name`, creating it (with a group and home) if it does not exist.
/// Regular users get uids from 1000 up, as on a real cluster.
pub fn ensure_user(name: &str) -> Result<User> {
    for attempt in 0..10 {
        if let Some(u) = lookup(name)? {
            return Ok(u);
        }
        let out = io(
            "run useradd",
            Command::new("useradd")
                .args([
                    "--user-group",
                    "--create-home",
                    "--shell",
                    "/bin/bash",
                    name,
                ])
                .output(),
        )?;
        if !out.status.success() {
            // Another test may hold the passwd lock, or have created the user meanwhile.
            if attempt == 9 {
                return err(format!(
                    "useradd {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    lookup(name)?.ok_or_else(|| crate::Error(format!("user {name} missing after useradd")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\nmltest-a:x:1001:1002::/home/mltest-a:/bin/bash\nbad:line\n";
        assert_eq!(
            parse_passwd(text, "mltest-a"),
            Some(User {
                name: "mltest-a".into(),
                uid: 1001,
                gid: 1002,
                home: "/home/mltest-a".into()
            })
        );
        assert_eq!(parse_passwd(text, "mltest"), None);
        assert_eq!(parse_passwd(text, "bad"), None);
    }
}
