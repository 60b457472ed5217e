//! The trash: removed files kept for their trash time with the path they
//! had, purged when it has passed, restorable until then (`undel`), as the
//! meta mount shows them.

use super::node::{Body, Dir, Inode, NodeType, NAME_MAX, ROOT};
use super::record::Op;
use super::{Meta, Status};

/// Mode of the directories `undel` creates to rebuild a missing path.
const UNDEL_DIR_MODE: u16 = 0o755;

/// How `undel` rebuilds a trashed file's path.
pub(super) struct UndelPlan<'a> {
    /// Every part of the path; the last is the file's name.
    parts: Vec<&'a [u8]>,
    /// How many leading directories exist already.
    existing: usize,
    /// The directory the first missing part goes into (or the file, if none is missing).
    at: Inode,
}

impl Meta {
    /// Removes for good every trashed file whose atime, mtime and ctime (the
    /// deletion time) are all older than its trash time; one record each.
    /// Returns how many were purged.
    pub fn purge_trash(&mut self, now: u32) -> usize {
        let due: Vec<Inode> = self
            .trash
            .keys()
            .copied()
            .filter(|i| {
                self.nodes.get(i).is_some_and(|n| {
                    let last = n.atime.max(n.mtime).max(n.ctime);
                    u64::from(last) + u64::from(n.trashtime) <= u64::from(now)
                })
            })
            .collect();
        for &inode in &due {
            self.commit(now, Op::Purge { inode });
        }
        due.len()
    }

    /// Removes one trashed file for good now (the meta mount's purge).
    pub fn purge(&mut self, inode: Inode, now: u32) -> Result<(), Status> {
        if !self.trash.contains_key(&inode) {
            return Err(Status::ENOENT);
        }
        self.commit(now, Op::Purge { inode });
        Ok(())
    }

    /// The trashed files with the paths they had, in inode order.
    pub fn trash_list(&self) -> Vec<(Inode, Vec<u8>)> {
        self.trash.iter().map(|(i, t)| (*i, t.path.to_vec())).collect()
    }

    /// Puts a trashed file back at its path, creating missing directories
    /// (root-owned, mode 0755) on the way.
    pub fn undel(&mut self, inode: Inode, now: u32) -> Result<(), Status> {
        let plan = self.undel_plan(inode)?;
        let missing = plan.parts.len() - 1 - plan.existing;
        let new_dirs = self.nodes.next_free_n(now, self.next_inode, missing);
        self.commit(now, Op::Undel { inode, new_dirs });
        Ok(())
    }

    /// Changes the path a trashed file will be restored to.
    pub fn set_trash_path(&mut self, inode: Inode, path: &[u8], now: u32) -> Result<(), Status> {
        if !self.trash.contains_key(&inode) {
            return Err(Status::ENOENT);
        }
        if path.is_empty() || path.len() > 4096 || path.contains(&0) {
            return Err(Status::EINVAL);
        }
        self.commit(now, Op::TrashPath { inode, path: path.to_vec() });
        Ok(())
    }

    /// Checks that a trashed file's path can be rebuilt: parts are valid
    /// names, existing parts are directories, the last part is free.
    pub(super) fn undel_plan(&self, inode: Inode) -> Result<UndelPlan<'_>, Status> {
        let path = &self.trash.get(&inode).ok_or(Status::ENOENT)?.path;
        let parts: Vec<&[u8]> = path.split(|b| *b == b'/').skip_while(|p| p.is_empty()).collect();
        let bad = |p: &&[u8]| p.is_empty() || p.len() > NAME_MAX || *p == b"." || *p == b".." || p.contains(&0);
        if parts.is_empty() || parts.iter().any(bad) {
            return Err(Status::CANTCREATEPATH);
        }
        let mut at = ROOT;
        let mut existing = 0;
        for (i, part) in parts.iter().enumerate() {
            let (_, dir) = self.dir(at)?;
            let Some(&child) = dir.entries.get(*part) else { break };
            if i == parts.len() - 1 {
                return Err(Status::EEXIST);
            }
            if self.live(child)?.kind != NodeType::Dir {
                return Err(Status::CANTCREATEPATH);
            }
            at = child;
            existing += 1;
        }
        Ok(UndelPlan { parts, existing, at })
    }

    /// Applies `UNDEL`.
    pub(super) fn apply_undel(&mut self, ts: u32, inode: Inode, new_dirs: &[Inode]) -> Result<(), String> {
        let plan = self.undel_plan(inode).map_err(|s| format!("UNDEL of {inode}: {s:?}"))?;
        let missing = plan.parts.len() - 1 - plan.existing;
        if self.nodes.next_free_n(ts, self.next_inode, missing) != new_dirs {
            return Err(format!("UNDEL of {inode}: directory inodes {new_dirs:?} are not the next free ones"));
        }
        let names: Vec<Vec<u8>> = plan.parts.iter().map(|p| p.to_vec()).collect();
        let mut at = plan.at;
        for (name, &dir) in names[plan.existing..names.len() - 1].iter().zip(new_dirs) {
            let body =
                Body::Dir(Box::new(Dir { parent: at, name: name.as_slice().into(), entries: Default::default() }));
            self.add_node(ts, at, name, dir, NodeType::Dir, UNDEL_DIR_MODE, 0, 0, body)?;
            at = dir;
        }
        self.trash.remove(&inode);
        self.insert_entry(ts, at, &names[names.len() - 1], inode);
        let node = self.node_mut(inode);
        node.nlink = 1;
        node.ctime = ts;
        Ok(())
    }
}
