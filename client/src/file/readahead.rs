//! Read-ahead: a file read sequentially is fetched ahead of its reader in
//! segments of [`SEG`] bytes, by threads of their own, several at once and
//! over more than one chunk.
//!
//! Why more than one chunk: mfschunkserver serves the blocks of a chunk one
//! at a time (each block read takes the chunk's lock), so however many
//! requests a reader keeps in flight inside one chunk, that chunk is read
//! at the pace of one thread. Reading the next chunk at the same time (its
//! own lock, and at goal 1 usually another server) lifts that ceiling, so
//! no chunk gets more than [`PER_CHUNK`] segment fetches at once and the
//! rest of the budget goes to the next chunk in the window.
//!
//! Memory is bounded for the whole mount, as mfsmount's: segments of all
//! files together stay within `mfsreadaheadsize`; a reader that finds the
//! budget spent reads directly.
//!
//! Readers that arrive while their segment is in flight wait for it rather
//! than ask the chunkserver for the same bytes. Whatever the read-ahead
//! cannot give (a failed fetch, a segment dropped meanwhile, data older
//! than the location time-to-live) is read directly, so errors reach the
//! application through the same retries as any other read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::fetch::Fetcher;
use super::io::lock;
use crate::data::CHUNK;
use crate::error::Result;

/// Bytes per segment: big enough to be split over two copies (see
/// `fetch`), small enough that a reader rarely waits for much more than
/// it asked.
pub(super) const SEG: u64 = 2 << 20;
/// Sequential bytes read before read-ahead starts: random readers never
/// pay for it.
const TRIGGER: u64 = 4 << 20;
/// Reads that arrive out of order (many in flight at once) land this far
/// behind the furthest one and still count as sequential; segments are
/// kept this far behind it for them.
const BEHIND: u64 = 16 << 20;
/// Segment fetches in flight per file, and per chunk of it.
const PER_FILE: usize = 8;
const PER_CHUNK: usize = 4;
/// Segment buffers kept for reuse: a fresh 2 MiB buffer costs 512 page
/// faults, and a sequential reader needs hundreds a second.
const SPARE: usize = 16;
/// A stream unused this long is dropped with its data.
const IDLE: Duration = Duration::from_secs(2);

enum Seg {
    Fetching,
    Ready { data: Arc<Vec<u8>>, at: Instant },
    Failed,
}

/// One file's read-ahead.
struct Stream {
    /// Tells a fetch that finishes after the stream was dropped and made
    /// again not to deliver into the new one.
    id: u64,
    /// End of the furthest read.
    next: u64,
    /// How far sequential reads have moved the reader, in bytes.
    run: u64,
    segs: BTreeMap<u64, Seg>,
    /// First segment the file does not reach, once a fetch came back short.
    end: Option<u64>,
    used: Instant,
}

/// Streams by inode, the segments they hold, and when idle ones were
/// last dropped.
struct Streams {
    by_inode: HashMap<u32, Stream>,
    /// Segments of every stream (in flight, fetched or failed): what the
    /// mount-wide budget is checked against.
    held: usize,
    swept: Instant,
}

impl Streams {
    fn remove(&mut self, inode: u32) {
        if let Some(s) = self.by_inode.remove(&inode) {
            self.held -= s.segs.len();
        }
    }
}

/// The most a single file reads ahead, whatever the mount's budget.
pub(super) const WINDOW: u64 = 64 << 20;

/// How often idle streams are looked for: every read of every file makes
/// one, and thousands of small files a second would make each sweep long.
const SWEEP: Duration = Duration::from_millis(200);

impl Stream {
    fn new(id: u64, at: u64) -> Stream {
        Stream { id, next: at, run: 0, segs: BTreeMap::new(), end: None, used: Instant::now() }
    }

    /// Notes a read of `offset..end`: true when the file is being read
    /// sequentially (and read-ahead should serve it).
    fn note(&mut self, offset: u64, end: u64) -> bool {
        self.used = Instant::now();
        let near = offset <= self.next + SEG && offset + BEHIND >= self.next;
        if near {
            // Forward progress: reads in flight together arrive in any
            // order, and one that lands a little ahead covers the gap
            // that a later arrival fills.
            self.run += end.saturating_sub(self.next);
            self.next = self.next.max(end);
        } else {
            // A jump: what was fetched is for a reader no longer there.
            self.run = end - offset;
            self.segs.clear();
            self.end = None;
            self.next = end;
        }
        self.run >= TRIGGER
    }

    /// Drops segments far behind the reader and data older than `ttl`;
    /// returns the data so its buffers can be reused.
    fn drop_old(&mut self, ttl: Duration) -> Vec<Arc<Vec<u8>>> {
        let keep_from = self.next.saturating_sub(BEHIND) / SEG;
        let mut done = Vec::new();
        self.segs.retain(|&k, seg| match seg {
            Seg::Ready { at, data } => {
                let keep = k >= keep_from && at.elapsed() < ttl;
                if !keep {
                    done.push(Arc::clone(data));
                }
                keep
            }
            Seg::Fetching => true,
            Seg::Failed => k >= keep_from,
        });
        done
    }

    /// Marks the segments to fetch now for a read of `offset..end` and
    /// returns them: those after the read, up to `window` bytes from it,
    /// at most `room`, within the per-file and per-chunk limits.
    fn schedule(&mut self, offset: u64, end: u64, window: u64, room: usize) -> Vec<u64> {
        // Segments the reader is inside of are its own to read: waiting for
        // a whole segment would delay it.
        let first = end.div_ceil(SEG);
        let mut last = (offset + window).div_ceil(SEG);
        if let Some(e) = self.end {
            last = last.min(e);
        }
        let fetching = |g: &Seg| matches!(g, Seg::Fetching);
        let mut start = Vec::new();
        for k in first..last {
            if start.len() >= room {
                break;
            }
            if self.segs.contains_key(&k) {
                continue;
            }
            if self.segs.values().filter(|g| fetching(g)).count() >= PER_FILE {
                break;
            }
            let chunk = k * SEG / CHUNK;
            let per_chunk = CHUNK / SEG;
            if self.segs.range(chunk * per_chunk..(chunk + 1) * per_chunk).filter(|(_, g)| fetching(g)).count()
                >= PER_CHUNK
            {
                continue;
            }
            self.segs.insert(k, Seg::Fetching);
            start.push(k);
        }
        start
    }
}

/// The read-ahead streams of one mount.
pub(super) struct ReadAhead {
    streams: Mutex<Streams>,
    arrived: Condvar,
    spare: Mutex<Vec<Vec<u8>>>,
    ids: AtomicU64,
    /// Reads (or parts of reads) served from fetched segments.
    served: AtomicU64,
    /// The most segments all streams held at once.
    peak: AtomicUsize,
    /// Bytes fetched ahead of a sequential reader (0: no read-ahead).
    window: u64,
    /// Segments all streams together may hold (`mfsreadaheadsize`).
    budget: usize,
    /// Fetched data older than this is read again.
    ttl: Duration,
}

/// Where a read put its bytes: in the caller's buffer, or left in a
/// read-ahead segment, so that a FUSE reply goes out from the segment
/// itself (a copy less of every byte read sequentially).
pub enum ReadBytes {
    Buf(usize),
    Seg { data: Arc<Vec<u8>>, from: usize, to: usize },
}

impl ReadBytes {
    /// The bytes read; `buf` is the buffer the read was given.
    pub fn slice<'a>(&'a self, buf: &'a [u8]) -> &'a [u8] {
        match self {
            ReadBytes::Buf(n) => &buf[..*n],
            ReadBytes::Seg { data, from, to } => &data[*from..*to],
        }
    }
}

impl ReadAhead {
    /// Read-ahead of at most `total` bytes for the whole mount (as
    /// mfsmount's `mfsreadaheadsize`), at most [`WINDOW`] of them ahead of
    /// any one reader.
    pub fn new(total: usize, ttl: Duration) -> ReadAhead {
        ReadAhead {
            streams: Mutex::new(Streams { by_inode: HashMap::new(), held: 0, swept: Instant::now() }),
            arrived: Condvar::new(),
            spare: Mutex::new(Vec::new()),
            ids: AtomicU64::new(0),
            served: AtomicU64::new(0),
            peak: AtomicUsize::new(0),
            window: (total as u64).min(WINDOW),
            budget: (total as u64 / SEG) as usize,
            ttl,
        }
    }

    /// Drops what is known of `inode`'s data (written, truncated, or
    /// changed by another mount). Fetches under way deliver nowhere.
    pub fn forget(&self, inode: u32) {
        lock(&self.streams).remove(inode);
        self.arrived.notify_all();
    }

    pub fn clear(&self) {
        let mut streams = lock(&self.streams);
        streams.by_inode.clear();
        streams.held = 0;
        drop(streams);
        self.arrived.notify_all();
    }

    /// Reads `out.len()` bytes at `offset` (fewer at the end of the file)
    /// through the read-ahead when the file is read sequentially, directly
    /// otherwise. A read inside one segment is left there.
    pub fn read(self: &Arc<Self>, f: &Fetcher, inode: u32, offset: u64, out: &mut [u8]) -> Result<ReadBytes> {
        let end = offset + out.len() as u64;
        if out.is_empty() || !self.plan(f, inode, offset, end) {
            return Ok(ReadBytes::Buf(f.read(inode, offset, out)?));
        }
        let single = end <= (offset / SEG + 1) * SEG;
        let mut filled = 0usize;
        for k in offset / SEG..end.div_ceil(SEG) {
            let from = (k * SEG).max(offset);
            let to = ((k + 1) * SEG).min(end);
            let part = &mut out[(from - offset) as usize..(to - offset) as usize];
            let n = match self.take(inode, k) {
                Some(data) => {
                    // Short data: the file ends inside the segment.
                    let start = ((from - k * SEG) as usize).min(data.len());
                    let stop = ((to - k * SEG) as usize).min(data.len());
                    if single {
                        return Ok(ReadBytes::Seg { data, from: start, to: stop });
                    }
                    part[..stop - start].copy_from_slice(&data[start..stop]);
                    stop - start
                }
                None => f.read(inode, from, part)?,
            };
            filled += n;
            if n < part.len() {
                break; // the end of the file
            }
        }
        Ok(ReadBytes::Buf(filled))
    }

    /// Notes the read of `offset..end`; when the file is read sequentially
    /// schedules the segments of the window and returns true.
    fn plan(self: &Arc<Self>, f: &Fetcher, inode: u32, offset: u64, end: u64) -> bool {
        if self.window == 0 {
            return false;
        }
        let mut guard = lock(&self.streams);
        let streams = &mut *guard;
        if streams.swept.elapsed() >= SWEEP {
            let mut gone = 0;
            streams.by_inode.retain(|_, s| {
                let keep = s.used.elapsed() < IDLE;
                if !keep {
                    gone += s.segs.len();
                }
                keep
            });
            streams.held -= gone;
            streams.swept = Instant::now();
        }
        let ids = &self.ids;
        let s =
            streams.by_inode.entry(inode).or_insert_with(|| Stream::new(ids.fetch_add(1, Ordering::Relaxed), offset));
        let before = s.segs.len();
        let sequential = s.note(offset, end);
        let (done, start) = if sequential {
            let done = s.drop_old(self.ttl);
            let others = streams.held - before;
            let room = self.budget.saturating_sub(others + s.segs.len());
            (done, s.schedule(offset, end, self.window, room))
        } else {
            (Vec::new(), Vec::new())
        };
        let (id, after) = (s.id, s.segs.len());
        streams.held = streams.held - before + after;
        debug_assert_eq!(streams.held, streams.by_inode.values().map(|s| s.segs.len()).sum::<usize>());
        self.peak.fetch_max(streams.held, Ordering::Relaxed);
        drop(guard);
        if !sequential {
            return false;
        }
        self.recycle(done);
        for k in start {
            self.spawn_fetch(f, inode, id, k);
        }
        true
    }

    fn spawn_fetch(self: &Arc<Self>, f: &Fetcher, inode: u32, id: u64, k: u64) {
        let (me, f) = (Arc::clone(self), f.clone());
        let spawned = std::thread::Builder::new().name(format!("ahead {inode}")).spawn(move || {
            let mut fetch = Delivery { ra: &me, inode, id, k, data: None };
            let mut buf = me.buffer();
            match f.read(inode, k * SEG, &mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    fetch.data = Some(buf);
                }
                Err(e) => tracing::debug!("read-ahead of inode {inode} at {}: {e}", k * SEG),
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("no read-ahead thread for inode {inode}: {e}");
            drop(Delivery { ra: self, inode, id, k, data: None });
        }
    }

    /// A segment buffer of `SEG` bytes, reused when one is spare. Its
    /// bytes are whatever an earlier segment left: a fetch overwrites all
    /// it reports.
    fn buffer(&self) -> Vec<u8> {
        let mut buf = lock(&self.spare).pop().unwrap_or_default();
        buf.resize(SEG as usize, 0);
        buf
    }

    /// Keeps the buffers of dropped segments no reader holds any more.
    fn recycle(&self, done: Vec<Arc<Vec<u8>>>) {
        let mut spare = lock(&self.spare);
        for data in done {
            if let Ok(buf) = Arc::try_unwrap(data) {
                if spare.len() < SPARE {
                    spare.push(buf);
                }
            }
        }
    }

    /// Reads (or parts of reads) served from read-ahead data so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// The most bytes all files' read-ahead held at once so far.
    pub fn peak_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed) as u64 * SEG
    }

    /// Segment `k` of `inode` once it is there, or `None` when it must be
    /// read directly.
    fn take(&self, inode: u32, k: u64) -> Option<Arc<Vec<u8>>> {
        let mut streams = lock(&self.streams);
        loop {
            match streams.by_inode.get(&inode).and_then(|s| s.segs.get(&k)) {
                Some(Seg::Ready { data, at }) if at.elapsed() < self.ttl => {
                    self.served.fetch_add(1, Ordering::Relaxed);
                    return Some(Arc::clone(data));
                }
                Some(Seg::Fetching) => {}
                _ => return None,
            }
            streams = self.arrived.wait(streams).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Puts a fetched segment (or its failure) where readers look for it,
/// when dropped: a fetch thread that panics still wakes its readers.
struct Delivery<'a> {
    ra: &'a ReadAhead,
    inode: u32,
    id: u64,
    k: u64,
    data: Option<Vec<u8>>,
}

impl Drop for Delivery<'_> {
    fn drop(&mut self) {
        let mut streams = lock(&self.ra.streams);
        if let Some(s) = streams.by_inode.get_mut(&self.inode).filter(|s| s.id == self.id) {
            if let Some(seg @ Seg::Fetching) = s.segs.get_mut(&self.k) {
                *seg = match self.data.take() {
                    Some(data) => {
                        if (data.len() as u64) < SEG {
                            s.end = Some(s.end.map_or(self.k + 1, |e| e.min(self.k + 1)));
                        }
                        Seg::Ready { data: Arc::new(data), at: Instant::now() }
                    }
                    None => Seg::Failed,
                };
            }
        }
        drop(streams);
        self.ra.arrived.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn ready(s: &mut Stream, k: u64) {
        s.segs.insert(k, Seg::Ready { data: Arc::new(vec![0; SEG as usize]), at: Instant::now() });
    }

    #[test]
    fn sequential_reads_start_it_and_random_ones_never_do() {
        let mut s = Stream::new(0, 0);
        let on: Vec<bool> = (0..6).map(|i| s.note(i * MIB, (i + 1) * MIB)).collect();
        assert_eq!(on, [false, false, false, true, true, true], "on after {TRIGGER} bytes in order");
        let mut r = Stream::new(1, 0);
        let mut x = 12345u64;
        for _ in 0..10_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let at = (x >> 20) % (2 << 30) / 4096 * 4096;
            assert!(!r.note(at, at + 4096), "random 4 KiB reads at {at}");
        }
    }

    #[test]
    fn reads_out_of_order_still_count_and_a_jump_starts_over() {
        let mut s = Stream::new(0, 0);
        // Sixteen 1 MiB reads in flight arrive in any order.
        for i in [0u64, 2, 1, 4, 3, 6, 5, 7] {
            s.note(i * MIB, (i + 1) * MIB);
        }
        assert_eq!(s.run, 8 * MIB, "every byte counted once");
        assert!(s.note(8 * MIB, 9 * MIB));
        ready(&mut s, 5);
        assert!(!s.note(900 * MIB, 901 * MIB), "a jump is not sequential");
        assert!(s.segs.is_empty(), "and drops what was fetched");
        let again: Vec<bool> = (0..5).map(|i| s.note(i * MIB, (i + 1) * MIB)).collect();
        assert_eq!(again, [false, false, false, true, true], "back to the start, read in order again");
    }

    #[test]
    fn the_window_reaches_into_the_next_chunk() {
        let mut s = Stream::new(0, 0);
        let at = CHUNK - 40 * MIB;
        let start = s.schedule(at, at + MIB, 64 * MIB, 100);
        let per_chunk = CHUNK / SEG;
        let this: Vec<_> = start.iter().filter(|k| **k < per_chunk).collect();
        let next: Vec<_> = start.iter().filter(|k| **k >= per_chunk).collect();
        assert_eq!(this.len(), PER_CHUNK, "no more than {PER_CHUNK} fetches in one chunk: {start:?}");
        assert_eq!(next.len(), PER_FILE - PER_CHUNK, "the rest from the next chunk: {start:?}");
        assert!(start.iter().all(|k| k * SEG >= at + MIB), "nothing the reader is inside of");
        assert!(s.schedule(at, at + MIB, 64 * MIB, 100).is_empty(), "all fetches under way");
    }

    #[test]
    fn nothing_past_the_end_of_the_file() {
        let mut s = Stream::new(0, 0);
        s.end = Some(3);
        let start = s.schedule(0, MIB, 64 * MIB, 100);
        assert_eq!(start, [1, 2]);
        assert!(s.schedule(0, MIB, 0, 100).is_empty(), "no window, no fetch");
        let mut t = Stream::new(1, 0);
        assert_eq!(t.schedule(0, MIB, 64 * MIB, 3), [1, 2, 3], "no more than the room left in the budget");
    }

    #[test]
    fn old_and_passed_segments_go() {
        let mut s = Stream::new(0, 0);
        for k in 0..20 {
            ready(&mut s, k);
        }
        s.segs.insert(20, Seg::Fetching);
        s.next = 30 * MIB;
        let gone = s.drop_old(Duration::from_secs(1));
        assert_eq!(gone.len(), ((30 * MIB - BEHIND) / SEG) as usize, "kept {BEHIND} bytes behind");
        assert!(s.segs.contains_key(&20), "a fetch under way stays");
        let left = s.segs.len() - 1;
        assert_eq!(s.drop_old(Duration::ZERO).len(), left, "every ready one is stale at ttl 0");
        assert_eq!(s.segs.len(), 1);
    }
}
