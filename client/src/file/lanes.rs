//! Lanes: a thread per chunk of a streaming file being written, so the
//! tail of one chunk and the head of the next (on other chunkservers) go
//! out side by side instead of one after the other. A lane locks its
//! chunk at the master when its first piece comes, sends what it is given
//! in order, collects the last statuses when it runs dry, and ends the
//! chunk write when told to finish or after `IDLE_END` without data.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::chunkwrite::{ChunkWrite, Sink};
use super::io::lock;
use super::writer::{FileWrite, Release};
use crate::data::write::Piece;
use crate::error::Result;

/// Chunks of one file written at once.
pub(super) const MAX_LANES: usize = 3;
/// A chunk write without new data for this long is ended: the master then
/// knows the length, and other clients may lock the chunk.
pub(super) const IDLE_END: Duration = Duration::from_millis(50);

struct Queue {
    pieces: VecDeque<Piece>,
    /// Told to end once the queue is empty.
    finish: bool,
    /// Ending or ended: takes no more pieces.
    closing: bool,
    last_fed: Instant,
}

struct Shared {
    q: Mutex<Queue>,
    cv: Condvar,
}

/// The dispatcher's handle on one lane.
pub(super) struct Lane {
    pub id: u64,
    pub index: u32,
    shared: Arc<Shared>,
}

impl Lane {
    /// Starts lane `id` for chunk `index` with `pieces` queued.
    pub fn spawn(
        sink: &Sink,
        inode: u32,
        index: u32,
        id: u64,
        fw: &Arc<FileWrite>,
        pieces: Vec<Piece>,
    ) -> Result<Lane> {
        let q = Queue { pieces: pieces.into(), finish: false, closing: false, last_fed: Instant::now() };
        let shared = Arc::new(Shared { q: Mutex::new(q), cv: Condvar::new() });
        let (sink, fw2, shared2) = (sink.clone(), Arc::clone(fw), Arc::clone(&shared));
        std::thread::Builder::new()
            .name(format!("lane {inode}:{index}"))
            .spawn(move || run(sink, inode, index, id, fw2, shared2))
            .map_err(|e| crate::error::Error::io("start a write thread", e))?;
        Ok(Lane { id, index, shared })
    }

    /// Queues `pieces`; hands them back if the lane is closing.
    pub fn push(&self, pieces: Vec<Piece>) -> std::result::Result<(), Vec<Piece>> {
        let mut q = lock(&self.shared.q);
        if q.closing {
            return Err(pieces);
        }
        q.pieces.extend(pieces);
        q.last_fed = Instant::now();
        drop(q);
        self.shared.cv.notify_one();
        Ok(())
    }

    pub fn finish(&self) {
        lock(&self.shared.q).finish = true;
        self.shared.cv.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        lock(&self.shared.q).closing
    }

    pub fn last_fed(&self) -> Instant {
        lock(&self.shared.q).last_fed
    }
}

/// What a lane does next.
#[derive(Debug)]
enum Turn {
    Send(VecDeque<Piece>),
    /// Nothing queued: collects the chain's statuses, so writers get their
    /// room back at once.
    Drain,
    /// Ends the chunk write (told to, or idle).
    Close,
    Wait(Duration),
}

fn next_turn(q: &mut Queue, in_flight: bool, now: Instant) -> Turn {
    if !q.pieces.is_empty() {
        return Turn::Send(std::mem::take(&mut q.pieces));
    }
    let idle = now.saturating_duration_since(q.last_fed);
    if q.finish || idle >= IDLE_END {
        q.closing = true;
        Turn::Close
    } else if in_flight {
        Turn::Drain
    } else {
        Turn::Wait(IDLE_END - idle)
    }
}

fn run(sink: Sink, inode: u32, index: u32, id: u64, fw: Arc<FileWrite>, shared: Arc<Shared>) {
    let result = {
        let mut release = Release::new(&fw);
        let mut acked = |p: &Piece| release.add(p.len());
        let mut open = None;
        work(&sink, inode, index, &shared, &mut open, &mut acked)
    };
    {
        let mut q = lock(&shared.q);
        q.closing = true;
        q.pieces.clear();
    }
    fw.lane_done(id, result);
}

fn work<'s>(
    sink: &'s Sink,
    inode: u32,
    index: u32,
    shared: &Shared,
    open: &mut Option<ChunkWrite<'s>>,
    acked: &mut impl FnMut(&Piece),
) -> Result<()> {
    loop {
        let mut q = lock(&shared.q);
        let in_flight = open.as_ref().is_some_and(|w| w.in_flight());
        match next_turn(&mut q, in_flight, Instant::now()) {
            Turn::Wait(d) => drop(shared.cv.wait_timeout(q, d).map_or_else(|p| p.into_inner().0, |(g, _)| g)),
            Turn::Send(batch) => {
                drop(q);
                for p in batch {
                    sink.send_piece(inode, index, open, p, acked)?;
                }
            }
            Turn::Drain => {
                drop(q);
                sink.drain(inode, open, acked)?;
            }
            Turn::Close => {
                drop(q);
                return sink.close(inode, open, acked);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_of_a_lane() {
        let src = Arc::new(vec![0u8; 10]);
        let mut pieces = Vec::new();
        crate::data::write::block_pieces(0, &src, 0, 10, &mut pieces);
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut q = Queue { pieces: pieces.into(), finish: false, closing: false, last_fed: t0 };
        assert!(matches!(next_turn(&mut q, false, t0), Turn::Send(b) if b.len() == 1));
        assert!(matches!(next_turn(&mut q, true, t0 + ms), Turn::Drain));
        assert!(matches!(next_turn(&mut q, false, t0 + 10 * ms), Turn::Wait(d) if d == IDLE_END - 10 * ms));
        assert!(!q.closing);
        assert!(matches!(next_turn(&mut q, true, t0 + IDLE_END), Turn::Close), "idle: ended even with statuses due");
        assert!(q.closing);
        let mut q = Queue { pieces: VecDeque::new(), finish: true, closing: false, last_fed: t0 };
        assert!(matches!(next_turn(&mut q, false, t0), Turn::Close));
    }
}
