//! Figures of one run and how runs are summarised.
//!
//! Latencies go into an HdrHistogram in nanoseconds (3 significant digits),
//! one per task so recording never contends, merged at the end of a run.
//! CPU time comes from `getrusage(RUSAGE_SELF)`, which counts every thread
//! of the process: tokio workers, the engine's ring thread and the kernel's
//! io-wq workers io_uring may punt to, so it is comparable with what fio
//! reports for its own job process.
//!
//! Rounds are summarised by the median, with min and max, because this VM's
//! disk sits behind a host cache and single runs swing by 2× or more.

use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// Per-operation latencies of one run.
pub struct Latency {
    hist: Histogram<u64>,
}

impl Latency {
    pub fn new() -> Result<Latency> {
        // 1 ns to 10 min covers any single I/O; beyond that it saturates.
        let hist = Histogram::new_with_bounds(1, 600_000_000_000, 3).context("creating latency histogram")?;
        Ok(Latency { hist })
    }

    pub fn record(&mut self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(ns);
    }

    pub fn merge(&mut self, other: &Latency) -> Result<()> {
        self.hist.add(&other.hist).context("merging latency histograms")
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn percentile_us(&self, percent: f64) -> f64 {
        self.hist.value_at_percentile(percent) as f64 / 1000.0
    }
}

/// What one run of one target measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Bytes the workload asked for (a 4 KiB read counts 4 KiB even when
    /// the engine moves its whole 64 KiB block).
    pub bytes: u64,
    pub ops: u64,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// User + system CPU seconds the target spent on the run, in all of its
    /// threads (io_uring's io-wq workers included).
    pub cpu_s: f64,
    /// The system part of `cpu_s`.
    pub cpu_sys_s: f64,
    /// Context switches of the target's threads during the run.
    pub switches: f64,
    /// fio only: what fio itself reports (`usr_cpu` + `sys_cpu` of the job
    /// thread), which leaves out io-wq workers; 0 for the engine.
    pub job_cpu_s: f64,
    /// What the block device moved meanwhile (see [`DiskCounters`]).
    pub disk: DiskBytes,
}

impl Figures {
    pub fn mib_s(&self) -> f64 {
        per_second(self.bytes as f64 / MIB, self.seconds)
    }

    pub fn iops(&self) -> f64 {
        per_second(self.ops as f64, self.seconds)
    }

    /// CPU seconds per GiB of requested bytes: the figure that matters on
    /// a 2-core machine, and much steadier than MB/s on this VM.
    pub fn cpu_s_per_gib(&self) -> f64 {
        self.per_gib(self.cpu_s)
    }

    /// `seconds` per GiB of requested bytes.
    pub fn per_gib(&self, seconds: f64) -> f64 {
        if self.bytes == 0 {
            return 0.0;
        }
        seconds / (self.bytes as f64 / GIB)
    }

    pub fn cpu_us_per_op(&self) -> f64 {
        if self.ops == 0 {
            return 0.0;
        }
        self.cpu_s * 1e6 / self.ops as f64
    }
}

fn per_second(amount: f64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    amount / seconds
}

/// Median, min and max of a set of per-round values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// Summarises `values`; an empty set gives zeros. The median of an even
/// count is the mean of the middle two.
pub fn spread(values: &[f64]) -> Spread {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return Spread { median: 0.0, min: 0.0, max: 0.0 };
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    Spread { median, min: sorted[0], max: sorted[n - 1] }
}

/// `a / b`, or 0 when `b` is 0 (a failed or empty run shows as ratio 0,
/// which fails any target, rather than as infinity).
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// CPU seconds, split as getrusage reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub user_s: f64,
    pub sys_s: f64,
    /// Voluntary plus involuntary context switches: each op that puts a
    /// thread to sleep and wakes another costs one or more, and on this
    /// VM a wake-up of an idle vCPU is slow.
    pub switches: f64,
}

impl CpuTimes {
    pub fn total_s(&self) -> f64 {
        self.user_s + self.sys_s
    }

    /// `self - earlier`, each part at least 0.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            sys_s: (self.sys_s - earlier.sys_s).max(0.0),
            switches: (self.switches - earlier.switches).max(0.0),
        }
    }
}

/// CPU time of every thread of this process so far.
pub fn process_cpu() -> Result<CpuTimes> {
    rusage(libc::RUSAGE_SELF, "getrusage(RUSAGE_SELF)")
}

/// CPU time of every child process waited for so far (fio, whole: its
/// main process, its job process and their io-wq workers).
pub fn children_cpu() -> Result<CpuTimes> {
    rusage(libc::RUSAGE_CHILDREN, "getrusage(RUSAGE_CHILDREN)")
}

fn rusage(who: libc::c_int, what: &'static str) -> Result<CpuTimes> {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a live rusage.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Err(std::io::Error::last_os_error()).context(what);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(CpuTimes {
        user_s: seconds(usage.ru_utime),
        sys_s: seconds(usage.ru_stime),
        switches: (usage.ru_nvcsw + usage.ru_nivcsw) as f64,
    })
}

/// The block device under a folder, read through its `stat` counters.
///
/// Both targets claim O_DIRECT; the bytes the device really moved during
/// a run prove it (a run served from a cache shows far fewer) and show the
/// engine's read amplification (a 4 KiB read moves 64 KiB). Other work on
/// the machine adds its own I/O, so these are upper bounds.
pub struct DiskCounters {
    stat: std::path::PathBuf,
}

/// Bytes a device read and wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiskBytes {
    pub read: u64,
    pub written: u64,
}

impl DiskCounters {
    /// The device holding `folder`, if sysfs shows it.
    pub fn for_folder(folder: &std::path::Path) -> Option<DiskCounters> {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(folder).ok()?.dev();
        let stat = std::path::PathBuf::from(format!("/sys/dev/block/{}:{}/stat", libc::major(dev), libc::minor(dev)));
        stat.exists().then_some(DiskCounters { stat })
    }

    /// Totals since boot; the difference of two readings is a run's share.
    pub fn read(&self) -> DiskBytes {
        let text = std::fs::read_to_string(&self.stat).unwrap_or_default();
        let fields: Vec<u64> = text.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
        // Fields 3 and 7 are sectors read and written, in 512-byte units.
        let sectors = |i: usize| fields.get(i).copied().unwrap_or(0);
        DiskBytes { read: sectors(2) * 512, written: sectors(6) * 512 }
    }
}

impl DiskBytes {
    pub fn since(&self, earlier: &DiskBytes) -> DiskBytes {
        DiskBytes {
            read: self.read.saturating_sub(earlier.read),
            written: self.written.saturating_sub(earlier.written),
        }
    }
}

/// CPU nanoseconds of the calling thread. Used to take the bench's own work
/// (computing the CRC a client would have sent) out of the engine's figure.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid pointer to a live timespec; this clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// CPU microseconds to CRC one 64 KiB block on this machine, measured on
/// this thread: what verifying a block costs each 4 KiB read.
pub fn crc_us_per_block() -> f64 {
    const ROUNDS: u32 = 2000;
    let block: Vec<u8> = (0..elkfs_engine::BLOCK_SIZE).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut sink = 0u32;
    // Warm the caches and the CPU's frequency first.
    for _ in 0..100 {
        sink ^= elkfs_engine::crc::crc32(&block);
    }
    let start = thread_cpu_ns();
    for _ in 0..ROUNDS {
        sink ^= elkfs_engine::crc::crc32(std::hint::black_box(&block));
    }
    let took = thread_cpu_ns().saturating_sub(start);
    std::hint::black_box(sink);
    took as f64 / 1000.0 / f64::from(ROUNDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Spread { median: 2.0, min: 1.0, max: 3.0 });
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(spread(&[]).median, 0.0);
        assert_eq!(spread(&[f64::NAN, 1.0]).median, 1.0);
    }

    #[test]
    fn latency_percentiles_in_microseconds() {
        let mut lat = Latency::new().unwrap();
        for us in 1..=100u64 {
            lat.record(Duration::from_micros(us));
        }
        assert_eq!(lat.count(), 100);
        let p50 = lat.percentile_us(50.0);
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        let p99 = lat.percentile_us(99.0);
        assert!((98.0..=100.0).contains(&p99), "{p99}");
    }

    #[test]
    fn figures_derive_rates() {
        let f = Figures { bytes: 1 << 30, ops: 1024, seconds: 2.0, cpu_s: 0.5, ..Figures::default() };
        assert_eq!(f.mib_s(), 512.0);
        assert_eq!(f.iops(), 512.0);
        assert_eq!(f.cpu_s_per_gib(), 0.5);
        assert!((f.cpu_us_per_op() - 488.28125).abs() < 1e-9);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }

    #[test]
    fn cpu_clocks_move() {
        let before = process_cpu().unwrap();
        let crc = crc_us_per_block();
        assert!(crc > 0.0 && crc < 10_000.0, "{crc}");
        let used = process_cpu().unwrap().since(&before);
        assert!(used.total_s() > 0.0, "{used:?}");
        children_cpu().unwrap();
        if let Some(disk) = DiskCounters::for_folder(std::path::Path::new("/var/tmp")) {
            let first = disk.read();
            assert!(disk.read().since(&first).read < u64::MAX);
        }
    }
}
