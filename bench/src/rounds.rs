//! Alternating rounds: elkfs, fio, elkfs, fio … on the same files.
//!
//! The virtio disk sits behind a host cache, and fio measured against
//! itself swings from 0.4× to 3.7× between single runs. Comparing one
//! target's run with the other's run right next to it, round after round,
//! and taking the median of those per-round ratios is what makes the
//! comparison hold up.
//!
//! Scenario order matters: the sequential write rounds leave both data sets
//! written in full (fresh files every round, for both), and every later
//! scenario reads or overwrites them.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::runtime::Runtime;

use crate::engine_run::EngineBench;
use crate::fio::{self, Fio, Memory};
use crate::interrupt;
use crate::plan::Plan;
use crate::scenario::{Measure, Scenario};
use crate::stats::{ratio, DiskCounters, Figures};
use crate::workdir::WorkDirs;

/// Pause before each run, after the flush, so background work the previous
/// run started (ext4's journal, unwritten-extent conversion) winds down.
const SETTLE: Duration = Duration::from_secs(1);

/// Every round of one scenario.
#[derive(Debug, Clone)]
pub struct Rounds {
    pub scenario: Scenario,
    pub elkfs: Vec<Figures>,
    pub fio: Vec<Figures>,
    /// fio's 64 KiB random reads (rand_read_4k only): the same disk work as
    /// the engine's CRC-checked 4 KiB reads.
    pub fio_64k: Vec<Figures>,
}

/// The figure a scenario is judged by.
pub fn metric(scenario: Scenario, figures: &Figures) -> f64 {
    match scenario.measure() {
        Measure::MibPerSecond => figures.mib_s(),
        Measure::Iops => figures.iops(),
    }
}

/// Runs every scenario for `plan.rounds` rounds of (elkfs, fio).
pub fn run_all(
    plan: &Plan,
    runtime: &Runtime,
    bench: &EngineBench,
    dirs: &WorkDirs,
    memory: Memory,
) -> Result<Vec<Rounds>> {
    let mut settle = Settle::new(plan, &dirs.root)?;
    let mut fio = Fio::new(plan, &dirs.fio, memory);
    let disk = DiskCounters::for_folder(&dirs.root);
    if disk.is_none() {
        tracing::warn!("no block device counters for {}: disk bytes will show as 0", dirs.root.display());
    }
    let mut all = Vec::with_capacity(Scenario::ALL.len());
    for scenario in Scenario::ALL {
        let shape = plan.shape(scenario);
        let mut rounds = Rounds { scenario, elkfs: Vec::new(), fio: Vec::new(), fio_64k: Vec::new() };
        for round in 1..=plan.rounds {
            let what = format!("{} round {round}/{}", scenario.key(), plan.rounds);
            if scenario == Scenario::SeqWrite {
                // Before the files go: calibrating writes one request.
                fio.calibrate(&shape).with_context(|| format!("{what}: fio"))?;
                runtime.block_on(bench.fresh_chunks()).with_context(|| format!("{what}: fresh engine chunks"))?;
                fio::remove_files(&dirs.fio).with_context(|| format!("{what}: fresh fio files"))?;
            }
            settle.wait()?;
            let elkfs =
                counted(&disk, || runtime.block_on(bench.run(&shape))).with_context(|| format!("{what}: elkfs"))?;
            settle.wait()?;
            let fio_figures = counted(&disk, || fio.run(&shape)).with_context(|| format!("{what}: fio"))?;
            let shown = |f: &Figures| match scenario.measure() {
                Measure::MibPerSecond => format!("{:.0} MiB/s", f.mib_s()),
                Measure::Iops => format!("{:.0} IOPS", f.iops()),
            };
            tracing::info!(
                "{what}: elkfs {} ({:.2} CPU-s/GiB), fio {} ({:.2} CPU-s/GiB), ratio {:.2}",
                shown(&elkfs),
                elkfs.cpu_s_per_gib(),
                shown(&fio_figures),
                fio_figures.cpu_s_per_gib(),
                ratio(metric(scenario, &elkfs), metric(scenario, &fio_figures))
            );
            rounds.elkfs.push(elkfs);
            rounds.fio.push(fio_figures);
            if scenario == Scenario::RandRead4k {
                settle.wait()?;
                let reference = counted(&disk, || fio.run(&plan.crc_reference_shape()))
                    .with_context(|| format!("{what}: fio 64 KiB reads"))?;
                tracing::info!("{what}: fio 64 KiB random reads {:.0} IOPS", reference.iops());
                rounds.fio_64k.push(reference);
            }
        }
        all.push(rounds);
    }
    Ok(all)
}

/// Runs `run` and adds what the disk moved meanwhile to its figures.
fn counted(disk: &Option<DiskCounters>, run: impl FnOnce() -> Result<Figures>) -> Result<Figures> {
    let before = disk.as_ref().map(DiskCounters::read);
    let mut figures = run()?;
    if let (Some(disk), Some(before)) = (disk, before) {
        figures.disk = disk.read().since(&before);
    }
    Ok(figures)
}

/// What happens between runs: the disk's write cache is flushed, caches
/// are dropped if asked, and a short pause.
///
/// The flush matters most. `syncfs` ends in a FLUSH to the virtio disk,
/// which makes the host write back what it holds; without it the run after
/// a write run pays for the previous run's data (seen here: fio writing at
/// a third of the engine's speed right after the engine wrote 1 GiB). Both
/// targets get the same treatment, and no flush happens inside a run.
struct Settle {
    pause: Duration,
    drop_caches: bool,
    folder: std::fs::File,
}

impl Settle {
    fn new(plan: &Plan, folder: &std::path::Path) -> Result<Settle> {
        let folder = std::fs::File::open(folder).with_context(|| format!("opening {}", folder.display()))?;
        let pause = if plan.quick { Duration::ZERO } else { SETTLE };
        Ok(Settle { pause, drop_caches: plan.drop_caches, folder })
    }

    fn wait(&mut self) -> Result<()> {
        interrupt::check()?;
        let began = std::time::Instant::now();
        // SAFETY: syncfs on a descriptor we own.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&self.folder)) } != 0 {
            return Err(std::io::Error::last_os_error()).context("syncfs on the bench folder");
        }
        tracing::debug!("flushed the disk in {:.2} s", began.elapsed().as_secs_f64());
        if self.drop_caches {
            // O_DIRECT already bypasses the guest's page cache; this clears
            // dentries and inodes. Needs root; a refusal turns it off.
            // SAFETY: sync(2) takes no arguments and cannot fail.
            unsafe { libc::sync() };
            if let Err(e) = std::fs::write("/proc/sys/vm/drop_caches", b"3") {
                tracing::warn!("cannot drop caches ({e}); going on without");
                self.drop_caches = false;
            }
        }
        std::thread::sleep(self.pause);
        interrupt::check()
    }
}
