//! The kernel's FUSE requests served from the master and the file layer.
//!
//! Inode numbers are the master's (the session root is 1, as FUSE wants).
//! Permission checks are the master's: the mount does not set
//! `default_permissions`, every request carries the caller's uid and gid.
//! Attributes and entries are cached by the kernel for `attr_ttl` and
//! `entry_ttl` unless the master flags a node as not cacheable; our own
//! writes change the size the kernel sees at once (buffered bytes count).
//!
//! This file only takes requests apart and hands them to the worker
//! threads ([`workers`]); what a request does is in [`core`].

mod access;
mod attr;
mod attrcache;
mod core;
mod groups;
mod special;
mod ttlmap;
mod workers;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Filesystem, KernelConfig, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

use crate::file::Files;
use crate::master::SetAttr;
use core::{Caller, Core};
use workers::Workers;

pub use attr::{file_attr, rdev_from_mfs, rdev_to_mfs};
pub use special::MASTERINFO_INODE;

/// Largest read and write the kernel sends in one request.
pub const MAX_IO: u32 = 1 << 20;

/// Worker threads serving requests: enough for a queue depth of 16 plus
/// metadata requests beside it, as mfsmount's pool.
pub const WORKERS: usize = 24;

/// Cache lifetimes handed to the kernel.
#[derive(Debug, Clone, Copy)]
pub struct CacheTtl {
    pub attr: Duration,
    pub entry: Duration,
    /// Entries naming directories, as mfsmount's `mfsdirentrycacheto`.
    pub dir_entry: Duration,
}

/// The file system as FUSE sees it.
pub struct ElkFs {
    core: Arc<Core>,
    workers: Workers,
}

/// The longest name MooseFS stores (an 8-bit length on the wire).
const NAME_MAX: usize = 255;

thread_local! {
    /// Each worker thread's read buffer, reused from read to read, so a
    /// read allocates nothing. (It spares a fresh 1 MiB buffer's zeroing
    /// and page faults, but measured no cheaper in sequential reads: the
    /// copies into the colder reused buffer cost about as much.) It only
    /// grows, to the largest read the kernel sends (`max_read`).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A name the master can take, or `ENAMETOOLONG`.
fn name_of(name: &OsStr) -> std::result::Result<Vec<u8>, i32> {
    let b = name.as_bytes();
    if b.len() > NAME_MAX {
        Err(libc::ENAMETOOLONG)
    } else {
        Ok(b.to_vec())
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

fn time_of(t: Option<TimeOrNow>) -> Option<Option<u32>> {
    t.map(|t| match t {
        TimeOrNow::Now => None,
        TimeOrNow::SpecificTime(st) => Some(st.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)),
    })
}

/// FUSE's open flags as the master's open mode: 1 read, 2 write, 3 both.
fn open_mode(flags: i32) -> u8 {
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => 1,
        libc::O_WRONLY => 2,
        _ => 3,
    }
}

impl ElkFs {
    pub fn new(files: Files, ttl: CacheTtl) -> std::io::Result<ElkFs> {
        Ok(ElkFs { core: Arc::new(Core::new(files, ttl)), workers: Workers::start(WORKERS)? })
    }

    /// Runs `f` on a worker with the shared state.
    fn spawn(&self, f: impl FnOnce(&Core) + Send + 'static) {
        let core = Arc::clone(&self.core);
        self.workers.run(move || f(&core));
    }
}

impl Filesystem for ElkFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> std::result::Result<(), libc::c_int> {
        // Refusals only mean the kernel keeps its smaller limits.
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        let _ = config.set_max_background(64);
        // Lookups and readdirs of one directory may run side by side; the
        // master orders what needs ordering.
        let _ = config.add_capabilities(fuser::consts::FUSE_PARALLEL_DIROPS);
        // O_DIRECT requests of an asynchronous submitter (io_uring, aio)
        // reach us side by side instead of one after the other, as with
        // libfuse's default.
        let _ = config.add_capabilities(fuser::consts::FUSE_ASYNC_DIO);
        Ok(())
    }

    fn destroy(&mut self) {
        // Requests still running finish first; then nothing buffered is left.
        self.workers.stop();
        if let Err(e) = self.core.files.flush_all() {
            tracing::error!("unmount: buffered writes lost: {e}");
        }
        self.core.files.master().close();
        let (opened, reused) = self.core.files.connections();
        tracing::info!("chunkserver connections: {opened} opened, {reused} operations on a reused one");
    }

    fn lookup(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let name = name_or_reply!(name, reply);
        let who = Caller::of(req);
        self.spawn(move |c| c.lookup(who, ino(parent), &name, reply));
    }

    fn getattr(&mut self, req: &Request<'_>, i: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let Some(reply) = self.core.getattr_cached(ino(i), reply) else { return };
        let who = Caller::of(req);
        self.spawn(move |c| c.getattr(who, ino(i), reply));
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
        let who = Caller::of(req);
        self.spawn(move |c| {
            let r = c.setattr(who, ino(i), &set, size, fh.is_some());
            c.reply_attr(ino(i), r, reply);
        });
    }

    fn readlink(&mut self, _req: &Request<'_>, i: u64, reply: ReplyData) {
        self.spawn(move |c| match c.files.master().readlink(ino(i)) {
            Ok(path) => reply.data(&path),
            Err(e) => reply.error(e.errno()),
        });
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
        let who = Caller::of(req);
        self.spawn(move |c| {
            let epoch = c.epoch();
            let r = c.files.master().mknod(
                ino(parent),
                &name,
                node_type,
                (mode & 0o7777) as u16,
                (umask & 0o7777) as u16,
                &c.cred(who),
                rdev_to_mfs(rdev),
            );
            c.namespace_changed(ino(parent), false);
            c.reply_entry(epoch, r, reply);
        });
    }

    fn mkdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let name = name_or_reply!(name, reply);
        let who = Caller::of(req);
        self.spawn(move |c| {
            let (mode, umask) = ((mode & 0o7777) as u16, (umask & 0o7777) as u16);
            let epoch = c.epoch();
            let r = c.files.master().mkdir(ino(parent), &name, mode, umask, &c.cred(who));
            c.namespace_changed(ino(parent), false);
            c.reply_entry(epoch, r, reply);
        });
    }

    fn unlink(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let name = name_or_reply!(name, reply);
        let who = Caller::of(req);
        self.spawn(move |c| {
            let r = c.files.master().unlink(ino(parent), &name, &c.cred(who));
            c.namespace_changed(ino(parent), true);
            Core::reply_empty(r, reply)
        });
    }

    fn rmdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let name = name_or_reply!(name, reply);
        let who = Caller::of(req);
        self.spawn(move |c| {
            let r = c.files.master().rmdir(ino(parent), &name, &c.cred(who));
            c.namespace_changed(ino(parent), true);
            Core::reply_empty(r, reply)
        });
    }

    fn symlink(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, target: &Path, reply: ReplyEntry) {
        let name = name_or_reply!(name, reply);
        let target = target.as_os_str().as_bytes().to_vec();
        let who = Caller::of(req);
        self.spawn(move |c| {
            let epoch = c.epoch();
            let r = c.files.master().symlink(ino(parent), &name, &target, &c.cred(who));
            c.namespace_changed(ino(parent), false);
            c.reply_entry(epoch, r, reply);
        });
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
        let who = Caller::of(req);
        self.spawn(move |c| {
            let r = c.files.master().rename(ino(parent), &name, ino(newparent), &newname, &c.cred(who));
            c.namespace_changed(ino(parent), true);
            Core::reply_empty(r, reply);
        });
    }

    fn link(&mut self, req: &Request<'_>, i: u64, newparent: u64, newname: &OsStr, reply: ReplyEntry) {
        let newname = name_or_reply!(newname, reply);
        let who = Caller::of(req);
        self.spawn(move |c| {
            let epoch = c.epoch();
            let r = c.files.master().link(ino(i), ino(newparent), &newname, &c.cred(who));
            c.namespace_changed(ino(newparent), true);
            c.reply_entry(epoch, r, reply);
        });
    }

    fn open(&mut self, req: &Request<'_>, i: u64, flags: i32, reply: ReplyOpen) {
        let who = Caller::of(req);
        let mode = open_mode(flags);
        self.spawn(move |c| match c.open(who, ino(i), mode) {
            Ok(pending) => {
                reply.opened(0, 0);
                if let Some(pending) = pending {
                    c.opened_from_lookup(ino(i), pending);
                }
            }
            Err(errno) => reply.error(errno),
        });
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
        let who = Caller::of(req);
        self.spawn(move |c| {
            let (mode, umask) = ((mode & 0o7777) as u16, (umask & 0o7777) as u16);
            let epoch = c.epoch();
            let r = c.files.master().create(ino(parent), &name, mode, umask, &c.cred(who));
            c.namespace_changed(ino(parent), false);
            match r {
                Ok((inode, a)) => {
                    c.files.master().acquire(inode);
                    c.created(epoch, inode, &a, reply);
                }
                Err(e) => reply.error(e.errno()),
            }
        });
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
        self.spawn(move |c| {
            READ_BUF.with_borrow_mut(|buf| match c.read_shared(ino(i), offset.max(0) as u64, size as usize, buf) {
                Ok(got) => reply.data(got.slice(buf)),
                Err(e) => reply.error(e.errno()),
            })
        });
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
        if core::is_special(ino(i)) {
            return reply.error(libc::EACCES);
        }
        // The one copy of the data on its way: fuser's request buffer is
        // reused for the next request once this returns.
        let len = data.len() as u32;
        // Most writes only land in the buffer: answered here, without the
        // hop to a worker. The one that fills it goes there and flushes.
        self.core.written(ino(i));
        let Err(data) = self.core.files.write_buffered(ino(i), offset.max(0) as u64, data.to_vec()) else {
            return reply.written(len);
        };
        self.spawn(move |c| {
            c.written(ino(i));
            match c.files.write(ino(i), offset.max(0) as u64, data) {
                Ok(()) => reply.written(len),
                Err(e) => reply.error(e.errno()),
            }
        });
    }

    fn flush(&mut self, _req: &Request<'_>, i: u64, _fh: u64, _lock_owner: u64, reply: ReplyEmpty) {
        if self.core.files.is_clean(ino(i)) {
            return reply.ok();
        }
        self.spawn(move |c| Core::reply_empty(c.flush(ino(i)), reply));
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
        // Nothing to send: the bookkeeping is local, no hop to a worker.
        if self.core.files.is_clean(ino(i)) {
            self.core.release_clean(ino(i));
            return reply.ok();
        }
        self.spawn(move |c| Core::reply_empty(c.release(ino(i)), reply));
    }

    fn fsync(&mut self, _req: &Request<'_>, i: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        if self.core.files.is_clean(ino(i)) {
            return reply.ok();
        }
        self.spawn(move |c| Core::reply_empty(c.flush(ino(i)), reply));
    }

    fn opendir(&mut self, req: &Request<'_>, i: u64, _flags: i32, reply: ReplyOpen) {
        let who = Caller::of(req);
        self.spawn(move |c| match c.opendir(who, ino(i)) {
            Ok(fh) => reply.opened(fh, 0),
            Err(e) => reply.error(e.errno()),
        });
    }

    /// Served here from the listing taken at opendir: no master call.
    fn readdir(&mut self, _req: &Request<'_>, _i: u64, fh: u64, offset: i64, mut reply: ReplyDirectory) {
        let found = self.core.with_listing(fh, |list| {
            for (n, e) in list.iter().enumerate().skip(offset.max(0) as usize) {
                let kind = attr::file_type(e.attr.node_type);
                if reply.add(u64::from(e.inode), (n + 1) as i64, kind, OsStr::from_bytes(&e.name)) {
                    break;
                }
            }
        });
        match found {
            Some(()) => reply.ok(),
            None => reply.error(libc::EBADF),
        }
    }

    fn releasedir(&mut self, _req: &Request<'_>, _i: u64, fh: u64, _flags: i32, reply: ReplyEmpty) {
        self.core.releasedir(fh);
        reply.ok();
    }

    fn statfs(&mut self, _req: &Request<'_>, _i: u64, reply: ReplyStatfs) {
        self.spawn(move |c| match c.files.master().statfs() {
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
        });
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

    /// No ioctls are served; `isatty` on every open asks (TCGETS), and
    /// fuser's default answer logs a warning each time.
    fn ioctl(
        &mut self,
        _req: &Request<'_>,
        _i: u64,
        _fh: u64,
        _flags: u32,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        reply.error(libc::ENOTTY);
    }

    fn access(&mut self, req: &Request<'_>, i: u64, mask: i32, reply: ReplyEmpty) {
        let who = Caller::of(req);
        self.spawn(move |c| {
            if core::is_special(ino(i)) {
                return reply.ok();
            }
            Core::reply_empty(c.files.master().access(ino(i), &c.cred(who), (mask & 7) as u16), reply)
        });
    }
}
