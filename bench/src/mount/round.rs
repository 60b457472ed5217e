//! One cluster of `elkfs bench mount`: a fresh harness cluster of one
//! stack mounted by one client, every [`Work`] on it, each measured by
//! [`crate::cluster::measured`] (CPU of the mount, master and chunkservers,
//! disk bytes, machine busy).
//!
//! Set-up: trash time 0 (deletes free their chunks at once, so the disk
//! does not fill over rounds), `g1` and `g2` at goal 1 and 2, and the
//! small-file directories under `g1`, set through the mount under test
//! (`mfssettrashtime` and `mfssetgoal` find the master through its
//! `.masterinfo`, which both clients serve).
//!
//! Before every job: `sync` + `drop_caches`; before every fio read and
//! before the small-file stat a fresh mount, so the client starts cold.
//!
//! A failed job is recorded, the logs' tails printed, the client remounted
//! and the next job run; work that needs the failed one's files is
//! skipped. A hung job is bounded by a [`Watchdog`] that kills the mount
//! process: a FUSE call waiting on a stuck client may not die with fio's
//! own SIGKILL, and killing the client aborts the connection, which fails
//! every waiting call (ENOTCONN) and lets the job end.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::small::{self, Phase};
use super::{Client, MountPlan, Stack, Work, SERVERS};
use crate::cluster::jobs::{self, Job};
use crate::cluster::{measured, Sample};
use crate::harnessed;
use crate::interrupt;
use elkfs_harness::Cluster;

/// A whole-file job gets this long, plus [`SECONDS_PER_MIB`] per MiB,
/// before its mount is killed.
const SIZE_JOB_BASE: Duration = Duration::from_secs(120);
/// 2 MiB/s: far below either client, far above a hung one.
const SECONDS_PER_MIB: f64 = 0.5;
/// A timed fio run gets this beyond its `--seconds` (fio kills itself at
/// 120 s past; this fires only when that kill hangs too).
const TIMED_JOB_SLACK: Duration = Duration::from_secs(150);
/// A small-file phase gets this long, plus [`SECONDS_PER_FILE`] per file.
const SMALL_PHASE_BASE: Duration = Duration::from_secs(120);
/// 50 files/s: far below either client.
const SECONDS_PER_FILE: f64 = 0.02;
/// Lines of each daemon log printed when a job fails.
const LOG_LINES: usize = 40;

/// What one cluster brought back.
#[derive(Debug, Default)]
pub struct Outcome {
    pub samples: Vec<(Work, Sample)>,
    /// Work that failed or could not run, and why.
    pub failures: Vec<(Work, String)>,
}

/// Builds the cluster of `stack` mounted by `client`, sets it up and runs
/// every work on it. An error (or a harness panic, which the caller turns
/// into one) means the cluster itself could not be built or set up.
pub fn run_cluster(plan: &MountPlan, stack: Stack, client: Client, base: &Path, what: &str) -> Result<Outcome> {
    let mut builder = Cluster::builder()
        .master_kind(stack.master())
        .client(client.kind())
        .mount(true)
        .temp_dir_in(base)
        .master_config("REPLICATIONS_DELAY_INIT", crate::cluster::NO_REPLICATION_FOR);
    for _ in 0..SERVERS {
        builder = builder.chunkserver(stack.chunkserver());
    }
    let mut c = builder.start();
    prepare(&c, plan.threads).with_context(|| format!("{what}: setting up the cluster"))?;
    let mut out = Outcome::default();
    let mut failed: Vec<Work> = Vec::new();
    let mut broken: Option<String> = None;
    for work in plan.works.iter().copied() {
        if let Some(why) = &broken {
            out.failures.push((work, format!("not run: {why}")));
            continue;
        }
        if let Some(need) = work.needs().filter(|need| failed.contains(need)) {
            out.failures.push((work, format!("not run: {} failed", need.key())));
            failed.push(work);
            continue;
        }
        match run_work(&mut c, plan, work, base) {
            Ok(sample) => {
                log_sample(what, work, &sample);
                out.samples.push((work, sample));
            }
            Err(e) => {
                interrupt::check()?;
                tracing::warn!("{what}: {} FAILED: {e:#}", work.key());
                c.print_logs(LOG_LINES);
                out.failures.push((work, format!("{e:#}")));
                failed.push(work);
                // A fresh client for whatever comes next; when even that
                // fails, nothing more can run on this cluster.
                if let Err(e) = remount(&mut c) {
                    tracing::warn!("{what}: {e:#}");
                    broken = Some(format!("{e:#}"));
                }
            }
        }
    }
    Ok(out)
}

/// Trash time 0, `g1` and `g2` with their goals, the small-file folders.
fn prepare(c: &Cluster, threads: usize) -> Result<()> {
    let root = c.mountpoint().to_path_buf();
    let trash = c.tool("mfssettrashtime", &["-r".as_ref(), "0".as_ref(), root.as_os_str()]);
    if !trash.status.success() {
        bail!("mfssettrashtime -r 0 failed: {}", String::from_utf8_lossy(&trash.stderr).trim());
    }
    for goal in [1u8, 2] {
        let dir = root.join(format!("g{goal}"));
        std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        c.mfs_setgoal(&dir, goal);
    }
    small::make_dirs(&small_root(&root), threads)?;
    Ok(())
}

/// Where the small-file run happens: at goal 1, like the first fio jobs,
/// so the figures are the client's and the master's rather than a
/// replication chain's.
fn small_root(mountpoint: &Path) -> PathBuf {
    mountpoint.join("g1").join("small")
}

/// A fresh client with empty caches.
fn remount(c: &mut Cluster) -> Result<()> {
    harnessed("remounting", || {
        c.remount();
        Ok(())
    })
}

/// One work on the mounted cluster, measured, bounded by a watchdog.
fn run_work(c: &mut Cluster, plan: &MountPlan, work: Work, base: &Path) -> Result<Sample> {
    let fresh_client = match work {
        Work::Fio(job) => !job.is_write(),
        Work::Small(phase) => phase == Phase::Stat,
    };
    if fresh_client {
        remount(c)?;
    }
    jobs::settle(plan.quick)?;
    let mnt = c.mountpoint().to_path_buf();
    let limit = limit(plan, work);
    let mount_pid = c.mount_daemon().map(|d| d.pid());
    let dog = Watchdog::arm(mount_pid, limit, work.key())?;
    let result = match work {
        Work::Fio(job) => {
            let goal = match job {
                Job::SeqWrite { goal } | Job::SeqRead { goal } | Job::RandRead { goal } => goal,
                Job::DirectWrite | Job::DirectRead => bail!("{} is not a mount job", job.key()),
            };
            let file = mnt.join(format!("g{goal}")).join("data");
            measured(c, None, || jobs::run_fio(&plan.fio, job, &file, plan.file_bytes, plan.seconds, base))
        }
        Work::Small(phase) => {
            let dirs = small::dirs(&small_root(&mnt), plan.threads);
            measured(c, None, || small::run_phase(&dirs, phase, plan.files))
        }
    };
    if dog.disarm() {
        let e = result.err().map(|e| format!(": {e:#}")).unwrap_or_default();
        bail!("hung: still running after {} s, the mount process was killed{e}", limit.as_secs());
    }
    result
}

/// How long `work` may take before its mount is killed.
fn limit(plan: &MountPlan, work: Work) -> Duration {
    match work {
        Work::Fio(Job::RandRead { .. }) => Duration::from_secs(plan.seconds) + TIMED_JOB_SLACK,
        Work::Fio(_) => SIZE_JOB_BASE + Duration::from_secs_f64((plan.file_bytes >> 20) as f64 * SECONDS_PER_MIB),
        Work::Small(_) => SMALL_PHASE_BASE + Duration::from_secs_f64(plan.files as f64 * SECONDS_PER_FILE),
    }
}

fn log_sample(what: &str, work: Work, s: &Sample) {
    let f = &s.figures;
    let figure = match work.unit() {
        super::Unit::MibPerSecond => format!("{:.0} MiB/s", f.mib_s()),
        super::Unit::Iops => format!("{:.0} IOPS", f.iops()),
        super::Unit::FilesPerSecond => format!("{:.0} files/s", f.iops()),
    };
    tracing::info!(
        "{what}: {} {figure} (p50 {:.0} us, p99 {:.0} us), CPU-s mount {:.2} master {:.2} chunkservers {:.2}",
        work.key(),
        f.p50_us,
        f.p99_us,
        s.mount_cpu_s,
        s.master_cpu_s,
        s.cs_cpu_s
    );
}

/// Kills the mount process (SIGKILL, by pid: a child of this process the
/// harness has not reaped, so the pid cannot have been reused) if a job
/// outlives its limit.
pub struct Watchdog {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<bool>,
}

impl Watchdog {
    pub fn arm(pid: Option<u32>, limit: Duration, what: &str) -> Result<Watchdog> {
        let (stop, stopped) = mpsc::channel::<()>();
        let what = what.to_string();
        let thread = std::thread::Builder::new()
            .name("elkfs-bench-watchdog".into())
            .spawn(move || match stopped.recv_timeout(limit) {
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!("{what} still running after {} s: killing the mount (pid {pid:?})", limit.as_secs());
                    if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
                        // SAFETY: kill(2) has no memory preconditions.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    true
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
            })
            .map_err(|e| anyhow!("starting the watchdog thread: {e}"))?;
        Ok(Watchdog { stop, thread })
    }

    /// Ends the watch; true when it had fired.
    pub fn disarm(self) -> bool {
        drop(self.stop);
        self.thread.join().unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn plan() -> MountPlan {
        MountPlan {
            dir: PathBuf::from("/var/tmp/m"),
            rounds: 1,
            file_bytes: 2 << 30,
            seconds: 20,
            files: 10_000,
            threads: 4,
            fio: PathBuf::from("fio"),
            json: false,
            quick: false,
            works: Work::ALL.to_vec(),
            stacks: Stack::ALL.to_vec(),
        }
    }

    #[test]
    fn limits_grow_with_the_work() {
        let p = plan();
        assert_eq!(limit(&p, Work::Fio(Job::SeqWrite { goal: 2 })), Duration::from_secs(120 + 1024));
        assert_eq!(limit(&p, Work::Fio(Job::RandRead { goal: 1 })), Duration::from_secs(170));
        assert_eq!(limit(&p, Work::Small(Phase::Create)), Duration::from_secs(320));
    }

    #[test]
    fn a_watchdog_fires_only_when_late() {
        let calm = Watchdog::arm(None, Duration::from_secs(60), "calm").unwrap();
        assert!(!calm.disarm());
        let late = Watchdog::arm(None, Duration::from_millis(10), "late").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(late.disarm());
        // A real child, killed by the watchdog.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let dog = Watchdog::arm(Some(child.id()), Duration::from_millis(10), "sleep").unwrap();
        let status = child.wait().unwrap();
        assert!(dog.disarm());
        assert!(!status.success());
    }
}
