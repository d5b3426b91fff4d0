//! Our drain reason, `mlhealth: gpu1 ecc uncorrectable=2, gpu6 row remap pending`: the
//! prefix, then the short reason of each drain finding. Written from a run's findings and
//! read back by a later run, which lifts the drain only once it has made again every check
//! the reason names (a check it skipped leaves its item, and the drain, in place).

use crate::evaluate::{Check, Finding, Judged, Severity};

/// Marks a drain as ours: only such a drain is changed or lifted.
pub const PREFIX: &str = "mlhealth:";

/// Longest reason written, to stay readable in `sinfo -R`.
const MAX: usize = 100;

/// The reason for these short reasons, or `None` for none; items past [`MAX`] become
/// `+N more`.
pub fn format<'a>(items: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let items: Vec<&str> = items.into_iter().collect();
    if items.is_empty() {
        return None;
    }
    let mut reason = String::from(PREFIX);
    for (i, r) in items.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let more = format!(", +{} more", items.len() - i);
        if reason.len() + sep.len() + r.len() + more.len() > MAX && i > 0 {
            reason.push_str(&more);
            break;
        }
        reason.push_str(sep);
        reason.push_str(r);
    }
    Some(reason)
}

/// One item of our reason, and the check and GPU it names when it can be read (not
/// `+3 more`, nor what an admin wrote after our prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    pub text: &'a str,
    pub names: Option<(Check, Option<u32>)>,
}

impl Item<'_> {
    fn read(text: &str) -> Item<'_> {
        let (gpu, short) = match text.split_once(' ') {
            Some((first, rest)) => match first.strip_prefix("gpu").map(str::parse::<u32>) {
                Some(Ok(g)) => (Some(g), rest),
                _ => (None, text),
            },
            None => (None, text),
        };
        Item {
            text,
            names: Check::of_short_reason(short).map(|c| (c, gpu)),
        }
    }

    /// The run made the check this item stands on; an item that cannot be read needs a
    /// run that made every check.
    pub fn judged_by(&self, judged: &Judged) -> bool {
        match self.names {
            // `gpu7 nvlink4 down`: that link's state must have been read too.
            Some((Check::Nvlink, Some(g))) => {
                judged.covers(Check::Nvlink, Some(g))
                    && self
                        .text
                        .split(' ')
                        .nth(1)
                        .and_then(|w| w.strip_prefix("nvlink"))
                        .and_then(|n| n.parse().ok())
                        .is_none_or(|link| judged.read_link(g, link))
            }
            Some((check, gpu)) => judged.covers(check, gpu),
            None => judged.complete(),
        }
    }
}

/// The items of a reason of ours; `None` for anyone else's.
pub fn items(reason: &str) -> Option<Vec<Item<'_>>> {
    let rest = reason.strip_prefix(PREFIX)?;
    Some(
        rest.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Item::read)
            .collect(),
    )
}

/// Our reason for a run's findings, on a node that carried `old` (ours, or none): the
/// run's drain findings, then the items of `old` the run did not judge again; all of
/// `old` when an item that cannot be read stays (`+7 more` counts from the items before
/// it). `None`: nothing left to drain for.
pub fn after(old: Option<&str>, findings: &[Finding], judged: &Judged) -> Option<String> {
    let old = old.and_then(items).unwrap_or_default();
    let now: Vec<&str> = findings
        .iter()
        .filter(|f| f.severity == Severity::Drain)
        .map(|f| f.reason.as_str())
        .collect();
    let unread_stays = old
        .iter()
        .any(|i| i.names.is_none() && !i.judged_by(judged));
    let kept = old
        .iter()
        .filter(|i| unread_stays || !i.judged_by(judged))
        .map(|i| i.text)
        .filter(|t| !now.contains(t));
    format(now.iter().copied().chain(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_name_their_check_and_gpu() {
        let names = |r: &str| -> Vec<Option<(Check, Option<u32>)>> {
            items(r).unwrap().iter().map(|i| i.names).collect()
        };
        assert_eq!(
            names("mlhealth: gpu1 ecc uncorrectable=2, gpus 7/8, xid79 pci 0000:3a:00, gpu3 busy, +2 more"),
            vec![
                Some((Check::Ecc, Some(1))),
                Some((Check::GpuCount, None)),
                Some((Check::Xid, None)),
                Some((Check::Busy, Some(3))),
                None,
            ]
        );
        assert_eq!(
            names("mlhealth: gpu7 nvlink4 down"),
            vec![Some((Check::Nvlink, Some(7)))]
        );
        assert_eq!(names("mlhealth: cooling broken"), vec![None]);
        assert_eq!(items("admin: bad fan"), None);
    }
}
