//! slurmdbd stores a job's TRES as `id=count` pairs (`1=8,2=16000,4=1,5=80,1001=2`): ids
//! of the cluster's TRES table (`sacctmgr show tres`), which names them (`cpu`, `billing`,
//! `gres/gpu`). sacct turns them into names for printing; mlacct reads the counts by id.

/// The count of TRES `id` in a stored TRES string; 0 when absent. Entries that are not
/// `id=count` are an error naming the string.
pub fn count(stored: &str, id: u32) -> Result<u64, String> {
    let mut found = 0;
    for entry in stored.split(',').filter(|e| !e.is_empty()) {
        let bad = || format!("unreadable TRES string {stored:?} (at {entry:?})");
        let (k, v) = entry.split_once('=').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let v: u64 = v.trim().parse().map_err(|_| bad())?;
        if k == id {
            found = v;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_by_id() {
        let s = "1=8,2=16000,4=1,5=80,1001=2";
        assert_eq!(count(s, 1), Ok(8));
        assert_eq!(count(s, 5), Ok(80));
        assert_eq!(count(s, 1001), Ok(2));
        assert_eq!(count(s, 1002), Ok(0));
        assert_eq!(count("", 1), Ok(0));
        assert_eq!(
            count("1=8,x", 1),
            Err("unreadable TRES string \"1=8,x\" (at \"x\")".into())
        );
        assert!(count("1=-2", 1).is_err());
    }
}
