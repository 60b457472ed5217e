//! Writing block pieces of one chunk through a chain of chunkservers.
//!
//! The first server gets WRITE with the rest of the chain, then WRITE_DATA
//! packets (one block piece each) stream without waiting, at most
//! `WINDOW` unacknowledged. Statuses come back in order: writeid 0 (chain
//! open), then one per packet. A piece is on every copy once its status is
//! back. A chain stays open while its writer has more pieces for it, so a
//! sequential writer pays for WRITE and the last statuses once per chunk,
//! not once per buffer. After any error the pieces still unacknowledged are
//! handed back: the caller asks the master again and sends them down the
//! chain it gets.

use std::collections::VecDeque;
use std::sync::Arc;

use elkfs_proto::client::CsLoc;
use elkfs_proto::data::{DataMsg, WriteDataHead, NOP, WRITE_STATUS};
use elkfs_proto::frame::Encode;

use super::pool::{Conn, Pool};
use super::{BLOCK, CHUNK, PROTOCOL_MIN_VERSION};
use crate::error::{Error, Result};

/// Unacknowledged WRITE_DATA packets allowed; 3.0.117 clients use 64.
const WINDOW: usize = 64;

/// Part of one block of a chunk, sharing the bytes of the write it came
/// from: kept until the chain acknowledges it, for a resend.
#[derive(Clone)]
pub struct Piece {
    pub block: u16,
    pub offset: u16,
    src: Arc<Vec<u8>>,
    from: usize,
    len: usize,
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Piece(block {} at {}, {} bytes)", self.block, self.offset, self.len)
    }
}

impl Piece {
    pub fn data(&self) -> &[u8] {
        &self.src[self.from..self.from + self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the piece ends, counted from the start of its chunk.
    pub fn end_in_chunk(&self) -> u64 {
        u64::from(self.block) * u64::from(BLOCK) + u64::from(self.offset) + self.len as u64
    }
}

/// Splits `src[from..from + len]`, which lies at `offset` in a chunk, at
/// block boundaries, appending the pieces to `out`.
pub fn block_pieces(offset: u32, src: &Arc<Vec<u8>>, from: usize, len: usize, out: &mut Vec<Piece>) {
    assert!(u64::from(offset) + len as u64 <= CHUNK, "piece of {len} at {offset} leaves the chunk");
    assert!(from + len <= src.len(), "piece outside its source");
    let mut at = offset;
    let mut done = 0;
    while done < len {
        let in_block = at % BLOCK;
        let n = ((BLOCK - in_block) as usize).min(len - done);
        let piece = Piece {
            block: (at / BLOCK) as u16,
            offset: in_block as u16,
            src: Arc::clone(src),
            from: from + done,
            len: n,
        };
        out.push(piece);
        at += n as u32;
        done += n;
    }
}

/// An open chain writing one chunk.
pub struct ChainWrite<'p> {
    pool: &'p Pool,
    conn: Conn,
    chunk: u64,
    version: u32,
    /// WRITE_FINISH and keep-alives are understood by every server of the chain.
    finish: bool,
    /// Write ids handed out so far (the chain's open is id 0).
    sent: u32,
    /// The chain acknowledged its open (status for id 0).
    opened: bool,
    /// Sent, not yet acknowledged, in write-id order: ids
    /// `sent - unacked.len() + 1 ..= sent`.
    unacked: VecDeque<Piece>,
}

impl<'p> ChainWrite<'p> {
    /// Connects to the chain's first server and sends WRITE.
    pub fn open(pool: &'p Pool, chain: &[CsLoc], chunk: u64, version: u32) -> Result<ChainWrite<'p>> {
        let Some(first) = chain.first() else {
            return Err(Error::Chunk { chunk, what: "no chunkserver to write to".into() });
        };
        let finish = chain.iter().all(|s| s.version >= PROTOCOL_MIN_VERSION);
        let mut conn = pool.get(first.addr)?;
        let protocol = finish.then_some(1);
        let open = DataMsg::Write { protocol, chunk, version, chain: chain[1..].iter().map(|s| s.addr).collect() };
        conn.send(&open.to_packet())?;
        Ok(ChainWrite { pool, conn, chunk, version, finish, sent: 0, opened: false, unacked: VecDeque::new() })
    }

    /// Sends `piece`, first waiting for acknowledgements while the window
    /// is full; `acked` sees every piece the whole chain has written. On
    /// error the piece is among [`ChainWrite::into_unacked`]'s, sent or not.
    pub fn send(&mut self, piece: Piece, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        while self.unacked.len() >= WINDOW {
            if let Err(e) = self.recv_one(acked) {
                // Not sent, but it must go down the next chain with the rest.
                self.unacked.push_back(piece);
                return Err(e);
            }
        }
        self.sent += 1;
        let data = piece.data();
        let head = WriteDataHead {
            chunk: self.chunk,
            write_id: self.sent,
            block: piece.block,
            offset: piece.offset,
            size: data.len() as u32,
            crc: crc32fast::hash(data),
        };
        let r = self.conn.send_parts(&[&head.packet_prefix(), data]);
        // Queued before the outcome is known: a failed send is resent too.
        self.unacked.push_back(piece);
        r
    }

    /// Waits until the chain has acknowledged everything sent.
    pub fn drain(&mut self, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        while !self.unacked.is_empty() || !self.opened {
            self.recv_one(acked)?;
        }
        Ok(())
    }

    /// Drains, ends the write and gives the connection back for reuse.
    pub fn finish(mut self, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        self.drain(acked)?;
        if self.finish {
            self.conn.send(&DataMsg::WriteFinish { chunk: self.chunk, version: self.version }.to_packet())?;
            self.pool.put(self.conn);
        }
        Ok(())
    }

    /// Pieces sent and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// The pieces the chain has not acknowledged, oldest first (after an
    /// error: they must go down the next chain). The connection is dropped.
    pub fn into_unacked(self) -> VecDeque<Piece> {
        self.unacked
    }

    fn recv_one(&mut self, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        let (write_id, status) = recv_status(&mut self.conn, self.chunk)?;
        if !status.is_ok() {
            return Err(Error::Status { op: "write to chunkserver", status });
        }
        let expected = if self.opened { self.sent - self.unacked.len() as u32 + 1 } else { 0 };
        if write_id != expected || (self.opened && self.unacked.is_empty()) {
            return Err(Error::peer(self.conn.addr, format!("status for write {write_id}, expected {expected}")));
        }
        if !self.opened {
            self.opened = true;
        } else if let Some(piece) = self.unacked.pop_front() {
            acked(&piece);
        }
        Ok(())
    }
}

/// Payloads a chain sends back while writing (WRITE_STATUS: 13 bytes, NOP:
/// none) fit here: no allocation per status.
const STATUS_MAX: usize = 64;

fn recv_status(conn: &mut Conn, chunk: u64) -> Result<(u32, elkfs_proto::Status)> {
    let mut buf = [0u8; STATUS_MAX];
    loop {
        let h = conn.recv_header()?;
        let Some(payload) = buf.get_mut(..h.len as usize) else {
            return Err(Error::peer(conn.addr, format!("message {} of {} bytes during a write", h.kind, h.len)));
        };
        conn.recv_exact(payload)?;
        match h.kind {
            NOP => continue,
            WRITE_STATUS => {
                return match DataMsg::decode(h.kind, payload).map_err(|e| Error::proto(conn.addr, e))? {
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
        let data = Arc::new(vec![7u8; 70_100]);
        // 65,000 + 70,000 crosses the first boundary at 65,536 and ends in block 2.
        let mut p = Vec::new();
        block_pieces(65_000, &data, 100, 70_000, &mut p);
        let shape: Vec<(u16, u16, usize)> = p.iter().map(|p| (p.block, p.offset, p.len())).collect();
        assert_eq!(shape, vec![(0, 65_000, 536), (1, 0, 65_536), (2, 0, 3_928)]);
        assert_eq!(p[0].data().as_ptr(), data[100..].as_ptr(), "pieces share the write's bytes");
        assert_eq!(p[2].end_in_chunk(), 135_000);
    }

    /// A chunkserver that takes the chain's open and a few packets, then
    /// drops the connection: every piece handed to the chain must come
    /// back unacknowledged, including the one whose send found the
    /// window full and the connection gone (it was once lost).
    #[test]
    fn a_broken_chain_hands_back_every_piece() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // Takes in a whole window without answering, then hangs up:
            // the next send waits for a status and finds the connection gone.
            let mut buf = vec![0u8; 256 << 10];
            let mut got = 0;
            while got < WINDOW * BLOCK as usize {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
        });
        let pool = Pool::default();
        let addr = elkfs_proto::Addr::new(std::net::Ipv4Addr::LOCALHOST, port);
        let chain = [CsLoc { addr, version: PROTOCOL_MIN_VERSION, labelmask: 0 }];
        let mut w = ChainWrite::open(&pool, &chain, 5, 1).unwrap();
        let data = Arc::new(vec![3u8; 100 * BLOCK as usize]);
        let mut pieces = Vec::new();
        block_pieces(0, &data, 0, data.len(), &mut pieces);
        let mut given = 0;
        let mut acked = 0;
        for p in pieces {
            given += 1;
            if w.send(p, &mut |_| acked += 1).is_err() {
                break;
            }
        }
        server.join().unwrap();
        assert_eq!(given, WINDOW + 1, "the send after a full window fails");
        let back: Vec<u16> = w.into_unacked().iter().map(|p| p.block).collect();
        assert_eq!(acked, 0);
        assert_eq!(back, (0..given as u16).collect::<Vec<_>>(), "every piece taken comes back, in order");
    }
}
