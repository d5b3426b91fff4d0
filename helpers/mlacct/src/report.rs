//! The report's arithmetic, on plain values: which domain a job ran in, how much of it
//! falls in the period, totals per (domain, account, user), cost, budgets left.

use std::collections::BTreeMap;

use mlpolicy::domains::Accounting;

/// Seconds in an hour: TRES-seconds / this = TRES-hours.
pub const HOUR: u64 = 3600;

/// The period reported, [since, until] in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub since: i64,
    pub until: i64,
}

impl Period {
    /// How many seconds of a run from `start` to `end` fall in the period, as
    /// `sacct --truncate` cuts it: an `end` of 0 (still running) runs until `now`; a job
    /// never started (`start` 0) has none.
    pub fn clip(&self, start: i64, end: i64, now: i64) -> u64 {
        if start <= 0 {
            return 0;
        }
        let end = if end <= 0 { now } else { end };
        let from = start.max(self.since);
        let to = end.min(self.until).min(now);
        u64::try_from(to.saturating_sub(from)).unwrap_or(0)
    }
}

/// One job record as the report needs it (from slurmdbd, cut to the period).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Job {
    /// The partition the job ran in.
    pub partition: String,
    /// The account it was charged to (a shadow account when its domain tags accounts).
    pub account: String,
    pub user: String,
    /// Unix seconds; 0: none.
    pub start: i64,
    pub end: i64,
    /// Seconds run as slurmdbd counts them (suspended time out): a ceiling on the clip.
    pub elapsed: u64,
    /// Whether it held an allocation (its allocated TRES are known).
    pub allocated: bool,
    pub cpus: u64,
    pub gpus: u64,
    /// The billing TRES (TRESBillingWeights of its partition).
    pub billing: u64,
}

/// The rows of the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub domain: String,
    pub account: String,
    pub user: String,
}

/// What a group of jobs used in the period, in TRES-seconds (exact; hours are derived).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub jobs: u64,
    pub cpu_secs: u64,
    pub gpu_secs: u64,
    pub billing_secs: u64,
}

impl Totals {
    /// Saturating: a record with absurd counts must not panic the report.
    fn add(&mut self, o: &Totals) {
        self.jobs = self.jobs.saturating_add(o.jobs);
        self.cpu_secs = self.cpu_secs.saturating_add(o.cpu_secs);
        self.gpu_secs = self.gpu_secs.saturating_add(o.gpu_secs);
        self.billing_secs = self.billing_secs.saturating_add(o.billing_secs);
    }

    pub fn cpu_hours(&self) -> f64 {
        hours(self.cpu_secs)
    }

    pub fn gpu_hours(&self) -> f64 {
        hours(self.gpu_secs)
    }

    /// Billing units: billing TRES x hours.
    pub fn billing_hours(&self) -> f64 {
        hours(self.billing_secs)
    }
}

pub fn hours(secs: u64) -> f64 {
    secs as f64 / HOUR as f64
}

/// What to keep; empty = everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filters {
    /// Accounts: a job matches by the account it was charged to or by the parent account
    /// its shadow account stands for.
    pub accounts: Vec<String>,
    pub users: Vec<String>,
    pub domains: Vec<String>,
}

fn keeps(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

impl Filters {
    fn keeps_account(&self, acct: &Accounting, account: &str) -> bool {
        keeps(&self.accounts, account)
            || acct
                .shadow_owner(account)
                .is_some_and(|(_, parent)| keeps(&self.accounts, &parent))
    }
}

/// Whether the job held an allocation at some time in the period: allocated, started
/// before its end, not ended before its start.
pub fn ran_in(job: &Job, period: &Period) -> bool {
    job.allocated
        && job.start > 0
        && job.start < period.until
        && (job.end <= 0 || job.end >= period.since)
}

/// What one job used in the period (its count is 1 when it ran in it).
pub fn usage(job: &Job, period: &Period, now: i64) -> Totals {
    if !ran_in(job, period) {
        return Totals::default();
    }
    let secs = period.clip(job.start, job.end, now).min(job.elapsed);
    Totals {
        jobs: 1,
        cpu_secs: job.cpus.saturating_mul(secs),
        gpu_secs: job.gpus.saturating_mul(secs),
        billing_secs: job.billing.saturating_mul(secs),
    }
}

/// One row: a (domain, account, user) and what it used; `cost` when the domain has a price.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: Key,
    pub totals: Totals,
    pub cost: Option<f64>,
}

/// The price of a domain's billing-hour, if the policy sets one.
pub fn price(acct: &Accounting, domain: &str) -> Option<f64> {
    acct.domain(domain).and_then(|d| d.cost_per_billing_hour)
}

/// Totals per (domain, account, user), sorted; the domain is the one of the partition
/// the job ran in.
pub fn tally(
    jobs: &[Job],
    acct: &Accounting,
    period: &Period,
    now: i64,
    filters: &Filters,
) -> Vec<Row> {
    let mut sums: BTreeMap<Key, Totals> = BTreeMap::new();
    for job in jobs {
        let domain = acct.domain_of(&job.partition);
        if !keeps(&filters.domains, domain)
            || !keeps(&filters.users, &job.user)
            || !filters.keeps_account(acct, &job.account)
        {
            continue;
        }
        let used = usage(job, period, now);
        if used.jobs == 0 {
            continue;
        }
        let key = Key {
            domain: domain.to_string(),
            account: job.account.clone(),
            user: job.user.clone(),
        };
        sums.entry(key).or_default().add(&used);
    }
    sums.into_iter()
        .map(|(key, totals)| Row {
            cost: price(acct, &key.domain).map(|p| totals.billing_hours() * p),
            key,
            totals,
        })
        .collect()
}

/// The sum of rows (per domain, or all of them).
pub fn sum<'a>(rows: impl IntoIterator<Item = &'a Row>) -> (Totals, Option<f64>) {
    let mut t = Totals::default();
    let mut cost: Option<f64> = None;
    for r in rows {
        t.add(&r.totals);
        if let Some(c) = r.cost {
            cost = Some(cost.unwrap_or(0.0) + c);
        }
    }
    (t, cost)
}

/// A shadow account's `GrpTRESMins=billing=N` as slurmctld counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssocBilling {
    pub account: String,
    /// The billing-minutes limit; `None`: no limit.
    pub limit_mins: Option<u64>,
    /// Usage in billing-seconds (decayed unless the site keeps it whole).
    pub used_secs: f64,
}

/// The budget left of one shadow account.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub domain: String,
    pub account: String,
    pub parent: String,
    pub limit_mins: u64,
    /// As `scontrol show assoc_mgr` prints it: whole minutes, rounded down.
    pub used_mins: u64,
    pub left_mins: u64,
    /// What the minutes left are worth at the domain's price.
    pub left_cost: Option<f64>,
}

/// Budgets of the shadow accounts that have a billing limit, sorted by domain and account.
pub fn budgets(assocs: &[AssocBilling], acct: &Accounting, filters: &Filters) -> Vec<Budget> {
    let mut out: Vec<Budget> = assocs
        .iter()
        .filter_map(|a| {
            let limit = a.limit_mins?;
            let (domain, parent) = acct.shadow_owner(&a.account)?;
            if !keeps(&filters.domains, domain) || !filters.keeps_account(acct, &a.account) {
                return None;
            }
            // scontrol: (uint64_t)usage_tres_raw / 60.
            let used = if a.used_secs.is_finite() && a.used_secs > 0.0 {
                a.used_secs as u64 / 60
            } else {
                0
            };
            let left = limit.saturating_sub(used);
            Some(Budget {
                domain: domain.to_string(),
                account: a.account.clone(),
                parent,
                limit_mins: limit,
                used_mins: used,
                left_mins: left,
                left_cost: price(acct, domain).map(|p| left as f64 / 60.0 * p),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.domain, &a.account).cmp(&(&b.domain, &b.account)));
    out
}

#[cfg(test)]
#[path = "tests/report.rs"]
mod tests;
