//! Attributes the master sent in the last `attr_ttl`, so a `stat` after a
//! lookup costs one master call instead of two.
//!
//! fuser gives an entry reply one lifetime for the entry and its
//! attributes; with entries not cached (the master checks search
//! permission on every lookup), the kernel would ask GETATTR right after
//! each LOOKUP. This cache answers that GETATTR with what the lookup
//! brought, for no longer than the kernel itself would have cached it.
//!
//! Staleness is bounded as the kernel's cache is: `attr_ttl`, plus our own
//! changes dropping entries at once. Any flush of written data (which moves
//! a file's length and mtime at the master) empties the cache through the
//! file layer's flush epoch; a namespace change drops the nodes it touches.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use elkfs_proto::client::{Attr, MATTR_NOACACHE};

/// Entries kept before expired ones are swept (bounded memory).
const MAX_ENTRIES: usize = 1 << 16;

pub struct AttrCache {
    ttl: Duration,
    map: Mutex<HashMap<u32, (Attr, Instant, u64)>>,
}

impl AttrCache {
    pub fn new(ttl: Duration) -> AttrCache {
        AttrCache { ttl, map: Mutex::new(HashMap::new()) }
    }

    /// Keeps `a` for `inode`, seen at flush epoch `epoch`.
    pub fn put(&self, inode: u32, a: &Attr, epoch: u64) {
        if self.ttl.is_zero() || a.flags & MATTR_NOACACHE != 0 {
            return;
        }
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, (_, at, _)| at.elapsed() < ttl);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(inode, (*a, Instant::now(), epoch));
    }

    /// What the master said of `inode` less than `ttl` ago, unless data
    /// was flushed since (`epoch` moved on).
    pub fn get(&self, inode: u32, epoch: u64) -> Option<Attr> {
        let map = self.lock();
        let (a, at, seen) = map.get(&inode)?;
        (*seen == epoch && at.elapsed() < self.ttl).then_some(*a)
    }

    pub fn drop_inode(&self, inode: u32) {
        self.lock().remove(&inode);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (Attr, Instant, u64)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_same_epoch_only() {
        let c = AttrCache::new(Duration::from_millis(200));
        let a = Attr { length: 5, ..Attr::default() };
        c.put(7, &a, 1);
        assert_eq!(c.get(7, 1).map(|a| a.length), Some(5));
        assert!(c.get(7, 2).is_none(), "a flush since makes it stale");
        c.drop_inode(7);
        assert!(c.get(7, 1).is_none());
        c.put(8, &Attr { flags: MATTR_NOACACHE, ..a }, 1);
        assert!(c.get(8, 1).is_none(), "the master said not to cache it");
        c.put(9, &a, 1);
        std::thread::sleep(Duration::from_millis(250));
        assert!(c.get(9, 1).is_none(), "expired");
        assert!(AttrCache::new(Duration::ZERO).get(9, 1).is_none());
    }
}
