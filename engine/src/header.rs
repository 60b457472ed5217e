//! The chunk header page and the CRC table that follows it.
//!
//! The header holds the signature `MFSC 1.0`, the chunk id and the version,
//! all big-endian, then zero padding up to H bytes. elkfs only ever writes
//! the 4096-byte form; the 1024-byte legacy form is read. The CRC table is
//! 1024 big-endian CRC-32 values; entries of blocks that do not exist hold
//! the empty-block CRC, which `mfschunktool -e` insists on.

use crate::crc::EMPTY_BLOCK_CRC;
use crate::layout::{ChunkId, Version, BLOCKS_PER_CHUNK, CRC_TABLE_SIZE};

/// Signature this version writes.
pub const SIGNATURE: &[u8; 8] = b"MFSC 1.0";
/// Also accepted on read: "1.1" promises empty-block CRCs in unused entries.
pub const SIGNATURE_V11: &[u8; 8] = b"MFSC 1.1";

/// What a header says about its chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: ChunkId,
    pub version: Version,
}

/// Why a header page was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderFault {
    Short,
    Signature,
}

impl Header {
    /// Writes the header into the first bytes of `page`, zeroing the rest.
    pub fn encode(&self, page: &mut [u8]) {
        assert!(page.len() >= 20, "header page too small");
        page.fill(0);
        page[..8].copy_from_slice(SIGNATURE);
        page[8..16].copy_from_slice(&self.id.0.to_be_bytes());
        page[16..20].copy_from_slice(&self.version.0.to_be_bytes());
    }

    /// Reads a header from the start of `page`.
    pub fn decode(page: &[u8]) -> Result<Header, HeaderFault> {
        if page.len() < 20 {
            return Err(HeaderFault::Short);
        }
        let signature = &page[..8];
        if signature != SIGNATURE && signature != SIGNATURE_V11 {
            return Err(HeaderFault::Signature);
        }
        let id = u64::from_be_bytes(page[8..16].try_into().map_err(|_| HeaderFault::Short)?);
        let version = u32::from_be_bytes(page[16..20].try_into().map_err(|_| HeaderFault::Short)?);
        Ok(Header { id: ChunkId(id), version: Version(version) })
    }
}

/// The in-memory CRC table of one chunk.
#[derive(Clone, PartialEq, Eq)]
pub struct CrcTable(pub Box<[u32; BLOCKS_PER_CHUNK]>);

impl CrcTable {
    /// A table of a chunk with no blocks: every entry is the empty-block CRC.
    pub fn empty() -> CrcTable {
        CrcTable(Box::new([EMPTY_BLOCK_CRC; BLOCKS_PER_CHUNK]))
    }

    /// Decodes the on-disk table. Entries at and past `blocks` that hold 0
    /// (allowed by the "1.0" signature) are normalised to the empty CRC.
    pub fn decode(bytes: &[u8], blocks: usize) -> CrcTable {
        assert_eq!(bytes.len(), CRC_TABLE_SIZE);
        let mut table = CrcTable::empty();
        for (i, entry) in table.0.iter_mut().enumerate() {
            let raw = u32::from_be_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]);
            *entry = if i >= blocks && raw == 0 { EMPTY_BLOCK_CRC } else { raw };
        }
        table
    }

    pub fn encode(&self, out: &mut [u8]) {
        assert_eq!(out.len(), CRC_TABLE_SIZE);
        for (i, crc) in self.0.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&crc.to_be_bytes());
        }
    }

    /// Forgets blocks at and after `blocks`, as a shrink does.
    pub fn clear_from(&mut self, blocks: usize) {
        for entry in &mut self.0[blocks..] {
            *entry = EMPTY_BLOCK_CRC;
        }
    }
}

impl std::fmt::Debug for CrcTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CrcTable[{:08X}, {:08X}, ..]", self.0[0], self.0[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut page = vec![0xAAu8; 4096];
        let header = Header { id: ChunkId(0x0102_0304_0506_0708), version: Version(9) };
        header.encode(&mut page);
        assert_eq!(&page[..8], b"MFSC 1.0");
        assert_eq!(page[8..16], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(page[16..20], [0, 0, 0, 9]);
        assert!(page[20..].iter().all(|&b| b == 0));
        assert_eq!(Header::decode(&page), Ok(header));
    }

    #[test]
    fn bad_headers_are_faults() {
        assert_eq!(Header::decode(b"MFSC"), Err(HeaderFault::Short));
        let mut page = vec![0u8; 1024];
        page[..8].copy_from_slice(b"MFSC 2.0");
        assert_eq!(Header::decode(&page), Err(HeaderFault::Signature));
        page[..8].copy_from_slice(b"MFSC 1.1");
        assert!(Header::decode(&page).is_ok());
    }

    #[test]
    fn crc_table_normalises_zero_entries_past_the_end() {
        let mut bytes = vec![0u8; CRC_TABLE_SIZE];
        bytes[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        let table = CrcTable::decode(&bytes, 1);
        assert_eq!(table.0[0], 0x1234_5678);
        assert_eq!(table.0[1], EMPTY_BLOCK_CRC);
        let table = CrcTable::decode(&bytes, 2);
        assert_eq!(table.0[1], 0, "an existing block keeps its stored CRC");
        let mut out = vec![0u8; CRC_TABLE_SIZE];
        CrcTable::empty().encode(&mut out);
        assert_eq!(out[..4], EMPTY_BLOCK_CRC.to_be_bytes());
    }
}
