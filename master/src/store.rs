//! The master's data folder: which snapshot and changelogs make up the
//! metadata, loading them at start, writing snapshots while serving.
//!
//! Files (all in `DATA_PATH`):
//! - `metadata.mfs.back`: the newest snapshot ([`Meta::write_snapshot`]);
//!   `metadata.mfs.back.1…N` the ones before it (`BACK_META_KEEP_PREVIOUS`).
//!   A snapshot is written to `metadata.mfs.tmp`, fsynced, then renamed, so
//!   a crash leaves either the old or the new one whole.
//! - `changelog.N.mfs`: see [`crate::changelog`].
//! - `metadata.mfs` holding `MFSM NEW`: the operator's "start a new file
//!   system" marker, as for mfsmaster. Any other `metadata.mfs` is a
//!   MooseFS snapshot, which elkfs cannot read: refused with a message.
//! - A metalogger's files (`metadata_ml.mfs.back*`, `changelog_ml*.mfs`)
//!   are read too, so a master started on a metalogger's folder comes up
//!   with everything the metalogger received.
//!
//! Loading takes the newest snapshot that reads back whole, then every
//! changelog entry after it from all changelog files (deduplicated by
//! version), in version order, stopping at the first gap or at a record
//! that does not apply. What was dropped is reported, never silently.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::changelog::{self, sync_dir};
use crate::error::{Error, Result};
use crate::meta::{Meta, Record};

pub const SNAPSHOT: &str = "metadata.mfs.back";
const SNAPSHOT_TMP: &str = "metadata.mfs.tmp";
const NEW_MARKER: &[u8] = b"MFSM NEW";

/// The state loaded at start and what loading had to leave out.
pub struct Loaded {
    pub meta: Meta,
    pub fresh: bool,
    pub replayed: u64,
    pub warnings: Vec<String>,
}

/// Loads the metadata in `dir`, or starts a new file system when the
/// folder holds none (empty, or only the `MFSM NEW` marker).
pub fn load(dir: &Path, now: u32) -> Result<Loaded> {
    let mut warnings = Vec::new();
    let files = list(dir)?;
    let marker = dir.join("metadata.mfs");
    let has_marker = match std::fs::read(&marker) {
        Ok(bytes) if bytes.starts_with(NEW_MARKER) => true,
        Ok(bytes) if bytes.starts_with(b"MFSM") => {
            return Err(Error::Metadata {
                path: marker,
                why: "this is a MooseFS metadata file; elkfs keeps its own format and cannot load it \
                      (start elkfs on an empty DATA_PATH, or one holding `MFSM NEW`)"
                    .into(),
            })
        }
        Ok(_) => return Err(Error::Metadata { path: marker, why: "not a metadata file".into() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io(format!("read {}", marker.display()), e)),
    };
    let mut meta = None;
    for path in &files.snapshots {
        match read_snapshot(path) {
            Ok(m) if meta.as_ref().is_none_or(|best: &Meta| m.version() > best.version()) => meta = Some(m),
            Ok(_) => {}
            Err(e) => warnings.push(format!("snapshot skipped: {e}")),
        }
    }
    let mut entries: BTreeMap<u64, String> = BTreeMap::new();
    for path in &files.changelogs {
        let read = changelog::read_file(path)?;
        if let Some((why, bytes)) = read.dropped {
            warnings.push(format!("changelog tail dropped ({bytes} bytes): {why}"));
        }
        entries.extend(read.entries);
    }
    let fresh = meta.is_none();
    let mut meta = match meta {
        Some(meta) => meta,
        None if files.snapshots.is_empty() && (entries.is_empty() || entries.contains_key(&1)) => {
            if !has_marker && !entries.is_empty() {
                warnings.push("no snapshot: rebuilding from the changelogs alone".into());
            }
            Meta::new_fs(rand::random::<u64>() | 1, now)
        }
        None => {
            return Err(Error::Metadata {
                path: dir.to_path_buf(),
                why: "no snapshot could be read and the changelogs do not start at version 1".into(),
            })
        }
    };
    let mut replayed = 0;
    for (version, text) in entries.range(meta.version() + 1..) {
        if *version != meta.version() + 1 {
            warnings.push(format!("changelog gap: have up to {}, next entry is {version}; stopped", meta.version()));
            break;
        }
        let applied = Record::parse(text)
            .map_err(|e| e.to_string())
            .and_then(|rec| meta.replay(*version, &rec).map_err(|e| e.to_string()));
        if let Err(why) = applied {
            warnings.push(format!("changelog entry {version} does not apply ({why}): {text:?}; stopped"));
            break;
        }
        replayed += 1;
    }
    let dropped_after = entries.range(meta.version() + 1..).count();
    if dropped_after > 0 {
        warnings.push(format!("{dropped_after} changelog entries after version {} were not applied", meta.version()));
    }
    Ok(Loaded { meta, fresh, replayed, warnings })
}

struct Files {
    snapshots: Vec<PathBuf>,
    changelogs: Vec<PathBuf>,
}

fn list(dir: &Path) -> Result<Files> {
    let mut files = Files { snapshots: Vec::new(), changelogs: Vec::new() };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("metadata.mfs.back") || name.starts_with("metadata_ml.mfs.back") {
            files.snapshots.push(entry.path());
        } else if name.starts_with("changelog") && name.ends_with(".mfs") {
            files.changelogs.push(entry.path());
        }
    }
    files.snapshots.sort();
    files.changelogs.sort();
    Ok(files)
}

fn read_snapshot(path: &Path) -> Result<Meta> {
    let file = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    Meta::read_snapshot(&mut BufReader::new(file))
        .map_err(|e| Error::Metadata { path: path.to_path_buf(), why: e.to_string() })
}

/// Writes `bytes` (a serialised snapshot) as the newest snapshot, keeping
/// `keep` older ones. Blocking: run it off the async runtime.
pub fn write_snapshot(dir: &Path, bytes: &[u8], keep: u32) -> Result<()> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let io = |what: &str, e| Error::io(format!("{what} {}", tmp.display()), e);
    let file = File::create(&tmp).map_err(|e| io("create", e))?;
    let mut w = BufWriter::new(file);
    w.write_all(bytes).map_err(|e| io("write", e))?;
    let file = w.into_inner().map_err(|e| io("write", e.into_error()))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    let name = |n: u32| if n == 0 { dir.join(SNAPSHOT) } else { dir.join(format!("{SNAPSHOT}.{n}")) };
    let _ = std::fs::remove_file(name(keep + 1));
    for n in (0..=keep).rev() {
        if n < keep && name(n).exists() {
            std::fs::rename(name(n), name(n + 1)).map_err(|e| Error::io("rotate snapshot", e))?;
        }
    }
    std::fs::rename(&tmp, name(0)).map_err(|e| io("rename", e))?;
    sync_dir(dir)
}

/// Serialises `meta` for [`write_snapshot`]; quick enough to run under the
/// namespace lock (a memory copy), so the file itself is written unlocked.
pub fn snapshot_bytes(meta: &Meta) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = meta.write_snapshot(&mut out);
    out
}

/// Holds `DATA_PATH/.mfsmaster.lock` (flock) so a second master on the same
/// folder refuses to start instead of interleaving changelogs.
pub struct DirLock(#[allow(dead_code)] File);

pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    use std::os::fd::AsRawFd;
    let path = dir.join(".mfsmaster.lock");
    let file = File::create(&path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Error::Metadata { path, why: "another master is running on this folder".into() });
    }
    Ok(DirLock(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{Ctx, ROOT};

    fn changes(meta: &mut Meta, names: &[&str]) -> String {
        for name in names {
            meta.mkdir(&Ctx::root(1000), ROOT, name.as_bytes(), 0o755, 0, false).unwrap();
        }
        meta.drain_log().into_iter().map(|(v, r)| format!("{v}: {}\n", r.to_text())).collect()
    }

    #[test]
    fn empty_folder_or_marker_starts_a_new_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(dir.path(), 5).unwrap();
        assert!(loaded.fresh && loaded.meta.version() == 0 && loaded.warnings.is_empty());
        std::fs::write(dir.path().join("metadata.mfs"), "MFSM NEW").unwrap();
        assert!(load(dir.path(), 5).unwrap().fresh);
    }

    #[test]
    fn moosefs_metadata_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metadata.mfs"), b"MFSM 2.0\0\0\0").unwrap();
        let err = load(dir.path(), 5).err().expect("refused").to_string();
        assert!(err.contains("MooseFS metadata"), "{err}");
    }

    #[test]
    fn snapshot_plus_changelogs_replay_and_a_torn_tail_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = Meta::new_fs(77, 1000);
        let before = changes(&mut meta, &["a"]);
        write_snapshot(dir.path(), &snapshot_bytes(&meta), 1).unwrap();
        let after = changes(&mut meta, &["b", "c"]);
        // Entries already in the snapshot may be in an older changelog too.
        std::fs::write(dir.path().join("changelog.1.mfs"), before).unwrap();
        std::fs::write(dir.path().join("changelog.0.mfs"), format!("{after}4: 1000|MKD")).unwrap();
        let loaded = load(dir.path(), 2000).unwrap();
        assert_eq!((loaded.meta.version(), loaded.replayed, loaded.meta.metaid()), (3, 2, 77));
        for name in ["a", "b", "c"] {
            assert!(loaded.meta.lookup(&Ctx::root(2000), ROOT, name.as_bytes()).is_ok(), "{name}");
        }
        assert!(loaded.warnings.iter().any(|w| w.contains("dropped")), "{:?}", loaded.warnings);
        assert_eq!(snapshot_bytes(&loaded.meta), snapshot_bytes(&meta));
    }

    #[test]
    fn a_gap_stops_replay_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = Meta::new_fs(9, 1000);
        write_snapshot(dir.path(), &snapshot_bytes(&meta), 1).unwrap();
        let log = changes(&mut meta, &["a", "b", "c"]);
        let kept: String = log.lines().filter(|l| !l.starts_with("2: ")).map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.path().join("changelog.0.mfs"), kept).unwrap();
        let loaded = load(dir.path(), 2000).unwrap();
        assert_eq!(loaded.meta.version(), 1);
        assert!(
            loaded.warnings.iter().any(|w| w.contains("does not follow") || w.contains("gap")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn a_second_master_on_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _held = lock_dir(dir.path()).unwrap();
        assert!(lock_dir(dir.path()).is_err());
    }
}
