//! Parser for `/proc/sysvipc/{shm,sem,msg}` (the one parser of that format).
//!
//! Columns are found by their header names, not positions: kernels have added columns
//! (`rss`, `swap`) over time. A row that does not fit is counted as malformed and skipped,
//! never guessed at.

/// One shared memory segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShmSeg {
    pub id: i32,
    pub size: u64,
    /// Creator pid.
    pub cpid: i32,
    /// Pid of the last shmat/shmdt (0 if never attached).
    pub lpid: i32,
    pub nattch: u64,
    /// Owner (changeable with IPC_SET); the uid cleanup goes by.
    pub uid: u32,
    /// Creator.
    pub cuid: u32,
}

/// One semaphore set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemSet {
    pub id: i32,
    pub nsems: u64,
    pub uid: u32,
    pub cuid: u32,
}

/// One message queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgQueue {
    pub id: i32,
    pub cbytes: u64,
    pub qnum: u64,
    pub uid: u32,
    pub cuid: u32,
}

/// A parsed table: the rows that fit and how many did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub rows: Vec<T>,
    pub malformed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Column positions of the header, for the names a table needs.
fn columns(header: &str, need: &[&str], what: &str) -> Result<Vec<usize>, ParseError> {
    let names: Vec<&str> = header.split_whitespace().collect();
    need.iter()
        .map(|n| {
            names.iter().position(|h| h == n).ok_or_else(|| {
                ParseError(format!("/proc/sysvipc/{what}: header has no '{n}' column"))
            })
        })
        .collect()
}

/// Splits the table into header and rows, and reads the needed columns of each row.
fn parse_rows<T>(
    text: &str,
    what: &str,
    need: &[&str],
    build: impl Fn(&[&str]) -> Option<T>,
) -> Result<Parsed<T>, ParseError> {
    let mut lines = text.lines();
    let header = lines
        .next()
        .ok_or_else(|| ParseError(format!("/proc/sysvipc/{what} is empty (no header)")))?;
    let cols = columns(header, need, what)?;
    let width = header.split_whitespace().count();
    let mut parsed = Parsed {
        rows: Vec::new(),
        malformed: 0,
    };
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let picked: Option<Vec<&str>> = if fields.len() == width {
            cols.iter().map(|&c| fields.get(c).copied()).collect()
        } else {
            None
        };
        match picked.and_then(|p| build(&p)) {
            Some(row) => parsed.rows.push(row),
            None => parsed.malformed += 1,
        }
    }
    Ok(parsed)
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    s.parse().ok()
}

pub fn parse_shm(text: &str) -> Result<Parsed<ShmSeg>, ParseError> {
    parse_rows(
        text,
        "shm",
        &["shmid", "size", "cpid", "lpid", "nattch", "uid", "cuid"],
        |f| {
            Some(ShmSeg {
                id: num(f[0])?,
                size: num(f[1])?,
                cpid: num(f[2])?,
                lpid: num(f[3])?,
                nattch: num(f[4])?,
                uid: num(f[5])?,
                cuid: num(f[6])?,
            })
        },
    )
}

pub fn parse_sem(text: &str) -> Result<Parsed<SemSet>, ParseError> {
    parse_rows(text, "sem", &["semid", "nsems", "uid", "cuid"], |f| {
        Some(SemSet {
            id: num(f[0])?,
            nsems: num(f[1])?,
            uid: num(f[2])?,
            cuid: num(f[3])?,
        })
    })
}

pub fn parse_msg(text: &str) -> Result<Parsed<MsgQueue>, ParseError> {
    parse_rows(
        text,
        "msg",
        &["msqid", "cbytes", "qnum", "uid", "cuid"],
        |f| {
            Some(MsgQueue {
                id: num(f[0])?,
                cbytes: num(f[1])?,
                qnum: num(f[2])?,
                uid: num(f[3])?,
                cuid: num(f[4])?,
            })
        },
    )
}

#[cfg(test)]
#[path = "tests/sysvipc.rs"]
mod tests;
