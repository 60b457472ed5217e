//! The one function that changes a [`Meta`]: applying a record, live or on
//! replay. Every arm checks all it relies on before it changes anything, so
//! a refused record leaves the state as it was; the refusal is a `String`
//! because the caller (replay, or a bug in a mutating method) adds context.

use std::collections::BTreeMap;

use super::compact::ChunkList;
use super::node::{Body, Dir, Inode, Node, NodeType, CHUNK_SIZE};
use super::record::{Op, Record, SetMode};
use super::{ChunkInfo, Counts, Meta, Session, TrashEntry};

type Applied = Result<Counts, String>;

impl Meta {
    pub(super) fn apply(&mut self, rec: &Record) -> Applied {
        let ts = rec.ts;
        match &rec.op {
            Op::Create { parent, name, kind, mode, uid, gid, rdev, inode } => {
                let body = match kind {
                    NodeType::File => Body::File { length: 0, chunks: ChunkList::default() },
                    NodeType::Dir => Body::Dir(Box::new(Dir {
                        parent: *parent,
                        name: name.as_slice().into(),
                        entries: BTreeMap::new(),
                    })),
                    NodeType::Symlink => return Err("symlink through CREATE".into()),
                    NodeType::BlockDev | NodeType::CharDev => Body::Dev(*rdev),
                    NodeType::Fifo | NodeType::Socket => Body::Empty,
                };
                self.add_node(ts, *parent, name, *inode, *kind, *mode, *uid, *gid, body)
            }
            Op::Symlink { parent, name, target, uid, gid, inode } => {
                let body = Body::Symlink(target.clone().into_boxed_slice());
                self.add_node(ts, *parent, name, *inode, NodeType::Symlink, 0o777, *uid, *gid, body)
            }
            Op::Link { inode, parent, name } => {
                self.check_free_name(*parent, name)?;
                let node = self.live_node(*inode)?;
                if node.kind == NodeType::Dir {
                    return Err("hard link to a directory".into());
                }
                self.insert_entry(ts, *parent, name, *inode);
                let node = self.node_mut(*inode);
                node.nlink += 1;
                node.ctime = ts;
                Ok(Counts::default())
            }
            Op::Unlink { parent, name, inode } => {
                self.check_entry(*parent, name, *inode)?;
                if self.live_node(*inode)?.kind == NodeType::Dir {
                    return Err("UNLINK of a directory".into());
                }
                self.remove_entry(ts, *parent, name);
                Ok(Counts::default())
            }
            Op::Rmdir { parent, name, inode } => {
                self.check_entry(*parent, name, *inode)?;
                match self.live_node(*inode)?.dir() {
                    Some(d) if d.entries.is_empty() => {}
                    Some(_) => return Err("RMDIR of a non-empty directory".into()),
                    None => return Err("RMDIR of a non-directory".into()),
                }
                self.remove_entry(ts, *parent, name);
                Ok(Counts::default())
            }
            Op::Rename { src_parent, src_name, dst_parent, dst_name, inode } => {
                self.apply_rename(ts, *src_parent, src_name, *dst_parent, dst_name, *inode)
            }
            Op::Attr { inode, mode, uid, gid, atime, mtime } => {
                let node = self.nodes.get_mut(inode).ok_or_else(|| format!("no inode {inode}"))?;
                node.mode = mode & 0o7777;
                node.uid = *uid;
                node.gid = *gid;
                node.atime = *atime;
                node.mtime = *mtime;
                node.ctime = ts;
                Ok(Counts::default())
            }
            Op::Truncate { inode, length } => self.apply_truncate(ts, *inode, *length),
            Op::Write { inode, index, chunk, version, locked_until } => {
                self.apply_write(*inode, *index, *chunk, *version, *locked_until)
            }
            Op::Rollback { inode, index, chunk } => {
                let slot = self.file_slot(*inode, *index)?;
                if slot != *chunk {
                    return Err(format!("ROLLBACK of chunk {chunk}, slot holds {slot}"));
                }
                if let Body::File { chunks, .. } = &mut self.node_mut(*inode).body {
                    chunks.set(*index as usize, 0);
                }
                self.release_chunk(*chunk);
                Ok(Counts::default())
            }
            Op::WriteEnd { inode, chunk, length } => {
                if self.any_node(*inode)?.kind != NodeType::File {
                    return Err("WRITEEND on a non-file".into());
                }
                let info = self.chunks.get_mut(chunk).ok_or("WRITEEND of an unknown chunk")?;
                info.locked_until = 0;
                let node = self.node_mut(*inode);
                if let Body::File { length: len, .. } = &mut node.body {
                    *len = (*len).max(*length);
                }
                node.mtime = ts;
                node.ctime = ts;
                Ok(Counts::default())
            }
            Op::Unlock { chunk } => {
                self.chunks.get_mut(chunk).ok_or("UNLOCK of an unknown chunk")?.locked_until = 0;
                Ok(Counts::default())
            }
            Op::Revert { chunk, version } => {
                let info = self.chunks.get_mut(chunk).ok_or("REVERT of an unknown chunk")?;
                if info.version != version.wrapping_add(1) {
                    return Err(format!("REVERT of chunk {chunk} to {version} at version {}", info.version));
                }
                info.version = *version;
                info.locked_until = 0;
                Ok(Counts::default())
            }
            Op::SetGoal { inode, goal, recursive, mode, uid } => {
                if !(1..=9).contains(goal) {
                    return Err(format!("goal {goal} out of range"));
                }
                self.live_node(*inode)?;
                Ok(self.set_tree(ts, *inode, *recursive, *uid, &mut |node| update(&mut node.goal, *goal, *mode)))
            }
            Op::SetTrashTime { inode, trashtime, recursive, mode, uid } => {
                self.live_node(*inode)?;
                Ok(self
                    .set_tree(ts, *inode, *recursive, *uid, &mut |node| update(&mut node.trashtime, *trashtime, *mode)))
            }
            Op::Undel { inode, new_dirs } => {
                self.apply_undel(ts, *inode, new_dirs)?;
                Ok(Counts::default())
            }
            Op::TrashPath { inode, path } => {
                let entry =
                    self.trash.get_mut(inode).ok_or_else(|| format!("TRASHPATH of {inode}, not in the trash"))?;
                entry.path = path.as_slice().into();
                Ok(Counts::default())
            }
            Op::Purge { inode } => {
                if !self.trash.contains_key(inode) {
                    return Err(format!("PURGE of inode {inode}, not in the trash"));
                }
                self.trash.remove(inode);
                self.drop_file(ts, *inode);
                Ok(Counts::default())
            }
            Op::Session { id, root, info, root_path } => {
                if self.sessions.contains_key(id) {
                    return Err(format!("session {id} exists"));
                }
                let session = Session { root: *root, info: info.clone(), root_path: root_path.clone(), created: ts };
                self.sessions.insert(*id, session);
                self.next_session = self.next_session.max(id.wrapping_add(1)).max(1);
                Ok(Counts::default())
            }
            Op::CloseSession { id } => {
                self.sessions.remove(id).ok_or_else(|| format!("no session {id}"))?;
                for inode in self.open.of_session(*id) {
                    self.apply_release(ts, *id, inode);
                }
                Ok(Counts::default())
            }
            Op::Acquire { session, inode } => {
                self.apply_acquire(*session, *inode)?;
                Ok(Counts::default())
            }
            Op::Release { session, inode } => {
                if !self.open.contains(*session, *inode) {
                    return Err(format!("RELEASE of inode {inode} not held by session {session}"));
                }
                self.apply_release(ts, *session, *inode);
                Ok(Counts::default())
            }
            Op::Amtime { inode, atime, mtime, ctime } => {
                let node = self.nodes.get_mut(inode).ok_or_else(|| format!("no inode {inode}"))?;
                node.atime = *atime;
                node.mtime = *mtime;
                node.ctime = *ctime;
                Ok(Counts::default())
            }
        }
    }

    fn live_node(&self, inode: Inode) -> Result<&Node, String> {
        self.live(inode).map_err(|_| format!("no inode {inode}"))
    }

    /// Any node, trashed ones included: a file removed while open is still
    /// written, truncated and read through its inode.
    fn any_node(&self, inode: Inode) -> Result<&Node, String> {
        self.nodes.get(&inode).ok_or_else(|| format!("no inode {inode}"))
    }

    /// A node the caller has checked exists.
    pub(super) fn node_mut(&mut self, inode: Inode) -> &mut Node {
        match self.nodes.get_mut(&inode) {
            Some(n) => n,
            None => panic!("inode {inode} was checked to exist"),
        }
    }

    fn dir_mut(&mut self, inode: Inode) -> &mut Dir {
        match self.node_mut(inode).dir_mut() {
            Some(d) => d,
            None => panic!("inode {inode} was checked to be a directory"),
        }
    }

    fn check_free_name(&self, parent: Inode, name: &[u8]) -> Result<(), String> {
        let (_, dir) = self.dir(parent).map_err(|s| format!("parent {parent}: {s:?}"))?;
        if dir.entries.contains_key(name) {
            return Err(format!("name exists in {parent}"));
        }
        Ok(())
    }

    fn check_entry(&self, parent: Inode, name: &[u8], inode: Inode) -> Result<(), String> {
        let (_, dir) = self.dir(parent).map_err(|s| format!("parent {parent}: {s:?}"))?;
        match dir.entries.get(name) {
            Some(i) if *i == inode => Ok(()),
            Some(i) => Err(format!("entry names inode {i}, record says {inode}")),
            None => Err(format!("no such entry in {parent}")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_node(
        &mut self,
        ts: u32,
        parent: Inode,
        name: &[u8],
        inode: Inode,
        kind: NodeType,
        mode: u16,
        uid: u32,
        gid: u32,
        body: Body,
    ) -> Applied {
        self.check_free_name(parent, name)?;
        if inode != self.next_inode && !self.nodes.take_free_peek(inode) {
            return Err(format!("inode {inode} is neither the next nor the oldest free number"));
        }
        let p = self.live_node(parent)?;
        let node = Node {
            kind,
            goal: p.goal,
            mode: mode & 0o7777,
            uid,
            gid,
            atime: ts,
            mtime: ts,
            ctime: ts,
            nlink: if kind == NodeType::Dir { 2 } else { 1 },
            trashtime: p.trashtime,
            body,
        };
        if !self.nodes.take_free(inode) {
            self.next_inode += 1;
        }
        self.nodes.insert(inode, node);
        self.insert_entry(ts, parent, name, inode);
        Ok(Counts::default())
    }

    /// Adds an entry to a checked directory; a directory child becomes its
    /// child for `..` and counts in the parent's nlink.
    pub(super) fn insert_entry(&mut self, ts: u32, parent: Inode, name: &[u8], inode: Inode) {
        let is_dir = match self.node_mut(inode).dir_mut() {
            Some(d) => {
                d.parent = parent;
                d.name = name.into();
                true
            }
            None => false,
        };
        self.dir_mut(parent).entries.insert(name.into(), inode);
        let p = self.node_mut(parent);
        p.mtime = ts;
        p.ctime = ts;
        if is_dir {
            p.nlink += 1;
        }
    }

    /// Removes a checked entry and drops one link of its node: the last link
    /// of a file with a trash time sends it to the trash, any other last link
    /// frees the node.
    fn remove_entry(&mut self, ts: u32, parent: Inode, name: &[u8]) {
        let path = self.path_of(parent, name);
        let Some(inode) = self.dir_mut(parent).entries.remove(name) else {
            panic!("entry was checked to exist");
        };
        let p = self.node_mut(parent);
        p.mtime = ts;
        p.ctime = ts;
        let node = self.node_mut(inode);
        if node.kind == NodeType::Dir {
            self.node_mut(parent).nlink -= 1;
            self.free_node(inode, ts);
            return;
        }
        node.nlink -= 1;
        node.ctime = ts;
        if node.nlink > 0 {
            return;
        }
        if node.kind == NodeType::File && node.trashtime > 0 {
            self.trash.insert(inode, TrashEntry { path: path.into_boxed_slice() });
        } else {
            self.drop_file(ts, inode);
        }
    }

    /// The path of `name` in directory `dir`, from the root, without a
    /// leading '/'. Bounded by the depth of the tree, which has no cycles.
    pub(super) fn path_of(&self, dir: Inode, name: &[u8]) -> Vec<u8> {
        let mut parts: Vec<&[u8]> = vec![name];
        let mut at = dir;
        while at != super::ROOT {
            let Some(d) = self.nodes.get(&at).and_then(Node::dir) else { break };
            parts.push(&d.name);
            at = d.parent;
        }
        parts.reverse();
        parts.join(&b'/')
    }

    pub(super) fn free_node(&mut self, inode: Inode, ts: u32) {
        if let Some(node) = self.nodes.remove(&inode, ts) {
            for &c in node.chunks() {
                if c != 0 {
                    self.release_chunk(c);
                }
            }
        }
    }

    pub(super) fn release_chunk(&mut self, chunk: u64) {
        if let Some(info) = self.chunks.get_mut(&chunk) {
            info.refs -= 1;
            if info.refs == 0 {
                self.chunks.remove(&chunk);
                self.released.push(chunk);
            }
        }
    }

    fn apply_rename(
        &mut self,
        ts: u32,
        src_parent: Inode,
        src_name: &[u8],
        dst_parent: Inode,
        dst_name: &[u8],
        inode: Inode,
    ) -> Applied {
        self.check_entry(src_parent, src_name, inode)?;
        let (_, dst) = self.dir(dst_parent).map_err(|s| format!("parent {dst_parent}: {s:?}"))?;
        let existing = dst.entries.get(dst_name).copied();
        let moving_dir = self.live_node(inode)?.kind == NodeType::Dir;
        if moving_dir && self.is_ancestor(inode, dst_parent) {
            return Err("directory moved into its own subtree".into());
        }
        if existing == Some(inode) {
            return Ok(Counts::default());
        }
        if let Some(old) = existing {
            let old = self.live_node(old)?;
            match (moving_dir, old.dir()) {
                (true, Some(d)) if d.entries.is_empty() => {}
                (true, _) => return Err("directory replaces a non-directory or non-empty directory".into()),
                (false, Some(_)) => return Err("non-directory replaces a directory".into()),
                (false, None) => {}
            }
            self.remove_entry(ts, dst_parent, dst_name);
        }
        self.dir_mut(src_parent).entries.remove(src_name);
        let sp = self.node_mut(src_parent);
        sp.mtime = ts;
        sp.ctime = ts;
        if moving_dir {
            sp.nlink -= 1;
        }
        self.insert_entry(ts, dst_parent, dst_name, inode);
        self.node_mut(inode).ctime = ts;
        Ok(Counts::default())
    }

    /// Whether `dir` is `inode` or lies below it.
    pub(super) fn is_ancestor(&self, inode: Inode, mut dir: Inode) -> bool {
        loop {
            if dir == inode {
                return true;
            }
            match self.nodes.get(&dir).and_then(Node::dir) {
                Some(d) if dir != super::ROOT => dir = d.parent,
                _ => return false,
            }
        }
    }

    fn file_slot(&self, inode: Inode, index: u32) -> Result<u64, String> {
        match &self.any_node(inode)?.body {
            Body::File { chunks, .. } => Ok(chunks.get(index as usize)),
            _ => Err(format!("inode {inode} is not a file")),
        }
    }

    fn apply_write(&mut self, inode: Inode, index: u32, chunk: u64, version: u32, locked_until: u32) -> Applied {
        if index > super::MAX_INDEX || chunk == 0 {
            return Err("bad index or chunk".into());
        }
        let slot = self.file_slot(inode, index)?;
        let goal = self.any_node(inode)?.goal;
        if slot == 0 {
            if version != 1 || self.chunks.contains_key(&chunk) {
                return Err(format!("new chunk {chunk} version {version} in use or not 1"));
            }
            self.chunks.insert(chunk, ChunkInfo { version: 1, goal, locked_until, refs: 1 });
            self.next_chunk = self.next_chunk.max(chunk.wrapping_add(1));
        } else {
            if slot != chunk {
                return Err(format!("slot holds chunk {slot}, record says {chunk}"));
            }
            let info = self.chunks.get_mut(&chunk).ok_or("chunk missing from the table")?;
            info.version = version;
            info.locked_until = locked_until;
        }
        if let Body::File { length, chunks } = &mut self.node_mut(inode).body {
            chunks.set(index as usize, chunk);
            *length = (*length).max(u64::from(index) * CHUNK_SIZE);
        }
        Ok(Counts::default())
    }

    fn apply_truncate(&mut self, ts: u32, inode: Inode, new_length: u64) -> Applied {
        let node = self.any_node(inode)?;
        let Body::File { length, chunks } = &node.body else {
            return Err(format!("TRUNCATE of non-file {inode}"));
        };
        let changed = *length != new_length;
        let keep = new_length.div_ceil(CHUNK_SIZE) as usize;
        let dropped: Vec<u64> = chunks.as_slice().iter().skip(keep).copied().filter(|c| *c != 0).collect();
        let boundary = boundary_chunk(chunks.as_slice(), new_length).filter(|_| changed);
        if let Some(c) = boundary {
            self.chunks.get_mut(&c).ok_or("boundary chunk missing from the table")?.version += 1;
        }
        let node = self.node_mut(inode);
        if let Body::File { length, chunks } = &mut node.body {
            *length = new_length;
            chunks.truncate(keep);
        }
        node.mtime = ts;
        node.ctime = ts;
        for c in dropped {
            self.release_chunk(c);
        }
        Ok(Counts::default())
    }

    /// Applies `change` to `inode` and, if `recursive`, to everything below
    /// it; nodes `uid` (unless root) does not own are left alone and counted.
    fn set_tree(
        &mut self,
        ts: u32,
        inode: Inode,
        recursive: bool,
        uid: u32,
        change: &mut dyn FnMut(&mut Node) -> bool,
    ) -> Counts {
        let mut counts = Counts::default();
        let mut todo = vec![inode];
        while let Some(i) = todo.pop() {
            let node = self.node_mut(i);
            if recursive {
                if let Some(d) = node.dir() {
                    todo.extend(d.entries.values().rev());
                }
            }
            if uid != 0 && node.uid != uid {
                counts.not_permitted += 1;
            } else if change(node) {
                node.ctime = ts;
                counts.changed += 1;
                let goal = node.goal;
                let chunks: Vec<u64> = node.chunks().iter().copied().filter(|c| *c != 0).collect();
                for c in chunks {
                    if let Some(info) = self.chunks.get_mut(&c) {
                        info.goal = if info.refs == 1 { goal } else { info.goal.max(goal) };
                    }
                }
            } else {
                counts.not_changed += 1;
            }
        }
        counts
    }
}

/// The chunk holding the last byte of a file of `length`, when `length`
/// ends inside a chunk (not on a border) and that chunk is not a hole.
pub(super) fn boundary_chunk(chunks: &[u64], length: u64) -> Option<u64> {
    if length.is_multiple_of(CHUNK_SIZE) {
        return None;
    }
    chunks.get((length / CHUNK_SIZE) as usize).copied().filter(|c| *c != 0)
}

fn update<T: PartialOrd + Copy>(field: &mut T, value: T, mode: SetMode) -> bool {
    let take = match mode {
        SetMode::Set => *field != value,
        SetMode::IncreaseOnly => value > *field,
        SetMode::DecreaseOnly => value < *field,
    };
    if take {
        *field = value;
    }
    take
}
