//! One chunkserver connection: registration (protocol versions 5 and 6,
//! with the `AUTH_CODE` challenge), then reports and command replies in,
//! commands and keep-alives out.
//!
//! The reader is this task; a writer task drains the server's command
//! channel and sends a NOP after `timeout/3` of silence. Anything malformed
//! or out of place ends this connection only; its server then vanishes
//! from the view.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use elkfs_proto::frame::{Encode, Header, HEADER_LEN};
use elkfs_proto::master_cs::{Ack, CsToMa, MaToCs, Space};
use elkfs_proto::Addr;
use md5::{Digest, Md5};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::state::{OpKind, Server};
use super::{Cluster, CsId};
use crate::error::{Error, Result};

/// Largest packet taken from a chunkserver: a chunk-list batch of the
/// largest allowed size (100 000 × 12 bytes) fits with room to spare.
const MAX_PAYLOAD: usize = 4 << 20;
/// Chunkservers older than this get no csid/metaid in the answer.
const VERSION_WITH_METAID: u32 = (2 << 16) | (33 * 2);

async fn read_packet(r: &mut OwnedReadHalf, peer: &str, limit: Duration) -> Result<CsToMa> {
    let read = async {
        let mut head = [0u8; HEADER_LEN];
        r.read_exact(&mut head).await.map_err(|e| Error::io(format!("reading from {peer}"), e))?;
        let h = Header::parse_limited(&head, MAX_PAYLOAD)?;
        let mut payload = vec![0u8; h.len as usize];
        r.read_exact(&mut payload).await.map_err(|e| Error::io(format!("reading from {peer}"), e))?;
        Ok(CsToMa::decode(h.kind, &payload)?)
    };
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| Error::peer(peer, format!("silent for {} s", limit.as_secs_f64())))?
}

async fn write_loop(mut w: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<MaToCs>, nop_every: Duration) {
    loop {
        let msg = match tokio::time::timeout(nop_every, rx.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(_) => MaToCs::Nop,
        };
        let mut bytes = msg.to_packet();
        while let Ok(more) = rx.try_recv() {
            bytes.extend_from_slice(&more.to_packet());
        }
        if w.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// What BEGIN told us, common to protocol versions 5 and 6.
struct Begin {
    version: u32,
    ip: u32,
    port: u16,
    timeout: u16,
    csid: CsId,
    space: Space,
    v5: bool,
}

fn digest(challenge: &[u8; 32], code: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(&challenge[..16]);
    md5.update(code.as_bytes());
    md5.update(&challenge[16..]);
    md5.finalize().into()
}

/// Reads until an acceptable BEGIN, answering the authentication dance.
async fn await_begin(c: &Cluster, r: &mut OwnedReadHalf, w: &mut OwnedWriteHalf, peer: &str) -> Result<Begin> {
    let mut challenge: Option<[u8; 32]> = None;
    loop {
        match read_packet(r, peer, c.config.link_timeout).await? {
            CsToMa::Nop => {}
            CsToMa::RegisterBegin { auth, version, ip, port, timeout, csid, space } => {
                if let Some(code) = &c.config.auth_code {
                    match (auth, challenge) {
                        (None, _) => {
                            let fresh: [u8; 32] = rand::rng().random();
                            challenge = Some(fresh);
                            let ack = MaToCs::Ack(Ack::Auth { challenge: fresh });
                            w.write_all(&ack.to_packet()).await.map_err(|e| Error::io("sending challenge", e))?;
                            continue;
                        }
                        (Some(got), Some(ch)) if got == digest(&ch, code) => {}
                        _ => return Err(Error::peer(peer, "wrong AUTH_CODE digest")),
                    }
                }
                return Ok(Begin { version, ip, port, timeout, csid, space, v5: false });
            }
            CsToMa::RegisterBeginV5 { version, ip, port, timeout } => {
                if c.config.auth_code.is_some() {
                    return Err(Error::peer(peer, "AUTH_CODE is required and protocol 5 cannot send it"));
                }
                return Ok(Begin { version, ip, port, timeout, csid: 0, space: Space::default(), v5: true });
            }
            other => return Err(Error::peer(peer, format!("message {} before registration", other.kind()))),
        }
    }
}

/// Admits the server into the view; returns its id, connection serial and
/// link timeout.
fn admit(
    c: &Cluster,
    b: &Begin,
    peer_ip: u32,
    tx: mpsc::UnboundedSender<MaToCs>,
    peer: &str,
) -> Result<(CsId, u64, Duration)> {
    let timeout = match b.timeout {
        0 => c.config.link_timeout,
        t if t < 10 => return Err(Error::peer(peer, format!("link timeout {t} s is under 10 s"))),
        t => Duration::from_secs(t as u64),
    };
    let ip = if b.ip == 0 { peer_ip } else { b.ip };
    if Ipv4Addr::from(ip).is_loopback() && !c.config.allow_loopback {
        return Err(Error::peer(peer, "chunkservers may not use a loopback address"));
    }
    let addr = Addr { ip, port: b.port };
    let mut st = c.lock();
    let csid = st.assign_id(addr, b.csid).ok_or_else(|| Error::peer(peer, format!("{addr} is connected already")))?;
    st.next_conn += 1;
    let conn = st.next_conn;
    st.servers.insert(
        csid,
        Server {
            csid,
            conn,
            addr,
            version: b.version,
            labelmask: 0,
            space: b.space,
            load: 0,
            overloaded: false,
            errors: 0,
            connected_since: SystemTime::now(),
            registered: false,
            tx,
            creations: 0,
            rep_in: 0,
            rep_out: 0,
            deletions: 0,
        },
    );
    tracing::info!("chunkserver {addr} (version {}) registering as {csid}", elkfs_proto::version_string(b.version));
    Ok((csid, conn, timeout))
}

pub(super) async fn run(c: &Arc<Cluster>, stream: TcpStream, peer: &str) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let peer_ip = match stream.peer_addr() {
        Ok(std::net::SocketAddr::V4(a)) => u32::from(*a.ip()),
        _ => 0,
    };
    let (mut r, mut w) = stream.into_split();
    let begin = await_begin(c, &mut r, &mut w, peer).await?;
    let metaid = c.catalog.metaid();
    let (tx, rx) = mpsc::unbounded_channel();
    let (csid, conn, timeout) = admit(c, &begin, peer_ip, tx.clone(), peer)?;
    let ack = if begin.v5 {
        Ack::WelcomeV5 { master_version: elkfs_proto::VERSION }
    } else {
        Ack::Welcome {
            master_version: elkfs_proto::VERSION,
            timeout: timeout.as_secs() as u16,
            csid,
            metaid: (begin.version >= VERSION_WITH_METAID).then_some(metaid),
        }
    };
    // Queued before the writer starts, so it goes out first.
    let _ = tx.send(MaToCs::Ack(ack));
    drop(tx);
    let writer = tokio::spawn(write_loop(w, rx, timeout / 3));
    let result = serve_registered(c, &mut r, peer, csid, timeout).await;
    writer.abort();
    c.lock().disconnect(csid, conn);
    result
}

async fn serve_registered(c: &Cluster, r: &mut OwnedReadHalf, peer: &str, csid: CsId, timeout: Duration) -> Result<()> {
    loop {
        let msg = read_packet(r, peer, timeout).await?;
        if matches!(msg, CsToMa::RegisterDisconnect) {
            return Ok(());
        }
        handle(c, csid, msg, peer)?;
    }
}

fn is_create(k: &OpKind) -> bool {
    *k == OpKind::Create
}
fn is_delete(k: &OpKind) -> bool {
    *k == OpKind::Delete
}
fn is_set_version(k: &OpKind) -> bool {
    *k == OpKind::SetVersion
}
fn is_truncate(k: &OpKind) -> bool {
    *k == OpKind::Truncate
}
fn is_duplicate(k: &OpKind) -> bool {
    *k == OpKind::Duplicate
}
fn is_duptrunc(k: &OpKind) -> bool {
    *k == OpKind::DupTrunc
}
fn is_replicate(k: &OpKind) -> bool {
    matches!(k, OpKind::Replicate { .. })
}

fn handle(c: &Cluster, csid: CsId, msg: CsToMa, peer: &str) -> Result<()> {
    let mut st = c.lock();
    let send = |st: &super::state::State, m: MaToCs| {
        if let Some(s) = st.servers.get(&csid) {
            let _ = s.tx.send(m);
        }
    };
    match msg {
        CsToMa::Nop | CsToMa::Query(_) | CsToMa::ChunkOpReply { .. } => {}
        CsToMa::RegisterChunks(list) => {
            list.iter().for_each(|(id, v)| st.add_copy(csid, *id, *v));
            // Protocol 6 servers send the next batch only after this.
            send(&st, MaToCs::Ack(Ack::Next));
        }
        CsToMa::RegisterChunksV5(list) => list.iter().for_each(|(id, v)| st.add_copy(csid, *id, *v)),
        CsToMa::RegisterEnd | CsToMa::RegisterEndV5 { .. } => {
            let s = st.servers.get_mut(&csid).ok_or_else(|| Error::peer(peer, "server dropped"))?;
            if let CsToMa::RegisterEndV5 { space } = msg {
                s.space = space;
            }
            s.registered = true;
            tracing::info!("chunkserver {} registered", s.addr);
        }
        CsToMa::RegisterBegin { .. } | CsToMa::RegisterBeginV5 { .. } | CsToMa::RegisterDisconnect => {
            return Err(Error::peer(peer, "second registration on one connection"));
        }
        CsToMa::Space(space) => with_server(&mut st, csid, |s| s.space = space),
        CsToMa::CurrentLoad { load, hl_status } => with_server(&mut st, csid, |s| {
            s.load = load;
            s.overloaded = hl_status == Some(2);
        }),
        CsToMa::ErrorOccurred => with_server(&mut st, csid, |s| s.errors += 1),
        CsToMa::Labels(mask) => with_server(&mut st, csid, |s| s.labelmask = mask),
        CsToMa::ChunkNew(list) => list.iter().for_each(|(id, v)| st.add_copy(csid, *id, *v)),
        CsToMa::ChunkLost(ids) => {
            tracing::info!(cs = csid, chunks = ids.len(), first = ids.first().copied(), "chunkserver lost chunks");
            ids.iter().for_each(|id| st.remove_copy(csid, *id));
        }
        CsToMa::ChunkDamaged(ids) => {
            for id in ids {
                if let Some(copy) = st.chunks.get_mut(&id).and_then(|e| e.copy_mut(csid)) {
                    copy.damaged = true;
                }
            }
        }
        CsToMa::CreateReply { chunk, status } => st.finish(csid, chunk, is_create, status),
        CsToMa::DeleteReply { chunk, status } => st.finish(csid, chunk, is_delete, status),
        CsToMa::SetVersionReply { chunk, status } => st.finish(csid, chunk, is_set_version, status),
        CsToMa::TruncateReply { chunk, status } => st.finish(csid, chunk, is_truncate, status),
        CsToMa::DuplicateReply { chunk, status } => st.finish(csid, chunk, is_duplicate, status),
        CsToMa::DupTruncReply { chunk, status } => st.finish(csid, chunk, is_duptrunc, status),
        CsToMa::ReplicateReply { chunk, status, .. } => {
            if !status.is_ok() {
                tracing::warn!("replication of chunk {chunk:016X} to {peer} failed: {status:?}");
            }
            st.finish(csid, chunk, is_replicate, status);
        }
    }
    Ok(())
}

fn with_server(st: &mut super::state::State, csid: CsId, f: impl FnOnce(&mut Server)) {
    if let Some(s) = st.servers.get_mut(&csid) {
        f(s);
    }
}
