//! The bench's folders, created fresh and removed on the way out.
//!
//! `DIR/elkfs` is the engine's data folder and `DIR/fio` holds fio's files
//! and output. A marker file `DIR/.elkfs-bench` says the two are ours, so
//! leftovers of a killed run (SIGKILL skips every `Drop`) are removed at the
//! next start, while folders of the same name that the bench did not make
//! are refused rather than deleted.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const MARKER: &str = ".elkfs-bench";
/// `statfs` magic of tmpfs, which refuses O_DIRECT.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Owns the bench's folders; dropping it removes them.
pub struct WorkDirs {
    pub root: PathBuf,
    pub elkfs: PathBuf,
    pub fio: PathBuf,
    created_root: bool,
    /// The marker, locked while the bench runs: a second bench on the same
    /// folder would delete the first one's files under it.
    _lock: std::fs::File,
}

impl WorkDirs {
    pub fn create(root: &Path) -> Result<WorkDirs> {
        let created_root = !root.exists();
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        if is_tmpfs(root)? {
            if created_root {
                let _ = std::fs::remove_dir(root);
            }
            bail!("{} is on tmpfs, which refuses O_DIRECT: use a disk-backed folder such as /var/tmp", root.display());
        }
        let (elkfs, fio) = (root.join("elkfs"), root.join("fio"));
        let marker = root.join(MARKER);
        // Checked before the guard exists: a refusal must not remove anything.
        for dir in [&elkfs, &fio] {
            if dir.exists() && !marker.exists() {
                bail!("{} exists and was not made by the bench: remove it or pick another --dir", dir.display());
            }
        }
        let lock = lock_marker(&marker)?;
        let dirs = WorkDirs { root: root.to_path_buf(), elkfs, fio, created_root, _lock: lock };
        for dir in [&dirs.elkfs, &dirs.fio] {
            if dir.exists() {
                tracing::info!("removing {} left by an earlier run", dir.display());
                std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
            }
            std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(dirs)
    }
}

impl Drop for WorkDirs {
    fn drop(&mut self) {
        for dir in [&self.elkfs, &self.fio] {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("cannot remove {}: {e}", dir.display());
                }
            }
        }
        let _ = std::fs::remove_file(self.root.join(MARKER));
        if self.created_root {
            // Only if empty: anything else in it is not ours.
            let _ = std::fs::remove_dir(&self.root);
        }
    }
}

/// Creates the marker and takes an exclusive `flock` on it, or says that
/// another bench holds it.
fn lock_marker(marker: &Path) -> Result<std::fs::File> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(marker)
        .with_context(|| format!("opening {}", marker.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        bail!("another elkfs bench is running in {} ({err})", marker.parent().unwrap_or(marker).display());
    }
    file.write_all(b"elkfs bench work folder\n").with_context(|| format!("writing {}", marker.display()))?;
    Ok(file)
}

fn is_tmpfs(path: &Path) -> Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("path {} has a NUL byte", path.display()))?;
    // SAFETY: statfs fills the struct we pass; zeroed is a valid statfs.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a pointer to a live statfs.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("statfs {}", path.display()));
    }
    #[allow(clippy::unnecessary_cast)] // f_type is i64 on x86_64, other widths elsewhere
    Ok(stat.f_type as i64 == TMPFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_made_and_removed() {
        let parent = tempfile::Builder::new().prefix("elkfs-workdir").tempdir_in("/var/tmp").unwrap();
        let root = parent.path().join("bench");
        {
            let dirs = WorkDirs::create(&root).unwrap();
            std::fs::write(dirs.fio.join("f"), b"x").unwrap();
            assert!(dirs.elkfs.is_dir());
        }
        assert!(!root.exists(), "a root the bench made is removed");
    }

    #[test]
    fn one_bench_per_folder() {
        let parent = tempfile::Builder::new().prefix("elkfs-workdir").tempdir_in("/var/tmp").unwrap();
        let first = WorkDirs::create(parent.path()).unwrap();
        let err = WorkDirs::create(parent.path()).err().unwrap().to_string();
        assert!(err.contains("another elkfs bench"), "{err}");
        assert!(first.elkfs.is_dir(), "the refused second bench removed nothing");
    }

    #[test]
    fn foreign_folders_are_refused() {
        let parent = tempfile::Builder::new().prefix("elkfs-workdir").tempdir_in("/var/tmp").unwrap();
        std::fs::create_dir(parent.path().join("elkfs")).unwrap();
        let err = WorkDirs::create(parent.path()).err().unwrap().to_string();
        assert!(err.contains("not made by the bench"), "{err}");
        assert!(parent.path().join("elkfs").exists());
    }
}
