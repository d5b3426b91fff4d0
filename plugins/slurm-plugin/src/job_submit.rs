//! job_submit: a view of `job_desc_msg_t`, the plugin trait and the runtime behind
//! [`job_submit_plugin!`].
//!
//! slurmctld calls `job_submit` for every submission (batch, salloc/srun allocations, each
//! het-job component) and `job_modify` for `scontrol update job`, with its config, job,
//! node and partition locks held; from 23.02 calls may run concurrently, so plugin state is
//! `Sync` and read through a shared lock.

use std::borrow::Cow;
use std::fmt;
use std::os::raw::{c_char, c_int};
use std::sync::{RwLock, RwLockReadGuard};

use slurm_sys as sys;

use crate::guard;
use crate::log::{self, SlurmLevel};
use crate::xstr::{self, InteriorNul};

/// Slurm's "not set" values for numeric job_desc fields.
pub const NO_VAL: u32 = sys::NO_VAL;
pub const NO_VAL16: u16 = sys::NO_VAL16 as u16;

/// A view of the `job_desc_msg_t` slurmctld hands to the plugin. String setters allocate
/// with Slurm's allocator and free the old value with `xfree`.
pub struct JobDesc<'a> {
    raw: &'a mut sys::job_desc_msg_t,
}

macro_rules! string_fields {
    ($( $(#[$doc:meta])* $field:ident / $setter:ident ),* $(,)?) => {
        impl<'a> JobDesc<'a> {
            $(
                $(#[$doc])*
                pub fn $field(&self) -> Option<Cow<'_, str>> {
                    // SAFETY: Slurm keeps the field NULL or a valid C string during the call.
                    unsafe { xstr::borrow(self.raw.$field) }
                }

                /// Replaces the value (Slurm-allocated; the old one is `xfree`d).
                pub fn $setter(&mut self, value: Option<&str>) -> Result<(), InteriorNul> {
                    // SAFETY: job_desc strings are owned by Slurm's allocator.
                    unsafe { xstr::replace(&mut self.raw.$field, value) }
                }
            )*
        }
    };
}

string_fields! {
    /// `--job-name`
    name / set_name,
    /// `--partition`: NULL (default chosen later) or a comma-separated list.
    partition / set_partition,
    account / set_account,
    qos / set_qos,
    comment / set_comment,
    /// Only the plugin (or an admin) may set it: slurmctld rejects a user's before the plugin runs.
    admin_comment / set_admin_comment,
    reservation / set_reservation,
    wckey / set_wckey,
    /// `--gpus`
    tres_per_job / set_tres_per_job,
    /// `--gpus-per-node`, `--gres`
    tres_per_node / set_tres_per_node,
    /// `--gpus-per-socket`
    tres_per_socket / set_tres_per_socket,
    /// `--gpus-per-task`
    tres_per_task / set_tres_per_task,
    /// `--cpus-per-gpu`
    cpus_per_tres / set_cpus_per_tres,
    /// `--mem-per-gpu`
    mem_per_tres / set_mem_per_tres,
    /// `--array` index expression
    array_inx / set_array_inx,
    /// `--constraint`
    features / set_features,
    /// `-w` / `ReqNodeList=`: the nodes the job must run on.
    req_nodes / set_req_nodes,
}

impl<'a> JobDesc<'a> {
    /// # Safety
    /// `raw` must be the `job_desc_msg_t` Slurm passed to the running entry point.
    #[doc(hidden)]
    pub unsafe fn from_raw(raw: *mut sys::job_desc_msg_t) -> Option<Self> {
        // SAFETY: per the contract; NULL is refused.
        unsafe { raw.as_mut() }.map(|raw| JobDesc { raw })
    }

    pub fn user_id(&self) -> u32 {
        self.raw.user_id
    }

    pub fn group_id(&self) -> u32 {
        self.raw.group_id
    }
}

/// Numeric fields that Slurm leaves at `NO_VAL` / `NO_VAL16` when not given.
macro_rules! optional_numbers {
    ($( $(#[$doc:meta])* $field:ident: $ty:ty = $unset:expr ),* $(,)?) => {
        impl<'a> JobDesc<'a> {
            $(
                $(#[$doc])*
                pub fn $field(&self) -> Option<$ty> {
                    (self.raw.$field != $unset).then_some(self.raw.$field)
                }
            )*
        }
    };
}

optional_numbers! {
    min_nodes: u32 = NO_VAL,
    max_nodes: u32 = NO_VAL,
    num_tasks: u32 = NO_VAL,
    min_cpus: u32 = NO_VAL,
    cpus_per_task: u16 = NO_VAL16,
    ntasks_per_node: u16 = NO_VAL16,
    /// `--mincpus`: CPUs on each node at least.
    pn_min_cpus: u16 = NO_VAL16,
    /// `--core-spec` / `--thread-spec`: with `AllowSpecResourcesUsage=YES` the job is given
    /// whole nodes (job_mgr.c `_copy_job_desc_to_job_record` sets `whole_node`).
    core_spec: u16 = NO_VAL16,
    /// `--ntasks-per-gpu`: tasks per GPU.
    ntasks_per_tres: u16 = NO_VAL16,
    /// `--ntasks-per-socket`: a maximum per socket.
    ntasks_per_socket: u16 = NO_VAL16,
    /// `--sockets-per-node`: a minimum the node must have (and the sockets
    /// `--gpus-per-socket` counts).
    sockets_per_node: u16 = NO_VAL16,
    /// Minutes.
    time_limit: u32 = NO_VAL,
    /// `--exclusive` sets 0.
    shared: u16 = NO_VAL16,
    /// The component index in a heterogeneous job; `None` for a plain job.
    het_job_offset: u32 = NO_VAL,
}

/// slurmctld's default partition (slurm.conf's `Default=YES`; the first partition when none
/// says so): where a job that names no partition goes.
///
/// Reads slurmctld's global `char *default_part_name` (src/slurmctld/partition_mgr.c, the
/// same declaration in 22.05, 24.11 and 26.05; slurmctld exports its symbols for its
/// plugins). Looked up at run time, so outside slurmctld this is `None`. job_submit and
/// job_modify run with the partition read lock held, so the string is stable while read.
pub fn slurmctld_default_partition() -> Option<String> {
    static ADDR: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let addr = *ADDR.get_or_init(|| {
        // SAFETY: dlsym with a valid C string; RTLD_DEFAULT searches the host process.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"default_part_name".as_ptr()) as usize }
    });
    let slot = addr as *const *const c_char;
    if slot.is_null() {
        return None;
    }
    // SAFETY: the symbol is slurmctld's `char *default_part_name`, read under the partition
    // lock Slurm holds while calling the plugin; NULL or a NUL-terminated string.
    let name = unsafe { xstr::borrow(std::ptr::read(slot)) }?;
    Some(name.into_owned()).filter(|n| !n.is_empty())
}

/// A refusal: the Slurm error code and the message the user sees (`sbatch: error: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: c_int,
    pub message: String,
    /// The rule that refused, for slurmctld's log line.
    pub rule: Option<&'static str>,
}

impl Rejection {
    pub fn new(code: c_int, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
            rule: None,
        }
    }

    pub fn with_rule(mut self, rule: &'static str) -> Self {
        self.rule = Some(rule);
        self
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// A job_submit plugin. `init` runs when slurmctld loads the plugin; a failure there makes
/// slurmctld refuse to start, so a plugin that must not stop the controller keeps its own
/// "no good config" state instead of failing.
pub trait JobSubmitPlugin: Sized + Send + Sync + 'static {
    fn init() -> Result<Self, String>;
    fn job_submit(&self, job: &mut JobDesc<'_>, submit_uid: u32) -> Result<(), Rejection>;
    fn job_modify(&self, job: &mut JobDesc<'_>, submit_uid: u32) -> Result<(), Rejection>;
    fn fini(self) {}
}

fn read<P>(state: &RwLock<Option<P>>) -> RwLockReadGuard<'_, Option<P>> {
    state.read().unwrap_or_else(|e| e.into_inner())
}

/// Hands `message` to Slurm through `err_msg` (which may be NULL), Slurm-allocated.
///
/// # Safety
/// `err_msg` must be NULL or point to NULL or a Slurm-allocated string.
unsafe fn set_err_msg(err_msg: *mut *mut c_char, message: &str) {
    // SAFETY: per the contract.
    if let Some(slot) = unsafe { err_msg.as_mut() } {
        // SAFETY: *slot is NULL or Slurm-allocated.
        let _ = unsafe { xstr::replace(slot, None) };
        *slot = xstr::xstrdup_lossy(message);
    }
}

/// The message a user sees when the plugin itself failed (a panic): the job is refused,
/// never let through unchecked.
pub fn internal_error_message(prefix: &str) -> String {
    format!("{prefix}: internal error while checking this job, so it was not accepted; the details are in the slurmctld log")
}

#[doc(hidden)]
pub fn run_init<P: JobSubmitPlugin>(prefix: &'static str, state: &RwLock<Option<P>>) -> c_int {
    log::init(prefix);
    guard::guard("init", || match P::init() {
        Ok(plugin) => {
            *state.write().unwrap_or_else(|e| e.into_inner()) = Some(plugin);
            crate::rc::SUCCESS
        }
        Err(e) => {
            log::write(SlurmLevel::Error, &format!("{prefix}: init failed: {e}"));
            crate::rc::ERROR
        }
    })
}

#[doc(hidden)]
pub fn run_fini<P: JobSubmitPlugin>(state: &RwLock<Option<P>>) -> c_int {
    guard::guard("fini", || {
        if let Some(plugin) = state.write().unwrap_or_else(|e| e.into_inner()).take() {
            plugin.fini();
        }
        crate::rc::SUCCESS
    })
}

/// Which entry point [`run_call`] serves.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum Call {
    Submit,
    Modify,
}

/// `job_submit` and `job_modify`.
///
/// # Safety
/// Slurm's arguments to the running entry point; `err_msg` may be NULL.
#[doc(hidden)]
pub unsafe fn run_call<P: JobSubmitPlugin>(
    state: &RwLock<Option<P>>,
    call: Call,
    job_desc: *mut sys::job_desc_msg_t,
    submit_uid: u32,
    err_msg: *mut *mut c_char,
) -> c_int {
    let prefix = log::prefix();
    let entry = match call {
        Call::Submit => "job_submit",
        Call::Modify => "job_modify",
    };
    let outcome = guard::catch(entry, || {
        // SAFETY: per this function's contract.
        let Some(mut job) = (unsafe { JobDesc::from_raw(job_desc) }) else {
            return Err(Rejection::new(
                crate::rc::ERROR,
                format!("{prefix}: no job description"),
            ));
        };
        let state = read(state);
        let Some(plugin) = state.as_ref() else {
            return Err(Rejection::new(
                crate::rc::ERROR,
                format!("{prefix}: plugin not initialised"),
            ));
        };
        match call {
            Call::Submit => plugin.job_submit(&mut job, submit_uid),
            Call::Modify => plugin.job_modify(&mut job, submit_uid),
        }
    });
    let rejection = match outcome {
        Ok(Ok(())) => {
            if matches!(call, Call::Modify) {
                // Slurm's job update (22.05 to 25.11, `_update_job`) returns `errno` as its
                // error code when a partition change finds no association, as on every
                // cluster without accounting; an `errno` left by slurmctld's own socket I/O
                // (EAGAIN) then fails an update we accepted with "Resource temporarily
                // unavailable". Nothing after us reads errno otherwise: hand back a clean one.
                guard::set_errno(0);
            }
            return crate::rc::SUCCESS;
        }
        Ok(Err(rejection)) => rejection,
        Err(_panicked) => Rejection::new(crate::rc::ERROR, internal_error_message(prefix)),
    };
    let rule = rejection
        .rule
        .map(|r| format!(" by rule {r}"))
        .unwrap_or_default();
    log::write(
        SlurmLevel::Info,
        &format!(
            "{prefix}: {entry} refused for uid {submit_uid}{rule}: {}",
            rejection.message
        ),
    );
    // SAFETY: per this function's contract.
    unsafe { set_err_msg(err_msg, &rejection.message) };
    rejection.code
}

/// Exports a job_submit plugin: `plugin_name`, `plugin_type = "job_submit/<name>"`,
/// `plugin_version` (must equal slurmctld's `SLURM_VERSION_NUMBER` exactly), `init`,
/// `fini`, `job_submit` and `job_modify` with the signature of the installed release
/// (`err_msg` added to `job_modify` in 23.02).
///
/// ```text
/// slurm_plugin::job_submit_plugin! {
///     name: "mlpolicy",
///     description: "ML partition and GPU policy",
///     plugin: Policy,
/// }
/// ```
/// Install as `job_submit_<name>.so` in a `PluginDir` and set `JobSubmitPlugins=<name>`.
#[macro_export]
macro_rules! job_submit_plugin {
    (name: $name:literal, description: $desc:literal, plugin: $ty:ty $(,)?) => {
        $crate::__export_plugin_identity!($desc, concat!("job_submit/", $name));

        static __JOB_SUBMIT_STATE: ::std::sync::RwLock<::std::option::Option<$ty>> =
            ::std::sync::RwLock::new(None);

        #[unsafe(no_mangle)]
        pub extern "C" fn init() -> $crate::__private::c_int {
            $crate::job_submit::run_init::<$ty>(concat!("job_submit/", $name), &__JOB_SUBMIT_STATE)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn fini() -> $crate::__private::c_int {
            $crate::job_submit::run_fini::<$ty>(&__JOB_SUBMIT_STATE)
        }

        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn job_submit(
            job_desc: *mut $crate::__private::slurm_sys::job_desc_msg_t,
            submit_uid: u32,
            err_msg: *mut *mut $crate::__private::c_char,
        ) -> $crate::__private::c_int {
            // SAFETY: slurmctld's own arguments, used during this call only.
            unsafe {
                $crate::job_submit::run_call::<$ty>(
                    &__JOB_SUBMIT_STATE,
                    $crate::job_submit::Call::Submit,
                    job_desc,
                    submit_uid,
                    err_msg,
                )
            }
        }

        $crate::__export_job_modify!($ty, __JOB_SUBMIT_STATE);
    };
}

// job_modify's signature follows the release the plugin is built for. The choice is made
// here, where the version cfgs are set, not in the plugin crate.
#[cfg(slurm_ge_23_02)]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_job_modify {
    ($ty:ty, $state:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn job_modify(
            job_desc: *mut $crate::__private::slurm_sys::job_desc_msg_t,
            _job_ptr: *mut ::std::ffi::c_void,
            submit_uid: u32,
            err_msg: *mut *mut $crate::__private::c_char,
        ) -> $crate::__private::c_int {
            // SAFETY: slurmctld's own arguments; job_ptr (job_record_t, private and changing
            // every release) is never dereferenced.
            unsafe {
                $crate::job_submit::run_call::<$ty>(
                    &$state,
                    $crate::job_submit::Call::Modify,
                    job_desc,
                    submit_uid,
                    err_msg,
                )
            }
        }
    };
}

#[cfg(not(slurm_ge_23_02))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_job_modify {
    ($ty:ty, $state:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn job_modify(
            job_desc: *mut $crate::__private::slurm_sys::job_desc_msg_t,
            _job_ptr: *mut ::std::ffi::c_void,
            submit_uid: u32,
        ) -> $crate::__private::c_int {
            // SAFETY: slurmctld's own arguments; job_ptr (job_record_t, private and changing
            // every release) is never dereferenced. 22.05 has no err_msg: the refusal is logged.
            unsafe {
                $crate::job_submit::run_call::<$ty>(
                    &$state,
                    $crate::job_submit::Call::Modify,
                    job_desc,
                    submit_uid,
                    ::std::ptr::null_mut(),
                )
            }
        }
    };
}

#[cfg(test)]
#[path = "tests/job_submit.rs"]
mod tests;
