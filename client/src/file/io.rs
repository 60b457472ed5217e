//! Reading and writing files: the layer between FUSE requests and the
//! chunkservers.
//!
//! Reads go through `readahead` to `fetch`; writes are `writer`'s. A read
//! of a file with writes not yet at the chunkservers (or whose length the
//! master does not know yet) flushes them first and waits for a flush
//! under way (read-your-writes). Reads run side by side.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use elkfs_proto::client::{ChunkLoc, MaToCl};

use super::chunkwrite::{LocCache, Sink};
use super::fetch::Fetcher;
use super::readahead::{ReadAhead, ReadBytes};
use super::writer::FileWrite;
use crate::data::pool::Pool;
use crate::error::{Error, Result};
use crate::master::Master;

/// Limits of the file layer.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Buffered bytes per file before a flush starts.
    pub buffer_max: usize,
    /// Buffered and unacknowledged bytes of all files together; a file
    /// with no more than 1 MiB is never held back by it.
    pub buffer_total: usize,
    /// How long a chunk location is used without asking the master again.
    pub loc_ttl: Duration,
    /// Attempts of one chunk read or write before the error reaches the
    /// application.
    pub attempts: u32,
    /// Bytes of read-ahead data for all files together (0: none); see
    /// `readahead`.
    pub readahead: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            buffer_max: 128 << 20,
            buffer_total: 256 << 20,
            loc_ttl: Duration::from_secs(1),
            attempts: 30,
            readahead: 256 << 20,
        }
    }
}

/// A location fetched this recently survives an open.
const FRESH: Duration = Duration::from_millis(100);

/// Every open file's write-back state and the location cache of one mount.
pub struct Files {
    pub(super) sink: Sink,
    fetch: Fetcher,
    pub(super) cfg: FilesConfig,
    pub(super) writers: Mutex<HashMap<u32, Arc<FileWrite>>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Files {
    pub fn new(master: Master, cfg: FilesConfig) -> Files {
        let locs: LocCache = Arc::default();
        let ahead = Arc::new(ReadAhead::new(cfg.readahead, cfg.loc_ttl));
        let (pushed, pushed_ahead) = (Arc::clone(&locs), Arc::clone(&ahead));
        // Another session wrote or truncated: drop what we know of that
        // file, its read-ahead data too.
        master.set_push_handler(Box::new(move |msg| match msg {
            MaToCl::ChunkHasChanged { inode, .. } | MaToCl::FlengHasChanged { inode, .. } => {
                lock(&pushed).retain(|(i, _), _| i != inode);
                pushed_ahead.forget(*inode);
            }
            MaToCl::InvalidateChunkCache => {
                lock(&pushed).clear();
                pushed_ahead.clear();
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
        let fetch = Fetcher { sink: sink.clone(), loc_ttl: cfg.loc_ttl, attempts: cfg.attempts };
        Files { sink, fetch, cfg, writers: Mutex::new(HashMap::new()) }
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

    /// Reads served from read-ahead data so far, and the most bytes the
    /// read-ahead of all files held at once.
    pub fn read_ahead_stats(&self) -> (u64, u64) {
        (self.sink.ahead.served(), self.sink.ahead.peak_bytes())
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
        self.sink.ahead.forget(inode);
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
    /// (short at the end of the file); see [`Files::read_shared`].
    pub fn read_into(&self, inode: u32, offset: u64, size: usize, out: &mut Vec<u8>) -> Result<usize> {
        match self.read_shared(inode, offset, size, out)? {
            ReadBytes::Buf(n) => Ok(n),
            seg @ ReadBytes::Seg { .. } => {
                let bytes = seg.slice(&[]);
                out[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            }
        }
    }

    /// Reads up to `size` bytes at `offset` (fewer at the end of the file),
    /// into `out` or left in read-ahead data. `out` grows to `size` if
    /// shorter and is otherwise reused as it is: a caller that keeps one
    /// buffer per thread spares the zeroing and page faults of a fresh one
    /// per read.
    pub fn read_shared(&self, inode: u32, offset: u64, size: usize, out: &mut Vec<u8>) -> Result<ReadBytes> {
        if out.len() < size {
            out.resize(size, 0);
        }
        // Our own writes must be visible, and chunkservers are where the
        // rest of the file is: flush first, and wait for a flush another
        // thread has under way.
        if !self.is_clean(inode) {
            self.flush(inode)?;
        }
        self.sink.ahead.read(&self.fetch, inode, offset, &mut out[..size])
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
