//! The master's one error type.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file is missing, unreadable or holds a bad value.
    #[error("{path}: {why}")]
    Config { path: PathBuf, why: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Metadata on disk (snapshot or changelog) cannot be used.
    #[error("{path}: {why}")]
    Metadata { path: PathBuf, why: String },
    /// A peer broke the protocol or went away; only its connection ends.
    #[error("{peer}: {what}")]
    Peer { peer: String, what: String },
    /// A changelog line that does not parse.
    #[error("changelog record {line:?}: {why}")]
    Record { line: String, why: String },
    /// A changelog record out of sequence or not applicable to the state.
    #[error("changelog record {version}: {why}")]
    Replay { version: u64, why: String },
    /// A metadata snapshot that is corrupt, truncated or of another format.
    #[error("metadata snapshot: {why}")]
    Snapshot { why: String },
    #[error(transparent)]
    Proto(#[from] elkfs_proto::Error),
}

impl Error {
    pub fn peer(peer: impl std::fmt::Display, what: impl Into<String>) -> Error {
        Error::Peer { peer: peer.to_string(), what: what.into() }
    }

    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io { what: what.into(), source }
    }
}

impl From<elkfs_daemon::Error> for Error {
    fn from(e: elkfs_daemon::Error) -> Error {
        match e {
            elkfs_daemon::Error::Config { path, why } => Error::Config { path, why },
            elkfs_daemon::Error::Io { what, source } => Error::Io { what, source },
        }
    }
}
