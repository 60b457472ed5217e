//! Requests that involve chunks: where to read, preparing a chunk for
//! writing, ending a write, truncating.
//!
//! Order of a write: the namespace records the new chunk (or the version
//! bump and lock) first, then the chunkservers are told. A crash between
//! the two leaves chunkservers with a copy the master does not know (it
//! deletes it) or a chunk whose copies are one version behind while it is
//! locked (the cluster brings them forward when they register), never a
//! file pointing at data that silently changed.

use std::sync::Arc;

use elkfs_proto::client::ids::{READ_CHUNK, TRUNCATE, WRITE_CHUNK, WRITE_CHUNK_END};
use elkfs_proto::client::{ChunkLoc, ClToMa, CsLoc, MaToCl};
use elkfs_proto::Status;

use super::ops::ctx;
use super::{fail, Conn, SessionView};
use crate::shared::{unix_now, Shared};

pub(super) fn handle(conn: &Conn, session: SessionView, kind: u32, request: ClToMa) {
    let shared = conn.shared.clone();
    match request {
        ClToMa::ReadChunk { msgid, inode, index, .. } => {
            let (r, after) = shared.read(|m| m.read_chunk(inode, index));
            let msg = match r {
                Ok((length, None)) => MaToCl::Chunk {
                    kind: READ_CHUNK + 1,
                    msgid,
                    loc: ChunkLoc { length, chunk: 0, version: 0, servers: vec![] },
                },
                Ok((length, Some((chunk, version)))) => {
                    let servers = locations(&shared, chunk, version);
                    MaToCl::Chunk { kind: READ_CHUNK + 1, msgid, loc: ChunkLoc { length, chunk, version, servers } }
                }
                Err(s) => fail(kind, msgid, s),
            };
            conn.send(after, msg);
        }
        ClToMa::WriteChunk { msgid, inode, index, .. } => {
            let (mut plan, mut after) = shared.change(|m| m.write_chunk(session.id, inode, index, unix_now()));
            if plan == Err(Status::LOCKED) && take_inherited_lock(&shared, inode, index) {
                (plan, after) = shared.change(|m| {
                    let now = unix_now();
                    if let Ok((_, Some((chunk, _)))) = m.read_chunk(inode, index) {
                        m.unlock_chunk(chunk, now)?;
                    }
                    m.write_chunk(session.id, inode, index, now)
                });
            }
            let plan = match plan {
                Ok(plan) => plan,
                Err(s) => return conn.send(after, fail(kind, msgid, s)),
            };
            let reply = conn.sender();
            tokio::spawn(async move {
                let (chunk, version) = (plan.chunk, plan.version);
                let goal = shared.lock().chunk(chunk).map_or(1, |c| c.goal);
                let done = match plan.prev_version {
                    None => shared.cluster.create_chunk(chunk, version, goal).await,
                    Some(prev) => shared.cluster.set_version(chunk, prev, version).await,
                };
                match done {
                    Ok(()) => {
                        let servers = locations(&shared, chunk, version);
                        let loc = ChunkLoc { length: plan.file_length, chunk, version, servers };
                        reply.send(after, MaToCl::Chunk { kind: WRITE_CHUNK + 1, msgid, loc });
                    }
                    Err(status) => {
                        tracing::info!(chunk, version, %status, "write chunk: chunkservers refused");
                        let (_, after) = shared.change(|m| match plan.prev_version {
                            None => m.write_chunk_failed(inode, index, chunk, unix_now()),
                            // No copy took the new version: keep the old one,
                            // which every copy still has.
                            Some(prev) => m.write_chunk_reverted(chunk, prev, unix_now()),
                        });
                        reply.send(after, fail(WRITE_CHUNK, msgid, status));
                    }
                }
            });
        }
        ClToMa::WriteChunkEnd { msgid, chunk, inode, length, .. } => {
            let (r, after) = shared.change(|m| m.write_chunk_end(inode, chunk, length, unix_now()));
            conn.send(after, fail(WRITE_CHUNK_END, msgid, r.err().unwrap_or(Status::OK)));
        }
        ClToMa::Truncate { msgid, inode, flags, cred, length } => {
            let c = ctx(&cred);
            if flags & TRUNCATE_RESERVE != 0 {
                return reserve_append(conn, msgid, inode, length);
            }
            shared.lists().appends.remove(&inode);
            if flags & TRUNCATE_UPDATE != 0 {
                // The write path telling the length it reached: grow only.
                let (r, after) = shared.change(|m| {
                    let attr = m.getattr(inode)?;
                    if length > attr.size {
                        m.truncate(&c, inode, length, true).map(|t| (attr.size, t.attr))
                    } else {
                        Ok((attr.size, attr))
                    }
                });
                let msg = match r {
                    Ok((prev_length, attr)) => MaToCl::Truncate { msgid, prev_length, attr: attr.to_wire() },
                    Err(s) => fail(kind, msgid, s),
                };
                return conn.send(after, msg);
            }
            let (r, after) = shared.change(|m| m.truncate(&c, inode, length, flags & TRUNCATE_OPENED != 0));
            let t = match r {
                Ok(t) => t,
                Err(s) => return conn.send(after, fail(kind, msgid, s)),
            };
            let Some((chunk, old, new, len)) = t.boundary else {
                return conn
                    .send(after, MaToCl::Truncate { msgid, prev_length: t.prev_length, attr: t.attr.to_wire() });
            };
            let reply = conn.sender();
            tokio::spawn(async move {
                let msg = match shared.cluster.truncate(chunk, old, new, len).await {
                    Ok(()) => MaToCl::Truncate { msgid, prev_length: t.prev_length, attr: t.attr.to_wire() },
                    Err(status) => fail(TRUNCATE, msgid, status),
                };
                reply.send(after, msg);
            });
        }
        other => tracing::warn!("not a chunk request: {other:?}"),
    }
}

/// True when chunk `index` of `inode` is locked by a writer of the previous
/// master process and already has a copy at its current version (copies a
/// version behind are brought forward when their chunkserver registers):
/// then no write of that writer can still land unnoticed — the version it
/// writes under is gone or current — and the lock is released for the new
/// request rather than waited out (MooseFS makes writers wait ~130 s).
fn take_inherited_lock(shared: &Shared, inode: u32, index: u32) -> bool {
    let Ok((_, Some((chunk, version)))) = shared.lock().read_chunk(inode, index) else {
        return false;
    };
    if !shared.inherited_locks.lock().unwrap_or_else(|e| e.into_inner()).contains(&chunk) {
        return false;
    }
    if shared.cluster.locations(chunk, version).is_empty() {
        return false;
    }
    shared.inherited_locks.lock().unwrap_or_else(|e| e.into_inner()).remove(&chunk)
}

/// `TRUNCATE` flags (`TRUNCATE_FLAG_*`).
const TRUNCATE_OPENED: u8 = 0x01;
const TRUNCATE_UPDATE: u8 = 0x02;
const TRUNCATE_RESERVE: u8 = 0x08;

/// An `O_APPEND` writer asks for `bytes` at the end of the file: it gets
/// the offset to write at, and the next writer the offset after it, so
/// concurrent appenders never overlap. The length itself grows only when
/// the data is written (`WRITE_CHUNK_END`).
fn reserve_append(conn: &Conn, msgid: u32, inode: u32, bytes: u64) {
    let shared = &conn.shared;
    let (attr, after) = shared.read(|m| m.getattr(inode));
    let msg = match attr {
        Ok(attr) => {
            let mut lists = shared.lists();
            let end = lists.appends.entry(inode).or_insert(0);
            let prev_length = (*end).max(attr.size);
            *end = prev_length.saturating_add(bytes);
            MaToCl::Truncate { msgid, prev_length, attr: attr.to_wire() }
        }
        Err(s) => fail(TRUNCATE, msgid, s),
    };
    conn.send(after, msg);
}

pub(super) fn locations(shared: &Arc<Shared>, chunk: u64, version: u32) -> Vec<CsLoc> {
    shared
        .cluster
        .locations(chunk, version)
        .into_iter()
        .map(|l| CsLoc { addr: l.addr, version: l.cs_version, labelmask: l.labelmask })
        .collect()
}
