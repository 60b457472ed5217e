//! Counters and latency histograms of the chunkserver: per chunk operation
//! and per data folder, in one place so the status reply, the log and the
//! benchmark read the same numbers.
//!
//! Recording happens on the data path from many tokio tasks at once, so it
//! must be cheap and never block for long: counts are relaxed atomics, and
//! each histogram sits behind its own mutex that is held only for one
//! `record` (tens of nanoseconds). Counters and histograms are updated one
//! after the other, not as a unit, so a snapshot taken mid-record may see a
//! count one ahead of its histogram; that is fine for monitoring.
//!
//! Latencies are in microseconds and only successful operations enter the
//! histograms: failures are often instant (no such chunk) or very slow (a
//! dying disk), and mixing them in would hide both in the percentiles. They
//! are counted in `errors` instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram tells apart: one hour in µs. Slower
/// operations are recorded as one hour, which is still clearly visible.
const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Three significant digits: 0.1 % error at any latency, for about 180 KiB
/// per histogram (23 552 u64 counts), a few MiB in all.
const LATENCY_SIGFIG: u8 = 3;

/// The chunk operations a chunkserver performs, as the master and clients
/// ask for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Read,
    Write,
    Create,
    Delete,
    SetVersion,
    Duplicate,
    Truncate,
    DupTrunc,
    Replicate,
    /// One chunk of the background checksum test.
    Test,
    /// A client asking how many blocks a chunk has.
    Blocks,
    /// A checksum of a whole chunk (for the master or a replica check).
    Checksum,
}

impl Op {
    pub const ALL: [Op; 12] = [
        Op::Read,
        Op::Write,
        Op::Create,
        Op::Delete,
        Op::SetVersion,
        Op::Duplicate,
        Op::Truncate,
        Op::DupTrunc,
        Op::Replicate,
        Op::Test,
        Op::Blocks,
        Op::Checksum,
    ];

    /// The name used in JSON and logs.
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Create => "create",
            Op::Delete => "delete",
            Op::SetVersion => "set_version",
            Op::Duplicate => "duplicate",
            Op::Truncate => "truncate",
            Op::DupTrunc => "duptrunc",
            Op::Replicate => "replicate",
            Op::Test => "test",
            Op::Blocks => "blocks",
            Op::Checksum => "checksum",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which way bytes moved on a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskIo {
    Read,
    Write,
}

/// A latency histogram that tolerates a poisoned lock: a panic elsewhere
/// must not take monitoring down with it, and a histogram has no invariant
/// a half-done `record` could break.
struct Latency(Mutex<Histogram<u64>>);

impl Latency {
    fn new() -> Latency {
        let histogram =
            Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGFIG).expect("constant histogram bounds are valid");
        Latency(Mutex::new(histogram))
    }

    fn record(&self, latency_us: u64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).saturating_record(latency_us);
    }

    fn summary(&self) -> LatencySummary {
        let histogram = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            latency_us_p50: histogram.value_at_quantile(0.50),
            latency_us_p99: histogram.value_at_quantile(0.99),
            latency_us_max: histogram.max(),
        }
    }
}

/// Percentiles of one histogram; all 0 when nothing was recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    pub latency_us_p50: u64,
    pub latency_us_p99: u64,
    pub latency_us_max: u64,
}

struct OpStats {
    count: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
    latency: Latency,
}

struct DiskStats {
    reads: AtomicU64,
    writes: AtomicU64,
    read_bytes: AtomicU64,
    write_bytes: AtomicU64,
    errors: AtomicU64,
    latency: Latency,
}

/// All of the chunkserver's counters. Shared as `Arc<Metrics>`.
pub struct Metrics {
    ops: [OpStats; Op::ALL.len()],
    /// Folders are few and fixed after start-up, so the write lock is taken
    /// once per folder and every later record only reads the map.
    disks: RwLock<HashMap<PathBuf, Arc<DiskStats>>>,
    /// Write sessions by the number of servers after this one in the chain
    /// (0, 1, 2, 3 or more): shows where in chains this server stands.
    write_chains: [AtomicU64; 4],
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            ops: std::array::from_fn(|_| OpStats {
                count: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                latency: Latency::new(),
            }),
            disks: RwLock::new(HashMap::new()),
            write_chains: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Records one finished operation that began at `started`; `bytes`
    /// counts only when it succeeded.
    pub fn record(&self, op: Op, started: Instant, bytes: u64, ok: bool) {
        self.record_latency_us(op, elapsed_us(started), bytes, ok);
    }

    /// As [`Metrics::record`], for a latency measured elsewhere.
    pub fn record_latency_us(&self, op: Op, latency_us: u64, bytes: u64, ok: bool) {
        let stats = &self.ops[op.index()];
        stats.count.fetch_add(1, Ordering::Relaxed);
        if ok {
            stats.bytes.fetch_add(bytes, Ordering::Relaxed);
            stats.latency.record(latency_us);
        } else {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a write session that had `rest` servers after this one.
    pub fn record_write_chain(&self, rest: usize) {
        self.write_chains[rest.min(3)].fetch_add(1, Ordering::Relaxed);
    }

    /// Records one I/O on the folder `path` that began at `started`.
    pub fn record_disk(&self, path: &Path, io: DiskIo, started: Instant, bytes: u64, ok: bool) {
        self.record_disk_latency_us(path, io, elapsed_us(started), bytes, ok);
    }

    /// As [`Metrics::record_disk`], for a latency measured elsewhere.
    pub fn record_disk_latency_us(&self, path: &Path, io: DiskIo, latency_us: u64, bytes: u64, ok: bool) {
        let stats = self.disk(path);
        if !ok {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (count, total) = match io {
            DiskIo::Read => (&stats.reads, &stats.read_bytes),
            DiskIo::Write => (&stats.writes, &stats.write_bytes),
        };
        count.fetch_add(1, Ordering::Relaxed);
        total.fetch_add(bytes, Ordering::Relaxed);
        stats.latency.record(latency_us);
    }

    fn disk(&self, path: &Path) -> Arc<DiskStats> {
        if let Some(stats) = self.disks.read().unwrap_or_else(PoisonError::into_inner).get(path) {
            return Arc::clone(stats);
        }
        let mut disks = self.disks.write().unwrap_or_else(PoisonError::into_inner);
        let stats = disks.entry(path.to_path_buf()).or_insert_with(|| {
            Arc::new(DiskStats {
                reads: AtomicU64::new(0),
                writes: AtomicU64::new(0),
                read_bytes: AtomicU64::new(0),
                write_bytes: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                latency: Latency::new(),
            })
        });
        Arc::clone(stats)
    }

    /// The numbers as they are now, operations in [`Op::ALL`] order and
    /// folders sorted by path.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let ops = Op::ALL
            .iter()
            .map(|&op| {
                let stats = &self.ops[op.index()];
                OpSnapshot {
                    op: op.name(),
                    count: stats.count.load(Ordering::Relaxed),
                    errors: stats.errors.load(Ordering::Relaxed),
                    bytes: stats.bytes.load(Ordering::Relaxed),
                    latency: stats.latency.summary(),
                }
            })
            .collect();
        let disks_map = self.disks.read().unwrap_or_else(PoisonError::into_inner);
        let mut disks: Vec<DiskSnapshot> = disks_map
            .iter()
            .map(|(path, stats)| DiskSnapshot {
                path: path.to_string_lossy().into_owned(),
                reads: stats.reads.load(Ordering::Relaxed),
                writes: stats.writes.load(Ordering::Relaxed),
                read_bytes: stats.read_bytes.load(Ordering::Relaxed),
                write_bytes: stats.write_bytes.load(Ordering::Relaxed),
                errors: stats.errors.load(Ordering::Relaxed),
                latency: stats.latency.summary(),
            })
            .collect();
        drop(disks_map);
        disks.sort_by(|a, b| a.path.cmp(&b.path));
        let write_chains = std::array::from_fn(|i| self.write_chains[i].load(Ordering::Relaxed));
        MetricsSnapshot { ops, disks, write_chains }
    }

    /// The snapshot as one line of JSON.
    pub fn to_json(&self) -> String {
        self.snapshot().to_json()
    }
}

/// Microseconds since `started`, saturating (an operation does not take
/// 584 000 years).
fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    pub ops: Vec<OpSnapshot>,
    pub disks: Vec<DiskSnapshot>,
    /// Write sessions with 0, 1, 2 and 3+ servers after this one.
    pub write_chains: [u64; 4],
}

impl MetricsSnapshot {
    pub fn op(&self, op: Op) -> &OpSnapshot {
        &self.ops[op.index()]
    }

    pub fn disk(&self, path: &Path) -> Option<&DiskSnapshot> {
        let path = path.to_string_lossy();
        self.disks.iter().find(|disk| disk.path == path)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a snapshot holds only strings and integers")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpSnapshot {
    pub op: &'static str,
    /// Operations finished, successful or not.
    pub count: u64,
    pub errors: u64,
    /// Bytes moved by successful operations.
    pub bytes: u64,
    #[serde(flatten)]
    pub latency: LatencySummary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskSnapshot {
    pub path: String,
    /// Successful reads and writes; failed ones count only in `errors`.
    pub reads: u64,
    pub writes: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub errors: u64,
    #[serde(flatten)]
    pub latency: LatencySummary,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Within the histogram's 0.1 % resolution.
    fn near(actual: u64, expected: u64) -> bool {
        actual.abs_diff(expected) <= expected / 1000 + 1
    }

    #[test]
    fn op_table_is_complete_and_ordered() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i, "{op:?}");
        }
        let names: std::collections::HashSet<_> = Op::ALL.iter().map(|op| op.name()).collect();
        assert_eq!(names.len(), Op::ALL.len());
    }

    #[test]
    fn percentiles_counts_and_bytes() {
        let metrics = Metrics::new();
        // 1..=1000 µs, one each: p50 is 500, p99 is 990, max 1000 (exact:
        // below 2048 every value has its own bucket).
        for latency in 1..=1000 {
            metrics.record_latency_us(Op::Read, latency, 65536, true);
        }
        metrics.record_latency_us(Op::Read, 5, 65536, false);
        metrics.record_latency_us(Op::Write, 250_000, 1 << 20, true);
        let snap = metrics.snapshot();
        let read = snap.op(Op::Read);
        assert_eq!((read.count, read.errors, read.bytes), (1001, 1, 1000 * 65536));
        assert_eq!(read.latency, LatencySummary { latency_us_p50: 500, latency_us_p99: 990, latency_us_max: 1000 });
        let write = snap.op(Op::Write);
        assert_eq!((write.count, write.errors, write.bytes), (1, 0, 1 << 20));
        assert!(near(write.latency.latency_us_p50, 250_000) && near(write.latency.latency_us_max, 250_000));
        let create = snap.op(Op::Create);
        assert_eq!((create.count, create.latency), (0, LatencySummary::default()));
        assert!(snap.disks.is_empty());
    }

    #[test]
    fn skewed_latencies_show_in_the_tail_only() {
        let metrics = Metrics::new();
        for _ in 0..990 {
            metrics.record_latency_us(Op::Replicate, 100, 0, true);
        }
        for _ in 0..10 {
            metrics.record_latency_us(Op::Replicate, 80_000, 0, true);
        }
        let latency = metrics.snapshot().op(Op::Replicate).latency;
        assert_eq!(latency.latency_us_p50, 100);
        assert_eq!(latency.latency_us_p99, 100, "990 of 1000 samples are at or below 100 µs");
        assert!(near(latency.latency_us_max, 80_000), "{latency:?}");
        metrics.record_latency_us(Op::Replicate, u64::MAX, 0, true);
        assert!(near(metrics.snapshot().op(Op::Replicate).latency.latency_us_max, LATENCY_US_MAX));
    }

    #[test]
    fn record_measures_from_started() {
        let metrics = Metrics::new();
        let started = Instant::now() - Duration::from_millis(20);
        metrics.record(Op::Checksum, started, 0, true);
        let latency = metrics.snapshot().op(Op::Checksum).latency;
        assert!(latency.latency_us_p50 >= 20_000 && latency.latency_us_p50 < 20_000_000, "{latency:?}");
    }

    #[test]
    fn disks_are_kept_apart_and_sorted() {
        let metrics = Metrics::new();
        let (a, b) = (Path::new("/mnt/b"), Path::new("/mnt/a"));
        metrics.record_disk_latency_us(a, DiskIo::Read, 100, 4096, true);
        metrics.record_disk_latency_us(a, DiskIo::Write, 300, 65536, true);
        metrics.record_disk_latency_us(a, DiskIo::Write, 9, 65536, false);
        metrics.record_disk_latency_us(b, DiskIo::Read, 200, 8192, true);
        metrics.record_disk(b, DiskIo::Read, Instant::now(), 8192, true);
        let snap = metrics.snapshot();
        assert_eq!(snap.disks.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), ["/mnt/a", "/mnt/b"]);
        let da = snap.disk(a).unwrap();
        assert_eq!((da.reads, da.writes, da.read_bytes, da.write_bytes, da.errors), (1, 1, 4096, 65536, 1));
        assert_eq!((da.latency.latency_us_p50, da.latency.latency_us_max), (100, 300));
        let db = snap.disk(b).unwrap();
        assert_eq!((db.reads, db.read_bytes, db.writes, db.errors), (2, 16384, 0, 0));
        assert!(snap.disk(Path::new("/mnt/c")).is_none());
    }

    #[test]
    fn many_tasks_record_at_once() {
        let metrics = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let metrics = Arc::clone(&metrics);
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        metrics.record_latency_us(Op::Write, 1 + (i + t) % 100, 10, i % 10 != 0);
                        metrics.record_disk_latency_us(Path::new("/mnt/d"), DiskIo::Write, 5, 10, true);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let snap = metrics.snapshot();
        let write = snap.op(Op::Write);
        assert_eq!((write.count, write.errors, write.bytes), (8000, 800, 7200 * 10));
        assert_eq!(snap.disk(Path::new("/mnt/d")).unwrap().writes, 8000);
    }

    #[test]
    fn json_has_every_op_and_flat_latencies() {
        let metrics = Metrics::new();
        metrics.record_latency_us(Op::DupTrunc, 42, 0, true);
        metrics.record_disk_latency_us(Path::new("/mnt/x"), DiskIo::Read, 7, 512, true);
        let json: serde_json::Value = serde_json::from_str(&metrics.to_json()).unwrap();
        let ops = json["ops"].as_array().unwrap();
        assert_eq!(ops.len(), Op::ALL.len());
        let duptrunc = ops.iter().find(|o| o["op"] == "duptrunc").unwrap();
        assert_eq!(duptrunc["count"], 1);
        assert_eq!(duptrunc["latency_us_p50"], 42);
        assert_eq!(duptrunc["latency_us_p99"], 42);
        assert_eq!(duptrunc["latency_us_max"], 42);
        assert_eq!(json["disks"][0]["path"], "/mnt/x");
        assert_eq!(json["disks"][0]["read_bytes"], 512);
        assert_eq!(json["disks"][0]["latency_us_max"], 7);
    }
}
