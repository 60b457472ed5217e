//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub use elkfs_engine::testkit::pattern;
use elkfs_engine::{Buf, ChunkId, Engine, EngineConfig, HddLine, ScanReport, Version, BLOCK_SIZE};

/// A scratch folder on a disk-backed file system (O_DIRECT needs one).
pub fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(name).tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch folder")
}

/// A one-folder engine with no reserve.
pub fn engine_on(dirs: &[&Path]) -> (Engine, ScanReport) {
    let lines = dirs.iter().map(|d| HddLine::new(*d)).collect();
    let mut config = EngineConfig::test_min(lines);
    config.pool_buffers = 256;
    Engine::start(config).expect("engine starts")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

pub async fn block_buf(engine: &Engine, data: &[u8]) -> Buf {
    assert_eq!(data.len(), BLOCK_SIZE);
    let mut buf = engine.pool().get().await;
    buf.set_len(BLOCK_SIZE);
    buf.copy_from_slice(data);
    buf
}

/// A buffer with `piece` placed at `offset`, as the network layer leaves it.
pub async fn piece_buf(engine: &Engine, offset: usize, piece: &[u8]) -> Buf {
    let mut buf = engine.pool().get().await;
    buf.set_len(offset + piece.len());
    buf[offset..].copy_from_slice(piece);
    buf
}

pub fn chunk_path(root: &Path, id: u64, version: u32) -> Option<PathBuf> {
    let name = format!("chunk_{id:016X}_{version:08X}.mfs");
    (0..256).map(|i| root.join(format!("{i:02X}")).join(&name)).find(|p| p.exists())
}

pub const V1: Version = Version(1);
pub fn id(n: u64) -> ChunkId {
    ChunkId(n)
}
