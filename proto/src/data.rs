//! The chunkserver data port (9422): clients and other chunkservers read,
//! write and replicate through it.
//!
//! One enum holds both directions, because a chunkserver is both a server
//! (clients' requests) and a client (the next server of a write chain, the
//! source of a replication). `READ_DATA` and `WRITE_DATA` decode to their
//! head only; the data bytes stay where the caller received them.

use crate::error::{Error, Result};
use crate::frame::Encode;
use crate::status::Status;
use crate::wire::{ArrayWriter, Put, Reader};
use crate::Addr;

pub const NOP: u32 = 0;
pub const GET_VERSION: u32 = 10;
pub const VERSION: u32 = 11;
pub const GET_CONFIG: u32 = 80;
pub const CONFIG_VALUE: u32 = 81;
pub const READ: u32 = 200;
pub const READ_STATUS: u32 = 201;
pub const READ_DATA: u32 = 202;
pub const WRITE: u32 = 210;
pub const WRITE_STATUS: u32 = 211;
pub const WRITE_DATA: u32 = 212;
pub const WRITE_FINISH: u32 = 213;
pub const GET_CHUNK_BLOCKS: u32 = 250;
pub const CHUNK_BLOCKS: u32 = 251;
pub const GET_CHUNK_CHECKSUM: u32 = 300;
pub const CHUNK_CHECKSUM: u32 = 301;
pub const GET_CHUNK_CHECKSUM_TAB: u32 = 302;
pub const CHUNK_CHECKSUM_TAB: u32 = 303;

/// Bytes of `READ_DATA` before its data.
pub const READ_DATA_HEAD_LEN: usize = 20;
/// Bytes of `WRITE_DATA` before its data.
pub const WRITE_DATA_HEAD_LEN: usize = 24;
/// Entries in a chunk's CRC table (one per 64 KiB block).
pub const CRC_TABLE_LEN: usize = 1024;
const BLOCK: u32 = 0x10000;

/// `CSTOCL_READ_DATA` without its data: one piece of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadDataHead {
    pub chunk: u64,
    pub block: u16,
    pub offset: u16,
    pub size: u32,
    /// CRC-32 of the `size` data bytes that follow.
    pub crc: u32,
}

impl ReadDataHead {
    /// Header and head of the packet; the caller sends `size` data bytes after.
    pub fn packet_prefix(&self) -> [u8; 8 + READ_DATA_HEAD_LEN] {
        let mut out = [0u8; 8 + READ_DATA_HEAD_LEN];
        let mut w = ArrayWriter(&mut out[..]);
        w.u32(READ_DATA);
        w.u32(READ_DATA_HEAD_LEN as u32 + self.size);
        w.u64(self.chunk);
        w.u16(self.block);
        w.u16(self.offset);
        w.u32(self.size);
        w.u32(self.crc);
        assert!(w.0.is_empty(), "every byte of the prefix written");
        out
    }

    /// Decodes the head from the first bytes of a payload of `payload_len`.
    pub fn decode(head: &[u8], payload_len: usize) -> Result<ReadDataHead> {
        let mut r = Reader::new(READ_DATA, head);
        let h = ReadDataHead { chunk: r.u64()?, block: r.u16()?, offset: r.u16()?, size: r.u32()?, crc: r.u32()? };
        check_piece(READ_DATA, h.offset, h.size, READ_DATA_HEAD_LEN, payload_len)?;
        Ok(h)
    }
}

/// `CLTOCS_WRITE_DATA` without its data: one piece of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteDataHead {
    pub chunk: u64,
    pub write_id: u32,
    pub block: u16,
    pub offset: u16,
    pub size: u32,
    /// CRC-32 of the `size` data bytes that follow.
    pub crc: u32,
}

impl WriteDataHead {
    pub fn packet_prefix(&self) -> [u8; 8 + WRITE_DATA_HEAD_LEN] {
        let mut out = [0u8; 8 + WRITE_DATA_HEAD_LEN];
        let mut w = ArrayWriter(&mut out[..]);
        w.u32(WRITE_DATA);
        w.u32(WRITE_DATA_HEAD_LEN as u32 + self.size);
        w.u64(self.chunk);
        w.u32(self.write_id);
        w.u16(self.block);
        w.u16(self.offset);
        w.u32(self.size);
        w.u32(self.crc);
        assert!(w.0.is_empty(), "every byte of the prefix written");
        out
    }

    pub fn decode(head: &[u8], payload_len: usize) -> Result<WriteDataHead> {
        let mut r = Reader::new(WRITE_DATA, head);
        let h = WriteDataHead {
            chunk: r.u64()?,
            write_id: r.u32()?,
            block: r.u16()?,
            offset: r.u16()?,
            size: r.u32()?,
            crc: r.u32()?,
        };
        check_piece(WRITE_DATA, h.offset, h.size, WRITE_DATA_HEAD_LEN, payload_len)?;
        Ok(h)
    }
}

/// A piece must sit inside one block and fill the rest of its packet.
fn check_piece(kind: u32, offset: u16, size: u32, head: usize, payload_len: usize) -> Result<()> {
    if size as u64 + head as u64 != payload_len as u64 {
        return Err(Error::BadLength { kind, len: payload_len });
    }
    // In u64: with an announced length near 4 GiB, `size` is near
    // `u32::MAX` and the sum would overflow a u32.
    if offset as u64 + size as u64 > BLOCK as u64 {
        return Err(Error::BadValue { kind, what: "piece crosses the end of its block" });
    }
    Ok(())
}

/// Every message of the data port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataMsg {
    Nop,
    /// `ANTOAN_GET_VERSION`, with the request id when the asker sent one.
    GetVersion {
        msgid: Option<u32>,
    },
    /// `ANTOAN_VERSION`. Decoding assumes no msgid (the layout cannot tell).
    Version {
        msgid: Option<u32>,
        version: u32,
        text: String,
    },
    GetConfig {
        msgid: u32,
        name: Vec<u8>,
    },
    ConfigValue {
        msgid: u32,
        value: Vec<u8>,
    },
    /// `CLTOCS_READ`; `protocol` is the leading byte of the current form.
    /// Without it (replicators) the server sends no keep-alive NOPs.
    Read {
        protocol: Option<u8>,
        chunk: u64,
        version: u32,
        offset: u32,
        size: u32,
    },
    ReadStatus {
        chunk: u64,
        status: Status,
    },
    ReadData(ReadDataHead),
    /// `CLTOCS_WRITE`: the servers after the receiver in the write chain.
    Write {
        protocol: Option<u8>,
        chunk: u64,
        version: u32,
        chain: Vec<Addr>,
    },
    WriteStatus {
        chunk: u64,
        write_id: u32,
        status: Status,
    },
    WriteData(WriteDataHead),
    WriteFinish {
        chunk: u64,
        version: u32,
    },
    GetChunkBlocks {
        chunk: u64,
        version: u32,
    },
    ChunkBlocks {
        chunk: u64,
        version: u32,
        blocks: u16,
        status: Status,
    },
    GetChunkChecksum {
        chunk: u64,
        version: u32,
    },
    ChunkChecksum {
        chunk: u64,
        version: u32,
        result: std::result::Result<u32, Status>,
    },
    GetChunkChecksumTab {
        chunk: u64,
        version: u32,
    },
    ChunkChecksumTab {
        chunk: u64,
        version: u32,
        result: std::result::Result<Vec<u32>, Status>,
    },
}

fn chunk_version(kind: u32, payload: &[u8]) -> Result<(u64, u32)> {
    let mut r = Reader::new(kind, payload);
    let out = (r.u64()?, r.u32()?);
    r.finish()?;
    Ok(out)
}

fn name_field(r: &mut Reader<'_>) -> Result<Vec<u8>> {
    let len = r.u8()? as usize;
    Ok(r.bytes(len)?.to_vec())
}

impl DataMsg {
    /// Decodes a whole payload. For `READ_DATA` and `WRITE_DATA` the payload
    /// may be the head alone or the head with its data; `payload_len` is the
    /// length the frame header announced.
    pub fn decode(kind: u32, payload: &[u8]) -> Result<DataMsg> {
        Self::decode_framed(kind, payload, payload.len())
    }

    pub fn decode_framed(kind: u32, payload: &[u8], payload_len: usize) -> Result<DataMsg> {
        let len = payload.len();
        let mut r = Reader::new(kind, payload);
        let msg = match kind {
            NOP => match len {
                0 => DataMsg::Nop,
                4 => {
                    r.u32()?;
                    DataMsg::Nop
                }
                _ => return Err(Error::BadLength { kind, len }),
            },
            GET_VERSION => match len {
                0 => DataMsg::GetVersion { msgid: None },
                4 => DataMsg::GetVersion { msgid: Some(r.u32()?) },
                _ => return Err(Error::BadLength { kind, len }),
            },
            VERSION => {
                let version = r.u32()?;
                let text = String::from_utf8(r.rest().to_vec())
                    .map_err(|_| Error::BadValue { kind, what: "version text is not UTF-8" })?;
                DataMsg::Version { msgid: None, version, text }
            }
            GET_CONFIG => DataMsg::GetConfig { msgid: r.u32()?, name: name_field(&mut r)? },
            CONFIG_VALUE => DataMsg::ConfigValue { msgid: r.u32()?, value: name_field(&mut r)? },
            READ => {
                let protocol = match len {
                    20 => None,
                    21 => Some(r.u8()?),
                    _ => return Err(Error::BadLength { kind, len }),
                };
                DataMsg::Read { protocol, chunk: r.u64()?, version: r.u32()?, offset: r.u32()?, size: r.u32()? }
            }
            READ_STATUS => DataMsg::ReadStatus { chunk: r.u64()?, status: Status(r.u8()?) },
            READ_DATA => {
                let head = r.bytes(READ_DATA_HEAD_LEN)?;
                r.rest();
                return Ok(DataMsg::ReadData(ReadDataHead::decode(head, payload_len)?));
            }
            WRITE => {
                // The current form adds one byte in front; the chain is 6-byte
                // entries, so the two forms differ in parity.
                let protocol = if !len.is_multiple_of(2) { Some(r.u8()?) } else { None };
                let chunk = r.u64()?;
                let version = r.u32()?;
                if !r.remaining().is_multiple_of(6) {
                    return Err(Error::BadLength { kind, len });
                }
                let mut chain = Vec::with_capacity(r.remaining() / 6);
                while r.remaining() > 0 {
                    chain.push(Addr { ip: r.u32()?, port: r.u16()? });
                }
                DataMsg::Write { protocol, chunk, version, chain }
            }
            WRITE_STATUS => DataMsg::WriteStatus { chunk: r.u64()?, write_id: r.u32()?, status: Status(r.u8()?) },
            WRITE_DATA => {
                let head = r.bytes(WRITE_DATA_HEAD_LEN)?;
                r.rest();
                return Ok(DataMsg::WriteData(WriteDataHead::decode(head, payload_len)?));
            }
            WRITE_FINISH => {
                let (chunk, version) = chunk_version(kind, payload)?;
                return Ok(DataMsg::WriteFinish { chunk, version });
            }
            GET_CHUNK_BLOCKS | GET_CHUNK_CHECKSUM | GET_CHUNK_CHECKSUM_TAB => {
                let (chunk, version) = chunk_version(kind, payload)?;
                return Ok(match kind {
                    GET_CHUNK_BLOCKS => DataMsg::GetChunkBlocks { chunk, version },
                    GET_CHUNK_CHECKSUM => DataMsg::GetChunkChecksum { chunk, version },
                    _ => DataMsg::GetChunkChecksumTab { chunk, version },
                });
            }
            CHUNK_BLOCKS => {
                DataMsg::ChunkBlocks { chunk: r.u64()?, version: r.u32()?, blocks: r.u16()?, status: Status(r.u8()?) }
            }
            CHUNK_CHECKSUM => {
                let (chunk, version) = (r.u64()?, r.u32()?);
                let result = match len {
                    13 => Err(Status(r.u8()?)),
                    16 => Ok(r.u32()?),
                    _ => return Err(Error::BadLength { kind, len }),
                };
                DataMsg::ChunkChecksum { chunk, version, result }
            }
            CHUNK_CHECKSUM_TAB => {
                let (chunk, version) = (r.u64()?, r.u32()?);
                let result = match len {
                    13 => Err(Status(r.u8()?)),
                    l if l == 12 + 4 * CRC_TABLE_LEN => {
                        let mut tab = Vec::with_capacity(CRC_TABLE_LEN);
                        for _ in 0..CRC_TABLE_LEN {
                            tab.push(r.u32()?);
                        }
                        Ok(tab)
                    }
                    _ => return Err(Error::BadLength { kind, len }),
                };
                DataMsg::ChunkChecksumTab { chunk, version, result }
            }
            _ => return Err(Error::UnknownType { kind, len }),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl Encode for DataMsg {
    fn kind(&self) -> u32 {
        match self {
            DataMsg::Nop => NOP,
            DataMsg::GetVersion { .. } => GET_VERSION,
            DataMsg::Version { .. } => VERSION,
            DataMsg::GetConfig { .. } => GET_CONFIG,
            DataMsg::ConfigValue { .. } => CONFIG_VALUE,
            DataMsg::Read { .. } => READ,
            DataMsg::ReadStatus { .. } => READ_STATUS,
            DataMsg::ReadData(_) => READ_DATA,
            DataMsg::Write { .. } => WRITE,
            DataMsg::WriteStatus { .. } => WRITE_STATUS,
            DataMsg::WriteData(_) => WRITE_DATA,
            DataMsg::WriteFinish { .. } => WRITE_FINISH,
            DataMsg::GetChunkBlocks { .. } => GET_CHUNK_BLOCKS,
            DataMsg::ChunkBlocks { .. } => CHUNK_BLOCKS,
            DataMsg::GetChunkChecksum { .. } => GET_CHUNK_CHECKSUM,
            DataMsg::ChunkChecksum { .. } => CHUNK_CHECKSUM,
            DataMsg::GetChunkChecksumTab { .. } => GET_CHUNK_CHECKSUM_TAB,
            DataMsg::ChunkChecksumTab { .. } => CHUNK_CHECKSUM_TAB,
        }
    }

    /// For `ReadData`/`WriteData` this writes the head only: the data is
    /// sent by the caller from its own buffer.
    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            DataMsg::Nop => {}
            DataMsg::GetVersion { msgid } => {
                if let Some(id) = msgid {
                    out.put_u32(*id);
                }
            }
            DataMsg::Version { msgid, version, text } => {
                if let Some(id) = msgid {
                    out.put_u32(*id);
                }
                out.put_u32(*version);
                out.extend_from_slice(text.as_bytes());
            }
            DataMsg::GetConfig { msgid, name: bytes } | DataMsg::ConfigValue { msgid, value: bytes } => {
                out.put_u32(*msgid);
                let n = bytes.len().min(255);
                out.put_u8(n as u8);
                out.extend_from_slice(&bytes[..n]);
            }
            DataMsg::Read { protocol, chunk, version, offset, size } => {
                if let Some(p) = protocol {
                    out.put_u8(*p);
                }
                out.put_u64(*chunk);
                out.put_u32(*version);
                out.put_u32(*offset);
                out.put_u32(*size);
            }
            DataMsg::ReadStatus { chunk, status } => {
                out.put_u64(*chunk);
                out.put_u8(status.0);
            }
            DataMsg::ReadData(h) => out.extend_from_slice(&h.packet_prefix()[8..]),
            DataMsg::Write { protocol, chunk, version, chain } => {
                if let Some(p) = protocol {
                    out.put_u8(*p);
                }
                out.put_u64(*chunk);
                out.put_u32(*version);
                for a in chain {
                    out.put_u32(a.ip);
                    out.put_u16(a.port);
                }
            }
            DataMsg::WriteStatus { chunk, write_id, status } => {
                out.put_u64(*chunk);
                out.put_u32(*write_id);
                out.put_u8(status.0);
            }
            DataMsg::WriteData(h) => out.extend_from_slice(&h.packet_prefix()[8..]),
            DataMsg::WriteFinish { chunk, version }
            | DataMsg::GetChunkBlocks { chunk, version }
            | DataMsg::GetChunkChecksum { chunk, version }
            | DataMsg::GetChunkChecksumTab { chunk, version } => {
                out.put_u64(*chunk);
                out.put_u32(*version);
            }
            DataMsg::ChunkBlocks { chunk, version, blocks, status } => {
                out.put_u64(*chunk);
                out.put_u32(*version);
                out.put_u16(*blocks);
                out.put_u8(status.0);
            }
            DataMsg::ChunkChecksum { chunk, version, result } => {
                out.put_u64(*chunk);
                out.put_u32(*version);
                match result {
                    Ok(sum) => out.put_u32(*sum),
                    Err(s) => out.put_u8(s.0),
                }
            }
            DataMsg::ChunkChecksumTab { chunk, version, result } => {
                out.put_u64(*chunk);
                out.put_u32(*version);
                match result {
                    Ok(tab) => {
                        assert_eq!(tab.len(), CRC_TABLE_LEN, "a CRC table has one entry per block");
                        tab.iter().for_each(|c| out.put_u32(*c));
                    }
                    Err(s) => out.put_u8(s.0),
                }
            }
        }
    }

    /// `ReadData`/`WriteData` packets announce their data in the header
    /// length even though `encode_payload` leaves it out.
    fn to_packet(&self) -> Vec<u8> {
        match self {
            DataMsg::ReadData(h) => h.packet_prefix().to_vec(),
            DataMsg::WriteData(h) => h.packet_prefix().to_vec(),
            _ => crate::frame::framed(self),
        }
    }
}

/// The single number MooseFS folds a CRC table into (`CHUNK_CHECKSUM`).
pub fn fold_checksum(table: &[u32]) -> u32 {
    table.iter().fold(1u32, |x, &c| x.wrapping_mul(426_265_243) ^ c)
}
