//! The master link against scripted chunkservers: registration shapes and
//! refusals, reports, failures and silence on the client path, damage
//! handling and the deletion limit of the maintenance loop.

mod support;

use std::sync::Arc;
use std::time::Duration;

use elkfs_master::cluster::{ClusterConfig, CopyState};
use elkfs_proto::master_cs::{CsToMa, MaToCs, VERSION_ON_REMOVED_DISK};
use elkfs_proto::{Addr, Status};
use support::fake::{begin, space, FakeCs};
use support::{wait, Master, TestCatalog, LOCALHOST};

const LIMIT: Duration = Duration::from_secs(10);

fn master(maintenance: bool) -> Master {
    let listener = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
    let config = ClusterConfig { op_timeout: Duration::from_secs(1), ..ClusterConfig::test_min() };
    Master::start_on(listener, Arc::new(TestCatalog::default()), maintenance, config)
}

fn data_addr(port: u16) -> Addr {
    Addr::new(LOCALHOST, port)
}

#[test]
fn restart_shape_then_new_chunks_labels_and_space() {
    let m = master(false);
    // What a restarted 3.0.117 server sends: zero space, no list, END.
    let mut cs = FakeCs::connect(m.port, 9500);
    cs.send(&begin(9500, 0, space(0, 0)));
    assert!(matches!(cs.recv(), Some(MaToCs::Ack(_))));
    assert!(!m.cluster.stable(), "a chunk list is still due");
    cs.send(&CsToMa::Labels(0b101));
    cs.send(&CsToMa::RegisterEnd);
    cs.send(&CsToMa::ChunkNew(vec![(1, 1), (2, 3 | VERSION_ON_REMOVED_DISK)]));
    cs.send(&CsToMa::Space(space(100, 10)));
    wait("the report to land", LIMIT, || {
        let s = m.cluster.servers();
        (s.len() == 1 && s[0].registered && s[0].chunks == 2 && s[0].space.total > 0)
            .then_some(())
            .ok_or(format!("{s:?}"))
    });
    let s = &m.cluster.servers()[0];
    assert_eq!((s.labelmask, s.addr), (0b101, data_addr(9500)));
    assert_eq!(m.cluster.totals(), (100 << 30, 90 << 30));
    assert_eq!(m.cluster.locations(1, 1).len(), 1);
    let c2 = m.cluster.copies(2);
    assert!(c2.len() == 1 && c2[0].on_removal_disk && c2[0].version == 3, "{c2:?}");
    cs.send(&CsToMa::ChunkLost(vec![1]));
    cs.send(&CsToMa::ErrorOccurred);
    // The two reports land one after the other: wait for both.
    wait("the loss and the error to land", LIMIT, || {
        let errors = m.cluster.servers()[0].errors;
        (m.cluster.copies(1).is_empty() && errors == 1).then_some(()).ok_or(format!("errors {errors}"))
    });
}

#[test]
fn bad_peers_are_refused_and_only_their_link_closes() {
    let m = master(false);
    let mut good = FakeCs::register(m.port, 9600, &[(1, 1)], space(10, 1));
    let mut short_timeout = FakeCs::connect(m.port, 9601);
    short_timeout.send(&begin(9601, 5, space(10, 1)));
    assert!(short_timeout.closed(), "timeouts under 10 s are refused");
    let mut twin = FakeCs::connect(m.port, 9600);
    twin.send(&begin(9600, 0, space(10, 1)));
    assert!(twin.closed(), "an address connected already is refused");
    let mut early = FakeCs::connect(m.port, 9602);
    early.send(&CsToMa::Space(space(1, 1)));
    assert!(early.closed(), "reports before BEGIN are refused");
    let mut mid = FakeCs::register(m.port, 9603, &[(1, 1)], space(10, 1));
    wait("both registered", LIMIT, || {
        let n = m.cluster.servers().iter().filter(|s| s.registered).count();
        (n == 2).then_some(()).ok_or(format!("{n}"))
    });
    // SPACE with a length no form has.
    mid.send_raw(&[0, 0, 0, 101, 0, 0, 0, 3, 1, 2, 3]);
    assert!(mid.closed());
    wait("the broken server to drop", LIMIT, || {
        let s = m.cluster.servers();
        (s.len() == 1 && s[0].addr == data_addr(9600)).then_some(()).ok_or(format!("{s:?}"))
    });
    assert_eq!(
        m.cluster.locations(1, 1),
        vec![elkfs_master::cluster::Location { addr: data_addr(9600), cs_version: elkfs_proto::VERSION, labelmask: 0 }]
    );
    good.nop();
}

#[test]
fn create_and_set_version_count_successes_and_failures() {
    let m = master(false);
    assert_eq!(m.rt.block_on(m.cluster.create_chunk(1, 1, 1)), Err(Status::NOCHUNKSERVERS));
    let mut a = FakeCs::register(m.port, 9700, &[], space(100, 10));
    let mut b = FakeCs::register(m.port, 9701, &[], space(100, 20));
    wait("both registered", LIMIT, || {
        let n = m.cluster.servers().iter().filter(|s| s.registered).count();
        (n == 2).then_some(()).ok_or(format!("{n}"))
    });
    let c = m.cluster.clone();
    let create = m.rt.spawn(async move { c.create_chunk(1, 1, 2).await });
    assert_eq!(a.recv(), Some(MaToCs::Create { chunk: 1, version: 1 }));
    assert_eq!(b.recv(), Some(MaToCs::Create { chunk: 1, version: 1 }));
    a.send(&CsToMa::CreateReply { chunk: 1, status: Status::OK });
    b.send(&CsToMa::CreateReply { chunk: 1, status: Status::NOSPACE });
    assert_eq!(m.rt.block_on(create).unwrap(), Ok(()));
    assert_eq!(
        m.cluster.locations(1, 1),
        vec![elkfs_master::cluster::Location { addr: data_addr(9700), cs_version: elkfs_proto::VERSION, labelmask: 0 }]
    );

    // Silence: the op timeout (1 s here) fails the command.
    let c = m.cluster.clone();
    let create = m.rt.spawn(async move { c.create_chunk(2, 1, 1).await });
    assert_eq!(a.recv(), Some(MaToCs::Create { chunk: 2, version: 1 }), "most free space first");
    assert_eq!(m.rt.block_on(create).unwrap(), Err(Status::NOTDONE));
    assert!(m.cluster.copies(2).is_empty());

    // Both hold chunk 3; one fails its version change.
    a.send(&CsToMa::ChunkNew(vec![(3, 1)]));
    b.send(&CsToMa::ChunkNew(vec![(3, 1)]));
    wait("two copies", LIMIT, || {
        let n = m.cluster.locations(3, 1).len();
        (n == 2).then_some(()).ok_or(format!("{n}"))
    });
    let c = m.cluster.clone();
    let setv = m.rt.spawn(async move { c.set_version(3, 1, 2).await });
    let want = MaToCs::SetVersion { chunk: 3, new_version: 2, old_version: 1 };
    assert_eq!(a.recv(), Some(want.clone()));
    assert_eq!(b.recv(), Some(want));
    a.send(&CsToMa::SetVersionReply { chunk: 3, status: Status::OK });
    b.send(&CsToMa::SetVersionReply { chunk: 3, status: Status::IO });
    assert_eq!(m.rt.block_on(setv).unwrap(), Ok(()));
    let mut states: Vec<(u16, u32, CopyState)> =
        m.cluster.copies(3).iter().map(|c| (c.addr.port, c.version, c.state)).collect();
    states.sort_by_key(|s| s.0);
    assert_eq!(states, vec![(9700, 2, CopyState::Valid), (9701, 1, CopyState::Invalid)]);
    assert_eq!(m.rt.block_on(m.cluster.set_version(3, 1, 2)), Err(Status::CHUNKLOST));

    // A full cluster says so.
    a.send(&CsToMa::Space(space(100, 100)));
    b.send(&CsToMa::Space(space(100, 100)));
    wait("full", LIMIT, || {
        let (_, avail) = m.cluster.totals();
        (avail == 0).then_some(()).ok_or(format!("{avail}"))
    });
    assert_eq!(m.rt.block_on(m.cluster.create_chunk(4, 1, 1)), Err(Status::NOSPACE));
}

#[test]
fn damaged_copy_is_deleted_and_replaced_from_a_valid_one() {
    let m = master(true);
    m.catalog.set(1, 1, 2, false);
    let mut a = FakeCs::register(m.port, 9800, &[(1, 1)], space(100, 10));
    let mut b = FakeCs::register(m.port, 9801, &[(1, 1)], space(100, 10));
    wait("two copies", LIMIT, || {
        let n = m.cluster.locations(1, 1).len();
        (n == 2).then_some(()).ok_or(format!("{n}"))
    });
    b.send(&CsToMa::ChunkDamaged(vec![1]));
    assert_eq!(b.recv(), Some(MaToCs::Delete { chunk: 1, version: 0 }));
    b.send(&CsToMa::DeleteReply { chunk: 1, status: Status::OK });
    let mut c = FakeCs::register(m.port, 9802, &[], space(100, 1));
    let replicate = c.recv();
    assert_eq!(replicate, Some(MaToCs::Replicate { chunk: 1, version: 1, source: data_addr(9800) }));
    c.send(&CsToMa::ReplicateReply { chunk: 1, version: 1, status: Status::OK });
    wait("the new copy", LIMIT, || {
        let mut ports: Vec<u16> = m.cluster.locations(1, 1).iter().map(|l| l.addr.port).collect();
        ports.sort();
        (ports == [9800, 9802]).then_some(()).ok_or(format!("{ports:?}"))
    });
    a.nop();
}

#[test]
fn deletions_in_flight_stay_within_the_limits() {
    let m = master(true);
    let chunks: Vec<(u64, u32)> = (1..=30).map(|id| (id, 1)).collect();
    let mut a = FakeCs::register(m.port, 9900, &chunks, space(100, 10));
    wait("registered", LIMIT, || {
        let n = m.cluster.servers().first().map_or(0, |s| s.chunks);
        (n == 30).then_some(()).ok_or(format!("{n}"))
    });
    for id in 1..=30 {
        m.cluster.release(id);
    }
    // 30 queued on one server is a backlog: the hard limit (25) applies.
    let mut got = Vec::new();
    while let Some(MaToCs::Delete { chunk, version }) = a.recv_within(Duration::from_millis(1500)) {
        assert_eq!(version, 1, "released chunks are deleted at their exact version");
        got.push(chunk);
    }
    assert_eq!(got.len(), 25, "{got:?}");
    for id in &got {
        a.send(&CsToMa::DeleteReply { chunk: *id, status: Status::OK });
    }
    let mut rest = 0;
    while let Some(MaToCs::Delete { .. }) = a.recv_within(Duration::from_millis(1500)) {
        rest += 1;
    }
    assert_eq!(rest, 5);
}
