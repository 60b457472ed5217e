//! The start-up scan: find every chunk file in every folder.
//!
//! Folders are scanned in parallel, one thread each; inside a folder the 256
//! subfolders are read in order and progress is logged every 10 %. Names
//! that are not chunk files are reported as foreign; files whose size fits no
//! chunk layout or whose header names another chunk are reported as
//! damaged; a header whose version differs from the name's is served under
//! the name's version (an interrupted version change, see `chunk::load`). Nothing is ever deleted: an operator decides. When one chunk id
//! turns up twice, the higher version is served and the other reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::header::Header;
use crate::layout::{
    blocks_of_torn_file, geometry_from_file_size, parse_chunk_file_name, subfolder_name, ChunkId, Version, SUBFOLDERS,
};

use super::chunk::ChunkEntry;
use super::folder::Folder;
use super::Inner;

/// What the scan found besides good chunks.
#[derive(Debug, Default, Clone)]
pub struct ScanReport {
    /// Chunks registered.
    pub chunks: usize,
    /// Files that are not chunk files (left alone).
    pub foreign: Vec<PathBuf>,
    /// Chunk files refused, with the reason (left alone).
    pub damaged: Vec<(PathBuf, String)>,
    /// Lower-version copies of a chunk id found twice (left alone).
    pub duplicates: Vec<PathBuf>,
}

struct Found {
    id: ChunkId,
    version: Version,
    subfolder: usize,
    size: u64,
}

pub(crate) fn scan_all(inner: &Inner) -> Result<ScanReport> {
    let results: Vec<Result<(Vec<Found>, ScanReport)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = inner
            .folders
            .iter()
            .map(|folder| scope.spawn(move || scan_folder(folder, inner.config.verify_headers_at_scan)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Config("scan thread panicked".into()))))
            .collect()
    });
    let mut report = ScanReport::default();
    let mut chunks: HashMap<ChunkId, Arc<ChunkEntry>> = HashMap::new();
    let mut sizes: HashMap<ChunkId, u64> = HashMap::new();
    for (index, result) in results.into_iter().enumerate() {
        let (found, part) = result?;
        report.foreign.extend(part.foreign);
        report.damaged.extend(part.damaged);
        report.duplicates.extend(part.duplicates);
        let folder = &inner.folders[index];
        for chunk in found {
            let path = |f: &Folder, sub: usize, id, v| f.disk.root().join(super::chunk::rel_path(sub, id, v));
            if let Some(existing) = chunks.get(&chunk.id) {
                let kept = existing.version();
                if kept >= chunk.version {
                    report.duplicates.push(path(folder, chunk.subfolder, chunk.id, chunk.version));
                    continue;
                }
                let old_folder = &inner.folders[existing.folder];
                let old_sub = existing.state.try_read().map(|s| s.subfolder).unwrap_or(0);
                report.duplicates.push(path(old_folder, old_sub, chunk.id, kept));
                old_folder.placement().remove(old_sub);
                old_folder.sub_stored(sizes.get(&chunk.id).copied().unwrap_or(0));
            }
            folder.placement().add(chunk.subfolder);
            folder.add_stored(chunk.size);
            sizes.insert(chunk.id, chunk.size);
            chunks.insert(chunk.id, Arc::new(ChunkEntry::new(chunk.id, index, chunk.version, chunk.subfolder)));
        }
        folder.placement().restart();
    }
    for path in &report.foreign {
        tracing::warn!(file = %path.display(), "foreign file in data folder (left alone)");
    }
    for (path, why) in &report.damaged {
        tracing::warn!(file = %path.display(), "damaged chunk file (left alone): {why}");
    }
    for path in &report.duplicates {
        tracing::warn!(file = %path.display(), "older copy of a chunk found twice (left alone)");
    }
    report.chunks = chunks.len();
    *inner.chunks_write() = chunks;
    Ok(report)
}

fn scan_folder(folder: &Folder, verify_headers: bool) -> Result<(Vec<Found>, ScanReport)> {
    let disk = &folder.disk;
    let root = disk.root().to_path_buf();
    let mut found = Vec::new();
    let mut report = ScanReport::default();
    tracing::info!(folder = %root.display(), "scanning");
    for sub in 0..SUBFOLDERS {
        let name = subfolder_name(sub);
        if !folder.line.marked_for_removal {
            disk.create_dir(Path::new(&name)).map_err(|e| Error::io("create subfolder", root.join(&name), e))?;
        }
        let names = match disk.list_dir(Path::new(&name)) {
            Ok(names) => names,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("list subfolder", root.join(&name), e)),
        };
        for file in names {
            let rel = Path::new(&name).join(&file);
            let Some((id, version)) = parse_chunk_file_name(&file) else {
                report.foreign.push(root.join(&rel));
                continue;
            };
            match check_file(folder, &rel, id, version, verify_headers) {
                Ok(size) => found.push(Found { id, version, subfolder: sub, size }),
                Err(why) => report.damaged.push((root.join(&rel), why)),
            }
        }
        if (sub + 1) % 26 == 0 || sub + 1 == SUBFOLDERS {
            tracing::info!(
                folder = %root.display(),
                "scan {}% ({} chunks)",
                (sub + 1) * 100 / SUBFOLDERS,
                found.len()
            );
        }
    }
    // Subfolders just created must survive a power cut, or every chunk later
    // placed in them would vanish with them.
    if !folder.line.marked_for_removal {
        disk.sync_dir(Path::new("")).map_err(|e| Error::io("fsync data folder", &root, e))?;
    }
    // Within one folder, a chunk id found twice keeps the higher version.
    found.sort_by_key(|f| (f.id, std::cmp::Reverse(f.version)));
    let mut kept: Vec<Found> = Vec::with_capacity(found.len());
    for chunk in found {
        if kept.last().is_some_and(|k| k.id == chunk.id) {
            let rel = super::chunk::rel_path(chunk.subfolder, chunk.id, chunk.version);
            report.duplicates.push(root.join(rel));
        } else {
            kept.push(chunk);
        }
    }
    Ok((kept, report))
}

/// The file's size when it is a plausible chunk of `id` and `version`.
fn check_file(folder: &Folder, rel: &Path, id: ChunkId, version: Version, verify_header: bool) -> Result<u64, String> {
    let (head, size) =
        folder.disk.peek(rel, if verify_header { 20 } else { 0 }).map_err(|e| format!("cannot read: {e}"))?;
    if geometry_from_file_size(size).is_none() {
        if !verify_header || blocks_of_torn_file(size).is_none() {
            return Err(format!("file size {size} fits no chunk layout (truncated?)"));
        }
        // An extending write cut by a crash; repaired when first opened.
        tracing::warn!(file = %folder.disk.root().join(rel).display(), "file size {size} cut inside a block");
    }
    if verify_header {
        let header = Header::decode(&head).map_err(|fault| format!("bad header: {fault:?}"))?;
        if header.id != id {
            return Err(format!("header names chunk {}, file name {}", header.id, id));
        }
        if header.version != version {
            // A version change interrupted between rename and header rewrite:
            // the data is intact and the name is authoritative (see load).
            tracing::warn!(
                file = %folder.disk.root().join(rel).display(),
                "header has version {}, file name {}: serving the name's version",
                header.version,
                version
            );
        }
    }
    Ok(size)
}
