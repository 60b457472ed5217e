//! A mixed cluster: the real MooseFS 3.0 master and `mfsmount`, two elkfs
//! chunkservers and one real `mfschunkserver`.
//!
//! - Goal 3: every chunk is written through a chain of all three servers in
//!   an order the master draws at random (`chunk_get_version_and_csdata`
//!   sorts equally distant servers by a random key), and files read back
//!   byte-identical whichever kind of server was first. The elkfs metrics
//!   tell where they stood in each chain.
//! - Goal 2: SIGKILL of an elkfs server makes the master re-replicate real →
//!   elkfs and elkfs → real; each new copy is then read back as the only
//!   copy left, so its bytes are proven, not just its presence.
//!
//! Needs root and the MooseFS 3.0 Debian packages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use elkfs_harness::{data, wait_until, ChunkInfo, ChunkserverKind, Cluster};

const MIB: u64 = 1 << 20;
/// Bound for re-replication and for a restarted server to report its chunks.
const MOVE_LIMIT: Duration = Duration::from_secs(60);
const REGISTER_LIMIT: Duration = Duration::from_secs(60);

struct Written {
    path: PathBuf,
    len: u64,
    sha: String,
}

fn verify<'a>(files: impl IntoIterator<Item = &'a Written>, when: &str) {
    for f in files {
        let (len, sha) = data::sha256_file(&f.path);
        assert_eq!((len, &sha), (f.len, &f.sha), "{} read back wrong {when}", f.path.display());
    }
}

/// DATA_PATH of a chunkserver, read from its config file.
fn data_path(cfg: &Path) -> PathBuf {
    let text = std::fs::read_to_string(cfg).unwrap_or_else(|e| panic!("read {}: {e}", cfg.display()));
    let line = text.lines().find_map(|l| l.trim().strip_prefix("DATA_PATH")).expect("DATA_PATH in the config");
    PathBuf::from(line.trim_start().trim_start_matches('=').trim())
}

/// `write_chains` of an elkfs metrics file (`DATA_PATH/elkfs-metrics.json`,
/// rewritten every 2 s): write sessions by the number of servers after
/// this one in the chain. Waits until the file was rewritten after `since`,
/// so it counts every session begun before then.
fn write_chains(data: &Path, since: SystemTime) -> [u64; 4] {
    let file = data.join("elkfs-metrics.json");
    wait_until(&format!("{} rewritten", file.display()), Duration::from_secs(10), || {
        let modified = std::fs::metadata(&file).and_then(|m| m.modified()).map_err(|e| e.to_string())?;
        if modified <= since {
            return Err(format!("modified {modified:?}, not after {since:?}"));
        }
        let json = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        let key = "\"write_chains\":[";
        let start = json.find(key).ok_or("no write_chains")? + key.len();
        let end = start + json[start..].find(']').ok_or("unterminated write_chains")?;
        let nums: Vec<u64> = json[start..end].split(',').map(|n| n.trim().parse().unwrap_or(u64::MAX)).collect();
        <[u64; 4]>::try_from(nums).map_err(|n| format!("write_chains {n:?}"))
    })
}

/// Where the real server stood in the goal-3 write sessions seen so far.
#[derive(Debug, Default, Clone, Copy)]
struct Chains {
    sessions: u64,
    elkfs_first: u64,
    real_first: u64,
    real_second: u64,
    real_third: u64,
}

/// Every goal-3 session here chains all three servers, so each elkfs
/// server counts every session once: in bucket 2 when it was first, 1 when
/// second, 0 when last. With two elkfs servers and one real one:
/// (E,E,R) puts one elkfs in 2 and one in 1; (E,R,E) one in 2, one in 0;
/// (R,E,E) one in 1, one in 0. So the sessions with the real server first
/// are those without an elkfs server in bucket 2, and likewise for the
/// other places.
fn chains(per_elkfs: &[[u64; 4]]) -> Chains {
    let [a, b] = per_elkfs else { panic!("two elkfs servers expected: {per_elkfs:?}") };
    let total = |w: &[u64; 4]| w.iter().sum::<u64>();
    assert_eq!(total(a), total(b), "both elkfs servers are in every goal-3 chain: {a:?} {b:?}");
    assert_eq!(a[3] + b[3], 0, "no chain is longer than three: {a:?} {b:?}");
    let sessions = total(a);
    let at = |i: usize| a[i] + b[i];
    assert!(at(2) <= sessions && at(1) <= sessions && at(0) <= sessions, "{a:?} {b:?}");
    Chains {
        sessions,
        elkfs_first: at(2),
        real_first: sessions - at(2),
        real_second: sessions - at(1),
        real_third: sessions - at(0),
    }
}

fn copies(ch: &ChunkInfo) -> BTreeSet<String> {
    ch.copies.iter().cloned().collect()
}

fn set(addrs: &[&str]) -> BTreeSet<String> {
    addrs.iter().map(|a| a.to_string()).collect()
}

/// The file's only chunk.
fn only_chunk(c: &Cluster, path: &Path) -> ChunkInfo {
    let chunks = c.mfs_fileinfo(path);
    assert_eq!(chunks.len(), 1, "{} should have one chunk: {chunks:?}", path.display());
    chunks.into_iter().next().expect("one chunk")
}

/// Waits until the file's only chunk has exactly the valid copies `want`
/// and its file, in the current version, is on each of those servers'
/// disks. Both are needed: the master adds a replication target to the
/// chunk's copies as BUSY when it sends REPLICATE, and `mfsfileinfo` shows
/// BUSY as VALID, while the target still builds the copy under version 0
/// (both the real chunkserver and elkfs do) and renames it when complete.
fn wait_copies(c: &Cluster, path: &Path, want: &BTreeSet<String>, what: &str) -> ChunkInfo {
    wait_until(&format!("{what} for {}", path.display()), MOVE_LIMIT, || {
        let chunks = c.mfs_fileinfo(path);
        let [ch] = chunks.as_slice() else { return Err(format!("not one chunk: {chunks:?}")) };
        if copies(ch) != *want {
            return Err(format!("copies {ch:?}"));
        }
        for addr in want {
            let cs = c.chunkserver_at(addr).expect("a server of this cluster");
            let files = cs.chunk_files(ch.id);
            if !files.iter().any(|p| p.ends_with(ch.file_name())) {
                return Err(format!("{} not on {addr}'s disk: {files:?}", ch.file_name()));
            }
        }
        Ok(ch.clone())
    })
}

#[test]
fn mixed_chains_and_replication_both_ways() {
    let t0 = Instant::now();
    let mut c = Cluster::builder().elkfs_chunkservers(2).real_chunkservers(1).mount(true).start();
    let kinds: Vec<ChunkserverKind> = c.chunkservers().iter().map(|s| s.kind()).collect();
    assert_eq!(kinds, [ChunkserverKind::Elkfs, ChunkserverKind::Elkfs, ChunkserverKind::Real]);
    let addrs: Vec<String> = c.chunkservers().iter().map(|s| s.addr()).collect();
    let (e0, e1, real) = (addrs[0].clone(), addrs[1].clone(), addrs[2].clone());
    let elkfs_data: Vec<PathBuf> = c.chunkservers()[..2].iter().map(|s| data_path(s.cfg())).collect();

    // Goal 3: 10 MiB files, one chunk each, in rounds of 8 until both an
    // elkfs server and the real one have been first in some chain. With a
    // random order each session has the real server first with odds 1/3,
    // so one round misses with odds (2/3)^8 ~ 4 % and four rounds ~ 2e-6.
    let g3 = c.path("g3");
    std::fs::create_dir(&g3).expect("mkdir g3");
    c.mfs_setgoal(&g3, 3);
    let mut goal3 = Vec::new();
    let mut seen = Chains::default();
    for round in 0..4u64 {
        for i in 0..8u64 {
            let path = g3.join(format!("f{round}_{i}"));
            let seed = 1000 + round * 8 + i;
            let sha = data::write_pattern_file(&path, 10 * MIB, seed);
            goal3.push(Written { path, len: 10 * MIB, sha });
        }
        let written = SystemTime::now();
        let per_elkfs: Vec<[u64; 4]> = elkfs_data.iter().map(|d| write_chains(d, written)).collect();
        seen = chains(&per_elkfs);
        eprintln!("after round {round}: {seen:?} (per elkfs server: {per_elkfs:?})");
        assert!(seen.sessions >= goal3.len() as u64, "at least one write session per chunk: {seen:?}");
        if seen.elkfs_first > 0 && seen.real_first > 0 {
            break;
        }
    }
    assert!(seen.elkfs_first > 0, "no chain had an elkfs server first: {seen:?}");
    assert!(seen.real_first > 0, "no chain had the real server first: {seen:?}");
    for f in &goal3 {
        let ch = only_chunk(&c, &f.path);
        assert!(ch.has_distinct_copies(3), "{}: {ch:?}", f.path.display());
    }
    c.remount();
    verify(&goal3, "(goal 3, mixed chains)");
    let t_goal3 = t0.elapsed();

    // Goal 2: one-chunk files until, for one elkfs server K (the other is
    // E), some chunk sits on {real, K} and some on {K, E}. Killing K then
    // leaves the first kind only on the real server (the master must copy
    // real → E) and the second only on E (it must copy E → real).
    let g2 = c.path("g2");
    std::fs::create_dir(&g2).expect("mkdir g2");
    c.mfs_setgoal(&g2, 2);
    let mut goal2: Vec<(Written, BTreeSet<String>)> = Vec::new();
    let mut plan = None;
    for round in 0..5u64 {
        for i in 0..6u64 {
            let path = g2.join(format!("f{round}_{i}"));
            let len = MIB + 1000 * i + 1;
            let sha = data::write_pattern_file(&path, len, 2000 + round * 6 + i);
            let ch = c.wait_for_goal(&path, 2, Duration::from_secs(30)).remove(0);
            goal2.push((Written { path, len, sha }, copies(&ch)));
        }
        plan = [(0usize, &e0, &e1), (1, &e1, &e0)].into_iter().find(|(_, k, e)| {
            let has = |want: BTreeSet<String>| goal2.iter().any(|(_, cs)| *cs == want);
            has(set(&[&real, k])) && has(set(&[k, e]))
        });
        if plan.is_some() {
            break;
        }
    }
    let placements: Vec<&BTreeSet<String>> = goal2.iter().map(|(_, cs)| cs).collect();
    let (k, k_addr, e_addr) = plan.unwrap_or_else(|| panic!("no usable placement of goal-2 chunks: {placements:?}"));
    let (k_addr, e_addr) = (k_addr.clone(), e_addr.clone());
    let e = 1 - k;
    let r = 2;
    let real_to_elkfs: Vec<&Written> =
        goal2.iter().filter(|(_, cs)| *cs == set(&[&real, &k_addr])).map(|(w, _)| w).collect();
    let elkfs_to_real: Vec<&Written> =
        goal2.iter().filter(|(_, cs)| *cs == set(&[&k_addr, &e_addr])).map(|(w, _)| w).collect();
    eprintln!(
        "goal 2: {} files; killing elkfs {k_addr}: {} chunks to copy real → elkfs, {} elkfs → real",
        goal2.len(),
        real_to_elkfs.len(),
        elkfs_to_real.len()
    );

    let t_kill = Instant::now();
    c.chunkserver(k).kill();
    for f in &real_to_elkfs {
        wait_copies(&c, &f.path, &set(&[&real, &e_addr]), "re-replication real → elkfs");
    }
    for f in &elkfs_to_real {
        wait_copies(&c, &f.path, &set(&[&e_addr, &real]), "re-replication elkfs → real");
    }
    let replicated = t_kill.elapsed();

    // The copies made on elkfs, alone: kill the real server too.
    c.chunkserver(r).kill();
    for f in &real_to_elkfs {
        wait_copies(&c, &f.path, &set(&[&e_addr]), "only the elkfs copy made from the real one");
    }
    c.remount();
    verify(real_to_elkfs.iter().copied(), "from the copy elkfs replicated from the real server");

    // The copies made on the real server, alone: it comes back, E goes.
    c.chunkserver(r).start();
    c.wait_registered(std::slice::from_ref(&real), REGISTER_LIMIT);
    for f in &elkfs_to_real {
        wait_copies(&c, &f.path, &set(&[&e_addr, &real]), "the real server to report its copy again");
    }
    c.chunkserver(e).kill();
    for f in &elkfs_to_real {
        wait_copies(&c, &f.path, &set(&[&real]), "only the real copy made from elkfs");
    }
    c.remount();
    verify(elkfs_to_real.iter().copied(), "from the copy the real server replicated from elkfs");

    // Everyone back: everything reads back.
    c.chunkserver(e).start();
    c.chunkserver(k).start();
    c.wait_registered(&addrs, REGISTER_LIMIT);
    // K's old copies are valid again, so some chunks are over goal until
    // the master's chunk loop (60 s at least) deletes the extra copy.
    for f in goal2.iter().map(|(w, _)| w) {
        c.wait_fileinfo(&f.path, "at least 2 copies", MOVE_LIMIT, |chunks| {
            chunks.iter().all(|ch| ch.copies.len() >= 2)
        });
    }
    c.remount();
    verify(&goal3, "(goal 3) at the end");
    verify(goal2.iter().map(|(w, _)| w), "(goal 2) at the end");
    eprintln!(
        "{} goal-3 write sessions: an elkfs server first in {}, the real server first in {}, second in {}, last \
         in {}; goal-3 phase {:.1}s; re-replicated both ways {:.1}s after the kill; test body {:.1}s",
        seen.sessions,
        seen.elkfs_first,
        seen.real_first,
        seen.real_second,
        seen.real_third,
        t_goal3.as_secs_f64(),
        replicated.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
