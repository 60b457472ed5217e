//! Replacing a dead master from a metalogger: the metalogger follows the
//! elkfs master; the master is killed for good; a new `elkfs master` is
//! started on the metalogger's folder at a new address; chunkservers and
//! the mount are pointed at it and everything acknowledged is there.

use std::path::Path;
use std::time::Duration;

use elkfs_harness::data::{sha256_file, write_pattern_file};
use elkfs_harness::{wait_until, Cluster, MasterKind};

/// Highest changelog version in the files of `dir` whose names start with
/// `prefix`.
fn last_version(dir: &Path, prefix: &str) -> u64 {
    let mut best = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) || !name.ends_with(".mfs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some(v) = line.split(": ").next().and_then(|v| v.parse::<u64>().ok()) {
                best = best.max(v);
            }
        }
    }
    best
}

#[test]
fn a_new_master_from_the_metalogger_has_every_acknowledged_change() {
    let mut c = Cluster::builder().master_kind(MasterKind::Elkfs).elkfs_chunkservers(2).mount(true).start();
    let ml = c.start_metalogger();
    // Work before and after the metalogger's first download.
    let mut files = Vec::new();
    for i in 0..20 {
        let dir = c.path(&format!("dir{}", i % 4));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("file{i}"));
        files.push((path.clone(), write_pattern_file(&path, 1000 + i * 70_000, i)));
    }
    std::fs::rename(c.path("dir0"), c.path("renamed")).unwrap();
    std::os::unix::fs::symlink("renamed", c.path("link")).unwrap();
    std::fs::remove_file(c.path("dir1/file1")).unwrap();
    let master_data = c.master_data();
    let want = last_version(&master_data, "changelog.");
    assert!(want > 40, "the master logged only {want} changes");
    wait_until("the metalogger to hold every change", Duration::from_secs(30), || {
        let have = last_version(&ml, "changelog_ml");
        if have >= want {
            Ok(())
        } else {
            Err(format!("metalogger at {have}, master at {want}"))
        }
    });
    c.replace_master(&ml);
    for (path, sha) in &files {
        let rel = path.strip_prefix(c.dir().join("mnt")).expect("on the mount");
        let rel = rel.to_string_lossy().replace("dir0/", "renamed/");
        let now = c.path(&rel);
        if rel == "dir1/file1" {
            assert!(!now.exists(), "a removed file came back");
            continue;
        }
        assert_eq!(&sha256_file(&now).1, sha, "{rel} after the failover");
    }
    assert_eq!(std::fs::read_link(c.path("link")).unwrap(), Path::new("renamed"));
    // And the new master takes new work.
    let after = c.path("after-failover");
    let sha = write_pattern_file(&after, 3 << 20, 99);
    assert_eq!(sha256_file(&after).1, sha);
}
