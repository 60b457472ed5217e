//! Engine errors as MooseFS status codes: the one place that decides what
//! a client or master is told.

use elkfs_engine::{Error as EngineError, ErrorKind};
use elkfs_proto::Status;

use crate::error::Error;

pub(crate) fn of_engine(e: &EngineError) -> Status {
    match e.kind() {
        ErrorKind::NoChunk => Status::NOCHUNK,
        ErrorKind::ChunkExists => Status::CHUNKEXIST,
        ErrorKind::WrongVersion => Status::WRONGVERSION,
        ErrorKind::Crc | ErrorKind::PieceCrc => Status::CRC,
        ErrorKind::WrongRange => Status::WRONGOFFSET,
        ErrorKind::NoSpace => Status::NOSPACE,
        ErrorKind::Damaged | ErrorKind::Io | ErrorKind::Config | ErrorKind::Shutdown => Status::IO,
    }
}

pub(crate) fn of_error(e: &Error) -> Status {
    match e {
        Error::Engine(e) => of_engine(e),
        Error::Status { status, .. } => *status,
        Error::Timeout { .. } | Error::Peer { .. } => Status::DISCONNECTED,
        Error::Io { .. } => Status::IO,
        Error::Proto(_) => Status::DISCONNECTED,
        Error::Config { .. } => Status::EINVAL,
    }
}
