//! Compatibility with the real MooseFS 3.0.117 chunk format, both ways:
//! files elkfs writes pass `mfschunktool -x -e`, and files the real
//! `mfschunkserver` wrote (fixtures under `tests/fixtures`) open, list and
//! read unchanged.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use elkfs_engine::crc::crc32;
use elkfs_engine::{Engine, EngineConfig, HddLine, Version, BLOCKS_PER_CHUNK, BLOCK_SIZE};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs the real checker; the test command installs it (moosefs-chunkserver).
fn mfschunktool_ok(files: &[PathBuf]) {
    let tool = ["/usr/sbin/mfschunktool", "/usr/bin/mfschunktool"].into_iter().find(|p| Path::new(p).exists());
    let tool =
        tool.expect("mfschunktool not found: install the Debian package moosefs-chunkserver (scripts/test does)");
    let out = Command::new(tool).arg("-x").arg("-e").args(files).output().expect("run mfschunktool");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mfschunktool failed ({}):\n{text}", out.status);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let line = text.lines().find(|l| l.contains(&name)).unwrap_or_else(|| panic!("no verdict for {name}:\n{text}"));
        assert!(line.trim_end().ends_with("OK"), "mfschunktool: {line}");
    }
}

/// The generators the fixtures were written with (see fixtures/README.md).
fn pattern_a(range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(|i| ((7 * i + 13) % 251) as u8).collect()
}

fn fixture_content(source: &str) -> Vec<u8> {
    match source {
        "f10" => pattern_a(0..10),
        "f65537" => pattern_a(0..65_537),
        "f200k" => pattern_a(0..200_000),
        "fver" => {
            let mut data = pattern_a(0..131_072);
            for (i, byte) in data.iter_mut().enumerate().take(3000).skip(1000) {
                *byte = ((11 * i + 5) % 253) as u8;
            }
            data
        }
        other => panic!("unknown fixture source {other}"),
    }
}

#[test]
fn chunk_files_written_by_elkfs_pass_mfschunktool() {
    let dir = scratch("mfschunktool");
    let (engine, _) = engine_on(&[dir.path()]);
    runtime().block_on(async {
        // Empty chunk.
        engine.create(id(10), V1).await.unwrap();
        // Whole blocks, a partial block, a hole.
        engine.create(id(11), V1).await.unwrap();
        let mut bufs = Vec::new();
        for b in 0..3 {
            bufs.push(block_buf(&engine, &pattern(11, b, 0)).await);
        }
        engine.write_blocks(id(11), V1, 0, bufs).await.unwrap();
        let piece = b"partial block at the end";
        let buf = piece_buf(&engine, 77, piece).await;
        engine.write(id(11), V1, 5, 77, piece.len(), buf, crc32(piece)).await.unwrap();
        // Version change, truncation, duplication.
        engine.duplicate(id(11), V1, id(12), Version(7)).await.unwrap();
        engine.truncate(id(11), V1, Version(2), 2 * BLOCK_SIZE as u64 + 5).await.unwrap();
        engine.dup_trunc(id(12), Version(7), id(13), V1, 1).await.unwrap();
        engine.set_version(id(10), V1, Version(9)).await.unwrap();
    });
    drop(engine);
    let files: Vec<PathBuf> =
        [(10, 9), (11, 2), (12, 7), (13, 1)].iter().map(|&(i, v)| chunk_path(dir.path(), i, v).unwrap()).collect();
    mfschunktool_ok(&files);
}

#[test]
fn chunk_files_written_by_mfschunkserver_are_served() {
    let dir = scratch("fixtures");
    let manifest = std::fs::read_to_string(fixtures().join("manifest.txt")).unwrap();
    let mut expected = Vec::new();
    for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (name, rel, source, length) = (fields[0], fields[1], fields[2], fields[3].parse::<usize>().unwrap());
        let target = dir.path().join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(fixtures().join(name), &target).unwrap();
        let content = fixture_content(source);
        assert_eq!(content.len(), length);
        let (id, version) = elkfs_engine::layout::parse_chunk_file_name(name).unwrap();
        expected.push((id, version, content));
    }
    assert_eq!(expected.len(), 4);
    let (engine, report) = engine_on(&[dir.path()]);
    assert_eq!(report.chunks, 4, "{report:?}");
    assert!(report.damaged.is_empty() && report.foreign.is_empty(), "{report:?}");
    let listed: Vec<_> = engine.list().iter().map(|c| (c.id, c.version)).collect();
    assert_eq!(listed, expected.iter().map(|(i, v, _)| (*i, *v)).collect::<Vec<_>>());
    runtime().block_on(async {
        for (id, version, content) in &expected {
            engine.test(*id, *version).await.unwrap();
            let blocks = engine.blocks(*id, *version).await.unwrap();
            assert_eq!(blocks, content.len().div_ceil(BLOCK_SIZE));
            for (b, chunk) in content.chunks(BLOCK_SIZE).enumerate() {
                let piece = engine.read(*id, *version, b, 0, chunk.len()).await.unwrap();
                assert_eq!(piece.data(), chunk, "chunk {id} block {b}");
                assert_eq!(piece.crc, crc32(chunk));
            }
        }
        // The real server's files take writes and version changes too.
        let (id, version, _) = &expected[1];
        let data = pattern(id.0, 0, 1);
        let buf = block_buf(&engine, &data).await;
        engine.write(*id, *version, 0, 0, BLOCK_SIZE, buf, crc32(&data)).await.unwrap();
        engine.set_version(*id, *version, Version(5)).await.unwrap();
    });
    drop(engine);
    mfschunktool_ok(&[chunk_path(dir.path(), expected[1].0 .0, 5).unwrap()]);
}

#[test]
fn legacy_headers_are_read_and_stay_valid_after_writes() {
    let dir = scratch("legacy");
    let name = "chunk_0000000000000002_00000001.mfs";
    std::fs::create_dir_all(dir.path().join("2A")).unwrap();
    std::fs::copy(fixtures().join("legacy").join(name), dir.path().join("2A").join(name)).unwrap();
    let (engine, report) = engine_on(&[dir.path()]);
    assert_eq!(report.chunks, 1, "{report:?}");
    let content = fixture_content("f65537");
    runtime().block_on(async {
        engine.test(id(2), V1).await.unwrap();
        let tail = engine.read(id(2), V1, 1, 0, 1).await.unwrap();
        assert_eq!(tail.data(), &content[65_536..]);
        let head = engine.read(id(2), V1, 0, 100, 4000).await.unwrap();
        assert_eq!(head.data(), &content[100..4100]);
        // Writes, a version change and a truncation keep the legacy layout valid.
        let piece = b"legacy write";
        let buf = piece_buf(&engine, 10, piece).await;
        engine.write(id(2), V1, 1, 10, piece.len(), buf, crc32(piece)).await.unwrap();
        engine.truncate(id(2), V1, Version(3), 65_536 + 30).await.unwrap();
        let tail = engine.read(id(2), Version(3), 1, 0, 40).await.unwrap();
        let mut want = vec![content[65_536]];
        want.extend_from_slice(&[0; 9]);
        want.extend_from_slice(piece);
        want.extend_from_slice(&[0; 18]);
        assert_eq!(tail.data(), &want[..]);
        engine.test(id(2), Version(3)).await.unwrap();
    });
    drop(engine);
    let path = dir.path().join("2A").join("chunk_0000000000000002_00000003.mfs");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024 + 4096 + 2 * 65_536);
    mfschunktool_ok(&[path]);
}

/// Files sized ahead of their writes (`grow_ahead_blocks`, what the
/// chunkserver uses) end in zero blocks: still whole-block chunk files that
/// `mfschunktool` accepts, and they read the same after a restart.
#[test]
fn files_grown_ahead_pass_mfschunktool_and_reopen() {
    let dir = scratch("grow-ahead");
    let mut config = EngineConfig::test_min(vec![HddLine::new(dir.path())]);
    config.pool_buffers = 256;
    config.grow_ahead_blocks = 16;
    // 20 blocks in one chunk, then a whole chunk in another: the look-ahead
    // stops at the chunk's end.
    let blocks: Vec<Vec<u8>> = (0..20).map(|b| pattern(7, b, 0)).collect();
    {
        let (engine, _) = Engine::start(config.clone()).expect("engine starts");
        runtime().block_on(async {
            engine.create(id(40), V1).await.unwrap();
            for (b, data) in blocks.iter().enumerate() {
                let buf = block_buf(&engine, data).await;
                engine.write(id(40), V1, b, 0, BLOCK_SIZE, buf, crc32(data)).await.unwrap();
            }
            assert_eq!(engine.blocks(id(40), V1).await.unwrap(), 20, "in memory: the blocks written");
            engine.create(id(41), V1).await.unwrap();
            let data = pattern(8, 0, 0);
            for b in 0..BLOCKS_PER_CHUNK {
                let buf = block_buf(&engine, &data).await;
                engine.write(id(41), V1, b, 0, BLOCK_SIZE, buf, crc32(&data)).await.unwrap();
            }
        });
        engine.close_idle();
    }
    let path = chunk_path(dir.path(), 40, 1).expect("chunk file exists");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192 + 32 * BLOCK_SIZE as u64, "sized to the next 16 blocks");
    let full = chunk_path(dir.path(), 41, 1).expect("chunk file exists");
    assert_eq!(std::fs::metadata(&full).unwrap().len(), 8192 + (BLOCKS_PER_CHUNK * BLOCK_SIZE) as u64);
    mfschunktool_ok(&[path, full]);
    let (engine, report) = Engine::start(config).expect("engine restarts");
    assert_eq!(report.chunks, 2);
    runtime().block_on(async {
        let read = engine.read_blocks(id(40), V1, 0, 32).await.unwrap();
        for (b, (buf, _)) in read.iter().enumerate() {
            match blocks.get(b) {
                Some(data) => assert_eq!(&buf[..], &data[..], "block {b}"),
                None => assert!(buf.iter().all(|x| *x == 0), "block {b} past the data reads as zeros"),
            }
        }
        engine.test(id(40), V1).await.unwrap();
    });
}
