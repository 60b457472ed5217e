//! `elkfs bench mount`: the real `mfsmount` against `elkfs mount`, both on
//! a MooseFS stack (`mfsmaster` + three `mfschunkserver`) and on an elkfs
//! stack (`elkfs master` + three elkfs chunkservers), in one invocation.
//!
//! The question is what the client alone is worth, and what the whole
//! elkfs stack is worth against the whole MooseFS one, so every pairing
//! runs the same work: the fio jobs of `elkfs bench cluster`
//! ([`crate::cluster::jobs`]: 1 MiB sequential write and read at goal 1
//! and 2, 4 KiB random reads at QD16) and a small-file run ([`small`]:
//! create, stat, read, delete of many 4 KiB files from several threads).
//!
//! Every round builds a fresh harness cluster (a private network namespace,
//! a temp dir under `DIR/fio`, torn down on the way out) for each stack
//! and each client in turn, mfsmount first in odd rounds and elkfs mount
//! first in even ones (A B, B A, ...). Both clients thus meet the host's
//! cache weather, and neither always inherits the disk from the other:
//! the second cluster of a pair creates its files on an ext4 that has just
//! deleted the first one's, and its inode allocations cost more there
//! (with a fixed order, the real chunkservers spent 900 against 560
//! CPU-us per small create for the client that always came second).
//! Ratios are medians of per-round ratios with min and max
//! ([`report`]). Each round starts with fio's sequential jobs straight on
//! the clusters' folder: the disk alone, the ceiling of every sequential
//! figure (all daemons of a stack share that one disk).
//!
//! A job that fails or hangs on one client is recorded as failed for that
//! client and round ([`round`]), and the run goes on: a broken client must
//! not hide the figures of everything else.

pub mod report;
pub mod round;
pub mod small;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cluster::jobs::Job;
use crate::cluster::Sample;
use crate::harnessed;
use crate::workdir::WorkDirs;
use crate::{fio, interrupt};
use elkfs_harness::{ChunkserverKind, ClientKind, MasterKind};
pub use report::MountReport;
use small::Phase;

const MIB: u64 = 1 << 20;
/// Chunkservers per cluster.
const SERVERS: usize = 3;

/// `elkfs bench mount`.
#[derive(Debug, Clone, clap::Args)]
pub struct MountArgs {
    /// Folder on the disk to measure. The clusters (chunk folders, master
    /// data, mount points) live in DIR/fio; removed at the end.
    #[arg(long, default_value = "/var/tmp/elkfs-bench-mount")]
    pub dir: PathBuf,
    /// Also print every figure as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Rounds of (each stack × each client); the median ratio is reported.
    /// Default 3 (1 with --quick).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Size of each fio file in MiB (one at goal 1, one at goal 2).
    /// Default 2048 (256 with --quick).
    #[arg(long)]
    pub size_mib: Option<u64>,
    /// Seconds each 4 KiB random-read run lasts. Default 20 (3 with
    /// --quick).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Files of 4 KiB in the small-file run, spread over the threads.
    /// Default 10000 (1000 with --quick).
    #[arg(long)]
    pub files: Option<usize>,
    /// Threads of the small-file run, each in its own directory.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Smoke test: 256 MiB files, 3 s random reads, 1000 small files, 1
    /// round (each can still be set explicitly).
    #[arg(long)]
    pub quick: bool,
    /// The fio binary to run.
    #[arg(long, default_value = "fio")]
    pub fio: PathBuf,
    /// Run only these works, comma-separated: work keys (`small_create`,
    /// `seq_write_g1`, ...) or the groups `fio` and `small`. Works a chosen
    /// one needs run too. Default: all.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Run only this stack (`moosefs` or `elkfs`). Default: both.
    #[arg(long)]
    pub stack: Option<String>,
}

/// Resolved settings of one invocation.
#[derive(Debug, Clone)]
pub struct MountPlan {
    pub dir: PathBuf,
    pub rounds: usize,
    pub file_bytes: u64,
    pub seconds: u64,
    pub files: usize,
    pub threads: usize,
    pub fio: PathBuf,
    pub json: bool,
    pub quick: bool,
    /// The works to run, in [`Work::ALL`] order.
    pub works: Vec<Work>,
    /// The stacks to run.
    pub stacks: Vec<Stack>,
}

impl MountPlan {
    pub fn from_args(a: &MountArgs) -> Result<MountPlan> {
        let q = a.quick;
        let rounds = a.rounds.unwrap_or(if q { 1 } else { 3 });
        let file_mib = a.size_mib.unwrap_or(if q { 256 } else { 2048 });
        let seconds = a.seconds.unwrap_or(if q { 3 } else { 20 });
        let files = a.files.unwrap_or(if q { 1000 } else { 10_000 });
        if !(1..=100).contains(&rounds) {
            bail!("--rounds {rounds} is outside 1..=100");
        }
        if !(64..=1 << 20).contains(&file_mib) {
            bail!("--size-mib {file_mib} is outside 64..=1048576");
        }
        if !(1..=3600).contains(&seconds) {
            bail!("--seconds {seconds} is outside 1..=3600");
        }
        if !(1..=256).contains(&a.threads) {
            bail!("--threads {} is outside 1..=256", a.threads);
        }
        if !(1..=10_000_000).contains(&files) {
            bail!("--files {files} is outside 1..=10000000");
        }
        if files < a.threads {
            bail!("--files {files} is fewer than --threads {}: every thread needs a file", a.threads);
        }
        let works = chosen_works(&a.only)?;
        let stacks = match a.stack.as_deref() {
            None => Stack::ALL.to_vec(),
            Some(key) => match Stack::ALL.into_iter().find(|s| s.key() == key) {
                Some(s) => vec![s],
                None => bail!("--stack {key}: expected moosefs or elkfs"),
            },
        };
        Ok(MountPlan {
            dir: a.dir.clone(),
            rounds,
            file_bytes: file_mib * MIB,
            seconds,
            files,
            threads: a.threads,
            fio: a.fio.clone(),
            json: a.json,
            quick: q,
            works,
            stacks,
        })
    }

    /// Whether any fio job runs (the disk-alone reference is only worth
    /// its minutes then).
    pub fn runs_fio(&self) -> bool {
        self.works.iter().any(|w| matches!(w, Work::Fio(_)))
    }
}

/// The works `--only` names, with what they need, in run order.
fn chosen_works(only: &[String]) -> Result<Vec<Work>> {
    if only.is_empty() {
        return Ok(Work::ALL.to_vec());
    }
    let mut picked = Vec::new();
    for key in only {
        let before = picked.len();
        for work in Work::ALL {
            let group = match work {
                Work::Fio(_) => "fio",
                Work::Small(_) => "small",
            };
            if work.key() == key || group == key {
                let mut w = Some(work);
                while let Some(each) = w {
                    picked.push(each);
                    w = each.needs();
                }
            }
        }
        if picked.len() == before {
            bail!("--only {key}: no such work (fio, small, or a key such as small_create)");
        }
    }
    Ok(Work::ALL.into_iter().filter(|w| picked.contains(w)).collect())
}

/// Which master and chunkservers a cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stack {
    /// `mfsmaster` + three `mfschunkserver`.
    Moose,
    /// `elkfs master` + three `elkfs chunkserver`.
    Elkfs,
}

impl Stack {
    pub const ALL: [Stack; 2] = [Stack::Moose, Stack::Elkfs];

    pub fn key(self) -> &'static str {
        match self {
            Stack::Moose => "moosefs",
            Stack::Elkfs => "elkfs",
        }
    }

    fn master(self) -> MasterKind {
        match self {
            Stack::Moose => MasterKind::Real,
            Stack::Elkfs => MasterKind::Elkfs,
        }
    }

    fn chunkserver(self) -> ChunkserverKind {
        match self {
            Stack::Moose => ChunkserverKind::Real,
            Stack::Elkfs => ChunkserverKind::Elkfs,
        }
    }
}

/// Which FUSE client the jobs go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    Mfsmount,
    Elkfs,
}

impl Client {
    pub const ALL: [Client; 2] = [Client::Mfsmount, Client::Elkfs];

    /// The order the clients run in round `r` (from 1): mfsmount first in
    /// odd rounds, elkfs mount first in even ones.
    pub fn in_round(r: usize) -> [Client; 2] {
        let [a, b] = Client::ALL;
        if r % 2 == 1 {
            [a, b]
        } else {
            [b, a]
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Client::Mfsmount => "mfsmount",
            Client::Elkfs => "elkfs_mount",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Client::Mfsmount => "mfsmount",
            Client::Elkfs => "elkfs mount",
        }
    }

    fn kind(self) -> ClientKind {
        match self {
            Client::Mfsmount => ClientKind::Real,
            Client::Elkfs => ClientKind::Elkfs,
        }
    }
}

/// One compared workload: a fio job or a small-file phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Work {
    Fio(Job),
    Small(Phase),
}

/// How a workload's main figure is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    MibPerSecond,
    Iops,
    FilesPerSecond,
}

impl Unit {
    pub fn key(self) -> &'static str {
        match self {
            Unit::MibPerSecond => "mib_s",
            Unit::Iops => "iops",
            Unit::FilesPerSecond => "files_s",
        }
    }
}

/// elkfs mount over mfsmount on the same stack, sequential throughput.
pub const SEQ_TARGET: f64 = 1.3;
/// elkfs mount over mfsmount on the same stack, small-file creates.
pub const CREATE_TARGET: f64 = 1.5;
/// The all-elkfs stack over the all-MooseFS one, sequential write, goal 2.
pub const STACK_WRITE_G2_TARGET: f64 = 2.0;

impl Work {
    /// Every workload, in the order a cluster runs them.
    pub const ALL: [Work; 9] = [
        Work::Fio(Job::SeqWrite { goal: 1 }),
        Work::Fio(Job::SeqRead { goal: 1 }),
        Work::Fio(Job::RandRead { goal: 1 }),
        Work::Fio(Job::SeqWrite { goal: 2 }),
        Work::Fio(Job::SeqRead { goal: 2 }),
        Work::Small(Phase::Create),
        Work::Small(Phase::Stat),
        Work::Small(Phase::Read),
        Work::Small(Phase::Delete),
    ];

    /// Key in the table and the JSON object.
    pub fn key(self) -> &'static str {
        match self {
            Work::Fio(job) => job.key(),
            Work::Small(Phase::Create) => "small_create",
            Work::Small(Phase::Stat) => "small_stat",
            Work::Small(Phase::Read) => "small_read",
            Work::Small(Phase::Delete) => "small_delete",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Work::Fio(Job::RandRead { .. }) => Unit::Iops,
            Work::Fio(_) => Unit::MibPerSecond,
            Work::Small(_) => Unit::FilesPerSecond,
        }
    }

    /// The work whose files this one uses: after it failed, this one
    /// cannot run (fio would lay out a missing file itself and measure
    /// that instead).
    pub fn needs(self) -> Option<Work> {
        match self {
            Work::Fio(Job::SeqRead { goal } | Job::RandRead { goal }) => Some(Work::Fio(Job::SeqWrite { goal })),
            Work::Small(Phase::Stat | Phase::Read | Phase::Delete) => Some(Work::Small(Phase::Create)),
            _ => None,
        }
    }

    /// The elkfs mount / mfsmount target on one stack, where the issue
    /// sets one.
    pub fn client_target(self) -> Option<f64> {
        match self {
            Work::Fio(Job::SeqWrite { .. } | Job::SeqRead { .. }) => Some(SEQ_TARGET),
            Work::Small(Phase::Create) => Some(CREATE_TARGET),
            _ => None,
        }
    }

    /// The all-elkfs / all-MooseFS target, where the issue sets one.
    pub fn stack_target(self) -> Option<f64> {
        (self == Work::Fio(Job::SeqWrite { goal: 2 })).then_some(STACK_WRITE_G2_TARGET)
    }
}

/// Every sample of every round.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub rounds: usize,
    /// Per stack, client and work: one slot per round, `None` where the
    /// work failed or could not run.
    pub samples: BTreeMap<(Stack, Client, Work), Vec<Option<Sample>>>,
    /// What failed, one line each, in the order it happened.
    pub failures: Vec<String>,
    /// The disk alone, per round: fio's sequential write and read of a
    /// file of the same size with the same job, in MiB/s.
    pub disk: Vec<(f64, f64)>,
}

impl Results {
    pub fn new(rounds: usize) -> Results {
        Results { rounds, ..Results::default() }
    }

    /// Records `sample` of `round` (1-based).
    pub fn record(&mut self, stack: Stack, client: Client, work: Work, round: usize, sample: Sample) {
        let slots = self.samples.entry((stack, client, work)).or_insert_with(|| vec![None; self.rounds]);
        if let Some(slot) = round.checked_sub(1).and_then(|i| slots.get_mut(i)) {
            *slot = Some(sample);
        }
    }

    /// The per-round slots of one pairing (all `None` when nothing ran).
    pub fn slots(&self, stack: Stack, client: Client, work: Work) -> Vec<Option<Sample>> {
        self.samples.get(&(stack, client, work)).cloned().unwrap_or_else(|| vec![None; self.rounds])
    }
}

/// Runs `elkfs bench mount` and prints to stdout.
pub fn run_mount_bench(args: &MountArgs) -> Result<MountReport> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run(args, &mut out)
}

/// Runs the mount bench, printing the table (and with `--json` the JSON
/// line, last) to `out`.
pub fn run(args: &MountArgs, out: &mut dyn Write) -> Result<MountReport> {
    let plan = MountPlan::from_args(args)?;
    crate::preflight(
        "mount",
        "network namespaces, FUSE mounts, drop_caches",
        &["mfschunkserver", "umount", "mfsfileinfo", "mfssetgoal", "mfssettrashtime"],
        "elkfs master, chunkservers and mount",
    )?;
    let fio_version = fio::check_installed(&plan.fio)?;
    let dirs = WorkDirs::create(&plan.dir)?;
    // Ctrl-C sets a flag the jobs check; the harness's drops clean up.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("elkfs-bench-signals")
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    interrupt::install(runtime.handle());
    let mut setting = crate::cluster::report::Setting::probe(fio_version);
    tracing::info!(
        "bench mount: {} round(s) of (moosefs, elkfs stack) x (mfsmount, elkfs mount), files of {} MiB, {} small files on {} threads, in {}",
        plan.rounds,
        plan.file_bytes / MIB,
        plan.files,
        plan.threads,
        plan.dir.display()
    );
    let outcome = run_rounds(&plan, &dirs);
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let results = outcome?;
    setting.finish();
    let report = MountReport::new(&plan, results, setting);
    report.print_table(out)?;
    if plan.json {
        writeln!(out, "{}", report.json())?;
    }
    out.flush()?;
    drop(dirs);
    Ok(report)
}

/// Every round, every stack, every client. Only Ctrl-C stops it early: a
/// cluster that cannot be built or set up counts as every work failed.
fn run_rounds(plan: &MountPlan, dirs: &WorkDirs) -> Result<Results> {
    let mut results = Results::new(plan.rounds);
    for r in 1..=plan.rounds {
        interrupt::check()?;
        if plan.runs_fio() {
            match disk_alone(plan, &dirs.fio) {
                Ok(figures) => results.disk.push(figures),
                Err(e) => results.failures.push(format!("round {r}: the disk alone: {e:#}")),
            }
        }
        for stack in plan.stacks.iter().copied() {
            for client in Client::in_round(r) {
                interrupt::check()?;
                let what = format!("round {r}/{} {} stack, {}", plan.rounds, stack.key(), client.label());
                match harnessed(&what, || round::run_cluster(plan, stack, client, &dirs.fio, &what)) {
                    Ok(out) => {
                        for (work, sample) in out.samples {
                            results.record(stack, client, work, r, sample);
                        }
                        for (work, why) in out.failures {
                            results.failures.push(format!("{what}: {}: {why}", work.key()));
                        }
                    }
                    Err(e) => {
                        interrupt::check()?;
                        tracing::warn!("{e:#}");
                        results.failures.push(format!("{e:#} (no work ran on this cluster)"));
                    }
                }
            }
        }
    }
    Ok(results)
}

/// fio's sequential write and read jobs straight on the folder the
/// clusters use: the ceiling of every stack's sequential figures on this
/// disk (a goal 2 write puts each byte on it twice, so half of it there).
fn disk_alone(plan: &MountPlan, dir: &std::path::Path) -> Result<(f64, f64)> {
    let file = dir.join("disk-alone");
    let run = |job| crate::cluster::jobs::run_fio(&plan.fio, job, &file, plan.file_bytes, plan.seconds, dir);
    crate::cluster::jobs::settle(plan.quick)?;
    let write = run(Job::SeqWrite { goal: 1 });
    let read = write.as_ref().ok().map(|_| {
        crate::cluster::jobs::settle(plan.quick)?;
        run(Job::SeqRead { goal: 1 })
    });
    let _ = std::fs::remove_file(&file);
    let write = write.context("fio sequential write")?.mib_s();
    let read = read.unwrap_or_else(|| Err(anyhow::anyhow!("not run"))).context("fio sequential read")?.mib_s();
    tracing::info!("the disk alone: sequential write {write:.0} MiB/s, read {read:.0} MiB/s");
    Ok((write, read))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MountArgs,
    }

    fn plan(argv: &[&str]) -> Result<MountPlan> {
        let mut all = vec!["mount"];
        all.extend_from_slice(argv);
        MountPlan::from_args(&Cli::try_parse_from(all)?.args)
    }

    #[test]
    fn defaults_and_quick() {
        let p = plan(&[]).unwrap();
        assert_eq!((p.rounds, p.file_bytes, p.seconds, p.files, p.threads), (3, 2 << 30, 20, 10_000, 4));
        assert_eq!(p.dir, PathBuf::from("/var/tmp/elkfs-bench-mount"));
        assert!(!p.json && !p.quick);
        let q = plan(&["--quick"]).unwrap();
        assert_eq!((q.rounds, q.file_bytes, q.seconds, q.files), (1, 256 << 20, 3, 1000));
        let set = plan(&["--quick", "--rounds", "2", "--files", "40", "--threads", "8", "--seconds", "5"]).unwrap();
        assert_eq!((set.rounds, set.files, set.threads, set.seconds), (2, 40, 8, 5));
        assert_eq!(plan(&["--size-mib", "64", "--json"]).unwrap().file_bytes, 64 << 20);
        assert_eq!(p.works, Work::ALL.to_vec());
        assert_eq!(p.stacks, Stack::ALL.to_vec());
    }

    #[test]
    fn clients_take_turns_going_first() {
        assert_eq!(Client::in_round(1), [Client::Mfsmount, Client::Elkfs]);
        assert_eq!(Client::in_round(2), [Client::Elkfs, Client::Mfsmount]);
        assert_eq!(Client::in_round(3), Client::in_round(1));
    }

    #[test]
    fn only_picks_works_and_what_they_need() {
        let p = plan(&["--only", "small_read", "--stack", "elkfs"]).unwrap();
        assert_eq!(p.works, vec![Work::Small(Phase::Create), Work::Small(Phase::Read)]);
        assert_eq!(p.stacks, vec![Stack::Elkfs]);
        assert!(!p.runs_fio());
        let fio = plan(&["--only", "fio"]).unwrap();
        assert!(fio.runs_fio() && fio.works.iter().all(|w| matches!(w, Work::Fio(_))));
        assert_eq!(fio.works.len(), 5);
        assert!(plan(&["--only", "nope"]).is_err());
        assert!(plan(&["--stack", "ceph"]).is_err());
    }

    #[test]
    fn bad_settings_are_refused() {
        for argv in [
            &["--rounds", "0"][..],
            &["--rounds", "101"],
            &["--size-mib", "1"],
            &["--seconds", "0"],
            &["--threads", "0"],
            &["--threads", "257"],
            &["--files", "0"],
            &["--files", "3", "--threads", "4"],
        ] {
            let err = plan(argv).err().unwrap_or_else(|| panic!("{argv:?} was accepted"));
            assert!(err.to_string().contains(argv[0]), "{argv:?}: {err}");
        }
        assert!(plan(&["--threads", "x"]).is_err());
    }

    #[test]
    fn works_know_their_targets_and_what_they_need() {
        let keys: Vec<&str> = Work::ALL.iter().map(|w| w.key()).collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        for work in Work::ALL {
            if let Some(need) = work.needs() {
                let (at, need_at) =
                    (keys.iter().position(|k| *k == work.key()), keys.iter().position(|k| *k == need.key()));
                assert!(need_at < at, "{} runs before {}", need.key(), work.key());
            }
        }
        assert_eq!(Work::Fio(Job::SeqRead { goal: 2 }).client_target(), Some(SEQ_TARGET));
        assert_eq!(Work::Fio(Job::RandRead { goal: 1 }).client_target(), None);
        assert_eq!(Work::Small(Phase::Create).client_target(), Some(CREATE_TARGET));
        assert_eq!(Work::Small(Phase::Read).client_target(), None);
        let stack: Vec<Work> = Work::ALL.into_iter().filter(|w| w.stack_target().is_some()).collect();
        assert_eq!(stack, vec![Work::Fio(Job::SeqWrite { goal: 2 })]);
        assert_eq!(Work::Small(Phase::Stat).unit(), Unit::FilesPerSecond);
    }

    #[test]
    fn results_keep_one_slot_per_round() {
        let mut r = Results::new(3);
        let w = Work::Small(Phase::Create);
        r.record(Stack::Elkfs, Client::Elkfs, w, 2, Sample::default());
        r.record(Stack::Elkfs, Client::Elkfs, w, 9, Sample::default());
        let slots = r.slots(Stack::Elkfs, Client::Elkfs, w);
        assert_eq!(slots.iter().map(Option::is_some).collect::<Vec<_>>(), vec![false, true, false]);
        assert_eq!(r.slots(Stack::Moose, Client::Elkfs, w).len(), 3);
    }
}
