//! Namespace operations: success and error cases, permissions, links, renames.

use super::*;
use crate::meta::namespace::{SET_ATIME, SET_GID, SET_MODE, SET_MTIME_NOW, SET_UID};

#[test]
fn create_kinds_and_attrs() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let ctx = Ctx { uid: 5, gids: vec![6, 7], now: 3000 };
    m.setattr(&root(), ROOT, SET_MODE, 0o777, 0, 0, 0, 0).unwrap();
    let (f, a) = m.mknod(&ctx, ROOT, b"f", NodeType::File, 0o666, 0o022, 0).unwrap();
    assert_eq!((a.kind, a.mode, a.uid, a.gid, a.nlink, a.size, a.ctime), (NodeType::File, 0o644, 5, 6, 1, 0, 3000));
    let (_, a) = m.mknod(&ctx, ROOT, b"dev", NodeType::CharDev, 0o600, 0, 0x0102_0003).unwrap();
    assert_eq!(a.size, 0x0102_0003);
    let (_, a) = m.mknod(&ctx, ROOT, b"fifo", NodeType::Fifo, 0o600, 0, 99).unwrap();
    assert_eq!(a.size, 0);
    let (d, a) = m.mkdir(&ctx, ROOT, b"d", 0o777, 0o002, false).unwrap();
    assert_eq!((a.kind, a.mode, a.nlink), (NodeType::Dir, 0o775, 2));
    assert_eq!(m.getattr(ROOT).unwrap().nlink, 3);
    let (s, a) = m.symlink(&ctx, d, b"s", b"../f").unwrap();
    assert_eq!((a.kind, a.mode, a.size), (NodeType::Symlink, 0o777, 4));
    assert_eq!(m.readlink(s).unwrap(), b"../f");
    assert_eq!(m.readlink(f), Err(Status::EINVAL));
    assert!(f > ROOT && d > f && s > d, "inodes are allocated in order");
    assert_eq!(m.get_goal(f).unwrap(), DEFAULT_GOAL);
    assert_eq!(m.get_trashtime(f).unwrap(), DEFAULT_TRASHTIME);
    check_replay(&base, &mut m);
}

#[test]
fn create_errors() {
    let mut m = fs();
    let f = file(&mut m, ROOT, "f");
    let r = root();
    assert_eq!(m.mknod(&r, ROOT, b"f", NodeType::File, 0o644, 0, 0), Err(Status::EEXIST));
    assert_eq!(m.mkdir(&r, ROOT, b"f", 0o755, 0, false), Err(Status::EEXIST));
    assert_eq!(m.mknod(&r, f, b"x", NodeType::File, 0o644, 0, 0), Err(Status::ENOTDIR));
    assert_eq!(m.mknod(&r, 999, b"x", NodeType::File, 0o644, 0, 0), Err(Status::ENOENT));
    assert_eq!(m.mknod(&r, ROOT, b"d", NodeType::Dir, 0o644, 0, 0), Err(Status::EINVAL));
    for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b", &[b'n'; 256]] {
        assert_eq!(m.mknod(&r, ROOT, bad, NodeType::File, 0o644, 0, 0), Err(Status::EINVAL));
    }
    assert_eq!(m.symlink(&r, ROOT, b"s", b""), Err(Status::EINVAL));
    // Errors log nothing.
    assert_eq!(m.drain_log().len(), 1);
}

#[test]
fn permissions_of_another_user() {
    let mut m = fs();
    let d = m.mkdir(&root(), ROOT, b"d", 0o755, 0, false).unwrap().0;
    let f = file(&mut m, d, "f");
    let u = user(100);
    assert_eq!(m.mknod(&u, d, b"x", NodeType::File, 0o644, 0, 0), Err(Status::EACCES));
    assert_eq!(m.unlink(&u, d, b"f"), Err(Status::EACCES));
    assert_eq!(m.access(&u, f, 4), Ok(()));
    assert_eq!(m.access(&u, f, 2), Err(Status::EACCES));
    assert_eq!(m.truncate(&u, f, 10, false).map(|_| ()), Err(Status::EACCES));
    let closed = m.mkdir(&root(), ROOT, b"closed", 0o700, 0, false).unwrap().0;
    assert_eq!(m.lookup(&u, closed, b"x"), Err(Status::EACCES));
    assert_eq!(m.readdir(&u, closed).map(|_| ()), Err(Status::EACCES));
    assert_eq!(m.lookup(&u, d, b"f").unwrap().0, f);
    // Group membership grants the group bits.
    m.setattr(&root(), d, SET_GID | SET_MODE, 0o775, 0, 100, 0, 0).unwrap();
    assert_eq!(m.mknod(&u, d, b"x", NodeType::File, 0o644, 0, 0).map(|_| ()), Ok(()));
}

#[test]
fn sticky_directory() {
    let mut m = fs();
    let t = m.mkdir(&root(), ROOT, b"tmp", 0o1777, 0, false).unwrap().0;
    m.mknod(&user(100), t, b"mine", NodeType::File, 0o644, 0, 0).unwrap();
    assert_eq!(m.unlink(&user(101), t, b"mine"), Err(Status::EPERM));
    assert_eq!(m.rename(&user(101), t, b"mine", t, b"x").map(|_| ()), Err(Status::EPERM));
    m.mknod(&user(101), t, b"theirs", NodeType::File, 0o644, 0, 0).unwrap();
    assert_eq!(m.rename(&user(100), t, b"mine", t, b"theirs").map(|_| ()), Err(Status::EPERM));
    assert!(m.unlink(&user(100), t, b"mine").is_ok());
    assert!(m.unlink(&root(), t, b"theirs").is_ok());
}

#[test]
fn hard_links_and_nlink() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let d = dir(&mut m, ROOT, "d");
    let f = file(&mut m, ROOT, "f");
    assert_eq!(m.link(&root(), f, d, b"g").unwrap().nlink, 2);
    assert_eq!(m.lookup(&root(), d, b"g").unwrap().0, f);
    assert_eq!(m.link(&root(), d, ROOT, b"d2"), Err(Status::EPERM));
    assert_eq!(m.link(&root(), f, d, b"g"), Err(Status::EEXIST));
    assert_eq!(m.link(&root(), 999, d, b"h"), Err(Status::ENOENT));
    assert_eq!(m.unlink(&root(), ROOT, b"f").unwrap(), f);
    assert_eq!(m.getattr(f).unwrap().nlink, 1);
    assert!(m.trash_list().is_empty(), "a file with links left is not trashed");
    m.unlink(&root(), d, b"g").unwrap();
    assert_eq!(m.trash_list(), vec![(f, b"d/g".to_vec())]);
    assert_eq!(m.getattr(f).unwrap().nlink, 0, "still reachable by inode, as an open file is");
    check_replay(&base, &mut m);
}

#[test]
fn unlink_and_rmdir() {
    let mut m = fs();
    let d = dir(&mut m, ROOT, "d");
    file(&mut m, d, "f");
    let r = root();
    assert_eq!(m.unlink(&r, ROOT, b"d"), Err(Status::EPERM));
    assert_eq!(m.unlink(&r, ROOT, b"nope"), Err(Status::ENOENT));
    assert_eq!(m.rmdir(&r, ROOT, b"d"), Err(Status::ENOTEMPTY));
    assert_eq!(m.rmdir(&r, d, b"f"), Err(Status::ENOTDIR));
    assert_eq!(m.rmdir(&r, ROOT, b"."), Err(Status::EINVAL));
    assert_eq!(m.rmdir(&r, ROOT, b".."), Err(Status::ENOTEMPTY));
    m.unlink(&r, d, b"f").unwrap();
    assert_eq!(m.getattr(ROOT).unwrap().nlink, 3);
    assert_eq!(m.rmdir(&r, ROOT, b"d").unwrap(), d);
    assert_eq!(m.getattr(ROOT).unwrap().nlink, 2);
    assert_eq!(m.getattr(d), Err(Status::ENOENT));
    assert_eq!(m.stats().dirs, 1);
}

#[test]
fn rename_cases() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let r = root();
    let a = dir(&mut m, ROOT, "a");
    let b = dir(&mut m, a, "b");
    let f = file(&mut m, ROOT, "f");
    let g = file(&mut m, ROOT, "g");
    // Into its own subtree, or onto itself as a parent.
    assert_eq!(m.rename(&r, ROOT, b"a", b, b"x").map(|_| ()), Err(Status::EINVAL));
    assert_eq!(m.rename(&r, ROOT, b"a", a, b"x").map(|_| ()), Err(Status::EINVAL));
    // Kind mismatches and non-empty targets.
    assert_eq!(m.rename(&r, ROOT, b"f", ROOT, b"a").map(|_| ()), Err(Status::EPERM));
    assert_eq!(m.rename(&r, a, b"b", ROOT, b"f").map(|_| ()), Err(Status::ENOTDIR));
    let e = dir(&mut m, ROOT, "e");
    file(&mut m, e, "x");
    assert_eq!(m.rename(&r, a, b"b", ROOT, b"e").map(|_| ()), Err(Status::ENOTEMPTY));
    assert_eq!(m.rename(&r, ROOT, b"nope", ROOT, b"x").map(|_| ()), Err(Status::ENOENT));
    // A file replaces a file; the replaced one goes to the trash.
    assert_eq!(m.rename(&r, ROOT, b"f", ROOT, b"g").unwrap().0, f);
    assert_eq!(m.lookup(&r, ROOT, b"g").unwrap().0, f);
    assert_eq!(m.trash_list(), vec![(g, b"g".to_vec())]);
    // A directory moves to another parent: nlinks and ".." follow.
    m.rename(&r, a, b"b", e, b"b2").unwrap();
    assert_eq!(m.getattr(a).unwrap().nlink, 2);
    assert_eq!(m.getattr(e).unwrap().nlink, 3);
    assert_eq!(m.lookup(&r, b, b"..").unwrap().0, e);
    // A directory replaces an empty directory.
    let empty = dir(&mut m, ROOT, "empty");
    m.rename(&r, e, b"b2", ROOT, b"empty").unwrap();
    assert_eq!(m.getattr(empty), Err(Status::ENOENT));
    assert_eq!(m.lookup(&r, ROOT, b"empty").unwrap().0, b);
    // Renaming onto another link of the same file does nothing.
    m.link(&r, f, ROOT, b"f2").unwrap();
    let before = m.version();
    m.rename(&r, ROOT, b"g", ROOT, b"f2").unwrap();
    assert_eq!(m.version(), before);
    assert_eq!(m.getattr(f).unwrap().nlink, 2);
    check_replay(&base, &mut m);
}

#[test]
fn rename_needs_write_on_moved_dir() {
    let mut m = fs();
    m.setattr(&root(), ROOT, SET_MODE, 0o777, 0, 0, 0, 0).unwrap();
    let u = user(100);
    m.mkdir(&u, ROOT, b"mine", 0o755, 0, false).unwrap();
    m.mkdir(&root(), ROOT, b"ro", 0o555, 0, false).unwrap();
    assert_eq!(m.rename(&u, ROOT, b"ro", ROOT, b"mine2").map(|_| ()), Ok(()), "same parent needs no write on it");
    let mine = m.lookup(&u, ROOT, b"mine").unwrap().0;
    assert_eq!(m.rename(&u, ROOT, b"mine2", mine, b"x").map(|_| ()), Err(Status::EACCES));
}

#[test]
fn setattr_rules() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    m.setattr(&root(), ROOT, SET_MODE, 0o777, 0, 0, 0, 0).unwrap();
    let owner = Ctx { uid: 100, gids: vec![100, 200], now: 5000 };
    let f = m.mknod(&owner, ROOT, b"f", NodeType::File, 0o6755, 0, 0).unwrap().0;
    let other = user(101);
    assert_eq!(m.setattr(&other, f, SET_MODE, 0o777, 0, 0, 0, 0), Err(Status::EPERM));
    assert_eq!(m.setattr(&owner, f, SET_UID, 0, 101, 0, 0, 0), Err(Status::EPERM));
    assert_eq!(m.setattr(&owner, f, SET_GID, 0, 0, 300, 0, 0), Err(Status::EPERM));
    assert_eq!(m.setattr(&other, f, SET_ATIME, 0, 0, 0, 7, 0), Err(Status::EPERM));
    assert_eq!(m.setattr(&other, f, SET_MTIME_NOW, 0, 0, 0, 0, 0), Err(Status::EACCES));
    // The owner moves the file to another of its groups: suid/sgid drop.
    let a = m.setattr(&owner, f, SET_GID, 0, 0, 200, 0, 0).unwrap();
    assert_eq!((a.gid, a.mode), (200, 0o755));
    let a = m.setattr(&owner, f, SET_ATIME | SET_MTIME_NOW, 0, 0, 0, 7, 0).unwrap();
    assert_eq!((a.atime, a.mtime, a.ctime), (7, 5000, 5000));
    // chmod g+s by a non-member drops sgid; root keeps it.
    let a = m.setattr(&root(), f, SET_GID, 0, 0, 999, 0, 0).unwrap();
    assert_eq!(a.gid, 999);
    assert_eq!(m.setattr(&owner, f, SET_MODE, 0o2755, 0, 0, 0, 0).unwrap().mode, 0o755);
    assert_eq!(m.setattr(&root(), f, SET_MODE | SET_UID, 0o2755, 7, 0, 0, 0).unwrap().mode, 0o2755);
    assert_eq!(m.getattr(f).unwrap().uid, 7);
    check_replay(&base, &mut m);
}

#[test]
fn readdir_lists_dot_entries_first() {
    let mut m = fs();
    let d = dir(&mut m, ROOT, "d");
    file(&mut m, d, "b");
    file(&mut m, d, "a");
    let names: Vec<Vec<u8>> = m.readdir(&root(), d).unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, vec![b".".to_vec(), b"..".to_vec(), b"a".to_vec(), b"b".to_vec()]);
    let list = m.readdir(&root(), d).unwrap();
    assert_eq!((list[0].inode, list[1].inode), (d, ROOT));
    assert_eq!(m.readdir(&root(), ROOT).unwrap()[1].inode, ROOT);
    assert_eq!(list[2].kind, NodeType::File);
    assert_eq!(m.lookup(&root(), d, b".").unwrap().0, d);
    assert_eq!(m.lookup(&root(), d, b"..").unwrap().0, ROOT);
}

#[test]
fn goal_and_trashtime_trees() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let d = dir(&mut m, ROOT, "d");
    let f = file(&mut m, d, "f");
    m.setattr(&root(), ROOT, SET_MODE, 0o777, 0, 0, 0, 0).unwrap();
    let theirs = m.mknod(&user(100), d, b"theirs", NodeType::File, 0o644, 0, 0).unwrap_err();
    assert_eq!(theirs, Status::EACCES);
    m.write_chunk(1, f, 0, 2000).unwrap();
    let c = m.set_goal(&root(), d, 3, true, SetMode::Set).unwrap();
    assert_eq!(c, Counts { changed: 2, not_changed: 0, not_permitted: 0 });
    assert_eq!(m.get_goal(f).unwrap(), 3);
    let chunk = m.file_chunks(f).unwrap()[0].0;
    assert_eq!(m.chunk(chunk).unwrap().goal, 3);
    let c = m.set_goal(&root(), d, 2, true, SetMode::IncreaseOnly).unwrap();
    assert_eq!(c.not_changed, 2);
    assert_eq!(m.set_goal(&user(5), f, 2, false, SetMode::Set).unwrap().not_permitted, 1);
    assert_eq!(m.set_goal(&root(), f, 0, false, SetMode::Set), Err(Status::EINVAL));
    assert_eq!(m.goal_counts(d, true).unwrap(), vec![(3, 1, 1)]);
    assert_eq!(m.goal_counts(d, false).unwrap(), vec![(3, 0, 1)], "the directory alone");
    // New nodes inherit the directory's settings.
    m.set_trashtime(&root(), d, 0, false, SetMode::DecreaseOnly).unwrap();
    let g = file(&mut m, d, "g");
    assert_eq!((m.get_goal(g).unwrap(), m.get_trashtime(g).unwrap()), (3, 0));
    assert_eq!(m.trashtime_counts(d, true).unwrap(), vec![(0, 1, 1), (DEFAULT_TRASHTIME, 1, 0)]);
    check_replay(&base, &mut m);
}

#[test]
fn sessions_persist() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let d = dir(&mut m, ROOT, "d");
    file(&mut m, d, "f");
    let (a, r) = m.new_session(b"host:/mnt", b"/", 10).unwrap();
    assert_eq!(r, ROOT);
    let (b, r) = m.new_session(b"other", b"/d", 11).unwrap();
    assert_eq!(r, d);
    assert_ne!(a, b);
    assert_eq!(m.new_session(b"x", b"/nope", 12), Err(Status::ENOENT));
    assert_eq!(m.new_session(b"x", b"/d/f", 12), Err(Status::ENOTDIR));
    assert_eq!(m.session(b).unwrap().root_path, b"/d");
    m.close_session(a, 13).unwrap();
    assert_eq!(m.close_session(a, 13), Err(Status::BADSESSIONID));
    assert!(m.session(a).is_none());
    check_replay(&base, &mut m);
    let again = Meta::read_snapshot(&mut &snapshot_bytes(&m)[..]).unwrap();
    assert_eq!(again.session(b).unwrap().info, b"other");
}

#[test]
fn dir_stats_and_totals() {
    let mut m = fs();
    let d = dir(&mut m, ROOT, "d");
    let f = file(&mut m, d, "f");
    m.write_chunk(1, f, 1, 2000).unwrap();
    let chunk = m.read_chunk(f, 1).unwrap().1.unwrap().0;
    m.write_chunk_end(f, chunk, CHUNK_SIZE + 100, 2001).unwrap();
    m.set_goal(&root(), f, 2, false, SetMode::Set).unwrap();
    let s = m.dir_stats(d).unwrap();
    assert_eq!((s.inodes, s.dirs, s.files, s.chunks, s.length), (2, 1, 1, 1, CHUNK_SIZE + 100));
    assert_eq!(s.size, (64 << 10) + (5 << 10));
    assert_eq!(s.realsize, 2 * s.size);
    let t = m.stats();
    assert_eq!((t.inodes, t.dirs, t.files, t.chunks, t.total_length), (3, 2, 1, 1, CHUNK_SIZE + 100));
    m.unlink(&root(), d, b"f").unwrap();
    let t = m.stats();
    assert_eq!((t.trash_files, t.trash_bytes), (1, CHUNK_SIZE + 100));
}

#[test]
fn inode_numbers_are_reused_only_after_the_delay() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let f = file(&mut m, ROOT, "f");
    m.set_trashtime(&root(), f, 0, false, SetMode::Set).unwrap();
    m.unlink(&root(), ROOT, b"f").unwrap();
    let g = file(&mut m, ROOT, "g");
    assert_ne!(g, f, "too early to reuse");
    let late = Ctx::root(2000 + INODE_REUSE_DELAY);
    let (h, _) = m.mknod(&late, ROOT, b"h", NodeType::File, 0o644, 0, 0).unwrap();
    assert_eq!(h, f);
    let (i, _) = m.mknod(&late, ROOT, b"i", NodeType::File, 0o644, 0, 0).unwrap();
    assert_eq!(i, g + 1);
    check_replay(&base, &mut m);
}

#[test]
fn missing_and_wrong_kind() {
    let mut m = fs();
    let f = file(&mut m, ROOT, "f");
    let r = root();
    assert_eq!(m.getattr(999), Err(Status::ENOENT));
    assert_eq!(m.access(&r, 999, 4), Err(Status::ENOENT));
    assert_eq!(m.lookup(&r, ROOT, b"nope"), Err(Status::ENOENT));
    assert_eq!(m.lookup(&r, f, b"x"), Err(Status::ENOTDIR));
    assert_eq!(m.lookup(&r, 999, b"x"), Err(Status::ENOENT));
    assert_eq!(m.readdir(&r, f).map(|_| ()), Err(Status::ENOTDIR));
    assert_eq!(m.readlink(999), Err(Status::ENOENT));
    assert_eq!(m.setattr(&r, 999, SET_MODE, 0, 0, 0, 0, 0), Err(Status::ENOENT));
    assert_eq!(m.truncate(&r, 999, 0, true).map(|_| ()), Err(Status::ENOENT));
    assert_eq!(m.symlink(&r, ROOT, b"f", b"t"), Err(Status::EEXIST));
    assert_eq!(m.rename(&r, ROOT, b"f", f, b"x").map(|_| ()), Err(Status::ENOTDIR));
    assert_eq!(m.unlink(&r, f, b"x"), Err(Status::ENOTDIR));
    assert_eq!(m.get_goal(999), Err(Status::ENOENT));
    assert_eq!(m.dir_stats(999), Err(Status::ENOENT));
    assert_eq!(m.resolve(b"/f/x"), Err(Status::ENOTDIR));
    assert_eq!(m.drain_log().len(), 1, "only the create logged");
}

#[test]
fn setattr_reaches_a_removed_open_file() {
    let mut m = fs();
    let base = snapshot_bytes(&m);
    let f = file(&mut m, ROOT, "f");
    m.unlink(&root(), ROOT, b"f").unwrap();
    assert_eq!(m.setattr(&root(), f, SET_MODE, 0o600, 0, 0, 0, 0).unwrap().mode, 0o600);
    check_replay(&base, &mut m);
}

#[test]
fn client_times_only_move_forward() {
    let mut m = fs();
    let f = file(&mut m, ROOT, "f");
    let before = m.getattr(f).unwrap();
    assert!(before.atime < 5000, "the file started older: {before:?}");
    // Replayed from here on: only the AMTIME records.
    m.drain_log();
    let base = snapshot_bytes(&m);
    // Later access and modification: both move, ctime follows mtime; one
    // record for the one changed node.
    let v = m.version();
    m.amtime(&[(f, 5000, 4000)], 6000);
    let a = m.getattr(f).unwrap();
    assert_eq!((a.atime, a.mtime, a.ctime), (5000, 4000, 4000));
    assert_eq!(m.version(), v + 1);
    // Older or zero times, an unknown inode: nothing changes, nothing is logged.
    m.amtime(&[(f, 10, 20), (f, 0, 0), (0, 7000, 7000), (999, 7000, 7000)], 6000);
    assert_eq!(m.version(), v + 1);
    // An atime alone leaves mtime and ctime.
    m.amtime(&[(f, 5500, 0)], 6000);
    let a = m.getattr(f).unwrap();
    assert_eq!((a.atime, a.mtime, a.ctime), (5500, 4000, 4000));
    check_replay(&base, &mut m);
}
