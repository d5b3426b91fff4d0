//! A real Slurm cluster on one machine, for the integration tests and the demo.
//!
//! [`Cluster::start`] boots, as root and under one directory: its own `munged` (private key
//! and socket), optionally MariaDB + `slurmdbd`, `slurmctld`, and N `slurmd` (`n1`..`nN`,
//! all on 127.0.0.1, one port each, `slurmd -N <name>`), with GPU GRES backed by placeholder
//! device files. Ports are picked free at start, so clusters can run side by side. Dropping
//! the [`Cluster`] (or [`stop_dir`]) stops exactly the processes it started and the job
//! processes under it.

pub mod conf;
mod ports;
mod procs;
pub mod users;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use conf::{CloudInputs, ConfInputs, PlugstackEntry};
pub use users::{ensure_user, User};

/// An error with everything needed to see why: the step that failed and log tails.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

fn io<T>(what: &str, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| Error(format!("{what}: {e}")))
}

/// A SPANK plugin to install: the cdylib cargo built, and its plugstack.conf arguments.
#[derive(Debug, Clone)]
pub struct SpankPlugin {
    pub artifact: PathBuf,
    pub args: Vec<String>,
    pub required: bool,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: usize,
    pub cpus_per_node: u32,
    pub memory_mb: u32,
    pub gpus_per_node: u32,
    /// Start MariaDB and slurmdbd and account jobs (sacct).
    pub accounting: bool,
    pub spank_plugins: Vec<SpankPlugin>,
    /// cdylibs named `libjob_submit_<name>.so`, installed as `job_submit_<name>.so`.
    pub job_submit_plugins: Vec<PathBuf>,
    pub prolog: Option<PathBuf>,
    pub epilog: Option<PathBuf>,
    /// HealthCheckProgram and its interval in seconds.
    pub health_check: Option<(PathBuf, u32)>,
    /// Lines appended to slurm.conf before the node lines.
    pub extra_slurm_conf: Vec<String>,
    /// Lines appended to slurmdbd.conf (with `accounting`).
    pub extra_slurmdbd_conf: Vec<String>,
    /// Files written next to slurm.conf (name, content), e.g. a plugin's config;
    /// [`CLUSTER_DIR_PLACEHOLDER`] in the content becomes the cluster directory.
    pub extra_files: Vec<(String, String)>,
    /// A fixed directory (the demo); otherwise a fresh one under the temp dir.
    pub dir: Option<PathBuf>,
    pub cluster_name: Option<String>,
    /// How long to wait for every node to be idle.
    pub start_timeout: Duration,
    /// `State=CLOUD` nodes `cloud-1`..`cloud-N` in a `cloud` partition (same CPUs, memory
    /// and GPUs as the others). Not started with the cluster: Slurm's power saving runs
    /// the cluster's ResumeProgram, which starts `slurmd -N cloud-N`, and its
    /// SuspendProgram, which stops it, as a cloud plugin launches and ends instances.
    pub cloud_nodes: usize,
    /// `TRESBillingWeights` on a partition's line: (`debug` or `cloud`, weights), e.g.
    /// `("cloud", "CPU=4.0,GRES/gpu=400")`. Weights on `GRES/gpu` need `accounting`
    /// (slurmctld: "failed to parse tres weights str" unless AccountingStorageTRES names
    /// gres/gpu, which needs slurmdbd).
    pub billing_weights: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 3,
            cpus_per_node: 8,
            memory_mb: 8000,
            gpus_per_node: 8,
            accounting: false,
            spank_plugins: Vec::new(),
            job_submit_plugins: Vec::new(),
            prolog: None,
            epilog: None,
            health_check: None,
            extra_slurm_conf: Vec::new(),
            extra_slurmdbd_conf: Vec::new(),
            extra_files: Vec::new(),
            dir: None,
            cluster_name: None,
            start_timeout: Duration::from_secs(60),
            cloud_nodes: 0,
            billing_weights: Vec::new(),
        }
    }
}

/// The power-saving timers of the `cloud` partition (seconds), short for tests: a cloud
/// node idle this long is powered down...
pub const CLOUD_SUSPEND_TIME: u32 = 5;
/// ...and counts as powered down (`idle~`) this long after its SuspendProgram started.
pub const CLOUD_SUSPEND_TIMEOUT: u32 = 5;
/// A resumed cloud node that has not registered within this is set DOWN.
pub const CLOUD_RESUME_TIMEOUT: u32 = 60;

/// Replaced by the cluster directory in [`Options::extra_files`].
pub const CLUSTER_DIR_PLACEHOLDER: &str = "@CLUSTER_DIR@";

/// A started daemon.
#[derive(Debug, Clone)]
struct Daemon {
    name: String,
    pid: u32,
}

/// Where the files of a cluster directory are.
pub mod layout {
    pub const PIDS: &str = "run/daemons.pids";
    pub const SLURM_CONF: &str = "slurm.conf";
    /// A world-writable directory jobs run in (tests' and demo's working directory).
    pub const WORK: &str = "work";
    /// The cloud nodes' ResumeProgram and SuspendProgram, and their log.
    pub const RESUME_PROGRAM: &str = "bin/cloud-resume";
    pub const SUSPEND_PROGRAM: &str = "bin/cloud-suspend";
    pub const POWER_SAVE_LOG: &str = "log/power-save.log";
    /// A cloud node's slurmd pid file (SlurmdPidFile=run/slurmd-%n.pid): how `stop` finds
    /// slurmds this cluster did not start itself.
    pub fn cloud_slurmd_pid_file(node: &str) -> String {
        format!("run/slurmd-{node}.pid")
    }
}

/// A running local cluster.
pub struct Cluster {
    dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    inputs: ConfInputs,
    daemons: Vec<Daemon>,
    detached: bool,
}

/// Finds a file cargo built (`libspank_selftest.so`, `ml-epilog`) next to the running
/// test or binary: `target/<profile>/` or `target/<profile>/deps/`'s parent.
/// `LOCAL_CLUSTER_ARTIFACT_DIR` overrides.
pub fn cargo_artifact(file: &str) -> Result<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("LOCAL_CLUSTER_ARTIFACT_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.parent() {
            dirs.push(d.to_path_buf());
            if let Some(up) = d.parent() {
                dirs.push(up.to_path_buf());
            }
        }
    }
    for d in &dirs {
        let p = d.join(file);
        if p.is_file() {
            return Ok(p);
        }
    }
    err(format!(
        "{file} not found in {}: build the workspace first (`cargo build --workspace`)",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn hostname() -> Result<String> {
    let h = io(
        "read /proc/sys/kernel/hostname",
        fs::read_to_string("/proc/sys/kernel/hostname"),
    )?;
    Ok(h.trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_string())
}

fn find_program(name: &str) -> Result<PathBuf> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/sbin",
        "/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    err(format!(
        "{name} is not installed (run ./scripts/install-deps.sh, or apt-get install the Slurm/munge/MariaDB packages)"
    ))
}

/// Where Slurm's own plugins are (`PluginDir` must keep them next to ours).
fn system_plugin_dir() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/slurm-wlm",
        "/usr/lib/aarch64-linux-gnu/slurm-wlm",
        "/usr/lib64/slurm",
        "/usr/lib/slurm",
        "/usr/local/lib/slurm",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|d| d.join("select_cons_tres.so").exists())
}

fn write_file(path: &Path, content: &str, mode: u32) -> Result<()> {
    io(
        &format!("write {}", path.display()),
        fs::write(path, content),
    )?;
    io(
        &format!("chmod {}", path.display()),
        fs::set_permissions(path, fs::Permissions::from_mode(mode)),
    )
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    io(
        &format!("mkdir {}", path.display()),
        fs::create_dir_all(path),
    )?;
    io(
        &format!("chmod {}", path.display()),
        fs::set_permissions(path, fs::Permissions::from_mode(mode)),
    )
}

/// The last `lines` lines of a file, or a note that it is missing.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

impl Cluster {
    /// Boots the cluster and waits until every node is idle.
    pub fn start(opts: Options) -> Result<Cluster> {
        if effective_uid() != 0 {
            return err("local-cluster must run as root (it starts munged, slurmctld and slurmd)");
        }
        let (dir, tempdir) = match &opts.dir {
            Some(d) => {
                if d.symlink_metadata().is_ok() {
                    root_only(d)?;
                }
                if d.join(layout::PIDS).exists() {
                    stop_dir(d)?;
                }
                if d.exists() {
                    // This runs as root: only ever clear a directory an earlier cluster made.
                    if !is_cluster_dir(d) && !is_empty_dir(d) {
                        return err(format!(
                            "{} exists and is not a local-cluster directory; choose another --dir",
                            d.display()
                        ));
                    }
                    io(&format!("clear {}", d.display()), fs::remove_dir_all(d))?;
                }
                // Made here, not found: a directory someone put in its place between the
                // removal and now (in /tmp, anyone may) is refused, not used.
                if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
                    io(
                        &format!("mkdir {}", parent.display()),
                        fs::create_dir_all(parent),
                    )?;
                }
                io(&format!("mkdir {}", d.display()), fs::create_dir(d))?;
                mkdir(d, 0o755)?;
                // Absolute from here on: the daemons' command lines name it, and other
                // processes find the cluster by it (ports, stop).
                (
                    io(&format!("resolve {}", d.display()), fs::canonicalize(d))?,
                    None,
                )
            }
            None => {
                let t = io(
                    "create a temp dir",
                    tempfile::Builder::new().prefix("slurm-lc-").tempdir(),
                )?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        // Other users (test users submitting jobs) read slurm.conf and reach the munge socket.
        io(
            "chmod cluster dir",
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)),
        )?;
        for sub in [
            "state",
            "spool",
            "log",
            "run",
            "plugins",
            "munge-socket",
            "dev",
        ] {
            mkdir(&dir.join(sub), 0o755)?;
        }
        mkdir(&dir.join("munge"), 0o700)?;
        mkdir(&dir.join(layout::WORK), 0o1777)?;

        let ports = ports::reserve(opts.nodes + 3 + opts.cloud_nodes, &dir)?;
        let cluster_name = opts.cluster_name.clone().unwrap_or_else(|| {
            // Short and unique per cluster: it names the accounting tables too.
            format!("lc{}", ports[0])
        });
        let accounting = opts.accounting.then(|| conf::AccountingInputs {
            dbd_port: ports[opts.nodes + 1],
            db_port: ports[opts.nodes + 2],
            db_user: "slurm".into(),
            db_password: format!("lc-{}", ports[0]),
            extra_lines: opts.extra_slurmdbd_conf.clone(),
        });
        let inputs = ConfInputs {
            cluster_name,
            hostname: hostname()?,
            dir: dir.clone(),
            munge_socket: dir.join("munge-socket/munge.socket"),
            plugin_dir: dir.join("plugins"),
            system_plugin_dir: system_plugin_dir(),
            slurmctld_port: ports[0],
            slurmd_ports: ports[1..=opts.nodes].to_vec(),
            cpus_per_node: opts.cpus_per_node,
            memory_mb: opts.memory_mb,
            gpus_per_node: opts.gpus_per_node,
            job_submit_plugins: Vec::new(),
            prolog: opts.prolog.clone(),
            epilog: opts.epilog.clone(),
            health_check: opts.health_check.clone(),
            accounting,
            extra_lines: opts.extra_slurm_conf.clone(),
            cloud: (opts.cloud_nodes > 0).then(|| CloudInputs {
                ports: ports[opts.nodes + 3..].to_vec(),
                resume_program: dir.join(layout::RESUME_PROGRAM),
                suspend_program: dir.join(layout::SUSPEND_PROGRAM),
                suspend_time: CLOUD_SUSPEND_TIME,
                suspend_timeout: CLOUD_SUSPEND_TIMEOUT,
                resume_timeout: CLOUD_RESUME_TIMEOUT,
            }),
            billing_weights: opts.billing_weights.clone(),
        };
        let mut cluster = Cluster {
            dir,
            _tempdir: tempdir,
            inputs,
            daemons: Vec::new(),
            detached: false,
        };
        // On any failure below, Drop stops what was started.
        cluster.install_plugins(&opts)?;
        cluster.write_config(&opts)?;
        cluster.start_munged()?;
        if cluster.inputs.accounting.is_some() {
            cluster.start_accounting()?;
        }
        cluster.start_slurmctld()?;
        for i in 0..opts.nodes {
            let node = ConfInputs::node_name(i);
            let conf = cluster.conf_path();
            cluster.spawn(
                &format!("slurmd-{node}"),
                Command::new(find_program("slurmd")?)
                    .args(["-D", "-N", &node, "-f"])
                    .arg(&conf),
            )?;
        }
        cluster.wait_nodes_idle(opts.start_timeout)?;
        if cluster.inputs.accounting.is_some() {
            cluster.wait_registered_with_slurmdbd(opts.start_timeout)?;
        }
        Ok(cluster)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn conf_path(&self) -> PathBuf {
        self.dir.join(layout::SLURM_CONF)
    }

    pub fn work_dir(&self) -> PathBuf {
        self.dir.join(layout::WORK)
    }

    pub fn cluster_name(&self) -> &str {
        &self.inputs.cluster_name
    }

    pub fn node_names(&self) -> Vec<String> {
        (0..self.inputs.slurmd_ports.len())
            .map(ConfInputs::node_name)
            .collect()
    }

    /// The cloud nodes (`cloud-1`, ...), powered up only by Slurm's power saving.
    pub fn cloud_node_names(&self) -> Vec<String> {
        let n = self.inputs.cloud.as_ref().map_or(0, |c| c.ports.len());
        (0..n).map(ConfInputs::cloud_node_name).collect()
    }

    /// The pid of a cloud node's slurmd while it runs (started by the ResumeProgram).
    pub fn cloud_slurmd_pid(&self, node: &str) -> Option<u32> {
        cloud_slurmd(&self.dir, node)
    }

    /// The path of a daemon's log: `slurmctld`, `slurmd-n1`, `slurmdbd`, `munged`.
    pub fn log_path(&self, daemon: &str) -> PathBuf {
        match daemon {
            "munged" | "mariadb" => self.dir.join(format!("log/{daemon}.out")),
            d => self.dir.join(format!("log/{d}.log")),
        }
    }

    pub fn log(&self, daemon: &str) -> String {
        fs::read(self.log_path(daemon))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn install_plugins(&mut self, opts: &Options) -> Result<()> {
        let plugins = self.dir.join("plugins");
        let mut stack = Vec::new();
        for sp in &opts.spank_plugins {
            let dest = plugins.join(installed_name(&sp.artifact)?);
            io(
                &format!("copy {}", sp.artifact.display()),
                fs::copy(&sp.artifact, &dest),
            )?;
            stack.push(PlugstackEntry {
                required: sp.required,
                path: dest,
                args: sp.args.clone(),
            });
        }
        write_file(
            &self.dir.join("plugstack.conf"),
            &conf::plugstack_conf(&stack),
            0o644,
        )?;
        for js in &opts.job_submit_plugins {
            let file = installed_name(js)?;
            let Some(name) = file
                .strip_prefix("job_submit_")
                .and_then(|f| f.strip_suffix(".so"))
            else {
                return err(format!(
                    "{} is not named libjob_submit_<name>.so",
                    js.display()
                ));
            };
            io(
                &format!("copy {}", js.display()),
                fs::copy(js, plugins.join(&file)),
            )?;
            self.inputs.job_submit_plugins.push(name.to_string());
        }
        Ok(())
    }

    fn write_config(&self, opts: &Options) -> Result<()> {
        // Placeholder GPUs: character devices with /dev/null's numbers, never opened.
        for node in self.inputs.all_node_names() {
            let dev = self.inputs.gpu_dev_dir(&node);
            mkdir(&dev, 0o755)?;
            for g in 0..self.inputs.gpus_per_node {
                procs::mknod_char(&dev.join(format!("nvidia{g}")), 1, 3)?;
            }
        }
        write_file(&self.conf_path(), &conf::slurm_conf(&self.inputs), 0o644)?;
        write_file(
            &self.dir.join("gres.conf"),
            &conf::gres_conf(&self.inputs),
            0o644,
        )?;
        if let Some(a) = &self.inputs.accounting {
            write_file(
                &self.dir.join("slurmdbd.conf"),
                &conf::slurmdbd_conf(&self.inputs, a),
                0o600,
            )?;
        }
        if self.inputs.cloud.is_some() {
            self.write_power_save_programs()?;
        }
        for (name, content) in &opts.extra_files {
            let content = content.replace(CLUSTER_DIR_PLACEHOLDER, &self.dir.display().to_string());
            write_file(&self.dir.join(name), &content, 0o644)?;
        }
        Ok(())
    }

    /// The ResumeProgram and SuspendProgram of the cloud nodes. slurmctld runs them as
    /// root with only SLURM_CONF in the environment (no PATH), its descriptors closed
    /// (22.05) or stdout a pipe it reads to the end, and (24.11+, slurmscriptd) kills the
    /// program's process group when it exits: so every path is absolute, output goes to
    /// a log, and slurmd detaches (it daemonizes into its own session: no `-D`).
    fn write_power_save_programs(&self) -> Result<()> {
        let scripts = conf::PowerSaveScripts {
            dir: self.dir.clone(),
            slurmd: find_program("slurmd")?,
            scontrol: find_program("scontrol")?,
        };
        mkdir(&self.dir.join("bin"), 0o755)?;
        // slurmctld refuses programs writable by group or others.
        write_file(
            &self.dir.join(layout::RESUME_PROGRAM),
            &scripts.resume(),
            0o755,
        )?;
        write_file(
            &self.dir.join(layout::SUSPEND_PROGRAM),
            &scripts.suspend(),
            0o755,
        )
    }

    /// Starts a daemon in the foreground, in its own process group (so a terminal's ^C
    /// does not reach it), output to log/<name>.out.
    fn spawn(&mut self, name: &str, cmd: &mut Command) -> Result<u32> {
        let out_path = self.dir.join(format!("log/{name}.out"));
        let out = io(
            &format!("create {}", out_path.display()),
            fs::File::create(&out_path),
        )?;
        let err_out = io("dup log handle", out.try_clone())?;
        let child = cmd
            .env("SLURM_CONF", self.conf_path())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err_out)
            .process_group(0)
            .spawn();
        let child = io(&format!("start {name}"), child)?;
        let pid = child.id();
        // The child is reaped by procs::alive(); dropping the handle does not kill it.
        drop(child);
        self.daemons.push(Daemon {
            name: name.to_string(),
            pid,
        });
        self.write_pids()?;
        Ok(pid)
    }

    fn write_pids(&self) -> Result<()> {
        let text: String = self
            .daemons
            .iter()
            .map(|d| format!("{} {}\n", d.pid, d.name))
            .collect();
        write_file(&self.dir.join(layout::PIDS), &text, 0o644)
    }

    fn daemon_failure(&self, what: &str, logs: &[&str]) -> Error {
        let mut msg = format!("local cluster in {}: {what}", self.dir.display());
        for l in logs {
            let path = self.log_path(l);
            msg.push_str(&format!(
                "\n--- last lines of {} ---\n{}",
                path.display(),
                tail(&path, 25)
            ));
            let out = self.dir.join(format!("log/{l}.out"));
            if out != path && out.exists() {
                msg.push_str(&format!(
                    "\n--- last lines of {} ---\n{}",
                    out.display(),
                    tail(&out, 10)
                ));
            }
        }
        Error(msg)
    }

    fn wait_until(&self, timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn daemon_alive(&self, name: &str) -> bool {
        self.daemons
            .iter()
            .filter(|d| d.name == name)
            .all(|d| procs::alive(d.pid))
    }

    fn start_munged(&mut self) -> Result<()> {
        let key_path = self.dir.join("munge/munge.key");
        let mut key = vec![0u8; 1024];
        io(
            "read /dev/urandom",
            fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key)),
        )?;
        io("write munge key", fs::write(&key_path, &key))?;
        io(
            "chmod munge key",
            fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)),
        )?;
        let d = self.dir.clone();
        self.spawn(
            "munged",
            Command::new(find_program("munged")?)
                .arg("--foreground")
                .arg("--force")
                .arg(format!("--socket={}", self.inputs.munge_socket.display()))
                .arg(format!("--key-file={}", key_path.display()))
                .arg(format!("--pid-file={}", d.join("run/munged.pid").display()))
                .arg(format!(
                    "--seed-file={}",
                    d.join("munge/munged.seed").display()
                ))
                .arg(format!("--log-file={}", d.join("log/munged.log").display())),
        )?;
        let sock = self.inputs.munge_socket.clone();
        if !self.wait_until(Duration::from_secs(10), || {
            sock.exists() || !self.daemon_alive("munged")
        }) || !sock.exists()
        {
            return Err(self.daemon_failure("munged did not create its socket", &["munged"]));
        }
        Ok(())
    }

    fn start_accounting(&mut self) -> Result<()> {
        let Some(a) = self.inputs.accounting.clone() else {
            return Ok(());
        };
        let data = self.dir.join("mysql/data");
        let sock = self.dir.join("mysql/mysqld.sock");
        mkdir(&self.dir.join("mysql"), 0o755)?;
        // Each server its own tmpdir: a starting mariadbd deletes every `#sql*` temporary
        // table file in its tmpdir, another cluster's too ("Error on delete of
        // '/tmp/#sql-temptable-...'", seen with test binaries run side by side).
        let tmp = self.dir.join("mysql/tmp");
        mkdir(&tmp, 0o700)?;
        let install = Command::new(find_program("mariadb-install-db")?)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                // Grants by IP, no host name lookups: they fail where /etc/hosts is minimal
                // (--force lets the install go on when the host name does not resolve).
                "--skip-name-resolve",
                "--force",
            ])
            .output();
        let install = io("run mariadb-install-db", install)?;
        if !install.status.success() {
            return err(format!(
                "mariadb-install-db failed: {}{}",
                String::from_utf8_lossy(&install.stdout),
                String::from_utf8_lossy(&install.stderr)
            ));
        }
        self.spawn(
            "mariadb",
            Command::new(find_program("mariadbd")?)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .arg(format!("--socket={}", sock.display()))
                .arg(format!("--port={}", a.db_port))
                .args([
                    "--bind-address=127.0.0.1",
                    "--user=root",
                    "--skip-name-resolve",
                ])
                .args([
                    "--innodb-buffer-pool-size=64M",
                    "--innodb-log-file-size=16M",
                    // ON by default from MariaDB 11.6.2 (sid's 11.8): a conflicting write
                    // then fails and slurmdbd 26.05 stops (mysql_common.c, ER_CHECKREAD).
                    // `loose-`: MariaDB releases without the variable only warn.
                    "--loose-innodb-snapshot-isolation=OFF",
                ])
                .arg(format!(
                    "--pid-file={}",
                    self.dir.join("run/mariadb.pid").display()
                )),
        )?;
        if !self.wait_until(Duration::from_secs(60), || {
            sock.exists() || !self.daemon_alive("mariadb")
        }) || !sock.exists()
        {
            return Err(self.daemon_failure("MariaDB did not start", &["mariadb"]));
        }
        // The database is created here, not by slurmdbd: slurmdbd 24.11 retries its
        // connection on the same handle after creating the database itself, and with
        // Debian 13's libmariadb that handle then fails every query ("Number of columns in
        // result (=1) set exceeds maximum allowed number of columns (=0)").
        let sql = format!(
            "CREATE DATABASE slurm_acct_db; CREATE USER '{u}'@'127.0.0.1' IDENTIFIED BY '{p}'; GRANT ALL ON *.* TO '{u}'@'127.0.0.1'; FLUSH PRIVILEGES;",
            u = a.db_user,
            p = a.db_password
        );
        let out = io(
            "run mariadb client",
            Command::new(find_program("mariadb")?)
                .arg("--no-defaults")
                .arg(format!("--socket={}", sock.display()))
                .args(["-u", "root", "-e", &sql])
                .output(),
        )?;
        if !out.status.success() {
            return err(format!(
                "creating the slurmdbd database user failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        self.spawn(
            "slurmdbd",
            Command::new(find_program("slurmdbd")?).arg("-D"),
        )?;
        let port = a.dbd_port;
        if !self.wait_until(Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                || !self.daemon_alive("slurmdbd")
        }) || !self.daemon_alive("slurmdbd")
        {
            return Err(
                self.daemon_failure("slurmdbd did not start listening", &["slurmdbd", "mariadb"])
            );
        }
        // Register the cluster before slurmctld first talks to slurmdbd. A slurmdbd that
        // is still creating its tables on a loaded machine can miss the first connection
        // ("No response to persist_init"): try a few times.
        let add = || {
            self.run(
                "sacctmgr",
                ["-i", "add", "cluster", self.inputs.cluster_name.as_str()],
            )
        };
        let mut out = add()?;
        for _ in 0..4 {
            if out.status.success() || !String::from_utf8_lossy(&out.stderr).contains("persist") {
                break;
            }
            std::thread::sleep(Duration::from_secs(3));
            out = add()?;
        }
        // A retry after a first try that did reach slurmdbd finds the cluster there.
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() && !text.contains("Nothing new added") {
            return Err(self.daemon_failure(
                &format!(
                    "sacctmgr add cluster failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
                &["slurmdbd"],
            ));
        }
        Ok(())
    }

    /// Jobs submitted before slurmctld has registered with slurmdbd get incomplete records
    /// (sacct shows them as root's "allocation"), so start-up waits for the registration.
    fn wait_registered_with_slurmdbd(&self, timeout: Duration) -> Result<()> {
        let name = self.inputs.cluster_name.clone();
        let port = self.inputs.slurmctld_port.to_string();
        let ok = self.wait_until(timeout, || {
            self.run(
                "sacctmgr",
                [
                    "-n",
                    "-P",
                    "show",
                    "cluster",
                    name.as_str(),
                    "format=ControlPort",
                ],
            )
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == port)
            .unwrap_or(false)
        });
        if ok {
            Ok(())
        } else {
            Err(self.daemon_failure(
                "slurmctld did not register with slurmdbd",
                &["slurmctld", "slurmdbd"],
            ))
        }
    }

    fn start_slurmctld(&mut self) -> Result<()> {
        let conf = self.conf_path();
        self.spawn(
            "slurmctld",
            Command::new(find_program("slurmctld")?)
                .args(["-D", "-i", "-f"])
                .arg(&conf),
        )?;
        let ok = self.wait_until(Duration::from_secs(30), || {
            !self.daemon_alive("slurmctld")
                || self
                    .run("scontrol", ["ping"])
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("is UP"))
                    .unwrap_or(false)
        });
        if !ok || !self.daemon_alive("slurmctld") {
            return Err(self.daemon_failure("slurmctld did not come up", &["slurmctld"]));
        }
        Ok(())
    }

    fn wait_nodes_idle(&self, timeout: Duration) -> Result<()> {
        let n = self.inputs.slurmd_ports.len();
        let mut last = Vec::new();
        let ok = self.wait_until(timeout, || {
            last = self.node_states().unwrap_or_default();
            last.iter().filter(|(_, state)| state == "idle").count() == n
        });
        if ok {
            return Ok(());
        }
        let mut logs = vec!["slurmctld".to_string()];
        logs.extend(self.node_names().iter().map(|n| format!("slurmd-{n}")));
        let logs: Vec<&str> = logs.iter().map(|s| s.as_str()).collect();
        Err(self.daemon_failure(
            &format!("not every node became idle within {timeout:?}; sinfo said: {last:?}"),
            &logs,
        ))
    }

    /// A command with this cluster's `SLURM_CONF`, run in the shared work directory.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf_path())
            .current_dir(self.work_dir());
        // A test run from inside a Slurm job must not aim at that job's cluster, and
        // cargo's library path (set for test binaries) is not the user's: it would leak
        // into every job's environment.
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str() {
                if (k.starts_with("SLURM_") && k != "SLURM_CONF") || k == "LD_LIBRARY_PATH" {
                    c.env_remove(k);
                }
            }
        }
        c
    }

    /// Runs a Slurm command as root and returns its output.
    pub fn run<I, S>(&self, program: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = self.command(program);
        c.args(args);
        io(&format!("run {program}"), output_retrying(&mut c))
    }

    /// Runs a Slurm command as `user` (uid, gid and HOME set; no PAM).
    pub fn run_as<I, S>(&self, user: &User, program: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = self.command(program);
        c.args(args)
            .uid(user.uid)
            .gid(user.gid)
            .env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
        io(
            &format!("run {program} as {}", user.name),
            output_retrying(&mut c),
        )
    }

    /// Copies a program (e.g. a test tool cargo built) into the cluster directory, where
    /// every test user can run it (the build tree may sit under a private home), and
    /// returns its new path.
    pub fn install_tool(&self, program: &Path) -> Result<PathBuf> {
        let bin = self.dir.join("bin");
        mkdir(&bin, 0o755)?;
        let Some(name) = program.file_name() else {
            return err(format!("bad program path {}", program.display()));
        };
        let dest = bin.join(name);
        io(
            &format!("copy {}", program.display()),
            fs::copy(program, &dest),
        )?;
        io(
            "chmod tool",
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)),
        )?;
        Ok(dest)
    }

    /// Submits with `sbatch --parsable` and returns the job id, or the error output.
    pub fn sbatch(&self, user: Option<&User>, args: &[&str]) -> Result<u32> {
        let mut full = vec!["--parsable"];
        full.extend_from_slice(args);
        let out = match user {
            Some(u) => self.run_as(u, "sbatch", &full)?,
            None => self.run("sbatch", &full)?,
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout
            .trim()
            .split(';')
            .next()
            .and_then(|id| id.parse().ok())
        {
            Some(id) if out.status.success() => Ok(id),
            _ => err(format!(
                "sbatch {args:?} failed ({}): {}{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }

    /// One field of `scontrol show job` (e.g. `JobState`, `Comment`, `NodeList`).
    pub fn job_field(&self, job: u32, field: &str) -> Result<Option<String>> {
        let out = self.run("scontrol", ["-o", "show", "job", &job.to_string()])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(scontrol_field(&text, field))
    }

    /// Waits until the job is in a final state and returns it (`COMPLETED`, `FAILED`, ...).
    pub fn wait_job(&self, job: u32, timeout: Duration) -> Result<String> {
        const FINAL: &[&str] = &[
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "NODE_FAIL",
            "OUT_OF_MEMORY",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
        ];
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.job_field(job, "JobState")?.unwrap_or_default();
            if FINAL.contains(&state.as_str()) {
                return Ok(state);
            }
            if Instant::now() >= deadline {
                return Err(self.daemon_failure(
                    &format!("job {job} still {state:?} after {timeout:?}"),
                    &["slurmctld"],
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `sinfo -N` as (node, state) pairs, one per node (sinfo repeats a node for each of
    /// its partitions).
    pub fn node_states(&self) -> Result<Vec<(String, String)>> {
        let out = self.run("sinfo", ["-h", "-N", "-o", "%N %T"])?;
        let mut states: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(n, s)| (n.to_string(), s.to_string()))
            })
            .collect();
        states.dedup();
        Ok(states)
    }

    /// Whether every daemon this cluster started is still running.
    pub fn all_daemons_alive(&self) -> Vec<(String, bool)> {
        self.daemons
            .iter()
            .map(|d| (d.name.clone(), procs::alive(d.pid)))
            .collect()
    }

    /// Leaves the cluster running after this value is dropped (the demo); stop it later
    /// with [`stop_dir`].
    pub fn detach(mut self) -> PathBuf {
        self.detached = true;
        self.dir.clone()
    }

    /// Stops everything now (also done on drop).
    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<()> {
        if self.daemons.is_empty() {
            return Ok(());
        }
        let result = stop_dir(&self.dir);
        self.daemons.clear();
        result
    }
}

/// `Command::output`, retried on ETXTBSY: a program just copied (see
/// [`Cluster::install_tool`]) cannot be executed while another thread's freshly forked
/// child still holds the copy's write descriptor; that child execs (and drops it) within
/// moments.
fn output_retrying(c: &mut Command) -> std::io::Result<Output> {
    let mut tries = 0;
    loop {
        match c.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Reads one `Key=value` field from `scontrol -o` output. A value may contain spaces
/// (`Comment=two words`): words up to the next `Key=` belong to it.
pub fn scontrol_field(text: &str, field: &str) -> Option<String> {
    let starts_field = |w: &str| {
        w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty()
                && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '/'))
        })
    };
    let mut words = text.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let Some(first) = w.strip_prefix(field).and_then(|r| r.strip_prefix('=')) else {
            continue;
        };
        let mut value = first.to_string();
        while let Some(next) = words.peek() {
            if starts_field(next) {
                break;
            }
            value.push(' ');
            value.push_str(next);
            words.next();
        }
        return Some(if value == "(null)" {
            String::new()
        } else {
            value
        });
    }
    None
}

pub(crate) const CONF_HEADER: &str = "# Written by local-cluster:";

fn is_cluster_dir(d: &Path) -> bool {
    fs::read_to_string(d.join(layout::SLURM_CONF))
        .map(|t| t.starts_with(CONF_HEADER))
        .unwrap_or(false)
}

/// Refuses a cluster directory that is not a directory root owns and only root may write
/// (a symlink, or another user's): this runs as root, reads pid files from it (and kills
/// those processes), points squeue at its slurm.conf and clears it, so a directory another
/// user made at the path (in /tmp, anyone can, before the first run) must not be used.
fn root_only(d: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = io(&format!("stat {}", d.display()), d.symlink_metadata())?;
    let run = d.join("run").symlink_metadata().ok();
    let bad = |m: &fs::Metadata| !m.is_dir() || m.uid() != 0 || m.mode() & 0o022 != 0;
    if bad(&m) || run.as_ref().is_some_and(bad) {
        return err(format!(
            "{} is not a directory that root owns and only root may write (a symlink, or made by another user?): left as it is; remove it or choose another --dir",
            d.display()
        ));
    }
    Ok(())
}

fn is_empty_dir(d: &Path) -> bool {
    fs::read_dir(d)
        .map(|mut e| e.next().is_none())
        .unwrap_or(false)
}

fn installed_name(artifact: &Path) -> Result<String> {
    let Some(file) = artifact.file_name().and_then(|f| f.to_str()) else {
        return err(format!("bad plugin path {}", artifact.display()));
    };
    // cargo names a cdylib lib<name>.so; Slurm wants <type>_<name>.so without the prefix.
    Ok(file.strip_prefix("lib").unwrap_or(file).to_string())
}

fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        if let Err(e) = self.stop_inner() {
            eprintln!("local-cluster: stopping {}: {e}", self.dir.display());
        }
        if std::env::var_os("LOCAL_CLUSTER_KEEP").is_some() {
            if let Some(t) = self._tempdir.take() {
                let kept = t.keep();
                eprintln!("local-cluster: kept {}", kept.display());
            }
        }
    }
}

/// An exclusive `flock` on a file, held until dropped.
pub struct FileLock(#[allow(dead_code)] nix::fcntl::Flock<fs::File>);

/// Takes an exclusive lock on `path` (created if missing), waiting for it: for tests that
/// share state of the whole machine (SysV IPC, /dev/shm) with other test processes.
pub fn lock_exclusive(path: &Path) -> Result<FileLock> {
    let file = io(
        &format!("create {}", path.display()),
        fs::File::create(path),
    )?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map(FileLock)
        .map_err(|(_, e)| Error(format!("flock {}: {e}", path.display())))
}

/// The pid of cloud node `node`'s slurmd, if its pid file names a running slurmd of the
/// cluster in `dir` (a stale pid file may name another process by now).
fn cloud_slurmd(dir: &Path, node: &str) -> Option<u32> {
    let text = fs::read_to_string(dir.join(layout::cloud_slurmd_pid_file(node))).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "slurmd" && procs::running(pid) && procs::belongs_to(pid, dir)).then_some(pid)
}

/// Every running cloud slurmd of the cluster in `dir` as (node, pid), from the pid files
/// `run/slurmd-cloud-*.pid` (`local-cluster status` lists them).
pub fn cloud_slurmds(dir: &Path) -> Vec<(String, u32)> {
    let Ok(entries) = fs::read_dir(dir.join("run")) else {
        return Vec::new();
    };
    let mut found: Vec<(String, u32)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let node = name.strip_prefix("slurmd-")?.strip_suffix(".pid")?;
            let node = node.starts_with("cloud-").then_some(node)?;
            Some((node.to_string(), cloud_slurmd(dir, node)?))
        })
        .collect();
    found.sort();
    found
}

/// Stops the cluster whose directory is `dir`: cancels its jobs, stops its daemons (by the
/// pids it recorded, checked to still be that cluster's), then kills any process still
/// holding a file under `dir` (slurmstepd and job processes). Never touches anything else.
pub fn stop_dir(dir: &Path) -> Result<()> {
    stop_daemons(dir)?;
    // Only once nothing of the cluster runs: a process left holding a port keeps it.
    ports::release(dir);
    Ok(())
}

fn stop_daemons(dir: &Path) -> Result<()> {
    if dir.symlink_metadata().is_err() {
        return Ok(());
    }
    root_only(dir)?;
    let pids_path = dir.join(layout::PIDS);
    let text = match fs::read_to_string(&pids_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return err(format!("read {}: {e}", pids_path.display())),
    };
    let daemons: Vec<Daemon> = text
        .lines()
        .filter_map(|l| {
            let (pid, name) = l.split_once(' ')?;
            Some(Daemon {
                pid: pid.parse().ok()?,
                name: name.to_string(),
            })
        })
        .collect();
    let conf = dir.join(layout::SLURM_CONF);
    let ctld_up = daemons
        .iter()
        .any(|d| d.name == "slurmctld" && procs::alive(d.pid) && procs::belongs_to(d.pid, dir));
    if ctld_up {
        // Cancel jobs first so slurmstepds end their tasks themselves.
        let jobs = Command::new("squeue")
            .env("SLURM_CONF", &conf)
            .args(["-h", "-o", "%A"])
            .output();
        if let Ok(out) = jobs {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("scancel")
                    .env("SLURM_CONF", &conf)
                    .args(&ids)
                    .output();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && procs::any_stepd(dir) {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
    // Cloud slurmds were started by the ResumeProgram, not by us: found by pid file.
    for (_, pid) in cloud_slurmds(dir) {
        procs::terminate(pid, Duration::from_secs(15), procs::running);
    }
    // Reverse start order: slurmd, slurmctld, slurmdbd, mariadb, munged.
    for d in daemons.iter().rev() {
        if procs::alive(d.pid) && procs::belongs_to(d.pid, dir) {
            procs::terminate(d.pid, Duration::from_secs(15), procs::alive);
        }
    }
    for pid in procs::holders_of(dir) {
        procs::terminate(pid, Duration::from_secs(5), procs::running);
    }
    let leftover: Vec<u32> = procs::holders_of(dir);
    let _ = fs::remove_file(&pids_path);
    if leftover.is_empty() {
        Ok(())
    } else {
        err(format!(
            "processes still hold files in {}: {leftover:?}",
            dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scontrol_fields() {
        let text = "JobId=12 JobName=x UserId=u(1000) JobState=COMPLETED Reason=None Comment=(null) NodeList=n[1-2] \
                    AdminComment=two words here TRES=cpu=1,gres/gpu=2\n";
        assert_eq!(
            scontrol_field(text, "JobState").as_deref(),
            Some("COMPLETED")
        );
        assert_eq!(scontrol_field(text, "NodeList").as_deref(), Some("n[1-2]"));
        assert_eq!(scontrol_field(text, "Comment").as_deref(), Some(""));
        assert_eq!(scontrol_field(text, "Missing"), None);
        assert_eq!(
            scontrol_field(text, "AdminComment").as_deref(),
            Some("two words here")
        );
        assert_eq!(
            scontrol_field(text, "TRES").as_deref(),
            Some("cpu=1,gres/gpu=2")
        );
        // JobName= must not match Name=.
        assert_eq!(scontrol_field(text, "Name"), None);
    }

    #[test]
    fn plugin_file_names() {
        assert_eq!(
            installed_name(Path::new("/t/libjob_submit_mlpolicy.so")).unwrap(),
            "job_submit_mlpolicy.so"
        );
        assert_eq!(
            installed_name(Path::new("/t/spank_mlenv.so")).unwrap(),
            "spank_mlenv.so"
        );
    }

    #[test]
    fn refuses_to_clear_a_directory_it_did_not_make() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("precious"), "x").unwrap();
        let e = Cluster::start(Options {
            dir: Some(d.path().to_path_buf()),
            ..Options::default()
        })
        .err()
        .unwrap();
        assert!(
            e.0.contains("is not a local-cluster directory") || e.0.contains("must run as root"),
            "{e}"
        );
        assert!(d.path().join("precious").exists());
    }

    #[test]
    fn refuses_a_directory_another_user_made() {
        use std::os::unix::fs::chown;
        if effective_uid() != 0 {
            return; // only root can make a directory another user's, and start needs root
        }
        let t = tempfile::tempdir().unwrap();
        // As another user would leave it in /tmp: a cluster's slurm.conf header and a pid
        // file naming a process of ours (root would kill it).
        let d = t.path().join("demo");
        fs::create_dir_all(d.join("run")).unwrap();
        fs::write(d.join(layout::SLURM_CONF), format!("{CONF_HEADER} x\n")).unwrap();
        fs::write(
            d.join(layout::PIDS),
            format!("{} slurmctld\n", std::process::id()),
        )
        .unwrap();
        for p in [d.clone(), d.join("run")] {
            chown(&p, Some(65534), Some(65534)).unwrap();
        }
        let e = stop_dir(&d).unwrap_err();
        assert!(e.0.contains("is not a directory that root owns"), "{e}");
        let e = Cluster::start(Options {
            dir: Some(d.clone()),
            ..Options::default()
        })
        .err()
        .unwrap();
        assert!(e.0.contains("is not a directory that root owns"), "{e}");
        assert!(d.join(layout::PIDS).exists());
        // A symlink to root's own directory is refused too.
        let l = t.path().join("link");
        std::os::unix::fs::symlink(t.path(), &l).unwrap();
        assert!(stop_dir(&l).is_err());
    }
}
