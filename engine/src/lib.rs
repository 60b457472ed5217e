//! The elkfs chunk engine: one chunkserver's chunk store.
//!
//! Chunk files are MooseFS 3.0's (see `layout` and `header`), spread over
//! the data folders of `mfshdd.cfg`, one [`disk::Disk`] each. Data I/O goes
//! through io_uring with O_DIRECT from a pool of aligned buffers
//! ([`buffer::BufPool`]) that the network layer fills directly. The engine
//! knows nothing of the network, the master or the wire protocol.

pub mod buffer;
pub mod config;
pub mod crc;
pub mod disk;
pub mod error;
pub mod header;
pub mod layout;
mod store;
#[doc(hidden)]
pub mod testkit;

pub use buffer::{Buf, BufPool, BUF_SIZE};
pub use config::{EngineConfig, HddLine};
pub use error::{Error, ErrorKind, Result};
pub use layout::{ChunkId, Version, BLOCKS_PER_CHUNK, BLOCK_SIZE};
pub use store::{ChunkInfo, Engine, FolderReport, FolderSpace, ReadPiece, ScanReport, VERSION_MARKED_FOR_REMOVAL};
