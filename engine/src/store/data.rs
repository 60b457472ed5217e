//! Reading and writing blocks of existing chunks.
//!
//! Reads always fetch whole 64 KiB blocks, because a CRC covers a whole
//! block: a 4 KiB read verifies all of its block, as MooseFS does. The block
//! stays in its pool buffer and the piece asked for is a window into it, so
//! the network layer can send it without copying.
//!
//! Writes carry a piece of one block at its place in a pool buffer
//! (`buf.full()[offset..offset + size]`). A whole block goes to disk as it
//! is. A partial block is merged with the old block read from disk (its CRC
//! checked first); only that merge copies bytes, and it is counted.

use tokio::sync::{RwLockReadGuard, RwLockWriteGuard};

use crate::buffer::Buf;
use crate::crc::{crc32, EMPTY_BLOCK_CRC};
use crate::disk::{IoDone, IoReq};
use crate::error::{Error, Result};
use crate::header::CrcTable;
use crate::layout::{ChunkId, Version, BLOCKS_PER_CHUNK, BLOCK_SIZE};

use super::chunk::{verify_block, ChunkEntry, ChunkState, OpenChunk};
use super::{Engine, Inner};

/// Blocks moved per request when a whole chunk is read or copied.
pub(crate) const COPY_BATCH: usize = 16;

/// A piece of a block, read and verified, ready for the wire.
#[derive(Debug)]
pub struct ReadPiece {
    buf: Buf,
    offset: usize,
    size: usize,
    /// CRC-32 of the piece (of the whole block when the piece is the block).
    pub crc: u32,
}

impl ReadPiece {
    pub fn data(&self) -> &[u8] {
        &self.buf.full()[self.offset..self.offset + self.size]
    }

    /// The whole block buffer and the piece's place in it.
    pub fn into_parts(self) -> (Buf, usize, usize, u32) {
        (self.buf, self.offset, self.size, self.crc)
    }
}

fn check_range(id: ChunkId, block: usize, offset: usize, size: usize) -> Result<()> {
    if block >= BLOCKS_PER_CHUNK || offset > BLOCK_SIZE || size > BLOCK_SIZE - offset {
        return Err(Error::WrongRange { id, block, offset, size });
    }
    Ok(())
}

/// The first failure of a chain, if any.
pub(crate) fn first_error(done: std::io::Result<Vec<IoDone>>) -> Option<std::io::Error> {
    match done {
        Err(e) => Some(e),
        Ok(done) => done.into_iter().find_map(|d| d.result.err()),
    }
}

/// The single result of a one-request chain, with the I/O error named.
fn single(done: std::io::Result<Vec<IoDone>>, op: &'static str, inner: &Inner, entry: &ChunkEntry) -> Result<IoDone> {
    let path = || inner.folders[entry.folder].disk.root().join(format!("{}", entry.id));
    let mut done = done.map_err(|e| Error::io(op, path(), e))?;
    let first = done.drain(..).next().expect("one result per request");
    Ok(first)
}

impl Inner {
    /// A read lock on a live chunk of `version` whose file is open.
    async fn read_open<'a>(&self, entry: &'a ChunkEntry, version: Version) -> Result<RwLockReadGuard<'a, ChunkState>> {
        {
            let state = entry.state.read().await;
            entry.check(&state, version)?;
            if state.open.is_some() {
                return Ok(state);
            }
        }
        let state = self.write_open(entry, version).await?;
        Ok(state.downgrade())
    }

    /// A shared lock for block writes: like `read_open`, and the folder must
    /// be healthy. Writers then claim their block range.
    async fn write_ready<'a>(
        &self,
        entry: &'a ChunkEntry,
        version: Version,
    ) -> Result<RwLockReadGuard<'a, ChunkState>> {
        let state = self.read_open(entry, version).await?;
        self.folders[entry.folder].check()?;
        Ok(state)
    }

    /// A write lock on a live chunk of `version` whose file is open.
    pub(crate) async fn write_open<'a>(
        &self,
        entry: &'a ChunkEntry,
        version: Version,
    ) -> Result<RwLockWriteGuard<'a, ChunkState>> {
        let mut state = entry.state.write().await;
        entry.check(&state, version)?;
        let folder = &self.folders[entry.folder];
        folder.check()?;
        match state.ensure_open(entry.id, version, folder, &self.meta).await {
            Ok(true) => self.opened_file(),
            Ok(false) => {}
            Err(e) => {
                if let Error::Damaged { why, .. } = &e {
                    self.note_damaged(entry.id, why);
                }
                return Err(e);
            }
        }
        Ok(state)
    }

    /// Reads one block per buffer in `bufs` (taken by the caller before it
    /// locked the chunk), from `first` on, and verifies them. Unless the
    /// caller itself holds a claim on the range (`claimed`), waits for writes
    /// in flight there first. Blocks past the end of the file read as zeros
    /// and are verified like any other: a hole has the empty-block CRC.
    pub(crate) async fn read_verified(
        &self,
        entry: &ChunkEntry,
        open: &OpenChunk,
        first: usize,
        mut bufs: Vec<Buf>,
        claimed: bool,
    ) -> Result<Vec<(Buf, u32)>> {
        let count = bufs.len();
        assert!(count > 0 && first + count <= BLOCKS_PER_CHUNK);
        let _claim = if claimed { None } else { Some(entry.claim_read(first..first + count).await) };
        for buf in &mut bufs {
            buf.set_len(BLOCK_SIZE);
        }
        let stored = open.blocks().clamp(first, first + count) - first;
        let mut zeros = bufs.split_off(stored);
        let mut out = Vec::with_capacity(count);
        if stored > 0 {
            let done = open.file.submit(vec![IoReq::read(open.block_offset(first), bufs)]).await;
            let done = single(done, "read blocks", self, entry)?;
            let moved = done.result.map_err(|e| Error::io("read blocks", self.folders[entry.folder].disk.root(), e))?;
            let mut read = done.bufs;
            // A file not yet extended by a write in flight past a hole, or cut
            // short by damage: what is missing reads as zeros, and the CRC
            // check tells the two apart.
            for (i, buf) in read.iter_mut().enumerate() {
                let have = moved.saturating_sub(i * BLOCK_SIZE).min(BLOCK_SIZE);
                buf.full_mut()[have..].fill(0);
            }
            for (i, buf) in read.into_iter().enumerate() {
                let stored_crc = open.crc_of(first + i);
                if let Err(e) = verify_block(entry.id, first + i, &buf, stored_crc) {
                    self.note_damaged(entry.id, &e);
                    return Err(e);
                }
                out.push((buf, stored_crc));
            }
        }
        for mut buf in zeros.drain(..) {
            buf.full_mut().fill(0);
            out.push((buf, EMPTY_BLOCK_CRC));
        }
        Ok(out)
    }

    /// Writes whole blocks from `first` (CRCs in `crcs`) and the CRC table
    /// side by side, then fsyncs if so configured. The caller holds a claim on
    /// the range or the chunk's exclusive lock. Both writes go to the ring
    /// together: either order leaves the same crash window (a block in flight
    /// may fail its CRC, see ARCHITECTURE.md) and one disk round trip instead
    /// of two. Gives the data buffers back for reuse.
    pub(crate) async fn write_at(
        &self,
        entry: &ChunkEntry,
        open: &OpenChunk,
        first: usize,
        bufs: Vec<Buf>,
        crcs: &[u32],
    ) -> Result<Vec<Buf>> {
        let count = bufs.len();
        assert_eq!(count, crcs.len());
        assert!(count > 0 && first + count <= BLOCKS_PER_CHUNK);
        debug_assert!(bufs.iter().all(|b| b.len() == BLOCK_SIZE));
        let folder = &self.folders[entry.folder];
        let end = first + count;
        let estimate = end.saturating_sub(open.blocks()) as u64 * BLOCK_SIZE as u64;
        let _reservation = if estimate > 0 { Some(folder.reserve(estimate)?) } else { None };
        let before = open.grow_to(end);
        folder.add_stored(end.saturating_sub(before) as u64 * BLOCK_SIZE as u64);
        if self.config.grow_ahead_blocks > 0 && end > before && before >= self.config.grow_ahead_blocks {
            self.size_ahead(entry, open, end)?;
        }
        let change = open.set_crcs(first, crcs);
        let data = open.file.submit(vec![IoReq::write(open.block_offset(first), bufs)]);
        let mut failure = self.write_table(open, change).await.err();
        let mut returned = Vec::new();
        match data.await {
            Err(e) => failure = Some(e),
            Ok(done) => {
                if let Some(done) = done.into_iter().next() {
                    returned = done.bufs;
                    if let Err(e) = done.result {
                        failure = Some(e);
                    }
                }
            }
        }
        if failure.is_none() && self.config.fsync_before_ack {
            failure = first_error(open.file.submit(vec![IoReq::fsync()]).await);
        }
        if let Some(err) = failure {
            folder.note_write_error(&err);
            // What reached the disk is unknown: the block may now fail its
            // CRC, so have the chunk checked and replicated by the master.
            self.note_damaged(entry.id, &err);
            if err.raw_os_error() == Some(libc::ENOSPC) {
                return Err(Error::NoSpace { path: folder.line.path.clone() });
            }
            return Err(Error::io("write blocks", folder.disk.root().join(entry.id.to_string()), err));
        }
        Ok(returned)
    }

    /// Sizes the file to hold at least `end` blocks, rounded up to the
    /// grow-ahead step, so writes up to there do not extend it. Never
    /// shrinks: the size on disk is checked under the chunk's sizing lock.
    fn size_ahead(&self, entry: &ChunkEntry, open: &OpenChunk, end: usize) -> Result<()> {
        if end <= open.sized_blocks.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let step = self.config.grow_ahead_blocks;
        let target = (end.div_ceil(step) * step).min(BLOCKS_PER_CHUNK);
        let want = open.block_offset(0) + (target * BLOCK_SIZE) as u64;
        let _sizing = open.sizing.lock().unwrap_or_else(|p| p.into_inner());
        if end <= open.sized_blocks.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let path = || self.folders[entry.folder].disk.root().join(entry.id.to_string());
        let have = open.file.size().map_err(|e| Error::io("size chunk file", path(), e))?;
        if have < want {
            // The look-ahead must fit outside the folder's reserve too;
            // when it does not, writes simply extend the file.
            let Ok(_room) = self.folders[entry.folder].reserve(want - have) else {
                return Ok(());
            };
            match open.file.allocate(want) {
                Ok(()) => {}
                // Out of space for the look-ahead only: the write itself
                // was reserved, so let it extend the file as it goes.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return Ok(()),
                Err(e) => return Err(Error::io("grow chunk file", path(), e)),
            }
        }
        open.sized_blocks.fetch_max(target, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// Writes the CRC table unless a write already covered change `change`.
    /// Table writes are serialised per chunk and each carries a snapshot
    /// taken while serialised, so the table on disk only moves forward.
    pub(crate) async fn write_table(&self, open: &OpenChunk, change: u64) -> std::io::Result<()> {
        let mut written = open.table_io.lock().await;
        if *written >= change {
            return Ok(());
        }
        let (table, covers) = open.crc_buf(&self.meta).await;
        let done = open.file.submit(vec![IoReq::write(open.header_size as u64, vec![table])]).await;
        match first_error(done) {
            Some(err) => Err(err),
            None => {
                *written = covers;
                Ok(())
            }
        }
    }
}

impl Engine {
    /// Reads `size` bytes at `offset` of `block`, verifying the whole block.
    pub async fn read(
        &self,
        id: ChunkId,
        version: Version,
        block: usize,
        offset: usize,
        size: usize,
    ) -> Result<ReadPiece> {
        check_range(id, block, offset, size)?;
        let inner = &self.inner;
        let entry = inner.entry(id)?;
        let buf = inner.pool.get().await;
        let state = inner.read_open(&entry, version).await?;
        let open = state.open.as_ref().expect("read_open leaves the file open");
        let (buf, block_crc) =
            inner.read_verified(&entry, open, block, vec![buf], false).await?.pop().expect("one block");
        let crc = if size == BLOCK_SIZE { block_crc } else { crc32(&buf.full()[offset..offset + size]) };
        Ok(ReadPiece { buf, offset, size, crc })
    }

    /// Reads whole blocks `first..first + count`, each verified, with CRCs.
    pub async fn read_blocks(
        &self,
        id: ChunkId,
        version: Version,
        first: usize,
        count: usize,
    ) -> Result<Vec<(Buf, u32)>> {
        // Half the pool at most, so one request can never hold every buffer.
        if count == 0 || first + count > BLOCKS_PER_CHUNK || count > self.inner.pool.capacity() / 2 {
            return Err(Error::WrongRange { id, block: first, offset: 0, size: count * BLOCK_SIZE });
        }
        let entry = self.inner.entry(id)?;
        let bufs = self.inner.pool.get_many(count).await;
        let state = self.inner.read_open(&entry, version).await?;
        let open = state.open.as_ref().expect("read_open leaves the file open");
        self.inner.read_verified(&entry, open, first, bufs, false).await
    }

    /// Writes a piece of one block: `buf.full()[offset..offset + size]`, whose
    /// CRC-32 the sender computed as `crc`.
    #[allow(clippy::too_many_arguments)]
    pub async fn write(
        &self,
        id: ChunkId,
        version: Version,
        block: usize,
        offset: usize,
        size: usize,
        mut buf: Buf,
        crc: u32,
    ) -> Result<()> {
        check_range(id, block, offset, size)?;
        if size == 0 {
            return Err(Error::WrongRange { id, block, offset, size });
        }
        if crc32(&buf.full()[offset..offset + size]) != crc {
            return Err(Error::PieceCrc { id, block });
        }
        let inner = &self.inner;
        let entry = inner.entry(id)?;
        let spare = if size == BLOCK_SIZE { None } else { Some(inner.pool.get().await) };
        let state = inner.write_ready(&entry, version).await?;
        let open = state.open.as_ref().expect("write_ready leaves the file open");
        let _claim = entry.claim(block..block + 1).await;
        buf.set_len(BLOCK_SIZE);
        let block_crc = match spare {
            None => crc,
            Some(spare) => {
                if block < open.blocks() {
                    let (old, _) =
                        inner.read_verified(&entry, open, block, vec![spare], true).await?.pop().expect("one block");
                    let end = offset + size;
                    buf.full_mut()[..offset].copy_from_slice(&old[..offset]);
                    buf.full_mut()[end..].copy_from_slice(&old[end..]);
                    inner.pool.note_copy(BLOCK_SIZE - size);
                } else {
                    buf.full_mut()[..offset].fill(0);
                    buf.full_mut()[offset + size..].fill(0);
                }
                crc32(&buf)
            }
        };
        inner.write_at(&entry, open, block, vec![buf], &[block_crc]).await.map(drop)
    }

    /// Writes whole blocks from `first`; each buffer holds 64 KiB.
    pub async fn write_blocks(&self, id: ChunkId, version: Version, first: usize, bufs: Vec<Buf>) -> Result<()> {
        if bufs.is_empty() || first + bufs.len() > BLOCKS_PER_CHUNK || bufs.iter().any(|b| b.len() != BLOCK_SIZE) {
            return Err(Error::WrongRange { id, block: first, offset: 0, size: bufs.len() * BLOCK_SIZE });
        }
        let crcs: Vec<u32> = bufs.iter().map(|b| crc32(b)).collect();
        let inner = &self.inner;
        let entry = inner.entry(id)?;
        let state = inner.write_ready(&entry, version).await?;
        let open = state.open.as_ref().expect("write_ready leaves the file open");
        let _claim = entry.claim(first..first + crcs.len()).await;
        inner.write_at(&entry, open, first, bufs, &crcs).await.map(drop)
    }

    /// Like [`Engine::write_blocks`], for blocks that arrived with their CRCs
    /// (replication): each is checked against its data, and the one CRC pass
    /// serves both the check and the table.
    pub async fn write_blocks_checked(
        &self,
        id: ChunkId,
        version: Version,
        first: usize,
        bufs: Vec<Buf>,
        crcs: &[u32],
    ) -> Result<()> {
        if bufs.is_empty()
            || bufs.len() != crcs.len()
            || first + bufs.len() > BLOCKS_PER_CHUNK
            || bufs.iter().any(|b| b.len() != BLOCK_SIZE)
        {
            return Err(Error::WrongRange { id, block: first, offset: 0, size: bufs.len() * BLOCK_SIZE });
        }
        if let Some(i) = bufs.iter().zip(crcs).position(|(b, c)| crc32(b) != *c) {
            return Err(Error::PieceCrc { id, block: first + i });
        }
        let inner = &self.inner;
        let entry = inner.entry(id)?;
        let state = inner.write_ready(&entry, version).await?;
        let open = state.open.as_ref().expect("write_ready leaves the file open");
        let _claim = entry.claim(first..first + crcs.len()).await;
        inner.write_at(&entry, open, first, bufs, crcs).await.map(drop)
    }

    /// Number of 64 KiB blocks stored for the chunk.
    pub async fn blocks(&self, id: ChunkId, version: Version) -> Result<usize> {
        let entry = self.inner.entry(id)?;
        let state = self.inner.read_open(&entry, version).await?;
        Ok(state.open.as_ref().expect("open").blocks())
    }

    /// The chunk's CRC table (empty-block CRC past the last block).
    pub async fn checksum_table(&self, id: ChunkId, version: Version) -> Result<CrcTable> {
        let entry = self.inner.entry(id)?;
        let state = self.inner.read_open(&entry, version).await?;
        Ok(state.open.as_ref().expect("open").crc_table())
    }

    /// Reads every block of the chunk and checks its CRC.
    pub async fn test(&self, id: ChunkId, version: Version) -> Result<()> {
        let entry = self.inner.entry(id)?;
        let mut bufs = self.inner.pool.get_many(COPY_BATCH).await;
        let state = self.inner.read_open(&entry, version).await?;
        let open = state.open.as_ref().expect("open");
        let mut first = 0;
        while first < open.blocks() {
            let count = COPY_BATCH.min(open.blocks() - first);
            let tail = bufs.split_off(count);
            let read = self.inner.read_verified(&entry, open, first, bufs, false).await?;
            bufs = read.into_iter().map(|(buf, _)| buf).chain(tail).collect();
            first += count;
        }
        Ok(())
    }
}
