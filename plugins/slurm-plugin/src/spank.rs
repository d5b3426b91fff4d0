//! SPANK: the handle, the plugin trait and the runtime behind [`spank_plugin!`].
//!
//! slurmstepd calls, in order: `init` -> option callbacks -> `init_post_opt` -> (privileges
//! dropped) `user_init` -> per task `task_init_privileged` (root) -> `task_init` (user, just
//! before exec) -> `task_exit` -> `exit`. srun (LOCAL context) calls `init` -> options ->
//! `init_post_opt` -> `local_user_init` -> `exit`; sbatch/salloc (ALLOCATOR) `init` ->
//! options -> `init_post_opt` -> `exit`.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt;
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::{Mutex, MutexGuard};

use slurm_sys as sys;

use crate::guard;
use crate::log::{self, SlurmLevel};

/// Slurm's special step ids ([`Spank::step_id`]), from the installed slurm.h.
pub const STEP_BATCH: u32 = sys::SLURM_BATCH_SCRIPT;
pub const STEP_EXTERN: u32 = sys::SLURM_EXTERN_CONT;
pub const STEP_INTERACTIVE: u32 = sys::SLURM_INTERACTIVE_STEP;

/// The error a SPANK hook returns: the message goes to the log and, in srun and
/// slurmstepd, to the user's terminal; the hook returns `-1` to Slurm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpankError {
    pub message: String,
}

impl SpankError {
    pub fn new(message: impl Into<String>) -> Self {
        SpankError {
            message: message.into(),
        }
    }
}

impl fmt::Display for SpankError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpankError {}

impl From<String> for SpankError {
    fn from(message: String) -> Self {
        SpankError { message }
    }
}

impl From<&str> for SpankError {
    fn from(message: &str) -> Self {
        SpankError::new(message)
    }
}

pub type SpankResult<T> = Result<T, SpankError>;

/// Where the plugin is running (spank.h `spank_context_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// srun
    Local,
    /// slurmstepd
    Remote,
    /// sbatch / salloc
    Allocator,
    /// slurmd
    Slurmd,
    /// prolog / epilog
    JobScript,
    /// unknown to this build
    Error,
}

impl Context {
    fn from_raw(c: sys::spank_context_t) -> Self {
        match c {
            sys::S_CTX_LOCAL => Context::Local,
            sys::S_CTX_REMOTE => Context::Remote,
            sys::S_CTX_ALLOCATOR => Context::Allocator,
            sys::S_CTX_SLURMD => Context::Slurmd,
            sys::S_CTX_JOB_SCRIPT => Context::JobScript,
            _ => Context::Error,
        }
    }
}

/// Whether an option takes an argument (spank.h `has_arg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    No = 0,
    Required = 1,
    Optional = 2,
}

/// A command-line option the plugin adds to srun, sbatch and salloc
/// (`--<name>[=<arginfo>]`). Declared once in [`SpankPlugin::OPTIONS`].
#[derive(Debug, Clone, Copy)]
pub struct SpankOpt {
    pub name: &'static CStr,
    pub arginfo: Option<&'static CStr>,
    pub usage: &'static CStr,
    pub has_arg: HasArg,
    /// Passed back to [`SpankPlugin::option`] to say which option was given.
    pub val: i32,
}

fn spank_strerror(err: sys::spank_err_t) -> String {
    // SAFETY: returns a pointer to a static string (or NULL).
    unsafe { crate::xstr::borrow(sys::spank_strerror(err)) }
        .map(|s| s.into_owned())
        .unwrap_or_else(|| format!("spank error {err}"))
}

/// The SPANK handle of one hook call.
pub struct Spank {
    raw: sys::spank_t,
}

impl Spank {
    /// # Safety
    /// `raw` must be the handle Slurm passed to the hook being run, used only during it.
    #[doc(hidden)]
    pub unsafe fn from_raw(raw: sys::spank_t) -> Self {
        Spank { raw }
    }

    pub fn context(&self) -> Context {
        // SAFETY: no arguments.
        Context::from_raw(unsafe { sys::spank_context() })
    }

    /// True in slurmstepd.
    pub fn is_remote(&self) -> bool {
        // SAFETY: valid handle.
        unsafe { sys::spank_remote(self.raw) == 1 }
    }

    fn item_u32(&self, item: sys::spank_item_t, what: &str) -> SpankResult<u32> {
        let mut v: u32 = 0;
        // SAFETY: the items read here take a `uint32_t *` (or a 32-bit uid_t/gid_t *).
        let rc = unsafe { sys::spank_get_item(self.raw, item, &mut v as *mut u32) };
        if rc == sys::ESPANK_SUCCESS {
            Ok(v)
        } else {
            Err(SpankError::new(format!(
                "cannot read {what}: {}",
                spank_strerror(rc)
            )))
        }
    }

    pub fn job_id(&self) -> SpankResult<u32> {
        self.item_u32(sys::S_JOB_ID, "the job id")
    }

    /// The step id; batch, extern and interactive steps have Slurm's special values
    /// ([`STEP_BATCH`], [`STEP_EXTERN`], [`STEP_INTERACTIVE`]).
    pub fn step_id(&self) -> SpankResult<u32> {
        self.item_u32(sys::S_JOB_STEPID, "the step id")
    }

    pub fn job_uid(&self) -> SpankResult<u32> {
        self.item_u32(sys::S_JOB_UID, "the job's uid")
    }

    pub fn job_gid(&self) -> SpankResult<u32> {
        self.item_u32(sys::S_JOB_GID, "the job's gid")
    }

    /// Nodes in this step.
    pub fn job_nnodes(&self) -> SpankResult<u32> {
        self.item_u32(sys::S_JOB_NNODES, "the step's node count")
    }

    /// This node's index in the step.
    pub fn job_nodeid(&self) -> SpankResult<u32> {
        self.item_u32(sys::S_JOB_NODEID, "the node's index in the step")
    }

    pub fn local_task_count(&self) -> SpankResult<u32> {
        self.item_u32(sys::S_JOB_LOCAL_TASK_COUNT, "the local task count")
    }

    pub fn total_task_count(&self) -> SpankResult<u32> {
        self.item_u32(sys::S_JOB_TOTAL_TASK_COUNT, "the total task count")
    }

    /// Task hooks only; in a heterogeneous job this is local to the component
    /// (`SLURM_PROCID` is global).
    pub fn task_global_id(&self) -> SpankResult<u32> {
        self.item_u32(sys::S_TASK_GLOBAL_ID, "the task's global id")
    }

    /// Task hooks only: the task's index on this node.
    pub fn task_id(&self) -> SpankResult<i32> {
        let mut v: c_int = 0;
        // SAFETY: S_TASK_ID takes an `int *`.
        let rc = unsafe { sys::spank_get_item(self.raw, sys::S_TASK_ID, &mut v as *mut c_int) };
        if rc == sys::ESPANK_SUCCESS {
            Ok(v)
        } else {
            Err(SpankError::new(format!(
                "cannot read the task id: {}",
                spank_strerror(rc)
            )))
        }
    }

    fn c_name(name: &str) -> SpankResult<CString> {
        CString::new(name).map_err(|_| SpankError::new(format!("invalid variable name {name:?}")))
    }

    /// Reads a variable of the job's environment in slurmstepd; elsewhere (srun, sbatch,
    /// salloc) the process environment, which is what those commands pass on to the job.
    /// Bytes that are not UTF-8 are replaced: use [`Spank::getenv_os`] for paths.
    pub fn getenv(&self, name: &str) -> SpankResult<Option<String>> {
        Ok(self
            .getenv_os(name)?
            .map(|v| v.to_string_lossy().into_owned()))
    }

    /// [`Spank::getenv`], byte for byte.
    pub fn getenv_os(&self, name: &str) -> SpankResult<Option<OsString>> {
        if !self.is_remote() {
            return Ok(std::env::var_os(name));
        }
        let cname = Self::c_name(name)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let len = c_int::try_from(buf.len()).unwrap_or(c_int::MAX);
            // SAFETY: buf is writable for `len` bytes.
            let rc = unsafe {
                sys::spank_getenv(
                    self.raw,
                    cname.as_ptr(),
                    buf.as_mut_ptr() as *mut c_char,
                    len,
                )
            };
            match rc {
                sys::ESPANK_SUCCESS => {
                    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                    buf.truncate(end);
                    return Ok(Some(OsString::from_vec(buf)));
                }
                sys::ESPANK_ENV_NOEXIST => return Ok(None),
                sys::ESPANK_NOSPACE if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
                _ => {
                    return Err(SpankError::new(format!(
                        "cannot read ${name}: {}",
                        spank_strerror(rc)
                    )));
                }
            }
        }
    }

    /// Sets a variable in the job's environment (slurmstepd) or in the process environment
    /// of srun/sbatch/salloc, which they pass on to the job. With `overwrite == false` an
    /// existing value is kept (and that is not an error).
    pub fn setenv(&self, name: &str, value: &str, overwrite: bool) -> SpankResult<()> {
        self.setenv_os(name, OsStr::new(value), overwrite)
    }

    /// [`Spank::setenv`] with a value that need not be UTF-8.
    pub fn setenv_os(&self, name: &str, value: &OsStr, overwrite: bool) -> SpankResult<()> {
        let cname = Self::c_name(name)?;
        let cvalue = CString::new(value.as_bytes())
            .map_err(|_| SpankError::new(format!("value of ${name} contains a NUL byte")))?;
        if !self.is_remote() {
            // SAFETY: valid C strings. srun/sbatch/salloc call SPANK hooks from their main
            // thread before they read the environment to pass on (spank.8).
            let rc =
                unsafe { libc::setenv(cname.as_ptr(), cvalue.as_ptr(), c_int::from(overwrite)) };
            return if rc == 0 {
                Ok(())
            } else {
                Err(SpankError::new(format!(
                    "cannot set ${name}: {}",
                    std::io::Error::last_os_error()
                )))
            };
        }
        // SAFETY: valid handle and C strings.
        let rc = unsafe {
            sys::spank_setenv(
                self.raw,
                cname.as_ptr(),
                cvalue.as_ptr(),
                c_int::from(overwrite),
            )
        };
        match rc {
            sys::ESPANK_SUCCESS => Ok(()),
            sys::ESPANK_ENV_EXISTS if !overwrite => Ok(()),
            _ => Err(SpankError::new(format!(
                "cannot set ${name}: {}",
                spank_strerror(rc)
            ))),
        }
    }

    pub fn unsetenv(&self, name: &str) -> SpankResult<()> {
        let cname = Self::c_name(name)?;
        if !self.is_remote() {
            // SAFETY: valid C string.
            unsafe { libc::unsetenv(cname.as_ptr()) };
            return Ok(());
        }
        // SAFETY: valid handle and C string.
        let rc = unsafe { sys::spank_unsetenv(self.raw, cname.as_ptr()) };
        if rc == sys::ESPANK_SUCCESS {
            Ok(())
        } else {
            Err(SpankError::new(format!(
                "cannot unset ${name}: {}",
                spank_strerror(rc)
            )))
        }
    }

    /// Registers the options with Slurm. `spank_option_register` copies the struct and its
    /// three strings (`_spank_option_copy` xstrdup's name, arginfo and usage, in
    /// src/common/plugstack.c in 22.05 and src/common/spank.c from 23.02 on), so the struct
    /// lives on the stack for the call only. The one pointer Slurm keeps is `cb`, a
    /// function of this plugin, which lives as long as the plugin is loaded.
    fn register_options(
        &self,
        opts: &'static [SpankOpt],
        cb: sys::spank_opt_cb_f,
    ) -> SpankResult<()> {
        for opt in opts {
            // Slurm's prototype takes non-const pointers but only reads through them.
            let mut raw = sys::spank_option {
                name: opt.name.as_ptr() as *mut c_char,
                arginfo: opt
                    .arginfo
                    .map_or(std::ptr::null_mut(), |a| a.as_ptr() as *mut c_char),
                usage: opt.usage.as_ptr() as *mut c_char,
                has_arg: opt.has_arg as c_int,
                val: opt.val,
                cb,
            };
            // SAFETY: valid handle; `raw` and its strings are valid for the call, and Slurm
            // keeps copies only.
            let rc = unsafe { sys::spank_option_register(self.raw, &mut raw) };
            if rc != sys::ESPANK_SUCCESS {
                return Err(SpankError::new(format!(
                    "cannot register option --{}: {}",
                    opt.name.to_string_lossy(),
                    spank_strerror(rc)
                )));
            }
        }
        Ok(())
    }
}

/// A SPANK plugin. Hooks have no-op defaults; [`spank_plugin!`] exports only the ones
/// listed, because exporting a hook can change what Slurm does (an exported
/// `slurm_spank_job_prolog` makes slurmd fork for every job; from 24.05 `user_init`,
/// `task_post_fork` and `task_exit` switch on extra paths in slurmstepd).
pub trait SpankPlugin: Sized + Send + 'static {
    /// Options registered with Slurm in every context, before `init` runs.
    const OPTIONS: &'static [SpankOpt] = &[];

    /// Runs in every context; `args` are the words after the path in plugstack.conf.
    fn init(spank: &Spank, args: &[String]) -> SpankResult<Self>;

    /// An option from [`Self::OPTIONS`] was given (`remote` is true in slurmstepd).
    fn option(&mut self, _val: i32, _optarg: Option<&str>, _remote: bool) -> SpankResult<()> {
        Ok(())
    }

    fn init_post_opt(&mut self, _spank: &Spank) -> SpankResult<()> {
        Ok(())
    }

    fn local_user_init(&mut self, _spank: &Spank) -> SpankResult<()> {
        Ok(())
    }

    fn user_init(&mut self, _spank: &Spank) -> SpankResult<()> {
        Ok(())
    }

    fn task_init_privileged(&mut self, _spank: &Spank) -> SpankResult<()> {
        Ok(())
    }

    fn task_init(&mut self, _spank: &Spank) -> SpankResult<()> {
        Ok(())
    }

    fn task_post_fork(&mut self, _spank: &Spank) -> SpankResult<()> {
        Ok(())
    }

    fn task_exit(&mut self, _spank: &Spank) -> SpankResult<()> {
        Ok(())
    }

    fn exit(&mut self, _spank: &Spank) -> SpankResult<()> {
        Ok(())
    }
}

fn lock<P>(state: &Mutex<Option<P>>) -> MutexGuard<'_, Option<P>> {
    // A panic caught by the guard may have poisoned the lock; the state is still usable.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn report(result: SpankResult<()>) -> c_int {
    match result {
        Ok(()) => crate::rc::SUCCESS,
        Err(e) => {
            log::write(
                SlurmLevel::Error,
                &format!("{}: {}", log::prefix(), e.message),
            );
            crate::rc::ERROR
        }
    }
}

/// Reads `argv[0..ac]` from plugstack.conf.
///
/// # Safety
/// `av` must hold `ac` valid C strings (or be NULL with `ac == 0`).
unsafe fn plugin_args(ac: c_int, av: *mut *mut c_char) -> Vec<String> {
    if av.is_null() {
        return Vec::new();
    }
    (0..usize::try_from(ac).unwrap_or(0))
        // SAFETY: per the contract.
        .filter_map(|i| unsafe { crate::xstr::borrow(*av.add(i)) })
        .map(|s| s.into_owned())
        .collect()
}

/// `slurm_spank_init`: registers the options, then builds the plugin state.
///
/// # Safety
/// Called only from the exported `slurm_spank_init` with Slurm's arguments.
#[doc(hidden)]
pub unsafe fn run_init<P: SpankPlugin>(
    prefix: &'static str,
    state: &Mutex<Option<P>>,
    option_cb: sys::spank_opt_cb_f,
    raw: sys::spank_t,
    ac: c_int,
    av: *mut *mut c_char,
) -> c_int {
    log::init(prefix);
    guard::guard("init", || {
        // SAFETY: per this function's contract.
        let spank = unsafe { Spank::from_raw(raw) };
        let args = unsafe { plugin_args(ac, av) };
        report(
            spank
                .register_options(P::OPTIONS, option_cb)
                .and_then(|()| {
                    let plugin = P::init(&spank, &args)?;
                    *lock(state) = Some(plugin);
                    Ok(())
                }),
        )
    })
}

/// Any hook after `init`.
///
/// # Safety
/// Called only from an exported hook with Slurm's handle.
#[doc(hidden)]
pub unsafe fn run_hook<P: SpankPlugin>(
    state: &Mutex<Option<P>>,
    name: &'static str,
    raw: sys::spank_t,
    hook: fn(&mut P, &Spank) -> SpankResult<()>,
) -> c_int {
    guard::guard(name, || {
        // SAFETY: per this function's contract.
        let spank = unsafe { Spank::from_raw(raw) };
        let mut state = lock(state);
        match state.as_mut() {
            Some(plugin) => report(hook(plugin, &spank)),
            // init failed and said why. With `required` Slurm stopped there; with
            // `optional` the job goes on without the plugin: stay quiet.
            None => {
                tracing::debug!("{name}: skipped, the plugin did not initialise");
                crate::rc::ERROR
            }
        }
    })
}

/// The option callback Slurm calls for each of [`SpankPlugin::OPTIONS`] given.
///
/// # Safety
/// `optarg` must be NULL or a valid C string.
#[doc(hidden)]
pub unsafe fn run_option<P: SpankPlugin>(
    state: &Mutex<Option<P>>,
    val: c_int,
    optarg: *const c_char,
    remote: c_int,
) -> c_int {
    guard::guard("option", || {
        // SAFETY: per this function's contract.
        let arg = unsafe { crate::xstr::borrow(optarg) };
        let mut state = lock(state);
        match state.as_mut() {
            Some(plugin) => report(plugin.option(val, arg.as_deref(), remote != 0)),
            // Options are registered inside init, so this is an `optional` plugin whose
            // init failed: the option is ignored rather than failing the command.
            None => {
                tracing::debug!("option ignored, the plugin did not initialise");
                crate::rc::SUCCESS
            }
        }
    })
}

/// Exports a SPANK plugin: `plugin_name`, `plugin_type = "spank"`, `plugin_version`,
/// `spank_plugin_version`, `slurm_spank_init` and exactly the hooks listed.
///
/// ```text
/// slurm_plugin::spank_plugin! {
///     name: "mlenv",
///     plugin: MlEnv,
///     hooks: [init_post_opt, user_init, task_init],
/// }
/// ```
/// Hooks: `init_post_opt`, `local_user_init`, `user_init`, `task_init_privileged`,
/// `task_init`, `task_post_fork`, `task_exit`, `exit`. `init` is always exported (it
/// registers the options and builds the state). `job_prolog`/`job_epilog` are not offered:
/// exporting them makes slurmd fork a SPANK process for every job.
#[macro_export]
macro_rules! spank_plugin {
    (name: $name:literal, plugin: $ty:ty, hooks: [$($hook:ident),* $(,)?] $(,)?) => {
        $crate::__export_plugin_identity!($name, "spank");

        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static spank_plugin_version: u32 = 1;

        static __SPANK_STATE: ::std::sync::Mutex<::std::option::Option<$ty>> = ::std::sync::Mutex::new(None);

        unsafe extern "C" fn __spank_option_cb(
            val: $crate::__private::c_int,
            optarg: *const $crate::__private::c_char,
            remote: $crate::__private::c_int,
        ) -> $crate::__private::c_int {
            // SAFETY: Slurm passes NULL or a valid C string.
            unsafe { $crate::spank::run_option::<$ty>(&__SPANK_STATE, val, optarg, remote) }
        }

        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn slurm_spank_init(
            sp: $crate::__private::slurm_sys::spank_t,
            ac: $crate::__private::c_int,
            av: *mut *mut $crate::__private::c_char,
        ) -> $crate::__private::c_int {
            // SAFETY: Slurm's own arguments, used during this call only.
            unsafe { $crate::spank::run_init::<$ty>($name, &__SPANK_STATE, Some(__spank_option_cb), sp, ac, av) }
        }

        $( $crate::__spank_hook!($ty, $hook); )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __spank_hook {
    ($ty:ty, init_post_opt) => { $crate::__spank_hook!(@export $ty, slurm_spank_init_post_opt, "init_post_opt", init_post_opt); };
    ($ty:ty, local_user_init) => { $crate::__spank_hook!(@export $ty, slurm_spank_local_user_init, "local_user_init", local_user_init); };
    ($ty:ty, user_init) => { $crate::__spank_hook!(@export $ty, slurm_spank_user_init, "user_init", user_init); };
    ($ty:ty, task_init_privileged) => { $crate::__spank_hook!(@export $ty, slurm_spank_task_init_privileged, "task_init_privileged", task_init_privileged); };
    ($ty:ty, task_init) => { $crate::__spank_hook!(@export $ty, slurm_spank_task_init, "task_init", task_init); };
    ($ty:ty, task_post_fork) => { $crate::__spank_hook!(@export $ty, slurm_spank_task_post_fork, "task_post_fork", task_post_fork); };
    ($ty:ty, task_exit) => { $crate::__spank_hook!(@export $ty, slurm_spank_task_exit, "task_exit", task_exit); };
    ($ty:ty, exit) => { $crate::__spank_hook!(@export $ty, slurm_spank_exit, "exit", exit); };
    (@export $ty:ty, $sym:ident, $label:literal, $method:ident) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $sym(
            sp: $crate::__private::slurm_sys::spank_t,
            _ac: $crate::__private::c_int,
            _av: *mut *mut $crate::__private::c_char,
        ) -> $crate::__private::c_int {
            // SAFETY: Slurm's own handle, used during this call only.
            unsafe {
                $crate::spank::run_hook::<$ty>(&__SPANK_STATE, $label, sp, <$ty as $crate::spank::SpankPlugin>::$method)
            }
        }
    };
}
