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

use std::time::Duration;

use elkfs_proto::client::{Attr, MATTR_NOACACHE};

use super::ttlmap::TtlMap;

/// Entries kept before expired ones are swept (bounded memory).
const MAX_ENTRIES: usize = 1 << 16;

pub struct AttrCache {
    /// Attributes and the flush epoch they were read at.
    map: Option<TtlMap<u32, (Attr, u64)>>,
}

impl AttrCache {
    /// With a zero `ttl` nothing is kept.
    pub fn new(ttl: Duration) -> AttrCache {
        AttrCache { map: (!ttl.is_zero()).then(|| TtlMap::new(ttl, MAX_ENTRIES)) }
    }

    /// Keeps `a` for `inode`, seen at flush epoch `epoch`.
    pub fn put(&self, inode: u32, a: &Attr, epoch: u64) {
        if let Some(map) = self.map.as_ref().filter(|_| a.flags & MATTR_NOACACHE == 0) {
            map.put(inode, (*a, epoch));
        }
    }

    /// What the master said of `inode` less than `ttl` ago, unless data
    /// was flushed since (`epoch` moved on).
    pub fn get(&self, inode: u32, epoch: u64) -> Option<Attr> {
        let (a, seen) = self.map.as_ref()?.get(&inode)?;
        (seen == epoch).then_some(a)
    }

    pub fn drop_inode(&self, inode: u32) {
        if let Some(map) = &self.map {
            map.remove(&inode);
        }
    }

    pub fn clear(&self) {
        if let Some(map) = &self.map {
            map.clear();
        }
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
