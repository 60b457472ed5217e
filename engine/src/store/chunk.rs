//! One chunk: its file, its version and its CRC table, behind one lock.
//!
//! Block reads and block writes share the chunk lock; version changes,
//! truncation, deletion and closing hold it alone, so they never overlap a
//! block operation. Block writes claim their block range first: a write or
//! read of an overlapping range waits until the claim is dropped, so a reader
//! never sees a block whose data and CRC entry are changing, while writes to
//! different blocks of one chunk run at the same time. The CRC table lives in
//! memory while the file is open; every table write puts a snapshot taken
//! under the table-I/O lock, so table writes land in order and the newest
//! one covers every CRC entry set before it (see ARCHITECTURE.md).
//!
//! Files written by elkfs have the 4096-byte header and use O_DIRECT. Legacy
//! files (1024-byte header) keep their blocks at offsets that are not 4 KiB
//! aligned, so they are opened buffered.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, RwLock};

use crate::buffer::{Buf, BufPool};
use crate::crc::crc32;
use crate::disk::{DiskFile, IoReq};
use crate::error::{Error, Result};
use crate::header::{CrcTable, Header, HeaderFault};
use crate::layout::{
    block_offset, blocks_of_torn_file, chunk_file_name, geometry_from_file_size, subfolder_name, ChunkId, Version,
    BLOCK_SIZE, CRC_TABLE_SIZE, HEADER_SIZE,
};

use super::folder::Folder;

pub(crate) struct ChunkEntry {
    pub(crate) id: ChunkId,
    pub(crate) folder: usize,
    /// Changed only under the write lock; atomic so `list` needs no lock.
    version: AtomicU32,
    /// Set once the chunk is deleted; late arrivals see `NoChunk`.
    removed: AtomicBool,
    pub(crate) state: Arc<RwLock<ChunkState>>,
    /// Monotonic tick of the last use, for closing idle files.
    pub(crate) last_use: AtomicU64,
    /// Block ranges being written (`true`) or read (`false`) right now.
    claims: Mutex<Vec<(Range<usize>, bool)>>,
    /// Signalled whenever a claim is dropped.
    released: Notify,
}

/// A claimed block range; dropping it wakes whoever waits on the range.
pub(crate) struct Claim<'a> {
    entry: &'a ChunkEntry,
    range: Range<usize>,
    write: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut claims = self.entry.claims();
        if let Some(at) = claims.iter().position(|(r, w)| *r == self.range && *w == self.write) {
            claims.swap_remove(at);
        }
        drop(claims);
        self.entry.released.notify_waiters();
    }
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

pub(crate) struct ChunkState {
    pub(crate) subfolder: usize,
    /// Why the file is unusable, once that is known.
    pub(crate) damaged: Option<String>,
    pub(crate) open: Option<OpenChunk>,
}

pub(crate) struct OpenChunk {
    pub(crate) file: Arc<dyn DiskFile>,
    pub(crate) header_size: usize,
    /// Blocks the chunk has, counting blocks claimed by writes in flight.
    blocks: AtomicUsize,
    /// The CRC table and a counter of changes to it.
    crc: Mutex<(CrcTable, u64)>,
    /// Held across a table write; holds the change count last written.
    pub(crate) table_io: tokio::sync::Mutex<u64>,
    /// Blocks the file is known to be sized for: a write ending within
    /// them needs no look-ahead (nor an `fstat` to find out). Only a hint:
    /// sizing itself checks the file and never shrinks it.
    pub(crate) sized_blocks: AtomicUsize,
    /// Held while the file is sized ahead of writes.
    pub(crate) sizing: std::sync::Mutex<()>,
}

impl OpenChunk {
    pub(crate) fn new(file: Arc<dyn DiskFile>, header_size: usize, blocks: usize, crc: CrcTable) -> OpenChunk {
        OpenChunk {
            file,
            header_size,
            blocks: AtomicUsize::new(blocks),
            crc: Mutex::new((crc, 0)),
            table_io: tokio::sync::Mutex::new(0),
            sized_blocks: AtomicUsize::new(blocks),
            sizing: std::sync::Mutex::new(()),
        }
    }

    pub(crate) fn blocks(&self) -> usize {
        self.blocks.load(Ordering::SeqCst)
    }

    /// Grows the block count to at least `end`; returns the count before.
    pub(crate) fn grow_to(&self, end: usize) -> usize {
        self.blocks.fetch_max(end, Ordering::SeqCst)
    }

    /// Sets the block count (exclusive operations only).
    pub(crate) fn set_blocks(&mut self, blocks: usize) {
        *self.blocks.get_mut() = blocks;
        *self.sized_blocks.get_mut() = blocks;
    }

    pub(crate) fn file_size(&self) -> u64 {
        block_offset(self.header_size, 0) + (self.blocks() * BLOCK_SIZE) as u64
    }

    pub(crate) fn block_offset(&self, block: usize) -> u64 {
        block_offset(self.header_size, block)
    }

    fn table(&self) -> MutexGuard<'_, (CrcTable, u64)> {
        self.crc.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn crc_of(&self, block: usize) -> u32 {
        self.table().0 .0[block]
    }

    pub(crate) fn crc_table(&self) -> CrcTable {
        self.table().0.clone()
    }

    /// Sets CRC entries from `first` on; returns the change count that a
    /// table write must reach to cover them.
    pub(crate) fn set_crcs(&self, first: usize, crcs: &[u32]) -> u64 {
        let mut table = self.table();
        table.0 .0[first..first + crcs.len()].copy_from_slice(crcs);
        table.1 += 1;
        table.1
    }

    /// Forgets blocks at and after `blocks` (exclusive operations only).
    pub(crate) fn clear_crcs_from(&self, blocks: usize) -> u64 {
        let mut table = self.table();
        table.0.clear_from(blocks);
        table.1 += 1;
        table.1
    }

    /// A buffer holding the CRC table as it goes on disk, and the change
    /// count it covers. Call with `table_io` held, so snapshots land in order.
    pub(crate) async fn crc_buf(&self, pool: &BufPool) -> (Buf, u64) {
        let mut buf = pool.get().await;
        buf.set_len(CRC_TABLE_SIZE);
        let table = self.table();
        table.0.encode(&mut buf);
        (buf, table.1)
    }
}

impl ChunkEntry {
    pub(crate) fn new(id: ChunkId, folder: usize, version: Version, subfolder: usize) -> ChunkEntry {
        ChunkEntry {
            id,
            folder,
            version: AtomicU32::new(version.0),
            removed: AtomicBool::new(false),
            state: Arc::new(RwLock::new(ChunkState { subfolder, damaged: None, open: None })),
            last_use: AtomicU64::new(0),
            claims: Mutex::new(Vec::new()),
            released: Notify::new(),
        }
    }

    fn claims(&self) -> MutexGuard<'_, Vec<(Range<usize>, bool)>> {
        self.claims.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims `range`: a write claim waits for every overlapping claim to
    /// go, a read claim only for overlapping write claims.
    async fn take_claim(&self, range: Range<usize>, write: bool) -> Claim<'_> {
        assert!(range.start < range.end, "empty claim");
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut claims = self.claims();
                if !claims.iter().any(|(r, w)| (write || *w) && overlaps(r, &range)) {
                    claims.push((range.clone(), write));
                    return Claim { entry: self, range, write };
                }
            }
            released.await;
        }
    }

    /// Claims `range` for a write.
    pub(crate) async fn claim(&self, range: Range<usize>) -> Claim<'_> {
        self.take_claim(range, true).await
    }

    /// Claims `range` for a read: no write can start on it until dropped.
    pub(crate) async fn claim_read(&self, range: Range<usize>) -> Claim<'_> {
        self.take_claim(range, false).await
    }

    pub(crate) fn state_arc(&self) -> Arc<RwLock<ChunkState>> {
        self.state.clone()
    }

    pub(crate) fn version(&self) -> Version {
        Version(self.version.load(Ordering::SeqCst))
    }

    /// Call with the write lock held.
    pub(crate) fn set_version(&self, version: Version) {
        self.version.store(version.0, Ordering::SeqCst);
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// Call with the write lock held.
    pub(crate) fn mark_removed(&self) {
        self.removed.store(true, Ordering::SeqCst);
    }

    /// The chunk exists, has `version` and is usable. Call with a lock held.
    pub(crate) fn check(&self, state: &ChunkState, version: Version) -> Result<()> {
        if self.is_removed() {
            return Err(Error::NoChunk(self.id));
        }
        let have = self.version();
        if have != version {
            return Err(Error::WrongVersion { id: self.id, have, want: version });
        }
        if let Some(why) = &state.damaged {
            return Err(Error::Damaged { id: self.id, why: why.clone() });
        }
        Ok(())
    }

    pub(crate) fn rel_path(&self, state: &ChunkState) -> PathBuf {
        rel_path(state.subfolder, self.id, self.version())
    }

    pub(crate) fn touch(&self, tick: u64) {
        self.last_use.store(tick, Ordering::Relaxed);
    }
}

/// Relative path of a chunk file inside its folder.
pub(crate) fn rel_path(subfolder: usize, id: ChunkId, version: Version) -> PathBuf {
    PathBuf::from(subfolder_name(subfolder)).join(chunk_file_name(id, version))
}

impl ChunkState {
    /// Opens the file and loads header and CRC table, once. Returns whether
    /// a file was opened now (the caller counts open files).
    pub(crate) async fn ensure_open(
        &mut self,
        id: ChunkId,
        version: Version,
        folder: &Folder,
        pool: &BufPool,
    ) -> Result<bool> {
        if self.open.is_some() {
            return Ok(false);
        }
        {
            match load(id, version, &rel_path(self.subfolder, id, version), folder, pool).await {
                Ok(open) => self.open = Some(open),
                Err(LoadError::Damaged(why)) => {
                    self.damaged = Some(why.clone());
                    return Err(Error::Damaged { id, why });
                }
                Err(LoadError::Other(e)) => return Err(e),
            }
        }
        Ok(true)
    }

    pub(crate) fn opened(&mut self) -> &mut OpenChunk {
        self.open.as_mut().expect("ensure_open ran under this lock")
    }
}

pub(crate) enum LoadError {
    /// The file is there but is not a valid chunk of this id and version.
    Damaged(String),
    Other(Error),
}

async fn load(
    id: ChunkId,
    version: Version,
    rel: &PathBuf,
    folder: &Folder,
    pool: &BufPool,
) -> Result<OpenChunk, LoadError> {
    let disk = &folder.disk;
    let path = || disk.root().join(rel);
    let (_, size) = disk.peek(rel, 0).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::Other(Error::NoChunk(id)),
        _ => LoadError::Other(Error::io("stat chunk", path(), e)),
    })?;
    let (header_size, blocks, torn) = match (geometry_from_file_size(size), blocks_of_torn_file(size)) {
        (Some((header_size, blocks)), _) => (header_size, blocks, false),
        (None, Some(blocks)) => (HEADER_SIZE, blocks, true),
        (None, None) => return Err(LoadError::Damaged(format!("file size {size} fits no chunk layout"))),
    };
    let file = if header_size == HEADER_SIZE { disk.open(rel, false) } else { disk.open_buffered(rel) }
        .map_err(|e| LoadError::Other(Error::io("open chunk", path(), e)))?;
    if torn {
        // Restore the whole-block layout MooseFS tools expect; the cut block
        // is now zero-padded and its CRC says whether anything was lost.
        let whole = block_offset(HEADER_SIZE, 0) + (blocks * BLOCK_SIZE) as u64;
        file.set_size(whole).map_err(|e| LoadError::Other(Error::io("repair torn chunk", path(), e)))?;
        tracing::warn!(chunk = %id, "file size {size} cut inside a block: padded to {whole}");
    }
    let mut head = pool.get().await;
    head.set_len(header_size);
    let mut table = pool.get().await;
    table.set_len(CRC_TABLE_SIZE);
    let mut done = file
        .submit(vec![IoReq::read(0, vec![head, table])])
        .await
        .map_err(|e| LoadError::Other(Error::io("read chunk header", path(), e)))?;
    let done = done.pop().expect("one result per request");
    let moved = done.result.map_err(|e| LoadError::Other(Error::io("read chunk header", path(), e)))?;
    if moved < header_size + CRC_TABLE_SIZE {
        return Err(LoadError::Damaged("file ends inside its header".into()));
    }
    let header = Header::decode(&done.bufs[0]).map_err(|fault| {
        LoadError::Damaged(match fault {
            HeaderFault::Short => "header too short".into(),
            HeaderFault::Signature => "bad signature".into(),
        })
    })?;
    if header.id != id {
        return Err(LoadError::Damaged(format!("header says chunk {}, file name says {}", header.id, id)));
    }
    let mut crc = CrcTable::decode(&done.bufs[1], blocks);
    crc.clear_from(blocks);
    let open = OpenChunk::new(file, header_size, blocks, crc);
    if header.version != version {
        // A version change renames first and rewrites the header second; a
        // crash between leaves this. The master only trusts the version it
        // issued last, so serving the name's version is safe: an old one makes
        // the master drop this copy, a new one matches unchanged data.
        repair_version(&open, id, version, pool)
            .await
            .map_err(|e| LoadError::Other(Error::io("repair chunk header", path(), e)))?;
        tracing::warn!(chunk = %id, "header version {} repaired to the file name's {}", header.version, version);
    }
    Ok(open)
}

/// Rewrites the version in the header of an open chunk.
async fn repair_version(open: &OpenChunk, id: ChunkId, version: Version, pool: &BufPool) -> std::io::Result<()> {
    let mut page = pool.get().await;
    let req = if open.header_size == HEADER_SIZE {
        page.set_len(HEADER_SIZE);
        Header { id, version }.encode(&mut page);
        IoReq::write(0, vec![page])
    } else {
        page.set_len(4);
        page.copy_from_slice(&version.0.to_be_bytes());
        IoReq::write(16, vec![page])
    };
    let done = open.file.submit(vec![req, IoReq::fsync()]).await?;
    done.into_iter().find_map(|d| d.result.err()).map_or(Ok(()), Err)
}

/// Checks a block read from disk against its stored CRC.
pub(crate) fn verify_block(id: ChunkId, block: usize, data: &[u8], stored: u32) -> Result<()> {
    debug_assert_eq!(data.len(), BLOCK_SIZE);
    let actual = crc32(data);
    if actual != stored {
        return Err(Error::Crc { id, block, stored, actual });
    }
    Ok(())
}
