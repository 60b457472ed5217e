//! A small test master built from `Cluster` with an in-memory catalog, and
//! `elkfs chunkserver` processes on 127.0.0.1 that die with the test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elkfs_harness::moosefs::{chunk_files_in, write_chunkserver, ChunkserverFiles};
use elkfs_master::cluster::{Catalog, CatalogChunk, Cluster, ClusterConfig};

pub mod data;
pub mod fake;

pub const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[derive(Default)]
pub struct TestCatalog {
    pub chunks: Mutex<BTreeMap<u64, CatalogChunk>>,
}

impl TestCatalog {
    pub fn set(&self, id: u64, version: u32, goal: u8, locked: bool) {
        self.chunks.lock().unwrap().insert(id, CatalogChunk { version, goal, locked, stale_lock: locked });
    }

    pub fn remove(&self, id: u64) {
        self.chunks.lock().unwrap().remove(&id);
    }
}

impl Catalog for TestCatalog {
    fn chunk(&self, id: u64) -> Option<CatalogChunk> {
        self.chunks.lock().unwrap().get(&id).copied()
    }

    fn chunks_from(&self, first: u64, limit: usize) -> Vec<(u64, CatalogChunk)> {
        self.chunks.lock().unwrap().range(first..).take(limit).map(|(k, v)| (*k, *v)).collect()
    }

    fn metaid(&self) -> u64 {
        0x00E1_CF50_0000_0001
    }
}

/// A free TCP port on 127.0.0.1 (bound and released: good enough here).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// The cluster and its accept loop on a runtime of its own.
pub struct Master {
    pub rt: tokio::runtime::Runtime,
    pub cluster: Arc<Cluster>,
    pub catalog: Arc<TestCatalog>,
    pub port: u16,
}

impl Master {
    pub fn start(port: u16, catalog: Arc<TestCatalog>, maintenance: bool) -> Master {
        let listener = std::net::TcpListener::bind((LOCALHOST, port)).unwrap();
        Master::start_on(listener, catalog, maintenance, ClusterConfig::test_min())
    }

    /// Serves chunkservers on `listener` (which may live in another
    /// network namespace).
    pub fn start_on(
        listener: std::net::TcpListener,
        catalog: Arc<TestCatalog>,
        maintenance: bool,
        config: ClusterConfig,
    ) -> Master {
        let port = listener.local_addr().unwrap().port();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let cluster = Cluster::new(config, catalog.clone());
        listener.set_nonblocking(true).unwrap();
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(listener).unwrap()
        };
        let c = cluster.clone();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(c.clone().serve(stream));
            }
        });
        if maintenance {
            let _guard = rt.enter();
            cluster.start_maintenance();
        }
        Master { rt, cluster, catalog, port }
    }

    /// Waits until `n` servers finished registering.
    pub fn wait_registered(&self, n: usize) {
        wait("chunkservers to register", Duration::from_secs(30), || {
            let got = self.cluster.servers().iter().filter(|s| s.registered).count();
            (got == n).then_some(()).ok_or(format!("{got} of {n}"))
        });
    }
}

/// Polls `probe` until it gives `Some`, or panics after `limit`.
pub fn wait<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let end = Instant::now() + limit;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(why) if Instant::now() > end => panic!("timed out waiting for {what}: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// One `elkfs chunkserver` process; killed on drop.
pub struct Cs {
    pub files: ChunkserverFiles,
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Cs {
    pub fn new(base: &std::path::Path, name: &str, master_port: u16) -> Cs {
        Cs::with_config(base, name, master_port, &[])
    }

    pub fn with_config(base: &std::path::Path, name: &str, master_port: u16, extra: &[(&str, &str)]) -> Cs {
        let dir = base.join(name);
        let port = free_port();
        let extra: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let files = write_chunkserver(&dir, LOCALHOST, port, LOCALHOST, master_port, &extra);
        let mut cs = Cs { files, port, dir, child: None };
        cs.start();
        cs
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "chunkserver on {} runs already", self.port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("log")).unwrap();
        let child = Command::new(elkfs_harness::elkfs_binary())
            .args(["chunkserver", "-c"])
            .arg(&self.files.cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start elkfs chunkserver");
        self.child = Some(child);
    }

    /// SIGKILL: the master sees the link drop without a goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `chunkserverid.mfs`: the id and metaid the master gave it.
    pub fn stored_ids(&self) -> (u16, u64) {
        let b = std::fs::read(self.files.data.join("chunkserverid.mfs")).unwrap_or_default();
        assert!(b.len() >= 10, "chunkserverid.mfs holds {} bytes", b.len());
        (u16::from_be_bytes([b[0], b[1]]), u64::from_be_bytes(b[2..10].try_into().unwrap()))
    }

    /// Never registered: no `chunkserverid.mfs` yet.
    pub fn stored_ids_missing(&self) -> bool {
        !self.files.data.join("chunkserverid.mfs").exists()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Chunk files of `id` in its folder, as `(version)` from the names.
    pub fn versions_on_disk(&self, id: u64) -> Vec<u32> {
        let prefix = format!("chunk_{id:016X}_");
        chunk_files_in(&self.files.hdd)
            .iter()
            .filter_map(|p| {
                let name = p.file_name()?.to_string_lossy().to_string();
                let v = name.strip_prefix(&prefix)?.strip_suffix(".mfs")?;
                u32::from_str_radix(v, 16).ok()
            })
            .collect()
    }
}

impl Drop for Cs {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How many of `servers` hold `id` at `version` on disk.
pub fn on_disk(servers: &[&Cs], id: u64, version: u32) -> usize {
    servers.iter().filter(|cs| cs.versions_on_disk(id).contains(&version)).count()
}
