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
