//! Just enough of the data port (9422) to put blocks into a chunk through
//! a write chain and ask a server for a chunk's checksum.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use elkfs_proto::data::{DataMsg, WriteDataHead};
use elkfs_proto::frame::{Encode, Header, HEADER_LEN};
use elkfs_proto::Addr;

const BLOCK: usize = 65536;

fn connect(addr: Addr) -> TcpStream {
    let s = TcpStream::connect(addr.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn recv(s: &mut TcpStream) -> DataMsg {
    loop {
        let mut head = [0u8; HEADER_LEN];
        s.read_exact(&mut head).unwrap();
        let h = Header::parse(&head);
        let mut payload = vec![0u8; h.len as usize];
        s.read_exact(&mut payload).unwrap();
        match DataMsg::decode(h.kind, &payload).unwrap() {
            DataMsg::Nop => continue,
            m => return m,
        }
    }
}

/// Writes `blocks` whole blocks of seeded bytes through `first` and `chain`.
pub fn write_blocks(first: Addr, chain: Vec<Addr>, chunk: u64, version: u32, blocks: u16, seed: u8) {
    let mut s = connect(first);
    s.write_all(&DataMsg::Write { protocol: Some(1), chunk, version, chain }.to_packet()).unwrap();
    match recv(&mut s) {
        DataMsg::WriteStatus { write_id: 0, status, .. } if status.is_ok() => {}
        other => panic!("WRITE refused: {other:?}"),
    }
    for b in 0..blocks {
        let data: Vec<u8> = (0..BLOCK).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(b as u8)).collect();
        let head = WriteDataHead {
            chunk,
            write_id: b as u32 + 1,
            block: b,
            offset: 0,
            size: BLOCK as u32,
            crc: crc32fast::hash(&data),
        };
        s.write_all(&head.packet_prefix()).unwrap();
        s.write_all(&data).unwrap();
        match recv(&mut s) {
            DataMsg::WriteStatus { write_id, status, .. } if status.is_ok() && write_id == b as u32 + 1 => {}
            other => panic!("block {b} not written: {other:?}"),
        }
    }
    s.write_all(&DataMsg::WriteFinish { chunk, version }.to_packet()).unwrap();
}

/// The server's checksum over the whole chunk.
pub fn checksum(addr: Addr, chunk: u64, version: u32) -> u32 {
    let mut s = connect(addr);
    s.write_all(&DataMsg::GetChunkChecksum { chunk, version }.to_packet()).unwrap();
    match recv(&mut s) {
        DataMsg::ChunkChecksum { result: Ok(sum), .. } => sum,
        other => panic!("no checksum from {addr}: {other:?}"),
    }
}
