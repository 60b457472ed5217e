//! Reading a byte range of a file from the chunkservers, with no caching
//! of the data: the reads of `io` and the read-ahead threads both end here.
//!
//! Reads clip to the file length the master reports with each chunk
//! location, read holes as zeros, try every copy, and after all copies
//! failed ask the master again (a chunkserver may have died and the master
//! may know another copy), with a growing pause, a bounded number of times.

use std::time::{Duration, Instant};

use elkfs_proto::client::ChunkLoc;

use super::chunkwrite::Sink;
use super::io::{backoff, lock, retryable};
use crate::data::{read::read_range, BLOCK, CHUNK};
use crate::error::{Error, Result};

/// Reads of at least this size are split over the copies of a chunk.
const PARALLEL_MIN: usize = 2 << 20;
/// Smaller reads go to copy `(offset in chunk / SPREAD_UNIT) % copies`.
const SPREAD_UNIT: u32 = 1 << 20;

/// What a read needs; cheap to clone into a read-ahead thread.
#[derive(Clone)]
pub(super) struct Fetcher {
    pub sink: Sink,
    /// How long a chunk location is used without asking the master again.
    pub loc_ttl: Duration,
    /// Attempts of one chunk read before the error reaches the caller.
    pub attempts: u32,
}

impl Fetcher {
    /// Fills `out` from `offset` on and returns how much of it the file
    /// holds (less at its end).
    pub fn read(&self, inode: u32, offset: u64, out: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        let mut at = offset;
        while filled < out.len() {
            let index = (at / CHUNK) as u32;
            let in_chunk = (at % CHUNK) as u32;
            let want = (out.len() - filled).min((CHUNK - u64::from(in_chunk)) as usize);
            let (n, eof) = self.read_in_chunk(inode, index, in_chunk, &mut out[filled..filled + want])?;
            filled += n;
            at += n as u64;
            if eof {
                break;
            }
        }
        Ok(filled)
    }

    /// Fills the front of `out` with what the chunk holds at `in_chunk`,
    /// clipped to the file length: how many bytes, and whether the end of
    /// the file was reached.
    fn read_in_chunk(&self, inode: u32, index: u32, in_chunk: u32, out: &mut [u8]) -> Result<(usize, bool)> {
        let mut last = None;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                std::thread::sleep(backoff(attempt));
                // Only the locations: read-ahead data of the file is not
                // wrong because one copy failed.
                lock(&self.sink.locs).retain(|(i, _), _| *i != inode);
            }
            let loc = match self.location(inode, index) {
                Ok(loc) => loc,
                Err(e) if retryable(&e) => {
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            tracing::debug!("inode {inode} chunk {index}: reading {} at {in_chunk} from {loc:?}", out.len());
            let start = u64::from(index) * CHUNK + u64::from(in_chunk);
            let n = loc.length.saturating_sub(start).min(out.len() as u64) as usize;
            let eof = start + (n as u64) >= loc.length;
            if n == 0 {
                return Ok((0, true));
            }
            if loc.chunk == 0 {
                // A hole: the buffer may hold an earlier read's bytes.
                out[..n].fill(0);
                return Ok((n, eof));
            }
            match self.read_copies(&loc, in_chunk, &mut out[..n]) {
                Ok(()) => return Ok((n, eof)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::Chunk { chunk: 0, what: "no read attempt".into() }))
    }

    /// Fills `buf` from the chunk's copies. A large range is split into
    /// one part per copy, read in parallel; each part falls back to the
    /// other copies when its own fails.
    fn read_copies(&self, loc: &ChunkLoc, in_chunk: u32, buf: &mut [u8]) -> Result<()> {
        let servers = &loc.servers;
        if servers.is_empty() {
            return Err(Error::Chunk { chunk: loc.chunk, what: "no copy reachable".into() });
        }
        if buf.len() < PARALLEL_MIN || servers.len() < 2 {
            // Smaller reads start on a copy chosen by where they fall, so a
            // file read in pieces (several at once, or one after another)
            // is served by every copy rather than always by the first.
            let first = (in_chunk / SPREAD_UNIT) as usize % servers.len();
            return self.read_part(loc, first, in_chunk, buf);
        }
        let block = BLOCK as usize;
        let part = buf.len().div_ceil(servers.len()).div_ceil(block) * block;
        std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks_mut(part)
                .enumerate()
                .map(|(i, piece)| {
                    let at = in_chunk + (i * part) as u32;
                    s.spawn(move || self.read_part(loc, i, at, piece))
                })
                .collect();
            let mut result = Ok(());
            for h in handles {
                let r =
                    h.join().unwrap_or_else(|_| Err(Error::Chunk { chunk: loc.chunk, what: "reader panicked".into() }));
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }

    /// Reads one range trying the copies from the `first`-th on.
    fn read_part(&self, loc: &ChunkLoc, first: usize, in_chunk: u32, buf: &mut [u8]) -> Result<()> {
        let n = loc.servers.len();
        let mut last = None;
        for k in 0..n {
            let server = &loc.servers[(first + k) % n];
            match read_range(&self.sink.pool, server, loc.chunk, loc.version, in_chunk, buf) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!("read of chunk {:016X} from {}: {e}", loc.chunk, server.addr);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::Chunk { chunk: loc.chunk, what: "no copy reachable".into() }))
    }

    fn location(&self, inode: u32, index: u32) -> Result<ChunkLoc> {
        if let Some((loc, at)) = lock(&self.sink.locs).get(&(inode, index)) {
            if at.elapsed() < self.loc_ttl {
                return Ok(loc.clone());
            }
        }
        let loc = self.sink.master.read_chunk(inode, index)?;
        lock(&self.sink.locs).insert((inode, index), (loc.clone(), Instant::now()));
        Ok(loc)
    }
}
