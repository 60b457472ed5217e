//! Typed metadata calls: one function per request, returning decoded
//! attributes. Each maps the reply it expects and calls anything else a
//! protocol error, so a confused master cannot hand a caller wrong data.

use elkfs_proto::client::{Attr, ChunkLoc, Cred, DirEntries, DirForm, MaToCl, READDIR_ATTRS};
use elkfs_proto::client::{ClToMa, EDGEID_MAX};

use super::session::Master;
use crate::error::{Error, Result};

/// File system totals (`STATFS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statfs {
    pub total: u64,
    pub avail: u64,
    pub trash: u64,
    pub sustained: u64,
    pub inodes: u32,
}

/// One directory entry with its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub inode: u32,
    pub attr: Attr,
}

/// The changes of a `SETATTR`; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `Some(None)` = now.
    pub atime: Option<Option<u32>>,
    pub mtime: Option<Option<u32>>,
}

/// What a create-like call returns.
pub type NewAttrs = (u32, Attr);

const SET_MODE: u8 = 0x02;
const SET_UID: u8 = 0x04;
const SET_GID: u8 = 0x08;
const SET_MTIME_NOW: u8 = 0x10;
const SET_MTIME: u8 = 0x20;
const SET_ATIME: u8 = 0x40;
const SET_ATIME_NOW: u8 = 0x80;
/// `sugidclearmode` EXT: chown by a non-root clears suid/sgid, like Linux.
const SUGID_CLEAR_EXT: u8 = 4;

fn unexpected(master: &Master, op: &str, msg: MaToCl) -> Error {
    let _ = master;
    Error::peer("master", format!("{op}: unexpected reply {msg:?}"))
}

impl Master {
    pub fn statfs(&self) -> Result<Statfs> {
        match self.call("statfs", DirForm::Types, |msgid| ClToMa::Statfs { msgid })? {
            MaToCl::Statfs { total, avail, trash, sustained, inodes, .. } => {
                Ok(Statfs { total, avail, trash, sustained, inodes })
            }
            m => Err(unexpected(self, "statfs", m)),
        }
    }

    pub fn lookup(&self, parent: u32, name: &[u8], cred: &Cred) -> Result<NewAttrs> {
        self.lookup_with_chunk(parent, name, cred).map(|(inode, attr, _, _)| (inode, attr))
    }

    /// A lookup with the caller's access rights (`lflags`) and the location
    /// of a small file's only chunk when the master sends them along
    /// (mfsmaster does: an open and a first read then need no master call).
    pub fn lookup_with_chunk(
        &self,
        parent: u32,
        name: &[u8],
        cred: &Cred,
    ) -> Result<(u32, Attr, Option<u16>, Option<elkfs_proto::client::FirstChunk>)> {
        let reply = self.call("lookup", DirForm::Types, |msgid| ClToMa::Lookup {
            msgid,
            parent,
            name: name.to_vec(),
            cred: cred.clone(),
        })?;
        match reply {
            MaToCl::Lookup { inode, attr, lflags, first_chunk, .. } => {
                Ok((inode, Attr::decode(&attr), lflags, first_chunk))
            }
            m => Err(unexpected(self, "lookup", m)),
        }
    }

    pub fn getattr(&self, inode: u32, uid: u32, gid: u32) -> Result<Attr> {
        let reply =
            self.call("getattr", DirForm::Types, |msgid| ClToMa::GetAttr { msgid, inode, opened: 0, uid, gid })?;
        attr_of(self, "getattr", reply)
    }

    pub fn setattr(&self, inode: u32, cred: &Cred, set: &SetAttr) -> Result<Attr> {
        let mut setmask = 0u8;
        setmask |= if set.mode.is_some() { SET_MODE } else { 0 };
        setmask |= if set.uid.is_some() { SET_UID } else { 0 };
        setmask |= if set.gid.is_some() { SET_GID } else { 0 };
        setmask |= match set.atime {
            Some(Some(_)) => SET_ATIME,
            Some(None) => SET_ATIME_NOW,
            None => 0,
        };
        setmask |= match set.mtime {
            Some(Some(_)) => SET_MTIME,
            Some(None) => SET_MTIME_NOW,
            None => 0,
        };
        let reply = self.call("setattr", DirForm::Types, |msgid| ClToMa::SetAttr {
            msgid,
            inode,
            opened: 0,
            cred: cred.clone(),
            setmask,
            mode: set.mode.unwrap_or(0),
            uid: set.uid.unwrap_or(0),
            gid: set.gid.unwrap_or(0),
            atime: set.atime.flatten().unwrap_or(0),
            mtime: set.mtime.flatten().unwrap_or(0),
            winattr: 0,
            sugid_clear: SUGID_CLEAR_EXT,
        })?;
        attr_of(self, "setattr", reply)
    }

    /// Sets the file length; `opened` skips the permission check for a
    /// file this session opened for writing (ftruncate).
    pub fn truncate(&self, inode: u32, opened: bool, cred: &Cred, length: u64) -> Result<Attr> {
        let flags = u8::from(opened);
        let reply = self.call("truncate", DirForm::Types, |msgid| ClToMa::Truncate {
            msgid,
            inode,
            flags,
            cred: cred.clone(),
            length,
        })?;
        match reply {
            MaToCl::Truncate { attr, .. } => Ok(Attr::decode(&attr)),
            m => attr_of(self, "truncate", m),
        }
    }

    /// Permission check for `access(2)`; `mask` is `R_OK|W_OK|X_OK` bits.
    pub fn access(&self, inode: u32, cred: &Cred, mask: u16) -> Result<()> {
        self.call("access", DirForm::Types, |msgid| ClToMa::Access { msgid, inode, cred: cred.clone(), mask })
            .map(|_| ())
    }

    pub fn readlink(&self, inode: u32) -> Result<Vec<u8>> {
        match self.call("readlink", DirForm::Types, |msgid| ClToMa::ReadLink { msgid, inode })? {
            MaToCl::ReadLink { path, .. } => Ok(path),
            m => Err(unexpected(self, "readlink", m)),
        }
    }

    pub fn symlink(&self, parent: u32, name: &[u8], target: &[u8], cred: &Cred) -> Result<NewAttrs> {
        let reply = self.call("symlink", DirForm::Types, |msgid| ClToMa::Symlink {
            msgid,
            parent,
            name: name.to_vec(),
            path: target.to_vec(),
            cred: cred.clone(),
        })?;
        entry_of(self, "symlink", reply)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn mknod(
        &self,
        parent: u32,
        name: &[u8],
        node_type: u8,
        mode: u16,
        umask: u16,
        cred: &Cred,
        rdev: u32,
    ) -> Result<NewAttrs> {
        let reply = self.call("mknod", DirForm::Types, |msgid| ClToMa::Mknod {
            msgid,
            parent,
            name: name.to_vec(),
            node_type,
            mode,
            umask,
            cred: cred.clone(),
            rdev,
        })?;
        entry_of(self, "mknod", reply)
    }

    pub fn mkdir(&self, parent: u32, name: &[u8], mode: u16, umask: u16, cred: &Cred) -> Result<NewAttrs> {
        let reply = self.call("mkdir", DirForm::Types, |msgid| ClToMa::Mkdir {
            msgid,
            parent,
            name: name.to_vec(),
            mode,
            umask,
            cred: cred.clone(),
            copysgid: 1,
        })?;
        entry_of(self, "mkdir", reply)
    }

    /// Creates and opens a regular file.
    pub fn create(&self, parent: u32, name: &[u8], mode: u16, umask: u16, cred: &Cred) -> Result<NewAttrs> {
        let reply = self.call("create", DirForm::Types, |msgid| ClToMa::Create {
            msgid,
            parent,
            name: name.to_vec(),
            mode,
            umask,
            cred: cred.clone(),
        })?;
        match reply {
            MaToCl::Create { inode, attr, .. } => Ok((inode, Attr::decode(&attr))),
            m => entry_of(self, "create", m),
        }
    }

    pub fn unlink(&self, parent: u32, name: &[u8], cred: &Cred) -> Result<()> {
        self.call("unlink", DirForm::Types, |msgid| ClToMa::Unlink {
            msgid,
            parent,
            name: name.to_vec(),
            cred: cred.clone(),
        })
        .map(|_| ())
    }

    pub fn rmdir(&self, parent: u32, name: &[u8], cred: &Cred) -> Result<()> {
        self.call("rmdir", DirForm::Types, |msgid| ClToMa::Rmdir {
            msgid,
            parent,
            name: name.to_vec(),
            cred: cred.clone(),
        })
        .map(|_| ())
    }

    pub fn rename(&self, src_parent: u32, src: &[u8], dst_parent: u32, dst: &[u8], cred: &Cred) -> Result<()> {
        self.call("rename", DirForm::Types, |msgid| ClToMa::Rename {
            msgid,
            src_parent,
            src_name: src.to_vec(),
            dst_parent,
            dst_name: dst.to_vec(),
            cred: cred.clone(),
        })
        .map(|_| ())
    }

    pub fn link(&self, inode: u32, dst_parent: u32, dst: &[u8], cred: &Cred) -> Result<NewAttrs> {
        let reply = self.call("link", DirForm::Types, |msgid| ClToMa::Link {
            msgid,
            inode,
            dst_parent,
            dst_name: dst.to_vec(),
            cred: cred.clone(),
        })?;
        entry_of(self, "link", reply)
    }

    /// The whole directory with attributes, `.` and `..` included.
    pub fn readdir(&self, inode: u32, cred: &Cred) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        let mut edge = 0u64;
        // Bounded: each round returns at least one entry or ends the walk.
        for _ in 0..1_000_000 {
            let reply = self.call("readdir", DirForm::Attrs, |msgid| ClToMa::ReadDir {
                msgid,
                inode,
                cred: cred.clone(),
                flags: READDIR_ATTRS,
                max_entries: u32::MAX,
                edge,
            })?;
            let (next_edge, entries) = match reply {
                MaToCl::ReadDir { next_edge, entries: DirEntries::Attrs(list), .. } => (next_edge, list),
                m => return Err(unexpected(self, "readdir", m)),
            };
            let empty = entries.is_empty();
            out.extend(entries.into_iter().map(|(name, inode, a)| DirEntry { name, inode, attr: Attr::decode(&a) }));
            if next_edge == EDGEID_MAX || next_edge == edge || empty {
                return Ok(out);
            }
            edge = next_edge;
        }
        Err(Error::peer("master", "readdir: the listing does not end"))
    }

    /// Opens `inode` (`flags`: 1 read, 2 write) and counts it as open.
    pub fn open(&self, inode: u32, cred: &Cred, flags: u8) -> Result<Attr> {
        let reply =
            self.call("open", DirForm::Types, |msgid| ClToMa::Open { msgid, inode, cred: cred.clone(), flags })?;
        match reply {
            MaToCl::Open { attr, .. } => Ok(Attr::decode(&attr)),
            m => attr_of(self, "open", m),
        }
    }

    /// Sends OPEN without waiting for the answer (see [`Master::start`]).
    pub fn open_start(&self, inode: u32, cred: &Cred, flags: u8) -> Result<super::Pending> {
        self.start("open", DirForm::Types, |msgid| ClToMa::Open { msgid, inode, cred: cred.clone(), flags })
    }

    pub fn read_chunk(&self, inode: u32, index: u32) -> Result<ChunkLoc> {
        let reply =
            self.call("read chunk", DirForm::Types, |msgid| ClToMa::ReadChunk { msgid, inode, index, flags: 0 })?;
        chunk_of(self, "read chunk", reply)
    }

    /// Locks chunk `index` of `inode` for writing (created when missing).
    pub fn write_chunk(&self, inode: u32, index: u32) -> Result<ChunkLoc> {
        let reply =
            self.call("write chunk", DirForm::Types, |msgid| ClToMa::WriteChunk { msgid, inode, index, flags: 0 })?;
        chunk_of(self, "write chunk", reply)
    }

    /// Unlocks the chunk and grows the file to `length` if it is longer.
    pub fn write_chunk_end(&self, chunk: u64, inode: u32, index: u32, length: u64) -> Result<()> {
        self.call("write chunk end", DirForm::Types, |msgid| ClToMa::WriteChunkEnd {
            msgid,
            chunk,
            inode,
            index: Some(index),
            length,
            flags: Some(0),
        })
        .map(|_| ())
    }
}

fn attr_of(master: &Master, op: &str, msg: MaToCl) -> Result<Attr> {
    match msg {
        MaToCl::Attr { attr, .. } => Ok(Attr::decode(&attr)),
        m => Err(unexpected(master, op, m)),
    }
}

fn entry_of(master: &Master, op: &str, msg: MaToCl) -> Result<NewAttrs> {
    match msg {
        MaToCl::Entry { inode, attr, .. } => Ok((inode, Attr::decode(&attr))),
        m => Err(unexpected(master, op, m)),
    }
}

fn chunk_of(master: &Master, op: &str, msg: MaToCl) -> Result<ChunkLoc> {
    match msg {
        MaToCl::Chunk { loc, .. } => Ok(loc),
        m => Err(unexpected(master, op, m)),
    }
}
