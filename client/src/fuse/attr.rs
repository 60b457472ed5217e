//! MooseFS attributes → what the kernel wants, and the device number and
//! node type conversions both ways.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use elkfs_proto::client::{
    Attr, TYPE_BLOCKDEV, TYPE_CHARDEV, TYPE_DIRECTORY, TYPE_FIFO, TYPE_FILE, TYPE_SOCKET, TYPE_SYMLINK,
};
use fuser::{FileAttr, FileType};

/// The block size reported to `stat` and `statfs`: MooseFS's block.
pub const BLOCK_SIZE: u32 = 65_536;

pub fn file_type(node_type: u8) -> FileType {
    match node_type {
        TYPE_DIRECTORY => FileType::Directory,
        TYPE_SYMLINK => FileType::Symlink,
        TYPE_FIFO => FileType::NamedPipe,
        TYPE_BLOCKDEV => FileType::BlockDevice,
        TYPE_CHARDEV => FileType::CharDevice,
        TYPE_SOCKET => FileType::Socket,
        // Files, and trash/sustained nodes which the master shows as files.
        _ => FileType::RegularFile,
    }
}

/// `S_IFMT` bits of a mknod mode → `TYPE_*`; `None` for an unknown type.
pub fn node_type_of_mode(mode: u32) -> Option<u8> {
    match mode & libc::S_IFMT {
        libc::S_IFREG | 0 => Some(TYPE_FILE),
        libc::S_IFDIR => Some(TYPE_DIRECTORY),
        libc::S_IFLNK => Some(TYPE_SYMLINK),
        libc::S_IFIFO => Some(TYPE_FIFO),
        libc::S_IFBLK => Some(TYPE_BLOCKDEV),
        libc::S_IFCHR => Some(TYPE_CHARDEV),
        libc::S_IFSOCK => Some(TYPE_SOCKET),
        _ => None,
    }
}

/// The kernel's device number (`new_encode_dev` form, what FUSE carries)
/// → MooseFS `major:16 minor:16`.
pub fn rdev_to_mfs(rdev: u32) -> u32 {
    let major = (rdev & 0xF_FF00) >> 8;
    let minor = (rdev & 0xFF) | ((rdev >> 12) & 0xF_FF00);
    ((major & 0xFFFF) << 16) | (minor & 0xFFFF)
}

/// MooseFS `major:16 minor:16` → the kernel's `new_encode_dev` form.
pub fn rdev_from_mfs(rdev: u32) -> u32 {
    let (major, minor) = (rdev >> 16, rdev & 0xFFFF);
    (minor & 0xFF) | (major << 8) | ((minor & !0xFF) << 12)
}

pub fn time(secs: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::from(secs))
}

/// The kernel's view; `length` replaces the master's file length (this
/// mount may hold writes the master has not seen yet).
pub fn file_attr(inode: u32, a: &Attr, length: u64) -> FileAttr {
    let size = if a.node_type == TYPE_FILE { length } else { a.length };
    FileAttr {
        ino: u64::from(inode),
        size,
        blocks: size.div_ceil(512),
        atime: time(a.atime),
        mtime: time(a.mtime),
        ctime: time(a.ctime),
        crtime: time(a.ctime),
        kind: file_type(a.node_type),
        perm: a.mode,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: rdev_from_mfs(a.rdev),
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_round_trip() {
        // 8:1 (sda1) and 259:70000-ish minors beyond 8 bits.
        for (major, minor) in [(8u32, 1u32), (259, 300), (1, 0xFFFF)] {
            let kernel = (minor & 0xFF) | (major << 8) | ((minor & !0xFF) << 12);
            let mfs = rdev_to_mfs(kernel);
            assert_eq!(mfs, (major << 16) | minor);
            assert_eq!(rdev_from_mfs(mfs), kernel);
        }
    }

    #[test]
    fn mode_types() {
        assert_eq!(node_type_of_mode(libc::S_IFIFO | 0o644), Some(TYPE_FIFO));
        assert_eq!(node_type_of_mode(0o644), Some(TYPE_FILE));
        assert_eq!(node_type_of_mode(0o170000), None);
    }
}
