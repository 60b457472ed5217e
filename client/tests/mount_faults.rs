//! `elkfs mount` under faults: a chunkserver SIGKILLed in the middle of a
//! read and of a write at goal 2, the master restarted under load, and the
//! end of the mount on SIGTERM and when the master is gone for good.

use std::process::Command;
use std::time::Duration;

use elkfs_harness::data::{assert_sha256, pattern_sha256, sha256_file, write_pattern_file};
use elkfs_harness::mount::is_mounted;
use elkfs_harness::{ClientKind, Cluster, MasterKind};

const MIB: u64 = 1 << 20;

fn chunkserver_killed(kind: MasterKind, real_cs: usize, elkfs_cs: usize) {
    let mut c = Cluster::builder()
        .master_kind(kind)
        .real_chunkservers(real_cs)
        .elkfs_chunkservers(elkfs_cs)
        .mount(true)
        .start();
    // Registered is not enough: the real master refuses writes (ENOSPC)
    // until the chunkservers reported their space.
    c.wait_chunkservers_registered(c.chunkservers().len(), std::time::Duration::from_secs(60));
    std::fs::create_dir(c.path("g2")).unwrap();
    c.mfs_setgoal(&c.path("g2"), 2);
    let m = c.extra_mount(ClientKind::Elkfs, "e", &[]);
    let len = 200 * MIB;
    // Read: the file has two copies of every chunk; one server dies mid-read.
    let sha = write_pattern_file(&m.path().join("g2/read"), len, 7);
    c.wait_for_goal(&c.path("g2/read"), 2, Duration::from_secs(60));
    c.drop_caches();
    let reader = std::thread::spawn({
        let p = m.path().join("g2/read");
        move || sha256_file(&p)
    });
    std::thread::sleep(Duration::from_millis(400));
    c.chunkserver(0).kill();
    assert_eq!(reader.join().unwrap(), (len, sha), "read while a chunkserver died");
    c.chunkserver(0).start();
    c.wait_chunkservers_registered(3, Duration::from_secs(60));
    // Write: another server dies while a file streams down its chains.
    let writer = std::thread::spawn({
        let p = m.path().join("g2/write");
        move || write_pattern_file(&p, len, 8)
    });
    std::thread::sleep(Duration::from_millis(600));
    c.chunkserver(1).kill();
    let sha = writer.join().unwrap();
    assert_eq!(sha, pattern_sha256(len, 8));
    c.drop_caches();
    assert_sha256(&m.path().join("g2/write"), len, &sha);
    assert_sha256(&c.path("g2/write"), len, &sha);
}

#[test]
fn chunkserver_killed_during_read_and_write_on_the_real_master() {
    chunkserver_killed(MasterKind::Real, 3, 0);
}

#[test]
fn chunkserver_killed_during_read_and_write_on_elkfs_master() {
    chunkserver_killed(MasterKind::Elkfs, 0, 3);
}

fn master_restart(kind: MasterKind, real_cs: usize, elkfs_cs: usize) {
    let mut c = Cluster::builder().master_kind(kind).real_chunkservers(real_cs).elkfs_chunkservers(elkfs_cs).start();
    // Registered is not enough: the real master refuses writes (ENOSPC)
    // until the chunkservers reported their space.
    c.wait_chunkservers_registered(c.chunkservers().len(), std::time::Duration::from_secs(60));
    let m = c.extra_mount(ClientKind::Elkfs, "e", &[]);
    let len = 150 * MIB;
    let src = c.dir().join("source");
    let sha = write_pattern_file(&src, len, 9);
    // The writer is another process: a thread of this one blocked in a
    // FUSE write would hold up the fork that restarts the master.
    let mut dd = Command::new("dd")
        .arg(format!("if={}", src.display()))
        .arg(format!("of={}", m.path().join("busy").display()))
        .args(["bs=1M", "conv=fsync", "status=none"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    c.restart_master();
    assert!(dd.wait().unwrap().success(), "dd through the mount while the master restarted");
    c.drop_caches();
    assert_sha256(&m.path().join("busy"), len, &sha);
    std::fs::write(m.path().join("after"), b"resumed").unwrap();
    assert_eq!(std::fs::read(m.path().join("after")).unwrap(), b"resumed");
}

#[test]
fn master_restarted_under_load_on_elkfs_master() {
    master_restart(MasterKind::Elkfs, 0, 2);
}

#[test]
fn master_restarted_under_load_on_the_real_master() {
    master_restart(MasterKind::Real, 2, 0);
}

#[test]
fn unmounts_on_sigterm_and_when_the_master_is_gone() {
    let mut c = Cluster::builder().master_kind(MasterKind::Elkfs).elkfs_chunkservers(1).start();
    // Registered is not enough: the real master refuses writes (ENOSPC)
    // until the chunkservers reported their space.
    c.wait_chunkservers_registered(c.chunkservers().len(), std::time::Duration::from_secs(60));
    let mut m = c.extra_mount(ClientKind::Elkfs, "term", &[]);
    std::fs::write(m.path().join("x"), b"x").unwrap();
    m.daemon().signal(libc::SIGTERM);
    m.daemon().wait_exit(Duration::from_secs(20));
    assert!(!is_mounted(m.path()), "unmounted after SIGTERM");
    assert!(m.daemon().exit_status().is_some_and(|s| s.success()), "clean exit after SIGTERM");

    let mut m = c.extra_mount(ClientKind::Elkfs, "gone", &["mfsgiveup=2".to_string()]);
    c.master().stop();
    m.daemon().wait_exit(Duration::from_secs(30));
    assert!(!is_mounted(m.path()), "unmounted once the master is gone");
    let log = std::fs::read_to_string(m.daemon().log()).unwrap();
    assert!(log.contains("the master is gone for good"), "a clear message; log:\n{log}");
}
