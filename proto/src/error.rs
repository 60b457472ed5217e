//! The protocol crate's one error type: what was wrong with a packet.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unknown message type {kind} ({len} byte payload)")]
    UnknownType { kind: u32, len: usize },
    #[error("message type {kind}: payload of {len} bytes ends early")]
    Truncated { kind: u32, len: usize },
    #[error("message type {kind}: {extra} bytes left over after the message")]
    Trailing { kind: u32, extra: usize },
    #[error("message type {kind}: a payload of {len} bytes fits no form of this message")]
    BadLength { kind: u32, len: usize },
    #[error("message type {kind}: payload of {len} bytes is over the {max} byte limit")]
    TooLarge { kind: u32, len: usize, max: usize },
    #[error("message type {kind}: {what}")]
    BadValue { kind: u32, what: &'static str },
}
