//! Client → master requests.
//!
//! Decoding accepts what 3.0.117 mfsmount and the 3.0.117 tools send, plus
//! the single-gid credential form where the master takes it. Every other
//! request id in 350–547 (the even ones: odd ids are replies, which no
//! client sends) becomes [`ClToMa::Other`], so the master can answer it
//! with a status instead of closing the connection; any other unknown id is
//! an error (the connection is closed, as the real master does).

use crate::client::ids;
use crate::client::types::{get_cstring, get_name, Cred};
use crate::client::{REGISTER_BLOB, SCLASS_NAMED, SMODE_EXCHANGE, SMODE_TMASK};
use crate::client::{REG_CLOSESESSION, REG_GETRANDOM, REG_NEWMETASESSION, REG_NEWSESSION, REG_RECONNECT, REG_TOOLS};
use crate::error::{Error, Result};
use crate::wire::Reader;

mod encode;

/// Resuming an earlier session at registration: its id and, from 3.0.11
/// on, the metadata id it belonged to (a mismatch makes a new session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub sessionid: u32,
    pub metaid: Option<u64>,
}

/// The target of `SETSCLASS`: a goal number 1–9 (`setid:8`), or `0xFF` and
/// a class name, preceded by the class to replace when the mode is
/// `SMODE_EXCHANGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SclassSet {
    Goal(u8),
    Named { src: Option<Vec<u8>>, dst: Vec<u8> },
}

/// Client → master. Names are raw bytes; `info` and `path` of the
/// registration keep the NUL the client counts in their length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClToMa {
    GetRandom,
    NewSession {
        version: u32,
        info: Vec<u8>,
        path: Vec<u8>,
        resume: Option<Resume>,
        /// `MD5(random[..16] ‖ MD5(password) ‖ random[16..])`.
        digest: Option<[u8; 16]>,
    },
    Reconnect {
        sessionid: u32,
        version: u32,
        metaid: Option<u64>,
    },
    /// A tool's connection; `sessionid` is that of the mount whose
    /// `.masterinfo` the tool read (mfsmount's proxy answers it itself).
    Tools {
        sessionid: u32,
        version: u32,
        metaid: Option<u64>,
    },
    NewMetaSession {
        version: u32,
        info: Vec<u8>,
        resume: Option<Resume>,
        digest: Option<[u8; 16]>,
    },
    CloseSession {
        sessionid: u32,
        metaid: Option<u64>,
    },
    /// Keep-alive; carries msgid 0 (an empty payload reads as 0 too).
    Nop {
        msgid: u32,
    },
    Statfs {
        msgid: u32,
    },
    Access {
        msgid: u32,
        inode: u32,
        cred: Cred,
        mask: u16,
    },
    Lookup {
        msgid: u32,
        parent: u32,
        name: Vec<u8>,
        cred: Cred,
    },
    /// The 16-byte form without `opened` reads as `opened` 0.
    GetAttr {
        msgid: u32,
        inode: u32,
        opened: u8,
        uid: u32,
        gid: u32,
    },
    SetAttr {
        msgid: u32,
        inode: u32,
        opened: u8,
        cred: Cred,
        setmask: u8,
        mode: u16,
        uid: u32,
        gid: u32,
        atime: u32,
        mtime: u32,
        winattr: u8,
        sugid_clear: u8,
    },
    ReadLink {
        msgid: u32,
        inode: u32,
    },
    /// `path` without the NUL the wire form ends with.
    Symlink {
        msgid: u32,
        parent: u32,
        name: Vec<u8>,
        path: Vec<u8>,
        cred: Cred,
    },
    Mknod {
        msgid: u32,
        parent: u32,
        name: Vec<u8>,
        node_type: u8,
        mode: u16,
        umask: u16,
        cred: Cred,
        rdev: u32,
    },
    Mkdir {
        msgid: u32,
        parent: u32,
        name: Vec<u8>,
        mode: u16,
        umask: u16,
        cred: Cred,
        copysgid: u8,
    },
    Unlink {
        msgid: u32,
        parent: u32,
        name: Vec<u8>,
        cred: Cred,
    },
    Rmdir {
        msgid: u32,
        parent: u32,
        name: Vec<u8>,
        cred: Cred,
    },
    Rename {
        msgid: u32,
        src_parent: u32,
        src_name: Vec<u8>,
        dst_parent: u32,
        dst_name: Vec<u8>,
        cred: Cred,
    },
    Link {
        msgid: u32,
        inode: u32,
        dst_parent: u32,
        dst_name: Vec<u8>,
        cred: Cred,
    },
    ReadDir {
        msgid: u32,
        inode: u32,
        cred: Cred,
        flags: u8,
        max_entries: u32,
        edge: u64,
    },
    Open {
        msgid: u32,
        inode: u32,
        cred: Cred,
        flags: u8,
    },
    /// The flags byte is absent in pre-3.0.3 requests and reads as 0.
    ReadChunk {
        msgid: u32,
        inode: u32,
        index: u32,
        flags: u8,
    },
    WriteChunk {
        msgid: u32,
        inode: u32,
        index: u32,
        flags: u8,
    },
    /// 29-byte form: both `index` and `flags`; 25: `flags` only; 24:
    /// neither. An `index` without `flags` encodes flags 0.
    WriteChunkEnd {
        msgid: u32,
        chunk: u64,
        inode: u32,
        index: Option<u32>,
        length: u64,
        flags: Option<u8>,
    },
    /// Without `index`: copy-count statistics of the file (mfscheckfile);
    /// with it: the copies of one chunk (mfsfileinfo).
    Check {
        msgid: u32,
        inode: u32,
        index: Option<u32>,
    },
    GetTrashTime {
        msgid: u32,
        inode: u32,
        gmode: u8,
    },
    SetTrashTime {
        msgid: u32,
        inode: u32,
        uid: u32,
        trashtime: u32,
        smode: u8,
    },
    GetSclass {
        msgid: u32,
        inode: u32,
        gmode: u8,
    },
    SetSclass {
        msgid: u32,
        inode: u32,
        uid: u32,
        smode: u8,
        target: SclassSet,
    },
    GetDirStats {
        msgid: u32,
        inode: u32,
    },
    Truncate {
        msgid: u32,
        inode: u32,
        flags: u8,
        cred: Cred,
        length: u64,
    },
    Create {
        msgid: u32,
        parent: u32,
        name: Vec<u8>,
        mode: u16,
        umask: u16,
        cred: Cred,
    },
    /// An empty `name` lists the names.
    GetXattr {
        msgid: u32,
        inode: u32,
        name: Vec<u8>,
        mode: u8,
        opened: u8,
        cred: Cred,
    },
    SetXattr {
        msgid: u32,
        inode: u32,
        name: Vec<u8>,
        value: Vec<u8>,
        mode: u8,
        opened: u8,
        cred: Cred,
    },
    Flock {
        msgid: u32,
        inode: u32,
        reqid: u32,
        owner: u64,
        cmd: u8,
    },
    PosixLock {
        msgid: u32,
        inode: u32,
        reqid: u32,
        owner: u64,
        pid: u32,
        cmd: u8,
        lock_type: u8,
        start: u64,
        end: u64,
    },
    /// The client's periodic clock check is sent without a msgid.
    TimeSync {
        msgid: Option<u32>,
    },
    /// Inodes the client holds open (no msgid, no reply). The deprecated id
    /// 499 decodes here too and re-encodes as 700.
    SustainedInodes(Vec<u32>),
    /// `(inode, atime, mtime)` updates (no msgid, no reply).
    AmtimeInodes(Vec<(u32, u32, u32)>),
    /// A request elkfs does not model; `msgid` is its first word where the
    /// message has one (350–499, `GET_CONFIG`, a 4-byte `GET_VERSION`), and
    /// a status answer goes out as `kind + 1` with that msgid. The
    /// monitoring ids (500–547) carry none: `mfscli` expects their real
    /// answer or nothing.
    /// `UNKNOWN_COMMAND` and `BAD_COMMAND_SIZE` land here too, without
    /// msgid: the real master ignores them.
    Other {
        kind: u32,
        msgid: Option<u32>,
    },
}

/// `version:32 ileng:32 info [pleng:32 path]` then the optional resume and
/// digest, which only the remaining length tells apart.
fn resume_digest(r: &mut Reader<'_>, kind: u32) -> Result<(Option<Resume>, Option<[u8; 16]>)> {
    let (resume_len, digest) = match r.remaining() {
        0 | 16 => (0, r.remaining() == 16),
        4 | 20 => (4, r.remaining() == 20),
        12 | 28 => (12, r.remaining() == 28),
        len => return Err(Error::BadLength { kind, len }),
    };
    let resume = match resume_len {
        0 => None,
        4 => Some(Resume { sessionid: r.u32()?, metaid: None }),
        _ => Some(Resume { sessionid: r.u32()?, metaid: Some(r.u64()?) }),
    };
    let digest = if digest { Some(r.array()?) } else { None };
    Ok((resume, digest))
}

fn session_meta(r: &mut Reader<'_>, kind: u32) -> Result<(u32, u32, Option<u64>)> {
    let (sessionid, version) = (r.u32()?, r.u32()?);
    let metaid = match r.remaining() {
        0 => None,
        8 => Some(r.u64()?),
        len => return Err(Error::BadLength { kind, len }),
    };
    Ok((sessionid, version, metaid))
}

fn lengthed(r: &mut Reader<'_>) -> Result<Vec<u8>> {
    let len = r.u32()? as usize;
    Ok(r.bytes(len)?.to_vec())
}

fn decode_register(r: &mut Reader<'_>, kind: u32) -> Result<ClToMa> {
    if r.bytes(64)? != REGISTER_BLOB {
        return Err(Error::BadValue { kind, what: "unknown registration blob" });
    }
    Ok(match r.u8()? {
        REG_GETRANDOM => ClToMa::GetRandom,
        REG_NEWSESSION => {
            let version = r.u32()?;
            let info = lengthed(r)?;
            let path = lengthed(r)?;
            let (resume, digest) = resume_digest(r, kind)?;
            ClToMa::NewSession { version, info, path, resume, digest }
        }
        REG_RECONNECT => {
            let (sessionid, version, metaid) = session_meta(r, kind)?;
            ClToMa::Reconnect { sessionid, version, metaid }
        }
        REG_TOOLS => {
            let (sessionid, version, metaid) = session_meta(r, kind)?;
            ClToMa::Tools { sessionid, version, metaid }
        }
        REG_NEWMETASESSION => {
            let version = r.u32()?;
            let info = lengthed(r)?;
            let (resume, digest) = resume_digest(r, kind)?;
            ClToMa::NewMetaSession { version, info, resume, digest }
        }
        REG_CLOSESESSION => {
            let sessionid = r.u32()?;
            let metaid = match r.remaining() {
                0 => None,
                8 => Some(r.u64()?),
                len => return Err(Error::BadLength { kind, len }),
            };
            ClToMa::CloseSession { sessionid, metaid }
        }
        _ => return Err(Error::BadValue { kind, what: "unknown registration code" }),
    })
}

fn words<T>(
    payload: &[u8],
    kind: u32,
    size: usize,
    mut each: impl FnMut(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    if !payload.len().is_multiple_of(size) {
        return Err(Error::BadLength { kind, len: payload.len() });
    }
    let mut r = Reader::new(kind, payload);
    let mut out = Vec::with_capacity(payload.len() / size);
    while r.remaining() > 0 {
        out.push(each(&mut r)?);
    }
    Ok(out)
}

impl ClToMa {
    pub fn decode(kind: u32, payload: &[u8]) -> Result<ClToMa> {
        let len = payload.len();
        let mut r = Reader::new(kind, payload);
        let msg = match kind {
            ids::REGISTER => decode_register(&mut r, kind)?,
            ids::NOP if len == 0 => ClToMa::Nop { msgid: 0 },
            ids::NOP => ClToMa::Nop { msgid: r.u32()? },
            ids::SUSTAINED_INODES | ids::SUSTAINED_INODES_DEPRECATED => {
                return Ok(ClToMa::SustainedInodes(words(payload, kind, 4, |r| r.u32())?));
            }
            ids::AMTIME_INODES => {
                return Ok(ClToMa::AmtimeInodes(words(payload, kind, 12, |r| Ok((r.u32()?, r.u32()?, r.u32()?)))?));
            }
            ids::TIME_SYNC if len == 0 => ClToMa::TimeSync { msgid: None },
            ids::TIME_SYNC => ClToMa::TimeSync { msgid: Some(r.u32()?) },
            ids::STATFS => ClToMa::Statfs { msgid: r.u32()? },
            ids::ACCESS => {
                let (msgid, inode) = (r.u32()?, r.u32()?);
                if len == 17 {
                    // Pre-2.0: one gid and an 8-bit mask.
                    let cred = Cred { uid: r.u32()?, gids: vec![r.u32()?] };
                    ClToMa::Access { msgid, inode, cred, mask: r.u8()? as u16 }
                } else {
                    // Told apart by parity, so even one-word lists count.
                    ClToMa::Access { msgid, inode, cred: Cred::get_counted(&mut r, kind, 2)?, mask: r.u16()? }
                }
            }
            ids::LOOKUP => {
                let (msgid, parent, name) = (r.u32()?, r.u32()?, get_name(&mut r)?);
                ClToMa::Lookup { msgid, parent, name, cred: Cred::get(&mut r, kind, 0)? }
            }
            ids::GETATTR => {
                let (msgid, inode) = (r.u32()?, r.u32()?);
                let opened = if len == 17 { r.u8()? } else { 0 };
                if len != 16 && len != 17 {
                    return Err(Error::BadLength { kind, len });
                }
                ClToMa::GetAttr { msgid, inode, opened, uid: r.u32()?, gid: r.u32()? }
            }
            ids::SETATTR => ClToMa::SetAttr {
                msgid: r.u32()?,
                inode: r.u32()?,
                opened: r.u8()?,
                cred: Cred::get(&mut r, kind, 21)?,
                setmask: r.u8()?,
                mode: r.u16()?,
                uid: r.u32()?,
                gid: r.u32()?,
                atime: r.u32()?,
                mtime: r.u32()?,
                winattr: r.u8()?,
                sugid_clear: r.u8()?,
            },
            ids::READLINK => ClToMa::ReadLink { msgid: r.u32()?, inode: r.u32()? },
            ids::SYMLINK => {
                let (msgid, parent, name) = (r.u32()?, r.u32()?, get_name(&mut r)?);
                let path = get_cstring(&mut r, kind)?;
                ClToMa::Symlink { msgid, parent, name, path, cred: Cred::get(&mut r, kind, 0)? }
            }
            ids::MKNOD => {
                let (msgid, parent, name) = (r.u32()?, r.u32()?, get_name(&mut r)?);
                let (node_type, mode, umask) = (r.u8()?, r.u16()?, r.u16()?);
                let cred = Cred::get(&mut r, kind, 4)?;
                ClToMa::Mknod { msgid, parent, name, node_type, mode, umask, cred, rdev: r.u32()? }
            }
            ids::MKDIR => {
                let (msgid, parent, name) = (r.u32()?, r.u32()?, get_name(&mut r)?);
                let (mode, umask) = (r.u16()?, r.u16()?);
                let cred = Cred::get(&mut r, kind, 1)?;
                ClToMa::Mkdir { msgid, parent, name, mode, umask, cred, copysgid: r.u8()? }
            }
            ids::UNLINK | ids::RMDIR => {
                let (msgid, parent, name) = (r.u32()?, r.u32()?, get_name(&mut r)?);
                let cred = Cred::get(&mut r, kind, 0)?;
                if kind == ids::UNLINK {
                    ClToMa::Unlink { msgid, parent, name, cred }
                } else {
                    ClToMa::Rmdir { msgid, parent, name, cred }
                }
            }
            ids::RENAME => ClToMa::Rename {
                msgid: r.u32()?,
                src_parent: r.u32()?,
                src_name: get_name(&mut r)?,
                dst_parent: r.u32()?,
                dst_name: get_name(&mut r)?,
                cred: Cred::get(&mut r, kind, 0)?,
            },
            ids::LINK => ClToMa::Link {
                msgid: r.u32()?,
                inode: r.u32()?,
                dst_parent: r.u32()?,
                dst_name: get_name(&mut r)?,
                cred: Cred::get(&mut r, kind, 0)?,
            },
            ids::READDIR => ClToMa::ReadDir {
                msgid: r.u32()?,
                inode: r.u32()?,
                cred: Cred::get(&mut r, kind, 13)?,
                flags: r.u8()?,
                max_entries: r.u32()?,
                edge: r.u64()?,
            },
            ids::OPEN => {
                ClToMa::Open { msgid: r.u32()?, inode: r.u32()?, cred: Cred::get(&mut r, kind, 1)?, flags: r.u8()? }
            }
            ids::READ_CHUNK | ids::WRITE_CHUNK => {
                let (msgid, inode, index) = (r.u32()?, r.u32()?, r.u32()?);
                let flags = if len == 13 { r.u8()? } else { 0 };
                if kind == ids::READ_CHUNK {
                    ClToMa::ReadChunk { msgid, inode, index, flags }
                } else {
                    ClToMa::WriteChunk { msgid, inode, index, flags }
                }
            }
            ids::WRITE_CHUNK_END => {
                let (msgid, chunk, inode) = (r.u32()?, r.u64()?, r.u32()?);
                let index = match len {
                    29 => Some(r.u32()?),
                    24 | 25 => None,
                    _ => return Err(Error::BadLength { kind, len }),
                };
                let length = r.u64()?;
                let flags = if len >= 25 { Some(r.u8()?) } else { None };
                ClToMa::WriteChunkEnd { msgid, chunk, inode, index, length, flags }
            }
            ids::CHECK => {
                ClToMa::Check { msgid: r.u32()?, inode: r.u32()?, index: if len == 12 { Some(r.u32()?) } else { None } }
            }
            ids::GETTRASHTIME => ClToMa::GetTrashTime { msgid: r.u32()?, inode: r.u32()?, gmode: r.u8()? },
            ids::SETTRASHTIME => ClToMa::SetTrashTime {
                msgid: r.u32()?,
                inode: r.u32()?,
                uid: r.u32()?,
                trashtime: r.u32()?,
                smode: r.u8()?,
            },
            ids::GETSCLASS => ClToMa::GetSclass { msgid: r.u32()?, inode: r.u32()?, gmode: r.u8()? },
            ids::SETSCLASS => {
                let (msgid, inode, uid) = (r.u32()?, r.u32()?, r.u32()?);
                let (setid, smode) = (r.u8()?, r.u8()?);
                let target = if setid == SCLASS_NAMED {
                    let src = if smode & SMODE_TMASK == SMODE_EXCHANGE { Some(get_name(&mut r)?) } else { None };
                    SclassSet::Named { src, dst: get_name(&mut r)? }
                } else {
                    SclassSet::Goal(setid)
                };
                ClToMa::SetSclass { msgid, inode, uid, smode, target }
            }
            ids::GETDIRSTATS => ClToMa::GetDirStats { msgid: r.u32()?, inode: r.u32()? },
            ids::TRUNCATE => ClToMa::Truncate {
                msgid: r.u32()?,
                inode: r.u32()?,
                flags: r.u8()?,
                cred: Cred::get(&mut r, kind, 8)?,
                length: r.u64()?,
            },
            ids::CREATE => {
                let (msgid, parent, name) = (r.u32()?, r.u32()?, get_name(&mut r)?);
                let (mode, umask) = (r.u16()?, r.u16()?);
                ClToMa::Create { msgid, parent, name, mode, umask, cred: Cred::get(&mut r, kind, 0)? }
            }
            ids::GETXATTR => ClToMa::GetXattr {
                msgid: r.u32()?,
                inode: r.u32()?,
                name: get_name(&mut r)?,
                mode: r.u8()?,
                opened: r.u8()?,
                cred: Cred::get(&mut r, kind, 0)?,
            },
            ids::SETXATTR => ClToMa::SetXattr {
                msgid: r.u32()?,
                inode: r.u32()?,
                name: get_name(&mut r)?,
                value: lengthed(&mut r)?,
                mode: r.u8()?,
                opened: r.u8()?,
                cred: Cred::get(&mut r, kind, 0)?,
            },
            ids::FLOCK => {
                ClToMa::Flock { msgid: r.u32()?, inode: r.u32()?, reqid: r.u32()?, owner: r.u64()?, cmd: r.u8()? }
            }
            ids::POSIX_LOCK => ClToMa::PosixLock {
                msgid: r.u32()?,
                inode: r.u32()?,
                reqid: r.u32()?,
                owner: r.u64()?,
                pid: r.u32()?,
                cmd: r.u8()?,
                lock_type: r.u8()?,
                start: r.u64()?,
                end: r.u64()?,
            },
            ids::GET_VERSION => {
                return match len {
                    0 => Ok(ClToMa::Other { kind, msgid: None }),
                    4 => Ok(ClToMa::Other { kind, msgid: Some(r.u32()?) }),
                    _ => Err(Error::BadLength { kind, len }),
                };
            }
            ids::GET_CONFIG => return Ok(ClToMa::Other { kind, msgid: Some(r.u32()?) }),
            ids::UNKNOWN_COMMAND | ids::BAD_COMMAND_SIZE => return Ok(ClToMa::Other { kind, msgid: None }),
            _ if kind % 2 == 1 => return Err(Error::UnknownType { kind, len }),
            _ if ids::FUSE_RANGE.contains(&kind) => return Ok(ClToMa::Other { kind, msgid: Some(r.u32()?) }),
            _ if ids::ADMIN_RANGE.contains(&kind) => return Ok(ClToMa::Other { kind, msgid: None }),
            _ => return Err(Error::UnknownType { kind, len }),
        };
        r.finish()?;
        Ok(msg)
    }

    /// The message id the reply must echo; `None` for registration and the
    /// one-way messages.
    pub fn msgid(&self) -> Option<u32> {
        use ClToMa::*;
        match self {
            GetRandom
            | NewSession { .. }
            | Reconnect { .. }
            | Tools { .. }
            | NewMetaSession { .. }
            | CloseSession { .. }
            | SustainedInodes(_)
            | AmtimeInodes(_) => None,
            TimeSync { msgid } | Other { msgid, .. } => *msgid,
            Nop { msgid }
            | Statfs { msgid }
            | Access { msgid, .. }
            | Lookup { msgid, .. }
            | GetAttr { msgid, .. }
            | SetAttr { msgid, .. }
            | ReadLink { msgid, .. }
            | Symlink { msgid, .. }
            | Mknod { msgid, .. }
            | Mkdir { msgid, .. }
            | Unlink { msgid, .. }
            | Rmdir { msgid, .. }
            | Rename { msgid, .. }
            | Link { msgid, .. }
            | ReadDir { msgid, .. }
            | Open { msgid, .. }
            | ReadChunk { msgid, .. }
            | WriteChunk { msgid, .. }
            | WriteChunkEnd { msgid, .. }
            | Check { msgid, .. }
            | GetTrashTime { msgid, .. }
            | SetTrashTime { msgid, .. }
            | GetSclass { msgid, .. }
            | SetSclass { msgid, .. }
            | GetDirStats { msgid, .. }
            | Truncate { msgid, .. }
            | Create { msgid, .. }
            | GetXattr { msgid, .. }
            | SetXattr { msgid, .. }
            | Flock { msgid, .. }
            | PosixLock { msgid, .. } => Some(*msgid),
        }
    }
}
