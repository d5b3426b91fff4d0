//! Slurm's accounting as a client reads it (feature `slurmdb`, for helper binaries that
//! link libslurm, never for a plugin): a slurmdbd connection, job records
//! (`slurmdb_jobs_get`, as sacct), the TRES table, and association limits and usage as
//! slurmctld counts them (`slurm_load_assoc_mgr_info`, as `scontrol show assoc_mgr`).
//! Everything is copied into plain Rust values before Slurm's lists are freed: no Slurm
//! pointer leaves this module.
//!
//! Checked in SchedMD/slurm's slurm.h and slurmdb.h at slurm-22-05-8-1, slurm-24-11-5-1 and
//! slurm-26-05-3-1: `slurmdb_connection_get(uint16_t *)`, `slurmdb_connection_close(void **)`,
//! `slurmdb_jobs_get(void *, slurmdb_job_cond_t *)`, `slurmdb_tres_get`,
//! `slurm_load_assoc_mgr_info` have the same signatures; `List` (22.05) and `list_t *`
//! (23.02+) are both `struct xlist *`; the fields read here exist in all three.
//! `sshare`'s `slurm_associations_get_shares` is not in libslurm's API (its structs are in
//! src/common/slurm_protocol_defs.h); the assoc_mgr dump carries the same numbers.

use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int};

use slurm_sys as sys;

// Bits of slurmdb.h that bindgen cannot evaluate (`SLURM_BIT(n)`); the same value in
// 22.05, 24.11 and 26.05.
/// `SLURMDB_JOB_FLAG_NOTSET`: sacct's default `db_flags`.
const SLURMDB_JOB_FLAG_NOTSET: u32 = 1 << 0;
/// `JOBCOND_FLAG_DUP`: every record of a job id (`sacct -D`): each run of a requeued job
/// (slurmctld charged each one), and jobs of a reused id. Without it slurmdbd returns only
/// the latest record of each id.
const JOBCOND_FLAG_DUP: u32 = 1 << 0;
/// `JOBCOND_FLAG_NO_STEP`: job records only (`sacct -X`).
const JOBCOND_FLAG_NO_STEP: u32 = 1 << 1;
/// `JOBCOND_FLAG_NO_TRUNC`: records as they are, not cut to the period (sacct's default;
/// `--truncate` clears it).
const JOBCOND_FLAG_NO_TRUNC: u32 = 1 << 2;
/// `ASSOC_MGR_INFO_FLAG_ASSOC` (slurm.h): `0x00000001` in 22.05 and 24.11, `SLURM_BIT(0)`
/// in 26.05, which bindgen cannot evaluate.
const ASSOC_MGR_INFO_FLAG_ASSOC: u32 = 1 << 0;
/// `INFINITE64`: no limit.
pub const INFINITE64: u64 = u64::MAX;

extern "C" {
    // src/common/parse_time.c: `strong_alias(parse_time, slurm_parse_time)` in 22.05,
    // 24.11 and 26.05, exported by libslurm (its symbols are the slurm_* ones); not in
    // slurm.h. Returns 0 (and prints to stderr) on a bad string.
    fn slurm_parse_time(time_str: *const c_char, past: c_int) -> libc::time_t;
    // src/common/parse_time.c, exported under this name in 22.05, 24.11 and 26.05: the
    // time as every Slurm command prints it (SLURM_TIME_FORMAT, default `%FT%T`).
    fn slurm_make_time_str(time: *mut libc::time_t, string: *mut c_char, size: c_int);
}

/// Why Slurm could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// slurmdbd could not be reached or refused us.
    Slurmdbd(String),
    /// slurmctld could not be reached or refused us.
    Slurmctld(String),
    /// An argument Slurm cannot take (an interior NUL).
    Argument(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Slurmdbd(m) => write!(f, "cannot read slurmdbd: {m}"),
            DbError::Slurmctld(m) => write!(f, "cannot read slurmctld: {m}"),
            DbError::Argument(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for DbError {}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn set_errno(v: c_int) {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() = v };
}

/// Runs `f` with libslurm's stderr (fd 2) sent to /dev/null: a failed connection makes
/// libslurm print its own `error:` lines, and the caller says what went wrong in one.
/// Everything Slurm had to say is in the error returned. When fd 2 cannot be saved, `f`
/// runs as it is.
fn quiet<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain descriptor calls on descriptors this function opens and closes; fd 2
    // is put back before returning. mlacct is single-threaded while it talks to Slurm.
    unsafe {
        let saved = libc::dup(2);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if saved < 0 || null < 0 || libc::dup2(null, 2) < 0 {
            for fd in [saved, null] {
                if fd >= 0 {
                    libc::close(fd);
                }
            }
            return f();
        }
        libc::close(null);
        let out = f();
        let e = errno();
        libc::dup2(saved, 2);
        libc::close(saved);
        set_errno(e);
        out
    }
}

/// Slurm's text for a Slurm or system error number.
fn strerror(code: c_int) -> String {
    // SAFETY: returns a static string for any number.
    let p = unsafe { sys::slurm_strerror(code) };
    // SAFETY: NULL or a static NUL-terminated string.
    unsafe { crate::xstr::borrow(p) }
        .map(|s| s.into_owned())
        .unwrap_or_else(|| format!("error {code}"))
}

/// slurmdbd's error `code`, naming where slurm.conf says slurmdbd is.
fn slurmdbd_error(code: c_int) -> DbError {
    let at = crate::conf::slurmdbd_address()
        .map(|a| format!(" (AccountingStorageHost:Port {a})"))
        .unwrap_or_default();
    DbError::Slurmdbd(format!("{}{at}", strerror(code)))
}

/// Reads slurm.conf (`SLURM_CONF` or the built-in path) and loads the client plugins: what
/// every Slurm command does first (`slurm_init(NULL)`). Once per process.
pub fn init_client() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: NULL means the default configuration.
    ONCE.call_once(|| unsafe { sys::slurm_init(std::ptr::null()) });
}

/// A time in Slurm's formats (`2026-12-01T10:00`, `now-2hours`, `today`, `midnight`, ...)
/// as the commands read `--starttime`: Slurm's own `parse_time(str, past = 1)`. `None` when
/// Slurm cannot read it.
pub fn parse_time(s: &str) -> Option<i64> {
    let c = CString::new(s).ok()?;
    // SAFETY: a valid C string; the function only reads it. Its complaint on stderr is
    // the caller's to word.
    let t = quiet(|| unsafe { slurm_parse_time(c.as_ptr(), 1) });
    (t > 0).then_some(secs(t))
}

/// A time as Slurm's commands print it (`2026-12-01T10:00:00` unless SLURM_TIME_FORMAT
/// says otherwise).
pub fn format_time(t: i64) -> String {
    let mut t = t as libc::time_t;
    let mut buf = [0 as c_char; 64];
    // SAFETY: a valid time and a buffer of the size given; the result is NUL-terminated.
    unsafe { slurm_make_time_str(&mut t, buf.as_mut_ptr(), buf.len() as c_int) };
    copy_str(buf.as_ptr())
}

/// `time_t` as i64: the same type on 64-bit Linux, not on every target.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn secs(t: libc::time_t) -> i64 {
    t as i64
}

fn copy_str(p: *const c_char) -> String {
    // SAFETY: NULL or a NUL-terminated string in a record we hold.
    unsafe { crate::xstr::borrow(p) }
        .map(|s| s.into_owned())
        .unwrap_or_default()
}

/// A Slurm list we own: destroyed (with its items, by the list's own destructor) on drop.
struct OwnedList(*mut sys::xlist);

impl OwnedList {
    /// Calls `f` on each item, in order.
    fn each(&self, mut f: impl FnMut(*mut c_void)) {
        if self.0.is_null() {
            return;
        }
        // SAFETY: a live list; the iterator is destroyed before the list.
        unsafe {
            let it = sys::slurm_list_iterator_create(self.0);
            loop {
                let item = sys::slurm_list_next(it);
                if item.is_null() {
                    break;
                }
                f(item);
            }
            sys::slurm_list_iterator_destroy(it);
        }
    }
}

impl Drop for OwnedList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we own the list; its destructor frees its items.
            unsafe { sys::slurm_list_destroy(self.0) };
        }
    }
}

/// A list of C strings we own, for a request: items are not freed by the list (no
/// destructor), the CStrings outlive it.
struct StringList {
    list: OwnedList,
    _items: Vec<CString>,
}

impl StringList {
    fn new(items: &[String]) -> Result<Self, DbError> {
        let items = items
            .iter()
            .map(|s| CString::new(s.as_str()).map_err(|_| DbError::Argument(format!("{s:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: no destructor: the items stay ours.
        let list = OwnedList(unsafe { sys::slurm_list_create(None) });
        for s in &items {
            // SAFETY: a live list; the pointer outlives it (both in self).
            unsafe { sys::slurm_list_append(list.0, s.as_ptr() as *mut c_void) };
        }
        Ok(StringList {
            list,
            _items: items,
        })
    }
}

/// One TRES of the accounting database: `cpu`, `billing`, `gres/gpu`...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tres {
    pub id: u32,
    /// `type/name` as sacct prints it (`gres/gpu`), or the type alone (`cpu`).
    pub name: String,
}

/// A job record of slurmdbd, copied out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobRecord {
    pub job_id: u32,
    pub cluster: String,
    /// The partition it ran in (slurmdbd records the one chosen from a `-p a,b` list).
    pub partition: String,
    pub account: String,
    pub user: String,
    pub wckey: String,
    pub state: u32,
    /// Unix seconds; 0 = not started / not ended, as slurmdbd gives them.
    pub start: i64,
    pub end: i64,
    /// Seconds run, suspended time taken out, as slurmdbd computes it (sacct's ElapsedRaw).
    pub elapsed: u64,
    /// `id=count,...` as stored (TRES ids; see [`Connection::tres`]).
    pub tres_alloc: String,
}

/// Which job records to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobQuery {
    /// Clusters; empty = the one of slurm.conf, as sacct.
    pub clusters: Vec<String>,
    pub since: i64,
    pub until: i64,
    /// Cut each record to [since, until] in slurmdbd, as `sacct --truncate`.
    pub truncate: bool,
}

/// An open connection to slurmdbd; closed on drop.
///
/// Not `Send` nor `Sync`: libslurm's persistent connection keeps per-connection state
/// with no locking of its own, so it stays on the thread that opened it.
///
/// ```compile_fail,E0277
/// fn send<T: Send>() {}
/// send::<slurm_plugin::slurmdb::Connection>();
/// ```
/// ```compile_fail,E0277
/// fn sync<T: Sync>() {}
/// sync::<slurm_plugin::slurmdb::Connection>();
/// ```
pub struct Connection {
    raw: *mut c_void,
    _not_send: PhantomData<*mut ()>,
}

impl Connection {
    /// Opens a connection as sacct does (`slurmdb_connection_get(NULL)`, then errno).
    /// Call [`init_client`] first.
    pub fn open() -> Result<Connection, DbError> {
        let (raw, e) = quiet(|| {
            set_errno(0);
            // SAFETY: NULL flags, as sacct passes.
            let raw = unsafe { sys::slurmdb_connection_get(std::ptr::null_mut()) };
            (raw, errno())
        });
        let conn = Connection {
            raw,
            _not_send: PhantomData,
        };
        if raw.is_null() || e != 0 {
            return Err(slurmdbd_error(e));
        }
        Ok(conn)
    }

    /// The TRES table, deleted ones too (old jobs may name them), as sacct loads it.
    pub fn tres(&self) -> Result<Vec<Tres>, DbError> {
        let mut cond = sys::slurmdb_tres_cond_t {
            with_deleted: 1,
            ..Default::default()
        };
        let list = quiet(|| {
            set_errno(0);
            // SAFETY: a live connection and a zeroed condition.
            OwnedList(unsafe { sys::slurmdb_tres_get(self.raw, &mut cond) })
        });
        if list.0.is_null() {
            return Err(slurmdbd_error(errno()));
        }
        let mut out = Vec::new();
        list.each(|item| {
            // SAFETY: items of this list are slurmdb_tres_rec_t.
            let t = unsafe { &*(item as *const sys::slurmdb_tres_rec_t) };
            let kind = copy_str(t.type_);
            let name = copy_str(t.name);
            out.push(Tres {
                id: t.id,
                name: if name.is_empty() {
                    kind
                } else {
                    format!("{kind}/{name}")
                },
            });
        });
        Ok(out)
    }

    /// Job records (no steps) of jobs eligible or running in [since, until], every user
    /// the caller may see, every run of a requeued job, as `sacct -X -D -a -S since -E
    /// until [--truncate]`.
    pub fn jobs(&self, q: &JobQuery) -> Result<Vec<JobRecord>, DbError> {
        let clusters = StringList::new(&q.clusters)?;
        let mut cond = sys::slurmdb_job_cond_t {
            db_flags: SLURMDB_JOB_FLAG_NOTSET,
            flags: JOBCOND_FLAG_DUP
                | JOBCOND_FLAG_NO_STEP
                | if q.truncate { 0 } else { JOBCOND_FLAG_NO_TRUNC },
            usage_start: q.since as libc::time_t,
            usage_end: q.until as libc::time_t,
            ..Default::default()
        };
        if !q.clusters.is_empty() {
            cond.cluster_list = clusters.list.0;
        }
        let list = quiet(|| {
            set_errno(0);
            // SAFETY: a live connection; the condition's lists outlive the call (owned
            // here); slurmdbd's reply is a new list we own.
            OwnedList(unsafe { sys::slurmdb_jobs_get(self.raw, &mut cond) })
        });
        if list.0.is_null() {
            return Err(slurmdbd_error(errno()));
        }
        let mut out = Vec::new();
        list.each(|item| {
            // SAFETY: items of this list are slurmdb_job_rec_t.
            let j = unsafe { &*(item as *const sys::slurmdb_job_rec_t) };
            out.push(JobRecord {
                job_id: j.jobid,
                cluster: copy_str(j.cluster),
                partition: copy_str(j.partition),
                account: copy_str(j.account),
                user: copy_str(j.user),
                wckey: copy_str(j.wckey),
                state: j.state,
                start: secs(j.start),
                end: secs(j.end),
                elapsed: u64::from(j.elapsed),
                tres_alloc: copy_str(j.tres_alloc_str),
            });
        });
        Ok(out)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: a connection from slurmdb_connection_get; closed once (it sets the
            // pointer to NULL).
            unsafe { sys::slurmdb_connection_close(&mut self.raw) };
        }
    }
}

/// One TRES of an association: its `GrpTRESMins` and the usage slurmctld counts against it.
#[derive(Debug, Clone, PartialEq)]
pub struct TresUsage {
    pub name: String,
    /// `GrpTRESMins` for this TRES; `None` = no limit.
    pub grp_mins: Option<u64>,
    /// Decayed usage in TRES-seconds (`usage_tres_raw`, what `sshare -l` and assoc_mgr
    /// show as used; scontrol prints it / 60 in GrpTRESMins=...(used)).
    pub usage_raw_secs: f64,
}

/// An association as slurmctld's association manager holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssocUsage {
    pub account: String,
    /// Empty for the account's own association.
    pub user: String,
    pub partition: String,
    pub tres: Vec<TresUsage>,
}

/// The associations of `accounts` with their limits and usage, from slurmctld
/// (`scontrol show assoc_mgr accounts=... flags=assoc`).
pub fn assoc_usage(accounts: &[String]) -> Result<Vec<AssocUsage>, DbError> {
    let accts = StringList::new(accounts)?;
    let mut req = sys::assoc_mgr_info_request_msg_t {
        acct_list: accts.list.0,
        flags: ASSOC_MGR_INFO_FLAG_ASSOC,
        ..Default::default()
    };
    let mut resp: *mut sys::assoc_mgr_info_msg_t = std::ptr::null_mut();
    let rc = quiet(|| {
        set_errno(0);
        // SAFETY: the request's list outlives the call; on success `resp` is ours to free.
        unsafe { sys::slurm_load_assoc_mgr_info(&mut req, &mut resp) }
    });
    if rc != 0 || resp.is_null() {
        return Err(DbError::Slurmctld(strerror(errno())));
    }
    struct Reply(*mut sys::assoc_mgr_info_msg_t);
    impl Drop for Reply {
        fn drop(&mut self) {
            // SAFETY: the reply of slurm_load_assoc_mgr_info, freed once.
            unsafe { sys::slurm_free_assoc_mgr_info_msg(self.0) };
        }
    }
    let reply = Reply(resp);
    // SAFETY: a live reply.
    let msg = unsafe { &*reply.0 };
    let names: Vec<String> = (0..msg.tres_cnt as usize)
        .map(|i| {
            // SAFETY: tres_names has tres_cnt entries.
            copy_str(unsafe { *msg.tres_names.add(i) })
        })
        .collect();
    let mut out = Vec::new();
    // The reply owns its lists; borrow them without destroying (the reply frees them).
    let list = std::mem::ManuallyDrop::new(OwnedList(msg.assoc_list));
    list.each(|item| {
        // SAFETY: items of assoc_list are slurmdb_assoc_rec_t.
        let a = unsafe { &*(item as *const sys::slurmdb_assoc_rec_t) };
        out.push(AssocUsage {
            account: copy_str(a.acct),
            user: copy_str(a.user),
            partition: copy_str(a.partition),
            tres: tres_usage(a, &names),
        });
    });
    Ok(out)
}

fn tres_usage(a: &sys::slurmdb_assoc_rec_t, names: &[String]) -> Vec<TresUsage> {
    // SAFETY: NULL or the usage record of this association.
    let usage = unsafe { a.usage.as_ref() };
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let limit = if a.grp_tres_mins_ctld.is_null() {
                INFINITE64
            } else {
                // SAFETY: grp_tres_mins_ctld has one entry per TRES of the reply.
                unsafe { *a.grp_tres_mins_ctld.add(i) }
            };
            let raw = usage
                .filter(|u| !u.usage_tres_raw.is_null() && (i as u32) < u.tres_cnt)
                // SAFETY: usage_tres_raw has tres_cnt entries of C `long double`.
                .map(|u| long_double_to_f64(unsafe { *u.usage_tres_raw.add(i) }))
                .unwrap_or(0.0);
            TresUsage {
                name: name.clone(),
                grp_mins: (limit != INFINITE64).then_some(limit),
                usage_raw_secs: raw,
            }
        })
        .collect()
}

/// C's `long double` on x86_64 (bindgen gives it as u128): the x87 80-bit extended format,
/// a 64-bit significand with an explicit integer bit, then 15 bits of exponent and a sign.
pub fn long_double_to_f64(bits: u128) -> f64 {
    let mantissa = bits as u64;
    let exp = ((bits >> 64) & 0x7fff) as i32;
    let negative = (bits >> 79) & 1 == 1;
    let magnitude = match exp {
        0 if mantissa == 0 => 0.0,
        0x7fff => f64::INFINITY,
        _ => (mantissa as f64) * 2f64.powi(exp.max(1) - 16383 - 63),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::long_double_to_f64;

    /// x87 extended values built by hand: 1.0 = exponent 16383, significand 1 << 63.
    #[test]
    fn long_double_reads_x87_extended() {
        let ld = |sign: u128, exp: u128, mant: u64| (sign << 79) | (exp << 64) | mant as u128;
        assert_eq!(long_double_to_f64(ld(0, 16383, 1 << 63)), 1.0);
        assert_eq!(long_double_to_f64(ld(1, 16384, 3 << 62)), -3.0);
        assert_eq!(long_double_to_f64(ld(0, 16383 + 20, 1 << 63)), 1048576.0);
        assert_eq!(long_double_to_f64(0), 0.0);
        assert_eq!(long_double_to_f64(ld(0, 0x7fff, 1 << 63)), f64::INFINITY);
    }

    #[test]
    fn quiet_silences_stderr_and_puts_it_back() {
        let fd2 = || std::fs::read_link("/proc/self/fd/2").ok();
        let before = fd2();
        let inside = super::quiet(fd2);
        assert_eq!(inside.as_deref(), Some(std::path::Path::new("/dev/null")));
        assert_eq!(fd2(), before);
    }

    #[test]
    fn slurm_reads_its_own_time_formats() {
        assert_eq!(
            super::parse_time("1970-01-02T00:00:00").map(|t| t > 0),
            Some(true)
        );
        assert!(super::parse_time("now").is_some());
        assert_eq!(super::parse_time("not a time"), None);
    }
}
