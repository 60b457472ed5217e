//! The state every connection of the master works on, and the one way to
//! change it.
//!
//! Lock order: the namespace (`meta`) before anything inside the cluster;
//! the cluster never calls back into the namespace while holding its own
//! locks. No lock is held across an `.await`.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::changelog::Changelog;
use crate::cluster::{Catalog, CatalogChunk, Cluster};
use crate::config::MasterConfig;
use crate::exports::{Exports, Grant};
use crate::meta::Meta;

pub struct Shared {
    pub meta: Arc<Mutex<Meta>>,
    pub cluster: Arc<Cluster>,
    pub log: Arc<Changelog>,
    pub config: MasterConfig,
    pub started: std::time::Instant,
    /// Who is connected, for monitoring; never held with `meta`'s lock
    /// taken after it.
    pub lists: Mutex<Lists>,
    /// Chunks that were locked by a writer when this master started: that
    /// writer talked to the previous master process. Their locks are given
    /// up as soon as the chunk has a copy at its current version, instead
    /// of making every writer wait out the lease (see `clserv::chunks`).
    pub inherited_locks: Mutex<std::collections::HashSet<u64>>,
    /// The exports table in force; `SIGHUP` replaces it whole.
    pub exports: Mutex<Arc<Exports>>,
}

/// Connections and events the namespace does not record.
#[derive(Default)]
pub struct Lists {
    /// Connected metaloggers: address and version.
    pub metaloggers: Vec<(std::net::Ipv4Addr, u32)>,
    /// Live client sessions: peer, connections, client version.
    pub sessions: std::collections::HashMap<u32, (std::net::Ipv4Addr, u32, u32)>,
    /// Unix time and duration (ms) of the last snapshot written.
    pub last_save: (u32, u32),
    /// Append reservations (`O_APPEND` writers ask where to write): the
    /// end of what has been handed out per inode. Volatile, as in MooseFS:
    /// after a restart writers start again from the file's length.
    pub appends: std::collections::HashMap<u32, u64>,
    /// What each session registered in this process was granted, under
    /// which exports checksum and from which address (a reconnect from
    /// elsewhere, or after a reload, must register again).
    pub grants: std::collections::HashMap<u32, (Grant, u64, std::net::Ipv4Addr)>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Meta> {
        lock_meta(&self.meta)
    }

    pub fn exports(&self) -> Arc<Exports> {
        self.exports.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the exports file; a file that cannot be used leaves the
    /// table in force as it is (as mfsmaster does on reload).
    pub fn reload_exports(&self) {
        match load_exports(&self.config) {
            Ok(table) => {
                tracing::info!(exports = table.entries.len(), "exports reloaded");
                *self.exports.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
            }
            Err(e) => tracing::error!("exports not changed: {e}"),
        }
    }

    pub fn lists(&self) -> MutexGuard<'_, Lists> {
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the namespace; the records it produced are queued for
    /// the changelog in the same critical section (so file order is apply
    /// order). Returns `f`'s result and the version the caller must see
    /// durable before answering anyone.
    pub fn change<T>(&self, f: impl FnOnce(&mut Meta) -> T) -> (T, u64) {
        let mut meta = self.lock();
        let out = f(&mut meta);
        let records = meta.drain_log();
        let version = meta.version();
        let released = meta.take_released();
        self.log.append(records.into_iter().map(|(v, r)| (v, r.to_text())).collect());
        drop(meta);
        for id in released {
            self.cluster.release(id);
        }
        (out, version)
    }

    /// Runs `f` on the namespace without changing it. The version returned
    /// is what the answer may depend on: a reader must not be told about a
    /// change that could still be lost.
    pub fn read<T>(&self, f: impl FnOnce(&Meta) -> T) -> (T, u64) {
        let meta = self.lock();
        let out = f(&meta);
        (out, meta.version())
    }
}

pub fn lock_meta(meta: &Mutex<Meta>) -> MutexGuard<'_, Meta> {
    // A panic while holding the lock is a bug in an operation; every
    // operation validates before it applies, so the state is still whole.
    meta.lock().unwrap_or_else(|e| e.into_inner())
}

/// The namespace as the cluster sees it.
pub struct MetaCatalog(pub Arc<Mutex<Meta>>);

impl MetaCatalog {
    fn view(meta: &Meta, id: u64, now: u32) -> Option<CatalogChunk> {
        meta.chunk(id).map(|c| catalog_chunk(&c, now))
    }
}

/// How long a write lock is left to the write path that took it before the
/// chunk loop may finish its version change (see `CatalogChunk::stale_lock`).
const LOCK_GRACE_SECS: u32 = 10;

fn catalog_chunk(c: &crate::meta::ChunkInfo, now: u32) -> CatalogChunk {
    let locked = c.locked_until > now;
    let taken_at = c.locked_until.saturating_sub(crate::meta::LOCK_SECS);
    CatalogChunk {
        version: c.version,
        goal: c.goal,
        locked,
        stale_lock: locked && taken_at.saturating_add(LOCK_GRACE_SECS) <= now,
    }
}

pub fn unix_now() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
}

impl Catalog for MetaCatalog {
    fn chunk(&self, id: u64) -> Option<CatalogChunk> {
        MetaCatalog::view(&lock_meta(&self.0), id, unix_now())
    }

    fn chunks_from(&self, first: u64, limit: usize) -> Vec<(u64, CatalogChunk)> {
        let now = unix_now();
        let meta = lock_meta(&self.0);
        meta.chunks_from(first, limit).into_iter().map(|(id, c)| (id, catalog_chunk(&c, now))).collect()
    }

    fn metaid(&self) -> u64 {
        lock_meta(&self.0).metaid()
    }
}

/// The exports of `config`: its file, or, when `EXPORTS_FILENAME` was not
/// given and the default file does not exist, the open table.
pub fn load_exports(config: &MasterConfig) -> crate::Result<Exports> {
    if !config.exports_required && !config.exports_filename.exists() {
        tracing::warn!(
            "no EXPORTS_FILENAME and no {}: every client may mount anything read-write",
            config.exports_filename.display()
        );
        return Ok(Exports::open());
    }
    Exports::load(&config.exports_filename)
}
