//! Chunk writes, lengths, truncation, locks, trash and open files.

use super::*;

#[test]
fn write_new_and_existing_chunks() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let f = file(&mut m, ROOT, "f");
    let p = m.write_chunk(7, f, 2, 100).unwrap();
    assert_eq!((p.version, p.prev_version, p.file_length), (1, None, 2 * CHUNK_SIZE));
    let info = m.chunk(p.chunk).unwrap();
    assert_eq!((info.version, info.locked_until, info.refs, info.goal), (1, 220, 1, 1));
    assert_eq!(m.read_chunk(f, 0).unwrap(), (2 * CHUNK_SIZE, None));
    assert_eq!(m.read_chunk(f, 2).unwrap(), (2 * CHUNK_SIZE, Some((p.chunk, 1))));
    // Locked until the lease ends or the writer finishes.
    assert_eq!(m.write_chunk(8, f, 2, 200), Err(Status::LOCKED));
    m.write_chunk_end(f, p.chunk, 2 * CHUNK_SIZE + 10, 150).unwrap();
    assert_eq!(m.chunk(p.chunk).unwrap().locked_until, 0);
    let a = m.getattr(f).unwrap();
    assert_eq!((a.size, a.mtime, a.ctime), (2 * CHUNK_SIZE + 10, 150, 150));
    let q = m.write_chunk(8, f, 2, 200).unwrap();
    assert_eq!((q.chunk, q.version, q.prev_version), (p.chunk, 2, Some(1)));
    // A lease that ran out is free.
    let r = m.write_chunk(9, f, 2, 400).unwrap();
    assert_eq!(r.version, 3);
    m.unlock_chunk(p.chunk, 401).unwrap();
    assert_eq!(m.chunk(p.chunk).unwrap().locked_until, 0);
    // A shorter reported length does not shrink the file.
    m.write_chunk_end(f, p.chunk, 5, 402).unwrap();
    assert_eq!(m.getattr(f).unwrap().size, 2 * CHUNK_SIZE + 10);
    assert_eq!(m.file_chunks(f).unwrap(), vec![(0, 0), (0, 0), (p.chunk, 3)]);
    check_replay(&base, &mut m);
}

#[test]
fn write_errors() {
    let mut m = fs();
    let f = file(&mut m, ROOT, "f");
    let d = dir(&mut m, ROOT, "d");
    assert_eq!(m.write_chunk(1, f, MAX_INDEX + 1, 0), Err(Status::INDEXTOOBIG));
    assert_eq!(m.read_chunk(f, MAX_INDEX + 1), Err(Status::INDEXTOOBIG));
    assert_eq!(m.write_chunk(1, d, 0, 0), Err(Status::EPERM));
    assert_eq!(m.write_chunk(1, 999, 0, 0), Err(Status::ENOENT));
    assert_eq!(m.write_chunk_end(f, 77, 0, 0), Err(Status::NOCHUNK));
    assert_eq!(m.unlock_chunk(77, 0), Err(Status::NOCHUNK));
    assert_eq!(m.file_chunks(d), Err(Status::EPERM));
}

#[test]
fn failed_new_chunk_is_rolled_back() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let f = file(&mut m, ROOT, "f");
    let p = m.write_chunk(1, f, 0, 100).unwrap();
    m.write_chunk_failed(f, 0, p.chunk, 101);
    assert_eq!(m.read_chunk(f, 0).unwrap().1, None);
    assert_eq!(m.chunk(p.chunk), None);
    assert_eq!(m.take_released(), vec![p.chunk]);
    let q = m.write_chunk(1, f, 0, 102).unwrap();
    assert_ne!(q.chunk, p.chunk, "chunk ids are not reused");
    let v = m.version();
    m.write_chunk_failed(f, 0, p.chunk, 103);
    assert_eq!(m.version(), v, "a stale rollback does nothing");
    check_replay(&base, &mut m);
}

#[test]
fn a_bump_no_chunkserver_took_is_reverted() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let f = file(&mut m, ROOT, "f");
    let p = m.write_chunk(1, f, 0, 100).unwrap();
    m.write_chunk_end(f, p.chunk, 10, 100).unwrap();
    let bump = m.write_chunk(1, f, 0, 101).unwrap();
    assert_eq!((bump.prev_version, bump.version), (Some(1), 2));
    m.write_chunk_reverted(p.chunk, 1, 102);
    let info = m.chunk(p.chunk).unwrap();
    assert_eq!((info.version, info.locked_until), (1, 0), "back to the version the copies hold, unlocked");
    let v = m.version();
    m.write_chunk_reverted(p.chunk, 1, 103);
    assert_eq!(m.version(), v, "a second revert does nothing");
    assert_eq!(m.write_chunk(1, f, 0, 104).unwrap().version, 2, "the next write bumps from there");
    check_replay(&base, &mut m);
}

#[test]
fn truncate_versions_and_releases() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let f = file(&mut m, ROOT, "f");
    let mut ids = Vec::new();
    for i in 0..3 {
        let p = m.write_chunk(1, f, i, 100).unwrap();
        m.write_chunk_end(f, p.chunk, u64::from(i + 1) * CHUNK_SIZE, 101).unwrap();
        ids.push(p.chunk);
    }
    let ctx = Ctx::root(200);
    // Shrink into chunk 1: chunk 2 goes, chunk 1 gets a new version.
    let t = m.truncate(&ctx, f, CHUNK_SIZE + 1000, false).unwrap();
    assert_eq!(t.prev_length, 3 * CHUNK_SIZE);
    assert_eq!(t.boundary, Some((ids[1], 1, 2, 1000)));
    assert_eq!((t.attr.size, t.attr.mtime), (CHUNK_SIZE + 1000, 200));
    assert_eq!(m.take_released(), vec![ids[2]]);
    assert_eq!(m.chunk(ids[1]).unwrap().version, 2);
    // Growing with the end in a hole touches no chunk.
    let t = m.truncate(&ctx, f, 5 * CHUNK_SIZE + 1, true).unwrap();
    assert_eq!(t.boundary, None);
    // Down to a chunk border: no boundary chunk, chunk 1 goes.
    let t = m.truncate(&ctx, f, CHUNK_SIZE, true).unwrap();
    assert_eq!(t.boundary, None);
    assert_eq!(m.take_released(), vec![ids[1]]);
    // Same length: nothing to truncate on chunkservers.
    let t = m.truncate(&ctx, f, CHUNK_SIZE, true).unwrap();
    assert_eq!(t.boundary, None);
    // A locked boundary chunk refuses.
    m.write_chunk(1, f, 0, 300).unwrap();
    assert_eq!(m.truncate(&Ctx::root(301), f, 10, true).map(|_| ()), Err(Status::LOCKED));
    assert_eq!(m.truncate(&ctx, ROOT, 0, true).map(|_| ()), Err(Status::EPERM));
    check_replay(&base, &mut m);
}

#[test]
fn trash_then_purge_releases_chunks() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let d = dir(&mut m, ROOT, "d");
    let f = file(&mut m, d, "f");
    let p = m.write_chunk(1, f, 0, 2000).unwrap();
    m.write_chunk_end(f, p.chunk, 10, 2000).unwrap();
    m.unlink(&root(), d, b"f").unwrap();
    assert_eq!(m.trash_list(), vec![(f, b"d/f".to_vec())]);
    assert!(m.take_released().is_empty(), "trashed files keep their chunks");
    // A file removed while open is still written through its inode.
    let q = m.write_chunk(1, f, 1, 2000).unwrap();
    m.write_chunk_end(f, q.chunk, CHUNK_SIZE + 1, 2000).unwrap();
    assert_eq!(m.truncate(&root(), f, 10, true).unwrap().prev_length, CHUNK_SIZE + 1);
    assert_eq!(m.take_released(), vec![q.chunk]);
    assert_eq!(m.purge(f + 100, 2000), Err(Status::ENOENT));
    assert_eq!(m.purge_trash(2000 + DEFAULT_TRASHTIME - 1), 0);
    assert_eq!(m.purge_trash(2000 + DEFAULT_TRASHTIME), 1);
    assert!(m.trash_list().is_empty());
    assert_eq!(m.take_released(), vec![p.chunk]);
    assert_eq!(m.stats().chunks, 0);
    // Trash time 0 deletes at once.
    let g = file(&mut m, d, "g");
    m.set_trashtime(&root(), g, 0, false, SetMode::Set).unwrap();
    let q = m.write_chunk(1, g, 0, 2000).unwrap();
    m.unlink(&root(), d, b"g").unwrap();
    assert!(m.trash_list().is_empty());
    assert_eq!(m.take_released(), vec![q.chunk]);
    check_replay(&base, &mut m);
}

#[test]
fn replaced_by_rename_releases_without_trash() {
    let mut m = fs();
    let a = file(&mut m, ROOT, "a");
    let b = file(&mut m, ROOT, "b");
    m.set_trashtime(&root(), b, 0, false, SetMode::Set).unwrap();
    let p = m.write_chunk(1, b, 0, 2000).unwrap();
    m.rename(&root(), ROOT, b"a", ROOT, b"b").unwrap();
    assert_eq!(m.take_released(), vec![p.chunk]);
    assert_eq!(m.lookup(&root(), ROOT, b"b").unwrap().0, a);
}

#[test]
fn chunk_scan_is_ordered() {
    let mut m = fs();
    let f = file(&mut m, ROOT, "f");
    let ids: Vec<u64> = (0..5).map(|i| m.write_chunk(1, f, i, 0).unwrap().chunk).collect();
    let got: Vec<u64> = m.chunks_from(ids[1], 3).into_iter().map(|(id, _)| id).collect();
    assert_eq!(got, ids[1..4]);
    assert!(m.chunks_from(ids[4] + 1, 10).is_empty());
}

#[test]
fn open_files_outlive_their_removal() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let (s1, _) = m.new_session(b"a", b"/", 2000).unwrap();
    let (s2, _) = m.new_session(b"b", b"/", 2000).unwrap();
    let f = file(&mut m, ROOT, "f");
    m.set_trashtime(&root(), f, 0, false, SetMode::Set).unwrap();
    let p = m.write_chunk(s1, f, 0, 2000).unwrap();
    m.open(s1, f, 2000).unwrap();
    m.open(s2, f, 2000).unwrap();
    let v = m.version();
    m.open(s1, f, 2000).unwrap();
    assert_eq!(m.version(), v, "a second open by the same session logs nothing");
    assert_eq!(m.open(99, f, 2000), Err(Status::BADSESSIONID));
    m.unlink(&root(), ROOT, b"f").unwrap();
    assert_eq!(m.sustained(), vec![f]);
    assert!(m.take_released().is_empty());
    m.write_chunk_end(f, p.chunk, 10, 2001).unwrap();
    assert_eq!(m.getattr(f).unwrap().size, 10);
    assert_eq!(m.stats().sustained_files, 1);
    m.release(s1, f, 2002);
    assert_eq!(m.sustained(), vec![f], "still open in the other session");
    // The client's periodic list drops the file: the last opener is gone.
    m.sync_open(s2, &[], 2003).unwrap();
    assert!(m.sustained().is_empty());
    assert_eq!(m.getattr(f), Err(Status::ENOENT));
    assert_eq!(m.take_released(), vec![p.chunk]);
    // Closing a session releases its files; purging an open trashed file sustains it.
    let g = file(&mut m, ROOT, "g");
    m.sync_open(s2, &[g, 999], 2004).unwrap();
    assert!(m.is_open(g));
    m.unlink(&root(), ROOT, b"g").unwrap();
    m.purge(g, 2005).unwrap();
    assert_eq!(m.sustained(), vec![g]);
    check_replay(&base, &mut m);
    m.close_session(s2, 2006).unwrap();
    assert!(m.sustained().is_empty() && !m.is_open(g));
    assert_eq!(m.getattr(g), Err(Status::ENOENT));
}

#[test]
fn undel_restores_the_path() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let a = dir(&mut m, ROOT, "a");
    let b = dir(&mut m, a, "b");
    let f = file(&mut m, b, "f");
    let p = m.write_chunk(1, f, 0, 2000).unwrap();
    m.unlink(&root(), b, b"f").unwrap();
    assert_eq!(m.undel(ROOT, 2000), Err(Status::ENOENT));
    // The directories went away meanwhile: undel builds them again.
    m.rmdir(&root(), a, b"b").unwrap();
    m.rmdir(&root(), ROOT, b"a").unwrap();
    m.undel(f, 2001).unwrap();
    let a2 = m.resolve(b"/a").unwrap();
    let f2 = m.resolve(b"/a/b/f").unwrap();
    assert_eq!(f2, f);
    assert_eq!(m.getattr(a2).unwrap().mode, 0o755);
    assert_eq!(m.getattr(f).unwrap().nlink, 1);
    assert_eq!(m.read_chunk(f, 0).unwrap().1, Some((p.chunk, 1)));
    assert!(m.trash_list().is_empty());
    // A taken name refuses; a changed path restores elsewhere; a bad path refuses.
    let b2 = m.resolve(b"/a/b").unwrap();
    m.unlink(&root(), b2, b"f").unwrap();
    file(&mut m, b2, "f");
    assert_eq!(m.undel(f, 2002), Err(Status::EEXIST));
    m.set_trash_path(f, b"a/g", 2002).unwrap();
    assert_eq!(m.trash_list(), vec![(f, b"a/g".to_vec())]);
    m.undel(f, 2003).unwrap();
    assert_eq!(m.resolve(b"/a/g").unwrap(), f);
    m.unlink(&root(), a2, b"g").unwrap();
    m.set_trash_path(f, b"a/b/f/x", 2004).unwrap();
    assert_eq!(m.undel(f, 2004), Err(Status::CANTCREATEPATH));
    m.set_trash_path(f, b"a/../x", 2004).unwrap();
    assert_eq!(m.undel(f, 2004), Err(Status::CANTCREATEPATH));
    assert_eq!(m.set_trash_path(ROOT, b"x", 2004), Err(Status::ENOENT));
    check_replay(&base, &mut m);
}
