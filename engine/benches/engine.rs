//! Micro-benchmarks of the engine's hot paths. `cargo bench -p elkfs-engine`
//! measures; `cargo test --benches` runs each once (smoke mode) so they
//! cannot rot. The fio comparison lives in `elkfs bench engine`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use elkfs_engine::crc::crc32;
use elkfs_engine::header::CrcTable;
use elkfs_engine::{ChunkId, Engine, EngineConfig, HddLine, Version, BLOCK_SIZE};

fn crc(c: &mut Criterion) {
    let block = vec![0x5Au8; BLOCK_SIZE];
    let mut group = c.benchmark_group("crc");
    group.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    group.bench_function("crc32_64k_block", |b| b.iter(|| crc32(std::hint::black_box(&block))));
    group.finish();
    let table = CrcTable::empty();
    let mut out = vec![0u8; 4096];
    c.bench_function("crc_table_encode", |b| b.iter(|| table.encode(std::hint::black_box(&mut out))));
}

fn engine_io(c: &mut Criterion) {
    let dir = tempfile::Builder::new().prefix("elkfs-criterion").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (engine, _) = Engine::start(EngineConfig::test_min(vec![HddLine::new(dir.path())])).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (id, v) = (ChunkId(1), Version(1));
    rt.block_on(async {
        engine.create(id, v).await.unwrap();
        let mut bufs = Vec::new();
        for _ in 0..16 {
            let mut buf = engine.pool().get().await;
            buf.set_len(BLOCK_SIZE);
            buf.fill(7);
            bufs.push(buf);
        }
        engine.write_blocks(id, v, 0, bufs).await.unwrap();
    });
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    group.bench_function("read_verified_64k_qd1", |b| {
        let mut block = 0;
        b.iter(|| {
            block = (block + 1) % 16;
            rt.block_on(engine.read(id, v, block, 0, BLOCK_SIZE)).unwrap()
        })
    });
    group.bench_function("write_block_64k_qd1", |b| {
        b.iter_batched(
            || {
                let mut buf = engine.pool().try_get().expect("pool has room");
                buf.set_len(BLOCK_SIZE);
                buf.fill(9);
                let crc = crc32(&buf);
                (buf, crc)
            },
            |(buf, crc)| rt.block_on(engine.write(id, v, 3, 0, BLOCK_SIZE, buf, crc)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, crc, engine_io);
criterion_main!(benches);
