//! Loopback TCP alone: the ceiling of the direct read job on this machine.
//!
//! The direct read job moves every byte from the disk into a chunkserver
//! and then through a loopback TCP connection into the bench; the engine
//! reference moves it from the disk only. To tell how much of the gap is
//! the socket, this runs the same client ([`super::direct::run`], same
//! connections, same whole-chunk READs) against a server in this process
//! that answers from memory: a block and its CRC made once, sent as
//! `READ_DATA` pieces in groups of 16 per vectored write, as the elkfs
//! chunkserver sends them. No disk, no CRC work on the server side; what is
//! left is what the kernel charges for moving bytes over loopback, plus the
//! client's own reading.
//!
//! One blocking thread per connection, on 127.0.0.1 (a loopback address is
//! all the bench may use outside its namespaces).

use std::io::{IoSlice, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use elkfs_engine::BLOCK_SIZE;
use elkfs_proto::data::{DataMsg, ReadDataHead, READ_DATA_HEAD_LEN};
use elkfs_proto::frame::{Encode, DATA_MAX_PAYLOAD};
use elkfs_proto::{Header, Status, HEADER_LEN};

use super::direct::{self, ChunkRef, Target};
use crate::stats::{thread_cpu_ns, Figures};

/// Pieces per vectored write, as the elkfs chunkserver groups them.
const GROUP: usize = 16;
/// How long the server waits for a request before it checks for the end.
const POLL: Duration = Duration::from_millis(200);

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Loopback {
    /// The client's figures (`cpu_s`: its thread).
    pub client: Figures,
    /// CPU seconds of every server thread.
    pub server_cpu_s: f64,
}

impl Loopback {
    /// Server and client CPU seconds per GiB moved.
    pub fn cpu_s_per_gib(&self) -> f64 {
        let gib = self.client.bytes as f64 / f64::from(1u32 << 30);
        if gib > 0.0 {
            (self.client.cpu_s + self.server_cpu_s) / gib
        } else {
            0.0
        }
    }
}

/// Reads `chunks` whole chunks of `chunk_bytes` over `connections`
/// connections from the memory server.
pub fn run(connections: usize, chunks: usize, chunk_bytes: usize) -> Result<Loopback> {
    run_until(connections, chunks, chunk_bytes, None, None)
}

/// READs a background run may make: more than any engine run outlasts.
const BESIDE_CHUNKS: usize = 1 << 20;
/// Bytes per READ of a background run (16 MiB): small enough that pacing
/// by whole READs keeps the load even, large enough that the connection
/// and server thread each READ costs stay out of the figure.
pub const BESIDE_READ_BYTES: usize = 256 * BLOCK_SIZE;

/// Loopback TCP as background load: the traffic of [`run`] at a given
/// pace, going on from [`Beside::start`] to [`Beside::finish`]. A
/// chunkserver reading at R MiB/s also sends R MiB/s over TCP, and on this
/// VM the disk delivers less while the CPUs are busy; the engine read with
/// this load beside it is what a chunkserver adding nothing but its socket
/// could reach.
pub struct Beside {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<Loopback>>>,
}

impl Beside {
    /// `pace`: bytes per second over all `connections`.
    pub fn start(connections: usize, pace: f64) -> Result<Beside> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("loopback-beside".into())
            .spawn(move || run_until(connections, BESIDE_CHUNKS, BESIDE_READ_BYTES, Some(flag), Some(pace)))
            .context("starting the background loopback run")?;
        Ok(Beside { stop, thread: Some(thread) })
    }

    /// Stops the load (each connection ends its current chunk) and
    /// returns what it moved.
    pub fn finish(mut self) -> Result<Loopback> {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take().expect("joined only here or in drop");
        thread.join().map_err(|_| anyhow::anyhow!("the background loopback run panicked"))?
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_until(
    connections: usize,
    chunks: usize,
    chunk_bytes: usize,
    stop: Option<Arc<AtomicBool>>,
    pace: Option<f64>,
) -> Result<Loopback> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1")?;
    let std::net::SocketAddr::V4(addr) = listener.local_addr().context("local address")? else {
        bail!("127.0.0.1 gave a non-IPv4 address");
    };
    listener.set_nonblocking(true).context("O_NONBLOCK on the listener")?;
    let done = Arc::new(AtomicBool::new(false));
    let server_ns = Arc::new(AtomicU64::new(0));
    let acceptor = {
        let (done, server_ns) = (done.clone(), server_ns.clone());
        std::thread::Builder::new()
            .name("loopback-accept".into())
            .spawn(move || accept(listener, &done, &server_ns))
            .context("starting the loopback server")?
    };
    let target = Target {
        addr,
        netns: None,
        chunks: (0..chunks as u64).map(|i| ChunkRef { id: 0x10_0000 + i, version: 1 }).collect(),
        stop,
        pace,
    };
    let job = direct::Job { write: false, connections, window: direct::DEFAULT_WINDOW, chunk_bytes, verify_all: false };
    let client = direct::run(&target, &job);
    done.store(true, Ordering::SeqCst);
    let served = acceptor.join().map_err(|_| anyhow::anyhow!("the loopback server panicked"))?;
    let client = client.context("reading from the loopback server")?;
    served.context("the loopback server")?;
    Ok(Loopback { client, server_cpu_s: server_ns.load(Ordering::SeqCst) as f64 / 1e9 })
}

/// Accepts until `done`, a thread per connection; joins them all.
fn accept(listener: TcpListener, done: &AtomicBool, server_ns: &Arc<AtomicU64>) -> Result<()> {
    let block = Arc::new(Block::new());
    let mut threads = Vec::new();
    while !done.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (block, server_ns) = (block.clone(), server_ns.clone());
                threads.push(std::thread::spawn(move || {
                    let started = thread_cpu_ns();
                    let r = serve(stream, &block);
                    server_ns.fetch_add(thread_cpu_ns().saturating_sub(started), Ordering::SeqCst);
                    r
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e).context("accepting"),
        }
    }
    let mut first = Ok(());
    for t in threads {
        let r = t.join().map_err(|_| anyhow::anyhow!("a loopback server thread panicked")).and_then(|r| r);
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// The one block every piece carries, and its CRC.
struct Block {
    data: Vec<u8>,
    crc: u32,
}

impl Block {
    fn new() -> Block {
        let data = elkfs_engine::testkit::pattern(1, 0, 0);
        let crc = elkfs_engine::crc::crc32(&data);
        Block { data, crc }
    }
}

/// Answers READs on one connection until the client closes it.
fn serve(mut stream: TcpStream, block: &Block) -> Result<()> {
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    stream.set_read_timeout(Some(POLL)).context("read timeout")?;
    loop {
        let mut header = [0u8; HEADER_LEN];
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e).context("reading a request header"),
        }
        let header = Header::parse_limited(&header, DATA_MAX_PAYLOAD)?;
        let mut payload = vec![0u8; header.len as usize];
        stream.read_exact(&mut payload).context("reading a request")?;
        match DataMsg::decode(header.kind, &payload)? {
            DataMsg::Read { chunk, offset, size, .. } => send_chunk(&mut stream, block, chunk, offset, size)?,
            DataMsg::Nop => {}
            other => bail!("the loopback server only reads, got {other:?}"),
        }
    }
}

fn send_chunk(stream: &mut TcpStream, block: &Block, chunk: u64, offset: u32, size: u32) -> Result<()> {
    if !(offset as usize).is_multiple_of(BLOCK_SIZE) || !(size as usize).is_multiple_of(BLOCK_SIZE) {
        bail!("the loopback server reads whole blocks, got {size} bytes at {offset}");
    }
    let first = offset as usize / BLOCK_SIZE;
    let blocks = size as usize / BLOCK_SIZE;
    let mut at = 0;
    while at < blocks {
        let n = GROUP.min(blocks - at);
        let prefixes: Vec<[u8; HEADER_LEN + READ_DATA_HEAD_LEN]> = (0..n)
            .map(|i| {
                ReadDataHead {
                    chunk,
                    block: (first + at + i) as u16,
                    offset: 0,
                    size: BLOCK_SIZE as u32,
                    crc: block.crc,
                }
                .packet_prefix()
            })
            .collect();
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 * n);
        for p in &prefixes {
            slices.push(IoSlice::new(p));
            slices.push(IoSlice::new(&block.data));
        }
        write_all_vectored(stream, &mut slices)?;
        at += n;
    }
    let status = DataMsg::ReadStatus { chunk, status: Status::OK };
    stream.write_all(&status.to_packet()).context("sending READ_STATUS")
}

fn write_all_vectored(stream: &mut TcpStream, mut slices: &mut [IoSlice<'_>]) -> Result<()> {
    while !slices.is_empty() {
        let n = stream.write_vectored(slices).context("sending READ_DATA")?;
        if n == 0 {
            bail!("the client stopped reading");
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_server_serves_the_direct_client() {
        let l = run(2, 3, 4 * BLOCK_SIZE).unwrap();
        assert_eq!(l.client.bytes, 3 * 4 * BLOCK_SIZE as u64);
        assert_eq!(l.client.ops, 3);
        assert!(l.server_cpu_s > 0.0 && l.cpu_s_per_gib() > 0.0, "{l:?}");
    }

    #[test]
    fn background_load_keeps_its_pace_until_finished() {
        // 40 READs a second: about 20 in half a second.
        let pace = 40.0 * BESIDE_READ_BYTES as f64;
        let beside = Beside::start(2, pace).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let l = beside.finish().unwrap();
        assert!((10..=30).contains(&l.client.ops), "{l:?}");
        assert_eq!(l.client.bytes, l.client.ops * BESIDE_READ_BYTES as u64);
    }
}
