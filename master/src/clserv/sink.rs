//! A client connection's outgoing side.
//!
//! An answer whose changes are already durable (or when the changelog is
//! not fsynced at all) is written by whoever produced it, straight into the
//! socket: no hand-off to another task per request. An answer that must
//! wait for an fsync, or that does not fit in the socket buffer, goes to the
//! connection's writer task, which sends it once its version is durable.
//! Answers carry the request's msgid, so the two paths may overtake each
//! other; what must never happen is two writers interleaving bytes of
//! different packets, which `Gate` rules out.

use std::io::ErrorKind;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use elkfs_proto::client::MaToCl;
use elkfs_proto::frame::Encode;
use elkfs_proto::{Header, HEADER_LEN};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use crate::changelog::Changelog;

/// A packet and the metadata version it must wait for.
pub(crate) struct Out {
    pub after: u64,
    pub bytes: Vec<u8>,
}

/// Who may write into the socket now.
#[derive(Default)]
struct Gate {
    /// The writer task is sending, or holds an unsent tail (`head`).
    busy: bool,
    /// The unsent rest of a packet an answerer started writing; it goes
    /// out before anything else.
    head: Vec<u8>,
}

pub(crate) struct Sink {
    wr: OwnedWriteHalf,
    gate: Mutex<Gate>,
}

impl Sink {
    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The answering handle: cheap to clone into spawned tasks.
#[derive(Clone)]
pub(crate) struct Outlet {
    sink: Arc<Sink>,
    tx: mpsc::UnboundedSender<Out>,
    log: Arc<Changelog>,
    /// `CHANGELOG_FSYNC = 1`: answers wait until their version is durable.
    fsync: bool,
}

impl Outlet {
    /// Nothing an answer depending on `after` could reveal can still be
    /// lost.
    fn ready(&self, after: u64) -> bool {
        !self.fsync || after <= self.log.durable_version()
    }

    /// Sends `bytes` now if nothing it depends on can still be lost and
    /// the socket takes it; otherwise queues it for the writer task.
    pub fn send(&self, after: u64, bytes: Vec<u8>) {
        if self.ready(after) {
            let mut gate = self.sink.gate();
            if !gate.busy {
                match self.sink.wr.try_write(&bytes) {
                    Ok(n) if n == bytes.len() => return,
                    Ok(n) => {
                        // The packet is started: its rest must go first.
                        gate.head = bytes[n..].to_vec();
                        gate.busy = true;
                        drop(gate);
                        let _ = self.tx.send(Out { after: 0, bytes: Vec::new() });
                        return;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    // A broken socket: the reader sees it and ends.
                    Err(_) => return,
                }
            }
        }
        let _ = self.tx.send(Out { after, bytes });
    }
}

/// The reader task's outlet: answers that could go out now are held
/// until the requests already received are handled, then sent with one
/// write. A client with many requests in flight gets its answers in a
/// few packets instead of one per request.
pub(crate) struct Batched {
    pub outlet: Outlet,
    held: std::cell::RefCell<Vec<u8>>,
}

impl Batched {
    /// Beyond this much held, send without waiting for the batch to end.
    const MAX_HELD: usize = 64 << 10;

    pub fn new(outlet: Outlet) -> Batched {
        Batched { outlet, held: Default::default() }
    }

    pub fn send(&self, after: u64, bytes: Vec<u8>) {
        if !self.outlet.ready(after) {
            return self.outlet.send(after, bytes);
        }
        let mut held = self.held.borrow_mut();
        if held.is_empty() {
            *held = bytes;
        } else {
            held.extend_from_slice(&bytes);
        }
        if held.len() >= Self::MAX_HELD {
            let all = std::mem::take(&mut *held);
            drop(held);
            self.outlet.send(0, all);
        }
    }

    /// Sends what is held; call before waiting for the next request.
    pub fn flush(&self) {
        let all = std::mem::take(&mut *self.held.borrow_mut());
        if !all.is_empty() {
            self.outlet.send(0, all);
        }
    }
}

/// Whether `buf` (what the reader has received but not yet parsed) holds a
/// whole request; if not, the reader is about to wait.
pub(crate) fn holds_whole_frame(buf: &[u8]) -> bool {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else { return false };
    buf.len() - HEADER_LEN >= Header::parse(head).len as usize
}

/// Splits off the writing side of a connection: the outlet for answerers
/// and the writer task's future.
pub(crate) fn open(
    wr: OwnedWriteHalf,
    log: Arc<Changelog>,
    fsync: bool,
) -> (Outlet, impl std::future::Future<Output = ()>) {
    let sink = Arc::new(Sink { wr, gate: Mutex::new(Gate::default()) });
    let (tx, rx) = mpsc::unbounded_channel();
    let outlet = Outlet { sink: sink.clone(), tx, log: log.clone(), fsync };
    (outlet, write_loop(sink, rx, log, fsync))
}

/// Sends queued answers once durable, and a NOP after a second of silence
/// from this task (mfsmount expects to hear from its master).
async fn write_loop(sink: Arc<Sink>, mut rx: mpsc::UnboundedReceiver<Out>, log: Arc<Changelog>, fsync: bool) {
    loop {
        let out = match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            Ok(Some(out)) => out,
            Ok(None) => return,
            Err(_) => Out { after: 0, bytes: MaToCl::Nop { msgid: 0 }.to_packet() },
        };
        if fsync {
            log.durable(out.after).await;
        }
        let mut bytes = out.bytes;
        // Whatever else is ready (and durable) goes in the same write.
        while let Ok(more) = rx.try_recv() {
            if fsync {
                log.durable(more.after).await;
            }
            bytes.extend_from_slice(&more.bytes);
        }
        let bytes = {
            let mut gate = sink.gate();
            gate.busy = true;
            if gate.head.is_empty() {
                bytes
            } else {
                // The rest of a packet an answerer started goes first.
                let mut all = std::mem::take(&mut gate.head);
                all.extend_from_slice(&bytes);
                all
            }
        };
        if write_all(&sink.wr, &bytes).await.is_err() {
            return;
        }
        sink.gate().busy = false;
    }
}

async fn write_all(wr: &OwnedWriteHalf, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        wr.writable().await?;
        match wr.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
