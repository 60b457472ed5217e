//! The aligned buffer pool every data-path byte lives in.
//!
//! One allocation, made at start, cut into 64 KiB slots aligned to 4096
//! bytes, so any slot can go straight to an O_DIRECT read or write. A [`Buf`]
//! owns its slot until it is dropped, and then the slot returns to the pool;
//! while an I/O is in flight the disk thread holds the `Buf`, so the memory
//! cannot be reused under the kernel. The pool is bounded: when every slot is
//! out, [`BufPool::get`] waits, which is the engine's back-pressure.
//!
//! The network layer receives straight into a `Buf` and hands it to the
//! engine; the engine counts every byte it has to copy between buffers on the
//! data path in [`BufPool::copied_bytes`], which stays 0 for aligned
//! whole-block traffic (tests hold it to that).

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::sync::Mutex;
use tokio::sync::Semaphore;

use crate::layout::{BLOCK_SIZE, IO_ALIGN};

/// Bytes in one pool slot.
pub const BUF_SIZE: usize = BLOCK_SIZE;

struct PoolInner {
    base: NonNull<u8>,
    /// Bytes mapped at `base`.
    mapped: usize,
    slots: usize,
    free: Mutex<FreeSlots>,
    permits: Semaphore,
    copied: AtomicU64,
}

// SAFETY: the region is only reached through `Buf`s, each of which owns a
// disjoint slot; the bookkeeping is atomic.
unsafe impl Send for PoolInner {}
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: mapped in `map_region` with this length; every `Buf` holds
        // an `Arc` to us, so none is alive now.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.mapped) };
    }
}

/// Maps `len` bytes of zeroed anonymous memory and asks for transparent huge
/// pages. A virtio disk pays per physical segment, so buffers that sit in
/// 2 MiB pages cost one segment each instead of sixteen; the kernel also pins
/// fewer pages per O_DIRECT request. Page alignment covers O_DIRECT's 4096.
fn map_region(len: usize) -> NonNull<u8> {
    // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(ptr != libc::MAP_FAILED, "buffer pool mapping of {len} bytes failed: {}", std::io::Error::last_os_error());
    // SAFETY: advice on the mapping just made; failure only means no huge pages.
    unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
    NonNull::new(ptr.cast()).expect("mmap never returns null on success")
}

/// Which slots are free, as a bitmap. Multi-buffer requests get adjacent
/// slots when a run is free: adjacent slots inside one huge page are one
/// physical segment for the disk, and one bvec for the kernel.
struct FreeSlots {
    words: Vec<u64>,
    slots: usize,
}

impl FreeSlots {
    fn new(slots: usize) -> FreeSlots {
        let mut words = vec![u64::MAX; slots.div_ceil(64)];
        if !slots.is_multiple_of(64) {
            *words.last_mut().expect("at least one word") = (1u64 << (slots % 64)) - 1;
        }
        FreeSlots { words, slots }
    }

    fn is_free(&self, index: usize) -> bool {
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    fn put(&mut self, index: usize) {
        debug_assert!(!self.is_free(index), "slot {index} returned twice");
        self.words[index / 64] |= 1 << (index % 64);
    }

    /// The lowest free slot; the caller holds a permit, so one exists.
    fn take_one(&mut self) -> usize {
        let (word, bits) =
            self.words.iter_mut().enumerate().find(|(_, bits)| **bits != 0).expect("a permit guarantees a free slot");
        let bit = bits.trailing_zeros() as usize;
        *bits &= !(1 << bit);
        word * 64 + bit
    }

    /// The first free run of `count` slots starting at a multiple of
    /// `count` (so it never straddles a 2 MiB page when `count` divides 32).
    fn take_run(&mut self, count: usize) -> Option<usize> {
        if count < 2 {
            return None;
        }
        let start = (0..self.slots.saturating_sub(count - 1))
            .step_by(count)
            .find(|&start| (start..start + count).all(|i| self.is_free(i)))?;
        for i in start..start + count {
            self.words[i / 64] &= !(1 << (i % 64));
        }
        Some(start)
    }
}

/// A shared, bounded pool of aligned 64 KiB buffers.
#[derive(Clone)]
pub struct BufPool {
    inner: Arc<PoolInner>,
}

impl BufPool {
    /// Allocates `slots` buffers up front.
    pub fn new(slots: usize) -> BufPool {
        assert!(slots > 0 && slots <= u32::MAX as usize, "pool size {slots}");
        let mapped = slots * BUF_SIZE;
        let base = map_region(mapped);
        assert_eq!(base.as_ptr() as usize % IO_ALIGN, 0);
        let free = Mutex::new(FreeSlots::new(slots));
        let inner = PoolInner { base, mapped, slots, free, permits: Semaphore::new(slots), copied: AtomicU64::new(0) };
        BufPool { inner: Arc::new(inner) }
    }

    /// Takes a buffer, waiting while the pool is empty. Its length is 0.
    pub async fn get(&self) -> Buf {
        let permit = self.inner.permits.acquire().await.expect("pool semaphore is never closed");
        permit.forget();
        self.take_slot()
    }

    /// Takes `count` buffers at once, waiting until all are free. Taking
    /// them one by one could deadlock two callers that each hold half.
    pub async fn get_many(&self, count: usize) -> Vec<Buf> {
        assert!(count <= self.inner.slots, "asked for {count} of {} buffers", self.inner.slots);
        let permits = self.inner.permits.acquire_many(count as u32).await.expect("pool semaphore is never closed");
        permits.forget();
        let start = self.free().take_run(count);
        match start {
            Some(start) => (start..start + count).map(|index| self.buf_at(index)).collect(),
            None => (0..count).map(|_| self.take_slot()).collect(),
        }
    }

    /// Takes a buffer if one is free.
    pub fn try_get(&self) -> Option<Buf> {
        let permit = self.inner.permits.try_acquire().ok()?;
        permit.forget();
        Some(self.take_slot())
    }

    fn free(&self) -> std::sync::MutexGuard<'_, FreeSlots> {
        self.inner.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take_slot(&self) -> Buf {
        let index = self.free().take_one();
        self.buf_at(index)
    }

    fn buf_at(&self, index: usize) -> Buf {
        let index = index as u32;
        // SAFETY: index < slots, so the slot lies inside the allocation.
        let ptr = unsafe { self.inner.base.as_ptr().add(index as usize * BUF_SIZE) };
        Buf { ptr: NonNull::new(ptr).expect("slot pointer"), index, len: 0, pool: self.inner.clone() }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.inner.slots
    }

    /// Slots not handed out right now.
    pub fn available(&self) -> usize {
        self.inner.permits.available_permits()
    }

    /// The whole region, for registering it with a ring.
    pub fn region(&self) -> (*mut u8, usize) {
        (self.inner.base.as_ptr(), self.inner.slots * BUF_SIZE)
    }

    /// Bytes the engine copied between buffers on the data path so far.
    pub fn copied_bytes(&self) -> u64 {
        self.inner.copied.load(Ordering::Relaxed)
    }

    pub(crate) fn note_copy(&self, bytes: usize) {
        self.inner.copied.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// One 64 KiB, 4096-aligned slot of the pool, with a length.
///
/// Derefs to the first `len` bytes. [`Buf::full_mut`] reaches all 64 KiB.
pub struct Buf {
    ptr: NonNull<u8>,
    index: u32,
    len: usize,
    pool: Arc<PoolInner>,
}

// SAFETY: a `Buf` is the only handle to its slot.
unsafe impl Send for Buf {}
unsafe impl Sync for Buf {}

impl Buf {
    pub fn capacity(&self) -> usize {
        BUF_SIZE
    }

    pub fn set_len(&mut self, len: usize) {
        assert!(len <= BUF_SIZE, "buffer length {len} over {BUF_SIZE}");
        self.len = len;
    }

    /// The slot's index in the pool (its registered-buffer index).
    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// All 64 KiB of the slot, whatever the length.
    pub fn full_mut(&mut self) -> &mut [u8] {
        // SAFETY: the slot is BUF_SIZE bytes and owned by this `Buf`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), BUF_SIZE) }
    }

    /// All 64 KiB of the slot, read-only.
    pub fn full(&self) -> &[u8] {
        // SAFETY: as in `full_mut`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), BUF_SIZE) }
    }
}

impl Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.full()[..self.len]
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.full_mut()[..len]
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        self.pool.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).put(self.index as usize);
        self.pool.permits.add_permits(1);
    }
}

impl std::fmt::Debug for Buf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buf#{}[{}]", self.index, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_return_to_the_pool() {
        let pool = BufPool::new(3);
        let mut a = pool.try_get().unwrap();
        let b = pool.try_get().unwrap();
        let c = pool.try_get().unwrap();
        assert!(pool.try_get().is_none(), "pool is bounded");
        for buf in [&a, &b, &c] {
            assert_eq!(buf.as_ptr() as usize % IO_ALIGN, 0);
            assert_eq!(buf.len(), 0);
        }
        a.set_len(10);
        a.copy_from_slice(b"0123456789");
        assert_eq!(&a[..], b"0123456789");
        drop(b);
        assert_eq!(pool.available(), 1);
        let d = pool.try_get().unwrap();
        assert_ne!(d.index(), a.index());
    }

    #[tokio::test]
    async fn get_waits_for_a_free_buffer() {
        let pool = BufPool::new(1);
        let held = pool.get().await;
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.index() })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        let index = held.index();
        drop(held);
        assert_eq!(waiter.await.unwrap(), index);
    }
}
