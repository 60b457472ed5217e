//! Modification times waiting to be told to the master.
//!
//! Clients from 3.0.74 on report the times of their writes with
//! AMTIME_INODES (no reply); the master keeps the later of that and its
//! own stamp at the end of a chunk write. One message per flush cost the
//! master a request per small file on top of the writes' own; mfsmount
//! gathers them and sends one list about once a second, and so does this
//! mount. Until the master has the time, this
//! mount lays it over the attributes the master sends, so `stat` here
//! sees its own writes at once; other mounts see them within a second or
//! so, as with mfsmount.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Clone, Copy)]
struct Stamp {
    mtime: u32,
    /// Sent in the last list: kept for one more period, so attributes the
    /// master read before it applied the list still get the time laid
    /// over them, then dropped.
    sent: bool,
}

/// Pending mtimes by inode.
#[derive(Debug, Default)]
pub struct Stamps {
    map: Mutex<HashMap<u32, Stamp>>,
}

impl Stamps {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Stamp>> {
        // Every update is one statement on the map: a poisoned lock still
        // guards whole entries.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `inode` was written at `mtime` (Unix seconds).
    pub fn note(&self, inode: u32, mtime: u32) {
        let mut map = self.lock();
        let s = map.entry(inode).or_insert(Stamp { mtime, sent: false });
        s.mtime = s.mtime.max(mtime);
        s.sent = false;
    }

    /// An explicit time was set (utimes): a pending write time must not
    /// override it.
    pub fn forget(&self, inode: u32) {
        self.lock().remove(&inode);
    }

    /// `mtime` from the master, or this mount's later one.
    pub fn overlay(&self, inode: u32, mtime: u32) -> u32 {
        self.lock().get(&inode).map_or(mtime, |s| s.mtime.max(mtime))
    }

    /// The list to send now, as `(inode, atime, mtime)` with atime 0 (not
    /// changed); entries sent last time are dropped.
    pub fn due(&self) -> Vec<(u32, u32, u32)> {
        let mut map = self.lock();
        map.retain(|_, s| !s.sent);
        map.iter_mut()
            .map(|(inode, s)| {
                s.sent = true;
                (*inode, 0, s.mtime)
            })
            .collect()
    }

    /// A list that could not be sent goes out with the next one.
    pub fn unsent(&self, list: &[(u32, u32, u32)]) {
        for &(inode, _, mtime) in list {
            self.note(inode, mtime);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_sent_once_and_laid_over_until_the_next_list() {
        let s = Stamps::default();
        assert_eq!(s.overlay(7, 100), 100);
        s.note(7, 200);
        s.note(7, 150);
        s.note(8, 300);
        assert_eq!(s.overlay(7, 100), 200, "the later of the two notes");
        assert_eq!(s.overlay(7, 250), 250, "the master's time when it is later");
        let mut first = s.due();
        first.sort();
        assert_eq!(first, vec![(7, 0, 200), (8, 0, 300)]);
        assert_eq!(s.overlay(7, 100), 200, "still laid over while the list is on its way");
        s.note(8, 310);
        assert_eq!(s.due(), vec![(8, 0, 310)], "7 dropped; 8 written again");
        assert_eq!(s.overlay(7, 100), 100);
        assert!(s.due().is_empty());
        assert!(s.due().is_empty());
    }

    #[test]
    fn unsent_lists_return_and_utimes_wins() {
        let s = Stamps::default();
        s.note(1, 10);
        let list = s.due();
        s.unsent(&list);
        assert_eq!(s.due(), vec![(1, 0, 10)]);
        s.note(2, 20);
        s.forget(2);
        assert_eq!(s.overlay(2, 5), 5);
        assert!(!s.due().iter().any(|e| e.0 == 2));
    }
}
