//! The running cluster as the supervisor sees it: its children in groups,
//! bounded waits that notice a dying daemon or a stop signal, and the
//! orderly stop (mount, chunkservers, metalogger, master: each one after
//! those that depend on it).

use std::fmt;
use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::child::{self, Child};
use super::layout::Layout;
use super::{mount, signals};

/// Lines of a dead daemon's log shown in the error.
const TAIL_LINES: usize = 25;
/// How often a wait checks again.
const POLL: Duration = Duration::from_millis(200);
/// Bound for each group of daemons to stop after SIGTERM; the master
/// writes its metadata on the way out and gets the longest.
const STOP_GRACE: Duration = Duration::from_secs(15);
const MASTER_STOP_GRACE: Duration = Duration::from_secs(60);
/// Bound for the client to end by itself once unmounted.
const MOUNT_EXIT_GRACE: Duration = Duration::from_secs(5);

/// A stop signal came while the cluster was still starting; not a failure.
#[derive(Debug)]
pub struct Interrupted(pub &'static str);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} received", self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Every process of the cluster. Dropping it stops them all.
pub struct Cluster {
    pub layout: Layout,
    pub master: Vec<Child>,
    pub metalogger: Vec<Child>,
    pub chunkservers: Vec<Child>,
    pub mount: Vec<Child>,
    stopped: bool,
}

impl Cluster {
    pub fn new(layout: Layout) -> Cluster {
        Cluster {
            layout,
            master: Vec::new(),
            metalogger: Vec::new(),
            chunkservers: Vec::new(),
            mount: Vec::new(),
            stopped: false,
        }
    }

    fn all(&mut self) -> impl Iterator<Item = &mut Child> {
        self.master.iter_mut().chain(&mut self.metalogger).chain(&mut self.chunkservers).chain(&mut self.mount)
    }

    /// An error naming the first process that has exited, with the end of
    /// its log; none of them is meant to exit while the cluster runs.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for c in self.all() {
            if let Some(status) = c.exited() {
                bail!(
                    "{} (pid {}) {} unexpectedly; the end of its log {}:\n{}",
                    c.name(),
                    c.pid(),
                    child::describe(status),
                    c.log().display(),
                    child::tail(c.log(), TAIL_LINES)
                );
            }
        }
        Ok(())
    }

    /// Polls `check` until it succeeds, within `limit`. Fails early when a
    /// process dies or a stop signal arrives ([`Interrupted`]).
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut() -> Result<T, String>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(signal) = signals::received() {
                return Err(Interrupted(signal).into());
            }
            self.check_alive()?;
            let why = match check() {
                Ok(t) => return Ok(t),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                bail!("{what}: not within {limit:?} ({why}); logs are in {}", self.layout.logs.display());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs until a stop signal (Ok) or a process dies (Err).
    pub fn supervise(&mut self) -> anyhow::Result<&'static str> {
        loop {
            if let Some(signal) = signals::received() {
                return Ok(signal);
            }
            self.check_alive()?;
            std::thread::sleep(POLL);
        }
    }

    /// Unmounts, then stops the daemons in order. Returns one line per
    /// step; a second call does nothing.
    pub fn stop(&mut self) -> Vec<String> {
        if self.stopped {
            return Vec::new();
        }
        self.stopped = true;
        let mut lines = Vec::new();
        if !self.mount.is_empty() {
            let mnt = &self.layout.mountpoint;
            let was_mounted = mount::is_mounted(mnt);
            match mount::unmount(mnt) {
                Ok(None) if was_mounted => lines.push(format!("unmounted {}", mnt.display())),
                Ok(None) => lines.push(format!("{} was no longer mounted", mnt.display())),
                Ok(Some(note)) => lines.push(format!("{}: {note}", mnt.display())),
                Err(e) => lines.push(format!("WARNING: {e}")),
            }
            // The client ends by itself once unmounted.
            let deadline = Instant::now() + MOUNT_EXIT_GRACE;
            while Instant::now() < deadline && self.mount.iter_mut().any(|c| c.exited().is_none()) {
                std::thread::sleep(Duration::from_millis(50));
            }
            lines.extend(child::stop_all(&mut self.mount, STOP_GRACE));
        }
        lines.extend(child::stop_all(&mut self.chunkservers, STOP_GRACE));
        lines.extend(child::stop_all(&mut self.metalogger, STOP_GRACE));
        lines.extend(child::stop_all(&mut self.master, MASTER_STOP_GRACE));
        lines
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for line in self.stop() {
            // Ignored on a closed stderr: the stop above is what matters.
            let _ = writeln!(std::io::stderr(), "elkfs local: {line}");
        }
    }
}
