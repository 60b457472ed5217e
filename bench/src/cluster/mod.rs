//! `elkfs bench cluster`: the same fio jobs through the same real
//! `mfsmount` and `mfsmaster`, once with three real `mfschunkserver`s and
//! once with three elkfs chunkservers on the same disk, side by side.
//!
//! Every round builds a fresh cluster of each kind in turn (real, then
//! elkfs: A B A B over the rounds) with the test harness (`elkfs-harness`:
//! a private network namespace, a temp dir under `DIR/fio`, torn down on
//! the way out) and runs [`jobs::Job::ALL`] on it: fio writes, reads and
//! random reads of one file at goal 1 and one at goal 2 through the mount,
//! then the direct protocol runs ([`direct`]) against the one chunkserver
//! holding most of those files' chunks. On the elkfs cluster, right before
//! each direct run, the engine alone does the same direction
//! ([`crate::engine_run`], in this process, on `DIR/elkfs`): the yardstick
//! of the direct figures, taken under the same host-cache weather.
//!
//! The disk sits behind a host cache and single runs swing, so each ratio
//! is the median of per-round ratios, with min and max ([`report`]).

pub mod direct;
pub mod jobs;
pub mod loopback;
pub mod report;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::harnessed;
use elkfs_engine::BLOCKS_PER_CHUNK;
use elkfs_harness::{ChunkserverKind, Cluster};

use crate::engine_run::EngineBench;
use crate::plan::{FioMemory, Plan};
use crate::scenario::Scenario;
use crate::stats::{ratio, DiskCounters, Figures};
use crate::workdir::WorkDirs;
use crate::{fio, interrupt};
use jobs::{CpuProbe, Job};
pub use report::ClusterReport;

const MIB: u64 = 1 << 20;
/// MooseFS chunks are 64 MiB.
const CHUNK_BYTES: usize = 64 << 20;
/// Chunkservers per cluster.
const SERVERS: usize = 3;

/// `elkfs bench cluster`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Folder on the disk to measure. The clusters (chunk folders, master
    /// data, mount point) live in DIR/fio, the engine's reference run in
    /// DIR/elkfs; both are removed at the end.
    #[arg(long, default_value = "/var/tmp/elkfs-bench-cluster")]
    pub dir: PathBuf,
    /// Also print every figure as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Rounds of (real cluster, elkfs cluster); the median ratio is
    /// reported. Default 3 (1 with --quick).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Size of each fio file in MiB (one at goal 1, one at goal 2).
    #[arg(long, default_value_t = 2048)]
    pub size_mib: u64,
    /// Seconds each 4 KiB random-read run lasts.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Smoke test: 256 MiB files, 3 s random reads, 1 round.
    #[arg(long)]
    pub quick: bool,
    /// Chunks (64 MiB each) the direct runs write and read on one server
    /// (at most those it holds of the two files), and the engine's
    /// reference run moves. Default 32 (4 with --quick): 2 GiB, long
    /// enough to measure.
    #[arg(long)]
    pub direct_chunks: Option<usize>,
    /// Connections of the direct runs, each on its own chunk at a time.
    #[arg(long, default_value_t = 4)]
    pub direct_connections: usize,
    /// Unacknowledged 64 KiB WRITE_DATA pieces per direct connection.
    #[arg(long, default_value_t = direct::DEFAULT_WINDOW)]
    pub direct_window: usize,
    /// The fio binary to run.
    #[arg(long, default_value = "fio")]
    pub fio: PathBuf,
    /// Run only these jobs, comma-separated: job keys (`direct_read`,
    /// `seq_read_g2`, ...) or the groups `mount` and `direct`. The writes
    /// whose files a job reads run too.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Run only this kind of chunkserver (`real` or `elkfs`). Nothing is
    /// compared then: the figures are in the log lines.
    #[arg(long)]
    pub stack: Option<String>,
}

/// Resolved settings of one invocation.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    pub dir: PathBuf,
    pub rounds: usize,
    pub file_bytes: u64,
    pub seconds: u64,
    pub direct_chunks: usize,
    pub connections: usize,
    pub window: usize,
    pub fio: PathBuf,
    pub json: bool,
    pub quick: bool,
    /// The jobs each cluster runs, in order.
    pub jobs: Vec<Job>,
    /// The kinds of chunkserver each round runs, in order.
    pub kinds: Vec<ChunkserverKind>,
}

impl ClusterPlan {
    pub fn from_args(args: &ClusterArgs) -> Result<ClusterPlan> {
        let (file_mib, seconds) = if args.quick { (256, 3) } else { (args.size_mib, args.seconds) };
        let direct_chunks = args.direct_chunks.unwrap_or(if args.quick { 4 } else { 32 });
        let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
        if !(1..=100).contains(&rounds) {
            bail!("--rounds {rounds} is outside 1..=100");
        }
        if !(64..=1 << 20).contains(&file_mib) {
            bail!("--size-mib {file_mib} is outside 64..=1048576");
        }
        if !(1..=3600).contains(&seconds) {
            bail!("--seconds {seconds} is outside 1..=3600");
        }
        if !(1..=1024).contains(&direct_chunks) {
            bail!("--direct-chunks {direct_chunks} is outside 1..=1024");
        }
        if !(1..=64).contains(&args.direct_connections) || !(1..=1024).contains(&args.direct_window) {
            bail!("--direct-connections must be in 1..=64 and --direct-window in 1..=1024");
        }
        let kinds = match args.stack.as_deref() {
            None => vec![ChunkserverKind::Real, ChunkserverKind::Elkfs],
            Some("real") => vec![ChunkserverKind::Real],
            Some("elkfs") => vec![ChunkserverKind::Elkfs],
            Some(other) => bail!("--stack {other}: expected real or elkfs"),
        };
        Ok(ClusterPlan {
            dir: args.dir.clone(),
            rounds,
            file_bytes: file_mib * MIB,
            seconds,
            direct_chunks,
            connections: args.direct_connections,
            window: args.direct_window,
            fio: args.fio.clone(),
            json: args.json,
            quick: args.quick,
            jobs: Job::chosen(&args.only)?,
            kinds,
        })
    }

    /// The engine bench's plan for the reference run: `direct_chunks`
    /// whole chunks, its default shape (1 MiB requests, QD16 over 4 chunks).
    fn engine_plan(&self, data: &Path) -> Plan {
        let chunks = self.direct_chunks.max(4);
        Plan {
            dir: data.to_path_buf(),
            chunks,
            chunk_blocks: BLOCKS_PER_CHUNK,
            seconds: 1,
            rounds: 1,
            workers: crate::plan::default_workers(),
            streams: 4,
            leave_space_bytes: 256 * MIB,
            drop_caches: false,
            fio: self.fio.clone(),
            fio_memory: FioMemory::Malloc,
            json: self.json,
            quick: self.quick,
        }
    }
}

/// What one job measured on one cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Throughput and latency as fio (or the direct client) saw them, and
    /// the bytes the disk under the cluster moved meanwhile (`disk`: every
    /// process on the machine counts, so an upper bound).
    pub figures: Figures,
    /// CPU seconds of the chunkservers: all three for mount jobs, the one
    /// talked to for direct jobs.
    pub cs_cpu_s: f64,
    /// The kernel's part of `cs_cpu_s` (TCP, disk I/O, page cache).
    pub cs_sys_s: f64,
    pub mount_cpu_s: f64,
    pub master_cpu_s: f64,
    /// fio's own CPU (whole process) or the direct client thread's.
    pub client_cpu_s: f64,
    /// Share of the machine's CPU time that was busy during the run (1.0:
    /// every core all the time), interrupts included.
    pub machine_busy: f64,
}

/// Every sample of every round.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub real: BTreeMap<Job, Vec<Sample>>,
    pub elkfs: BTreeMap<Job, Vec<Sample>>,
    pub engine_write: Vec<Figures>,
    pub engine_read: Vec<Figures>,
    /// Loopback TCP alone (see [`loopback`]), beside each engine read.
    pub loopback: Vec<loopback::Loopback>,
    /// The engine's read with loopback TCP beside it, before each engine read.
    pub beside: Vec<BesideTcp>,
    /// Per cluster run: the server the direct runs used and its chunk count.
    pub direct_notes: Vec<String>,
}

/// Runs `elkfs bench cluster` and prints to stdout.
pub fn run_cluster_bench(args: &ClusterArgs) -> Result<ClusterReport> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run(args, &mut out)
}

/// Runs the cluster bench, printing the table (and with `--json` the JSON
/// line, last) to `out`.
pub fn run(args: &ClusterArgs, out: &mut dyn Write) -> Result<ClusterReport> {
    let plan = ClusterPlan::from_args(args)?;
    crate::preflight(
        "cluster",
        "network namespaces, FUSE mounts, drop_caches",
        &["mfschunkserver", "umount", "mfsfileinfo", "mfssetgoal", "mfssettrashtime"],
        "elkfs chunkservers",
    )?;
    let fio_version = fio::check_installed(&plan.fio)?;
    let dirs = WorkDirs::create(&plan.dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(crate::plan::default_workers())
        .thread_name("elkfs-bench")
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    interrupt::install(runtime.handle());
    let mut setting = report::Setting::probe(fio_version);
    let engine_plan = plan.engine_plan(&dirs.elkfs);
    let engine = EngineBench::start(&dirs.elkfs, &engine_plan)?;
    tracing::info!(
        "bench cluster: {} round(s) of (3 mfschunkserver, 3 elkfs chunkserver) with mfsmaster + mfsmount, files of {} MiB, in {}",
        plan.rounds,
        plan.file_bytes / MIB,
        plan.dir.display()
    );
    let mut results = Results::default();
    let reference = EngineRef { runtime: &runtime, bench: &engine, plan: &engine_plan, quick: plan.quick };
    for round in 1..=plan.rounds {
        for kind in plan.kinds.iter().copied() {
            let what = format!("round {round}/{} {}", plan.rounds, kind_name(kind));
            let engine = (kind == ChunkserverKind::Elkfs).then_some(&reference);
            let out = harnessed(&what, || cluster_round(&plan, kind, &dirs.fio, &what, engine))?;
            let side = if kind == ChunkserverKind::Real { &mut results.real } else { &mut results.elkfs };
            for (job, sample) in out.samples {
                side.entry(job).or_default().push(sample);
            }
            results.direct_notes.push(format!("{what}: {}", out.note));
            results.engine_write.extend(out.engine_write);
            results.engine_read.extend(out.engine_read);
            results.loopback.extend(out.loopback);
            results.beside.extend(out.beside);
        }
    }
    setting.finish();
    let report = ClusterReport::new(&plan, results, setting);
    report.print_table(out)?;
    if plan.json {
        writeln!(out, "{}", report.json())?;
    }
    out.flush()?;
    drop(engine);
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    drop(dirs);
    Ok(report)
}

/// The engine alone, for the reference runs beside elkfs's direct runs.
struct EngineRef<'a> {
    runtime: &'a tokio::runtime::Runtime,
    bench: &'a EngineBench,
    plan: &'a Plan,
    quick: bool,
}

impl EngineRef<'_> {
    /// Sequential write of fresh chunks, or read of them.
    fn run(&self, write: bool, what: &str) -> Result<Figures> {
        let scenario = if write { Scenario::SeqWrite } else { Scenario::SeqRead };
        if write {
            self.runtime.block_on(self.bench.fresh_chunks()).context("engine: fresh chunks")?;
        }
        jobs::settle(self.quick)?;
        let figures = self.runtime.block_on(self.bench.run(&self.plan.shape(scenario))).context("engine run")?;
        tracing::info!(
            "{what}: engine alone {} {:.0} MiB/s ({:.2} CPU-s/GiB)",
            scenario.key(),
            figures.mib_s(),
            figures.cpu_s_per_gib()
        );
        Ok(figures)
    }

    /// The engine's read with loopback TCP traffic beside it for the whole
    /// run: the direct client against the memory server over
    /// `connections`, paced at `pace` bytes per second. On chunks the
    /// write reference left.
    fn read_beside_tcp(&self, connections: usize, pace: f64, what: &str) -> Result<BesideTcp> {
        jobs::settle(self.quick)?;
        let load = loopback::Beside::start(connections, pace)?;
        // Let the connections reach their pace before the engine starts.
        std::thread::sleep(BESIDE_WARMUP);
        let engine = self.runtime.block_on(self.bench.run(&self.plan.shape(Scenario::SeqRead)));
        let tcp = load.finish().context("loopback TCP beside the engine")?;
        let engine = engine.context("engine run beside loopback TCP")?;
        tracing::info!(
            "{what}: engine seq_read with loopback TCP paced at {:.0} MiB/s beside it: {:.0} MiB/s (TCP moved {:.0} MiB/s)",
            pace / MIB as f64,
            engine.mib_s(),
            tcp.client.mib_s()
        );
        Ok(BesideTcp { engine, tcp, pace_mib_s: pace / MIB as f64 })
    }
}

/// How long background TCP runs before the engine run beside it starts.
const BESIDE_WARMUP: std::time::Duration = std::time::Duration::from_millis(200);

/// The engine's read with paced loopback TCP beside it, and what the TCP
/// load moved meanwhile (over a little more time than the engine ran).
#[derive(Debug, Clone, Copy)]
pub struct BesideTcp {
    pub engine: Figures,
    pub tcp: loopback::Loopback,
    /// The pace asked of the TCP load: the target share of the engine
    /// alone's read figure just before.
    pub pace_mib_s: f64,
}

/// What one cluster run brings back.
struct RoundOut {
    samples: Vec<(Job, Sample)>,
    /// Which server the direct runs used.
    note: String,
    engine_write: Option<Figures>,
    engine_read: Option<Figures>,
    loopback: Option<loopback::Loopback>,
    beside: Option<BesideTcp>,
}

fn kind_name(kind: ChunkserverKind) -> &'static str {
    match kind {
        ChunkserverKind::Real => "real",
        ChunkserverKind::Elkfs => "elkfs",
    }
}

/// Lines of each daemon's log printed when a job fails.
const LOG_LINES: usize = 60;
/// Seconds after its start before mfsmaster replicates anything
/// (`REPLICATIONS_DELAY_INIT`; the harness sets 0). mfsmaster also moves
/// chunks to even out its servers' usage, and servers sharing one disk
/// report usage a moment apart while it fills: it moved a chunk of the
/// direct job's list between `mfsfileinfo` and the job (NOCHUNK), and any
/// move costs disk time inside a measurement. A bench cluster loses no
/// copy, so nothing needs replicating while it runs.
pub const NO_REPLICATION_FOR: &str = "3600";

/// One cluster of `kind`, every job on it; with `engine`, the engine's
/// reference run of each direction right before the direct run.
fn cluster_round(
    plan: &ClusterPlan,
    kind: ChunkserverKind,
    base: &Path,
    what: &str,
    engine: Option<&EngineRef>,
) -> Result<RoundOut> {
    let mut builder =
        Cluster::builder().mount(true).temp_dir_in(base).master_config("REPLICATIONS_DELAY_INIT", NO_REPLICATION_FOR);
    for _ in 0..SERVERS {
        builder = builder.chunkserver(kind);
    }
    let mut c = builder.start();
    let out = jobs_on(&mut c, plan, base, what, engine);
    if out.is_err() {
        // The cluster's folder goes with it: what the daemons said is
        // the only trace of why a job failed.
        c.print_logs(LOG_LINES);
    }
    out
}

/// Every job on the cluster `c`, in order.
fn jobs_on(
    c: &mut Cluster,
    plan: &ClusterPlan,
    base: &Path,
    what: &str,
    engine: Option<&EngineRef>,
) -> Result<RoundOut> {
    let mnt = c.mountpoint().to_path_buf();
    c.tool("mfssettrashtime", &["-r".as_ref(), "0".as_ref(), mnt.as_os_str()]);
    for goal in [1u8, 2] {
        let dir = mnt.join(format!("g{goal}"));
        std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        c.mfs_setgoal(&dir, goal);
    }
    let mut out = RoundOut {
        samples: Vec::new(),
        note: String::new(),
        engine_write: None,
        engine_read: None,
        loopback: None,
        beside: None,
    };
    let mut direct_target = None;
    for job in plan.jobs.iter().copied() {
        let sample = match job {
            Job::SeqWrite { goal } | Job::SeqRead { goal } | Job::RandRead { goal } => {
                if !job.is_write() {
                    // A fresh mfsmount: its read-ahead cache is empty.
                    c.remount();
                }
                jobs::settle(plan.quick)?;
                let file = mnt.join(format!("g{goal}")).join("data");
                measured(c, None, || jobs::run_fio(&plan.fio, job, &file, plan.file_bytes, plan.seconds, base))?
            }
            Job::DirectWrite | Job::DirectRead => {
                if direct_target.is_none() {
                    let (target, pid) = pick_direct_target(c, &mnt, plan.direct_chunks)?;
                    out.note = format!("direct runs on {} ({} chunks)", target.addr, target.chunks.len());
                    direct_target = Some((target, pid));
                }
                let (target, pid) = direct_target.as_ref().expect("set just above");
                let write = job == Job::DirectWrite;
                if let Some(engine) = engine {
                    let figures = engine.run(write, what)?;
                    *(if write { &mut out.engine_write } else { &mut out.engine_read }) = Some(figures);
                    if !write {
                        // Can any chunkserver meet the target here? One
                        // that did would send target x engine over TCP
                        // while it read: the engine's read with that load
                        // beside it says whether the disk still gives as
                        // much. (Second read of these chunks: any favour
                        // from the host's cache goes to this run.)
                        let pace = report::DIRECT_VS_ENGINE_TARGET * figures.mib_s() * MIB as f64;
                        out.beside = Some(engine.read_beside_tcp(plan.connections, pace, what)?);
                        let l = loopback::run(plan.connections, target.chunks.len(), CHUNK_BYTES)?;
                        tracing::info!(
                            "{what}: loopback TCP alone {:.0} MiB/s ({:.2} CPU-s/GiB: server {:.2}, client {:.2})",
                            l.client.mib_s(),
                            l.cpu_s_per_gib(),
                            l.client.per_gib(l.server_cpu_s),
                            l.client.per_gib(l.client.cpu_s)
                        );
                        out.loopback = Some(l);
                    }
                }
                let job = direct::Job {
                    write,
                    connections: plan.connections,
                    window: plan.window,
                    chunk_bytes: CHUNK_BYTES,
                    verify_all: false,
                };
                jobs::settle(plan.quick)?;
                measured(c, Some(*pid), || direct::run(target, &job))?
            }
        };
        let f = &sample.figures;
        tracing::info!(
            "{what}: {} {} (p50 {:.0} us, p99 {:.0} us), CPU-s/GiB chunkservers {:.2} mount {:.2}",
            job.key(),
            match job.measure() {
                crate::scenario::Measure::Iops => format!("{:.0} IOPS", f.iops()),
                crate::scenario::Measure::MibPerSecond => format!("{:.0} MiB/s", f.mib_s()),
            },
            f.p50_us,
            f.p99_us,
            f.per_gib(sample.cs_cpu_s),
            f.per_gib(sample.mount_cpu_s)
        );
        out.samples.push((job, sample));
    }
    Ok(out)
}

/// Runs `run` and reads the CPU the cluster's processes used meanwhile
/// (every chunkserver, or only `one_server` when given) and what the
/// cluster's block device read and wrote.
pub(crate) fn measured(
    c: &mut Cluster,
    one_server: Option<u32>,
    run: impl FnOnce() -> Result<Figures>,
) -> Result<Sample> {
    let disk = DiskCounters::for_folder(c.dir());
    let disk_before = disk.as_ref().map(DiskCounters::read);
    let servers: Vec<u32> = match one_server {
        Some(pid) => vec![pid],
        None => c.chunkservers().iter().map(|s| s.pid()).collect(),
    };
    let mount: Vec<u32> = c.mount_daemon().map(|d| d.pid()).into_iter().collect();
    let master = vec![c.master().pid()];
    let (cs, mnt, mst) = (CpuProbe::start(&servers), CpuProbe::start(&mount), CpuProbe::start(&master));
    let machine = jobs::machine_jiffies();
    let mut figures = run()?;
    let machine_now = jobs::machine_jiffies();
    let machine_busy =
        ratio(machine_now.0.saturating_sub(machine.0) as f64, machine_now.1.saturating_sub(machine.1) as f64);
    if let (Some(disk), Some(before)) = (&disk, disk_before) {
        figures.disk = disk.read().since(&before);
    }
    let cs = cs.used();
    Ok(Sample {
        figures,
        cs_cpu_s: cs.total_s(),
        cs_sys_s: cs.sys_s,
        mount_cpu_s: mnt.used().total_s(),
        master_cpu_s: mst.used().total_s(),
        client_cpu_s: figures.cpu_s,
        machine_busy,
    })
}

/// The chunkserver holding most chunks of the two fio files, with up to
/// `max` of those chunks (goal 1 ones first). Writing straight to one
/// copy of a goal 2 chunk leaves its copies different, which is harmless
/// here: nothing reads them afterwards and the cluster is thrown away.
fn pick_direct_target(c: &Cluster, mnt: &Path, max: usize) -> Result<(direct::Target, u32)> {
    let mut per_server: BTreeMap<String, Vec<direct::ChunkRef>> = BTreeMap::new();
    for goal in [1, 2] {
        for chunk in c.mfs_fileinfo(&mnt.join(format!("g{goal}")).join("data")) {
            for addr in &chunk.copies {
                let chunks = per_server.entry(addr.clone()).or_default();
                let r = direct::ChunkRef { id: chunk.id, version: chunk.version };
                if chunk.id != 0 && !chunks.contains(&r) {
                    chunks.push(r);
                }
            }
        }
    }
    let (addr, mut chunks) = per_server
        .into_iter()
        .max_by_key(|(_, chunks)| chunks.len())
        .ok_or_else(|| anyhow!("mfsfileinfo shows no chunk copies"))?;
    chunks.truncate(max);
    let server = c.chunkserver_at(&addr).ok_or_else(|| anyhow!("{addr} is not a chunkserver of this cluster"))?;
    let socket: SocketAddrV4 = addr.parse().with_context(|| format!("chunkserver address {addr}"))?;
    let target = direct::Target { addr: socket, netns: Some(c.netns().path()), chunks, stop: None, pace: None };
    Ok((target, server.pid()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ClusterArgs,
    }

    fn plan(argv: &[&str]) -> Result<ClusterPlan> {
        let mut all = vec!["bench"];
        all.extend_from_slice(argv);
        ClusterPlan::from_args(&Cli::try_parse_from(all)?.args)
    }

    #[test]
    fn defaults_and_quick() {
        let p = plan(&[]).unwrap();
        assert_eq!((p.rounds, p.file_bytes, p.seconds, p.direct_chunks), (3, 2 << 30, 20, 32));
        assert_eq!(p.dir, PathBuf::from("/var/tmp/elkfs-bench-cluster"));
        let q = plan(&["--quick"]).unwrap();
        assert_eq!((q.rounds, q.file_bytes, q.seconds, q.direct_chunks), (1, 256 << 20, 3, 4));
        assert_eq!(plan(&["--quick", "--rounds", "2"]).unwrap().rounds, 2);
        assert_eq!(plan(&["--quick", "--direct-chunks", "8"]).unwrap().direct_chunks, 8);
        let e = p.engine_plan(Path::new("/var/tmp/x/elkfs"));
        assert_eq!((e.chunks, e.streams, e.chunk_bytes()), (32, 4, 64 << 20));
    }

    #[test]
    fn bad_settings_are_refused() {
        for argv in [&["--rounds", "0"][..], &["--size-mib", "1"], &["--direct-connections", "0"], &["--seconds", "0"]]
        {
            assert!(plan(argv).is_err(), "{argv:?}");
        }
        assert!(plan(&["--only", "nope"]).is_err());
        assert!(plan(&["--stack", "ceph"]).is_err());
    }

    #[test]
    fn only_picks_jobs_and_the_writes_they_read() {
        let p = plan(&["--only", "direct_read", "--stack", "elkfs"]).unwrap();
        assert_eq!(
            p.jobs,
            vec![Job::SeqWrite { goal: 1 }, Job::SeqWrite { goal: 2 }, Job::DirectWrite, Job::DirectRead]
        );
        assert_eq!(p.kinds, vec![ChunkserverKind::Elkfs]);
        let p = plan(&["--only", "seq_read_g2,rand_read_4k_g2"]).unwrap();
        assert_eq!(p.jobs, vec![Job::SeqWrite { goal: 2 }, Job::SeqRead { goal: 2 }, Job::RandRead { goal: 2 }]);
        assert_eq!(plan(&["--only", "mount"]).unwrap().jobs.len(), 6);
        assert_eq!(plan(&["--only", "direct"]).unwrap().jobs.len(), 4);
        assert_eq!(plan(&[]).unwrap().jobs, Job::ALL.to_vec());
    }
}
