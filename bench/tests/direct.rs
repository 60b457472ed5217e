//! The cluster bench's direct protocol client against an elkfs chunkserver
//! running in this process: whole chunks written with a window of
//! unacknowledged pieces and read back CRC-checked, over several
//! connections; a wrong version or a missing chunk is an error, not a hang;
//! and a server inside a network namespace is reached by joining it.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;

use elkfs_bench::cluster::direct::{self, ChunkRef, Job, Target};
use elkfs_chunkserver::config::CsConfig;
use elkfs_chunkserver::Running;
use elkfs_engine::{ChunkId, Version, BLOCK_SIZE};

/// Blocks per test chunk (4 MiB).
const BLOCKS: usize = 64;

fn config(dir: &Path, host: &str) -> CsConfig {
    CsConfig::standalone(dir, host).expect("test folders")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    }
}

fn job(write: bool) -> Job {
    Job { write, connections: 3, window: 8, chunk_bytes: BLOCKS * BLOCK_SIZE, verify_all: true }
}

#[test]
fn whole_chunks_go_out_and_come_back() {
    let dir = tempfile::Builder::new().prefix("elkfs-direct").tempdir_in("/var/tmp").unwrap();
    let rt = runtime();
    let cs = rt.block_on(Running::start(config(dir.path(), "127.0.0.1"))).expect("chunkserver starts");
    let chunks: Vec<ChunkRef> = (1..=5).map(|id| ChunkRef { id, version: 7 }).collect();
    for c in &chunks {
        rt.block_on(cs.engine().create(ChunkId(c.id), Version(c.version))).unwrap();
    }
    let target = Target { addr: v4(cs.data_addr), netns: None, chunks: chunks.clone(), stop: None, pace: None };

    let wrote = direct::run(&target, &job(true)).expect("direct write");
    assert_eq!(wrote.bytes, (5 * BLOCKS * BLOCK_SIZE) as u64);
    assert_eq!(wrote.ops, 5);
    assert!(wrote.mib_s() > 0.0 && wrote.p99_us >= wrote.p50_us);
    for c in &chunks {
        let blocks = rt.block_on(cs.engine().blocks(ChunkId(c.id), Version(c.version))).unwrap();
        assert_eq!(blocks, BLOCKS, "chunk {} holds every block written", c.id);
    }
    // Every piece's CRC is checked against its data on the way back.
    let read = direct::run(&target, &job(false)).expect("direct read");
    assert_eq!(read.bytes, wrote.bytes);
    // Window 1 and a single connection work too.
    let one = Job { connections: 1, window: 1, ..job(true) };
    assert_eq!(direct::run(&Target { chunks: chunks[..1].to_vec(), ..target.clone() }, &one).unwrap().ops, 1);

    let wrong_version = Target { chunks: vec![ChunkRef { id: 1, version: 8 }], ..target.clone() };
    let err = direct::run(&wrong_version, &job(false)).unwrap_err();
    assert!(format!("{err:#}").contains("READ failed"), "{err:#}");
    let missing = Target { chunks: vec![ChunkRef { id: 99, version: 7 }], ..target.clone() };
    let err = direct::run(&missing, &job(true)).unwrap_err();
    assert!(format!("{err:#}").contains("WRITE refused"), "{err:#}");
    rt.block_on(cs.shutdown());
}

#[test]
fn a_server_in_a_network_namespace_is_reached_by_joining_it() {
    elkfs_harness::require_root();
    let ns = elkfs_harness::Netns::new();
    let dir = tempfile::Builder::new().prefix("elkfs-direct").tempdir_in("/var/tmp").unwrap();
    let rt = runtime();
    let (ns_path, host) = (ns.path(), ns.addr().to_string());
    // The listener is bound on the thread that polls `start`: put that
    // thread in the namespace first.
    let cs = std::thread::scope(|s| {
        s.spawn(|| {
            let f = std::fs::File::open(&ns_path).unwrap();
            // SAFETY: setns on a descriptor we own; only this thread moves.
            assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) }, 0);
            rt.block_on(Running::start(config(dir.path(), &host))).expect("chunkserver starts")
        })
        .join()
        .unwrap()
    });
    rt.block_on(cs.engine().create(ChunkId(3), Version(1))).unwrap();
    let chunks = vec![ChunkRef { id: 3, version: 1 }];
    let outside = Target { addr: v4(cs.data_addr), netns: None, chunks, stop: None, pace: None };
    assert!(direct::run(&outside, &job(true)).is_err(), "the address exists only inside the namespace");
    let inside = Target { netns: Some(ns.path()), ..outside };
    assert_eq!(direct::run(&inside, &job(true)).unwrap().ops, 1);
    assert_eq!(direct::run(&inside, &job(false)).unwrap().bytes, (BLOCKS * BLOCK_SIZE) as u64);
    rt.block_on(cs.shutdown());
}
