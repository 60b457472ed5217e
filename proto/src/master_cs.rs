//! The master link (9420): registration, space and damage reports from the
//! chunkserver; chunk commands from the master. Both directions are here so
//! the elkfs master can use the same types.

use crate::data::{DataMsg, CHUNK_BLOCKS, CHUNK_CHECKSUM, CHUNK_CHECKSUM_TAB};
use crate::data::{GET_CHUNK_BLOCKS, GET_CHUNK_CHECKSUM, GET_CHUNK_CHECKSUM_TAB};
use crate::error::{Error, Result};
use crate::frame::Encode;
use crate::status::Status;
use crate::wire::{Put, Reader};
use crate::Addr;

pub const NOP: u32 = 0;
pub const REGISTER: u32 = 100;
pub const SPACE: u32 = 101;
pub const CHUNK_DAMAGED: u32 = 102;
pub const CURRENT_LOAD: u32 = 103;
pub const MASTER_ACK: u32 = 104;
pub const CHUNK_LOST: u32 = 105;
pub const ERROR_OCCURRED: u32 = 106;
pub const CHUNK_NEW: u32 = 107;
pub const LABELS: u32 = 109;
pub const CREATE: u32 = 110;
pub const CREATE_REPLY: u32 = 111;
pub const DELETE: u32 = 120;
pub const DELETE_REPLY: u32 = 121;
pub const DUPLICATE: u32 = 130;
pub const DUPLICATE_REPLY: u32 = 131;
pub const SET_VERSION: u32 = 140;
pub const SET_VERSION_REPLY: u32 = 141;
pub const REPLICATE: u32 = 150;
pub const REPLICATE_REPLY: u32 = 151;
pub const CHUNKOP: u32 = 152;
pub const CHUNKOP_REPLY: u32 = 153;
pub const TRUNCATE: u32 = 160;
pub const TRUNCATE_REPLY: u32 = 161;
pub const DUPTRUNC: u32 = 170;
pub const DUPTRUNC_REPLY: u32 = 171;

/// Register sub-types (the first payload byte): protocol "version 6", the
/// one 3.0.117 chunkservers speak, and the older "version 5".
pub const REG_BEGIN: u8 = 60;
pub const REG_CHUNKS: u8 = 61;
pub const REG_END: u8 = 62;
pub const REG_DISCONNECT: u8 = 63;
pub const REG5_BEGIN: u8 = 50;
pub const REG5_CHUNKS: u8 = 51;
pub const REG5_END: u8 = 52;

/// Top bit of a registered chunk's version: the copy sits on a disk marked
/// for removal.
pub const VERSION_ON_REMOVED_DISK: u32 = 0x8000_0000;

/// Disk space as the master accounts it; `td_*` for disks marked for removal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Space {
    pub used: u64,
    pub total: u64,
    pub chunks: u32,
    pub td_used: u64,
    pub td_total: u64,
    pub td_chunks: u32,
}

impl Space {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_u64(self.used);
        out.put_u64(self.total);
        out.put_u32(self.chunks);
        out.put_u64(self.td_used);
        out.put_u64(self.td_total);
        out.put_u32(self.td_chunks);
    }

    fn get(r: &mut Reader<'_>) -> Result<Space> {
        Ok(Space {
            used: r.u64()?,
            total: r.u64()?,
            chunks: r.u32()?,
            td_used: r.u64()?,
            td_total: r.u64()?,
            td_chunks: r.u32()?,
        })
    }
}

/// The master's answers during registration (`MATOCS_MASTER_ACK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// BEGIN accepted; `metaid` is absent for old chunkservers.
    Welcome { master_version: u32, timeout: u16, csid: u16, metaid: Option<u64> },
    /// A version 5 BEGIN accepted.
    WelcomeV5 { master_version: u32 },
    /// One batch of chunks taken: send the next.
    Next,
    /// The master wants an `AUTH_CODE` digest over this challenge.
    Auth { challenge: [u8; 32] },
    /// (Pro masters) talk to the leader at this address instead.
    Redirect { leader_ip: u32 },
    /// (Pro masters) wait before registering.
    Wait { version: u32, timeout: u16, metaid: Option<u64> },
}

/// Chunkserver → master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsToMa {
    Nop,
    RegisterBegin {
        /// MD5 digest answering an [`Ack::Auth`] challenge.
        auth: Option<[u8; 16]>,
        version: u32,
        ip: u32,
        port: u16,
        timeout: u16,
        csid: u16,
        space: Space,
    },
    /// `(chunk, version)`; version may carry [`VERSION_ON_REMOVED_DISK`].
    RegisterChunks(Vec<(u64, u32)>),
    RegisterEnd,
    RegisterDisconnect,
    RegisterBeginV5 {
        version: u32,
        ip: u32,
        port: u16,
        timeout: u16,
    },
    RegisterChunksV5(Vec<(u64, u32)>),
    RegisterEndV5 {
        space: Space,
    },
    Space(Space),
    ChunkDamaged(Vec<u64>),
    CurrentLoad {
        load: u32,
        hl_status: Option<u8>,
    },
    ChunkLost(Vec<u64>),
    ErrorOccurred,
    ChunkNew(Vec<(u64, u32)>),
    Labels(u32),
    CreateReply {
        chunk: u64,
        status: Status,
    },
    DeleteReply {
        chunk: u64,
        status: Status,
    },
    DuplicateReply {
        chunk: u64,
        status: Status,
    },
    SetVersionReply {
        chunk: u64,
        status: Status,
    },
    ReplicateReply {
        chunk: u64,
        version: u32,
        status: Status,
    },
    ChunkOpReply {
        op: ChunkOp,
        status: Status,
    },
    TruncateReply {
        chunk: u64,
        status: Status,
    },
    DupTruncReply {
        chunk: u64,
        status: Status,
    },
    /// Replies to the block-count and checksum queries, laid out as on the
    /// data port.
    Query(DataMsg),
}

/// The generic chunk operation of `MATOCS_CHUNKOP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOp {
    pub chunk: u64,
    pub version: u32,
    pub new_version: u32,
    pub copy_chunk: u64,
    pub copy_version: u32,
    pub length: u32,
}

/// Master → chunkserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaToCs {
    Nop,
    Ack(Ack),
    Create {
        chunk: u64,
        version: u32,
    },
    /// `version` 0 deletes whatever version is stored.
    Delete {
        chunk: u64,
        version: u32,
    },
    Duplicate {
        new_chunk: u64,
        new_version: u32,
        old_chunk: u64,
        old_version: u32,
    },
    SetVersion {
        chunk: u64,
        new_version: u32,
        old_version: u32,
    },
    /// Pull a copy from `source`'s data port.
    Replicate {
        chunk: u64,
        version: u32,
        source: Addr,
    },
    /// Build a chunk as the XOR of several sources; no 3.0 master sends it.
    ReplicateXor {
        chunk: u64,
        version: u32,
        xor_mask: [u32; 4],
        sources: Vec<(u64, u32, Addr)>,
    },
    ChunkOp(ChunkOp),
    Truncate {
        chunk: u64,
        length: u32,
        new_version: u32,
        old_version: u32,
    },
    DupTrunc {
        new_chunk: u64,
        new_version: u32,
        old_chunk: u64,
        old_version: u32,
        length: u32,
    },
    /// Block-count and checksum queries, laid out as on the data port.
    Query(DataMsg),
}

fn pairs(r: &mut Reader<'_>, kind: u32) -> Result<Vec<(u64, u32)>> {
    if !r.remaining().is_multiple_of(12) {
        return Err(Error::BadLength { kind, len: r.remaining() });
    }
    let mut out = Vec::with_capacity(r.remaining() / 12);
    while r.remaining() > 0 {
        out.push((r.u64()?, r.u32()?));
    }
    Ok(out)
}

fn ids(r: &mut Reader<'_>, kind: u32) -> Result<Vec<u64>> {
    if !r.remaining().is_multiple_of(8) {
        return Err(Error::BadLength { kind, len: r.remaining() });
    }
    let mut out = Vec::with_capacity(r.remaining() / 8);
    while r.remaining() > 0 {
        out.push(r.u64()?);
    }
    Ok(out)
}

fn chunk_status(r: &mut Reader<'_>) -> Result<(u64, Status)> {
    Ok((r.u64()?, Status(r.u8()?)))
}

impl CsToMa {
    pub fn decode(kind: u32, payload: &[u8]) -> Result<CsToMa> {
        let len = payload.len();
        let mut r = Reader::new(kind, payload);
        let msg = match kind {
            NOP => CsToMa::Nop,
            REGISTER => {
                let rver = r.u8()?;
                match rver {
                    REG_BEGIN => {
                        let auth = match len {
                            55 => None,
                            71 => Some(r.array()?),
                            _ => return Err(Error::BadLength { kind, len }),
                        };
                        CsToMa::RegisterBegin {
                            auth,
                            version: r.u32()?,
                            ip: r.u32()?,
                            port: r.u16()?,
                            timeout: r.u16()?,
                            csid: r.u16()?,
                            space: Space::get(&mut r)?,
                        }
                    }
                    REG_CHUNKS => CsToMa::RegisterChunks(pairs(&mut r, kind)?),
                    REG_END => CsToMa::RegisterEnd,
                    REG_DISCONNECT => CsToMa::RegisterDisconnect,
                    REG5_BEGIN => {
                        CsToMa::RegisterBeginV5 { version: r.u32()?, ip: r.u32()?, port: r.u16()?, timeout: r.u16()? }
                    }
                    REG5_CHUNKS => CsToMa::RegisterChunksV5(pairs(&mut r, kind)?),
                    REG5_END => CsToMa::RegisterEndV5 { space: Space::get(&mut r)? },
                    _ => return Err(Error::BadValue { kind, what: "register form not supported" }),
                }
            }
            SPACE => match len {
                40 => CsToMa::Space(Space::get(&mut r)?),
                16 | 32 => {
                    let (used, total) = (r.u64()?, r.u64()?);
                    let (td_used, td_total) = if len == 32 { (r.u64()?, r.u64()?) } else { (0, 0) };
                    CsToMa::Space(Space { used, total, chunks: 0, td_used, td_total, td_chunks: 0 })
                }
                _ => return Err(Error::BadLength { kind, len }),
            },
            CHUNK_DAMAGED => CsToMa::ChunkDamaged(ids(&mut r, kind)?),
            CURRENT_LOAD => match len {
                4 => CsToMa::CurrentLoad { load: r.u32()?, hl_status: None },
                5 => CsToMa::CurrentLoad { load: r.u32()?, hl_status: Some(r.u8()?) },
                _ => return Err(Error::BadLength { kind, len }),
            },
            CHUNK_LOST => CsToMa::ChunkLost(ids(&mut r, kind)?),
            ERROR_OCCURRED => CsToMa::ErrorOccurred,
            CHUNK_NEW => CsToMa::ChunkNew(pairs(&mut r, kind)?),
            LABELS => CsToMa::Labels(r.u32()?),
            CREATE_REPLY | DELETE_REPLY | DUPLICATE_REPLY | SET_VERSION_REPLY | TRUNCATE_REPLY | DUPTRUNC_REPLY => {
                let (chunk, status) = chunk_status(&mut r)?;
                match kind {
                    CREATE_REPLY => CsToMa::CreateReply { chunk, status },
                    DELETE_REPLY => CsToMa::DeleteReply { chunk, status },
                    DUPLICATE_REPLY => CsToMa::DuplicateReply { chunk, status },
                    SET_VERSION_REPLY => CsToMa::SetVersionReply { chunk, status },
                    TRUNCATE_REPLY => CsToMa::TruncateReply { chunk, status },
                    _ => CsToMa::DupTruncReply { chunk, status },
                }
            }
            REPLICATE_REPLY => CsToMa::ReplicateReply { chunk: r.u64()?, version: r.u32()?, status: Status(r.u8()?) },
            CHUNKOP_REPLY => CsToMa::ChunkOpReply { op: chunk_op(&mut r)?, status: Status(r.u8()?) },
            CHUNK_BLOCKS | CHUNK_CHECKSUM | CHUNK_CHECKSUM_TAB => {
                return Ok(CsToMa::Query(DataMsg::decode(kind, payload)?));
            }
            _ => return Err(Error::UnknownType { kind, len }),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn chunk_op(r: &mut Reader<'_>) -> Result<ChunkOp> {
    Ok(ChunkOp {
        chunk: r.u64()?,
        version: r.u32()?,
        new_version: r.u32()?,
        copy_chunk: r.u64()?,
        copy_version: r.u32()?,
        length: r.u32()?,
    })
}

fn put_chunk_op(op: &ChunkOp, out: &mut Vec<u8>) {
    out.put_u64(op.chunk);
    out.put_u32(op.version);
    out.put_u32(op.new_version);
    out.put_u64(op.copy_chunk);
    out.put_u32(op.copy_version);
    out.put_u32(op.length);
}

impl Encode for CsToMa {
    fn kind(&self) -> u32 {
        match self {
            CsToMa::Nop => NOP,
            CsToMa::RegisterBegin { .. }
            | CsToMa::RegisterChunks(_)
            | CsToMa::RegisterEnd
            | CsToMa::RegisterDisconnect
            | CsToMa::RegisterBeginV5 { .. }
            | CsToMa::RegisterChunksV5(_)
            | CsToMa::RegisterEndV5 { .. } => REGISTER,
            CsToMa::Space(_) => SPACE,
            CsToMa::ChunkDamaged(_) => CHUNK_DAMAGED,
            CsToMa::CurrentLoad { .. } => CURRENT_LOAD,
            CsToMa::ChunkLost(_) => CHUNK_LOST,
            CsToMa::ErrorOccurred => ERROR_OCCURRED,
            CsToMa::ChunkNew(_) => CHUNK_NEW,
            CsToMa::Labels(_) => LABELS,
            CsToMa::CreateReply { .. } => CREATE_REPLY,
            CsToMa::DeleteReply { .. } => DELETE_REPLY,
            CsToMa::DuplicateReply { .. } => DUPLICATE_REPLY,
            CsToMa::SetVersionReply { .. } => SET_VERSION_REPLY,
            CsToMa::ReplicateReply { .. } => REPLICATE_REPLY,
            CsToMa::ChunkOpReply { .. } => CHUNKOP_REPLY,
            CsToMa::TruncateReply { .. } => TRUNCATE_REPLY,
            CsToMa::DupTruncReply { .. } => DUPTRUNC_REPLY,
            CsToMa::Query(q) => q.kind(),
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            CsToMa::Nop | CsToMa::ErrorOccurred => {}
            CsToMa::RegisterBegin { auth, version, ip, port, timeout, csid, space } => {
                out.put_u8(REG_BEGIN);
                if let Some(digest) = auth {
                    out.extend_from_slice(digest);
                }
                out.put_u32(*version);
                out.put_u32(*ip);
                out.put_u16(*port);
                out.put_u16(*timeout);
                out.put_u16(*csid);
                space.put(out);
            }
            CsToMa::RegisterChunks(list) | CsToMa::RegisterChunksV5(list) => {
                out.put_u8(if matches!(self, CsToMa::RegisterChunks(_)) { REG_CHUNKS } else { REG5_CHUNKS });
                for (id, v) in list {
                    out.put_u64(*id);
                    out.put_u32(*v);
                }
            }
            CsToMa::RegisterEnd => out.put_u8(REG_END),
            CsToMa::RegisterDisconnect => out.put_u8(REG_DISCONNECT),
            CsToMa::RegisterBeginV5 { version, ip, port, timeout } => {
                out.put_u8(REG5_BEGIN);
                out.put_u32(*version);
                out.put_u32(*ip);
                out.put_u16(*port);
                out.put_u16(*timeout);
            }
            CsToMa::RegisterEndV5 { space } => {
                out.put_u8(REG5_END);
                space.put(out);
            }
            CsToMa::Space(space) => space.put(out),
            CsToMa::ChunkDamaged(list) | CsToMa::ChunkLost(list) => list.iter().for_each(|id| out.put_u64(*id)),
            CsToMa::CurrentLoad { load, hl_status } => {
                out.put_u32(*load);
                if let Some(s) = hl_status {
                    out.put_u8(*s);
                }
            }
            CsToMa::ChunkNew(list) => {
                for (id, v) in list {
                    out.put_u64(*id);
                    out.put_u32(*v);
                }
            }
            CsToMa::Labels(mask) => out.put_u32(*mask),
            CsToMa::CreateReply { chunk, status }
            | CsToMa::DeleteReply { chunk, status }
            | CsToMa::DuplicateReply { chunk, status }
            | CsToMa::SetVersionReply { chunk, status }
            | CsToMa::TruncateReply { chunk, status }
            | CsToMa::DupTruncReply { chunk, status } => {
                out.put_u64(*chunk);
                out.put_u8(status.0);
            }
            CsToMa::ReplicateReply { chunk, version, status } => {
                out.put_u64(*chunk);
                out.put_u32(*version);
                out.put_u8(status.0);
            }
            CsToMa::ChunkOpReply { op, status } => {
                put_chunk_op(op, out);
                out.put_u8(status.0);
            }
            CsToMa::Query(q) => q.encode_payload(out),
        }
    }
}

impl MaToCs {
    pub fn decode(kind: u32, payload: &[u8]) -> Result<MaToCs> {
        let len = payload.len();
        let mut r = Reader::new(kind, payload);
        let msg = match kind {
            NOP => MaToCs::Nop,
            MASTER_ACK => {
                let atype = r.u8()?;
                MaToCs::Ack(match (atype, len) {
                    (0, 1) => Ack::Next,
                    (0, 5) => Ack::WelcomeV5 { master_version: r.u32()? },
                    (0, 9) | (0, 17) => Ack::Welcome {
                        master_version: r.u32()?,
                        timeout: r.u16()?,
                        csid: r.u16()?,
                        metaid: if len == 17 { Some(r.u64()?) } else { None },
                    },
                    (1, 5) => Ack::Redirect { leader_ip: r.u32()? },
                    (2, 7) | (2, 15) => Ack::Wait {
                        version: r.u32()?,
                        timeout: r.u16()?,
                        metaid: if len == 15 { Some(r.u64()?) } else { None },
                    },
                    (3, 33) => Ack::Auth { challenge: r.array()? },
                    _ => return Err(Error::BadLength { kind, len }),
                })
            }
            CREATE => MaToCs::Create { chunk: r.u64()?, version: r.u32()? },
            DELETE => MaToCs::Delete { chunk: r.u64()?, version: r.u32()? },
            DUPLICATE => MaToCs::Duplicate {
                new_chunk: r.u64()?,
                new_version: r.u32()?,
                old_chunk: r.u64()?,
                old_version: r.u32()?,
            },
            SET_VERSION => MaToCs::SetVersion { chunk: r.u64()?, new_version: r.u32()?, old_version: r.u32()? },
            REPLICATE if len == 18 => {
                MaToCs::Replicate { chunk: r.u64()?, version: r.u32()?, source: Addr { ip: r.u32()?, port: r.u16()? } }
            }
            REPLICATE => {
                if len < 28 + 18 || !(len - 28).is_multiple_of(18) || (len - 28) / 18 > 8 {
                    return Err(Error::BadLength { kind, len });
                }
                let (chunk, version) = (r.u64()?, r.u32()?);
                let xor_mask = [r.u32()?, r.u32()?, r.u32()?, r.u32()?];
                let mut sources = Vec::new();
                while r.remaining() > 0 {
                    sources.push((r.u64()?, r.u32()?, Addr { ip: r.u32()?, port: r.u16()? }));
                }
                MaToCs::ReplicateXor { chunk, version, xor_mask, sources }
            }
            CHUNKOP => MaToCs::ChunkOp(chunk_op(&mut r)?),
            TRUNCATE => {
                MaToCs::Truncate { chunk: r.u64()?, length: r.u32()?, new_version: r.u32()?, old_version: r.u32()? }
            }
            DUPTRUNC => MaToCs::DupTrunc {
                new_chunk: r.u64()?,
                new_version: r.u32()?,
                old_chunk: r.u64()?,
                old_version: r.u32()?,
                length: r.u32()?,
            },
            GET_CHUNK_BLOCKS | GET_CHUNK_CHECKSUM | GET_CHUNK_CHECKSUM_TAB => {
                return Ok(MaToCs::Query(DataMsg::decode(kind, payload)?));
            }
            _ => return Err(Error::UnknownType { kind, len }),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl Encode for MaToCs {
    fn kind(&self) -> u32 {
        match self {
            MaToCs::Nop => NOP,
            MaToCs::Ack(_) => MASTER_ACK,
            MaToCs::Create { .. } => CREATE,
            MaToCs::Delete { .. } => DELETE,
            MaToCs::Duplicate { .. } => DUPLICATE,
            MaToCs::SetVersion { .. } => SET_VERSION,
            MaToCs::Replicate { .. } | MaToCs::ReplicateXor { .. } => REPLICATE,
            MaToCs::ChunkOp(_) => CHUNKOP,
            MaToCs::Truncate { .. } => TRUNCATE,
            MaToCs::DupTrunc { .. } => DUPTRUNC,
            MaToCs::Query(q) => q.kind(),
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            MaToCs::Nop => {}
            MaToCs::Ack(ack) => match ack {
                Ack::Next => out.put_u8(0),
                Ack::WelcomeV5 { master_version } => {
                    out.put_u8(0);
                    out.put_u32(*master_version);
                }
                Ack::Welcome { master_version, timeout, csid, metaid } => {
                    out.put_u8(0);
                    out.put_u32(*master_version);
                    out.put_u16(*timeout);
                    out.put_u16(*csid);
                    if let Some(m) = metaid {
                        out.put_u64(*m);
                    }
                }
                Ack::Redirect { leader_ip } => {
                    out.put_u8(1);
                    out.put_u32(*leader_ip);
                }
                Ack::Wait { version, timeout, metaid } => {
                    out.put_u8(2);
                    out.put_u32(*version);
                    out.put_u16(*timeout);
                    if let Some(m) = metaid {
                        out.put_u64(*m);
                    }
                }
                Ack::Auth { challenge } => {
                    out.put_u8(3);
                    out.extend_from_slice(challenge);
                }
            },
            MaToCs::Create { chunk, version } | MaToCs::Delete { chunk, version } => {
                out.put_u64(*chunk);
                out.put_u32(*version);
            }
            MaToCs::Duplicate { new_chunk, new_version, old_chunk, old_version } => {
                out.put_u64(*new_chunk);
                out.put_u32(*new_version);
                out.put_u64(*old_chunk);
                out.put_u32(*old_version);
            }
            MaToCs::SetVersion { chunk, new_version, old_version } => {
                out.put_u64(*chunk);
                out.put_u32(*new_version);
                out.put_u32(*old_version);
            }
            MaToCs::Replicate { chunk, version, source } => {
                out.put_u64(*chunk);
                out.put_u32(*version);
                out.put_u32(source.ip);
                out.put_u16(source.port);
            }
            MaToCs::ReplicateXor { chunk, version, xor_mask, sources } => {
                out.put_u64(*chunk);
                out.put_u32(*version);
                xor_mask.iter().for_each(|m| out.put_u32(*m));
                for (c, v, a) in sources {
                    out.put_u64(*c);
                    out.put_u32(*v);
                    out.put_u32(a.ip);
                    out.put_u16(a.port);
                }
            }
            MaToCs::ChunkOp(op) => put_chunk_op(op, out),
            MaToCs::Truncate { chunk, length, new_version, old_version } => {
                out.put_u64(*chunk);
                out.put_u32(*length);
                out.put_u32(*new_version);
                out.put_u32(*old_version);
            }
            MaToCs::DupTrunc { new_chunk, new_version, old_chunk, old_version, length } => {
                out.put_u64(*new_chunk);
                out.put_u32(*new_version);
                out.put_u64(*old_chunk);
                out.put_u32(*old_version);
                out.put_u32(*length);
            }
            MaToCs::Query(q) => q.encode_payload(out),
        }
    }
}
