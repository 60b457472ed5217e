//! The crate's one error type, and the one place that turns errors into
//! errno values for the kernel.

use elkfs_proto::Status;
use std::io;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed; `what` names the operation and the peer.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A peer sent bytes that do not decode.
    #[error("{peer}: {source}")]
    Proto {
        peer: String,
        #[source]
        source: elkfs_proto::Error,
    },
    /// A peer sent a message that decodes but makes no sense here.
    #[error("{peer}: {what}")]
    Peer { peer: String, what: String },
    /// The master or a chunkserver refused the operation.
    #[error("{op}: {status}")]
    Status { op: &'static str, status: Status },
    /// The master answered nothing in time, or the link went down and the
    /// request was sent before the session resumed.
    #[error("{op}: no answer from the master in time")]
    Timeout { op: &'static str },
    /// The session cannot be resumed (the master forgot it or refused it).
    #[error("the master ended the session: {0}")]
    SessionLost(String),
    /// A chunk's data could not be read or written on any copy.
    #[error("chunk {chunk:016X}: {what}")]
    Chunk { chunk: u64, what: String },
    /// Bad mount options.
    #[error("{0}")]
    Options(String),
}

impl Error {
    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io { what: what.into(), source }
    }

    pub fn peer(peer: impl std::fmt::Display, what: impl Into<String>) -> Error {
        Error::Peer { peer: peer.to_string(), what: what.into() }
    }

    pub fn proto(peer: impl std::fmt::Display, source: elkfs_proto::Error) -> Error {
        Error::Proto { peer: peer.to_string(), source }
    }

    /// The status a master or chunkserver sent, if that is what this is.
    pub fn status(&self) -> Option<Status> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What the application sees. Statuses map like mfsmount maps them;
    /// everything that went wrong on the way (sockets, timeouts, data) is
    /// EIO, because the application can do nothing more specific about it.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Status { status, .. } => status_errno(*status),
            Error::Timeout { .. } => libc::EIO,
            Error::Options(_) => libc::EINVAL,
            _ => libc::EIO,
        }
    }
}

/// MooseFS status → errno.
pub fn status_errno(status: Status) -> i32 {
    match status {
        Status::OK => 0,
        Status::EPERM | Status::EPERM_NOTADMIN => libc::EPERM,
        Status::ENOTDIR => libc::ENOTDIR,
        Status::ENOENT | Status::ENOENT_NOCACHE | Status::NOTFOUND => libc::ENOENT,
        Status::EACCES => libc::EACCES,
        Status::EEXIST | Status::CHUNKEXIST | Status::CLASSEXISTS => libc::EEXIST,
        Status::EINVAL | Status::WRONGSIZE | Status::WRONGOFFSET => libc::EINVAL,
        Status::ENOTEMPTY => libc::ENOTEMPTY,
        Status::OUTOFMEMORY => libc::ENOMEM,
        Status::INDEXTOOBIG => libc::EFBIG,
        Status::NOSPACE => libc::ENOSPC,
        Status::QUOTA => libc::EDQUOT,
        Status::EROFS => libc::EROFS,
        Status::ENOATTR => libc::ENODATA,
        Status::ENOTSUP => libc::ENOTSUP,
        Status::ERANGE => libc::ERANGE,
        Status::EAGAIN | Status::LOCKED | Status::CHUNKBUSY | Status::DELAYED | Status::WAITING => libc::EAGAIN,
        Status::EINTR => libc::EINTR,
        Status::ECANCELED => libc::ECANCELED,
        _ => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_meaning() {
        let e = Error::Status { op: "lookup", status: Status::ENOENT };
        assert_eq!(e.errno(), libc::ENOENT);
        assert_eq!(status_errno(Status::NOSPACE), libc::ENOSPC);
        assert_eq!(status_errno(Status::QUOTA), libc::EDQUOT);
        assert_eq!(status_errno(Status::CHUNKLOST), libc::EIO);
        assert_eq!(Error::Timeout { op: "read chunk" }.errno(), libc::EIO);
    }
}
