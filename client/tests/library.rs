//! The client library against real clusters in a network namespace: the
//! real mfsmaster with real chunkservers and the elkfs master with elkfs
//! chunkservers. Files written through the library are read back through
//! it and through the real mfsmount.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Duration;

use elkfs_client::file::{Files, FilesConfig};
use elkfs_client::master::{Master, Target};
use elkfs_harness::{Cluster, MasterKind};
use elkfs_proto::client::{Cred, TYPE_DIRECTORY, TYPE_FILE};

/// Runs `f` on a thread inside the cluster's network namespace; threads it
/// starts (the session's) inherit the namespace.
fn in_netns<T: Send>(c: &Cluster, f: impl FnOnce() -> T + Send) -> T {
    let path = c.netns().path();
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(&path).unwrap();
            // SAFETY: setns on a descriptor we own; only this thread moves.
            assert_eq!(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
            f()
        })
        .join()
        .unwrap()
    })
}

fn target(c: &Cluster) -> Target {
    Target { host: c.addr().to_string(), port: c.ports().client, subfolder: "/".into(), info: "library test".into() }
}

/// Deterministic content that differs per file and per offset.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const SIZES: [usize; 7] = [0, 1, 65_535, 65_536, 65_537, (64 << 20) - 1, (64 << 20) + 1];

/// Reads the file in 1 MiB pieces from four threads (so in order, but
/// several in flight, as FUSE hands them over) and compares every byte.
fn read_in_order(files: &Files, inode: u32, want: &[u8]) {
    const PIECE: usize = 1 << 20;
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let at = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) * PIECE;
                    if at > want.len() {
                        break;
                    }
                    let n = files.read_into(inode, at as u64, PIECE, &mut buf).unwrap();
                    let expect = &want[at..(at + PIECE).min(want.len())];
                    assert_eq!(n, expect.len(), "bytes at {at}");
                    assert!(buf[..n] == *expect, "data at {at} differs");
                }
            });
        }
    });
}

fn round_trip(kind: MasterKind, real_cs: usize, elkfs_cs: usize) {
    let c = Cluster::builder()
        .master_kind(kind)
        .real_chunkservers(real_cs)
        .elkfs_chunkservers(elkfs_cs)
        .mount(true)
        .start();
    // Registered is not enough: the real master refuses writes (ENOSPC)
    // until the chunkservers reported their space.
    c.wait_chunkservers_registered(c.chunkservers().len(), std::time::Duration::from_secs(60));
    let cred = Cred { uid: 0, gids: vec![0] };
    in_netns(&c, || {
        let master = Master::connect(target(&c), Duration::from_secs(30)).unwrap();
        let (dir, dattr) = master.mkdir(1, b"lib", 0o755, 0, &cred).unwrap();
        assert_eq!(dattr.node_type, TYPE_DIRECTORY);
        let files = Files::new(master.clone(), FilesConfig { buffer_max: 8 << 20, ..FilesConfig::default() });
        let mut big = None;
        for (i, size) in SIZES.iter().enumerate() {
            let name = format!("f{size}");
            let (inode, attr) = master.create(dir, name.as_bytes(), 0o644, 0, &cred).unwrap();
            big = Some(inode);
            assert_eq!((attr.node_type, attr.length), (TYPE_FILE, 0));
            let data = content(i as u64, *size);
            // Uneven 100,000-byte writes: the buffer must coalesce them.
            for (n, piece) in data.chunks(100_000).enumerate() {
                files.write(inode, (n * 100_000) as u64, piece.to_vec()).unwrap();
            }
            files.flush(inode).unwrap();
            assert_eq!(master.getattr(inode, 0, 0).unwrap().length, *size as u64, "{name} length");
            let back = files.read(inode, 0, size + 10).unwrap();
            assert!(back == data, "{name} read back differs");
            // A read in the middle that crosses a block boundary.
            if *size > 70_000 {
                assert_eq!(files.read(inode, 65_000, 2_000).unwrap(), &data[65_000..67_000]);
            }
        }
        // Read-ahead: the largest file front to back in 1 MiB reads, four
        // threads at a time; then a write in the middle and again.
        let (inode, data) = (big.expect("the largest file"), content(SIZES.len() as u64 - 1, SIZES[SIZES.len() - 1]));
        read_in_order(&files, inode, &data);
        let (served, peak) = files.read_ahead_stats();
        assert!(served > 32, "most of it from read-ahead: {served} reads");
        assert!(peak > 8 << 20 && peak <= 80 << 20, "64 MiB ahead and 16 behind at most: {peak}");
        let mut changed = data.clone();
        let patch = content(77, 3 << 20);
        changed[(30 << 20) + 5..(33 << 20) + 5].copy_from_slice(&patch);
        files.write(inode, (30 << 20) + 5, patch).unwrap();
        read_in_order(&files, inode, &changed);
        // Back as it was, for mfsmount below.
        files.write(inode, (30 << 20) + 5, data[(30 << 20) + 5..(33 << 20) + 5].to_vec()).unwrap();
        files.flush(inode).unwrap();
        read_in_order(&files, inode, &data);
        // Two files read at once by a mount with 16 MiB of read-ahead in
        // all: right bytes, and never more than that fetched ahead.
        let small = Files::new(master.clone(), FilesConfig { readahead: 16 << 20, ..FilesConfig::default() });
        let (other, _) = master.create(dir, b"other", 0o644, 0, &cred).unwrap();
        let other_data = content(55, 40 << 20);
        small.write(other, 0, other_data.clone()).unwrap();
        small.flush(other).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| read_in_order(&small, inode, &data));
            s.spawn(|| read_in_order(&small, other, &other_data));
        });
        let (served, peak) = small.read_ahead_stats();
        assert!(served > 0 && peak <= 16 << 20, "{served} reads from read-ahead, at most {peak} bytes of it");
        // Four files written at once by a mount with 8 MiB of write-back in
        // all (64 MiB per file): right bytes, and the buffers stay near the
        // budget (each writer may pass a check with one write, and files
        // below 1 MiB are not held back).
        let tight = Files::new(
            master.clone(),
            FilesConfig { buffer_max: 64 << 20, buffer_total: 8 << 20, ..FilesConfig::default() },
        );
        let mut written = Vec::new();
        for n in 0..4u64 {
            let (inode, _) = master.create(dir, format!("w{n}").as_bytes(), 0o644, 0, &cred).unwrap();
            written.push((inode, content(200 + n, 24 << 20)));
        }
        let peak = std::sync::atomic::AtomicUsize::new(0);
        let writing = std::sync::atomic::AtomicUsize::new(written.len());
        std::thread::scope(|s| {
            for (inode, data) in &written {
                let (tight, writing) = (&tight, &writing);
                s.spawn(move || {
                    for (k, piece) in data.chunks(1 << 20).enumerate() {
                        tight.write(*inode, (k << 20) as u64, piece.to_vec()).unwrap();
                    }
                    tight.flush(*inode).unwrap();
                    writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
            while writing.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                peak.fetch_max(tight.write_back_bytes(), std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let peak = peak.into_inner();
        assert!(peak <= (8 + 4 * 2) << 20, "write-back held {peak} bytes at once");
        for (inode, data) in &written {
            assert!(tight.read(*inode, 0, data.len()).unwrap() == *data, "inode {inode} differs");
        }
        // A buffer reused from read to read, as the FUSE workers keep one:
        // holes come back as zeros, never as the bytes of an earlier read.
        let (sparse, _) = master.create(dir, b"sparse", 0o644, 0, &cred).unwrap();
        let tail = content(99, 1_000);
        files.write(sparse, (64 << 20) + 10, tail.clone()).unwrap();
        files.flush(sparse).unwrap();
        let mut buf = vec![0xAB; 4_096];
        let n = files.read_into(sparse, (64 << 20) - 1_000, 2_010, &mut buf).unwrap();
        assert_eq!(n, 2_010);
        assert!(buf[..1_010].iter().all(|b| *b == 0), "the hole reads as zeros");
        assert_eq!(&buf[1_010..2_010], &tail[..]);
        assert!(buf[2_010..].iter().all(|b| *b == 0xAB), "nothing past the read is touched");
        let n = files.read_into(sparse, 100, 3_000, &mut buf).unwrap();
        assert_eq!(n, 3_000);
        assert!(buf[..3_000].iter().all(|b| *b == 0), "a hole over an earlier read's bytes");
        let listed = master.readdir(dir, &cred).unwrap();
        for size in SIZES {
            assert!(listed.iter().any(|e| e.name == format!("f{size}").as_bytes()), "f{size} listed");
        }
        // Lookups carry the caller's access modes, and for a one-chunk
        // file that chunk and its copies (mfsmaster does; so must elkfs).
        let (small, _, lflags, first) = master.lookup_with_chunk(dir, b"f65535", &cred).unwrap();
        assert_eq!(lflags.map(|f| f & 0x02FF), Some(0x00FF), "root may do anything: {lflags:?}");
        assert!(lflags.is_some_and(|f| f & 0x0100 != 0), "chunk 0 comes with a small file: {lflags:?}");
        let first = first.expect("chunk 0 of a small file");
        let read = master.read_chunk(small, 0).unwrap();
        assert_eq!((first.chunk, first.version), (read.chunk, read.version));
        assert!(!first.servers.is_empty(), "chunk 0 has copies");
        let nobody = Cred { uid: 65534, gids: vec![65534] };
        let (_, _, lflags, _) = master.lookup_with_chunk(dir, b"f65535", &nobody).unwrap();
        assert_eq!(lflags.map(|f| f & 0x00FF), Some(0x11), "0644 for others: modes 0 and r");
        for name in [&b"f0"[..], b"f67108865"] {
            let (_, _, lflags, first) = master.lookup_with_chunk(dir, name, &cred).unwrap();
            assert!(first.is_none() && lflags.is_some_and(|f| f & 0x0100 == 0), "no chunk 0 for an empty or big file");
        }
        // Errors keep their meaning.
        let e = master.lookup(dir, b"missing", &cred).unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        let e = master.mkdir(1, b"lib", 0o755, 0, &cred).unwrap_err();
        assert_eq!(e.errno(), libc::EEXIST);
        master.close();
    });
    // The real mfsmount reads what the library wrote.
    for (i, size) in SIZES.iter().enumerate() {
        let got = std::fs::read(c.path(&format!("lib/f{size}"))).unwrap();
        assert!(got == content(i as u64, *size), "f{size} through mfsmount differs");
    }
}

#[test]
fn round_trip_on_the_real_master_with_real_chunkservers() {
    round_trip(MasterKind::Real, 2, 0);
}

#[test]
fn round_trip_on_elkfs_master_with_elkfs_chunkservers() {
    round_trip(MasterKind::Elkfs, 0, 2);
}

#[test]
fn session_resumes_after_master_restart() {
    let mut c = Cluster::builder().master_kind(MasterKind::Elkfs).elkfs_chunkservers(1).start();
    // Registered is not enough: the real master refuses writes (ENOSPC)
    // until the chunkservers reported their space.
    c.wait_chunkservers_registered(c.chunkservers().len(), std::time::Duration::from_secs(60));
    let cred = Cred { uid: 0, gids: vec![0] };
    let t = target(&c);
    let master = in_netns(&c, || Master::connect(t, Duration::from_secs(60)).unwrap());
    let before = master.session().sessionid;
    let (dir, _) = in_netns(&c, || master.mkdir(1, b"before", 0o755, 0, &cred).unwrap());
    c.restart_master();
    // The keeper thread reconnects on its own; calls wait for it.
    let (inode, _) = master.lookup(1, b"before", &cred).unwrap();
    assert_eq!(inode, dir);
    assert_eq!(master.session().sessionid, before, "same session after the restart");
    assert!(master.lost().is_none());
    master.close();
}
