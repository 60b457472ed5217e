//! Sessions rooted at a subfolder (`mfsmount -S /some/dir`): the client
//! sees that folder as inode 1, as with mfsmaster. Requests are translated
//! on the way in, answers on the way out; a session of the whole file
//! system (root 1) passes through untouched.

use elkfs_proto::client::{ClToMa, DirEntries, MaToCl};

use crate::meta::ROOT;

fn inward_one(inode: &mut u32, root: u32) {
    if *inode == ROOT {
        *inode = root;
    }
}

fn outward_one(inode: &mut u32, root: u32) {
    if *inode == root {
        *inode = ROOT;
    }
}

/// Rewrites the client's inode 1 to the session's root.
pub(super) fn inward(mut request: ClToMa, root: u32) -> ClToMa {
    if root == ROOT {
        return request;
    }
    use ClToMa::*;
    match &mut request {
        Access { inode, .. }
        | GetAttr { inode, .. }
        | SetAttr { inode, .. }
        | ReadLink { inode, .. }
        | ReadDir { inode, .. }
        | Open { inode, .. }
        | ReadChunk { inode, .. }
        | WriteChunk { inode, .. }
        | WriteChunkEnd { inode, .. }
        | Check { inode, .. }
        | GetTrashTime { inode, .. }
        | SetTrashTime { inode, .. }
        | GetSclass { inode, .. }
        | SetSclass { inode, .. }
        | GetDirStats { inode, .. }
        | Truncate { inode, .. }
        | GetXattr { inode, .. }
        | SetXattr { inode, .. }
        | Flock { inode, .. }
        | PosixLock { inode, .. } => inward_one(inode, root),
        Lookup { parent, .. }
        | Symlink { parent, .. }
        | Mknod { parent, .. }
        | Mkdir { parent, .. }
        | Unlink { parent, .. }
        | Rmdir { parent, .. }
        | Create { parent, .. } => inward_one(parent, root),
        Rename { src_parent, dst_parent, .. } => {
            inward_one(src_parent, root);
            inward_one(dst_parent, root);
        }
        Link { inode, dst_parent, .. } => {
            inward_one(inode, root);
            inward_one(dst_parent, root);
        }
        SustainedInodes(inodes) => inodes.iter_mut().for_each(|i| inward_one(i, root)),
        AmtimeInodes(list) => list.iter_mut().for_each(|(i, _, _)| inward_one(i, root)),
        _ => {}
    }
    request
}

/// Shows the session's root as inode 1 in answers.
pub(super) fn outward(mut msg: MaToCl, root: u32) -> MaToCl {
    if root == ROOT {
        return msg;
    }
    match &mut msg {
        MaToCl::Lookup { inode, .. }
        | MaToCl::Entry { inode, .. }
        | MaToCl::Create { inode, .. }
        | MaToCl::Removed { inode, .. }
        | MaToCl::ChunkHasChanged { inode, .. }
        | MaToCl::FlengHasChanged { inode, .. } => outward_one(inode, root),
        MaToCl::ReadDir { entries: DirEntries::Attrs(list), .. } => {
            list.iter_mut().for_each(|(_, inode, _)| outward_one(inode, root))
        }
        MaToCl::ReadDir { entries: DirEntries::Types(list), .. } => {
            list.iter_mut().for_each(|(_, inode, _)| outward_one(inode, root))
        }
        _ => {}
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use elkfs_proto::client::Cred;

    #[test]
    fn the_session_root_is_inode_one_both_ways() {
        let cred = Cred { uid: 0, gids: vec![0] };
        let lookup = ClToMa::Lookup { msgid: 1, parent: 1, name: b"x".to_vec(), cred };
        assert!(matches!(inward(lookup.clone(), 40), ClToMa::Lookup { parent: 40, .. }));
        assert_eq!(inward(lookup.clone(), ROOT), lookup);
        let listing = MaToCl::ReadDir {
            msgid: 2,
            next_edge: 0,
            entries: DirEntries::Types(vec![(b".".to_vec(), 40, 2), (b"f".to_vec(), 41, 1)]),
        };
        match outward(listing, 40) {
            MaToCl::ReadDir { entries: DirEntries::Types(list), .. } => {
                assert_eq!((list[0].1, list[1].1), (1, 41));
            }
            other => panic!("{other:?}"),
        }
    }
}
