//! Huge pages for fio's buffers, reserved for the bench and given back.
//!
//! Why: on this VM the virtio disk's cost is per memory segment, not per
//! byte. A 64 KiB O_DIRECT read into sixteen scattered 4 KiB pages is
//! sixteen segments; into one huge page it is one. Measured here on the
//! same files at QD32: fio with malloc'd buffers 9–13k IOPS, with huge-page
//! buffers 47–58k IOPS; 1 MiB sequential reads 686 against 3094 MiB/s. The
//! engine's pool is one large allocation whose pages tend to be physically
//! contiguous, so comparing it with malloc'd fio would flatter the engine
//! by 2–4×. fio with huge pages is the honest ceiling of the disk.
//!
//! fio's `--iomem=shmhuge` takes pages from the kernel's huge-page pool
//! (`/proc/sys/vm/nr_hugepages`), which is empty by default. As root the
//! bench grows the pool by what fio needs and takes that back when the
//! guard drops; when that is impossible fio falls back to malloc and the
//! output says so.

use std::path::Path;

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
const MEMINFO: &str = "/proc/meminfo";

/// Huge pages the bench's fio runs need at most: the sequential runs'
/// 16 MiB of buffers in 2 MiB pages per job, with room to spare.
pub const PAGES_NEEDED: u64 = 32;

/// Holds the pool at its enlarged size; dropping it takes back what was
/// added (not a remembered old size, so two benches on different folders
/// cannot leave the pool grown when their runs overlap).
pub struct HugePages {
    added: u64,
}

impl HugePages {
    /// Makes sure `pages` huge pages are free. `Err` says why not.
    pub fn reserve(pages: u64) -> Result<HugePages, String> {
        let free = meminfo_field("HugePages_Free").ok_or("no HugePages_Free in /proc/meminfo")?;
        if free >= pages {
            return Ok(HugePages { added: 0 });
        }
        let total = read_u64(Path::new(NR_HUGEPAGES)).ok_or("cannot read /proc/sys/vm/nr_hugepages")?;
        let added = pages - free;
        let want = total + added;
        std::fs::write(NR_HUGEPAGES, want.to_string())
            .map_err(|e| format!("cannot grow the huge-page pool to {want} pages ({e}); run as root"))?;
        let guard = HugePages { added };
        let now_free = meminfo_field("HugePages_Free").unwrap_or(0);
        if now_free < pages {
            // The guard restores the old size on the way out.
            return Err(format!("the kernel found only {now_free} of {pages} huge pages (memory fragmented?)"));
        }
        tracing::info!("huge-page pool grown from {total} to {want} pages for fio's buffers; restored at the end");
        Ok(guard)
    }
}

impl Drop for HugePages {
    fn drop(&mut self) {
        if self.added == 0 {
            return;
        }
        let Some(total) = read_u64(Path::new(NR_HUGEPAGES)) else { return };
        let back = total.saturating_sub(self.added);
        if let Err(e) = std::fs::write(NR_HUGEPAGES, back.to_string()) {
            tracing::warn!("cannot shrink /proc/sys/vm/nr_hugepages back to {back}: {e}");
        }
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A plain number field of /proc/meminfo, such as `HugePages_Free`.
fn meminfo_field(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(MEMINFO).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_has_the_huge_page_counters() {
        assert!(meminfo_field("HugePages_Free").is_some());
        assert!(meminfo_field("HugePages_Total").is_some());
        assert!(meminfo_field("NoSuchField").is_none());
    }
}
