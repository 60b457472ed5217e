//! POSIX permission checks: owner, group, other classes; root (uid 0)
//! passes every check, as it does on a local file system.

use super::node::{Inode, Node, NAME_MAX};
use super::{Ctx, Meta, Status};

pub const R: u8 = 4;
pub const W: u8 = 2;
pub const X: u8 = 1;

/// The mode bit that restricts removal in a directory to owners.
pub const STICKY: u16 = 0o1000;
pub const SGID: u16 = 0o2000;
pub const SUID: u16 = 0o4000;

impl Ctx {
    pub fn in_group(&self, gid: u32) -> bool {
        self.gids.contains(&gid)
    }

    /// The group a new node gets when its directory does not impose one.
    pub fn primary_gid(&self) -> u32 {
        self.gids.first().copied().unwrap_or(0)
    }
}

/// Whether `ctx` may access `node` for every bit of `mask` (r=4 w=2 x=1).
pub fn allowed(ctx: &Ctx, node: &Node, mask: u8) -> bool {
    if ctx.uid == 0 {
        return true;
    }
    let bits = if ctx.uid == node.uid {
        node.mode >> 6
    } else if ctx.in_group(node.gid) {
        node.mode >> 3
    } else {
        node.mode
    };
    (bits as u8) & 7 & mask == mask & 7
}

/// Every access mode `ctx` holds on `node`, one bit `1 << mask` per mask
/// (r=4 w=2 x=1) it is allowed: the access bits of MooseFS's lookup flags.
pub fn access_modes(ctx: &Ctx, node: &Node) -> u16 {
    (0u8..8).filter(|&mask| allowed(ctx, node, mask)).fold(0, |bits, mask| bits | 1 << mask)
}

pub fn check(ctx: &Ctx, node: &Node, mask: u8) -> Result<(), Status> {
    if allowed(ctx, node, mask) {
        Ok(())
    } else {
        Err(Status::EACCES)
    }
}

/// The sticky-bit rule: in a sticky directory only the owner of the entry,
/// the owner of the directory or root may remove or rename it.
pub fn check_sticky(ctx: &Ctx, dir: &Node, entry: &Node) -> Result<(), Status> {
    if dir.mode & STICKY != 0 && ctx.uid != 0 && ctx.uid != dir.uid && ctx.uid != entry.uid {
        return Err(Status::EPERM);
    }
    Ok(())
}

/// A name a directory entry may have. MooseFS has no ENAMETOOLONG code;
/// an over-long name is EINVAL like every other bad name.
pub fn check_name(name: &[u8]) -> Result<(), Status> {
    if name.is_empty()
        || name.len() > NAME_MAX
        || name == b"."
        || name == b".."
        || name.contains(&b'/')
        || name.contains(&0)
    {
        return Err(Status::EINVAL);
    }
    Ok(())
}

impl Meta {
    /// The access modes `ctx` holds on `inode` (see [`access_modes`]).
    pub fn access_modes(&self, ctx: &Ctx, inode: Inode) -> Result<u16, Status> {
        Ok(access_modes(ctx, self.live(inode)?))
    }

    /// `access(2)` on an inode.
    pub fn access(&self, ctx: &Ctx, inode: Inode, mask: u8) -> Result<(), Status> {
        check(ctx, self.live(inode)?, mask)
    }

    /// A directory the caller may add entries to or remove them from.
    pub(super) fn writable_dir(&self, ctx: &Ctx, dir: Inode) -> Result<&Node, Status> {
        let (node, _) = self.dir(dir)?;
        check(ctx, node, W | X)?;
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::node::{Body, NodeType};

    fn node(mode: u16, uid: u32, gid: u32) -> Node {
        Node {
            kind: NodeType::File,
            goal: 1,
            mode,
            uid,
            gid,
            atime: 0,
            mtime: 0,
            ctime: 0,
            nlink: 1,
            trashtime: 0,
            body: Body::Empty,
        }
    }

    #[test]
    fn classes() {
        let n = node(0o640, 10, 20);
        let owner = Ctx { uid: 10, gids: vec![1], now: 0 };
        let member = Ctx { uid: 11, gids: vec![1, 20], now: 0 };
        let other = Ctx { uid: 12, gids: vec![1], now: 0 };
        assert!(allowed(&owner, &n, R | W));
        assert!(!allowed(&owner, &n, X));
        assert!(allowed(&member, &n, R));
        assert!(!allowed(&member, &n, W));
        assert!(!allowed(&other, &n, R));
        assert!(allowed(&Ctx::root(0), &n, R | W | X));
        assert!(allowed(&other, &n, 0));
    }

    #[test]
    fn access_modes_list_every_allowed_subset() {
        let n = node(0o750, 10, 20);
        let member = Ctx { uid: 11, gids: vec![20], now: 0 };
        let other = Ctx { uid: 12, gids: vec![1], now: 0 };
        // r-x: modes 0, x, r, rx, as MooseFS's MODE_TO_ACCMODE table has it.
        assert_eq!(access_modes(&member, &n), 0x33);
        assert_eq!(access_modes(&other, &n), 0x01);
        assert_eq!(access_modes(&Ctx { uid: 10, gids: vec![], now: 0 }, &n), 0xFF);
        assert_eq!(access_modes(&Ctx::root(0), &node(0, 10, 20)), 0xFF);
    }

    #[test]
    fn sticky_and_names() {
        let dir = node(0o1777, 10, 0);
        let entry = node(0o644, 11, 0);
        assert_eq!(check_sticky(&Ctx { uid: 12, gids: vec![], now: 0 }, &dir, &entry), Err(Status::EPERM));
        assert_eq!(check_sticky(&Ctx { uid: 11, gids: vec![], now: 0 }, &dir, &entry), Ok(()));
        assert_eq!(check_sticky(&Ctx { uid: 10, gids: vec![], now: 0 }, &dir, &entry), Ok(()));
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert_eq!(check_name(bad), Err(Status::EINVAL));
        }
        assert_eq!(check_name(&[b'x'; 256]), Err(Status::EINVAL));
        assert_eq!(check_name(&[b'x'; 255]), Ok(()));
    }
}
