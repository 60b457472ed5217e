//! A file's chunks: the write path (lock, new chunk or version bump, end of
//! write), truncate, and the reads that hand chunk ids to clients.
//!
//! Versions: every write start bumps an existing chunk's version (the
//! chunkservers' copies are set to it before the writer is answered), so a
//! copy that missed a write is stale by version. MooseFS bumps lazily, only
//! after cluster changes; bumping every time costs one chunkserver round
//! trip per write start and is always safe.

use super::apply::boundary_chunk;
use super::node::{Attr, Body, Inode, CHUNK_SIZE};
use super::perm::{check, W};
use super::record::Op;
use super::{ChunkInfo, Ctx, Meta, Status, LOCK_SECS, MAX_INDEX};

/// What a writer was given by [`Meta::write_chunk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritePlan {
    pub chunk: u64,
    /// The version the chunkservers must create or set.
    pub version: u32,
    /// `None`: a new chunk (chunkservers create it); else the version the
    /// copies have now.
    pub prev_version: Option<u32>,
    pub file_length: u64,
}

/// What [`Meta::truncate`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated {
    pub attr: Attr,
    pub prev_length: u64,
    /// `(chunk, old_version, new_version, length_in_chunk)`: the chunk now
    /// holding the end of the file, which the caller must have truncated
    /// (and set to the new version) on its chunkservers.
    pub boundary: Option<(u64, u32, u32, u32)>,
}

impl Meta {
    fn file(&self, inode: Inode) -> Result<(u64, &[u64]), Status> {
        match &self.any(inode)?.body {
            Body::File { length, chunks } => Ok((*length, chunks.as_slice())),
            _ => Err(Status::EPERM),
        }
    }

    fn locked(info: &ChunkInfo, now: u32) -> bool {
        info.locked_until != 0 && info.locked_until >= now
    }

    /// The file length and chunk `index` with its version; `None` is a hole.
    pub fn read_chunk(&self, inode: Inode, index: u32) -> Result<(u64, Option<(u64, u32)>), Status> {
        if index > MAX_INDEX {
            return Err(Status::INDEXTOOBIG);
        }
        let (length, chunks) = self.file(inode)?;
        let chunk = match chunks.get(index as usize) {
            Some(&c) if c != 0 => Some((c, self.chunks.get(&c).map_or(0, |i| i.version))),
            _ => None,
        };
        Ok((length, chunk))
    }

    /// The one chunk of a file that has exactly one chunk slot, with its
    /// version (`(0, 0)` for a hole): what a lookup may hand the reader so
    /// its first read needs no `READ_CHUNK`. `None` for anything else.
    pub fn sole_chunk(&self, inode: Inode) -> Option<(u64, u32)> {
        match self.file(inode).ok()? {
            (_, &[c]) => Some((c, self.chunks.get(&c).map_or(0, |i| i.version))),
            _ => None,
        }
    }

    /// Every chunk slot of a file with its version (0, 0 for holes).
    pub fn file_chunks(&self, inode: Inode) -> Result<Vec<(u64, u32)>, Status> {
        let (_, chunks) = self.file(inode)?;
        Ok(chunks.iter().map(|&c| (c, self.chunks.get(&c).map_or(0, |i| i.version))).collect())
    }

    pub fn chunk(&self, id: u64) -> Option<ChunkInfo> {
        self.chunks.get(&id).copied()
    }

    /// Up to `limit` chunks with ids ≥ `first`, in id order: the maintenance
    /// loop walks the table in slices.
    pub fn chunks_from(&self, first: u64, limit: usize) -> Vec<(u64, ChunkInfo)> {
        self.chunks.range(first..).take(limit).map(|(id, i)| (*id, *i)).collect()
    }

    /// Starts a write of chunk `index`: a hole gets a new chunk (version 1),
    /// an existing chunk version + 1; either way it is locked for
    /// [`LOCK_SECS`] and a file shorter than the chunk's start grows to it.
    /// `session` is the writer's session (kept for the caller's bookkeeping).
    pub fn write_chunk(&mut self, session: u32, inode: Inode, index: u32, now: u32) -> Result<WritePlan, Status> {
        let _ = session;
        if index > MAX_INDEX {
            return Err(Status::INDEXTOOBIG);
        }
        let (_, chunks) = self.file(inode)?;
        let slot = chunks.get(index as usize).copied().unwrap_or(0);
        let locked_until = now.saturating_add(LOCK_SECS);
        let (chunk, version, prev_version) = if slot == 0 {
            if self.next_chunk == 0 || self.next_chunk == u64::MAX {
                return Err(Status::OUTOFMEMORY);
            }
            (self.next_chunk, 1, None)
        } else {
            let info = self.chunks.get(&slot).ok_or(Status::NOCHUNK)?;
            if Self::locked(info, now) {
                return Err(Status::LOCKED);
            }
            (slot, info.version.wrapping_add(1), Some(info.version))
        };
        self.commit(now, Op::Write { inode, index, chunk, version, locked_until });
        let (file_length, _) = self.file(inode)?;
        Ok(WritePlan { chunk, version, prev_version, file_length })
    }

    /// Undoes a write start that created a chunk no chunkserver made, so the
    /// file does not point at a chunk without copies. Does nothing when the
    /// slot no longer holds that chunk.
    pub fn write_chunk_failed(&mut self, inode: Inode, index: u32, chunk: u64, now: u32) {
        let holds = matches!(self.read_chunk(inode, index), Ok((_, Some((c, 1))))if c == chunk);
        if holds {
            self.commit(now, Op::Rollback { inode, index, chunk });
        }
    }

    /// Ends a write: the length grows to `length` if larger, mtime/ctime
    /// become `now`, the chunk is unlocked.
    pub fn write_chunk_end(&mut self, inode: Inode, chunk: u64, length: u64, now: u32) -> Result<(), Status> {
        let (_, chunks) = self.file(inode)?;
        if chunk == 0 || !chunks.contains(&chunk) {
            return Err(Status::NOCHUNK);
        }
        self.commit(now, Op::WriteEnd { inode, chunk, length });
        Ok(())
    }

    /// Undoes the version bump of a write start that no chunkserver took
    /// (all refused or were unreachable): the copies still hold
    /// `prev_version`, and the chunk must say so or they would all look
    /// stale. Does nothing when the chunk has moved on since.
    pub fn write_chunk_reverted(&mut self, chunk: u64, prev_version: u32, now: u32) {
        if self.chunks.get(&chunk).is_some_and(|c| c.version == prev_version.wrapping_add(1)) {
            self.commit(now, Op::Revert { chunk, version: prev_version });
        }
    }

    /// Releases a writer's lock early (a writer that gave up).
    pub fn unlock_chunk(&mut self, chunk: u64, now: u32) -> Result<(), Status> {
        match self.chunks.get(&chunk) {
            None => Err(Status::NOCHUNK),
            Some(i) if i.locked_until == 0 => Ok(()),
            Some(_) => {
                self.commit(now, Op::Unlock { chunk });
                Ok(())
            }
        }
    }

    /// Sets a file's length. `opened`: the caller has the file open for
    /// writing, so write permission was checked at open.
    pub fn truncate(&mut self, ctx: &Ctx, inode: Inode, length: u64, opened: bool) -> Result<Truncated, Status> {
        let node = self.any(inode)?;
        if !opened {
            check(ctx, node, W)?;
        }
        let (prev_length, chunks) = self.file(inode)?;
        if length > u64::from(MAX_INDEX) * CHUNK_SIZE {
            return Err(Status::INDEXTOOBIG);
        }
        let boundary = boundary_chunk(chunks, length).filter(|_| length != prev_length);
        let mut plan = None;
        if let Some(c) = boundary {
            let info = self.chunks.get(&c).ok_or(Status::NOCHUNK)?;
            if Self::locked(info, ctx.now) {
                return Err(Status::LOCKED);
            }
            plan = Some((c, info.version, info.version.wrapping_add(1), (length % CHUNK_SIZE) as u32));
        }
        self.commit(ctx.now, Op::Truncate { inode, length });
        Ok(Truncated { attr: self.any(inode)?.attr(), prev_length, boundary: plan })
    }
}
