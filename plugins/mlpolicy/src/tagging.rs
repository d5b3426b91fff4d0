//! Which accounting domain a submission lands in, and the tags that say so: a [`Submission`]
//! in, [`Tags`] or a [`Refusal`] out. Pure; the adapter reads the job and the user's default
//! account, and writes the tags into `job_desc`.
//!
//! A job's domain is that of every partition it may run in: the partitions it names, else
//! the one the policy routes it to, else slurmctld's default. Its *parent* account is the
//! one it names (`-A`) or, failing that, its user's default account; a domain's shadow
//! account, named with `-A` or as the default, stands for its parent (`proj_cloud` is
//! `proj`), so naming a shadow changes nothing and a shadow used outside its domain is
//! charged back to its parent. The job is then charged to its domain's shadow of that parent.
//!
//! The rules, in order ([`RULES`]); exempt users (uid 0, `admins`) are never refused but
//! are tagged wherever a tag can be known, so their usage lands in the right domain too:
//!
//! | rule            | when                                              | user       | exempt        |
//! |-----------------|---------------------------------------------------|------------|---------------|
//! | `domain-unknown`| no partition named, slurmctld's default unreadable | refused    | untagged      |
//! | `domain-span`   | `-p a,b` over several domains, `span: refuse`      | refused    | untagged      |
//! |                 | ... `span: untagged`                               | untagged*  | untagged      |
//! | `no-account`    | no `-A`, no default account, and the domain needs  | refused    | tagged, no    |
//! |                 | one (shadow accounts, `allowed_accounts`, the      | ("pass -A")| account       |
//! |                 | admin_comment's account)                           |            |               |
//! | `domain-access` | parent account not in `allowed_accounts`          | refused    | tagged        |
//!
//! \* `allowed_accounts` of every domain of the list still applies (a job may run in any
//! of them).

use crate::config::Policy;
use crate::domains::{Accounting, Domain, Span};
use crate::engine::{Code, Refusal};

/// What tagging needs of a submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submission {
    /// Where the job may run (named, routed or slurmctld's default); empty when unknown.
    pub partitions: Vec<String>,
    /// `-A` as given (Slurm lower-cases it after job_submit; so do we).
    pub account: Option<String>,
    /// Uid 0 or a policy admin.
    pub exempt: bool,
}

/// What to write into the job; `None` leaves a field as the user gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    /// The job's domain; `None` for an untagged job (span, unknown).
    pub domain: Option<String>,
    pub account: Option<String>,
    pub wckey: Option<String>,
    pub admin_comment: Option<String>,
}

/// One submission being tagged: its domain(s), its parent account once known.
struct Ctx<'a> {
    policy: &'a Policy,
    acct: &'a Accounting,
    sub: &'a Submission,
    /// The domains of the job's partitions, in the order first named.
    domains: Vec<&'a str>,
    /// The partitions of each of `domains`, comma-joined (for messages).
    parts: Vec<String>,
    /// The parent account (the named one de-shadowed, else the default account).
    parent: Option<String>,
}

impl Ctx<'_> {
    /// The first domain that needs the job's account: to admit it (`allowed_accounts`) or,
    /// where the job lies in that one domain, to tag it (shadow account, admin_comment).
    fn needs_account(&self) -> Option<&str> {
        let single = self.domains.len() == 1;
        self.domains.iter().copied().find(|name| {
            self.acct.domain(name).is_some_and(|d| {
                !d.allowed_accounts.is_empty() || (single && (d.tags_account() || d.admin_comment))
            })
        })
    }

    fn one(&self) -> Option<(&str, Option<&Domain>)> {
        match self.domains.as_slice() {
            [d] => Some((d, self.acct.domain(d))),
            _ => None,
        }
    }

    fn refuse(&self, code: Code, rule: &'static str, message: String) -> Refusal {
        let message = match &self.policy.doc_url {
            Some(url) => format!("mlpolicy: {message} (see {url})"),
            None => format!("mlpolicy: {message}"),
        };
        Refusal {
            code,
            rule,
            message,
        }
    }
}

type Rule = fn(&Ctx) -> Option<Refusal>;

/// The refusals, in the order a user would fix them (all skip exempt users).
const RULES: &[Rule] = &[domain_unknown, domain_span, no_account, domain_access];

/// Tags a submission, or refuses it. `default_account` is asked only when the job names
/// no account and a domain needs one (it reads slurmctld's association manager).
pub fn tag(
    policy: &Policy,
    sub: &Submission,
    default_account: &dyn Fn() -> Option<String>,
) -> Result<Tags, Refusal> {
    let Some(acct) = &policy.accounting else {
        return Ok(Tags::default());
    };
    let mut ctx = Ctx {
        policy,
        acct,
        sub,
        domains: vec![],
        parts: vec![],
        parent: None,
    };
    // slurmctld reads the list with strtok: an empty entry (`-p cloud,`) names nothing.
    for p in sub.partitions.iter().filter(|p| !p.is_empty()) {
        let d = acct.domain_of(p);
        match ctx.domains.iter().position(|x| *x == d) {
            Some(i) => ctx.parts[i] = format!("{},{p}", ctx.parts[i]),
            None => {
                ctx.domains.push(d);
                ctx.parts.push(p.clone());
            }
        }
    }
    if ctx.domains.is_empty() && !has_domains(acct) {
        // No partition known, but every partition is onprem's.
        ctx.domains.push(crate::domains::ONPREM);
        ctx.parts.push("(the default)".into());
    }
    let named = sub.account.as_deref().map(str::to_ascii_lowercase);
    // The account Slurm would charge: the named one, else the default (read when needed).
    let given = match named.clone() {
        Some(a) => Some(a),
        None if ctx.needs_account().is_some() => default_account(),
        None => None,
    };
    // A shadow stands for its parent, named or by default.
    ctx.parent = given.as_deref().map(|a| {
        acct.shadow_owner(a)
            .map_or_else(|| a.to_string(), |(_, p)| p)
    });
    if !sub.exempt {
        if let Some(r) = RULES.iter().find_map(|rule| rule(&ctx)) {
            return Err(r);
        }
    }
    Ok(tags(&ctx, named.as_deref(), given.as_deref()))
}

/// Whether any domain could have been the job's: a cluster with only `onprem` has one.
fn has_domains(acct: &Accounting) -> bool {
    acct.domains.keys().any(|d| d != crate::domains::ONPREM)
}

fn domain_unknown(c: &Ctx) -> Option<Refusal> {
    if !c.domains.is_empty() || !has_domains(c.acct) {
        return None;
    }
    Some(c.refuse(
        Code::InvalidPartition,
        "domain-unknown",
        "this job names no partition and the cluster's default cannot be read, so its accounting domain is unknown: add -p PARTITION".into(),
    ))
}

fn domain_span(c: &Ctx) -> Option<Refusal> {
    if c.domains.len() < 2 || c.acct.span == Span::Untagged {
        return None;
    }
    let choices: Vec<String> = c.parts.iter().map(|p| format!("-p {p}")).collect();
    Some(c.refuse(
        Code::InvalidPartition,
        "domain-span",
        format!(
            "partitions {} lie in more than one accounting domain ({}), whose usage is accounted apart: submit to one domain's partitions ({})",
            c.sub.partitions.join(","),
            c.domains.join(", "),
            choices.join(" or ")
        ),
    ))
}

fn no_account(c: &Ctx) -> Option<Refusal> {
    if c.parent.is_some() {
        return None;
    }
    let d = c.needs_account()?;
    Some(c.refuse(
        Code::InvalidAccount,
        "no-account",
        format!(
            "this job names no account and slurmctld knows no default account for its user, so its {d} domain account cannot be chosen: pass -A ACCOUNT"
        ),
    ))
}

fn domain_access(c: &Ctx) -> Option<Refusal> {
    let parent = c.parent.as_deref()?;
    let (i, name) = c.domains.iter().enumerate().find(|(_, d)| {
        c.acct
            .domain(d)
            .is_some_and(|dom: &Domain| !dom.allows(parent))
    })?;
    let ask = c
        .acct
        .domain(name)
        .and_then(|d| d.contact.as_deref())
        .unwrap_or("an admin");
    Some(c.refuse(
        Code::AccessDenied,
        "domain-access",
        format!(
            "account {parent} may not use the {name} domain (partitions {}); ask {ask}",
            c.parts[i]
        ),
    ))
}

/// The tags of an admitted job: none unless it lies in exactly one domain. `named`: the
/// account given with -A; `given`: that, else the default account (when it was read).
fn tags(c: &Ctx, named: Option<&str>, given: Option<&str>) -> Tags {
    let Some((name, domain)) = c.one() else {
        return Tags::default();
    };
    let mut t = Tags {
        domain: Some(name.to_string()),
        ..Tags::default()
    };
    let parent = c.parent.as_deref();
    // The account charged: the domain's shadow of the parent; where the domain has none,
    // the parent itself (a shadow named, or the default, outside its domain is charged
    // back to it); a default that is no shadow is left for Slurm to fill in.
    let charged = match (domain, parent) {
        (Some(d), Some(p)) if d.tags_account() => d.shadow_account(p),
        (_, Some(p)) if named.is_some() || given != Some(p) => Some(p.to_string()),
        _ => None,
    };
    t.account = charged.filter(|a| Some(a.as_str()) != named);
    let Some(d) = domain else {
        return t;
    };
    if d.wckey {
        t.wckey = Some(name.to_string());
    }
    if d.admin_comment {
        t.admin_comment = Some(admin_comment(name, parent));
    }
    t
}

/// `{"mlpolicy":{"domain":"cloud","account":"proj"}}` (compact, in this order; no
/// `account` where an exempt user's job has none).
pub fn admin_comment(domain: &str, parent: Option<&str>) -> String {
    let s = |v: &str| serde_json::Value::String(v.to_string()).to_string();
    match parent {
        Some(a) => format!(
            r#"{{"mlpolicy":{{"domain":{},"account":{}}}}}"#,
            s(domain),
            s(a)
        ),
        None => format!(r#"{{"mlpolicy":{{"domain":{}}}}}"#, s(domain)),
    }
}

#[cfg(test)]
#[path = "tests/tagging.rs"]
mod tests;
