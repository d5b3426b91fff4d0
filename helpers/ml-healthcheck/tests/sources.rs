//! The sources besides NVML: NVSwitch SXids and "fallen off the bus" in the kernel log,
//! PCIe AER counters, InfiniBand/EFA ports, the NVLink fabric. sysfs is a tree built in a
//! temporary directory with the kernel's file names and contents (an 8x H100 node with
//! eight ConnectX-7 NDR HCAs, a RoCE NIC and the host's own Ethernet); each check on both
//! sides of its threshold; the deltas across two runs through the state file.

use std::fs;
use std::path::{Path, PathBuf};

use ml_healthcheck::config::Config;
use ml_healthcheck::counters::Counters;
use ml_healthcheck::evaluate::{judge, Check, Context, Judgement, Mode, Severity};
use ml_healthcheck::kmsg;
use ml_healthcheck::run::{self, Job};
use ml_healthcheck::snapshot::Snapshot;
use ml_healthcheck::sources::{self, Host, Inputs};
use ml_healthcheck::xid::Xid;
use serde_json::{json, Value};

const HEALTHY: &str = include_str!("fixtures/h100x8-healthy.json");

/// The fixture's GPUs' PCI addresses, and one NDR HCA next to each (as on a DGX H100).
const GPUS: [&str; 8] = [
    "0000:18:00.0",
    "0000:2a:00.0",
    "0000:3a:00.0",
    "0000:5d:00.0",
    "0000:9a:00.0",
    "0000:ab:00.0",
    "0000:ba:00.0",
    "0000:db:00.0",
];
const HCAS: [&str; 8] = [
    "0000:1a:00.0",
    "0000:2c:00.0",
    "0000:3c:00.0",
    "0000:5f:00.0",
    "0000:9c:00.0",
    "0000:ad:00.0",
    "0000:bc:00.0",
    "0000:dd:00.0",
];

fn put(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// `aer_dev_*` files as a 6.x kernel writes them, with these totals.
fn aer(dev: &Path, cor: u64, nonfatal: u64, fatal: u64) {
    put(
        &dev.join("aer_dev_correctable"),
        &format!("RxErr {cor}\nBadTLP 0\nBadDLLP 0\nRollover 0\nTimeout 0\nNonFatalErr 0\nCorrIntErr 0\nHeaderOF 0\nTOTAL_ERR_COR {cor}\n"),
    );
    let uncor = |n: u64, total: &str| {
        format!("Undefined 0\nDLP 0\nSDES 0\nTLP 0\nFCP 0\nCmpltTO {n}\nCmpltAbrt 0\nUnxCmplt 0\nRxOF 0\nMalfTLP 0\nECRC 0\nUnsupReq 0\nACSViol 0\nUncorrIntErr 0\nBlockedTLP 0\nAtomicOpBlocked 0\nTLPBlockedErr 0\nPoisonTLPBlocked 0\nTOTAL_{total} {n}\n")
    };
    put(
        &dev.join("aer_dev_nonfatal"),
        &uncor(nonfatal, "ERR_NONFATAL"),
    );
    put(&dev.join("aer_dev_fatal"), &uncor(fatal, "ERR_FATAL"));
}

fn pci(root: &Path, addr: &str, class: &str, vendor: &str) -> PathBuf {
    let dev = root.join("bus/pci/devices").join(addr);
    put(&dev.join("class"), &format!("{class}\n"));
    put(&dev.join("vendor"), &format!("{vendor}\n"));
    aer(&dev, 0, 0, 0);
    dev
}

/// An RDMA device whose `device` links to its PCI function, as in sysfs.
fn rdma(root: &Path, name: &str, addr: &str, link_layer: &str) -> PathBuf {
    let dir = root.join("class/infiniband").join(name);
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(
        format!("../../../bus/pci/devices/{addr}"),
        dir.join("device"),
    )
    .unwrap();
    port(
        &dir,
        1,
        "4: ACTIVE",
        "5: LinkUp",
        "400 Gb/sec (4X NDR)",
        link_layer,
    );
    dir
}

fn port(dev: &Path, n: u32, state: &str, phys: &str, rate: &str, link_layer: &str) {
    let p = dev.join(format!("ports/{n}"));
    put(&p.join("state"), &format!("{state}\n"));
    put(&p.join("phys_state"), &format!("{phys}\n"));
    put(&p.join("rate"), &format!("{rate}\n"));
    put(&p.join("link_layer"), &format!("{link_layer}\n"));
    for c in ["link_downed", "symbol_error", "port_rcv_errors"] {
        put(&p.join("counters").join(c), "0\n");
    }
}

/// A healthy node's sysfs: 8 GPUs, 8 InfiniBand HCAs, a dual-port RoCE NIC whose second
/// port is unplugged, the host's Intel NIC and an NVMe disk.
fn sysfs() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    for g in GPUS {
        pci(root, g, "0x030200", "0x10de");
    }
    for (i, h) in HCAS.iter().enumerate() {
        pci(root, h, "0x020700", "0x15b3");
        rdma(root, &format!("mlx5_{i}"), h, "InfiniBand");
    }
    pci(root, "0000:0d:00.0", "0x020000", "0x15b3");
    let roce = rdma(root, "mlx5_8", "0000:0d:00.0", "Ethernet");
    port(
        &roce,
        2,
        "1: DOWN",
        "3: Disabled",
        "10 Gb/sec (1X QDR)",
        "Ethernet",
    );
    let intel = pci(root, "0000:04:00.0", "0x020000", "0x8086");
    aer(&intel, 0, 0, 3);
    let nvme = pci(root, "0000:01:00.0", "0x010802", "0x144d");
    aer(&nvme, 0, 0, 1);
    t
}

fn ib_port(root: &Path, dev: &str) -> PathBuf {
    root.join("class/infiniband").join(dev).join("ports/1")
}

fn healthy() -> Snapshot {
    Snapshot::from_json(HEALTHY, "fixture").unwrap()
}

fn cfg() -> Config {
    Config {
        expect_gpus: Some(8),
        ib_devices: Some(8),
        ib_rate_gbps: Some(400),
        ..Config::default()
    }
}

/// The sources' findings on `root` after the NVML ones (none on the healthy snapshot).
fn findings(
    root: &Path,
    snap: &Snapshot,
    events: &[ml_healthcheck::kevents::Event],
    xids: &[Xid],
    baseline: &Counters,
    now: u64,
    cfg: &Config,
) -> Vec<(Severity, String)> {
    let ctx = Context {
        kmsg_read: true,
        ..Context::default()
    };
    let mut j: Judgement = judge(snap, xids, cfg, &ctx);
    let host = Host::scan(root);
    assert!(host.aer.is_ok() && host.ib.is_ok(), "{host:?}");
    let inputs = Inputs {
        kmsg_read: true,
        events,
        xids,
        host: &host,
        baseline,
        now_unix: now,
    };
    sources::judge(&mut j, snap, &inputs, cfg);
    j.findings
        .into_iter()
        .map(|f| (f.severity, f.reason))
        .collect()
}

fn sysfs_findings(root: &Path, cfg: &Config) -> Vec<(Severity, String)> {
    findings(root, &healthy(), &[], &[], &Counters::default(), 0, cfg)
}

use Severity::{Drain, Warn};

/// A health check on a node without jobs (every check of the snapshot made), then the
/// sources on the sysfs tree at `root` judged with `sources_cfg`.
fn judge_whole(snap: &Snapshot, root: &Path, sources_cfg: &Config) -> Judgement {
    let ctx = Context {
        kmsg_read: true,
        node_without_jobs: true,
        ..Context::default()
    };
    let mut j = judge(snap, &[], &cfg(), &ctx);
    let host = Host::scan(root);
    let baseline = Counters::default();
    let inputs = Inputs {
        kmsg_read: true,
        events: &[],
        xids: &[],
        host: &host,
        baseline: &baseline,
        now_unix: 0,
    };
    sources::judge(&mut j, snap, &inputs, sources_cfg);
    j
}

fn d(r: &str) -> (Severity, String) {
    (Drain, r.to_string())
}

fn w(r: &str) -> (Severity, String) {
    (Warn, r.to_string())
}

#[test]
fn a_healthy_tree_has_no_findings() {
    let t = sysfs();
    assert_eq!(sysfs_findings(t.path(), &cfg()), vec![]);
    let host = Host::scan(t.path());
    let aer = host.aer.unwrap();
    assert_eq!(aer.len(), 17, "8 GPUs, 8 HCAs, the RoCE NIC: {aer:?}");
    let ib = host.ib.unwrap();
    assert_eq!(
        ib.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_7"],
        "the RoCE NIC is not an InfiniBand device"
    );
}

#[test]
fn aer_fatal_drains_gpus_and_nics_for_a_reboot() {
    let t = sysfs();
    let root = t.path().join("bus/pci/devices");
    aer(&root.join(GPUS[2]), 0, 0, 1);
    aer(&root.join(HCAS[0]), 0, 0, 2);
    assert_eq!(
        sysfs_findings(t.path(), &cfg()),
        vec![
            d("aer 0000:1a:00.0 fatal=2 [reboot]"),
            d("gpu2 aer fatal=1 [reboot]"),
        ]
    );
    aer(&root.join(GPUS[2]), 0, 0, 0);
    aer(&root.join(HCAS[0]), 0, 0, 0);
    assert_eq!(sysfs_findings(t.path(), &cfg()), vec![]);
}

#[test]
fn aer_nonfatal_and_correctable_growth_warns() {
    let t = sysfs();
    let gpu2 = t.path().join("bus/pci/devices").join(GPUS[2]);
    aer(&gpu2, 500, 1, 0);
    let baseline = Host::scan(t.path()).counters(1_000, &Counters::default());
    let run = |now| findings(t.path(), &healthy(), &[], &[], &baseline, now, &cfg());
    assert_eq!(run(1_300), vec![], "nothing new");
    // Non-fatal: any new one.
    aer(&gpu2, 500, 2, 0);
    assert_eq!(run(1_300), vec![w("gpu2 aer nonfatal+1")]);
    // Correctable: 100 per hour, counted over at least an hour.
    aer(&gpu2, 600, 1, 0);
    assert_eq!(run(1_300), vec![]);
    aer(&gpu2, 601, 1, 0);
    assert_eq!(run(1_300), vec![w("gpu2 aer correctable+101")]);
    assert_eq!(run(1_000 + 2 * 3600), vec![], "two hours allow 200");
    // A first run counts from boot (the counters and the state both start there).
    assert_eq!(
        findings(
            t.path(),
            &healthy(),
            &[],
            &[],
            &Counters::default(),
            0,
            &cfg()
        ),
        vec![w("gpu2 aer nonfatal+1"), w("gpu2 aer correctable+601")]
    );
}

#[test]
fn a_down_or_slow_port_drains_and_a_missing_device_needs_a_reboot() {
    let t = sysfs();
    let p3 = ib_port(t.path(), "mlx5_3");
    put(&p3.join("state"), "1: DOWN\n");
    put(&p3.join("phys_state"), "2: Polling\n");
    assert_eq!(
        sysfs_findings(t.path(), &cfg()),
        vec![d("ib mlx5_3/1 down")]
    );
    // Up logically, but the physical link is training.
    put(&p3.join("state"), "4: ACTIVE\n");
    assert_eq!(
        sysfs_findings(t.path(), &cfg()),
        vec![d("ib mlx5_3/1 polling")]
    );
    fs::remove_file(p3.join("state")).unwrap();
    put(&p3.join("phys_state"), "5: LinkUp\n");
    assert_eq!(
        sysfs_findings(t.path(), &cfg()),
        vec![d("ib mlx5_3/1 unreadable")]
    );
    put(&p3.join("state"), "4: ACTIVE\n");
    put(&p3.join("rate"), "200 Gb/sec (4X HDR)\n");
    assert_eq!(
        sysfs_findings(t.path(), &cfg()),
        vec![d("ib mlx5_3/1 rate 200/400")]
    );
    let hdr = Config {
        ib_rate_gbps: Some(200),
        ..cfg()
    };
    assert_eq!(sysfs_findings(t.path(), &hdr), vec![]);
    put(&p3.join("rate"), "400 Gb/sec (4X NDR)\n");
    fs::remove_dir_all(t.path().join("class/infiniband/mlx5_7")).unwrap();
    assert_eq!(
        sysfs_findings(t.path(), &cfg()),
        vec![d("ib devices 7/8 [reboot]")]
    );
    let seven = Config {
        ib_devices: Some(7),
        ..cfg()
    };
    assert_eq!(sysfs_findings(t.path(), &seven), vec![]);
    // No RDMA driver at all: every device missing.
    fs::remove_dir_all(t.path().join("class/infiniband")).unwrap();
    assert_eq!(
        sysfs_findings(t.path(), &cfg()),
        vec![d("ib devices 0/8 [reboot]")]
    );
    assert_eq!(sysfs_findings(t.path(), &Config::default()), vec![]);
}

#[test]
fn efa_devices_are_counted() {
    let t = tempfile::tempdir().unwrap();
    for (i, addr) in ["0000:10:1c.0", "0000:10:1d.0", "0000:10:1e.0"]
        .iter()
        .enumerate()
    {
        pci(t.path(), addr, "0x020000", "0x1d0f");
        // The EFA driver reports a fixed port (ACTIVE, LinkUp, 4X EDR), no counters.
        let dev = t.path().join(format!("class/infiniband/rdmap{i}s0"));
        fs::create_dir_all(&dev).unwrap();
        std::os::unix::fs::symlink(
            format!("../../../bus/pci/devices/{addr}"),
            dev.join("device"),
        )
        .unwrap();
        let p = dev.join("ports/1");
        put(&p.join("state"), "4: ACTIVE\n");
        put(&p.join("phys_state"), "5: LinkUp\n");
        put(&p.join("rate"), "100 Gb/sec (4X EDR)\n");
        put(&p.join("link_layer"), "Unknown\n");
    }
    let efa = |n| Config {
        efa_devices: Some(n),
        ..Config::default()
    };
    let f = |c: &Config| {
        findings(
            t.path(),
            &Snapshot::default(),
            &[],
            &[],
            &Counters::default(),
            0,
            c,
        )
    };
    assert_eq!(f(&efa(3)), vec![]);
    assert_eq!(f(&efa(4)), vec![d("efa devices 3/4 [reboot]")]);
    // An InfiniBand rate expectation is not applied to EFA's nominal rate.
    let rate = Config {
        ib_rate_gbps: Some(400),
        ..efa(3)
    };
    assert_eq!(f(&rate), vec![]);
}

#[test]
fn port_counters_warn_above_their_threshold() {
    let t = sysfs();
    let c = ib_port(t.path(), "mlx5_5").join("counters");
    put(&c.join("symbol_error"), "7\n");
    let baseline = Host::scan(t.path()).counters(1_000, &Counters::default());
    let run = || findings(t.path(), &healthy(), &[], &[], &baseline, 1_300, &cfg());
    put(&c.join("symbol_error"), "17\n");
    assert_eq!(run(), vec![], "10 more: at the threshold");
    put(&c.join("symbol_error"), "18\n");
    put(&c.join("port_rcv_errors"), "3\n");
    assert_eq!(run(), vec![w("ib mlx5_5/1 symbol_error+11")]);
    put(&c.join("link_downed"), "1\n");
    assert_eq!(
        run(),
        vec![
            w("ib mlx5_5/1 link_downed+1"),
            w("ib mlx5_5/1 symbol_error+11")
        ]
    );
}

/// A run that could read one sysfs source and not the other keeps the other's baseline:
/// the next run does not count everything since boot as new.
#[test]
fn an_unreadable_source_keeps_its_baseline() {
    let t = sysfs();
    let c = ib_port(t.path(), "mlx5_5").join("counters");
    put(&c.join("symbol_error"), "5000\n");
    let gpu2 = t.path().join("bus/pci/devices").join(GPUS[2]);
    aer(&gpu2, 0, 40, 0);
    let first = Host::scan(t.path()).counters(1_000, &Counters::default());
    let read = Host::scan(t.path());
    for (unreadable, host) in [
        (
            "ib",
            Host {
                ib: Err("class/infiniband: Permission denied".into()),
                ..read.clone()
            },
        ),
        (
            "aer",
            Host {
                aer: Err("bus/pci/devices: Permission denied".into()),
                ..read.clone()
            },
        ),
    ] {
        let second = host.counters(1_300, &first);
        assert_eq!(
            findings(t.path(), &healthy(), &[], &[], &second, 1_600, &cfg()),
            vec![],
            "after a run that could not read {unreadable}"
        );
    }
}

fn kmsg_events(text: &str) -> (Vec<ml_healthcheck::kevents::Event>, Vec<Xid>) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("kmsg");
    fs::write(&p, text).unwrap();
    let s = kmsg::scan(&p).unwrap();
    (s.events, s.xids)
}

#[test]
fn sxids_fatal_drain_and_non_fatal_warn() {
    let t = sysfs();
    let (events, _) = kmsg_events(
        "4,2001,7012000000,-;nvidia-nvswitch0: SXid (PCI:0000:c2:00.0): 20034, Fatal, Link 28 LTSSM Fault Up\n\
         4,2002,7012000100,-;nvidia-nvswitch0: SXid (PCI:0000:c2:00.0): 20034, Severity 5 Engine instance 28 Sub-engine instance 00\n\
         4,2003,7013000000,-;nvidia-nvswitch4: SXid (PCI:0000:c6:00.0): 19084, Non-fatal, Link 29 AN1 Heartbeat Timeout Error (First)\n",
    );
    let f = findings(
        t.path(),
        &healthy(),
        &events,
        &[],
        &Counters::default(),
        0,
        &cfg(),
    );
    assert_eq!(
        f,
        vec![d("sxid20034 nvswitch0 [reboot]"), w("sxid19084 nvswitch4")]
    );
    assert!(events[0].needs_reboot() && !events[2].needs_reboot());
}

#[test]
fn fallen_off_the_bus_drains_once_with_or_without_its_xid() {
    let t = sysfs();
    let (events, xids) = kmsg_events(include_str!("fixtures/kmsg-xid79"));
    let critical: Vec<Xid> = xids.into_iter().filter(|x| x.code == 79).collect();
    let f = |events: &[_], xids: &[Xid]| {
        findings(
            t.path(),
            &healthy(),
            events,
            xids,
            &Counters::default(),
            0,
            &cfg(),
        )
    };
    // With its XID 79 line: the XID's item, the NVSwitch's warning, no second item.
    assert_eq!(
        f(&events, &critical),
        vec![d("gpu2 xid79 [reboot]"), w("sxid12028 nvswitch3")]
    );
    // The line alone (older drivers): XID 79's action.
    assert_eq!(f(&events[1..], &[]), vec![d("gpu2 lost [reboot]")]);
    // A GPU NVML no longer lists is named by its address.
    let mut v: Value = serde_json::from_str(HEALTHY).unwrap();
    v["gpus"].as_array_mut().unwrap().remove(2);
    let seven = Snapshot::from_json(&v.to_string(), "x").unwrap();
    let ctx = Context {
        kmsg_read: true,
        ..Context::default()
    };
    let mut j = judge(&seven, &[], &cfg(), &ctx);
    let host = Host::scan(t.path());
    sources::judge(
        &mut j,
        &seven,
        &Inputs {
            kmsg_read: true,
            events: &events[1..],
            xids: &[],
            host: &host,
            baseline: &Counters::default(),
            now_unix: 0,
        },
        &cfg(),
    );
    let reasons: Vec<&str> = j.findings.iter().map(|f| f.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["gpus 7/8 [reboot]", "lost pci 0000:3a:00.0 [reboot]"]
    );
    assert_eq!(
        j.findings[1].evidence,
        "NVRM: GPU 0000:3a:00.0: GPU has fallen off the bus."
    );
}

#[test]
fn the_nvlink_fabric_must_complete() {
    let t = sysfs();
    let with = |state: Value, status: Value| {
        let mut v: Value = serde_json::from_str(HEALTHY).unwrap();
        v["gpus"][0]["fabric_state"] = state;
        v["gpus"][0]["fabric_status"] = status;
        Snapshot::from_json(&v.to_string(), "x").unwrap()
    };
    let f = |s: &Snapshot| findings(t.path(), s, &[], &[], &Counters::default(), 0, &cfg());
    assert_eq!(f(&with(json!("completed"), json!("success"))), vec![]);
    assert_eq!(f(&with(json!("not-supported"), Value::Null)), vec![]);
    assert_eq!(
        f(&with(json!("in-progress"), Value::Null)),
        vec![d("gpu0 fabric in-progress")]
    );
    assert_eq!(
        f(&with(json!("not-started"), Value::Null)),
        vec![d("gpu0 fabric not-started")]
    );
    assert_eq!(
        f(&with(
            json!("completed"),
            json!("NVML_ERROR_INSUFFICIENT_RESOURCES")
        )),
        vec![d("gpu0 fabric failed [reboot]")]
    );
    // A state number NVML added after this release (nvml_fabric::from_raw says
    // `state-N`) is not judged: UNKNOWN, never a drain.
    assert_eq!(
        f(&with(json!("state-9"), Value::Null)),
        vec![(Severity::Unknown, "gpu0 nvlink-fabric unknown".to_string())]
    );
    // ...and it keeps its own item in a drain reason, not the run from being complete
    // (a reason with other items is still lifted when they pass).
    let j = judge_whole(&with(json!("state-9"), Value::Null), t.path(), &cfg());
    assert!(j.judged.complete());
    assert!(!j.judged.covers(Check::Fabric, Some(0)));
    assert!(j.judged.covers(Check::Ecc, Some(0)));
    // Snapshots without the fields (older ones) still parse: the fixture has none.
    assert!(!HEALTHY.contains("fabric"));
}

/// A sysfs that cannot be read leaves AER UNKNOWN: reported, never a drain.
#[test]
fn an_unreadable_sysfs_is_unknown() {
    let t = tempfile::tempdir().unwrap();
    let j = judge_whole(&healthy(), &t.path().join("none"), &Config::default());
    let f: Vec<(Severity, &str, &str)> = j
        .findings
        .iter()
        .map(|f| (f.severity, f.reason.as_str(), f.detail.as_str()))
        .collect();
    let missing = format!(
        "{}/none/bus/pci/devices: No such file or directory (os error 2)",
        t.path().display()
    );
    assert_eq!(
        f,
        vec![(
            Severity::Unknown,
            "pcie-aer unknown",
            format!("pcie-aer: not checked: {missing}").as_str()
        )]
    );
    assert!(!j.judged.covers(Check::PcieAer, None));
    // A reason that cannot be read item by item (`+3 more`) needs every check: it stays.
    assert!(!j.judged.complete());
    let t2 = sysfs();
    let whole = judge_whole(&healthy(), t2.path(), &Config::default());
    assert!(whole.judged.complete());
    assert!(
        j.judged.covers(Check::IbPort, None),
        "no RDMA class: no devices"
    );
}

/// Two health checks through the state file: the second judges what was added since the
/// first; the prolog between them does not move the baseline.
#[test]
fn deltas_across_runs_are_kept_in_the_state_file() {
    let t = sysfs();
    let work = tempfile::tempdir().unwrap();
    let kmsg = work.path().join("kmsg");
    fs::write(&kmsg, "6,1,100,-;Linux version 6.1.0-28-amd64\n").unwrap();
    let snap = work.path().join("snap.json");
    fs::write(&snap, HEALTHY).unwrap();
    let cfg = Config {
        sysfs_root: t.path().to_path_buf(),
        kmsg: kmsg.clone(),
        state_dir: work.path().join("state"),
        ..cfg()
    };
    let run = |mode| {
        let job = Job {
            mode,
            node: "n1".into(),
            expect_gpus: None,
            job_gpus: Some(vec![]),
            job_start: None,
            slurm_conf: None,
            dry_run: false,
            no_slurm: true,
            forget_xids: false,
        };
        let source = ml_healthcheck::gather::SnapshotFile(snap.clone());
        let out = run::run(&job, &cfg, Box::new(source)).unwrap();
        assert_eq!(out.errors, Vec::<String>::new());
        assert_eq!(out.report.warnings, Vec::<String>::new());
        out.report
            .findings
            .iter()
            .map(|f| (f.severity, f.reason.clone()))
            .collect::<Vec<_>>()
    };
    let c = ib_port(t.path(), "mlx5_1").join("counters");
    put(&c.join("port_rcv_errors"), "40\n");
    assert_eq!(
        run(Mode::HealthCheck),
        vec![w("ib mlx5_1/1 port_rcv_errors+40")],
        "first run: since boot"
    );
    assert_eq!(run(Mode::HealthCheck), vec![], "nothing new since");
    put(&c.join("port_rcv_errors"), "55\n");
    assert_eq!(run(Mode::Prolog), vec![w("ib mlx5_1/1 port_rcv_errors+15")]);
    assert_eq!(
        run(Mode::HealthCheck),
        vec![w("ib mlx5_1/1 port_rcv_errors+15")],
        "the prolog did not move the baseline"
    );
    assert_eq!(run(Mode::HealthCheck), vec![]);
    let state: Value =
        serde_json::from_str(&fs::read_to_string(work.path().join("state/n1.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["counters"]["values"]["ib mlx5_1/1 port_rcv_errors"],
        55
    );
    // A fatal SXid stays until the node reboots, though later runs see nothing new.
    fs::write(
        &kmsg,
        "6,1,100,-;Linux version 6.1.0-28-amd64\n\
         4,2,7012000000,-;nvidia-nvswitch0: SXid (PCI:0000:c2:00.0): 20034, Fatal, Link 28 LTSSM Fault Up\n",
    )
    .unwrap();
    assert_eq!(
        run(Mode::HealthCheck),
        vec![d("sxid20034 nvswitch0 [reboot]")]
    );
    assert_eq!(
        run(Mode::HealthCheck),
        vec![d("sxid20034 nvswitch0 [reboot]")]
    );
}

/// A slurmctld that does not answer must not hold the prolog (and the job) past the
/// run's deadline: `scontrol` is given the same deadline as the GPU source, then killed.
#[test]
fn a_scontrol_that_does_not_answer_ends_within_the_deadline() {
    use std::os::unix::fs::PermissionsExt;
    let t = sysfs();
    let work = tempfile::tempdir().unwrap();
    let kmsg = work.path().join("kmsg");
    fs::write(&kmsg, "").unwrap();
    let snap = work.path().join("snap.json");
    fs::write(&snap, HEALTHY).unwrap();
    let stuck = work.path().join("scontrol");
    fs::write(&stuck, "#!/bin/sh\nexec sleep 600\n").unwrap();
    fs::set_permissions(&stuck, fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = Config {
        sysfs_root: t.path().to_path_buf(),
        kmsg,
        state_dir: work.path().join("state"),
        scontrol: Some(stuck),
        job_deadline_ms: 1000,
        ..cfg()
    };
    let job = Job {
        mode: Mode::Prolog,
        node: "n1".into(),
        expect_gpus: None,
        job_gpus: Some(vec![0]),
        job_start: None,
        slurm_conf: None,
        dry_run: false,
        no_slurm: false,
        forget_xids: false,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let source = ml_healthcheck::gather::SnapshotFile(snap);
        let out = run::run(&job, &cfg, Box::new(source)).map(|o| o.errors);
        let _ = tx.send(out);
    });
    let errors = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the prolog waited on scontrol")
        .unwrap();
    assert_eq!(
        errors,
        vec!["cannot read node n1 from Slurm: scontrol show node n1 -o gave no answer within 1000 ms (job_deadline_ms): killed".to_string()]
    );
}
