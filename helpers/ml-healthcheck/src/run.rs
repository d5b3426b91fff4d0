//! One run: gather, read the kernel log, judge, act on the node, report.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use crate::config::Config;
use crate::deadline::{self, Gathered};
use crate::evaluate::{self, Check, Context, Finding, Mode};
use crate::fleet::{self, Fleet, Held, Hold};
use crate::gather::GpuSource;
use crate::hysteresis;
use crate::kevents::Event;
use crate::kmsg;
use crate::node::{self, Action, Scontrol};
use crate::reason;
use crate::reboots;
use crate::repair;
use crate::report::{self, Report};
use crate::snapshot::Snapshot;
use crate::sources::{self, Host, Inputs};
use crate::state;
use crate::xid::Xid;

/// Everything a run needs besides the config and the GPU source.
#[derive(Debug, Clone)]
pub struct Job {
    pub mode: Mode,
    pub node: String,
    pub expect_gpus: Option<u32>,
    /// `SLURM_JOB_GPUS` (prolog).
    pub job_gpus: Option<Vec<u32>>,
    /// `SLURM_JOB_START_TIME` (epilog, set by Slurm from 23.11).
    pub job_start: Option<u64>,
    pub slurm_conf: Option<PathBuf>,
    pub dry_run: bool,
    /// Judge and report only: ask Slurm nothing (a node outside Slurm, a benchmark).
    pub no_slurm: bool,
    /// Drop the critical XIDs remembered since boot (the admin reset the GPU without a
    /// reboot); XIDs logged after the last run still count.
    pub forget_xids: bool,
}

/// `SLURM_JOB_GPUS`: `0,1,3`.
pub fn parse_job_gpus(v: &str) -> Result<Vec<u32>, String> {
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| format!("SLURM_JOB_GPUS={v:?} is not a list of GPU numbers"))
        })
        .collect()
}

/// The boot time in seconds since the epoch (`btime` of /proc/stat): kernel log records
/// carry microseconds since boot.
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Which of the log's XIDs this run reads: those after the last run's position, and in the
/// epilog those since the job started (a little slack for the two clocks).
pub fn new_xids(
    all: Vec<Xid>,
    last_seq: Option<u64>,
    job_start: Option<u64>,
    boot: Option<u64>,
) -> Vec<Xid> {
    let fresh = window(last_seq, job_start, boot);
    all.into_iter().filter(|x| fresh(x.seq, x.usec)).collect()
}

/// Whether a kernel log record (sequence number, microseconds since boot) is in this run's
/// window: [`new_xids`]' rule, for every kind of line.
fn window(
    last_seq: Option<u64>,
    job_start: Option<u64>,
    boot: Option<u64>,
) -> impl Fn(u64, u64) -> bool {
    let since_usec = match (job_start, boot) {
        (Some(start), Some(boot)) => Some(start.saturating_sub(boot).saturating_sub(5) * 1_000_000),
        _ => None,
    };
    move |seq, usec| last_seq.is_none_or(|s| s < seq) || since_usec.is_some_and(|s| usec >= s)
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The config key of the run's deadline in `mode`.
fn deadline_key(mode: Mode) -> &'static str {
    match mode {
        Mode::HealthCheck => "deadline_ms",
        _ => "job_deadline_ms",
    }
}

pub struct Outcome {
    pub report: Report,
    /// Errors that made the run fail (scontrol could not be run, the state not written).
    pub errors: Vec<String>,
}

impl Outcome {
    /// slurmd's slots. Prolog: a problem fails it, so the job goes elsewhere (after our
    /// drain, whose reason Slurm keeps). Epilog: exit 0 after draining explicitly, unless
    /// the drain itself failed (then Slurm's "Epilog error" drain is the fallback).
    /// HealthCheckProgram: exit 0; non-zero only for an error slurmd should log.
    pub fn exit_code(&self) -> u8 {
        // A held drain (report only, breaker open) must not fail the prolog either: Slurm
        // would drain the node itself ("Prolog error").
        let drains =
            self.report.drains() > 0 && self.report.held.is_none() && !self.report.report_only;
        let errors = !self.errors.is_empty();
        match self.report.mode {
            Mode::Prolog => u8::from(drains),
            Mode::Epilog => u8::from(drains && errors),
            Mode::HealthCheck => 2 * u8::from(errors),
        }
    }
}

pub fn run(job: &Job, cfg: &Config, source: Box<dyn GpuSource + Send>) -> Result<Outcome, String> {
    let started = Instant::now();
    // sysfs (AER, InfiniBand/EFA) is read meanwhile, under the same deadline: a PCI device
    // that stalls its reads must not hold the run either.
    let sysfs_root = cfg.sysfs_root.clone();
    let host = deadline::spawn("sysfs", move || Host::scan(&sysfs_root));
    // A stuck driver must not hold the run (and a prolog, the job): past the deadline the
    // GPU checks are UNKNOWN and the run goes on.
    let (snap, gpus_unknown) = match deadline::gather_within(source, cfg.deadline(job.mode)) {
        Gathered::Done(r) => (r?, None),
        Gathered::TimedOut(ms) => (
            Snapshot::default(),
            Some(format!(
                "the GPU source (NVML) gave no answer within {ms} ms ({})",
                deadline_key(job.mode)
            )),
        ),
    };
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let report = |findings,
                  action,
                  held,
                  breaker_open,
                  report_only,
                  node_reason,
                  drained_by_healthcheck,
                  warnings| Report {
        node: job.node.clone(),
        mode: job.mode,
        gpus: snap.gpus.len(),
        driver_version: snap.driver_version.clone(),
        nvml_error: snap.nvml_error.clone(),
        action,
        held,
        breaker_open,
        report_only,
        node_reason,
        drained_by_healthcheck,
        findings,
        dry_run: job.dry_run,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
        repair: None,
        checks: Default::default(),
        breaker: None,
    };

    // A node without the driver where no GPUs are expected (a CPU node): nothing to judge,
    // nothing to ask Slurm.
    let plain = Context {
        expect_gpus: job.expect_gpus,
        ..Context::default()
    };
    if snap.nvml_error.is_some() && evaluate::evaluate(&snap, &[], cfg, &plain).is_empty() {
        return Ok(Outcome {
            report: report(
                Vec::new(),
                Action::Nothing,
                None,
                None,
                false,
                None,
                false,
                warnings,
            ),
            errors,
        });
    }

    // The kernel log, and what earlier runs saw since boot.
    let boot = state::boot_id();
    let state_file = state::path(&cfg.state_dir, &job.node);
    let (mut st, warn) = state::load(&state_file, &boot);
    warnings.extend(warn);
    if job.forget_xids {
        st.critical.clear();
        st.events.clear();
    }
    // This run's window of SXid / fallen-off-the-bus lines; those that need a reboot are
    // also remembered until one.
    let mut events: Vec<Event> = Vec::new();
    let mut kmsg_error = None;
    let kmsg_read = match kmsg::scan(&cfg.kmsg) {
        Ok(scan) => {
            let fresh = new_xids(scan.xids, st.last_seq, job.job_start, boot_time());
            let in_window = window(st.last_seq, job.job_start, boot_time());
            events = scan
                .events
                .into_iter()
                .filter(|e| in_window(e.seq, e.usec))
                .collect();
            st.remember_events(&events);
            st.remember(
                fresh
                    .into_iter()
                    .filter(|x| cfg.critical_xids.contains(&x.code)),
            );
            if scan.last_seq.is_some() {
                st.last_seq = scan.last_seq;
            }
            true
        }
        Err(e) => {
            warnings.push(format!("{e}: XIDs not checked"));
            kmsg_error = Some(e);
            false
        }
    };

    // The node as Slurm shows it: whether it runs jobs is part of judging it.
    let scontrol = Scontrol {
        program: node::find_scontrol(cfg.scontrol.as_deref()),
        slurm_conf: job.slurm_conf.clone(),
        timeout: Some((cfg.deadline(job.mode), deadline_key(job.mode))),
    };
    let info = if job.no_slurm {
        None
    } else {
        match scontrol.show(&job.node) {
            Ok(info) => Some(info),
            Err(e) => {
                errors.push(format!("cannot read node {} from Slurm: {e}", job.node));
                None
            }
        }
    };
    let ctx = Context {
        expect_gpus: job.expect_gpus,
        job_gpus: job.job_gpus.clone(),
        prolog: job.mode == Mode::Prolog,
        node_without_jobs: job.mode == Mode::HealthCheck
            && info.as_ref().is_some_and(|i| i.without_jobs()),
        kmsg_read,
        gpus_unknown,
    };
    let mut judgement = evaluate::judge(&snap, &st.critical, cfg, &ctx);
    if let Some(e) = kmsg_error {
        judgement
            .findings
            .push(Finding::unknown(Check::Xid, None, e));
    }
    // sysfs (AER, InfiniBand/EFA), the kernel's other lines, the fabric. A scan past the
    // deadline makes both sysfs sources UNKNOWN and keeps the last baseline.
    let (host, host_read) = match host.wait_until(started + cfg.deadline(job.mode)) {
        Ok(h) => (h, true),
        Err(missed) => {
            let why = match missed {
                deadline::Missed::TimedOut => format!(
                    "sysfs gave no answer within {} ms ({})",
                    cfg.deadline(job.mode).as_millis(),
                    deadline_key(job.mode)
                ),
                deadline::Missed::Failed(e) => format!("sysfs: {e}"),
            };
            let host = Host {
                aer: Err(why.clone()),
                ib: Err(why),
            };
            (host, false)
        }
    };
    let now = unix_now();
    let events: Vec<Event> = st
        .events
        .iter()
        .chain(events.iter().filter(|e| !e.needs_reboot()))
        .cloned()
        .collect();
    let inputs = Inputs {
        kmsg_read,
        events: &events,
        xids: &st.critical,
        host: &host,
        baseline: &st.counters,
        now_unix: now,
    };
    sources::judge(&mut judgement, &snap, &inputs, cfg);
    // The baseline moves with the periodic health check only: the prolog and epilog of
    // many short jobs would otherwise cut its window into slices below every threshold.
    if job.mode == Mode::HealthCheck && host_read {
        st.counters = host.counters(now, &st.counters);
    }
    // fail_after: a noisy check drains only after N failing runs in a row (counted in the
    // state); a drain of ours that already names it stays.
    let ours: BTreeSet<(Check, Option<u32>)> = info
        .as_ref()
        .filter(|i| i.drained() && i.ours())
        .and_then(|i| i.reason.as_deref())
        .and_then(reason::items)
        .map(|items| items.iter().filter_map(|i| i.names).collect())
        .unwrap_or_default();
    hysteresis::apply(
        &mut judgement.findings,
        &judgement.judged,
        &cfg.fail_after,
        &mut st.streaks,
        &ours,
        job.mode == Mode::HealthCheck,
    );
    // A reboot for a check this node was rebooted for already (kept across boots) asks
    // for new hardware instead: no reboot loop.
    let mut ledger = None;
    if let Some((l, warn)) = reboots::Ledger::open(cfg, &job.node, now) {
        warnings.extend(warn);
        let ours = info
            .as_ref()
            .filter(|i| (i.drained() || i.failed()) && i.ours())
            .and_then(|i| i.reason.as_deref());
        l.escalate(&mut judgement.findings, ours);
        ledger = Some(l);
    }
    let mut fleet = None;
    let report_only = fleet::report_only(cfg, |p| p.symlink_metadata().is_ok());
    let is_report_only = report_only.is_some();
    let (mut action, mut held, node_reason, mut drained_by_us) = match info {
        Some(info) => {
            let mut decided = node::decide(&info, &judgement, job.mode == Mode::HealthCheck);
            // The fleet is counted only for a change, which almost no run makes: the
            // all-nodes call stays off the prolog of every job. A drain whose count
            // cannot be had is not done (the breaker could not be consulted).
            if decided.changes() {
                match scontrol.show_all() {
                    Ok(all) => fleet = Some(Fleet::count(&all)),
                    Err(e) => {
                        errors.push(format!("cannot count the cluster's drains: {e}"));
                        if matches!(decided, Action::Drain(_)) {
                            decided = Action::Nothing;
                        }
                    }
                }
            }
            let (action, held) = fleet::gate(decided, report_only, fleet.as_ref(), cfg);
            let drained = action.leaves_our_drain(&info);
            let was = (info.drained() || info.failed()) && info.ours();
            fleet = fleet.map(|f| f.after(was, drained));
            (action, held, info.reason, drained)
        }
        // Without Slurm: whether it would drain.
        None => (
            Action::Nothing,
            None,
            None,
            evaluate::drain_reason(&judgement.findings).is_some(),
        ),
    };
    // The platform's repair for a new drain (reboot, HyperPod); gated with the drain.
    let mut step = repair::step(&cfg.actions, &action, repair::needed(&judgement.findings));
    if !job.dry_run {
        let done = match &step {
            Some(s) if !s.after_drain() => scontrol.step(&s.args(&job.node)),
            _ => scontrol.apply(&job.node, &action),
        };
        // A new drain counts the cluster again: runs that started together each counted
        // the drains before their own.
        let drained_now = done.is_ok()
            && matches!(action, Action::Drain(_))
            && step.as_ref().is_none_or(|s| s.after_drain());
        if drained_now {
            match scontrol.show_all_timed() {
                Ok(all) => {
                    let mut now = Fleet::count(all.iter().map(|(n, _)| n));
                    let limit =
                        fleet::limit(now.nodes, cfg.breaker_max_nodes, cfg.breaker_max_percent);
                    let drains: Vec<(String, Option<String>)> = all
                        .iter()
                        .filter(|(n, _)| {
                            ((n.drained() || n.failed()) && n.ours()) || repair::hyperpod_owns(n)
                        })
                        .map(|(n, t)| (n.name.clone(), t.clone()))
                        .collect();
                    if !fleet::keeps_drain(&job.node, &drains, limit) {
                        match scontrol.apply(&job.node, &Action::Resume) {
                            Ok(()) => {
                                held = Some(Held {
                                    action: std::mem::replace(&mut action, Action::Nothing),
                                    hold: Hold::Breaker {
                                        ours: now.ours.saturating_sub(1),
                                        nodes: now.nodes,
                                        limit,
                                    },
                                });
                                step = None;
                                drained_by_us = false;
                                now = now.after(true, false);
                            }
                            Err(e) => errors.push(format!(
                                "the circuit breaker's second count asked to lift this run's drain, which failed: {e}"
                            )),
                        }
                    }
                    fleet = Some(now);
                }
                Err(e) => errors.push(format!("cannot count the cluster's drains again: {e}")),
            }
        }
        let done = done.and_then(|()| match &step {
            Some(s) if s.after_drain() => scontrol.step(&s.args(&job.node)),
            _ => Ok(()),
        });
        match done {
            Ok(()) => {
                if let (Some(s), Some(l)) = (&step, ledger.as_mut()) {
                    errors.extend(l.taken(s, &judgement.findings).err());
                }
            }
            Err(e) => errors.push(e),
        }
        if let Err(e) = state::save(&cfg.state_dir, &state_file, &st) {
            errors.push(format!("cannot keep the state: {e}"));
        }
    }
    let breaker_open = fleet.map(|f| fleet::breaker_open(&f, cfg));
    let breaker = fleet.map(|f| report::BreakerCount {
        drained: f.ours,
        nodes: f.nodes,
        limit: fleet::limit(f.nodes, cfg.breaker_max_nodes, cfg.breaker_max_percent),
    });
    let checks = report::statuses(&judgement.findings, &judgement.judged);
    let mut report = report(
        judgement.findings,
        action,
        held,
        breaker_open,
        is_report_only,
        node_reason,
        drained_by_us,
        warnings,
    );
    report.repair = step.map(|s| report::Repair {
        command: s.describe(&job.node),
        instead_of_drain: !s.after_drain(),
    });
    // HyperPod's fail instead of our drain: the node is HyperPod's now, not drained by us.
    if report.repair.as_ref().is_some_and(|r| r.instead_of_drain) {
        report.drained_by_healthcheck = false;
    }
    report.checks = checks;
    report.breaker = breaker;
    Ok(Outcome { report, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(seq: u64, usec: u64) -> Xid {
        Xid {
            seq,
            usec,
            pci: String::new(),
            code: 79,
            text: String::new(),
        }
    }

    #[test]
    fn each_slot_reads_its_window_of_the_log() {
        let all = || vec![x(1, 10_000_000), x(2, 100_000_000), x(3, 200_000_000)];
        let seqs = |v: Vec<Xid>| v.iter().map(|x| x.seq).collect::<Vec<_>>();
        // First run: everything since boot.
        assert_eq!(seqs(new_xids(all(), None, None, None)), [1, 2, 3]);
        // Health check: after the last run's position.
        assert_eq!(seqs(new_xids(all(), Some(2), None, None)), [3]);
        // Epilog: also since the job started (boot at 1000 s, job at 1100 s).
        assert_eq!(
            seqs(new_xids(all(), Some(3), Some(1100), Some(1000))),
            [2, 3]
        );
        assert_eq!(
            seqs(new_xids(all(), Some(3), Some(1300), Some(1000))),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn job_gpus() {
        assert_eq!(parse_job_gpus("0,1,3"), Ok(vec![0, 1, 3]));
        assert_eq!(parse_job_gpus(""), Ok(vec![]));
        assert!(parse_job_gpus("0,gpu1").is_err());
    }
}
