//! Master → client replies and pushes.
//!
//! Replies are decoded by kind and length, which tells every form apart
//! except the entries of a `READDIR` reply: whether they carry attribute
//! records is in the request, so [`MaToCl::decode`] takes a [`DirForm`]
//! (ignored for every other kind). A five-byte payload `msgid status` on
//! any FUSE reply kind is the error form, [`MaToCl::Status`].

use crate::client::ids;
use crate::client::types::{
    get_attr, get_cstring, get_name, AttrBytes, ChunkLoc, DirEntries, DirStats, FirstChunk, Sclass,
};
use crate::error::{Error, Result};
use crate::status::Status;
use crate::wire::Reader;
use crate::Addr;

mod encode;

/// Which entry form a `READDIR` reply has: the request's
/// [`READDIR_ATTRS`](crate::client::READDIR_ATTRS) flag decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirForm {
    Attrs,
    Types,
}

/// The 49-byte answer to `NEWSESSION` for clients from 3.0.112 on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Session {
    /// The master's version (`major:16 mid:8 minor*2:8`).
    pub version: u32,
    pub sessionid: u32,
    pub metaid: u64,
    pub sesflags: u8,
    pub umask: u16,
    pub rootuid: u32,
    pub rootgid: u32,
    pub mapalluid: u32,
    pub mapallgid: u32,
    pub mingoal: u8,
    pub maxgoal: u8,
    pub mintrashtime: u32,
    pub maxtrashtime: u32,
    /// `DISABLE_*` bits: operations this export forbids.
    pub disables: u32,
}

/// The 27-byte answer to `NEWMETASESSION`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaSession {
    pub version: u32,
    pub sessionid: u32,
    pub metaid: u64,
    pub sesflags: u8,
    pub mingoal: u8,
    pub maxgoal: u8,
    pub mintrashtime: u32,
    pub maxtrashtime: u32,
}

/// Master → client. Variants with a `kind` serve several replies of the
/// same layout; their `kind` must be one of those (checked when encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaToCl {
    /// Keep-alive, msgid 0 (an empty payload reads as 0 too).
    Nop {
        msgid: u32,
    },
    /// The error form of any FUSE reply, and the only form of `ACCESS`,
    /// `WRITE_CHUNK_END`, `SETXATTR` and `FLOCK` replies.
    Status {
        kind: u32,
        msgid: u32,
        status: Status,
    },
    /// `REGISTER` answers: the password challenge, a new (meta) session, a
    /// reconnect, and the one-byte status of every other outcome.
    Random([u8; 32]),
    Session(Session),
    MetaSession(MetaSession),
    Reconnected {
        version: u32,
        status: Status,
    },
    RegisterStatus(Status),
    Statfs {
        msgid: u32,
        total: u64,
        avail: u64,
        free: u64,
        trash: u64,
        sustained: u64,
        inodes: u32,
    },
    /// `lflags` (access bits and hints) is absent in the minimal form; the
    /// client then asks again before every open. `first_chunk` comes only
    /// with `lflags` that have [`LOOKUP_CHUNK_ZERO_DATA`](crate::client::LOOKUP_CHUNK_ZERO_DATA).
    Lookup {
        msgid: u32,
        inode: u32,
        attr: AttrBytes,
        lflags: Option<u16>,
        first_chunk: Option<FirstChunk>,
    },
    /// `GETATTR` and `SETATTR` replies.
    Attr {
        kind: u32,
        msgid: u32,
        attr: AttrBytes,
    },
    /// `MKNOD`, `MKDIR`, `SYMLINK`, `LINK` and `RENAME` replies.
    Entry {
        kind: u32,
        msgid: u32,
        inode: u32,
        attr: AttrBytes,
    },
    Create {
        msgid: u32,
        oflags: u8,
        inode: u32,
        attr: AttrBytes,
    },
    Open {
        msgid: u32,
        oflags: u8,
        attr: AttrBytes,
    },
    /// `UNLINK` and `RMDIR` success: the removed inode.
    Removed {
        kind: u32,
        msgid: u32,
        inode: u32,
    },
    /// The target without the NUL the wire form ends with.
    ReadLink {
        msgid: u32,
        path: Vec<u8>,
    },
    /// `next_edge` is meant as the cursor for the next request, but the
    /// 3.0.117 master writes the field before it lists and so echoes the
    /// request's edge id (0 in every capture); the 3.0.117 client asks for
    /// the whole directory at once and ignores it.
    ReadDir {
        msgid: u32,
        next_edge: u64,
        entries: DirEntries,
    },
    /// `READ_CHUNK` and `WRITE_CHUNK` replies.
    Chunk {
        kind: u32,
        msgid: u32,
        loc: ChunkLoc,
    },
    Truncate {
        msgid: u32,
        prev_length: u64,
        attr: AttrBytes,
    },
    /// `CHECK` of a whole file: chunks by copy count, 0..=10 and "more".
    CheckCounts {
        msgid: u32,
        counts: [u32; 12],
    },
    /// `CHECK` of one chunk: its id, version and `(server, copy status)`.
    CheckChunk {
        msgid: u32,
        chunk: u64,
        version: u32,
        copies: Vec<(Addr, u8)>,
    },
    /// `(trashtime, count)` over files and over directories.
    TrashTime {
        msgid: u32,
        files: Vec<(u32, u32)>,
        dirs: Vec<(u32, u32)>,
    },
    /// `SETTRASHTIME` and `SETSCLASS` replies.
    Changed {
        kind: u32,
        msgid: u32,
        changed: u32,
        not_changed: u32,
        not_permitted: u32,
    },
    /// `(class, count)` over files and over directories; the tools expect
    /// exactly one entry in the non-recursive mode.
    Sclass {
        msgid: u32,
        files: Vec<(Sclass, u32)>,
        dirs: Vec<(Sclass, u32)>,
    },
    /// `padded`: the 60-byte form with four zero words, which the master
    /// sends on mount connections (and tools get through the mount); the
    /// 44-byte form goes to tools connected directly.
    DirStats {
        msgid: u32,
        stats: DirStats,
        padded: bool,
    },
    /// `size` is the value's (or, for an empty name, the name list's)
    /// length; `value` is empty when only the length was asked.
    Xattr {
        msgid: u32,
        size: u32,
        value: Vec<u8>,
    },
    /// `GETLK` answer: the conflicting lock.
    PosixLock {
        msgid: u32,
        pid: u32,
        lock_type: u8,
        start: u64,
        end: u64,
    },
    /// The master's clock in microseconds; no msgid when the client sent none.
    TimeSync {
        msgid: Option<u32>,
        usec: u64,
    },
    /// Pushed to other sessions with the file open after a write or
    /// truncate changed a chunk (msgid 0 on the wire).
    ChunkHasChanged {
        inode: u32,
        index: u32,
        chunk: u64,
        version: u32,
        length: u64,
        truncated: u8,
    },
    FlengHasChanged {
        inode: u32,
        length: u64,
    },
    InvalidateChunkCache,
}

/// Reply ids that start with a msgid: the odd ids of the FUSE and storage
/// class range, except the registration answer.
pub(crate) fn is_fuse_reply(kind: u32) -> bool {
    ids::FUSE_RANGE.contains(&kind) && kind % 2 == 1 && kind != ids::REGISTER_REPLY
}

fn pairs(r: &mut Reader<'_>, n: u32) -> Result<Vec<(u32, u32)>> {
    (0..n).map(|_| Ok((r.u32()?, r.u32()?))).collect()
}

fn sclasses(r: &mut Reader<'_>, kind: u32, n: u8) -> Result<Vec<(Sclass, u32)>> {
    (0..n).map(|_| Ok((Sclass::get(r, kind)?, r.u32()?))).collect()
}

fn decode_register(r: &mut Reader<'_>, kind: u32, len: usize) -> Result<MaToCl> {
    Ok(match len {
        1 => MaToCl::RegisterStatus(Status(r.u8()?)),
        5 => MaToCl::Reconnected { version: r.u32()?, status: Status(r.u8()?) },
        32 => MaToCl::Random(r.array()?),
        27 => MaToCl::MetaSession(MetaSession {
            version: r.u32()?,
            sessionid: r.u32()?,
            metaid: r.u64()?,
            sesflags: r.u8()?,
            mingoal: r.u8()?,
            maxgoal: r.u8()?,
            mintrashtime: r.u32()?,
            maxtrashtime: r.u32()?,
        }),
        49 => MaToCl::Session(Session {
            version: r.u32()?,
            sessionid: r.u32()?,
            metaid: r.u64()?,
            sesflags: r.u8()?,
            umask: r.u16()?,
            rootuid: r.u32()?,
            rootgid: r.u32()?,
            mapalluid: r.u32()?,
            mapallgid: r.u32()?,
            mingoal: r.u8()?,
            maxgoal: r.u8()?,
            mintrashtime: r.u32()?,
            maxtrashtime: r.u32()?,
            disables: r.u32()?,
        }),
        _ => return Err(Error::BadLength { kind, len }),
    })
}

impl MaToCl {
    /// Decodes one reply or push; `dir_form` says which entry form a
    /// `READDIR` reply has and is ignored for every other kind.
    pub fn decode(kind: u32, payload: &[u8], dir_form: DirForm) -> Result<MaToCl> {
        let len = payload.len();
        let mut r = Reader::new(kind, payload);
        let msg = match kind {
            ids::NOP if len == 0 => MaToCl::Nop { msgid: 0 },
            ids::NOP => MaToCl::Nop { msgid: r.u32()? },
            ids::REGISTER_REPLY => decode_register(&mut r, kind, len)?,
            ids::TIME_SYNC_REPLY => match len {
                8 => MaToCl::TimeSync { msgid: None, usec: r.u64()? },
                12 => MaToCl::TimeSync { msgid: Some(r.u32()?), usec: r.u64()? },
                _ => return Err(Error::BadLength { kind, len }),
            },
            ids::CHUNK_HAS_CHANGED => {
                r.u32()?;
                MaToCl::ChunkHasChanged {
                    inode: r.u32()?,
                    index: r.u32()?,
                    chunk: r.u64()?,
                    version: r.u32()?,
                    length: r.u64()?,
                    truncated: r.u8()?,
                }
            }
            ids::FLENG_HAS_CHANGED => {
                r.u32()?;
                MaToCl::FlengHasChanged { inode: r.u32()?, length: r.u64()? }
            }
            ids::INVALIDATE_CHUNK_CACHE => {
                r.u32()?;
                MaToCl::InvalidateChunkCache
            }
            _ if is_fuse_reply(kind) && len == 5 => MaToCl::Status { kind, msgid: r.u32()?, status: Status(r.u8()?) },
            _ => decode_success(&mut r, kind, len, dir_form)?,
        };
        r.finish()?;
        Ok(msg)
    }

    /// The msgid of a reply; `None` for registration answers and pushes.
    pub fn msgid(&self) -> Option<u32> {
        use MaToCl::*;
        match self {
            Random(_)
            | Session(_)
            | MetaSession(_)
            | Reconnected { .. }
            | RegisterStatus(_)
            | ChunkHasChanged { .. }
            | FlengHasChanged { .. }
            | InvalidateChunkCache => None,
            TimeSync { msgid, .. } => *msgid,
            Nop { msgid }
            | Status { msgid, .. }
            | Statfs { msgid, .. }
            | Lookup { msgid, .. }
            | Attr { msgid, .. }
            | Entry { msgid, .. }
            | Create { msgid, .. }
            | Open { msgid, .. }
            | Removed { msgid, .. }
            | ReadLink { msgid, .. }
            | ReadDir { msgid, .. }
            | Chunk { msgid, .. }
            | Truncate { msgid, .. }
            | CheckCounts { msgid, .. }
            | CheckChunk { msgid, .. }
            | TrashTime { msgid, .. }
            | Changed { msgid, .. }
            | Sclass { msgid, .. }
            | DirStats { msgid, .. }
            | Xattr { msgid, .. }
            | PosixLock { msgid, .. } => Some(*msgid),
        }
    }
}

/// The success forms of msgid-carrying replies.
fn decode_success(r: &mut Reader<'_>, kind: u32, len: usize, dir_form: DirForm) -> Result<MaToCl> {
    let bad = Error::BadLength { kind, len };
    let msgid = match kind {
        _ if is_fuse_reply(kind) => r.u32()?,
        _ => return Err(Error::UnknownType { kind, len }),
    };
    Ok(match kind {
        ids::STATFS_REPLY => MaToCl::Statfs {
            msgid,
            total: r.u64()?,
            avail: r.u64()?,
            free: r.u64()?,
            trash: r.u64()?,
            sustained: r.u64()?,
            inodes: r.u32()?,
        },
        ids::LOOKUP_REPLY => {
            let (inode, attr) = (r.u32()?, get_attr(r)?);
            let lflags = if len > 44 { Some(r.u16()?) } else { None };
            let first_chunk = match lflags {
                Some(f) if f & crate::client::LOOKUP_CHUNK_ZERO_DATA != 0 => Some(FirstChunk::get(r, kind)?),
                _ => None,
            };
            MaToCl::Lookup { msgid, inode, attr, lflags, first_chunk }
        }
        ids::GETATTR_REPLY | ids::SETATTR_REPLY => MaToCl::Attr { kind, msgid, attr: get_attr(r)? },
        ids::MKNOD_REPLY | ids::MKDIR_REPLY | ids::SYMLINK_REPLY | ids::LINK_REPLY | ids::RENAME_REPLY => {
            MaToCl::Entry { kind, msgid, inode: r.u32()?, attr: get_attr(r)? }
        }
        ids::CREATE_REPLY => MaToCl::Create { msgid, oflags: r.u8()?, inode: r.u32()?, attr: get_attr(r)? },
        ids::OPEN_REPLY => MaToCl::Open { msgid, oflags: r.u8()?, attr: get_attr(r)? },
        ids::UNLINK_REPLY | ids::RMDIR_REPLY => MaToCl::Removed { kind, msgid, inode: r.u32()? },
        ids::READLINK_REPLY => MaToCl::ReadLink { msgid, path: get_cstring(r, kind)? },
        ids::READDIR_REPLY => {
            let next_edge = r.u64()?;
            let entries = match dir_form {
                DirForm::Attrs => {
                    let mut list = Vec::new();
                    while r.remaining() > 0 {
                        list.push((get_name(r)?, r.u32()?, get_attr(r)?));
                    }
                    DirEntries::Attrs(list)
                }
                DirForm::Types => {
                    let mut list = Vec::new();
                    while r.remaining() > 0 {
                        list.push((get_name(r)?, r.u32()?, r.u8()?));
                    }
                    DirEntries::Types(list)
                }
            };
            MaToCl::ReadDir { msgid, next_edge, entries }
        }
        ids::READ_CHUNK_REPLY | ids::WRITE_CHUNK_REPLY => MaToCl::Chunk { kind, msgid, loc: ChunkLoc::get(r, kind)? },
        ids::TRUNCATE_REPLY => MaToCl::Truncate { msgid, prev_length: r.u64()?, attr: get_attr(r)? },
        ids::CHECK_REPLY if len == 52 => {
            let mut counts = [0; 12];
            for c in &mut counts {
                *c = r.u32()?;
            }
            MaToCl::CheckCounts { msgid, counts }
        }
        ids::CHECK_REPLY => {
            let (chunk, version) = (r.u64()?, r.u32()?);
            if !r.remaining().is_multiple_of(7) {
                return Err(bad);
            }
            let mut copies = Vec::with_capacity(r.remaining() / 7);
            while r.remaining() > 0 {
                copies.push((Addr { ip: r.u32()?, port: r.u16()? }, r.u8()?));
            }
            MaToCl::CheckChunk { msgid, chunk, version, copies }
        }
        ids::GETTRASHTIME_REPLY => {
            let (nfiles, ndirs) = (r.u32()?, r.u32()?);
            if (nfiles as u64 + ndirs as u64) * 8 != r.remaining() as u64 {
                return Err(bad);
            }
            MaToCl::TrashTime { msgid, files: pairs(r, nfiles)?, dirs: pairs(r, ndirs)? }
        }
        ids::SETTRASHTIME_REPLY | ids::SETSCLASS_REPLY => {
            MaToCl::Changed { kind, msgid, changed: r.u32()?, not_changed: r.u32()?, not_permitted: r.u32()? }
        }
        ids::GETSCLASS_REPLY => {
            let (nfiles, ndirs) = (r.u8()?, r.u8()?);
            MaToCl::Sclass { msgid, files: sclasses(r, kind, nfiles)?, dirs: sclasses(r, kind, ndirs)? }
        }
        ids::GETDIRSTATS_REPLY => {
            let padded = match len {
                44 => false,
                60 => true,
                _ => return Err(bad),
            };
            let (inodes, dirs, files) = (r.u32()?, r.u32()?, r.u32()?);
            if padded {
                r.u64()?;
            }
            let chunks = r.u32()?;
            if padded {
                r.u64()?;
            }
            let stats = DirStats { inodes, dirs, files, chunks, length: r.u64()?, size: r.u64()?, realsize: r.u64()? };
            MaToCl::DirStats { msgid, stats, padded }
        }
        ids::GETXATTR_REPLY => {
            let size = r.u32()?;
            let value = r.rest();
            if !value.is_empty() && value.len() != size as usize {
                return Err(bad);
            }
            MaToCl::Xattr { msgid, size, value: value.to_vec() }
        }
        ids::POSIX_LOCK_REPLY => {
            MaToCl::PosixLock { msgid, pid: r.u32()?, lock_type: r.u8()?, start: r.u64()?, end: r.u64()? }
        }
        _ => return Err(Error::UnknownType { kind, len }),
    })
}
