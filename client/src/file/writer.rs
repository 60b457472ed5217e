//! Write-back: each file's buffer and the thread that streams it out.
//!
//! A write lands in the file's buffer. Once a file has `STREAM_START`
//! bytes buffered, a thread of its own takes whole blocks as they come and
//! hands each chunk's pieces to that chunk's lane (`lanes`), which keeps
//! the chunk's write open in between, so the chain never drains, the
//! master is asked once per chunk, not once per buffer, and consecutive
//! chunks go out side by side. Writers wait only while the bytes buffered
//! and those taken but not yet acknowledged reach `buffer_max` for the
//! file or `buffer_total` for all files together (the mount's budget,
//! as mfsmount's write cache). A flush
//! (close, fsync, a read or a truncate of the file) sends the rest, ends
//! the chunk writes at the master and waits for both. Files that never
//! reach `STREAM_START` (small files) are sent by the flush itself, on the
//! caller's thread. Pieces of one chunk always go through one lane (or
//! one flush) in the order they were written.
//!
//! A write that could not be sent (every attempt failed) is reported to
//! the next write and to the next flush, which clears it, as mfsmount
//! reports it at close.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use super::buffer::WriteBuffer;
use super::chunkwrite::{by_chunk, Sink};
use super::io::{lock, Files};
use super::lanes::{Lane, MAX_LANES};
use crate::data::write::Piece;
use crate::error::{Error, Result};

/// Buffered bytes that start a file's streaming thread (or half the
/// buffer, if that is smaller).
const STREAM_START: usize = 1 << 20;
/// Acknowledged bytes are handed back to waiting writers in steps this
/// large, not one lock and wake-up per 64 KiB piece.
const RELEASE_STEP: usize = 1 << 20;

/// A file with no more than this buffered and unacknowledged is never held
/// back by the mount-wide budget: small files are sent at close anyway,
/// and every file can always make progress.
const BUDGET_FREE: usize = STREAM_START;
/// A writer held back by the mount-wide budget looks again this often:
/// acknowledgements of other files do not wake it.
const BUDGET_RECHECK: Duration = Duration::from_millis(20);

/// Who is sending a file's data now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Sender {
    #[default]
    Nobody,
    /// A flush on the caller's thread (the file never streamed).
    Flush,
    /// The file's streaming thread.
    Stream,
}

#[derive(Default)]
struct State {
    buf: WriteBuffer,
    /// Taken from `buf` by the sender and not yet acknowledged.
    held: usize,
    sender: Sender,
    /// Lanes running (chunk writes open or about to be: data taken whose
    /// length the master may not know yet).
    lanes: usize,
    /// Lanes that ended, for the streaming thread to forget.
    finished: Vec<u64>,
    /// The file is at least this long by data sent whose length the master
    /// does not know yet.
    sent_end: u64,
    /// Flushes asked of the streaming thread, and how many it has done.
    asked: u64,
    done: u64,
    failed: Option<Error>,
}

impl State {
    /// Buffered and taken-but-unacknowledged bytes: what the budgets count.
    fn used(&self) -> usize {
        self.buf.bytes() + self.held
    }

    fn is_clean(&self) -> bool {
        self.buf.is_empty()
            && self.sender != Sender::Flush
            && self.lanes == 0
            && self.held == 0
            && self.failed.is_none()
    }

    /// Takes data for sending and counts it as held.
    fn take(&mut self, whole_blocks: bool) -> Vec<(u64, Vec<u8>)> {
        let extents = if whole_blocks { self.buf.take_whole_blocks() } else { self.buf.take() };
        self.held += extents.iter().map(|(_, d)| d.len()).sum::<usize>();
        let end = extents.iter().map(|(s, d)| s + d.len() as u64).max().unwrap_or(0);
        self.sent_end = self.sent_end.max(end);
        extents
    }

    /// After a flush's send: nothing taken is held any more (acknowledged,
    /// or given up and reported).
    fn settle(&mut self, r: Result<()>) {
        self.held = 0;
        self.fail(r);
    }

    fn fail(&mut self, r: Result<()>) {
        if let Err(e) = r {
            tracing::error!("write error: {e}");
            self.failed.get_or_insert(e);
        }
    }
}

/// One file's write-back state.
#[derive(Default)]
pub(super) struct FileWrite {
    st: Mutex<State>,
    /// Held by the one writer waiting for room; the others queue here,
    /// so freed room wakes one thread, not every blocked writer (fio
    /// keeps 16 writes in flight).
    gate: Mutex<()>,
    /// Writers wait here for room in the buffer.
    space: Condvar,
    /// The streaming thread waits here for data and flush requests;
    /// flushes wait here for the streaming thread.
    progress: Condvar,
    /// Buffered + unacknowledged bytes when last counted for the
    /// mount-wide budget: used while the state is locked by someone else.
    seen: AtomicUsize,
}

impl FileWrite {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.st)
    }

    /// Lane `id` ended with `result`. Once no lane runs, nothing taken is
    /// held any more (acknowledged, or given up and reported) and the
    /// master knows every length.
    pub(super) fn lane_done(&self, id: u64, result: Result<()>) {
        let mut st = self.lock();
        st.fail(result);
        st.lanes -= 1;
        st.finished.push(id);
        if st.lanes == 0 {
            st.held = 0;
            st.sent_end = 0;
        }
        drop(st);
        self.progress.notify_all();
        self.space.notify_all();
    }
}

/// Counts acknowledged bytes and hands them back to waiting writers in
/// `RELEASE_STEP`s, the rest when dropped.
pub(super) struct Release<'a> {
    fw: &'a FileWrite,
    freed: usize,
}

impl<'a> Release<'a> {
    pub(super) fn new(fw: &'a FileWrite) -> Self {
        Release { fw, freed: 0 }
    }

    pub(super) fn add(&mut self, n: usize) {
        self.freed += n;
        if self.freed >= RELEASE_STEP {
            self.hand_back();
        }
    }

    fn hand_back(&mut self) {
        if self.freed > 0 {
            let mut st = self.fw.lock();
            st.held = st.held.saturating_sub(self.freed);
            self.freed = 0;
            drop(st);
            self.fw.space.notify_all();
        }
    }
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.hand_back();
    }
}

/// A copy of a failure for a caller other than the one it is reported to:
/// the same errno, the same words.
fn echo(e: &Error) -> Error {
    match e.status() {
        Some(status) => Error::Status { op: "an earlier write", status },
        None => Error::Chunk { chunk: 0, what: format!("an earlier write failed: {e}") },
    }
}

impl Files {
    fn file_write(&self, inode: u32) -> Arc<FileWrite> {
        Arc::clone(lock(&self.writers).entry(inode).or_default())
    }

    fn existing(&self, inode: u32) -> Option<Arc<FileWrite>> {
        lock(&self.writers).get(&inode).cloned()
    }

    /// Bytes buffered or unacknowledged in files other than `inode`, for
    /// the mount-wide budget. Never waits for a file's state: one that is
    /// busy counts what it held when last seen. The caller must not hold
    /// a file's state (`drop_buffer` takes the map first, then a state).
    fn others_used(&self, inode: u32) -> usize {
        let writers = lock(&self.writers);
        let used = |fw: &FileWrite| {
            let n = match fw.st.try_lock() {
                Ok(st) => st.used(),
                Err(TryLockError::Poisoned(p)) => p.into_inner().used(),
                Err(TryLockError::WouldBlock) => return fw.seen.load(Ordering::Relaxed),
            };
            fw.seen.store(n, Ordering::Relaxed);
            n
        };
        writers.iter().filter(|(i, _)| **i != inode).map(|(_, fw)| used(fw)).sum()
    }

    /// Buffered and unacknowledged bytes of every file now (waits for each
    /// file's state in turn).
    pub fn write_back_bytes(&self) -> usize {
        let files: Vec<Arc<FileWrite>> = lock(&self.writers).values().cloned().collect();
        files.iter().map(|fw| fw.lock().used()).sum()
    }

    /// Whether `more` bytes fit the mount-wide budget with what `inode`
    /// already holds; asks the other files only when past `BUDGET_FREE`.
    /// Called without `inode`'s state held.
    fn budget_room(&self, inode: u32, used: usize, more: usize) -> bool {
        used == 0 || used + more <= BUDGET_FREE || self.others_used(inode) + used + more <= self.cfg.buffer_total
    }

    fn stream_start(&self) -> usize {
        STREAM_START.min(self.cfg.buffer_max / 2).max(1)
    }

    /// Starts the streaming thread of `inode` if it has enough buffered
    /// and nobody sends its data; otherwise wakes the one that runs.
    fn kick(&self, inode: u32, fw: &Arc<FileWrite>, st: &mut State) {
        match st.sender {
            Sender::Stream => fw.progress.notify_all(),
            Sender::Nobody if st.buf.bytes() >= self.stream_start() => {
                let (sink, file) = (self.sink.clone(), Arc::clone(fw));
                let spawned = std::thread::Builder::new()
                    .name(format!("stream {inode}"))
                    .spawn(move || stream(sink, inode, file));
                match spawned {
                    Ok(_) => st.sender = Sender::Stream,
                    // `write` then sends the buffer from its own thread.
                    Err(e) => tracing::warn!("no streaming thread for inode {inode}: {e}"),
                }
            }
            _ => {}
        }
    }

    /// Buffers a write, waiting while the buffer is full.
    pub fn write(&self, inode: u32, offset: u64, data: Vec<u8>) -> Result<()> {
        self.sink.ahead.forget(inode);
        let fw = self.file_write(inode);
        let _turn = lock(&fw.gate);
        let mut st = fw.lock();
        loop {
            if let Some(e) = &st.failed {
                return Err(echo(e));
            }
            let used = st.used();
            let file_room = used == 0 || used + data.len() <= self.cfg.buffer_max;
            if file_room {
                if used + data.len() <= BUDGET_FREE {
                    break;
                }
                drop(st);
                let room = self.budget_room(inode, used, data.len());
                st = fw.lock();
                if room && st.used() <= used {
                    break;
                }
                if room {
                    continue; // more was buffered meanwhile: count again
                }
            }
            // No room, in the file's buffer or the mount's budget: our own
            // data must move (the other files' moves on its own).
            if st.sender == Sender::Nobody && !st.buf.is_empty() {
                self.kick(inode, &fw, &mut st);
                if st.sender == Sender::Nobody {
                    // No thread to stream it: send the buffer from here.
                    drop(st);
                    self.flush(inode)?;
                    st = fw.lock();
                    continue;
                }
            }
            st = if file_room {
                // Acknowledgements of other files do not wake us.
                fw.space.wait_timeout(st, BUDGET_RECHECK).map_or_else(|p| p.into_inner().0, |r| r.0)
            } else {
                fw.space.wait(st).unwrap_or_else(|p| p.into_inner())
            };
        }
        st.buf.add(offset, data);
        self.kick(inode, &fw, &mut st);
        Ok(())
    }

    /// Buffers a write when there is room; otherwise hands the data back
    /// untouched for [`Files::write`] (which may wait). Never waits on the
    /// network: the FUSE reader thread calls it.
    pub fn write_buffered(&self, inode: u32, offset: u64, data: Vec<u8>) -> std::result::Result<(), Vec<u8>> {
        let fw = self.file_write(inode);
        let mut st = fw.lock();
        let used = st.used();
        if st.failed.is_some() || (used > 0 && used + data.len() > self.cfg.buffer_max) {
            return Err(data);
        }
        if used + data.len() > BUDGET_FREE {
            drop(st);
            let room = self.budget_room(inode, used, data.len());
            st = fw.lock();
            if !room || st.used() > used {
                return Err(data);
            }
        }
        st.buf.add(offset, data);
        self.kick(inode, &fw, &mut st);
        drop(st);
        self.sink.ahead.forget(inode);
        Ok(())
    }

    /// Writes everything buffered for `inode` and waits for the chain's
    /// acknowledgements and the master's WRITE_CHUNK_END replies.
    pub fn flush(&self, inode: u32) -> Result<()> {
        let Some(fw) = self.existing(inode) else { return Ok(()) };
        let mut st = fw.lock();
        loop {
            match st.sender {
                Sender::Nobody => {
                    if let Some(e) = st.failed.take() {
                        return Err(e);
                    }
                    if st.buf.is_empty() {
                        return Ok(());
                    }
                    st.sender = Sender::Flush;
                    let extents = st.take(false);
                    drop(st);
                    let r = {
                        let mut open = None;
                        let mut release = Release::new(&fw);
                        let mut acked = |p: &Piece| release.add(p.len());
                        let r = self.sink.send(inode, &mut open, extents, &mut acked);
                        r.and_then(|()| self.sink.close(inode, &mut open, &mut acked))
                    };
                    st = fw.lock();
                    st.sender = Sender::Nobody;
                    st.sent_end = 0;
                    st.settle(r);
                    fw.space.notify_all();
                    fw.progress.notify_all();
                    // What other threads buffered meanwhile waits for the
                    // next flush: this one covers what was written before
                    // it was called.
                    return match st.failed.take() {
                        Some(e) => Err(e),
                        None => Ok(()),
                    };
                }
                Sender::Flush => st = fw.progress.wait(st).unwrap_or_else(|p| p.into_inner()),
                Sender::Stream => {
                    st.asked += 1;
                    let ticket = st.asked;
                    fw.progress.notify_all();
                    while st.done < ticket && st.sender == Sender::Stream {
                        st = fw.progress.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                    if st.done >= ticket {
                        return match st.failed.take() {
                            Some(e) => Err(e),
                            None => Ok(()),
                        };
                    }
                }
            }
        }
    }

    /// Flushes every file (unmount).
    pub fn flush_all(&self) -> Result<()> {
        let inodes: Vec<u32> = lock(&self.writers).keys().copied().collect();
        let mut first = Ok(());
        for inode in inodes {
            let r = self.flush(inode);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// True when nothing of `inode` is buffered, on its way, or waiting to
    /// be reported: a flush would return at once. Never waits on the
    /// network.
    pub fn is_clean(&self, inode: u32) -> bool {
        self.existing(inode).is_none_or(|fw| fw.lock().is_clean())
    }

    /// Drops the state of a file nobody has open any more (after flush).
    pub fn drop_buffer(&self, inode: u32) {
        let mut writers = lock(&self.writers);
        if writers.get(&inode).is_some_and(|fw| fw.lock().is_clean()) {
            writers.remove(&inode);
        }
    }

    /// Cuts buffered data past `length` (the caller flushed, and truncates
    /// at the master).
    pub fn truncate_buffer(&self, inode: u32, length: u64) {
        if let Some(fw) = self.existing(inode) {
            let mut st = fw.lock();
            st.buf.truncate(length);
            st.sent_end = st.sent_end.min(length);
        }
        self.forget(inode);
    }

    /// The length this mount knows `inode` to have at least (writes whose
    /// length the master does not know yet).
    pub fn buffered_end(&self, inode: u32) -> u64 {
        self.existing(inode).map_or(0, |fw| {
            let st = fw.lock();
            st.buf.end().max(st.sent_end)
        })
    }
}

/// What the streaming thread does next.
#[derive(Debug, PartialEq)]
enum Turn {
    /// Hands data to the lanes; with a flush's ticket, ends every chunk
    /// write after it and waits for them.
    Send { extents: Vec<(u64, Vec<u8>)>, flush: Option<u64> },
    /// Waits for data, a flush or a lane's end.
    Wait,
    /// No lane runs and nothing is to be sent (a partial block stays
    /// buffered for the next flush or the next streaming thread).
    Exit,
}

/// Decides the next turn from the file's state, taking what is to be sent.
fn next_turn(st: &mut State) -> Turn {
    let flushing = st.asked > st.done;
    let extents = st.take(!flushing);
    if flushing || !extents.is_empty() {
        Turn::Send { extents, flush: flushing.then_some(st.asked) }
    } else if st.lanes == 0 {
        Turn::Exit
    } else {
        Turn::Wait
    }
}

/// The streaming thread of one file: takes whole blocks as they are
/// buffered and hands them to the lanes, answers flushes, and stops when
/// no lane runs and nothing is to be sent.
fn stream(sink: Sink, inode: u32, fw: Arc<FileWrite>) {
    let mut lanes = Vec::new();
    let mut next_id = 0u64;
    let mut st = fw.lock();
    loop {
        let finished = std::mem::take(&mut st.finished);
        lanes.retain(|l: &Lane| !finished.contains(&l.id));
        match next_turn(&mut st) {
            Turn::Exit => {
                st.sender = Sender::Nobody;
                drop(st);
                fw.space.notify_all();
                fw.progress.notify_all();
                return;
            }
            Turn::Wait => st = fw.progress.wait(st).unwrap_or_else(|p| p.into_inner()),
            Turn::Send { extents, flush } => {
                drop(st);
                for (index, pieces) in by_chunk(extents) {
                    dispatch(&sink, inode, &fw, &mut lanes, &mut next_id, index, pieces);
                }
                if flush.is_some() {
                    lanes.iter().for_each(Lane::finish);
                }
                st = fw.lock();
                if let Some(ticket) = flush {
                    while st.lanes > 0 {
                        st = fw.progress.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                    st.done = ticket;
                    fw.progress.notify_all();
                }
            }
        }
    }
}

/// Hands the pieces of chunk `index` to its lane, starting one if needed:
/// after a closing lane of the same chunk has ended (its lock at the
/// master must go first), and, when `MAX_LANES` run, after the least
/// recently fed one has been told to finish and one has ended.
fn dispatch(
    sink: &Sink,
    inode: u32,
    fw: &Arc<FileWrite>,
    lanes: &mut Vec<Lane>,
    next_id: &mut u64,
    index: u32,
    mut pieces: Vec<Piece>,
) {
    loop {
        if let Some(lane) = lanes.iter().find(|l| l.index == index && !l.is_closing()) {
            match lane.push(pieces) {
                Ok(()) => return,
                Err(back) => pieces = back,
            }
        }
        let same_chunk = lanes.iter().any(|l| l.index == index);
        if same_chunk || lanes.len() >= MAX_LANES {
            if !same_chunk {
                if let Some(oldest) = lanes.iter().min_by_key(|l| l.last_fed()) {
                    oldest.finish();
                }
            }
            let mut st = fw.lock();
            while st.finished.is_empty() {
                st = fw.progress.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            let finished = std::mem::take(&mut st.finished);
            drop(st);
            lanes.retain(|l| !finished.contains(&l.id));
            continue;
        }
        let bytes: usize = pieces.iter().map(Piece::len).sum();
        *next_id += 1;
        fw.lock().lanes += 1;
        match Lane::spawn(sink, inode, index, *next_id, fw, pieces) {
            Ok(lane) => lanes.push(lane),
            Err(e) => {
                let mut st = fw.lock();
                st.lanes -= 1;
                st.held = st.held.saturating_sub(bytes);
                st.fail(Err(e));
                drop(st);
                fw.space.notify_all();
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_of_the_streaming_thread() {
        let block = crate::data::BLOCK as usize;
        let mut st = State::default();
        assert_eq!(next_turn(&mut st), Turn::Exit);
        st.buf.add(0, vec![1; 100]);
        assert_eq!(next_turn(&mut st), Turn::Exit, "a partial block waits");
        st.buf.add(100, vec![2; block]);
        match next_turn(&mut st) {
            Turn::Send { extents, flush: None } => assert_eq!(extents.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!((st.held, st.buf.bytes(), st.sent_end), (block, 100, block as u64));
        assert_eq!(next_turn(&mut st), Turn::Exit);
        st.lanes = 1;
        assert_eq!(next_turn(&mut st), Turn::Wait, "a lane runs: its end is awaited");
        // A flush takes the partial block too, and carries its ticket.
        st.asked = 3;
        st.done = 2;
        match next_turn(&mut st) {
            Turn::Send { extents, flush: Some(3) } => assert_eq!(extents[0].1.len(), 100),
            other => panic!("{other:?}"),
        }
        assert!(st.buf.is_empty());
    }
}
