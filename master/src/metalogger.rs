//! The metalogger: a live copy of the master's metadata on another machine.
//!
//! On every connection it downloads the master's newest snapshot
//! (`metadata_ml.mfs.back`) and its two newest changelogs
//! (`changelog_ml_back.{0,1}.mfs`), and writes every change the master
//! streams to `changelog_ml.0.mfs`. Each connection starts a fresh
//! `changelog_ml.0.mfs` (older ones shift to `.1`, `.2`, …), so a file never
//! has a hole where the link was down. `elkfs master` started on this
//! folder loads all of these and comes up with every change received.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use elkfs_daemon::cfgfile::{self, int, non_empty, secs, word};
use elkfs_proto::frame::Encode;
use elkfs_proto::metalogger::{MaToMl, MlToMa};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;

use crate::changelog::sync_dir;
use crate::error::{Error, Result};
use crate::net::{read_frame, FrameLimit};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/mfs/mfsmetalogger.cfg";
const PIECE: u32 = elkfs_proto::metalogger::DOWNLOAD_CHUNK_MAX;

#[derive(Debug, Clone)]
pub struct MlConfig {
    pub working_user: Option<String>,
    pub working_group: Option<String>,
    pub data_path: PathBuf,
    pub back_logs: u32,
    pub back_meta_keep_previous: u32,
    pub master_host: String,
    pub master_port: u16,
    pub master_timeout: Duration,
    pub reconnection_delay: Duration,
}

impl Default for MlConfig {
    fn default() -> MlConfig {
        MlConfig {
            working_user: None,
            working_group: None,
            data_path: PathBuf::from("/var/lib/mfs"),
            back_logs: 50,
            back_meta_keep_previous: 3,
            master_host: "mfsmaster".into(),
            master_port: 9419,
            master_timeout: Duration::from_secs(10),
            reconnection_delay: Duration::from_secs(5),
        }
    }
}

impl MlConfig {
    pub fn load(path: &Path) -> Result<MlConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        let mut c = MlConfig::default();
        cfgfile::parse(&text, path, |key, value| {
            match key {
                "WORKING_USER" => c.working_user = non_empty(value),
                "WORKING_GROUP" => c.working_group = non_empty(value),
                "DATA_PATH" => c.data_path = PathBuf::from(word(value)?),
                "BACK_LOGS" => c.back_logs = int(value, 1..=10_000)?,
                "BACK_META_KEEP_PREVIOUS" => c.back_meta_keep_previous = int(value, 0..=99)?,
                "MASTER_HOST" => c.master_host = word(value)?,
                "MASTER_PORT" => c.master_port = int(value, 1..=65535)?,
                "MASTER_TIMEOUT" => c.master_timeout = secs(value, 1..=65535)?,
                "MASTER_RECONNECTION_DELAY" => c.reconnection_delay = secs(value, 1..=3600)?,
                "SYSLOG_IDENT"
                | "LOCK_MEMORY"
                | "LIMIT_GLIBC_MALLOC_ARENAS"
                | "DISABLE_OOM_KILLER"
                | "NICE_LEVEL"
                | "FILE_UMASK"
                | "META_DOWNLOAD_FREQ"
                | "BIND_HOST" => {}
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(c)
    }
}

/// Runs the metalogger until SIGTERM or SIGINT.
pub fn run(config: MlConfig) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start runtime", e))?;
    std::fs::create_dir_all(&config.data_path).map_err(|e| Error::io("create DATA_PATH", e))?;
    elkfs_daemon::privs::drop_privileges(config.working_user.as_deref(), config.working_group.as_deref())?;
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("SIGTERM handler", e))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("SIGINT handler", e))?;
        tokio::select! {
            _ = follow_forever(&config) => Ok(()),
            _ = term.recv() => Ok(()),
            _ = int.recv() => Ok(()),
        }
    })
}

async fn follow_forever(config: &MlConfig) {
    loop {
        match follow(config).await {
            Ok(()) => tracing::info!("master closed the connection"),
            Err(e) => tracing::warn!("master link: {e}"),
        }
        tokio::time::sleep(config.reconnection_delay).await;
    }
}

fn ml_log(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("changelog_ml.{n}.mfs"))
}

fn shift_logs(dir: &Path, keep: u32) -> Result<()> {
    let _ = std::fs::remove_file(ml_log(dir, keep));
    for n in (0..keep).rev() {
        if ml_log(dir, n).exists() {
            std::fs::rename(ml_log(dir, n), ml_log(dir, n + 1)).map_err(|e| Error::io("rotate changelog_ml", e))?;
        }
    }
    Ok(())
}

/// One connection: register, download, then follow until the link drops.
async fn follow(config: &MlConfig) -> Result<()> {
    let dir = &config.data_path;
    let addr = format!("{}:{}", config.master_host, config.master_port);
    let stream = tokio::time::timeout(config.master_timeout, TcpStream::connect(&addr))
        .await
        .map_err(|_| Error::peer(&addr, "connect timed out"))?
        .map_err(|e| Error::io(format!("connect {addr}"), e))?;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let register = MlToMa::Register { version: elkfs_proto::VERSION, timeout: config.master_timeout.as_secs() as u16 };
    wr.write_all(&register.to_packet()).await.map_err(|e| Error::io("send", e))?;
    shift_logs(dir, config.back_logs)?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ml_log(dir, 0))
        .map_err(|e| Error::io("open changelog_ml.0.mfs", e))?;
    let mut link =
        Link { rd: &mut rd, log: &mut log, last: None, timeout: config.master_timeout, dir, keep: config.back_logs };
    for (filenum, name) in
        [(1u8, "metadata_ml.mfs.back"), (11, "changelog_ml_back.0.mfs"), (12, "changelog_ml_back.1.mfs")]
    {
        let tmp = dir.join("metadata_ml.tmp");
        let got = download(&mut wr, &mut link, filenum, &tmp).await?;
        if got {
            if filenum == 1 {
                rotate_snapshots(dir, config.back_meta_keep_previous);
            }
            std::fs::rename(&tmp, dir.join(name)).map_err(|e| Error::io(format!("rename to {name}"), e))?;
            sync_dir(dir)?;
        }
    }
    tracing::info!("metadata downloaded; following the changelog");
    let mut sync = tokio::time::interval(Duration::from_secs(1));
    let mut nop = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            msg = link.next() => {
                if let Some(other) = link.handle_stream(msg?)? {
                    return Err(Error::peer("master", format!("unexpected {other:?}")));
                }
            }
            _ = sync.tick() => { link.log.sync_data().map_err(|e| Error::io("fsync changelog_ml", e))?; }
            _ = nop.tick() => { wr.write_all(&MlToMa::Nop.to_packet()).await.map_err(|e| Error::io("send", e))?; }
        }
    }
}

fn rotate_snapshots(dir: &Path, keep: u32) {
    let name = |n: u32| {
        if n == 0 {
            dir.join("metadata_ml.mfs.back")
        } else {
            dir.join(format!("metadata_ml.mfs.back.{n}"))
        }
    };
    for n in (0..keep).rev() {
        let _ = std::fs::rename(name(n), name(n + 1));
    }
}

struct Link<'a> {
    rd: &'a mut OwnedReadHalf,
    log: &'a mut std::fs::File,
    last: Option<u64>,
    timeout: Duration,
    dir: &'a Path,
    keep: u32,
}

impl Link<'_> {
    async fn next(&mut self) -> Result<MaToMl> {
        let (kind, payload) = tokio::time::timeout(self.timeout, read_frame(self.rd, FrameLimit::FromMaster))
            .await
            .map_err(|_| Error::peer("master", "silent for too long"))??;
        Ok(MaToMl::decode(kind, &payload)?)
    }

    /// Handles a streamed message; anything else is returned to the caller.
    fn handle_stream(&mut self, msg: MaToMl) -> Result<Option<MaToMl>> {
        match msg {
            MaToMl::Nop => Ok(None),
            MaToMl::Log { version, text } => {
                if let Some(last) = self.last {
                    if version != last + 1 {
                        return Err(Error::peer("master", format!("change {version} after {last}: reconnecting")));
                    }
                }
                self.last = Some(version);
                let mut line = format!("{version}: ").into_bytes();
                line.extend_from_slice(&text);
                line.push(b'\n');
                self.log.write_all(&line).map_err(|e| Error::io("write changelog_ml", e))?;
                Ok(None)
            }
            MaToMl::Rotate => {
                self.log.sync_all().map_err(|e| Error::io("fsync changelog_ml", e))?;
                shift_logs(self.dir, self.keep)?;
                *self.log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(ml_log(self.dir, 0))
                    .map_err(|e| Error::io("open changelog_ml.0.mfs", e))?;
                Ok(None)
            }
            other => Ok(Some(other)),
        }
    }
}

/// Downloads file `filenum` into `tmp`; false when the master has none.
async fn download(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    link: &mut Link<'_>,
    filenum: u8,
    tmp: &Path,
) -> Result<bool> {
    wr.write_all(&MlToMa::DownloadStart { file: filenum }.to_packet()).await.map_err(|e| Error::io("send", e))?;
    let size = loop {
        let msg = link.next().await?;
        match link.handle_stream(msg)? {
            Some(MaToMl::DownloadSize(size)) => break size,
            Some(MaToMl::DownloadFailed(_)) => return Ok(false),
            Some(other) => return Err(Error::peer("master", format!("unexpected {other:?} during download"))),
            None => {}
        }
    };
    let mut out = std::fs::File::create(tmp).map_err(|e| Error::io("create metadata_ml.tmp", e))?;
    let mut offset = 0u64;
    while offset < size {
        let len = (size - offset).min(u64::from(PIECE)) as u32;
        wr.write_all(&MlToMa::DownloadRequest { offset, length: len }.to_packet())
            .await
            .map_err(|e| Error::io("send", e))?;
        let data = loop {
            let msg = link.next().await?;
            match link.handle_stream(msg)? {
                Some(MaToMl::DownloadData { offset: at, crc, data }) => {
                    if at != offset || data.len() != len as usize || crc32fast::hash(&data) != crc {
                        return Err(Error::peer("master", "download piece does not match its request or CRC"));
                    }
                    break data;
                }
                Some(other) => return Err(Error::peer("master", format!("unexpected {other:?} during download"))),
                None => {}
            }
        };
        out.write_all(&data).map_err(|e| Error::io("write metadata_ml.tmp", e))?;
        offset += data.len() as u64;
    }
    out.sync_all().map_err(|e| Error::io("fsync metadata_ml.tmp", e))?;
    wr.write_all(&MlToMa::DownloadEnd.to_packet()).await.map_err(|e| Error::io("send", e))?;
    Ok(true)
}
