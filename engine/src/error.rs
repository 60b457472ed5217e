//! The engine's one error type.
//!
//! Operating errors carry what was being done, to which chunk or file, and
//! keep the `io::Error` (and so the errno) as their source. [`Error::kind`]
//! folds them into the few outcomes a caller acts on; the chunkserver maps
//! those to MooseFS status codes in one place.

use std::io;
use std::path::PathBuf;

use crate::layout::{ChunkId, Version};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("chunk {0} not found")]
    NoChunk(ChunkId),
    #[error("chunk {id} exists")]
    ChunkExists { id: ChunkId },
    #[error("chunk {id} has version {have}, asked for {want}")]
    WrongVersion { id: ChunkId, have: Version, want: Version },
    #[error("chunk {id} block {block}: CRC mismatch (stored {stored:08X}, data {actual:08X})")]
    Crc { id: ChunkId, block: usize, stored: u32, actual: u32 },
    #[error("chunk {id} block {block}: data does not match the CRC sent with it")]
    PieceCrc { id: ChunkId, block: usize },
    #[error("chunk {id}: block {block}, offset {offset}, size {size} is outside a chunk")]
    WrongRange { id: ChunkId, block: usize, offset: usize, size: usize },
    #[error("no space left on {path} (reserve kept free)")]
    NoSpace { path: PathBuf },
    #[error("disk {path} is damaged and refuses further I/O")]
    DiskDamaged { path: PathBuf },
    #[error("chunk {id} is damaged: {why}")]
    Damaged { id: ChunkId, why: String },
    #[error("no disk can take a new chunk")]
    NoDisk,
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("engine is shutting down")]
    Shutdown,
}

/// What a caller does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NoChunk,
    ChunkExists,
    WrongVersion,
    /// Stored data failed its CRC: the copy is bad, try another.
    Crc,
    /// The data sent failed its CRC: the sender must resend.
    PieceCrc,
    WrongRange,
    NoSpace,
    /// The copy is unusable (damaged chunk or disk).
    Damaged,
    Io,
    Config,
    Shutdown,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoChunk(_) => ErrorKind::NoChunk,
            Error::ChunkExists { .. } => ErrorKind::ChunkExists,
            Error::WrongVersion { .. } => ErrorKind::WrongVersion,
            Error::Crc { .. } => ErrorKind::Crc,
            Error::PieceCrc { .. } => ErrorKind::PieceCrc,
            Error::WrongRange { .. } => ErrorKind::WrongRange,
            Error::NoSpace { .. } | Error::NoDisk => ErrorKind::NoSpace,
            Error::DiskDamaged { .. } | Error::Damaged { .. } => ErrorKind::Damaged,
            Error::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => ErrorKind::NoSpace,
            Error::Io { .. } => ErrorKind::Io,
            Error::Config(_) => ErrorKind::Config,
            Error::Shutdown => ErrorKind::Shutdown,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }
}
