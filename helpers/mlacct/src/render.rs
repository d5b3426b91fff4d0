//! The report as people read it (a table), as spreadsheets read it (CSV) and as programs
//! read it (JSON). Seconds are exact integers in CSV and JSON; hours are derived.

use serde_json::{json, Value};

use crate::report::{sum, Budget, Row, Totals};

/// What the report is about, printed above the table and in the JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    pub cluster: String,
    /// As Slurm prints times.
    pub since: String,
    pub until: String,
    pub currency: String,
}

fn money(cost: Option<f64>) -> String {
    cost.map_or_else(|| "-".into(), |c| format!("{c:.2}"))
}

fn cells(domain: &str, account: &str, user: &str, t: &Totals, cost: Option<f64>) -> Vec<String> {
    vec![
        domain.into(),
        account.into(),
        user.into(),
        t.jobs.to_string(),
        format!("{:.2}", t.gpu_hours()),
        format!("{:.2}", t.cpu_hours()),
        format!("{:.2}", t.billing_hours()),
        money(cost),
    ]
}

/// Left-aligned text, right-aligned numbers, columns as wide as their widest cell.
fn layout(rows: &[Vec<String>], numeric_from: usize) -> String {
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len)).map(width).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i >= numeric_from {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The table: one line per (domain, account, user), a total per domain and one for all.
pub fn table(h: &Heading, rows: &[Row], budgets: &[Budget]) -> String {
    let mut out = format!(
        "Usage on cluster {} from {} to {} (cost in {})\n\n",
        h.cluster, h.since, h.until, h.currency
    );
    let mut lines = vec![[
        "DOMAIN",
        "ACCOUNT",
        "USER",
        "JOBS",
        "GPU-HOURS",
        "CPU-HOURS",
        "BILLING-HOURS",
        "COST",
    ]
    .map(String::from)
    .to_vec()];
    let mut domains: Vec<&str> = rows.iter().map(|r| r.key.domain.as_str()).collect();
    domains.dedup();
    for d in &domains {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.key.domain == *d).collect();
        for r in &mine {
            lines.push(cells(d, &r.key.account, &r.key.user, &r.totals, r.cost));
        }
        let (t, cost) = sum(mine);
        lines.push(cells(d, "(all)", "(all)", &t, cost));
    }
    let (t, cost) = sum(rows);
    lines.push(cells("(all)", "(all)", "(all)", &t, cost));
    out.push_str(&layout(&lines, 3));
    if !budgets.is_empty() {
        out.push_str(
            "\nBudgets (GrpTRESMins=billing, billing-minutes; used as slurmctld counts it)\n\n",
        );
        let mut lines = vec![[
            "DOMAIN",
            "ACCOUNT",
            "PARENT",
            "LIMIT",
            "USED",
            "LEFT",
            "LEFT-COST",
        ]
        .map(String::from)
        .to_vec()];
        for b in budgets {
            lines.push(vec![
                b.domain.clone(),
                b.account.clone(),
                b.parent.clone(),
                b.limit_mins.to_string(),
                b.used_mins.to_string(),
                b.left_mins.to_string(),
                money(b.left_cost),
            ]);
        }
        out.push_str(&layout(&lines, 3));
    }
    out
}

pub const CSV_HEADER: &str = "domain,account,user,jobs,gpu_hours,cpu_hours,billing_hours,cost,currency,gpu_seconds,cpu_seconds,billing_seconds";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One CSV row per (domain, account, user); cost empty where the domain has no price.
pub fn csv(h: &Heading, rows: &[Row]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for r in rows {
        let t = &r.totals;
        out.push_str(&format!(
            "{},{},{},{},{:.4},{:.4},{:.4},{},{},{},{},{}\n",
            csv_field(&r.key.domain),
            csv_field(&r.key.account),
            csv_field(&r.key.user),
            t.jobs,
            t.gpu_hours(),
            t.cpu_hours(),
            t.billing_hours(),
            r.cost.map_or_else(String::new, |c| format!("{c:.4}")),
            csv_field(&h.currency),
            t.gpu_secs,
            t.cpu_secs,
            t.billing_secs
        ));
    }
    out
}

fn totals_json(t: &Totals, cost: Option<f64>) -> Value {
    json!({
        "jobs": t.jobs,
        "gpu_seconds": t.gpu_secs,
        "cpu_seconds": t.cpu_secs,
        "billing_seconds": t.billing_secs,
        "gpu_hours": t.gpu_hours(),
        "cpu_hours": t.cpu_hours(),
        "billing_hours": t.billing_hours(),
        "cost": cost,
    })
}

/// `{"cluster", "since", "until", "currency", "rows": [...], "total": {...}, "budgets": [...]}`.
pub fn json(h: &Heading, rows: &[Row], budgets: &[Budget]) -> String {
    let rows_json: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = totals_json(&r.totals, r.cost);
            v["domain"] = json!(r.key.domain);
            v["account"] = json!(r.key.account);
            v["user"] = json!(r.key.user);
            v
        })
        .collect();
    let budgets_json: Vec<Value> = budgets
        .iter()
        .map(|b| {
            json!({
                "domain": b.domain, "account": b.account, "parent": b.parent,
                "limit_billing_minutes": b.limit_mins, "used_billing_minutes": b.used_mins,
                "left_billing_minutes": b.left_mins, "left_cost": b.left_cost,
            })
        })
        .collect();
    let (t, cost) = sum(rows);
    let doc = json!({
        "cluster": h.cluster,
        "since": h.since,
        "until": h.until,
        "currency": h.currency,
        "rows": rows_json,
        "total": totals_json(&t, cost),
        "budgets": budgets_json,
    });
    format!("{doc:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Key;

    fn heading() -> Heading {
        Heading {
            cluster: "c1".into(),
            since: "2026-12-01T00:00:00".into(),
            until: "2026-12-02T00:00:00".into(),
            currency: "USD".into(),
        }
    }

    fn rows() -> Vec<Row> {
        let row = |d: &str, a: &str, secs: u64, cost: Option<f64>| Row {
            key: Key {
                domain: d.into(),
                account: a.into(),
                user: "alice".into(),
            },
            totals: Totals {
                jobs: 2,
                cpu_secs: 4 * secs,
                gpu_secs: secs,
                billing_secs: 100 * secs,
            },
            cost,
        };
        vec![
            row("cloud", "proj_cloud", 3600, Some(1.0)),
            row("onprem", "proj", 1800, None),
        ]
    }

    #[test]
    fn table_has_rows_and_totals() {
        let t = table(&heading(), &rows(), &[]);
        assert_eq!(
            t,
            "Usage on cluster c1 from 2026-12-01T00:00:00 to 2026-12-02T00:00:00 (cost in USD)\n\n\
             DOMAIN  ACCOUNT     USER   JOBS  GPU-HOURS  CPU-HOURS  BILLING-HOURS  COST\n\
             cloud   proj_cloud  alice     2       1.00       4.00         100.00  1.00\n\
             cloud   (all)       (all)     2       1.00       4.00         100.00  1.00\n\
             onprem  proj        alice     2       0.50       2.00          50.00     -\n\
             onprem  (all)       (all)     2       0.50       2.00          50.00     -\n\
             (all)   (all)       (all)     4       1.50       6.00         150.00  1.00\n"
        );
    }

    #[test]
    fn csv_and_json_carry_exact_seconds() {
        let c = csv(&heading(), &rows());
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(
            lines[1],
            "cloud,proj_cloud,alice,2,1.0000,4.0000,100.0000,1.0000,USD,3600,14400,360000"
        );
        assert_eq!(
            lines[2],
            "onprem,proj,alice,2,0.5000,2.0000,50.0000,,USD,1800,7200,180000"
        );
        let j: Value = serde_json::from_str(&json(&heading(), &rows(), &[])).unwrap();
        assert_eq!(j["rows"][0]["gpu_seconds"], 3600);
        assert_eq!(j["rows"][1]["cost"], Value::Null);
        assert_eq!(j["total"]["billing_seconds"], 540000);
        assert_eq!(j["total"]["cost"], 1.0);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
