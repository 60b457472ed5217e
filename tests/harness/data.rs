//! Test data: a deterministic content pattern addressed by (seed, offset),
//! files written and read back as streams (never whole in memory) with their
//! sha256, and dropping the kernel's page cache.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Stream buffer size for writing and hashing.
const BUF: usize = 1 << 20;

fn word(seed: u64, index: u64) -> u64 {
    // splitmix64 of (seed, word index): cheap and position-addressable.
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `buf` with the pattern bytes of file offsets `offset..offset+len`.
pub fn fill_pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut rest = &mut buf[..];
    // Head up to an 8-byte boundary, then whole words, then the tail.
    while !pos.is_multiple_of(8) && !rest.is_empty() {
        rest[0] = word(seed, pos / 8).to_le_bytes()[(pos % 8) as usize];
        rest = &mut rest[1..];
        pos += 1;
    }
    let mut words = rest.chunks_exact_mut(8);
    for w in &mut words {
        w.copy_from_slice(&word(seed, pos / 8).to_le_bytes());
        pos += 8;
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b = word(seed, pos / 8).to_le_bytes()[i];
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hands the first `len` pattern bytes of `seed` to `sink` in buffer-sized
/// pieces, with their file offsets; returns their sha256 (hex).
fn stream_pattern(len: u64, seed: u64, mut sink: impl FnMut(u64, &[u8])) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut off = 0;
    while off < len {
        let n = (len - off).min(BUF as u64) as usize;
        fill_pattern(seed, off, &mut buf[..n]);
        sink(off, &buf[..n]);
        h.update(&buf[..n]);
        off += n as u64;
    }
    hex(&h.finalize())
}

/// sha256 (hex) of the first `len` pattern bytes of `seed`.
pub fn pattern_sha256(len: u64, seed: u64) -> String {
    stream_pattern(len, seed, |_, _| {})
}

/// Creates `path` with `len` pattern bytes of `seed`, fsyncs it and returns
/// the content's sha256 (hex).
pub fn write_pattern_file(path: &Path, len: u64, seed: u64) -> String {
    let mut f = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let sha = stream_pattern(len, seed, |off, piece| {
        f.write_all(piece).unwrap_or_else(|e| panic!("write {} at {off}: {e}", path.display()));
    });
    f.sync_all().unwrap_or_else(|e| panic!("fsync {}: {e}", path.display()));
    sha
}

/// Writes `len` pattern bytes of `seed` at `offset` of the existing file
/// `path` (pwrite, fsynced) and returns them.
pub fn overwrite_pattern(path: &Path, offset: u64, len: usize, seed: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut piece = vec![0u8; len];
    fill_pattern(seed, offset, &mut piece);
    let f = std::fs::OpenOptions::new().write(true).open(path).expect("open for overwrite");
    f.write_all_at(&piece, offset).unwrap_or_else(|e| panic!("pwrite {len} B at {offset}: {e}"));
    f.sync_all().expect("fsync after overwrite");
    piece
}

/// Reads `path` to the end and returns (length, sha256 hex).
pub fn sha256_file(path: &Path) -> (u64, String) {
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap_or_else(|e| panic!("read {} at {total}: {e}", path.display()));
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    (total, hex(&h.finalize()))
}

/// Flushes dirty pages and drops the page cache of the whole machine
/// (`sync; echo 3 > /proc/sys/vm/drop_caches`). The mfsmount client keeps
/// its own read-ahead cache: `Cluster::remount` is the thorough way.
pub fn drop_caches() {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3").expect("write /proc/sys/vm/drop_caches (needs root)");
}

/// Asserts that the file at `path` has `len` bytes with sha256 `sha`.
pub fn assert_sha256(path: &Path, len: u64, sha: &str) {
    let (got_len, got_sha) = sha256_file(path);
    assert_eq!((got_len, got_sha.as_str()), (len, sha), "{} read back wrong", path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_position_addressed() {
        let mut whole = vec![0u8; 100];
        fill_pattern(7, 0, &mut whole);
        let mut part = vec![0u8; 37];
        fill_pattern(7, 13, &mut part);
        assert_eq!(&whole[13..50], &part[..]);
        assert_ne!(whole[..8], whole[8..16]);
    }
}
