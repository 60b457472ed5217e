//! The MooseFS 3.0 wire protocol: framing, status codes and typed messages.
//!
//! No I/O lives here: callers move bytes, this crate says what they mean.
//! Every decoder takes a message type and its payload and returns either a
//! message or an [`Error`]; none of them panics on any input, which the
//! property tests in `tests/` check over random bytes.
//!
//! Bulk data (`READ_DATA`, `WRITE_DATA`) is described by a fixed-size head;
//! the data itself never passes through this crate, so the chunkserver can
//! receive it straight into an engine buffer and send it from one.

pub mod admin;
pub mod client;
pub mod data;
mod error;
pub mod frame;
pub mod master_cs;
pub mod metalogger;
pub mod status;
mod wire;

pub use error::{Error, Result};
pub use frame::{Header, HEADER_LEN};
pub use status::Status;

/// The version elkfs announces: it speaks the 3.0.117 protocol, and peers
/// pick message variants by this number (`major<<16 | mid<<8 | minor*2`).
pub const VERSION: u32 = (3 << 16) | (117 * 2);
/// The text sent with [`VERSION`] in `ANTOAN_VERSION` replies.
pub const VERSION_TEXT: &str = "3.0.117-elkfs";

/// An IPv4 address and TCP port as they travel: `ip:32 port:16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addr {
    pub ip: u32,
    pub port: u16,
}

impl Addr {
    pub fn new(ip: std::net::Ipv4Addr, port: u16) -> Addr {
        Addr { ip: u32::from(ip), port }
    }

    pub fn socket(&self) -> std::net::SocketAddrV4 {
        std::net::SocketAddrV4::new(self.ip.into(), self.port)
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.socket())
    }
}

/// Encodes a version number as peers print it (`3.0.117`).
pub fn version_string(v: u32) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xFF, (v & 0xFF) >> 1)
}
