//! The four metadata phases through a real mfsmount, with std::fs from
//! several threads, each in its own directory of the mount.
//!
//! One op is one system call: `File::create` (open with O_CREAT, then
//! close), `metadata` (stat), `rename`, `remove_file`. The kernel and
//! mfsmount cache attributes and entries for a second by default, so a
//! stat may not reach the master at all: that is what an application sees.

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};

use super::{Phase, Rate};
use crate::stats::Latency;

fn file(dir: &Path, prefix: char, j: usize) -> PathBuf {
    dir.join(format!("{prefix}{j:07}"))
}

/// Makes `threads` directories `m-i` under `mountpoint`.
pub fn make_dirs(mountpoint: &Path, threads: usize) -> Result<Vec<PathBuf>> {
    (0..threads)
        .map(|t| {
            let dir = mountpoint.join(format!("m-{t}"));
            std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
            Ok(dir)
        })
        .collect()
}

fn one(phase: Phase, dir: &Path, j: usize) -> Result<()> {
    match phase {
        Phase::Create => {
            let path = file(dir, 'f', j);
            std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        }
        Phase::Stat => {
            let path = file(dir, 'f', j);
            std::fs::metadata(&path).with_context(|| format!("stat {}", path.display()))?;
        }
        Phase::Rename => {
            let (from, to) = (file(dir, 'f', j), file(dir, 'r', j));
            std::fs::rename(&from, &to).with_context(|| format!("rename {}", from.display()))?;
        }
        Phase::Unlink => {
            let path = file(dir, 'r', j);
            std::fs::remove_file(&path).with_context(|| format!("unlink {}", path.display()))?;
        }
    }
    Ok(())
}

/// Runs `phase` on `files` files in each of `dirs`, one thread per dir.
pub fn run_phase(dirs: &[PathBuf], phase: Phase, files: usize) -> Result<Rate> {
    let barrier = Barrier::new(dirs.len());
    let latencies = dirs.iter().map(|_| Latency::new()).collect::<Result<Vec<_>>>()?;
    let outcomes: Vec<Result<(Instant, Instant, Latency)>> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .iter()
            .zip(latencies)
            .map(|(dir, mut latency)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for j in 0..files {
                        let at = Instant::now();
                        one(phase, dir, j)?;
                        latency.record(at.elapsed());
                    }
                    Ok((start, Instant::now(), latency))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a mount thread panicked")))).collect()
    });
    Rate::combine(outcomes)
}

/// Every phase in order, `files` files per directory.
pub fn run_all(dirs: &[PathBuf], files: usize, master: u32) -> Result<Vec<(Phase, Rate)>> {
    let mut out = Vec::new();
    for phase in Phase::ALL {
        crate::interrupt::check()?;
        let rate = super::with_master_cpu(master, || run_phase(dirs, phase, files))?;
        tracing::info!(
            "  mount {}: {} ops in {:.2} s, {:.0} ops/s, p50 {:.0} us, p99 {:.0} us",
            phase.key(),
            rate.ops,
            rate.seconds,
            rate.ops_s(),
            rate.p50_us,
            rate.p99_us
        );
        out.push((phase, rate));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_run_on_a_local_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = make_dirs(tmp.path(), 2).unwrap();
        let rates = run_all(&dirs, 5, std::process::id()).unwrap();
        assert_eq!(rates.len(), 4);
        for (phase, rate) in rates {
            assert_eq!(rate.ops, 10, "{phase:?}");
            assert!(rate.ops_s() > 0.0, "{phase:?}");
        }
        for dir in dirs {
            assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0, "UNLINK removed every file");
        }
    }
}
