//! The processes of a local cluster: each one a child of `elkfs local`, in
//! its own process group (a Ctrl-C on the terminal reaches only the
//! supervisor, which then stops them in order), logging to its own file,
//! and told by the kernel to stop when the supervisor dies
//! (`PR_SET_PDEATHSIG`), so even a SIGKILLed `elkfs local` leaves nothing
//! running.
//!
//! The death signal fires when the *thread* that spawned the child ends;
//! every child is spawned from the main thread, which lives as long as the
//! process.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often a wait looks at its children again.
const POLL: Duration = Duration::from_millis(50);
/// Bytes read from the end of a log for its tail.
const TAIL_BYTES: u64 = 64 << 10;

/// One running (or exited) process of the cluster.
pub struct Child {
    name: String,
    log: PathBuf,
    proc: std::process::Child,
    status: Option<ExitStatus>,
}

impl Child {
    /// Starts `program args` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[&OsStr], log: &Path) -> io::Result<Child> {
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", log.display())))?;
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        writeln!(out, "----- elkfs local starts {name} at unix time {secs} -----")?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls; it allocates nothing.
        unsafe {
            let parent = libc::getpid();
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The supervisor may have died before the prctl took effect.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let proc = cmd.spawn().map_err(|e| io::Error::new(e.kind(), format!("start {}: {e}", program.display())))?;
        Ok(Child { name: name.to_string(), log: log.to_path_buf(), proc, status: None })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.proc.id()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its exit status once it has exited (reaped here, remembered).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            // An error means it was already reaped, which only this type does.
            self.status = self.proc.try_wait().ok().flatten();
        }
        self.status
    }

    fn signal(&mut self, signo: libc::c_int) {
        if self.exited().is_none() {
            let pid = libc::pid_t::try_from(self.pid()).expect("Linux pids fit in pid_t");
            // SAFETY: plain system call; the pid is our unreaped child, so it
            // cannot have been reused by another process.
            unsafe { libc::kill(pid, signo) };
        }
    }
}

/// How a stopped process ended, for the final report.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(0), _) => "exited cleanly".into(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signo)) => format!("killed by signal {signo}"),
        (None, None) => format!("ended ({status})"),
    }
}

/// SIGTERM to every child still running, then a wait of at most `grace`,
/// then SIGKILL for the rest. Returns one line per child saying how it
/// ended.
pub fn stop_all(children: &mut [Child], grace: Duration) -> Vec<String> {
    for c in children.iter_mut() {
        c.signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && children.iter_mut().any(|c| c.exited().is_none()) {
        std::thread::sleep(POLL);
    }
    let mut lines = Vec::new();
    for c in children.iter_mut() {
        let killed = c.exited().is_none();
        if killed {
            c.signal(libc::SIGKILL);
            c.status = c.proc.wait().ok();
        }
        let how = match (killed, c.status) {
            (true, _) => format!("did not stop within {grace:?}: killed"),
            (false, Some(s)) => describe(s),
            (false, None) => "state unknown".into(),
        };
        lines.push(format!("{} (pid {}): {how}", c.name, c.pid()));
    }
    lines
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let read = || -> io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_all_terminates_then_kills() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("x.log");
        let sh = Path::new("/bin/sh");
        let polite = Child::spawn("polite", sh, &[OsStr::new("-c"), OsStr::new("echo hello; exec sleep 60")], &log)
            .expect("spawn");
        let stubborn_script = OsStr::new("trap '' TERM; while :; do sleep 0.05; done");
        let stubborn = Child::spawn("stubborn", sh, &[OsStr::new("-c"), stubborn_script], &log).expect("spawn");
        let mut kids = vec![polite, stubborn];
        std::thread::sleep(Duration::from_millis(200));
        let lines = stop_all(&mut kids, Duration::from_millis(500));
        assert!(lines[0].contains("killed by signal 15"), "{lines:?}");
        assert!(lines[1].contains("did not stop"), "{lines:?}");
        assert!(kids.iter_mut().all(|c| c.exited().is_some()));
        let t = tail(&log, 10);
        assert!(t.contains("elkfs local starts polite") && t.contains("hello"), "{t}");
    }

    #[test]
    fn a_child_gets_its_own_process_group() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = Child::spawn("sleep", Path::new("/bin/sleep"), &[OsStr::new("60")], &tmp.path().join("s.log"))
            .expect("spawn");
        let pid = libc::pid_t::try_from(c.pid()).expect("pid");
        // SAFETY: getpgid on our own child.
        assert_eq!(unsafe { libc::getpgid(pid) }, pid);
        stop_all(std::slice::from_mut(&mut c), Duration::from_secs(5));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("l");
        std::fs::write(&p, "a\nb\nc\nd\n").expect("write");
        assert_eq!(tail(&p, 2), "c\nd");
        assert!(tail(&tmp.path().join("none"), 2).starts_with("(cannot read"));
    }
}
