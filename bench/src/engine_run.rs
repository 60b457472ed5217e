//! Drives the elkfs engine with a [`Shape`], the way a chunkserver would.
//!
//! One task per request in flight reaches the queue depth, as network
//! connections would; each task times its own operations into its own
//! histogram. Sequential runs split the tasks evenly over `streams` chunks
//! at a time, 16 blocks (1 MiB) per request through `write_blocks` /
//! `read_blocks`. Random reads ask `read` for 4 KiB, which reads and
//! CRC-checks the whole 64 KiB block. Random writes hand `write` a whole
//! block with the CRC a client would have sent; computing that CRC is the
//! client's work, so its CPU time is measured per call and taken out of
//! the engine's figure.
//!
//! Every loop is bounded: sequential runs by the request count, random runs
//! by their deadline and [`MAX_OPS_PER_TASK`], and a whole run by
//! [`RUN_LIMIT`] past its planned length.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use elkfs_engine::{ChunkId, Engine, EngineConfig, ErrorKind, HddLine, Version, BLOCK_SIZE};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::interrupt;
use crate::plan::Plan;
use crate::scenario::{Access, Shape};
use crate::stats::{process_cpu, thread_cpu_ns, DiskBytes, Figures, Latency};

/// Every chunk the bench makes has this version.
const VERSION: Version = Version(1);
/// A bound on any one task's loop, far above what a run reaches.
const MAX_OPS_PER_TASK: u64 = 100_000_000;
/// How long past its planned length a run may take before it counts as hung.
const RUN_LIMIT: Duration = Duration::from_secs(900);

/// The engine under test, with the chunks of the data set.
pub struct EngineBench {
    engine: Engine,
    ids: Arc<Vec<ChunkId>>,
    chunk_blocks: usize,
    runs: AtomicU64,
}

/// What one task measured.
struct TaskOut {
    ops: u64,
    bytes: u64,
    latency: Latency,
    /// CPU the task spent on client work (the CRC of data it "received").
    client_cpu_ns: u64,
}

impl TaskOut {
    fn new() -> Result<TaskOut> {
        Ok(TaskOut { ops: 0, bytes: 0, latency: Latency::new()?, client_cpu_ns: 0 })
    }
}

impl EngineBench {
    /// Starts the engine on the data folder `dir`. Blocking (it scans).
    pub fn start(dir: &Path, plan: &Plan) -> Result<EngineBench> {
        let mut config = EngineConfig::new(vec![HddLine::new(dir)]);
        config.leave_space_default = plan.leave_space_bytes;
        // fio runs without fsync too; the output says so.
        config.fsync_before_ack = false;
        let (engine, _scan) =
            Engine::start(config).with_context(|| format!("starting the engine on {}", dir.display()))?;
        let direct = engine.folders().first().is_some_and(|f| f.direct_io);
        if !direct {
            bail!(
                "the engine could not use O_DIRECT on {}: the comparison with fio direct=1 would be void",
                dir.display()
            );
        }
        fill_pool(&engine);
        let ids = (1..=plan.chunks as u64).map(ChunkId).collect();
        Ok(EngineBench { engine, ids: Arc::new(ids), chunk_blocks: plan.chunk_blocks, runs: AtomicU64::new(0) })
    }

    /// Deletes the data set's chunks if they exist and creates them empty,
    /// so a write run starts from fresh files, as fio's does.
    pub async fn fresh_chunks(&self) -> Result<()> {
        for &id in self.ids.iter() {
            interrupt::check()?;
            match self.engine.delete(id, VERSION).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NoChunk => {}
                Err(e) => return Err(e).with_context(|| format!("deleting chunk {id}")),
            }
            self.engine.create(id, VERSION).await.with_context(|| format!("creating chunk {id}"))?;
        }
        Ok(())
    }

    /// Runs `shape` once and measures it.
    pub async fn run(&self, shape: &Shape) -> Result<Figures> {
        let seed = self.runs.fetch_add(1, Ordering::Relaxed);
        let mut tasks = JoinSet::new();
        let cpu_before = process_cpu()?;
        let started = Instant::now();
        match shape.access {
            Access::Sequential => self.spawn_sequential(shape, &mut tasks),
            Access::Random => self.spawn_random(shape, started, seed, &mut tasks),
        }
        let limit = shape.duration.unwrap_or_default() + RUN_LIMIT;
        let outs = tokio::time::timeout(limit, collect(&mut tasks))
            .await
            .with_context(|| format!("engine run took over {} s", limit.as_secs()))??;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = process_cpu()?.since(&cpu_before);
        let mut latency = Latency::new()?;
        let (mut ops, mut bytes, mut client_ns) = (0, 0, 0);
        for out in &outs {
            latency.merge(&out.latency)?;
            ops += out.ops;
            bytes += out.bytes;
            client_ns += out.client_cpu_ns;
        }
        debug_assert_eq!(latency.count(), ops);
        Ok(Figures {
            bytes,
            ops,
            seconds,
            p50_us: latency.percentile_us(50.0),
            p99_us: latency.percentile_us(99.0),
            // The client's CRC work ran in user mode on our threads.
            cpu_s: (cpu.total_s() - client_ns as f64 / 1e9).max(0.0),
            cpu_sys_s: cpu.sys_s,
            switches: cpu.switches,
            job_cpu_s: 0.0,
            disk: DiskBytes::default(),
        })
    }

    fn spawn_sequential(&self, shape: &Shape, tasks: &mut JoinSet<Result<TaskOut>>) {
        let blocks = shape.request_blocks();
        assert!(blocks > 0 && self.chunk_blocks.is_multiple_of(blocks), "requests of {blocks} blocks tile a chunk");
        let streams = shape.streams.clamp(1, self.ids.len());
        let per_stream = (shape.queue_depth / streams).max(1);
        for stream in 0..streams {
            let chunks: Vec<ChunkId> = self.ids.iter().copied().skip(stream).step_by(streams).collect();
            let walk =
                Arc::new(Walk { chunks, requests_per_chunk: self.chunk_blocks / blocks, next: AtomicUsize::new(0) });
            for _ in 0..per_stream {
                let task = SeqTask { engine: self.engine.clone(), walk: walk.clone(), blocks, write: shape.write };
                tasks.spawn(task.run());
            }
        }
    }

    fn spawn_random(&self, shape: &Shape, started: Instant, seed: u64, tasks: &mut JoinSet<Result<TaskOut>>) {
        let deadline = started + shape.duration.unwrap_or(Duration::from_secs(1));
        for task in 0..shape.queue_depth {
            let task = RandTask {
                engine: self.engine.clone(),
                ids: self.ids.clone(),
                chunk_blocks: self.chunk_blocks,
                size: shape.request_bytes.min(BLOCK_SIZE),
                write: shape.write,
                deadline,
                rng: SmallRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(task as u64)),
            };
            tasks.spawn(task.run());
        }
    }
}

async fn collect(tasks: &mut JoinSet<Result<TaskOut>>) -> Result<Vec<TaskOut>> {
    let mut outs = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        outs.push(joined.context("engine bench task panicked")??);
    }
    Ok(outs)
}

/// The requests of one stream: its chunks front to back, `requests_per_chunk`
/// each, handed out in order to whichever of the stream's tasks is free.
struct Walk {
    chunks: Vec<ChunkId>,
    requests_per_chunk: usize,
    next: AtomicUsize,
}

struct SeqTask {
    engine: Engine,
    walk: Arc<Walk>,
    blocks: usize,
    write: bool,
}

impl SeqTask {
    async fn run(self) -> Result<TaskOut> {
        let mut out = TaskOut::new()?;
        let total = self.walk.chunks.len() * self.walk.requests_per_chunk;
        let pool = self.engine.pool().clone();
        for _ in 0..total {
            interrupt::check()?;
            let k = self.walk.next.fetch_add(1, Ordering::Relaxed);
            if k >= total {
                break;
            }
            let id = self.walk.chunks[k / self.walk.requests_per_chunk];
            let first = (k % self.walk.requests_per_chunk) * self.blocks;
            if self.write {
                // The data "arrives" in pool buffers before the request starts.
                // Adjacent pool slots, as the network layer will ask for them.
                let mut bufs = pool.get_many(self.blocks).await;
                for buf in &mut bufs {
                    buf.set_len(BLOCK_SIZE);
                }
                let began = Instant::now();
                self.engine
                    .write_blocks(id, VERSION, first, bufs)
                    .await
                    .with_context(|| format!("write_blocks chunk {id} blocks {first}+{}", self.blocks))?;
                out.latency.record(began.elapsed());
            } else {
                let began = Instant::now();
                let blocks = self
                    .engine
                    .read_blocks(id, VERSION, first, self.blocks)
                    .await
                    .with_context(|| format!("read_blocks chunk {id} blocks {first}+{}", self.blocks))?;
                out.latency.record(began.elapsed());
                drop(blocks);
            }
            out.ops += 1;
            out.bytes += (self.blocks * BLOCK_SIZE) as u64;
        }
        Ok(out)
    }
}

struct RandTask {
    engine: Engine,
    ids: Arc<Vec<ChunkId>>,
    chunk_blocks: usize,
    /// Bytes per request, at an offset that is a multiple of it.
    size: usize,
    write: bool,
    deadline: Instant,
    rng: SmallRng,
}

impl RandTask {
    async fn run(mut self) -> Result<TaskOut> {
        let mut out = TaskOut::new()?;
        let pool = self.engine.pool().clone();
        let pieces = BLOCK_SIZE / self.size;
        while out.ops < MAX_OPS_PER_TASK && Instant::now() < self.deadline {
            interrupt::check()?;
            let id = self.ids[self.rng.random_range(0..self.ids.len())];
            let block = self.rng.random_range(0..self.chunk_blocks);
            let offset = self.rng.random_range(0..pieces) * self.size;
            if self.write {
                let mut buf = pool.get().await;
                buf.set_len(BLOCK_SIZE);
                let client_began = thread_cpu_ns();
                let crc = elkfs_engine::crc::crc32(&buf.full()[offset..offset + self.size]);
                out.client_cpu_ns += thread_cpu_ns().saturating_sub(client_began);
                let began = Instant::now();
                self.engine
                    .write(id, VERSION, block, offset, self.size, buf, crc)
                    .await
                    .with_context(|| format!("write chunk {id} block {block}"))?;
                out.latency.record(began.elapsed());
            } else {
                let began = Instant::now();
                let piece = self
                    .engine
                    .read(id, VERSION, block, offset, self.size)
                    .await
                    .with_context(|| format!("read chunk {id} block {block} offset {offset}"))?;
                out.latency.record(began.elapsed());
                drop(piece);
            }
            out.ops += 1;
            out.bytes += self.size as u64;
        }
        Ok(out)
    }
}

/// Fills every pool buffer with pseudo-random bytes once, so written data
/// is not all zeros (fio writes random data too) without paying for it on
/// every request.
fn fill_pool(engine: &Engine) {
    let pool = engine.pool();
    let mut held = Vec::with_capacity(pool.capacity());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    while let Some(mut buf) = pool.try_get() {
        for word in buf.full_mut().chunks_exact_mut(8) {
            // xorshift64: cheap, and enough to defeat any zero detection.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        held.push(buf);
    }
}
