//! Memory per file, read from the process's resident set before and after
//! building a tree (a counting allocator would have to be the whole test
//! binary's global allocator).

use super::*;

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// 200 000 files (`ELKFS_META_FILES` to change) of one chunk each, 1 000
/// per directory. The figure is printed (run alone with `--nocapture`: other
/// tests running at the same time in this process inflate it); the bound is
/// loose for that reason. Measured: 211 B at 200 k, 181 B at 1 M files.
#[test]
fn bytes_per_file() {
    let files: u32 = std::env::var("ELKFS_META_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let Some(before) = rss_bytes() else { return };
    let mut m = fs();
    let mut d = ROOT;
    for i in 0..files {
        if i % 1000 == 0 {
            d = dir(&mut m, ROOT, &format!("dir{i}"));
        }
        let f = file(&mut m, d, &format!("file{i:08}"));
        m.write_chunk(1, f, 0, 0).unwrap();
        if i % 10_000 == 0 {
            m.drain_log();
        }
    }
    m.drain_log();
    let after = rss_bytes().unwrap_or(before);
    let per_file = after.saturating_sub(before) / u64::from(files);
    println!("meta memory: {per_file} bytes of RSS per file (one chunk, 13-byte name)");
    assert_eq!(m.stats().files, u64::from(files));
    assert!(per_file <= 260, "{per_file} bytes per file");
}
