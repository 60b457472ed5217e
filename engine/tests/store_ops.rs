//! Every chunk operation through the real io_uring disk.

mod common;

use common::*;
use elkfs_engine::crc::{crc32, EMPTY_BLOCK_CRC};
use elkfs_engine::{ErrorKind, Version, BLOCK_SIZE};

#[test]
fn whole_blocks_round_trip_without_copies() {
    let dir = scratch("ops");
    let (engine, report) = engine_on(&[dir.path()]);
    assert_eq!(report.chunks, 0);
    assert!(engine.folders()[0].direct_io, "target dir should support O_DIRECT");
    runtime().block_on(async {
        engine.create(id(1), V1).await.unwrap();
        assert_eq!(engine.create(id(1), V1).await.unwrap_err().kind(), ErrorKind::ChunkExists);
        let blocks: Vec<Vec<u8>> = (0..20).map(|b| pattern(1, b, 0)).collect();
        let mut bufs = Vec::new();
        for data in &blocks[..16] {
            bufs.push(block_buf(&engine, data).await);
        }
        engine.write_blocks(id(1), V1, 0, bufs).await.unwrap();
        for (b, data) in blocks.iter().enumerate().skip(16) {
            let buf = block_buf(&engine, data).await;
            engine.write(id(1), V1, b, 0, BLOCK_SIZE, buf, crc32(data)).await.unwrap();
        }
        assert_eq!(engine.blocks(id(1), V1).await.unwrap(), 20);
        let read = engine.read_blocks(id(1), V1, 0, 20).await.unwrap();
        for (b, (buf, crc)) in read.iter().enumerate() {
            assert_eq!(&buf[..], &blocks[b][..], "block {b}");
            assert_eq!(*crc, crc32(&blocks[b]));
        }
        let piece = engine.read(id(1), V1, 3, 0, BLOCK_SIZE).await.unwrap();
        assert_eq!(piece.data(), &blocks[3][..]);
        assert_eq!(engine.copied_bytes(), 0, "whole-block traffic copies nothing");
        let table = engine.checksum_table(id(1), V1).await.unwrap();
        assert_eq!(table.0[19], crc32(&blocks[19]));
        assert_eq!(table.0[20], EMPTY_BLOCK_CRC);
        engine.test(id(1), V1).await.unwrap();
    });
    let path = chunk_path(dir.path(), 1, 1).expect("chunk file exists");
    assert_eq!(std::fs::metadata(path).unwrap().len(), 8192 + 20 * BLOCK_SIZE as u64);
}

#[test]
fn pieces_merge_into_blocks() {
    let dir = scratch("pieces");
    let (engine, _) = engine_on(&[dir.path()]);
    runtime().block_on(async {
        engine.create(id(2), V1).await.unwrap();
        // A piece of a block beyond the end: zeros around it.
        let piece = b"hello, chunk";
        let buf = piece_buf(&engine, 1000, piece).await;
        engine.write(id(2), V1, 2, 1000, piece.len(), buf, crc32(piece)).await.unwrap();
        assert_eq!(engine.blocks(id(2), V1).await.unwrap(), 3);
        let mut expect = vec![0u8; BLOCK_SIZE];
        expect[1000..1000 + piece.len()].copy_from_slice(piece);
        let read = engine.read(id(2), V1, 2, 0, BLOCK_SIZE).await.unwrap();
        assert_eq!(read.data(), &expect[..]);
        assert_eq!(read.crc, crc32(&expect));
        // Skipped blocks read as zeros with the empty CRC.
        let hole = engine.read(id(2), V1, 0, 0, BLOCK_SIZE).await.unwrap();
        assert!(hole.data().iter().all(|&b| b == 0));
        assert_eq!(hole.crc, EMPTY_BLOCK_CRC);
        // A piece over an existing block keeps the bytes around it.
        let second = [7u8; 100];
        let buf = piece_buf(&engine, 1005, &second).await;
        engine.write(id(2), V1, 2, 1005, 100, buf, crc32(&second)).await.unwrap();
        expect[1005..1105].copy_from_slice(&second);
        let read = engine.read(id(2), V1, 2, 990, 200).await.unwrap();
        assert_eq!(read.data(), &expect[990..1190]);
        assert_eq!(read.crc, crc32(&expect[990..1190]));
        assert!(engine.copied_bytes() > 0, "a partial block is merged by copying");
        // A piece whose CRC does not match is refused and changes nothing.
        let buf = piece_buf(&engine, 0, b"junk").await;
        let err = engine.write(id(2), V1, 2, 0, 4, buf, 1234).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PieceCrc);
        // Past the end of a chunk is refused.
        let buf = piece_buf(&engine, 0, b"x").await;
        let err = engine.write(id(2), V1, 1024, 0, 1, buf, crc32(b"x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongRange);
        let err = engine.read(id(2), V1, 0, 65_000, 1000).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongRange);
        engine.test(id(2), V1).await.unwrap();
    });
}

#[test]
fn versions_truncation_duplicates_and_deletion() {
    let dir = scratch("lifecycle");
    let (engine, _) = engine_on(&[dir.path()]);
    let v2 = Version(2);
    let v3 = Version(3);
    runtime().block_on(async {
        engine.create(id(3), V1).await.unwrap();
        let blocks: Vec<Vec<u8>> = (0..4).map(|b| pattern(3, b, 0)).collect();
        let mut bufs = Vec::new();
        for data in &blocks {
            bufs.push(block_buf(&engine, data).await);
        }
        engine.write_blocks(id(3), V1, 0, bufs).await.unwrap();

        engine.set_version(id(3), V1, v2).await.unwrap();
        let err = engine.read(id(3), V1, 0, 0, 10).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongVersion);
        assert_eq!(engine.read(id(3), v2, 0, 0, 10).await.unwrap().data(), &blocks[0][..10]);
        assert!(chunk_path(dir.path(), 3, 2).is_some() && chunk_path(dir.path(), 3, 1).is_none());

        // Duplicate, then the original can change without touching the copy.
        engine.duplicate(id(3), v2, id(4), V1).await.unwrap();
        engine.truncate(id(3), v2, v3, 65_536 + 100).await.unwrap();
        assert_eq!(engine.blocks(id(3), v3).await.unwrap(), 2);
        let tail = engine.read(id(3), v3, 1, 0, BLOCK_SIZE).await.unwrap();
        assert_eq!(&tail.data()[..100], &blocks[1][..100]);
        assert!(tail.data()[100..].iter().all(|&b| b == 0), "truncated tail is zero");
        engine.test(id(3), v3).await.unwrap();
        for (b, data) in blocks.iter().enumerate() {
            assert_eq!(engine.read(id(4), V1, b, 0, BLOCK_SIZE).await.unwrap().data(), &data[..]);
        }

        // Growing truncation adds empty blocks.
        engine.truncate(id(4), V1, v2, 6 * 65_536).await.unwrap();
        assert_eq!(engine.blocks(id(4), v2).await.unwrap(), 6);
        let grown = engine.read(id(4), v2, 5, 0, BLOCK_SIZE).await.unwrap();
        assert_eq!(grown.crc, EMPTY_BLOCK_CRC);
        engine.test(id(4), v2).await.unwrap();

        // Duplicate and truncate in one step.
        engine.dup_trunc(id(4), v2, id(5), V1, 10).await.unwrap();
        assert_eq!(engine.blocks(id(5), V1).await.unwrap(), 1);
        let head = engine.read(id(5), V1, 0, 0, BLOCK_SIZE).await.unwrap();
        assert_eq!(&head.data()[..10], &blocks[0][..10]);
        assert!(head.data()[10..].iter().all(|&b| b == 0));
        let err = engine.duplicate(id(4), v2, id(5), V1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ChunkExists);

        let listed: Vec<(u64, u32)> = engine.list().iter().map(|c| (c.id.0, c.version.0)).collect();
        assert_eq!(listed, vec![(3, 3), (4, 2), (5, 1)]);

        assert_eq!(engine.delete(id(4), V1).await.unwrap_err().kind(), ErrorKind::WrongVersion);
        engine.delete(id(4), v2).await.unwrap();
        assert_eq!(engine.read(id(4), v2, 0, 0, 1).await.unwrap_err().kind(), ErrorKind::NoChunk);
        assert!(chunk_path(dir.path(), 4, 2).is_none());
    });
    drop(engine);
    // A restart finds exactly what was left.
    let (engine, report) = engine_on(&[dir.path()]);
    assert_eq!(report.chunks, 2);
    assert!(report.foreign.is_empty() && report.damaged.is_empty());
    let listed: Vec<(u64, u32)> = engine.list().iter().map(|c| (c.id.0, c.version.0)).collect();
    assert_eq!(listed, vec![(3, 3), (5, 1)]);
    runtime().block_on(async {
        engine.test(id(3), v3).await.unwrap();
        engine.test(id(5), V1).await.unwrap();
    });
}

#[test]
fn requests_beyond_the_limits_are_refused_not_fatal() {
    let dir = scratch("limits");
    let mut config = elkfs_engine::EngineConfig::test_min(vec![elkfs_engine::HddLine::new(dir.path())]);
    config.pool_buffers = 8;
    assert_eq!(elkfs_engine::Engine::start(config).err().map(|e| e.kind()), Some(ErrorKind::Config));
    let (engine, _) = engine_on(&[dir.path()]);
    runtime().block_on(async {
        engine.create(id(9), V1).await.unwrap();
        let err = engine.read_blocks(id(9), V1, 0, 1024).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongRange);
        assert_eq!(engine.read_blocks(id(9), V1, 0, 16).await.unwrap().len(), 16);
    });
}
