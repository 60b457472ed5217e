//! Port 9421: mfsmount sessions and the MooseFS tools.
//!
//! One reader task per connection decodes requests and applies them in
//! arrival order (namespace changes happen under the lock, in order). Each
//! answer is tagged with the metadata version it depends on and goes out
//! once that version is durable: at once when it already is, else through
//! the connection's writer task (see `sink`). So one client's many
//! concurrent requests share fsyncs, and no client ever sees a change that
//! a crash could still take back. Chunk operations that wait for
//! chunkservers run as their own tasks and answer out of order, as the
//! protocol allows (replies carry the msgid).

mod chunks;
mod lookup;
mod ops;
mod policy;
mod register;
mod sink;
mod subtree;

use std::sync::Arc;
use std::time::Duration;

use elkfs_proto::client::ids::ADMIN_RANGE;
use elkfs_proto::client::{ClToMa, MaToCl};
use elkfs_proto::frame::Encode;
use elkfs_proto::Status;
use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result};
use crate::net::{accept_loop, read_frame, FrameLimit};
use crate::shared::Shared;

/// A client silent this long is gone (mfsmount sends a NOP every 2 s).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    accept_loop(listener, "client", move |stream| serve(stream, shared.clone())).await
}

/// What one connection knows about itself.
pub(crate) struct Conn {
    pub shared: Arc<Shared>,
    pub peer: String,
    pub session: Option<SessionView>,
    /// The last `GETRANDOM` challenge, for a password proof.
    pub challenge: Option<[u8; 32]>,
    out: sink::Batched,
}

/// The session a connection belongs to, the folder it is rooted at
/// (inode 1 for the whole file system; see `subtree`) and what its export
/// allows (see `policy`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionView {
    pub id: u32,
    pub root: crate::meta::Inode,
    pub grant: crate::exports::Grant,
    /// The client's version (`major<<16 | mid<<8 | minor*2`): replies
    /// grew fields over 3.0, and older clients must not get them.
    pub client_version: u32,
}

impl Conn {
    /// Queues `msg` to be sent once `after` is durable.
    pub fn send(&self, after: u64, msg: MaToCl) {
        let root = self.session.map_or(crate::meta::ROOT, |s| s.root);
        self.out.send(after, subtree::outward(msg, root).to_packet());
    }

    pub fn sender(&self) -> Replier {
        Replier { out: self.out.outlet.clone(), root: self.session.map_or(crate::meta::ROOT, |s| s.root) }
    }
}

/// A handle for answering from a spawned task.
#[derive(Clone)]
pub(crate) struct Replier {
    out: sink::Outlet,
    root: crate::meta::Inode,
}

impl Replier {
    pub fn send(&self, after: u64, msg: MaToCl) {
        self.out.send(after, subtree::outward(msg, self.root).to_packet());
    }
}

/// The error form of the reply to request `kind`.
pub(crate) fn fail(kind: u32, msgid: u32, status: Status) -> MaToCl {
    MaToCl::Status { kind: kind + 1, msgid, status }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) -> Result<()> {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let (rd, wr) = stream.into_split();
    // Buffered: one receive usually brings a whole request, often several.
    let mut rd = tokio::io::BufReader::with_capacity(16 << 10, rd);
    let (out, write_loop) = sink::open(wr, shared.log.clone(), shared.config.changelog_fsync);
    let writer = tokio::spawn(write_loop);
    let mut conn = Conn { shared, peer, session: None, challenge: None, out: sink::Batched::new(out) };
    let result = async {
        loop {
            if !sink::holds_whole_frame(rd.buffer()) {
                // About to wait for the client: answer what it asked so far.
                conn.out.flush();
            }
            let (kind, payload) = tokio::time::timeout(CLIENT_TIMEOUT, read_frame(&mut rd, FrameLimit::Client))
                .await
                .map_err(|_| Error::peer(&conn.peer, "silent for too long"))??;
            if ADMIN_RANGE.contains(&kind) {
                // Monitoring (mfscli, elkfs admin): allowed without a session.
                let view = crate::monitor::admin_view(&conn.shared);
                let bytes = crate::admin::answer(kind, &payload, &view)
                    .ok_or_else(|| Error::peer(&conn.peer, format!("unsupported monitoring message {kind}")))?;
                conn.out.send(0, bytes);
                continue;
            }
            let request = ClToMa::decode(kind, &payload)?;
            tracing::trace!(peer = %conn.peer, ?request, "client request");
            handle(&mut conn, kind, request)?;
        }
    }
    .await;
    conn.out.flush();
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

/// Dispatches one request. An `Err` closes the connection.
fn handle(conn: &mut Conn, kind: u32, request: ClToMa) -> Result<()> {
    match request {
        ClToMa::GetRandom
        | ClToMa::NewSession { .. }
        | ClToMa::Reconnect { .. }
        | ClToMa::Tools { .. }
        | ClToMa::NewMetaSession { .. }
        | ClToMa::CloseSession { .. } => register::handle(conn, request),
        ClToMa::Nop { .. } => Ok(()),
        ClToMa::AmtimeInodes(list) => {
            // Inode numbers are already the namespace's (see `subtree`);
            // without a session there is no one to trust.
            if conn.session.is_some() && !list.is_empty() {
                conn.shared.change(|m| m.amtime(&list, crate::shared::unix_now()));
            }
            Ok(())
        }
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
