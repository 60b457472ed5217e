//! The direct protocol benchmark: the bench itself speaks the chunkserver
//! data protocol to one chunkserver, with no FUSE and no mfsmount between.
//!
//! Writes are `CLTOCS_WRITE` (no chain), then the chunk's blocks as
//! `WRITE_DATA` pieces of 64 KiB with up to `window` of them unacknowledged
//! per connection (what mfsmount allows itself), then `WRITE_FINISH`.
//! Reads are one `CLTOCS_READ` of a whole chunk, answered by one
//! `READ_DATA` per block and a `READ_STATUS`. Several connections run at
//! once; each takes the next chunk of the list until none is left, so every
//! chunk is written or read exactly once per run (a second read of a chunk
//! would come from the page cache of a server that reads through it).
//!
//! The chunks must exist on the server in the given version: the
//! chunkserver accepts writes to an existing chunk of matching version
//! without asking the master.
//!
//! The server listens inside the cluster's network namespace. The client
//! runs on a thread of its own that first joins that namespace
//! (`setns(CLONE_NEWNET)` only changes the calling thread) and then drives
//! every connection from one current-thread tokio runtime: every socket is
//! created on that thread, and the client costs one core at most. Its CPU
//! time is measured, so a client-bound run shows as such.

use std::fs::File;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use elkfs_engine::BLOCK_SIZE;
use elkfs_proto::data::{
    DataMsg, ReadDataHead, WriteDataHead, NOP, READ_DATA, READ_DATA_HEAD_LEN, READ_STATUS, WRITE_DATA_HEAD_LEN,
};
use elkfs_proto::frame::{Encode, DATA_MAX_PAYLOAD};
use elkfs_proto::{Header, HEADER_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::stats::{thread_cpu_ns, DiskBytes, Figures, Latency};

/// What mfsmount leaves unacknowledged per write connection.
pub const DEFAULT_WINDOW: usize = 64;
/// Bound on connecting.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// Bound on one whole-chunk operation (64 MiB at a few MB/s would be broken).
const OP_LIMIT: Duration = Duration::from_secs(120);
/// Distinct data blocks the writer cycles through (with their CRCs, made once).
const PATTERNS: usize = 8;
/// The `protocol` byte of the current `CLTOCS_READ` / `CLTOCS_WRITE` forms.
const PROTOCOL: u8 = 1;

/// One chunk on the server: id and the version it has there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub id: u64,
    pub version: u32,
}

/// Where the chunks are and how to reach them.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddrV4,
    /// `/run/netns/NAME` of the namespace the server listens in; `None`:
    /// this one.
    pub netns: Option<PathBuf>,
    pub chunks: Vec<ChunkRef>,
    /// Once set, connections take no further chunk: a run used as
    /// background load ends when its user is done.
    pub stop: Option<Arc<AtomicBool>>,
    /// Bytes per second all connections together may move: chunk `i`
    /// starts no earlier than `i * chunk_bytes / pace` after the run began.
    /// `None`: as fast as they go.
    pub pace: Option<f64>,
}

/// One run: every chunk of the target once, in one direction.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub write: bool,
    pub connections: usize,
    /// Unacknowledged `WRITE_DATA` pieces per connection.
    pub window: usize,
    /// Bytes of each chunk written or read, from offset 0: whole 64 KiB
    /// blocks (64 MiB in the bench, less in tests).
    pub chunk_bytes: usize,
    /// Check the CRC of every read piece (tests); otherwise one in 16.
    pub verify_all: bool,
}

/// Runs `job` against `target` and measures it. Blocking. The figures are
/// bytes, whole-chunk operations, wall time and p50/p99 of those
/// operations; `cpu_s` is the client thread's own CPU.
pub fn run(target: &Target, job: &Job) -> Result<Figures> {
    if target.chunks.is_empty() {
        bail!("no chunks to {} on {}", if job.write { "write" } else { "read" }, target.addr);
    }
    if job.chunk_bytes == 0 || !job.chunk_bytes.is_multiple_of(BLOCK_SIZE) || job.chunk_bytes > 64 << 20 {
        bail!("chunk size {} is not a whole number of 64 KiB blocks up to 64 MiB", job.chunk_bytes);
    }
    let (target, job) = (target.clone(), *job);
    std::thread::Builder::new()
        .name("elkfs-bench-proto".into())
        .spawn(move || {
            if let Some(ns) = &target.netns {
                enter_netns(ns)?;
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building the protocol client's runtime")?;
            runtime.block_on(drive(target, job))
        })
        .context("starting the protocol client thread")?
        .join()
        .map_err(|_| anyhow!("the protocol client thread panicked"))?
}

/// Moves the calling thread into the network namespace at `path`.
fn enter_netns(path: &Path) -> Result<()> {
    let ns = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: setns on a descriptor we own; it only changes this thread's
    // network namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setns into {}", path.display()));
    }
    Ok(())
}

/// Prebuilt `WRITE_DATA` packets: a 32-byte prefix (rewritten per piece)
/// and one block of data, with the data's CRC.
struct Patterns {
    packets: Vec<Vec<u8>>,
    crcs: Vec<u32>,
}

impl Patterns {
    fn new() -> Patterns {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut packets = Vec::with_capacity(PATTERNS);
        let mut crcs = Vec::with_capacity(PATTERNS);
        for _ in 0..PATTERNS {
            let mut packet = vec![0u8; HEADER_LEN + WRITE_DATA_HEAD_LEN + BLOCK_SIZE];
            for word in packet[HEADER_LEN + WRITE_DATA_HEAD_LEN..].chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            crcs.push(elkfs_engine::crc::crc32(&packet[HEADER_LEN + WRITE_DATA_HEAD_LEN..]));
            packets.push(packet);
        }
        Patterns { packets, crcs }
    }
}

async fn drive(target: Target, job: Job) -> Result<Figures> {
    let cpu_before = thread_cpu_ns();
    let chunks = Arc::new(target.chunks);
    let next = Arc::new(AtomicUsize::new(0));
    let connections = job.connections.clamp(1, chunks.len());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (chunks, next, addr, stop) = (chunks.clone(), next.clone(), target.addr, target.stop.clone());
        let pace = target.pace.filter(|p| *p > 0.0);
        tasks.spawn(async move {
            let mut latency = Latency::new()?;
            let mut patterns = job.write.then(Patterns::new);
            let mut bytes = 0u64;
            loop {
                if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&chunk) = chunks.get(i) else { break };
                if let Some(pace) = pace {
                    let due = Duration::from_secs_f64(i as f64 * job.chunk_bytes as f64 / pace);
                    tokio::time::sleep_until((started + due).into()).await;
                }
                let began = Instant::now();
                let op = async {
                    let stream = connect(addr)?;
                    match patterns.as_mut() {
                        Some(p) => write_chunk(stream, chunk, &job, p).await,
                        None => read_chunk(stream, chunk, &job).await,
                    }
                };
                tokio::time::timeout(OP_LIMIT, op)
                    .await
                    .map_err(|_| anyhow!("chunk {:016X} took over {} s", chunk.id, OP_LIMIT.as_secs()))?
                    .with_context(|| format!("chunk {:016X} version {} on {addr}", chunk.id, chunk.version))?;
                latency.record(began.elapsed());
                bytes += job.chunk_bytes as u64;
            }
            Ok::<_, anyhow::Error>((bytes, latency))
        });
    }
    let mut latency = Latency::new()?;
    let mut bytes = 0;
    while let Some(joined) = tasks.join_next().await {
        let (b, l) = joined.context("a protocol client task panicked")??;
        bytes += b;
        latency.merge(&l)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_s = thread_cpu_ns().saturating_sub(cpu_before) as f64 / 1e9;
    Ok(Figures {
        bytes,
        ops: latency.count(),
        seconds,
        p50_us: latency.percentile_us(50.0),
        p99_us: latency.percentile_us(99.0),
        cpu_s,
        cpu_sys_s: 0.0,
        switches: 0.0,
        job_cpu_s: 0.0,
        disk: DiskBytes::default(),
    })
}

/// A connection made on this thread (so in its namespace), non-blocking,
/// without Nagle.
fn connect(addr: SocketAddrV4) -> Result<TcpStream> {
    let stream = std::net::TcpStream::connect_timeout(&SocketAddr::V4(addr), CONNECT_LIMIT)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    stream.set_nonblocking(true).context("O_NONBLOCK")?;
    TcpStream::from_std(stream).context("registering the socket")
}

/// The next message other than a NOP, with its payload; refuses bulk data.
async fn next_msg(r: &mut (impl AsyncRead + Unpin)) -> Result<DataMsg> {
    loop {
        let mut header = [0u8; HEADER_LEN];
        r.read_exact(&mut header).await.context("reading a header")?;
        let header = Header::parse_limited(&header, DATA_MAX_PAYLOAD)?;
        let mut payload = vec![0u8; header.len as usize];
        r.read_exact(&mut payload).await.context("reading a payload")?;
        let msg = DataMsg::decode(header.kind, &payload)?;
        if msg != DataMsg::Nop {
            return Ok(msg);
        }
    }
}

async fn write_chunk(stream: TcpStream, chunk: ChunkRef, job: &Job, patterns: &mut Patterns) -> Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::with_capacity(16 << 10, r);
    let open = DataMsg::Write { protocol: Some(PROTOCOL), chunk: chunk.id, version: chunk.version, chain: vec![] };
    w.write_all(&open.to_packet()).await.context("sending WRITE")?;
    match next_msg(&mut r).await? {
        DataMsg::WriteStatus { write_id: 0, status, .. } if status.is_ok() => {}
        DataMsg::WriteStatus { status, .. } => bail!("WRITE refused: {status:?}"),
        other => bail!("unexpected answer to WRITE: {other:?}"),
    }
    let pieces = job.chunk_bytes / BLOCK_SIZE;
    let window = Semaphore::new(job.window.max(1));
    let send = async {
        for i in 0..pieces {
            window.acquire().await.context("write window")?.forget();
            let slot = i % patterns.packets.len();
            let head = WriteDataHead {
                chunk: chunk.id,
                write_id: i as u32 + 1,
                block: i as u16,
                offset: 0,
                size: BLOCK_SIZE as u32,
                crc: patterns.crcs[slot],
            };
            let packet = &mut patterns.packets[slot];
            packet[..HEADER_LEN + WRITE_DATA_HEAD_LEN].copy_from_slice(&head.packet_prefix());
            w.write_all(packet).await.context("sending WRITE_DATA")?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let acks = async {
        for i in 0..pieces {
            match next_msg(&mut r).await? {
                DataMsg::WriteStatus { write_id, status, .. } if status.is_ok() => {
                    if write_id != i as u32 + 1 {
                        bail!("status for write id {write_id}, expected {}", i + 1);
                    }
                    window.add_permits(1);
                }
                DataMsg::WriteStatus { write_id, status, .. } => bail!("piece {write_id} failed: {status:?}"),
                other => bail!("unexpected message during a write: {other:?}"),
            }
        }
        Ok(())
    };
    tokio::try_join!(send, acks)?;
    let finish = DataMsg::WriteFinish { chunk: chunk.id, version: chunk.version };
    w.write_all(&finish.to_packet()).await.context("sending WRITE_FINISH")?;
    Ok(())
}

async fn read_chunk(mut stream: TcpStream, chunk: ChunkRef, job: &Job) -> Result<()> {
    let ask = DataMsg::Read {
        protocol: Some(PROTOCOL),
        chunk: chunk.id,
        version: chunk.version,
        offset: 0,
        size: job.chunk_bytes as u32,
    };
    stream.write_all(&ask.to_packet()).await.context("sending READ")?;
    let mut data = vec![0u8; BLOCK_SIZE];
    let mut got = 0usize;
    let mut pieces = 0usize;
    loop {
        let mut header = [0u8; HEADER_LEN];
        stream.read_exact(&mut header).await.context("reading a header")?;
        let header = Header::parse_limited(&header, DATA_MAX_PAYLOAD)?;
        let len = header.len as usize;
        match header.kind {
            READ_DATA if len >= READ_DATA_HEAD_LEN => {
                let mut head = [0u8; READ_DATA_HEAD_LEN];
                stream.read_exact(&mut head).await.context("reading a READ_DATA head")?;
                let head = ReadDataHead::decode(&head, len)?;
                let size = head.size as usize;
                let at = head.block as usize * BLOCK_SIZE + head.offset as usize;
                if head.chunk != chunk.id || at != got {
                    bail!("piece of chunk {:016X} at {at}, expected chunk {:016X} at {got}", head.chunk, chunk.id);
                }
                stream.read_exact(&mut data[..size]).await.context("reading READ_DATA")?;
                if (job.verify_all || pieces.is_multiple_of(16)) && elkfs_engine::crc::crc32(&data[..size]) != head.crc
                {
                    bail!("CRC mismatch in block {} of chunk {:016X}", head.block, chunk.id);
                }
                got += size;
                pieces += 1;
            }
            READ_STATUS | NOP => {
                let mut payload = vec![0u8; len];
                stream.read_exact(&mut payload).await.context("reading a payload")?;
                match DataMsg::decode(header.kind, &payload)? {
                    DataMsg::Nop => {}
                    DataMsg::ReadStatus { status, .. } if status.is_ok() => {
                        if got != job.chunk_bytes {
                            bail!("READ_STATUS OK after {got} of {} bytes", job.chunk_bytes);
                        }
                        return Ok(());
                    }
                    DataMsg::ReadStatus { status, .. } => bail!("READ failed: {status:?}"),
                    other => bail!("unexpected message during a read: {other:?}"),
                }
            }
            kind => bail!("unexpected message type {kind} ({len} bytes) during a read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_carry_their_crc() {
        let p = Patterns::new();
        assert_eq!(p.packets.len(), PATTERNS);
        for (packet, crc) in p.packets.iter().zip(&p.crcs) {
            assert_eq!(packet.len(), HEADER_LEN + WRITE_DATA_HEAD_LEN + BLOCK_SIZE);
            assert_eq!(elkfs_engine::crc::crc32(&packet[HEADER_LEN + WRITE_DATA_HEAD_LEN..]), *crc);
        }
        assert_ne!(p.crcs[0], p.crcs[1], "the blocks differ");
    }

    #[test]
    fn bad_jobs_are_refused() {
        let target =
            Target { addr: "127.0.0.1:9".parse().unwrap(), netns: None, chunks: vec![], stop: None, pace: None };
        let job = Job { write: true, connections: 1, window: 64, chunk_bytes: BLOCK_SIZE, verify_all: true };
        assert!(run(&target, &job).is_err(), "no chunks");
        let target = Target { chunks: vec![ChunkRef { id: 1, version: 1 }], ..target };
        assert!(run(&target, &Job { chunk_bytes: 1000, ..job }).is_err(), "not whole blocks");
    }
}
