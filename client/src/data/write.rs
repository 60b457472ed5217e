//! Writing pieces of one chunk through a chain of chunkservers.
//!
//! The first server gets WRITE with the rest of the chain, then WRITE_DATA
//! packets (one block piece each) stream without waiting, at most
//! `WINDOW` unacknowledged. Statuses come back in order: writeid 0 (chain
//! open), then one per packet. Only when every packet is acknowledged by
//! the whole chain is the write done; any error fails the attempt and the
//! caller asks the master again (it may hand out another chain).

use elkfs_proto::client::CsLoc;
use elkfs_proto::data::{DataMsg, WriteDataHead, NOP, WRITE_STATUS};
use elkfs_proto::frame::Encode;

use super::pool::{Conn, Pool};
use super::{BLOCK, CHUNK, PROTOCOL_MIN_VERSION};
use crate::error::{Error, Result};

/// Unacknowledged WRITE_DATA packets allowed; 3.0.117 clients use 64.
const WINDOW: u32 = 64;

/// Splits `(offset in chunk, data)` pieces at block boundaries.
pub fn block_pieces<'a>(pieces: &[(u32, &'a [u8])]) -> Vec<(u16, u16, &'a [u8])> {
    let mut out = Vec::new();
    for &(offset, data) in pieces {
        assert!(offset as u64 + data.len() as u64 <= CHUNK, "piece of {} at {offset} leaves the chunk", data.len());
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let in_block = at % BLOCK;
            let n = ((BLOCK - in_block) as usize).min(rest.len());
            out.push(((at / BLOCK) as u16, in_block as u16, &rest[..n]));
            at += n as u32;
            rest = &rest[n..];
        }
    }
    out
}

/// Writes `pieces` (offset in chunk, bytes) to chunk `chunk` on `chain`,
/// in order, and returns once the whole chain acknowledged them.
pub fn write_chain(pool: &Pool, chain: &[CsLoc], chunk: u64, version: u32, pieces: &[(u32, &[u8])]) -> Result<()> {
    let Some(first) = chain.first() else {
        return Err(Error::Chunk { chunk, what: "no chunkserver to write to".into() });
    };
    let protocol = chain.iter().all(|s| s.version >= PROTOCOL_MIN_VERSION).then_some(1);
    let mut conn = pool.get(first.addr)?;
    let open = DataMsg::Write { protocol, chunk, version, chain: chain[1..].iter().map(|s| s.addr).collect() };
    conn.send(&open.to_packet())?;
    let blocks = block_pieces(pieces);
    let mut sent = 0u32;
    let mut acked = 0u32;
    let mut opened = false;
    while (acked as usize) < blocks.len() || !opened {
        if (sent as usize) < blocks.len() && sent - acked < WINDOW {
            let (block, offset, data) = blocks[sent as usize];
            sent += 1;
            let head = WriteDataHead {
                chunk,
                write_id: sent,
                block,
                offset,
                size: data.len() as u32,
                crc: crc32fast::hash(data),
            };
            conn.send_parts(&[&head.packet_prefix(), data])?;
            continue;
        }
        let (write_id, status) = recv_status(&mut conn, chunk)?;
        if !status.is_ok() {
            return Err(Error::Status { op: "write to chunkserver", status });
        }
        let expected = if opened { acked + 1 } else { 0 };
        if write_id != expected {
            return Err(Error::peer(conn.addr, format!("status for write {write_id}, expected {expected}")));
        }
        if opened {
            acked += 1;
        } else {
            opened = true;
        }
    }
    if protocol.is_some() {
        conn.send(&DataMsg::WriteFinish { chunk, version }.to_packet())?;
        pool.put(conn);
    }
    Ok(())
}

fn recv_status(conn: &mut Conn, chunk: u64) -> Result<(u32, elkfs_proto::Status)> {
    loop {
        let h = conn.recv_header()?;
        let mut payload = vec![0u8; h.len as usize];
        conn.recv_exact(&mut payload)?;
        match h.kind {
            NOP => continue,
            WRITE_STATUS => {
                return match DataMsg::decode(h.kind, &payload).map_err(|e| Error::proto(conn.addr, e))? {
                    DataMsg::WriteStatus { chunk: c, write_id, status } if c == chunk => Ok((write_id, status)),
                    _ => Err(Error::peer(conn.addr, "WRITE_STATUS for another chunk")),
                };
            }
            other => return Err(Error::peer(conn.addr, format!("message {other} during a write"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_at_block_boundaries() {
        let data = vec![7u8; 70_000];
        // 65,000 + 70,000 crosses the first boundary at 65,536 and ends in block 2.
        let p = block_pieces(&[(65_000, &data)]);
        let shape: Vec<(u16, u16, usize)> = p.iter().map(|(b, o, d)| (*b, *o, d.len())).collect();
        assert_eq!(shape, vec![(0, 65_000, 536), (1, 0, 65_536), (2, 0, 3_928)]);
        assert_eq!(shape.iter().map(|s| s.2).sum::<usize>(), 70_000);
    }
}
