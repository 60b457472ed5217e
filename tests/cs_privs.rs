//! `WORKING_USER`/`WORKING_GROUP`: an elkfs chunkserver started as root
//! opens its ports and disks, then runs as the configured user, and still
//! serves the real master and mount. Needs root.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use elkfs_harness::{data, Cluster};

/// The real, effective, saved and file-system uids of a process.
fn uids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon is running");
    let line = status.lines().find(|l| l.starts_with("Uid:")).expect("a Uid line");
    line.split_whitespace().skip(1).map(|v| v.parse().expect("a number")).collect()
}

fn open_up(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            open_up(&path);
        }
    }
}

#[test]
fn the_chunkserver_serves_as_its_working_user() {
    let mut c = Cluster::builder()
        .elkfs_chunkservers(1)
        .chunkserver_config("WORKING_USER", "nobody")
        .chunkserver_config("WORKING_GROUP", "nogroup")
        .mount(true)
        .start();
    let pid = c.chunkserver(0).pid();
    assert_eq!(uids(pid), vec![65534; 4], "the chunkserver dropped root");
    // The folders were made by root (as an operator would chown them).
    let hdd = c.chunkserver(0).hdd().to_path_buf();
    open_up(&hdd);
    c.mfs_setgoal(c.mountpoint(), 1);
    let path = c.path("as-nobody");
    let sha = data::write_pattern_file(&path, 3 << 20, 9);
    c.wait_for_goal(&path, 1, Duration::from_secs(30));
    c.remount();
    assert_eq!(data::sha256_file(&path), (3 << 20, sha));
    for file in c.chunkserver(0).all_chunk_files() {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&file).unwrap().uid(), 65534, "{} made by the working user", file.display());
    }
}
