//! The data port over real sockets, in process: full-block writes and reads
//! that copy nothing, write chains between two servers, ordering of pieces
//! of one block, and bad packets that close only their own connection.

use std::path::Path;
use std::time::Duration;

use elkfs_chunkserver::config::CsConfig;
use elkfs_chunkserver::Running;
use elkfs_engine::{ChunkId, Version, BLOCK_SIZE};
use elkfs_proto::data::{DataMsg, ReadDataHead, WriteDataHead, READ_DATA, READ_DATA_HEAD_LEN};
use elkfs_proto::frame::Encode;
use elkfs_proto::{Addr, Header, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(dir: &Path) -> CsConfig {
    CsConfig::standalone(dir, "127.0.0.1").expect("test folders")
}

async fn server(dir: &Path) -> Running {
    Running::start(config(dir)).await.expect("chunkserver starts")
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i as u64).wrapping_mul(2654435761).wrapping_add(seed * 97) >> 7) as u8).collect()
}

struct Client {
    s: TcpStream,
}

impl Client {
    async fn connect(r: &Running) -> Client {
        let s = TcpStream::connect(r.data_addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Client { s }
    }

    async fn send(&mut self, m: &DataMsg) {
        self.s.write_all(&m.to_packet()).await.unwrap();
    }

    async fn send_data(&mut self, head: WriteDataHead, data: &[u8]) {
        self.s.write_all(&head.packet_prefix()).await.unwrap();
        self.s.write_all(data).await.unwrap();
    }

    /// The next message other than a NOP; READ_DATA comes with its data.
    async fn recv(&mut self) -> (DataMsg, Vec<u8>) {
        loop {
            let mut h = [0u8; 8];
            tokio::time::timeout(Duration::from_secs(10), self.s.read_exact(&mut h)).await.unwrap().unwrap();
            let h = Header::parse(&h);
            let mut payload = vec![0u8; h.len as usize];
            self.s.read_exact(&mut payload).await.unwrap();
            let msg = DataMsg::decode(h.kind, &payload).unwrap();
            if msg == DataMsg::Nop {
                continue;
            }
            let data = if h.kind == READ_DATA { payload[READ_DATA_HEAD_LEN..].to_vec() } else { Vec::new() };
            return (msg, data);
        }
    }

    async fn write(&mut self, chunk: u64, version: u32, chain: Vec<Addr>, pieces: &[(u16, u16, Vec<u8>)]) -> Status {
        self.send(&DataMsg::Write { protocol: Some(1), chunk, version, chain }).await;
        match self.recv().await.0 {
            DataMsg::WriteStatus { write_id: 0, status, .. } if status.is_ok() => {}
            DataMsg::WriteStatus { status, .. } => return status,
            other => panic!("unexpected {other:?}"),
        }
        for (i, (block, offset, data)) in pieces.iter().enumerate() {
            let crc = crc32fast::hash(data);
            let head = WriteDataHead {
                chunk,
                write_id: i as u32 + 1,
                block: *block,
                offset: *offset,
                size: data.len() as u32,
                crc,
            };
            self.send_data(head, data).await;
        }
        let mut worst = Status::OK;
        for i in 0..pieces.len() {
            match self.recv().await.0 {
                DataMsg::WriteStatus { write_id, status, .. } => {
                    assert_eq!(write_id, i as u32 + 1, "statuses come back in order");
                    if !status.is_ok() && worst.is_ok() {
                        worst = status;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        self.send(&DataMsg::WriteFinish { chunk, version }).await;
        worst
    }

    async fn read(&mut self, chunk: u64, version: u32, offset: u32, size: u32) -> Result<Vec<u8>, Status> {
        self.send(&DataMsg::Read { protocol: Some(1), chunk, version, offset, size }).await;
        let mut out = Vec::new();
        loop {
            match self.recv().await {
                (DataMsg::ReadData(ReadDataHead { offset: o, size, crc, block, .. }), data) => {
                    assert_eq!(data.len(), size as usize);
                    assert_eq!(crc32fast::hash(&data), crc, "piece CRC");
                    assert_eq!(block as u64 * BLOCK_SIZE as u64 + o as u64, offset as u64 + out.len() as u64);
                    out.extend_from_slice(&data);
                }
                (DataMsg::ReadStatus { status, .. }, _) if status.is_ok() => return Ok(out),
                (DataMsg::ReadStatus { status, .. }, _) => return Err(status),
                (other, _) => panic!("unexpected {other:?}"),
            }
        }
    }
}

fn blocks_of(data: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
    data.chunks(BLOCK_SIZE).enumerate().map(|(i, b)| (i as u16, 0, b.to_vec())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_blocks_travel_socket_to_disk_and_back_uncopied() {
    let dir = tempfile::tempdir().unwrap();
    let cs = server(dir.path()).await;
    cs.engine().create(ChunkId(7), Version(3)).await.unwrap();
    let data = pattern(1, 40 * BLOCK_SIZE);
    let mut c = Client::connect(&cs).await;
    assert_eq!(c.write(7, 3, vec![], &blocks_of(&data)).await, Status::OK);
    assert_eq!(c.read(7, 3, 0, data.len() as u32).await.unwrap(), data);
    // Version 0 means "whatever is stored".
    assert_eq!(c.read(7, 0, BLOCK_SIZE as u32, BLOCK_SIZE as u32).await.unwrap(), &data[BLOCK_SIZE..2 * BLOCK_SIZE]);
    assert_eq!(cs.engine().copied_bytes(), 0, "no user-space copy on the whole-block path");
    let snap = cs.metrics().snapshot();
    assert_eq!(snap.write_chains[0], 1);
    cs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_chain_puts_the_data_on_both_servers() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (server(d1.path()).await, server(d2.path()).await);
    for cs in [&a, &b] {
        cs.engine().create(ChunkId(11), Version(1)).await.unwrap();
    }
    let data = pattern(2, 3 * BLOCK_SIZE + 1234);
    let mut pieces = blocks_of(&data);
    // A partial piece in the middle of a block, too.
    pieces.push((5, 100, pattern(3, 5000)));
    let next = match b.data_addr {
        std::net::SocketAddr::V4(v4) => Addr::new(*v4.ip(), v4.port()),
        _ => unreachable!(),
    };
    let mut c = Client::connect(&a).await;
    assert_eq!(c.write(11, 1, vec![next], &pieces).await, Status::OK);
    let mut expect = data.clone();
    expect.resize(5 * BLOCK_SIZE + 100, 0);
    expect.extend_from_slice(&pattern(3, 5000));
    for cs in [&a, &b] {
        let mut c = Client::connect(cs).await;
        assert_eq!(c.read(11, 1, 0, expect.len() as u32).await.unwrap(), expect);
    }
    assert_eq!(a.metrics().snapshot().write_chains[1], 1);
    assert_eq!(b.metrics().snapshot().write_chains[0], 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pieces_of_one_block_land_in_the_order_sent() {
    let dir = tempfile::tempdir().unwrap();
    let cs = server(dir.path()).await;
    cs.engine().create(ChunkId(5), Version(1)).await.unwrap();
    // Overlapping pieces: the result depends on their order.
    let mut expect = vec![0u8; BLOCK_SIZE];
    let mut pieces = Vec::new();
    for i in 0..40u64 {
        let offset = (i as usize * 1531) % (BLOCK_SIZE - 6000);
        let data = pattern(10 + i, 6000);
        expect[offset..offset + 6000].copy_from_slice(&data);
        pieces.push((0u16, offset as u16, data));
    }
    let mut c = Client::connect(&cs).await;
    assert_eq!(c.write(5, 1, vec![], &pieces).await, Status::OK);
    assert_eq!(c.read(5, 1, 0, BLOCK_SIZE as u32).await.unwrap(), expect);
    cs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_back_as_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let cs = server(dir.path()).await;
    cs.engine().create(ChunkId(1), Version(2)).await.unwrap();
    let mut c = Client::connect(&cs).await;
    assert_eq!(c.read(99, 1, 0, 10).await, Err(Status::NOCHUNK));
    assert_eq!(c.read(1, 5, 0, 10).await, Err(Status::WRONGVERSION));
    assert_eq!(c.read(1, 2, 64 << 20, 10).await, Err(Status::WRONGOFFSET));
    assert_eq!(c.read(1, 2, 0, 0).await, Ok(vec![]));
    // Past the stored end of a chunk reads as zeros.
    assert_eq!(c.read(1, 2, 0, 70_000).await, Ok(vec![0; 70_000]));
    assert_eq!(c.write(99, 1, vec![], &[(0, 0, vec![1; 10])]).await, Status::NOCHUNK);
    // A piece whose CRC does not match its data is refused.
    let mut c = Client::connect(&cs).await;
    c.send(&DataMsg::Write { protocol: Some(1), chunk: 1, version: 2, chain: vec![] }).await;
    assert!(matches!(c.recv().await.0, DataMsg::WriteStatus { write_id: 0, status: Status::OK, .. }));
    let head = WriteDataHead { chunk: 1, write_id: 1, block: 0, offset: 0, size: 4, crc: 12345 };
    c.send_data(head, &[1, 2, 3, 4]).await;
    assert!(matches!(c.recv().await.0, DataMsg::WriteStatus { write_id: 1, status: Status::CRC, .. }));
    cs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_packet_closes_its_connection_only() {
    let dir = tempfile::tempdir().unwrap();
    let cs = server(dir.path()).await;
    let mut good = Client::connect(&cs).await;
    for garbage in [
        vec![0, 0, 39, 15, 0, 0, 0, 4, 1, 2, 3, 4],     // unknown type
        vec![0, 0, 0, 200, 0, 0, 0, 3, 1, 2, 3],        // READ of 3 bytes
        vec![0, 0, 0, 212, 0x7F, 0, 0, 0],              // over the size limit
        vec![0, 0, 0, 212, 0, 0, 0, 30, 0, 0, 0, 0, 0], // truncated WRITE_DATA
    ] {
        let mut bad = TcpStream::connect(cs.data_addr).await.unwrap();
        bad.write_all(&garbage).await.unwrap();
        // Keep-alive NOPs may come first (a truncated packet is only known
        // as such when the peer falls silent); then the server hangs up.
        // The good connection keeps itself alive meanwhile, as clients do.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 64];
        loop {
            assert!(std::time::Instant::now() < deadline, "connection not closed after {garbage:?}");
            match tokio::time::timeout(Duration::from_secs(1), bad.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => assert!(buf[..n].iter().all(|b| *b == 0), "only NOPs before the close"),
                Err(_) => good.send(&DataMsg::Nop).await,
            }
        }
    }
    good.send(&DataMsg::GetVersion { msgid: None }).await;
    match good.recv().await.0 {
        DataMsg::Version { version, .. } => assert_eq!(version, elkfs_proto::VERSION),
        other => panic!("unexpected {other:?}"),
    }
    cs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_chain_link_reaches_the_client_as_disconnected() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (server(d1.path()).await, server(d2.path()).await);
    for cs in [&a, &b] {
        cs.engine().create(ChunkId(21), Version(1)).await.unwrap();
    }
    let next = match b.data_addr {
        std::net::SocketAddr::V4(v4) => Addr::new(*v4.ip(), v4.port()),
        _ => unreachable!(),
    };
    a.faults().cut_forward_after(3);
    let mut c = Client::connect(&a).await;
    c.send(&DataMsg::Write { protocol: Some(1), chunk: 21, version: 1, chain: vec![next] }).await;
    assert!(matches!(c.recv().await.0, DataMsg::WriteStatus { write_id: 0, status: Status::OK, .. }));
    let data = pattern(4, 6 * BLOCK_SIZE);
    for (i, block) in data.chunks(BLOCK_SIZE).enumerate() {
        let head = WriteDataHead {
            chunk: 21,
            write_id: i as u32 + 1,
            block: i as u16,
            offset: 0,
            size: BLOCK_SIZE as u32,
            crc: crc32fast::hash(block),
        };
        c.send_data(head, block).await;
    }
    // Pieces the next server confirmed before the cut (at most the three
    // forwarded) are acknowledged in order, then the cut shows as
    // DISCONNECTED and the connection ends.
    let mut seen = Vec::new();
    loop {
        let mut h = [0u8; 8];
        match tokio::time::timeout(Duration::from_secs(10), c.s.read_exact(&mut h)).await.unwrap() {
            Ok(_) => {}
            Err(_) => break,
        }
        let h = Header::parse(&h);
        let mut payload = vec![0u8; h.len as usize];
        c.s.read_exact(&mut payload).await.unwrap();
        match DataMsg::decode(h.kind, &payload).unwrap() {
            DataMsg::WriteStatus { write_id, status, .. } => seen.push((write_id, status)),
            DataMsg::Nop => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen.last(), Some(&(0, Status::DISCONNECTED)), "{seen:?}");
    let acked = seen.len() - 1;
    assert!(acked <= 3, "{seen:?}");
    let expect: Vec<(u32, Status)> = (1..=acked as u32).map(|i| (i, Status::OK)).collect();
    assert_eq!(&seen[..acked], &expect[..]);
    // What was acknowledged is on both servers.
    a.faults().clear();
    for cs in [&a, &b] {
        let mut c = Client::connect(cs).await;
        let len = (acked * BLOCK_SIZE) as u32;
        assert_eq!(c.read(21, 1, 0, len).await.unwrap(), &data[..acked * BLOCK_SIZE]);
    }
    a.shutdown().await;
    b.shutdown().await;
}
