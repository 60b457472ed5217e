//! Reading framed messages off a socket, with the payload limit checked
//! before anything is allocated for it.

use elkfs_proto::{Header, HEADER_LEN};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, Result};

/// Who is on the other end; decides the largest payload accepted.
#[derive(Clone, Copy, Debug)]
pub enum FrameLimit {
    Client,
    Metalogger,
    /// The master's side of a metalogger link (snapshot pieces).
    FromMaster,
}

impl FrameLimit {
    fn max(self) -> usize {
        match self {
            // Requests are small; the biggest is a SETXATTR or SETFACL.
            FrameLimit::Client => 1_000_000,
            FrameLimit::Metalogger => 1_500_000,
            FrameLimit::FromMaster => 1_500_000,
        }
    }
}

/// Reads one message: its type and payload.
pub async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, limit: FrameLimit) -> Result<(u32, Vec<u8>)> {
    let mut head = [0u8; HEADER_LEN];
    rd.read_exact(&mut head).await.map_err(|e| Error::io("read", e))?;
    let header = Header::parse_limited(&head, limit.max())?;
    let mut payload = vec![0u8; header.len as usize];
    rd.read_exact(&mut payload).await.map_err(|e| Error::io("read", e))?;
    Ok((header.kind, payload))
}
