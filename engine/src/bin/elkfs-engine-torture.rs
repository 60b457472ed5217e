//! A test tool, not a product binary: drives the engine with random
//! operations and prints, for each, a line before it starts (`B`) and a
//! line once it is acknowledged (`A`). The crash test kills it with SIGKILL
//! at random moments and checks that everything acknowledged survived.
//!
//! Usage: `elkfs-engine-torture DIR SEED FIRST_ID FSYNC(0|1)`
//! Lines: `B <task> create <id> <ver>`, `B <task> write <id> <ver> <block> <count> <gen>`,
//! `B <task> setver <id> <ver> <new>`, `B <task> trunc <id> <ver> <new> <blocks>`,
//! `B <task> delete <id> <ver>`, then `A <task>` when it returns Ok, or
//! `E <task> <error>` when it fails.

use std::io::Write;

use elkfs_engine::crc::crc32;
use elkfs_engine::testkit::pattern;
use elkfs_engine::{ChunkId, Engine, EngineConfig, HddLine, Version, BLOCK_SIZE};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const TASKS: u64 = 4;
const CHUNKS_PER_TASK: usize = 5;
const MAX_BLOCKS: usize = 24;

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    // The reader is our parent; if it is gone there is nobody to tell.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn task(engine: Engine, task: u64, seed: u64, first_id: u64) {
    let mut rng = SmallRng::seed_from_u64(seed ^ task.wrapping_mul(0x5851_F42D_4C95_7F2D));
    let mut chunks: Vec<(u64, u32, usize)> = Vec::new();
    let mut next_id = first_id + task * 100_000;
    let mut gen = 0u32;
    loop {
        gen += 1;
        if chunks.len() < CHUNKS_PER_TASK && (chunks.is_empty() || rng.random_bool(0.2)) {
            next_id += 1;
            say(format!("B {task} create {next_id} 1"));
            match engine.create(ChunkId(next_id), Version(1)).await {
                Ok(()) => {
                    say(format!("A {task}"));
                    chunks.push((next_id, 1, 0));
                }
                Err(e) => say(format!("E {task} {e}")),
            }
            continue;
        }
        let pick = rng.random_range(0..chunks.len());
        let (id, ver, blocks) = chunks[pick];
        let roll: f64 = rng.random();
        let result = if roll < 0.65 {
            let block = rng.random_range(0..MAX_BLOCKS);
            let count = rng.random_range(1..=4).min(MAX_BLOCKS - block);
            say(format!("B {task} write {id} {ver} {block} {count} {gen}"));
            let mut bufs = Vec::with_capacity(count);
            for b in block..block + count {
                let mut buf = engine.pool().get().await;
                buf.set_len(BLOCK_SIZE);
                buf.copy_from_slice(&pattern(id, b, gen));
                bufs.push(buf);
            }
            let result = if count == 1 {
                let buf = bufs.pop().expect("one buffer");
                let crc = crc32(&buf);
                engine.write(ChunkId(id), Version(ver), block, 0, BLOCK_SIZE, buf, crc).await
            } else {
                engine.write_blocks(ChunkId(id), Version(ver), block, bufs).await
            };
            if result.is_ok() {
                chunks[pick].2 = blocks.max(block + count);
            }
            result
        } else if roll < 0.8 {
            say(format!("B {task} setver {id} {ver} {}", ver + 1));
            let result = engine.set_version(ChunkId(id), Version(ver), Version(ver + 1)).await;
            if result.is_ok() {
                chunks[pick].1 = ver + 1;
            }
            result
        } else if roll < 0.92 {
            let keep = rng.random_range(0..=blocks);
            say(format!("B {task} trunc {id} {ver} {} {keep}", ver + 1));
            let length = (keep * BLOCK_SIZE) as u64;
            let result = engine.truncate(ChunkId(id), Version(ver), Version(ver + 1), length).await;
            if result.is_ok() {
                chunks[pick] = (id, ver + 1, keep);
            }
            result
        } else {
            say(format!("B {task} delete {id} {ver}"));
            let result = engine.delete(ChunkId(id), Version(ver)).await;
            if result.is_ok() {
                chunks.swap_remove(pick);
            }
            result
        };
        match result {
            Ok(()) => say(format!("A {task}")),
            Err(e) => say(format!("E {task} {e}")),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: elkfs-engine-torture DIR SEED FIRST_ID FSYNC(0|1)");
        std::process::exit(2);
    }
    let parse = |i: usize| -> u64 {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("not a number: {}", args[i]);
            std::process::exit(2)
        })
    };
    let (seed, first_id, fsync) = (parse(2), parse(3), parse(4) == 1);
    let mut config = EngineConfig::new(vec![HddLine::new(&args[1])]);
    config.leave_space_default = 0;
    config.pool_buffers = 64;
    config.fsync_before_ack = fsync;
    let (engine, _) = Engine::start(config).unwrap_or_else(|e| {
        eprintln!("engine: {e}");
        std::process::exit(1)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap_or_else(|e| {
        eprintln!("runtime: {e}");
        std::process::exit(1)
    });
    say("READY".into());
    runtime.block_on(async {
        let handles: Vec<_> = (0..TASKS).map(|t| tokio::spawn(task(engine.clone(), t, seed, first_id))).collect();
        for handle in handles {
            let _ = handle.await;
        }
    });
}
