//! Giving up root: `WORKING_USER` and `WORKING_GROUP`.
//!
//! A daemon is started as root by init so it can lock memory, raise
//! its priority and open its folders, then runs as an ordinary user so a
//! bug on the network path cannot touch the rest of the machine. As with
//! mfschunkserver, nothing changes when the process is not root: the
//! settings are logged as ignored and the daemon goes on as whoever it is.
//!
//! The switch is one-way and checked: supplementary groups are replaced
//! first, then the group, then the user (in the other order the process
//! would no longer be allowed to change its groups), and afterwards a
//! `setuid(0)` must fail. glibc applies set*id to every thread of the
//! process, but the daemon still calls this before it starts its runtime so
//! that no thread ever runs half-switched. Names resolve through NSS
//! (`getpwnam_r`/`getgrnam_r`), so LDAP or systemd users work too; a
//! numeric id is accepted when no entry has that name.

use std::ffi::CString;
use std::io;

use crate::error::{Error, Result};

/// Longest NSS entry we are willing to buffer; real ones are well under
/// 1 KiB, huge group member lists aside.
const ENTRY_BUF_MAX: usize = 1 << 20;

/// A resolved `WORKING_USER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: libc::uid_t,
    /// `None` for a numeric uid with no passwd entry: then `WORKING_GROUP`
    /// must say which group to use.
    pub primary_gid: Option<libc::gid_t>,
}

/// Switches to `user` and `group` when running as root. `group` defaults to
/// the user's primary group; with only a group, only the group changes.
/// Asking for a user or group that does not exist is an error.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        if user.is_some() || group.is_some() {
            tracing::info!(euid, ?user, ?group, "not started as root: WORKING_USER and WORKING_GROUP are ignored");
        }
        return Ok(());
    }
    if user.is_none() && group.is_none() {
        tracing::warn!("running as root: set WORKING_USER to run the chunkserver as an ordinary user");
        return Ok(());
    }
    let target = user.map(resolve_user).transpose()?;
    let gid = match group {
        Some(name) => resolve_group(name)?,
        None => target.as_ref().and_then(|user| user.primary_gid).ok_or_else(|| {
            Error::io(
                format!("choose a group for user {user:?}"),
                io::Error::new(io::ErrorKind::NotFound, "the uid has no passwd entry; set WORKING_GROUP"),
            )
        })?,
    };
    switch(gid, target.map(|user| user.uid))?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    tracing::info!(?user, ?group, uid, gid, "dropped root privileges");
    Ok(())
}

/// Makes `gid` the only group, then `uid` (if any) the user, then checks
/// that root cannot be taken back.
fn switch(gid: libc::gid_t, uid: Option<libc::uid_t>) -> Result<()> {
    // SAFETY: setgroups reads exactly one gid from a valid pointer.
    if unsafe { libc::setgroups(1, &gid) } != 0 {
        return Err(Error::io(format!("setgroups([{gid}])"), io::Error::last_os_error()));
    }
    // SAFETY: plain system call on integers.
    if unsafe { libc::setgid(gid) } != 0 {
        return Err(Error::io(format!("setgid({gid})"), io::Error::last_os_error()));
    }
    let Some(uid) = uid else { return Ok(()) };
    // SAFETY: plain system call on an integer.
    if unsafe { libc::setuid(uid) } != 0 {
        return Err(Error::io(format!("setuid({uid})"), io::Error::last_os_error()));
    }
    // SAFETY: as above; it is expected to fail.
    if uid != 0 && unsafe { libc::setuid(0) } == 0 {
        return Err(Error::io(
            format!("setuid({uid})"),
            io::Error::new(io::ErrorKind::PermissionDenied, "root could be regained after the switch"),
        ));
    }
    Ok(())
}

/// Looks a user up by name, falling back to a numeric uid.
pub fn resolve_user(name: &str) -> Result<User> {
    let what = || format!("look up user {name:?}");
    let c_name = c_string(name).map_err(|e| Error::io(what(), e))?;
    let by_name = lookup(|pwd: &mut libc::passwd, buf: &mut [u8], out| {
        // SAFETY: every pointer is valid for the call and `buf.len()` is
        // the buffer's true length.
        unsafe { libc::getpwnam_r(c_name.as_ptr(), pwd, buf.as_mut_ptr().cast(), buf.len(), out) }
    })
    .map_err(|e| Error::io(what(), e))?;
    if let Some(pwd) = by_name {
        return Ok(User { uid: pwd.0, primary_gid: Some(pwd.1) });
    }
    let Ok(uid) = name.parse::<libc::uid_t>() else {
        return Err(Error::io(what(), io::Error::new(io::ErrorKind::NotFound, "no such user")));
    };
    let by_uid = lookup(|pwd: &mut libc::passwd, buf: &mut [u8], out| {
        // SAFETY: as above.
        unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr().cast(), buf.len(), out) }
    })
    .map_err(|e| Error::io(what(), e))?;
    Ok(User { uid, primary_gid: by_uid.map(|pwd| pwd.1) })
}

/// Looks a group up by name, falling back to a numeric gid.
pub fn resolve_group(name: &str) -> Result<libc::gid_t> {
    let what = || format!("look up group {name:?}");
    let c_name = c_string(name).map_err(|e| Error::io(what(), e))?;
    let by_name = lookup(|grp: &mut libc::group, buf: &mut [u8], out| {
        // SAFETY: every pointer is valid for the call and `buf.len()` is
        // the buffer's true length.
        unsafe { libc::getgrnam_r(c_name.as_ptr(), grp, buf.as_mut_ptr().cast(), buf.len(), out) }
    })
    .map_err(|e| Error::io(what(), e))?;
    match by_name {
        Some(gid) => Ok(gid),
        None => name
            .parse::<libc::gid_t>()
            .map_err(|_| Error::io(what(), io::Error::new(io::ErrorKind::NotFound, "no such group"))),
    }
}

fn c_string(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name holds a NUL byte"))
}

/// One NSS entry that `*_r` calls fill: what we keep of it.
trait Entry {
    type Ids;
    fn ids(&self) -> Self::Ids;
}

impl Entry for libc::passwd {
    type Ids = (libc::uid_t, libc::gid_t);
    fn ids(&self) -> Self::Ids {
        (self.pw_uid, self.pw_gid)
    }
}

impl Entry for libc::group {
    type Ids = libc::gid_t;
    fn ids(&self) -> Self::Ids {
        self.gr_gid
    }
}

/// Runs a `get*_r` call, growing its buffer while it answers ERANGE.
/// `Ok(None)` is "no such entry"; other failures (NSS backend down) are
/// errors, because treating them as "absent" could fall back to a numeric
/// reading of the name.
fn lookup<E: Entry>(mut call: impl FnMut(&mut E, &mut [u8], *mut *mut E) -> libc::c_int) -> io::Result<Option<E::Ids>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: passwd and group are plain C structs for which all-zero
        // (null pointers, zero ids) is a valid value.
        let mut entry: E = unsafe { std::mem::zeroed() };
        let mut found: *mut E = std::ptr::null_mut();
        let rc = call(&mut entry, &mut buf, &mut found);
        match rc {
            0 if found.is_null() => return Ok(None),
            0 => return Ok(Some(entry.ids())),
            libc::ERANGE if buf.len() < ENTRY_BUF_MAX => buf.resize(buf.len() * 2, 0),
            // POSIX allows these to mean "not found" as well.
            libc::ENOENT | libc::ESRCH => return Ok(None),
            errno => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// NSS keeps process-wide locks; holding this while forking makes sure
    /// no other test thread is inside a lookup, whose lock the child would
    /// inherit held.
    static NSS: Mutex<()> = Mutex::new(());

    fn nss() -> std::sync::MutexGuard<'static, ()> {
        NSS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn not_found(result: Result<impl std::fmt::Debug>) -> bool {
        matches!(result, Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound)
    }

    fn is_root() -> bool {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn users_and_groups_resolve() {
        let _nss = nss();
        assert_eq!(resolve_user("root").unwrap(), User { uid: 0, primary_gid: Some(0) });
        assert_eq!(resolve_user("0").unwrap(), User { uid: 0, primary_gid: Some(0) });
        assert_eq!(resolve_user("4242424").unwrap(), User { uid: 4_242_424, primary_gid: None });
        assert!(not_found(resolve_user("nonexistent-user-xyz")));
        assert!(
            matches!(resolve_user("ro\0ot"), Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::InvalidInput)
        );
        assert_eq!(resolve_group("root").unwrap(), 0);
        assert_eq!(resolve_group("4321").unwrap(), 4321);
        assert!(not_found(resolve_group("nonexistent-group-xyz")));
    }

    /// As root these fail while resolving, before any set*id call, so they
    /// are safe to run in the test process itself.
    #[test]
    fn unknown_names_are_refused_before_switching() {
        let _nss = nss();
        let cases = [
            drop_privileges(Some("nonexistent-user-xyz"), None),
            drop_privileges(Some("root"), Some("nonexistent-group-xyz")),
            drop_privileges(Some("4242424"), None),
        ];
        for result in cases {
            if is_root() {
                assert!(not_found(result));
            } else {
                assert!(result.is_ok(), "not root: the settings are ignored");
            }
        }
    }

    /// Runs `body` in a forked child and returns its exit code.
    fn in_child(body: impl FnOnce() -> i32) -> i32 {
        let _nss = nss();
        // SAFETY: the child only runs `body` (under catch_unwind, so a
        // panic cannot unwind into the copied test harness) and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(99);
            // SAFETY: ends the child without running the parent's atexit
            // handlers or destructors.
            unsafe { libc::_exit(code) };
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child with a valid status pointer.
            let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            assert!(done >= 0, "waitpid: {}", io::Error::last_os_error());
            if done == pid {
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: the pid is our own child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("child {pid} did not finish in 30 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(libc::WIFEXITED(status), "child ended by signal, status {status:#x}");
        libc::WEXITSTATUS(status)
    }

    /// The ids the process has now, or the first check that failed.
    fn ids_are(uid: libc::uid_t, gid: libc::gid_t) -> i32 {
        // SAFETY: plain id queries; getgroups writes at most 16 entries.
        unsafe {
            let mut groups = [0 as libc::gid_t; 16];
            let count = libc::getgroups(16, groups.as_mut_ptr());
            if libc::getuid() != uid || libc::geteuid() != uid {
                2
            } else if libc::getgid() != gid || libc::getegid() != gid {
                3
            } else if count != 1 || groups[0] != gid {
                4
            } else if libc::setuid(0) == 0 {
                5
            } else {
                0
            }
        }
    }

    const CHILD_FAILURES: [&str; 8] = [
        "ok",
        "drop_privileges returned an error",
        "wrong uid after the switch",
        "wrong gid after the switch",
        "supplementary groups were not replaced",
        "setuid(0) succeeded after the switch",
        "a second call, no longer as root, returned an error",
        "a second call, no longer as root, changed the uid",
    ];

    fn explain(code: i32) -> &'static str {
        usize::try_from(code).ok().and_then(|i| CHILD_FAILURES.get(i)).copied().unwrap_or("panic in the child")
    }

    #[test]
    fn switch_to_nobody_in_a_child() {
        assert!(is_root(), "this test needs root: it forks a child that switches to user nobody");
        let nobody = {
            let _nss = nss();
            resolve_user("nobody").expect("user nobody exists")
        };
        let gid = nobody.primary_gid.expect("nobody has a passwd entry");
        let code = in_child(|| {
            if drop_privileges(Some("nobody"), None).is_err() {
                return 1;
            }
            let check = ids_are(nobody.uid, gid);
            if check != 0 {
                return check;
            }
            if drop_privileges(Some("root"), None).is_err() {
                return 6;
            }
            // SAFETY: getuid cannot fail.
            if unsafe { libc::getuid() } != nobody.uid {
                return 7;
            }
            0
        });
        assert_eq!(code, 0, "child: {}", explain(code));
    }

    #[test]
    fn switch_with_numeric_ids_and_an_explicit_group() {
        assert!(is_root(), "this test needs root: it forks a child that switches to uid 65534, gid 4321");
        let code = in_child(|| match drop_privileges(Some("65534"), Some("4321")) {
            Ok(()) => ids_are(65534, 4321),
            Err(_) => 1,
        });
        assert_eq!(code, 0, "child: {}", explain(code));
    }

    #[test]
    fn group_only_keeps_the_user() {
        assert!(is_root(), "this test needs root: it forks a child that changes its group");
        let code = in_child(|| match drop_privileges(None, Some("4321")) {
            Ok(()) => {
                // SAFETY: plain id queries.
                let (uid, gid) = unsafe { (libc::geteuid(), libc::getgid()) };
                if uid != 0 {
                    2
                } else if gid != 4321 {
                    3
                } else {
                    0
                }
            }
            Err(_) => 1,
        });
        assert_eq!(code, 0, "child: {}", explain(code));
    }
}
