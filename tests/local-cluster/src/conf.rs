//! The configuration files of a local cluster, rendered from plain values (pure; unit-tested).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Everything the files depend on.
#[derive(Debug, Clone)]
pub struct ConfInputs {
    pub cluster_name: String,
    pub hostname: String,
    pub dir: PathBuf,
    pub munge_socket: PathBuf,
    pub plugin_dir: PathBuf,
    /// Slurm's own plugin directory (Debian: /usr/lib/x86_64-linux-gnu/slurm-wlm).
    pub system_plugin_dir: Option<PathBuf>,
    pub slurmctld_port: u16,
    pub slurmd_ports: Vec<u16>,
    pub cpus_per_node: u32,
    pub memory_mb: u32,
    pub gpus_per_node: u32,
    pub job_submit_plugins: Vec<String>,
    pub prolog: Option<PathBuf>,
    pub epilog: Option<PathBuf>,
    pub health_check: Option<(PathBuf, u32)>,
    pub accounting: Option<AccountingInputs>,
    pub extra_lines: Vec<String>,
    /// `State=CLOUD` nodes `cloud-1`..`cloud-N` in a `cloud` partition, powered up and
    /// down by Slurm's power saving; `None`: no cloud nodes (nothing below is written).
    pub cloud: Option<CloudInputs>,
    /// `TRESBillingWeights` per partition (`debug`, `cloud`): (partition, weights).
    pub billing_weights: Vec<(String, String)>,
}

/// The cloud nodes and their power-saving programs and timers.
#[derive(Debug, Clone)]
pub struct CloudInputs {
    /// One slurmd port per cloud node.
    pub ports: Vec<u16>,
    pub resume_program: PathBuf,
    pub suspend_program: PathBuf,
    /// Seconds a cloud node stays idle before it is powered down (set on the `cloud`
    /// partition only, so on-premises nodes are never power-saved).
    pub suspend_time: u32,
    /// Seconds from the SuspendProgram to the node counting as powered down.
    pub suspend_timeout: u32,
    /// Seconds a resumed node has to register before it is set DOWN.
    pub resume_timeout: u32,
}

#[derive(Debug, Clone)]
pub struct AccountingInputs {
    pub dbd_port: u16,
    pub db_port: u16,
    pub db_user: String,
    pub db_password: String,
    /// Lines appended to slurmdbd.conf (e.g. an example's Purge* settings).
    pub extra_lines: Vec<String>,
}

impl ConfInputs {
    pub fn node_name(i: usize) -> String {
        format!("n{}", i + 1)
    }

    pub fn node_list(&self) -> String {
        match self.slurmd_ports.len() {
            0 => String::new(),
            1 => "n1".to_string(),
            n => format!("n[1-{n}]"),
        }
    }

    /// The `i`th cloud node (0-based): `cloud-1`, `cloud-2`, ...
    pub fn cloud_node_name(i: usize) -> String {
        format!("cloud-{}", i + 1)
    }

    /// The cloud nodes as a Slurm hostlist (`cloud-[1-2]`); empty without cloud nodes.
    pub fn cloud_node_list(&self) -> String {
        match self.cloud.as_ref().map_or(0, |c| c.ports.len()) {
            0 => String::new(),
            1 => "cloud-1".to_string(),
            n => format!("cloud-[1-{n}]"),
        }
    }

    /// Every node name, on-premises first: what gres.conf and the device files cover.
    pub fn all_node_names(&self) -> Vec<String> {
        let cloud = self.cloud.as_ref().map_or(0, |c| c.ports.len());
        (0..self.slurmd_ports.len())
            .map(Self::node_name)
            .chain((0..cloud).map(Self::cloud_node_name))
            .collect()
    }

    /// ` TRESBillingWeights="..."` for `partition`, or nothing.
    fn billing(&self, partition: &str) -> String {
        self.billing_weights
            .iter()
            .find(|(p, _)| p == partition)
            .map(|(_, w)| format!(" TRESBillingWeights=\"{w}\""))
            .unwrap_or_default()
    }

    /// Where node `name`'s placeholder GPU device files live.
    pub fn gpu_dev_dir(&self, node: &str) -> PathBuf {
        self.dir.join("dev").join(node)
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// `slurm.conf`.
pub fn slurm_conf(c: &ConfInputs) -> String {
    let d = &c.dir;
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(
        "# Written by local-cluster: a real Slurm cluster on one machine, for tests and the demo."
            .into(),
    );
    line(format!("ClusterName={}", c.cluster_name));
    line(format!("SlurmctldHost={}(127.0.0.1)", c.hostname));
    line(format!("SlurmctldPort={}", c.slurmctld_port));
    line("SlurmUser=root".into());
    line("SlurmdUser=root".into());
    line("AuthType=auth/munge".into());
    line("CredType=cred/munge".into());
    // Our own munged: never the system's.
    line(format!("AuthInfo=socket={}", p(&c.munge_socket)));
    line(format!("StateSaveLocation={}", p(&d.join("state"))));
    line(format!("SlurmdSpoolDir={}/spool/%n", p(d)));
    line(format!(
        "SlurmctldPidFile={}",
        p(&d.join("run/slurmctld.pid"))
    ));
    line(format!("SlurmdPidFile={}/run/slurmd-%n.pid", p(d)));
    line(format!(
        "SlurmctldLogFile={}",
        p(&d.join("log/slurmctld.log"))
    ));
    line(format!("SlurmdLogFile={}/log/slurmd-%n.log", p(d)));
    // The cluster's own copies first: with the packages installed, Slurm's PluginDir holds
    // a job_submit_mlpolicy.so too, and a cluster must load the plugin it was given.
    let plugin_dir = match &c.system_plugin_dir {
        Some(sys) => format!("{}:{}", p(&c.plugin_dir), p(sys)),
        None => p(&c.plugin_dir),
    };
    line(format!("PluginDir={plugin_dir}"));
    line(format!("PlugStackConfig={}", p(&d.join("plugstack.conf"))));
    line("ProctrackType=proctrack/linuxproc".into());
    line("TaskPlugin=task/none".into());
    line("SelectType=select/cons_tres".into());
    line("SelectTypeParameters=CR_Core".into());
    line("GresTypes=gpu".into());
    // Every node is this machine: let the configured CPUs/memory stand.
    line("SlurmdParameters=config_overrides".into());
    line("MpiDefault=none".into());
    line("MailProg=/bin/true".into());
    line("ReturnToService=2".into());
    line("SchedulerType=sched/backfill".into());
    line("SlurmctldDebug=info".into());
    line("SlurmdDebug=info".into());
    line("InactiveLimit=0".into());
    line("KillWait=5".into());
    line("MinJobAge=600".into());
    line("SlurmctldTimeout=30".into());
    line("SlurmdTimeout=60".into());
    line("JobCompType=jobcomp/none".into());
    if !c.job_submit_plugins.is_empty() {
        line(format!(
            "JobSubmitPlugins={}",
            c.job_submit_plugins.join(",")
        ));
    }
    if let Some(prolog) = &c.prolog {
        line(format!("Prolog={}", p(prolog)));
    }
    if let Some(epilog) = &c.epilog {
        line(format!("Epilog={}", p(epilog)));
    }
    if let Some((program, interval)) = &c.health_check {
        line(format!("HealthCheckProgram={}", p(program)));
        line(format!("HealthCheckInterval={interval}"));
        line("HealthCheckNodeState=ANY".into());
    }
    match &c.accounting {
        Some(a) => {
            line("AccountingStorageType=accounting_storage/slurmdbd".into());
            line("AccountingStorageHost=127.0.0.1".into());
            line(format!("AccountingStoragePort={}", a.dbd_port));
            // Connections to slurmdbd take their munge socket from here, not AuthInfo.
            line(format!("AccountingStoragePass={}", p(&c.munge_socket)));
            line("JobAcctGatherType=jobacct_gather/linux".into());
            line("AccountingStorageTRES=gres/gpu".into());
        }
        None => line("AccountingStorageType=accounting_storage/none".into()),
    }
    for extra in &c.extra_lines {
        line(extra.clone());
    }
    let gres = if c.gpus_per_node > 0 {
        format!(" Gres=gpu:{}", c.gpus_per_node)
    } else {
        String::new()
    };
    if let Some(cloud) = &c.cloud {
        for l in power_save_lines(cloud) {
            line(l);
        }
    }
    let node_line = |name: String, port: u16, state: &str| {
        format!(
            "NodeName={name} NodeHostname={} NodeAddr=127.0.0.1 Port={port} CPUs={cpus} Boards=1 SocketsPerBoard=1 \
             CoresPerSocket={cpus} ThreadsPerCore=1 RealMemory={mem}{gres} State={state}",
            c.hostname,
            cpus = c.cpus_per_node,
            mem = c.memory_mb,
        )
    };
    for (i, port) in c.slurmd_ports.iter().enumerate() {
        line(node_line(ConfInputs::node_name(i), *port, "UNKNOWN"));
    }
    if let Some(cloud) = &c.cloud {
        for (i, port) in cloud.ports.iter().enumerate() {
            line(node_line(ConfInputs::cloud_node_name(i), *port, "CLOUD"));
        }
    }
    line(format!(
        "PartitionName=debug Nodes={} Default=YES MaxTime=INFINITE State=UP{}",
        c.node_list(),
        c.billing("debug")
    ));
    if let Some(cloud) = &c.cloud {
        // The power-saving timers are the partition's: the on-premises nodes keep the
        // cluster's SuspendTime (INFINITE, never power-saved).
        line(format!(
            "PartitionName=cloud Nodes={} MaxTime=INFINITE State=UP SuspendTime={} SuspendTimeout={} ResumeTimeout={}{}",
            c.cloud_node_list(),
            cloud.suspend_time,
            cloud.suspend_timeout,
            cloud.resume_timeout,
            c.billing("cloud")
        ));
    }
    s
}

/// The cluster-wide power-saving lines for cloud nodes (checked in slurm.conf.5 and
/// src/slurmctld/power_save.c of 22.05, 24.11 and 26.05).
fn power_save_lines(cloud: &CloudInputs) -> Vec<String> {
    vec![
        // 22.05 hides powered-down cloud nodes from sinfo, even from root, without it;
        // from 23.02 they are shown and the word is ignored (no error).
        "PrivateData=cloud".into(),
        format!("ResumeProgram={}", p(&cloud.resume_program)),
        format!("SuspendProgram={}", p(&cloud.suspend_program)),
        // Nodes per minute; 0 is no limit.
        "ResumeRate=0".into(),
        "SuspendRate=0".into(),
        // The power-save thread looks every second instead of every 10 (a test waits on
        // it); idle_on_node_suspend lets a node that failed be resumed again later.
        // No cloud_dns: cloud-N does not resolve, the NodeAddr lines and the slurmd's
        // registration give the address.
        "SlurmctldParameters=idle_on_node_suspend,power_save_interval=1,power_save_min_interval=0"
            .into(),
    ]
}

/// The cloud nodes' power-saving programs: the local stand-in for a cloud plugin's
/// resume/suspend programs (AWS's resume.py launches an EC2 instance per node of the
/// hostlist; here each node is a `slurmd -N <node>` process on this machine).
#[derive(Debug, Clone)]
pub struct PowerSaveScripts {
    pub dir: PathBuf,
    pub slurmd: PathBuf,
    pub scontrol: PathBuf,
}

impl PowerSaveScripts {
    fn header(&self, what: &str) -> String {
        format!(
            "#!/bin/bash\n\
             # Written by local-cluster: the {what} of this cluster's State=CLOUD nodes.\n\
             # $1 is a Slurm hostlist (cloud-[1-2]); slurmctld gives only SLURM_CONF and no\n\
             # output: paths are absolute, everything is logged.\n\
             set -u\n\
             PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
             exec </dev/null >>{log} 2>&1\n\
             echo \"$(date +%FT%T) {what} $1\"\n\
             nodes=$({scontrol} show hostnames \"$1\") || exit 1\n",
            log = p(&self.dir.join(crate::layout::POWER_SAVE_LOG)),
            scontrol = p(&self.scontrol),
        )
    }

    /// Starts one slurmd per node. Without `-D` slurmd daemonizes into its own session,
    /// out of the program's process group (which 24.11+ kills when the program exits),
    /// and writes its pid file (SlurmdPidFile), by which the suspend program and
    /// `stop` find it. `-b` reports the node booted when slurmd started: slurmctld ignores
    /// a powering-up node's registration while its boot time is older than the resume
    /// request (waiting_for_node_boot, node_mgr.c), and this machine booted long ago.
    /// `env --default-signal`: the program inherits slurmctld's blocked signals (22.05
    /// forks it from a thread that blocks them), and a slurmd with SIGTERM blocked would
    /// not stop when suspended.
    pub fn resume(&self) -> String {
        format!(
            "{}# An instance takes a while to boot: slurmctld shows the node POWERING_UP (#)\n\
             # meanwhile, long enough to be seen.\n\
             sleep 2\n\
             for node in $nodes; do\n\
             \x20 env --default-signal {slurmd} -b -N \"$node\" -f {conf} >>{dir}/log/slurmd-\"$node\".out 2>&1 \\\n\
             \x20   || echo \"slurmd -N $node failed: $?\"\n\
             done\n",
            self.header("ResumeProgram"),
            slurmd = p(&self.slurmd),
            conf = p(&self.dir.join(crate::layout::SLURM_CONF)),
            dir = p(&self.dir),
        )
    }

    /// Stops each node's slurmd (only a slurmd of this cluster: its pid file may be
    /// stale) and waits until it is gone, as a cloud plugin terminates the instance.
    pub fn suspend(&self) -> String {
        format!(
            "{}# Running and not a zombie (a daemon's parent may be slow to reap it).\n\
             alive() {{ [ -e /proc/\"$1\" ] && ! grep -q '^State:[[:space:]]*Z' /proc/\"$1\"/status 2>/dev/null; }}\n\
             for node in $nodes; do\n\
             \x20 pid=$(cat {dir}/run/slurmd-\"$node\".pid 2>/dev/null) || continue\n\
             \x20 [ \"$(cat /proc/\"$pid\"/comm 2>/dev/null)\" = slurmd ] || continue\n\
             \x20 tr '\\0' ' ' </proc/\"$pid\"/cmdline | grep -qF -- {conf} || continue\n\
             \x20 kill -TERM \"$pid\"\n\
             \x20 for _ in $(seq 100); do alive \"$pid\" || break; sleep 0.1; done\n\
             \x20 alive \"$pid\" && kill -KILL \"$pid\"\n\
             \x20 echo \"$(date +%FT%T) stopped slurmd -N $node (pid $pid)\"\n\
             done\n\
             exit 0\n",
            self.header("SuspendProgram"),
            dir = p(&self.dir),
            conf = p(&self.dir.join(crate::layout::SLURM_CONF)),
        )
    }
}

/// `gres.conf`: placeholder device files per node, so `--gpus` schedules for real and
/// `CUDA_VISIBLE_DEVICES` is set, without a GPU.
pub fn gres_conf(c: &ConfInputs) -> String {
    let mut s = String::from("AutoDetect=off\n");
    if c.gpus_per_node == 0 {
        return s;
    }
    for node in c.all_node_names() {
        let _ = writeln!(
            s,
            "NodeName={node} Name=gpu File={}/nvidia[0-{}]",
            p(&c.gpu_dev_dir(&node)),
            c.gpus_per_node - 1
        );
    }
    s
}

/// `slurmdbd.conf` (slurmdbd refuses it unless it is mode 0600 and owned by SlurmUser).
pub fn slurmdbd_conf(c: &ConfInputs, a: &AccountingInputs) -> String {
    let d = &c.dir;
    format!(
        "AuthType=auth/munge\n\
         AuthInfo=socket={sock}\n\
         DbdHost=localhost\n\
         DbdAddr=127.0.0.1\n\
         DbdPort={dbd}\n\
         SlurmUser=root\n\
         DebugLevel=info\n\
         LogFile={log}\n\
         PidFile={pid}\n\
         StorageType=accounting_storage/mysql\n\
         StorageHost=127.0.0.1\n\
         StoragePort={db}\n\
         StorageUser={user}\n\
         StoragePass={pass}\n\
         StorageLoc=slurm_acct_db\n{extra}",
        sock = p(&c.munge_socket),
        dbd = a.dbd_port,
        log = p(&d.join("log/slurmdbd.log")),
        pid = p(&d.join("run/slurmdbd.pid")),
        db = a.db_port,
        user = a.db_user,
        pass = a.db_password,
        extra = a
            .extra_lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
}

/// One `plugstack.conf` line.
#[derive(Debug, Clone)]
pub struct PlugstackEntry {
    pub required: bool,
    pub path: PathBuf,
    pub args: Vec<String>,
}

pub fn plugstack_conf(entries: &[PlugstackEntry]) -> String {
    let mut s = String::new();
    for e in entries {
        let _ = write!(
            s,
            "{} {}",
            if e.required { "required" } else { "optional" },
            p(&e.path)
        );
        for a in &e.args {
            let _ = write!(s, " {a}");
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> ConfInputs {
        ConfInputs {
            cluster_name: "t1".into(),
            hostname: "vm".into(),
            dir: "/tmp/lc".into(),
            munge_socket: "/tmp/lc/munge/munge.socket".into(),
            plugin_dir: "/tmp/lc/plugins".into(),
            system_plugin_dir: Some("/usr/lib/x86_64-linux-gnu/slurm-wlm".into()),
            slurmctld_port: 7000,
            slurmd_ports: vec![7001, 7002, 7003],
            cpus_per_node: 8,
            memory_mb: 8000,
            gpus_per_node: 8,
            job_submit_plugins: vec!["selftest".into()],
            prolog: None,
            epilog: Some("/usr/local/sbin/ml-epilog".into()),
            health_check: None,
            accounting: None,
            extra_lines: vec!["DebugFlags=Gres".into()],
            cloud: None,
            billing_weights: Vec::new(),
        }
    }

    #[test]
    fn slurm_conf_has_nodes_ports_and_plugins() {
        let s = slurm_conf(&inputs());
        assert!(s.contains("SlurmctldHost=vm(127.0.0.1)\n"), "{s}");
        assert!(s.contains("SlurmctldPort=7000\n"));
        assert!(s.contains("AuthInfo=socket=/tmp/lc/munge/munge.socket\n"));
        assert!(s.contains("PluginDir=/tmp/lc/plugins:/usr/lib/x86_64-linux-gnu/slurm-wlm\n"));
        assert!(s.contains("JobSubmitPlugins=selftest\n"));
        assert!(s.contains("Epilog=/usr/local/sbin/ml-epilog\n"));
        assert!(s.contains("NodeName=n2 NodeHostname=vm NodeAddr=127.0.0.1 Port=7002 CPUs=8 "));
        assert!(s.contains(" Gres=gpu:8 State=UNKNOWN\n"));
        assert!(s.contains("PartitionName=debug Nodes=n[1-3] Default=YES"));
        assert!(s.contains("AccountingStorageType=accounting_storage/none\n"));
        assert!(
            s.ends_with("PartitionName=debug Nodes=n[1-3] Default=YES MaxTime=INFINITE State=UP\n")
        );
        assert!(s.contains("DebugFlags=Gres\n"));
    }

    #[test]
    fn accounting_lines_and_dbd_conf() {
        let mut c = inputs();
        let a = AccountingInputs {
            dbd_port: 7100,
            db_port: 7200,
            db_user: "slurm".into(),
            db_password: "pw".into(),
            extra_lines: vec!["PurgeJobAfter=24months".into()],
        };
        c.accounting = Some(a.clone());
        let s = slurm_conf(&c);
        assert!(s.contains("AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=127.0.0.1\nAccountingStoragePort=7100\nAccountingStoragePass=/tmp/lc/munge/munge.socket\n"));
        let d = slurmdbd_conf(&c, &a);
        assert!(
            d.contains("DbdPort=7100\n")
                && d.contains("StoragePort=7200\n")
                && d.contains("StoragePass=pw\n")
        );
        assert!(d.ends_with("StorageLoc=slurm_acct_db\nPurgeJobAfter=24months\n"));
    }

    #[test]
    fn gres_conf_one_line_per_node() {
        let g = gres_conf(&inputs());
        assert_eq!(
            g,
            "AutoDetect=off\n\
             NodeName=n1 Name=gpu File=/tmp/lc/dev/n1/nvidia[0-7]\n\
             NodeName=n2 Name=gpu File=/tmp/lc/dev/n2/nvidia[0-7]\n\
             NodeName=n3 Name=gpu File=/tmp/lc/dev/n3/nvidia[0-7]\n"
        );
        let mut c = inputs();
        c.gpus_per_node = 0;
        assert_eq!(gres_conf(&c), "AutoDetect=off\n");
        assert!(!slurm_conf(&c).contains("Gres=gpu"));
    }

    fn cloud_inputs() -> ConfInputs {
        let mut c = inputs();
        c.cloud = Some(CloudInputs {
            ports: vec![7011, 7012],
            resume_program: "/tmp/lc/bin/cloud-resume".into(),
            suspend_program: "/tmp/lc/bin/cloud-suspend".into(),
            suspend_time: 5,
            suspend_timeout: 6,
            resume_timeout: 60,
        });
        c.billing_weights = vec![
            ("debug".into(), "CPU=1.0,GRES/gpu=100".into()),
            ("cloud".into(), "CPU=4.0,GRES/gpu=400".into()),
        ];
        c
    }

    #[test]
    fn cloud_nodes_partition_and_power_saving() {
        let c = cloud_inputs();
        let s = slurm_conf(&c);
        assert!(s.contains("NodeName=cloud-2 NodeHostname=vm NodeAddr=127.0.0.1 Port=7012 CPUs=8 "));
        assert!(s.contains(" Gres=gpu:8 State=CLOUD\n"), "{s}");
        assert!(s.contains(
            "PartitionName=debug Nodes=n[1-3] Default=YES MaxTime=INFINITE State=UP TRESBillingWeights=\"CPU=1.0,GRES/gpu=100\"\n"
        ));
        assert!(s.ends_with(
            "PartitionName=cloud Nodes=cloud-[1-2] MaxTime=INFINITE State=UP SuspendTime=5 SuspendTimeout=6 ResumeTimeout=60 TRESBillingWeights=\"CPU=4.0,GRES/gpu=400\"\n"
        ), "{s}");
        assert!(s.contains(
            "ResumeProgram=/tmp/lc/bin/cloud-resume\nSuspendProgram=/tmp/lc/bin/cloud-suspend\n"
        ));
        // Never a cluster-wide SuspendTime: on-premises nodes are not power-saved.
        assert!(!s.contains("\nSuspendTime="));
        assert_eq!(c.all_node_names(), ["n1", "n2", "n3", "cloud-1", "cloud-2"]);
        assert!(gres_conf(&c)
            .ends_with("NodeName=cloud-2 Name=gpu File=/tmp/lc/dev/cloud-2/nvidia[0-7]\n"));
    }

    #[test]
    fn no_cloud_lines_by_default() {
        let s = slurm_conf(&inputs());
        for word in [
            "CLOUD",
            "cloud",
            "ResumeProgram",
            "TRESBillingWeights",
            "SlurmctldParameters",
        ] {
            assert!(!s.contains(word), "{word} in {s}");
        }
    }

    #[test]
    fn power_save_programs() {
        let sc = PowerSaveScripts {
            dir: "/tmp/lc".into(),
            slurmd: "/usr/sbin/slurmd".into(),
            scontrol: "/usr/bin/scontrol".into(),
        };
        let r = sc.resume();
        assert!(r.starts_with("#!/bin/bash\n"));
        assert!(
            r.contains("nodes=$(/usr/bin/scontrol show hostnames \"$1\") || exit 1\n"),
            "{r}"
        );
        assert!(r.contains("  env --default-signal /usr/sbin/slurmd -b -N \"$node\" -f /tmp/lc/slurm.conf >>/tmp/lc/log/slurmd-\"$node\".out 2>&1"), "{r}");
        let s = sc.suspend();
        assert!(
            s.contains("pid=$(cat /tmp/lc/run/slurmd-\"$node\".pid 2>/dev/null) || continue\n"),
            "{s}"
        );
        assert!(s.contains("  kill -TERM \"$pid\"\n"), "{s}");
    }

    #[test]
    fn node_lists() {
        let mut c = inputs();
        assert_eq!(c.node_list(), "n[1-3]");
        c.slurmd_ports = vec![1];
        assert_eq!(c.node_list(), "n1");
    }

    #[test]
    fn plugstack_lines() {
        let s = plugstack_conf(&[
            PlugstackEntry {
                required: true,
                path: "/p/spank_mlenv.so".into(),
                args: vec!["config=/etc/slurm/mlenv.conf".into()],
            },
            PlugstackEntry {
                required: false,
                path: "/p/x.so".into(),
                args: vec![],
            },
        ]);
        assert_eq!(
            s,
            "required /p/spank_mlenv.so config=/etc/slurm/mlenv.conf\noptional /p/x.so\n"
        );
    }
}
