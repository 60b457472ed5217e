//! Master memory per file: the master's resident set before and after
//! many creates over the client protocol.
//!
//! Resident, not virtual: both masters reserve address space up front
//! (hash tables, allocator arenas) that costs nothing until touched. The
//! difference counts what the files' inodes, edges and names made the
//! master touch, allocator slack included, which is what a bigger file
//! system costs in RAM.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::direct::{open_sessions, run_phase};
use super::Phase;

/// Requests in flight per session while filling: memory does not depend
/// on it, and a deep pipeline keeps the fill short on the fsync=1 master.
const FILL_DEPTH: usize = 32;

/// What the fill measured on one master.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Memory {
    pub files: u64,
    pub rss_before: u64,
    pub rss_after: u64,
    pub fill_seconds: f64,
}

impl Memory {
    /// Resident bytes the files added, per file (0 if RSS fell).
    pub fn bytes_per_file(&self) -> f64 {
        if self.files == 0 {
            return 0.0;
        }
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.files as f64
    }

    /// The same, extrapolated to a million files, in MiB.
    pub fn mib_per_million(&self) -> f64 {
        self.bytes_per_file() * 1e6 / (1u64 << 20) as f64
    }
}

/// `VmRSS` of `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&text).with_context(|| format!("no VmRSS in {path}"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib * 1024)
}

/// Creates `files` files (spread over `sessions` sessions, each in its
/// own directory) on the master at `addr`, process `pid`.
pub fn measure(ns: &Path, addr: SocketAddr, pid: u32, sessions: usize, files: usize) -> Result<Memory> {
    let per_session = files.div_ceil(sessions);
    let mut conns = open_sessions(ns, addr, sessions, "rss")?;
    let rss_before = rss_bytes(pid)?;
    crate::interrupt::check()?;
    let rate = run_phase(&mut conns, Phase::Create, per_session, FILL_DEPTH)?;
    let rss_after = rss_bytes(pid)?;
    if rate.ops != (per_session * sessions) as u64 {
        bail!("the fill made {} files, meant {}", rate.ops, per_session * sessions);
    }
    let memory = Memory { files: rate.ops, rss_before, rss_after, fill_seconds: rate.seconds };
    tracing::info!(
        "  rss: {} files in {:.1} s, VmRSS {} -> {} KiB: {:.0} B/file",
        memory.files,
        memory.fill_seconds,
        rss_before >> 10,
        rss_after >> 10,
        memory.bytes_per_file()
    );
    Ok(memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tmfsmaster\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("VmRSS: 12 MB\n"), None, "only kB is understood");
        assert!(rss_bytes(std::process::id()).unwrap() > 0, "this process is resident");
    }

    #[test]
    fn bytes_per_file_and_per_million() {
        let m = Memory { files: 1000, rss_before: 1 << 20, rss_after: (1 << 20) + 200_000, fill_seconds: 1.0 };
        assert_eq!(m.bytes_per_file(), 200.0);
        assert!((m.mib_per_million() - 190.73).abs() < 0.01);
        let shrunk = Memory { rss_after: 0, ..m };
        assert_eq!(shrunk.bytes_per_file(), 0.0);
    }
}
