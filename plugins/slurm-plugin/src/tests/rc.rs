use super::*;

#[test]
fn values_match_slurm_errno_h() {
    assert_eq!(SUCCESS, 0);
    assert_eq!(ERROR, -1);
    assert_eq!(ESLURM_INVALID_PARTITION_NAME, 2000);
    assert_eq!(ESLURM_ACCESS_DENIED, 2002);
    assert_eq!(ESLURM_INVALID_GRES, 2072);
    assert_eq!(ESLURM_INVALID_TRES, 2115);
}
