//! The chunkserver data port: connections ([`pool`]), reading a range of a
//! chunk ([`read`]) and writing pieces of a chunk down a chain ([`write`]).

pub mod pool;
pub mod read;
pub mod write;

/// Size of a block, the unit of CRCs on the chunkservers.
pub const BLOCK: u32 = 0x10000;
/// Size of a chunk.
pub const CHUNK: u64 = 64 << 20;
/// Chunkservers from 1.7.32 on take the protocol-id byte in READ/WRITE,
/// which turns on keep-alive NOPs and WRITE_FINISH.
pub const PROTOCOL_MIN_VERSION: u32 = (1 << 16) | (7 << 8) | (32 * 2);
