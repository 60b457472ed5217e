//! The namespace state machine: inodes, directories, the chunk catalogue,
//! the trash and client sessions, all in memory.
//!
//! **The rule:** the only way to change a [`Meta`] is a changelog
//! [`Record`]. A mutating method checks the request (existence,
//! permissions, limits), builds a record holding everything the change
//! needs (time, allocated inode and chunk numbers, versions), applies it
//! with the same function [`Meta::replay`] uses, and appends
//! `(version, record)` to a pending list. The caller drains that list with
//! [`Meta::drain_log`], writes it to the changelog and syncs it before it
//! answers the client. So a snapshot taken at version `v` plus the records
//! `v+1..` rebuilds the live state exactly; a test checks this over random
//! operation sequences by comparing snapshot bytes.
//!
//! Nothing here opens a file, a socket, a thread or reads a clock: time
//! comes in through [`Ctx::now`] and `now` arguments.
//!
//! Modules: [`node`] (one inode), `compact` (inline chunk lists and names),
//! `table` (the inode table, delayed reuse of numbers), [`record`] (records
//! and their text form), `apply` (the one function that changes state),
//! `namespace` (create, link, unlink, rename, setattr), `file` (chunks:
//! write, truncate), `tree` (goal, trash time, sessions), `trash` (purge,
//! undel), `open` (open and sustained files), `read` (lookups and
//! statistics), `perm` (POSIX permission checks), [`snapshot`] (the binary
//! image; its format is described there).
//!
//! Memory: about 180–210 bytes of RSS per file of one chunk (measured with
//! 1 M and 200 k files, `tests/memory.rs`): a 56-byte node in a vector
//! indexed by inode, a directory entry with an inline name, a chunk-table
//! entry.

mod apply;
mod compact;
mod file;
mod namespace;
pub mod node;
mod open;
mod perm;
mod read;
pub mod record;
mod sessions;
pub mod snapshot;
mod table;
mod trash;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::error::{Error, Result};

pub use elkfs_proto::Status;
pub use file::{Truncated, WritePlan};
pub use namespace::{
    MAX_LINKS, SET_ATIME, SET_ATIME_NOW, SET_GID, SET_MODE, SET_MTIME, SET_MTIME_NOW, SET_UID, SET_WINATTR,
};
pub use node::{Attr, Inode, NodeType, CHUNK_SIZE, NAME_MAX, ROOT};
pub use read::{DirEntry, DirStats, MetaStats};
pub use record::{Op, Record, SetMode};

use node::{Body, Dir, Node};
use table::NodeTable;
pub use table::INODE_REUSE_DELAY;

/// Who asks and when. `uid` 0 bypasses permission checks, as root does in POSIX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ctx {
    pub uid: u32,
    /// The caller's groups; the first is the primary group, which new nodes get.
    pub gids: Vec<u32>,
    pub now: u32,
}

impl Ctx {
    pub fn root(now: u32) -> Ctx {
        Ctx { uid: 0, gids: vec![0], now }
    }
}

/// What the master knows of one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    pub version: u32,
    /// The highest goal of the files using the chunk.
    pub goal: u8,
    /// Unix seconds until which a writer holds the chunk; a lock older than
    /// `now` is free, so a writer that died loses it after the lease.
    pub locked_until: u32,
    /// Number of file slots pointing at the chunk; 0 never stays in the table.
    pub refs: u32,
}

/// A client session, kept across master restarts so clients can reconnect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub root: Inode,
    /// Opaque client description (host, mount point, version) for admin tools.
    pub info: Vec<u8>,
    pub root_path: Vec<u8>,
    pub created: u32,
}

/// A removed file waiting in the trash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashEntry {
    /// The path it had, from the root without a leading '/', for undelete.
    pub path: Box<[u8]>,
}

/// Outcome of `set_goal`/`set_trashtime` over a node or a tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub changed: u32,
    pub not_changed: u32,
    pub not_permitted: u32,
}

/// Seconds a chunk stays locked for a writer (MooseFS `LOCKTIMEOUT`).
pub const LOCK_SECS: u32 = 120;
/// Trash time of a new file system's root (24 h).
pub const DEFAULT_TRASHTIME: u32 = 86_400;
/// Goal of a new file system's root.
pub const DEFAULT_GOAL: u8 = 1;
/// Highest chunk index of a file (MooseFS `MAX_INDEX`).
pub const MAX_INDEX: u32 = 0x7FFF_FFFF;

#[derive(Debug)]
pub struct Meta {
    metaid: u64,
    version: u64,
    next_inode: Inode,
    next_chunk: u64,
    next_session: u32,
    nodes: NodeTable,
    trash: BTreeMap<Inode, TrashEntry>,
    chunks: BTreeMap<u64, ChunkInfo>,
    sessions: BTreeMap<u32, Session>,
    open: open::OpenFiles,
    /// Removed files still open somewhere (see `open`).
    sustained: std::collections::BTreeSet<Inode>,
    /// Applied records the caller has not drained yet; not persistent.
    log: Vec<(u64, Record)>,
    /// Chunks that lost their last reference; not persistent.
    released: Vec<u64>,
}

impl Meta {
    /// A file system holding only its root directory.
    pub fn new_fs(metaid: u64, now: u32) -> Meta {
        let root = Node {
            kind: NodeType::Dir,
            goal: DEFAULT_GOAL,
            mode: 0o777,
            uid: 0,
            gid: 0,
            atime: now,
            mtime: now,
            ctime: now,
            nlink: 2,
            trashtime: DEFAULT_TRASHTIME,
            body: Body::Dir(Box::new(Dir { parent: ROOT, name: Box::default(), entries: BTreeMap::new() })),
        };
        let mut meta = Meta::empty(metaid);
        meta.nodes.insert(ROOT, root);
        meta
    }

    fn empty(metaid: u64) -> Meta {
        Meta {
            metaid,
            version: 0,
            next_inode: ROOT + 1,
            next_chunk: 1,
            next_session: 1,
            nodes: NodeTable::default(),
            trash: BTreeMap::new(),
            chunks: BTreeMap::new(),
            sessions: BTreeMap::new(),
            open: open::OpenFiles::default(),
            sustained: std::collections::BTreeSet::new(),
            log: Vec::new(),
            released: Vec::new(),
        }
    }

    /// Number of the last applied record: the changelog position.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn metaid(&self) -> u64 {
        self.metaid
    }

    /// Applies a record read from a changelog (or received from the active
    /// master). Records must come in order, without gaps.
    pub fn replay(&mut self, version: u64, rec: &Record) -> Result<()> {
        if version != self.version + 1 {
            return Err(Error::Replay { version, why: format!("expected record {}", self.version + 1) });
        }
        self.apply(rec).map_err(|why| Error::Replay { version, why })?;
        self.version = version;
        Ok(())
    }

    /// The records applied since the last call, oldest first.
    pub fn drain_log(&mut self) -> Vec<(u64, Record)> {
        std::mem::take(&mut self.log)
    }

    /// Chunk ids no file uses any more since the last call; the caller has
    /// the chunkservers delete them.
    pub fn take_released(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.released)
    }

    /// Applies a record built by a mutating method and logs it. The method
    /// validated everything the record needs, so a refusal here is a bug.
    fn commit(&mut self, ts: u32, op: Op) -> Counts {
        let rec = Record { ts, op };
        let counts = match self.apply(&rec) {
            Ok(c) => c,
            Err(why) => panic!("a validated record must apply: {why}: {}", rec.to_text()),
        };
        self.version += 1;
        self.log.push((self.version, rec));
        counts
    }

    /// Any node, in the namespace or in the trash.
    fn any(&self, inode: Inode) -> Result<&Node, Status> {
        self.nodes.get(&inode).ok_or(Status::ENOENT)
    }

    /// A node reachable in the namespace (not in the trash).
    fn live(&self, inode: Inode) -> Result<&Node, Status> {
        match self.nodes.get(&inode) {
            Some(n) if !self.trash.contains_key(&inode) => Ok(n),
            _ => Err(Status::ENOENT),
        }
    }

    fn dir(&self, inode: Inode) -> Result<(&Node, &Dir), Status> {
        let node = self.live(inode)?;
        node.dir().map(|d| (node, d)).ok_or(Status::ENOTDIR)
    }

    pub fn session(&self, id: u32) -> Option<&Session> {
        self.sessions.get(&id)
    }
}
