//! Port 9419: metaloggers. Each one gets every changelog entry as it is
//! written, and may download the newest snapshot and the two newest
//! changelog files to start from.
//!
//! A metalogger that falls too far behind (the in-memory feed overflows)
//! is disconnected; it reconnects and downloads afresh, so it never holds
//! a changelog with a hole in it.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use elkfs_proto::frame::Encode;
use elkfs_proto::metalogger::{MaToMl, MlToMa};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;

use crate::changelog;
use crate::error::{Error, Result};
use crate::net::{accept_loop, read_frame, FrameLimit};
use crate::shared::Shared;
use crate::store;

/// Largest download piece a metalogger may ask for.
const MAX_PIECE: u32 = elkfs_proto::metalogger::DOWNLOAD_CHUNK_MAX;

pub async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    accept_loop(listener, "metalogger", move |stream| serve(stream, shared.clone())).await
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) -> Result<()> {
    let mut listed = None;
    let result = follow(stream, &shared, &mut listed).await;
    if let Some(entry) = listed {
        let mut lists = shared.lists();
        if let Some(i) = lists.metaloggers.iter().position(|m| *m == entry) {
            lists.metaloggers.remove(i);
        }
    }
    result
}

async fn follow(stream: TcpStream, shared: &Arc<Shared>, listed: &mut Option<(std::net::Ipv4Addr, u32)>) -> Result<()> {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let ip = match stream.peer_addr() {
        Ok(std::net::SocketAddr::V4(a)) => *a.ip(),
        _ => std::net::Ipv4Addr::UNSPECIFIED,
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut feed: Option<tokio::sync::broadcast::Receiver<changelog::Entry>> = None;
    let mut download: Option<std::fs::File> = None;
    let mut idle = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            frame = read_frame(&mut rd, FrameLimit::Metalogger) => {
                let (kind, payload) = frame?;
                let msg = MlToMa::decode(kind, &payload)?;
                let reply = match msg {
                    MlToMa::Nop => None,
                    MlToMa::Register { version, .. } | MlToMa::RegisterFrom { version, .. } => {
                        tracing::info!(%peer, "metalogger registered");
                        if feed.is_none() {
                            shared.lists().metaloggers.push((ip, version));
                            *listed = Some((ip, version));
                        }
                        feed = Some(shared.log.subscribe());
                        None
                    }
                    MlToMa::DownloadStart { file: filenum } => {
                        download = open_download(shared, filenum);
                        Some(match &download {
                            Some(file) => MaToMl::DownloadSize(file.metadata().map(|m| m.len()).unwrap_or(0)),
                            None => MaToMl::DownloadFailed(elkfs_proto::Status(0xFF)),
                        })
                    }
                    MlToMa::DownloadRequest { offset, length: len } => {
                        let file = download.as_mut().ok_or_else(|| Error::peer(&peer, "download request before start"))?;
                        Some(read_piece(file, offset, len.min(MAX_PIECE)).map_err(|e| Error::io("read download", e))?)
                    }
                    MlToMa::DownloadEnd => {
                        download = None;
                        None
                    }
                };
                if let Some(reply) = reply {
                    wr.write_all(&reply.to_packet()).await.map_err(|e| Error::io("send to metalogger", e))?;
                }
            }
            entry = async { match feed.as_mut() { Some(f) => f.recv().await, None => std::future::pending().await } } => {
                match entry {
                    Ok(entry) => {
                        let (version, text) = &*entry;
                        let msg = MaToMl::Log { version: *version, text: text.clone().into_bytes() };
                        wr.write_all(&msg.to_packet()).await.map_err(|e| Error::io("send to metalogger", e))?;
                    }
                    Err(RecvError::Lagged(n)) => return Err(Error::peer(&peer, format!("fell {n} changes behind"))),
                    Err(RecvError::Closed) => return Ok(()),
                }
            }
            _ = idle.tick() => {
                wr.write_all(&MaToMl::Nop.to_packet()).await.map_err(|e| Error::io("send to metalogger", e))?;
            }
        }
    }
}

/// The file a metalogger asks for: 1 the newest snapshot, 11 and 12 the
/// current and previous changelog (MooseFS's numbering).
fn open_download(shared: &Shared, filenum: u8) -> Option<std::fs::File> {
    let dir = &shared.config.data_path;
    let path = match filenum {
        1 => dir.join(store::SNAPSHOT),
        11 => changelog::file_path(dir, 0),
        12 => changelog::file_path(dir, 1),
        _ => return None,
    };
    match std::fs::File::open(&path) {
        Ok(file) => Some(file),
        // A changelog that does not exist yet is an empty one.
        Err(_) if filenum != 1 => tempfile_empty(),
        Err(_) => None,
    }
}

fn tempfile_empty() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

fn read_piece(file: &mut std::fs::File, offset: u64, len: u32) -> std::io::Result<MaToMl> {
    file.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::with_capacity(len as usize);
    file.take(u64::from(len)).read_to_end(&mut data)?;
    let crc = crc32fast::hash(&data);
    Ok(MaToMl::DownloadData { offset, crc, data })
}
