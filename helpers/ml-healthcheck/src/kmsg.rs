//! The kernel log, as `/dev/kmsg` hands it out: one record per `read()`, each
//! `PRIORITY,SEQ,USEC,FLAGS[,...];MESSAGE` followed by optional ` KEY=VALUE` lines. A
//! regular file in that format (one record per line, what `cat /dev/kmsg` prints) is read
//! the same way, for fixtures and for replaying a node's log.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::kevents::{self, Event};
use crate::xid::{self, Xid};

/// One record's header and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    pub usec: u64,
    pub message: &'a str,
}

pub fn parse_record(record: &str) -> Option<Record<'_>> {
    let first = record.lines().next()?;
    let (header, message) = first.split_once(';')?;
    let mut fields = header.split(',');
    let _priority: u32 = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let usec = fields.next()?.parse().ok()?;
    Some(Record { seq, usec, message })
}

/// What one read of the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub xids: Vec<Xid>,
    /// SXid and "fallen off the bus" lines ([`kevents`]).
    pub events: Vec<Event>,
    /// The highest record sequence number seen (the next run starts after it).
    pub last_seq: Option<u64>,
}

impl Scan {
    fn add(&mut self, record: &str) {
        let Some(r) = parse_record(record) else {
            return;
        };
        self.last_seq = Some(self.last_seq.map_or(r.seq, |s| s.max(r.seq)));
        if let Some((pci, code, text)) = xid::parse_message(r.message) {
            self.xids.push(Xid {
                seq: r.seq,
                usec: r.usec,
                pci,
                code,
                text,
            });
        } else if let Some((pci, what)) = kevents::parse_message(r.message) {
            self.events.push(Event {
                seq: r.seq,
                usec: r.usec,
                pci,
                what,
                message: r.message.to_string(),
            });
        }
    }
}

/// Reads every record still in the log at `path`: `/dev/kmsg` (a character device, read
/// non-blocking to its end) or a file of records.
pub fn scan(path: &Path) -> Result<Scan, String> {
    let io = |e: std::io::Error| format!("cannot read the kernel log {}: {e}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let mut scan = Scan::default();
    if f.metadata().map_err(io)?.file_type().is_char_device() {
        // One record per read; EAGAIN at the end; EPIPE when records were overwritten
        // while we read (go on with the next one).
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => scan.add(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            }
        }
    } else {
        let mut text = String::new();
        f.read_to_string(&mut text).map_err(io)?;
        for line in text.lines().filter(|l| !l.starts_with(' ')) {
            scan.add(line);
        }
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_as_the_kernel_writes_them() {
        assert_eq!(
            parse_record("4,1931,5824154213,-;NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n SUBSYSTEM=pci\n DEVICE=+pci:0000:3b:00.0\n"),
            Some(Record {
                seq: 1931,
                usec: 5824154213,
                message: "NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
            })
        );
        assert_eq!(
            parse_record("6,2,0,-,caller=T1;Linux version 6.1.0").map(|r| r.seq),
            Some(2)
        );
        assert_eq!(parse_record("garbage"), None);
        assert_eq!(parse_record("a,b,c;x"), None);
    }

    #[test]
    fn a_file_of_records_is_scanned_like_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kmsg");
        std::fs::write(
            &p,
            "6,10,100,-;usb 1-1: new device\n\
             4,11,200,-;NVRM: Xid (PCI:0000:18:00): 48, pid=7, name=python, An uncorrectable double bit error\n \
             SUBSYSTEM=pci\n\
             4,12,300,-;NVRM: Xid (PCI:0000:3b:00): 13, Graphics Exception\n",
        )
        .unwrap();
        let s = scan(&p).unwrap();
        assert_eq!(s.last_seq, Some(12));
        assert_eq!(
            s.xids.iter().map(|x| (x.seq, x.code)).collect::<Vec<_>>(),
            vec![(11, 48), (12, 13)]
        );
        assert!(s.events.is_empty());
        assert!(scan(&dir.path().join("none"))
            .unwrap_err()
            .starts_with("cannot read the kernel log "));
    }

    /// The XID fixture as the local-cluster tests use it: one scan finds the XIDs, the
    /// NVSwitch SXid and XID 79's "fallen off the bus" companion line.
    #[test]
    fn sxid_and_fallen_off_the_bus_come_from_the_same_scan() {
        let p = std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kmsg-xid79"
        ));
        let s = scan(&p).unwrap();
        assert_eq!(
            s.xids.iter().map(|x| (x.seq, x.code)).collect::<Vec<_>>(),
            vec![(1931, 79), (1933, 13)]
        );
        assert_eq!(
            s.events
                .iter()
                .map(|e| (e.seq, e.pci.as_str(), e.what.clone()))
                .collect::<Vec<_>>(),
            vec![
                (
                    1840,
                    "0000:86:00.0",
                    kevents::What::Sxid {
                        switch: 3,
                        code: 12028,
                        fatal: Some(false)
                    }
                ),
                (1932, "0000:3a:00.0", kevents::What::OffBus),
            ]
        );
        assert_eq!(
            s.events[1].message,
            "NVRM: GPU 0000:3a:00.0: GPU has fallen off the bus."
        );
    }
}
