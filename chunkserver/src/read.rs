//! Serving `CLTOCS_READ`: the range is cut at block boundaries and sent as
//! one `READ_DATA` per piece, each from the engine buffer the block was
//! read into. Later groups of blocks are read from disk while the current
//! one is being sent.

use std::collections::VecDeque;
use std::time::Instant;

use elkfs_engine::{Buf, ChunkId, Engine, Version, BLOCK_SIZE};
use elkfs_proto::data::{DataMsg, ReadDataHead};
use elkfs_proto::Status;
use tokio::net::tcp::OwnedWriteHalf;

use crate::dataserv::resolve_version;
use crate::error::Result;
use crate::metrics::Op;
use crate::net;
use crate::server::Ctx;
use crate::status;

const CHUNK_SIZE: u64 = 64 << 20;
/// Whole blocks fetched per disk request.
const GROUP_BLOCKS: usize = 16;
/// Groups being read ahead of the one being sent, per connection.
const READ_AHEAD: usize = 4;

pub(crate) struct ReadReq {
    /// Present in the current form; keep-alive NOPs would be owed while
    /// blocked on disk, but reads here finish well inside the 1 s that
    /// clients allow, so none are sent.
    #[allow(dead_code)]
    pub protocol: Option<u8>,
    pub chunk: u64,
    pub version: u32,
    pub offset: u32,
    pub size: u32,
}

/// A run of pieces fetched together: whole blocks, or one partial piece.
#[derive(Clone, Copy)]
struct Group {
    block: usize,
    count: usize,
    /// Offset and size inside the block, for a partial piece.
    piece: Option<(usize, usize)>,
}

fn groups(offset: u64, size: u64) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let (mut pos, end) = (offset, offset + size);
    while pos < end {
        let block = (pos / BLOCK_SIZE as u64) as usize;
        let in_block = (pos % BLOCK_SIZE as u64) as usize;
        let len = ((BLOCK_SIZE - in_block) as u64).min(end - pos) as usize;
        if len == BLOCK_SIZE {
            match out.last_mut() {
                Some(g) if g.piece.is_none() && g.block + g.count == block && g.count < GROUP_BLOCKS => g.count += 1,
                _ => out.push(Group { block, count: 1, piece: None }),
            }
        } else {
            out.push(Group { block, count: 1, piece: Some((in_block, len)) });
        }
        pos += len as u64;
    }
    out
}

/// Fetched pieces: `(block, buffer, offset, size, crc)`.
type Fetched = Vec<(usize, Buf, usize, usize, u32)>;

async fn fetch(engine: &Engine, id: ChunkId, version: Version, g: Group) -> elkfs_engine::Result<Fetched> {
    match g.piece {
        Some((offset, size)) => {
            let (buf, offset, size, crc) = engine.read(id, version, g.block, offset, size).await?.into_parts();
            Ok(vec![(g.block, buf, offset, size, crc)])
        }
        None => {
            let blocks = engine.read_blocks(id, version, g.block, g.count).await?;
            Ok(blocks.into_iter().enumerate().map(|(i, (buf, crc))| (g.block + i, buf, 0, BLOCK_SIZE, crc)).collect())
        }
    }
}

pub(crate) async fn serve(ctx: &Ctx, w: &mut OwnedWriteHalf, req: ReadReq, peer: &str) -> Result<()> {
    let started = Instant::now();
    let chunk = req.chunk;
    let (offset, size) = (req.offset as u64, req.size as u64);
    let early = if size == 0 {
        Some(Status::OK)
    } else if size > CHUNK_SIZE {
        Some(Status::WRONGSIZE)
    } else if offset >= CHUNK_SIZE || offset + size > CHUNK_SIZE {
        Some(Status::WRONGOFFSET)
    } else {
        None
    };
    if let Some(status) = early {
        return net::send(w, &DataMsg::ReadStatus { chunk, status }, peer).await;
    }
    let engine = &ctx.engine;
    let id = ChunkId(chunk);
    let version = resolve_version(engine, chunk, req.version);
    let plan = groups(offset, size);
    let mut sent = 0u64;
    let mut outcome = Status::OK;
    // Groups are read by their own tasks, READ_AHEAD at a time, and sent in
    // order as they complete: one connection keeps several disk requests in
    // flight, as a sequential reader needs to fill the disk.
    let spawn = |g: Group| {
        let engine = engine.clone();
        tokio::spawn(async move { fetch(&engine, id, version, g).await })
    };
    let mut inflight = VecDeque::with_capacity(READ_AHEAD);
    let mut next = 0;
    while next < plan.len() && inflight.len() < READ_AHEAD {
        inflight.push_back(spawn(plan[next]));
        next += 1;
    }
    while let Some(task) = inflight.pop_front() {
        let pieces = match task.await {
            Ok(Ok(pieces)) => pieces,
            Ok(Err(e)) => {
                outcome = status::of_engine(&e);
                ctx.note_missing(chunk, outcome);
                tracing::warn!(%peer, "read of chunk {id} failed: {e}");
                break;
            }
            Err(e) => {
                outcome = Status::IO;
                tracing::warn!(%peer, "read task of chunk {id} failed: {e}");
                break;
            }
        };
        if next < plan.len() {
            inflight.push_back(spawn(plan[next]));
            next += 1;
        }
        // One vectored send per group: heads and data, each block's data
        // straight from its engine buffer.
        let heads: Vec<[u8; 28]> = pieces
            .iter()
            .map(|(block, _, off, len, crc)| {
                ReadDataHead { chunk, block: *block as u16, offset: *off as u16, size: *len as u32, crc: *crc }
                    .packet_prefix()
            })
            .collect();
        let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * pieces.len());
        for ((_, buf, off, len, _), head) in pieces.iter().zip(&heads) {
            parts.push(head);
            parts.push(&buf.full()[*off..*off + *len]);
        }
        net::send_all_vectored(w, &parts, peer).await?;
        sent += pieces.iter().map(|p| p.3 as u64).sum::<u64>();
    }
    ctx.metrics.record(Op::Read, started, sent, outcome.is_ok());
    net::send(w, &DataMsg::ReadStatus { chunk, status: outcome }, peer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_at_blocks_and_group_whole_ones() {
        let g = groups(100, 3 * BLOCK_SIZE as u64);
        assert_eq!(g.len(), 3);
        assert_eq!((g[0].block, g[0].piece), (0, Some((100, BLOCK_SIZE - 100))));
        assert_eq!((g[1].block, g[1].count, g[1].piece), (1, 2, None));
        assert_eq!((g[2].block, g[2].piece), (3, Some((0, 100))));
        let whole = groups(0, 40 * BLOCK_SIZE as u64);
        assert_eq!(whole.iter().map(|g| g.count).collect::<Vec<_>>(), vec![16, 16, 8]);
        assert!(groups(0, 0).is_empty());
    }
}
