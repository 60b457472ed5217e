//! Proves the cluster harness against an all-real MooseFS 3.0 cluster
//! (master, three `mfschunkserver`s, `mfsmount`): files of several sizes at
//! goal 2 read back byte-identical, their chunks sit on two distinct
//! chunkservers, reads survive a chunkserver SIGKILL and the master
//! re-replicates. A second test checks that a test panicking with a running
//! cluster leaves no namespace, mount, process or temp dir behind.
//! Needs root and the MooseFS 3.0 Debian packages.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use elkfs_harness::{data, mount, Cluster};

const MIB: u64 = 1 << 20;
const CHUNK: u64 = 64 * MIB;

/// Reads every file back and compares length and sha256.
fn verify(files: &[(PathBuf, u64, String)], when: &str) {
    for (path, len, sha) in files {
        let (got_len, got_sha) = data::sha256_file(path);
        assert_eq!((got_len, &got_sha), (*len, sha), "{} read back wrong {when}", path.display());
    }
}

#[test]
fn real_cluster_keeps_goal_2_data_through_a_chunkserver_kill() {
    let t0 = Instant::now();
    let mut c = Cluster::builder().real_chunkservers(3).mount(true).start();
    let started = t0.elapsed();
    c.mfs_setgoal(c.mountpoint(), 2);

    let sizes = [("empty", 0), ("one", 1), ("f65537", 65_537), ("big", 70 * MIB)];
    let mut files = Vec::new();
    for (seed, (name, len)) in sizes.into_iter().enumerate() {
        let path = c.path(name);
        let sha = data::write_pattern_file(&path, len, seed as u64 + 1);
        files.push((path, len, sha));
    }
    assert_eq!(files[3].2, data::pattern_sha256(70 * MIB, 4), "the writer hashes what it writes");

    let servers: Vec<String> = c.chunkservers().iter().map(|s| s.addr()).collect();
    let mut big_chunks = Vec::new();
    for (path, len, _) in &files {
        let chunks = c.wait_for_goal(path, 2, Duration::from_secs(30));
        assert_eq!(chunks.len() as u64, len.div_ceil(CHUNK), "chunk count of {}: {chunks:?}", path.display());
        for ch in &chunks {
            for addr in &ch.copies {
                assert!(servers.contains(addr), "copy on unknown server {addr}; servers {servers:?}");
                let cs = c.chunkserver_at(addr).expect("a server of this cluster");
                let on_disk = cs.chunk_files(ch.id);
                assert!(
                    on_disk.iter().any(|p| p.ends_with(ch.file_name())),
                    "{} not on {addr}'s disk: {on_disk:?}",
                    ch.file_name()
                );
            }
        }
        big_chunks = chunks;
    }
    c.remount();
    verify(&files, "after a remount");

    // Kill a server holding a copy of the big file's first chunk.
    let victim_addr = big_chunks[0].copies[0].clone();
    let victim = c.chunkservers().iter().position(|s| s.addr() == victim_addr).expect("victim index");
    let t_kill = Instant::now();
    c.chunkserver(victim).kill();
    c.remount();
    verify(&files, "after a chunkserver SIGKILL");

    // The master re-replicates onto the third server.
    for (path, _, _) in &files {
        let chunks = c.wait_fileinfo(path, "re-replication to goal 2", Duration::from_secs(60), |chunks| {
            chunks.iter().all(|ch| ch.has_distinct_copies(2) && !ch.copies.contains(&victim_addr))
        });
        assert!(chunks.iter().all(|ch| ch.copies.iter().all(|a| servers.contains(a))));
    }
    let replicated = t_kill.elapsed();
    verify(&files, "after re-replication");
    eprintln!(
        "cluster up in {:.1}s, re-replicated {:.1}s after the kill, test body {:.1}s",
        started.as_secs_f64(),
        replicated.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn a_test_panicking_with_a_running_cluster_leaves_nothing_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let mut c = Cluster::builder().real_chunkservers(1).mount(true).start();
        data::write_pattern_file(&c.path("f"), 1000, 9);
        let mut pids = vec![c.master().pid(), c.chunkserver(0).pid()];
        pids.extend(c.mount_daemon().map(|d| d.pid()));
        let seen = (c.netns().name().to_string(), c.mountpoint().to_path_buf(), c.dir().to_path_buf(), pids);
        tx.send(seen).expect("the test thread waits for this");
        panic!("deliberate panic with a running cluster");
    })
    .join();
    assert!(outcome.is_err(), "the cluster thread was meant to panic");
    let (ns, mnt, dir, pids) = rx.recv().expect("the cluster thread reported before panicking");

    let list = std::process::Command::new("ip").args(["netns", "list"]).output().expect("run ip netns list");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(!list.split_whitespace().any(|n| n == ns), "netns {ns} is left behind: {list}");
    assert!(!mount::is_mounted(&mnt), "{} is still mounted", mnt.display());
    for pid in pids {
        assert!(!PathBuf::from(format!("/proc/{pid}")).exists(), "pid {pid} is still running");
    }
    assert!(!dir.exists(), "temp dir {} is left behind", dir.display());
}
