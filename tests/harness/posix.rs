//! A POSIX behaviour suite run on a mounted file system: what a program
//! expects of files, directories, links, permissions and timestamps. Each
//! check panics with what it expected and what it saw.
//!
//! Runs as root; the permission checks for another user run their probes
//! through `setpriv` as `nobody` (65534), since a test process cannot drop
//! root and regain it.

use std::fs;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

/// The uid and gid of `nobody`, the "other user" of the permission checks.
pub const OTHER: u32 = 65534;

/// Runs every check under `root` (an empty directory on the mount).
pub fn run_suite(root: &Path) {
    files(&root.join("files"));
    directories(&root.join("dirs"));
    renames(&root.join("renames"));
    links(&root.join("links"));
    errors(&root.join("errors"));
    timestamps(&root.join("times"));
    permissions(&root.join("perms"));
    big_directory(&root.join("big"), 10_000);
}

fn mkdir(path: &Path) {
    fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

fn expect_err<T: std::fmt::Debug>(what: &str, r: std::io::Result<T>, kind: ErrorKind) {
    match r {
        Err(e) if e.kind() == kind => {}
        other => panic!("{what}: expected {kind:?}, got {other:?}"),
    }
}

fn expect_errno<T: std::fmt::Debug>(what: &str, r: std::io::Result<T>, errno: i32) {
    match r {
        Err(e) if e.raw_os_error() == Some(errno) => {}
        other => panic!("{what}: expected errno {errno}, got {other:?}"),
    }
}

fn files(dir: &Path) {
    mkdir(dir);
    let f = dir.join("a");
    fs::write(&f, b"hello").unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"hello");
    assert_eq!(fs::metadata(&f).unwrap().len(), 5);
    // Append.
    fs::OpenOptions::new().append(true).open(&f).unwrap().write_all(b" world").unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"hello world");
    // Two appenders: each write lands at the end, none over another.
    let mut a = fs::OpenOptions::new().append(true).open(&f).unwrap();
    let mut b = fs::OpenOptions::new().append(true).open(&f).unwrap();
    a.write_all(b"<a1>").unwrap();
    b.write_all(b"<b1>").unwrap();
    a.write_all(b"<a2>").unwrap();
    drop((a, b));
    assert_eq!(fs::read(&f).unwrap(), b"hello world<a1><b1><a2>");
    fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(11).unwrap();
    // Overwrite in the middle.
    let mut h = fs::OpenOptions::new().write(true).open(&f).unwrap();
    h.seek(SeekFrom::Start(6)).unwrap();
    h.write_all(b"WORLD").unwrap();
    drop(h);
    assert_eq!(fs::read(&f).unwrap(), b"hello WORLD");
    // Truncate down, then up (the gap reads as zeros).
    let h = fs::OpenOptions::new().write(true).open(&f).unwrap();
    h.set_len(4).unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"hell");
    h.set_len(10).unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"hell\0\0\0\0\0\0");
    drop(h);
    // O_TRUNC and a write past the end leaving a hole.
    let mut h = fs::File::create(&f).unwrap();
    assert_eq!(fs::metadata(&f).unwrap().len(), 0);
    h.seek(SeekFrom::Start(100_000)).unwrap();
    h.write_all(b"x").unwrap();
    drop(h);
    let data = fs::read(&f).unwrap();
    assert_eq!(data.len(), 100_001);
    assert!(data[..100_000].iter().all(|&b| b == 0) && data[100_000] == b'x');
    // Read at an offset.
    let mut h = fs::File::open(&f).unwrap();
    h.seek(SeekFrom::Start(99_999)).unwrap();
    let mut two = Vec::new();
    h.read_to_end(&mut two).unwrap();
    assert_eq!(two, b"\0x");
    // create_new on an existing file.
    expect_err(
        "O_EXCL on an existing file",
        fs::OpenOptions::new().write(true).create_new(true).open(&f),
        ErrorKind::AlreadyExists,
    );
    fs::remove_file(&f).unwrap();
    expect_err("stat after unlink", fs::metadata(&f), ErrorKind::NotFound);
    open_then_unlinked(dir);
}

/// A file opened on a fresh lookup (clients may then open from the
/// lookup's access rights and tell the master afterwards) and unlinked
/// while open stays readable through the open descriptor.
fn open_then_unlinked(dir: &Path) {
    let f = dir.join("kept");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&f, &data).unwrap();
    // Past the entry caches (1 s by default): the open below looks up.
    std::thread::sleep(Duration::from_millis(1_300));
    let mut h = fs::File::open(&f).unwrap();
    let mut first = [0u8; 1];
    h.read_exact(&mut first).unwrap();
    fs::remove_file(&f).unwrap();
    expect_err("stat after unlink", fs::metadata(&f), ErrorKind::NotFound);
    let mut rest = Vec::new();
    h.read_to_end(&mut rest).unwrap();
    assert!(first[..] == data[..1] && rest[..] == data[1..], "an unlinked open file reads back what was written");
}

fn directories(dir: &Path) {
    mkdir(dir);
    let sub = dir.join("sub");
    mkdir(&sub);
    assert!(fs::metadata(&sub).unwrap().is_dir());
    fs::write(sub.join("f"), b"1").unwrap();
    mkdir(&sub.join("deeper"));
    let mut names: Vec<String> =
        fs::read_dir(&sub).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["deeper", "f"]);
    // nlink of a directory: 2 + subdirectories.
    assert_eq!(fs::metadata(&sub).unwrap().nlink(), 3, "nlink of a directory with one subdirectory");
    expect_errno("rmdir of a non-empty directory", fs::remove_dir(&sub), libc::ENOTEMPTY);
    fs::remove_file(sub.join("f")).unwrap();
    fs::remove_dir(sub.join("deeper")).unwrap();
    fs::remove_dir(&sub).unwrap();
    expect_err("stat of a removed directory", fs::metadata(&sub), ErrorKind::NotFound);
}

fn renames(dir: &Path) {
    mkdir(dir);
    let (a, b) = (dir.join("a"), dir.join("b"));
    fs::write(&a, b"A").unwrap();
    fs::rename(&a, &b).unwrap();
    expect_err("old name after rename", fs::metadata(&a), ErrorKind::NotFound);
    assert_eq!(fs::read(&b).unwrap(), b"A");
    // Rename over an existing file replaces it.
    fs::write(&a, b"new").unwrap();
    fs::rename(&a, &b).unwrap();
    assert_eq!(fs::read(&b).unwrap(), b"new");
    // Across directories, and a directory with its contents.
    let (d1, d2) = (dir.join("d1"), dir.join("d2"));
    mkdir(&d1);
    mkdir(&d2);
    fs::rename(&b, d1.join("b")).unwrap();
    assert_eq!(fs::read(d1.join("b")).unwrap(), b"new");
    fs::rename(&d1, d2.join("moved")).unwrap();
    assert_eq!(fs::read(d2.join("moved").join("b")).unwrap(), b"new");
    // A directory cannot move into itself; over a non-empty directory fails.
    expect_errno("rename a directory into itself", fs::rename(&d2, d2.join("moved").join("x")), libc::EINVAL);
    let d3 = dir.join("d3");
    mkdir(&d3);
    expect_errno("rename over a non-empty directory", fs::rename(&d3, &d2), libc::ENOTEMPTY);
    // Over an empty directory works.
    let empty = dir.join("empty");
    mkdir(&empty);
    fs::rename(&d3, &empty).unwrap();
    assert!(fs::metadata(&empty).unwrap().is_dir());
}

fn links(dir: &Path) {
    mkdir(dir);
    let f = dir.join("f");
    fs::write(&f, b"data").unwrap();
    let h = dir.join("hard");
    fs::hard_link(&f, &h).unwrap();
    assert_eq!(fs::metadata(&f).unwrap().nlink(), 2);
    assert_eq!(fs::metadata(&f).unwrap().ino(), fs::metadata(&h).unwrap().ino());
    fs::write(&h, b"changed").unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"changed");
    fs::remove_file(&f).unwrap();
    assert_eq!(fs::metadata(&h).unwrap().nlink(), 1);
    assert_eq!(fs::read(&h).unwrap(), b"changed");
    let s = dir.join("sym");
    std::os::unix::fs::symlink("hard", &s).unwrap();
    assert_eq!(fs::read_link(&s).unwrap(), Path::new("hard"));
    assert!(fs::symlink_metadata(&s).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(&s).unwrap(), b"changed");
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink("nowhere", &dangling).unwrap();
    expect_err("read through a dangling symlink", fs::read(&dangling), ErrorKind::NotFound);
    let long_target = "x".repeat(1000);
    let long = dir.join("long");
    std::os::unix::fs::symlink(&long_target, &long).unwrap();
    assert_eq!(fs::read_link(&long).unwrap(), Path::new(&long_target));
    expect_errno("hard link to a directory", fs::hard_link(dir, dir.join("dirlink")), libc::EPERM);
}

fn errors(dir: &Path) {
    mkdir(dir);
    let f = dir.join("f");
    fs::write(&f, b"").unwrap();
    expect_err("stat of a missing name", fs::metadata(dir.join("missing")), ErrorKind::NotFound);
    expect_err("mkdir over a file", fs::create_dir(&f), ErrorKind::AlreadyExists);
    expect_err("mkdir of an existing directory", fs::create_dir(dir), ErrorKind::AlreadyExists);
    expect_errno("open a directory for writing", fs::OpenOptions::new().write(true).open(dir), libc::EISDIR);
    expect_errno("unlink a directory", fs::remove_file(dir), libc::EISDIR);
    expect_errno("rmdir a file", fs::remove_dir(&f), libc::ENOTDIR);
    expect_errno("a file as a path component", fs::metadata(f.join("x")), libc::ENOTDIR);
    expect_err("unlink a missing name", fs::remove_file(dir.join("missing")), ErrorKind::NotFound);
    expect_err("rename a missing name", fs::rename(dir.join("missing"), dir.join("y")), ErrorKind::NotFound);
    expect_errno("a name of 256 bytes", fs::write(dir.join("n".repeat(256)), b""), libc::ENAMETOOLONG);
    fs::write(dir.join("n".repeat(255)), b"").unwrap();
}

fn timestamps(dir: &Path) {
    mkdir(dir);
    let f = dir.join("f");
    let before = SystemTime::now() - Duration::from_secs(2);
    fs::write(&f, b"1").unwrap();
    let m = fs::metadata(&f).unwrap();
    assert!(m.modified().unwrap() >= before, "mtime of a new file");
    // Set times explicitly (utimes), read them back.
    let t = filetime(1_500_000_000);
    let h = fs::File::options().write(true).open(&f).unwrap();
    h.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t)).unwrap();
    drop(h);
    let m = fs::metadata(&f).unwrap();
    assert_eq!(m.mtime(), 1_500_000_000);
    assert_eq!(m.atime(), 1_500_000_000);
    // A write moves mtime forward again.
    std::thread::sleep(Duration::from_millis(1100));
    fs::OpenOptions::new().append(true).open(&f).unwrap().write_all(b"2").unwrap();
    let m = fs::metadata(&f).unwrap();
    assert!(m.mtime() > 1_500_000_000, "mtime after a write: {}", m.mtime());
    // Creating an entry updates the directory's mtime.
    let dm = fs::metadata(dir).unwrap().mtime();
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(dir.join("g"), b"").unwrap();
    eventually("directory mtime after a create", || fs::metadata(dir).unwrap().mtime() > dm);
    // chmod changes ctime.
    let c = fs::metadata(&f).unwrap().ctime();
    std::thread::sleep(Duration::from_millis(1100));
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    eventually("ctime after chmod", || fs::metadata(&f).unwrap().ctime() > c);
}

/// Attributes may be cached by the client for a second (mfsmount's
/// `mfsattrcacheto`), so a change made through another path can take that
/// long to show.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(3), "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn filetime(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Runs `sh -c script` as `nobody`; true when it exits 0.
fn as_other(script: &str) -> bool {
    let status = Command::new("setpriv")
        .args(["--reuid", &OTHER.to_string(), "--regid", &OTHER.to_string(), "--clear-groups", "sh", "-c", script])
        .status()
        .unwrap_or_else(|e| panic!("run setpriv (util-linux): {e}"));
    status.success()
}

fn q(path: &Path) -> String {
    format!("'{}'", path.display())
}

fn permissions(dir: &Path) {
    mkdir(dir);
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let private = dir.join("private");
    fs::write(&private, b"secret").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    let public = dir.join("public");
    fs::write(&public, b"open").unwrap();
    fs::set_permissions(&public, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(!as_other(&format!("cat {} >/dev/null 2>&1", q(&private))), "nobody read a 0600 root file");
    assert!(as_other(&format!("cat {} >/dev/null", q(&public))), "nobody could not read a 0644 file");
    assert!(!as_other(&format!("{{ echo x >> {}; }} 2>/dev/null", q(&public))), "nobody wrote a 0644 root file");
    assert!(!as_other(&format!("touch {}/new 2>/dev/null", q(dir))), "nobody created a file in a 0755 root dir");
    assert!(!as_other(&format!("rm -f {} 2>/dev/null", q(&public))), "nobody removed a file from a 0755 root dir");
    // A directory nobody owns: everything works there, and chmod/chown rules hold.
    let theirs = dir.join("theirs");
    mkdir(&theirs);
    std::os::unix::fs::chown(&theirs, Some(OTHER), Some(OTHER)).unwrap();
    assert_eq!(fs::metadata(&theirs).unwrap().uid(), OTHER);
    assert!(as_other(&format!("echo hi > {}/mine && chmod 600 {}/mine", q(&theirs), q(&theirs))));
    assert_eq!(fs::metadata(theirs.join("mine")).unwrap().uid(), OTHER, "owner of a file nobody created");
    assert!(!as_other(&format!("chmod 777 {} 2>/dev/null", q(&public))), "nobody chmod-ed root's file");
    assert!(!as_other(&format!("chown {OTHER} {} 2>/dev/null", q(&public))), "nobody chown-ed root's file");
    // Search permission: a 0700 directory hides what is inside.
    let closed = dir.join("closed");
    mkdir(&closed);
    fs::write(closed.join("f"), b"x").unwrap();
    fs::set_permissions(closed.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(!as_other(&format!("cat {}/f >/dev/null 2>&1", q(&closed))), "nobody read through a 0700 dir");
    // Sticky bit: in a 1777 directory nobody cannot remove root's file.
    let tmp = dir.join("tmp");
    mkdir(&tmp);
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(tmp.join("roots"), b"x").unwrap();
    assert!(!as_other(&format!("rm -f {}/roots 2>/dev/null", q(&tmp))), "sticky bit ignored");
    assert!(as_other(&format!("touch {}/own && rm {}/own", q(&tmp), q(&tmp))), "nobody could not use a 1777 dir");
}

fn big_directory(dir: &Path, n: usize) {
    mkdir(dir);
    for i in 0..n {
        fs::File::create(dir.join(format!("entry-{i:05}"))).unwrap_or_else(|e| panic!("create entry {i}: {e}"));
    }
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names.len(), n, "readdir of {n} entries");
    assert!(names.iter().enumerate().all(|(i, name)| *name == format!("entry-{i:05}")));
    let ls = Command::new("ls").arg("-f").arg(dir).output().expect("run ls");
    assert_eq!(String::from_utf8_lossy(&ls.stdout).lines().count(), n + 2, "ls -f shows . and .. too");
}
