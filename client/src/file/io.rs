//! Reading and writing files: the layer between FUSE requests and the
//! chunkservers.
//!
//! Reads clip to the file length the master reports with each chunk
//! location, read holes as zeros, try every copy, and after all copies
//! failed ask the master again (a chunkserver may have died and the master
//! may know another copy), with a growing pause, a bounded number of times.
//! Writes are `writer`'s; a read of a file with writes not yet at the
//! chunkservers (or whose length the master does not know yet) flushes
//! them first and waits for a flush under way (read-your-writes). Reads
//! run side by side.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use elkfs_proto::client::{ChunkLoc, MaToCl};

use super::chunkwrite::{AheadMap, LocCache, Sink};
use super::writer::FileWrite;
use crate::data::pool::Pool;
use crate::data::{read::read_range, CHUNK};
use crate::error::{Error, Result};
use crate::master::Master;

/// Limits of the file layer.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Buffered bytes per file before a flush starts.
    pub buffer_max: usize,
    /// How long a chunk location is used without asking the master again.
    pub loc_ttl: Duration,
    /// Attempts of one chunk read or write before the error reaches the
    /// application.
    pub attempts: u32,
    /// Bytes fetched at once when reads of a file are sequential.
    pub readahead: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig { buffer_max: 128 << 20, loc_ttl: Duration::from_secs(1), attempts: 30, readahead: 8 << 20 }
    }
}

/// Data read ahead for one file, and where its reader is expected next.
pub(super) struct Ahead {
    start: u64,
    data: Vec<u8>,
    /// The fetch stopped at the end of the file.
    eof: bool,
    next: u64,
    at: Instant,
    /// A thread is fetching ahead for this file: others read what they
    /// asked for instead of fetching the same bytes again.
    fetching: bool,
}

/// Reads of at least this size are split over the copies of a chunk.
const PARALLEL_MIN: usize = 2 << 20;
/// A location fetched this recently survives an open.
const FRESH: Duration = Duration::from_millis(100);
/// Smaller reads go to copy `(offset in chunk / SPREAD_UNIT) % copies`.
const SPREAD_UNIT: u32 = 1 << 20;

/// Every open file's write-back state and the location cache of one mount.
pub struct Files {
    pub(super) sink: Sink,
    pub(super) cfg: FilesConfig,
    pub(super) writers: Mutex<HashMap<u32, Arc<FileWrite>>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Files {
    pub fn new(master: Master, cfg: FilesConfig) -> Files {
        let locs: LocCache = Arc::default();
        let ahead: AheadMap = Arc::default();
        let (pushed, pushed_ahead) = (Arc::clone(&locs), Arc::clone(&ahead));
        // Another session wrote or truncated: drop what we know of that
        // file, its read-ahead data too.
        master.set_push_handler(Box::new(move |msg| match msg {
            MaToCl::ChunkHasChanged { inode, .. } | MaToCl::FlengHasChanged { inode, .. } => {
                lock(&pushed).retain(|(i, _), _| i != inode);
                lock(&pushed_ahead).remove(inode);
            }
            MaToCl::InvalidateChunkCache => {
                lock(&pushed).clear();
                lock(&pushed_ahead).clear();
            }
            _ => {}
        }));
        assert!(cfg.attempts > 0, "at least one attempt per chunk operation");
        let sink = Sink {
            master,
            pool: Arc::new(Pool::default()),
            attempts: cfg.attempts,
            locs,
            ahead,
            epoch: Arc::new(AtomicU64::new(0)),
        };
        Files { sink, cfg, writers: Mutex::new(HashMap::new()) }
    }

    /// Moves on after every chunk write that ended at the master (see
    /// `AttrCache`).
    pub fn epoch(&self) -> u64 {
        self.sink.epoch.load(Ordering::SeqCst)
    }

    /// Chunkserver connections opened, and operations that reused one.
    pub fn connections(&self) -> (u64, u64) {
        self.sink.pool.counts()
    }

    pub fn master(&self) -> &Master {
        &self.sink.master
    }

    /// Forgets cached locations of `inode` (at open: close-to-open
    /// consistency with other mounts).
    pub fn forget(&self, inode: u32) {
        self.sink.forget(inode);
    }

    /// [`Files::forget`] at open, keeping locations the master sent in the
    /// last moments (with the lookup that preceded this open): they are as
    /// new as asking again would be.
    pub fn forget_at_open(&self, inode: u32) {
        lock(&self.sink.locs).retain(|(i, _), (_, at)| *i != inode || at.elapsed() < FRESH);
        lock(&self.sink.ahead).remove(&inode);
    }

    /// Keeps the location of chunk 0 that came with a lookup of `inode`
    /// (`length`: the file length in the same reply).
    pub fn seed_first_chunk(&self, inode: u32, length: u64, first: elkfs_proto::client::FirstChunk) {
        let loc = ChunkLoc { length, chunk: first.chunk, version: first.version, servers: first.servers };
        lock(&self.sink.locs).insert((inode, 0), (loc, Instant::now()));
    }

    /// Reads up to `size` bytes at `offset`; short at the end of the file.
    pub fn read(&self, inode: u32, offset: u64, size: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let n = self.read_into(inode, offset, size, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Reads up to `size` bytes at `offset` into `out[..n]` and returns `n`
    /// (short at the end of the file). `out` grows to `size` if shorter and
    /// is otherwise reused as it is: a caller that keeps one buffer per
    /// thread spares the zeroing and page faults of a fresh one per read.
    /// A read that continues the previous one fetches `readahead` bytes
    /// and later reads are served from them (for `loc_ttl` at most, the
    /// same staleness the location cache allows).
    pub fn read_into(&self, inode: u32, offset: u64, size: usize, out: &mut Vec<u8>) -> Result<usize> {
        if out.len() < size {
            out.resize(size, 0);
        }
        let out = &mut out[..size];
        // Our own writes must be visible, and chunkservers are where the
        // rest of the file is: flush first, and wait for a flush another
        // thread has under way.
        if !self.is_clean(inode) {
            self.flush(inode)?;
        }
        if let Some(n) = self.read_ahead_hit(inode, offset, out) {
            return Ok(n);
        }
        let sequential = match lock(&self.sink.ahead).get_mut(&inode) {
            Some(a) if a.next == offset && !a.fetching => {
                a.fetching = true;
                true
            }
            _ => false,
        };
        let fetch = if sequential { size.max(self.cfg.readahead) } else { size };
        let mut data = Vec::new();
        let read = if fetch > size {
            // Fetched into a buffer of its own, kept for the reads to come.
            data.resize(fetch, 0);
            self.read_direct(inode, offset, &mut data)
        } else {
            self.read_direct(inode, offset, out)
        };
        let mut ahead = lock(&self.sink.ahead);
        let got = match read {
            Ok(got) => got,
            Err(e) => {
                if let Some(a) = ahead.get_mut(&inode).filter(|_| sequential) {
                    a.fetching = false;
                }
                return Err(e);
            }
        };
        let eof = got < fetch;
        let n = got.min(size);
        let next = offset + n as u64;
        if fetch > size {
            // The caller gets a copy of its part; the fetch itself is kept.
            out[..n].copy_from_slice(&data[..n]);
        }
        if got > size {
            data.truncate(got);
            ahead.insert(inode, Ahead { start: offset, data, eof, next, at: Instant::now(), fetching: false });
            return Ok(n);
        }
        if sequential || !ahead.get(&inode).is_some_and(|a| a.fetching) {
            // A read of only what was asked: remember where the reader is
            // going next, unless another thread's fetch is under way.
            let none = Ahead { start: offset, data: Vec::new(), eof, next, at: Instant::now(), fetching: false };
            ahead.insert(inode, none);
        }
        Ok(n)
    }

    /// Copies what the read-ahead data holds for `out` and returns how
    /// much, if it holds the whole range (or the file's tail).
    fn read_ahead_hit(&self, inode: u32, offset: u64, out: &mut [u8]) -> Option<usize> {
        let mut ahead = lock(&self.sink.ahead);
        let a = ahead.get_mut(&inode)?;
        let end = a.start + a.data.len() as u64;
        if a.at.elapsed() >= self.cfg.loc_ttl || offset < a.start || offset > end {
            return None;
        }
        // Whole, or the tail of the file when the fetch reached its end.
        if offset + out.len() as u64 > end && !a.eof {
            return None;
        }
        let from = (offset - a.start) as usize;
        let to = (from + out.len()).min(a.data.len());
        a.next = offset + (to - from) as u64;
        out[..to - from].copy_from_slice(&a.data[from..to]);
        Some(to - from)
    }

    /// Fills `out` from `offset` on and returns how much of it the file
    /// holds (less at its end).
    fn read_direct(&self, inode: u32, offset: u64, out: &mut [u8]) -> Result<usize> {
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
        for attempt in 0..self.cfg.attempts {
            if attempt > 0 {
                std::thread::sleep(backoff(attempt));
                self.forget(inode);
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
        let block = crate::data::BLOCK as usize;
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
            if at.elapsed() < self.cfg.loc_ttl {
                return Ok(loc.clone());
            }
        }
        let loc = self.sink.master.read_chunk(inode, index)?;
        lock(&self.sink.locs).insert((inode, index), (loc.clone(), Instant::now()));
        Ok(loc)
    }
}

/// Errors worth another attempt. As mfsmount: the master's statuses are
/// retried unless they cannot change (no such file, no permission, quota,
/// read-only, too big); `NOSPACE` is retried because a master that has
/// just started counts no space until its chunkservers report it.
pub(super) fn retryable(e: &Error) -> bool {
    use elkfs_proto::Status;
    match e.status() {
        Some(s) => !matches!(
            s,
            Status::ENOENT
                | Status::EPERM
                | Status::EACCES
                | Status::NOCHUNK
                | Status::INDEXTOOBIG
                | Status::QUOTA
                | Status::EROFS
                | Status::EINVAL
        ),
        None => !matches!(e, Error::SessionLost(_)),
    }
}

/// 100 ms, 200 ms, … up to 2 s between attempts.
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100 * u64::from(attempt)).min(2000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use elkfs_proto::Status;

    #[test]
    fn what_is_retried() {
        let st = |status| Error::Status { op: "write chunk", status };
        assert!(retryable(&st(Status::NOSPACE)), "a fresh master reports no space for a while");
        assert!(retryable(&st(Status::LOCKED)));
        assert!(retryable(&Error::Timeout { op: "read chunk" }));
        assert!(!retryable(&st(Status::QUOTA)));
        assert!(!retryable(&st(Status::ENOENT)));
        assert!(!retryable(&Error::SessionLost("gone".into())));
    }
}
