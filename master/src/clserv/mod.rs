//! Port 9421: mfsmount sessions and the MooseFS tools.
//!
//! One reader task per connection decodes requests and applies them in
//! arrival order (namespace changes happen under the lock, in order). Each
//! answer goes to the connection's writer task tagged with the metadata
//! version it depends on; the writer sends it once that version is
//! durable. So one client's many concurrent requests share fsyncs, and no
//! client ever sees a change that a crash could still take back. Chunk
//! operations that wait for chunkservers run as their own tasks and answer
//! out of order, as the protocol allows (replies carry the msgid).

mod chunks;
mod ops;
mod policy;
mod register;
mod subtree;

use std::sync::Arc;
use std::time::Duration;

use elkfs_proto::client::ids::ADMIN_RANGE;
use elkfs_proto::client::{ClToMa, MaToCl};
use elkfs_proto::frame::Encode;
use elkfs_proto::Status;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::net::{accept_loop, read_frame, FrameLimit};
use crate::shared::Shared;

/// A client silent this long is gone (mfsmount sends a NOP every 2 s).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    accept_loop(listener, "client", move |stream| serve(stream, shared.clone())).await
}

/// An answer (a whole packet) and the metadata version it must wait for.
pub(crate) struct Out {
    after: u64,
    bytes: Vec<u8>,
}

/// What one connection knows about itself.
pub(crate) struct Conn {
    pub shared: Arc<Shared>,
    pub peer: String,
    pub session: Option<SessionView>,
    /// The last `GETRANDOM` challenge, for a password proof.
    pub challenge: Option<[u8; 32]>,
    tx: mpsc::UnboundedSender<Out>,
}

/// The session a connection belongs to, the folder it is rooted at
/// (inode 1 for the whole file system; see `subtree`) and what its export
/// allows (see `policy`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionView {
    pub id: u32,
    pub root: crate::meta::Inode,
    pub grant: crate::exports::Grant,
}

impl Conn {
    /// Queues `msg` to be sent once `after` is durable.
    pub fn send(&self, after: u64, msg: MaToCl) {
        let root = self.session.map_or(crate::meta::ROOT, |s| s.root);
        let _ = self.tx.send(Out { after, bytes: subtree::outward(msg, root).to_packet() });
    }

    pub fn sender(&self) -> Replier {
        Replier { tx: self.tx.clone(), root: self.session.map_or(crate::meta::ROOT, |s| s.root) }
    }
}

/// A handle for answering from a spawned task.
#[derive(Clone)]
pub(crate) struct Replier {
    tx: mpsc::UnboundedSender<Out>,
    root: crate::meta::Inode,
}

impl Replier {
    pub fn send(&self, after: u64, msg: MaToCl) {
        let _ = self.tx.send(Out { after, bytes: subtree::outward(msg, self.root).to_packet() });
    }
}

/// The error form of the reply to request `kind`.
pub(crate) fn fail(kind: u32, msgid: u32, status: Status) -> MaToCl {
    MaToCl::Status { kind: kind + 1, msgid, status }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) -> Result<()> {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(wr, rx, shared.clone()));
    let mut conn = Conn { shared, peer, session: None, challenge: None, tx };
    let result = async {
        loop {
            let (kind, payload) = tokio::time::timeout(CLIENT_TIMEOUT, read_frame(&mut rd, FrameLimit::Client))
                .await
                .map_err(|_| Error::peer(&conn.peer, "silent for too long"))??;
            if ADMIN_RANGE.contains(&kind) {
                // Monitoring (mfscli, elkfs admin): allowed without a session.
                let view = crate::monitor::admin_view(&conn.shared);
                let bytes = crate::admin::answer(kind, &payload, &view)
                    .ok_or_else(|| Error::peer(&conn.peer, format!("unsupported monitoring message {kind}")))?;
                let _ = conn.tx.send(Out { after: 0, bytes });
                continue;
            }
            let request = ClToMa::decode(kind, &payload)?;
            tracing::trace!(peer = %conn.peer, ?request, "client request");
            handle(&mut conn, kind, request)?;
        }
    }
    .await;
    if let Some(session) = conn.session {
        let mut lists = conn.shared.lists();
        if let Some(entry) = lists.sessions.get_mut(&session.id) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }
    drop(conn);
    // Let queued answers go out before the socket closes.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    result
}

async fn write_loop(
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    shared: Arc<Shared>,
) {
    loop {
        let out = match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            Ok(Some(out)) => out,
            Ok(None) => return,
            Err(_) => Out { after: 0, bytes: MaToCl::Nop { msgid: 0 }.to_packet() },
        };
        // With CHANGELOG_FSYNC = 0 the operator chose MooseFS's promise
        // (changes reach the disk with the kernel's writeback), so answers
        // do not wait for the changelog writer at all.
        let wait = shared.config.changelog_fsync;
        if wait {
            shared.log.durable(out.after).await;
        }
        let mut bytes = out.bytes;
        // Whatever else is ready (and durable) goes in the same write.
        while let Ok(more) = rx.try_recv() {
            if wait {
                shared.log.durable(more.after).await;
            }
            bytes.extend_from_slice(&more.bytes);
        }
        if wr.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// Dispatches one request. An `Err` closes the connection.
fn handle(conn: &mut Conn, kind: u32, request: ClToMa) -> Result<()> {
    match request {
        ClToMa::GetRandom
        | ClToMa::NewSession { .. }
        | ClToMa::Reconnect { .. }
        | ClToMa::Tools { .. }
        | ClToMa::NewMetaSession { .. }
        | ClToMa::CloseSession { .. } => register::handle(conn, request),
        ClToMa::Nop { .. } | ClToMa::AmtimeInodes(_) => Ok(()),
        ClToMa::SustainedInodes(inodes) => {
            // The client's list of open files: what it no longer lists is
            // released (and a deleted file kept open may go).
            if let Some(session) = conn.session {
                let inodes = inodes
                    .into_iter()
                    .map(|i| if i == crate::meta::ROOT { session.root } else { i })
                    .collect::<Vec<_>>();
                let _ = conn.shared.change(|m| m.sync_open(session.id, &inodes, crate::shared::unix_now()));
            }
            Ok(())
        }
        ClToMa::TimeSync { msgid } => {
            let usec = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0);
            conn.send(0, MaToCl::TimeSync { msgid, usec });
            Ok(())
        }
        ClToMa::Other { kind, msgid } => {
            match msgid {
                Some(msgid) if conn.session.is_some() => conn.send(0, fail(kind, msgid, Status::ENOTSUP)),
                _ => return Err(Error::peer(&conn.peer, format!("unsupported message {kind}"))),
            }
            Ok(())
        }
        request => {
            let Some(session) = conn.session else {
                return Err(Error::peer(&conn.peer, format!("message {kind} before registration")));
            };
            let mut request = subtree::inward(request, session.root);
            if let Some((msgid, status)) = policy::refusal(&session.grant, &request) {
                conn.send(0, fail(kind, msgid, status));
                return Ok(());
            }
            policy::map_ids(&session.grant, &mut request);
            match request {
                ClToMa::ReadChunk { .. } | ClToMa::WriteChunk { .. } | ClToMa::WriteChunkEnd { .. } => {
                    chunks::handle(conn, session, kind, request)
                }
                ClToMa::Truncate { .. } => chunks::handle(conn, session, kind, request),
                request => ops::handle(conn, session, kind, request),
            }
            Ok(())
        }
    }
}
