//! Reading a range of one chunk from one chunkserver, every piece checked
//! against its CRC.
//!
//! The chunkserver answers a READ with one READ_DATA per block piece and a
//! final READ_STATUS. The data lands straight in the caller's buffer; a
//! piece outside the asked range, a wrong chunk id, a bad CRC or a short
//! total fails the attempt and the caller tries another copy.

use elkfs_proto::data::{DataMsg, ReadDataHead, NOP, READ_DATA, READ_DATA_HEAD_LEN, READ_STATUS};
use elkfs_proto::frame::Encode;

use super::pool::Pool;
use super::{CHUNK, PROTOCOL_MIN_VERSION};
use crate::error::{Error, Result};
use elkfs_proto::client::CsLoc;

/// Reads `buf.len()` bytes at `offset` in the chunk from `server`; on
/// success every byte of `buf` was written.
pub fn read_range(pool: &Pool, server: &CsLoc, chunk: u64, version: u32, offset: u32, buf: &mut [u8]) -> Result<()> {
    assert!(offset as u64 + buf.len() as u64 <= CHUNK, "read of {} at {offset} leaves the chunk", buf.len());
    let mut conn = pool.get(server.addr)?;
    let protocol = (server.version >= PROTOCOL_MIN_VERSION).then_some(1);
    let req = DataMsg::Read { protocol, chunk, version, offset, size: buf.len() as u32 };
    conn.send(&req.to_packet())?;
    let peer = conn.addr;
    let mut got = 0usize;
    loop {
        let h = conn.recv_header()?;
        match h.kind {
            NOP => {
                let mut skip = vec![0u8; h.len as usize];
                conn.recv_exact(&mut skip)?;
            }
            READ_DATA => {
                let mut head = [0u8; READ_DATA_HEAD_LEN];
                if (h.len as usize) < READ_DATA_HEAD_LEN {
                    return Err(Error::peer(peer, "READ_DATA shorter than its head"));
                }
                conn.recv_exact(&mut head)?;
                let d = ReadDataHead::decode(&head, h.len as usize).map_err(|e| Error::proto(peer, e))?;
                let at = (u64::from(d.block) << 16) + u64::from(d.offset);
                let start = at.checked_sub(u64::from(offset)).map(|s| s as usize);
                let end = start.map(|s| s + d.size as usize);
                let (Some(start), Some(end)) = (start, end) else {
                    return Err(Error::Chunk { chunk, what: format!("{peer} sent a piece before the range") });
                };
                if d.chunk != chunk || end > buf.len() {
                    return Err(Error::Chunk { chunk, what: format!("{peer} sent a piece outside the range") });
                }
                // Pieces come in order, each right after the last: then
                // every byte of `buf` is overwritten once the count is
                // complete, and a reused buffer can never show stale data.
                if start != got {
                    return Err(Error::Chunk { chunk, what: format!("{peer} sent a piece out of order") });
                }
                conn.recv_exact(&mut buf[start..end])?;
                if crc32fast::hash(&buf[start..end]) != d.crc {
                    return Err(Error::Chunk { chunk, what: format!("CRC mismatch in data from {peer}") });
                }
                got += d.size as usize;
            }
            READ_STATUS => {
                let mut payload = vec![0u8; h.len as usize];
                conn.recv_exact(&mut payload)?;
                let status = match DataMsg::decode(h.kind, &payload).map_err(|e| Error::proto(peer, e))? {
                    DataMsg::ReadStatus { chunk: c, status } if c == chunk => status,
                    _ => return Err(Error::peer(peer, "READ_STATUS for another chunk")),
                };
                if !status.is_ok() {
                    return Err(Error::Status { op: "read from chunkserver", status });
                }
                if got != buf.len() {
                    return Err(Error::Chunk { chunk, what: format!("{peer} sent {got} of {} bytes", buf.len()) });
                }
                if protocol.is_some() {
                    pool.put(conn);
                }
                return Ok(());
            }
            other => return Err(Error::peer(peer, format!("message {other} during a read"))),
        }
    }
}
