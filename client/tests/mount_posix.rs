//! `elkfs mount` under the POSIX suite (`elkfs_harness::posix`), against
//! the real mfsmaster with real chunkservers and against the elkfs master
//! with elkfs chunkservers.

use elkfs_harness::{ClientKind, Cluster, MasterKind};

fn suite(master: MasterKind, real_cs: usize, elkfs_cs: usize) {
    let c = Cluster::builder()
        .master_kind(master)
        .real_chunkservers(real_cs)
        .elkfs_chunkservers(elkfs_cs)
        .client(ClientKind::Elkfs)
        .mount(true)
        .start();
    // Registered is not enough: the real master refuses writes (ENOSPC)
    // until the chunkservers reported their space.
    c.wait_chunkservers_registered(c.chunkservers().len(), std::time::Duration::from_secs(60));
    let root = c.path("posix");
    std::fs::create_dir(&root).unwrap();
    elkfs_harness::posix::run_suite(&root);
}

#[test]
fn posix_suite_through_elkfs_mount_on_the_real_master() {
    suite(MasterKind::Real, 1, 0);
}

#[test]
fn posix_suite_through_elkfs_mount_on_elkfs_master() {
    suite(MasterKind::Elkfs, 0, 2);
}
