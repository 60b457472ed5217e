//! The 8-byte header in front of every message: `type:32 length:32`,
//! big-endian, where the length counts only the payload after it.

use crate::error::{Error, Result};

pub const HEADER_LEN: usize = 8;

/// Largest payload a chunkserver accepts from its master.
pub const MATOCS_MAX_PAYLOAD: usize = 10_000;
/// Largest payload a chunkserver's data port accepts (clients and peers).
pub const DATA_MAX_PAYLOAD: usize = 100_000;
/// Largest payload a master accepts from a chunkserver.
pub const CSTOMA_MAX_PAYLOAD: usize = 500_000_000;
/// Largest payload a master accepts from a client (mount, tools, mfscli).
/// The other direction has no limit in 3.0.117: mfsmount grows its buffer
/// to whatever the master announces (a big `READDIR` reply can be large).
pub const CLTOMA_MAX_PAYLOAD: usize = 50_000_000;
/// Largest payload a master accepts from a metalogger.
pub const ANTOMA_MAX_PAYLOAD: usize = 1_500_000;
/// Largest payload a metalogger accepts from its master.
pub const MATOAN_MAX_PAYLOAD: usize = 1_500_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u32,
    pub len: u32,
}

impl Header {
    pub fn new(kind: u32, len: usize) -> Header {
        assert!(len <= u32::MAX as usize, "payload of {len} bytes cannot be framed");
        Header { kind, len: len as u32 }
    }

    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Header {
        let kind = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        Header { kind, len }
    }

    /// Parses and refuses payloads over `max`, before anything is allocated
    /// for them: a peer must not make us reserve gigabytes with 8 bytes.
    pub fn parse_limited(bytes: &[u8; HEADER_LEN], max: usize) -> Result<Header> {
        let header = Header::parse(bytes);
        if header.len as usize > max {
            return Err(Error::TooLarge { kind: header.kind, len: header.len as usize, max });
        }
        Ok(header)
    }

    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        out[..4].copy_from_slice(&self.kind.to_be_bytes());
        out[4..].copy_from_slice(&self.len.to_be_bytes());
        out
    }
}

/// A message that can put itself on the wire.
pub trait Encode {
    fn kind(&self) -> u32;
    /// Appends the payload (no header).
    fn encode_payload(&self, out: &mut Vec<u8>);

    /// The whole packet: header and payload.
    fn to_packet(&self) -> Vec<u8> {
        framed(self)
    }
}

/// Header and payload of `msg`, the length taken from what it encoded.
pub fn framed<E: Encode + ?Sized>(msg: &E) -> Vec<u8> {
    let mut out = vec![0; HEADER_LEN];
    msg.encode_payload(&mut out);
    let header = Header::new(msg.kind(), out.len() - HEADER_LEN);
    out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_limit() {
        let h = Header::new(212, 65_560);
        assert_eq!(Header::parse(&h.to_bytes()), h);
        assert_eq!(h.to_bytes(), [0, 0, 0, 212, 0, 1, 0, 24]);
        assert!(Header::parse_limited(&h.to_bytes(), DATA_MAX_PAYLOAD).is_ok());
        let big = Header::new(212, DATA_MAX_PAYLOAD + 1);
        assert_eq!(
            Header::parse_limited(&big.to_bytes(), DATA_MAX_PAYLOAD),
            Err(Error::TooLarge { kind: 212, len: DATA_MAX_PAYLOAD + 1, max: DATA_MAX_PAYLOAD })
        );
    }
}
