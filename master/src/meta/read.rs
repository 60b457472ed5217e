//! Reads: attributes, lookups, listings and statistics. Nothing here logs.

use super::node::{Attr, Body, Inode, NodeType, CHUNK_SIZE};
use super::perm::{check, R, X};
use super::{Ctx, Meta, Status};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub inode: Inode,
    pub kind: NodeType,
    pub attr: Attr,
}

/// Totals for statfs and the admin tools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaStats {
    pub inodes: u64,
    pub dirs: u64,
    pub files: u64,
    pub chunks: u64,
    pub trash_files: u64,
    pub trash_bytes: u64,
    /// Removed files kept because a session holds them open.
    pub sustained_files: u64,
    pub sustained_bytes: u64,
    /// Sum of the lengths of all files, trashed ones included.
    pub total_length: u64,
}

/// Totals of a tree for `mfsdirinfo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    pub inodes: u64,
    pub dirs: u64,
    pub files: u64,
    pub chunks: u64,
    pub length: u64,
    /// Bytes the chunks hold on one chunkserver, estimated as MooseFS does:
    /// data rounded up to 64 KiB blocks plus a 5 KiB header per chunk.
    pub size: u64,
    /// `size` times the goal.
    pub realsize: u64,
}

const BLOCK: u64 = 64 << 10;
const CHUNK_HEADER_BYTES: u64 = 5 << 10;

impl Meta {
    /// Attributes of any node, a trashed file included (a client may hold it
    /// open).
    pub fn getattr(&self, inode: Inode) -> Result<Attr, Status> {
        Ok(self.any(inode)?.attr())
    }

    pub fn lookup(&self, ctx: &Ctx, parent: Inode, name: &[u8]) -> Result<(Inode, Attr), Status> {
        let (pnode, dir) = self.dir(parent)?;
        check(ctx, pnode, X)?;
        let inode = match name {
            b"." => parent,
            b".." => dir.parent,
            _ => *dir.entries.get(name).ok_or(Status::ENOENT)?,
        };
        Ok((inode, self.live(inode)?.attr()))
    }

    /// The whole listing, starting with "." and "..".
    pub fn readdir(&self, ctx: &Ctx, dir: Inode) -> Result<Vec<DirEntry>, Status> {
        let (node, d) = self.dir(dir)?;
        check(ctx, node, R)?;
        let mut out = Vec::with_capacity(d.entries.len() + 2);
        let parent = self.live(d.parent)?;
        out.push(DirEntry { name: b".".to_vec(), inode: dir, kind: NodeType::Dir, attr: node.attr() });
        out.push(DirEntry { name: b"..".to_vec(), inode: d.parent, kind: NodeType::Dir, attr: parent.attr() });
        for (name, &inode) in &d.entries {
            let n = self.live(inode)?;
            out.push(DirEntry { name: name.as_bytes().to_vec(), inode, kind: n.kind, attr: n.attr() });
        }
        Ok(out)
    }

    pub fn readlink(&self, inode: Inode) -> Result<Vec<u8>, Status> {
        match &self.live(inode)?.body {
            Body::Symlink(t) => Ok(t.to_vec()),
            _ => Err(Status::EINVAL),
        }
    }

    /// Totals over the whole file system; a scan of every inode, cheap
    /// enough for statfs at a few million files.
    pub fn stats(&self) -> MetaStats {
        let mut s =
            MetaStats { inodes: self.nodes.len() as u64, chunks: self.chunks.len() as u64, ..MetaStats::default() };
        for n in self.nodes.values() {
            match n.kind {
                NodeType::Dir => s.dirs += 1,
                NodeType::File => s.files += 1,
                _ => {}
            }
            s.total_length += n.length();
        }
        for n in self.trash.keys().filter_map(|i| self.nodes.get(i)) {
            s.trash_files += 1;
            s.trash_bytes += n.length();
        }
        for n in self.sustained.iter().filter_map(|i| self.nodes.get(i)) {
            s.sustained_files += 1;
            s.sustained_bytes += n.length();
        }
        s
    }

    pub fn dir_stats(&self, inode: Inode) -> Result<DirStats, Status> {
        let mut s = DirStats::default();
        self.walk(inode, &mut |n| {
            s.inodes += 1;
            match n.kind {
                NodeType::Dir => s.dirs += 1,
                NodeType::File => s.files += 1,
                _ => {}
            }
            let length = n.length();
            s.length += length;
            let mut size = 0;
            for (i, &c) in n.chunks().iter().enumerate() {
                if c == 0 {
                    continue;
                }
                s.chunks += 1;
                let start = i as u64 * CHUNK_SIZE;
                let data = length.saturating_sub(start).min(CHUNK_SIZE);
                size += data.div_ceil(BLOCK) * BLOCK + CHUNK_HEADER_BYTES;
            }
            s.size += size;
            s.realsize += size * u64::from(n.goal);
        })?;
        Ok(s)
    }
}
