//! `.masterinfo`: the file in the mount's root through which the MooseFS
//! tools (`mfsgetgoal`, `mfssetgoal`, `mfsfileinfo`, …) find the master.
//!
//! A tool walks up from its argument to the inode 1 of the same device and
//! reads `.masterinfo` there: 14 bytes, the master's IPv4 address and port,
//! this mount's session id and the master's version. It then connects to
//! the master itself and registers as a tool of that session (mfsmount
//! hands out a local proxy address instead; pointing at the master works
//! with both masters). The tool only accepts the file when it is inode
//! 0x7FFFFFFF, owned by root, with one link and 10 or 14 bytes.

use std::time::{Duration, UNIX_EPOCH};

use fuser::{FileAttr, FileType};

use crate::master::Location;

/// The inode number the tools look for.
pub const MASTERINFO_INODE: u32 = 0x7FFF_FFFF;
const MASTERINFO_NAME: &[u8] = b".masterinfo";
/// The content never changes while the session lives.
pub const TTL: Duration = Duration::from_secs(3600);
const LENGTH: u64 = 14;

/// The special inode `name` in `parent` stands for, if any.
pub fn lookup(parent: u32, name: &[u8]) -> Option<u32> {
    (parent == 1 && name == MASTERINFO_NAME).then_some(MASTERINFO_INODE)
}

pub fn is_special(inode: u32) -> bool {
    inode == MASTERINFO_INODE
}

pub fn attr(inode: u32) -> FileAttr {
    debug_assert!(is_special(inode));
    FileAttr {
        ino: u64::from(inode),
        size: LENGTH,
        blocks: 1,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0o444,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 512,
        flags: 0,
    }
}

/// The bytes of `inode`; empty while the master's address is unknown
/// (the tool then says the file is wrong rather than using a stale one).
pub fn content(inode: u32, at: &Option<Location>) -> Vec<u8> {
    debug_assert!(is_special(inode));
    let Some(at) = at else { return Vec::new() };
    let mut out = Vec::with_capacity(LENGTH as usize);
    out.extend_from_slice(&at.ip.octets());
    out.extend_from_slice(&at.port.to_be_bytes());
    out.extend_from_slice(&at.session.to_be_bytes());
    out.extend_from_slice(&at.version.to_be_bytes());
    debug_assert_eq!(out.len() as u64, LENGTH);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masterinfo_is_what_the_tools_accept() {
        assert_eq!(lookup(1, b".masterinfo"), Some(0x7FFF_FFFF));
        assert_eq!(lookup(2, b".masterinfo"), None, "only in the root");
        assert_eq!(lookup(1, b"masterinfo"), None);
        let a = attr(MASTERINFO_INODE);
        assert_eq!((a.nlink, a.uid, a.gid, a.size, a.kind), (1, 0, 0, 14, FileType::RegularFile));
        let at = Location { ip: [10, 1, 2, 3].into(), port: 9421, session: 7, version: 0x0003_00EA };
        assert_eq!(
            content(MASTERINFO_INODE, &Some(at)),
            [10, 1, 2, 3, 0x24, 0xCD, 0, 0, 0, 7, 0, 3, 0, 0xEA],
            "ip, port, session id, version, big-endian"
        );
        assert!(content(MASTERINFO_INODE, &None).is_empty());
    }
}
