//! Processes: finding tools, running a tool inside a namespace with a time
//! bound, the `Daemon` guard (a daemon started with `nsenter --net`, so its
//! pid is the daemon's own and its FUSE mounts are visible to the test), and
//! the bounded polling helper `wait_until`.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon gets to exit after SIGTERM before it gets SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(20);

/// Absolute path of `tool`, searched in `PATH` and the sbin folders (cargo
/// may run tests with a PATH that lacks them). Panics naming a missing tool.
pub fn tool_path(tool: &str) -> PathBuf {
    find_tool(tool).unwrap_or_else(|| panic!("required tool `{tool}` not found in PATH or /usr/sbin, /sbin"))
}

fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.metadata().map(|m| m.is_file()).unwrap_or(false))
}

/// Panics naming every tool of `tools` that is not installed.
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| find_tool(t).is_none()).collect();
    assert!(
        missing.is_empty(),
        "this test needs these tools, which are not installed: {missing:?} (MooseFS 3.0: apt-get install \
         moosefs-master moosefs-chunkserver moosefs-client moosefs-cli fuse3)"
    );
}

/// Panics unless the test runs as root (namespaces and FUSE mounts need it).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(euid == 0, "this test needs root (network namespaces, FUSE mounts); it runs as uid {euid}");
}

/// Runs `prog args` inside namespace `netns` (None: here), killed after
/// `limit`. Panics when it cannot start or times out; returns its output.
pub fn run_in(netns: Option<&Path>, limit: Duration, prog: &str, args: &[&OsStr]) -> Output {
    let mut cmd = Command::new(tool_path("timeout"));
    cmd.arg("-k").arg("5").arg(format!("{}", limit.as_secs().max(1)));
    if let Some(ns) = netns {
        cmd.arg(tool_path("nsenter")).arg(net_arg(ns)).arg("--");
    }
    cmd.arg(tool_path(prog)).args(args).stdin(Stdio::null());
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    if matches!(out.status.code(), Some(124) | Some(137)) {
        panic!("`{prog} {}` did not finish within {limit:?}", join(args));
    }
    out
}

/// Like `run_in` but panics unless the tool exits 0; returns its stdout.
pub fn run_ok(netns: Option<&Path>, limit: Duration, prog: &str, args: &[&OsStr]) -> String {
    let out = run_in(netns, limit, prog, args);
    assert!(
        out.status.success(),
        "`{prog} {}` failed ({}):\nstdout: {}\nstderr: {}",
        join(args),
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn join(args: &[&OsStr]) -> String {
    args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
}

fn net_arg(ns: &Path) -> OsString {
    let mut arg = OsString::from("--net=");
    arg.push(ns);
    arg
}

/// Polls `probe` every 100 ms until it returns `Ok`, at most `limit`.
/// `Err(state)` describes what was seen; the panic message carries the last
/// one.
pub fn wait_until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(state) if start.elapsed() >= limit => {
                panic!("timed out after {:.1}s waiting for {what}; last seen: {state}", limit.as_secs_f64())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The last `n` lines of a file (empty when it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        // The end is enough: 64 KiB holds far more than 40 lines of a log.
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How to start a daemon again: the program, its arguments, its log and
/// the namespace it runs in.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub log: PathBuf,
    pub netns: PathBuf,
}

/// A daemon running inside a namespace. Drop stops it: SIGTERM, up to
/// `STOP_GRACE`, then SIGKILL.
///
/// The child gets SIGKILL when the thread that spawned it ends
/// (`PR_SET_PDEATHSIG`), so a test process killed mid-run leaves no daemon
/// behind: start and keep daemons on the test's own thread.
pub struct Daemon {
    spec: Spec,
    child: Option<Child>,
    last_exit: Option<ExitStatus>,
}

impl Daemon {
    /// Starts `spec` and waits (bounded) until nsenter has exec'd into it.
    pub fn spawn(spec: Spec) -> Daemon {
        let mut d = Daemon { spec, child: None, last_exit: None };
        d.start();
        d
    }

    /// Starts the daemon again with the same command; its log is appended to.
    /// Panics when it is still running.
    pub fn start(&mut self) {
        assert!(!self.is_running(), "{} is already running", self.spec.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)
            .unwrap_or_else(|e| panic!("open log {}: {e}", self.spec.log.display()));
        let log2 = log.try_clone().expect("clone a log file handle");
        let mut cmd = Command::new(tool_path("nsenter"));
        cmd.arg(net_arg(&self.spec.netns))
            .arg("--")
            .arg(&self.spec.program)
            .args(&self.spec.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", self.spec.name));
        let pid = child.id();
        self.child = Some(child);
        self.last_exit = None;
        // nsenter execs the daemon: wait until the pid is no longer nsenter.
        let name = self.spec.name.clone();
        let log = self.spec.log.clone();
        wait_until(&format!("{name} (pid {pid}) to exec"), Duration::from_secs(10), || {
            if let Some(status) = self.try_exit() {
                panic!("{name} exited right after start ({status}); its log:\n{}", tail(&log, 40));
            }
            match std::fs::read_link(format!("/proc/{pid}/exe")) {
                Ok(exe) if exe.file_name() != Some(OsStr::new("nsenter")) => Ok(()),
                other => Err(format!("exe {other:?}")),
            }
        });
    }

    /// The daemon's pid (nsenter exec'd into it). Panics when not running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_else(|| panic!("{} is not running", self.spec.name))
    }

    /// What the daemon is called in messages (`master`, `cs1`, `mount`...).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Its log file (stdout and stderr).
    pub fn log(&self) -> &Path {
        &self.spec.log
    }

    /// The command it runs, to change before `start()` (e.g. `mfsmaster -a`).
    pub fn spec_mut(&mut self) -> &mut Spec {
        &mut self.spec
    }

    /// True while the process is alive (reaps it once it has exited).
    pub fn is_running(&mut self) -> bool {
        self.try_exit();
        self.child.is_some()
    }

    /// The exit status of the last run, once it has ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.try_exit();
        self.last_exit
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                self.last_exit = Some(status);
                Some(status)
            }
            _ => None,
        }
    }

    /// Sends `sig` to the daemon if it is running.
    pub fn signal(&mut self, sig: i32) {
        if self.is_running() {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(self.pid() as i32, sig) };
        }
    }

    /// SIGKILL (fault injection), reaped before returning.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(Duration::from_secs(10));
    }

    /// SIGTERM, bounded wait, then SIGKILL. Returns how it ended.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        self.wait_exit(STOP_GRACE);
        self.last_exit
    }

    /// Stops the daemon (SIGTERM) and starts it again with the same command.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// Waits up to `limit` for the daemon to exit, then SIGKILLs it.
    pub fn wait_exit(&mut self, limit: Duration) {
        let start = Instant::now();
        while self.is_running() {
            if start.elapsed() >= limit {
                eprintln!("[harness] {} (pid {}) still running after {limit:?}: SIGKILL", self.spec.name, self.pid());
                // SAFETY: kill(2) on our own child, not yet reaped.
                unsafe { libc::kill(self.pid() as i32, libc::SIGKILL) };
                if let Some(child) = self.child.as_mut() {
                    self.last_exit = child.wait().ok();
                }
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True when the daemon listens on TCP `port` (read from its own
    /// `/proc/PID/net/tcp`, which shows its namespace's sockets).
    pub fn listens_on(&self, port: u16) -> bool {
        let Ok(table) = std::fs::read_to_string(format!("/proc/{}/net/tcp", self.pid())) else {
            return false;
        };
        table.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port =
                cols.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && cols.get(3) == Some(&"0A")
        })
    }

    /// Waits until the daemon listens on `port`; panics (with its log) when
    /// it exits first or `limit` passes.
    pub fn wait_listening(&mut self, port: u16, limit: Duration) {
        let what = format!("{} to listen on port {port}", self.spec.name);
        wait_until(&what, limit, || {
            if !self.is_running() {
                panic!(
                    "{} exited ({:?}) before listening; its log:\n{}",
                    self.spec.name,
                    self.last_exit,
                    tail(&self.spec.log, 40)
                );
            }
            if self.listens_on(port) {
                Ok(())
            } else {
                Err("not listening".into())
            }
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
