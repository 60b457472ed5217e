//! The mount step: which FUSE client to use, mounting, waiting until the
//! file system answers, unmounting.
//!
//! elkfs's own client (`elkfs mount`, a later issue) is preferred as soon
//! as this binary has it (probed at run time with `elkfs mount --help`);
//! until then the real `mfsmount`, which accepts a master on loopback. The
//! client always runs in the foreground as a child of `elkfs local`, with
//! `auto_unmount` (both clients take it), so the kernel mount goes away
//! even when the client is killed.
//!
//! Everything that can be missing on a fresh machine (`/dev/fuse`, the
//! client, `fusermount3` for a user who is not root) is checked before the
//! cluster starts, and the error says what to install.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::child::Child;

/// What to install when no client can mount (Debian and Ubuntu package names).
pub const INSTALL_HINT: &str = "apt-get install moosefs-client fuse3";
/// Bound for one `fusermount3 -u` or `umount -l`.
const UNMOUNT_LIMIT: Duration = Duration::from_secs(20);
/// Bound for one `stat` of the mount point while waiting for it.
const STAT_LIMIT: Duration = Duration::from_secs(5);

/// The program that mounts the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Client {
    /// `elkfs mount` of this very binary.
    Elkfs(PathBuf),
    /// MooseFS's `mfsmount`.
    Mfsmount(PathBuf),
}

impl Client {
    pub fn describe(&self) -> String {
        match self {
            Client::Elkfs(exe) => format!("{} mount", exe.display()),
            Client::Mfsmount(p) => p.display().to_string(),
        }
    }

    /// Program and arguments mounting the master at `127.0.0.1:port`.
    fn command(&self, mountpoint: &Path, port: u16) -> (PathBuf, Vec<OsString>) {
        let opts = |extra: &str| OsString::from(format!("mfsmaster=127.0.0.1,mfsport={port}{extra}"));
        match self {
            // elkfs mount takes mfsmount's options (FUSE's auto_unmount
            // included) and always stays in the foreground.
            Client::Elkfs(exe) => {
                (exe.clone(), vec!["mount".into(), mountpoint.into(), "-o".into(), opts(",auto_unmount")])
            }
            Client::Mfsmount(p) => {
                (p.clone(), vec!["-f".into(), "-o".into(), opts(",auto_unmount"), mountpoint.into()])
            }
        }
    }
}

/// `name` in `$PATH` or the usual system folders (a user's PATH often
/// lacks `/sbin`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The unmount helper of FUSE 3 (or 2).
fn fusermount() -> Option<PathBuf> {
    find_program("fusermount3").or_else(|| find_program("fusermount"))
}

/// True when this binary has an `elkfs mount` subcommand.
fn elkfs_mount_available(exe: &Path) -> bool {
    Command::new(exe)
        .args(["mount", "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The client to mount with, or what is missing and how to get it.
pub fn choose(exe: &Path) -> Result<Client, String> {
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        return Err(format!(
            "/dev/fuse does not exist: install FUSE ({INSTALL_HINT}) and load it (modprobe fuse); in a \
             container, pass the device in (docker run --device /dev/fuse --cap-add SYS_ADMIN)"
        ));
    }
    let c = std::ffi::CString::new("/dev/fuse").expect("no NUL in a literal");
    // SAFETY: access reads a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) } != 0 {
        return Err(format!(
            "/dev/fuse is not readable and writable by you: run as root, or give it mode 0666 \
             (as the fuse3 package does: {INSTALL_HINT})"
        ));
    }
    if !is_root() && fusermount().is_none() {
        return Err(format!("fusermount3 is missing (needed to mount as an ordinary user): {INSTALL_HINT}"));
    }
    if elkfs_mount_available(exe) {
        return Ok(Client::Elkfs(exe.to_path_buf()));
    }
    match find_program("mfsmount") {
        Some(p) => Ok(Client::Mfsmount(p)),
        None => Err(format!("no FUSE client: mfsmount is not installed: {INSTALL_HINT}")),
    }
}

/// Starts the client on `mountpoint` (created when missing).
pub fn start(client: &Client, mountpoint: &Path, port: u16, log: &Path) -> std::io::Result<Child> {
    std::fs::create_dir_all(mountpoint)?;
    if is_mounted(mountpoint) {
        return Err(std::io::Error::other(format!(
            "{} is already mounted; unmount it first (fusermount3 -u {0})",
            mountpoint.display()
        )));
    }
    let (program, args) = client.command(mountpoint, port);
    let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    Child::spawn("mount", &program, &args, log)
}

/// Whether the mount answers yet: it is in the mount table and its root
/// can be stat'ed (which needs a session with the master).
pub fn answers(mountpoint: &Path) -> Result<(), String> {
    if !is_mounted(mountpoint) {
        return Err("not in /proc/self/mountinfo yet".into());
    }
    stat_bounded(mountpoint, STAT_LIMIT)
}

/// `stat` from a helper thread, so a hung file system fails the check
/// instead of blocking the supervisor (the thread is left behind then).
fn stat_bounded(path: &Path, limit: Duration) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::metadata(&p));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("stat {}: {e}", path.display())),
        Err(_) => Err(format!("stat {} hung for {limit:?}", path.display())),
    }
}

/// Unmounts `mountpoint` if it is mounted: a normal unmount first, a lazy
/// one when that fails (a shell still inside, say). Returns what happened
/// when it was not a plain unmount.
pub fn unmount(mountpoint: &Path) -> Result<Option<String>, String> {
    if !is_mounted(mountpoint) {
        return Ok(None);
    }
    let mnt = mountpoint.as_os_str();
    let helper = fusermount();
    let first = match &helper {
        Some(f) => run_bounded(f, &[OsStr::new("-u"), mnt]),
        None => run_bounded(Path::new("umount"), &[mnt]),
    };
    let Err(why) = first else { return Ok(None) };
    if !is_mounted(mountpoint) {
        return Ok(None);
    }
    let lazy = match (&helper, is_root()) {
        (_, true) => run_bounded(&find_program("umount").unwrap_or_else(|| "umount".into()), &[OsStr::new("-l"), mnt]),
        (Some(f), false) => run_bounded(f, &[OsStr::new("-u"), OsStr::new("-z"), mnt]),
        (None, false) => Err("no fusermount3 for a lazy unmount".into()),
    };
    match lazy {
        Ok(()) if !is_mounted(mountpoint) => Ok(Some(format!("unmount failed ({why}); detached it lazily"))),
        Ok(()) => Err(format!("{} is still mounted after a lazy unmount", mountpoint.display())),
        Err(e) => Err(format!("unmount {}: {why}; lazy unmount: {e}", mountpoint.display())),
    }
}

/// Runs a helper with a time bound; its stderr is the error.
fn run_bounded(program: &Path, args: &[&OsStr]) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {}: {e}", program.display()))?;
    let deadline = Instant::now() + UNMOUNT_LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                break;
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| format!("wait for {}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{} {}: {}", program.display(), out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(escape("/a b\\c"), "/a\\040b\\134c");
        assert!(is_mounted(Path::new("/proc")));
        assert!(!is_mounted(Path::new("/proc/self")));
    }

    #[test]
    fn mfsmount_runs_in_the_foreground_with_auto_unmount() {
        let (prog, args) = Client::Mfsmount("/usr/bin/mfsmount".into()).command(Path::new("/m"), 9421);
        assert_eq!(prog, Path::new("/usr/bin/mfsmount"));
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["-f", "-o", "mfsmaster=127.0.0.1,mfsport=9421,auto_unmount", "/m"]);
        let (_, args) = Client::Elkfs("/bin/elkfs".into()).command(Path::new("/m"), 1);
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["mount", "/m", "-o", "mfsmaster=127.0.0.1,mfsport=1,auto_unmount"]);
    }

    #[test]
    fn finds_programs_outside_path() {
        assert!(find_program("sh").is_some());
        assert_eq!(find_program("no-such-program-elkfs"), None);
    }

    #[test]
    fn unmounting_what_is_not_mounted_is_a_no_op() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_eq!(unmount(tmp.path()), Ok(None));
    }
}
