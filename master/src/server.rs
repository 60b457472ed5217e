//! The master daemon: load, listen on the three ports, snapshot now and
//! then, stop cleanly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::changelog::{self, Changelog};
use crate::cluster::Cluster;
use crate::config::{bind_addr, MasterConfig};
use crate::error::{Error, Result};
use crate::shared::{unix_now, MetaCatalog, Shared};
use crate::store;

/// Runs the master until SIGTERM or SIGINT.
pub fn run(config: MasterConfig) -> Result<()> {
    // One thread, as mfsmaster has: every request takes the namespace lock
    // anyway, and a second worker only added wake-ups between the two
    // (measured with `elkfs bench meta`: 1.5× mfsmaster's CPU per request
    // with two workers, par with one). Disk work runs elsewhere: the
    // changelog on its own thread, snapshots on the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start runtime", e))?;
    runtime.block_on(async move {
        let running = Running::start(config).await?;
        wait_for_stop_signal(&running.shared).await?;
        running.shutdown().await
    })
}

/// Waits for SIGTERM or SIGINT; SIGHUP meanwhile reloads the exports.
async fn wait_for_stop_signal(shared: &Shared) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("SIGTERM handler", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("SIGINT handler", e))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| Error::io("SIGHUP handler", e))?;
    loop {
        tokio::select! {
            _ = term.recv() => break tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => break tracing::info!("SIGINT: stopping"),
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading exports");
                shared.reload_exports();
            }
        }
    }
    Ok(())
}

/// A started master; tests run it in-process.
pub struct Running {
    pub shared: Arc<Shared>,
    pub cl_addr: std::net::SocketAddr,
    pub cs_addr: std::net::SocketAddr,
    pub ml_addr: std::net::SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _lock: store::DirLock,
}

impl Running {
    pub async fn start(config: MasterConfig) -> Result<Running> {
        // Without exports no client could ever mount: refuse to start.
        let exports = crate::shared::load_exports(&config)?;
        let dir = config.data_path.clone();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let lock = store::lock_dir(&dir)?;
        let loaded = store::load(&dir, unix_now())?;
        for warning in &loaded.warnings {
            tracing::warn!("metadata: {warning}");
        }
        let version = loaded.meta.version();
        tracing::info!(
            version,
            replayed = loaded.replayed,
            fresh = loaded.fresh,
            "metadata loaded from {}",
            dir.display()
        );
        let first_snapshot = loaded.fresh || loaded.replayed > 0 || !loaded.warnings.is_empty();
        if loaded.fresh {
            // The new file system's id must outlive this process before
            // anything refers to it.
            store::write_snapshot(&dir, &store::snapshot_bytes(&loaded.meta), config.back_meta_keep_previous)?;
        }
        changelog::shift_files(&dir, config.back_logs)?;
        let log = Changelog::open(&dir, version, config.changelog_fsync, config.back_logs)?;
        let now = unix_now();
        let inherited_locks = loaded
            .meta
            .chunks_from(0, usize::MAX)
            .into_iter()
            .filter(|(_, c)| c.locked_until > now)
            .map(|(id, _)| id)
            .collect();
        let meta = Arc::new(Mutex::new(loaded.meta));
        let cluster = Cluster::new(config.cluster.clone(), Arc::new(MetaCatalog(meta.clone())));
        let bind = |(host, port): &(String, u16)| bind_addr(host, *port);
        let io = |what: &str, e| Error::io(what.to_string(), e);
        let cl = TcpListener::bind(bind(&config.cl_listen)).await.map_err(|e| io("listen for clients", e))?;
        let cs = TcpListener::bind(bind(&config.cs_listen)).await.map_err(|e| io("listen for chunkservers", e))?;
        let ml = TcpListener::bind(bind(&config.ml_listen)).await.map_err(|e| io("listen for metaloggers", e))?;
        let (cl_addr, cs_addr, ml_addr) = (
            cl.local_addr().map_err(|e| io("listen", e))?,
            cs.local_addr().map_err(|e| io("listen", e))?,
            ml.local_addr().map_err(|e| io("listen", e))?,
        );
        elkfs_daemon::privs::drop_privileges(config.working_user.as_deref(), config.working_group.as_deref())?;
        let shared = Arc::new(Shared {
            meta,
            cluster: cluster.clone(),
            log,
            config,
            started: std::time::Instant::now(),
            lists: Default::default(),
            inherited_locks: Mutex::new(inherited_locks),
            exports: Mutex::new(Arc::new(exports)),
        });
        let mut tasks = vec![cluster.start_maintenance()];
        tasks.push(tokio::spawn(accept_chunkservers(cs, cluster)));
        tasks.push(tokio::spawn(crate::clserv::accept(cl, shared.clone())));
        tasks.push(tokio::spawn(crate::mlserv::accept(ml, shared.clone())));
        tasks.push(tokio::spawn(housekeeping(shared.clone(), first_snapshot)));
        tracing::info!(%cl_addr, %cs_addr, %ml_addr, "master serving");
        Ok(Running { shared, cl_addr, cs_addr, ml_addr, tasks, _lock: lock })
    }

    /// Stops serving, writes a final snapshot and closes the changelog.
    pub async fn shutdown(self) -> Result<()> {
        for task in &self.tasks {
            task.abort();
        }
        let result = snapshot(&self.shared).await;
        self.shared.log.close();
        result
    }
}

async fn accept_chunkservers(listener: TcpListener, cluster: Arc<Cluster>) {
    crate::net::accept_loop(listener, "chunkserver", move |stream| {
        let cluster = cluster.clone();
        async move {
            cluster.serve(stream).await;
            Ok(())
        }
    })
    .await
}

/// Periodic work: snapshots every `METADATA_SAVE_FREQ`, trash purging.
async fn housekeeping(shared: Arc<Shared>, snapshot_now: bool) {
    if snapshot_now {
        if let Err(e) = snapshot(&shared).await {
            tracing::error!("snapshot: {e}");
        }
    }
    let mut last_snapshot = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        shared.change(|meta| meta.purge_trash(unix_now()));
        if last_snapshot.elapsed() >= shared.config.metadata_save_freq {
            last_snapshot = tokio::time::Instant::now();
            if let Err(e) = snapshot(&shared).await {
                tracing::error!("snapshot: {e}");
            }
        }
    }
}

/// Takes a snapshot: serialised under the lock together with a changelog
/// rotation (so `changelog.0.mfs` holds exactly what the snapshot lacks),
/// written to disk outside it.
pub async fn snapshot(shared: &Arc<Shared>) -> Result<()> {
    let (bytes, rotated, version) = {
        let meta = shared.lock();
        (store::snapshot_bytes(&meta), shared.log.rotate(), meta.version())
    };
    rotated.await.map_err(|_| Error::io("rotate changelog", std::io::ErrorKind::BrokenPipe.into()))??;
    let dir = shared.config.data_path.clone();
    let keep = shared.config.back_meta_keep_previous;
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || store::write_snapshot(&dir, &bytes, keep))
        .await
        .map_err(|e| Error::io("snapshot writer", std::io::Error::other(e.to_string())))??;
    shared.lists().last_save = (unix_now(), started.elapsed().as_millis() as u32);
    tracing::info!(version, "metadata snapshot written");
    Ok(())
}
