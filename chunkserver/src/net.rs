//! Framed packets over tokio sockets, with deadlines.
//!
//! Every read has a deadline, because MooseFS peers signal liveness with
//! NOPs and a silent peer must not pin a task forever. Payload limits are
//! checked on the header, before anything is allocated.

use std::future::Future;
use std::io::IoSlice;
use std::time::Duration;

use elkfs_proto::frame::Encode;
use elkfs_proto::{Header, HEADER_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

/// Runs `fut` with a deadline; the error says what timed out.
pub(crate) async fn deadline<T>(what: &str, limit: Duration, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => Err(Error::Timeout { what: what.to_string(), secs: limit.as_secs_f64() }),
    }
}

pub(crate) async fn read_header(r: &mut (impl AsyncRead + Unpin), max: usize, peer: &str) -> Result<Header> {
    let mut bytes = [0u8; HEADER_LEN];
    r.read_exact(&mut bytes).await.map_err(|e| closed(peer, e))?;
    Ok(Header::parse_limited(&bytes, max)?)
}

pub(crate) async fn read_payload(r: &mut (impl AsyncRead + Unpin), len: usize, peer: &str) -> Result<Vec<u8>> {
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.map_err(|e| closed(peer, e))?;
    Ok(payload)
}

/// One whole packet: header and payload.
pub(crate) async fn read_packet(r: &mut (impl AsyncRead + Unpin), max: usize, peer: &str) -> Result<(u32, Vec<u8>)> {
    let header = read_header(r, max, peer).await?;
    let payload = read_payload(r, header.len as usize, peer).await?;
    Ok((header.kind, payload))
}

pub(crate) fn closed(peer: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::peer(peer, "connection closed")
    } else {
        Error::io(format!("receiving from {peer}"), e)
    }
}

pub(crate) async fn send(w: &mut (impl AsyncWrite + Unpin), msg: &impl Encode, peer: &str) -> Result<()> {
    w.write_all(&msg.to_packet()).await.map_err(|e| Error::io(format!("sending to {peer}"), e))
}

/// Sends a packet prefix and its data from their own buffers, without
/// joining them first.
pub(crate) async fn send_parts(w: &mut (impl AsyncWrite + Unpin), head: &[u8], data: &[u8], peer: &str) -> Result<()> {
    send_all_vectored(w, &[head, data], peer).await
}

/// Sends several buffers as one stream of bytes with as few system calls as
/// the socket allows (a whole group of blocks and their heads per call).
pub(crate) async fn send_all_vectored(w: &mut (impl AsyncWrite + Unpin), parts: &[&[u8]], peer: &str) -> Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().filter(|p| !p.is_empty()).map(|p| IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match w.write_vectored(rest).await {
            Ok(0) => return Err(Error::peer(peer, "connection closed while sending")),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) => return Err(Error::io(format!("sending to {peer}"), e)),
        }
    }
    Ok(())
}
