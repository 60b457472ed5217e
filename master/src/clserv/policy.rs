//! The session's export applied to each request before the namespace sees
//! it: ids mapped (`maproot`, `mapall`), changes refused on a read-only
//! export (`EROFS`), disabled operations and goals or trash times outside
//! the export's limits refused (`EPERM`).
//!
//! mfsmaster 3.0.117 only reports the goal and trash-time limits to the
//! mount (which shows them); elkfs refuses out-of-range values here too, so
//! a client that ignores them cannot get around the export.

use elkfs_proto::client::{ClToMa, Cred, SclassSet};
use elkfs_proto::Status;

use crate::exports::Grant;
use crate::meta::NodeType;

/// `OPEN_*` flags that mean the file will change.
const OPEN_WRITE: u8 = 0x02;
const OPEN_TRUNCATE: u8 = 0x08;
/// `MODE_MASK_W` of `ACCESS`.
const MODE_MASK_W: u16 = 2;
/// `SET_*` bits of `SETATTR` that are a chown, and the one that is a chmod.
const SET_OWNER: u8 = 0x04 | 0x08;
const SET_MODE: u8 = 0x02;

/// Maps the request's credentials through the export's `maproot` and
/// `mapall` (the namespace then checks permissions with the mapped ids).
pub(super) fn map_ids(grant: &Grant, request: &mut ClToMa) {
    let cred = |c: &mut Cred| c.uid = grant.map_ids(c.uid, &mut c.gids);
    match request {
        ClToMa::Access { cred: c, .. }
        | ClToMa::Lookup { cred: c, .. }
        | ClToMa::SetAttr { cred: c, .. }
        | ClToMa::Symlink { cred: c, .. }
        | ClToMa::Mknod { cred: c, .. }
        | ClToMa::Mkdir { cred: c, .. }
        | ClToMa::Unlink { cred: c, .. }
        | ClToMa::Rmdir { cred: c, .. }
        | ClToMa::Rename { cred: c, .. }
        | ClToMa::Link { cred: c, .. }
        | ClToMa::ReadDir { cred: c, .. }
        | ClToMa::Open { cred: c, .. }
        | ClToMa::Truncate { cred: c, .. }
        | ClToMa::Create { cred: c, .. }
        | ClToMa::GetXattr { cred: c, .. }
        | ClToMa::SetXattr { cred: c, .. } => cred(c),
        ClToMa::GetAttr { uid, gid, .. } => {
            let mut gids = [*gid];
            *uid = grant.map_ids(*uid, &mut gids);
            *gid = gids[0];
        }
        ClToMa::SetSclass { uid, .. } | ClToMa::SetTrashTime { uid, .. } => *uid = grant.map_ids(*uid, &mut []),
        _ => {}
    }
}

/// Why the export forbids `request`, with the msgid to answer; `None`
/// when it may go on.
pub(super) fn refusal(grant: &Grant, request: &ClToMa) -> Option<(u32, Status)> {
    let (msgid, disable, changes) = classify(request)?;
    if disable.is_some_and(|d| grant.disabled(d)) {
        return Some((msgid, Status::EPERM));
    }
    if changes && grant.readonly() {
        return Some((msgid, Status::EROFS));
    }
    let out_of_limits = match request {
        ClToMa::SetSclass { target: SclassSet::Goal(goal), .. } => !grant.goal_allowed(*goal),
        ClToMa::SetTrashTime { trashtime, .. } => !grant.trashtime_allowed(*trashtime),
        _ => false,
    };
    out_of_limits.then_some((msgid, Status::EPERM))
}

/// `(msgid, the disable= name that forbids it, whether it changes
/// anything)` of requests an export can refuse.
fn classify(request: &ClToMa) -> Option<(u32, Option<&'static str>, bool)> {
    Some(match request {
        ClToMa::Access { msgid, mask, .. } => (*msgid, None, mask & MODE_MASK_W != 0),
        ClToMa::SetAttr { msgid, setmask, .. } => {
            let disable = if setmask & SET_OWNER != 0 {
                Some("chown")
            } else if setmask & SET_MODE != 0 {
                Some("chmod")
            } else {
                None
            };
            (*msgid, disable, true)
        }
        ClToMa::Symlink { msgid, .. } => (*msgid, Some("symlink"), true),
        ClToMa::Mknod { msgid, node_type, .. } => {
            let disable = match NodeType::from_wire(*node_type) {
                Some(NodeType::Fifo) => Some("mkfifo"),
                Some(NodeType::BlockDev | NodeType::CharDev) => Some("mkdev"),
                Some(NodeType::Socket) => Some("mksock"),
                Some(NodeType::File) => Some("create"),
                _ => None,
            };
            (*msgid, disable, true)
        }
        ClToMa::Mkdir { msgid, .. } => (*msgid, Some("mkdir"), true),
        ClToMa::Create { msgid, .. } => (*msgid, Some("create"), true),
        ClToMa::Unlink { msgid, .. } => (*msgid, Some("unlink"), true),
        ClToMa::Rmdir { msgid, .. } => (*msgid, Some("rmdir"), true),
        ClToMa::Rename { msgid, src_parent, dst_parent, src_name, dst_name, .. } => {
            let disable = if src_parent != dst_parent {
                Some("move")
            } else if src_name != dst_name {
                Some("rename")
            } else {
                None
            };
            (*msgid, disable, true)
        }
        ClToMa::Link { msgid, .. } => (*msgid, Some("link"), true),
        ClToMa::ReadDir { msgid, .. } => (*msgid, Some("readdir"), false),
        ClToMa::Open { msgid, flags, .. } => (*msgid, None, flags & (OPEN_WRITE | OPEN_TRUNCATE) != 0),
        ClToMa::ReadChunk { msgid, .. } => (*msgid, Some("read"), false),
        ClToMa::WriteChunk { msgid, .. } => (*msgid, Some("write"), true),
        ClToMa::Truncate { msgid, .. } => (*msgid, None, true),
        ClToMa::SetTrashTime { msgid, .. } => (*msgid, Some("settrash"), true),
        ClToMa::SetSclass { msgid, .. } => (*msgid, Some("setsclass"), true),
        ClToMa::SetXattr { msgid, .. } => (*msgid, Some("setxattr"), true),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::parse;

    fn grant(options: &str) -> Grant {
        parse(&format!("* / {options}\n")).0.entries[0].grant
    }

    fn cred(uid: u32, gid: u32) -> Cred {
        Cred { uid, gids: vec![gid] }
    }

    fn mkdir(uid: u32, gid: u32) -> ClToMa {
        ClToMa::Mkdir {
            msgid: 9,
            parent: 1,
            name: b"d".to_vec(),
            mode: 0o755,
            umask: 0,
            cred: cred(uid, gid),
            copysgid: 0,
        }
    }

    fn open(flags: u8) -> ClToMa {
        ClToMa::Open { msgid: 3, inode: 5, cred: cred(1, 1), flags }
    }

    #[test]
    fn readonly_refuses_changes_and_allows_reads() {
        let ro = grant("ro");
        assert_eq!(refusal(&ro, &mkdir(0, 0)), Some((9, Status::EROFS)));
        assert_eq!(refusal(&ro, &open(OPEN_WRITE)), Some((3, Status::EROFS)));
        assert_eq!(refusal(&ro, &open(OPEN_TRUNCATE | 1)), Some((3, Status::EROFS)));
        assert_eq!(refusal(&ro, &open(1)), None);
        let write = ClToMa::WriteChunk { msgid: 4, inode: 5, index: 0, flags: 0 };
        assert_eq!(refusal(&ro, &write), Some((4, Status::EROFS)));
        let read = ClToMa::ReadChunk { msgid: 4, inode: 5, index: 0, flags: 0 };
        assert_eq!(refusal(&ro, &read), None);
        assert_eq!(refusal(&ro, &ClToMa::Statfs { msgid: 1 }), None);
        assert_eq!(refusal(&grant("rw"), &mkdir(0, 0)), None);
    }

    #[test]
    fn disables_refuse_with_eperm() {
        let g = grant("rw,disable=mkdir:move:read");
        assert_eq!(refusal(&g, &mkdir(0, 0)), Some((9, Status::EPERM)));
        let read = ClToMa::ReadChunk { msgid: 4, inode: 5, index: 0, flags: 0 };
        assert_eq!(refusal(&g, &read), Some((4, Status::EPERM)));
        let rename = |dst_parent| ClToMa::Rename {
            msgid: 2,
            src_parent: 1,
            src_name: b"a".to_vec(),
            dst_parent,
            dst_name: b"b".to_vec(),
            cred: cred(1, 1),
        };
        assert_eq!(refusal(&g, &rename(7)), Some((2, Status::EPERM)), "a move");
        assert_eq!(refusal(&g, &rename(1)), None, "a rename in place is not a move");
    }

    #[test]
    fn goals_and_trash_times_outside_the_limits_are_refused() {
        let g = grant("rw,mingoal=2,maxgoal=3,maxtrashtime=1h");
        let goal = |goal| ClToMa::SetSclass { msgid: 1, inode: 5, uid: 0, smode: 0, target: SclassSet::Goal(goal) };
        assert_eq!(refusal(&g, &goal(1)), Some((1, Status::EPERM)));
        assert_eq!(refusal(&g, &goal(2)), None);
        assert_eq!(refusal(&g, &goal(4)), Some((1, Status::EPERM)));
        let trash = |trashtime| ClToMa::SetTrashTime { msgid: 1, inode: 5, uid: 0, trashtime, smode: 0 };
        assert_eq!(refusal(&g, &trash(3600)), None);
        assert_eq!(refusal(&g, &trash(3601)), Some((1, Status::EPERM)));
    }

    #[test]
    fn ids_are_mapped_before_the_namespace_sees_them() {
        let g = grant("rw,maproot=1000:1001");
        let mut r = mkdir(0, 0);
        map_ids(&g, &mut r);
        assert!(matches!(r, ClToMa::Mkdir { cred: Cred { uid: 1000, ref gids }, .. } if gids == &[1001]));
        let mut r = mkdir(5, 6);
        map_ids(&g, &mut r);
        assert!(matches!(r, ClToMa::Mkdir { cred: Cred { uid: 5, ref gids }, .. } if gids == &[6]));
        let all = grant("rw,mapall=2000:2001");
        let mut r = ClToMa::GetAttr { msgid: 1, inode: 1, opened: 0, uid: 5, gid: 6 };
        map_ids(&all, &mut r);
        assert!(matches!(r, ClToMa::GetAttr { uid: 2000, gid: 2001, .. }));
        let mut r = ClToMa::SetTrashTime { msgid: 1, inode: 5, uid: 0, trashtime: 0, smode: 0 };
        map_ids(&all, &mut r);
        assert!(matches!(r, ClToMa::SetTrashTime { uid: 2000, .. }));
    }
}
