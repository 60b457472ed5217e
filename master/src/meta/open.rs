//! Files held open by sessions, and *sustained* files: removed from the
//! namespace (last link gone, no trash time, or purged from the trash)
//! while some session still has them open. A sustained file keeps its
//! chunks and works through its inode until the last session releases it.
//!
//! Opens are persistent (records `ACQUIRE`/`RELEASE`, as in MooseFS), so a
//! client that reconnects after a master restart still finds the files it
//! had open, unlinked ones included.

use std::collections::{BTreeMap, BTreeSet};

use super::node::{Inode, NodeType};
use super::record::Op;
use super::{Meta, Status};

/// Who holds what open.
#[derive(Debug, Default)]
pub struct OpenFiles {
    /// `(session, inode)` pairs; ordered so a session's files are adjacent.
    pairs: BTreeSet<(u32, Inode)>,
    /// Number of sessions holding each inode; derived from `pairs`.
    count: BTreeMap<Inode, u32>,
}

impl OpenFiles {
    pub fn is_open(&self, inode: Inode) -> bool {
        self.count.contains_key(&inode)
    }

    pub fn contains(&self, session: u32, inode: Inode) -> bool {
        self.pairs.contains(&(session, inode))
    }

    pub fn insert(&mut self, session: u32, inode: Inode) {
        if self.pairs.insert((session, inode)) {
            *self.count.entry(inode).or_default() += 1;
        }
    }

    /// Removes a pair; true when that was the inode's last opener.
    pub fn remove(&mut self, session: u32, inode: Inode) -> bool {
        if !self.pairs.remove(&(session, inode)) {
            return false;
        }
        match self.count.get_mut(&inode) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                self.count.remove(&inode);
                true
            }
        }
    }

    pub fn of_session(&self, session: u32) -> Vec<Inode> {
        self.pairs.range((session, 0)..=(session, Inode::MAX)).map(|p| p.1).collect()
    }

    pub fn pairs(&self) -> impl Iterator<Item = &(u32, Inode)> {
        self.pairs.iter()
    }
}

impl Meta {
    /// Records that `session` opened `inode` (the caller checked access).
    /// Directories are not tracked: they are never kept after removal.
    pub fn open(&mut self, session: u32, inode: Inode, now: u32) -> Result<(), Status> {
        if !self.sessions.contains_key(&session) {
            return Err(Status::BADSESSIONID);
        }
        if self.any(inode)?.kind != NodeType::Dir && !self.open.contains(session, inode) {
            self.commit(now, Op::Acquire { session, inode });
        }
        Ok(())
    }

    /// `session` no longer holds `inode`; a sustained file whose last
    /// opener this was goes away.
    pub fn release(&mut self, session: u32, inode: Inode, now: u32) {
        if self.open.contains(session, inode) {
            self.commit(now, Op::Release { session, inode });
        }
    }

    /// The client's periodic list of the inodes it holds open: the rest of
    /// what the session held is released, new ones are acquired.
    pub fn sync_open(&mut self, session: u32, inodes: &[Inode], now: u32) -> Result<(), Status> {
        if !self.sessions.contains_key(&session) {
            return Err(Status::BADSESSIONID);
        }
        let want: BTreeSet<Inode> =
            inodes.iter().copied().filter(|i| self.nodes.get(i).is_some_and(|n| n.kind != NodeType::Dir)).collect();
        for inode in self.open.of_session(session) {
            if !want.contains(&inode) {
                self.commit(now, Op::Release { session, inode });
            }
        }
        for inode in want {
            if !self.open.contains(session, inode) {
                self.commit(now, Op::Acquire { session, inode });
            }
        }
        Ok(())
    }

    pub fn is_open(&self, inode: Inode) -> bool {
        self.open.is_open(inode)
    }

    /// Removed files kept alive by their openers, in inode order.
    pub fn sustained(&self) -> Vec<Inode> {
        self.sustained.iter().copied().collect()
    }

    /// Applies `ACQUIRE`.
    pub(super) fn apply_acquire(&mut self, session: u32, inode: Inode) -> Result<(), String> {
        if !self.sessions.contains_key(&session) || self.nodes.get(&inode).is_none_or(|n| n.kind == NodeType::Dir) {
            return Err(format!("ACQUIRE of inode {inode} by session {session}: no such session or non-directory"));
        }
        self.open.insert(session, inode);
        Ok(())
    }

    /// Applies `RELEASE` (and a closing session's releases).
    pub(super) fn apply_release(&mut self, ts: u32, session: u32, inode: Inode) {
        if self.open.remove(session, inode) && self.sustained.remove(&inode) {
            self.free_node(inode, ts);
        }
    }

    /// A file leaving the namespace (or the trash): kept as sustained while
    /// open, freed otherwise.
    pub(super) fn drop_file(&mut self, ts: u32, inode: Inode) {
        if self.open.is_open(inode) {
            self.sustained.insert(inode);
        } else {
            self.free_node(inode, ts);
        }
    }
}
