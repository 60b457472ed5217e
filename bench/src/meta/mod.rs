//! `elkfs bench meta`: the master's metadata speed and memory, the real
//! `mfsmaster` against `elkfs master` on the same machine in one run.
//!
//! Three masters, each in a cluster of its own built by the test harness
//! (a private network namespace, a temp dir under `--dir`, torn down on
//! the way out) with no chunkserver, since no file gets data:
//! - `mfsmaster` 3.0.117, which never fsyncs its changelog;
//! - `elkfs master` with `CHANGELOG_FSYNC = 0`, the same policy;
//! - `elkfs master` with its default `CHANGELOG_FSYNC = 1`, where every
//!   change is on disk before the client hears of it.
//!
//! On each: the four phases (create, stat, rename, unlink) spoken straight
//! to the master over the client protocol from N sessions ([`direct`]),
//! the same phases with std::fs through a real mfsmount ([`mount`]), then
//! the master's resident memory per file after a big fill ([`rss`]).
//! Targets: elkfs(fsync=0) ≥ 2× and elkfs(fsync=1) ≥ 1× mfsmaster's
//! ops/s, and ≤ 200 bytes of RSS per file ([`report`]).

pub mod client;
pub mod direct;
pub mod mount;
pub mod report;
pub mod rss;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::harnessed;
use elkfs_harness::{Cluster, MasterKind};

use crate::stats::{ratio, Latency};
pub use report::MetaReport;

/// `elkfs bench meta`.
#[derive(Debug, Clone, clap::Args)]
pub struct MetaArgs {
    /// Folder for the clusters (master data, changelogs, mount points),
    /// on the disk whose fsync the fsync=1 master pays; removed at the end.
    #[arg(long, default_value = "/var/tmp/elkfs-bench-meta")]
    pub dir: PathBuf,
    /// Also print every figure as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Concurrent client-protocol sessions, each its own connection,
    /// thread and directory.
    #[arg(long, default_value_t = 8)]
    pub sessions: usize,
    /// Files per session in the direct phases. Default 2000 (200 with
    /// --quick).
    #[arg(long)]
    pub files: Option<usize>,
    /// Requests in flight per session (1: one at a time, like one FUSE
    /// worker thread).
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Threads doing std::fs through the mount, each in its own directory.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
    /// Files per thread through the mount. Default 1000 (100 with --quick).
    #[arg(long)]
    pub mount_files: Option<usize>,
    /// Files created for the memory figure. Default 200000 (20000 with
    /// --quick).
    #[arg(long)]
    pub rss_files: Option<usize>,
    /// Smoke test: few files everywhere.
    #[arg(long)]
    pub quick: bool,
}

/// Resolved settings of one invocation.
#[derive(Debug, Clone)]
pub struct MetaPlan {
    pub dir: PathBuf,
    pub json: bool,
    pub sessions: usize,
    pub files: usize,
    pub depth: usize,
    pub threads: usize,
    pub mount_files: usize,
    pub rss_files: usize,
    pub quick: bool,
}

impl MetaPlan {
    pub fn from_args(a: &MetaArgs) -> Result<MetaPlan> {
        let q = a.quick;
        let plan = MetaPlan {
            dir: a.dir.clone(),
            json: a.json,
            sessions: a.sessions,
            files: a.files.unwrap_or(if q { 200 } else { 2000 }),
            depth: a.depth,
            threads: a.threads,
            mount_files: a.mount_files.unwrap_or(if q { 100 } else { 1000 }),
            rss_files: a.rss_files.unwrap_or(if q { 20_000 } else { 200_000 }),
            quick: q,
        };
        if !(1..=256).contains(&plan.sessions) || !(1..=256).contains(&plan.threads) {
            bail!("--sessions and --threads must be in 1..=256");
        }
        if !(1..=client::MAX_DEPTH).contains(&plan.depth) {
            bail!("--depth {} is outside 1..={}", plan.depth, client::MAX_DEPTH);
        }
        for (name, n) in [("--files", plan.files), ("--mount-files", plan.mount_files)] {
            if !(1..=1_000_000).contains(&n) {
                bail!("{name} {n} is outside 1..=1000000");
            }
        }
        if !(1000..=20_000_000).contains(&plan.rss_files) {
            bail!("--rss-files {} is outside 1000..=20000000", plan.rss_files);
        }
        Ok(plan)
    }
}

/// The metadata operations measured, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Create,
    Stat,
    Rename,
    Unlink,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Create, Phase::Stat, Phase::Rename, Phase::Unlink];

    pub fn key(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Stat => "stat",
            Phase::Rename => "rename",
            Phase::Unlink => "unlink",
        }
    }
}

/// The masters compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Master {
    /// The real `mfsmaster`.
    Moose,
    /// `elkfs master` with `CHANGELOG_FSYNC = 0`.
    ElkfsNoFsync,
    /// `elkfs master` with `CHANGELOG_FSYNC = 1` (its default).
    ElkfsFsync,
}

impl Master {
    pub const ALL: [Master; 3] = [Master::Moose, Master::ElkfsNoFsync, Master::ElkfsFsync];

    pub fn key(self) -> &'static str {
        match self {
            Master::Moose => "mfsmaster",
            Master::ElkfsNoFsync => "elkfs_fsync0",
            Master::ElkfsFsync => "elkfs_fsync1",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Master::Moose => "mfsmaster",
            Master::ElkfsNoFsync => "elkfs fsync=0",
            Master::ElkfsFsync => "elkfs fsync=1",
        }
    }

    fn cluster(self, plan: &MetaPlan) -> Cluster {
        let builder = Cluster::builder().mount(true).temp_dir_in(&plan.dir);
        match self {
            Master::Moose => builder.master_kind(MasterKind::Real),
            Master::ElkfsNoFsync => builder.master_kind(MasterKind::Elkfs).master_config("CHANGELOG_FSYNC", "0"),
            Master::ElkfsFsync => builder.master_kind(MasterKind::Elkfs).master_config("CHANGELOG_FSYNC", "1"),
        }
        .start()
    }
}

/// Ops, wall time and latency of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    pub ops: u64,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// CPU seconds the master spent during the phase (user + system).
    pub master_cpu_s: f64,
}

impl Rate {
    pub fn ops_s(&self) -> f64 {
        ratio(self.ops as f64, self.seconds)
    }

    /// The master's CPU microseconds per op: its cost, whatever the
    /// clients sharing the machine leave it.
    pub fn cpu_us_per_op(&self) -> f64 {
        ratio(self.master_cpu_s * 1e6, self.ops as f64)
    }

    /// Merges the workers of one phase: every op, from the first start to
    /// the last finish. The first error wins.
    pub fn combine(outcomes: Vec<Result<(Instant, Instant, Latency)>>) -> Result<Rate> {
        let mut latency = Latency::new()?;
        let mut span: Option<(Instant, Instant)> = None;
        for outcome in outcomes {
            let (start, end, l) = outcome?;
            latency.merge(&l)?;
            span = Some(span.map_or((start, end), |(f, e)| (f.min(start), e.max(end))));
        }
        let seconds = span.map_or(0.0, |(f, e)| e.duration_since(f).as_secs_f64());
        Ok(Rate {
            ops: latency.count(),
            seconds,
            p50_us: latency.percentile_us(50.0),
            p99_us: latency.percentile_us(99.0),
            master_cpu_s: 0.0,
        })
    }
}

/// Everything measured on one master.
#[derive(Debug, Clone, Default)]
pub struct MasterResults {
    pub direct: Vec<(Phase, Rate)>,
    pub mount: Vec<(Phase, Rate)>,
    pub memory: rss::Memory,
    /// The master's CPU seconds (user + system) over the whole run.
    pub master_cpu_s: f64,
}

/// Runs `elkfs bench meta` and prints to stdout.
pub fn run_meta_bench(args: &MetaArgs) -> Result<MetaReport> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run(args, &mut out)
}

/// Runs the metadata bench, printing the table (and with `--json` the
/// JSON line, last) to `out`.
pub fn run(args: &MetaArgs, out: &mut dyn Write) -> Result<MetaReport> {
    let plan = MetaPlan::from_args(args)?;
    crate::preflight("meta", "network namespaces, FUSE mounts", &[], "elkfs master")?;
    let created = !plan.dir.exists();
    std::fs::create_dir_all(&plan.dir).with_context(|| format!("mkdir {}", plan.dir.display()))?;
    // Ctrl-C sets a flag the phases check; the harness's drops clean up.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("elkfs-bench-signals")
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    crate::interrupt::install(runtime.handle());
    let mut setting = report::Setting::probe();
    let mut results = Vec::new();
    let mut outcome = Ok(());
    for master in Master::ALL {
        tracing::info!("bench meta: {}", master.label());
        match harnessed(master.label(), || one_master(&plan, master)) {
            Ok(r) => results.push((master, r)),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    if created {
        let _ = std::fs::remove_dir(&plan.dir);
    }
    outcome?;
    setting.finish();
    let report = MetaReport::new(&plan, results, setting);
    report.print_table(out)?;
    if plan.json {
        writeln!(out, "{}", report.json())?;
    }
    out.flush()?;
    Ok(report)
}

/// One master's cluster: direct phases, mount phases, memory.
fn one_master(plan: &MetaPlan, master: Master) -> Result<MasterResults> {
    let mut c = master.cluster(plan);
    let ns = c.netns().path();
    let addr = SocketAddr::from((c.addr(), c.ports().client));
    let pid = c.master().pid();
    let cpu_before = process_cpu_s(pid)?;
    direct::disable_trash(&ns, addr)?;
    let mut sessions = direct::open_sessions(&ns, addr, plan.sessions, "s")?;
    let direct = direct::run_all(&mut sessions, plan.files, plan.depth, pid)?;
    drop(sessions);
    let dirs = mount::make_dirs(c.mountpoint(), plan.threads)?;
    let mount = mount::run_all(&dirs, plan.mount_files, pid)?;
    let memory = rss::measure(&ns, addr, pid, plan.sessions, plan.rss_files)?;
    let master_cpu_s = process_cpu_s(pid)? - cpu_before;
    if !c.master().is_running() {
        bail!("{} exited during the run", master.label());
    }
    Ok(MasterResults { direct, mount, memory, master_cpu_s })
}

/// Runs `phase` and adds the CPU that process `pid` spent meanwhile.
pub fn with_master_cpu(pid: u32, phase: impl FnOnce() -> Result<Rate>) -> Result<Rate> {
    let before = process_cpu_s(pid)?;
    let mut rate = phase()?;
    rate.master_cpu_s = process_cpu_s(pid)? - before;
    Ok(rate)
}

/// User + system CPU seconds of process `pid` (`/proc/PID/stat`).
fn process_cpu_s(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu_ticks(&text).map(|t| t as f64 / clock_ticks()).with_context(|| format!("parsing {path}"))
}

/// utime + stime, fields 14 and 15, counted after the `)` that ends the
/// command name (which may itself hold spaces).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    Some(fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MetaArgs,
    }

    fn plan(argv: &[&str]) -> Result<MetaPlan> {
        let mut all = vec!["meta"];
        all.extend_from_slice(argv);
        MetaPlan::from_args(&Cli::try_parse_from(all).unwrap().args)
    }

    #[test]
    fn quick_shrinks_and_bad_settings_are_refused() {
        let full = plan(&[]).unwrap();
        assert_eq!((full.sessions, full.files, full.depth, full.rss_files), (8, 2000, 1, 200_000));
        let quick = plan(&["--quick"]).unwrap();
        assert!(quick.files < full.files && quick.rss_files < full.rss_files && quick.mount_files < full.mount_files);
        assert!(plan(&["--depth", "0"]).is_err());
        assert!(plan(&["--depth", "100000"]).is_err());
        assert!(plan(&["--sessions", "0"]).is_err());
        assert!(plan(&["--rss-files", "10"]).is_err());
    }

    #[test]
    fn cpu_ticks_skip_a_name_with_spaces() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 1000 10";
        assert_eq!(parse_cpu_ticks(stat), Some(10));
        assert!(process_cpu_s(std::process::id()).unwrap() >= 0.0);
    }

    #[test]
    fn rates_span_the_first_start_to_the_last_end() {
        let t0 = Instant::now();
        let mut a = Latency::new().unwrap();
        a.record(std::time::Duration::from_micros(100));
        let mut b = Latency::new().unwrap();
        b.record(std::time::Duration::from_micros(300));
        let ms = std::time::Duration::from_millis;
        let rate = Rate::combine(vec![Ok((t0, t0 + ms(500), a)), Ok((t0 + ms(100), t0 + ms(1000), b))]).unwrap();
        assert_eq!(rate.ops, 2);
        assert!((rate.seconds - 1.0).abs() < 1e-9);
        assert!((rate.ops_s() - 2.0).abs() < 1e-9);
        assert!(Rate::combine(vec![Err(anyhow::anyhow!("boom"))]).is_err());
    }
}
