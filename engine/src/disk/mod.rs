//! The disk seam: what the engine needs from one data folder.
//!
//! The store never touches a file descriptor itself. It asks a [`Disk`] for
//! namespace operations (open, rename, remove, list, statvfs), which are
//! plain blocking syscalls taking microseconds, and submits data I/O as
//! [`IoReq`] chains to a [`DiskFile`], which completes them asynchronously.
//! Two implementations exist: [`UringDisk`] (io_uring, O_DIRECT where the
//! file system allows it) and [`SimDisk`] (in memory, seeded faults, crashes
//! that keep only what was fsynced), so every engine test can run against
//! both and faults can be injected on purpose.
//!
//! A chain runs its requests in order; the first failure stops it, and the
//! requests after it report `ECANCELED` without touching the disk. This is
//! how "data, then CRC table, then fsync" is kept in order.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::buffer::Buf;

mod ring;
pub mod sim;
mod uring;

pub use sim::{SimConfig, SimDisk, SimFaultCounts, SimFaults};
pub use uring::UringDisk;

/// What one request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Fill each buffer, in order, with `len()` bytes from `offset` on.
    Read,
    /// Write each buffer's `len()` bytes, in order, from `offset` on.
    Write,
    /// Make everything written to the file so far durable.
    Fsync,
}

/// One request of a chain. The buffers travel with it and come back in
/// [`IoDone`], so they stay alive until the kernel is done with them.
#[derive(Debug)]
pub struct IoReq {
    pub op: IoOp,
    pub offset: u64,
    pub bufs: Vec<Buf>,
}

impl IoReq {
    pub fn read(offset: u64, bufs: Vec<Buf>) -> IoReq {
        IoReq { op: IoOp::Read, offset, bufs }
    }
    pub fn write(offset: u64, bufs: Vec<Buf>) -> IoReq {
        IoReq { op: IoOp::Write, offset, bufs }
    }
    pub fn fsync() -> IoReq {
        IoReq { op: IoOp::Fsync, offset: 0, bufs: Vec::new() }
    }
    /// Bytes this request moves.
    pub fn bytes(&self) -> usize {
        self.bufs.iter().map(|b| b.len()).sum()
    }
}

/// The outcome of one request: its buffers back, and the bytes moved. A
/// read past the end of the file stops short: `Ok(n)` with `n < bytes()`.
#[derive(Debug)]
pub struct IoDone {
    pub bufs: Vec<Buf>,
    pub result: io::Result<usize>,
}

/// What `statvfs` says, in bytes, before any reserve is taken off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpace {
    /// Space usable by unprivileged writers in all: blocks less the root-only part.
    pub total: u64,
    /// Space an unprivileged writer can still take.
    pub avail: u64,
}

/// One data folder's file namespace.
pub trait Disk: Send + Sync + 'static {
    /// The folder, as configured; for messages.
    fn root(&self) -> &Path;
    /// Whether data I/O bypasses the page cache.
    fn direct_io(&self) -> bool;
    /// Opens `rel` for data I/O; with `create`, the file must not exist yet.
    fn open(&self, rel: &Path, create: bool) -> io::Result<Arc<dyn DiskFile>>;
    /// Opens an existing file through the page cache even on a direct disk:
    /// legacy chunk files keep their blocks off the 4 KiB grid.
    fn open_buffered(&self, rel: &Path) -> io::Result<Arc<dyn DiskFile>> {
        self.open(rel, false)
    }
    /// Reads up to `len` bytes from the start of `rel` through the page
    /// cache, and the file's size. For the start-up scan.
    fn peek(&self, rel: &Path, len: usize) -> io::Result<(Vec<u8>, u64)>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, rel: &Path) -> io::Result<()>;
    /// Creates a folder; an existing one is fine.
    fn create_dir(&self, rel: &Path) -> io::Result<()>;
    /// Names in a folder (files and folders alike, without `.` and `..`).
    fn list_dir(&self, rel: &Path) -> io::Result<Vec<String>>;
    /// Makes creates, renames and removes inside `rel` durable.
    fn sync_dir(&self, rel: &Path) -> io::Result<()>;
    fn space(&self) -> io::Result<FsSpace>;
}

/// One open file of a [`Disk`].
pub trait DiskFile: Send + Sync {
    /// Runs `chain` in order; see the module notes for failure rules.
    fn submit(&self, chain: Vec<IoReq>) -> Completion;
    fn size(&self) -> io::Result<u64>;
    /// `ftruncate`: shrinks, or grows with a hole.
    fn set_size(&self, len: u64) -> io::Result<()>;
    /// Grows the file to at least `len` with space reserved (reads as
    /// zeros). Disks without such a call grow it with a hole.
    fn allocate(&self, len: u64) -> io::Result<()> {
        if self.size()? < len {
            self.set_size(len)?;
        }
        Ok(())
    }
}

/// The pending result of a chain: one [`IoDone`] per request.
pub struct Completion(CompletionInner);

enum CompletionInner {
    Ready(Option<Vec<IoDone>>),
    Pending(oneshot::Receiver<Vec<IoDone>>),
}

impl Completion {
    /// A completion that is already done (synchronous disks).
    pub fn ready(done: Vec<IoDone>) -> Completion {
        Completion(CompletionInner::Ready(Some(done)))
    }

    /// A completion and the sender that finishes it.
    pub fn channel() -> (oneshot::Sender<Vec<IoDone>>, Completion) {
        let (tx, rx) = oneshot::channel();
        (tx, Completion(CompletionInner::Pending(rx)))
    }

    /// Blocks the calling thread until done. Not for async contexts.
    pub fn wait(self) -> io::Result<Vec<IoDone>> {
        match self.0 {
            CompletionInner::Ready(done) => Ok(done.unwrap_or_default()),
            CompletionInner::Pending(rx) => rx.blocking_recv().map_err(|_| gone()),
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "disk thread stopped")
}

impl Future for Completion {
    /// `Err` only when the disk thread went away before answering.
    type Output = io::Result<Vec<IoDone>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            CompletionInner::Ready(done) => Poll::Ready(Ok(done.take().unwrap_or_default())),
            CompletionInner::Pending(rx) => Pin::new(rx).poll(cx).map(|r| r.map_err(|_| gone())),
        }
    }
}

/// The error a request reports when an earlier one in its chain failed.
pub fn cancelled() -> io::Error {
    io::Error::from_raw_os_error(libc::ECANCELED)
}
