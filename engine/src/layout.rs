//! Where things sit inside a MooseFS 3.0 chunk file and inside a data folder.
//!
//! A chunk file is `header | crc table | blocks`:
//!
//! | offset            | size        | content                                  |
//! |-------------------|-------------|------------------------------------------|
//! | 0                 | H           | signature, chunk id, version, zero pad   |
//! | H                 | 4096        | 1024 big-endian CRC-32 (zlib) values     |
//! | H + 4096 + i·64Ki | 65536       | data block i                             |
//!
//! H is 4096 for every file elkfs writes and 1024 for legacy files. H is not
//! stored: it follows from the file size, because the data area is always a
//! whole number of blocks. Worked example: a one-block chunk with the new
//! header is 4096 + 4096 + 65536 = 73 728 bytes; (73 728 − 4096) mod 65 536 =
//! 4096, so H = 4096 and the block count is (73 728 − 4096 − 4096) / 65 536 = 1.

use std::fmt;

/// Bytes in one data block; also the unit a CRC covers.
pub const BLOCK_SIZE: usize = 65_536;
/// Blocks in a full chunk (64 MiB).
pub const BLOCKS_PER_CHUNK: usize = 1024;
/// Bytes of a full chunk's data.
pub const CHUNK_SIZE: u64 = (BLOCK_SIZE * BLOCKS_PER_CHUNK) as u64;
/// Header size of files this version writes (`NEWHDRSIZE` in MooseFS).
pub const HEADER_SIZE: usize = 4096;
/// Header size of legacy chunk files, still read.
pub const LEGACY_HEADER_SIZE: usize = 1024;
/// The CRC table: one u32 per block.
pub const CRC_TABLE_SIZE: usize = 4 * BLOCKS_PER_CHUNK;
/// Size of an empty chunk written by elkfs: header plus CRC table.
pub const EMPTY_CHUNK_FILE_SIZE: u64 = (HEADER_SIZE + CRC_TABLE_SIZE) as u64;
/// Alignment every O_DIRECT buffer, offset and length obeys.
pub const IO_ALIGN: usize = 4096;
/// Number of subfolders (`00`..`FF`) in a data folder.
pub const SUBFOLDERS: usize = 256;

const _: () = assert!(CRC_TABLE_SIZE == 4096);
const _: () = assert!(BLOCK_SIZE.is_multiple_of(IO_ALIGN) && HEADER_SIZE.is_multiple_of(IO_ALIGN));
const _: () = assert!(CHUNK_SIZE == 64 << 20);

/// A chunk id as the master hands it out.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub u64);

/// A chunk version. Bit 31 is borrowed on the wire to flag copies on a disk
/// marked for removal; versions stored on disk never carry it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub u32);

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}
impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}
impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}", self.0)
    }
}
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}", self.0)
    }
}

/// Offset of data block `block` in a file whose header is `header_size` bytes.
pub fn block_offset(header_size: usize, block: usize) -> u64 {
    debug_assert!(block < BLOCKS_PER_CHUNK);
    (header_size + CRC_TABLE_SIZE + block * BLOCK_SIZE) as u64
}

/// Header size and block count implied by a file size, or `None` when the
/// size fits neither header layout (a truncated or foreign file).
pub fn geometry_from_file_size(file_size: u64) -> Option<(usize, usize)> {
    let crc = CRC_TABLE_SIZE as u64;
    if file_size < crc {
        return None;
    }
    let header = ((file_size - crc) % BLOCK_SIZE as u64) as usize;
    if header != HEADER_SIZE && header != LEGACY_HEADER_SIZE {
        return None;
    }
    let blocks = (file_size - crc - header as u64) / BLOCK_SIZE as u64;
    if blocks > BLOCKS_PER_CHUNK as u64 {
        return None;
    }
    Some((header, blocks as usize))
}

/// Block count of a new-layout file whose last block was cut short (an
/// extending write torn by a crash: the file system kept a 4 KiB-granular
/// prefix). The missing tail reads as zeros; the block's CRC decides whether
/// it is intact. `None` when even that does not fit.
pub fn blocks_of_torn_file(file_size: u64) -> Option<usize> {
    let data = file_size.checked_sub(EMPTY_CHUNK_FILE_SIZE).filter(|&d| d > 0)?;
    let blocks = data.div_ceil(BLOCK_SIZE as u64);
    (blocks <= BLOCKS_PER_CHUNK as u64).then_some(blocks as usize)
}

/// `chunk_<16 hex>_<8 hex>.mfs`, uppercase as MooseFS writes and expects it.
pub fn chunk_file_name(id: ChunkId, version: Version) -> String {
    format!("chunk_{:016X}_{:08X}.mfs", id.0, version.0)
}

/// Parses a chunk file name; anything else in a data folder is foreign.
pub fn parse_chunk_file_name(name: &str) -> Option<(ChunkId, Version)> {
    let rest = name.strip_prefix("chunk_")?.strip_suffix(".mfs")?;
    let (id, version) = rest.split_once('_')?;
    if id.len() != 16 || version.len() != 8 {
        return None;
    }
    let upper_hex = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    if !upper_hex(id) || !upper_hex(version) {
        return None;
    }
    let id = u64::from_str_radix(id, 16).ok()?;
    let version = u32::from_str_radix(version, 16).ok()?;
    Some((ChunkId(id), Version(version)))
}

/// Name of subfolder `index` (`00`..`FF`).
pub fn subfolder_name(index: usize) -> String {
    assert!(index < SUBFOLDERS);
    format!("{index:02X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = chunk_file_name(ChunkId(0x1A), Version(3));
        assert_eq!(name, "chunk_000000000000001A_00000003.mfs");
        assert_eq!(parse_chunk_file_name(&name), Some((ChunkId(0x1A), Version(3))));
    }

    #[test]
    fn foreign_names_are_rejected() {
        for bad in [
            "chunk_000000000000001a_00000003.mfs",
            "chunk_000000000000001A_0000003.mfs",
            "chunk_000000000000001A_00000003.mfs.tmp",
            "chunk_000000000000001A-00000003.mfs",
            ".lock",
            "chunk__.mfs",
        ] {
            assert_eq!(parse_chunk_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn geometry_follows_file_size() {
        assert_eq!(geometry_from_file_size(8192), Some((4096, 0)));
        assert_eq!(geometry_from_file_size(73_728), Some((4096, 1)));
        assert_eq!(geometry_from_file_size(5120), Some((1024, 0)));
        assert_eq!(geometry_from_file_size(5120 + 65_536 * 3), Some((1024, 3)));
        assert_eq!(geometry_from_file_size(67_117_056), Some((4096, 1024)));
        assert_eq!(geometry_from_file_size(0), None);
        assert_eq!(geometry_from_file_size(8000), None);
        assert_eq!(geometry_from_file_size(67_117_056 + 65_536), None);
        assert_eq!(blocks_of_torn_file(8192 + 4096), Some(1));
        assert_eq!(blocks_of_torn_file(8192 + 65_536 + 4096), Some(2));
        assert_eq!(blocks_of_torn_file(8192), None);
        assert_eq!(blocks_of_torn_file(100), None);
    }
}
