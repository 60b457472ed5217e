//! The chunk store: every chunk of one chunkserver, over its data folders.
//!
//! [`Engine`] is a cheap handle (an `Arc`); clone it into every task. All
//! chunk operations are `async` and run on the caller's runtime; the data
//! I/O itself runs on the folders' ring threads. Operations on one chunk are
//! ordered by that chunk's lock; operations on different chunks run freely.

mod chunk;
mod data;
mod folder;
mod lifecycle;
mod scan;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::buffer::BufPool;
use crate::config::EngineConfig;
use crate::disk::{Disk, UringDisk};
use crate::error::{Error, Result};
use crate::layout::{ChunkId, Version};

use chunk::ChunkEntry;
use folder::Folder;

pub use data::ReadPiece;
pub use folder::FolderSpace;
pub use scan::ScanReport;

/// Version bit that flags, on the wire, a copy on a folder marked for removal.
pub const VERSION_MARKED_FOR_REMOVAL: u32 = 0x8000_0000;

/// One chunk as `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInfo {
    pub id: ChunkId,
    pub version: Version,
    /// Index of the folder (line of `mfshdd.cfg`) holding it.
    pub folder: usize,
    /// The folder is marked for removal: report the version with
    /// [`VERSION_MARKED_FOR_REMOVAL`] so the master moves the copy away.
    pub marked_for_removal: bool,
}

/// One folder as `folders` reports it.
#[derive(Debug, Clone)]
pub struct FolderReport {
    pub path: PathBuf,
    pub space: Option<FolderSpace>,
    pub chunks: usize,
    pub damaged: bool,
    pub marked_for_removal: bool,
    pub direct_io: bool,
}

/// The chunk store handle.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    pub(crate) folders: Vec<Folder>,
    pub(crate) chunks: RwLock<HashMap<ChunkId, Arc<ChunkEntry>>>,
    /// Data buffers: block contents. Taken *before* a chunk lock, so a lock
    /// holder never waits on this pool while waiters hold its buffers.
    pub(crate) pool: BufPool,
    /// Header and CRC-table buffers, taken under a chunk lock. Their holders
    /// wait only for I/O, so this pool always drains.
    pub(crate) meta: BufPool,
    damaged: Mutex<Vec<ChunkId>>,
    open_files: AtomicUsize,
    tick: AtomicU64,
}

impl Engine {
    /// Opens every configured folder with io_uring and scans it. Blocking.
    pub fn start(config: EngineConfig) -> Result<(Engine, ScanReport)> {
        let mut disks: Vec<Arc<dyn Disk>> = Vec::with_capacity(config.disks.len());
        for line in &config.disks {
            let disk = UringDisk::open(&line.path, config.queue_depth, config.direct_io)
                .map_err(|e| Error::io("open data folder", &line.path, e))?;
            disks.push(Arc::new(disk));
        }
        Engine::start_with(config, disks)
    }

    /// Runs over the given disks, one per `config.disks` line (tests pass
    /// simulated disks here). Blocking: scans every folder before returning.
    pub fn start_with(config: EngineConfig, disks: Vec<Arc<dyn Disk>>) -> Result<(Engine, ScanReport)> {
        if disks.len() != config.disks.len() {
            return Err(Error::Config(format!("{} disks for {} folder lines", disks.len(), config.disks.len())));
        }
        if config.disks.is_empty() {
            return Err(Error::Config("no data folders configured".into()));
        }
        if config.pool_buffers < 2 * data::COPY_BATCH || config.queue_depth == 0 || config.queue_depth >= 4096 {
            return Err(Error::Config(format!(
                "pool_buffers must be at least {} and queue_depth within 1..4096 (got {} and {})",
                2 * data::COPY_BATCH,
                config.pool_buffers,
                config.queue_depth
            )));
        }
        let folders = disks
            .into_iter()
            .zip(&config.disks)
            .map(|(disk, line)| Folder::new(disk, line.clone(), config.leave_space_default, config.rr_chunk_count))
            .collect();
        let inner = Inner {
            pool: BufPool::new(config.pool_buffers),
            meta: BufPool::new((4 * config.queue_depth * config.disks.len()).max(16)),
            config,
            folders,
            chunks: RwLock::new(HashMap::new()),
            damaged: Mutex::new(Vec::new()),
            open_files: AtomicUsize::new(0),
            tick: AtomicU64::new(0),
        };
        let engine = Engine { inner: Arc::new(inner) };
        let report = scan::scan_all(&engine.inner)?;
        Ok((engine, report))
    }

    /// The buffer pool the network layer receives into.
    pub fn pool(&self) -> &BufPool {
        &self.inner.pool
    }

    /// Bytes copied between buffers on the data path (0 for aligned
    /// whole-block traffic).
    pub fn copied_bytes(&self) -> u64 {
        self.inner.pool.copied_bytes()
    }

    /// Every chunk with its version.
    pub fn list(&self) -> Vec<ChunkInfo> {
        let mut out: Vec<ChunkInfo> = self
            .inner
            .chunks_read()
            .values()
            .filter(|entry| !entry.is_removed())
            .map(|entry| ChunkInfo {
                id: entry.id,
                version: entry.version(),
                folder: entry.folder,
                marked_for_removal: self.inner.folders[entry.folder].line.marked_for_removal,
            })
            .collect();
        out.sort_by_key(|c| c.id);
        out
    }

    /// The stored version of a chunk, if the chunk is here. Lets callers
    /// honour MooseFS's "version 0 means whatever is stored".
    pub fn version(&self, id: ChunkId) -> Option<Version> {
        self.inner.chunks_read().get(&id).filter(|entry| !entry.is_removed()).map(|entry| entry.version())
    }

    /// Space, health and chunk count of every folder.
    pub fn folders(&self) -> Vec<FolderReport> {
        let mut counts = vec![0usize; self.inner.folders.len()];
        for entry in self.inner.chunks_read().values() {
            counts[entry.folder] += 1;
        }
        self.inner
            .folders
            .iter()
            .zip(counts)
            .map(|(folder, chunks)| FolderReport {
                path: folder.line.path.clone(),
                space: folder.space().ok(),
                chunks,
                damaged: folder.is_damaged(),
                marked_for_removal: folder.line.marked_for_removal,
                direct_io: folder.disk.direct_io(),
            })
            .collect()
    }

    /// Chunks found damaged since the last call, for reporting to the master.
    pub fn take_damaged(&self) -> Vec<ChunkId> {
        std::mem::take(&mut *self.inner.damaged.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Closes chunk files not used by any operation right now.
    pub fn close_idle(&self) {
        self.inner.close_idle(0);
    }
}

impl Inner {
    pub(crate) fn chunks_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ChunkId, Arc<ChunkEntry>>> {
        self.chunks.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn chunks_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ChunkId, Arc<ChunkEntry>>> {
        self.chunks.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn entry(&self, id: ChunkId) -> Result<Arc<ChunkEntry>> {
        let entry = self.chunks_read().get(&id).cloned().ok_or(Error::NoChunk(id))?;
        entry.touch(self.tick.fetch_add(1, Ordering::Relaxed));
        Ok(entry)
    }

    pub(crate) fn note_damaged(&self, id: ChunkId, why: &dyn std::fmt::Display) {
        tracing::warn!(chunk = %id, "chunk damaged: {why}");
        let mut damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        if !damaged.contains(&id) {
            damaged.push(id);
        }
    }

    /// Counts a newly opened file and closes idle ones past the limit.
    pub(crate) fn opened_file(&self) {
        let open = self.open_files.fetch_add(1, Ordering::Relaxed) + 1;
        if open > self.config.max_open_files {
            self.close_idle(self.config.max_open_files / 2);
        }
    }

    /// Closes idle files (least recently used first) until at most `keep`
    /// stay open. Entries busy right now are skipped.
    fn close_idle(&self, keep: usize) {
        let mut candidates: Vec<(u64, Arc<ChunkEntry>)> =
            self.chunks_read().values().map(|e| (e.last_use.load(Ordering::Relaxed), e.clone())).collect();
        candidates.sort_by_key(|(tick, _)| *tick);
        for (_, entry) in candidates {
            if self.open_files.load(Ordering::Relaxed) <= keep {
                break;
            }
            if let Ok(mut state) = entry.state.try_write() {
                if state.open.take().is_some() {
                    self.open_files.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    pub(crate) fn closed_file(&self) {
        self.open_files.fetch_sub(1, Ordering::Relaxed);
    }
}
