//! Unit tests of the simulated disk.
use super::*;
use crate::buffer::BufPool;

fn disk(seed: u64) -> SimDisk {
    SimDisk::new(SimConfig::new("t", seed))
}

fn filled(pool: &BufPool, len: usize, byte: u8) -> Buf {
    let mut buf = pool.try_get().unwrap();
    buf.set_len(len);
    buf.fill(byte);
    buf
}

fn empty(pool: &BufPool, len: usize) -> Buf {
    filled(pool, len, 0xEE)
}

fn one(file: &dyn DiskFile, req: IoReq) -> IoDone {
    file.submit(vec![req]).wait().unwrap().pop().unwrap()
}

fn write(file: &dyn DiskFile, pool: &BufPool, offset: u64, len: usize, byte: u8) -> io::Result<usize> {
    one(file, IoReq::write(offset, vec![filled(pool, len, byte)])).result
}

fn fsync(file: &dyn DiskFile) -> io::Result<usize> {
    one(file, IoReq::fsync()).result
}

fn contents(disk: &SimDisk, name: &str) -> io::Result<Vec<u8>> {
    disk.peek(Path::new(name), usize::MAX).map(|(data, _)| data)
}

fn errno_of(result: &io::Result<usize>) -> Option<i32> {
    result.as_ref().err().and_then(|e| e.raw_os_error())
}

#[test]
fn writes_read_back_with_holes_and_short_reads() {
    let pool = BufPool::new(8);
    let disk = disk(1);
    disk.create_dir(Path::new("00")).unwrap();
    let file = disk.open(Path::new("00/f"), true).unwrap();
    assert_eq!(write(&*file, &pool, 8192, 4096, 7).unwrap(), 4096);
    assert_eq!(file.size().unwrap(), 12_288);
    let done = one(&*file, IoReq::read(4096, vec![empty(&pool, 4096), empty(&pool, 4096), empty(&pool, 4096)]));
    assert_eq!(done.result.unwrap(), 8192, "read stops at end of file");
    assert!(done.bufs[0].iter().all(|&b| b == 0), "the hole reads as zeros");
    assert!(done.bufs[1].iter().all(|&b| b == 7));
    assert!(done.bufs[2].iter().all(|&b| b == 0xEE), "bytes past end of file are left alone");
    file.set_size(4096).unwrap();
    assert_eq!(disk.peek(Path::new("00/f"), 10).unwrap(), (vec![0; 10], 4096));
    assert_eq!(disk.list_dir(Path::new("")).unwrap(), vec!["00"]);
    assert_eq!(disk.list_dir(Path::new("00")).unwrap(), vec!["f"]);
    assert_eq!(disk.requests(IoOp::Write), 1);
    assert_eq!(disk.requests(IoOp::Read), 1);
}

#[test]
fn namespace_errors_follow_posix() {
    let disk = disk(1);
    let kind = |r: io::Result<Arc<dyn DiskFile>>| r.err().map(|e| e.kind());
    assert_eq!(kind(disk.open(Path::new("nodir/f"), true)), Some(io::ErrorKind::NotFound));
    assert_eq!(kind(disk.open(Path::new("f"), false)), Some(io::ErrorKind::NotFound));
    drop(disk.open(Path::new("f"), true).unwrap());
    assert_eq!(kind(disk.open(Path::new("f"), true)), Some(io::ErrorKind::AlreadyExists));
    disk.create_dir(Path::new("d")).unwrap();
    disk.create_dir(Path::new("d")).unwrap();
    disk.rename(Path::new("f"), Path::new("d/g")).unwrap();
    assert_eq!(disk.remove(Path::new("d")).unwrap_err().raw_os_error(), Some(libc::ENOTEMPTY));
    assert_eq!(disk.remove(Path::new("f")).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(disk.list_dir(Path::new("missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert!(disk.open(Path::new("../x"), true).is_err());
    assert_eq!(disk.root(), Path::new("/sim/t"));
    assert!(disk.direct_io());
}

#[test]
fn rename_replaces_and_open_handles_follow_the_inode() {
    let pool = BufPool::new(4);
    let disk = disk(1);
    let a = disk.open(Path::new("a"), true).unwrap();
    write(&*a, &pool, 0, 4096, 1).unwrap();
    let b = disk.open(Path::new("b"), true).unwrap();
    write(&*b, &pool, 0, 4096, 2).unwrap();
    disk.rename(Path::new("a"), Path::new("b")).unwrap();
    assert_eq!(disk.list_dir(Path::new("")).unwrap(), vec!["b"]);
    assert_eq!(contents(&disk, "b").unwrap(), vec![1; 4096]);
    write(&*a, &pool, 4096, 4096, 3).unwrap();
    assert_eq!(disk.peek(Path::new("b"), 0).unwrap().1, 8192, "the handle follows the renamed file");
    assert_eq!(write(&*b, &pool, 0, 4096, 4).unwrap(), 4096, "a replaced file stays usable while open");
    assert_eq!(disk.space().unwrap().avail, UNLIMITED_BYTES - 8192 - 4096);
    drop(b);
    assert_eq!(disk.space().unwrap().avail, UNLIMITED_BYTES - 8192);
}

#[test]
fn a_failure_cancels_the_rest_of_the_chain() {
    let pool = BufPool::new(4);
    let disk = disk(1);
    let file = disk.open(Path::new("f"), true).unwrap();
    disk.set_fail_writes(true);
    let chain = vec![
        IoReq::write(0, vec![filled(&pool, 4096, 1)]),
        IoReq::write(4096, vec![filled(&pool, 4096, 2)]),
        IoReq::fsync(),
    ];
    let done = file.submit(chain).wait().unwrap();
    let errnos: Vec<_> = done.iter().map(|d| errno_of(&d.result)).collect();
    assert_eq!(errnos, vec![Some(libc::EIO), Some(libc::ECANCELED), Some(libc::ECANCELED)]);
    assert_eq!(done[1].bufs[0][0], 2, "buffers come back in order");
    assert_eq!(file.size().unwrap(), 0, "nothing applied");
    disk.set_fail_writes(false);
    let misaligned =
        vec![IoReq::write(512, vec![filled(&pool, 4096, 1)]), IoReq::write(0, vec![filled(&pool, 4096, 1)])];
    let done = file.submit(misaligned).wait().unwrap();
    assert_eq!(errno_of(&done[0].result), Some(libc::EINVAL), "O_DIRECT discipline");
    assert_eq!(errno_of(&done[1].result), Some(libc::ECANCELED));
    drop(done);
    let buffered = disk.open_buffered(Path::new("f")).unwrap();
    assert_eq!(write(&*buffered, &pool, 512, 100, 1).unwrap(), 100, "the page cache takes any alignment");
    assert_eq!(disk.requests(IoOp::Write), 5);
    assert_eq!(disk.requests(IoOp::Fsync), 1);
}

#[test]
fn crash_keeps_only_synced_names_and_fsynced_bytes() {
    let pool = BufPool::new(4);
    let disk = disk(1);
    disk.create_dir(Path::new("d")).unwrap();
    disk.sync_dir(Path::new("")).unwrap();
    let kept = disk.open(Path::new("d/kept"), true).unwrap();
    let empty_file = disk.open(Path::new("d/empty"), true).unwrap();
    disk.sync_dir(Path::new("d")).unwrap();
    write(&*kept, &pool, 0, 4096, 1).unwrap();
    fsync(&*kept).unwrap();
    write(&*kept, &pool, 0, 8192, 2).unwrap();
    write(&*empty_file, &pool, 0, 4096, 3).unwrap();
    let lost = disk.open(Path::new("d/lost"), true).unwrap();
    write(&*lost, &pool, 0, 4096, 4).unwrap();
    fsync(&*lost).unwrap();
    disk.remove(Path::new("d/empty")).unwrap();
    disk.crash();
    assert_eq!(disk.list_dir(Path::new("d")).unwrap(), vec!["empty", "kept"]);
    assert_eq!(contents(&disk, "d/kept").unwrap(), vec![1; 4096]);
    assert_eq!(contents(&disk, "d/empty").unwrap(), Vec::<u8>::new());
    assert_eq!(errno_of(&write(&*kept, &pool, 0, 4096, 5)), Some(libc::EBADF), "handles die with the process");
    assert_eq!(kept.size().unwrap_err().raw_os_error(), Some(libc::EBADF));
    let reopened = disk.open(Path::new("d/kept"), false).unwrap();
    assert_eq!(write(&*reopened, &pool, 4096, 4096, 6).unwrap(), 4096);
}

#[test]
fn unsynced_folders_vanish_with_their_files() {
    let disk = disk(1);
    disk.create_dir(Path::new("d")).unwrap();
    drop(disk.open(Path::new("d/f"), true).unwrap());
    disk.sync_dir(Path::new("d")).unwrap();
    disk.crash();
    assert!(disk.list_dir(Path::new("")).unwrap().is_empty());
    assert_eq!(disk.space().unwrap().avail, UNLIMITED_BYTES);
}

#[test]
fn a_rename_is_durable_once_its_destination_folder_is_synced() {
    let pool = BufPool::new(4);
    let disk = disk(1);
    for dir in ["src", "dst"] {
        disk.create_dir(Path::new(dir)).unwrap();
    }
    disk.sync_dir(Path::new("")).unwrap();
    let file = disk.open(Path::new("src/f"), true).unwrap();
    write(&*file, &pool, 0, 4096, 9).unwrap();
    fsync(&*file).unwrap();
    disk.sync_dir(Path::new("src")).unwrap();
    disk.rename(Path::new("src/f"), Path::new("dst/g")).unwrap();
    disk.sync_dir(Path::new("src")).unwrap();
    disk.crash();
    assert_eq!(disk.list_dir(Path::new("src")).unwrap(), vec!["f"], "syncing the source alone is not enough");
    assert!(disk.list_dir(Path::new("dst")).unwrap().is_empty());
    disk.rename(Path::new("src/f"), Path::new("dst/g")).unwrap();
    disk.sync_dir(Path::new("dst")).unwrap();
    disk.crash();
    assert!(disk.list_dir(Path::new("src")).unwrap().is_empty());
    assert_eq!(contents(&disk, "dst/g").unwrap(), vec![9; 4096]);
}

#[test]
fn a_rename_of_an_unsynced_create_never_shows_two_names() {
    let disk = disk(1);
    disk.create_dir(Path::new("dst")).unwrap();
    disk.sync_dir(Path::new("")).unwrap();
    drop(disk.open(Path::new("f"), true).unwrap());
    disk.rename(Path::new("f"), Path::new("dst/g")).unwrap();
    disk.sync_dir(Path::new("dst")).unwrap();
    disk.sync_dir(Path::new("")).unwrap();
    disk.crash();
    assert_eq!(disk.list_dir(Path::new("")).unwrap(), vec!["dst"]);
    assert_eq!(disk.list_dir(Path::new("dst")).unwrap(), vec!["g"]);
}

#[test]
fn capacity_bounds_writes_and_growth() {
    let pool = BufPool::new(4);
    let disk = disk(1);
    disk.set_capacity(Some(8192));
    let file = disk.open(Path::new("f"), true).unwrap();
    assert_eq!(write(&*file, &pool, 0, 8192, 1).unwrap(), 8192);
    assert_eq!(disk.space().unwrap(), FsSpace { total: 8192, avail: 0 });
    assert_eq!(errno_of(&write(&*file, &pool, 8192, 4096, 2)), Some(libc::ENOSPC));
    assert_eq!(file.size().unwrap(), 8192, "nothing applied");
    assert_eq!(write(&*file, &pool, 0, 4096, 3).unwrap(), 4096, "overwrites need no space");
    assert_eq!(file.set_size(12_288).unwrap_err().raw_os_error(), Some(libc::ENOSPC));
    file.set_size(4096).unwrap();
    assert_eq!(disk.space().unwrap().avail, 4096);
    disk.set_capacity(None);
    assert_eq!(disk.space().unwrap().total, UNLIMITED_BYTES);
}

#[test]
fn torn_writes_leave_a_sector_aligned_prefix() {
    let pool = BufPool::new(4);
    let mut lengths = Vec::new();
    for seed in 0..20 {
        let disk = SimDisk::new(SimConfig {
            faults: SimFaults { torn_write: 1.0, ..SimFaults::NONE },
            ..SimConfig::new("t", seed)
        });
        let file = disk.open(Path::new("f"), true).unwrap();
        let result = one(&*file, IoReq::write(4096, vec![filled(&pool, 65_536, 1), filled(&pool, 4096, 2)])).result;
        assert_eq!(errno_of(&result), Some(libc::EIO));
        assert_eq!(disk.injected(), SimFaultCounts { torn_write: 1, ..SimFaultCounts::default() });
        let data = contents(&disk, "f").unwrap();
        if !data.is_empty() {
            assert_eq!(data.len() % SECTOR as usize, 0);
            assert!(data.len() < 4096 + 69_632);
            assert!(data[..4096].iter().all(|&b| b == 0));
            assert!(data[4096..].iter().take(65_536).all(|&b| b == 1));
            assert!(data[4096..].iter().skip(65_536).all(|&b| b == 2));
        }
        lengths.push(data.len());
    }
    lengths.dedup();
    assert!(lengths.len() > 5, "cuts vary with the seed: {lengths:?}");
}

fn faulty_run(seed: u64) -> (Vec<Option<i32>>, Vec<u8>) {
    let pool = BufPool::new(4);
    let faults = SimFaults { read_eio: 0.2, write_eio: 0.2, fsync_eio: 0.2, write_enospc: 0.1, torn_write: 0.2 };
    let disk = SimDisk::new(SimConfig { faults, ..SimConfig::new("t", seed) });
    let file = disk.open(Path::new("f"), true).unwrap();
    let mut outcomes = Vec::new();
    for i in 0..60u64 {
        let result = match i % 3 {
            0 => write(&*file, &pool, (i % 7) * 4096, 8192, i as u8),
            1 => fsync(&*file),
            _ => one(&*file, IoReq::read(0, vec![empty(&pool, 4096)])).result,
        };
        outcomes.push(errno_of(&result));
    }
    (outcomes, contents(&disk, "f").unwrap())
}

#[test]
fn the_same_seed_replays_the_same_faults() {
    let (first, data) = faulty_run(42);
    assert_eq!(faulty_run(42), (first.clone(), data));
    assert!(first.iter().any(Option::is_some) && first.iter().any(Option::is_none));
    assert_ne!(faulty_run(43).0, first, "another seed, other faults");
}

#[test]
fn a_power_cut_mid_chain_keeps_the_disk_down_until_restarted() {
    let pool = BufPool::new(4);
    let disk = disk(1);
    let file = disk.open(Path::new("f"), true).unwrap();
    disk.sync_dir(Path::new("")).unwrap();
    disk.crash_after(Some(2));
    let chain = vec![
        IoReq::write(0, vec![filled(&pool, 4096, 1)]),
        IoReq::fsync(),
        IoReq::write(4096, vec![filled(&pool, 4096, 2)]),
        IoReq::fsync(),
    ];
    let done = file.submit(chain).wait().unwrap();
    let errnos: Vec<_> = done.iter().map(|d| errno_of(&d.result)).collect();
    assert_eq!(errnos, vec![None, None, Some(libc::EIO), Some(libc::ECANCELED)]);
    drop(done);
    assert!(disk.is_down());
    assert_eq!(disk.remove(Path::new("f")).unwrap_err().raw_os_error(), Some(libc::EIO));
    assert!(disk.list_dir(Path::new("")).is_err(), "nothing works while the power is off");
    disk.crash();
    assert!(!disk.is_down());
    assert_eq!(contents(&disk, "f").unwrap(), vec![1; 4096]);
}

#[test]
fn corruption_is_silent_and_survives_a_crash() {
    let pool = BufPool::new(4);
    let disk = disk(1);
    let file = disk.open(Path::new("f"), true).unwrap();
    disk.sync_dir(Path::new("")).unwrap();
    write(&*file, &pool, 0, 4096, 1).unwrap();
    fsync(&*file).unwrap();
    disk.corrupt(Path::new("f"), 10, &[0xFF]).unwrap();
    disk.crash();
    let data = contents(&disk, "f").unwrap();
    assert_eq!((data[9], data[10], data[11]), (1, 0xFF, 1));
}
