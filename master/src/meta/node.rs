//! One inode in memory: its attributes, and what only its kind has (a file's
//! chunk list, a directory's entries, a symlink's target, a device number).
//!
//! Memory matters more than anywhere else in the master, since there is one
//! `Node` per file of the file system: the common part is 32 bytes and the
//! kind-specific part is boxed for the rarer kinds, so a file costs 72 bytes
//! plus its chunk list.

use std::collections::BTreeMap;

use super::compact::{ChunkList, Name};

pub type Inode = u32;

/// The root directory; MooseFS's `MFS_ROOT_ID`.
pub const ROOT: Inode = 1;

/// Size of one chunk's data area: a file's byte `b` is in chunk `b / CHUNK_SIZE`.
pub const CHUNK_SIZE: u64 = 64 << 20;

/// Longest name a directory entry may hold (MooseFS `MAXFNAMELENG`).
pub const NAME_MAX: usize = 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum NodeType {
    File = 1,
    Dir = 2,
    Symlink = 3,
    Fifo = 4,
    BlockDev = 5,
    CharDev = 6,
    Socket = 7,
}

impl NodeType {
    /// The MooseFS `TYPE_*` number, used on the wire and in records.
    pub fn wire(self) -> u8 {
        self as u8
    }

    pub fn from_wire(n: u8) -> Option<NodeType> {
        Some(match n {
            1 => NodeType::File,
            2 => NodeType::Dir,
            3 => NodeType::Symlink,
            4 => NodeType::Fifo,
            5 => NodeType::BlockDev,
            6 => NodeType::CharDev,
            7 => NodeType::Socket,
            _ => return None,
        })
    }
}

/// A directory's own data. Entries are ordered by name so listings and
/// snapshots come out the same on every replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dir {
    /// The one directory holding this one (a directory has no hard links);
    /// the root is its own parent.
    pub parent: Inode,
    /// This directory's name in `parent`, so a path is found without
    /// scanning the parents' entries (empty for the root).
    pub name: Box<[u8]>,
    pub entries: BTreeMap<Name, Inode>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `chunks[i]` is the chunk holding bytes `i*CHUNK_SIZE..`; 0 is a hole.
    File {
        length: u64,
        chunks: ChunkList,
    },
    Dir(Box<Dir>),
    Symlink(Box<[u8]>),
    /// Block and char devices: `major:16 minor:16`.
    Dev(u32),
    /// Fifos and sockets.
    Empty,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeType,
    pub goal: u8,
    /// Permission bits and suid/sgid/sticky (07777).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: u32,
    pub mtime: u32,
    pub ctime: u32,
    pub nlink: u32,
    /// Seconds a removed file stays in the trash.
    pub trashtime: u32,
    pub body: Body,
}

impl Node {
    pub fn dir(&self) -> Option<&Dir> {
        match &self.body {
            Body::Dir(d) => Some(d),
            _ => None,
        }
    }

    pub fn dir_mut(&mut self) -> Option<&mut Dir> {
        match &mut self.body {
            Body::Dir(d) => Some(d),
            _ => None,
        }
    }

    /// Length of a file, 0 for every other kind.
    pub fn length(&self) -> u64 {
        match &self.body {
            Body::File { length, .. } => *length,
            _ => 0,
        }
    }

    pub fn chunks(&self) -> &[u64] {
        match &self.body {
            Body::File { chunks, .. } => chunks.as_slice(),
            _ => &[],
        }
    }

    pub fn attr(&self) -> Attr {
        let size = match &self.body {
            Body::File { length, .. } => *length,
            Body::Dir(d) => d.entries.len() as u64,
            Body::Symlink(t) => t.len() as u64,
            Body::Dev(rdev) => u64::from(*rdev),
            Body::Empty => 0,
        };
        Attr {
            kind: self.kind,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
            nlink: self.nlink,
            size,
        }
    }
}

/// The attributes a client sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub kind: NodeType,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: u32,
    pub mtime: u32,
    pub ctime: u32,
    pub nlink: u32,
    /// File: length in bytes. Directory: number of entries (encoded for the
    /// wire by [`dir_size_code`]). Symlink: target length. Device: rdev.
    pub size: u64,
}

/// `MATTR_NOXATTR`: tells the client there are no xattrs, which saves it a
/// getxattr round trip on most operations.
const FLAG_NO_XATTR: u8 = 0x08;

impl Attr {
    /// The 36-byte ATTR record of `moosefs-wire.md` §8.3.
    pub fn to_wire(&self) -> [u8; 36] {
        let mut b = [0u8; 36];
        b[0] = FLAG_NO_XATTR;
        let tm = (u16::from(self.kind.wire()) << 12) | (self.mode & 0o7777);
        b[1..3].copy_from_slice(&tm.to_be_bytes());
        b[3..7].copy_from_slice(&self.uid.to_be_bytes());
        b[7..11].copy_from_slice(&self.gid.to_be_bytes());
        b[11..15].copy_from_slice(&self.atime.to_be_bytes());
        b[15..19].copy_from_slice(&self.mtime.to_be_bytes());
        b[19..23].copy_from_slice(&self.ctime.to_be_bytes());
        b[23..27].copy_from_slice(&self.nlink.to_be_bytes());
        let size = match self.kind {
            NodeType::File | NodeType::Symlink => self.size,
            // MooseFS reports the total length of the files below the
            // directory; elkfs keeps no per-directory totals yet and reports
            // a size that grows with the number of entries instead.
            NodeType::Dir => dir_size_code(self.size * DIR_ENTRY_BYTES),
            // rdev sits in the high half: `rdev:32 0:32`.
            NodeType::BlockDev | NodeType::CharDev => self.size << 32,
            NodeType::Fifo | NodeType::Socket => 0,
        };
        b[27..35].copy_from_slice(&size.to_be_bytes());
        b
    }
}

/// Bytes a directory entry counts for in a directory's reported size; only
/// the order of magnitude matters to anyone reading it.
const DIR_ENTRY_BYTES: u64 = 32;

/// The decimal-float "size" a MooseFS master reports for a directory: the
/// millions digit is the binary order (0 bytes, 1 KiB, 2 MiB, …) and the rest
/// is the value in that unit times 100. Example: 3000 bytes → (300000 >> 10)
/// + 1 000 000 = 1 000 292, which the client shows as "2.92K".
pub fn dir_size_code(bytes: u64) -> u64 {
    if bytes == 0 {
        return 1;
    }
    if bytes < 1 << 10 {
        return bytes * 100;
    }
    let mut order = 1u64;
    while order < 4 && bytes >= 1u64 << (10 * (order + 1)) {
        order += 1;
    }
    if order == 4 && bytes >= 1u64 << 50 {
        // Beyond 1 PiB the value is pre-shifted so `×100` cannot overflow.
        if bytes < 1u64 << 60 {
            return (((bytes >> 10) * 100) >> 40) + 5_000_000;
        }
        return (((bytes >> 10) * 100) >> 50) + 6_000_000;
    }
    ((bytes * 100) >> (10 * order)) + order * 1_000_000
}

const _: () = assert!(std::mem::size_of::<Node>() <= 56, "a Node is paid once per file");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_size_codes() {
        assert_eq!(dir_size_code(0), 1);
        assert_eq!(dir_size_code(512), 51_200);
        assert_eq!(dir_size_code(3000), 1_000_292);
        assert_eq!(dir_size_code(5 << 20), 2_000_500);
        assert_eq!(dir_size_code(1 << 30), 3_000_100);
        assert_eq!(dir_size_code(1 << 40), 4_000_100);
        assert_eq!(dir_size_code(1 << 50), 5_000_100);
        assert_eq!(dir_size_code(1 << 60), 6_000_100);
    }

    #[test]
    fn wire_attr_layout() {
        let a = Attr {
            kind: NodeType::CharDev,
            mode: 0o1644,
            uid: 7,
            gid: 8,
            atime: 1,
            mtime: 2,
            ctime: 3,
            nlink: 1,
            size: 0x0102_0003,
        };
        let w = a.to_wire();
        assert_eq!(w[0], 0x08);
        assert_eq!(u16::from_be_bytes([w[1], w[2]]), (6 << 12) | 0o1644);
        assert_eq!(&w[3..7], &7u32.to_be_bytes());
        assert_eq!(&w[23..27], &1u32.to_be_bytes());
        assert_eq!(&w[27..31], &0x0102_0003u32.to_be_bytes());
        assert_eq!(&w[31..35], &[0, 0, 0, 0]);
        assert_eq!(w[35], 0);
    }
}
