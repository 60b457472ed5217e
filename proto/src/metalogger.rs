//! The metalogger link (master port 9419): registration and metadata
//! download requests from the metalogger; the changelog stream, download
//! answers and file pieces from the master.
//!
//! The master sends no answer to registration; it just starts streaming
//! changelog entries. A metalogger that sees a version gap downloads the
//! metadata again.

use crate::error::{Error, Result};
use crate::frame::Encode;
use crate::status::Status;
use crate::wire::{Put, Reader};

pub const NOP: u32 = 0;
pub const REGISTER: u32 = 50;
pub const METACHANGES_LOG: u32 = 51;
pub const DOWNLOAD_START: u32 = 60;
pub const DOWNLOAD_INFO: u32 = 61;
pub const DOWNLOAD_REQUEST: u32 = 62;
pub const DOWNLOAD_DATA: u32 = 63;
pub const DOWNLOAD_END: u32 = 64;

/// First byte of `METACHANGES_LOG`: one entry follows, or rotate the logs.
pub const LOG_ENTRY: u8 = 0xFF;
pub const LOG_ROTATE: u8 = 0x55;

/// `DOWNLOAD_START` file numbers: the metadata backup, the legacy session
/// file, and the two newest changelogs.
pub const FILE_METADATA: u8 = 1;
pub const FILE_SESSIONS: u8 = 2;
pub const FILE_CHANGELOG_0: u8 = 11;
pub const FILE_CHANGELOG_1: u8 = 12;

/// Largest piece a metalogger asks for in one `DOWNLOAD_REQUEST`.
pub const DOWNLOAD_CHUNK_MAX: u32 = 1_000_000;

/// Metalogger → master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MlToMa {
    Nop,
    /// `rver` 1; `timeout` in seconds, the link's idle limit for both sides.
    Register {
        version: u32,
        timeout: u16,
    },
    /// `rver` 2: also replay the master's history from `min_version` on.
    RegisterFrom {
        version: u32,
        timeout: u16,
        min_version: u64,
    },
    DownloadStart {
        file: u8,
    },
    DownloadRequest {
        offset: u64,
        length: u32,
    },
    DownloadEnd,
}

/// Master → metalogger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaToMl {
    Nop,
    /// One changelog entry, without the `"<version>: "` prefix and without
    /// the NUL the wire form ends with.
    Log {
        version: u64,
        text: Vec<u8>,
    },
    Rotate,
    /// The size of the file a `DownloadStart` opened.
    DownloadSize(u64),
    /// The file could not be opened (`0xFF`).
    DownloadFailed(Status),
    /// `crc` is the zlib CRC-32 of `data`.
    DownloadData {
        offset: u64,
        crc: u32,
        data: Vec<u8>,
    },
}

impl MlToMa {
    pub fn decode(kind: u32, payload: &[u8]) -> Result<MlToMa> {
        let len = payload.len();
        let mut r = Reader::new(kind, payload);
        let msg = match kind {
            NOP => MlToMa::Nop,
            REGISTER => match (r.u8()?, len) {
                (1, 7) => MlToMa::Register { version: r.u32()?, timeout: r.u16()? },
                (2, 15) => MlToMa::RegisterFrom { version: r.u32()?, timeout: r.u16()?, min_version: r.u64()? },
                (1 | 2, _) => return Err(Error::BadLength { kind, len }),
                _ => return Err(Error::BadValue { kind, what: "register form not supported" }),
            },
            DOWNLOAD_START => MlToMa::DownloadStart { file: r.u8()? },
            DOWNLOAD_REQUEST => MlToMa::DownloadRequest { offset: r.u64()?, length: r.u32()? },
            DOWNLOAD_END => MlToMa::DownloadEnd,
            _ => return Err(Error::UnknownType { kind, len }),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl Encode for MlToMa {
    fn kind(&self) -> u32 {
        match self {
            MlToMa::Nop => NOP,
            MlToMa::Register { .. } | MlToMa::RegisterFrom { .. } => REGISTER,
            MlToMa::DownloadStart { .. } => DOWNLOAD_START,
            MlToMa::DownloadRequest { .. } => DOWNLOAD_REQUEST,
            MlToMa::DownloadEnd => DOWNLOAD_END,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            MlToMa::Nop | MlToMa::DownloadEnd => {}
            MlToMa::Register { version, timeout } => {
                out.put_u8(1);
                out.put_u32(*version);
                out.put_u16(*timeout);
            }
            MlToMa::RegisterFrom { version, timeout, min_version } => {
                out.put_u8(2);
                out.put_u32(*version);
                out.put_u16(*timeout);
                out.put_u64(*min_version);
            }
            MlToMa::DownloadStart { file } => out.put_u8(*file),
            MlToMa::DownloadRequest { offset, length } => {
                out.put_u64(*offset);
                out.put_u32(*length);
            }
        }
    }
}

impl MaToMl {
    pub fn decode(kind: u32, payload: &[u8]) -> Result<MaToMl> {
        let len = payload.len();
        let mut r = Reader::new(kind, payload);
        let msg = match kind {
            NOP => MaToMl::Nop,
            METACHANGES_LOG => match r.u8()? {
                LOG_ROTATE if len == 1 => MaToMl::Rotate,
                LOG_ENTRY => {
                    let version = r.u64()?;
                    match r.rest().split_last() {
                        Some((0, text)) => MaToMl::Log { version, text: text.to_vec() },
                        _ => return Err(Error::BadValue { kind, what: "changelog entry does not end in NUL" }),
                    }
                }
                LOG_ROTATE => return Err(Error::BadLength { kind, len }),
                _ => return Err(Error::BadValue { kind, what: "unknown changelog form" }),
            },
            DOWNLOAD_INFO => match len {
                8 => MaToMl::DownloadSize(r.u64()?),
                1 => MaToMl::DownloadFailed(Status(r.u8()?)),
                _ => return Err(Error::BadLength { kind, len }),
            },
            DOWNLOAD_DATA => {
                let (offset, length, crc) = (r.u64()?, r.u32()?, r.u32()?);
                if r.remaining() != length as usize {
                    return Err(Error::BadLength { kind, len });
                }
                MaToMl::DownloadData { offset, crc, data: r.rest().to_vec() }
            }
            _ => return Err(Error::UnknownType { kind, len }),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl Encode for MaToMl {
    fn kind(&self) -> u32 {
        match self {
            MaToMl::Nop => NOP,
            MaToMl::Log { .. } | MaToMl::Rotate => METACHANGES_LOG,
            MaToMl::DownloadSize(_) | MaToMl::DownloadFailed(_) => DOWNLOAD_INFO,
            MaToMl::DownloadData { .. } => DOWNLOAD_DATA,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            MaToMl::Nop => {}
            MaToMl::Log { version, text } => {
                out.put_u8(LOG_ENTRY);
                out.put_u64(*version);
                out.extend_from_slice(text);
                out.put_u8(0);
            }
            MaToMl::Rotate => out.put_u8(LOG_ROTATE),
            MaToMl::DownloadSize(size) => out.put_u64(*size),
            MaToMl::DownloadFailed(status) => out.put_u8(status.0),
            MaToMl::DownloadData { offset, crc, data } => {
                out.put_u64(*offset);
                out.put_u32(data.len() as u32);
                out.put_u32(*crc);
                out.extend_from_slice(data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_is_one_byte_and_entries_need_their_nul() {
        assert_eq!(MaToMl::decode(METACHANGES_LOG, &[0x55]), Ok(MaToMl::Rotate));
        assert_eq!(MaToMl::decode(METACHANGES_LOG, &[0x55, 0]), Err(Error::BadLength { kind: 51, len: 2 }));
        let entry = [0xFF, 0, 0, 0, 0, 0, 0, 0, 5, b'x', 0];
        assert_eq!(MaToMl::decode(METACHANGES_LOG, &entry), Ok(MaToMl::Log { version: 5, text: b"x".to_vec() }));
        assert!(MaToMl::decode(METACHANGES_LOG, &entry[..10]).is_err());
    }

    #[test]
    fn download_data_length_must_match() {
        let mut p = vec![0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3, 1, 2, 3, 4];
        p.extend_from_slice(b"abc");
        let msg = MaToMl::decode(DOWNLOAD_DATA, &p).unwrap();
        assert_eq!(msg, MaToMl::DownloadData { offset: 9, crc: 0x0102_0304, data: b"abc".to_vec() });
        p.push(0);
        assert_eq!(MaToMl::decode(DOWNLOAD_DATA, &p), Err(Error::BadLength { kind: 63, len: 20 }));
    }
}
