//! The elkfs master keeping chunks at their goal with elkfs chunkservers:
//! copies lost with a stopped server are replicated elsewhere, the extra
//! copies a returning server brings are removed, and deleted files' chunks
//! leave the disks.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::time::Duration;

use elkfs_harness::data::{sha256_file, write_pattern_file};
use elkfs_harness::{wait_until, Cluster, MasterKind};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn goal_is_restored_after_loss_and_return_and_deletions_reach_disks() {
    let mut c = Cluster::builder()
        .master_kind(MasterKind::Elkfs)
        .elkfs_chunkservers(3)
        .master_config("REPLICATIONS_DELAY_DISCONNECT", "0")
        .mount(true)
        .start();
    let dir = c.path("g2");
    std::fs::create_dir(&dir).unwrap();
    c.mfs_setgoal(&dir, 2);
    let file = dir.join("f");
    let sha = write_pattern_file(&file, (64 << 20) + 5_000_000, 7);
    let chunks = c.wait_for_goal(&file, 2, LIMIT);
    assert_eq!(chunks.len(), 2);
    let ids: Vec<u64> = chunks.iter().map(|ch| ch.id).collect();

    // Lose one holder of chunk 0: its chunks drop to one copy, then are
    // copied to the third server.
    let lost = chunks[0].copies[0].clone();
    let index = c.chunkservers().iter().position(|s| s.addr() == lost).expect("holder is ours");
    c.chunkserver(index).stop();
    c.wait_fileinfo(&file, "two copies without the stopped server", LIMIT, |chunks| {
        chunks.iter().all(|ch| ch.has_distinct_copies(2) && !ch.copies.contains(&lost))
    });
    c.drop_caches();
    assert_eq!(sha256_file(&file).1, sha);

    // It comes back with its old copies: the chunks are over goal until the
    // master removes one copy each, from the disks too.
    c.chunkserver(index).start();
    wait_until("two copies on disk per chunk", LIMIT, || {
        let on_disk: Vec<usize> =
            ids.iter().map(|id| c.chunkservers().iter().filter(|s| !s.chunk_files(*id).is_empty()).count()).collect();
        if on_disk.iter().all(|&n| n == 2) {
            Ok(())
        } else {
            Err(format!("copies on disk per chunk: {on_disk:?}"))
        }
    });
    c.wait_for_goal(&file, 2, LIMIT);

    // Deleting the file (no trash) deletes its chunks on every server. A
    // mount tells the master which files it holds open only once a minute,
    // so a fresh mount first: the old session's files are released when it
    // closes, else the file would stay "sustained" until that report.
    c.remount();
    let out = c.tool("mfssettrashtime", &[OsStr::new("0"), file.as_os_str()]);
    assert!(out.status.success(), "mfssettrashtime: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(&file).unwrap();
    wait_until("deleted chunks to leave the disks", LIMIT, || {
        let left: BTreeSet<String> = c
            .chunkservers()
            .iter()
            .flat_map(|s| ids.iter().flat_map(|id| s.chunk_files(*id)))
            .map(|p| p.display().to_string())
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
}
