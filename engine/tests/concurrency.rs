//! Many writers and readers on one chunk at once: writes to different
//! blocks run side by side, writes to one block take turns, and no reader
//! ever sees a block whose data and CRC disagree.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use common::*;
use elkfs_engine::crc::crc32;
use elkfs_engine::BLOCK_SIZE;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const BLOCKS: usize = 24;
const WRITERS: u64 = 12;
const READERS: u64 = 4;
const ROUNDS: usize = 40;

#[test]
fn one_chunk_many_writers_and_readers() {
    let dir = scratch("concurrency");
    let (engine, _) = engine_on(&[dir.path()]);
    let written: Arc<Mutex<HashMap<usize, HashSet<u32>>>> = Arc::new(Mutex::new(HashMap::new()));
    runtime().block_on(async {
        engine.create(id(1), V1).await.unwrap();
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let (engine, written) = (engine.clone(), written.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(writer);
                for round in 0..ROUNDS {
                    let gen = (writer * 1000 + round as u64) as u32 + 1;
                    let count = rng.random_range(1..=3);
                    let first = rng.random_range(0..=BLOCKS - count);
                    written.lock().unwrap().entry(first).or_default();
                    for b in first..first + count {
                        written.lock().unwrap().entry(b).or_default().insert(gen);
                    }
                    if count == 1 {
                        let data = pattern(1, first, gen);
                        let buf = block_buf(&engine, &data).await;
                        engine.write(id(1), V1, first, 0, BLOCK_SIZE, buf, crc32(&data)).await.unwrap();
                    } else {
                        let mut bufs = Vec::new();
                        for b in first..first + count {
                            bufs.push(block_buf(&engine, &pattern(1, b, gen)).await);
                        }
                        engine.write_blocks(id(1), V1, first, bufs).await.unwrap();
                    }
                }
            }));
        }
        for reader in 0..READERS {
            let (engine, written) = (engine.clone(), written.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(100 + reader);
                for _ in 0..ROUNDS * 3 {
                    let b = rng.random_range(0..BLOCKS);
                    let piece = engine.read(id(1), V1, b, 0, BLOCK_SIZE).await.expect("no CRC error while writes run");
                    if piece.data().iter().all(|&x| x == 0) {
                        continue;
                    }
                    let gens = written.lock().unwrap().get(&b).cloned().unwrap_or_default();
                    assert!(
                        gens.iter().any(|&g| piece.data() == &pattern(1, b, g)[..]),
                        "block {b} holds bytes no writer wrote"
                    );
                }
                engine.test(id(1), V1).await.expect("test while writes run");
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        engine.test(id(1), V1).await.unwrap();
        // Afterwards every block reads back what its last write put there.
        for b in 0..BLOCKS {
            let data = pattern(1, b, 999_999);
            let buf = block_buf(&engine, &data).await;
            engine.write(id(1), V1, b, 0, BLOCK_SIZE, buf, crc32(&data)).await.unwrap();
        }
        for b in 0..BLOCKS {
            assert_eq!(engine.read(id(1), V1, b, 0, BLOCK_SIZE).await.unwrap().data(), &pattern(1, b, 999_999)[..]);
        }
        assert!(engine.take_damaged().is_empty());
    });
    drop(engine);
    // The CRC table on disk covers every acknowledged write.
    let (engine, _) = engine_on(&[dir.path()]);
    runtime().block_on(async { engine.test(id(1), V1).await.unwrap() });
}
