//! What each FUSE request does, on a worker thread: the master's calls,
//! the file layer, and the reply.
//!
//! Everything here is shared by the workers (`&self`): the file layer and
//! the session lock what they hold, the open directory listings sit in a
//! mutex of their own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use elkfs_proto::client::{Attr, Cred, MATTR_NOACACHE, MATTR_NOECACHE, TYPE_DIRECTORY, TYPE_FILE};
use fuser::{FileAttr, ReplyAttr, ReplyEmpty, ReplyEntry};

use super::access::AccessCache;
use super::attrcache::AttrCache;
use super::{attr, groups, special, CacheTtl};
use crate::error::{Error, Result};
use crate::file::{Files, ReadBytes};
use crate::master::{DirEntry, Pending, SetAttr};

pub use special::is_special;

/// Who sent a request: what fuser's `Request` says, kept past it.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

impl Caller {
    pub fn of(req: &fuser::Request<'_>) -> Caller {
        Caller { uid: req.uid(), gid: req.gid(), pid: req.pid() }
    }
}

/// The state every worker shares.
pub struct Core {
    pub files: Files,
    ttl: CacheTtl,
    /// Listings taken at opendir, served by offset until releasedir.
    dirs: Mutex<HashMap<u64, Vec<DirEntry>>>,
    next_fh: AtomicU64,
    groups: groups::Groups,
    attrs: AttrCache,
    access: AccessCache,
}

impl Core {
    pub fn new(files: Files, ttl: CacheTtl) -> Core {
        Core {
            files,
            ttl,
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            groups: groups::Groups::default(),
            attrs: AttrCache::new(ttl.attr),
            access: AccessCache::default(),
        }
    }

    /// uid, gid and the process's supplementary groups.
    pub fn cred(&self, who: Caller) -> Cred {
        Cred { uid: who.uid, gids: self.groups.of(who.pid, who.uid, who.gid) }
    }

    fn kattr(&self, inode: u32, a: &Attr) -> FileAttr {
        let length = if a.node_type == TYPE_FILE { a.length.max(self.files.buffered_end(inode)) } else { a.length };
        let mut k = attr::file_attr(inode, a, length);
        if a.node_type == TYPE_FILE {
            k.mtime = attr::time(self.files.master().mtime_seen_here(inode, a.mtime));
        }
        k
    }

    fn attr_ttl(&self, a: &Attr) -> Duration {
        if a.flags & MATTR_NOACACHE != 0 {
            Duration::ZERO
        } else {
            self.ttl.attr
        }
    }

    pub fn entry_ttl(&self, a: &Attr) -> Duration {
        if a.flags & (MATTR_NOECACHE | MATTR_NOACACHE) != 0 {
            Duration::ZERO
        } else if a.node_type == TYPE_DIRECTORY {
            self.ttl.dir_entry
        } else {
            self.ttl.entry
        }
    }

    /// The flush epoch to read before a master call whose attributes are
    /// kept (see [`AttrCache`]).
    pub fn epoch(&self) -> u64 {
        self.files.epoch()
    }

    /// Replies with an entry the master sent, taken at flush epoch `epoch`.
    pub fn reply_entry(&self, epoch: u64, r: Result<(u32, Attr)>, reply: ReplyEntry) {
        match r {
            Ok((inode, a)) => {
                self.attrs.put(inode, &a, epoch);
                reply.entry(&self.entry_ttl(&a), &self.kattr(inode, &a), 0)
            }
            Err(e) => reply.error(e.errno()),
        }
    }

    /// A node of `parent` was added or removed: the parent's times and
    /// size moved, and an unlinked or renamed node's link count or ctime.
    pub fn namespace_changed(&self, parent: u32, whole: bool) {
        if whole {
            self.attrs.clear();
        } else {
            self.attrs.drop_inode(parent);
        }
    }

    /// Our own write: its length shows through the buffer, its mtime not.
    pub fn written(&self, inode: u32) {
        self.attrs.drop_inode(inode);
    }

    pub fn reply_attr(&self, inode: u32, r: Result<Attr>, reply: ReplyAttr) {
        match r {
            Ok(a) => reply.attr(&self.attr_ttl(&a), &self.kattr(inode, &a)),
            Err(e) => reply.error(e.errno()),
        }
    }

    pub fn created(&self, epoch: u64, inode: u32, a: &Attr, reply: fuser::ReplyCreate) {
        self.attrs.put(inode, a, epoch);
        reply.created(&self.entry_ttl(a), &self.kattr(inode, a), 0, 0, 0);
    }

    pub fn lookup(&self, who: Caller, parent: u32, name: &[u8], reply: ReplyEntry) {
        if let Some(inode) = special::lookup(parent, name) {
            return reply.entry(&special::TTL, &special::attr(inode), 0);
        }
        let epoch = self.epoch();
        let r =
            self.files.master().lookup_with_chunk(parent, name, &self.cred(who)).map(|(inode, a, lflags, first)| {
                if a.node_type == TYPE_FILE {
                    if let Some(first) = first {
                        self.files.seed_first_chunk(inode, a.length, first);
                    }
                    if let Some(lflags) = lflags {
                        self.access.put(inode, who, lflags);
                    }
                }
                (inode, a)
            });
        self.reply_entry(epoch, r, reply);
    }

    /// GETATTR answered without a master call, or the reply handed back.
    pub fn getattr_cached(&self, inode: u32, reply: ReplyAttr) -> Option<ReplyAttr> {
        if special::is_special(inode) {
            reply.attr(&special::TTL, &special::attr(inode));
            return None;
        }
        match self.attrs.get(inode, self.epoch()) {
            Some(a) => {
                self.reply_attr(inode, Ok(a), reply);
                None
            }
            None => Some(reply),
        }
    }

    pub fn getattr(&self, who: Caller, inode: u32, reply: ReplyAttr) {
        if special::is_special(inode) {
            return reply.attr(&special::TTL, &special::attr(inode));
        }
        let epoch = self.epoch();
        if let Some(a) = self.attrs.get(inode, epoch) {
            return self.reply_attr(inode, Ok(a), reply);
        }
        let r = self.files.master().getattr(inode, who.uid, who.gid);
        if let Ok(a) = &r {
            self.attrs.put(inode, a, epoch);
        }
        self.reply_attr(inode, r, reply);
    }

    pub fn setattr(&self, who: Caller, inode: u32, set: &SetAttr, size: Option<u64>, opened: bool) -> Result<Attr> {
        if special::is_special(inode) {
            return Err(Error::Status { op: "setattr", status: elkfs_proto::Status::EPERM });
        }
        let c = self.cred(who);
        let mut attr = None;
        if let Some(length) = size {
            self.files.flush(inode)?;
            attr = Some(self.files.master().truncate(inode, opened, &c, length)?);
            self.files.truncate_buffer(inode, length);
        }
        if set.mtime.is_some() {
            self.files.master().mtime_set(inode);
        }
        if set.mode.is_some() || set.uid.is_some() || set.gid.is_some() || set.atime.is_some() || set.mtime.is_some() {
            attr = Some(self.files.master().setattr(inode, &c, set)?);
        }
        self.attrs.drop_inode(inode);
        self.access.drop_inode(inode);
        let epoch = self.epoch();
        let a = match attr {
            Some(a) => a,
            None => self.files.master().getattr(inode, c.uid, who.gid)?,
        };
        self.attrs.put(inode, &a, epoch);
        Ok(a)
    }

    /// Opens `inode` for `mode` (1 read, 2 write, 3 both). `Ok(Some(_))`:
    /// granted from a lookup's access rights; the OPEN that makes the
    /// master keep the file while it is open (so an unlink leaves it
    /// readable) is already on the wire, ahead of anything the application
    /// can do with its descriptor, and its answer is for
    /// [`Core::opened_from_lookup`] once the kernel has been answered, as
    /// mfsmount does. `OPEN_AFTER_CREATE` asks the master not to check
    /// permissions again.
    pub fn open(&self, who: Caller, inode: u32, mode: u8) -> std::result::Result<Option<Pending>, i32> {
        const OPEN_AFTER_CREATE: u8 = 0x04;
        if special::is_special(inode) {
            return if mode == 1 { Ok(None) } else { Err(libc::EACCES) };
        }
        let master = self.files.master();
        let pending = match self.access.open(inode, who, mode) {
            Some(granted) => {
                granted?;
                // Not sent: the next SUSTAINED_INODES lists the file anyway.
                master.open_start(inode, &self.cred(who), mode | OPEN_AFTER_CREATE).ok()
            }
            None => {
                master.open(inode, &self.cred(who), mode).map_err(|e| e.errno())?;
                None
            }
        };
        master.acquire(inode);
        self.files.forget_at_open(inode);
        Ok(pending)
    }

    /// Collects the answer to the OPEN sent by [`Core::open`].
    pub fn opened_from_lookup(&self, inode: u32, pending: Pending) {
        if let Err(e) = self.files.master().finish(pending) {
            tracing::debug!(inode, "open from a lookup's rights: the master said {e}");
        }
    }

    /// Reads `size` bytes at `offset`; see [`crate::file::Files::read_shared`].
    pub fn read_shared(&self, inode: u32, offset: u64, size: usize, out: &mut Vec<u8>) -> Result<ReadBytes> {
        if special::is_special(inode) {
            let content = special::content(inode, &self.files.master().location());
            let from = (offset as usize).min(content.len());
            let part = &content[from..(from + size).min(content.len())];
            if out.len() < part.len() {
                out.resize(part.len(), 0);
            }
            out[..part.len()].copy_from_slice(part);
            return Ok(ReadBytes::Buf(part.len()));
        }
        self.files.read_shared(inode, offset, size, out)
    }

    /// flush and fsync: everything written reaches the chunkservers.
    pub fn flush(&self, inode: u32) -> Result<()> {
        if special::is_special(inode) {
            return Ok(());
        }
        self.files.flush(inode)
    }

    /// `release` of a file with nothing buffered or being flushed.
    pub fn release_clean(&self, inode: u32) {
        if !special::is_special(inode) {
            self.files.drop_buffer(inode);
            self.files.master().release(inode);
        }
    }

    pub fn release(&self, inode: u32) -> Result<()> {
        let r = self.flush(inode);
        self.release_clean(inode);
        r
    }

    pub fn opendir(&self, who: Caller, inode: u32) -> Result<u64> {
        let list = self.files.master().readdir(inode, &self.cred(who))?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.dirs).insert(fh, list);
        Ok(fh)
    }

    /// Calls `add` for the entries of listing `fh` from `offset` on, until
    /// it says the reply is full; `None` for an unknown handle.
    pub fn with_listing(&self, fh: u64, f: impl FnOnce(&[DirEntry])) -> Option<()> {
        let dirs = lock(&self.dirs);
        dirs.get(&fh).map(|list| f(list))
    }

    pub fn releasedir(&self, fh: u64) {
        lock(&self.dirs).remove(&fh);
    }

    pub fn reply_empty(r: Result<()>, reply: ReplyEmpty) {
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Error::errno(&e)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
