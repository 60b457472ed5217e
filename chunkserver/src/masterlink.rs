//! The link to the master (9420): registration with the whole chunk list,
//! then commands one way and reports the other, until the link drops and is
//! made again.
//!
//! Commands run as their own tasks and answer through one channel, so a
//! slow replication never holds up a delete. Reports (damaged and lost
//! chunks, space, load) go out from a one-second tick, as MooseFS's do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use elkfs_engine::{ChunkId, Version, VERSION_MARKED_FOR_REMOVAL};
use elkfs_proto::frame::{Encode, MATOCS_MAX_PAYLOAD};
use elkfs_proto::master_cs::{Ack, ChunkOp, CsToMa, MaToCs};
use elkfs_proto::Status;
use md5::{Digest, Md5};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};
use crate::metrics::Op;
use crate::net;
use crate::server::Ctx;
use crate::status;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest list of chunk ids in one report packet.
const REPORT_BATCH: usize = 25_000;

pub(crate) async fn run(ctx: Arc<Ctx>, my_ip: u32, my_port: u16, mut stop: watch::Receiver<bool>) {
    let delay = ctx.config.master.reconnection_delay.max(Duration::from_millis(200));
    loop {
        match session(&ctx, my_ip, my_port, &mut stop).await {
            Ok(()) => return,
            Err(e) => tracing::warn!("master link: {e}; reconnecting in {:.1} s", delay.as_secs_f64()),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// `chunkserverid.mfs` in `DATA_PATH`: the id the master gave this server
/// and the id of that master's file system (`csid:16 metaid:64`), kept so a
/// restart comes back as the same server, and never joins another cluster.
fn id_file(ctx: &Ctx) -> PathBuf {
    ctx.config.process.data_path.join("chunkserverid.mfs")
}

fn load_ids(ctx: &Ctx) -> (u16, u64) {
    match std::fs::read(id_file(ctx)) {
        Ok(b) if b.len() >= 10 => {
            (u16::from_be_bytes([b[0], b[1]]), u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")))
        }
        Ok(b) if b.len() >= 2 => (u16::from_be_bytes([b[0], b[1]]), 0),
        _ => (0, 0),
    }
}

fn store_ids(ctx: &Ctx, csid: u16, metaid: u64) {
    let mut bytes = csid.to_be_bytes().to_vec();
    bytes.extend_from_slice(&metaid.to_be_bytes());
    let path = id_file(ctx);
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, &bytes).and_then(|_| std::fs::rename(&tmp, &path)) {
        tracing::warn!("cannot store {}: {e}", path.display());
    }
}

async fn connect(ctx: &Ctx) -> Result<TcpStream> {
    let m = &ctx.config.master;
    let target = format!("{}:{}", m.host, m.port);
    let addr: SocketAddr = tokio::net::lookup_host(&target)
        .await
        .map_err(|e| Error::io(format!("resolving {target}"), e))?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| Error::peer(&target, "no IPv4 address"))?;
    let socket = TcpSocket::new_v4().map_err(|e| Error::io("socket", e))?;
    if !matches!(m.bind_host.as_str(), "*" | "") {
        let ip: std::net::Ipv4Addr = m.bind_host.parse().map_err(|_| Error::Config {
            path: "BIND_HOST".into(),
            why: format!("'{}' is not an IPv4 address", m.bind_host),
        })?;
        socket.bind(SocketAddr::from((ip, 0))).map_err(|e| Error::io(format!("binding {ip}"), e))?;
    }
    let stream = net::deadline("connecting to the master", CONNECT_TIMEOUT, async {
        socket.connect(addr).await.map_err(|e| Error::io(format!("connecting to {addr}"), e))
    })
    .await?;
    stream.set_nodelay(true).map_err(|e| Error::io("TCP_NODELAY", e))?;
    Ok(stream)
}

fn spawn_reader(mut r: OwnedReadHalf, peer: String) -> mpsc::Receiver<Result<MaToCs>> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            let item = match net::read_packet(&mut r, MATOCS_MAX_PAYLOAD, &peer).await {
                Ok((kind, payload)) => MaToCs::decode(kind, &payload).map_err(Error::from),
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    rx
}

async fn next_msg(rx: &mut mpsc::Receiver<Result<MaToCs>>, peer: &str, limit: Duration) -> Result<MaToCs> {
    net::deadline("waiting for the master", limit, async {
        rx.recv().await.unwrap_or_else(|| Err(Error::peer(peer, "connection closed")))
    })
    .await
}

/// The next registration answer; NOPs are skipped.
async fn next_ack(rx: &mut mpsc::Receiver<Result<MaToCs>>, peer: &str) -> Result<Ack> {
    loop {
        match next_msg(rx, peer, Duration::from_secs(30)).await? {
            MaToCs::Nop => continue,
            MaToCs::Ack(ack) => return Ok(ack),
            other => return Err(Error::peer(peer, format!("type {} while registering", other.kind()))),
        }
    }
}

async fn session(ctx: &Arc<Ctx>, my_ip: u32, my_port: u16, stop: &mut watch::Receiver<bool>) -> Result<()> {
    let stream = connect(ctx).await?;
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "master".into());
    let (r, mut w) = stream.into_split();
    let mut rx = spawn_reader(r, peer.clone());
    let (csid, metaid) = load_ids(ctx);
    let timeout_secs = ctx.config.master.timeout.map(|t| t.as_secs() as u16).unwrap_or(0);
    let begin = |auth| CsToMa::RegisterBegin {
        auth,
        version: elkfs_proto::VERSION,
        ip: my_ip,
        port: my_port,
        timeout: timeout_secs,
        csid,
        space: ctx.space(),
    };
    net::send(&mut w, &begin(None), &peer).await?;
    let mut ack = next_ack(&mut rx, &peer).await?;
    if let Ack::Auth { challenge } = ack {
        let code = ctx
            .config
            .master
            .auth_code
            .as_deref()
            .ok_or_else(|| Error::peer(&peer, "the master requires AUTH_CODE, and none is configured"))?;
        let mut md5 = Md5::new();
        md5.update(&challenge[..16]);
        md5.update(code.as_bytes());
        md5.update(&challenge[16..]);
        net::send(&mut w, &begin(Some(md5.finalize().into())), &peer).await?;
        ack = next_ack(&mut rx, &peer).await?;
    }
    let link_timeout = match ack {
        Ack::Welcome { master_version, timeout, csid: new_csid, metaid: new_metaid } => {
            if let Some(m) = new_metaid {
                if metaid != 0 && m != 0 && m != metaid {
                    return Err(Error::peer(
                        &peer,
                        format!("master serves file system {m:016X}, this server belongs to {metaid:016X}"),
                    ));
                }
            }
            let keep_metaid = new_metaid.filter(|m| *m != 0).unwrap_or(metaid);
            if new_csid != csid || keep_metaid != metaid {
                store_ids(ctx, new_csid, keep_metaid);
            }
            tracing::info!(
                "registered with master {peer} (version {}), server id {new_csid}",
                elkfs_proto::version_string(master_version)
            );
            Duration::from_secs(timeout.max(3) as u64)
        }
        other => return Err(Error::peer(&peer, format!("unexpected registration answer {other:?}"))),
    };
    net::send(&mut w, &CsToMa::Labels(ctx.config.master.labels_mask), &peer).await?;
    let chunks: Vec<(u64, u32)> = ctx
        .engine
        .list()
        .into_iter()
        .map(|c| (c.id.0, if c.marked_for_removal { c.version.0 | VERSION_MARKED_FOR_REMOVAL } else { c.version.0 }))
        .collect();
    let batch = (ctx.config.master.chunks_per_register_packet as usize).max(1);
    for part in chunks.chunks(batch) {
        net::send(&mut w, &CsToMa::RegisterChunks(part.to_vec()), &peer).await?;
        match next_ack(&mut rx, &peer).await? {
            Ack::Next => {}
            other => return Err(Error::peer(&peer, format!("unexpected answer {other:?} to a chunk list"))),
        }
    }
    net::send(&mut w, &CsToMa::RegisterEnd, &peer).await?;
    tracing::info!("sent {} chunks to the master", chunks.len());
    serve(ctx, &mut rx, w, &peer, link_timeout, stop).await
}

async fn serve(
    ctx: &Arc<Ctx>,
    rx: &mut mpsc::Receiver<Result<MaToCs>>,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    peer: &str,
    link_timeout: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Result<()> {
    let (reply_tx, mut replies) = mpsc::channel::<CsToMa>(1024);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_sent = Instant::now();
    let mut last_heard = Instant::now();
    let mut last_load = Instant::now();
    let mut last_space = ctx.space();
    loop {
        let mut out: Vec<CsToMa> = Vec::new();
        tokio::select! {
            msg = rx.recv() => {
                let msg = msg.unwrap_or_else(|| Err(Error::peer(peer, "connection closed")))?;
                last_heard = Instant::now();
                dispatch(ctx, msg, &reply_tx);
            }
            Some(reply) = replies.recv() => out.push(reply),
            _ = tick.tick() => {
                if last_heard.elapsed() > link_timeout {
                    return Err(Error::Timeout { what: format!("master {peer}"), secs: link_timeout.as_secs_f64() });
                }
                let damaged: Vec<u64> = ctx.engine.take_damaged().into_iter().map(|c| c.0).collect();
                for part in damaged.chunks(REPORT_BATCH) {
                    tracing::warn!("reporting {} damaged chunks to the master", part.len());
                    out.push(CsToMa::ChunkDamaged(part.to_vec()));
                }
                for part in ctx.take_lost().chunks(REPORT_BATCH) {
                    tracing::info!("reporting {} lost chunks to the master (first {:016X})", part.len(), part[0]);
                    out.push(CsToMa::ChunkLost(part.to_vec()));
                }
                let space = ctx.space();
                if space != last_space {
                    last_space = space;
                    out.push(CsToMa::Space(space));
                }
                if last_load.elapsed() >= Duration::from_secs(5) {
                    last_load = Instant::now();
                    out.push(CsToMa::CurrentLoad { load: ctx.busy.load(Ordering::Relaxed), hl_status: Some(1) });
                }
                if out.is_empty() && last_sent.elapsed() >= Duration::from_secs(1) {
                    out.push(CsToMa::Nop);
                }
            }
            _ = stop.changed() => {
                let _ = net::send(&mut w, &CsToMa::RegisterDisconnect, peer).await;
                tracing::info!("left master {peer}");
                return Ok(());
            }
        }
        if !out.is_empty() {
            let mut bytes = Vec::new();
            for m in &out {
                bytes.extend_from_slice(&m.to_packet());
            }
            tokio::io::AsyncWriteExt::write_all(&mut w, &bytes)
                .await
                .map_err(|e| Error::io(format!("sending to {peer}"), e))?;
            last_sent = Instant::now();
        }
    }
}

/// Runs one master command in its own task; the reply goes to `replies`.
fn dispatch(ctx: &Arc<Ctx>, msg: MaToCs, replies: &mpsc::Sender<CsToMa>) {
    if matches!(msg, MaToCs::Nop | MaToCs::Ack(_)) {
        return;
    }
    // Every chunk the master creates, deletes or moves, for when a copy
    // the master lists turns out missing (RUST_LOG=…masterlink=debug).
    tracing::debug!("master command: {msg:?}");
    let ctx = ctx.clone();
    let replies = replies.clone();
    ctx.busy.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let reply = command(&ctx, msg).await;
        ctx.busy.fetch_sub(1, Ordering::Relaxed);
        if let Some(reply) = reply {
            let _ = replies.send(reply).await;
        }
    });
}

fn st(ctx: &Ctx, chunk: u64, what: &str, r: elkfs_engine::Result<()>) -> Status {
    match r {
        Ok(()) => Status::OK,
        Err(e) => {
            let s = status::of_engine(&e);
            ctx.note_missing(chunk, s);
            tracing::warn!("{what} of chunk {chunk:016X} failed: {e}");
            s
        }
    }
}

fn timed(ctx: &Ctx, op: Op, started: Instant, s: Status) -> Status {
    ctx.metrics.record(op, started, 0, s.is_ok());
    s
}

async fn command(ctx: &Arc<Ctx>, msg: MaToCs) -> Option<CsToMa> {
    let e = &ctx.engine;
    let t = Instant::now();
    Some(match msg {
        MaToCs::Create { chunk, version } => {
            let s = st(ctx, chunk, "create", e.create(ChunkId(chunk), Version(version)).await);
            CsToMa::CreateReply { chunk, status: timed(ctx, Op::Create, t, s) }
        }
        MaToCs::Delete { chunk, version } => {
            let v = if version == 0 { e.version(ChunkId(chunk)).unwrap_or(Version(0)) } else { Version(version) };
            let s = st(ctx, chunk, "delete", e.delete(ChunkId(chunk), v).await);
            CsToMa::DeleteReply { chunk, status: timed(ctx, Op::Delete, t, s) }
        }
        MaToCs::SetVersion { chunk, new_version, old_version } => {
            let r = e.set_version(ChunkId(chunk), Version(old_version), Version(new_version)).await;
            let s = st(ctx, chunk, "set version", r);
            CsToMa::SetVersionReply { chunk, status: timed(ctx, Op::SetVersion, t, s) }
        }
        MaToCs::Duplicate { new_chunk, new_version, old_chunk, old_version } => {
            let r =
                e.duplicate(ChunkId(old_chunk), Version(old_version), ChunkId(new_chunk), Version(new_version)).await;
            let s = st(ctx, old_chunk, "duplicate", r);
            CsToMa::DuplicateReply { chunk: new_chunk, status: timed(ctx, Op::Duplicate, t, s) }
        }
        MaToCs::Truncate { chunk, length, new_version, old_version } => {
            let r = e.truncate(ChunkId(chunk), Version(old_version), Version(new_version), length as u64).await;
            let s = st(ctx, chunk, "truncate", r);
            CsToMa::TruncateReply { chunk, status: timed(ctx, Op::Truncate, t, s) }
        }
        MaToCs::DupTrunc { new_chunk, new_version, old_chunk, old_version, length } => {
            let r = e
                .dup_trunc(
                    ChunkId(old_chunk),
                    Version(old_version),
                    ChunkId(new_chunk),
                    Version(new_version),
                    length as u64,
                )
                .await;
            let s = st(ctx, old_chunk, "duplicate+truncate", r);
            CsToMa::DupTruncReply { chunk: new_chunk, status: timed(ctx, Op::DupTrunc, t, s) }
        }
        MaToCs::Replicate { chunk, version, source } => {
            let s = crate::replicate::run(ctx, chunk, version, source).await;
            CsToMa::ReplicateReply { chunk, version, status: timed(ctx, Op::Replicate, t, s) }
        }
        MaToCs::ReplicateXor { chunk, version, .. } => {
            tracing::warn!("XOR replication of chunk {chunk:016X} asked for; not supported");
            CsToMa::ReplicateReply { chunk, version, status: Status::ENOTSUP }
        }
        MaToCs::ChunkOp(op) => CsToMa::ChunkOpReply { op, status: chunk_op(ctx, op).await },
        MaToCs::Query(q) => CsToMa::Query(crate::dataserv::answer_query(ctx, &q).await),
        MaToCs::Nop | MaToCs::Ack(_) => return None,
    })
}

/// The generic operation: which one is meant follows from which fields are
/// set (MooseFS's `hdd_chunkop` table).
async fn chunk_op(ctx: &Ctx, op: ChunkOp) -> Status {
    let e = &ctx.engine;
    let (id, v, nv) = (ChunkId(op.chunk), Version(op.version), Version(op.new_version));
    let copy = ChunkId(op.copy_chunk);
    let r = match (op.new_version, op.length, op.copy_chunk) {
        (0, 0, _) => e.delete(id, v).await,
        (0, 1, _) => e.create(id, v).await,
        (0, 2, _) => e.test(id, v).await,
        (0, _, _) => return Status::EINVAL,
        (_, u32::MAX, 0) => e.set_version(id, v, nv).await,
        (_, u32::MAX, _) => e.duplicate(id, v, copy, Version(op.copy_version)).await,
        (_, len, 0) => e.truncate(id, v, nv, len as u64).await,
        (_, len, _) => e.dup_trunc(id, v, copy, Version(op.copy_version), len as u64).await,
    };
    st(ctx, op.chunk, "chunk operation", r)
}
