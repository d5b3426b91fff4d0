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
}

#[derive(Debug, Clone)]
pub struct AccountingInputs {
    pub dbd_port: u16,
    pub db_port: u16,
    pub db_user: String,
    pub db_password: String,
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
    let plugin_dir = match &c.system_plugin_dir {
        Some(sys) => format!("{}:{}", p(sys), p(&c.plugin_dir)),
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
    for (i, port) in c.slurmd_ports.iter().enumerate() {
        line(format!(
            "NodeName={} NodeHostname={} NodeAddr=127.0.0.1 Port={port} CPUs={cpus} Boards=1 SocketsPerBoard=1 \
             CoresPerSocket={cpus} ThreadsPerCore=1 RealMemory={mem}{gres} State=UNKNOWN",
            ConfInputs::node_name(i),
            c.hostname,
            cpus = c.cpus_per_node,
            mem = c.memory_mb,
        ));
    }
    line(format!(
        "PartitionName=debug Nodes={} Default=YES MaxTime=INFINITE State=UP",
        c.node_list()
    ));
    s
}

/// `gres.conf`: placeholder device files per node, so `--gpus` schedules for real and
/// `CUDA_VISIBLE_DEVICES` is set, without a GPU.
pub fn gres_conf(c: &ConfInputs) -> String {
    let mut s = String::from("AutoDetect=off\n");
    if c.gpus_per_node == 0 {
        return s;
    }
    for i in 0..c.slurmd_ports.len() {
        let node = ConfInputs::node_name(i);
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
         StorageLoc=slurm_acct_db\n",
        sock = p(&c.munge_socket),
        dbd = a.dbd_port,
        log = p(&d.join("log/slurmdbd.log")),
        pid = p(&d.join("run/slurmdbd.pid")),
        db = a.db_port,
        user = a.db_user,
        pass = a.db_password,
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
        }
    }

    #[test]
    fn slurm_conf_has_nodes_ports_and_plugins() {
        let s = slurm_conf(&inputs());
        assert!(s.contains("SlurmctldHost=vm(127.0.0.1)\n"), "{s}");
        assert!(s.contains("SlurmctldPort=7000\n"));
        assert!(s.contains("AuthInfo=socket=/tmp/lc/munge/munge.socket\n"));
        assert!(s.contains("PluginDir=/usr/lib/x86_64-linux-gnu/slurm-wlm:/tmp/lc/plugins\n"));
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
