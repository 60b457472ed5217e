//! The drop-in swap: a real MooseFS 3.0 `mfschunkserver` is stopped
//! cleanly and `elkfs chunkserver` starts on the very same config files,
//! chunk folder and DATA_PATH, then the other way round.
//!
//! The cluster has that one chunkserver and goal 1, so every byte read
//! comes from it. After each swap the master must take it back as the
//! same server (same id from `chunkserverid.mfs`, no new id generated),
//! count every chunk and list every copy VALID in the version it had, and
//! every file must read back identical from a fresh client; elkfs also
//! writes new files and changes files the real server wrote (appending to
//! a partial last block, overwriting inside blocks), and the real server
//! serves those after the swap back.
//! Needs root and the MooseFS 3.0 Debian packages.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use elkfs_harness::{data, wait_until, ChunkserverKind, Cluster};

const MIB: u64 = 1 << 20;
const CHUNK: u64 = 64 * MIB;
const REGISTER_LIMIT: Duration = Duration::from_secs(60);
/// What the master logs when a registering server's address and stored id
/// both match a server it knows (3.0.117 `csdb.c`).
const KNOWN_SERVER: &str = "csdb: found cs using ip:port and csid";

/// What a file must read back as.
enum Content {
    /// A pattern file: length and sha256.
    Pattern(u64, String),
    /// A file changed in place, kept whole (a few MiB).
    Bytes(Vec<u8>),
}

struct Expect {
    path: PathBuf,
    content: Content,
}

impl Expect {
    fn pattern(path: PathBuf, len: u64, seed: u64) -> Expect {
        let sha = data::write_pattern_file(&path, len, seed);
        Expect { path, content: Content::Pattern(len, sha) }
    }

    fn bytes(path: PathBuf, len: u64, seed: u64) -> Expect {
        data::write_pattern_file(&path, len, seed);
        let mut bytes = vec![0u8; len as usize];
        data::fill_pattern(seed, 0, &mut bytes);
        Expect { path, content: Content::Bytes(bytes) }
    }

    fn model(&mut self) -> &mut Vec<u8> {
        match &mut self.content {
            Content::Bytes(b) => b,
            Content::Pattern(..) => panic!("{} is not kept in memory", self.path.display()),
        }
    }

    /// pwrite of `len` pattern bytes of `seed` at `offset`, fsynced.
    fn overwrite(&mut self, offset: u64, len: usize, seed: u64) {
        let piece = data::overwrite_pattern(&self.path, offset, len, seed);
        let model = self.model();
        let end = offset as usize + len;
        if model.len() < end {
            model.resize(end, 0);
        }
        model[offset as usize..end].copy_from_slice(&piece);
    }

    /// Appends `len` pattern bytes of `seed`, fsynced.
    fn append(&mut self, len: usize, seed: u64) {
        let at = self.model().len() as u64;
        let mut piece = vec![0u8; len];
        data::fill_pattern(seed, at, &mut piece);
        let mut f = OpenOptions::new().append(true).open(&self.path).expect("open for append");
        f.write_all(&piece).expect("append");
        f.sync_all().expect("fsync after append");
        self.model().extend_from_slice(&piece);
    }

    fn len(&self) -> u64 {
        match &self.content {
            Content::Pattern(len, _) => *len,
            Content::Bytes(b) => b.len() as u64,
        }
    }

    fn verify(&self, when: &str) {
        match &self.content {
            Content::Pattern(len, sha) => {
                let got = data::sha256_file(&self.path);
                assert_eq!((got.0, &got.1), (*len, sha), "{} read back wrong {when}", self.path.display());
            }
            Content::Bytes(want) => {
                let got = std::fs::read(&self.path).unwrap_or_else(|e| panic!("read {}: {e}", self.path.display()));
                if got != *want {
                    let first = got.iter().zip(want).position(|(a, b)| a != b);
                    panic!(
                        "{} read back wrong {when}: {} B (want {}), first differing byte at {first:?}",
                        self.path.display(),
                        got.len(),
                        want.len()
                    );
                }
            }
        }
    }
}

/// `mfscli -SCS` line of the server at `addr`: (id, maintenance column, chunks).
fn cs_row(c: &Cluster, addr: &str) -> Option<(String, String, u64)> {
    let (host, port) = (c.addr().to_string(), c.ports().client.to_string());
    let args: Vec<&std::ffi::OsStr> = ["-H", &host, "-P", &port, "-SCS", "-p", "-n"].map(std::ffi::OsStr::new).to_vec();
    let out = c.tool("mfscli", &args);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|line| {
        let cols: Vec<&str> =
            line.strip_prefix("chunk servers:")?.split('\t').map(str::trim).filter(|s| !s.is_empty()).collect();
        (cols.len() >= 10 && format!("{}:{}", cols[0], cols[1]) == addr)
            .then(|| (cols[2].to_string(), cols[6].to_string(), cols[7].parse().unwrap_or(0)))
    })
}

/// `chunkserverid.mfs`: csid:16, metaid:64, big-endian.
fn stored_ids(data: &Path) -> (u16, u64) {
    let b = std::fs::read(data.join("chunkserverid.mfs")).expect("read chunkserverid.mfs");
    assert_eq!(b.len(), 10, "chunkserverid.mfs is csid:16 metaid:64: {b:?}");
    (u16::from_be_bytes([b[0], b[1]]), u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")))
}

fn count_lines(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains(needle)).count()
}

/// (chunk id → version) of every chunk of the files, each with exactly one
/// VALID copy, on `addr`, and its file on that server's disk.
fn chunks_on(c: &Cluster, files: &[Expect], addr: &str) -> BTreeMap<u64, u32> {
    let cs = c.chunkserver_at(addr).expect("the chunkserver");
    let mut all = BTreeMap::new();
    for f in files {
        let chunks = c.mfs_fileinfo(&f.path);
        assert_eq!(chunks.len() as u64, f.len().div_ceil(CHUNK), "{}: {chunks:?}", f.path.display());
        for ch in chunks {
            assert_eq!(ch.copies, [addr], "{}: one VALID copy on {addr}: {ch:?}", f.path.display());
            assert!(ch.other_copies.is_empty(), "{}: {ch:?}", f.path.display());
            let on_disk = cs.chunk_files(ch.id);
            assert!(on_disk.iter().any(|p| p.ends_with(ch.file_name())), "{} not on disk: {on_disk:?}", ch.file_name());
            all.insert(ch.id, ch.version);
        }
    }
    all
}

/// Waits until the master lists `addr` with `chunks` chunks; returns its
/// row.
fn wait_listed(c: &Cluster, addr: &str, chunks: u64) -> (String, String, u64) {
    wait_until(&format!("{addr} to report {chunks} chunks"), REGISTER_LIMIT, || match cs_row(c, addr) {
        Some(row) if row.2 == chunks => Ok(row),
        other => Err(format!("{other:?}")),
    })
}

/// Swaps chunkserver 0 to `kind` and waits until the master lists it with
/// `chunks` chunks; returns its row and the seconds that took.
fn swap(c: &mut Cluster, kind: ChunkserverKind, chunks: u64) -> ((String, String, u64), f64) {
    let t = Instant::now();
    let addr = c.chunkservers()[0].addr();
    c.chunkserver(0).restart_as(kind);
    c.wait_registered(std::slice::from_ref(&addr), REGISTER_LIMIT);
    (wait_listed(c, &addr, chunks), t.elapsed().as_secs_f64())
}

/// DATA_PATH of a chunkserver, read from its config file.
fn data_path(cfg: &Path) -> PathBuf {
    let text = std::fs::read_to_string(cfg).unwrap_or_else(|e| panic!("read {}: {e}", cfg.display()));
    let line = text.lines().find_map(|l| l.trim().strip_prefix("DATA_PATH")).expect("DATA_PATH in the config");
    PathBuf::from(line.trim_start().trim_start_matches('=').trim())
}

#[test]
fn a_real_chunkserver_is_swapped_for_elkfs_and_back() {
    let t0 = Instant::now();
    let mut c = Cluster::builder().real_chunkservers(1).mount(true).start();
    c.mfs_setgoal(c.mountpoint(), 1);
    let addr = c.chunkservers()[0].addr();
    let data_path = data_path(c.chunkservers()[0].cfg());
    let master_log = c.master().log().to_path_buf();
    let cs_log = c.chunkserver(0).daemon().log().to_path_buf();

    // The real chunkserver writes.
    let mut files = vec![
        Expect::pattern(c.path("empty"), 0, 1),
        Expect::pattern(c.path("one"), 1, 2),
        Expect::pattern(c.path("f65537"), 65_537, 3),
        Expect::pattern(c.path("two_chunks"), CHUNK + 1, 4),
        Expect::pattern(c.path("f100m"), 100 * MIB, 5),
        // Changed by elkfs later: a partial last block, and blocks inside.
        Expect::bytes(c.path("grow"), MIB + 123, 6),
        Expect::bytes(c.path("patch"), 2 * MIB, 7),
    ];
    let real_chunks = chunks_on(&c, &files, &addr);
    let n_real = real_chunks.len() as u64;
    let real_row = wait_listed(&c, &addr, n_real);
    let ids = stored_ids(&data_path);
    assert!(ids.0 > 0 && ids.1 > 0, "the real server stored its ids: {ids:?}");
    assert_eq!(real_row.0, ids.0.to_string(), "mfscli shows the stored server id");
    assert_eq!(count_lines(&master_log, "generate new server id"), 1);
    let hdd = c.chunkservers()[0].hdd().to_path_buf();
    let real_extras: Vec<String> =
        [".metaid", ".lock", ".chunkdb"].iter().filter(|n| hdd.join(n).exists()).map(|n| n.to_string()).collect();

    // Real → elkfs. A clean stop leaves the real server's chunk list in
    // `.chunkdb`, which its next start trusts unless a subfolder changed
    // in a later second; elkfs must remove it (see the chunkserver's
    // `remove_stale_chunkdb`), or a real server started after elkfs could
    // believe a list elkfs has made stale.
    c.chunkserver(0).stop();
    assert!(hdd.join(".chunkdb").exists(), "the real server writes .chunkdb at a clean stop");
    let (elkfs_row, to_elkfs_secs) = swap(&mut c, ChunkserverKind::Elkfs, n_real);
    assert!(!hdd.join(".chunkdb").exists(), "elkfs removes the real server's .chunkdb");
    assert_eq!(elkfs_row.0, real_row.0, "elkfs registers under the real server's id");
    assert_eq!(stored_ids(&data_path), ids, "elkfs keeps chunkserverid.mfs as it was");
    assert_eq!(count_lines(&master_log, "generate new server id"), 1, "the master saw no new server");
    assert_eq!(count_lines(&master_log, KNOWN_SERVER), 1, "the master matched address and id");
    assert_eq!(chunks_on(&c, &files, &addr), real_chunks, "every chunk VALID, same version, after the swap");
    c.remount();
    for f in &files {
        f.verify("from elkfs serving the real server's folder");
    }

    // elkfs writes: new files, and changes to chunks the real server wrote.
    files.push(Expect::pattern(c.path("by_elkfs_small"), 3 * MIB + 5, 8));
    files.push(Expect::pattern(c.path("by_elkfs_two_chunks"), CHUNK + 65_535, 9));
    files[5].append(100_001, 10);
    files[6].overwrite(MIB - 1000, 3000, 11);
    files[6].overwrite(17, 5, 12);
    let elkfs_chunks = chunks_on(&c, &files, &addr);
    let n_all = elkfs_chunks.len() as u64;
    c.remount();
    for f in &files {
        f.verify("after elkfs wrote");
    }

    // elkfs → real.
    let (back_row, to_real_secs) = swap(&mut c, ChunkserverKind::Real, n_all);
    assert_eq!(back_row.0, real_row.0, "the real server comes back under its id");
    assert_eq!(stored_ids(&data_path), ids);
    assert_eq!(count_lines(&master_log, "generate new server id"), 1, "the master saw no new server");
    assert_eq!(count_lines(&master_log, KNOWN_SERVER), 2, "the master matched address and id");
    assert_eq!(chunks_on(&c, &files, &addr), elkfs_chunks, "every chunk VALID, same version, after the swap back");
    c.remount();
    for f in &files {
        f.verify("from the real server again, after elkfs");
    }

    // Lines about `.chunkdb` in the real server's log (each is logged
    // twice: with and without the syslog prefix).
    let mut chunkdb: Vec<String> = std::fs::read_to_string(&cs_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("chunkdb"))
        .map(|l| l.split_once("]: ").map_or(l, |(_, rest)| rest).to_string())
        .collect();
    chunkdb.dedup();
    eprintln!(
        "real server's extra files in its chunk folder: {real_extras:?}; mfscli rows (id, maintenance, chunks): \
         real {real_row:?}, elkfs {elkfs_row:?}, real again {back_row:?}; swap to elkfs {to_elkfs_secs:.1}s, back \
         {to_real_secs:.1}s; {n_real} chunks, then {n_all}; real log on .chunkdb: {chunkdb:#?}; test body {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}
