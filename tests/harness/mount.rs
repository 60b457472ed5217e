//! The mount guard: a FUSE mount of the cluster (the real `mfsmount` or
//! `elkfs mount`) started in the cluster's namespace with `nsenter --net`
//! only, so the mount is visible to the test process. Drop unmounts
//! (bounded: `fusermount3 -u`, then `umount -l`) and stops the client.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc::{tool_path, wait_until, Daemon, Spec};

/// Which client mounts the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientKind {
    /// MooseFS 3.0's `mfsmount -f`.
    #[default]
    Real,
    /// `elkfs mount` (always in the foreground).
    Elkfs,
}

/// A mounted client.
pub struct Mount {
    mountpoint: PathBuf,
    daemon: Daemon,
    client: ClientKind,
}

impl Mount {
    /// Mounts `master:port` on `mountpoint` (created when missing) and waits
    /// until the mount answers. `options` are extra `-o` options.
    /// `auto_unmount` makes the kernel mount go away even when mfsmount is
    /// SIGKILLed (test process killed), through a fusermount3 helper.
    pub fn start(netns: &Path, master: &str, port: u16, mountpoint: &Path, options: &[String], log: &Path) -> Mount {
        Mount::start_client(ClientKind::Real, netns, master, port, mountpoint, options, log)
    }

    /// [`Mount::start`] with the client to run.
    pub fn start_client(
        client: ClientKind,
        netns: &Path,
        master: &str,
        port: u16,
        mountpoint: &Path,
        options: &[String],
        log: &Path,
    ) -> Mount {
        std::fs::create_dir_all(mountpoint).unwrap_or_else(|e| panic!("mkdir {}: {e}", mountpoint.display()));
        let mut opts = format!("mfsmaster={master},mfsport={port},auto_unmount");
        for o in options {
            opts.push(',');
            opts.push_str(o);
        }
        let (program, args) = match client {
            ClientKind::Real => (tool_path("mfsmount"), vec!["-f".into(), "-o".into(), opts.into(), mountpoint.into()]),
            ClientKind::Elkfs => {
                (crate::elkfs_binary(), vec!["mount".into(), "-o".into(), opts.into(), mountpoint.into()])
            }
        };
        let spec = Spec { name: "mount".into(), program, args, log: log.to_path_buf(), netns: netns.to_path_buf() };
        let mut m = Mount { mountpoint: mountpoint.to_path_buf(), daemon: Daemon::spawn(spec), client };
        m.wait_ready(Duration::from_secs(30));
        m
    }

    fn wait_ready(&mut self, limit: Duration) {
        let what = format!("{:?} mount on {}", self.client, self.mountpoint.display());
        let mnt = self.mountpoint.clone();
        let client = self.client;
        wait_until(&what, limit, || {
            if !self.daemon.is_running() {
                panic!(
                    "the client exited ({:?}) before mounting; its log:\n{}",
                    self.daemon.exit_status(),
                    crate::proc::tail(self.daemon.log(), 40)
                );
            }
            if !is_mounted(&mnt) {
                return Err("not in /proc/self/mountinfo".into());
            }
            // mfsmount's master info file exists only once the session is
            // up; elkfs mount registers before it mounts.
            let probe = if client == ClientKind::Real { mnt.join(".masterinfo") } else { mnt.clone() };
            stat_bounded(&probe, Duration::from_secs(5)).map(|_| ())
        });
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// The client process.
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// Unmounts (bounded) and stops mfsmount. Returns false when the mount
    /// could not be removed.
    pub fn unmount(&mut self) -> bool {
        if is_mounted(&self.mountpoint) {
            let mnt = self.mountpoint.as_os_str();
            let fusermount = [OsStr::new("-u"), mnt];
            if !bounded(&tool_path("fusermount3"), &fusermount) && is_mounted(&self.mountpoint) {
                eprintln!("[harness] fusermount3 -u {} failed: lazy unmount", self.mountpoint.display());
                bounded(&tool_path("umount"), &[OsStr::new("-l"), mnt]);
            }
        }
        // mfsmount ends by itself once unmounted; stop() bounds the wait.
        self.daemon.wait_exit(Duration::from_secs(5));
        self.daemon.stop();
        !is_mounted(&self.mountpoint)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if !self.unmount() {
            eprintln!("[harness] WARNING: {} is still mounted", self.mountpoint.display());
        }
    }
}

/// `stat` on a FUSE path from a helper thread, so a hung file system fails
/// the wait instead of blocking the test forever.
pub fn stat_bounded(path: &Path, limit: Duration) -> Result<std::fs::Metadata, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::metadata(&p));
    });
    match rx.recv_timeout(limit) {
        Ok(r) => r.map_err(|e| format!("stat {}: {e}", path.display())),
        Err(_) => Err(format!("stat {} hung for {limit:?}", path.display())),
    }
}

/// Runs a command here with a 20 s bound; true when it exited 0.
fn bounded(prog: &Path, args: &[&OsStr]) -> bool {
    let status = Command::new(tool_path("timeout")).arg("-k").arg("5").arg("20").arg(prog).args(args).status();
    matches!(status, Ok(s) if s.success())
}

/// True when `path` is a mount point in this process's mount namespace.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = escape(&path.to_string_lossy());
    info.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn escape(p: &str) -> String {
    p.replace('\\', "\\134").replace(' ', "\\040").replace('\t', "\\011").replace('\n', "\\012")
}
