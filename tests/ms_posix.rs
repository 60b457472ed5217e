//! The POSIX suite (`elkfs_harness::posix`) through a real mfsmount,
//! against the elkfs master with elkfs chunkservers and with real ones,
//! and against the real mfsmaster as the reference the suite itself is
//! checked by.

use elkfs_harness::{Cluster, MasterKind};

fn suite(master: MasterKind, real_cs: usize, elkfs_cs: usize) {
    let c = Cluster::builder()
        .master_kind(master)
        .real_chunkservers(real_cs)
        .elkfs_chunkservers(elkfs_cs)
        .mount(true)
        .start();
    let root = c.path("posix");
    std::fs::create_dir(&root).unwrap();
    elkfs_harness::posix::run_suite(&root);
}

#[test]
fn posix_suite_on_the_real_master() {
    suite(MasterKind::Real, 1, 0);
}

#[test]
fn posix_suite_on_elkfs_master_with_elkfs_chunkservers() {
    suite(MasterKind::Elkfs, 0, 3);
}

#[test]
fn posix_suite_on_elkfs_master_with_real_chunkservers() {
    suite(MasterKind::Elkfs, 3, 0);
}

/// A mount of a subfolder (`mfssubfolder`) sees that folder as its root,
/// and what it writes appears in the folder for everyone else.
#[test]
fn a_subfolder_mount_sees_its_folder_as_root() {
    let c = Cluster::builder().master_kind(MasterKind::Elkfs).elkfs_chunkservers(1).mount(true).start();
    std::fs::create_dir_all(c.path("projects/alpha")).unwrap();
    std::fs::write(c.path("projects/alpha/readme"), b"alpha").unwrap();
    std::fs::write(c.path("outside"), b"no").unwrap();
    let sub = elkfs_harness::Mount::start(
        &c.netns().path(),
        &c.addr().to_string(),
        c.ports().client,
        &c.dir().join("mnt-alpha"),
        &["mfssubfolder=/projects/alpha".to_string()],
        &c.dir().join("mount-alpha.log"),
    );
    let root = sub.path();
    assert_eq!(std::fs::read(root.join("readme")).unwrap(), b"alpha");
    assert!(!root.join("outside").exists(), "the subfolder mount shows the file system's root");
    std::fs::create_dir(root.join("new")).unwrap();
    std::fs::write(root.join("new/file"), b"written below").unwrap();
    assert_eq!(std::fs::read(c.path("projects/alpha/new/file")).unwrap(), b"written below");
    let mut names: Vec<String> =
        std::fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["new", "readme"]);
    let ls = std::process::Command::new("ls").arg("-a").arg(root).output().expect("ls");
    assert!(ls.status.success(), "ls -a of the subfolder mount's root");
}
