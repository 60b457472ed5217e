//! The production disk: a real folder, data I/O through its own io_uring.
//!
//! O_DIRECT is probed when the disk opens (a 4 KiB aligned write to a probe
//! file). File systems that refuse it, tmpfs among them, get buffered I/O
//! through the same ring, and the fact is logged: it is never dropped
//! silently. The folder is locked with `lockf` on `.lock`, as mfschunkserver
//! does, so the two cannot serve one folder at once.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::ring::RingHandle;
use super::{Completion, Disk, DiskFile, FsSpace, IoReq};
use crate::layout::IO_ALIGN;

const PROBE_NAME: &str = ".elkfs-direct-probe";

/// A data folder served through io_uring.
pub struct UringDisk {
    root: PathBuf,
    direct: bool,
    ring: RingHandle,
    _lock: File,
    _thread: JoinHandle<()>,
}

impl UringDisk {
    /// Opens (creating if needed) the folder `root`, locks it, probes
    /// O_DIRECT (unless `allow_direct` is off) and starts its ring with
    /// `queue_depth` chains in flight.
    pub fn open(root: &Path, queue_depth: usize, allow_direct: bool) -> io::Result<UringDisk> {
        std::fs::create_dir_all(root)?;
        let lock = lock_folder(root)?;
        let direct = allow_direct && probe_direct(root)?;
        if !allow_direct {
            tracing::info!(folder = %root.display(), "O_DIRECT disabled by configuration: buffered I/O");
        } else if direct {
            tracing::info!(folder = %root.display(), "O_DIRECT available");
        } else {
            tracing::warn!(
                folder = %root.display(),
                "file system refuses O_DIRECT (tmpfs?): using buffered I/O on this folder"
            );
        }
        let (ring, thread) = RingHandle::start(&root.display().to_string(), queue_depth)?;
        Ok(UringDisk { root: root.to_path_buf(), direct, ring, _lock: lock, _thread: thread })
    }

    fn open_file(&self, rel: &Path, create: bool, direct: bool) -> io::Result<Arc<dyn DiskFile>> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if create {
            options.create_new(true);
        }
        if direct {
            options.custom_flags(libc::O_DIRECT);
        }
        let file = options.open(self.path(rel))?;
        Ok(Arc::new(UringFile { file: Arc::new(file), direct, ring: self.ring.clone_handle() }))
    }

    fn path(&self, rel: &Path) -> PathBuf {
        debug_assert!(rel.is_relative());
        self.root.join(rel)
    }
}

fn lock_folder(root: &Path) -> io::Result<File> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(root.join(".lock"))?;
    // SAFETY: a plain fcntl-style lock on a descriptor we own.
    if unsafe { libc::lockf(file.as_raw_fd(), libc::F_TLOCK, 0) } != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("folder {} is in use by another process: {err}", root.display()),
        ));
    }
    Ok(file)
}

fn probe_direct(root: &Path) -> io::Result<bool> {
    let path = root.join(PROBE_NAME);
    let opened =
        OpenOptions::new().read(true).write(true).create(true).truncate(true).custom_flags(libc::O_DIRECT).open(&path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let _ = std::fs::remove_file(&path);
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let layout = std::alloc::Layout::from_size_align(IO_ALIGN, IO_ALIGN).expect("probe layout");
    // SAFETY: non-zero size; freed below.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!ptr.is_null(), "probe allocation");
    // SAFETY: `ptr` is IO_ALIGN bytes we own.
    let written = file.write_at(unsafe { std::slice::from_raw_parts(ptr, IO_ALIGN) }, 0);
    // SAFETY: allocated above with `layout`.
    unsafe { std::alloc::dealloc(ptr, layout) };
    let _ = std::fs::remove_file(&path);
    match written {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(e),
    }
}

impl Disk for UringDisk {
    fn root(&self) -> &Path {
        &self.root
    }

    fn direct_io(&self) -> bool {
        self.direct
    }

    fn open(&self, rel: &Path, create: bool) -> io::Result<Arc<dyn DiskFile>> {
        self.open_file(rel, create, self.direct)
    }

    fn open_buffered(&self, rel: &Path) -> io::Result<Arc<dyn DiskFile>> {
        self.open_file(rel, false, false)
    }

    fn peek(&self, rel: &Path, len: usize) -> io::Result<(Vec<u8>, u64)> {
        let file = File::open(self.path(rel))?;
        let size = file.metadata()?.len();
        let mut head = Vec::with_capacity(len);
        file.take(len as u64).read_to_end(&mut head)?;
        Ok((head, size))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(self.path(from), self.path(to))
    }

    fn remove(&self, rel: &Path) -> io::Result<()> {
        std::fs::remove_file(self.path(rel))
    }

    fn create_dir(&self, rel: &Path) -> io::Result<()> {
        match std::fs::create_dir(self.path(rel)) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    fn list_dir(&self, rel: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.path(rel))? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn sync_dir(&self, rel: &Path) -> io::Result<()> {
        File::open(self.path(rel))?.sync_all()
    }

    fn space(&self) -> io::Result<FsSpace> {
        let path = CString::new(self.root.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in folder path"))?;
        // SAFETY: statvfs fills the zeroed struct from a valid C string path.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let unit = st.f_frsize as u64;
        let root_only = (st.f_bfree as u64).saturating_sub(st.f_bavail as u64);
        Ok(FsSpace { total: unit * (st.f_blocks as u64).saturating_sub(root_only), avail: unit * st.f_bavail as u64 })
    }
}

struct UringFile {
    file: Arc<File>,
    direct: bool,
    ring: RingHandle,
}

impl DiskFile for UringFile {
    fn submit(&self, chain: Vec<IoReq>) -> Completion {
        self.ring.submit(self.file.clone(), self.direct, chain)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_size(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    /// `fallocate` (mode 0): the range becomes unwritten extents, so later
    /// O_DIRECT writes there neither extend the file nor allocate.
    fn allocate(&self, len: u64) -> io::Result<()> {
        let len = i64::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: plain syscall on an fd this file owns.
        match unsafe { libc::fallocate(self.file.as_raw_fd(), 0, 0, len) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}
