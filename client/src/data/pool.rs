//! Connections to chunkservers, kept after a clean operation for the next
//! one: a new TCP connection per 64 KiB read would cost more than the read.
//!
//! A connection goes back only after an operation that ended cleanly (every
//! reply consumed), so the next user starts on a quiet socket. Idle ones
//! are dropped after `IDLE_MAX`: the chunkserver closes them after 5 s.

use std::collections::HashMap;
use std::io::{BufReader, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use elkfs_proto::frame::DATA_MAX_PAYLOAD;
use elkfs_proto::{Addr, Header, HEADER_LEN};

use crate::error::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Nothing received for this long ends an operation (the chunkserver sends
/// a NOP each second while its disk is busy).
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_MAX: Duration = Duration::from_secs(3);
/// Idle connections kept per chunkserver.
const PER_SERVER_MAX: usize = 8;

/// Bytes read from a chunkserver at once: a status or a small piece and the
/// headers around it arrive in one system call. Larger reads bypass it.
const RECV_BUFFER: usize = 16 << 10;

/// A connection to one chunkserver.
pub struct Conn {
    pub addr: Addr,
    stream: BufReader<TcpStream>,
}

impl Conn {
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.get_mut().write_all(bytes).map_err(|e| Error::io(format!("send to chunkserver {}", self.addr), e))
    }

    /// Sends `parts` as one message without gathering them in a buffer.
    pub fn send_parts(&mut self, parts: &[&[u8]]) -> Result<()> {
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match self.stream.get_mut().write_vectored(rest) {
                Ok(0) => {
                    let e = std::io::Error::new(std::io::ErrorKind::WriteZero, "connection closed");
                    return Err(Error::io(format!("send to chunkserver {}", self.addr), e));
                }
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("send to chunkserver {}", self.addr), e)),
            }
        }
        Ok(())
    }

    /// Reads the next header, refusing payloads over the data-port limit.
    pub fn recv_header(&mut self) -> Result<Header> {
        let mut head = [0u8; HEADER_LEN];
        self.recv_exact(&mut head)?;
        Header::parse_limited(&head, DATA_MAX_PAYLOAD).map_err(|e| Error::proto(self.addr, e))
    }

    pub fn recv_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.stream.read_exact(buf).map_err(|e| Error::io(format!("receive from chunkserver {}", self.addr), e))
    }
}

#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<Addr, Vec<(Conn, Instant)>>>,
    /// Connections opened and reused since the start, for the unmount log.
    opened: std::sync::atomic::AtomicU64,
    reused: std::sync::atomic::AtomicU64,
}

impl Pool {
    pub fn get(&self, addr: Addr) -> Result<Conn> {
        {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(list) = idle.get_mut(&addr) {
                while let Some((conn, since)) = list.pop() {
                    if since.elapsed() < IDLE_MAX {
                        self.reused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return Ok(conn);
                    }
                }
            }
        }
        let stream = TcpStream::connect_timeout(&addr.socket().into(), CONNECT_TIMEOUT)
            .map_err(|e| Error::io(format!("connect to chunkserver {addr}"), e))?;
        self.opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stream.set_nodelay(true).map_err(|e| Error::io(format!("nodelay {addr}"), e))?;
        stream.set_read_timeout(Some(RECV_TIMEOUT)).map_err(|e| Error::io(format!("timeout {addr}"), e))?;
        Ok(Conn { addr, stream: BufReader::with_capacity(RECV_BUFFER, stream) })
    }

    /// Connections opened, and operations that reused an idle one.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.opened.load(Relaxed), self.reused.load(Relaxed))
    }

    /// Takes back a connection whose operation ended cleanly.
    pub fn put(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(conn.addr).or_default();
        list.retain(|(_, since)| since.elapsed() < IDLE_MAX);
        if list.len() < PER_SERVER_MAX {
            list.push((conn, Instant::now()));
        }
    }
}
