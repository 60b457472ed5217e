//! The kernel's FUSE requests served from the master and the file layer.
//!
//! Inode numbers are the master's (the session root is 1, as FUSE wants).
//! Permission checks are the master's: the mount does not set
//! `default_permissions`, every request carries the caller's uid and gid.
//! Attributes and entries are cached by the kernel for `attr_ttl` and
//! `entry_ttl` unless the master flags a node as not cacheable; our own
//! writes change the size the kernel sees at once (buffered bytes count).

mod attr;
mod groups;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use elkfs_proto::client::{Attr, Cred, MATTR_NOACACHE, MATTR_NOECACHE, TYPE_FILE};
use fuser::{
    FileAttr, Filesystem, KernelConfig, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

use crate::error::{Error, Result};
use crate::file::Files;
use crate::master::SetAttr;

pub use attr::{file_attr, rdev_from_mfs, rdev_to_mfs};

/// Largest read and write the kernel sends in one request.
pub const MAX_IO: u32 = 1 << 20;

/// Cache lifetimes handed to the kernel.
#[derive(Debug, Clone, Copy)]
pub struct CacheTtl {
    pub attr: Duration,
    pub entry: Duration,
}

/// The file system as FUSE sees it.
pub struct ElkFs {
    files: Files,
    ttl: CacheTtl,
    /// Listings taken at opendir, served by offset until releasedir.
    dirs: HashMap<u64, Vec<crate::master::DirEntry>>,
    next_fh: u64,
    groups: groups::Groups,
}

/// The longest name MooseFS stores (an 8-bit length on the wire).
const NAME_MAX: usize = 255;

/// A name the master can take, or `ENAMETOOLONG`.
fn name_of(name: &OsStr) -> std::result::Result<&[u8], i32> {
    let b = name.as_bytes();
    if b.len() > NAME_MAX {
        Err(libc::ENAMETOOLONG)
    } else {
        Ok(b)
    }
}

macro_rules! name_or_reply {
    ($name:expr, $reply:expr) => {
        match name_of($name) {
            Ok(n) => n,
            Err(errno) => return $reply.error(errno),
        }
    };
}

fn ino(i: u64) -> u32 {
    // The master's inode numbers are 32-bit; the kernel only gives back
    // numbers we handed out.
    i as u32
}

impl ElkFs {
    pub fn new(files: Files, ttl: CacheTtl) -> ElkFs {
        ElkFs { files, ttl, dirs: HashMap::new(), next_fh: 1, groups: groups::Groups::default() }
    }

    /// Who asks: uid, gid and the process's supplementary groups.
    fn cred(&self, req: &Request<'_>) -> Cred {
        Cred { uid: req.uid(), gids: self.groups.of(req.pid(), req.uid(), req.gid()) }
    }

    fn kattr(&self, inode: u32, a: &Attr) -> FileAttr {
        let length = if a.node_type == TYPE_FILE { a.length.max(self.files.buffered_end(inode)) } else { a.length };
        file_attr(inode, a, length)
    }

    fn attr_ttl(&self, a: &Attr) -> Duration {
        if a.flags & MATTR_NOACACHE != 0 {
            Duration::ZERO
        } else {
            self.ttl.attr
        }
    }

    fn entry_ttl(&self, a: &Attr) -> Duration {
        if a.flags & (MATTR_NOECACHE | MATTR_NOACACHE) != 0 {
            Duration::ZERO
        } else {
            self.ttl.entry
        }
    }

    fn reply_entry(&self, r: Result<(u32, Attr)>, reply: ReplyEntry) {
        match r {
            Ok((inode, a)) => reply.entry(&self.entry_ttl(&a), &self.kattr(inode, &a), 0),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn reply_attr(&self, inode: u32, r: Result<Attr>, reply: ReplyAttr) {
        match r {
            Ok(a) => reply.attr(&self.attr_ttl(&a), &self.kattr(inode, &a)),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn setattr_inner(
        &mut self,
        req: &Request<'_>,
        inode: u32,
        set: &SetAttr,
        size: Option<u64>,
        opened: bool,
    ) -> Result<Attr> {
        let c = self.cred(req);
        let mut attr = None;
        if let Some(length) = size {
            self.files.flush(inode)?;
            attr = Some(self.files.master().truncate(inode, opened, &c, length)?);
            self.files.truncate_buffer(inode, length);
        }
        if set.mode.is_some() || set.uid.is_some() || set.gid.is_some() || set.atime.is_some() || set.mtime.is_some() {
            attr = Some(self.files.master().setattr(inode, &c, set)?);
        }
        match attr {
            Some(a) => Ok(a),
            None => self.files.master().getattr(inode, c.uid, req.gid()),
        }
    }
}

fn time_of(t: Option<TimeOrNow>) -> Option<Option<u32>> {
    t.map(|t| match t {
        TimeOrNow::Now => None,
        TimeOrNow::SpecificTime(st) => Some(st.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)),
    })
}

impl Filesystem for ElkFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> std::result::Result<(), libc::c_int> {
        // Refusals only mean the kernel keeps its smaller limits.
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn destroy(&mut self) {
        if let Err(e) = self.files.flush_all() {
            tracing::error!("unmount: buffered writes lost: {e}");
        }
        self.files.master().close();
    }

    fn lookup(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let name = name_or_reply!(name, reply);
        let r = self.files.master().lookup(ino(parent), name, &self.cred(req));
        self.reply_entry(r, reply);
    }

    fn getattr(&mut self, req: &Request<'_>, i: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let r = self.files.master().getattr(ino(i), req.uid(), req.gid());
        self.reply_attr(ino(i), r, reply);
    }

    fn setattr(
        &mut self,
        req: &Request<'_>,
        i: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let set =
            SetAttr { mode: mode.map(|m| (m & 0o7777) as u16), uid, gid, atime: time_of(atime), mtime: time_of(mtime) };
        let r = self.setattr_inner(req, ino(i), &set, size, fh.is_some());
        self.reply_attr(ino(i), r, reply);
    }

    fn readlink(&mut self, _req: &Request<'_>, i: u64, reply: ReplyData) {
        match self.files.master().readlink(ino(i)) {
            Ok(path) => reply.data(&path),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn mknod(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let Some(node_type) = attr::node_type_of_mode(mode) else { return reply.error(libc::EINVAL) };
        let name = name_or_reply!(name, reply);
        let r = self.files.master().mknod(
            ino(parent),
            name,
            node_type,
            (mode & 0o7777) as u16,
            (umask & 0o7777) as u16,
            &self.cred(req),
            rdev_to_mfs(rdev),
        );
        self.reply_entry(r, reply);
    }

    fn mkdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let name = name_or_reply!(name, reply);
        let r = self.files.master().mkdir(
            ino(parent),
            name,
            (mode & 0o7777) as u16,
            (umask & 0o7777) as u16,
            &self.cred(req),
        );
        self.reply_entry(r, reply);
    }

    fn unlink(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let name = name_or_reply!(name, reply);
        reply_empty(self.files.master().unlink(ino(parent), name, &self.cred(req)), reply);
    }

    fn rmdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let name = name_or_reply!(name, reply);
        reply_empty(self.files.master().rmdir(ino(parent), name, &self.cred(req)), reply);
    }

    fn symlink(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, target: &Path, reply: ReplyEntry) {
        let name = name_or_reply!(name, reply);
        let r = self.files.master().symlink(ino(parent), name, target.as_os_str().as_bytes(), &self.cred(req));
        self.reply_entry(r, reply);
    }

    fn rename(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        let name = name_or_reply!(name, reply);
        let newname = name_or_reply!(newname, reply);
        if flags != 0 {
            // RENAME_NOREPLACE/EXCHANGE have no MooseFS 3.0 request.
            return reply.error(libc::EINVAL);
        }
        let r = self.files.master().rename(ino(parent), name, ino(newparent), newname, &self.cred(req));
        reply_empty(r, reply);
    }

    fn link(&mut self, req: &Request<'_>, i: u64, newparent: u64, newname: &OsStr, reply: ReplyEntry) {
        let newname = name_or_reply!(newname, reply);
        let r = self.files.master().link(ino(i), ino(newparent), newname, &self.cred(req));
        self.reply_entry(r, reply);
    }

    fn open(&mut self, req: &Request<'_>, i: u64, flags: i32, reply: ReplyOpen) {
        let mode = match flags & libc::O_ACCMODE {
            libc::O_RDONLY => 1,
            libc::O_WRONLY => 2,
            _ => 3,
        };
        match self.files.master().open(ino(i), &self.cred(req), mode) {
            Ok(_) => {
                self.files.master().acquire(ino(i));
                self.files.forget(ino(i));
                reply.opened(0, 0);
            }
            Err(e) => reply.error(e.errno()),
        }
    }

    fn create(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let name = name_or_reply!(name, reply);
        let r = self.files.master().create(
            ino(parent),
            name,
            (mode & 0o7777) as u16,
            (umask & 0o7777) as u16,
            &self.cred(req),
        );
        match r {
            Ok((inode, a)) => {
                self.files.master().acquire(inode);
                reply.created(&self.entry_ttl(&a), &self.kattr(inode, &a), 0, 0, 0);
            }
            Err(e) => reply.error(e.errno()),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        i: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock: Option<u64>,
        reply: ReplyData,
    ) {
        match self.files.read(ino(i), offset.max(0) as u64, size as usize) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        i: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock: Option<u64>,
        reply: ReplyWrite,
    ) {
        match self.files.write(ino(i), offset.max(0) as u64, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn flush(&mut self, _req: &Request<'_>, i: u64, _fh: u64, _lock_owner: u64, reply: ReplyEmpty) {
        reply_empty(self.files.flush(ino(i)), reply);
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        i: u64,
        _fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.files.flush(ino(i));
        self.files.drop_buffer(ino(i));
        self.files.master().release(ino(i));
        reply_empty(r, reply);
    }

    fn fsync(&mut self, _req: &Request<'_>, i: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        reply_empty(self.files.flush(ino(i)), reply);
    }

    fn opendir(&mut self, req: &Request<'_>, i: u64, _flags: i32, reply: ReplyOpen) {
        match self.files.master().readdir(ino(i), &self.cred(req)) {
            Ok(list) => {
                let fh = self.next_fh;
                self.next_fh += 1;
                self.dirs.insert(fh, list);
                reply.opened(fh, 0);
            }
            Err(e) => reply.error(e.errno()),
        }
    }

    fn readdir(&mut self, _req: &Request<'_>, _i: u64, fh: u64, offset: i64, mut reply: ReplyDirectory) {
        let Some(list) = self.dirs.get(&fh) else { return reply.error(libc::EBADF) };
        for (n, e) in list.iter().enumerate().skip(offset.max(0) as usize) {
            let kind = attr::file_type(e.attr.node_type);
            if reply.add(u64::from(e.inode), (n + 1) as i64, kind, OsStr::from_bytes(&e.name)) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&mut self, _req: &Request<'_>, _i: u64, fh: u64, _flags: i32, reply: ReplyEmpty) {
        self.dirs.remove(&fh);
        reply.ok();
    }

    fn statfs(&mut self, _req: &Request<'_>, _i: u64, reply: ReplyStatfs) {
        match self.files.master().statfs() {
            Ok(s) => {
                let bs = u64::from(attr::BLOCK_SIZE);
                let files = u64::from(u32::MAX >> 1);
                let ffree = files.saturating_sub(u64::from(s.inodes));
                reply.statfs(
                    s.total / bs,
                    s.avail / bs,
                    s.avail / bs,
                    files,
                    ffree,
                    attr::BLOCK_SIZE,
                    255,
                    attr::BLOCK_SIZE,
                );
            }
            Err(e) => reply.error(e.errno()),
        }
    }

    /// Extended attributes are not served yet: none exist as far as the
    /// kernel can tell (no `ENOSYS` warnings on every `ls -l`).
    fn getxattr(&mut self, _req: &Request<'_>, _i: u64, _name: &OsStr, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(libc::ENODATA);
    }

    fn listxattr(&mut self, _req: &Request<'_>, _i: u64, size: u32, reply: fuser::ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn access(&mut self, req: &Request<'_>, i: u64, mask: i32, reply: ReplyEmpty) {
        reply_empty(self.files.master().access(ino(i), &self.cred(req), (mask & 7) as u16), reply);
    }
}

fn reply_empty(r: Result<()>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(Error::errno(&e)),
    }
}
