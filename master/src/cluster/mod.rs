//! The master's chunkserver side: the volatile view of connected
//! chunkservers and the copies they hold, every command sent to them, and
//! the maintenance loop that keeps each chunk at its goal.
//!
//! The persistent chunk table (version, goal, lock) belongs to the
//! namespace and is read through [`Catalog`]. Lock order is namespace
//! before cluster: the cluster calls the catalog only from its own tasks
//! (connections, maintenance) and never while holding its own lock, and
//! none of the public methods below calls the catalog, so the namespace may
//! call them while holding its lock.
//!
//! Fault model: a chunkserver can vanish at any moment (its copies vanish
//! from the view, its commands fail), send garbage (that connection alone
//! closes), or never answer (commands time out and count as failed, which
//! makes the copy invalid when the outcome is unknown).

mod config;
mod decide;
mod link;
mod maintenance;
mod placement;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use elkfs_proto::master_cs::{MaToCs, Space};
use elkfs_proto::{Addr, Status};
use rand::seq::SliceRandom;
use tokio::sync::oneshot;

pub use config::{ClusterConfig, RepLimit};
use state::{OpKind, Pending, State};

/// How long after start the cluster counts as unstable (see [`Cluster::stable`]).
pub const STARTUP_UNSTABLE: std::time::Duration = std::time::Duration::from_secs(10);

/// A chunkserver's id, given by this master in the registration answer.
pub type CsId = u16;

/// What the namespace knows of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogChunk {
    pub version: u32,
    pub goal: u8,
    /// A write is (or was, when the master went down) in flight.
    pub locked: bool,
    /// Locked for a while already: a write path that bumped the version and
    /// has not brought any copy to it by now is not going to (its master
    /// went down). Only then does the loop bring copies forward itself;
    /// sooner, it would race the write path's own version change, which
    /// then finds its copies busy, fails, and reverts the namespace under
    /// copies the loop has moved on.
    pub stale_lock: bool,
}

/// The namespace's chunk table as the cluster reads it. Implementations
/// may take the namespace lock: the cluster never calls them while holding
/// its own.
pub trait Catalog: Send + Sync {
    fn chunk(&self, id: u64) -> Option<CatalogChunk>;
    /// Chunks with id ≥ `first`, in id order, at most `limit`.
    fn chunks_from(&self, first: u64, limit: usize) -> Vec<(u64, CatalogChunk)>;
    /// The file system's id, sent to chunkservers so they never join
    /// another file system's master.
    fn metaid(&self) -> u64;
}

/// A valid copy, as a client is told where to read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The server's data port.
    pub addr: Addr,
    pub cs_version: u32,
    pub labelmask: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyState {
    /// At the version the namespace last asked for (or none known yet).
    Valid,
    /// At another version: stale, to be deleted (or brought forward).
    WrongVersion,
    /// Damaged (CRC or I/O errors) or a command on it failed.
    Invalid,
    /// A version change or truncation is in flight.
    Busy,
    /// A deletion is in flight.
    Deleting,
}

/// One copy for `mfsfileinfo`/`mfscheckfile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyInfo {
    pub csid: CsId,
    pub addr: Addr,
    pub version: u32,
    pub state: CopyState,
    /// The copy lives on a disk marked for removal.
    pub on_removal_disk: bool,
}

/// One connected chunkserver, for admin tools and statfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub csid: CsId,
    pub addr: Addr,
    pub version: u32,
    pub labelmask: u32,
    pub space: Space,
    /// Copies the master knows on it.
    pub chunks: usize,
    pub connected_since: SystemTime,
    /// Disk errors it reported.
    pub errors: u32,
    pub load: u32,
    /// Its chunk list is complete.
    pub registered: bool,
}

pub struct Cluster {
    config: ClusterConfig,
    catalog: Arc<dyn Catalog>,
    state: Mutex<State>,
    started: Instant,
}

/// One command of a client-path operation: which server, what it does.
struct Target {
    cs: CsId,
    key_chunk: u64,
    kind: OpKind,
    new_version: u32,
    msg: MaToCs,
}

impl Cluster {
    pub fn new(config: ClusterConfig, catalog: Arc<dyn Catalog>) -> Arc<Cluster> {
        Arc::new(Cluster { config, catalog, state: Mutex::new(State::default()), started: Instant::now() })
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug elsewhere; the view is
        // still usable (every method leaves it consistent between steps).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves one chunkserver connection until it closes.
    pub async fn serve(self: Arc<Self>, stream: tokio::net::TcpStream) {
        let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "chunkserver".into());
        match link::run(&self, stream, &peer).await {
            Ok(()) => tracing::info!("chunkserver {peer} left"),
            Err(e) => tracing::warn!("chunkserver {peer}: {e}"),
        }
    }

    /// Starts the chunk loop (replication, deletion) on the current runtime.
    pub fn start_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(maintenance::run(self.clone()))
    }

    /// Sends each target its command and waits for the replies (bounded by
    /// the op timeout; silence counts as failure).
    async fn on_servers(&self, targets: Vec<Target>) -> Vec<(CsId, Status)> {
        let mut waiting = Vec::new();
        let mut out = Vec::new();
        {
            let mut st = self.lock();
            for t in targets {
                let (tx, rx) = oneshot::channel();
                let p = Pending { kind: t.kind, new_version: t.new_version, waiter: Some(tx), started: Instant::now() };
                if st.start(t.cs, t.key_chunk, p, t.msg) {
                    waiting.push((t.cs, t.key_chunk, t.kind, rx));
                } else {
                    out.push((t.cs, Status::DISCONNECTED));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.config.op_timeout;
        for (cs, chunk, kind, rx) in waiting {
            let status = match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(s)) => s,
                Ok(Err(_)) => Status::DISCONNECTED,
                Err(_) => {
                    let mut st = self.lock();
                    // Ours: our receiver is gone now, so its sender is closed.
                    let same = st
                        .pending
                        .get(&(cs, chunk))
                        .is_some_and(|p| p.kind == kind && p.waiter.as_ref().is_some_and(|w| w.is_closed()));
                    if same {
                        st.finish(cs, chunk, |_| true, Status::NOTDONE);
                    }
                    Status::NOTDONE
                }
            };
            out.push((cs, status));
        }
        out
    }

    /// Status for "no copy to work on": no servers at all, or the chunk lost.
    fn nothing_to_do_on(&self, st: &State) -> Status {
        if st.any_registered() {
            Status::CHUNKLOST
        } else {
            Status::NOCHUNKSERVERS
        }
    }

    fn outcome(results: &[(CsId, Status)], all_failed: Status) -> Result<(), Status> {
        if results.iter().any(|(_, s)| s.is_ok()) {
            Ok(())
        } else {
            Err(all_failed)
        }
    }

    /// Creates a new chunk on `goal` distinct servers (fewer if fewer have
    /// room: the loop replicates it later). Ok when one copy was made.
    pub async fn create_chunk(&self, id: u64, version: u32, goal: u8) -> Result<(), Status> {
        assert!(goal > 0, "chunk {id:016X} created with goal 0");
        let targets: Vec<Target> = {
            let mut st = self.lock();
            let loads = st.loads();
            let chosen = placement::pick_create(
                &loads,
                goal as usize,
                self.config.acceptable_percentage_difference,
                &mut rand::rng(),
            );
            if chosen.is_empty() {
                return Err(if st.any_registered() { Status::NOSPACE } else { Status::NOCHUNKSERVERS });
            }
            st.entry(id).known_version = Some(version);
            chosen
                .into_iter()
                .map(|cs| Target {
                    cs,
                    key_chunk: id,
                    kind: OpKind::Create,
                    new_version: version,
                    msg: MaToCs::Create { chunk: id, version },
                })
                .collect()
        };
        let results = self.on_servers(targets).await;
        let first_err = results.iter().map(|(_, s)| *s).find(|s| !s.is_ok()).unwrap_or(Status::NOSPACE);
        Self::outcome(&results, first_err)
    }

    /// Targets: every usable copy of `id` at `version`.
    fn copies_at(&self, id: u64, version: u32, make: impl Fn(CsId) -> Target) -> Result<Vec<Target>, Status> {
        let mut st = self.lock();
        let holders: Vec<CsId> = st
            .chunks
            .get(&id)
            .map(|e| {
                e.copies
                    .iter()
                    .filter(|c| c.version == version && !c.damaged && !c.busy && !c.deleting)
                    .map(|c| c.cs)
                    .collect()
            })
            .unwrap_or_default();
        if holders.is_empty() {
            let copies = st.chunks.get(&id).map(|e| e.copies.clone()).unwrap_or_default();
            let pending: Vec<_> =
                st.pending.iter().filter(|((_, c), _)| *c == id).map(|((cs, _), p)| (*cs, p.kind)).collect();
            tracing::info!(chunk = id, version, ?copies, ?pending, "no usable copy at that version");
            return Err(self.nothing_to_do_on(&st));
        }
        st.entry(id).known_version = Some(version);
        Ok(holders.into_iter().map(make).collect())
    }

    /// Renumbers every valid copy from `from` to `to`; copies that fail
    /// become invalid. Ok when one succeeded.
    pub async fn set_version(&self, id: u64, from: u32, to: u32) -> Result<(), Status> {
        let targets = self.copies_at(id, from, |cs| Target {
            cs,
            key_chunk: id,
            kind: OpKind::SetVersion,
            new_version: to,
            msg: MaToCs::SetVersion { chunk: id, new_version: to, old_version: from },
        })?;
        let results = self.on_servers(targets).await;
        self.note_version(id, to);
        Self::outcome(&results, Status::CHUNKLOST)
    }

    /// Cuts or extends every valid copy to `length` bytes, renumbering it
    /// from `from` to `to`.
    pub async fn truncate(&self, id: u64, from: u32, to: u32, length: u32) -> Result<(), Status> {
        let targets = self.copies_at(id, from, |cs| Target {
            cs,
            key_chunk: id,
            kind: OpKind::Truncate,
            new_version: to,
            msg: MaToCs::Truncate { chunk: id, length, new_version: to, old_version: from },
        })?;
        let results = self.on_servers(targets).await;
        self.note_version(id, to);
        Self::outcome(&results, Status::CHUNKLOST)
    }

    /// Copy-on-write after a snapshot: every server with a valid copy of
    /// `old_id` makes `new_id` from it; `length` also truncates the copy.
    pub async fn duplicate(
        &self,
        new_id: u64,
        new_version: u32,
        old_id: u64,
        old_version: u32,
        length: Option<u32>,
    ) -> Result<(), Status> {
        let targets = self.copies_at(old_id, old_version, |cs| Target {
            cs,
            key_chunk: new_id,
            kind: if length.is_some() { OpKind::DupTrunc } else { OpKind::Duplicate },
            new_version,
            msg: match length {
                None => MaToCs::Duplicate { new_chunk: new_id, new_version, old_chunk: old_id, old_version },
                Some(length) => {
                    MaToCs::DupTrunc { new_chunk: new_id, new_version, old_chunk: old_id, old_version, length }
                }
            },
        })?;
        self.lock().entry(new_id).known_version = Some(new_version);
        let results = self.on_servers(targets).await;
        Self::outcome(&results, Status::CHUNKLOST)
    }

    fn note_version(&self, id: u64, version: u32) {
        if let Some(e) = self.lock().chunks.get_mut(&id) {
            e.known_version = Some(version);
        }
    }

    /// Valid copies of `id` at `version`, in random order.
    pub fn locations(&self, id: u64, version: u32) -> Vec<Location> {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(e) = st.chunks.get_mut(&id) else { return Vec::new() };
        e.known_version = Some(version);
        let mut out: Vec<Location> = e
            .copies
            .iter()
            .filter(|c| c.version == version && !c.damaged && !c.deleting)
            .filter_map(|c| st.servers.get(&c.cs))
            .map(|s| Location { addr: s.addr, cs_version: s.version, labelmask: s.labelmask })
            .collect();
        out.shuffle(&mut rand::rng());
        out
    }

    /// Every copy the cluster knows of `id`, whatever its state.
    pub fn copies(&self, id: u64) -> Vec<CopyInfo> {
        let st = self.lock();
        let Some(e) = st.chunks.get(&id) else { return Vec::new() };
        e.copies
            .iter()
            .filter_map(|c| {
                let server = st.servers.get(&c.cs)?;
                let state = if c.deleting {
                    CopyState::Deleting
                } else if c.busy {
                    CopyState::Busy
                } else if c.damaged {
                    CopyState::Invalid
                } else if e.known_version.is_some_and(|v| v != c.version) {
                    CopyState::WrongVersion
                } else {
                    CopyState::Valid
                };
                Some(CopyInfo {
                    csid: c.cs,
                    addr: server.addr,
                    version: c.version,
                    state,
                    on_removal_disk: c.on_removal_disk,
                })
            })
            .collect()
    }

    /// The chunk is no longer used: its copies are deleted by the loop,
    /// within the per-server deletion limits.
    pub fn release(&self, id: u64) {
        let mut st = self.lock();
        let Some(e) = st.chunks.get_mut(&id) else { return };
        if !e.released {
            e.released = true;
            st.released.push_back(id);
        }
    }

    pub fn servers(&self) -> Vec<ServerInfo> {
        let st = self.lock();
        let mut counts = std::collections::HashMap::<CsId, usize>::new();
        for e in st.chunks.values() {
            for c in &e.copies {
                *counts.entry(c.cs).or_default() += 1;
            }
        }
        let mut out: Vec<ServerInfo> = st
            .servers
            .values()
            .map(|s| ServerInfo {
                csid: s.csid,
                addr: s.addr,
                version: s.version,
                labelmask: s.labelmask,
                space: s.space,
                chunks: counts.get(&s.csid).copied().unwrap_or(0),
                connected_since: s.connected_since,
                errors: s.errors,
                load: s.load,
                registered: s.registered,
            })
            .collect();
        out.sort_by_key(|s| s.csid);
        out
    }

    /// False while the set of copies may still grow: the first
    /// [`STARTUP_UNSTABLE`] after start, or while a server's chunk list is
    /// still arriving. MooseFS then refuses writes to chunks with fewer
    /// valid copies than their goal (`EAGAIN`), so a copy that is about to
    /// be reported is not left behind at an old version.
    pub fn stable(&self) -> bool {
        self.started.elapsed() >= STARTUP_UNSTABLE && self.lock().servers.values().all(|s| s.registered)
    }

    /// Total and available bytes over all connected servers (regular disks).
    pub fn totals(&self) -> (u64, u64) {
        let st = self.lock();
        st.servers
            .values()
            .fold((0, 0), |(t, a), s| (t + s.space.total, a + s.space.total.saturating_sub(s.space.used)))
    }
}
