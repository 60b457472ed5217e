//! Replication at the master's command: this server (the destination)
//! pulls every block of a chunk from the source's data port.
//!
//! The copy is built under version 0, invisible to clients, and takes the
//! real version only when complete; a failure deletes the partial copy.
//! Blocks are received straight into engine buffers and written with the
//! CRCs they came with, after checking them.

use std::time::{Duration, Instant};

use elkfs_engine::{Buf, ChunkId, Version, BLOCK_SIZE};
use elkfs_proto::data::{DataMsg, ReadDataHead, READ_DATA, READ_DATA_HEAD_LEN};
use elkfs_proto::frame::DATA_MAX_PAYLOAD;
use elkfs_proto::{Addr, Status};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::net;
use crate::server::Ctx;
use crate::status;

const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Blocks written per engine request.
const BATCH: usize = 16;

pub(crate) async fn run(ctx: &Ctx, chunk: u64, version: u32, source: Addr) -> Status {
    let started = Instant::now();
    let id = ChunkId(chunk);
    if let Err(e) = ctx.engine.create(id, Version(0)).await {
        tracing::warn!("replication of chunk {id} from {source}: {e}");
        return status::of_engine(&e);
    }
    let result = pull(ctx, chunk, version, source).await;
    let result = match result {
        Ok(blocks) => {
            ctx.engine.set_version(id, Version(0), Version(version)).await.map(|_| blocks).map_err(Error::from)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(blocks) => {
            tracing::info!(
                "replicated chunk {id} v{version} from {source}: {blocks} blocks in {:.0} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
            ctx.metrics.record(crate::metrics::Op::Replicate, started, (blocks * BLOCK_SIZE) as u64, true);
            Status::OK
        }
        Err(e) => {
            tracing::warn!("replication of chunk {id} v{version} from {source} failed: {e}");
            if let Err(e) = ctx.engine.delete(id, Version(0)).await {
                tracing::warn!("removing the partial copy of chunk {id}: {e}");
            }
            status::of_error(&e)
        }
    }
}

async fn pull(ctx: &Ctx, chunk: u64, version: u32, source: Addr) -> Result<usize> {
    let peer = source.to_string();
    let mut stream = net::deadline("connecting to the replication source", STEP_TIMEOUT, async {
        TcpStream::connect(source.socket()).await.map_err(|e| Error::io(format!("connecting to {peer}"), e))
    })
    .await?;
    stream.set_nodelay(true).map_err(|e| Error::io("TCP_NODELAY", e))?;
    net::send(&mut stream, &DataMsg::GetChunkBlocks { chunk, version }, &peer).await?;
    let blocks = match next_msg(&mut stream, &peer).await? {
        DataMsg::ChunkBlocks { chunk: c, version: v, blocks, status } if c == chunk && v == version => {
            if !status.is_ok() {
                return Err(Error::Status { peer, what: "block count".into(), status });
            }
            blocks as usize
        }
        other => return Err(Error::peer(&peer, format!("unexpected answer to a block count: {other:?}"))),
    };
    if blocks == 0 {
        return Ok(0);
    }
    // The old form, without the protocol byte: the source sends no NOPs.
    let read = DataMsg::Read { protocol: None, chunk, version, offset: 0, size: (blocks * BLOCK_SIZE) as u32 };
    net::send(&mut stream, &read, &peer).await?;
    let id = ChunkId(chunk);
    let mut first = 0;
    let mut bufs: Vec<Buf> = Vec::with_capacity(BATCH);
    let mut crcs: Vec<u32> = Vec::with_capacity(BATCH);
    for block in 0..blocks {
        if !ctx.faults.replicate_ok() {
            return Err(Error::peer(&peer, "fault injection: replication link cut"));
        }
        let (buf, crc) =
            net::deadline("receiving a block", STEP_TIMEOUT, recv_block(ctx, &mut stream, chunk, block, &peer)).await?;
        bufs.push(buf);
        crcs.push(crc);
        if bufs.len() == BATCH || block + 1 == blocks {
            ctx.engine.write_blocks_checked(id, Version(0), first, std::mem::take(&mut bufs), &crcs).await?;
            first = block + 1;
            crcs.clear();
        }
    }
    match next_msg(&mut stream, &peer).await? {
        DataMsg::ReadStatus { chunk: c, status } if c == chunk && status.is_ok() => Ok(blocks),
        DataMsg::ReadStatus { status, .. } => Err(Error::Status { peer, what: "read".into(), status }),
        other => Err(Error::peer(&peer, format!("unexpected message after the data: {other:?}"))),
    }
}

async fn next_msg(stream: &mut TcpStream, peer: &str) -> Result<DataMsg> {
    net::deadline("waiting for the replication source", STEP_TIMEOUT, async {
        let (kind, payload) = net::read_packet(stream, DATA_MAX_PAYLOAD, peer).await?;
        Ok(DataMsg::decode(kind, &payload)?)
    })
    .await
}

async fn recv_block(ctx: &Ctx, stream: &mut TcpStream, chunk: u64, block: usize, peer: &str) -> Result<(Buf, u32)> {
    let header = net::read_header(stream, DATA_MAX_PAYLOAD, peer).await?;
    if header.kind != READ_DATA {
        let payload = net::read_payload(stream, header.len as usize, peer).await?;
        return match DataMsg::decode(header.kind, &payload)? {
            DataMsg::ReadStatus { status, .. } => Err(Error::Status { peer: peer.into(), what: "read".into(), status }),
            other => Err(Error::peer(peer, format!("unexpected message instead of block {block}: {other:?}"))),
        };
    }
    let mut head = [0u8; READ_DATA_HEAD_LEN];
    stream.read_exact(&mut head).await.map_err(|e| net::closed(peer, e))?;
    let head = ReadDataHead::decode(&head, header.len as usize)?;
    if head.chunk != chunk || head.block as usize != block || head.offset != 0 || head.size as usize != BLOCK_SIZE {
        return Err(Error::peer(peer, format!("block {block} expected, got {head:?}")));
    }
    let mut buf = ctx.engine.pool().get().await;
    stream.read_exact(&mut buf.full_mut()[..BLOCK_SIZE]).await.map_err(|e| net::closed(peer, e))?;
    buf.set_len(BLOCK_SIZE);
    Ok((buf, head.crc))
}
