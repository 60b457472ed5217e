//! Namespace changes: create, link, unlink, rename, setattr. Each checks the
//! request as POSIX (and MooseFS, for its status codes) would, then commits
//! one record.

use super::node::{Attr, Inode, NodeType};
use super::perm::{check, check_name, check_sticky, SGID, STICKY, SUID, W, X};
use super::record::Op;
use super::{Ctx, Meta, Status};

/// `setattr` mask bits (`moosefs-wire.md` §8.5 SETATTR).
pub const SET_WINATTR: u8 = 0x01;
pub const SET_MODE: u8 = 0x02;
pub const SET_UID: u8 = 0x04;
pub const SET_GID: u8 = 0x08;
pub const SET_MTIME_NOW: u8 = 0x10;
pub const SET_MTIME: u8 = 0x20;
pub const SET_ATIME: u8 = 0x40;
pub const SET_ATIME_NOW: u8 = 0x80;

impl Meta {
    /// Checks a new entry `name` in `parent` and returns the next inode number.
    fn prepare_create(&self, ctx: &Ctx, parent: Inode, name: &[u8]) -> Result<Inode, Status> {
        let (_, dir) = self.dir(parent)?;
        self.writable_dir(ctx, parent)?;
        check_name(name)?;
        if dir.entries.contains_key(name) {
            return Err(Status::EEXIST);
        }
        let inode = self.nodes.next_free(ctx.now, self.next_inode);
        if inode == u32::MAX {
            return Err(Status::OUTOFMEMORY);
        }
        Ok(inode)
    }

    /// The group of a new node: the directory's if it has the sgid bit (BSD
    /// semantics that Linux keeps for sgid directories), else the caller's.
    fn new_gid(&self, ctx: &Ctx, parent: Inode) -> Result<u32, Status> {
        let p = self.live(parent)?;
        Ok(if p.mode & SGID != 0 { p.gid } else { ctx.primary_gid() })
    }

    fn created(&self, inode: Inode) -> (Inode, Attr) {
        match self.nodes.get(&inode) {
            Some(n) => (inode, n.attr()),
            None => panic!("inode {inode} was just created"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn mknod(
        &mut self,
        ctx: &Ctx,
        parent: Inode,
        name: &[u8],
        kind: NodeType,
        mode: u16,
        umask: u16,
        rdev: u32,
    ) -> Result<(Inode, Attr), Status> {
        if kind == NodeType::Dir || kind == NodeType::Symlink {
            return Err(Status::EINVAL);
        }
        let inode = self.prepare_create(ctx, parent, name)?;
        let gid = self.new_gid(ctx, parent)?;
        let mode = mode & !umask & 0o7777;
        let rdev = if matches!(kind, NodeType::BlockDev | NodeType::CharDev) { rdev } else { 0 };
        let op = Op::Create { parent, name: name.to_vec(), kind, mode, uid: ctx.uid, gid, rdev, inode };
        self.commit(ctx.now, op);
        Ok(self.created(inode))
    }

    /// `copysgid`: the client asks a new directory in an sgid directory to
    /// be sgid too (what Linux does).
    pub fn mkdir(
        &mut self,
        ctx: &Ctx,
        parent: Inode,
        name: &[u8],
        mode: u16,
        umask: u16,
        copysgid: bool,
    ) -> Result<(Inode, Attr), Status> {
        let inode = self.prepare_create(ctx, parent, name)?;
        let gid = self.new_gid(ctx, parent)?;
        let mut mode = mode & !umask & 0o7777;
        if copysgid && self.live(parent)?.mode & SGID != 0 {
            mode |= SGID;
        }
        let op =
            Op::Create { parent, name: name.to_vec(), kind: NodeType::Dir, mode, uid: ctx.uid, gid, rdev: 0, inode };
        self.commit(ctx.now, op);
        Ok(self.created(inode))
    }

    pub fn symlink(&mut self, ctx: &Ctx, parent: Inode, name: &[u8], target: &[u8]) -> Result<(Inode, Attr), Status> {
        if target.is_empty() || target.len() > 4096 || target.contains(&0) {
            return Err(Status::EINVAL);
        }
        let inode = self.prepare_create(ctx, parent, name)?;
        let gid = self.new_gid(ctx, parent)?;
        let op = Op::Symlink { parent, name: name.to_vec(), target: target.to_vec(), uid: ctx.uid, gid, inode };
        self.commit(ctx.now, op);
        Ok(self.created(inode))
    }

    pub fn link(&mut self, ctx: &Ctx, inode: Inode, new_parent: Inode, new_name: &[u8]) -> Result<Attr, Status> {
        let node = self.live(inode)?;
        if node.kind == NodeType::Dir {
            return Err(Status::EPERM);
        }
        if node.nlink >= MAX_LINKS {
            return Err(Status::NOSPACE);
        }
        self.prepare_create(ctx, new_parent, new_name)?;
        self.commit(ctx.now, Op::Link { inode, parent: new_parent, name: new_name.to_vec() });
        Ok(self.created(inode).1)
    }

    /// Checks the removal of `name` from `parent` and returns its inode.
    fn prepare_remove(&self, ctx: &Ctx, parent: Inode, name: &[u8]) -> Result<Inode, Status> {
        let (pnode, dir) = self.dir(parent)?;
        check(ctx, pnode, W | X)?;
        check_name(name)?;
        let inode = *dir.entries.get(name).ok_or(Status::ENOENT)?;
        check_sticky(ctx, pnode, self.live(inode)?)?;
        Ok(inode)
    }

    /// Removes a non-directory; MooseFS answers EPERM for a directory.
    pub fn unlink(&mut self, ctx: &Ctx, parent: Inode, name: &[u8]) -> Result<Inode, Status> {
        let inode = self.prepare_remove(ctx, parent, name)?;
        if self.live(inode)?.kind == NodeType::Dir {
            return Err(Status::EPERM);
        }
        self.commit(ctx.now, Op::Unlink { parent, name: name.to_vec(), inode });
        Ok(inode)
    }

    pub fn rmdir(&mut self, ctx: &Ctx, parent: Inode, name: &[u8]) -> Result<Inode, Status> {
        if name == b"." {
            return Err(Status::EINVAL);
        }
        if name == b".." {
            return Err(Status::ENOTEMPTY);
        }
        let inode = self.prepare_remove(ctx, parent, name)?;
        match self.live(inode)?.dir() {
            None => return Err(Status::ENOTDIR),
            Some(d) if !d.entries.is_empty() => return Err(Status::ENOTEMPTY),
            Some(_) => {}
        }
        self.commit(ctx.now, Op::Rmdir { parent, name: name.to_vec(), inode });
        Ok(inode)
    }

    /// POSIX rename: an existing destination is replaced when the kinds
    /// agree (an empty directory by a directory, a non-directory by a
    /// non-directory); renaming onto another link of the same inode does
    /// nothing; a directory cannot move below itself (EINVAL).
    pub fn rename(
        &mut self,
        ctx: &Ctx,
        src_parent: Inode,
        src_name: &[u8],
        dst_parent: Inode,
        dst_name: &[u8],
    ) -> Result<(Inode, Attr), Status> {
        let inode = self.prepare_remove(ctx, src_parent, src_name)?;
        check_name(dst_name)?;
        let (dnode, ddir) = self.dir(dst_parent)?;
        check(ctx, dnode, W | X)?;
        let node = self.live(inode)?;
        let moving_dir = node.kind == NodeType::Dir;
        if moving_dir && self.is_ancestor(inode, dst_parent) {
            return Err(Status::EINVAL);
        }
        if let Some(&old) = ddir.entries.get(dst_name) {
            if old == inode {
                return Ok(self.created(inode));
            }
            let old_node = self.live(old)?;
            check_sticky(ctx, dnode, old_node)?;
            match (moving_dir, old_node.dir()) {
                (true, Some(d)) if !d.entries.is_empty() => return Err(Status::ENOTEMPTY),
                (true, None) => return Err(Status::ENOTDIR),
                (false, Some(_)) => return Err(Status::EPERM),
                _ => {}
            }
        }
        // A directory changing parent has its ".." rewritten, which needs
        // write permission on it (as Linux checks).
        if moving_dir && src_parent != dst_parent {
            check(ctx, node, W)?;
        }
        let op = Op::Rename { src_parent, src_name: src_name.to_vec(), dst_parent, dst_name: dst_name.to_vec(), inode };
        self.commit(ctx.now, op);
        Ok(self.created(inode))
    }

    /// chmod, chown and utimes in one (also on a removed file still open),
    /// with Linux's rules: only the owner
    /// (or root) changes the mode or sets explicit times; only root changes
    /// the owner; the owner may change the group to one of its groups;
    /// "now" times need ownership or write permission. A non-root chmod of a
    /// file whose group the caller is not in drops sgid, and a non-root
    /// chown drops suid/sgid.
    #[allow(clippy::too_many_arguments)]
    pub fn setattr(
        &mut self,
        ctx: &Ctx,
        inode: Inode,
        setmask: u8,
        mode: u16,
        uid: u32,
        gid: u32,
        atime: u32,
        mtime: u32,
    ) -> Result<Attr, Status> {
        let node = self.any(inode)?;
        let root = ctx.uid == 0;
        let owner = root || ctx.uid == node.uid;
        let mut new = (node.mode, node.uid, node.gid, node.atime, node.mtime);
        if setmask & SET_UID != 0 && uid != node.uid {
            if !root {
                return Err(Status::EPERM);
            }
            new.1 = uid;
        }
        if setmask & SET_GID != 0 && gid != node.gid {
            if !(root || (ctx.uid == node.uid && ctx.in_group(gid))) {
                return Err(Status::EPERM);
            }
            new.2 = gid;
        }
        let chown = new.1 != node.uid || new.2 != node.gid;
        if setmask & SET_MODE != 0 {
            if !owner {
                return Err(Status::EPERM);
            }
            new.0 = mode & 0o7777;
            if !root && node.kind != NodeType::Dir && !ctx.in_group(new.2) {
                new.0 &= !SGID;
            }
            if !root && node.kind != NodeType::Dir && node.kind != NodeType::File {
                new.0 &= !STICKY;
            }
        }
        if chown && !root && node.kind != NodeType::Dir {
            new.0 &= !SUID;
            if new.0 & 0o010 != 0 {
                new.0 &= !SGID;
            }
        }
        if setmask & (SET_ATIME | SET_MTIME) != 0 && !owner {
            return Err(Status::EPERM);
        }
        if setmask & (SET_ATIME_NOW | SET_MTIME_NOW) != 0 && !owner {
            check(ctx, node, W)?;
        }
        if setmask & SET_ATIME_NOW != 0 {
            new.3 = ctx.now;
        } else if setmask & SET_ATIME != 0 {
            new.3 = atime;
        }
        if setmask & SET_MTIME_NOW != 0 {
            new.4 = ctx.now;
        } else if setmask & SET_MTIME != 0 {
            new.4 = mtime;
        }
        if setmask & !SET_WINATTR == 0 {
            return Ok(node.attr());
        }
        let (mode, uid, gid, atime, mtime) = new;
        self.commit(ctx.now, Op::Attr { inode, mode, uid, gid, atime, mtime });
        Ok(self.created(inode).1)
    }

    /// Times a client gathered for nodes it read or wrote
    /// (`CLTOMA_FUSE_AMTIME_INODES`): each only moves forward, a later
    /// mtime brings ctime along, and unknown inodes are skipped (the list
    /// may name a file removed since). A zero time never moves anything,
    /// so entries mfsmaster filters out change nothing here either. The
    /// elkfs mount and mfsmount send these once a second.
    pub fn amtime(&mut self, list: &[(Inode, u32, u32)], now: u32) {
        for &(inode, atime, mtime) in list {
            let Some(node) = self.nodes.get(&inode) else { continue };
            let (mut a, mut m, mut c) = (node.atime, node.mtime, node.ctime);
            if atime > a {
                a = atime;
            }
            if mtime > m {
                m = mtime;
                c = mtime;
            }
            if (a, m, c) != (node.atime, node.mtime, node.ctime) {
                self.commit(now, Op::Amtime { inode, atime: a, mtime: m, ctime: c });
            }
        }
    }
}

/// Most links a node may have (MooseFS `MAX_ALLOWED_HARD_LINKS`).
pub const MAX_LINKS: u32 = 32_767;
