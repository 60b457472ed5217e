//! Files through three elkfs chunkservers with the real MooseFS 3.0 master,
//! and through the elkfs master with three elkfs or three real
//! chunkservers, always with the real `mfsmount`: every interesting size (empty, one byte, around one
//! 64 KiB block, around one 64 MiB chunk, several chunks) at goal 1, 2 and
//! 3 reads back byte-identical from a fresh client; each chunk has exactly
//! `goal` valid copies on distinct servers and its file is on exactly those
//! servers' disks. A second test changes files in place: partial-block
//! overwrites (also across a chunk boundary), appends, a truncate to a size
//! inside a block (the master sends TRUNCATE to the chunkservers) and
//! writes into the hole a truncate-up leaves.
//! Needs root and the MooseFS 3.0 Debian packages.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use elkfs_harness::{data, wait_until, ChunkInfo, ChunkserverKind, Cluster, MasterKind};

const MIB: u64 = 1 << 20;
const CHUNK: u64 = 64 * MIB;
const BLOCK: u64 = 64 * 1024;

/// Sizes written at every goal.
const SIZES: [u64; 7] = [0, 1, BLOCK - 1, BLOCK + 1, CHUNK - 1, CHUNK + 1, 300 * MIB];

/// Bound for a file's chunks to show the expected copies.
const COPIES_LIMIT: Duration = Duration::from_secs(30);

struct Written {
    path: PathBuf,
    len: u64,
    sha: String,
    goal: usize,
}

fn mkdir_with_goal(c: &Cluster, name: &str, goal: u8) -> PathBuf {
    let dir = c.path(name);
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    c.mfs_setgoal(&dir, goal);
    dir
}

/// Reads every file back and compares length and sha256.
fn verify(files: &[Written], when: &str) {
    for f in files {
        let (len, sha) = data::sha256_file(&f.path);
        assert_eq!((len, &sha), (f.len, &f.sha), "{} (goal {}) read back wrong {when}", f.path.display(), f.goal);
    }
}

/// The servers whose chunk folder holds exactly this chunk version.
fn servers_with_file(c: &Cluster, ch: &ChunkInfo) -> BTreeSet<String> {
    c.chunkservers()
        .iter()
        .filter(|s| s.chunk_files(ch.id).iter().any(|p| p.ends_with(ch.file_name())))
        .map(|s| s.addr())
        .collect()
}

/// Every chunk of the file has `goal` valid copies on distinct servers, no
/// copy in another state, and its file on exactly those servers' disks.
fn check_placement(c: &Cluster, path: &Path, len: u64, goal: usize) -> Vec<ChunkInfo> {
    let chunks = c.wait_for_goal(path, goal, COPIES_LIMIT);
    assert_eq!(chunks.len() as u64, len.div_ceil(CHUNK), "chunk count of {} ({len} B): {chunks:?}", path.display());
    for (i, ch) in chunks.iter().enumerate() {
        assert_eq!(ch.index as usize, i, "chunk order of {}: {chunks:?}", path.display());
        assert!(ch.id != 0, "chunk {i} of {} is a hole: {chunks:?}", path.display());
        assert!(ch.other_copies.is_empty(), "{}: copies not VALID: {ch:?}", path.display());
        let copies: BTreeSet<String> = ch.copies.iter().cloned().collect();
        assert_eq!(servers_with_file(c, ch), copies, "{} of {} on disk vs mfsfileinfo", ch.file_name(), path.display());
    }
    chunks
}

/// DATA_PATH of a chunkserver, read from its config file.
fn data_path(cfg: &Path) -> PathBuf {
    let text = std::fs::read_to_string(cfg).unwrap_or_else(|e| panic!("read {}: {e}", cfg.display()));
    let line = text.lines().find_map(|l| l.trim().strip_prefix("DATA_PATH")).expect("DATA_PATH in the config");
    PathBuf::from(line.trim_start().trim_start_matches('=').trim())
}

/// The count of operation `op` in an elkfs chunkserver's metrics file
/// (`DATA_PATH/elkfs-metrics.json`, rewritten every 2 s).
fn metrics_op_count(data: &Path, op: &str) -> Option<u64> {
    let json = std::fs::read_to_string(data.join("elkfs-metrics.json")).ok()?;
    let key = format!("\"op\":\"{op}\",\"count\":");
    let rest = &json[json.find(&key)? + key.len()..];
    rest[..rest.find(|ch: char| !ch.is_ascii_digit())?].parse().ok()
}

/// Three chunkservers of `cs` behind a master of `master`, mounted.
fn cluster(master: MasterKind, cs: ChunkserverKind) -> Cluster {
    let mut b = Cluster::builder().master_kind(master).mount(true);
    for _ in 0..3 {
        b = b.chunkserver(cs);
    }
    b.start()
}

#[test]
fn every_size_at_goals_1_2_3_reads_back_identical() {
    every_size(MasterKind::Real, ChunkserverKind::Elkfs);
}

#[test]
fn elkfs_master_every_size_with_elkfs_chunkservers() {
    every_size(MasterKind::Elkfs, ChunkserverKind::Elkfs);
}

#[test]
fn elkfs_master_every_size_with_real_chunkservers() {
    every_size(MasterKind::Elkfs, ChunkserverKind::Real);
}

fn every_size(master: MasterKind, cs: ChunkserverKind) {
    let t0 = Instant::now();
    let mut c = cluster(master, cs);
    let started = t0.elapsed();
    let mut files = Vec::new();
    let mut write_secs = Vec::new();
    for goal in 1..=3u8 {
        let dir = mkdir_with_goal(&c, &format!("g{goal}"), goal);
        let t = Instant::now();
        for (i, &len) in SIZES.iter().enumerate() {
            let path = dir.join(format!("f{len}"));
            let sha = data::write_pattern_file(&path, len, u64::from(goal) * 100 + i as u64);
            files.push(Written { path, len, sha, goal: goal.into() });
        }
        write_secs.push(t.elapsed().as_secs_f64());
    }
    let total: u64 = SIZES.iter().sum();

    for f in &files {
        check_placement(&c, &f.path, f.len, f.goal);
    }
    // Every elkfs server took part (goal 3 puts a copy of each chunk on each).
    for s in c.chunkservers() {
        assert!(!s.all_chunk_files().is_empty(), "no chunk on {}", s.addr());
    }

    // A fresh client and an empty page cache: every byte comes from the
    // chunkservers.
    c.drop_caches();
    c.remount();
    let t = Instant::now();
    verify(&files, "after a remount");
    let read_secs = t.elapsed().as_secs_f64();

    // The master counts every copy on the servers that hold them.
    let chunk_copies: u64 = SIZES.iter().map(|l| l.div_ceil(CHUNK)).sum::<u64>() * (1 + 2 + 3);
    let chunks_listed = wait_until("the master to count every chunk copy", COPIES_LIMIT, || {
        let listed: u64 = c.connected_chunkservers().iter().map(|s| s.chunks).sum();
        if listed == chunk_copies {
            Ok(listed)
        } else {
            Err(format!("{listed} copies listed, {chunk_copies} expected"))
        }
    });
    eprintln!(
        "cluster up in {:.1}s; wrote {} MiB per goal in {:.1}s / {:.1}s / {:.1}s (goal 1/2/3); read all back in \
         {read_secs:.1}s; {chunks_listed} chunk copies listed; test body {:.1}s",
        started.as_secs_f64(),
        total / MIB,
        write_secs[0],
        write_secs[1],
        write_secs[2],
        t0.elapsed().as_secs_f64()
    );
}

/// The expected content of a file, kept in memory next to the real one.
struct Model {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Model {
    fn create(path: PathBuf, len: u64, seed: u64) -> Model {
        data::write_pattern_file(&path, len, seed);
        let mut bytes = vec![0u8; len as usize];
        data::fill_pattern(seed, 0, &mut bytes);
        Model { path, bytes }
    }

    /// Writes `len` pattern bytes of `seed` at `offset` (pwrite, no append).
    fn overwrite(&mut self, offset: u64, len: usize, seed: u64) {
        let piece = data::overwrite_pattern(&self.path, offset, len, seed);
        let end = offset as usize + len;
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[offset as usize..end].copy_from_slice(&piece);
    }

    fn append(&mut self, len: usize, seed: u64) {
        let mut piece = vec![0u8; len];
        data::fill_pattern(seed, self.bytes.len() as u64, &mut piece);
        let mut f = OpenOptions::new().append(true).open(&self.path).expect("open for append");
        f.write_all(&piece).expect("append");
        f.sync_all().expect("fsync after append");
        self.bytes.extend_from_slice(&piece);
    }

    fn set_len(&mut self, len: u64) {
        let f = OpenOptions::new().write(true).open(&self.path).expect("open for truncate");
        f.set_len(len).unwrap_or_else(|e| panic!("truncate {} to {len}: {e}", self.path.display()));
        f.sync_all().expect("fsync after truncate");
        self.bytes.resize(len as usize, 0);
    }

    /// Reads the whole file (at most tens of MiB) and compares every byte.
    fn verify(&self, when: &str) {
        let got = std::fs::read(&self.path).unwrap_or_else(|e| panic!("read {}: {e}", self.path.display()));
        if got != self.bytes {
            let first = got.iter().zip(&self.bytes).position(|(a, b)| a != b);
            panic!(
                "{} read back wrong {when}: {} B (want {}), first differing byte at {first:?}",
                self.path.display(),
                got.len(),
                self.bytes.len()
            );
        }
    }
}

#[test]
fn overwrite_append_truncate_keep_content_at_goals_1_2_3() {
    overwrite_append_truncate(MasterKind::Real, ChunkserverKind::Elkfs);
}

#[test]
fn elkfs_master_overwrite_append_truncate_with_elkfs_chunkservers() {
    overwrite_append_truncate(MasterKind::Elkfs, ChunkserverKind::Elkfs);
}

#[test]
fn elkfs_master_overwrite_append_truncate_with_real_chunkservers() {
    overwrite_append_truncate(MasterKind::Elkfs, ChunkserverKind::Real);
}

fn overwrite_append_truncate(master: MasterKind, cs: ChunkserverKind) {
    let t0 = Instant::now();
    let mut c = cluster(master, cs);
    let mut models = Vec::new();
    for goal in 1..=3u8 {
        let dir = mkdir_with_goal(&c, &format!("g{goal}"), goal);
        let mut m = Model::create(dir.join("f"), CHUNK + 300_000, u64::from(goal));
        let seed = 10 + u64::from(goal);
        // Ten bytes inside one block.
        m.overwrite(1_000_003, 10, seed);
        // The end of block 4, all of block 5, the start of block 6.
        m.overwrite(5 * BLOCK - 7, BLOCK as usize + 14, seed + 100);
        // Across the chunk boundary, unaligned at both ends.
        m.overwrite(CHUNK - 100_000, 150_000, seed + 200);
        // Past the end, one block and a bit: grows the second chunk.
        m.append(BLOCK as usize + 1, seed + 300);
        m.verify("after overwrites and an append (same client)");
        models.push((m, goal));
    }
    c.drop_caches();
    c.remount();
    for (m, goal) in &models {
        m.verify("after overwrites and an append (fresh client)");
        check_placement(&c, &m.path, m.bytes.len() as u64, (*goal).into());
    }

    // Truncating inside a block of the first chunk: the master deletes the
    // second chunk and sends TRUNCATE for the first; the chunkservers must
    // zero the tail of the cut block.
    let cut = 5_000_123;
    for (m, _) in &mut models {
        m.set_len(cut);
        m.verify("after a truncate (same client)");
        // Growing again leaves a hole: the bytes after the cut read as zeros.
        m.set_len(cut + 3 * BLOCK + 5);
        // A write into that hole, not block aligned, fills in around it.
        m.overwrite(cut + BLOCK + 17, 1000, 77);
        m.verify("after truncate, grow and a write in the hole (same client)");
    }
    c.drop_caches();
    c.remount();
    let mut holders = BTreeSet::new();
    for (m, goal) in &models {
        m.verify("after truncate, grow and a write in the hole (fresh client)");
        let chunks = check_placement(&c, &m.path, m.bytes.len() as u64, (*goal).into());
        holders.extend(chunks[0].copies.iter().cloned());
    }
    // The servers holding the cut chunks did run TRUNCATE (nothing else in
    // this test truncates a chunk); only elkfs servers publish metrics.
    for s in c.chunkservers().iter().filter(|s| holders.contains(&s.addr()) && s.kind() == ChunkserverKind::Elkfs) {
        let data = data_path(s.cfg());
        wait_until(&format!("{} to publish a truncate", s.addr()), Duration::from_secs(10), || match metrics_op_count(
            &data, "truncate",
        ) {
            Some(n) if n > 0 => Ok(()),
            n => Err(format!("truncate count {n:?}")),
        });
    }
    eprintln!("test body {:.1}s", t0.elapsed().as_secs_f64());
}
