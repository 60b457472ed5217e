//! The client link (master port 9421): what mfsmount and the MooseFS tools
//! ask the master ([`ClToMa`]) and what it answers ([`MaToCl`]).
//!
//! Registration (`FUSE_REGISTER`) carries no message id; every later request
//! starts with `msgid:32`, which the reply repeats, because the master may
//! answer out of order. Reply kind is request kind + 1. Any reply can take
//! the five-byte error form `msgid status:8` ([`MaToCl::Status`]).
//!
//! Attribute records travel as opaque [`AttrBytes`]: the master builds them
//! and this crate only carries them; clients read them with [`Attr::decode`]. Layouts follow what a 3.0.117 client
//! sends and accepts; older request forms are taken where the only
//! difference is the single-gid credential (see [`Cred`]).

pub mod ids;
mod reply;
mod request;
mod types;

pub use reply::{DirForm, MaToCl, MetaSession, Session};
pub use request::{ClToMa, Resume, SclassSet};
pub use types::{
    Attr, AttrBytes, ChunkLoc, Cred, CsLoc, DirEntries, DirStats, FirstChunk, Sclass, ATTR_LEN, MATTR_NOACACHE,
    MATTR_NOECACHE, TYPE_BLOCKDEV, TYPE_CHARDEV, TYPE_DIRECTORY, TYPE_FIFO, TYPE_FILE, TYPE_SOCKET, TYPE_SYMLINK,
};

/// Every registration starts with this blob; the 3.0.117 master accepts no
/// other (the two older blobs meant "no ACL support" and are refused).
pub const REGISTER_BLOB: &[u8; 64] = b"DjI1GAQDULI5d2YjA26ypc3ovkhjvhciTQVx3CS4nYgtBoUcsljiVpsErJENHaw0";

/// Registration sub-commands (the byte after the blob).
pub const REG_GETRANDOM: u8 = 1;
pub const REG_NEWSESSION: u8 = 2;
pub const REG_RECONNECT: u8 = 3;
pub const REG_TOOLS: u8 = 4;
pub const REG_NEWMETASESSION: u8 = 5;
pub const REG_CLOSESESSION: u8 = 6;

/// `LOOKUP` reply flag: chunk 0's location follows the flags.
pub const LOOKUP_CHUNK_ZERO_DATA: u16 = 0x0100;
/// `READDIR` request flag: entries carry attribute records.
pub const READDIR_ATTRS: u8 = 0x01;
/// The largest directory edge id: a listing cursor past the last entry.
pub const EDGEID_MAX: u64 = 0x7FFF_FFFF_FFFF_FFFF;
/// Protocol id of chunk location replies for clients from 3.0.10 on.
pub const CHUNK_LOC_PROTOCOL: u8 = 2;
/// Storage-class marker in goal requests and replies: a name follows.
pub const SCLASS_NAMED: u8 = 0xFF;
/// `SETSCLASS`/`SETTRASHTIME` mode: low bits pick the operation,
/// `SMODE_EXCHANGE` names a source class too; bit 2 is "recursive".
pub const SMODE_TMASK: u8 = 3;
pub const SMODE_EXCHANGE: u8 = 3;
