//! `mfsexports.cfg` on the elkfs master, with the real mfsmount: who may
//! mount which folder, read-only exports, root squashing, passwords, and
//! `SIGHUP` reloading the file.
//!
//! Each cluster mounts its root through a first line `* / rw,maproot=0:0`
//! (no `alldirs`, so it grants nothing below the root: mfsmaster prefers a
//! read-write or unsquashed line over the one under test otherwise).

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use elkfs_harness::{Cluster, MasterKind, Mount};

/// The admin line every test starts with (see module doc).
const ADMIN: &str = "* / rw,maproot=0:0\n";

/// A cluster whose exports file is `lines` after [`ADMIN`]; the returned
/// temp dir holds the file and must outlive the cluster.
fn cluster(lines: &str) -> (Cluster, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("mfsexports.cfg");
    std::fs::write(&file, format!("{ADMIN}{lines}")).expect("write exports");
    let c = Cluster::builder()
        .master_kind(MasterKind::Elkfs)
        .elkfs_chunkservers(1)
        .master_config("EXPORTS_FILENAME", &file.display().to_string())
        .mount(true)
        .start();
    (c, dir, file)
}

/// Mounts `subfolder` with extra options; panics (with mfsmount's log)
/// when refused.
fn mount(c: &Cluster, name: &str, subfolder: &str, extra: &[&str]) -> Mount {
    let mut options = vec![format!("mfssubfolder={subfolder}")];
    options.extend(extra.iter().map(|o| o.to_string()));
    Mount::start(
        &c.netns().path(),
        &c.addr().to_string(),
        c.ports().client,
        &c.dir().join(format!("mnt-{name}")),
        &options,
        &c.dir().join(format!("mount-{name}.log")),
    )
}

/// Tries a mount that must be refused: mfsmount in the foreground exits
/// at registration; returns what it printed.
fn refused(c: &Cluster, name: &str, subfolder: &str, extra: &[&str]) -> String {
    let mnt = c.dir().join(format!("mnt-{name}"));
    std::fs::create_dir_all(&mnt).expect("mountpoint");
    let mut opts = format!("mfsmaster={},mfsport={},auto_unmount,mfssubfolder={subfolder}", c.addr(), c.ports().client);
    for o in extra {
        opts.push(',');
        opts.push_str(o);
    }
    let args = [OsStr::new("-f"), OsStr::new("-o"), OsStr::new(&opts), mnt.as_os_str()];
    let out = c.tool("mfsmount", &args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "mfsmount of {subfolder} was not refused: {text}");
    text.to_lowercase()
}

fn errno(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

fn write_file(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[test]
fn a_readonly_export_reads_but_refuses_writes() {
    let (c, _dir, _) = cluster("* /pub ro\n");
    std::fs::create_dir(c.path("pub")).unwrap();
    write_file(&c.path("pub/readme"), b"read me");
    let ro = mount(&c, "ro", "/pub", &[]);
    assert_eq!(std::fs::read(ro.path().join("readme")).unwrap(), b"read me");
    assert_eq!(errno(std::fs::write(ro.path().join("new"), b"x")), Some(libc::EROFS));
    assert_eq!(errno(std::fs::create_dir(ro.path().join("dir"))), Some(libc::EROFS));
    assert_eq!(errno(std::fs::OpenOptions::new().append(true).open(ro.path().join("readme"))), Some(libc::EROFS));
    assert_eq!(errno(std::fs::remove_file(ro.path().join("readme"))), Some(libc::EROFS));
    assert_eq!(std::fs::read(c.path("pub/readme")).unwrap(), b"read me", "nothing changed");
}

#[test]
fn maproot_creates_roots_files_as_the_mapped_user() {
    let (c, _dir, _) = cluster("* /squash rw,maproot=1234:5678\n");
    std::fs::create_dir(c.path("squash")).unwrap();
    std::fs::set_permissions(c.path("squash"), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::create_dir(c.path("private")).unwrap();
    let m = mount(&c, "squash", "/squash", &[]);
    // This test runs as root; through this export root is uid 1234.
    write_file(&m.path().join("mine"), b"squashed");
    let meta = std::fs::metadata(c.path("squash/mine")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678), "seen through the unsquashed mount");
    std::fs::set_permissions(c.path("squash"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // Root's own folder is no longer root's to write in.
    assert_eq!(errno(std::fs::write(m.path().join("denied"), b"x")), Some(libc::EACCES));
}

#[test]
fn a_password_export_admits_only_the_right_password() {
    let (c, _dir, _) = cluster("* /secret rw,maproot=0:0,password=letmein\n");
    std::fs::create_dir(c.path("secret")).unwrap();
    let wrong = refused(&c, "wrong", "/secret", &["mfspassword=guess"]);
    assert!(wrong.contains("password"), "{wrong}");
    let none = refused(&c, "none", "/secret", &[]);
    assert!(none.contains("password"), "{none}");
    let m = mount(&c, "right", "/secret", &["mfspassword=letmein"]);
    write_file(&m.path().join("inside"), b"ok");
    assert_eq!(std::fs::read(c.path("secret/inside")).unwrap(), b"ok");
}

/// After a master restart the grant is gone with the process; the mount
/// of a password export cannot be let back in from its address and path
/// alone, is told to register again (EPERM) and does, with its password.
#[test]
fn a_password_mount_comes_back_after_a_master_restart() {
    let (mut c, _dir, _) = cluster("* /secret rw,maproot=0:0,password=letmein\n");
    std::fs::create_dir(c.path("secret")).unwrap();
    let m = mount(&c, "right", "/secret", &["mfspassword=letmein"]);
    write_file(&m.path().join("before"), b"1");
    c.restart_master();
    let after = m.path().join("after");
    elkfs_harness::wait_until("the password mount writes again", Duration::from_secs(30), || {
        std::fs::write(&after, b"2").map_err(|e| e.to_string())
    });
    assert_eq!(std::fs::read(m.path().join("before")).unwrap(), b"1");
    assert_eq!(std::fs::read(c.path("secret/after")).unwrap(), b"2");
}

#[test]
fn an_export_for_another_address_refuses_the_mount() {
    let other = "10.254.254.254";
    let (c, _dir, _) = cluster(&format!("{other} /other rw,maproot=0:0\n"));
    assert_ne!(c.addr().to_string(), other, "the test needs the client elsewhere");
    std::fs::create_dir(c.path("other")).unwrap();
    let out = refused(&c, "other", "/other", &[]);
    assert!(out.contains("permission denied") || out.contains("eacces"), "{out}");
}

#[test]
fn without_alldirs_only_the_folder_itself_mounts_until_a_reload_allows_more() {
    let (mut c, _dir, file) = cluster("* /proj rw,maproot=0:0\n");
    std::fs::create_dir_all(c.path("proj/sub")).unwrap();
    let proj = mount(&c, "proj", "/proj", &[]);
    write_file(&proj.path().join("sub/f"), b"f");
    refused(&c, "sub", "/proj/sub", &[]);
    // SIGHUP: the new table lets the subfolder in; the session already
    // mounted goes on.
    std::fs::write(&file, format!("{ADMIN}* /proj rw,alldirs,maproot=0:0\n")).unwrap();
    c.master().signal(libc::SIGHUP);
    let log = c.dir().join("master.log");
    elkfs_harness::wait_until("the master reloads its exports", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
        text.contains("exports reloaded").then_some(()).ok_or_else(|| "not yet".to_string())
    });
    let sub = mount(&c, "sub", "/proj/sub", &[]);
    assert_eq!(std::fs::read(sub.path().join("f")).unwrap(), b"f");
    write_file(&proj.path().join("after"), b"still writable");
    assert_eq!(std::fs::read(c.path("proj/after")).unwrap(), b"still writable");
}

/// Goals outside the export's range are refused (mfssetgoal goes through
/// the mount to the master), and so are the operations it disables.
#[test]
fn goal_limits_and_disabled_operations_are_refused() {
    let (c, _dir, _) = cluster("* /limited rw,maproot=0:0,mingoal=1,maxgoal=2,disable=mkdir\n");
    std::fs::create_dir(c.path("limited")).unwrap();
    let m = mount(&c, "limited", "/limited", &[]);
    let file = m.path().join("f");
    write_file(&file, b"data");
    let setgoal = |goal: &str| c.tool("mfssetgoal", &[OsStr::new(goal), file.as_os_str()]);
    let ok = setgoal("2");
    assert!(ok.status.success(), "goal 2 is inside 1..=2: {}", String::from_utf8_lossy(&ok.stderr));
    let out = setgoal("3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && text.contains("Operation not permitted"), "goal 3 accepted: {text}");
    assert_eq!(errno(std::fs::create_dir(m.path().join("d"))), Some(libc::EPERM));
    assert!(!c.path("limited/d").exists());
    std::fs::create_dir(c.path("limited/by-admin")).expect("the admin mount may still mkdir");
}
