//! Accounting domains: the `accounting` section of `mlpolicy.json`.
//!
//! A domain is a set of partitions (`cloud`: the partitions whose hours cost money); a
//! partition in no domain belongs to [`ONPREM`]. The plugin tags each job with its domain
//! (a shadow account, a wckey, an admin_comment), so Slurm's own association limits budget
//! each domain apart, and reports (`mlacct`) price each domain's billing units. This module
//! holds the schema, its checks and the pure questions other crates ask of it; the
//! job_submit decision lives in [`crate::engine`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// The domain of every partition no domain lists.
pub const ONPREM: &str = "onprem";

/// What a `-p a,b` list whose partitions lie in more than one domain does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Span {
    /// Refused: the user picks one domain.
    #[default]
    Refuse,
    /// Accepted without tags; reports attribute the job by the partition it ran in.
    Untagged,
}

/// One domain; every key is optional (a declared `onprem` lists no partitions).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    #[serde(default)]
    pub partitions: Vec<String>,
    /// The shadow account is the account with this suffix (`proj` -> `proj_cloud`)...
    pub account_suffix: Option<String>,
    /// ...unless this map names it (`vision` -> `vision-aws`).
    #[serde(default)]
    pub account_map: BTreeMap<String, String>,
    /// The job's wckey becomes the domain's name.
    #[serde(default)]
    pub wckey: bool,
    /// The job's admin_comment becomes `{"mlpolicy":{"domain":D,"account":A}}`.
    #[serde(default)]
    pub admin_comment: bool,
    /// The parent accounts that may use the domain; empty: every account.
    #[serde(default)]
    pub allowed_accounts: Vec<String>,
    /// Who to ask, named in refusals.
    pub contact: Option<String>,
    /// Price of one billing unit for one hour, in `currency` (reports only).
    pub cost_per_billing_hour: Option<f64>,
}

fn default_currency() -> String {
    "USD".into()
}

/// The `accounting` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounting {
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default)]
    pub span: Span,
    #[serde(default)]
    pub domains: BTreeMap<String, Domain>,
}

impl Default for Accounting {
    fn default() -> Self {
        Accounting {
            currency: default_currency(),
            span: Span::default(),
            domains: BTreeMap::new(),
        }
    }
}

impl Accounting {
    /// The domain a partition belongs to ([`ONPREM`] when no domain lists it). A linear
    /// scan: a site has a handful of domains, and no index can go stale.
    pub fn domain_of(&self, partition: &str) -> &str {
        self.domains
            .iter()
            .find(|(_, d)| d.partitions.iter().any(|p| p == partition))
            .map_or(ONPREM, |(name, _)| name.as_str())
    }

    /// A declared domain (`onprem` is declared only to tag or price its jobs).
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.get(name)
    }

    /// The one domain of a list of partitions, or `None` when they lie in several.
    pub fn domain_of_all<'a>(&'a self, partitions: &[&str]) -> Option<&'a str> {
        let mut names = partitions.iter().map(|p| self.domain_of(p));
        let first = names.next().unwrap_or(ONPREM);
        names.all(|n| n == first).then_some(first)
    }

    /// The domain whose shadow account `account` is, if any (and which parent it stands
    /// for): `proj_cloud` is the cloud domain's, for `proj`.
    pub fn shadow_owner<'a>(&'a self, account: &str) -> Option<(&'a str, String)> {
        self.domains
            .iter()
            .find_map(|(name, d)| d.parent_account(account).map(|p| (name.as_str(), p)))
    }

    /// Checks what serde cannot: names, partitions, prices; errors name the key.
    pub fn check(&self) -> Result<(), String> {
        if self.currency.trim().is_empty() {
            return Err("accounting.currency: is empty".into());
        }
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, d) in &self.domains {
            d.check(name)?;
            for p in &d.partitions {
                if let Some(other) = owner.insert(p, name) {
                    return Err(format!(
                        "accounting.domains.{name}.partitions: {p:?} is in domain {other:?} too"
                    ));
                }
            }
        }
        self.check_shadows_apart()
    }

    /// Each shadow account stands for one domain: no domain's shadow (a suffix, or a name
    /// in `account_map`) ends with another domain's suffix or is another's mapped name.
    /// Otherwise [`Accounting::shadow_owner`] reads it as the first domain's.
    fn check_shadows_apart(&self) -> Result<(), String> {
        let two = |key: String, value: &str, other: String, theirs: &str, example: String| {
            Err(format!(
                "{key}: {value:?} ends with {other} {theirs:?}: a shadow account such as {example:?} would stand for two domains"
            ))
        };
        let key = |n: &str, k: &str| format!("accounting.domains.{n}.{k}");
        for (name, d) in &self.domains {
            for (other, o) in self.domains.iter().filter(|(n, _)| *n != name) {
                if let (Some(mine), Some(theirs)) = (&d.account_suffix, &o.account_suffix) {
                    if mine.ends_with(theirs.as_str()) {
                        let example = format!("proj{mine}");
                        return two(
                            key(name, "account_suffix"),
                            mine,
                            key(other, "account_suffix"),
                            theirs,
                            example,
                        );
                    }
                }
                for shadow in d.account_map.values() {
                    if let Some(theirs) = &o.account_suffix {
                        if shadow.len() > theirs.len() && shadow.ends_with(theirs.as_str()) {
                            return two(
                                key(name, "account_map"),
                                shadow,
                                key(other, "account_suffix"),
                                theirs,
                                shadow.clone(),
                            );
                        }
                    }
                    if o.account_map.values().any(|s| s == shadow) {
                        return Err(format!(
                            "{}: {shadow:?} is {}'s shadow account too: a shadow account stands for one domain",
                            key(name, "account_map"),
                            key(other, "account_map")
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Domain names (`[A-Za-z0-9_-]+`: the domain becomes a wckey).
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Account names as Slurm stores them: slurmctld lower-cases a job's account (after
/// job_submit) and sacctmgr lower-cases the accounts it creates, so a name with capitals
/// would never match.
fn is_account(s: &str) -> bool {
    is_name(s) && !s.chars().any(|c| c.is_ascii_uppercase())
}

impl Domain {
    /// The account a job of `account` is charged to in this domain: `account_map`'s, else
    /// the account with `account_suffix`; an account that already is this domain's shadow
    /// stays as it is (so tagging twice changes nothing). `None`: the domain does not tag
    /// accounts.
    pub fn shadow_account(&self, account: &str) -> Option<String> {
        if self.is_shadow(account) {
            return Some(account.to_string());
        }
        if let Some(mapped) = self.account_map.get(account) {
            return Some(mapped.clone());
        }
        self.account_suffix
            .as_ref()
            .map(|suffix| format!("{account}{suffix}"))
    }

    /// Whether the domain charges jobs to shadow accounts.
    pub fn tags_account(&self) -> bool {
        self.account_suffix.is_some() || !self.account_map.is_empty()
    }

    /// The parent account a shadow account stands for; `None` when `account` is not one
    /// of this domain's shadows.
    pub fn parent_account(&self, account: &str) -> Option<String> {
        if let Some((parent, _)) = self.account_map.iter().find(|(_, s)| *s == account) {
            return Some(parent.clone());
        }
        let suffix = self.account_suffix.as_deref()?;
        account
            .strip_suffix(suffix)
            .filter(|p| !p.is_empty() && !self.account_map.contains_key(*p))
            .map(str::to_string)
    }

    fn is_shadow(&self, account: &str) -> bool {
        self.parent_account(account).is_some()
    }

    /// Whether a parent account may use the domain.
    pub fn allows(&self, parent: &str) -> bool {
        self.allowed_accounts.is_empty() || self.allowed_accounts.iter().any(|a| a == parent)
    }

    fn check(&self, name: &str) -> Result<(), String> {
        let key = |k: &str| format!("accounting.domains.{name}.{k}");
        if !is_name(name) {
            return Err(format!(
                "accounting.domains: {name:?} is not a domain name ([A-Za-z0-9_-]+, it becomes a wckey)"
            ));
        }
        if name == ONPREM && !self.partitions.is_empty() {
            return Err(format!(
                "{}: the {ONPREM} domain lists no partitions (it holds every partition no other domain lists)",
                key("partitions")
            ));
        }
        if self.wckey && name.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "{}: slurmctld lower-cases wckeys: name the domain {:?}",
                key("wckey"),
                name.to_ascii_lowercase()
            ));
        }
        if name != ONPREM && self.partitions.is_empty() {
            return Err(format!("{}: lists no partition", key("partitions")));
        }
        if let Some(p) = self
            .partitions
            .iter()
            .find(|p| p.is_empty() || p.contains(',') || p.contains(char::is_whitespace))
        {
            return Err(format!(
                "{}: {p:?} is not a partition name",
                key("partitions")
            ));
        }
        if let Some(s) = &self.account_suffix {
            if !is_account(s) {
                return Err(format!(
                    "{}: {s:?} is not part of an account name ([a-z0-9_-]+)",
                    key("account_suffix")
                ));
            }
        }
        for (parent, shadow) in &self.account_map {
            if !is_account(parent) || !is_account(shadow) || parent == shadow {
                return Err(format!(
                    "{}: {parent:?} -> {shadow:?} is not a pair of account names ([a-z0-9_-]+, different)",
                    key("account_map")
                ));
            }
        }
        if let Some(a) = self.allowed_accounts.iter().find(|a| !is_account(a)) {
            return Err(format!(
                "{}: {a:?} is not an account name ([a-z0-9_-]+)",
                key("allowed_accounts")
            ));
        }
        if matches!(&self.contact, Some(c) if c.trim().is_empty()) {
            return Err(format!("{}: is empty", key("contact")));
        }
        if let Some(c) = self.cost_per_billing_hour {
            if !c.is_finite() || c < 0.0 {
                return Err(format!(
                    "{}: {c} is not a price (a finite number, 0 or more)",
                    key("cost_per_billing_hour")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests/domains.rs"]
mod tests;
