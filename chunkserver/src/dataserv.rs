//! The data port (9422): accepts clients and peer chunkservers and runs one
//! operation at a time per connection, as MooseFS peers expect.
//!
//! Each connection has a reader task that turns bytes into [`Incoming`]
//! items. `WRITE_DATA` payloads are read straight into an engine buffer at
//! the piece's place in its block, so the bytes a client sent reach the
//! disk (and the next server of the chain) from that buffer, uncopied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use elkfs_engine::{Buf, ChunkId, Engine, Version};
use elkfs_proto::data::{DataMsg, WriteDataHead, WRITE_DATA, WRITE_DATA_HEAD_LEN};
use elkfs_proto::frame::{Encode, DATA_MAX_PAYLOAD};
use elkfs_proto::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};
use crate::metrics::Op;
use crate::net;
use crate::server::Ctx;
use crate::status;

/// How often an idle connection gets a NOP from us.
const IDLE_NOP: Duration = Duration::from_millis(1666);

/// One packet from a peer, decoded.
pub(crate) enum Incoming {
    Msg(DataMsg),
    /// A `WRITE_DATA` head and the buffer holding its piece at
    /// `buf.full()[offset..offset + size]`.
    Data(WriteDataHead, Buf),
}

pub(crate) type Inbox = mpsc::Receiver<Result<Incoming>>;

pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        let peer = addr.to_string();
                        if let Err(e) = connection(ctx, stream, &peer).await {
                            tracing::debug!(%peer, "data connection closed: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("accept on the data port failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// Reads packets until the peer goes away or breaks the protocol.
pub(crate) fn spawn_reader(mut r: OwnedReadHalf, engine: Engine, peer: String) -> Inbox {
    // Bounded: a writer may have 64 pieces unacknowledged; more than that
    // waiting here would only hold buffers.
    let (tx, rx) = mpsc::channel(72);
    tokio::spawn(async move {
        loop {
            let item = read_one(&mut r, &engine, &peer).await;
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    rx
}

async fn read_one(r: &mut OwnedReadHalf, engine: &Engine, peer: &str) -> Result<Incoming> {
    let header = net::read_header(r, DATA_MAX_PAYLOAD, peer).await?;
    let len = header.len as usize;
    if header.kind != WRITE_DATA || len < WRITE_DATA_HEAD_LEN {
        let payload = net::read_payload(r, len, peer).await?;
        return Ok(Incoming::Msg(DataMsg::decode(header.kind, &payload)?));
    }
    let mut head = [0u8; WRITE_DATA_HEAD_LEN];
    r.read_exact(&mut head).await.map_err(|e| net::closed(peer, e))?;
    let head = WriteDataHead::decode(&head, len)?;
    let mut buf = engine.pool().get().await;
    let (offset, size) = (head.offset as usize, head.size as usize);
    r.read_exact(&mut buf.full_mut()[offset..offset + size]).await.map_err(|e| net::closed(peer, e))?;
    Ok(Incoming::Data(head, buf))
}

async fn connection(ctx: Arc<Ctx>, stream: TcpStream, peer: &str) -> Result<()> {
    stream.set_nodelay(true).map_err(|e| Error::io("TCP_NODELAY", e))?;
    let (r, mut w) = stream.into_split();
    let mut inbox = spawn_reader(r, ctx.engine.clone(), peer.to_string());
    let mut last_heard = Instant::now();
    loop {
        let item = match tokio::time::timeout(IDLE_NOP, inbox.recv()).await {
            Ok(Some(item)) => item?,
            Ok(None) => return Ok(()),
            Err(_) => {
                if last_heard.elapsed() > ctx.idle_timeout {
                    return Err(Error::peer(peer, "idle for too long"));
                }
                net::send(&mut w, &DataMsg::Nop, peer).await?;
                continue;
            }
        };
        last_heard = Instant::now();
        let msg = match item {
            Incoming::Msg(msg) => msg,
            Incoming::Data(head, _) => {
                return Err(Error::peer(peer, format!("WRITE_DATA for chunk {:016X} outside a write", head.chunk)))
            }
        };
        match msg {
            DataMsg::Nop => net::send(&mut w, &DataMsg::Nop, peer).await?,
            DataMsg::GetVersion { msgid } => {
                let reply =
                    DataMsg::Version { msgid, version: elkfs_proto::VERSION, text: elkfs_proto::VERSION_TEXT.into() };
                net::send(&mut w, &reply, peer).await?;
            }
            DataMsg::Read { protocol, chunk, version, offset, size } => {
                let req = crate::read::ReadReq { protocol, chunk, version, offset, size };
                crate::read::serve(&ctx, &mut w, req, peer).await?;
            }
            DataMsg::Write { protocol, chunk, version, chain } => {
                let req = crate::write::WriteReq { protocol, chunk, version, chain };
                crate::write::serve(&ctx, &mut w, &mut inbox, req, peer).await?;
            }
            DataMsg::GetChunkBlocks { .. } | DataMsg::GetChunkChecksum { .. } | DataMsg::GetChunkChecksumTab { .. } => {
                let reply = answer_query(&ctx, &msg).await;
                w.write_all(&reply.to_packet()).await.map_err(|e| Error::io(format!("sending to {peer}"), e))?;
            }
            other => {
                return Err(Error::peer(peer, format!("unexpected message type {} on the data port", other.kind())))
            }
        }
    }
}

/// `version` 0 asks for whatever version is stored.
pub(crate) fn resolve_version(engine: &Engine, chunk: u64, version: u32) -> Version {
    match version {
        0 => engine.version(ChunkId(chunk)).unwrap_or(Version(0)),
        v => Version(v),
    }
}

/// Block count and checksum queries, asked on the data port by replicating
/// peers and tools, and on the master link by the master.
pub(crate) async fn answer_query(ctx: &Ctx, msg: &DataMsg) -> DataMsg {
    let engine = &ctx.engine;
    let started = Instant::now();
    let reply = match *msg {
        DataMsg::GetChunkBlocks { chunk, version } => {
            let r = engine.blocks(ChunkId(chunk), resolve_version(engine, chunk, version)).await;
            let status = r.as_ref().map(|_| Status::OK).unwrap_or_else(status::of_engine);
            let blocks = r.unwrap_or(0) as u16;
            ctx.note_missing(chunk, status);
            DataMsg::ChunkBlocks { chunk, version, blocks, status }
        }
        DataMsg::GetChunkChecksum { chunk, version } => {
            let r = engine.checksum_table(ChunkId(chunk), resolve_version(engine, chunk, version)).await;
            let result = r.map(|t| elkfs_proto::data::fold_checksum(&t.0[..])).map_err(|e| status::of_engine(&e));
            DataMsg::ChunkChecksum { chunk, version, result }
        }
        DataMsg::GetChunkChecksumTab { chunk, version } => {
            let r = engine.checksum_table(ChunkId(chunk), resolve_version(engine, chunk, version)).await;
            let result = r.map(|t| t.0.to_vec()).map_err(|e| status::of_engine(&e));
            DataMsg::ChunkChecksumTab { chunk, version, result }
        }
        _ => unreachable!("answer_query is only called with queries"),
    };
    ctx.metrics.record(Op::Checksum, started, 0, true);
    reply
}
