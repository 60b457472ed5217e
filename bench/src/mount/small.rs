//! The small-file run of `elkfs bench mount`: many 4 KiB files through a
//! mount, from several threads, each in its own directory (so the threads
//! meet only in the client and the master, not on one directory's lock).
//!
//! Four phases, each timed on its own, one op = one file:
//! - create: `open(O_CREAT|O_EXCL)`, write 4 KiB, `close` — the close is
//!   checked, because both clients send the data to the chunkservers when
//!   the file is flushed, and a lost write only shows there;
//! - stat: `stat`, length checked;
//! - read: `open`, read to the end, `close`, contents checked byte for
//!   byte (every file has its own pattern, so a mix-up shows too);
//! - delete: `unlink`.
//!
//! The caller remounts between create and stat, so stat and read find
//! cold client caches: what an application opening yesterday's files
//! sees, not a re-read of what it just wrote. Latencies go into one
//! HdrHistogram per thread ([`Latency`]), merged per phase.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::interrupt;
use crate::meta::Rate;
use crate::stats::{process_cpu, Figures, Latency};

/// Size of every small file.
pub const FILE_BYTES: usize = 4096;

/// The phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Create,
    Stat,
    Read,
    Delete,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Create, Phase::Stat, Phase::Read, Phase::Delete];

    pub fn key(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Stat => "stat",
            Phase::Read => "read",
            Phase::Delete => "delete",
        }
    }

    /// File data the phase moves per file (what its MiB/s and CPU-s/GiB
    /// count).
    fn bytes_per_file(self) -> u64 {
        match self {
            Phase::Create | Phase::Read => FILE_BYTES as u64,
            Phase::Stat | Phase::Delete => 0,
        }
    }
}

/// The thread directories `root/t<i>`.
pub fn dirs(root: &Path, threads: usize) -> Vec<PathBuf> {
    (0..threads).map(|t| root.join(format!("t{t}"))).collect()
}

/// Makes `root` and its thread directories (before the timed phases).
pub fn make_dirs(root: &Path, threads: usize) -> Result<Vec<PathBuf>> {
    std::fs::create_dir(root).with_context(|| format!("mkdir {}", root.display()))?;
    let dirs = dirs(root, threads);
    for dir in &dirs {
        std::fs::create_dir(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    Ok(dirs)
}

/// How many of `files` each of `threads` threads gets: as even as can be.
pub fn split(files: usize, threads: usize) -> Vec<usize> {
    let threads = threads.max(1);
    (0..threads).map(|t| files / threads + usize::from(t < files % threads)).collect()
}

fn file(dir: &Path, j: usize) -> PathBuf {
    dir.join(format!("f{j:07}"))
}

/// The contents of file `j` of thread `t`: splitmix64 words seeded by both.
pub fn fill(buf: &mut [u8; FILE_BYTES], t: usize, j: usize) {
    let mut state = ((t as u64) << 40) ^ (j as u64) ^ 0x9E37_79B9_7F4A_7C15;
    for word in buf.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
}

/// Buffers one thread reuses for every file.
struct Scratch {
    want: [u8; FILE_BYTES],
    got: Vec<u8>,
}

/// One op of `phase` on file `j` of thread `t`.
fn one(phase: Phase, dir: &Path, t: usize, j: usize, s: &mut Scratch) -> Result<()> {
    let path = file(dir, j);
    match phase {
        Phase::Create => {
            fill(&mut s.want, t, j);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
                .with_context(|| format!("create {}", path.display()))?;
            f.write_all(&s.want).with_context(|| format!("write {}", path.display()))?;
            // Dropping a File ignores close's error; the data's fate is
            // decided at this flush, so it is checked.
            let fd = f.into_raw_fd();
            // SAFETY: `fd` came out of a File just now and nothing else owns it.
            if unsafe { libc::close(fd) } != 0 {
                return Err(std::io::Error::last_os_error()).with_context(|| format!("close {}", path.display()));
            }
        }
        Phase::Stat => {
            let meta = std::fs::metadata(&path).with_context(|| format!("stat {}", path.display()))?;
            if !meta.is_file() || meta.len() != FILE_BYTES as u64 {
                bail!(
                    "stat {}: a {:?} of {} bytes, not a file of {FILE_BYTES}",
                    path.display(),
                    meta.file_type(),
                    meta.len()
                );
            }
        }
        Phase::Read => {
            let mut f = std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
            s.got.clear();
            f.read_to_end(&mut s.got).with_context(|| format!("read {}", path.display()))?;
            drop(f);
            fill(&mut s.want, t, j);
            if s.got[..] != s.want[..] {
                let at = s.got.iter().zip(s.want.iter()).position(|(a, b)| a != b).unwrap_or(s.got.len());
                bail!("read {}: {} bytes, first difference at byte {at}", path.display(), s.got.len());
            }
        }
        Phase::Delete => std::fs::remove_file(&path).with_context(|| format!("unlink {}", path.display()))?,
    }
    Ok(())
}

/// Runs `phase` over `files` files spread on `dirs`, one thread per dir,
/// all starting together. Figures: ops = files, bytes = the file data
/// moved, p50/p99 per file, `cpu_s` = this process's CPU (the bench's
/// threads are the client here, as fio is in the fio jobs).
pub fn run_phase(dirs: &[PathBuf], phase: Phase, files: usize) -> Result<Figures> {
    let shares = split(files, dirs.len());
    let barrier = Barrier::new(dirs.len());
    let latencies = dirs.iter().map(|_| Latency::new()).collect::<Result<Vec<_>>>()?;
    let cpu_before = process_cpu()?;
    let outcomes: Vec<Result<(Instant, Instant, Latency)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .iter()
            .zip(shares)
            .zip(latencies)
            .enumerate()
            .map(|(t, ((dir, n), mut latency))| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut scratch = Scratch { want: [0; FILE_BYTES], got: Vec::with_capacity(2 * FILE_BYTES) };
                    barrier.wait();
                    let start = Instant::now();
                    for j in 0..n {
                        interrupt::check()?;
                        let at = Instant::now();
                        one(phase, dir, t, j, &mut scratch)?;
                        latency.record(at.elapsed());
                    }
                    Ok((start, Instant::now(), latency))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a small-file thread panicked")))).collect()
    });
    let cpu = process_cpu()?.since(&cpu_before);
    let rate = Rate::combine(outcomes).with_context(|| format!("small files, {}", phase.key()))?;
    Ok(Figures {
        bytes: rate.ops * phase.bytes_per_file(),
        ops: rate.ops,
        seconds: rate.seconds,
        p50_us: rate.p50_us,
        p99_us: rate.p99_us,
        cpu_s: cpu.total_s(),
        cpu_sys_s: cpu.sys_s,
        ..Figures::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_file() {
        assert_eq!(split(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(split(8, 4), vec![2; 4]);
        assert_eq!(split(5, 1), vec![5]);
        assert_eq!(split(10_000, 3).iter().sum::<usize>(), 10_000);
    }

    #[test]
    fn every_file_has_its_own_contents() {
        let (mut a, mut b, mut c) = ([0; FILE_BYTES], [0; FILE_BYTES], [0; FILE_BYTES]);
        fill(&mut a, 0, 1);
        fill(&mut b, 1, 0);
        fill(&mut c, 0, 1);
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert!(a.iter().filter(|&&x| x == 0).count() < 100, "not mostly zeros");
    }

    #[test]
    fn phases_run_on_a_local_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = make_dirs(&tmp.path().join("small"), 3).unwrap();
        for phase in Phase::ALL {
            let f = run_phase(&dirs, phase, 10).unwrap();
            assert_eq!(f.ops, 10, "{phase:?}");
            assert_eq!(f.bytes, 10 * phase.bytes_per_file(), "{phase:?}");
            assert!(f.seconds > 0.0 && f.iops() > 0.0 && f.p99_us >= f.p50_us, "{phase:?} {f:?}");
            if phase == Phase::Create {
                assert_eq!(std::fs::read_dir(&dirs[0]).unwrap().count(), 4, "thread 0 takes the odd file");
            }
        }
        for dir in &dirs {
            assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0, "delete removed every file");
        }
    }

    #[test]
    fn wrong_contents_and_missing_files_fail_the_phase() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = make_dirs(&tmp.path().join("small"), 2).unwrap();
        run_phase(&dirs, Phase::Create, 4).unwrap();
        std::fs::write(file(&dirs[1], 1), vec![7u8; FILE_BYTES]).unwrap();
        let err = format!("{:#}", run_phase(&dirs, Phase::Read, 4).unwrap_err());
        assert!(err.contains("first difference at byte 0"), "{err}");
        std::fs::write(file(&dirs[0], 0), b"short").unwrap();
        let err = format!("{:#}", run_phase(&dirs, Phase::Stat, 4).unwrap_err());
        assert!(err.contains("5 bytes"), "{err}");
        assert!(run_phase(&dirs, Phase::Create, 4).is_err(), "create refuses existing files");
        std::fs::remove_file(file(&dirs[0], 1)).unwrap();
        assert!(run_phase(&dirs, Phase::Delete, 4).is_err());
    }
}
