//! Master → client replies onto the wire.

use super::MaToCl;
use crate::client::ids;
use crate::frame::Encode;
use crate::wire::Put;

/// Kinds a multi-kind variant may carry; anything else is a programming
/// error on the master's side.
fn checked(kind: u32, allowed: &[u32], what: &str) -> u32 {
    assert!(allowed.contains(&kind), "{what} reply cannot have kind {kind}");
    kind
}

impl Encode for MaToCl {
    fn kind(&self) -> u32 {
        use MaToCl::*;
        match self {
            Nop { .. } => ids::NOP,
            Status { kind, .. } => {
                assert!(super::is_fuse_reply(*kind), "status reply cannot have kind {kind}");
                *kind
            }
            Random(_) | Session(_) | MetaSession(_) | Reconnected { .. } | RegisterStatus(_) => ids::REGISTER_REPLY,
            Statfs { .. } => ids::STATFS_REPLY,
            Lookup { .. } => ids::LOOKUP_REPLY,
            Attr { kind, .. } => checked(*kind, &[ids::GETATTR_REPLY, ids::SETATTR_REPLY], "attribute"),
            Entry { kind, .. } => checked(
                *kind,
                &[ids::MKNOD_REPLY, ids::MKDIR_REPLY, ids::SYMLINK_REPLY, ids::LINK_REPLY, ids::RENAME_REPLY],
                "entry",
            ),
            Create { .. } => ids::CREATE_REPLY,
            Open { .. } => ids::OPEN_REPLY,
            Removed { kind, .. } => checked(*kind, &[ids::UNLINK_REPLY, ids::RMDIR_REPLY], "removal"),
            ReadLink { .. } => ids::READLINK_REPLY,
            ReadDir { .. } => ids::READDIR_REPLY,
            Chunk { kind, .. } => checked(*kind, &[ids::READ_CHUNK_REPLY, ids::WRITE_CHUNK_REPLY], "chunk location"),
            Truncate { .. } => ids::TRUNCATE_REPLY,
            CheckCounts { .. } | CheckChunk { .. } => ids::CHECK_REPLY,
            TrashTime { .. } => ids::GETTRASHTIME_REPLY,
            Changed { kind, .. } => checked(*kind, &[ids::SETTRASHTIME_REPLY, ids::SETSCLASS_REPLY], "change count"),
            Sclass { .. } => ids::GETSCLASS_REPLY,
            DirStats { .. } => ids::GETDIRSTATS_REPLY,
            Xattr { .. } => ids::GETXATTR_REPLY,
            PosixLock { .. } => ids::POSIX_LOCK_REPLY,
            TimeSync { .. } => ids::TIME_SYNC_REPLY,
            ChunkHasChanged { .. } => ids::CHUNK_HAS_CHANGED,
            FlengHasChanged { .. } => ids::FLENG_HAS_CHANGED,
            InvalidateChunkCache => ids::INVALIDATE_CHUNK_CACHE,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        use MaToCl::*;
        if let Some(msgid) = self.msgid() {
            out.put_u32(msgid);
        }
        match self {
            Nop { .. } => {}
            Status { status, .. } => out.put_u8(status.0),
            Random(bytes) => out.extend_from_slice(bytes),
            Session(s) => {
                out.put_u32(s.version);
                out.put_u32(s.sessionid);
                out.put_u64(s.metaid);
                out.put_u8(s.sesflags);
                out.put_u16(s.umask);
                out.put_u32(s.rootuid);
                out.put_u32(s.rootgid);
                out.put_u32(s.mapalluid);
                out.put_u32(s.mapallgid);
                out.put_u8(s.mingoal);
                out.put_u8(s.maxgoal);
                out.put_u32(s.mintrashtime);
                out.put_u32(s.maxtrashtime);
                out.put_u32(s.disables);
            }
            MetaSession(s) => {
                out.put_u32(s.version);
                out.put_u32(s.sessionid);
                out.put_u64(s.metaid);
                out.put_u8(s.sesflags);
                out.put_u8(s.mingoal);
                out.put_u8(s.maxgoal);
                out.put_u32(s.mintrashtime);
                out.put_u32(s.maxtrashtime);
            }
            Reconnected { version, status } => {
                out.put_u32(*version);
                out.put_u8(status.0);
            }
            RegisterStatus(status) => out.put_u8(status.0),
            Statfs { total, avail, free, trash, sustained, inodes, .. } => {
                for v in [total, avail, free, trash, sustained] {
                    out.put_u64(*v);
                }
                out.put_u32(*inodes);
            }
            Lookup { inode, attr, lflags, first_chunk, .. } => {
                out.put_u32(*inode);
                out.extend_from_slice(attr);
                if let Some(f) = lflags {
                    out.put_u16(*f);
                }
                let flagged = lflags.is_some_and(|f| f & crate::client::LOOKUP_CHUNK_ZERO_DATA != 0);
                assert_eq!(flagged, first_chunk.is_some(), "chunk 0 data goes with its lflags bit only");
                if let Some(c) = first_chunk {
                    c.put(out);
                }
            }
            Attr { attr, .. } => out.extend_from_slice(attr),
            Entry { inode, attr, .. } => {
                out.put_u32(*inode);
                out.extend_from_slice(attr);
            }
            Create { oflags, inode, attr, .. } => {
                out.put_u8(*oflags);
                out.put_u32(*inode);
                out.extend_from_slice(attr);
            }
            Open { oflags, attr, .. } => {
                out.put_u8(*oflags);
                out.extend_from_slice(attr);
            }
            Removed { inode, .. } => out.put_u32(*inode),
            ReadLink { path, .. } => crate::client::types::put_cstring(out, path),
            ReadDir { next_edge, entries, .. } => {
                out.put_u64(*next_edge);
                entries.put(out);
            }
            Chunk { loc, .. } => loc.put(out),
            Truncate { prev_length, attr, .. } => {
                out.put_u64(*prev_length);
                out.extend_from_slice(attr);
            }
            CheckCounts { counts, .. } => counts.iter().for_each(|c| out.put_u32(*c)),
            CheckChunk { chunk, version, copies, .. } => {
                out.put_u64(*chunk);
                out.put_u32(*version);
                for (addr, status) in copies {
                    out.put_u32(addr.ip);
                    out.put_u16(addr.port);
                    out.put_u8(*status);
                }
            }
            TrashTime { files, dirs, .. } => {
                out.put_u32(files.len() as u32);
                out.put_u32(dirs.len() as u32);
                for (time, count) in files.iter().chain(dirs) {
                    out.put_u32(*time);
                    out.put_u32(*count);
                }
            }
            Changed { changed, not_changed, not_permitted, .. } => {
                out.put_u32(*changed);
                out.put_u32(*not_changed);
                out.put_u32(*not_permitted);
            }
            Sclass { files, dirs, .. } => {
                assert!(files.len() <= 255 && dirs.len() <= 255, "more storage classes than an 8-bit count holds");
                out.put_u8(files.len() as u8);
                out.put_u8(dirs.len() as u8);
                for (class, count) in files.iter().chain(dirs) {
                    class.put(out);
                    out.put_u32(*count);
                }
            }
            DirStats { stats, padded, .. } => {
                out.put_u32(stats.inodes);
                out.put_u32(stats.dirs);
                out.put_u32(stats.files);
                if *padded {
                    out.put_u64(0);
                }
                out.put_u32(stats.chunks);
                if *padded {
                    out.put_u64(0);
                }
                out.put_u64(stats.length);
                out.put_u64(stats.size);
                out.put_u64(stats.realsize);
            }
            Xattr { size, value, .. } => {
                assert!(value.is_empty() || value.len() == *size as usize, "xattr value length differs from its size");
                out.put_u32(*size);
                out.extend_from_slice(value);
            }
            PosixLock { pid, lock_type, start, end, .. } => {
                out.put_u32(*pid);
                out.put_u8(*lock_type);
                out.put_u64(*start);
                out.put_u64(*end);
            }
            TimeSync { usec, .. } => out.put_u64(*usec),
            ChunkHasChanged { inode, index, chunk, version, length, truncated } => {
                out.put_u32(0);
                out.put_u32(*inode);
                out.put_u32(*index);
                out.put_u64(*chunk);
                out.put_u32(*version);
                out.put_u64(*length);
                out.put_u8(*truncated);
            }
            FlengHasChanged { inode, length } => {
                out.put_u32(0);
                out.put_u32(*inode);
                out.put_u64(*length);
            }
            InvalidateChunkCache => out.put_u32(0),
        }
    }
}
