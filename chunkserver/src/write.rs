//! Serving `CLTOCS_WRITE`: local block writes plus forwarding down the
//! write chain, with statuses returned upstream strictly in write-id order.
//!
//! Each piece arrives in an engine buffer. It is first sent on to the next
//! server (from that buffer), then handed to a local write task (the same
//! buffer goes to disk). A piece's status goes upstream once both its local
//! write and the downstream status for it are in; the first failure of the
//! two is what upstream hears. Pieces of the same block are written in
//! arrival order; pieces of different blocks run concurrently.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use elkfs_engine::{ChunkId, Version};
use elkfs_proto::data::{DataMsg, WriteDataHead};
use elkfs_proto::frame::{Encode, DATA_MAX_PAYLOAD};
use elkfs_proto::{Addr, Status};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::dataserv::{resolve_version, Inbox, Incoming};
use crate::error::{Error, Result};
use crate::metrics::Op;
use crate::net;
use crate::server::Ctx;
use crate::status;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Silence from upstream or downstream longer than this ends the write.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct WriteReq {
    pub protocol: Option<u8>,
    pub chunk: u64,
    pub version: u32,
    pub chain: Vec<Addr>,
}

enum Local {
    Running(JoinHandle<Status>),
    Done(Status),
}

struct Pending {
    write_id: u32,
    block: u16,
    local: Local,
    /// The next server's status for this piece; unused at the chain's end.
    down: Option<Status>,
}

struct Downstream {
    w: OwnedWriteHalf,
    statuses: mpsc::Receiver<Result<(u32, Status)>>,
    peer: String,
}

pub(crate) async fn serve(
    ctx: &Arc<Ctx>,
    up: &mut OwnedWriteHalf,
    inbox: &mut Inbox,
    req: WriteReq,
    peer: &str,
) -> Result<()> {
    let chunk = req.chunk;
    let status0 = |status| DataMsg::WriteStatus { chunk, write_id: 0, status };
    let version = resolve_version(&ctx.engine, chunk, req.version);
    ctx.metrics.record_write_chain(req.chain.len());
    let mut down = match req.chain.first() {
        None => None,
        Some(next) => match open_downstream(&req, *next).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(%peer, "write chain: cannot reach {next}: {e}");
                net::send(up, &status0(Status::CANTCONNECT), peer).await?;
                return Err(e);
            }
        },
    };
    // The chunk must be here in this version before anything is accepted.
    if let Err(e) = ctx.engine.blocks(ChunkId(chunk), version).await {
        let s = status::of_engine(&e);
        ctx.note_missing(chunk, s);
        net::send(up, &status0(s), peer).await?;
        return Err(e.into());
    }
    match &mut down {
        None => net::send(up, &status0(Status::OK), peer).await?,
        Some(d) => {
            let first = net::deadline("write chain setup", PEER_TIMEOUT, async {
                d.statuses.recv().await.unwrap_or_else(|| Err(Error::peer(&d.peer, "closed")))
            })
            .await;
            let s = match first {
                Ok((0, s)) => s,
                Ok((id, _)) => return Err(Error::peer(&d.peer, format!("first status has write id {id}"))),
                Err(_) => Status::DISCONNECTED,
            };
            net::send(up, &status0(s), peer).await?;
            if !s.is_ok() {
                return Err(Error::Status { peer: d.peer.clone(), what: "write chain setup".into(), status: s });
            }
        }
    }
    Chain { ctx, up, peer, chunk, version, down, pending: VecDeque::new(), out: Vec::new() }.run(inbox).await
}

async fn open_downstream(req: &WriteReq, next: Addr) -> Result<Downstream> {
    let peer = next.to_string();
    let stream = net::deadline("connecting to the next chunkserver", CONNECT_TIMEOUT, async {
        TcpStream::connect(next.socket()).await.map_err(|e| Error::io(format!("connecting to {peer}"), e))
    })
    .await?;
    stream.set_nodelay(true).map_err(|e| Error::io("TCP_NODELAY", e))?;
    let (r, mut w) = stream.into_split();
    let forward = DataMsg::Write {
        protocol: req.protocol,
        chunk: req.chunk,
        version: req.version,
        chain: req.chain[1..].to_vec(),
    };
    net::send(&mut w, &forward, &peer).await?;
    let (tx, statuses) = mpsc::channel(80);
    tokio::spawn(read_statuses(r, tx, peer.clone()));
    Ok(Downstream { w, statuses, peer })
}

/// Statuses from the next server; its NOPs are only signs of life.
async fn read_statuses(mut r: OwnedReadHalf, tx: mpsc::Sender<Result<(u32, Status)>>, peer: String) {
    loop {
        let item = match net::read_packet(&mut r, DATA_MAX_PAYLOAD, &peer).await {
            Ok((kind, payload)) => match DataMsg::decode(kind, &payload) {
                Ok(DataMsg::Nop) => continue,
                Ok(DataMsg::WriteStatus { write_id, status, .. }) => Ok((write_id, status)),
                Ok(other) => Err(Error::peer(&peer, format!("unexpected type {} in a write chain", other.kind()))),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

struct Chain<'a> {
    ctx: &'a Arc<Ctx>,
    up: &'a mut OwnedWriteHalf,
    peer: &'a str,
    chunk: u64,
    version: Version,
    down: Option<Downstream>,
    pending: VecDeque<Pending>,
    /// Statuses encoded but not yet sent, to send several in one write.
    out: Vec<u8>,
}

impl Chain<'_> {
    async fn run(mut self, inbox: &mut Inbox) -> Result<()> {
        let mut last_nop_echo = Instant::now();
        loop {
            self.flush().await?;
            let front_running = matches!(self.pending.front(), Some(Pending { local: Local::Running(_), .. }));
            let Chain { pending, down, .. } = &mut self;
            tokio::select! {
                done = async {
                    match pending.front_mut() {
                        Some(Pending { local: Local::Running(h), .. }) => h.await,
                        _ => unreachable!("guarded by front_running"),
                    }
                }, if front_running => {
                    let s = done.unwrap_or(Status::IO);
                    if let Some(p) = self.pending.front_mut() {
                        p.local = Local::Done(s);
                    }
                }
                st = async {
                    match down.as_mut() {
                        Some(d) => d.statuses.recv().await,
                        None => std::future::pending().await,
                    }
                }, if down.is_some() => self.on_downstream(st).await?,
                item = tokio::time::timeout(PEER_TIMEOUT, inbox.recv()) => {
                    let item = match item {
                        Ok(Some(item)) => item?,
                        Ok(None) => return self.drain().await,
                        Err(_) => return Err(Error::Timeout { what: format!("write from {}", self.peer), secs: 10.0 }),
                    };
                    match item {
                        Incoming::Data(head, buf) => self.on_data(head, buf).await?,
                        Incoming::Msg(DataMsg::Nop) => {
                            if let Some(d) = &mut self.down {
                                net::send(&mut d.w, &DataMsg::Nop, &d.peer).await?;
                            }
                            if last_nop_echo.elapsed() >= Duration::from_millis(500) {
                                last_nop_echo = Instant::now();
                                self.out.extend_from_slice(&DataMsg::Nop.to_packet());
                            }
                        }
                        Incoming::Msg(DataMsg::WriteFinish { chunk, version }) => {
                            return self.finish(chunk, version).await;
                        }
                        Incoming::Msg(other) => {
                            return Err(Error::peer(self.peer, format!("unexpected type {} during a write", other.kind())));
                        }
                    }
                }
            }
        }
    }

    async fn on_data(&mut self, head: WriteDataHead, buf: elkfs_engine::Buf) -> Result<()> {
        if head.chunk != self.chunk {
            let s = DataMsg::WriteStatus { chunk: self.chunk, write_id: head.write_id, status: Status::WRONGCHUNKID };
            self.out.extend_from_slice(&s.to_packet());
            self.flush().await?;
            return Err(Error::peer(self.peer, "WRITE_DATA for another chunk"));
        }
        let (offset, size) = (head.offset as usize, head.size as usize);
        if self.down.is_some() && !self.ctx.faults.forward_ok() {
            tracing::warn!("fault injection: cutting the link to the next server");
            self.down = None;
            return self.disconnected().await;
        }
        if let Some(d) = &mut self.down {
            net::send_parts(&mut d.w, &head.packet_prefix(), &buf.full()[offset..offset + size], &d.peer).await?;
        }
        // Earlier pieces of the same block land first.
        for p in self.pending.iter_mut().filter(|p| p.block == head.block) {
            if let Local::Running(h) = &mut p.local {
                p.local = Local::Done(h.await.unwrap_or(Status::IO));
            }
        }
        let ctx = self.ctx.clone();
        let (id, version) = (ChunkId(self.chunk), self.version);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let r = ctx.engine.write(id, version, head.block as usize, offset, size, buf, head.crc).await;
            ctx.metrics.record(Op::Write, started, size as u64, r.is_ok());
            match r {
                Ok(()) => Status::OK,
                Err(e) => {
                    tracing::warn!("write to chunk {id} block {} failed: {e}", head.block);
                    status::of_engine(&e)
                }
            }
        });
        self.pending.push_back(Pending {
            write_id: head.write_id,
            block: head.block,
            local: Local::Running(task),
            down: None,
        });
        Ok(())
    }

    async fn on_downstream(&mut self, st: Option<Result<(u32, Status)>>) -> Result<()> {
        let peer = self.down.as_ref().map(|d| d.peer.clone()).unwrap_or_default();
        match st {
            Some(Ok((write_id, status))) => {
                match self.pending.iter_mut().find(|p| p.down.is_none()) {
                    Some(p) if p.write_id == write_id => p.down = Some(status),
                    _ => return Err(Error::peer(&peer, format!("status for write id {write_id} out of order"))),
                }
                Ok(())
            }
            Some(Err(e)) => {
                tracing::warn!("write chain: next server {peer} failed: {e}");
                self.disconnected().await
            }
            None => self.disconnected().await,
        }
    }

    /// The next server is gone: upstream hears DISCONNECTED and the chain
    /// is torn down, as MooseFS does. Local writes still finish.
    async fn disconnected(&mut self) -> Result<()> {
        let s = DataMsg::WriteStatus { chunk: self.chunk, write_id: 0, status: Status::DISCONNECTED };
        self.out.extend_from_slice(&s.to_packet());
        self.down = None;
        let sent = self.up.write_all(&self.out).await;
        self.out.clear();
        self.settle_all().await;
        sent.map_err(|e| Error::io(format!("sending to {}", self.peer), e))?;
        Err(Error::peer(self.peer, "next server in the write chain disconnected"))
    }

    /// Sends every status that is complete at the head of the queue.
    async fn flush(&mut self) -> Result<()> {
        let chained = self.down.is_some();
        while let Some(p) = self.pending.front() {
            let local = match p.local {
                Local::Done(s) => s,
                Local::Running(_) => break,
            };
            let status = match (chained, p.down) {
                (false, _) => local,
                (true, None) => break,
                (true, Some(d)) => {
                    if local.is_ok() {
                        d
                    } else {
                        local
                    }
                }
            };
            let s = DataMsg::WriteStatus { chunk: self.chunk, write_id: p.write_id, status };
            self.out.extend_from_slice(&s.to_packet());
            self.pending.pop_front();
        }
        if !self.out.is_empty() {
            let r = self.up.write_all(&self.out).await;
            self.out.clear();
            r.map_err(|e| Error::io(format!("sending to {}", self.peer), e))?;
        }
        Ok(())
    }

    /// Waits for every local write still running (they hold buffers).
    async fn settle_all(&mut self) {
        for p in self.pending.iter_mut() {
            if let Local::Running(h) = &mut p.local {
                p.local = Local::Done(h.await.unwrap_or(Status::IO));
            }
        }
    }

    /// Upstream went away: let local writes finish.
    async fn drain(mut self) -> Result<()> {
        self.settle_all().await;
        Ok(())
    }

    async fn finish(mut self, chunk: u64, version: u32) -> Result<()> {
        if chunk != self.chunk {
            let s = DataMsg::WriteStatus { chunk: self.chunk, write_id: 0, status: Status::WRONGCHUNKID };
            self.out.extend_from_slice(&s.to_packet());
            self.flush().await?;
            return Err(Error::peer(self.peer, "WRITE_FINISH for another chunk"));
        }
        if let Some(d) = &mut self.down {
            net::send(&mut d.w, &DataMsg::WriteFinish { chunk, version }, &d.peer).await?;
        }
        // A finish before every status went out means the client gave up
        // waiting; what is still running completes anyway.
        self.drain().await
    }
}
