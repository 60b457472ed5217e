//! Corruption, bad files in data folders, full disks and broken disks.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use elkfs_engine::crc::crc32;
use elkfs_engine::disk::{Disk, SimConfig, SimDisk};
use elkfs_engine::header::Header;
use elkfs_engine::{ChunkId, Engine, EngineConfig, Error, ErrorKind, HddLine, Version, BLOCK_SIZE};

async fn fill_blocks(engine: &Engine, chunk: u64, blocks: usize) {
    engine.create(id(chunk), V1).await.unwrap();
    let mut bufs = Vec::new();
    for b in 0..blocks {
        bufs.push(block_buf(engine, &pattern(chunk, b, 0)).await);
    }
    engine.write_blocks(id(chunk), V1, 0, bufs).await.unwrap();
}

#[test]
fn a_flipped_byte_fails_exactly_its_block() {
    let dir = scratch("corrupt");
    let (engine, _) = engine_on(&[dir.path()]);
    runtime().block_on(async {
        fill_blocks(&engine, 1, 4).await;
        fill_blocks(&engine, 2, 2).await;
    });
    drop(engine);
    let path = chunk_path(dir.path(), 1, 1).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8192 + 2 * BLOCK_SIZE + 123] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();

    let (engine, _) = engine_on(&[dir.path()]);
    runtime().block_on(async {
        match engine.read(id(1), V1, 2, 100, 50).await {
            Err(Error::Crc { id: chunk, block, .. }) => assert_eq!((chunk, block), (id(1), 2)),
            other => panic!("expected a CRC error on block 2, got {other:?}"),
        }
        for b in [0, 1, 3] {
            let piece = engine.read(id(1), V1, b, 0, BLOCK_SIZE).await.unwrap();
            assert_eq!(piece.data(), &pattern(1, b, 0)[..]);
        }
        for b in 0..2 {
            assert_eq!(engine.read(id(2), V1, b, 0, BLOCK_SIZE).await.unwrap().data(), &pattern(2, b, 0)[..]);
        }
        assert_eq!(engine.take_damaged(), vec![id(1)]);
        match engine.test(id(1), V1).await {
            Err(Error::Crc { block, .. }) => assert_eq!(block, 2),
            other => panic!("test must find block 2, got {other:?}"),
        }
        engine.test(id(2), V1).await.unwrap();
        // Rewriting the whole block heals it.
        let data = pattern(1, 2, 1);
        let buf = block_buf(&engine, &data).await;
        engine.write(id(1), V1, 2, 0, BLOCK_SIZE, buf, crc32(&data)).await.unwrap();
        engine.test(id(1), V1).await.unwrap();
    });
}

fn header_file(id: u64, version: u32, blocks: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; 8192 + blocks * BLOCK_SIZE];
    Header { id: ChunkId(id), version: Version(version) }.encode(&mut bytes[..4096]);
    let empty = elkfs_engine::header::CrcTable::empty();
    empty.encode(&mut bytes[4096..8192]);
    bytes
}

#[test]
fn bad_files_are_reported_skipped_and_kept() {
    let dir = scratch("badinput");
    let root = dir.path();
    for sub in ["00", "01", "7F"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let write = |rel: &str, bytes: &[u8]| std::fs::write(root.join(rel), bytes).unwrap();
    write("00/notes.txt", b"operator notes");
    write("00/chunk_00000000000000zz_00000001.mfs", b"");
    write("00/chunk_0000000000000001_00000001.mfs", &header_file(1, 1, 1));
    write("00/chunk_0000000000000002_00000001.mfs", &header_file(2, 1, 1)[..5000]);
    let mut bad_signature = header_file(3, 1, 0);
    bad_signature[..8].copy_from_slice(b"NOTMFSC!");
    write("01/chunk_0000000000000003_00000001.mfs", &bad_signature);
    write("01/chunk_0000000000000004_00000001.mfs", &header_file(99, 1, 0));
    write("01/chunk_0000000000000005_00000002.mfs", &header_file(5, 1, 0));
    write("01/chunk_0000000000000006_00000001.mfs", b"");
    write("00/chunk_0000000000000007_00000001.mfs", &header_file(7, 1, 0));
    write("7F/chunk_0000000000000007_00000002.mfs", &header_file(7, 2, 2));

    let (engine, report) = engine_on(&[root]);
    let names = |paths: Vec<&Path>| -> Vec<String> {
        let mut names: Vec<String> =
            paths.iter().map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(
        names(report.foreign.iter().map(|p| p.as_path()).collect()),
        vec!["00/chunk_00000000000000zz_00000001.mfs", "00/notes.txt"]
    );
    assert_eq!(
        names(report.damaged.iter().map(|(p, _)| p.as_path()).collect()),
        vec![
            "00/chunk_0000000000000002_00000001.mfs",
            "01/chunk_0000000000000003_00000001.mfs",
            "01/chunk_0000000000000004_00000001.mfs",
            "01/chunk_0000000000000006_00000001.mfs",
        ],
        "{:?}",
        report.damaged
    );
    assert_eq!(
        names(report.duplicates.iter().map(|p| p.as_path()).collect()),
        vec!["00/chunk_0000000000000007_00000001.mfs"]
    );
    let listed: Vec<(u64, u32)> = engine.list().iter().map(|c| (c.id.0, c.version.0)).collect();
    // Chunk 5's header version lags its name (an interrupted version
    // change): it is served under the name's version and its header repaired.
    assert_eq!(listed, vec![(1, 1), (5, 2), (7, 2)]);
    runtime().block_on(async {
        engine.test(id(1), V1).await.unwrap();
        engine.test(id(5), Version(2)).await.unwrap();
        assert_eq!(engine.blocks(id(7), Version(2)).await.unwrap(), 2);
    });
    let repaired = std::fs::read(root.join("01/chunk_0000000000000005_00000002.mfs")).unwrap();
    assert_eq!(repaired[16..20], [0, 0, 0, 2], "header version repaired");
    // Nothing was deleted.
    assert!(root.join("00/notes.txt").exists());
    assert!(root.join("01/chunk_0000000000000004_00000001.mfs").exists());
    assert!(root.join("00/chunk_0000000000000007_00000001.mfs").exists());
    // All 256 subfolders exist now.
    assert!(root.join("FF").is_dir() && root.join("A0").is_dir());
}

#[test]
fn tmpfs_folders_work_whichever_way_the_o_direct_probe_goes() {
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "/dev/shm (tmpfs) is needed for this test");
    let dir = tempfile::Builder::new().prefix("elkfs-tmpfs").tempdir_in(shm).unwrap();
    // Older kernels refuse O_DIRECT on tmpfs, 6.6 and later accept it.
    let (engine, _) = engine_on(&[dir.path()]);
    runtime().block_on(async {
        fill_blocks(&engine, 1, 3).await;
        engine.test(id(1), V1).await.unwrap();
        assert_eq!(engine.read(id(1), V1, 1, 5, 10).await.unwrap().data(), &pattern(1, 1, 0)[5..15]);
    });
}

#[test]
fn buffered_io_serves_the_same_files() {
    let dir = scratch("buffered");
    let mut config = EngineConfig::test_min(vec![HddLine::new(dir.path())]);
    config.direct_io = false;
    let (engine, _) = Engine::start(config).unwrap();
    assert!(!engine.folders()[0].direct_io);
    runtime().block_on(async {
        fill_blocks(&engine, 1, 3).await;
        let piece = b"unaligned piece";
        let buf = piece_buf(&engine, 3, piece).await;
        engine.write(id(1), V1, 1, 3, piece.len(), buf, crc32(piece)).await.unwrap();
        engine.test(id(1), V1).await.unwrap();
    });
    drop(engine);
    // The same files, now through O_DIRECT.
    let (engine, _) = engine_on(&[dir.path()]);
    assert!(engine.folders()[0].direct_io);
    runtime().block_on(async {
        let mut want = pattern(1, 1, 0);
        want[3..18].copy_from_slice(b"unaligned piece");
        assert_eq!(engine.read(id(1), V1, 1, 0, BLOCK_SIZE).await.unwrap().data(), &want[..]);
    });
}

#[test]
fn a_folder_size_cap_stops_growth_and_keeps_data() {
    let dir = scratch("cap");
    let mut line = HddLine::new(dir.path());
    line.size_limit = Some(4 << 20);
    let (engine, _) = Engine::start(EngineConfig::test_min(vec![line])).unwrap();
    let written = runtime().block_on(async { write_until_full(&engine).await });
    // 4 MiB hold one 8 KiB header and 63 blocks, not 64.
    assert_eq!(written, 63);
    let space = engine.folders()[0].space.unwrap();
    assert_eq!(space.total, 4 << 20);
    assert!(space.avail < BLOCK_SIZE as u64, "{space:?}");
}

/// Writes whole blocks into new chunks until the engine says NoSpace;
/// checks that everything acknowledged still reads back. Returns blocks written.
async fn write_until_full(engine: &Engine) -> usize {
    let mut acked: Vec<(u64, usize)> = Vec::new();
    let mut written = 0;
    'chunks: for chunk in 1..10_000u64 {
        match engine.create(id(chunk), V1).await {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
                break;
            }
        }
        for b in 0..64 {
            let data = pattern(chunk, b, 0);
            let buf = block_buf(engine, &data).await;
            match engine.write(id(chunk), V1, b, 0, BLOCK_SIZE, buf, crc32(&data)).await {
                Ok(()) => {
                    acked.push((chunk, b));
                    written += 1;
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
                    break 'chunks;
                }
            }
        }
    }
    assert!(written < 10_000 * 64, "never ran out of space");
    for (chunk, b) in acked {
        let piece = engine.read(id(chunk), V1, b, 0, BLOCK_SIZE).await.unwrap();
        assert_eq!(piece.data(), &pattern(chunk, b, 0)[..]);
    }
    written
}

/// A small ext4 file system on a loop device, unmounted on drop.
struct LoopFs {
    mount: tempfile::TempDir,
    _image: tempfile::TempDir,
}

impl LoopFs {
    fn new(size_mib: u64) -> LoopFs {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "this test mounts a loop file system and must run as root (scripts/test runs it as root)");
        let image_dir = scratch("loopimg");
        let image = image_dir.path().join("fs.img");
        std::fs::File::create(&image).unwrap().set_len(size_mib << 20).unwrap();
        let status = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image).status().expect("mkfs.ext4 (e2fsprogs)");
        assert!(status.success(), "mkfs.ext4 failed");
        let mount = scratch("loopmnt");
        let status = Command::new("mount").args(["-o", "loop"]).arg(&image).arg(mount.path()).status().unwrap();
        assert!(status.success(), "mount -o loop failed");
        LoopFs { mount, _image: image_dir }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.mount.path()).status();
    }
}

#[test]
fn a_full_file_system_answers_no_space_and_keeps_data() {
    let fs = LoopFs::new(96);
    let data = fs.mount.path().join("data");
    let lines = vec![HddLine::new(&data)];
    let mut config = EngineConfig::test_min(lines);
    config.leave_space_default = 16 << 20;
    let (engine, _) = Engine::start(config).unwrap();
    let written = runtime().block_on(async { write_until_full(&engine).await });
    assert!(written > 100, "a 96 MiB file system holds more than {written} blocks");
    let space = engine.folders()[0].space.unwrap();
    assert!(space.avail < 2 * BLOCK_SIZE as u64, "stopped at the reserve: {space:?}");
    drop(engine);
    // After a restart everything is still there and valid.
    let (engine, report) = Engine::start(EngineConfig::test_min(vec![HddLine::new(&data)])).unwrap();
    assert!(report.damaged.is_empty());
    runtime().block_on(async {
        for chunk in engine.list() {
            engine.test(chunk.id, chunk.version).await.unwrap();
        }
    });
}

#[test]
fn a_disk_that_fails_a_write_is_damaged_and_others_go_on() {
    let a = Arc::new(SimDisk::new(SimConfig::new("a", 1)));
    let b = Arc::new(SimDisk::new(SimConfig::new("b", 2)));
    let lines = vec![HddLine::new("/sim/a"), HddLine::new("/sim/b")];
    let disks: Vec<Arc<dyn Disk>> = vec![a.clone(), b.clone()];
    let (engine, _) = Engine::start_with(EngineConfig::test_min(lines), disks).unwrap();
    runtime().block_on(async {
        for chunk in 1..=4 {
            fill_blocks(&engine, chunk, 1).await;
        }
        let on_a: Vec<u64> = engine.list().iter().filter(|c| c.folder == 0).map(|c| c.id.0).collect();
        let on_b: Vec<u64> = engine.list().iter().filter(|c| c.folder == 1).map(|c| c.id.0).collect();
        assert!(!on_a.is_empty() && !on_b.is_empty(), "chunks spread over both disks");
        a.set_fail_writes(true);
        let data = pattern(on_a[0], 0, 1);
        let buf = block_buf(&engine, &data).await;
        let err = engine.write(id(on_a[0]), V1, 0, 0, BLOCK_SIZE, buf, crc32(&data)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        a.set_fail_writes(false);
        // Fails fast from now on, even though the disk would work again.
        let buf = block_buf(&engine, &data).await;
        let err = engine.write(id(on_a[0]), V1, 0, 0, BLOCK_SIZE, buf, crc32(&data)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Damaged, "{err}");
        assert!(engine.folders()[0].damaged && !engine.folders()[1].damaged);
        // New chunks go to the healthy disk; its chunks keep working.
        for chunk in 10..14 {
            fill_blocks(&engine, chunk, 1).await;
        }
        assert!(engine.list().iter().filter(|c| c.id.0 >= 10).all(|c| c.folder == 1));
        for chunk in on_b {
            engine.test(id(chunk), V1).await.unwrap();
        }
    });
}

#[test]
fn a_file_cut_inside_a_block_keeps_its_other_blocks() {
    let dir = scratch("torn");
    let (engine, _) = engine_on(&[dir.path()]);
    runtime().block_on(fill_blocks(&engine, 1, 3));
    drop(engine);
    // An extending write torn by a crash leaves a 4 KiB-granular prefix.
    let path = chunk_path(dir.path(), 1, 1).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(8192 + 2 * 65_536 + 4096).unwrap();
    let (engine, report) = engine_on(&[dir.path()]);
    assert!(report.damaged.is_empty(), "{report:?}");
    runtime().block_on(async {
        for b in 0..2 {
            assert_eq!(engine.read(id(1), V1, b, 0, BLOCK_SIZE).await.unwrap().data(), &pattern(1, b, 0)[..]);
        }
        match engine.read(id(1), V1, 2, 0, 10).await {
            Err(Error::Crc { block, .. }) => assert_eq!(block, 2),
            other => panic!("the cut block must fail its CRC, got {other:?}"),
        }
    });
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192 + 3 * 65_536, "padded back to whole blocks");
}
