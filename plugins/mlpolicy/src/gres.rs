//! GPU requests in the `tres_per_job` / `tres_per_node` / `tres_per_socket` /
//! `tres_per_task` strings of `job_desc_msg_t`, in every form Slurm uses across releases:
//! `gres:gpu:4` (22.05), `gres/gpu:4` (23.11+), `gres/gpu:h100:4`, `gres/gpu=1` (per task),
//! bare `gres/gpu` (one), several entries comma-separated, other GRES alongside. The one
//! parser of these strings in the project.

use std::fmt;

/// One `gpu` entry: an optional type and a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuEntry {
    pub gpu_type: Option<String>,
    pub count: u64,
}

/// A string Slurm would not have produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTres {
    pub input: String,
    pub why: String,
}

impl fmt::Display for BadTres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read the GRES request {:?}: {}",
            self.input, self.why
        )
    }
}

impl std::error::Error for BadTres {}

/// The GRES names that count as GPUs when a policy names none.
pub const DEFAULT_GPU_GRES: &[&str] = &["gpu"];

/// The `gpu` entries of one TRES string (other GRES and TRES are skipped).
pub fn gpu_entries(tres: &str) -> Result<Vec<GpuEntry>, BadTres> {
    gres_entries(tres, DEFAULT_GPU_GRES)
}

/// The entries of one TRES string whose GRES name is in `names`, each as the GPUs it can
/// occupy: a `gpu` or `shard` count as such (shards of one job may come from several GPUs,
/// so N shards can touch up to N GPUs), any `mps` count as one GPU, since Slurm serves a
/// job's MPS share on a node from a single GPU (doc/html/gres.shtml, 22.05 to 26.05).
pub fn gres_entries<S: AsRef<str>>(tres: &str, names: &[S]) -> Result<Vec<GpuEntry>, BadTres> {
    let bad = |why: &str| BadTres {
        input: tres.to_string(),
        why: why.to_string(),
    };
    let mut out = Vec::new();
    for entry in tres.split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        // `gres:` (22.05) or `gres/` (23.11+) or nothing (a bare `gpu:2`).
        let rest = entry
            .strip_prefix("gres:")
            .or_else(|| entry.strip_prefix("gres/"))
            .unwrap_or(entry);
        // `name[:type][:count]` or `name[:type]=count`.
        let (spec, eq_count) = match rest.split_once('=') {
            Some((s, c)) => (s, Some(c)),
            None => (rest, None),
        };
        let mut parts = spec.split(':');
        let name = parts.next().unwrap_or("");
        if !names.iter().any(|n| n.as_ref() == name) {
            if name.is_empty() {
                return Err(bad("an entry has no name"));
            }
            continue;
        }
        let rest: Vec<&str> = parts.collect();
        let (gpu_type, count) = match (rest.as_slice(), eq_count) {
            ([], None) => (None, 1),
            ([], Some(c)) => (None, count(c).map_err(|w| bad(&w))?),
            ([x], None) if is_count(x) => (None, count(x).map_err(|w| bad(&w))?),
            ([t], None) => (Some(gpu_type(t).map_err(|w| bad(&w))?), 1),
            ([t], Some(c)) => (
                Some(gpu_type(t).map_err(|w| bad(&w))?),
                count(c).map_err(|w| bad(&w))?,
            ),
            ([t, c], None) => (
                Some(gpu_type(t).map_err(|w| bad(&w))?),
                count(c).map_err(|w| bad(&w))?,
            ),
            _ => return Err(bad("too many ':' in a gpu entry")),
        };
        let count = if name == "mps" { count.min(1) } else { count };
        out.push(GpuEntry { gpu_type, count });
    }
    Ok(out)
}

fn is_count(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// A count, with Slurm's k/m/g suffixes (x1024).
fn count(s: &str) -> Result<u64, String> {
    let (digits, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 1 << 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a count"))
}

fn gpu_type(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a GPU type"))
    }
}

/// A job's GPU request, summed per TRES string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuRequest {
    pub per_job: Option<u64>,
    pub per_node: Option<u64>,
    pub per_socket: Option<u64>,
    pub per_task: Option<u64>,
    /// Every type named, in order, without repeats.
    pub types: Vec<String>,
}

impl GpuRequest {
    /// Reads the four `tres_per_*` fields (`None` where the field is unset), counting the
    /// `gpu` GRES.
    pub fn from_tres(
        per_job: Option<&str>,
        per_node: Option<&str>,
        per_socket: Option<&str>,
        per_task: Option<&str>,
    ) -> Result<GpuRequest, BadTres> {
        Self::counting(DEFAULT_GPU_GRES, per_job, per_node, per_socket, per_task)
    }

    /// As [`GpuRequest::from_tres`], counting the GRES `names` as GPUs (a policy's
    /// `gpu_gres`, e.g. `gpu`, `shard`, `mps`).
    pub fn counting<S: AsRef<str>>(
        names: &[S],
        per_job: Option<&str>,
        per_node: Option<&str>,
        per_socket: Option<&str>,
        per_task: Option<&str>,
    ) -> Result<GpuRequest, BadTres> {
        let mut r = GpuRequest::default();
        let read = |s: Option<&str>, types: &mut Vec<String>| -> Result<Option<u64>, BadTres> {
            let Some(s) = s else { return Ok(None) };
            let entries = gres_entries(s, names)?;
            if entries.is_empty() {
                return Ok(None);
            }
            for e in &entries {
                if let Some(t) = &e.gpu_type {
                    if !types.contains(t) {
                        types.push(t.clone());
                    }
                }
            }
            Ok(Some(
                entries
                    .iter()
                    .map(|e| e.count)
                    .fold(0u64, u64::saturating_add),
            ))
        };
        let mut types = Vec::new();
        r.per_job = read(per_job, &mut types)?;
        r.per_node = read(per_node, &mut types)?;
        r.per_socket = read(per_socket, &mut types)?;
        r.per_task = read(per_task, &mut types)?;
        r.types = types;
        Ok(r)
    }

    /// Whether any field asks for GPUs (a `gpu:0` request is still a request).
    pub fn asked(&self) -> bool {
        self.per_job.is_some()
            || self.per_node.is_some()
            || self.per_socket.is_some()
            || self.per_task.is_some()
    }

    /// Whether a field asks for zero GPUs.
    pub fn has_zero(&self) -> bool {
        [self.per_job, self.per_node, self.per_socket, self.per_task].contains(&Some(0))
    }
}

#[cfg(test)]
#[path = "tests/gres.rs"]
mod tests;
