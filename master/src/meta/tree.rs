//! Per-tree settings (goal, trash time), the trash sweep and sessions.

use super::node::{Inode, NodeType, ROOT};
use super::record::{Op, SetMode};
use super::{Counts, Ctx, Meta, Status};

impl Meta {
    pub fn get_goal(&self, inode: Inode) -> Result<u8, Status> {
        Ok(self.live(inode)?.goal)
    }

    pub fn get_trashtime(&self, inode: Inode) -> Result<u32, Status> {
        Ok(self.live(inode)?.trashtime)
    }

    /// For the tools' `-r` forms: how many files and directories below (and
    /// including) `inode` have each goal, as `(goal, files, dirs)` sorted by goal.
    pub fn goal_counts(&self, inode: Inode, recursive: bool) -> Result<Vec<(u8, u32, u32)>, Status> {
        let mut out = std::collections::BTreeMap::<u8, (u32, u32)>::new();
        self.walk_if(inode, recursive, &mut |n| {
            let e = out.entry(n.goal).or_default();
            if n.kind == NodeType::Dir {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        })?;
        Ok(out.into_iter().map(|(g, (f, d))| (g, f, d)).collect())
    }

    /// Like [`Meta::goal_counts`] for trash times.
    pub fn trashtime_counts(&self, inode: Inode, recursive: bool) -> Result<Vec<(u32, u32, u32)>, Status> {
        let mut out = std::collections::BTreeMap::<u32, (u32, u32)>::new();
        self.walk_if(inode, recursive, &mut |n| {
            let e = out.entry(n.trashtime).or_default();
            if n.kind == NodeType::Dir {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        })?;
        Ok(out.into_iter().map(|(t, (f, d))| (t, f, d)).collect())
    }

    /// Sets the goal of a node (or a tree); chunk goals follow. A non-root
    /// caller changes only what it owns; the rest counts as not permitted.
    pub fn set_goal(
        &mut self,
        ctx: &Ctx,
        inode: Inode,
        goal: u8,
        recursive: bool,
        mode: SetMode,
    ) -> Result<Counts, Status> {
        if !(1..=9).contains(&goal) {
            return Err(Status::EINVAL);
        }
        self.live(inode)?;
        Ok(self.commit(ctx.now, Op::SetGoal { inode, goal, recursive, mode, uid: ctx.uid }))
    }

    pub fn set_trashtime(
        &mut self,
        ctx: &Ctx,
        inode: Inode,
        trashtime: u32,
        recursive: bool,
        mode: SetMode,
    ) -> Result<Counts, Status> {
        self.live(inode)?;
        Ok(self.commit(ctx.now, Op::SetTrashTime { inode, trashtime, recursive, mode, uid: ctx.uid }))
    }

    /// Opens a session rooted at `root_path` ("/" or "/a/b"), which must
    /// name a directory. Returns the session id and the root inode.
    pub fn new_session(&mut self, info: &[u8], root_path: &[u8], now: u32) -> Result<(u32, Inode), Status> {
        let root = self.resolve(root_path)?;
        if self.live(root)?.kind != NodeType::Dir {
            return Err(Status::ENOTDIR);
        }
        let mut id = self.next_session.max(1);
        while self.sessions.contains_key(&id) {
            id = id.wrapping_add(1).max(1);
        }
        self.commit(now, Op::Session { id, root, info: info.to_vec(), root_path: root_path.to_vec() });
        Ok((id, root))
    }

    pub fn close_session(&mut self, id: u32, now: u32) -> Result<(), Status> {
        if !self.sessions.contains_key(&id) {
            return Err(Status::BADSESSIONID);
        }
        self.commit(now, Op::CloseSession { id });
        Ok(())
    }

    /// The inode of an absolute path, looked up as root.
    pub fn resolve(&self, path: &[u8]) -> Result<Inode, Status> {
        let mut at = ROOT;
        for part in path.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
            let (_, dir) = self.dir(at)?;
            at = match part {
                b"." => at,
                b".." => dir.parent,
                _ => *dir.entries.get(part).ok_or(Status::ENOENT)?,
            };
        }
        Ok(at)
    }

    /// Calls `f` on `inode` and every node below it, depth first.
    /// The whole tree under `inode` when `recursive`, else the node alone.
    fn walk_if(&self, inode: Inode, recursive: bool, f: &mut dyn FnMut(&super::node::Node)) -> Result<(), Status> {
        if recursive {
            self.walk(inode, f)
        } else {
            f(self.live(inode)?);
            Ok(())
        }
    }

    pub(super) fn walk(&self, inode: Inode, f: &mut dyn FnMut(&super::node::Node)) -> Result<(), Status> {
        let mut todo = vec![self.live(inode)?];
        while let Some(n) = todo.pop() {
            f(n);
            if let Some(d) = n.dir() {
                todo.extend(d.entries.values().filter_map(|i| self.nodes.get(i)));
            }
        }
        Ok(())
    }
}
