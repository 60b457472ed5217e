//! The master's chunkserver side against a real MooseFS 3.0.117
//! `mfschunkserver` next to an `elkfs chunkserver`, in a private network
//! namespace (the real server refuses a master on 127.0.0.0/8). The test
//! master's listening socket is made inside the namespace from a thread
//! that entered it; the rest of the master runs on ordinary threads.

mod support;

use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use elkfs_harness::moosefs::{chunk_files_in, write_chunkserver, ChunkserverFiles};
use elkfs_harness::proc::{tool_path, Spec};
use elkfs_harness::{require_root, require_tools, Daemon, Netns};
use elkfs_master::cluster::{ClusterConfig, CopyState};
use support::{wait, Master, TestCatalog};

const LIMIT: Duration = Duration::from_secs(60);

fn listen_in(ns: &Netns, addr: Ipv4Addr) -> TcpListener {
    let path = ns.path();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on a descriptor we own; it changes only this
        // short-lived thread's network namespace.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
        TcpListener::bind((addr, 0)).unwrap()
    })
    .join()
    .unwrap()
}

fn versions(files: &ChunkserverFiles, id: u64) -> Vec<u32> {
    let prefix = format!("chunk_{id:016X}_");
    chunk_files_in(&files.hdd)
        .iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().to_string();
            u32::from_str_radix(name.strip_prefix(&prefix)?.strip_suffix(".mfs")?, 16).ok()
        })
        .collect()
}

fn wait_versions(servers: &[&ChunkserverFiles], id: u64, want: &[Vec<u32>]) {
    wait(&format!("chunk {id:X} files {want:?}"), LIMIT, || {
        let got: Vec<Vec<u32>> = servers.iter().map(|f| versions(f, id)).collect();
        (got == want).then_some(()).ok_or(format!("{got:?}"))
    });
}

fn chunkserver(
    ns: &Netns,
    dir: &Path,
    name: &str,
    port: u16,
    master_port: u16,
    real: bool,
) -> (Daemon, ChunkserverFiles) {
    chunkserver_with(ns, dir, name, port, master_port, real, &[])
}

fn chunkserver_with(
    ns: &Netns,
    dir: &Path,
    name: &str,
    port: u16,
    master_port: u16,
    real: bool,
    extra: &[(String, String)],
) -> (Daemon, ChunkserverFiles) {
    let files = write_chunkserver(&dir.join(name), ns.addr(), port, ns.addr(), master_port, extra);
    let (program, args) = if real {
        (
            tool_path("mfschunkserver"),
            vec!["-f".into(), "-c".into(), files.cfg.clone().into_os_string(), "start".into()],
        )
    } else {
        (elkfs_harness::elkfs_binary(), vec!["chunkserver".into(), "-c".into(), files.cfg.clone().into_os_string()])
    };
    let spec = Spec { name: name.into(), program, args, log: dir.join(format!("{name}.log")), netns: ns.path() };
    (Daemon::spawn(spec), files)
}

#[test]
fn real_and_elkfs_chunkservers_serve_the_master() {
    require_root();
    require_tools(&["mfschunkserver", "nsenter", "ip"]);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ns = Netns::new();
    let listener = listen_in(&ns, ns.addr());
    let config = ClusterConfig { allow_loopback: false, ..ClusterConfig::test_min() };
    let catalog = Arc::new(TestCatalog::default());
    let master = Master::start_on(listener, catalog.clone(), true, config);
    let (_real, real_files) = chunkserver(&ns, dir.path(), "real", 9422, master.port, true);
    let (_elk, elk_files) = chunkserver(&ns, dir.path(), "elkfs", 9423, master.port, false);
    master.wait_registered(2);
    let both = [&real_files, &elk_files];

    // Placement on both, then a version change and a truncation.
    catalog.set(1, 1, 2, false);
    assert_eq!(master.rt.block_on(master.cluster.create_chunk(1, 1, 2)), Ok(()));
    wait_versions(&both, 1, &[vec![1], vec![1]]);
    assert_eq!(master.rt.block_on(master.cluster.set_version(1, 1, 2)), Ok(()));
    assert_eq!(master.rt.block_on(master.cluster.truncate(1, 2, 3, 100_000)), Ok(()));
    catalog.set(1, 3, 2, false);
    wait_versions(&both, 1, &[vec![3], vec![3]]);
    let copies = master.cluster.copies(1);
    assert!(copies.len() == 2 && copies.iter().all(|c| c.state == CopyState::Valid), "{copies:?}");

    // Replication in both directions: goal 1 chunks raised to 2.
    for id in 2..6 {
        catalog.set(id, 1, 1, false);
        assert_eq!(master.rt.block_on(master.cluster.create_chunk(id, 1, 1)), Ok(()));
    }
    for id in 2..6 {
        catalog.set(id, 1, 2, false);
    }
    for id in 2..6 {
        wait_versions(&both, id, &[vec![1], vec![1]]);
    }

    // Released: gone from both disks.
    catalog.remove(1);
    master.cluster.release(1);
    wait_versions(&both, 1, &[vec![], vec![]]);
}

#[test]
fn real_chunkserver_answers_the_auth_challenge() {
    require_root();
    require_tools(&["mfschunkserver", "nsenter", "ip"]);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ns = Netns::new();
    let listener = listen_in(&ns, ns.addr());
    let config = ClusterConfig { auth_code: Some("open sesame".into()), ..ClusterConfig::test_min() };
    let master = Master::start_on(listener, Arc::new(TestCatalog::default()), false, config);
    let good = [("AUTH_CODE".to_string(), "open sesame".to_string())];
    let bad = [("AUTH_CODE".to_string(), "open barley".to_string())];
    let (_good, _) = chunkserver_with(&ns, dir.path(), "good", 9422, master.port, true, &good);
    let (_bad, _) = chunkserver_with(&ns, dir.path(), "bad", 9423, master.port, true, &bad);
    master.wait_registered(1);
    std::thread::sleep(Duration::from_secs(2));
    let servers = master.cluster.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0].addr.port, 9422);
}
