//! One epilog run: gather, decide, act, report.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::config::Config;
use crate::node::{self, Ipc, Outcome, ShmDir};
use crate::plan::{self, Gathered, Mode, Plan};
use crate::sysvipc::{self, ShmSeg};

/// Who the run is for (from the epilog environment or flags).
#[derive(Debug, Clone, Default)]
pub struct Job {
    pub uid: u32,
    pub user: Option<String>,
    pub job_id: Option<String>,
    pub node: Option<String>,
}

/// Counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub shm: usize,
    pub shm_bytes: u64,
    pub sem: usize,
    pub msg: usize,
    pub files: usize,
    pub file_bytes: u64,
    pub changed: usize,
    pub errors: Vec<String>,
}

fn read_table<T>(
    path: &Path,
    parse: fn(&str) -> Result<sysvipc::Parsed<T>, sysvipc::ParseError>,
    warnings: &mut Vec<String>,
) -> Result<Vec<T>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let parsed = parse(&text).map_err(|e| e.to_string())?;
            if parsed.malformed > 0 {
                warnings.push(format!(
                    "{}: skipped {} malformed lines",
                    path.display(),
                    parsed.malformed
                ));
            }
            Ok(parsed.rows)
        }
        // A kernel without SysV IPC has no such file: nothing to clean there.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// What was gathered and decided, before acting.
pub struct Decision {
    pub plan: Result<Plan, plan::Skip>,
    pub warnings: Vec<String>,
    shm_dir: Option<ShmDir>,
}

/// Gathers the node's state and decides. Errors here are node faults (unreadable /proc).
pub fn decide(job: &Job, cfg: &Config) -> Result<Decision, String> {
    let mut warnings = Vec::new();
    let proc_root = Path::new("/proc");
    let sysv = proc_root.join("sysvipc");
    let shm = read_table(&sysv.join("shm"), sysvipc::parse_shm, &mut warnings)?;
    let sem = read_table(&sysv.join("sem"), sysvipc::parse_sem, &mut warnings)?;
    let msg = read_table(&sysv.join("msg"), sysvipc::parse_msg, &mut warnings)?;
    let procs = node::scan_processes(proc_root).map_err(|e| format!("cannot scan /proc: {e}"))?;
    let (shm_dir, files) = if cfg.clean_files {
        match ShmDir::open(&cfg.shm_dir) {
            Ok(mut d) => {
                let files = d.list()?;
                (Some(d), files)
            }
            Err(e) => {
                warnings.push(e);
                (None, Vec::new())
            }
        }
    } else {
        (None, Vec::new())
    };
    let user_live = procs.uids.contains(&job.uid);
    let pid_alive = |pid: i32| procs.pids.contains(&pid);
    let plan = plan::decide(
        job.uid,
        cfg,
        user_live,
        &pid_alive,
        &Gathered {
            shm: &shm,
            sem: &sem,
            msg: &msg,
            files: &files,
        },
    );
    Ok(Decision {
        plan,
        warnings,
        shm_dir,
    })
}

impl Report {
    /// Counts one removal outcome in `counter`; true when the object was removed.
    fn tally(&mut self, outcome: Outcome, counter: fn(&mut Report) -> &mut usize) -> bool {
        match outcome {
            Outcome::Removed => {
                *counter(self) += 1;
                true
            }
            Outcome::Vanished => false,
            Outcome::Changed(_) => {
                self.changed += 1;
                false
            }
            Outcome::Failed(e) => {
                self.errors.push(e);
                false
            }
        }
    }
}

/// Removes what the plan says, re-checking each object first.
pub fn apply(plan: &Plan, decision: &Decision, uid: u32) -> Report {
    let mut r = Report::default();
    let dead_only = plan.mode == Mode::DeadOnly;
    // In dead-only mode a segment must still be dead on fresh IPC_STAT data, by the same
    // rule the plan used (pids looked up again: one may have attached since the scan).
    // With the user gone, an attachment now means a process we did not see (another pid
    // namespace, a job that started since the scan): keep that segment too.
    for seg in &plan.shm {
        let still_ok = |nattch: u64, cpid: i32, lpid: i32| {
            if dead_only {
                let now = ShmSeg {
                    nattch,
                    cpid,
                    lpid,
                    ..seg.clone()
                };
                plan::shm_is_dead(&now, &node::pid_running)
            } else {
                nattch == 0
            }
        };
        if r.tally(
            node::remove_ipc(Ipc::Shm, seg.id, uid, Some(&still_ok)),
            |r| &mut r.shm,
        ) {
            r.shm_bytes += seg.size;
        }
    }
    for s in &plan.sem {
        r.tally(node::remove_ipc(Ipc::Sem, s.id, uid, None), |r| &mut r.sem);
    }
    for m in &plan.msg {
        r.tally(node::remove_ipc(Ipc::Msg, m.id, uid, None), |r| &mut r.msg);
    }
    if let Some(dir) = &decision.shm_dir {
        for f in &plan.files {
            if r.tally(dir.remove(&f.name, uid), |r| &mut r.files) {
                r.file_bytes += f.size;
            }
        }
    }
    r
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn who(job: &Job) -> String {
    let mut s = String::new();
    if let Some(id) = &job.job_id {
        s.push_str(&format!("job {id} "));
    }
    match &job.user {
        Some(u) => s.push_str(&format!("user {u} (uid {})", job.uid)),
        None => s.push_str(&format!("uid {}", job.uid)),
    }
    if let Some(n) = &job.node {
        s.push_str(&format!(" on {n}"));
    }
    s
}

/// The one log line of a run.
pub fn summary(job: &Job, plan: &Plan, r: &Report, elapsed_ms: f64) -> String {
    let mode = match plan.mode {
        Mode::Everything => "user has no processes left here: all of the user's objects",
        Mode::DeadOnly => "user still has processes here: dead shm segments only",
    };
    let mut line = format!(
        "{}: removed {} shm ({}), {} sem, {} msg, {} files ({}) [{mode}]",
        who(job),
        r.shm,
        human_bytes(r.shm_bytes),
        r.sem,
        r.msg,
        r.files,
        human_bytes(r.file_bytes),
    );
    let k = &plan.kept;
    if k.shm + k.sem + k.msg + k.files > 0 {
        line.push_str(&format!(
            "; kept {} shm, {} sem, {} msg, {} files",
            k.shm, k.sem, k.msg, k.files
        ));
    }
    if r.changed > 0 {
        line.push_str(&format!(
            "; {} changed since the scan and left alone",
            r.changed
        ));
    }
    line.push_str(&format!("; {} errors", r.errors.len()));
    for e in &r.errors {
        line.push_str(&format!(" [{e}]"));
    }
    line.push_str(&format!("; {elapsed_ms:.1} ms"));
    line
}

/// The lines `--dry-run` prints.
pub fn describe(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for s in &plan.shm {
        out.push(format!(
            "would remove shm {} ({}, nattch {}, cpid {}, lpid {})",
            s.id,
            human_bytes(s.size),
            s.nattch,
            s.cpid,
            s.lpid
        ));
    }
    for s in &plan.sem {
        out.push(format!(
            "would remove sem {} ({} semaphores)",
            s.id, s.nsems
        ));
    }
    for m in &plan.msg {
        out.push(format!(
            "would remove msg {} ({} messages, {} bytes)",
            m.id, m.qnum, m.cbytes
        ));
    }
    for f in &plan.files {
        out.push(format!(
            "would remove file {} ({})",
            f.name.to_string_lossy(),
            human_bytes(f.size)
        ));
    }
    out
}

/// Writes a line where the config says: a log file (with a UTC timestamp) or syslog.
pub fn log(cfg: &Config, error: bool, line: &str) {
    match &cfg.log_file {
        Some(path) => {
            let stamp = utc_timestamp(std::time::SystemTime::now());
            let result = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| writeln!(f, "{stamp} ml-epilog[{}]: {line}", std::process::id()));
            if let Err(e) = result {
                node::syslog(
                    libc::LOG_ERR,
                    &format!("cannot write {}: {e}; {line}", path.display()),
                );
            }
        }
        None => node::syslog(if error { libc::LOG_ERR } else { libc::LOG_INFO }, line),
    }
}

/// `2026-11-24T22:40:00Z` without a date library.
pub fn utc_timestamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Runs the whole epilog; returns the exit code.
pub fn run(job: &Job, cfg: &Config, dry_run: bool) -> i32 {
    let start = Instant::now();
    let decision = match decide(job, cfg) {
        Ok(d) => d,
        Err(e) => {
            log(cfg, true, &format!("{}: node fault: {e}", who(job)));
            return i32::from(cfg.fail_on_error);
        }
    };
    for w in &decision.warnings {
        log(cfg, true, &format!("{}: warning: {w}", who(job)));
    }
    let plan = match &decision.plan {
        Ok(p) => p,
        Err(skip) => {
            let line = format!("{}: nothing done: {skip}", who(job));
            if dry_run {
                println!("{line}");
            }
            log(cfg, false, &line);
            return 0;
        }
    };
    if dry_run {
        for l in describe(plan) {
            println!("{l}");
        }
        println!("dry run: nothing removed");
        return 0;
    }
    let report = apply(plan, &decision, job.uid);
    let elapsed = start.elapsed().as_secs_f64() * 1000.0;
    log(
        cfg,
        !report.errors.is_empty(),
        &summary(job, plan, &report, elapsed),
    );
    if cfg.fail_on_error && !report.errors.is_empty() {
        1
    } else {
        0
    }
}

#[cfg(test)]
#[path = "tests/run.rs"]
mod tests;
