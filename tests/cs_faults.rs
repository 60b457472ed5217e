//! Faults in a cluster of elkfs chunkservers under the real MooseFS 3.0
//! master and `mfsmount`: a chunkserver SIGKILLed during a goal-2 write, a
//! corrupted block found by a client read and by the background test, a full
//! data folder (ENOSPC), and restarts of chunkservers and of the master.
//! Every wait is bounded. Needs root and the MooseFS 3.0 Debian packages;
//! without them the tests fail loudly.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use elkfs_harness::proc::{run_in, run_ok};
use elkfs_harness::{data, wait_until, ChunkInfo, Cluster};

const MIB: u64 = 1 << 20;
const BLOCK: u64 = 64 * 1024;
/// Header page plus CRC table in front of block 0 (elkfs and MooseFS 3.0).
const HEADER: u64 = 8192;

// ---------------------------------------------------------------- helpers

/// zlib CRC-32, as in the chunk files' CRC tables.
fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        std::array::from_fn(|i| (0..8).fold(i as u32, |c, _| if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 }))
    });
    !bytes.iter().fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8))
}

/// Checks a chunk file: signature, size a whole number of blocks behind the
/// header, and every block against its CRC-table entry. Returns the CRC
/// entries of its blocks.
fn check_chunk_file(path: &Path) -> Result<Vec<u32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let len = bytes.len() as u64;
    // 4096-byte header (elkfs, MooseFS 3.0) or the legacy 1024-byte one.
    let head = [4096u64, 1024].into_iter().find(|h| len >= h + 4096 && (len - h - 4096).is_multiple_of(BLOCK));
    let head = head.ok_or_else(|| format!("{}: size {len} is not header + whole blocks", path.display()))?;
    if !bytes.starts_with(b"MFSC 1.0") {
        return Err(format!("{}: no MFSC 1.0 signature", path.display()));
    }
    let table = &bytes[head as usize..head as usize + 4096];
    let data = &bytes[head as usize + 4096..];
    let mut crcs = Vec::new();
    for (i, block) in data.chunks(BLOCK as usize).enumerate() {
        let want = u32::from_be_bytes(table[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        let got = crc32(block);
        if want != got {
            return Err(format!("{}: block {i} has CRC {got:08x}, table says {want:08x}", path.display()));
        }
        crcs.push(got);
    }
    Ok(crcs)
}

/// XORs one byte of a file with 0xFF and syncs it.
fn flip_byte(path: &Path, offset: u64) {
    let f = OpenOptions::new().read(true).write(true).open(path).expect("open the chunk file");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).expect("read the byte to flip");
    b[0] ^= 0xFF;
    f.write_all_at(&b, offset).expect("write the flipped byte");
    f.sync_all().expect("fsync the chunk file");
}

/// Compares the first `len` bytes of `path` with the pattern of `seed`.
fn check_prefix(path: &Path, len: u64, seed: u64) -> Result<(), String> {
    let mut f = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let (mut got, mut want) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let mut off = 0;
    while off < len {
        let n = (len - off).min(MIB) as usize;
        f.read_exact(&mut got[..n]).map_err(|e| format!("read {} at {off}: {e}", path.display()))?;
        data::fill_pattern(seed, off, &mut want[..n]);
        if let Some(i) = (0..n).find(|&i| got[i] != want[i]) {
            return Err(format!("{}: wrong byte at {}", path.display(), off + i as u64));
        }
        off += n as u64;
    }
    Ok(())
}

/// What a writer got done before it stopped.
#[derive(Debug)]
struct Written {
    /// Bytes `write` accepted.
    written: u64,
    /// Bytes covered by an fsync that returned OK.
    synced: u64,
    /// The call that failed, and how.
    error: Option<(String, std::io::Error)>,
}

/// Writes `len` pattern bytes of `seed` in 1 MiB calls, fsyncing every
/// `sync_every` bytes and at the end, publishing the synced length.
fn write_synced(path: &Path, len: u64, seed: u64, sync_every: u64, synced: &AtomicU64) -> Written {
    let mut out = Written { written: 0, synced: 0, error: None };
    let mut f = match File::create(path) {
        Ok(f) => f,
        Err(e) => {
            out.error = Some(("create".into(), e));
            return out;
        }
    };
    let mut buf = vec![0u8; MIB as usize];
    while out.written < len {
        let n = (len - out.written).min(MIB) as usize;
        data::fill_pattern(seed, out.written, &mut buf[..n]);
        if let Err(e) = f.write_all(&buf[..n]) {
            out.error = Some((format!("write at {}", out.written), e));
            return out;
        }
        out.written += n as u64;
        if out.written.is_multiple_of(sync_every) || out.written == len {
            if let Err(e) = f.sync_all() {
                out.error = Some((format!("fsync at {}", out.written), e));
                return out;
            }
            out.synced = out.written;
            synced.store(out.synced, Ordering::SeqCst);
        }
    }
    out
}

/// Runs `write_synced` on its own thread; the receiver bounds the wait.
fn spawn_writer(path: PathBuf, len: u64, seed: u64, sync_every: u64) -> (Arc<AtomicU64>, mpsc::Receiver<Written>) {
    let synced = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    let progress = synced.clone();
    std::thread::spawn(move || {
        let _ = tx.send(write_synced(&path, len, seed, sync_every, &progress));
    });
    (synced, rx)
}

/// Index of the chunkserver at `addr`.
fn index_of(c: &Cluster, addr: &str) -> usize {
    c.chunkserver_at(addr).unwrap_or_else(|| panic!("no chunkserver at {addr}")).index()
}

/// Every copy the master lists as valid is on its server's disk, passes
/// the CRC check there and holds the same blocks as the other copies.
fn check_copies_on_disk(c: &Cluster, chunks: &[ChunkInfo]) {
    for ch in chunks.iter().filter(|ch| ch.id != 0) {
        let mut first: Option<(&String, Vec<u32>)> = None;
        for addr in &ch.copies {
            let cs = c.chunkserver_at(addr).expect("a server of this cluster");
            let files = cs.chunk_files(ch.id);
            let file = files.iter().find(|p| p.ends_with(ch.file_name()));
            let file = file.unwrap_or_else(|| panic!("{} not on {addr}'s disk: {files:?}", ch.file_name()));
            let crcs = check_chunk_file(file).unwrap_or_else(|e| panic!("copy on {addr}: {e}"));
            match &first {
                None => first = Some((addr, crcs)),
                Some((a0, c0)) => assert!(
                    *c0 == crcs,
                    "copies of {} differ: {} blocks on {a0}, {} on {addr}, first difference at block {:?}",
                    ch.file_name(),
                    c0.len(),
                    crcs.len(),
                    c0.iter().zip(&crcs).position(|(x, y)| x != y)
                ),
            }
        }
    }
}

/// Lines of `log` containing `needle`.
fn log_lines(log: &Path, needle: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

// ------------------------------------------- 1. SIGKILL during a write

#[test]
fn sigkill_of_a_chunkserver_during_a_goal_2_write_loses_nothing_synced() {
    let t0 = Instant::now();
    let mut c = Cluster::builder().elkfs_chunkservers(3).mount(true).start();
    c.mfs_setgoal(c.mountpoint(), 2);
    let path = c.path("big");
    let (len, seed) = (200 * MIB, 11);
    let (synced, result) = spawn_writer(path.clone(), len, seed, 16 * MIB);

    // A little into the second chunk, kill a server holding a copy of both
    // the first (complete) and the second (being written) chunk.
    wait_until("80 MiB written and fsynced", Duration::from_secs(60), || {
        let s = synced.load(Ordering::SeqCst);
        if s >= 80 * MIB {
            Ok(())
        } else if let Ok(w) = result.try_recv() {
            panic!("the writer stopped early: {w:?}");
        } else {
            Err(format!("{} MiB", s / MIB))
        }
    });
    let chunks = c.mfs_fileinfo(&path);
    assert!(chunks.len() >= 2, "two chunks after 80 MiB: {chunks:?}");
    let both = chunks[1].copies.iter().find(|a| chunks[0].copies.contains(a));
    let victim_addr = both.unwrap_or_else(|| panic!("3 servers, 2 copies each: a server has both: {chunks:?}")).clone();
    let victim = index_of(&c, &victim_addr);
    let t_kill = Instant::now();
    c.chunkserver(victim).kill();
    eprintln!("killed cs{victim} ({victim_addr}) with {} MiB fsynced", synced.load(Ordering::SeqCst) / MIB);

    let w = result.recv_timeout(Duration::from_secs(90)).expect("the writer did not finish within 90 s of the kill");
    let write_done = t_kill.elapsed();
    eprintln!("writer: {w:?}, {} after the kill", secs(write_done));
    assert!(w.error.is_none(), "MooseFS rides out the loss of one copy, but the write failed: {w:?}");
    assert_eq!(w.synced, len);

    // Reads work with the server gone, from a fresh client.
    c.remount();
    check_prefix(&path, w.synced, seed).expect("data after the kill");
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), len);

    // The master brings every chunk back to two copies, none on the victim.
    let chunks = c.wait_fileinfo(&path, "2 copies without the victim", Duration::from_secs(60), |chunks| {
        chunks.iter().all(|ch| ch.has_distinct_copies(2) && !ch.copies.contains(&victim_addr))
    });
    let replicated = t_kill.elapsed();
    assert_eq!(chunks.len() as u64, len.div_ceil(64 * MIB));
    check_copies_on_disk(&c, &chunks);
    c.remount();
    let (got_len, sha) = data::sha256_file(&path);
    assert_eq!((got_len, sha), (len, data::pattern_sha256(len, seed)), "after re-replication");
    eprintln!(
        "sigkill test: write ended {} after the kill, goal 2 again {} after it, total {}",
        secs(write_done),
        secs(replicated),
        secs(t0.elapsed())
    );
}

// ------------------------------------------------ 2. corrupted blocks

/// Waits until chunk `id` has two valid copies again, none of them the
/// corrupted one: on `bad` the file is either gone or a new, clean copy.
fn wait_bad_copy_replaced(c: &Cluster, path: &Path, id: u64, bad: usize) -> Vec<ChunkInfo> {
    let bad_addr = c.chunkservers()[bad].addr();
    // Invalid copies are deleted by the master's chunk loop: within 60 s.
    wait_until("the damaged copy to be replaced", Duration::from_secs(75), || {
        let chunks = c.mfs_fileinfo(path);
        let ch = chunks.iter().find(|ch| ch.id == id).ok_or("chunk gone")?;
        if !ch.has_distinct_copies(2) {
            return Err(format!("{ch:?}"));
        }
        let on_bad = c.chunkservers()[bad].chunk_files(id);
        if ch.copies.contains(&bad_addr) {
            // Replicated back onto the same server: a new, clean file.
            match on_bad.as_slice() {
                [file] => {
                    check_chunk_file(file).map_err(|e| format!("{ch:?}: {e}"))?;
                }
                _ => return Err(format!("{ch:?}, on the bad server: {on_bad:?}")),
            }
        } else if !on_bad.is_empty() {
            return Err(format!("{ch:?}, still on the bad server: {on_bad:?}"));
        }
        Ok(chunks)
    })
}

/// Waits at most `limit` until `log` has more than `seen` lines with
/// `needle`.
fn wait_log(log: &Path, needle: &str, seen: usize, what: &str, limit: Duration) {
    wait_until(what, limit, || {
        let n = log_lines(log, needle).len();
        if n > seen {
            Ok(())
        } else {
            Err(format!("{n} lines with {needle:?}"))
        }
    });
}

/// One cluster, two files, one corrupted copy each. File A: a client reads
/// it and hits the bad copy first. File B: nobody reads it; the background
/// test of the one server that runs it finds the damage. Both bad copies
/// are reported and replaced. (Together, because the master deletes invalid
/// copies only in its chunk loop, up to CHUNKS_LOOP_MIN_TIME = 60 s: one
/// wait for both.)
#[test]
fn corrupted_copies_are_found_by_a_read_and_by_the_background_test_and_replaced() {
    let t0 = Instant::now();
    // The client reads from the copy nearest to it in the topology; the
    // file is filled in once the corrupted copy is known.
    let topo_dir = tempfile::tempdir().expect("temp dir");
    let topology = topo_dir.path().join("mfstopology.cfg");
    std::fs::write(&topology, "").expect("write the topology");
    let mut c = Cluster::builder()
        .elkfs_chunkservers(3)
        .distinct_addresses(true)
        .chunkserver_config("HDD_TEST_SPEED", "0")
        .master_config("TOPOLOGY_FILENAME", &topology.display().to_string())
        .mount(true)
        .start();
    c.mfs_setgoal(c.mountpoint(), 2);
    let (a, a_len) = (c.path("read"), 3 * MIB + 12_345);
    let (b, b_len) = (c.path("cold"), 2 * MIB + 5);
    let a_sha = data::write_pattern_file(&a, a_len, 21);
    let b_sha = data::write_pattern_file(&b, b_len, 22);
    let a_chunk = c.wait_for_goal(&a, 2, Duration::from_secs(30)).remove(0);
    let b_chunk = c.wait_for_goal(&b, 2, Duration::from_secs(30)).remove(0);

    // A: flip a byte in block 1 of one copy.
    let x = index_of(&c, &a_chunk.copies[0]);
    let x_file = c.chunkservers()[x].chunk_files(a_chunk.id).pop().expect("the copy's file");
    check_chunk_file(&x_file).expect("clean before the flip");
    flip_byte(&x_file, HEADER + BLOCK + 777);
    assert!(check_chunk_file(&x_file).is_err(), "the flip shows in the CRC check");
    // Client and corrupted server in one rack (distance 1), the others in
    // none (distance 2), so the master lists the bad copy first.
    let x_ip = a_chunk.copies[0].split(':').next().expect("ip").to_string();
    std::fs::write(&topology, format!("{} 1\n{x_ip} 1\n", c.addr())).expect("write the topology");
    let master_log = c.master().log().to_path_buf();
    let loaded = log_lines(&master_log, "topology file has been loaded").len();
    c.master().signal(libc::SIGHUP);
    let what = "the master to reload the topology";
    wait_log(&master_log, "topology file has been loaded", loaded, what, Duration::from_secs(10));

    let x_log = c.chunkserver(x).daemon().log().to_path_buf();
    // A fresh client has no cached data (a new FUSE superblock, an empty
    // mfsmount cache); the chunkservers read with O_DIRECT. So no
    // machine-wide drop_caches, which stalls every other test's I/O.
    c.remount();
    let t_read = Instant::now();
    assert_eq!(data::sha256_file(&a), (a_len, a_sha.clone()), "the client got A from the good copy");
    let read_time = t_read.elapsed();
    let crc_errors = log_lines(&x_log, "CRC mismatch").len();
    assert!(crc_errors > 0, "the client read the corrupted copy first (topology), so cs{x} saw the error");
    wait_log(&x_log, "damaged chunks to the master", 0, &format!("cs{x} to report A"), Duration::from_secs(10));
    let a_reported = t_read.elapsed();

    // B: only server y (holding a copy of B, not the one above) tests its
    // chunks, fast; its copy of B gets a flipped byte in block 0.
    let y_addr = b_chunk.copies.iter().find(|addr| index_of(&c, addr) != x).expect("a copy not on x").clone();
    let y = index_of(&c, &y_addr);
    let cs = c.chunkserver(y);
    cs.stop();
    let mut cfg = OpenOptions::new().append(true).open(cs.cfg()).expect("open the chunkserver config");
    writeln!(cfg, "HDD_TEST_SPEED = 100").expect("append to the config");
    let y_file = cs.chunk_files(b_chunk.id).pop().expect("the copy's file");
    flip_byte(&y_file, HEADER + 5);
    let y_log = cs.daemon().log().to_path_buf();
    let t_scrub = Instant::now();
    cs.start();
    c.wait_registered(&[y_addr], Duration::from_secs(30));
    wait_log(
        &y_log,
        "background test: chunk",
        0,
        &format!("cs{y}'s background test to fail B"),
        Duration::from_secs(30),
    );
    wait_log(&y_log, "damaged chunks to the master", 0, &format!("cs{y} to report B"), Duration::from_secs(10));
    let b_reported = t_scrub.elapsed();

    // The master replicates each from its good copy and deletes the bad one.
    let a_chunks = wait_bad_copy_replaced(&c, &a, a_chunk.id, x);
    let b_chunks = wait_bad_copy_replaced(&c, &b, b_chunk.id, y);
    let replaced = t_read.elapsed();
    check_copies_on_disk(&c, &a_chunks);
    check_copies_on_disk(&c, &b_chunks);
    c.remount();
    assert_eq!(data::sha256_file(&a), (a_len, a_sha), "A after re-replication");
    assert_eq!(data::sha256_file(&b), (b_len, b_sha), "B after re-replication");
    eprintln!(
        "corruption test: read of A {} ({crc_errors} CRC errors on cs{x}), A reported {} after the read; \
         B found and reported {} after cs{y} restarted; both replaced {} after the read; total {}",
        secs(read_time),
        secs(a_reported),
        secs(b_reported),
        secs(replaced),
        secs(t0.elapsed())
    );
}

// ------------------------------------------------------------ 3. ENOSPC

/// A small ext4 file system on a loop device, in its own temp dir;
/// unmounted on drop (lazily if busy). Create it before the cluster so that
/// it is dropped after the chunkserver using it has stopped.
struct LoopFs {
    dir: tempfile::TempDir,
}

impl LoopFs {
    fn new(size: u64) -> LoopFs {
        elkfs_harness::require_root();
        elkfs_harness::proc::require_tools(&["mkfs.ext4", "mount", "umount", "timeout"]);
        let dir = tempfile::Builder::new().prefix("elkfs-loopfs-").tempdir().expect("temp dir");
        let image = dir.path().join("fs.img");
        File::create(&image).and_then(|f| f.set_len(size)).expect("create the image");
        let limit = Duration::from_secs(60);
        run_ok(
            None,
            limit,
            "mkfs.ext4",
            &["-q".as_ref(), "-F".as_ref(), "-m".as_ref(), "0".as_ref(), image.as_os_str()],
        );
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mkdir mnt");
        let fs = LoopFs { dir };
        run_ok(None, limit, "mount", &["-o".as_ref(), "loop".as_ref(), image.as_os_str(), mnt.as_os_str()]);
        fs
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let mnt = self.mnt();
        if !elkfs_harness::mount::is_mounted(&mnt) {
            return;
        }
        let out = run_in(None, Duration::from_secs(20), "umount", &[mnt.as_os_str()]);
        if !out.status.success() {
            eprintln!("umount {} failed: lazy unmount", mnt.display());
            let _ = run_in(None, Duration::from_secs(20), "umount", &["-l".as_ref(), mnt.as_os_str()]);
        }
    }
}

/// Free bytes for unprivileged users on the file system holding `path`.
fn avail_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: statvfs fills the zeroed struct from a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0, "statvfs {}", path.display());
    st.f_bavail as u64 * st.f_frsize as u64
}

/// The value of `KEY = VALUE` in a MooseFS config file.
fn config_value(cfg: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(cfg).expect("read the config");
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .next_back()
        .unwrap_or_else(|| panic!("{key} not in {}", cfg.display()))
}

/// Waits for a writer started by `spawn_writer` to fail; asserts the
/// failure is ENOSPC and returns what was done and how long it took.
fn until_enospc(result: mpsc::Receiver<Written>, t: Instant, what: &str) -> (Written, Duration) {
    let w = result.recv_timeout(Duration::from_secs(100)).expect("the writer neither finished nor failed in 100 s");
    let (call, err) = w.error.as_ref().unwrap_or_else(|| panic!("{what}: 1 GiB fitted: {w:?}"));
    eprintln!("{what}: writer stopped after {}: {call}: {err}; {w:?}", secs(t.elapsed()));
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOSPC),
        "{what}: a full cluster is ENOSPC to the writer ({call}): {err}"
    );
    (w, t.elapsed())
}

/// Takes all but `keep` bytes of what is free on the file system holding
/// `dir` with a preallocated file there.
fn hog_space(dir: &Path, keep: u64) {
    let len = avail_bytes(dir).saturating_sub(keep);
    let f = File::create(dir.join("hog")).expect("create the hog file");
    // SAFETY: fallocate on a file descriptor we own, mode 0 (allocate).
    let rc = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&f), 0, 0, len as libc::off_t) };
    assert_eq!(rc, 0, "fallocate {} MiB: {}", len / MIB, std::io::Error::last_os_error());
}

/// The only chunkserver has 128 MiB usable on a 400 MiB loop-mounted ext4
/// (HDD_LEAVE_SPACE_DEFAULT keeps the rest). The mount gives up after 8
/// tries instead of 30 (`mfsioretries=8`), else a failure takes minutes.
///
/// The master creates a chunk only where more than a chunk's worth is free,
/// so a lone writer meets a full disk at the master, not at the chunkserver
/// (unless a space report is late: that made this test flaky). To make the
/// chunkserver itself run out, another file takes the space once the first
/// chunk is being written, as a neighbour on a shared disk would.
#[test]
fn a_full_chunkserver_gives_the_writer_enospc_and_keeps_synced_data() {
    let t0 = Instant::now();
    let loopfs = LoopFs::new(400 * MIB);
    let folder = loopfs.mnt();
    let mut c = Cluster::builder().elkfs_chunkservers(1).mount(true).mount_option("mfsioretries=8").start();
    c.mfs_setgoal(c.mountpoint(), 1);

    // Move the chunkserver onto the small file system (its root, as a
    // MooseFS data folder usually is, lost+found and all).
    let usable = 128 * MIB;
    let leave = avail_bytes(&folder) - usable;
    let cs = c.chunkserver(0);
    cs.stop();
    let hdd_cfg = PathBuf::from(config_value(cs.cfg(), "HDD_CONF_FILENAME"));
    std::fs::write(&hdd_cfg, format!("{}\n", folder.display())).expect("write mfshdd.cfg");
    let mut cfg = OpenOptions::new().append(true).open(cs.cfg()).expect("open the chunkserver config");
    writeln!(cfg, "HDD_LEAVE_SPACE_DEFAULT = {leave}").expect("append to the config");
    cs.start();
    let addr = cs.addr();
    let cs_log = cs.daemon().log().to_path_buf();
    let mount_log = c.mount_daemon().expect("mounted").log().to_path_buf();
    let seen = c.wait_registered(std::slice::from_ref(&addr), Duration::from_secs(30));
    let me = seen.iter().find(|s| s.addr == addr).expect("registered");
    let free = me.total - me.used;
    assert!((usable - 8 * MIB..=usable).contains(&free), "the master sees {} MiB free", free / MIB);

    // 1: the chunk being written runs out of space on the chunkserver.
    let fill = c.path("fill");
    let t = Instant::now();
    let (progress, result) = spawn_writer(fill.clone(), 1024 * MIB, 41, 8 * MIB);
    wait_until("the first 8 MiB synced", Duration::from_secs(30), || match progress.load(Ordering::SeqCst) {
        n if n >= 8 * MIB => Ok(()),
        n => Err(format!("{n} bytes synced")),
    });
    hog_space(&folder, leave + 16 * MIB);
    let (w, fill_time) = until_enospc(result, t, "first file");
    assert!(w.synced >= 8 * MIB && w.synced < 64 * MIB, "synced {} MiB", w.synced / MIB);
    let cs_nospace = log_lines(&cs_log, "no space left").len();
    assert!(cs_nospace > 0, "the chunkserver refused the writes for lack of space");
    let client_nospace = log_lines(&mount_log, "write error: No space left").len();

    // 2: a new file needs a new chunk, which the master no longer creates.
    let (_, result) = spawn_writer(c.path("more"), 1024 * MIB, 42, 8 * MIB);
    let (w2, more_time) = until_enospc(result, Instant::now(), "second file");
    assert_eq!(w2.synced, 0, "nothing of the second file was synced");
    let master_said = log_lines(&mount_log, "fs_writechunk returned status");
    assert!(!master_said.is_empty(), "the master refused to create the chunk (mount log)");

    c.remount();
    check_prefix(&fill, w.synced, 41).expect("synced data after ENOSPC");
    let chunks = c.mfs_fileinfo(&fill);
    eprintln!(
        "ENOSPC test: first file {} MiB synced, ENOSPC after {} ({cs_nospace} no-space refusals by the chunkserver, \
         {client_nospace} logged by the client), chunks {:?}; second file ENOSPC after {}, the client logged: {:?}; \
         total {}",
        w.synced / MIB,
        secs(fill_time),
        chunks.iter().map(|ch| (ch.index, ch.copies.len())).collect::<Vec<_>>(),
        secs(more_time),
        master_said.last(),
        secs(t0.elapsed())
    );
    // The chunkserver stops before the file system under it goes.
    drop(c);
    drop(loopfs);
}

// ----------------------------------------------------------- 4. restarts

/// Files of the restart test: (path, length, seed).
type Files = Vec<(PathBuf, u64, u64)>;

fn verify_files(c: &mut Cluster, files: &Files, when: &str) {
    c.remount();
    for (path, len, seed) in files {
        assert_eq!(data::sha256_file(path), (*len, data::pattern_sha256(*len, *seed)), "{} {when}", path.display());
    }
}

/// Waits until the master lists every server with exactly the chunk count
/// it had before, and every file has two valid copies again.
fn wait_all_back(c: &Cluster, files: &Files, counts: &[(String, u64)], what: &str) {
    wait_until(&format!("chunk counts back after {what}"), Duration::from_secs(60), || {
        let seen = c.connected_chunkservers();
        let now: Vec<(String, u64)> = counts
            .iter()
            .map(|(a, _)| (a.clone(), seen.iter().find(|s| &s.addr == a).map(|s| s.chunks).unwrap_or(0)))
            .collect();
        if now == counts {
            Ok(())
        } else {
            Err(format!("{now:?}, want {counts:?}"))
        }
    });
    for (path, _, _) in files {
        c.wait_for_goal(path, 2, Duration::from_secs(30));
    }
}

/// Waits until the master no longer lists chunkserver `i` as connected.
fn wait_gone(c: &Cluster, i: usize) {
    let addr = c.chunkservers()[i].addr();
    wait_until(&format!("the master to notice cs{i} is gone"), Duration::from_secs(30), || {
        let seen = c.connected_chunkservers();
        if seen.iter().any(|s| s.addr == addr) {
            Err(format!("{seen:?}"))
        } else {
            Ok(())
        }
    });
}

#[test]
fn chunkservers_and_the_master_come_back_after_restarts() {
    let t0 = Instant::now();
    let mut c = Cluster::builder().elkfs_chunkservers(2).mount(true).start();
    c.mfs_setgoal(c.mountpoint(), 2);
    let mut files: Files = Vec::new();
    for (i, len) in [0, 1, 65_537, 5 * MIB, 70 * MIB].into_iter().enumerate() {
        let path = c.path(&format!("f{i}"));
        data::write_pattern_file(&path, len, 50 + i as u64);
        files.push((path, len, 50 + i as u64));
    }
    for (path, _, _) in &files {
        c.wait_for_goal(path, 2, Duration::from_secs(30));
    }
    // 5 chunks on each server (the empty file has none); the counts the
    // master shows come with the servers' space reports, once a second.
    let counts: Vec<(String, u64)> = c.chunkservers().iter().map(|s| (s.addr(), 5)).collect();
    wait_all_back(&c, &files, &counts, "writing");
    let mut timings = Vec::new();

    // SIGTERM: a clean stop, then the same server again.
    let t = Instant::now();
    let status = c.chunkserver(0).daemon().stop().expect("it ended");
    assert!(status.success(), "elkfs chunkserver exits 0 on SIGTERM: {status}");
    wait_gone(&c, 0);
    timings.push(("SIGTERM noticed", t.elapsed()));
    c.chunkserver(0).start();
    wait_all_back(&c, &files, &counts, "SIGTERM + start");
    timings.push(("SIGTERM restart", t.elapsed()));
    verify_files(&mut c, &files, "after a SIGTERM restart");

    // SIGKILL: no goodbye; the master notices the dropped link.
    let t = Instant::now();
    c.chunkserver(1).kill();
    wait_gone(&c, 1);
    timings.push(("SIGKILL noticed", t.elapsed()));
    c.chunkserver(1).start();
    wait_all_back(&c, &files, &counts, "SIGKILL + start");
    timings.push(("SIGKILL restart", t.elapsed()));
    verify_files(&mut c, &files, "after a SIGKILL restart");

    // The master dies; the chunkservers find the new one by themselves.
    let logs: Vec<PathBuf> = (0..2).map(|i| c.chunkserver(i).daemon().log().to_path_buf()).collect();
    let registrations = |logs: &[PathBuf]| logs.iter().map(|l| log_lines(l, "registered with master").len()).collect();
    let (before, pids): (Vec<usize>, Vec<u32>) =
        (registrations(&logs), c.chunkservers().iter().map(|s| s.pid()).collect());
    let t = Instant::now();
    c.master().kill();
    c.restart_master();
    wait_all_back(&c, &files, &counts, "a master SIGKILL + restart");
    timings.push(("master restart", t.elapsed()));
    verify_files(&mut c, &files, "after a master restart");
    // The same processes, each registered once more.
    assert_eq!(c.chunkservers().iter().map(|s| s.pid()).collect::<Vec<_>>(), pids, "no chunkserver restarted");
    let after: Vec<usize> = registrations(&logs);
    assert!(after.iter().zip(&before).all(|(a, b)| a > b), "each registered again: {before:?} -> {after:?}");
    eprintln!("restart test: {timings:?}, total {}", secs(t0.elapsed()));
}
