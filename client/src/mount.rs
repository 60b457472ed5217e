//! `elkfs mount`: options in mfsmount's spelling, the session, the FUSE
//! mount, and a clean end on SIGTERM/SIGINT/SIGHUP, on an external
//! unmount, and when the master is gone for good.
//!
//! Signals are blocked in every thread (the mask is set before any thread
//! starts) and taken synchronously by the main thread, so no handler runs
//! in the middle of a FUSE request.

use std::path::PathBuf;
use std::time::Duration;

use fuser::MountOption;

use crate::error::{Error, Result};
use crate::file::{Files, FilesConfig};
use crate::fuse::{CacheTtl, ElkFs};
use crate::master::{Master, Target};

/// The most write-back data one file may hold (of `mfswritecachesize`).
const FILE_WRITE_BUFFER: usize = 128 << 20;

/// Everything `elkfs mount` was told.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    pub mountpoint: PathBuf,
    pub host: String,
    pub port: u16,
    pub subfolder: String,
    /// Kernel attribute cache lifetime (`mfsattrcacheto`, seconds).
    pub attr_ttl: Duration,
    /// Kernel entry cache lifetime (`mfsentrycacheto`).
    pub entry_ttl: Duration,
    /// The same for directories (`mfsdirentrycacheto`): path walks
    /// through them are not a master call per component.
    pub dir_entry_ttl: Duration,
    /// Write-back data of all files together (`mfswritecachesize`, MiB,
    /// as mfsmount's): buffered and unacknowledged bytes. One file may
    /// hold up to 128 MiB of it, so consecutive chunks go out side by
    /// side while a writer is that far ahead.
    pub write_buffer: usize,
    /// Read-ahead data of all files together (`mfsreadaheadsize`, MiB,
    /// 16..2048 as mfsmount's); at most 64 MiB of it ahead of one reader.
    pub readahead: usize,
    /// How long the master may stay away before the mount gives up
    /// (`mfsgiveup`, seconds; elkfs only).
    pub give_up: Duration,
    /// Options passed to the kernel mount as they are (`ro`, `noatime`,
    /// `allow_other`, …).
    pub fuse: Vec<String>,
}

impl MountOptions {
    /// Defaults for `mountpoint`; `-o` options then override them.
    pub fn new(mountpoint: PathBuf, host: String, port: u16, subfolder: String) -> MountOptions {
        MountOptions {
            mountpoint,
            host,
            port,
            subfolder,
            attr_ttl: Duration::from_secs(1),
            // As mfsmount: the master checks search permission on every
            // lookup, which a kernel-cached entry would skip.
            entry_ttl: Duration::ZERO,
            dir_entry_ttl: Duration::from_secs(1),
            write_buffer: 256 << 20,
            readahead: 256 << 20,
            give_up: Duration::from_secs(300),
            fuse: Vec::new(),
        }
    }

    /// Applies one `-o` list (comma separated, mfsmount names).
    pub fn apply(&mut self, list: &str) -> Result<()> {
        for opt in list.split(',').filter(|o| !o.is_empty()) {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            let need = || value.ok_or_else(|| Error::Options(format!("option {key} needs a value")));
            match key {
                "mfsmaster" => self.host = need()?.to_string(),
                "mfsport" => self.port = parse(key, need()?)?,
                "mfssubfolder" => self.subfolder = need()?.to_string(),
                "mfsattrcacheto" => self.attr_ttl = seconds(key, need()?)?,
                "mfsentrycacheto" => self.entry_ttl = seconds(key, need()?)?,
                "mfsdirentrycacheto" => self.dir_entry_ttl = seconds(key, need()?)?,
                "mfswritecachesize" => self.write_buffer = parse::<usize>(key, need()?)?.max(1) << 20,
                "mfsgiveup" => self.give_up = seconds(key, need()?)?,
                "mfsreadaheadsize" => self.readahead = parse::<usize>(key, need()?)?.clamp(16, 2048) << 20,
                // Accepted for mfsmount compatibility; no effect here.
                "mfsreadaheadleng"
                | "mfsreadaheadtrigger"
                | "mfscachemode"
                | "mfsnegentrycacheto"
                | "mfsmkdircopysgid"
                | "mfssugidclearmode"
                | "mfsioretries" => {}
                _ if key.starts_with("mfs") => return Err(Error::Options(format!("unknown option {key}"))),
                _ => self.fuse.push(opt.to_string()),
            }
        }
        Ok(())
    }

    fn kernel_options(&self, root: bool) -> Vec<MountOption> {
        let mut out = vec![
            MountOption::FSName(format!("elkfs#{}:{}", self.host, self.port)),
            MountOption::Subtype("elkfs".into()),
        ];
        // As mfsmount: root mounts for everyone, and the master checks.
        if root && !self.fuse.iter().any(|o| o == "allow_other") {
            out.push(MountOption::AllowOther);
        }
        for o in &self.fuse {
            out.push(match o.as_str() {
                "allow_other" => MountOption::AllowOther,
                "allow_root" => MountOption::AllowRoot,
                "auto_unmount" => MountOption::AutoUnmount,
                "default_permissions" => MountOption::DefaultPermissions,
                "ro" => MountOption::RO,
                "rw" => MountOption::RW,
                "noatime" => MountOption::NoAtime,
                "nosuid" => MountOption::NoSuid,
                "nodev" => MountOption::NoDev,
                "noexec" => MountOption::NoExec,
                other => MountOption::CUSTOM(other.to_string()),
            });
        }
        out
    }
}

fn parse<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
    v.parse().map_err(|_| Error::Options(format!("option {key}: bad value {v:?}")))
}

fn seconds(key: &str, v: &str) -> Result<Duration> {
    let s: f64 = parse(key, v)?;
    if !(0.0..=86_400.0).contains(&s) {
        return Err(Error::Options(format!("option {key}: {v} is out of range")));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Mounts and serves until a signal, an external unmount, or the loss of
/// the session. Returns an error (after unmounting) in the last case.
pub fn run(opts: &MountOptions) -> Result<()> {
    let signals = block_signals()?;
    let target = Target {
        host: opts.host.clone(),
        port: opts.port,
        subfolder: opts.subfolder.clone(),
        info: opts.mountpoint.display().to_string(),
    };
    let master = Master::connect(target, opts.give_up)?;
    let files = Files::new(
        master.clone(),
        FilesConfig {
            buffer_max: opts.write_buffer.min(FILE_WRITE_BUFFER),
            buffer_total: opts.write_buffer,
            readahead: opts.readahead,
            ..FilesConfig::default()
        },
    );
    let fs = ElkFs::new(files, CacheTtl { attr: opts.attr_ttl, entry: opts.entry_ttl, dir_entry: opts.dir_entry_ttl })
        .map_err(|e| Error::io("start the FUSE workers", e))?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut session = fuser::spawn_mount2(fs, &opts.mountpoint, &opts.kernel_options(root))
        .map_err(|e| Error::io(format!("mount on {}", opts.mountpoint.display()), e))?;
    tracing::info!("mounted {}:{}{} on {}", opts.host, opts.port, opts.subfolder, opts.mountpoint.display());
    let mut lost = None;
    let mut mounted = true;
    loop {
        if let Some(sig) = wait_signal(&signals, Duration::from_millis(200)) {
            tracing::info!("signal {sig}: unmounting {}", opts.mountpoint.display());
            break;
        }
        if session.guard.is_finished() {
            // Swap a finished handle in to learn how the session ended.
            let guard = std::mem::replace(&mut session.guard, std::thread::spawn(|| Ok(())));
            match guard.join() {
                Ok(Ok(())) => tracing::info!("{} was unmounted", opts.mountpoint.display()),
                Ok(Err(e)) => tracing::error!("the FUSE session ended: {e}"),
                Err(_) => tracing::error!("the FUSE session thread panicked"),
            }
            mounted = false;
            break;
        }
        if let Some(why) = master.lost() {
            eprintln!("elkfs mount: the master is gone for good ({why}); unmounting {}", opts.mountpoint.display());
            lost = Some(why);
            break;
        }
    }
    if mounted {
        unmount(&opts.mountpoint, root);
    }
    // The session thread ends once the kernel mount is gone, and flushes
    // (destroy). A
    // panic in a request handler ended that thread already; the mount is
    // gone either way, and the panic was printed where it happened.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.join())).is_err() {
        tracing::error!("the FUSE session thread panicked");
    }
    match lost {
        Some(why) => Err(Error::SessionLost(why)),
        None => Ok(()),
    }
}

/// Takes the mount away so the session thread sees the end of `/dev/fuse`.
/// fuser's own unmount leaves an `auto_unmount` mount to its fusermount3
/// helper, which only acts when this process is gone; we want it gone
/// before we return. Root unmounts directly (lazily when busy); others
/// through `fusermount3 -u -z`.
fn unmount(mountpoint: &std::path::Path, root: bool) {
    use std::os::unix::ffi::OsStrExt;
    if root {
        let Ok(path) = std::ffi::CString::new(mountpoint.as_os_str().as_bytes()) else { return };
        // SAFETY: a valid NUL-terminated path; umount2 has no other inputs.
        if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
            return;
        }
        // SAFETY: as above.
        if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
            return;
        }
    }
    let status = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(mountpoint).status();
    if !matches!(status, Ok(s) if s.success()) {
        tracing::warn!("could not unmount {}: {status:?}", mountpoint.display());
    }
}

fn block_signals() -> Result<libc::sigset_t> {
    // SAFETY: the set is initialised by sigemptyset before use, and
    // pthread_sigmask only changes this thread's mask (inherited by the
    // threads started after it).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(Error::io("block signals", std::io::Error::from_raw_os_error(rc)));
        }
        Ok(set)
    }
}

fn wait_signal(set: &libc::sigset_t, limit: Duration) -> Option<i32> {
    let ts = libc::timespec { tv_sec: limit.as_secs() as libc::time_t, tv_nsec: limit.subsec_nanos() as libc::c_long };
    // SAFETY: valid pointers to a set and a timespec; no siginfo wanted.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mfsmount_options() {
        let mut o = MountOptions::new("/mnt".into(), "m".into(), 9421, "/".into());
        o.apply("mfsmaster=10.0.0.1,mfsport=9521,auto_unmount,mfsattrcacheto=0.5,mfswritecachesize=64,noatime")
            .unwrap();
        assert_eq!((o.host.as_str(), o.port), ("10.0.0.1", 9521));
        assert_eq!(o.attr_ttl, Duration::from_millis(500));
        assert_eq!(o.write_buffer, 64 << 20);
        assert_eq!(o.fuse, vec!["auto_unmount".to_string(), "noatime".to_string()]);
        let k = o.kernel_options(true);
        assert!(k.contains(&MountOption::AllowOther), "root mounts allow other users");
        assert!(!o.kernel_options(false).contains(&MountOption::AllowOther));
        assert!(matches!(o.apply("mfsport=x"), Err(Error::Options(_))));
        assert!(matches!(o.apply("mfsbogus=1"), Err(Error::Options(_))));
        assert!(matches!(o.apply("mfsmaster"), Err(Error::Options(_))));
    }
}
