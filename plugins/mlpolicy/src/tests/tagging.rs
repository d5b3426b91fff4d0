use super::*;
use crate::engine::{evaluate, Job, Verdict};
use proptest::prelude::*;

const POLICY: &str = r#"{"accounting": {
  "span": "refuse",
  "domains": {
    "onprem": { "wckey": true, "admin_comment": true, "cost_per_billing_hour": 0.0 },
    "cloud": {
      "partitions": ["cloud", "cloud-big"],
      "account_suffix": "_cloud",
      "account_map": { "vision": "vision-aws" },
      "wckey": true,
      "admin_comment": true,
      "allowed_accounts": ["proj", "vision"],
      "contact": "hpc-help@example.org",
      "cost_per_billing_hour": 0.01
    }
  }
}}"#;

fn policy() -> Policy {
    Policy::parse(POLICY, "t", &|_| None).unwrap()
}

fn sub(parts: &[&str], account: Option<&str>) -> Submission {
    Submission {
        partitions: parts.iter().map(|p| p.to_string()).collect(),
        account: account.map(str::to_string),
        exempt: false,
    }
}

fn no_default() -> Option<String> {
    None
}

fn default_proj() -> Option<String> {
    Some("proj".into())
}

fn refused(r: Result<Tags, Refusal>) -> (Code, &'static str, String) {
    match r {
        Err(r) => (r.code, r.rule, r.message),
        Ok(t) => panic!("accepted: {t:?}"), // ok-panic: test
    }
}

fn tags(domain: &str, account: Option<&str>, parent: Option<&str>) -> Tags {
    Tags {
        domain: Some(domain.into()),
        account: account.map(str::to_string),
        wckey: Some(domain.into()),
        admin_comment: Some(admin_comment(domain, parent)),
    }
}

#[test]
fn cloud_jobs_are_charged_to_the_shadow_account() {
    let p = policy();
    let t = tag(&p, &sub(&["cloud"], Some("proj")), &no_default).unwrap();
    assert_eq!(t, tags("cloud", Some("proj_cloud"), Some("proj")));
    assert_eq!(
        t.admin_comment.as_deref(),
        Some(r#"{"mlpolicy":{"domain":"cloud","account":"proj"}}"#)
    );
    let t = tag(&p, &sub(&["cloud-big"], Some("vision")), &no_default).unwrap();
    assert_eq!(t, tags("cloud", Some("vision-aws"), Some("vision")));
    // Slurm lower-cases the account after us: so do we, first.
    let t = tag(&p, &sub(&["cloud"], Some("Proj")), &no_default).unwrap();
    assert_eq!(t.account.as_deref(), Some("proj_cloud"));
    // Naming the shadow changes nothing.
    let t = tag(&p, &sub(&["cloud"], Some("proj_cloud")), &no_default).unwrap();
    assert_eq!(t, tags("cloud", None, Some("proj")));
}

#[test]
fn onprem_jobs_keep_their_account_and_get_the_onprem_tags() {
    let p = policy();
    let t = tag(&p, &sub(&["gpu"], Some("other")), &no_default).unwrap();
    assert_eq!(t, tags("onprem", None, Some("other")));
    // A shadow named outside its domain is charged back to its parent.
    let t = tag(&p, &sub(&["gpu"], Some("proj_cloud")), &no_default).unwrap();
    assert_eq!(t, tags("onprem", Some("proj"), Some("proj")));
}

#[test]
fn no_account_uses_the_default_or_refuses() {
    let p = policy();
    let t = tag(&p, &sub(&["cloud"], None), &default_proj).unwrap();
    assert_eq!(t, tags("cloud", Some("proj_cloud"), Some("proj")));
    let (code, rule, msg) = refused(tag(&p, &sub(&["cloud"], None), &no_default));
    assert_eq!((code, rule), (Code::InvalidAccount, "no-account"));
    assert_eq!(
        msg,
        "mlpolicy: this job names no account and slurmctld knows no default account for its user, so its cloud domain account cannot be chosen: pass -A ACCOUNT"
    );
    // onprem tags its admin_comment with the account: it needs one too.
    let (_, rule, _) = refused(tag(&p, &sub(&["gpu"], None), &no_default));
    assert_eq!(rule, "no-account");
    // Exempt: tagged without the account.
    let mut s = sub(&["cloud"], None);
    s.exempt = true;
    let t = tag(&p, &s, &no_default).unwrap();
    assert_eq!(t, tags("cloud", None, None));
    assert_eq!(
        t.admin_comment.as_deref(),
        Some(r#"{"mlpolicy":{"domain":"cloud"}}"#)
    );
}

/// A default account that is a shadow (`sacctmgr ... defaultaccount=proj_cloud`) stands
/// for its parent, as the same account named with -A does: before, a cloud job was refused
/// (`proj_cloud` is not in allowed_accounts) while `-A proj_cloud` was accepted, and an
/// on-premises job was left to Slurm's default, charged to the cloud shadow.
#[test]
fn a_shadow_default_account_stands_for_its_parent() {
    let p = policy();
    let shadow = || Some("proj_cloud".to_string());
    let t = tag(&p, &sub(&["cloud"], None), &shadow).unwrap();
    assert_eq!(t, tags("cloud", Some("proj_cloud"), Some("proj")));
    let t = tag(&p, &sub(&["gpu"], None), &shadow).unwrap();
    assert_eq!(t, tags("onprem", Some("proj"), Some("proj")));
    // A default that is no shadow is left for Slurm to fill in.
    let t = tag(&p, &sub(&["gpu"], None), &default_proj).unwrap();
    assert_eq!(t, tags("onprem", None, Some("proj")));
}

#[test]
fn the_default_account_is_read_only_when_needed() {
    let p = Policy::parse(
        r#"{"accounting": {"domains": {"cloud": {"partitions": ["cloud"], "wckey": true}}}}"#,
        "t",
        &|_| None,
    )
    .unwrap();
    let asked = std::cell::Cell::new(false);
    let lookup = || {
        asked.set(true);
        None
    };
    let t = tag(&p, &sub(&["cloud"], None), &lookup).unwrap();
    assert_eq!(t.wckey.as_deref(), Some("cloud"));
    assert_eq!(t.account, None);
    assert!(!asked.get());
    // No accounting section: nothing at all.
    let t = tag(&Policy::default(), &sub(&["cloud"], None), &lookup).unwrap();
    assert_eq!(t, Tags::default());
    assert!(!asked.get());
}

#[test]
fn allowed_accounts_name_the_domain_and_who_to_ask() {
    let p = policy();
    let (code, rule, msg) = refused(tag(&p, &sub(&["cloud"], Some("other")), &no_default));
    assert_eq!((code, rule), (Code::AccessDenied, "domain-access"));
    assert_eq!(
        msg,
        "mlpolicy: account other may not use the cloud domain (partitions cloud); ask hpc-help@example.org"
    );
    // The default account is judged the same way.
    let other = || Some("other".to_string());
    let (_, rule, _) = refused(tag(&p, &sub(&["cloud"], None), &other));
    assert_eq!(rule, "domain-access");
    // Exempt users are tagged, not refused.
    let mut s = sub(&["cloud"], Some("other"));
    s.exempt = true;
    let t = tag(&p, &s, &no_default).unwrap();
    assert_eq!(t, tags("cloud", Some("other_cloud"), Some("other")));
}

#[test]
fn a_list_across_domains_follows_span() {
    let mut p = policy();
    let (code, rule, msg) = refused(tag(
        &p,
        &sub(&["gpu", "cloud", "cloud-big"], Some("proj")),
        &no_default,
    ));
    assert_eq!((code, rule), (Code::InvalidPartition, "domain-span"));
    assert_eq!(
        msg,
        "mlpolicy: partitions gpu,cloud,cloud-big lie in more than one accounting domain (onprem, cloud), whose usage is accounted apart: submit to one domain's partitions (-p gpu or -p cloud,cloud-big)"
    );
    // Within one domain a list is fine.
    let t = tag(&p, &sub(&["cloud", "cloud-big"], Some("proj")), &no_default).unwrap();
    assert_eq!(t.account.as_deref(), Some("proj_cloud"));
    // Exempt: accepted untagged.
    let mut s = sub(&["gpu", "cloud"], Some("proj"));
    s.exempt = true;
    assert_eq!(tag(&p, &s, &no_default).unwrap(), Tags::default());

    p.accounting.as_mut().unwrap().span = Span::Untagged;
    let t = tag(&p, &sub(&["gpu", "cloud"], Some("proj")), &no_default).unwrap();
    assert_eq!(t, Tags::default());
    // Still only for accounts allowed in every domain of the list.
    let (_, rule, msg) = refused(tag(&p, &sub(&["gpu", "cloud"], Some("other")), &no_default));
    assert_eq!(rule, "domain-access");
    assert!(msg.contains("may not use the cloud domain"), "{msg}");
}

/// slurmctld splits `-p` with strtok: empty entries (`cloud,`, `,cloud`, `cloud,,x`) name
/// no partition. Counted as onprem they made `-p cloud,` a list across domains: refused
/// with "-p " as a choice, or, with `span: untagged`, run in the cloud untagged (charged
/// to the parent account, outside the shadow budget).
#[test]
fn empty_entries_of_a_list_name_no_partition() {
    let mut p = policy();
    for parts in [
        &["cloud", ""][..],
        &["", "cloud"],
        &["cloud", "", "cloud-big"],
    ] {
        let t = tag(&p, &sub(parts, Some("proj")), &no_default).unwrap();
        assert_eq!(
            t,
            tags("cloud", Some("proj_cloud"), Some("proj")),
            "{parts:?}"
        );
    }
    p.accounting.as_mut().unwrap().span = Span::Untagged;
    let t = tag(&p, &sub(&["cloud", ""], Some("proj")), &no_default).unwrap();
    assert_eq!(t, tags("cloud", Some("proj_cloud"), Some("proj")));
    let (_, rule, _) = refused(tag(&p, &sub(&["", ""], Some("proj")), &no_default));
    assert_eq!(rule, "domain-unknown");
}

#[test]
fn an_unknown_partition_is_refused_where_domains_exist() {
    let p = policy();
    let (code, rule, _) = refused(tag(&p, &sub(&[], Some("proj")), &no_default));
    assert_eq!((code, rule), (Code::InvalidPartition, "domain-unknown"));
    let only_onprem = Policy::parse(
        r#"{"accounting": {"domains": {"onprem": {"wckey": true}}}}"#,
        "t",
        &|_| None,
    )
    .unwrap();
    let t = tag(&only_onprem, &sub(&[], Some("proj")), &no_default).unwrap();
    assert_eq!(t.wckey.as_deref(), Some("onprem"));
}

fn update(set: impl FnOnce(&mut Job)) -> Job {
    let mut j = Job {
        uid: 1001,
        update: true,
        ..Job::default()
    };
    set(&mut j);
    j
}

fn update_refusal(p: &Policy, j: &Job) -> Option<&'static str> {
    match evaluate(p, j) {
        Verdict::Refuse(r) => Some(r.rule),
        Verdict::Accept { .. } => None,
    }
}

#[test]
fn updates_cannot_untag() {
    let p = policy();
    for (j, rule) in [
        (
            update(|j| j.account = Some("proj".into())),
            Some("update-domain-tag"),
        ),
        (
            update(|j| j.wckey = Some(String::new())),
            Some("update-domain-tag"),
        ),
        (
            update(|j| j.admin_comment = Some(String::new())),
            Some("update-domain-tag"),
        ),
        (
            update(|j| j.partition = Some("gpu".into())),
            Some("update-domain-partition"),
        ),
        (update(|j| j.time_limit = Some(10)), None),
    ] {
        assert_eq!(update_refusal(&p, &j), rule, "{j:?}");
    }
    let j = update(|j| j.wckey = Some("x".into()));
    match evaluate(&p, &j) {
        Verdict::Refuse(r) => assert_eq!(
            r.message,
            "mlpolicy: a job's WCKey is its accounting domain's wckey tag, set at submission, and cannot be changed by an update here: cancel the job and submit it again with the new value (or ask an admin)"
        ),
        v => panic!("{v:?}"), // ok-panic: test
    }
    let j = update(|j| j.partition = Some("onprem".into()));
    match evaluate(&p, &j) {
        Verdict::Refuse(r) => assert_eq!(
            r.message,
            "mlpolicy: a job cannot be moved to partition onprem by an update here: its accounting domain's tags were set at submission and an update cannot show the job's partition to redo them; cancel the job and submit it again with -p onprem (or ask an admin)"
        ),
        v => panic!("{v:?}"), // ok-panic: test
    }
    // An empty Partition= moves the job to slurmctld's default partition (26.05 accepts
    // it: a cloud job went to the on-premises default with its cloud tags; with a cloud
    // default an on-premises job would run there charged to its parent account).
    let j = update(|j| j.partition = Some(String::new()));
    match evaluate(&p, &j) {
        Verdict::Refuse(r) => assert_eq!(
            (r.rule, r.message.as_str()),
            ("update-domain-partition", "mlpolicy: a job cannot be moved to the default partition by an update here: its accounting domain's tags were set at submission and an update cannot show the job's partition to redo them; cancel the job and submit it again with -p PARTITION (or ask an admin)")
        ),
        v => panic!("{v:?}"), // ok-panic: test
    }
    // Admins may.
    let mut j = update(|j| j.partition = Some("gpu".into()));
    j.uid = 0;
    assert_eq!(update_refusal(&p, &j), None);
    // A policy that tags no wckey lets wckeys change.
    let p = Policy::parse(
        r#"{"accounting": {"domains": {"cloud": {"partitions": ["cloud"], "account_suffix": "_c"}}}}"#,
        "t",
        &|_| None,
    )
    .unwrap();
    assert_eq!(
        update_refusal(&p, &update(|j| j.wckey = Some("x".into()))),
        None
    );
    assert_eq!(
        update_refusal(&p, &update(|j| j.account = Some("x".into()))),
        Some("update-domain-tag")
    );
}

fn account() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("proj".to_string()),
        Just("proj_cloud".to_string()),
        Just("vision".to_string()),
        Just("vision-aws".to_string()),
        Just("vision_cloud".to_string()),
        "[a-z][a-z0-9_-]{0,12}",
    ]
}

fn partitions() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            Just("cloud".to_string()),
            Just("cloud-big".to_string()),
            Just("gpu".to_string()),
            Just("onprem".to_string()),
        ],
        1..3,
    )
}

proptest! {
    /// Tagging a tagged job changes nothing: the account it was given, named again, is
    /// given again, with the same parent in the admin_comment.
    #[test]
    fn tagging_is_idempotent(parts in partitions(), a in account(), exempt in any::<bool>()) {
        let p = policy();
        let s = Submission { partitions: parts, account: Some(a.clone()), exempt };
        if let Ok(first) = tag(&p, &s, &no_default) {
            let charged = first.account.clone().unwrap_or(a);
            let again = Submission { account: Some(charged), ..s };
            let second = tag(&p, &again, &no_default).unwrap();
            prop_assert_eq!(second.account, None);
            prop_assert_eq!(second.admin_comment, first.admin_comment);
            prop_assert_eq!(second.wckey, first.wckey);
        }
    }

    /// The account charged depends only on (domain, parent account): not on which of the
    /// domain's partitions, nor on whether the parent or its shadow was named.
    #[test]
    fn the_charged_account_depends_on_domain_and_account(a in account(), parts in partitions()) {
        let p = policy();
        let acct = p.accounting.as_ref().unwrap();
        let s = Submission { partitions: parts.clone(), account: Some(a.clone()), exempt: true };
        let t = tag(&p, &s, &no_default).unwrap();
        let Some(domain) = t.domain.clone() else {
            prop_assert_eq!(t, Tags::default());
            return Ok(());
        };
        let parent = acct.shadow_owner(&a).map_or(a.clone(), |(_, p)| p);
        let expected = match acct.domain(&domain).and_then(|d| d.shadow_account(&parent)) {
            Some(shadow) => shadow,
            None => parent.clone(),
        };
        prop_assert_eq!(t.account.unwrap_or(a), expected);
        for d in acct.domains.values() {
            if let Some(shadow) = d.shadow_account(&parent) {
                prop_assert_eq!(d.shadow_account(&shadow), Some(shadow));
            }
        }
    }

    /// Whatever a user names, a job admitted in one domain carries that domain's tags.
    #[test]
    fn admitted_jobs_are_always_tagged(parts in partitions(), a in proptest::option::of(account())) {
        let p = policy();
        let s = Submission { partitions: parts, account: a, exempt: false };
        if let Ok(t) = tag(&p, &s, &default_proj) {
            let d = t.domain.clone().unwrap();
            prop_assert_eq!(t.wckey.as_deref(), Some(d.as_str()));
            prop_assert!(t.admin_comment.is_some());
        }
    }
}
