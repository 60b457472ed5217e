//! Sending a file's data: one chunk at a time, locked at the master
//! (WRITE_CHUNK) while its chain is open and unlocked with the new length
//! (WRITE_CHUNK_END) once the writer is done with it.
//!
//! When the chain fails, the chunk is unlocked with length 0 (the length
//! stays), the master is asked again (it may hand out another chain, or
//! the same one with a new version) and the pieces the old chain had not
//! acknowledged go down the new one, as mfsmount does. Acknowledged pieces
//! are on every copy the master still counts, so they are not sent again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use elkfs_proto::client::ChunkLoc;

use super::io::{backoff, lock, retryable};
use super::readahead::ReadAhead;
use crate::data::pool::Pool;
use crate::data::write::{block_pieces, ChainWrite, Piece};
use crate::data::CHUNK;
use crate::error::{Error, Result};
use crate::master::Master;

/// Chunk locations by `(inode, chunk index)`, with when they were asked.
pub(super) type LocCache = Arc<Mutex<HashMap<(u32, u32), (ChunkLoc, Instant)>>>;

/// What sending data needs; cloned into the threads that stream files.
#[derive(Clone)]
pub(super) struct Sink {
    pub master: Master,
    pub pool: Arc<Pool>,
    pub attempts: u32,
    pub locs: LocCache,
    pub ahead: Arc<ReadAhead>,
    /// Moves on after every chunk write ended at the master (see
    /// `AttrCache`): attributes read before may show an old length.
    pub epoch: Arc<AtomicU64>,
}

impl Sink {
    /// Forgets cached locations and read-ahead data of `inode`.
    pub fn forget(&self, inode: u32) {
        lock(&self.locs).retain(|(i, _), _| *i != inode);
        self.ahead.forget(inode);
    }

    /// Sends `extents` (file offset, bytes) in order. A chunk write left
    /// open by the previous call continues if the data is for its chunk;
    /// otherwise it ends first. The last chunk's write stays in `open`
    /// for more data or [`Sink::close`]. After an error nothing is open.
    pub fn send<'s>(
        &'s self,
        inode: u32,
        open: &mut Option<ChunkWrite<'s>>,
        extents: Vec<(u64, Vec<u8>)>,
        acked: &mut impl FnMut(&Piece),
    ) -> Result<()> {
        for (index, pieces) in by_chunk(extents) {
            if open.as_ref().is_some_and(|w| w.index != index) {
                self.close(inode, open, acked)?;
            }
            for p in pieces {
                self.send_piece(inode, index, open, p, acked)?;
            }
        }
        Ok(())
    }

    /// Sends one piece of chunk `index`, locking the chunk first if `open`
    /// holds nothing. After an error nothing is open.
    pub fn send_piece<'s>(
        &'s self,
        inode: u32,
        index: u32,
        open: &mut Option<ChunkWrite<'s>>,
        piece: Piece,
        acked: &mut impl FnMut(&Piece),
    ) -> Result<()> {
        debug_assert!(open.as_ref().is_none_or(|w| w.index == index), "a piece for another chunk");
        let w = match open {
            Some(w) => w,
            None => open.insert(ChunkWrite::open(self, inode, index)?),
        };
        let r = w.send(piece, acked);
        if r.is_err() {
            *open = None;
            self.ended(inode);
        }
        r
    }

    /// Waits until the open chunk write's chain has acknowledged
    /// everything sent; the write stays open.
    pub fn drain(&self, inode: u32, open: &mut Option<ChunkWrite<'_>>, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        let Some(w) = open.as_mut() else { return Ok(()) };
        let r = w.drain(acked);
        if r.is_err() {
            *open = None;
            self.ended(inode);
        }
        r
    }

    /// Ends the open chunk write, if any: waits for the chain, then sets
    /// the length at the master.
    pub fn close(&self, inode: u32, open: &mut Option<ChunkWrite<'_>>, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        let Some(w) = open.take() else { return Ok(()) };
        let r = w.finish(acked);
        self.ended(inode);
        r
    }

    /// A chunk write ended (or was given up): what this mount cached of the
    /// file is stale, and its mtime moved.
    fn ended(&self, inode: u32) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.forget(inode);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.master.modified(inode, now as u32);
    }
}

/// Cuts extents (file offset, bytes) into block pieces, grouped by chunk
/// in write order: `(chunk index, pieces)`. The pieces share the extents'
/// bytes.
pub(super) fn by_chunk(extents: Vec<(u64, Vec<u8>)>) -> Vec<(u32, Vec<Piece>)> {
    let mut out: Vec<(u32, Vec<Piece>)> = Vec::new();
    for (start, data) in extents {
        let src = Arc::new(data);
        for (index, in_chunk, from, n) in chunk_parts(start, src.len()) {
            if out.last().is_none_or(|(i, _)| *i != index) {
                out.push((index, Vec::new()));
            }
            if let Some((_, pieces)) = out.last_mut() {
                block_pieces(in_chunk, &src, from, n, pieces);
            }
        }
    }
    out
}

/// Splits `len` bytes at file offset `start` at chunk boundaries:
/// `(chunk index, offset in chunk, offset in the bytes, length)`.
fn chunk_parts(start: u64, len: usize) -> impl Iterator<Item = (u32, u32, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let at = start + done as u64;
        let in_chunk = at % CHUNK;
        let n = ((CHUNK - in_chunk) as usize).min(len - done);
        let part = ((at / CHUNK) as u32, in_chunk as u32, done, n);
        done += n;
        Some(part)
    })
}

/// One chunk locked at the master with its chain open.
pub(super) struct ChunkWrite<'s> {
    sink: &'s Sink,
    inode: u32,
    index: u32,
    loc: ChunkLoc,
    chain: Option<ChainWrite<'s>>,
    /// End (in the chunk) of everything sent: the length END reports.
    end: u64,
    attempts: u32,
}

impl<'s> ChunkWrite<'s> {
    fn open(sink: &'s Sink, inode: u32, index: u32) -> Result<ChunkWrite<'s>> {
        let loc = ChunkLoc { length: 0, chunk: 0, version: 0, servers: Vec::new() };
        let mut w = ChunkWrite { sink, inode, index, loc, chain: None, end: 0, attempts: 0 };
        w.lock_and_resend(VecDeque::new(), None, &mut |_| {})?;
        Ok(w)
    }

    fn send(&mut self, piece: Piece, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        self.end = self.end.max(piece.end_in_chunk());
        let Some(chain) = self.chain.as_mut() else {
            return self.lock_and_resend(VecDeque::from([piece]), None, acked);
        };
        match chain.send(piece, acked) {
            Ok(()) => Ok(()),
            Err(e) => self.recover(e, acked),
        }
    }

    /// Pieces are on their way and not yet acknowledged.
    pub fn in_flight(&self) -> bool {
        self.chain.as_ref().is_some_and(|c| c.unacked() > 0)
    }

    fn drain(&mut self, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        loop {
            let Some(chain) = self.chain.as_mut() else {
                return Err(Error::Chunk { chunk: self.loc.chunk, what: "chain lost".into() });
            };
            match chain.drain(acked) {
                Ok(()) => return Ok(()),
                Err(e) => self.recover(e, acked)?,
            }
        }
    }

    fn finish(mut self, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        self.drain(acked)?;
        if let Some(chain) = self.chain.take() {
            // Every piece is acknowledged: a lost WRITE_FINISH costs only
            // the connection.
            if let Err(e) = chain.finish(acked) {
                tracing::debug!("write finish of chunk {:016X}: {e}", self.loc.chunk);
            }
        }
        let length = (u64::from(self.index) * CHUNK + self.end).max(self.loc.length);
        self.sink.master.write_chunk_end(self.loc.chunk, self.inode, self.index, length)
    }

    /// The chain failed with `err`: unlock, ask again, resend what it did
    /// not acknowledge.
    fn recover(&mut self, err: Error, acked: &mut impl FnMut(&Piece)) -> Result<()> {
        let pending = self.chain.take().map(ChainWrite::into_unacked).unwrap_or_default();
        tracing::warn!("write of chunk {:016X} (inode {}): {err}; retrying", self.loc.chunk, self.inode);
        // Unlock without changing the length, then ask again.
        self.sink.master.write_chunk_end(self.loc.chunk, self.inode, self.index, 0)?;
        self.lock_and_resend(pending, Some(err), acked)
    }

    /// Locks the chunk (WRITE_CHUNK), opens its chain and sends `pending`
    /// down it, starting over on failure until the attempts run out.
    fn lock_and_resend(
        &mut self,
        mut pending: VecDeque<Piece>,
        mut last: Option<Error>,
        acked: &mut impl FnMut(&Piece),
    ) -> Result<()> {
        let master = &self.sink.master;
        let (inode, index) = (self.inode, self.index);
        loop {
            if self.attempts >= self.sink.attempts {
                return Err(last.unwrap_or(Error::Chunk { chunk: self.loc.chunk, what: "no write attempt".into() }));
            }
            if self.attempts > 0 {
                std::thread::sleep(backoff(self.attempts));
            }
            self.attempts += 1;
            self.loc = match master.write_chunk(inode, index) {
                Ok(loc) => loc,
                Err(e) if retryable(&e) => {
                    tracing::warn!("inode {inode} chunk {index}: {e}; retrying");
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            tracing::debug!("inode {inode} chunk {index}: writing to {:?}", self.loc);
            let mut chain = match ChainWrite::open(&self.sink.pool, &self.loc.servers, self.loc.chunk, self.loc.version)
            {
                Ok(chain) => chain,
                Err(e) => {
                    tracing::warn!("write of chunk {:016X} (inode {inode}): {e}; retrying", self.loc.chunk);
                    master.write_chunk_end(self.loc.chunk, inode, index, 0)?;
                    last = Some(e);
                    continue;
                }
            };
            let mut failed = None;
            while let Some(p) = pending.pop_front() {
                if let Err(e) = chain.send(p, acked) {
                    failed = Some(e);
                    break;
                }
            }
            match failed {
                None => {
                    self.chain = Some(chain);
                    return Ok(());
                }
                Some(e) => {
                    tracing::warn!("write of chunk {:016X} (inode {inode}): {e}; retrying", self.loc.chunk);
                    let mut unacked = chain.into_unacked();
                    unacked.extend(pending.drain(..));
                    pending = unacked;
                    master.write_chunk_end(self.loc.chunk, inode, index, 0)?;
                    last = Some(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_at_chunk_boundaries() {
        let c = CHUNK as u32;
        let parts: Vec<_> = chunk_parts(CHUNK - 10, 30).collect();
        assert_eq!(parts, vec![(0, c - 10, 0, 10), (1, 0, 10, 20)]);
        let whole: Vec<_> = chunk_parts(2 * CHUNK, (2 * CHUNK) as usize + 1).collect();
        assert_eq!(whole, vec![(2, 0, 0, c as usize), (3, 0, c as usize, c as usize), (4, 0, 2 * c as usize, 1)]);
        assert_eq!(chunk_parts(5, 0).count(), 0);
    }

    #[test]
    fn extents_become_pieces_grouped_by_chunk() {
        let block = crate::data::BLOCK as u64;
        let groups = by_chunk(vec![(CHUNK - block - 10, vec![1; 2 * block as usize]), (CHUNK + block, vec![2; 5])]);
        type Shape = Vec<(u16, u16, usize)>;
        let shape: Vec<(u32, Shape)> =
            groups.iter().map(|(i, p)| (*i, p.iter().map(|p| (p.block, p.offset, p.len())).collect())).collect();
        let last = (CHUNK / block - 2) as u16;
        let want = vec![
            (0, vec![(last, (block - 10) as u16, 10), (last + 1, 0, block as usize)]),
            (1, vec![(0, 0, block as usize - 10), (1, 0, 5)]),
        ];
        assert_eq!(shape, want);
    }
}
