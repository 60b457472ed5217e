//! Creating, deleting, re-versioning, duplicating and truncating chunks.
//!
//! Ordering for crash safety (what is on disk after each step is in
//! ARCHITECTURE.md): a new file is written whole (header + CRC table) before
//! it is announced; truncation changes data first and the version last, so
//! the version in the file name is the commit mark of a truncate; a version
//! change renames the file, then rewrites the header page. With
//! `fsync_before_ack`, every step that must survive power loss is fsynced
//! (file and folder) before the call returns.

use std::path::Path;
use std::sync::Arc;

use crate::buffer::Buf;
use crate::crc::crc32;
use crate::disk::IoReq;
use crate::error::{Error, Result};
use crate::header::{CrcTable, Header};
use crate::layout::{subfolder_name, ChunkId, Version, BLOCK_SIZE, CRC_TABLE_SIZE, EMPTY_CHUNK_FILE_SIZE, HEADER_SIZE};

use super::chunk::{rel_path, ChunkEntry, ChunkState, OpenChunk};
use super::data::{first_error, COPY_BATCH};
use super::folder::Folder;
use super::{Engine, Inner};

impl Inner {
    /// Picks the folder for a new chunk of `bytes`: the healthy folder not
    /// marked for removal with the most space available.
    fn pick_folder(&self, bytes: u64) -> Result<usize> {
        let mut best: Option<(usize, u64)> = None;
        let mut full = None;
        for (index, folder) in self.folders.iter().enumerate() {
            if folder.is_damaged() || folder.line.marked_for_removal {
                continue;
            }
            let Ok(space) = folder.space() else { continue };
            if space.avail < bytes {
                full = Some(index);
                continue;
            }
            if best.is_none_or(|(_, avail)| space.avail > avail) {
                best = Some((index, space.avail));
            }
        }
        match (best, full) {
            (Some((index, _)), _) => Ok(index),
            (None, Some(index)) => Err(Error::NoSpace { path: self.folders[index].line.path.clone() }),
            (None, None) => Err(Error::NoDisk),
        }
    }

    /// Makes a new, empty chunk file and registers it, write-locked, so the
    /// caller can fill it before anyone else sees it.
    async fn create_locked(
        &self,
        id: ChunkId,
        version: Version,
        blocks_planned: usize,
    ) -> Result<(Arc<ChunkEntry>, tokio::sync::OwnedRwLockWriteGuard<ChunkState>)> {
        let bytes = EMPTY_CHUNK_FILE_SIZE + (blocks_planned * BLOCK_SIZE) as u64;
        let index = self.pick_folder(bytes)?;
        let folder = &self.folders[index];
        let reservation = folder.reserve(bytes)?;
        let subfolder = folder.placement().pick();
        let entry = Arc::new(ChunkEntry::new(id, index, version, subfolder));
        let guard = entry.state_arc().write_owned().await;
        {
            let mut chunks = self.chunks_write();
            if chunks.contains_key(&id) {
                folder.placement().remove(subfolder);
                return Err(Error::ChunkExists { id });
            }
            chunks.insert(id, entry.clone());
        }
        let mut guard = guard;
        match self.write_new_file(folder, id, version, subfolder).await {
            Ok(open) => {
                guard.open = Some(open);
                self.opened_file();
                folder.add_stored(EMPTY_CHUNK_FILE_SIZE);
                drop(reservation);
                Ok((entry, guard))
            }
            Err(e) => {
                self.unregister(&entry, folder, subfolder);
                Err(e)
            }
        }
    }

    fn unregister(&self, entry: &Arc<ChunkEntry>, folder: &Folder, subfolder: usize) {
        entry.mark_removed();
        let mut chunks = self.chunks_write();
        if chunks.get(&entry.id).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            chunks.remove(&entry.id);
        }
        folder.placement().remove(subfolder);
    }

    async fn write_new_file(
        &self,
        folder: &Folder,
        id: ChunkId,
        version: Version,
        subfolder: usize,
    ) -> Result<OpenChunk> {
        let rel = rel_path(subfolder, id, version);
        let path = folder.disk.root().join(&rel);
        let file = folder.disk.open(&rel, true).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::ChunkExists { id },
            _ => Error::io("create chunk", &path, e),
        })?;
        let mut head = self.meta.get().await;
        head.set_len(HEADER_SIZE);
        Header { id, version }.encode(&mut head);
        let crc = CrcTable::empty();
        let mut table = self.meta.get().await;
        table.set_len(CRC_TABLE_SIZE);
        crc.encode(&mut table);
        let mut chain = vec![IoReq::write(0, vec![head, table])];
        if self.config.fsync_before_ack {
            chain.push(IoReq::fsync());
        }
        if let Some(err) = first_error(file.submit(chain).await) {
            folder.note_write_error(&err);
            let _ = folder.disk.remove(&rel);
            return Err(if err.raw_os_error() == Some(libc::ENOSPC) {
                Error::NoSpace { path: folder.line.path.clone() }
            } else {
                Error::io("write chunk header", &path, err)
            });
        }
        self.sync_folder(folder, &subfolder_name(subfolder))?;
        Ok(OpenChunk::new(file, HEADER_SIZE, 0, crc))
    }

    /// With `fsync_before_ack`, makes name changes in `sub` durable.
    fn sync_folder(&self, folder: &Folder, sub: &str) -> Result<()> {
        if !self.config.fsync_before_ack {
            return Ok(());
        }
        folder.disk.sync_dir(Path::new(sub)).map_err(|e| {
            folder.note_write_error(&e);
            Error::io("fsync folder", folder.disk.root().join(sub), e)
        })
    }

    /// Renames the chunk to `new_version` and rewrites its header page.
    async fn change_version(&self, entry: &ChunkEntry, state: &mut ChunkState, new_version: Version) -> Result<()> {
        let folder = &self.folders[entry.folder];
        let from = entry.rel_path(state);
        let to = rel_path(state.subfolder, entry.id, new_version);
        folder.disk.rename(&from, &to).map_err(|e| {
            folder.note_write_error(&e);
            Error::io("rename chunk", folder.disk.root().join(&from), e)
        })?;
        entry.set_version(new_version);
        let open = state.opened();
        let mut page = self.meta.get().await;
        let mut chain = if open.header_size == HEADER_SIZE {
            page.set_len(HEADER_SIZE);
            Header { id: entry.id, version: new_version }.encode(&mut page);
            vec![IoReq::write(0, vec![page])]
        } else {
            // Legacy file, opened buffered: only the version field changes.
            page.set_len(4);
            page.copy_from_slice(&new_version.0.to_be_bytes());
            vec![IoReq::write(16, vec![page])]
        };
        if self.config.fsync_before_ack {
            chain.push(IoReq::fsync());
        }
        if let Some(err) = first_error(open.file.submit(chain).await) {
            folder.note_write_error(&err);
            let why = format!("header rewrite failed after rename: {err}");
            state.damaged = Some(why.clone());
            self.note_damaged(entry.id, &why);
            return Err(Error::io("write chunk header", folder.disk.root().join(&to), err));
        }
        self.sync_folder(folder, &subfolder_name(state.subfolder))
    }

    /// Cuts or extends the chunk to `length` bytes of data. `spare` is a
    /// data buffer taken before the lock, for the last partial block.
    async fn truncate_data(&self, entry: &ChunkEntry, state: &mut ChunkState, length: u64, spare: Buf) -> Result<()> {
        let folder = &self.folders[entry.folder];
        let open = state.opened();
        let blocks = length.div_ceil(BLOCK_SIZE as u64) as usize;
        let path = || folder.disk.root().join(entry.id.to_string());
        if blocks > open.blocks() {
            let growth = ((blocks - open.blocks()) * BLOCK_SIZE) as u64;
            let _reservation = folder.reserve(growth)?;
            let size = open.block_offset(0) + (blocks * BLOCK_SIZE) as u64;
            open.file.set_size(size).map_err(|e| {
                folder.note_write_error(&e);
                Error::io("extend chunk", path(), e)
            })?;
            open.set_blocks(blocks);
            folder.add_stored(growth);
            // New blocks are holes, already described by empty-block CRCs;
            // only the new size has to be made durable.
            if self.config.fsync_before_ack {
                if let Some(err) = first_error(open.file.submit(vec![IoReq::fsync()]).await) {
                    folder.note_write_error(&err);
                    return Err(Error::io("fsync chunk", path(), err));
                }
            }
            return Ok(());
        }
        let tail = (length % BLOCK_SIZE as u64) as usize;
        let mut rewrite: Option<(Buf, u32)> = None;
        if tail != 0 {
            let last = blocks - 1;
            let (mut buf, _) =
                self.read_verified(entry, open, last, vec![spare], true).await?.pop().expect("one block");
            buf.full_mut()[tail..].fill(0);
            let crc = crc32(&buf);
            rewrite = Some((buf, crc));
        }
        let dropped = ((open.blocks() - blocks) * BLOCK_SIZE) as u64;
        open.file.set_size(open.block_offset(0) + (blocks * BLOCK_SIZE) as u64).map_err(|e| {
            folder.note_write_error(&e);
            Error::io("truncate chunk", path(), e)
        })?;
        open.set_blocks(blocks);
        let change = open.clear_crcs_from(blocks);
        folder.sub_stored(dropped);
        let open = &*open;
        match rewrite {
            Some((buf, crc)) => self.write_at(entry, open, blocks - 1, vec![buf], &[crc]).await.map(drop),
            None => {
                let mut failure = self.write_table(open, change).await.err();
                if failure.is_none() && self.config.fsync_before_ack {
                    failure = first_error(open.file.submit(vec![IoReq::fsync()]).await);
                }
                match failure {
                    None => Ok(()),
                    Some(err) => {
                        folder.note_write_error(&err);
                        Err(Error::io("write CRC table", path(), err))
                    }
                }
            }
        }
    }

    /// Copies every block of `src` into the fresh `dst`, through `bufs`
    /// (taken before any lock); the buffers come back for reuse.
    async fn copy_blocks(
        &self,
        src: &ChunkEntry,
        from: &OpenChunk,
        dst: &ChunkEntry,
        to: &mut ChunkState,
        mut bufs: Vec<Buf>,
    ) -> Result<Vec<Buf>> {
        let mut first = 0;
        let to = to.opened();
        while first < from.blocks() {
            let count = bufs.len().min(from.blocks() - first);
            let tail = bufs.split_off(count);
            let blocks = self.read_verified(src, from, first, bufs, false).await?;
            let (data, crcs): (Vec<Buf>, Vec<u32>) = blocks.into_iter().unzip();
            bufs = self.write_at(dst, to, first, data, &crcs).await?;
            bufs.extend(tail);
            first += count;
        }
        Ok(bufs)
    }
}

impl Engine {
    /// Creates an empty chunk.
    pub async fn create(&self, id: ChunkId, version: Version) -> Result<()> {
        self.inner.create_locked(id, version, 0).await.map(|_| ())
    }

    /// Deletes the chunk file.
    pub async fn delete(&self, id: ChunkId, version: Version) -> Result<()> {
        let inner = &self.inner;
        let entry = inner.entry(id)?;
        let mut state = entry.state.write().await;
        if entry.is_removed() {
            return Err(Error::NoChunk(id));
        }
        let have = entry.version();
        if have != version {
            return Err(Error::WrongVersion { id, have, want: version });
        }
        let folder = &inner.folders[entry.folder];
        folder.check()?;
        let rel = entry.rel_path(&state);
        let size = match &state.open {
            Some(open) => open.file_size(),
            None => folder.disk.peek(&rel, 0).map(|(_, size)| size).unwrap_or(0),
        };
        match folder.disk.remove(&rel) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("delete chunk", folder.disk.root().join(&rel), e)),
        }
        if state.open.take().is_some() {
            inner.closed_file();
        }
        folder.sub_stored(size);
        inner.unregister(&entry, folder, state.subfolder);
        inner.sync_folder(folder, &subfolder_name(state.subfolder))
    }

    /// Changes the chunk's version.
    pub async fn set_version(&self, id: ChunkId, version: Version, new_version: Version) -> Result<()> {
        let entry = self.inner.entry(id)?;
        let mut state = self.inner.write_open(&entry, version).await?;
        self.inner.change_version(&entry, &mut state, new_version).await
    }

    /// Truncates (or extends) the chunk to `length` bytes and gives it `new_version`.
    pub async fn truncate(&self, id: ChunkId, version: Version, new_version: Version, length: u64) -> Result<()> {
        check_length(id, length)?;
        let entry = self.inner.entry(id)?;
        let spare = self.inner.pool.get().await;
        let mut state = self.inner.write_open(&entry, version).await?;
        self.inner.truncate_data(&entry, &mut state, length, spare).await?;
        self.inner.change_version(&entry, &mut state, new_version).await
    }

    /// Makes `dst` at `dst_version` a copy of `src` at `src_version`.
    pub async fn duplicate(
        &self,
        src: ChunkId,
        src_version: Version,
        dst: ChunkId,
        dst_version: Version,
    ) -> Result<()> {
        self.duplicate_impl(src, src_version, dst, dst_version, None).await
    }

    /// Duplicates, then truncates the copy to `length`.
    pub async fn dup_trunc(
        &self,
        src: ChunkId,
        src_version: Version,
        dst: ChunkId,
        dst_version: Version,
        length: u64,
    ) -> Result<()> {
        check_length(dst, length)?;
        self.duplicate_impl(src, src_version, dst, dst_version, Some(length)).await
    }

    async fn duplicate_impl(
        &self,
        src: ChunkId,
        src_version: Version,
        dst: ChunkId,
        dst_version: Version,
        length: Option<u64>,
    ) -> Result<()> {
        let inner = &self.inner;
        let source = inner.entry(src)?;
        let bufs = inner.pool.get_many(COPY_BATCH).await;
        let from = inner.write_open(&source, src_version).await?.downgrade();
        let from_open = from.open.as_ref().expect("open");
        let (target, mut to) = inner.create_locked(dst, dst_version, from_open.blocks()).await?;
        let mut result = inner.copy_blocks(&source, from_open, &target, &mut to, bufs).await;
        if let (Ok(bufs), Some(length)) = (&mut result, length) {
            let spare = bufs.pop().expect("copy batch is not empty");
            if let Err(e) = inner.truncate_data(&target, &mut to, length, spare).await {
                result = Err(e);
            }
        }
        let result = result.map(drop);
        if result.is_err() {
            let folder = &inner.folders[target.folder];
            let rel = target.rel_path(&to);
            if to.open.take().is_some() {
                inner.closed_file();
            }
            let _ = folder.disk.remove(&rel);
            inner.unregister(&target, folder, to.subfolder);
        }
        result
    }
}

fn check_length(id: ChunkId, length: u64) -> Result<()> {
    if length > crate::layout::CHUNK_SIZE {
        return Err(Error::WrongRange { id, block: 0, offset: 0, size: usize::try_from(length).unwrap_or(usize::MAX) });
    }
    Ok(())
}
