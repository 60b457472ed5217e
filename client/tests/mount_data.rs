//! Data through `elkfs mount`: files of many sizes at goals 1–3, read back
//! through the real mfsmount and a second elkfs mount, on the real master
//! with real chunkservers and on the elkfs master with elkfs chunkservers.

use std::time::{Duration, Instant};

use elkfs_harness::data::{assert_sha256, write_pattern_file};
use elkfs_harness::{ClientKind, Cluster, MasterKind};

const MIB: u64 = 1 << 20;

fn sizes_at_goals(kind: MasterKind, real_cs: usize, elkfs_cs: usize) {
    // The MooseFS tools set goals through elkfs mount's `.masterinfo`; the
    // real mfsmount reads back what elkfs mount wrote.
    let c = Cluster::builder()
        .master_kind(kind)
        .real_chunkservers(real_cs)
        .elkfs_chunkservers(elkfs_cs)
        .mount(true)
        .start();
    // Registered is not enough: the real master refuses writes (ENOSPC)
    // until the chunkservers reported their space.
    c.wait_chunkservers_registered(c.chunkservers().len(), std::time::Duration::from_secs(60));
    let writer = c.extra_mount(ClientKind::Elkfs, "w", &[]);
    mtime_reaches_other_mounts(&writer.path().join("stamp"), &c.path("stamp"));
    atime_of_a_read_reaches_the_master(&c.path("stamp"), &writer.path().join("stamp"));
    let sizes = [0, 1, 65_535, 65_536, 65_537, 64 * MIB - 1, 64 * MIB + 1, 300 * MIB];
    let mut written = Vec::new();
    for goal in 1..=3u8 {
        let dir = format!("g{goal}");
        let on_elkfs = writer.path().join(&dir);
        std::fs::create_dir(&on_elkfs).unwrap();
        c.mfs_setgoal(&on_elkfs, goal);
        // Not recursive: the directory's own goal, whatever lies below.
        let out = c.tool("mfsgetgoal", &[on_elkfs.as_os_str()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.trim(), format!("{}: {goal}", on_elkfs.display()), "mfsgetgoal through elkfs mount");
        for (i, len) in sizes.iter().enumerate() {
            let rel = format!("{dir}/f{len}");
            let t = Instant::now();
            let sha = write_pattern_file(&writer.path().join(&rel), *len, u64::from(goal) * 100 + i as u64);
            eprintln!("wrote {rel} in {:?}", t.elapsed());
            written.push((rel, *len, sha));
        }
    }
    c.drop_caches();
    let reader = c.extra_mount(ClientKind::Elkfs, "r", &[]);
    for (rel, len, sha) in &written {
        assert_sha256(&c.path(rel), *len, sha);
        let t = Instant::now();
        assert_sha256(&reader.path().join(rel), *len, sha);
        eprintln!("read {rel} in {:?}", t.elapsed());
    }
    let g3 = c.path("g3/f67108865");
    c.wait_for_goal(&g3, 3, Duration::from_secs(60));
}

/// A write after an explicit utimes moves mtime forward: at once for the
/// writer's own `stat` (elkfs mount lays its gathered write times, sent
/// about once a second as AMTIME_INODES, over the master's attributes),
/// soon after for another mount (both masters also stamp mtime when a
/// chunk write ends).
fn mtime_reaches_other_mounts(here: &std::path::Path, there: &std::path::Path) {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    std::fs::write(here, b"1").unwrap();
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let f = std::fs::File::options().write(true).open(here).unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(old)).unwrap();
    drop(f);
    assert_eq!(std::fs::metadata(here).unwrap().mtime(), 1_500_000_000, "utimes after a write wins");
    std::fs::OpenOptions::new().append(true).open(here).unwrap().write_all(b"2").unwrap();
    assert!(std::fs::metadata(here).unwrap().mtime() > 1_500_000_000, "the writer's own stat");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = std::fs::metadata(there).unwrap();
        if m.len() == 2 && m.mtime() > 1_500_000_000 {
            break;
        }
        assert!(Instant::now() < deadline, "another mount still sees mtime {} length {}", m.mtime(), m.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A read through mfsmount moves atime forward for everyone: mfsmount
/// gathers read times and sends them as AMTIME_INODES about once a second,
/// and the master keeps them (the elkfs master as mfsmaster does).
fn atime_of_a_read_reaches_the_master(reader: &std::path::Path, other: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_400_000_000);
    let f = std::fs::File::options().write(true).open(other).unwrap();
    f.set_times(std::fs::FileTimes::new().set_accessed(old)).unwrap();
    drop(f);
    assert_eq!(std::fs::metadata(other).unwrap().atime(), 1_400_000_000);
    assert!(!std::fs::read(reader).unwrap().is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let atime = std::fs::metadata(other).unwrap().atime();
        if atime > 1_400_000_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the other mount still sees atime {atime}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sizes_round_trip_on_the_real_master_with_real_chunkservers() {
    sizes_at_goals(MasterKind::Real, 3, 0);
}

#[test]
fn sizes_round_trip_on_elkfs_master_with_elkfs_chunkservers() {
    sizes_at_goals(MasterKind::Elkfs, 0, 3);
}

#[test]
fn two_mounts_see_each_others_completed_writes() {
    let c = Cluster::builder().master_kind(MasterKind::Elkfs).elkfs_chunkservers(2).start();
    // Registered is not enough: the real master refuses writes (ENOSPC)
    // until the chunkservers reported their space.
    c.wait_chunkservers_registered(c.chunkservers().len(), std::time::Duration::from_secs(60));
    let a = c.extra_mount(ClientKind::Elkfs, "a", &[]);
    let b = c.extra_mount(ClientKind::Elkfs, "b", &[]);
    let (fa, fb) = (a.path().join("shared"), b.path().join("shared"));
    std::fs::write(&fa, b"from a").unwrap();
    assert_eq!(std::fs::read(&fb).unwrap(), b"from a");
    // Two writers at once on different files, then each reads the other's.
    let ta = std::thread::spawn({
        let p = a.path().join("one");
        move || write_pattern_file(&p, 5 * MIB + 3, 1)
    });
    let sha_b = write_pattern_file(&b.path().join("two"), 3 * MIB + 7, 2);
    let sha_a = ta.join().unwrap();
    assert_sha256(&b.path().join("one"), 5 * MIB + 3, &sha_a);
    assert_sha256(&a.path().join("two"), 3 * MIB + 7, &sha_b);
    // A rewrite through b is what a reads after b closed it.
    std::fs::write(&fb, b"from b, longer").unwrap();
    assert_eq!(std::fs::read(&fa).unwrap(), b"from b, longer");
}
