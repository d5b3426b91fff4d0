use super::*;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::symlink;

/// A sysfs fixture: `devices` as (name, driver) under class/infiniband.
fn sysfs(devices: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let class = d.path().join("class/infiniband");
    std::fs::create_dir_all(&class).unwrap();
    for (name, driver) in devices {
        let dev = d.path().join("devices").join(name);
        std::fs::create_dir_all(&dev).unwrap();
        let drv = d.path().join("bus/pci/drivers").join(driver);
        std::fs::create_dir_all(&drv).unwrap();
        symlink(&drv, dev.join("driver")).unwrap();
        std::fs::create_dir_all(class.join(name)).unwrap();
        symlink(&dev, class.join(name).join("device")).unwrap();
    }
    d
}

#[test]
fn efa_infiniband_and_none_are_told_apart() {
    let efa = sysfs(&[("rdmap16s27", "efa"), ("rdmap32s27", "efa")]);
    let d = detect(efa.path());
    assert_eq!(d.fabric, Fabric::Efa);
    assert_eq!(d.devices[0], ("rdmap16s27".to_string(), "efa".to_string()));
    assert_eq!(
        detect(sysfs(&[("mlx5_0", "mlx5_core")]).path()).fabric,
        Fabric::Infiniband
    );
    assert_eq!(
        detect(sysfs(&[("mlx5_0", "mlx5_core"), ("efa_0", "efa")]).path()).fabric,
        Fabric::Efa
    );
    assert_eq!(detect(sysfs(&[]).path()).fabric, Fabric::None);
    // No class/infiniband at all (no RDMA drivers loaded).
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(detect(empty.path()).fabric, Fabric::None);
}

#[test]
fn only_existing_library_directories_are_used_and_the_plugin_is_found() {
    let root = tempfile::tempdir().unwrap();
    let ofi = root.path().join("opt/amazon/ofi-nccl/lib/x86_64-linux-gnu");
    let efa = root.path().join("opt/amazon/efa/lib");
    std::fs::create_dir_all(&ofi).unwrap();
    std::fs::create_dir_all(&efa).unwrap();
    std::fs::write(ofi.join("libnccl-ofi-tuner.so"), "").unwrap();
    std::fs::write(efa.join("libfabric.so.1"), "").unwrap();
    // An empty directory of the list is left out.
    std::fs::create_dir_all(
        root.path()
            .join("opt/amazon/ofi-nccl/lib/aarch64-linux-gnu"),
    )
    .unwrap();
    let profile = &crate::config::Profiles::builtin().profiles["efa"];
    let libs = find_libraries(profile, root.path());
    assert_eq!(libs.dirs, vec![ofi.clone(), efa.clone()]);
    assert_eq!(libs.nccl_net_plugin, None);
    std::fs::write(ofi.join("libnccl-net.so"), "").unwrap();
    let libs = find_libraries(profile, root.path());
    assert_eq!(libs.nccl_net_plugin, Some(ofi.join("libnccl-net.so")));
    let w = missing_plugin_warning("efa", profile, Path::new("/"));
    assert!(
        w.starts_with("mlenv: warning: this node has an EFA device but no aws-ofi-nccl library (libnccl-net*.so) in /opt/amazon/ofi-nccl/lib/x86_64-linux-gnu, "),
        "{w}"
    );
}

fn prepend(dirs: &[PathBuf], current: Option<&[u8]>) -> Option<Vec<u8>> {
    prepend_paths(dirs, current.map(OsStr::from_bytes)).map(OsString::into_vec)
}

#[test]
fn library_paths_go_in_front_once() {
    let dirs = vec![PathBuf::from("/a"), PathBuf::from("/b")];
    assert_eq!(prepend(&dirs, None).as_deref(), Some(&b"/a:/b"[..]));
    assert_eq!(
        prepend(&dirs, Some(b"/usr/lib")).as_deref(),
        Some(&b"/a:/b:/usr/lib"[..])
    );
    assert_eq!(
        prepend(&dirs, Some(b"/b:/c")).as_deref(),
        Some(&b"/a:/b:/c"[..])
    );
    assert_eq!(prepend(&dirs, Some(b"/a:/b")), None);
    assert_eq!(prepend(&[], Some(b"/x")), None);
    // Set but empty: no entry, so no ':' that would add the current directory.
    assert_eq!(prepend(&dirs, Some(b"")).as_deref(), Some(&b"/a:/b"[..]));
}

/// Issue 12: a non-UTF-8 LD_LIBRARY_PATH was rewritten lossily and its empty entries
/// (the current directory, to ld.so) dropped.
#[test]
fn the_users_path_is_kept_byte_for_byte() {
    let dirs = vec![PathBuf::from("/a")];
    for user in [
        &b"/home/\xff\xfelib"[..],
        b"/x::/y",
        b":/x",
        b"/x:",
        b"::",
        b"/home/\xe9t\xe9:",
    ] {
        let mut want = b"/a:".to_vec();
        want.extend_from_slice(user);
        assert_eq!(prepend(&dirs, Some(user)), Some(want), "{user:?}");
    }
    // A directory that is not UTF-8 itself is compared as bytes too.
    let odd = PathBuf::from(OsStr::from_bytes(b"/opt/\xff"));
    assert_eq!(
        prepend(std::slice::from_ref(&odd), Some(b"/opt/\xff:/x")),
        None
    );
    assert_eq!(
        prepend(&[odd, PathBuf::from("/a")], Some(b"/x")).as_deref(),
        Some(&b"/opt/\xff:/a:/x"[..])
    );
}
