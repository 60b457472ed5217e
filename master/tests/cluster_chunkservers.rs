//! The master's chunkserver side against real `elkfs chunkserver`
//! processes: registration, placement, version changes, the maintenance
//! loop (replication, surplus, released and unknown chunks) and a peer that
//! sends garbage.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use elkfs_master::cluster::{ClusterConfig, CopyState};
use elkfs_proto::Status;
use support::{on_disk, wait, Cs, Master, TestCatalog, LOCALHOST};

const LIMIT: Duration = Duration::from_secs(30);

fn setup(n: usize, maintenance: bool) -> (tempfile::TempDir, Master, Vec<Cs>) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let port = support::free_port();
    let master = Master::start(port, Arc::new(TestCatalog::default()), maintenance);
    let servers: Vec<Cs> = (0..n).map(|i| Cs::new(dir.path(), &format!("cs{i}"), port)).collect();
    master.wait_registered(n);
    (dir, master, servers)
}

fn wait_on_disk(servers: &[&Cs], id: u64, version: u32, n: usize) {
    wait(&format!("{n} copies of {id:X} v{version} on disk"), LIMIT, || {
        let got = on_disk(servers, id, version);
        let total: usize = servers.iter().map(|cs| cs.versions_on_disk(id).len()).sum();
        (got == n && total == n).then_some(()).ok_or(format!("{got} at that version, {total} in all"))
    });
}

#[test]
fn create_set_version_truncate_and_reregistration() {
    let (_dir, master, cs) = setup(3, false);
    let all: Vec<&Cs> = cs.iter().collect();
    let c = &master.cluster;
    assert_eq!(master.rt.block_on(c.create_chunk(1, 1, 2)), Ok(()));
    wait_on_disk(&all, 1, 1, 2);
    let locs = c.locations(1, 1);
    assert_eq!(locs.len(), 2);
    assert_ne!(locs[0].addr, locs[1].addr, "copies on distinct servers");
    assert!(locs.iter().all(|l| l.cs_version == elkfs_proto::VERSION));

    assert_eq!(master.rt.block_on(c.set_version(1, 1, 2)), Ok(()));
    wait_on_disk(&all, 1, 2, 2);
    assert_eq!(c.locations(1, 1), vec![], "no copy left at the old version");
    assert_eq!(master.rt.block_on(c.truncate(1, 2, 3, 70_000)), Ok(()));
    wait_on_disk(&all, 1, 3, 2);
    assert_eq!(master.rt.block_on(c.set_version(1, 2, 4)), Err(Status::CHUNKLOST));
    assert_eq!(master.rt.block_on(c.create_chunk(2, 1, 5)), Ok(()), "fewer servers than the goal");
    wait_on_disk(&all, 2, 1, 3);

    // A new master on the same port: the servers come back with their lists.
    let (port, catalog) = (master.port, master.catalog.clone());
    drop(master);
    let master = Master::start(port, catalog, false);
    master.wait_registered(3);
    let copies = master.cluster.copies(1);
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies.iter().all(|c| c.version == 3 && c.state == CopyState::Valid));
    assert_eq!(master.cluster.locations(2, 1).len(), 3);
    let servers = master.cluster.servers();
    let ids: Vec<u16> = servers.iter().map(|s| s.csid).collect();
    assert_eq!(ids, vec![1, 2, 3], "ids kept from chunkserverid.mfs");
    assert_eq!(servers.iter().map(|s| s.chunks).sum::<usize>(), 5);
    let (total, avail) = master.cluster.totals();
    assert!(total > 0 && avail <= total);
    let metaid = elkfs_master::cluster::Catalog::metaid(&*master.catalog);
    for s in &cs {
        assert_eq!(s.stored_ids().1, metaid, "the chunkserver keeps the file system's id");
    }
}

#[test]
fn auth_code_admits_only_servers_that_know_it() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let listener = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
    let config = ClusterConfig { auth_code: Some("s3cret#1".into()), ..ClusterConfig::test_min() };
    let master = Master::start_on(listener, Arc::new(TestCatalog::default()), false, config);
    let good = Cs::with_config(dir.path(), "good", master.port, &[("AUTH_CODE", "s3cret#1")]);
    let bad = Cs::with_config(dir.path(), "bad", master.port, &[("AUTH_CODE", "guess")]);
    let none = Cs::new(dir.path(), "none", master.port);
    master.wait_registered(1);
    std::thread::sleep(Duration::from_secs(2));
    let servers = master.cluster.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0].addr.port, good.port);
    assert!(bad.stored_ids_missing() && none.stored_ids_missing());
}

#[test]
fn lost_copy_is_replicated_and_surplus_deleted() {
    let (_dir, master, mut cs) = setup(3, true);
    master.catalog.set(7, 1, 2, false);
    assert_eq!(master.rt.block_on(master.cluster.create_chunk(7, 1, 2)), Ok(()));
    let all: Vec<&Cs> = cs.iter().collect();
    wait_on_disk(&all, 7, 1, 2);
    let holder = cs.iter().position(|s| !s.versions_on_disk(7).is_empty()).unwrap();
    cs[holder].kill();
    let rest: Vec<&Cs> = cs.iter().enumerate().filter(|(i, _)| *i != holder).map(|(_, s)| s).collect();
    wait_on_disk(&rest, 7, 1, 2);
    wait("two valid copies in the view", LIMIT, || {
        let n = master.cluster.locations(7, 1).len();
        (n == 2).then_some(()).ok_or(format!("{n}"))
    });

    master.catalog.set(7, 1, 1, false);
    wait_on_disk(&rest, 7, 1, 1);
    wait("one copy in the view", LIMIT, || {
        let n = master.cluster.copies(7).len();
        (n == 1).then_some(()).ok_or(format!("{n}"))
    });
}

#[test]
fn stale_copy_of_a_returning_server_is_deleted_and_replaced() {
    let (_dir, master, mut cs) = setup(2, true);
    master.catalog.set(5, 1, 2, false);
    assert_eq!(master.rt.block_on(master.cluster.create_chunk(5, 1, 2)), Ok(()));
    let all: Vec<&Cs> = cs.iter().collect();
    wait_on_disk(&all, 5, 1, 2);
    cs[1].kill();
    wait("the server to drop", LIMIT, || {
        let n = master.cluster.servers().len();
        (n == 1).then_some(()).ok_or(format!("{n}"))
    });
    assert_eq!(master.rt.block_on(master.cluster.set_version(5, 1, 2)), Ok(()));
    master.catalog.set(5, 2, 2, false);
    cs[1].start();
    master.wait_registered(2);
    // The v1 copy is deleted, then a v2 copy replicated in its place.
    let all: Vec<&Cs> = cs.iter().collect();
    wait_on_disk(&all, 5, 2, 2);
}

#[test]
fn locked_chunk_one_version_behind_is_brought_forward() {
    let (_dir, master, cs) = setup(1, true);
    assert_eq!(master.rt.block_on(master.cluster.create_chunk(3, 4, 1)), Ok(()));
    // As after a master restart during a write: the catalog is at 5.
    master.catalog.set(3, 5, 1, true);
    wait_on_disk(&[&cs[0]], 3, 5, 1);
    assert_eq!(master.cluster.locations(3, 5).len(), 1);
}

#[test]
fn released_and_unknown_chunks_are_deleted_on_disk() {
    let (_dir, master, cs) = setup(2, true);
    let all: Vec<&Cs> = cs.iter().collect();
    master.catalog.set(10, 1, 2, false);
    assert_eq!(master.rt.block_on(master.cluster.create_chunk(10, 1, 2)), Ok(()));
    // Chunk 11 is never entered in the catalog.
    assert_eq!(master.rt.block_on(master.cluster.create_chunk(11, 1, 2)), Ok(()));
    wait_on_disk(&all, 10, 1, 2);
    wait_on_disk(&all, 11, 1, 0);
    master.catalog.remove(10);
    master.cluster.release(10);
    wait_on_disk(&all, 10, 1, 0);
    assert_eq!(master.cluster.copies(10), vec![]);
    assert_eq!(master.cluster.copies(11), vec![]);
}

#[test]
fn garbage_closes_only_that_connection() {
    let (_dir, master, cs) = setup(1, false);
    let mut bad = std::net::TcpStream::connect((LOCALHOST, master.port)).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    bad.write_all(&[0, 0, 0x27, 0x0F, 0, 0, 0, 4, 1, 2, 3, 4]).unwrap();
    let mut buf = [0u8; 16];
    let n = bad.read(&mut buf).expect("closed, not timed out");
    assert_eq!(n, 0, "the master closes the link");
    // A BEGIN-sized register with a wrong form: also closed.
    let mut bad2 = std::net::TcpStream::connect((LOCALHOST, master.port)).unwrap();
    bad2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    bad2.write_all(&[0, 0, 0, 100, 0, 0, 0, 1, 99]).unwrap();
    assert_eq!(bad2.read(&mut buf).expect("closed"), 0);
    assert_eq!(master.cluster.servers().len(), 1, "the real server stays");
    assert_eq!(master.rt.block_on(master.cluster.create_chunk(20, 1, 1)), Ok(()));
    wait_on_disk(&[&cs[0]], 20, 1, 1);
}

#[test]
fn locations_take_a_chained_write_and_replicas_carry_the_data() {
    let (_dir, master, mut cs) = setup(3, true);
    master.catalog.set(9, 1, 2, false);
    assert_eq!(master.rt.block_on(master.cluster.create_chunk(9, 1, 2)), Ok(()));
    let all: Vec<&Cs> = cs.iter().collect();
    wait_on_disk(&all, 9, 1, 2);
    let locs = master.cluster.locations(9, 1);
    assert_eq!(locs.len(), 2);
    master.catalog.set(9, 1, 2, true);
    support::data::write_blocks(locs[0].addr, vec![locs[1].addr], 9, 1, 3, 7);
    master.catalog.set(9, 1, 2, false);
    let sum = support::data::checksum(locs[0].addr, 9, 1);
    assert_eq!(support::data::checksum(locs[1].addr, 9, 1), sum, "both copies of the chain hold the data");

    let gone = cs.iter().position(|s| s.port == locs[1].addr.port).unwrap();
    cs[gone].kill();
    let rest: Vec<&Cs> = cs.iter().enumerate().filter(|(i, _)| *i != gone).map(|(_, s)| s).collect();
    wait_on_disk(&rest, 9, 1, 2);
    wait("the replication to be answered", LIMIT, || {
        let n = master.cluster.locations(9, 1).len();
        (n == 2).then_some(()).ok_or(format!("{n}"))
    });
    let fresh = rest.iter().find(|s| s.port != locs[0].addr.port).unwrap();
    let fresh_addr = elkfs_proto::Addr::new(LOCALHOST, fresh.port);
    assert_eq!(support::data::checksum(fresh_addr, 9, 1), sum, "the replica holds the same data");
}
