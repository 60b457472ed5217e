//! One io_uring per disk, driven by a dedicated thread.
//!
//! Callers send chains over a channel and get a [`Completion`] back. The
//! thread keeps at most `queue_depth` chains in flight, each with exactly one
//! SQE outstanding, so the submission queue can never overflow. It batches:
//! every message waiting in the channel becomes an SQE before one
//! `io_uring_enter` submits them all and waits for the next completion.
//!
//! Waking: while the thread sleeps in the kernel it keeps a read of an
//! eventfd armed and sets `sleeping`; a sender that sees `sleeping` writes the
//! eventfd. A busy ring is never woken this way, so steady traffic costs no
//! extra syscalls.
//!
//! Buffers: each request's `Buf`s are owned by the in-flight slot until its
//! CQE arrives, so the kernel never writes into memory that was handed back.
//! Short transfers are resubmitted for the remainder; a read that hits end
//! of file ends that request early with the count reached.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use io_uring::{opcode, squeue, types, IoUring};
use tokio::sync::oneshot;

use super::{cancelled, Completion, IoDone, IoOp, IoReq};
use crate::layout::IO_ALIGN;

/// `user_data` of the eventfd read; slots use their index.
const WAKE_TOKEN: u64 = u64::MAX;

struct Msg {
    file: Arc<File>,
    chain: Vec<IoReq>,
    reply: oneshot::Sender<Vec<IoDone>>,
}

/// The sending side of a ring; cloned into every open file of the disk.
pub(crate) struct RingHandle {
    tx: Sender<Msg>,
    sleeping: Arc<AtomicBool>,
    wake: Arc<OwnedFd>,
}

impl RingHandle {
    /// Starts the ring thread for the disk named `name`.
    pub(crate) fn start(name: &str, queue_depth: usize) -> io::Result<(RingHandle, JoinHandle<()>)> {
        assert!(queue_depth > 0 && queue_depth < 4096, "queue depth {queue_depth}");
        let entries = (queue_depth + 1).next_power_of_two() as u32;
        // SAFETY: eventfd returns a new descriptor or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let (tx, rx) = crossbeam_channel::unbounded();
        let sleeping = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (flag, fd) = (sleeping.clone(), wake.clone());
        let thread = std::thread::Builder::new().name(format!("ring {name}")).spawn(move || {
            // Built on the thread that uses it: a single-issuer ring belongs to
            // its creator. One thread submits and reaps, so the kernel can skip
            // cross-thread completion work and defer it until we wait.
            let built = IoUring::builder().setup_single_issuer().setup_defer_taskrun().build(entries);
            let ring = match built {
                Ok(ring) => ring,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            Worker::new(ring, rx, flag, fd, queue_depth).run();
        })?;
        ready_rx.recv().map_err(|_| io::Error::other("ring thread died at start"))??;
        Ok((RingHandle { tx, sleeping, wake }, thread))
    }

    pub(crate) fn clone_handle(&self) -> RingHandle {
        RingHandle { tx: self.tx.clone(), sleeping: self.sleeping.clone(), wake: self.wake.clone() }
    }

    pub(crate) fn submit(&self, file: Arc<File>, direct: bool, chain: Vec<IoReq>) -> Completion {
        if direct {
            for req in &chain {
                check_direct(req);
            }
        }
        let (reply, completion) = Completion::channel();
        if self.tx.send(Msg { file, chain, reply }).is_err() {
            // The thread is gone; dropping the reply makes the completion an error.
            return completion;
        }
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our eventfd. A failed
            // write only means the ring is already awake.
            unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
        completion
    }
}

/// O_DIRECT refuses unaligned I/O with EINVAL; catching it here names the
/// caller's bug instead of a disk error.
fn check_direct(req: &IoReq) {
    if req.op == IoOp::Fsync {
        return;
    }
    assert_eq!(req.offset % IO_ALIGN as u64, 0, "unaligned O_DIRECT offset {}", req.offset);
    for buf in &req.bufs {
        assert_eq!(buf.len() % IO_ALIGN, 0, "unaligned O_DIRECT length {}", buf.len());
        assert_eq!(buf.as_ptr() as usize % IO_ALIGN, 0, "unaligned O_DIRECT buffer");
    }
}

/// A chain in flight.
struct Slot {
    file: Arc<File>,
    chain: std::vec::IntoIter<IoReq>,
    current: Option<IoReq>,
    /// Bytes of `current` already transferred.
    progress: usize,
    done: Vec<IoDone>,
    iovecs: Vec<libc::iovec>,
    reply: oneshot::Sender<Vec<IoDone>>,
}

// SAFETY: the iovecs point into the slot's own buffers, which move with it.
unsafe impl Send for Slot {}

struct Worker {
    ring: IoUring,
    rx: Receiver<Msg>,
    sleeping: Arc<AtomicBool>,
    wake: Arc<OwnedFd>,
    wake_buf: Box<u64>,
    wake_armed: bool,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
}

impl Worker {
    fn new(ring: IoUring, rx: Receiver<Msg>, sleeping: Arc<AtomicBool>, wake: Arc<OwnedFd>, depth: usize) -> Worker {
        let slots = (0..depth).map(|_| None).collect();
        let free = (0..depth).rev().collect();
        Worker { ring, rx, sleeping, wake, wake_buf: Box::new(0), wake_armed: false, slots, free }
    }

    fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn run(mut self) {
        let mut disconnected = false;
        loop {
            while !self.free.is_empty() {
                match self.rx.try_recv() {
                    Ok(msg) => self.start(msg),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if disconnected && self.in_flight() == 0 {
                return;
            }
            if !self.free.is_empty() && !disconnected {
                self.arm_wake();
                self.sleeping.store(true, Ordering::SeqCst);
                if !self.rx.is_empty() {
                    self.sleeping.store(false, Ordering::SeqCst);
                    continue;
                }
            }
            if let Err(e) = self.ring.submit_and_wait(1) {
                if e.raw_os_error() != Some(libc::EINTR) && e.raw_os_error() != Some(libc::EBUSY) {
                    tracing::error!("io_uring_enter failed: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            self.sleeping.store(false, Ordering::SeqCst);
            self.reap();
        }
    }

    fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        let entry = opcode::Read::new(types::Fd(self.wake.as_raw_fd()), (&mut *self.wake_buf as *mut u64).cast(), 8)
            .build()
            .user_data(WAKE_TOKEN);
        self.push(&entry);
        self.wake_armed = true;
    }

    fn push(&mut self, entry: &squeue::Entry) {
        // SAFETY: every pointer in `entry` refers to memory owned by a slot or
        // by the worker, which stays put until the matching CQE is reaped.
        while unsafe { self.ring.submission().push(entry) }.is_err() {
            // Cannot happen with one SQE per slot plus the wake read, but a
            // full queue is handled by flushing rather than assumed away.
            if let Err(e) = self.ring.submit() {
                tracing::error!("io_uring submit failed: {e}");
            }
        }
    }

    fn start(&mut self, msg: Msg) {
        let index = self.free.pop().expect("caller checked for a free slot");
        let mut chain = msg.chain.into_iter();
        let current = chain.next();
        let slot = Slot {
            file: msg.file,
            chain,
            current,
            progress: 0,
            done: Vec::new(),
            iovecs: Vec::new(),
            reply: msg.reply,
        };
        self.slots[index] = Some(slot);
        self.advance(index);
    }

    /// Submits the next SQE of slot `index`, or answers when the chain is done.
    fn advance(&mut self, index: usize) {
        let slot = self.slots[index].as_mut().expect("advance on a live slot");
        let Some(req) = slot.current.as_mut() else {
            let slot = self.slots[index].take().expect("live slot");
            self.free.push(index);
            // The caller may have stopped waiting; nothing to do then.
            let _ = slot.reply.send(slot.done);
            return;
        };
        let fd = types::Fd(slot.file.as_raw_fd());
        let entry = match req.op {
            IoOp::Fsync => opcode::Fsync::new(fd).build(),
            IoOp::Read | IoOp::Write => {
                slot.iovecs.clear();
                let mut skip = slot.progress;
                for buf in req.bufs.iter_mut() {
                    let len = buf.len();
                    if skip >= len {
                        skip -= len;
                        continue;
                    }
                    // SAFETY: `skip < len <= BUF_SIZE` keeps the pointer inside the slot.
                    let base = unsafe { buf.as_mut_ptr().add(skip) };
                    let part = len - skip;
                    skip = 0;
                    // Adjacent pool slots (see `BufPool::get_many`) become one segment.
                    if let Some(last) = slot.iovecs.last_mut() {
                        if (last.iov_base as usize) + last.iov_len == base as usize {
                            last.iov_len += part;
                            continue;
                        }
                    }
                    slot.iovecs.push(libc::iovec { iov_base: base.cast(), iov_len: part });
                }
                let offset = req.offset + slot.progress as u64;
                let count = slot.iovecs.len() as u32;
                let iov = slot.iovecs.as_ptr();
                match (req.op, count) {
                    (_, 0) => {
                        // Nothing to move (empty request or already complete).
                        self.finish_request(index, Ok(0));
                        return;
                    }
                    (IoOp::Read, 1) => {
                        let v = slot.iovecs[0];
                        opcode::Read::new(fd, v.iov_base.cast(), v.iov_len as u32).offset(offset).build()
                    }
                    (IoOp::Write, 1) => {
                        let v = slot.iovecs[0];
                        opcode::Write::new(fd, v.iov_base.cast(), v.iov_len as u32).offset(offset).build()
                    }
                    (IoOp::Read, _) => opcode::Readv::new(fd, iov, count).offset(offset).build(),
                    _ => opcode::Writev::new(fd, iov, count).offset(offset).build(),
                }
            }
        };
        self.push(&entry.user_data(index as u64));
    }

    fn reap(&mut self) {
        let mut results = Vec::new();
        for cqe in self.ring.completion() {
            results.push((cqe.user_data(), cqe.result()));
        }
        for (token, result) in results {
            if token == WAKE_TOKEN {
                self.wake_armed = false;
                continue;
            }
            self.complete(token as usize, result);
        }
    }

    fn complete(&mut self, index: usize, result: i32) {
        let slot = self.slots[index].as_mut().expect("completion for a live slot");
        let req = slot.current.as_ref().expect("completion for a live request");
        if result < 0 {
            self.finish_request(index, Err(io::Error::from_raw_os_error(-result)));
            return;
        }
        let moved = result as usize;
        if req.op == IoOp::Fsync {
            self.finish_request(index, Ok(0));
            return;
        }
        slot.progress += moved;
        let total = req.bytes();
        if slot.progress >= total || (moved == 0 && req.op == IoOp::Read) {
            let progress = slot.progress;
            self.finish_request(index, Ok(progress));
        } else if moved == 0 {
            self.finish_request(index, Err(io::Error::from(io::ErrorKind::WriteZero)));
        } else {
            self.advance(index);
        }
    }

    /// Records the outcome of the current request and moves to the next one;
    /// after a failure the rest of the chain is cancelled unrun.
    fn finish_request(&mut self, index: usize, result: io::Result<usize>) {
        let slot = self.slots[index].as_mut().expect("live slot");
        let req = slot.current.take().expect("live request");
        let failed = result.is_err();
        slot.done.push(IoDone { bufs: req.bufs, result });
        slot.progress = 0;
        if failed {
            for rest in slot.chain.by_ref() {
                slot.done.push(IoDone { bufs: rest.bufs, result: Err(cancelled()) });
            }
        } else {
            slot.current = slot.chain.next();
        }
        self.advance(index);
    }
}
