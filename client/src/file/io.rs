//! Reading and writing files: the layer between FUSE requests and the
//! chunkservers.
//!
//! Reads clip to the file length the master reports with each chunk
//! location, read holes as zeros, try every copy, and after all copies
//! failed ask the master again (a chunkserver may have died and the master
//! may know another copy), with a growing pause, a bounded number of times.
//! Writes go to a per-file buffer and reach the chunkservers when it grows
//! past `buffer_max`, on flush/fsync/release, before a read of the same
//! file, and before a truncate. A chunk write locks the chunk at the master
//! (WRITE_CHUNK), writes down the chain and unlocks it with the new length
//! (WRITE_CHUNK_END); a failed attempt unlocks with length 0 and starts
//! over, as mfsmount does.
//!
//! Requests arrive from several threads. Per file, flushes run one at a
//! time and in the order their data was taken from the buffer, and a read
//! waits for a flush in progress (read-your-writes); reads run side by
//! side. The locks are striped by inode, so different files rarely wait
//! for each other and the table never grows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use elkfs_proto::client::{ChunkLoc, MaToCl};

use super::buffer::{by_chunk, WriteBuffer};
use crate::data::pool::Pool;
use crate::data::{read::read_range, write::write_chain, CHUNK};
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
        FilesConfig { buffer_max: 32 << 20, loc_ttl: Duration::from_secs(1), attempts: 30, readahead: 8 << 20 }
    }
}

/// Data read ahead for one file, and where its reader is expected next.
struct Ahead {
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

/// Chunk locations by `(inode, chunk index)`, with when they were asked.
type LocCache = Arc<Mutex<HashMap<(u32, u32), (ChunkLoc, Instant)>>>;

/// Lock stripes ordering the data operations of a file.
const STRIPES: usize = 64;

/// Every open file's buffer and the location cache of one mount.
pub struct Files {
    master: Master,
    pool: Pool,
    cfg: FilesConfig,
    locs: LocCache,
    buffers: Mutex<HashMap<u32, WriteBuffer>>,
    ahead: Arc<Mutex<HashMap<u32, Ahead>>>,
    /// Flushes take a stripe exclusively, reads shared.
    order: Box<[RwLock<()>]>,
    /// Counts flushes that sent data: attributes read before a flush may
    /// show an old length or mtime.
    epoch: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Files {
    pub fn new(master: Master, cfg: FilesConfig) -> Files {
        let locs: LocCache = Arc::default();
        let ahead: Arc<Mutex<HashMap<u32, Ahead>>> = Arc::default();
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
        Files {
            master,
            pool: Pool::default(),
            cfg,
            locs,
            buffers: Mutex::new(HashMap::new()),
            ahead,
            order: (0..STRIPES).map(|_| RwLock::new(())).collect(),
            epoch: AtomicU64::new(0),
        }
    }

    fn stripe(&self, inode: u32) -> &RwLock<()> {
        &self.order[inode as usize % STRIPES]
    }

    /// Moves on after every flush that sent data (see `AttrCache`).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Chunkserver connections opened, and operations that reused one.
    pub fn connections(&self) -> (u64, u64) {
        self.pool.counts()
    }

    pub fn master(&self) -> &Master {
        &self.master
    }

    /// Forgets cached locations of `inode` (at open: close-to-open
    /// consistency with other mounts).
    pub fn forget(&self, inode: u32) {
        lock(&self.locs).retain(|(i, _), _| *i != inode);
        lock(&self.ahead).remove(&inode);
    }

    /// [`Files::forget`] at open, keeping locations the master sent in the
    /// last moments (with the lookup that preceded this open): they are as
    /// new as asking again would be.
    pub fn forget_at_open(&self, inode: u32) {
        lock(&self.locs).retain(|(i, _), (_, at)| *i != inode || at.elapsed() < FRESH);
        lock(&self.ahead).remove(&inode);
    }

    /// Keeps the location of chunk 0 that came with a lookup of `inode`
    /// (`length`: the file length in the same reply).
    pub fn seed_first_chunk(&self, inode: u32, length: u64, first: elkfs_proto::client::FirstChunk) {
        let loc = ChunkLoc { length, chunk: first.chunk, version: first.version, servers: first.servers };
        lock(&self.locs).insert((inode, 0), (loc, Instant::now()));
    }

    /// The length this mount knows `inode` to have at least (buffered
    /// writes not yet at the master).
    pub fn buffered_end(&self, inode: u32) -> u64 {
        lock(&self.buffers).get(&inode).map_or(0, |b| b.end())
    }

    /// Buffers a write; flushes when the buffer is full.
    pub fn write(&self, inode: u32, offset: u64, data: Vec<u8>) -> Result<()> {
        lock(&self.ahead).remove(&inode);
        let full = {
            let mut bufs = lock(&self.buffers);
            let b = bufs.entry(inode).or_default();
            b.add(offset, data);
            b.bytes() >= self.cfg.buffer_max
        };
        if full {
            self.flush_when(inode, |b| b.bytes() >= self.cfg.buffer_max)?;
        }
        Ok(())
    }

    /// Writes everything buffered for `inode` and waits for the chain's
    /// acknowledgements and the master's WRITE_CHUNK_END replies.
    pub fn flush(&self, inode: u32) -> Result<()> {
        self.flush_when(inode, |_| true)
    }

    /// Flushes when `due` still holds once this thread's turn has come: a
    /// writer that found the buffer full and waited for another flush
    /// usually finds that flush took its data too, and sending the few
    /// writes buffered since would cost a whole master exchange per chunk.
    fn flush_when(&self, inode: u32, due: impl Fn(&WriteBuffer) -> bool) -> Result<()> {
        // Taken before the data, so flushes reach the chunkservers in the
        // order their data left the buffer.
        let _order = self.stripe(inode).write().unwrap_or_else(|p| p.into_inner());
        let extents = match lock(&self.buffers).get_mut(&inode) {
            Some(b) if due(b) => b.take(),
            _ => return Ok(()),
        };
        if extents.is_empty() {
            return Ok(());
        }
        let result = by_chunk(&extents).iter().try_for_each(|(index, pieces)| self.write_chunk(inode, *index, pieces));
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.forget(inode);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.master.modified(inode, now as u32);
        result
    }

    /// Flushes every file (unmount).
    pub fn flush_all(&self) -> Result<()> {
        let inodes: Vec<u32> = lock(&self.buffers).keys().copied().collect();
        let mut first = Ok(());
        for inode in inodes {
            let r = self.flush(inode);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Buffers a write when that does not fill the buffer; otherwise
    /// hands the data back untouched for [`Files::write`] (which may have
    /// to flush). Never waits on the network: the FUSE reader thread calls
    /// it.
    pub fn write_buffered(&self, inode: u32, offset: u64, data: Vec<u8>) -> std::result::Result<(), Vec<u8>> {
        let mut bufs = lock(&self.buffers);
        let b = bufs.entry(inode).or_default();
        if b.bytes() + data.len() >= self.cfg.buffer_max {
            return Err(data);
        }
        b.add(offset, data);
        drop(bufs);
        lock(&self.ahead).remove(&inode);
        Ok(())
    }

    /// True when nothing of `inode` is buffered or on its way: a flush
    /// would return at once. Never waits.
    pub fn is_clean(&self, inode: u32) -> bool {
        if lock(&self.buffers).get(&inode).is_some_and(|b| !b.is_empty()) {
            return false;
        }
        // A flush under way holds the stripe; so may one of another file
        // sharing it, which only sends us the slow way.
        self.stripe(inode).try_write().is_ok()
    }

    /// Drops the buffer of a file nobody has open any more (after flush).
    pub fn drop_buffer(&self, inode: u32) {
        let mut bufs = lock(&self.buffers);
        if bufs.get(&inode).is_some_and(|b| b.is_empty()) {
            bufs.remove(&inode);
        }
    }

    /// Cuts buffered data past `length` (the caller truncates at the master).
    pub fn truncate_buffer(&self, inode: u32, length: u64) {
        if let Some(b) = lock(&self.buffers).get_mut(&inode) {
            b.truncate(length);
        }
        self.forget(inode);
    }

    fn write_chunk(&self, inode: u32, index: u32, pieces: &[(u32, &[u8])]) -> Result<()> {
        let end = pieces.iter().map(|(o, d)| u64::from(index) * CHUNK + u64::from(*o) + d.len() as u64).max();
        let end = end.unwrap_or(0);
        let mut last = None;
        for attempt in 0..self.cfg.attempts {
            if attempt > 0 {
                std::thread::sleep(backoff(attempt));
            }
            let loc = match self.master.write_chunk(inode, index) {
                Ok(loc) => loc,
                Err(e) if retryable(&e) => {
                    tracing::warn!("inode {inode} chunk {index}: {e}; retrying");
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            tracing::debug!("inode {inode} chunk {index}: writing {:?} up to {end}", loc);
            match write_chain(&self.pool, &loc.servers, loc.chunk, loc.version, pieces) {
                Ok(()) => return self.master.write_chunk_end(loc.chunk, inode, index, end.max(loc.length)),
                Err(e) => {
                    tracing::warn!("write of chunk {:016X} (inode {inode}): {e}; retrying", loc.chunk);
                    // Unlock without changing the length, then ask again.
                    self.master.write_chunk_end(loc.chunk, inode, index, 0)?;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::Chunk { chunk: 0, what: "no write attempt".into() }))
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
        // Our own buffered writes must be visible, and chunkservers are
        // where the rest of the file is: flush first, and wait for a flush
        // another thread has under way.
        if lock(&self.buffers).get(&inode).is_some_and(|b| !b.is_empty()) {
            self.flush(inode)?;
        }
        let _order = self.stripe(inode).read().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = self.read_ahead_hit(inode, offset, out) {
            return Ok(n);
        }
        let sequential = match lock(&self.ahead).get_mut(&inode) {
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
        let mut ahead = lock(&self.ahead);
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
        let mut ahead = lock(&self.ahead);
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
            match read_range(&self.pool, server, loc.chunk, loc.version, in_chunk, buf) {
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
        if let Some((loc, at)) = lock(&self.locs).get(&(inode, index)) {
            if at.elapsed() < self.cfg.loc_ttl {
                return Ok(loc.clone());
            }
        }
        let loc = self.master.read_chunk(inode, index)?;
        lock(&self.locs).insert((inode, index), (loc.clone(), Instant::now()));
        Ok(loc)
    }
}

/// Errors worth another attempt. As mfsmount: the master's statuses are
/// retried unless they cannot change (no such file, no permission, quota,
/// read-only, too big); `NOSPACE` is retried because a master that has
/// just started counts no space until its chunkservers report it.
fn retryable(e: &Error) -> bool {
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
fn backoff(attempt: u32) -> Duration {
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
