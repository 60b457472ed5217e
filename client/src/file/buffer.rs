//! The write-back buffer of one open file: writes kept in arrival order,
//! a write that continues the previous one appended to it, so sequential
//! small writes leave whole 64 KiB blocks for the chunkservers.
//!
//! Invariant: applying the extents in order gives the file the caller
//! wrote; later extents may overlap earlier ones and win.

/// A write that continues the last extent is appended to it up to this
/// size; past it, a write's own allocation becomes the next extent, so the
/// large writes of a sequential writer are never copied again (growing one
/// big extent re-copied everything at each doubling).
const COALESCE_MAX: usize = 1 << 20;
const BLOCK: u64 = crate::data::BLOCK as u64;

/// Extents of one file, in the order they were written.
#[derive(Debug, Default)]
pub struct WriteBuffer {
    extents: Vec<(u64, Vec<u8>)>,
    bytes: usize,
}

impl WriteBuffer {
    pub fn add(&mut self, offset: u64, data: Vec<u8>) {
        self.bytes += data.len();
        if let Some((start, buf)) = self.extents.last_mut() {
            if *start + buf.len() as u64 == offset && buf.len() + data.len() <= COALESCE_MAX {
                if buf.capacity() < buf.len() + data.len() {
                    buf.reserve_exact(COALESCE_MAX - buf.len());
                }
                buf.extend_from_slice(&data);
                return;
            }
        }
        self.extents.push((offset, data));
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.extents.is_empty()
    }

    /// The end of the furthest extent: the file is at least this long.
    pub fn end(&self) -> u64 {
        self.extents.iter().map(|(s, b)| s + b.len() as u64).max().unwrap_or(0)
    }

    /// Drops what lies at or past `length` (a truncate while buffered).
    pub fn truncate(&mut self, length: u64) {
        for (start, buf) in &mut self.extents {
            if *start >= length {
                buf.clear();
            } else if *start + buf.len() as u64 > length {
                buf.truncate((length - *start) as usize);
            }
        }
        self.extents.retain(|(_, b)| !b.is_empty());
        self.bytes = self.extents.iter().map(|(_, b)| b.len()).sum();
    }

    pub fn take(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.bytes = 0;
        std::mem::take(&mut self.extents)
    }

    /// Takes what a streaming sender may send now: everything but the
    /// end of the last extent past its last block boundary. That end is
    /// the one a sequential writer continues, so it stays to be completed
    /// into a whole block rather than sent as a partial one now and merged
    /// on the chunkservers later. Write order is kept: the part left is
    /// the newest.
    pub fn take_whole_blocks(&mut self) -> Vec<(u64, Vec<u8>)> {
        let Some((start, data)) = self.extents.last_mut() else { return Vec::new() };
        let end = *start + data.len() as u64;
        let cut = end / BLOCK * BLOCK;
        if cut >= end {
            return self.take();
        }
        let kept = if cut <= *start {
            self.extents.pop()
        } else {
            let tail = data.split_off((cut - *start) as usize);
            Some((cut, tail))
        };
        let out = self.take();
        if let Some((at, tail)) = kept {
            self.bytes = tail.len();
            self.extents.push((at, tail));
        }
        out
    }

    /// Lays buffered bytes over `buf`, which holds the file from `offset`:
    /// a read sees this mount's own writes before they are flushed.
    pub fn overlay(&self, offset: u64, buf: &mut [u8]) {
        let end = offset + buf.len() as u64;
        for (start, data) in &self.extents {
            let dend = start + data.len() as u64;
            if dend <= offset || *start >= end {
                continue;
            }
            let from = offset.max(*start);
            let to = end.min(dend);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_writes_coalesce_and_overlay_wins() {
        let mut b = WriteBuffer::default();
        b.add(0, vec![1; 4096]);
        b.add(4096, vec![2; 4096]);
        b.add(100, vec![3; 10]);
        assert_eq!(b.bytes(), 8202);
        assert_eq!(b.end(), 8192);
        let mut view = vec![0u8; 8192];
        b.overlay(0, &mut view);
        assert_eq!((view[99], view[100], view[109], view[110], view[5000]), (1, 3, 3, 1, 2));
        b.truncate(4000);
        assert_eq!(b.end(), 4000);
        let ext = b.take();
        assert_eq!(ext.len(), 2);
        assert!(b.is_empty());
        // Large sequential writes stay separate extents, small ones merge
        // up to the limit.
        b.add(0, vec![4; COALESCE_MAX]);
        b.add(COALESCE_MAX as u64, vec![5; 4096]);
        b.add(COALESCE_MAX as u64 + 4096, vec![6; 4096]);
        let shape: Vec<(u64, usize)> = b.take().iter().map(|(s, d)| (*s, d.len())).collect();
        assert_eq!(shape, vec![(0, COALESCE_MAX), (COALESCE_MAX as u64, 8192)]);
    }

    #[test]
    fn streaming_takes_whole_blocks_and_keeps_the_tail() {
        let block = BLOCK as usize;
        let mut b = WriteBuffer::default();
        b.add(0, vec![1; block + 100]);
        let taken: Vec<(u64, usize)> = b.take_whole_blocks().iter().map(|(s, d)| (*s, d.len())).collect();
        assert_eq!(taken, vec![(0, block)]);
        assert_eq!((b.bytes(), b.end()), (100, BLOCK + 100));
        // The tail is continued by the next write and goes out whole.
        b.add(BLOCK + 100, vec![2; block - 100]);
        let taken = b.take_whole_blocks();
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].0, taken[0].1.len(), taken[0].1[99], taken[0].1[100]), (BLOCK, block, 1, 2));
        assert!(b.is_empty() && b.bytes() == 0);
        // An extent inside one block stays; earlier ones go, in order.
        b.add(10 * BLOCK, vec![3; 10]);
        b.add(BLOCK + 5, vec![4; 20]);
        let taken: Vec<(u64, usize)> = b.take_whole_blocks().iter().map(|(s, d)| (*s, d.len())).collect();
        assert_eq!(taken, vec![(10 * BLOCK, 10)]);
        assert_eq!(b.bytes(), 20);
        assert!(b.take_whole_blocks().is_empty(), "a partial block alone stays");
        assert_eq!(b.take().len(), 1);
    }
}
