//! Access rights the master sent with a lookup, so the open that follows
//! it needs no OPEN call.
//!
//! mfsmaster answers a LOOKUP with `lflags`: one bit per access mode the
//! caller is granted on the node (bit `1 << mode`, mode a mask of R=4,
//! W=2, X=1), plus read-only-filesystem and immutable bits. mfsmount keeps
//! them for a second per (inode, uid, gid, pid) and opens from them; so do
//! we. The application gets its descriptor without waiting for the
//! master; the OPEN that makes the master keep the file while open is sent
//! before the answer and collected after it (see `Core::open`), as with
//! mfsmount. A master that sends no
//! `lflags` is asked with OPEN before the answer.

use std::time::Duration;

use super::core::Caller;
use super::ttlmap::TtlMap;

/// How long a lookup's rights stand in for an OPEN (mfsmount's too).
const TTL: Duration = Duration::from_secs(1);
/// Entries kept before expired ones are swept.
const MAX_ENTRIES: usize = 1 << 14;

const RO_FILESYSTEM: u16 = 0x0200;
const IMMUTABLE: u16 = 0x0800;
/// Hints this client does not follow (append-only, direct mode) make it
/// ask the master instead.
const ASK_MASTER: u16 = 0x1000 | 0x2000;

type Key = (u32, u32, u32, u32);

pub struct AccessCache {
    map: TtlMap<Key, u16>,
}

impl Default for AccessCache {
    fn default() -> Self {
        AccessCache { map: TtlMap::new(TTL, MAX_ENTRIES) }
    }
}

fn key(inode: u32, who: Caller) -> Key {
    (inode, who.uid, who.gid, who.pid)
}

impl AccessCache {
    pub fn put(&self, inode: u32, who: Caller, lflags: u16) {
        self.map.put(key(inode, who), lflags);
    }

    /// The outcome of opening `inode` for `mode` (1 read, 2 write, 3 both)
    /// from a recent lookup's rights; `None` when the master must be asked.
    pub fn open(&self, inode: u32, who: Caller, mode: u8) -> Option<Result<(), i32>> {
        let lflags = self.map.get(&key(inode, who))?;
        if lflags & ASK_MASTER != 0 {
            return None;
        }
        let mask: u16 = match mode {
            1 => 4,
            2 => 2,
            _ => 6,
        };
        let writes = mask & 2 != 0;
        Some(if writes && lflags & RO_FILESYSTEM != 0 {
            Err(libc::EROFS)
        } else if writes && lflags & IMMUTABLE != 0 {
            Err(libc::EPERM)
        } else if lflags & (1 << mask) != 0 {
            Ok(())
        } else {
            Err(libc::EACCES)
        })
    }

    /// Our own change of the node's mode, owner or flags makes the rights
    /// the master gave stale.
    pub fn drop_inode(&self, inode: u32) {
        self.map.retain(|k| k.0 != inode);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_from_lookup_flags() {
        let who = Caller { uid: 10, gid: 20, pid: 30 };
        let c = AccessCache::default();
        assert_eq!(c.open(5, who, 1), None, "nothing cached: ask the master");
        // R (0x10) and RW (0x40) granted, W alone not.
        c.put(5, who, 0x0010 | 0x0040);
        assert_eq!(c.open(5, who, 1), Some(Ok(())));
        assert_eq!(c.open(5, who, 3), Some(Ok(())));
        assert_eq!(c.open(5, who, 2), Some(Err(libc::EACCES)));
        assert_eq!(c.open(5, Caller { pid: 31, ..who }, 1), None, "another process asks the master");
        c.put(6, who, 0x00FF | RO_FILESYSTEM);
        assert_eq!(c.open(6, who, 2), Some(Err(libc::EROFS)));
        assert_eq!(c.open(6, who, 1), Some(Ok(())));
        c.put(7, who, 0x00FF | 0x2000);
        assert_eq!(c.open(7, who, 1), None, "append-only: the master decides");
        c.drop_inode(5);
        assert_eq!(c.open(5, who, 1), None);
    }
}
