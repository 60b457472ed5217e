//! Assembles a running chunkserver: the engine, the data port, the master
//! link and the background test, and stops them in order.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elkfs_engine::Engine;
use elkfs_proto::master_cs::Space;
use elkfs_proto::Status;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::CsConfig;
use crate::error::{Error, Result};
use crate::faults::NetFaults;
use crate::metrics::Metrics;

/// What every task of one chunkserver shares.
pub struct Ctx {
    pub(crate) engine: Engine,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: CsConfig,
    /// A data connection with nothing heard for this long is closed.
    pub(crate) idle_timeout: Duration,
    /// Chunks asked for that are not here, for `CHUNK_LOST`.
    lost: Mutex<Vec<u64>>,
    /// Master commands and replications in progress (`CURRENT_LOAD`).
    pub(crate) busy: AtomicU32,
    pub(crate) faults: NetFaults,
}

impl Ctx {
    /// A chunk someone was sent to is missing: the master must hear of it.
    pub(crate) fn note_missing(&self, chunk: u64, status: Status) {
        if status == Status::NOCHUNK {
            self.lost.lock().unwrap_or_else(|p| p.into_inner()).push(chunk);
        }
    }

    pub(crate) fn take_lost(&self) -> Vec<u64> {
        let mut lost = std::mem::take(&mut *self.lost.lock().unwrap_or_else(|p| p.into_inner()));
        lost.sort_unstable();
        lost.dedup();
        lost
    }

    /// Space as the master accounts it; folders marked for removal apart.
    pub(crate) fn space(&self) -> Space {
        let mut s = Space::default();
        for f in self.engine.folders() {
            let (used, total) = match (&f.space, f.damaged) {
                (Some(space), false) => (space.used, space.total),
                _ => (0, 0),
            };
            if f.marked_for_removal {
                s.td_used += used;
                s.td_total += total;
                s.td_chunks += f.chunks as u32;
            } else {
                s.used += used;
                s.total += total;
                s.chunks += f.chunks as u32;
            }
        }
        s
    }
}

/// Where the metrics are published for `elkfs admin` and tests: one JSON
/// object, replaced atomically every [`METRICS_PERIOD`] and at stop.
pub const METRICS_FILE: &str = "elkfs-metrics.json";
const METRICS_PERIOD: Duration = Duration::from_secs(2);

async fn publish_metrics(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let path = ctx.config.process.data_path.join(METRICS_FILE);
    let tmp = path.with_extension("json.tmp");
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(METRICS_PERIOD) => false,
            _ = stop.changed() => true,
        };
        let json = ctx.metrics.to_json();
        if let Err(e) = std::fs::write(&tmp, json).and_then(|_| std::fs::rename(&tmp, &path)) {
            tracing::debug!("cannot publish metrics to {}: {e}", path.display());
        }
        if stopping {
            return;
        }
    }
}

/// The real `mfschunkserver` writes its chunk list to `FOLDER/.chunkdb`
/// at a clean stop and, at its next start, trusts that list instead of
/// scanning unless a subfolder's atime or mtime is in a later second (it
/// unlinks the file as it reads it). elkfs does not read it, but renames,
/// creates and deletes chunk files, possibly within that same second, and
/// changes files in place without touching a folder at all. A real server
/// started later would then believe a stale list (a changed version is
/// reported old, and the master marks the copy invalid; new chunks are
/// missing). So it goes now, as the real server's own next start would
/// remove it, and a later `mfschunkserver` does a full scan.
fn remove_stale_chunkdb(engine: &Engine) {
    for folder in engine.folders() {
        let path = folder.path.join(".chunkdb");
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!("removed {}: a later mfschunkserver must scan this folder", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove {}: {e}; a later mfschunkserver may trust it", path.display()),
        }
    }
}

/// A chunkserver serving in this process.
pub struct Running {
    pub data_addr: SocketAddr,
    ctx: Arc<Ctx>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn bind_addr(host: &str, port: u16) -> Result<SocketAddr> {
    let ip = match host {
        "*" | "" => Ipv4Addr::UNSPECIFIED,
        h => h.parse().map_err(|_| Error::Config {
            path: "CSSERV_LISTEN_HOST".into(),
            why: format!("'{h}' is not an IPv4 address"),
        })?,
    };
    Ok(SocketAddr::from((ip, port)))
}

impl Running {
    /// Starts everything; returns once the data port listens and the disks
    /// are scanned.
    pub async fn start(config: CsConfig) -> Result<Running> {
        let listen = bind_addr(&config.clients.listen_host, config.clients.listen_port)?;
        let listener = TcpListener::bind(listen).await.map_err(|e| Error::io(format!("listening on {listen}"), e))?;
        let data_addr = listener.local_addr().map_err(|e| Error::io("data port address", e))?;
        let engine_config = config.engine_config()?;
        let (engine, report) = tokio::task::block_in_place(|| Engine::start(engine_config))?;
        remove_stale_chunkdb(&engine);
        tracing::info!(
            "chunkserver: {} chunks on {} folders, data port {data_addr}",
            report.chunks,
            engine.folders().len()
        );
        let ctx = Arc::new(Ctx {
            engine,
            metrics: Arc::new(Metrics::new()),
            idle_timeout: config.clients.timeout.max(Duration::from_secs(5)),
            config,
            lost: Mutex::new(Vec::new()),
            busy: AtomicU32::new(0),
            faults: NetFaults::default(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(crate::dataserv::serve(listener, ctx.clone(), stop_rx.clone())));
        let my_ip = match data_addr.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_unspecified() => u32::from(ip),
            _ => 0,
        };
        tasks.push(tokio::spawn(crate::masterlink::run(ctx.clone(), my_ip, data_addr.port(), stop_rx.clone())));
        tasks.push(tokio::spawn(crate::scrub::run(ctx.clone(), stop_rx.clone())));
        tasks.push(tokio::spawn(publish_metrics(ctx.clone(), stop_rx)));
        Ok(Running { data_addr, ctx, stop, tasks })
    }

    /// Stops serving: the master hears a clean goodbye first.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(5), task).await.is_err() {
                tracing::warn!("a chunkserver task did not stop within 5 s");
            }
        }
        self.ctx.engine.close_idle();
    }

    pub fn engine(&self) -> &Engine {
        &self.ctx.engine
    }

    pub fn metrics(&self) -> &Metrics {
        &self.ctx.metrics
    }

    /// The network fault switches of this server (tests).
    pub fn faults(&self) -> &NetFaults {
        &self.ctx.faults
    }
}

/// `elkfs chunkserver -c FILE`: runs in the foreground until SIGTERM or
/// SIGINT.
pub fn run(config_path: &Path) -> Result<()> {
    let config = CsConfig::load(config_path)?;
    std::fs::create_dir_all(&config.process.data_path)
        .map_err(|e| Error::io(format!("creating {}", config.process.data_path.display()), e))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("elkfs-cs")
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    rt.block_on(async {
        let user = config.process.working_user.clone();
        let group = config.process.working_group.clone();
        let running = Running::start(config).await?;
        // Ports and disks are open: what follows needs no privileges.
        elkfs_daemon::privs::drop_privileges(user.as_deref(), group.as_deref())?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| Error::io("SIGTERM handler", e))?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        }
        running.shutdown().await;
        Ok(())
    })
}
