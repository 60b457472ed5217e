//! The workloads of `elkfs bench cluster` and how each one is measured.
//!
//! fio runs in the mount folder with the commands of the MooseFS baseline
//! (`/work/shared/anchors/moosefs-baseline.md`): 1 MiB sequential writes
//! (io_uring, QD16, direct, `end_fsync`) and reads of one file at goal 1
//! and at goal 2, and 4 KiB random reads of it at QD16 for a fixed time.
//! Around every run the bench reads `utime + stime` of the chunkservers,
//! the master and mfsmount from `/proc/PID/stat` (every thread of each
//! process, io_uring workers included), so CPU per GiB sits beside every
//! figure. The direct protocol runs ([`super::direct`]) are measured the
//! same way, on the one chunkserver they talk to.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::fio;
use crate::interrupt;
use crate::scenario::Measure;
use crate::stats::{CpuTimes, Figures};

/// A whole-file fio run that takes longer than this has hung.
const SIZE_RUN_LIMIT: Duration = Duration::from_secs(1200);
/// Extra time a timed run gets for setup and teardown before it is killed.
const TIMED_RUN_SLACK: Duration = Duration::from_secs(120);
/// 1 MiB sequential requests, 16 in flight (the baseline's fio commands).
pub const SEQ_BLOCK: &str = "1M";
pub const QUEUE_DEPTH: usize = 16;

/// One compared workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Job {
    SeqWrite {
        goal: u8,
    },
    SeqRead {
        goal: u8,
    },
    RandRead {
        goal: u8,
    },
    /// The bench's own protocol client writing whole chunks to one server.
    DirectWrite,
    /// The same reading them back.
    DirectRead,
}

impl Job {
    /// Every job, in the order a cluster round runs them.
    pub const ALL: [Job; 8] = [
        Job::SeqWrite { goal: 1 },
        Job::SeqRead { goal: 1 },
        Job::RandRead { goal: 1 },
        Job::SeqWrite { goal: 2 },
        Job::SeqRead { goal: 2 },
        Job::RandRead { goal: 2 },
        Job::DirectWrite,
        Job::DirectRead,
    ];

    /// Key in the table and the JSON object.
    pub fn key(self) -> &'static str {
        match self {
            Job::SeqWrite { goal: 1 } => "seq_write_g1",
            Job::SeqWrite { .. } => "seq_write_g2",
            Job::SeqRead { goal: 1 } => "seq_read_g1",
            Job::SeqRead { .. } => "seq_read_g2",
            Job::RandRead { goal: 1 } => "rand_read_4k_g1",
            Job::RandRead { .. } => "rand_read_4k_g2",
            Job::DirectWrite => "direct_write",
            Job::DirectRead => "direct_read",
        }
    }

    pub fn measure(self) -> Measure {
        match self {
            Job::RandRead { .. } => Measure::Iops,
            _ => Measure::MibPerSecond,
        }
    }

    pub fn is_write(self) -> bool {
        matches!(self, Job::SeqWrite { .. } | Job::DirectWrite)
    }

    pub fn is_direct(self) -> bool {
        matches!(self, Job::DirectWrite | Job::DirectRead)
    }

    /// The jobs whose files this one uses: reads need the file written,
    /// direct runs pick their chunks from both files, and the engine's
    /// reference read reads what its reference write wrote.
    pub fn needs(self) -> &'static [Job] {
        match self {
            Job::SeqRead { goal: 1 } | Job::RandRead { goal: 1 } => &[Job::SeqWrite { goal: 1 }],
            Job::SeqRead { .. } | Job::RandRead { .. } => &[Job::SeqWrite { goal: 2 }],
            Job::DirectWrite => &[Job::SeqWrite { goal: 1 }, Job::SeqWrite { goal: 2 }],
            Job::DirectRead => &[Job::SeqWrite { goal: 1 }, Job::SeqWrite { goal: 2 }, Job::DirectWrite],
            Job::SeqWrite { .. } => &[],
        }
    }

    /// The jobs `--only` names (job keys, or the groups `mount` and
    /// `direct`) with what they need, in run order; all of them when
    /// `only` is empty.
    pub fn chosen(only: &[String]) -> anyhow::Result<Vec<Job>> {
        if only.is_empty() {
            return Ok(Job::ALL.to_vec());
        }
        let mut picked: Vec<Job> = Vec::new();
        for key in only {
            let named: Vec<Job> = Job::ALL
                .into_iter()
                .filter(|j| j.key() == key || key == if j.is_direct() { "direct" } else { "mount" })
                .collect();
            if named.is_empty() {
                anyhow::bail!("--only {key}: no such job (mount, direct, or a key such as seq_read_g2)");
            }
            for job in named {
                picked.push(job);
                picked.extend_from_slice(job.needs());
            }
        }
        Ok(Job::ALL.into_iter().filter(|j| picked.contains(j)).collect())
    }
}

/// The fio arguments of a mount job on `file` (`size` bytes, random runs
/// of `seconds`).
pub fn fio_args(job: Job, file: &Path, size: u64, seconds: u64) -> Vec<String> {
    let mut args = vec![
        format!("--name={}", job.key()),
        format!("--filename={}", file.display()),
        format!("--size={size}"),
        "--ioengine=io_uring".to_string(),
        format!("--iodepth={QUEUE_DEPTH}"),
        "--direct=1".to_string(),
        // mfsmount has no fallocate; the file grows by writing.
        "--fallocate=none".to_string(),
        "--lat_percentiles=1".to_string(),
        "--percentile_list=50:99".to_string(),
        "--output-format=json".to_string(),
        "--eta=never".to_string(),
    ];
    match job {
        Job::SeqWrite { .. } => {
            args.extend(["--rw=write".into(), format!("--bs={SEQ_BLOCK}"), "--end_fsync=1".into()]);
        }
        Job::SeqRead { .. } => args.extend(["--rw=read".into(), format!("--bs={SEQ_BLOCK}")]),
        Job::RandRead { .. } => args.extend([
            "--rw=randread".into(),
            "--bs=4k".into(),
            "--time_based".into(),
            format!("--runtime={}s", seconds.max(1)),
            "--norandommap".into(),
            "--randrepeat=0".into(),
        ]),
        Job::DirectWrite | Job::DirectRead => unreachable!("direct jobs do not run fio"),
    }
    args
}

/// Runs one fio mount job; its output files go to `out_dir`.
pub fn run_fio(fio_bin: &Path, job: Job, file: &Path, size: u64, seconds: u64, out_dir: &Path) -> Result<Figures> {
    let args = fio_args(job, file, size, seconds);
    let limit = match job {
        Job::RandRead { .. } => Duration::from_secs(seconds) + TIMED_RUN_SLACK,
        _ => SIZE_RUN_LIMIT,
    };
    let (text, cpu) = fio::run_process(fio_bin, &args, out_dir, limit).with_context(|| format!("fio {}", job.key()))?;
    let mut figures = fio::parse(&text, job.is_write()).with_context(|| format!("fio {} output", job.key()))?;
    // The whole fio process (io-wq workers too), never below its own figure.
    figures.cpu_s = cpu.total_s().max(figures.job_cpu_s);
    Ok(figures)
}

/// CPU seconds (user + system, every thread) of process `pid` so far, from
/// `/proc/PID/stat`; 0 when it is gone.
pub fn process_cpu_s(pid: u32) -> f64 {
    process_cpu(pid).total_s()
}

/// User and system CPU seconds (every thread) of process `pid` so far;
/// zeros when it is gone.
pub fn process_cpu(pid: u32) -> CpuTimes {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let (user, sys) = parse_stat_cpu_ticks(&text);
    let ticks = clock_ticks();
    CpuTimes { user_s: user as f64 / ticks, sys_s: sys as f64 / ticks, switches: 0.0 }
}

/// `(utime, stime)` in clock ticks from the text of `/proc/PID/stat`. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`: state is field 3, utime 14, stime 15.
pub fn parse_stat_cpu_ticks(stat: &str) -> (u64, u64) {
    let Some((_, rest)) = stat.rsplit_once(')') else { return (0, 0) };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (field(14), field(15))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Jiffies of the whole machine since boot: (busy, total). Busy is all
/// but idle and iowait (irq and softirq time included, which no process
/// is charged for).
pub fn machine_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    parse_proc_stat(&text)
}

/// `(busy, total)` from the `cpu` line of `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> (u64, u64) {
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else { return (0, 0) };
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect();
    // user nice system idle iowait irq softirq steal (guest time is
    // already inside user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// CPU of a set of processes, read before a run and again after it.
#[derive(Debug, Clone)]
pub struct CpuProbe {
    pids: Vec<u32>,
    start: CpuTimes,
}

fn sum(pids: &[u32]) -> CpuTimes {
    pids.iter().map(|&p| process_cpu(p)).fold(CpuTimes::default(), |a, b| CpuTimes {
        user_s: a.user_s + b.user_s,
        sys_s: a.sys_s + b.sys_s,
        switches: 0.0,
    })
}

impl CpuProbe {
    pub fn start(pids: &[u32]) -> CpuProbe {
        CpuProbe { pids: pids.to_vec(), start: sum(pids) }
    }

    /// CPU the processes used since `start`.
    pub fn used(&self) -> CpuTimes {
        sum(&self.pids).since(&self.start)
    }
}

/// Before every run: flush every dirty page to the disk (the real
/// chunkserver writes through the page cache, so its last run's data
/// would otherwise be written back during the next run), drop the page
/// cache (reads then come from the disk, for servers that read through
/// it), and pause a second unless `quick`.
pub fn settle(quick: bool) -> Result<()> {
    interrupt::check()?;
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", b"3").context("writing /proc/sys/vm/drop_caches (needs root)")?;
    if !quick {
        std::thread::sleep(Duration::from_secs(1));
    }
    interrupt::check()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_in_run_order() {
        let keys: Vec<&str> = Job::ALL.iter().map(|j| j.key()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "{keys:?}");
        assert_eq!(keys[0], "seq_write_g1");
        assert_eq!(Job::RandRead { goal: 2 }.measure(), Measure::Iops);
    }

    #[test]
    fn fio_args_follow_the_baseline() {
        let file = Path::new("/m/g1/data");
        let write = fio_args(Job::SeqWrite { goal: 1 }, file, 2 << 30, 20);
        for want in [
            "--rw=write",
            "--bs=1M",
            "--iodepth=16",
            "--direct=1",
            "--end_fsync=1",
            "--ioengine=io_uring",
            "--size=2147483648",
            "--filename=/m/g1/data",
            "--output-format=json",
        ] {
            assert!(write.iter().any(|a| a == want), "{want} missing from {write:?}");
        }
        let rand = fio_args(Job::RandRead { goal: 2 }, file, 2 << 30, 20);
        for want in ["--rw=randread", "--bs=4k", "--time_based", "--runtime=20s"] {
            assert!(rand.iter().any(|a| a == want), "{want} missing from {rand:?}");
        }
        assert!(!rand.iter().any(|a| a == "--end_fsync=1"));
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let text = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_proc_stat(text), (160, 1000));
        assert_eq!(parse_proc_stat("nothing"), (0, 0));
        let (busy, total) = machine_jiffies();
        assert!(busy <= total && total > 0);
    }

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let stat = "1234 (mfs chunk) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 5 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), (250, 75));
        assert_eq!(parse_stat_cpu_ticks("garbage"), (0, 0));
        let me = process_cpu_s(std::process::id());
        assert!(me >= 0.0);
        assert_eq!(process_cpu_s(u32::MAX), 0.0);
    }

    /// A fio JSON of a mount job, as fio 3.33 prints it (trimmed).
    const WRITE_JSON: &str = r#"{
  "fio version" : "fio-3.33",
  "jobs" : [ { "jobname" : "seq_write_g1", "error" : 0, "job_runtime" : 5000,
      "read" : { "io_bytes" : 0, "runtime" : 0, "total_ios" : 0 },
      "write" : { "io_bytes" : 2147483648, "bw_bytes" : 429496729, "iops" : 409.6, "runtime" : 5000,
        "total_ios" : 2048,
        "lat_ns" : { "percentile" : { "50.000000" : 35000000, "99.000000" : 90000000 } } },
      "usr_cpu" : 1.0, "sys_cpu" : 3.0 } ] }"#;

    #[test]
    fn a_mount_job_is_read_from_fio_json() {
        let f = fio::parse(WRITE_JSON, true).unwrap();
        assert_eq!(f.bytes, 2 << 30);
        assert_eq!(f.ops, 2048);
        assert!((f.mib_s() - 409.6).abs() < 1e-6);
        assert_eq!((f.p50_us, f.p99_us), (35000.0, 90000.0));
    }
}
