//! Randomised operation sequences against [`Engine`] over simulated disks,
//! checked against a plain in-memory model of what every chunk holds.
//!
//! Three scenarios, each over many seeds:
//! - no faults: every result and every byte read matches the model, also
//!   after a clean restart;
//! - crashes (with `fsync_before_ack`): the power is cut somewhere inside one
//!   operation; after a restart every acknowledged operation is there, and
//!   the one in flight shows its old or its new state, block by block, or is
//!   refused as damaged;
//! - random EIO, ENOSPC and torn writes: a failed operation may spoil its own
//!   chunk, but a read never returns wrong data, other chunks are untouched,
//!   and a disk whose write or fsync failed refuses further changes.
//!
//! A failure prints its seed; `ELKFS_SEED=<n>` replays just that seed, and
//! `ELKFS_TRACE=1` prints every operation with its answer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use elkfs_engine::crc::crc32;
use elkfs_engine::disk::sim::{SimFaultCounts, SimFaults};
use elkfs_engine::disk::{Disk, SimConfig, SimDisk};
use elkfs_engine::layout::parse_chunk_file_name;
use elkfs_engine::{ChunkId, Engine, EngineConfig, Error, ErrorKind, HddLine, Version, BLOCK_SIZE};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

/// Seeds run when `ELKFS_SEED` is not set.
const SEEDS: u64 = 40;
/// Chunk ids used; few, so operations collide.
const IDS: u64 = 10;
/// Blocks a chunk may reach; small, to keep the model cheap.
const MAX_BLOCKS: usize = 6;

// ---------------------------------------------------------------- model

#[derive(Debug, Clone, PartialEq)]
struct MChunk {
    version: u32,
    blocks: Vec<Vec<u8>>,
}

impl MChunk {
    /// Block `b` as a read sees it: zeros past the end.
    fn block(&self, b: usize) -> Vec<u8> {
        self.blocks.get(b).cloned().unwrap_or_else(|| vec![0; BLOCK_SIZE])
    }

    /// MooseFS truncate: whole blocks up to `length`, the tail of the last zeroed.
    fn truncate(&mut self, length: u64) {
        let blocks = length.div_ceil(BLOCK_SIZE as u64) as usize;
        if blocks > self.blocks.len() {
            self.blocks.resize(blocks, vec![0; BLOCK_SIZE]);
            return;
        }
        self.blocks.truncate(blocks);
        let tail = (length % BLOCK_SIZE as u64) as usize;
        if tail != 0 {
            self.blocks[blocks - 1][tail..].fill(0);
        }
    }

    fn grow_to(&mut self, blocks: usize) {
        if self.blocks.len() < blocks {
            self.blocks.resize(blocks, vec![0; BLOCK_SIZE]);
        }
    }
}

type Model = BTreeMap<u64, MChunk>;

#[derive(Debug, Clone)]
enum Op {
    Create { id: u64, version: u32 },
    Delete { id: u64, version: u32 },
    SetVersion { id: u64, version: u32, new_version: u32 },
    Duplicate { src: u64, src_version: u32, dst: u64, dst_version: u32 },
    Truncate { id: u64, version: u32, new_version: u32, length: u64 },
    DupTrunc { src: u64, src_version: u32, dst: u64, dst_version: u32, length: u64 },
    Write { id: u64, version: u32, block: usize, offset: usize, size: usize, seed: u64, bad_crc: bool },
    WriteBlocks { id: u64, version: u32, first: usize, count: usize, seed: u64 },
    Read { id: u64, version: u32, block: usize, offset: usize, size: usize },
    Blocks { id: u64, version: u32 },
    Test { id: u64, version: u32 },
}

impl Op {
    /// The chunk whose state the operation may change.
    fn target(&self) -> Option<u64> {
        match *self {
            Op::Create { id, .. }
            | Op::Delete { id, .. }
            | Op::SetVersion { id, .. }
            | Op::Truncate { id, .. }
            | Op::Write { id, .. }
            | Op::WriteBlocks { id, .. } => Some(id),
            Op::Duplicate { dst, .. } | Op::DupTrunc { dst, .. } => Some(dst),
            Op::Read { .. } | Op::Blocks { .. } | Op::Test { .. } => None,
        }
    }

    /// Every chunk the operation names.
    fn ids(&self) -> Vec<u64> {
        match *self {
            Op::Duplicate { src, dst, .. } | Op::DupTrunc { src, dst, .. } => vec![src, dst],
            Op::Create { id, .. }
            | Op::Delete { id, .. }
            | Op::SetVersion { id, .. }
            | Op::Truncate { id, .. }
            | Op::Write { id, .. }
            | Op::WriteBlocks { id, .. }
            | Op::Read { id, .. }
            | Op::Blocks { id, .. }
            | Op::Test { id, .. } => vec![id],
        }
    }
}

#[derive(Debug, PartialEq)]
enum Out {
    Unit,
    Blocks(usize),
    Data(Vec<u8>),
}

/// Deterministic bytes for a write.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    SmallRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

fn live(model: &Model, id: u64, version: u32) -> Result<&MChunk, ErrorKind> {
    let chunk = model.get(&id).ok_or(ErrorKind::NoChunk)?;
    if chunk.version != version {
        return Err(ErrorKind::WrongVersion);
    }
    Ok(chunk)
}

/// What the engine must answer, applying the change to `model` on success.
fn expect(model: &mut Model, op: &Op) -> Result<Out, ErrorKind> {
    match *op {
        Op::Create { id, version } => {
            if model.contains_key(&id) {
                return Err(ErrorKind::ChunkExists);
            }
            model.insert(id, MChunk { version, blocks: Vec::new() });
        }
        Op::Delete { id, version } => {
            live(model, id, version)?;
            model.remove(&id);
        }
        Op::SetVersion { id, version, new_version } => {
            live(model, id, version)?;
            model.get_mut(&id).expect("live").version = new_version;
        }
        Op::Truncate { id, version, new_version, length } => {
            live(model, id, version)?;
            let chunk = model.get_mut(&id).expect("live");
            chunk.truncate(length);
            chunk.version = new_version;
        }
        Op::Duplicate { src, src_version, dst, dst_version } => duplicate(model, src, src_version, dst, dst_version)?,
        Op::DupTrunc { src, src_version, dst, dst_version, length } => {
            duplicate(model, src, src_version, dst, dst_version)?;
            model.get_mut(&dst).expect("just made").truncate(length);
        }
        Op::Write { id, version, block, offset, size, seed, bad_crc } => {
            if bad_crc {
                return Err(ErrorKind::PieceCrc);
            }
            live(model, id, version)?;
            let chunk = model.get_mut(&id).expect("live");
            chunk.grow_to(block + 1);
            chunk.blocks[block][offset..offset + size].copy_from_slice(&bytes(seed, size));
        }
        Op::WriteBlocks { id, version, first, count, seed } => {
            live(model, id, version)?;
            let chunk = model.get_mut(&id).expect("live");
            chunk.grow_to(first + count);
            for i in 0..count {
                chunk.blocks[first + i] = bytes(seed + i as u64, BLOCK_SIZE);
            }
        }
        Op::Read { id, version, block, offset, size } => {
            let chunk = live(model, id, version)?;
            return Ok(Out::Data(chunk.block(block)[offset..offset + size].to_vec()));
        }
        Op::Blocks { id, version } => return Ok(Out::Blocks(live(model, id, version)?.blocks.len())),
        Op::Test { id, version } => {
            live(model, id, version)?;
        }
    }
    Ok(Out::Unit)
}

fn duplicate(model: &mut Model, src: u64, src_version: u32, dst: u64, dst_version: u32) -> Result<(), ErrorKind> {
    let copy = live(model, src, src_version)?.clone();
    if model.contains_key(&dst) {
        return Err(ErrorKind::ChunkExists);
    }
    model.insert(dst, MChunk { version: dst_version, ..copy });
    Ok(())
}

// ---------------------------------------------------------------- generation

/// The version to name `id` with: mostly the right one.
fn pick_version(rng: &mut SmallRng, model: &Model, id: u64) -> u32 {
    match model.get(&id) {
        Some(chunk) if rng.random_bool(0.9) => chunk.version,
        Some(chunk) => chunk.version + 1,
        None => rng.random_range(1..4),
    }
}

fn pick_length(rng: &mut SmallRng) -> u64 {
    let blocks = rng.random_range(0..=MAX_BLOCKS as u64);
    let cut = if rng.random_bool(0.5) { 0 } else { rng.random_range(0..BLOCK_SIZE as u64) };
    (blocks * BLOCK_SIZE as u64).saturating_sub(cut)
}

/// A random operation on ids outside `avoid`.
fn gen_op(rng: &mut SmallRng, model: &Model, avoid: &HashSet<u64>) -> Op {
    let pick_id = |rng: &mut SmallRng| loop {
        let id = rng.random_range(1..=IDS);
        if !avoid.contains(&id) {
            return id;
        }
    };
    let id = pick_id(rng);
    let version = pick_version(rng, model, id);
    let new_version = version + rng.random_range(1..3);
    match rng.random_range(0..100) {
        0..12 => Op::Create { id, version },
        12..17 => Op::Delete { id, version },
        17..23 => Op::SetVersion { id, version, new_version },
        23..28 => {
            let dst = pick_id(rng);
            Op::Duplicate { src: id, src_version: version, dst, dst_version: new_version }
        }
        28..35 => Op::Truncate { id, version, new_version, length: pick_length(rng) },
        35..39 => {
            let dst = pick_id(rng);
            let length = pick_length(rng);
            Op::DupTrunc { src: id, src_version: version, dst, dst_version: new_version, length }
        }
        39..62 => {
            let block = rng.random_range(0..MAX_BLOCKS);
            let (offset, size) = if rng.random_bool(0.3) {
                (0, BLOCK_SIZE)
            } else {
                let offset = rng.random_range(0..BLOCK_SIZE);
                (offset, rng.random_range(1..=BLOCK_SIZE - offset))
            };
            Op::Write { id, version, block, offset, size, seed: rng.random(), bad_crc: rng.random_bool(0.03) }
        }
        62..72 => {
            let first = rng.random_range(0..MAX_BLOCKS);
            let count = rng.random_range(1..=(MAX_BLOCKS - first).min(3));
            Op::WriteBlocks { id, version, first, count, seed: rng.random() }
        }
        72..90 => {
            let block = rng.random_range(0..MAX_BLOCKS + 1);
            let offset = rng.random_range(0..BLOCK_SIZE);
            let size =
                if rng.random_bool(0.3) { BLOCK_SIZE - offset } else { rng.random_range(0..=BLOCK_SIZE - offset) };
            Op::Read { id, version, block, offset, size }
        }
        90..95 => Op::Blocks { id, version },
        _ => Op::Test { id, version },
    }
}

// ---------------------------------------------------------------- engine side

fn cid(id: u64) -> ChunkId {
    ChunkId(id)
}

fn ver(version: u32) -> Version {
    Version(version)
}

async fn exec(engine: &Engine, op: &Op) -> Result<Out, Error> {
    let unit = |r: Result<(), Error>| r.map(|()| Out::Unit);
    match *op {
        Op::Create { id, version } => unit(engine.create(cid(id), ver(version)).await),
        Op::Delete { id, version } => unit(engine.delete(cid(id), ver(version)).await),
        Op::SetVersion { id, version, new_version } => {
            unit(engine.set_version(cid(id), ver(version), ver(new_version)).await)
        }
        Op::Truncate { id, version, new_version, length } => {
            unit(engine.truncate(cid(id), ver(version), ver(new_version), length).await)
        }
        Op::Duplicate { src, src_version, dst, dst_version } => {
            unit(engine.duplicate(cid(src), ver(src_version), cid(dst), ver(dst_version)).await)
        }
        Op::DupTrunc { src, src_version, dst, dst_version, length } => {
            unit(engine.dup_trunc(cid(src), ver(src_version), cid(dst), ver(dst_version), length).await)
        }
        Op::Write { id, version, block, offset, size, seed, bad_crc } => {
            let data = bytes(seed, size);
            let mut buf = engine.pool().get().await;
            buf.full_mut()[offset..offset + size].copy_from_slice(&data);
            let crc = crc32(&data) ^ u32::from(bad_crc);
            unit(engine.write(cid(id), ver(version), block, offset, size, buf, crc).await)
        }
        Op::WriteBlocks { id, version, first, count, seed } => {
            let mut bufs = Vec::with_capacity(count);
            for i in 0..count {
                let mut buf = engine.pool().get().await;
                buf.set_len(BLOCK_SIZE);
                buf.copy_from_slice(&bytes(seed + i as u64, BLOCK_SIZE));
                bufs.push(buf);
            }
            unit(engine.write_blocks(cid(id), ver(version), first, bufs).await)
        }
        Op::Read { id, version, block, offset, size } => {
            let piece = engine.read(cid(id), ver(version), block, offset, size).await?;
            assert_eq!(piece.crc, crc32(piece.data()), "the CRC sent with a piece matches it");
            Ok(Out::Data(piece.data().to_vec()))
        }
        Op::Blocks { id, version } => engine.blocks(cid(id), ver(version)).await.map(Out::Blocks),
        Op::Test { id, version } => unit(engine.test(cid(id), ver(version)).await),
    }
}

/// Short text of a result, for messages (data is summarised).
fn show<E: std::fmt::Debug>(result: &Result<Out, E>) -> String {
    match result {
        Ok(Out::Data(data)) => format!("Ok(Data[{} bytes, crc {:08X}])", data.len(), crc32(data)),
        other => format!("{other:?}"),
    }
}

/// Engine, runtime and simulated disks of one run.
struct Rig {
    disks: Vec<Arc<SimDisk>>,
    config: EngineConfig,
    rt: tokio::runtime::Runtime,
    engine: Option<Engine>,
    damaged_at_scan: Vec<u64>,
}

impl Rig {
    fn new(seed: u64, disks: usize, fsync_before_ack: bool) -> Rig {
        let disks: Vec<Arc<SimDisk>> = (0..disks)
            .map(|i| {
                Arc::new(SimDisk::new(SimConfig::new(format!("d{i}"), seed.wrapping_mul(31).wrapping_add(i as u64))))
            })
            .collect();
        let lines = disks.iter().map(|d| HddLine::new(d.root())).collect();
        let mut config = EngineConfig::test_min(lines);
        config.fsync_before_ack = fsync_before_ack;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut rig = Rig { disks, config, rt, engine: None, damaged_at_scan: Vec::new() };
        rig.restart();
        rig
    }

    /// Drops the engine (if any) and starts a new one on the same disks.
    fn restart(&mut self) {
        self.engine = None;
        let disks: Vec<Arc<dyn Disk>> = self.disks.iter().map(|d| d.clone() as Arc<dyn Disk>).collect();
        let (engine, report) = Engine::start_with(self.config.clone(), disks).expect("engine starts");
        assert!(report.foreign.is_empty(), "foreign files: {:?}", report.foreign);
        // Refused files and second copies both mean "this chunk is not what it was".
        self.damaged_at_scan = report
            .damaged
            .iter()
            .map(|(path, _)| path)
            .chain(&report.duplicates)
            .filter_map(|path| path.file_name().and_then(|n| parse_chunk_file_name(&n.to_string_lossy())))
            .map(|(id, _)| id.0)
            .collect();
        self.engine = Some(engine);
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine running")
    }

    fn run(&self, op: &Op) -> Result<Out, Error> {
        let result = self.rt.block_on(exec(self.engine(), op));
        if std::env::var_os("ELKFS_TRACE").is_some() {
            eprintln!("{op:?} -> {}", show(&result));
        }
        result
    }

    fn run_kind(&self, op: &Op) -> Result<Out, ErrorKind> {
        self.run(op).map_err(|e| e.kind())
    }

    /// Folder index of every listed chunk.
    fn folders_of(&self) -> HashMap<u64, usize> {
        self.engine().list().into_iter().map(|c| (c.id.0, c.folder)).collect()
    }

    fn damaged_folders(&self) -> Vec<bool> {
        self.engine().folders().iter().map(|f| f.damaged).collect()
    }
}

/// Prints the seed when the run panics, so it can be replayed.
struct SeedGuard {
    scenario: &'static str,
    seed: u64,
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{} failed with seed {}: replay with ELKFS_SEED={}", self.scenario, self.seed, self.seed);
        }
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("ELKFS_SEED") {
        Ok(seed) => vec![seed.trim().parse().expect("ELKFS_SEED is a number")],
        Err(_) => (0..SEEDS).collect(),
    }
}

/// Every chunk of the model, outside `skip`, is listed with its version
/// and reads back exactly; nothing else is listed.
fn verify_all(rig: &Rig, model: &Model, skip: &HashSet<u64>, when: &str) {
    let listed: Vec<(u64, u32)> =
        rig.engine().list().iter().map(|c| (c.id.0, c.version.0)).filter(|(id, _)| !skip.contains(id)).collect();
    let wanted: Vec<(u64, u32)> =
        model.iter().filter(|(id, _)| !skip.contains(id)).map(|(id, c)| (*id, c.version)).collect();
    assert_eq!(listed, wanted, "{when}: chunk list");
    for (&id, chunk) in model.iter().filter(|(id, _)| !skip.contains(id)) {
        let blocks = rig.run_kind(&Op::Blocks { id, version: chunk.version });
        assert_eq!(blocks, Ok(Out::Blocks(chunk.blocks.len())), "{when}: blocks of {id}");
        for block in 0..chunk.blocks.len() {
            let read = rig.run_kind(&Op::Read { id, version: chunk.version, block, offset: 0, size: BLOCK_SIZE });
            assert!(read == Ok(Out::Data(chunk.block(block))), "{when}: chunk {id} block {block}: {}", show(&read));
        }
    }
}

// ---------------------------------------------------------------- scenario (a)

#[test]
fn model_without_faults() {
    for seed in seeds() {
        let _guard = SeedGuard { scenario: "model_without_faults", seed };
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut rig = Rig::new(seed, 2, rng.random_bool(0.5));
        let mut model = Model::new();
        let none = HashSet::new();
        for step in 0..150 {
            let op = gen_op(&mut rng, &model, &none);
            let want = expect(&mut model, &op);
            let got = rig.run_kind(&op);
            assert!(got == want, "step {step}: {op:?}: engine {}, model {}", show(&got), show(&want));
        }
        verify_all(&rig, &model, &none, "before restart");
        rig.restart();
        assert!(rig.damaged_at_scan.is_empty(), "a clean restart finds damaged files");
        verify_all(&rig, &model, &none, "after a clean restart");
    }
}

// ---------------------------------------------------------------- scenario (b)

/// What a chunk may look like after an operation on it failed or was cut
/// short: its state before or after, block by block.
#[derive(Debug, Clone)]
struct Unsure {
    old: Option<MChunk>,
    new: Option<MChunk>,
}

impl Unsure {
    fn versions(&self) -> Vec<u32> {
        self.old.iter().chain(self.new.iter()).map(|c| c.version).collect()
    }

    fn may_be_absent(&self) -> bool {
        self.old.is_none() || self.new.is_none()
    }

    /// Whether `data` read at `block`/`offset` is the old or the new content.
    fn allows(&self, block: usize, offset: usize, data: &[u8]) -> bool {
        let side = |c: &Option<MChunk>| {
            let full = c.as_ref().map(|c| c.block(block)).unwrap_or_else(|| vec![0; BLOCK_SIZE]);
            full[offset..offset + data.len()] == *data
        };
        side(&self.old) || side(&self.new)
    }
}

/// Checks a chunk whose last change is uncertain. `strict_errors` limits
/// read failures to "this copy is bad" (CRC or damaged).
fn verify_unsure(rig: &Rig, id: u64, unsure: &Unsure, strict_errors: bool, when: &str) {
    let listed = rig.engine().list().into_iter().find(|c| c.id.0 == id);
    let Some(info) = listed else {
        let damaged = rig.damaged_at_scan.contains(&id);
        assert!(unsure.may_be_absent() || damaged, "{when}: chunk {id} vanished; was {unsure:?}");
        return;
    };
    let version = info.version.0;
    assert!(unsure.versions().contains(&version), "{when}: chunk {id} has version {version}, unsure {unsure:?}");
    for block in 0..=MAX_BLOCKS {
        match rig.run(&Op::Read { id, version, block, offset: 0, size: BLOCK_SIZE }) {
            Ok(Out::Data(data)) => {
                assert!(unsure.allows(block, 0, &data), "{when}: chunk {id} block {block} is neither old nor new")
            }
            Ok(other) => panic!("read answered {other:?}"),
            Err(e) if !strict_errors || matches!(e.kind(), ErrorKind::Crc | ErrorKind::Damaged) => {}
            Err(e) => panic!("{when}: chunk {id} block {block}: unexpected error {e}"),
        }
    }
}

/// Runs `count` operations checked exactly against the model, away from `avoid`.
fn run_exact(rig: &Rig, rng: &mut SmallRng, model: &mut Model, avoid: &HashSet<u64>, count: usize, when: &str) {
    for step in 0..count {
        let op = gen_op(rng, model, avoid);
        let want = expect(model, &op);
        let got = rig.run_kind(&op);
        assert!(got == want, "{when} step {step}: {op:?}: engine {}, model {}", show(&got), show(&want));
    }
}

/// An operation that changes something, as the model sees it.
fn gen_change(rng: &mut SmallRng, model: &Model, avoid: &HashSet<u64>) -> Op {
    for _ in 0..50 {
        let op = gen_op(rng, model, avoid);
        if op.target().is_some() && expect(&mut model.clone(), &op).is_ok() {
            return op;
        }
    }
    gen_op(rng, model, avoid)
}

#[test]
fn model_with_crashes() {
    for seed in seeds() {
        let _guard = SeedGuard { scenario: "model_with_crashes", seed };
        let mut rng = SmallRng::seed_from_u64(seed ^ 0xC0FFEE);
        let mut rig = Rig::new(seed, 2, true);
        let mut model = Model::new();
        let mut unsure: HashMap<u64, Unsure> = HashMap::new();
        for cycle in 0..2 {
            let avoid: HashSet<u64> = unsure.keys().copied().collect();
            let count = rng.random_range(5..40);
            run_exact(&rig, &mut rng, &mut model, &avoid, count, &format!("cycle {cycle}"));
            let op = gen_change(&mut rng, &model, &avoid);
            let before = model.clone();
            let want = expect(&mut model, &op);
            let steps = rng.random_range(0..12);
            for disk in &rig.disks {
                disk.crash_after(Some(steps));
            }
            let got = rig.run_kind(&op);
            let cut = rig.disks.iter().any(|d| d.is_down());
            for disk in &rig.disks {
                disk.crash_after(None);
                disk.crash();
            }
            let when = format!("cycle {cycle}: {op:?} cut after {steps} steps (cut: {cut}), answered {}", show(&got));
            match (&got, &want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{when}"),
                (Ok(_), Err(_)) => panic!("{when}: model says {}", show(&want)),
                (Err(g), Err(w)) if g == w => {}
                (Err(_), _) => {
                    // Not acknowledged: the target may hold either state.
                    let target = op.target().expect("a change");
                    let new = if want.is_ok() { model.get(&target).cloned() } else { before.get(&target).cloned() };
                    unsure.insert(target, Unsure { old: before.get(&target).cloned(), new });
                    model.remove(&target);
                }
            }
            rig.restart();
            let avoid: HashSet<u64> = unsure.keys().copied().collect();
            for id in &rig.damaged_at_scan {
                assert!(
                    avoid.contains(id),
                    "{when}: chunk {id} damaged after restart, but no change to it was in flight"
                );
            }
            verify_all(&rig, &model, &avoid, &format!("{when}; after restart"));
            for (id, state) in &unsure {
                verify_unsure(&rig, *id, state, true, &format!("{when}; after restart"));
            }
        }
        let avoid: HashSet<u64> = unsure.keys().copied().collect();
        run_exact(&rig, &mut rng, &mut model, &avoid, 20, "after the crashes");
        verify_all(&rig, &model, &avoid, "at the end");
    }
}

// ---------------------------------------------------------------- scenario (c)

fn write_faults(counts: SimFaultCounts) -> u64 {
    counts.write_eio + counts.fsync_eio + counts.torn_write
}

#[test]
fn model_with_io_faults() {
    let faults = SimFaults { read_eio: 0.02, write_eio: 0.01, fsync_eio: 0.01, write_enospc: 0.01, torn_write: 0.02 };
    for seed in seeds() {
        let _guard = SeedGuard { scenario: "model_with_io_faults", seed };
        let mut rng = SmallRng::seed_from_u64(seed ^ 0xFA17);
        let mut rig = Rig::new(seed, 3, rng.random_bool(0.5));
        let mut model = Model::new();
        let mut unsure: HashMap<u64, Unsure> = HashMap::new();
        let none = HashSet::new();
        run_exact(&rig, &mut rng, &mut model, &none, 20, "warm-up");
        for disk in &rig.disks {
            disk.set_faults(faults);
        }
        for step in 0..100 {
            let avoid: HashSet<u64> = unsure.keys().copied().collect();
            if avoid.len() as u64 >= IDS {
                break;
            }
            let op = gen_op(&mut rng, &model, &avoid);
            let folders = rig.folders_of();
            let damaged_before = rig.damaged_folders();
            let before = model.clone();
            let want = expect(&mut model, &op);
            let got = rig.run_kind(&op);
            let when = format!("step {step}: {op:?}: engine {}, model {}", show(&got), show(&want));
            for (i, disk) in rig.disks.iter().enumerate() {
                if write_faults(disk.injected()) > 0 {
                    assert!(rig.damaged_folders()[i], "{when}: disk {i} failed a write but is not marked damaged");
                }
            }
            if got == want {
                continue;
            }
            assert!(got.is_err(), "{when}: succeeded with the wrong answer");
            let on_damaged = op.ids().iter().any(|id| folders.get(id).is_some_and(|&f| damaged_before[f]));
            match op.target() {
                Some(target) => {
                    if on_damaged && want.is_ok() {
                        // Refused before any I/O, so the chunk is as it was.
                        assert_eq!(got, Err(ErrorKind::Damaged), "{when}: a damaged disk must refuse changes");
                        model = before;
                        continue;
                    }
                    let new = if want.is_ok() { model.get(&target).cloned() } else { before.get(&target).cloned() };
                    unsure.insert(target, Unsure { old: before.get(&target).cloned(), new });
                    model.remove(&target);
                }
                None => {
                    let allowed = [ErrorKind::Io, ErrorKind::Damaged];
                    let kind = got.as_ref().err().copied().expect("an error");
                    assert!(allowed.contains(&kind), "{when}: a chunk no failed change touched reports {kind:?}");
                    if kind == ErrorKind::Damaged {
                        assert!(on_damaged, "{when}: chunk reported damaged on a healthy disk");
                    }
                }
            }
        }
        for disk in &rig.disks {
            disk.set_faults(SimFaults::NONE);
        }
        let avoid: HashSet<u64> = unsure.keys().copied().collect();
        for (id, state) in &unsure {
            verify_unsure(&rig, *id, state, false, "with faults off");
        }
        rig.restart();
        for id in &rig.damaged_at_scan {
            assert!(avoid.contains(id), "chunk {id} damaged after restart, but no change to it failed");
        }
        verify_all(&rig, &model, &avoid, "after restart");
        for (id, state) in &unsure {
            verify_unsure(&rig, *id, state, true, "after restart");
        }
    }
}
