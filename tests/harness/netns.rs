//! A private network namespace per cluster: `Netns` creates
//! `elkfs-t-<pid>-<n>`, brings its `lo` up and puts private 10.x.y.z/32
//! addresses on that `lo` (the real MooseFS master refuses chunkservers in
//! 127.0.0.0/8). Nothing is routed out of it. Drop kills what still runs
//! inside and deletes it. Namespaces left by a test process that died are
//! swept once per process.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::proc::tool_path;

/// Prefix of every namespace this harness creates.
const PREFIX: &str = "elkfs-t-";

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A network namespace that lives as long as this guard.
pub struct Netns {
    name: String,
    base: [u8; 3],
    addrs: Vec<Ipv4Addr>,
}

impl Netns {
    /// Creates a fresh namespace with `lo` up and one address on it.
    #[allow(clippy::new_without_default)] // creates a namespace: not a default value
    pub fn new() -> Netns {
        SWEEP.call_once(sweep_stale);
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{pid}-{n}");
        // 10.A.B.x: A.B from pid and counter. Each namespace has its own
        // network stack, so a clash between two pids would still be harmless.
        let idx = pid.wrapping_mul(64).wrapping_add(n) & 0xFFFF;
        let base = [10, (idx >> 8) as u8, (idx & 0xFF) as u8];
        ip(&["netns", "add", &name]);
        let mut ns = Netns { name, base, addrs: Vec::new() };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns.add_address();
        ns
    }

    /// The namespace's name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, for `nsenter --net=`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// The first address on the namespace's `lo`.
    pub fn addr(&self) -> Ipv4Addr {
        self.addrs[0]
    }

    /// Every address added so far, the first one first.
    pub fn addrs(&self) -> &[Ipv4Addr] {
        &self.addrs
    }

    /// Adds one more /32 address to the namespace's `lo` and returns it.
    pub fn add_address(&mut self) -> Ipv4Addr {
        let host = u8::try_from(self.addrs.len() + 1).expect("at most 254 addresses per namespace");
        assert!(host < 255, "at most 254 addresses per namespace");
        let addr = Ipv4Addr::new(self.base[0], self.base[1], self.base[2], host);
        ip(&["-n", &self.name, "addr", "add", &format!("{addr}/32"), "dev", "lo"]);
        self.addrs.push(addr);
        addr
    }

    /// Pids of every process whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        ns_pids(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_all_in(&self.name);
        let status = Command::new(tool_path("ip")).args(["netns", "delete", &self.name]).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("[harness] WARNING: `ip netns delete {}` failed: {status:?}", self.name);
        }
    }
}

/// Runs `ip ARGS` and panics with its stderr when it fails.
fn ip(args: &[&str]) {
    let out = Command::new(tool_path("ip")).args(args).output().expect("run `ip`");
    assert!(
        out.status.success(),
        "`ip {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn ns_pids(name: &str) -> Vec<i32> {
    let Ok(out) = Command::new(tool_path("ip")).args(["netns", "pids", name]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// SIGKILLs every process still inside namespace `name` and waits (bounded)
/// until none is left. These are processes this harness started (daemons and
/// their helpers), killed by pid.
fn kill_all_in(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = ns_pids(name);
        if pids.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("[harness] WARNING: processes {pids:?} survive in netns {name}");
            return;
        }
        for pid in pids {
            // SAFETY: plain kill(2) on a pid read from the namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Deletes namespaces of this harness whose creating process is gone (a test
/// binary killed before its guards ran), after killing what runs in them.
fn sweep_stale() {
    let Ok(out) = Command::new(tool_path("ip")).args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("[harness] removing stale netns {name} (its test process {pid} is gone)");
        kill_all_in(name);
        let _ = Command::new(tool_path("ip")).args(["netns", "delete", name]).status();
    }
}
