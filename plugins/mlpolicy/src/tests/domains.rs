use super::*;
use crate::config::Policy;

const EXAMPLE: &str = r#"{"accounting": {
  "currency": "USD",
  "span": "refuse",
  "domains": {
    "onprem": { "wckey": true, "admin_comment": true, "cost_per_billing_hour": 0.0 },
    "cloud": {
      "partitions": ["cloud"],
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

fn parse(text: &str) -> Result<Policy, String> {
    Policy::parse(text, "p.json", &|_| None).map_err(|e| e.0)
}

fn example() -> Accounting {
    parse(EXAMPLE).unwrap().accounting.unwrap()
}

#[test]
fn the_schema_parses() {
    let a = example();
    assert_eq!(a.currency, "USD");
    assert_eq!(a.span, Span::Refuse);
    let cloud = a.domain("cloud").unwrap();
    assert_eq!(cloud.partitions, ["cloud"]);
    assert_eq!(cloud.contact.as_deref(), Some("hpc-help@example.org"));
    assert_eq!(cloud.cost_per_billing_hour, Some(0.01));
    assert!(cloud.wckey && cloud.admin_comment && cloud.tags_account());
    let onprem = a.domain(ONPREM).unwrap();
    assert!(!onprem.tags_account());
    assert_eq!(onprem.cost_per_billing_hour, Some(0.0));
    assert!(a.domain("gcp").is_none());
}

#[test]
fn defaults_and_no_section() {
    assert_eq!(parse("{}").unwrap().accounting, None);
    let a = parse(r#"{"accounting": {}}"#).unwrap().accounting.unwrap();
    assert_eq!(a, Accounting::default());
    assert_eq!(a.currency, "USD");
    assert_eq!(a.span, Span::Refuse);
    let a = parse(r#"{"accounting": {"span": "untagged"}}"#)
        .unwrap()
        .accounting
        .unwrap();
    assert_eq!(a.span, Span::Untagged);
}

#[test]
fn partitions_map_to_domains() {
    let a = example();
    assert_eq!(a.domain_of("cloud"), "cloud");
    assert_eq!(a.domain_of("onprem"), ONPREM);
    assert_eq!(a.domain_of("anything"), ONPREM);
    assert_eq!(a.domain_of_all(&["cloud"]), Some("cloud"));
    assert_eq!(a.domain_of_all(&["gpu", "cpu"]), Some(ONPREM));
    assert_eq!(a.domain_of_all(&["onprem", "cloud"]), None);
    assert_eq!(a.domain_of_all(&[]), Some(ONPREM));
}

#[test]
fn shadow_accounts() {
    let a = example();
    let cloud = a.domain("cloud").unwrap();
    assert_eq!(cloud.shadow_account("proj").as_deref(), Some("proj_cloud"));
    assert_eq!(
        cloud.shadow_account("vision").as_deref(),
        Some("vision-aws")
    );
    // Already the shadow: unchanged.
    assert_eq!(
        cloud.shadow_account("proj_cloud").as_deref(),
        Some("proj_cloud")
    );
    assert_eq!(
        cloud.shadow_account("vision-aws").as_deref(),
        Some("vision-aws")
    );
    assert_eq!(cloud.parent_account("proj_cloud").as_deref(), Some("proj"));
    assert_eq!(
        cloud.parent_account("vision-aws").as_deref(),
        Some("vision")
    );
    // vision's shadow is vision-aws, so vision_cloud is no one's shadow.
    assert_eq!(cloud.parent_account("vision_cloud"), None);
    assert_eq!(cloud.parent_account("_cloud"), None);
    assert_eq!(cloud.parent_account("proj"), None);
    assert_eq!(a.domain(ONPREM).unwrap().shadow_account("proj"), None);
    assert_eq!(
        a.shadow_owner("proj_cloud"),
        Some(("cloud", "proj".to_string()))
    );
    assert_eq!(a.shadow_owner("proj"), None);
    assert!(cloud.allows("proj") && cloud.allows("vision") && !cloud.allows("other"));
    assert!(a.domain(ONPREM).unwrap().allows("other"));
}

#[test]
fn errors_name_the_key() {
    for (section, why) in [
        (
            r#"{"domains": {"onprem": {"partitions": ["a"]}}}"#,
            "p.json: accounting.domains.onprem.partitions: the onprem domain lists no partitions",
        ),
        (
            r#"{"domains": {"cloud": {}}}"#,
            "p.json: accounting.domains.cloud.partitions: lists no partition",
        ),
        (
            r#"{"domains": {"a": {"partitions": ["x"]}, "b": {"partitions": ["y", "x"]}}}"#,
            "p.json: accounting.domains.b.partitions: \"x\" is in domain \"a\" too",
        ),
        (
            r#"{"domains": {"my cloud": {"partitions": ["x"]}}}"#,
            "p.json: accounting.domains: \"my cloud\" is not a domain name",
        ),
        (
            r#"{"domains": {"Cloud": {"partitions": ["x"], "wckey": true}}}"#,
            "p.json: accounting.domains.Cloud.wckey: slurmctld lower-cases wckeys: name the domain \"cloud\"",
        ),
        (
            r#"{"domains": {"c": {"partitions": ["a,b"]}}}"#,
            "p.json: accounting.domains.c.partitions: \"a,b\" is not a partition name",
        ),
        (
            r#"{"domains": {"c": {"partitions": ["x"], "account_suffix": "_Cloud"}}}"#,
            "p.json: accounting.domains.c.account_suffix: \"_Cloud\" is not part of an account name",
        ),
        (
            r#"{"domains": {"c": {"partitions": ["x"], "account_map": {"a": "a"}}}}"#,
            "p.json: accounting.domains.c.account_map: \"a\" -> \"a\" is not a pair",
        ),
        (
            r#"{"domains": {"c": {"partitions": ["x"], "allowed_accounts": [""]}}}"#,
            "p.json: accounting.domains.c.allowed_accounts: \"\" is not an account name",
        ),
        (
            r#"{"domains": {"c": {"partitions": ["x"], "contact": " "}}}"#,
            "p.json: accounting.domains.c.contact: is empty",
        ),
        (
            r#"{"domains": {"c": {"partitions": ["x"], "cost_per_billing_hour": -1}}}"#,
            "p.json: accounting.domains.c.cost_per_billing_hour: -1 is not a price",
        ),
        (r#"{"currency": ""}"#, "p.json: accounting.currency: is empty"),
    ] {
        let e = parse(&format!(r#"{{"accounting": {section}}}"#)).unwrap_err();
        assert!(e.starts_with(why), "{section}: {e}");
    }
    let e = parse(r#"{"accounting": {"domains": {"c": {"partitions": ["x"], "budget": 1}}}}"#)
        .unwrap_err();
    assert!(e.contains("unknown field `budget`"), "{e}");
    let e = parse(r#"{"accounting": {"span": "split"}}"#).unwrap_err();
    assert!(e.contains("unknown variant `split`"), "{e}");
}

/// A shadow account must name one domain: with suffixes `_cloud` (aws) and `_gcp_cloud`
/// (gcp), `proj_gcp_cloud` read as aws's shadow of `proj_gcp` (the first domain in name
/// order), so a gcp job naming it was charged to `proj_gcp_gcp_cloud` and judged as
/// `proj_gcp`, and mlacct put its budget under aws. Refused at load, naming both keys.
#[test]
fn shadow_accounts_name_one_domain() {
    let two = |a: &str, b: &str| {
        parse(&format!(
            r#"{{"accounting": {{"domains": {{
              "aws": {{"partitions": ["x"], {a}}},
              "gcp": {{"partitions": ["y"], {b}}}}}}}}}"#
        ))
    };
    let e = two(
        r#""account_suffix": "_cloud""#,
        r#""account_suffix": "_gcp_cloud""#,
    )
    .unwrap_err();
    assert_eq!(e, "p.json: accounting.domains.gcp.account_suffix: \"_gcp_cloud\" ends with accounting.domains.aws.account_suffix \"_cloud\": a shadow account such as \"proj_gcp_cloud\" would stand for two domains");
    let e = two(
        r#""account_suffix": "_aws""#,
        r#""account_map": {"vision": "vision_aws"}"#,
    )
    .unwrap_err();
    assert_eq!(e, "p.json: accounting.domains.gcp.account_map: \"vision_aws\" ends with accounting.domains.aws.account_suffix \"_aws\": a shadow account such as \"vision_aws\" would stand for two domains");
    // Different endings are fine, as is one domain's own map beside its suffix.
    two(r#""account_suffix": "_aws""#, r#""account_suffix": "_gcp""#).unwrap();
    parse(EXAMPLE).unwrap();
}
