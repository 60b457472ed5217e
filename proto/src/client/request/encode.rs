//! Client → master requests onto the wire.

use super::{ClToMa, Resume, SclassSet};
use crate::client::ids;
use crate::client::types::{put_cstring, put_name};
use crate::client::{REGISTER_BLOB, SCLASS_NAMED, SMODE_EXCHANGE, SMODE_TMASK};
use crate::client::{REG_CLOSESESSION, REG_GETRANDOM, REG_NEWMETASESSION, REG_NEWSESSION, REG_RECONNECT, REG_TOOLS};
use crate::frame::Encode;
use crate::wire::Put;

fn put_resume_digest(out: &mut Vec<u8>, resume: &Option<Resume>, digest: &Option<[u8; 16]>) {
    if let Some(Resume { sessionid, metaid }) = resume {
        out.put_u32(*sessionid);
        if let Some(m) = metaid {
            out.put_u64(*m);
        }
    }
    if let Some(d) = digest {
        out.extend_from_slice(d);
    }
}

impl Encode for ClToMa {
    fn kind(&self) -> u32 {
        use ClToMa::*;
        match self {
            GetRandom
            | NewSession { .. }
            | Reconnect { .. }
            | Tools { .. }
            | NewMetaSession { .. }
            | CloseSession { .. } => ids::REGISTER,
            Nop { .. } => ids::NOP,
            Statfs { .. } => ids::STATFS,
            Access { .. } => ids::ACCESS,
            Lookup { .. } => ids::LOOKUP,
            GetAttr { .. } => ids::GETATTR,
            SetAttr { .. } => ids::SETATTR,
            ReadLink { .. } => ids::READLINK,
            Symlink { .. } => ids::SYMLINK,
            Mknod { .. } => ids::MKNOD,
            Mkdir { .. } => ids::MKDIR,
            Unlink { .. } => ids::UNLINK,
            Rmdir { .. } => ids::RMDIR,
            Rename { .. } => ids::RENAME,
            Link { .. } => ids::LINK,
            ReadDir { .. } => ids::READDIR,
            Open { .. } => ids::OPEN,
            ReadChunk { .. } => ids::READ_CHUNK,
            WriteChunk { .. } => ids::WRITE_CHUNK,
            WriteChunkEnd { .. } => ids::WRITE_CHUNK_END,
            Check { .. } => ids::CHECK,
            GetTrashTime { .. } => ids::GETTRASHTIME,
            SetTrashTime { .. } => ids::SETTRASHTIME,
            GetSclass { .. } => ids::GETSCLASS,
            SetSclass { .. } => ids::SETSCLASS,
            GetDirStats { .. } => ids::GETDIRSTATS,
            Truncate { .. } => ids::TRUNCATE,
            Create { .. } => ids::CREATE,
            GetXattr { .. } => ids::GETXATTR,
            SetXattr { .. } => ids::SETXATTR,
            Flock { .. } => ids::FLOCK,
            PosixLock { .. } => ids::POSIX_LOCK,
            TimeSync { .. } => ids::TIME_SYNC,
            SustainedInodes(_) => ids::SUSTAINED_INODES,
            AmtimeInodes(_) => ids::AMTIME_INODES,
            Other { kind, .. } => *kind,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        use ClToMa::*;
        let register = |out: &mut Vec<u8>, code: u8| {
            out.extend_from_slice(REGISTER_BLOB);
            out.put_u8(code);
        };
        match self {
            GetRandom => register(out, REG_GETRANDOM),
            NewSession { version, info, path, resume, digest } => {
                register(out, REG_NEWSESSION);
                out.put_u32(*version);
                out.put_u32(info.len() as u32);
                out.extend_from_slice(info);
                out.put_u32(path.len() as u32);
                out.extend_from_slice(path);
                put_resume_digest(out, resume, digest);
            }
            Reconnect { sessionid, version, metaid } | Tools { sessionid, version, metaid } => {
                register(out, if matches!(self, Reconnect { .. }) { REG_RECONNECT } else { REG_TOOLS });
                out.put_u32(*sessionid);
                out.put_u32(*version);
                if let Some(m) = metaid {
                    out.put_u64(*m);
                }
            }
            NewMetaSession { version, info, resume, digest } => {
                register(out, REG_NEWMETASESSION);
                out.put_u32(*version);
                out.put_u32(info.len() as u32);
                out.extend_from_slice(info);
                put_resume_digest(out, resume, digest);
            }
            CloseSession { sessionid, metaid } => {
                register(out, REG_CLOSESESSION);
                out.put_u32(*sessionid);
                if let Some(m) = metaid {
                    out.put_u64(*m);
                }
            }
            Nop { msgid } | Statfs { msgid } => out.put_u32(*msgid),
            Access { msgid, inode, cred, mask } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                cred.put(out);
                out.put_u16(*mask);
            }
            Lookup { msgid, parent, name, cred }
            | Unlink { msgid, parent, name, cred }
            | Rmdir { msgid, parent, name, cred } => {
                out.put_u32(*msgid);
                out.put_u32(*parent);
                put_name(out, name);
                cred.put(out);
            }
            GetAttr { msgid, inode, opened, uid, gid } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u8(*opened);
                out.put_u32(*uid);
                out.put_u32(*gid);
            }
            SetAttr { msgid, inode, opened, cred, setmask, mode, uid, gid, atime, mtime, winattr, sugid_clear } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u8(*opened);
                cred.put(out);
                out.put_u8(*setmask);
                out.put_u16(*mode);
                out.put_u32(*uid);
                out.put_u32(*gid);
                out.put_u32(*atime);
                out.put_u32(*mtime);
                out.put_u8(*winattr);
                out.put_u8(*sugid_clear);
            }
            ReadLink { msgid, inode } | GetDirStats { msgid, inode } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
            }
            Symlink { msgid, parent, name, path, cred } => {
                out.put_u32(*msgid);
                out.put_u32(*parent);
                put_name(out, name);
                put_cstring(out, path);
                cred.put(out);
            }
            Mknod { msgid, parent, name, node_type, mode, umask, cred, rdev } => {
                out.put_u32(*msgid);
                out.put_u32(*parent);
                put_name(out, name);
                out.put_u8(*node_type);
                out.put_u16(*mode);
                out.put_u16(*umask);
                cred.put(out);
                out.put_u32(*rdev);
            }
            Mkdir { msgid, parent, name, mode, umask, cred, copysgid } => {
                out.put_u32(*msgid);
                out.put_u32(*parent);
                put_name(out, name);
                out.put_u16(*mode);
                out.put_u16(*umask);
                cred.put(out);
                out.put_u8(*copysgid);
            }
            Rename { msgid, src_parent, src_name, dst_parent, dst_name, cred } => {
                out.put_u32(*msgid);
                out.put_u32(*src_parent);
                put_name(out, src_name);
                out.put_u32(*dst_parent);
                put_name(out, dst_name);
                cred.put(out);
            }
            Link { msgid, inode, dst_parent, dst_name, cred } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u32(*dst_parent);
                put_name(out, dst_name);
                cred.put(out);
            }
            ReadDir { msgid, inode, cred, flags, max_entries, edge } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                cred.put(out);
                out.put_u8(*flags);
                out.put_u32(*max_entries);
                out.put_u64(*edge);
            }
            Open { msgid, inode, cred, flags } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                cred.put(out);
                out.put_u8(*flags);
            }
            ReadChunk { msgid, inode, index, flags } | WriteChunk { msgid, inode, index, flags } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u32(*index);
                out.put_u8(*flags);
            }
            WriteChunkEnd { msgid, chunk, inode, index, length, flags } => {
                out.put_u32(*msgid);
                out.put_u64(*chunk);
                out.put_u32(*inode);
                if let Some(i) = index {
                    out.put_u32(*i);
                }
                out.put_u64(*length);
                match (index, flags) {
                    (_, Some(f)) => out.put_u8(*f),
                    (Some(_), None) => out.put_u8(0),
                    (None, None) => {}
                }
            }
            Check { msgid, inode, index } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                if let Some(i) = index {
                    out.put_u32(*i);
                }
            }
            GetTrashTime { msgid, inode, gmode } | GetSclass { msgid, inode, gmode } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u8(*gmode);
            }
            SetTrashTime { msgid, inode, uid, trashtime, smode } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u32(*uid);
                out.put_u32(*trashtime);
                out.put_u8(*smode);
            }
            SetSclass { msgid, inode, uid, smode, target } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u32(*uid);
                match target {
                    SclassSet::Goal(goal) => {
                        assert!(*goal != SCLASS_NAMED, "goal 0xFF is the storage-class marker");
                        out.put_u8(*goal);
                        out.put_u8(*smode);
                    }
                    SclassSet::Named { src, dst } => {
                        assert_eq!(
                            src.is_some(),
                            smode & SMODE_TMASK == SMODE_EXCHANGE,
                            "a source class goes with EXCHANGE only"
                        );
                        out.put_u8(SCLASS_NAMED);
                        out.put_u8(*smode);
                        if let Some(s) = src {
                            put_name(out, s);
                        }
                        put_name(out, dst);
                    }
                }
            }
            Truncate { msgid, inode, flags, cred, length } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u8(*flags);
                cred.put(out);
                out.put_u64(*length);
            }
            Create { msgid, parent, name, mode, umask, cred } => {
                out.put_u32(*msgid);
                out.put_u32(*parent);
                put_name(out, name);
                out.put_u16(*mode);
                out.put_u16(*umask);
                cred.put(out);
            }
            GetXattr { msgid, inode, name, mode, opened, cred } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                put_name(out, name);
                out.put_u8(*mode);
                out.put_u8(*opened);
                cred.put(out);
            }
            SetXattr { msgid, inode, name, value, mode, opened, cred } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                put_name(out, name);
                out.put_u32(value.len() as u32);
                out.extend_from_slice(value);
                out.put_u8(*mode);
                out.put_u8(*opened);
                cred.put(out);
            }
            Flock { msgid, inode, reqid, owner, cmd } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u32(*reqid);
                out.put_u64(*owner);
                out.put_u8(*cmd);
            }
            PosixLock { msgid, inode, reqid, owner, pid, cmd, lock_type, start, end } => {
                out.put_u32(*msgid);
                out.put_u32(*inode);
                out.put_u32(*reqid);
                out.put_u64(*owner);
                out.put_u32(*pid);
                out.put_u8(*cmd);
                out.put_u8(*lock_type);
                out.put_u64(*start);
                out.put_u64(*end);
            }
            TimeSync { msgid } | Other { msgid, .. } => {
                if let Some(m) = msgid {
                    out.put_u32(*m);
                }
            }
            SustainedInodes(list) => list.iter().for_each(|i| out.put_u32(*i)),
            AmtimeInodes(list) => {
                for (inode, atime, mtime) in list {
                    out.put_u32(*inode);
                    out.put_u32(*atime);
                    out.put_u32(*mtime);
                }
            }
        }
    }
}
