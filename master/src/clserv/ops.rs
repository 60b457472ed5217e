//! Namespace requests: everything answered from the namespace alone.

use elkfs_proto::client::ids::{CHECK, GETSCLASS, GETTRASHTIME, SETATTR, SETSCLASS, SETTRASHTIME};
use elkfs_proto::client::ids::{LINK, MKDIR, MKNOD, RENAME, RMDIR, SYMLINK, UNLINK};
use elkfs_proto::client::{ClToMa, Cred, DirEntries, MaToCl, Sclass, SclassSet, READDIR_ATTRS, SMODE_TMASK};
use elkfs_proto::Status;

use super::{fail, Conn, SessionView};
use crate::cluster::{CopyInfo, CopyState};
use crate::meta::{Counts, Ctx, Meta, NodeType, SetMode};
use crate::shared::unix_now;

/// `SMODE_*` bit: apply to the whole tree.
const SMODE_RMASK: u8 = 4;
/// `OPEN` flag: the file is opened with `O_TRUNC`.
const OPEN_TRUNCATE: u8 = 0x08;
/// `OPEN` flag: permissions were checked already (at create, or from a
/// lookup's access rights); the master only records the open.
const OPEN_AFTER_CREATE: u8 = 0x04;
/// `GMODE_*` bit: count the whole tree.
const GMODE_RECURSIVE: u8 = 1;

/// `SMODE_*` low bits: 0 set, 1 increase only, 2 decrease only.
fn set_mode(smode: u8) -> SetMode {
    match smode & SMODE_TMASK {
        1 => SetMode::IncreaseOnly,
        2 => SetMode::DecreaseOnly,
        _ => SetMode::Set,
    }
}

/// `CHECK_*` copy status for `mfsfileinfo`.
fn check_status(copy: &CopyInfo) -> u8 {
    match (copy.state, copy.on_removal_disk) {
        (CopyState::Valid, false) => 0,
        (CopyState::Valid, true) => 1,
        (CopyState::WrongVersion, false) => 2,
        (CopyState::WrongVersion, true) => 3,
        _ => 4,
    }
}

pub(super) fn ctx(cred: &Cred) -> Ctx {
    Ctx { uid: cred.uid, gids: cred.gids.clone(), now: unix_now() }
}

pub(super) fn handle(conn: &Conn, session: SessionView, kind: u32, request: ClToMa) {
    let shared = &conn.shared;
    match request {
        ClToMa::Statfs { msgid } => {
            let (stats, after) = shared.read(|m| m.stats());
            let (total, avail) = shared.cluster.totals();
            conn.send(
                after,
                MaToCl::Statfs {
                    msgid,
                    total,
                    avail,
                    free: avail,
                    trash: stats.trash_bytes,
                    sustained: 0,
                    inodes: u32::try_from(stats.inodes).unwrap_or(u32::MAX),
                },
            );
        }
        ClToMa::Access { msgid, inode, cred, mask } => {
            let (r, after) = shared.read(|m| m.access(&ctx(&cred), inode, (mask & 7) as u8));
            conn.send(after, fail(kind, msgid, r.err().unwrap_or(Status::OK)));
        }
        ClToMa::Lookup { msgid, parent, name, cred } => {
            super::lookup::handle(conn, session, kind, msgid, parent, &name, &cred)
        }
        ClToMa::GetAttr { msgid, inode, .. } => {
            let (r, after) = shared.read(|m| m.getattr(inode));
            conn.send(after, attr_reply(kind, msgid, r));
        }
        ClToMa::SetAttr { msgid, inode, cred, setmask, mode, uid, gid, atime, mtime, .. } => {
            let (r, after) = shared.change(|m| m.setattr(&ctx(&cred), inode, setmask, mode, uid, gid, atime, mtime));
            conn.send(after, attr_reply(SETATTR, msgid, r));
        }
        ClToMa::ReadLink { msgid, inode } => {
            let (r, after) = shared.read(|m| m.readlink(inode));
            conn.send(
                after,
                match r {
                    Ok(path) => MaToCl::ReadLink { msgid, path },
                    Err(s) => fail(kind, msgid, s),
                },
            );
        }
        ClToMa::Symlink { msgid, parent, name, path, cred } => {
            let (r, after) = shared.change(|m| m.symlink(&ctx(&cred), parent, &name, &path));
            conn.send(after, entry_reply(SYMLINK, msgid, r));
        }
        ClToMa::Mknod { msgid, parent, name, node_type: t, mode, umask, cred, rdev } => {
            let Some(t) = NodeType::from_wire(t) else {
                conn.send(0, fail(kind, msgid, Status::EINVAL));
                return;
            };
            let (r, after) = shared.change(|m| m.mknod(&ctx(&cred), parent, &name, t, mode, umask, rdev));
            conn.send(after, entry_reply(MKNOD, msgid, r));
        }
        ClToMa::Create { msgid, parent, name, mode, umask, cred } => {
            let (r, after) = shared.change(|m| {
                let made = m.mknod(&ctx(&cred), parent, &name, NodeType::File, mode, umask, 0)?;
                m.open(session.id, made.0, unix_now())?;
                Ok(made)
            });
            conn.send(
                after,
                match r {
                    Ok((inode, attr)) => MaToCl::Create { msgid, oflags: 0, inode, attr: attr.to_wire() },
                    Err(s) => fail(kind, msgid, s),
                },
            );
        }
        ClToMa::Mkdir { msgid, parent, name, mode, umask, cred, copysgid } => {
            let (r, after) = shared.change(|m| m.mkdir(&ctx(&cred), parent, &name, mode, umask, copysgid != 0));
            conn.send(after, entry_reply(MKDIR, msgid, r));
        }
        ClToMa::Unlink { msgid, parent, name, cred } => {
            let (r, after) = shared.change(|m| m.unlink(&ctx(&cred), parent, &name));
            conn.send(after, removed_reply(UNLINK, msgid, r));
        }
        ClToMa::Rmdir { msgid, parent, name, cred } => {
            let (r, after) = shared.change(|m| m.rmdir(&ctx(&cred), parent, &name));
            conn.send(after, removed_reply(RMDIR, msgid, r));
        }
        ClToMa::Rename { msgid, src_parent, src_name, dst_parent, dst_name, cred } => {
            let (r, after) = shared.change(|m| m.rename(&ctx(&cred), src_parent, &src_name, dst_parent, &dst_name));
            conn.send(after, entry_reply(RENAME, msgid, r));
        }
        ClToMa::Link { msgid, inode, dst_parent, dst_name, cred } => {
            let (r, after) = shared.change(|m| m.link(&ctx(&cred), inode, dst_parent, &dst_name));
            conn.send(after, entry_reply(LINK, msgid, r.map(|attr| (inode, attr))));
        }
        ClToMa::ReadDir { msgid, inode, cred, flags, edge, .. } => {
            let (r, after) = shared.read(|m| m.readdir(&ctx(&cred), inode));
            let msg = match r {
                Ok(mut list) => {
                    if inode == session.root {
                        // The session's root is its own parent, as a mount's root.
                        list.iter_mut().filter(|e| e.name == b"..").for_each(|e| e.inode = inode);
                    }
                    let entries = if flags & READDIR_ATTRS != 0 {
                        DirEntries::Attrs(list.into_iter().map(|e| (e.name, e.inode, e.attr.to_wire())).collect())
                    } else {
                        DirEntries::Types(list.into_iter().map(|e| (e.name, e.inode, e.kind as u8)).collect())
                    };
                    // The whole directory goes in one reply; like mfsmaster,
                    // the cursor field echoes the request's.
                    MaToCl::ReadDir { msgid, next_edge: edge, entries }
                }
                Err(s) => fail(kind, msgid, s),
            };
            conn.send(after, msg);
        }
        ClToMa::Open { msgid, inode, cred, flags } => {
            // Open flags: 1 read, 2 write; access bits r=4 w=2.
            let mask = if flags & 1 != 0 { 4 } else { 0 } | if flags & 2 != 0 { 2 } else { 0 };
            let c = ctx(&cred);
            let (r, after) = shared.change(|m| {
                if flags & OPEN_AFTER_CREATE == 0 {
                    m.access(&c, inode, mask)?;
                }
                m.open(session.id, inode, c.now)?;
                if flags & OPEN_TRUNCATE != 0 && flags & OPEN_AFTER_CREATE == 0 {
                    // O_TRUNC travels with the open; to zero no chunk is cut
                    // in the middle, so no chunkserver is involved.
                    return m.truncate(&c, inode, 0, true).map(|t| t.attr);
                }
                m.getattr(inode)
            });
            conn.send(
                after,
                match r {
                    Ok(attr) => MaToCl::Open { msgid, oflags: 0, attr: attr.to_wire() },
                    Err(s) => fail(kind, msgid, s),
                },
            );
        }
        ClToMa::GetXattr { msgid, .. } => conn.send(0, fail(kind, msgid, Status::ENOATTR)),
        ClToMa::SetXattr { msgid, .. } | ClToMa::Flock { msgid, .. } | ClToMa::PosixLock { msgid, .. } => {
            conn.send(0, fail(kind, msgid, Status::ENOTSUP))
        }
        ClToMa::GetDirStats { msgid, inode } => {
            let (r, after) = shared.read(|m| m.dir_stats(inode));
            let small = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
            conn.send(
                after,
                match r {
                    Ok(d) => MaToCl::DirStats {
                        msgid,
                        stats: elkfs_proto::client::DirStats {
                            inodes: small(d.inodes),
                            dirs: small(d.dirs),
                            files: small(d.files),
                            chunks: small(d.chunks),
                            length: d.length,
                            size: d.size,
                            realsize: d.realsize,
                        },
                        // Mount connections (tools go through the mount's
                        // proxy) get the 60-byte form, as from mfsmaster.
                        padded: true,
                    },
                    Err(s) => fail(kind, msgid, s),
                },
            );
        }
        ClToMa::GetSclass { msgid, inode, gmode } => {
            let (r, after) = shared.read(|m| m.goal_counts(inode, gmode & GMODE_RECURSIVE != 0));
            conn.send(
                after,
                match r {
                    Ok(counts) => {
                        let goals = counts.into_iter().map(|(g, f, d)| (Sclass::Goal(g), f, d)).collect();
                        let (files, dirs) = split_counts(goals);
                        MaToCl::Sclass { msgid, files, dirs }
                    }
                    Err(s) => fail(GETSCLASS, msgid, s),
                },
            );
        }
        ClToMa::SetSclass { msgid, inode, uid, smode, target } => {
            let SclassSet::Goal(goal) = target else {
                conn.send(0, fail(kind, msgid, Status::ENOTSUP));
                return;
            };
            let c = Ctx { uid, gids: vec![], now: unix_now() };
            let recursive = smode & SMODE_RMASK != 0;
            let (r, after) = shared.change(|m| m.set_goal(&c, inode, goal, recursive, set_mode(smode)));
            conn.send(after, changed_reply(SETSCLASS, msgid, r));
        }
        ClToMa::GetTrashTime { msgid, inode, gmode } => {
            let (r, after) = shared.read(|m| m.trashtime_counts(inode, gmode & GMODE_RECURSIVE != 0));
            conn.send(
                after,
                match r {
                    Ok(counts) => {
                        let (files, dirs) = split_counts(counts);
                        MaToCl::TrashTime { msgid, files, dirs }
                    }
                    Err(s) => fail(GETTRASHTIME, msgid, s),
                },
            );
        }
        ClToMa::SetTrashTime { msgid, inode, uid, trashtime, smode } => {
            let c = Ctx { uid, gids: vec![], now: unix_now() };
            let recursive = smode & SMODE_RMASK != 0;
            let (r, after) = shared.change(|m| m.set_trashtime(&c, inode, trashtime, recursive, set_mode(smode)));
            conn.send(after, changed_reply(SETTRASHTIME, msgid, r));
        }
        ClToMa::Check { msgid, inode, index } => check(conn, msgid, inode, index),
        other => {
            tracing::warn!(peer = %conn.peer, "unexpected request {other:?}");
            if let Some(msgid) = msgid_of(&other) {
                conn.send(0, fail(kind, msgid, Status::ENOTSUP));
            }
        }
    }
}

/// `mfscheckfile` (no index: copy-count histogram) and `mfsfileinfo`
/// (one chunk's copies).
fn check(conn: &Conn, msgid: u32, inode: u32, index: Option<u32>) {
    let shared = &conn.shared;
    let (r, after) = shared.read(|m: &Meta| m.file_chunks(inode));
    let chunks = match r {
        Ok(chunks) => chunks,
        Err(s) => return conn.send(after, fail(CHECK, msgid, s)),
    };
    let msg = match index {
        None => {
            let mut counts = [0u32; 12];
            for (chunk, version) in chunks.iter().filter(|(c, _)| *c != 0) {
                let n = shared.cluster.locations(*chunk, *version).len().min(11);
                counts[n] += 1;
            }
            MaToCl::CheckCounts { msgid, counts }
        }
        Some(index) => match chunks.get(index as usize) {
            Some(&(chunk, version)) if chunk != 0 => {
                let copies = shared.cluster.copies(chunk).into_iter().map(|c| (c.addr, check_status(&c))).collect();
                MaToCl::CheckChunk { msgid, chunk, version, copies }
            }
            Some(_) => MaToCl::CheckChunk { msgid, chunk: 0, version: 0, copies: vec![] },
            None => fail(CHECK, msgid, Status::ENOENT),
        },
    };
    conn.send(after, msg);
}

fn msgid_of(request: &ClToMa) -> Option<u32> {
    // Every request past registration starts with its msgid.
    let bytes = elkfs_proto::frame::Encode::to_packet(request);
    bytes.get(8..12).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn attr_reply(kind: u32, msgid: u32, r: Result<crate::meta::Attr, Status>) -> MaToCl {
    match r {
        Ok(attr) => MaToCl::Attr { kind: kind + 1, msgid, attr: attr.to_wire() },
        Err(s) => fail(kind, msgid, s),
    }
}

fn entry_reply(kind: u32, msgid: u32, r: Result<(u32, crate::meta::Attr), Status>) -> MaToCl {
    match r {
        Ok((inode, attr)) => MaToCl::Entry { kind: kind + 1, msgid, inode, attr: attr.to_wire() },
        Err(s) => fail(kind, msgid, s),
    }
}

/// `(value, how many)` pairs of a goal or trash-time reply.
type Counted<T> = Vec<(T, u32)>;

/// `(value, files, dirs)` counts as the goal and trash-time replies carry
/// them: files and directories apart.
fn split_counts<T: Clone>(counts: Vec<(T, u32, u32)>) -> (Counted<T>, Counted<T>) {
    let files = counts.iter().filter(|c| c.1 > 0).map(|(v, f, _)| (v.clone(), *f)).collect();
    let dirs = counts.iter().filter(|c| c.2 > 0).map(|(v, _, d)| (v.clone(), *d)).collect();
    (files, dirs)
}

fn changed_reply(kind: u32, msgid: u32, r: Result<Counts, Status>) -> MaToCl {
    match r {
        Ok(n) => MaToCl::Changed {
            kind: kind + 1,
            msgid,
            changed: n.changed,
            not_changed: n.not_changed,
            not_permitted: n.not_permitted,
        },
        Err(s) => fail(kind, msgid, s),
    }
}

fn removed_reply(kind: u32, msgid: u32, r: Result<u32, Status>) -> MaToCl {
    match r {
        Ok(inode) => MaToCl::Removed { kind: kind + 1, msgid, inode },
        Err(s) => fail(kind, msgid, s),
    }
}
