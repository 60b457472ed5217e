//! One data folder as the store sees it: its disk, its reserve, its health
//! and where the next chunk file goes.
//!
//! Space guard: before anything grows a chunk file, the growth is reserved
//! against `statvfs` free space less the folder's reserve (and against the
//! folder's size cap, if any). Reservations of operations still in flight
//! are counted, so concurrent writers cannot together eat into the reserve.
//! A refused reservation is `NoSpace` and happens before the file is touched.
//!
//! Health: a failed write or fsync marks the folder damaged for good (a
//! failed fsync may have dropped dirty pages; retrying would lie). Every
//! later operation on it fails fast with `DiskDamaged`.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::HddLine;
use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::layout::SUBFOLDERS;

pub(crate) struct Folder {
    pub(crate) disk: Arc<dyn Disk>,
    pub(crate) line: HddLine,
    pub(crate) leave_free: u64,
    damaged: AtomicBool,
    /// Growth reserved by operations in flight.
    pending: AtomicU64,
    /// Bytes of chunk files on this folder, as far as the store knows.
    stored: AtomicU64,
    placement: Mutex<Placement>,
}

/// MooseFS 3.0.75+ placement: fill the current subfolder until it is
/// `rr_count` chunks ahead of the emptiest, then move to the emptiest.
pub(crate) struct Placement {
    counts: [u32; SUBFOLDERS],
    current: usize,
    rr_count: u32,
}

impl Placement {
    pub(crate) fn new(rr_count: u32) -> Placement {
        assert!(rr_count > 0);
        Placement { counts: [0; SUBFOLDERS], current: 0, rr_count }
    }

    fn emptiest(&self) -> usize {
        (0..SUBFOLDERS).min_by_key(|&i| self.counts[i]).unwrap_or(0)
    }

    /// Picks the subfolder for a new chunk and counts it there.
    pub(crate) fn pick(&mut self) -> usize {
        let least = self.counts[self.emptiest()];
        if self.counts[self.current] >= least.saturating_add(self.rr_count) {
            self.current = self.emptiest();
        }
        self.counts[self.current] += 1;
        self.current
    }

    pub(crate) fn add(&mut self, sub: usize) {
        self.counts[sub] += 1;
    }

    pub(crate) fn remove(&mut self, sub: usize) {
        debug_assert!(self.counts[sub] > 0);
        self.counts[sub] = self.counts[sub].saturating_sub(1);
    }

    /// After the scan: start filling the emptiest subfolder.
    pub(crate) fn restart(&mut self) {
        self.current = self.emptiest();
    }
}

/// Space a folder reports, MooseFS style: the reserve is taken off `total`'s
/// free part, so `used = total - avail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderSpace {
    pub used: u64,
    pub total: u64,
    pub avail: u64,
}

/// Growth reserved on a folder; released when dropped.
pub(crate) struct Reservation<'a> {
    folder: &'a Folder,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.folder.pending.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl Folder {
    pub(crate) fn new(disk: Arc<dyn Disk>, line: HddLine, leave_free_default: u64, rr_count: u32) -> Folder {
        let leave_free = line.leave_free.unwrap_or(leave_free_default);
        Folder {
            disk,
            line,
            leave_free,
            damaged: AtomicBool::new(false),
            pending: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            placement: Mutex::new(Placement::new(rr_count)),
        }
    }

    pub(crate) fn placement(&self) -> std::sync::MutexGuard<'_, Placement> {
        self.placement.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_damaged(&self) -> bool {
        self.damaged.load(Ordering::SeqCst)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.is_damaged() {
            return Err(Error::DiskDamaged { path: self.line.path.clone() });
        }
        Ok(())
    }

    /// Marks the folder damaged after a failed write or fsync; ENOSPC from
    /// the file system is a full disk, not a broken one.
    pub(crate) fn note_write_error(&self, err: &io::Error) {
        if err.raw_os_error() == Some(libc::ENOSPC) {
            return;
        }
        if !self.damaged.swap(true, Ordering::SeqCst) {
            tracing::error!(folder = %self.line.path.display(), "write failed ({err}): folder marked damaged");
        }
    }

    pub(crate) fn add_stored(&self, bytes: u64) {
        self.stored.fetch_add(bytes, Ordering::SeqCst);
    }

    pub(crate) fn sub_stored(&self, bytes: u64) {
        let _ = self.stored.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(v.saturating_sub(bytes)));
    }

    pub(crate) fn space(&self) -> Result<FolderSpace> {
        let fs = self.disk.space().map_err(|e| Error::io("statvfs", &self.line.path, e))?;
        let mut total = fs.total;
        let mut avail = fs.avail.saturating_sub(self.leave_free);
        if let Some(limit) = self.line.size_limit {
            total = limit;
            avail = avail.min(limit.saturating_sub(self.stored.load(Ordering::SeqCst)));
        }
        avail = avail.min(total);
        Ok(FolderSpace { used: total - avail, total, avail })
    }

    /// Reserves `bytes` of growth or fails with `NoSpace` before any I/O.
    pub(crate) fn reserve(&self, bytes: u64) -> Result<Reservation<'_>> {
        self.check()?;
        let avail = self.space()?.avail;
        let pending = self.pending.fetch_add(bytes, Ordering::SeqCst) + bytes;
        let reservation = Reservation { folder: self, bytes };
        if pending > avail {
            return Err(Error::NoSpace { path: self.line.path.clone() });
        }
        Ok(reservation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_fills_one_subfolder_then_moves_to_the_emptiest() {
        let mut p = Placement::new(3);
        let picks: Vec<usize> = (0..7).map(|_| p.pick()).collect();
        assert_eq!(picks, vec![0, 0, 0, 1, 1, 1, 2]);
        p.remove(0);
        p.remove(0);
        p.remove(0);
        for _ in 0..2 {
            assert_eq!(p.pick(), 2);
        }
        assert_eq!(p.pick(), 0, "subfolder 0 emptied out, so it is the emptiest");
    }
}
