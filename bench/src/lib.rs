//! elkfs benchmark harness.
//!
//! `elkfs bench engine` runs the chunk engine and `fio` on the same disk
//! with the same shapes ([`scenario`]), alternating (elkfs, fio) round after
//! round ([`rounds`]), and prints MiB/s or IOPS, p50/p99 latency and CPU
//! per GiB side by side with the median elkfs/fio ratio ([`report`]). With
//! `--json` the same figures end the output as one JSON object on the last
//! line, for scripts and tests.
//!
//! Work happens in `DIR/elkfs` (the engine's data folder) and `DIR/fio`,
//! made fresh and removed on the way out, on errors and on Ctrl-C too
//! ([`workdir`], [`interrupt`]).
//!
//! `elkfs bench cluster` ([`cluster`]) runs the same fio jobs through a
//! real `mfsmount` and `mfsmaster` with three real `mfschunkserver`s, then
//! with three elkfs chunkservers, plus the bench's own client speaking the
//! data protocol straight to one chunkserver of each kind, beside the
//! engine's own figures.
//!
//! `elkfs bench meta` ([`meta`]) measures the master alone: creates,
//! stats, renames and unlinks per second over the client protocol and
//! through mfsmount, and resident bytes per file, for the real
//! `mfsmaster` and `elkfs master` with and without changelog fsync.
//!
//! `elkfs bench mount` ([`mount`]) measures the client: the same fio jobs
//! and a small-file run through the real `mfsmount` and `elkfs mount`, on a
//! MooseFS stack and on an elkfs stack, and the all-elkfs stack against
//! the all-MooseFS one.

pub mod cluster;
pub mod engine_run;
pub mod fio;
pub mod hugepages;
pub mod interrupt;
pub mod meta;
pub mod mount;
pub mod plan;
pub mod report;
pub mod rounds;
pub mod scenario;
pub mod stats;
pub mod workdir;

use std::io::Write;

use anyhow::{Context, Result};

pub use cluster::{run_cluster_bench, ClusterArgs, ClusterReport};
pub use meta::{run_meta_bench, MetaArgs, MetaReport};
pub use mount::{run_mount_bench, MountArgs, MountReport};
pub use plan::{EngineArgs, FioMemory, Plan};
pub use report::Report;

/// Runs `elkfs bench engine` and prints to stdout.
pub fn run_engine_bench(args: &EngineArgs) -> Result<Report> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run(args, &mut out)
}

/// Runs the engine bench, printing the table (and with `--json` the JSON
/// line, last) to `out`.
pub fn run(args: &EngineArgs, out: &mut dyn Write) -> Result<Report> {
    let plan = Plan::from_args(args)?;
    let fio_version = fio::check_installed(&plan.fio)?;
    // Declared first so it is dropped last: the engine and the runtime
    // must let go of the files before the folders are removed.
    let dirs = workdir::WorkDirs::create(&plan.dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.workers)
        .thread_name("elkfs-bench")
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    interrupt::install(runtime.handle());
    // Held to the end; dropping it gives the huge pages back.
    let (_huge_pages, memory) = fio_memory(&plan);
    let mut setting = report::Setting::probe(fio_version, memory);
    let bench = engine_run::EngineBench::start(&dirs.elkfs, &plan)?;
    tracing::info!(
        "bench: {} chunks of {} MiB in {}, {} round(s), {} s random runs, engine on {} worker(s)",
        plan.chunks,
        plan.chunk_bytes() >> 20,
        plan.dir.display(),
        plan.rounds,
        plan.seconds,
        plan.workers
    );
    let crc_us = stats::crc_us_per_block();
    let rounds = rounds::run_all(&plan, &runtime, &bench, &dirs, memory)?;
    setting.finish();
    let report = Report::new(&plan, &rounds, crc_us, setting);
    report.print_table(out)?;
    if plan.json {
        writeln!(out, "{}", report.json())?;
    }
    out.flush()?;
    drop(bench);
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    drop(dirs);
    Ok(report)
}

/// Where fio's buffers go, and the huge-page reservation that allows it.
fn fio_memory(plan: &Plan) -> (Option<hugepages::HugePages>, fio::Memory) {
    if plan.fio_memory == FioMemory::Malloc {
        return (None, fio::Memory::Malloc);
    }
    match hugepages::HugePages::reserve(hugepages::PAGES_NEEDED) {
        Ok(guard) => (Some(guard), fio::Memory::HugePages),
        Err(why) => {
            tracing::warn!("fio falls back to malloc'd buffers: {why}");
            (None, fio::Memory::Malloc)
        }
    }
}

/// The tools every cluster bench needs: the harness's network namespace
/// and the MooseFS master, CLI and mount.
const CLUSTER_TOOLS: [&str; 7] = ["ip", "nsenter", "timeout", "mfsmaster", "mfscli", "mfsmount", "fusermount3"];

/// Root (`why_root` says what for), the MooseFS tools (those of every
/// cluster bench plus `extra`) and the elkfs binary, checked before `bench`
/// starts anything; the log names the binary beside `runs`.
pub(crate) fn preflight(bench: &str, why_root: &str, extra: &[&str], runs: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("elkfs bench {bench} needs root ({why_root})");
    }
    harnessed("checking tools", || {
        let tools: Vec<&str> = CLUSTER_TOOLS.iter().chain(extra).copied().collect();
        elkfs_harness::require_tools(&tools);
        tracing::info!("{runs}: {}", elkfs_harness::elkfs_binary().display());
        Ok(())
    })
}

/// Runs `f`, turning a harness panic (the harness fails loudly by
/// panicking, after cleaning up what it started) into an error, so a bench
/// reports a broken cluster instead of aborting.
pub(crate) fn harnessed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result.with_context(|| what.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(anyhow::anyhow!("{what}: {message}"))
        }
    }
}
