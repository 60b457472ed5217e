//! Memory per file. Counts the bytes the global allocator holds (a counting
//! allocator would need to be the test binary's global one, so this reads
//! the process's resident set instead, before and after building the tree).

use super::*;

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// 200 000 files of one chunk each, 1 000 per directory. The figure is
/// printed (run with `--nocapture` to see it); the bound is the design goal.
#[test]
fn bytes_per_file() {
    const FILES: u32 = 200_000;
    let Some(before) = rss_bytes() else { return };
    let mut m = fs();
    m.log.reserve(0);
    let mut d = ROOT;
    for i in 0..FILES {
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
    let per_file = after.saturating_sub(before) / u64::from(FILES);
    println!("meta memory: {per_file} bytes of RSS per file (one chunk, 13-byte name)");
    assert_eq!(m.stats().files, u64::from(FILES));
    assert!(per_file <= 300, "{per_file} bytes per file");
}
