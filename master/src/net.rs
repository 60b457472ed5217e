//! Reading framed messages off a socket, with the payload limit checked
//! before anything is allocated for it.

use std::future::Future;
use std::time::Duration;

use elkfs_proto::{Header, HEADER_LEN};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};

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

/// Accepts connections forever, each served by its own task. `what` names
/// the peers in logs. An accept error (too many open files, say) is logged
/// and retried after a pause rather than ending the listener.
pub async fn accept_loop<F, Fut>(listener: TcpListener, what: &'static str, mut serve: F)
where
    F: FnMut(TcpStream) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let served = serve(stream);
                tokio::spawn(async move {
                    if let Err(e) = served.await {
                        tracing::debug!(%peer, "{what} connection closed: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("accept {what}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
