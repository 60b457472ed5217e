//! `elkfs local` as a user runs it: the built binary starts a whole cluster
//! in a temp folder and mounts it; files written through the mount read
//! back byte-identical; SIGINT stops it with status 0, leaving no mount and
//! no process behind; a second start on the same folder brings the files
//! back. A daemon that dies is named, with its log, and the command fails
//! without leaving anything behind. Needs root (FUSE) and the MooseFS 3.0
//! client (mfsmount).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use elkfs_harness::{data, require_root, require_tools};

/// Printed by `elkfs local` once mounted (`local::READY`).
const READY: &str = "elkfs local: ready";
/// Bound for the cluster to come up (first start creates the file system).
const START_LIMIT: Duration = Duration::from_secs(180);
/// Bound for the orderly stop after SIGINT.
const STOP_LIMIT: Duration = Duration::from_secs(120);
const MIB: u64 = 1 << 20;

/// Files written in the first run: name, length, pattern seed.
const FILES: [(&str, u64, u64); 4] =
    [("empty", 0, 1), ("one-byte", 1, 2), ("dir/small", 70_000, 3), ("dir/hundred-mib", 100 * MIB, 4)];

/// One run of `elkfs local`; dropping it interrupts and, if need be,
/// kills it and lazily unmounts what it left.
struct Local {
    dir: PathBuf,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Local {
    fn start(dir: &Path) -> Local {
        Local::start_with(dir, &[], Stdio::inherit())
    }

    fn start_with(dir: &Path, args: &[&str], stderr: Stdio) -> Local {
        let mut child = Command::new(env!("CARGO_BIN_EXE_elkfs"))
            .arg("local")
            .arg("--dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start elkfs local");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("[elkfs local] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut l = Local { dir: dir.to_path_buf(), child, lines, seen: Vec::new() };
        l.wait_ready();
        l
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.min(Duration::from_millis(500))) {
                Ok(line) => {
                    let ready = line.starts_with(READY);
                    self.seen.push(line);
                    if ready {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("elkfs local ended before it was ready: {:?}", self.child.wait());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("elkfs local exited ({status}) before it was ready");
            }
            assert!(Instant::now() < deadline, "elkfs local not ready within {START_LIMIT:?}");
        }
    }

    fn mnt(&self) -> PathBuf {
        self.dir.join("mnt")
    }

    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("pid fits")
    }

    /// SIGINT, then the bounded wait for its exit.
    fn interrupt(&mut self) -> ExitStatus {
        // SAFETY: plain system call on our unreaped child.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGINT) }, 0);
        let deadline = Instant::now() + STOP_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for elkfs local") {
                return status;
            }
            assert!(Instant::now() < deadline, "elkfs local still running {STOP_LIMIT:?} after SIGINT");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: plain system call on our unreaped child.
            unsafe { libc::kill(self.pid(), libc::SIGINT) };
            let deadline = Instant::now() + STOP_LIMIT;
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            // Its children die with it (PR_SET_PDEATHSIG).
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for m in mounts_under(&self.dir) {
            eprintln!("[local test] lazy unmount of leftover {m}");
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

/// Mount points at or below `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let dir = dir.to_string_lossy().replace(' ', "\\040");
    info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&dir)).map(str::to_string).collect()
}

/// Processes whose command line names `dir` (every daemon's config and the
/// mount point are under it).
fn processes_using(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            found.push(format!("{name}: {cmd}"));
        }
    }
    found
}

/// Interrupts a run and checks it left nothing behind.
fn stop_cleanly(mut run: Local) {
    let dir = run.dir.clone();
    assert!(!processes_using(&dir).is_empty(), "the cluster's processes were not found: the check would be blind");
    let status = run.interrupt();
    assert!(status.success(), "elkfs local exited with {status} after SIGINT");
    assert_eq!(mounts_under(&dir), Vec::<String>::new(), "mounts left behind");
    assert_eq!(processes_using(&dir), Vec::<String>::new(), "processes left behind");
}

fn check_files(mnt: &Path) {
    for (name, len, seed) in FILES {
        let (got_len, sha) = data::sha256_file(&mnt.join(name));
        assert_eq!((got_len, sha), (len, data::pattern_sha256(len, seed)), "{name} read back wrong");
    }
}

#[test]
fn local_cluster_starts_serves_stops_and_restarts() {
    require_root();
    require_tools(&["mfsmount", "fusermount3", "umount"]);
    let base = std::env::var_os("ELKFS_TEST_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let tmp = tempfile::Builder::new().prefix("elkfs-local-").tempdir_in(&base).expect("temp dir");
    let dir = tmp.path().join("cluster");

    let run = Local::start(&dir);
    assert!(run.seen.iter().any(|l| l.contains("chunkserver-3")), "the summary lists the chunkservers");
    let mnt = run.mnt();
    std::fs::create_dir(mnt.join("dir")).expect("mkdir in the mount");
    for (name, len, seed) in FILES {
        data::write_pattern_file(&mnt.join(name), len, seed);
    }
    check_files(&mnt);
    stop_cleanly(run);

    let again = Local::start(&dir);
    check_files(&again.mnt());
    stop_cleanly(again);
}

#[test]
fn a_dying_chunkserver_is_named_and_everything_stops() {
    require_root();
    let base = std::env::var_os("ELKFS_TEST_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let tmp = tempfile::Builder::new().prefix("elkfs-local-").tempdir_in(&base).expect("temp dir");
    let dir = tmp.path().join("cluster");
    // Away from the defaults the other test in this file uses at the same time.
    let args = ["--no-mount", "--chunkservers", "2", "--port-base", "29419"];
    let mut run = Local::start_with(&dir, &args, Stdio::piped());
    let mut stderr = run.child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let victim = processes_using(&dir)
        .into_iter()
        .find(|p| p.contains("chunkserver-2/mfschunkserver.cfg"))
        .expect("chunkserver-2 runs");
    let pid: libc::pid_t = victim.split(':').next().and_then(|p| p.parse().ok()).expect("pid");
    // SAFETY: plain system call; the pid was just read from /proc.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let deadline = Instant::now() + STOP_LIMIT;
    let status = loop {
        if let Some(status) = run.child.try_wait().expect("wait for elkfs local") {
            break status;
        }
        assert!(Instant::now() < deadline, "elkfs local still running {STOP_LIMIT:?} after a daemon died");
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = reader.join().expect("stderr reader");
    assert!(!status.success(), "elkfs local exited 0 after a daemon died; stderr:\n{err}");
    assert!(err.contains("chunkserver-2") && err.contains("killed by signal 9"), "stderr:\n{err}");
    assert!(err.contains("logs/chunkserver-2.log:"), "its log is named; stderr:\n{err}");
    assert_eq!(processes_using(&dir), Vec::<String>::new(), "processes left behind");
}

#[test]
fn a_sigkilled_supervisor_leaves_nothing() {
    require_root();
    require_tools(&["mfsmount", "fusermount3", "umount"]);
    let base = std::env::var_os("ELKFS_TEST_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let tmp = tempfile::Builder::new().prefix("elkfs-local-").tempdir_in(&base).expect("temp dir");
    let dir = tmp.path().join("cluster");
    let args = ["--chunkservers", "1", "--port-base", "39419"];
    let mut run = Local::start_with(&dir, &args, Stdio::inherit());
    std::fs::write(run.mnt().join("f"), b"x").expect("write through the mount");
    assert_eq!(mounts_under(&dir).len(), 1, "mounted");
    assert!(processes_using(&dir).len() >= 4, "master, metalogger, chunkserver, mount run");
    run.child.kill().expect("SIGKILL elkfs local");
    run.child.wait().expect("reap elkfs local");
    // The children get SIGTERM from the kernel and stop by themselves.
    let deadline = Instant::now() + STOP_LIMIT;
    while !(processes_using(&dir).is_empty() && mounts_under(&dir).is_empty()) {
        assert!(
            Instant::now() < deadline,
            "left behind {STOP_LIMIT:?} after SIGKILL: {:?} {:?}",
            processes_using(&dir),
            mounts_under(&dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
