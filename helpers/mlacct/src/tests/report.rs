use super::*;
use mlpolicy::domains::{Accounting, Domain};
use proptest::prelude::*;

fn accounting() -> Accounting {
    let mut a = Accounting::default();
    a.domains.insert(
        "cloud".into(),
        Domain {
            partitions: vec!["cloud".into()],
            account_suffix: Some("_cloud".into()),
            cost_per_billing_hour: Some(0.01),
            ..Domain::default()
        },
    );
    a
}

fn job(partition: &str, account: &str, start: i64, end: i64) -> Job {
    Job {
        partition: partition.into(),
        account: account.into(),
        user: "alice".into(),
        start,
        end,
        elapsed: u64::MAX,
        allocated: true,
        cpus: 4,
        gpus: 2,
        billing: 100,
    }
}

const P: Period = Period {
    since: 1000,
    until: 5000,
};

#[test]
fn clip_cuts_to_the_period_and_runs_to_now() {
    assert_eq!(P.clip(2000, 3000, 9999), 1000);
    assert_eq!(P.clip(500, 1500, 9999), 500, "crosses the start");
    assert_eq!(P.clip(4500, 6000, 9999), 500, "crosses the end");
    assert_eq!(P.clip(500, 6000, 9999), 4000, "covers it");
    assert_eq!(P.clip(2000, 0, 2600), 600, "running: until now");
    assert_eq!(P.clip(0, 0, 2600), 0, "never started");
    assert_eq!(P.clip(100, 900, 9999), 0, "before");
    assert_eq!(P.clip(6000, 7000, 9999), 0, "after");
}

#[test]
fn tally_groups_by_domain_of_the_partition_and_prices_it() {
    let jobs = [
        job("cloud", "proj_cloud", 1400, 5000),
        job("cloud", "proj_cloud", 500, 1000 + 1800),
        job("debug", "proj", 2000, 2000 + 3600),
        Job {
            allocated: false,
            ..job("debug", "proj", 2000, 3000)
        },
    ];
    let rows = tally(&jobs, &accounting(), &P, 9999, &Filters::default());
    assert_eq!(rows.len(), 2);
    let cloud = &rows[0];
    assert_eq!(cloud.key.domain, "cloud");
    assert_eq!(cloud.key.account, "proj_cloud");
    assert_eq!(
        cloud.totals,
        Totals {
            jobs: 2,
            cpu_secs: 4 * 5400,
            gpu_secs: 2 * 5400,
            billing_secs: 100 * 5400
        }
    );
    assert_eq!(cloud.totals.gpu_hours(), 3.0);
    assert_eq!(cloud.cost, Some(150.0 * 0.01));
    let onprem = &rows[1];
    assert_eq!(onprem.key.domain, "onprem");
    assert_eq!(
        onprem.totals.jobs, 1,
        "a job never allocated is not counted"
    );
    assert_eq!(onprem.cost, None, "onprem has no price");
}

#[test]
fn filters_match_parent_accounts_users_and_domains() {
    let jobs = [
        job("cloud", "proj_cloud", 2000, 3000),
        job("debug", "proj", 2000, 3000),
        job("debug", "other", 2000, 3000),
    ];
    let f = |accounts: &[&str], domains: &[&str]| Filters {
        accounts: accounts.iter().map(|s| s.to_string()).collect(),
        domains: domains.iter().map(|s| s.to_string()).collect(),
        users: vec![],
    };
    let n = |f: Filters| tally(&jobs, &accounting(), &P, 9999, &f).len();
    assert_eq!(n(f(&["proj"], &[])), 2, "the parent matches its shadow");
    assert_eq!(n(f(&["proj_cloud"], &[])), 1);
    assert_eq!(n(f(&[], &["onprem"])), 2);
    assert_eq!(n(f(&["proj"], &["cloud"])), 1);
    let users = Filters {
        users: vec!["bob".into()],
        ..Filters::default()
    };
    assert_eq!(n(users), 0);
}

#[test]
fn elapsed_from_slurmdbd_caps_the_clip() {
    let mut j = job("debug", "proj", 2000, 3000);
    j.elapsed = 400; // suspended 600 s
    assert_eq!(usage(&j, &P, 9999).cpu_secs, 4 * 400);
}

#[test]
fn budgets_left_of_shadow_accounts() {
    let assocs = [
        AssocBilling {
            account: "proj_cloud".into(),
            limit_mins: Some(1000),
            used_secs: 60.0 * 250.0 + 59.0,
        },
        AssocBilling {
            account: "proj".into(),
            limit_mins: Some(1000),
            used_secs: 0.0,
        },
        AssocBilling {
            account: "vision_cloud".into(),
            limit_mins: None,
            used_secs: 0.0,
        },
        AssocBilling {
            account: "x_cloud".into(),
            limit_mins: Some(10),
            used_secs: 6000.0,
        },
    ];
    let b = budgets(&assocs, &accounting(), &Filters::default());
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(
        b[0],
        Budget {
            domain: "cloud".into(),
            account: "proj_cloud".into(),
            parent: "proj".into(),
            limit_mins: 1000,
            used_mins: 250,
            left_mins: 750,
            left_cost: Some(750.0 / 60.0 * 0.01),
        }
    );
    assert_eq!(b[1].left_mins, 0, "over the limit: none left");
}

proptest! {
    /// Cutting a run to [a,b] and to [b,c] gives what cutting it to [a,c] gives.
    #[test]
    fn clipping_adds_up(a in 0i64..10_000, ab in 0i64..10_000, bc in 0i64..10_000,
                        start in 1i64..40_000, len in 0i64..20_000, now in 0i64..40_000,
                        running: bool) {
        let (b, c) = (a + ab, a + ab + bc);
        let end = if running { 0 } else { start + len };
        let whole = Period { since: a, until: c }.clip(start, end, now);
        let parts = Period { since: a, until: b }.clip(start, end, now)
            + Period { since: b, until: c }.clip(start, end, now);
        prop_assert_eq!(whole, parts);
        prop_assert!(whole <= u64::try_from(c - a).unwrap());
    }

    /// Every job's use lands in exactly one row: the rows sum to the jobs.
    #[test]
    fn rows_sum_to_the_jobs(specs in proptest::collection::vec(
        (0usize..3, 0usize..3, 1i64..6000, 0i64..4000, 0u64..8, 0u64..300), 0..40)) {
        let parts = ["cloud", "debug", "gpu"];
        let accts = ["proj", "proj_cloud", "vision"];
        let jobs: Vec<Job> = specs.iter().map(|&(p, a, start, len, gpus, billing)| Job {
            gpus, billing, ..job(parts[p], accts[a], start, start + len)
        }).collect();
        let rows = tally(&jobs, &accounting(), &P, 9999, &Filters::default());
        let (total, _) = sum(&rows);
        let mut want = Totals::default();
        for j in &jobs {
            want.add(&usage(j, &P, 9999));
        }
        prop_assert_eq!(total, want);
        for r in &rows {
            prop_assert_eq!(r.key.domain == "cloud", r.cost.is_some());
        }
    }
}
